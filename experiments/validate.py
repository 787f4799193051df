"""``critmin validate``: replay every sourced episode and score the runs fact by fact.

Reads the facts in ``data/validation/`` (analysis/scorecard.py), runs each episode's shock and
its no-shock twin over the same seeds (common random numbers) in parallel worker processes, only
over the months the episode's facts need (from the world's base month), and writes
``<out>/``: ``scorecard.csv`` (one row per fact: observed, model median and band over seeds,
verdict), ``totals.csv``, ``manifest.yaml``, ``report.html`` and ``plots/`` (model against
observed where a fact has monthly observations). Episodes before 2024 are replayed on the 2024
world with their dates shifted (``shift_months`` in episodes.csv), as the shock configs do.
Exit status: 0 done, 1 some runs failed or the hit rate is under ``--fail-under``, 2 bad input
(nothing run).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from critmin.analysis import scorecard as sc
from critmin.experiments.api import simulate
from critmin.sim.run import code_version, load_config
from critmin.sim.world import DataError

QUIET = ["experiment.plots=false", "experiment.write_flows=false", "experiment.metrics.report=false"]
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class RunKey:
    """What a run is, apart from its seed and horizon: runs with the same key are shared."""

    scenario: str
    shock: str
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        extra = f"+{len(self.overrides)} overrides" if self.overrides else ""
        return f"{self.scenario}/{self.shock}{extra}"


@dataclass
class Plan:
    """A checked validation: episodes, the runs they need, the seeds."""

    episodes: list[sc.Episode]
    seeds: list[int]
    overrides: list[str]  # Hydra overrides applied to every run (e.g. a parameter set)
    data: Path
    jobs: int = 1
    ends: dict[RunKey, pd.Timestamp] = field(default_factory=dict)
    needs: dict[RunKey, tuple[set[str], set[str]]] = field(default_factory=dict)
    # origin records the facts read (scorecard.origin_needs: scope, commodity, region)
    origins: dict[RunKey, set[tuple[str, str, str]]] = field(default_factory=dict)
    configs: dict[RunKey, DictConfig] = field(default_factory=dict)

    def digest(self) -> str:
        text = json.dumps(
            {
                "episodes": [e.episode for e in self.episodes],
                "seeds": self.seeds,
                "overrides": self.overrides,
                "data": sc.data_hashes(self.data),
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def shock_key(ep: sc.Episode) -> RunKey:
    return RunKey(ep.scenario, ep.shock, ep.overrides)


def twin_key(ep: sc.Episode) -> RunKey:
    return RunKey(ep.scenario, "none", ep.overrides)


# ---------------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin validate",
        description="Replay every sourced episode (with its no-shock twin, same seeds) and score the "
        "model fact by fact against data/validation/*.csv: hit (inside the historical band), "
        "direction (right sign, wrong size or timing), miss. Writes scorecard.csv, totals.csv, "
        "report.html, plots/ and manifest.yaml.",
        epilog="examples:\n  critmin validate\n  critmin validate --seeds 1 --episodes drc_cobalt_2025\n"
        "  critmin validate --fail-under 30 scenario.market.kappa=0.3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--episodes", help="comma-separated episode names (default: all in episodes.csv)")
    p.add_argument(
        "--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per run (default {DEFAULT_SEEDS})"
    )
    p.add_argument("--first-seed", type=int, default=0, dest="first_seed", help="first seed (default 0)")
    p.add_argument("--jobs", type=int, help="worker processes (default: all cores; 1 = in this process)")
    p.add_argument("--out", help="output folder (default outputs/validate/<hash>)")
    p.add_argument("--data", help="folder of episodes.csv and the facts files (default: the packaged one)")
    p.add_argument(
        "--fail-under",
        type=float,
        dest="fail_under",
        help="exit 1 if under P%% of expressible facts are hits",
    )
    p.add_argument("--no-plots", action="store_true", dest="no_plots", help="skip the overlay plots")
    p.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run (key=value)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_intermixed_args(argv)
    logging.getLogger("mesa").setLevel(logging.WARNING)
    try:
        plan = plan_from_args(args)
        prepare(plan)
    except DataError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    episode_runs, failed, info = execute(plan)
    card = sc.score(episode_runs)
    elapsed = time.perf_counter() - t0
    folder = (
        Path(args.out) if args.out else Path("outputs/validate") / f"seeds{len(plan.seeds)}-{plan.digest()}"
    )
    write(folder, plan, card, episode_runs, failed, info, elapsed, plots=not args.no_plots)
    tot = sc.totals(card)
    print(tot.to_string(index=False))
    print(f"wrote {folder} (scorecard.csv, report.html) in {elapsed:.1f} s")
    status = 0
    if failed:
        print(f"{len(failed)} run(s) failed (listed in manifest.yaml):", file=sys.stderr)
        for f in failed:
            print(f"  {f['run']} seed {f['seed']}: {f['error']}", file=sys.stderr)
        status = 1
    if args.fail_under is not None:
        rate = 100 * float(tot.iloc[-1]["hit_rate"])
        if not rate >= args.fail_under:
            print(f"hit rate {rate:.1f}% is under --fail-under {args.fail_under:g}%", file=sys.stderr)
            status = 1
    return status


# ---------------------------------------------------------------------- the plan
def plan_from_args(args: argparse.Namespace) -> Plan:
    names = [n.strip() for n in args.episodes.split(",") if n.strip()] if args.episodes else None
    if names is not None and not names:
        raise DataError("--episodes: expected at least one episode name")
    if args.seeds < 1:
        raise DataError(f"--seeds: expected a number of seeds >= 1, got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        raise DataError(f"--jobs: expected a number of processes >= 1, got {args.jobs}")
    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        raise DataError(f"--fail-under: expected a percentage 0-100, got {args.fail_under}")
    for o in args.overrides:
        check_override(o, "override")
    data = Path(args.data) if args.data else sc.validation_dir()
    return make_plan(
        sc.load_episodes(data, names),
        list(range(args.first_seed, args.first_seed + args.seeds)),
        list(args.overrides),
        data,
        args.jobs or os.cpu_count() or 1,
    )


def check_override(o: str, where: str) -> None:
    key = o.partition("=")[0]
    if "=" not in o or key in ("scenario", "shock", "policy", "seed") or key.startswith(("hydra", "+", "~")):
        raise DataError(
            f"{where} {o!r}: expected key=value of a run parameter (e.g. scenario.market.kappa=0.3); "
            "episodes choose scenario, shock and seeds themselves"
        )


def make_plan(
    episodes: list[sc.Episode], seeds: list[int], overrides: list[str], data: Path, jobs: int
) -> Plan:
    """The runs the episodes need: one per (scenario, shock, overrides), to the latest month any
    episode sharing it needs; each shock's twin is the same without the shock."""
    plan = Plan(episodes, seeds, overrides, data, jobs)
    for ep in episodes:
        coms, variables = sc.needs(list(ep.facts))
        keys = [shock_key(ep)] + ([twin_key(ep)] if ep.has_twin else [])
        for key in keys:
            plan.ends[key] = max(plan.ends.get(key, ep.end()), ep.end())
            c, v = plan.needs.get(key, (set(), set()))
            plan.needs[key] = (c | coms, v | variables)
            plan.origins[key] = plan.origins.get(key, set()) | sc.origin_needs(list(ep.facts))
    return plan


def run_overrides(key: RunKey, end: pd.Timestamp, extra: list[str]) -> list[str]:
    return [
        f"scenario={key.scenario}",
        f"shock={key.shock}",
        f"scenario.end={end:%Y-%m}",
        *QUIET,
        *key.overrides,
        *extra,
    ]


def prepare(plan: Plan) -> None:
    """Compose and check every run's config before any run (a bad name or value fails here)."""
    from critmin.sim.config import check_config

    for key, end in plan.ends.items():
        try:
            cfg = load_config(run_overrides(key, end, plan.overrides))
            check_config(cfg)
        except DataError as exc:
            eps = [e.episode for e in plan.episodes if key in (shock_key(e), twin_key(e))]
            raise DataError(f"episode {eps[0]!r} ({key.name}): {exc}") from None
        for _, _, region in sorted(plan.origins.get(key, set())):
            check_origin_region(region, cfg, key)
        if pd.Timestamp(str(cfg.scenario.start) + "-01") > min(
            e.pre.first for e in plan.episodes if key in (shock_key(e), twin_key(e))
        ):
            raise DataError(f"{key.name}: the scenario starts after an episode's pre-shock window")
        plan.configs[key] = cfg


def check_origin_region(region: str, cfg: DictConfig, key: RunKey) -> None:
    """An origin_share fact's region: a group of experiment.metrics.regions, a bloc or a country
    code (analysis/metrics.py ``Tables.members`` resolves it in the worker)."""
    from critmin.sim.schemas import BLOCS

    groups = dict(OmegaConf.to_container(cfg.experiment.metrics.get("regions") or {}, resolve=True))
    if region in groups or region in BLOCS or (len(region) == 3 and region.isupper()):
        return
    raise DataError(
        f"{key.name}: origin_share region {region!r}: expected a group of experiment.metrics.regions "
        f"{sorted(groups)}, a bloc {list(BLOCS)} or a country code"
    )


# ---------------------------------------------------------------------- running
def run_one(
    key: RunKey,
    seed: int,
    cfg: DictConfig,
    commodities: set[str],
    variables: set[str],
    origins: set[tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """One run, reduced in the worker to the rows the facts read (and, for origin_share facts,
    to the monthly origin weights they read, scorecard.origin_frame)."""
    logging.getLogger("mesa").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    cfg.seed = seed
    try:
        result = simulate(cfg)
    except Exception as exc:  # one failed run must not lose the others
        return {"key": key, "seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    ts = result.timeseries
    months = pd.DatetimeIndex(sorted(ts["month"].unique()))
    keep = ts["commodity"].astype(str).isin(commodities) & ts["variable"].astype(str).isin(variables)
    small = ts[keep].reset_index(drop=True)
    origin = None
    if origins:
        from critmin.analysis.metrics import Tables

        origin = sc.origin_frame(Tables.from_result(result), origins)
    return {
        "key": key,
        "seed": seed,
        "timeseries": small,
        "origins": origin,
        "months": months,
        "seconds": round(time.perf_counter() - t0, 2),
        "input_data_sha256": result.manifest["input_data_sha256"],
        "mass_balance_max_rel_error": result.summary["mass_balance_max_rel_error"],
    }


def run_all(plan: Plan, jobs: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Every run × seed in parallel processes (longest first); jobs = 1 runs in this process."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    keys = sorted(plan.ends, key=lambda k: plan.ends[k], reverse=True)
    tasks = [
        (k, s, plan.configs[k], *plan.needs[k], plan.origins.get(k, set())) for k in keys for s in plan.seeds
    ]
    n = max(1, min(jobs or plan.jobs, len(tasks)))
    results = Parallel(n_jobs=n, return_as="generator")(delayed(run_one)(*t) for t in tasks)
    return list(tqdm(results, total=len(tasks), desc="runs", unit="run", disable=None if progress else True))


def assemble(plan: Plan, results: list[dict[str, Any]]) -> tuple[list[sc.EpisodeRuns], list[dict[str, Any]]]:
    """Pair each episode's shock run with its twin, seed by seed; failed runs are left out."""
    series = {
        (r["key"], r["seed"]): sc.Series(r["timeseries"], r["months"], r.get("origins"))
        for r in results
        if "error" not in r
    }
    failed = [
        {"run": r["key"].name, "seed": int(r["seed"]), "error": r["error"]} for r in results if "error" in r
    ]
    out = []
    for ep in plan.episodes:
        runs = {}
        for s in plan.seeds:
            shock = series.get((shock_key(ep), s))
            twin = series.get((twin_key(ep), s)) if ep.has_twin else None
            if shock is not None and (twin is not None or not ep.has_twin):
                runs[s] = (shock, twin)
        out.append(sc.EpisodeRuns(ep, runs))
    return out, failed


def execute(
    plan: Plan, jobs: int | None = None, progress: bool = True
) -> tuple[list[sc.EpisodeRuns], list[dict], dict]:
    results = run_all(plan, jobs, progress)
    episode_runs, failed = assemble(plan, results)
    ok = [r for r in results if "error" not in r]
    hashes: dict[str, str] = {}
    for r in ok:
        hashes.update(r["input_data_sha256"])
    info = {
        "input_data_sha256": dict(sorted(hashes.items())),
        "per_run_seconds_mean": round(sum(r["seconds"] for r in ok) / len(ok), 2) if ok else None,
        "mass_balance_max_rel_error": max((r["mass_balance_max_rel_error"] for r in ok), default=None),
    }
    return episode_runs, failed, info


# ---------------------------------------------------------------------- outputs
def build_manifest(plan: Plan, failed: list[dict], info: dict, elapsed: float) -> dict[str, Any]:
    return {
        "validation": plan.digest(),
        "episodes": [e.episode for e in plan.episodes],
        "seeds": plan.seeds,
        "overrides": plan.overrides,
        "convention": "episodes before 2024 are replayed on the 2024 world with their dates shifted by "
        "shift_months (data/validation/episodes.csv); each shock run is paired with its no-shock "
        "twin over the same seeds (common random numbers)",
        "code_version": code_version(),
        "validation_data_sha256": sc.data_hashes(plan.data),
        "input_data_sha256": info["input_data_sha256"],
        "runs": [
            {
                "run": k.name,
                "end": f"{end:%Y-%m}",
                "overrides": run_overrides(k, end, plan.overrides),
            }
            for k, end in plan.ends.items()
        ],
        "failed_runs": failed,
        "seconds": {"wall": round(elapsed, 1), "per_run_mean": info["per_run_seconds_mean"]},
        "jobs": plan.jobs,
        "mass_balance_max_rel_error": info["mass_balance_max_rel_error"],
        "run_config": {
            k.name: OmegaConf.to_container(c.scenario, resolve=True)
            for k, c in list(plan.configs.items())[:1]
        },
    }


def write(
    folder: Path,
    plan: Plan,
    card: pd.DataFrame,
    episode_runs: list[sc.EpisodeRuns],
    failed: list[dict],
    info: dict,
    elapsed: float,
    plots: bool = True,
) -> Path:
    from critmin.analysis.validation_report import write_report

    folder.mkdir(parents=True, exist_ok=True)
    card.to_csv(folder / "scorecard.csv", index=False, float_format="%.6g")
    sc.totals(card).to_csv(folder / "totals.csv", index=False)
    manifest = build_manifest(plan, failed, info, elapsed)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    write_report(folder, card, episode_runs, manifest, plots=plots)
    return folder
