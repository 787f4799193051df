"""Reading config mappings (events, policy instruments) with errors that name the key.

A :class:`Spec` wraps one mapping from a config file and the place it came from (e.g.
``configs/policy/alliance_all.yaml: policy.instruments[2]``). Each accessor checks type and
range and raises :class:`~critmin.sim.world.DataError` naming the file, the key and what was
expected; :meth:`Spec.done` rejects keys nobody read (typos fail instead of being ignored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from critmin.sim.config import parse_month
from critmin.sim.network import Network
from critmin.sim.world import BLOCS, DataError


def plain(value: Any) -> Any:
    """OmegaConf nodes to plain Python containers."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


class Spec:
    """One config mapping and where it came from."""

    def __init__(self, mapping: Any, where: str) -> None:
        mapping = plain(mapping)
        if not isinstance(mapping, dict):
            raise DataError(f"{where}: expected a mapping of keys to values, got {mapping!r}")
        self.d = mapping
        self.where = where
        self.read: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.d

    def raw(self, key: str, default: Any = ...) -> Any:
        self.read.add(key)
        if key not in self.d:
            if default is ...:
                raise DataError(f"{self.where}: missing key '{key}'")
            return default
        return self.d[key]

    def text(self, key: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or (choices is not None and value not in choices):
            expected = f"one of {list(choices)}" if choices else "a string"
            raise DataError(f"{self.where}.{key}: expected {expected}, got {value!r}")
        return value

    def number(self, key: str, lo: float, hi: float, default: Any = ...) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise DataError(f"{self.where}.{key}: expected a number in [{lo}, {hi}], got {value!r}")
        return float(value)

    def share(self, key: str, default: Any = ...) -> float:
        return self.number(key, 0.0, 1.0, default)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise DataError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def month(self, key: str, start: tuple[int, int], default: Any = ...) -> int | None:
        """Month as a step index relative to the run start (``None`` if absent and allowed)."""
        value = self.raw(key, default)
        if value is None:
            return None
        y, m = parse_month(value, f"{self.where}.{key}")
        return (y - start[0]) * 12 + (m - start[1])

    def countries(self, key: str, net: Network, default: Any = ...) -> np.ndarray:
        """Country codes and/or bloc names (g7, partner, other) -> sorted country indices."""
        value = self.raw(key, default)
        values = [value] if isinstance(value, str) else list(value)
        out: set[int] = set()
        for v in values:
            if v in BLOCS:
                out.update(np.flatnonzero(net.blocs == v).tolist())
            else:
                out.add(net.country_index(v, f"{self.where}.{key}"))
        return np.array(sorted(out), dtype=np.int64)

    def commodities(self, key: str, net: Network, default: Any = ...) -> np.ndarray:
        value = self.raw(key, default)
        values = [value] if isinstance(value, str) else list(value)
        return np.array([net.commodity_index(v, f"{self.where}.{key}") for v in values], dtype=np.int64)

    def commodity(self, key: str, net: Network, default: Any = ...) -> int:
        """Exactly one commodity (an instrument that acts on one commodity must not silently
        take the first of a list)."""
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise DataError(f"{self.where}.{key}: expected one commodity name, got {value!r}")
        return net.commodity_index(value, f"{self.where}.{key}")

    def country(self, key: str, net: Network, default: Any = ...) -> int:
        """Exactly one country code (not a bloc or a list)."""
        value = self.raw(key, default)
        if not isinstance(value, str) or value in BLOCS:
            raise DataError(f"{self.where}.{key}: expected one country code, got {value!r}")
        return net.country_index(value, f"{self.where}.{key}")

    def done(self) -> None:
        """Fail on keys that were never read: a typo must not pass silently."""
        unknown = sorted(set(self.d) - self.read)
        if unknown:
            raise DataError(f"{self.where}: unknown key(s) {unknown}; expected only {sorted(self.read)}")


def share_schedule(raw: Any, where: str, key: str, low: int, high: int) -> list[tuple[int, float]]:
    """A list of ``{<key>: whole number in [low, high], share: s}`` entries, each key once, whose
    shares sum to 1 (within 1e-3): licence processing times, quota tranches. Sorted by key."""
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{where}: expected a list of {{{key}, share}}, got {raw!r}")
    out: list[tuple[int, float]] = []
    for i, item in enumerate(raw):
        sub = Spec(item, f"{where}[{i}]")
        value = sub.number(key, low, high)
        if value != int(value):
            raise DataError(f"{where}[{i}].{key}: expected a whole number in [{low}, {high}], got {value!r}")
        out.append((int(value), sub.share("share")))
        sub.done()
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise DataError(f"{where}: each {key} may appear once, got {keys}")
    total = sum(s for _, s in out)
    if abs(total - 1.0) > 1e-3:
        raise DataError(f"{where}: the shares must sum to 1, got {total:.4g}")
    return sorted(out)
