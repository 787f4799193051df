"""A policy reader's walk through both report.html pages, rendered in headless Chromium.

Short runs (ree_2024_short: Jan 2024 - Dec 2025, before the 2030 target year) under a shock, so
the pages must say "no verdict" for 2030, describe every mix and the shock from their configs,
read the price over a stated window beside the no-shock reference, and keep code names out of
headings and table headers. Plus the pieces on their own: labels, numbers against target lines,
instrument sentences for every packaged policy and shock file, the shock window.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from browser import binary, dom, screenshot

from critmin.analysis import comparison, labels, metrics
from critmin.analysis.instrument_text import describe_mix, describe_shock
from critmin.experiments import compare
from critmin.experiments.api import simulate
from critmin.sim.run import config_dir

CODE_NAME = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")  # snake_case: commodity, metric, config keys
MIXES = ["none", "stockpile", "alliance_all"]
needs_chromium = pytest.mark.skipif(
    binary() is None, reason="no chromium binary (apt-get install chromium; .ci/run installs it)"
)


class _Text(HTMLParser):
    """Text of each element of interest: headings, table headers, the mix list, verdicts."""

    WATCH = ("h1", "h2", "h3", "h4", "th", "dt", "dd", "li")

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, list[str]]] = []
        self.found: list[tuple[str, str, str]] = []  # tag, class, text
        self.classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag in self.WATCH:
            self.open.append((tag, []))
            self.classes.append(cls)

    def handle_endtag(self, tag):
        if tag in self.WATCH and self.open and self.open[-1][0] == tag:
            t, parts = self.open.pop()
            self.found.append((t, self.classes.pop(), " ".join("".join(parts).split())))

    def handle_data(self, data):
        for _, parts in self.open:
            parts.append(data)


def texts(html: str, *tags: str) -> list[str]:
    p = _Text()
    p.feed(html)
    return [text for tag, _, text in p.found if tag in tags]


@pytest.fixture(scope="module")
def comparison_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    code = compare.main(
        [
            "--mixes",
            ",".join(MIXES),
            "--shock",
            "magnet_ban_demo",
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--out",
            str(out),
            "scenario=ree_2024_short",
        ]
    )
    assert code == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder / "report.html"


@pytest.fixture(scope="module")
def run_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    r = simulate(["scenario=ree_2024_short", "shock=ree_licensing_2025", "policy=alliance_all"])
    r.write(out, plots=False)
    return out / "report.html", r


def _no_code_names(html: str) -> None:
    for text in texts(html, "h1", "h2", "h3", "h4", "th"):
        assert not CODE_NAME.search(text), f"code name in a heading or table header: {text!r}"


def _mentions_no_verdict_only(html: str) -> None:
    body = " ".join(texts(html, "li", "dd")) + html
    assert "no verdict" in body
    for bad in ("met by none", "NOT MET", "MET."):
        assert bad not in body, f"a 2030 verdict in a run that ends in 2025: {bad!r}"


@needs_chromium
def test_policy_reader_walk_through_the_comparison_page(comparison_page, tmp_path):
    html = dom(comparison_page)
    _no_code_names(html)
    _mentions_no_verdict_only(html)
    # every mix is described in words, from its config, next to its name
    p = _Text()
    p.feed(html)
    items = [(t, text) for t, _, text in p.found if t in ("dt", "dd")]
    named = {text.split(" (")[0]: items[i + 1][1] for i, (t, text) in enumerate(items) if t == "dt"}
    assert sorted(named) == sorted(MIXES)
    assert "No instruments" in named["none"]
    assert "Stockpile of NdFeB magnets" in named["stockpile"]
    assert "Price floor: USD 110,000/t on NdPr oxide" in named["alliance_all"]
    assert named["alliance_all"].count("Price floor") == 1 and "Diversification cap" in named["alliance_all"]
    # the shock, its window and the no-shock reference
    assert "Export halt: China exports no NdFeB magnets, Apr 2025 – Sep 2025." in html
    assert "Prices under the shock are read from Apr 2025 to Dec 2025" in html
    assert "without the shock (no instruments) the same price moves between" in html
    # common random numbers explained; developer overrides only inside the collapsed details
    assert "common random numbers" in html and "not from chance" in html
    before, _, details = html.partition('<details class="tech">')
    assert "scenario.end=" not in before and "experiment.plots=false" not in before
    assert "experiment.plots=false" in details
    png = screenshot(comparison_page, tmp_path / "comparison.png")
    assert png.stat().st_size > 50_000


@needs_chromium
def test_policy_reader_walk_through_the_run_page(run_page, tmp_path):
    page, result = run_page
    html = dom(page)
    _no_code_names(html)
    verdicts = [t for t in texts(html, "li", "th") if "Alliance target" in t]
    assert not any("not met" in v or " met " in v for v in verdicts)
    assert html.count("no verdict") >= 3  # three targets, all in 2030
    assert "the run ends Dec 2025, before the 2030 target year" in html
    # projects: the run's own pipeline, not a stale "none modelled"
    status = result.summary["investment"]["greenfield_by_status"]
    producing = status.get("operating", 0) + status.get("ramping", 0)
    assert producing > 0
    assert f"<b>{producing}</b> new plants" in html
    assert "investment issue" not in html and "none modelled" not in html
    # the instruments and the shock in words
    for sentence in describe_mix(result.manifest["config"]["policy"]):
        assert escape(sentence, quote=False) in html
    assert "Export licensing: China licenses exports of NdFeB alloy and NdFeB magnets" in html
    assert "Export licensing: China licenses exports of Dy/Tb oxide" in html
    assert "at least 26 days to process, then a share of those waiting is decided each month" in html
    assert "None days" not in html
    assert "the shock has no end date, so the window covers the 24 months from its start" in html
    png = screenshot(page, tmp_path / "run.png")
    assert png.stat().st_size > 50_000


def test_reports_without_a_browser_keep_the_same_promises(run_page, comparison_page):
    # the same checks on the HTML as written, so a machine without chromium still tests them
    for page in (run_page[0], comparison_page):
        html = Path(page).read_text()
        _no_code_names(html)
        _mentions_no_verdict_only(html)


def test_shares_are_printed_on_the_same_side_of_every_line():
    assert labels.share(0.5996, [0.6, 0.5]) == "59.96%"
    assert labels.share(0.59999, [0.6]) == "59.999%"
    assert labels.share(0.6, [0.6]) == "60.0%"
    assert labels.share(0.4995, [0.6, 0.5]) == "49.95%"
    assert labels.share(0.1234, [0.6]) == "12.3%"
    assert labels.share(float("nan")) == "–"
    for v in (0.49951, 0.5, 0.59949, 0.59996, 0.600004, 0.61):
        shown = float(labels.share(v, [0.5, 0.6]).rstrip("%")) / 100
        assert (shown < 0.6) == (v < 0.6) and (shown < 0.5) == (v < 0.5)


def test_comparison_headline_says_below_the_line_in_the_same_digits():
    ctx = comparison.Context(
        mixes=["a"],
        seeds=[0],
        shock="none",
        region="G7+",
        targets=[comparison.Target("T60", 0.6, 2030), comparison.Target("T50", 0.5, 2030)],
        horizon="2035-12",
    )
    assert comparison.share_text(0.59962, ctx) == "59.96%"


def test_every_packaged_commodity_and_stage_has_a_plain_label():
    import critmin.data

    for path in Path(critmin.data.__file__).parent.glob("*/commodities.csv"):
        for row in pd.read_csv(path).itertuples():
            assert row.commodity in labels.COMMODITIES, f"{path}: no label for {row.commodity}"
            assert row.stage in labels.STAGES, f"{path}: no label for stage {row.stage}"
    # the rare-earth midstream: metal reduction and strip casting are two stages
    assert labels.check("ndfeb_magnet", "metal") == "NdFeB magnets: metal reduction stage"
    assert labels.check("ndfeb_magnet", "alloy") == "NdFeB magnets: alloy (strip casting) stage"
    assert labels.stage("metal", "co_refined") == "metal & alloy"  # other chains keep the generic name
    assert labels.stage("refining", "ndpr_oxide") == "refining (separation)"
    assert labels.country("CHN") == "China"


@pytest.mark.parametrize("group", ["policy", "shock"])
def test_every_packaged_policy_and_shock_file_is_described_in_words(group):
    describe = describe_mix if group == "policy" else describe_shock
    for path in sorted((config_dir() / group).glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        items = list(cfg.get("instruments") or []) + list(cfg.get("events") or [])
        sentences = describe(cfg)
        assert len(sentences) == max(len(items), 1), path.name
        for s in sentences:
            assert not CODE_NAME.search(s), f"{path.name}: code name in {s!r}"
            assert s.endswith("."), s


def test_instrument_levels_come_from_the_config():
    floor = {"type": "price_floor", "country": "USA", "commodity": "ndpr_oxide"}
    a = describe_mix({"instruments": [{**floor, "floor_usd_per_t": 90000, "start": "2026-01"}]})
    b = describe_mix({"instruments": [{**floor, "floor_usd_per_t": 110000, "end": "2030-01"}]})
    assert "USD 90,000/t" in a[0] and "from Jan 2026, no end date" in a[0]
    assert "USD 110,000/t" in b[0] and "until Dec 2029" in b[0]


def test_shock_window_ends_a_stated_number_of_months_after_the_shock():
    # Apr-Sep 2025 (end is the first month without it): window to Sep 2026
    w = metrics.shock_window([("2025-04", "2025-10")], "2035-12")
    assert (w.start, w.last, w.shock_last, w.cut_at_run_end) == ("2025-04", "2026-09", "2025-09", False)
    # an instrument without an end date: the 24 months from its start
    w = metrics.shock_window([("2025-04", None), ("2025-10", "2025-11")], "2035-12")
    assert (w.last, w.shock_last) == ("2027-03", None)
    assert "no end date" in w.describe()
    # cut at the end of the run
    w = metrics.shock_window([("2025-04", None)], "2025-12")
    assert w.last == "2025-12" and w.cut_at_run_end
    assert metrics.shock_window([], "2025-12") is None


def test_price_in_window_ignores_the_peak_after_the_window():
    months = pd.date_range("2030-01-01", periods=40, freq="MS")
    price = [100.0] * 3 + [150, 180, 120] + [100.0] * 30 + [300, 300, 300, 300]  # late spike
    t = metrics.Tables(
        pd.DataFrame(
            {
                "month": list(months) * 2,
                "commodity": "ndfeb_magnet",
                "region": "WORLD",
                "variable": ["price"] * 40 + ["use"] * 40,
                "value": price + [10.0] * 40,
            }
        ),
        pd.DataFrame(),
        pd.DataFrame(),
        {"USA": "g7"},
        {"ndfeb_magnet": "magnet"},
        ["magnet"],
        settings={"region": "WORLD"},
    )
    w = metrics.shock_window([("2030-04", "2030-07")], "2033-04")  # to Jun 2031
    row = metrics.price_in_window(t, w).iloc[0]
    assert row["high_ratio"] == pytest.approx(1.8) and row["high_month"] == "2030-05"
    assert row["low_ratio"] == pytest.approx(1.0)
