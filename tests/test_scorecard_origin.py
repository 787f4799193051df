"""The scorecard's origin_share statistic (origin-based dependency from the run's origin records)
and the announcement-rush fact of the 2023 gallium/germanium replay (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scorecard_facts import copy_facts, make_fact
from test_metrics import tiny
from world_copies import edit_csv, set_cell

from critmin.analysis import scorecard as sc
from critmin.sim.world import DataError

MONTHS = pd.date_range("2024-01-01", "2024-12-01", freq="MS")
YEAR = sc.Window(MONTHS[0], MONTHS[-1])


@pytest.fixture
def facts_copy(tmp_path: Path) -> Path:
    return copy_facts(tmp_path)


def origins(chn: float, other: float, months: pd.DatetimeIndex = MONTHS) -> pd.DataFrame:
    """EU consumption of magnets each month: ``chn`` t made in China, ``other`` t in Japan."""
    rows = [
        {"scope": "consumption", "commodity": "m", "region": "EU", "month": m, "origin": o, "weight": w}
        for m in months
        for o, w in (("CHN", chn), ("JPN", other))
    ]
    return pd.DataFrame(rows)


def origin_fact(observed: float = 0.85, **kw) -> sc.Fact:
    base = dict(
        commodity="m",
        region="EU",
        variable="consumption",
        statistic="origin_share",
        window=YEAR,
        window_text="2024-01..2024-12",
        pre=YEAR,
        relative_to="CHN",
        observed=observed,
        tolerance=0.03,
    )
    return make_fact(**{**base, **kw})


def card(f: sc.Fact, frame: pd.DataFrame) -> pd.Series:
    ep = sc.Episode("demo", "demo", "full_2024", "none", (), 0, MONTHS[0], YEAR, "test", (f,))
    runs = {
        0: (
            sc.Series(
                pd.DataFrame(columns=["month", "variable", "commodity", "region", "value"]), MONTHS, frame
            ),
            None,
        )
    }
    return sc.score([sc.EpisodeRuns(ep, runs)]).iloc[0]


@pytest.mark.parametrize(("chn", "verdict"), [(85.0, "hit"), (88.0, "hit"), (70.0, "miss"), (95.0, "miss")])
def test_origin_share_is_the_origins_tonnes_over_all_tonnes(chn, verdict):
    row = card(origin_fact(), origins(chn, 100.0 - chn))
    assert row["model_median"] == pytest.approx(chn / 100.0)
    assert row["verdict"] == verdict


def test_origin_share_sums_over_the_window_and_reads_its_own_origin():
    frame = pd.concat(
        [origins(90.0, 10.0, MONTHS[:6]), origins(30.0, 10.0, MONTHS[6:])], ignore_index=True
    )  # 540 + 180 of 600 + 240 t
    assert card(origin_fact(), frame)["model_median"] == pytest.approx(720 / 840)
    japan = card(origin_fact(relative_to="JPN"), frame)["model_median"]
    assert japan == pytest.approx(120 / 840)
    # a run without origin records cannot measure it: a miss, not a zero share
    assert card(origin_fact(), pd.DataFrame())["verdict"] == "miss"


def test_origin_frame_reads_the_run_metrics_origin_shares():
    """The worker's reduction (scorecard.origin_frame) gives the monthly tonnes of
    analysis/metrics.py origin_shares: the bloc's magnets, made at home in AAA (100 t) and BBB (50 t)."""
    t = tiny(0.7)
    frame = sc.origin_frame(t, {("consumption", "ndfeb_magnet", "G7+")})
    months = pd.DatetimeIndex(sorted(frame["month"].unique()))
    assert list(months) == [pd.Timestamp("2029-06-01"), pd.Timestamp("2030-06-01")]
    series = sc.Series(
        pd.DataFrame(columns=["month", "variable", "commodity", "region", "value"]), months, frame
    )
    part, total = series.origin("consumption", "ndfeb_magnet", "G7+", "BBB")
    assert total.tolist() == pytest.approx([150.0, 150.0])
    assert part.tolist() == pytest.approx([50.0, 50.0])
    with pytest.raises(DataError, match="not in this run's world"):
        sc.origin_frame(t, {("consumption", "gold", "G7+")})


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("variable", "production", "origin_share reads the dependency"),
        ("relative_to", "", "needs the origin country"),
        ("relative_to", "WORLD", "needs the origin country"),
        ("commodity", "ndfeb_magnet+ndfeb_alloy", "takes one commodity"),
        ("region", "E U", "expected a country code, a bloc or a group"),
        ("agg", "max", "taken over window totals"),
    ],
)
def test_a_bad_origin_share_cell_is_named(facts_copy, column, value, message):
    path = facts_copy / "baseline_2024.csv"
    edit_csv(path, set_cell(column, value, where=("fact", "eu_magnets_from_china")))
    with pytest.raises(DataError) as err:
        sc.load_episodes(facts_copy)
    assert str(path) in str(err.value) and f"column {column}" in str(err.value) and message in str(err.value)


def test_packaged_origin_and_rush_facts_are_scored_in_the_model_calendar():
    eps = {e.episode: e for e in sc.load_episodes()}
    eu = next(f for f in eps["baseline_2024"].facts if f.fact == "eu_magnets_from_china")
    assert eu.expressible and eu.statistic == "origin_share" and eu.relative_to == "CHN"
    assert sc.origin_needs(list(eps["baseline_2024"].facts)) == {("consumption", "ndfeb_magnet", "EU")}
    # the 2023 controls are replayed +12 months: Jul 2023 over Jun 2023 is Jul over Jun 2024,
    # the month the shock config announces them (announced: 2024-07) over the month before
    rush = next(f for f in eps["gage_controls_2023"].facts if f.fact == "announcement_rush_jul2023")
    assert rush.expressible and rush.statistic == "ratio_to_pre"
    assert (rush.window.first, rush.window.last) == (pd.Timestamp("2024-07-01"),) * 2
    assert (rush.pre.first, rush.pre.last) == (pd.Timestamp("2024-06-01"),) * 2
    assert rush.band[0] < 2.0 < rush.band[1]
