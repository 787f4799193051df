"""Which waiting licence applications buyers withdraw (issue 15; policies/export_controls.py:
surplus_share, ExportLicensing.market): only what waits beyond the buyer's desired supply line on
the edge, its stock gap plus the use the edge serves over the wait (Sterman 2000 ch. 17), i.e.
orders found elsewhere or no longer needed. A buyer short of stock with nowhere else to buy (China
makes ~98% of primary gallium and most magnets) keeps its orders, whatever the withdrawal rate."""

from __future__ import annotations

import numpy as np
import pytest
from test_quotas import build, monthly_exports

from critmin.policies.export_controls import surplus_share

LIC = {"type": "export_licensing", "country": "CHN", "commodity": "ndfeb_magnet", "start": "2024-04"}
MAY = 4  # months of the 2024 test run


def test_the_surplus_is_what_waits_beyond_the_stock_gap_and_the_use_over_the_wait():
    pending = np.array([10.0, 10.0, 10.0, 6.0, 0.0])
    gap = np.array([2.0, 12.0, 0.0, 0.0, 1.0])
    flow = np.array([3.0, 0.0, 0.0, 3.0, 1.0])
    share = surplus_share(pending, gap, flow, wait=2.0)
    # need 8: 2 of 10 surplus; a gap above what waits: none; nothing needed: all; a steady flow
    # (what waits is the use over the wait): none; nothing waits: none
    np.testing.assert_allclose(share, [0.2, 0.0, 1.0, 0.0, 0.0])


def test_buyers_short_of_magnets_keep_their_orders_whatever_the_withdrawal_rate():
    # China's magnet buyers abroad have nowhere else to buy under licensing: their stock gap stays
    # open above what waits, so no rate withdraws anything (before, 0.3 a month lost 10-50% of the
    # backlog the approvals shipped)
    def run(share: float) -> np.ndarray:
        model = build([{**LIC, "processing_days": {"min": 26, "max": 68}, "withdrawal": share}])
        edges = model.policies[0].edges
        return monthly_exports(model, edges) / float(model.base_edge_flow[edges].sum())

    kept, low, high = run(0.0), run(0.3), run(1.0)
    assert kept[MAY:].max() > 1.2  # the backlog ships when approvals land
    np.testing.assert_allclose(low, kept, rtol=1e-9)
    np.testing.assert_allclose(high, kept, rtol=1e-9)


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_a_buyer_whose_stock_is_filled_elsewhere_withdraws_the_share_of_what_waits(share):
    # two months' processing: after May, April's and May's applications wait; then the buyers'
    # stocks are filled (from other sellers, say) to three times their target: they need nothing
    # of what waits, and withdraw `share` of it in June
    def june(withdrawal: float) -> tuple[float, float]:
        model = build([{**LIC, "delay_months": 2, "withdrawal": withdrawal}])
        policy = model.policies[0]
        for _ in range(MAY + 1):
            model.step()
        waited = float(policy.pending().sum())
        buyers = np.unique(model.net.edge_buyer[policy.edges])
        model.state.stock[buyers] = 3.0 * np.maximum(model.stock_target[buyers], model.state.stock[buyers])
        model.step()
        assert float(policy.applied.sum()) == 0.0  # above target they apply for nothing new
        return waited, float(policy.pending().sum())

    waited, kept = june(0.0)
    _, withdrawn = june(share)
    assert waited > kept > 0.0  # April's were decided in June; May's wait
    assert withdrawn == pytest.approx((1.0 - share) * kept, rel=1e-9)
