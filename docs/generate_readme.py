"""Regenerate the example outputs in README.md from the model (``make docs``).

Each generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
markers and is rewritten from a fresh run, so the README's numbers are always what the code
produces. ``tests/test_readme.py`` fails when a block no longer matches.

    python docs/generate_readme.py                 # rewrite every block
    python docs/generate_readme.py crisis trace    # only these blocks
    python docs/generate_readme.py --check         # exit 1 and list the stale blocks

Blocks: ``compare`` (the default comparison behind ``make run``: ~3 minutes), ``crisis`` (the
magnet ban, 2 years), ``trace`` (the default run to 2035, Germany's 2030 magnets) and
``benchmark`` (the table ``make bench`` stores in docs/benchmark_table.txt, copied as it is).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARK_TABLE = ROOT / "docs" / "benchmark_table.txt"
FAST = ("crisis", "trace", "benchmark")  # blocks the test suite regenerates every time


def _fence(lines: list[str]) -> str:
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```"


def crisis() -> str:
    """Magnet prices under the 6-month halt of Chinese magnet exports (USD/kg)."""
    from critmin.experiments.api import simulate

    r = simulate(["shock=magnet_ban_demo", "scenario=ree_2024_short"])
    ts = r.timeseries
    sel = ts[
        (ts["commodity"] == "ndfeb_magnet")
        & ts["region"].isin(["CHN", "DEU", "JPN"])
        & ts["variable"].isin(["buyer_price", "price"])
    ]
    table = (
        sel.pivot_table(index="month", columns=["variable", "region"], values="value", observed=True) / 1000
    )
    table = table.loc[[f"2025-{m:02d}-01" for m in (3, 5, 7, 9, 10)]]
    table.index = table.index.strftime("%Y-%m")
    table.index.name = None
    table.columns.names = [None, "region"]
    return _fence(table.round(1).to_string(float_format=lambda v: f"{v:.1f}").splitlines())


def trace() -> str:
    """``critmin trace`` on the default run: where Germany's 2030 magnets came from."""
    from critmin.experiments import trace as trace_cli
    from critmin.experiments.api import simulate
    from critmin.sim.run import load_config, output_dir

    cfg = load_config([])
    # the folder's id changes with every code change (it is part of the run's identity): the
    # README shows the shell pattern that finds it
    name = (
        output_dir(cfg).relative_to(cfg.output_root).with_name(output_dir(cfg).name.rsplit("-", 1)[0] + "-*")
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = simulate(cfg).write(Path(tmp) / "run", plots=False, flows=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = trace_cli.main([str(folder), "--region", "DEU", "--year", "2030"])
    if code != 0:
        raise RuntimeError("critmin trace failed")
    lines = out.getvalue().splitlines()
    shown = [*lines[:7], "..."] if len(lines) > 8 else lines
    return _fence([f"$ .venv/bin/critmin trace outputs/{name} --region DEU --year 2030", *shown])


def compare() -> str:
    """``make run``: the default comparison's headline and table (console output)."""
    from critmin.experiments import compare as compare_cli

    with tempfile.TemporaryDirectory() as tmp:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = compare_cli.main(["--out", tmp])
    if code != 0:
        raise RuntimeError(f"critmin compare exited {code}")
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("wrote ")]
    return _fence(["$ make run", *lines])


def benchmark() -> str:
    """The table ``make bench`` wrote to docs/benchmark_table.txt, as it is."""
    if not BENCHMARK_TABLE.is_file():
        raise FileNotFoundError(f"{BENCHMARK_TABLE} missing: run `make bench` first")
    return _fence(BENCHMARK_TABLE.read_text().rstrip("\n").splitlines())


BLOCKS: dict[str, Callable[[], str]] = {
    "compare": compare,
    "crisis": crisis,
    "trace": trace,
    "benchmark": benchmark,
}


def pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(\n<!-- /generated:{re.escape(name)} -->)", re.S
    )


def blocks_in(text: str) -> dict[str, str]:
    """The generated blocks present in a README text: name -> content."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"<!-- generated:([\w-]+) -->\n(.*?)\n<!-- /generated:\1 -->", text, re.S)
    }


def replace(text: str, name: str, content: str) -> str:
    if not pattern(name).search(text):
        raise KeyError(f"README.md has no <!-- generated:{name} --> block")
    return pattern(name).sub(lambda m: m.group(1) + content + m.group(3), text, count=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate README.md's generated blocks from the model.")
    p.add_argument("blocks", nargs="*", help=f"blocks to regenerate (default: all of {list(BLOCKS)})")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if a block is stale")
    args = p.parse_args(argv)
    unknown = sorted(set(args.blocks) - set(BLOCKS))
    if unknown:
        p.error(f"unknown block(s) {unknown}; expected some of {list(BLOCKS)}")
    text = README.read_text()
    present = blocks_in(text)
    names = args.blocks or [n for n in BLOCKS if n in present]
    new, stale = text, []
    for name in names:
        content = BLOCKS[name]()
        if present.get(name) != content:
            stale.append(name)
        new = replace(new, name, content)
        print(f"{name}: {'changed' if name in stale else 'unchanged'}")
    if args.check:
        return 1 if stale else 0
    if new != text:
        README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
