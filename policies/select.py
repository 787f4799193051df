"""Selecting the edges, slots and facilities an instrument covers (shared by instruments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from critmin.sim.network import INPUT, OUTPUT
from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


def trade_edges(
    model: ModelView, commodities: np.ndarray, origins: np.ndarray, destinations: np.ndarray
) -> np.ndarray:
    """Cross-border edges of these commodities from ``origins`` to ``destinations``."""
    net = model.net
    return np.flatnonzero(
        np.isin(net.edge_commodity, commodities)
        & np.isin(net.edge_from, origins)
        & np.isin(net.edge_to, destinations)
        & (net.edge_from != net.edge_to)
    )


def buyer_slots(model: ModelView, commodities: np.ndarray, countries: np.ndarray) -> np.ndarray:
    """Commercial buyer slots (processors' inputs, manufacturers' stocks) in these countries."""
    net = model.net
    return np.flatnonzero(
        (net.slot_role == INPUT)
        & np.isin(net.slot_commodity, commodities)
        & np.isin(net.slot_country, countries)
    )


def listed_facilities(model: ModelView, spec: Spec, key: str) -> list[tuple[str, int]]:
    """(name, node) of each facility id listed under ``key`` (one id or a list)."""
    net = model.net
    names = spec.raw(key)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in net.node_id:
            raise DataError(f"{spec.where}.{key}: unknown facility {name!r}")
    return [(name, net.node_id.index(name)) for name in names]


def buyer_slots_of(model: ModelView, spec: Spec, key: str) -> np.ndarray:
    """Input slots of the facilities listed under ``key`` (facility ids)."""
    net = model.net
    nodes = [node for _, node in listed_facilities(model, spec, key)]
    return np.flatnonzero((net.slot_role == INPUT) & np.isin(net.slot_node, nodes))


def seller_slots(model: ModelView, commodities: np.ndarray, countries: np.ndarray) -> np.ndarray:
    net = model.net
    return np.flatnonzero(
        (net.slot_role == OUTPUT)
        & np.isin(net.slot_commodity, commodities)
        & np.isin(net.slot_country, countries)
    )


def facility_slots(model: ModelView, spec: Spec, key: str, commodity: int) -> np.ndarray:
    """Output slots of commodity at the facilities listed under ``key`` (facility ids)."""
    net = model.net
    out = []
    for name, node in listed_facilities(model, spec, key):
        slot = np.flatnonzero(
            (net.slot_node == node) & (net.slot_commodity == commodity) & (net.slot_role == OUTPUT)
        )
        if slot.size == 0:
            raise DataError(
                f"{spec.where}.{key}: facility {name!r} does not produce {net.commodities[commodity]!r}"
            )
        out.append(int(slot[0]))
    return np.array(out, dtype=np.int64)


def stage_index(model: ModelView, spec: Spec, key: str, commodity: int) -> int:
    """An origin stage by name; default: the stage the commodity itself is made at."""
    net = model.net
    own = net.commodity_stage[commodity]
    default = own if own in net.stages else net.stages[-1]
    name = spec.text(key, default=default, choices=tuple(net.stages))
    return net.stages.index(name)


CONTROLS = ("location", "owner")


def dominant_origin(model: ModelView, slots: np.ndarray, stage: int, control: str = "location") -> np.ndarray:
    """Country holding the largest share of each slot's stock at an origin stage (sellers' own
    country at their own stage; -1 where the stage has not happened): where the stage happened
    (``control="location"``) or the country owning the plant that did it (``"owner"``)."""
    mix = model.origins.stage_share(model.state.mix[slots], stage, by=control)
    return np.where(mix.sum(axis=1) > 0, mix.argmax(axis=1), -1)


def market_price(model: ModelView, slots: np.ndarray) -> np.ndarray:
    """Current seller price in each slot's (commodity, country) market."""
    return np.exp(model.state.log_p)[model.slot_market()[slots]]
