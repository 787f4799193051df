"""`critmin run` end to end: the run folder a user gets."""

import json
import subprocess
import sys

import pandas as pd
import yaml


def test_critmin_run_writes_the_run_folder(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "critmin.experiments.cli",
        "run",
        "scenario=ree_2024_short",
        "scenario.end=2024-06",
        f"output_root={tmp_path}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (run,) = list((tmp_path / "default").iterdir())
    ts = pd.read_parquet(run / "timeseries.parquet")
    assert list(ts.columns) == ["month", "commodity", "region", "variable", "value"]
    flows = pd.read_parquet(run / "flows.parquet")
    assert {"month", "commodity", "origin", "destination", "tonnes"} <= set(flows.columns)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mass_balance_max_rel_error"] < 1e-9
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    assert manifest["seed"] == 0 and manifest["config"]["scenario"]["end"] == "2024-06"
    # written by libyaml's emitter where there is one: the text PyYAML's own safe_dump writes
    assert (run / "manifest.yaml").read_text() == yaml.safe_dump(manifest, sort_keys=False)
    assert all(len(h) == 64 for h in manifest["input_data_sha256"].values())
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "prices.png",
        "production.png",
        "supply_shares.png",
    ]


def test_bad_override_exits_with_a_clear_error(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "critmin.experiments.cli",
        "run",
        "scenario.market.kappa=-2",
        f"output_root={tmp_path}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "scenario.market.kappa" in done.stdout + done.stderr


def test_a_plain_critmin_run_composes_once_without_hydras_app_and_gets_the_same_config():
    from omegaconf import OmegaConf

    from critmin.experiments.run import plain_run_config
    from critmin.sim.run import load_config

    args = ["scenario.end=2024-06", "seed=3", "shock=magnet_ban_demo"]
    plain = plain_run_config(args)
    assert plain is not None and "hydra" not in plain
    assert OmegaConf.to_container(plain, resolve=True) == OmegaConf.to_container(
        load_config(args), resolve=True
    )
    # anything else goes through Hydra's app, which handles and reports it as before
    for argv in (
        ["-m", "seed=1,2"],
        ["--cfg", "job"],
        ["hydra.verbose=true"],
        ["seed=1,2"],
        ["+x._target_=os.system"],
        ["no_such_key=1"],
    ):
        assert plain_run_config(argv) is None, argv
