"""Withdrawn licence applications (issue 15; policies/export_controls.py: ExportLicensing):
a buyer withdraws what waits for a licence only to the extent that it can buy elsewhere, read
off the market: the share of the request the control held back last month that its other
sellers served (ExportLicensing.resourceable). A sole-source buyer (every other seller sold out,
or none) keeps its applications; a buyer whose other sellers served it in full withdraws at the
behavioural rate ``withdrawal``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_licence_timing import LIC, MAY
from test_quotas import build


def _pending_after_may(unmet_share: float, withdrawal: float = 0.3) -> tuple[np.ndarray, np.ndarray, object]:
    """Step a licensed model (three months' processing) through April, then set what the control
    held back last month and what the market left unserved of each buyer's request (``unmet_share``
    of what was held back), and run May's instrument step: April's applications before and after."""
    model = build([{**LIC, "delay_months": 3, "withdrawal": withdrawal}])
    while model.state.t < MAY:
        model.step()
    policy = model.policies[0]
    decided = MAY - 1 + 3  # April's applications are decided in July
    before = policy.waiting[decided].copy()
    assert before.sum() > 0
    policy.blocked = np.full(policy.edges.size, 10.0)  # each edge held back 10 t in April
    held = np.bincount(policy.of_buyer, weights=policy.blocked, minlength=policy.buyers.size)
    unmet = model.cleared.result.unmet.copy()
    unmet[policy.buyers] = unmet_share * held
    model.cleared = SimpleNamespace(result=SimpleNamespace(unmet=unmet))
    policy.market(model, model.last_request)
    return before, policy.waiting[decided], policy


def test_a_sole_source_buyer_withdraws_nothing_of_what_waits():
    # the market left its whole held-back request unserved: no other seller had tonnes for it
    before, after, _ = _pending_after_may(unmet_share=1.0)
    np.testing.assert_allclose(after, before)


def test_a_buyer_whose_other_sellers_served_it_withdraws_at_the_rate():
    before, after, policy = _pending_after_may(unmet_share=0.0)
    np.testing.assert_allclose(after, (1.0 - 0.3) * before)
    assert policy.withdrawal == pytest.approx(0.3)


def test_a_buyer_served_in_part_elsewhere_withdraws_in_proportion():
    # a third of what the control held back went unserved: two thirds were re-sourced
    before, after, _ = _pending_after_may(unmet_share=1 / 3)
    np.testing.assert_allclose(after, (1.0 - 0.3 * 2 / 3) * before)
    # short of more than the control held back (short anyway): nowhere to re-source
    before, after, _ = _pending_after_may(unmet_share=2.0)
    np.testing.assert_allclose(after, before)


def test_without_withdrawals_nothing_is_withdrawn_whatever_the_market():
    before, after, _ = _pending_after_may(unmet_share=0.0, withdrawal=0.0)
    np.testing.assert_allclose(after, before)


def test_the_first_month_reads_no_market_and_withdraws_nothing():
    # the start month has nothing waiting, and before any trading there is no market to read
    model = build([{**LIC, "delay_months": 3, "withdrawal": 0.3}])
    policy = model.policies[0]
    assert not hasattr(model, "cleared")
    np.testing.assert_allclose(policy.resourceable(model), 1.0)
