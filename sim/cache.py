"""Per-process caches of what does not change between runs of a study.

A comparison, a sweep job or a sensitivity study runs many seeds and mixes on the same world:
the parsed data tables, the compiled network and the 2024 calibration are the same for all of
them. They are built once per process and shared read-only (the network's arrays are frozen, so
a stage that tried to write into one would fail loudly instead of leaking into the next run).

Keys name everything the cached object depends on: data files by path, size and modification
time; networks by their world, start year, supplier limit and stockpile nodes; calibrations by
their network and every input array. Each cache keeps a few recent entries, so memory stays flat
over a long sweep.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np

MAX_ENTRIES = 4
_caches: dict[str, OrderedDict[Hashable, Any]] = {}


def memo[T](namespace: str, key: Hashable, build: Callable[[], T]) -> T:
    """The cached value for ``key`` in ``namespace``, built by ``build()`` on a miss."""
    cache = _caches.setdefault(namespace, OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = build()
    cache[key] = value
    while len(cache) > MAX_ENTRIES:
        cache.popitem(last=False)
    return value


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
            import sys

            if sys.platform.startswith("linux"):
                lib = ctypes.CDLL("libc.so.6")
                lib.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = lib
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
