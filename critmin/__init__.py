"""critmin: an agent-based market simulator of critical-mineral supply chains.

>>> import critmin
>>> result = critmin.simulate(["scenario.end=2024-12"])      # doctest: +SKIP
>>> result.timeseries.query("variable == 'price'")           # doctest: +SKIP
"""

import os

# Arrow's default allocator (behind pandas' string columns and Parquet files) keeps freed memory
# for reuse; a run builds its tables once, writes them and ends, so the system allocator, which
# hands memory back, keeps its peak ~50 MiB lower. Read when pyarrow loads: set it before.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import gc

from critmin.analysis.results import Result
from critmin.experiments.api import simulate
from critmin.version import __version__

# what the imports above built (~140k objects of pandas, Mesa, Hydra, ...) lives as long as the
# process: kept out of the cyclic garbage collector's scans, a full collection during a run
# costs milliseconds instead of ~0.13 s (one falls in a seven-chain run)
gc.freeze()

__all__ = ["Result", "__version__", "simulate"]
