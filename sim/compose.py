"""Composing a run config: the packaged ``configs/`` folder with Hydra overrides.

Every config file on the search path is checked before Hydra reads it (config files are
data: :mod:`critmin.sim.config_files`); overrides may not reach Hydra's own settings.
"""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from critmin.sim import cache
from critmin.sim.config import RunConfig
from critmin.sim.config_files import check_config_files, search_dirs, yaml_paths
from critmin.sim.world import DataError

ConfigStore.instance().store(name="base_config", node=RunConfig)
# Hydra's key for code to run, as a whole word (``cover_target_months`` is a parameter)
_TARGET = re.compile(r"(?<![A-Za-z0-9])_target_(?![A-Za-z0-9])")


def config_dir() -> Path:
    import critmin.configs

    return Path(critmin.configs.__file__).parent


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose ``configs/config.yaml`` with Hydra overrides (``key=value`` strings). Every config
    file on the search path is checked first (:mod:`critmin.sim.config_files`).

    Composed once per process for the same overrides and config files (Hydra takes ~0.08 s, a
    copy ~1.5 ms: a pickle round trip, the same tree and flags as ``copy.deepcopy`` at 40% of
    its cost; the disk cache stores the composed config as a pickle already); a plain ``seed=N`` among them is set on the copy, so the seeds of a study
    compose once. Each call returns its own copy (callers may change it)."""
    overrides = [str(o) for o in overrides or []]
    _check_overrides(overrides)
    inputs = _InputsOnce()  # the folders' file digests, read once for both keys below
    check_config_files(overrides, inputs=inputs)
    seeds = [o for o in overrides if _SEED.match(o)]
    base = [o for o in overrides if not _SEED.match(o)] if len(seeds) == 1 else overrides
    key = (tuple(base), _files_key(base))
    if key not in _COMPOSED:
        _COMPOSED[key] = compose_checked(base, inputs=inputs)
        while len(_COMPOSED) > 8:
            _COMPOSED.popitem(last=False)
    _COMPOSED.move_to_end(key)
    cfg = pickle.loads(pickle.dumps(_COMPOSED[key], protocol=pickle.HIGHEST_PROTOCOL))
    if base is not overrides:
        cfg.seed = int(_SEED.match(seeds[0]).group(1))
    return cfg


# a seed override that composing and setting give alike (an int literal, no prefix)
_SEED = re.compile(r"^seed=(0|-?[1-9][0-9]*)$")
_COMPOSED: OrderedDict[tuple, DictConfig] = OrderedDict()


class _InputsOnce:
    """:func:`critmin.sim.cache.folder_inputs` read at most once per folder list within one
    :func:`load_config` call: the file check's key and the composed config's key hash the same
    folders (search_dirs of the same overrides) a few ms apart; read twice they cost ~1.3 ms
    more, and a file edited between the two reads races either way."""

    def __init__(self) -> None:
        self._read: dict[tuple[str, ...], list] = {}

    def __call__(self, folders: list[Path]) -> list:
        key = tuple(str(f) for f in folders)
        if key not in self._read:
            self._read[key] = cache.folder_inputs(folders)
        return self._read[key]


def _files_key(overrides: list[str]) -> tuple:
    """Path, size and modification time of every config file composing may read."""
    out = []
    for root in search_dirs(overrides):
        files = yaml_paths(Path(root), hidden=True)
        out += [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return tuple(out)


def _check_overrides(overrides: list[str]) -> None:
    for o in overrides:
        key = o.lstrip("+~").partition("=")[0]
        if (key.startswith(("hydra.", "hydra/")) and key != "hydra.searchpath") or _TARGET.search(o):
            raise DataError(f"override {o!r}: overrides may not change Hydra's settings or name code to run")


def compose_checked(
    overrides: list[str], *, inputs: Callable[[list[Path]], list] | None = None
) -> DictConfig:
    """:func:`load_config` for overrides whose config files were checked already (``critmin
    run`` checks them before Hydra starts).

    Kept in the disk cache (:func:`critmin.sim.cache.disk_memo`) under the overrides, the
    SHA-256 of every file on the config search path, the installed Hydra plugins' source,
    critmin's source (the structured config included) and the Hydra and OmegaConf versions: a
    new process loads the composed config in ~1 ms instead of composing it (~0.1 s the first
    time). A config that fails to compose is never stored. ``inputs``: what gives the config
    folders' file digests (:func:`load_config` passes the ones its file check read)."""
    overrides = [str(o) for o in overrides or []]
    _check_overrides(overrides)
    return cache.disk_memo(
        "config",
        lambda: cache.disk_key(
            "config",
            overrides,
            (inputs or cache.folder_inputs)(search_dirs(overrides)),
            cache.hydra_plugins_digest(),
        ),
        lambda: _compose(overrides),
    )


def _compose(overrides: list[str]) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides or []))
    except Exception as exc:  # Hydra/OmegaConf raise several types; name the config in one
        raise DataError(f"configs/ (overrides {list(overrides or [])}): {exc}") from exc
