"""``report.html`` and ``plots/`` of a ``critmin solve`` study: for a policy reader, what it takes
to meet the target (the cheapest mix per mode and target in plain words, its cost, how robust it
is, what binds when nothing meets it), the cost–dependency front, resilience under the shocks
and what acting as a coalition buys (template ``analysis/templates/solve_report.html.j2``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from critmin.analysis import comparison, labels
from critmin.analysis.templating import img, png_bytes, render

MODE_COLORS = {"alone": "#d35400", "coalition": "#2471a3"}
TARGET_STYLES = ("--", ":", "-.")


def _color(mode: str) -> str:
    return MODE_COLORS.get(mode, "#555555")


def front_figure(evals: pd.DataFrame, checked: pd.DataFrame, targets: list, cost: str, pv: int) -> plt.Figure:
    """Per mode: every screened mix (cost against the highest checked share), its Pareto front,
    the fully checked mixes, the target lines."""
    modes = list(dict.fromkeys(evals["mode"])) if len(evals) else []
    fig, axes = plt.subplots(
        1, max(1, len(modes)), figsize=(6 * max(1, len(modes)), 4.6), squeeze=False, sharey=True
    )
    for ax, mode in zip(axes[0], modes):
        g = evals[evals["mode"] == mode]
        ax.scatter(100 * g["share"], g[cost] / 1e9, s=10, color="#bbbbbb", label="screened mix (1 run)")
        f = g[g["pareto"]].sort_values("share")
        ax.plot(
            100 * f["share"], f[cost] / 1e9, "-o", ms=4, color=_color(mode), label="Pareto front (screen)"
        )
        c = checked[checked["mode"] == mode] if len(checked) else checked
        if len(c):
            ax.scatter(
                100 * c["share"],
                c[cost] / 1e9,
                marker="D",
                s=40,
                facecolor="none",
                edgecolor="black",
                label="full check (robust share)",
            )
        for t, ls in zip(targets, TARGET_STYLES):
            ax.axvline(100 * t.threshold, color="red", ls=ls, lw=1.1, label=f"{t.label} line")
        ax.set_title(f"{mode}", fontsize=11)
        ax.set_xlabel("highest single-supplier share of a checked stage in the target year, %")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"fiscal cost, PV to {pv}, USD bn")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Cost against dependency (left: less dependent)", fontsize=11)
    fig.tight_layout()
    return fig


def resilience_figure(checked: pd.DataFrame, cost: str, pv: int, commodity: str) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
    for ax, col, label in (
        (axes[0][0], "unmet_pct", f"unmet demand for {labels.commodity(commodity)}, % (worst shock)"),
        (axes[0][1], "peak_ratio", "highest price under a shock, × pre-shock (worst shock)"),
    ):
        for mode, g in checked.groupby("mode", sort=False):
            ax.scatter(g[cost] / 1e9, g[col], color=_color(mode), label=mode, s=30)
        ax.set_xlabel(f"fiscal cost, PV to {pv}, USD bn")
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Resilience of the fully checked mixes (every seed, every shock)", fontsize=11)
    fig.tight_layout()
    return fig


def coalition_figure(curve: pd.DataFrame, payer: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = 100 * curve["share_below"]
    ax.plot(x, curve["alone_payer_cost_usd"] / 1e9, "-o", color=_color("alone"), label=f"{payer} alone")
    ax.plot(
        x,
        curve["coalition_payer_cost_usd"] / 1e9,
        "-o",
        color=_color("coalition"),
        label=f"{payer}'s own cost in the coalition",
    )
    ax.plot(
        x,
        curve["coalition_total_cost_usd"] / 1e9,
        "--",
        color=_color("coalition"),
        label="coalition, all members",
    )
    ax.invert_xaxis()
    ax.set_xlabel("highest checked share at or below, % (screen)")
    ax.set_ylabel("cheapest fiscal cost, USD bn (PV)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("What coordination buys: cheapest cost to reach each level", fontsize=10)
    fig.tight_layout()
    return fig


def write_plots(
    folder: Path, plan: Any, evals: pd.DataFrame, checked: pd.DataFrame, curve: pd.DataFrame
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pv = plan.crit.pv_years[0]
    if len(evals):
        out["front"] = png_bytes(front_figure(evals, checked, plan.crit.targets, plan.cost_key, pv))
    if len(checked) and any(s != "none" for s in plan.shocks):  # resilience is read under shocks
        out["resilience"] = png_bytes(
            resilience_figure(checked, plan.cost_key, pv, plan.crit.resilience_commodity)
        )
    if len(curve) and curve[["alone_payer_cost_usd", "coalition_payer_cost_usd"]].notna().any().any():
        payer = plan.payer("coalition") if "coalition" in plan.modes else ""
        out["coalition"] = png_bytes(coalition_figure(curve, payer))
    (folder / "plots").mkdir(exist_ok=True)
    for name, data in out.items():
        (folder / "plots" / f"{name}.png").write_bytes(data)
    return out


def _bn(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else labels.money_bn(v / 1e9)


def write_report(
    folder: Path,
    plan: Any,
    evals: pd.DataFrame,
    checked: pd.DataFrame,
    best: list[dict],
    coalition: pd.DataFrame,
    curve: pd.DataFrame,
    headlines: list[str],
    plots: dict[str, bytes],
    manifest: dict[str, Any],
) -> Path:
    pvs = plan.crit.pv_years
    cards = []
    for b in best:
        card = {
            "mode": b["mode"],
            "members": ", ".join(map(str, plan.modes[b["mode"]]["members"])),
            "target": b["target"],
            "found": bool(b.get("found")),
            "why": b.get("why", ""),
            "closest": b.get("closest"),
        }
        if card["found"]:
            p = sv_pct(b["threshold"])
            card.update(
                policy=b["policy"],
                items=b["words"],
                costs=[(y, _bn(b.get(f"pv_{y}_usd")), _bn(b.get(f"payer_pv_{y}_usd"))) for y in pvs],
                share=labels.share(b["share"], [b["threshold"]]),
                binding=comparison.check_text(b["binding"]),
                robust=b.get(f"met_{p}_detail", ""),
                unmet=comparison.pct((b.get("unmet_pct") or 0) / 100, 2),
                peak=comparison.ratio_text(b.get("peak_ratio")),
                command=f"critmin run --config-dir {folder / 'configs'} policy={b['policy']}",
            )
        cards.append(card)
    rows = []
    if len(checked):
        for _, r in checked.sort_values(["mode", plan.cost_key]).iterrows():
            rows.append(
                {
                    "mode": r["mode"],
                    "candidate": r["candidate"],
                    "cost": _bn(r[plan.cost_key]),
                    "share": labels.share(r["share"], [t.threshold for t in plan.crit.targets]),
                    "binding": comparison.check_text(r["binding"]),
                    "met": [
                        (
                            "yes" if r[f"met_{sv_pct(t.threshold)}"] else "no",
                            r[f"met_{sv_pct(t.threshold)}_detail"],
                        )
                        for t in plan.crit.targets
                    ],
                    "unmet": comparison.pct(r["unmet_pct"] / 100, 2),
                    "peak": comparison.ratio_text(r["peak_ratio"]),
                }
            )
    coal_rows = []
    for _, r in coalition.iterrows() if len(coalition) else []:
        coal_rows.append(
            {
                "target": r["target"],
                "alone": _bn(r["alone_payer_cost_usd"]),
                "coalition": _bn(r["coalition_payer_cost_usd"]),
                "coalition_total": _bn(r["coalition_cost_usd"]),
                "ratio": "–" if not math.isfinite(r["payer_ratio"]) else f"{r['payer_ratio']:.2g}",
                "no_dearer": _yes_no(r["coalition_no_dearer"]),
            }
        )
    curve_rows = []
    for _, r in curve.iterrows() if len(curve) else []:
        curve_rows.append(
            {
                "level": f"{r['share_below']:.1%}",
                "alone": _bn(r["alone_payer_cost_usd"]),
                "coalition": _bn(r["coalition_payer_cost_usd"]),
                "total": _bn(r["coalition_total_cost_usd"]),
                "ratio": "–" if not math.isfinite(r["payer_ratio"]) else f"{r['payer_ratio']:.2g}",
                "no_dearer": _yes_no(r["coalition_no_dearer"]),
            }
        )
    html = render(
        "solve_report.html.j2",
        title="What would it take? critmin solve",
        headlines=headlines,
        cards=cards,
        rows=rows,
        targets=plan.crit.targets,
        coal_rows=coal_rows,
        curve_rows=curve_rows,
        imf=manifest["imf_reference"],
        payer=plan.payer("coalition") if "coalition" in plan.modes else "",
        crit=plan.crit,
        pv=pvs[0],
        margin_points=f"{100 * plan.settings['full_check']['margin']:g}",
        seeds=plan.seeds,
        shocks=plan.shocks,
        screen=manifest["screen"],
        tried=" and ".join(f"{n} mixes acting {m}" for m, n in manifest["evaluations"].items()),
        n_checked=manifest["full_checks"],
        modes={m: ", ".join(map(str, v["members"])) for m, v in plan.modes.items()},
        variables=[
            (v.name, f"{v.low:g} – {v.high:g}" if not v.choices else " / ".join(map(str, v.choices)))
            for v in plan.variables
        ],
        front_img=img(plots["front"], "cost against dependency, every evaluation")
        if "front" in plots
        else "",
        resilience_img=img(plots["resilience"], "resilience of the checked mixes")
        if "resilience" in plots
        else "",
        coalition_img=img(plots["coalition"], "alone against coalition") if "coalition" in plots else "",
        study=folder.name,
        source=plan.source,
    )
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _yes_no(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else ("yes" if v else "no")


def sv_pct(threshold: float) -> str:
    from critmin.analysis.solve import pct_key

    return pct_key(threshold)
