"""Ex-China mining under a sustained export quota (issue 15; docs/ODD.md §9.1).

China's exports of rare-earth products (oxides, metal, alloy, magnets) are cut to ~60% of 2024 for
2025-29: the 2010 quota path on today's world (``shock=ree_quotas_2010_on_2024``). Two things
follow, in this order:

* **The first quota year: a drop.** China sells less abroad, so its separators need less feed.
  The world concentrate price, set by China's separators, falls. The ex-China mines sell into
  that price, so they run below their capacity, and their capacity is the no-quota run's.
* **Then a faster rise.** Outside China the midstream's prices rise, and its new capacity comes
  on over the lead times: permit, construction and ramp-up (data/ree/investment.csv). Once it is
  on, the outside chain buys more ex-China feed. So the ex-China mining share climbs faster than
  without the quota and passes it as the quota ends.
"""

from __future__ import annotations

import pandas as pd
import pytest

import critmin
from critmin.sim.compose import load_config

RUN = [
    "scenario=ree_2024",
    "scenario.end=2031-12",
    "experiment.plots=false",
    "experiment.metrics.report=false",
]
SEEDS = (0, 1)


def _mining(shock: str, seed: int) -> dict[str, pd.Series]:
    ts = critmin.simulate(load_config([*RUN, f"shock={shock}", f"seed={seed}"])).timeseries
    ts = ts[(ts.commodity.astype(str) == "ree_concentrate") & (ts.region.astype(str) != "WORLD")]
    ts = ts.assign(year=pd.to_datetime(ts.month).dt.year, china=ts.region.astype(str) == "CHN")
    out = {}
    for var in ("production", "capacity"):
        by = ts[ts.variable == var].groupby(["year", "china"]).value.sum().unstack()
        out[var] = by[False]  # outside China, t per year
        if var == "production":
            out["share"] = by[False] / (by[False] + by[True])
    price = ts[(ts.variable == "price") & ts.china]
    out["price"] = price.groupby("year").value.mean()  # China's concentrate price
    return out


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, int], dict[str, pd.Series]]:
    return {(s, seed): _mining(s, seed) for s in ("ree_quotas_2010_on_2024", "none") for seed in SEEDS}


def test_first_quota_year_ex_china_mines_idle_capacity_not_lost(runs):
    quota, twin = runs[("ree_quotas_2010_on_2024", 0)], runs[("none", 0)]
    # measured 2026, seed 0: capacity equal; output 0.88 of the twin; concentrate price 0.83
    assert quota["capacity"][2026] == pytest.approx(twin["capacity"][2026], rel=0.01)
    assert quota["production"][2026] < 0.95 * twin["production"][2026]
    assert quota["price"][2026] < 0.9 * twin["price"][2026]
    assert quota["share"][2026] < twin["share"][2026] - 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_ex_china_mining_share_rises_faster_after_the_first_quota_year(runs, seed):
    quota, twin = runs[("ree_quotas_2010_on_2024", seed)]["share"], runs[("none", seed)]["share"]
    # measured 2026 -> 2031: +0.082 / +0.083 under the quota, +0.036 / +0.012 without (seeds 0 / 1)
    rise, rise_twin = quota[2031] - quota[2026], twin[2031] - twin[2026]
    assert rise > rise_twin + 0.02
    assert quota[2031] > twin[2031]  # and it ends above the no-quota run
