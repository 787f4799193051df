"""Sensitivity configs (``configs/sensitivity/*.yaml``): parameters, ranges, outputs, validation.

A config names the run every sample starts from (``base_overrides``), the parameters to vary
(dotted run-config key; a parameter of ``configs/parameters.csv`` is varied over its plausible
range unless the config gives a ``[low, high]`` range with the ``basis`` of it, within the
parameter's bounds), the outputs and the default design sizes. :func:`load_sensitivity_config`
checks all of it against the composed run config and the base run's world before any
simulation; every error names the file, the key and what was expected.

Output kinds (what :meth:`OutputSpec.value` extracts from a :class:`~critmin.analysis.results.Result`):

- ``dependency``: the single-supplier dependency share in a year, as in every run's metrics
  (share of the region's consumption of a commodity whose origin stage happened in the largest
  supplier outside the region; region, basis and scope default to ``experiment.metrics``);
- ``peak_price_ratio``: the highest monthly world seller price of a commodity (optionally within
  ``from_month``..``to_month``) over its base-year calibration price (``commodities.csv``);
- ``fiscal_cost``: total government spending over the run, every country and instrument, USD;
- ``unmet_share``: final demand left unmet over final demand, tonnes summed over the run, in a
  region (``WORLD`` = every country).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from critmin.analysis.results import Result
from critmin.experiments.sensitivity_core import Problem, SensitivityError
from critmin.sim import parameters
from critmin.sim.config import check_config, parse_month
from critmin.sim.run import config_dir, load_config
from critmin.sim.world import DataError

# every sample runs quietly: no plots, no flows table, no report, nothing written
QUIET = ["experiment.plots=false", "experiment.write_flows=false", "experiment.metrics.report=false"]
TOP_KEYS = {"name", "description", "seed", "base_overrides", "morris", "sobol", "parameters", "outputs"}
DESIGN_KEYS = {"morris": {"trajectories", "levels"}, "sobol": {"n", "second_order"}}


class ConfigError(SensitivityError):
    """A bad sensitivity config (the message names the file, the key and what was expected)."""


# ---------------------------------------------------------------------- outputs
def dependency_share(result: Result, commodity: str, stage: str, year: int, region: str | None) -> float:
    """Single-supplier dependency share of ``region`` (default: experiment.metrics.region) in ``year``."""
    path = result.dependency(commodity, stage, region=region).set_index("period")
    if year not in path.index:
        raise ValueError(f"no {region or 'default-region'} consumption of {commodity} recorded in {year}")
    return float(path.at[year, "share"])


def peak_price_ratio(result: Result, commodity: str, from_month: str | None, to_month: str | None) -> float:
    """Highest monthly WORLD price of ``commodity`` in the window over its base-year calibration price."""
    price = result.series("price", commodity, "WORLD")
    if from_month:
        price = price[price.index >= pd.Timestamp(f"{from_month}-01")]
    if to_month:
        price = price[price.index <= pd.Timestamp(f"{to_month}-01")]
    if price.empty:
        raise ValueError(f"no world price of {commodity} in {from_month or 'start'}..{to_month or 'end'}")
    return float(price.max()) / float(result.summary["price_usd_per_t_base_year"][commodity])


def fiscal_cost(result: Result) -> float:
    """Government spending over the run, all countries and instruments, USD."""
    fiscal = result.metrics["fiscal"]
    return float(fiscal["usd"].sum()) if len(fiscal) else 0.0


def unmet_share(result: Result, region: str) -> float:
    """Unmet final demand / final demand (tonnes over the run) of ``region`` (``WORLD``: all)."""
    u = result.metrics["unmet"]
    if region != "WORLD":
        from critmin.analysis.metrics import Tables

        u = u[u["region"].isin(Tables.from_result(result).members(region))]
    demand = float(u["demand_t"].sum())
    if demand <= 0:
        raise ValueError(f"no final demand in {region}")
    return float(u["unmet_t"].sum()) / demand


@dataclass(frozen=True)
class OutputKind:
    func: Callable[..., float]
    options: dict[str, Any]  # option -> default
    unit: str


KINDS: dict[str, OutputKind] = {
    "dependency": OutputKind(
        dependency_share,
        {"commodity": "ndfeb_magnet", "stage": "magnet", "year": 2030, "region": None},
        "share",
    ),
    "peak_price_ratio": OutputKind(
        peak_price_ratio, {"commodity": "ndfeb_magnet", "from_month": None, "to_month": None}, "ratio"
    ),
    "fiscal_cost": OutputKind(fiscal_cost, {}, "USD"),
    "unmet_share": OutputKind(unmet_share, {"region": "WORLD"}, "share"),
}


@dataclass(frozen=True)
class OutputSpec:
    name: str
    kind: str
    options: tuple[tuple[str, Any], ...] = ()
    description: str = ""

    @property
    def unit(self) -> str:
        return KINDS[self.kind].unit

    def value(self, result: Result) -> float:
        return KINDS[self.kind].func(result, **dict(self.options))


@dataclass(frozen=True)
class ParameterSpec:
    key: str  # dotted key of the run config, e.g. scenario.market.theta
    low: float
    high: float
    basis: str
    integer: bool = False

    def design_bounds(self) -> tuple[float, float]:
        """Integers are drawn on [low - 0.5, high + 0.5] and rounded, so each value is equally likely."""
        return (self.low - 0.5, self.high + 0.5) if self.integer else (self.low, self.high)

    def model_value(self, x: float) -> float | int:
        if self.integer:
            return int(min(max(np.rint(x), self.low), self.high))
        return float(x)

    def override(self, x: float) -> str:
        v = self.model_value(x)
        return f"{self.key}={v}" if self.integer else f"{self.key}={v!r}"


@dataclass(frozen=True)
class SensitivityConfig:
    """A validated sensitivity config plus the command line's overrides."""

    name: str
    source: str  # the file, as shown in messages
    description: str
    seed: int
    base_overrides: tuple[str, ...]
    cli_overrides: tuple[str, ...]
    parameters: tuple[ParameterSpec, ...]
    outputs: tuple[OutputSpec, ...]
    morris: dict[str, int] = field(default_factory=dict)
    sobol: dict[str, Any] = field(default_factory=dict)
    input_data_sha256: dict[str, str] = field(default_factory=dict)
    base_config: dict[str, Any] = field(default_factory=dict)

    @property
    def overrides(self) -> list[str]:
        return [*self.base_overrides, *self.cli_overrides, *QUIET]

    def problem(self) -> Problem:
        return Problem(
            tuple(p.key for p in self.parameters), tuple(p.design_bounds() for p in self.parameters)
        )

    def sample_overrides(self, x: np.ndarray) -> list[str]:
        """The Hydra overrides of one sample (design row ``x``)."""
        return [*self.overrides, *(p.override(v) for p, v in zip(self.parameters, x))]

    def resolved(self) -> dict[str, Any]:
        """The config as analysed (for the manifest and the folder hash)."""
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "seed": self.seed,
            "base_overrides": list(self.base_overrides),
            "cli_overrides": list(self.cli_overrides),
            "morris": dict(self.morris),
            "sobol": dict(self.sobol),
            "parameters": [asdict(p) for p in self.parameters],
            "outputs": [
                {
                    "name": o.name,
                    "kind": o.kind,
                    **dict(o.options),
                    "unit": o.unit,
                    "description": o.description,
                }
                for o in self.outputs
            ],
        }


# ---------------------------------------------------------------------- config loading
def resolve_config_path(name: str) -> tuple[Path, str]:
    """A config name (``configs/sensitivity/<name>.yaml``) or a path to a YAML file."""
    path = Path(name)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{name}: sensitivity config file not found")
        return path, str(path)
    folder = config_dir() / "sensitivity"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"configs/sensitivity/{name}.yaml: not found; expected one of {known} or a path")
    return path, f"configs/sensitivity/{name}.yaml"


def _fail(source: str, where: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{source}: {where}: expected {expected}, got {got!r}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(raw: dict, allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{source}: {where}: unknown keys {unknown}; expected only {sorted(allowed)}")


def _parse_parameter(raw: Any, i: int, source: str) -> ParameterSpec:
    """key, and range with its basis; without a range, the plausible range and source of the
    parameter table (configs/parameters.csv)."""
    where = f"parameters[{i}]"
    if not isinstance(raw, dict):
        raise _fail(source, where, "a mapping with key (and range, basis)", raw)
    _check_keys(raw, {"key", "range", "basis"}, source, where)
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise _fail(source, f"{where}.key", "a dotted config key such as scenario.market.theta", key)
    where = f"{where} (key {key})"
    try:
        low, high = parameters.sweep_range(key, raw.get("range"), f"{source}: {where}")
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    basis = raw.get("basis")
    if "range" not in raw and basis is None:
        basis = f"{parameters.TABLE}: {parameters.table()[key].source}"
    if not isinstance(basis, str) or not basis.strip():
        raise _fail(source, f"{where}: basis", "the source or reasoning behind the range (text)", basis)
    return ParameterSpec(key, low, high, basis.strip())


def _parse_output(raw: Any, i: int, source: str) -> OutputSpec:
    where = f"outputs[{i}]"
    if not isinstance(raw, dict):
        raise _fail(source, where, "a mapping with name, kind and options", raw)
    name, kind = raw.get("name"), raw.get("kind")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(source, f"{where}.name", "an identifier such as dependency_2030", name)
    if kind not in KINDS:
        raise _fail(source, f"{where} ({name}).kind", f"one of {sorted(KINDS)}", kind)
    _check_keys(raw, {"name", "kind", *KINDS[kind].options}, source, f"{where} ({name})")
    options = {k: raw.get(k, default) for k, default in KINDS[kind].options.items()}
    return OutputSpec(name, kind, tuple(options.items()))


def _parse_design(raw: dict, source: str) -> tuple[dict[str, int], dict[str, Any]]:
    morris = {"trajectories": 10, "levels": 4, **(raw.get("morris") or {})}
    sobol = {"n": 256, "second_order": False, **(raw.get("sobol") or {})}
    for section, values in (("morris", morris), ("sobol", sobol)):
        _check_keys(values, DESIGN_KEYS[section], source, section)
    for key in ("trajectories", "levels"):
        if not isinstance(morris[key], int) or isinstance(morris[key], bool):
            raise _fail(source, f"morris.{key}", "a whole number", morris[key])
    if not isinstance(sobol["n"], int) or not isinstance(sobol["second_order"], bool):
        raise _fail(source, "sobol", "n: a power of 2, second_order: true|false", sobol)
    return morris, sobol


def read_config(name: str, cli_overrides: list[str] | None = None) -> SensitivityConfig:
    """Read a sensitivity config and check it field by field (no run config yet)."""
    path, source = resolve_config_path(name)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise _fail(source, "top level", "a mapping", raw)
    _check_keys(raw, TOP_KEYS, source, "top level")
    base = raw.get("base_overrides") or []
    if not (isinstance(base, list) and all(isinstance(o, str) and "=" in o for o in base)):
        raise _fail(source, "base_overrides", "a list of Hydra overrides key=value", base)
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise _fail(source, "seed", "a whole number >= 0", seed)
    params, outputs = raw.get("parameters"), raw.get("outputs")
    if not isinstance(params, list) or not params:
        raise _fail(source, "parameters", "a non-empty list", params)
    if not isinstance(outputs, list) or not outputs:
        raise _fail(source, "outputs", "a non-empty list", outputs)
    parameters = tuple(_parse_parameter(p, i, source) for i, p in enumerate(params))
    specs = tuple(_parse_output(o, i, source) for i, o in enumerate(outputs))
    for what, names in (("parameters", [p.key for p in parameters]), ("outputs", [o.name for o in specs])):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{source}: {what}: each must appear once, repeated {dup}")
    morris, sobol = _parse_design(raw, source)
    return SensitivityConfig(
        name=str(raw.get("name") or path.stem),
        source=source,
        description=str(raw.get("description") or "").strip(),
        seed=seed,
        base_overrides=tuple(base),
        cli_overrides=tuple(cli_overrides or []),
        parameters=parameters,
        outputs=specs,
        morris=morris,
        sobol=sobol,
    )


def _check_parameter(p: ParameterSpec, i: int, cfg: DictConfig, source: str) -> ParameterSpec:
    """The key exists in the composed run config and is a number; both range ends pass the run's
    checks (the bounds were checked on reading, :func:`critmin.sim.parameters.sweep_range`)."""
    where = f"parameters[{i}] (key {p.key})"
    missing = object()
    value = OmegaConf.select(cfg, p.key, default=missing)
    if value is missing or value is None:
        parent = p.key.rpartition(".")[0]
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        keys = sorted(str(k) for k in node) if isinstance(node, DictConfig) else []
        hint = f"; keys under {parent}: {keys}" if keys else ""
        raise ConfigError(f"{source}: {where}: not a key of the composed run config{hint}")
    if not _number(value):
        raise _fail(source, where, "a numeric config value", value)
    integer = isinstance(value, int)
    if integer and not (p.low.is_integer() and p.high.is_integer()):
        raise _fail(source, f"{where}: range", "whole numbers (an integer parameter)", [p.low, p.high])
    for end in (p.low, p.high):  # the run's own checks at both ends of the range
        trial = copy.deepcopy(cfg)
        try:
            OmegaConf.update(trial, p.key, int(end) if integer else end)
            check_config(trial, source=f"{source}: {where}: range end {end:g}")
        except DataError as exc:
            raise ConfigError(str(exc)) from exc
        except Exception as exc:  # OmegaConf validation errors
            raise ConfigError(
                f"{source}: {where}: range end {end:g} rejected by the run config: {exc}"
            ) from exc
    return ParameterSpec(p.key, p.low, p.high, p.basis, integer)


def _check_output(o: OutputSpec, i: int, cfg: DictConfig, world: Any, source: str) -> OutputSpec:
    """Commodity, stage, region and year/months of an output exist in the base run's world."""
    from critmin.analysis import metrics

    where = f"outputs[{i}] ({o.name})"
    opts = dict(o.options)
    commodities = world.commodities["commodity"].tolist()
    if "commodity" in opts and opts["commodity"] not in commodities:
        raise _fail(
            source, f"{where}.commodity", f"a commodity of this world {commodities}", opts["commodity"]
        )
    if "stage" in opts and opts["stage"] not in world.origin_stages:
        raise _fail(source, f"{where}.stage", f"an origin stage {world.origin_stages}", opts["stage"])
    settings = OmegaConf.to_container(cfg.experiment.metrics, resolve=True)
    tables = metrics.Tables(
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        dict(zip(world.countries["country"], world.countries["bloc"])),
        {},
        [],
        settings=settings,
    )
    region = opts.get("region")
    if region not in (None, "WORLD"):
        try:
            tables.members(region)
        except DataError as exc:
            raise ConfigError(f"{source}: {where}.region: {exc}") from exc
    start, end = (
        parse_month(cfg.scenario.start, "scenario.start"),
        parse_month(cfg.scenario.end, "scenario.end"),
    )
    if "year" in opts and not (isinstance(opts["year"], int) and start[0] <= opts["year"] <= end[0]):
        raise _fail(source, f"{where}.year", f"a year the run covers ({start[0]}-{end[0]})", opts["year"])
    for key in ("from_month", "to_month"):
        if opts.get(key) is not None:
            month = parse_month(str(opts[key]), f"{where}.{key}")
            if not start <= month <= end:
                raise _fail(
                    source,
                    f"{where}.{key}",
                    f"a month in {cfg.scenario.start}..{cfg.scenario.end}",
                    opts[key],
                )
    return OutputSpec(o.name, o.kind, o.options, describe_output(o, settings, cfg))


def describe_output(o: OutputSpec, settings: dict[str, Any], cfg: DictConfig) -> str:
    opts = dict(o.options)
    if o.kind == "dependency":
        region = opts["region"] or settings.get("region", "G7+")
        return (
            f"share of {region}'s {settings.get('scope', 'consumption')} of {opts['commodity']}, by "
            f"{settings.get('basis', 'mass')}, whose {opts['stage']} stage happened in the largest single "
            f"supplier outside {region}, in {opts['year']}"
        )
    run = f"{cfg.scenario.start}..{cfg.scenario.end}"
    if o.kind == "peak_price_ratio":
        window = f"{opts['from_month'] or cfg.scenario.start}..{opts['to_month'] or cfg.scenario.end}"
        return f"highest monthly world price of {opts['commodity']} in {window} / its base-year calibration price"
    if o.kind == "fiscal_cost":
        return f"government spending, all countries and instruments, {run}, USD"
    return f"unmet final demand / final demand in {opts['region']}, tonnes, {run}"


def load_sensitivity_config(
    name: str = "default", cli_overrides: list[str] | None = None
) -> SensitivityConfig:
    """Read and fully validate a sensitivity config before any simulation: every key exists in
    the composed run config, ranges are ordered and within the config's bounds, outputs name
    commodities, stages, regions and years of the base run. Raises :class:`ConfigError`."""
    sc = read_config(name, cli_overrides)
    swept = {p.key for p in sc.parameters}
    clash = sorted({k for o in sc.cli_overrides if (k := o.split("=", 1)[0].lstrip("+~")) in swept})
    if clash:
        raise ConfigError(
            f"{sc.source}: overrides {clash} are varied by this analysis; drop them from the command line"
        )
    try:
        cfg = load_config([*sc.base_overrides, *sc.cli_overrides, *QUIET])
        check_config(cfg, source=f"{sc.source}: base_overrides + command line")
    except DataError as exc:
        raise ConfigError(f"{sc.source}: base_overrides + command line: {exc}") from exc
    parameters = tuple(_check_parameter(p, i, cfg, sc.source) for i, p in enumerate(sc.parameters))
    from critmin.sim.world import data_root, load_worlds

    chains = [cfg.scenario.data] if isinstance(cfg.scenario.data, str) else list(cfg.scenario.data)
    world = load_worlds([data_root() / c for c in chains], dict(cfg.scenario.blocs))
    outputs = tuple(_check_output(o, i, cfg, world, sc.source) for i, o in enumerate(sc.outputs))
    return replace(
        sc,
        parameters=parameters,
        outputs=outputs,
        input_data_sha256=dict(sorted(world.files.items())),
        base_config=OmegaConf.to_container(cfg, resolve=True),
    )
