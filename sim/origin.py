"""Origin tracing: every stock carries, per origin stage, its mix of countries.

A mix array has shape ``[slots, stages, countries]``; a stage's row sums to 1 once material
has passed that stage and is all zero before. Flows mix by mass; a process stamps its stage
with its own country.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def mix_in(
    stock: np.ndarray,
    mix: np.ndarray,
    target: np.ndarray,
    amount: np.ndarray,
    incoming_mix: np.ndarray,
) -> None:
    """Add ``amount[i]`` of material with ``incoming_mix[i]`` to slot ``target[i]`` (in place).

    ``target`` may repeat; ``stock`` is the slots' stock *before* the additions.
    """
    n = stock.size
    shape = mix.shape[1:]
    add = np.bincount(target, weights=amount, minlength=n)
    touched = add > 0
    if not touched.any():
        return
    flat = incoming_mix.reshape(len(amount), -1) * amount[:, None]
    m = sp.csr_matrix((np.ones_like(amount), (target, np.arange(len(amount)))), shape=(n, len(amount)))
    added_mass = np.asarray(m @ flat)
    total = stock + add
    old = mix.reshape(n, -1) * stock[:, None]
    new = np.divide(old + added_mass, total[:, None], out=mix.reshape(n, -1).copy(), where=total[:, None] > 0)
    mix[touched] = new[touched].reshape((-1, *shape))


def stamp(mix: np.ndarray, stamp_mask: np.ndarray, clear_mask: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Copy of ``mix`` (rows × stages × countries) where, per row, the stages in ``clear_mask``
    are emptied and the stages in ``stamp_mask`` are set to one-hot ``country``."""
    out = mix.copy()
    out[clear_mask | stamp_mask] = 0.0
    rows, stages = np.nonzero(stamp_mask)
    out[rows, stages, country[rows]] = 1.0
    return out


def weighted_by_group(mix: np.ndarray, group: np.ndarray, weight: np.ndarray, n_groups: int) -> np.ndarray:
    """Mass-weighted mix per group (e.g. the traced inputs of each facility)."""
    flat = mix.reshape(mix.shape[0], -1) * weight[:, None]
    m = sp.csr_matrix((np.ones_like(weight), (group, np.arange(weight.size))), shape=(n_groups, weight.size))
    total = np.bincount(group, weights=weight, minlength=n_groups)
    out = np.divide(
        np.asarray(m @ flat),
        total[:, None],
        out=np.zeros((n_groups, flat.shape[1])),
        where=total[:, None] > 0,
    )
    return out.reshape((n_groups, *mix.shape[1:]))
