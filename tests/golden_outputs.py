"""Golden outputs: digests of three canonical runs that guard every number critmin produces.

A digest is computed per output table (every table of :class:`critmin.analysis.results.Result`, the
metrics tables included) and for ``summary.json``. Tables are put in a canonical form first:
rows whose numeric columns are all exactly zero are dropped (whether a run stores an empty trade
pair or not is a representation choice, not a result), all-zero columns likewise, and rows are
sorted by their key (non-numeric) columns. Then, per numeric column: row count, NaN count, sum,
sum of absolute values and three random projections (fixed weights). Key columns are hashed.
Numbers are compared at 1e-12 relative to the column's scale, not as file bytes, so a change
that only reorders floating-point sums passes and any change of a value fails, naming the table
and column.

Regenerate on purpose, saying why (the reason goes into ``tests/golden/CHANGELOG.md``)::

    make golden WHY="price formation: scarcity rent (issue 15)"
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GOLDEN_DIR = Path(__file__).parent / "golden"
RTOL = 1e-12
N_PROJECTIONS = 3

# name -> Hydra overrides
CASES: dict[str, list[str]] = {
    "ree_default_2035": ["seed=0"],
    "full_2024_to_2026": ["scenario=full_2024", "scenario.end=2026-12", "seed=0"],
    "ree_alliance_all_refiner_cut": ["policy=alliance_all", "shock=refiner_cut", "seed=0"],
}


def _canonical(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    df = df.reset_index(drop=True)
    num = [
        c for c in df.columns if pd.api.types.is_float_dtype(df[c]) or pd.api.types.is_integer_dtype(df[c])
    ]
    num = [c for c in num if not pd.api.types.is_bool_dtype(df[c])]
    keys = [c for c in df.columns if c not in num]
    if num:
        values = df[num].to_numpy(dtype=float)
        nonzero_cols = [c for c, keep in zip(num, (values != 0).any(axis=0)) if keep]
        row_keep = (values != 0).any(axis=1)
        df = df.loc[row_keep, keys + nonzero_cols] if len(df) else df
        num = nonzero_cols
    if len(df):
        key_text = pd.DataFrame({c: [str(v) for v in df[c].tolist()] for c in keys}, index=df.index)
        order_frame = pd.concat([key_text, df[num]], axis=1)
        df = df.loc[order_frame.sort_values(list(order_frame.columns), kind="mergesort").index]
    return df.reset_index(drop=True), keys, sorted(num)


def table_digest(df: pd.DataFrame) -> dict[str, Any]:
    """Digest of one table in canonical form (see the module docstring)."""
    df, keys, num = _canonical(df)
    key_hash = hashlib.sha256()
    for c in keys:
        key_hash.update(c.encode())
        key_hash.update("\x1f".join(map(str, df[c].tolist())).encode())
    rng = np.random.default_rng(20240101)
    weights = rng.uniform(0.5, 1.5, size=(N_PROJECTIONS, len(df)))
    columns = {}
    for c in num:
        x = df[c].to_numpy(dtype=float)
        finite = np.where(np.isfinite(x), x, 0.0)
        columns[str(c)] = {
            "n_nan": int(np.isnan(x).sum()),
            "sum": float(finite.sum()),
            "abs_sum": float(np.abs(finite).sum()),
            "projections": [float(w @ finite) for w in weights],
        }
    return {"rows": len(df), "keys": keys, "key_sha256": key_hash.hexdigest(), "columns": columns}


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, list | tuple):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def result_digest(result: Any) -> dict[str, Any]:
    """Digest of every table of a run and of its summary.json content."""
    tables = {
        "timeseries": result.timeseries,
        "flows": result.flows,
        "facility_activity": result.facility_activity,
        "consumption_origin": result.consumption_origin,
        "final_demand": result.final_demand,
        "ledger": result.ledger,
        "projects": result.projects,
    }
    tables.update({f"metrics.{k}": v for k, v in result.metrics.items() if isinstance(v, pd.DataFrame)})
    summary = json.loads(json.dumps(result.summary, sort_keys=True, default=str))
    return {
        "tables": {name: table_digest(df) for name, df in sorted(tables.items())},
        "summary": _flatten(summary),
    }


def _close(a: float, b: float, scale: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= RTOL * max(scale, abs(a), abs(b)) + 1e-300


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences between two digests, one line each (empty: equal at RTOL)."""
    diffs: list[str] = []
    et, at = expected["tables"], actual["tables"]
    for name in sorted(set(et) | set(at)):
        if name not in at or name not in et:
            diffs.append(f"table {name}: {'missing' if name not in at else 'new'}")
            continue
        e, a = et[name], at[name]
        for field in ("rows", "keys", "key_sha256"):
            if e[field] != a[field]:
                diffs.append(f"table {name}: {field} differs ({e[field]!r} → {a[field]!r})")
        for col in sorted(set(e["columns"]) | set(a["columns"])):
            ec, ac = e["columns"].get(col), a["columns"].get(col)
            if ec is None or ac is None:
                diffs.append(f"table {name}: column {col} {'missing' if ac is None else 'new'}")
                continue
            scale = max(ec["abs_sum"], ac["abs_sum"])
            pairs = [("n_nan", ec["n_nan"], ac["n_nan"]), ("sum", ec["sum"], ac["sum"])]
            pairs += [
                (f"projection {i}", x, y)
                for i, (x, y) in enumerate(zip(ec["projections"], ac["projections"]))
            ]
            for what, x, y in pairs:
                if not _close(float(x), float(y), 1.5 * scale):
                    diffs.append(f"table {name}: column {col} {what} {x!r} → {y!r}")
                    break
    es, as_ = expected["summary"], actual["summary"]
    for key in sorted(set(es) | set(as_)):
        x, y = es.get(key, "<missing>"), as_.get(key, "<missing>")
        if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
            # float noise measures (e.g. the mass-balance error, ~1e-16) get an absolute floor
            if not (_close(float(x), float(y), 0.0) or abs(float(x) - float(y)) <= 1e-12):
                diffs.append(f"summary {key}: {x!r} → {y!r}")
        elif x != y:
            diffs.append(f"summary {key}: {x!r} → {y!r}")
    return diffs


def _where(diffs: list[str]) -> str:
    """Which tables, columns and summary keys moved, in one short line."""
    places = sorted({" ".join(d.split(":")[0].split()[:2]) for d in diffs})
    shown = ", ".join(places[:8]) + (f" and {len(places) - 8} more" if len(places) > 8 else "")
    return f"{len(diffs)} differences in {shown}"


def run_case(name: str) -> Any:
    from critmin.experiments.api import simulate
    from critmin.sim.run import load_config

    return simulate(load_config(CASES[name]))


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


def regenerate(why: str, names: list[str]) -> None:
    changed = []
    for name in names:
        digest = result_digest(run_case(name))
        path = golden_path(name)
        old = json.loads(path.read_text()) if path.exists() else None
        diffs = compare(old, digest) if old else ["new"]
        if diffs:
            changed.append(f"{name} (new)" if old is None else f"{name}: {_where(diffs)}")
            path.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {'unchanged' if not diffs else f'{len(diffs)} differences'}")
    if not changed:
        print("no golden output changed; CHANGELOG untouched")
        return
    log = GOLDEN_DIR / "CHANGELOG.md"
    stamp = dt.date.today().isoformat()
    entry = f"- {stamp}: {why}\n" + "".join(f"  - {c}\n" for c in changed)
    log.write_text(log.read_text() + entry if log.exists() else "# Golden outputs changelog\n\n" + entry)
    print(f"wrote {len(changed)} digest(s) and a line in {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the golden-output digests, on purpose.")
    parser.add_argument("--why", required=True, help="why the numbers move (goes into CHANGELOG.md)")
    parser.add_argument("cases", nargs="*", default=list(CASES), help="cases to regenerate (default: all)")
    args = parser.parse_args()
    if not args.why.strip():
        parser.error("--why must say why the numbers move")
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; expected some of {sorted(CASES)}")
    regenerate(args.why.strip(), args.cases)


if __name__ == "__main__":
    main()
