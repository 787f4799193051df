"""The recorder keeps its arrays in a few large allocations (fewer page faults in a fresh
process, issue 11): the same values as separate arrays, freed as before."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from critmin.sim import recorder
from critmin.sim.recorder import Recorder, zeroed_arrays


def test_zeroed_arrays_are_aligned_zeroed_views_of_one_allocation():
    parts = {"a": ((5, 7), np.float64), "b": ((3,), np.int16), "c": ((2, 3, 4), np.float32)}
    out = zeroed_arrays(parts)
    for name, (shape, dtype) in parts.items():
        a = out[name]
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % 64 == 0 and not a.any()
    assert _owner(a).nbytes >= 5 * 7 * 8 + 3 * 2 + 2 * 3 * 4
    out["b"][:] = -1  # writing one array leaves the others as they are
    assert not out["a"].any() and not out["c"].any()
    assert _owner(out["a"]) is _owner(out["b"]) is _owner(out["c"])


def _owner(a: np.ndarray) -> object:
    """The object that holds an array's memory (the memory map's buffer)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


class _Bare:
    """A recorder without a model: only its triple blocks are used."""

    _keep_mix = Recorder._keep_mix

    def __init__(self) -> None:
        self._mix_block = None
        self._mix_at = 0


def test_kept_triples_equal_their_casts_across_blocks(monkeypatch):
    monkeypatch.setattr(recorder, "MIX_BLOCK", 8)
    rec = _Bare()
    rng = np.random.default_rng(0)
    kept, want = [], []
    for n in (3, 4, 0, 2, 13, 1):  # fills a block, starts the next, one larger than a block
        rows = rng.integers(0, 1000, n)
        cols = rng.integers(0, 80, n)
        values = rng.random(n) / 3
        kept.append(rec._keep_mix(rows, cols, values))
        want.append((rows.astype(np.int32), cols.astype(np.int16), values.astype(np.float32)))
    for got, exp in zip(kept, want, strict=True):
        for g, e in zip(got, exp, strict=True):
            assert g.dtype == e.dtype and np.array_equal(g, e)
    # the 13-triple month has a block of its own, rounded up to a multiple of 4
    assert _owner(kept[4][0]).nbytes == 10 * 16
    assert _owner(kept[0][0]) is _owner(kept[1][0]) is not _owner(kept[3][0])


def test_a_block_is_freed_with_the_last_month_it_holds(monkeypatch):
    monkeypatch.setattr(recorder, "MIX_BLOCK", 8)
    rec = _Bare()
    months = [rec._keep_mix(np.arange(4), np.arange(4), np.ones(4)) for _ in range(2)]
    block = weakref.ref(_owner(rec._mix_block[0]))
    rec._mix_block = None
    del months[0]
    gc.collect()
    assert block() is not None  # the second month still holds it
    months.clear()
    gc.collect()
    assert block() is None


@pytest.mark.parametrize("n", [0, 5])
def test_an_empty_or_small_month_needs_no_new_block(n):
    rec = _Bare()
    rec._keep_mix(np.arange(2), np.arange(2), np.ones(2))
    first = rec._mix_block
    r, c, v = rec._keep_mix(np.arange(n), np.arange(n), np.ones(n))
    assert rec._mix_block is first and r.size == c.size == v.size == n
