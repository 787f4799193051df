"""Export controls: a ban, and licensing with a processing delay and an approval rate.

Standard economics (DESIGN §3.2): a quantity restriction on export edges. The exporter's
domestic market loses buyers, so its price falls and stock piles up at home; buyers abroad
turn to other sellers, whose prices rise: a two-tier price emerges rather than being imposed.
Licensing adds a pipeline: what buyers apply for in month t is approved, at the month's
approval rate, after its processing time; unused licences lapse. Licences are per shipment, so
a month's applications need not clear together: ``delay_months`` may be a distribution of
processing times (``[{months: 2, share: 0.8}, {months: 3, share: 0.2}]``: ~45 working days,
~60 in some cases for Ga/Ge in 2023, facts.md §2b), each share approved in its own month.

Licences at the resolution of days (issue 15): ``start_day`` is the day of the start month the
control takes effect (shipments before it go out unlicensed: No. 18 of 4 Apr 2025 was effective
at once); ``processing_days: {min: a, max: b}`` gives each shipment's processing time, uniform
over a..b calendar days, so a month's applications (filed evenly over its days from the control
day on) are approved over the following months in proportion to the days they land in
(:func:`landing_kernel`). Applications are buyers' orders: a buyer whose earlier applications are
still pending does not apply again for the need they cover (its request re-asks an unserved need
through its stock gap, closed over its ``restock_months``, so that part of the request is netted
against its pending applications), and each month a share ``withdrawal`` of the pending
applications is withdrawn (the buyer re-sourced or cancelled the order; ``[U]``, default the
behavioural parameter ``scenario.controls.licence_withdrawal``, fitted by ``critmin calibrate``;
an instrument's own ``withdrawal`` overrides it, for a sourced value): the backlog is not all
shipped once approvals come.

A licence may cover only part of a product's trade (``covered_share``, a share or
``{from, share}`` steps; default 1): a control lists elements and the products *containing* them,
and where the model's commodity lumps covered and uncovered goods (a metal blend of NdPr metal,
not listed, and Dy/Tb metal, listed) the covered share is the listed goods' content share; the
rest ships unlicensed. Steps let the coverage follow enforcement (customs that applied a control
to a whole customs code from some date).

Customs clearance after approval (issue 15): a licence is not a departure. ``clearance_days:
{min: a, max: b}`` (optional) is each licensed shipment's time from its licence's grant to its
export declaration, uniform over a..b calendar days (booking the freight method the licence
fixes, customs' inspection and testing of the consignment): a month's approvals, decided evenly
over its days, are released over the following months in proportion to the days
(:func:`landing_kernel`, :class:`Clearance`); meanwhile the goods wait in the exporter's stock
(the edge cap only releases what clears) and the buyer does not apply again for them. Without the
key a licence ships in the month it is decided, as before.

Grey flows: a share ``grey_share`` (``scenario.controls.grey_share``, default 0) of the demand a
control blocks goes through anyway (smuggling, transit via third countries), on the same edges:
the goods keep their origin, as the importer's customs records them (the US Census records the
country of origin, not the country shipped from). ``grey_share`` may be ``{from, share}`` steps,
for a route that a later rule closes: China's 3 Dec 2024 notice barred anyone anywhere from
transferring Chinese-origin Ga/Ge to the US, which the 2023 licensing did not (the goods went to
an end user in a third country, who could resell them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Policy, register
from critmin.policies.select import buyer_slots_of, listed_facilities, trade_edges
from critmin.sim import market, prices
from critmin.sim.network import OUTPUT
from critmin.sim.spec import Spec, parse_month, share_schedule
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
    ``grey_share`` (a share or ``{from, share}`` steps; default ``scenario.controls.grey_share``),
    ``announced`` (optional month at or before ``start``: from then on holders expect the control,
    :meth:`announced_edges`)."""

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
        self.grey = _steps(
            spec, "grey_share", "share", model, self.first, default=float(model.params.controls.grey_share)
        )
        self.announced = self._announcement(spec, model)

    def grey_share(self, t: int) -> float:
        """The share of the demand the control blocks that flows anyway in month ``t``."""
        return _at(self.grey, t)

    def announced_edges(self, t: int) -> np.ndarray | None:
        """The edges this control will close, from the month it is announced (``announced``,
        optional) until it starts: holders form their expectations at the close of month ``t``
        for the next, so they act from the announcement month (sim/prices/expectations.py: expected scarcity).
        ``None`` outside that window."""
        if self.announced is None or not (self.announced - 1 <= t < self.first):
            return None
        return self.edges


@register
class ExportBan(_Control):
    """No exports of the covered commodities to the covered destinations."""

    key = "export_ban"

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        grey = self.grey_share(model.state.t)
        if grey > 0:
            return Effects(
                edge_caps=[(self.edges, grey_caps(0.0, requested_on(model, request, self.edges), grey))]
            )
        return Effects(edge_caps=[(self.edges, 0.0)])


@register
class ExportLicensing(_Control):
    """Exports need a licence: applications are approved after their processing time
    (``delay_months``: a number, or a list of ``{months: k, share: s}`` summing to 1; or
    ``processing_days: {min: a, max: b}``, uniform per shipment, at the resolution of days) at
    ``approval_rate`` (a number, or a list of ``{from: YYYY-MM, rate: r}`` steps). ``start_day``
    (default 1): the day of the start month the control takes effect; ``filing_lag_days``
    (default 0): days after it before exporters file their first applications. ``withdrawal``
    (default ``scenario.controls.licence_withdrawal``): the share of pending applications withdrawn
    each month. ``covered_share``
    (default 1; a number or a list of ``{from: YYYY-MM, share: s}`` steps): the share of the
    edges' trade that needs a licence, the rest ships unlicensed. ``clearance_days`` (optional,
    ``{min: a, max: b}``): days from a licence's grant to the shipment's export declaration,
    uniform per shipment (:class:`Clearance`); without it a licence ships in its decision month."""

    key = "export_licensing"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        self.start_day = int(spec.number("start_day", 1, 31, default=1))
        # share of the start month before the control day: its shipments need no licence
        self.free = (self.start_day - 1) / DAYS_PER_MONTH if self.start_day > 1 else 0.0
        # buyers' withdrawals: a behavioural parameter (scenario.controls.licence_withdrawal,
        # fitted by critmin calibrate) unless the instrument's yaml gives a sourced value
        self.withdrawal = spec.share("withdrawal", default=float(model.params.controls.licence_withdrawal))
        # exporters file their first applications this many days after the control day (they
        # gather end-user documents first); the start month's applications come after it
        lag = spec.number("filing_lag_days", 0, 90, default=0)
        filed_from = min((self.start_day - 1 + lag) / DAYS_PER_MONTH, 1.0 - 1e-9)
        # self.kernels[i]: the landing shares of the applications filed i months after the start
        # month (the last one for every later month)
        if spec.raw("processing_days", default=None) is not None:
            if "delay_months" in spec.d:
                raise DataError(f"{spec.where}: give delay_months or processing_days, not both")
            days = Spec(spec.raw("processing_days"), f"{spec.where}.processing_days")
            if "decided" in days.d:
                self.kernels = _decision_pace(days, model, self.first).kernels(filed_from)
            else:
                lo, hi = _processing_days(days)
                self.kernels = [landing_kernel(lo, hi, filed_from), landing_kernel(lo, hi, 0.0)]
        else:
            if lag > 0:
                raise DataError(f"{spec.where}.filing_lag_days: needs processing_days (days, not months)")
            self.kernels = [_monthly_kernel(_delays(spec))]
        self.schedule = _steps(spec, "approval_rate", "rate", model, self.first)
        # the share of the edges' trade the licence covers (products containing the listed
        # elements); the rest ships unlicensed. A number or {from, share} steps: customs may
        # apply a control to more of a product's trade than its legal scope from some date
        self.coverage = _steps(spec, "covered_share", "share", model, self.first)
        self.queue: dict[int, np.ndarray] = {}  # tonnes to be approved, by decision month
        self.waiting: dict[int, np.ndarray] = {}  # tonnes applied for, by decision month
        self.applied = np.zeros(self.edges.size)
        self.restock = np.maximum(model.restock_months[model.net.edge_buyer[self.edges]], 1.0)
        self.clearance = Clearance.from_spec(spec, self.edges.size)

    def rate(self, t: int) -> float:
        return _at(self.schedule, t)

    def covered(self, t: int) -> float:
        """The share of the edges' trade that needs a licence in month ``t``."""
        return _at(self.coverage, t)

    def pending(self) -> np.ndarray:
        """Tonnes applied for per edge and not yet decided (to be approved or refused)."""
        return sum(self.waiting.values(), np.zeros(self.edges.size))

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        t = model.state.t
        wanted = requested_on(model, request, self.edges)
        covered = self.covered(t)
        free_trade = (1.0 - covered) * wanted  # goods the control does not cover ship as before
        buyer = model.net.edge_buyer[self.edges]
        weight = np.divide(wanted, request[buyer], out=np.zeros(wanted.size), where=request[buyer] > 0)
        # the buyer's stock gap this edge would fill with covered goods: need it is short of now
        gap = covered * weight * np.maximum(model.stock_target[buyer] - model.state.stock[buyer], 0.0)
        wanted = covered * wanted  # what needs a licence
        pending = self.pending()
        if self.withdrawal > 0:  # buyers short of stock re-source or cancel part of what waits
            short = np.minimum(gap, pending)
            keep = 1.0 - self.withdrawal * np.divide(
                short, pending, out=np.zeros(pending.size), where=pending > 0
            )
            for queue in (self.queue, self.waiting):
                for month in queue:
                    queue[month] = queue[month] * keep
            pending = pending * keep
        # new applications: what buyers would ask of these edges, less the part of their stock
        # gap (closed over restock months) that pending applications already cover
        if self.clearance is not None:  # licensed goods held at customs are orders that wait too
            pending = pending + self.clearance.held()
        self.applied = np.maximum(wanted - np.minimum(gap, pending) / self.restock, 0.0)
        first = t == self.first
        kernel = self.kernels[min(t - self.first, len(self.kernels) - 1)]
        filed = (1.0 - self.free) if first else 1.0  # the start month: only from the control day
        for lag, share in enumerate(kernel):  # each shipment's application waits its own time
            if share > 0:
                self.waiting[t + lag] = self.waiting.get(t + lag, 0.0) + share * filed * self.applied
                self.queue[t + lag] = (
                    self.queue.get(t + lag, 0.0) + share * filed * self.rate(t) * self.applied
                )
        approved = self.queue.pop(t, np.zeros(self.edges.size))
        self.waiting.pop(t, None)  # decided: approved or refused
        if self.clearance is not None:  # approved goods leave as customs clear them
            approved = self.clearance.release(t, approved)
        if first and self.free > 0:  # shipments before the control day need no licence
            approved = approved + self.free * wanted
        grey = self.grey_share(t)
        if grey > 0:
            approved = grey_caps(approved, wanted, grey)
        return Effects(edge_caps=[(self.edges, approved + free_trade)])


DAYS_PER_MONTH = 365.25 / 12


def landing_kernel(lo_days: float, hi_days: float, filed_from: float = 0.0, grid: int = 400) -> np.ndarray:
    """Share of a month's applications approved ``k`` months later (index k), when they are
    filed evenly over the month from ``filed_from`` (a share of the month: the control day in the
    start month) and each takes a processing time uniform over ``lo_days..hi_days`` calendar
    days. Sums to 1."""
    f = filed_from + (1.0 - filed_from) * (np.arange(grid) + 0.5) / grid
    if hi_days > lo_days:
        days = lo_days + (hi_days - lo_days) * (np.arange(grid) + 0.5) / grid
    else:
        days = np.array([float(lo_days)])
    lag = np.floor(f[:, None] + days[None, :] / DAYS_PER_MONTH).astype(int).ravel()
    return np.bincount(lag) / lag.size


class Clearance:
    """Licensed goods between a licence's grant and their export declaration: the approvals of
    month ``t`` (decided evenly over its days) clear customs ``k`` months later in the shares
    ``kernel[k]`` (each shipment's clearance time uniform over ``min..max`` days,
    :func:`landing_kernel`). Tonnes are only moved in time: what is approved is released once,
    in full, over the following months (``held`` is what waits)."""

    def __init__(self, lo_days: float, hi_days: float, n: int) -> None:
        self.kernel = landing_kernel(lo_days, hi_days, 0.0)
        # ring of the tonnes clearing in months t, t+1, ...: slot (t + k) % len(kernel)
        self.ring = np.zeros((self.kernel.size, n))
        self.lags = np.arange(self.kernel.size)

    @classmethod
    def from_spec(cls, spec: Spec, n: int) -> Clearance | None:
        """``clearance_days: {min, max}`` of a licensing instrument, or ``None`` without it."""
        if spec.raw("clearance_days", default=None) is None:
            return None
        lo, hi = _processing_days(Spec(spec.raw("clearance_days"), f"{spec.where}.clearance_days"))
        return cls(lo, hi, n)

    def release(self, t: int, approved: np.ndarray) -> np.ndarray:
        """Add month ``t``'s approvals to the goods clearing; return what clears in month ``t``."""
        size = self.kernel.size
        self.ring[(t + self.lags) % size] += self.kernel[:, None] * approved[None, :]
        out = self.ring[t % size].copy()
        self.ring[t % size] = 0.0
        return out

    def held(self) -> np.ndarray:
        """Tonnes approved and not yet cleared, per edge."""
        return self.ring.sum(axis=0)


def _steps(
    spec: Spec, key: str, field: str, model: ModelView, start: int, default: float = 1.0
) -> list[tuple[int, float]]:
    """A share that changes over time: a number, or a list of ``{from: YYYY-MM, <field>: s}``
    steps (a step without ``from`` applies from the control's start), sorted by month."""
    raw = spec.raw(key, default=default)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return [(start, spec.share(key, default=default))]
    if not isinstance(raw, list) or not raw:
        raise DataError(
            f"{spec.where}.{key}: expected a share or a list of {{from, {field}}} steps, got {raw!r}"
        )
    out = []
    for i, step in enumerate(raw):
        sub = Spec(step, f"{spec.where}.{key}[{i}]")
        first = sub.month("from", model.start, default=None)
        out.append((start if first is None else first, sub.share(field)))
        sub.done()
    return sorted(out)


def _at(steps: list[tuple[int, float]], t: int) -> float:
    """The value of a step schedule in month ``t`` (the first step's before it starts)."""
    current = steps[0][1]
    for first, value in steps:
        if t >= first:
            current = value
    return current


def _monthly_kernel(delays: list[tuple[int, float]]) -> np.ndarray:
    out = np.zeros(max(d for d, _ in delays) + 1)
    for d, share in delays:
        out[d] += share
    return out


def _processing_days(sub: Spec) -> tuple[float, float]:
    lo = sub.number("min", 0, 730)
    hi = sub.number("max", 0, 730)
    sub.done()
    if hi < lo:
        raise DataError(f"{sub.where}: expected min <= max, got {lo} > {hi}")
    return lo, hi


class DecisionPace:
    """Processing as the ministry's pace of decisions: an application waits ``min_days``, then
    is decided at a calendar rate, a share ``per_month`` of the applications waiting past their
    minimum decided per month (a daily hazard ``-ln(1 - per_month)/DAYS_PER_MONTH``), which
    changes on dated steps (a framework agreed on a day speeds every pending file up, not only
    those filed after it). Days count from the first day of the control's start month."""

    def __init__(self, min_days: float, steps: list[tuple[float, float]]) -> None:
        self.min_days = float(min_days)
        starts = np.array([d for d, _ in steps], dtype=float)
        self.rates = np.array([-np.log1p(-h) / DAYS_PER_MONTH for _, h in steps])
        # the cumulative hazard at the steps' days (0 before the first), linear in between
        self.knots = np.append(starts, starts[-1] + 1e6)
        self.cum = np.concatenate(([0.0], np.cumsum(self.rates * np.diff(self.knots))))

    def hazard(self, day: np.ndarray | float) -> np.ndarray:
        """Cumulative decision hazard from day 0 to ``day``."""
        return np.interp(day, self.knots, self.cum)

    def decided_by(self, filed: np.ndarray, day: np.ndarray | float) -> np.ndarray:
        """Share of the applications filed on day ``filed`` that are decided by ``day``."""
        ready = filed + self.min_days
        return np.where(
            day > ready, -np.expm1(-(self.hazard(day) - self.hazard(np.minimum(ready, day)))), 0.0
        )

    def granted_share(self, day: float, filed_from: float, grid: int = 2000) -> float:
        """Share of the applications filed evenly from day ``filed_from`` to ``day`` that are
        decided by ``day``: the cumulative approval share applicants report (CLEPA's counts)."""
        filed = filed_from + (day - filed_from) * (np.arange(grid) + 0.5) / grid
        return float(self.decided_by(filed, day).mean())

    def kernel(self, month: int, filed_from: float = 0.0, grid: int = 200, horizon: int = 60) -> np.ndarray:
        """Landing shares (index k: k months later) of the applications filed evenly over month
        ``month`` (counted from the start month) from ``filed_from`` (a share of the month).
        What is still waiting after ``horizon`` months lands in the last month kept; trailing
        months with less than 1e-9 of the applications are folded into the month before."""
        f = (month + filed_from + (1.0 - filed_from) * (np.arange(grid) + 0.5) / grid) * DAYS_PER_MONTH
        ends = (month + 1 + np.arange(horizon)) * DAYS_PER_MONTH
        by = self.decided_by(f[:, None], ends[None, :]).mean(axis=0)
        out = np.diff(by, prepend=0.0)
        keep = int(np.searchsorted(by, 1.0 - 1e-9)) + 1
        out = out[: min(keep, horizon)].copy()
        out[-1] += 1.0 - out.sum()
        return out

    def kernels(self, filed_from: float) -> list[np.ndarray]:
        """One kernel per filing month from the start month until the pace stops changing (the
        month after the last step), the last one for every later month."""
        last = int(np.ceil(self.knots[-2] / DAYS_PER_MONTH)) + 1
        return [self.kernel(i, filed_from if i == 0 else 0.0) for i in range(max(last, 1) + 1)]


def _decision_pace(sub: Spec, model: ModelView, start: int) -> DecisionPace:
    """``processing_days: {min: a, decided: [{from: YYYY-MM-DD, per_month: h}, ...]}``: the first
    step without ``from`` (it applies from the control's start), later steps dated."""
    min_days = sub.number("min", 0, 730)
    raw = sub.raw("decided")
    sub.done()
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{sub.where}.decided: expected a list of {{from, per_month}} steps, got {raw!r}")
    steps: list[tuple[float, float]] = []
    for i, item in enumerate(raw):
        step = Spec(item, f"{sub.where}.decided[{i}]")
        h = step.number("per_month", 0.0, 0.999)
        when = step.raw("from", default=None)
        if (when is None) != (i == 0):
            raise DataError(f"{sub.where}.decided[{i}].from: the first step has no date, every later one has")
        day = 0.0 if when is None else _day(str(when), f"{sub.where}.decided[{i}].from", model, start)
        if steps and day <= steps[-1][0]:
            raise DataError(
                f"{sub.where}.decided[{i}].from: expected a date after the previous step's, got {when!r}"
            )
        steps.append((day, h))
        step.done()
    return DecisionPace(min_days, steps)


def _day(value: str, key: str, model: ModelView, start: int) -> float:
    """'YYYY-MM-DD' -> days from the first day of the control's start month."""
    y, m = parse_month(value, key)
    try:
        d = int(value.split("-")[2])
        if not 1 <= d <= 31:
            raise ValueError
    except (IndexError, ValueError):
        raise DataError(f"{key}: expected a date 'YYYY-MM-DD', got {value!r}") from None
    month = (y - model.start[0]) * 12 + (m - model.start[1])
    if month < start:
        raise DataError(f"{key}: expected a date on or after the control's start, got {value!r}")
    return (month - start) * DAYS_PER_MONTH + d - 1


def _delays(spec: Spec) -> list[tuple[int, float]]:
    """Processing times in months and the share of applications each applies to."""
    raw = spec.raw("delay_months", default=2)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return [(int(spec.number("delay_months", 0, 24, default=2)), 1.0)]
    if not isinstance(raw, list):
        raise DataError(
            f"{spec.where}.delay_months: expected a number of months or a list of {{months, share}}, got {raw!r}"
        )
    return share_schedule(raw, f"{spec.where}.delay_months", "months", 0, 24)
