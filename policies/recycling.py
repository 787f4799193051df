"""Recycling targets and extended producer responsibility (EPR).

``collection_rate``: the covered countries' end-of-life collection rises linearly from today's
rate to the target over ``phase_in_years``; producers pay ``epr_fee_usd_per_t`` per tonne
collected (a compliance cost, booked as private cost). ``recycled_content``: covered buyers of
``content_commodity`` must take at least that share of it from recyclers, where recyclers can
supply it (EU CRMA 25% recycling benchmark; Battery Regulation content shares, facts.md §3.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.select import buyer_slots
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


@register
class RecyclingTarget(Policy):
    """Collection and recycled-content obligations for ``countries``."""

    key = "recycling_target"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        countries = spec.countries("countries", net)
        self.government = net.countries[int(countries[0])]
        self.collection_target = spec.share("collection_rate", default=0.0)
        self.phase_in = spec.number("phase_in_years", 0.0, 30.0, default=3.0) * 12
        self.fee = spec.number("epr_fee_usd_per_t", 0.0, 1e6, default=0.0)
        self.nodes = model.demand_nodes[np.isin(net.node_country[model.demand_nodes], countries)]
        self.base_rate = model.collection[self.nodes].copy()
        self.content = spec.share("recycled_content", default=0.0)
        content_commodity = spec.commodities("content_commodity", net, default="ndfeb_alloy")
        self.buyers = buyer_slots(model, content_commodity, countries)
        recycler_slot = np.array([net.node_agent[n] == "Recycler" for n in net.slot_node])
        edges = np.flatnonzero(np.isin(net.edge_buyer, self.buyers))
        self.primary_edges = edges[~recycler_slot[net.edge_seller[edges]]]
        self.recycled_edges = edges[recycler_slot[net.edge_seller[edges]]]

    def on_step(self, model: ModelView, t: int) -> Effects:
        ramp = 1.0 if self.phase_in == 0 else min(1.0, (t - self.first + 1) / self.phase_in)
        target = self.base_rate + ramp * np.maximum(self.collection_target - self.base_rate, 0.0)
        return Effects(collection=[(self.nodes, target)])

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        effects = Effects()
        if self.content <= 0:
            return effects
        net = model.net
        # primary supply to each buyer at most (1 − content) of its request, if recyclers can
        # supply the rest (their stock this month); otherwise the obligation relaxes to what exists
        recycled_stock = model.state.stock[np.unique(net.edge_seller[self.recycled_edges])].sum()
        need = self.content * request[self.buyers].sum()
        feasible = min(1.0, recycled_stock / need) if need > 0 else 1.0
        self.feasible = feasible  # share of the obligation recyclers can meet this month
        for b in self.buyers:
            edges = self.primary_edges[net.edge_buyer[self.primary_edges] == b]
            effects.shared_caps.append((edges, (1 - self.content * feasible) * request[b]))
        return effects

    def after_clearing(self, model: ModelView) -> list[Payment]:
        if self.fee <= 0:
            return []
        net = model.net
        d = self.nodes
        collected = model.state.in_use[d] / net.lifetime_months[net.end_use[d]] * model.collection_rate(d)
        return [Payment(self.government, self.label, float(self.fee * collected.sum()), private=True)]
