"""recorder._from_codes: the consumption table's categorical columns from codes gathered in the
type pandas keeps, unchecked by pandas but checked here (codes outside the names fail)."""

import numpy as np
import pandas as pd
import pytest

from critmin.sim.recorder import _from_codes


@pytest.mark.parametrize("n_names", [3, 126, 127, 300])
def test_from_codes_is_pandas_from_codes(n_names: int) -> None:
    rng = np.random.default_rng(n_names)
    names = [f"n{i:03d}" for i in range(n_names)]
    codes, at = rng.integers(0, n_names, 50), rng.integers(0, 50, 1000)
    got = _from_codes(codes, at, names)
    expected = pd.Categorical.from_codes(codes[at], names)
    pd.testing.assert_extension_array_equal(got, expected)
    assert got.codes.dtype == expected.codes.dtype


def test_from_codes_refuses_codes_outside_the_names() -> None:
    with pytest.raises(ValueError, match="outside"):
        _from_codes(np.array([0, 3]), np.array([0, 1]), ["a", "b", "c"])
    with pytest.raises(ValueError, match="outside"):
        _from_codes(np.array([-1, 0]), np.array([1]), ["a"])
