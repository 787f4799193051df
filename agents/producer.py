"""Producers: mines, refiners/processors (oxide, metal, magnet) and recyclers.

Each agent stands for one facility. Its state lives in the model's columnar arrays (the agent
holds its row index), so one call per agent type decides for every facility of that type: no
per-agent Python in the step loop.

Decision rules (ODD §7 "Submodels"):

* **Miner**: output responds to the expected price with short-run elasticity ε around the
  2024 calibration point, ``x = min(capacity, u0·capacity·(p/p0)^ε)`` with u0 the 2024
  utilisation (1 for new mines, whose ramp-up is in their capacity).
* **Refiner / Recycler**: throughput follows orders: expected sales of its outputs plus a
  share of the gap to its finished-stock target (the stock-adjustment rule), within capacity;
  conversion margins govern whether it runs at all (below cash cost it idles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from critmin.sim.model import CritminModel


def price_driven_activity(
    price: np.ndarray, price0: np.ndarray, activity0: np.ndarray, capacity: np.ndarray, elasticity: float
) -> np.ndarray:
    """Short-run supply ``x = min(capacity, x0·(p/p0)^ε)``; reproduces 2024 output at 2024 prices."""
    ratio = np.divide(price, price0, out=np.zeros_like(price), where=price0 > 0)
    return np.minimum(activity0 * np.power(np.maximum(ratio, 0.0), elasticity), capacity)


def viability(margin: np.ndarray, margin0: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """Share of the planned throughput a plant runs, from its expected margin per unit.

    1 at or above the 2024 margin, falling linearly to 0 at the idling threshold (cash cost):
    a smooth short-run supply response rather than an on/off switch, which in tests turned
    the chain into a relay oscillator.
    """
    width = np.maximum(margin0 - idle, 1e-9 * np.maximum(np.abs(margin0), 1.0))
    return np.clip((margin - idle) / width, 0.0, 1.0)


class Producer(mesa.Agent):
    """A facility that turns inputs into outputs with its process's coefficients."""

    def __init__(self, model: CritminModel, node: int) -> None:
        super().__init__(model)
        self.node = node

    @property
    def facility(self) -> str:
        return self.model.net.node_id[self.node]

    @property
    def country(self) -> str:
        return self.model.net.countries[self.model.net.node_country[self.node]]

    @property
    def activity(self) -> float:
        """Realised activity of the last step (process units per month)."""
        return float(self.model.state.activity[self.node])

    @staticmethod
    def capacity(model: CritminModel, nodes: np.ndarray) -> np.ndarray:
        """Available capacity: structural capacity (sim/capacity.py) times this month's outage
        and event factors."""
        return model.state.capacity[nodes] * model.state.capacity_factor[nodes]


class Miner(Producer):
    """Extracts ore or concentrate; output responds to the expected price."""

    @staticmethod
    def decide(model: CritminModel, nodes: np.ndarray) -> None:
        s = model.state
        price = model.expected_margin(nodes)  # a mine has no modelled inputs: margin = revenue
        x = price_driven_activity(
            price,
            s.margin0[nodes],
            model.investment.mine_base_output(model, nodes),
            Producer.capacity(model, nodes),
            model.params.producers.supply_elasticity,
        )
        idle = model.idle_threshold[nodes]
        s.plan[nodes] = x * viability(price, idle, 0.9 * idle)  # shuts between cash cost and 90% of it


class Refiner(Producer):
    """Separation, metal/alloy or magnet plant: buys inputs, holds stocks, transforms to order."""

    @staticmethod
    def decide(model: CritminModel, nodes: np.ndarray) -> None:
        s = model.state
        margin = model.expected_margin(nodes)
        x = np.minimum(model.activity_to_order(nodes), Producer.capacity(model, nodes))
        s.plan[nodes] = x * viability(margin, s.margin0[nodes], model.idle_threshold[nodes])


class Recycler(Refiner):
    """Turns collected scrap into secondary material; bounded by capacity and scrap bought."""


AGENT_CLASSES: dict[str, type[Producer]] = {"Miner": Miner, "Refiner": Refiner, "Recycler": Recycler}
