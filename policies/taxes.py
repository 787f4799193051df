"""Export taxes and import tariffs, ad valorem and specific.

A wedge on the covered edges' delivered cost (DESIGN §3.1):
``p_del = (p·(1+ax) + sx + transport)·(1+am) + sm``. The exporter's government collects the
export tax, the importer's the tariff (booked as negative fiscal cost). An export tax lowers
the exporter's domestic price and raises the world price; a tariff raises the importer's price
and diverts trade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Payment, Policy, register
from critmin.policies.select import trade_edges
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


class _Tax(Policy):
    exporter_levies: bool

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        home = spec.countries("country", net)
        commodities = spec.commodities("commodity", net)
        others = spec.countries("partners", net, default=list(net.countries))
        origins, dests = (home, others) if self.exporter_levies else (others, home)
        self.edges = trade_edges(model, commodities, origins, dests)
        self.ad_valorem = spec.number("ad_valorem", 0.0, 10.0, default=0.0)
        self.specific = spec.number("specific_usd_per_t", 0.0, 1e9, default=0.0)
        # each home country collects on its own trade: the exporter's levy, the importer's tariff
        side = net.edge_seller if self.exporter_levies else net.edge_buyer
        self.collector = np.asarray(net.countries, dtype=object)[net.slot_country[side[self.edges]]]
        self.collectors = list(dict.fromkeys(self.collector)) or [net.countries[int(i)] for i in home]
        self.revenue: list[float] = []

    def after_clearing(self, model: ModelView) -> list[Payment]:
        net = model.net
        res, p_del = model.cleared.result, model.cleared.p_del
        flow = res.flow[self.edges]
        if self.exporter_levies:
            base = model.cleared.seller_price(model.slot_market(), net.edge_seller[self.edges])
        else:  # the tariff base is the delivered cost before the tariff
            base = (p_del[self.edges] - self._import_specific(model)) / (1 + self._import_ad_valorem(model))
        collected = flow * (base * self.ad_valorem + self.specific)
        self.revenue.append(float(collected.sum()))
        return [
            Payment(str(c), self.label, -float(collected[self.collector == c].sum())) for c in self.collectors
        ]

    def _import_specific(self, model: ModelView) -> np.ndarray:
        return model.wedges.import_specific[self.edges]

    def _import_ad_valorem(self, model: ModelView) -> np.ndarray:
        return model.wedges.import_ad_valorem[self.edges]


@register
class ExportTax(_Tax):
    """Tax on exports of ``commodity`` from ``country`` to ``partners`` (default all)."""

    key = "export_tax"
    exporter_levies = True

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        return Effects(
            wedges=[
                (self.edges, "export_ad_valorem", self.ad_valorem),
                (self.edges, "export_specific", self.specific),
            ]
        )


@register
class ImportTariff(_Tax):
    """Tariff on imports of ``commodity`` into ``country`` from ``partners`` (default all)."""

    key = "import_tariff"
    exporter_levies = False

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        return Effects(
            wedges=[
                (self.edges, "import_ad_valorem", self.ad_valorem),
                (self.edges, "import_specific", self.specific),
            ]
        )
