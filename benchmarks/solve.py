"""Benchmark of ``critmin solve`` on the default world (``python -m benchmarks --only solve``).

A 500-evaluation study is not run here (the machine is shared): a short study of ``budget``
screened evaluations (default 20) on 2 workers gives the screen's evaluations per minute and the
full check's seconds per run; the time of a 500-evaluation study is extrapolated from them,
with the full check at its largest (``full_check.candidates`` + 1 mixes per mode, every seed ×
every shock) and the refinement at its largest (every instrument dropped once and
``refine_steps`` bisection steps, per mode and target)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def measure(budget: int = 20, jobs: int = 2, env: dict | None = None) -> dict:
    from critmin.experiments import solve_plan

    settings, _ = solve_plan.load_settings("default")
    with tempfile.TemporaryDirectory(prefix="critmin-bench-solve-") as name:
        out = Path(name)
        t = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "critmin.experiments.cli",
                "solve",
                "--budget",
                str(budget),
                "--jobs",
                str(jobs),
                "--out",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        if run.returncode != 0:
            raise SystemExit(f"critmin solve failed:\n{run.stderr[-3000:]}")
        (folder,) = [p for p in out.iterdir() if p.is_dir()]
        manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    n_eval = sum(manifest["evaluations"].values())
    search_s = manifest["seconds"]["search"]
    check_s = manifest["seconds"]["total"] - search_s
    runs_per_candidate = len(manifest["seeds"]) * len(manifest["shocks"])
    check_runs = manifest["full_checks"] * runs_per_candidate
    per_eval = search_s / n_eval  # wall seconds per screened evaluation with `jobs` workers
    per_check_run = check_s / check_runs if check_runs else per_eval / len(manifest["screen"]["seeds"])
    modes = len(settings["modes"])
    most_checks = modes * (settings["full_check"]["candidates"] + 1) * runs_per_candidate
    most_refine = modes * 2 * (len(settings["instruments"]) + settings["refine_steps"])
    est = 500 * per_eval + most_refine * per_eval + most_checks * per_check_run
    return {
        "evaluations": n_eval,
        "evaluations_per_min": 60 / per_eval,
        "full_check_runs": check_runs,
        "seconds_per_full_check_run": per_check_run,
        "wall_s": wall,
        "estimate_500_s": est,
        "fits_15_min": est <= 900,
    }


def rows(budget: int = 20, env: dict | None = None) -> list[dict]:
    """The harness's rows (figure, measured, target, met)."""
    m = measure(budget, env=env)
    rate, est = m["evaluations_per_min"], m["estimate_500_s"] / 60
    return [
        {
            "figure": f"critmin solve: screened evaluations per minute (default world, {m['evaluations']} "
            "measured, 2 workers)",
            "measured": f"{rate:.1f} /min",
            "target": ">= 34 /min (500 in 15 min)",
            "met": "yes" if rate >= 500 / 15 else "NO",
        },
        {
            "figure": f"critmin solve: 500 evaluations + refinement + largest full check (extrapolated; "
            f"{m['seconds_per_full_check_run']:.2f} s per full-check run)",
            "measured": f"{est:.1f} min",
            "target": "<= 15 min",
            "met": "yes" if m["fits_15_min"] else "NO",
        },
    ]


if __name__ == "__main__":
    print(measure())
