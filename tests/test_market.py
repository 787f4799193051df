"""Clearing engine on hand-built books (no Mesa, no model)."""

import numpy as np
import pytest

from critmin.sim.market import clear, logit_weights
from critmin.sim.prices import delivered_cost, update_log_prices


def book():
    # two sellers (slots 0, 1), two buyers (slots 2, 3); every seller reaches every buyer
    seller = np.array([0, 1, 0, 1])
    buyer = np.array([2, 2, 3, 3])
    offer = np.array([10.0, 10.0, 0.0, 0.0])
    request = np.array([0.0, 0.0, 8.0, 8.0])
    return seller, buyer, offer, request


def test_merit_order_serves_cheapest_first_then_redistributes():
    seller, buyer, offer, request = book()
    p_del = np.array([100.0, 110.0, 100.0, 110.0])
    res = clear(request, offer, seller, buyer, p_del, theta=0.0)
    # both buyers want the cheap seller (16 t) but it has 10: pro rata 5 each, rest from seller 1
    np.testing.assert_allclose(res.flow, [5.0, 3.0, 5.0, 3.0])
    np.testing.assert_allclose(res.unmet, 0.0)
    # seller 0 was asked for 16 t and had 10 (a 37.5% unmet share); seller 1 for the 6 t left
    np.testing.assert_allclose(res.asked, [8.0, 3.0, 8.0, 3.0])
    np.testing.assert_allclose(res.sold, [10.0, 6.0, 0.0, 0.0])


def test_edge_cap_zero_is_a_ban_and_group_cap_is_a_quota():
    seller, buyer, offer, request = book()
    p_del = np.array([100.0, 110.0, 100.0, 110.0])
    banned = clear(
        request, offer, seller, buyer, p_del, theta=0.0, edge_cap=np.array([0.0, np.inf, np.inf, np.inf])
    )
    assert banned.flow[0] == 0.0
    quota = clear(
        request,
        offer,
        seller,
        buyer,
        p_del,
        theta=0.0,
        groups=(np.array([0, 2]), np.array([0, 0]), np.array([4.0])),
    )
    assert quota.flow[[0, 2]].sum() == pytest.approx(4.0)
    assert quota.asked[[0, 2]].sum() == pytest.approx(4.0)  # blocked requests are not demand
    assert quota.capped[[0, 2]].all() and not quota.capped[[1, 3]].any()
    # the other seller fills in up to its 10 t: 16 wanted, 4 + 10 reachable
    assert quota.sold[1] == pytest.approx(10.0)
    assert quota.unmet.sum() == pytest.approx(2.0)


def test_shortage_leaves_unmet_demand_and_never_oversells():
    seller, buyer, offer, request = book()
    request = np.array([0.0, 0.0, 15.0, 15.0])
    res = clear(request, offer, seller, buyer, np.full(4, 100.0), theta=0.05)
    assert res.sold[:2] == pytest.approx([10.0, 10.0])
    assert res.unmet.sum() == pytest.approx(10.0)
    assert (res.flow >= 0).all()


def test_logit_shares_follow_cost_and_preference():
    buyer = np.zeros(2, dtype=np.int64)
    active = np.ones(2, bool)
    w = logit_weights(np.array([100.0, 105.0]), buyer, 1, 0.05, np.ones(2), active)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(np.exp(5.0 / 5.0))  # exp(Δp / (θ·p_min))
    w = logit_weights(np.array([100.0, 100.0]), buyer, 1, 0.05, np.array([3.0, 1.0]), active)
    assert w[0] == pytest.approx(0.75)


def test_delivered_cost_applies_tax_transport_and_tariff_in_order():
    assert delivered_cost(np.array([100.0]), np.array([10.0]), 0.2, 0.1)[0] == pytest.approx((120 + 10) * 1.1)


def test_price_update_direction_and_clip():
    lp = np.log(np.full(3, 100.0))
    new = update_log_prices(
        lp, np.array([0.5, 0.0, 0.0]), np.array([1.0, 2.0, 1.0]), kappa=0.4, sigma=0.1, max_step=0.15
    )
    assert new[0] - lp[0] == pytest.approx(0.15)  # 0.2 clipped to 0.15
    assert new[1] - lp[1] == pytest.approx(-0.1 * np.log(2.0))  # excess stock pushes down
    assert new[2] == pytest.approx(lp[2])  # balanced market stays put
