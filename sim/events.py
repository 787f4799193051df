"""Scenario events: dated changes that fire at their month (DESIGN §3 step 1).

An event is a config mapping with a ``type`` (a key of :data:`EVENT_TYPES`), a ``start``
month and an optional ``end`` month (exclusive; open-ended when absent). Each type is a small
class that validates its own keys against the network at load time and, while active, writes
into the step's :class:`Modifiers`. Policy instruments write into the same modifiers through
their hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from critmin.sim.network import Network
from critmin.sim.spec import Spec
from critmin.sim.world import DataError


@dataclass
class Modifiers:
    """What active events and policies impose on one step."""

    capacity_factor: np.ndarray  # per node
    demand_factor: np.ndarray  # per node
    edge_cap: np.ndarray  # per edge, t this month (inf = none)
    group_edges: list[np.ndarray] = field(default_factory=list)  # shared caps (an edge may be in several)
    group_cap: list[float] = field(default_factory=list)

    @classmethod
    def neutral(cls, net: Network) -> Modifiers:
        return cls(
            np.ones(len(net.node_id)), np.ones(len(net.node_id)), np.full(net.edge_seller.size, np.inf)
        )

    def add_group(self, edges: np.ndarray, cap: float) -> None:
        """The edges' total flow this step may not exceed ``cap`` tonnes."""
        if edges.size:
            self.group_edges.append(np.asarray(edges, dtype=np.int64))
            self.group_cap.append(float(cap))

    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(edge, group) membership pairs and the caps, for :func:`critmin.sim.market.clear`."""
        if not self.group_edges:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        pe = np.concatenate(self.group_edges)
        pg = np.repeat(np.arange(len(self.group_edges)), [g.size for g in self.group_edges])
        return pe, pg, np.asarray(self.group_cap, float)


class Event:
    """Base: a dated change. Subclasses read their keys in ``__init__`` and act in ``apply``."""

    type: ClassVar[str]

    def __init__(self, spec: Spec, net: Network, start: tuple[int, int]) -> None:
        self.where = spec.where
        spec.raw("type")
        self.first = spec.month("start", start)
        self.last = spec.month("end", start, default=None)
        if self.last is None:
            self.last = 10**9
        elif self.last <= self.first:
            raise DataError(
                f"{spec.where}.end: expected a month after start {spec.d['start']}, got {spec.d['end']!r}"
            )

    def active(self, t: int) -> bool:
        return self.first <= t < self.last

    def apply(self, mods: Modifiers, t: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class FacilityOutage(Event):
    """A facility runs at ``capacity_factor`` of its capacity (0 = shut)."""

    type = "facility_outage"

    def __init__(self, spec: Spec, net: Network, start: tuple[int, int]) -> None:
        super().__init__(spec, net, start)
        name = spec.text("facility")
        if name not in net.node_id:
            raise DataError(f"{spec.where}.facility: unknown facility {name!r}")
        self.node = net.node_id.index(name)
        self.factor = spec.share("capacity_factor", default=0.0)

    def apply(self, mods: Modifiers, t: int) -> None:
        mods.capacity_factor[self.node] *= self.factor


class DemandShock(Event):
    """Demand multiplied by ``factor`` for matching demand centres (country/end use/commodity)."""

    type = "demand_shock"

    def __init__(self, spec: Spec, net: Network, start: tuple[int, int]) -> None:
        super().__init__(spec, net, start)
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

    def apply(self, mods: Modifiers, t: int) -> None:
        mods.demand_factor[self.nodes] *= self.factor


class ExportCap(Event):
    """A country's exports of some commodities to some destinations capped at
    ``max_tonnes_per_month`` in total (0 = ban). Destinations default to every other country."""

    type = "export_cap"

    def __init__(self, spec: Spec, net: Network, start: tuple[int, int]) -> None:
        super().__init__(spec, net, start)
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

    def apply(self, mods: Modifiers, t: int) -> None:
        if self.cap == 0:
            mods.edge_cap[self.edges] = 0.0
        else:
            mods.add_group(self.edges, self.cap)


EVENT_TYPES: dict[str, type[Event]] = {c.type: c for c in (FacilityOutage, DemandShock, ExportCap)}


def load_events(specs: list, net: Network, start: tuple[int, int], source: str) -> list[Event]:
    """Validate a list of event mappings; errors name ``source`` and the list position."""
    events = []
    for i, raw in enumerate(specs or []):
        spec = Spec(raw, f"{source}[{i}]")
        kind = spec.d.get("type")
        if kind not in EVENT_TYPES:
            raise DataError(f"{spec.where}.type: expected one of {sorted(EVENT_TYPES)}, got {kind!r}")
        events.append(EVENT_TYPES[kind](spec, net, start))
        spec.done()
    return events
