"""critmin: an agent-based market simulator of critical-mineral supply chains.

>>> import critmin
>>> result = critmin.simulate(["scenario.end=2024-12"])      # doctest: +SKIP
>>> result.timeseries.query("variable == 'price'")           # doctest: +SKIP
"""

from critmin.sim.run import Result, simulate

__version__ = "0.1.0"
__all__ = ["Result", "__version__", "simulate"]
