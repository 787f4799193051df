"""Manufacturers: end-use demand centres (EV motors, wind, electronics, industrial, defence).

One agent per country × end use × commodity. Demand follows the scenario's growth path, a
short-run price response, a material intensity that substitution and thrifting lower with a
lag when prices stay high (and only partly restore when they fall), the battery chemistry the
cell makers choose (agents/chemistry.py; battery end uses only), and random monthly noise;
purchases refill a safety stock in months of cover; consumption moves material into the in-use
stock, which returns end-of-life scrap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from critmin.agents import chemistry

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


def adapt_intensity(
    intensity: np.ndarray,
    price_ratio: np.ndarray,
    short_run: float,
    long_run: float,
    months: float,
    reversibility: float,
) -> np.ndarray:
    """One month of substitution and thrifting.

    Intensity moves toward ``(p/p0)^−(η_LR − η_SR)`` (so that with the short-run response the
    total long-run elasticity is η_LR) at rate 1/``months``; when the target is above today's
    intensity (prices fell back), only at ``reversibility``/``months``: redesigns stay.
    """
    target = np.power(np.maximum(price_ratio, 1e-9), -(long_run - short_run))
    speed = np.where(target < intensity, 1.0, reversibility) / months
    return intensity + speed * (target - intensity)


def desired_use(base: np.ndarray, price: np.ndarray, price0: np.ndarray, elasticity: float) -> np.ndarray:
    """Isoelastic short-run demand ``D = D_base·(p/p0)^(−η)``."""
    ratio = np.divide(price, price0, out=np.ones_like(price), where=price0 > 0)
    return base * np.power(np.maximum(ratio, 1e-9), -elasticity)


class Manufacturer(mesa.Agent):
    """A country's manufacturers of one end use, consuming one commodity."""

    def __init__(self, model: ModelView, node: int) -> None:
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
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        """Set desired consumption this month for the given demand rows: the cell makers choose
        their chemistry first (agents/chemistry.py), which sets the battery end uses' material
        intensity per kWh; substitution and thrifting act on top of it."""
        s, d, net = model.state, model.params.demand, model.net
        chemistry.decide(model)
        slots = net.consume_slot[nodes]
        ratio = np.divide(s.paid_lr[slots], s.paid0[slots], out=np.ones(nodes.size), where=s.paid0[slots] > 0)
        s.intensity[nodes] = adapt_intensity(
            s.intensity[nodes],
            ratio,
            d.price_elasticity,
            d.long_run_elasticity,
            d.substitution_months,
            d.reversibility,
        )
        base = (
            net.demand0[nodes]
            * model.growth_index(nodes)
            * s.intensity[nodes]
            * chemistry.intensity_factor(model, nodes)
            * s.demand_factor[nodes]
            * s.noise[nodes]
        )
        s.plan[nodes] = desired_use(base, s.expected_paid[slots], s.paid0[slots], d.price_elasticity)
