"""What price formation reads of the network every month and that never changes in a run
(slot and edge masks, their markets, the commercial base-year flows), built once per network."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.network import INPUT, OUTPUT, STORE

if TYPE_CHECKING:
    from critmin.sim.network import Network
    from critmin.sim.view import ModelView


class _Layout:
    """What price formation reads of the network every month and that never changes in a run:
    slot and edge masks, their markets, and which markets have sellers (computed once per
    network, :func:`_layout`)."""

    def __init__(self, net: Network) -> None:
        self.m_count = net.n_commodities * net.n_countries
        slot_market = net.market_index(net.slot_commodity, net.slot_country)
        self.outs = net.slot_role == OUTPUT
        self.ins = net.slot_role == INPUT
        self.out_slots = np.flatnonzero(self.outs)
        self.out_node = net.slot_node[self.outs]
        self.out_commodity = net.slot_commodity[self.outs]
        self.out_market = slot_market[self.outs]
        self.in_node = net.slot_node[self.ins]
        self.in_coef = net.slot_coef[self.ins]
        self.seller_market = slot_market[net.edge_seller]
        self.abroad = net.slot_country[net.edge_seller] != net.slot_country[net.edge_buyer]
        self.from_store = net.slot_role[net.edge_seller] == STORE
        self.any_store = bool(self.from_store.any())
        self.slot_market = slot_market
        self.has_sellers = np.bincount(self.out_market, minlength=self.m_count) > 0
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        # a read-only per-slot market array found equal to ``slot_market`` (:func:`edge_costs`)
        self.checked_slot_market: np.ndarray | None = None


_LAYOUTS: dict[int, tuple[Network, _Layout]] = {}


_BASES: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _commercial_base(model: ModelView) -> tuple[np.ndarray, np.ndarray]:
    """Per edge: the base-year flow of commercial edges (0 on stockpiles' edges), and per market
    its sellers' base-year exports; fixed for a run, built once per calibration and network."""
    base_flow, commercial = model.base_edge_flow, model.commercial_edges
    hit = _BASES.get(id(base_flow))
    if hit is not None and hit[0] is base_flow and hit[1] is commercial:
        return hit[2], hit[3]
    lay = _layout(model.net)
    base = np.where(commercial, base_flow, 0.0)
    exports = np.bincount(lay.seller_market, weights=np.where(lay.abroad, base, 0.0), minlength=lay.m_count)
    base.flags.writeable = exports.flags.writeable = False
    if len(_BASES) >= 8:
        _BASES.pop(next(iter(_BASES)))
    _BASES[id(base_flow)] = (base_flow, commercial, base, exports)
    return base, exports


def _layout(net: Network) -> _Layout:
    """The network's :class:`_Layout`, built once per network (a few kept per process; the
    network is held with it so that its id stays unique)."""
    hit = _LAYOUTS.get(id(net))
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_LAYOUTS) >= 8:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    out = _LAYOUTS[id(net)] = (net, _Layout(net))
    return out[1]
