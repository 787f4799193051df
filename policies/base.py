"""The contract every instrument follows, and the registry configs name instruments by.

A config names an instrument by its registry key (``type``), never by an import path. That
alone would not make a shared policy or shock file safe: Hydra itself would run a ``_target_``
that a file places under ``hydra.callbacks`` (with ``# @package _global_``). So every config file
is checked before Hydra composes it (:mod:`critmin.sim.config_files`: no ``hydra`` settings, no
``_target_``, no package outside the file's group); a file that breaks a rule is refused with
exit status 2 before anything runs or is written. The model calls the hooks at
fixed points of its step (DESIGN §3):

==================  ==========================================================================
hook                called, and what it returns
==================  ==========================================================================
``modify``          step 1 (events): :class:`Effects` on capacity and demand factors and caps
``on_step``         step 2: updates its own state (licence queues, quota balances, triggers);
                    returns :class:`Effects` of the month's terms (price floors, collection)
``market``          before trading, with the month's requests: :class:`Effects` on the market
                    (bans, quotas, licences, diversification limits, wedges, government
                    purchases, releases and their price, contracts)
``after_clearing``  after trading: updates its own accounts; returns :class:`Payment` records
                    (the model books them into the fiscal ledgers)
``on_year_end``     after the December step
==================  ==========================================================================

Each instrument reads its keys from a :class:`~critmin.sim.spec.Spec` in ``__init__`` and
fails there, before the run, on anything unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from critmin.sim.spec import Spec
from critmin.sim.world import DataError

if TYPE_CHECKING:
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


@dataclass
class Effects:
    """What an instrument or event does to this month, as values; the model applies them
    (:meth:`critmin.sim.model.CritminModel.apply`), in the order the instruments are listed.
    Instruments never write into the model: they read it and return this."""

    capacity_factor: list[tuple[np.ndarray, Any]] = field(default_factory=list)  # (nodes, × each)
    # (nodes, activity units this month each): a cap on what they run, whatever capacity comes
    # online this month (a production quota); lowest holds
    activity_cap: list[tuple[np.ndarray, Any]] = field(default_factory=list)
    demand_factor: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (nodes, ×)
    edge_caps: list[tuple[np.ndarray, Any]] = field(
        default_factory=list
    )  # (edges, t each); lowest holds, 0 = ban
    shared_caps: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (edges, t in total)
    wedges: list[tuple[np.ndarray, str, float]] = field(default_factory=list)  # (edges, Wedges field, + rate)
    floors: list[tuple[np.ndarray, float]] = field(
        default_factory=list
    )  # (output slots, USD/t); highest holds
    collection: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (demand centres, rate)
    purchases: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (stockpile slots, t)
    releases: list[tuple[np.ndarray, np.ndarray]] = field(
        default_factory=list
    )  # (stockpile slots, t offered)
    release_prices: list[tuple[np.ndarray, np.ndarray]] = field(
        default_factory=list
    )  # (stockpile slots, USD/t)
    contracts: list[Contract] = field(default_factory=list)  # served before the spot market


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
    # permitting and finance terms the investment stage applies to qualifying projects from the
    # instrument's start (investment_terms.py); None for the other instruments
    investment_term: dict[str, Any] | None = None

    def __init__(self, spec: Spec, model: ModelView) -> None:
        self.where = spec.where
        spec.raw("type")
        self.label = str(spec.raw("name", self.key))
        self.first = spec.month("start", model.start, default=None) or 0
        last = spec.month("end", model.start, default=None)
        self.has_end = last is not None  # an end announced with it (read by merchant holders)
        self.last = 10**9 if last is None else last
        if self.last <= self.first:
            raise DataError(f"{spec.where}.end: expected a month after start, got {spec.d.get('end')!r}")

    def _announcement(self, spec: Spec, model: ModelView) -> int | None:
        """The optional ``announced`` month of a trade restriction (at or before its start): from
        then on holders expect it (export controls and quotas)."""
        announced = spec.month("announced", model.start, default=None)
        if announced is not None and announced > self.first:
            raise DataError(
                f"{spec.where}.announced: expected a month at or before start, got {spec.d['announced']!r}"
            )
        return announced

    @classmethod
    def stores(cls, spec: Spec, world: World) -> list[tuple]:
        """Stockpile nodes the instrument needs, as (id, country, commodity, sell_to countries)."""
        return []

    def active(self, t: int) -> bool:
        return self.first <= t < self.last

    def modify(self, model: ModelView, t: int) -> Effects:
        """Scenario events: this month's capacity and demand factors and caps."""
        return Effects()

    def on_step(self, model: ModelView, t: int) -> Effects:
        """Update internal state (licence queues, quota balances, triggers); return the month's
        terms (price floors, collection rates)."""
        return Effects()

    def market(self, model: ModelView, request: np.ndarray) -> Effects:
        """The month's effects on the market, given the buyers' requests per slot (for limits
        in shares): caps, wedges, government purchases and releases, contracts."""
        return Effects()

    def after_clearing(self, model: ModelView) -> list[Payment]:
        """Act on the cleared market (stock accounting, balances) and return the month's
        payments and revenues; the settlement stage books them into the fiscal ledgers."""
        return []

    def on_year_end(self, model: ModelView, year: int) -> None:
        """Yearly bookkeeping."""

    def initial_stocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(slots, tonnes) the instrument holds when the run starts (a stockpile's first fill)."""
        return []

    def derisked_nodes(self, model: ModelView) -> np.ndarray:
        """Facility nodes whose volume or price this instrument makes certain (offtakes, price
        floors): investors there drop the risk premium from their cost of capital."""
        return np.zeros(0, dtype=np.int64)

    def announced_edges(self, t: int) -> np.ndarray | None:
        """Edges a control announced but not yet started will close (export controls with an
        ``announced`` month); ``None`` for the other instruments and outside that window."""
        return None


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
