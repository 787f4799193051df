"""Export controls: a ban, and licensing with a processing delay and an approval rate.

Standard economics (DESIGN §3.2): a quantity restriction on export edges. The exporter's
domestic market loses buyers, so its price falls and stock piles up at home; buyers abroad
turn to other sellers, whose prices rise: a two-tier price emerges rather than being imposed.
Licensing adds a pipeline: what buyers apply for in month t is approved, at the month's
approval rate, after its processing time; unused licences lapse. Licences are per shipment, so
a month's applications need not clear together: ``delay_months`` may be a distribution of
processing times (``[{months: 2, share: 0.8}, {months: 3, share: 0.2}]``: ~45 working days,
~60 in some cases for Ga/Ge in 2023, facts.md §2b), each share approved in its own month.

Grey flows: a share ``grey_share`` (``scenario.controls.grey_share``, default 0) of the demand a
control blocks goes through anyway (smuggling, transit via third countries), on the same edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Policy, register
from critmin.policies.select import buyer_slots_of, listed_facilities, trade_edges
from critmin.sim import market, prices
from critmin.sim.network import OUTPUT
from critmin.sim.spec import Spec, share_schedule
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


def requested_on(model: ModelView, request: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """What buyers would ask of these edges this month without a control: their requests
    spread over sellers by the market's logit weights on delivered cost."""
    net = model.net
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
    return w[edges] * request[net.edge_buyer[edges]]


def seller_slots_of(model: ModelView, spec: Spec, key: str) -> np.ndarray:
    """Output slots of the facilities listed under ``key`` (facility ids)."""
    net = model.net
    nodes = [node for _, node in listed_facilities(model, spec, key)]
    return np.flatnonzero((net.slot_role == OUTPUT) & np.isin(net.slot_node, nodes))


def grey_caps(legal: np.ndarray, wanted: np.ndarray, grey_share: float) -> np.ndarray:
    """Caps with grey flows: the legal cap plus ``grey_share`` of the demand it blocks."""
    return legal + grey_share * np.maximum(wanted - legal, 0.0)


class _Control(Policy):
    """Common keys: ``country`` (exporter), ``commodity``, ``destinations`` (countries or blocs;
    default every other country), ``buyers`` (optional facility ids: only their purchases are
    covered, e.g. firms on an entity list), ``sellers`` (optional facility ids: only their sales
    are covered, where a control lists a product route and the model's commodity lumps routes:
    China's 2023 graphite licences covered natural-graphite anode material but not synthetic),
    ``grey_share`` (default ``scenario.controls.grey_share``), ``announced`` (optional month at or
    before ``start``: from then on holders expect the control, :meth:`announced_edges`)."""

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        self.exporter = spec.countries("country", net)
        self.commodities = spec.commodities("commodity", net)
        dest = spec.countries("destinations", net, default=list(net.countries))
        self.edges = trade_edges(model, self.commodities, self.exporter, dest)
        if spec.raw("buyers", default=None) is not None:
            self.edges = self.edges[
                np.isin(net.edge_buyer[self.edges], buyer_slots_of(model, spec, "buyers"))
            ]
        if spec.raw("sellers", default=None) is not None:
            self.edges = self.edges[
                np.isin(net.edge_seller[self.edges], seller_slots_of(model, spec, "sellers"))
            ]
        self.grey_share = spec.share("grey_share", default=float(model.params.controls.grey_share))
        self.announced = spec.month("announced", model.start, default=None)
        if self.announced is not None and self.announced > self.first:
            raise DataError(
                f"{spec.where}.announced: expected a month at or before start, got {spec.d['announced']!r}"
            )

    def announced_edges(self, t: int) -> np.ndarray | None:
        """The edges this control will close, from the month it is announced (``announced``,
        optional) until it starts: holders form their expectations at the close of month ``t``
        for the next, so they act from the announcement month (sim/prices.py: expected scarcity).
        ``None`` outside that window."""
        if self.announced is None or not (self.announced - 1 <= t < self.first):
            return None
        return self.edges


@register
class ExportBan(_Control):
    """No exports of the covered commodities to the covered destinations."""

    key = "export_ban"

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        if self.grey_share > 0:
            return Effects(
                edge_caps=[
                    (self.edges, grey_caps(0.0, requested_on(model, request, self.edges), self.grey_share))
                ]
            )
        return Effects(edge_caps=[(self.edges, 0.0)])


@register
class ExportLicensing(_Control):
    """Exports need a licence: applications are approved after ``delay_months`` (a number, or
    a list of ``{months: k, share: s}`` processing times summing to 1) at ``approval_rate`` (a
    number, or a list of ``{from: YYYY-MM, rate: r}`` steps)."""

    key = "export_licensing"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        self.delays = _delays(spec)
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
        # applications: what buyers would ask of these edges without the control
        self.applied = requested_on(model, request, self.edges)
        for delay, share in self.delays:  # each shipment's application waits its own time
            self.queue[t + delay] = self.queue.get(t + delay, 0.0) + share * self.rate(t) * self.applied
        approved = self.queue.pop(t, np.zeros(self.edges.size))
        if self.grey_share > 0:
            approved = grey_caps(approved, self.applied, self.grey_share)
        return Effects(edge_caps=[(self.edges, approved)])


def _delays(spec: Spec) -> list[tuple[int, float]]:
    """Processing times in months and the share of applications each applies to."""
    raw = spec.raw("delay_months", default=2)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return [(int(spec.number("delay_months", 0, 24)), 1.0)]
    if not isinstance(raw, list):
        raise DataError(
            f"{spec.where}.delay_months: expected a number of months or a list of {{months, share}}, got {raw!r}"
        )
    return share_schedule(raw, f"{spec.where}.delay_months", "months", 0, 24)
