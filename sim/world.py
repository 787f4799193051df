"""World data: load the CSV files of one chain, validate them, and hold them as tables.

Each file's schema (columns, kinds, rules, keys, references to other files) is declared once in
:mod:`critmin.sim.schemas`, which also holds the one validation path every file goes through.
Validation fails before any run starts, naming the file, the row's key, the column and what was
expected. Nothing in this module is specific to a mineral.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from critmin.sim import cache
from critmin.sim.schemas import (
    BLOCS,
    BY_PRODUCTS,
    HOLDERS,
    INVESTMENT,
    PROJECTS,
    PROSPECTS,
    REQUIRED_FILES,
    STAGES,
    TRADE_SHARES,
    TRANSIT,
    WORLD_FILES,
    DataError,
    check_references,
    header_year,
    owner_parts,
    read_table,
)
from critmin.sim.schemas import (
    INVESTMENT_PARAMETERS as INVESTMENT_PARAMETERS,  # sim/investment.py reads it here
)


def data_root() -> Path:
    """Directory holding the packaged world data (``data/`` in the repository)."""
    import critmin.data

    return Path(critmin.data.__file__).parent


def _empty(name: str) -> pd.DataFrame:
    return WORLD_FILES[name].empty()


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
    base_year: int  # the year of the prices, outputs, demand and statuses (named in the headers)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    trade_shares: pd.DataFrame = field(default_factory=lambda: _empty(TRADE_SHARES))
    projects: pd.DataFrame = field(default_factory=lambda: _empty(PROJECTS))
    prospects: pd.DataFrame = field(default_factory=lambda: _empty(PROSPECTS))
    investment: pd.DataFrame = field(default_factory=lambda: _empty(INVESTMENT))
    by_products: pd.DataFrame = field(default_factory=lambda: _empty(BY_PRODUCTS))
    holders: pd.DataFrame = field(default_factory=lambda: _empty(HOLDERS))  # agents/merchant.py
    transit: pd.DataFrame = field(default_factory=lambda: _empty(TRANSIT))  # sim/transit.py

    @property
    def origin_stages(self) -> list[str]:
        """Stages stamped on material by processes, in chain order."""
        order = {s: i for i, s in enumerate(STAGES)}
        stages = self.processes["origin_stage"].unique().tolist()
        return sorted(stages, key=lambda s: (order.get(s, len(order)), s))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_world(data_dir: Path, bloc_overrides: dict[str, str] | None = None) -> World:
    """Read and validate every file of a chain's data directory (sim/schemas.py)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found")
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    for name, schema in WORLD_FILES.items():
        path = data_dir / name
        if not path.is_file():
            if schema.required:
                raise DataError(f"{path}: file missing; every world needs {list(REQUIRED_FILES)}")
            continue
        tables[name] = read_table(path, schema)
        files[f"{data_dir.name}/{name}"] = sha256(path)
    check_references(tables, data_dir, WORLD_FILES)
    world = World(
        base_year=one_base_year({data_dir / n: t.attrs.get("base_year") for n, t in tables.items()}),
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
    world.facilities = default_owner(world.facilities)
    world.projects = default_owner(world.projects)
    add_new_capacity_nodes(world, data_dir)
    if bloc_overrides:
        apply_bloc_overrides(world, bloc_overrides, source="config key scenario.blocs")
    return world


def load_worlds(data_dirs: list[Path], bloc_overrides: dict[str, str] | None = None) -> World:
    """Several chains in one world: shared countries (and so governments and budgets), each
    chain's own commodities, processes, facilities and end uses. Countries listed by several
    chains must agree on their bloc; every other key must be unique across chains.

    Kept in the disk cache (:func:`critmin.sim.cache.disk_memo`) under the SHA-256 of every
    file it reads, the folders' paths and the bloc overrides; a world that fails its checks is
    never stored, so bad input fails the same way every time."""
    return load_worlds_digested(data_dirs, bloc_overrides)[0]


def load_worlds_digested(
    data_dirs: list[Path], bloc_overrides: dict[str, str] | None = None
) -> tuple[World, str | None]:
    """:func:`load_worlds` and the world's :func:`~critmin.sim.cache.content_digest`, computed
    once when the world is built and stored with it (None when the disk cache is off: no key
    asks for it then). The digest is that of the world as returned: valid while nobody has
    changed it, i.e. for a caller that uses it before handing the world out."""
    data_dirs = [Path(d) for d in data_dirs]
    blocs = sorted((bloc_overrides or {}).items())

    def build() -> tuple[World, str | None]:
        world = _load_worlds(data_dirs, bloc_overrides)
        return world, (cache.content_digest(world) if cache.disk_dir() is not None else None)

    return cache.disk_memo(
        "world",
        lambda: cache.disk_key("world", world_inputs(data_dirs), blocs),
        build,
    )


def world_inputs(data_dirs: list[Path]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(folder, [(file, SHA-256 or ``missing``)]) of every file :func:`load_world` may read."""
    return [
        (str(Path(d).resolve()), [(name, cache.file_digest(Path(d) / name)) for name in WORLD_FILES])
        for d in data_dirs
    ]


def _load_worlds(data_dirs: list[Path], bloc_overrides: dict[str, str] | None = None) -> World:
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
            keys = list(WORLD_FILES[name].key)
            dup = table.duplicated(keys)
            if dup.any():
                row = table[dup].iloc[0]
                key = ", ".join(f"{k}={row[k]}" for k in keys)
                raise DataError(
                    f"{name}: key ({key}) appears in more than one of {[str(d) for d in data_dirs]}"
                )
            merged[attr] = table
        world = World(
            base_year=one_base_year({Path(d): w.base_year for d, w in zip(data_dirs, worlds, strict=True)}),
            countries=countries.drop_duplicates("country").reset_index(drop=True),
            files={k: v for w in worlds for k, v in w.files.items()},
            **merged,
        )
    if bloc_overrides:
        apply_bloc_overrides(world, bloc_overrides, source="config key scenario.blocs")
    return world


def one_base_year(years: dict[Path, int | None]) -> int:
    """The one base year named by several files (or chains); None for files without dated columns."""
    named = {path: year for path, year in years.items() if year is not None}
    if len(set(named.values())) != 1:
        raise DataError(
            f"base year: the data name different years {sorted({f'{p}: {y}' for p, y in named.items()})}; "
            "expected one (the year in the headers price_YYYY_usd_per_t, output_YYYY_tpa, ...)"
        )
    return next(iter(named.values()))


def base_year_of(data_dir: Path) -> int:
    """A chain's base year, read from the header of its ``commodities.csv`` only (for checks that
    run before the world is loaded)."""
    path = Path(data_dir) / "commodities.csv"
    try:
        with path.open(encoding="utf-8") as f:
            header = f.readline().strip().split(",")
    except OSError:
        raise DataError(f"{path}: file missing; every world needs {list(REQUIRED_FILES)}") from None
    return header_year(header, WORLD_FILES["commodities.csv"], path)


OPTIONAL_ATTRS = {
    TRADE_SHARES: "trade_shares",
    PROJECTS: "projects",
    PROSPECTS: "prospects",
    INVESTMENT: "investment",
    BY_PRODUCTS: "by_products",
    HOLDERS: "holders",
    TRANSIT: "transit",
}


def default_owner(table: pd.DataFrame) -> pd.DataFrame:
    """``owner`` filled with the row's ``country`` where blank or absent (a plant owned where it
    stands); ``owner_share`` as text, blank where absent (one owner: 1)."""
    out = table.copy()
    blank = pd.Series("", index=out.index)
    owner = out["owner"].fillna("").astype(str).str.strip() if "owner" in out.columns else blank
    out["owner"] = owner.where(owner != "", out["country"])
    out["owner_share"] = out["owner_share"].fillna("").astype(str) if "owner_share" in out.columns else blank
    return out


def ownership(owner: str, share: str, country: str) -> list[tuple[str, float]]:
    """The (country, share) parts of a plant's ownership (sim/schemas.py: owner_parts; the rows
    were checked when read)."""
    parts = owner_parts(owner, share, country)
    if isinstance(parts, str):
        raise DataError(f"owner {owner!r}, owner_share {share!r} of a plant in {country}: expected {parts}")
    return parts


def new_capacity_owners(world: World) -> dict[tuple[str, str], tuple[str, str]]:
    """(owner, owner share) of each country's new-capacity node of a process, by (country,
    process): those of all its named projects when they agree and the country has no prospects
    of that process (whose builders are unknown), else the country. Projects of several owners
    share one node, so a mixed node counts as domestic: the owner view then understates foreign
    control of new capacity. One pass over the tables (a lookup per pair cost ~1 ms each)."""
    proj, pros = world.projects, world.prospects
    owners: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key in zip(proj["country"], proj["process"], proj["owner"], proj["owner_share"]):
        owners.setdefault(key[:2], set()).add(key[2:])
    prospects = set(zip(pros["country"][pros["count"] > 0], pros["process"][pros["count"] > 0]))
    pairs = set(owners) | set(zip(pros["country"], pros["process"]))
    return {
        (c, p): next(iter(owners[c, p]))
        if len(owners.get((c, p), ())) == 1 and (c, p) not in prospects
        else (c, "")
        for c, p in pairs
    }


def new_capacity_node(process: str, country: str) -> str:
    """Facility id of the node that holds a country's new capacity of a process (projects.csv
    and prospects.csv): one node per country x process keeps the trade network small."""
    return f"new_{process}_{country}"


def add_new_capacity_nodes(world: World, data_dir: Path) -> None:
    """A facility row (capacity 0 in the base year) for every country x process with projects or prospects;
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
    owner_of = new_capacity_owners(world)
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
                **dict(zip(("owner", "owner_share"), owner_of[country, process])),
                "process": process,
                "capacity_tpa": 0.0,
                "output_base_tpa": 0.0,
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


def apply_bloc_overrides(world: World, overrides: dict[str, str], source: str) -> None:
    known = set(world.countries["country"])
    for country, bloc in overrides.items():
        if country not in known:
            raise DataError(f"{source}: unknown country {country!r}; expected one of {sorted(known)}")
        if bloc not in BLOCS:
            raise DataError(f"{source}.{country}: expected one of {list(BLOCS)}, got {bloc!r}")
        world.countries.loc[world.countries["country"] == country, "bloc"] = bloc
