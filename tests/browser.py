"""Headless Chromium for report tests: the rendered DOM of a page and a screenshot.

Uses Debian's ``chromium`` (or ``chromium-headless-shell``) if installed; ``.ci/run`` installs it
with apt-get when missing. Tests skip with a clear reason where no binary exists locally.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def binary() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess:
    exe = binary()
    if exe is None:
        raise RuntimeError("no chromium binary")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *extra, Path(page).resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def dom(page: Path) -> str:
    """The DOM after Chromium has rendered the page (serialised HTML)."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 6000) -> Path:
    _run(page, f"--window-size={width},{height}", f"--screenshot={Path(png).resolve()}")
    return png
