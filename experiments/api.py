"""The notebook API: :func:`simulate` runs the model and analyses the run, as ``critmin run`` does.

>>> import critmin
>>> result = critmin.simulate(["scenario.end=2024-12"])      # doctest: +SKIP
>>> result.metrics["targets"]                                 # doctest: +SKIP

The engine's part alone (tables, no metrics) is :func:`critmin.sim.run.run_model`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from critmin.analysis.results import Result, complete, fit_metrics_to_world
from critmin.sim.run import (
    collect,
    demanded_commodities,
    load_config,
    new_model,
    start_code_version,
    world_meta,
)

if TYPE_CHECKING:
    from critmin.sim.model import CritminModel


def simulate(
    overrides: list[str] | DictConfig | None = None,
    *,
    keep_model: bool = False,
    after_run: Callable[[CritminModel], object] | None = None,
) -> Result:
    """Compose a config (or take a resolved one; its metric checks are fitted to the world in
    place), run the model to its horizon, return its tables with the metrics. Bad input fails
    before the first month, naming the key. ``after_run``: called with the model at the end of
    its run, before its tables are collected (``critmin run`` starts drawing its plots there);
    it must not change the model."""
    cfg = overrides if isinstance(overrides, DictConfig) else load_config(overrides)
    start_code_version()  # the manifest's code version, asked of git while the model runs
    model = new_model(cfg)
    skipped = fit_metrics_to_world(cfg, world_meta(model), demanded_commodities(model))
    model.run()
    if after_run is not None:
        after_run(model)
    run = collect(model, cfg, keep_model, discard=True)
    # the recorder's arrays are in the tables now: free them before the metrics. The model's
    # agents and the model refer to each other, so dropping the name frees nothing until the
    # cyclic collector runs (~35 MiB of arrays kept through the metrics and every output).
    # What it frees stays with the allocator for the metrics to reuse: handed back to the
    # system here (malloc_trim), the metrics faulted it in again page by page (~1,700 page
    # faults, ~15 ms of each later run of a process; the peak of ``critmin run``, measured
    # with and without, is the same: Result.write hands it back before its outputs)
    del model
    if not keep_model:
        gc.collect()
    return complete(run, skipped)
