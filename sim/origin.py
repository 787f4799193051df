"""Origin tracing: every stock carries, per origin stage, its mix of countries.

A mix array has shape ``[rows, stages, countries]``; a stage's row sums to 1 once material
has passed that stage and is all zero before. Flows mix by mass; a process stamps its stage
with its own country (:func:`stamp`).

Sums over fixed many-to-one maps (edges → buyer slots, input slots → nodes, ...) go through a
:class:`Scatter` built once per map, so the per-step work is one sparse product each.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Scatter:
    """Sum rows into groups: ``out[g] = Σ_{i: group[i] = g} values[i]`` (group fixed at build)."""

    def __init__(self, group: np.ndarray, n_groups: int) -> None:
        self.group = np.asarray(group, dtype=np.int64)
        self.n_groups = n_groups
        n = self.group.size
        self.matrix = sp.csr_matrix((np.ones(n), (self.group, np.arange(n))), shape=(n_groups, n))

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix @ values)

    def mix(self, mix: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Mass-weighted mix per group; groups with no mass get zeros."""
        flat = mix.reshape(mix.shape[0], -1) * weight[:, None]
        total = self.sum(weight)
        out = np.divide(
            self.sum(flat),
            total[:, None],
            out=np.zeros((self.n_groups, flat.shape[1])),
            where=total[:, None] > 0,
        )
        return out.reshape((self.n_groups, *mix.shape[1:]))


def mix_in(
    stock: np.ndarray, mix: np.ndarray, into: Scatter, amount: np.ndarray, incoming_mix: np.ndarray
) -> None:
    """Add ``amount[i]`` t carrying ``incoming_mix[i]`` to row ``into.group[i]`` of ``mix`` (in place).

    ``stock`` is the rows' stock *before* the additions; rows receiving nothing keep their mix.
    """
    add = into.sum(amount)
    touched = add > 0
    if not touched.any():
        return
    n = stock.size
    added_mass = into.sum(incoming_mix.reshape(amount.size, -1) * amount[:, None])
    total = stock + add
    old = mix.reshape(n, -1)
    new = (old[touched] * stock[touched, None] + added_mass[touched]) / total[touched, None]
    mix[touched] = new.reshape((-1, *mix.shape[1:]))


def stamp(mix: np.ndarray, stamp_mask: np.ndarray, clear_mask: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Copy of ``mix`` where, per row, the stages in ``clear_mask`` are emptied and the stages in
    ``stamp_mask`` are set to one-hot ``country``."""
    out = mix.copy()
    out[clear_mask | stamp_mask] = 0.0
    rows, stages = np.nonzero(stamp_mask)
    out[rows, stages, country[rows]] = 1.0
    return out
