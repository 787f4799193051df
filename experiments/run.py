"""``critmin run``: one simulation as a Hydra app."""

from __future__ import annotations

import logging
import sys
import time

import hydra
from omegaconf import DictConfig

from critmin.sim.run import config_dir, output_dir, simulate
from critmin.sim.world import DataError

log = logging.getLogger("critmin")


def run_job(cfg: DictConfig) -> str:
    """Simulate ``cfg`` and write its run folder; returns the folder."""
    logging.getLogger("mesa").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    t0 = time.perf_counter()
    result = simulate(cfg)
    out = output_dir(cfg)
    result.write(out, plots=cfg.experiment.plots, flows=cfg.experiment.write_flows)
    s = result.summary
    log.info(
        "%s: %d months in %.2fs; mass balance max rel. error %.1e; wrote %s",
        s["scenario"],
        s["months"],
        time.perf_counter() - t0,
        s["mass_balance_max_rel_error"],
        out,
    )
    return str(out)


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> str:
    try:
        return run_job(cfg)
    except DataError as exc:
        log.error("bad input: %s", exc)
        sys.exit(2)
