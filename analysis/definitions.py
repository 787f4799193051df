"""The target under every defensible definition, side by side (issue 17, item 4).

The headline (``experiment.metrics``: region, basis, scope; the ``checks``) asks whether the
G7+ bloc's consumption of every checked (commodity, stage) pair is below the line. The Alliance
text gives no measurement basis, so this table shows the same verdict under the main
alternatives, one row per definition:

- **region**: the headline region and each member measured the same way (:data:`MEMBERS`:
  USA, JPN, DEU, FRA, GBR, ITA, CAN, KOR, AUS, IND and the EU), the supplier always the largest
  single country *outside the headline region* (for the G7+: outside the G7+), so a member's
  row is its own dependency on a non-member, not on a fellow member;
- **scope**: consumption (plant inputs and final use) or imports (shipments from outside the
  region);
- **stage set**: ``every stage`` (every checked pair, the headline) or one product at the stage
  where it is made (``product: <commodities>``: e.g. magnets at the magnet stage; rare-earth
  oxides at the refining stage);
- **control**: ``location`` (where the stage happened: "where processed") or ``owner`` (the
  country of the controlling owner of the plant that did it: "who owns the plant";
  facilities.csv ``owner``). The owner rows are there when some plant of the run is owned from
  another country than its own; without such plants they would repeat the location rows.

Per row and year: the highest share over the set's pairs, the pair that holds it and its
supplier; and in the target year whether that highest share is below the first target's line.
The basis is the headline's (``alternative_definitions`` shows the value basis per pair).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from critmin.analysis import metrics
from critmin.sim.world import DataError

if TYPE_CHECKING:
    from critmin.analysis.metrics import Tables

# the members shown next to the bloc (issue 17): the G7, the Alliance partners and the EU
MEMBERS = ("USA", "JPN", "DEU", "FRA", "GBR", "ITA", "CAN", "KOR", "AUS", "IND", "EU")
EVERY_STAGE = "every stage"
CONTROL_WORDS = {"location": "where processed", "owner": "who owns the plant"}
COLUMNS = [
    "definition",
    "headline",
    "region",
    "role",
    "scope",
    "basis",
    "stage_set",
    "checks",
    "control",
    "supplier_outside",
]


def stage_sets(tables: Tables) -> dict[str, list[tuple[str, str]]]:
    """``every stage`` (the checked pairs) and one set per product stage: the checked commodities
    whose own stage (commodities.csv) is among their checked stages, grouped by that stage."""
    pairs = [(c["commodity"], s) for c in tables.settings.get("checks", []) or [] for s in c["stages"]]
    out: dict[str, list[tuple[str, str]]] = {EVERY_STAGE: pairs}
    by_stage: dict[str, list[tuple[str, str]]] = {}
    for com, stage in pairs:
        if tables.commodity_stage.get(com) == stage:
            by_stage.setdefault(stage, []).append((com, stage))
    for group in by_stage.values():
        out["product: " + "+".join(c for c, _ in group)] = group
    return out


def regions(tables: Tables) -> list[tuple[str, str]]:
    """(region, role): the headline region, then each member this world knows."""
    head = tables.settings.get("region", "G7+")
    out = [(head, "headline region")]
    for m in MEMBERS:
        if m == head:
            continue
        try:
            tables.members(m)
        except DataError:
            continue  # a world without the country (a test world) shows the others
        out.append((m, "member" if m in tables.countries else "member group"))
    return out


def _names(column: pd.Series) -> np.ndarray:
    """A column's values as plain strings (through its categories when it has them: 200,000 rows
    of a categorical convert in microseconds, not a third of a second)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = np.append(np.asarray(column.cat.categories.astype(str), dtype=object), "")
        return names[column.cat.codes.to_numpy()]  # code -1 (missing) -> ""
    return column.astype(str).to_numpy()


def _differ(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per row: whether two columns name different things (as :func:`_names` gives them; by
    category codes mapped to one numbering when both are categorical)."""
    if not (isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype)):
        return _names(a) != _names(b)
    names_a = [*map(str, a.cat.categories), ""]  # code -1 (missing) -> "", the last entry
    names_b = [*map(str, b.cat.categories), ""]
    number = {n: i for i, n in enumerate(dict.fromkeys([*names_a, *names_b]))}
    ia = np.array([number[n] for n in names_a], np.int64)
    ib = np.array([number[n] for n in names_b], np.int64)
    return ia[a.cat.codes.to_numpy()] != ib[b.cat.codes.to_numpy()]


def has_foreign_owners(tables: Tables) -> bool:
    """Whether some plant of the run is owned from another country than its own (the run's
    tables then name owners: consumption_origin ``owner``, flows ``..._owner_XXX`` columns).
    Read once per run's tables (the definitions table asks for every region and scope)."""
    if "has_foreign_owners" not in tables.cache:
        c, cells = tables.consumption_origin, tables.origin_cells
        if cells is not None:  # the table's owner and origin of each row, from its cells
            tonnes, mix = cells["tonnes"], cells["mix"]
            has_rows = ((mix > 0) & (tonnes > 0)[:, :, None]).any(axis=(0, 1))  # per origin column
            owned = bool((has_rows & (cells["owner"] != cells["origin"])).any())
        else:
            owned = bool("owner" in c.columns and len(c) and _differ(c["owner"], c["origin"]).any())
        trade = tables.trade_cells
        if trade is not None:  # a flows column of a foreign-owned plant: a column with a share
            used = trade["columns"]
            shipped = bool((trade["column_owner"][used] != trade["column_country"][used]).any())
        else:
            shipped = any(metrics.OWNER_TAG in str(col) for col in tables.flows.columns)
        tables.cache["has_foreign_owners"] = bool(owned or shipped)
    return tables.cache["has_foreign_owners"]


def controls(tables: Tables) -> list[str]:
    """``location``, and ``owner`` where some plant is foreign-owned."""
    return ["location", "owner"] if has_foreign_owners(tables) else ["location"]


def target(tables: Tables) -> tuple[float, int] | None:
    """(threshold, year) of the first target that applies to the headline region."""
    head = tables.settings.get("region", "G7+")
    for t in tables.settings.get("targets", []) or []:
        if t.get("region") in (None, head):
            return float(t["threshold"]), int(t.get("year", 2030))
    return None


def definitions_table(tables: Tables, years: list[int]) -> pd.DataFrame:
    """One row per (region, scope, stage set); see the module docstring. Columns
    :data:`COLUMNS`, then per year ``<y>`` (the highest share), ``binding <y>`` (its pair,
    "commodity stage"), ``supplier <y>``; and ``met <target year>`` when the target year is among
    ``years`` (None where the row has no value)."""
    s = tables.settings
    head_region = s.get("region", "G7+")
    head_scope = s.get("scope", "consumption")
    basis = s.get("basis", "mass")
    sets = stage_sets(tables)
    tgt = target(tables)
    rows = []
    scopes = (head_scope, *(x for x in metrics.SCOPES if x != head_scope))
    defs = {  # each (region, scope, control, pair) once: built here, read twice
        (region, scope, control, com, stage): metrics.default_definition(
            tables, com, stage, region=region, scope=scope, outside=head_region, control=control
        )
        for region, _ in regions(tables)
        for scope in scopes
        for control in controls(tables)
        for com, stage in sets[EVERY_STAGE]
    }
    # every region of a pair at once (the same numbers as one by one)
    metrics.dependency_many(tables, list(defs.values()))
    for region, role in regions(tables):
        for scope in scopes:
            for control in controls(tables):
                paths = {}  # per pair: year -> (share, supplier)
                for com, stage in sets[EVERY_STAGE]:
                    d = defs[(region, scope, control, com, stage)]
                    paths[(com, stage)] = metrics.by_period(tables, d)
                for name, pairs in sets.items():
                    headline = (
                        region == head_region
                        and scope == head_scope
                        and name == EVERY_STAGE
                        and control == "location"
                    )
                    row: dict[str, Any] = {
                        "definition": f"{region} · {scope} · {basis} · {name} · {control}",
                        "headline": headline,
                        "region": region,
                        "role": role,
                        "scope": scope,
                        "basis": basis,
                        "stage_set": name,
                        "checks": ", ".join(f"{c} {st}" for c, st in pairs),
                        "control": control,
                        "supplier_outside": head_region,
                    }
                    for y in years:
                        value, binding, supplier = np.nan, "", ""
                        for pair in pairs:
                            v, sup = paths[pair].get(y, (np.nan, ""))
                            if np.isfinite(v) and not v <= value:  # first pair, or a higher share
                                value, binding, supplier = v, f"{pair[0]} {pair[1]}", sup
                        row[str(y)] = value
                        row[f"binding {y}"] = binding
                        row[f"supplier {y}"] = supplier
                    if tgt is not None and tgt[1] in years:
                        v = row[str(tgt[1])]
                        row[f"met {tgt[1]}"] = bool(v < tgt[0]) if np.isfinite(v) else None
                    rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- words (reports)
def stage_set_words(name: str) -> str:
    """``every stage`` → "every checked stage"; ``product: a+b`` → "product: A and B, where made"."""
    from critmin.analysis import labels

    if name == EVERY_STAGE:
        return "every checked stage"
    coms = name.removeprefix("product: ").split("+")
    return f"product: {labels.join(labels.commodity(c) for c in coms)} (where made)"


def scope_words(scope: str) -> str:
    return "all use" if scope == "consumption" else "imports"


KEY = ["region", "scope", "stage_set"]


def owner_rows_shown(df: pd.DataFrame, value_cols: list[str], same_cols: list[str] = ()) -> pd.Series:
    """Per row: shown in a report. Location rows always; an owner row only where it differs from
    its location row (a value by more than 1e-9, or a supplier / binding pair in ``same_cols``):
    where no plant of the row's stages is foreign-owned the two are equal, and repeating them
    would double the table."""
    if "control" not in df.columns or not (df["control"] == "owner").any():
        return pd.Series(True, index=df.index)
    key = [k for k in (*KEY, "mix") if k in df.columns]
    cols = [*value_cols, *same_cols]
    owner = df[df["control"] == "owner"]
    loc = df[df["control"] == "location"].drop_duplicates(key)
    # each owner row beside its location row (one join, in the owner rows' order)
    base = owner[key].merge(loc[[*key, *cols]], on=key, how="left", indicator=True)
    found = (base.pop("_merge") == "both").to_numpy()
    same = found.copy()
    for c in value_cols:
        a = pd.to_numeric(owner[c], errors="coerce").to_numpy(float)
        b = pd.to_numeric(base[c], errors="coerce").to_numpy(float)
        same &= (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-9)
    for c in same_cols:
        same &= owner[c].astype(str).to_numpy() == base[c].astype(str).to_numpy()
    shown = pd.Series(True, index=df.index)
    shown[owner.index[found]] = ~same[found]
    if "mix" in df.columns:  # an owner row is shown for every mix when it differs in one
        group = df[[*key[:-1], "control"]].astype(str).agg("|".join, axis=1)
        shown = shown.groupby(group).transform("any")
    return shown


def report_table(df: pd.DataFrame, thresholds: list[float]) -> dict[str, Any]:
    """The run report's rows: region, scope, stage set, per year the highest share (its stage and
    supplier), the verdict in the target year; the headline row flagged. Owner rows equal to
    their location rows are left out (:func:`owner_rows_shown`; ``owners_same`` counts them)."""
    from critmin.analysis import labels

    years = [c for c in df.columns if c.isdigit()]
    met_col = next((c for c in df.columns if c.startswith("met ")), None)
    n_owner = int((df["control"] == "owner").sum()) if "control" in df.columns else 0
    shown = owner_rows_shown(df, years, [f"supplier {y}" for y in years] + [f"binding {y}" for y in years])
    df = df[shown]
    rows = []
    for _, r in df.iterrows():
        cells = []
        for y in years:
            b, sup = r[f"binding {y}"], r[f"supplier {y}"]
            note = ""
            if b:
                com, st = b.split(" ", 1)
                note = f"{labels.commodity(com)}, {labels.stage(st, com)}"
                note += f" · {labels.country(sup)}" if sup not in ("", "none") else ""
            value = labels.share(r[y], thresholds) if pd.notna(r[y]) else "no use"
            cells.append({"value": value, "note": note})
        met = r[met_col] if met_col else None
        rows.append(
            {
                "headline": bool(r["headline"]),
                "region": labels.region_short(r["region"]),
                "scope": scope_words(r["scope"]),
                "stages": stage_set_words(r["stage_set"]),
                "control": CONTROL_WORDS.get(str(r.get("control", "location")), str(r.get("control"))),
                "cells": cells,
                "verdict": "–" if met is None or pd.isna(met) else ("met" if met else "not met"),
            }
        )
    return {
        "years": years,
        "target": met_col.removeprefix("met ") if met_col else "",
        "line": f"{thresholds[0]:.0%}" if thresholds else "",
        "rows": rows,
        "owners": n_owner > 0,
        "owners_shown": bool(len(df)) and bool((df.get("control", pd.Series(dtype=str)) == "owner").any()),
        "owners_same": n_owner - int((df.get("control", pd.Series(dtype=str)) == "owner").sum()),
        "outside": str(df["supplier_outside"].iloc[0]) if len(df) else "",
        "basis": "tonnes" if len(df) and df["basis"].iloc[0] == "mass" else "value",
    }
