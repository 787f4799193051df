"""Export and import quotas: tonnes per period, allocated across exporters or importers.

A quota caps the covered flows; the allocation follows historical (2024) trade pro rata, as
the DRC cobalt quota does. Unused quota lapses at the end of its period unless
``carry_over: true``. The scarcity rent shows as a gap between the importer's and the
exporter's prices, net of transport and tax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.select import trade_edges
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


class _Quota(Policy):
    holder_side: str  # "seller" (export quota) or "buyer" (import quota)

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        home = spec.countries("country", net)
        self.commodities = spec.commodities("commodity", net)
        others = spec.countries("partners", net, default=list(net.countries))
        if self.holder_side == "seller":
            self.edges = trade_edges(model, self.commodities, home, others)
        else:
            self.edges = trade_edges(model, self.commodities, others, home)
        self.period = spec.text("period", default="year", choices=("month", "year"))
        base = model.base_edge_flow[self.edges]  # 2024 monthly trade on the covered edges
        per_period = base.sum() * (12 if self.period == "year" else 1)
        amounts = [k for k in ("tonnes_per_period", "share_of_baseline") if k in spec]
        if len(amounts) != 1:
            raise DataError(f"{spec.where}: expected exactly one of 'tonnes_per_period', 'share_of_baseline'")
        if amounts[0] == "tonnes_per_period":
            self.size = spec.number("tonnes_per_period", 0.0, 1e12)
        else:
            self.size = spec.number("share_of_baseline", 0.0, 10.0) * per_period
        self.carry_over = spec.flag("carry_over", default=False)
        allocation = spec.text("allocation", default="pro_rata_history", choices=("pro_rata_history", "pool"))
        side = net.edge_seller if self.holder_side == "seller" else net.edge_buyer
        holders = (
            side[self.edges] if allocation == "pro_rata_history" else np.zeros(self.edges.size, np.int64)
        )
        self.holder_of_edge = np.unique(holders, return_inverse=True)[1]
        n = int(self.holder_of_edge.max()) + 1 if self.edges.size else 0
        history = np.bincount(self.holder_of_edge, weights=base, minlength=n)
        self.allocation = history / history.sum() if history.sum() > 0 else np.full(n, 1.0 / max(n, 1))
        self.balance = np.zeros(n)
        self.used_by_period: list[float] = []
        self._used = 0.0

    def _period_start(self, model: ModelView, t: int) -> bool:
        month = (model.start[1] - 1 + t) % 12
        return self.period == "month" or month == 0 or t == self.first

    def on_step(self, model: ModelView, t: int) -> Effects:
        if self._period_start(model, t):
            if t != self.first:
                self.used_by_period.append(float(self._used))
            kept = self.balance if self.carry_over else 0.0
            self.balance = kept + self.size * self.allocation
            self._used = 0.0
        return Effects()

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        holders = range(self.balance.size)
        return Effects(shared_caps=[(self.edges[self.holder_of_edge == h], self.balance[h]) for h in holders])

    def after_clearing(self, model: ModelView) -> list[Payment]:
        flow = model.cleared.result.flow[self.edges]
        used = np.bincount(self.holder_of_edge, weights=flow, minlength=self.balance.size)
        self.balance = np.maximum(self.balance - used, 0.0)
        self._used += float(used.sum())
        return []


@register
class ExportQuota(_Quota):
    """Exports of ``commodity`` from ``country`` to ``partners`` (default all) capped per period."""

    key = "export_quota"
    holder_side = "seller"


@register
class ImportQuota(_Quota):
    """Imports of ``commodity`` into ``country`` from ``partners`` (default all) capped per period."""

    key = "import_quota"
    holder_side = "buyer"
