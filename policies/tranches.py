"""Quota entitlements issued in tranches and rationed by their holders over the period.

Shared by the export and import quotas (:mod:`critmin.policies.quotas`) and the production quota
(:mod:`critmin.policies.production_quota`). A quota of ``size`` tonnes per ``period`` is issued
in tranches (``tranches``: ``quarterly``, ``monthly``, ``single`` or a list of
``{month: MM, share: s}`` summing to 1); each holder receives its allocation of every tranche.
Real quotas are issued this way: the DRC's cobalt quota in monthly allocations with quarterly
adjustments (ARECOMS decision 005/2025: Oct 3,625 t, Nov 7,250 t, Dec 7,250 t; unused monthly
allocations forfeited from 2026), China's rare-earth mining and smelting quotas in two batches a
year (MIIT/MNR first-batch notices 2013-2022, each about half the year). The default for a yearly
quota is ``quarterly``.

Holders ration: each month a holder may ship (or produce) its remaining entitlement spread over
the months left until the next tranche (or the period's end), ``balance × min(1, (1 + f) /
months_left)`` with ``f`` the front-loading parameter (``scenario.controls.front_loading``;
0 = even). A share ``under_use`` of every tranche is held by holders without buyers and never
used (``scenario.controls.quota_under_use``). Unused entitlement stays available within the
period (``tranche_lapse: true``: it lapses when the next tranche is issued, as the DRC's monthly
allocations do) and lapses at the period's end unless ``carry_over: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from critmin.sim.spec import Spec, share_schedule
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView

KEYWORDS = {
    "single": [(1, 1.0)],
    "half_yearly": [(1, 0.5), (7, 0.5)],
    "quarterly": [(1, 0.25), (4, 0.25), (7, 0.25), (10, 0.25)],
    "monthly": [(m, 1.0 / 12) for m in range(1, 13)],
}


def period_size(spec: Spec, monthly_base: float) -> tuple[str, float]:
    """The quota's period (``month`` or ``year``) and its size in tonnes per period: exactly one
    of ``tonnes_per_period`` or ``share_of_baseline`` (of the 2024 tonnes the quota covers,
    ``monthly_base`` a month)."""
    period = spec.text("period", default="year", choices=("month", "year"))
    amounts = [k for k in ("tonnes_per_period", "share_of_baseline") if k in spec]
    if len(amounts) != 1:
        raise DataError(f"{spec.where}: expected exactly one of 'tonnes_per_period', 'share_of_baseline'")
    if amounts[0] == "tonnes_per_period":
        return period, spec.number("tonnes_per_period", 0.0, 1e12)
    return period, spec.number("share_of_baseline", 0.0, 10.0) * monthly_base * (
        12 if period == "year" else 1
    )


def parse_tranches(raw: Any, period: str, where: str) -> list[tuple[int, float]]:
    """(month of year 1-12, share of the period's quota) per tranche, in month order."""
    if period == "month":
        if raw not in (None, "single"):
            raise DataError(
                f"{where}.tranches: a monthly quota has one tranche; expected 'single', got {raw!r}"
            )
        return [(1, 1.0)]
    if raw is None:
        return KEYWORDS["quarterly"]
    if isinstance(raw, str):
        if raw not in KEYWORDS:
            raise DataError(
                f"{where}.tranches: expected one of {sorted(KEYWORDS)} or a list of {{month, share}}, got {raw!r}"
            )
        return KEYWORDS[raw]
    if not isinstance(raw, list):
        raise DataError(
            f"{where}.tranches: expected one of {sorted(KEYWORDS)} or a list of {{month, share}}, got {raw!r}"
        )
    return share_schedule(raw, f"{where}.tranches", "month", 1, 12)


class Entitlements:
    """Per-holder quota balances issued in tranches and the month's rationed allowance.

    Reads ``period``, ``tranches``, ``carry_over``, ``tranche_lapse``, ``front_loading`` and
    ``under_use`` from the instrument's spec (the last two default to ``scenario.controls``)."""

    def __init__(
        self,
        spec: Spec,
        model: ModelView,
        size: float,
        allocation: np.ndarray,
        first: int,
        last: int,
        period: str,
    ) -> None:
        controls = model.params.controls
        self.period = period
        self.tranches = parse_tranches(spec.raw("tranches", default=None), period, spec.where)
        self.carry_over = spec.flag("carry_over", default=False)
        self.tranche_lapse = spec.flag("tranche_lapse", default=False)
        self.front_loading = spec.number("front_loading", 0.0, 1.0, default=float(controls.front_loading))
        self.under_use = spec.share("under_use", default=float(controls.quota_under_use))
        self.size, self.allocation = size, allocation
        self.first, self.last, self.start_month = first, last, model.start[1] - 1
        self.balance = np.zeros(allocation.size)
        self.allowance = np.zeros(allocation.size)
        self.issued_total = 0.0  # tonnes issued so far (after under-use)
        self.used_total = 0.0  # tonnes used within the entitlement
        self.used_by_period: list[float] = []
        self._used = 0.0

    def month_of_year(self, t: int) -> int:
        return (self.start_month + t) % 12 + 1

    def period_starts(self, t: int) -> bool:
        return self.period == "month" or self.month_of_year(t) == 1 or t == self.first

    def issued_share(self, t: int) -> float:
        """Share of the period's quota issued at step t (at the first step: every tranche dated
        up to that month, so a quota that starts mid-year gets what the year has issued)."""
        if self.period == "month":
            return 1.0
        m = self.month_of_year(t)
        if t == self.first:
            return sum(s for month, s in self.tranches if month <= m)
        return sum(s for month, s in self.tranches if month == m)

    def next_issue(self, t: int) -> int:
        """The next step a tranche is issued or the period ends (or the instrument ends)."""
        for u in range(t + 1, t + 13):
            if u >= self.last or self.period_starts(u) or self.issued_share(u) > 0:
                return u
        return t + 12

    def step(self, t: int) -> np.ndarray:
        """Issue this month's tranche and return each holder's allowance for the month."""
        if self.period_starts(t):
            if t != self.first:
                self.used_by_period.append(self._used)
            self._used = 0.0
            if not self.carry_over:
                self.balance = np.zeros_like(self.balance)
        share = self.issued_share(t)
        if share > 0:
            if self.tranche_lapse and not self.period_starts(t):
                self.balance = np.zeros_like(self.balance)
            issued = share * self.size * (1.0 - self.under_use)
            self.balance = self.balance + issued * self.allocation
            self.issued_total += issued
        months_left = max(self.next_issue(t) - t, 1)
        self.allowance = self.balance * min(1.0, (1.0 + self.front_loading) / months_left)
        return self.allowance

    def use(self, used: np.ndarray) -> np.ndarray:
        """Book what each holder shipped (or made); returns the part beyond its allowance (grey)."""
        legal = np.minimum(used, self.allowance)
        self.balance = np.maximum(self.balance - legal, 0.0)
        self._used += float(legal.sum())
        self.used_total += float(legal.sum())
        return used - legal
