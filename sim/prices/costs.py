"""What a buyer pays: the delivered cost of an edge (the seller's price with export and import
wedges and transport) and what each buyer slot paid at the margin this month (ODD §7.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.market import logit_weights
from critmin.sim.prices.layout import _Layout, _layout

if TYPE_CHECKING:
    from critmin.policies.base import Wedges
    from critmin.sim.network import Network
    from critmin.sim.trading import Cleared


def delivered_cost(
    p_origin: np.ndarray,
    transport: np.ndarray,
    export_tax: np.ndarray | float = 0.0,
    tariff: np.ndarray | float = 0.0,
    specific: np.ndarray | float = 0.0,
    import_specific: np.ndarray | float = 0.0,
) -> np.ndarray:
    """``p_del = (p_o·(1+export_tax) + specific + transport)·(1+tariff) + import_specific`` per
    edge (DESIGN §3.1): ad valorem and specific export taxes, then import tariffs."""
    return (p_origin * (1.0 + export_tax) + specific + transport) * (1.0 + tariff) + import_specific


def edge_costs(
    net: Network,
    log_p: np.ndarray,
    slot_market: np.ndarray,
    store_price: np.ndarray,
    wedges: Wedges | None,
) -> np.ndarray:
    """Delivered cost per edge at the current seller prices (stockpiles at their release
    price), with the policy wedges (``None``: no instrument set one this month)."""
    seller = net.edge_seller
    lay = _layout(net)
    p_origin = np.exp(log_p)[_seller_market(lay, slot_market, seller)]
    if lay.any_store:
        p_origin = np.where(lay.from_store, store_price[seller], p_origin)
    if wedges is None:  # (p·(1 + 0) + 0 + transport)·(1 + 0) + 0, bit for bit
        out = p_origin + net.edge_transport
        out += 0.0  # what adding a 0 wedge does to a -0.0
        return out
    return delivered_cost(
        p_origin,
        net.edge_transport,
        export_tax=wedges.export_ad_valorem,
        tariff=wedges.import_ad_valorem,
        specific=wedges.export_specific,
        import_specific=wedges.import_specific,
    )


def _seller_market(lay: _Layout, slot_market: np.ndarray, seller: np.ndarray) -> np.ndarray:
    """``slot_market[seller]``: the layout's fixed copy when ``slot_market`` is a read-only
    array already found equal to the network's markets (the model's, every month)."""
    if slot_market is lay.checked_slot_market:
        return lay.seller_market
    if not slot_market.flags.writeable and np.array_equal(slot_market, lay.slot_market):
        lay.checked_slot_market = slot_market
        return lay.seller_market
    return slot_market[seller]


def marginal_price(
    p_del: np.ndarray,
    buyer: np.ndarray,
    n_buyers: int,
    theta: float,
    preference: np.ndarray,
    capped: np.ndarray,
) -> np.ndarray:
    """Price each buyer faces for one more tonne: the logit-inclusive delivered cost over its
    edges whose cap or quota is not used up (NaN for a buyer with none).

    Quota imports bought below this price carry a rent; it is infra-marginal and must not
    drive demand (the LP oracle's demand price is this marginal price).
    """
    open_edge = ~capped & np.isfinite(p_del)
    w = logit_weights(p_del, buyer, n_buyers, theta, preference, open_edge)
    has = np.bincount(buyer, weights=open_edge.astype(float), minlength=n_buyers) > 0
    price = np.bincount(buyer, weights=w * np.where(open_edge, p_del, 0.0), minlength=n_buyers)
    return np.where(has, price, np.nan)


def learn_paid(
    net: Network, cleared: Cleared, paid: np.ndarray, theta: float, preference: np.ndarray
) -> np.ndarray:
    """What each buyer slot paid at the margin this month: the average over spot purchases on
    edges whose cap is not used up (quota imports bought below it carry an infra-marginal rent;
    contract volumes are infra-marginal too). A buyer that bought nothing at the margin learns
    the price it would have paid, :func:`marginal_price` over its open edges (with unlimited
    offers the two are equal, which the LP oracle docks against); only one with no open edge
    keeps what it paid last. So an idle plant sees its input prices fall back and can restart:
    with its last price kept it read the spike that idled it for good."""
    open_flow = np.where(cleared.spot_capped, 0.0, cleared.spot_flow)
    got = np.bincount(net.edge_buyer, weights=open_flow, minlength=net.n_slots)
    spent = np.bincount(net.edge_buyer, weights=open_flow * cleared.p_del, minlength=net.n_slots)
    out = np.where(got > 0, spent / np.where(got > 0, got, 1.0), paid)
    idle = np.flatnonzero(got[net.edge_buyer] <= 0)
    if idle.size:  # only the edges of buyers that bought nothing
        e = net.edge_buyer[idle]
        would = marginal_price(
            cleared.p_del[idle], e, net.n_slots, theta, preference[idle], cleared.spot_capped[idle]
        )
        out = np.where(np.isnan(would), out, would)
    return out
