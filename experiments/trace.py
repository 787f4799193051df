"""``critmin trace RUN_DIR``: where was a region's material mined, refined, made into metal and magnets?

Reads a finished run folder (its parquet files) and prints a table of origin shares per stage;
``--plot FILE.png`` writes the stacked-bar chart. The same query on an in-memory result:
``result.trace("DEU", "ndfeb_magnet", 2030)``.
"""

from __future__ import annotations

import argparse
import sys

from critmin.sim.world import DataError


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
    p.add_argument("--top", type=int, default=8, help="origins shown before 'other'")
    p.add_argument("--plot", default=None, help="write a stacked-bar PNG here")
    p.add_argument("--csv", default=None, help="write the table as CSV here")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from critmin.sim.metrics import trace

    try:
        table = trace(
            args.run_dir,
            args.region,
            args.commodity,
            args.year,
            args.stages,
            args.basis,
            args.scope,
            args.top,
        )
    except DataError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    a = table.attrs
    print(
        f"{a['region']} {a['scope']} of {a['commodity']} in {a['year']} "
        f"({a['total']:,.0f} {a['unit']}), share by {a['basis']} whose stage happened in each origin:"
    )
    print((100 * table).round(1).to_string(float_format=lambda v: f"{v:.1f}%"))
    if args.csv:
        table.to_csv(args.csv)
    if args.plot:
        from critmin.sim.report import trace_plot

        fig = trace_plot(table)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0
