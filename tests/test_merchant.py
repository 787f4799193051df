"""Merchant holders (agents/merchant.py, holders.csv; issue 15 item 2): traders' stock of refined
cobalt that buys the 2024 surplus at normal prices and sells into a spike (competitive storage)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from critmin.sim.compose import load_config
from critmin.sim.model import CritminModel
from critmin.sim.prices import storage_multiple
from critmin.sim.schemas import WORLD_FILES
from critmin.sim.world import DataError, data_root, load_world, load_worlds

COBALT = [
    "scenario=cobalt_2024",
    "scenario.demand.noise_sd=0.0",
    "scenario.producers.outage_rate_per_year=0.0",
]


def _model(end: str, *extra: str) -> CritminModel:
    return CritminModel(load_config([*COBALT, f"scenario.end={end}", *extra]))


def test_holders_buy_the_surplus_at_normal_prices_and_hold_it() -> None:
    """No shock: each month the holders buy their normal build (the end use's 2024 purchases ×
    its growth path) and keep it; the refined price stays at its 2024 level; the store holds the
    opening stock plus what was bought, less nothing sold (mass balance of the store)."""
    m = _model("2024-12")
    h, net = m.merchants, m.net
    build0 = net.demand0[h.nodes].sum()
    bought = 0.0
    for _ in range(m.n_steps):
        m.step()
        assert h.sell.sum() == 0.0
        bought += m.cleared.result.flow[np.isin(net.edge_buyer, h.buy_slots)].sum()
    # the 2024 surplus, its index falling linearly from 1.0 to 0.8 in Jan 2025: 12 - 0.2 * 5.5
    assert bought == pytest.approx(build0 * 10.9, rel=0.01)
    held = m.state.stock[h.store_slots].sum() + m.state.stock[h.buy_slots].sum()
    desk0 = m.params.demand.safety_stock_months * build0
    assert held == pytest.approx(h.opening.sum() + desk0 + bought, rel=1e-9)
    k = net.commodities.index("co_refined")
    p = np.exp(m.state.log_p[net.market_index(k, net.countries.index("CHN"))]) / net.price0[k]
    assert abs(p - 1.0) < 0.02


def test_holders_sell_when_the_price_is_above_their_expected_price_plus_carry() -> None:
    """Direction and size of the decision: an expected fall of 50%/month (a spike) makes the
    holders offer stock − N·max(exp(β·(−0.5 + carry/12)), 1/M) over the adjustment months, less their
    build; an expected fall inside the carry band changes nothing; an expected rise makes them buy
    more than their build."""
    m = _model("2024-03")
    m.step()
    h, s, p = m.merchants, m.state, m.params
    sellers = m.net.edge_seller[h.edges]
    for gain, want_sell in ((-0.5, True), (-0.1, False), (-0.5 * h.carry[0] / 12, False), (0.05, False)):
        s.storage_return[sellers] = gain
        normal, stock = h.normal.copy(), s.stock[h.store_slots] + s.stock[h.buy_slots]
        h.decide(m)
        build = m.net.demand0[h.nodes] * m.growth_index(h.nodes)
        net_gain = np.sign(gain) * max(abs(gain) - h.carry[0] / 12, 0.0)
        g = storage_multiple(np.array(net_gain), p.market.storage_response, p.market.storage_max_multiple)
        expect = build + (normal * g - stock) / p.producers.stock_adjust_months
        np.testing.assert_allclose(h.buy - h.sell, expect, rtol=1e-9)
        assert (h.sell.sum() > 0) == want_sell
        if gain > 0:
            assert (h.buy > build).all()
        elif gain > -0.05:
            np.testing.assert_allclose(h.buy, build + (normal - stock) / p.producers.stock_adjust_months)


def _sales_into_the_drc_spike(spot_round: bool) -> tuple[CritminModel, float, float, float, float]:
    """The DRC replay to Jun 2026 with the holders' offers in the spot round (or, to compare, in
    the reserve round of governments' releases): the model, what they sold and offered over Sep
    2025-Feb 2026, their peak and lowest stock after it; checks every month that they sold what
    they hold, of its origin, at their supply markets' price, and not to one another."""
    m = _model("2026-06", "shock=drc_cobalt_2025")
    h, net, s = m.merchants, m.net, m.state
    if not spot_round:
        h.is_store[:] = False  # their offers join the governments' releases
    store_edges = np.flatnonzero(np.isin(net.edge_seller, h.store_slots))
    market = m.slot_market()
    peak, low, sold, spot, offered = 0.0, np.inf, 0.0, 0.0, 0.0
    for t in range(m.n_steps):
        mix_before = s.mix[h.buy_slots].copy()
        m.step()
        held = s.stock[h.store_slots].sum() + s.stock[h.buy_slots].sum()
        peak = max(peak, held)
        if t >= 20:
            low = min(low, held)
        if 20 <= t <= 25:  # Sep 2025 - Feb 2026
            sold += m.cleared.result.sold[h.store_slots].sum()
            spot += m.cleared.spot_flow[store_edges].sum()
            offered += h.sell.sum()
        assert m.cleared.result.flow[h.wash_edges].sum() == 0.0  # not with one another
        if h.sell.sum() > 0 and h.buy.sum() == 0:
            np.testing.assert_allclose(s.mix[h.buy_slots], mix_before, atol=1e-12)
            np.testing.assert_allclose(s.mix[h.store_slots], mix_before, atol=1e-12)  # what sold
            # the price asked is the supply markets' (a purchase-weighted mean of their prices)
            p_mk = np.exp(m.cleared.log_p[market[net.edge_seller[h.edges]]])
            price = m.store_price[h.store_slots]
            assert (price >= p_mk.min() * (1 - 1e-9)).all() and (price <= p_mk.max() * (1 + 1e-9)).all()
    assert m.recorder.mass_balance_errors().max() <= 1e-9
    if spot_round:
        assert sold == pytest.approx(spot, rel=1e-9)  # all in the spot round
    return m, sold, offered, peak, low


def test_holders_release_into_the_drc_spike_in_the_spot_round() -> None:
    """Under the DRC ban the holders stop buying once refined cobalt is above the price they
    expect plus carry and sell into the spike like any seller: their offers are spot offers at
    their supply markets' price, so what they offer sells as it is offered; through the reserve
    round of governments' releases, which serves only buyers' use left short, it does not sell
    while buyers still hold stock. They sell what they hold, of its origin (a month of sales
    leaves the origin mix of their stock unchanged), and the run's mass balance holds. Measured
    (no noise, Sep 2025-Feb 2026): ~10.1 of ~12.9 kt offered sold in the spot round since China's
    hydroxide market, cut off from its imports, is pulled toward the ban's expected scarcity
    (sim/prices/anchors.py cutoff_anchor; ~13.5 of ~15.7 kt before it; ~10.2 of
    ~10.2 kt before buyers' line stops, agents/buying.py; ~25.4 kt before the holders read the
    quotas' announcement); through the reserve round ~3.0 kt, which reaches only the firms whose
    stock runs out (0 of ~18.5 kt before line stops; docs/ODD.md §7.12)."""
    _, sold, offered, peak, low = _sales_into_the_drc_spike(spot_round=True)
    _, sold_r, offered_r, _, _ = _sales_into_the_drc_spike(spot_round=False)
    assert sold > 8_000
    assert sold > 0.7 * offered
    assert low < peak - 8_000
    assert sold_r < 0.3 * sold and offered_r > 0.5 * offered


def test_holders_sell_more_into_the_drc_spike_once_their_expected_scarcity_counts_todays_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Expected scarcity downstream of the ban is the rise left above today's price
    (sim/prices/expectations.py: expected_scarcity, ``above``). Before, it was the whole rise whatever the
    price had done, so holders at x2-3 still expected the choke price. Measured (no noise,
    Sep 2025-Jun 2026): refined cobalt in China peaks at x2.85 against x3.54 with the old cap
    (x3.11 against x3.30 before the holders read the ban's announced ends); with the holders selling
    in the spot round, x2.44 against x2.93; since they read the 2026-27 quotas from their
    September 2025 announcement (they expect the restriction to last, hold more and the peak is
    less their doing), x2.61 against x2.69."""
    from critmin.sim import prices

    def sold_into_spike() -> tuple[float, float]:
        # without line stops (agents/buying.py), which damp the spike with the old cap themselves
        m = _model("2026-06", "shock=drc_cobalt_2025", "scenario.demand.cover_dispersion=0")
        h, net, sold, peak = m.merchants, m.net, 0.0, 0.0
        k = net.commodities.index("co_refined")
        chn = net.market_index(k, net.countries.index("CHN"))
        for t in range(m.n_steps):
            m.step()
            peak = max(peak, float(np.exp(m.state.log_p[chn]) / net.price0[k]))
            if t >= 20:  # Sep 2025 on
                sold += m.cleared.result.sold[h.store_slots].sum()
        return sold, peak

    now, peak_now = sold_into_spike()
    whole_rise = prices.expected_scarcity

    def old_cap(*args, **kwargs):
        kwargs.pop("above", None)
        return whole_rise(*args, **kwargs)

    monkeypatch.setattr(prices, "expected_scarcity", old_cap)
    _, peak_before = sold_into_spike()
    assert now > 5_000
    assert peak_now < 0.98 * peak_before


def test_the_drc_spike_is_smaller_with_holders_than_with_the_old_end_use() -> None:
    """The same replay without holders (the holder table emptied: co_stockbuild is the end use it
    was before issue 15, buying its path whatever the price): with holders refined cobalt in China
    peaks lower (no noise; measured peak x2.85 vs x3.17) and is lower on average over Jul 2025 -
    Jun 2026 (x2.25 vs x2.36). Before the holders read the ban's announced ends (agents/merchant.py
    end_chance) they kept buying through the slow ramp (their stock peaked in Nov 2025) and damped
    only the peak (x3.11 vs x3.17; mean x2.42 vs x2.36); now they stop buying by mid-2025 and want
    to sell before each announced end (docs/ODD.md §9)."""
    # without line stops (agents/buying.py): they damp the spike without holders too (peak x2.88,
    # mean x2.31; with holders x2.79, x2.25)
    cfg = load_config(
        [*COBALT, "scenario.end=2026-06", "shock=drc_cobalt_2025", "scenario.demand.cover_dispersion=0"]
    )
    world = load_worlds([data_root() / "cobalt"], dict(cfg.scenario.blocs))
    paths = []
    for w in (world, dataclasses.replace(world, holders=WORLD_FILES["holders.csv"].empty())):
        m = CritminModel(cfg, world=w)
        k = m.net.commodities.index("co_refined")
        chn = m.net.market_index(k, m.net.countries.index("CHN"))
        path = []
        for _ in range(m.n_steps):
            m.step()
            path.append(np.exp(m.state.log_p[chn]) / m.net.price0[k])
        paths.append(np.array(path))
    with_holders, without = paths
    after = slice(18, 30)  # Jul 2025 - Jun 2026
    assert with_holders.max() < 0.95 * without.max()
    assert with_holders[after].mean() < 0.98 * without[after].mean()
    assert with_holders.max() > 1.5  # still a spike: the holders damp it, they do not remove it


def _world_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "cobalt"
    shutil.copytree(data_root() / "cobalt", folder)
    (folder / "holders.csv").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("co_nothing,30000,0.08,x", "end_use"),
        ("co_stockbuild,-5,0.08,x", "opening_stock_t"),
        ("co_stockbuild,30000,1.5,x", "carry_cost_per_year"),
        ("co_stockbuild,30000,,x", "carry_cost_per_year"),
    ],
)
def test_bad_holder_rows_fail_cleanly(tmp_path: Path, row: str, message: str) -> None:
    folder = _world_with(tmp_path, f"end_use,opening_stock_t,carry_cost_per_year,source\n{row}\n")
    with pytest.raises(DataError, match=message):
        load_world(folder)


def test_a_holder_end_use_without_demand_rows_fails_cleanly(tmp_path: Path) -> None:
    from critmin.agents.merchant import holder_stores

    folder = _world_with(
        tmp_path, "end_use,opening_stock_t,carry_cost_per_year,source\nco_stockbuild,1,0.08,x\n"
    )
    world = load_world(folder)
    world.demand = world.demand[world.demand["end_use"] != "co_stockbuild"]
    with pytest.raises(DataError, match=r"holders\.csv: end use .co_stockbuild. has no rows in demand\.csv"):
        holder_stores(world)
