"""``critmin compare``: instrument mixes × one shock × seeds, one report for policy staff.

Reads ``configs/compare/<config>.yaml`` (default: ``default``), checks every name, composes
every mix's run config and builds its model once (instruments, shock, events: a bad policy or
shock file fails here, naming the file) before the first run, runs mix × seed in parallel worker
processes (each run is reduced to tidy rows in its worker, so memory stays flat; a failed run is
recorded, the others are kept), then writes ``<out>/<name>-<shock>-<hash>/``:
``comparison.parquet``, ``summary.csv``, ``manifest.yaml``, ``report.html`` and ``plots/``. The
hash covers the configs, the input data and the code (:func:`critmin.sim.run.run_identity`); a
comparison rerun after a data or code change says so. Seed i is the same in every mix (common
random numbers). Progress: a bar in a terminal, else a line every ``--progress-every`` seconds.
Exit status: 0 all runs done, 1 some runs failed (the outputs are still written), 2 bad input
(nothing run), 130/143 interrupted by Ctrl-C/SIGTERM (workers stopped, nothing written).
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

from critmin.analysis import comparison, metrics
from critmin.experiments import interrupt, progress, runstate, study
from critmin.experiments.api import simulate
from critmin.experiments.settings import load_group_settings
from critmin.sim.run import code_version, config_dir, identity_id, load_config
from critmin.sim.world import DataError

# applied to every run: the comparison keeps its own small tables, not run folders
QUIET = ["experiment.plots=false", "experiment.write_flows=false", "experiment.metrics.report=false"]
KEYS = {
    "name": str,
    "out": str,
    "mixes": (list, type(None)),
    "shock": str,
    "scenario": str,
    "horizon": (str, type(None)),
    "overrides": list,
    "seeds": int,
    "first_seed": int,
    "jobs": (int, type(None)),
    "band": list,
    "peak_price": dict,
}


@dataclass(frozen=True)
class Mix:
    """One instrument mix: a policy file, optionally with overrides (a variant of it)."""

    name: str
    policy: str
    overrides: tuple[str, ...] = ()


@dataclass
class Plan:
    """A checked comparison: what runs, and where its outputs go."""

    settings: dict[str, Any]
    source: str  # the compare config file, for messages and the manifest
    mixes: list[Mix]
    seeds: list[int]
    overrides: list[str]  # Hydra overrides common to every run
    configs: dict[str, DictConfig] = field(default_factory=dict)  # mix -> composed config (seed unset)
    # under a shock: the no-shock reference (policy none, shock none), composed by prepare()
    reference: DictConfig | None = None

    @property
    def jobs(self) -> int:
        return int(self.settings["jobs"] or os.cpu_count() or 1)

    def config_digest(self) -> str:
        """Hash of the comparison as asked for: mixes, seeds, settings, every resolved run config."""
        text = json.dumps(
            {
                "mixes": [[m.name, m.policy, list(m.overrides)] for m in self.mixes],
                "seeds": self.seeds,
                "settings": {k: self.settings[k] for k in ("shock", "band", "peak_price")},
                "configs": {k: OmegaConf.to_container(c, resolve=True) for k, c in self.configs.items()},
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def identity(self) -> dict[str, Any]:
        """What determines the results (not jobs or the output folder): the configs (their
        digest), the input data every mix reads and the code."""
        return study.identity(self.config_digest(), self.configs.values())

    def digest(self) -> str:
        return identity_id(self.identity())

    def folder(self) -> Path:
        s = self.settings
        return Path(s["out"]) / f"{s['name']}-{s['shock']}-{self.digest()}"


# ---------------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin compare",
        description="Compare instrument mixes under one shock over several seeds: dependency per "
        "stage against the 60% / 50% targets, fiscal cost, unmet demand, peak price. Writes "
        "<out>/<name>-<shock>-<hash>/ with comparison.parquet, summary.csv, manifest.yaml, "
        "report.html and plots/.",
        epilog="examples:\n  critmin compare\n  critmin compare --shock ree_licensing_2025 --seeds 5\n"
        "  critmin compare --mixes none,stockpile --shock magnet_ban_demo scenario=ree_2024_short\n"
        "  critmin compare --seeds 3 scenario.demand.price_elasticity=0.2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="default", help="configs/compare/<NAME>.yaml or a YAML path")
    p.add_argument("--mixes", help="comma-separated names of configs/policy/*.yaml (default: config)")
    p.add_argument("--shock", help="a name of configs/shock/*.yaml")
    p.add_argument("--scenario", help="a name of configs/scenario/*.yaml")
    p.add_argument("--horizon", help="last month simulated, YYYY-MM, or 'none' for the scenario's end")
    p.add_argument("--seeds", type=int, help="number of seeds per mix")
    p.add_argument("--first-seed", type=int, dest="first_seed", help="first seed (default 0)")
    p.add_argument("--jobs", type=int, help="worker processes (default: config; 1 = in this process)")
    p.add_argument("--out", help="parent folder of the comparison folder (default outputs/compare)")
    p.add_argument("--name", help="comparison name, the start of its folder name")
    p.add_argument(
        "--progress-every",
        type=float,
        default=progress.DEFAULT_EVERY_S,
        dest="progress_every",
        metavar="SECONDS",
        help="when stderr is not a terminal, a progress line at most every SECONDS (0: after every run; "
        f"default {progress.DEFAULT_EVERY_S:g})",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run (key=value)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_intermixed_args(argv)
    logging.getLogger("mesa").setLevel(logging.WARNING)
    tally = Tally()
    try:
        with interrupt.terminate_as_interrupt():
            try:
                plan = plan_from_args(args)
                prepare(plan)
            except DataError as exc:
                print(f"bad input: {exc}", file=sys.stderr)
                return 2
            tally.total = len(plan.mixes) * len(plan.seeds)
            say_if_redone(plan)
            folder, summary, failed = run(plan, tally, args.progress_every)
    except KeyboardInterrupt as exc:
        interrupt.cleanup()
        print(
            f"compare interrupted ({interrupt.signal_name(exc)}): {tally.done} runs done, {tally.failed} failed, "
            f"{max(tally.total - tally.done - tally.failed, 0)} not finished; nothing written (the comparison "
            "folder is written when every run has ended; the same command starts it again)",
            file=sys.stderr,
            flush=True,
        )
        return interrupt.exit_code(exc)
    ctx = plan_context(plan)
    print("\n".join(comparison.headlines(summary, ctx)))
    print(comparison.console_table(summary, ctx).to_string(index=False))
    defs = comparison.definitions_console(summary.attrs.get("definitions", pd.DataFrame()), ctx)
    if len(defs):
        print(
            f"Highest share in {ctx.target_year} under other definitions (median; seeds below "
            f"{ctx.targets[0].label}); every definition in definitions.csv and report.html:"
        )
        print(defs.to_string(index=False))
    if failed:
        print(f"{len(failed)} run(s) failed (listed in manifest.yaml and the report):", file=sys.stderr)
        for f in failed:
            print(f"  {f['mix']} seed {f['seed']}: {f['error']}", file=sys.stderr)
    print(f"wrote {folder} (report.html, summary.csv, definitions.csv, comparison.parquet)")
    return 1 if failed else 0


# ---------------------------------------------------------------------- the plan
def names(kind: str) -> list[str]:
    """Config names of a group: the stems of configs/<kind>/*.yaml."""
    return sorted(p.stem for p in (config_dir() / kind).glob("*.yaml"))


def load_settings(config: str) -> tuple[dict[str, Any], str]:
    """The compare config (a name in configs/compare/ or a path), with its keys checked."""
    return load_group_settings("compare", config, KEYS)


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Merge the compare config with the command line and check every name (no run yet)."""
    settings, source = load_settings(args.config)
    where = {k: f"{source}: key {k}" for k in KEYS}
    overrides = []
    for o in args.overrides:
        key, _, value = o.partition("=")
        if key in ("scenario", "shock") and value:
            setattr(args, key, getattr(args, key) or value)  # the same as --scenario / --shock
        elif key == "policy":
            raise DataError(f"override {o!r}: choose instrument mixes with --mixes, not policy=")
        else:
            overrides.append(o)
    for key in ("shock", "scenario", "seeds", "first_seed", "jobs", "out", "name"):
        if getattr(args, key) is not None:
            settings[key], where[key] = getattr(args, key), f"--{key.replace('_', '-')}"
    if args.horizon is not None:
        settings["horizon"] = None if args.horizon.lower() in ("none", "null") else args.horizon
        where["horizon"] = "--horizon"
    elif args.scenario is not None:
        settings["horizon"] = None  # a scenario chosen on the command line runs to its own end
    mixes = default_mixes() if settings["mixes"] is None else settings["mixes"]
    if args.mixes is not None:
        mixes, where["mixes"] = [m.strip() for m in args.mixes.split(",") if m.strip()], "--mixes"
    plan = Plan(
        settings=settings,
        source=source,
        mixes=parse_mixes(mixes, where["mixes"]),
        seeds=[],
        overrides=[],
    )
    check_names(settings, where)
    if settings["seeds"] < 1:
        raise DataError(f"{where['seeds']}: expected a number of seeds >= 1, got {settings['seeds']}")
    if settings["jobs"] is not None and settings["jobs"] < 1:
        raise DataError(
            f"{where['jobs']}: expected a number of processes >= 1 or null, got {settings['jobs']}"
        )
    band = settings["band"]
    if (
        len(band) != 2
        or not all(isinstance(b, int | float) for b in band)
        or not 0 <= band[0] <= band[1] <= 1
    ):
        raise DataError(
            f"{where['band']}: expected two quantiles [lo, hi] with 0 <= lo <= hi <= 1, got {band}"
        )
    pp = settings["peak_price"]
    if set(pp) != {"commodity", "region"}:
        raise DataError(f"{where['peak_price']}: expected keys commodity and region, got {sorted(pp)}")
    plan.seeds = list(range(settings["first_seed"], settings["first_seed"] + settings["seeds"]))
    base = [f"scenario={settings['scenario']}", f"shock={settings['shock']}"]
    if settings["horizon"] is not None:
        base.append(f"scenario.end={settings['horizon']}")
    plan.overrides = merge_overrides(base, [str(o) for o in settings["overrides"]], overrides, QUIET)
    return plan


def default_mixes() -> list[str]:
    """``none`` and every Alliance mix (configs/policy/alliance_*.yaml)."""
    return ["none", *(n for n in names("policy") if n.startswith("alliance_"))]


def parse_mixes(entries: list[Any], where: str) -> list[Mix]:
    """Names of policy files, or ``{name, policy, overrides}`` variants; names must be unique."""
    known = names("policy")
    out: list[Mix] = []
    for i, e in enumerate(entries):
        at = f"{where}[{i}]" if not where.startswith("--") else where
        if isinstance(e, str):
            mix = Mix(e, e)
        elif isinstance(e, dict) and set(e) <= {"name", "policy", "overrides"} and "policy" in e:
            mix = Mix(
                str(e.get("name", e["policy"])), str(e["policy"]), tuple(map(str, e.get("overrides", [])))
            )
        else:
            raise DataError(f"{at}: expected a policy name or {{name, policy, overrides}}, got {e!r}")
        if mix.policy not in known:
            raise DataError(
                f"{at}: unknown instrument mix {mix.policy!r}; expected one of {known} (configs/policy/*.yaml)"
            )
        if any(m.name == mix.name for m in out):
            raise DataError(f"{at}: mix {mix.name!r} is listed twice")
        out.append(mix)
    if not out:
        raise DataError(f"{where}: expected at least one instrument mix")
    return out


def check_names(settings: dict[str, Any], where: dict[str, str]) -> None:
    for key, kind in (("shock", "shock"), ("scenario", "scenario")):
        if settings[key] not in names(kind):
            raise DataError(
                f"{where[key]}: unknown {kind} {settings[key]!r}; expected one of {names(kind)} "
                f"(configs/{kind}/*.yaml)"
            )


def merge_overrides(*groups: list[str]) -> list[str]:
    """Concatenate override lists; a key given again keeps its last value."""
    out: dict[str, str] = {}
    for group in groups:
        for o in group:
            out[o.partition("=")[0]] = o
    return list(out.values())


def prepare(plan: Plan) -> None:
    """Compose each mix's config, check its values and build its model once (its world's data,
    the mix's instruments, the shock's instruments and events; not run): a bad override key or
    value, bad data, or a policy or shock file whose instruments cannot be built fails here,
    before any run, naming the file and key. About 0.2 s a mix."""
    from critmin.sim.config import check_config
    from critmin.sim.model import CritminModel

    worlds: dict[str, list[str]] = {}
    for mix in plan.mixes:
        try:
            cfg = load_config(merge_overrides([f"policy={mix.policy}"], plan.overrides, list(mix.overrides)))
            check_config(cfg)
            sc = cfg.scenario
            chains = [sc.data] if isinstance(sc.data, str) else list(sc.data)
            key = json.dumps([chains, OmegaConf.to_container(sc.blocs)], sort_keys=True)
            model = build_model(CritminModel, cfg, mix)
            worlds.setdefault(key, list(model.world.commodities["commodity"]))
            del model
        except DataError as exc:
            raise DataError(f"mix {mix.name!r}: {exc}") from None
        pp = plan.settings["peak_price"]
        if pp["commodity"] not in worlds[key]:
            raise DataError(
                f"{plan.source}: key peak_price.commodity: expected a commodity of this world "
                f"{worlds[key]}, got {pp['commodity']!r} (other worlds: a compare config of their own, "
                "--config FILE)"
            )
        region = cfg.experiment.metrics.region
        if pp["region"] not in ("WORLD", region):
            raise DataError(
                f"{plan.source}: key peak_price.region: expected WORLD or the metrics region {region!r}, "
                f"got {pp['region']!r}"
            )
        plan.configs[mix.name] = cfg
    if plan.settings["shock"] != "none":
        plan.reference = load_config(merge_overrides(["policy=none"], plan.overrides, ["shock=none"]))


def build_model(factory: Any, cfg: DictConfig, mix: Mix) -> Any:
    """Build (not run) the model of a mix: a DataError names its file and key; any other error
    while building it is reported against the mix's policy and shock files."""
    try:
        return factory(copy.deepcopy(cfg))
    except DataError as exc:
        # event errors name the key (shock.events[i]) but not the file it came from
        for group in ("shock", "scenario"):
            file = f"configs/{group}/{cfg[group].name}.yaml"
            if str(exc).startswith(f"{group}.events") and file not in str(exc):
                raise DataError(f"{file}: {exc}") from None
        raise
    except Exception as exc:
        raise DataError(
            f"configs/policy/{mix.policy}.yaml or configs/shock/{cfg.shock.name}.yaml: the model cannot be "
            f"built ({type(exc).__name__}: {exc})"
        ) from exc


def say_if_redone(plan: Plan) -> None:
    """Say so when an earlier comparison of the same configs ran on other data or code."""
    out, identity = Path(plan.settings["out"]), plan.identity()
    if not out.is_dir():
        return
    for manifest_path in sorted(
        out.glob(f"{plan.settings['name']}-{plan.settings['shock']}-*/manifest.yaml")
    ):
        if manifest_path.parent == plan.folder():
            continue
        try:
            earlier = yaml.safe_load(manifest_path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        old = earlier.get("identity") if isinstance(earlier, dict) else None
        if isinstance(old, dict) and old.get("config_id") == identity["config_id"]:
            info = {**old, "code_version": earlier.get("code_version", "")}
            reason = runstate.stale_reason(info, identity, code_version())
            print(
                f"compare: all runs redone, {reason}; the earlier comparison stays in {manifest_path.parent}",
                file=sys.stderr,
            )


# ---------------------------------------------------------------------- running
@dataclass
class Tally:
    """Runs of a comparison finished so far (for the progress lines and an interrupt)."""

    total: int = 0
    done: int = 0
    failed: int = 0


def run_one(mix: str, seed: int, cfg: DictConfig, window: Any = None) -> dict[str, Any]:
    """Simulate one mix × seed and reduce it to tidy rows (in the worker process); ``window``:
    the shock window a no-shock reference run is read over."""
    logging.getLogger("mesa").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    cfg.seed = seed
    try:
        result = simulate(cfg)
        rows = comparison.reduce_run(result, mix, seed, window)
    except Exception as exc:  # one failed run must not lose the others
        return {"mix": mix, "seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "mix": mix,
        "seed": seed,
        "rows": rows,
        "run_id": result.manifest["run_id"],
        "seconds": round(time.perf_counter() - t0, 2),
        "input_data_sha256": result.manifest["input_data_sha256"],
        "region_members": result.summary["dependency"]["region_members"],
        "mass_balance_max_rel_error": result.summary["mass_balance_max_rel_error"],
    }


def execute(
    plan: Plan, tally: Tally | None = None, every_s: float = progress.DEFAULT_EVERY_S
) -> list[dict[str, Any]]:
    """Every mix × seed, in parallel processes (jobs = 1: in this process), in plan order. A bar
    in a terminal, else progress lines; ``tally`` counts finished runs as they come in."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    tasks = [(m.name, s, plan.configs[m.name], None) for m in plan.mixes for s in plan.seeds]
    if plan.reference is not None:  # the model's own price movement without the shock
        window = plan_context(plan).window
        tasks += [(comparison.REFERENCE, s, plan.reference, window) for s in plan.seeds]
    tally = tally or Tally()
    tally.total = len(tasks)
    jobs = min(plan.jobs, len(tasks))
    lines = progress.ProgressLines("compare", len(tasks), every_s) if progress.wants_lines() else None
    bar = None if lines else tqdm(total=len(tasks), desc="runs", unit="run", file=sys.stderr)
    results = []
    outputs = Parallel(n_jobs=jobs, return_as="generator")(delayed(run_one)(*t) for t in tasks)
    try:
        for r in outputs:
            results.append(r)
            if "error" in r:
                tally.failed += 1
            else:
                tally.done += 1
            if lines:
                lines.update(tally.done + tally.failed, tally.failed)
            else:
                bar.update(1)
    finally:
        outputs.close()  # interrupted: joblib stops the workers still running
        if bar is not None:
            bar.close()
    return results


def run(
    plan: Plan, tally: Tally | None = None, every_s: float = progress.DEFAULT_EVERY_S
) -> tuple[Path, pd.DataFrame, list[dict[str, Any]]]:
    """Execute the plan and write the comparison folder; returns it, the summary, failed runs."""
    t0 = time.perf_counter()
    results = execute(plan, tally, every_s)
    elapsed = time.perf_counter() - t0
    ok = [r for r in results if "rows" in r]
    failed = [{"mix": r["mix"], "seed": int(r["seed"]), "error": r["error"]} for r in results if "error" in r]
    tidy = (
        pd.concat([r["rows"] for r in ok], ignore_index=True)
        if ok
        else pd.DataFrame(columns=comparison.TIDY_COLUMNS)
    )
    tidy = tidy.astype({"mix": str, "seed": "int64", "year": "int64", "value": "float64"})
    ctx = plan_context(plan)
    summary = comparison.summarise(tidy, ctx)
    folder = plan.folder()
    folder.mkdir(parents=True, exist_ok=True)
    tidy.to_parquet(folder / "comparison.parquet", index=False)
    summary.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    summary.attrs["definitions"].to_csv(folder / "definitions.csv", index=False, float_format="%.6g")
    manifest = build_manifest(plan, ok, failed, elapsed, ctx)
    members = ok[0]["region_members"] if ok else []
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    from critmin.analysis.comparison_report import write_report

    write_report(folder, tidy, summary, ctx, manifest, members)
    return folder, summary, failed


def plan_context(plan: Plan) -> comparison.Context:
    cfg = next(iter(plan.configs.values()))
    settings = OmegaConf.to_container(cfg.experiment.metrics, resolve=True)
    pp = plan.settings["peak_price"]
    shock = OmegaConf.to_container(cfg.shock, resolve=True)
    window = metrics.shock_window(
        metrics.shock_windows(shock, str(cfg.scenario.start)), str(cfg.scenario.end)
    )
    return comparison.Context(
        mixes=[m.name for m in plan.mixes],
        seeds=plan.seeds,
        shock=plan.settings["shock"],
        region=str(settings.get("region", "G7+")),
        targets=comparison.targets_of(settings),
        band=(float(plan.settings["band"][0]), float(plan.settings["band"][1])),
        peak_commodity=str(pp["commodity"]),
        peak_region=str(pp["region"]),
        definition={k: settings.get(k) for k in ("region", "basis", "scope")},
        scenario=str(cfg.scenario.name),
        horizon=str(cfg.scenario.end),
        window=window,
        reference=plan.reference is not None,
    )


def build_manifest(
    plan: Plan, ok: list[dict], failed: list[dict], elapsed: float, ctx: comparison.Context
) -> dict[str, Any]:
    hashes: dict[str, str] = {}
    for r in ok:
        hashes.update(r["input_data_sha256"])
    return {
        "comparison": plan.folder().name,
        "compare_config": {"file": plan.source, **plan.settings},
        "mixes": [{"name": m.name, "policy": m.policy, "overrides": list(m.overrides)} for m in plan.mixes],
        "seeds": plan.seeds,
        "overrides": plan.overrides,
        "code_version": code_version(),
        "identity": plan.identity(),  # what the folder's hash covers: configs, input data, code
        "input_data_sha256": dict(sorted(hashes.items())),
        "runs": len(ok) + len(failed),
        "failed_runs": failed,
        "run_ids": {f"{r['mix']}/seed{r['seed']}": r["run_id"] for r in ok},
        "seconds": {"wall": round(elapsed, 1), "per_run_mean": _mean([r["seconds"] for r in ok])},
        "jobs": min(plan.jobs, len(plan.mixes) * len(plan.seeds)),
        "no_shock_reference": {"mix": comparison.REFERENCE, "policy": "none", "shock": "none"}
        if plan.reference is not None
        else None,
        "mass_balance_max_rel_error": max((r["mass_balance_max_rel_error"] for r in ok), default=None),
        "targets": [{"name": t.name, "threshold": t.threshold, "year": t.year} for t in ctx.targets],
        "policies": {m: OmegaConf.to_container(c.policy, resolve=True) for m, c in plan.configs.items()},
        "run_config": {
            k: v
            for k, v in OmegaConf.to_container(next(iter(plan.configs.values())), resolve=True).items()
            if k != "policy"
        },
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None
