"""Customs clearance after a licence's grant (issue 15): a licence decided on day d ships on
d + its clearance time (``clearance_days: {min, max}``, uniform per shipment), so a month's
approvals leave over the following months; the goods wait in the exporter's stock and nothing is
lost; without the key a licence ships in its decision month, bit for bit as before
(policies/export_controls.py: Clearance)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_licence_timing import APR, JUN, LIC, MAY
from test_quotas import build, monthly_exports

from critmin.policies.export_controls import DAYS_PER_MONTH, Clearance
from critmin.sim.world import DataError

PACE = {"min": 45, "max": 45}  # every application decided 45 days after it is filed


def run(**keys) -> tuple[np.ndarray, float, object]:
    """Monthly exports on the licensed edges, their 2024 base flow per month and the instrument."""
    model = build([{**LIC, **keys}])
    policy = model.policies[0]
    return monthly_exports(model, policy.edges), float(model.base_edge_flow[policy.edges].sum()), policy


# ---------------------------------------------------------------- the kernel
@pytest.mark.parametrize(("lo", "hi"), [(7, 21), (30, 61), (7, 61)])
def test_a_shipment_decided_on_day_d_clears_on_d_plus_its_clearance_time(lo, hi):
    # Monte Carlo: licences decided evenly over a month, each clearing after U(lo, hi) days
    rng = np.random.default_rng(5)
    n = 400_000
    decided = rng.uniform(0.0, DAYS_PER_MONTH, n)
    cleared = decided + rng.uniform(lo, hi, n)
    expected = np.bincount(np.floor(cleared / DAYS_PER_MONTH).astype(int)) / n
    kernel = Clearance(lo, hi, 1).kernel
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel[: expected.size], expected[: kernel.size], atol=0.005)


def test_a_fixed_clearance_time_splits_a_month_by_the_days_left_in_it():
    # 20 days: licences decided after day ~10.4 of a month clear the next month
    kernel = Clearance(20, 20, 1).kernel
    assert kernel[0] == pytest.approx(1.0 - 20 / DAYS_PER_MONTH, abs=0.003)
    assert kernel[1] == pytest.approx(20 / DAYS_PER_MONTH, abs=0.003)


def test_clearance_moves_tonnes_in_time_and_conserves_them():
    clearance = Clearance(7, 61, 3)
    rng = np.random.default_rng(2)
    approved_total = np.zeros(3)
    released_total = np.zeros(3)
    for t in range(40):
        approved = rng.uniform(0.0, 100.0, 3) if t < 30 else np.zeros(3)
        approved_total += approved
        released = clearance.release(t, approved)
        released_total += released
        assert (released >= 0).all()
        # every tonne approved so far has either cleared or waits in the exporter's stock
        np.testing.assert_allclose(released_total + clearance.held(), approved_total, rtol=1e-12)
    assert clearance.held() == pytest.approx(np.zeros(3), abs=1e-9)  # all of it left, once


def test_no_clearance_time_is_todays_licence_bit_for_bit():
    base, _, policy = run(processing_days=PACE)
    zero, _, zero_policy = run(processing_days=PACE, clearance_days={"min": 0, "max": 0})
    assert policy.clearance is None
    np.testing.assert_array_equal(zero, base)
    assert zero_policy.clearance.held().sum() == 0.0


# ---------------------------------------------------------------- in the model
def test_a_months_clearance_ships_each_months_approvals_a_month_later():
    # withdrawals off, so the orders that wait are the same with and without clearance
    now, base, _ = run(processing_days=PACE, withdrawal=0.0)
    later, _, policy = run(processing_days=PACE, withdrawal=0.0, clearance_days={"min": 30, "max": 30})
    # (0 / 0.53 / 1.17 / 1.30 of the base flow in Apr-Jul against 0 / 0.01 / 0.54 / 1.17): what
    # the licence let through in a month leaves the next one (30 days = 0.986 of a month)
    assert later[MAY] < 0.05 * base < now[MAY]
    np.testing.assert_allclose(later[JUN : JUN + 4], now[MAY : MAY + 4], rtol=0.03)
    # meanwhile the goods wait: about a month of approvals held at customs from June on
    assert policy.clearance.held().sum() == pytest.approx(later[-1], rel=0.1)
    assert later[APR] == now[APR] == pytest.approx(0.0, abs=1e-9)


def test_a_buyer_does_not_apply_again_for_goods_held_at_customs():
    # the same buyers, the same stock gaps: goods approved and waiting at customs are netted
    # against the gaps like pending applications (a buyer does not apply twice for an order)
    model = build(
        [{**LIC, "processing_days": PACE, "withdrawal": 0.0, "clearance_days": {"min": 30, "max": 30}}]
    )
    policy = model.policies[0]
    while model.state.t < JUN:
        model.step()
    net = model.net
    buyers = net.edge_buyer[policy.edges]
    assert policy.clearance.held().sum() > 0
    request = 1.5 * np.bincount(buyers, model.base_edge_flow[policy.edges], net.n_slots)
    held, empty = copy.deepcopy(policy), copy.deepcopy(policy)
    for p in (held, empty):  # no application pending: only the goods at customs are netted
        p.waiting.clear()
    empty.clearance.ring[:] = 0.0  # the same month with nothing at customs
    # each edge's gap (its share of the buyer's stock gap) exceeds what waits at customs on it
    # (306 t against 130 t on the largest), so each tonne held is a tonne not applied for again,
    # spread over the buyers' restock months (3)
    held.market(model, request)
    empty.market(model, request)
    assert (held.applied <= empty.applied + 1e-9).all()
    fewer = empty.applied.sum() - held.applied.sum()
    assert fewer == pytest.approx(policy.clearance.held().sum() / 3.0, rel=0.05)  # restock 3 months


@pytest.mark.parametrize(
    ("clearance", "named"),
    [
        ({"min": 30, "max": 7}, ["clearance_days", "min <= max"]),
        ({"min": -1, "max": 7}, ["clearance_days.min"]),
        ({"min": 7}, ["clearance_days", "'max'"]),
        ({"min": 7, "max": 21, "mean": 14}, ["clearance_days", "mean"]),
    ],
)
def test_bad_clearance_keys_are_data_errors_naming_the_key(clearance, named):
    with pytest.raises(DataError) as err:
        build([{**LIC, "processing_days": PACE, "clearance_days": clearance}])
    text = str(err.value)
    assert "shock.instruments[0].clearance_days" in text
    for part in named:
        assert part in text, (part, text)
