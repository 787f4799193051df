"""Golden outputs: three canonical runs must reproduce their stored digests (tests/golden/).

A change that moves a number regenerates them on purpose: ``make golden WHY="..."``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from golden_outputs import CASES, compare, golden_path, result_digest, run_case, table_digest


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_output_unchanged(name):
    path = golden_path(name)
    assert path.exists(), f"{path} missing: run `make golden WHY=...`"
    diffs = compare(json.loads(path.read_text()), result_digest(run_case(name)))
    assert not diffs, (
        f"{name}: {len(diffs)} outputs moved; if on purpose, `make golden WHY=...`:\n" + "\n".join(diffs[:20])
    )


def _table():
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "month": pd.date_range("2024-01", periods=50, freq="MS"),
            "region": pd.Categorical(rng.choice(["USA", "CHN", "JPN"], 50)),
            "value": rng.lognormal(8, 1, 50),
            "zero": np.zeros(50),
        }
    )


def _digest(df):
    return {"tables": {"t": table_digest(df)}, "summary": {}}


def test_digest_ignores_row_order_and_zero_rows_but_catches_any_moved_value():
    df = _table()
    base = _digest(df)
    shuffled = df.sample(frac=1.0, random_state=1)
    padded = pd.concat([shuffled, df.iloc[:3].assign(value=0.0)])
    assert compare(base, _digest(padded)) == []
    noise = df.assign(value=df.value * (1 + 1e-15))
    assert compare(base, _digest(noise)) == []
    for row in (0, 17, 49):
        moved = df.copy()
        moved.loc[row, "value"] *= 1 + 1e-9
        assert compare(base, _digest(moved)), f"a change of 1e-9 in row {row} went unnoticed"
    swapped = df.copy()
    swapped.loc[[0, 1], "value"] = swapped.loc[[1, 0], "value"].to_numpy()
    if df.loc[0, "region"] != df.loc[1, "region"]:
        assert compare(base, _digest(swapped))
    relabelled = df.assign(region=df.region.cat.rename_categories({"USA": "CAN"}))
    assert any("key_sha256" in d for d in compare(base, _digest(relabelled)))


def test_summary_numbers_compared_at_tolerance():
    a = {"tables": {}, "summary": {"/x": 1.0, "/name": "ree", "/err": 1e-16}}
    assert compare(a, {"tables": {}, "summary": {"/x": 1.0 + 1e-14, "/name": "ree", "/err": 3e-16}}) == []
    assert compare(a, {"tables": {}, "summary": {"/x": 1.001, "/name": "ree", "/err": 1e-16}})
    assert compare(a, {"tables": {}, "summary": {"/x": 1.0, "/name": "nd", "/err": 1e-16}})
