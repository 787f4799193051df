"""The month loop's shortcuts in price formation (issue 11) give the numbers of the full
computation bit for bit: delivered costs without wedges (sim/prices/costs.py ``edge_costs`` with
``wedges=None``), and the restriction terms of ``prices.update``, skipped when no edge's cap is
used up and no control is announced because each of them is exactly 0 then."""

from __future__ import annotations

import numpy as np
import pytest

from critmin.policies import Wedges
from critmin.sim import prices
from critmin.sim.network import STORE


@pytest.fixture(scope="module")
def model(short_run):
    return short_run.model


def test_costs_without_wedges_are_the_costs_with_zero_wedges_bit_for_bit(model):
    net, s = model.net, model.state
    seller, n = net.edge_seller, net.edge_seller.size
    p_origin = np.exp(s.log_p)[model.slot_market()[seller]]
    p_origin = np.where(net.slot_role[seller] == STORE, model.store_price[seller], p_origin)
    zeros = [np.zeros(n) for _ in range(4)]
    full = prices.delivered_cost(p_origin, net.edge_transport, *zeros)  # the formula before issue 11
    fast = prices.edge_costs(net, s.log_p, model.slot_market(), model.store_price, None)
    zero = prices.edge_costs(net, s.log_p, model.slot_market(), model.store_price, Wedges.none(n))
    assert fast.tobytes() == full.tobytes()
    assert zero.tobytes() == full.tobytes()
    # a writeable market array (not the model's) takes the gather, with the same numbers
    other = prices.edge_costs(net, s.log_p, model.slot_market().copy(), model.store_price, None)
    assert other.tobytes() == full.tobytes()


def test_a_wedge_still_moves_the_edges_it_is_set_on(model):
    net, s = model.net, model.state
    wedges = Wedges.none(net.edge_seller.size)
    wedges.import_ad_valorem[0] = 0.25  # a 25% tariff on edge 0
    base = prices.edge_costs(net, s.log_p, model.slot_market(), model.store_price, None)
    taxed = prices.edge_costs(net, s.log_p, model.slot_market(), model.store_price, wedges)
    assert taxed[0] == pytest.approx(1.25 * base[0], rel=1e-12)
    assert np.array_equal(taxed[1:], base[1:])


def test_with_nothing_capped_every_restriction_term_is_exactly_zero(model):
    """The premise of the shortcut in ``prices.update``: in a month where no edge's cap is used up
    and no control is announced, the restriction terms it skips are all 0."""
    net, cleared = model.net, model.cleared
    assert not cleared.spot_capped.any()  # a default run restricts nothing
    assert not prices.announced_cuts(model).any()
    sm = model.slot_market()
    assert not prices.restricted_markets(model, cleared, sm).any()
    base = prices._commercial_base(model)[0]
    assert not prices.cutoff_share(net, sm, cleared.result.flow, base, cleared.spot_capped).any()
    lost, u_in, u_out = prices.restricted_exposure(
        net, cleared.result.flow, model.base_edge_flow, cleared.spot_capped, model.commercial_edges,
        expected=prices.announced_cuts(model),
    )  # fmt: skip
    assert not (lost.any() or u_in.any() or u_out.any())
    m_count = net.n_commodities * net.n_countries
    scarcity = prices.expected_scarcity(
        net, sm, base, lost, u_in, u_out, np.ones(m_count), np.ones(m_count), np.ones(m_count),
        months=6.0, headroom=1.0,
    )  # fmt: skip
    assert not scarcity.any()
    # a capped edge that carries less than its base flow is a restriction: the terms are not 0
    capped = cleared.spot_capped.copy()
    edge = int(
        np.argmax(np.where(net.slot_country[net.edge_seller] != net.slot_country[net.edge_buyer], base, 0))
    )
    capped[edge] = True
    flow = cleared.result.flow.copy()
    flow[edge] = 0.0
    lost, _, _ = prices.restricted_exposure(net, flow, model.base_edge_flow, capped, model.commercial_edges)
    assert lost[edge] == 1.0
