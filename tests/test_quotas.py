"""Quotas and licences phased like the real ones (issue 15, item 3): tranches, holders rationing
over the period, under-use, grey flows, per-shipment licence processing times, production quotas.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from critmin.policies.tranches import Entitlements
from critmin.sim.model import CritminModel
from critmin.sim.run import collect, load_config
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

BASE = ["scenario=ree_2024_short", "scenario.demand.noise_sd=0", "scenario.end=2024-12"]
REE_PRODUCTS = ["ndpr_oxide", "dytb_oxide", "ndfeb_alloy", "ndfeb_magnet"]


def build(shock_instruments=(), overrides=(), base=BASE) -> CritminModel:
    cfg = load_config([*base, *overrides])
    if shock_instruments:
        cfg.shock.name = "test"
        cfg.shock.instruments = [dict(i) for i in shock_instruments]
    return CritminModel(cfg)


def monthly_exports(model: CritminModel, edges: np.ndarray) -> np.ndarray:
    """Run the model to its end; tonnes per month on the given edges."""
    out = []
    while model.running:
        model.step()
        out.append(float(model.cleared.result.flow[edges].sum()))
    return np.array(out)


def ree_quota(**keys) -> dict:
    return {
        "type": "export_quota",
        "country": "CHN",
        "commodity": REE_PRODUCTS,
        "share_of_baseline": 0.5,
        "period": "year",
        "start": "2024-01",
        **keys,
    }


# ---------------------------------------------------------------- holders ration over the period
def test_an_annual_ree_quota_binding_on_demand_is_shipped_within_half_of_the_monthly_average():
    model = build([ree_quota()])
    quota = model.policies[0]
    exports = monthly_exports(model, quota.edges)
    size = 0.5 * 12 * model.base_edge_flow[quota.edges].sum()
    assert exports.sum() > 0.95 * size  # the quota binds: demand exceeds it
    assert exports.sum() <= size * (1 + 1e-6)
    ratio = exports / exports.mean()
    assert ratio.min() >= 0.5 and ratio.max() <= 1.5, ratio.round(2)


def test_front_loading_ships_more_early_in_the_tranche():
    even = build([ree_quota(tranches="single")])
    even_x = monthly_exports(even, even.policies[0].edges)
    front = build([ree_quota(tranches="single", front_loading=1.0)])
    front_x = monthly_exports(front, front.policies[0].edges)
    # month 1 of a single yearly tranche: 2/12 of the year instead of 1/12
    assert front_x[0] == pytest.approx(2 * even_x[0], rel=0.02)
    assert front_x[0] / front_x.mean() > 1.5  # outside the ±50% band: the parameter matters
    assert front_x[-1] < even_x[-1]


def test_the_drc_quota_in_the_cobalt_world_is_shipped_within_half_of_the_monthly_average():
    model = build(base=["scenario=cobalt_2024", "shock=drc_cobalt_2025", "scenario.end=2027-12"])
    quotas = [p for p in model.policies if p.key == "export_quota"]
    exports = monthly_exports(model, quotas[0].edges)
    for year, size in ((2026, 114_725.0), (2027, 96_600.0)):
        x = exports[(year - 2024) * 12 : (year - 2023) * 12]
        assert x.sum() == pytest.approx(size, rel=0.01)  # binding: the whole quota leaves
        ratio = x / x.mean()
        assert ratio.min() >= 0.5 and ratio.max() <= 1.5, (year, ratio.round(2))
    assert exports[13:24].sum() == 0.0  # Feb-Dec 2025: the ban, then no restart (rolled over)


# ---------------------------------------------------------------- tranches
def test_cumulative_exports_never_exceed_the_tranches_issued():
    model = build([ree_quota(tranches=[{"month": 1, "share": 0.5}, {"month": 7, "share": 0.5}])])
    quota = model.policies[0]
    exports = monthly_exports(model, quota.edges)
    size = 0.5 * 12 * model.base_edge_flow[quota.edges].sum()
    issued = np.cumsum([0.5 * size if m in (0, 6) else 0.0 for m in range(12)])
    assert (np.cumsum(exports) <= issued * (1 + 1e-6)).all()
    assert np.cumsum(exports)[5] > 0.95 * issued[5]  # the first batch is used by June
    quarterly = build([ree_quota()])  # default: quarterly
    q = monthly_exports(quarterly, quarterly.policies[0].edges)
    q_issued = np.cumsum([0.25 * size if m % 3 == 0 else 0.0 for m in range(12)])
    assert (np.cumsum(q) <= q_issued * (1 + 1e-6)).all()


def fake_model(front_loading=0.0, under_use=0.0) -> SimpleNamespace:
    controls = SimpleNamespace(front_loading=front_loading, quota_under_use=under_use, grey_share=0.0)
    return SimpleNamespace(params=SimpleNamespace(controls=controls), start=(2024, 1))


def entitlements(last=24, **keys) -> Entitlements:
    spec = Spec({"type": "export_quota", **keys}, "test")
    return Entitlements(spec, fake_model(), 1200.0, np.array([1.0]), 0, last, "year")


def test_unused_tranches_carry_within_the_period_or_lapse_as_configured():
    keep, lapse = entitlements(), entitlements(tranche_lapse=True)
    for e in (keep, lapse):
        for t in range(3):  # Q1: nothing shipped (no buyers)
            e.step(t)
            e.use(np.zeros(1))
    keep.step(3), lapse.step(3)
    assert keep.balance[0] == pytest.approx(600.0)  # Q1's 300 t + Q2's 300 t
    assert lapse.balance[0] == pytest.approx(300.0)  # Q1's 300 t lapsed
    assert keep.allowance[0] == pytest.approx(200.0)  # rationed over the 3 months to Q3


def test_unused_entitlement_lapses_at_the_period_end_unless_carried_over():
    lapse, carry = entitlements(), entitlements(carry_over=True)
    for e in (lapse, carry):
        for t in range(12):  # a year with no shipments
            e.step(t)
            e.use(np.zeros(1))
        e.step(12)  # January of the next year
    assert lapse.balance[0] == pytest.approx(300.0)  # only the new Q1 tranche
    assert carry.balance[0] == pytest.approx(1500.0)  # last year's 1,200 t + 300 t


def test_a_quota_starting_mid_year_gets_the_tranches_the_year_has_issued():
    spec = Spec({"type": "export_quota"}, "test")
    e = Entitlements(spec, fake_model(), 1200.0, np.array([1.0]), 9, 12, "year")  # Oct to Dec
    e.step(9)
    assert e.balance[0] == pytest.approx(1200.0)
    assert e.allowance[0] == pytest.approx(400.0)  # three months to the instrument's end


def test_under_use_leaves_a_share_of_every_tranche_unused():
    spec = Spec({"type": "export_quota", "under_use": 0.2}, "test")
    e = Entitlements(spec, fake_model(), 1200.0, np.array([0.25, 0.75]), 0, 12, "year")
    e.step(0)
    np.testing.assert_allclose(e.balance, [60.0, 180.0])  # 0.8 × 300 t, pro rata
    model = build([ree_quota(under_use=0.2)])
    quota = model.policies[0]
    exports = monthly_exports(model, quota.edges)
    size = 0.5 * 12 * model.base_edge_flow[quota.edges].sum()
    assert exports.sum() == pytest.approx(0.8 * size, rel=0.03)


# ---------------------------------------------------------------- grey flows
def test_grey_flows_leak_a_share_of_banned_demand():
    ban = {"type": "export_ban", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
    closed = build([ban])
    edges = closed.policies[0].edges
    assert monthly_exports(closed, edges)[3:].sum() == 0.0
    leaky = build([{**ban, "grey_share": 0.3}])
    x = monthly_exports(leaky, edges)
    base = leaky.base_edge_flow[edges].sum()
    # 0.3 of what buyers ask of China: about 0.3 of the 2024 flow in the first month, more later
    # as buyers cut off from China ask for more
    assert 0.25 * base < x[3] < 0.35 * base
    # (< 0.7: since issue 15 the base flow is China's 58 kt of exports, no longer 68 kt with
    # cross-hauled magnets, while what buyers abroad ask is unchanged; was 0.51 of 68 kt)
    assert (x[3:] > 0.25 * base).all() and (x[3:] < 0.7 * base).all()


def test_grey_flows_as_steps_stop_when_a_later_rule_closes_the_route():
    # transit via third countries until a later notice bars it (the Dec 2024 Ga/Ge notice):
    # 0.3 of the blocked demand flows from Apr, none from Jul, as the plain 0.3 ban before it
    ban = {"type": "export_ban", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
    steps = [{"from": "2024-04", "share": 0.3}, {"from": "2024-07", "share": 0.0}]
    model = build([{**ban, "grey_share": steps}])
    plain = build([{**ban, "grey_share": 0.3}])
    edges = model.policies[0].edges
    x, y = monthly_exports(model, edges), monthly_exports(plain, edges)
    np.testing.assert_allclose(x[3:6], y[3:6], rtol=1e-12)  # same months, same flows
    base = model.base_edge_flow[edges].sum()
    assert (x[3:6] > 0.25 * base).all()
    assert x[6:].sum() == 0.0  # the route closed


def test_grey_flows_go_beyond_a_quota_without_using_it():
    model = build([ree_quota(grey_share=0.3)])
    quota = model.policies[0]
    exports = monthly_exports(model, quota.edges)
    size = 0.5 * 12 * model.base_edge_flow[quota.edges].sum()
    assert exports.sum() > 1.1 * size  # the quota plus grey flows
    assert quota.entitlements.used_total <= size * (1 + 1e-6)
    assert quota.grey == pytest.approx(exports.sum() - quota.entitlements.used_total, rel=1e-6)


# ---------------------------------------------------------------- licences per shipment
def test_licence_processing_times_spread_a_months_applications_over_months():
    lic = {"type": "export_licensing", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
    one = build([{**lic, "delay_months": 2}])
    x_one = monthly_exports(one, one.policies[0].edges)
    spread = build([{**lic, "delay_months": [{"months": 1, "share": 0.5}, {"months": 2, "share": 0.5}]}])
    x_spread = monthly_exports(spread, spread.policies[0].edges)
    base = spread.base_edge_flow[spread.policies[0].edges].sum()
    assert x_one[3:5].sum() == 0.0 and x_spread[3] == 0.0  # April: nothing processed yet
    assert 0.3 * base < x_spread[4] < 0.7 * base  # May: the half processed in one month
    assert x_spread[7:].mean() > 0.9 * base  # all approved: volumes back


# ---------------------------------------------------------------- production quota
def test_a_production_quota_caps_output_to_its_share():
    quota = {
        "type": "production_quota",
        "country": "CHN",
        "commodity": "ndpr_oxide",
        "share_of_baseline": 0.6,
        "period": "year",
        "start": "2024-01",
    }
    free_model = build()
    monthly_exports(free_model, np.zeros(0, np.int64))  # runs it
    free = collect(free_model, free_model.cfg)
    capped_model = build([quota])
    monthly_exports(capped_model, np.zeros(0, np.int64))
    capped = collect(capped_model, capped_model.cfg)
    policy = capped_model.policies[0]
    base = (capped_model.net.activity0[policy.nodes] * policy.coef).sum()  # 2024 t/month
    made = capped.series("production", "ndpr_oxide", "CHN").to_numpy()
    made_free = free.series("production", "ndpr_oxide", "CHN").to_numpy()
    assert made.sum() <= 0.6 * 12 * base * (1 + 1e-6)
    assert made.sum() > 0.55 * 12 * base  # it binds
    assert (made <= 0.6 * base * 1.5).all() and (made >= 0.6 * base * 0.5).all()  # rationed
    assert made.sum() < 0.7 * made_free.sum()
    inside = capped.series("price", "ndpr_oxide", "CHN").iloc[-3:].mean()
    assert inside > 1.05 * free.series("price", "ndpr_oxide", "CHN").iloc[-3:].mean()  # scarcer


# ---------------------------------------------------------------- bad keys
BAD = [
    (ree_quota(tranches=[{"month": 1, "share": 0.5}, {"month": 7, "share": 0.4}]), ["tranches", "sum to 1"]),
    (ree_quota(tranches="weekly"), ["tranches", "'weekly'", "quarterly"]),
    (ree_quota(tranches=[{"month": 13, "share": 1.0}]), ["tranches[0].month"]),
    (ree_quota(tranches=[{"month": 1, "share": 0.5}, {"month": 1, "share": 0.5}]), ["tranches", "once"]),
    (ree_quota(period="month", tranches="quarterly"), ["tranches", "monthly quota"]),
    (ree_quota(front_loading=2.0), ["front_loading"]),
    (ree_quota(grey_share=-0.1), ["grey_share"]),
    (
        {"type": "export_ban", "country": "CHN", "commodity": "ndfeb_magnet", "grey_share": [{"share": 1.5}]},
        ["grey_share[0].share"],
    ),
    (
        {
            "type": "export_licensing",
            "country": "CHN",
            "commodity": "ndfeb_magnet",
            "delay_months": [{"months": 2, "share": 0.6}],
        },
        ["delay_months", "sum to 1"],
    ),
    (
        {"type": "production_quota", "country": "CHN", "commodity": "ndpr_oxide", "process": "smelt"},
        ["process", "'smelt'"],
    ),
    (
        {
            "type": "production_quota",
            "country": "JPN",
            "commodity": "ree_concentrate",
            "share_of_baseline": 1,
        },
        ["no facility"],
    ),
]


@pytest.mark.parametrize(("instrument", "named"), BAD, ids=[str(n) for _, n in BAD])
def test_bad_quota_and_licence_keys_are_data_errors_naming_the_key(instrument, named):
    with pytest.raises(DataError) as err:
        build([instrument])
    text = str(err.value)
    assert "shock.instruments[0]" in text
    for part in named:
        assert part in text, (part, text)
