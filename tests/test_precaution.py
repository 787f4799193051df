"""Buyers' precautionary stock under an export licence (sim/prices.py: precautionary_multiple,
restocking_give's floor; policies/export_controls.py: licence_lead; issue 15).

A buyer whose supply needs a licence with an uncertain processing time holds safety stock
against that uncertainty and does not give it up when the price rises."""

from __future__ import annotations

import numpy as np

import critmin.sim.prices as prices
from critmin.sim.model import CritminModel
from critmin.sim.network import INPUT
from critmin.sim.run import collect, load_config

RUN = ["scenario=ree_2024", "shock=ree_licensing_2025", "scenario.demand.noise_sd=0"]


def model_at(month: str) -> CritminModel:
    model = CritminModel(load_config([*RUN, f"scenario.end={month}"]))
    while model.running:
        model.step()
    return model


def test_a_licence_raises_the_floor_of_buyers_abroad_by_its_lead_time_spread():
    before = model_at("2025-02")  # closed through March: No. 18 starts in April
    assert (prices.precautionary_multiple(before) == 1.0).all()
    model = model_at("2025-05")
    net = model.net
    mult = prices.precautionary_multiple(model)
    policy = next(p for p in model.policies if hasattr(p, "licence_lead") and p.active(model.state.t))
    edges, spread = policy.licence_lead()
    assert 0.3 < spread < 0.7  # 26-68 days: one standard deviation of the landing month
    buyers = np.unique(net.edge_buyer[edges])
    china = net.countries.index("CHN")
    inside = (net.slot_role == INPUT) & (net.node_country[net.slot_node] == china)
    assert (mult[inside] == 1.0).all()  # China's own buyers need no licence
    assert (mult[buyers] >= 1.0).all() and mult[buyers].max() > 1.1
    # size: 1 + spread x licensed share of base supply / normal cover, never above it
    p = model.params
    cap = 1.0 + spread / min(p.demand.safety_stock_months, p.producers.input_cover_months)
    assert mult.max() <= cap + 1e-9
    # only licensed buyers' inputs get a floor
    assert set(np.flatnonzero(mult > 1.0)) <= set(buyers)


def test_a_precautionary_floor_keeps_the_stock_part_of_a_request_at_a_higher_price():
    one = np.ones(1)
    kw = dict(adjust_months=6.0, response=3.0, rho=0.5, max_multiple=4.0)
    # a buyer that asked for use 10 plus stock-building 5, left unserved 5
    free, _ = prices.restocking_give(15 * one, 10 * one, 40 * one, 70 * one, one, 5 * one, **kw)
    held, _ = prices.restocking_give(
        15 * one, 10 * one, 40 * one, 70 * one, one, 5 * one, floor=1.2 * one, **kw
    )
    assert free[0] == 5.0  # without a floor the stock-building part is given up at a small rise
    # with it the buyer gives up only what lies above 1.2x its normal stock: 15 - (10 + (84 - 40)/6)
    assert np.isclose(held[0], 0.0)
    none, _ = prices.restocking_give(15 * one, 10 * one, 40 * one, 70 * one, one, 5 * one, floor=one, **kw)
    assert none[0] == free[0]  # a floor of 1 is no floor


def test_the_motive_lifts_the_price_buyers_abroad_pay_for_dy_tb_in_may_2025(monkeypatch):
    def run():
        cfg = load_config([*RUN, "scenario.end=2025-06"])
        model = CritminModel(cfg)
        while model.running:
            model.step()
        return collect(model, cfg).series("price", "dytb_oxide", "EST")

    with_motive = run()
    monkeypatch.setattr(prices, "precautionary_multiple", lambda model: np.ones(model.net.n_slots))
    without = run()
    # measured (no noise): May 2025 over March, x1.13 with the motive, x1.10 without (history x3)
    rise = with_motive["2025-05"].iloc[0] / with_motive["2025-03"].iloc[0]
    rise_without = without["2025-05"].iloc[0] / without["2025-03"].iloc[0]
    assert rise > rise_without + 0.01
    assert rise < 1.5
