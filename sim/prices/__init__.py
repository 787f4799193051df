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

The package: :mod:`.costs` (delivered cost, the price paid at the margin), :mod:`.step`
(shortage, the rationing price and the month's step), :mod:`.anchors` (the normal price and
the anchors prices are pulled toward), :mod:`.expectations` (expected prices, the gain from
holding stock, expected scarcity); :func:`update` runs them in order each month.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim import transit
from critmin.sim.prices.anchors import (
    COST_PLUS_INPUT_SHARE,
    cost_plus_floor,
    cutoff_anchor,
    cutoff_share,
    normal_price,
    storage_anchor,
    storage_limit,
    storage_room_share,
    utilisation_markup,
)
from critmin.sim.prices.costs import delivered_cost, edge_costs, learn_paid, marginal_price
from critmin.sim.prices.expectations import (
    announced_cuts,
    expected_gain,
    expected_scarcity,
    holders_gain,
    horizon_elasticity,
    idle_market_prices,
    price_abroad,
    restricted_exposure,
    restricted_markets,
    smooth,
    storage_multiple,
)
from critmin.sim.prices.layout import _commercial_base, _layout
from critmin.sim.prices.step import (
    buyers_split,
    derived_elasticity,
    in_business,
    rationing_gap,
    restocking_give,
    scarcity,
    storage_clearing,
    update_log_prices,
)

if TYPE_CHECKING:
    from critmin.sim.trading import Cleared
    from critmin.sim.view import ModelView


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
    held_back = restricted_markets(model, cleared, slot_market) if capped else np.zeros(_layout(net).m_count)
    anchor = storage_anchor(
        log_norm,
        s.log_p_ref,
        held_back,
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
    # a market with sellers but nothing to sell (a prospect's country, closed plants) is priced
    # at what its first seller would fetch: the open price abroad
    new = idle_market_prices(new, moving | ~has_sellers, sold, held_back, net.n_commodities)
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


__all__ = [
    "COST_PLUS_INPUT_SHARE",
    "announced_cuts",
    "buyers_split",
    "cost_plus_floor",
    "cutoff_anchor",
    "cutoff_share",
    "delivered_cost",
    "derived_elasticity",
    "edge_costs",
    "expected_gain",
    "expected_scarcity",
    "holders_gain",
    "horizon_elasticity",
    "idle_market_prices",
    "in_business",
    "learn_paid",
    "marginal_price",
    "normal_price",
    "price_abroad",
    "rationing_gap",
    "restocking_give",
    "restricted_exposure",
    "restricted_markets",
    "scarcity",
    "smooth",
    "storage_anchor",
    "storage_clearing",
    "storage_limit",
    "storage_multiple",
    "storage_room_share",
    "update",
    "update_log_prices",
    "utilisation_markup",
]
