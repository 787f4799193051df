"""``critmin solve``: "what would it take?" The cheapest instrument mix meeting the 60% target and
the 50% ambition by the target year, robust across seeds and shocks, alone or as a coalition.

Reads ``configs/solve/<config>.yaml`` (:mod:`critmin.experiments.solve_plan`): decision
variables (instrument levels, each instrument on or off), the modes (who takes part and pays),
seeds and shocks; checks every bound against the instruments before any run (bad input: exit 2).
Then, per mode, an optuna study (NSGA-II on (PV fiscal cost, highest checked share in the target
year) with the first target as constraint, or TPE on cost with that constraint) screens
candidates cheaply (``screen``: by default 1 seed, no shock) in worker processes sharing
``<study folder>/study.db`` (resumable; joblib, as ``critmin compare``). The cheapest screened
mixes near each target line then get the full check (every seed × every shock; the same seeds
for every candidate: common random numbers); only the full check says a mix meets a target.

The study folder is ``<out>/<name>-<hash>``, the hash covering the settings (not budget or jobs),
the run configs, the input data and the code: a rerun with the same settings continues the study;
changed settings start a new study in a new folder and say so (the old one is kept). Writes
``evaluations.parquet``, ``front.parquet``, ``checks.parquet``, ``coalition.csv``,
``configs/policy/solve_<mode>_<pct>.yaml`` (``critmin run --config-dir <folder>/configs
policy=solve_coalition_60``), ``compare.yaml`` (``critmin compare --config <folder>/compare.yaml``),
``plots/``, ``report.html`` and ``manifest.yaml``. Exit status: 0 done, 2 bad input, 130/143
interrupted (the study keeps what finished; the same command continues it).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from critmin.analysis import solve as sv
from critmin.experiments import interrupt
from critmin.experiments import study as study_lib
from critmin.experiments.solve_plan import (
    USE,
    Plan,
    candidate_id,
    corner,
    load_settings,
    off,
    param_names,
    plan_from_settings,
    policy_of,
    prepare,
    python_value,
    run_config,
)
from critmin.sim.run import code_version
from critmin.sim.world import DataError

IDENTITY_FILE = "identity.yaml"
CHECKS_FILE = "checks.jsonl"


# ---------------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin solve",
        description="Search for the cheapest instrument mix that meets the Alliance target (and the "
        "ambition) by the target year in enough seeds under every shock, alone and as a coalition "
        "(optuna; resumable). Writes the Pareto front, the cheapest mixes as policy configs, the "
        "alone-vs-coalition comparison and report.html.",
        epilog="examples:\n  critmin solve\n  critmin solve --budget 40 --jobs 2\n"
        "  critmin run --config-dir outputs/solve/<study>/configs policy=solve_coalition_60",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="default", help="configs/solve/<NAME>.yaml or a YAML path")
    p.add_argument("--budget", type=int, help="screened evaluations in total over the modes")
    p.add_argument("--jobs", type=int, help="worker processes (1 = in this process)")
    p.add_argument("--modes", help="comma-separated modes of the config to search (default: all)")
    p.add_argument("--out", help="parent folder of the study folder (default: config)")
    p.add_argument(
        "--study", help="an existing study folder to continue (refused if its settings, data or code differ)"
    )
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("mesa").setLevel(logging.WARNING)
    try:
        with interrupt.terminate_as_interrupt():
            try:
                plan = plan_from_args(args)
                folder = study_folder(plan, args.study)
            except DataError as exc:
                print(f"bad input: {exc}", file=sys.stderr)
                return 2
            t0 = time.perf_counter()
            result = solve(plan, folder)
    except KeyboardInterrupt as exc:
        interrupt.cleanup()
        print(
            f"solve interrupted ({interrupt.signal_name(exc)}): the study keeps the evaluations that "
            "finished; the same command continues it",
            file=sys.stderr,
        )
        return interrupt.exit_code(exc)
    for line in result["headlines"]:
        print(line)
    print(
        f"wrote {folder} (report.html, front.parquet, coalition.csv, configs/policy/) in {time.perf_counter() - t0:.0f} s"
    )
    return 0


def plan_from_args(args: argparse.Namespace) -> Plan:
    settings, source = load_settings(args.config)
    for key in ("budget", "jobs", "out"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.modes is not None:
        chosen = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = sorted(set(chosen) - set(settings.get("modes", {})))
        if unknown or not chosen:
            raise DataError(
                f"--modes: unknown mode(s) {unknown}; expected some of {sorted(settings['modes'])}"
            )
        settings["modes"] = {m: settings["modes"][m] for m in chosen}
    plan = plan_from_settings(settings, source)
    prepare(plan)
    return plan


def study_folder(plan: Plan, given: str | None) -> Path:
    """The study's folder. Same settings, data and code: the same folder (the study continues).
    A folder given with --study that holds another study is refused; an earlier study of the
    same name with other settings is kept, and a new one started (said on stderr)."""
    identity = plan.identity()
    if given is not None:
        folder = Path(given)
        old = _identity_of(folder)
        if old is not None and old != identity:
            raise DataError(
                f"--study {folder}: its study was made with other {_what_changed(old, identity)}; refusing to "
                "mix its evaluations with these (use another folder, or drop --study for a new one)"
            )
    else:
        folder = plan.folder()
        new = not (folder / IDENTITY_FILE).is_file()
        for other in sorted(Path(plan.settings["out"]).glob(f"{plan.settings['name']}-*/{IDENTITY_FILE}")):
            if new and other.parent != folder:
                old = _identity_of(other.parent) or {}
                print(
                    f"solve: {other.parent} holds a study with other {_what_changed(old, identity)}; "
                    f"starting a new study in {folder} (the old one is kept)",
                    file=sys.stderr,
                )
        if not new:
            print(f"solve: continuing the study in {folder}", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / IDENTITY_FILE).write_text(yaml.safe_dump(identity, sort_keys=True))
    return folder


def _identity_of(folder: Path) -> dict[str, Any] | None:
    try:
        return yaml.safe_load((folder / IDENTITY_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None


def _what_changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    parts = [
        w
        for k, w in (("config_id", "settings"), ("inputs", "input data"), ("code", "code"))
        if old.get(k) != new.get(k)
    ]
    return " and ".join(parts) or "settings"


# ---------------------------------------------------------------------- one run
def engine_run(
    plan: Plan, mode: str, params: dict[str, Any], shock: str, seed: int
) -> tuple[dict, pd.DataFrame]:
    """Simulate one candidate × shock × seed; its record and tidy rows (comparison's, plus each
    member government's fiscal cost)."""
    from critmin.analysis import comparison
    from critmin.experiments.api import simulate

    logging.getLogger("mesa").setLevel(logging.WARNING)
    cid = candidate_id(mode, params)
    result = simulate(run_config(plan, shock, policy_of(plan, mode, params, "solve_candidate"), seed))
    rows = comparison.reduce_run(result, cid, seed)
    members = set(result.summary["dependency"]["region_members"])
    rows = pd.concat([rows, sv.member_rows(result.metrics["fiscal"], members, cid, seed)], ignore_index=True)
    rows.insert(2, "shock", shock)
    return sv.record_of(rows, shock, seed, plan.crit), rows


def run(plan: Plan, mode: str, params: dict[str, Any], shock: str, seed: int) -> tuple[dict, pd.DataFrame]:
    return (plan.runner or engine_run)(plan, mode, params, shock, seed)


# ---------------------------------------------------------------------- the screen (optuna)
def suggest(trial: Any, plan: Plan) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for inst in plan.instruments:
        params[USE + inst["name"]] = trial.suggest_categorical(USE + inst["name"], [False, True])
    for v in plan.variables:
        if v.choices:
            params[v.name] = trial.suggest_categorical(v.name, list(v.choices))
        else:
            params[v.name] = trial.suggest_float(v.name, v.low, v.high, log=v.log)
    return params


def open_study(plan: Plan, folder: Path, mode: str, k: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = plan.settings
    seed = s["sampler_seed"] + k
    if s["sampler"] == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(population_size=s["population"], seed=seed)
        directions = ["minimize", "minimize"]
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=s["population"], multivariate=True)
        directions = ["minimize"]
    return optuna.create_study(
        study_name=f"solve-{mode}",
        storage=study_lib.storage(folder),
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )


def screen_objective(plan: Plan, mode: str):
    def objective(trial: Any) -> Any:
        params = suggest(trial, plan)
        t0 = time.perf_counter()
        records = [
            run(plan, mode, params, sh, sd)[0] for sh in plan.screen_shocks for sd in plan.screen_seeds
        ]
        agg = sv.aggregate(records, plan.crit, plan.payer(mode))
        share = agg.get("share", math.nan)
        keys = (
            "share",
            "binding",
            "unmet_pct",
            *(k for k in agg if k.startswith(("pv_", "payer_pv_", "met_"))),
        )
        for key in keys:
            trial.set_user_attr(key, agg[key])
        trial.set_user_attr("candidate", candidate_id(mode, params))
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
        # feasible (<= 0): the highest checked share below the first target's line
        line = plan.first_target.threshold
        trial.set_constraint("share_above_line", share - line if math.isfinite(share) else 1.0)
        cost = agg[plan.cost_key]
        if not math.isfinite(cost) or not math.isfinite(share):
            raise RuntimeError("no dependency or cost could be measured")
        return (cost, share) if plan.settings["sampler"] == "nsga2" else cost

    return objective


def search(plan: Plan, folder: Path) -> dict[str, int]:
    """Each mode's study up to its share of the budget; the first evaluations of a new study are
    no instrument and every instrument at the strong end (the reach of the bounds)."""
    per_mode = max(1, plan.settings["budget"] // len(plan.modes))
    before = {}
    for mode in plan.modes:

        def opener(k: int, mode: str = mode) -> Any:
            return open_study(plan, folder, mode, k)

        study = opener(0)
        if not study.trials:
            study.enqueue_trial(off(plan), user_attrs={"corner": "no instrument"})
            study.enqueue_trial(
                corner(plan, "strong"), user_attrs={"corner": "every instrument at its strong end"}
            )
        before[mode] = study_lib.run_workers(
            opener, screen_objective(plan, mode), per_mode, plan.settings["jobs"]
        )
    return before


# ---------------------------------------------------------------------- same instruments, other mode
def cross(plan: Plan, folder: Path, source: str = "alone", target: str = "coalition") -> int:
    """The same instruments in the coalition: every mix on the alone study's screened Pareto
    front (cost, share) evaluated again with every member applying it, so the alone-vs-coalition
    comparison always holds the coalition version of what acting alone found (whatever the
    coalition's own search found besides). Done once per study; returns the evaluations made."""
    import optuna

    if not {source, target} <= set(plan.modes):
        return 0
    done = optuna.trial.TrialState.COMPLETE
    mine = open_study(plan, folder, target, 0)
    if any(t.user_attrs.get("cross") for t in mine.get_trials(deepcopy=False)):
        return 0
    theirs = open_study(plan, folder, source, 0).get_trials(deepcopy=False, states=(done,))
    rows = pd.DataFrame(
        [
            {"cost": t.user_attrs.get(plan.cost_key), "share": t.user_attrs.get("share"), "t": t}
            for t in theirs
        ]
    )
    if rows.empty:
        return 0
    front = rows[sv.pareto(rows, ["cost", "share"])]
    objective = screen_objective(plan, target)
    for t in front["t"]:
        mine.enqueue_trial(dict(t.params), user_attrs={"cross": f"{source} trial {t.number}"})
        mine.optimize(objective, n_trials=1, catch=(Exception,))
    return len(front)


# ---------------------------------------------------------------------- refinement
def refine(plan: Plan, folder: Path) -> int:
    """Per mode and target, from the cheapest screened mix below the line: leave out each
    instrument whose removal keeps it below and costs less, then bisect (``refine_steps``) on
    moving every level toward its weak end together. Cost and dependency move with the levels,
    so this finds the cheapest scaling of the mix that stays below the line, which a
    population-based search only approaches. Each step is one screened evaluation in the study.
    Returns the evaluations made."""
    from optuna.trial import TrialState

    steps = plan.settings["refine_steps"]
    made = 0
    for mode in plan.modes:
        study = open_study(plan, folder, mode, 0)
        objective = screen_objective(plan, mode)

        def evaluate(
            params: dict[str, Any], why: str, study: Any = study, objective: Any = objective
        ) -> tuple[float, float]:
            study.enqueue_trial(params, user_attrs={"refine": why})
            study.optimize(objective, n_trials=1, catch=(Exception,))
            t = study.trials[-1]
            return float(t.user_attrs.get(plan.cost_key, math.inf)), float(
                t.user_attrs.get("share", math.inf)
            )

        for t in plan.crit.targets:
            trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            ok = [x for x in trials if x.user_attrs.get("share", math.inf) < t.threshold]
            if not ok or any(x.user_attrs.get("refine") == f"done {t.name}" for x in trials):
                continue
            start = min(ok, key=lambda x: x.user_attrs[plan.cost_key])
            params, cost = dict(start.params), start.user_attrs[plan.cost_key]
            for inst in plan.instruments:
                if params.get(USE + inst["name"]):
                    trial = {**params, USE + inst["name"]: False}
                    c, s = evaluate(trial, f"drop {inst['name']} ({t.name})")
                    made += 1
                    if s < t.threshold and c <= cost:
                        params, cost = trial, c
            lo, hi = 0.0, 1.0
            for i in range(steps):
                mid = (lo + hi) / 2
                trial = {
                    **params,
                    **{v.name: v.toward_weak(params[v.name], mid) for v in plan.variables},
                }
                last = f"done {t.name}" if i == steps - 1 else f"scale {mid:.4f} ({t.name})"
                c, s = evaluate(trial, last)
                made += 1
                if s < t.threshold:
                    hi = mid
                else:
                    lo = mid
    return made


def evaluations(plan: Plan, folder: Path) -> pd.DataFrame:
    """Every finished screened evaluation of every mode: one row each (params as columns)."""
    import optuna

    rows = []
    for mode in plan.modes:
        study = optuna.load_study(study_name=f"solve-{mode}", storage=study_lib.storage(folder))
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            rows.append(
                {
                    "mode": mode,
                    "trial": t.number,
                    "candidate": t.user_attrs.get("candidate"),
                    "corner": t.user_attrs.get("corner", ""),
                    **{
                        k: v
                        for k, v in t.user_attrs.items()
                        if k not in ("candidate", "corner", "constraint")
                    },
                    **t.params,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- the full check
def choose(plan: Plan, evals: pd.DataFrame) -> pd.DataFrame:
    """Per mode and target: the cheapest screened evaluations below the line and within
    ``margin`` above it (up to ``candidates`` per mode in all), plus the mode's lowest-share
    evaluation, the cheapest within ``margin`` of it and the corner with every instrument at its
    strong end (so a study where nothing is near a line still has its best fully checked, how
    far the bounds go, and the cheapest way to get nearly as far: the strongest corner is rarely
    the cheapest)."""
    if evals.empty:
        return evals
    n = plan.settings["full_check"]["candidates"]
    margin = plan.settings["full_check"]["margin"]
    picked = []
    for _, g in evals.groupby("mode", sort=False):
        g = g.drop_duplicates("candidate")
        chosen: list[int] = []
        per_target = max(1, n // len(plan.crit.targets))
        for t in plan.crit.targets:
            # the cheapest below the line in the screen first, then the cheapest just above it
            below = g[g["share"] < t.threshold].sort_values(plan.cost_key)
            near = g[(g["share"] >= t.threshold) & (g["share"] < t.threshold + margin)].sort_values(
                plan.cost_key
            )
            n_below = max(1, per_target - per_target // 3) if len(near) else per_target
            picks = [*below.index[:n_below], *near.index[: per_target - min(n_below, len(below))]]
            chosen += [i for i in picks if i not in chosen]
        best = g["share"].idxmin()
        if best not in chosen:
            chosen.append(best)
        near_best = g[g["share"] <= g.loc[best, "share"] + margin].sort_values(plan.cost_key)
        chosen += [i for i in near_best.index[:per_target] if i not in chosen]
        # every instrument at its strong end: how far the bounds go, whatever one screened seed said
        strong = g.index[g["corner"].astype(str).str.contains("strong end")]
        chosen += [i for i in strong[:1] if i not in chosen]
        picked.append(g.loc[chosen[: n + 2 + per_target]])
    return pd.concat(picked)


def _load_checks(folder: Path) -> dict[tuple[str, str, int], dict]:
    out = {}
    path = folder / CHECKS_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                r["record"]["fiscal"] = {int(k): v for k, v in r["record"]["fiscal"].items()}
                r["record"]["members"] = {
                    c: {int(k): v for k, v in m.items()} for c, m in r["record"]["members"].items()
                }
                out[(r["candidate"], r["record"]["shock"], int(r["record"]["seed"]))] = r
    return out


def _check_task(plan: Plan, cid: str, mode: str, params: dict, shock: str, seed: int) -> dict:
    try:
        record, rows = run(plan, mode, params, shock, seed)
    except Exception as exc:  # one failed run must not lose the others
        return {"candidate": cid, "shock": shock, "seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    return {"candidate": cid, "record": record, "rows": rows}


def full_check(plan: Plan, folder: Path, chosen: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every chosen candidate × seed × shock (finished runs are kept in checks.jsonl and not
    redone); returns one verdict row per candidate and the tidy rows of the runs done now."""
    from joblib import Parallel, delayed

    done = _load_checks(folder)
    params_of = {}
    tasks = []
    for _, r in chosen.iterrows():
        params = {k: python_value(r[k]) for k in param_names(plan)}
        cid = candidate_id(r["mode"], params)
        params_of[cid] = (r["mode"], params, int(r["trial"]))
        for shock in plan.shocks:
            for seed in plan.seeds:
                if (cid, shock, seed) not in done:
                    tasks.append((plan, cid, r["mode"], params, shock, seed))
    jobs = max(1, min(plan.settings["jobs"] or os.cpu_count() or 1, len(tasks) or 1))
    tidy = []
    errors = []
    if tasks:
        outputs = Parallel(n_jobs=jobs, return_as="generator")(delayed(_check_task)(*t) for t in tasks)
        with (folder / CHECKS_FILE).open("a") as f:
            try:
                for out in outputs:
                    if "error" in out:
                        errors.append(out)
                        continue
                    tidy.append(out.pop("rows"))
                    f.write(json.dumps(out, default=float) + "\n")
                    f.flush()
                    done[(out["candidate"], out["record"]["shock"], out["record"]["seed"])] = out
            finally:
                outputs.close()
    rows = []
    for cid, (mode, params, trial) in params_of.items():
        records = [
            done[(cid, sh, sd)]["record"] for sh in plan.shocks for sd in plan.seeds if (cid, sh, sd) in done
        ]
        agg = sv.aggregate(records, plan.crit, plan.payer(mode))
        complete = len(records) == len(plan.shocks) * len(plan.seeds)
        if not complete:  # a missing run must not let a mix pass
            for t in plan.crit.targets:
                agg[f"met_{sv.pct_key(t.threshold)}"] = False
        rows.append({"mode": mode, "candidate": cid, "trial": trial, "complete": complete, **agg, **params})
    for e in errors:
        print(
            f"solve: full check of {e['candidate']} ({e['shock']}, seed {e['seed']}) failed: {e['error']}",
            file=sys.stderr,
        )
    return pd.DataFrame(rows), (pd.concat(tidy, ignore_index=True) if tidy else pd.DataFrame())


# ---------------------------------------------------------------------- the whole study
def solve(plan: Plan, folder: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    before = search(plan, folder)
    crossed = cross(plan, folder)
    refined = refine(plan, folder)
    t_search = time.perf_counter() - t0
    evals = evaluations(plan, folder)
    checked, tidy = full_check(plan, folder, choose(plan, evals))
    t_total = time.perf_counter() - t0
    from critmin.experiments import solve_output

    return solve_output.write(
        plan,
        folder,
        evals,
        checked,
        tidy,
        {
            "evaluations_before_this_run": before,
            "cross_evaluations_this_run": crossed,
            "refinement_evaluations_this_run": refined,
            "seconds": {"search": round(t_search, 1), "total": round(t_total, 1)},
            "code_version": code_version(),
        },
    )
