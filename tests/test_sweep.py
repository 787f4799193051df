"""Sweeps (`critmin run -m`): launchers, failure records and resume, batched seeds, `critmin collect`.

Sweeps run as subprocesses of the installed CLI on short runs; `critmin collect` runs in-process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from critmin.experiments import collect, runstate
from critmin.experiments.api import simulate
from critmin.sim.run import load_config, output_dir
from critmin.sim.world import data_root

SHORT = ["experiment=sweep", "scenario=ree_2024_short", "scenario.end=2024-06"]


def critmin(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "critmin.experiments.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)


def sweep_summary(stderr: str) -> dict[str, int]:
    """Counts from the sweep's closing line: 'sweep: N runs in Xs: D done, S skipped ..., F failed'."""
    m = re.search(
        r"sweep: (\d+) runs in [\d.]+s: (\d+) done, (\d+) skipped \(finished earlier\), (\d+) failed", stderr
    )
    assert m, stderr[-3000:]
    return dict(zip(["runs", "done", "skipped", "failed"], map(int, m.groups())))


def run_folders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def collected(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    assert collect.main([str(folder)]) == 0
    return pd.read_parquet(folder / "sweep.parquet"), pd.read_parquet(folder / "sweep_runs.parquet")


def processes_mentioning(text: str) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                out.append(f"{proc.name}: {cmdline[:200]}")
    return out


def test_joblib_and_ray_sweeps_collect_to_the_same_dataset(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_ray_launcher", reason="the cluster extra (Ray launcher) is not installed"
    )
    grid = [
        "scenario.market.kappa=0.2,0.4",
        "seed=0",
        "experiment.seeds_per_job=2",
    ]  # 2 jobs x 2 seeds
    done = critmin(
        "run", "-m", *SHORT, *grid, "launcher=joblib", "hydra.launcher.n_jobs=2", f"output_root={tmp_path / 'joblib'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert sweep_summary(done.stderr) == {"runs": 4, "done": 4, "skipped": 0, "failed": 0}
    assert "4/4" in done.stderr  # the progress line counted runs finished in the joblib workers

    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are length-limited
    try:
        done = critmin(
            "run", "-m", *SHORT, *grid, "launcher=ray", "hydra.launcher.ray.init.num_cpus=2",
            f"+hydra.launcher.ray.init._temp_dir={ray_tmp}", f"output_root={tmp_path / 'ray'}",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Started a local Ray instance" in done.stderr + done.stdout
        assert sweep_summary(done.stderr) == {"runs": 4, "done": 4, "skipped": 0, "failed": 0}
        assert processes_mentioning(ray_tmp) == []  # the local Ray instance stopped with the sweep
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    data, runs = {}, {}
    for name in ["joblib", "ray"]:
        root = tmp_path / name / "sweep"
        folders = run_folders(root)
        assert len(folders) == 4 and all(runstate.status(f) == "done" for f in folders.values())
        data[name], runs[name] = collected(root)
        # the swept parameter and seed of every row are those in the run's own manifest
        for folder in folders.values():
            cfg = yaml.safe_load((folder / "manifest.yaml").read_text())["config"]
            rows = data[name][data[name]["run_id"] == folder.name.rsplit("-", 1)[1]]
            assert len(rows) > 0
            assert set(rows["seed"]) == {cfg["seed"]}
            assert set(rows["scenario.market.kappa"]) == {cfg["scenario"]["market"]["kappa"]}
        pairs = set(map(tuple, runs[name][["scenario.market.kappa", "seed"]].to_numpy().tolist()))
        assert pairs == {(0.2, 0), (0.2, 1), (0.4, 0), (0.4, 1)}
        assert set(runs[name]["status"]) == {"done"}

    # output_root differs between the two sweeps, so run ids (a hash of the config) do too
    def canonical(df: pd.DataFrame) -> pd.DataFrame:
        df = df.drop(columns="run_id")
        return df.sort_values([c for c in df.columns if c != "value"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(canonical(data["joblib"]), canonical(data["ray"]))


def test_a_failed_run_is_recorded_and_a_rerun_retries_only_it(tmp_path):
    # one run reads its data from a mirror that is not there yet: a legitimate input failure that
    # passes the config checks and raises when the world is loaded
    mirror = tmp_path / "mirror" / "ree"
    args = ["run", "-m", *SHORT, f"scenario.data=ree,{mirror}", "seed=0", f"output_root={tmp_path}"]
    root = tmp_path / "sweep"

    first = critmin(*args, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]  # the sweep went on, then reported the failure
    assert sweep_summary(first.stderr) == {"runs": 2, "done": 1, "skipped": 0, "failed": 1}
    folders = run_folders(root)
    status = {name: runstate.status(f) for name, f in folders.items()}
    assert sorted(status.values()) == ["done", "failed"]
    (ok,) = [folders[n] for n, s in status.items() if s == "done"]
    (bad,) = [folders[n] for n, s in status.items() if s == "failed"]
    err = json.loads((bad / "error.json").read_text())
    assert err["status"] == "failed" and err["attempt"] == 1
    assert err["error_type"] == "DataError" and str(mirror) in err["message"]
    assert "Traceback" in err["traceback"]
    assert err["config"]["scenario"]["data"] == str(mirror) and err["config"]["seed"] == 0
    assert sorted(os.listdir(bad)) == ["error.json"]
    assert str(bad) in first.stderr  # the summary names the failed run

    data, runs = collected(root)
    assert runs.set_index("folder")["status"].to_dict() == {ok.name: "done", bad.name: "failed"}
    failed_row = runs[runs["status"] == "failed"].iloc[0]
    assert failed_row["error_type"] == "DataError" and str(mirror) in failed_row["error"]
    assert failed_row["scenario.data"] == str(mirror)
    assert set(data["run_id"]) == {ok.name.rsplit("-", 1)[1]}
    (record,) = (root / ".sweeps").iterdir()  # the sweep's record lists its runs
    assert sorted(collected(record)[1]["status"]) == ["done", "failed"]

    # the mirror arrives; the same sweep skips the finished run and retries the failed one (its
    # input data are there now, so the retry is another run identity: another folder, which
    # replaces the failed one)
    done_marker = (ok / "DONE").read_text(), (ok / "DONE").stat().st_mtime_ns
    ts_mtime = (ok / "timeseries.parquet").stat().st_mtime_ns
    shutil.copytree(data_root() / "ree", mirror)
    second = critmin(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sweep_summary(second.stderr) == {"runs": 2, "done": 1, "skipped": 1, "failed": 0}
    assert f"skipped (finished earlier): {ok}" in second.stdout
    assert ((ok / "DONE").read_text(), (ok / "DONE").stat().st_mtime_ns) == done_marker
    assert (ok / "timeseries.parquet").stat().st_mtime_ns == ts_mtime
    assert not bad.exists()  # the failure record went with the successful retry
    (retried,) = [f for n, f in run_folders(root).items() if f != ok]
    assert runstate.status(retried) == "done" and retried.name.startswith(bad.name.rsplit("-", 1)[0])
    _, runs = collected(root)
    assert set(runs["status"]) == {"done"} and len(runs) == 2
    assert len(list((root / ".sweeps").iterdir())) == 2  # one record per sweep

    # experiment.overwrite=true simulates finished runs again
    rerun = [
        "run",
        "-m",
        *SHORT,
        "scenario.data=ree",
        "seed=0",
        "experiment.overwrite=true",
        f"output_root={tmp_path}",
    ]
    third = critmin(*rerun, cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert sweep_summary(third.stderr) == {"runs": 1, "done": 1, "skipped": 0, "failed": 0}
    assert (ok / "DONE").stat().st_mtime_ns > done_marker[1]
    assert len(run_folders(root)) == 2  # the same folder: overwrite does not change the run's hash


def test_a_job_with_seeds_per_job_3_writes_the_runs_of_3_single_seeds(tmp_path):
    done = critmin(
        "run", "-m", *SHORT, "seed=5", "experiment.seeds_per_job=3", f"output_root={tmp_path}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Launching 1 jobs" in done.stdout + done.stderr
    assert sweep_summary(done.stderr) == {"runs": 3, "done": 3, "skipped": 0, "failed": 0}
    folders = run_folders(tmp_path / "sweep")
    assert len(folders) == 3
    for seed in (5, 6, 7):
        overrides = [*SHORT, f"seed={seed}", f"output_root={tmp_path}"]
        folder = Path(output_dir(load_config(overrides)))
        assert folder.name in folders  # the folder a single `critmin run seed=<s>` would write
        manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
        assert manifest["seed"] == seed and manifest["config"]["experiment"]["seeds_per_job"] == 1
        single = simulate(overrides).write(tmp_path / "single" / str(seed), plots=False, flows=False)
        for table in ["timeseries.parquet", "metrics.parquet", "final_demand.parquet"]:
            pd.testing.assert_frame_equal(pd.read_parquet(folder / table), pd.read_parquet(single / table))
        assert json.loads((folder / "summary.json").read_text()) == json.loads(
            (single / "summary.json").read_text()
        )


def _fake_run(root: Path, name: str, config: dict, *, status: str = "done", years: tuple = (2024,)) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if status == "failed":
        runstate.record_failure(
            folder, RuntimeError("boom"), config, requested_id=name[-4:], seed=config["seed"]
        )
        return folder
    (folder / "manifest.yaml").write_text(yaml.safe_dump({"run_id": name[-4:], "config": config}))
    (folder / "summary.json").write_text(json.dumps({"world_price_usd_per_t_by_year": {"x": {"2024": 1.5}}}))
    metrics = pd.DataFrame(
        {"year": list(years), "metric": "hhi", "region": "WORLD", "commodity": "x", "stage": "mine", "basis": "",
         "scope": "", "detail": "", "value": [float(config["seed"])] * len(years)}
    )  # fmt: skip
    metrics.to_parquet(folder / "metrics.parquet", index=False)
    if status == "done":
        runstate.mark_done(folder, run_id=name[-4:], requested_id=name[-4:], seed=config["seed"])
    return folder


def test_collect_derives_swept_parameters_and_lists_failed_runs(tmp_path):
    base = {"seed": 0, "output_root": "o", "scenario": {"k": 1, "data": "ree", "events": []}, "plots": False}
    _fake_run(tmp_path, "r-aaaa", base)
    _fake_run(
        tmp_path, "r-bbbb", {**base, "seed": 1, "scenario": {"k": 2.5, "data": ["ree", "ga"], "events": []}}
    )
    _fake_run(tmp_path, "r-cccc", {**base, "plots": True}, years=(2024, 2025))
    _fake_run(tmp_path, "r-dddd", {**base, "seed": 3}, status="failed")
    _fake_run(tmp_path, "r-eeee", {**base, "seed": 4}, status="incomplete")  # no marker: not collected
    (tmp_path / ".sweeps" / "x").mkdir(parents=True)  # sweep records are not runs
    data, runs = collected(tmp_path)
    assert list(data.columns[:5]) == ["run_id", "seed", "plots", "scenario.data", "scenario.k"]
    assert str(data["plots"].dtype) == "bool" and str(data["scenario.k"].dtype) == "float64"
    assert str(data["seed"].dtype) == "int64"
    by_run = data.groupby("run_id")
    assert by_run.size().to_dict() == {"aaaa": 2, "bbbb": 2, "cccc": 3}  # hhi per year + the world price
    b = data[data["run_id"] == "bbbb"].iloc[0]
    assert (b["seed"], b["scenario.k"], b["scenario.data"], b["plots"]) == (1, 2.5, '["ree", "ga"]', False)
    price = data[data["metric"] == "world_price_usd_per_t"]
    assert set(price["value"]) == {1.5} and set(price["region"]) == {"WORLD"}
    assert runs.set_index("folder")["status"].to_dict() == {
        "r-aaaa": "done", "r-bbbb": "done", "r-cccc": "done", "r-dddd": "failed", "r-eeee": "incomplete"
    }  # fmt: skip
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert (failed["run_id"], failed["seed"], failed["error_type"], failed["error"]) == (
        "dddd",
        3,
        "RuntimeError",
        "boom",
    )


def test_collect_names_a_folder_without_runs(tmp_path, capsys):
    assert collect.main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
