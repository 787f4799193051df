"""The engine's run and the analysis layer, split: :func:`critmin.sim.run.run_model` returns the
run's tables without metrics, :func:`critmin.analysis.results.complete` adds them, and the two
together give what :func:`critmin.simulate` gives."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import critmin
from critmin.analysis.results import Result, complete, fit_metrics_to_world
from critmin.sim.run import (
    ModelRun,
    collect,
    demanded_commodities,
    load_config,
    new_model,
    run_model,
    world_meta,
)
from critmin.sim.world import DataError

SHORT = ["scenario=ree_2024_short", "scenario.end=2024-06"]


@pytest.fixture(scope="module")
def engine_run() -> ModelRun:
    return run_model(SHORT)


def test_the_engine_run_has_tables_but_no_metrics(engine_run):
    assert type(engine_run) is ModelRun
    assert not hasattr(engine_run, "metrics")
    assert "dependency" not in engine_run.summary  # the analysis layer's block
    assert {"world", "investment", "mass_balance_max_rel_error"} <= set(engine_run.summary)
    assert len(engine_run.timeseries) and len(engine_run.consumption_origin)


def test_complete_adds_the_metrics_and_equals_simulate(engine_run):
    before = json.dumps(engine_run.summary, sort_keys=True, default=str)
    done = complete(engine_run)
    assert isinstance(done, Result)
    assert json.dumps(engine_run.summary, sort_keys=True, default=str) == before  # input unchanged
    full = critmin.simulate(SHORT)
    assert set(done.metrics) == set(full.metrics) and "tidy" in done.metrics
    for name, table in full.metrics.items():
        pd.testing.assert_frame_equal(done.metrics[name], table, check_exact=True, obj=name)
    pd.testing.assert_frame_equal(done.timeseries, full.timeseries)
    assert done.summary["dependency"] == full.summary["dependency"]
    assert done.summary.keys() == full.summary.keys()


def test_a_complete_result_writes_the_metrics_and_the_report(engine_run, tmp_path):
    engine_only = engine_run.write(tmp_path / "engine")
    assert not (engine_only / "metrics.parquet").exists() and not (engine_only / "report.html").exists()
    out = complete(engine_run).write(tmp_path / "full", plots=False)
    assert (out / "metrics.parquet").is_file()
    assert "<html" in (out / "report.html").read_text()[:200].lower()
    assert "dependency" in json.loads((out / "summary.json").read_text())


def test_metric_checks_of_a_commodity_the_world_lacks_are_skipped_with_a_warning():
    cfg = load_config(["scenario=gallium_2024", "scenario.end=2024-03"])
    model = new_model(cfg)
    skipped = fit_metrics_to_world(cfg, world_meta(model), demanded_commodities(model))
    assert "ndfeb_magnet" in skipped
    assert [c.commodity for c in cfg.experiment.metrics.checks] == demanded_commodities(model)
    model.run()
    result = complete(collect(model, cfg), skipped)
    assert result.summary["dependency"]["skipped"] == skipped
    assert any("no ndfeb_magnet in this world" in w for w in result.warnings)


def test_a_bad_metric_setting_fails_before_the_run_naming_the_key():
    cfg = load_config([*SHORT, "experiment.metrics.region=ATLANTIS"])
    model = new_model(cfg)
    with pytest.raises(DataError, match=r"experiment\.metrics\.region"):
        fit_metrics_to_world(cfg, world_meta(model), demanded_commodities(model))


def test_known_commodities_read_as_pandas_reads_them(tmp_path):
    # the packaged chains' commodities.csv files, and one with quoted commas, a missing cell, a
    # byte-order mark and a file without the column: the csv module reads what pandas reads
    import pandas as pd

    from critmin.analysis.results import _read_commodities
    from critmin.sim.world import data_root

    odd = tmp_path / "a" / "commodities.csv"
    odd.parent.mkdir()
    odd.write_text(
        '\ufeffcommodity,note\nx_oxide,"a, b"\n,empty\nNA,missing\ny_metal,"c\nd"\n', encoding="utf-8"
    )
    none = tmp_path / "b" / "commodities.csv"
    none.parent.mkdir()
    none.write_text("name,stage\nz,mine\n")
    paths = [*sorted(data_root().glob("*/commodities.csv")), odd]
    want: set[str] = set()
    for p in paths:
        want |= set(pd.read_csv(p, usecols=["commodity"], dtype=str)["commodity"].dropna())
    assert _read_commodities([*paths, none]) == want
    assert {"x_oxide", "y_metal", "ndfeb_magnet"} <= want and "NA" not in want
