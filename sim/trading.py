"""The month's trading rounds: contracts first, then the spot market, then stockpile releases.

One function, :func:`trade_month`, takes the month's :class:`Book` (what buyers ask, what sellers
offer, the limits and contracts instruments set) and returns :class:`Cleared`: every commodity
at once, through the clearing kernel of :mod:`critmin.sim.market`. Releases are the supplier of
last resort: they fill what the market left unserved of this month's use, so they relieve a
shortage without displacing commercial orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from critmin.agents.buying import line_stops
from critmin.sim import market

if TYPE_CHECKING:
    from critmin.policies.base import Contract
    from critmin.sim.network import Network


@dataclass
class Book:
    """What is on the market this month (arrays per slot or per edge of the network)."""

    request: np.ndarray  # per slot: purchase requests, commercial and governments'
    offer: np.ndarray  # per slot: finished stock sellers offer
    release: np.ndarray  # per slot: stockpile releases on offer (reserve round)
    use: np.ndarray  # per slot: planned use this month (releases cover only its shortfall)
    stock: np.ndarray  # per slot: stock before trading
    p_del: np.ndarray  # per edge: delivered cost at this month's prices and wedges
    edge_cap: np.ndarray  # per edge: bans, quotas, licences
    groups: Any  # shared caps (edge, group, cap) of the month's modifiers
    preference: np.ndarray  # per edge: calibrated share parameter
    contracts: list[Contract] = field(default_factory=list)
    adjust: np.ndarray | float = 1.0  # per slot: months over which a buyer closes its stock gap
    dispersion: np.ndarray | float = 0.0  # per slot: spread of stock cover over a buyer's firms (CV)


@dataclass
class Cleared:
    """What the month's trading did, per edge (instruments settle on it, prices form from it)."""

    result: market.Clearing  # contract + spot + reserve flows
    p_del: np.ndarray  # delivered spot cost
    p_paid: np.ndarray  # price actually paid (contract price on contract volume)
    contract_flow: np.ndarray
    log_p: np.ndarray  # market prices at clearing (prices move after it)
    spot_flow: np.ndarray  # spot round only
    spot_capped: np.ndarray  # spot round: the edge's cap or its group's quota is used up

    def seller_price(self, slot_market: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Market price each seller slot sold at (before this month's price update)."""
        return np.exp(self.log_p)[slot_market[slots]]


def serve_contracts(
    net: Network, contracts: list[Contract], request: np.ndarray, offer: np.ndarray, edge_cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deliver contracted tonnes before the spot market, within edge caps (a ban stops
    contracts too) and the seller's stock: take-or-pay contracts in fixed shares, others up
    to the buyers' requests (pro rata to them). Returns tonnes and value per edge."""
    flow = np.zeros(net.edge_seller.size)
    value = np.zeros(net.edge_seller.size)
    left_req = request.copy()
    left_off = offer.copy()
    for c in contracts:
        e = c.edges
        room = np.maximum(edge_cap[e] - flow[e], 0.0)
        seller = net.edge_seller[e[0]]
        if c.split is not None:  # take-or-pay: buyers take their share whatever they need now
            q = np.minimum(min(c.tonnes, left_off[seller]) * c.split, room)
        else:
            want = np.minimum(left_req[net.edge_buyer[e]], room)
            total = min(c.tonnes, left_off[seller], want.sum())
            q = want * (total / want.sum()) if total > 0 else np.zeros(e.size)
        if q.sum() <= 0:
            continue
        flow[e] += q
        value[e] += q * c.price
        left_off[seller] -= q.sum()
        np.subtract.at(left_req, net.edge_buyer[e], q)
        np.maximum(left_req, 0.0, out=left_req)
    return flow, value


def trade_month(book: Book, net: Network, log_p: np.ndarray, theta: float, passes: int) -> Cleared:
    """Contracts, then spot, then stockpile releases, all commodities at once."""
    seller, buyer, n = net.edge_seller, net.edge_buyer, net.n_slots
    if book.contracts:
        contract_flow, contract_value = serve_contracts(
            net, book.contracts, book.request, book.offer, book.edge_cap
        )
        bought = np.bincount(buyer, weights=contract_flow, minlength=n)
        sold_c = np.bincount(seller, weights=contract_flow, minlength=n)
        request, offer = book.request - bought, book.offer - sold_c
        spot_cap = book.edge_cap - contract_flow
    else:  # no contract: nothing to take off (x - 0 is x)
        contract_flow, contract_value = np.zeros(seller.size), np.zeros(seller.size)
        request, offer, spot_cap = book.request, book.offer, book.edge_cap
    spot = market.clear(
        np.maximum(request, 0.0),
        np.maximum(offer, 0.0),
        seller,
        buyer,
        book.p_del,
        theta=theta,
        edge_cap=np.maximum(spot_cap, 0.0),
        groups=book.groups,
        preference=book.preference,
        passes=passes,
    )
    last = spot
    if book.release.any():
        # releases cover this month's use that the market left short, not restocking: with
        # firms' stock cover spread (agents/buying.py line_stops), the use of those whose stock
        # runs out, even while the buyer's average stock would cover it
        bought = np.bincount(buyer, weights=spot.flow + contract_flow, minlength=n)
        short_use = np.maximum(book.use - book.stock - bought, 0.0)
        if np.any(book.dispersion):
            stops = line_stops(book.use, book.stock, bought, book.request, book.adjust, book.dispersion)
            short_use = np.maximum(short_use, stops)
        last = market.clear(
            np.minimum(spot.unmet, short_use),
            book.release,
            seller,
            buyer,
            book.p_del,
            theta=theta,
            edge_cap=np.maximum(book.edge_cap - contract_flow - spot.flow, 0.0),
            preference=book.preference,
            passes=passes,
        )
    if last is spot and not book.contracts:
        # the spot round alone: the sums below would add exact zeros to its non-negative flows
        # (x + 0.0 is x), and its sellers' sales are those of its live edges (the others carry
        # +0.0): the same numbers without the arithmetic on zeros
        result = market.Clearing(
            flow=spot.flow.copy(),
            asked=spot.asked.copy(),
            unmet=np.maximum(spot.unmet, 0.0),
            sold=spot.sold.copy(),
            capped=spot.capped,
        )
        flow = result.flow
        p_paid = np.divide(spot.flow * book.p_del, flow, out=book.p_del.copy(), where=flow > 0)
        return Cleared(result, book.p_del, p_paid, contract_flow, log_p.copy(), spot.flow, spot.capped)
    reserve = last.flow if last is not spot else np.zeros_like(spot.flow)
    flow = spot.flow + contract_flow + reserve
    # what stays unserved is the spot round's, less what releases served: restocking left short
    # stays in it (price formation prices it by storage), and buyers no release reaches keep theirs
    unmet = np.maximum(spot.unmet - np.bincount(buyer, weights=reserve, minlength=n), 0.0)
    result = market.Clearing(
        flow=flow,
        asked=spot.asked + contract_flow + reserve,
        unmet=unmet,
        sold=np.bincount(seller, weights=flow, minlength=n),
        capped=spot.capped,
    )
    p_paid = np.divide(
        (spot.flow + reserve) * book.p_del + contract_value, flow, out=book.p_del.copy(), where=flow > 0
    )
    return Cleared(result, book.p_del, p_paid, contract_flow, log_p.copy(), spot.flow, spot.capped)
