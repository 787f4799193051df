"""The reserve round of a month's trading (sim/trading.py: trade_month): stockpile releases cover
only the use the spot market left short, and what stays unserved afterwards is everything the spot
round left short less what the releases served — restocking left short, and the requests of buyers
no release reaches, stay in it (price formation reads it)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from critmin.sim.trading import Book, trade_month

# slots: 0 a seller, 1 a stockpile (release), 2 buyer A, 3 buyer B (another market: no release edge)
# edges: seller->A, store->A, seller->B
NET = SimpleNamespace(edge_seller=np.array([0, 1, 0]), edge_buyer=np.array([2, 2, 3]), n_slots=4)


def book(release: float) -> Book:
    return Book(
        request=np.array([0.0, 0.0, 100.0, 50.0]),  # A asks 100 (60 use + 40 restocking), B 50
        offer=np.array([70.0, 0.0, 0.0, 0.0]),  # the seller has 70 for both
        release=np.array([0.0, release, 0.0, 0.0]),
        use=np.array([0.0, 0.0, 60.0, 50.0]),
        stock=np.zeros(4),
        p_del=np.array([1.0, 1.2, 1.0]),
        edge_cap=np.array([np.inf, np.inf, np.inf]),
        groups=None,
        preference=np.ones(3),
    )


def test_a_release_serves_use_only_and_leaves_the_rest_of_the_shortfall_unserved() -> None:
    without = trade_month(book(0.0), NET, np.zeros(1), theta=0.1, passes=4).result
    with_release = trade_month(book(1000.0), NET, np.zeros(1), theta=0.1, passes=4).result
    got_a = without.flow[0]
    assert 0.0 < got_a < 70.0  # the seller's 70 t are shared between A and B
    # the store serves A's use shortfall only, not its restocking
    served = with_release.flow[1]
    assert served == pytest.approx(max(60.0 - got_a, 0.0))
    # A's unserved: its whole spot shortfall less what the release served (the restocking part)
    assert with_release.unmet[2] == pytest.approx(100.0 - got_a - served)
    assert with_release.unmet[2] == pytest.approx(40.0)
    # B, whom no release reaches, keeps its unserved request as without any release
    assert with_release.unmet[3] == pytest.approx(without.unmet[3])
    assert with_release.unmet[3] > 0.0
