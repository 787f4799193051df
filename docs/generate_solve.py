"""Regenerate the example in docs/solve.md from a short `critmin solve` study on the default world.

    python docs/generate_solve.py                       # runs the study (1-4 min on 2 cores)
    python docs/generate_solve.py --folder F --output O  # from a finished study F and its stdout O

The block between ``<!-- example:solve -->`` and ``<!-- /example:solve -->`` is rewritten: the
command's own output, the fully checked mixes and the alone-vs-coalition curve. Not part of
``make docs`` (too slow for it); the study's settings are configs/solve/default.yaml with
``--budget 40 --jobs 2``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "solve.md"
COMMAND = ["critmin", "solve", "--budget", "40", "--jobs", "2"]


def block(folder: Path, stdout: str) -> str:
    from critmin.analysis import comparison, labels

    lines = [f"$ {' '.join(COMMAND)}"]
    lines += [
        re.sub(r"/\S*/(default-\w+)", r"outputs/solve/\1", line) for line in stdout.strip().splitlines()
    ]
    checked = pd.read_parquet(folder / "checked.parquet")
    lines += [
        "",
        "fully checked mixes (robust share: over 5 seeds x none, ree_licensing_2025, magnet_ban_demo):",
    ]
    table = pd.DataFrame(
        {
            "mode": checked["mode"],
            "instruments on": checked[[c for c in checked if c.startswith("use.")]].sum(axis=1).astype(int),
            "robust share": [labels.share(v, [0.6, 0.5]) for v in checked["share"]],
            "binding stage": [comparison.check_text(b) for b in checked["binding"]],
            "PV 2035, USD bn": (checked["pv_2035_usd"] / 1e9).round(2),
            "US share, USD bn": (checked["payer_pv_2035_usd"] / 1e9).round(2),
            "unmet magnets": [f"{v:.2f}%" for v in checked["unmet_pct"]],
            "peak price": [f"{v:.2f}x" for v in checked["peak_ratio"]],
        }
    )
    lines += table.to_string(index=False).splitlines()
    curve = folder / "coalition_curve.csv"
    if curve.is_file():
        c = pd.read_csv(curve)
        lines += [
            "",
            "cheapest screened cost to bring every checked stage to or below a level (USD bn, PV to 2035):",
        ]
        shown = pd.DataFrame(
            {
                "level": [f"{v:.1%}" for v in c["share_below"]],
                "US alone": c["alone_payer_cost_usd"].map(_bn),
                "US in coalition": c["coalition_payer_cost_usd"].map(_bn),
                "coalition total": c["coalition_total_cost_usd"].map(_bn),
                "ratio": c["payer_ratio"].map(lambda v: "-" if pd.isna(v) else f"{v:.2g}"),
            }
        )
        lines += shown.to_string(index=False).splitlines()
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```"


def _bn(v: float) -> str:
    return "-" if pd.isna(v) else f"{v / 1e9:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", type=Path, help="a finished study folder (with --output)")
    p.add_argument("--output", type=Path, help="the stdout of the command that made it")
    args = p.parse_args(argv)
    if args.folder is not None:
        folder, stdout = args.folder, args.output.read_text()
    else:
        tmp = Path(tempfile.mkdtemp(prefix="critmin-solve-doc-"))
        run = subprocess.run(
            [sys.executable, "-m", "critmin.experiments.cli", *COMMAND[1:], "--out", str(tmp)],
            capture_output=True,
            text=True,
            check=True,
        )
        (folder,) = [f for f in tmp.iterdir() if f.is_dir()]
        stdout = run.stdout
    text = DOC.read_text()
    new = re.sub(
        r"(<!-- example:solve -->\n).*?(\n<!-- /example:solve -->)",
        lambda m: m.group(1) + block(folder, stdout) + m.group(2),
        text,
        flags=re.S,
    )
    DOC.write_text(new)
    print(f"rewrote the example in {DOC.relative_to(ROOT)} from {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
