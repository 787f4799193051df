"""``report.html``: one self-contained page per run for a policy analyst (plots as base64 PNG).

Rendered from ``analysis/templates/run_report.html.j2``. Top to bottom: what the run contains (its
instruments and shock in words, from the config), the dependency definition, the verdict per
target (none when the target year is outside the run), the target table, dependency paths
against the target lines, the same checks under other definitions, the verdict under every
definition side by side (bloc and members, all use and imports, every stage and each product), the 2024 baseline against
sourced figures, the yearly review with the projects producing (from the run's own investment
pipeline), resilience metrics (the shock response read over a stated window, beside the model's
own movement without the shock when a no-shock run is given), a traceability example and,
collapsed, the technical details. Everything is read from the run's tables (``Result``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from critmin.analysis import definitions, labels, metrics
from critmin.analysis.instrument_text import describe_mix, describe_shock
from critmin.analysis.templating import figure, img, png_bytes, render
from critmin.sim.cache import release_memory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from critmin.analysis.results import Result


# ---------------------------------------------------------------------- plots
def _paths_plot(tables: metrics.Tables, m: dict[str, pd.DataFrame], last_year: int) -> str:
    p = m["paths"]
    coms = list(dict.fromkeys(p["commodity"]))
    if not coms:
        return ""
    from matplotlib.ticker import MaxNLocator

    w, h = 4.2 * len(coms), 3.6
    fig = figure(w, h)  # fixed margins (tight_layout would draw the figure twice)
    fig.subplots_adjust(left=0.7 / w, right=1 - 0.15 / w, bottom=0.4 / h, top=1 - 0.35 / h, wspace=0.08)
    axes = fig.subplots(1, len(coms), squeeze=False, sharey=True)
    for ax, com in zip(axes[0], coms):
        for stage, g in p[p["commodity"] == com].groupby("stage", sort=False):
            ax.plot(
                g["period"],
                100 * g["share"],
                marker="o",
                ms=3,
                label=f"{labels.stage(stage, com)} ({labels.country(g['supplier'].iloc[-1])})",
            )
        for t, ls in zip(_targets(tables), ("--", ":", "-.")):
            ax.axhline(100 * t["threshold"], color="red", ls=ls, lw=1, label=f"{t['threshold']:.0%} line")
            if int(t.get("year", 2030)) <= last_year:
                ax.axvline(t.get("year", 2030), color="grey", lw=0.6)
        ax.set_ylim(0, 100)
        ax.set_title(labels.commodity(com))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("largest supplier's share, %")
    return img(png_bytes(fig), "dependency paths")


def trace_plot(table: pd.DataFrame) -> Figure:
    """Stacked bars: one per stage, stacked by origin country (shares from :func:`metrics.trace`)."""
    fig = figure(6.5, 3.8)
    ax = fig.add_subplot()
    bottom = pd.Series(0.0, index=table.columns)
    for origin, row in table.iterrows():
        ax.bar(table.columns, 100 * row, bottom=100 * bottom, label=str(origin))
        bottom += row
    a = table.attrs
    ax.set_ylabel(f"share of {a.get('scope', '')} by {a.get('basis', '')}, %")
    ax.set_title(
        f"Where {a.get('region')}'s {a.get('year')} {a.get('commodity')} came from, by stage", fontsize=10
    )
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- content
def _targets(tables: metrics.Tables) -> list[dict[str, Any]]:
    s = tables.settings
    return [t for t in s.get("targets", []) or [] if t.get("region") in (None, s.get("region"))]


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    return f"{float(v):,.{digits}f}"


def verdicts(t: pd.DataFrame, last_month: str) -> list[dict[str, str]]:
    """One box per target: met / not met with the worst check, or no verdict when the target
    year is outside the run. Shares are printed on the same side of the line as their value."""
    out = []
    last_year = int(last_month[:4])
    for (name, region), g in t.groupby(["target", "region"], sort=False):
        th, year = float(g["threshold"].iloc[0]), int(g["year"].iloc[0])
        who = f"{name} ({labels.region_short(region)})"
        if year > last_year or g["value"].isna().all():
            out.append(
                {
                    "cls": "na",
                    "name": who,
                    "head": "no verdict",
                    "text": f"the run ends {labels.month(last_month)}, before the {year} target year.",
                }
            )
            continue
        worst = g.loc[g["value"].idxmax()]
        missed = g[g["met"] == False]  # noqa: E712  (None = no value)
        first = g.dropna(subset=["first_year_below"])
        when = (
            "first year below: "
            + "; ".join(
                f"{labels.check(r.commodity, r.stage)} {int(r.first_year_below)}" for r in first.itertuples()
            )
            if len(first)
            else "no checked stage falls below it in the run"
        )
        out.append(
            {
                "cls": "miss" if len(missed) else "met",
                "name": who,
                "head": "not met" if len(missed) else "met",
                "text": f"{len(missed)} of {len(g)} checked stages at or above {th:.0%} in {year}; highest: "
                f"{labels.check(worst['commodity'], worst['stage'])}, {labels.share(worst['value'], [th])} "
                f"from {labels.country(worst['supplier'])} (margin {worst['margin_points']:+.1f} points); "
                f"{when}.",
            }
        )
    return out


def target_rows(t: pd.DataFrame, last_year: int) -> list[dict[str, str]]:
    rows = []
    for r in t.itertuples():
        if int(r.year) > last_year:
            continue  # no verdict: the verdict boxes say so
        inside = not pd.isna(r.value)
        rows.append(
            {
                "target": r.target,
                "region": labels.region_short(r.region),
                "check": labels.check(r.commodity, r.stage),
                "year": str(int(r.year)),
                "value": labels.share(r.value, [r.threshold]) if inside else "–",
                "supplier": labels.country(r.supplier) if inside and r.supplier else "–",
                "line": f"{r.threshold:.0%}",
                "met": ("yes" if r.met else "no") if inside else "no verdict",
                "margin": f"{r.margin_points:+.2f}" if inside else "–",
                "first": str(int(r.first_year_below)) if not pd.isna(r.first_year_below) else "–",
            }
        )
    return rows


def _definition_words(alt: str) -> str:
    if alt == "default":
        return "default"
    words = {
        "basis=value": "by value",
        "basis=mass": "by tonnes",
        "scope=imports": "imports only",
        "scope=consumption": "all use",
    }
    return ", ".join(words.get(p.strip(), p.strip().replace("=", ": ")) for p in alt.split(","))


def alternative_table(a: pd.DataFrame, ths: list[float]) -> dict[str, Any]:
    years = [c for c in a.columns if c.isdigit()]
    rows = [
        {
            "definition": _definition_words(r["definition"]),
            "region": labels.region_short(r["region"]),
            "check": labels.check(r["commodity"], r["stage"]),
            "cells": [
                f"{labels.share(r[y], ths)} ({labels.country(r[f'supplier {y}'])})"
                if r[f"supplier {y}"] not in ("", "none")
                else labels.share(r[y], ths)
                for y in years
            ],
        }
        for _, r in a.iterrows()
    ]
    return {"years": years, "rows": rows}


def benchmark_years_outside(b: pd.DataFrame) -> str:
    """The figures' years, in words, when the run reaches none of them (a 2024 figure in a run
    of 2009-2016); empty otherwise."""
    if not len(b) or b["simulated"].notna().any():
        return ""
    return " and ".join(str(y) for y in sorted(set(b["year"].astype(int))))


def benchmark_rows(b: pd.DataFrame) -> list[dict[str, str]]:
    out = []
    for _, r in b.iterrows():
        region, com, stage, basis, scope = [x.strip() for x in r["definition"].split("·")]
        out.append(
            {
                "figure": r["figure"],
                "definition": f"{labels.region_short(region)}, {labels.check(com, stage)}, by "
                f"{'tonnes' if basis == 'mass' else 'value'}, {'all use' if scope == 'consumption' else 'imports'}",
                "year": str(r["year"]),
                "supplier": labels.country(r["supplier"]),
                "sourced": labels.share(r["sourced"]),
                "simulated": labels.share(r["simulated"]),
                "gap": _fmt(r["gap_points"]),
                "source": r["source"],
            }
        )
    return out


def projects_by_year(projects: pd.DataFrame, years: list[int]) -> dict[int, str]:
    """Per year: new projects producing by its end (named projects and prospects, counted by
    component) and brownfield expansions of existing plants that added capacity."""
    if projects is None or projects.empty:
        return {y: "none (this chain has no investment pipeline)" for y in years}
    started = projects[projects["first_production"].notna()]
    first = pd.to_numeric(started["first_production"].astype(str).str[:4], errors="coerce")
    out = {}
    for y in years:
        upto = started[first <= y]
        new = int((upto["kind"] != "expansion").sum())
        exp = int((upto["kind"] == "expansion").sum())
        out[y] = f"{new} new, {exp} expansions"
    return out


def investment(summary: dict[str, Any], projects: pd.DataFrame) -> dict[str, Any] | None:
    """The run's investment pipeline at its end, in words (None: exogenous capacity)."""
    inv = summary.get("investment") or {}
    if not inv.get("greenfield_by_status"):
        return None
    status = inv["greenfield_by_status"]
    producing = int(status.get("operating", 0)) + int(status.get("ramping", 0))
    online = inv.get("online_tpa_by_kind", {})
    started = [s for s in inv.get("named_projects_started", []) if not s.startswith("prospect_")]
    names = []
    for s in started:
        comp, _, when = s.partition(" (")
        names.append(f"{labels.facility(comp)} ({labels.month(when.rstrip(')'))})")
    order = ("operating", "ramping", "financed", "permitted", "announced", "concept", "cancelled")
    return {
        "producing": producing,
        "status": [(k, status[k]) for k in order if k in status],
        "online_new": _fmt(online.get("named", 0.0) + online.get("prospect", 0.0), 0),
        "online_expansion": _fmt(online.get("expansion", 0.0), 0),
        "named": names,
        "components": len(projects) if projects is not None else 0,
    }


def review(r: pd.DataFrame, tables: metrics.Tables, projects: pd.DataFrame) -> dict[str, Any]:
    ths = [float(t["threshold"]) for t in _targets(tables)]
    checks = [
        c for c in r.columns if c not in ("year",) and not c.endswith("supplier") and r[c].dtype == float
    ]
    checks = [c for c in checks if "USD" not in c]
    below = [c for c in r.columns if c.startswith("all below")]
    online = projects_by_year(projects, [int(y) for y in r["year"]])
    head = [labels.check(*c.split(" ", 1)) for c in checks]
    head += [f"Every stage {c.removeprefix('all ')}" for c in below]
    head += ["Projects producing (cumulative)", "Instrument spending, USD m"]
    rows = []
    for _, x in r.iterrows():
        cells = [labels.share(x[c], ths) for c in checks]
        cells += ["yes" if x[c] else "no" for c in below]
        cells += [online[int(x["year"])], _fmt(x["instrument spending, USD"] / 1e6, 1)]
        rows.append({"year": str(int(x["year"])), "cells": cells})
    return {"head": head, "rows": rows}


def shock_section(tables: metrics.Tables, result: Result) -> dict[str, Any] | None:
    """The shock response over the stated window, beside the no-shock reference run's movement
    over the same months when ``experiment.metrics.baseline_run`` is a run without a shock."""
    window = metrics.run_window(tables)
    if window is None:
        return None
    seen = metrics.price_in_window(tables, window)
    ref, ref_note = _reference(result, window)
    rows = []
    for r in seen.itertuples():
        row = {
            "commodity": labels.commodity(r.commodity),
            "price": "world seller price" if r.region == "WORLD" else f"{r.region} buyers' price",
            "high": f"{r.high_ratio:.2f}× ({labels.month(r.high_month)})",
            "low": f"{r.low_ratio:.2f}×",
            "ref": "–",
        }
        if ref is not None:
            m = ref[(ref["commodity"] == r.commodity) & (ref["region"] == r.region)]
            if len(m):
                row["ref"] = f"{m['low_ratio'].iloc[0]:.2f}× – {m['high_ratio'].iloc[0]:.2f}×"
        rows.append(row)
    return {"window": window.describe(), "rows": rows, "reference": ref is not None, "note": ref_note}


def _reference(result: Result, window: metrics.ShockWindow) -> tuple[pd.DataFrame | None, str]:
    cfg = result.manifest.get("config", {})
    base = ((cfg.get("experiment") or {}).get("metrics") or {}).get("baseline_run")
    how = (
        "The model's own price movement without the shock is not shown: this run has no no-shock "
        "reference. Set experiment.metrics.baseline_run to the folder of the same run with shock=none, "
        "or use critmin compare, which runs one."
    )
    if not base:
        return None, how
    import yaml

    manifest = yaml.safe_load((Path(base) / "manifest.yaml").read_text())
    shock = ((manifest or {}).get("config") or {}).get("shock") or {}
    if shock.get("events") or shock.get("instruments"):
        return None, f"The reference run {base} has a shock of its own, so it is not used here. " + how
    ref = metrics.price_in_window(metrics.Tables.from_dir(base), window)
    return ref, (
        f"Without the shock: the same prices in the reference run {Path(base).name} (shock none), over "
        "the same months and the same pre-shock months."
    )


def build(result: Result) -> str:
    tables = metrics.Tables.from_result(result)
    m = result.metrics
    summ = result.summary
    cfg = result.manifest.get("config", {})
    d = metrics.default_definition(tables, "<commodity>", "<stage>")
    members = sorted(tables.members(d.region))
    last = tables.timeseries["month"].max().strftime("%Y-%m")
    last_year = int(last[:4])
    ths = [float(t["threshold"]) for t in _targets(tables)]
    years = sorted(tables.timeseries["month"].dt.year.unique())
    year = 2030 if 2030 in years else years[-1]
    trace = (
        metrics.trace(tables, d.region, "ndfeb_magnet", year)
        if "ndfeb_magnet" in tables.commodity_stage
        else None
    )
    # the trace's origin index of the consumption table (~15 MiB) is not read again: freed
    # before the figures are drawn on top of it (the peak of a critmin run's report)
    tables.cache.clear()
    release_memory()
    minerals = sorted({labels.mineral(c) for c in tables.commodity_stage})
    hhi = m["hhi"].pivot_table(index="year", columns="commodity", values="hhi", observed=True).round(0)
    unmet = m["unmet"]
    by = unmet.groupby("year")[["demand_t", "unmet_t"]].sum().reset_index() if len(unmet) else None
    return render(
        "run_report.html.j2",
        title=f"Run report {result.manifest.get('run_id', '')}",
        chain=labels.join(minerals),
        start=summ["start"],
        last=last,
        policy=summ["policy"],
        shock=summ["shock"],
        seed=summ["seed"],
        instruments=describe_mix(cfg.get("policy")),
        shock_items=describe_shock(cfg.get("shock")) if summ["shock"] != "none" else [],
        region=d.region,
        region_words=labels.region(d.region),
        members=labels.join(labels.country(c) for c in members),
        basis="tonnes" if d.basis == "mass" else "value (USD)",
        scope=d.scope,
        verdicts=verdicts(m["targets"], last) if len(m["targets"]) else [],
        targets=target_rows(m["targets"], last_year) if len(m["targets"]) else [],
        paths_img=_paths_plot(tables, m, last_year),
        alternatives=alternative_table(m["alternatives"], ths),
        definitions=definitions.report_table(m["definitions"], ths),
        benchmarks=benchmark_rows(m["benchmarks"]) if len(m["benchmarks"]) else [],
        benchmarks_outside=benchmark_years_outside(m["benchmarks"]),
        review=review(m["review"], tables, result.projects),
        investment=investment(summ, result.projects),
        hhi={
            "head": [labels.commodity(c) for c in hhi.columns],
            "rows": [(str(y), [_fmt(v, 0) for v in r]) for y, r in hhi.iterrows()],
        },
        unmet=[
            (str(r.year), _fmt(r.demand_t, 0), _fmt(r.unmet_t, 0), f"{100 * r.unmet_t / r.demand_t:.2f}%")
            for r in by.itertuples()
        ]
        if by is not None
        else [],
        shock_response=shock_section(tables, result),
        recycled=[
            (str(r.year), labels.region_short(r.region), labels.commodity(r.commodity), labels.share(r.share))
            for r in m["recycled"].itertuples()
        ],
        consumer=[
            (str(r.year), labels.commodity(r.commodity), _fmt(r.usd / 1e6, 1))
            for r in m["consumer_cost"].itertuples()
        ],
        fiscal=[
            (str(r.year), labels.country(r.country), r.item, _fmt(r.usd / 1e6, 2))
            for r in m["fiscal"].itertuples()
        ],
        trace_year=year,
        trace=None
        if trace is None or trace.empty
        else {
            "head": [labels.stage(s, "ndfeb_magnet") for s in trace.columns],
            "rows": [
                (labels.country(o) if o != "other" else "other countries", [labels.share(v) for v in r])
                for o, r in trace.iterrows()
            ],
        },
        tech={
            "run_id": result.manifest.get("run_id", ""),
            "code_version": result.manifest.get("code_version", ""),
            "scenario": summ["scenario"],
            "months": summ["months"],
            "mass_balance": f"{summ.get('mass_balance_max_rel_error', float('nan')):.1e}",
            "definition": d.describe(),
        },
    )


def write_report(result: Result, path: Path) -> Path:
    path = Path(path)
    path.write_text(build(result), encoding="utf-8")
    return path
