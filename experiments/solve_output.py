"""What ``critmin solve`` writes into its study folder (see :mod:`critmin.experiments.solve`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf

from critmin.analysis import solve as sv
from critmin.analysis.instrument_text import describe_mix
from critmin.experiments.solve_plan import USE, Plan, param_names, policy_of, python_value

IMF = {
    "source": "IMF Working Paper WP/26/072 (2026), raising the US share of downstream rare-earth supply "
    "from 10% to 25% by 2035 with investment subsidies",
    "alone_pct_of_us_market": 141,
    "coordinated_pct_of_us_market": 96,
    "ratio": round(96 / 141, 3),
}
STEPS = 8  # dependency levels of the alone-vs-coalition curve


def levels(evals: pd.DataFrame) -> list[float]:
    """Dependency levels both modes reach in the screen, from the share without instruments down to
    the higher of the two modes' lowest shares (the alone-vs-coalition curve's x)."""
    reach = evals.groupby("mode")["share"].agg(["min", "max"])
    if not {"alone", "coalition"} <= set(reach.index):
        return []
    lo, hi = float(reach["min"].max()), float(reach["max"].min())
    if not lo < hi:
        return []
    step = (hi - lo) / STEPS
    return [round(hi - step * i, 6) for i in range(1, STEPS + 1)]


def policy_name(mode: str, threshold: float) -> str:
    return f"solve_{mode}_{sv.pct_key(threshold)}"


def write(
    plan: Plan, folder: Path, evals: pd.DataFrame, checked: pd.DataFrame, tidy: pd.DataFrame, info: dict
) -> dict[str, Any]:
    cost, payer_cost = plan.cost_key, f"payer_{plan.cost_key}"
    objectives = [cost, "share"]
    if len(evals):
        evals["pareto"] = False
        for _, g in evals.groupby("mode"):
            evals.loc[g.index, "pareto"] = sv.pareto(g, objectives)
        evals["full_check"] = evals["candidate"].isin(checked["candidate"]) if len(checked) else False
    evals.to_parquet(folder / "evaluations.parquet", index=False)
    front = _front(evals, checked, cost)
    front.to_parquet(folder / "front.parquet", index=False)
    checked.to_parquet(folder / "checked.parquet", index=False)
    if len(tidy):
        old = folder / "checks.parquet"
        tidy = pd.concat([pd.read_parquet(old), tidy], ignore_index=True) if old.is_file() else tidy
        tidy.to_parquet(old, index=False)

    # the cheapest mix per mode and target, as policy configs
    (folder / "configs" / "policy").mkdir(parents=True, exist_ok=True)
    best: list[dict[str, Any]] = []
    for mode in plan.modes:
        part = checked[checked["mode"] == mode] if len(checked) else checked
        for t in plan.crit.targets:
            row = sv.cheapest(part, t.threshold, cost)
            entry: dict[str, Any] = {"mode": mode, "target": t.name, "threshold": t.threshold}
            if row is None:
                entry["found"] = False
                entry["why"] = sv.what_binds(
                    evals[evals["mode"] == mode] if len(evals) else evals, part, t.threshold
                )
                entry["closest"] = _closest(plan, mode, part, t.threshold)
            else:
                params = {k: python_value(row[k]) for k in param_names(plan)}
                name = policy_name(mode, t.threshold)
                policy = policy_of(plan, mode, params, name)
                path = folder / "configs" / "policy" / f"{name}.yaml"
                header = (
                    f"# critmin solve ({plan.source}): the cheapest mix found meeting {t.name} "
                    f"in >= {plan.crit.seed_share:.0%} of seeds {plan.seeds[0]}-{plan.seeds[-1]} under each "
                    f"shock of {plan.shocks}, mode {mode}; candidate {row['candidate']}.\n"
                    f"# critmin run --config-dir {folder / 'configs'} policy={name}\n"
                )
                path.write_text(header + yaml.safe_dump(policy, sort_keys=False, allow_unicode=True))
                entry.update(
                    found=True,
                    policy=name,
                    file=str(path),
                    candidate=str(row["candidate"]),
                    words=describe_mix(policy),
                    **{
                        k: python_value(row[k])
                        for k in row.index
                        if k.startswith(("pv_", "payer_pv_", "met_"))
                    },
                    share=float(row["share"]),
                    binding=str(row["binding"]),
                    unmet_pct=python_value(row["unmet_pct"]),
                    peak_ratio=python_value(row["peak_ratio"]),
                )
            best.append(entry)
    _write_compare(plan, folder, [b for b in best if b.get("found")])

    coalition = pd.DataFrame()
    curve = pd.DataFrame()
    if {"alone", "coalition"} <= set(plan.modes):
        coalition = (
            sv.coalition_table(checked, plan.crit.targets, cost, payer_cost) if len(checked) else coalition
        )
        curve = sv.coalition_curve(evals, cost, payer_cost, levels(evals)) if len(evals) else curve
        coalition.to_csv(folder / "coalition.csv", index=False, float_format="%.6g")
        curve.to_csv(folder / "coalition_curve.csv", index=False, float_format="%.6g")

    headlines = _headlines(plan, best, coalition, curve)
    from critmin.analysis import solve_report

    plots = solve_report.write_plots(folder, plan, evals, checked, curve)
    manifest = {
        "study": folder.name,
        "solve_config": {"file": plan.source, **plan.settings},
        "seeds": plan.seeds,
        "shocks": plan.shocks,
        "screen": {"seeds": plan.screen_seeds, "shocks": plan.screen_shocks},
        "targets": [{"name": t.name, "threshold": t.threshold, "year": t.year} for t in plan.crit.targets],
        "evaluations": {m: int((evals["mode"] == m).sum()) if len(evals) else 0 for m in plan.modes},
        "full_checks": len(checked),
        "cheapest": best,
        "imf_reference": IMF,
        "storage": "study.db (SQLite; rerun the same command to continue), checks.jsonl (full-check runs)",
        "run_config": {
            k: v
            for cfg in list(plan.configs.values())[:1]
            for k, v in OmegaConf.to_container(cfg, resolve=True).items()
            if k != "policy"
        },
        **info,
    }
    (folder / "manifest.yaml").write_text(
        yaml.safe_dump(_yaml_safe(manifest), sort_keys=False, allow_unicode=True)
    )
    solve_report.write_report(
        folder, plan, evals, checked, best, coalition, curve, headlines, plots, manifest
    )
    return {"headlines": headlines, "best": best, "coalition": coalition, "folder": folder}


def _front(evals: pd.DataFrame, checked: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The Pareto front, tidy: one row per non-dominated mix, mode and stage: in the screen (cost,
    share) and in the full check (cost, robust share, unmet demand, peak price under the shocks)."""
    if evals.empty:
        return pd.DataFrame()
    front = evals[evals["pareto"]].copy()
    front["stage"] = "screen"
    if len(checked):
        full = checked.copy()
        full["stage"] = "full check"
        full["pareto"] = False
        for _, g in full.groupby("mode"):
            full.loc[g.index, "pareto"] = sv.pareto(g, [cost, "share", "unmet_pct", "peak_ratio"])
        front = pd.concat([front, full], ignore_index=True)
    keep = ["mode", "stage", "candidate", "trial", cost, "share", "binding"]
    keep += [c for c in front.columns if c.startswith(("pv_", "payer_pv_", "met_")) and c not in keep]
    keep += [c for c in ("unmet_pct", "peak_ratio", "pareto") if c in front]
    keep += [c for c in front.columns if (c.startswith(USE) or "." in c) and c not in keep]
    front = front[front["pareto"].astype(bool)]
    out = front[[c for c in dict.fromkeys(keep) if c in front]]
    return out.sort_values(["mode", "stage", cost]).reset_index(drop=True)


def _closest(plan: Plan, mode: str, checked: pd.DataFrame, threshold: float) -> dict | None:
    """The cheapest fully checked mix of the mode whose robust share is within the full check's
    ``margin`` of the lowest any reaches, in words (for the report when no mix meets the line:
    how far the bounds go, and what getting nearly that far costs)."""
    from critmin.analysis import comparison, labels

    if checked.empty or not checked["share"].notna().any():
        return None
    margin = plan.settings["full_check"]["margin"]
    near = checked[checked["share"] <= checked["share"].min() + margin]
    row = near.loc[near[plan.cost_key].idxmin()]
    params = {k: python_value(row[k]) for k in param_names(plan)}
    return {
        "candidate": str(row["candidate"]),
        "share": labels.share(row["share"], [threshold]),
        "binding": comparison.check_text(row["binding"]),
        "cost": labels.money_bn(row[plan.cost_key] / 1e9),
        "items": describe_mix(policy_of(plan, mode, params, "closest")) or ["no instrument"],
    }


def _write_compare(plan: Plan, folder: Path, found: list[dict]) -> None:
    """``compare.yaml``: a ``critmin compare`` config running the exported mixes (and none) with
    the solver's seeds, scenario and horizon, for each shock: ``--shock <name>``."""
    if not found:
        return
    configs = (folder / "configs").resolve()
    mixes = ["none"] + [
        {"name": b["policy"], "policy": "none", "overrides": [f"policy={b['policy']}"]} for b in found
    ]
    cfg = {
        "name": f"solve-{plan.settings['name']}",
        "out": str(folder / "compare"),
        "mixes": mixes,
        "shock": plan.shocks[0],
        "scenario": plan.settings["scenario"],
        "horizon": plan.settings["horizon"],
        "overrides": [f"hydra.searchpath=[file://{configs}]", *map(str, plan.settings["overrides"])],
        "seeds": len(plan.seeds),
        "first_seed": plan.seeds[0],
        "jobs": plan.settings["jobs"],
        "band": [0.1, 0.9],
        "peak_price": {"commodity": plan.crit.resilience_commodity, "region": plan.crit.resilience_region},
    }
    head = "# critmin compare --config <this file> [--shock NAME]: the solver's cheapest mixes, its seeds\n"
    (folder / "compare.yaml").write_text(head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


def _headlines(plan: Plan, best: list[dict], coalition: pd.DataFrame, curve: pd.DataFrame) -> list[str]:
    from critmin.analysis import labels

    pv = plan.crit.pv_years[0]
    out = []
    for b in best:
        who = f"{b['mode']} ({_members(plan, b['mode'])})"
        if b.get("found"):
            out.append(
                f"{b['target']}, {who}: cheapest mix found costs {labels.money_bn(b[f'pv_{pv}_usd'] / 1e9)} bn "
                f"USD (PV to {pv}, {plan.crit.discount_rate:.0%} real, {plan.crit.base_year} USD); highest "
                f"stage {labels.share(b['share'], [b['threshold']])} ({sv.comparison.check_text(b['binding'])}); "
                f"policy {b['policy']}: {'; '.join(b['words'])}"
            )
        else:
            out.append(f"{b['target']}, {who}: no mix within the bounds meets it: {b['why']}.")
    payer = plan.payer("coalition") if "coalition" in plan.modes else ""
    for _, r in coalition.iterrows() if len(coalition) else []:
        if r["coalition_no_dearer"] is not None and not pd.isna(r["coalition_no_dearer"]):
            out.append(f"Coalition vs alone ({r['target']}): {_versus(r, payer)}")
    if len(curve) and curve["coalition_no_dearer"].notna().any():
        c = curve.dropna(subset=["coalition_no_dearer"]).iloc[-1]
        out.append(
            f"At the lowest share both modes reach in the screen ({c['share_below']:.1%} or below): "
            f"{_versus(c, payer)}"
        )
    return out


def _versus(r: pd.Series, payer: str) -> str:
    """The payer's cost alone against in the coalition, in words, with the ratio where both are
    costs (IMF WP/26/072's beside it)."""
    from critmin.analysis import labels

    a, c = r["alone_payer_cost_usd"] / 1e9, r["coalition_payer_cost_usd"] / 1e9
    text = f"{payer} pays {labels.money_bn(a)} bn USD alone and {labels.money_bn(c)} bn in the coalition"
    if math.isfinite(r["payer_ratio"]):
        text += f", a ratio of {r['payer_ratio']:.2g} (IMF WP/26/072: {IMF['ratio']:.2f})"
    elif c <= 0:
        text += " (a net revenue: no ratio; IMF WP/26/072's is " + f"{IMF['ratio']:.2f})"
    verdict = "no more" if r["coalition_no_dearer"] else "MORE"
    return text + f"; coordination costs {payer} {verdict} than acting alone."


def _members(plan: Plan, mode: str) -> str:
    m = plan.modes[mode]["members"]
    return ", ".join(map(str, m)) if isinstance(m, list) else str(m)


def _yaml_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _yaml_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_yaml_safe(x) for x in v]
    return python_value(v)
