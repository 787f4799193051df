"""Producers plan on the orders they can ship (issue 15; agents/producer.py, sim/model.py
``_orders_held``, ``Policy.known_caps``): a plant's expected orders are its smoothed orders less
those this month's known caps will not let through: an export ban holds its edges' orders back,
a licence lets through the licences that land this month, a quota its holder's allowance. With
no cap the plan is the plain smoothed orders' plan, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from test_quotas import build, ree_quota

from critmin.sim.network import OUTPUT

BAN = {"type": "export_ban", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
LIC = {
    "type": "export_licensing",
    "country": "CHN",
    "commodity": "ndfeb_magnet",
    "start": "2024-04",
    "delay_months": 1,
    "withdrawal": 0.0,
}
APR, MAY = 3, 4  # months of the 2024 test run
SHORT = ["scenario.end=2024-06"]


def spy(model) -> list[dict]:
    """Record, each month, what producers planned on: the held orders and the per-edge expected
    orders they were read from (before the month's trading updates them), and the plans."""
    seen: list[dict] = []
    plain = model._orders_held

    def held(active, t):
        out = plain(active, t)
        seen.append(
            {
                "t": t,
                "held": None if out is None else out.copy(),
                "expected": model.state.edge_orders_avg.copy(),
                "caps": [p.known_caps(model, t) for p in active],
            }
        )
        return out

    model._orders_held = held
    return seen


def run(instruments, months: int | None = None) -> tuple:
    model = build(instruments, SHORT)
    seen = spy(model)
    plans = []
    while model.running and (months is None or model.state.t < months):
        model.step()
        plans.append(model.state.plan.copy())
    return model, seen, np.array(plans)


def magnet_maker(model) -> tuple[int, np.ndarray]:
    net = model.net
    node = list(net.node_id).index("chn_magnet")
    outs = np.flatnonzero((net.slot_node == node) & (net.slot_role == OUTPUT) & model.main_output)
    return node, outs


def test_without_a_cap_producers_plan_on_their_smoothed_orders_to_the_bit():
    _, seen, plans = run([])
    assert all(s["held"] is None for s in seen)
    # a ban announced for later changes nothing before it starts: same plans, bit for bit
    _, later, later_plans = run([{**BAN, "start": "2024-06"}], months=5)
    assert all(s["held"] is None for s in later)
    np.testing.assert_array_equal(later_plans, plans[:5])


def test_a_producer_facing_a_ban_plans_less_by_the_export_orders_it_holds_back():
    _, _, twin_plans = run([], months=APR + 1)
    model, seen, plans = run([BAN], months=APR + 1)
    ban = model.policies[0]
    node, outs = magnet_maker(model)
    apr = seen[APR]
    assert apr["t"] == APR
    # held: every order China's magnet maker expected on the banned edges (no grey share)
    mine = np.isin(model.net.edge_seller[ban.edges], outs)
    expected_export = float(apr["expected"][ban.edges[mine]].sum())
    assert expected_export > 0.1 * float(model.state.orders_avg[outs].sum())  # a real export share
    assert float(apr["held"][outs].sum()) == pytest.approx(expected_export, rel=1e-12)
    # the months before the ban: same state, same plans; in April the plan falls by the held
    # orders (one main output: activity = orders/coefficient, times the share of plants running)
    np.testing.assert_array_equal(plans[:APR], twin_plans[:APR])
    coef = float(model.net.slot_coef[outs].sum())
    drop = twin_plans[APR, node] - plans[APR, node]
    assert drop == pytest.approx(expected_export / coef * model.state.run_share[node], rel=1e-6)


def test_a_grey_share_lets_its_share_of_the_banned_orders_through():
    model, seen, _ = run([{**BAN, "grey_share": 0.25}], months=APR + 1)
    ban = model.policies[0]
    held = seen[APR]["held"]
    expected = seen[APR]["expected"][ban.edges]
    total = np.bincount(model.net.edge_seller[ban.edges], weights=expected, minlength=model.net.n_slots)
    np.testing.assert_allclose(held, 0.75 * total, rtol=1e-12, atol=1e-12)


def test_a_licence_lets_through_the_licences_that_land_this_month():
    model, seen, _ = run([LIC], months=MAY + 1)
    lic = model.policies[0]
    _, outs = magnet_maker(model)
    mine = np.isin(model.net.edge_seller[lic.edges], outs)
    apr, may = seen[APR], seen[MAY]
    # April, the start month: nothing lands before the first applications' month of processing
    ((_, cap_apr),) = apr["caps"][0].edge_caps
    np.testing.assert_array_equal(cap_apr, 0.0)
    assert float(apr["held"][outs].sum()) == pytest.approx(float(apr["expected"][lic.edges[mine]].sum()))
    # May: April's applications land (approval rate 1, no withdrawal): the known cap is them, and
    # the plan holds back only the expected orders beyond them
    ((_, cap_may),) = may["caps"][0].edge_caps
    assert cap_may[mine].sum() > 0.5 * may["expected"][lic.edges[mine]].sum()
    beyond = np.maximum(may["expected"][lic.edges] - cap_may, 0.0)
    assert float(may["held"][outs].sum()) == pytest.approx(float(beyond[mine].sum()), rel=1e-9)
    assert float(may["held"][outs].sum()) < 0.5 * float(apr["held"][outs].sum())


def test_the_known_cap_of_a_licence_adds_the_uncovered_trade_and_the_free_days():
    model, seen, _ = run([{**LIC, "covered_share": 0.4, "start_day": 11}], months=APR + 1)
    lic = model.policies[0]
    e = seen[APR]["expected"][lic.edges]
    ((_, cap),) = seen[APR]["caps"][0].edge_caps
    free = 10 / (365.25 / 12)
    np.testing.assert_allclose(cap, 0.6 * e + free * 0.4 * e, rtol=1e-12)


def test_the_hook_reads_the_licence_queues_and_changes_nothing():
    model, _, _ = run([LIC], months=MAY)
    lic = model.policies[0]
    queue = {k: v.copy() for k, v in lic.queue.items()}
    waiting = {k: v.copy() for k, v in lic.waiting.items()}
    lic.known_caps(model, MAY)
    assert queue.keys() == lic.queue.keys() and waiting.keys() == lic.waiting.keys()
    for k in queue:
        np.testing.assert_array_equal(queue[k], lic.queue[k])


def test_a_quota_holds_back_what_its_holders_allowance_does_not_cover():
    model = build([ree_quota()], SHORT)
    seen = spy(model)
    model.step()
    quota = model.policies[0]
    allowance = quota.entitlements.allowance
    net = model.net
    e = seen[0]["expected"][quota.edges]
    wanted = np.bincount(quota.holder_of_edge, weights=e, minlength=allowance.size)
    beyond = np.maximum(wanted - allowance, 0.0)
    held = seen[0]["held"]
    holders = np.unique(net.edge_seller[quota.edges])  # pro rata history: one holder per seller slot
    assert beyond.sum() > 0  # half the baseline binds
    np.testing.assert_allclose(held[holders], beyond, rtol=1e-9, atol=1e-9)
