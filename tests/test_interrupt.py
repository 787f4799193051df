"""Ctrl-C (SIGINT) and SIGTERM to the parent of a sweep or a comparison: its worker processes
stop, its joblib/loky files leave /dev/shm, one summary line and no traceback, exit 130 / 143.

Each test starts the CLI in its own session (so every process it starts can be found by its
session id), waits until runs are under way in worker processes, signals the parent only, and
waits a bounded time for everything to end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_sweep import SHORT

SHM = Path("/dev/shm")
RUNS = 60  # per sweep or comparison


def session(sid: int) -> dict[int, str]:
    """pid -> command line of every process in session ``sid``."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
        except (OSError, IndexError, ValueError):
            continue
    return out


def shm_files_of(pids: set[int]) -> list[str]:
    """joblib/loky entries in /dev/shm named after one of ``pids``."""
    if not SHM.is_dir():
        return []
    return sorted(
        p.name
        for p in SHM.iterdir()
        if ("joblib" in p.name or "loky" in p.name) and any(f"{pid}" in p.name for pid in pids)
    )


def wait_for(what: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(step)
    return what()


def start(args: list[str], cwd: Path) -> tuple[subprocess.Popen, Path]:
    err = cwd / "stderr.txt"
    cmd = [sys.executable, "-m", "critmin.experiments.cli", *args]
    with open(cwd / "stdout.txt", "wb") as out, open(err, "wb") as errf:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=errf, start_new_session=True)
    return proc, err


def interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, set[int]]:
    """Signal the parent; returns its exit status and every pid its session had before."""
    pids = set(session(proc.pid))
    os.kill(proc.pid, sig)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the parent did not exit within 60 s of the signal")
    return code, pids


def assert_all_gone(proc: subprocess.Popen, pids: set[int]) -> None:
    left = {}
    if not wait_for(lambda: not session(proc.pid), 15):
        left = session(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"processes left running: {left}"
    assert shm_files_of(pids) == []


@pytest.mark.parametrize(
    "sig, code, said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_an_interrupted_joblib_sweep_stops_its_workers_and_says_where_the_results_are(
    tmp_path, sig, code, said
):
    # enough runs that the sweep is still going when the signal comes (a run takes ~0.3 s)
    args = ["run", "-m", *SHORT, "scenario.end=2025-12", f"seed=range(0,{RUNS})", "launcher=joblib"]
    args += ["hydra.launcher.n_jobs=2", f"output_root={tmp_path}"]
    proc, err = start(args, tmp_path)

    def a_run_done() -> bool:
        return any(p.stat().st_size > 0 for p in (tmp_path / "sweep" / ".sweeps").glob("*/progress.jsonl"))

    assert wait_for(a_run_done, 240), err.read_text()[-3000:]
    workers = [c for p, c in session(proc.pid).items() if p != proc.pid and "python" in c]
    assert len(workers) >= 2, session(proc.pid)  # the signal reaches a sweep with live workers
    status, pids = interrupt(proc, sig)
    text = err.read_text()
    assert status == code, text[-3000:]
    assert "Traceback" not in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("sweep interrupted")]
    assert line.startswith(f"sweep interrupted ({said}) after ")
    assert f"results so far in {tmp_path / 'sweep'}" in line and "critmin collect" in line
    done = int(line.split(": ", 1)[1].split(" done")[0])
    not_finished = int(line.split(" failed, ")[1].split(" not finished")[0])
    assert done >= 1 and not_finished >= 1 and done + not_finished <= RUNS
    assert_all_gone(proc, pids)


def test_an_interrupted_comparison_stops_its_workers_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    args = [
        "compare",
        "--mixes",
        "none,stockpile",
        "--seeds",
        str(RUNS // 2),
        "--jobs",
        "2",
        "--progress-every",
        "0",
    ]
    args += ["--out", str(out), "scenario=ree_2024_short", "scenario.end=2025-12"]
    proc, err = start(args, tmp_path)
    assert wait_for(lambda: f"compare: 1/{RUNS} runs done" in err.read_text(), 240), err.read_text()[-3000:]
    status, pids = interrupt(proc, signal.SIGINT)
    text = err.read_text()
    assert status == 130, text[-3000:]
    assert "Traceback" not in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("compare interrupted")]
    assert line.startswith("compare interrupted (Ctrl-C): ") and "not finished; nothing written" in line
    assert not out.exists() or not any(out.iterdir())
    assert_all_gone(proc, pids)
