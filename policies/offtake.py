"""Joint procurement and offtake: long-term contracts served before the spot market.

Covered buyers (``buyers``: countries or blocs; all their buyer slots of the commodity) take
``tonnes_per_month`` from the ``producers`` (facility ids, volume shared by their 2024 output)
at ``price_usd_per_t``, or at the producer's market price × (1 + ``premium``) bounded by
``price_floor_usd_per_t`` / ``price_ceiling_usd_per_t``. Contracts are served before the spot
market, within the producer's stock. They are take-or-pay by default: each buyer takes its
share (split by 2024 use) whatever it needs that month; ``take_or_pay: false`` limits
deliveries to buyers' requests. Contracted volume is certain while the spot market absorbs a
shock (e.g. the 2025 DoD 100% offtake of MP's magnet plant, facts.md §3.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Contract, Effects, Payment, Policy, register
from critmin.policies.certification import OriginRule
from critmin.policies.select import buyer_slots, facility_slots, market_price
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


@register
class Offtake(Policy):
    """An offtake contract (or an Alliance joint-procurement contract)."""

    key = "offtake"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        commodity = spec.commodity("commodity", net)
        self.producers = facility_slots(model, spec, "producers", commodity)
        buyers = buyer_slots(model, np.array([commodity]), spec.countries("buyers", net))
        self.edges = [
            np.flatnonzero((net.edge_seller == s) & np.isin(net.edge_buyer, buyers)) for s in self.producers
        ]
        if any(e.size == 0 for e in self.edges):
            raise DataError(f"{spec.where}: a producer has no trade link to the covered buyers")
        self.tonnes = spec.number("tonnes_per_month", 0.0, 1e12)
        base = model.base_flow_of_slots(self.producers)
        self.split = (
            base / base.sum() if base.sum() > 0 else np.full(self.producers.size, 1 / self.producers.size)
        )
        self.fixed = (
            spec.number("price_usd_per_t", 0.0, 1e9, default=-1.0) if "price_usd_per_t" in spec else None
        )
        self.premium = spec.number("premium", -0.9, 10.0, default=0.0)
        self.floor = spec.number("price_floor_usd_per_t", 0.0, 1e9, default=0.0)
        self.ceiling = spec.number("price_ceiling_usd_per_t", 0.0, 1e12, default=1e12)
        self.origin = OriginRule(spec, "certified_origin", model, commodity)
        # take-or-pay (default): buyers take their share of the volume, split by their 2024 use
        self.take_or_pay = spec.flag("take_or_pay", default=True)
        self.shares = []
        for e in self.edges:
            use = model.base_flow_of_slots(net.edge_buyer[e])
            self.shares.append(use / use.sum() if use.sum() > 0 else np.full(e.size, 1 / e.size))
        self.delivered: list[float] = []

    def price(self, model: ModelView) -> np.ndarray:
        if self.fixed is not None:
            return np.full(self.producers.size, self.fixed)
        p = market_price(model, self.producers) * (1 + self.premium)
        return np.clip(p, self.floor, self.ceiling)

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        ok = self.origin.check(model, self.producers)
        prices = self.price(model)
        contracts = [
            Contract(
                edges=e,
                tonnes=self.tonnes * share,
                price=float(p),
                label=self.label,
                split=split if self.take_or_pay else None,
            )
            for e, share, p, eligible, split in zip(
                self.edges, self.split, prices, ok, self.shares, strict=True
            )
            if eligible
        ]
        return Effects(contracts=contracts)

    def derisked_nodes(self, model: ModelView) -> np.ndarray:
        return model.net.slot_node[self.producers]

    def after_clearing(self, model: ModelView) -> list[Payment]:
        contract_flow = model.cleared.contract_flow
        self.delivered.append(float(sum(contract_flow[e].sum() for e in self.edges)))
        return []
