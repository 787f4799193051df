"""Scenario events: dated changes that fire at their month (DESIGN §3 step 1).

An event is a config mapping with a ``type`` (a key of :data:`EVENT_TYPES`), a ``start``
month and an optional ``end`` month (exclusive; open-ended when absent). Each type is a small
class that validates its own keys against the network at load time and, while active, writes
into the step's :class:`Modifiers`. The policy instruments use the same rail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig, OmegaConf

from critmin.sim.config import parse_month
from critmin.sim.network import Network
from critmin.sim.world import BLOCS, DataError


@dataclass
class Modifiers:
    """What active events and policies impose on one step."""

    capacity_factor: np.ndarray  # per node
    demand_factor: np.ndarray  # per node
    edge_cap: np.ndarray  # per edge, t this month (inf = none)
    cap_group: np.ndarray  # per edge, group index or -1
    group_cap: list[float] = field(default_factory=list)

    @classmethod
    def neutral(cls, net: Network) -> Modifiers:
        n, e = net.node_id.__len__(), net.edge_seller.size
        return cls(np.ones(n), np.ones(n), np.full(e, np.inf), np.full(e, -1, dtype=np.int64))

    def add_group(self, edges: np.ndarray, cap: float) -> None:
        """Edges already in a group keep the tighter of the two caps via their own edge cap."""
        g = len(self.group_cap)
        free = edges[self.cap_group[edges] < 0]
        self.cap_group[free] = g
        self.group_cap.append(cap)


def month_index(value: str, start: tuple[int, int], key: str) -> int:
    y, m = parse_month(value, key)
    return (y - start[0]) * 12 + (m - start[1])


def _require(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise DataError(f"{where}: missing key '{key}'")
    return d[key]


def _number(d: dict, key: str, where: str, lo: float, hi: float, default: float | None = None) -> float:
    value = d.get(key, default) if default is not None else _require(d, key, where)
    if not isinstance(value, int | float) or not lo <= value <= hi:
        raise DataError(f"{where}.{key}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _countries(values: Any, net: Network, where: str) -> np.ndarray:
    """Country codes or bloc names -> country indices."""
    if isinstance(values, str):
        values = [values]
    out: list[int] = []
    for v in values:
        if v in BLOCS:
            out.extend(np.flatnonzero(net.blocs == v).tolist())
        else:
            out.append(net.country_index(v, where))
    return np.array(sorted(set(out)), dtype=np.int64)


def _commodities(values: Any, net: Network, where: str) -> np.ndarray:
    if isinstance(values, str):
        values = [values]
    return np.array([net.commodity_index(v, where) for v in values], dtype=np.int64)


class Event:
    """Base: a dated change. Subclasses validate in ``__init__`` and act in ``apply``."""

    type: ClassVar[str]

    def __init__(self, spec: dict, net: Network, start: tuple[int, int], where: str) -> None:
        self.where = where
        self.first = month_index(_require(spec, "start", where), start, f"{where}.start")
        self.last = month_index(spec["end"], start, f"{where}.end") if spec.get("end") else 10**9
        if self.last <= self.first:
            raise DataError(f"{where}.end: expected a month after start {spec['start']}, got {spec['end']!r}")

    def active(self, t: int) -> bool:
        return self.first <= t < self.last

    def apply(self, mods: Modifiers, t: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class FacilityOutage(Event):
    """A facility runs at ``capacity_factor`` of its capacity (0 = shut)."""

    type = "facility_outage"

    def __init__(self, spec: dict, net: Network, start: tuple[int, int], where: str) -> None:
        super().__init__(spec, net, start, where)
        name = _require(spec, "facility", where)
        if name not in net.node_id:
            raise DataError(f"{where}.facility: unknown facility {name!r}")
        self.node = net.node_id.index(name)
        self.factor = _number(spec, "capacity_factor", where, 0.0, 1.0, default=0.0)

    def apply(self, mods: Modifiers, t: int) -> None:
        mods.capacity_factor[self.node] *= self.factor


class DemandShock(Event):
    """Demand multiplied by ``factor`` for matching demand centres (country/end use/commodity)."""

    type = "demand_shock"

    def __init__(self, spec: dict, net: Network, start: tuple[int, int], where: str) -> None:
        super().__init__(spec, net, start, where)
        self.factor = _number(spec, "factor", where, 0.0, 100.0)
        mask = ~net.is_facility
        if "country" in spec:
            mask &= np.isin(net.node_country, _countries(spec["country"], net, f"{where}.country"))
        if "end_use" in spec:
            uses = [spec["end_use"]] if isinstance(spec["end_use"], str) else list(spec["end_use"])
            for u in uses:
                if u not in net.end_uses:
                    raise DataError(f"{where}.end_use: unknown end use {u!r}; expected one of {net.end_uses}")
            mask &= np.isin(net.end_use, [net.end_uses.index(u) for u in uses])
        if "commodity" in spec:
            coms = _commodities(spec["commodity"], net, f"{where}.commodity")
            mask &= np.isin(net.slot_commodity[np.maximum(net.consume_slot, 0)], coms)
        self.nodes = np.flatnonzero(mask)
        if self.nodes.size == 0:
            raise DataError(f"{where}: matches no demand centre")

    def apply(self, mods: Modifiers, t: int) -> None:
        mods.demand_factor[self.nodes] *= self.factor


class ExportCap(Event):
    """A country's exports of some commodities to some destinations capped at
    ``max_tonnes_per_month`` in total (0 = ban). Destinations default to every other country."""

    type = "export_cap"

    def __init__(self, spec: dict, net: Network, start: tuple[int, int], where: str) -> None:
        super().__init__(spec, net, start, where)
        exporter = net.country_index(_require(spec, "country", where), f"{where}.country")
        coms = _commodities(_require(spec, "commodity", where), net, f"{where}.commodity")
        if "destinations" in spec:
            dest = _countries(spec["destinations"], net, f"{where}.destinations")
        else:
            dest = np.arange(net.n_countries)
        dest = dest[dest != exporter]
        self.cap = _number(spec, "max_tonnes_per_month", where, 0.0, np.inf, default=0.0)
        self.edges = np.flatnonzero(
            (net.edge_from == exporter) & np.isin(net.edge_to, dest) & np.isin(net.edge_commodity, coms)
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
    for i, spec in enumerate(specs or []):
        where = f"{source}[{i}]"
        if isinstance(spec, DictConfig):
            spec = OmegaConf.to_container(spec, resolve=True)
        if not isinstance(spec, dict):
            raise DataError(f"{where}: expected a mapping with 'type' and 'start', got {spec!r}")
        kind = spec.get("type")
        if kind not in EVENT_TYPES:
            raise DataError(f"{where}.type: expected one of {sorted(EVENT_TYPES)}, got {kind!r}")
        events.append(EVENT_TYPES[kind](dict(spec), net, start, where))
    return events
