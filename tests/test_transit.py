"""Goods in transit (sim/transit.py, transit.csv; issue 15): a route that takes k months delivers
k months after the sale, the cargo afloat is a stock in the mass balance, and under the DRC ban
Chinese refiners keep receiving Congolese hydroxide for the ~90 days it is at sea."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from critmin.sim import origin, transit
from critmin.sim.compose import load_config
from critmin.sim.model import CritminModel
from critmin.sim.schemas import WORLD_FILES
from critmin.sim.world import DataError, data_root, load_world, load_worlds

COBALT = [
    "scenario=cobalt_2024",
    "scenario.demand.noise_sd=0.0",
    "scenario.producers.outage_rate_per_year=0.0",
]


def _state(stock: np.ndarray, mix: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(t=0, stock=stock.astype(float), mix=mix.astype(float))


def test_a_shipment_arrives_k_months_later_with_the_mix_it_left_with():
    """Edge 0 (slot 0 -> 2) takes 2 months, edge 1 (slot 1 -> 2) arrives at once. Two origin
    columns: slot 0 carries column 0, slot 1 column 1."""
    routes = transit.Routes.of(np.array([2, 0]), np.array([0, 1]), np.array([2, 2]))
    assert routes.ring == 3 and routes.edges.tolist() == [0]
    s = _state(np.array([100.0, 100.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    transit.start(routes, s, np.array([5.0, 7.0]), n_origins=2)
    assert s.in_transit[2] == 10.0  # two months of the base flow afloat at the start
    arrived = []
    for t in range(5):
        s.t = t
        flow = np.array([10.0 * (t + 1), 1.0])
        now = transit.ship(routes, s, flow)
        np.testing.assert_allclose(now, [0.0, 1.0])  # the long route delivers nothing now
        s.stock = s.stock + np.array([-flow[0], -flow[1], 0.0])
        origin.mix_in(s.stock, s.mix, np.array([2]), np.array([now[1]]), s.mix[[1]].copy())
        s.stock[2] += now.sum()
        got = transit.arrive(routes, s)
        arrived.append(got[2])
        # tonnes: what sellers lost = what the buyer holds + what is afloat (less the base cargo)
        assert s.stock.sum() + s.in_transit.sum() == pytest.approx(200.0 + 10.0)
    assert arrived == [5.0, 5.0, 10.0, 20.0, 30.0]  # the base cargo, then month 0's, 1's, 2's
    # the buyer's stock mixes what arrived from slot 0 (column 0) with slot 1's (column 1)
    from_0 = sum(arrived)  # 70 t from slot 0, 5 t from slot 1
    np.testing.assert_allclose(s.mix[2], [from_0 / (from_0 + 5.0), 5.0 / (from_0 + 5.0)])
    np.testing.assert_allclose(s.afloat_mix[s.afloat > 0], [[1.0, 0.0]] * 2)  # months 3, 4 at sea


def test_no_route_takes_time_without_data():
    routes = transit.Routes.of(np.zeros(3, np.int64), np.arange(3), np.arange(3))
    s = _state(np.ones(3), np.eye(3))
    transit.start(routes, s, np.ones(3), n_origins=3)
    flow = np.array([1.0, 2.0, 3.0])
    assert transit.ship(routes, s, flow) is flow  # nothing copied or changed
    assert not transit.arrive(routes, s).any() and not s.in_transit.any()


def test_the_importers_row_wins_over_all_and_only_commercial_cross_border_edges_travel():
    table = pd.DataFrame(
        {
            "commodity": ["ore", "ore"],
            "exporter": ["A", "A"],
            "importer": ["all", "B"],
            "months": [3, 1],
            "source": ["x", "y"],
        }
    )
    # edges: A->B, A->C, A->A, B->A, A->C to a stockpile
    months = transit.edge_months(
        table,
        ["ore", "metal"],
        ["A", "B", "C"],
        np.array([0, 0, 0, 0, 0]),
        np.array([0, 0, 0, 1, 0]),
        np.array([1, 2, 0, 0, 2]),
        np.array([True, True, True, True, False]),
    )
    assert months.tolist() == [1, 3, 0, 0, 0]


def test_the_cobalt_world_starts_with_three_months_of_congolese_exports_afloat_and_stays_put():
    """transit.csv: DRC ore and hydroxide take 3 months to every importer (Reuters 2025-06-27:
    ~90 days to China). The run starts with the base year's cargo under way, so a year without a
    shock keeps the 2024 steady state: the mass balance closes with the cargo in the importers'
    stock, and prices and imports are those of the world without transit within 1%."""
    cfg = load_config([*COBALT, "scenario.end=2024-12"])
    world = load_worlds([data_root() / "cobalt"], dict(cfg.scenario.blocs))
    runs = []
    for w in (world, dataclasses.replace(world, transit=WORLD_FILES["transit.csv"].empty())):
        m = CritminModel(cfg, world=w)
        if not runs:  # with transit: 3 months of the DRC's monthly exports afloat (~62 kt)
            cod = m.net.countries.index("COD")
            net = m.net
            ore_or_hydroxide = np.isin(
                net.edge_commodity, [net.commodities.index(c) for c in ("co_ore", "co_hydroxide")]
            )
            abroad = (net.edge_from == cod) & (net.edge_to != cod) & ore_or_hydroxide
            exports = m.calibration.base_edge_flow[abroad].sum()
            assert m.state.in_transit.sum() == pytest.approx(3 * exports, rel=1e-9)
            assert 55_000 < m.state.in_transit.sum() < 70_000
        m.run()
        assert m.recorder.mass_balance_errors().max() <= 1e-9
        runs.append(m)
    with_transit, without = runs
    # within 1%: demand grows, and what lands is what was bought three months before (measured
    # max 0.6%, ore; refined 0.04%)
    np.testing.assert_allclose(with_transit.state.log_p, without.state.log_p, atol=0.01)
    imports = with_transit.recorder.data["imports"].sum(axis=1)
    np.testing.assert_allclose(imports, without.recorder.data["imports"].sum(axis=1), rtol=0.01)


def test_under_the_drc_ban_chinese_refiners_keep_receiving_hydroxide_for_three_months():
    """Direction and size: the ban stops sales from Feb 2025, but what was shipped in Nov 2024 -
    Jan 2025 still lands in Feb - Apr (history: China's imports of Congolese cobalt stayed above
    50 kt in both March and April, Reuters 2025-06-27). China's refinery runs on it two months
    longer, so its output in Jun - Jul is higher than without transit and the refined price in
    Aug 2025 is lower (measured, no noise, refiners' 4 months of input: Jun - Jul output 43.4 kt
    vs 14.6 kt, Aug price x1.47 vs x2.09). The cargo afloat falls to 0 in April and the mass
    balance closes throughout."""
    cfg = load_config([*COBALT, "scenario.end=2025-08", "shock=drc_cobalt_2025"])
    world = load_worlds([data_root() / "cobalt"], dict(cfg.scenario.blocs))
    out = {}
    for name, w in (
        ("transit", world),
        ("none", dataclasses.replace(world, transit=WORLD_FILES["transit.csv"].empty())),
    ):
        m = CritminModel(cfg, world=w)
        net = m.net
        chn_ref = net.node_id.index("chn_co_refinery")
        k = net.commodities.index("co_refined")
        market = net.market_index(k, net.countries.index("CHN"))
        afloat, activity, price = [], [], []
        for _ in range(m.n_steps):
            m.step()
            afloat.append(m.state.in_transit.sum())
            activity.append(m.state.activity[chn_ref])
            price.append(np.exp(m.state.log_p[market]) / net.price0[k])
        assert m.recorder.mass_balance_errors().max() <= 1e-9
        out[name] = np.array(afloat), np.array(activity), np.array(price)
    afloat, act, price = out["transit"]
    _, act0, price0 = out["none"]
    assert afloat[12] > 50_000  # Jan 2025: three months of exports at sea
    assert afloat[15] < 1.0  # Apr 2025: the last pre-ban cargo has landed
    assert act[17:19].sum() > 2 * act0[17:19].sum()  # Jun-Jul 2025: the refinery runs on the cargo
    assert price[19] < 0.8 * price0[19]  # Aug 2025: the shortage reaches the metal later


def _world_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "cobalt"
    shutil.copytree(data_root() / "cobalt", folder)
    (folder / "transit.csv").write_text("commodity,exporter,importer,months,source\n" + text + "\n")
    return folder


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("co_nothing,COD,CHN,3,x", "commodity"),
        ("co_hydroxide,XXX,CHN,3,x", "exporter"),
        ("co_hydroxide,COD,YYY,3,x", "importer"),
        ("co_hydroxide,COD,COD,3,x", "importer"),
        ("co_hydroxide,COD,CHN,-1,x", "months"),
        ("co_hydroxide,COD,CHN,2.5,x", "months"),
        ("co_hydroxide,COD,CHN,13,x", "months"),
        ("co_hydroxide,COD,CHN,3,", "source"),
    ],
)
def test_bad_transit_rows_fail_cleanly_naming_file_and_row(tmp_path: Path, row: str, message: str) -> None:
    folder = _world_with(tmp_path, row)
    with pytest.raises(DataError, match=message) as err:
        load_world(folder)
    assert "transit.csv" in str(err.value) and "row 2" in str(err.value)


def test_buyers_order_to_refill_their_supply_line():
    """Sterman's supply line (agents/buying.py): a buyer on a route that takes months also closes
    the gap between its cargo afloat and its normal cargo (base-year cargo x use over base-year
    use) over its stock adjustment months. With the pipeline at normal nothing changes; with it
    empty (a ban) China's refinery asks normal cargo / 6 more a month."""
    from critmin.agents import buying

    m = CritminModel(load_config([*COBALT, "scenario.end=2024-03"]))
    m.step()
    s, net = m.state, m.net
    slot = np.flatnonzero((net.slot_node == net.node_id.index("chn_co_refinery")) & (net.slot_role == 0))[0]
    args = (net, s, m.params, m.is_consume, m.restock_months)
    plain, use, _ = buying.purchase_requests(*args)
    with_line, _, _ = buying.purchase_requests(*args, m.normal_afloat, m.calibration.base)
    pipeline = m.normal_afloat[slot] * use[slot] / m.calibration.base[slot]
    assert pipeline > 30_000  # ~3 months of China's Congolese hydroxide
    gap = (pipeline - s.in_transit[slot]) / m.restock_months[slot]
    assert with_line[slot] - plain[slot] == pytest.approx(gap, rel=1e-9)
    assert abs(gap) < 0.02 * pipeline  # the run starts with the normal cargo afloat
    s.in_transit[slot] = 0.0  # the pipeline drained
    drained, _, _ = buying.purchase_requests(*args, m.normal_afloat, m.calibration.base)
    assert drained[slot] - plain[slot] == pytest.approx(pipeline / m.restock_months[slot], rel=1e-9)
