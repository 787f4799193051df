"""Issue 15: the dominant producer's mining quota follows the market (sim/investment.py MarketQuota).

China's REE mining quota grew +20-25% a year in 2021-23, +5.9% in 2024 and about 0 in 2025, with
"market demand" among its criteria (facts.md §3.1); without a rule its expansions pay at any
price the runs reach and grow at the yearly cap. Under the rule a ruled country's mine capacity,
in operation and in flight, stays within ``ratio0 × D(t) × (1 + headroom)``, D its processors'
expected demand for the mined commodity.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from critmin.experiments.api import simulate
from critmin.sim import investment as inv
from critmin.sim.run import load_config

PARAMS = SimpleNamespace(announce_rate_per_year=0.2, fid_pi_scale=0.25, expansion_share=0.1)
CAP = 0.2  # yearly expansion cap of the synthetic mine


def mine_options(capacity: float, n: int = 4) -> inv.Pipeline:
    """``n`` brownfield options of one mine (node 0): very profitable, each 5% of its capacity."""
    z = np.zeros(n)
    size = 0.05 * capacity
    return inv.Pipeline(
        ids=np.array([f"mine_expansion_{k}" for k in range(n)]),
        project=np.array([f"mine_expansion_{k}" for k in range(n)]),
        node=np.zeros(n, dtype=np.int64),
        kind=np.full(n, inv.KIND_EXPANSION),
        status=np.full(n, inv.PERMITTED),
        months_left=z.copy(),
        nameplate=np.full(n, size),
        capex=np.full(n, 100.0 * size * 12),
        cash_cost=np.full(n, 10.0),
        final_share=np.ones(n),
        permit_months=np.zeros(n),
        finance_months=np.full(n, 1.0),
        construction_months=np.full(n, 12.0),
        ramp_months=np.full(n, 6.0),
        life_years=np.full(n, 20.0),
        hurdle=np.full(n, 0.08),
        risk_premium=np.zeros(n),
        abandon_rate=np.zeros(n),
        max_expansion=np.full(n, CAP),
        country=np.zeros(n, dtype=np.int64),
        stage=np.full(n, "mine"),
        months_online=z.copy(),
        permitted_month=np.zeros(n, dtype=np.int64),
        financed_month=np.full(n, -1),
        start_month=np.full(n, -1),
    )


def one_group(n: int) -> inv.MarketQuota:
    """Rows 0..n-1 count against one quota; its processors' demand is slot 0 of ``orders``;
    ratio0 = 1 (the mine supplied all of its processors' feed in the base year)."""
    zi = np.zeros(1, dtype=np.int64)
    return inv.MarketQuota(
        rows=np.arange(n),
        row_group=np.zeros(n, dtype=np.int64),
        mine_nodes=zi,
        mine_group=zi,
        out_slots=zi,
        weight=np.ones(1),
        slot_group=zi,
        ratio0=np.ones(1),
    )


def grow(demand: np.ndarray, headroom: float | None, seed: int = 0) -> np.ndarray:
    """Yearly mine capacity when the processors' demand follows ``demand`` (per month, t);
    ``headroom`` None: no rule (every profitable option goes, within the yearly cap)."""
    base = np.array([demand[0]])
    p = mine_options(base[0])
    mq = one_group(p.size)
    rng = np.random.default_rng(seed)
    margin = np.full(p.size, 1000.0)
    out = []
    for t, d in enumerate(demand):
        capacity = base + np.bincount(p.node, weights=p.online(), minlength=1)
        room = key = None
        if headroom is not None:
            room, key = inv.quota_room(mq, p, capacity, np.array([d]), headroom)
        terms = inv.Terms(margin, np.zeros(p.size, bool), np.zeros(p.size), np.zeros(p.size), room, key)
        inv.advance(p, terms, rng, t, PARAMS, capacity)
        base = base + np.bincount(p.node, weights=inv.renew_expansions(p, base, PARAMS), minlength=1)
        out.append(float(capacity[0]))
    return np.array(out)[11::12]  # each December


def demand_path(first: float, then: float, years: int = 12) -> np.ndarray:
    """Monthly demand growing ``first`` a year for half the years, ``then`` a year after."""
    g = np.where(np.arange(years * 12) < years * 6, first, then)
    return 1000.0 * np.cumprod((1.0 + g) ** (1 / 12))


def test_an_option_goes_only_while_it_fits_the_quota_room():
    p = mine_options(1000.0)  # options of 50 each
    key = np.zeros(p.size, dtype=np.int64)
    want = np.ones(p.size, bool)
    # room for two and a half options: the first two go, in order
    ok = inv.within_quota(p, want, np.full(p.size, 125.0), key)
    assert ok.tolist() == [True, True, False, False]
    # no room (capacity already above the quota's target): none goes
    assert not inv.within_quota(p, want, np.full(p.size, -1.0), key).any()
    # rows under no quota pass whatever their room
    assert inv.within_quota(p, want, np.full(p.size, -1.0), np.full(p.size, -1)).all()


def test_the_room_counts_capacity_in_operation_and_in_flight():
    p = mine_options(1000.0)
    mq = one_group(p.size)
    orders = np.array([1000.0])
    room, key = inv.quota_room(mq, p, np.array([1000.0]), orders, headroom=0.1)
    assert room[0] == pytest.approx(100.0) and (key == 0).all()
    p.status[0] = inv.FINANCED  # 50 in construction counts against the quota
    room, _ = inv.quota_room(mq, p, np.array([1000.0]), orders, headroom=0.1)
    assert room[0] == pytest.approx(50.0)
    # demand up 20%: the target rises with it (1.1 x 1,200 - 1,050)
    room, _ = inv.quota_room(mq, p, np.array([1000.0]), orders * 1.2, headroom=0.1)
    assert room[0] == pytest.approx(270.0)


def test_when_demand_growth_slows_the_quota_growth_slows_with_it():
    demand = demand_path(0.06, 0.02)
    ruled = grow(demand, headroom=0.05)
    free = grow(demand, headroom=None)
    rate = lambda cap, a, b: (cap[b] / cap[a]) ** (1 / (b - a)) - 1  # noqa: E731
    # without the rule the profitable mine grows at its cap in both halves (demand is ignored)
    assert rate(free, 2, 5) > 0.6 * CAP and rate(free, 7, 11) > 0.6 * CAP
    # with it, about the demand's 6%/yr, then about its 2%/yr: the slowdown passes through
    assert 0.04 < rate(ruled, 2, 5) < 0.08
    assert 0.005 < rate(ruled, 7, 11) < 0.035
    assert rate(ruled, 7, 11) < rate(ruled, 2, 5) - 0.025
    # and the mine never runs ahead of its target by more than one option in flight
    dec = demand[11::12]
    assert (ruled <= dec * 1.05 + 0.05 * 1000.0 * 2).all()
    assert ruled[-1] > 0.9 * dec[-1]  # it does follow demand up (no freeze)


QUIET = ["experiment.plots=false", "experiment.write_flows=false", "experiment.metrics.report=false"]


def mining(headroom: float) -> pd.DataFrame:
    cfg = load_config(["scenario.end=2035-12", f"scenario.investment.quota_headroom={headroom}", *QUIET])
    cfg.seed = 0
    ts = simulate(cfg).timeseries
    c = ts[(ts["commodity"] == "ree_concentrate") & (ts["variable"] == "production")]
    c = c[c["region"].str.fullmatch(r"[A-Z]{3}")]
    y = c.assign(year=pd.DatetimeIndex(c["month"]).year).groupby(["year", "region"])["value"].sum()
    return y.unstack(fill_value=0.0)


@pytest.mark.slow
def test_the_default_run_follows_the_market_china_grows_less_and_ex_china_more():
    ruled = mining(0.1)  # the default
    free = mining(10.0)  # far above its range: the no-rule behaviour (expansions at the cap)
    share = lambda y: y["CHN"] / y.sum(axis=1)  # noqa: E731
    # 2024 is the base year's quota either way (270,000 t REO)
    assert ruled.loc[2024, "CHN"] == pytest.approx(free.loc[2024, "CHN"], rel=1e-6)
    assert ruled.loc[2024, "CHN"] == pytest.approx(270_000, rel=0.01)
    # by 2035 China mines less (without the rule: +6%/yr to ~450 kt, past its processors' needs;
    # measured 409 kt against 452 before the per-ore Dy/Tb yields, 430 against 450 with them: the
    # ionic-clay separators' Dy/Tb makes their feed demand grow faster)
    assert ruled.loc[2035, "CHN"] < 0.97 * free.loc[2035, "CHN"]
    # and the ex-China share is higher, by at least 2 points; the gap widens after 2030
    gap30 = share(free).loc[2030] - share(ruled).loc[2030]
    gap35 = share(free).loc[2035] - share(ruled).loc[2035]
    assert gap35 > 0.02 and gap35 > gap30
    # ex-China mining does not shrink after 2030 under the rule (the no-rule run's US and Myanmar did)
    ex = lambda y: y.drop(columns="CHN").sum(axis=1)  # noqa: E731
    assert ex(ruled).loc[2035] >= ex(ruled).loc[2030]


def test_in_the_rare_earth_world_the_rule_holds_chinas_mines_only():
    from critmin.sim.run import new_model

    cfg = load_config(["scenario.end=2024-02", *QUIET])
    model = new_model(cfg)
    mq = model.investment.market_quota
    p = model.investment.pipeline
    net = model.net
    assert mq is not None and mq.groups == 1  # one dominant mining country and process
    assert {net.countries[c] for c in p.country[mq.rows]} == {"CHN"}
    assert {str(net.node_process[n]) for n in p.node[mq.rows]} == {"mine_ree"}
    assert {str(net.node_id[n]) for n in mq.mine_nodes} == {"chn_mine_north", "chn_mine_south"}
    # every expansion option of China's mines is ruled, and nothing else
    chn_mines = np.isin(p.node, mq.mine_nodes) & (p.kind == inv.KIND_EXPANSION)
    assert sorted(mq.rows.tolist()) == np.flatnonzero(chn_mines).tolist()
    # its processors are China's separators: 2024 mine capacity over their feed (270 / ~359 kt)
    assert 0.6 < mq.ratio0[0] < 0.9


def test_a_world_whose_data_switch_the_rule_off_has_none():
    from critmin.sim.run import new_model

    # data/ree_2009: China's 2009 quotas did not bind its output (82 kt quota, 120 kt mined)
    model = new_model(load_config(["scenario=ree_2009", "scenario.end=2009-02", *QUIET]))
    assert model.investment.pipeline.size > 0 and model.investment.market_quota is None
