"""Run the model end to end: compose the config, build and run the model, collect its tables.

Also the run's identity (config, input data, code) that names its folder. :func:`run_model`
returns the engine's tables (:class:`ModelRun`); the metrics, plots and report are the analysis
layer's (:mod:`critmin.analysis.results`). ``critmin.simulate(overrides)`` (the notebook API,
:mod:`critmin.experiments.api`) and ``critmin run`` return and write both.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from critmin.sim.compose import config_dir, load_config  # noqa: F401  (the public names stay here)
from critmin.sim.config import (
    NAME_KEYS,
    check_folder_name,
    config_notes,
    config_warnings,
)
from critmin.sim.model import CritminModel
from critmin.sim.recorder import consumption_origin_table, flows_table
from critmin.sim.world import DataError

log = logging.getLogger("critmin")
# a run whose material does not add up fails: a relative mass-balance error above this is a
# wrong result (e.g. implausible lifetimes), not floating-point noise (~1e-16)
MASS_BALANCE_TOLERANCE = 1e-9


def _git_status(here: Path) -> tuple[list[str], dict[str, str]]:
    """The one read-only git call of :func:`code_version` (the commit and whether tracked files
    changed: ``git status --porcelain=v2 --branch``) and its environment; git is asked not to
    refresh its index (``git status`` would write ``.git/index.lock``)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    args = ["git", "--no-optional-locks", "-C", str(here), "status", "--porcelain=v2", "--branch"]
    return [*args, "--untracked-files=no"], env


def _git_suffix(status: str) -> str | None:
    """``+g<commit, 12 digits>[.dirty]`` from :func:`_git_status`'s output; None before the
    first commit."""
    sha, dirty = None, False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            sha = oid[:12] if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True  # a changed tracked file
    return None if sha is None else f"+g{sha}{'.dirty' if dirty else ''}"


# the git call of code_version() started ahead (start_code_version), not yet read
_pending_git: list[subprocess.Popen] = []


def start_code_version() -> None:
    """Start :func:`code_version`'s git call in the background (a run asks for it when it
    collects its tables; ~10 ms of waiting, once per process), unless it is known already or
    under way. Errors are left for ``code_version``."""
    if code_version.cache_info().currsize or _pending_git:
        return
    args, env = _git_status(Path(__file__).resolve().parent)
    with contextlib.suppress(OSError):  # no git: code_version finds that again
        _pending_git.append(
            subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        )


@functools.cache
def code_version(here: Path | None = None) -> str:
    """Package version plus the git commit of the source tree, when there is one
    (``0.1.0+g<12 digits>``, ``.dirty`` when tracked files changed). Read-only: git is asked not
    to refresh its index (``git status`` would write ``.git/index.lock``). Asked once per
    process (one git call, ~10 ms; a run in a sweep ~50 ms), perhaps started ahead
    (:func:`start_code_version`)."""
    from critmin.version import __version__

    try:
        if here is None and _pending_git:
            proc = _pending_git.pop()
            out, code = proc.communicate()[0], proc.returncode
        else:
            args, env = _git_status(here or Path(__file__).resolve().parent)
            done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
            out, code = done.stdout, done.returncode
    except OSError:
        return __version__
    suffix = _git_suffix(out) if code == 0 else None
    return __version__ + (suffix or "")


# ---------------------------------------------------------------------- run identity
# A run's numbers follow from its resolved config, the data files it reads and the code that
# simulates it. All three are known before the run starts, so a sweep can tell whether a
# finished run folder still holds the numbers a new run would produce (experiments/run.py).

# packages whose source simulates a run or computes what its folder holds (the analysis layer
# writes metrics.parquet, the dependency block of summary.json and report.html; experiments/ only
# orchestrates: what it changes in a config is in the resolved config) and libraries whose
# version can move a number. Named, not imported: the engine does not import the analysis layer.
SIMULATING_PACKAGES = ("critmin", "critmin.sim", "critmin.agents", "critmin.policies", "critmin.analysis")
NUMERIC_LIBRARIES = ("numpy", "pandas", "scipy", "mesa", "networkx")
MISSING_FILE = "missing"


def config_id(cfg: DictConfig, container: dict[str, Any] | None = None) -> str:
    """Hash of the resolved config alone (includes the seed); ``container``: the config resolved
    to plain containers already, when the caller has it."""
    if container is None:
        container = OmegaConf.to_container(cfg, resolve=True)
    text = json.dumps(container, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def write_parquet_in_parts(df: pd.DataFrame, path: Path, rows: int = 50_000) -> None:
    """Write ``df`` as one Parquet file, converting ``rows`` rows at a time (the flows table with
    its origin columns would otherwise be copied whole into Arrow: a peak of its own size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
    # dictionary encoding for the label columns only: measured values rarely repeat, and trying
    # to dictionary-encode them costs half the write of the flows table (and a larger file)
    labels = [f.name for f in schema if not pa.types.is_floating(f.type)]
    with pq.ParquetWriter(path, schema, use_dictionary=labels) as writer:
        for start in range(0, max(len(df), 1), rows):
            writer.write_table(
                pa.Table.from_pandas(df.iloc[start : start + rows], schema=schema, preserve_index=False)
            )


def data_dirs(scenario: Any) -> list[tuple[str, Path]]:
    """(label, folder) of each data folder of ``scenario.data``: a name under the packaged
    ``data/`` (label ``data/<name>``) or an absolute path (label: the path itself)."""
    from critmin.sim.world import data_root

    chains = [scenario.data] if isinstance(scenario.data, str) else list(scenario.data)
    out = []
    for chain in map(str, chains):
        path = data_root() / chain  # an absolute chain replaces the root
        out.append((chain if Path(chain).is_absolute() else f"data/{chain}", path))
    return out


@functools.cache
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached per process while its modification time and size are unchanged;
    ``missing`` for a file that is not there."""
    try:
        st = path.stat()
    except OSError:
        return MISSING_FILE
    return _file_sha256(str(path), st.st_mtime_ns, st.st_size)


def input_hashes(cfg: DictConfig) -> dict[str, str]:
    """SHA-256 of every data file a run of ``cfg`` reads (the files sim/world.py loads: each
    required table, and each optional one that exists), computed before the run."""
    from critmin.sim.schemas import OPTIONAL_FILES, REQUIRED_FILES

    out = {}
    for label, folder in data_dirs(cfg.scenario):
        for name in REQUIRED_FILES:
            out[f"{label}/{name}"] = file_sha256(folder / name)
        for name in OPTIONAL_FILES:
            if (folder / name).is_file():
                out[f"{label}/{name}"] = file_sha256(folder / name)
    return dict(sorted(out.items()))


def source_sha256(folders: list[Path]) -> str:
    """One hash over the ``*.py`` files directly in ``folders`` (name and content, in order)."""
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            h.update(f"{folder.name}/{path.name}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


@functools.cache
def code_identity() -> dict[str, Any]:
    """What of the code can move a run's numbers: a hash of the simulating packages' source
    files as installed (exact with or without git, dirty or not) and the numeric libraries'
    versions. Computed once per process."""
    import importlib.metadata
    import importlib.util
    import platform

    folders = []
    for name in SIMULATING_PACKAGES:
        spec = importlib.util.find_spec(name)
        folders += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    libraries = {"python": platform.python_version()}
    for lib in NUMERIC_LIBRARIES:
        # an imported library's __version__ is its distribution's version, read without
        # scanning the installed metadata (~2 ms a library)
        version = getattr(sys.modules.get(lib), "__version__", None)
        if isinstance(version, str):
            libraries[lib] = version
            continue
        try:
            libraries[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            libraries[lib] = "absent"
    return {"source_sha256": source_sha256(folders), "libraries": libraries}


def run_identity(cfg: DictConfig, container: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a run's numbers depend on: config hash, input data hashes, code identity
    (``container``: as :func:`config_id`)."""
    return {"config_id": config_id(cfg, container), "inputs": input_hashes(cfg), "code": code_identity()}


def identity_id(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def run_id(cfg: DictConfig) -> str:
    """Stable id of a run: resolved config (with the seed), input data and code. Same config,
    data and code → same id and folder; a data file or the code changed → another id."""
    return identity_id(run_identity(cfg))


@dataclass
class ModelRun:
    """What one run of the model produced: its tables, the engine's own headline figures
    (``summary``) and the manifest. The analysis layer (:mod:`critmin.analysis.results`) adds the
    metrics, plots and report to it; :func:`critmin.simulate` returns that complete result."""

    timeseries: pd.DataFrame
    # trade by month and pair with its origin mix; None: built from trade_cells when first read
    # (a property below, as consumption_origin)
    flows: pd.DataFrame | None
    facility_activity: pd.DataFrame
    summary: dict[str, Any]
    manifest: dict[str, Any]
    model: CritminModel | None = field(default=None, repr=False)
    # what the run accepted but a reader should know; written to summary.json as "warnings"
    warnings: list[str] = field(default_factory=list)
    # origin of what each country uses (month, commodity, region, stage, origin, tonnes); None:
    # built from origin_cells when first read (a property below: simulate() does not build its
    # 0.3 M rows unless they are read; the metrics read the cells)
    consumption_origin: pd.DataFrame | None = field(default=None, repr=False)
    # final demand per country × end use (month, commodity, region, end_use, demand, ...)
    final_demand: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # year, country, item, usd
    # the investment pipeline at the end of the run (sim/capacity.py): one row per project
    # component, prospect and expansion option, with its milestones
    projects: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    # the arrays consumption_origin is built from (Recorder.consumption_cells: plain arrays and
    # names), read by the metrics in place of its rows; None for a run read from its folder
    origin_cells: dict[str, Any] | None = field(default=None, repr=False)
    # the arrays the flows table is built from (Recorder.trade_cells: its origin block is the
    # table's), read by the metrics in place of its rows
    trade_cells: dict[str, Any] | None = field(default=None, repr=False)

    def field_values(self) -> dict[str, Any]:
        """The run's fields by name, as its constructor takes them, without building a table
        not yet built (``consumption_origin``: None until first read)."""
        lazy = ("consumption_origin", "flows")
        out = {f.name: getattr(self, f.name) for f in fields(ModelRun) if f.name not in lazy}
        for name in lazy:
            out[name] = self.__dict__.get(f"_{name}")
        return out

    def series(self, variable: str, commodity: str, region: str = "WORLD") -> pd.Series:
        """One monthly series, indexed by month."""
        ts = self.timeseries
        sel = ts[(ts["variable"] == variable) & (ts["commodity"] == commodity) & (ts["region"] == region)]
        return sel.set_index("month")["value"].astype(float)

    def write(self, outdir: Path, flows: bool = True, *, release: bool = False) -> Path:
        """Write the run's tables (Parquet), summary.json and manifest.yaml to ``outdir``.
        ``release``: the consumption-origin table is emptied (same columns) once written where
        its cells stand in for it (``origin_cells``: the metrics and the report's trace read
        those), before the flows table is built and written."""
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        # in parts: a whole table converted at once to Arrow and encoded peaks at several times
        # its own size (consumption_origin: +25 MiB for a 4 MB frame)
        write_parquet_in_parts(self.timeseries, outdir / "timeseries.parquet")
        # the table with the largest temporaries first, built (when not yet) while the flows
        # table is not
        write_parquet_in_parts(self.consumption_origin, outdir / "consumption_origin.parquet")
        if release and self.origin_cells is not None:
            self.consumption_origin = self.consumption_origin.iloc[:0].copy()
        if flows:
            write_parquet_in_parts(self.flows, outdir / "flows.parquet")
        self.final_demand.to_parquet(outdir / "final_demand.parquet", index=False)
        if len(self.projects):
            self.projects.to_parquet(outdir / "projects.parquet", index=False)
        summary = {**self.summary, "warnings": list(self.warnings)}
        (outdir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        # libyaml's emitter where PyYAML has it (the same text, 4x faster than the Python one)
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        (outdir / "manifest.yaml").write_text(yaml.dump(self.manifest, Dumper=dumper, sort_keys=False))
        return outdir


def _built_on_first_read(name: str, cells_field: str, build: Callable[[dict], pd.DataFrame]) -> property:
    """A table field of :class:`ModelRun` (``name``): the table given, or built once from the
    run's ``cells_field`` by ``build`` when first read (an empty table where there are none)."""
    key = f"_{name}"

    def get(run: ModelRun) -> pd.DataFrame:
        table = run.__dict__.get(key)
        if table is None:
            cells = getattr(run, cells_field)
            table = build(cells) if cells is not None else pd.DataFrame()
            run.__dict__[key] = table
        return table

    def set_(run: ModelRun, table: pd.DataFrame | None) -> None:
        run.__dict__[key] = table

    return property(
        get, set_, doc=f"``run.{name}``: given, or built from ``run.{cells_field}`` when first read."
    )


# after the dataclass is made: its __init__ sets the fields through the properties (None: not
# built)
ModelRun.consumption_origin = _built_on_first_read(
    "consumption_origin", "origin_cells", consumption_origin_table
)  # type: ignore[assignment]
ModelRun.flows = _built_on_first_read("flows", "trade_cells", flows_table)  # type: ignore[assignment]


def new_model(cfg: DictConfig) -> CritminModel:
    """Check a resolved config and build its model (world, network, 2024 calibration), not run.
    The model checks the config first (before Mesa seeds its generator: a negative seed crashes)."""
    return CritminModel(cfg)


def run_model(overrides: list[str] | DictConfig | None = None, *, keep_model: bool = False) -> ModelRun:
    """Compose a config (or take a resolved one), run the model to its horizon, return its
    tables, without metrics (:func:`critmin.simulate` adds them)."""
    cfg = overrides if isinstance(overrides, DictConfig) else load_config(overrides)
    start_code_version()  # the manifest's code version, asked of git while the model runs
    model = new_model(cfg)
    model.run()
    return collect(model, cfg, keep_model, discard=True)


def world_meta(model: CritminModel) -> dict[str, Any]:
    """The world facts a reader of the run's tables needs (summary.json key ``world``): each
    country's bloc, each commodity's stage (commodities.csv order) and the stages in order."""
    net = model.net
    return {
        "countries": {c: str(b) for c, b in zip(net.countries, net.blocs)},
        "commodity_stage": dict(zip(net.commodities, net.commodity_stage)),
        "stages": list(net.stages),
    }


def demanded_commodities(model: CritminModel) -> list[str]:
    """Commodities that final demand buys in this world, sorted."""
    net = model.net
    return sorted({net.commodities[k] for k in net.slot_commodity[net.consume_slot[model.demand_nodes]]})


def ledger_frame(governments: dict[str, Any], start: tuple[int, int]) -> pd.DataFrame:
    """Flatten ``model.governments[c].ledger`` (step, item, usd) into year, country, item, usd."""
    rows = [
        (start[0] + (start[1] - 1 + step) // 12, c, item, usd)
        for c, g in governments.items()
        for step, item, usd in getattr(g, "ledger", [])
    ]
    return pd.DataFrame(rows, columns=["year", "country", "item", "usd"])


def collect(
    model: CritminModel, cfg: DictConfig, keep_model: bool = False, *, discard: bool = False
) -> ModelRun:
    """The tables of a finished model, its headline figures and its manifest. Fails (naming the
    data files) when the run's material does not add up. ``discard``: the caller drops the
    model afterwards, so its recorder's origin shares are freed as the flows table is built
    (the recorder cannot build that table again)."""
    rec = model.recorder
    ts = rec.timeseries()
    errors = rec.mass_balance_errors()[: model.state.t]
    summary = summarise(model, ts, float(errors.max()) if errors.size else 0.0)
    config = OmegaConf.to_container(cfg, resolve=True)  # resolved once: the identity and the manifest
    identity = run_identity(cfg, config)
    manifest = {
        "run_id": identity_id(identity),
        "seed": int(model.seed),
        "code_version": code_version(),
        "input_data_sha256": dict(sorted(model.world.files.items())),
        "identity": identity,  # what run_id hashes: config hash, data file hashes, code
        "config": config,
    }
    summary["world"] = world_meta(model)
    run = ModelRun(
        ts,
        None,  # flows: built from trade_cells when first read
        rec.facility_activity(),
        summary,
        manifest,
        model if keep_model else None,
        consumption_origin=None,  # built from origin_cells when first read
        final_demand=rec.final_demand(),
        ledger=ledger_frame(model.governments, model.start),
        projects=model.investment.projects(model),
        origin_cells=rec.consumption_cells(),
        trade_cells=rec.trade_cells(take=discard and not keep_model),
    )
    summary["investment"] = investment_summary(run.projects)
    run.warnings = config_warnings(cfg)
    for text in run.warnings:
        warn_once(text)
    run.warnings += config_notes(cfg)
    return run


_WARNED: set[str] = set()


def warn_once(text: str) -> None:
    """Log a run's warning once per process: a study runs the same config many times, and the
    warning is kept in every run's summary.json anyway."""
    if text not in _WARNED:
        _WARNED.add(text)
        log.warning("%s", text)


def investment_summary(projects: pd.DataFrame) -> dict[str, Any]:
    """Named projects and prospects by status, and the capacity they have brought online."""
    if projects.empty:
        return {"pipeline": "none (exogenous capacity trend)"}
    greenfield = projects[projects["kind"] != "expansion"]
    done = projects[projects["first_production"].notna()]
    return {
        "greenfield_by_status": {
            str(k): int(v) for k, v in greenfield["status"].value_counts().sort_index().items()
        },
        "online_tpa_by_kind": {
            str(k): round(float(v), 1) for k, v in done.groupby("kind")["online_tpa"].sum().items()
        },
        "named_projects_started": sorted(
            f"{r.component} ({r.first_production})"
            for r in greenfield[greenfield["first_production"].notna()].itertuples()
        ),
    }


def production_shares(ts: pd.DataFrame, year: int) -> dict[str, dict[str, float]]:
    """Share of each country in a commodity's production over one year (top five); ``ts`` the
    timeseries, or its production rows of countries (faster for several years)."""
    return production_shares_by_year(ts, [year]).get(year, {})


def production_shares_by_year(ts: pd.DataFrame, years: list[int]) -> dict[int, dict[str, dict[str, float]]]:
    """:func:`production_shares` for several years at once (one grouping; each year's sums are
    the same, added in the same order). Years without production rows are left out."""
    sel = ts[(ts["variable"] == "production") & (ts["region"] != "WORLD")]
    year_of = sel["month"].dt.year.to_numpy()
    sel = sel[np.isin(year_of, years)]
    year_of = year_of[np.isin(year_of, years)]
    # grouped by the categories' integer codes (in category order, as a groupby on the
    # categorical would): the same sums, without re-coding string categories per group
    commodities, regions = sel["commodity"].cat.categories, sel["region"].cat.codes
    names = sel["region"].cat.categories
    sums = sel["value"].groupby([year_of, sel["commodity"].cat.codes.to_numpy(), regions.to_numpy()]).sum()
    out: dict[int, dict[str, dict[str, float]]] = {}
    # the sums come sorted by (year, commodity, region): each (year, commodity) is one run of them
    year_c, com_c, reg_c = (sums.index.get_level_values(i).to_numpy() for i in range(3))
    value = sums.to_numpy(float)
    key = year_c * (len(commodities) + 1) + com_c
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.zeros(0, np.int64)
    names = np.asarray(names, dtype=object)
    for a, b in zip(starts, [*starts[1:], key.size], strict=True):
        v, r = value[a:b], reg_c[a:b]
        share = v[v > 0] / v.sum()
        # largest first, as pandas' sort_values(ascending=False) orders them, ties included
        # (it sorts the reversed values with numpy's quicksort and reverses the order back)
        top = (share.size - 1 - share[::-1].argsort(kind="quicksort"))[::-1][:5]
        out.setdefault(int(year_c[a]), {})[str(commodities[com_c[a]])] = {
            str(names[r[v > 0][i]]): round(float(share[i]), 4) for i in top
        }
    return out


def _world_prices(price: pd.DataFrame, net: Any) -> tuple[dict[str, tuple[float, float]], dict[str, dict]]:
    """From the world price rows: per commodity with rows (in the order of a groupby on the
    column: its categories', or the names sorted) the lowest and highest ratio to its base-year
    price, and its mean price per year, over the years with any price row (NaN where the
    commodity has none). Means by np.bincount (a pandas groupby adds with compensation:
    within 1e-15); the same divisions for the ratios."""
    com = price["commodity"]
    cat = com.array if isinstance(com.dtype, pd.CategoricalDtype) else pd.Categorical(com)
    names = [str(c) for c in cat.categories]
    base = dict(zip(net.commodities, map(float, net.price0), strict=True))
    keep = cat.codes >= 0
    code = cat.codes[keep].astype(np.int64)
    value = price["value"].to_numpy(float)[keep]
    if not value.size:
        return {}, {}
    ratio = value / np.array([base.get(n, np.nan) for n in names])[code]
    year = price["month"].to_numpy()[keep].astype("datetime64[Y]").astype(np.int64) + 1970
    y0, K = int(year.min()), len(names)
    Y = int(year.max()) - y0 + 1
    key = (year - y0) * K + code
    total = np.bincount(key, weights=value, minlength=Y * K).reshape(Y, K)
    count = np.bincount(key, minlength=Y * K).reshape(Y, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
    years = np.flatnonzero(count.sum(axis=1) > 0)  # the years of the groupby's index
    lo = np.full(K, np.inf)
    hi = np.full(K, -np.inf)
    np.fmin.at(lo, code, ratio)  # NaN skipped, as pandas' min and max skip it
    np.fmax.at(hi, code, ratio)
    lo[np.isinf(lo)], hi[np.isinf(hi)] = np.nan, np.nan  # a commodity without a ratio
    occur = np.flatnonzero(np.bincount(code, minlength=K) > 0)
    ranges = {names[k]: (float(lo[k]), float(hi[k])) for k in occur}
    by_year = {names[k]: {int(y0 + y): float(mean[y, k]) for y in years} for k in occur}
    return ranges, by_year


def _final_demand_by_year(world: pd.DataFrame) -> tuple[dict[int, float], dict[int, float]]:
    """World final demand and unmet demand per year (t), the years with rows of either, in
    order (NaN where a year has rows of the other only): summed with np.bincount over the
    rows in order (a pandas groupby adds with compensation: within 1e-15)."""
    variable = world["variable"]
    if isinstance(variable.dtype, pd.CategoricalDtype):
        names = [str(c) for c in variable.cat.categories]
        code = variable.cat.codes.to_numpy()
        which = np.full(len(names) + 1, -1)
        for j, name in enumerate(("demand", "unmet_demand")):
            if name in names:
                which[names.index(name)] = j
        which = which[code]  # a missing code (-1) reads the last entry: -1
    else:
        v = variable.to_numpy()
        which = np.where(v == "demand", 0, np.where(v == "unmet_demand", 1, -1))
    keep = which >= 0
    if not keep.any():
        return {}, {}
    year = world["month"].to_numpy()[keep].astype("datetime64[Y]").astype(np.int64) + 1970
    y0 = int(year.min())
    key = (year - y0) * 2 + which[keep]
    n = (int(year.max()) - y0 + 1) * 2
    sums = np.bincount(key, weights=world["value"].to_numpy(float)[keep], minlength=n).reshape(-1, 2)
    has = (np.bincount(key, minlength=n) > 0).reshape(-1, 2)
    sums[~has] = np.nan
    rows = np.flatnonzero(has.any(axis=1))
    demand = {int(y0 + r): float(sums[r, 0]) for r in rows} if has[:, 0].any() else {}
    unmet = {int(y0 + r): float(sums[r, 1]) for r in rows} if has[:, 1].any() else {}
    return demand, unmet


def summarise(model: CritminModel, ts: pd.DataFrame, mb_error: float) -> dict[str, Any]:
    """Headline figures of a run for summary.json."""
    net = model.net
    world = ts[ts["region"] == "WORLD"]
    # the years of the run's months: every month has rows (the world price of each commodity)
    years = sorted(set(model.recorder.months().year.tolist()))
    production = ts[(ts["variable"] == "production") & (ts["region"] != "WORLD")]
    ratio_range, price_by_year = _world_prices(world[world["variable"] == "price"], net)
    demand_by_year, unmet_by_year = _final_demand_by_year(world)
    shares = production_shares_by_year(production, [y for y in (years[0], 2030, years[-1]) if y in years])
    summary: dict[str, Any] = {
        "scenario": model.cfg.scenario.name,
        "policy": model.cfg.policy.name,
        "shock": model.cfg.shock.name,
        "seed": int(model.seed),
        "start": f"{model.start[0]}-{model.start[1]:02d}",
        "base_year": int(model.world.base_year),
        "months": int(model.state.t),
        "mass_balance_max_rel_error": mb_error,
        "price_usd_per_t_base_year": dict(zip(net.commodities, map(float, net.price0))),
        "price_ratio_to_base_year": {
            c: {"min": round(lo, 4), "max": round(hi, 4)} for c, (lo, hi) in ratio_range.items()
        },
        "world_price_usd_per_t_by_year": {
            c: {y: round(v, 1) for y, v in by_year.items()} for c, by_year in price_by_year.items()
        },
        "production_share_by_country": {
            int(y): shares.get(int(y), {}) for y in (years[0], 2030, years[-1]) if y in years
        },
        "final_demand_t_by_year": {int(y): round(float(v), 1) for y, v in demand_by_year.items()},
        "unmet_final_demand_share_by_year": {
            int(y): round(float(np.nan_to_num(unmet_by_year.get(y, 0.0)) / v), 5)
            for y, v in demand_by_year.items()
        },
    }
    if not np.isfinite(mb_error) or mb_error > MASS_BALANCE_TOLERANCE:
        files = ", ".join(sorted(model.world.files)) or "the data files"
        raise DataError(
            f"mass balance: the run's material does not add up (max relative error {mb_error:.2e}; "
            f"expected <= {MASS_BALANCE_TOLERANCE:.0e}); check implausible values in {files} "
            "(e.g. end_uses.csv lifetime_years) and the scenario parameters"
        )
    return summary


def output_dir(cfg: DictConfig) -> Path:
    """``<output_root>/<experiment>/<scenario>-<policy>-<shock>-seed<seed>-<run_id>``; each
    name is one plain folder name, so nothing is written outside ``output_root``."""
    for key in NAME_KEYS:
        node = cfg
        for part in key.split("."):
            node = node[part]
        check_folder_name(node, key)
    name = f"{cfg.scenario.name}-{cfg.policy.name}-{cfg.shock.name}-seed{cfg.seed}-{run_id(cfg)}"
    return Path(cfg.output_root) / cfg.experiment.name / name
