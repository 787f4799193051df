"""Structured configuration (Hydra schema) and its value checks.

The dataclasses give types; the values live once, with their sources and sweep ranges in the
comment beside each, in ``configs/scenario/*.yaml`` (fields marked MISSING must come from
there). :func:`check_config` adds the economic checks (signs, ranges, known names) that types
cannot express. Every check names the config key and what was expected, and runs before the
model starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from critmin.sim.world import DataError


@dataclass
class MarketConfig:
    theta: float = MISSING
    kappa: float = MISSING
    sigma: float = MISSING
    rho: float = MISSING
    max_log_step: float = MISSING
    passes: int = MISSING
    cover_target_months: float = MISSING
    utilisation_price_elasticity: float = MISSING


@dataclass
class ProducerConfig:
    supply_elasticity: float = MISSING
    capacity_growth_per_year: float = MISSING
    expectation_weight: float = MISSING
    input_cover_months: float = MISSING
    stock_adjust_months: float = MISSING
    outage_rate_per_year: float = MISSING
    outage_capacity_loss: float = MISSING
    outage_months: int = MISSING


@dataclass
class DemandConfig:
    price_elasticity: float = MISSING
    long_run_elasticity: float = MISSING
    substitution_months: float = MISSING
    reversibility: float = MISSING
    safety_stock_months: float = MISSING
    stock_adjust_months: float = MISSING
    noise_sd: float = MISSING
    carrying_cost_per_year: float = MISSING


@dataclass
class InvestmentConfig:
    """Decision parameters of the pipeline (sim/investment.py); project data and lead times
    come from each chain's investment.csv."""

    enabled: bool = True
    expectation_months: float = MISSING
    fid_pi_scale: float = MISSING
    announce_rate_per_year: float = MISSING
    expansion_share: float = MISSING
    schedule_overrun: float = MISSING
    exit_months: float = MISSING


@dataclass
class RecyclingConfig:
    collection_price_elasticity: float = MISSING
    collection_max: float = MISSING


@dataclass
class ScenarioConfig:
    name: str = "ree_2024"
    data: Any = "ree"  # one chain's data folder under data/, or a list of them (one world)
    start: str = "2024-01"
    end: str = "2035-12"
    max_suppliers: int | None = None
    blocs: dict[str, str] = field(default_factory=dict)
    market: MarketConfig = field(default_factory=MarketConfig)
    producers: ProducerConfig = field(default_factory=ProducerConfig)
    demand: DemandConfig = field(default_factory=DemandConfig)
    investment: InvestmentConfig = field(default_factory=InvestmentConfig)
    recycling: RecyclingConfig = field(default_factory=RecyclingConfig)
    events: list[Any] = field(default_factory=list)


@dataclass
class PolicyConfig:
    name: str = "none"
    instruments: list[Any] = field(default_factory=list)


@dataclass
class ShockConfig:
    name: str = "none"
    events: list[Any] = field(default_factory=list)
    instruments: list[Any] = field(default_factory=list)  # a foreign government's controls


@dataclass
class DependencyCheck:
    commodity: str = MISSING
    stages: list[str] = field(default_factory=list)


@dataclass
class TargetConfig:
    name: str = MISSING
    threshold: float = MISSING  # share, e.g. 0.6
    year: int = 2030
    region: str | None = None  # default: metrics.region


@dataclass
class BenchmarkConfig:
    label: str = MISSING
    region: str = MISSING
    commodity: str = MISSING
    stage: str = MISSING
    basis: str = MISSING
    scope: str = MISSING
    year: int = MISSING
    supplier: str = MISSING
    value: float = MISSING
    source: str = ""
    outside: str | None = None


@dataclass
class MetricsConfig:
    """Dependency definition, target checks and report settings (values: configs/experiment/)."""

    region: str = MISSING  # the bloc whose dependency is measured
    basis: str = MISSING  # mass | value
    scope: str = MISSING  # consumption | imports
    regions: dict[str, list[str]] = field(default_factory=dict)  # named groups of blocs/countries
    checks: list[DependencyCheck] = field(default_factory=list)
    targets: list[TargetConfig] = field(default_factory=list)
    alternatives: list[dict[str, str]] = field(default_factory=list)  # other definitions shown
    benchmarks: list[BenchmarkConfig] = field(default_factory=list)  # sourced baseline figures
    recovery_band: float = MISSING
    baseline_run: str | None = None  # run folder to compare consumer cost against
    report: bool = True


@dataclass
class ExperimentConfig:
    name: str = "default"
    plots: bool = True
    write_flows: bool = True
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # Execution settings (docs/sweeps_laptop.md). Each simulation's config has them reset to
    # these defaults, so a run's folder and hash depend only on what is simulated.
    seeds_per_job: int = 1  # a job simulates seeds seed .. seed+seeds_per_job-1, one folder each
    overwrite: bool = False  # sweeps (-m) skip runs with a DONE marker unless this is true
    # sweeps (-m) redo a finished run whose input data or code changed since, unless this is true
    # (then the earlier, stale result is kept and reported as reused)
    reuse_stale: bool = False


@dataclass
class RunConfig:
    seed: int = 0
    output_root: str = "outputs"
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    shock: ShockConfig = field(default_factory=ShockConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


# key -> (low, high, inclusive-low); the values every run must satisfy (not the sweep ranges)
_BOUNDS = {
    "market.theta": (0.0, 10.0),
    "market.kappa": (0.0, 10.0),
    "market.sigma": (0.0, 10.0),
    "market.rho": (0.0, 1.0),
    "market.max_log_step": (1e-6, 5.0),
    "market.passes": (1, 50),
    "market.cover_target_months": (1e-3, 60.0),
    "market.utilisation_price_elasticity": (0.0, 5.0),
    "producers.supply_elasticity": (0.0, 20.0),
    "producers.capacity_growth_per_year": (-0.5, 1.0),
    "producers.expectation_weight": (1e-6, 1.0),
    "producers.input_cover_months": (0.0, 60.0),
    "producers.stock_adjust_months": (1.0, 120.0),
    "producers.outage_rate_per_year": (0.0, 12.0),
    "producers.outage_capacity_loss": (0.0, 1.0),
    "producers.outage_months": (0, 120),
    "demand.price_elasticity": (0.0, 20.0),
    "demand.long_run_elasticity": (0.0, 20.0),
    "demand.substitution_months": (1.0, 240.0),
    "demand.reversibility": (0.0, 1.0),
    "investment.expectation_months": (1.0, 240.0),
    "investment.fid_pi_scale": (1e-3, 10.0),
    "investment.announce_rate_per_year": (0.0, 12.0),
    "investment.expansion_share": (0.0, 1.0),
    "investment.schedule_overrun": (0.5, 5.0),
    "investment.exit_months": (1.0, 240.0),
    "recycling.collection_price_elasticity": (0.0, 5.0),
    "recycling.collection_max": (0.0, 1.0),
    "demand.safety_stock_months": (0.0, 60.0),
    "demand.stock_adjust_months": (1.0, 120.0),
    "demand.noise_sd": (0.0, 2.0),
    "demand.carrying_cost_per_year": (0.0, 1.0),
}


def parse_month(value: str, key: str) -> tuple[int, int]:
    """'YYYY-MM' -> (year, month), with an error naming the key."""
    try:
        year, month = str(value).split("-")[:2]
        y, m = int(year), int(month)
        if not 1 <= m <= 12:
            raise ValueError
        return y, m
    except ValueError:
        raise DataError(f"config key {key}: expected a month 'YYYY-MM', got {value!r}") from None


def check_config(cfg: Any, source: str = "config") -> None:
    """Value checks on a resolved RunConfig (or an OmegaConf node shaped like it)."""
    sc = cfg.scenario
    for key, (lo, hi) in _BOUNDS.items():
        group, name = key.split(".")
        value = getattr(getattr(sc, group), name)
        if not isinstance(value, int | float) or not lo <= value <= hi:
            raise DataError(f"{source}: key scenario.{key}: expected a number in [{lo}, {hi}], got {value!r}")
    if sc.demand.long_run_elasticity < sc.demand.price_elasticity:
        raise DataError(
            f"{source}: key scenario.demand.long_run_elasticity: expected >= demand.price_elasticity "
            f"({sc.demand.price_elasticity}), got {sc.demand.long_run_elasticity}"
        )
    start = parse_month(sc.start, "scenario.start")
    end = parse_month(sc.end, "scenario.end")
    if end < start:
        raise DataError(
            f"{source}: key scenario.end: expected a month after scenario.start ({sc.start}), got {sc.end!r}"
        )
    chains = [sc.data] if isinstance(sc.data, str) else list(sc.data or [])
    if not chains or not all(isinstance(c, str) and c for c in chains):
        raise DataError(
            f"{source}: key scenario.data: expected a data folder name or a list of them, got {sc.data!r}"
        )
    if sc.max_suppliers is not None and sc.max_suppliers < 1:
        raise DataError(f"{source}: key scenario.max_suppliers: expected a whole number >= 1 or null")
