"""sim/run.py summarise: the world final demand and unmet demand per year of summary.json,
summed with np.bincount, equal the pandas groupby they replace (within 1e-12) and its rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from critmin.sim.run import _final_demand_by_year


def _by_pandas(world: pd.DataFrame) -> tuple[dict, dict]:
    final = world[world["variable"].isin(["demand", "unmet_demand"])]
    fy = final.groupby([final["month"].dt.year, "variable"], observed=True)["value"].sum().unstack()
    demand = {int(y): float(v) for y, v in fy.get("demand", pd.Series()).items()}
    unmet = {int(y): float(v) for y, v in fy.get("unmet_demand", pd.Series()).items()}
    return demand, unmet


def _world(categorical: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = pd.date_range("2024-01-01", "2027-12-01", freq="MS")
    rows = []
    for m in months:
        for v in ("price", "demand", "unmet_demand", "production"):
            if v == "unmet_demand" and m.year == 2025:
                continue  # a year without unmet demand: NaN in the groupby, 0 in the share
            if v == "demand" and m.year == 2027:
                continue  # a year with unmet demand only: NaN demand
            for c in ("a", "b"):
                rows.append((m, c, "WORLD", v, float(rng.lognormal(5, 2))))
    df = pd.DataFrame(rows, columns=["month", "commodity", "region", "variable", "value"])
    if categorical:
        df["variable"] = pd.Categorical(df["variable"])
    return df


@pytest.mark.parametrize("categorical", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_final_demand_by_year_equals_the_groupby(categorical: bool, seed: int) -> None:
    world = _world(categorical, seed)
    demand, unmet = _final_demand_by_year(world)
    ref_demand, ref_unmet = _by_pandas(world)
    assert list(demand) == list(ref_demand) == [2024, 2025, 2026, 2027]
    assert list(unmet) == list(ref_unmet)
    for got, ref in ((demand, ref_demand), (unmet, ref_unmet)):
        for y in ref:
            assert np.isnan(got[y]) == np.isnan(ref[y])
            if not np.isnan(ref[y]):
                assert got[y] == pytest.approx(ref[y], rel=1e-12, abs=0)
    assert np.isnan(demand[2027]) and np.isnan(unmet[2025]) and demand[2024] > 0


def test_no_final_demand_rows_give_empty_years() -> None:
    world = _world(True, 0)
    world = world[world["variable"] == "price"]
    assert _final_demand_by_year(world) == ({}, {})


def test_world_prices_equal_the_groupby() -> None:
    """The price ratio range and yearly mean world price per commodity: the keys, order, NaNs
    (a commodity without prices in a year) and values (within 1e-12) of the groupbys."""
    from types import SimpleNamespace

    from critmin.sim.run import _world_prices

    world = _world(True, 1)
    price = world[world["variable"] == "price"]
    price = price[~((price["commodity"] == "b") & (price["month"].dt.year == 2026))]
    net = SimpleNamespace(commodities=["b", "a"], price0=np.array([50.0, 200.0]))
    ranges, by_year = _world_prices(price, net)
    ref = price.copy()
    ref["ratio"] = ref["value"] / ref["commodity"].map({"b": 50.0, "a": 200.0}).astype(float)
    means = ref.groupby([ref["month"].dt.year, "commodity"], observed=True)["value"].mean().unstack()
    assert list(ranges) == list(by_year) == ["a", "b"]
    for c, g in ref.groupby("commodity", observed=True):
        assert ranges[c] == (g["ratio"].min(), g["ratio"].max())
        assert list(by_year[c]) == [int(y) for y in means.index] == [2024, 2025, 2026, 2027]
        for y, v in means[c].items():
            assert np.isnan(by_year[c][int(y)]) == np.isnan(v)
            if not np.isnan(v):
                assert by_year[c][int(y)] == pytest.approx(v, rel=1e-12, abs=0)
    assert np.isnan(by_year["b"][2026]) and not np.isnan(by_year["a"][2026])
