"""``critmin trace RUN_DIR``: where was a region's material mined, refined, made into metal and magnets?

Reads a finished run folder (its parquet files) and prints a table of origin shares per stage;
``--plot FILE.png`` writes the stacked-bar chart. The same query on an in-memory result:
``result.trace("DEU", "ndfeb_magnet", 2030)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from critmin.sim.world import DataError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def check_run_files(run_dir: Path) -> None:
    """Every table and record of the run folder can be read (a truncated or corrupt file is
    named, instead of a parser traceback)."""
    import pyarrow.parquet as pq
    import yaml

    for path in sorted(Path(run_dir).glob("*.parquet")):
        try:
            pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise DataError(f"{path}: cannot be read as Parquet (truncated or damaged?): {exc}") from None
    readers = {"summary.json": json.loads, "manifest.yaml": yaml.safe_load}
    for name, read in readers.items():
        path = Path(run_dir) / name
        if path.is_file():
            try:
                read(path.read_text())
            except (ValueError, yaml.YAMLError, OSError) as exc:
                raise DataError(f"{path}: cannot be read: {exc}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin trace",
        description="Origin of a region's consumption (or imports) of a commodity, stage by stage.",
    )
    p.add_argument("run_dir", help="a finished run folder (critmin run writes one)")
    p.add_argument("--region", default="G7+", help="country code, bloc, or metrics group (default G7+)")
    p.add_argument("--commodity", default="ndfeb_magnet")
    p.add_argument("--year", type=int, default=None, help="default: the run's last year")
    p.add_argument("--stages", nargs="+", default=None, help="default: every stage up to the commodity's")
    p.add_argument("--basis", default="mass", choices=["mass", "value"])
    p.add_argument("--scope", default="consumption", choices=["consumption", "imports"])
    p.add_argument(
        "--by",
        default="location",
        choices=["location", "owner"],
        help="location: where each stage happened (default); owner: whose plant did it (its owner's country)",
    )
    p.add_argument("--top", type=_positive, default=8, help="origins shown before 'other' (>= 1)")
    p.add_argument("--plot", default=None, help="write a stacked-bar PNG here")
    p.add_argument("--csv", default=None, help="write the table as CSV here")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from critmin.analysis.metrics import trace

    try:
        check_run_files(Path(args.run_dir))
        table = trace(
            args.run_dir,
            args.region,
            args.commodity,
            args.year,
            args.stages,
            args.basis,
            args.scope,
            args.top,
            args.by,
        )
    except DataError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    a = table.attrs
    print(
        f"{a['region']} {a['scope']} of {a['commodity']} in {a['year']} "
        f"({a['total']:,.0f} {a['unit']}), share by {a['basis']} whose stage "
        + (
            "happened in each origin:"
            if a["control"] == "location"
            else "was done by plants owned from each country:"
        )
    )
    print((100 * table).round(1).to_string(float_format=lambda v: f"{v:.1f}%"))
    if args.csv:
        table.to_csv(args.csv)
    if args.plot:
        from critmin.analysis.report import trace_plot

        fig = trace_plot(table)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0
