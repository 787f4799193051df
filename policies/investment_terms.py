"""Permitting acceleration and concessional finance: terms for qualifying projects.

They declare terms (``investment_term``) that the investment stage applies to qualifying projects
(countries × stages): fewer permitting months, a lower hurdle rate (sim/capacity.py ``_terms``);
concessional finance costs its government the loan's grant element at FID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from critmin.policies.base import Policy, register
from critmin.sim.spec import Spec

if TYPE_CHECKING:
    from critmin.sim.view import ModelView

STAGES = ("mine", "refining", "metal", "alloy", "magnet", "recycling")


def _stages(spec: Spec) -> list[str]:
    value = spec.raw("stages", default=list(STAGES))
    values = [value] if isinstance(value, str) else list(value)
    for v in values:
        if v not in STAGES:
            from critmin.sim.world import DataError

            raise DataError(f"{spec.where}.stages: expected stages from {list(STAGES)}, got {v!r}")
    return values


@register
class PermittingAcceleration(Policy):
    """Lead times of qualifying projects (``countries``, ``stages``) cut by ``lead_time_reduction``."""

    key = "permitting_acceleration"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        countries = [model.net.countries[i] for i in spec.countries("countries", model.net)]
        self.investment_term = {
            "kind": "permitting",
            "countries": countries,
            "stages": _stages(spec),
            "lead_time_reduction": spec.share("lead_time_reduction"),
            "from_step": self.first,
        }


@register
class ConcessionalFinance(Policy):
    """Cost of capital of qualifying projects lowered by ``rate_reduction`` (absolute, e.g. 0.02)."""

    key = "concessional_finance"

    def __init__(self, spec: Spec, model: ModelView) -> None:
        super().__init__(spec, model)
        countries = [model.net.countries[i] for i in spec.countries("countries", model.net)]
        self.investment_term = {
            "kind": "finance",
            "countries": countries,
            "stages": _stages(spec),
            "rate_reduction": spec.number("rate_reduction", 0.0, 0.2),
            "budget_usd": spec.number("budget_usd", 0.0, 1e13, default=1e13),
            "from_step": self.first,
        }
