"""metrics._weighted_run_sums: the imports aggregate's per-run weighted sums of origin shares, a
block of whole runs at a time; the same numbers as one reduceat over all the rows."""

import numpy as np
import pytest

from critmin.analysis import metrics


@pytest.mark.parametrize("seed", range(3))
def test_weighted_run_sums_are_one_reduceat_bit_for_bit(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(metrics, "_RUN_SUM_ROWS", 64)  # many blocks, and runs longer than one
    for _ in range(60):
        n, k = int(rng.integers(1, 3000)), int(rng.integers(1, 40))
        mix = rng.random((n + 10, k)).astype(np.float32)
        mix[rng.random(mix.shape) < 0.6] = 0.0
        rows, weight = rng.integers(0, n + 10, n), rng.lognormal(0, 2, n)
        key = np.sort(rng.integers(0, max(1, n // int(rng.integers(1, 200))), n))
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        expected = np.add.reduceat(mix[rows] * weight[:, None], starts, axis=0)
        got = metrics._weighted_run_sums(mix, rows, weight, starts)
        assert got.shape == expected.shape and np.array_equal(got, expected)


def test_weighted_run_sums_of_no_rows() -> None:
    out = metrics._weighted_run_sums(
        np.zeros((3, 4), np.float32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    )
    assert out.shape == (0, 4)


@pytest.mark.parametrize("seed", range(2))
def test_run_sums_of_several_weights_equal_each_alone(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The imports aggregate's mass and value bases in one pass over the blocks: each the sums
    of its own call, bit for bit (and different weights give different sums)."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(metrics, "_RUN_SUM_ROWS", 64)
    for _ in range(30):
        n, k = int(rng.integers(2, 2000)), int(rng.integers(1, 40))
        mix = rng.random((n + 10, k)).astype(np.float32)
        rows = rng.integers(0, n + 10, n)
        weights = [rng.lognormal(0, 2, n), rng.lognormal(3, 1, n), np.zeros(n)]
        key = np.sort(rng.integers(0, max(1, n // int(rng.integers(1, 200))), n))
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        got = metrics._weighted_run_sums_many(mix, rows, weights, starts)
        alone = [metrics._weighted_run_sums(mix, rows, w, starts) for w in weights]
        expected = [np.add.reduceat(mix[rows] * w[:, None], starts, axis=0) for w in weights]
        for g, a, e in zip(got, alone, expected, strict=True):
            assert np.array_equal(g, a) and np.array_equal(g, e)
        assert not np.array_equal(got[0], got[1]) and not got[2].any()
