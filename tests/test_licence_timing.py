"""Licences at the resolution of days (issue 15, item 3): the control day within the start month,
per-shipment processing times spread over days, applications that are buyers' orders (a buyer
does not apply twice for a need that waits) and orders withdrawn while they wait
(policies/export_controls.py: ExportLicensing, landing_kernel)."""

from __future__ import annotations

import numpy as np
import pytest
from test_quotas import build, monthly_exports

from critmin.policies.export_controls import DAYS_PER_MONTH, landing_kernel
from critmin.sim.world import DataError

LIC = {"type": "export_licensing", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
APR, MAY, JUN, JUL = 3, 4, 5, 6  # months of the 2024 test run


def run(**keys) -> tuple[np.ndarray, float]:
    """Monthly exports on the licensed edges and their 2024 base flow per month."""
    model = build([{**LIC, **keys}])
    edges = model.policies[0].edges
    return monthly_exports(model, edges), float(model.base_edge_flow[edges].sum())


# ---------------------------------------------------------------- the landing kernel
@pytest.mark.parametrize(
    ("lo", "hi", "filed_from"), [(26, 68, 0.0), (26, 68, 3 / DAYS_PER_MONTH), (37, 70, 0.46)]
)
def test_the_landing_kernel_matches_a_monte_carlo_of_filing_days_and_processing_times(lo, hi, filed_from):
    rng = np.random.default_rng(7)
    n = 400_000
    filed = rng.uniform(filed_from, 1.0, n)
    days = rng.uniform(lo, hi, n)
    lag = np.floor(filed + days / DAYS_PER_MONTH).astype(int)
    expected = np.bincount(lag) / n
    kernel = landing_kernel(lo, hi, filed_from)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel.size == expected.size
    np.testing.assert_allclose(kernel, expected, atol=0.005)


def test_a_fixed_processing_time_splits_a_month_by_the_days_left_in_it():
    # 45 days = 1.478 months: applications filed before day 0.522 of the month land next month
    kernel = landing_kernel(45, 45)
    assert kernel[0] == 0.0
    assert kernel[1] == pytest.approx(2.0 - 45 / DAYS_PER_MONTH, abs=0.003)
    assert kernel[2] == pytest.approx(45 / DAYS_PER_MONTH - 1.0, abs=0.003)


# ---------------------------------------------------------------- the control day
def test_shipments_before_the_control_day_go_out_unlicensed():
    x1, base = run(delay_months=2)
    x11, _ = run(delay_months=2, start_day=11)
    assert x1[APR] == 0.0
    # ten days of April's exports (of the 30.4-day month) went out before the control
    assert x11[APR] / base == pytest.approx(10 / DAYS_PER_MONTH, rel=0.1)
    assert x11[MAY] == 0.0  # the rest of April's applications wait their two months


def test_processing_times_in_days_ship_part_of_a_months_applications_within_weeks():
    # withdrawals off: the processing times alone (withdrawals are tested below)
    fast, base = run(processing_days={"min": 10, "max": 20}, withdrawal=0.0)
    slow, _ = run(processing_days={"min": 45, "max": 60}, withdrawal=0.0)
    # 10-20 days: half of April's applications are approved within April, the rest in May
    assert 0.35 < fast[APR] / base < 0.65
    assert fast[MAY] / base > 0.9
    # 45-60 days: nothing in April, a quarter of April's applications in May
    assert slow[APR] == 0.0
    assert 0.1 < slow[MAY] / base < 0.4
    assert slow[JUN] / base > 0.9


def test_the_first_applications_wait_for_the_filing_lag():
    now, base = run(processing_days={"min": 10, "max": 20})
    later, _ = run(processing_days={"min": 10, "max": 20}, filing_lag_days=14)
    # filed from the 15th, April's applications are approved from the 25th: few within April
    share = landing_kernel(10, 20, 14 / DAYS_PER_MONTH)[0]
    assert share < 0.15
    assert later[APR] / base == pytest.approx(share, abs=0.02)
    assert later[APR] < 0.3 * now[APR]
    assert later[MAY] / base > 0.9  # the rest in May, with May's own early approvals


# ---------------------------------------------------------------- applications are orders
def test_a_buyer_does_not_apply_twice_for_a_need_that_waits():
    # withdrawals off: the netting alone (withdrawals are the next test's)
    model = build([{**LIC, "delay_months": 2, "withdrawal": 0.0}])
    edges = model.policies[0].edges
    base = float(model.base_edge_flow[edges].sum())
    netted = monthly_exports(model, edges) / base
    twice = build([{**LIC, "delay_months": 2, "withdrawal": 0.0}])
    twice.policies[0].restock = np.full(edges.size, np.inf)  # no netting: re-asks filed again
    doubled = monthly_exports(twice, edges) / base
    # without netting the backlog ships ~1.45x a normal month in July (up to 1.5x); netted ~1.3x:
    # what buyers abroad lost in the two months without licences and their restocking, on China's
    # 2024 exports (58 kt; the restocking is a larger share of it than of the 68 kt before China's
    # magnet users were fitted to buy Chinese magnets: then ~1.5x and ~1.2x). Since buyers cut off
    # from their imports are pulled toward the expected scarcity (sim/prices/anchors.py cutoff_anchor)
    # the two months without licences cost them more and they re-ask less: ~1.65x and ~1.3x before
    assert doubled[JUL] > 1.4
    assert netted[JUL] < doubled[JUL] - 0.1
    assert netted[JUL:].max() < doubled[JUL:].max() - 0.15
    assert netted[-3:].mean() > 0.95  # and volumes come back


def test_orders_withdrawn_while_they_wait_are_not_shipped_later():
    kept, _ = run(processing_days={"min": 26, "max": 68}, withdrawal=0.0)
    withdrawn, _ = run(processing_days={"min": 26, "max": 68}, withdrawal=0.3)
    assert withdrawn[APR] == pytest.approx(kept[APR])  # nothing waited yet
    # a share of what waited is withdrawn each month: less of the backlog ships
    lost = 1.0 - withdrawn[MAY : JUL + 3].sum() / kept[MAY : JUL + 3].sum()
    assert 0.1 < lost < 0.5
    assert withdrawn[MAY:].max() < kept[MAY:].max()


# ---------------------------------------------------------------- the behavioural parameter
def test_the_instrument_reads_the_scenarios_withdrawal_unless_its_yaml_gives_one():
    default = build([LIC])
    assert default.policies[0].withdrawal == pytest.approx(default.params.controls.licence_withdrawal)
    assert default.policies[0].withdrawal == pytest.approx(
        0.228
    )  # the scenario's, fitted (docs/calibration.md)
    scenario = build([LIC], overrides=["scenario.controls.licence_withdrawal=0.25"])
    assert scenario.policies[0].withdrawal == pytest.approx(0.25)
    sourced = build([{**LIC, "withdrawal": 0.05}], overrides=["scenario.controls.licence_withdrawal=0.25"])
    assert sourced.policies[0].withdrawal == pytest.approx(0.05)  # the instrument's own value wins


@pytest.mark.parametrize("bad", [-0.1, 1.2])
def test_a_scenario_withdrawal_outside_0_1_is_a_data_error_naming_the_key(bad):
    with pytest.raises(DataError, match="licence_withdrawal"):
        build([LIC], overrides=[f"scenario.controls.licence_withdrawal={bad}"])


def test_a_higher_scenario_withdrawal_ships_less_of_the_backlog_when_approvals_land():
    # two months' processing: April's and May's applications land in June and July
    def backlog(share: float) -> float:
        model = build(
            [{**LIC, "delay_months": 2}], overrides=[f"scenario.controls.licence_withdrawal={share}"]
        )
        edges = model.policies[0].edges
        x = monthly_exports(model, edges) / float(model.base_edge_flow[edges].sum())
        assert x[APR] == 0.0 and x[MAY] == 0.0  # nothing is approved before June either way
        return float(x[JUN : JUL + 1].sum())

    none, low, high = backlog(0.0), backlog(0.1), backlog(0.3)
    # each month buyers short of stock withdraw the share of what waits that their gap covers:
    # June+July ship less the more they withdraw (none ~2.32, 0.1 ~2.14, 0.3 ~1.80 normal months)
    assert none > low > high
    assert 0.04 < 1.0 - low / none < 0.12
    assert 0.15 < 1.0 - high / none < 0.3


# ---------------------------------------------------------------- the covered share
def test_goods_the_licence_does_not_cover_ship_unlicensed():
    # withdrawals off: the coverage alone (withdrawals are tested above)
    full, base = run(delay_months=2, withdrawal=0.0)
    part, _ = run(delay_months=2, covered_share=0.3, withdrawal=0.0)
    assert full[APR] == 0.0 and full[MAY] == 0.0
    # 70% of the trade is not covered: it ships in the months covered goods wait for licences
    assert part[APR] / base == pytest.approx(0.7, abs=0.05)
    # May: buyers short of stock ask more, and the uncovered 70% of it still ships
    assert 0.7 < part[MAY] / base < 0.9
    # the covered 30% of April's applications land in June; a smaller backlog than under full
    # coverage (July ~1.3x a normal month there, ~1.16x here)
    assert part[JUN] / base > 1.0
    assert part[JUN:].max() < full[JUN:].max() - 0.1
    assert part[APR:JUN].sum() > full[APR:JUN].sum() + 1.2 * base


def test_a_blend_covered_by_its_content_share_is_nearly_free():
    # a metal blend with 3.3% of a listed element by mass (re_metal: NdPr with Dy/Tb)
    part, base = run(delay_months=2, covered_share=0.033)
    assert part[APR] / base == pytest.approx(0.967, abs=0.02)


def test_the_covered_share_follows_enforcement_steps():
    # customs apply the control to the whole customs code from May: April ships the uncovered
    # half, May only what April's applications for covered goods bring (nothing at 2 months)
    steps, base = run(
        delay_months=2, covered_share=[{"share": 0.5}, {"from": "2024-05", "share": 1.0}], withdrawal=0.0
    )
    assert steps[APR] / base == pytest.approx(0.5, abs=0.05)
    assert steps[MAY] / base < 0.05
    # June: April's applications (the covered half); July: May's (all of the trade)
    assert steps[JUN] / base == pytest.approx(0.5, abs=0.1)
    assert steps[JUL] / base > 0.9


# ---------------------------------------------------------------- bad keys
@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"processing_days": {"min": 60, "max": 30}}, ["processing_days", "min <= max"]),
        ({"processing_days": {"min": 30}}, ["processing_days", "'max'"]),
        ({"processing_days": {"min": 30, "max": 60}, "delay_months": 2}, ["not both"]),
        ({"delay_months": 2, "filing_lag_days": 10}, ["filing_lag_days", "processing_days"]),
        ({"start_day": 0}, ["start_day"]),
        ({"withdrawal": 1.5}, ["withdrawal"]),
        ({"covered_share": 1.2}, ["covered_share"]),
        ({"covered_share": [{"from": "2024-05", "rate": 0.5}]}, ["covered_share[0]", "share"]),
        ({"covered_share": "half"}, ["covered_share", "steps"]),
    ],
)
def test_bad_licence_timing_keys_are_data_errors_naming_the_key(keys, named):
    with pytest.raises(DataError) as err:
        build([{**LIC, **keys}])
    text = str(err.value)
    assert "shock.instruments[0]" in text
    for part in named:
        assert part in text, (part, text)
