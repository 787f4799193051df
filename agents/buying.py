"""The purchasing rule every buyer (processor or manufacturer) shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from critmin.sim.network import INPUT

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.state import State


def stock_request(
    use: np.ndarray, stock: np.ndarray, cover_months: np.ndarray | float, adjust_months: np.ndarray | float
) -> np.ndarray:
    """Buy this month's use plus a share of the gap to the target stock (never negative).

    Target stock is ``cover_months × use``; the gap closes over ``adjust_months`` (a standard
    stock-adjustment rule, Sterman 2000 ch. 17).
    """
    target = cover_months * use
    return np.maximum(use + (target - stock) / adjust_months, 0.0)


def purchase_requests(
    net: Network, s: State, params: Any, demand_nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every buyer's request this month: planned use plus a share of the gap to its stock target
    (manufacturers hold their safety stock, plants their input cover; sellers' target is their
    finished-stock cover of orders). Returns (request, use, stock target), per slot."""
    use = net.slot_coef * s.plan[net.slot_node]
    is_consume = np.zeros(net.n_slots, bool)
    is_consume[net.consume_slot[demand_nodes]] = True
    cover = np.where(is_consume, params.demand.safety_stock_months, params.producers.input_cover_months)
    adjust = np.where(is_consume, params.demand.stock_adjust_months, params.producers.stock_adjust_months)
    inputs = net.slot_role == INPUT
    target = np.where(inputs, cover * use, params.market.cover_target_months * s.orders_avg)
    request = np.where(inputs, stock_request(use, s.stock, cover, adjust), 0.0)
    return request, np.where(inputs, use, 0.0), target
