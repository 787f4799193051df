"""Issue 15, baselines: what the 2024 mining and magnet facts measure, and the REE projects added.

- China's share of lithium mining is scored on ``li_concentrate``: that must be every mine route
  (spodumene, lepidolite, clay and brine) in lithium content, or the statistic measures something
  else than the IEA/USGS fact (which counts mine output in Li content, brine included). China's 2024
  mine output is the CNIA's route sum, not USGS's estimate (source audit in docs/data_sources.md),
  and the base year still balances: the extra ore is converted in China and consumed.
- The world magnet output fact is scored on ``ndfeb_magnet`` production: finished magnets, after
  the block-to-magnet machining loss carried by ``make_magnet``.
- Three sourced ex-China mining projects (Energy Fuels Bahia and Toliara, Ionic Rare Earths
  Makuutu) load with the capacities derived in their notes.
"""

from __future__ import annotations

import pandas as pd
import pytest

from critmin.analysis import scorecard as sc
from critmin.sim.world import data_root, load_world

LI_T_LCE_PER_T_LI = 5.323  # data/lithium/processes.csv mine_li definition


@pytest.fixture(scope="module")
def lithium():
    return load_world(data_root() / "lithium")


@pytest.fixture(scope="module")
def ree():
    return load_world(data_root() / "ree")


def _fact(name: str) -> sc.Fact:
    (ep,) = sc.load_episodes(names=["baseline_2024"])
    (fact,) = [f for f in ep.facts if f.fact == name]
    return fact


def test_every_lithium_mine_route_outputs_the_concentrate_the_fact_is_measured_on(lithium):
    fact = _fact("lithium_mining_china")
    assert fact.commodity == "li_concentrate" and fact.statistic == "share"
    pr = lithium.processes
    mine_outputs = pr[(pr.origin_stage == "mine") & (pr.role == "output") & (pr.agent_type == "Miner")]
    # one mine process, and its only output is the concentrate/brine feed in t LCE
    assert set(mine_outputs.commodity) == {"li_concentrate"}
    fac = lithium.facilities
    mines = fac[fac.process.isin(mine_outputs.process)]
    # brine (Chile, Argentina) and hard rock (Australia, China, Zimbabwe) are all mine_li nodes
    assert {"CHL", "ARG", "AUS", "CHN", "ZWE"} <= set(mines.country)
    # hand-computed (issue 15 source audit, docs/data_sources.md): China's 2024 mine output is the
    # CNIA's route sum (spodumene 50 + lepidolite 150 + brine 140 kt LCE = 340 kt LCE, 63.9 kt Li),
    # every other country USGS MCS 2025 (199 of its 240 kt Li); Silver Peak 5 kt LCE [U] on top
    out = mines.groupby("country")["output_base_tpa"].sum()
    assert out["CHN"] == pytest.approx(50_000 + 150_000 + 140_000)
    china_kt_li = out["CHN"] / LI_T_LCE_PER_T_LI / 1000
    others_kt_li = out.drop(["CHN", "USA"]).sum() / LI_T_LCE_PER_T_LI / 1000
    assert china_kt_li == pytest.approx(63.9, abs=0.1)
    assert others_kt_li == pytest.approx(240 - 41, abs=0.5)
    share = out["CHN"] / out.sum()
    assert share == pytest.approx(340_000 / 1_404_277, abs=0.001)  # 24.2%


def test_the_extra_chinese_ore_is_converted_in_china_and_consumed(lithium):
    """China's converters stay the residual (world chemical = mine output / 1.08 minus ex-China) and
    consumption stays chemical output minus the 100 kt stock build, so the base year balances."""
    pr, fac = lithium.processes, lithium.facilities
    feed = pr[(pr.process == "convert_li") & (pr.role == "input")].coefficient.item()
    mined = fac.loc[fac.process == "mine_li", "output_base_tpa"].sum()
    conv = fac[fac.process == "convert_li"].groupby("country")["output_base_tpa"].sum()
    assert conv.sum() == pytest.approx(mined / feed, rel=1e-6)
    # hand-computed: 1,404,277 / 1.08 = 1,300,256 t LCE; ex-China 368,400 -> China 931,856 (71.7%)
    assert conv["CHN"] == pytest.approx(931_856, abs=1)
    assert conv["CHN"] / conv.sum() == pytest.approx(0.717, abs=0.001)
    dem = lithium.demand
    rows = dem[dem.commodity == "li_chemical"]
    assert rows["demand_base_t"].sum() == pytest.approx(conv.sum(), rel=1e-6)
    stock = rows.loc[rows.end_use == "li_stockbuild", "demand_base_t"].sum()
    assert stock == pytest.approx(100_000)


def test_the_share_statistic_sums_every_node_of_the_region_on_a_hand_computed_case():
    fact = _fact("lithium_mining_china")
    months = fact.window.months()
    rows = []
    # China: a lepidolite node and a brine node; Australia: spodumene; Chile: brine
    for i, m in enumerate(months):
        for region, value in (("CHN", 10.0 + i), ("CHN", 5.0), ("AUS", 40.0), ("CHL", 25.0 - i)):
            rows.append(("production", "li_concentrate", region, m, value))
        rows.append(("production", "li_chemical", "CHN", m, 1000.0))  # another stage: ignored
    ts = pd.DataFrame(rows, columns=["variable", "commodity", "region", "month", "value"])
    ts["month"] = pd.to_datetime(ts["month"])
    # the model's timeseries also holds WORLD rows: the statistic's denominator is that row
    world = ts[ts.commodity == "li_concentrate"].groupby("month", as_index=False)["value"].sum()
    world = world.assign(variable="production", commodity="li_concentrate", region="WORLD")
    ts = pd.concat([ts, world[ts.columns]], ignore_index=True)
    n = len(months)
    china = sum(10.0 + i for i in range(n)) + 5.0 * n
    total = china + 40.0 * n + sum(25.0 - i for i in range(n))
    assert sc.measure(fact, sc.Series(ts), None) == pytest.approx(china / total)


def test_the_magnet_output_fact_is_finished_magnets_after_the_machining_loss(ree):
    fact = _fact("magnets_world_output")
    assert fact.commodity == "ndfeb_magnet" and fact.variable == "production"
    pr = ree.processes
    mm = pr[pr.process == "make_magnet"].set_index(["commodity", "role"])["coefficient"]
    alloy_per_magnet = mm[("ndfeb_alloy", "input")]
    swarf = mm[("ndfeb_scrap", "output")]
    # 1.35 t alloy per t finished magnet, 0.30 t recoverable swarf: the 60-80% block-to-part
    # yield of slicing and grinding (himagnet.com) lies around it
    assert 1.25 <= alloy_per_magnet <= 1.67
    assert 0.0 < swarf < alloy_per_magnet - 1.0
    fac = ree.facilities
    finished = fac.loc[fac.process == "make_magnet", "output_base_tpa"].sum()
    block_equivalent = finished * alloy_per_magnet
    # hand-computed (issue 15, alpha 0.25 and 5% of NdPr outside magnets): ~231 kt finished, ~312 kt
    # at the alloy (block) stage, above the fact's 220-240 kt, so the band is not a block figure
    # (China's blank output alone is ~260 kt, SMM); whether the run lands in it is the scorecard's job
    assert finished == pytest.approx(231_350, rel=0.01)
    assert block_equivalent > fact.high


@pytest.mark.parametrize(
    ("facility", "country", "status", "capacity"),
    [
        # NdPr-eq REO (t NdPr / 0.19): Bahia 650 t NdPr (300-1,000); Toliara = 5,000 t NdPr of the
        # three Energy Fuels projects - Donald 990 - Bahia 650; Makuutu 1,300 t TREO x 0.22
        ("bra_ef_bahia_mine", "BRA", "announced", 650 / 0.19),
        ("row_ef_toliara_mine", "ROW", "announced", (5000 - 990 - 650) / 0.19),
        ("row_ionic_makuutu_mine", "ROW", "announced", 1300 * 0.22 / 0.19),
    ],
)
def test_the_ree_mining_projects_added_for_the_iea_outlook_load(ree, facility, country, status, capacity):
    pj = ree.projects.set_index("facility")
    row = pj.loc[facility]
    assert row.process == "mine_ree"
    assert row.country == country and row.status_base == status
    assert float(row.capacity_tpa) == pytest.approx(capacity, abs=1)
    assert pd.Timestamp(row.expected_start) >= pd.Timestamp("2025-01")


def test_the_spherical_graphite_price_is_not_read_off_the_pooled_anode_market():
    (ep,) = sc.load_episodes(names=["graphite_controls_2023"])
    facts = {f.fact: f for f in ep.facts}
    # the spherical export/import facts and (since issue 15) the spherical price fact share one
    # reason: gr_anode pools both routes, and the synthetic route, not licensed in 2023, is ~90%
    for name in ("anode_exports_dec2023", "kor_anode_imports_dec2023", "anode_price_china_mar2024"):
        assert not facts[name].expressible and "synthetic" in facts[name].reason
    graphite = load_world(data_root() / "graphite")
    pr = graphite.processes
    routes = set(pr[(pr.commodity == "gr_anode") & (pr.role == "output")].process)
    assert routes == {"make_anode_natural", "make_anode_synthetic"}
    fac = graphite.facilities[graphite.facilities.country == "CHN"]
    out = fac.groupby("process")["output_base_tpa"].sum()
    synthetic_share = out["make_anode_synthetic"] / (out["make_anode_synthetic"] + out["make_anode_natural"])
    assert synthetic_share == pytest.approx(0.90, abs=0.02)
    # the flake price fact stays expressible: flake is a model commodity of its own
    assert facts["flake_price_china_mar2024"].expressible
    assert facts["flake_price_china_mar2024"].commodity == "gr_flake"


def test_ex_china_conversion_is_the_sourced_primary_chemical_output(lithium):
    """Issue 15, source audit of 2024 chemical output outside China (docs/data_sources.md, Lithium):
    each ex-China converter row is its country's sourced primary chemical output, and China's
    converters are what is left of world chemical output."""
    fac = lithium.facilities
    conv = fac[fac.process == "convert_li"].groupby("country")["output_base_tpa"].sum()
    mined = fac[fac.process == "mine_li"].groupby("country")["output_base_tpa"].sum()
    # hand-entered from the sources: Corfo (Chile's two lessees, 273 kt LCE sold), CAEM (Argentina,
    # 74.6 kt LCE), Kwinana ~4.5 kt + Kemerton [U] (Australia, unchanged), Silver Peak (USA),
    # CBL 1.7 kt + YLB 2.06 kt (ROW)
    expected = {"CHL": 273_000, "ARG": 74_600, "AUS": 12_000, "USA": 5_000, "ROW": 3_800}
    for country, tonnes in expected.items():
        assert conv[country] == pytest.approx(tonnes)
    # USGS counts brine output as the Li content of the compounds made, so Chile's chemical output is
    # at least USGS's Chile figure, not that figure less a second conversion loss (the old 241,506)
    assert conv["CHL"] >= mined["CHL"]
    # each figure sits inside its [U] range in the audit
    ranges = {
        "CHL": (248_000, 285_000),
        "ARG": (67_000, 95_814),
        "AUS": (8_500, 16_500),
        "USA": (4_000, 10_000),
        "ROW": (3_500, 6_000),
    }
    for country, (low, high) in ranges.items():
        assert low <= conv[country] <= high
    # China's share across the ranges: 68.2% (all ex-China high) to 74.5% (all low); the IEA's ~70%
    # lies inside, and the point is 71.7%
    world = conv.sum()
    assert (world - sum(h for _, h in ranges.values())) / world == pytest.approx(0.682, abs=0.001)
    assert (world - sum(lo for lo, _ in ranges.values())) / world == pytest.approx(0.745, abs=0.001)
    # capacities keep the rows' utilisation (0.8 ex-China)
    ex = fac[(fac.process == "convert_li") & (fac.country != "CHN") & (fac.output_base_tpa > 0)]
    assert len(ex) == 5  # the base rows; the pipeline's plants load with no 2024 output
    assert (ex["output_base_tpa"] / ex["capacity_tpa"]).round(6).eq(0.8).all()
