"""Tables of a policy comparison: one run reduced to tidy rows, and the per-mix summary.

A comparison runs instrument mixes × seeds under one shock (``critmin compare``,
experiments/compare.py). Each run is reduced, in its worker, to a few hundred tidy rows
(:func:`reduce_run`, columns :data:`TIDY_COLUMNS`); :func:`summarise` turns the rows of every run
into one row per mix: median and band across seeds of the target-year dependency per checked
stage, the share of seeds meeting each target and the first year met, fiscal cost, unmet
demand and the peak price under the shock. Definitions are those of :mod:`critmin.analysis.metrics`
(docs/metrics.md); this module only aggregates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from critmin.analysis import labels, metrics
from critmin.analysis.definitions import CONTROL_WORDS, owner_rows_shown

if TYPE_CHECKING:
    from critmin.analysis.results import Result

TIDY_COLUMNS = ["mix", "seed", "year", "metric", "region", "commodity", "stage", "detail", "value"]

# metric names in comparison.parquet (docs/policy_comparison.md)
DEPENDENCY = "dependency_share"  # region, commodity, stage; detail = the single supplier
TARGET_MET = "target_met"  # 1 when every checked stage is below the threshold; detail = target
FISCAL = "fiscal_cost_usd"  # the region's governments, every year (0 without instruments)
FISCAL_ITEM = "fiscal_cost_by_instrument_usd"  # the same by instrument (ledger item) = detail
DEMAND = "final_demand_t"  # the region's final demand; commodity
UNMET = "unmet_demand_t"
UNMET_SHARE = "unmet_demand_share"
WORLD_PRICE = "world_price_usd_per_t"  # yearly mean of the sales-weighted world seller price
BUYER_PRICE = "buyer_price_usd_per_t"  # yearly mean of the region's use-weighted delivered price
PEAK_RATIO = "peak_price_ratio"  # highest price / pre-shock in the shock window; detail = its month
LOW_RATIO = "low_price_ratio"  # lowest price / pre-shock in the shock window; detail = its month
# the no-shock reference runs (no instruments, shock none) of a comparison under a shock carry this
# mix name; their PEAK_RATIO / LOW_RATIO rows are read over the compared shock's window
REFERENCE = "no shock, no instruments"
RECOVERY = "months_to_recover"  # NaN = not recovered by the end of the run
# the highest share under each definition (analysis/definitions.py): region, stage = the stage
# set, detail = the scope, commodity = the control (location or owner; the rows name no
# commodity); the years of the run's definitions table (first, target, last)
DEFINITION = "definition_highest_share"


@dataclass(frozen=True)
class Target:
    name: str
    threshold: float
    year: int

    @property
    def label(self) -> str:
        return f"{self.threshold:.0%}"


@dataclass
class Context:
    """What the summary and the report need to know about the comparison."""

    mixes: list[str]
    seeds: list[int]
    shock: str
    region: str
    targets: list[Target]
    band: tuple[float, float] = (0.1, 0.9)
    peak_commodity: str = "ndfeb_magnet"
    peak_region: str = "G7+"
    definition: dict[str, Any] = field(default_factory=dict)  # experiment.metrics region, basis, scope
    scenario: str = ""
    horizon: str = ""  # last month simulated
    checks: list[tuple[str, str]] = field(default_factory=list)  # filled from the rows
    window: metrics.ShockWindow | None = None  # where the peak price is read (None: no shock)
    reference: bool = False  # no-shock reference runs (mix REFERENCE) are in the rows

    @property
    def target_in_run(self) -> bool:
        """Whether the runs reach the target year (no verdict otherwise)."""
        return not self.horizon or int(str(self.horizon)[:4]) >= self.target_year

    @property
    def target_year(self) -> int:
        return self.targets[0].year if self.targets else 2030

    def band_label(self) -> str:
        lo, hi = self.band
        if (lo, hi) == (0.0, 1.0):
            return "min–max across seeds"
        return f"{100 * lo:.0f}–{100 * hi:.0f}% across seeds"


def targets_of(settings: dict[str, Any]) -> list[Target]:
    """The experiment.metrics targets that apply to the analysed region (not e.g. the EU's)."""
    region = settings.get("region", "G7+")
    return [
        Target(str(t["name"]), float(t["threshold"]), int(t.get("year", 2030)))
        for t in settings.get("targets", []) or []
        if t.get("region") in (None, region)
    ]


def _rows(metric: str, year: Iterable, value: Iterable, **cols: Any) -> pd.DataFrame:
    out = pd.DataFrame({"year": np.asarray(list(year), dtype=np.int64), "metric": metric})
    out["value"] = np.asarray(list(value), dtype=float)
    for c in ("region", "commodity", "stage", "detail"):
        v = cols.get(c, "")
        out[c] = [str(x) for x in v] if isinstance(v, pd.Series | np.ndarray | list) else str(v)
    return out


def reduce_run(
    result: Result, mix: str, seed: int, window: metrics.ShockWindow | None = None
) -> pd.DataFrame:
    """The small tidy table of one run (columns :data:`TIDY_COLUMNS`). The peak price is read
    over ``window`` (default: the run's own shock window; a no-shock reference run gets the
    compared shock's window)."""
    tables = metrics.Tables.from_result(result)
    config = result.manifest.get("config", {})
    tables.shock_windows = metrics.shock_windows(config.get("shock") or {}, result.summary["start"])
    window = window or metrics.run_window(tables)
    s = tables.settings
    region = s.get("region", "G7+")
    members = tables.members(region)
    m = result.metrics
    parts = []

    paths = m["paths"]
    if len(paths):
        parts.append(
            _rows(
                DEPENDENCY,
                paths["period"],
                paths["share"],
                region=region,
                commodity=paths["commodity"],
                stage=paths["stage"],
                detail=paths["supplier"],
            )
        )
        worst = paths.groupby("period")["share"].max()
        for t in targets_of(s):
            parts.append(
                _rows(
                    TARGET_MET, worst.index, (worst < t.threshold).astype(float), region=region, detail=t.name
                )
            )

    defs = m.get("definitions")
    if defs is not None and len(defs):
        for y in (c for c in defs.columns if c.isdigit()):
            parts.append(
                _rows(
                    DEFINITION,
                    [int(y)] * len(defs),
                    defs[y],
                    region=defs["region"],
                    stage=defs["stage_set"],
                    detail=defs["scope"],
                    commodity=defs["control"] if "control" in defs.columns else "location",
                )
            )

    years = sorted(result.timeseries["month"].dt.year.unique().tolist())
    fiscal = m["fiscal"]
    fiscal = fiscal[fiscal["country"].isin(members)]
    total = fiscal.groupby("year")["usd"].sum().reindex(years, fill_value=0.0)
    parts.append(_rows(FISCAL, total.index, total, region=region))
    by_item = fiscal.groupby(["year", "item"])["usd"].sum().reset_index()
    if len(by_item):
        parts.append(
            _rows(FISCAL_ITEM, by_item["year"], by_item["usd"], region=region, detail=by_item["item"])
        )

    fd = result.final_demand
    if fd is not None and len(fd):
        sel = fd[fd["region"].isin(members)]
        g = sel.groupby([sel["month"].dt.year.rename("year"), "commodity"], observed=True)[
            ["demand", "unmet_demand"]
        ].sum()
        g = g.reset_index()
        share = g["unmet_demand"] / g["demand"].where(g["demand"] > 0)
        for metric, value in ((DEMAND, g["demand"]), (UNMET, g["unmet_demand"]), (UNMET_SHARE, share)):
            parts.append(_rows(metric, g["year"], value, region=region, commodity=g["commodity"]))

    for com, stage in tables.commodity_stage.items():
        world = metrics.region_series(tables, "price", com, "WORLD")
        if len(world):
            yearly = world.groupby(world.index.year).mean()
            parts.append(_rows(WORLD_PRICE, yearly.index, yearly, region="WORLD", commodity=com, stage=stage))
        buyer = metrics.bloc_buyer_price(tables, com, region)
        if len(buyer):
            yearly = buyer.groupby(buyer.index.year).mean()
            parts.append(_rows(BUYER_PRICE, yearly.index, yearly, region=region, commodity=com, stage=stage))

    if window is not None:
        seen = metrics.price_in_window(tables, window)
        stage = seen["commodity"].map(tables.commodity_stage)
        cols = {"region": seen["region"], "commodity": seen["commodity"], "stage": stage}
        for metric, kind in ((PEAK_RATIO, "high"), (LOW_RATIO, "low")):
            year = pd.to_datetime(seen[f"{kind}_month"] + "-01").dt.year
            parts.append(_rows(metric, year, seen[f"{kind}_ratio"], detail=seen[f"{kind}_month"], **cols))
    shock = metrics.shock_response(tables)
    if len(shock):
        year = pd.to_datetime(shock["peak_month"] + "-01").dt.year
        stage = shock["commodity"].map(tables.commodity_stage)
        cols = {"region": shock["region"], "commodity": shock["commodity"], "stage": stage}
        recover = pd.to_numeric(shock["months_to_recover"], errors="coerce")
        parts.append(_rows(RECOVERY, year, recover, detail=shock["peak_month"], **cols))

    if not parts:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "mix", mix)
    out.insert(1, "seed", np.int64(seed))
    return out[TIDY_COLUMNS]


# ---------------------------------------------------------------------- summary per mix
def checks_of(tidy: pd.DataFrame) -> list[tuple[str, str]]:
    """Checked (commodity, stage) pairs in the order the runs report them."""
    dep = tidy[tidy["metric"] == DEPENDENCY]
    return list(dict.fromkeys(zip(dep["commodity"], dep["stage"])))


def _band(values: pd.Series, band: tuple[float, float]) -> tuple[float, float, float]:
    v = values.dropna().astype(float)
    if v.empty:
        return (np.nan, np.nan, np.nan)
    return (float(v.median()), float(v.quantile(band[0])), float(v.quantile(band[1])))


def _per_seed(rows: pd.DataFrame, seeds: list[int]) -> pd.Series:
    return rows.groupby("seed")["value"].sum().reindex(seeds)


def summarise(tidy: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """One row per mix (in ``ctx.mixes`` order): medians and bands across the mix's finished seeds.

    Columns: ``mix``, ``runs`` (finished seeds), then :func:`_dependency_columns`,
    :func:`_target_columns`, :func:`_cost_columns` and :func:`_shock_columns`; a band is a pair of
    ``_lo``/``_hi`` columns (``ctx.band`` quantiles across seeds).
    """
    ctx.checks = ctx.checks or checks_of(tidy)
    rows = []
    for mix in ctx.mixes:
        t = tidy[tidy["mix"] == mix]
        seeds = sorted(t["seed"].unique().tolist())
        row: dict[str, Any] = {"mix": mix, "runs": len(seeds)}
        per_check = _dependency_columns(row, t, seeds, ctx)
        _target_columns(row, t, seeds, per_check, ctx)
        _cost_columns(row, t, seeds, ctx)
        _shock_columns(row, t, seeds, ctx)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["no_shock"] = reference_band(tidy, ctx)
    out.attrs["definitions"] = definitions_summary(tidy, ctx)
    return out


def definitions_summary(tidy: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """One row per definition (region, scope, stage set; analysis/definitions.py) and mix: the
    median across seeds of the highest share in the target year and the seeds below the first
    target's line. Columns mix, region, scope, stage_set, headline, share, share_lo, share_hi,
    met_seeds, runs."""
    cols = ["mix", "region", "scope", "stage_set", "control", "headline", "share", "share_lo", "share_hi"]
    cols += ["met_seeds", "runs"]
    d = tidy[(tidy["metric"] == DEFINITION) & (tidy["year"] == ctx.target_year) & (tidy["mix"] != REFERENCE)]
    if d.empty or not ctx.targets:
        return pd.DataFrame(columns=cols)
    line = ctx.targets[0].threshold
    head = (ctx.region, ctx.definition.get("scope", "consumption"), "every stage", "location")
    rows = []
    control = d["commodity"].replace("", "location")  # runs from before ownership: location
    order = list(dict.fromkeys(zip(d["region"], d["detail"], d["stage"], control)))
    for mix in ctx.mixes:
        in_mix = (d["mix"] == mix).to_numpy()
        t, t_control = d[in_mix], control[in_mix]
        runs = t["seed"].nunique()
        for region, scope, stage_set, ctl in order:
            v = t[
                (t["region"] == region)
                & (t["detail"] == scope)
                & (t["stage"] == stage_set)
                & (t_control == ctl)
            ]["value"]
            mid, lo, hi = _band(v, ctx.band)
            rows.append(
                {
                    "mix": mix,
                    "region": region,
                    "scope": scope,
                    "stage_set": stage_set,
                    "control": ctl,
                    "headline": (region, scope, stage_set, ctl) == head,
                    "share": mid,
                    "share_lo": lo,
                    "share_hi": hi,
                    "met_seeds": int((v < line).sum()),
                    "runs": runs,
                }
            )
    return pd.DataFrame(rows, columns=cols)


def definitions_headline(defs: pd.DataFrame | None, ctx: Context) -> list[str]:
    """One sentence: under how many of the definitions side by side each mix is below the first
    target's line in the target year (median across seeds), naming up to three."""
    if defs is None or defs.empty or not ctx.target_in_run or not ctx.targets:
        return []
    t = ctx.targets[0]
    n = defs.groupby("mix", sort=False).size().iloc[0]
    bits = []
    for mix, g in defs.groupby("mix", sort=False):
        below = g[g["share"] < t.threshold]
        named = "; ".join(
            f"{labels.region_short(r.region)} {'all use' if r.scope == 'consumption' else 'imports'}, "
            f"{r.stage_set}" + ("" if getattr(r, "control", "location") == "location" else ", by owner")
            for r in below.head(3).itertuples()
        )
        more = f" and {len(below) - 3} more" if len(below) > 3 else ""
        bits.append(f"{mix} {len(below)}" + (f" ({named}{more})" if len(below) else ""))
    return [
        f"Under {n} definitions side by side (the bloc and each member, all use or imports, every "
        f"stage or one product; {control_text(defs)}), below {t.label} in {t.year} (median): {', '.join(bits)}."
    ]


def control_text(defs: pd.DataFrame) -> str:
    """How the definitions count a stage: where it happened, and also who owns the plant."""
    if "control" in defs.columns and (defs["control"] == "owner").any():
        return "where processed and who owns the plant"
    return "where processed only"


def definitions_console(defs: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The console's definitions table: the headline region's rows (both scopes, every stage set)
    and each member under the headline scope at every stage; one column per mix, the median
    highest share in the target year and the seeds below the line."""
    if defs.empty:
        return pd.DataFrame()
    scope = ctx.definition.get("scope", "consumption")
    keep = (defs["region"] == ctx.region) | ((defs["scope"] == scope) & (defs["stage_set"] == "every stage"))
    keep &= owner_rows_shown(defs, ["share"])  # owner rows equal to their location rows: not repeated
    owners = "control" in defs.columns and (defs.loc[keep, "control"] == "owner").any()
    out = {}
    for mix, g in defs[keep].groupby("mix", sort=False):
        out[mix] = [
            f"{share_text(r.share, ctx)} {r.met_seeds}/{r.runs}" if pd.notna(r.share) else "no use"
            for r in g.itertuples()
        ]
        first = g
    table = pd.DataFrame(
        {
            "region": first["region"].map(labels.region_short).to_numpy(),
            "measured on": ["all use" if s == "consumption" else "imports" for s in first["scope"]],
            "stages": first["stage_set"].to_numpy(),
            **({"counted by": [CONTROL_WORDS.get(c, c) for c in first["control"]]} if owners else {}),
            **out,
        }
    )
    return table


def _set_band(row: dict[str, Any], key: str, values: pd.Series, band: tuple[float, float]) -> None:
    row[key], row[f"{key}_lo"], row[f"{key}_hi"] = _band(values, band)


def _dependency_columns(
    row: dict[str, Any], t: pd.DataFrame, seeds: list[int], ctx: Context
) -> dict[tuple[str, str], pd.Series]:
    """``dep_<commodity>_<stage>``: the share in the target year per checked stage; ``dep_worst``:
    the highest checked share of each seed; ``binding``: the check with the highest median.
    Returns the per-seed shares per check."""
    dep = t[(t["metric"] == DEPENDENCY) & (t["year"] == ctx.target_year)]
    per_check = {}
    for com, stage in ctx.checks:
        v = dep[(dep["commodity"] == com) & (dep["stage"] == stage)].set_index("seed")["value"]
        per_check[(com, stage)] = v.reindex(seeds)
        _set_band(row, f"dep_{com}_{stage}", v, ctx.band)
    medians = {k: float(v.median()) for k, v in per_check.items() if v.notna().any()}
    binding = max(medians, key=medians.__getitem__) if medians else None
    row["binding"] = f"{binding[0]} {binding[1]}" if binding else ""
    worst = (
        pd.DataFrame(per_check).max(axis=1, skipna=False) if per_check and seeds else pd.Series(dtype=float)
    )
    _set_band(row, "dep_worst", worst, ctx.band)
    return per_check


def _target_columns(
    row: dict[str, Any],
    t: pd.DataFrame,
    seeds: list[int],
    per_check: dict[tuple[str, str], pd.Series],
    ctx: Context,
) -> None:
    """Per target (``<pct>`` = threshold in %): ``met_<pct>_seeds`` and ``met_<pct>_share`` (seeds
    meeting it in the target year), ``ever_<pct>_seeds`` (seeds meeting it in some year),
    ``first_year_<pct>`` (the year by which half of those have met it: the lower median, a real
    year) and ``below_<pct>_checks`` (checks whose median is below the threshold)."""
    for tgt in ctx.targets:
        met = t[(t["metric"] == TARGET_MET) & (t["detail"] == tgt.name)]
        p = f"{100 * tgt.threshold:.0f}"
        in_year = met[met["year"] == tgt.year].set_index("seed")["value"].reindex(seeds)
        row[f"met_{p}_seeds"] = int((in_year == 1).sum())
        row[f"met_{p}_share"] = float((in_year == 1).mean()) if in_year.notna().any() else np.nan
        first = np.sort(met[met["value"] == 1].groupby("seed")["year"].min().to_numpy())
        row[f"first_year_{p}"] = float(first[(len(first) - 1) // 2]) if len(first) else np.nan
        row[f"ever_{p}_seeds"] = len(first)
        row[f"below_{p}_checks"] = ", ".join(
            f"{c} {s}" for (c, s), v in per_check.items() if v.notna().any() and v.median() < tgt.threshold
        )


def _cost_columns(row: dict[str, Any], t: pd.DataFrame, seeds: list[int], ctx: Context) -> None:
    """``fiscal_bn_to_<year>`` and ``fiscal_bn_total`` (USD bn); ``unmet_pct`` (the peak-price
    commodity's unmet final demand, % of demand over the run) and ``unmet_pct_worst_year``."""
    year = ctx.target_year
    fiscal = t[t["metric"] == FISCAL]
    _set_band(row, f"fiscal_bn_to_{year}", _per_seed(fiscal[fiscal["year"] <= year], seeds) / 1e9, ctx.band)
    _set_band(row, "fiscal_bn_total", _per_seed(fiscal, seeds) / 1e9, ctx.band)
    com = ctx.peak_commodity
    demand = _per_seed(t[(t["metric"] == DEMAND) & (t["commodity"] == com)], seeds)
    unmet = _per_seed(t[(t["metric"] == UNMET) & (t["commodity"] == com)], seeds)
    _set_band(row, "unmet_pct", 100 * unmet / demand, ctx.band)
    share = t[(t["metric"] == UNMET_SHARE) & (t["commodity"] == com)]
    row["unmet_pct_worst_year"] = _band(100 * share.groupby("seed")["value"].max(), ctx.band)[0]


def _shock_columns(row: dict[str, Any], t: pd.DataFrame, seeds: list[int], ctx: Context) -> None:
    """``peak_ratio`` and ``low_ratio``: the highest and lowest price of the peak-price commodity
    and region over its pre-shock level within the shock window (``ctx.window``), the most common
    ``peak_month``, ``recovered_seeds`` and the median ``months_to_recover`` of those (NaN
    without a shock)."""
    com, region = ctx.peak_commodity, ctx.peak_region
    sel = (t["commodity"] == com) & (t["region"] == region)
    peak = t[(t["metric"] == PEAK_RATIO) & sel]
    _set_band(row, "peak_ratio", peak.set_index("seed")["value"].reindex(seeds), ctx.band)
    low = t[(t["metric"] == LOW_RATIO) & sel]
    _set_band(row, "low_ratio", low.set_index("seed")["value"].reindex(seeds), ctx.band)
    row["peak_month"] = str(peak["detail"].mode().iloc[0]) if len(peak) else ""
    rec = t[(t["metric"] == RECOVERY) & sel]["value"]
    row["recovered_seeds"] = int(rec.notna().sum())
    row["months_to_recover"] = float(rec.median()) if rec.notna().any() else np.nan


def reference_band(tidy: pd.DataFrame, ctx: Context) -> dict[str, float]:
    """The model's own price movement without the shock: the no-shock reference runs' highest and
    lowest price over the same pre-shock level within the same window (median and band across
    seeds): keys ``high``, ``high_lo``, ``high_hi``, ``low``, ``low_lo``, ``low_hi``, ``runs``.
    Empty without reference runs."""
    ref = tidy[tidy["mix"] == REFERENCE]
    if ref.empty:
        return {}
    seeds = sorted(ref["seed"].unique().tolist())
    row: dict[str, Any] = {"mix": REFERENCE, "runs": len(seeds)}
    _shock_columns(row, ref, seeds, ctx)
    return {
        "high": row["peak_ratio"],
        "high_lo": row["peak_ratio_lo"],
        "high_hi": row["peak_ratio_hi"],
        "low": row["low_ratio"],
        "low_lo": row["low_ratio_lo"],
        "low_hi": row["low_ratio_hi"],
        "runs": len(seeds),
    }


def paths_band(tidy: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Dependency paths per mix × check × year: median, lo, hi across seeds."""
    dep = tidy[tidy["metric"] == DEPENDENCY]
    if dep.empty:
        return pd.DataFrame(columns=["mix", "commodity", "stage", "year", "median", "lo", "hi"])
    g = dep.groupby(["mix", "commodity", "stage", "year"])["value"]
    out = pd.DataFrame(
        {"median": g.median(), "lo": g.quantile(ctx.band[0]), "hi": g.quantile(ctx.band[1])}
    ).reset_index()
    return out


# ---------------------------------------------------------------------- plain-text findings
def pct(v: Any, digits: int = 1) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * float(v):.{digits}f}%"


def share_text(v: Any, ctx: Context) -> str:
    """A dependency share with enough decimals to sit on the same side of every target line as
    the value (59.96% against 60% is never printed "60.0%")."""
    return labels.share(v, [t.threshold for t in ctx.targets])


def year_text(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else str(round(float(v)))


def _names(mixes: Iterable[str]) -> str:
    items = list(mixes)
    return ", ".join(items) if items else "none of them"


def check_text(binding: str) -> str:
    """``"ndfeb_magnet metal"`` (the ``binding`` column) in words."""
    com, _, stage = str(binding).partition(" ")
    return labels.check(com, stage) if stage else str(binding)


def ratio_text(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{float(v):.2f}×"


def price_name(ctx: Context) -> str:
    who = "world seller price" if ctx.peak_region == "WORLD" else f"{ctx.peak_region} buyers' price"
    return f"{labels.commodity(ctx.peak_commodity)} {who}"


def no_shock_text(ref: dict[str, float]) -> str:
    """The reference runs' price range in the window, as a sentence fragment."""
    return (
        f"without the shock (no instruments) the same price moves between {ratio_text(ref['low'])} and "
        f"{ratio_text(ref['high'])} of that level in the same months (median of {ref['runs']} seeds)"
    )


def headlines(summary: pd.DataFrame, ctx: Context) -> list[str]:
    """The report's opening sentences: which mixes meet each target in the target year, and when
    first (no verdict when the runs end before it); what binds where none does; fiscal cost; the
    peak price in the shock window beside the model's own no-shock movement."""
    done = summary[summary["runs"] > 0] if len(summary) else summary
    if done.empty:
        return ["No run finished: nothing to compare (failed runs are listed in manifest.yaml)."]
    year, out = ctx.target_year, []
    closest_needed = False
    for t in ctx.targets:
        p = f"{100 * t.threshold:.0f}"
        head = t.name if str(year) in t.name else f"{t.name}, in {year}"
        if not ctx.target_in_run:
            ever = done[done[f"ever_{p}_seeds"] > 0]
            line = (
                f"{head}: no verdict: the runs end {labels.month(ctx.horizon)}, before the {year} "
                "target year."
            )
            if len(ever):
                bits = [f"{r.mix} (first {year_text(r[f'first_year_{p}'])})" for _, r in ever.iterrows()]
                line += f" Below {t.label} in a simulated year: {', '.join(bits)}."
            out.append(line)
            continue
        share = done[f"met_{p}_share"]
        meet = done[share > 0].sort_values(f"met_{p}_share", ascending=False)
        if len(meet):
            bits = [
                f"{r.mix} ({r[f'met_{p}_seeds']}/{r.runs} seeds; first met {year_text(r[f'first_year_{p}'])})"
                for _, r in meet.iterrows()
            ]
            miss = done[~done["mix"].isin(meet["mix"])]["mix"]
            out.append(f"{head}: met by {', '.join(bits)}; not met by {_names(miss)}.")
        else:
            closest_needed = True
            line = f"{head}: met by none of the {len(done)} mixes in any seed."
            ever = done[done[f"ever_{p}_seeds"] > 0]
            if len(ever):
                line += f" Met in another year by: {_names(ever['mix'])}."
            out.append(line)
    best = done.dropna(subset=["dep_worst"])
    if closest_needed and len(best):
        b = best.loc[best["dep_worst"].idxmin()]
        out.append(
            f"Closest: {b.mix}: every checked stage must be below the line, and its highest, "
            f"{check_text(b.binding)}, is at {share_text(b.dep_worst, ctx)} (median across seeds)."
        )
    if ctx.targets and ctx.target_in_run:
        p = f"{100 * ctx.targets[0].threshold:.0f}"
        below = [
            f"{r.mix} ({', '.join(check_text(c) for c in r[f'below_{p}_checks'].split(', '))})"
            for _, r in done.iterrows()
            if r[f"below_{p}_checks"]
        ]
        if below:
            out.append(f"Stages below {ctx.targets[0].label} in {year} (median): {'; '.join(below)}.")
    out.extend(definitions_headline(summary.attrs.get("definitions"), ctx))
    col = f"fiscal_bn_to_{year}"
    cost = ", ".join(f"{r.mix} {labels.money_bn(r[col])}" for _, r in done.iterrows())
    to = year if ctx.target_in_run else f"the end of the run ({labels.month(ctx.horizon)})"
    out.append(f"Fiscal cost to {to}, {ctx.region} governments, USD bn (median): {cost}.")
    peaks = done.dropna(subset=["peak_ratio"])
    if ctx.shock != "none" and len(peaks):
        each = ", ".join(f"{r.mix} {ratio_text(r.peak_ratio)}" for _, r in peaks.iterrows())
        line = f"Highest {price_name(ctx)} under the shock, × its pre-shock level (median): {each}"
        if ctx.window is not None:
            line += f"; read from {labels.month(ctx.window.start)} to {labels.month(ctx.window.last)}"
        ref = summary.attrs.get("no_shock") or {}
        line += f"; {no_shock_text(ref)}." if ref else "."
        out.append(line)
    return out


def headline_parts(sentence: str) -> tuple[str, str]:
    """A headline split at its first ": " into a bold lead and the rest."""
    head, sep, rest = sentence.partition(": ")
    return (head, rest) if sep else ("", sentence)


def console_table(summary: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """A compact text version of the report's main table."""
    year = ctx.target_year
    rows = []
    for _, r in summary.iterrows():
        row = {
            "mix": r["mix"],
            "runs": r["runs"],
            f"highest stage {year}": f"{check_text(r['binding'])} {share_text(r['dep_worst'], ctx)}",
        }
        for t in ctx.targets:
            p = f"{100 * t.threshold:.0f}"
            met = f"{r[f'met_{p}_seeds']}/{r['runs']}" if ctx.target_in_run else "no verdict"
            row[f"met {p}% ({year})"] = met
        row[f"fiscal to {year}, USD bn"] = labels.money_bn(r[f"fiscal_bn_to_{year}"])
        row[f"unmet {ctx.peak_commodity}"] = pct(r["unmet_pct"] / 100, 2)
        if ctx.shock != "none":
            row["peak price ×"] = "–" if pd.isna(r["peak_ratio"]) else f"{r['peak_ratio']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)
