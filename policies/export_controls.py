"""Export controls: a ban, and licensing with a processing delay and an approval rate.

Standard economics (DESIGN §3.2): a quantity restriction on export edges. The exporter's
domestic market loses buyers, so its price falls and stock piles up at home; buyers abroad
turn to other sellers, whose prices rise: a two-tier price emerges rather than being imposed.
Licensing adds a pipeline: what buyers apply for in month t is approved, at the month's
approval rate, in month t + delay; unused licences lapse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Policy, register
from critmin.policies.select import trade_edges
from critmin.sim import market, prices
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


class _Control(Policy):
    """Common keys: ``country`` (exporter), ``commodity``, ``destinations`` (countries or blocs;
    default every other country)."""

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        self.exporter = spec.countries("country", net)
        self.commodities = spec.commodities("commodity", net)
        dest = spec.countries("destinations", net, default=list(net.countries))
        self.edges = trade_edges(model, self.commodities, self.exporter, dest)


@register
class ExportBan(_Control):
    """No exports of the covered commodities to the covered destinations."""

    key = "export_ban"

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        return Effects(edge_caps=[(self.edges, 0.0)])


@register
class ExportLicensing(_Control):
    """Exports need a licence: applications are approved after ``delay_months`` at
    ``approval_rate`` (a number, or a list of ``{from: YYYY-MM, rate: r}`` steps)."""

    key = "export_licensing"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        self.delay = int(spec.number("delay_months", 0, 24, default=2))
        rate = spec.raw("approval_rate", default=1.0)
        steps = [{"from": None, "rate": rate}] if isinstance(rate, int | float) else rate
        self.schedule: list[tuple[int, float]] = []
        for i, step in enumerate(steps):
            sub = Spec(step, f"{spec.where}.approval_rate[{i}]")
            first = sub.month("from", model.start, default=None)
            self.schedule.append((self.first if first is None else first, sub.share("rate")))
            sub.done()
        self.schedule.sort()
        if not self.schedule:
            raise DataError(f"{spec.where}.approval_rate: expected a number or a list of steps")
        self.queue: dict[int, np.ndarray] = {}
        self.applied = np.zeros(self.edges.size)

    def rate(self, t: int) -> float:
        current = self.schedule[0][1]
        for first, r in self.schedule:
            if t >= first:
                current = r
        return current

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        t = model.state.t
        net = model.net
        # applications: what buyers would ask of these edges without the control
        p_del = prices.delivered_cost(
            np.exp(model.state.log_p)[model.slot_market()[net.edge_seller]], net.edge_transport
        )
        w = market.logit_weights(
            p_del,
            net.edge_buyer,
            net.n_slots,
            model.params.market.theta,
            model.state.preference,
            model.commercial_edges,
        )
        self.applied = w[self.edges] * request[net.edge_buyer[self.edges]]
        self.queue[t + self.delay] = self.queue.get(t + self.delay, 0.0) + self.rate(t) * self.applied
        approved = self.queue.pop(t, np.zeros(self.edges.size))
        return Effects(edge_caps=[(self.edges, approved)])
