"""The 2024 calibration: the baseline every run starts from, built once and shared read-only.

From the world's 2024 data and the market parameters it derives (ODD §7.1):

- each slot's 2024 monthly flow and each end use's in-use stock (steady growth);
- the trade share parameters per edge that reproduce every seller's 2024 sales and the
  observed import shares (iterative proportional fitting, Armington-style);
- the 2024 prices paid, margins, input costs and idling thresholds of every plant;
- the origin mix of every stock, as the fixed point of the 2024 flows.

:func:`calibrate` returns a frozen :class:`Calibration`; :func:`initial_state` turns it into the
first month's :class:`~critmin.sim.state.State`. Both are pure functions of their arguments, so
the calibration is cached per network and parameters (:mod:`critmin.sim.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from critmin.agents import chemistry
from critmin.agents.producer import unit_margin
from critmin.sim import cache, origin
from critmin.sim.market import logit_weights
from critmin.sim.network import INPUT, OUTPUT, STORE, Network, network_content
from critmin.sim.prices import delivered_cost
from critmin.sim.state import State
from critmin.sim.world import DataError


@dataclass(frozen=True)
class Calibration:
    """The 2024 baseline (arrays read-only; per slot, node or edge of the network)."""

    base: np.ndarray  # per slot: 2024 monthly flow (production of outputs, use of inputs)
    in_use: np.ndarray  # per node: 2024 in-use stock of demand centres
    preference: np.ndarray  # per edge: trade share parameter
    error: float  # largest relative misfit left by the trade calibration
    base_edge_flow: np.ndarray  # per edge: 2024 trade
    paid0: np.ndarray  # per slot: 2024 delivered price of inputs
    margin0: np.ndarray  # per node: 2024 margin per unit of activity
    idle_threshold: np.ndarray  # per node: margin below which a plant idles
    input_cost0: np.ndarray  # per node: 2024 input cost per unit of activity
    input_share0: np.ndarray  # per node: input cost over output value, 2024
    mix: np.ndarray  # per slot × origin column: 2024 origin mixes
    in_use_mix: np.ndarray  # per node × origin column
    final_share: np.ndarray  # per commodity: its cost share in the final products it goes into


def in_use_stock(net: Network, demand_nodes: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """In-use stock consistent with steady growth g: ``D / (g + 1/L)`` (monthly units); ``growth``
    is the monthly demand index per end use over the base year's first 13 months (g is the
    growth of its first twelve, whatever the run's length, so a short run is the start of a
    long one)."""
    out = np.zeros(len(net.node_id))
    eu = net.end_use[demand_nodes]
    g = np.log(growth[eu, 12] / growth[eu, 0]) / 12
    out[demand_nodes] = net.demand0[demand_nodes] / (np.maximum(g, 0.0) + 1.0 / net.lifetime_months[eu])
    return out


def final_cost_share(net: Network, base: np.ndarray, slot_price: np.ndarray, rounds: int = 20) -> np.ndarray:
    """Per commodity, its 2024 cost share in the final products it ends up in (1 for what
    manufacturers consume): a process passes on the share of each input in the value of its main
    outputs, times the outputs' own shares; a commodity used several ways takes the mean
    weighted by tonnes used. By-products (scrap) count as made, not as products. Marshall's
    rule: derived demand for an input is its cost share times the final product's elasticity."""
    n_c, n_nodes = net.n_commodities, len(net.node_id)
    scrap = np.array([stage == "scrap" for stage in net.commodity_stage])
    outs = (net.slot_role == OUTPUT) & ~scrap[net.slot_commodity]
    value = net.slot_coef * slot_price
    out_value = np.bincount(net.slot_node[outs], weights=value[outs], minlength=n_nodes)
    ins = (net.slot_role == INPUT) & net.is_facility[net.slot_node]
    share_in = np.divide(
        value, out_value[net.slot_node], out=np.zeros_like(value), where=out_value[net.slot_node] > 0
    )
    final_use = np.zeros(n_c)
    consume = net.consume_slot[net.consume_slot >= 0]
    np.add.at(final_use, net.slot_commodity[consume], base[consume])
    used = np.bincount(net.slot_commodity[ins], weights=base[ins], minlength=n_c) + final_use
    s = np.ones(n_c)
    for _ in range(rounds):
        node_share = np.divide(
            np.bincount(
                net.slot_node[outs], weights=value[outs] * s[net.slot_commodity[outs]], minlength=n_nodes
            ),
            out_value,
            out=np.zeros(n_nodes),
            where=out_value > 0,
        )
        passed = np.bincount(
            net.slot_commodity[ins],
            weights=base[ins] * share_in[ins] * node_share[net.slot_node[ins]],
            minlength=n_c,
        )
        s = np.divide(passed + final_use, used, out=np.ones(n_c), where=used > 0)
    return np.clip(s, 0.0, 1.0)


def base_flows(net: Network, in_use: np.ndarray) -> np.ndarray:
    """2024 monthly flow of each slot (t): production of outputs, use of inputs, scrap collected."""
    flow = net.slot_coef * np.where(net.is_facility, net.activity0, net.demand0)[net.slot_node]
    nodes = np.flatnonzero(net.scrap_slot >= 0)
    eu = net.end_use[nodes]
    flow[net.scrap_slot[nodes]] = in_use[nodes] / net.lifetime_months[eu] * net.collection_rate[eu]
    return flow


def trade_share_groups(
    net: Network, trade_shares: pd.DataFrame, commercial: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """For each trade-share row: the edges into the importers' buyers of the commodity
    (cross-border only for scope 'imports'), which of them come from the origin, the share."""
    out = []
    for row in trade_shares.itertuples(index=False):
        k = net.commodities.index(row.commodity)
        importers = [net.countries.index(c) for c in row.importers.split()]
        edges = commercial & (net.edge_commodity == k) & np.isin(net.edge_to, importers)
        if row.scope == "imports":
            edges &= net.edge_from != net.edge_to
        idx = np.flatnonzero(edges)
        out.append((idx, net.edge_from[idx] == net.countries.index(row.origin), float(row.share)))
    return out


def trade_preferences(
    net: Network, base: np.ndarray, price: np.ndarray, theta: float, commercial: np.ndarray, groups: list
) -> tuple[np.ndarray, float]:
    """Share parameters per edge so that, at 2024 prices, 2024 requests match each seller's
    2024 sales and the observed trade shares in ``trade_shares.csv`` (e.g. 85% of the EU's
    magnets from China).

    Iterative proportional fitting (Armington calibration): one factor per seller slot for
    its output, one pair of factors per trade-share row (the origin's edges into those
    importers, and the other edges). Sellers with no 2024 sales keep a small positive share.
    """
    n_slots = net.n_slots
    request = np.where(net.slot_role == INPUT, base, 0.0)
    target = np.where(net.slot_role == OUTPUT, base, 0.0)
    p_del = delivered_cost(
        price[net.market_index(net.slot_commodity, net.slot_country)[net.edge_seller]], net.edge_transport
    )
    pref_e = np.ones(net.edge_seller.size)
    # plants not yet built (new-capacity nodes) have no 2024 trade: no share parameter; they
    # win orders as capacity comes online (sim/capacity.py)
    seller_node = net.slot_node[net.edge_seller]
    unbuilt = net.is_facility[seller_node] & (net.capacity[seller_node] <= 0)
    active = commercial & ~unbuilt
    for _ in range(500):
        w = logit_weights(p_del, net.edge_buyer, n_slots, theta, pref_e, active)
        flow = w * request[net.edge_buyer]
        asked = np.bincount(net.edge_seller, weights=flow, minlength=n_slots)
        ratio = np.divide(target, asked, out=np.ones(n_slots), where=asked > 0)
        pref_e = pref_e * np.where(net.slot_role == OUTPUT, ratio, 1.0)[net.edge_seller]
        worst = np.abs(ratio[target > 0] - 1).max()
        for edges, from_origin, share in groups:
            total = flow[edges].sum()
            got = flow[edges[from_origin]].sum() / total if total > 0 else share
            if 0 < got < 1:
                pref_e[edges[from_origin]] *= share / got
                pref_e[edges[~from_origin]] *= (1 - share) / (1 - got)
                worst = max(worst, abs(got - share))
        pref_e = np.clip(pref_e / pref_e[active].max(), 1e-9, 1.0)
        if worst < 1e-10:
            break
    # a government stockpile had no 2024 sales to calibrate on; it sells in its own round
    # (last resort), where only stockpiles offer, so its share parameter is neutral
    pref_e[net.slot_role[net.edge_seller] == STORE] = 1.0
    pref_e[unbuilt] = 0.0
    return pref_e, float(worst)


def origin_fixed_point(
    net: Network, flow: np.ndarray, base: np.ndarray, stamp: origin.Stamp, n_columns: int
) -> np.ndarray:
    """Origin mix of every slot consistent with the 2024 flows (per edge) and uses (per slot):
    propagate through the chain until nothing changes (recycling makes it a loop)."""
    inputs = np.flatnonzero(net.slot_role == INPUT)
    mix = stamp(np.zeros((net.n_slots, n_columns)))
    is_input, is_output = net.slot_role == INPUT, net.slot_role == OUTPUT
    for _ in range(500):
        previous = mix
        buyers, _, inflow = origin.group_mix(net.edge_buyer, net.edge_seller, flow, mix)
        mix = np.where(is_input[:, None], 0.0, mix)
        into_inputs = is_input[buyers]
        mix[buyers[into_inputs]] = inflow[into_inputs]
        per_node = origin.node_mix(net.slot_node, inputs, base, mix, len(net.node_id))
        mix = np.where(is_output[:, None], stamp(per_node[net.slot_node]), mix)
        if np.abs(mix - previous).max() < 1e-13:
            break
    return mix


def _margins(
    net: Network, slot_price: np.ndarray, paid0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """2024 margin, idling threshold, input cost and input share per node."""
    n_nodes = len(net.node_id)
    margin0 = unit_margin(net, slot_price, paid0)
    bad = net.is_facility & (margin0 <= 0) & (net.activity0 > 0)
    if bad.any():
        names = [net.node_id[i] for i in np.flatnonzero(bad)[:5]]
        raise DataError(
            f"commodities.csv/processes.csv: the 2024 prices give facilities {names} a "
            "non-positive margin (output value − input cost per unit of activity); expected > 0"
        )
    # Plants that ran in 2024 although their margin was below our cash-cost estimate are
    # taken to have revenue the model does not see (contracts, state support): they idle
    # only when the margin falls 10% below its 2024 level.
    idle = np.minimum(net.cash_cost, 0.9 * margin0)
    ins, outs = net.slot_role == INPUT, net.slot_role == OUTPUT
    cost0 = np.bincount(net.slot_node[ins], weights=net.slot_coef[ins] * paid0[ins], minlength=n_nodes)
    value0 = np.bincount(
        net.slot_node[outs],
        weights=net.slot_coef[outs] * net.price0[net.slot_commodity[outs]],
        minlength=n_nodes,
    )
    share0 = np.clip(np.divide(cost0, value0, out=np.zeros(n_nodes), where=value0 > 0), 0.0, 1.0)
    return margin0, idle, cost0, share0


def calibrate(
    net: Network,
    theta: float,
    trade_shares: pd.DataFrame,
    growth: np.ndarray,
    demand_nodes: np.ndarray,
    origins: origin.Origins,
    stamp: origin.Stamp,
) -> Calibration:
    """The 2024 baseline of a network (see the module docstring)."""
    in_use = in_use_stock(net, demand_nodes, growth)
    base = base_flows(net, in_use)
    # 2024 seller prices as the model holds them (ln p, then exp: the first month's p)
    price = np.exp(np.log(np.repeat(net.price0, net.n_countries)))
    commercial = net.commercial_edges()
    groups = trade_share_groups(net, trade_shares, commercial)
    preference, error = trade_preferences(net, base, price, theta, commercial, groups)
    slot_price = price[net.market_index(net.slot_commodity, net.slot_country)]
    p_del = delivered_cost(slot_price[net.edge_seller], net.edge_transport)
    w = logit_weights(p_del, net.edge_buyer, net.n_slots, theta, preference, commercial)
    edge_flow = w * np.where(net.slot_role == INPUT, base, 0.0)[net.edge_buyer]
    inclusive = np.bincount(net.edge_buyer, weights=w * p_del, minlength=net.n_slots)
    paid0 = np.where(net.slot_role == OUTPUT, 0.0, inclusive)
    margin0, idle, cost0, share0 = _margins(net, slot_price, paid0)
    final_share = final_cost_share(net, base, slot_price)
    mix = origin_fixed_point(net, edge_flow, base, stamp, origins.size)
    in_use_mix = np.zeros((len(net.node_id), origins.size))
    in_use_mix[demand_nodes] = mix[net.consume_slot[demand_nodes]]
    fields: dict[str, Any] = dict(
        base=base, in_use=in_use, preference=preference, error=error, base_edge_flow=edge_flow,
        paid0=paid0, margin0=margin0, idle_threshold=idle, input_cost0=cost0, input_share0=share0,
        mix=mix, in_use_mix=in_use_mix, final_share=final_share,
    )  # fmt: skip
    for value in fields.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return Calibration(**fields)


def cached_calibration(
    net: Network, theta: float, trade_shares: pd.DataFrame, growth: np.ndarray, demand_nodes: np.ndarray,
    origins: origin.Origins, stamp: origin.Stamp, net_digest: str | None = None,
) -> Calibration:  # fmt: skip
    """:func:`calibrate`, once per network, theta and growth table in a process, and kept in the
    disk cache (:func:`critmin.sim.cache.disk_memo`) under the SHA-256 of all its inputs.
    ``net_digest``: the digest of the network's :func:`network_content` where the caller knows
    it is current (a network just compiled or loaded:
    :func:`critmin.sim.network.compile_network_digested`); else it is computed here."""

    def build() -> Calibration:
        args = (net, theta, trade_shares, growth, demand_nodes, origins, stamp)
        return cache.disk_memo(
            "calibration",
            lambda: cache.disk_key(
                "calibration",
                cache.content_digest(net_digest or cache.content_digest(network_content(net)), *args[1:]),
            ),
            lambda: calibrate(*args),
            after_load=cache.freeze,
        )

    key = (id(net), theta, cache.array_key(growth[:, : min(13, growth.shape[1])]))
    return cache.memo("calibration", key, lambda: (net, build()))[1]


def initial_state(net: Network, cal: Calibration, params: Any) -> State:
    """The first month's state: 2024 stocks at their targets, 2024 prices, the calibrated mixes."""
    n_nodes, n_slots = len(net.node_id), net.n_slots
    base = cal.base
    is_out = net.slot_role == OUTPUT
    is_consume = np.zeros(n_slots, bool)
    is_consume[net.consume_slot[net.consume_slot >= 0]] = True
    # buyers at their cover (agents/buying.py: stock_targets), sellers at their finished-stock cover
    cover = net.holder_cover(
        params.producers.input_cover_months, params.demand.safety_stock_months, is_consume
    )
    stock = np.where(is_out, params.market.cover_target_months * base, cover * base)
    log_p = np.log(np.repeat(net.price0, net.n_countries))
    mix = cal.mix.copy()
    d = np.flatnonzero(net.is_demand)
    scrap = net.scrap_slot[d]
    ok = scrap >= 0
    mix[scrap[ok]] = cal.mix[net.consume_slot[d[ok]]]
    return State(
        t=0,
        stock=stock,
        mix=mix,
        log_p=log_p,
        p_exp=np.exp(log_p),
        paid=cal.paid0.copy(),
        expected_paid=cal.paid0.copy(),
        paid0=cal.paid0.copy(),
        margin0=cal.margin0.copy(),
        plan=np.zeros(n_nodes),
        activity=np.zeros(n_nodes),
        capacity_factor=np.ones(n_nodes),
        activity_cap=np.full(n_nodes, np.inf),
        demand_factor=np.ones(n_nodes),
        noise=np.ones(n_nodes),
        outage_left=np.zeros(n_nodes, dtype=np.int64),
        in_use=cal.in_use.copy(),
        in_use_mix=cal.in_use_mix.copy(),
        orders_avg=np.where(is_out, base, 0.0),
        orders_lr=np.where(is_out, base, 0.0),
        log_p_ref=log_p.copy(),
        trend=np.zeros_like(log_p),
        storage_return=np.zeros(n_slots),
        preference=cal.preference,
        capacity=net.capacity.copy(),
        p_lr=np.exp(log_p),
        paid_lr=cal.paid0.copy(),
        intensity=np.ones(n_nodes),
        battery_shares=chemistry.base_shares(params.chemistry),
        below_cost_months=np.zeros(n_nodes),
        run_share=np.ones(n_nodes),  # the base year: every plant running
    )
