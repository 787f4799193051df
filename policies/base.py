"""The contract every instrument follows, and the registry configs name instruments by.

A config names an instrument by its registry key, never by an import path, so loading a
shared scenario file cannot execute arbitrary code. The model calls the hooks at fixed points
of its step (DESIGN §3): ``on_event`` (step 2), ``edge_caps`` and ``edge_costs`` (before
clearing), ``after_clearing`` (step 6) and ``on_year_end``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from critmin.sim.events import Modifiers
    from critmin.sim.model import CritminModel


class Policy:
    """Base class: every hook is a no-op; an instrument overrides the ones it acts through."""

    key: ClassVar[str]

    def __init__(self, spec: dict[str, Any], model: CritminModel, where: str) -> None:
        self.spec = spec
        self.where = where

    def on_event(self, model: CritminModel, t: int) -> None:
        """Update internal state (licence queues, quota balances, triggers)."""

    def edge_caps(self, model: CritminModel, mods: Modifiers) -> None:
        """Tighten per-edge or group caps for this step."""

    def edge_costs(self, model: CritminModel, wedge: np.ndarray) -> None:
        """Add ad valorem or specific wedges to delivered costs."""

    def after_clearing(self, model: CritminModel) -> None:
        """Act on the cleared market (payments, purchases, releases)."""

    def on_year_end(self, model: CritminModel, year: int) -> None:
        """Yearly bookkeeping."""


REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make an instrument available to configs under ``cls.key``."""
    if cls.key in REGISTRY:
        raise ValueError(f"instrument key {cls.key!r} registered twice")
    REGISTRY[cls.key] = cls
    return cls
