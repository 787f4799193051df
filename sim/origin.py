"""Origin tracing: every stock carries, per origin stage, its mix of countries.

A mix is stored compactly as ``[rows, K]`` over the *origin columns* of the world: the
(stage, country) pairs that can occur at all, i.e. where some plant stamps that stage (the
columns are sorted by stage, then country). A stage's columns of a row sum to 1 once the
material has passed that stage and are all zero before. Flows mix by mass; a process stamps its
stage with its own country (:class:`Stamp`). :class:`Origins` expands a mix to the
``[rows, stages, countries]`` view for callers that want it.

Only rows that receive material are touched, and only shipments that carry material are
gathered, so a month costs O(active edges × K), not O(edges × stages × countries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Origins:
    """The origin columns of a world: column k is (``stage[k]``, ``country[k]``)."""

    stage: np.ndarray
    country: np.ndarray
    n_stages: int
    n_countries: int

    @classmethod
    def from_stamps(cls, slot_stamp: np.ndarray, slot_country: np.ndarray, n_countries: int) -> Origins:
        """Every (stage, country) that a slot of the network stamps."""
        rows, stages = np.nonzero(slot_stamp)
        code = np.unique(stages * n_countries + slot_country[rows])
        return cls(code // n_countries, code % n_countries, slot_stamp.shape[1], n_countries)

    @property
    def size(self) -> int:
        return self.stage.size

    def column(self, stage: np.ndarray, country: np.ndarray) -> np.ndarray:
        """Column index of each (stage, country) pair (all must be origin columns)."""
        code = self.stage * self.n_countries + self.country
        return np.searchsorted(code, np.asarray(stage) * self.n_countries + np.asarray(country))

    def expand(self, mix: np.ndarray) -> np.ndarray:
        """``[rows, stages, countries]`` view of a compact ``[rows, K]`` mix (a copy)."""
        out = np.zeros((mix.shape[0], self.n_stages, self.n_countries), dtype=mix.dtype)
        out[:, self.stage, self.country] = mix
        return out

    def stage_share(self, mix: np.ndarray, stage: int) -> np.ndarray:
        """``[rows, countries]``: the country mix of one stage."""
        out = np.zeros((mix.shape[0], self.n_countries), dtype=mix.dtype)
        cols = np.flatnonzero(self.stage == stage)
        out[:, self.country[cols]] = mix[:, cols]
        return out


class Stamp:
    """What a process does to the mix of the material it makes, for a fixed set of output slots:
    stages not yet happened are emptied, the process's own stage is set to its country."""

    def __init__(
        self, origins: Origins, slot_stamp: np.ndarray, slot_clear: np.ndarray, slot_country: np.ndarray
    ) -> None:
        reset = (slot_stamp | slot_clear)[:, origins.stage]  # [slots, K]
        self.keep = (~reset).astype(float)
        rows, stages = np.nonzero(slot_stamp)
        self.rows = rows
        self.cols = origins.column(stages, slot_country[rows])

    def __call__(self, mix: np.ndarray) -> np.ndarray:
        """The stamped copy of ``mix`` (one row per slot of this stamp)."""
        out = mix * self.keep
        out[self.rows, self.cols] = 1.0
        return out


def _segments(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order that sorts ``group``, the start of each group's run in it, and the groups."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return order, starts, g[starts]


@dataclass(frozen=True)
class Shipments:
    """Items that carry mass (e.g. the month's trade edges with flow): their tonnes and, per
    origin column, the tonnes of each origin they carry. Built once, summed by any grouping."""

    items: np.ndarray  # indices of the items with mass
    tonnes: np.ndarray
    mass: np.ndarray  # [len(items), K]

    @classmethod
    def of(cls, source: np.ndarray, weight: np.ndarray, mix: np.ndarray) -> Shipments:
        """Item i carries ``weight[i]`` t with the mix of row ``source[i]`` of ``mix``."""
        items = np.flatnonzero(weight > 0)
        w = weight[items]
        return cls(items, w, mix[source[items]] * w[:, None])

    def by(self, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(groups that received mass, ascending; their tonnes; their tonnes by origin) for the
        grouping ``group`` (per item of the full index)."""
        if not self.items.size:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, self.mass.shape[1]))
        order, starts, received = _segments(group[self.items])
        return (
            received,
            np.add.reduceat(self.tonnes[order], starts),
            np.add.reduceat(self.mass[order], starts, axis=0),
        )


def group_mix(
    group: np.ndarray, source: np.ndarray, weight: np.ndarray, mix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mass-weighted mix per group of what flows in: item i brings ``weight[i]`` t with the mix of
    row ``source[i]`` of ``mix`` into group ``group[i]``. Items with no weight are skipped.

    Returns (groups that received mass, ascending; their mass; their mix [len, K]).
    """
    received, mass, added = Shipments.of(source, weight, mix).by(group)
    return received, mass, added / mass[:, None]


def node_mix(
    slot_node: np.ndarray, inputs: np.ndarray, weight: np.ndarray, mix: np.ndarray, n_nodes: int
) -> np.ndarray:
    """Mass-weighted mix of each node's input slots (what its outputs inherit); zero rows for
    nodes that used nothing. ``weight`` is per slot."""
    nodes, _, per_node = group_mix(slot_node[inputs], inputs, weight[inputs], mix)
    out = np.zeros((n_nodes, mix.shape[1]))
    out[nodes] = per_node
    return out


def mix_in(
    stock: np.ndarray, mix: np.ndarray, rows: np.ndarray, amount: np.ndarray, incoming: np.ndarray
) -> None:
    """Add ``amount[i]`` t carrying ``incoming[i]`` to row ``rows[i]`` (rows unique), in place.

    ``stock`` is the rows' stock *before* the additions; rows receiving nothing keep their mix.
    """
    touched = amount > 0
    if not touched.any():
        return
    r, a = rows[touched], amount[touched]
    old = stock[r]
    mix[r] = (mix[r] * old[:, None] + incoming[touched] * a[:, None]) / (old + a)[:, None]


def receive(stock: np.ndarray, mix: np.ndarray, into: np.ndarray, shipments: Shipments) -> None:
    """Rows ``into[i]`` of ``stock``/``mix`` receive what item i of ``shipments`` carries (several
    items may go to the same row), in place."""
    rows, mass, added = shipments.by(into)
    if rows.size:
        old = stock[rows]
        mix[rows] = (mix[rows] * old[:, None] + added) / (old + mass)[:, None]
