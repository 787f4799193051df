"""Regenerate the parameter table of docs/ODD.md from configs/parameters.csv (``make docs``).

The table sits between ``<!-- generated:parameters -->`` and ``<!-- /generated:parameters -->``
(the markers of README.md's generated blocks, docs/generate_readme.py) and is rewritten from the
parameter table, so ODD.md never describes a parameter differently from the one the runs check.
``tests/test_parameters.py`` fails when the block no longer matches.

    python docs/generate_odd.py            # rewrite the block
    python docs/generate_odd.py --check    # exit 1 if the block is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ODD = Path(__file__).resolve().parent / "ODD.md"
BLOCK = re.compile(r"(<!-- generated:parameters -->\n)(.*?)(\n<!-- /generated:parameters -->)", re.S)


def current(text: str) -> str:
    """The block's content in an ODD.md text."""
    m = BLOCK.search(text)
    if not m:
        raise KeyError("docs/ODD.md has no <!-- generated:parameters --> block")
    return m.group(2)


def generated() -> str:
    from critmin.sim.parameters import markdown_table

    return markdown_table()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate docs/ODD.md's parameter table.")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if the table is stale")
    args = p.parse_args(argv)
    text, table = ODD.read_text(), generated()
    stale = current(text) != table
    print(f"parameters: {'changed' if stale else 'unchanged'}")
    if args.check:
        return 1 if stale else 0
    if stale:
        ODD.write_text(BLOCK.sub(lambda m: m.group(1) + table + m.group(3), text, count=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
