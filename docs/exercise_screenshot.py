"""Regenerate docs/img/exercise.png: the exercise app in headless Chromium, after three months,
a magnet export ban, Japan's stockpile release and three more months (the README's screenshot).

    .venv/bin/python docs/exercise_screenshot.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "exercise.png"


def main() -> None:
    exe = next(p for p in map(shutil.which, ("chromium", "chromium-headless-shell")) if p)
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "exercise", "--port", "0", "--start", "2025-01"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"open (\S+)", proc.stdout.readline()).group(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 2300})
            page = context.new_page()
            page.goto(url)
            page.get_by_role("button", name="Step 3 months").click(timeout=60_000)
            page.get_by_text("(3 played)").wait_for()
            page.get_by_role("button", name="Inject shock").click()
            page.get_by_text(re.compile("China exports no NdFeB")).first.wait_for()
            team = context.new_page()
            team.goto(url.replace("role=facilitator", "role=JPN"))
            team.get_by_role("button", name="Submit response").click(timeout=60_000)
            page.get_by_text(re.compile("held by Japan")).wait_for()
            page.get_by_role("button", name="Step 3 months").click()
            page.get_by_text("(6 played)").wait_for()
            page.get_by_role("button", name="Checkpoint").click()
            page.get_by_text("Branches side by side").wait_for()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
