"""The settings of ``critmin solve`` (``configs/solve/<name>.yaml``), checked before any run.

A plan holds the decision variables (instrument keys with bounds), the instrument templates
they set, the modes (who takes part and pays), the seeds and shocks of the full check, the
screen, the targets (from ``experiment.metrics``) and one composed run config per shock (policy
left empty: each candidate's instruments go in at run time). Every bound is checked by the
instrument's own registry class: the model is built with every instrument at the low and at the
high end of its ranges, in every mode, under every shock (a failure names the variable).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from critmin.analysis import comparison
from critmin.analysis.solve import Criteria
from critmin.experiments import compare, study
from critmin.experiments.settings import load_group_settings
from critmin.sim.run import identity_id, load_config
from critmin.sim.world import DataError

KEYS = {
    "name": str,
    "out": str,
    "scenario": str,
    "horizon": (str, type(None)),
    "overrides": list,
    "modes": dict,
    "instruments": list,
    "variables": list,
    "seeds": int,
    "first_seed": int,
    "seed_share": (int, float),
    "shocks": list,
    "discount_rate": (int, float),
    "base_year": int,
    "pv_years": list,
    "resilience": dict,
    "budget": int,
    "jobs": (int, type(None)),
    "sampler": str,
    "sampler_seed": int,
    "population": int,
    "refine_steps": int,
    "screen": dict,
    "full_check": dict,
}
# settings that do not change what an evaluation computes (a rerun may change them)
NOT_IDENTITY = ("name", "out", "budget", "jobs")
SAMPLERS = ("nsga2", "tpe")
VARIABLE_KEYS = {"instrument", "key", "range", "choices", "log", "weak"}
USE = "use."  # parameter name prefix of an instrument's on/off decision


@dataclass(frozen=True)
class Variable:
    """One decision variable: ``instrument``'s ``key`` over [low, high] or one of ``choices``."""

    instrument: str
    key: str
    low: float = math.nan
    high: float = math.nan
    choices: tuple[Any, ...] = ()
    log: bool = False
    weak: str = "low"  # the end of the range where the instrument does least (a cap: high)

    @property
    def name(self) -> str:
        return f"{self.instrument}.{self.key}"

    def end(self, which: str) -> Any:
        """The ``low`` or ``high`` end of the range, or its ``weak`` or ``strong`` end."""
        if which in ("weak", "strong"):
            which = self.weak if which == "weak" else ("high" if self.weak == "low" else "low")
        if self.choices:
            return self.choices[0] if which == "low" else self.choices[-1]
        return self.low if which == "low" else self.high

    def toward_weak(self, value: Any, alpha: float) -> Any:
        """``value`` moved toward the weak end: alpha 1 keeps it, 0 is the weak end."""
        if self.choices:
            return value
        weak = self.end("weak")
        return weak + alpha * (float(value) - weak)


@dataclass
class Plan:
    settings: dict[str, Any]
    source: str
    variables: list[Variable]
    instruments: list[dict[str, Any]]
    modes: dict[str, dict[str, Any]]
    crit: Criteria
    seeds: list[int]
    shocks: list[str]
    screen_seeds: list[int]
    screen_shocks: list[str]
    configs: dict[str, DictConfig] = field(default_factory=dict)  # shock -> run config (no policy)
    # (plan, mode, params, shock, seed) -> (record, tidy rows); the engine's unless a test sets one
    runner: Callable[..., tuple[dict[str, Any], Any]] | None = None

    @property
    def first_target(self) -> comparison.Target:
        return self.crit.targets[0]

    @property
    def cost_key(self) -> str:
        return f"pv_{self.crit.pv_years[0]}_usd"

    def payer(self, mode: str) -> str:
        return str(self.modes[mode].get("payer", ""))

    def identity(self) -> dict[str, Any]:
        """What the study's numbers depend on: its settings (not name, out, budget, jobs), every
        resolved run config, the input data and the code."""
        settings = {k: v for k, v in self.settings.items() if k not in NOT_IDENTITY}
        configs = {k: OmegaConf.to_container(c, resolve=True) for k, c in self.configs.items()}
        text = json.dumps({"settings": settings, "configs": configs}, sort_keys=True, default=str)
        return study.identity(hashlib.sha256(text.encode()).hexdigest()[:10], self.configs.values())

    def digest(self) -> str:
        return identity_id(self.identity())

    def folder(self) -> Path:
        return Path(self.settings["out"]) / f"{self.settings['name']}-{self.digest()}"


# ---------------------------------------------------------------------- settings
def load_settings(config: str) -> tuple[dict[str, Any], str]:
    return load_group_settings("solve", config, KEYS)


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise DataError(f"{where}: expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"{where}: expected a whole number >= {low}, got {value!r}")
    return int(value)


def plan_from_settings(s: dict[str, Any], source: str) -> Plan:
    """Check every key that needs no model (names, numbers, templates, placeholders)."""
    at = f"{source}: key"
    _int(s["seeds"], f"{at} seeds", 1)
    _int(s["budget"], f"{at} budget", 1)
    _int(s["population"], f"{at} population", 2)
    _int(s["refine_steps"], f"{at} refine_steps", 0)
    if s["jobs"] is not None:
        _int(s["jobs"], f"{at} jobs", 1)
    share = _number(s["seed_share"], f"{at} seed_share", 0.0, 1.0)
    if share <= 0:
        raise DataError(f"{at} seed_share: expected a share in (0, 1], got {share}")
    _number(s["discount_rate"], f"{at} discount_rate", 0.0, 0.5)
    if s["sampler"] not in SAMPLERS:
        raise DataError(f"{at} sampler: expected one of {list(SAMPLERS)}, got {s['sampler']!r}")
    if not s["pv_years"] or not all(isinstance(y, int) and y >= s["base_year"] for y in s["pv_years"]):
        raise DataError(f"{at} pv_years: expected years >= base_year {s['base_year']}, got {s['pv_years']!r}")
    shocks = _shock_list(s["shocks"], f"{at} shocks")
    screen = _sub(s["screen"], f"{at} screen", {"seeds": int, "shocks": list})
    _int(screen["seeds"], f"{at} screen.seeds", 1)
    screen_shocks = _shock_list(screen["shocks"], f"{at} screen.shocks")
    full = _sub(s["full_check"], f"{at} full_check", {"candidates": int, "margin": (int, float)})
    _int(full["candidates"], f"{at} full_check.candidates", 1)
    _number(full["margin"], f"{at} full_check.margin", 0.0, 1.0)
    res = _sub(s["resilience"], f"{at} resilience", {"commodity": str, "region": str})
    if not s["modes"]:
        raise DataError(f"{at} modes: expected at least one mode (e.g. alone, coalition)")
    modes = {}
    for name, m in s["modes"].items():
        if not isinstance(m, dict) or "members" not in m:
            raise DataError(f"{at} modes.{name}: expected a mapping with members (and payer, ...), got {m!r}")
        modes[str(name)] = m
    instruments = _instruments(s["instruments"], modes, f"{source}: key instruments")
    variables = _variables(s["variables"], instruments, f"{source}: key variables")
    seeds = list(range(s["first_seed"], s["first_seed"] + s["seeds"]))
    crit = Criteria(
        targets=[],
        seed_share=share,
        discount_rate=float(s["discount_rate"]),
        base_year=int(s["base_year"]),
        pv_years=[int(y) for y in s["pv_years"]],
        resilience_commodity=res["commodity"],
        resilience_region=res["region"],
    )
    return Plan(
        settings=s,
        source=source,
        variables=variables,
        instruments=instruments,
        modes=modes,
        crit=crit,
        seeds=seeds,
        shocks=shocks,
        screen_seeds=seeds[: screen["seeds"]]
        if screen["seeds"] <= len(seeds)
        else list(range(s["first_seed"], s["first_seed"] + screen["seeds"])),
        screen_shocks=screen_shocks,
    )


def _sub(value: Any, where: str, keys: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(keys):
        raise DataError(f"{where}: expected keys {sorted(keys)}, got {value!r}")
    for k, t in keys.items():
        if not isinstance(value[k], t) or isinstance(value[k], bool):
            raise DataError(f"{where}.{k}: expected {t}, got {value[k]!r}")
    return value


def _shock_list(value: list[Any], where: str) -> list[str]:
    known = compare.names("shock")
    if not value:
        raise DataError(f"{where}: expected at least one shock (none = no shock)")
    for s in value:
        if s not in known:
            raise DataError(f"{where}: unknown shock {s!r}; expected names of configs/shock/*.yaml {known}")
    if len(set(value)) != len(value):
        raise DataError(f"{where}: a shock is listed twice: {value}")
    return [str(s) for s in value]


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str) and value.startswith("$"):
        return {value[1:]}
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def fill(value: Any, mode: dict[str, Any]) -> Any:
    """``$<key>`` strings replaced by the mode's values."""
    if isinstance(value, str) and value.startswith("$"):
        return copy.deepcopy(mode[value[1:]])
    if isinstance(value, dict):
        return {k: fill(v, mode) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, mode) for v in value]
    return value


def _instruments(raw: list[Any], modes: dict[str, dict], where: str) -> list[dict[str, Any]]:
    from critmin.policies import REGISTRY

    out = []
    for i, inst in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(inst, dict) or "type" not in inst or "name" not in inst:
            raise DataError(f"{at}: expected an instrument mapping with type and name, got {inst!r}")
        kind = REGISTRY.get(inst["type"])
        if kind is None or kind.kind != "instrument":
            known = sorted(k for k, c in REGISTRY.items() if c.kind == "instrument")
            raise DataError(f"{at}.type: unknown instrument {inst['type']!r}; expected one of {known}")
        if any(o["name"] == inst["name"] for o in out):
            raise DataError(f"{at}.name: instrument {inst['name']!r} is listed twice")
        for key in sorted(_placeholders(inst)):
            for mode, values in modes.items():
                if key not in values:
                    raise DataError(f"{at}: ${key}: mode {mode!r} has no key {key!r} (modes.{mode})")
        out.append(dict(inst))
    if not out:
        raise DataError(f"{where}: expected at least one instrument")
    return out


def _variables(raw: list[Any], instruments: list[dict], where: str) -> list[Variable]:
    names = [i["name"] for i in instruments]
    out: list[Variable] = []
    for i, v in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(v, dict) or set(v) - VARIABLE_KEYS or not {"instrument", "key"} <= set(v):
            raise DataError(f"{at}: expected keys instrument, key and range or choices (and log), got {v!r}")
        if v["instrument"] not in names:
            raise DataError(
                f"{at}.instrument: unknown instrument {v['instrument']!r}; expected one of {names}"
            )
        if ("range" in v) == ("choices" in v):
            raise DataError(f"{at}: expected either range [low, high] or choices [...], got {v!r}")
        if "range" in v:
            r = v["range"]
            if (
                not isinstance(r, list)
                or len(r) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in r)
                or not r[0] < r[1]
            ):
                raise DataError(f"{at}.range: expected [low, high] numbers with low < high, got {r!r}")
            log = bool(v.get("log", False))
            if log and r[0] <= 0:
                raise DataError(f"{at}.range: a log range needs low > 0, got {r!r}")
            weak = v.get("weak", "low")
            if weak not in ("low", "high"):
                raise DataError(
                    f"{at}.weak: expected low or high (the end where the instrument does least), got {weak!r}"
                )
            if log and weak == "low":
                raise DataError(f"{at}: a log range cannot shrink to its low end; drop log")
            var = Variable(v["instrument"], str(v["key"]), float(r[0]), float(r[1]), log=log, weak=weak)
        else:
            c = v["choices"]
            if not isinstance(c, list) or not c:
                raise DataError(f"{at}.choices: expected a non-empty list, got {c!r}")
            var = Variable(v["instrument"], str(v["key"]), choices=tuple(c))
        if any(o.name == var.name for o in out):
            raise DataError(f"{at}: {var.name} is listed twice")
        out.append(var)
    if not out:
        raise DataError(f"{where}: expected at least one decision variable")
    return out


# ---------------------------------------------------------------------- candidates
def corner(plan: Plan, which: str) -> dict[str, Any]:
    """Every instrument on, every variable at the ``low``, ``high``, ``weak`` or ``strong`` end."""
    params: dict[str, Any] = {USE + i["name"]: True for i in plan.instruments}
    params.update({v.name: v.end(which) for v in plan.variables})
    return params


def param_names(plan: Plan) -> list[str]:
    """The decision parameters: each instrument's on/off, then each variable."""
    return [USE + i["name"] for i in plan.instruments] + [v.name for v in plan.variables]


def python_value(v: Any) -> Any:
    """A NumPy scalar as a plain Python value (NaN and infinities as None), for YAML and optuna."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def off(plan: Plan) -> dict[str, Any]:
    """No instrument (the counterfactual; its cost is 0)."""
    return {**corner(plan, "weak"), **{USE + i["name"]: False for i in plan.instruments}}


def policy_of(plan: Plan, mode: str, params: dict[str, Any], name: str) -> dict[str, Any]:
    """A policy config (name, instruments) for the mode and the decision values: the instruments
    switched on, the mode's values in their ``$`` keys, the variables' levels set."""
    out = []
    for inst in plan.instruments:
        if not params.get(USE + inst["name"], True):
            continue
        d = fill(inst, plan.modes[mode])
        for v in plan.variables:
            if v.instrument == inst["name"]:
                value = params[v.name]
                d[v.key] = round(value, 6) if isinstance(value, float) else value
        out.append(d)
    return {"name": name, "instruments": out}


def candidate_id(mode: str, params: dict[str, Any]) -> str:
    text = json.dumps([mode, sorted(params.items())], default=str)
    return f"{mode}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def run_config(plan: Plan, shock: str, policy: dict[str, Any], seed: int) -> DictConfig:
    cfg = copy.deepcopy(plan.configs[shock])
    cfg.policy.name = policy["name"]
    cfg.policy.instruments = policy["instruments"]
    cfg.seed = seed
    return cfg


# ---------------------------------------------------------------------- checks needing the model
def prepare(plan: Plan) -> None:
    """Compose one run config per shock (scenario, horizon, overrides; no instruments), read the
    targets, and build the model at both corners of the decision space in every mode and under
    every shock: an instrument rejecting a bound fails here, naming the variable."""
    s = plan.settings
    compare.check_names(
        {"scenario": s["scenario"], "shock": "none"},
        {"scenario": f"{plan.source}: key scenario", "shock": ""},
    )
    base = [f"scenario={s['scenario']}", "policy=none"]
    if s["horizon"] is not None:
        base.append(f"scenario.end={s['horizon']}")
    extra = [str(o) for o in s["overrides"]]
    for o in extra:
        if o.partition("=")[0] in ("policy", "shock", "scenario"):
            raise DataError(f"{plan.source}: key overrides: {o!r}: set scenario and shocks with their keys")
    for shock in dict.fromkeys([*plan.shocks, *plan.screen_shocks]):
        try:
            plan.configs[shock] = load_config(
                compare.merge_overrides(base, [f"shock={shock}"], extra, compare.QUIET)
            )
        except DataError as exc:
            raise DataError(f"{plan.source}: key overrides or scenario: {exc}") from None
    cfg = next(iter(plan.configs.values()))
    settings = OmegaConf.to_container(cfg.experiment.metrics, resolve=True)
    targets = comparison.targets_of(settings)
    if not targets:
        raise DataError(
            f"{plan.source}: experiment.metrics has no target for its region {settings.get('region')!r}"
        )
    plan.crit = replace(plan.crit, targets=targets)
    end_year = int(str(cfg.scenario.end)[:4])
    if end_year < plan.crit.target_year:
        raise DataError(
            f"{plan.source}: key horizon: the runs end in {end_year}, before the target year {plan.crit.target_year}"
        )
    if max(plan.crit.pv_years) > end_year:
        raise DataError(
            f"{plan.source}: key pv_years: {max(plan.crit.pv_years)} is after the last simulated year {end_year}"
        )
    for which in ("low", "high"):
        for mode in plan.modes:
            for shock in plan.configs:
                _build(plan, mode, corner(plan, which), shock, which)


def _build(plan: Plan, mode: str, params: dict[str, Any], shock: str, which: str) -> None:
    from critmin.sim.config import check_config
    from critmin.sim.model import CritminModel

    cfg = run_config(plan, shock, policy_of(plan, mode, params, f"solve_{which}"), plan.seeds[0])
    try:
        check_config(cfg)
        model = CritminModel(copy.deepcopy(cfg))
        del model
    except DataError as exc:
        raise DataError(f"{plan.source}: {_blame(plan, mode, shock, which, str(exc))}") from None
    except Exception as exc:
        raise DataError(
            f"{plan.source}: mode {mode!r}, shock {shock!r}, every variable at its {which} bound: the model "
            f"cannot be built ({type(exc).__name__}: {exc})"
        ) from exc


def _blame(plan: Plan, mode: str, shock: str, which: str, message: str) -> str:
    """Name the variable (or instrument) an instrument's error is about."""
    import re

    # the engine names the policy file by the policy's name: here there is no such file
    message = message.replace(f"configs/policy/solve_{which}.yaml: ", "")
    match = re.search(r"policy\.instruments\[(\d+)\]\.?(\w*)", message)
    if match:
        on = [i for i in plan.instruments]
        inst = on[int(match.group(1))]["name"]
        key = match.group(2)
        for i, v in enumerate(plan.variables):
            if v.instrument == inst and v.key == key:
                return (
                    f"key variables[{i}] ({v.name}): its {which} bound {v.end(which)!r} is refused by the "
                    f"{plan.instruments[int(match.group(1))]['type']} instrument (mode {mode}): {message}"
                )
        unknown = re.search(r"unknown key\(s\) \[([^\]]*)\]", message)
        for i, v in enumerate(plan.variables):
            if unknown and v.instrument == inst and repr(v.key) in unknown.group(1):
                return f"key variables[{i}] ({v.name}): the {inst} instrument has no key {v.key!r}: {message}"
        return f"key instruments ({inst}, mode {mode}, variables at their {which} bounds): {message}"
    return f"mode {mode!r}, shock {shock!r}, variables at their {which} bounds: {message}"
