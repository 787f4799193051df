"""Entrants outside see the outside price (issue 15, item 4): a market whose sellers have nothing
to sell (a country before its first plant, or one whose plants closed) is priced at what its
first seller would fetch, the open price abroad, not at its price from the base year
(sim/prices/expectations.py: idle_market_prices). Its prospects judge their margin on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import critmin
from critmin.sim import prices
from critmin.sim.compose import load_config

# one commodity in three markets: China in business with exports held back, selling 100 t at
# home at 1.0; Japan in business and open, 10 t at 2.8; Australia idle, its price stale at 1.0
LOG_P = np.log(np.array([1.0, 2.8, 1.0]))
IN_BUSINESS = np.array([True, True, False])
SOLD = np.array([100.0, 10.0, 0.0])


def test_an_idle_market_takes_the_open_outside_price_not_the_held_back_exporters():
    out = prices.idle_market_prices(LOG_P, IN_BUSINESS, SOLD, np.array([0.4, 0.0, 0.0]), 1)
    assert np.exp(out[2]) == pytest.approx(2.8)
    assert np.array_equal(out[:2], LOG_P[:2])  # markets in business keep their price


def test_without_a_restriction_an_idle_market_takes_the_world_price():
    out = prices.idle_market_prices(LOG_P, IN_BUSINESS, SOLD, np.zeros(3), 1)
    assert np.exp(out[2]) == pytest.approx((100 * 1.0 + 10 * 2.8) / 110)


def test_an_idle_market_with_no_open_seller_abroad_keeps_its_price():
    out = prices.idle_market_prices(LOG_P, IN_BUSINESS, SOLD, np.array([0.4, 0.2, 0.0]), 1)
    assert out[2] == LOG_P[2]


def test_commodities_do_not_mix():
    log_p = np.concatenate([LOG_P, np.log([5.0, 5.0, 1.0])])  # commodity-major, 3 countries each
    sold = np.concatenate([SOLD, [10.0, 0.0, 0.0]])
    alive = np.concatenate([IN_BUSINESS, [True, False, False]])
    out = prices.idle_market_prices(log_p, alive, sold, np.zeros(6), 2)
    assert np.exp(out[2]) == pytest.approx((100 * 1.0 + 10 * 2.8) / 110)
    assert np.exp(out[4:]) == pytest.approx([5.0, 5.0])  # the second commodity's own price


RUN = [
    "scenario=ree_2024",
    "scenario.end=2026-12",
    "experiment.plots=false",
    "experiment.metrics.report=false",
]


def _alloy(shock: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    snap: dict[str, pd.DataFrame] = {}

    def keep_projects(model) -> None:
        snap["projects"] = model.investment.projects(model)

    result = critmin.simulate(load_config([*RUN, f"shock={shock}"]), after_run=keep_projects)
    ts = result.timeseries
    alloy = ts[(ts.variable == "price") & (ts.commodity == "ndfeb_alloy")]
    price = alloy.pivot_table(index="month", columns="region", values="value", observed=True)
    return price, snap["projects"]


@pytest.fixture(scope="module")
def quota_and_twin():
    # China's REE product exports cut to 60% of 2024 from 2025 (the 2010 quota path on today's world)
    return _alloy("ree_quotas_2010_on_2024"), _alloy("none")


def test_under_a_quota_an_idle_country_sees_the_open_outside_price(quota_and_twin):
    (quota, projects), (twin, _) = quota_and_twin
    y2026 = quota.loc["2026-01-01":"2026-12-01"].mean()
    # Australia has no alloy plant yet; Japan's makers sell outside China's quota
    assert y2026["AUS"] > 1.5 * y2026["CHN"]  # not China's inside price (the exporter held back)
    assert y2026["AUS"] == pytest.approx(y2026["JPN"], rel=0.1)  # the open outside price
    base = twin.loc["2026-01-01":"2026-12-01"].mean()
    assert base["AUS"] == pytest.approx(base["CHN"], rel=0.02)  # no restriction: the world price
    # its prospect judges the outside price it would sell at: it goes ahead instead of being
    # cancelled for input costs at the outside price and an output price stuck at 2024's
    aus = projects[projects.node == "new_make_alloy_AUS"]
    assert (aus.status != "cancelled").all()
    assert (aus.profitability_index > 2.0).all()
