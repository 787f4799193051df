"""Goods in transit: shipping times per route, and the cargo afloat as a stock.

A route (commodity, exporter, importer) may take whole months to travel (``transit.csv`` of a
chain, with its source; a route without a row arrives within the month, as before). What a
buyer bought on such an edge leaves the seller's stock the month it is sold, is recorded as
traded (exports and imports) that month, and reaches the buyer's stock ``k`` months later; in
between it is a stock of its own, *afloat*, owned by the buyer (counted in the buyer market's
stock, so the mass balance closes) and carrying the origin mix it left with.

The cargo lives in a ring buffer over the transit edges only (``[k_max + 1, edges]`` tonnes and
``[k_max + 1, edges, origin columns]`` mixes): what edge e ships in month t waits in row
``(t + k_e) mod R`` and is delivered in month t + k_e. Each cell holds one month's shipment of one
edge, so no blending is needed until it arrives. No per-shipment Python.

At the start of a run every transit edge has ``k`` months of its base-year flow afloat (the
cargo the 2024 trade had under way), so the base year stays a steady state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critmin.sim import origin
from critmin.sim.state import State


def edge_months(
    transit: object,
    commodities: list[str],
    countries: list[str],
    edge_commodity: np.ndarray,
    edge_from: np.ndarray,
    edge_to: np.ndarray,
    commercial: np.ndarray,
) -> np.ndarray:
    """Per edge: whole months its shipments take (``transit.csv``; 0 without a row). The row for
    the importer wins over the exporter's ``all`` row. Only commercial edges between two countries
    travel (a stockpile's or merchant holder's edges, and trade within a country, arrive within the
    month)."""
    months = np.zeros(edge_commodity.size, dtype=np.int64)
    table = getattr(transit, "itertuples", None)
    if table is None or edge_commodity.size == 0:
        return months
    kidx = {c: i for i, c in enumerate(commodities)}
    cidx = {c: i for i, c in enumerate(countries)}
    moving = commercial & (edge_from != edge_to)
    rows = sorted(transit.itertuples(index=False), key=lambda r: r.importer != "all")  # "all" first
    for r in rows:
        if r.commodity not in kidx or r.exporter not in cidx:
            continue  # another chain's row in a combined world is checked there
        on = moving & (edge_commodity == kidx[r.commodity]) & (edge_from == cidx[r.exporter])
        if r.importer != "all":
            if r.importer not in cidx:
                continue
            on &= edge_to == cidx[r.importer]
        months[on] = int(r.months)
    return months


@dataclass(frozen=True)
class Routes:
    """The edges that take time, fixed for a run."""

    edges: np.ndarray  # edge indices with months > 0
    months: np.ndarray  # per transit edge
    buyer: np.ndarray  # per transit edge: the buyer slot
    seller: np.ndarray  # per transit edge: the seller slot
    ring: int  # rows of the ring buffer: max months + 1

    @classmethod
    def of(cls, edge_transit: np.ndarray, edge_seller: np.ndarray, edge_buyer: np.ndarray) -> Routes:
        edges = np.flatnonzero(edge_transit > 0)
        months = edge_transit[edges].astype(np.int64)
        ring = int(months.max()) + 1 if edges.size else 1
        return cls(edges, months, edge_buyer[edges], edge_seller[edges], ring)

    @property
    def any(self) -> bool:
        return self.edges.size > 0


def start(routes: Routes, s: State, base_flow: np.ndarray, n_origins: int) -> None:
    """Give the state its afloat arrays: every transit edge carries ``k`` months of its base flow
    (``base_flow`` per edge) with its seller's opening mix, arriving one month's worth a month."""
    n = s.stock.size
    s.in_transit = np.zeros(n)
    s.afloat = np.zeros((routes.ring, routes.edges.size))
    s.afloat_mix = np.zeros((routes.ring, routes.edges.size, n_origins))
    if not routes.any:
        return
    flow = base_flow[routes.edges]
    for lag in range(routes.ring):  # month t = lag arrives from row lag: edges still under way
        on = routes.months > lag
        s.afloat[lag, on] = flow[on]
        s.afloat_mix[lag, on] = s.mix[routes.seller[on]]
    s.in_transit = np.bincount(routes.buyer, weights=s.afloat.sum(axis=0), minlength=n)


def ship(routes: Routes, s: State, flow: np.ndarray) -> np.ndarray:
    """Load this month's shipments on the transit edges (``flow`` per edge) with their sellers'
    mixes, read before the sellers' stocks change; returns the flow that arrives now (the transit
    edges' share is 0)."""
    if not routes.any:
        return flow
    q = flow[routes.edges]
    row = (s.t + routes.months) % routes.ring
    cols = np.arange(routes.edges.size)
    s.afloat[row, cols] = q
    s.afloat_mix[row, cols] = s.mix[routes.seller]
    s.in_transit += np.bincount(routes.buyer, weights=q, minlength=s.stock.size)
    now = flow.copy()
    now[routes.edges] = 0.0
    return now


def arrive(routes: Routes, s: State) -> np.ndarray:
    """Deliver what is due this month into the buyers' stocks with the mix it carries; returns the
    tonnes per buyer slot."""
    n = s.stock.size
    if not routes.any:
        return np.zeros(n)
    row = s.t % routes.ring
    due = s.afloat[row].copy()
    landed = origin.Shipments.of(np.arange(routes.edges.size), due, s.afloat_mix[row], copy=False)
    origin.receive(s.stock, s.mix, routes.buyer, landed)
    got = np.bincount(routes.buyer, weights=due, minlength=n)
    s.stock = s.stock + got
    s.in_transit = np.maximum(s.in_transit - got, 0.0)
    s.afloat[row] = 0.0
    return got


def normal_afloat(
    edge_transit: np.ndarray | None, edge_buyer: np.ndarray, base_edge_flow: np.ndarray, n_slots: int
) -> np.ndarray | None:
    """Per slot: the cargo a buyer has afloat in the base year, k months of its base-year flow on
    each route that takes k months; ``None`` where no route takes time."""
    if edge_transit is None or not edge_transit.any():
        return None
    return np.bincount(edge_buyer, weights=edge_transit * base_edge_flow, minlength=n_slots)


def pipeline_target(normal: np.ndarray | None, use: np.ndarray, base_use: np.ndarray) -> np.ndarray | None:
    """Per slot: the cargo a buyer means to have afloat (its supply line), its base-year cargo
    (:func:`normal_afloat`) scaled by its use this month over its base-year use; ``None`` where no
    route takes time. Buyers order to close the gap to it as to their stock target (Sterman 2000
    ch. 17, the supply line: agents/buying.py), and price formation counts the cargo afloat in a
    buyer's stock and this in its target (sim/prices/__init__.py: update), so a pipeline that drains under
    a ban is seen the month shipments stop, not months later when the last cargo lands."""
    if normal is None:
        return None
    return normal * np.divide(use, base_use, out=np.ones(use.size), where=base_use > 0)


def with_supply_line(
    stock: np.ndarray,
    in_transit: np.ndarray,
    target: np.ndarray,
    normal: np.ndarray | None,
    use: np.ndarray,
    base_use: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: a buyer's stock and stock target with its supply line counted: the cargo it has
    afloat added to its stock, its :func:`pipeline_target` to its target. What buyers order
    against (agents/buying.py) and what price formation reads as cover (sim/prices/) are the
    same; unchanged where no route takes time."""
    pipeline = pipeline_target(normal, use, base_use)
    if pipeline is None:
        return stock, target
    return stock + in_transit, target + pipeline
