"""Settings files of the study commands (``configs/compare/``, ``configs/calibrate/``): one
reader that names the file and the key of every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from critmin.sim.run import config_dir
from critmin.sim.world import DataError


def load_group_settings(group: str, config: str, keys: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The settings file ``config`` (a name in ``configs/<group>/`` or a path to a YAML file)
    with every key of ``keys`` (key -> allowed type or types) present and of its type; returns
    the settings and the file's name for messages."""
    folder = config_dir() / group
    path = Path(config)
    if not path.suffix:
        path = folder / f"{config}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml"))
            raise DataError(f"--config: no configs/{group}/{config}.yaml; expected one of {known}")
    if not path.is_file():
        raise DataError(f"--config: no file {path}")
    source = f"configs/{group}/{path.name}" if path.parent == folder else str(path)
    try:
        settings = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(settings, dict):
        raise DataError(f"{source}: expected a mapping of keys {sorted(keys)}")
    for key, value in settings.items():
        if key not in keys:
            raise DataError(f"{source}: unknown key {key!r}; expected one of {sorted(keys)}")
        if not isinstance(value, keys[key]) or isinstance(value, bool):
            raise DataError(f"{source}: key {key}: expected {type_name(keys[key])}, got {value!r}")
    missing = sorted(set(keys) - set(settings))
    if missing:
        raise DataError(f"{source}: missing keys {missing}")
    return settings, source


def type_name(t: Any) -> str:
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join("null" if x is type(None) else x.__name__ for x in types)
