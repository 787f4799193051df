"""The ``critmin`` command: ``critmin run [hydra overrides]``.

Further subcommands (compare, sweep, sensitivity, replay, exercise) join as their issues land.
"""

from __future__ import annotations

import sys

USAGE = """usage: critmin run [key=value ...] [-m ...]
       critmin trace RUN_DIR [--region DEU] [--commodity ndfeb_magnet] [--year 2030] [--plot f.png]

  run     simulate one configuration and write its run folder
          e.g. critmin run scenario.end=2030-12 shock=magnet_ban_demo seed=3
          (all Hydra options work: --cfg job, --help, -m for multirun)
  trace   where a region's material was mined, refined, alloyed and made into magnets,
          from a finished run folder (critmin trace --help)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        from critmin.experiments.run import hydra_main

        sys.argv = [f"critmin {command}", *rest]
        hydra_main()
        return 0
    if command == "trace":
        from critmin.experiments.trace import main as trace_main

        return trace_main(rest)
    print(f"critmin: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
