"""Holders read a restriction's easing from the licences they see granted (issue 15, gallium's
inside price in Oct 2023): the hazard at which they expect the premium abroad rises with the
observed recovery of held-back exports, and the share in the storage anchor counts the exports
still to recover (sim/prices/expectations.py: licence_easing; sim/prices/anchors.py:
storage_anchor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import critmin
from critmin.sim import prices
from critmin.sim.run import load_config

W, T = 0.3, 12.0  # the producers' expectation weight and market.restriction_months
GAGE = ["scenario.data=[gallium,germanium]", "scenario=gallium_2024"]
QUIET = ["experiment.plots=false", "experiment.metrics.report=false"]


def step(r, held_back, recovery=0.0, to_recover=None):
    r = np.atleast_1d(np.asarray(r, dtype=float))
    held_back = np.atleast_1d(np.asarray(held_back, dtype=float))
    rec = np.full(r.size, recovery)
    s = held_back.copy() if to_recover is None else np.atleast_1d(np.asarray(to_recover, dtype=float))
    return prices.licence_easing(r, held_back, rec, s, weight=W, months=T)


def test_licences_that_release_a_third_of_the_held_back_exports_shorten_the_expected_wait():
    # Ga 4N in the Oct 2023 replay month: 0.97 held back in Sep, 0.66 in Oct
    horizon, h, s = step(0.66, 0.97)
    q = (0.97 - 0.66) / 0.97
    assert h[0] == pytest.approx(W * q)
    assert h[0] > 1.0 / T
    assert horizon[0] == pytest.approx(1.0 / (W * q))  # ~10.4 months, not 12
    # the exports still to recover: the smoothed held-back share, not only this month's
    assert s[0] == pytest.approx(W * 0.66 + (1 - W) * 0.97)
    # so the storage anchor rises when licences land, where the fixed rule made it fall
    log_norm, log_ref, room = np.zeros(1), np.full(1, np.log(1.8)), np.ones(1)
    before = prices.storage_anchor(log_norm, log_ref, np.array([0.97]), room, rho=0.5, restriction_months=T)
    fixed = prices.storage_anchor(log_norm, log_ref, np.array([0.66]), room, rho=0.5, restriction_months=T)
    eased = prices.storage_anchor(log_norm, log_ref, s, room, rho=0.5, restriction_months=horizon)
    assert fixed[0] < before[0] < eased[0]
    assert eased[0] == pytest.approx(s[0] * np.log(1.8) / horizon[0] / 0.5)
    # and holders' expected gain at the same price rises by the same premium term
    g = prices.expected_gain(
        np.zeros(1), log_norm, log_ref, np.zeros(1), rho=0.5, restriction_months=horizon, trend_weight=0.0
    )
    assert g[0] == pytest.approx(np.log(1.8) / horizon[0])
    assert g[0] > np.log(1.8) / T


def test_a_drip_feed_of_licences_keeps_the_calendar_hazard():
    # Dy/Tb-like: 5% of the held-back exports released a month
    horizon, h, s = step(0.95, 1.0)
    assert h[0] < 1.0 / T
    assert horizon[0] == T
    assert s[0] == pytest.approx(W * 0.95 + (1 - W) * 1.0)
    horizon, h, s = step(0.90, 0.95, recovery=h[0], to_recover=s)
    assert horizon[0] == T


def test_a_month_that_closes_again_counts_against_the_easing():
    _, h_up, _ = step(0.66, 0.97, recovery=0.1)
    _, h_down, _ = step(0.97, 0.66, recovery=0.1)
    assert h_down[0] < (1 - W) * 0.1 < h_up[0]
    assert h_down[0] >= 0.0


def test_nothing_held_back_is_the_calendar_bit_for_bit():
    horizon, h, s = step([0.0, 0.0], [0.0, 1.0], recovery=0.2, to_recover=[0.5, 1.0])
    assert (horizon == T).all()
    assert (h == 0).all() and (s == 0).all()
    # a restriction's first month: nothing seen released yet, the share is this month's
    horizon, h, s = step(1.0, 0.0)
    assert horizon[0] == T and h[0] == 0 and s[0] == 1.0


def _ga_inside(monkeypatch: pytest.MonkeyPatch, easing: bool) -> pd.Series:
    """China's 4N gallium price under the Ga/Ge replay (shifted +1 year: Oct 2023 -> Oct 2024),
    over its end-July level; ``easing`` False: the calendar rule (horizon restriction_months,
    share the month's held-back share)."""
    if not easing:

        def calendar(r, held_back, recovery, to_recover, *, weight, months):
            return months, np.zeros(r.size), np.clip(r, 0.0, 1.0)

        monkeypatch.setattr(prices, "licence_easing", calendar)
    cfg = load_config([*GAGE, "scenario.end=2024-12", "shock=gage_controls_2023", *QUIET])
    ts = critmin.simulate(cfg).timeseries
    p = ts[(ts.variable == "price") & (ts.commodity == "ga_primary") & (ts.region == "CHN")]
    p = p.groupby("month", observed=True)["value"].sum()
    return p / p.loc["2024-07-01"]


def test_gallium_inside_price_rises_when_licences_land(monkeypatch: pytest.MonkeyPatch):
    eased = _ga_inside(monkeypatch, easing=True)
    monkeypatch.undo()
    calendar = _ga_inside(monkeypatch, easing=False)
    # before licences land (Aug) nothing changes
    assert eased.loc["2024-08-01"] == pytest.approx(calendar.loc["2024-08-01"], rel=1e-9)
    # in October a third of the held-back 4N exports is licensed (held-back share 0.97 -> 0.66):
    # under the calendar rule the anchor falls and the price with it (x1.028 Sep -> x1.018 Oct,
    # seed of the default config); read as news of the easing it keeps rising (x1.034),
    # +1.5% over the calendar rule (history: +8.6% by 18 Oct over 1 Aug)
    assert eased.loc["2024-10-01"] > eased.loc["2024-09-01"]
    assert calendar.loc["2024-10-01"] < calendar.loc["2024-09-01"]
    lift = eased.loc["2024-10-01"] / calendar.loc["2024-10-01"]
    assert 1.005 < lift < 1.05
