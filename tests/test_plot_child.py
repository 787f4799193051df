"""A single ``critmin run`` draws its plots in a forked process while it writes the rest
(analysis/results.py: plots_in_child, PlotChild): the same files as drawn in the process itself,
a failed or stuck child is replaced by drawing them in the process, and the run waits for it."""

from __future__ import annotations

import os
import sys
import time

import pytest

from critmin.analysis import plots, results
from critmin.sim.run import load_config, run_model

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the plots are forked on Linux only"
)

NAMES = ["prices.png", "production.png", "supply_shares.png"]


@pytest.fixture(scope="module", autouse=True)
def no_other_threads():
    """The run forks only in a process with no other thread (a fork copies locks other threads may
    hold). Earlier tests of the suite leave two libraries' helper threads behind: loky's executor
    (critmin compare and sweeps on joblib) and tqdm's monitor; stop them, as a fresh
    ``critmin run`` process never had them."""
    import threading

    from joblib.externals.loky import get_reusable_executor
    from tqdm import tqdm

    get_reusable_executor().shutdown(wait=True, kill_workers=True)
    if tqdm.monitor is not None:
        tqdm.monitor.exit()
        tqdm.monitor = None
    deadline = time.monotonic() + 10
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    assert not others, f"threads a run would not fork with: {others}"


@pytest.fixture(autouse=True)
def a_spare_core(monkeypatch):
    """The tests fork whatever the machine's load (``spare_core`` is tested on its own)."""
    monkeypatch.setattr(results, "spare_core", lambda: True)


@pytest.fixture(scope="module")
def run():
    return run_model(load_config(["scenario.end=2024-12"]))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_child_draws_the_same_files_as_the_process_itself(run, tmp_path):
    here = plots.write_plots(run, tmp_path / "here")
    child = results.plots_in_child(run, tmp_path / "child")
    assert child is not None and child.pid != os.getpid()
    assert child.finished()
    assert _gone(child.pid)  # reaped
    assert sorted(p.name for p in (tmp_path / "child").iterdir()) == NAMES
    for path in here:
        assert (tmp_path / "child" / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_child_may_make_the_run_it_draws(run, tmp_path):
    """``critmin run`` forks at the end of the model's run: the child makes the timeseries."""
    here = plots.write_plots(run, tmp_path / "here")
    made = []

    def make():
        made.append(os.getpid())
        return run

    child = results.plots_in_child(make, tmp_path / "child")
    assert child.finished()
    assert made == []  # called in the child only
    for path in here:
        assert (tmp_path / "child" / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_failed_child_is_replaced_by_drawing_here(run, tmp_path, monkeypatch):
    parent, real = os.getpid(), plots.write_plots

    def fails_in_child(result, folder):
        if os.getpid() != parent:
            raise RuntimeError("planted failure in the drawing process")
        return real(result, folder)

    monkeypatch.setattr(plots, "write_plots", fails_in_child)
    complete = results.complete(run)
    child = results.plots_in_child(complete, tmp_path / "run" / "plots")
    out = complete.write(tmp_path / "run", plots_child=child)
    assert _gone(child.pid)
    assert sorted(p.name for p in (out / "plots").iterdir()) == NAMES


def test_an_error_of_the_plots_is_raised_in_the_process(run, tmp_path, monkeypatch):
    def fails(result, folder):
        raise RuntimeError("planted failure of the plots")

    monkeypatch.setattr(plots, "write_plots", fails)
    complete = results.complete(run)
    child = results.plots_in_child(complete, tmp_path / "run" / "plots")
    with pytest.raises(RuntimeError, match="planted failure of the plots"):
        complete.write(tmp_path / "run", plots_child=child)


def test_a_stuck_child_is_stopped_after_the_timeout(run, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "write_plots", lambda result, folder: time.sleep(60))
    child = results.plots_in_child(run, tmp_path / "plots")
    t = time.perf_counter()
    assert not child.finished(timeout=0.5)
    assert time.perf_counter() - t < 10
    assert _gone(child.pid)


def test_a_failed_write_stops_the_child(run, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "write_plots", lambda result, folder: time.sleep(60))
    complete = results.complete(run)
    child = results.plots_in_child(complete, tmp_path / "run" / "plots")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "timeseries.parquet").mkdir()  # the table cannot be written there
    with pytest.raises(OSError):
        complete.write(tmp_path / "run", plots_child=child)
    assert _gone(child.pid)


def test_no_child_with_python_threads_running(run, tmp_path):
    import threading

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert results.plots_in_child(run, tmp_path / "plots") is None
    finally:
        stop.set()
        worker.join()


def test_no_child_without_a_spare_core(run, tmp_path, monkeypatch):
    monkeypatch.undo()  # the real check
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 3.0, 2.0))
    assert not results.spare_core()
    assert results.plots_in_child(run, tmp_path / "plots") is None  # busy: drawn in the process
    monkeypatch.setattr(os, "getloadavg", lambda: (1.7, 1.0, 1.0))
    assert results.spare_core()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not results.spare_core()  # one core: nothing to gain
