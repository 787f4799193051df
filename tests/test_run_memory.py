"""What ``critmin run`` frees to keep its peak memory down changes no number and no file."""

from __future__ import annotations

import weakref
from pathlib import Path

import pandas as pd
import pytest

from critmin.experiments import api
from critmin.sim.run import load_config


def test_simulate_frees_the_model_before_the_metrics(monkeypatch):
    """The model and its agents refer to each other: without a collection it stays in memory
    through the metrics and every output."""
    built: list[weakref.ref] = []
    new_model = api.new_model

    def spy(cfg):
        model = new_model(cfg)
        built.append(weakref.ref(model))
        return model

    seen_in_complete: list[bool] = []
    complete = api.complete

    def spy_complete(run, skipped):
        seen_in_complete.append(built[0]() is not None)
        return complete(run, skipped)

    monkeypatch.setattr(api, "new_model", spy)
    monkeypatch.setattr(api, "complete", spy_complete)
    result = api.simulate(load_config(["scenario=ree_2024_short", "scenario.end=2024-03"]))
    assert result.model is None and seen_in_complete == [False]


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def test_write_with_release_writes_the_same_files(tmp_path):
    result = api.simulate(load_config(["scenario=ree_2024_short", "scenario.end=2024-12"]))
    flows_columns = list(result.flows.columns)
    kept, released = tmp_path / "kept", tmp_path / "released"
    result.write(kept)
    result.write(released, release=True)
    a, b = _frames(kept), _frames(released)
    assert set(a) == set(b) and {"flows.parquet", "consumption_origin.parquet"} <= set(a)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    for name in ["summary.json", "report.html", *(f"plots/{p.name}" for p in (kept / "plots").glob("*.png"))]:
        assert (kept / name).read_bytes() == (released / name).read_bytes(), name
    # the written tables are dropped from the result: no rows, the same columns
    assert result.flows.empty and list(result.flows.columns) == flows_columns
    assert result.consumption_origin.empty


def test_flows_built_consuming_the_origin_shares_is_the_same_table():
    from critmin.sim.run import new_model

    model = new_model(load_config(["scenario=ree_2024_short", "scenario.end=2024-12"]))
    model.run()
    rec = model.recorder
    kept = rec.flows()
    assert len(rec.pair_mix) == model.state.t  # building it kept the shares
    consumed = rec.flows(consume=True)
    assert rec.pair_mix == []  # ... and this one freed them
    assert len(kept) > 100 and kept.shape[1] > 10
    pd.testing.assert_frame_equal(consumed, kept, check_exact=True)
    with pytest.raises(RuntimeError, match="freed"):
        rec.flows()  # not a table without its origin columns


def test_collect_keeps_the_origin_shares_unless_the_model_is_discarded():
    from critmin.sim.run import collect, new_model

    cfg = load_config(["scenario=ree_2024_short", "scenario.end=2024-06"])
    model = new_model(cfg)
    model.run()
    run = collect(model, cfg)
    pd.testing.assert_frame_equal(model.recorder.flows(), run.flows, check_exact=True)
    again = collect(model, cfg, discard=True)
    pd.testing.assert_frame_equal(again.flows, run.flows, check_exact=True)
    assert model.recorder.pair_mix == []


def test_plots_leave_the_frozen_objects_frozen(short_run, tmp_path):
    """import critmin freezes what the imports built; freeing each figure must not thaw it."""
    import gc

    from critmin.analysis.plots import write_plots

    frozen = gc.get_freeze_count()
    assert frozen > 0
    write_plots(short_run, tmp_path)
    assert gc.get_freeze_count() == frozen


def test_matplotlib_objects_are_frozen_once_per_process():
    import subprocess
    import sys

    script = (
        "import gc, critmin\n"
        "from critmin.analysis.results import load_matplotlib\n"
        "n0 = gc.get_freeze_count(); load_matplotlib(); n1 = gc.get_freeze_count()\n"
        "load_matplotlib(); print(n0, n1, gc.get_freeze_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    n0, n1, n2 = map(int, out.stdout.split())
    assert n1 > n0 + 10_000  # matplotlib's objects joined the frozen ones
    assert n2 == n1  # ... once
