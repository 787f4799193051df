"""What a ``critmin solve`` study found: evaluations reduced to records, the robust target check,
present-value fiscal cost, the Pareto front, the cheapest mix meeting each target, what binds,
and the alone-vs-coalition cost comparison.

One *record* is one run (candidate mix × seed × shock) reduced to a few numbers
(:func:`record_of` reads them from the tidy rows of :func:`critmin.analysis.comparison.reduce_run`,
so the dependency, the target check and the fiscal ledger are the comparison's): the highest
checked share in the target year and the stage that holds it, whether each target is met
(``target_met``), the region's fiscal cost per year and each member's, unmet demand and the peak
price of the resilience commodity. :func:`aggregate` turns one candidate's records into its
verdict: a target is met when, under *every* shock of the set, at least ``seed_share`` of the
seeds meet it; the *robust share* is, over the shocks, the highest k-th smallest seed value
(k = ceil(seed_share × seeds)), so "met" ⟺ robust share < threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from critmin.analysis import comparison

MEMBER_FISCAL = "fiscal_cost_by_country_usd"  # extra tidy rows of a solve run: detail = country


@dataclass(frozen=True)
class Criteria:
    """How a candidate is judged: the targets (threshold, year), the seed share, discounting."""

    targets: list[comparison.Target]
    seed_share: float
    discount_rate: float
    base_year: int
    pv_years: list[int]
    resilience_commodity: str = "ndfeb_magnet"
    resilience_region: str = "G7+"

    @property
    def target_year(self) -> int:
        return self.targets[0].year if self.targets else 2030


def pct_key(threshold: float) -> str:
    return f"{100 * threshold:.0f}"


# ---------------------------------------------------------------------- one run
def member_rows(fiscal: pd.DataFrame, members: set[str], mix: str, seed: int) -> pd.DataFrame:
    """Tidy rows (comparison.TIDY_COLUMNS) of each member government's fiscal cost per year,
    from a run's fiscal ledger (columns country, year, usd)."""
    f = fiscal[fiscal["country"].isin(members)]
    g = f.groupby(["country", "year"])["usd"].sum().reset_index()
    out = pd.DataFrame(
        {
            "mix": mix,
            "seed": np.int64(seed),
            "year": g["year"].astype("int64"),
            "metric": MEMBER_FISCAL,
            "region": g["country"].astype(str),
            "commodity": "",
            "stage": "",
            "detail": g["country"].astype(str),
            "value": g["usd"].astype(float),
        }
    )
    return out[comparison.TIDY_COLUMNS]


def record_of(rows: pd.DataFrame, shock: str, seed: int, crit: Criteria) -> dict[str, Any]:
    """One run's record from its tidy rows (see the module docstring)."""
    year = crit.target_year
    dep = rows[(rows["metric"] == comparison.DEPENDENCY) & (rows["year"] == year)]
    if len(dep):
        top = dep.loc[dep["value"].idxmax()]
        worst, binding = float(top["value"]), f"{top['commodity']} {top['stage']}"
    else:
        worst, binding = math.nan, ""
    met = rows[(rows["metric"] == comparison.TARGET_MET) & (rows["year"] == year)]
    fiscal = rows[rows["metric"] == comparison.FISCAL].groupby("year")["value"].sum()
    members = rows[rows["metric"] == MEMBER_FISCAL]
    com, region = crit.resilience_commodity, crit.resilience_region
    demand = rows[(rows["metric"] == comparison.DEMAND) & (rows["commodity"] == com)]["value"].sum()
    unmet = rows[(rows["metric"] == comparison.UNMET) & (rows["commodity"] == com)]["value"].sum()
    peak = rows[
        (rows["metric"] == comparison.PEAK_RATIO) & (rows["commodity"] == com) & (rows["region"] == region)
    ]["value"]
    return {
        "shock": shock,
        "seed": int(seed),
        "share": worst,
        "binding": binding,
        "met": {t.name: bool((met[met["detail"] == t.name]["value"] == 1).any()) for t in crit.targets},
        "fiscal": {int(y): float(v) for y, v in fiscal.items()},
        "members": {
            str(c): {int(y): float(v) for y, v in g.groupby("year")["value"].sum().items()}
            for c, g in members.groupby("detail")
        },
        "unmet_pct": float(100 * unmet / demand) if demand > 0 else math.nan,
        "peak_ratio": float(peak.max()) if len(peak) else math.nan,
    }


def present_value(by_year: dict[int, float], rate: float, base_year: int, to_year: int) -> float:
    """Σ_{y ≤ to_year} cost_y / (1 + rate)^(y − base_year) (years before the base are compounded)."""
    return float(sum(v / (1 + rate) ** (y - base_year) for y, v in by_year.items() if y <= to_year))


# ---------------------------------------------------------------------- one candidate
def kth_smallest(values: list[float], share: float) -> float:
    """The value below which at least ``share`` of ``values`` lie when it is itself below the
    line: the k-th smallest, k = ceil(share × n) (NaN if any value is missing)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or np.isnan(v).any():
        return math.nan
    k = max(1, math.ceil(share * v.size - 1e-9))
    return float(np.sort(v)[k - 1])


def aggregate(records: list[dict[str, Any]], crit: Criteria, payer: str | None = None) -> dict[str, Any]:
    """A candidate's verdict from its runs (see the module docstring). Keys: ``runs``, ``shocks``,
    ``seeds``, ``share`` (robust share), ``binding`` (stage holding it), ``binding_shock``,
    ``met_<pct>`` per target, ``met_<pct>_detail`` (seeds meeting it per shock),
    ``pv_<year>_usd`` (median over runs), ``payer_pv_<year>_usd`` (the payer's own cost),
    ``unmet_pct`` and ``peak_ratio`` (the worst shock's median)."""
    df = pd.DataFrame(records)
    out: dict[str, Any] = {"runs": len(df)}
    if df.empty:
        return out
    shocks = list(dict.fromkeys(df["shock"]))
    out["shocks"] = ",".join(shocks)
    out["seeds"] = int(df["seed"].nunique())
    worst, binding, where = -math.inf, "", ""
    for s in shocks:
        g = df[df["shock"] == s]
        v = kth_smallest(g["share"].tolist(), crit.seed_share)
        if not v <= worst:  # NaN also takes over: a missing value must not pass
            worst, where = v, s
            k = g["share"].sort_values()
            near = g.loc[(k - v).abs().idxmin()] if len(k) and math.isfinite(v) else g.iloc[0]
            binding = str(near["binding"])
    out["share"] = worst
    out["binding"] = binding
    out["binding_shock"] = where
    for t in crit.targets:
        p = pct_key(t.threshold)
        per_shock = {s: [r[t.name] for r in df[df["shock"] == s]["met"]] for s in shocks}
        out[f"met_{p}"] = all(sum(m) >= crit.seed_share * len(m) - 1e-9 for m in per_shock.values())
        out[f"met_{p}_detail"] = "; ".join(f"{s} {sum(m)}/{len(m)}" for s, m in per_shock.items())
    for y in crit.pv_years:
        pv = [present_value(f, crit.discount_rate, crit.base_year, y) for f in df["fiscal"]]
        out[f"pv_{y}_usd"] = float(np.median(pv))
        if payer is not None:
            own = [
                present_value(m.get(payer, {}), crit.discount_rate, crit.base_year, y) for m in df["members"]
            ]
            out[f"payer_pv_{y}_usd"] = float(np.median(own))
    by_shock = df.groupby("shock", sort=False)
    out["unmet_pct"] = float(by_shock["unmet_pct"].median().max())
    peaks = by_shock["peak_ratio"].median().dropna()
    out["peak_ratio"] = float(peaks.max()) if len(peaks) else math.nan
    return out


# ---------------------------------------------------------------------- the study
def pareto(points: pd.DataFrame, columns: list[str]) -> pd.Series:
    """True for rows no other row dominates (all columns lower-is-better; NaN rows never)."""
    v = points[columns].to_numpy(dtype=float)
    ok = ~np.isnan(v).any(axis=1)
    keep = np.zeros(len(v), dtype=bool)
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = ((others <= v[i]).all(axis=1) & (others < v[i]).any(axis=1)).any()
        keep[i] = not dominated
    return pd.Series(keep, index=points.index)


def cheapest(checked: pd.DataFrame, threshold: float, cost: str) -> pd.Series | None:
    """The fully checked candidate meeting the target at the lowest cost; among equal costs the
    one furthest below the line (None: none does)."""
    col = f"met_{pct_key(threshold)}"
    if checked.empty or col not in checked:
        return None
    ok = checked[checked[col].astype(bool)]
    if ok.empty:
        return None
    # equal cost (e.g. instruments without fiscal cost, such as offtake contracts): the mix
    # furthest below the line
    return ok.sort_values([cost, "share"]).iloc[0]


def what_binds(evaluations: pd.DataFrame, checked: pd.DataFrame, threshold: float) -> str:
    """Why no mix meets the line (a sentence): the lowest robust share of the fully checked mixes
    and the stage that holds it (and the shock under which it is highest), and the lowest share
    of the screen (one seed, no shock) beside it; the screen's alone when nothing was checked."""
    from critmin.analysis import labels

    def lowest(frame: pd.DataFrame) -> pd.Series | None:
        ok = frame["share"].notna() if len(frame) and "share" in frame else None
        return None if ok is None or not ok.any() else frame.loc[frame.loc[ok, "share"].idxmin()]

    full, screen = lowest(checked), lowest(evaluations)
    if full is None and screen is None:
        return "no evaluation finished"
    lines = [threshold]
    if full is not None:
        shock = str(full.get("binding_shock", ""))
        under = f", highest under {shock}" if shock and shock != "none" else ""
        text = (
            f"within the bounds, the lowest share any mix keeps every checked stage below, robust over "
            f"the full check's seeds and shocks, is {labels.share(full['share'], lines)}{under}"
        )
        if screen is not None and screen["share"] < full["share"]:
            text += (
                f" (the screen's lowest, one seed without a shock: {labels.share(screen['share'], lines)})"
            )
        binding = str(full["binding"])
    else:
        text = (
            f"within the bounds, the lowest share any mix keeps every checked stage below is "
            f"{labels.share(screen['share'], lines)} (in the screen: one seed, no shock)"
        )
        binding = str(screen["binding"])
    stage = comparison.check_text(binding) if binding else "–"
    return f"{text}; the constraint that binds is {stage}, which stays above {threshold:.0%}"


def coalition_table(
    checked: pd.DataFrame, targets: list[comparison.Target], cost: str, payer_cost: str
) -> pd.DataFrame:
    """Alone vs coalition per target: the cheapest fully checked mix of each mode meeting it, the
    mode's total cost and the payer's own cost, and :func:`compare_costs` of the payer's."""
    rows = []
    for t in targets:
        row: dict[str, Any] = {"target": t.name, "threshold": t.threshold}
        for mode in ("alone", "coalition"):
            best = cheapest(checked[checked["mode"] == mode], t.threshold, cost) if len(checked) else None
            row[f"{mode}_candidate"] = None if best is None else str(best["candidate"])
            row[f"{mode}_cost_usd"] = math.nan if best is None else float(best[cost])
            row[f"{mode}_payer_cost_usd"] = math.nan if best is None else float(best[payer_cost])
        row.update(compare_costs(row["alone_payer_cost_usd"], row["coalition_payer_cost_usd"]))
        rows.append(row)
    return pd.DataFrame(rows)


def compare_costs(alone: float, coalition: float) -> dict[str, Any]:
    """The payer's cost in the coalition against acting alone: ``payer_ratio`` (coalition / alone,
    only when both are costs > 0: a net revenue has no meaningful ratio) and
    ``coalition_no_dearer`` (coordination costs the payer no more; None when either is missing)."""
    both = math.isfinite(alone) and math.isfinite(coalition)
    return {
        "payer_ratio": coalition / alone if both and alone > 0 and coalition > 0 else math.nan,
        "coalition_no_dearer": bool(coalition <= alone) if both else None,
    }


def cost_at_share(front: pd.DataFrame, share: float, cost: str) -> float:
    """The lowest cost among points whose share is at most ``share`` (NaN: none)."""
    ok = front[front["share"] <= share]
    return float(ok[cost].min()) if len(ok) else math.nan


def coalition_curve(
    evaluations: pd.DataFrame, cost: str, payer_cost: str, levels: list[float]
) -> pd.DataFrame:
    """At each dependency level reached in both modes (screen values): the cheapest alone mix's
    cost and the cheapest coalition mix's payer cost and total, and :func:`compare_costs`."""
    rows = []
    alone = evaluations[evaluations["mode"] == "alone"]
    coal = evaluations[evaluations["mode"] == "coalition"]
    for level in levels:
        a = cost_at_share(alone, level, payer_cost)
        ok = coal[coal["share"] <= level]
        c_pay = float(ok[payer_cost].min()) if len(ok) else math.nan
        c_all = float(ok[cost].min()) if len(ok) else math.nan
        rows.append(
            {
                "share_below": level,
                "alone_payer_cost_usd": a,
                "coalition_payer_cost_usd": c_pay,
                "coalition_total_cost_usd": c_all,
                **compare_costs(a, c_pay),
            }
        )
    return pd.DataFrame(rows)
