"""Config files are data: the rules every YAML file Hydra may compose follows, checked before composing.

Hydra lets a config file configure Hydra itself (``# @package _global_`` plus ``hydra.callbacks``
with a ``_target_``), which imports and calls Python on ``critmin run``. Scenario, policy and shock
files are passed between teams, so no such file may do that. :func:`check_config_files` reads
every YAML file on the config search path (the packaged ``configs/`` and any folder added with
``--config-dir`` or ``hydra.searchpath``) and rejects, naming the file:

* a file that is not a YAML mapping (empty, a list, invalid YAML);
* a top-level ``hydra`` key, a ``_target_`` key (or ``()``, logging's factory key) at any depth;
* a ``# @package`` directive other than the file's own group (``_group_``, ``_global_`` and
  ``hydra`` escape it), and defaults-list entries that name a ``hydra`` group or a package (``@``);
* any file inside a ``hydra/`` group folder;
* in ``scenario/``, ``policy/`` and ``shock/``: a ``name`` other than the file's own name (the name
  labels run folders and error messages, so it must say which file was used);
* a ``name`` that is not a plain folder name (see :func:`critmin.sim.config.check_folder_name`);
* in ``scenario/``: a parameter outside its type and bounds, or a key of a parameter block that
  is not a parameter (``configs/parameters.csv``, :func:`critmin.sim.parameters.check_file`).

Only the packaged files that configure Hydra itself are exempt: ``configs/config.yaml`` and
``configs/launcher/*.yaml``. ``critmin run`` also refuses the Hydra options that replace the
primary config or load a pickled one (:data:`REFUSED_OPTIONS`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from critmin.sim import cache
from critmin.sim.config import check_folder_name
from critmin.sim.parameters import check_file
from critmin.sim.schemas import DataError

# groups whose file name is the run's label (run folders, reports, error messages)
NAMED_GROUPS = ("scenario", "policy", "shock")
FORBIDDEN_KEYS = ("_target_", "()")
# Hydra options of `critmin run` that would compose another primary config or unpickle a file
REFUSED_OPTIONS = ("--config-path", "-cp", "--config-name", "-cn", "--experimental-rerun")
_PACKAGE_LINE = re.compile(r"^\s*#\s*@(\S+)\s*(.*)$")


def package_config_dir() -> Path:
    import critmin.configs

    return Path(critmin.configs.__file__).parent


def _trusted(path: Path, root: Path | None = None) -> bool:
    """The packaged files that configure Hydra itself (the primary config and the launchers).
    ``root``: the packaged config folder, resolved (a caller that asks for many files resolves
    it once: each resolve costs ~25 µs)."""
    root = package_config_dir().resolve() if root is None else root
    path = path.resolve()
    return path == root / "config.yaml" or path.parent == root / "launcher"


def _header_package(text: str) -> str | None:
    """The ``# @package`` value of a file's header (Hydra reads comment lines up to the first
    line that is neither blank nor a comment)."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return None
        m = _PACKAGE_LINE.match(line)
        if m and m.group(1) == "package":
            return m.group(2).strip()
    return None


def _package_ok(package: str, group: str) -> bool:
    own = group.replace("/", ".")
    return package in ("_group_", own) or package.startswith(("_group_.", f"{own}."))


def _forbidden_key(node: Any, where: str = "") -> str | None:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key in FORBIDDEN_KEYS:
                return here
            found = _forbidden_key(value, here)
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _forbidden_key(value, f"{where}[{i}]")
            if found:
                return found
    return None


def _defaults_entry_error(entry: Any) -> str | None:
    keys = [entry] if isinstance(entry, str) else list(entry) if isinstance(entry, dict) else []
    for key in keys:
        text = str(key).strip()
        for prefix in ("override ", "optional "):
            text = text.removeprefix(prefix).strip()
        if "@" in text:
            return f"defaults entry {key!r}: a package (@...) is not allowed in a config file"
        if text.lstrip("/").split("/")[0] == "hydra":
            return f"defaults entry {key!r}: config files may not select Hydra's own settings"
    return None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: same rules, faster
# files that passed, as (folder, path, size, modification time): a study composes its configs
# many times
_PASSED: set[tuple[str, str, int, int]] = set()


def check_config_file(path: Path, root: Path) -> None:
    """Check one YAML file of a config folder ``root`` against the rules above."""
    group = path.parent.relative_to(root).as_posix()
    group = "" if group == "." else group
    if group.split("/")[0] == "hydra":
        raise DataError(f"{path}: files in a hydra/ folder configure Hydra itself; not allowed")
    try:
        text = path.read_text()
        data = yaml.load(text, Loader=_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError(f"{path}: invalid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of keys to values (name: ..., ...), got {data!r}")
    try:
        package = _header_package(text)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    if package is not None and not _package_ok(package, group):
        raise DataError(
            f"{path}: '# @package {package}' places the file outside its group {group or '(top)'!r}; "
            "config files may only use '# @package _group_'"
        )
    if "hydra" in data:
        raise DataError(f"{path}: key hydra: config files may not change Hydra's settings")
    found = _forbidden_key(data)
    if found:
        raise DataError(
            f"{path}: key {found}: config files are data; '_target_' (code to run) is not allowed"
        )
    for entry in data.get("defaults") or []:
        err = _defaults_entry_error(entry)
        if err:
            raise DataError(f"{path}: {err}")
    if group in NAMED_GROUPS and data.get("name") != path.stem:
        raise DataError(
            f"{path}: key name: expected {path.stem!r} (the file's own name, which labels the run), "
            f"got {data.get('name')!r}"
        )
    if "name" in data and group:
        check_folder_name(data["name"], "name", str(path))
    if group == "scenario":
        check_file(data, str(path))


def _searchpath_dirs(overrides: Sequence[str]) -> list[Path]:
    """Folders added by a ``hydra.searchpath=[...]`` override (``file://`` or ``pkg://``)."""
    wanted = [o for o in overrides if o.lstrip("+~").startswith("hydra.searchpath")]
    if not wanted:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(wanted)
    except HydraException as exc:
        raise DataError(f"override {wanted[0]!r}: {exc}") from None
    dirs = []
    for o in parsed:
        value = o.value()
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            entry = str(entry)
            scheme, sep, rest = entry.partition("://")
            if not sep:
                scheme, rest = "file", entry
            if scheme == "file":
                dirs.append(Path(rest))
            elif scheme == "pkg":
                try:
                    dirs.append(Path(str(resources.files(rest.replace("/", ".")))))
                except (ModuleNotFoundError, TypeError, ValueError) as exc:
                    raise DataError(f"override hydra.searchpath: {entry!r}: {exc}") from None
            else:
                raise DataError(
                    f"override hydra.searchpath: {entry!r}: expected file://FOLDER or pkg://PACKAGE"
                )
    return dirs


def search_dirs(overrides: Sequence[str] = (), config_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Every folder Hydra may read configs from: the packaged one, ``--config-dir`` folders and
    ``hydra.searchpath`` entries."""
    return [package_config_dir(), *map(Path, config_dirs), *_searchpath_dirs(overrides)]


def check_config_files(
    overrides: Sequence[str] = (),
    config_dirs: Iterable[str | Path] = (),
    *,
    inputs: Callable[[list[Path]], list] | None = None,
) -> None:
    """Check every YAML file Hydra could compose for these overrides (see the module docstring).
    Raises :class:`~critmin.sim.world.DataError` naming the first bad file.

    A set of folders that passed is recorded in the disk cache (:func:`critmin.sim.cache.disk_memo`)
    under the SHA-256 of every file in them and of critmin's source (these rules included), so a
    new process does not parse them again; a failing check is never recorded. ``inputs``: what
    gives the folders' file digests (:func:`critmin.sim.cache.folder_inputs`; load_config passes
    one that reads them once for this check and the composed config's key)."""
    roots = search_dirs(overrides, config_dirs)
    pending = _unchecked(roots)
    if not pending:  # every file passed in this process and is unchanged
        return
    cache.disk_memo(
        "configcheck",
        lambda: cache.disk_key("configcheck", (inputs or cache.folder_inputs)(roots)),
        lambda: _check(pending),
    )
    _PASSED.update(key for _, _, key in pending)


def _unchecked(roots: list[Path]) -> list[tuple[Path, Path, tuple[str, str, int, int]]]:
    """(root, file, stat key) of each file to check that has not passed in this process."""
    out = []
    packaged = package_config_dir().resolve()
    for root in roots:
        if not root.is_dir():
            raise DataError(f"{root}: config folder not found")
        for path in yaml_paths(root):
            if _trusted(path, packaged):
                continue
            st = path.stat()
            key = (str(root), str(path), st.st_size, st.st_mtime_ns)
            if key not in _PASSED:
                out.append((root, path, key))
    return out


def yaml_paths(root: Path, hidden: bool = False) -> list[Path]:
    """Every path under ``root`` whose name ends in ``.yaml`` or ``.yml``, sorted: the paths of
    ``root.rglob("*.yaml")`` and ``root.rglob("*.yml")`` (any kind of entry; symlinked folders
    listed, not entered), without those with a hidden part (a name starting with ".") unless
    ``hidden``. One ``os.walk`` (~0.6 ms for the packaged folder; the two rglobs ~2 ms)."""
    out = []
    for here, dirs, names in os.walk(root):
        for name in (*dirs, *names):
            if name.endswith((".yaml", ".yml")) and (hidden or not name.startswith(".")):
                out.append(Path(here, name))
        if not hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(out)


def _check(pending: list[tuple[Path, Path, tuple[str, str, int, int]]]) -> bool:
    for root, path, _ in pending:
        check_config_file(path, root)
    return True
