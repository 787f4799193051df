"""World data: load the CSV files of one chain, validate them, and hold them as tables.

Each file's schema is declared once in :data:`SCHEMAS` (column, kind, rule). Validation
fails before any run starts, naming the file, the row's key, the column and what was
expected. Nothing in this module is specific to a mineral.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

BLOCS = ("g7", "partner", "other")
ROLES = ("input", "output")
AGENT_TYPES = ("Miner", "Refiner", "Recycler")
STAGES = ("mine", "refining", "metal", "magnet", "scrap", "product")


class DataError(ValueError):
    """A data file or config value is not what the model expects."""


# column -> (kind, rule); kinds: str, float; rules: "required", ">=0", ">0", "[0,1]", "count" (a
# whole number >= 0), a (low, high) pair of numbers (a plausible range), or a tuple of allowed
# strings. A column missing from a file is an error; extra columns are kept. Every file of
# SCHEMAS needs at least one row.
SCHEMAS: dict[str, dict[str, tuple[str, object]]] = {
    "countries.csv": {
        "country": ("str", "required"),
        "name": ("str", "required"),
        "bloc": ("str", BLOCS),
        "source": ("str", "required"),
    },
    "commodities.csv": {
        "commodity": ("str", "required"),
        "mineral": ("str", "required"),
        "stage": ("str", STAGES),
        "unit": ("str", "required"),
        "price_2024_usd_per_t": ("float", ">0"),
        "price_source": ("str", "required"),
        "transport_usd_per_t": ("float", ">=0"),
        "transport_source": ("str", "required"),
    },
    "processes.csv": {
        "process": ("str", "required"),
        "agent_type": ("str", AGENT_TYPES),
        "origin_stage": ("str", "required"),
        "commodity": ("str", "required"),
        "role": ("str", ROLES),
        "coefficient": ("float", ">0"),
        "source": ("str", "required"),
    },
    "facilities.csv": {
        "facility": ("str", "required"),
        "name": ("str", "required"),
        "country": ("str", "required"),
        "process": ("str", "required"),
        "capacity_tpa": ("float", ">=0"),
        "output_2024_tpa": ("float", ">=0"),
        "cash_cost_usd_per_t": ("float", ">=0"),
        "source": ("str", "required"),
    },
    "demand.csv": {
        "country": ("str", "required"),
        "end_use": ("str", "required"),
        "commodity": ("str", "required"),
        "demand_2024_t": ("float", ">=0"),
        "source": ("str", "required"),
    },
    "end_uses.csv": {
        "end_use": ("str", "required"),
        # a product in use for less than a year, or for centuries, is a typo (the recycling
        # stock's monthly outflow is stock / lifetime: 0.001 years breaks the mass balance)
        "lifetime_years": ("float", (1.0, 100.0)),
        "collection_rate_2024": ("float", "[0,1]"),
    },
    "demand_growth.csv": {
        "end_use": ("str", "required"),
        "year": ("float", ">0"),
        "index": ("float", ">0"),
        "source": ("str", "required"),
    },
}

# optional: observed 2024 trade shares the calibration must reproduce (bilateral structure)
TRADE_SHARES = "trade_shares.csv"
TRADE_SCHEMA: dict[str, tuple[str, object]] = {
    "importers": ("str", "required"),  # space-separated country codes, e.g. "DEU FRA ITA DNK"
    "commodity": ("str", "required"),
    "origin": ("str", "required"),
    "scope": ("str", ("consumption", "imports")),
    "share": ("float", "[0,1]"),
    "source": ("str", "required"),
}

# optional: the investment pipeline (sim/investment.py). A chain without these files keeps the
# exogenous capacity trend (scenario.producers.capacity_growth_per_year).
PROJECTS, PROSPECTS, INVESTMENT = "projects.csv", "prospects.csv", "investment.csv"
PROJECT_STATUSES = ("announced", "permitted", "financed", "construction")
OPTIONAL_SCHEMAS: dict[str, dict[str, tuple[str, object]]] = {
    TRADE_SHARES: TRADE_SCHEMA,
    PROJECTS: {
        "project": ("str", "required"),
        "facility": ("str", "required"),  # the component's id (a project may have several)
        "name": ("str", "required"),
        "country": ("str", "required"),
        "process": ("str", "required"),
        "status_2024": ("str", PROJECT_STATUSES),  # stage at the start of 2024
        "capacity_tpa": ("float", ">0"),
        "expected_start": ("str", "required"),  # YYYY-MM, developer guidance
        "capex_usd_m": ("float", ">=0"),
        "cash_cost_usd_per_t": ("float", ">=0"),
        "source": ("str", "required"),
    },
    PROSPECTS: {
        "country": ("str", "required"),
        "process": ("str", "required"),
        "count": ("float", "count"),
        "capacity_tpa": ("float", ">0"),
        "capex_usd_per_tpa_low": ("float", ">0"),
        "capex_usd_per_tpa_mode": ("float", ">0"),
        "capex_usd_per_tpa_high": ("float", ">0"),
        "cash_cost_low": ("float", ">=0"),
        "cash_cost_mode": ("float", ">=0"),
        "cash_cost_high": ("float", ">=0"),
        "source": ("str", "required"),
    },
    INVESTMENT: {
        "parameter": ("str", "required"),
        "process": ("str", "required"),  # a process or "all"
        "region": ("str", "required"),  # a bloc, a country code or "all"
        "value": ("float", "finite"),
        "low": ("float", "finite"),
        "high": ("float", "finite"),
        "unit": ("str", "required"),
        "source": ("str", "required"),
    },
}

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
# expected_start in projects.csv: a developer's guidance date, within these years
PROJECT_START_YEARS = (2000, 2060)

KEYS = {
    "countries.csv": ["country"],
    "commodities.csv": ["commodity"],
    "processes.csv": ["process", "commodity"],
    "facilities.csv": ["facility"],
    "demand.csv": ["country", "end_use", "commodity"],
    "end_uses.csv": ["end_use"],
    "demand_growth.csv": ["end_use", "year"],
    TRADE_SHARES: ["importers", "commodity", "origin", "scope"],
    PROJECTS: ["facility"],
    PROSPECTS: ["country", "process"],
    INVESTMENT: ["parameter", "process", "region"],
}


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(OPTIONAL_SCHEMAS[name]))


@dataclass
class World:
    """Validated tables of one world (one or more chains)."""

    countries: pd.DataFrame
    commodities: pd.DataFrame
    processes: pd.DataFrame
    facilities: pd.DataFrame
    demand: pd.DataFrame
    end_uses: pd.DataFrame
    growth: pd.DataFrame
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    trade_shares: pd.DataFrame = field(default_factory=lambda: _empty(TRADE_SHARES))
    projects: pd.DataFrame = field(default_factory=lambda: _empty(PROJECTS))
    prospects: pd.DataFrame = field(default_factory=lambda: _empty(PROSPECTS))
    investment: pd.DataFrame = field(default_factory=lambda: _empty(INVESTMENT))

    @property
    def origin_stages(self) -> list[str]:
        """Stages stamped on material by processes, in chain order."""
        order = {s: i for i, s in enumerate(STAGES)}
        stages = self.processes["origin_stage"].unique().tolist()
        return sorted(stages, key=lambda s: (order.get(s, len(order)), s))


def _row_key(df: pd.DataFrame, i: int, name: str) -> str:
    cols = [c for c in KEYS[name] if c in df.columns]
    return ", ".join(f"{c}={df.iloc[i][c]}" for c in cols) or f"row {i + 2}"


def _check_table(df: pd.DataFrame, name: str, path: Path) -> pd.DataFrame:
    schema = OPTIONAL_SCHEMAS[name] if name in OPTIONAL_SCHEMAS else SCHEMAS[name]
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected columns {list(schema)}")
    if name in SCHEMAS and df.empty:
        raise DataError(f"{path}: no rows below the header; expected at least one row")
    df = df.copy()
    for col, (kind, rule) in schema.items():
        if kind == "float":
            values = pd.to_numeric(df[col], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
            if rule == ">=0":
                bad |= values < 0
            elif rule == ">0":
                bad |= values <= 0
            elif rule == "[0,1]":
                bad |= (values < 0) | (values > 1)
            elif rule == "count":
                bad |= (values < 0) | (values != np.floor(values))
                rule = "a whole number >= 0"
            elif isinstance(rule, tuple):
                bad |= (values < rule[0]) | (values > rule[1])
                rule = f"in [{rule[0]:g}, {rule[1]:g}]"
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                what = rule if str(rule).startswith("a ") else f"a number {rule}"
                raise DataError(
                    f"{path}: row {i + 2} ({_row_key(df, i, name)}) column '{col}': expected "
                    f"{what}, got {df.iloc[i][col]!r}"
                )
            df[col] = values.astype(float)
        else:
            text = df[col].fillna("").astype(str).str.strip()
            if isinstance(rule, tuple):
                bad = ~text.isin(rule)
                expected = f"one of {list(rule)}"
            else:
                bad = text == ""
                expected = "a non-empty value"
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{path}: row {i + 2} ({_row_key(df, i, name)}) column '{col}': expected "
                    f"{expected}, got {df.iloc[i][col]!r}"
                )
            df[col] = text
    dup = df.duplicated(KEYS[name])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{path}: duplicate key ({_row_key(df, i, name)}) at row {i + 2}")
    return df


def _check_refs(df: pd.DataFrame, col: str, allowed: set[str], path: Path, name: str, what: str) -> None:
    bad = ~df[col].isin(allowed)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: row {i + 2} ({_row_key(df, i, name)}) column '{col}': unknown {what} "
            f"{df.iloc[i][col]!r}; expected one of {sorted(allowed)}"
        )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_world(data_dir: Path, bloc_overrides: dict[str, str] | None = None) -> World:
    """Read and validate every file of a chain's data directory."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found")
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    for name in SCHEMAS:
        path = data_dir / name
        if not path.is_file():
            raise DataError(f"{path}: file missing; every world needs {list(SCHEMAS)}")
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
        except Exception as exc:  # pandas raises several parser errors
            raise DataError(f"{path}: cannot be read as CSV: {exc}") from exc
        tables[name] = _check_table(raw, name, path)
        files[f"{data_dir.name}/{name}"] = sha256(path)
    for name in OPTIONAL_SCHEMAS:
        path = data_dir / name
        if path.is_file():
            try:
                raw = pd.read_csv(path, dtype=str, keep_default_na=False)
            except Exception as exc:
                raise DataError(f"{path}: cannot be read as CSV: {exc}") from exc
            tables[name] = _check_table(raw, name, path)
            files[f"{data_dir.name}/{name}"] = sha256(path)
    world = World(
        countries=tables["countries.csv"],
        commodities=tables["commodities.csv"],
        processes=tables["processes.csv"],
        facilities=tables["facilities.csv"],
        demand=tables["demand.csv"],
        end_uses=tables["end_uses.csv"],
        growth=tables["demand_growth.csv"],
        files=files,
    )
    for name, attr in OPTIONAL_ATTRS.items():
        if name in tables:
            setattr(world, attr, tables[name])
    validate_world(world, data_dir)
    add_new_capacity_nodes(world, data_dir)
    if bloc_overrides:
        apply_bloc_overrides(world, bloc_overrides, source="config key scenario.blocs")
    return world


def load_worlds(data_dirs: list[Path], bloc_overrides: dict[str, str] | None = None) -> World:
    """Several chains in one world: shared countries (and so governments and budgets), each
    chain's own commodities, processes, facilities and end uses. Countries listed by several
    chains must agree on their bloc; every other key must be unique across chains."""
    worlds = [load_world(d) for d in data_dirs]
    if len(worlds) == 1:
        world = worlds[0]
    else:
        countries = pd.concat([w.countries for w in worlds], ignore_index=True)
        clash = countries.groupby("country")["bloc"].nunique()
        if (clash > 1).any():
            code = clash[clash > 1].index[0]
            blocs = sorted(countries.loc[countries.country == code, "bloc"].unique())
            raise DataError(
                f"countries.csv of {[str(d) for d in data_dirs]}: country {code!r} has blocs {blocs}; expected one"
            )
        merged = {}
        for name, attr in [
            ("commodities.csv", "commodities"),
            ("processes.csv", "processes"),
            ("facilities.csv", "facilities"),
            ("demand.csv", "demand"),
            ("end_uses.csv", "end_uses"),
            ("demand_growth.csv", "growth"),
            *OPTIONAL_ATTRS.items(),
        ]:
            table = pd.concat([getattr(w, attr) for w in worlds], ignore_index=True)
            dup = table.duplicated(KEYS[name])
            if dup.any():
                row = table[dup].iloc[0]
                key = ", ".join(f"{k}={row[k]}" for k in KEYS[name])
                raise DataError(
                    f"{name}: key ({key}) appears in more than one of {[str(d) for d in data_dirs]}"
                )
            merged[attr] = table
        world = World(
            countries=countries.drop_duplicates("country").reset_index(drop=True),
            files={k: v for w in worlds for k, v in w.files.items()},
            **merged,
        )
    if bloc_overrides:
        apply_bloc_overrides(world, bloc_overrides, source="config key scenario.blocs")
    return world


OPTIONAL_ATTRS = {
    TRADE_SHARES: "trade_shares",
    PROJECTS: "projects",
    PROSPECTS: "prospects",
    INVESTMENT: "investment",
}


def new_capacity_node(process: str, country: str) -> str:
    """Facility id of the node that holds a country's new capacity of a process (projects.csv
    and prospects.csv): one node per country x process keeps the trade network small."""
    return f"new_{process}_{country}"


def add_new_capacity_nodes(world: World, data_dir: Path) -> None:
    """A facility row (capacity 0 in 2024) for every country x process with projects or prospects;
    its cash cost is the capacity-weighted mean of the named projects (else the prospects' mode)."""
    proj, pros = world.projects, world.prospects
    pros = pros[pros["count"] > 0]  # a row with count 0 documents that a host builds nothing new
    pairs = sorted(set(zip(proj["country"], proj["process"])) | set(zip(pros["country"], pros["process"])))
    if not pairs:
        return
    named: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(proj["country"], proj["process"])):
        named.setdefault(key, []).append(i)
    first_mode: dict[tuple[str, str], float] = {}
    for key, value in zip(zip(pros["country"], pros["process"]), pros["cash_cost_mode"]):
        first_mode.setdefault(key, float(value))
    cost_of, capacity = proj["cash_cost_usd_per_t"].to_numpy(float), proj["capacity_tpa"].to_numpy(float)
    rows = []
    for country, process in pairs:
        idx = named.get((country, process))
        # capacity-weighted mean of the named projects, else the prospects' mode
        cost = float(np.average(cost_of[idx], weights=capacity[idx])) if idx else first_mode[country, process]
        rows.append(
            {
                "facility": new_capacity_node(process, country),
                "name": f"New {process} capacity in {country} (projects and prospects)",
                "country": country,
                "process": process,
                "capacity_tpa": 0.0,
                "output_2024_tpa": 0.0,
                "cash_cost_usd_per_t": cost,
                "source": f"{data_dir.name}/{PROJECTS}, {PROSPECTS} (capacity-weighted cash cost)",
            }
        )
    clash = set(world.facilities["facility"]) & {r["facility"] for r in rows}
    if clash:
        raise DataError(
            f"{data_dir / 'facilities.csv'}: facility id(s) {sorted(clash)} are reserved for new capacity"
        )
    world.facilities = pd.concat([world.facilities, pd.DataFrame(rows)], ignore_index=True)


def _check_investment_refs(world: World, d: Path) -> None:
    countries = set(world.countries["country"])
    processes = set(world.processes["process"])
    for name, table in ((PROJECTS, world.projects), (PROSPECTS, world.prospects)):
        _check_refs(table, "country", countries, d / name, name, "country")
        _check_refs(table, "process", processes, d / name, name, "process")
    lo, hi = PROJECT_START_YEARS
    for i, value in enumerate(world.projects["expected_start"]):
        parts = str(value).split("-")
        ok = len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and 1 <= int(parts[1]) <= 12
        if not ok or not lo <= int(parts[0]) <= hi:
            raise DataError(
                f"{d / PROJECTS}: row {i + 2} ({_row_key(world.projects, i, PROJECTS)}) column "
                f"'expected_start': expected a month 'YYYY-MM' from {lo}-01 to {hi}-12, got {value!r}"
            )
    dup = world.projects["facility"].isin(world.facilities["facility"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{d / PROJECTS}: row {i + 2} column 'facility': {world.projects['facility'].iloc[i]!r} is already in facilities.csv"
        )
    pr = world.prospects
    for lo, mode, hi in (
        ("capex_usd_per_tpa_low", "capex_usd_per_tpa_mode", "capex_usd_per_tpa_high"),
        ("cash_cost_low", "cash_cost_mode", "cash_cost_high"),
    ):
        bad = (pr[lo] > pr[mode]) | (pr[mode] > pr[hi])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{d / PROSPECTS}: row {i + 2} columns {lo}/{mode}/{hi}: expected low <= mode <= high"
            )
    inv = world.investment
    bounds = {**INVESTMENT_PARAMETERS, **INVESTMENT_EVIDENCE}
    _check_refs(inv, "parameter", set(bounds), d / INVESTMENT, INVESTMENT, "parameter")
    for i, r in enumerate(inv.itertuples(index=False)):
        p_lo, p_hi = bounds[r.parameter]
        for col in ("value", "low", "high"):
            if not p_lo <= getattr(r, col) <= p_hi:
                raise DataError(
                    f"{d / INVESTMENT}: row {i + 2} ({_row_key(inv, i, INVESTMENT)}) column '{col}': "
                    f"expected a number in [{p_lo:g}, {p_hi:g}] for {r.parameter}, got {getattr(r, col)!r}"
                )
    _check_refs(inv, "process", processes | {"all"}, d / INVESTMENT, INVESTMENT, "process")
    _check_refs(
        inv,
        "region",
        countries | set(BLOCS) | {"all"},
        d / INVESTMENT,
        INVESTMENT,
        "region (bloc, country or all)",
    )
    bad = (inv["low"] > inv["value"]) | (inv["value"] > inv["high"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{d / INVESTMENT}: row {i + 2} ({_row_key(inv, i, INVESTMENT)}): expected low <= value <= high"
        )


def apply_bloc_overrides(world: World, overrides: dict[str, str], source: str) -> None:
    known = set(world.countries["country"])
    for country, bloc in overrides.items():
        if country not in known:
            raise DataError(f"{source}: unknown country {country!r}; expected one of {sorted(known)}")
        if bloc not in BLOCS:
            raise DataError(f"{source}.{country}: expected one of {list(BLOCS)}, got {bloc!r}")
        world.countries.loc[world.countries["country"] == country, "bloc"] = bloc


def validate_world(world: World, data_dir: Path) -> None:
    """Cross-file checks: every reference resolves and every process is well formed."""
    d = Path(data_dir)
    countries = set(world.countries["country"])
    commodities = set(world.commodities["commodity"])
    processes = set(world.processes["process"])
    end_uses = set(world.end_uses["end_use"])
    _check_refs(world.processes, "commodity", commodities, d / "processes.csv", "processes.csv", "commodity")
    _check_refs(world.facilities, "country", countries, d / "facilities.csv", "facilities.csv", "country")
    _check_refs(world.facilities, "process", processes, d / "facilities.csv", "facilities.csv", "process")
    _check_refs(world.demand, "country", countries, d / "demand.csv", "demand.csv", "country")
    _check_refs(world.demand, "commodity", commodities, d / "demand.csv", "demand.csv", "commodity")
    _check_refs(world.demand, "end_use", end_uses, d / "demand.csv", "demand.csv", "end use")
    _check_refs(world.growth, "end_use", end_uses, d / "demand_growth.csv", "demand_growth.csv", "end use")
    for proc, rows in world.processes.groupby("process", sort=False):
        if (rows["role"] == "output").sum() == 0:
            raise DataError(f"{d / 'processes.csv'}: process {proc!r} has no output row")
        for col in ("agent_type", "origin_stage"):
            if rows[col].nunique() != 1:
                raise DataError(
                    f"{d / 'processes.csv'}: process {proc!r} column '{col}': expected one value "
                    f"on all its rows, got {sorted(rows[col].unique())}"
                )
    over = world.facilities["output_2024_tpa"] > world.facilities["capacity_tpa"] * (1 + 1e-9)
    if over.any():
        i = int(np.flatnonzero(over.to_numpy())[0])
        row = world.facilities.iloc[i]
        raise DataError(
            f"{d / 'facilities.csv'}: row {i + 2} (facility={row['facility']}) column "
            f"'output_2024_tpa': expected <= capacity_tpa ({row['capacity_tpa']}), got "
            f"{row['output_2024_tpa']}"
        )
    trade = world.trade_shares
    if len(trade):
        path = d / TRADE_SHARES
        _check_refs(trade, "commodity", commodities, path, TRADE_SHARES, "commodity")
        _check_refs(trade, "origin", countries, path, TRADE_SHARES, "country")
        for i, codes in enumerate(trade["importers"]):
            unknown = [c for c in codes.split() if c not in countries]
            if unknown:
                raise DataError(f"{path}: row {i + 2} column 'importers': unknown country {unknown[0]!r}")
        total = trade.groupby(["importers", "commodity", "scope"], sort=False)["share"].sum()
        over = total[total > 1 + 1e-9]
        if len(over):
            importers, commodity, scope = over.index[0]
            raise DataError(
                f"{path}: rows with importers={importers}, commodity={commodity}, scope={scope}: column "
                f"'share' sums to {over.iloc[0]:.4g}; expected at most 1 (shares of one total)"
            )
    _check_investment_refs(world, d)
    missing_growth = end_uses - set(world.growth["end_use"])
    if missing_growth:
        raise DataError(
            f"{d / 'demand_growth.csv'}: no rows for end use(s) {sorted(missing_growth)}; every "
            "end use in end_uses.csv needs a growth path"
        )
