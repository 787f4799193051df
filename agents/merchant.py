"""Merchant holders: traders' and other discretionary stocks of a commodity (issue 15 item 2).

A chain declares them in ``data/<chain>/holders.csv``: one row per end use of ``demand.csv`` whose
base-year purchases were not consumed but went into stock (the 2024 cobalt surplus the Cobalt
Institute measured, bought by traders and refiners' metal desks: ``co_stockbuild``). Each demand
row of that end use (a country) is one holder. It keeps the demand centre as its buying desk, so
the base-year calibration is unchanged (it bought the surplus in 2024 at 2024 prices), and its
stock lives there, where price formation sees it (stock cover, the stock that bridges an expected
shortage); it gets a store node (``holder:<end use>:<country>:<commodity>``, a STORE slot like a
government stockpile's) from which it offers what it sells this month.

The decision is competitive storage (Deaton & Laroque 1992; Williams & Wright 1991; the supply of
storage of Working 1949), with the storage multiple and expectations every holder in the model
already has (:func:`critmin.sim.prices.storage_multiple`, :func:`critmin.sim.prices.expected_gain`):

* the holder's *normal stock* ``N`` is its opening stock plus what it bought at normal prices,
  its end use's base-year purchases times the end use's growth path (``demand_growth.csv``);
* its expected gain ``r`` is the expected monthly ln price gain of the markets it buys from (the
  sellers' ``storage_return``, weighted by its base-year purchases), less its carrying cost:
  holding or selling beyond the normal stock only pays once the expected move covers the
  carrying cost (``carry_cost_per_year``/12 a month, interest + storage + insurance), so ``r``
  is the gain shrunk toward 0 by the carry (a no-trade band around the normal stock);
* while an export restriction binds upstream of what it holds (a ban, licence or quota on its
  commodity or on one it is made from), it weighs the chance ``h`` that the restriction ends
  within the month: it expects ``(1 − h)·r + h·(ln p_lr − ln p)``, the markets' expected gain if
  the restriction goes on and the fall back to their long-run price ``p_lr`` if it ends (the
  premium the restriction put in the price goes with it: competitive storage under a temporary
  disruption, Williams & Wright 1991). Read as a holder's average monthly gain over the months
  left to the end, R of them, with the fall at the end, the chance is ``1/R``: R is the months left
  to the end the government announced (the restriction's ``end``; ``market.restriction_months``
  for one announced without an end), through any restriction announced to follow on from it (an
  instrument's ``announced`` month: the DRC's 2026-27 quotas, decided in September 2025). An
  extension without an announcement is news: a new restriction that starts where the old one
  ends, read from the month it starts. The holder's belief moves toward the
  calendar's ``1/R`` adaptively, at the model's expectation weight
  (``producers.expectation_weight``), as every expectation in the model does: a holder does not
  dump its stock in the last announced month and buy it all back the next when the restriction
  is extended. The markets' own expected gain (:func:`critmin.sim.prices.expected_scarcity`)
  spreads a restriction's scarcity over ``restriction_months`` whatever was announced; a trader,
  who can sell at any time, reads the calendar;
* its target is ``N × exp(β·r)`` within ``[1/M, M]`` (``market.storage_response`` β,
  ``market.storage_max_multiple`` M); it buys its normal build plus a share of the gap to the
  target, ``b + (target − stock)/adjust`` (``producers.stock_adjust_months``), and when that is
  negative it offers the difference from its store at the market price: it sells into a spike
  (the price above its expected price by more than the carry) and buys in a market expected to
  rise (a ban that will bite).

What it buys is not consumed: the demand centre's planned use is 0. Releases are moved to the store
(with the desk's origin mix: it sells what it holds, of its origin) and sold in the spot round like
any seller's stock (sim/model.py ``_book``: the holders' store offers join the spot offers), at its
supply markets' price (``store_price``: the base-purchase-weighted mean of the prices of the markets
it buys from, so a buyer pays a holder what it pays that market, plus transport); governments'
stockpile releases keep the reserve round (:mod:`critmin.sim.trading`), which serves only buyers'
use left short: they are policy, a holder is arbitrage. Holders do not trade with one another (the
edges from a holder's store to a holder's desk are closed). What is not sold goes back to the desk
at the next decision. Vectorised over holders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from critmin.sim.network import INPUT, OUTPUT, STORE
from critmin.sim.prices import storage_multiple
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.view import ModelView
    from critmin.sim.world import World

HOLDERS_FILE = "holders.csv"
RESTRICTIONS = frozenset({"export_ban", "export_licensing", "export_quota", "import_quota"})
"""Instrument kinds that restrict trade and have an announced end (``end``) a holder can read."""


def store_id(end_use: str, country: str, commodity: str) -> str:
    """The id of a holder's store node."""
    return f"holder:{end_use}:{country}:{commodity}"


def _holder_rows(world: World) -> list[tuple[str, str, str]]:
    """(end use, country, commodity) of every holder: the demand rows of the declared end uses."""
    table = world.holders
    if table.empty:
        return []
    demand = world.demand
    out = []
    for row in table.itertuples(index=False):
        rows = demand[demand["end_use"] == row.end_use]
        if rows.empty:
            raise DataError(
                f"{HOLDERS_FILE}: end use {row.end_use!r} has no rows in demand.csv; expected the "
                "end use whose base-year purchases the holders made"
            )
        out += [(row.end_use, d.country, d.commodity) for d in rows.itertuples(index=False)]
    return out


def holder_stores(world: World) -> list[tuple[str, str, str]]:
    """The holders' store nodes (id, country, commodity), to compile into the network with the
    government stockpiles' (sim/network.py: ``stores``)."""
    return [(store_id(e, c, k), c, k) for e, c, k in _holder_rows(world)]


def upstream_commodities(net: Network, commodity: int) -> np.ndarray:
    """Per commodity: whether it is ``commodity`` or something it is made from (any number of
    process steps up the chain, scrap loops included): a restriction on it cuts the supply of
    ``commodity``."""
    k = len(net.commodities)
    made = np.zeros((k, k), bool)  # made[i, o]: some process turns i into o
    nodes = np.unique(net.slot_node)
    ins = np.zeros((len(net.node_id), k), bool)
    outs = np.zeros((len(net.node_id), k), bool)
    ins[net.slot_node[net.slot_role == INPUT], net.slot_commodity[net.slot_role == INPUT]] = True
    outs[net.slot_node[net.slot_role == OUTPUT], net.slot_commodity[net.slot_role == OUTPUT]] = True
    made |= (ins[nodes].astype(np.int64).T @ outs[nodes].astype(np.int64)) > 0
    up = np.zeros(k, bool)
    up[commodity] = True
    for _ in range(k):  # transitive closure, at most k steps
        more = up | made[:, up].any(axis=1)
        if (more == up).all():
            break
        up = more
    return up


class Merchant(mesa.Agent):
    """One merchant holder (a country's row of a holder end use). Its state is in
    :class:`Holders` (columnar); all holders decide in one call."""

    def __init__(self, model: ModelView, node: int) -> None:
        super().__init__(model)
        self.node = node

    @staticmethod
    def decide(model: ModelView, nodes: np.ndarray) -> None:
        model.merchants.decide(model)  # type: ignore[attr-defined]


class Holders:
    """Every merchant holder of the world, as arrays over holders."""

    def __init__(self, model: ModelView) -> None:
        net, world = model.net, model.world
        rows = _holder_rows(world)
        self.size = len(rows)
        index = {n: i for i, n in enumerate(net.node_id)}
        self.nodes = np.array([index[f"demand:{c}:{e}:{k}"] for e, c, k in rows], dtype=np.int64)
        self.buy_slots = net.consume_slot[self.nodes] if self.size else np.zeros(0, np.int64)
        stores = [index[store_id(e, c, k)] for e, c, k in rows]
        self.store_slots = np.array(
            [int(np.flatnonzero((net.slot_node == n) & (net.slot_role == STORE))[0]) for n in stores],
            dtype=np.int64,
        )
        table = world.holders.set_index("end_use")
        demand0 = net.demand0[self.nodes]
        per_use = {
            e: sum(d for (e2, _, _), d in zip(rows, demand0, strict=True) if e2 == e) for e, _, _ in rows
        }
        # the end use's opening stock, shared over its countries by their base-year purchases
        self.opening = np.array(
            [
                float(table.at[e, "opening_stock_t"]) * (d / per_use[e] if per_use[e] > 0 else 0.0)
                for (e, _, _), d in zip(rows, demand0, strict=True)
            ]
        )
        self.carry = np.array([float(table.at[e, "carry_cost_per_year"]) for e, _, _ in rows])
        self.normal = self.opening.copy()
        # the markets each holder buys from, weighted by its base-year purchases by edge (set at
        # the first decision, once the model is calibrated)
        self.edges = np.flatnonzero(np.isin(net.edge_buyer, self.buy_slots))
        pos = {int(s): i for i, s in enumerate(self.buy_slots)}
        self.edge_holder = np.array([pos[int(b)] for b in net.edge_buyer[self.edges]], dtype=np.int64)
        self.edge_weight = np.zeros(self.edges.size)
        # per holder: the commodities whose restriction cuts its supply
        self.upstream = np.array(
            [upstream_commodities(net, net.commodities.index(k)) for _, _, k in rows], dtype=bool
        ).reshape(self.size, len(net.commodities))
        # per slot: the holders' stores, whose offers are sold in the spot round like any
        # seller's stock (sim/model.py: ``_book``); and the edges from a holder's store to a
        # holder's desk, closed: holders do not trade with one another
        self.is_store = np.zeros(net.n_slots, bool)
        self.is_store[self.store_slots] = True
        self.wash_edges = np.flatnonzero(
            self.is_store[net.edge_seller] & np.isin(net.edge_buyer, self.buy_slots)
        )
        self.end_belief = np.zeros(self.size)  # the chance a restriction upstream ends this month
        self.opened = False
        self.buy = np.zeros(self.size)
        self.sell = np.zeros(self.size)
        self.target = np.zeros(self.size)
        for n in self.nodes:
            Merchant(model, int(n))

    def initial_stocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The holders' opening stock, placed at their desks before the first month (with the
        stockpiles' first fills, so the run's mass balance counts it)."""
        return [(self.buy_slots, self.opening)]

    def _per_holder(self, values: np.ndarray) -> np.ndarray:
        """Base-purchase-weighted mean over each holder's supply edges of a per-edge value."""
        w = np.bincount(self.edge_holder, weights=self.edge_weight, minlength=self.size)
        v = np.bincount(self.edge_holder, weights=self.edge_weight * values, minlength=self.size)
        return np.divide(v, w, out=np.zeros(self.size), where=w > 0)

    def end_chance(self, model: ModelView) -> np.ndarray:
        """Per holder: the calendar's chance that the export restrictions binding upstream of it
        end within the month, ``1/R``, R the months left (this one included) to the latest
        announced end among the restrictions in force on its commodity or on one it is made from
        (``market.restriction_months`` for one with no end); 0 where none is in force. Only what
        is in force counts, and what has been announced to follow on from it (an instrument
        with an ``announced`` month at or before this one that starts by the end read so far:
        the DRC's 2026-27 quotas, decided in September 2025, after the Oct-Dec 2025 ban); an
        extension without an announcement is a new restriction, news from the month it starts."""
        t = model.state.t
        rest = model.params.market.restriction_months
        restrictions = [p for p in model.policies if getattr(p, "key", None) in RESTRICTIONS]
        ends = np.full(self.size, -1.0)  # the end read so far (exclusive month), -1 none in force
        for p in restrictions:  # a handful of instruments, not markets or edges
            if p.active(t):
                end = p.last if p.has_end else t + rest
                ends = np.where(self._covers(p), np.maximum(ends, end), ends)
        ahead = [
            p
            for p in restrictions
            if p.first > t and getattr(p, "announced", None) is not None and p.announced <= t
        ]
        for _ in ahead:  # chain what follows on: at most one step per announced instrument
            for p in ahead:
                end = p.last if p.has_end else p.first + rest
                follows = self._covers(p) & (ends >= 0) & (p.first <= ends)
                ends = np.where(follows, np.maximum(ends, end), ends)
        left = np.where(ends >= 0, ends - t, 0.0)
        return np.divide(1.0, np.maximum(left, 1.0), out=np.zeros(self.size), where=left > 0)

    def _covers(self, p: object) -> np.ndarray:
        """Per holder: whether instrument ``p`` restricts its commodity or one it is made from."""
        return self.upstream[:, np.asarray(p.commodities, dtype=np.int64)].any(axis=1)  # type: ignore[attr-defined]

    def expected_gain(self, model: ModelView) -> np.ndarray:
        """Per holder: the expected monthly ln price gain of the markets it buys from, net of its
        carrying cost (shrunk toward 0 by ``carry/12``). With a belief ``h`` > 0 that a
        restriction upstream ends (:attr:`end_belief`, from :meth:`end_chance`) it is
        ``(1 − h)·r + h·(ln p_lr − ln p)``: the markets' expected gain ``r`` if the restriction
        goes on, the fall back to their long-run price if it ends."""
        s = model.state
        sellers = model.net.edge_seller[self.edges]
        gain = self._per_holder(s.storage_return[sellers])
        h = self.end_belief
        if h.any():
            market = model.slot_market()[sellers]
            back = self._per_holder(np.log(s.p_lr[market]) - s.log_p[market])
            gain = (1.0 - h) * gain + h * back
        return np.sign(gain) * np.maximum(np.abs(gain) - self.carry / 12.0, 0.0)

    def price(self, model: ModelView) -> np.ndarray:
        """Per holder: the price of the markets it buys from (what it asks when it sells)."""
        market = model.slot_market()[model.net.edge_seller[self.edges]]
        return self._per_holder(np.exp(model.state.log_p[market]))

    def decide(self, model: ModelView) -> None:
        """Take back last month's unsold offer from the store, plan no use, set this month's
        purchases and releases (competitive storage; module docstring) and put the release on
        offer in the store."""
        if self.size == 0:
            return
        s, net, p = model.state, model.net, model.params
        desk, store = self.buy_slots, self.store_slots
        if not self.opened:
            self.edge_weight = model.base_edge_flow[self.edges]
            self.normal = s.stock[desk].copy()  # the opening stock and the desk's 2024 safety stock
            self.opened = True
        back = s.stock[store]
        total = s.stock[desk] + back
        w = np.divide(back, total, out=np.zeros(self.size), where=total > 0)[:, None]
        s.mix[desk] = (1.0 - w) * s.mix[desk] + w * s.mix[store]
        s.stock[desk] = total
        s.stock[store] = 0.0
        s.plan[self.nodes] = 0.0  # nothing is consumed
        build = net.demand0[self.nodes] * model.growth_index(self.nodes)
        learn = p.producers.expectation_weight  # the belief that a restriction ends, adaptive
        self.end_belief = learn * self.end_chance(model) + (1.0 - learn) * self.end_belief
        g = storage_multiple(
            self.expected_gain(model), p.market.storage_response, p.market.storage_max_multiple
        )
        self.target = self.normal * g
        want = build + (self.target - total) / p.producers.stock_adjust_months
        self.buy = np.maximum(want, 0.0)
        self.sell = np.minimum(np.maximum(-want, 0.0), total)
        s.stock[store] = self.sell  # on offer, with the desk's mix
        s.mix[store] = s.mix[desk]
        s.stock[desk] = total - self.sell
        self.normal = self.normal + build

    def market(self, model: ModelView) -> None:
        """This month's orders and offers: purchases on the buying desks' slots, releases and
        their price on the stores' (model.store_*; reset monthly; the stores' offers are sold in
        the spot round, sim/model.py ``_book``). The
        holder's stock sits at its desk, where price formation sees it (stock cover and the
        stock that bridges an expected shortage, sim/prices/) against its target ``N·g``; only
        what it offers this month is in the store."""
        if self.size == 0:
            return
        model.store_request[self.buy_slots] = self.buy
        model.stock_target[self.buy_slots] = self.target
        model.store_offer[self.store_slots] = self.sell
        model.store_price[self.store_slots] = self.price(model)
