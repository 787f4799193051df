"""Progress of a ``critmin run -m`` sweep: runs done / total, failures, time left.

Hydra calls ``on_job_end`` where the job ran (a joblib or Ray worker, a SLURM node), so the bar
cannot count jobs from callbacks. Instead every simulation appends a line to the sweep's
``progress.jsonl`` (experiments/runstate.py) and :class:`SweepProgress`, registered in
``configs/config.yaml`` under ``hydra.callbacks``, follows that file from the launching process.
That works for every launcher whose workers share the file system with the launching process
(basic, joblib, Ray on this machine, SLURM with a shared home). The total is counted from the
sweep's overrides (Hydra's basic sweeper) times ``experiment.seeds_per_job``.

When the sweep ends the summary also says which runs were redone because their input data or
code changed since an earlier sweep, and which stale results were reused (``--reuse-stale``).
On Ctrl-C or SIGTERM (experiments/run.py, experiments/interrupt.py) :func:`interrupted` prints
one line instead: runs done, failed and not finished, and where the results are.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from critmin.experiments import progress, runstate

log = logging.getLogger("critmin")

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
_SEEDS = re.compile(r"^\+{0,2}experiment\.seeds_per_job=(.+)$")
_SEED = re.compile(r"^\+{0,2}seed=(.+)$")


@dataclass
class SweepSummary:
    """Counts of one sweep, from its progress log."""

    record: Path
    total: int | None
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run folder, error)
    seconds: float = 0.0
    outputs: Path | None = None  # where the run folders go (<output_root>/<experiment.name>)
    redone: Counter = field(default_factory=Counter)  # why stale runs were redone -> runs
    stale_reused: Counter = field(default_factory=Counter)  # why reused runs are stale -> runs

    @property
    def finished(self) -> int:
        return self.done + self.skipped + len(self.failed)


_last: SweepSummary | None = None
_active: SweepProgress | None = None  # the progress follower of the sweep under way


def last_sweep() -> SweepSummary | None:
    """Counts of the last sweep this process launched (None if none ran)."""
    return _last


def job_overrides(config: DictConfig) -> list[list[str]] | None:
    """The override list of every job Hydra's basic sweeper will launch, or None for another
    sweeper or a sweep it cannot expand without the config loader (e.g. ``glob``)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    args = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    try:
        overrides = OverridesParser.create().parse_overrides(args)
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # any sweep syntax the parser cannot expand alone
        return None
    return jobs


def planned_runs(config: DictConfig, jobs: list[list[str]]) -> tuple[int, int]:
    """(simulations, simulations asked for twice) over ``jobs``: each job runs
    ``experiment.seeds_per_job`` seeds from its ``seed``; overlapping seed ranges of otherwise
    identical jobs are counted once each time they are asked for."""
    total, seen, twice = 0, set(), 0
    for job in jobs:
        n, seed, rest = int(config.experiment.seeds_per_job), int(config.seed), []
        for o in job:
            if m := _SEEDS.match(o):
                n = int(m.group(1))
            elif m := _SEED.match(o):
                seed = int(m.group(1))
            else:
                rest.append(o)
        key = tuple(sorted(rest))
        for s in range(seed, seed + n):
            twice += (key, s) in seen
            seen.add((key, s))
        total += n
    return total, twice


class SweepProgress(Callback):
    """Progress bar (tqdm, on stderr) of a sweep, and its summary when it ends.

    ``bar``: ``auto`` draws a bar when stderr is a terminal and otherwise prints a progress line
    every ``log_every_s`` seconds (batch logs); ``true``/``false`` force either. Workers get a
    copy without the bar (see ``__getstate__``); only the launching process draws it."""

    def __init__(
        self, bar: str | bool = "auto", interval_s: float = 0.5, log_every_s: float = progress.DEFAULT_EVERY_S
    ) -> None:
        self.bar = bar
        self.interval_s = float(interval_s)
        self.log_every_s = float(log_every_s)
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"bar": self.bar, "interval_s": self.interval_s, "log_every_s": self.log_every_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    # -- launching process -------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _last, _active
        record = Path(str(config.hydra.sweep.dir))
        record.mkdir(parents=True, exist_ok=True)
        jobs = job_overrides(config)
        total, twice = planned_runs(config, jobs) if jobs is not None else (None, 0)
        if twice:
            log.warning(
                "%d runs are asked for by more than one job (seed steps smaller than "
                "experiment.seeds_per_job=%s?); each job simulates or skips them",
                twice,
                config.experiment.seeds_per_job,
            )
        if "ray" in str(OmegaConf.select(config, "hydra.launcher._target_") or "").lower():
            from critmin.experiments.interrupt import keep_sigterm_through_ray_init

            keep_sigterm_through_ray_init()  # SIGTERM stops a Ray sweep like Ctrl-C
        outputs = Path(str(config.output_root)) / str(config.experiment.name)
        self._summary = _last = SweepSummary(record, total, outputs=outputs)
        path = record / runstate.PROGRESS
        self._offset = path.stat().st_size if path.exists() else 0  # a record reused: new lines only
        self._path, self._t0, self._lock = path, time.monotonic(), threading.Lock()
        self._stop = threading.Event()
        use_bar = self.bar is True or (self.bar == "auto" and not progress.wants_lines())
        self._tqdm = None
        if use_bar:
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, desc="sweep", unit="run", file=sys.stderr, dynamic_ncols=True)
        self._lines = progress.ProgressLines("sweep", total, self.log_every_s)
        self._thread = threading.Thread(target=self._follow, name="critmin-sweep-progress", daemon=True)
        self._thread.start()
        _active = self

    def stop(self) -> SweepSummary:
        """Stop following the progress log, count its last lines, close the bar."""
        global _active
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        _active = None
        self._poll()
        s = self._summary
        s.seconds = time.monotonic() - self._t0
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        return s

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._thread is None:
            return
        lines = self._tqdm is None
        s = self.stop()
        if lines:
            self._lines.update(s.finished, len(s.failed), s.skipped)  # the last line, if not printed yet
        for reason, n in s.redone.most_common():
            print(f"sweep: {n} run{'s' * (n != 1)} redone: {reason}", file=sys.stderr)
        for reason, n in s.stale_reused.most_common():
            print(
                f"sweep: {n} stale run{'s' * (n != 1)} reused (reuse_stale): {reason}; "
                "rerun without --reuse-stale to redo them",
                file=sys.stderr,
            )
        print(
            f"sweep: {s.finished} runs in {s.seconds:.1f}s: {s.done} done, {s.skipped} skipped "
            f"(finished earlier), {len(s.failed)} failed; record: {s.record}",
            file=sys.stderr,
        )
        for folder, error in s.failed[:20]:
            print(f"  FAILED {folder}: {error} (see error.json there)", file=sys.stderr)
        if len(s.failed) > 20:
            print(f"  ... and {len(s.failed) - 20} more (critmin collect lists them)", file=sys.stderr)
        if s.total is not None and s.finished != s.total:
            print(f"sweep: {s.total} runs planned, {s.finished} reported", file=sys.stderr)
        sys.stderr.flush()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._poll()
            if self._tqdm is None:
                s = self._summary
                self._lines.update(s.finished, len(s.failed), s.skipped)

    def _poll(self) -> None:
        with self._lock:
            try:
                with open(self._path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except OSError:
                return
            data = data[: data.rfind(b"\n") + 1]  # complete lines only
            self._offset += len(data)
            s, new = self._summary, 0
            for raw in data.splitlines():
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                new += 1
                if rec.get("status") == "done":
                    s.done += 1
                    if rec.get("redone"):
                        s.redone[str(rec["redone"])] += 1
                elif rec.get("status") == "skipped":
                    s.skipped += 1
                    if rec.get("stale"):
                        s.stale_reused[str(rec["stale"])] += 1
                else:
                    folder = os.path.normpath(s.record / str(rec.get("run", "?")))
                    s.failed.append((folder, str(rec.get("error", ""))))
            if new and self._tqdm is not None:
                self._tqdm.set_postfix_str(f"failed={len(s.failed)}, skipped={s.skipped}", refresh=False)
                self._tqdm.update(new)


def interrupted(exc: BaseException) -> SweepSummary | None:
    """On Ctrl-C/SIGTERM of the launching process: stop following the sweep and print one line
    (runs done, failed, not finished, where the results are). None if no sweep was under way."""
    from critmin.experiments.interrupt import signal_name

    follower = _active
    if follower is None:
        return None
    s = follower.stop()
    not_finished = f", {s.total - s.finished} not finished" if s.total is not None else ""
    print(
        f"sweep interrupted ({signal_name(exc)}) after {s.seconds:.1f}s: {s.done} done, {s.skipped} skipped, "
        f"{len(s.failed)} failed{not_finished}; results so far in {s.outputs} (critmin collect {s.record}); "
        "the same command resumes it",
        file=sys.stderr,
        flush=True,
    )
    return s
