"""Licences decided at the ministry's pace (issue 15): after a minimum processing time each
waiting application is decided at a calendar rate that changes on dated steps, so the replay's
inputs reproduce the cumulative approval shares applicants reported (CLEPA: a quarter of the
applications filed since 4 Apr 2025 granted by 4 Jun, 60% by 30 Jun;
configs/shock/ree_licensing_2025.yaml; policies/export_controls.py: DecisionPace)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from test_licence_timing import APR, JUL, JUN, MAY, run
from test_quotas import build

from critmin.policies.export_controls import DAYS_PER_MONTH, DecisionPace, _decision_pace
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

LIC = {"type": "export_licensing", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
SHOCK = Path(__file__).resolve().parents[1] / "configs" / "shock" / "ree_licensing_2025.yaml"
# days from 1 Apr 2025: the control day (4 Apr) and CLEPA's two counts (4 Jun, 30 Jun)
CONTROL, JUN4, JUN30 = 3.0, 30 + 31 + 3, 30 + 31 + 29


def replay_pace(name: str) -> DecisionPace:
    """The pace of one licensing instrument of the 2025 replay, as its yaml gives it."""
    spec = next(i for i in yaml.safe_load(SHOCK.read_text())["instruments"] if i.get("name") == name)
    view = SimpleNamespace(start=(2025, 1))
    return _decision_pace(Spec(spec["processing_days"], name), view, 3)  # starts in Apr 2025


# ---------------------------------------------------------------- the replay's inputs
MAGNETS = "cn_licensing_no18"
DYTB = ["cn_licensing_no18_dytb_oxide", "cn_licensing_no18_dytb_metal"]
MAY18 = 30 + 17  # Cailian's count (via SMM): magnet makers licensed, the separators still waiting
SEP1 = 30 + 31 + 30 + 31 + 31


def test_the_replay_grants_the_magnet_makers_the_shares_clepa_counted():
    pace = replay_pace(MAGNETS)
    assert pace.granted_share(JUN4, CONTROL) == pytest.approx(0.25, abs=0.01)
    assert pace.granted_share(JUN30, CONTROL) == pytest.approx(0.60, abs=0.01)


@pytest.mark.parametrize("name", DYTB)
def test_dytb_oxide_and_metal_licences_come_after_the_magnet_makers(name):
    # on 18 May six magnet makers held licences and the separators' applications were still
    # waiting: no oxide or metal file is decided before then, while nearly half of the magnet makers'
    # files filed on the control day are
    oxide, magnets = replay_pace(name), replay_pace(MAGNETS)
    first = np.array([CONTROL])
    assert oxide.decided_by(first, MAY18)[0] == 0.0
    assert magnets.decided_by(first, MAY18)[0] > 0.4  # 0.48
    # the June speed-up was the magnets': by CLEPA's dates the oxides have granted far less
    assert oxide.granted_share(JUN4, CONTROL) < 0.1
    assert oxide.granted_share(JUN30, CONTROL) < 0.5 * magnets.granted_share(JUN30, CONTROL)
    # and never more than the magnets, through the scored window (to 31 Oct)
    for day in np.arange(MAY18, SEP1 + 61, 7.0):
        assert oxide.granted_share(day, CONTROL) <= magnets.granted_share(day, CONTROL) + 1e-9


@pytest.mark.parametrize("name", DYTB)
def test_dytb_files_wait_at_aprils_pace_all_year(name):
    # no step: a file filed in April, in June or in September has the same odds; at 0.67 a month
    # after 44 days, half is decided within the statutory ~63 days (magnets from June: 99%)
    pace = replay_pace(name)
    within = [pace.decided_by(np.array([d]), d + 63.0)[0] for d in (CONTROL, JUN4, SEP1 + 10.0)]
    np.testing.assert_allclose(within, within[0], atol=1e-9)
    expected = 1.0 - (1.0 - 0.67) ** ((63.0 - 44.0) / DAYS_PER_MONTH)
    assert within[0] == pytest.approx(expected, abs=1e-6)
    assert 0.45 < within[0] < 0.55
    summer = replay_pace(MAGNETS).decided_by(np.array([JUN30]), JUN30 + 63.0)[0]
    assert summer > 0.99


def test_dytb_oxide_and_metal_share_one_pace():
    # both are the separators' and metal makers' licences (one source, one input)
    oxide, metal = (replay_pace(n) for n in DYTB)
    days = np.arange(0.0, 300.0, 5.0)
    np.testing.assert_array_equal(oxide.hazard(days), metal.hazard(days))
    assert oxide.min_days == metal.min_days == 44


def test_a_fixed_uniform_processing_time_cannot_reach_clepas_end_of_june():
    # the replay before (26-68 days, uniform): 24% by 4 Jun but 46% by 30 Jun, against 60%; and
    # no fixed processing time filed evenly can double the share in 26 days (0.25 -> 0.6 needs
    # the granted share of the days in between above 1): the pace changed in June
    # filed evenly from the control day, the share granted by day T is the mean of the processing
    # time's CDF over the T - 3 days since: the days between the counts would need a mean above 1
    between = (0.60 * (JUN30 - CONTROL) - 0.25 * (JUN4 - CONTROL)) / (JUN30 - JUN4)
    assert between > 1.0
    rng = np.random.default_rng(3)
    filed = rng.uniform(CONTROL, JUN30, 200_000)
    granted = filed + rng.uniform(26, 68, filed.size)
    early = filed <= JUN4
    assert (granted[early] <= JUN4).mean() == pytest.approx(0.24, abs=0.01)
    assert (granted <= JUN30).mean() == pytest.approx(0.46, abs=0.01)


def test_the_magnet_makers_slowdown_from_september_keeps_most_within_45_working_days():
    # Reuters 2025-10-13: from Sep approvals took longer, "generally still within" 45 working
    # days (~63 calendar days); the replay reads "generally" as 90% [U]
    pace = replay_pace(MAGNETS)
    sep = SEP1  # 1 Sep 2025
    within = pace.decided_by(np.array([sep + 10.0]), sep + 10.0 + 63.0)[0]
    assert within == pytest.approx(0.90, abs=0.01)
    summer = pace.decided_by(np.array([sep - 100.0]), sep - 100.0 + 63.0)[0]
    assert summer > 0.99  # the summer pace was faster


# ---------------------------------------------------------------- the kernel
def test_the_pace_kernel_matches_a_monte_carlo_of_filing_days_and_decisions():
    # 26 days, then 0.67 of the waiting decided a month, 0.98 from day 70
    pace = DecisionPace(26, [(0.0, 0.67), (70.0, 0.98)])
    rng = np.random.default_rng(11)
    n = 400_000
    for month, filed_from in ((0, 3 / DAYS_PER_MONTH), (1, 0.0), (4, 0.0)):
        filed = (month + rng.uniform(filed_from, 1.0, n)) * DAYS_PER_MONTH
        ready = filed + 26
        need = rng.exponential(1.0, n)  # the hazard each application waits for
        h0 = ready * pace.rates[0]
        h = np.where(h0 + need <= 70 * pace.rates[0], (h0 + need) / pace.rates[0], np.nan)
        late = np.isnan(h)
        start = np.maximum(ready[late], 70.0)
        left = need[late] - np.maximum(70.0 - ready[late], 0.0) * pace.rates[0]
        h[late] = start + left / pace.rates[1]
        lag = np.floor(h / DAYS_PER_MONTH).astype(int) - month
        expected = np.bincount(lag) / n
        kernel = pace.kernel(month, filed_from)
        assert kernel.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(kernel[: expected.size], expected[: kernel.size], atol=0.005)


def test_a_step_speeds_up_the_applications_already_waiting():
    slow = DecisionPace(26, [(0.0, 0.5)])
    stepped = DecisionPace(26, [(0.0, 0.5), (45.0, 0.95)])
    filed = np.array([5.0])
    # filed on day 5, ready on day 31; a month later half (slow) against most (stepped)
    assert slow.decided_by(filed, 61.0)[0] == pytest.approx(0.5, abs=0.01)
    assert stepped.decided_by(filed, 61.0)[0] > 0.8
    assert stepped.decided_by(filed, 30.0)[0] == 0.0  # nothing before the minimum


# ---------------------------------------------------------------- in the model
def test_a_slower_pace_moves_exports_later_and_keeps_the_total():
    # withdrawals off: with them the slower ministry's longer queue loses more orders
    # (scenario.controls.licence_withdrawal; tests/test_licence_timing.py)
    fast, base = run(processing_days={"min": 26, "decided": [{"per_month": 0.98}]}, withdrawal=0.0)
    slow, _ = run(processing_days={"min": 26, "decided": [{"per_month": 0.5}]}, withdrawal=0.0)
    # applications filed in the first days of April are decided from the 27th
    assert slow[APR] < fast[APR] < 0.2 * base
    # by June the slower ministry has let through less; the backlog ships later
    assert slow[MAY : JUN + 1].sum() < fast[MAY : JUN + 1].sum() - 0.3 * base
    assert slow[JUL:].sum() > fast[JUL:].sum()
    # (0.04 / 0.88 / 1.26 of the base flow in Apr / May / Jun against 0.01 / 0.36 / 0.78): and
    # in December the slower one still ships its backlog (1.18 against 0.98)
    assert slow[-1] > fast[-1] + 0.1 * base
    assert fast[-1] == pytest.approx(base, rel=0.1)


def test_a_dated_speed_up_ships_the_backlog_in_its_month():
    flat, base = run(processing_days={"min": 26, "decided": [{"per_month": 0.4}]})
    step, _ = run(
        processing_days={
            "min": 26,
            "decided": [{"per_month": 0.4}, {"from": "2024-06-10", "per_month": 0.98}],
        }
    )
    assert step[MAY] == pytest.approx(flat[MAY], rel=1e-6)  # the same until the step
    assert step[JUN] > flat[JUN] + 0.3 * base


@pytest.mark.parametrize(
    ("decided", "named"),
    [
        ([{"from": "2024-04-04", "per_month": 0.5}], ["decided[0].from", "first step"]),
        ([{"per_month": 0.5}, {"per_month": 0.6}], ["decided[1].from"]),
        ([{"per_month": 0.5}, {"from": "2024-06", "per_month": 0.6}], ["decided[1].from", "YYYY-MM-DD"]),
        ([{"per_month": 0.5}, {"from": "2024-03-10", "per_month": 0.6}], ["decided[1].from", "start"]),
        (
            [
                {"per_month": 0.5},
                {"from": "2024-06-10", "per_month": 0.6},
                {"from": "2024-05-01", "per_month": 0.7},
            ],
            ["decided[2].from", "after"],
        ),
        ([{"per_month": 1.0}], ["per_month"]),
        ("fast", ["decided", "steps"]),
    ],
)
def test_bad_pace_keys_are_data_errors_naming_the_key(decided, named):
    with pytest.raises(DataError) as err:
        build([{**LIC, "processing_days": {"min": 26, "decided": decided}}])
    text = str(err.value)
    assert "shock.instruments[0].processing_days" in text
    for part in named:
        assert part in text, (part, text)
