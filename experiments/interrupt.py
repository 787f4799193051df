"""Stopping a sweep or a comparison on Ctrl-C (SIGINT) or SIGTERM: no worker and no shared-memory
file left behind, one summary line instead of a traceback, exit status 128 + signal (130, 143).

SIGTERM is turned into the same exception as Ctrl-C (:class:`Interrupted`, a KeyboardInterrupt),
so joblib, Hydra and the caller unwind the same way for both; :func:`cleanup` then stops what
is left: the loky worker pool, a local Ray instance, any other child process, and the
``/dev/shm`` files joblib and loky named after this process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM) raised in the main thread, like Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # the stop signals received (a library may re-raise a plain KeyboardInterrupt)


def _raise(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def _signum(exc: BaseException) -> int:
    return int(getattr(exc, "signum", None) or (_received[-1] if _received else signal.SIGINT))


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` (in the main thread only; elsewhere
    the block runs unchanged)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def keep_sigterm_through_ray_init() -> None:
    """``ray.init`` replaces the SIGTERM handler (Ray's own ends the process without cleanup or
    summary); put ours back after it. For the Ray launcher, called before it starts Ray."""
    import ray

    if getattr(ray.init, "_critmin_keeps_sigterm", False):
        return
    original = ray.init

    @functools.wraps(original)
    def init(*args: object, **kwargs: object) -> object:
        handler = signal.getsignal(signal.SIGTERM)
        try:
            return original(*args, **kwargs)
        finally:
            if handler is _raise:
                with contextlib.suppress(ValueError):  # not the main thread
                    signal.signal(signal.SIGTERM, _raise)

    init._critmin_keeps_sigterm = True  # type: ignore[attr-defined]
    ray.init = init


def signal_name(exc: BaseException) -> str:
    """``Ctrl-C`` or the signal's name (``SIGTERM``)."""
    signum = _signum(exc)
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def exit_code(exc: BaseException) -> int:
    """128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + _signum(exc)


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc; empty where there is none)."""
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _stop_pools() -> None:
    if "joblib" in sys.modules:
        with contextlib.suppress(Exception):
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor().shutdown(wait=False, kill_workers=True)
    if "ray" in sys.modules:
        with contextlib.suppress(Exception):
            import ray

            if ray.is_initialized():
                ray.shutdown()


def _trackers() -> set[int]:
    """Resource-tracker processes (loky's, multiprocessing's): they exit with this process and
    then remove the shared-memory files they track; stopping them early would leak those."""
    pids = set()
    for module in ("joblib.externals.loky.backend.resource_tracker", "multiprocessing.resource_tracker"):
        tracker = getattr(sys.modules.get(module), "_resource_tracker", None)
        if getattr(tracker, "_pid", None):
            pids.add(int(tracker._pid))
    return pids


def _stop_children(grace_s: float) -> None:
    me, keep = os.getpid(), _trackers()
    children = [p for p in _children(me) if p not in keep]
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in children):
        time.sleep(0.05)
    for pid in [p for p in _children(me) if p not in keep] + children:
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid in children:  # reap our own
        with contextlib.suppress(OSError):
            os.waitpid(pid, os.WNOHANG)


def shm_files(pid: int) -> list[Path]:
    """The ``/dev/shm`` entries joblib (memmapping folders) and loky (semaphores) name after ``pid``."""
    if not SHM.is_dir():
        return []
    patterns = [f"joblib_memmapping_folder_{pid}_*", f"sem.loky-{pid}-*", f"loky-{pid}-*"]
    return sorted(p for pattern in patterns for p in SHM.glob(pattern))


def cleanup(grace_s: float = 3.0) -> None:
    """Stop the worker pools and child processes of this process (not the resource trackers,
    which remove the joblib/loky files in /dev/shm when this process exits; without one, remove
    them here). Further SIGINT/SIGTERM are ignored meanwhile (a second Ctrl-C must not
    leave half of it done)."""
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        _stop_pools()
        _stop_children(grace_s)
        if _trackers():  # they remove this process's files when it exits
            return
        for path in shm_files(os.getpid()):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
