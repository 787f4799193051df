"""Write the measured tables of docs/worlds.md from runs of the model (never typed by hand).

    python docs/generate_worlds.py            # both blocks
    python docs/generate_worlds.py ree_2009   # one

Replaces what lies between ``<!-- generated:worlds-<name> -->`` and ``<!-- /generated:worlds-<name> -->``.
Every run is seed 0 without demand noise, paired with its no-shock twin on the same world.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from critmin.experiments.api import simulate

DOC = Path(__file__).with_name("worlds.md")
QUIET = ["scenario.demand.noise_sd=0", "experiment.metrics.report=false"]
OXIDES = {
    "la_oxide": "La oxide",
    "ce_oxide": "Ce oxide",
    "ndpr_oxide": "NdPr oxide",
    "dytb_oxide": "Dy/Tb oxide",
}
TIMELINES = [
    ("ree_oct2025_package", "ree_2026"),
    ("ree_customer_licences_2026", "ree_2026"),
    ("ree_entity_list_2026", "ree_2026"),
    ("ree_controls_2026", "ree_2026"),
]
OUTSIDE = ["JPN", "DEU", "USA", "KOR"]


def _series(ts: pd.DataFrame, variable: str, commodity: str, region: str) -> pd.Series:
    sel = ts[(ts["variable"] == variable) & (ts["commodity"] == commodity) & (ts["region"] == region)]
    return sel.set_index("month")["value"]


def _run(overrides: list[str]) -> pd.DataFrame:
    return simulate([*overrides, *QUIET]).timeseries


def _plain(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2f}"


def block_2009() -> str:
    """Japan's buyers' price over China's sellers' price per oxide, yearly means, no shock -> the
    2009-2015 controls."""
    runs = {s: _run(["scenario=ree_2009", f"shock={s}"]) for s in ("none", "ree_quotas_2010")}

    def wedge(ts: pd.DataFrame, commodity: str) -> pd.Series:
        ratio = _series(ts, "buyer_price", commodity, "JPN") / _series(ts, "price", commodity, "CHN")
        return ratio.groupby(ratio.index.year).mean()

    years = sorted(runs["none"]["month"].dt.year.unique())
    lines = ["| | " + " | ".join(map(str, years)) + " |", "|---" * (len(years) + 1) + "|"]
    for commodity, label in OXIDES.items():
        a, b = wedge(runs["none"], commodity), wedge(runs["ree_quotas_2010"], commodity)
        cells = [f"{_plain(a.get(y))} → {_plain(b.get(y))}" for y in years]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(hit: pd.Series, twin: pd.Series) -> pd.Series:
    both = pd.concat([hit, twin], axis=1, keys=["hit", "twin"], sort=True).fillna(0.0)
    return (both["hit"] / both["twin"]).where(both["twin"] > 0)


def _outside_peak(ts: pd.DataFrame, twin: pd.DataFrame, commodity: str) -> pd.Series:
    """Per month, the highest ratio to the no-shock run of a buyer price outside China."""
    ratios = [
        _ratio(_series(ts, "buyer_price", commodity, c), _series(twin, "buyer_price", commodity, c))
        for c in OUTSIDE
    ]
    return pd.concat(ratios, axis=1, sort=True).max(axis=1)


def _fmt(value: float) -> str:
    return "–" if pd.isna(value) else f"×{value:.2f}"


def block_2026() -> str:
    """Per 2025-26 timeline and branch, against the no-shock run of its world to Dec 2028: the
    peak ratio of outside-China magnet and Dy/Tb buyers' prices, China's magnet price in the
    month of the magnet peak, the lowest ratio of China's Dy/Tb exports and of US Dy/Tb imports."""
    end = "scenario.end=2028-12"
    twin = _run(["scenario=ree_2026", "shock=none", end])
    head = (
        "| shock file | outside magnet buyers, peak | China's magnet price then | outside Dy/Tb buyers, "
        "peak | China's Dy/Tb exports, lowest | US Dy/Tb imports, lowest |"
    )
    lines = [head, "|---|---|---|---|---|---|"]
    for stem, world in TIMELINES:
        for branch in ("lapse", "extended", "stays", "lifted"):
            name = f"{stem}_{branch}"
            if not (DOC.parent.parent / "configs" / "shock" / f"{name}.yaml").is_file():
                continue
            ts = _run([f"scenario={world}", f"shock={name}", end])
            magnets = _outside_peak(ts, twin, "ndfeb_magnet")
            dytb = _outside_peak(ts, twin, "dytb_oxide")
            china = _ratio(
                _series(ts, "price", "ndfeb_magnet", "CHN"), _series(twin, "price", "ndfeb_magnet", "CHN")
            )
            exports = _ratio(
                _series(ts, "exports", "dytb_oxide", "CHN"), _series(twin, "exports", "dytb_oxide", "CHN")
            )
            imports = _ratio(
                _series(ts, "imports", "dytb_oxide", "USA"), _series(twin, "imports", "dytb_oxide", "USA")
            )
            peak = magnets.idxmax() if magnets.notna().any() else None
            cells = [
                _fmt(magnets.max()),
                _fmt(china.get(peak)) if peak is not None else "–",
                _fmt(dytb.max()),
                _fmt(exports.min()),
                _fmt(imports.min()),
            ]
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block_gage() -> str:
    """The US gallium and germanium ban timelines on the seven-chain world: US gallium buyers'
    price over the no-shock run, peak while the 2024-25 ban held and peak from Dec 2026."""
    end = "scenario.end=2028-12"
    twin = _run(["scenario=full_2024", "shock=none", end])
    lines = [
        "| shock file | US gallium buyers, peak Dec 2024 - Nov 2025 | peak from Dec 2026 |",
        "|---|---|---|",
    ]
    for name in ("gage_us_ban_2026_lapse", "gage_us_ban_2026_extended"):
        ts = _run(["scenario=full_2024", f"shock={name}", end])
        r = _ratio(
            _series(ts, "buyer_price", "ga_high_purity", "USA"),
            _series(twin, "buyer_price", "ga_high_purity", "USA"),
        )
        during = r[(r.index >= "2024-12-01") & (r.index < "2025-12-01")].max()
        after = r[r.index >= "2026-12-01"].max()
        lines.append(f"| `{name}` | {_fmt(during)} | {_fmt(after)} |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {"ree_2009": block_2009, "ree_2026": block_2026, "gage": block_gage}


def render(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each named block's content replaced."""
    for name, content in blocks.items():
        pattern = re.compile(
            rf"(<!-- generated:worlds-{name} -->\n).*?(<!-- /generated:worlds-{name} -->)", re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"docs/worlds.md: no block 'worlds-{name}'")
        text = pattern.sub(lambda m, c=content: m.group(1) + c + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate docs/worlds.md's measured tables from the model.")
    p.add_argument("blocks", nargs="*", help=f"blocks (default: all of {list(BLOCKS)})")
    args = p.parse_args(argv)
    unknown = sorted(set(args.blocks) - set(BLOCKS))
    if unknown:
        p.error(f"unknown block(s) {unknown}; expected some of {list(BLOCKS)}")
    names = args.blocks or list(BLOCKS)
    DOC.write_text(render(DOC.read_text(), {n: BLOCKS[n]() for n in names}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
