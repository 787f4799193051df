"""A run's complete result: the engine's tables (:class:`~critmin.sim.run.ModelRun`) with the
metrics, the ``dependency`` block of summary.json, the plots and report.html added.

The analysis layer reads what a run produced and never changes it; the engine never imports it.
Two steps touch a run of :func:`critmin.simulate` (:mod:`critmin.experiments.api`):

- before the run, :func:`fit_metrics_to_world` keeps the metric checks whose commodity the world
  has and checks the metric settings against it (a bad region or stage fails before any month);
- after it, :func:`complete` computes the metrics from the run's tables.
"""

from __future__ import annotations

import csv
import gc
import logging
import os
import select
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from critmin.analysis import definitions, metrics
from critmin.sim.cache import memo, release_memory
from critmin.sim.config import DependencyCheck
from critmin.sim.run import ModelRun, warn_once
from critmin.sim.world import DataError, data_root

log = logging.getLogger("critmin")


@dataclass
class Result(ModelRun):
    """Tables and headline figures of one run, with its metrics."""

    # the metric tables (critmin.analysis.metrics.compute) and all of them as one tidy table ("tidy")
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def trace(
        self, region: str, commodity: str = "ndfeb_magnet", year: int | None = None, **kw: Any
    ) -> pd.DataFrame:
        """Where a region's material came from, stage by stage (see :func:`critmin.analysis.metrics.trace`)."""
        return metrics.trace(self, region, commodity, year, **kw)

    def dependency(self, commodity: str, stage: str, **definition: Any) -> pd.DataFrame:
        """Single-supplier dependency path per year under the run's default definition, with
        any of region, basis, scope, outside overridden."""
        tables = metrics.Tables.from_result(self)
        return metrics.dependency(tables, metrics.default_definition(tables, commodity, stage, **definition))

    def write(
        self,
        outdir: Path,
        plots: bool = True,
        flows: bool = True,
        *,
        release: bool = False,
        plots_child: PlotChild | None = None,
    ) -> Path:
        """Write the run's tables, summary.json, manifest.yaml, metrics.parquet, report.html
        (unless experiment.metrics.report is false) and plots/ to ``outdir``. ``release``: drop
        the flows and consumption-origin tables from this result once nothing left to write
        reads them (``critmin run``, which discards the result: the plots then draw ~26 MiB
        lower, at the run's peak). ``plots_child``: a process already drawing the plots into
        ``outdir/plots`` (:func:`plots_in_child`): waited for after the tables and the report
        are written, instead of drawing them here (they are drawn here if it failed)."""
        release_memory()  # what the simulation freed: each phase below starts lower
        child = plots_child if plots else None
        if plots_child is not None and not plots:
            plots_child.stop()  # no plots wanted after all
        try:
            outdir = super().write(outdir, flows=flows, release=release)
            if release:  # written; the report and plots read neither its values nor its rows
                self.flows = _emptied(self.flows)
                self.trade_cells = None  # nor the cells it was built from (its origin block)
            if self.metrics:
                self.metrics["tidy"].to_parquet(outdir / "metrics.parquet", index=False)
            settings = self.manifest.get("config", {}).get("experiment", {}).get("metrics", {})
            report = bool(self.metrics) and settings.get("report", True)
            if plots or report:
                load_matplotlib()
            # the report before the plots: its origin trace reads the consumption-origin table
            if report:
                release_memory()
                from critmin.analysis.report import write_report

                write_report(self, outdir / "report.html")
            if release:  # and the cells it is built from (the metrics are computed)
                self.consumption_origin = _emptied(self.consumption_origin)
                self.origin_cells = None
        except BaseException:
            if child is not None:
                child.stop()
            raise
        if plots and (child is None or not child.finished()):
            from critmin.analysis.plots import write_plots

            release_memory()
            write_plots(self, outdir / "plots")
        return outdir


def load_matplotlib() -> None:
    """Import what the report and the plots draw with, once per process, and keep the objects
    it builds (~70k, alive as long as the process, like the modules ``import critmin`` froze)
    out of the garbage collector's scans: the collection that frees each figure once saved
    then costs ms instead of ~0.05 s. Whatever else is alive at that moment is frozen too, once
    per process (its cyclic garbage, if any, stays)."""
    if "matplotlib.backends.backend_agg" in sys.modules:
        return
    import matplotlib.backends.backend_agg
    import matplotlib.figure
    import matplotlib.lines
    import matplotlib.patches
    import matplotlib.ticker  # noqa: F401

    gc.freeze()


# how long a forked plotting process may take before it is taken for stuck (its plots are then
# drawn in the parent): ~0.5 s on an idle machine
PLOT_CHILD_TIMEOUT_S = 120.0


class PlotChild:
    """A forked process drawing a run's plots (:func:`plots_in_child`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._done = False

    def finished(self, timeout: float = PLOT_CHILD_TIMEOUT_S) -> bool:
        """Wait for the process; True if it drew every plot. False if it failed or took longer
        than ``timeout`` (it is then stopped): the caller draws the plots itself, so a failure
        is raised there, with its traceback, as without the process."""
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (an old kernel): wait without a limit
            fd = None
        if fd is not None:
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            if not ready:
                log.warning("plots: the drawing process took over %.0f s; drawing them here", timeout)
                self.stop()
                return False
        _, status = os.waitpid(self.pid, 0)
        self._done = True
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.debug("plots: the drawing process ended with status %d; drawing them here", code)
        return code == 0

    def stop(self) -> None:
        """End the process (the write failed or was interrupted) and reap it."""
        if self._done:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self._done = True


def spare_core() -> bool:
    """Whether a core is likely idle for a plotting process: this process may run on two or
    more cores and the load average of the last minute is below their number. Linux shares a
    busy machine's time between sessions (autogroups), not processes, so a second process of
    this run gains only time that nobody else wants. Measured with 2 cores (``critmin run``,
    forked vs drawn in the process): 1.10 vs 1.60 s at a load of 1.8; 1.95 vs 1.78 s at a
    load of 3 from other sessions (the child's own matplotlib import and copied pages, for no
    time gained)."""
    try:
        cores = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cores >= 2 and load < cores


def plots_in_child(result: ModelRun | Callable[[], ModelRun], folder: Path) -> PlotChild | None:
    """Fork a process that draws ``result``'s plots into ``folder`` (what
    :func:`critmin.analysis.plots.write_plots` reads of a run: its timeseries, so the engine's
    tables suffice, before the metrics; ``result`` may be a function that makes them, called
    in the child) and exits (status 0 when all are written). A single ``critmin run`` draws
    its plots so while it collects its tables, computes the metrics and writes the tables and
    the report (the plots were a third of its time, and a second core is usually free); it
    waits for the process before it marks the run done (:meth:`Result.write`). None where
    forking is not used: other than Linux (macOS frameworks are not fork-safe), with Python
    threads running (one could hold a lock the child needs), or without a core to spare
    (:func:`spare_core`).

    The child imports matplotlib itself (:func:`load_matplotlib`): this process imports it
    later, for the report, once the tables are written and the flows released (imported before
    the fork, its ~20 MiB sat on top of this process's peak). The child shares this process's
    pages until either writes them, so what it holds of its own is the figures and
    matplotlib. The libraries' own threads (OpenBLAS's workers, Arrow's jemalloc and thread
    pool) do not exist in the child; OpenBLAS, jemalloc and Arrow prepare for a fork
    (pthread_atfork) and start theirs again in the child if it needs them. Python warns about
    any fork of a process with threads (a DeprecationWarning); it is silenced for this fork
    alone. Should the child fail or hang anyway, the plots are drawn in this process
    (:meth:`PlotChild.finished`)."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1 or not spare_core():
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        return PlotChild(pid)
    code = 1  # the child: draw, then leave at once (no atexit handlers, no parent's buffers)
    try:
        from critmin.analysis.plots import write_plots

        load_matplotlib()
        write_plots(result() if callable(result) else result, folder)
        code = 0
    except BaseException:  # the parent draws them again and raises the error there
        pass
    finally:
        os._exit(code)


def _emptied(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without its rows (same columns and types), as a copy: a slice would be a view
    that keeps the whole table's arrays."""
    return table.iloc[:0].copy()


def complete(run: ModelRun, skipped: list[str] | tuple[str, ...] = ()) -> Result:
    """The run with its metrics, read from its tables and its config's ``experiment.metrics``
    (in the manifest). ``skipped``: commodities whose checks :func:`fit_metrics_to_world` dropped
    before the run (reported in summary.json and as warnings). ``run`` is not changed."""
    result = Result(**run.field_values())  # a table not yet built is not built here
    result.summary = dict(run.summary)
    tables = metrics.Tables.from_result(result)
    base = tables.settings.get("baseline_run")
    result.metrics = metrics.compute(tables, metrics.Tables.from_dir(base) if base else None)
    result.metrics["definitions"] = definitions.definitions_table(tables, metrics.shown_years(tables))
    result.metrics["tidy"] = metrics.tidy(tables, result.metrics)
    result.summary["dependency"] = metrics.summary_block(tables, result.metrics)
    result.summary["dependency"]["skipped"] = list(skipped)
    notes = [f"experiment.metrics: no {c} in this world; its dependency checks are skipped" for c in skipped]
    for text in notes:
        warn_once(text)
    result.warnings = [*run.warnings, *notes]
    return result


def fit_metrics_to_world(cfg: DictConfig, world: dict[str, Any], demanded: list[str]) -> list[str]:
    """Keep the metric checks and benchmarks whose commodity this world has (a gallium run has
    no magnets); with none left, check every commodity that final demand buys (``demanded``) at
    every origin stage. Changes ``cfg.experiment.metrics`` in place, then checks it against the
    world (:func:`critmin.analysis.metrics.check_settings`). ``world``: countries, commodity_stage
    and stages, as :func:`critmin.sim.run.world_meta` gives them. Returns the commodities whose
    checks were dropped, sorted."""
    m = cfg.experiment.metrics
    present = set(world["commodity_stage"])
    known = known_commodities() | present
    for key, items in (("checks", m.checks), ("benchmarks", m.benchmarks)):
        for i, item in enumerate(items):
            if item.commodity not in known:
                raise DataError(
                    f"config key experiment.metrics.{key}[{i}].commodity: unknown commodity "
                    f"{item.commodity!r}; expected one of {sorted(known)}"
                )
    skipped = [c.commodity for c in m.checks if c.commodity not in present]
    skipped += [b.commodity for b in m.benchmarks if b.commodity not in present]
    checks = [c for c in m.checks if c.commodity in present]
    if not checks:
        checks = [DependencyCheck(commodity=c, stages=list(world["stages"])) for c in demanded]
    benchmarks = [b for b in m.benchmarks if b.commodity in present]
    if skipped or len(checks) != len(m.checks):  # else both lists stay as they are
        with open_dict(cfg):
            m.checks = checks
            m.benchmarks = benchmarks
    settings = OmegaConf.to_container(m, resolve=True, throw_on_missing=False)
    tables = metrics.Tables(
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        world["countries"],
        world["commodity_stage"],
        world["stages"],
        settings=settings,
    )
    metrics.check_settings(settings, tables)
    return sorted(set(skipped))


def known_commodities() -> set[str]:
    """Commodities of every packaged chain (data/*/commodities.csv): a metric check may name one
    that this run's world lacks (it is skipped, with a warning), but not one no chain has. Read
    once per process while the files are unchanged (path, size, modification time)."""
    paths = sorted(data_root().glob("*/commodities.csv"))
    key = tuple((str(p), *_stat(p)) for p in paths)
    return set(memo("known_commodities", key, lambda: frozenset(_read_commodities(paths))))


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


# what pandas.read_csv reads as missing (its default na_values): such a cell names no commodity
_MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
            "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}  # fmt: skip


def _read_commodities(paths: list[Path]) -> set[str]:
    """The ``commodity`` column of each file (the csv module: pandas cost ~0.5 ms a file)."""
    out: set[str] = set()
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                header = next(reader, [])
                if "commodity" not in header:
                    continue  # the chain's own validation reports a broken file when it is used
                at = header.index("commodity")
                out |= {row[at] for row in reader if len(row) > at and row[at] not in _MISSING}
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
    return out
