"""The crisis-exercise app end to end in headless Chromium (Playwright driving Debian's chromium;
no browser download): the server on loopback, a facilitator and a team in two pages, three months
stepped, an export ban injected, a stockpile release submitted, the price view moving, the
timeline downloaded and `critmin run --timeline` reproducing the exercise's prices."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time

import browser
import numpy as np
import pandas as pd
import pytest

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,  # ~30 s: the server's start, the browser, and a batch replay
    pytest.mark.skipif(browser.binary() is None, reason="no chromium binary (.ci/run installs it)"),
]
TIMEOUT_MS = 60_000


@contextlib.contextmanager
def _serve(folder, *extra: str):
    """`critmin exercise` on a free loopback port, opening Jan 2025; yields its facilitator URL.
    Its log goes to a file (a full pipe would block the server)."""
    cmd = [
        sys.executable,
        "-m",
        "critmin.experiments.cli",
        "exercise",
        "--port",
        "0",
        "--start",
        "2025-01",
        *extra,
    ]
    log = folder / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the URL is printed (or the process ends)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/\S+)", line)
        assert match, f"no URL printed: {line!r}\n{log.read_text()}"
        _wait_for_url(match.group(1))
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture
def server(tmp_path):
    with _serve(tmp_path) as url:
        yield url


def _wait_for_url(url: str, seconds: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _price(page) -> float:
    """The number in the price view's summary line ("…: USD 50,623/t")."""
    text = page.locator(".price-summary").inner_text()
    return float(re.search(r"USD ([\d,]+)/t", text).group(1).replace(",", ""))


def _clock(page, played: int) -> None:
    page.get_by_text(re.compile(rf"\({played} played\)")).wait_for(timeout=TIMEOUT_MS)


def test_an_exercise_in_the_browser_replays_exactly(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from critmin.exercise.controller import Exercise
    from critmin.exercise.timeline import load

    outside: list[str] = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.binary(), args=["--no-sandbox"])
        context = chromium.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
        context.on(
            "request",
            lambda r: (
                None
                if r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
                else outside.append(r.url)
            ),
        )
        facilitator = context.new_page()
        facilitator.goto(server)
        facilitator.get_by_role("button", name="Step 3 months").click(timeout=TIMEOUT_MS)
        _clock(facilitator, 3)

        team = context.new_page()  # Japan's team joins the same exercise
        team.goto(server.replace("role=facilitator", "role=JPN"))
        team.get_by_role("button", name="Submit response").wait_for(timeout=TIMEOUT_MS)
        _clock(team, 3)
        before = _price(team)

        facilitator.get_by_role("button", name="Inject shock").click()  # export ban: CHN magnets, 6 months
        facilitator.get_by_text(re.compile("China .*NdFeB magnets")).first.wait_for(timeout=TIMEOUT_MS)
        team.get_by_text(re.compile("China .*NdFeB magnets")).first.wait_for(
            timeout=TIMEOUT_MS
        )  # seen by the team
        team.get_by_role("button", name="Submit response").click()  # the stockpile release template
        facilitator.get_by_text(re.compile("Stockpile of NdFeB magnets, held by Japan")).wait_for(
            timeout=TIMEOUT_MS
        )
        facilitator.get_by_role("button", name="Step 3 months").click()
        _clock(facilitator, 6)
        _clock(team, 6)
        after = _price(team)
        assert after > 1.1 * before  # the ban lifts the price Japan's buyers pay, release or not

        with facilitator.expect_download(timeout=TIMEOUT_MS) as download:
            facilitator.get_by_text("Download timeline").click()
        saved = tmp_path / "timeline.yaml"
        download.value.save_as(saved)
        chromium.close()
    assert outside == []  # no CDN: every asset came from the local server

    timeline = load(saved)
    assert [(d.month, d.by, d.spec["type"]) for d in timeline.decisions] == [
        ("2025-04", "facilitator", "export_ban"),
        ("2025-04", "JPN", "stockpile"),
    ]
    assert timeline.played_until == "2025-06"
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "run", "--timeline", str(saved)]
    cmd += [f"output_root={tmp_path / 'out'}", "experiment.plots=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (run,) = list((tmp_path / "out" / "default").iterdir())
    batch = pd.read_parquet(run / "timeseries.parquet")
    shown = batch[
        (batch["variable"] == "buyer_price")
        & (batch["commodity"] == "ndfeb_magnet")
        & (batch["region"] == "JPN")
        & (batch["month"] == "2025-06-01")
    ]["value"].item()
    assert round(shown) == after  # the price the team saw, from the batch run
    # and every price of every month played, bit for bit, against the timeline replayed here
    replay = Exercise(timeline)
    t = replay.model.state.t
    mine = replay.model.recorder.timeseries()
    mine = mine[mine["variable"].isin(["price", "buyer_price"])]
    theirs = batch[batch["variable"].isin(["price", "buyer_price"]) & (batch["month"] <= mine["month"].max())]
    key = ["month", "commodity", "region", "variable"]
    a = mine.set_index(key)["value"].sort_index()
    b = theirs.set_index(key)["value"].sort_index()
    assert t == 18 and a.index.equals(b.index) and np.array_equal(a.to_numpy(), b.to_numpy())


def test_an_abandoned_play_loop_stops(tmp_path):
    """Solara culls the kernel of a browser that went away (--cull), which ends its play loop."""
    from playwright.sync_api import sync_playwright

    def played(page) -> int:
        page.get_by_role("button", name="Play").wait_for(timeout=TIMEOUT_MS)
        text = page.get_by_text(re.compile(r"\(\d+ played\)")).first.inner_text()
        return int(re.search(r"\((\d+) played\)", text).group(1))

    with _serve(tmp_path, "--cull", "2s") as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.binary(), args=["--no-sandbox"])
        context = chromium.new_context()
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Play").click(timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Pause").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_timeout(2500)
        context.close()  # the browser goes away while playing
        time.sleep(6)  # the cull timeout, and a month in progress
        context = chromium.new_context()
        page = context.new_page()
        page.goto(url)
        first = played(page)
        time.sleep(3)  # three play intervals
        page.reload()
        assert first >= 1 and played(page) == first  # played, then stopped
        chromium.close()
