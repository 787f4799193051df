"""Progress lines for logs: when stderr is not a terminal (a batch job, ``2> log``, CI) sweeps and
comparisons print a plain line at most every ``every_s`` seconds instead of a progress bar::

    compare: 12/40 runs done, 0 failed, ~35 s left
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DEFAULT_EVERY_S = 10.0


def wants_lines(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is not a terminal: print lines, not a bar."""
    stream = stream or sys.stderr
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def line(
    label: str, finished: int, total: int | None, failed: int, elapsed_s: float, skipped: int = 0
) -> str:
    """``<label>: 12/40 runs done, 0 failed, ~35 s left`` (``done`` counts every finished run:
    done, skipped and failed; the time left assumes the remaining runs take the mean so far)."""
    of = f"/{total}" if total is not None else ""
    parts = [f"{label}: {finished}{of} runs done"]
    if skipped:
        parts.append(f"{skipped} skipped")
    parts.append(f"{failed} failed")
    if total is not None and 0 < finished < total:
        parts.append(f"~{_duration(elapsed_s / finished * (total - finished))} left")
    elif total is not None and finished >= total:
        parts.append(f"{_duration(elapsed_s)} in all")
    return ", ".join(parts)


class ProgressLines:
    """Prints :func:`line` to ``stream`` when :meth:`update` is called and ``every_s`` seconds
    have passed since the last line (0: every call), and once when the last run is in."""

    def __init__(
        self, label: str, total: int | None, every_s: float = DEFAULT_EVERY_S, stream: TextIO | None = None
    ) -> None:
        self.label, self.total, self.every_s = label, total, float(every_s)
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.monotonic()

        self.final_printed = False

    def update(self, finished: int, failed: int, skipped: int = 0, *, force: bool = False) -> None:
        """Print a line if ``every_s`` have passed, at the last run (once), or if ``force``."""
        now = time.monotonic()
        last_run = self.total is not None and finished >= self.total
        if force or (last_run and not self.final_printed) or now - self.last >= self.every_s:
            text = line(self.label, finished, self.total, failed, now - self.t0, skipped)
            print(text, file=self.stream, flush=True)
            self.last = now
            self.final_printed = self.final_printed or last_run
