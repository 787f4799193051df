"""Per-process caches of what does not change between runs of a study.

A comparison, a sweep job or a sensitivity study runs many seeds and mixes on the same world:
the parsed data tables, the compiled network and the 2024 calibration are the same for all of
them. They are built once per process and shared read-only (the network's arrays are frozen, so
a stage that tried to write into one would fail loudly instead of leaking into the next run).

Keys name everything the cached object depends on: data files by path, size and modification
time; networks by their world, start year, supplier limit and stockpile nodes; calibrations by
their network and every input array. Each cache keeps a few recent entries, so memory stays flat
over a long sweep.

Across processes (:func:`disk_memo`): the same three objects are also kept on disk, so that the
first run of a new process (a ``critmin run``, a notebook, a sweep worker) loads them in a few
milliseconds instead of building them (~0.15 s for the REE world, more for the full one). An
entry's key is a SHA-256 of everything the object follows from, so it cannot go stale: the
content of its inputs (every data file, or the world or network it is built from), the
source of every module of the packages that build it (:data:`SOURCE_PACKAGES`, each ``*.py``
file's content), and the versions of Python and of the libraries whose objects it holds. A
world and a network are stored with their content digest (computed once, when built): a model
that has just loaded them, before anyone could change them, keys what it builds from them by
those digests; one from the per-process cache (which may have been edited in place) is hashed
again. Entries
live in ``$CRITMIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/critmin``, else ``~/.cache/critmin``;
``CRITMIN_CACHE=off`` turns the disk cache off (the test suite does, except the tests of the
cache). Files are written atomically (a temporary file renamed into place); one that cannot be
read is rebuilt and replaced; each namespace keeps its :data:`DISK_ENTRIES` most recent files.
Entries are pickles, which run code when loaded: an entry is read only from a folder the user
owns that no one else can write, and only when the user owns the file (:func:`trusted`); anything
else is ignored with one warning and the object is built. Entries are written mode 0600.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MAX_ENTRIES = 4
_caches: dict[str, OrderedDict[Hashable, Any]] = {}


def memo[T](namespace: str, key: Hashable, build: Callable[[], T]) -> T:
    """The cached value for ``key`` in ``namespace``, built by ``build()`` on a miss."""
    return memo_built(namespace, key, build)[0]


def memo_built[T](namespace: str, key: Hashable, build: Callable[[], T]) -> tuple[T, bool]:
    """:func:`memo`, and whether this call built the value (a value from the per-process cache
    is shared and may have been changed in place since it was built)."""
    cache = _caches.setdefault(namespace, OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key], False
    value = build()
    cache[key] = value
    while len(cache) > MAX_ENTRIES:
        cache.popitem(last=False)
    return value, True


def files_key(folders: list[Path]) -> tuple:
    """Identity of the data folders' files as they are now: path, size, modification time."""
    out = []
    for folder in folders:
        folder = Path(folder)
        files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        out.append((str(folder.resolve()), tuple((f.name, *_stat(f)) for f in files)))
    return tuple(out)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def array_key(*arrays: np.ndarray) -> str:
    """Digest of arrays' contents (for keys that depend on computed inputs)."""
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def freeze(obj: Any) -> Any:
    """Make every NumPy array attribute of ``obj`` read-only; returns ``obj``."""
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return obj


_libc: Any = None


def release_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc ``malloc_trim``; elsewhere a
    no-op). A run frees tens of MB of tables and temporaries that the allocator would otherwise
    keep, so the next phase (Parquet, plots, the report) starts lower and the peak of a
    ``critmin run`` is that much lower. Takes a few ms."""
    global _libc
    if _libc is None:
        _libc = False
        try:
            import ctypes

            if sys.platform.startswith("linux"):
                lib = ctypes.CDLL("libc.so.6")
                lib.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = lib
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
    # Arrow's allocator: the system one under ``import critmin`` (ARROW_DEFAULT_MEMORY_POOL,
    # which malloc_trim covers); mimalloc or jemalloc, the wheels' default, when pyarrow was
    # loaded first or the variable set otherwise, and those keep what writing Parquet used
    # (~27 MiB after the flows table) out of malloc_trim's reach. Only asked when loaded
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()


# ---------------------------------------------------------------------- on disk, across processes
# packages whose source builds the cached objects (the world, network and calibration builders
# import only these): any change to any of their modules changes every key
SOURCE_PACKAGES = ("critmin", "critmin.sim", "critmin.agents", "critmin.policies")
# libraries whose objects (arrays, tables, graphs) are pickled, or whose arithmetic builds them
LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "networkx", "hydra", "omegaconf", "yaml")
DISK_ENTRIES = 16
FORMAT = 1  # bump when what is stored changes shape
_OFF = ("0", "off", "false", "no")


def disk_dir() -> Path | None:
    """The folder of the disk cache, or None when ``CRITMIN_CACHE`` turns it off."""
    if os.environ.get("CRITMIN_CACHE", "").strip().lower() in _OFF:
        return None
    if os.environ.get("CRITMIN_CACHE_DIR"):
        return Path(os.environ["CRITMIN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "critmin"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (``missing`` when absent). Read each time (a world's files
    and the builders' source together take ~2 ms): a cache by modification time could miss an
    edit of the same size within one tick of a coarse file-system clock."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def source_folders() -> list[Path]:
    """The folders of :data:`SOURCE_PACKAGES` (found, not imported)."""
    import importlib.util

    out = []
    for name in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(name)
        out += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return out


def folder_inputs(folders: Iterable[Path]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(folder, [(relative path, SHA-256)]) of every file under each folder, hidden folders and
    files and ``__pycache__`` left out (config folders: their YAML files and the parameter table)."""
    out = []
    for folder in map(Path, folders):
        files = []
        for here, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            rel = os.path.relpath(here, folder)
            for name in names:
                if not name.startswith("."):
                    path = os.path.join(here, name)
                    files.append((name if rel == "." else f"{rel}/{name}", file_digest(Path(path))))
        out.append((str(folder.resolve()), sorted(files)))
    return out


def hydra_plugins_digest() -> str:
    """SHA-256 of the source of every installed Hydra plugin (``hydra_plugins.*``): a plugin
    can add config sources or defaults that composing reads."""
    import importlib.util

    spec = importlib.util.find_spec("hydra_plugins")
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return content_digest(folder_inputs(folders))


def source_digest(folders: Iterable[Path] | None = None) -> str:
    """One SHA-256 over the name and content of every ``*.py`` file directly in ``folders``.
    Without ``folders``: those of :data:`SOURCE_PACKAGES`, read once per process, at first use
    (after ``import critmin``), so the digest is that of the code this process runs even if a
    file is edited while it runs."""
    if folders is None:
        return _process_source_digest()
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            h.update(f"{Path(folder).name}/{path.name}\0{file_digest(path)}\0".encode())
    return h.hexdigest()


@functools.cache
def _process_source_digest() -> str:
    return source_digest(source_folders())


@functools.cache
def library_versions() -> tuple[tuple[str, str], ...]:
    """Python's version and each of :data:`LIBRARIES`' (``absent`` when not installed)."""
    import importlib
    import platform

    out = [("python", platform.python_version()), ("pickle", str(pickle.HIGHEST_PROTOCOL))]
    for lib in LIBRARIES:
        try:  # already imported by critmin: its __version__ costs nothing (metadata ~2 ms each)
            out.append((lib, str(importlib.import_module(lib).__version__)))
        except ImportError:
            out.append((lib, "absent"))
    return tuple(out)


def content_digest(*objects: Any) -> str:
    """SHA-256 of objects' content, canonical across processes (for keys that depend on built
    inputs: a world, a network, arrays, tables). Every value is hashed with its type: arrays by
    dtype, shape and bytes; tables by columns, dtypes, index and values; dicts in their order
    (which the builders follow); sets sorted; other objects by class and attributes. Equal
    digests mean equal content, so a key built from it cannot go stale."""
    h = hashlib.sha256()
    for obj in objects:
        _feed(h, obj)
    return h.hexdigest()


_PLAIN = (str, int, float, bool, complex, type(None))


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, _PLAIN):
        h.update(f"{type(obj).__name__}:{obj!r}\x00".encode())
    elif isinstance(obj, np.generic):
        h.update(f"np:{obj.dtype.str}:{obj.item()!r}\x00".encode())
    elif isinstance(obj, np.ndarray):
        h.update(f"nd:{obj.dtype.str}:{obj.shape}\x00".encode())
        if obj.dtype.hasobject:
            _feed_values(h, obj.ravel())
        else:
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, pd.DataFrame):
        h.update(f"df:{obj.shape}\x00".encode())
        _feed(h, [str(c) for c in obj.columns])
        _feed(h, obj.index)
        for _, column in obj.items():  # each column in order (``.iloc[:, i]`` costs ~4x more)
            _feed(h, column)
        _feed(h, dict(obj.attrs))
    elif isinstance(obj, pd.Series | pd.Index):
        # the dtype's repr: a categorical's categories and their order, a time zone
        h.update(f"{type(obj).__name__}:{obj.dtype!r}:{len(obj)}:{obj.name!r}\x00".encode())
        if isinstance(obj, pd.RangeIndex):
            h.update(f"{obj.start}:{obj.stop}:{obj.step}\x00".encode())
        else:
            _feed(h, obj.to_numpy())
    elif isinstance(obj, dict):
        h.update(f"dict:{len(obj)}\x00".encode())
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, list | tuple):
        h.update(f"{type(obj).__name__}:{len(obj)}\x00".encode())
        if all(type(v) is str for v in obj):
            _feed_values(h, obj)
        else:
            for value in obj:
                _feed(h, value)
    elif isinstance(obj, set | frozenset):
        h.update(f"set:{len(obj)}\x00".encode())
        for part in sorted(content_digest(v) for v in obj):
            h.update(part.encode())
    elif hasattr(obj, "__dict__"):
        h.update(f"obj:{type(obj).__module__}.{type(obj).__qualname__}\x00".encode())
        _feed(h, vars(obj))
    else:  # slots or an extension type: its pickle (a miss when that is not canonical, never stale)
        h.update(f"pickle:{type(obj).__qualname__}\x00".encode())
        h.update(pickle.dumps(obj, protocol=5))


def _feed_values(h: Any, values: Any) -> None:
    """A sequence of values; strings at C speed (lengths, then the text), others one by one."""
    if all(type(v) is str for v in values):
        h.update(f"strs:{len(values)}\x00".encode())
        h.update(np.array([len(v) for v in values], dtype=np.int64).tobytes())
        h.update("".join(values).encode("utf-8", "surrogatepass"))
    else:
        for value in values:
            _feed(h, value)


def disk_key(namespace: str, *parts: Any, folders: Iterable[Path] | None = None) -> str:
    """The key of an entry: its namespace and inputs (``parts``, as text), the builders' source
    (:func:`source_digest`) and the library versions."""
    text = repr((FORMAT, namespace, parts, source_digest(folders), library_versions()))
    return hashlib.sha256(text.encode()).hexdigest()


def disk_memo[T](
    namespace: str,
    key: Callable[[], str],
    build: Callable[[], T],
    *,
    after_load: Callable[[T], T] | None = None,
) -> T:
    """The value stored on disk under ``key()`` (a :func:`disk_key`, computed only when the
    cache is on), else ``build()``, stored.
    ``after_load`` prepares a loaded value (e.g. :func:`freeze` its arrays again). Without a
    cache folder (``CRITMIN_CACHE=off``), or when the folder cannot be written, it just builds."""
    folder = disk_dir()
    if folder is None or not trusted(folder):
        return build()
    path = folder / f"{namespace}-{key()}.pkl"
    try:
        if path.stat().st_uid != os.getuid():
            raise PermissionError(path)
        with path.open("rb") as f:
            value = pickle.load(f)
    except Exception:  # absent, damaged or foreign: built and (re)written below
        pass
    else:
        _touch(path)  # the newest entries are kept
        return after_load(value) if after_load else value
    value = build()
    _store(folder, path, value, namespace)
    return value


_UNWRITABLE: set[str] = set()
_UNTRUSTED: set[str] = set()


def trusted(folder: Path) -> bool:
    """Whether entries may be loaded from ``folder``: absent (it will be made, the user's own), or
    a folder the user owns that neither group nor others can write. Said once per folder when not."""
    try:
        st = folder.stat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if st.st_uid == os.getuid() and not st.st_mode & 0o022:
        return True
    if str(folder) not in _UNTRUSTED:
        _UNTRUSTED.add(str(folder))
        logging.getLogger("critmin").warning(
            "disk cache %s ignored: it must be a folder you own that others cannot write "
            "(entries are pickles); set CRITMIN_CACHE_DIR or CRITMIN_CACHE=off",
            folder,
        )
    return False


def _store(folder: Path, path: Path, value: Any, namespace: str) -> None:
    """Write atomically (a temporary file in the same folder, renamed into place), then keep the
    namespace's newest :data:`DISK_ENTRIES` files. A cache that cannot be written is skipped."""
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=folder, prefix=f".{namespace}-", suffix=".tmp", delete=False
        ) as f:
            tmp = f.name
            pickle.dump(value, f, protocol=5)
        os.replace(tmp, path)
        tmp = None
        entries = sorted(folder.glob(f"{namespace}-*.pkl"), key=_mtime, reverse=True)
        for old in entries[DISK_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        if str(folder) not in _UNWRITABLE:  # said once per folder and process
            _UNWRITABLE.add(str(folder))
            logging.getLogger("critmin").warning(
                "disk cache %s not written (%s); set CRITMIN_CACHE_DIR or CRITMIN_CACHE=off", folder, exc
            )
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)
