"""Composing a run config: the packaged ``configs/`` folder with Hydra overrides.

Every config file on the search path is checked before Hydra reads it (config files are
data: :mod:`critmin.sim.config_files`); overrides may not reach Hydra's own settings.
"""

from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from critmin.sim.config import RunConfig
from critmin.sim.config_files import check_config_files
from critmin.sim.world import DataError

ConfigStore.instance().store(name="base_config", node=RunConfig)
# Hydra's key for code to run, as a whole word (``cover_target_months`` is a parameter)
_TARGET = re.compile(r"(?<![A-Za-z0-9])_target_(?![A-Za-z0-9])")


def config_dir() -> Path:
    import critmin.configs

    return Path(critmin.configs.__file__).parent


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose ``configs/config.yaml`` with Hydra overrides (``key=value`` strings). Every config
    file on the search path is checked first (:mod:`critmin.sim.config_files`)."""
    overrides = [str(o) for o in overrides or []]
    _check_overrides(overrides)
    check_config_files(overrides)
    return compose_checked(overrides)


def _check_overrides(overrides: list[str]) -> None:
    for o in overrides:
        key = o.lstrip("+~").partition("=")[0]
        if (key.startswith(("hydra.", "hydra/")) and key != "hydra.searchpath") or _TARGET.search(o):
            raise DataError(f"override {o!r}: overrides may not change Hydra's settings or name code to run")


def compose_checked(overrides: list[str]) -> DictConfig:
    """:func:`load_config` for overrides whose config files were checked already (``critmin
    run`` checks them before Hydra starts)."""
    overrides = [str(o) for o in overrides or []]
    _check_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides or []))
    except Exception as exc:  # Hydra/OmegaConf raise several types; name the config in one
        raise DataError(f"configs/ (overrides {list(overrides or [])}): {exc}") from exc
