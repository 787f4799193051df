"""``report.html`` and ``plots/`` of a policy comparison (``critmin compare``).

One self-contained page (plots embedded as base64 PNG, also written to ``plots/``) in the style of
the single-run report (sim/report.py): the headline (which mixes meet the 60% target and the 50%
ambition in the target year, and when first), the dependency definition, a table per mix of
targets, cost and resilience, a table of the target-year dependency per stage, dependency paths
per stage against the target lines, fiscal cost against target-year dependency, and the runs.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from critmin.sim import comparison
from critmin.sim.comparison import Context, pct
from critmin.sim.metrics import Definition
from critmin.sim.report import CSS

EXTRA_CSS = """
td.ok{background:#e6f6ea}td.near{background:#fff4d6}td.far{background:#fde8e8}
.band{color:#666;font-size:.85em}.headline{font-size:1.05em}.headline li{margin:4px 0}
table.cmp td{vertical-align:top}.small{font-size:.8em}
"""
TARGET_STYLES = ("--", ":", "-.")


# ---------------------------------------------------------------------- plots
def mix_colors(mixes: list[str]) -> dict[str, str]:
    """``none`` in black, the others from the tab10 palette, in order."""
    palette = [c for c in plt.get_cmap("tab10").colors]
    out, k = {}, 0
    for m in mixes:
        if m == "none":
            out[m] = "black"
        else:
            out[m] = matplotlib.colors.to_hex(palette[k % len(palette)])
            k += 1
    return out


def paths_figure(tidy: pd.DataFrame, ctx: Context) -> plt.Figure:
    """One panel per checked stage: each mix's median dependency path and band, target lines."""
    bands = comparison.paths_band(tidy, ctx)
    checks = ctx.checks or comparison.checks_of(tidy)
    n = max(len(checks), 1)
    cols = min(4, n + 1)  # one cell left for the legend when there is room
    rows = -(-(n + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False, sharey=True)
    flat = list(axes.ravel())
    colors = mix_colors(ctx.mixes)
    for ax, (com, stage) in zip(flat, checks):
        sel = bands[(bands["commodity"] == com) & (bands["stage"] == stage)]
        for mix in ctx.mixes:  # `none`, the reference, on top as a dashed line
            g = sel[sel["mix"] == mix].sort_values("year")
            if g.empty:
                continue
            ref = mix == "none"
            ax.fill_between(g["year"], 100 * g["lo"], 100 * g["hi"], color=colors[mix], alpha=0.18, lw=0)
            ax.plot(
                g["year"],
                100 * g["median"],
                color=colors[mix],
                lw=1.3 if ref else 1.8,
                ls="--" if ref else "-",
                marker=None if ref else "o",
                ms=2.5,
                zorder=3 if ref else 2,
                label=mix,
            )
        for t, ls in zip(ctx.targets, TARGET_STYLES):
            ax.axhline(100 * t.threshold, color="red", ls=ls, lw=1.1, label=f"{t.label} line: {t.name}")
        ax.axvline(ctx.target_year, color="grey", lw=0.7)
        ax.set_title(f"{com} · {stage} stage", fontsize=10.5)
        ax.tick_params(labelsize=8.5)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=6))
    for ax in flat[::cols]:
        ax.set_ylabel("single-supplier share, %")
    legend_ax = flat[len(checks)] if len(flat) > len(checks) else None
    for ax in flat[len(checks) :]:
        ax.set_visible(ax is legend_ax)
        ax.axis("off")
    handles, labels = flat[0].get_legend_handles_labels()
    if legend_ax is not None:
        legend_ax.legend(handles, labels, loc="center", fontsize=9, frameon=False, title="mix: median, band")
    fig.suptitle(
        f"{ctx.region} dependency on its largest non-{ctx.region} supplier, per origin stage "
        f"(median and {ctx.band_label()})",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def cost_figure(summary: pd.DataFrame, ctx: Context) -> plt.Figure:
    """Fiscal cost to the target year against target-year dependency: highest checked stage, and
    each mix's most dependent stage of the first check commodity (magnets by default)."""
    year = ctx.target_year
    colors = mix_colors(ctx.mixes)
    focus = _focus_check(ctx)
    panels = [("dep_worst", "highest checked stage")]
    if focus:
        panels.append((f"dep_{focus[0]}_{focus[1]}", f"{focus[0]} · {focus[1]} stage"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.4), squeeze=False)
    x = f"fiscal_bn_to_{year}"
    for ax, (col, title) in zip(axes[0], panels):
        drawn = 0
        for _, r in summary.iterrows():
            if pd.isna(r.get(col)) or pd.isna(r.get(x)):
                continue
            y, lo, hi = 100 * r[col], 100 * r[f"{col}_lo"], 100 * r[f"{col}_hi"]
            xlo, xhi = r[f"{x}_lo"], r[f"{x}_hi"]
            ax.errorbar(
                r[x],
                y,
                yerr=[[y - lo], [hi - y]],
                xerr=[[r[x] - xlo], [xhi - r[x]]],
                fmt="o",
                ms=8,
                color=colors[r["mix"]],
                capsize=3,
                label=r["mix"],
            )
            drawn += 1
        for t, ls in zip(ctx.targets, TARGET_STYLES):
            ax.axhline(100 * t.threshold, color="red", ls=ls, lw=1.1, label=f"{t.label} target line")
        if not drawn:
            ax.text(
                0.5, 0.5, f"no {year} value (runs end {ctx.horizon})", ha="center", transform=ax.transAxes
            )
        ax.set_ylim(0, 100)
        ax.set_xlabel(f"fiscal cost to {year}, {ctx.region} governments, USD bn")
        ax.set_ylabel(f"{year} single-supplier share, %")
        ax.set_title(f"Cost against {year} dependency: {title}", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8.5, loc="lower left")
        ax.margins(x=0.15)
    fig.tight_layout()
    return fig


def _focus_check(ctx: Context) -> tuple[str, str] | None:
    """The check shown beside the highest stage: the peak-price commodity at its last checked
    stage (ndfeb_magnet · magnet: checks list stages in chain order), else the first check."""
    same = [c for c in ctx.checks if c[0] == ctx.peak_commodity]
    return same[-1] if same else (ctx.checks[0] if ctx.checks else None)


def peak_figure(summary: pd.DataFrame, ctx: Context) -> plt.Figure | None:
    """Peak price under the shock per mix (median and band), or None without a shock."""
    s = summary.dropna(subset=["peak_ratio"])
    if ctx.shock == "none" or s.empty:
        return None
    colors = mix_colors(ctx.mixes)
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(s) + 1.4))
    y = range(len(s))
    ax.barh(list(y), s["peak_ratio"] - 1, left=1, color=[colors[m] for m in s["mix"]], alpha=0.8)
    ax.errorbar(
        s["peak_ratio"],
        list(y),
        xerr=[s["peak_ratio"] - s["peak_ratio_lo"], s["peak_ratio_hi"] - s["peak_ratio"]],
        fmt="none",
        color="black",
        capsize=3,
    )
    ax.set_yticks(list(y), s["mix"])
    ax.invert_yaxis()
    who = "world seller price" if ctx.peak_region == "WORLD" else f"{ctx.peak_region} buyers' price"
    ax.set_xlabel(f"peak {ctx.peak_commodity} {who} / pre-shock (3 months before)")
    ax.set_title(f"Peak price under {ctx.shock} (median and {ctx.band_label()})", fontsize=10)
    ax.axvline(1, color="grey", lw=0.8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> str:
    """Write the figure to ``path`` and return an <img> with the same PNG embedded."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


# ---------------------------------------------------------------------- tables
def _band_cell(v: float, lo: float, hi: float, ctx: Context, shade: bool = True) -> str:
    if pd.isna(v):
        return "<td>–</td>"
    cls = ""
    if shade and ctx.targets:
        ths = sorted(t.threshold for t in ctx.targets)
        cls = "ok" if v < ths[0] else "near" if v < ths[-1] else "far"
    return f'<td class="{cls}">{pct(v)}<br><span class="band">{pct(lo)}–{pct(hi)}</span></td>'


def main_table(summary: pd.DataFrame, ctx: Context) -> str:
    year = ctx.target_year
    n = len(ctx.seeds)
    head = ["mix", "runs"]
    for t in ctx.targets:
        head.append(f"{t.label} met in {year}<br><span class='small'>seeds; first year met</span>")
    head += [
        f"highest stage in {year}<br><span class='small'>median, band</span>",
        f"fiscal cost, USD bn<br><span class='small'>to {year} / to {str(ctx.horizon)[:4]}</span>",
        f"unmet {ctx.peak_commodity} demand<br><span class='small'>% over the run (worst year)</span>",
    ]
    if ctx.shock != "none":
        head.append("peak price × pre-shock<br><span class='small'>median, band (month)</span>")
    rows = []
    for _, r in summary.iterrows():
        cells = [f'<td class="l"><b>{html.escape(r["mix"])}</b></td>', f"<td>{r['runs']}/{n}</td>"]
        for t in ctx.targets:
            p = f"{100 * t.threshold:.0f}"
            seeds, share = r[f"met_{p}_seeds"], r[f"met_{p}_share"]
            cls = "" if pd.isna(share) else "ok" if share == 1 else "near" if share > 0 else "far"
            first = comparison.year_text(r[f"first_year_{p}"])
            ever = r[f"ever_{p}_seeds"]
            first_txt = (
                "never" if not ever else f"{first}" + ("" if ever == r["runs"] else f" ({ever} seeds)")
            )
            yes = "–" if pd.isna(share) else f"<b>{seeds}/{r['runs']}</b>"
            cells.append(f'<td class="{cls}">{yes}<br><span class="band">first: {first_txt}</span></td>')
        worst = _band_cell(r["dep_worst"], r["dep_worst_lo"], r["dep_worst_hi"], ctx)
        cells.append(
            worst.replace("<td", "<td title='highest of the checked stages'", 1).replace(
                "<br>", f" <span class='small'>{html.escape(r['binding'])}</span><br>", 1
            )
        )
        f1, f2 = r[f"fiscal_bn_to_{year}"], r["fiscal_bn_total"]
        cells.append(
            "<td>–</td>"
            if pd.isna(f1)
            else f"<td>{f1:,.2f} / {f2:,.2f}<br><span class='band'>{r[f'fiscal_bn_to_{year}_lo']:,.2f} – "
            f"{r[f'fiscal_bn_to_{year}_hi']:,.2f} to {year}</span></td>"
        )
        u = r["unmet_pct"]
        cells.append(
            "<td>–</td>"
            if pd.isna(u)
            else f"<td>{u:.2f}%<br><span class='band'>worst year {r['unmet_pct_worst_year']:.2f}%</span></td>"
        )
        if ctx.shock != "none":
            pr = r["peak_ratio"]
            cells.append(
                "<td>–</td>"
                if pd.isna(pr)
                else f"<td>{pr:.2f}×<br><span class='band'>{r['peak_ratio_lo']:.2f}–{r['peak_ratio_hi']:.2f} "
                f"({html.escape(r['peak_month'])})</span></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ths = "".join(f"<th class='{'l' if h == 'mix' else ''}'>{h}</th>" for h in head)
    return f"<table class='cmp'><tr>{ths}</tr>{''.join(rows)}</table>"


def stage_table(summary: pd.DataFrame, ctx: Context) -> str:
    head = "".join(f"<th>{html.escape(c)}<br>{html.escape(s)}</th>" for c, s in ctx.checks)
    rows = []
    for _, r in summary.iterrows():
        cells = [f'<td class="l"><b>{html.escape(r["mix"])}</b></td>']
        for com, stage in ctx.checks:
            k = f"dep_{com}_{stage}"
            cells.append(_band_cell(r.get(k), r.get(f"{k}_lo"), r.get(f"{k}_hi"), ctx))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='cmp'><tr><th class='l'>mix</th>{head}</tr>{''.join(rows)}</table>"


def definition_box(ctx: Context, members: list[str]) -> str:
    d = Definition(
        region=str(ctx.definition.get("region", ctx.region)),
        commodity="<commodity>",
        stage="<stage>",
        basis=str(ctx.definition.get("basis", "mass")),
        scope=str(ctx.definition.get("scope", "consumption")),
    )
    text = d.describe().replace("<commodity>", "the commodity").replace("<stage>", "origin")
    checks = ", ".join(f"{c} {s}" for c, s in ctx.checks)
    targets = "; ".join(f"{html.escape(t.name)}: below {t.label} in {t.year}" for t in ctx.targets)
    return (
        "<div class='def'><b>Definition used.</b> Dependency = "
        f"{html.escape(text)}; the supplier is found each year (experiment.metrics). "
        f"{html.escape(d.region)} = {', '.join(members) or '–'}. Basis <b>{d.basis}</b>, scope "
        f"<b>{d.scope}</b>.<br><b>A target is met</b> in a year when every checked stage is below its "
        f"threshold ({targets}); checked: {html.escape(checks)}.</div>"
    )


def method_note(ctx: Context) -> str:
    n = len(ctx.seeds)
    seeds = f"{ctx.seeds[0]}–{ctx.seeds[-1]}" if n > 1 else str(ctx.seeds[0]) if n else "–"
    who = "world seller price" if ctx.peak_region == "WORLD" else f"{ctx.peak_region} buyers' delivered price"
    return (
        f"<p class='note'>{n} seeds per mix (seeds {seeds}); seed i has the same random draws in every "
        f"mix (common random numbers), so differences between mixes are the instruments'. Cells show "
        f"the median and, below it, the {ctx.band_label()}. Shading: green below "
        f"{min((t.label for t in ctx.targets), default='–')}, amber between the target lines, red above. "
        f"Fiscal cost = sum of the {ctx.region} governments' instrument ledgers (subsidies, purchases, "
        f"fees; stockpile sales count negative). Unmet demand = {ctx.region} final demand for "
        f"{ctx.peak_commodity} not served, % of that demand over the run. Peak price = the highest monthly "
        f"{who} of {ctx.peak_commodity} from the start of the shock over its mean in the 3 months before "
        "(docs/metrics.md, shock response).</p>"
    )


def failed_section(manifest: dict[str, Any]) -> str:
    failed = manifest.get("failed_runs") or []
    if not failed:
        return ""
    rows = "".join(
        f"<tr><td class='l'>{html.escape(f['mix'])}</td><td>{f['seed']}</td>"
        f"<td class='l'>{html.escape(f['error'])}</td></tr>"
        for f in failed
    )
    return (
        f"<h2>Failed runs ({len(failed)})</h2><div class='verdict miss'>These runs are left out of the "
        "medians and bands above (the runs column counts what is left).</div>"
        f"<table><tr><th class='l'>mix</th><th>seed</th><th class='l'>error</th></tr>{rows}</table>"
    )


def _bold_head(sentence: str) -> str:
    head, sep, rest = sentence.partition(": ")
    return f"<b>{html.escape(head)}</b>{sep}{html.escape(rest)}" if sep else html.escape(sentence)


def build(
    tidy: pd.DataFrame,
    summary: pd.DataFrame,
    ctx: Context,
    manifest: dict[str, Any],
    members: list[str],
    plots: Path,
) -> str:
    ctx.checks = ctx.checks or comparison.checks_of(tidy)
    year = ctx.target_year
    lines = "".join(f"<li>{_bold_head(s)}</li>" for s in comparison.headlines(summary, ctx))
    title = f"Instrument mixes compared — {ctx.scenario}, shock {ctx.shock}, {len(ctx.seeds)} seeds"
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}{EXTRA_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>comparison {html.escape(manifest.get('comparison', ''))}; runs to {ctx.horizon}; "
        f"code {html.escape(str(manifest.get('code_version', '')))}; "
        f"{manifest.get('runs', 0)} runs, {len(manifest.get('failed_runs') or [])} failed</p>",
        f"<div class='verdict na headline'><ul>{lines}</ul></div>",
        definition_box(ctx, members),
        "<h2>Targets, cost and resilience per mix</h2>",
        main_table(summary, ctx),
        method_note(ctx),
        f"<h2>{year} dependency by origin stage</h2>",
        stage_table(summary, ctx),
        "<h2>Dependency paths against the targets</h2>",
        save(paths_figure(tidy, ctx), plots / "dependency_paths.png") if ctx.checks else "<p>No checks.</p>",
        "<h2>Fiscal cost against dependency</h2>",
        save(cost_figure(summary, ctx), plots / "cost_vs_dependency.png"),
    ]
    peak = peak_figure(summary, ctx)
    if peak is not None:
        parts += ["<h2>Peak price under the shock</h2>", save(peak, plots / "peak_price.png")]
    parts.append(failed_section(manifest))
    overrides = ", ".join(manifest.get("overrides", []))
    parts += [
        "<h2>Runs</h2>",
        f"<p class='note'>Mixes: {html.escape(', '.join(ctx.mixes))} (configs/policy/&lt;mix&gt;.yaml). "
        f"Overrides on every run: {html.escape(overrides)}. All numbers: comparison.parquet (one row per "
        "mix × seed × year × metric) and summary.csv; configs, seeds, data hashes: manifest.yaml. "
        "Model limitations: docs/ODD.md.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(
    folder: Path,
    tidy: pd.DataFrame,
    summary: pd.DataFrame,
    ctx: Context,
    manifest: dict[str, Any],
    members: list[str],
) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into the comparison folder."""
    path = Path(folder) / "report.html"
    path.write_text(build(tidy, summary, ctx, manifest, members, Path(folder) / "plots"), encoding="utf-8")
    return path
