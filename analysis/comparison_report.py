"""``report.html`` and ``plots/`` of a policy comparison (``critmin compare``).

One self-contained page (template ``analysis/templates/comparison_report.html.j2``; plots embedded as
base64 PNG, also written to ``plots/``): the headline (which mixes meet the 60% target and the
50% ambition in the target year, and when first; no verdict when the runs end before it), what
each mix and the shock contain (from their configs), the dependency definition, a table per mix
of targets, cost and resilience, the target-year dependency per stage, dependency paths against
the target lines, fiscal cost against dependency, the peak price in the shock window beside the
no-shock reference, and, collapsed, the technical details (overrides, ids, files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from critmin.analysis import comparison, labels
from critmin.analysis.comparison import Context
from critmin.analysis.instrument_text import describe_mix, describe_shock
from critmin.analysis.metrics import Definition
from critmin.analysis.templating import img, png_bytes, render

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
        if ctx.target_in_run:
            ax.axvline(ctx.target_year, color="grey", lw=0.7)
        ax.set_title(labels.check(com, stage), fontsize=10)
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
    handles, names = flat[0].get_legend_handles_labels()
    if legend_ax is not None:
        legend_ax.legend(handles, names, loc="center", fontsize=9, frameon=False, title="mix: median, band")
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
        panels.append((f"dep_{focus[0]}_{focus[1]}", labels.check(*focus)))
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
        # on two lines: a stage name ("NdFeB magnets: magnet making stage") overflows one
        ax.set_title(f"Cost against {year} dependency:\n{title}", fontsize=11)
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
    """Highest price in the shock window per mix (median and band), with the no-shock
    reference's range over the same months shaded; None without a shock."""
    s = summary.dropna(subset=["peak_ratio"])
    if ctx.shock == "none" or s.empty:
        return None
    colors = mix_colors(ctx.mixes)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(s) + 1.8))
    y = range(len(s))
    ref = summary.attrs.get("no_shock") or {}
    if ref:
        ax.axvspan(
            ref["low"],
            ref["high"],
            color="grey",
            alpha=0.2,
            label="without the shock: lowest–highest (median)",
        )
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
    ax.set_xlabel(f"highest {comparison.price_name(ctx)} / its level in the 3 months before the shock")
    span = (
        f", {labels.month(ctx.window.start)} – {labels.month(ctx.window.last)}"
        if ctx.window is not None
        else ""
    )
    ax.set_title(f"Highest price under the shock{span} (median and {ctx.band_label()})", fontsize=10)
    ax.axvline(1, color="grey", lw=0.8)
    ax.grid(alpha=0.3, axis="x")
    low = min([1.0, *([ref["low"]] if ref else []), *s["peak_ratio_lo"].dropna()])
    ax.set_xlim(left=low - 0.03)
    if ref:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> str:
    """Write the figure to ``path`` and return an <img> with the same PNG embedded."""
    data = png_bytes(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return img(data, path.stem.replace("_", " "))


# ---------------------------------------------------------------------- the page's content
def _shade(v: Any, ctx: Context) -> str:
    if pd.isna(v) or not ctx.targets:
        return ""
    ths = sorted(t.threshold for t in ctx.targets)
    return "ok" if v < ths[0] else "near" if v < ths[-1] else "far"


def _band(r: pd.Series, key: str, ctx: Context) -> dict[str, str]:
    v = r.get(key)
    return {
        "value": comparison.share_text(v, ctx),
        "band": f"{comparison.share_text(r.get(f'{key}_lo'), ctx)}–{comparison.share_text(r.get(f'{key}_hi'), ctx)}",
        "cls": _shade(v, ctx),
        "missing": v is None or pd.isna(v),
    }


def definition_rows(summary: pd.DataFrame, ctx: Context) -> list[dict[str, Any]]:
    """The target under every definition (analysis/definitions.py): per (region, scope, stage
    set) a cell per mix, the median highest share in the target year, its band and the seeds
    below the first line."""
    from critmin.analysis.definitions import CONTROL_WORDS, scope_words, stage_set_words

    defs = summary.attrs.get("definitions")
    if defs is None or defs.empty:
        return []
    from critmin.analysis.definitions import owner_rows_shown

    defs = defs[owner_rows_shown(defs, ["share", "share_lo", "share_hi"])]
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in defs.itertuples():
        control = getattr(r, "control", "location")
        key = (r.region, r.scope, r.stage_set, control)
        row = rows.setdefault(
            key,
            {
                "headline": bool(r.headline),
                "region": labels.region_short(r.region),
                "scope": scope_words(r.scope),
                "stages": stage_set_words(r.stage_set),
                "control": CONTROL_WORDS.get(control, control),
                "cells": [],
            },
        )
        cell = _band(pd.Series({"s": r.share, "s_lo": r.share_lo, "s_hi": r.share_hi}), "s", ctx)
        cell["seeds"] = f"{r.met_seeds}/{r.runs} below" if not cell["missing"] else ""
        row["cells"].append(cell)
    return list(rows.values())


def main_rows(summary: pd.DataFrame, ctx: Context) -> list[dict[str, Any]]:
    """One row per mix for the main table: targets, highest stage, cost, unmet demand, peak."""
    year, rows = ctx.target_year, []
    for _, r in summary.iterrows():
        targets = []
        for t in ctx.targets:
            p = f"{100 * t.threshold:.0f}"
            share, ever = r[f"met_{p}_share"], r[f"ever_{p}_seeds"]
            first = comparison.year_text(r[f"first_year_{p}"])
            first_txt = "never" if not ever else first + ("" if ever == r["runs"] else f" ({ever} seeds)")
            if not ctx.target_in_run:
                targets.append({"text": "no verdict", "first": first_txt, "cls": ""})
                continue
            cls = "" if pd.isna(share) else "ok" if share == 1 else "near" if share > 0 else "far"
            seeds = "–" if pd.isna(share) else f"{r[f'met_{p}_seeds']}/{r['runs']}"
            targets.append({"text": seeds, "first": first_txt, "cls": cls})
        rows.append(
            {
                "mix": r["mix"],
                "runs": f"{r['runs']}/{len(ctx.seeds)}",
                "targets": targets,
                "worst": _band(r, "dep_worst", ctx),
                "binding": comparison.check_text(r["binding"]) if r["binding"] else "",
                "fiscal": labels.money_bn(r[f"fiscal_bn_to_{year}"]),
                "fiscal_total": labels.money_bn(r["fiscal_bn_total"]),
                "fiscal_band": f"{labels.money_bn(r[f'fiscal_bn_to_{year}_lo'])} – "
                f"{labels.money_bn(r[f'fiscal_bn_to_{year}_hi'])}",
                "unmet": "–" if pd.isna(r["unmet_pct"]) else f"{r['unmet_pct']:.2f}%",
                "unmet_worst": "–"
                if pd.isna(r["unmet_pct_worst_year"])
                else f"{r['unmet_pct_worst_year']:.2f}%",
                "peak": comparison.ratio_text(r.get("peak_ratio")),
                "peak_band": f"{comparison.ratio_text(r.get('peak_ratio_lo'))}–"
                f"{comparison.ratio_text(r.get('peak_ratio_hi'))}",
                "peak_month": labels.month(r.get("peak_month", "")) if r.get("peak_month") else "",
                "stages": [_band(r, f"dep_{c}_{s}", ctx) for c, s in ctx.checks],
            }
        )
    return rows


def definition(ctx: Context, members: list[str]) -> dict[str, Any]:
    d = Definition(
        region=str(ctx.definition.get("region", ctx.region)),
        commodity="<commodity>",
        stage="<stage>",
        basis=str(ctx.definition.get("basis", "mass")),
        scope=str(ctx.definition.get("scope", "consumption")),
    )
    return {
        "region": d.region,
        "region_words": labels.region(d.region),
        "members": labels.join(labels.country(m) for m in members) or "–",
        "basis": "tonnes" if d.basis == "mass" else "value (USD)",
        "scope": f"what {d.region} plants and manufacturers use"
        if d.scope == "consumption"
        else f"{d.region}'s imports from outside {d.region}",
        "checks": [labels.check(c, s) for c, s in ctx.checks],
    }


def mixes(manifest: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """Each mix with its instruments in words (from the policy configs the runs used)."""
    policies = manifest.get("policies") or {}
    variants = {m["name"]: m for m in manifest.get("mixes") or []}
    out = []
    for name in ctx.mixes:
        v = variants.get(name, {})
        note = f"a variant of {v.get('policy')} with changed settings" if v.get("overrides") else ""
        out.append({"name": name, "note": note, "items": describe_mix(policies.get(name))})
    return out


def technical(manifest: dict[str, Any], ctx: Context) -> dict[str, Any]:
    variants = [m for m in manifest.get("mixes") or [] if m.get("overrides")]
    return {
        "comparison": manifest.get("comparison", ""),
        "code_version": str(manifest.get("code_version", "")),
        "scenario": ctx.scenario,
        "shock": ctx.shock,
        "overrides": list(manifest.get("overrides") or []),
        "variants": [f"{m['name']}: {m['policy']} + {', '.join(m['overrides'])}" for m in variants],
        "mixes": ", ".join(ctx.mixes),
        "runs": manifest.get("runs", 0),
        "seconds": (manifest.get("seconds") or {}).get("wall"),
        "jobs": manifest.get("jobs"),
    }


def build(
    tidy: pd.DataFrame,
    summary: pd.DataFrame,
    ctx: Context,
    manifest: dict[str, Any],
    members: list[str],
    plots: Path,
) -> str:
    ctx.checks = ctx.checks or comparison.checks_of(tidy)
    n = len(ctx.seeds)
    shock_cfg = (manifest.get("run_config") or {}).get("shock") or {}
    peak = peak_figure(summary, ctx)
    ref = summary.attrs.get("no_shock") or {}
    minerals = sorted({labels.mineral(c) for c, _ in ctx.checks})
    return render(
        "comparison_report.html.j2",
        title="Instrument mixes compared",
        ctx=ctx,
        n_seeds=n,
        seeds=f"{ctx.seeds[0]}–{ctx.seeds[-1]}" if n > 1 else (str(ctx.seeds[0]) if n else "–"),
        start=str((manifest.get("run_config") or {}).get("scenario", {}).get("start", "")),
        checked=labels.join(minerals),
        headlines=[comparison.headline_parts(s) for s in comparison.headlines(summary, ctx)],
        mixes=mixes(manifest, ctx),
        shock_items=describe_shock(shock_cfg) if ctx.shock != "none" else [],
        window=ctx.window.describe() if ctx.window is not None else "",
        no_shock=comparison.no_shock_text(ref) if ref else "",
        definition=definition(ctx, members),
        rows=main_rows(summary, ctx),
        definition_rows=definition_rows(summary, ctx),
        definition_owners=any(r["control"] != "where processed" for r in definition_rows(summary, ctx)),
        definition_owners_any=comparison.control_text(summary.attrs.get("definitions", pd.DataFrame()))
        != "where processed only",
        targets=ctx.targets,
        year=ctx.target_year,
        horizon_year=str(ctx.horizon)[:4],
        lowest_line=min((t.label for t in ctx.targets), default="–"),
        paths_img=save(paths_figure(tidy, ctx), plots / "dependency_paths.png") if ctx.checks else "",
        cost_img=save(cost_figure(summary, ctx), plots / "cost_vs_dependency.png")
        if ctx.target_in_run
        else "",
        peak_img=save(peak, plots / "peak_price.png") if peak is not None else "",
        price_name=comparison.price_name(ctx),
        unmet_name=labels.commodity(ctx.peak_commodity),
        failed=manifest.get("failed_runs") or [],
        tech=technical(manifest, ctx),
    )


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
