"""Data-file schemas, declared once, and the one validation path every data file goes through.

A :class:`Schema` says, for one CSV file: its columns (kind and rule of each), the columns that
form a row's key, whether every world needs the file, which columns refer to another file's
keys, and the checks that need several columns or rows (``checks``, within the file) or other
files (``cross_checks``). :func:`read_table` reads a file and checks it against its schema;
:func:`check_references` then checks every reference and cross-file rule of a folder. The world's
files (:data:`WORLD_FILES`) and the parameter table (``configs/parameters.csv``,
:data:`PARAMETER_TABLE`) go through these two functions and nothing else.

Every error names the file, the row (its line number and key) and the column, and says what was
expected: ``facilities.csv: row 5 (facility=x) column 'capacity_tpa': expected a number >=0, got '-5'``.
Nothing in this module is specific to a mineral.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class DataError(ValueError):
    """A data file or config value is not what the model expects."""


BLOCS = ("g7", "partner", "other")
ROLES = ("input", "output")
AGENT_TYPES = ("Miner", "Refiner", "Recycler")
STAGES = ("mine", "refining", "metal", "alloy", "magnet", "scrap", "product")
PROJECT_STATUSES = ("announced", "permitted", "financed", "construction")
# expected_start in projects.csv: a developer's guidance date, within these years
PROJECT_START_YEARS = (2000, 2060)

# investment.csv parameters the model reads (sim/investment.py), each with the plausible range of
# its value, low and high; and the rows kept as documented evidence only (not read by the model)
INVESTMENT_PARAMETERS: dict[str, tuple[float, float]] = {
    "permit_months": (0.0, 240.0),
    "finance_months": (0.0, 240.0),
    "construction_months": (0.0, 240.0),
    "ramp_months": (0.0, 240.0),
    "ramp_final_share": (0.0, 1.0),
    "lifetime_years": (1.0, 100.0),
    "capex_usd_per_tpa": (0.0, 1e7),
    "brownfield_capex_factor": (0.0, 2.0),
    "hurdle_rate": (0.0, 0.5),  # a real discount rate per year: 0.5 is already 50%
    "risk_premium": (0.0, 0.5),
    "abandon_rate_per_year": (0.0, 1.0),
    "max_expansion_per_year": (0.0, 1.0),
}
INVESTMENT_EVIDENCE = {"capex_overrun_factor": (1.0, 10.0), "schedule_overrun": (1.0, 10.0)}
# optional rows (no fallback needed): 1 = the plants of (process, region) expand under a quota that
# follows the market (sim/investment.py MarketQuota; issue 15)
INVESTMENT_RULES = {"market_quota": (0.0, 1.0)}


# ---------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Column:
    """One column: ``kind`` "text" or "number" and its rule.

    Number rules: ``">=0"``, ``">0"``, ``"[0,1]"``, ``"count"`` (a whole number >= 0), ``"finite"``,
    ``"optional"`` (blank or a finite number; blank becomes NaN) or a ``(low, high)`` pair.
    Text rules: ``"required"`` (non-empty), ``"optional"``, a tuple of allowed values, or a
    :class:`Month`.
    """

    name: str
    kind: str = "text"
    rule: Any = "required"


@dataclass(frozen=True)
class Month:
    """Text rule: a month ``YYYY-MM`` from ``first_year`` to ``last_year``."""

    first_year: int
    last_year: int

    def ok(self, value: str) -> bool:
        parts = value.split("-")
        if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            return False
        return 1 <= int(parts[1]) <= 12 and self.first_year <= int(parts[0]) <= self.last_year


def text(name: str, rule: Any = "required") -> Column:
    return Column(name, "text", rule)


def number(name: str, rule: Any = "finite") -> Column:
    return Column(name, "number", rule)


@dataclass(frozen=True)
class Reference:
    """Values of ``column`` must be keys (``target`` column) of the file ``table``, or one of
    ``extra``; ``split``: the cell holds several space-separated values."""

    column: str
    table: str
    target: str
    what: str
    extra: tuple[str, ...] = ()
    split: bool = False


Check = Callable[[pd.DataFrame, Path, "Schema"], None]
CrossCheck = Callable[[dict[str, pd.DataFrame], Path], None]


@dataclass(frozen=True)
class Schema:
    name: str  # the file's name
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # columns that identify a row (unique)
    required: bool = True  # every world has it, with at least one row
    references: tuple[Reference, ...] = ()
    checks: tuple[Check, ...] = ()  # rules over several columns or rows of this file
    cross_checks: tuple[CrossCheck, ...] = ()  # rules that need other files of the folder
    # columns a file may leave out: checked when present, added blank when absent
    optional_columns: tuple[Column, ...] = ()

    @property
    def column_names(self) -> list[str]:
        """Every column the file may have: the required ones, then the optional ones."""
        return [c.name for c in (*self.columns, *self.optional_columns)]

    @property
    def required_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def dated_columns(self) -> list[str]:
        """Columns of base-year values, named with ``{year}`` (see :func:`header_year`)."""
        return [c.name for c in self.columns if YEAR in c.name]

    def in_year(self, year: int) -> Schema:
        """This schema with its dated columns named for ``year``."""
        columns = tuple(replace(c, name=dated(c.name, year)) for c in self.columns)
        return replace(self, columns=columns)

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=self.column_names)


# ---------------------------------------------------------------------- messages
def row_key(df: pd.DataFrame, i: int, schema: Schema) -> str:
    """``col=value, ...`` of row ``i``'s key (``row N`` when the key columns are missing)."""
    cols = [c for c in schema.key if c in df.columns]
    return ", ".join(f"{c}={df.iloc[i][c]}" for c in cols) or f"row {i + 2}"


def first(bad: pd.Series | np.ndarray) -> int | None:
    """Index (position) of the first True, or None."""
    hits = np.flatnonzero(np.asarray(bad, dtype=bool))
    return int(hits[0]) if hits.size else None


def cell_error(path: Path, df: pd.DataFrame, i: int, schema: Schema, column: str, expected: str) -> DataError:
    """``file: row N (key) column 'c': expected ..., got ...`` (row N is the line in the file)."""
    return DataError(
        f"{path}: row {i + 2} ({row_key(df, i, schema)}) column '{column}': expected {expected}, "
        f"got {df.iloc[i][column]!r}"
    )


# Plausible magnitudes: a number of the right sign but absurd size (1e308 t) would overflow the
# month's arithmetic. No plant or national aggregate of a critical mineral handles 100 Mt a year
# (the largest here, Indonesian nickel ore, is under 3 Mt of contained metal); no price or cost
# reaches USD 1e9 per tonne (germanium, the dearest, ~USD 1.5e6/t in 2024).
TONNES = (0.0, 1e8)
TONNES_POSITIVE = (1e-9, 1e8)
USD_PER_T = (0.0, 1e9)
USD_PER_T_POSITIVE = (1e-9, 1e9)


# ---------------------------------------------------------------------- one file
_NUMBER_RULES: dict[str, tuple[Callable[[pd.Series], pd.Series], str]] = {
    ">=0": (lambda v: v < 0, "a number >=0"),
    ">0": (lambda v: v <= 0, "a number >0"),
    "[0,1]": (lambda v: (v < 0) | (v > 1), "a number [0,1]"),
    "count": (lambda v: (v < 0) | (v != np.floor(v)), "a whole number >= 0"),
    "finite": (lambda v: v != v, "a finite number"),  # NaN and inf are refused for every rule
}


def _check_number(df: pd.DataFrame, col: Column, path: Path, schema: Schema) -> pd.Series:
    blank = (df[col.name].fillna("").astype(str).str.strip() == "").to_numpy()
    values = pd.to_numeric(df[col.name], errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if col.rule == "optional":
        bad, expected = ~finite & ~blank, "a number or an empty cell"
    elif isinstance(col.rule, tuple):
        lo, hi = col.rule
        bad = ~finite | (values < lo).to_numpy() | (values > hi).to_numpy()
        expected = f"a number in [{lo:g}, {hi:g}]"
    else:
        test, expected = _NUMBER_RULES[col.rule]
        bad = ~finite | test(values).to_numpy(dtype=bool)
    i = first(bad)
    if i is not None:
        raise cell_error(path, df, i, schema, col.name, expected)
    return values.astype(float)


def _check_text(df: pd.DataFrame, col: Column, path: Path, schema: Schema) -> pd.Series:
    values = df[col.name].fillna("").astype(str).str.strip()
    rule = col.rule
    if isinstance(rule, Month):
        bad = ~values.map(rule.ok).astype(bool)
        expected = f"a month 'YYYY-MM' from {rule.first_year}-01 to {rule.last_year}-12"
    elif isinstance(rule, tuple):
        bad, expected = ~values.isin(rule), f"one of {list(rule)}"
    elif rule == "optional":
        return values
    else:
        bad, expected = values == "", "a non-empty value"
    i = first(bad)
    if i is not None:
        raise cell_error(path, df, i, schema, col.name, expected)
    return values


def check_table(raw: pd.DataFrame, schema: Schema, path: Path) -> pd.DataFrame:
    """Columns present, each cell of its kind and rule, keys unique, the file's own rules.
    Returns the table with numbers as floats and text stripped; extra columns are kept."""
    missing = [c for c in schema.required_names if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected columns {schema.required_names}")
    if schema.required and raw.empty:
        raise DataError(f"{path}: no rows below the header; expected at least one row")
    df = raw.copy()
    for col in schema.optional_columns:
        if col.name not in df.columns:
            df[col.name] = ""
    for col in (*schema.columns, *schema.optional_columns):
        check = _check_number if col.kind == "number" else _check_text
        df[col.name] = check(df, col, path, schema)
    i = first(df.duplicated(list(schema.key)))
    if i is not None:
        raise DataError(f"{path}: duplicate key ({row_key(df, i, schema)}) at row {i + 2}")
    for rule in schema.checks:
        rule(df, path, schema)
    return df


def read_table(path: Path, schema: Schema) -> pd.DataFrame:
    """Read one CSV file (every cell as text) and check it against its schema.

    A file with dated columns (``price_{year}_usd_per_t``) is checked against the columns of the
    year its header names; the table comes back with the neutral names (``price_base_usd_per_t``)
    and the year in ``attrs["base_year"]``."""
    if not path.is_file():
        raise DataError(f"{path}: file missing")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several parser errors
        raise DataError(f"{path}: cannot be read as CSV: {exc}") from exc
    if not schema.dated_columns:
        return check_table(raw, schema, path)
    year = header_year(list(raw.columns), schema, path)
    df = check_table(raw, schema.in_year(year), path)
    df = df.rename(columns={dated(c, year): dated(c, BASE) for c in schema.dated_columns})
    df.attrs["base_year"] = year
    return df


# ---------------------------------------------------------------------- the base year
# A world is data plus a base year: the columns holding base-year values name their year
# (``output_2024_tpa``), so a file says which year its numbers are of. Inside the model these
# columns have neutral names (``output_base_tpa``) and the world carries the year.
YEAR = "{year}"
BASE = "base"
BASE_YEARS = (1990, 2100)


def dated(column: str, year: int | str) -> str:
    """``price_{year}_usd_per_t`` of ``year`` (a year, or :data:`BASE` for the neutral name)."""
    return column.replace(YEAR, str(year))


def header_year(header: list[str], schema: Schema, path: Path) -> int:
    """The base year a file's header names, the same in every dated column."""
    years: dict[str, int] = {}
    for template in schema.dated_columns:
        pattern = re.compile("^" + re.escape(template).replace(re.escape(YEAR), r"(\d{4})") + "$")
        found = [int(m.group(1)) for m in map(pattern.match, header) if m]
        example = dated(template, 2024)
        if len(found) != 1:
            raise DataError(
                f"{path}: expected one column {template!r} naming the base year (e.g. {example!r}), "
                f"got {'none' if not found else [dated(template, y) for y in found]}"
            )
        years[dated(template, found[0])] = found[0]
        if not BASE_YEARS[0] <= found[0] <= BASE_YEARS[1]:
            raise DataError(
                f"{path}: column {dated(template, found[0])!r}: expected a base year from "
                f"{BASE_YEARS[0]} to {BASE_YEARS[1]}"
            )
    if len(set(years.values())) > 1:
        raise DataError(f"{path}: columns {sorted(years)} name different base years; expected one year")
    return next(iter(years.values()))


def _check_reference(df: pd.DataFrame, ref: Reference, allowed: set[str], path: Path, schema: Schema) -> None:
    cells = df[ref.column]
    if ref.split:  # several codes per cell: the first unknown one is named
        unknown = cells.map(lambda codes: next((c for c in str(codes).split() if c not in allowed), None))
        i = first(unknown.notna())
        got = unknown.iloc[i] if i is not None else None
    else:
        i = first(~cells.isin(allowed))
        got = cells.iloc[i] if i is not None else None
    if i is not None:
        raise DataError(
            f"{path}: row {i + 2} ({row_key(df, i, schema)}) column '{ref.column}': unknown {ref.what} "
            f"{got!r}; expected one of {sorted(allowed)}"
        )


def check_references(tables: dict[str, pd.DataFrame], folder: Path, schemas: dict[str, Schema]) -> None:
    """Every reference of every table resolves, then the cross-file rules, in schema order."""
    for name, schema in schemas.items():
        for ref in schema.references if name in tables else ():
            allowed = set(tables[ref.table][ref.target]) | set(ref.extra)
            _check_reference(tables[name], ref, allowed, Path(folder) / name, schema)
    for name, schema in schemas.items():
        for rule in schema.cross_checks if name in tables else ():
            rule(tables, Path(folder))


# ---------------------------------------------------------------------- rules of several cells
def one_output_and_one_type_per_process(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    for proc, rows in df.groupby("process", sort=False):
        if (rows["role"] == "output").sum() == 0:
            raise DataError(f"{path}: process {proc!r} has no output row")
        for col in ("agent_type", "origin_stage"):
            if rows[col].nunique() != 1:
                raise DataError(
                    f"{path}: process {proc!r} column '{col}': expected one value "
                    f"on all its rows, got {sorted(rows[col].unique())}"
                )


def owner_parts(owner: str, share: str, country: str) -> list[tuple[str, float]] | str:
    """The (country, share) parts of a plant's ownership from its ``owner`` and ``owner_share``
    cells: one or more space-separated owner codes with as many shares (blank share: 1 for a
    single owner); the rest, if the shares sum below 1, is owned in ``country``. Returns what is
    wrong, as text, for a bad pair."""
    codes = owner.split() or [country]
    if not share.strip():
        if len(codes) > 1:
            return f"{len(codes)} shares (one per owner in 'owner')"
        return [(codes[0], 1.0)]
    try:
        values = [float(x) for x in share.split()]
    except ValueError:
        return "space-separated shares in (0, 1]"
    if len(values) != len(codes):
        return f"{len(codes)} share(s), one per owner in 'owner'"
    if not all(0 < v <= 1 for v in values) or sum(values) > 1 + 1e-9:
        return "shares in (0, 1] summing to at most 1"
    if len(set(codes)) < len(codes) or (country in codes and (len(codes) > 1 or values[0] < 1)):
        return "distinct owners other than the row's country (the rest of the row is owned there)"
    rest = 1.0 - sum(values)
    return [*zip(codes, values, strict=True), *([(country, rest)] if rest > 1e-9 else [])]


def owner_share_in_range(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """``owner``/``owner_share`` form a valid ownership (:func:`owner_parts`)."""
    for i, (owner, share, country) in enumerate(
        zip(df["owner"], df["owner_share"], df["country"], strict=True)
    ):
        parts = owner_parts(owner, share, country)
        if isinstance(parts, str):
            raise cell_error(path, df, i, schema, "owner_share", parts)


def output_within_capacity(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    output = next(c for c in schema.column_names if re.fullmatch(r"output_\d{4}_tpa", c))
    i = first(df[output] > df["capacity_tpa"] * (1 + 1e-9))
    if i is not None:
        raise cell_error(path, df, i, schema, output, f"<= capacity_tpa ({df.iloc[i]['capacity_tpa']})")


def shares_of_one_total_at_most_1(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    total = df.groupby(["importers", "commodity", "scope"], sort=False)["share"].sum()
    over = total[total > 1 + 1e-9]
    if len(over):
        importers, commodity, scope = over.index[0]
        raise DataError(
            f"{path}: rows with importers={importers}, commodity={commodity}, scope={scope}: column "
            f"'share' sums to {over.iloc[0]:.4g}; expected at most 1 (shares of one total)"
        )


def low_mode_high(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    for lo, mode, hi in (
        ("capex_usd_per_tpa_low", "capex_usd_per_tpa_mode", "capex_usd_per_tpa_high"),
        ("cash_cost_low", "cash_cost_mode", "cash_cost_high"),
    ):
        i = first((df[lo] > df[mode]) | (df[mode] > df[hi]))
        if i is not None:
            raise DataError(f"{path}: row {i + 2} columns {lo}/{mode}/{hi}: expected low <= mode <= high")


def investment_values_in_range(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """Each row's value, low and high within its parameter's plausible range, low <= value <= high."""
    bounds = {**INVESTMENT_PARAMETERS, **INVESTMENT_EVIDENCE, **INVESTMENT_RULES}
    for i, r in enumerate(df.itertuples(index=False)):
        p_lo, p_hi = bounds[r.parameter]
        for col in ("value", "low", "high"):
            if not p_lo <= getattr(r, col) <= p_hi:
                raise cell_error(
                    path, df, i, schema, col, f"a number in [{p_lo:g}, {p_hi:g}] for {r.parameter}"
                )
    i = first((df["low"] > df["value"]) | (df["value"] > df["high"]))
    if i is not None:
        raise DataError(f"{path}: row {i + 2} ({row_key(df, i, schema)}): expected low <= value <= high")


def projects_are_not_facilities(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    projects = tables[PROJECTS]
    i = first(projects["facility"].isin(tables["facilities.csv"]["facility"]))
    if i is not None:
        raise DataError(
            f"{folder / PROJECTS}: row {i + 2} column 'facility': {projects['facility'].iloc[i]!r} is "
            "already in facilities.csv"
        )


def every_process_is_run(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    """A process no facility, project or prospect runs is a typo (its outputs would never exist)."""
    run = set(tables["facilities.csv"]["process"])
    for name in (PROJECTS, PROSPECTS):
        if name in tables:
            run |= set(tables[name]["process"])
    processes = tables["processes.csv"]["process"]
    i = first(~processes.isin(run))
    if i is not None:
        raise DataError(
            f"{folder / 'processes.csv'}: row {i + 2} column 'process': {processes.iloc[i]!r} is run by "
            f"no facility, project or prospect; expected one of {sorted(run)}"
        )


def every_demanded_commodity_is_produced(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    """Demand for a commodity no process outputs could never be met."""
    processes = tables["processes.csv"]
    made = set(processes.loc[processes["role"] == "output", "commodity"])
    needed = tables["demand.csv"]["commodity"]
    i = first(~needed.isin(made))
    if i is not None:
        raise DataError(
            f"{folder / 'demand.csv'}: row {i + 2} column 'commodity': no process in processes.csv "
            f"outputs {needed.iloc[i]!r}; expected one of {sorted(made)}"
        )


def every_end_use_has_growth(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    missing = set(tables["end_uses.csv"]["end_use"]) - set(tables["demand_growth.csv"]["end_use"])
    if missing:
        raise DataError(
            f"{folder / 'demand_growth.csv'}: no rows for end use(s) {sorted(missing)}; every "
            "end use in end_uses.csv needs a growth path"
        )


INPUT_COVER = number("input_cover_months", "optional")
MAX_INPUT_COVER_MONTHS = 24
# optional (commodities.csv): months of use every buyer of the commodity holds, plants and
# manufacturers alike, where the chain's sources give one (agents/buying.py: stock_targets)
BUYER_COVER = number("buyer_cover_months", "optional")
BUYER_COVER_SOURCE = text("buyer_cover_source", "optional")


def buyer_cover_in_range(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """``buyer_cover_months`` is blank or between 0 and 24 months."""
    if "buyer_cover_months" not in df.columns:
        return
    cover = df["buyer_cover_months"].to_numpy(float)
    i = first(~np.isnan(cover) & ((cover < 0) | (cover > MAX_INPUT_COVER_MONTHS)))
    if i is not None:
        raise cell_error(
            path, df, i, schema, "buyer_cover_months", f"0-{MAX_INPUT_COVER_MONTHS} months or blank"
        )
    source = df["buyer_cover_source"].astype(str).str.strip() if "buyer_cover_source" in df else None
    i = first(~np.isnan(cover) & ((source == "") if source is not None else True))
    if i is not None:
        raise cell_error(
            path, df, i, schema, "buyer_cover_source", "the source (and year) of buyer_cover_months"
        )


def input_cover_on_input_rows(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """``input_cover_months`` is given on input rows only, between 0 and 24 months."""
    if "input_cover_months" not in df.columns:
        return
    cover = df["input_cover_months"].to_numpy(float)
    given = ~np.isnan(cover)
    i = first(given & (df["role"].to_numpy() != "input"))
    if i is not None:
        raise cell_error(path, df, i, schema, "input_cover_months", "blank on an output row")
    i = first(given & ((cover < 0) | (cover > MAX_INPUT_COVER_MONTHS)))
    if i is not None:
        raise cell_error(
            path, df, i, schema, "input_cover_months", f"0-{MAX_INPUT_COVER_MONTHS} months or blank"
        )


# ---------------------------------------------------------------------- the world's files
TRADE_SHARES, PROJECTS, PROSPECTS, INVESTMENT, BY_PRODUCTS, HOLDERS, TRANSIT = (
    "trade_shares.csv",
    "projects.csv",
    "prospects.csv",
    "investment.csv",
    "by_products.csv",
    "holders.csv",
    "transit.csv",
)
# the longest shipping time a transit.csv row may declare (months)
MAX_TRANSIT_MONTHS = 12


def transit_route_is_international(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """A route leaves its exporter (shipments within a country arrive within the month) and
    takes at most MAX_TRANSIT_MONTHS months."""
    i = first(df["exporter"] == df["importer"])
    if i is not None:
        raise cell_error(path, df, i, schema, "importer", "a country other than the exporter, or all")
    i = first(df["months"] > MAX_TRANSIT_MONTHS)
    if i is not None:
        raise cell_error(path, df, i, schema, "months", f"a whole number of months, 0-{MAX_TRANSIT_MONTHS}")


COUNTRY_REF = Reference("country", "countries.csv", "country", "country")
PROCESS_REF = Reference("process", "processes.csv", "process", "process")
COMMODITY_REF = Reference("commodity", "commodities.csv", "commodity", "commodity")
END_USE_REF = Reference("end_use", "end_uses.csv", "end_use", "end use")
# a bloc, a country code or "all" (investment.csv, by_products.csv: the most specific row applies)
REGION_REF = Reference(
    "region", "countries.csv", "country", "region (bloc, country or all)", extra=(*BLOCS, "all")
)
# optional: the country of a plant's controlling (largest) owner; blank = the plant's own country.
# An aggregate row of several owners names them space-separated with their shares in
# owner_share ("CHN CHE" / "0.519 0.159"; blank = 1 for one owner); the rest is owned in the row's
# own country (one row of several owners, rather than rows split per owner)
OWNER = text("owner", "optional")
OWNER_SHARE = text("owner_share", "optional")
OWNER_REF = Reference(
    "owner", "countries.csv", "country", "owner country (blank: the plant's country)", extra=("",), split=True
)

# Order matters: files are read and checked in this order, references after all are read.
WORLD_FILES: dict[str, Schema] = {
    s.name: s
    for s in (
        Schema(
            "countries.csv",
            (text("country"), text("name"), text("bloc", BLOCS), text("source")),
            key=("country",),
        ),
        Schema(
            "commodities.csv",
            (
                text("commodity"),
                text("mineral"),
                text("stage", STAGES),
                text("unit"),
                number("price_{year}_usd_per_t", USD_PER_T_POSITIVE),
                text("price_source"),
                number("transport_usd_per_t", USD_PER_T),
                text("transport_source"),
            ),
            key=("commodity",),
            checks=(buyer_cover_in_range,),
            # optional: months of use the commodity's buyers hold (plants where processes.csv
            # gives no input_cover_months, and manufacturers), with its source; blank: the
            # scenario's defaults
            optional_columns=(BUYER_COVER, BUYER_COVER_SOURCE),
        ),
        Schema(
            "processes.csv",
            (
                text("process"),
                text("agent_type", AGENT_TYPES),
                text("origin_stage"),
                text("commodity"),
                text("role", ROLES),
                number("coefficient", (1e-9, 1e6)),
                text("source"),
            ),
            key=("process", "commodity"),
            references=(COMMODITY_REF,),
            checks=(one_output_and_one_type_per_process, input_cover_on_input_rows),
            cross_checks=(every_process_is_run, every_demanded_commodity_is_produced),
            # optional: months of this input the process's plants hold (agents/buying.py); blank:
            # the scenario's producers.input_cover_months
            optional_columns=(INPUT_COVER,),
        ),
        Schema(
            "facilities.csv",
            (
                text("facility"),
                text("name"),
                text("country"),
                text("process"),
                number("capacity_tpa", TONNES),
                number("output_{year}_tpa", TONNES),
                number("cash_cost_usd_per_t", USD_PER_T),
                text("source"),
            ),
            key=("facility",),
            references=(COUNTRY_REF, PROCESS_REF, OWNER_REF),
            checks=(output_within_capacity, owner_share_in_range),
            optional_columns=(OWNER, OWNER_SHARE),
        ),
        Schema(
            "demand.csv",
            (
                text("country"),
                text("end_use"),
                text("commodity"),
                number("demand_{year}_t", TONNES),
                text("source"),
            ),
            key=("country", "end_use", "commodity"),
            references=(
                COUNTRY_REF,
                COMMODITY_REF,
                END_USE_REF,
            ),
        ),
        Schema(
            "end_uses.csv",
            (
                text("end_use"),
                # a product in use for less than a year, or for centuries, is a typo (the recycling
                # stock's monthly outflow is stock / lifetime: 0.001 years breaks the mass balance)
                number("lifetime_years", (1.0, 100.0)),
                number("collection_rate_{year}", "[0,1]"),
            ),
            key=("end_use",),
        ),
        Schema(
            "demand_growth.csv",
            (text("end_use"), number("year", ">0"), number("index", ">0"), text("source")),
            key=("end_use", "year"),
            references=(END_USE_REF,),
            cross_checks=(every_end_use_has_growth,),
        ),
        # optional: observed 2024 trade shares the calibration must reproduce (bilateral structure)
        Schema(
            TRADE_SHARES,
            (
                text("importers"),  # space-separated country codes, e.g. "DEU FRA ITA DNK"
                text("commodity"),
                text("origin"),
                text("scope", ("consumption", "imports")),
                number("share", "[0,1]"),
                text("source"),
            ),
            key=("importers", "commodity", "origin", "scope"),
            required=False,
            references=(
                COMMODITY_REF,
                Reference("origin", "countries.csv", "country", "country"),
                Reference("importers", "countries.csv", "country", "country", split=True),
            ),
            checks=(shares_of_one_total_at_most_1,),
        ),
        # optional: the investment pipeline (sim/investment.py). A chain without these files keeps
        # the exogenous capacity trend (scenario.producers.capacity_growth_per_year).
        Schema(
            PROJECTS,
            (
                text("project"),
                text("facility"),  # the component's id (a project may have several)
                text("name"),
                text("country"),
                text("process"),
                text("status_{year}", PROJECT_STATUSES),  # stage at the start of the base year
                number("capacity_tpa", TONNES_POSITIVE),
                text("expected_start", Month(*PROJECT_START_YEARS)),  # developer guidance
                number("capex_usd_m", (0.0, 1e6)),
                number("cash_cost_usd_per_t", USD_PER_T),
                text("source"),
            ),
            key=("facility",),
            required=False,
            references=(COUNTRY_REF, PROCESS_REF, OWNER_REF),
            checks=(owner_share_in_range,),
            cross_checks=(projects_are_not_facilities,),
            optional_columns=(OWNER, OWNER_SHARE),
        ),
        Schema(
            PROSPECTS,
            (
                text("country"),
                text("process"),
                number("count", "count"),
                number("capacity_tpa", TONNES_POSITIVE),
                number("capex_usd_per_tpa_low", USD_PER_T_POSITIVE),
                number("capex_usd_per_tpa_mode", USD_PER_T_POSITIVE),
                number("capex_usd_per_tpa_high", USD_PER_T_POSITIVE),
                number("cash_cost_low", USD_PER_T),
                number("cash_cost_mode", USD_PER_T),
                number("cash_cost_high", USD_PER_T),
                text("source"),
            ),
            key=("country", "process"),
            required=False,
            references=(COUNTRY_REF, PROCESS_REF),
            checks=(low_mode_high,),
        ),
        Schema(
            INVESTMENT,
            (
                text("parameter", (*INVESTMENT_PARAMETERS, *INVESTMENT_EVIDENCE, *INVESTMENT_RULES)),
                text("process"),  # a process or "all"
                text("region"),  # a bloc, a country code or "all"
                number("value"),
                number("low"),
                number("high"),
                text("unit"),
                text("source"),
            ),
            key=("parameter", "process", "region"),
            required=False,
            references=(
                Reference("process", "processes.csv", "process", "process", extra=("all",)),
                REGION_REF,
            ),
            checks=(investment_values_in_range,),
        ),
        # optional: processes that recover a by-product of a host metal the model does not trade
        # (cobalt from copper or nickel ores): the share of the operation's base-year revenue the
        # host brings (agents/producer.py). A process without a row has no host.
        Schema(
            BY_PRODUCTS,
            (
                text("process"),
                text("region"),  # a bloc, a country code or "all"
                text("host"),  # the host metal, e.g. copper
                # below 1: at 1 the by-product would be worthless to the operation
                number("host_revenue_share", (0.0, 0.99)),
                text("source"),
            ),
            key=("process", "region"),
            required=False,
            references=(
                PROCESS_REF,
                REGION_REF,
            ),
        ),
        # merchant holders (agents/merchant.py): an end use whose base-year purchases went into
        # discretionary stock (traders, the surplus), with its opening stock and carrying cost
        Schema(
            HOLDERS,
            (
                text("end_use"),
                number("opening_stock_t", TONNES),
                number("carry_cost_per_year", (0.0, 1.0)),
                text("source"),
            ),
            key=("end_use",),
            required=False,
            references=(END_USE_REF,),
        ),
        # shipping times (sim/transit.py): whole months a commodity takes from the exporter to
        # the importer ("all": every other country); goods afloat are a stock. A route without a
        # row arrives within the month
        Schema(
            TRANSIT,
            (
                text("commodity"),
                text("exporter"),
                text("importer"),
                number("months", "count"),
                text("source"),
            ),
            key=("commodity", "exporter", "importer"),
            required=False,
            references=(
                COMMODITY_REF,
                Reference("exporter", "countries.csv", "country", "country"),
                Reference("importer", "countries.csv", "country", "country (or all)", extra=("all",)),
            ),
            checks=(transit_route_is_international,),
        ),
    )
}
REQUIRED_FILES = tuple(n for n, s in WORLD_FILES.items() if s.required)
OPTIONAL_FILES = tuple(n for n, s in WORLD_FILES.items() if not s.required)


# ---------------------------------------------------------------------- the parameter table
PARAMETER_TYPES = ("float", "int", "bool", "int|null")


def bounds_in_order(df: pd.DataFrame, path: Path, schema: Schema) -> None:
    """lower <= calib_lower < calib_upper <= upper wherever both ends are given."""
    for lo, hi, rel in (
        ("lower", "upper", "<"),
        ("calib_lower", "calib_upper", "<"),
        ("lower", "calib_lower", "<="),
        ("calib_upper", "upper", "<="),
    ):
        a, b = df[lo].to_numpy(), df[hi].to_numpy()
        with np.errstate(invalid="ignore"):
            i = first(a >= b if rel == "<" else a > b)  # False where an end is blank (NaN)
        if i is not None:
            raise DataError(
                f"{path}: row {i + 2} ({row_key(df, i, schema)}) columns '{lo}', '{hi}': expected "
                f"{lo} {rel} {hi}, got {a[i]:g} and {b[i]:g}"
            )


PARAMETER_TABLE = Schema(
    "parameters.csv",
    (
        text("name"),  # dotted config key, e.g. scenario.market.kappa
        text("type", PARAMETER_TYPES),
        text("unit"),
        text("default"),  # the packaged ree_2024 value (checked against the type by sim/parameters.py)
        number("lower", "optional"),  # hard bounds: a run outside them is refused
        number("upper", "optional"),
        number("calib_lower", "optional"),  # plausible range: sensitivity and calibration defaults
        number("calib_upper", "optional"),
        text("source"),  # a citation, or [U] with the reason
        text("description"),
    ),
    key=("name",),
    checks=(bounds_in_order,),
)
