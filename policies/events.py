"""Scenario events: dated changes that fire at their month (DESIGN §3 step 1), entries of the
same registry as the instruments (:mod:`critmin.policies.base`), of kind ``"event"``.

An event is a config mapping in ``scenario.events`` or ``shock.events`` with a ``type`` (its
registry key), a ``start`` month and an optional ``end`` month (exclusive; open-ended when
absent). Each type validates its own keys against the network at load time and, while active,
returns its effect on the month's :class:`~critmin.sim.events.Modifiers` (:meth:`Policy.modify`).
Instruments write into the same modifiers through their other hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.policies.base import Effects, Policy, register
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


class Event(Policy):
    """Base: a scenario event, a dated change with a required ``start`` month (``end`` optional,
    exclusive). Subclasses read their keys in ``__init__`` and act through :meth:`modify`."""

    kind = "event"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        self.where = spec.where
        spec.raw("type")
        self.label = str(spec.raw("name", self.key))
        self.first = spec.month("start", model.start)
        last = spec.month("end", model.start, default=None)
        if last is not None and last <= self.first:
            raise DataError(
                f"{spec.where}.end: expected a month after start {spec.d['start']}, got {spec.d['end']!r}"
            )
        self.last = 10**9 if last is None else last


@register
class FacilityOutage(Event):
    """A facility runs at ``capacity_factor`` of its capacity (0 = shut)."""

    key = "facility_outage"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        name = spec.text("facility")
        if name not in net.node_id:
            raise DataError(f"{spec.where}.facility: unknown facility {name!r}")
        self.node = net.node_id.index(name)
        self.factor = spec.share("capacity_factor", default=0.0)

    def modify(self, model: ModelView, t: int) -> Effects:
        return Effects(capacity_factor=[(np.array([self.node]), self.factor)])


@register
class DemandShock(Event):
    """Demand multiplied by ``factor`` for matching demand centres (country/end use/commodity)."""

    key = "demand_shock"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        self.factor = spec.number("factor", 0.0, 100.0)
        mask = net.is_demand.copy()
        if "country" in spec:
            mask &= np.isin(net.node_country, spec.countries("country", net))
        if "end_use" in spec:
            uses = spec.raw("end_use")
            uses = [uses] if isinstance(uses, str) else list(uses)
            for u in uses:
                if u not in net.end_uses:
                    raise DataError(
                        f"{spec.where}.end_use: unknown end use {u!r}; expected one of {net.end_uses}"
                    )
            mask &= np.isin(net.end_use, [net.end_uses.index(u) for u in uses])
        if "commodity" in spec:
            mask &= np.isin(
                net.slot_commodity[np.maximum(net.consume_slot, 0)], spec.commodities("commodity", net)
            )
        self.nodes = np.flatnonzero(mask)
        if self.nodes.size == 0:
            raise DataError(f"{spec.where}: matches no demand centre")

    def modify(self, model: ModelView, t: int) -> Effects:
        return Effects(demand_factor=[(self.nodes, self.factor)])


@register
class ExportCap(Event):
    """A country's exports of some commodities to some destinations capped at
    ``max_tonnes_per_month`` in total (0 = ban). Destinations default to every other country."""

    key = "export_cap"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        net = model.net
        exporter = spec.countries("country", net)
        coms = spec.commodities("commodity", net)
        dest = spec.countries("destinations", net, default=list(net.countries))
        self.cap = spec.number("max_tonnes_per_month", 0.0, np.inf, default=0.0)
        self.edges = np.flatnonzero(
            np.isin(net.edge_from, exporter)
            & np.isin(net.edge_to, dest)
            & (net.edge_from != net.edge_to)
            & np.isin(net.edge_commodity, coms)
        )

    def modify(self, model: ModelView, t: int) -> Effects:
        if self.cap == 0:
            return Effects(edge_caps=[(self.edges, 0.0)])
        return Effects(shared_caps=[(self.edges, self.cap)])
