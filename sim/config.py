"""Structured configuration (Hydra schema) and its value checks.

The dataclasses give Hydra the shape and types of a run config; each scenario parameter is
defined once, with unit, bounds, plausible range and source, in ``configs/parameters.csv``
(:mod:`critmin.sim.parameters`), and its values live in ``configs/scenario/*.yaml`` (fields marked
MISSING must come from there). :func:`check_config` checks a composed config before the model
starts: every parameter against the table, then the run window, seed, names and shock window.
Every check names the config key and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from critmin.sim.parameters import check_scenario
from critmin.sim.schemas import DataError


@dataclass
class MarketConfig:
    theta: float = MISSING
    kappa: float = MISSING
    storage_kappa: float = MISSING
    sigma: float = MISSING
    rho: float = MISSING
    max_log_step: float = MISSING
    passes: int = MISSING
    cover_target_months: float = MISSING
    utilisation_price_elasticity: float = MISSING
    choke_price_multiple: float = MISSING
    storage_response: float = MISSING
    storage_max_multiple: float = MISSING
    trend_weight: float = MISSING
    restriction_months: float = MISSING
    normal_sales_months: float = MISSING


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
    cost_plus_share: float = MISSING
    cash_cost_spread: float = MISSING
    restart_cost_months: float = MISSING


@dataclass
class DemandConfig:
    price_elasticity: float = MISSING
    long_run_elasticity: float = MISSING
    substitution_months: float = MISSING
    reversibility: float = MISSING
    safety_stock_months: float = MISSING
    stock_adjust_months: float = MISSING
    cover_dispersion: float = MISSING
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
    quota_headroom: float = MISSING


@dataclass
class RecyclingConfig:
    collection_price_elasticity: float = MISSING
    collection_max: float = MISSING


@dataclass
class ChemistryConfig:
    """Battery cell makers' chemistry choice (agents/chemistry.py)."""

    lfp_share_ev_2024: float = MISSING
    lfp_share_storage_2024: float = MISSING
    naion_share_storage_2024: float = MISSING
    nmc_ni_usd_per_kwh: float = MISSING
    nmc_co_usd_per_kwh: float = MISSING
    nmc_li_usd_per_kwh: float = MISSING
    lfp_li_usd_per_kwh: float = MISSING
    choice_scale_usd_per_kwh: float = MISSING
    adjust_months: float = MISSING
    naion_threshold_price_ratio: float = MISSING
    naion_full_price_ratio: float = MISSING
    naion_max_share_storage: float = MISSING


@dataclass
class ControlsConfig:
    """How holders of quotas and licences behave (policies/tranches.py, export_controls.py)."""

    front_loading: float = MISSING
    quota_under_use: float = MISSING
    grey_share: float = MISSING
    licence_withdrawal: float = MISSING


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
    chemistry: ChemistryConfig = field(default_factory=ChemistryConfig)
    controls: ControlsConfig = field(default_factory=ControlsConfig)
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
    # base years of the worlds the timeline is written for (empty: any). A replay of 2025 on the
    # 2024 world would count twice on a world whose 2025 flows already hold it.
    base_years: list[int] = field(default_factory=list)


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


# A world's data are a calibration of its base year (the year its headers name: prices, outputs,
# demand of that year), so a run starts in that year; a run may go on to LAST_END at most.
LAST_END = (2050, 12)
# names that become folder names (run folders, sweep records): letters, digits, _ . + -, not
# starting with a dot, so a name cannot climb out of output_root or be a path
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
NAME_KEYS = ("scenario.name", "policy.name", "shock.name", "experiment.name")


def check_folder_name(value: Any, key: str, source: str = "config") -> str:
    """A name used as a folder name: one plain path component inside the output folder."""
    if not isinstance(value, str) or not _FOLDER_NAME.match(value):
        raise DataError(
            f"{source}: key {key}: expected a plain name (letters, digits, _ . + -, not starting with "
            f"a dot, no '/'), got {value!r}"
        )
    return value


def _select(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


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
    check_scenario(sc, source)  # types, bounds and rules of configs/parameters.csv
    start = parse_month(sc.start, "scenario.start")
    end = parse_month(sc.end, "scenario.end")
    base_year = check_data(sc, source)
    if start[0] != base_year:
        raise DataError(
            f"{source}: key scenario.start: expected a month of {base_year} (the world's data "
            f"{sc.data!r} are a {base_year} calibration), got {sc.start!r}"
        )
    if end < start:
        raise DataError(
            f"{source}: key scenario.end: expected a month after scenario.start ({sc.start}), got {sc.end!r}"
        )
    if end > LAST_END:
        raise DataError(
            f"{source}: key scenario.end: expected a month up to {LAST_END[0]}-{LAST_END[1]:02d}, got {sc.end!r}"
        )
    seed = getattr(cfg, "seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise DataError(f"{source}: key seed: expected a whole number >= 0, got {seed!r}")
    if hasattr(cfg, "experiment") and hasattr(cfg, "policy"):
        for key in NAME_KEYS:
            check_folder_name(_select(cfg, key), key, source)
        check_shock_window(cfg, start, end, source)
        years = [int(y) for y in (getattr(cfg.shock, "base_years", None) or [])]
        if years and base_year not in years:
            raise DataError(
                f"configs/shock/{cfg.shock.name}.yaml: key base_years: the timeline is written for "
                f"worlds of {years}; scenario {sc.name!r} is a world of {base_year} (its data already "
                "hold what happened since, or not yet what the timeline assumes)"
            )


def check_data(sc: Any, source: str = "config") -> int:
    """``scenario.data`` names data folders that share one base year; returns the year."""
    from critmin.sim.world import base_year_of, data_root, one_base_year

    chains = [sc.data] if isinstance(sc.data, str) else list(sc.data or [])
    if not chains or not all(isinstance(c, str) and c for c in chains):
        raise DataError(
            f"{source}: key scenario.data: expected a data folder name or a list of them, got {sc.data!r}"
        )
    folders = [data_root() / chain for chain in chains]
    return one_base_year({folder: base_year_of(folder) for folder in folders})


def _windows(items: Any, where: str) -> list[tuple[str, tuple[int, int], tuple[int, int] | None]]:
    """(key, first month, end month or None) of each dated item (events, instruments)."""
    out = []
    for i, item in enumerate(list(items or [])):
        key = f"{where}[{i}]"
        get = item.get if hasattr(item, "get") else (lambda k, d=None: d)
        first = get("start", None)
        last = get("end", None)
        out.append(
            (
                key,
                parse_month(first, f"{key}.start") if first is not None else (0, 0),
                parse_month(last, f"{key}.end") if last is not None else None,
            )
        )
    return out


def _outside(
    first: tuple[int, int], last: tuple[int, int] | None, start: tuple[int, int], end: tuple[int, int]
) -> bool:
    """True when [first, last) has no month in the run [start, end]."""
    return first > end or (last is not None and last <= start)


def check_shock_window(
    cfg: Any, start: tuple[int, int], end: tuple[int, int], source: str = "config"
) -> None:
    """A shock other than ``none`` must act within the run: an empty shock file, or one whose
    every event and instrument lies before the start or after the end, would run as a no-shock
    run labelled with the shock's name."""
    shock = cfg.shock
    where = f"configs/shock/{shock.name}.yaml"
    items = _windows(shock.events, "shock.events") + _windows(shock.instruments, "shock.instruments")
    if shock.name == "none":
        return
    if not items:
        raise DataError(
            f"{where}: no events or instruments; expected at least one (shock=none runs without a shock)"
        )
    if all(_outside(first, last, start, end) for _, first, last in items):
        raise DataError(
            f"{where}: every event and instrument lies outside the run ({cfg.scenario.start} to "
            f"{cfg.scenario.end}), e.g. {items[0][0]}; expected at least one within it (change "
            "scenario.end or the shock's start/end)"
        )


def config_warnings(cfg: Any) -> list[str]:
    """What a run accepts but a reader should know (summary.json ``warnings``, and logged):
    instruments or shock parts that never act within the run, targets whose year is outside the
    run, benchmarks dated after it (:func:`config_notes` has those dated before it)."""
    start, end = (
        parse_month(cfg.scenario.start, "scenario.start"),
        parse_month(cfg.scenario.end, "scenario.end"),
    )
    out = []
    for items, where, what in (
        (cfg.policy.instruments, "policy.instruments", f"configs/policy/{cfg.policy.name}.yaml"),
        (cfg.shock.instruments, "shock.instruments", f"configs/shock/{cfg.shock.name}.yaml"),
        (cfg.shock.events, "shock.events", f"configs/shock/{cfg.shock.name}.yaml"),
        (cfg.scenario.events, "scenario.events", f"configs/scenario/{cfg.scenario.name}.yaml"),
    ):
        for key, first, last in _windows(items, where):
            if _outside(first, last, start, end):
                out.append(
                    f"{what}: {key} lies outside the run ({cfg.scenario.start} to {cfg.scenario.end}) "
                    "and never acts"
                )
    for i, target in enumerate(cfg.experiment.metrics.targets):
        if not start[0] <= int(target.year) <= end[0]:
            out.append(
                f"experiment.metrics.targets[{i}] ({target.name}): year {target.year} is outside the run "
                f"({start[0]}-{end[0]}); no verdict for it"
            )
    for i, bench in enumerate(cfg.experiment.metrics.benchmarks):
        if int(bench.year) > end[0]:
            out.append(_benchmark_outside(i, bench, start, end))
    return out


def config_notes(cfg: Any) -> list[str]:
    """Benchmarks dated before the run's first year: figures of an earlier world (the 2024
    benchmarks in a run of the world of 2026), expected, so noted in summary.json but not logged."""
    start, end = (
        parse_month(cfg.scenario.start, "scenario.start"),
        parse_month(cfg.scenario.end, "scenario.end"),
    )
    return [
        _benchmark_outside(i, bench, start, end)
        for i, bench in enumerate(cfg.experiment.metrics.benchmarks)
        if int(bench.year) < start[0]
    ]


def _benchmark_outside(i: int, bench: Any, start: tuple[int, int], end: tuple[int, int]) -> str:
    return (
        f"experiment.metrics.benchmarks[{i}] ({bench.label}): year {bench.year} is outside the run "
        f"({start[0]}-{end[0]}); not compared"
    )
