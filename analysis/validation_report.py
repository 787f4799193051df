"""``report.html`` and ``plots/`` of ``critmin validate``: totals per episode first, then each
episode's facts with the verdict, and the model against observed months where a fact has them.

One self-contained page (plots embedded as base64 PNG, also written to ``plots/``).
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
import numpy as np
import pandas as pd

from critmin.analysis import scorecard as sc

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right}.hit{background:#e6f6ea}.direction{background:#fff4d6}
.miss{background:#fde8e8}.nx{color:#777}.small{font-size:.8em;color:#555}img{max-width:100%}
"""
LABELS = {
    "ratio_to_twin": "shock run / no-shock twin",
    "ratio_to_pre": "relative to before the shock",
    "ratio_to_region": "ratio between regions",
    "share": "share",
    "share_of_demand": "share of demand",
    "change": "shock run − twin",
    "level": "level",
    "ratio_to_year_before": "year on year (same months a year earlier, same run)",
    "origin_share": "share from one origin (by mass, the commodity's own stage)",
}


# ---------------------------------------------------------------------- overlay plots
def monthly_groups(ep: sc.Episode) -> list[list[sc.Fact]]:
    """Facts observed month by month for the same quantity (two or more single-month windows)."""
    groups: dict[tuple, list[sc.Fact]] = {}
    for f in ep.facts:
        if f.expressible and f.window.first == f.window.last:
            key = (f.commodity, f.region, f.variable, f.statistic, f.relative_to, f.pre)
            groups.setdefault(key, []).append(f)
    return [g for g in groups.values() if len(g) >= 2]


def overlay_figure(er: sc.EpisodeRuns, group: list[sc.Fact]) -> plt.Figure:
    """Model median and 10-90% band over seeds, month by month, with the observed points and bands."""
    f0 = group[0]
    months = pd.date_range(min(f0.pre.first, er.episode.shock_month), er.episode.end(), freq="MS")
    paths = np.array(
        [[sc.measure(f0, s, t, sc.Window(m, m)) for m in months] for s, t in er.runs.values()], dtype=float
    )
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    if paths.size and np.isfinite(paths).any():
        with np.errstate(all="ignore"):
            ax.fill_between(
                months,
                np.nanquantile(paths, 0.1, axis=0),
                np.nanquantile(paths, 0.9, axis=0),
                color="C0",
                alpha=0.2,
            )
            ax.plot(months, np.nanmedian(paths, axis=0), color="C0", label="model (median, 10-90% of seeds)")
    for i, f in enumerate(sorted(group, key=lambda f: f.window.first)):
        lo, hi = f.band
        ax.errorbar(
            [f.window.first],
            [f.observed],
            yerr=[[f.observed - lo], [hi - f.observed]],
            fmt="o",
            color="black",
            capsize=3,
            label="observed (hit band)" if i == 0 else None,
        )
    ax.axvline(er.episode.shock_month, color="grey", ls=":", lw=1)
    where = f0.region + (f" / {f0.relative_to}" if f0.relative_to else "")
    ax.set_title(
        f"{f0.commodity} {f0.variable.replace('_', ' ')}, {where}: {LABELS[f0.statistic]}", fontsize=9
    )
    ax.legend(fontsize=7, loc="best")
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


# ---------------------------------------------------------------------- tables
def totals_table(tot: pd.DataFrame, labels: dict[str, str]) -> str:
    head = "<tr><th>Episode</th><th>Facts scored</th><th>Hit</th><th>Direction</th><th>Miss</th><th>Not expressible</th><th>Hit rate</th></tr>"
    rows = []
    for r in tot.itertuples():
        name = html.escape(labels.get(r.episode, r.episode))
        rate = "–" if pd.isna(r.hit_rate) else f"{100 * r.hit_rate:.0f}%"
        rows.append(
            f"<tr><td>{name}</td><td class=num>{r.facts}</td><td class='num hit'>{r.hit}</td>"
            f"<td class='num direction'>{r.direction}</td><td class='num miss'>{r.miss}</td>"
            f"<td class='num nx'>{r.not_expressible}</td><td class=num>{rate}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def fact_table(card: pd.DataFrame) -> str:
    head = (
        "<tr><th>Fact</th><th>Measured as</th><th>Window</th><th>Observed</th><th>Hit band</th>"
        "<th>Model median (10-90%)</th><th>Verdict</th><th>Source</th></tr>"
    )
    rows = []
    for r in card.itertuples():
        if r.expressible == "no":
            rows.append(
                f"<tr class=nx><td>{html.escape(r.label)}</td><td colspan=5>not expressible: "
                f"{html.escape(r.note)}</td><td>–</td><td class=small>{html.escape(r.source)}</td></tr>"
            )
            continue
        measured = f"{r.commodity} {r.variable.replace('_', ' ')} in {r.region}: {LABELS[r.statistic]}"
        if r.agg in ("min", "max") and ".." in r.window:
            measured += f" ({r.agg} over the window)"
        model = f"{sc.fmt(r.model_median)} ({sc.fmt(r.model_low)} to {sc.fmt(r.model_high)})"
        note = f"<br><span class=small>{html.escape(r.note)}</span>" if r.note else ""
        rows.append(
            f"<tr><td>{html.escape(r.label)}</td><td class=small>{html.escape(measured)}</td>"
            f"<td>{html.escape(r.window)}</td><td class=num>{html.escape(r.observed_text)}</td>"
            f"<td class=num>{sc.fmt(r.hit_low)} to {sc.fmt(r.hit_high)}</td><td class=num>{model}{note}</td>"
            f"<td class={r.verdict}>{r.verdict}</td><td class=small>{html.escape(r.source)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


# ---------------------------------------------------------------------- page
def write_report(
    folder: Path,
    card: pd.DataFrame,
    episode_runs: list[sc.EpisodeRuns],
    manifest: dict[str, Any],
    plots: bool = True,
) -> Path:
    plot_dir = folder / "plots"
    if plots:
        plot_dir.mkdir(exist_ok=True)
    labels = {er.episode.episode: er.episode.label for er in episode_runs}
    tot = sc.totals(card)
    overall = tot.iloc[-1]
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>critmin validation scorecard</title>"
        f"<style>{CSS}</style></head><body>",
        "<h1>How close is the model to what happened?</h1>",
        f"<p><b>{overall.hit} of {overall.facts} facts hit</b> (inside the historical band), "
        f"{overall.direction} move the right way but by the wrong amount or at the wrong time, "
        f"{overall.miss} miss; {overall.not_expressible} facts cannot be expressed by the model yet "
        f"(listed with the reason). Seeds: {len(manifest['seeds'])}; code {html.escape(manifest['code_version'])}.</p>",
        totals_table(tot, labels),
        "<h2>How to read this</h2><ul>"
        "<li><b>hit</b>: the model's median over seeds lies inside the observed band (widened by the "
        "fact's tolerance); <b>direction</b>: outside it, but moved from its pre-shock value the way history "
        "did; <b>miss</b>: wrong way, no move, or not measurable.</li>"
        "<li>Each shock run is compared with its no-shock twin over the same seeds (common random numbers); "
        "'relative to before the shock' divides by the same run's pre-shock months.</li>"
        "<li><b>Dates</b>: episodes before 2024 (gallium/germanium and graphite, 2023) are replayed on the "
        "2024 world with their dates shifted by a year; the tables show the historical months.</li>"
        "<li>Facts and sources: <code>data/validation/*.csv</code> (facts.md §2b-2e, §2g, §3). "
        "The rare-earth 2010-2014 episode is held out for independent validation.</li></ul>",
    ]
    if manifest.get("overrides"):
        parts.append(
            f"<p>Parameter overrides: <code>{html.escape(' '.join(manifest['overrides']))}</code></p>"
        )
    if manifest.get("failed_runs"):
        items = "".join(
            f"<li>{html.escape(f['run'])} seed {f['seed']}: {html.escape(f['error'])}</li>"
            for f in manifest["failed_runs"]
        )
        parts.append(f"<h2>Failed runs</h2><ul>{items}</ul>")
    for er in episode_runs:
        ep = er.episode
        sub = card[card["episode"] == ep.episode]
        shift = f" Replayed {ep.shift_months} months later on the 2024 world." if ep.shift_months else ""
        twin = " against its no-shock twin" if ep.has_twin else ""
        parts.append(
            f"<h2>{html.escape(ep.label)}</h2><p class=small>Scenario {html.escape(ep.scenario)}, shock "
            f"{html.escape(ep.shock)}{twin}, {len(er.runs)} seed(s), runs to {ep.end():%Y-%m} (model calendar)."
            f"{shift} Sources: {html.escape(ep.source)}.</p>"
        )
        parts.append(fact_table(sub))
        if plots and er.runs:
            for i, group in enumerate(monthly_groups(ep)):
                parts.append(save(overlay_figure(er, group), plot_dir / f"{ep.episode}_{i}.png"))
    parts.append("</body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts))
    return path
