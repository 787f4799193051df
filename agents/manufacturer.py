"""Manufacturers: end-use demand centres (EV motors, wind, electronics, industrial, defence).

One agent per country × end use × commodity. Demand follows the scenario's growth path, a
short-run price response and random monthly noise; purchases refill a safety stock in days of
cover; consumption moves material into the in-use stock, which returns end-of-life scrap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from critmin.sim.model import CritminModel


def desired_use(base: np.ndarray, price: np.ndarray, price0: np.ndarray, elasticity: float) -> np.ndarray:
    """Isoelastic short-run demand ``D = D_base·(p/p0)^(−η)``."""
    ratio = np.divide(price, price0, out=np.ones_like(price), where=price0 > 0)
    return base * np.power(np.maximum(ratio, 1e-9), -elasticity)


class Manufacturer(mesa.Agent):
    """A country's manufacturers of one end use, consuming one commodity."""

    def __init__(self, model: CritminModel, node: int) -> None:
        super().__init__(model)
        self.node = node

    @property
    def end_use(self) -> str:
        net = self.model.net
        return net.end_uses[net.end_use[self.node]]

    @property
    def country(self) -> str:
        return self.model.net.countries[self.model.net.node_country[self.node]]

    @staticmethod
    def decide(model: CritminModel, nodes: np.ndarray) -> None:
        """Set desired consumption this month for the given demand rows."""
        s, d, net = model.state, model.params.demand, model.net
        slots = net.consume_slot[nodes]
        base = net.demand0[nodes] * model.growth_index(nodes) * s.demand_factor[nodes] * s.noise[nodes]
        s.plan[nodes] = desired_use(base, s.expected_paid[slots], s.paid0[slots], d.price_elasticity)
