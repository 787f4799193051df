"""The purchasing rule every buyer (processor or manufacturer) shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from critmin.sim import transit
from critmin.sim.network import INPUT
from critmin.sim.prices import storage_multiple

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.state import State


def stock_request(
    use: np.ndarray, stock: np.ndarray, target: np.ndarray, adjust_months: np.ndarray | float
) -> np.ndarray:
    """Buy this month's use plus a share of the gap to the target stock (never negative); the
    gap closes over ``adjust_months`` (a standard stock-adjustment rule, Sterman 2000 ch. 17)."""
    return np.maximum(use + (target - stock) / adjust_months, 0.0)


def holding_multiple(s: State, params: Any) -> np.ndarray:
    """Per slot: the holder's storage multiple on its normal stock target (sim/prices/)."""
    m = params.market
    return storage_multiple(s.storage_return, m.storage_response, m.storage_max_multiple)


def seller_stock_target(s: State, params: Any) -> np.ndarray:
    """Per slot: a seller's target stock of finished product, months of orders times its storage
    multiple. Its speculative stock (multiple above 1) is held on its normal sales, so a producer
    whose exports are banned keeps producing into stock while it expects the ban to lift, up to
    its storage limit; in a spike (multiple below 1) it sells stock down."""
    g = holding_multiple(s, params)
    normal = s.orders_avg * np.minimum(g, 1.0) + s.orders_lr * np.maximum(g - 1.0, 0.0)
    return params.market.cover_target_months * normal


def stock_targets(net: Network, s: State, params: Any, use: np.ndarray, is_consume: np.ndarray) -> np.ndarray:
    """Every holder's target stock, per slot: buyers hold months of use times their storage
    multiple (competitive storage: more when the price is expected to rise, less in a spike);
    sellers :func:`seller_stock_target`. The months: a plant's processes.csv
    ``input_cover_months`` where given, else its input's commodities.csv ``buyer_cover_months``
    (a chain whose sources say what its users hold: gallium), else ``producers.input_cover_months``;
    a manufacturer's ``buyer_cover_months`` where given, else ``demand.safety_stock_months``."""
    cover = net.holder_cover(
        params.producers.input_cover_months, params.demand.safety_stock_months, is_consume
    )
    return np.where(
        net.slot_role == INPUT, cover * use * holding_multiple(s, params), seller_stock_target(s, params)
    )


def restocking(net: Network, params: Any, demand_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, fixed for a run: whether it is a manufacturer's (demand centre's) slot, and the
    months over which its holder closes the gap to its stock target (manufacturers' demand
    setting, plants' producer setting)."""
    is_consume = np.zeros(net.n_slots, bool)
    is_consume[net.consume_slot[demand_nodes]] = True
    adjust = np.where(is_consume, params.demand.stock_adjust_months, params.producers.stock_adjust_months)
    return is_consume, adjust


def purchase_requests(
    net: Network,
    s: State,
    params: Any,
    is_consume: np.ndarray,
    adjust: np.ndarray,
    normal_afloat: np.ndarray | None = None,
    base_use: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every buyer's request this month: planned use plus a share of the gap to its stock target
    (manufacturers hold their safety stock, plants their input cover; sellers' target is their
    finished-stock cover of orders; ``is_consume`` and ``adjust`` from :func:`restocking`).
    A buyer on routes that take months (sim/transit.py; ``normal_afloat`` its base-year cargo
    afloat, ``base_use`` its base-year use) also closes the gap between the cargo it has afloat
    and its supply line target over the same months (Sterman 2000 ch. 17): 0 in the steady state;
    under a ban it asks more as its pipeline drains.
    Returns (request, use, stock target), per slot; use is 0 outside buyers' slots."""
    use = net.slot_coef * s.plan[net.slot_node]
    inputs = net.slot_role == INPUT
    target = stock_targets(net, s, params, use, is_consume)
    held, wanted = s.stock, target
    if base_use is not None:
        held, wanted = transit.with_supply_line(s.stock, s.in_transit, target, normal_afloat, use, base_use)
    request = np.where(inputs, stock_request(use, held, wanted, adjust), 0.0)
    return request, np.where(inputs, use, 0.0), target


def line_stops(
    use: np.ndarray,
    stock: np.ndarray,
    inflow: np.ndarray,
    request: np.ndarray,
    adjust_months: np.ndarray | float,
    dispersion: np.ndarray | float,
) -> np.ndarray:
    """Per buyer: the tonnes of this month's use that its firms whose stock runs out cannot run
    (line stops), while the buyer's average stock may still be positive.

    A buyer stands for a continuum of firms whose stock cover before the month (months of their
    own use) is spread lognormally around the buyer's mean ``c̄ = stock/use`` with coefficient of
    variation ``dispersion`` (just-in-time assemblers hold weeks, others months). Each firm asks
    as the buyer does (:func:`stock_request`): its use plus its gap to the common target cover
    over ``adjust_months``, so the buyer's ``request`` is their sum. What the buyer receives this
    month (``inflow``: deliveries and landings) reaches its firms pro rata to their requests, the
    clearing kernel's own rule where sellers are short (sim/market.py), at the fill rate
    ``φ = inflow/request``. A firm of cover ``c`` then has ``c·(1 − φ/a) + f + φ·c̄/a`` months of
    its use (``f = inflow/use``) and stops for what is missing below 1: the firms with cover
    below ``k = (1 − f − φ·c̄/a)/(1 − φ/a)`` stop, and
    ``stops = use·(1 − φ/a)·E[(k − c)⁺]``, the lognormal put (Black–Scholes form).
    Served in full (``φ = 1``) no firm stops (``k = −target/(a·use) ≤ 0``): the steady state is
    untouched. With dispersion 0 it is the homogeneous ``(use − stock − inflow)⁺``, which the
    stock alone enforces; a wider spread stops more (the put is convex in the firm's cover)."""
    use = np.asarray(use, dtype=float)
    inflow = np.maximum(inflow, 0.0)
    stock = np.maximum(stock, 0.0)
    adjust = np.maximum(adjust_months, 1.0)
    fill = np.minimum(np.divide(inflow, request, out=np.ones(use.shape), where=request > 0), 1.0)
    out = np.zeros(use.shape)
    act = (use > 0) & (use - inflow - fill * stock / adjust > 0)  # k > 0: some firm may stop
    if not act.any():  # the usual month: every buyer served, or its stock and inflow ample
        return out
    u, phi = use[act], fill[act]
    a = np.broadcast_to(adjust, use.shape)[act]
    mean = stock[act] / u
    damp = 1.0 - phi / a  # how far a firm's own cover still counts (> 0: phi <= 1 <= a, phi < 1 here)
    k = (1.0 - inflow[act] / u - phi * mean / a) / np.maximum(damp, 1e-12)
    put = np.maximum(k - mean, 0.0)  # the homogeneous shortfall
    sd = np.sqrt(np.log1p(np.square(np.broadcast_to(np.asarray(dispersion, dtype=float), use.shape)[act])))
    spread = (mean > 0) & (sd > 0)
    if spread.any():
        kk, m, sg = k[spread], mean[spread], sd[spread]
        d1 = (np.log(m / kk) + 0.5 * sg * sg) / sg
        value = kk * ndtr(sg - d1) - m * ndtr(-d1)
        put[spread] = np.clip(value, put[spread], kk)  # float round-off at the bounds
    out[act] = u * damp * put
    return out
