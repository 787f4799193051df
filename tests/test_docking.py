"""Docking: the clearing engine's steady state against a static spatial price equilibrium LP.

Small single-commodity worlds with the agents' own supply and demand rules; the LP
(scipy/HiGHS) is an independent computation of the same equilibrium (DESIGN §3.1).
"""

import numpy as np
import pytest

from critmin.sim.oracle import ToyMarket, engine_equilibrium, engine_tatonnement, lp_equilibrium

INF = np.inf
WORLDS = {
    "two regions, free trade": ToyMarket(
        supply0=[100, 20], demand0=[40, 80], edges=[(0, 1, 5.0, 0.0, INF), (1, 0, 5.0, 0.0, INF)]
    ),
    "two regions, export quota and tax": ToyMarket(
        supply0=[100, 20], demand0=[40, 80], edges=[(0, 1, 5.0, 2.0, 30.0), (1, 0, 5.0, 0.0, INF)]
    ),
    "three regions, one capped route": ToyMarket(
        supply0=[120, 30, 10],
        demand0=[30, 60, 70],
        supply_elasticity=0.8,
        demand_elasticity=0.3,
        edges=[(0, 1, 4.0, 0.0, INF), (0, 2, 6.0, 3.0, 25.0), (1, 2, 3.0, 0.0, INF), (2, 1, 3.0, 0.0, INF)],
    ),
    "three regions, full ban on one route": ToyMarket(
        supply0=[120, 30, 10],
        demand0=[30, 60, 70],
        edges=[(0, 1, 4.0, 0.0, INF), (0, 2, 6.0, 0.0, 0.0), (1, 2, 3.0, 0.0, INF)],
    ),
}


@pytest.mark.parametrize("name", list(WORLDS))
def test_engine_steady_state_reproduces_the_lp_equilibrium(name):
    m = WORLDS[name]
    lp = lp_equilibrium(m)
    en = engine_equilibrium(m, theta=1e-6)
    np.testing.assert_allclose(en.supply_price, lp.supply_price, rtol=1e-4)
    np.testing.assert_allclose(en.demand_price, lp.demand_price, rtol=1e-4)
    scale = max(lp.flow.max(), 1.0)
    np.testing.assert_allclose(en.flow, lp.flow, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", ["two regions, export quota and tax", "three regions, one capped route"])
def test_cap_dual_equals_the_price_gap_net_of_transport_and_tax(name):
    m = WORLDS[name]
    lp = lp_equilibrium(m)
    en = engine_equilibrium(m, theta=1e-6)
    binding = lp.cap_rent > 1e-6
    assert binding.any()
    np.testing.assert_allclose(en.cap_rent[binding], lp.cap_rent[binding], rtol=1e-4)
    # and the rent is the gap itself: p_importer − p_exporter − transport − tax
    frm, to, transport, tax, _ = m.all_edges()
    gap = lp.demand_price[to] - lp.supply_price[frm] - transport - tax
    np.testing.assert_allclose(lp.cap_rent[binding], gap[binding], rtol=1e-6)


@pytest.mark.parametrize("name", list(WORLDS))
def test_the_models_price_rule_converges_to_the_engine_steady_state(name):
    m = WORLDS[name]
    log_p, last_move = engine_tatonnement(m, theta=0.05, kappa=0.1, sigma=0.1, steps=6000)
    assert last_move < 1e-9
    np.testing.assert_allclose(np.exp(log_p), engine_equilibrium(m, theta=0.05).supply_price, rtol=1e-6)


def test_export_quota_lowers_the_exporters_price_and_raises_the_importers():
    free = lp_equilibrium(WORLDS["two regions, free trade"])
    quota = lp_equilibrium(WORLDS["two regions, export quota and tax"])
    assert quota.supply_price[0] < free.supply_price[0]
    assert quota.supply_price[1] > free.supply_price[1]
