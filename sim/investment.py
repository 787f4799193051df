"""Endogenous capacity: the project pipeline and the firms' investment decisions (ODD §7.9).

Every potential addition of capacity is a row of a :class:`Pipeline`, vectorised over rows:

* **named projects** (``projects.csv``: MP, Lynas, Iluka, Arafura, ...) start at their stage in the base year;
* **prospects** (``prospects.csv``: unannounced deposits and plants by country) start as
  concepts and are announced when their expected NPV turns positive;
* **brownfield expansions** of every operating facility (a share of its capacity, at a fraction
  of greenfield capex, no new permit) are always on offer.

Stages: concept → announced (permitting clock) → permitted (waiting for a final investment
decision, FID) → financed (construction clock) → ramping (capacity rises to a final share of
nameplate that is drawn per project, sometimes well below 1) → operating; pre-FID projects may be
cancelled. Decisions use the **profitability index** PI = PV(cash margins)/capex at long-run
expected prices (adaptive, ``scenario.investment.expectation_months``) and a risk-adjusted cost
of capital: ``hurdle + risk_premium·(1 − derisked) − concessional finance``. Offtake contracts and
price floors derisk a project (its volume or price is certain); a price floor also raises the
expected price to the floor; permitting acceleration shortens the permitting clock.

The monthly FID probability is ``1/finance_months · σ((PI − 1)/s)`` (σ logistic; s =
``fid_pi_scale``). The **dominant producer's mining quota follows the market** (:class:`MarketQuota`):
the expansions of the plants an ``investment.csv`` puts under a quota (``market_quota`` rows:
China's REE mines) go ahead, however profitable, only while that country's mine capacity, in
operation and in flight, stays within ``1 + quota_headroom`` times its 2024 ratio to its own
processors' expected demand for their output (their normal orders, domestic and export);
options it does not take wait (their option value is kept). Cancellation of a pre-FID project with PI < 1 happens at
``abandon_rate_per_year``. Nothing here is specific to rare earths: the parameters come from the
chain's ``investment.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from critmin.sim.cache import content_digest, disk_key, disk_memo, memo
from critmin.sim.network import INPUT, OUTPUT
from critmin.sim.world import INVESTMENT, INVESTMENT_PARAMETERS, DataError, World, new_capacity_node

if TYPE_CHECKING:
    from critmin.sim.network import Network

CONCEPT, ANNOUNCED, PERMITTED, FINANCED, RAMPING, OPERATING, CANCELLED = range(7)
STATUS_NAMES = ("concept", "announced", "permitted", "financed", "ramping", "operating", "cancelled")
KIND_NAMED, KIND_PROSPECT, KIND_EXPANSION = 0, 1, 2
KIND_NAMES = ("named", "prospect", "expansion")

EXPANSION_OPTIONS = 4  # brownfield options per plant that can be in flight at once (each of
# scenario.investment.expansion_share); growth is limited by max_expansion_per_year, not by this

# the parameters read from investment.csv (their plausible ranges: sim/world.py)
PARAMETERS = tuple(INVESTMENT_PARAMETERS)


class Parameters:
    """``investment.csv`` indexed for lookups, most specific row first: (process, country),
    (process, bloc), (process, all), (all, country), (all, bloc), (all, all)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.rows = {
            (r.parameter, r.process, r.region): (float(r.value), float(r.low), float(r.high))
            for r in table.itertuples(index=False)
        }

    def find(
        self, parameter: str, process: str, country: str, bloc: str
    ) -> tuple[float, float, float] | None:
        """(value, low, high) of ``parameter`` for a plant of ``process`` in ``country``, or None
        where no row covers it (optional parameters such as ``market_quota``)."""
        for proc in (process, "all"):
            for region in (country, bloc, "all"):
                hit = self.rows.get((parameter, proc, region))
                if hit is not None:
                    return hit
        return None

    def get(self, parameter: str, process: str, country: str, bloc: str) -> tuple[float, float, float]:
        """(value, low, high) of ``parameter`` for a plant of ``process`` in ``country``."""
        hit = self.find(parameter, process, country, bloc)
        if hit is not None:
            return hit
        raise DataError(
            f"{INVESTMENT}: no row for parameter {parameter!r} that covers process {process!r} in "
            f"{country} ({bloc}); expected a row with process {process!r} or 'all' and region "
            f"{country!r}, {bloc!r} or 'all'"
        )


def profitability_index(
    margin_per_month: np.ndarray,
    capex: np.ndarray,
    rate: np.ndarray,
    life_years: np.ndarray,
    lead_months: np.ndarray,
) -> np.ndarray:
    """PV of a constant monthly cash margin over ``life_years``, starting after ``lead_months``,
    discounted at annual ``rate``, over capex (PI > 1 ⇔ NPV > 0)."""
    r = np.maximum(rate, 1e-6)
    annuity = (1.0 - (1.0 + r) ** (-life_years)) / r
    pv = 12.0 * margin_per_month * annuity * (1.0 + r) ** (-lead_months / 12.0)
    return np.divide(pv, capex, out=np.full_like(pv, np.inf), where=capex > 0)


def fid_probability(pi: np.ndarray, finance_months: np.ndarray, scale: float) -> np.ndarray:
    """Monthly probability of a final investment decision: a hazard ``1/finance_months``
    modulated by a logistic in PI − 1 (firms differ in their hurdle; s = ``scale``)."""
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-(pi - 1.0) / scale))
    return np.clip(sig / np.maximum(finance_months, 1.0), 0.0, 1.0)


def ramp_share(months_online: np.ndarray, ramp_months: np.ndarray) -> np.ndarray:
    """Share of the final capacity reached after ``months_online`` (linear ramp)."""
    return np.clip(months_online / np.maximum(ramp_months, 1.0), 0.0, 1.0)


@dataclass
class Pipeline:
    """All potential capacity additions, one row each (vectorised state)."""

    ids: np.ndarray  # component id (str)
    project: np.ndarray  # project id (str)
    node: np.ndarray  # facility node that receives the capacity
    kind: np.ndarray  # KIND_*
    status: np.ndarray  # stage (CONCEPT ... CANCELLED)
    months_left: np.ndarray  # on the current stage's clock
    nameplate: np.ndarray  # activity units per month
    capex: np.ndarray  # USD
    cash_cost: np.ndarray  # USD per activity unit (conversion cost, modelled inputs excluded)
    final_share: np.ndarray  # share of nameplate eventually reached
    permit_months: np.ndarray
    finance_months: np.ndarray
    construction_months: np.ndarray
    ramp_months: np.ndarray
    life_years: np.ndarray
    hurdle: np.ndarray
    risk_premium: np.ndarray
    abandon_rate: np.ndarray  # per year
    max_expansion: np.ndarray  # per year: brownfield capacity a plant may start, share of its capacity
    country: np.ndarray  # country index
    stage: np.ndarray  # origin stage name of the process (str), for policy terms
    months_online: np.ndarray
    permitted_month: np.ndarray  # step the permit was granted (-1: not yet)
    financed_month: np.ndarray
    start_month: np.ndarray  # step of first production (-1: not yet)

    @property
    def size(self) -> int:
        return int(self.ids.size)

    def group(self) -> np.ndarray:
        """Index of each row's project (components of one project decide together); computed once."""
        if getattr(self, "_group", None) is None or self._group.size != self.size:
            first, self._group = np.unique(self.project, return_index=True, return_inverse=True)[1:]
            self._first_row = first  # each project's first row
        return self._group

    def members(self) -> np.ndarray:
        """Per row: how many rows its project has; computed once."""
        if getattr(self, "_members", None) is None or self._members.size != self.size:
            self._members = np.bincount(self.group())[self.group()]
        return self._members

    def first_rows(self) -> np.ndarray:
        """The first row of each project (in project order); computed once."""
        self.group()
        return self._first_row

    def online(self) -> np.ndarray:
        """Capacity each row adds now (activity units per month)."""
        share = np.where(
            self.status == RAMPING,
            ramp_share(self.months_online, self.ramp_months),
            np.where(self.status == OPERATING, 1.0, 0.0),
        )
        return self.nameplate * self.final_share * share

    def frame(self, countries: list[str], start: tuple[int, int]) -> pd.DataFrame:
        """One row per project component: stage now and the months of its milestones."""

        y0, m0 = start
        last = max(
            int(a.max(initial=-1)) for a in (self.permitted_month, self.financed_month, self.start_month)
        )
        names = [f"{y0 + (m0 - 1 + t) // 12}-{(m0 - 1 + t) % 12 + 1:02d}" for t in range(last + 1)]

        def month(steps: np.ndarray) -> list[str | None]:
            return [names[t] if t >= 0 else None for t in steps.tolist()]  # each month named once

        return pd.DataFrame(
            {
                "component": self.ids,
                "project": self.project,
                "kind": [KIND_NAMES[k] for k in self.kind],
                "country": [countries[c] for c in self.country],
                "stage": self.stage,
                "status": [STATUS_NAMES[s] for s in self.status],
                "nameplate_tpa": self.nameplate * 12,
                "online_tpa": self.online() * 12,
                "capex_usd": self.capex,
                "permitted": month(self.permitted_month),
                "financed": month(self.financed_month),
                "first_production": month(self.start_month),
            }
        )


def _month_index(value: str, start: tuple[int, int]) -> int:
    y, m = (int(x) for x in str(value).split("-")[:2])
    return (y - start[0]) * 12 + m - start[1]


class _Rows:
    """Makes pipeline rows: the parameters of a project's process, country and bloc. The random
    parts (the final ramp-up share of each project, a prospect's capex and cash cost) are not
    drawn here: each is listed in :attr:`draws`, in the order the rows ask for them, and drawn
    per model by :func:`_with_draws` (the rows themselves are the same for every seed)."""

    def __init__(self, world: World, net: Network) -> None:
        self.net = net
        self.table = Parameters(world.investment)
        self.node_of = {n: i for i, n in enumerate(net.node_id)}
        self.bloc_of = dict(zip(world.countries["country"], world.countries["bloc"]))
        self.stage_of = dict(zip(world.processes["process"], world.processes["origin_stage"]))
        # (row, field or None: drawn and discarded, (low, high) of a uniform or (low, mode, high)
        # of a triangular, factor)
        self.draws: list[tuple[int, str | None, tuple[float, ...], float]] = []
        self.count = 0  # rows made so far (every row made is kept, in this order)

    def row(self, ids: str, project: str, node: str, kind: int, country: str, process: str) -> dict[str, Any]:
        bloc = self.bloc_of[country]
        row = {
            "ids": ids,
            "project": project,
            "node": self.node_of[node],
            "kind": kind,
            "country": self.net.countries.index(country),
            "stage": self.stage_of[process],
        }
        for p in PARAMETERS:
            value, lo, hi = self.table.get(p, process, country, bloc)
            if p == "ramp_final_share":
                row["final_share"] = lo
                if hi > lo:
                    self.draws.append((self.count, "final_share", (lo, hi), 1.0))
            else:
                row[p] = value
        self.count += 1
        return row

    def fix(self, field: str) -> None:
        """``field`` of the last row made is set, not drawn: its draw is still made (the stream
        advances as it always has) and discarded."""
        for i in range(len(self.draws) - 1, -1, -1):
            row, name, args, factor = self.draws[i]
            if row != self.count - 1:
                break
            if name == field:
                self.draws[i] = (row, None, args, factor)

    def triangular(self, field: str, lo: float, mode: float, hi: float, factor: float = 1.0) -> float:
        """``field`` of the last row made: a triangular draw times ``factor`` (listed in
        :attr:`draws`; returns a placeholder), or ``mode`` times ``factor`` when the range is empty."""
        if hi > lo:
            self.draws.append((self.count - 1, field, (lo, mode, hi), factor))
            return 0.0
        return float(mode) * factor


def _named_rows(
    world: World, make: _Rows, covered: set[str], start: tuple[int, int], overrun: float
) -> list[dict]:
    """Named projects at their base-year stage; guidance dates slip by the schedule overrun."""
    rows = []
    for r in world.projects.itertuples(index=False):
        if r.process not in covered:
            continue
        row = make.row(
            r.facility, r.project, new_capacity_node(r.process, r.country), KIND_NAMED, r.country, r.process
        )
        row.update(nameplate=r.capacity_tpa / 12, capex=r.capex_usd_m * 1e6, cash_cost=r.cash_cost_usd_per_t)
        to_start = max(_month_index(r.expected_start, start), 1) * overrun
        if r.status_base == "announced":
            row.update(status=ANNOUNCED, months_left=row["permit_months"])
        elif r.status_base == "permitted":
            row.update(status=PERMITTED, months_left=0.0)
        else:  # financed or under construction: the guidance date, slipped, ends construction
            row.update(status=FINANCED, months_left=max(to_start, 1.0))
        rows.append(row)
    return rows


def _prospect_rows(world: World, make: _Rows, covered: set[str]) -> list[dict]:
    """Prospects: count × (capacity, capex and cash cost drawn from triangular distributions)."""
    rows = []
    for r in world.prospects.itertuples(index=False):
        if r.process not in covered:
            continue
        for k in range(int(r.count)):
            name = f"prospect_{r.process}_{r.country}_{k + 1}"
            row = make.row(
                name, name, new_capacity_node(r.process, r.country), KIND_PROSPECT, r.country, r.process
            )
            capex = make.triangular(
                "capex",
                r.capex_usd_per_tpa_low,
                r.capex_usd_per_tpa_mode,
                r.capex_usd_per_tpa_high,
                r.capacity_tpa,
            )
            row.update(
                nameplate=r.capacity_tpa / 12,
                capex=capex,
                cash_cost=make.triangular("cash_cost", r.cash_cost_low, r.cash_cost_mode, r.cash_cost_high),
                status=CONCEPT,
                months_left=0.0,
            )
            rows.append(row)
    return rows


def _expansion_rows(
    world: World, net: Network, make: _Rows, covered: set[str], expansion_share: float
) -> list[dict]:
    """Brownfield expansions of every facility of a covered process that had capacity in the base year;
    an operator's plants expand together (mine + separation, say, are one business)."""
    fac = world.facilities
    operator: dict[str, str] = {}
    if "operator" in fac.columns:
        operator = {f: str(o).strip() for f, o in zip(fac["facility"], fac["operator"]) if str(o).strip()}
    shared = pd.Series(list(operator.values()), dtype=object).value_counts().to_dict()
    rows = []
    for i in np.flatnonzero(net.is_facility & (net.capacity > 0)):
        process = str(net.node_process[i])
        if process not in covered:
            continue
        country = net.countries[net.node_country[i]]
        op = operator.get(net.node_id[i], "")
        for k in range(EXPANSION_OPTIONS):
            name = f"{net.node_id[i]}_expansion_{k + 1}"
            group = f"{op}_expansion_{k + 1}" if op and shared.get(op, 0) > 1 else name
            row = make.row(name, group, net.node_id[i], KIND_EXPANSION, country, process)
            # an option no larger than the plant may have in flight under its yearly cap
            build_years = (row["construction_months"] + row["ramp_months"] / 2) / 12
            size = min(expansion_share, row["max_expansion_per_year"] * build_years) * net.capacity[i]
            row.update(
                nameplate=size,
                capex=row["capex_usd_per_tpa"] * row["brownfield_capex_factor"] * size * 12,
                cash_cost=float(net.cash_cost[i]),
                status=PERMITTED,  # an existing site: no new permit
                months_left=0.0,
                final_share=1.0,  # the operator knows its site and process
                ramp_months=row["ramp_months"] / 2,
            )
            make.fix("final_share")
            rows.append(row)
    return rows


def build_pipeline(
    world: World,
    net: Network,
    start: tuple[int, int],
    params: Any,
    rng: np.random.Generator,
    data_dir: Path | None = None,
    digests: tuple[str, str] | None = None,
) -> Pipeline:
    """Rows for named projects, prospects and brownfield expansions of the chains that have an
    ``investment.csv``; facilities of other chains keep the exogenous capacity trend. The rows
    without their random parts are built once per process for a (world, network, start,
    parameters) and copied (kept in the disk cache too, under the SHA-256 of what the rows read);
    the draws are made from ``rng`` per call, in the same order. ``digests``: the content
    digests of the world and the network where the caller knows them to be current (both just
    loaded: :class:`~critmin.sim.model.CritminModel`), which then key the disk entry in place
    of hashing what the rows read."""
    overrun, share = float(params.schedule_overrun), float(params.expansion_share)
    key = (id(world), id(net), start, overrun, share)
    # the entry holds the world and network themselves, so their ids are not reused while it lives
    held_world, held_net, template, draws = memo(
        "investment.pipeline",
        key,
        lambda: (
            world,
            net,
            *disk_memo(
                "pipeline",
                lambda: disk_key(
                    "pipeline",
                    content_digest(*(digests or _pipeline_inputs(world, net)), start, overrun, share),
                ),
                lambda: _pipeline_rows(world, net, start, overrun, share),
                after_load=_frozen,
            ),
        ),
    )
    assert held_world is world and held_net is net
    return _with_draws(template, draws, rng)


def _pipeline_inputs(world: World, net: Network) -> tuple:
    """Everything of a world and its network that the rows read (:func:`_pipeline_rows`)."""
    return (
        world.investment, world.projects, world.prospects, world.facilities, world.countries, world.processes,
        net.node_id, net.countries, net.is_facility, net.capacity, net.node_process, net.node_country,
        net.cash_cost,
    )  # fmt: skip


def _frozen(
    value: tuple[Pipeline, list[tuple[int, str | None, tuple[float, ...], float]]],
) -> tuple[Pipeline, list[tuple[int, str | None, tuple[float, ...], float]]]:
    for a in vars(value[0]).values():
        a.flags.writeable = False  # shared by every model of the process: copied before use
    return value


def _pipeline_rows(
    world: World, net: Network, start: tuple[int, int], overrun: float, expansion_share: float
) -> tuple[Pipeline, list[tuple[int, str | None, tuple[float, ...], float]]]:
    """The pipeline with placeholders where a value is drawn, and the draws (see :class:`_Rows`)."""
    inv = world.investment
    covered = set(inv["process"]) - {"all"}
    if "all" in set(inv["process"]):
        covered = set(world.processes["process"])
    make = _Rows(world, net)  # the draws follow this order: named, prospects, expansions
    rows = _named_rows(world, make, covered, start, overrun)
    rows += _prospect_rows(world, make, covered)
    rows += _expansion_rows(world, net, make, covered, expansion_share)
    return _frozen((_as_pipeline(pd.DataFrame(rows)) if rows else empty_pipeline(), make.draws))


def _with_draws(
    template: Pipeline,
    draws: list[tuple[int, str | None, tuple[float, ...], float]],
    rng: np.random.Generator,
) -> Pipeline:
    """A fresh copy of ``template`` with its random values drawn from ``rng`` in row order (one
    scalar draw each, as the rows were made: the generator's stream is consumed the same way)."""
    p = Pipeline(**{f.name: getattr(template, f.name).copy() for f in fields(Pipeline)})
    for row, name, args, factor in draws:
        value = float(rng.uniform(*args)) if len(args) == 2 else float(rng.triangular(*args))
        if name is not None:
            getattr(p, name)[row] = value * factor
    return p


def _as_pipeline(df: pd.DataFrame) -> Pipeline:
    n = len(df)
    floats = {
        "months_left": "months_left", "nameplate": "nameplate", "capex": "capex", "cash_cost": "cash_cost",
        "final_share": "final_share", "permit_months": "permit_months", "finance_months": "finance_months",
        "construction_months": "construction_months", "ramp_months": "ramp_months",
        "life_years": "lifetime_years", "hurdle": "hurdle_rate", "risk_premium": "risk_premium",
        "abandon_rate": "abandon_rate_per_year", "max_expansion": "max_expansion_per_year",
    }  # fmt: skip
    status = df["status"].to_numpy()
    return Pipeline(
        ids=np.array(df["ids"], dtype=str),
        project=np.array(df["project"], dtype=str),
        node=np.array(df["node"], dtype=np.int64),
        kind=np.array(df["kind"], dtype=np.int64),
        status=np.array(df["status"], dtype=np.int64),
        country=np.array(df["country"], dtype=np.int64),
        stage=np.array(df["stage"], dtype=str),
        months_online=np.zeros(n),
        permitted_month=np.where(status >= PERMITTED, 0, -1).astype(np.int64),
        financed_month=np.where(status >= FINANCED, 0, -1).astype(np.int64),
        start_month=np.full(n, -1, dtype=np.int64),
        **{field: np.array(df[col], dtype=float) for field, col in floats.items()},
    )


def empty_pipeline() -> Pipeline:
    z, zi = np.zeros(0), np.zeros(0, dtype=np.int64)
    zs = np.zeros(0, dtype=str)
    return Pipeline(zs, zs, zi, zi, zi, z, z, z, z, z, z, z, z, z, z, z, z, z, z, zi, zs, z, zi, zi, zi)


@dataclass
class Terms:
    """What policies offer the rows this month (arrays over pipeline rows)."""

    unit_margin: np.ndarray  # expected output value − input cost per activity unit (floors applied)
    derisked: np.ndarray  # bool: offtake or price floor covers the row's node
    rate_reduction: np.ndarray  # concessional finance, absolute
    permit_reduction: np.ndarray  # permitting acceleration, share of the permitting clock
    # per row: capacity (activity units per month) its market-following quota still allows
    # (:func:`quota_room`; inf: the row is under no such rule); None: no row is
    quota_room: np.ndarray | None = None
    quota_key: np.ndarray | None = None  # per row: the quota it counts against (-1: none)


def project_index(
    p: Pipeline, pi: np.ndarray, decided: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """An integrated project (mine + separation, say) is decided as one: its PI is the
    capex-weighted mean of its components' (= total PV / total capex). Rows marked ``decided``
    (a phase already past its FID) form a set of their own, so a sunk phase does not weigh in
    the PI of the phases still to decide. Returns the project PI per row and the index of each
    row's project."""
    group = p.group()
    key = group if decided is None else group * 2 + decided
    finite = np.isfinite(pi) & (p.capex > 0)
    pv = np.where(finite, np.where(finite, pi, 0.0) * p.capex, 0.0)
    total_pv = np.bincount(key, weights=pv)
    total_capex = np.bincount(key, weights=np.where(finite, p.capex, 0.0))
    proj = np.divide(total_pv, total_capex, out=np.full(total_pv.size, np.inf), where=total_capex > 0)
    return proj[key], group


def expansion_room(p: Pipeline, capacity: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Which of the expansion decisions ``want`` may go ahead: a plant's capacity in construction
    and ramp-up stays within ``max_expansion_per_year`` × the years it takes to build (the
    first-listed options go first). Other rows pass."""
    exp = p.kind == KIND_EXPANSION
    cand = np.flatnonzero(exp & want)
    if cand.size == 0:  # no expansion decision this month (most months): every row passes
        return np.ones(p.size, bool)
    in_flight = exp & ((p.status == FINANCED) | (p.status == RAMPING))
    flight = np.bincount(p.node, weights=np.where(in_flight, p.nameplate, 0.0), minlength=capacity.size)
    years = (p.construction_months + p.ramp_months) / 12.0
    limit = p.max_expansion * years * capacity[p.node]
    order = cand[np.argsort(p.node[cand], kind="stable")]
    size = p.nameplate[order]
    cum = np.cumsum(size)
    node = p.node[order]
    first = np.ones(order.size, bool)  # np.r_ costs more than the comparison
    np.not_equal(node[1:], node[:-1], out=first[1:])
    start = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
    before = cum - size - (cum[start] - size[start])  # earlier candidates of the same plant
    ok = np.ones(p.size, bool)
    ok[order] = flight[p.node[order]] + before + size <= limit[order] + 1e-9
    return ok


def advance(
    p: Pipeline, terms: Terms, rng: np.random.Generator, t: int, params: Any, capacity: np.ndarray
) -> np.ndarray:
    """One month of the pipeline; returns the profitability index of each row (for reporting)."""
    rate = p.hurdle + p.risk_premium * (1.0 - terms.derisked) - terms.rate_reduction
    margin = (terms.unit_margin - p.cash_cost) * p.nameplate * p.final_share
    status = p.status  # as the month starts (the new one is set at the end)
    announced, waiting, cancelled = status == ANNOUNCED, status == PERMITTED, status == CANCELLED
    lead = np.where(status <= ANNOUNCED, p.permit_months, 0.0) + p.construction_months
    # a named project's phase already past its FID (White Mesa phase 1, say) neither blocks the
    # FID of the phases still to decide nor weighs in their PI; before issue 15 a built phase 1
    # kept its phase 2 from ever taking FID. Integrated components (mine + separation) that have
    # not decided still decide together, and so do an operator's expansion options.
    decided = (p.kind == KIND_NAMED) & (status >= FINANCED) & (status <= OPERATING)
    pi, group = project_index(p, profitability_index(margin, p.capex, rate, p.life_years, lead), decided)
    # one draw per project and month (components decide together); common random numbers
    # across policy runs, since every row draws every month whatever happens
    draw = rng.random(p.size)[p.first_rows()][group]
    viable = pi > 1.0
    # concepts are announced at the announcement rate while viable
    announce = (status == CONCEPT) & viable & (draw < params.announce_rate_per_year / 12)
    # permitting clock (the acceleration applies to what is left of it)
    permitting = announced
    p.months_left = np.where(
        permitting, p.months_left - 1.0 / np.maximum(1.0 - terms.permit_reduction, 1e-6), p.months_left
    )
    permitted = permitting & (p.months_left <= 1e-9)
    # final investment decisions and cancellations
    fid = waiting & (draw < fid_probability(pi, p.finance_months, params.fid_pi_scale))
    fid &= expansion_room(p, capacity, fid)
    if terms.quota_room is not None and terms.quota_key is not None:
        fid &= within_quota(p, fid, terms.quota_room, terms.quota_key)
    # a project's components advance together: FID once all are permitted, and only if every
    # component takes it (components of different processes have different finance clocks,
    # e.g. a brine field and its carbonate plant; the slowest decides)
    members = p.members()
    all_permitted = np.bincount(group, weights=(waiting | cancelled | decided) * 1.0)
    fid &= all_permitted[group] == members
    fid_all = np.bincount(group, weights=(fid | cancelled | decided) * 1.0)
    fid &= fid_all[group] == members
    # pre-FID projects that do not pay are cancelled at the attrition rate, all components at
    # once (expansion options of operating plants just wait)
    pre_fid = (announced | waiting) & (p.kind != KIND_EXPANSION)
    cancel = pre_fid & ~fid & ~viable & (draw > 1.0 - p.abandon_rate / 12)
    cancel = pre_fid & ~fid & (np.bincount(group, weights=cancel * 1.0)[group] > 0)
    # construction, ramp-up
    building = status == FINANCED
    p.months_left = np.where(building, p.months_left - 1.0, p.months_left)
    first = building & (p.months_left <= 1e-9)
    ramping = status == RAMPING
    p.months_online = np.where(ramping | first, p.months_online + 1.0, p.months_online)
    done = ramping & (p.months_online >= p.ramp_months)

    p.status = np.where(announce, ANNOUNCED, p.status)
    p.months_left = np.where(announce, p.permit_months, p.months_left)
    p.status = np.where(permitted, PERMITTED, p.status)
    p.permitted_month = np.where(permitted, t, p.permitted_month)
    p.status = np.where(fid, FINANCED, p.status)
    p.financed_month = np.where(fid, t, p.financed_month)
    p.months_left = np.where(fid, p.construction_months, p.months_left)
    p.status = np.where(cancel, CANCELLED, p.status)
    p.status = np.where(first, RAMPING, p.status)
    p.start_month = np.where(first, t, p.start_month)
    p.status = np.where(done, OPERATING, p.status)
    return pi


def renew_expansions(p: Pipeline, capacity: np.ndarray, params: Any) -> np.ndarray:
    """A completed brownfield expansion becomes part of its plant; the next option (sized on the
    plant's new capacity) opens. Returns the capacity to add to each row's node (per row)."""
    done = (p.kind == KIND_EXPANSION) & (p.status == OPERATING)
    if not done.any():  # no expansion completed this month (most months)
        return np.zeros(p.size)
    added = np.where(done, p.online(), 0.0)
    build_years = (p.construction_months[done] + p.ramp_months[done]) / 12
    share = np.minimum(params.expansion_share, p.max_expansion[done] * build_years)
    size = share * capacity[p.node[done]]
    p.capex[done] = p.capex[done] / np.maximum(p.nameplate[done], 1e-12) * size
    p.nameplate[done] = size
    p.status[done] = PERMITTED
    p.months_online[done] = 0.0
    p.months_left[done] = 0.0
    return added


@dataclass
class MarketQuota:
    """The dominant producer's mining quota follows the market (issue 15).

    China sets its REE mining quota each year from, among other criteria, "market demand"
    (MIIT/NDRC/MNR Interim Measures on total-quantity control, Decree No. 71 of 2025): +20-25%
    a year in 2021-23 while NdPr was dear, +5.9% in 2024 after prices halved, flat in 2025
    (facts.md §3.1). Without a rule its brownfield expansions (quota increases) pay at any price
    the runs reach and grow at the yearly cap whatever demand does. Here the expansions of a
    quota-bound country's plants of a process (China's REE mines) are held to
    ``capacity + in flight ≤ ratio0 × D(t) × (1 + headroom)``: D is that country's processors'
    expected demand for the mined commodity (their normal orders ``State.orders_lr`` of their
    main outputs, domestic and export, in tonnes of feed; each plant's output mix valued at 2024
    prices), ratio0 its 2024 mine capacity over D in 2024. The quota grows by what its own
    processors' expected feed grows, and no faster than pays (the PI test and the yearly cap
    still apply). The plants held are named in the chain's ``investment.csv`` (``market_quota``
    rows); groups: one per held (process, country)."""

    rows: np.ndarray  # pipeline rows under the rule
    row_group: np.ndarray  # per ruled row: its group
    mine_nodes: np.ndarray  # the ruled country's plants of the mining process
    mine_group: np.ndarray  # per mine node: its group
    out_slots: np.ndarray  # main output slots of the processors that use the mined commodity
    weight: np.ndarray  # per output slot: t of feed per t of normal orders
    slot_group: np.ndarray  # per output slot: its group
    ratio0: np.ndarray  # per group: 2024 mine capacity over 2024 expected feed demand

    @property
    def groups(self) -> int:
        return int(self.ratio0.size)

    def demand(self, orders_lr: np.ndarray) -> np.ndarray:
        """Per group: the processors' expected demand for the mined commodity, t per month."""
        return np.bincount(
            self.slot_group, weights=self.weight * orders_lr[self.out_slots], minlength=self.groups
        )


def market_quota(
    world: World,
    net: Network,
    p: Pipeline,
    main_output: np.ndarray,
    price0: np.ndarray,
    orders0: np.ndarray,
) -> MarketQuota | None:
    """The rule's index arrays (computed once per model). The plants it holds are named by the
    chain's ``investment.csv``: ``market_quota`` 1 for (process, region), the most specific row
    as for every parameter (China's REE mines: ``mine_ree,CHN``); a plant of a process no such
    row covers is free. ``main_output`` per slot (not scrap), ``price0`` per slot the 2024 price
    of its commodity in its market, ``orders0`` per slot the 2024 normal orders. None when no
    pipeline row is under the rule."""
    table = world.investment[world.investment["parameter"] == "market_quota"]
    if table.empty or p.size == 0:
        return None
    rules = Parameters(table)
    bloc_of = dict(zip(world.countries["country"], world.countries["bloc"]))
    n = len(net.node_id)
    fac = net.is_facility
    out = np.flatnonzero((net.slot_role == OUTPUT) & main_output)
    process = np.asarray(net.node_process, dtype=object)

    def ruled(proc: str, country: str) -> bool:
        hit = rules.find("market_quota", proc, country, bloc_of.get(country, ""))
        return hit is not None and hit[0] > 0

    exp_nodes = np.unique(p.node[p.kind == KIND_EXPANSION])
    keys = sorted({(str(process[i]), int(net.node_country[i])) for i in exp_nodes})
    rows, row_group, mine_nodes, mine_group = [], [], [], []
    out_slots, weight, slot_group, ratio0 = [], [], [], []
    for proc, c in keys:
        if not ruled(proc, net.countries[c]):
            continue
        mines = exp_nodes[(process[exp_nodes] == proc) & (net.node_country[exp_nodes] == c)]
        commodity = np.unique(net.slot_commodity[out[np.isin(net.slot_node[out], mines)]])
        # the country's processors of the commodity, and their feed per unit of activity
        feed_slot = np.flatnonzero(
            (net.slot_role == INPUT)
            & np.isin(net.slot_commodity, commodity)
            & fac[net.slot_node]
            & (net.node_country[net.slot_node] == c)
            & ~np.isin(net.slot_node, mines)
        )
        if feed_slot.size == 0:
            raise DataError(
                f"{INVESTMENT}: market_quota covers {proc!r} in {net.countries[c]}, but no plant there "
                f"uses its output; expected processors of it in that country (their orders are the demand it follows)"
            )
        users = np.unique(net.slot_node[feed_slot])
        feed = np.bincount(net.slot_node[feed_slot], weights=net.slot_coef[feed_slot], minlength=n)
        u_out = out[np.isin(net.slot_node[out], users)]
        value = np.bincount(net.slot_node[u_out], weights=net.slot_coef[u_out] * price0[u_out], minlength=n)
        node = net.slot_node[u_out]
        # activity implied by the orders: the value-weighted mean over outputs of orders/coef
        w = np.divide(
            price0[u_out] * feed[node], value[node], out=np.zeros(u_out.size), where=value[node] > 0
        )
        d0 = float(w @ orders0[u_out])
        if d0 <= 0:
            continue
        g = len(ratio0)
        held = np.flatnonzero((p.kind == KIND_EXPANSION) & np.isin(p.node, mines))
        rows.append(held)
        row_group.append(np.full(held.size, g))
        mine_nodes.append(mines)
        mine_group.append(np.full(mines.size, g))
        out_slots.append(u_out)
        weight.append(w)
        slot_group.append(np.full(u_out.size, g))
        ratio0.append(float(net.capacity[mines].sum()) / d0)
    if not ratio0:
        return None
    cat = np.concatenate
    return MarketQuota(
        cat(rows), cat(row_group), cat(mine_nodes), cat(mine_group), cat(out_slots), cat(weight),
        cat(slot_group), np.array(ratio0),
    )  # fmt: skip


def quota_room(
    mq: MarketQuota, p: Pipeline, capacity: np.ndarray, orders_lr: np.ndarray, headroom: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the capacity its market-following quota still allows (activity units per month;
    inf for rows under no rule) and the quota it counts against (-1: none). Capacity counts what
    operates now (``capacity``, structural) and what is financed or ramping and not yet online."""
    target = mq.ratio0 * mq.demand(orders_lr) * (1.0 + headroom)
    r = mq.rows
    st = p.status[r]
    pending = np.where((st == FINANCED) | (st == RAMPING), p.nameplate[r] * p.final_share[r], 0.0)
    pending = pending - np.where(st == RAMPING, p.online()[r], 0.0)
    committed = np.bincount(mq.mine_group, weights=capacity[mq.mine_nodes], minlength=mq.groups)
    committed += np.bincount(mq.row_group, weights=pending, minlength=mq.groups)
    room = np.full(p.size, np.inf)
    room[r] = (target - committed)[mq.row_group]
    key = np.full(p.size, -1, dtype=np.int64)
    key[r] = mq.row_group
    return room, key


def within_quota(p: Pipeline, want: np.ndarray, room: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Which of the decisions ``want`` fit their quota's ``room`` (the first-listed rows of a
    quota go first: each must fit with the ones before it). Other rows pass."""
    ok = np.ones(p.size, bool)
    cand = np.flatnonzero(want & (key >= 0))
    if cand.size == 0:
        return ok
    order = cand[np.argsort(key[cand], kind="stable")]
    size = p.nameplate[order] * p.final_share[order]
    k = key[order]
    cum = np.cumsum(size)
    first = np.ones(order.size, bool)
    np.not_equal(k[1:], k[:-1], out=first[1:])
    start = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
    upto = cum - (cum[start] - size[start])  # this row and the earlier ones of its quota
    ok[order] = upto <= room[order] + 1e-9
    return ok
