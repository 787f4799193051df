"""Production quota: the output of a commodity (optionally of one process) in a country capped
per period, issued in tranches and rationed over the period like an export quota.

China caps rare-earth mining and smelting/separation this way: a yearly total issued in batches
(the first batch about half the year: MNR/MIIT notices 2013-2022, e.g. 66,000 t of REO mining
in Feb 2020, Reuters; interim measures on total quantity control, MIIT Decree No. 71 of 2025)
and allocated to producers. Each covered facility holds a share of every tranche pro rata to its
2024 output and spreads what it holds over the months to the next tranche
(:mod:`critmin.policies.tranches`); the instrument turns the month's allowance into a capacity
factor ``min(1, allowed output / available capacity)``, so producers plan within it.

Keys: ``country`` (countries or blocs), ``commodity`` (the capped output), ``process``
(optional: only facilities running it), ``tonnes_per_period`` or ``share_of_baseline`` (of the
covered facilities' 2024 output), ``period`` (``year`` or ``month``), and the tranche keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.tranches import Entitlements, period_size
from critmin.sim.network import OUTPUT
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


@register
class ProductionQuota(Policy):
    """Output of ``commodity`` (of ``process``, if given) in ``country`` capped per period."""

    key = "production_quota"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        countries = spec.countries("country", net)
        commodity = spec.commodity("commodity", net)
        covered = (
            (net.slot_role == OUTPUT)
            & (net.slot_commodity == commodity)
            & np.isin(net.slot_country, countries)
            & net.is_facility[net.slot_node]
        )
        process = spec.raw("process", default=None)
        if process is not None:
            if process not in set(net.node_process):
                raise DataError(f"{spec.where}.process: unknown process {process!r}")
            covered &= np.array([net.node_process[n] == process for n in net.slot_node])
        self.slots = np.flatnonzero(covered)
        if self.slots.size == 0:
            raise DataError(
                f"{spec.where}: no facility in {spec.d.get('country')!r} makes {spec.d.get('commodity')!r}"
                + (f" by process {process!r}" if process else "")
            )
        self.nodes = net.slot_node[self.slots]
        self.coef = net.slot_coef[self.slots]  # t of output per activity unit
        base = net.activity0[self.nodes] * self.coef  # 2024 monthly output, t
        period, size = period_size(spec, base.sum())
        shares = base / base.sum() if base.sum() > 0 else np.full(base.size, 1.0 / base.size)
        self.entitlements = Entitlements(spec, model, size, shares, self.first, self.last, period)

    def on_step(self, model: ModelView, t: int) -> Effects:
        allowed = self.entitlements.step(t) / self.coef  # activity units this month
        # a cap on activity, not a share of capacity: capacity coming online later this month
        # (the investment stage runs after the instruments) must not lift output past the quota
        return Effects(activity_cap=[(self.nodes, allowed)])

    def after_clearing(self, model: ModelView) -> list[Payment]:
        self.entitlements.use(model.state.activity[self.nodes] * self.coef)
        return []
