"""Expected scarcity from a binding restriction (sim/prices/expectations.py: restricted_exposure,
expected_scarcity): holders downstream of a ban expect the shortage to reach them once the
stocks in between run down, and hold more now (competitive storage). Direction and size on a
hand-built chain, then on the DRC ban of 2025 (facts.md §2e)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from critmin.sim import prices
from critmin.sim.network import INPUT, OUTPUT


def chain():
    """Mine A (70 t/month) and mine D (30) feed refinery B, which sells 100 to buyer C.
    Slots: 0 A out, 1 B in, 2 B out, 3 C in, 4 D out. Markets: ore (0), metal (1)."""
    net = SimpleNamespace(
        n_slots=5,
        node_id=["A", "B", "C", "D"],
        slot_role=np.array([OUTPUT, INPUT, OUTPUT, INPUT, OUTPUT]),
        slot_node=np.array([0, 1, 1, 2, 3]),
        slot_coef=np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
        slot_commodity=np.array([0, 0, 1, 1, 0]),
        price0=np.array([10.0, 30.0]),
        edge_seller=np.array([0, 4, 2]),
        edge_buyer=np.array([1, 1, 3]),
    )
    slot_market = np.array([0, 0, 1, 1, 0])
    base = np.array([70.0, 30.0, 100.0])
    return net, slot_market, base


def test_a_ban_exposes_everyone_downstream_by_the_share_it_cuts():
    net, _, base = chain()
    capped = np.array([True, False, False])
    lost, u_in, u_out = prices.restricted_exposure(
        net, np.array([0.0, 30.0, 100.0]), base, capped, np.ones(3, bool)
    )
    np.testing.assert_allclose(lost, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(
        u_in[[1, 3]], [0.7, 0.7]
    )  # the refinery loses 70% of its feed, so does its buyer
    np.testing.assert_allclose(u_out[2], 0.7)
    # nothing binds: no exposure anywhere
    lost, u_in, u_out = prices.restricted_exposure(net, base, base, np.zeros(3, bool), np.ones(3, bool))
    assert not lost.any() and not u_in.any() and not u_out.any()


def cut_chain():
    """The chain of :func:`chain` with the ore edge banned: the refinery and its buyer lose 70%
    of their feed; buyers' elasticity 0.5, 100 t asked in each market."""
    net, slot_market, base = chain()
    lost = np.array([1.0, 0.0, 0.0])
    u_in = np.array([0.0, 0.7, 0.0, 0.7, 0.0])
    u_out = np.array([0.0, 0.0, 0.7, 0.0, 0.0])
    return net, slot_market, base, lost, u_in, u_out, np.array([0.5, 0.5]), np.array([100.0, 100.0])


def test_expected_scarcity_prices_what_stocks_cannot_bridge_over_the_expected_duration():
    net, slot_market, base, lost, u_in, u_out, eta, asked = cut_chain()

    def gain(held_months, months=12.0, headroom=5.0):
        return prices.expected_scarcity(
            net,
            slot_market,
            base,
            lost,
            u_in,
            u_out,
            held_months * asked,
            asked,
            eta,
            months=months,
            headroom=headroom,
        )

    # metal: 3 months of stock bridge 3/12 of a 70% cut; the rest, 45%, priced at eta 0.5, over 12 months
    np.testing.assert_allclose(gain(3.0)[1], -np.log(1 - 0.45) / 0.5 / 12)
    # ore: the banned edge is the exporter's (its own expectation is the premium abroad); the
    # open edge from mine D sells to a buyer that lost 70%: D's holders expect scarcity too
    np.testing.assert_allclose(gain(3.0)[0], gain(3.0)[1])
    assert gain(9.0)[1] == 0.0  # enough stock to bridge the cut: no expected rise
    assert gain(0.0)[1] > gain(3.0)[1] > 0  # less stock, more expected scarcity
    np.testing.assert_allclose(gain(0.0, headroom=0.1)[1], 0.1 / 12)  # at most the choke price
    assert not prices.expected_scarcity(
        net, slot_market, base, np.zeros(3), u_in, u_out, asked, asked, eta, months=12.0, headroom=5.0
    ).any()


def test_expected_scarcity_is_the_rise_left_above_todays_price():
    """Holders expect the price to reach the level that rations the unbridged shortage; what is
    left to gain is that level less how far the price has already risen above normal (a price
    already there expects no further rise from the restriction and sells into the spike)."""
    net, slot_market, base, lost, u_in, u_out, eta, asked = cut_chain()

    def gain(above, headroom=5.0):
        return prices.expected_scarcity(
            net, slot_market, base, lost, u_in, u_out, 3.0 * asked, asked, eta,
            months=12.0, headroom=headroom, above=np.array(above),
        )  # fmt: skip

    level = -np.log(1 - 0.45) / 0.5  # ln 1.82: 45% unbridged at eta 0.5
    np.testing.assert_allclose(gain([0.0, 0.0])[1], level / 12)
    np.testing.assert_allclose(gain([0.0, 0.5])[1], (level - 0.5) / 12)  # 0.5 of it already risen
    assert gain([0.0, level + 0.1])[1] == 0.0  # past the level: nothing left to expect
    np.testing.assert_allclose(gain([0.0, -0.3])[1], level / 12)  # below normal: the pull's business
    # the choke cap applies to the level, then today's price is taken off it
    np.testing.assert_allclose(gain([0.0, 0.05], headroom=0.1)[1], 0.05 / 12)


def test_horizon_elasticity_builds_the_long_run_response_over_the_restriction():
    short = np.array([0.1, 0.058])
    np.testing.assert_allclose(prices.horizon_elasticity(short, 3.0, 0.0, 36.0), short)  # no time: short run
    np.testing.assert_allclose(prices.horizon_elasticity(short, 3.0, 1e6, 36.0), 3.0 * short)  # long run
    # 12 months at 36 months' adjustment: 28% of the long-run extra (eta 0.1 -> 0.157, eta_LR 0.3)
    np.testing.assert_allclose(
        prices.horizon_elasticity(short, 3.0, 12.0, 36.0), short * (1 + 2 * (1 - np.exp(-1 / 3)))
    )
    assert prices.horizon_elasticity(short, 3.0, 12.0, 36.0)[0] == pytest.approx(0.1567, abs=1e-4)


def drc_metal_ratio(monkeypatch=None):
    from critmin.experiments.api import simulate

    over = ["scenario=cobalt_2024", "scenario.end=2025-04", "scenario.demand.noise_sd=0"]
    base = simulate(over)
    hit = simulate([*over, "shock=drc_cobalt_2025"])
    months = slice("2025-02-01", "2025-04-01")
    return (hit.series("price", "co_refined", "FIN") / base.series("price", "co_refined", "FIN"))[months]


def test_under_the_drc_ban_metal_holders_stock_up_at_once_and_the_metal_price_moves_early(monkeypatch):
    with_expectations = drc_metal_ratio()
    monkeypatch.setattr(prices, "expected_scarcity", lambda *a, **k: np.zeros(a[-3].size))
    without = drc_metal_ratio()
    # history: Rotterdam +23% within two weeks, +43% in the early weeks (facts.md §2e); without
    # the expectation the metal moved 2% in March (the shortage reaches it only months later)
    assert without["2025-03-01"] < 1.05
    assert with_expectations["2025-03-01"] > without["2025-03-01"] + 0.05
    assert with_expectations.max() < 2.0  # an early move, not a runaway


def ga_exports_and_price(announced: str | None):
    """China's Ga licensing from Aug 2024 on the gallium chain, announced in July or not."""
    from critmin.sim.model import CritminModel
    from critmin.sim.run import collect, load_config

    cfg = load_config(["scenario=gallium_2024", "scenario.end=2024-09", "scenario.demand.noise_sd=0"])
    lic = {
        "type": "export_licensing",
        "country": "CHN",
        "commodity": ["ga_primary", "ga_high_purity"],
        "delay_months": 2,
        "approval_rate": 1.0,
        "start": "2024-08",
    }
    if announced is not None:
        lic["announced"] = announced
    cfg.shock.instruments = [lic]
    model = CritminModel(cfg)
    model.run()
    res = collect(model, cfg)
    return res.series("exports", "ga_high_purity", "CHN"), res.series("price", "ga_high_purity", "JPN")


def test_an_announced_control_brings_a_pre_control_rush_and_an_early_price_move():
    quiet_exports, quiet_price = ga_exports_and_price(None)
    rush_exports, rush_price = ga_exports_and_price("2024-07")
    jul, jun = "2024-07-01", "2024-06-01"
    # history: Ge exports more than doubled in July 2023 after the 3 Jul announcement, Ga +27%
    # in Rotterdam the week after (facts.md §2b); unannounced, nothing moves before the start
    assert abs(quiet_exports[jul] / quiet_exports[jun] - 1) < 0.02
    assert rush_exports[jul] > 1.15 * quiet_exports[jul]
    # Japan's 6N price in July: +2.8% with gallium's 4-month buyer cover (commodities.csv), +4.6%
    # with the scenario's 2 months (exports x1.33 vs x1.41): a larger stock absorbs more of the rush
    assert rush_price[jul] > 1.02 * quiet_price[jul]
    np.testing.assert_allclose(rush_exports[:jun], quiet_exports[:jun])  # nothing before the news
    # then the licences' processing time (months without exports have no row)
    assert rush_exports.get(pd.Timestamp("2024-08-01"), 0.0) == 0.0


def test_a_control_announced_after_it_starts_is_a_data_error():
    from critmin.sim.model import CritminModel
    from critmin.sim.run import load_config
    from critmin.sim.world import DataError

    cfg = load_config(["scenario=gallium_2024", "scenario.end=2024-09"])
    cfg.shock.instruments = [
        {
            "type": "export_ban",
            "country": "CHN",
            "commodity": "ga_primary",
            "start": "2024-08",
            "announced": "2024-09",
        }
    ]
    with pytest.raises(DataError, match="announced"):
        CritminModel(cfg)
