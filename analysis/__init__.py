"""Analysis of run results: metrics, comparisons, the validation scorecard, plots and reports.

Reads the tables a run produced (in memory or in a run folder), never changes them; the engine
(sim/, agents/, policies/) never imports this package (contracts in pyproject.toml).
"""
