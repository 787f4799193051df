"""The solver's judgement of one candidate on hand-made records (analysis/solve.py): the robust
target check across seeds and shocks, present values, the Pareto front, the cheapest mix, the
coalition comparison."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from critmin.analysis import comparison
from critmin.analysis import solve as sv

T60 = comparison.Target("60%", 0.6, 2030)
T50 = comparison.Target("50%", 0.5, 2030)
CRIT = sv.Criteria(
    targets=[T60, T50], seed_share=0.8, discount_rate=0.03, base_year=2026, pv_years=[2035, 2030]
)


def rec(shock, seed, share, cost=1e9, payer=None):
    fiscal = {y: cost for y in range(2026, 2036)}
    return {
        "shock": shock,
        "seed": seed,
        "share": share,
        "binding": "ndfeb_magnet metal",
        "met": {"60%": share < 0.6, "50%": share < 0.5},
        "fiscal": fiscal,
        "members": {"USA": {y: (payer if payer is not None else cost) for y in fiscal}},
        "unmet_pct": 1.0 if shock != "none" else 0.0,
        "peak_ratio": 2.0 if shock != "none" else math.nan,
    }


def test_a_target_is_met_only_with_enough_seeds_under_every_shock():
    # 5 seeds: 4 of 5 below 60% under both shocks -> met (0.8); one shock with 3 of 5 -> not met
    ok = [rec("none", s, v) for s, v in enumerate([0.5, 0.55, 0.58, 0.59, 0.7])]
    ok += [rec("ban", s, v) for s, v in enumerate([0.52, 0.56, 0.57, 0.65, 0.59])]
    agg = sv.aggregate(ok, CRIT)
    assert agg["met_60"] is True
    assert agg["share"] == pytest.approx(0.59)  # the 4th smallest, highest over the two shocks
    assert agg["met_60_detail"] == "none 4/5; ban 4/5"
    assert agg["met_50"] is False
    bad = ok[:5] + [rec("ban", s, v) for s, v in enumerate([0.52, 0.56, 0.65, 0.65, 0.59])]
    agg = sv.aggregate(bad, CRIT)
    assert agg["met_60"] is False
    assert agg["share"] == pytest.approx(0.65) and agg["binding_shock"] == "ban"
    # the verdict and the robust share agree
    assert (agg["share"] < 0.6) == agg["met_60"]


def test_a_missing_share_never_passes():
    agg = sv.aggregate([rec("none", 0, 0.4), rec("none", 1, math.nan)], CRIT)
    assert math.isnan(agg["share"])


def test_present_value_discounts_from_the_base_year():
    assert sv.present_value({2026: 100.0, 2027: 103.0}, 0.03, 2026, 2035) == pytest.approx(200.0)
    assert sv.present_value({2026: 100.0, 2031: 1e9}, 0.03, 2026, 2030) == pytest.approx(100.0)
    agg = sv.aggregate([rec("none", 0, 0.5, cost=1.0, payer=0.25)], CRIT, payer="USA")
    ten = sum(1.03 ** -(y - 2026) for y in range(2026, 2036))
    assert agg["pv_2035_usd"] == pytest.approx(ten)
    assert agg["payer_pv_2035_usd"] == pytest.approx(ten / 4)
    assert agg["pv_2030_usd"] == pytest.approx(sum(1.03 ** -(y - 2026) for y in range(2026, 2031)))


def test_pareto_keeps_the_points_no_other_beats_on_both():
    pts = pd.DataFrame({"cost": [1, 2, 3, 2, 5], "share": [0.9, 0.7, 0.5, 0.8, 0.5]})
    assert sv.pareto(pts, ["cost", "share"]).tolist() == [True, True, True, False, False]


def test_the_cheapest_mix_meeting_a_target_and_ties():
    checked = pd.DataFrame(
        {
            "candidate": ["a", "b", "c", "d"],
            "cost": [3.0, 1.0, 1.0, 0.5],
            "share": [0.4, 0.55, 0.45, 0.7],
            "met_60": [True, True, True, False],
        }
    )
    assert sv.cheapest(checked, 0.6, "cost")["candidate"] == "c"  # tie at 1.0: the lower share
    assert sv.cheapest(checked.assign(met_60=False), 0.6, "cost") is None


def test_coalition_ratio_only_between_costs():
    assert sv.compare_costs(10.0, 6.8) == {"payer_ratio": pytest.approx(0.68), "coalition_no_dearer": True}
    net_revenue = sv.compare_costs(10.0, -1.0)
    assert math.isnan(net_revenue["payer_ratio"]) and net_revenue["coalition_no_dearer"] is True
    assert sv.compare_costs(1.0, 2.0)["coalition_no_dearer"] is False
    assert sv.compare_costs(math.nan, 2.0)["coalition_no_dearer"] is None


def test_what_binds_prefers_the_full_check_and_names_the_stage():
    screen = pd.DataFrame({"share": [0.9, 0.69], "binding": ["ndfeb_magnet metal", "ndfeb_magnet refining"]})
    full = pd.DataFrame({"share": [0.712], "binding": ["ndfeb_magnet refining"], "binding_shock": ["none"]})
    text = sv.what_binds(screen, full, 0.6)
    assert "robust over the full check" in text and "71.2%" in text
    assert "the screen's lowest, one seed without a shock: 69.0%" in text
    assert text.endswith("which stays above 60%") and "refining" in text
    only_screen = sv.what_binds(screen, full.iloc[0:0], 0.6)
    assert "in the screen" in only_screen and "69.0%" in only_screen
