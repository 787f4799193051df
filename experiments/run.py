"""``critmin run``: simulations as a Hydra app, one run or a sweep (``-m``).

A Hydra job simulates ``experiment.seeds_per_job`` seeds (``seed``, ``seed+1``, ...), each into
its own run folder, so Hydra's per-job cost (composing the config, about 0.2 s) is paid once per
batch. In a sweep a failing run is recorded in its folder (``error.json``) and the job goes on;
finished runs (``DONE`` marker) are skipped unless ``experiment.overwrite=true``. A single run
always simulates, and exits non-zero on failure (2 for bad input).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from critmin.experiments import runstate
from critmin.experiments.run_input import BAD_INPUT, check_writable, hydra_errors_as_bad_input, precheck
from critmin.sim.run import config_dir, output_dir, run_id, simulate
from critmin.sim.world import DataError

log = logging.getLogger("critmin")


@dataclass
class Outcome:
    """What happened to one simulation of a job."""

    folder: str
    seed: int
    status: str  # done | skipped | failed
    seconds: float = 0.0
    error: str = ""


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
        out.append(c)
    return out


def simulate_and_write(cfg: DictConfig, requested_id: str | None = None) -> tuple[Path, float, float]:
    """Simulate one config, write its folder and mark it DONE; returns (folder, simulate_s, write_s).
    Raises on failure (the folder is then left without a DONE marker)."""
    for name in ("mesa", "MESA"):  # Mesa 3 logs every step at INFO under "MESA.mesa.model"
        logging.getLogger(name).setLevel(logging.WARNING)
    requested_id = requested_id or run_id(cfg)
    check_writable(resolve(Path(cfg.output_root)))
    work = copy.deepcopy(cfg)  # simulate() adapts the metric checks to the world in place
    t0, c0 = time.perf_counter(), time.process_time()
    result = simulate(work)
    t1, c1 = time.perf_counter(), time.process_time()
    out = resolve(output_dir(work))
    try:
        runstate.unmark_done(out)
        result.write(out, plots=work.experiment.plots, flows=work.experiment.write_flows)
    except OSError as exc:
        raise DataError(f"config key output_root: cannot write the run folder {out}: {exc}") from None
    t2 = time.perf_counter()
    runstate.mark_done(
        out,
        run_id=result.manifest["run_id"],
        requested_id=requested_id,
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


def run_one(cfg: DictConfig, *, overwrite: bool) -> Outcome:
    """One simulation of a sweep: skipped if finished (unless ``overwrite``), failures recorded
    in the run folder's error.json instead of raised."""
    requested = run_id(cfg)
    folder = resolve(output_dir(cfg))
    seed = int(cfg.seed)
    if not overwrite and (done := runstate.find_finished(folder, requested)) is not None:
        log.info("skipped (finished earlier): %s", done)
        return Outcome(str(done), seed, "skipped")
    runstate.unmark_done(folder)
    t0 = time.perf_counter()
    try:
        out, _, _ = simulate_and_write(cfg, requested)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        hc = _hydra_cfg()
        try:
            info = runstate.record_failure(
                folder,
                exc,
                OmegaConf.to_container(cfg, resolve=True),
                requested_id=requested,
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
    return Outcome(str(out), seed, "done", time.perf_counter() - t0)


def run_sweep_job(cfg: DictConfig) -> list[Outcome]:
    """A multirun job: every seed of the batch, each reported to the sweep's progress log."""
    record = sweep_record()
    outcomes = []
    for sim_cfg in simulation_configs(cfg):
        outcome = run_one(sim_cfg, overwrite=bool(cfg.experiment.overwrite))
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


def hydra_main() -> None:
    """``critmin run``: the Hydra app; a sweep with failed runs exits with status 1, bad input
    (including Hydra's own errors) with status 2 before anything is written."""
    from critmin.experiments.sweep import last_sweep

    try:
        precheck(sys.argv[1:])
    except DataError as exc:
        print(f"critmin run: bad input: {exc}", file=sys.stderr)
        sys.exit(BAD_INPUT)
    with hydra_errors_as_bad_input():
        _app()
    summary = last_sweep()
    if summary is not None and summary.failed:
        sys.exit(1)
