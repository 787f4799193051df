"""``critmin collect DIR``: a sweep's run folders as one Parquet dataset.

Writes ``sweep.parquet`` (one row per run x year x metric: ``run_id``, ``seed``, the swept
parameters, then the columns of ``metrics.parquet`` -- year, metric, region, commodity, stage,
basis, scope, detail, value -- plus yearly world prices, final demand and its unmet share from
``summary.json``) and ``sweep_runs.parquet`` (one row per run: status done | failed | incomplete,
the error of a failed run, simulation and write seconds). The swept parameters are the config
keys (dotted names) whose values differ between the runs' resolved configs (``manifest.yaml``,
or ``error.json`` for a failed run). Runs are read and written one at a time, so memory does not
grow with the number of runs.

A damaged run folder does not stop the collection: a ``manifest.yaml``, ``summary.json`` or
``metrics.parquet`` that cannot be read, or that differs from the SHA-256 its DONE marker recorded
(truncated, edited), makes the run ``damaged``: left out of the dataset, listed on stderr and in
the runs table with the reason (``skipped`` in :func:`collect`'s result). A run superseded by a
rerun after its data or code changed (experiments/runstate.py) is listed as ``superseded`` and
left out too, so each config counts once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.lib
import pyarrow.parquet as pq
import yaml

from critmin.experiments import runstate

METRIC_COLUMNS = ["year", "metric", "region", "commodity", "stage", "basis", "scope", "detail", "value"]
ROW_GROUP_ROWS = 250_000  # rows buffered before a Parquet row group is written
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ABSENT = object()


class CollectError(Exception):
    """A sweep folder that cannot be collected (the message names the path)."""


# what reading a damaged file can raise (pyarrow.lib.ArrowException: a truncated Parquet file)
READ_ERRORS = (
    CollectError,
    OSError,
    ValueError,
    KeyError,
    TypeError,
    yaml.YAMLError,
    pyarrow.lib.ArrowException,
)


@dataclass
class Run:
    folder: Path
    status: str  # done | failed | incomplete | superseded | damaged
    diff: dict[str, Any] = field(default_factory=dict)  # config values that differ from the first run's
    config_read: bool = True
    problem: str = ""  # why a damaged run is not collected


def find_runs(root: Path) -> list[Path]:
    """Run folders under ``root``: those listed in ``root/progress.jsonl`` if ``root`` is a sweep's
    record folder (``<output_root>/<experiment>/.sweeps/<time>``), else every folder below
    ``root`` holding a DONE, error.json or manifest.yaml (hidden folders skipped), sorted."""
    if not root.is_dir():
        raise CollectError(f"{root}: not a folder (expected a sweep's output folder, e.g. outputs/sweep)")
    if (root / runstate.PROGRESS).is_file():
        listed = {os.path.normpath(root / str(line.get("run", ""))) for line in runstate.read_progress(root)}
        return sorted(Path(p) for p in listed if Path(p).is_dir())  # a failure's folder goes when it succeeds
    found = []
    markers = {runstate.DONE, runstate.ERROR, "manifest.yaml"}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if markers & set(filenames):
            found.append(Path(dirpath))
            dirnames[:] = []  # a run folder's subfolders (plots/) are not runs
    return sorted(found)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and other leaves kept as values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def read_config(folder: Path, status: str) -> dict[str, Any] | None:
    """The resolved config of a run: manifest.yaml of a finished run, error.json of a failed one."""
    if status == "failed":
        err = runstate.read_json(folder / runstate.ERROR)
        return None if err is None else err.get("config")
    path = folder / "manifest.yaml"
    if not path.is_file():
        return None
    try:
        manifest = yaml.load(path.read_text(), Loader=_Loader)  # a safe loader (C if available)
    except yaml.YAMLError as exc:
        raise CollectError(f"{path}: not valid YAML ({exc})") from exc
    return manifest.get("config") if isinstance(manifest, dict) else None


def damage(folder: Path) -> str:
    """Why a finished run's files cannot be trusted ("" if they can): an unreadable DONE marker, or
    a collected file missing or different from the SHA-256 recorded in DONE when the run finished."""
    info = runstate.done_info(folder)
    if info is None:
        return f"{folder / runstate.DONE}: not valid JSON"
    recorded = info.get("files") or {}
    actual = runstate.file_hashes(folder, tuple(recorded))
    for name, sha in sorted(recorded.items()):
        if name not in actual:
            return f"{folder / name}: missing (the run finished with it)"
        if actual[name] != sha:
            return f"{folder / name}: changed or truncated since the run finished (its SHA-256 differs from DONE)"
    return ""


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, list | dict) else v


def scan(folders: list[Path]) -> tuple[list[Run], list[str], dict[str, Any]]:
    """Read every run's config once; keep per run only the values that differ from the first
    run's. Returns the runs, the swept keys (sorted, seed excluded) and the reference config."""
    runs: list[Run] = []
    ref: dict[str, Any] | None = None
    swept: set[str] = set()
    for folder in folders:
        status = runstate.status(folder)
        if status == "superseded":  # its config is that of the run that redid it
            runs.append(Run(folder, status, config_read=False))
            continue
        try:
            problem = damage(folder) if status == "done" else ""
            cfg = None if problem else read_config(folder, status)
        except READ_ERRORS as exc:
            problem = str(exc)
        if problem:
            runs.append(Run(folder, "damaged", config_read=False, problem=problem))
            continue
        run = Run(folder, status, config_read=cfg is not None)
        runs.append(run)
        if cfg is None:
            continue
        flat = {k: _hashable(v) for k, v in flatten(cfg).items()}
        if ref is None:
            ref = flat
            continue
        run.diff = {k: v for k, v in flat.items() if ref.get(k, _ABSENT) != v}
        run.diff.update({k: None for k in ref.keys() - flat.keys()})
        swept |= run.diff.keys()
    swept.discard("seed")
    return runs, sorted(swept), ref or {}


def param_value(run: Run, key: str, ref: dict[str, Any]) -> Any:
    if not run.config_read:
        return None
    return run.diff[key] if key in run.diff else ref.get(key)


def arrow_type(values: list[Any]) -> pa.DataType:
    """bool, int64, float64 or string for the values a swept key takes."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def cast_value(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if typ == pa.string():
        return v if isinstance(v, str) else json.dumps(v, default=str)
    return float(v) if typ == pa.float64() else v


def summary_rows(summary: dict[str, Any]) -> pd.DataFrame:
    """Yearly world figures from summary.json as tidy metric rows."""
    rows = []
    for com, by_year in (summary.get("world_price_usd_per_t_by_year") or {}).items():
        rows += [(int(y), "world_price_usd_per_t", "WORLD", com, float(v)) for y, v in by_year.items()]
    for key, metric in [
        ("final_demand_t_by_year", "final_demand_t"),
        ("unmet_final_demand_share_by_year", "unmet_final_demand_share"),
    ]:
        rows += [(int(y), metric, "WORLD", "", float(v)) for y, v in (summary.get(key) or {}).items()]
    df = pd.DataFrame(rows, columns=["year", "metric", "region", "commodity", "value"])
    for c in ("stage", "basis", "scope", "detail"):
        df[c] = ""
    return df[METRIC_COLUMNS]


def run_metrics(folder: Path) -> pd.DataFrame:
    """metrics.parquet of a finished run plus its summary.json yearly figures."""
    parts = []
    path = folder / "metrics.parquet"
    if path.is_file():
        m = pd.read_parquet(path)
        missing = set(METRIC_COLUMNS) - set(m.columns)
        if missing:
            raise CollectError(f"{path}: missing columns {sorted(missing)} (expected {METRIC_COLUMNS})")
        parts.append(m[METRIC_COLUMNS])
    summary = runstate.read_json(folder / "summary.json")
    if summary is None:
        raise CollectError(f"{folder / 'summary.json'}: missing or not valid JSON in a finished run")
    parts.append(summary_rows(summary))
    df = pd.concat([p for p in parts if not p.empty] or parts, ignore_index=True)
    df["year"] = df["year"].astype("int64")
    df["value"] = df["value"].astype("float64")
    for c in METRIC_COLUMNS[1:-1]:
        df[c] = df[c].fillna("").astype(str)
    return df


def run_info(run: Run, root: Path) -> dict[str, Any]:
    """One row of the runs table (identity, status, error, timing)."""
    done = runstate.read_json(run.folder / runstate.DONE) or {}
    err = (runstate.read_json(run.folder / runstate.ERROR) or {}) if run.status == "failed" else {}
    if run.status == "damaged":
        err = {"error_type": "damaged run folder", "message": run.problem}
    elif run.status == "superseded":
        err = {
            "error_type": "superseded",
            "message": f"redone in {done.get('superseded_by')}: {done.get('superseded_because', '')}",
        }
    name = run.folder.name
    return {
        "run_id": done.get("run_id") or err.get("requested_id") or name.rsplit("-", 1)[-1],
        "seed": done.get("seed", err.get("seed")),
        "status": run.status,
        "folder": os.path.relpath(run.folder, root),
        "error_type": err.get("error_type", ""),
        "error": err.get("message", ""),
        "attempt": err.get("attempt"),
        "simulate_s": done.get("simulate_s"),
        "simulate_cpu_s": done.get("simulate_cpu_s"),
        "write_s": done.get("write_s"),
    }


def collect(root: Path, out: Path, runs_out: Path) -> dict[str, Any]:
    """Gather the runs under ``root`` into ``out`` (metrics) and ``runs_out`` (runs table)."""
    runs, swept, ref = scan(find_runs(root))
    if not runs:
        raise CollectError(f"{root}: no run folders (folders with DONE, error.json or manifest.yaml)")
    types = {k: arrow_type([param_value(r, k, ref) for r in runs]) for k in swept}
    params = [pa.field(k, t) for k, t in types.items()]
    schema = pa.schema(
        [pa.field("run_id", pa.string()), pa.field("seed", pa.int64()), *params]
        + [pa.field("year", pa.int64())]
        + [pa.field(c, pa.string()) for c in METRIC_COLUMNS[1:-1]]
        + [pa.field("value", pa.float64())]
    )
    clash = {"run_id", "seed", *METRIC_COLUMNS} & set(swept)
    if clash:
        raise CollectError(f"{root}: swept config keys {sorted(clash)} clash with dataset columns")
    out.parent.mkdir(parents=True, exist_ok=True)
    infos, rows, buffer, buffered = [], 0, [], 0
    with pq.ParquetWriter(out, schema) as writer:
        for run in runs:
            table = None
            if run.status == "done":
                try:
                    table = run_table(run, swept, types, ref, schema)
                except READ_ERRORS as exc:
                    run.status, run.problem = "damaged", str(exc)
            info = run_info(run, root)
            info.update({k: cast_value(param_value(run, k, ref), types[k]) for k in swept})
            infos.append(info)
            if table is None:
                continue
            buffer.append(table)
            buffered += table.num_rows
            rows += table.num_rows
            if buffered >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(buffer))
                buffer, buffered = [], 0
        if buffer:
            writer.write_table(pa.concat_tables(buffer))
    runs_table = pd.DataFrame(infos)
    first = ["run_id", "seed", *swept]
    runs_table = runs_table[first + [c for c in runs_table.columns if c not in first]]
    runs_table.to_parquet(runs_out, index=False)
    skipped = [{"folder": str(r.folder), "reason": r.problem} for r in runs if r.status == "damaged"]
    return {"runs": runs_table, "rows": rows, "swept": swept, "skipped": skipped}


def run_table(
    run: Run, swept: list[str], types: dict[str, pa.DataType], ref: dict[str, Any], schema: pa.Schema
) -> pa.Table:
    """The dataset rows of one finished run (raises one of READ_ERRORS for a damaged folder)."""
    done = runstate.done_info(run.folder) or {}
    run_id = done.get("run_id") or run.folder.name.rsplit("-", 1)[-1]
    seed = done.get("seed")
    df = run_metrics(run.folder)
    df.insert(0, "run_id", run_id)
    df.insert(1, "seed", int(seed) if seed is not None else None)
    for i, k in enumerate(swept):
        df.insert(2 + i, k, cast_value(param_value(run, k, ref), types[k]))
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def iter_failed(runs_table: pd.DataFrame) -> Iterator[str]:
    for r in runs_table[~runs_table["status"].isin(["done", "damaged"])].itertuples():
        yield f"  {r.status.upper()} {r.folder}" + (f": {r.error_type}: {r.error}" if r.error_type else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="critmin collect",
        description="Gather a sweep's run folders into one Parquet dataset (one row per run x year x metric, "
        "swept parameters as columns) and a table of the runs with their status and errors.",
    )
    parser.add_argument(
        "dir", type=Path, help="a sweep's output folder (e.g. outputs/sweep) or its record (.sweeps/<time>)"
    )
    parser.add_argument("-o", "--out", type=Path, help="dataset file (default: DIR/sweep.parquet)")
    args = parser.parse_args(argv)
    out = args.out or args.dir / "sweep.parquet"
    runs_out = out.with_name(out.stem + "_runs.parquet")
    try:
        res = collect(args.dir, out, runs_out)
    except CollectError as exc:
        print(f"critmin collect: {exc}", file=sys.stderr)
        return 2
    runs = res["runs"]
    counts = runs["status"].value_counts()
    print(
        f"collected {len(runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}): "
        f"{res['rows']} rows -> {out}; runs -> {runs_out}"
    )
    print(f"swept parameters: {', '.join(['seed', *res['swept']])}")
    if res["skipped"]:
        print(f"critmin collect: skipped {len(res['skipped'])} damaged run folder(s):", file=sys.stderr)
        for s in res["skipped"]:
            reason = s["reason"] if s["folder"] in s["reason"] else f"{s['folder']}: {s['reason']}"
            print(f"  {reason}", file=sys.stderr)
    failed = list(iter_failed(runs))
    if failed:
        print("not collected (status, folder, error):")
        print("\n".join(failed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
