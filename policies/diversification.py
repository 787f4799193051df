"""Diversification requirement: no buyer takes more than ``max_share`` from one origin.

Each covered buyer (``buyers``: countries or blocs, all their buyer slots of ``commodity``)
may take at most ``max_share`` of its monthly requirement (its purchase request) from any single
origin country at ``stage`` (default: the stage the commodity is made at, i.e. the seller's country). Origins
are read from the sellers' stock (its dominant country at that stage), where the stage happened
(``control: location``, the default) or by the country owning the plant that did it
(``control: owner``). The cost of compliance
shows up as a higher delivered price, and as unmet demand where diversified supply is short
(e.g. the EU CRMA benchmark of at most 65% from one third country, facts.md §3.2).

The cap governs purchases, contract and spot: releases of a government stockpile in the
trading's reserve round (:mod:`critmin.sim.trading`) are not in its groups and not counted
against it. A strategic stock is the instrument a crisis draws on, whatever its origin; its
origin was counted when it was bought, and capping its release would leave users short in the
months it exists for. ``worst`` records, per month, the largest share of a buyer's
requirement bought from one origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.select import CONTROLS, buyer_slots, dominant_origin, stage_index
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


@register
class DiversificationCap(Policy):
    """Per-buyer cap on the share from any single origin."""

    key = "diversification_cap"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        commodity = spec.commodities("commodity", net)
        self.stage = stage_index(model, spec, "stage", int(commodity[0]))
        self.max_share = spec.share("max_share")
        exempt = spec.countries("exempt_origins", net, default=[])
        self.control = spec.text("control", default="location", choices=CONTROLS)
        self.buyers = buyer_slots(model, commodity, spec.countries("buyers", net))
        self.edges = np.flatnonzero(np.isin(net.edge_buyer, self.buyers))
        self.exempt = exempt
        self.worst: list[float] = []

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        net = model.net
        origin = dominant_origin(model, net.edge_seller[self.edges], self.stage, self.control)
        keep = (origin >= 0) & ~np.isin(origin, self.exempt)
        edges, origin = self.edges[keep], origin[keep]
        buyer = net.edge_buyer[edges]
        key = buyer * net.n_countries + origin  # one cap per (buyer, origin country)
        groups, inverse = np.unique(key, return_inverse=True)
        caps = self.max_share * request[groups // net.n_countries]
        self._caps = (edges, inverse, caps)
        return Effects(shared_caps=[(edges[inverse == g], caps[g]) for g in range(groups.size)])

    def after_clearing(self, model: ModelView) -> list[Payment]:
        """Record the largest share of a buyer's requirement bought from one origin this month
        (contract and spot flows; stockpile releases are not purchases)."""
        edges, inverse, caps = self._caps
        if edges.size == 0:
            self.worst.append(0.0)
            return []
        bought = model.cleared.spot_flow[edges] + model.cleared.contract_flow[edges]
        taken = np.bincount(inverse, weights=bought, minlength=caps.size)
        requirement = caps / self.max_share
        self.worst.append(float((taken / np.maximum(requirement, 1e-12)).max()))
        return []
