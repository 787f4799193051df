"""Clearing and price-update rules on hand-built books (no Mesa, no model).

They pin the public functions of ``sim/market.py``: ``clear``, ``logit_weights``,
``marginal_price``, ``delivered_cost`` and ``update_log_prices``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critmin.sim.market import clear, logit_weights
from critmin.sim.prices import delivered_cost, marginal_price, update_log_prices


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


def test_with_ample_offers_flows_split_each_request_by_the_logit_shares():
    seller, buyer, _, request = book()
    offer = np.array([1e6, 1e6, 0.0, 0.0])
    p_del = np.array([100.0, 110.0, 100.0, 105.0])
    pref = np.array([1.0, 1.0, 1.0, 2.0])
    res = clear(request, offer, seller, buyer, p_del, theta=0.1, preference=pref)
    # buyer 2: exp(0) : exp(-10/10); buyer 3: 1·exp(0) : 2·exp(-5/10)
    w2 = np.array([1.0, np.exp(-1.0)]) / (1 + np.exp(-1.0))
    w3 = np.array([1.0, 2 * np.exp(-0.5)]) / (1 + 2 * np.exp(-0.5))
    np.testing.assert_allclose(res.flow, [8 * w2[0], 8 * w2[1], 8 * w3[0], 8 * w3[1]], rtol=1e-12)
    np.testing.assert_allclose(res.unmet, 0.0, atol=1e-12)


def test_an_oversubscribed_seller_is_shared_pro_rata_and_the_rest_goes_elsewhere():
    seller, buyer, _, _ = book()
    request = np.array([0.0, 0.0, 6.0, 2.0])
    offer = np.array([4.0, 100.0, 0.0, 0.0])
    p_del = np.array([100.0, 200.0, 100.0, 200.0])
    res = clear(request, offer, seller, buyer, p_del, theta=0.0, passes=1)
    np.testing.assert_allclose(res.flow[[0, 2]], [3.0, 1.0])  # 4 t shared 6 : 2
    np.testing.assert_allclose(res.unmet, [0.0, 0.0, 3.0, 1.0])  # one pass: no second chance
    res = clear(request, offer, seller, buyer, p_del, theta=0.0, passes=2)
    np.testing.assert_allclose(res.flow, [3.0, 3.0, 1.0, 1.0])  # the second pass buys elsewhere
    np.testing.assert_allclose(res.unmet, 0.0)


def random_book(rng: np.random.Generator, n_s: int, n_b: int, n_e: int, max_request: float) -> tuple:
    """Sellers 0..n_s-1 and buyers after them, random edges between them, offers and requests,
    and a cap on about 30% of the edges: (seller, buyer, offer, request, cap)."""
    seller = rng.integers(0, n_s, n_e)
    buyer = n_s + rng.integers(0, n_b, n_e)
    offer = np.r_[rng.uniform(0, 20, n_s), np.zeros(n_b)]
    request = np.r_[np.zeros(n_s), rng.uniform(0, max_request, n_b)]
    cap = np.where(rng.random(n_e) < 0.3, rng.uniform(0, 5, n_e), np.inf)
    return seller, buyer, offer, request, cap


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_clearing_conserves_tonnes_and_respects_every_limit_on_random_books(seed):
    rng = np.random.default_rng(seed)
    n_s, n_b, n_e = 4, 5, 12
    seller, buyer, offer, request, cap = random_book(rng, n_s, n_b, n_e, max_request=20.0)
    members = rng.choice(n_e, 5, replace=False)
    groups = (members, np.array([0, 0, 0, 1, 1]), np.array([3.0, 1.0]))
    res = clear(
        request, offer, seller, buyer, rng.uniform(50, 150, n_e), theta=rng.uniform(0, 0.3),
        edge_cap=cap, groups=groups, preference=rng.uniform(0.1, 1, n_e),
    )  # fmt: skip
    got = np.bincount(buyer, weights=res.flow, minlength=n_s + n_b)
    np.testing.assert_allclose(got + res.unmet, request, atol=1e-9)  # every tonne served or unmet
    np.testing.assert_allclose(res.sold, np.bincount(seller, weights=res.flow, minlength=n_s + n_b))
    assert (res.flow >= 0).all() and (res.sold <= offer + 1e-9).all() and (res.flow <= cap + 1e-9).all()
    assert res.flow[members[:3]].sum() <= 3.0 + 1e-9 and res.flow[members[3:]].sum() <= 1.0 + 1e-9
    assert (res.asked >= res.flow - 1e-9).all()


def test_marginal_price_skips_capped_edges_and_is_nan_without_an_open_one():
    buyer = np.array([0, 0, 1])
    p_del = np.array([100.0, 120.0, 90.0])
    pref = np.ones(3)
    open_all = marginal_price(p_del, buyer, 2, 0.0, pref, np.zeros(3, bool))
    np.testing.assert_allclose(open_all, [100.0, 90.0])
    capped = marginal_price(p_del, buyer, 2, 0.0, pref, np.array([True, False, True]))
    assert capped[0] == pytest.approx(120.0) and np.isnan(capped[1])


@pytest.mark.parametrize(
    "z, cover, lp_norm, rho, step",
    [
        (0.1, 1.0, None, 0.0, 0.2 * 0.1),  # unmet requests: up by kappa·z
        (0.3, 1.0, None, 0.0, 0.2 * 0.3),
        (0.0, 0.5, None, 0.0, -0.1 * np.log(0.5)),  # cover below target: up by -sigma·ln(cover)
        (0.0, 1.0, np.log(80.0), 0.05, -0.05 * np.log(100.0 / 80.0)),  # pulled down toward the norm
        (0.0, 1.0, np.log(125.0), 0.05, 0.05 * np.log(125.0 / 100.0)),  # and up toward it
        (0.1, 2.0, np.log(80.0), 0.05, 0.02 - 0.1 * np.log(2.0) - 0.05 * np.log(1.25)),  # terms add
        (1.0, 0.1, None, 0.0, 0.15),  # clipped at max_step
        (0.0, 100.0, None, 0.0, -0.15),  # both ways
    ],
)
def test_price_step_has_the_size_of_each_term(z, cover, lp_norm, rho, step):
    lp = np.log(np.array([100.0]))
    norm = None if lp_norm is None else np.array([lp_norm])
    new = update_log_prices(
        lp, np.array([z]), np.array([cover]), kappa=0.2, sigma=0.1, max_step=0.15, log_p_norm=norm, rho=rho
    )
    assert new[0] - lp[0] == pytest.approx(step, rel=1e-12, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_edges_that_cannot_trade_change_nothing_in_the_clearing(seed):
    # the passes run over the edges active in the first one: adding banned edges, edges from
    # sellers with nothing on offer and edges into buyers that want nothing leaves every other
    # number exactly as it was
    rng = np.random.default_rng(seed)
    n_s, n_b, n_e = 4, 5, 12
    seller = rng.integers(0, n_s - 1, n_e)  # seller n_s - 1 offers nothing
    buyer = n_s + rng.integers(0, n_b - 1, n_e)  # buyer n_s + n_b - 1 asks for nothing
    offer = np.r_[rng.uniform(1, 20, n_s - 1), 0.0, np.zeros(n_b)]
    request = np.r_[np.zeros(n_s), rng.uniform(1, 20, n_b - 1), 0.0]
    cap = np.where(rng.random(n_e) < 0.3, rng.uniform(0.5, 5, n_e), np.inf)
    p_del, pref = rng.uniform(50, 150, n_e), rng.uniform(0.1, 1, n_e)
    members, group = rng.choice(n_e, 5, replace=False), np.array([0, 0, 0, 1, 1])
    dead_seller = np.r_[n_s - 1, 0, 1]
    dead_buyer = np.r_[n_s, n_s + n_b - 1, n_s + 1]
    dead_cap = np.r_[np.inf, np.inf, 0.0]
    # dead edges anywhere among the live ones, which keep their order (sums run in edge order)
    at = np.r_[np.sort(rng.choice(n_e + 3, n_e, replace=False)), 0, 0, 0]
    live = np.zeros(n_e + 3, bool)
    live[at[:n_e]] = True
    at[n_e:] = np.flatnonzero(~live)  # edge i of the live book (or dead edge) is edge at[i]
    order = np.argsort(at)
    full_seller, full_buyer = np.r_[seller, dead_seller][order], np.r_[buyer, dead_buyer][order]
    kw = {"theta": 0.1, "passes": 4}
    alone = clear(
        request, offer, seller, buyer, p_del, edge_cap=cap, preference=pref,
        groups=(members, group, np.array([3.0, 1.0])), **kw,
    )  # fmt: skip
    full = clear(
        request, offer, full_seller, full_buyer, np.r_[p_del, 100.0, 100.0, 100.0][order],
        edge_cap=np.r_[cap, dead_cap][order], preference=np.r_[pref, 1.0, 1.0, 1.0][order],
        groups=(np.r_[at[members], at[n_e + 2]], np.r_[group, 1], np.array([3.0, 1.0])), **kw,
    )  # fmt: skip
    for name in ("flow", "asked", "capped"):
        assert np.array_equal(getattr(full, name)[at[:n_e]], getattr(alone, name)), name
    assert np.array_equal(full.unmet, alone.unmet) and np.array_equal(full.sold, alone.sold)
    assert (full.flow[~live] == 0).all() and full.capped[at[n_e + 2]]


def _reference_clear(request, offer, seller, buyer, p_del, theta, cap, groups, preference, passes):
    """The allocation rule written plainly: every pass over every edge, inactive ones adding
    exact zeros (the kernel drops them; the sums must come out the same to the last bit)."""
    n_b, n_s, n_e = request.size, offer.size, seller.size
    g_edge, g_group, left = groups[0], groups[1], groups[2].astype(float).copy()
    req, off, cap = request.astype(float).copy(), offer.astype(float).copy(), cap.astype(float).copy()
    flow, asked = np.zeros(n_e), np.zeros(n_e)
    for _ in range(passes):
        gone = np.bincount(g_edge, weights=(left[g_group] <= 0) * 1.0, minlength=n_e) > 0
        active = (cap > 0) & (off[seller] > 0) & (req[buyer] > 0) & ~gone
        if not active.any():
            break
        w = logit_weights(p_del, buyer, n_b, theta, preference, active)
        want = w * req[buyer]
        q = np.minimum(want, cap)
        for _ in range(4):  # what a cap blocks spills over the buyer's edges with room, same pass
            if not (want - q > 1e-12).any():
                break
            blocked = np.bincount(buyer, weights=want - q, minlength=n_b)
            room = np.where(cap - q > 1e-12, w, 0.0)
            norm = np.bincount(buyer, weights=room, minlength=n_b)[buyer]
            want = q + np.divide(room * blocked[buyer], norm, out=np.zeros(n_e), where=norm > 0)
            q = np.minimum(want, cap)
        g_asked = np.bincount(g_group, weights=q[g_edge], minlength=left.size)
        g_scale = np.divide(left, g_asked, out=np.ones_like(left), where=g_asked > left)
        e_scale = np.ones(n_e)
        np.minimum.at(e_scale, g_edge, g_scale[g_group])
        q = q * e_scale
        asked += q
        asked_s = np.bincount(seller, weights=q, minlength=n_s)
        q = q * np.divide(off, asked_s, out=np.ones_like(off), where=asked_s > off)[seller]
        flow += q
        cap = np.maximum(cap - q, 0.0)
        left = np.maximum(left - np.bincount(g_group, weights=q[g_edge], minlength=left.size), 0.0)
        off = np.maximum(off - np.bincount(seller, weights=q, minlength=n_s), 0)
        req = np.maximum(req - np.bincount(buyer, weights=q, minlength=n_b), 0)
    return flow, asked, req


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_passes_over_the_still_active_edges_give_the_plain_rule_to_the_last_bit(seed):
    # each pass runs over the edges still active (sellers sold out, buyers served and caps used
    # up drop out); flows, requests and unmet tonnes equal the rule run over every edge exactly
    rng = np.random.default_rng(seed)
    n_s, n_b, n_e = 5, 6, 30
    seller, buyer, offer, request, cap = random_book(rng, n_s, n_b, n_e, max_request=30.0)
    members = rng.choice(n_e, 6, replace=False)
    groups = (members, np.array([0, 0, 0, 1, 1, 1]), np.array([3.0, 2.0]))
    p_del, pref, theta = rng.uniform(50, 150, n_e), rng.uniform(0.1, 1, n_e), rng.choice([0.0, 0.1, 0.3])
    res = clear(
        request,
        offer,
        seller,
        buyer,
        p_del,
        theta=theta,
        edge_cap=cap,
        groups=groups,
        preference=pref,
        passes=4,
    )
    flow, asked, unmet = _reference_clear(request, offer, seller, buyer, p_del, theta, cap, groups, pref, 4)
    assert np.array_equal(res.flow, flow) and np.array_equal(res.asked, asked)
    assert np.array_equal(res.unmet, unmet)


@pytest.mark.parametrize("seed", range(3))
def test_the_clearing_passes_weights_and_buyer_minimum_equal_the_general_ones(seed):
    """The clearing passes' logit weights (finite costs, each buyer's least cost by a sort) are
    the general ones (np.minimum.at), bit for bit; so is each buyer's least cost."""
    from critmin.sim import market

    rng = np.random.default_rng(seed)
    n_b, n_e = 40, 300
    buyer = rng.integers(0, n_b - 5, n_e)  # some buyers without edges
    cost = rng.lognormal(8, 1, n_e)
    preference = rng.uniform(0.2, 3.0, n_e)
    grouped = market._by_buyer(buyer)
    best = np.full(n_b, np.inf)
    np.minimum.at(best, buyer, cost)
    assert np.array_equal(market._buyer_min(cost, n_b, *grouped), best)
    general = market._weights(cost, buyer, n_b, 0.05, preference, None)
    assert np.array_equal(market._finite_weights(cost, buyer, n_b, 0.05, preference, grouped), general)
    assert np.allclose(np.bincount(buyer, weights=general, minlength=n_b)[np.unique(buyer)], 1.0)


def test_a_capped_edge_spills_its_request_to_the_buyers_other_sellers_in_the_same_pass():
    """Buyer 0 prefers a seller whose edge is capped at 1 t (a licence); buyer 1's edge to it is
    banned (cap 0). Both ask 10 t, and the other seller has 10 t. Buyer 0's 8 t above its cap go
    to the other seller in the first pass, so the two share it pro rata to what they ask (9 and
    10 t of 19), not 2 against 10 as when buyer 0 only reached it in the next pass."""
    seller = np.array([0, 1, 0, 1])  # seller 0: capped (China), seller 1: the other
    buyer = np.array([0, 0, 1, 1])
    p_del = np.array([100.0, 100.0, 100.0, 100.0])
    pref = np.array([4.0, 1.0, 4.0, 1.0])  # buyer 0 asks 80% of seller 0 by the logit
    res = clear(
        np.array([10.0, 10.0]),
        np.array([50.0, 10.0]),
        seller,
        buyer,
        p_del,
        theta=0.1,
        edge_cap=np.array([1.0, np.inf, 0.0, np.inf]),
        preference=pref,
    )
    assert res.flow[0] == pytest.approx(1.0)  # the licence
    assert res.flow[1] == pytest.approx(10.0 * 9.0 / 19.0)  # 4.74 t, was 10 * 2/12 = 1.67
    assert res.flow[3] == pytest.approx(10.0 * 10.0 / 19.0)  # 5.26 t, was 8.33
    assert res.unmet == pytest.approx([10.0 - 1.0 - 90.0 / 19.0, 10.0 - 100.0 / 19.0])
