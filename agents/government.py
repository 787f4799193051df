"""Governments: one per country; hold instruments, a stockpile account and a fiscal ledger.

Instruments (policies/) act through the model's declared hooks; the government that owns an
instrument pays for it and records the cost here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from critmin.policies.base import Payment
    from critmin.sim.view import ModelView


class Government(mesa.Agent):
    """A country's government."""

    def __init__(self, model: ModelView, country: str, bloc: str) -> None:
        super().__init__(model)
        self.country = country
        self.bloc = bloc
        self.policies: list = []
        self.ledger: list[tuple[int, str, float]] = []  # (step, item, USD; + spent, − received)
        self.private_costs: list[tuple[int, str, float]] = []  # costs its rules put on firms

    def book(self, payment: Payment) -> None:
        """Book a payment an instrument returned (policies.base.Payment) in the fiscal ledger, or
        with the costs on firms when it is private."""
        if payment.private:
            self.record_private(payment.item, payment.usd)
        else:
            self.record(payment.item, payment.usd)

    def record(self, item: str, usd: float) -> None:
        """Book a fiscal flow: positive = the treasury pays, negative = it receives."""
        self.ledger.append((self.model.state.t, item, float(usd)))

    def record_private(self, item: str, usd: float) -> None:
        """Book a compliance cost that the government's rules impose on firms."""
        self.private_costs.append((self.model.state.t, item, float(usd)))

    @property
    def fiscal_cost(self) -> float:
        return sum(v for _, _, v in self.ledger)
