"""Decision rules of the investment pipeline and of demand, on synthetic inputs (no model run).

Each test asserts a direction and a size that follow from the rule's economics.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from critmin.agents.manufacturer import adapt_intensity, desired_use
from critmin.agents.producer import viability
from critmin.sim import investment as inv

PARAMS = SimpleNamespace(announce_rate_per_year=0.2, fid_pi_scale=0.25, expansion_share=0.1)


def pipeline(n: int, status: int, *, permit: float = 36.0, finance: float = 24.0) -> inv.Pipeline:
    """``n`` identical greenfield projects of 1,000 t/month at $40,000/tpa, each its own project."""
    z = np.zeros(n)
    return inv.Pipeline(
        ids=np.array([f"p{i}" for i in range(n)]),
        project=np.array([f"p{i}" for i in range(n)]),
        node=np.zeros(n, dtype=np.int64),
        kind=np.full(n, inv.KIND_NAMED),
        status=np.full(n, status),
        months_left=np.full(n, permit if status == inv.ANNOUNCED else 0.0),
        nameplate=np.full(n, 1000.0),
        capex=np.full(n, 40000.0 * 12000),
        cash_cost=np.full(n, 5000.0),
        final_share=np.ones(n),
        permit_months=np.full(n, permit),
        finance_months=np.full(n, finance),
        construction_months=np.full(n, 24.0),
        ramp_months=np.full(n, 12.0),
        life_years=np.full(n, 20.0),
        hurdle=np.full(n, 0.08),
        risk_premium=np.full(n, 0.04),
        abandon_rate=np.full(n, 0.15),
        max_expansion=np.full(n, 0.2),
        country=np.zeros(n, dtype=np.int64),
        stage=np.full(n, "refining"),
        months_online=z.copy(),
        permitted_month=np.full(n, -1),
        financed_month=np.full(n, -1),
        start_month=np.full(n, -1),
    )


def terms(n: int, margin: float, *, derisked: bool = False, permit_cut: float = 0.0) -> inv.Terms:
    return inv.Terms(np.full(n, margin), np.full(n, derisked), np.zeros(n), np.full(n, permit_cut))


def run(p: inv.Pipeline, t_: inv.Terms, months: int, seed: int = 0) -> inv.Pipeline:
    rng = np.random.default_rng(seed)
    capacity = np.full(1, 1e9)
    for t in range(months):
        inv.advance(p, t_, rng, t, PARAMS, capacity)
    return p


def test_profitability_index_is_npv_over_capex():
    # 1,000 USD/month for 10 years at 10%: PV = 12,000 x 6.1446 = 73,735
    pi = inv.profitability_index(
        np.array([1000.0]), np.array([73735.0]), np.array([0.10]), np.array([10.0]), np.array([0.0])
    )
    assert pi[0] == pytest.approx(1.0, rel=1e-4)
    # two years of lead time discount it by 1.1^2
    late = inv.profitability_index(
        np.array([1000.0]), np.array([73735.0]), np.array([0.10]), np.array([10.0]), np.array([24.0])
    )
    assert late[0] == pytest.approx(1 / 1.21, rel=1e-4)


def test_higher_expected_prices_advance_more_projects():
    # PI = 1 at a net margin of 5,355 USD/t (capex 480 M, 12%, 20 years): margins that give PI
    # 0.8 and 1.4; the richer market takes more decisions and loses fewer projects
    n = 2000
    low = run(pipeline(n, inv.PERMITTED), terms(n, 5000 + 4300), 36)
    high = run(pipeline(n, inv.PERMITTED), terms(n, 5000 + 7500), 36)
    financed_low = (low.status >= inv.FINANCED) & (low.status != inv.CANCELLED)
    financed_high = (high.status >= inv.FINANCED) & (high.status != inv.CANCELLED)
    assert financed_high.mean() > financed_low.mean() + 0.2
    assert (high.status == inv.CANCELLED).mean() < (low.status == inv.CANCELLED).mean()


def test_derisking_raises_the_probability_of_reaching_operation():
    # an offtake or price floor removes the 4-point risk premium: a marginal project (PI 0.70 at
    # 12%, 0.99 at 8%, after two years of construction) reaches operation more often in ten years
    n = 2000
    base = run(pipeline(n, inv.PERMITTED), terms(n, 5000 + 4700), 120, seed=1)
    derisked = run(pipeline(n, inv.PERMITTED), terms(n, 5000 + 4700, derisked=True), 120, seed=1)
    op_base = (base.status == inv.OPERATING).mean()
    op_derisked = (derisked.status == inv.OPERATING).mean()
    assert op_derisked > 1.4 * op_base
    assert (derisked.status == inv.CANCELLED).mean() < (base.status == inv.CANCELLED).mean() - 0.1


def test_faster_permitting_brings_first_production_forward_by_the_configured_amount():
    # a very profitable project decides as soon as it is permitted (finance_months = 1): a third
    # off a 36-month permitting clock moves first production 12 months earlier
    n = 50
    slow = run(pipeline(n, inv.ANNOUNCED, finance=1.0), terms(n, 50000), 90)
    fast = run(pipeline(n, inv.ANNOUNCED, finance=1.0), terms(n, 50000, permit_cut=1 / 3), 90)
    assert (slow.start_month >= 0).all() and (fast.start_month >= 0).all()
    shift = slow.permitted_month - fast.permitted_month
    assert np.all(shift == 12)
    assert np.all(slow.start_month - fast.start_month == 12)


def test_ramp_up_reaches_the_drawn_final_share_of_nameplate():
    p = pipeline(1, inv.FINANCED)
    p.months_left[:] = 1
    p.final_share[:] = 0.79  # Mountain Pass 2013 run-rate (facts.md §3.4)
    run(p, terms(1, 50000), 7)  # month 0 first production, then six more months of ramp-up
    assert p.status[0] == inv.RAMPING
    assert p.online()[0] == pytest.approx(1000 * 0.79 * 7 / 12)
    run(p, terms(1, 50000), 12)
    assert p.status[0] == inv.OPERATING
    assert p.online()[0] == pytest.approx(790.0)


def test_integrated_projects_decide_together():
    # a mine that loses money alone and a refinery that earns: one project PI, one decision
    p = pipeline(2, inv.PERMITTED)
    p.project[:] = "integrated"
    pi = inv.profitability_index(
        np.array([1000.0, 3000.0]), p.capex, np.full(2, 0.12), p.life_years, np.zeros(2)
    )
    proj, _ = inv.project_index(p, pi)
    assert proj[0] == proj[1] == pytest.approx(pi.mean())


def test_expansions_stay_within_the_yearly_cap():
    p = pipeline(4, inv.PERMITTED, finance=1.0)
    p.kind[:] = inv.KIND_EXPANSION
    p.nameplate[:] = 10.0  # 10% of a 100 t/month plant each
    p.max_expansion[:] = 0.1  # 10%/yr x (24 + 12)/12 years = 30 t/month in flight at most
    rng = np.random.default_rng(0)
    inv.advance(p, terms(4, 1e6), rng, 0, PARAMS, np.array([100.0]))
    assert ((p.status == inv.FINANCED).sum()) <= 3


def test_a_plant_below_cash_cost_idles():
    # the viability share falls from 1 at the 2024 margin to 0 at the cash cost
    margin0, idle = np.array([8000.0]), np.array([5000.0])
    assert viability(np.array([8000.0]), margin0, idle)[0] == 1.0
    assert viability(np.array([6500.0]), margin0, idle)[0] == pytest.approx(0.5)
    assert viability(np.array([4000.0]), margin0, idle)[0] == 0.0


def test_sustained_high_prices_cut_demand_more_in_the_long_run_than_the_short_run():
    sr, lr = 0.1, 0.3
    ratio = np.array([2.0])
    intensity = np.ones(1)
    first = None
    for month in range(120):
        intensity = adapt_intensity(intensity, ratio, sr, lr, 36.0, 0.25)
        demand = desired_use(intensity, ratio, np.ones(1), sr)[0]
        if month == 0:
            first = demand
    assert first == pytest.approx(2.0**-sr, rel=0.01)  # short run: -6.7%
    assert demand == pytest.approx(2.0**-lr, rel=0.01)  # long run: -18.8%
    # prices fall back: the redesigns stay for years (reversibility 0.25)
    for _ in range(36):
        intensity = adapt_intensity(intensity, np.ones(1), sr, lr, 36.0, 0.25)
    assert intensity[0] < 0.95


def test_a_later_phase_takes_its_fid_once_the_first_phase_is_built():
    # issue 15: phases of one project (White Mesa, La Rochelle, Serra Verde phases 1 and 2) share
    # a project id; a built phase 1 kept phase 2 from ever taking FID (the FID needed every
    # member permitted). Phase 2 pays (PI 1.34 at this margin) and decides on its own now; the
    # sunk phase 1 does not weigh in its PI, and two undecided components still decide together.
    p = pipeline(3, inv.PERMITTED, finance=6.0)
    p.project[:] = "phased"
    p.status[0] = inv.OPERATING  # phase 1, built
    p.capex[0] *= 10.0  # a costly (sunk) phase 1 would pull a pooled PI below 1
    run(p, terms(3, 14000), 60)
    assert p.status[1] != inv.PERMITTED and p.status[1] != inv.CANCELLED  # financed or later
    assert p.financed_month[1] == p.financed_month[2]  # phase 2's components decided together
    margin = (14000 - p.cash_cost) * p.nameplate
    rate = p.hurdle + p.risk_premium
    pi = inv.profitability_index(margin, p.capex, rate, p.life_years, p.construction_months)
    decided = np.array([True, False, False])
    proj, _ = inv.project_index(p, pi, decided)
    assert proj[1] == pytest.approx(pi[1]) and proj[1] < 2.0  # phase 2's own PI, not the pool's
    pooled, _ = inv.project_index(p, pi)
    assert pi[1] > 1.3 and pooled[1] < 0.4  # pooled with the sunk phase 1, phase 2 would not pay
