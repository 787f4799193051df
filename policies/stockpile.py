"""Government stockpiles: build to a target, release on a price or shortfall trigger.

Each holder country gets a stockpile node in the supply graph: it buys from every seller of the
commodity and sells, at its country's market price, to buyers in the holder countries. It buys while the price
is at most ``buy_below_price_ratio`` × its pre-shock reference (the mean of months 4-15 back) and the budget lasts, up to
``target_months`` of the holders' consumption; it releases ``release_share_per_month`` of its
stock while the buyers' price is at least ``release_price_ratio`` × that reference or the market
left ``release_unmet_share`` of their purchase requests unserved. With several holders (``holders: [{country, share}]``)
the stockpile is coordinated: one trigger, and releases are shared by the key (JOGMEC targets
60 days, Korea 60-100 days; facts.md §3.8). Purchases are not consumption; proceeds of
releases are booked as receipts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.sim.network import STORE
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView
    from critmin.sim.world import World


def _holders(spec: Spec, countries: set[str]) -> list[tuple[str, float]]:
    if "holders" in spec:
        out = []
        for i, h in enumerate(spec.raw("holders")):
            sub = Spec(h, f"{spec.where}.holders[{i}]")
            code = sub.text("country")
            if code not in countries:
                raise DataError(
                    f"{sub.where}.country: unknown country {code!r}; expected one of {sorted(countries)}"
                )
            out.append((code, sub.share("share")))
            sub.done()
        total = sum(s for _, s in out)
        if abs(total - 1.0) > 1e-6:
            raise DataError(f"{spec.where}.holders: shares must sum to 1, got {total}")
        return out
    code = spec.text("country")
    if code not in countries:
        raise DataError(
            f"{spec.where}.country: unknown country {code!r}; expected one of {sorted(countries)}"
        )
    return [(code, 1.0)]


@register
class Stockpile(Policy):
    """A (possibly coordinated) strategic stockpile of one commodity."""

    key = "stockpile"

    @classmethod
    def stores(cls, spec: Spec, world: World) -> list[tuple[str, str, str]]:
        commodity = spec.text("commodity")
        label = str(spec.d.get("name", cls.key))
        return [
            (f"stockpile:{label}:{c}:{commodity}", c, commodity)
            for c, _ in _holders(spec, set(world.countries["country"]))
        ]

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        self.commodity = spec.commodity("commodity", net)
        holders = _holders(spec, set(net.countries))
        self.countries = [c for c, _ in holders]
        self.key_share = np.array([s for _, s in holders])
        ids = [f"stockpile:{self.label}:{c}:{net.commodities[self.commodity]}" for c in self.countries]
        nodes = [net.node_id.index(i) for i in ids]
        self.slots = np.array(
            [int(np.flatnonzero((net.slot_node == n) & (net.slot_role == STORE))[0]) for n in nodes]
        )
        cidx = [net.countries.index(c) for c in self.countries]
        # the holders' demand centres for this commodity: what "months of consumption" refers to
        d = model.demand_nodes
        cons = net.slot_commodity[net.consume_slot[d]] == self.commodity
        self.demand = [d[cons & (net.node_country[d] == k)] for k in cidx]
        monthly = np.array([net.demand0[x].sum() for x in self.demand])
        if (monthly <= 0).any():
            bad = [c for c, m in zip(self.countries, monthly, strict=True) if m <= 0]
            raise DataError(f"{spec.where}: holders {bad} consume no {net.commodities[self.commodity]!r}")
        self.target = spec.number("target_months", 0.0, 120.0) * monthly  # each holder's own consumption
        initial = spec.number("initial_months", 0.0, 120.0, default=0.0)
        self.first_fill = initial * monthly
        self.max_buy = spec.share("max_buy_share_per_month", default=0.1)
        self.buy_ratio = spec.number("buy_below_price_ratio", 0.0, 100.0, default=1.05)
        self.budget = spec.number("budget_usd", 0.0, 1e13, default=1e13)
        self.release_ratio = spec.number("release_price_ratio", 1.0, 100.0, default=1.3)
        self.release_unmet = spec.share("release_unmet_share", default=0.05)
        self.release_share = spec.share("release_share_per_month", default=0.25)
        ratio = spec.raw("release_price_ratio_to_reference", default=None)
        self.release_price = (
            None if ratio is None else spec.number("release_price_ratio_to_reference", 0.0, 10.0)
        )
        self.episode_stock = 0.0  # stock when the current release episode began
        p0 = net.price0[self.commodity]
        # trailing prices, newest first; the reference is the mean of months 4-15 back, so a
        # fast rise (a shock) is measured against the level before it
        self.history_price = [np.full(15, p0) for _ in self.countries]
        self.spent = 0.0
        self.releasing = False
        self.log: list[dict[str, float]] = []

    def initial_stocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.slots, self.first_fill)]

    def _buyer_price(self, model: ModelView, k: int) -> float:
        """Marginal delivered price the holder's manufacturers pay (demand-weighted)."""
        slots = model.net.consume_slot[self.demand[k]]
        w = model.net.demand0[self.demand[k]]
        return float((model.state.paid[slots] * w).sum() / w.sum())

    def _unmet(self, model: ModelView, k: int) -> float:
        """Share of the holder's manufacturers' purchase requests the market left unserved last
        month: the shortfall signal (consumption itself is buffered by firms' safety stocks)."""
        slots = model.net.consume_slot[self.demand[k]]
        want = model.last_request[slots].sum()
        return float(model.cleared.result.unmet[slots].sum() / want) if want > 0 else 0.0

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        effects = Effects()
        prices = np.array([self._buyer_price(model, k) for k in range(len(self.countries))])
        reference = np.array([h[3:].mean() for h in self.history_price])
        unmet = max(self._unmet(model, k) for k in range(len(self.countries))) if model.state.t > 0 else 0.0
        # one trigger for the coordinated stockpile: any holder under stress
        self.releasing = bool((prices >= self.release_ratio * reference).any() or unmet >= self.release_unmet)
        stock = model.state.stock[self.slots]
        if self.releasing:
            if self.episode_stock == 0.0:  # linear drawdown: a share of the stock at the trigger
                self.episode_stock = float(stock.sum())
            total = self.release_share * self.episode_stock
            effects.releases.append((self.slots, np.minimum(stock, total * self.key_share)))
        else:
            self.episode_stock = 0.0
        if not self.releasing and self.spent < self.budget:
            cheap = prices <= self.buy_ratio * reference
            want = np.minimum(self.max_buy * self.target, np.maximum(self.target - stock, 0.0))
            effects.purchases.append((self.slots, np.where(cheap, want, 0.0)))
        # releases sell at the holders' buyers' price at the margin, or at the pre-shock
        # reference × release_price_ratio_to_reference when set (a price-damping release)
        price = prices if self.release_price is None else self.release_price * reference
        effects.release_prices.append((self.slots, price))
        for k, p in enumerate(prices):  # trailing 12-month reference, updated after use
            self.history_price[k] = np.roll(self.history_price[k], 1)
            self.history_price[k][0] = p
        return effects

    def after_clearing(self, model: ModelView) -> list[Payment]:
        net = model.net
        res, p_paid = model.cleared.result, model.cleared.p_paid
        n = net.n_slots
        cost = np.bincount(net.edge_buyer, weights=res.flow * p_paid, minlength=n)[self.slots]
        proceeds = np.bincount(
            net.edge_seller, weights=res.flow * model.store_price[net.edge_seller], minlength=n
        )[self.slots]
        self.spent += float(cost.sum())
        payments = [
            Payment(c, self.label, float(cost[k] - proceeds[k])) for k, c in enumerate(self.countries)
        ]
        self.log.append(
            {
                "bought": float(np.bincount(net.edge_buyer, weights=res.flow, minlength=n)[self.slots].sum()),
                "released": float(res.sold[self.slots].sum()),
                "stock": float(model.state.stock[self.slots].sum()),
                "releasing": float(self.releasing),
            }
        )
        return payments
