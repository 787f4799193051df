"""By-product supply (data/cobalt/by_products.csv, agents/producer.py): a plant that recovers a
by-product of a host metal the model does not trade earns the host's share h of its base-year
revenue whatever the by-product fetches, so the by-product's price moves its decisions by a
(1 - h) share, and under an export ban the host business keeps it running into stock while its
store has room (the Congolese cobalt circuits through the 2025 ban)."""

import numpy as np
import pandas as pd
import pytest
from world_copies import edited_world, set_cell, world_copy

import critmin
from critmin.agents.producer import storage_room, unit_margin
from critmin.sim.run import load_config, new_model
from critmin.sim.world import DataError, data_root, load_world

COBALT = data_root() / "cobalt"


@pytest.fixture(scope="module")
def model():
    return new_model(load_config(["scenario=cobalt_2024", "scenario.end=2024-03"]))


def test_host_shares_resolve_country_then_all(model):
    net = model.net
    share = dict(zip(net.node_id, net.host_share, strict=True))
    assert share["cod_co_hydroxide"] == 0.78 and share["cod_co_mine"] == 0.78
    assert share["idn_co_mine"] == 0.92
    assert share["rus_co_mine"] == 0.9  # the "all" row
    assert share["fin_co_refinery"] == 0.0  # refining metal is not a by-product operation


def test_the_host_brings_its_share_of_revenue_and_damps_the_price_signal(model):
    net = model.net
    node = net.node_id.index("cod_co_hydroxide")
    price0 = net.price0[net.slot_commodity]
    paid = model.calibration.paid0
    full = unit_margin(net, price0, paid)[node]
    half = unit_margin(net, 0.5 * price0, paid)[node]
    outs = (net.slot_node == node) & (net.slot_role == 1)
    own_revenue = float((net.slot_coef[outs] * price0[outs]).sum())
    assert net.host_value[node] / (net.host_value[node] + own_revenue) == pytest.approx(0.78)
    # halving the by-product price removes half the by-product revenue, nothing of the host's
    assert full - half == pytest.approx(0.5 * own_revenue)
    assert (full - half) / (own_revenue + net.host_value[node]) == pytest.approx(0.5 * (1 - 0.78))


def test_a_ban_that_stops_sales_does_not_shrink_the_store(model):
    s = model.state
    before = storage_room(model).copy()
    s.orders_lr[:] = 0.0  # months of a ban: normal sales smoothed toward zero
    assert np.allclose(storage_room(model), before)


def _cod_output(result: critmin.Result, commodity: str, months: list[str]) -> float:
    ts = result.timeseries
    sel = ts[(ts["variable"] == "production") & (ts["region"] == "COD") & (ts["commodity"] == commodity)]
    return float(sel[sel["month"].isin(pd.to_datetime(months))]["value"].sum())


def test_under_the_drc_ban_the_copper_business_keeps_the_cobalt_circuits_running(tmp_path):
    no_host = world_copy(tmp_path, "cobalt")
    (no_host / "by_products.csv").unlink()
    common = ["scenario=cobalt_2024", "shock=drc_cobalt_2025", "scenario.end=2025-08"]
    with_host = critmin.simulate(load_config(common))
    without = critmin.simulate(load_config([*common, f"scenario.data={no_host}"]))
    pre, ban = ["2025-01-01"], ["2025-04-01", "2025-05-01", "2025-06-01"]
    # the hydroxide circuits: with the host they keep a large part of their output into stock
    kept_with = _cod_output(with_host, "co_hydroxide", ban) / (
        3 * _cod_output(with_host, "co_hydroxide", pre)
    )
    kept_without = _cod_output(without, "co_hydroxide", ban) / (3 * _cod_output(without, "co_hydroxide", pre))
    assert kept_with > kept_without + 0.1
    assert kept_with > 0.3
    # mining goes on at its pre-ban pace (into stock)
    mined = _cod_output(with_host, "co_ore", ban) / (3 * _cod_output(with_host, "co_ore", pre))
    assert mined > 0.95


def test_a_share_of_one_is_refused_naming_the_file(tmp_path):
    bad = edited_world(tmp_path, "by_products.csv", set_cell("host_revenue_share", "1.0"), world="cobalt")
    with pytest.raises(DataError, match=r"by_products\.csv: row 2 .*host_revenue_share.*\[0, 0\.99\]"):
        load_world(bad)
