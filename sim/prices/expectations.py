"""Expectations: the expected price and trend (exponential smoothing), the expected gain from
holding stock, the scarcity a binding or announced restriction sends downstream, and the
storage multiple stock holders scale their targets by (competitive storage; ODD §7.4, §7.12)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.market import Clearing
from critmin.sim.network import INPUT, OUTPUT
from critmin.sim.prices.layout import _commercial_base, _layout

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.trading import Cleared
    from critmin.sim.view import ModelView


def smooth(expected: np.ndarray, realised: np.ndarray, weight: float) -> np.ndarray:
    """Adaptive expectation: ``weight·realised + (1 − weight)·expected``."""
    return weight * realised + (1 - weight) * expected


def price_abroad(log_p: np.ndarray, sold: np.ndarray, n_commodities: int) -> np.ndarray:
    """Per market, ln of the price of the same commodity abroad: the other countries' sellers'
    prices weighted by the tonnes they sold (the market's own price where nobody else sold).
    Every market starts at the same 2024 price, so in the steady state it is the market's own;
    inside a country whose exports are restricted it is the outside price."""
    p = np.exp(log_p).reshape(n_commodities, -1)
    w = sold.reshape(n_commodities, -1)
    others = w.sum(axis=1, keepdims=True) - w
    value = (w * p).sum(axis=1, keepdims=True) - w * p
    abroad = np.divide(value, others, out=p.copy(), where=others > 1e-12 * np.maximum(w, 1.0))
    return np.log(abroad).reshape(-1)


def idle_market_prices(
    log_p: np.ndarray, in_business: np.ndarray, sold: np.ndarray, held_back: np.ndarray, n_commodities: int
) -> np.ndarray:
    """Per market, ln price, with every market whose sellers have nothing to sell this month (no
    capacity and no stock: a country before its first plant is built, or one whose plants have
    closed) priced at what its first seller would sell at: the price of the same commodity in
    the markets that are in business and whose exports no restriction holds back
    (``held_back`` 0), weighted by the tonnes they sold (:func:`price_abroad`). That is the
    world price in a free market and the open outside price under a restriction, whose held-back
    exporter sells at home below it. An idle market where no such market sells keeps its price.
    The input side does the same: an idle buyer learns the marginal price over its open edges
    (:func:`critmin.sim.prices.costs.learn_paid`). So an entrant judges its margin at today's
    prices on both sides, not at its market's price from the month its last plant stopped or the
    base year. Markets in business keep ``log_p``."""
    if in_business.all():  # no idle market (most months of most runs)
        return log_p
    open_sold = np.where(in_business & (held_back <= 0), sold, 0.0)
    return np.where(in_business, log_p, price_abroad(log_p, open_sold, n_commodities))


def expected_gain(
    log_p: np.ndarray,
    log_norm: np.ndarray,
    log_abroad: np.ndarray,
    trend: np.ndarray,
    *,
    rho: float,
    restriction_months: float,
    trend_weight: float,
) -> np.ndarray:
    """Expected ln price change over the next month, as a stock holder sees it: the market's own
    pull toward its normal price, ``ρ·(ln p_norm − ln p)``; plus, where the price abroad is
    above normal (the holder's exports are restricted, or its market is cut off from a dearer
    one), the premium it expects to earn once the restriction lifts, which it expects in
    ``restriction_months`` on average: ``(ln p_abroad − ln p_norm)⁺ / restriction_months``; plus
    ``trend_weight`` × the recent trend (extrapolative expectations). Carrying cost is already
    in the 2024 stock targets, so the gain is measured against the 2024 steady state (0 there)."""
    premium = np.maximum(log_abroad - log_norm, 0.0) / max(restriction_months, 1e-9)
    return rho * (log_norm - log_p) + premium + trend_weight * trend


def restricted_exposure(
    net: Network,
    flow: np.ndarray,
    base_flow: np.ndarray,
    capped: np.ndarray,
    commercial: np.ndarray,
    *,
    expected: np.ndarray | None = None,
    depth: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a binding restriction cuts supply, and who downstream depends on it.

    An edge whose cap or quota is used up (a ban, a licence, a quota) and carries less than its
    base-year flow has lost ``1 − flow/base`` of it. A buyer slot's exposure is the base-flow
    weighted share of its supply lost on its own edges or, on open edges, upstream of its
    sellers; a plant's output inherits the value-weighted exposure of its inputs (a refinery
    whose hydroxide is banned will have less metal to sell). ``depth`` passes reach the end of
    every chain. ``expected`` (per edge, optional) adds the share of an announced control that
    has not started yet (it counts as lost for the exposure). Returns (per edge: share lost; per
    slot: buyers' exposure; per slot: sellers' exposure); all 0 where nothing binds."""
    b = np.where(commercial, base_flow, 0.0)
    lost = np.where(capped & (b > 0), np.clip(1.0 - flow / np.where(b > 0, b, 1.0), 0.0, 1.0), 0.0)
    if expected is not None:
        lost = np.maximum(lost, np.where(b > 0, expected, 0.0))
    n = net.n_slots
    u_in = np.zeros(n)
    u_out = np.zeros(n)
    if not lost.any():  # nothing binds (most months)
        return lost, u_in, u_out
    den = np.bincount(net.edge_buyer, weights=b, minlength=n)
    ins, outs = net.slot_role == INPUT, net.slot_role == OUTPUT
    n_nodes = len(net.node_id)
    value = np.where(ins, net.slot_coef * net.price0[net.slot_commodity], 0.0)
    node_value = np.bincount(net.slot_node, weights=value, minlength=n_nodes)
    for _ in range(depth):
        via = lost + (1.0 - lost) * u_out[net.edge_seller]
        u_in = np.divide(
            np.bincount(net.edge_buyer, weights=b * via, minlength=n), den, out=np.zeros(n), where=den > 0
        )
        node_u = np.divide(
            np.bincount(net.slot_node, weights=value * u_in, minlength=n_nodes),
            node_value,
            out=np.zeros(n_nodes),
            where=node_value > 0,
        )
        u_out = np.where(outs, node_u[net.slot_node], 0.0)
    return lost, u_in, u_out


def expected_scarcity(
    net: Network,
    slot_market: np.ndarray,
    base_flow: np.ndarray,
    lost: np.ndarray,
    u_in: np.ndarray,
    u_out: np.ndarray,
    held: np.ndarray,
    asked: np.ndarray,
    elasticity: np.ndarray,
    *,
    months: float,
    headroom: float,
    binding: np.ndarray | None = None,
    above: np.ndarray | None = None,
) -> np.ndarray:
    """Per market, the ln price rise its stock holders expect from a restriction upstream or
    among its buyers' other suppliers, spread over the months they expect it to last: holders
    of a commodity whose supply chain loses a share u of its flow know the shortage will reach
    them once the stocks in between run down (competitive storage: expected future scarcity
    raises today's reservation price). Over ``months`` (``market.restriction_months``) the
    chain's stocks (``held``, in months of what its buyers ask, ``asked``) bridge part of it; what they cannot
    bridge, ``u_eff = u − held/months``, is priced like a shortage, ``ln(1/(1 − u_eff))/η``
    (:func:`rationing_gap`), at most the choke price's ``headroom``: the level, above the normal
    price, the price is expected to reach while the restriction lasts. What holders expect to
    gain is what is left of it above today's price (``above``: per market ``ln p − ln p_norm``,
    default 0): a market already at that level expects no further rise from the restriction
    (and its pull toward the normal price, :func:`expected_gain`, makes them sell). Returns that
    rise divided by ``months``: the expected monthly gain, 0 where nothing binds.
    ``elasticity`` is the buyers' response over the months the restriction is expected to last
    (:func:`horizon_elasticity`).

    u per market is the base-flow weighted mean over its open sales edges of the larger of the
    seller's exposure (its feed is cut) and the buyer's (its other suppliers are cut); an edge
    the restriction itself closes (``binding``; default every edge with a loss) is the
    restricted exporter's, whose expectation is the premium abroad (:func:`expected_gain`), not
    this. Before an announced control starts its edges are still open: the exporter's holders see
    their buyers' coming shortage too, and buyers abroad stock up from them (the pre-control
    rush)."""
    m_count = elasticity.size
    if not lost.any():
        return np.zeros(m_count)
    mk = slot_market[net.edge_seller]
    closed = lost > 0 if binding is None else binding
    w = np.where(closed, 0.0, base_flow)
    exposure = np.maximum(u_out[net.edge_seller], u_in[net.edge_buyer])
    wsum = np.bincount(mk, weights=w, minlength=m_count)
    u = np.divide(
        np.bincount(mk, weights=w * exposure, minlength=m_count), wsum, out=np.zeros(m_count), where=wsum > 0
    )
    cover_months = np.divide(held, asked, out=np.zeros(m_count), where=asked > 0)
    span = max(months, 1e-9)
    u_eff = np.clip(u - cover_months / span, 0.0, 1.0 - 1e-9)
    level = np.minimum(-np.log1p(-u_eff) / np.maximum(elasticity, 1e-3), max(headroom, 0.0))
    rise = level if above is None else np.maximum(level - np.maximum(above, 0.0), 0.0)
    return np.where(u_eff > 0, rise, 0.0) / span


def horizon_elasticity(
    short_run: np.ndarray, ratio: float, months: float, adjust_months: float
) -> np.ndarray:
    """Per market, the elasticity of what buyers want over a horizon of ``months``: the short-run
    (derived) elasticity, plus the part of the long-run response (``ratio`` = η_LR/η_SR) that
    substitution and thrifting build up by then, at rate 1/``adjust_months``
    (``demand.substitution_months``, agents/manufacturer.py ``adapt_intensity``):
    ``η_SR·(1 + (ratio − 1)(1 − exp(−months/adjust_months)))``."""
    built = 1.0 - np.exp(-max(months, 0.0) / max(adjust_months, 1e-9))
    return short_run * (1.0 + (max(ratio, 1.0) - 1.0) * built)


def storage_multiple(gain: np.ndarray, response: float, max_multiple: float) -> np.ndarray:
    """Competitive storage (Deaton & Laroque 1992): holders scale their normal stock target by
    ``exp(β·gain)`` within ``[1/M, M]``: they build stock when prices are expected to rise (an
    export ban that is expected to lift, a rising market) and sell into a spike."""
    m = max(max_multiple, 1.0)
    return np.minimum(np.maximum(np.exp(response * gain), 1.0 / m), m)  # np.clip, without its wrappers


def holders_gain(
    net: Network, slot_market: np.ndarray, result: Clearing, gain: np.ndarray, previous: np.ndarray
) -> np.ndarray:
    """Per slot: the expected gain of the stock it holds. Sellers hold their own market's
    commodity; a buyer's input stock is valued like what it bought this month (its purchases'
    seller markets, by tonnes); a buyer that bought nothing keeps last month's view."""
    lay = _layout(net)
    got = np.bincount(net.edge_buyer, weights=result.flow, minlength=net.n_slots)
    weighted = np.bincount(
        net.edge_buyer, weights=result.flow * gain[lay.seller_market], minlength=net.n_slots
    )
    bought = np.divide(weighted, got, out=previous.copy(), where=got > 0)
    return np.where(lay.outs, gain[slot_market], bought)


def announced_cuts(model: ModelView) -> np.ndarray:
    """Per edge: 1 where an instrument has announced a control that has not started yet
    (instruments declare it through ``announced_edges(t)``, policies/export_controls.py), else 0."""
    out = np.zeros(model.net.edge_seller.size)
    for p in model.policies:
        edges = p.announced_edges(model.state.t)
        if edges is not None:
            out[edges] = 1.0
    return out


def restricted_markets(model: ModelView, cleared: Cleared, slot_market: np.ndarray) -> np.ndarray:
    """Per market: the share of its sellers' base-year exports (seller and buyer in different
    countries) that a restriction holds back this month: on export edges whose cap is used up (a
    ban, a licence, a quota), the base-year flow they no longer carry. 0 where nothing binds; 1
    under a full ban; a ban on one destination holds back only that destination's share."""
    net = model.net
    base, exports = _commercial_base(model)
    lay = _layout(net)
    abroad, m_count, mk = lay.abroad, lay.m_count, lay.seller_market
    lost = np.where(cleared.spot_capped & abroad, np.maximum(base - cleared.result.flow, 0.0), 0.0)
    held = np.bincount(mk, weights=lost, minlength=m_count)
    return np.clip(np.divide(held, exports, out=np.zeros(m_count), where=exports > 0), 0.0, 1.0)
