"""State of a run folder and of a sweep, as small files next to the outputs.

- ``DONE`` (JSON) is written last, atomically, when every output of a run is on disk: a folder
  with it is finished and sweeps skip it. It holds the run's id, the id of the run as requested
  (``requested_id``: a world without magnets adapts its metric checks, which changes the hash
  that names the folder), what that id hashes (``config_id``, the input data hashes ``inputs``
  and the ``code`` identity, see :func:`critmin.sim.run.run_identity`), the SHA-256 of the files
  ``critmin collect`` reads (``files``), the seed and how long the simulation and writes took.
  A finished run of the same config whose data or code differ is *stale*; when a sweep redoes
  it, the stale folder's DONE gets ``superseded_by`` (the folder is kept, collect leaves it out).
- ``error.json`` records a failed run: error type, message, traceback, the resolved config, the
  attempt number. It is removed when the run later succeeds.
- ``progress.jsonl`` in a sweep's record folder (``hydra.sweep.dir``) gets one line per
  simulation (done, skipped or failed, and the run folder), appended by whichever process ran
  it: the progress bar counts these lines and ``critmin collect`` can read a sweep from them.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
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


def done_info(folder: Path) -> dict[str, Any] | None:
    """The DONE marker of ``folder`` (None if unfinished or unreadable)."""
    return read_json(folder / DONE)


def _config_id(info: dict[str, Any]) -> str | None:
    # markers written before runs had an identity: their requested_id hashed the config alone
    return info.get("config_id") or (None if "inputs" in info else info.get("requested_id"))


def find_stale(folder: Path, config_id: str, requested_id: str) -> tuple[Path, dict[str, Any]] | None:
    """A finished run of the same config (``config_id``) made with other input data or code than
    ``requested_id`` says, not superseded yet: (its folder, its DONE marker), the newest if several."""
    if not folder.parent.is_dir():
        return None
    prefix = folder.name.rsplit("-", 1)[0]
    found = []
    for done in folder.parent.glob(glob.escape(prefix) + "-*/" + DONE):
        info = read_json(done)
        if (
            info
            and _config_id(info) == config_id
            and info.get("requested_id") != requested_id
            and not info.get("superseded_by")
        ):
            found.append((str(info.get("finished_at", "")), done.parent, info))
    if not found:
        return None
    _, old, info = max(found, key=lambda f: (f[0], str(f[1])))
    return old, info


def _listed(names: list[str], limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def stale_reason(info: dict[str, Any], identity: dict[str, Any], code_version: str = "") -> str:
    """Why a finished run (its DONE marker) no longer matches ``identity``, in a few words."""
    if "inputs" not in info or "code" not in info:
        return "made before runs recorded their input data and code"
    reasons = []
    old, new = info["inputs"], identity["inputs"]
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        reasons.append(f"input data changed ({_listed(changed)})")
    old_code, new_code = info["code"], identity["code"]
    if old_code.get("source_sha256") != new_code.get("source_sha256"):
        versions = (info.get("code_version"), code_version)
        said = f" ({versions[0]} -> {versions[1]})" if all(versions) and versions[0] != versions[1] else ""
        reasons.append(f"code changed{said}")
    libs_old, libs_new = old_code.get("libraries", {}), new_code.get("libraries", {})
    libs = [
        f"{k} {libs_old.get(k, '?')} -> {libs_new.get(k, '?')}"
        for k in sorted(libs_old.keys() | libs_new.keys())
        if libs_old.get(k) != libs_new.get(k)
    ]
    if libs:
        reasons.append(f"libraries changed ({_listed(libs)})")
    return "; ".join(reasons) or "run identity changed"


def mark_superseded(folder: Path, by: Path, reason: str) -> None:
    """Note in a stale run's DONE marker that ``by`` redid it (the folder and its files stay)."""
    info = done_info(folder)
    if info is not None:
        write_json_atomic(
            folder / DONE,
            {**info, "superseded_by": by.name, "superseded_because": reason, "superseded_at": _now()},
        )


def revive(folder: Path) -> bool:
    """A superseded run that matches the current data and code again is current again; returns
    whether it was superseded."""
    info = done_info(folder)
    if not (info and info.get("superseded_by")):
        return False
    for key in ("superseded_by", "superseded_because", "superseded_at"):
        info.pop(key, None)
    write_json_atomic(folder / DONE, info)
    return True


def file_hashes(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of the files ``names`` that exist in ``folder``."""
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names if (folder / n).is_file()}


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


def clear_stale_failures(folder: Path, config_id: str) -> None:
    """Remove the failure records of the same config (``config_id``) made with other data or
    code, beside ``folder``: a new attempt of that config replaces them."""
    if not folder.parent.is_dir():
        return
    prefix = folder.name.rsplit("-", 1)[0]
    for err in folder.parent.glob(glob.escape(prefix) + "-*/" + ERROR):
        info = read_json(err)
        if err.parent != folder and info and (info.get("config_id") or info.get("requested_id")) == config_id:
            clear_failure(err.parent)


def status(folder: Path) -> str:
    """``done`` (DONE marker), ``superseded`` (DONE marker naming the run that redid it, after
    its data or code changed), ``failed`` (error.json) or ``incomplete`` (none of these)."""
    if (folder / DONE).is_file():
        info = done_info(folder)
        return "superseded" if info and info.get("superseded_by") else "done"
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
