"""Timed changes: policy instruments (one module per instrument) and scenario events
(``events.py``), registered by a short name in one registry (DESIGN §6).

Importing this package registers them all; configs then name them by key.
"""

from critmin.policies import (  # noqa: F401  (imports register the instruments)
    certification,
    diversification,
    events,
    export_controls,
    investment_terms,
    offtake,
    price_floor,
    production_quota,
    quotas,
    recycling,
    stockpile,
    taxes,
)
from critmin.policies.base import (
    REGISTRY,
    Contract,
    Effects,
    Payment,
    Policy,
    Wedges,
    load_policies,
    register,
    required_stores,
)

__all__ = [
    "REGISTRY",
    "Contract",
    "Effects",
    "Payment",
    "Policy",
    "Wedges",
    "load_policies",
    "register",
    "required_stores",
]
