"""Run identity and reruns: a run's id covers its config, input data and code; a sweep rerun
redoes runs whose data or code changed and says why (``--reuse-stale`` keeps them); `critmin
collect` skips and lists damaged run folders and leaves superseded runs out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_sweep import SHORT, critmin, run_folders, sweep_summary

from critmin.experiments import collect, runstate
from critmin.sim.run import input_hashes, load_config, output_dir, run_id, source_sha256
from critmin.sim.world import data_root, load_world


def change_one_number(path: Path) -> None:
    """Raise the first facility's cash cost by 100 USD/t (one number of one CSV)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[0, "cash_cost_usd_per_t"] = str(float(df.loc[0, "cash_cost_usd_per_t"]) + 100)
    df.to_csv(path, index=False)


# ---------------------------------------------------------------------- identity (in process)
def test_input_hashes_are_those_of_the_files_the_world_loads(tmp_path):
    cfg = load_config(["scenario=ree_2024_short"])
    hashes = input_hashes(cfg)
    world = load_world(data_root() / "ree")
    assert sorted(hashes.values()) == sorted(world.files.values())
    assert {k.removeprefix("data/") for k in hashes} == set(world.files)
    # an absolute data folder is named by its path; a missing one hashes as missing, no error
    copy = tmp_path / "ree"
    shutil.copytree(data_root() / "ree", copy)
    moved = input_hashes(load_config(["scenario=ree_2024_short", f"scenario.data={copy}"]))
    assert moved == {k.replace("data/ree", str(copy)): v for k, v in hashes.items()}
    gone = input_hashes(load_config([f"scenario.data={tmp_path / 'nowhere'}"]))
    assert gone and set(gone.values()) == {"missing"}


def test_run_id_moves_with_one_data_number_and_only_with_it(tmp_path):
    copy = tmp_path / "ree"
    shutil.copytree(data_root() / "ree", copy)
    cfg = load_config(["scenario=ree_2024_short", f"scenario.data={copy}"])
    before, folder = run_id(cfg), output_dir(cfg)
    assert run_id(cfg) == before  # stable
    (copy / "facilities.csv").touch()  # a new modification time, same bytes: same id
    assert run_id(cfg) == before
    change_one_number(copy / "facilities.csv")
    assert run_id(cfg) != before
    assert output_dir(cfg).name.rsplit("-", 1)[0] == folder.name.rsplit("-", 1)[0]  # same name prefix


def test_source_hash_covers_content_and_names_not_caches(tmp_path):
    pkg = tmp_path / "sim"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "b.py").write_text("y = 2\n")
    base = source_sha256([pkg])
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "a.cpython-312.pyc").write_bytes(b"\0compiled")
    (pkg / "notes.txt").write_text("not code")
    assert source_sha256([pkg]) == base
    (pkg / "a.py").write_text("x = 2\n")  # a dirty working tree: its content counts
    edited = source_sha256([pkg])
    assert edited != base
    (pkg / "a.py").write_text("x = 1\n")
    assert source_sha256([pkg]) == base  # back to the same content: the same hash
    (pkg / "b.py").rename(pkg / "c.py")
    assert source_sha256([pkg]) not in (base, edited)


def test_stale_reason_names_what_changed():
    code = {"source_sha256": "a" * 64, "libraries": {"numpy": "2.0.0", "pandas": "3.0.0"}}
    old = {
        "inputs": {"data/ree/facilities.csv": "1", "data/ree/demand.csv": "2"},
        "code": code,
        "code_version": "0.1.0+gaaa",
    }
    same = {"config_id": "c", "inputs": dict(old["inputs"]), "code": code}
    assert runstate.stale_reason(old, same) == "run identity changed"
    data = {**same, "inputs": {**old["inputs"], "data/ree/facilities.csv": "9"}}
    assert runstate.stale_reason(old, data) == "input data changed (data/ree/facilities.csv)"
    new_code = {**same, "code": {**code, "source_sha256": "b" * 64}}
    assert (
        runstate.stale_reason(old, new_code, "0.1.0+gbbb.dirty")
        == "code changed (0.1.0+gaaa -> 0.1.0+gbbb.dirty)"
    )
    libs = {**same, "code": {**code, "libraries": {"numpy": "2.1.0", "pandas": "3.0.0"}}}
    assert runstate.stale_reason(old, libs) == "libraries changed (numpy 2.0.0 -> 2.1.0)"
    legacy = {"requested_id": "c", "seed": 0}  # a DONE marker from before run identity
    assert "before runs recorded" in runstate.stale_reason(legacy, same)


# ---------------------------------------------------------------------- reruns (subprocesses)
def test_a_data_change_reruns_the_affected_runs_and_says_why(tmp_path):
    """Two data folders swept (the packaged one and a copy): one number changed in the copy
    reruns the copy's run only, saying which file; --reuse-stale keeps the stale result."""
    copy = tmp_path / "mirror" / "ree"
    shutil.copytree(data_root() / "ree", copy)
    args = ["run", "-m", *SHORT, "scenario.end=2024-03", f"scenario.data=ree,{copy}", "seed=0"]
    args += [f"output_root={tmp_path}", "hydra.callbacks.sweep_progress.log_every_s=0"]
    root = tmp_path / "sweep"

    first = critmin(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sweep_summary(first.stderr) == {"runs": 2, "done": 2, "skipped": 0, "failed": 0}
    progress = [ln for ln in first.stderr.splitlines() if ln.startswith("sweep: ") and "runs done" in ln]
    assert progress and progress[-1].startswith("sweep: 2/2 runs done, 0 failed")  # lines, not a bar
    before = run_folders(root)
    (packaged,) = [f for f in before.values() if yaml.safe_load((f / "manifest.yaml").read_text())["config"]["scenario"]["data"] == "ree"]  # fmt: skip
    (mirrored,) = [f for f in before.values() if f != packaged]

    change_one_number(copy / "facilities.csv")
    reused = critmin(*args, "--reuse-stale", cwd=tmp_path)
    assert reused.returncode == 0, reused.stderr[-3000:]
    assert sweep_summary(reused.stderr) == {"runs": 2, "done": 0, "skipped": 2, "failed": 0}
    assert (
        f"sweep: 1 stale run reused (reuse_stale): input data changed ({copy}/facilities.csv)"
        in reused.stderr
    )
    assert run_folders(root) == before

    redo = critmin(*args, cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert sweep_summary(redo.stderr) == {"runs": 2, "done": 1, "skipped": 1, "failed": 0}
    assert f"sweep: 1 run redone: input data changed ({copy}/facilities.csv)" in redo.stderr
    assert f"skipped (finished earlier): {packaged}" in redo.stdout
    (new,) = set(run_folders(root).values()) - set(before.values())
    assert new.name.rsplit("-", 1)[0] == mirrored.name.rsplit("-", 1)[0]
    manifest = yaml.safe_load((new / "manifest.yaml").read_text())
    changed = hashlib.sha256((copy / "facilities.csv").read_bytes()).hexdigest()
    assert manifest["identity"]["inputs"][f"{copy}/facilities.csv"] == changed
    old = json.loads((mirrored / "DONE").read_text())
    assert old["superseded_by"] == new.name and "facilities.csv" in old["superseded_because"]
    assert runstate.status(mirrored) == "superseded" and runstate.status(new) == "done"

    again = critmin(*args, cwd=tmp_path)  # same config, data and code: same folders, skipped
    assert sweep_summary(again.stderr) == {"runs": 2, "done": 0, "skipped": 2, "failed": 0}
    assert "redone" not in again.stderr

    assert collect.main([str(root)]) == 0  # each config once: the superseded run is left out
    runs = pd.read_parquet(root / "sweep_runs.parquet").set_index("folder")["status"].to_dict()
    assert runs == {packaged.name: "done", new.name: "done", mirrored.name: "superseded"}
    data = pd.read_parquet(root / "sweep.parquet")
    assert set(data["run_id"]) == {packaged.name.rsplit("-", 1)[1], new.name.rsplit("-", 1)[1]}


# ---------------------------------------------------------------------- collect (in process)
def _finished_run(root: Path, name: str, seed: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    config = {"seed": seed, "scenario": {"k": seed}}
    (folder / "manifest.yaml").write_text(yaml.safe_dump({"run_id": name, "config": config}))
    (folder / "summary.json").write_text(json.dumps({"world_price_usd_per_t_by_year": {"x": {"2024": 1.5}}}))
    metrics = pd.DataFrame(
        {"year": [2024], "metric": "hhi", "region": "WORLD", "commodity": "x", "stage": "mine", "basis": "",
         "scope": "", "detail": "", "value": [float(seed)]}
    )  # fmt: skip
    metrics.to_parquet(folder / "metrics.parquet", index=False)
    files = runstate.file_hashes(folder, ("manifest.yaml", "summary.json", "metrics.parquet"))
    runstate.mark_done(folder, run_id=name, requested_id=name, seed=seed, files=files)
    return folder


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: _truncate(f / "manifest.yaml"), "manifest.yaml: changed or truncated"),
        (lambda f: _truncate(f / "metrics.parquet"), "metrics.parquet: changed or truncated"),
        (lambda f: (f / "summary.json").unlink(), "summary.json: missing"),
        (lambda f: (f / "DONE").write_text("{not json"), "DONE: not valid JSON"),
    ],
)
def test_collect_skips_and_lists_a_damaged_run(tmp_path, capsys, damage, expected):
    ok = [_finished_run(tmp_path, f"r-{i}", i) for i in range(3)]
    damage(ok[1])
    assert collect.main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 damaged run folder" in err and str(ok[1]) in err and expected in err, err
    res = collect.collect(tmp_path, tmp_path / "again.parquet", tmp_path / "again_runs.parquet")
    assert [s["folder"] for s in res["skipped"]] == [str(ok[1])] and expected in res["skipped"][0]["reason"]
    runs = res["runs"].set_index("folder")
    assert runs["status"].to_dict() == {"r-0": "done", "r-1": "damaged", "r-2": "done"}
    assert expected in runs.loc["r-1", "error"]
    data = pd.read_parquet(tmp_path / "sweep.parquet")
    assert sorted(set(data["run_id"])) == ["r-0", "r-2"]


def test_collect_skips_an_unreadable_file_of_a_run_finished_before_file_hashes(tmp_path, capsys):
    """A DONE marker without file hashes (an older run): a manifest that is not YAML, or a
    Parquet file that cannot be read, is found when it is read."""
    ok = [_finished_run(tmp_path, f"r-{i}", i) for i in range(3)]
    for f in ok:
        info = json.loads((f / "DONE").read_text())
        del info["files"]
        (f / "DONE").write_text(json.dumps(info))
    (ok[0] / "manifest.yaml").write_text("config: {seed: [1, 2\n")
    (ok[2] / "metrics.parquet").write_bytes(b"PAR1 not really")
    assert collect.main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 damaged run folder" in err and str(ok[0]) in err and str(ok[2]) in err
    data = pd.read_parquet(tmp_path / "sweep.parquet")
    assert set(data["run_id"]) == {"r-1"}
