"""Input cover per process (processes.csv ``input_cover_months``; issue 15): plants hold the
months of an input their data declare instead of the scenario's one number. Cobalt: China's
refiners held up to 6 months of hydroxide in 2025 (Cobalt Congress), so refine_co holds 4
[U 2-6], and under the DRC ban they keep refining longer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from world_copies import edited_world

from critmin.sim.compose import load_config
from critmin.sim.model import CritminModel
from critmin.sim.network import INPUT
from critmin.sim.world import DataError, data_root, load_world, load_worlds

COBALT = [
    "scenario=cobalt_2024",
    "scenario.demand.noise_sd=0.0",
    "scenario.producers.outage_rate_per_year=0.0",
]


def _cover_world(cover: str) -> object:
    cfg = load_config(COBALT)
    world = load_worlds([data_root() / "cobalt"], dict(cfg.scenario.blocs))
    processes = world.processes.copy()
    row = (processes.process == "refine_co") & (processes.role == "input")
    processes.loc[row, "input_cover_months"] = float(cover) if cover else np.nan
    world = type(world)(**{**world.__dict__, "processes": processes})
    return world


def test_refiners_hold_the_declared_months_of_input_from_the_first_month():
    m = CritminModel(load_config([*COBALT, "scenario.end=2024-02"]))
    net, s = m.net, m.state
    refine = np.array([p == "refine_co" for p in net.node_process])[net.slot_node] & (net.slot_role == INPUT)
    hydroxide = refine & (net.slot_commodity == net.commodities.index("co_hydroxide"))
    other_inputs = (net.slot_role == INPUT) & net.is_facility[net.slot_node] & ~hydroxide
    cover = net.input_cover(m.params.producers.input_cover_months)
    assert (cover[hydroxide] == 4.0).all()
    assert (cover[other_inputs] == m.params.producers.input_cover_months).all()  # blank: the scenario's 2
    base = m.calibration.base
    np.testing.assert_allclose(s.stock[hydroxide], 4.0 * base[hydroxide])  # the 2024 stock is at target
    m.run()
    assert m.recorder.mass_balance_errors().max() <= 1e-9


def test_a_longer_input_cover_keeps_china_refining_through_the_ban_and_lowers_the_spike():
    """Direction and size (no noise): with 4 months of hydroxide instead of 2, China's refinery
    still runs at capacity in Jul 2025 (21.8 kt vs 4.2 kt) and refined cobalt in China in Oct
    2025 is lower (measured x2.07 vs x2.60; 6 months: x1.62). In the 2024 steady state the cover
    changes nothing (prices within 0.5%)."""
    cfg = load_config([*COBALT, "scenario.end=2025-10", "shock=drc_cobalt_2025"])
    out = {}
    for cover in ("", "4", "6"):
        m = CritminModel(cfg, world=_cover_world(cover))
        net = m.net
        k = net.commodities.index("co_refined")
        chn = net.market_index(k, net.countries.index("CHN"))
        ref = net.node_id.index("chn_co_refinery")
        price, act = [], []
        for _ in range(m.n_steps):
            m.step()
            price.append(np.exp(m.state.log_p[chn]) / net.price0[k])
            act.append(m.state.activity[ref])
        out[cover] = np.array(price), np.array(act)
    p2, a2 = out[""]
    p4, a4 = out["4"]
    p6, _ = out["6"]
    np.testing.assert_allclose(p4[:12], p2[:12], rtol=0.005)  # 2024: no shock, the same prices
    assert a4[18] > 2 * a2[18]  # Jul 2025
    assert p4[21] < 0.9 * p2[21]  # Oct 2025
    assert p6[21] < 0.9 * p4[21]


@pytest.mark.parametrize(
    ("process", "commodity", "value", "expected"),
    [
        ("refine_co", "co_refined", "4", "blank on an output row"),
        ("refine_co", "co_hydroxide", "-1", "0-24 months"),
        ("refine_co", "co_hydroxide", "30", "0-24 months"),
        ("refine_co", "co_hydroxide", "many", "input_cover_months"),
    ],
)
def test_bad_input_cover_fails_cleanly_naming_file_and_row(tmp_path, process, commodity, value, expected):
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        row = (table.process == process) & (table.commodity == commodity)
        table.loc[row, "input_cover_months"] = value
        return table

    folder = edited_world(tmp_path, "processes.csv", edit, world="cobalt")
    with pytest.raises(DataError, match=expected) as err:
        load_world(folder)
    assert "processes.csv" in str(err.value) and "row " in str(err.value)


def test_a_world_without_the_column_uses_the_scenario_cover(tmp_path):
    folder = edited_world(
        tmp_path, "processes.csv", lambda t: t.drop(columns="input_cover_months"), world="cobalt"
    )
    world = load_world(folder)
    assert world.processes["input_cover_months"].isna().all()
