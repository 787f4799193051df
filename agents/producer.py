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

from collections.abc import Callable
from typing import TYPE_CHECKING

import mesa
import numpy as np

from critmin.agents.buying import seller_stock_target
from critmin.sim.network import INPUT, OUTPUT
from critmin.sim.prices import storage_limit

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.view import ModelView


def _month_memo(model: ModelView, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A per-node figure computed once for all producers' decisions of the month: the model opens
    ``decision_memo`` while producers decide (their decisions write only their plans, which none
    of these figures read) and closes it before anyone else does; without it, computed afresh."""
    memo = getattr(model, "decision_memo", None)
    if memo is None:
        return compute()
    out = memo.get(key)
    if out is None:
        out = memo[key] = compute()
    return out


def unit_margin(net: Network, received: np.ndarray, paid: np.ndarray) -> np.ndarray:
    """Per node: value of its outputs at ``received`` (per slot) minus the cost of its inputs at
    ``paid`` (per slot), per unit of activity (the process coefficients), plus what a by-product
    plant earns from its host metal (``net.host_value``, held at the base year: copper pays for
    a Congolese cobalt circuit whatever cobalt fetches)."""
    price = np.where(net.slot_role == OUTPUT, received, np.where(net.slot_role == INPUT, -paid, 0.0))
    own = np.bincount(net.slot_node, weights=net.slot_coef * price, minlength=len(net.node_id))
    return own + net.host_value


def storage_room(model: ModelView) -> np.ndarray:
    """Per slot: the share of its storage limit (:func:`storage_limit`) still free; 1 for an empty
    store, 0 for a full one."""
    limit = storage_limit(model)
    stock = model.state.stock
    return np.clip(1.0 - np.divide(stock, limit, out=np.ones_like(limit), where=limit > 0), 0.0, 1.0)


def expected_margin(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Expected output value (a price floor guarantees the floor) minus expected input cost per
    unit of activity, per node.

    Output that cannot be sold now at a good price can be stored and sold later at the reference
    price (sim/prices/anchors.py, sim/prices/expectations.py: the higher of the normal price and the price abroad, e.g. once an export
    ban lifts), in proportion to the producer's storage room: its stock below its storage limit
    (months of normal sales × the largest storage multiple)."""
    return _month_memo(model, "expected_margin", lambda: _expected_margin_all(model))[nodes]


def _expected_margin_all(model: ModelView) -> np.ndarray:
    s = model.state
    market = model.slot_market()
    received = np.maximum(s.p_exp[market], model.floor)
    room = storage_room(model)
    received = received + room * np.maximum(np.exp(s.log_p_ref[market]) - received, 0.0)
    return unit_margin(model.net, received, s.expected_paid)


def activity_to_order(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Activity that meets expected orders and closes a share of the finished-stock gap.

    Per output slot the need is ``orders + (target − stock)/adjust`` tonnes, with the seller's
    stock target of :func:`agents.buying.seller_stock_target` (which rises when it expects the price
    to rise: it produces into stock); a node's activity is the value-weighted mean over its main
    (non-scrap) outputs of need/coefficient.
    """
    return _month_memo(model, "activity_to_order", lambda: _activity_to_order_all(model))[nodes]


def _activity_to_order_all(model: ModelView) -> np.ndarray:
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
    return np.divide(num, den, out=np.zeros(n), where=den > 0)


def by_product_room(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Per node: the share of the host-paced output a by-product plant still puts into stock. It
    runs at the host's pace until its stock comes within the ordinary producer's slowing band
    (``cover_target_months × (storage_max_multiple − 1)`` months of normal sales) of its
    :func:`storage_limit`, and stops at the limit, when the by-product stays in the residues (the
    Congolese circuits kept running through the ten months of the 2025 export ban: CMOC 61 kt in
    H1 2025, facts.md §2e)."""
    net, s, m = model.net, model.state, model.params.market
    outs = np.flatnonzero((net.slot_role == OUTPUT) & model.main_output)
    normal = np.maximum(s.orders_lr, model.calibration.base)[outs]
    band = m.cover_target_months * (m.storage_max_multiple - 1.0) * normal
    free = np.divide(storage_limit(model)[outs] - s.stock[outs], band, out=np.ones_like(band), where=band > 0)
    room = np.ones(len(net.node_id))
    np.minimum.at(room, net.slot_node[outs], np.clip(free, 0.0, 1.0))
    return room[nodes]


def host_driven_activity(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """What a by-product plant runs at when the host business sets the pace: the base-year
    utilisation of its capacity, into stock while its store of the by-product has room
    (:func:`by_product_room`: the Congolese cobalt circuits kept running through the 2025 export
    ban); with the store full the by-product stays in the residues."""
    base = np.minimum(model.investment.mine_base_output(model, nodes), Producer.capacity(model, nodes))
    return base * by_product_room(model, nodes)


def by_product_activity(model: ModelView, nodes: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """A by-product circuit's plan: ``h·host-paced + (1 − h)·price-driven``. The host business
    (share h of the operation's revenue) sets the pace of the ore it treats
    (:func:`host_driven_activity`); the by-product's own share responds to its expected margin as
    a mine's output does (:func:`price_driven_activity`), a margin in which output that cannot be
    sold now is valued at the reference price while the store has room (:func:`expected_margin`):
    a circuit whose exports are banned keeps recovering the by-product into stock while it
    expects the ban to lift. (Before issue 15 the own share followed orders, so it stopped with
    the sales: DRC hydroxide output 0.78 of the no-ban twin under the 2025 ban; history ~1.)"""
    s, net = model.state, model.net
    host = net.host_share[nodes]
    base = model.investment.mine_base_output(model, nodes)
    own = price_driven_activity(
        margin,
        s.margin0[nodes],
        base,
        Producer.capacity(model, nodes),
        model.params.producers.supply_elasticity,
    )
    return host * host_driven_activity(model, nodes) + (1.0 - host) * own


def price_driven_activity(
    price: np.ndarray, price0: np.ndarray, activity0: np.ndarray, capacity: np.ndarray, elasticity: float
) -> np.ndarray:
    """Short-run supply ``x = min(capacity, x0·(p/p0)^ε)``; reproduces 2024 output at 2024 prices."""
    ratio = np.divide(price, price0, out=np.zeros_like(price), where=price0 > 0)
    return np.minimum(activity0 * np.power(np.maximum(ratio, 0.0), elasticity), capacity)


def viability(
    margin: np.ndarray, margin0: np.ndarray, idle: np.ndarray, spread: float | np.ndarray = 0.0
) -> np.ndarray:
    """Share of the planned throughput a plant runs, from its expected margin per unit.

    1 at or above the 2024 margin, falling linearly to 0 at the idling threshold (cash cost)
    lowered by ``spread`` of itself: a node is an aggregate of plants whose cash costs are
    dispersed around its mean (``producers.cash_cost_spread``), so its short-run supply is an
    industry cost curve: the share of its capacity whose cash cost the margin covers, 1 for the
    plants that all ran in 2024. A smooth response rather than an on/off switch, which in tests
    turned the chain into a relay oscillator.
    """
    low, width = cost_curve(margin0, idle, spread)
    return np.clip((margin - low) / width, 0.0, 1.0)


def cost_curve(
    margin0: np.ndarray, idle: np.ndarray, spread: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The margin at which a node's cheapest plants still run (its idling threshold lowered by
    ``spread`` of itself) and the width from there to the 2024 margin, where all of them ran:
    :func:`viability` is ``clip((margin − low)/width, 0, 1)``."""
    low = idle - spread * np.maximum(idle, 0.0)
    return low, np.maximum(margin0 - low, 1e-9 * np.maximum(np.abs(margin0), 1.0))


def contracted_margin(margin: np.ndarray, margin0: np.ndarray, share: float) -> np.ndarray:
    """The margin a processing plant earns per unit when a ``share`` of its throughput is sold
    cost-plus or tolled: on that share it earns its base-year conversion fee (``margin0``), the
    buyer bearing the input price; on the rest, the merchant margin. Chinese RE metal and
    magnet makers price as input cost plus a processing fee (``producers.cost_plus_share``), so a
    1-3% move of the oxide price against the metal price does not wipe out their whole margin."""
    return share * margin0 + (1.0 - share) * margin


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


def plan_processing(model: ModelView, nodes: np.ndarray, contracted: bool) -> None:
    """A processing plant's plan: the activity its orders call for, times the share of its capacity
    that runs at the margin it expects (:func:`ride_through`: a cost curve, and capacity that ran
    rides through a weak month). ``contracted``: a share of its throughput is sold cost-plus
    (:func:`contracted_margin`); a recycler's margin is its own. By-product circuits keep the plain
    ramp from the 2024 margin to cash cost (their pace is the host's, and the host's revenue,
    78-92% of theirs, is in their margin: it is not thin)."""
    s, pp = model.state, model.params.producers
    margin = expected_margin(model, nodes)
    x = np.minimum(activity_to_order(model, nodes), Producer.capacity(model, nodes))
    host = model.net.host_share[nodes]
    if host.any():  # by-product plants: the host business sets most of the pace
        x = np.where(host > 0, by_product_activity(model, nodes, margin), x)
    plain = host == 0
    margin0, idle = s.margin0[nodes], model.idle_threshold[nodes]
    long_run = _month_memo(model, "long_run_margin", lambda: model.investment.long_run_margin(model))[nodes]
    if contracted:
        margin = np.where(plain, contracted_margin(margin, margin0, pp.cost_plus_share), margin)
        long_run = np.where(plain, contracted_margin(long_run, margin0, pp.cost_plus_share), long_run)
    spread = np.where(plain, pp.cash_cost_spread, 0.0)
    hold = np.where(plain, pp.restart_cost_months * pp.expectation_weight, 0.0)
    # the share of its plants that ran last month (not last month's tonnes over this month's plan:
    # plants that run follow their orders up and down, only idle ones must restart)
    share = ride_through(margin, long_run, margin0, idle, s.run_share[nodes], spread, hold)
    s.run_share[nodes] = share
    s.plan[nodes] = x * share


def ride_through(
    margin: np.ndarray,
    long_run: np.ndarray,
    margin0: np.ndarray,
    idle: np.ndarray,
    ran: np.ndarray,
    spread: float | np.ndarray,
    hold: float | np.ndarray,
) -> np.ndarray:
    """Share of the planned throughput a processing plant runs, with stopping and restarting
    costly. Idle capacity starts where the expected margin covers its cash cost
    (:func:`viability`). Capacity that ran last month (``ran``, the share of its plants that ran,
    ``State.run_share``; the plants that run follow their orders) runs
    on while the margin stays above its cash cost less ``hold`` of it: stopping and restarting
    costs ``restart_cost_months`` of cash cost, and a weak margin is expected to last about
    ``1/expectation_weight`` months (the memory of the adaptive expectation), so the saving from a
    stop, ``(c − m)/expectation_weight``, must exceed the restart cost: ``m < c·(1 − hold)``,
    ``hold = restart_cost_months × expectation_weight``. It rides through a weak spell only while
    the long-run expected margin still covers cash cost (the hold is scaled by the long-run
    viability): a sustained loss still closes it."""
    # :func:`viability` three times over, its cost curve computed once
    low, width = cost_curve(margin0, idle, spread)
    start = np.clip((margin - low) / width, 0.0, 1.0)
    keep = np.clip(hold, 0.0, 1.0) * np.maximum(idle, 0.0) * np.clip((long_run - low) / width, 0.0, 1.0)
    stay = np.clip((margin + keep - low) / width, 0.0, 1.0)
    return np.maximum(start, np.minimum(np.clip(ran, 0.0, 1.0), stay))


class Refiner(Producer):
    """Separation, metal/alloy or magnet plant: buys inputs, holds stocks, transforms to order."""

    @staticmethod
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        plan_processing(model, nodes, contracted=True)


class Recycler(Refiner):
    """Turns collected scrap into secondary material; bounded by capacity and scrap bought. Its
    scrap is bought at a payable share of the refined price, not tolled: its margin is its own."""

    @staticmethod
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        plan_processing(model, nodes, contracted=False)


AGENT_CLASSES: dict[str, type[Producer]] = {"Miner": Miner, "Refiner": Refiner, "Recycler": Recycler}
