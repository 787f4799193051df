"""A commodity's own buyer cover (commodities.csv ``buyer_cover_months``; issue 15): every buyer of
the commodity (plants without a processes.csv ``input_cover_months`` of their own, and
manufacturers) holds the months of use the chain's sources give, instead of the scenario's one
number. Gallium: Japanese firms dealing with gallium held up to about six months of inventory
(Yomiuri 2023-08-04), so ga_primary and ga_high_purity buyers hold 4 [U 2-6], and under China's
2023 licensing the outside (Rotterdam) price rises more slowly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from world_copies import edited_world

from critmin.sim.compose import load_config
from critmin.sim.model import CritminModel
from critmin.sim.network import INPUT
from critmin.sim.world import DataError, data_root, load_world, load_worlds

GALLIUM = [
    "scenario=gallium_2024",
    "scenario.demand.noise_sd=0.0",
    "scenario.producers.outage_rate_per_year=0.0",
]
GAGE = [*GALLIUM, "scenario.data=[gallium,germanium]"]


def _is_consume(net: object) -> np.ndarray:
    out = np.zeros(net.n_slots, bool)
    out[net.consume_slot[net.consume_slot >= 0]] = True
    return out


def test_gallium_buyers_hold_the_declared_months_from_the_first_month():
    m = CritminModel(load_config([*GALLIUM, "scenario.end=2024-02"]))
    net, s, p = m.net, m.state, m.params
    consume = _is_consume(net)
    inputs = net.slot_role == INPUT
    ga = np.isin(net.slot_commodity, [net.commodities.index(c) for c in ("ga_primary", "ga_high_purity")])
    feed = net.slot_commodity == net.commodities.index("ga_feed")
    cover = net.holder_cover(p.producers.input_cover_months, p.demand.safety_stock_months, consume)
    assert (cover[inputs & ga] == 4.0).all()  # refiners' 4N and manufacturers' 4N/6N-7N alike
    assert (inputs & ga & consume).sum() > 10 and (inputs & ga & ~consume).sum() > 5
    assert (cover[inputs & feed] == p.producers.input_cover_months).all()  # blank: the scenario's 2
    base = m.calibration.base
    np.testing.assert_allclose(s.stock[inputs & ga], 4.0 * base[inputs & ga])  # 2024 stock at target
    m.run()
    assert m.recorder.mass_balance_errors().max() <= 1e-9


def test_other_chains_keep_the_scenario_cover():
    """Cobalt's plants keep their processes.csv cover or the scenario's, its manufacturers the
    safety stock: commodities.csv of cobalt has no buyer cover."""
    m = CritminModel(load_config(["scenario=cobalt_2024", "scenario.end=2024-02"]))
    net, p = m.net, m.params
    consume = _is_consume(net)
    cover = net.holder_cover(p.producers.input_cover_months, p.demand.safety_stock_months, consume)
    inputs = net.slot_role == INPUT
    assert (cover[inputs & consume] == p.demand.safety_stock_months).all()
    np.testing.assert_array_equal(
        cover[inputs & ~consume], net.input_cover(p.producers.input_cover_months)[inputs & ~consume]
    )


def _gallium_world(cover: float | None) -> object:
    cfg = load_config(GAGE)
    world = load_worlds([data_root() / "gallium", data_root() / "germanium"], dict(cfg.scenario.blocs))
    com = world.commodities.copy()
    ga = com.commodity.isin(["ga_primary", "ga_high_purity"])
    com.loc[ga, "buyer_cover_months"] = np.nan if cover is None else cover
    return type(world)(**{**world.__dict__, "commodities": com})


def test_a_longer_gallium_cover_slows_the_outside_price_under_licensing():
    """Direction and size (no noise; the 2024 world shifted +1 year, Aug 2023 -> Aug 2024): with
    4 months of gallium instead of the scenario's 2, Japan's 4N price in Oct 2023 is lower
    (measured x2.04 -> x1.73 of Jul 2023; history x1.68), and 6 months lower still (x1.56);
    before the control is announced the cover changes nothing (prices within 0.5%)."""
    cfg = load_config([*GAGE, "scenario.end=2024-10", "shock=gage_controls_2023"])
    out = {}
    for cover in (None, 4.0, 6.0):
        m = CritminModel(cfg, world=_gallium_world(cover))
        net = m.net
        k = net.commodities.index("ga_primary")
        jpn = net.market_index(k, net.countries.index("JPN"))
        price = []
        for _ in range(m.n_steps):
            m.step()
            price.append(np.exp(m.state.log_p[jpn]) / net.price0[k])
        out[cover] = np.array(price)
    p2, p4, p6 = out[None], out[4.0], out[6.0]
    np.testing.assert_allclose(p4[:6], p2[:6], rtol=0.005)  # Jan-Jun 2024: no control, same prices
    oct_ = 9  # Oct 2024 (Oct 2023 in history)
    assert p2[oct_] / p2[6] > 1.9
    assert 1.55 < p4[oct_] / p4[6] < 1.85
    assert p6[oct_] < 0.97 * p4[oct_]


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("buyer_cover_months", "-1", "0-24 months"),
        ("buyer_cover_months", "30", "0-24 months"),
        ("buyer_cover_months", "many", "buyer_cover_months"),
        ("buyer_cover_source", "", "the source"),
    ],
)
def test_bad_buyer_cover_fails_cleanly_naming_file_and_row(tmp_path, column, value, expected):
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[table.commodity == "ga_primary", column] = value
        return table

    folder = edited_world(tmp_path, "commodities.csv", edit, world="gallium")
    with pytest.raises(DataError, match=expected) as err:
        load_world(folder)
    assert "commodities.csv" in str(err.value) and "row 3" in str(err.value)


def test_a_world_without_the_columns_uses_the_scenario_cover(tmp_path):
    folder = edited_world(
        tmp_path,
        "commodities.csv",
        lambda t: t.drop(columns=["buyer_cover_months", "buyer_cover_source"]),
        world="gallium",
    )
    world = load_world(folder)
    assert world.commodities["buyer_cover_months"].isna().all()
