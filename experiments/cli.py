"""The ``critmin`` command and its subcommands (each lives in its own module)."""

from __future__ import annotations

import sys

USAGE = """usage: critmin COMMAND [options]

  run          simulate one configuration and write its run folder (a Hydra app)
               e.g. critmin run scenario.end=2030-12 shock=magnet_ban_demo seed=3
               sweeps: critmin run -m policy=none,price_floor seed='range(0,20)'
               a rerun redoes runs whose data or code changed; --reuse-stale keeps them
               (all Hydra options work: --cfg job, --help, -m for multirun)
  compare      instrument mixes x a shock x seeds: comparison.parquet and report.html
               (critmin compare --help)
  collect      gather a sweep's run folders into one Parquet dataset (critmin collect --help)
  sensitivity  Morris screening / Sobol indices of outputs to parameters (critmin sensitivity --help)
  validate     replay every sourced episode and score it fact by fact: scorecard.csv and
               report.html (critmin validate --help)
  calibrate    fit the behavioural parameters to all episodes at once with optuna
               (critmin calibrate --help)
  trace        where a region's material was mined, refined, alloyed and made into magnets,
               from a finished run folder (critmin trace --help)
"""

# command -> module under critmin.experiments with a ``main(argv) -> int``
COMMANDS = {
    "compare": "compare",
    "collect": "collect",
    "sensitivity": "sensitivity",
    "trace": "trace",
    "validate": "validate",
    "calibrate": "calibrate",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        from critmin.experiments.run import hydra_main

        if "--reuse-stale" in rest:  # the Hydra override behind the flag
            rest = [a for a in rest if a != "--reuse-stale"] + ["experiment.reuse_stale=true"]
        sys.argv = [f"critmin {command}", *rest]
        hydra_main()
        return 0
    if command in COMMANDS:
        import importlib

        module = importlib.import_module(f"critmin.experiments.{COMMANDS[command]}")
        return int(module.main(rest) or 0)
    print(f"critmin: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
