"""Policy instruments: one module per instrument, registered by a short name (DESIGN §6)."""

from critmin.policies.base import REGISTRY, Policy, register

__all__ = ["REGISTRY", "Policy", "register"]
