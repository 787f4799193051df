"""Regenerate the example outputs in README.md from the model (``make docs``).

Each generated block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
markers and is rewritten from a fresh run, so the README's numbers are always what the code
produces. ``tests/test_readme.py`` fails when a block no longer matches.

    python docs/generate_readme.py                 # rewrite every block
    python docs/generate_readme.py crisis trace    # only these blocks
    python docs/generate_readme.py --check         # exit 1 and list the stale blocks

Blocks: ``compare`` (the default comparison behind ``make run``), ``compare-read`` (how to read
it: the stages that hold every mix back, from the same run), ``crisis`` (the magnet ban,
2 years), ``run`` (``critmin run`` and its folder), ``baseline`` (China's production shares
2024 and 2030 beside the IEA outlook), ``dependency`` (the G7+ magnet dependency path), ``trace``
(Germany's 2030 magnets) and ``benchmark`` (the table ``make bench`` stores in
docs/benchmark_table.txt, copied as it is).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARK_TABLE = ROOT / "docs" / "benchmark_table.txt"
# blocks the test suite regenerates every time (compare takes ~20 s and is a slow test)
FAST = ("crisis", "run", "baseline", "dependency", "trace", "benchmark")


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


_RUNS: dict[int, object] = {}


def default_run(seed: int = 0) -> object:
    """The default run (ree_2024 to 2035, no policy, no shock) of a seed, made once."""
    from critmin.experiments.api import simulate

    if seed not in _RUNS:
        _RUNS[seed] = simulate([f"seed={seed}"])
    return _RUNS[seed]


# IEA Global Critical Minerals Outlook 2024, announced-projects case (shared/data/facts.md §3.1):
# China's share of rare-earth mining 62% (2023) -> 54% (2030), of refining 92% -> 77%
IEA_CHINA = {"ree_concentrate": ("62%", "54%"), "ndpr_oxide": ("92%", "77%")}
STAGE_OF = {"ree_concentrate": "mining", "ndpr_oxide": "NdPr refining", "ndfeb_magnet": "magnets"}


def baseline() -> str:
    """China's share of world production by stage in 2024 and 2030, no policy, seeds 0 and 1,
    beside the IEA's announced-projects outlook."""
    rows = []
    for com, stage in STAGE_OF.items():
        shares = [default_run(seed).summary["production_share_by_country"] for seed in (0, 1)]
        now = shares[0][2024][com].get("CHN", 0.0)
        later = [s[2030][com].get("CHN", 0.0) for s in shares]
        iea = f"{IEA_CHINA[com][0]:>4} (2023) → {IEA_CHINA[com][1]}" if com in IEA_CHINA else "  no figure"
        rows.append(
            f"{stage:<14} {100 * now:5.1f}%   {100 * min(later):5.1f}–{100 * max(later):.1f}%   {iea}"
        )
    head = "China's share     2024   2030 (seeds 0-1)   IEA outlook"
    return _fence([head, *rows])


def dependency() -> str:
    """The G7+ single-supplier dependency path of magnets, by origin stage, in the default run."""
    paths = default_run().metrics["paths"]
    sel = paths[(paths["commodity"] == "ndfeb_magnet") & paths["period"].isin([2024, 2030, 2035])]
    lines = ["G7+ magnets: share whose stage happened in the largest supplier outside the G7+"]
    lines.append(f"{'stage':<10}" + "".join(f"{y:>16}" for y in (2024, 2030, 2035)))
    for stage in ("mine", "refining", "metal", "magnet"):
        got = sel[sel["stage"] == stage].set_index("period")
        cells = [f"{got.loc[y, 'supplier']} {100 * got.loc[y, 'share']:.1f}%" for y in (2024, 2030, 2035)]
        lines.append(f"{stage:<10}" + "".join(f"{c:>16}" for c in cells))
    return _fence(lines)


def _masked(line: str) -> str:
    """A run's console line without what changes from run to run or with every code change:
    the time it took, the folder's id, and a mass-balance error that is rounding noise."""
    line = re.sub(r" in [0-9.]+s;", " in …s;", line)
    line = re.sub(r"-[0-9a-f]{10}\b", "-…", line)
    return re.sub(r"error ([0-9.]+e-1[3-9])", "error < 1e-12", line)


def run_folder() -> str:
    """``critmin run`` of the default config and the folder it writes (time and id masked: they
    change from run to run and with every code change)."""
    from critmin.experiments import cli

    with tempfile.TemporaryDirectory() as tmp:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(tmp):
            try:
                cli.main(["run", "output_root=outputs"])
            except SystemExit as exc:
                if exc.code:
                    raise RuntimeError(f"critmin run exited {exc.code}") from None
        said = [ln for ln in (out.getvalue() + err.getvalue()).splitlines() if "mass balance" in ln]
        folder = next((Path(tmp) / "outputs" / "default").iterdir())
        files = sorted(p.name for p in folder.iterdir())
    said = [_masked(ln) for ln in said]
    name = re.sub(r"-[0-9a-f]{10}$", "-…", folder.name)
    half = (len(files) + 1) // 2
    listing = ["  ".join(files[:half]), "  ".join(files[half:])]
    return _fence(["$ .venv/bin/critmin run", *said, f"$ ls outputs/default/{name}", *listing])


def trace() -> str:
    """``critmin trace`` on the default run: where Germany's 2030 magnets came from."""
    from critmin.experiments import trace as trace_cli
    from critmin.sim.run import load_config, output_dir

    cfg = load_config([])
    # the folder's id changes with every code change (it is part of the run's identity): the
    # README shows the shell pattern that finds it
    name = (
        output_dir(cfg).relative_to(cfg.output_root).with_name(output_dir(cfg).name.rsplit("-", 1)[0] + "-*")
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = default_run().write(Path(tmp) / "run", plots=False, flows=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = trace_cli.main([str(folder), "--region", "DEU", "--year", "2030"])
    if code != 0:
        raise RuntimeError("critmin trace failed")
    lines = out.getvalue().splitlines()
    shown = [*lines[:7], "..."] if len(lines) > 8 else lines
    return _fence([f"$ .venv/bin/critmin trace outputs/{name} --region DEU --year 2030", *shown])


@functools.cache
def _comparison() -> tuple[list[str], pd.DataFrame]:
    """The default comparison behind ``make run``, run once per process: its console lines and
    its ``comparison.parquet``."""
    from critmin.experiments import compare as compare_cli

    with tempfile.TemporaryDirectory() as tmp:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = compare_cli.main(["--out", tmp])
        if code != 0:
            raise RuntimeError(f"critmin compare exited {code}")
        table = pd.read_parquet(next(Path(tmp).glob("*/comparison.parquet")))
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("wrote ")]
    return lines, table


def compare() -> str:
    """``make run``: the default comparison's headline and table (console output)."""
    return _fence(["$ make run", *_comparison()[0]])


def compare_read() -> str:
    """How to read the comparison: the stages that hold every mix back, with their 2030 shares
    (G7+ use, by location, median over seeds) and fiscal costs, from the same run."""
    d = _comparison()[1]
    share = d[(d.metric == "dependency_share") & (d.region == "G7+") & (d.year == 2030)]

    def stage(commodity: str, name: str) -> pd.Series:
        return share[(share.commodity == commodity) & (share.stage == name)].groupby("mix")["value"]

    def pct(v: float) -> str:
        return f"{100 * v:.1f}%"

    fiscal = d[(d.metric == "fiscal_cost_usd") & (d.region == "G7+") & (d.year <= 2030)]
    bn = fiscal.groupby(["mix", "seed"])["value"].sum().groupby("mix").median() / 1e9
    dytb, metal = stage("dytb_oxide", "refining"), stage("ndfeb_magnet", "metal")
    mine, refine = stage("ndpr_oxide", "mine").median(), stage("ndpr_oxide", "refining").median()
    below = [m for m in mine.index if m != "none" and mine[m] < 0.6 and refine[m] < 0.6]
    quoted = [f"`{m}`" for m in below]
    names = " and ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted) or "No mix"
    seeds = d.seed.nunique()
    lo, hi, med = dytb.min()["none"], dytb.max()["none"], dytb.median()
    no_policy = "below it even" if refine["none"] < 0.6 else "above it"
    m = metal.median()
    text = (
        "Read: no mix brings every checked stage under 60% by 2030; the separation of Dy/Tb oxide "
        f"holds all of them back at ~{100 * med.mean():.0f}% Chinese (the heavy rare earths come from "
        "ionic clays in southern China and Myanmar and are separated in China; no mix has an instrument "
        f"aimed at heavy-REE separation outside China): {pct(med['none'])} with no policy "
        f"({pct(lo)[:-1]}–{pct(hi)} over the {seeds} seeds) and {pct(med['alliance_all'])} under "
        f"`alliance_all` (about {bn['alliance_all']:.1f} bn USD to 2030). The next stage is metal reduction "
        f"(oxide to NdPr metal): {pct(m['none'])} with no policy, {pct(m['alliance_all'])} under "
        f"`alliance_all`, {pct(m['alliance_stockpile_diversification'])} under the stockpile and "
        "diversification cap alone (`alliance_stockpile_diversification`, "
        f"{bn['alliance_stockpile_diversification']:.2f} bn), {pct(m['alliance_all_midstream'])} with a "
        "floor, offtake and investment terms for G7+ metal and alloy plants added "
        f"(`alliance_all_midstream`), {pct(m['alliance_midstream'])} under the midstream instruments alone "
        f"(`alliance_midstream`). {names} {'brings' if len(below) <= 1 else 'bring'} NdPr oxide's mining and refining stages below the line; "
        f"NdPr refining is {no_policy} with no policy ({pct(refine['none'])}, median)."
    )
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def benchmark() -> str:
    """The table ``make bench`` wrote to docs/benchmark_table.txt, as it is."""
    if not BENCHMARK_TABLE.is_file():
        raise FileNotFoundError(f"{BENCHMARK_TABLE} missing: run `make bench` first")
    return _fence(BENCHMARK_TABLE.read_text().rstrip("\n").splitlines())


BLOCKS: dict[str, Callable[[], str]] = {
    "compare": compare,
    "compare-read": compare_read,
    "crisis": crisis,
    "run": run_folder,
    "baseline": baseline,
    "dependency": dependency,
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
