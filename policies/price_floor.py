"""Price floor as a contract for difference (CfD): the treasury pays floor − market price.

Covered producers receive at least the floor on covered volume: the government pays the gap
``max(floor − p, 0)`` per tonne sold, up to ``max_tonnes_per_month``. Producers plan on the
floor, so supply is kept up and the market price is lower than without; the fiscal cost is
Σ gap × volume, booked monthly (DESIGN §3.2; e.g. the DoD–MP Materials $110/kg NdPr floor,
facts.md §3.9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.certification import OriginRule
from critmin.policies.select import facility_slots, seller_slots
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


@register
class PriceFloor(Policy):
    """Keys: ``country`` (the paying government), ``commodity``, ``floor_usd_per_t``,
    ``producers`` (facility ids; default the country's producers of the commodity),
    ``max_tonnes_per_month``, ``certified_origin``."""

    key = "price_floor"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        country = np.array([spec.country("country", net)])
        self.government = net.countries[int(country[0])]
        commodity = spec.commodity("commodity", net)
        self.floor = spec.number("floor_usd_per_t", 0.0, 1e9)
        if "producers" in spec:
            self.slots = facility_slots(model, spec, "producers", commodity)
        else:
            self.slots = seller_slots(model, np.array([commodity]), country)
        self.cap = spec.number("max_tonnes_per_month", 0.0, 1e12, default=1e12)
        self.origin = OriginRule(spec, "certified_origin", model, commodity)
        self.history: list[dict[str, float]] = []  # per month: volume, market price, gap, payment

    def on_step(self, model: ModelView, t: int) -> Effects:
        eligible = self.slots[self.origin.check(model, self.slots)]
        return Effects(floors=[(eligible, self.floor)])

    def derisked_nodes(self, model: ModelView) -> np.ndarray:
        return model.net.slot_node[self.slots]

    def after_clearing(self, model: ModelView) -> list[Payment]:
        res = model.cleared.result
        eligible = self.origin.check(model, self.slots)
        sold = np.where(eligible, res.sold[self.slots], 0.0)
        scale = min(1.0, self.cap / sold.sum()) if sold.sum() > 0 else 0.0
        volume = sold * scale
        price = model.cleared.seller_price(model.slot_market(), self.slots)
        gap = np.maximum(self.floor - price, 0.0)
        payment = float((gap * volume).sum())
        self.history.append(
            {
                "volume": float(volume.sum()),
                "payment": payment,
                "price": float(price.mean()),
                "gap": float(gap.mean()),
            }
        )
        return [Payment(self.government, self.label, payment)]
