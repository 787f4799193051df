"""Facts as data and the scorer: what happened in each episode, and how far a run is from it.

The facts live in ``data/validation/``: ``episodes.csv`` (one row per episode: the scenario and
shock that replay it, the months shifted, the pre-shock window) and ``<episode>.csv`` (one row per
fact). A fact names a quantity in the tidy timeseries of a run (commodity, region, variable), a
window of historical months, a statistic, and the observed value with its hit band, tolerance and
direction rule. The vocabulary (see docs/validation.md):

- ``statistic``: ``ratio_to_twin`` (shock run over its no-shock twin, same seed),
  ``ratio_to_pre`` (over the shock run's own pre-shock mean), ``ratio_to_region`` (over the same
  quantity in ``relative_to``), ``share`` (of the ``relative_to`` total, default WORLD, summed over
  the window), ``share_of_demand`` (the variable over final demand, same commodity and region),
  ``change`` (shock run minus twin, in the variable's unit), ``level`` (the value itself),
  ``ratio_to_year_before`` (year on year: the shock run over the same months twelve months
  earlier in the same run: the comparison a record stated year on year makes, a year's
  growth included, which the twin would take out); ``origin_share`` (origin-based dependency,
  analysis/metrics.py: the share, by mass over the window, of the region's ``consumption`` or
  ``imports`` of the commodity whose own stage happened in the country ``relative_to``; the
  region may be a country, a bloc or a group of ``experiment.metrics.regions``, e.g. EU).
- ``agg`` over the window: ``mean`` (ratios: of window totals), ``sum``, ``min``, ``max`` (ratios:
  the extreme monthly ratio).
- verdict on the median over seeds: ``hit`` inside [min(low, observed) − tolerance,
  max(high, observed) + tolerance] (edges included); ``direction`` outside it but moved from the
  pre-shock value of the same statistic the way the ``direction`` column says (``up``/``down``,
  by more than 1%); ``miss`` otherwise (also when the model cannot measure it, e.g. a zero twin).

This module reads run results only (tidy ``timeseries`` tables), never the engine.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from critmin.sim.world import DataError

STATISTICS = (
    "ratio_to_twin",
    "ratio_to_pre",
    "ratio_to_region",
    "share",
    "share_of_demand",
    "change",
    "level",
    "ratio_to_year_before",
    "origin_share",
)
YEAR = pd.DateOffset(months=12)
TWIN_STATISTICS = ("ratio_to_twin", "change")  # need the no-shock twin
AGGS = ("mean", "sum", "min", "max")
DIRECTIONS = ("up", "down", "none")
VARIABLES = (
    "price",
    "buyer_price",
    "production",
    "capacity",
    "use",
    "consumption",
    "demand",
    "unmet_demand",
    "imports",
    "exports",
    "stock",
)
PRICES = ("price", "buyer_price")
# origin_share: the dependency share of run metrics (analysis/metrics.py, origin_shares), by mass;
# the variable names its scope: what the region's plants and manufacturers use, or its imports
ORIGIN_SCOPES = {"consumption": "consumption", "imports": "imports"}
GROUP = re.compile(r"^[A-Za-z][A-Za-z0-9_+]*$")  # a country, a bloc or a group of experiment.metrics.regions
VERDICTS = ("hit", "direction", "miss")
MIN_MOVE = 0.01  # a 'direction' needs a move of more than 1% of the pre-shock value
MISS_CAP = 3.0  # normalised miss is capped (one absurd fact must not drown the others)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
REGION = re.compile(r"^[A-Z]{3}$|^WORLD$")

EPISODE_COLUMNS = (
    "episode",
    "label",
    "scenario",
    "shock",
    "overrides",
    "shift_months",
    "shock_month",
    "pre",
    "source",
)
FACT_COLUMNS = (
    "fact",
    "label",
    "commodity",
    "region",
    "variable",
    "statistic",
    "window",
    "agg",
    "pre",
    "relative_to",
    "observed",
    "low",
    "high",
    "tolerance",
    "direction",
    "weight",
    "expressible",
    "reason",
    "source",
)


# ---------------------------------------------------------------------- the facts
@dataclass(frozen=True)
class Window:
    """Historical months ``first..last`` (inclusive), shifted into the model's calendar."""

    first: pd.Timestamp
    last: pd.Timestamp

    def months(self) -> pd.DatetimeIndex:
        return pd.date_range(self.first, self.last, freq="MS")


@dataclass(frozen=True)
class Fact:
    episode: str
    fact: str
    label: str
    source: str
    expressible: bool
    reason: str = ""
    commodity: str = ""
    region: str = ""
    variable: str = ""
    statistic: str = ""
    window: Window | None = None
    window_text: str = ""  # as written (historical months)
    agg: str = "mean"
    pre: Window | None = None  # the pre-shock window (the episode's unless the fact names one)
    relative_to: str = ""
    observed: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    tolerance: float = 0.0
    direction: str = "none"
    weight: float = 1.0

    @property
    def band(self) -> tuple[float, float]:
        """The hit band: the observed value or range, widened by the tolerance."""
        lo = np.nanmin([self.low, self.observed])
        hi = np.nanmax([self.high, self.observed])
        return float(lo - self.tolerance), float(hi + self.tolerance)

    def observed_text(self) -> str:
        if not self.expressible:
            return ""
        lo, hi = self.low, self.high
        if np.isfinite(lo) and np.isfinite(hi) and (lo != self.observed or hi != self.observed):
            return f"{fmt(self.observed)} ({fmt(lo)} to {fmt(hi)})"
        return fmt(self.observed)


@dataclass(frozen=True)
class Episode:
    episode: str
    label: str
    scenario: str
    shock: str
    overrides: tuple[str, ...]
    shift_months: int
    shock_month: pd.Timestamp  # in the model's calendar
    pre: Window  # in the model's calendar
    source: str
    facts: tuple[Fact, ...] = field(default=())

    @property
    def has_twin(self) -> bool:
        return self.shock != "none"

    def end(self) -> pd.Timestamp:
        """The last month any fact of the episode needs (at least the shock month)."""
        last = [self.shock_month, self.pre.last]
        for f in self.facts:
            if f.expressible:
                last += [f.window.last, f.pre.last]
        return max(last)


def fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if a < 0.01 and v != 0 else f"{v:.2f}"


def validation_dir() -> Path:
    import critmin.data

    return Path(critmin.data.__file__).parent / "validation"


def _read_csv(path: Path, columns: tuple[str, ...], where: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{where}: no file {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{where}: not a readable CSV file ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise DataError(
            f"{where}: expected the columns {list(columns)}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unknown {extra}" if extra else "")
        )
    return frame.map(str.strip)


def _shift(month: str, shift: int) -> pd.Timestamp:
    return pd.Timestamp(month) + pd.DateOffset(months=shift)


def parse_window(text: str, shift: int, where: str) -> Window:
    """``YYYY-MM`` or ``YYYY-MM..YYYY-MM`` (historical), shifted by ``shift`` months."""
    parts = [p.strip() for p in text.split("..")]
    if len(parts) not in (1, 2) or not all(MONTH.match(p) for p in parts):
        raise DataError(f"{where}: expected a month YYYY-MM or a range YYYY-MM..YYYY-MM, got {text!r}")
    first, last = _shift(parts[0], shift), _shift(parts[-1], shift)
    if last < first:
        raise DataError(f"{where}: the range {text!r} ends before it starts")
    return Window(first, last)


def _number(value: str, where: str, required: bool) -> float:
    if value == "":
        if required:
            raise DataError(f"{where}: expected a number, got an empty cell")
        return float("nan")
    try:
        out = float(value)
    except ValueError:
        raise DataError(f"{where}: expected a number, got {value!r}") from None
    if not np.isfinite(out):
        raise DataError(f"{where}: expected a finite number, got {value!r}")
    return out


def load_episodes(folder: Path | None = None, names: list[str] | None = None) -> list[Episode]:
    """Read and check ``episodes.csv`` and each episode's facts; every error names file, row, column."""
    folder = Path(folder) if folder is not None else validation_dir()
    epath = folder / "episodes.csv"
    frame = _read_csv(epath, EPISODE_COLUMNS, str(epath))
    episodes: list[Episode] = []
    for i, row in frame.iterrows():
        at = f"{epath} row {i + 2}"  # the header is line 1
        name = row["episode"]
        if not re.match(r"^[a-z0-9_]+$", name):
            raise DataError(f"{at}, column episode: expected a name of a-z, 0-9 and _, got {name!r}")
        if any(e.episode == name for e in episodes):
            raise DataError(f"{at}, column episode: {name!r} is listed twice")
        for col in ("label", "scenario", "shock", "source"):
            if not row[col]:
                raise DataError(f"{at}, column {col}: expected a value, got an empty cell")
        try:
            shift = int(row["shift_months"])
        except ValueError:
            raise DataError(
                f"{at}, column shift_months: expected a whole number, got {row['shift_months']!r}"
            ) from None
        if not MONTH.match(row["shock_month"]):
            raise DataError(f"{at}, column shock_month: expected YYYY-MM, got {row['shock_month']!r}")
        pre = parse_window(row["pre"], shift, f"{at}, column pre")
        overrides = tuple(row["overrides"].split()) if row["overrides"] else ()
        for o in overrides:
            # an episode may name its policy mix (policy=<configs/policy name>): the instruments
            # in force in the world it replays (e.g. the IEA outlook's stated policies)
            if "=" not in o or o.startswith(("scenario=", "shock=", "seed=", "hydra")):
                raise DataError(
                    f"{at}, column overrides: expected Hydra key=value overrides of scenario values "
                    f"or policy=<mix> (not scenario=, shock=, seed= or hydra), got {o!r}"
                )
        episodes.append(
            Episode(
                episode=name,
                label=row["label"],
                scenario=row["scenario"],
                shock=row["shock"],
                overrides=overrides,
                shift_months=shift,
                shock_month=_shift(row["shock_month"], shift),
                pre=pre,
                source=row["source"],
            )
        )
    known = {e.episode for e in episodes}
    for path in sorted(folder.glob("*.csv")):
        if path.stem != "episodes" and path.stem not in known:
            raise DataError(f"{path}: no episode {path.stem!r} in {epath}; expected one of {sorted(known)}")
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DataError(f"episodes {unknown}: not in {epath}; expected some of {sorted(known)}")
        episodes = [e for e in episodes if e.episode in names]
    out = []
    for e in episodes:
        facts = load_facts(folder / f"{e.episode}.csv", e)
        out.append(Episode(**{**e.__dict__, "facts": tuple(facts)}))
    return out


def load_facts(path: Path, episode: Episode) -> list[Fact]:
    frame = _read_csv(path, FACT_COLUMNS, str(path))
    facts: list[Fact] = []
    for i, row in frame.iterrows():
        facts.append(parse_fact(row, episode, f"{path} row {i + 2}"))
        if sum(f.fact == facts[-1].fact for f in facts) > 1:
            raise DataError(f"{path} row {i + 2}, column fact: {facts[-1].fact!r} is listed twice")
    if not facts:
        raise DataError(f"{path}: expected at least one fact")
    return facts


def parse_fact(row: pd.Series, ep: Episode, at: str) -> Fact:
    """One row of a facts file, checked column by column (``at`` names file and row)."""

    def need(col: str) -> str:
        if not row[col]:
            raise DataError(f"{at}, column {col}: expected a value, got an empty cell")
        return row[col]

    name = need("fact")
    if not re.match(r"^[a-z0-9_]+$", name):
        raise DataError(f"{at}, column fact: expected a name of a-z, 0-9 and _, got {name!r}")
    label, source = need("label"), need("source")
    expr = row["expressible"].lower()
    if expr not in ("yes", "no"):
        raise DataError(f"{at}, column expressible: expected yes or no, got {row['expressible']!r}")
    if expr == "no":
        return Fact(ep.episode, name, label, source, False, reason=need("reason"))
    variable, statistic = need("variable"), need("statistic")
    if variable not in VARIABLES:
        raise DataError(f"{at}, column variable: expected one of {list(VARIABLES)}, got {variable!r}")
    if statistic not in STATISTICS:
        raise DataError(f"{at}, column statistic: expected one of {list(STATISTICS)}, got {statistic!r}")
    if statistic in TWIN_STATISTICS and not ep.has_twin:
        raise DataError(
            f"{at}, column statistic: {statistic} needs a shock and its no-shock twin; episode "
            f"{ep.episode!r} has shock none"
        )
    commodity, region = need("commodity"), need("region")
    coms = commodity.split("+")
    if not all(re.match(r"^[a-z0-9_]+$", c) for c in coms):
        raise DataError(f"{at}, column commodity: expected a commodity or a+b+..., got {commodity!r}")
    if statistic == "origin_share":
        _check_origin_share(row, variable, coms, region, at)
    regions = region_parts(region) if statistic != "origin_share" else ([region], [])
    if regions is None:
        raise DataError(
            f"{at}, column region: expected a country code (CHN), WORLD, A+B+... or WORLD-A, got {region!r}"
        )
    if variable in PRICES and (len(coms) > 1 or regions != ([region], [])):
        raise DataError(
            f"{at}, column {'commodity' if len(coms) > 1 else 'region'}: prices cannot be summed; expected "
            f"one commodity and one region (a country code or WORLD), got {commodity!r} / {region!r}"
        )
    relative_to = row["relative_to"]
    if statistic == "ratio_to_region" and not relative_to:
        raise DataError(f"{at}, column relative_to: ratio_to_region needs the region to compare with")
    if relative_to and statistic not in ("ratio_to_region", "share", "origin_share"):
        raise DataError(
            f"{at}, column relative_to: used by ratio_to_region, share and origin_share only, not {statistic}"
        )
    if relative_to and statistic != "origin_share" and region_parts(relative_to) is None:
        raise DataError(
            f"{at}, column relative_to: expected a region like the region column, got {relative_to!r}"
        )
    if statistic == "share" and variable in PRICES:
        raise DataError(f"{at}, column statistic: a share of a price means nothing; expected a quantity")
    agg = row["agg"] or "mean"
    if agg not in AGGS:
        raise DataError(f"{at}, column agg: expected one of {list(AGGS)}, got {agg!r}")
    if statistic in ("share", "share_of_demand", "origin_share") and agg != "mean":
        raise DataError(f"{at}, column agg: {statistic} is taken over window totals; expected mean or empty")
    window = parse_window(need("window"), ep.shift_months, f"{at}, column window")
    pre = parse_window(row["pre"], ep.shift_months, f"{at}, column pre") if row["pre"] else ep.pre
    observed = _number(row["observed"], f"{at}, column observed", True)
    low = _number(row["low"], f"{at}, column low", False)
    high = _number(row["high"], f"{at}, column high", False)
    if np.isfinite(low) != np.isfinite(high):
        raise DataError(f"{at}, columns low/high: give both ends of the band or neither")
    if np.isfinite(low) and not low <= observed <= high:
        raise DataError(
            f"{at}, columns low/observed/high: expected low <= observed <= high, got {low}, {observed}, {high}"
        )
    tol = _number(row["tolerance"], f"{at}, column tolerance", False)
    tol = 0.0 if not np.isfinite(tol) else tol
    if tol < 0:
        raise DataError(f"{at}, column tolerance: expected a number >= 0, got {tol}")
    direction = row["direction"] or "none"
    if direction not in DIRECTIONS:
        raise DataError(f"{at}, column direction: expected one of {list(DIRECTIONS)}, got {direction!r}")
    weight = _number(row["weight"], f"{at}, column weight", False)
    weight = 1.0 if not np.isfinite(weight) else weight
    if weight < 0:
        raise DataError(f"{at}, column weight: expected a number >= 0, got {weight}")
    return Fact(
        episode=ep.episode,
        fact=name,
        label=label,
        source=source,
        expressible=True,
        commodity=commodity,
        region=region,
        variable=variable,
        statistic=statistic,
        window=window,
        window_text=row["window"],
        agg=agg,
        pre=pre,
        relative_to=relative_to,
        observed=observed,
        low=low,
        high=high,
        tolerance=tol,
        direction=direction,
        weight=weight,
    )


def _check_origin_share(row: pd.Series, variable: str, coms: list[str], region: str, at: str) -> None:
    """The columns of an ``origin_share`` fact: one commodity, a scope, a region and an origin."""
    if variable not in ORIGIN_SCOPES:
        raise DataError(
            f"{at}, column variable: origin_share reads the dependency of the region's consumption "
            f"or imports; expected one of {list(ORIGIN_SCOPES)}, got {variable!r}"
        )
    if len(coms) > 1:
        raise DataError(f"{at}, column commodity: origin_share takes one commodity, got {'+'.join(coms)!r}")
    if not GROUP.match(region):
        raise DataError(
            f"{at}, column region: expected a country code, a bloc or a group of "
            f"experiment.metrics.regions (e.g. EU), got {region!r}"
        )
    if not re.match(r"^[A-Z]{3}$", row["relative_to"]):
        raise DataError(
            f"{at}, column relative_to: origin_share needs the origin country (a country code, e.g. "
            f"CHN), got {row['relative_to']!r}"
        )


def origin_needs(facts: list[Fact]) -> set[tuple[str, str, str]]:
    """(scope, commodity, region) of every origin_share fact: the origin records a run is reduced
    to in its worker (:func:`origin_frame`)."""
    return {
        (ORIGIN_SCOPES[f.variable], f.commodity, f.region)
        for f in facts
        if f.expressible and f.statistic == "origin_share"
    }


def origin_frame(tables: Any, needs: set[tuple[str, str, str]]) -> pd.DataFrame:
    """Monthly origin weights (tonnes) for each (scope, commodity, region) in ``needs``, from one
    run's tables (analysis/metrics.py :class:`Tables`): the stage is the commodity's own, by
    mass. Columns scope, commodity, region, month, origin, weight."""
    from critmin.analysis.metrics import Definition, origin_shares

    frames = []
    for scope, commodity, region in sorted(needs):
        stage = tables.commodity_stage.get(commodity)
        if stage is None:
            raise DataError(f"origin_share: commodity {commodity!r} is not in this run's world")
        d = Definition(region=region, commodity=commodity, stage=stage, basis="mass", scope=scope)
        o = origin_shares(tables, d, freq="month")
        frames.append(
            pd.DataFrame(
                {
                    "scope": scope,
                    "commodity": commodity,
                    "region": region,
                    "month": pd.DatetimeIndex(pd.to_datetime(o["period"].astype(str))),
                    "origin": o["origin"].astype(str),
                    "weight": o["weight"].to_numpy(dtype=float),
                }
            )
        )
    cols = ["scope", "commodity", "region", "month", "origin", "weight"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def region_parts(text: str) -> tuple[list[str], list[str]] | None:
    """``A+B`` → ([A, B], []); ``WORLD-A-B`` → ([WORLD], [A, B]); None if malformed."""
    if "-" in text:
        head, *minus = text.split("-")
        if head != "WORLD" or not minus or not all(REGION.match(m) and m != "WORLD" for m in minus):
            return None
        return [head], minus
    plus = text.split("+")
    if not all(REGION.match(p) for p in plus) or (len(plus) > 1 and "WORLD" in plus):
        return None
    return plus, []


def data_hashes(folder: Path | None = None) -> dict[str, str]:
    folder = Path(folder) if folder is not None else validation_dir()
    return {
        f"validation/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("*.csv"))
    }


def needs(facts: list[Fact]) -> tuple[set[str], set[str]]:
    """Commodities and variables the facts read (a run is reduced to these in its worker)."""
    coms: set[str] = set()
    variables: set[str] = set()
    for f in facts:
        if f.expressible and f.statistic != "origin_share":  # origin records: origin_needs
            coms.update(f.commodity.split("+"))
            variables.add(f.variable)
            if f.statistic == "share_of_demand":
                variables.add("demand")
    return coms, variables


# ---------------------------------------------------------------------- measuring
class Series:
    """Monthly series of one run's tidy timeseries (missing quantities are zero; prices NaN)."""

    def __init__(
        self,
        timeseries: pd.DataFrame,
        months: pd.DatetimeIndex | None = None,
        origins: pd.DataFrame | None = None,
    ) -> None:
        self.origins = origins  # origin_frame: monthly origin weights, for origin_share facts
        ts = timeseries
        self.months = months if months is not None else pd.DatetimeIndex(sorted(ts["month"].unique()))
        key = [ts["variable"].astype(str), ts["commodity"].astype(str), ts["region"].astype(str)]
        self._groups = {k: g for k, g in ts.groupby(key, observed=True, sort=False)["value"]}
        self._month = ts["month"]
        self.regions = set(ts["region"].astype(str).unique())

    def one(self, variable: str, commodity: str, region: str) -> pd.Series:
        g = self._groups.get((variable, commodity, region))
        fill = np.nan if variable in PRICES else 0.0
        if g is None:
            return pd.Series(fill, index=self.months)
        s = pd.Series(g.to_numpy(dtype=float), index=pd.DatetimeIndex(self._month.loc[g.index]))
        return s.groupby(level=0).sum().reindex(self.months, fill_value=fill)

    def get(self, variable: str, commodity: str, region: str) -> pd.Series:
        """A commodity or ``a+b`` sum, in a region, ``A+B`` sum or ``WORLD-A`` (world less A)."""
        plus, minus = region_parts(region) or ([region], [])
        total = pd.Series(0.0, index=self.months)
        for com in commodity.split("+"):
            for r in plus:
                s = self.one(variable, com, r)
                total = s if variable in PRICES else total + s
            for r in minus:
                total = total - self.one(variable, com, r)
        return total

    def origin(self, scope: str, commodity: str, region: str, origin: str) -> tuple[pd.Series, pd.Series]:
        """Monthly tonnes of the region's consumption or imports of ``commodity`` whose stage
        happened in ``origin``, and all of them (zero in months without records)."""
        zero = pd.Series(0.0, index=self.months)
        o = self.origins
        if o is None or o.empty:
            return zero, zero.copy()
        sel = o[(o["scope"] == scope) & (o["commodity"] == commodity) & (o["region"] == region)]
        total = sel.groupby("month")["weight"].sum().reindex(self.months, fill_value=0.0)
        part = sel[sel["origin"] == origin].groupby("month")["weight"].sum()
        return part.reindex(self.months, fill_value=0.0), total


def _agg(s: pd.Series, agg: str) -> float:
    s = s.dropna()
    if s.empty:
        return float("nan")
    return float({"mean": s.mean, "sum": s.sum, "min": s.min, "max": s.max}[agg]())


def _ratio(num: pd.Series, den: pd.Series, agg: str) -> float:
    """Ratio over a window: of totals (mean, sum) or the extreme monthly ratio (min, max)."""
    if agg in ("mean", "sum"):
        ok = num.notna() & den.notna()
        d = float(den[ok].sum())
        return float(num[ok].sum()) / d if d > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (num / den.where(den > 0)).replace([np.inf, -np.inf], np.nan)
    return _agg(r, agg)


def measure(fact: Fact, shock: Series, twin: Series | None, window: Window | None = None) -> float:
    """The fact's statistic in one run (and its same-seed twin) over ``window`` (default: the fact's)."""
    w = (window or fact.window).months()
    st = fact.statistic
    if st == "origin_share":
        part, total = shock.origin(
            ORIGIN_SCOPES[fact.variable], fact.commodity, fact.region, fact.relative_to
        )
        return _ratio(part.reindex(w), total.reindex(w), "sum")
    x = shock.get(fact.variable, fact.commodity, fact.region)
    if st == "ratio_to_twin":
        b = twin.get(fact.variable, fact.commodity, fact.region)
        return _ratio(x.reindex(w), b.reindex(w), fact.agg)
    if st == "change":
        b = twin.get(fact.variable, fact.commodity, fact.region)
        return _agg((x - b).reindex(w), fact.agg)
    if st == "level":
        return _agg(x.reindex(w), fact.agg)
    if st == "ratio_to_pre":
        ref = _agg(x.reindex(fact.pre.months()), "mean")
        if not ref > 0:
            return float("nan")
        return _ratio(x.reindex(w), pd.Series(ref, index=w), fact.agg)
    if st == "ratio_to_region":
        y = shock.get(fact.variable, fact.commodity, fact.relative_to)
        return _ratio(x.reindex(w), y.reindex(w), fact.agg)
    if st == "share":
        y = shock.get(fact.variable, fact.commodity, fact.relative_to or "WORLD")
        return _ratio(x.reindex(w), y.reindex(w), "sum")
    if st == "share_of_demand":
        y = shock.get("demand", fact.commodity, fact.region)
        return _ratio(x.reindex(w), y.reindex(w), "sum")
    if st == "ratio_to_year_before":
        return _year_on_year(x, w, fact.agg, shock.months)
    raise ValueError(f"unknown statistic {st!r}")


def _year_on_year(x: pd.Series, w: pd.DatetimeIndex, agg: str, run_months: pd.DatetimeIndex) -> float:
    """``x`` over the window ``w`` against the same months a year earlier (NaN if those months
    are not all in the run: a year-on-year ratio over part of a year is not the statistic)."""
    before = w - YEAR
    if not before.isin(run_months).all():
        return float("nan")
    return _ratio(x.reindex(w), pd.Series(x.reindex(before).to_numpy(), index=w), agg)


def neutral(fact: Fact, shock: Series, twin: Series | None) -> float:
    """The statistic before the shock (the pre window): what 'up' and 'down' are measured from."""
    if fact.statistic == "ratio_to_pre":
        return 1.0
    if fact.statistic == "ratio_to_year_before":  # what the year would have brought without it
        return measure(fact, twin, None) if twin is not None else 1.0
    if fact.statistic == "ratio_to_twin":
        return 1.0  # identical runs before the shock (common random numbers)
    if fact.statistic == "change":
        return 0.0
    pre = fact.pre
    f = fact if fact.agg in ("mean", "sum") else Fact(**{**fact.__dict__, "agg": "mean"})
    value = measure(f, shock, twin, pre)
    if fact.agg == "sum" and fact.statistic == "level":  # a total: compare per month
        value = value / len(pre.months()) * len(fact.window.months())
    return value


# ---------------------------------------------------------------------- verdicts
def verdict(fact: Fact, model: float, pre_value: float) -> str:
    """hit / direction / miss of a model value (the median over seeds) against the fact."""
    if model is None or not np.isfinite(model):
        return "miss"
    lo, hi = fact.band
    eps = 1e-9 * max(1.0, abs(lo), abs(hi))
    if lo - eps <= model <= hi + eps:
        return "hit"
    if fact.direction != "none" and pre_value is not None and np.isfinite(pre_value):
        move = model - pre_value
        if abs(move) > MIN_MOVE * max(abs(pre_value), 1e-12) and (move > 0) == (fact.direction == "up"):
            return "direction"
    return "miss"


def normalised_miss(fact: Fact, model: float) -> float:
    """0 inside the band; outside, the distance to the band over its half-width (at least 2% of
    the observed value, and at least 0.02), capped at MISS_CAP. Unmeasurable counts as the cap."""
    if model is None or not np.isfinite(model):
        return MISS_CAP
    lo, hi = fact.band
    if lo <= model <= hi:
        return 0.0
    scale = max((hi - lo) / 2, 0.02 * max(abs(fact.observed), 1.0))
    return float(min((lo - model if model < lo else model - hi) / scale, MISS_CAP))


# ---------------------------------------------------------------------- scoring
@dataclass
class EpisodeRuns:
    """One episode's runs: seed -> (shock run series, twin series or None)."""

    episode: Episode
    runs: dict[int, tuple[Series, Series | None]]


def score(episodes: list[EpisodeRuns], band: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """The scorecard: one row per fact with the model median and band over seeds and the verdict."""
    rows: list[dict[str, Any]] = []
    for er in episodes:
        ep = er.episode
        for f in ep.facts:
            row: dict[str, Any] = {
                "episode": ep.episode,
                "fact": f.fact,
                "label": f.label,
                "commodity": f.commodity,
                "region": f.region,
                "variable": f.variable,
                "statistic": f.statistic,
                "window": f.window_text,
                "agg": f.agg if f.expressible else "",
                "source": f.source,
                "expressible": "yes" if f.expressible else "no",
                "observed": f.observed,
                "observed_text": f.observed_text(),
                "hit_low": f.band[0] if f.expressible else np.nan,
                "hit_high": f.band[1] if f.expressible else np.nan,
                "tolerance": f.tolerance if f.expressible else np.nan,
                "direction_rule": f.direction if f.expressible else "",
                "weight": f.weight if f.expressible else 0.0,
                "seeds": 0,
                "model_median": np.nan,
                "model_low": np.nan,
                "model_high": np.nan,
                "pre_value": np.nan,
                "verdict": "not expressible",
                "normalised_miss": np.nan,
                "note": f.reason,
            }
            if f.expressible:
                values = np.array([measure(f, s, t) for s, t in er.runs.values()], dtype=float)
                pres = np.array([neutral(f, s, t) for s, t in er.runs.values()], dtype=float)
                ok = values[np.isfinite(values)]
                med = float(np.median(ok)) if ok.size else float("nan")
                pre = float(np.nanmedian(pres)) if np.isfinite(pres).any() else float("nan")
                row.update(
                    seeds=int(ok.size),
                    model_median=med,
                    model_low=float(np.quantile(ok, band[0])) if ok.size else np.nan,
                    model_high=float(np.quantile(ok, band[1])) if ok.size else np.nan,
                    pre_value=pre,
                    verdict=verdict(f, med, pre),
                    normalised_miss=normalised_miss(f, med),
                    note="" if ok.size else "not measurable in the model (no volume in the twin or window)",
                )
            rows.append(row)
    return pd.DataFrame(rows)


def totals(card: pd.DataFrame) -> pd.DataFrame:
    """Per episode and overall: facts, hits, directions, misses, not expressible, hit rate."""
    out = []
    groups = [*card.groupby("episode", sort=False), ("all episodes", card)]
    for name, g in groups:
        v = g["verdict"].value_counts()
        n = int((g["expressible"] == "yes").sum())
        out.append(
            {
                "episode": name,
                "facts": n,
                "hit": int(v.get("hit", 0)),
                "direction": int(v.get("direction", 0)),
                "miss": int(v.get("miss", 0)),
                "not_expressible": int(v.get("not expressible", 0)),
                "hit_rate": round(v.get("hit", 0) / n, 3) if n else np.nan,
                "hit_or_direction_rate": round((v.get("hit", 0) + v.get("direction", 0)) / n, 3)
                if n
                else np.nan,
            }
        )
    return pd.DataFrame(out)


def objective(card: pd.DataFrame, episode_weights: dict[str, float] | None = None) -> float:
    """Weighted mean of normalised misses: facts weighted within their episode, episodes by weight
    (default equal). 0 = every fact hit; MISS_CAP = every fact far off."""
    total, weights = 0.0, 0.0
    for name, g in card[card["expressible"] == "yes"].groupby("episode", sort=False):
        w_e = (episode_weights or {}).get(str(name), 1.0)
        w = g["weight"].to_numpy(dtype=float)
        if w_e <= 0 or w.sum() <= 0:
            continue
        total += w_e * float(np.sum(w * g["normalised_miss"].to_numpy(dtype=float)) / w.sum())
        weights += w_e
    return total / weights if weights else float("nan")
