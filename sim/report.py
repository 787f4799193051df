"""``report.html``: one self-contained page per run for a policy analyst (plots as base64 PNG).

Top to bottom: the dependency definition, the verdict per target, the target table, dependency
paths against the 60% / 50% lines, the same checks under other definitions, the 2024 baseline
against sourced figures, the yearly review, resilience metrics and a traceability example.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from critmin.sim import metrics

if TYPE_CHECKING:
    from critmin.sim.run import Result

CSS = """
body{font-family:system-ui,Arial,sans-serif;max-width:1100px;margin:24px auto;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:1.8em}
.def{background:#eef4fb;border-left:5px solid #3a78c2;padding:10px 14px;margin:12px 0}
.verdict{font-size:1.15em;padding:10px 14px;margin:8px 0;border-radius:4px}
.miss{background:#fde8e8;border-left:5px solid #c0392b}.met{background:#e6f6ea;border-left:5px solid #27ae60}
.na{background:#f3f3f3;border-left:5px solid #999}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.no{color:#c0392b;font-weight:600}.yes{color:#1e8449;font-weight:600}
.note{color:#666;font-size:.85em}img{max-width:100%}
"""


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pct(v: object) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"


def _table(df: pd.DataFrame, pct: tuple[str, ...] = (), left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            if c in pct:
                text = _pct(v)
            elif c in ("year", "first_year_below") and not pd.isna(v):
                text = str(int(v))
            elif isinstance(v, bool):
                text = f'<span class="{"yes" if v else "no"}">{"yes" if v else "no"}</span>'
            elif isinstance(v, float):
                text = "–" if pd.isna(v) else f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
            else:
                text = "–" if v is None or (not isinstance(v, str) and pd.isna(v)) else html.escape(str(v))
            cells.append(f'<td class="{"l" if c in left else ""}">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _verdicts(t: pd.DataFrame) -> str:
    out = []
    for (name, region), g in t.groupby(["target", "region"], sort=False):
        th, year = g["threshold"].iloc[0], g["year"].iloc[0]
        if g["value"].isna().all():
            out.append(
                f'<div class="verdict na"><b>{html.escape(name)}</b> ({region}): {g["note"].iloc[0]}.</div>'
            )
            continue
        worst = g.loc[g["value"].idxmax()]
        missed = g[g["met"] == False]  # noqa: E712  (None = no value)
        cls = "miss" if len(missed) else "met"
        head = "NOT MET" if len(missed) else "MET"
        detail = (
            f"{len(missed)} of {len(g)} checks above {th:.0%} in {year}; worst: {worst['commodity']} "
            f"{worst['stage']} stage, {_pct(worst['value'])} from {worst['supplier']} "
            f"(margin {worst['margin_points']:+.1f} points)"
        )
        first = g["first_year_below"].dropna()
        when = (
            f"; first year below: {', '.join(f'{r.commodity} {r.stage} {int(r.first_year_below)}' for r in g.dropna(subset=['first_year_below']).itertuples())}"
            if len(first)
            else "; no check falls below it in the run"
        )
        out.append(
            f'<div class="verdict {cls}"><b>{html.escape(name)}</b> ({region}): {head}. {detail}{when}.</div>'
        )
    return "".join(out)


def _paths_plot(tables: metrics.Tables, m: dict[str, pd.DataFrame]) -> str:
    p = m["paths"]
    coms = list(dict.fromkeys(p["commodity"]))
    if not coms:
        return ""
    fig, axes = plt.subplots(1, len(coms), figsize=(4.2 * len(coms), 3.6), squeeze=False, sharey=True)
    targets = tables.settings.get("targets", []) or []
    for ax, com in zip(axes[0], coms):
        for stage, g in p[p["commodity"] == com].groupby("stage", sort=False):
            ax.plot(
                g["period"], 100 * g["share"], marker="o", ms=3, label=f"{stage} ({g['supplier'].iloc[-1]})"
            )
        for t, ls in zip(
            [t for t in targets if t.get("region") in (None, tables.settings.get("region"))],
            ("--", ":", "-."),
        ):
            ax.axhline(100 * t["threshold"], color="red", ls=ls, lw=1, label=f"{t['threshold']:.0%}")
            ax.axvline(t.get("year", 2030), color="grey", lw=0.6)
        ax.set_ylim(0, 100)
        ax.set_title(com)
        ax.set_ylabel("largest non-G7+ supplier's share, %")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _png(fig)


def trace_plot(table: pd.DataFrame) -> plt.Figure:
    """Stacked bars: one per stage, stacked by origin country (shares from :func:`metrics.trace`)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
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


def build(result: Result) -> str:
    tables = metrics.Tables.from_result(result)
    m = result.metrics
    d = metrics.default_definition(tables, "<commodity>", "<stage>")
    members = sorted(tables.members(d.region))
    summ = result.summary
    parts = [
        f"<html><head><meta charset='utf-8'><title>critmin report {result.manifest.get('run_id', '')}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>Dependency and the 2030 target — {html.escape(summ['scenario'])} / policy "
        f"{html.escape(summ['policy'])} / shock {html.escape(summ['shock'])}, seed {summ['seed']}</h1>",
        f"<p class='note'>run {result.manifest.get('run_id', '')}, {summ['start']} + {summ['months']} months, "
        f"code {result.manifest.get('code_version', '')}</p>",
        "<div class='def'><b>Definition used.</b> Dependency = "
        f"{html.escape(d.describe().replace('<commodity>', 'the commodity').replace('<stage>', 'origin'))}; "
        "the supplier is found each year. "
        f"<br>{html.escape(d.region)} = {', '.join(members)}."
        f"<br>Basis <b>{d.basis}</b>, scope <b>{d.scope}</b>"
        " (consumption = what the region's plants and manufacturers use; imports = shipments into "
        "the region from outside it). Origin stage = where the mine, refining (separation), metal "
        "(alloy) or magnet step of that material happened, traced by mass through every stock.</div>",
        "<h2>Is the target met?</h2>",
        _verdicts(m["targets"]) if len(m["targets"]) else "<p>No targets configured.</p>",
        "<h2>Target table</h2>",
        _table(
            m["targets"][
                [
                    "target",
                    "region",
                    "commodity",
                    "stage",
                    "year",
                    "value",
                    "supplier",
                    "threshold",
                    "met",
                    "margin_points",
                    "first_year_below",
                    "note",
                ]
            ],
            pct=("value", "threshold"),
            left=("target", "region", "commodity", "stage", "supplier", "note"),
        )
        if len(m["targets"])
        else "",
        "<p class='note'>margin_points = threshold − value (positive = met). Until the investment issue "
        "lands, post-2028 supply follows an exogenous capacity trend (docs/ODD.md §9): read 2030 as a "
        "no-new-policy reference, not a forecast.</p>",
        "<h2>Dependency paths against the targets</h2>",
        _paths_plot(tables, m),
        "<h2>The same checks under other definitions</h2>",
        _table(
            m["alternatives"],
            pct=tuple(c for c in m["alternatives"].columns if c.isdigit()),
            left=("definition", "region", "commodity", "stage", "basis", "scope"),
        ),
        "<h2>2024 baseline against sourced figures</h2>",
        _table(
            m["benchmarks"], pct=("sourced", "simulated"), left=("figure", "definition", "supplier", "source")
        )
        if len(m["benchmarks"])
        else "<p>No benchmarks configured.</p>",
        "<h2>Yearly review</h2>",
        _review(m["review"]),
        "<h2>Resilience</h2>",
        _resilience(m),
    ]
    years = sorted(tables.timeseries["month"].dt.year.unique())
    year = 2030 if 2030 in years else years[-1]
    t = (
        metrics.trace(tables, d.region, "ndfeb_magnet", year)
        if "ndfeb_magnet" in tables.commodity_stage
        else None
    )
    if t is not None and not t.empty:
        parts += [
            f"<h2>Trace: where was the rare earth in {d.region}'s {year} magnets mined, refined, made?</h2>",
            _table(t.reset_index(), pct=tuple(t.columns), left=("origin",)),
            _png(trace_plot(t)),
            "<p class='note'>Any region, commodity and year: <code>critmin trace RUN_DIR --region DEU "
            "--year 2030</code> or <code>result.trace('DEU', year=2030)</code>.</p>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _review(r: pd.DataFrame) -> str:
    share_cols = [
        c
        for c in r.columns
        if c not in ("year",) and not c.endswith("supplier") and r[c].dtype == float and "USD" not in c
    ]
    view = r.drop(columns=[c for c in r.columns if c.endswith("supplier")])
    view["projects online"] = "none"
    return _table(view, pct=tuple(share_cols), left=("projects online",)) + (
        "<p class='note'>Shares are the largest non-G7+ supplier's (CHN in every year unless shown "
        "otherwise in the target table). Projects online: none are modelled until the investment "
        "issue. Instrument spending: sum of the region's governments' fiscal ledgers.</p>"
    )


def _resilience(m: dict[str, pd.DataFrame]) -> str:
    out = []
    h = (
        m["hhi"]
        .pivot_table(index="year", columns="commodity", values="hhi", observed=True)
        .round(0)
        .reset_index()
    )
    out += ["<h3>Concentration of production (HHI, 0–10,000)</h3>", _table(h)]
    u = m["unmet"]
    if len(u):
        by = u.groupby("year")[["demand_t", "unmet_t"]].sum().reset_index()
        by["unmet %"] = 100 * by["unmet_t"] / by["demand_t"]
        out += [
            "<h3>Unmet final demand (all regions; by end use and region in metrics.parquet)</h3>",
            _table(by),
        ]
    sh = m["shock"]
    out.append("<h3>Shock response</h3>")
    out.append(
        _table(sh, left=("commodity", "region", "peak_month"))
        if len(sh)
        else "<p>No shock in this run (shock=none): no peak or recovery to report.</p>"
    )
    rc = m["recycled"]
    if len(rc):
        out += [
            "<h3>Recycled share of production</h3>",
            _table(rc, pct=("share",), left=("region", "commodity")),
        ]
    cc = m["consumer_cost"]
    out += [
        "<h3>Consumer cost (final consumption × delivered price)</h3>",
        _table(cc, left=("region", "commodity")),
    ]
    f = m["fiscal"]
    out.append("<h3>Fiscal cost per instrument and stockpiles</h3>")
    out.append(
        _table(f, left=("country", "item"))
        if len(f)
        else "<p>No instrument spending in this run (0 USD). Stockpile days of cover: no stockpiles.</p>"
    )
    return "".join(out)


def write_report(result: Result, path: Path) -> Path:
    path = Path(path)
    path.write_text(build(result), encoding="utf-8")
    return path
