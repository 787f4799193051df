"""``critmin run``: simulations as a Hydra app, one run or a sweep (``-m``).

A Hydra job simulates ``experiment.seeds_per_job`` seeds (``seed``, ``seed+1``, ...), each into
its own run folder, so Hydra's per-job cost (composing the config, about 0.2 s) is paid once per
batch. In a sweep a failing run is recorded in its folder (``error.json``) and the job goes on;
finished runs (``DONE`` marker) are skipped unless ``experiment.overwrite=true``. A run's folder
is named by its identity (config, input data, code: :func:`critmin.sim.run.run_id`): a finished
run of the same config made with other data or code is stale and is redone, saying why, unless
``experiment.reuse_stale=true`` (``critmin run -m --reuse-stale``). A single run always
simulates, and exits non-zero on failure (2 for bad input).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from critmin.analysis.results import PlotChild, plots_in_child
from critmin.experiments import runstate
from critmin.experiments.api import simulate
from critmin.experiments.run_input import BAD_INPUT, check_writable, hydra_errors_as_bad_input, precheck
from critmin.sim.run import ModelRun, config_dir, identity_id, output_dir, run_identity
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.model import CritminModel

log = logging.getLogger("critmin")


@dataclass
class Outcome:
    """What happened to one simulation of a job."""

    folder: str
    seed: int
    status: str  # done | skipped | failed
    seconds: float = 0.0
    error: str = ""
    redone: str = ""  # done: why a stale earlier result was not reused (data or code changed)
    stale: str = ""  # skipped: an earlier result reused although stale (reuse_stale), and why


def _hydra_cfg() -> Any | None:
    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun() -> bool:
    """True inside a Hydra job launched by ``critmin run -m``."""
    hc = _hydra_cfg()
    return hc is not None and hc.mode == RunMode.MULTIRUN


def resolve(path: Path) -> Path:
    """A relative output path against the directory ``critmin run`` was started in (a Ray or
    Submitit worker may run elsewhere); unchanged when that is the current directory."""
    hc = _hydra_cfg()
    if path.is_absolute() or hc is None or not hc.runtime.cwd or Path(hc.runtime.cwd) == Path.cwd():
        return path
    return Path(hc.runtime.cwd) / path


def sweep_record() -> Path | None:
    """The sweep's record folder (``hydra.sweep.dir``) inside a multirun job, else None."""
    hc = _hydra_cfg()
    return resolve(Path(hc.sweep.dir)) if is_multirun() else None


def simulation_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per simulation of a job: seeds ``seed`` .. ``seed + seeds_per_job - 1``, with
    the execution settings (seeds_per_job, overwrite) reset to their defaults, so that each run's
    folder, hash and manifest are those of a single run with that seed."""
    n = cfg.experiment.seeds_per_job
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DataError(f"config: key experiment.seeds_per_job: expected a whole number >= 1, got {n!r}")
    out = []
    for i in range(n):
        c = copy.deepcopy(cfg)
        c.seed = int(cfg.seed) + i
        c.experiment.seeds_per_job = 1
        c.experiment.overwrite = False
        c.experiment.reuse_stale = False
        out.append(c)
    return out


# the files `critmin collect` reads; their hashes in DONE let it tell a damaged folder
COLLECTED_FILES = ("manifest.yaml", "summary.json", "metrics.parquet")


def simulate_and_write(cfg: DictConfig, identity: dict[str, Any] | None = None) -> tuple[Path, float, float]:
    """Simulate one config, write its folder and mark it DONE; returns (folder, simulate_s, write_s).
    ``identity``: the run's identity as requested (default: computed from ``cfg`` now). Raises
    on failure (the folder is then left without a DONE marker)."""
    for name in ("mesa", "MESA"):  # Mesa 3 logs every step at INFO under "MESA.mesa.model"
        logging.getLogger(name).setLevel(logging.WARNING)
    identity = identity or run_identity(cfg)
    check_writable(resolve(Path(cfg.output_root)))
    work = copy.deepcopy(cfg)  # simulate() adapts the metric checks to the world in place
    child: PlotChild | None = None

    def start_plots(model: CritminModel) -> None:
        """A single run draws its plots in a second process while this one collects its tables,
        computes the metrics and writes the rest (in a sweep the other workers already use the
        cores). The plots read the run's timeseries only: the process makes it from the
        finished model (the same table as ``collect``'s)."""
        nonlocal child
        out = resolve(output_dir(work))
        try:
            runstate.unmark_done(out)
        except OSError as exc:
            raise DataError(f"config key output_root: cannot write the run folder {out}: {exc}") from None
        empty = pd.DataFrame()
        child = plots_in_child(
            lambda: ModelRun(model.recorder.timeseries(), empty, empty, {}, {}), out / "plots"
        )

    concurrent = bool(work.experiment.plots) and not is_multirun()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = simulate(work, after_run=start_plots if concurrent else None)
        t1, c1 = time.perf_counter(), time.process_time()
        out = resolve(output_dir(work))
        try:
            runstate.unmark_done(out)
            result.write(
                out,
                plots=work.experiment.plots,
                flows=work.experiment.write_flows,
                release=True,
                plots_child=child,
            )
        except OSError as exc:
            raise DataError(f"config key output_root: cannot write the run folder {out}: {exc}") from None
    except BaseException:
        if child is not None:
            child.stop()
        raise
    t2 = time.perf_counter()
    runstate.mark_done(
        out,
        run_id=result.manifest["run_id"],
        requested_id=identity_id(identity),
        **identity,
        code_version=result.manifest["code_version"],
        files=runstate.file_hashes(out, COLLECTED_FILES),
        seed=int(work.seed),
        simulate_s=round(t1 - t0, 4),
        simulate_cpu_s=round(c1 - c0, 4),  # this process's CPU time: wall minus waiting for a core
        write_s=round(t2 - t1, 4),
        pid=os.getpid(),
    )
    s = result.summary
    log.info(
        "%s: %d months in %.2fs; mass balance max rel. error %.1e; wrote %s",
        s["scenario"],
        s["months"],
        t1 - t0,
        s["mass_balance_max_rel_error"],
        out,
    )
    return out, t1 - t0, t2 - t1


def run_job(cfg: DictConfig) -> str:
    """Simulate ``cfg`` (one seed) and write its run folder; returns the folder. Raises on failure."""
    return str(simulate_and_write(cfg)[0])


def run_one(cfg: DictConfig, *, overwrite: bool, reuse_stale: bool = False) -> Outcome:
    """One simulation of a sweep: skipped if finished with the same config, data and code
    (unless ``overwrite``); a finished run of the same config with other data or code (stale)
    is redone and marked superseded, or reused if ``reuse_stale``; failures are recorded in the
    run folder's error.json instead of raised."""
    identity = run_identity(cfg)
    requested = identity_id(identity)
    folder = resolve(output_dir(cfg))
    seed = int(cfg.seed)
    if not overwrite and (done := runstate.find_finished(folder, requested)) is not None:
        if runstate.revive(done):  # current again: the data or code went back to what it was
            while (other := runstate.find_stale(done, identity["config_id"], requested)) is not None:
                runstate.mark_superseded(other[0], done, "data or code went back to an earlier state")
        log.info("skipped (finished earlier): %s", done)
        return Outcome(str(done), seed, "skipped")
    stale = runstate.find_stale(folder, identity["config_id"], requested)
    reason = ""
    if stale is not None:
        from critmin.sim.run import code_version

        reason = runstate.stale_reason(stale[1], identity, code_version())
        if reuse_stale and not overwrite:
            log.info("reused although stale, %s: %s", reason, stale[0])
            return Outcome(str(stale[0]), seed, "skipped", stale=reason)
    runstate.unmark_done(folder)
    runstate.clear_stale_failures(folder, identity["config_id"])  # this attempt replaces them
    t0 = time.perf_counter()
    try:
        out, _, _ = simulate_and_write(cfg, identity)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        hc = _hydra_cfg()
        try:
            info = runstate.record_failure(
                folder,
                exc,
                OmegaConf.to_container(cfg, resolve=True),
                requested_id=requested,
                config_id=identity["config_id"],
                seed=seed,
                hydra_job=None if hc is None else {"num": hc.job.num, "overrides": list(hc.overrides.task)},
            )
            log.error("FAILED %s: %s (attempt %d; error.json)", folder, error, info["attempt"])
        except Exception as rec_exc:  # e.g. the disk is full: still report, and go on
            log.error("FAILED %s: %s (could not write error.json: %s)", folder, error, rec_exc)
        return Outcome(str(folder), seed, "failed", time.perf_counter() - t0, error)
    runstate.clear_failure(folder)
    if out != folder:
        runstate.clear_failure(out)
    if stale is not None:
        runstate.mark_superseded(stale[0], out, reason)
        log.info("redone, %s: %s; the earlier result stays in %s", reason, out, stale[0])
    return Outcome(str(out), seed, "done", time.perf_counter() - t0, redone=reason)


def run_sweep_job(cfg: DictConfig) -> list[Outcome]:
    """A multirun job: every seed of the batch, each reported to the sweep's progress log."""
    record = sweep_record()
    outcomes = []
    for sim_cfg in simulation_configs(cfg):
        outcome = run_one(
            sim_cfg, overwrite=bool(cfg.experiment.overwrite), reuse_stale=bool(cfg.experiment.reuse_stale)
        )
        outcomes.append(outcome)
        if record is None:
            continue
        try:
            runstate.append_progress(
                record,
                status=outcome.status,
                run=os.path.relpath(outcome.folder, record),
                seed=outcome.seed,
                seconds=round(outcome.seconds, 3),
                error=outcome.error,
                redone=outcome.redone,
                stale=outcome.stale,
            )
        except OSError as exc:  # the progress bar misses this run; its folder is unaffected
            log.warning("could not append to %s: %s", record / runstate.PROGRESS, exc)
    return outcomes


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> list[dict[str, Any]]:
    if is_multirun():
        # never raise out of the launcher: one failing run must not stop the sweep
        return [asdict(o) for o in run_sweep_job(cfg)]
    try:
        return [{"folder": run_job(c), "status": "done"} for c in simulation_configs(cfg)]
    except DataError as exc:
        log.error("bad input: %s", exc)
        sys.exit(BAD_INPUT)


# Hydra's job logging for critmin run (configs/config.yaml: hydra/job_logging: stdout)
JOB_LOGGING = {
    "version": 1,
    "formatters": {"simple": {"format": "%(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "simple", "stream": "ext://sys.stdout"}
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "disable_existing_loggers": False,
}


def plain_run_config(argv: list[str]) -> DictConfig | None:
    """The config of a ``critmin run`` that needs nothing of Hydra's app but the config: one run
    (no ``-m``), only ``key=value`` overrides (no option, no ``hydra.`` key), composing without
    error. Composed once: Hydra's app composes twice (once to learn the run mode), ~0.1 s. None
    otherwise (the command goes through Hydra, which reports its own errors as before)."""
    from critmin.sim.compose import compose_checked

    if any(a.startswith("-") or a.lstrip("+~").startswith("hydra") for a in argv):
        return None
    try:
        return compose_checked(argv)
    except DataError:
        return None


def _plain_run(cfg: DictConfig) -> None:
    """What ``_app`` does for a single run, without Hydra's job machinery around it (the task
    config is the same: Hydra removes its own node before calling the task)."""
    import logging.config

    logging.config.dictConfig(JOB_LOGGING)
    try:
        for c in simulation_configs(cfg):
            run_job(c)
    except DataError as exc:
        log.error("bad input: %s", exc)
        sys.exit(BAD_INPUT)


def hydra_main() -> None:
    """``critmin run``: the Hydra app; a sweep with failed runs exits with status 1, bad input
    (including Hydra's own errors) with status 2 before anything is written. Ctrl-C or SIGTERM
    stops the workers, prints one line and exits with 130 or 143 (no traceback)."""
    from critmin.experiments import interrupt
    from critmin.experiments.sweep import interrupted, last_sweep

    try:
        precheck(sys.argv[1:])
    except DataError as exc:
        print(f"critmin run: bad input: {exc}", file=sys.stderr)
        sys.exit(BAD_INPUT)
    plain = plain_run_config(sys.argv[1:])
    try:
        with interrupt.terminate_as_interrupt(), hydra_errors_as_bad_input():
            _plain_run(plain) if plain is not None else _app()
    except KeyboardInterrupt as exc:
        interrupt.cleanup()
        if interrupted(exc) is None:
            print(
                f"critmin run: interrupted ({interrupt.signal_name(exc)}); the run was not finished",
                file=sys.stderr,
            )
        sys.exit(interrupt.exit_code(exc))
    summary = last_sweep()
    if summary is not None and summary.failed:
        sys.exit(1)
