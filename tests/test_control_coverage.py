"""An export control that lists sellers covers only their sales: China's 2023 graphite licences
covered natural-graphite anode material, not synthetic (configs/shock/graphite_controls_2023.yaml)."""

from __future__ import annotations

import pytest

from critmin.sim.model import CritminModel
from critmin.sim.run import load_config
from critmin.sim.world import DataError

BASE = ["scenario=graphite_2024", "scenario.demand.noise_sd=0", "scenario.end=2024-06"]
LICENCE = {
    "type": "export_licensing",
    "country": "CHN",
    "commodity": "gr_anode",
    "sellers": ["chn_anode_natural"],
    "delay_months": 1,
    "approval_rate": 0.0,
    "start": "2024-03",
}


def exports_by_seller(instruments):
    cfg = load_config(BASE)
    cfg.shock.instruments = [dict(i) for i in instruments]
    model = CritminModel(cfg)
    model.run()
    net = model.net
    flow = model.cleared.result.flow  # the last month's trade
    out = {}
    for name in ("chn_anode_natural", "chn_anode_synthetic"):
        node = net.node_id.index(name)
        e = (net.slot_node[net.edge_seller] == node) & (net.edge_from != net.edge_to)
        out[name] = float(flow[e].sum())
    return out


def test_a_control_listing_sellers_stops_their_exports_and_leaves_the_others():
    free = exports_by_seller([])
    controlled = exports_by_seller([LICENCE])
    assert free["chn_anode_natural"] > 0 and free["chn_anode_synthetic"] > 0
    assert controlled["chn_anode_natural"] == 0.0  # nothing approved
    # the synthetic route keeps exporting (buyers abroad turn to it: at least as much as before)
    assert controlled["chn_anode_synthetic"] >= 0.99 * free["chn_anode_synthetic"]


def test_an_unknown_seller_is_a_data_error_naming_it():
    with pytest.raises(DataError, match="no_such_plant"):
        exports_by_seller([{**LICENCE, "sellers": ["no_such_plant"]}])
