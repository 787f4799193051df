"""Benchmark: sweep throughput, overhead and memory (``python -m benchmarks.sweep``).

Declaration: each case is one ``critmin run -m`` subprocess with the joblib launcher, batched
seeds (``seed='range(0,N,B)' experiment.seeds_per_job=B``), ``experiment=sweep`` (no plots, flows
table or report) and the ree world over a short horizon, into a fresh output folder.

- wall time of the whole command: start-up, Hydra composing the jobs, worker start-up, runs,
  writes; runs per second = runs / wall.
- fraction of wall time outside simulation: ``1 - sum(simulate_s) / (workers x wall)``, with
  ``simulate_s`` the time each run spent in ``simulate()`` (model build, run, metrics; from its
  DONE marker), so idle workers count as overhead. ``sim_cpu_s_per_run`` is the CPU time of the
  same calls: well below ``sim_s_per_run`` means the workers waited for a core (other processes
  on the machine; ``load_avg`` is the mean 1-minute load average during the case).
- peak memory: the high-water resident set (VmHWM in /proc, sampled every 0.1 s) of the
  launching process and the largest of its descendants (the joblib workers; joblib runs a
  1-worker sweep in the launching process itself).
- ``critmin collect`` is then timed on the 200-run and the 20-run sweep folders, with its VmHWM.

Linux only (/proc); psutil is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class Measured:
    wall_s: float
    launcher_peak_mib: float
    worker_peak_mib: float
    returncode: int
    load: float  # mean 1-minute load average while it ran (other processes compete for cores)


def _ppid_and_hwm(pid: int) -> tuple[int, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
    return ppid, int(hwm) / 1024  # kB -> MiB


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run ``cmd``; sample the peak RSS of it and of all its descendants until it exits."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks: dict[int, float] = {}
    tree = {proc.pid}
    loads = []
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (info := _ppid_and_hwm(int(entry))) is not None:
                parents[int(entry)] = info
        grown = True
        while grown:  # descendants of the launching process, however deep
            new = {pid for pid, (ppid, _) in parents.items() if ppid in tree and pid not in tree}
            tree |= new
            grown = bool(new)
        for pid in tree:
            if pid in parents:
                peaks[pid] = max(peaks.get(pid, 0.0), parents[pid][1])
        time.sleep(0.1)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(stderr[-3000:], file=sys.stderr)
    workers = [v for pid, v in peaks.items() if pid != proc.pid]
    load = sum(loads) / max(len(loads), 1)
    return Measured(wall, peaks.get(proc.pid, 0.0), max(workers, default=0.0), proc.returncode, load)


def done_markers(folder: Path) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in folder.glob("*/DONE")]
    return pd.DataFrame(rows, columns=["seed", "simulate_s", "simulate_cpu_s", "write_s"])


def sweep_case(runs: int, workers: int, batch: int, end: str, root: Path, env: dict[str, str]) -> dict:
    out = root / f"runs{runs}_workers{workers}"
    cmd = [
        sys.executable, "-m", "critmin.experiments.cli", "run", "-m",
        "launcher=joblib", f"hydra.launcher.n_jobs={workers}",
        "experiment=sweep", "scenario=ree_2024_short", f"scenario.end={end}",
        f"seed=range(0,{runs},{batch})", f"experiment.seeds_per_job={batch}",
        f"output_root={out}",
    ]  # fmt: skip
    m = measure(cmd, env, root)
    done = done_markers(out / "sweep")
    if m.returncode != 0 or len(done) != runs:
        raise SystemExit(
            f"sweep of {runs} runs on {workers} workers: exit {m.returncode}, {len(done)} runs finished"
        )
    sim = float(done["simulate_s"].sum())
    write = float(done["write_s"].sum())
    return {
        "runs": runs,
        "workers": workers,
        "jobs": runs // batch,
        "finished": len(done),
        "wall_s": round(m.wall_s, 1),
        "runs_per_s": round(len(done) / m.wall_s, 2),
        "sim_s_per_run": round(sim / max(len(done), 1), 3),
        "sim_cpu_s_per_run": round(float(done["simulate_cpu_s"].sum()) / max(len(done), 1), 3),
        "write_s_per_run": round(write / max(len(done), 1), 3),
        "outside_sim": round(1 - sim / (workers * m.wall_s), 3),
        "outside_sim_and_write": round(1 - (sim + write) / (workers * m.wall_s), 3),
        "launcher_peak_MiB": round(m.launcher_peak_mib, 1),
        # joblib runs n_jobs=1 in the launching process itself: no worker processes
        "worker_peak_MiB": round(m.worker_peak_mib, 1) if workers > 1 else "(in launcher)",
        "load_avg": round(m.load, 1),
        "exit": m.returncode,
        "_folder": out / "sweep",
    }


def collect_case(folder: Path, runs: int, env: dict[str, str], root: Path) -> dict:
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "collect", str(folder)]
    m = measure(cmd, env, root)
    data = pd.read_parquet(folder / "sweep.parquet", columns=["run_id"])
    return {
        "collect": f"{runs}-run sweep",
        "wall_s": round(m.wall_s, 2),
        "rows": len(data),
        "runs": data["run_id"].nunique(),
        "peak_MiB": round(m.launcher_peak_mib, 1),
        "file_MiB": round((folder / "sweep.parquet").stat().st_size / 2**20, 2),
        "exit": m.returncode,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200, help="runs of the large sweep (default 200)")
    p.add_argument("--small", type=int, default=20, help="runs of the small sweep (default 20)")
    p.add_argument("--seeds-per-job", type=int, default=10, help="experiment.seeds_per_job (default 10)")
    p.add_argument("--end", default="2024-06", help="scenario.end of every run (default 2024-06)")
    p.add_argument("--keep", type=Path, help="write the sweeps here and keep them (default: a temp folder)")
    args = p.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = args.keep or Path(tempfile.mkdtemp(prefix="critmin-bench-sweep-"))
    root.mkdir(parents=True, exist_ok=True)
    b = args.seeds_per_job
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; folder {root}", flush=True
    )
    try:
        cases = [
            sweep_case(args.runs, 1, b, args.end, root, env),
            sweep_case(args.runs, 2, b, args.end, root, env),
            sweep_case(args.small, 2, b, args.end, root, env),
        ]
        collects = [collect_case(c["_folder"], c["runs"], env, root) for c in cases[1:]]
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nSweeps (joblib launcher, {b} seeds per job, experiment=sweep, ree_2024_short to {args.end}):")
    print(pd.DataFrame(cases).drop(columns="_folder").to_string(index=False))
    one, two = cases[0], cases[1]
    print(f"\nspeed-up 1 -> 2 workers: {two['runs_per_s'] / one['runs_per_s']:.2f}x")
    print("\ncritmin collect:")
    print(pd.DataFrame(collects).to_string(index=False))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
