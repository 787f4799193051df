"""Transformation, consumption and end of life: the month's physical flows after trading.

Plants run at their planned activity limited by their input stock, turning inputs into
outputs with their process coefficients and stamping their origin stage; manufacturers
consume from stock into the in-use stock; products in use retire at 1/lifetime a month and
the collected share becomes scrap. Every function moves mass and its origin mix together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from critmin.sim import origin
from critmin.sim.network import INPUT, OUTPUT, Network
from critmin.sim.state import State


@dataclass(frozen=True)
class Layout:
    """Index sets of a network the physical stages use every month (built once)."""

    inputs: np.ndarray  # every input slot
    fac_in: np.ndarray  # facilities' input slots (contiguous per node)
    fac_in_nodes: np.ndarray
    fac_in_starts: np.ndarray
    fac_out: np.ndarray  # facilities' output slots
    stamp_fac_out: origin.Stamp  # what each facility output's process stamps
    demand: np.ndarray  # demand-centre nodes
    scrap_nodes: np.ndarray  # demand centres whose end of life yields scrap
    is_fac_input: np.ndarray  # per slot: an input of a facility
    is_fac_output: np.ndarray  # per slot: an output of a facility

    @classmethod
    def of(cls, net: Network, origins: origin.Origins) -> Layout:
        on_facility = net.is_facility[net.slot_node]
        fac_in = np.flatnonzero((net.slot_role == INPUT) & on_facility)
        fac_out = np.flatnonzero((net.slot_role == OUTPUT) & on_facility)
        fac_in_nodes, fac_in_starts = np.unique(net.slot_node[fac_in], return_index=True)
        demand = np.flatnonzero(net.is_demand)
        return cls(
            inputs=np.flatnonzero(net.slot_role == INPUT),
            fac_in=fac_in,
            fac_in_nodes=fac_in_nodes,
            fac_in_starts=fac_in_starts,
            fac_out=fac_out,
            stamp_fac_out=origin.Stamp(
                origins,
                net.slot_stamp[fac_out],
                net.slot_clear[fac_out],
                net.slot_country[fac_out],
                net.slot_node[fac_out],
                origin.Owners(net.owner_node, net.owner_country, net.owner_share),
            ),
            demand=demand,
            scrap_nodes=demand[net.scrap_slot[demand] >= 0],
            is_fac_input=(net.slot_role == INPUT) & on_facility,
            is_fac_output=(net.slot_role == OUTPUT) & on_facility,
        )


def transform(net: Network, layout: Layout, s: State) -> tuple[np.ndarray, np.ndarray]:
    """Facilities run at planned activity limited by input stock; returns per-slot production and use."""
    n = len(net.node_id)
    limit = np.full(n, np.inf)
    fi = layout.fac_in  # a node's input slots are contiguous, so a segmented min does it
    limit[layout.fac_in_nodes] = np.minimum.reduceat(s.stock[fi] / net.slot_coef[fi], layout.fac_in_starts)
    x = np.where(net.is_facility, np.minimum(s.plan, limit), 0.0)
    s.activity = np.where(net.is_facility, x, s.activity)
    amount = net.slot_coef * x[net.slot_node]
    use = np.where(layout.is_fac_input, amount, 0.0)
    production = np.where(layout.is_fac_output, amount, 0.0)
    outs = layout.fac_out
    node_mix = origin.node_mix(net.slot_node, layout.inputs, use, s.mix, n)
    out_mix = layout.stamp_fac_out(node_mix[net.slot_node[outs]])
    s.stock = np.maximum(s.stock - use, 0.0)  # clears float dust (~1e-17 t)
    origin.mix_in(s.stock, s.mix, outs, production[outs], out_mix)
    s.stock = s.stock + production
    return production, use


def consume(
    net: Network, layout: Layout, s: State, use: np.ndarray, stops: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Demand centres consume from stock into the in-use stock; returns (consumed, desired).
    ``stops``, per demand centre: the use its firms with empty stock cannot run this month
    (agents/buying.py ``line_stops``), taken off what it consumes."""
    d = layout.demand
    slots = net.consume_slot[d]
    desired = s.plan[d]
    runs = desired if stops is None else np.maximum(desired - stops, 0.0)
    consumed = np.minimum(runs, s.stock[slots])
    s.activity[d] = consumed
    origin.mix_in(s.in_use, s.in_use_mix, d, consumed, s.mix[slots])
    s.in_use[d] += consumed
    s.stock[slots] -= consumed
    use[slots] += consumed
    return consumed, desired


def collection_rate(
    net: Network, s: State, slot_market: np.ndarray, collection: np.ndarray, recycling: Any, nodes: np.ndarray
) -> np.ndarray:
    """End-of-life collection of demand centres: the policy-set rate (``collection``, 2024 data
    unless a recycling target raises it) scaled by the scrap price relative to 2024 with
    elasticity ``scenario.recycling.collection_price_elasticity``, at most ``collection_max``."""
    slots = net.scrap_slot[nodes]
    ratio = np.exp(s.log_p)[slot_market[slots]] / net.price0[net.slot_commodity[slots]]
    rate = collection[nodes] * np.power(np.maximum(ratio, 1e-9), recycling.collection_price_elasticity)
    return np.minimum(rate, np.maximum(recycling.collection_max, collection[nodes]))


def end_of_life(
    net: Network, layout: Layout, s: State, production: np.ndarray, collected_share: np.ndarray
) -> np.ndarray:
    """In-use stock retires at 1/lifetime per month; the collected share (per scrap node) becomes
    scrap, counted as the scrap slot's production. Returns what retired per demand centre."""
    d = layout.demand
    retired = s.in_use[d] / net.lifetime_months[net.end_use[d]]
    nodes = layout.scrap_nodes
    slots = net.scrap_slot[nodes]
    collected = s.in_use[nodes] / net.lifetime_months[net.end_use[nodes]] * collected_share
    rows, mass, incoming = origin.group_mix(slots, nodes, collected, s.in_use_mix)
    origin.mix_in(s.stock, s.mix, rows, mass, incoming)
    s.stock[slots] += collected
    production[slots] += collected
    s.in_use[d] -= retired
    return retired
