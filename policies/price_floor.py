"""Price floor as a contract for difference (CfD): the treasury pays floor − benchmark price.

Covered producers receive at least the floor on covered volume: the government pays the gap
``max(floor − p, 0)`` per covered tonne, up to ``max_tonnes_per_month``, where ``p`` is the
*benchmark*: by default the producer's own market price; with ``benchmark_market: CHN`` the
seller price of the commodity in China's market (the DoD–MP Materials floor is reported against
the China NdPr oxide price, facts.md §2g). With an ``upside_share`` the producer pays the
government that share of ``p − floor`` per covered tonne when the benchmark is above the floor
(the DoD's 30% upside), so the month's net payment is

    payment / t = floor − p                      if p < floor
                = −upside_share · (p − floor)     if p ≥ floor

Covered volume (``coverage``) is the tonnes ``sold`` in the month (default) or, for a floor on
"output sold or stockpiled", the month's ``produced`` tonnes (sold + the rise in the plant's own
stock of the product). Producers plan on the floor (they do not net out the upside share), so
supply is kept up and the market price is lower than without; the fiscal cost is Σ payment/t ×
volume, booked monthly (DESIGN §3.2; the DoD–MP replay is ``configs/policy/us_dod_mp_2025.yaml``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.certification import OriginRule
from critmin.policies.select import facility_slots, seller_slots
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


COVERAGE = ("sold", "produced")


def cfd_payment_per_t(floor: float, benchmark: np.ndarray | float, upside_share: float) -> np.ndarray:
    """Government payment per covered tonne (USD; < 0: the producer pays the government)."""
    p = np.asarray(benchmark, dtype=float)
    return np.where(p < floor, floor - p, -upside_share * (p - floor))


@register
class PriceFloor(Policy):
    """Keys: ``country`` (the paying government; or several countries or a bloc, each paying the
    floor on its own producers: a bloc's joint floor), ``commodity``, ``floor_usd_per_t``,
    ``producers`` (facility ids, with one paying country; default the countries' producers of
    the commodity),
    ``max_tonnes_per_month``, ``certified_origin``, ``benchmark_market`` (a country code: the
    market whose price the gap is measured against; default each producer's own market),
    ``upside_share`` (share of the price above the floor paid back to the government; default
    0), ``coverage`` (``sold`` or ``produced``: output sold or stockpiled; default ``sold``)."""

    key = "price_floor"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        country = spec.countries("country", net)
        commodity = spec.commodity("commodity", net)
        self.floor = spec.number("floor_usd_per_t", 0.0, 1e9)
        if "producers" in spec:
            if country.size != 1:
                raise DataError(f"{spec.where}.country: a floor on named producers has one paying country")
            self.slots = facility_slots(model, spec, "producers", commodity)
            self.payer = np.full(self.slots.size, net.countries[int(country[0])], dtype=object)
        else:
            self.slots = seller_slots(model, np.array([commodity]), country)
            self.payer = np.asarray(net.countries, dtype=object)[net.slot_country[self.slots]]
        # a floor with no producers yet still shows in its payers' ledgers (at 0)
        self.payers = list(dict.fromkeys(self.payer)) or [net.countries[int(i)] for i in country]
        self.cap = spec.number("max_tonnes_per_month", 0.0, 1e12, default=1e12)
        self.origin = OriginRule(spec, "certified_origin", model, commodity)
        self.commodity = commodity
        self.benchmark_market: str | None = None
        self.benchmark: int | None = None  # flat market index of the benchmark, None = own market
        if "benchmark_market" in spec:
            c = spec.country("benchmark_market", net)
            self.benchmark_market = net.countries[c]
            self.benchmark = int(net.market_index(np.array([commodity]), np.array([c]))[0])
        self.upside_share = spec.share("upside_share", default=0.0)
        self.coverage = str(spec.raw("coverage", default="sold"))
        if self.coverage not in COVERAGE:
            raise DataError(f"{spec.where}.coverage: expected one of {list(COVERAGE)}, got {self.coverage!r}")
        self.opening_stock = np.zeros(self.slots.size)
        self.step = -1
        # per month: step, volume (t), benchmark price, gap (floor − price, ≥ 0), payment (USD),
        # usd_per_kg (payment / covered kg)
        self.history: list[dict[str, float]] = []

    def on_step(self, model: ModelView, t: int) -> Effects:
        self.step = t
        self.opening_stock = model.state.stock[self.slots].copy()  # before this month's trading
        eligible = self.slots[self.origin.check(model, self.slots)]
        return Effects(floors=[(eligible, self.floor)])

    def derisked_nodes(self, model: ModelView) -> np.ndarray:
        return model.net.slot_node[self.slots]

    def after_clearing(self, model: ModelView) -> list[Payment]:
        res = model.cleared.result
        eligible = self.origin.check(model, self.slots)
        sold = res.sold[self.slots]
        if self.coverage == "produced":  # sold + rise of own stock = this month's output
            sold = np.maximum(sold + model.state.stock[self.slots] - self.opening_stock, 0.0)
        covered = np.where(eligible, sold, 0.0)
        scale = min(1.0, self.cap / covered.sum()) if covered.sum() > 0 else 0.0
        volume = covered * scale
        if self.benchmark is None:
            price = model.cleared.seller_price(model.slot_market(), self.slots)
        else:
            price = np.full(self.slots.size, float(np.exp(model.cleared.log_p[self.benchmark])))
        per_t = cfd_payment_per_t(self.floor, price, self.upside_share)
        payment = float((per_t * volume).sum())
        tonnes = float(volume.sum())
        self.history.append(
            {
                "step": float(self.step),
                "volume": tonnes,
                "payment": payment,
                "price": float(price.mean()),
                "gap": float(np.maximum(self.floor - price, 0.0).mean()),
                "usd_per_kg": payment / tonnes / 1000 if tonnes > 0 else float("nan"),
            }
        )
        return [
            Payment(str(payer), self.label, float((per_t * volume)[self.payer == payer].sum()))
            for payer in self.payers
        ]
