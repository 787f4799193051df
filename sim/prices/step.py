"""The month's price step: how short each market was (what buyers asked against what was sold,
the stock cover of its supply chain), the rationing price of a short market and the storage part
of the gap, and the step ``ln p' = ln p + κ·gap − σ·ln(cover) − ρ·(ln p − anchor)`` (ODD §7.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.market import Clearing, logit_weights
from critmin.sim.prices.expectations import storage_multiple
from critmin.sim.prices.layout import _layout

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.trading import Cleared
    from critmin.sim.view import ModelView


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
    """Per market: some seller has capacity this month or stock to sell. A market that is not
    (Japan's magnet makers under the 2010 quotas in the world of 2009, a country before its first
    plant) is not moved by the price rule: with nothing to sell, no cover and no sales, it would
    read as ever more short. It takes the open price abroad instead
    (:func:`critmin.sim.prices.expectations.idle_market_prices`)."""
    s, lay = model.state, _layout(model.net)
    able = (s.capacity * s.capacity_factor)[lay.out_node] > 0
    able |= s.stock[lay.outs] > 0
    return np.bincount(lay.out_market, weights=able, minlength=lay.m_count) > 0
