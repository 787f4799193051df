"""Shared fixtures: short runs of the packaged world, cached per session."""

from __future__ import annotations

import os

import pytest

# the disk cache of worlds, networks and calibrations (critmin.sim.cache) is off in the suite,
# subprocesses included: every test builds what it checks (tests/test_disk_cache.py turns it on)
os.environ["CRITMIN_CACHE"] = "off"

from critmin.experiments.api import simulate
from critmin.sim.run import load_config


@pytest.fixture(scope="session")
def short_run():
    """The ree_2024 world, Jan 2024 - Dec 2025, default seed."""
    return simulate(load_config(["scenario=ree_2024_short"]), keep_model=True)
