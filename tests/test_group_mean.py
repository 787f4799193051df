"""capacity.group_mean: the per-group means of the new-plant presence templates, in NumPy, the
same numbers as the pandas groupby they replaced (bit for bit: the share parameters of every
planned plant come from them, and the goldens guard the runs)."""

import numpy as np
import pandas as pd
import pytest

from critmin.sim.capacity import group_mean


@pytest.mark.parametrize("seed", range(4))
def test_group_mean_is_pandas_transform_mean_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(40):
        n, groups = int(rng.integers(1, 2000)), int(rng.integers(1, 300))
        key = rng.integers(0, groups, n) * 7 + 3  # sparse key values, as the combined codes
        scale = 10.0 ** rng.integers(-10, 10)
        # mixed signs and magnitudes: a naive sum in row order differs from the compensated one
        values = (rng.standard_normal(n) if trial % 2 else rng.lognormal(0, 3, n)) * scale
        values[rng.random(n) < rng.random()] = np.nan  # skipped; a group of NaNs only: NaN
        if trial % 4 == 0:  # rows sorted by key (and, when none is NaN, pandas' reduceat path)
            key = np.sort(key)
        if trial % 8 == 0:
            values = np.where(np.isnan(values), 1.0, values)
        expected = pd.Series(values).groupby(key).transform("mean").to_numpy()
        assert np.array_equal(group_mean(key, values), expected, equal_nan=True)


@pytest.mark.parametrize("sorted_keys", [False, True])
def test_group_mean_adds_as_pandas_does(sorted_keys: bool) -> None:
    """Values whose sum depends on how they are added (1 + 1e100 + 1 - 1e100 + 3 + 1e16 - 1e16
    + 1 ...): pandas adds a group's values with a compensated sum, or, when no value is NaN and
    the rows come sorted by key, by ``np.add.reduceat``; the two differ here, and so must
    group_mean, as pandas."""
    values = np.array([1.0, 1e100, 1.0, -1e100, 3.0, 1e16, -1e16, 1.0])
    key = np.repeat([0, 1], 4) if sorted_keys else np.array([0, 1, 0, 1, 1, 0, 1, 0])
    for v in (values, np.r_[values, np.nan]):
        k = np.r_[key, 1][: v.size]
        expected = pd.Series(v).groupby(k).transform("mean").to_numpy()
        assert np.array_equal(group_mean(k, v), expected, equal_nan=True)
    naive = group_mean(np.repeat([0, 1], 4), values)
    kahan = group_mean(np.repeat([0, 1], 4)[[0, 1, 2, 3, 4, 5, 6, 7, 7]], np.r_[values, np.nan])
    assert naive[0] != kahan[0]  # the two ways of adding do give different numbers here
