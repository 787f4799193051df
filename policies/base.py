"""The contract every instrument follows, and the registry configs name instruments by.

A config names an instrument by its registry key (``type``), never by an import path. That
alone would not make a shared policy or shock file safe: Hydra itself would run a ``_target_``
that a file places under ``hydra.callbacks`` (with ``# @package _global_``). So every config file
is checked before Hydra composes it (:mod:`critmin.sim.config_files`: no ``hydra`` settings, no
``_target_``, no package outside the file's group); a file that breaks a rule is refused with
exit status 2 before anything runs or is written. The model calls the hooks at
fixed points of its step (DESIGN §3):

==================  ==========================================================================
hook                called
==================  ==========================================================================
``modify``          step 1 (events): write this month's capacity and demand factors and caps
``on_step``         step 2: update internal state (licence queues, quota balances, triggers)
``edge_caps``       before clearing: bans, quotas, licences, diversification and market limits
``edge_costs``      before clearing: ad valorem and specific wedges on delivered cost
``market``          before clearing: government purchases/releases, price floors, contracts
``after_clearing``  step 6: returns payments and revenues (the model books them), stock accounting
``on_year_end``     after the December step
==================  ==========================================================================

Each instrument reads its keys from a :class:`~critmin.sim.spec.Spec` in ``__init__`` and
fails there, before the run, on anything unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.sim.events import Modifiers
    from critmin.sim.view import ModelView
    from critmin.sim.world import World


@dataclass
class Wedges:
    """Per-edge policy wedges: ``p_del = (p·(1+ax) + sx + transport)·(1+am) + sm``."""

    export_ad_valorem: np.ndarray
    export_specific: np.ndarray
    import_ad_valorem: np.ndarray
    import_specific: np.ndarray

    @classmethod
    def none(cls, n_edges: int) -> Wedges:
        return cls(np.zeros(n_edges), np.zeros(n_edges), np.zeros(n_edges), np.zeros(n_edges))


@dataclass(frozen=True)
class Payment:
    """A fiscal flow an instrument causes this month: ``usd`` > 0 the government of ``country``
    pays, < 0 it receives; ``private``: a cost its rules put on firms, not on the treasury."""

    country: str
    item: str  # the instrument's label
    usd: float
    private: bool = False


@dataclass
class Contract:
    """Volume a seller slot delivers to some buyer slots before the spot market, at a price."""

    edges: np.ndarray  # edge indices (one seller slot to the covered buyer slots)
    tonnes: float  # this month
    price: float  # USD/t paid by buyers
    label: str
    split: np.ndarray | None = None  # take-or-pay: fixed shares of the volume per edge


class Policy:
    """Base class of every timed change, instruments and scenario events alike: every hook is a
    no-op; a change overrides the ones it acts through."""

    key: ClassVar[str]
    kind: ClassVar[str] = "instrument"  # or "event" (scenario.events / shock.events)

    def __init__(self, spec: Spec, model: ModelView) -> None:
        self.where = spec.where
        spec.raw("type")
        self.label = str(spec.raw("name", self.key))
        self.first = spec.month("start", model.start, default=None) or 0
        last = spec.month("end", model.start, default=None)
        self.last = 10**9 if last is None else last
        if self.last <= self.first:
            raise DataError(f"{spec.where}.end: expected a month after start, got {spec.d.get('end')!r}")

    @classmethod
    def stores(cls, spec: Spec, world: World) -> list[tuple]:
        """Stockpile nodes the instrument needs, as (id, country, commodity, sell_to countries)."""
        return []

    def active(self, t: int) -> bool:
        return self.first <= t < self.last

    def modify(self, model: ModelView, mods: Modifiers, t: int) -> None:
        """Scenario events: write this month's modifiers (before the random outages)."""

    def on_step(self, model: ModelView, t: int) -> None:
        """Update internal state (licence queues, quota balances, triggers)."""

    def edge_caps(self, model: ModelView, mods: Modifiers, request: np.ndarray) -> None:
        """Tighten per-edge or group caps for this step (``request`` per slot, for limits in shares)."""

    def edge_costs(self, model: ModelView, wedges: Wedges) -> None:
        """Add ad valorem or specific wedges to delivered costs."""

    def market(self, model: ModelView) -> list[Contract]:
        """Set government purchases/releases and price floors; return contracts served first."""
        return []

    def after_clearing(self, model: ModelView) -> list[Payment]:
        """Act on the cleared market (stock accounting, balances) and return the month's
        payments and revenues; the settlement stage books them into the fiscal ledgers."""
        return []

    def on_year_end(self, model: ModelView, year: int) -> None:
        """Yearly bookkeeping."""

    def derisked_nodes(self, model: ModelView) -> np.ndarray:
        """Facility nodes whose volume or price this instrument makes certain (offtakes, price
        floors): investors there drop the risk premium from their cost of capital."""
        return np.zeros(0, dtype=np.int64)


REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make an instrument available to configs under ``cls.key``."""
    if cls.key in REGISTRY:
        raise ValueError(f"instrument key {cls.key!r} registered twice")
    REGISTRY[cls.key] = cls
    return cls


def _spec(raw: Any, where: str, kind: str = "instrument") -> tuple[Spec, type[Policy]]:
    spec = Spec(raw, where)
    name = spec.d.get("type")
    known = sorted(k for k, c in REGISTRY.items() if c.kind == kind)
    if name not in known:
        raise DataError(f"{where}.type: unknown {kind} {name!r}; expected one of {known}")
    return spec, REGISTRY[name]


def required_stores(lists: list[tuple[list, str]], world: World) -> list[tuple]:
    """Stockpile nodes every configured instrument needs, before the network is compiled."""
    stores: list[tuple] = []
    for raw_list, source in lists:
        for i, raw in enumerate(raw_list or []):
            spec, cls = _spec(raw, f"{source}[{i}]")
            stores.extend(cls.stores(spec, world))
    return list(dict.fromkeys(stores))


def load_policies(lists: list[tuple[list, str]], model: ModelView, kind: str = "instrument") -> list[Policy]:
    """Instantiate instruments (or, with ``kind="event"``, scenario events) from config lists;
    ``source`` names the file and key for errors."""
    out = []
    for raw_list, source in lists:
        for i, raw in enumerate(raw_list or []):
            spec, cls = _spec(raw, f"{source}[{i}]", kind)
            out.append(cls(spec, model))
            spec.done()
    return out
