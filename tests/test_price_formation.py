"""Scarcity pricing, storage and expectations (sim/prices/; issue 15): each mechanism's
direction and size, first on arrays, then in the model against the same run without it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import qmc
from world_copies import world_copy

from critmin.analysis import metrics
from critmin.experiments.api import simulate
from critmin.sim import parameters
from critmin.sim.prices import (
    expected_gain,
    price_abroad,
    rationing_gap,
    restocking_give,
    storage_multiple,
    update_log_prices,
)


# ---------------------------------------------------------------------- on arrays
def test_the_rationing_gap_is_the_price_rise_that_cuts_requests_to_what_was_sold():
    asked, sold = np.array([2.0, 1.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0, 0.0])
    gap = rationing_gap(asked, sold, elasticity=0.1, headroom=np.array([10.0, 10.0, 10.0, 2.0]))
    # with demand (p/p0)^-η, requests halve when ln p rises by ln 2 / η
    assert gap[0] == pytest.approx(np.log(2.0) / 0.1)
    assert gap[1] == 0.0 and gap[2] == 0.0  # served markets: no gap
    assert gap[3] == pytest.approx(2.0)  # sold nothing: to the choke price
    # a more elastic demand needs a smaller rise; the cap binds whatever the shortage
    assert rationing_gap(asked[:1], sold[:1], 0.5)[0] == pytest.approx(np.log(2.0) / 0.5)
    assert rationing_gap(asked[:1], sold[:1], 0.1, headroom=0.3)[0] == pytest.approx(0.3)
    assert rationing_gap(asked[:1], sold[:1], 0.1, headroom=-1.0)[0] == 0.0  # above the cap


def test_unserved_restocking_is_given_up_at_a_small_rise_and_only_use_is_rationed():
    # a buyer using 100 t/month holds 150 t against a target of 200 t (adjusting over 6 months):
    # it asks 100 + 50/6; at the storage multiple's floor (1/4 of normal) it would ask
    # 100 + (50 - 150)/6, so 25 t of its request is stock-building a price rise can cut
    kw = dict(adjust_months=6.0, response=3.0, rho=0.5, max_multiple=4.0)
    one = np.ones(3)
    request = np.full(3, 100 + 50 / 6)
    given, rise = restocking_give(
        request, 100 * one, 150 * one, 200 * one, one, np.array([0.0, 5.0, 40.0]), **kw
    )
    assert given == pytest.approx([0.0, 5.0, 25.0])  # the rest of the 40 t is use
    # the target must fall by 5 x 6 = 30 t: exp(-βρx) = 1 - 30/200
    assert rise[1] == pytest.approx(-np.log(1 - 30 / 200) / 1.5)
    assert rise[0] == 0.0 and rise[2] > rise[1]
    # against the use elasticity of a small-cost input (η = 0.005) the same 5 t short of
    # 108 t would need ln(108.3/103.3)/0.005 = 9.5, i.e. a jump to the choke price
    assert rise[1] < 0.2 < rationing_gap(request[1:2], request[1:2] - 5, 0.005)[0]
    # storage off: nothing is given, every unserved tonne is rationed by willingness to pay
    off, _ = restocking_give(
        request, 100 * one, 150 * one, 200 * one, one, 5 * one, **{**kw, "response": 0.0}
    )
    assert (off == 0).all()


def test_kappa_closes_its_share_of_the_gap_and_the_pull_toward_cost_brings_prices_back():
    lp = np.log(np.array([100.0, 300.0]))
    new = update_log_prices(
        lp,
        np.array([2.0, 0.0]),
        np.ones(2),
        kappa=0.1,
        sigma=0.1,
        max_step=5.0,
        log_p_norm=np.log([100.0, 100.0]),
        rho=0.5,
    )
    assert new[0] - lp[0] == pytest.approx(0.2)
    assert new[1] - lp[1] == pytest.approx(-0.5 * np.log(3.0))  # no ratchet once supply recovers


def test_the_price_abroad_is_the_other_countries_sellers_price_by_tonnes():
    # one commodity, three countries: country 0 cannot export (sold nothing), 1 and 2 sell
    log_p = np.log(np.array([50.0, 200.0, 100.0]))
    abroad = np.exp(price_abroad(log_p, np.array([0.0, 1.0, 3.0]), 1))
    np.testing.assert_allclose(abroad, [(200.0 * 1 + 100.0 * 3) / 4, 100.0, 200.0])
    # nobody else sold: the market's own price
    assert np.exp(price_abroad(log_p, np.array([0.0, 0.0, 3.0]), 1))[2] == pytest.approx(100.0)


def test_holders_store_when_prices_are_expected_to_rise_and_sell_into_a_spike():
    log_p = np.log(np.array([50.0, 100.0, 200.0]))
    norm, flat = np.log(np.full(3, 100.0)), np.zeros(3)
    gain = expected_gain(log_p, norm, norm, flat, rho=0.5, restriction_months=12, trend_weight=0.0)
    np.testing.assert_allclose(gain, [0.5 * np.log(2.0), 0.0, -0.5 * np.log(2.0)])
    g = storage_multiple(gain, response=3.0, max_multiple=4.0)
    np.testing.assert_allclose(g, [2.0**1.5, 1.0, 2.0**-1.5])
    assert storage_multiple(np.array([5.0, -5.0]), 3.0, 4.0).tolist() == [4.0, 0.25]  # storage limits
    # exports restricted: the product fetches twice as much abroad, a premium expected in 12 months
    inside = expected_gain(
        log_p[1:2], norm[:1], np.log([200.0]), flat[:1], rho=0.5, restriction_months=12, trend_weight=0.0
    )
    assert inside[0] == pytest.approx(np.log(2.0) / 12)
    # a cheaper market abroad adds nothing; a rising market adds its trend (extrapolation)
    cheap = expected_gain(
        log_p[1:2],
        norm[:1],
        np.log([50.0]),
        np.array([0.1]),
        rho=0.5,
        restriction_months=12,
        trend_weight=1.0,
    )
    assert cheap[0] == pytest.approx(0.1)


# ---------------------------------------------------------------------- in the model
def _magnet_price_after_a_cut(*overrides: str) -> tuple[float, float]:
    r = simulate(
        [
            "scenario.end=2027-12",
            "scenario.demand.noise_sd=0",
            "shock=refiner_cut",
            "experiment.metrics.report=false",
            *overrides,
        ]
    )
    price = metrics.bloc_buyer_price(metrics.Tables.from_result(r), "ndfeb_magnet", "G7+")
    pre = price["2025-12-01"]
    # the tail: the last six months' mean, 12-18 months after the cut (one month can carry a
    # restocking blip: Dec 2027 alone read x1.15 while Jul-Dec averaged x1.02)
    return price["2026-01-01":"2026-12-01"].max() / pre, price["2027-07-01":].mean() / pre


def test_a_cut_is_priced_and_storage_damps_the_spike_and_its_tail():
    """China halves its refined exports for six months (shock/refiner_cut.yaml): with scarcity
    pricing the G7+ magnet price rises by a third or more; without it (κ = 0) by about 15%
    (measured ×1.47 and ×1.15: the cover term and holders' expected scarcity still move it).
    Holders selling into the spike keep the tail lower than without storage. Since holders
    also expect the cut's scarcity to reach them (sim/prices/expectations.py: expected_scarcity), they buy
    ahead of it when it starts, which brings the spike forward rather than lowering its peak
    (measured: peak ×1.49 with storage, ×1.49 without, ×1.39 with storage but without expected
    scarcity); the peak stays within 5% of the no-storage peak. With κ = 0 the buyers cut off
    from China's refined exports are still pulled toward the expected scarcity (sim/prices/
    cutoff_anchor, through ρ), which is at most ×1.35 over full cost (ODD §7): measured ×1.22
    (×1.15 before the anchor), peak ×1.55; since the quota rule, Lynas's Mt Weld yield and the
    per-ore Dy/Tb yields (all of 2026-11-30: the G7+ magnet makers' Dy/Tb comes from China's
    ionic-clay separators) ×1.25, peak ×1.44. The clearing's scarcity pricing (κ) adds at
    least 10 points to the peak on top of the anchor. Re-measured on 1 Dec 2026 with idle markets
    priced at the open price abroad (sim/prices/expectations.py: idle_market_prices): peak ×1.45
    (×1.44 before it), ×1.25 with κ = 0, ×1.63 without storage (×1.91 before it); the tail ×1.00,
    ×1.14 without storage."""
    peak, tail = _magnet_price_after_a_cut()
    peak_rationed, _ = _magnet_price_after_a_cut("scenario.market.kappa=0")
    peak_no_storage, tail_no_storage = _magnet_price_after_a_cut("scenario.market.storage_response=0")
    assert peak > 1.3 and peak_rationed < 1.35 and peak - peak_rationed > 0.1
    assert tail < tail_no_storage and peak < 1.05 * peak_no_storage
    assert abs(tail - 1) < 0.15  # 12-18 months after the cut ends, back near the pre-shock level


def _drc_ratios(*overrides: str) -> dict[str, float]:
    def run(shock: str):
        return simulate(
            [
                "scenario=cobalt_2024",
                "scenario.end=2025-12",
                "scenario.demand.noise_sd=0",
                f"shock={shock}",
                "experiment.metrics.report=false",
                *overrides,
            ]
        )

    hit, twin = run("drc_cobalt_2025"), run("none")
    ban = slice("2025-03-01", "2025-09-01")
    out = {}
    for commodity in ("co_ore", "co_hydroxide"):
        made = hit.series("production", commodity, "COD")[ban].sum()
        out[commodity] = made / twin.series("production", commodity, "COD")[ban].sum()
        out[f"{commodity}_stock"] = (
            hit.series("stock", commodity, "COD")["2025-09-01"]
            / twin.series("stock", commodity, "COD")["2025-09-01"]
        )
    return out


def test_under_an_export_ban_producers_keep_producing_into_stock_while_they_expect_it_to_lift(tmp_path):
    """DRC cobalt ban 2025 (facts.md §2e: mining continued, stock built up at the mine). The
    ban's home price falls below the world price, so holders expect a gain: mines keep mining
    and hydroxide plants keep running into stock, more than without the storage motive. The
    storage motive alone: on the cobalt world without its copper and nickel hosts
    (tests/test_by_products.py checks what the hosts add)."""
    alone = world_copy(tmp_path, "cobalt")
    (alone / "by_products.csv").unlink()
    data = f"scenario.data={alone}"
    on, off = _drc_ratios(data), _drc_ratios(data, "scenario.market.storage_response=0")
    assert on["co_ore"] > 0.9 and off["co_ore"] > 0.9  # mining continues
    # the hydroxide plants' storage motive: they keep running into stock. For ore the two runs
    # differ twice: without storage the outside price spikes higher (no restocking is given
    # up, sim/prices/step.py restocking_give), and mines value banned output at the price they
    # expect once the ban lifts, so ore comes out level (measured 0.94 with, 0.96 without)
    assert on["co_hydroxide"] > off["co_hydroxide"]
    assert on["co_ore"] == pytest.approx(off["co_ore"], abs=0.05)
    assert on["co_ore_stock"] > 2 and on["co_hydroxide_stock"] > 2  # stock at the mine


# ---------------------------------------------------------------------- no runaway
RANGES = [
    "scenario.market.kappa",
    "scenario.market.storage_kappa",
    "scenario.market.sigma",
    "scenario.market.rho",
    "scenario.market.max_log_step",
    "scenario.market.choke_price_multiple",
    "scenario.market.storage_response",
    "scenario.market.storage_max_multiple",
    "scenario.market.trend_weight",
    "scenario.demand.price_elasticity",
]


def _world_price(result) -> pd.DataFrame:
    ts = result.timeseries
    p = ts[ts.variable == "price"]
    return p.groupby(["month", "commodity"], observed=True)["value"].median().unstack()


@pytest.mark.slow
def test_no_runaway_after_a_six_month_cut_over_the_documented_parameter_ranges():
    """Acceptance of issue 15: over a Sobol sample of the price-formation parameters' plausible
    ranges (configs/parameters.csv), after a six-month 50% cut of China's refined exports ends
    (Jul 2026), every commodity's world price (3-month mean) comes back within 25% of the same
    run without the cut within 36 months. (Measured, not asserted: in a few corners of the
    ranges prices keep oscillating around the twin afterwards; docs/ODD.md §9.)"""
    table = parameters.table()
    lows = np.array([table[k].calibration_range[0] for k in RANGES])
    highs = np.array([table[k].calibration_range[1] for k in RANGES])
    highs[RANGES.index("scenario.demand.price_elasticity")] = 0.3  # at most the long-run elasticity
    points = qmc.scale(qmc.Sobol(len(RANGES), scramble=True, seed=20240101).random(16), lows, highs)
    base = ["scenario.end=2029-07", "scenario.demand.noise_sd=0", "experiment.metrics.report=false"]
    stuck = []
    for point in points:
        overrides = [f"{k}={v:.6g}" for k, v in zip(RANGES, point)]
        hit = _world_price(simulate([*base, "shock=refiner_cut", *overrides]))
        twin = _world_price(simulate([*base, *overrides]))
        after = (hit / twin).rolling(3).mean().loc["2026-08-01":"2029-07-01"] - 1
        returned = (after.abs() <= 0.25).any()
        if not returned.all():
            stuck.append((list(returned.index[~returned]), overrides))
    assert not stuck, stuck


def test_a_market_with_nothing_to_sell_takes_the_open_price_abroad():
    """Japan's magnet plants stand still and their stock is gone: nothing is on offer in that
    market. With no sales and no cover the rule would read it as ever more short (found in the
    world of 2009, where Japan's magnet makers closed under the 2010 quotas: x15 in four months),
    so the rule does not move it: it takes the price its first seller would fetch, the magnet
    price of the markets still in business, weighted by what they sold (no restriction here), and
    they keep moving (sim/prices/expectations.py: idle_market_prices)."""
    from critmin.sim.network import OUTPUT
    from critmin.sim.prices import in_business, update
    from critmin.sim.run import load_config, new_model

    model = new_model(load_config(["scenario.end=2024-06"]))
    model.step()
    net, s = model.net, model.state
    market = model.slot_market()
    magnet = net.commodities.index("ndfeb_magnet")
    japan = magnet * net.n_countries + net.countries.index("JPN")
    sellers = np.flatnonzero((market == japan) & (net.slot_role == OUTPUT))
    assert in_business(model, market)[japan]
    s.capacity_factor[net.slot_node[sellers]] = 0.0
    s.stock[sellers] = 0.0
    alive = in_business(model, market)
    assert not alive[japan]
    before = s.log_p.copy()
    update(model, model.cleared)
    assert np.abs(s.log_p - before).max() > 0  # the others moved: the update did run
    magnets = np.arange(magnet * net.n_countries, (magnet + 1) * net.n_countries)
    sold = np.bincount(market, weights=model.cleared.result.sold, minlength=before.size)[magnets]
    others = alive[magnets] & (magnets != japan)
    world = np.sum(sold[others] * np.exp(s.log_p[magnets][others])) / sold[others].sum()
    assert np.exp(s.log_p[japan]) == pytest.approx(world, rel=1e-9)
    assert abs(s.log_p[japan] - before[japan]) < 0.05  # a few percent, not the runaway of x15


def test_a_buyer_that_bought_nothing_learns_the_price_it_would_pay_and_can_restart():
    """An idle plant's expected input price follows what one more tonne would cost it on its
    open edges; with every edge closed it keeps what it paid last. (It used to keep the spike
    that idled it, so a Japanese alloy maker priced out for two months never came back.)"""
    from dataclasses import replace

    from critmin.sim.model import CritminModel
    from critmin.sim.prices import learn_paid, marginal_price
    from critmin.sim.run import load_config

    model = CritminModel(load_config(["scenario=ree_2024_short", "scenario.end=2024-03"]))
    model.step()
    net, cleared, s = model.net, model.cleared, model.state
    buyer = int(net.edge_buyer[np.argmax(cleared.spot_flow)])  # a buyer that bought this month
    mine = net.edge_buyer == buyer
    paid = np.full(net.n_slots, 1e9)
    idle = replace(cleared, spot_flow=np.where(mine, 0.0, cleared.spot_flow))
    learned = learn_paid(net, idle, paid, model.params.market.theta, s.preference)
    would = marginal_price(
        cleared.p_del,
        net.edge_buyer,
        net.n_slots,
        model.params.market.theta,
        s.preference,
        cleared.spot_capped,
    )
    assert learned[buyer] == pytest.approx(would[buyer]) and learned[buyer] < 1e6
    closed = replace(idle, spot_capped=cleared.spot_capped | mine)
    assert learn_paid(net, closed, paid, model.params.market.theta, s.preference)[buyer] == 1e9
