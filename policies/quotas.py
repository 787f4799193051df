"""Export and import quotas: tonnes per period, issued in tranches, rationed by their holders.

A quota caps the covered flows; the allocation follows historical (2024) trade pro rata, as
the DRC cobalt quota does. The quota is issued in tranches and each holder spreads what it holds
over the months to the next tranche (:mod:`critmin.policies.tranches`: ``tranches``,
``front_loading``, ``under_use``, ``tranche_lapse``); unused quota lapses at the end of its
period unless ``carry_over: true``. A share ``grey_share`` of the demand the quota blocks leaks
through (smuggling, transit via third countries; ``scenario.controls.grey_share``, default 0):
it flows on the same edges without using the quota. The scarcity rent shows as a gap between
the importer's and the exporter's prices, net of transport and tax. ``announced`` (optional month
at or before ``start``): from then on holders expect the quota (the export controls' key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.export_controls import grey_caps, requested_on
from critmin.policies.select import trade_edges
from critmin.policies.tranches import Entitlements, period_size
from critmin.sim.spec import Spec

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
        base = model.base_edge_flow[self.edges]  # 2024 monthly trade on the covered edges
        period, size = period_size(spec, base.sum())
        allocation = spec.text("allocation", default="pro_rata_history", choices=("pro_rata_history", "pool"))
        side = net.edge_seller if self.holder_side == "seller" else net.edge_buyer
        holders = (
            side[self.edges] if allocation == "pro_rata_history" else np.zeros(self.edges.size, np.int64)
        )
        self.holder_of_edge = np.unique(holders, return_inverse=True)[1]
        n = int(self.holder_of_edge.max()) + 1 if self.edges.size else 0
        history = np.bincount(self.holder_of_edge, weights=base, minlength=n)
        shares = history / history.sum() if history.sum() > 0 else np.full(n, 1.0 / max(n, 1))
        self.grey_share = spec.share("grey_share", default=float(model.params.controls.grey_share))
        self.entitlements = Entitlements(spec, model, size, shares, self.first, self.last, period)
        self.grey = 0.0  # tonnes that went through beyond the quota (grey flows), whole run
        # merchant holders read a quota's end from its announcement (agents/merchant.py:
        # ``end_chance``); price formation's announced cuts do not take quotas (the base class's
        # ``announced_edges``): they count an announced edge as wholly lost, a quota only caps it
        self.announced = self._announcement(spec, model)

    @property
    def balance(self) -> np.ndarray:
        return self.entitlements.balance

    @property
    def used_by_period(self) -> list[float]:
        return self.entitlements.used_by_period

    def on_step(self, model: ModelView, t: int) -> Effects:
        self.entitlements.step(t)
        return Effects()

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        allowance = self.entitlements.allowance
        if self.grey_share > 0:
            wanted = np.bincount(
                self.holder_of_edge,
                weights=requested_on(model, request, self.edges),
                minlength=allowance.size,
            )
            allowance = grey_caps(allowance, wanted, self.grey_share)
        return Effects(
            shared_caps=[(self.edges[self.holder_of_edge == h], allowance[h]) for h in range(allowance.size)]
        )

    def after_clearing(self, model: ModelView) -> list[Payment]:
        flow = model.cleared.result.flow[self.edges]
        used = np.bincount(self.holder_of_edge, weights=flow, minlength=self.balance.size)
        self.grey += float(self.entitlements.use(used).sum())
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
