"""Price formation: the one place where prices are made (ODD §7.4).

- **Delivered cost** of an edge: the seller's market price with export and import wedges and
  transport (:func:`delivered_cost`, :func:`edge_costs`).
- **What buyers paid at the margin** and their expectations (:func:`learn_paid`).
- **Seller prices** per market (commodity × country) move each month toward the *rationing
  price* when their sellers could not serve what was asked (scarcity is priced: the price at
  which buyers would ask only what is on offer: what they asked to rebuild stock is given up
  at a small rise, through the storage motive (:func:`restocking_give`); only use left unserved
  is rationed by the short-run demand elasticity, capped by the value of lost output), with the
  stock cover of their supply chain, and back toward a full-cost *normal price*
  (:func:`update`, :func:`rationing_gap`, :func:`update_log_prices`, :func:`normal_price`,
  :func:`utilisation_markup`).
- **Expected prices** adapt to realised ones (exponential smoothing with the producers'
  expectation weight); the **expected gain from holding stock** (:func:`expected_gain`) reverts
  toward the normal price at the market's own speed, plus an extrapolated trend, plus the
  **scarcity a binding restriction announces downstream** (:func:`restricted_exposure`,
  :func:`expected_scarcity`): stock holders scale their targets by it (:func:`storage_multiple`,
  competitive storage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim import transit
from critmin.sim.market import Clearing, logit_weights
from critmin.sim.network import INPUT, OUTPUT, STORE

if TYPE_CHECKING:
    from critmin.policies.base import Wedges
    from critmin.sim.calibration import Calibration
    from critmin.sim.network import Network
    from critmin.sim.trading import Cleared
    from critmin.sim.view import ModelView


class _Layout:
    """What price formation reads of the network every month and that never changes in a run:
    slot and edge masks, their markets, and which markets have sellers (computed once per
    network, :func:`_layout`)."""

    def __init__(self, net: Network) -> None:
        self.m_count = net.n_commodities * net.n_countries
        slot_market = net.market_index(net.slot_commodity, net.slot_country)
        self.outs = net.slot_role == OUTPUT
        self.ins = net.slot_role == INPUT
        self.out_slots = np.flatnonzero(self.outs)
        self.out_node = net.slot_node[self.outs]
        self.out_commodity = net.slot_commodity[self.outs]
        self.out_market = slot_market[self.outs]
        self.in_node = net.slot_node[self.ins]
        self.in_coef = net.slot_coef[self.ins]
        self.seller_market = slot_market[net.edge_seller]
        self.abroad = net.slot_country[net.edge_seller] != net.slot_country[net.edge_buyer]
        self.from_store = net.slot_role[net.edge_seller] == STORE
        self.any_store = bool(self.from_store.any())
        self.slot_market = slot_market
        self.has_sellers = np.bincount(self.out_market, minlength=self.m_count) > 0
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        # a read-only per-slot market array found equal to ``slot_market`` (:func:`edge_costs`)
        self.checked_slot_market: np.ndarray | None = None


_LAYOUTS: dict[int, tuple[Network, _Layout]] = {}


_BASES: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _commercial_base(model: ModelView) -> tuple[np.ndarray, np.ndarray]:
    """Per edge: the base-year flow of commercial edges (0 on stockpiles' edges), and per market
    its sellers' base-year exports; fixed for a run, built once per calibration and network."""
    base_flow, commercial = model.base_edge_flow, model.commercial_edges
    hit = _BASES.get(id(base_flow))
    if hit is not None and hit[0] is base_flow and hit[1] is commercial:
        return hit[2], hit[3]
    lay = _layout(model.net)
    base = np.where(commercial, base_flow, 0.0)
    exports = np.bincount(lay.seller_market, weights=np.where(lay.abroad, base, 0.0), minlength=lay.m_count)
    base.flags.writeable = exports.flags.writeable = False
    if len(_BASES) >= 8:
        _BASES.pop(next(iter(_BASES)))
    _BASES[id(base_flow)] = (base_flow, commercial, base, exports)
    return base, exports


def _layout(net: Network) -> _Layout:
    """The network's :class:`_Layout`, built once per network (a few kept per process; the
    network is held with it so that its id stays unique)."""
    hit = _LAYOUTS.get(id(net))
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_LAYOUTS) >= 8:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    out = _LAYOUTS[id(net)] = (net, _Layout(net))
    return out[1]


def delivered_cost(
    p_origin: np.ndarray,
    transport: np.ndarray,
    export_tax: np.ndarray | float = 0.0,
    tariff: np.ndarray | float = 0.0,
    specific: np.ndarray | float = 0.0,
    import_specific: np.ndarray | float = 0.0,
) -> np.ndarray:
    """``p_del = (p_o·(1+export_tax) + specific + transport)·(1+tariff) + import_specific`` per
    edge (DESIGN §3.1): ad valorem and specific export taxes, then import tariffs."""
    return (p_origin * (1.0 + export_tax) + specific + transport) * (1.0 + tariff) + import_specific


def edge_costs(
    net: Network,
    log_p: np.ndarray,
    slot_market: np.ndarray,
    store_price: np.ndarray,
    wedges: Wedges | None,
) -> np.ndarray:
    """Delivered cost per edge at the current seller prices (stockpiles at their release
    price), with the policy wedges (``None``: no instrument set one this month)."""
    seller = net.edge_seller
    lay = _layout(net)
    p_origin = np.exp(log_p)[_seller_market(lay, slot_market, seller)]
    if lay.any_store:
        p_origin = np.where(lay.from_store, store_price[seller], p_origin)
    if wedges is None:  # (p·(1 + 0) + 0 + transport)·(1 + 0) + 0, bit for bit
        out = p_origin + net.edge_transport
        out += 0.0  # what adding a 0 wedge does to a -0.0
        return out
    return delivered_cost(
        p_origin,
        net.edge_transport,
        export_tax=wedges.export_ad_valorem,
        tariff=wedges.import_ad_valorem,
        specific=wedges.export_specific,
        import_specific=wedges.import_specific,
    )


def _seller_market(lay: _Layout, slot_market: np.ndarray, seller: np.ndarray) -> np.ndarray:
    """``slot_market[seller]``: the layout's fixed copy when ``slot_market`` is a read-only
    array already found equal to the network's markets (the model's, every month)."""
    if slot_market is lay.checked_slot_market:
        return lay.seller_market
    if not slot_market.flags.writeable and np.array_equal(slot_market, lay.slot_market):
        lay.checked_slot_market = slot_market
        return lay.seller_market
    return slot_market[seller]


def marginal_price(
    p_del: np.ndarray,
    buyer: np.ndarray,
    n_buyers: int,
    theta: float,
    preference: np.ndarray,
    capped: np.ndarray,
) -> np.ndarray:
    """Price each buyer faces for one more tonne: the logit-inclusive delivered cost over its
    edges whose cap or quota is not used up (NaN for a buyer with none).

    Quota imports bought below this price carry a rent; it is infra-marginal and must not
    drive demand (the LP oracle's demand price is this marginal price).
    """
    open_edge = ~capped & np.isfinite(p_del)
    w = logit_weights(p_del, buyer, n_buyers, theta, preference, open_edge)
    has = np.bincount(buyer, weights=open_edge.astype(float), minlength=n_buyers) > 0
    price = np.bincount(buyer, weights=w * np.where(open_edge, p_del, 0.0), minlength=n_buyers)
    return np.where(has, price, np.nan)


def learn_paid(
    net: Network, cleared: Cleared, paid: np.ndarray, theta: float, preference: np.ndarray
) -> np.ndarray:
    """What each buyer slot paid at the margin this month: the average over spot purchases on
    edges whose cap is not used up (quota imports bought below it carry an infra-marginal rent;
    contract volumes are infra-marginal too). A buyer that bought nothing at the margin learns
    the price it would have paid, :func:`marginal_price` over its open edges (with unlimited
    offers the two are equal, which the LP oracle docks against); only one with no open edge
    keeps what it paid last. So an idle plant sees its input prices fall back and can restart:
    with its last price kept it read the spike that idled it for good."""
    open_flow = np.where(cleared.spot_capped, 0.0, cleared.spot_flow)
    got = np.bincount(net.edge_buyer, weights=open_flow, minlength=net.n_slots)
    spent = np.bincount(net.edge_buyer, weights=open_flow * cleared.p_del, minlength=net.n_slots)
    out = np.where(got > 0, spent / np.where(got > 0, got, 1.0), paid)
    idle = np.flatnonzero(got[net.edge_buyer] <= 0)
    if idle.size:  # only the edges of buyers that bought nothing
        e = net.edge_buyer[idle]
        would = marginal_price(
            cleared.p_del[idle], e, net.n_slots, theta, preference[idle], cleared.spot_capped[idle]
        )
        out = np.where(np.isnan(would), out, would)
    return out


def smooth(expected: np.ndarray, realised: np.ndarray, weight: float) -> np.ndarray:
    """Adaptive expectation: ``weight·realised + (1 − weight)·expected``."""
    return weight * realised + (1 - weight) * expected


def rationing_gap(
    asked: np.ndarray, sold: np.ndarray, elasticity: np.ndarray | float, headroom: np.ndarray | float = np.inf
) -> np.ndarray:
    """ln gap from today's price to the rationing price: ``ln(asked/sold)/η``, the price rise at
    which buyers with short-run demand elasticity η would ask only what was sold; 0 in a market
    that served every request. At most ``headroom`` (the ln distance to the choke price, where
    the value of lost output caps what buyers pay); a market that sold nothing of what was asked
    goes to the cap."""
    eta = np.maximum(elasticity, 1e-3)
    with np.errstate(divide="ignore", invalid="ignore"):
        shortage = np.where(asked > sold, np.log(np.maximum(asked, 1e-300) / np.maximum(sold, 1e-300)), 0.0)
    return np.clip(shortage / eta, 0.0, np.maximum(headroom, 0.0))


def restocking_give(
    request: np.ndarray,
    use: np.ndarray,
    stock: np.ndarray,
    target: np.ndarray,
    multiple: np.ndarray,
    unmet: np.ndarray,
    *,
    adjust_months: np.ndarray | float,
    response: float,
    rho: float,
    max_multiple: float,
    bounded: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per buyer slot: the unserved tonnes it would give up at a higher price because they were
    asked to rebuild stock, and the ln price rise at which it would.

    A buyer asks ``use + (target − stock)/adjust`` (agents/buying.py), with its target scaled by
    the storage multiple ``exp(β·gain)`` and the gain falling by ρ per unit of ln price
    (:func:`expected_gain`, :func:`storage_multiple`). A price rise x scales the target by
    ``exp(−βρx)``, down to the multiple's floor ``1/M``: the request falls by
    ``target·(1 − exp(−βρx))/adjust``. So the part of an unserved request that was stock-building
    clears at ``x = −ln(1 − given·adjust/target)/(βρ)``, a small rise (competitive storage:
    holders, not users, absorb a tightening market); the rest is use, rationed by willingness
    to pay (:func:`rationing_gap`). ``bounded``: the rise is at most ``ln(M·g)/(βρ)``, the rise
    that takes the multiple g to its floor (a request above what the target explains, a supply
    line, is not given up by a higher price; unbounded, such a buyer reads a rise of up to
    ``−ln(1e-12)/(βρ)`` = 18 in ln, which the choke price then caps). With ``max_multiple`` = 1
    the floor is the normal stock: what is given is the speculative part, stock held above
    normal because a rise is expected, given up at a rise of at most ``ln(g)/(βρ)`` (bounded),
    where the holder's expected gain is 0. With storage off (β = 0) nothing is given."""
    given = np.zeros(request.size)
    rise = np.zeros(request.size)
    if response <= 0 or rho <= 0:
        return given, rise
    normal = np.divide(target, multiple, out=np.zeros(request.size), where=multiple > 0)
    at_floor = np.maximum(use + (normal / max(max_multiple, 1.0) - stock) / adjust_months, 0.0)
    given = np.clip(np.minimum(unmet, request - at_floor), 0.0, None)
    left = 1.0 - np.divide(given * adjust_months, target, out=np.ones(request.size), where=target > 0)
    rise = np.where(given > 0, -np.log(np.maximum(left, 1e-12)) / (response * rho), 0.0)
    if bounded:
        # the multiple cannot fall below its floor: beyond ln(M·g)/(βρ) a rise gives up nothing
        # more (a request above what the target explains, e.g. a supply line, is not stock-building)
        floor_rise = np.log(np.maximum(max(max_multiple, 1.0) * multiple, 1.0)) / (response * rho)
        rise = np.minimum(rise, floor_rise)
    return given, rise


def derived_elasticity(model: ModelView) -> np.ndarray:
    """Per market, the short-run elasticity of what its buyers want: the final products'
    elasticity times the commodity's cost share in them (Marshall's rule of derived demand,
    sim/calibration.py ``final_cost_share``): a small-cost input is rationed by a large price rise."""
    share = np.repeat(model.calibration.final_share, model.net.n_countries)
    return model.params.demand.price_elasticity * share


def update_log_prices(
    log_p: np.ndarray,
    gap: np.ndarray,
    cover_ratio: np.ndarray,
    *,
    kappa: float,
    sigma: float,
    max_step: float,
    log_p_norm: np.ndarray | None = None,
    rho: float = 0.0,
    storage_gap: np.ndarray | None = None,
    storage_kappa: float = 0.0,
) -> np.ndarray:
    """``ln p' = ln p + κ·gap + (κ_s − κ)⁺·gap_s − σ·ln(cover/target) − ρ·(ln p − ln p_norm)``,
    clipped to ±``max_step``.

    ``gap`` is the ln distance to the clearing price (:func:`rationing_gap`; κ is the share of
    it closed in a month); ``storage_gap`` (at most ``gap``) is the part of it that comes from
    holders' storage decisions: the rise at which buyers give up the stock-building part of
    their unserved requests down to their normal stock (:func:`storage_clearing`,
    ``speculative``: the stock they bid for because they expect a rise). Stocks are an asset,
    so holders' reservation price moves as soon as their expectations do (competitive storage:
    Deaton & Laroque 1992, Williams & Wright 1991): that part closes at the storage speed κ_s
    (``market.storage_kappa``; 1 = within the month), never slower than κ, while the rest, the
    rationing of use by willingness to pay (contracts, negotiations, substitution), keeps κ. So
    the step is ``κ_s·gap_s + κ·(gap − gap_s)``; with κ_s ≤ κ (0: off) it is ``κ·gap``, the price
    step before the split. ``cover_ratio`` is stock cover over its target (1 at steady state;
    regions with no cover information pass 1). The last term pulls the price back toward the
    normal (full-cost) price: once supply recovers the gap is 0 and prices return toward cost,
    so a shortage leaves no ratchet.
    """
    with np.errstate(divide="ignore"):
        cover_term = np.log(np.clip(cover_ratio, 1e-6, 1e6))
    pull = 0.0 if log_p_norm is None else rho * (log_p - log_p_norm)
    move = kappa * gap
    faster = max(storage_kappa - kappa, 0.0)
    if storage_gap is not None and faster > 0:
        move = move + faster * np.minimum(np.maximum(storage_gap, 0.0), np.maximum(gap, 0.0))
    step = np.clip(move - sigma * cover_term - pull, -max_step, max_step)
    return log_p + step


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


def buyers_split(model: ModelView, cleared: Cleared) -> np.ndarray:
    """Per edge: the share of its buyer's demand the buyer means for this seller, the logit
    split over the edges it may buy on at this month's delivered costs (whether or not the
    seller had stock left: a sold-out seller is where the shortage is). Edges closed by a ban,
    or whose cap or quota is used up, get none: what a quota holds back raises the prices of
    the sellers buyers turn to, not the restricted exporter's."""
    net = model.net
    open_edge = model.commercial_edges & ~cleared.spot_capped & np.isfinite(cleared.p_del)
    return logit_weights(
        cleared.p_del,
        net.edge_buyer,
        net.n_slots,
        model.params.market.theta,
        model.state.preference,
        open_edge,
    )


def scarcity(
    net: Network,
    slot_market: np.ndarray,
    result: Clearing,
    stock: np.ndarray,
    stock_target: np.ndarray,
    share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per market: what its sellers sold and what their buyers still wanted (sold plus the
    requests left unserved after every pass, each buyer's unserved tonnes shared over the markets
    by ``share``, its intended split :func:`buyers_split`: a seller that sold out while its
    buyers were served elsewhere is not short), the stock cover of its supply chain over its
    target, whether it has sellers at all, and the stock held (tonnes).

    Cover counts the sellers' finished stock plus their buyers' input stock, each buyer in
    proportion to its split, over the same sum of stock targets."""
    lay = _layout(net)
    m_count, seller_market, outs, mk = lay.m_count, lay.seller_market, lay.outs, lay.out_market
    sold = np.bincount(seller_market, weights=result.flow, minlength=m_count)
    held = np.bincount(mk, weights=stock[outs], minlength=m_count) + np.bincount(
        seller_market, weights=share * stock[net.edge_buyer], minlength=m_count
    )
    target = np.bincount(mk, weights=stock_target[outs], minlength=m_count) + np.bincount(
        seller_market, weights=share * stock_target[net.edge_buyer], minlength=m_count
    )
    unserved = np.bincount(seller_market, weights=share * result.unmet[net.edge_buyer], minlength=m_count)
    has_sellers = lay.has_sellers
    cover = np.divide(held, target, out=np.ones(m_count), where=target > 0)
    cover = np.where(has_sellers & (target <= 0) & (held > 0), 1e6, cover)
    return sold + unserved, sold, cover, has_sellers, held


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


def storage_clearing(
    model: ModelView,
    slot_market: np.ndarray,
    result: Clearing,
    share: np.ndarray,
    *,
    speculative: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per market: the ln price rise at which its buyers would give up the stock-building part
    of their unserved requests (the tonne-weighted mean of :func:`restocking_give`), and those
    tonnes, each buyer's shared over the markets by its intended split ``share``. Only plants'
    and manufacturers' own stocks count; governments' stockpile purchases are policy, not
    storage arbitrage. ``speculative``: only the stock-building above the holders' normal stock
    (the storage multiple's floor taken as 1), the part that holders bid for because they expect
    a rise: its rise is the storage gap that closes at the storage speed κ_s
    (:func:`update_log_prices`). Rebuilding a depleted stock up to normal is not speculation:
    it stays with the rationing part, at κ."""
    s, net, p = model.state, model.net, model.params
    m_count = net.n_commodities * net.n_countries
    buyer = _layout(net).ins
    multiple = storage_multiple(s.storage_return, p.market.storage_response, p.market.storage_max_multiple)
    given, rise = restocking_give(
        np.where(buyer, model.last_request, 0.0),
        model.last_use,
        s.stock,
        np.where(buyer, model.stock_target, 0.0),
        multiple,
        np.where(buyer, result.unmet, 0.0),
        adjust_months=model.restock_months,
        response=p.market.storage_response,
        rho=p.market.rho,
        max_multiple=1.0 if speculative else p.market.storage_max_multiple,
        bounded=speculative,
    )
    seller_market = _layout(net).seller_market
    w = share * given[net.edge_buyer]
    tonnes = np.bincount(seller_market, weights=w, minlength=m_count)
    weighted = np.bincount(seller_market, weights=w * rise[net.edge_buyer], minlength=m_count)
    return np.divide(weighted, tonnes, out=np.zeros(m_count), where=tonnes > 0), tonnes


def in_business(model: ModelView, slot_market: np.ndarray) -> np.ndarray:
    """Per market: some seller has capacity this month or stock to sell. A market whose every
    plant has closed (Japan's magnet makers under the 2010 quotas in the world of 2009) keeps its
    last price: with nothing to sell, no cover and no sales, it would otherwise read as ever more
    short."""
    s, lay = model.state, _layout(model.net)
    able = (s.capacity * s.capacity_factor)[lay.out_node] > 0
    able |= s.stock[lay.outs] > 0
    return np.bincount(lay.out_market, weights=able, minlength=lay.m_count) > 0


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


def update(model: ModelView, cleared: Cleared) -> None:
    """Move every market's seller price after this month's trade, then the expectations made
    from it: the expected price, the trend, and the expected gain from holding stock."""
    s, m, net = model.state, model.params.market, model.net
    slot_market = model.slot_market()
    result = cleared.result
    share = buyers_split(model, cleared)
    stock, target = transit.with_supply_line(  # cargo afloat is the buyers' stock (sim/transit.py)
        s.stock, s.in_transit, model.stock_target, model.normal_afloat, model.last_use, model.calibration.base
    )
    asked, sold, cover, has_sellers, held = scarcity(net, slot_market, result, stock, target, share)
    log_norm = np.log(normal_price(model))
    headroom = log_norm + np.log(m.choke_price_multiple) - s.log_p
    eta = derived_elasticity(model)
    stock_gap, restocking = storage_clearing(model, slot_market, result, share)
    spec_gap = None
    if m.storage_kappa > m.kappa:
        spec_gap = storage_clearing(model, slot_market, result, share, speculative=True)[0]
    gap = np.maximum(stock_gap, rationing_gap(asked - restocking, sold, eta, headroom))
    # no edge's cap or quota used up (every month of a run without a restriction): nothing is
    # held back or cut off, and the terms below that read it are 0 (skipped, bit for bit)
    capped = bool(cleared.spot_capped.any())
    anchor = storage_anchor(
        log_norm,
        s.log_p_ref,
        restricted_markets(model, cleared, slot_market) if capped else np.zeros(_layout(net).m_count),
        storage_room_share(model, slot_market),
        rho=m.rho,
        restriction_months=m.restriction_months,
    )
    expected = announced_cuts(model)
    eta_horizon = None
    if capped or expected.any():
        eta_horizon = horizon_elasticity(  # buyers' elasticity over a restriction's horizon
            eta,
            model.params.demand.long_run_elasticity / max(model.params.demand.price_elasticity, 1e-9),
            m.restriction_months,
            model.params.demand.substitution_months,
        )
    if capped:
        anchor = cutoff_anchor(
            anchor,
            log_norm,
            cutoff_share(net, slot_market, result.flow, _commercial_base(model)[0], cleared.spot_capped),
            held,
            asked,
            eta_horizon,
            rho=m.rho,
            months=m.restriction_months,
            headroom=float(np.log(m.choke_price_multiple)),
        )
    room = np.maximum(headroom, 0.0)
    new = update_log_prices(
        s.log_p,
        np.minimum(gap, room),
        cover,
        kappa=m.kappa,
        sigma=m.sigma,
        max_step=m.max_log_step,
        log_p_norm=anchor,
        rho=m.rho,
        storage_gap=None if spec_gap is None else np.minimum(spec_gap, room),
        storage_kappa=m.storage_kappa,
    )
    moving = has_sellers & in_business(model, slot_market)
    new = np.where(moving, new, s.log_p)
    new = np.where(moving, cost_plus_floor(model, result.flow, s.log_p, new), new)
    s.trend = smooth(s.trend, new - s.log_p, model.params.producers.expectation_weight)
    s.log_p = new
    s.p_exp = smooth(s.p_exp, np.exp(s.log_p), model.params.producers.expectation_weight)
    log_abroad = price_abroad(s.log_p, sold, net.n_commodities)
    s.log_p_ref = np.maximum(log_norm, log_abroad)
    gain = expected_gain(
        s.log_p,
        log_norm,
        log_abroad,
        s.trend,
        rho=m.rho,
        restriction_months=m.restriction_months,
        trend_weight=m.trend_weight,
    )
    if eta_horizon is None:  # nothing binds nor is announced: no expected scarcity (+ 0.0 as its zeros)
        s.storage_return = holders_gain(net, slot_market, result, gain + 0.0, s.storage_return)
        return
    base = model.base_edge_flow
    lost, u_in, u_out = restricted_exposure(
        net, result.flow, base, cleared.spot_capped, model.commercial_edges, expected=expected
    )
    binding = cleared.spot_capped & (lost > 0) & (result.flow < base)  # closed now, not only announced
    gain = gain + expected_scarcity(
        net,
        slot_market,
        _commercial_base(model)[0],
        lost,
        u_in,
        u_out,
        held,
        asked,
        eta_horizon,
        months=m.restriction_months,
        headroom=float(np.log(m.choke_price_multiple)),
        binding=binding,
        above=s.log_p - log_norm,
    )
    s.storage_return = holders_gain(net, slot_market, result, gain, s.storage_return)
