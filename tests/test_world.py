"""World data: schema checks with clear errors, and the 2024 calibration it encodes."""

import shutil

import pandas as pd
import pytest

from critmin.sim.model import CritminModel
from critmin.sim.network import compile_network
from critmin.sim.run import load_config
from critmin.sim.world import DataError, data_root, load_world

REE = data_root() / "ree"


def test_packaged_world_loads_and_every_row_has_a_source():
    world = load_world(REE)
    for table in (world.countries, world.commodities, world.processes, world.facilities, world.demand):
        src = [c for c in table.columns if "source" in c]
        assert src and (table[src[0]].str.len() > 0).all()
    assert set(world.countries["bloc"]) <= {"g7", "partner", "other"}


def test_graph_has_facilities_as_nodes_and_trade_links_as_edges():
    net = compile_network(load_world(REE), 2024)
    g = net.graph
    assert g.number_of_nodes() == len(net.node_id)
    assert all("links" in d for _, _, d in g.edges(data=True))
    assert net.edge_seller.size == sum(len(d["links"]) for _, _, d in g.edges(data=True))


@pytest.mark.parametrize(
    "file, column, value, expected",
    [
        ("facilities.csv", "capacity_tpa", "-5", "column 'capacity_tpa': expected a number in [0, 1e+08]"),
        ("facilities.csv", "country", "XXX", "unknown country 'XXX'"),
        ("countries.csv", "bloc", "friends", "expected one of ['g7', 'partner', 'other']"),
        ("end_uses.csv", "collection_rate_2024", "1.5", "column 'collection_rate_2024'"),
    ],
)
def test_bad_data_fails_before_the_run_naming_file_key_and_expectation(
    tmp_path, file, column, value, expected
):
    bad = tmp_path / "ree"
    shutil.copytree(REE, bad)
    df = pd.read_csv(bad / file, dtype=str, keep_default_na=False)
    df.loc[0, column] = value
    df.to_csv(bad / file, index=False)
    with pytest.raises(DataError) as err:
        load_world(bad)
    assert file in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("scenario.market.kappa=-1", "scenario.market.kappa"),
        ("scenario.end=2023-01", "scenario.end"),
        ("+scenario.blocs.CHN=friend", "scenario.blocs.CHN"),
    ],
)
def test_bad_config_fails_before_the_run(override, expected):
    with pytest.raises(DataError, match=expected.replace(".", r"\.")):
        CritminModel(load_config(["scenario=ree_2024_short", override]))


def test_bad_event_names_its_position_and_key():
    cfg = load_config(
        [
            "scenario=ree_2024_short",
            "+shock.events=[{type: export_cap, country: ZZZ, commodity: ndfeb_magnet, start: 2024-03}]",
        ]
    )
    with pytest.raises(DataError, match=r"shock\.events\[0\]\.country: unknown country 'ZZZ'"):
        CritminModel(cfg)


def test_chain_graph_runs_mine_to_end_use_with_recycling_back_in():
    import networkx as nx

    from critmin.sim.network import chain_graph

    g = chain_graph(load_world(REE))
    assert nx.has_path(g, "ree_concentrate", "end use: ev_motors")
    for a, b in [
        ("ree_concentrate", "ndpr_oxide"),
        ("ndpr_oxide", "re_metal"),  # metal reduction
        ("re_metal", "ndfeb_alloy"),  # strip casting
        ("ndfeb_alloy", "ndfeb_magnet"),
    ]:
        assert g.has_edge(a, b)
    assert g.has_edge("ndfeb_scrap", "ndfeb_alloy")  # recycling re-enters at the alloy stage


def test_every_country_has_a_government_with_its_bloc_and_instruments_book_to_its_ledger():
    # a US tariff on Chinese magnets: the US treasury, and only it, books the revenue, which is
    # the tariff's share of what the trade table says those imports cost delivered
    cfg = load_config(["scenario=ree_2024_short", "scenario.end=2024-03", "+scenario.blocs.MEX=partner"])
    cfg.policy.instruments = [
        {
            "type": "import_tariff",
            "country": "USA",
            "partners": ["CHN"],
            "commodity": "ndfeb_magnet",
            "ad_valorem": 0.25,
        }
    ]
    model = CritminModel(cfg)
    model.run()
    blocs = pd.read_csv(REE / "countries.csv").set_index("country")["bloc"].to_dict()
    assert blocs["MEX"] != "partner"
    blocs["MEX"] = "partner"  # the scenario's override reaches the government
    assert {c: g.bloc for c, g in model.governments.items()} == blocs
    fl = model.recorder.flows()
    imports = fl[(fl.commodity == "ndfeb_magnet") & (fl.origin == "CHN") & (fl.destination == "USA")]
    assert len(imports) == 3
    usa = model.governments["USA"]
    assert [step for step, _, _ in usa.ledger] == [0, 1, 2]
    assert usa.fiscal_cost == pytest.approx(-0.25 / 1.25 * imports.value_usd.sum(), rel=1e-9)
    assert all(not g.ledger for c, g in model.governments.items() if c != "USA")
