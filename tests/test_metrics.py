"""Dependency shares, target check, resilience metrics, trace and report (issue 5).

Hand-made tables with known answers first, then the packaged world.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from critmin.analysis import metrics
from critmin.analysis.metrics import Definition, Tables
from critmin.experiments.api import simulate
from critmin.sim.run import ledger_frame, load_config
from critmin.sim.world import DataError

STAGES = ["mine", "refining", "metal", "magnet"]
SETTINGS = {
    "region": "G7+",
    "basis": "mass",
    "scope": "consumption",
    "regions": {"G7+": ["g7", "partner"]},
    "checks": [{"commodity": "ndfeb_magnet", "stages": ["refining", "magnet"]}],
    "targets": [
        {"name": "target", "threshold": 0.6, "year": 2030},
        {"name": "ambition", "threshold": 0.5, "year": 2030},
    ],
    "recovery_band": 0.05,
}


def tiny(chn_share_2030: float = 0.7, settings: dict | None = None) -> Tables:
    """Two G7 countries (AAA, BBB), two outsiders (CHN, MYS). AAA uses 100 t of magnets a year,
    all made in AAA from oxide refined in CHN (share s) and MYS (1 - s); BBB uses 50 t made in
    BBB from oxide refined in BBB. Oxide costs 100 USD/t in CHN and 200 in MYS."""
    rows, flows, ts = [], [], []
    for year, s in ((2029, 0.9), (2030, chn_share_2030)):
        month = pd.Timestamp(f"{year}-06-01")
        rows += [
            (month, "ndfeb_magnet", "AAA", "refining", "CHN", 100 * s),
            (month, "ndfeb_magnet", "AAA", "refining", "MYS", 100 * (1 - s)),
            (month, "ndfeb_magnet", "AAA", "magnet", "AAA", 100.0),
            (month, "ndfeb_magnet", "BBB", "refining", "BBB", 50.0),
            (month, "ndfeb_magnet", "BBB", "magnet", "BBB", 50.0),
        ]
        # oxide imported by AAA: tonnes at each origin's price, one-hot refining origin
        for origin, t, price in (("CHN", 100 * s * 0.3, 100.0), ("MYS", 100 * (1 - s) * 0.3, 200.0)):
            flows.append(
                {
                    "month": month,
                    "commodity": "ndpr_oxide",
                    "origin": origin,
                    "destination": "AAA",
                    "tonnes": t,
                    "value_usd": t * price,
                    "refining_origin_CHN": float(origin == "CHN"),
                    "refining_origin_MYS": float(origin == "MYS"),
                }
            )
        for region, price in (("CHN", 100.0), ("MYS", 200.0), ("WORLD", 120.0)):
            ts.append((month, "ndpr_oxide", region, "price", price))
        for region, prod in (("CHN", 60.0), ("MYS", 20.0), ("AAA", 20.0)):
            ts.append((month, "ndfeb_magnet", region, "production", prod))
    co = pd.DataFrame(rows, columns=["month", "commodity", "region", "stage", "origin", "tonnes"])
    return Tables(
        timeseries=pd.DataFrame(ts, columns=["month", "commodity", "region", "variable", "value"]),
        flows=pd.DataFrame(flows),
        consumption_origin=co,
        countries={"AAA": "g7", "BBB": "g7", "CHN": "other", "MYS": "other"},
        commodity_stage={
            "ree_concentrate": "mine",
            "ndpr_oxide": "refining",
            "ndfeb_alloy": "metal",
            "ndfeb_magnet": "magnet",
        },
        stages=STAGES,
        settings=dict(SETTINGS if settings is None else settings),
    )


def share(tables: Tables, d: Definition, year: int = 2030) -> tuple[str, float]:
    path = metrics.dependency(tables, d).set_index("period")
    return str(path.loc[year, "supplier"]), float(path.loc[year, "share"])


# ---------------------------------------------------------------------- hand-computed cases
def test_seventy_percent_refined_in_one_outside_country_is_seventy_percent_for_that_country():
    t = tiny(0.7)
    # AAA alone: 70 of its 100 t were refined in CHN, by mass, consumption scope
    assert share(t, Definition("AAA", "ndfeb_magnet", "refining")) == ("CHN", pytest.approx(0.7))
    # imports scope on the oxide it imports, by mass: also exactly 70%
    assert share(t, Definition("AAA", "ndpr_oxide", "refining", "mass", "imports")) == (
        "CHN",
        pytest.approx(0.7),
    )
    # the bloc adds BBB's 50 t refined at home: 70 / 150
    assert share(t, Definition("G7+", "ndfeb_magnet", "refining")) == ("CHN", pytest.approx(70 / 150))
    # magnets are made inside the bloc: no outside supplier at the magnet stage
    assert share(t, Definition("G7+", "ndfeb_magnet", "magnet")) == ("none", 0.0)


def test_value_basis_weights_by_price_and_differs_from_mass_where_prices_differ():
    t = tiny(0.7)
    by_value = 70 * 100 / (70 * 100 + 30 * 200)  # CHN oxide 100 USD/t, MYS 200 USD/t
    imp = Definition("AAA", "ndpr_oxide", "refining", "value", "imports")
    con = Definition("AAA", "ndfeb_magnet", "refining", "value", "consumption")
    assert share(t, imp) == ("CHN", pytest.approx(by_value))
    assert share(t, con) == ("CHN", pytest.approx(by_value))
    assert by_value < 0.7 - 0.1  # value basis is 16 points lower than mass here


def test_supplier_is_the_largest_origin_outside_the_named_bloc_found_each_year():
    t = tiny(0.4)  # 2030: CHN 40 t, MYS 60 t
    path = metrics.dependency(t, Definition("AAA", "ndfeb_magnet", "refining")).set_index("period")
    assert path.loc[2029, "supplier"] == "CHN" and path.loc[2029, "share"] == pytest.approx(0.9)
    assert path.loc[2030, "supplier"] == "MYS" and path.loc[2030, "share"] == pytest.approx(0.6)
    # BBB refines its own oxide: outside BBB, BBB is not a supplier; outside G7+, neither is it
    d = Definition("BBB", "ndfeb_magnet", "refining", outside="G7+")
    assert share(t, d) == ("none", 0.0)


def test_target_check_reports_value_first_year_below_and_margin():
    t = tiny(0.7)
    t.settings["region"] = "AAA"
    t.settings["targets"] = [*SETTINGS["targets"], {"name": "later", "threshold": 0.6, "year": 2040}]
    tab = metrics.target_table(t).set_index(["target", "stage"])
    row = tab.loc[("target", "refining")]
    assert row["value"] == pytest.approx(0.7) and not row["met"]  # 70% is not < 60%
    assert row["margin_points"] == pytest.approx(-10.0) and pd.isna(row["first_year_below"])
    t2 = tiny(0.55)
    t2.settings["region"] = "AAA"
    tab2 = metrics.target_table(t2).set_index(["target", "stage"])
    assert tab2.loc[("target", "refining"), "met"]
    assert tab2.loc[("target", "refining"), "first_year_below"] == 2030
    assert tab2.loc[("target", "refining"), "margin_points"] == pytest.approx(5.0)
    assert not tab2.loc[("ambition", "refining"), "met"]
    assert tab2.loc[("ambition", "refining"), "margin_points"] == pytest.approx(-5.0)
    later = tab.loc[("later", "refining")]
    assert np.isnan(later["value"]) and "run ends 2030" in later["note"]


def test_hhi_of_known_shares():
    h = metrics.hhi(tiny()).set_index(["year", "commodity"])
    # production shares 0.6, 0.2, 0.2 -> 3600 + 400 + 400
    assert h.loc[(2030, "ndfeb_magnet"), "hhi"] == pytest.approx(4400.0)


def test_unmet_demand_by_end_use_and_region():
    t = tiny()
    t.final_demand = pd.DataFrame(
        {
            "month": pd.to_datetime(["2030-01-01", "2030-02-01", "2030-01-01"]),
            "commodity": "ndfeb_magnet",
            "region": ["AAA", "AAA", "BBB"],
            "end_use": ["wind", "wind", "ev_motors"],
            "demand": [10.0, 10.0, 5.0],
            "consumption": [10.0, 6.0, 5.0],
            "unmet_demand": [0.0, 4.0, 0.0],
        }
    )
    u = metrics.unmet_demand(t).set_index(["region", "end_use"])
    assert u.loc[("AAA", "wind"), "unmet_t"] == pytest.approx(4.0)
    assert u.loc[("AAA", "wind"), "unmet_pct"] == pytest.approx(20.0)
    assert u.loc[("BBB", "ev_motors"), "unmet_pct"] == 0.0


def test_fiscal_cost_comes_from_government_ledgers_per_instrument_and_year():
    class Gov:
        def __init__(self, ledger):
            self.ledger = ledger

    govs = {
        "AAA": Gov([(0, "stockpile", 100.0), (13, "stockpile", 50.0), (13, "subsidy", 7.0)]),
        "CHN": Gov([]),
    }
    t = tiny()
    t.ledger = ledger_frame(govs, (2029, 1))
    f = metrics.fiscal_cost(t).set_index(["year", "country", "item"])["usd"]
    assert f[(2029, "AAA", "stockpile")] == 100.0 and f[(2030, "AAA", "stockpile")] == 50.0
    review = metrics.yearly_review(t).set_index("year")
    assert review.loc[2030, "instrument spending, USD"] == pytest.approx(57.0)
    assert review.loc[2029, "ndfeb_magnet refining"] == pytest.approx(90 / 150)
    t.ledger = ledger_frame({"AAA": Gov([])}, (2029, 1))
    assert metrics.yearly_review(t)["instrument spending, USD"].sum() == 0.0


def test_bad_metric_settings_name_the_key():
    t = tiny()
    for key, value, expected in [
        ("region", "Atlantis", "experiment.metrics.region"),
        ("basis", "weight", "experiment.metrics.basis"),
        ("scope", "exports", "experiment.metrics.scope"),
    ]:
        bad = {**SETTINGS, key: value}
        with pytest.raises(DataError, match=expected.replace(".", r"\.")):
            metrics.check_settings(bad, t)
    bad = {**SETTINGS, "checks": [{"commodity": "ndfeb_magnet", "stages": ["smelting"]}]}
    with pytest.raises(DataError, match=r"checks\[0\]\.stages\[0\]: expected an origin stage"):
        metrics.check_settings(bad, t)
    metrics.check_settings(SETTINGS, t)  # the good one passes


@pytest.mark.parametrize(
    "override, key",
    [
        ("experiment.metrics.basis=weight", "experiment.metrics.basis"),
        ("experiment.metrics.region=Atlantis", "experiment.metrics.region"),
        ("experiment.metrics.checks=[{commodity: ndfeb_magnet, stages: [smelting]}]", "checks[0].stages[0]"),
    ],
)
def test_bad_metric_config_fails_before_the_run(override, key):
    cfg = load_config(["scenario=ree_2024_short", "scenario.end=2024-02", override])
    with pytest.raises(DataError, match=key.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        simulate(cfg)


# ---------------------------------------------------------------------- the packaged world
def test_consumption_origin_accounts_for_every_tonne_used(short_run):
    co = short_run.consumption_origin
    ts = short_run.timeseries
    use = ts[(ts.variable == "use") & (ts.region != "WORLD")]
    use = use.set_index(["month", "commodity", "region"])["value"].astype(float)
    for stage in ("refining", "magnet"):
        mag = co[(co.commodity == "ndfeb_magnet") & (co.stage == stage)]
        traced = mag.groupby(["month", "commodity", "region"], observed=True)["tonnes"].sum()
        assert np.allclose(traced.to_numpy(), use.reindex(traced.index).to_numpy(), rtol=1e-5)
    # magnets are used only by manufacturers: traced tonnes = final consumption
    cons = ts[(ts.variable == "consumption") & (ts.commodity == "ndfeb_magnet") & (ts.region == "WORLD")]
    mag = co[(co.commodity == "ndfeb_magnet") & (co.stage == "magnet")].groupby("month")["tonnes"].sum()
    assert np.allclose(mag.to_numpy(), cons["value"].to_numpy(), rtol=1e-5)


def test_2024_baseline_is_near_the_sourced_figures(short_run):
    b = short_run.metrics["benchmarks"].set_index("figure")["gap_points"]
    # every sourced 2024 figure within 5 points. EU magnets (consumption), US and Japanese NdPr
    # imports are calibration targets (data/ree/trade_shares.csv), so this checks that the trade
    # calibration holds through the run; world refining (91.8% vs 92%) and EU magnets by import
    # origin (86.1% vs 85%) are not targeted.
    assert (b.abs() <= 5.0).all(), b
    world_refining = b[b.index.str.startswith("China's share of world REE refining")].iloc[0]
    assert abs(world_refining) <= 1.0
    summary = short_run.summary["dependency"]
    assert "largest single supplier outside G7+" in summary["definition"]
    assert {r["target"] for r in summary["targets"]} >= {"Alliance target (<60% by 2030)"}


def test_shock_raises_bloc_magnet_price_and_recovers():
    r = simulate(["scenario=ree_2024_short", "shock=magnet_ban_demo", "scenario.end=2026-12"])
    sh = r.metrics["shock"].set_index(["commodity", "region"])
    g7 = sh.loc[("ndfeb_magnet", "G7+")]
    assert g7["peak_ratio"] > 1.3  # the Apr-Sep 2025 ban doubles G7+ buyers' magnet price
    assert g7["peak_month"] == "2025-09"
    # recovery as the metric defines it: from the month it names, three months within ±5% of
    # the pre-shock price (the ban starts Apr 2025; NaN = not recovered by the end of the run)
    price = metrics.bloc_buyer_price(metrics.Tables.from_result(r), "ndfeb_magnet", "G7+")
    in_band = (price / g7["pre_shock"] - 1).abs() <= 0.05
    after_peak = in_band[in_band.index > pd.Timestamp(g7["peak_month"] + "-01")]
    runs = after_peak.rolling(3).sum().shift(-2) == 3  # this month and the next two in band
    if pd.isna(g7["months_to_recover"]):
        assert not runs.any()
    else:
        first = pd.Timestamp("2025-04-01") + pd.DateOffset(months=int(g7["months_to_recover"]))
        assert runs[first] and not runs[runs.index < first].any()
    assert r.metrics["unmet"]["unmet_t"].sum() > 0  # the ban leaves final demand unmet


def test_months_to_recover_on_a_known_price_path():
    t = tiny()
    months = pd.date_range("2030-01-01", periods=12, freq="MS")
    price = [100, 100, 100, 150, 200, 160, 104, 98, 120, 101, 100, 100]  # shock starts 2030-04
    use = [10.0] * 12
    rows = [(m, "ndfeb_magnet", "WORLD", "price", p) for m, p in zip(months, price)]
    rows += [(m, "ndfeb_magnet", "WORLD", "use", u) for m, u in zip(months, use)]
    t.timeseries = pd.DataFrame(rows, columns=["month", "commodity", "region", "variable", "value"])
    t.commodity_stage = {"ndfeb_magnet": "magnet"}
    t.shock_windows = [("2030-04", "2030-06")]
    row = metrics.shock_response(t).set_index(["commodity", "region"]).loc[("ndfeb_magnet", "WORLD")]
    assert row["peak_ratio"] == pytest.approx(2.0) and row["peak_month"] == "2030-05"
    # Jul-Aug are within ±5% but Sep (120) is not; in band from Oct on: 6 months after Apr
    assert row["months_to_recover"] == 6


def test_trace_on_a_run_dir_equals_trace_in_memory_and_the_cli_prints_it(short_run, tmp_path):
    out = short_run.write(tmp_path / "run", plots=False)
    mem = short_run.trace("DEU", "ndfeb_magnet", 2025)
    disk = metrics.trace(out, "DEU", "ndfeb_magnet", 2025)
    pd.testing.assert_frame_equal(mem, disk)
    # the rare-earth chain's stages: metal reduction and strip casting are two
    assert list(mem.columns) == ["mine", "refining", "metal", "alloy", "magnet"] and mem.index[0] == "CHN"
    assert np.allclose(mem.sum().to_numpy(), 1.0)
    html = (out / "report.html").read_text()
    assert "Definition used" in html and "Target table" in html and "data:image/png;base64" in html
    assert set(pd.read_parquet(out / "metrics.parquet")["metric"]) >= {"dependency_share", "hhi"}
    png = tmp_path / "trace.png"
    cmd = [
        sys.executable,
        "-m",
        "critmin.experiments.cli",
        "trace",
        str(out),
        "--region",
        "DEU",
        "--year",
        "2025",
        "--plot",
        str(png),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "CHN" in done.stdout and "refining" in done.stdout and png.stat().st_size > 1000
    bad = subprocess.run([*cmd[:4], str(out), "--region", "XXX"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown region 'XXX'" in bad.stderr


def test_shock_response_covers_shocks_defined_as_foreign_instruments():
    # China's 2025 licensing is a foreign government's instrument, not a scenario event: the
    # shock response must still be measured from its start (April 2025)
    r = simulate(["scenario=ree_2024_short", "shock=ree_licensing_2025", "scenario.demand.noise_sd=0"])
    sr = r.metrics["shock"]
    assert len(sr) > 0
    magnets = sr[(sr.commodity == "ndfeb_magnet") & (sr.region == "WORLD")].iloc[0]
    assert magnets.peak_month >= "2025-04"
    assert magnets.peak_ratio >= 1.0


def test_a_benchmark_of_a_year_the_run_does_not_reach_is_not_compared():
    """A 2024 sourced figure in a run of 2009: no simulated value (not 0, which read as an
    85-point gap), a warning, and the report says there is nothing to compare."""
    import critmin
    from critmin.analysis.report import benchmark_years_outside

    result = critmin.simulate(
        ["scenario=ree_2009", "scenario.end=2009-06", "experiment.metrics.report=false"]
    )
    bench = result.metrics["benchmarks"]
    assert len(bench) and bench["simulated"].isna().all() and bench["gap_points"].isna().all()
    assert any("benchmarks[0]" in w and "not compared" in w for w in result.warnings)
    assert benchmark_years_outside(bench) == "2024"


@pytest.mark.parametrize("seed", range(4))
def test_dependency_from_the_per_run_aggregate_equals_a_direct_selection(seed):
    # every definition is read as a slice of one aggregate per (commodity, stage, basis); the
    # weights must be those of selecting the definition's records directly, for any region
    rng = np.random.default_rng(seed)
    countries = ["AAA", "BBB", "CHN", "MYS", "ZZZ"]
    months = pd.to_datetime(["2029-03-01", "2029-09-01", "2030-06-01"])
    n = 60
    co = pd.DataFrame(
        {
            "month": rng.choice(months, n),
            "commodity": rng.choice(["ndfeb_magnet", "ndpr_oxide"], n),
            "region": rng.choice(countries, n),
            "stage": rng.choice(["refining", "magnet"], n),
            "origin": rng.choice(countries, n),
            "tonnes": np.where(rng.random(n) < 0.2, 0.0, rng.uniform(1, 50, n)),
        }
    )
    mix = rng.dirichlet(np.ones(len(countries)), n) * (rng.random((n, len(countries))) < 0.6)
    mix = mix.astype(np.float32).astype(float)  # the origin mix is recorded in float32
    flows = pd.DataFrame(
        {
            "month": rng.choice(months, n),
            "commodity": rng.choice(["ndfeb_magnet", "ndpr_oxide"], n),
            "origin": rng.choice(countries, n),
            "destination": rng.choice(countries, n),
            "tonnes": rng.uniform(0, 20, n),
            "value_usd": rng.uniform(0, 4000, n),
            **{f"refining_origin_{c}": mix[:, i] for i, c in enumerate(countries)},
        }
    )
    t = tiny(0.7)
    t.consumption_origin, t.flows = co, flows
    t.countries = {"AAA": "g7", "BBB": "g7", "CHN": "other", "MYS": "other", "ZZZ": "other"}
    for region in ("AAA", "G7+", "other", "CHN"):
        members = t.members(region)
        for com in ("ndfeb_magnet", "ndpr_oxide"):
            got = metrics.origin_shares(t, Definition(region, com, "refining", "mass", "consumption"))
            c = co[
                (co.commodity == com) & (co.stage == "refining") & co.region.isin(members) & (co.tonnes > 0)
            ]
            want = c.groupby([c.month.dt.year, "origin"])["tonnes"].sum()
            assert dict(zip(zip(got.period, got.origin), got.weight)) == pytest.approx(
                want.to_dict(), rel=1e-12
            )
            got = metrics.origin_shares(t, Definition(region, com, "refining", "value", "imports"))
            f = flows[
                (flows.commodity == com) & flows.destination.isin(members) & ~flows.origin.isin(members)
            ]
            w = f[[f"refining_origin_{c}" for c in countries]].to_numpy() * f.value_usd.to_numpy()[:, None]
            want = {}
            for year, row in zip(f.month.dt.year, w):
                for k, c in enumerate(countries):
                    if row[k] > 0:
                        want[(year, c)] = want.get((year, c), 0.0) + row[k]
            assert dict(zip(zip(got.period, got.origin), got.weight)) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("freq", ["year", "month"])
def test_dependencies_of_many_regions_at_once_equal_each_alone(short_run, freq):
    # the definitions table computes every region of a pair in one pass (metrics.dependency_many);
    # each path must be the one the definition gives alone, bit for bit, empty regions included
    batch, alone = Tables.from_result(short_run), Tables.from_result(short_run)
    regions = ["G7+", "USA", "JPN", "EU", "CHN", "AUS"]
    ds = [
        metrics.default_definition(
            batch, "ndfeb_magnet", stage, region=r, scope=scope, outside="G7+", control=c
        )
        for stage in ("mine", "refining")
        for scope in ("consumption", "imports")
        for c in ("location", "owner")
        for r in regions
    ]
    metrics.dependency_many(batch, ds, freq)
    for d in ds:
        got = batch.cache[("dependency_arrays", d, freq)]
        want = metrics._dependency(alone, d, freq)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    # not vacuous: the bloc's magnet mining depends on one supplier for most of it
    assert (
        metrics.by_period(batch, ds[0]) and max(s for s, _ in metrics.by_period(batch, ds[0]).values()) > 0.5
    )


def test_benchmark_shares_are_the_origin_shares_of_their_year_and_supplier(short_run):
    """benchmark_table reads each figure's share from the aggregate's arrays: the number
    origin_shares gives for that year and supplier, 0 for a supplier without weight that year,
    NaN for a year the run does not reach."""
    tables = Tables.from_result(short_run)
    bench = metrics.benchmark_table(tables)
    settings = tables.settings["benchmarks"]
    assert len(bench) == len(settings) > 0
    for b, sim in zip(settings, bench["simulated"], strict=True):
        d = Definition(b["region"], b["commodity"], b["stage"], b["basis"], b["scope"], b.get("outside"))
        sh = metrics.origin_shares(tables, d)
        row = sh[(sh["period"] == int(b["year"])) & (sh["origin"] == b["supplier"])]
        assert len(row) == 1 and sim == row["share"].iloc[0] > 0
        assert metrics._origin_share(tables, d, int(b["year"]), "ZZZ") == 0.0  # no such origin
        assert np.isnan(metrics._origin_share(tables, d, 1990, b["supplier"]))  # outside the run


def test_consumer_spending_without_the_pivot_equals_the_pivot(short_run):
    """Consumption × buyer price per (month, commodity, country), read from the categorical
    codes: the rows, order and values of the pivot of the two variables (its path for tables
    without categories)."""
    tables = Tables.from_result(short_run)
    fast = metrics._consumer_spending(tables, "G7+")
    plain = Tables.from_result(short_run)
    plain.timeseries = tables.timeseries.astype({c: str for c in ("commodity", "region", "variable")})
    pivot = metrics._consumer_spending(plain, "G7+")
    assert len(fast) > 0 and (fast > 0).any()
    np.testing.assert_array_equal(fast.to_numpy(), pivot.to_numpy())
    for level in ("month", "commodity", "region"):
        assert list(map(str, fast.index.get_level_values(level))) == list(
            map(str, pivot.index.get_level_values(level))
        )


def test_metrics_from_the_recorder_arrays_equal_those_from_the_tables(short_run):
    """The metrics of a run in memory read the recorder's arrays (``origin_cells`` for the
    consumption scope, ``trade_cells`` for imports); from the tables' rows (a run read from its
    folder) every metric table and the summary's dependency block are the same, bit for bit
    (both controls: the world has foreign-owned plants)."""
    import dataclasses

    from critmin.analysis.results import complete

    assert short_run.origin_cells is not None
    cells = short_run.origin_cells
    assert (cells["owner"] != cells["origin"]).any()  # the owner view differs from the location view
    # the cells hold every row of the table: the same tonnes in total
    total = (cells["tonnes"][:, :, None] * cells["mix"]).sum()
    assert total == pytest.approx(short_run.consumption_origin["tonnes"].sum(), rel=1e-12)
    a = complete(short_run)
    assert short_run.trade_cells is not None
    b = complete(dataclasses.replace(short_run, origin_cells=None, trade_cells=None, model=None))
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        pd.testing.assert_frame_equal(a.metrics[name], b.metrics[name], check_exact=True)
    assert a.summary["dependency"] == b.summary["dependency"]
    # and a change to the cells changes the metrics (the arrays are what is read)
    cut = dict(cells, tonnes=cells["tonnes"] * 0.5)
    c = complete(dataclasses.replace(short_run, origin_cells=cut, model=None))
    share_a = a.metrics["paths"]["total"].to_numpy()
    share_c = c.metrics["paths"]["total"].to_numpy()
    assert share_c.sum() < share_a.sum()


def test_a_run_builds_its_flows_and_consumption_tables_from_the_cells_when_first_read():
    """collect() leaves both tables unbuilt (the metrics read the cells); read, they are the
    recorder's own tables, also when a discarded model's origin shares were freed as the cells
    were built."""
    import dataclasses

    from critmin.sim.run import collect, new_model

    cfg = load_config(["scenario=ree_2024_short", "scenario.end=2024-06"])
    model = new_model(cfg)
    model.run()
    flows, co = model.recorder.flows(), model.recorder.consumption_origin()
    run = collect(model, cfg)  # the model kept: the cells share the recorder's shares
    assert run.__dict__["_flows"] is None and run.__dict__["_consumption_origin"] is None
    pd.testing.assert_frame_equal(run.flows, flows, check_exact=True)
    pd.testing.assert_frame_equal(run.consumption_origin, co, check_exact=True)
    assert run.trade_cells is not None  # not owned: kept for the metrics
    run = collect(model, cfg, discard=True)  # handed over: the recorder keeps no shares
    assert model.recorder.pair_mix == [] and run.trade_cells is not None
    copy = dataclasses.replace(run)  # replace reads every field: the table is built
    pd.testing.assert_frame_equal(copy.flows, flows, check_exact=True)
    # the table's origin columns are the cells' block, not a copy of it
    assert np.shares_memory(copy.flows[copy.flows.columns[-1]].to_numpy(), run.trade_cells["mix"])


def _hhi_by_pandas(tables: Tables) -> pd.DataFrame:
    """The HHI table as a pandas groupby computes it (the reference of :func:`metrics.hhi`)."""
    ts = tables.timeseries
    p = ts[(ts["variable"] == "production") & (ts["region"] != "WORLD")]
    y = p.groupby([p["month"].dt.year.rename("year"), "commodity", "region"], observed=True)["value"].sum()
    share = y / y.groupby(level=["year", "commodity"]).transform("sum")
    out = (10_000 * share**2).groupby(level=["year", "commodity"]).sum().rename("hhi").reset_index()
    out["stage"] = out["commodity"].astype(str).map(tables.commodity_stage)
    return out


def _recycled_by_pandas(tables: Tables) -> pd.DataFrame:
    """The recycled share as pandas computes it: monthly sums over the region, then by year."""
    ts, rows = tables.timeseries, []
    for reg in ("WORLD", tables.settings.get("region", "G7+")):
        inside = ts["region"] == "WORLD" if reg == "WORLD" else ts["region"].isin(tables.members(reg))
        for com in tables.commodity_stage:
            sel = ts[inside & (ts["commodity"] == com)]
            rec = sel[sel["variable"] == "recycled_production"].groupby("month")["value"].sum()
            if rec.sum() <= 0:
                continue
            prod = sel[sel["variable"] == "production"].groupby("month")["value"].sum()
            yr = rec.groupby(rec.index.year).sum() / prod.groupby(prod.index.year).sum()
            rows += [
                {"year": int(y), "region": reg, "commodity": com, "share": float(v)} for y, v in yr.items()
            ]
    return pd.DataFrame(rows, columns=["year", "region", "commodity", "share"])


@pytest.mark.parametrize("categorical", [True, False])
def test_hhi_and_recycled_share_from_codes_equal_the_pandas_groupby(short_run, categorical):
    """HHI and recycled share summed with np.bincount over the timeseries' codes: the rows,
    order, keys and dtypes of the pandas groupby, values within 1e-12 (pandas adds with
    compensation), from a run's categorical table and from plain string columns; a year with
    recycling but no production gives NaN as pandas' alignment does."""
    tables = Tables.from_result(short_run)
    if not categorical:
        tables.timeseries = tables.timeseries.astype({c: str for c in ("commodity", "region", "variable")})
    h, ref = metrics.hhi(tables), _hhi_by_pandas(tables)
    assert len(h) > 0 and (h["hhi"] > 0).all() and list(h.dtypes) == list(ref.dtypes)
    pd.testing.assert_frame_equal(h, ref, check_exact=False, rtol=1e-12, atol=0)
    r, ref = metrics.recycled_share(tables), _recycled_by_pandas(tables)
    assert len(r) > 0 and (r["share"] > 0).all()
    pd.testing.assert_frame_equal(r, ref, check_exact=False, rtol=1e-12, atol=0)
    # a year of recycled production without any production: NaN, as the aligned division gives
    ts = tables.timeseries
    last = ts["month"].max()
    extra = ts[(ts["variable"] == "recycled_production") & (ts["month"] == last)].assign(
        month=last + pd.DateOffset(years=1)
    )
    tables = Tables.from_result(short_run)
    tables.timeseries = pd.concat([ts, extra], ignore_index=True)
    if categorical:
        for c in ("commodity", "region", "variable"):
            tables.timeseries[c] = tables.timeseries[c].astype("category")
    r, ref = metrics.recycled_share(tables), _recycled_by_pandas(tables)
    assert r["share"].isna().sum() == ref["share"].isna().sum() > 0
    pd.testing.assert_frame_equal(r, ref, check_exact=False, rtol=1e-12, atol=0)


@pytest.mark.parametrize("categorical", [True, False])
def test_unmet_demand_from_codes_equals_the_pandas_groupby(short_run, categorical):
    """Unmet demand per year, country and end use summed with np.bincount: the rows, order,
    keys and dtypes of the pandas groupby, values within 1e-12, from categorical and string
    columns (some demand unmet in the run, so the test sees non-zero sums)."""
    tables = Tables.from_result(short_run)
    fd = tables.final_demand
    if not categorical:
        fd = fd.astype({"region": str, "end_use": str, "commodity": str})
        tables.final_demand = fd
    g = fd.groupby([fd["month"].dt.year.rename("year"), "region", "end_use"], observed=True)[
        ["demand", "unmet_demand"]
    ].sum()
    ref = g.rename(columns={"demand": "demand_t", "unmet_demand": "unmet_t"}).reset_index()
    ref["unmet_pct"] = 100 * ref["unmet_t"] / ref["demand_t"].where(ref["demand_t"] > 0)
    got = metrics.unmet_demand(tables)
    assert len(got) > 0 and (got["demand_t"] > 0).any() and list(got.dtypes) == list(ref.dtypes)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-12, atol=0)
