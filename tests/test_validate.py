"""critmin validate: the scorer on hand-made series, the facts files' checks, and real replays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scorecard_facts import copy_facts, make_fact
from world_copies import edit_csv, set_cell

from critmin.analysis import scorecard as sc
from critmin.experiments.cli import main as cli
from critmin.sim.world import DataError

MONTHS = pd.date_range("2024-01-01", "2024-12-01", freq="MS")
SHOCK = pd.Timestamp("2024-06-01")


def tidy(values: dict[tuple[str, str, str], list[float]]) -> pd.DataFrame:
    """A tidy timeseries from {(variable, commodity, region): 12 monthly values}."""
    rows = [
        {"month": m, "variable": v, "commodity": c, "region": r, "value": x}
        for (v, c, r), xs in values.items()
        for m, x in zip(MONTHS, xs)
    ]
    return pd.DataFrame(rows)


def step(before: float, after: float) -> list[float]:
    return [before] * 5 + [after] * 7  # the shock starts in month 6 (June)


PRE = sc.Window(pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-01"))


def episode(*facts: sc.Fact) -> sc.Episode:
    return sc.Episode("demo", "demo", "ree_2024", "demo", (), 0, SHOCK, PRE, "test", facts)


def fact(statistic: str, observed: float, **kw) -> sc.Fact:
    base = dict(
        commodity="x",
        region="CHN",
        variable="exports",
        statistic=statistic,
        window=sc.Window(pd.Timestamp("2024-08-01"), pd.Timestamp("2024-08-01")),
        window_text="2024-08",
        pre=PRE,
        observed=observed,
        tolerance=0.1,
        direction="down",
    )
    return make_fact(**{**base, **kw})


def score_one(f: sc.Fact, shock: pd.DataFrame, twin: pd.DataFrame | None = None) -> pd.Series:
    runs = {0: (sc.Series(shock, MONTHS), sc.Series(twin, MONTHS) if twin is not None else None)}
    return sc.score([sc.EpisodeRuns(episode(f), runs)]).iloc[0]


# ---------------------------------------------------------------------- the scorer
TWIN = tidy({("exports", "x", "CHN"): [100.0] * 12})


@pytest.mark.parametrize(
    ("after", "verdict"),
    [
        (30.0, "hit"),  # 0.30: inside [0.2, 0.4]
        (40.0, "hit"),  # 0.40: exactly at the upper edge
        (20.0, "hit"),  # 0.20: exactly at the lower edge
        (60.0, "direction"),  # fell, but too little
        (10.0, "direction"),  # fell too much
        (100.0, "miss"),  # no move
        (130.0, "miss"),  # wrong way
    ],
)
def test_ratio_to_twin_hit_edge_direction_miss(after, verdict):
    f = fact("ratio_to_twin", 0.3)
    row = score_one(f, tidy({("exports", "x", "CHN"): step(100.0, after)}), TWIN)
    assert row["model_median"] == pytest.approx(after / 100)
    assert row["verdict"] == verdict


@pytest.mark.parametrize(
    ("after", "verdict"), [(150.0, "hit"), (170.0, "hit"), (120.0, "direction"), (90.0, "miss")]
)
def test_ratio_to_pre_of_a_price(after, verdict):
    f = fact("ratio_to_pre", 1.5, variable="price", tolerance=0.2, direction="up")
    row = score_one(f, tidy({("price", "x", "CHN"): step(100.0, after)}))
    assert row["model_median"] == pytest.approx(after / 100)
    assert row["verdict"] == verdict


def test_ratio_to_pre_with_the_facts_own_pre_window_and_a_window_extreme():
    # pre = Jan-Apr mean 100; window Jun-Aug, max of the monthly ratio
    prices = [100.0] * 4 + [200.0, 120.0, 180.0, 150.0] + [100.0] * 4
    f = fact(
        "ratio_to_pre",
        1.8,
        variable="price",
        tolerance=0.0,
        direction="up",
        agg="max",
        pre=sc.Window(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-01")),
        window=sc.Window(pd.Timestamp("2024-06-01"), pd.Timestamp("2024-08-01")),
    )
    row = score_one(f, tidy({("price", "x", "CHN"): prices}))
    assert row["model_median"] == pytest.approx(1.8)
    assert row["verdict"] == "hit"


@pytest.mark.parametrize(
    ("chn", "verdict"), [(70.0, "hit"), (73.0, "hit"), (80.0, "direction"), (95.0, "miss")]
)
def test_share_against_the_pre_shock_share(chn, verdict):
    # China's share falls from 0.9 to chn/100; history says 0.70 ± 0.03 and 'down'
    f = fact("share", 0.70, variable="production", tolerance=0.03)
    data = {("production", "x", "CHN"): step(90.0, chn), ("production", "x", "USA"): step(10.0, 100.0 - chn)}
    data[("production", "x", "WORLD")] = [100.0] * 12
    row = score_one(f, tidy(data))
    assert row["model_median"] == pytest.approx(chn / 100)
    assert row["pre_value"] == pytest.approx(0.9)
    assert row["verdict"] == verdict


@pytest.mark.parametrize(
    ("after", "verdict"), [(1100.0, "hit"), (1300.0, "hit"), (500.0, "direction"), (0.0, "miss")]
)
def test_change_in_tonnes_against_the_twin(after, verdict):
    f = fact("change", 1000.0, variable="stock", tolerance=300.0, direction="up")
    row = score_one(
        f, tidy({("stock", "x", "COD"): step(0.0, after)}), tidy({("stock", "x", "COD"): [0.0] * 12})
    )
    # the fact reads CHN, the data is COD: nothing there, so the model change is 0
    assert row["verdict"] == "miss"
    f = fact("change", 1000.0, variable="stock", region="COD", tolerance=300.0, direction="up")
    row = score_one(
        f, tidy({("stock", "x", "COD"): step(0.0, after)}), tidy({("stock", "x", "COD"): [0.0] * 12})
    )
    assert row["model_median"] == pytest.approx(after)
    assert row["verdict"] == verdict


@pytest.mark.parametrize(
    ("jpn", "verdict"), [(160.0, "hit"), (175.0, "hit"), (120.0, "direction"), (100.0, "miss")]
)
def test_ratio_between_regions(jpn, verdict):
    f = fact(
        "ratio_to_region",
        1.6,
        variable="price",
        region="JPN",
        relative_to="CHN",
        tolerance=0.15,
        direction="up",
    )
    data = {("price", "x", "JPN"): step(100.0, jpn), ("price", "x", "CHN"): [100.0] * 12}
    assert score_one(f, tidy(data))["verdict"] == verdict


@pytest.mark.parametrize(
    ("unmet", "verdict"), [(1.0, "hit"), (5.0, "hit"), (10.0, "direction"), (0.0, "miss")]
)
def test_share_of_demand_and_region_groups(unmet, verdict):
    # unmet demand in JPN+USA over their demand; band [0.001, 0.05]
    f = fact(
        "share_of_demand",
        0.01,
        variable="unmet_demand",
        region="JPN+USA",
        low=0.001,
        high=0.05,
        tolerance=0.0,
        direction="up",
    )
    data = {
        ("demand", "x", "JPN"): [50.0] * 12,
        ("demand", "x", "USA"): [50.0] * 12,
        ("unmet_demand", "x", "JPN"): step(0.0, unmet),
    }
    row = score_one(f, tidy(data))
    assert row["model_median"] == pytest.approx(unmet / 100)
    assert row["verdict"] == verdict


@pytest.mark.parametrize(
    ("level", "verdict"), [(100.0, "hit"), (125.0, "hit"), (126.0, "miss"), (60.0, "miss")]
)
def test_level_with_no_direction_rule_is_hit_or_miss(level, verdict):
    f = fact(
        "level",
        100.0,
        variable="price",
        region="WORLD",
        low=75.0,
        high=125.0,
        tolerance=0.0,
        direction="none",
    )
    f = sc.Fact(
        **{**f.__dict__, "window": sc.Window(MONTHS[0], MONTHS[-1]), "pre": sc.Window(MONTHS[0], MONTHS[-1])}
    )
    row = score_one(f, tidy({("price", "x", "WORLD"): [level] * 12}))
    assert row["verdict"] == verdict


def test_unmeasurable_fact_is_a_miss_with_a_note_and_full_penalty():
    f = fact("ratio_to_twin", 0.3)
    zero = tidy({("exports", "x", "CHN"): [0.0] * 12})
    row = score_one(f, zero, zero)
    assert row["verdict"] == "miss"
    assert "not measurable" in row["note"]
    assert row["normalised_miss"] == sc.MISS_CAP


def test_median_and_band_over_seeds_and_the_objective():
    f = fact("ratio_to_twin", 0.3)
    runs = {
        s: (sc.Series(tidy({("exports", "x", "CHN"): step(100.0, after)}), MONTHS), sc.Series(TWIN, MONTHS))
        for s, after in enumerate([20.0, 30.0, 90.0])
    }
    card = sc.score([sc.EpisodeRuns(episode(f), runs)])
    row = card.iloc[0]
    assert row["model_median"] == pytest.approx(0.3)
    assert row["model_low"] == pytest.approx(0.22)  # 10% quantile of 0.2, 0.3, 0.9
    assert row["seeds"] == 3
    assert sc.objective(card) == 0.0
    far = sc.score([sc.EpisodeRuns(episode(f), {0: runs[2]})])
    # 0.9 is 0.5 above the band's top 0.4; the half-width is 0.1 -> capped at 3
    assert sc.objective(far) == sc.MISS_CAP
    near = sc.score(
        [
            sc.EpisodeRuns(
                episode(f),
                {0: (sc.Series(tidy({("exports", "x", "CHN"): step(100.0, 45.0)}), MONTHS), runs[0][1])},
            )
        ]
    )
    assert sc.objective(near) == pytest.approx(0.5)


def test_totals_count_each_verdict_and_keep_unexpressible_facts_apart():
    card = pd.DataFrame(
        {
            "episode": ["a", "a", "a", "a", "b"],
            "expressible": ["yes", "yes", "yes", "no", "yes"],
            "verdict": ["hit", "direction", "miss", "not expressible", "hit"],
        }
    )
    tot = sc.totals(card).set_index("episode")
    assert tot.loc["a", ["facts", "hit", "direction", "miss", "not_expressible"]].tolist() == [3, 1, 1, 1, 1]
    assert tot.loc["all episodes", "hit_rate"] == pytest.approx(0.5)


# ---------------------------------------------------------------------- the facts files
@pytest.fixture
def facts_copy(tmp_path: Path) -> Path:
    return copy_facts(tmp_path)


def test_packaged_facts_load_and_keep_the_held_out_episode_out():
    eps = sc.load_episodes()
    names = {e.episode for e in eps}
    assert {"gage_controls_2023", "graphite_controls_2023", "ree_licensing_2025", "drc_cobalt_2025"} <= names
    assert not any("2010" in n or "quota" in n for n in names)
    assert all(f.source for e in eps for f in e.facts)
    assert sum(not f.expressible for e in eps for f in e.facts) > 0  # the gaps are listed
    gage = next(e for e in eps if e.episode == "gage_controls_2023")
    assert gage.shock_month == pd.Timestamp("2024-08-01")  # Aug 2023 replayed a year later


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("statistic", "ratio_to_moon", "column statistic: expected one of"),
        ("variable", "happiness", "column variable: expected one of"),
        ("window", "2023-13", "column window: expected a month"),
        ("window", "2023-10..2023-08", "ends before it starts"),
        ("observed", "lots", "column observed: expected a number"),
        ("direction", "sideways", "column direction: expected one of"),
        ("expressible", "maybe", "column expressible: expected yes or no"),
        ("region", "china", "column region: expected a country code"),
        ("agg", "median", "column agg: expected one of"),
        ("tolerance", "-1", "column tolerance: expected a number >= 0"),
        ("source", "", "column source: expected a value"),
    ],
)
def test_a_bad_cell_names_file_row_and_column(facts_copy, column, value, message):
    path = facts_copy / "graphite_controls_2023.csv"
    edit_csv(path, set_cell(column, value))  # the first fact, an expressible one, on the file's row 2
    with pytest.raises(DataError) as err:
        sc.load_episodes(facts_copy)
    assert str(path) in str(err.value) and "row 2" in str(err.value) and message in str(err.value)


def test_structural_errors_in_the_facts_files(facts_copy):
    path = facts_copy / "drc_cobalt_2025.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.drop(columns="tolerance").to_csv(path, index=False)
    with pytest.raises(DataError, match="missing \\['tolerance'\\]"):
        sc.load_episodes(facts_copy)
    frame.to_csv(path, index=False)
    (facts_copy / "stray.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"stray\.csv: no episode 'stray'"):
        sc.load_episodes(facts_copy)
    (facts_copy / "stray.csv").unlink()
    edit_csv(facts_copy / "baseline_2024.csv", set_cell("statistic", "ratio_to_twin"))
    with pytest.raises(DataError, match="needs a shock and its no-shock twin"):
        sc.load_episodes(facts_copy)
    with pytest.raises(DataError, match=r"not in .*episodes\.csv"):
        sc.load_episodes(sc.validation_dir(), ["ree_quotas_2010"])


def test_prices_cannot_be_summed_over_regions(facts_copy):
    path = facts_copy / "graphite_controls_2023.csv"
    edit_csv(path, set_cell("region", "CHN+JPN", where=("variable", "price")))
    with pytest.raises(DataError, match="prices cannot be summed"):
        sc.load_episodes(facts_copy)


def test_validate_cli_exits_2_on_bad_input_before_any_run(facts_copy, tmp_path, capsys):
    edit_csv(facts_copy / "ree_licensing_2025.csv", set_cell("observed", ""))
    assert cli(["validate", "--data", str(facts_copy), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "ree_licensing_2025.csv row 2, column observed" in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()
    assert cli(["validate", "--episodes", "nope", "--out", str(tmp_path / "v")]) == 2
    assert cli(["validate", "--seeds", "0", "--out", str(tmp_path / "v")]) == 2
    assert (
        cli(
            [
                "validate",
                "--episodes",
                "drc_cobalt_2025",
                "scenario.market.kappa=-1",
                "--out",
                str(tmp_path / "v"),
            ]
        )
        == 2
    )
    assert "kappa" in capsys.readouterr().err


# ---------------------------------------------------------------------- real replays
def test_fast_subset_writes_the_scorecard_and_report(tmp_path):
    """One seed of the two cheapest episodes, end to end."""
    out = tmp_path / "v"
    code = cli(
        [
            "validate",
            "--episodes",
            "drc_cobalt_2025,graphite_controls_2023",
            "--seeds",
            "1",
            "--jobs",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    card = pd.read_csv(out / "scorecard.csv")
    assert set(card["episode"]) == {"drc_cobalt_2025", "graphite_controls_2023"}
    scored = card[card["expressible"] == "yes"]
    assert scored["verdict"].isin(sc.VERDICTS).all() and scored["model_median"].notna().all()
    # the export bans are inputs of these replays: exports stop in the shock's first month
    for name in ("drc_exports_during_ban", "flake_exports_dec2023"):
        assert card.set_index("fact").loc[name, "verdict"] == "hit"
    report = (out / "report.html").read_text()
    assert "facts hit" in report and "shifted by a year" in report
    assert (out / "manifest.yaml").is_file() and list((out / "plots").glob("*.png"))
    # --fail-under: the same subset cannot hit every fact
    assert (
        cli(
            [
                "validate",
                "--episodes",
                "drc_cobalt_2025",
                "--seeds",
                "1",
                "--jobs",
                "1",
                "--no-plots",
                "--fail-under",
                "100",
                "--out",
                str(tmp_path / "w"),
            ]
        )
        == 1
    )


@pytest.mark.slow
def test_full_scorecard(tmp_path):
    out = tmp_path / "v"
    assert cli(["validate", "--seeds", "3", "--jobs", "2", "--out", str(out), "--fail-under", "30"]) == 0
    tot = pd.read_csv(out / "totals.csv").set_index("episode")
    assert tot.loc["all episodes", "facts"] >= 80
    assert tot.loc["baseline_2024", "hit_rate"] >= 0.7  # the 2024 world is calibrated to these


# ---------------------------------------------------------------------- year on year
MONTHS_2Y = pd.date_range("2024-01-01", "2025-12-01", freq="MS")


def two_years(values: dict[tuple[str, str, str], list[float]]) -> sc.Series:
    rows = [
        {"month": m, "variable": v, "commodity": c, "region": r, "value": x}
        for (v, c, r), xs in values.items()
        for m, x in zip(MONTHS_2Y, xs)
    ]
    return sc.Series(pd.DataFrame(rows), MONTHS_2Y)


@pytest.mark.parametrize(
    ("second_year", "verdict"),
    [(60.0, "hit"), (80.0, "direction"), (100.0, "miss"), (130.0, "miss")],
)
def test_ratio_to_year_before_compares_a_shock_year_with_the_year_before(second_year, verdict):
    # Both years are under the shock (50 a month in the first); the twin (100, then 100 again)
    # would say 0.5 or 0.6 of the twin whatever the second year did: the year-on-year ratio sees
    # the second year's own fall from the first. History: -40% (0.6 ± 0.15), 'down'.
    first = [50.0] * 12
    shock = two_years({("imports", "x", "USA"): first + [second_year / 2] * 12})
    twin = two_years({("imports", "x", "USA"): [100.0] * 24})
    f = fact(
        "ratio_to_year_before",
        0.6,
        region="USA",
        variable="imports",
        tolerance=0.15,
        window=sc.Window(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-07-01")),
    )
    assert sc.measure(f, shock, twin) == pytest.approx(second_year / 100)
    assert sc.neutral(f, shock, twin) == pytest.approx(1.0)  # the twin did not change
    row = sc.score([sc.EpisodeRuns(episode(f), {0: (shock, twin)})]).iloc[0]
    assert row["verdict"] == verdict


def test_ratio_to_year_before_measures_from_the_twins_growth_and_needs_the_whole_year_before():
    # the twin grows 10% a year: a flat shock run has fallen against what the year would bring
    twin = two_years({("imports", "x", "USA"): [100.0] * 12 + [110.0] * 12})
    shock = two_years({("imports", "x", "USA"): [100.0] * 24})
    f = fact("ratio_to_year_before", 0.6, region="USA", variable="imports", tolerance=0.15)
    f = sc.Fact(**{**f.__dict__, "window": sc.Window(pd.Timestamp("2025-03-01"), pd.Timestamp("2025-04-01"))})
    assert sc.measure(f, shock, twin) == pytest.approx(1.0)
    assert sc.neutral(f, shock, twin) == pytest.approx(1.1)
    # the window's year before starts before the run: not measurable (a miss), not a partial year
    early = sc.Fact(
        **{**f.__dict__, "window": sc.Window(pd.Timestamp("2024-06-01"), pd.Timestamp("2024-08-01"))}
    )
    assert np.isnan(sc.measure(early, shock, twin))
