"""Write the scorecard sections of docs/validation.md from `critmin validate` outputs.

    critmin validate --seeds 5 --out outputs/validate/now
    python docs/generate_validation.py outputs/validate/now [--before outputs/validate/then --before-label "landed main (f5f1436)"]

Replaces what lies between ``<!-- generated:scorecard -->`` and ``<!-- /generated:scorecard -->``:
the totals per episode (and, with ``--before``, the totals of an earlier run beside them), then
every fact per episode. The numbers come from the run folders' ``totals.csv`` and
``scorecard.csv``; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

DOC = Path(__file__).with_name("validation.md")
BLOCK = re.compile(r"(<!-- generated:scorecard -->\n).*?(<!-- /generated:scorecard -->)", re.S)


def _number(value: float) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def totals(now: pd.DataFrame, before: pd.DataFrame | None, label: str) -> list[str]:
    cols = ["facts", "hit", "direction", "miss", "not_expressible"]
    if before is None:
        head = "| Episode | Facts scored | Hit | Direction | Miss | Not expressible | Hit rate |"
        lines = [head, "|---|---|---|---|---|---|---|"]
        for r in now.itertuples(index=False):
            cells = [str(getattr(r, c)) for c in cols]
            lines.append(f"| {r.episode} | " + " | ".join(cells) + f" | {r.hit_rate:.1%} |")
        return lines
    head = f"| Episode | {label}: hit / direction / miss of scored | now: hit / direction / miss of scored | hit rate then → now |"
    lines = [head, "|---|---|---|---|"]
    old = before.set_index("episode")
    for r in now.itertuples(index=False):
        b = old.loc[r.episode] if r.episode in old.index else None
        then = f"{b.hit:.0f} / {b.direction:.0f} / {b.miss:.0f} of {b.facts:.0f}" if b is not None else "–"
        rate = f"{b.hit_rate:.1%} → {r.hit_rate:.1%}" if b is not None else f"– → {r.hit_rate:.1%}"
        lines.append(f"| {r.episode} | {then} | {r.hit} / {r.direction} / {r.miss} of {r.facts} | {rate} |")
    return lines


def facts(card: pd.DataFrame) -> list[str]:
    lines = []
    for episode, rows in card.groupby("episode", sort=False):
        lines += ["", f"### {episode}", ""]
        lines += [
            "| Fact | Window | Observed | Hit band | Model median (10–90%) | Verdict |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows.itertuples(index=False):
            if r.expressible != "yes":
                lines.append(f"| {r.label} | – | – | – | not expressible: {r.note} | – |")
                continue
            band = f"{_number(r.hit_low)} to {_number(r.hit_high)}"
            model = f"{_number(r.model_median)} ({_number(r.model_low)} to {_number(r.model_high)})"
            lines.append(f"| {r.label} | {r.window} | {r.observed_text} | {band} | {model} | {r.verdict} |")
    return lines


def render(text: str, now: Path, before: Path | None = None, before_label: str = "before") -> str:
    """``text`` (docs/validation.md) with its scorecard block written from the validate folders."""
    totals_now = pd.read_csv(now / "totals.csv")
    totals_before = pd.read_csv(before / "totals.csv") if before else None
    card = pd.read_csv(now / "scorecard.csv")
    seeds = int(card["seeds"].max())
    body = [f"Totals per episode ({seeds} seeds):", "", *totals(totals_now, totals_before, before_label), ""]
    body += [f"## Facts per episode (median over {seeds} seeds)", *facts(card), ""]
    if not BLOCK.search(text):
        raise SystemExit(f"{DOC}: no <!-- generated:scorecard --> block")
    return BLOCK.sub(lambda m: m.group(1) + "\n".join(body) + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("now", type=Path, help="a `critmin validate --out` folder")
    ap.add_argument("--before", type=Path, help="an earlier validate folder, shown beside it")
    ap.add_argument("--before-label", default="before")
    args = ap.parse_args(argv)
    DOC.write_text(render(DOC.read_text(), args.now, args.before, args.before_label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
