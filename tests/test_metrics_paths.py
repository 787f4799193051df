"""The metrics' dependency paths table is built from the checked pairs' arrays at once: the
same table as concatenating each pair's :func:`~critmin.analysis.metrics.dependency`."""

from __future__ import annotations

import pandas as pd

from critmin.analysis import metrics


def test_paths_table_is_the_concatenated_dependency_paths(short_run):
    tables = metrics.Tables.from_result(short_run)
    frames, arrays = {}, {}
    for chk in tables.settings["checks"]:
        for stage in chk["stages"]:
            d = metrics.default_definition(tables, chk["commodity"], stage)
            frames[(chk["commodity"], stage)] = metrics.dependency(tables, d)
            arrays[(chk["commodity"], stage)] = metrics.dependency_arrays(tables, d)
    assert len(frames) > 3
    want = pd.concat([p.assign(commodity=k[0], stage=k[1]) for k, p in frames.items()], ignore_index=True)
    got = metrics.paths_table(arrays)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.index.equals(want.index) and set(got["supplier"]) - {"none"}
    pd.testing.assert_frame_equal(short_run.metrics["paths"], want, check_exact=True)


def test_paths_table_without_checks_has_the_columns():
    empty = metrics.paths_table({})
    assert empty.empty and list(empty.columns) == [
        "period",
        "supplier",
        "share",
        "total",
        "commodity",
        "stage",
    ]
