"""``critmin calibrate``: fit the behavioural parameters to every episode at once.

Pattern-oriented calibration: one evaluation replays the chosen episodes (and their no-shock twins)
with a parameter set and scores them with the validation scorecard (analysis/scorecard.py); the
objective is the scorecard's weighted mean of normalised misses (0 = every fact inside its band).
Optuna's TPE sampler searches the ranges of ``configs/calibrate/<name>.yaml``; the study lives in
``<out>/study.db`` (SQLite), so a rerun continues it up to ``--budget`` evaluations. Worker
processes (joblib, as ``critmin compare`` uses it) share the study. The first evaluation is the
current default parameter set, so the study always holds the "before" score.

Writes ``<out>/``: ``trials.csv``, ``fitted.yaml`` (the best set, its score, before/after totals),
``fitted_overrides.txt`` (the set as Hydra overrides: ``critmin run $(cat fitted_overrides.txt)``),
``ranges.csv`` (plausible range per parameter, and whether its value barely matters) and
``manifest.yaml``. The model's defaults are never changed here. Exit status: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf

from critmin.analysis import scorecard as sc
from critmin.experiments import study as study_lib
from critmin.experiments import validate
from critmin.experiments.settings import load_group_settings
from critmin.sim.run import code_version
from critmin.sim.world import DataError

KEYS = {
    "name": str,
    "episodes": list,
    "episode_weights": dict,
    "seeds": int,
    "first_seed": int,
    "budget": int,
    "jobs": (int, type(None)),
    "sampler_seed": int,
    "startup_trials": int,
    "plausible_within": (int, float),
    "parameters": list,
}
PARAM_KEYS = {"key", "range", "log", "basis"}
STUDY = "calibration"


@dataclass(frozen=True)
class Parameter:
    key: str
    low: float
    high: float
    log: bool
    basis: str
    default: float = float("nan")


# ---------------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin calibrate",
        description="Fit the behavioural parameters (market, producer and demand rules) to every "
        "sourced episode at once plus the 2024 steady state, with optuna (TPE). Resumable: a rerun "
        "with the same --out continues the study up to --budget evaluations. Writes fitted.yaml, "
        "fitted_overrides.txt, ranges.csv, trials.csv and manifest.yaml.",
        epilog="examples:\n  critmin calibrate --budget 40 --jobs 2\n"
        "  critmin run $(cat outputs/calibrate/default/fitted_overrides.txt)\n"
        "  critmin validate $(cat outputs/calibrate/default/fitted_overrides.txt)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="default", help="configs/calibrate/<NAME>.yaml or a YAML path")
    p.add_argument("--budget", type=int, help="evaluations in total, counting those already done")
    p.add_argument("--jobs", type=int, help="worker processes (default: config; 1 = in this process)")
    p.add_argument("--episodes", help="comma-separated episodes (default: config)")
    p.add_argument("--seeds", type=int, help="seeds per evaluation (default: config)")
    p.add_argument("--data", help="folder of the validation facts (default: the packaged one)")
    p.add_argument("--out", help="study folder (default outputs/calibrate/<name>)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("mesa").setLevel(logging.WARNING)
    try:
        settings, source = load_settings(args.config)
        for key in ("budget", "jobs", "seeds"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        if args.episodes is not None:
            settings["episodes"] = [e.strip() for e in args.episodes.split(",") if e.strip()]
        check_settings(settings, source)
        data = Path(args.data) if args.data else sc.validation_dir()
        plan = validate.make_plan(
            sc.load_episodes(data, settings["episodes"]),
            list(range(settings["first_seed"], settings["first_seed"] + settings["seeds"])),
            [],
            data,
            1,
        )
        validate.prepare(plan)
        params = check_parameters(settings, plan, source)
    except DataError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    folder = Path(args.out) if args.out else Path("outputs/calibrate") / settings["name"]
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done_before = optimise(folder, settings, plan, params)
    elapsed = time.perf_counter() - t0
    summary = write_outputs(folder, settings, source, plan, params, elapsed, done_before)
    print(
        f"objective {summary['before']['objective']:.3f} (defaults) -> {summary['after']['objective']:.3f} "
        f"(best of {summary['evaluations']} evaluations)"
    )
    for label in ("before", "after"):
        t = summary[label]
        print(
            f"  {label}: {t['hit']} hit, {t['direction']} direction, {t['miss']} miss of {t['facts']} facts"
        )
    print(f"wrote {folder} (fitted.yaml, fitted_overrides.txt, ranges.csv, trials.csv) in {elapsed:.0f} s")
    return 0


# ---------------------------------------------------------------------- settings
def load_settings(config: str) -> tuple[dict[str, Any], str]:
    """The calibrate config (a name in configs/calibrate/ or a path), with its keys checked."""
    return load_group_settings("calibrate", config, KEYS)


def check_settings(s: dict[str, Any], source: str) -> None:
    for key, low in (("seeds", 1), ("budget", 1), ("startup_trials", 0)):
        if s[key] < low:
            raise DataError(f"{source}: key {key}: expected a number >= {low}, got {s[key]}")
    if s["jobs"] is not None and s["jobs"] < 1:
        raise DataError(f"{source}: key jobs: expected a number of processes >= 1 or null, got {s['jobs']}")
    if not 0 <= s["plausible_within"] <= 1:
        raise DataError(f"{source}: key plausible_within: expected a share 0-1, got {s['plausible_within']}")
    if not s["episodes"] or not all(isinstance(e, str) for e in s["episodes"]):
        raise DataError(f"{source}: key episodes: expected a list of episode names")
    for name, w in s["episode_weights"].items():
        if name not in s["episodes"]:
            raise DataError(f"{source}: key episode_weights: {name!r} is not in episodes {s['episodes']}")
        if not isinstance(w, int | float) or isinstance(w, bool) or w < 0:
            raise DataError(f"{source}: key episode_weights.{name}: expected a number >= 0, got {w!r}")
    if not s["parameters"]:
        raise DataError(f"{source}: key parameters: expected at least one parameter")


def check_parameters(s: dict[str, Any], plan: validate.Plan, source: str) -> list[Parameter]:
    """Each parameter: a numeric row of configs/parameters.csv, a range (default: the table's
    plausible range) low < high within its bounds (> 0 if log), and both ends accepted by the
    config checks."""
    from critmin.sim import parameters
    from critmin.sim.config import check_config

    out: list[Parameter] = []
    cfg0 = next(iter(plan.configs.values()))
    for i, p in enumerate(s["parameters"]):
        at = f"{source}: parameters[{i}]"
        if not isinstance(p, dict) or set(p) - PARAM_KEYS or "key" not in p:
            raise DataError(f"{at}: expected keys key (and range, log, basis), got {p!r}")
        key = p["key"]
        row = parameters.table().get(key) if isinstance(key, str) else None
        if row is None or not row.numeric:
            raise DataError(
                f"{at}: key {key}: not a numeric parameter of the run config (no number row of "
                f"{parameters.TABLE})"
            )
        low, high = parameters.sweep_range(key, p.get("range"), at)
        log = bool(p.get("log", False))
        if log and low <= 0:
            raise DataError(f"{at}: range: a log range needs low > 0, got {[low, high]!r}")
        if any(x["key"] == key for x in s["parameters"][:i]):
            raise DataError(f"{at}: key {key} is listed twice")
        basis = p.get("basis") or f"{parameters.TABLE}: {row.source}"
        default = OmegaConf.select(cfg0, key)
        out.append(Parameter(key, low, high, log, str(basis), float(default)))
    for corner in ("low", "high"):
        values = {p.key: getattr(p, corner) for p in out}
        try:
            for cfg in plan.configs.values():
                check_config(with_values(cfg, values))
        except DataError as exc:
            raise DataError(f"{source}: parameters at the {corner} end of their ranges: {exc}") from None
    return out


def with_values(cfg: Any, values: dict[str, float]) -> Any:
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


# ---------------------------------------------------------------------- one evaluation
def evaluate(
    plan: validate.Plan, values: dict[str, float], weights: dict[str, float]
) -> tuple[float, pd.DataFrame, list[dict]]:
    """Score a parameter set: every run of the plan in this process, then the scorecard."""
    trial_plan = copy.copy(plan)
    trial_plan.configs = {k: with_values(c, values) for k, c in plan.configs.items()}
    episode_runs, failed, _ = validate.execute(trial_plan, jobs=1, progress=False)
    card = sc.score(episode_runs)
    return sc.objective(card, weights), card, failed


def _objective(plan: validate.Plan, params: list[Parameter], weights: dict[str, float]):
    def objective(trial: Any) -> float:
        values = {p.key: trial.suggest_float(p.key, p.low, p.high, log=p.log) for p in params}
        t0 = time.perf_counter()
        value, card, failed = evaluate(plan, values, weights)
        tot = sc.totals(card).iloc[-1]
        for k in ("facts", "hit", "direction", "miss"):
            trial.set_user_attr(k, int(tot[k]))
        trial.set_user_attr("failed_runs", len(failed))
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
        if not math.isfinite(value):
            raise RuntimeError("objective not finite (no fact could be measured)")
        return value

    return objective


# ---------------------------------------------------------------------- the study
def open_study(folder: Path, settings: dict[str, Any], params: list[Parameter], seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=settings["startup_trials"], multivariate=True
    )
    study = optuna.create_study(
        study_name=STUDY,
        storage=study_lib.storage(folder),
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    return study


def optimise(folder: Path, settings: dict[str, Any], plan: validate.Plan, params: list[Parameter]) -> int:
    """Run the study up to the budget (resuming it, in ``jobs`` processes sharing it); returns
    the evaluations it held before. The first evaluation of a new study is the defaults."""
    seed = settings["sampler_seed"]

    def opener(k: int) -> Any:
        return open_study(folder, settings, params, seed + k)

    study = opener(0)
    if not study.trials:
        study.enqueue_trial({p.key: p.default for p in params}, user_attrs={"defaults": True})
    objective = _objective(plan, params, settings["episode_weights"])
    return study_lib.run_workers(opener, objective, settings["budget"], settings["jobs"])


# ---------------------------------------------------------------------- results
def trials_frame(study: Any) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "objective": t.value,
                "defaults": bool(t.user_attrs.get("defaults", False)),
                **{
                    k: t.user_attrs.get(k)
                    for k in ("facts", "hit", "direction", "miss", "failed_runs", "seconds")
                },
                **t.params,
            }
        )
    return pd.DataFrame(rows)


def plausible_ranges(trials: pd.DataFrame, params: list[Parameter], within: float) -> pd.DataFrame:
    """Per parameter: the best value, the range over the near-best trials, the share of the search
    range it spans, and the rank correlation of the parameter with the objective over all trials.
    A parameter whose near-best values span over half its range barely matters for the fit (with
    fewer than 5 near-best evaluations that cannot be told)."""
    from scipy.stats import spearmanr

    done = trials[trials["state"] == "COMPLETE"].dropna(subset=["objective"])
    best = done.loc[done["objective"].idxmin()]
    near = done[done["objective"] <= best["objective"] + max(within * abs(best["objective"]), 1e-9)]
    rows = []
    for p in params:
        lo, hi = float(near[p.key].min()), float(near[p.key].max())
        f = np.log if p.log else (lambda x: x)
        span = float((f(hi) - f(lo)) / (f(p.high) - f(p.low)))
        rho = float(spearmanr(done[p.key], done["objective"]).statistic) if len(done) > 2 else float("nan")
        rows.append(
            {
                "parameter": p.key,
                "default": p.default,
                "fitted": float(best[p.key]),
                "plausible_low": lo,
                "plausible_high": hi,
                "search_low": p.low,
                "search_high": p.high,
                "span_of_search_range": round(span, 3),
                "rank_correlation_with_objective": round(rho, 3) if math.isfinite(rho) else None,
                "matters": (
                    "unknown (fewer than 5 near-best evaluations)"
                    if len(near) < 5
                    else "barely (near-best values span over half the range)"
                    if span > 0.5
                    else "yes"
                ),
                "near_best_trials": len(near),
                "basis": p.basis,
            }
        )
    return pd.DataFrame(rows)


def _totals(row: pd.Series) -> dict[str, Any]:
    return {
        "objective": round(float(row["objective"]), 4),
        **{k: int(row[k]) for k in ("facts", "hit", "direction", "miss")},
    }


def write_outputs(
    folder: Path,
    settings: dict[str, Any],
    source: str,
    plan: validate.Plan,
    params: list[Parameter],
    elapsed: float,
    done_before: int,
) -> dict[str, Any]:
    import optuna

    study = optuna.load_study(study_name=STUDY, storage=study_lib.storage(folder))
    trials = trials_frame(study)
    trials.to_csv(folder / "trials.csv", index=False, float_format="%.6g")
    done = trials[trials["state"] == "COMPLETE"]
    if done.empty:
        raise RuntimeError(f"no evaluation finished; see {folder / 'trials.csv'}")
    best = done.loc[done["objective"].idxmin()]
    defaults = done[done["defaults"]]
    before = defaults.iloc[0] if len(defaults) else None
    ranges = plausible_ranges(trials, params, float(settings["plausible_within"]))
    ranges.to_csv(folder / "ranges.csv", index=False, float_format="%.6g")
    fitted = {p.key: float(best[p.key]) for p in params}
    overrides = [f"{k}={v:.6g}" for k, v in fitted.items()]
    (folder / "fitted_overrides.txt").write_text(" ".join(overrides) + "\n")
    seconds = done["seconds"].dropna()
    summary = {
        "evaluations": len(trials[trials["state"].isin(["COMPLETE", "FAIL"])]),
        "failed_evaluations": int((trials["state"] == "FAIL").sum()),
        "best_trial": int(best["number"]),
        "before": _totals(before) if before is not None else None,
        "after": _totals(best),
        "fitted": fitted,
        "defaults": {p.key: p.default for p in params},
        "episodes": [e.episode for e in plan.episodes],
        "seeds": plan.seeds,
        "use": "critmin run $(cat fitted_overrides.txt); critmin validate $(cat fitted_overrides.txt)",
        "note": "the model's defaults are unchanged: adopting this set is the lead's decision "
        "(configs/scenario/ree_2024.yaml, regenerating golden outputs)",
    }
    (folder / "fitted.yaml").write_text(yaml.safe_dump(summary, sort_keys=False, allow_unicode=True))
    manifest = {
        "calibration": {"file": source, **settings},
        "code_version": code_version(),
        "validation_data_sha256": sc.data_hashes(plan.data),
        "optuna": optuna.__version__,
        "sampler": "TPE (multivariate), seeded per worker",
        "storage": "study.db (SQLite; rerun to continue)",
        "evaluations_before_this_run": done_before,
        "seconds": {
            "this_run_wall": round(elapsed, 1),
            "per_evaluation_mean": round(float(seconds.mean()), 2) if len(seconds) else None,
        },
        "runs_per_evaluation": [
            {"run": k.name, "end": f"{end:%Y-%m}", "seeds": plan.seeds} for k, end in plan.ends.items()
        ],
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    return summary
