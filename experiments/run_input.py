"""``critmin run``'s input checks before Hydra starts, and Hydra's own errors as bad input (exit 2).

Hydra acts on its command line before critmin's code runs: it composes the config (running any
``hydra.callbacks`` a config file sets), and in a sweep creates ``hydra.sweep.dir`` under
``output_root/<experiment.name>``. So :func:`precheck` checks, from the command line alone:

* options that would compose another primary config or unpickle a file are refused;
* every override parses (a malformed one is bad input, not a crash);
* names that become folder names (``experiment.name=../../x``) are plain names;
* every config file on the search path follows :mod:`critmin.sim.config_files`.

:func:`hydra_errors_as_bad_input` turns Hydra's errors (unknown key, unknown group option, bad
value) into one clear message and exit status 2, like every other bad input.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from critmin.sim.config import NAME_KEYS, check_folder_name
from critmin.sim.config_files import REFUSED_OPTIONS, check_config_files
from critmin.sim.world import DataError

BAD_INPUT = 2


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(config folders from --config-dir/-cd, overrides) of a ``critmin run`` command line."""
    from hydra._internal.utils import get_args_parser

    for arg in argv:
        option = arg.split("=", 1)[0]
        if option in REFUSED_OPTIONS:
            raise DataError(
                f"option {option}: critmin run always composes the packaged configs/config.yaml; add "
                "your own scenario, policy or shock files with --config-dir FOLDER"
            )
    args, _ = get_args_parser().parse_known_args(list(argv))
    dirs = [args.config_dir] if args.config_dir else []
    return dirs, list(args.overrides or [])


def _values(override: object) -> list[str]:
    """Every value an override gives its key (each choice of a sweep)."""
    if override.is_sweep_override():  # type: ignore[attr-defined]
        return [str(v) for v in override.sweep_string_iterator()]  # type: ignore[attr-defined]
    return [override.get_value_element_as_str()]  # type: ignore[attr-defined]


def precheck(argv: Sequence[str]) -> None:
    """Check a ``critmin run`` command line before Hydra acts on it; raises DataError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    dirs, overrides = _split(argv)
    parser = OverridesParser.create()
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException as exc:
            raise DataError(f"override {text!r}: {str(exc).splitlines()[0]}") from None
        key = override.key_or_group
        if key in NAME_KEYS and not override.is_delete():
            for value in _values(override):
                check_folder_name(value, key, f"override {text!r}")
    for d in dirs:
        if not Path(d).is_dir():
            raise DataError(f"--config-dir {d}: folder not found")
    check_config_files(overrides, dirs)


def check_writable(root: Path, key: str = "output_root") -> None:
    """The run folder can be created under ``root`` (its nearest existing folder is writable)."""
    root = Path(root).absolute()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if not existing.is_dir() else "is not writable"
        raise DataError(f"config key {key}: {root} cannot be created or written ({existing} {what})")


@contextlib.contextmanager
def hydra_errors_as_bad_input() -> Iterator[None]:
    """Hydra's composition and override errors -> one message on stderr and exit status 2."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exiting 1
    try:
        yield
    except (HydraException, OmegaConfBaseException) as exc:
        lines = [str(exc).strip()]
        if exc.__cause__ is not None and str(exc.__cause__).strip() not in lines[0]:
            lines.append(str(exc.__cause__).strip())
        print("critmin run: bad input: " + "\n".join(lines), file=sys.stderr)
        sys.exit(BAD_INPUT)
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
