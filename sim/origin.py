"""Origin tracing: every stock carries, per origin stage, its mix of countries and plant owners.

A mix is stored compactly as ``[rows, K]`` over the *origin columns* of the world: the
(stage, country, owner) triples that can occur at all, i.e. where some plant stamps that stage
(``owner``: the country of the plant's controlling owner, facilities.csv column ``owner``). The
columns are sorted by stage, then country, then owner; a plant owned in its own country has
owner = country, so a world where no owner differs from the location has exactly one column per
(stage, country), in the same order as before owners existed, and the same numbers. A stage's
columns of a row sum to 1 once the material has passed that stage and are all zero before.
Flows mix by mass; a process stamps its stage with its own (country, owner) (:class:`Stamp`);
an aggregate row of several owners (facilities.csv ``owner`` "CHN CHE", ``owner_share``
"0.519 0.159") stamps each owner's column with its share and its own country's with the rest
(:class:`Owners`), so an aggregate need not be split into plants (which would change what the
agents do).
Summing a stage's columns by country gives *where* the stage happened (location), by owner
*whose plant* did it (control). :class:`Origins` expands a mix to the
``[rows, stages, countries]`` location view for callers that want it.

Only rows that receive material are touched, and only shipments that carry material are
gathered, so a month costs O(active edges × K), not O(edges × stages × countries). In a world
of several chains that never exchange material (:class:`Blocks`), each chain's shipments are
traced over its own columns only: the sum over chains of active edges × their K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array

try:  # the kernel behind ``csr_array @ ndarray``, without building the matrix object each call
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a scipy that moved it: the public path below
    _csr_matvecs = None


@dataclass(frozen=True)
class Owners:
    """Who owns each node, as parts: part i is ``share[i]`` of node ``node[i]``, owned from country
    ``owner[i]``; a node's parts sum to 1 (a node without parts is owned where it stands)."""

    node: np.ndarray
    owner: np.ndarray
    share: np.ndarray

    def entries(
        self, rows: np.ndarray, slot_node: np.ndarray, slot_country: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For stamp entries on slot rows ``rows`` (their nodes ``slot_node[rows]``): (entry
        index, owner, share) per part, every entry repeated once per part of its node."""
        order = np.argsort(self.node, kind="stable")
        pn, po, ps = self.node[order], self.owner[order], self.share[order]
        nodes = slot_node[rows]
        start = np.searchsorted(pn, nodes, "left")
        count = np.searchsorted(pn, nodes, "right") - start
        lone = count == 0  # no parts: owned where it stands
        count = np.where(lone, 1, count)
        entry = np.repeat(np.arange(rows.size), count)
        offset = np.arange(entry.size) - np.repeat(np.cumsum(count) - count, count)
        idx = np.minimum(start[entry] + offset, max(pn.size - 1, 0))
        owner = np.where(lone[entry], slot_country[rows][entry], po[idx] if pn.size else 0)
        share = np.where(lone[entry], 1.0, ps[idx] if pn.size else 1.0)
        return entry, owner, share


@dataclass(frozen=True)
class Origins:
    """The origin columns of a world: column k is (``stage[k]``, ``country[k]``, ``owner[k]``);
    ``owner[k] == country[k]`` for plants owned where they stand."""

    stage: np.ndarray
    country: np.ndarray
    n_stages: int
    n_countries: int
    owner: np.ndarray = None  # type: ignore[assignment]  # default: the country (no foreign owners)

    def __post_init__(self) -> None:
        if self.owner is None:
            object.__setattr__(self, "owner", self.country.copy())

    @classmethod
    def from_stamps(
        cls,
        slot_stamp: np.ndarray,
        slot_country: np.ndarray,
        n_countries: int,
        slot_node: np.ndarray | None = None,
        owners: Owners | None = None,
    ) -> Origins:
        """Every (stage, country, owner) that a slot of the network stamps (``owners``: who owns
        each node, by ``slot_node``; default: every plant owned where it stands)."""
        rows, stages = np.nonzero(slot_stamp)
        C = n_countries
        if owners is None:
            entry, owner = np.arange(rows.size), slot_country[rows]
        else:
            entry, owner, _ = owners.entries(rows, slot_node, slot_country)
        code = np.unique((stages[entry] * C + slot_country[rows][entry]) * C + owner)
        loc, own = np.divmod(code, C)
        return cls(loc // C, loc % C, slot_stamp.shape[1], C, own)

    @property
    def size(self) -> int:
        return self.stage.size

    @property
    def foreign(self) -> np.ndarray:
        """Per column: the plant's owner is not in the country where it stands."""
        return self.owner != self.country

    def column(self, stage: np.ndarray, country: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
        """Column index of each (stage, country, owner) triple (all must be origin columns;
        owner default: the country)."""
        C = self.n_countries
        code = (self.stage * C + self.country) * C + self.owner
        country = np.asarray(country)
        own = country if owner is None else np.asarray(owner)
        return np.searchsorted(code, (np.asarray(stage) * C + country) * C + own)

    def expand(self, mix: np.ndarray) -> np.ndarray:
        """``[rows, stages, countries]`` location view of a compact ``[rows, K]`` mix (a copy;
        the columns of one (stage, country) owned from several countries are summed)."""
        out = np.zeros((mix.shape[0], self.n_stages * self.n_countries), dtype=mix.dtype)
        flat = self.stage * self.n_countries + self.country
        if self.foreign.any():
            np.add.at(out, (slice(None), flat), mix)
        else:
            out[:, flat] = mix
        return out.reshape(mix.shape[0], self.n_stages, self.n_countries)

    def stage_share(self, mix: np.ndarray, stage: int, by: str = "location") -> np.ndarray:
        """``[rows, countries]``: the mix of one stage by the country where it happened
        (``by="location"``) or by the country owning the plant that did it (``by="owner"``)."""
        out = np.zeros((mix.shape[0], self.n_countries), dtype=mix.dtype)
        cols = np.flatnonzero(self.stage == stage)
        who = (self.owner if by == "owner" else self.country)[cols]
        if np.unique(who).size == who.size:
            out[:, who] = mix[:, cols]
        else:
            np.add.at(out, (slice(None), who), mix[:, cols])
        return out


class Stamp:
    """What a process does to the mix of the material it makes, for a fixed set of output slots:
    stages not yet happened are emptied, the process's own stage is set to its (country, owner)."""

    def __init__(
        self,
        origins: Origins,
        slot_stamp: np.ndarray,
        slot_clear: np.ndarray,
        slot_country: np.ndarray,
        slot_node: np.ndarray | None = None,
        owners: Owners | None = None,
    ) -> None:
        reset = (slot_stamp | slot_clear)[:, origins.stage]  # [slots, K]
        self.keep = (~reset).astype(float)
        rows, stages = np.nonzero(slot_stamp)
        if owners is None:
            entry, owner, share = np.arange(rows.size), slot_country[rows], np.ones(rows.size)
        else:  # each owner's column gets its share of the stage
            entry, owner, share = owners.entries(rows, slot_node, slot_country)
        self.rows = rows[entry]
        self.cols = origins.column(stages[entry], slot_country[rows][entry], owner)
        self.values = share
        self.whole = bool((share == 1.0).all())

    def __call__(self, mix: np.ndarray) -> np.ndarray:
        """The stamped copy of ``mix`` (one row per slot of this stamp)."""
        out = mix * self.keep
        out[self.rows, self.cols] = 1.0 if self.whole else self.values
        return out


def _small(codes: np.ndarray) -> np.ndarray:
    """``codes`` as 16-bit integers when they fit: NumPy's stable sort of those is a radix sort
    (~2x faster for a month's shipments), and a stable sort gives the same order either way."""
    if codes.size and codes.dtype.itemsize > 2 and codes.min() >= -32768 and codes.max() < 32768:
        return codes.astype(np.int16)
    return codes


def _segments(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order that sorts ``group``, the start of each group's run in it, and the groups."""
    order = np.argsort(_small(group), kind="stable")
    g = group[order]
    first = np.empty(g.size, bool)  # np.r_ costs more than the comparison (720 calls a run)
    first[:1] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    starts = first.nonzero()[0]  # np.flatnonzero and np.ones add a Python call each
    return order, starts, g[starts]


@dataclass(frozen=True)
class Blocks:
    """Parts of a network that never exchange material (the chains of a multi-chain world): per
    block its origin columns, the only ones its rows can carry. Shipments within a block are
    traced over its columns alone, so a seven-chain world costs the sum of its chains, not
    every edge times every chain's columns. Built once per model; ``None`` where there is one
    block (nothing to gain)."""

    slot_block: np.ndarray  # per slot: its block
    columns: tuple[np.ndarray, ...]  # per block: its origin columns, ascending
    slots: tuple[np.ndarray, ...]  # per block: its slots, ascending
    position: np.ndarray  # per slot: its place among its block's slots

    @classmethod
    def of(
        cls,
        edge_seller: np.ndarray,
        edge_buyer: np.ndarray,
        slot_node: np.ndarray,
        stamp: Stamp,
        n_columns: int,
        mixes: tuple[np.ndarray, ...] = (),
    ) -> Blocks | None:
        """The connected parts of the graph of slots (linked by trade edges and by sharing a
        node) and the columns each part's processes stamp; ``None`` when there is one part, or
        when a row of ``mixes`` (``[slots, K]``: the mixes to start from) carries a column
        outside its part (then every shipment is traced over every column, as before)."""
        n_slots = slot_node.size
        n = n_slots + int(slot_node.max(initial=-1)) + 1
        label = _components(n, np.r_[edge_seller, np.arange(n_slots)], np.r_[edge_buyer, n_slots + slot_node])
        _, slot_block = np.unique(label[:n_slots], return_inverse=True)
        n_blocks = int(slot_block.max(initial=-1)) + 1
        if n_blocks < 2:
            return None
        stamped = np.zeros((n_blocks, n_columns), bool)
        stamped[slot_block[stamp.rows], stamp.cols] = True
        allowed = stamped[slot_block]
        for mix in mixes:
            if np.any(mix[~allowed] != 0):
                return None
        slots = tuple(np.flatnonzero(slot_block == b) for b in range(n_blocks))
        position = np.zeros(n_slots, np.int64)
        for rows in slots:
            position[rows] = np.arange(rows.size)
        return cls(slot_block, tuple(np.flatnonzero(row) for row in stamped), slots, position)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph on n vertices with edges (a[i], b[i]): per
    vertex the smallest vertex of its component (labels spread along edges, with pointer
    jumping; a few dozen vectorised passes for a supply chain)."""
    label = np.arange(n)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


@dataclass(frozen=True)
class _Part:
    """The shipments of one block: their positions among the items, and the block's columns."""

    at: np.ndarray
    columns: np.ndarray
    rows: np.ndarray  # the block's rows of the mix (its slots)
    position: np.ndarray  # per row of the mix: its place among its block's rows


@dataclass(frozen=True)
class Shipments:
    """Items that carry mass (e.g. the month's trade edges with flow): their tonnes and the mix
    of the row each comes from, as it was when they were made. Summed by any grouping: each
    grouping gathers the items' tonnes by origin in its own order, one ``[items, K]`` array
    (building one first and reordering it per grouping cost two more of them, and fresh
    multi-MB arrays cost more in page faults than the arithmetic)."""

    items: np.ndarray  # indices of the items with mass
    tonnes: np.ndarray
    source: np.ndarray  # per item: its row of ``mix``
    mix: np.ndarray  # [rows, K]: the mixes the items carry
    parts: tuple[_Part, ...] = ()  # per block of :class:`Blocks`, when given

    @classmethod
    def of(
        cls,
        source: np.ndarray,
        weight: np.ndarray,
        mix: np.ndarray,
        blocks: Blocks | None = None,
        *,
        copy: bool = True,
        parts_from: int = 0,
    ) -> Shipments:
        """Item i carries ``weight[i]`` t with the mix of row ``source[i]`` of ``mix``
        (``blocks``: trace each block's items over its own columns, where items × columns is at
        least ``parts_from``; ``copy=False`` when ``mix`` will not change before the sums are
        read). Both ways give the same numbers: a group's items are in one block, summed in
        the same order, and the other blocks' columns hold exact zeros."""
        items = (weight > 0).nonzero()[0]  # 1-D: np.flatnonzero, without its Python call
        src = source[items]
        parts: tuple[_Part, ...] = ()
        if blocks is not None and items.size * mix.shape[1] >= parts_from:
            block = blocks.slot_block[src]
            at = [(np.flatnonzero(block == b), b) for b in range(len(blocks.columns))]
            parts = tuple(
                _Part(a, blocks.columns[b], blocks.slots[b], blocks.position) for a, b in at if a.size
            )
        return cls(items, weight[items], src, mix.copy() if copy else mix, parts)

    @property
    def mass(self) -> np.ndarray:
        """``[len(items), K]``: the tonnes of each origin column each item carries."""
        return self._mass(np.arange(self.items.size))

    def _mass(self, pos: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """Tonnes by origin of the items at positions ``pos`` (of ``columns``), in that order."""
        rows = self.source[pos]
        m = self.mix[rows] if columns is None else self.mix[rows[:, None], columns]
        m *= self.tonnes[pos][:, None]  # in place: one array of this size
        return m

    def by_part(self, group: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per block: (groups that received mass, ascending; their tonnes; the block's columns;
        their tonnes of those columns). A group holds items of one block only (a trade pair, a
        buyer, a node)."""
        out = []
        for part in self.parts:
            order, starts, received = _segments(group[self.items[part.at]])
            pos = part.at[order]
            out.append(
                (
                    received,
                    np.add.reduceat(self.tonnes[pos], starts),
                    part.columns,
                    _sum_rows(
                        part.position[self.source[pos]],
                        self.tonnes[pos],
                        starts,
                        self.mix[part.rows[:, None], part.columns],  # the block's rows and columns
                    ),
                )
            )
        return out

    def by(self, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(groups that received mass, ascending; their tonnes; their tonnes by origin) for the
        grouping ``group`` (per item of the full index)."""
        K = self.mix.shape[1]
        if not self.items.size:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, K))
        if self.parts:
            per = self.by_part(group)
            received = np.concatenate([p[0] for p in per])
            order = np.argsort(received, kind="stable")
            at = np.empty(order.size, np.int64)
            at[order] = np.arange(order.size)
            tonnes = np.empty(order.size)
            added = np.zeros((order.size, K))
            start = 0
            for rec, t, cols, m in per:
                pos = at[start : start + rec.size]
                tonnes[pos] = t
                added[pos[:, None], cols] = m
                start += rec.size
            return received[order], tonnes, added
        order, starts, received = _segments(group[self.items])
        tonnes = self.tonnes[order]
        return (
            received,
            np.add.reduceat(tonnes, starts),
            _sum_rows(self.source[order], tonnes, starts, self.mix),
        )


# a month's trade in a multi-chain world is traced block by block from this many items × origin
# columns: below it one sparse product over every column costs less than a pass per block (the
# seven-chain world, ~3,400 shipments × 128 columns a month: 0.80 -> 0.69 s for 144 months)
PARTS_FROM = 2_000_000


def _sum_rows(rows: np.ndarray, weight: np.ndarray, starts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per run of items (runs start at ``starts``): the sum of ``weight[i] * x[rows[i]]`` over its
    items, added in item order. A sparse (runs x rows of ``x``) product: one pass over the
    items' rows, without gathering an [items, K] array first (as large as the month's trade)."""
    indptr = np.empty(starts.size + 1, np.int64)  # the starts and the end (np.append costs more)
    indptr[:-1] = starts
    indptr[-1] = rows.size
    rows, weight = np.asarray(rows, np.int64), np.asarray(weight, float)
    if _csr_matvecs is None or x.dtype != np.float64 or not x.flags.c_contiguous:
        return csr_array((weight, rows, indptr), shape=(starts.size, x.shape[0])) @ x
    out = np.zeros((starts.size, x.shape[1]))  # what csr_array @ x allocates and fills
    _csr_matvecs(starts.size, x.shape[0], x.shape[1], indptr, rows, weight, x.reshape(-1), out.reshape(-1))
    return out


def group_mix(
    group: np.ndarray, source: np.ndarray, weight: np.ndarray, mix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mass-weighted mix per group of what flows in: item i brings ``weight[i]`` t with the mix of
    row ``source[i]`` of ``mix`` into group ``group[i]``. Items with no weight are skipped.

    Returns (groups that received mass, ascending; their mass; their mix [len, K]).
    """
    received, mass, added = Shipments.of(source, weight, mix, copy=False).by(group)
    added /= mass[:, None]
    return received, mass, added


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
    blend = mix[r]  # (mix * old + incoming * a) / (old + a), with one temporary of its size
    blend *= old[:, None]
    arriving = incoming[touched]
    arriving *= a[:, None]
    blend += arriving
    blend /= (old + a)[:, None]
    mix[r] = blend


def receive(stock: np.ndarray, mix: np.ndarray, into: np.ndarray, shipments: Shipments) -> None:
    """Rows ``into[i]`` of ``stock``/``mix`` receive what item i of ``shipments`` carries (several
    items may go to the same row), in place."""
    if shipments.parts:  # block by block, over each block's columns (the others stay zero)
        for rows, mass, cols, added in shipments.by_part(into):
            old = stock[rows]
            blend = mix[rows[:, None], cols]
            blend *= old[:, None]
            blend += added
            blend /= (old + mass)[:, None]
            mix[rows[:, None], cols] = blend
        return
    rows, mass, added = shipments.by(into)
    if rows.size:
        old = stock[rows]
        blend = mix[rows]  # (mix * old + added) / (old + mass), in place
        blend *= old[:, None]
        blend += added
        blend /= (old + mass)[:, None]
        mix[rows] = blend
