"""`critmin compare`: mixes × a shock × seeds → comparison.parquet, summary.csv, manifest, report.

Short runs (ree_2024_short: Jan 2024 - Dec 2025) keep the file fast; nothing here asserts a model
number, only structure and invariants that hold whatever the calibration.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from critmin.analysis import comparison
from critmin.experiments import compare
from critmin.sim.run import config_dir
from critmin.sim.world import data_root

TINY = [
    "--mixes",
    "none,stockpile",
    "--shock",
    "magnet_ban_demo",  # China halts magnet exports Apr-Sep 2025
    "--seeds",
    "2",
    "scenario=ree_2024_short",
]


def only_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two mixes × two seeds under the magnet ban, in two worker processes."""
    out = tmp_path_factory.mktemp("compare")
    code = compare.main([*TINY, "--jobs", "2", "--out", str(out)])
    folder = only_folder(out)
    return code, folder, pd.read_parquet(folder / "comparison.parquet")


def test_tiny_comparison_writes_one_row_set_per_mix_and_seed(tiny):
    code, folder, tidy = tiny
    assert code == 0
    assert folder.name.startswith("alliance-magnet_ban_demo-")
    assert list(tidy.columns) == comparison.TIDY_COLUMNS
    # under a shock, the no-shock reference (no instruments) runs with the same seeds
    ref = tidy[tidy["mix"] == comparison.REFERENCE]
    assert sorted(ref["seed"].unique()) == [0, 1]
    assert set(ref["metric"]) >= {comparison.PEAK_RATIO, comparison.LOW_RATIO}
    tidy = tidy[tidy["mix"] != comparison.REFERENCE]
    runs = tidy.groupby(["mix", "seed"])
    assert sorted(runs.groups) == [("none", 0), ("none", 1), ("stockpile", 0), ("stockpile", 1)]
    # every run reports the same metrics, checks and years (spending by instrument: where there is some)
    same = tidy[tidy["metric"] != comparison.FISCAL_ITEM]
    shapes = {k: tuple(sorted(g.groupby("metric").size().items())) for k, g in same.groupby(["mix", "seed"])}
    assert len(set(shapes.values())) == 1
    metrics = set(tidy["metric"])
    assert {
        comparison.DEPENDENCY,
        comparison.TARGET_MET,
        comparison.UNMET_SHARE,
        comparison.WORLD_PRICE,
        comparison.PEAK_RATIO,
    } <= metrics
    dep = tidy[tidy["metric"] == comparison.DEPENDENCY]
    checks = set(zip(dep["commodity"], dep["stage"]))
    assert {("ndfeb_magnet", s) for s in ("mine", "refining", "metal", "magnet")} <= checks
    assert ("ndpr_oxide", "refining") in checks
    assert set(dep["year"]) == {2024, 2025}
    assert len(dep) == 4 * len(checks) * 2  # runs × checks × years
    assert dep["value"].between(0, 1).all()
    assert set(tidy.loc[tidy["metric"] == comparison.TARGET_MET, "value"]) <= {0.0, 1.0}
    # seeds differ (demand noise), mixes differ (the stockpile acts): the seeds are not copies
    demand = tidy[tidy["metric"] == comparison.DEMAND].groupby(["mix", "seed"])["value"].sum()
    assert demand[("none", 0)] != demand[("none", 1)]


def test_summary_manifest_and_report(tiny):
    _, folder, _ = tiny
    summary = pd.read_csv(folder / "summary.csv")
    assert summary["mix"].tolist() == ["none", "stockpile"]
    assert summary["runs"].tolist() == [2, 2]
    assert {
        "met_60_share",
        "met_50_share",
        "first_year_60",
        "fiscal_bn_to_2030",
        "unmet_pct",
        "peak_ratio",
    } <= set(summary.columns)
    assert (summary["peak_ratio"] > 1).all()  # a total export halt raises magnet prices
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    assert manifest["seeds"] == [0, 1] and manifest["failed_runs"] == []
    assert [m["name"] for m in manifest["mixes"]] == ["none", "stockpile"]
    assert manifest["compare_config"]["shock"] == "magnet_ban_demo"
    assert manifest["code_version"]
    assert manifest["input_data_sha256"] and all(len(h) == 64 for h in manifest["input_data_sha256"].values())
    assert len(manifest["run_ids"]) == 6  # 2 mixes x 2 seeds + the no-shock reference's 2 seeds
    assert manifest["no_shock_reference"]["shock"] == "none"
    report = (folder / "report.html").read_text()
    for text in ("none", "stockpile", "Alliance target (&lt;60% by 2030)", "Alliance ambition (50%)"):
        assert text in report
    assert "Definition used" in report and "largest single supplier outside G7+" in report
    # the runs end in 2025, before the 2030 target year: no cost-against-2030 plot
    assert report.count("data:image/png;base64,") == 2
    assert sorted(p.name for p in (folder / "plots").iterdir()) == ["dependency_paths.png", "peak_price.png"]


def test_stockpile_release_cuts_unmet_demand_under_the_magnet_ban(tiny):
    """Japan's 60-day magnet stockpile is released while Chinese magnets are cut off, so the
    G7+ go short of less than without it, seed by seed (common random numbers). (Its peak price
    is not lower: the stock runs out before the ban's last month, when prices peak.)"""
    _, _, tidy = tiny
    unmet = tidy[
        (tidy["metric"] == comparison.UNMET) & (tidy["commodity"] == "ndfeb_magnet") & (tidy["year"] == 2025)
    ].set_index(["mix", "seed"])["value"]
    for seed in (0, 1):
        assert unmet[("none", seed)] > 0  # the ban bites
        assert unmet[("stockpile", seed)] < 0.97 * unmet[("none", seed)]


def test_same_config_gives_identical_comparison(tiny, tmp_path):
    """Run again: same folder name, same table."""
    _, folder, tidy = tiny
    assert compare.main([*TINY, "--jobs", "2", "--out", str(tmp_path)]) == 0
    again = only_folder(tmp_path)
    assert again.name == folder.name
    pd.testing.assert_frame_equal(pd.read_parquet(again / "comparison.parquet"), tidy)


def test_failed_run_is_recorded_and_the_others_kept(tmp_path, capsys, monkeypatch):
    """A run that fails (here: one mix's simulation raises) is recorded, the other mix's run is
    kept (jobs 1: the runs go in this process)."""
    real = compare.simulate

    def simulate(cfg):
        if cfg.policy.name == "stockpile":
            raise RuntimeError("disk on fire")
        return real(cfg)

    monkeypatch.setattr(compare, "simulate", simulate)
    out = tmp_path / "out"
    args = ["--mixes", "none,stockpile", "--seeds", "1", "--jobs", "1", "--out", str(out)]
    code = compare.main([*args, "scenario=ree_2024_short", "scenario.end=2024-06"])
    assert code == 1
    assert "stockpile seed 0: RuntimeError: disk on fire" in capsys.readouterr().err
    folder = only_folder(out)
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    (failed,) = manifest["failed_runs"]
    assert (failed["mix"], failed["seed"]) == ("stockpile", 0)
    tidy = pd.read_parquet(folder / "comparison.parquet")
    assert set(tidy["mix"]) == {"none"} and len(tidy) > 0
    summary = pd.read_csv(folder / "summary.csv").set_index("mix")
    assert summary.loc["none", "runs"] == 1 and summary.loc["stockpile", "runs"] == 0
    report = (folder / "report.html").read_text()
    assert "Failed runs (1)" in report and "disk on fire" in report


@pytest.fixture
def no_runs(monkeypatch):
    def fail(*a, **kw):
        raise AssertionError("a run started before the names were checked")

    monkeypatch.setattr(compare, "simulate", fail)


def test_unknown_mix_fails_before_any_run(tmp_path, capsys, no_runs):
    code = compare.main(["--mixes", "none,alliance_typo", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--mixes" in err and "'alliance_typo'" in err and "configs/policy" in err
    assert "alliance_all" in err  # lists what exists
    assert not any(tmp_path.iterdir())


def test_unknown_names_in_a_compare_config_name_file_and_key(tmp_path, capsys, no_runs):
    settings = yaml.safe_load((config_dir() / "compare" / "default.yaml").read_text())
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**settings, "mixes": ["none", "nope"]}))
    assert compare.main(["--config", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: key mixes[1]" in err and "'nope'" in err
    assert compare.main(["--shock", "meteor", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--shock" in err and "'meteor'" in err and "ree_licensing_2025" in err
    path.write_text(yaml.safe_dump({**settings, "seeds": "ten"}))
    assert compare.main(["--config", str(path)]) == 2
    assert "key seeds: expected int" in capsys.readouterr().err


def test_bad_override_fails_before_any_run_naming_the_key(tmp_path, capsys, no_runs):
    assert compare.main(["--mixes", "none", "scenario.market.kappa=-2", "--out", str(tmp_path)]) == 2
    assert "scenario.market.kappa" in capsys.readouterr().err
    assert compare.main(["--mixes", "none", "scenario.no_such_key=1", "--out", str(tmp_path)]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert compare.main(["--mixes", "none", "policy=stockpile", "--out", str(tmp_path)]) == 2
    assert "--mixes" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_summary_counts_seeds_meeting_a_target_and_the_first_year():
    """summarise() on hand-made rows: one stage, thresholds 60% / 50%, two seeds."""
    rows = []
    paths = {
        ("a", 0): [0.7, 0.55, 0.45],
        ("a", 1): [0.7, 0.65, 0.55],
        ("b", 0): [0.9, 0.9, 0.9],
        ("b", 1): [0.9, 0.9, 0.9],
    }
    for (mix, seed), shares in paths.items():
        for year, share in zip((2029, 2030, 2031), shares):
            base = {
                "mix": mix,
                "seed": seed,
                "year": year,
                "region": "G7+",
                "commodity": "x",
                "stage": "mine",
            }
            rows.append({**base, "metric": comparison.DEPENDENCY, "detail": "CHN", "value": share})
            for name, th in (("t60", 0.6), ("t50", 0.5)):
                met = float(share < th)
                rows.append(
                    {
                        **base,
                        "metric": comparison.TARGET_MET,
                        "commodity": "",
                        "stage": "",
                        "detail": name,
                        "value": met,
                    }
                )
        rows.append(
            {
                **base,
                "year": 2030,
                "metric": comparison.FISCAL,
                "detail": "floor",
                "value": 2e9 if mix == "a" else 0,
            }
        )
    tidy = pd.DataFrame(rows)[comparison.TIDY_COLUMNS]
    ctx = comparison.Context(
        mixes=["b", "a"],
        seeds=[0, 1],
        shock="none",
        region="G7+",
        targets=[comparison.Target("t60", 0.6, 2030), comparison.Target("t50", 0.5, 2030)],
        band=(0.0, 1.0),
        horizon="2031-12",
    )
    s = comparison.summarise(tidy, ctx).set_index("mix")
    assert list(s.index) == ["b", "a"]
    assert s.loc["a", "met_60_share"] == 0.5 and s.loc["a", "met_60_seeds"] == 1
    assert s.loc["a", "first_year_60"] == 2030  # seed 0 in 2030, seed 1 in 2031: half by 2030
    assert s.loc["a", "met_50_share"] == 0 and s.loc["a", "ever_50_seeds"] == 1
    assert s.loc["b", "met_60_share"] == 0 and pd.isna(s.loc["b", "first_year_60"])
    assert (s.loc["a", "dep_x_mine_lo"], s.loc["a", "dep_x_mine_hi"]) == (0.55, 0.65)
    assert s.loc["a", "fiscal_bn_to_2030"] == 2.0 and s.loc["b", "fiscal_bn_to_2030"] == 0.0
    lines = comparison.headlines(s.reset_index(), ctx)
    assert lines[0].startswith("t60, in 2030: met by a (1/2 seeds; first met 2030)")
    assert "t50, in 2030: met by none of the 2 mixes" in lines[1]


def test_an_instrument_that_cannot_be_built_fails_before_any_run(tmp_path, capsys, no_runs):
    """A price floor for a plant that does not exist: exit 2 naming the policy file and the plant,
    before the first run (each mix's model is built, not run, while the plan is checked)."""
    settings = yaml.safe_load((config_dir() / "compare" / "default.yaml").read_text())
    broken = {
        "name": "floor_nowhere",
        "policy": "price_floor",
        "overrides": ["policy.instruments.0.producers=[nowhere]"],
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({**settings, "mixes": ["none", broken], "seeds": 1}))
    out = tmp_path / "out"
    code = compare.main(["--config", str(path), "--out", str(out), "scenario=ree_2024_short"])
    assert code == 2
    err = capsys.readouterr().err
    assert "floor_nowhere" in err and "configs/policy/price_floor.yaml" in err and "nowhere" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.fixture
def own_configs(tmp_path, monkeypatch):
    """A copy of the packaged configs that a test may add files to (policy and shock files as
    teams pass them around)."""
    from critmin.sim import compose
    from critmin.sim import run as run_module

    root = tmp_path / "configs"
    shutil.copytree(config_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(compose, "config_dir", lambda: root)
    monkeypatch.setattr(run_module, "config_dir", lambda: root)
    monkeypatch.setattr(compare, "config_dir", lambda: root)
    return root


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        (
            "policy",
            "name: typo_tariff\ninstruments:\n  - {type: tarif, country: USA, commodity: ndfeb_magnet}\n",
            "tarif",
        ),
        (
            "policy",
            "name: bad_floor\ninstruments:\n  - {type: price_floor, name: f, country: USA, commodity: ndpr_oxide,\n"
            "     producers: [usa_mountain_pass_sep], floor_usd_per_t: -5, start: '2025-10', end: '2030-10'}\n",
            "floor_usd_per_t",
        ),
        (
            "shock",
            "name: bad_ban\nevents:\n  - {type: export_cap, country: ATLANTIS, commodity: ndfeb_magnet,\n"
            "     max_tonnes_per_month: 0, start: '2025-04', end: '2025-10'}\n",
            "ATLANTIS",
        ),
    ],
)
def test_a_bad_policy_or_shock_file_exits_2_naming_it_before_any_run(
    own_configs, tmp_path, capsys, no_runs, kind, text, expected
):
    name = text.split("\n", 1)[0].removeprefix("name: ")
    (own_configs / kind / f"{name}.yaml").write_text(text)
    out = tmp_path / "out"
    mixes = f"none,stockpile,{name}" if kind == "policy" else "none,stockpile"
    shock = name if kind == "shock" else "none"
    code = compare.main(["--mixes", mixes, "--shock", shock, "--out", str(out), "scenario=ree_2024_short"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"configs/{kind}/{name}.yaml" in err and expected in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    """capsys is not a terminal: a plain progress line per run with --progress-every 0, and the
    last one with the total time; no progress bar."""
    args = ["--mixes", "none,stockpile", "--seeds", "1", "--jobs", "1", "--progress-every", "0"]
    code = compare.main([*args, "--out", str(tmp_path), "scenario=ree_2024_short", "scenario.end=2024-03"])
    assert code == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("compare: ")]
    assert len(lines) == 2, err
    assert lines[0].startswith("compare: 1/2 runs done, 0 failed, ~") and lines[0].endswith(" left")
    assert lines[1].startswith("compare: 2/2 runs done, 0 failed, ") and lines[1].endswith(" in all")
    assert "\r" not in err and "it/s" not in err  # no bar


def test_a_rerun_after_a_data_change_goes_to_another_folder_and_says_why(tmp_path, capsys):
    data = tmp_path / "ree"
    shutil.copytree(data_root() / "ree", data)
    args = ["--mixes", "none", "--seeds", "1", "--jobs", "1", "--out", str(tmp_path / "out")]
    args += ["scenario=ree_2024_short", "scenario.end=2024-02", f"scenario.data={data}"]
    assert compare.main(args) == 0
    first = only_folder(tmp_path / "out")
    capsys.readouterr()
    assert compare.main(args) == 0  # same configs, data, code: same folder, nothing said
    # the sentence itself: a logging error of an earlier test may quote this file's source lines
    assert only_folder(tmp_path / "out") == first and "all runs redone" not in capsys.readouterr().err
    demand = data / "demand.csv"
    demand.write_text(demand.read_text().replace("\n", "\n", 1))  # unchanged bytes: still the same
    assert compare.main(args) == 0 and "all runs redone" not in capsys.readouterr().err
    change_one_number(data / "facilities.csv")
    assert compare.main(args) == 0
    err = capsys.readouterr().err
    folders = sorted(p for p in (tmp_path / "out").iterdir())
    assert len(folders) == 2 and first in folders
    assert f"all runs redone, input data changed ({data}/facilities.csv)" in err
    assert f"the earlier comparison stays in {first}" in err


def change_one_number(path: Path) -> None:
    """Raise the first facility's cash cost by 100 USD/t."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[0, "cash_cost_usd_per_t"] = str(float(df.loc[0, "cash_cost_usd_per_t"]) + 100)
    df.to_csv(path, index=False)
