"""What agents, instruments and the engine's other stages may use of the model: its interface.

Agents' decision rules (``agents/``), instruments (``policies/``), capacity dynamics, price
formation and the recorder are typed against :class:`ModelView`, not against the model class,
so none of them imports :mod:`critmin.sim.model` (the layer contracts in pyproject.toml check
it). :class:`~critmin.sim.model.CritminModel` is the one implementation.

The interface has three parts: what a stage reads (the network, the state, the parameters,
the calibration, the month's trading), what the model applied this month from the effects
instruments returned (price floors, government purchases and releases, collection rates), the
instruments themselves (their declared investment terms) and a few derived views (market index
of each slot, collection rates, 2024 flows). Instruments never write into it: they
return :class:`~critmin.policies.base.Effects` and :class:`~critmin.policies.base.Payment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from critmin.sim.calibration import Calibration
    from critmin.sim.capacity import CapacityDynamics
    from critmin.sim.network import Network
    from critmin.sim.origin import Origins
    from critmin.sim.state import State
    from critmin.sim.trading import Cleared
    from critmin.sim.world import World


class ModelView(Protocol):
    """The model as agents, instruments and stages see it (see the module docstring)."""

    # what every stage reads
    net: Network
    world: World
    state: State
    params: Any  # the scenario parameters (config dataclasses)
    calibration: Calibration
    origins: Origins
    start: tuple[int, int]  # first month (year, month)
    n_steps: int
    streams: dict[str, np.random.Generator]
    demand_nodes: np.ndarray
    producer_nodes: np.ndarray
    main_output: np.ndarray  # per slot: not a by-product (scrap)
    commercial_edges: np.ndarray  # per edge: neither end is a government stockpile
    normal_afloat: (
        np.ndarray | None
    )  # per slot: base-year cargo afloat (sim/transit.py); None: no route takes time
    governments: dict[str, Any]  # country -> Government agent (fiscal ledger)
    investment: CapacityDynamics
    # this month's trading, once it happened
    cleared: Cleared
    wedges: Any  # policies.base.Wedges
    last_request: np.ndarray  # per slot: requests, commercial and governments'
    last_use: np.ndarray  # per slot: buyers' planned use this month (0 elsewhere)
    stock_target: np.ndarray  # per slot
    restock_months: np.ndarray  # per slot: months over which a holder closes its stock gap
    # what the model applied from the instruments' Effects this month (reset monthly where noted)
    floor: np.ndarray  # per output slot: price floor received (reset monthly)
    store_request: np.ndarray  # per stockpile slot: purchases (reset monthly)
    store_offer: np.ndarray  # per stockpile slot: releases offered (reset monthly)
    store_price: np.ndarray  # per stockpile slot: release price
    collection: np.ndarray  # per demand centre: end-of-life collection rate
    policies: list[Any]  # the instruments, in config order (their declared investment terms)

    @property
    def idle_threshold(self) -> np.ndarray: ...

    @property
    def base_edge_flow(self) -> np.ndarray: ...

    def slot_market(self) -> np.ndarray: ...

    def growth_index(self, nodes: np.ndarray) -> np.ndarray: ...

    def base_flow_of_slots(self, slots: np.ndarray) -> np.ndarray: ...

    def collection_rate(self, nodes: np.ndarray) -> np.ndarray: ...
