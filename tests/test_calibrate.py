"""critmin calibrate: a tiny study writes its outputs, resumes, and rejects bad settings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from critmin.experiments import calibrate
from critmin.experiments.cli import main as cli
from critmin.sim import parameters
from critmin.sim.run import config_dir


def small_config(tmp_path: Path, **changes) -> Path:
    settings = yaml.safe_load((config_dir() / "calibrate" / "default.yaml").read_text())
    settings.update(
        episodes=["drc_cobalt_2025"],  # the cheapest episode: two runs to Dec 2025
        episode_weights={},
        parameters=[p for p in settings["parameters"] if p["key"].startswith("scenario.market.")][:3],
        startup_trials=1,
    )
    settings.update(changes)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_tiny_study_writes_its_outputs_and_resumes(tmp_path):
    config, out = small_config(tmp_path), tmp_path / "study"
    args = ["calibrate", "--config", str(config), "--jobs", "1", "--out", str(out)]
    assert cli([*args, "--budget", "2"]) == 0
    for name in (
        "study.db",
        "trials.csv",
        "fitted.yaml",
        "fitted_overrides.txt",
        "ranges.csv",
        "manifest.yaml",
    ):
        assert (out / name).is_file(), name
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and trials["state"].eq("COMPLETE").all()
    first = trials.iloc[0]
    assert first["defaults"] and first["scenario.market.kappa"] == pytest.approx(
        parameters.default("scenario.market.kappa")
    )  # the "before" point
    fitted = yaml.safe_load((out / "fitted.yaml").read_text())
    assert fitted["before"]["objective"] == pytest.approx(first["objective"], abs=1e-4)
    assert fitted["after"]["objective"] == pytest.approx(trials["objective"].min(), abs=1e-4)
    overrides = (out / "fitted_overrides.txt").read_text().split()
    assert [o.partition("=")[0] for o in overrides] == list(fitted["fitted"])
    # the fitted set is a config critmin validate (and critmin run) takes
    from critmin.sim.run import load_config

    cfg = load_config(["scenario=cobalt_2024", *overrides])
    assert cfg.scenario.market.kappa == pytest.approx(fitted["fitted"]["scenario.market.kappa"], rel=1e-5)
    # resume: the same folder with a larger budget adds only the missing evaluation
    assert cli([*args, "--budget", "3"]) == 0
    again = pd.read_csv(out / "trials.csv")
    assert len(again) == 3
    pd.testing.assert_frame_equal(again.iloc[:2][trials.columns], trials, check_dtype=False)
    ranges = pd.read_csv(out / "ranges.csv")
    assert set(ranges["parameter"]) == {p for p in fitted["fitted"]}
    assert (ranges["plausible_low"] <= ranges["fitted"]).all() and (
        ranges["fitted"] <= ranges["plausible_high"]
    ).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget": 0}, "key budget: expected a number >= 1"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"episodes": ["ree_quotas_2010"]}, "ree_quotas_2010"),
        (
            {"parameters": [{"key": "scenario.market.kappa", "range": [1.0, 0.5]}]},
            "expected [low, high] with low < high",
        ),
        ({"parameters": [{"key": "scenario.market.nope", "range": [0.1, 0.5]}]}, "not a numeric parameter"),
        ({"parameters": [{"key": "scenario.market.kappa", "range": [-1.0, 0.5]}]}, "high end"),
        ({"episode_weights": {"baseline_2024": 2}}, "not in episodes"),
    ],
)
def test_bad_settings_exit_2_naming_the_key(tmp_path, capsys, changes, message):
    if "parameters" in changes and changes["parameters"][0]["range"][0] < 0:
        message = "low end"
    config = small_config(tmp_path, **changes)
    assert cli(["calibrate", "--config", str(config), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_plausible_ranges_flag_parameters_that_barely_matter():
    params = [calibrate.Parameter("a", 0.0, 1.0, False, ""), calibrate.Parameter("b", 0.0, 1.0, False, "")]
    # the objective depends on a only: near-best trials pin a and spread b over its range
    rows = [
        {"number": i, "state": "COMPLETE", "objective": 1 + abs(a - 0.3), "a": a, "b": b}
        for i, (a, b) in enumerate(
            [(0.3, 0.0), (0.3, 0.9), (0.31, 0.5), (0.29, 0.2), (0.3, 1.0), (0.9, 0.4), (0.0, 0.6)]
        )
    ]
    ranges = calibrate.plausible_ranges(pd.DataFrame(rows), params, within=0.1).set_index("parameter")
    assert ranges.loc["a", "matters"] == "yes"
    assert ranges.loc["b", "matters"].startswith("barely")
    assert ranges.loc["a", "plausible_low"] == pytest.approx(0.29) and ranges.loc[
        "a", "plausible_high"
    ] == pytest.approx(0.31)


@pytest.mark.parametrize("path", sorted((config_dir() / "calibrate").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_study_config_is_valid(path):
    # the studies docs/calibration.md reports (default, licences, storage_speed) must stay
    # runnable as documented: settings checked, and every parameter a numeric row of the table
    settings, source = calibrate.load_settings(path.stem)
    calibrate.check_settings(settings, source)
    for p in settings["parameters"]:
        row = parameters.table().get(p["key"])
        assert row is not None and row.numeric, (path.name, p["key"])
