"""Issue 15: China's rare-earth mine expansions are quota increases and land with the next quota year.

China's mine capacity in ``facilities.csv`` is its mining quota (2024: 270,000 t REO in two
batches, Feb and Aug 2024; USGS MCS 2025: China mined 270,000 t). A quota year is fixed when it
is issued, so an expansion decided in the base year adds tonnes with the next year's quota:
``construction_months`` mine_ree CHN is 12 (``data/ree*/investment.csv``). With 6 months the
base-year decisions put China at 286,000 t/yr by Dec 2024, inside the fixed 2024 quota, and the
then bridge row for 2025's increment (``chn_mine_quota_2025``) counted a year's growth twice.

Checked in both rare-earth worlds: capacity flat through the base year (the fix: it rose 6%
before), then growth in the next year of at most the yearly cap times the build time (the
first brownfield option) and at least half a year's cap (growth resumes: the direction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from critmin.experiments.api import simulate
from critmin.sim.run import load_config

QUIET = ["experiment.plots=false", "experiment.write_flows=false", "experiment.metrics.report=false"]
CAP = 0.06  # data/ree*/investment.csv max_expansion_per_year mine_ree CHN (2024 quota growth)


def china_mining_capacity(scenario: str, end: str) -> pd.Series:
    cfg = load_config([f"scenario={scenario}", f"scenario.end={end}", "scenario.demand.noise_sd=0", *QUIET])
    cfg.seed = 0
    ts = simulate(cfg).timeseries
    keep = (ts["commodity"] == "ree_concentrate") & (ts["variable"] == "capacity") & (ts["region"] == "CHN")
    return ts[keep].set_index("month")["value"].sort_index() * 12  # t/yr


@pytest.mark.parametrize(("scenario", "base_year"), [("ree_2024", 2024), ("ree_2026", 2025)])
def test_china_mine_capacity_stays_at_the_quota_through_the_base_year(scenario: str, base_year: int):
    cap = china_mining_capacity(scenario, f"{base_year + 1}-12")
    year = pd.DatetimeIndex(cap.index).year
    base = cap[year == base_year]
    quota = float(base.iloc[0])
    assert quota > 200_000  # the aggregate of China's mines, t REO/yr
    # the base year's quota is fixed: no expansion lands inside it (with 6 months: +6% by Dec)
    np.testing.assert_allclose(base.to_numpy(), quota, rtol=1e-9)
    # the next year: the first brownfield option (cap x build time, 12 + 6 months) and no more;
    # growth does resume (at least half a year's cap by December)
    dec = float(cap[year == base_year + 1].iloc[-1])
    assert quota * (1 + CAP / 2) <= dec <= quota * (1 + CAP * 1.5) + 1.0
