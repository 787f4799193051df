"""State of a run folder and of a sweep, as small files next to the outputs.

- ``DONE`` (JSON) is written last, atomically, when every output of a run is on disk: a folder
  with it is finished and sweeps skip it. It holds the run's id, the id of the config as
  requested (``requested_id``: a world without magnets adapts its metric checks, which changes
  the hash that names the folder), the seed and how long the simulation and the writes took.
- ``error.json`` records a failed run: error type, message, traceback, the resolved config, the
  attempt number. It is removed when the run later succeeds.
- ``progress.jsonl`` in a sweep's record folder (``hydra.sweep.dir``) gets one line per
  simulation (done, skipped or failed, and the run folder), appended by whichever process ran
  it: the progress bar counts these lines and ``critmin collect`` can read a sweep from them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

DONE = "DONE"
ERROR = "error.json"
PROGRESS = "progress.jsonl"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if it is missing or unreadable (being written)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def mark_done(folder: Path, **info: Any) -> None:
    """Mark ``folder`` finished (call after every other file is written)."""
    write_json_atomic(folder / DONE, {"status": "done", "finished_at": _now(), **info})


def unmark_done(folder: Path) -> None:
    """Remove the DONE marker before a run's files are rewritten."""
    (folder / DONE).unlink(missing_ok=True)


def find_finished(folder: Path, requested_id: str) -> Path | None:
    """The finished run folder for a config: ``folder`` itself (named by the requested config's
    hash), or a sibling with the same name prefix whose DONE marker names ``requested_id``."""
    if (folder / DONE).is_file():
        return folder
    if not folder.parent.is_dir():
        return None
    prefix = folder.name.rsplit("-", 1)[0]
    for done in folder.parent.glob(glob.escape(prefix) + "-*/" + DONE):
        info = read_json(done)
        if info and info.get("requested_id") == requested_id:
            return done.parent
    return None


def record_failure(folder: Path, exc: BaseException, config: dict[str, Any], **info: Any) -> dict[str, Any]:
    """Write ``error.json`` for a failed run; returns what was written."""
    previous = read_json(folder / ERROR) or {}
    data = {
        "status": "failed",
        "error_type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "attempt": int(previous.get("attempt", 0)) + 1,
        "failed_at": _now(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **info,
        "config": config,
    }
    write_json_atomic(folder / ERROR, data)
    return data


def clear_failure(folder: Path) -> None:
    """Remove a stale ``error.json``; remove ``folder`` too if nothing else is in it."""
    (folder / ERROR).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # only succeeds when empty (a failure under the requested hash)
        folder.rmdir()


def status(folder: Path) -> str:
    """``done`` (DONE marker), ``failed`` (error.json) or ``incomplete`` (neither)."""
    if (folder / DONE).is_file():
        return "done"
    if (folder / ERROR).is_file():
        return "failed"
    return "incomplete"


def append_progress(record: Path, **line: Any) -> None:
    """Append one JSON line to ``record/progress.jsonl`` (one ``write`` with O_APPEND, so lines
    from concurrent processes on a local file system do not interleave)."""
    record.mkdir(parents=True, exist_ok=True)
    data = (json.dumps({"time": _now(), **line}, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(record / PROGRESS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_progress(record: Path) -> list[dict[str, Any]]:
    """The lines of ``record/progress.jsonl`` (complete lines only)."""
    path = record / PROGRESS
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # a line being written
    return out
