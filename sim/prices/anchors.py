"""The price each market is pulled back toward: the full-cost normal price with its utilisation
markup, the storage anchor of a restricted market, the anchor of buyers cut off from a supplier,
and the cost-plus floor of processors whose input is most of their cost (ODD §7.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.network import STORE
from critmin.sim.prices.layout import _layout

if TYPE_CHECKING:
    from critmin.sim.calibration import Calibration
    from critmin.sim.network import Network
    from critmin.sim.view import ModelView


def utilisation_markup(
    phi: float,
    net: Network,
    orders: np.ndarray,
    capacity: np.ndarray,
    utilisation_ref: np.ndarray,
    main_slot: np.ndarray,
    slots: np.ndarray,
) -> np.ndarray:
    """Per output slot: ``(u/u0)^φ`` on the normal price, with u the plant's orders over its
    capacity and u0 its 2024 utilisation (new plants: their process's), u/u0 bounded to
    [0.5, 1]; φ = ``scenario.market.utilisation_price_elasticity``. 1 in the 2024 steady state.
    A plant with spare capacity undercuts to fill it (a new entrant wins orders this way);
    scarcity above normal utilisation is priced by the unmet-request term, not twice. Capacity
    is what the plant may use this month (after outages, events and production quotas): capacity
    it cannot use is not spare."""
    out = np.ones(slots.size)
    if phi == 0:
        return out
    node = net.slot_node[slots]
    ok = net.is_facility[node] & (capacity[node] > 0) & main_slot[slots] & (utilisation_ref[node] > 0)
    coef = net.slot_coef[slots]
    u = np.divide(orders[slots], coef * capacity[node], out=np.zeros(slots.size), where=ok)
    ratio = np.clip(np.divide(u, utilisation_ref[node], out=np.ones(slots.size), where=ok), 0.5, 1.0)
    return np.where(ok, ratio**phi, 1.0)


def normal_price(model: ModelView) -> np.ndarray:
    """Full-cost anchor per market (cost pass-through), averaged over the market's sellers.

    A seller's normal price for a main output is its 2024 price with the input-cost share
    indexed to today's expected input costs: ``p0·(1 − s + s·c/c0)``. By-products (scrap) and
    outputs of processes without modelled inputs keep their 2024 price, so no loop through
    the recycling chain can inflate itself. Times a utilisation markup: a plant whose orders
    fill less of its capacity than in 2024 prices lower to fill it, one sold out prices higher
    (:func:`utilisation_markup`).
    """
    net, s, cal = model.net, model.state, model.calibration
    n = len(net.node_id)
    lay = _layout(net)
    ins, outs, out_node = lay.ins, lay.outs, lay.out_node
    cost_now = np.bincount(lay.in_node, weights=lay.in_coef * s.expected_paid[ins], minlength=n)
    index = np.divide(cost_now, cal.input_cost0, out=np.ones(n), where=cal.input_cost0 > 0)
    share = np.where(model.main_output[outs], cal.input_share0[out_node], 0.0)
    norm = net.price0[lay.out_commodity] * (1.0 - share + share * index[out_node])
    inv = model.investment
    phi = model.params.market.utilisation_price_elasticity
    out_slots = lay.out_slots
    norm = norm * utilisation_markup(
        phi,
        net,
        s.orders_avg,
        s.capacity * s.capacity_factor,
        inv.utilisation_ref,
        model.main_output,
        out_slots,
    )
    w = np.maximum(s.orders_avg[outs], 1e-12)
    mk, m_count = lay.out_market, lay.m_count
    num = np.bincount(mk, weights=w * norm, minlength=m_count)
    den = np.bincount(mk, weights=w, minlength=m_count)
    return np.divide(num, den, out=np.exp(s.log_p), where=den > 0)


def storage_limit(model: ModelView) -> np.ndarray:
    """Per slot: the most stock its holder can keep, in tonnes: storage and working capital for
    ``cover_target_months × storage_max_multiple`` months of the operation's normal revenue. The
    stores were built for the base year's sales at least: a ban that stops sales does not shrink
    the warehouse. A by-product is a (1 − h) share of its operation's revenue (h the host's share,
    ``net.host_share``; 0 for other plants) and the host business earns and pays for the rest,
    so the same working capital holds ``1/(1 − h)`` times as many months of the by-product (DRC,
    h = 0.78: 6 months of revenue = 27 months of cobalt output)."""
    s, m, net = model.state, model.params.market, model.net
    normal = np.maximum(s.orders_lr, model.calibration.base)
    host = np.minimum(net.host_share[net.slot_node], 0.99)
    return m.cover_target_months * m.storage_max_multiple * normal / (1.0 - host)


def storage_room_share(model: ModelView, slot_market: np.ndarray) -> np.ndarray:
    """Per market: the room its sellers' stores have for speculative stock, 1 while they hold no
    more than their normal stock and falling to 0 at their storage limit (months of normal sales ×
    the largest storage multiple M, :func:`storage_limit`, the limit producers decide by): the free
    share of the limit over its free share at normal stock, ``1 − 1/M``, at most 1. 1 for a market
    with no store."""
    s, m, lay = model.state, model.params.market, _layout(model.net)
    outs, m_count = lay.outs, lay.m_count
    limit = storage_limit(model)
    cap = np.bincount(lay.out_market, weights=limit[outs], minlength=m_count)
    held = np.bincount(lay.out_market, weights=s.stock[outs], minlength=m_count)
    free = np.clip(1.0 - np.divide(held, cap, out=np.zeros(m_count), where=cap > 0), 0.0, 1.0)
    if m.storage_max_multiple <= 1.0:  # no store beyond the normal stock
        return np.zeros(m_count)
    return np.minimum(free / (1.0 - 1.0 / m.storage_max_multiple), 1.0)


def storage_anchor(
    log_norm: np.ndarray,
    log_ref: np.ndarray,
    restricted: np.ndarray,
    room: np.ndarray,
    *,
    rho: float,
    restriction_months: float,
) -> np.ndarray:
    """Per market, the ln price toward which the ρ pull draws it: the normal price, or, in a
    market whose exports are held back, the competitive-storage price (Deaton & Laroque 1992:
    while stock is carried, today's price is the expected price less carrying cost). Its holders
    expect the premium abroad once the restriction lifts, ``(ln p_ref − ln p_norm)⁺ /
    restriction_months`` a month (:func:`expected_gain`), on the share of their exports the
    restriction holds back (``restricted``, :func:`restricted_markets`: the rest is sold abroad
    now), so they keep building stock until the price has risen to where that gain is used up by
    the pull toward cost: ``ln p* = ln p_norm + share·premium/ρ``. Only as far as their storage
    has room (``room``, 1 an empty store, 0 a full one): with the stores full the unsold output
    must clear at home."""
    if rho <= 0:
        return log_norm
    premium = np.maximum(log_ref - log_norm, 0.0) / max(restriction_months, 1e-9)
    return log_norm + np.clip(restricted, 0.0, 1.0) * room * premium / rho


def cutoff_share(
    net: Network,
    slot_market: np.ndarray,
    flow: np.ndarray,
    base_flow: np.ndarray,
    capped: np.ndarray,
) -> np.ndarray:
    """Per market: the share of its buyers' usual supply that a binding restriction cuts off and
    that nobody else has made up this month (a cut-off importer: China's hydroxide buyers under
    the DRC ban, gallium buyers outside China under licensing). A buyer slot's cut is the
    base-flow share of its own supply lost on edges whose cap is used up and that carry less than
    their base-year flow (``base_flow``: commercial edges, 0 on stockpiles'), at most its
    shortfall, ``1 − received/base`` (what open suppliers, its own country's sellers and stock
    holders delivered this month makes part of it up; a buyer that asked less is not short). Only
    the buyer's own edges count: a refinery whose input is cut sells less metal, but the metal's
    price carries that through its cost (:func:`normal_price`), not as a cut of the metal's
    buyers. Per market, the base-flow weighted mean over its open sales edges (the restricted
    exporter's closed edges are left out: its anchor is :func:`storage_anchor`). 0 where nothing
    binds."""
    m_count = net.n_commodities * net.n_countries
    binding = capped & (base_flow > 0) & (flow < base_flow)
    if not binding.any():
        return np.zeros(m_count)
    n, buyer = net.n_slots, net.edge_buyer
    den = np.bincount(buyer, weights=base_flow, minlength=n)
    lost = np.bincount(buyer, weights=np.where(binding, base_flow - np.maximum(flow, 0.0), 0.0), minlength=n)
    got = np.bincount(buyer, weights=np.maximum(flow, 0.0), minlength=n)
    direct = np.divide(lost, den, out=np.zeros(n), where=den > 0)
    short = np.divide(den - got, den, out=np.zeros(n), where=den > 0)
    cut = np.clip(np.minimum(direct, short), 0.0, 1.0)
    w = np.where(binding, 0.0, base_flow)
    mk = slot_market[net.edge_seller]
    wsum = np.bincount(mk, weights=w, minlength=m_count)
    return np.divide(
        np.bincount(mk, weights=w * cut[buyer], minlength=m_count),
        wsum,
        out=np.zeros(m_count),
        where=wsum > 0,
    )


def cutoff_anchor(
    log_anchor: np.ndarray,
    log_norm: np.ndarray,
    cut: np.ndarray,
    held: np.ndarray,
    asked: np.ndarray,
    elasticity: np.ndarray,
    *,
    rho: float,
    months: float,
    headroom: float,
) -> np.ndarray:
    """Per market, the ln price toward which the ρ pull draws a cut-off importer's market: the
    price at which it clears over the restriction's expected span, not its own sellers' full cost.
    The pull toward cost stands for pass-through and entry: toward the cost of the marginal supply
    that can serve the market. When a restriction cuts a share of its buyers' usual supply
    (``cut``, :func:`cutoff_share`) and its own sellers are a sliver, no supply can expand to
    serve it at cost within the restriction's span, so the marginal tonne is priced by demand:
    over ``months`` (``market.restriction_months``) the chain's stocks (``held``, in months of
    what its buyers ask, ``asked``) bridge part of the cut and the rest, ``u_eff``, clears at
    ``ln p_norm + min(ln(1/(1 − u_eff))/η_h, ln choke)`` with η_h the buyers' elasticity over that
    span (:func:`horizon_elasticity`; the level :func:`expected_scarcity` expects). Holders who
    expect that level within the span keep buying until their expected monthly gain,
    ``(level − x)/months``, is used up by the pull toward cost, ``ρ·x``: the anchor is that
    zero-gain point, ``ln p_norm + level/(1 + ρ·months)`` (as :func:`storage_anchor` is for a
    restricted exporter), or ``log_anchor`` (the normal price or the exporter's storage anchor)
    where that is higher; where nothing binds it is ``log_anchor``, so once the restriction ends
    the price is pulled back to cost (no ratchet)."""
    if not (cut > 0).any():
        return log_anchor
    span = max(months, 1e-9)
    cover_months = np.divide(held, asked, out=np.zeros(cut.size), where=asked > 0)
    u_eff = np.clip(cut - cover_months / span, 0.0, 1.0 - 1e-9)
    level = np.minimum(-np.log1p(-u_eff) / np.maximum(elasticity, 1e-3), max(headroom, 0.0))
    rise = level / (1.0 + max(rho, 0.0) * span)
    return np.maximum(log_anchor, np.where(u_eff > 0, log_norm + rise, log_anchor))


# a product whose input is at least this share of its 2024 price (a conversion margin under a
# fifth of it: a month's ordinary move of the input price takes much of it) is quoted cost-plus
# (:func:`cost_plus_floor`). In the model's chains it selects RE metal (0.955-0.968) and synthetic
# graphite anode (0.896); NdFeB alloy (0.785-0.79 since its RE content was corrected to 0.25 t
# metal per t, issue 15; 0.83-0.84 before, when it was selected), magnets (~0.70), refined nickel
# (0.77), refined cobalt (0.61) and separated oxides (~0.37) are not; any threshold in 0.79-0.89
# selects the same [U]. With metal alone at the old alloy price (threshold 0.9) the alloy makers,
# squeezed by the metal's pass-through, cut their orders and China's metal output still fell by
# up to 62% in a month; with the corrected, cheaper alloy its worst no-shock month is -21%
# (seeds 0-3, data/ree) and -32% (data/ree_2026; tests/test_cost_plus.py)
COST_PLUS_INPUT_SHARE = 0.8


class _CostPlusFixed:
    """What :func:`cost_plus_floor` reads that never changes in a run: the plants it may cover
    (refiners whose input is most of their product's cost and whose cost estimate is below their
    2024 margin, not by-product circuits), their input slots and the edges into them (in edge
    order, so every sum is the one over all edges, bit for bit), built once per network and
    calibration."""

    def __init__(
        self, net: Network, cal: Calibration, main_output: np.ndarray, base_flow: np.ndarray
    ) -> None:
        lay = _layout(net)
        refiner = np.array([a == "Refiner" for a in net.node_agent], dtype=bool)
        thin = cal.input_share0 >= COST_PLUS_INPUT_SHARE
        costed = net.cash_cost <= cal.idle_threshold  # its cost estimate is below its 2024 margin
        self.candidate = net.is_facility & refiner & thin & costed & (net.host_share <= 0)
        self.main_out = main_output[lay.outs]
        in_all = np.flatnonzero(lay.ins)
        keep = self.candidate[net.slot_node[in_all]]
        self.in_slots = in_all[keep]
        self.in_node = net.slot_node[self.in_slots]
        self.in_coef = net.slot_coef[self.in_slots]
        self.n_in = self.in_slots.size
        position = np.full(net.n_slots, -1)
        position[self.in_slots] = np.arange(self.n_in)
        self.edges = np.flatnonzero(position[net.edge_buyer] >= 0)
        self.edge_slot = position[net.edge_buyer[self.edges]]
        self.base_flow = base_flow[self.edges]
        self.seller_market = lay.seller_market[self.edges]
        self.from_store = net.slot_role[net.edge_seller[self.edges]] == STORE


_COST_PLUS: dict[tuple[int, int, int, int], tuple[tuple, _CostPlusFixed | None]] = {}


def _cost_plus_fixed(
    net: Network, cal: Calibration, main_output: np.ndarray, base_flow: np.ndarray
) -> _CostPlusFixed | None:
    """The run's :class:`_CostPlusFixed` (None where no plant can be covered), a few kept per
    process; the objects are held with it so that their ids stay unique."""
    objects = (net, cal, main_output, base_flow)
    key = tuple(id(o) for o in objects)
    hit = _COST_PLUS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objects, strict=True)):
        return hit[1]
    fixed = _CostPlusFixed(net, cal, main_output, base_flow)
    if not fixed.candidate.any():
        fixed = None
    if len(_COST_PLUS) >= 8:
        _COST_PLUS.pop(next(iter(_COST_PLUS)))
    _COST_PLUS[key] = (objects, fixed)
    return fixed


def cost_plus_floor(
    model: ModelView, flow: np.ndarray, log_p_old: np.ndarray, log_p_new: np.ndarray, *, passes: int = 8
) -> np.ndarray:
    """Per market, ln of next month's price, raised to where its running processors cover their
    input cost at next month's input prices plus their cash conversion cost (cost-plus
    pass-through for a product whose input is most of its cost, :data:`COST_PLUS_INPUT_SHARE` of
    its 2024 price or more: it does not sell below what the next tonne costs to make; Chinese
    PrNd metal is quoted as oxide cost plus a processing fee, ODD §7). Not for products with a
    wider margin: under the DRC ban refined cobalt rose ×1.95 by Oct 2025 while hydroxide reached
    ×4 by Dec (docs/validation.md), so refiners did not pass their input cost on. Without it a
    20% one-month oxide jump took China's metal price a month or two to follow, the plants'
    margin went negative and the country's metal output fell by half for a month (ODD §9).

    A running plant's input cost is what it paid this month (``paid``) times the move of its
    sellers' prices from ``log_p_old`` to the new prices (tonne-weighted over its edges this
    month, base-year flows for a buyer that bought nothing), plus its fee: its cash cost per
    activity unit (facilities.csv), less what its by-products (scrap) fetch at last month's
    prices. Plants whose cash-cost estimate is above 0.9 of what they earned in 2024 (their idle
    threshold is that 0.9, ODD §7: the estimate is wrong for them; Japan's, Thailand's, Korea's,
    the UK's and Vietnam's metal makers and the new ones modelled on them) are left out: a floor
    from a cost known to be too high priced them out of their market (Japan's share of RE metal
    in 2030 0.65% -> 0.27% of the world in the default run). Where its main outputs' value at last month's prices is below that, they
    must rise by the shortfall; a market takes the orders-weighted
    mean factor over its sellers (1 for the sellers that cover their cost) on last month's price,
    and keeps its new price if that is higher. By-product circuits (their host pays) and
    recyclers (scrap is bought at a payable share of the refined price) are left out, as is
    scrap. ``passes`` carry a raised price down the chain in the same month. It only ever raises
    a price: with margins above the fee (the steady state) it does nothing."""
    net, s, cal = model.net, model.state, model.calibration
    fixed = _cost_plus_fixed(net, cal, model.main_output, model.base_edge_flow)
    if fixed is None:
        return log_p_new
    lay = _layout(net)
    n = len(net.node_id)
    covered = fixed.candidate & (s.activity > 0)
    out_cov = covered[lay.out_node] & fixed.main_out
    if not out_cov.any():
        return log_p_new
    e = fixed.edges  # the edges into the candidates' input slots, in edge order
    w = np.where(flow[e] > 0, flow[e], 0.0)
    got = np.bincount(fixed.edge_slot, weights=w, minlength=fixed.n_in)
    w = np.where(got[fixed.edge_slot] > 0, w, fixed.base_flow)
    wsum = np.bincount(fixed.edge_slot, weights=w, minlength=fixed.n_in)
    in_value = fixed.in_coef * s.paid[fixed.in_slots]
    om = lay.out_market
    weight = np.maximum(s.orders_avg[lay.outs], 1e-12)
    worth = net.slot_coef[lay.outs] * np.exp(log_p_old[om])
    value = np.bincount(lay.out_node, weights=np.where(out_cov, worth, 0.0), minlength=n)
    # what its by-products (scrap) fetch pays part of the cost
    fee = cal.idle_threshold - np.bincount(
        lay.out_node, weights=np.where(fixed.main_out, 0.0, worth), minlength=n
    )
    ok = covered & (value > 0)
    den = np.bincount(om, weights=weight, minlength=lay.m_count)
    out = log_p_new.copy()
    for _ in range(passes):
        m = fixed.seller_market
        ratio = np.where(fixed.from_store, 1.0, np.exp(out[m] - log_p_old[m]))
        moved = np.bincount(fixed.edge_slot, weights=w * ratio, minlength=fixed.n_in)
        r_slot = np.divide(moved, wsum, out=np.ones(fixed.n_in), where=wsum > 0)
        cost = np.bincount(fixed.in_node, weights=in_value * r_slot, minlength=n) + fee
        need = np.divide(cost, value, out=np.ones(n), where=ok)
        factor = np.where(out_cov, np.maximum(need[lay.out_node], 1.0), 1.0)
        num = np.bincount(om, weights=weight * factor, minlength=lay.m_count)
        rise = np.divide(num, den, out=np.ones(lay.m_count), where=den > 0)
        raised = np.where(rise > 1.0, np.maximum(out, log_p_old + np.log(rise)), out)
        if not (raised > out + 1e-12).any():
            break
        out = raised
    return out
