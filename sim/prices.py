"""Price formation: the one place where prices are made (ODD §7.4).

- **Delivered cost** of an edge: the seller's market price with export and import wedges and
  transport (:func:`delivered_cost`, :func:`edge_costs`).
- **What buyers paid at the margin** and their expectations (:func:`learn_paid`).
- **Seller prices** per market (commodity × country) move each month with the unmet share of
  the requests their sellers received, with the stock cover of their supply chain, and back
  toward a full-cost *normal price* (:func:`update`, :func:`update_log_prices`,
  :func:`normal_price`, :func:`utilisation_markup`).
- **Expected prices** adapt to realised ones (exponential smoothing with the producers'
  expectation weight).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.market import Clearing, logit_weights
from critmin.sim.network import INPUT, OUTPUT, STORE

if TYPE_CHECKING:
    from critmin.policies.base import Wedges
    from critmin.sim.network import Network
    from critmin.sim.trading import Cleared
    from critmin.sim.view import ModelView


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
    net: Network, log_p: np.ndarray, slot_market: np.ndarray, store_price: np.ndarray, wedges: Wedges
) -> np.ndarray:
    """Delivered cost per edge at the current seller prices (stockpiles at their release
    price), with the policy wedges."""
    seller = net.edge_seller
    p_origin = np.exp(log_p)[slot_market[seller]]
    p_origin = np.where(net.slot_role[seller] == STORE, store_price[seller], p_origin)
    return delivered_cost(
        p_origin,
        net.edge_transport,
        export_tax=wedges.export_ad_valorem,
        tariff=wedges.import_ad_valorem,
        specific=wedges.export_specific,
        import_specific=wedges.import_specific,
    )


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


def learn_paid(net: Network, cleared: Cleared, paid: np.ndarray) -> np.ndarray:
    """What each buyer slot paid at the margin this month: the average over spot purchases on
    edges whose cap is not used up (quota imports bought below it carry an infra-marginal rent;
    contract volumes are infra-marginal too); unchanged where it bought nothing at the margin.
    With unlimited offers this equals :func:`marginal_price`, which the LP oracle docks against."""
    open_flow = np.where(cleared.spot_capped, 0.0, cleared.spot_flow)
    got = np.bincount(net.edge_buyer, weights=open_flow, minlength=net.n_slots)
    spent = np.bincount(net.edge_buyer, weights=open_flow * cleared.p_del, minlength=net.n_slots)
    return np.where(got > 0, spent / np.where(got > 0, got, 1.0), paid)


def smooth(expected: np.ndarray, realised: np.ndarray, weight: float) -> np.ndarray:
    """Adaptive expectation: ``weight·realised + (1 − weight)·expected``."""
    return weight * realised + (1 - weight) * expected


def update_log_prices(
    log_p: np.ndarray,
    unmet_share: np.ndarray,
    cover_ratio: np.ndarray,
    *,
    kappa: float,
    sigma: float,
    max_step: float,
    log_p_norm: np.ndarray | None = None,
    rho: float = 0.0,
) -> np.ndarray:
    """``ln p' = ln p + κ·z − σ·ln(cover/target) − ρ·(ln p − ln p_norm)``, clipped to ±``max_step``.

    The last term is a slow pull toward the normal (full-cost) price; without it, a market
    whose stocks were drawn down ratchets its price up and never comes back.

    ``unmet_share`` z ∈ [0, 1] is the share of the requests a region's sellers received that
    they could not serve; ``cover_ratio`` is stock cover over its target (1 at steady state).
    Regions with no cover information pass ``cover_ratio = 1``.
    """
    with np.errstate(divide="ignore"):
        cover_term = np.log(np.clip(cover_ratio, 1e-6, 1e6))
    pull = 0.0 if log_p_norm is None else rho * (log_p - log_p_norm)
    step = np.clip(kappa * unmet_share - sigma * cover_term - pull, -max_step, max_step)
    return log_p + step


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
    scarcity above normal utilisation is priced by the unmet-request term, not twice."""
    out = np.ones(slots.size)
    if phi == 0:
        return out
    node = net.slot_node[slots]
    ok = net.is_facility[node] & (capacity[node] > 0) & main_slot[slots]
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
    ins, outs = net.slot_role == INPUT, net.slot_role == OUTPUT
    cost_now = np.bincount(net.slot_node[ins], weights=net.slot_coef[ins] * s.expected_paid[ins], minlength=n)
    index = np.divide(cost_now, cal.input_cost0, out=np.ones(n), where=cal.input_cost0 > 0)
    share = np.where(model.main_output[outs], cal.input_share0[net.slot_node[outs]], 0.0)
    norm = net.price0[net.slot_commodity[outs]] * (1.0 - share + share * index[net.slot_node[outs]])
    inv = model.investment
    phi = model.params.market.utilisation_price_elasticity
    out_slots = np.flatnonzero(outs)
    norm = norm * utilisation_markup(
        phi, net, s.orders_avg, s.capacity, inv.utilisation_ref, model.main_output, out_slots
    )
    w = np.maximum(s.orders_avg[outs], 1e-12)
    mk = model.slot_market()[outs]
    m_count = net.n_commodities * net.n_countries
    num = np.bincount(mk, weights=w * norm, minlength=m_count)
    den = np.bincount(mk, weights=w, minlength=m_count)
    return np.divide(num, den, out=np.exp(s.log_p), where=den > 0)


def scarcity(
    net: Network, slot_market: np.ndarray, result: Clearing, stock: np.ndarray, stock_target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per market: the unmet share z of the requests its sellers received, the stock cover of
    its supply chain over its target, and whether it has sellers at all.

    Cover counts the sellers' finished stock plus their buyers' input stock, each buyer in
    proportion to what it asked of this market's sellers, over the same sum of stock targets."""
    m_count = net.n_commodities * net.n_countries
    seller_market = slot_market[net.edge_seller]
    asked = np.bincount(seller_market, weights=result.asked, minlength=m_count)
    sold = np.bincount(seller_market, weights=result.flow, minlength=m_count)
    z = np.divide(np.maximum(asked - sold, 0.0), asked, out=np.zeros(m_count), where=asked > 0)
    outs = net.slot_role == OUTPUT
    mk = slot_market[outs]
    asked_by_buyer = np.bincount(net.edge_buyer, weights=result.asked, minlength=net.n_slots)
    share = np.divide(
        result.asked, asked_by_buyer[net.edge_buyer], out=np.zeros_like(result.asked), where=result.asked > 0
    )
    held = np.bincount(mk, weights=stock[outs], minlength=m_count) + np.bincount(
        seller_market, weights=share * stock[net.edge_buyer], minlength=m_count
    )
    target = np.bincount(mk, weights=stock_target[outs], minlength=m_count) + np.bincount(
        seller_market, weights=share * stock_target[net.edge_buyer], minlength=m_count
    )
    has_sellers = np.bincount(mk, minlength=m_count) > 0
    cover = np.divide(held, target, out=np.ones(m_count), where=target > 0)
    cover = np.where(has_sellers & (target <= 0) & (held > 0), 1e6, cover)
    return z, cover, has_sellers


def update(model: ModelView, result: Clearing) -> None:
    """Move every market's seller price (and the expected price) after this month's trade."""
    s, m = model.state, model.params.market
    z, cover, has_sellers = scarcity(model.net, model.slot_market(), result, s.stock, model.stock_target)
    new = update_log_prices(
        s.log_p,
        z,
        cover,
        kappa=m.kappa,
        sigma=m.sigma,
        max_step=m.max_log_step,
        log_p_norm=np.log(normal_price(model)),
        rho=m.rho,
    )
    s.log_p = np.where(has_sellers, new, s.log_p)
    s.p_exp = smooth(s.p_exp, np.exp(s.log_p), model.params.producers.expectation_weight)
