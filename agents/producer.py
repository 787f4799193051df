"""Producers: mines, refiners/processors (oxide, metal, magnet) and recyclers.

Each agent stands for one facility. Its state lives in the model's columnar arrays (the agent
holds its row index), so one call per agent type decides for every facility of that type: no
per-agent Python in the step loop.

Decision rules (ODD §7 "Submodels"):

* **Miner**: output responds to the expected price with short-run elasticity ε around the
  2024 calibration point, ``x = min(capacity, u0·capacity·(p/p0)^ε)`` with u0 the 2024
  utilisation (1 for new mines, whose ramp-up is in their capacity). Output it cannot sell now
  is valued at the price it expects once the market is back to normal, while it has storage
  room: a mine whose exports are banned keeps mining into stock.
* **Refiner / Recycler**: throughput follows orders: expected sales of its outputs plus a
  share of the gap to its finished-stock target (the stock-adjustment rule; the target rises
  when it expects prices to rise, so it produces into stock), within capacity;
  conversion margins govern whether it runs at all (below cash cost it idles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from critmin.agents.buying import seller_stock_target
from critmin.sim.network import INPUT, OUTPUT

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.view import ModelView


def unit_margin(net: Network, received: np.ndarray, paid: np.ndarray) -> np.ndarray:
    """Per node: value of its outputs at ``received`` (per slot) minus the cost of its inputs at
    ``paid`` (per slot), per unit of activity (the process coefficients), plus what a by-product
    plant earns from its host metal (``net.host_value``, held at the base year: copper pays for
    a Congolese cobalt circuit whatever cobalt fetches)."""
    price = np.where(net.slot_role == OUTPUT, received, np.where(net.slot_role == INPUT, -paid, 0.0))
    own = np.bincount(net.slot_node, weights=net.slot_coef * price, minlength=len(net.node_id))
    return own + net.host_value


def storage_room(model: ModelView) -> np.ndarray:
    """Per slot: the share of its storage limit still free (months of normal sales × the largest
    storage multiple); 1 for an empty store, 0 for a full one. The stores were built for the
    base year's sales at least: a ban that stops sales does not shrink the warehouse."""
    s, m = model.state, model.params.market
    normal = np.maximum(s.orders_lr, model.calibration.base)
    limit = m.cover_target_months * m.storage_max_multiple * normal
    return np.clip(1.0 - np.divide(s.stock, limit, out=np.ones_like(limit), where=limit > 0), 0.0, 1.0)


def expected_margin(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Expected output value (a price floor guarantees the floor) minus expected input cost per
    unit of activity, per node.

    Output that cannot be sold now at a good price can be stored and sold later at the reference
    price (sim/prices.py: the higher of the normal price and the price abroad, e.g. once an export
    ban lifts), in proportion to the producer's storage room: its stock below its storage limit
    (months of normal sales × the largest storage multiple)."""
    s = model.state
    market = model.slot_market()
    received = np.maximum(s.p_exp[market], model.floor)
    room = storage_room(model)
    received = received + room * np.maximum(np.exp(s.log_p_ref[market]) - received, 0.0)
    return unit_margin(model.net, received, s.expected_paid)[nodes]


def activity_to_order(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Activity that meets expected orders and closes a share of the finished-stock gap.

    Per output slot the need is ``orders + (target − stock)/adjust`` tonnes, with the seller's
    stock target of :func:`agents.buying.seller_stock_target` (which rises when it expects the price
    to rise: it produces into stock); a node's activity is the value-weighted mean over its main
    (non-scrap) outputs of need/coefficient.
    """
    net, s, sc = model.net, model.state, model.params
    outs = (net.slot_role == OUTPUT) & model.main_output
    orders = s.orders_avg
    target = seller_stock_target(s, sc)
    need = np.maximum(orders + (target - s.stock) / sc.producers.stock_adjust_months, 0.0)
    weight = np.where(outs, net.slot_coef * s.p_exp[model.slot_market()], 0.0)
    per_activity = np.divide(need, net.slot_coef, out=np.zeros_like(need), where=net.slot_coef > 0)
    n = len(net.node_id)
    num = np.bincount(net.slot_node, weights=weight * per_activity, minlength=n)
    den = np.bincount(net.slot_node, weights=weight, minlength=n)
    return np.divide(num, den, out=np.zeros(n), where=den > 0)[nodes]


def host_driven_activity(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """What a by-product plant runs at when the host business sets the pace: the base-year
    utilisation of its capacity, into stock while its store of the by-product has room (the
    Congolese cobalt circuits kept running through the 2025 export ban); with the store full the
    by-product stays in the residues."""
    net, m = model.net, model.params.market
    outs = (net.slot_role == OUTPUT) & model.main_output
    # room relative to a store at its normal level (1 there and below, 0 when full)
    normal = 1.0 - 1.0 / m.storage_max_multiple
    room = np.ones(len(net.node_id))
    np.minimum.at(room, net.slot_node[outs], np.minimum(storage_room(model)[outs] / normal, 1.0))
    room = room[nodes]
    base = np.minimum(model.investment.mine_base_output(model, nodes), Producer.capacity(model, nodes))
    return base * room


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

    def __init__(self, model: ModelView, node: int) -> None:
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
    def capacity(model: ModelView, nodes: np.ndarray) -> np.ndarray:
        """Available capacity: structural capacity (sim/capacity.py) times this month's outage
        and event factors."""
        s = model.state
        return np.minimum(s.capacity[nodes] * s.capacity_factor[nodes], s.activity_cap[nodes])


class Miner(Producer):
    """Extracts ore or concentrate; output responds to the expected price."""

    @staticmethod
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        s = model.state
        price = expected_margin(model, nodes)  # no modelled inputs: margin = revenue
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
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        s = model.state
        margin = expected_margin(model, nodes)
        x = np.minimum(activity_to_order(model, nodes), Producer.capacity(model, nodes))
        host = model.net.host_share[nodes]
        if host.any():  # by-product plants: the host business sets most of the pace
            x = x + host * (host_driven_activity(model, nodes) - x)
        s.plan[nodes] = x * viability(margin, s.margin0[nodes], model.idle_threshold[nodes])


class Recycler(Refiner):
    """Turns collected scrap into secondary material; bounded by capacity and scrap bought."""


AGENT_CLASSES: dict[str, type[Producer]] = {"Miner": Miner, "Refiner": Refiner, "Recycler": Recycler}
