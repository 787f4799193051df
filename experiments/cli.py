"""The ``critmin`` command and its subcommands (each lives in its own module)."""

from __future__ import annotations

import sys

USAGE = """usage: critmin COMMAND [options]

  run          simulate one configuration and write its run folder (a Hydra app)
               e.g. critmin run scenario.end=2030-12 shock=magnet_ban_demo seed=3
               sweeps: critmin run -m policy=none,price_floor seed='range(0,20)'
               a rerun redoes runs whose data or code changed; --reuse-stale keeps them
               (all Hydra options work: --cfg job, --help, -m for multirun)
               --timeline FILE replays a crisis exercise's timeline (docs/exercise.md)
  exercise     the crisis-exercise web app on 127.0.0.1 (critmin exercise --help)
  compare      instrument mixes x a shock x seeds: comparison.parquet and report.html
               (critmin compare --help)
  collect      gather a sweep's run folders into one Parquet dataset (critmin collect --help)
  sensitivity  Morris screening / Sobol indices of outputs to parameters (critmin sensitivity --help)
  validate     replay every sourced episode and score it fact by fact: scorecard.csv and
               report.html (critmin validate --help)
  calibrate    fit the behavioural parameters to all episodes at once with optuna
               (critmin calibrate --help)
  solve        what would it take? the cheapest instrument mix meeting the 60% target and
               the 50% ambition, robust across seeds and shocks, alone or as a coalition
               (critmin solve --help)
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
    "solve": "solve",
}
# commands whose module lives outside critmin.experiments
ENTRY_POINTS = {"exercise": "critmin.exercise.server"}


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
        if "--timeline" in rest:
            return _run_timeline(rest)
        sys.argv = [f"critmin {command}", *rest]
        hydra_main()
        return 0
    if command in ENTRY_POINTS:
        import importlib

        return int(importlib.import_module(ENTRY_POINTS[command]).main(rest) or 0)
    if command in COMMANDS:
        import importlib

        module = importlib.import_module(f"critmin.experiments.{COMMANDS[command]}")
        return int(module.main(rest) or 0)
    print(f"critmin: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def _run_timeline(rest: list[str]) -> int:
    """``critmin run --timeline FILE [overrides]``: the exercise's world, policy and seed, and
    its decisions as a shock file (written to a temporary config folder, then ``--config-dir``),
    run like any other configuration (critmin.exercise.timeline)."""
    import tempfile
    from pathlib import Path

    from critmin.exercise.timeline import load
    from critmin.experiments.run import hydra_main
    from critmin.experiments.run_input import BAD_INPUT
    from critmin.sim.world import DataError

    i = rest.index("--timeline")
    if i + 1 >= len(rest):
        print("critmin run: bad input: --timeline: expected a timeline file", file=sys.stderr)
        return BAD_INPUT
    path, rest = rest[i + 1], rest[:i] + rest[i + 2 :]
    try:
        timeline = load(path)
    except DataError as exc:
        print(f"critmin run: bad input: {exc}", file=sys.stderr)
        return BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="critmin-timeline-") as tmp:
        folder = timeline.write_config_dir(Path(tmp))
        config_dir = ["--config-dir", str(folder)] if folder is not None else []
        sys.argv = ["critmin run", *config_dir, *timeline.overrides(folder), *rest]
        hydra_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
