"""The month's modifiers: what active scenario events (:mod:`critmin.policies.events`) and
instruments impose on one month (capacity and demand factors, edge caps, shared caps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from critmin.sim.network import Network


@dataclass
class Modifiers:
    """What active events and policies impose on one step."""

    capacity_factor: np.ndarray  # per node
    demand_factor: np.ndarray  # per node
    edge_cap: np.ndarray  # per edge, t this month (inf = none)
    activity_cap: np.ndarray  # per node, activity units this month (inf = none)
    group_edges: list[np.ndarray] = field(default_factory=list)  # shared caps (an edge may be in several)
    group_cap: list[float] = field(default_factory=list)

    @classmethod
    def neutral(cls, net: Network) -> Modifiers:
        n = len(net.node_id)
        return cls(np.ones(n), np.ones(n), np.full(net.edge_seller.size, np.inf), np.full(n, np.inf))

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
