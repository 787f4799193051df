"""The purchasing rule every buyer (processor or manufacturer) shares."""

from __future__ import annotations

import numpy as np


def stock_request(
    use: np.ndarray, stock: np.ndarray, cover_months: np.ndarray | float, adjust_months: np.ndarray | float
) -> np.ndarray:
    """Buy this month's use plus a share of the gap to the target stock (never negative).

    Target stock is ``cover_months × use``; the gap closes over ``adjust_months`` (a standard
    stock-adjustment rule, Sterman 2000 ch. 17).
    """
    target = cover_months * use
    return np.maximum(use + (target - stock) / adjust_months, 0.0)
