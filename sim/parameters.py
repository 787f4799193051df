"""The parameter table: one row per scenario parameter, the single place each one is defined.

``configs/parameters.csv`` gives, per dotted config key (``scenario.market.kappa``): type, unit,
default (the packaged ``ree_2024`` value), hard bounds (``lower``/``upper``: a run outside them is
refused), the plausible range (``calib_lower``/``calib_upper``: the default range of sensitivity
analyses and calibrations), the source (a citation, or ``[U]`` with the reason) and a
description. From it:

* :func:`check_scenario` validates a composed config's values (``sim/config.py: check_config``),
  and :func:`check_file` a scenario YAML file's values before Hydra composes it
  (``sim/config_files.py``);
* :func:`sweep_range` gives the range ``critmin sensitivity`` and ``critmin calibrate`` vary a
  parameter over (a config may narrow it; a range outside the bounds is refused);
* :func:`markdown_table` is the parameter table of ``docs/ODD.md`` (``docs/generate_odd.py``).

The table itself is a data file and goes through the schema checks of :mod:`critmin.sim.schemas`.
Scenario YAML files keep their values (different worlds may differ); the tests check that every
numeric scenario key has a row, every row a key, and every packaged scenario is within bounds.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critmin.sim import cache
from critmin.sim.schemas import PARAMETER_TABLE, DataError, read_table

TABLE = "configs/parameters.csv"  # as named in messages
# scenario blocks whose every key is a parameter (a row of the table)
BLOCKS = ("market", "producers", "demand", "investment", "recycling", "chemistry", "controls")
# cross-parameter rules: (key, must be >= this key)
AT_LEAST = (
    ("scenario.demand.long_run_elasticity", "scenario.demand.price_elasticity"),
    ("scenario.chemistry.naion_full_price_ratio", "scenario.chemistry.naion_threshold_price_ratio"),
)


def table_path() -> Path:
    import critmin.configs

    return Path(critmin.configs.__file__).parent / "parameters.csv"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Parameter:
    name: str  # dotted config key
    type: str  # float | int | bool | int|null
    unit: str
    default: Any  # the packaged ree_2024 value, parsed to its type
    lower: float  # NaN: no bound
    upper: float
    calib_lower: float  # NaN: no calibration range (switches, numerical options)
    calib_upper: float
    source: str
    description: str

    @property
    def numeric(self) -> bool:
        return self.type in ("float", "int")

    @property
    def calibration_range(self) -> tuple[float, float] | None:
        if math.isnan(self.calib_lower) or math.isnan(self.calib_upper):
            return None
        return self.calib_lower, self.calib_upper

    def bounds_text(self) -> str:
        lo, hi = self.lower, self.upper
        if math.isnan(lo) and math.isnan(hi):
            return ""
        if math.isnan(hi):
            return f">= {lo:g}"
        if math.isnan(lo):
            return f"<= {hi:g}"
        return f"in [{lo:g}, {hi:g}]"

    def expected(self) -> str:
        if self.type == "bool":
            return "true or false"
        what = {"float": "a number", "int": "a whole number", "int|null": "a whole number"}[self.type]
        text = f"{what} {self.bounds_text()}".strip()
        return f"{text} or null" if self.type == "int|null" else text

    def outside(self, x: float) -> bool:
        """True when ``x`` is below the lower or above the upper bound (a missing bound never is)."""
        return bool(x < self.lower or x > self.upper)  # comparisons with NaN are False

    def accepts(self, value: Any) -> bool:
        if self.type == "bool":
            return isinstance(value, bool)
        if value is None:
            return self.type == "int|null"
        if not _number(value) or (self.type != "float" and not isinstance(value, int)):
            return False
        return not self.outside(value)

    def check(self, value: Any, source: str) -> None:
        if not self.accepts(value):
            raise DataError(f"{source}: {self.name}: expected {self.expected()}, got {value!r}")


def _parse_default(text: str, kind: str) -> Any:
    if kind == "bool":
        return {"true": True, "false": False}[text]
    if kind == "int|null" and text == "null":
        return None
    return float(text) if kind == "float" else int(text)


def load_table(path: Path | None = None) -> dict[str, Parameter]:
    """Read and check the table (schema, then each default against its own type and bounds)."""
    path = path or table_path()
    df = read_table(path, PARAMETER_TABLE)
    label = TABLE if path == table_path() else str(path)
    out = {}
    for i, row in enumerate(df[PARAMETER_TABLE.column_names].to_dict("records")):
        where = f"{label}: row {i + 2} (name={row['name']})"
        try:
            default = _parse_default(row["default"], row["type"])
        except (KeyError, ValueError):
            raise DataError(
                f"{where} column 'default': expected a {row['type']}, got {row['default']!r}"
            ) from None
        p = Parameter(**{**row, "default": default})
        if not p.accepts(default):
            raise DataError(f"{where} column 'default': expected {p.expected()}, got {row['default']!r}")
        if not p.name.startswith("scenario."):
            raise DataError(f"{where} column 'name': expected a key scenario.<block>.<name>, got {p.name!r}")
        out[p.name] = p
    return out


@functools.cache
def table() -> dict[str, Parameter]:
    """The packaged table, read once per process; kept in the disk cache (sim/cache.py) under the
    SHA-256 of the file and of critmin's source, as the first run of a process would read and
    check it again (~12 ms)."""
    path = table_path()
    return cache.disk_memo(
        "parameters", lambda: cache.disk_key("parameters", cache.file_digest(path)), load_table
    )


def default(name: str) -> Any:
    """The table's default (the packaged ree_2024 value) of a parameter."""
    return table()[name].default


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part)
    return node


def check_scenario(scenario: Any, source: str = "config") -> None:
    """Every parameter of a composed scenario (a config node, dataclass or dict) within its type
    and bounds, and the rules between parameters. Raises DataError naming the key."""
    for name, p in table().items():
        p.check(_get(scenario, name.removeprefix("scenario.")), source)
    for key, other in AT_LEAST:
        value = _get(scenario, key.removeprefix("scenario."))
        least = _get(scenario, other.removeprefix("scenario."))
        if value < least:
            raise DataError(
                f"{source}: key {key}: expected >= {other.removeprefix('scenario.')} ({least}), got {value}"
            )


def _as_hydra_reads(value: Any, p: Parameter) -> Any:
    """Text Hydra converts to a number for a number field (YAML reads ``5e1`` as text)."""
    if isinstance(value, str) and p.numeric:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if p.type == "int" and number.is_integer() else number
    return value


def check_file(data: dict[str, Any], source: str) -> None:
    """The parameters a scenario YAML file sets (a partial mapping: files may inherit from
    ``ree_2024`` through their defaults list): each within its type and bounds, and no key in a
    parameter block that is not a parameter."""
    rows = table()
    for name, p in rows.items():
        node: Any = data
        for part in name.removeprefix("scenario.").split("."):
            node = node.get(part, ...) if isinstance(node, dict) else ...
        if node is not ...:
            p.check(_as_hydra_reads(node, p), source)
    for block in BLOCKS:
        section = data.get(block)
        if not isinstance(section, dict):
            continue
        for key in section:
            name = f"scenario.{block}.{key}"
            if name not in rows:
                known = sorted(n.rsplit(".", 1)[1] for n in rows if n.startswith(f"scenario.{block}."))
                raise DataError(f"{source}: {name}: not a parameter ({TABLE}); expected one of {known}")


def sweep_range(key: str, given: Any, where: str) -> tuple[float, float]:
    """The range a sensitivity analysis or calibration varies ``key`` over: ``given`` ([low, high])
    or, when None, the table's calibration range. A malformed range, low >= high, or an end
    outside the parameter's bounds is refused, naming ``where``."""
    p = table().get(key)
    if given is None:
        if p is None or p.calibration_range is None:
            why = f"{key} has no calibration range in {TABLE}" if p else f"{key} is not in {TABLE}"
            raise DataError(f"{where}: range: expected [low, high] ({why})")
        return p.calibration_range
    if not (isinstance(given, list | tuple) and len(given) == 2 and all(_number(v) for v in given)):
        raise DataError(f"{where}: range: expected [low, high] with low < high, got {given!r}")
    low, high = float(given[0]), float(given[1])
    if not low < high:
        raise DataError(f"{where}: range: expected [low, high] with low < high, got {list(given)!r}")
    if p is not None:
        for end, x in (("low", low), ("high", high)):
            if p.outside(x):
                raise DataError(
                    f"{where}: range [{low:g}, {high:g}]: {end} end {x:g} is outside the bounds "
                    f"{p.bounds_text().removeprefix('in ')} of {key} ({TABLE})"
                )
    return low, high


# ---------------------------------------------------------------------- docs/ODD.md
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table() -> str:
    """The parameter table of docs/ODD.md, one row per parameter, in the table's order."""
    lines = [
        "| parameter | meaning | unit | ree_2024 | bounds | plausible range | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in table().values():
        # (0.0 == False as a dict key: a float default of 0 would print as "false")
        value = (
            p.default
            if p.numeric and p.default is not None
            else {True: "true", False: "false", None: "null"}.get(p.default, p.default)
        )
        value = f"{value:g}" if isinstance(value, float) else value
        rng = p.calibration_range
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{p.name.removeprefix('scenario.')}`",
                    p.description,
                    p.unit,
                    value,
                    p.bounds_text().removeprefix("in ") or "–",
                    f"{rng[0]:g}–{rng[1]:g}" if rng else "–",
                    p.source,
                )
            )
            + " |"
        )
    return "\n".join(lines)
