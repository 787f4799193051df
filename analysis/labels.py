"""Plain-language names for people: commodities, stages, regions, countries, facilities, metrics,
months and shares. The one place that turns code names (``ndfeb_magnet``, ``refining``) into
words for reports; reports never print a code name in a heading or a table header.

Country and facility names come from the packaged data files (``countries.csv``,
``facilities.csv``, ``projects.csv`` of every mineral); the rest is below.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from functools import cache
from pathlib import Path

COMMODITIES: dict[str, str] = {
    # rare earths
    "ree_concentrate": "rare-earth concentrate",
    "ndpr_oxide": "NdPr oxide",
    "dytb_oxide": "Dy/Tb oxide",
    "la_oxide": "lanthanum oxide",
    "ce_oxide": "cerium oxide",
    "re_metal": "RE metal (NdPr, Dy/Tb)",
    "ndfeb_alloy": "NdFeB alloy",
    "ndfeb_magnet": "NdFeB magnets",
    "ndfeb_scrap": "NdFeB scrap",
    # cobalt
    "co_ore": "cobalt ore",
    "co_hydroxide": "cobalt hydroxide and intermediates",
    "co_refined": "refined cobalt",
    "co_scrap": "battery black mass (cobalt)",
    # gallium
    "ga_feed": "gallium feedstock",
    "ga_primary": "primary gallium",
    "ga_high_purity": "high-purity gallium",
    # germanium
    "ge_feed": "germanium feedstock",
    "ge_refined": "refined germanium",
    # graphite
    "gr_flake": "natural graphite",
    "gr_synthetic": "synthetic graphite",
    "gr_anode": "graphite anode material",
    # lithium
    "li_concentrate": "lithium concentrate",
    "li_chemical": "lithium chemicals",
    "li_scrap": "lithium-ion battery scrap",
    # nickel
    "ni_ore": "nickel ore",
    "ni_intermediate": "nickel intermediates",
    "ni_refined": "refined nickel",
    "ni_scrap": "battery black mass (nickel)",
}

# supply chains, by the start of their commodities' codes
MINERALS: dict[str, str] = {
    "ree_": "rare-earth magnet",
    "ndpr_": "rare-earth magnet",
    "dytb_": "rare-earth magnet",
    "la_": "rare-earth magnet",
    "ce_": "rare-earth magnet",
    "ndfeb_": "rare-earth magnet",
    "re_": "rare-earth magnet",
    "co_": "cobalt",
    "ga_": "gallium",
    "ge_": "germanium",
    "gr_": "graphite",
    "li_": "lithium",
    "ni_": "nickel",
}

# origin stages (processes.csv origin_stage) as a reader would name the step
STAGES: dict[str, str] = {
    "mine": "mining",
    "refining": "refining",
    "metal": "metal & alloy",
    "alloy": "alloy",
    "magnet": "magnet making",
    "product": "anode making",
    "scrap": "scrap",
    "recycling": "recycling",
}
# where a stage has a more precise name for one mineral's commodities
STAGE_BY_COMMODITY_PREFIX: dict[tuple[str, str], str] = {
    ("refining", "ree_"): "refining (separation)",
    ("refining", "ndpr_"): "refining (separation)",
    ("refining", "dytb_"): "refining (separation)",
    ("refining", "la_"): "refining (separation)",
    ("refining", "ce_"): "refining (separation)",
    ("refining", "ndfeb_"): "refining (separation)",
    ("refining", "re_"): "refining (separation)",
    # the rare-earth midstream: oxide -> metal (molten-salt electrolysis), metal -> alloy
    **{("metal", p): "metal reduction" for p in ("ree_", "ndpr_", "dytb_", "re_", "ndfeb_")},
    **{("alloy", p): "alloy (strip casting)" for p in ("ree_", "ndpr_", "dytb_", "re_", "ndfeb_")},
}

BLOCS: dict[str, str] = {
    "g7": "G7 countries",
    "partner": "partner countries",
    "other": "countries outside the G7 and partners",
}
# country names as a sentence uses them (the data files use the ISO short names)
COUNTRIES: dict[str, str] = {
    "USA": "the United States",
    "GBR": "the United Kingdom",
    "NLD": "the Netherlands",
    "KOR": "South Korea",
    "COD": "DR Congo",
    "PHL": "the Philippines",
    "ARE": "the United Arab Emirates",
}
REGIONS: dict[str, str] = {
    "G7+": "G7+ (the G7 and partner countries)",
    "EU": "the EU",
    "World": "the world",
    "WORLD": "the world",
}

# result measures, as column headers and sentences use them
METRICS: dict[str, str] = {
    "dependency_share": "share from the largest single supplier",
    "target_met": "target met",
    "fiscal_cost_usd": "fiscal cost (USD)",
    "unmet_demand_share": "unmet final demand",
    "peak_price_ratio": "peak price × pre-shock level",
    "months_to_recover": "months to recover",
    "hhi": "concentration of production (HHI, 0–10,000)",
    "recycled_share": "recycled share of production",
    "consumer_cost_usd": "consumer cost (USD)",
}

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _humanise(code: str) -> str:
    return str(code).replace("_", " ")


def commodity(code: str) -> str:
    """``ndfeb_magnet`` → "NdFeB magnets" (unknown codes: underscores become spaces)."""
    return COMMODITIES.get(str(code), _humanise(code))


def mineral(commodity_code: str) -> str:
    """The supply chain a commodity belongs to: ``ndpr_oxide`` → "rare-earth magnet"."""
    for prefix, text in MINERALS.items():
        if str(commodity_code).startswith(prefix):
            return text
    return commodity(commodity_code)


def stage(code: str, commodity_code: str | None = None) -> str:
    """``refining`` → "refining", or "refining (separation)" for a rare-earth commodity."""
    code = str(code)
    if commodity_code:
        for (st, prefix), text in STAGE_BY_COMMODITY_PREFIX.items():
            if st == code and str(commodity_code).startswith(prefix):
                return text
    return STAGES.get(code, _humanise(code))


def check(commodity_code: str, stage_code: str) -> str:
    """A checked (commodity, origin stage): "NdFeB magnets: metal & alloy stage"."""
    return f"{commodity(commodity_code)}: {stage(stage_code, commodity_code)} stage"


def metric(code: str) -> str:
    return METRICS.get(str(code), _humanise(code))


def region(code: str) -> str:
    """A region of experiment.metrics, a bloc or a country code, in words."""
    code = str(code)
    if code in REGIONS:
        return REGIONS[code]
    if code in BLOCS:
        return BLOCS[code]
    return country(code)


def region_short(code: str) -> str:
    """The region's short name (``G7+``, "the EU", a country's name) for table headers."""
    code = str(code)
    return code if code == "G7+" else region(code)


@cache
def _data_names(filename: str, key: str) -> dict[str, str]:
    import critmin.data

    out: dict[str, str] = {}
    for path in sorted(Path(critmin.data.__file__).parent.glob(f"*/{filename}")):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get(key) and row.get("name"):
                    out.setdefault(row[key], row["name"].strip())
    return out


def country(code: str) -> str:
    """``CHN`` → "China" (from the packaged countries.csv files; unknown codes as given)."""
    if str(code) in COUNTRIES:
        return COUNTRIES[str(code)]
    return _data_names("countries.csv", "country").get(str(code), str(code))


def facility(code: str) -> str:
    """A facility or project id → its name in facilities.csv / projects.csv."""
    names = _data_names("facilities.csv", "facility") | _data_names("projects.csv", "facility")
    return names.get(str(code), _humanise(code))


def join(items: Iterable[str], last: str = "and") -> str:
    """ "a", "a and b", "a, b and c"."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def is_plural(codes: Iterable[str] | str) -> bool:
    """Whether :func:`places` names more than one country (for the verb after it)."""
    codes = [codes] if isinstance(codes, str) else [str(c) for c in codes]
    return len(codes) > 1 or any(c in BLOCS for c in codes)


def places(codes: Iterable[str] | str) -> str:
    """Countries and blocs of a config list in words: [g7, partner] → "G7 and partner countries"."""
    codes = [codes] if isinstance(codes, str) else [str(c) for c in codes]
    blocs = [c for c in codes if c in BLOCS]
    rest = [country(c) for c in codes if c not in BLOCS]
    words = []
    if blocs == ["g7", "partner"] or blocs == ["partner", "g7"]:
        words.append("G7 and partner countries")
    else:
        words += [BLOCS[b] for b in blocs]
    return join([*words, *rest])


def month(text: object) -> str:
    """``2025-10`` → "Oct 2025" (anything else as given)."""
    s = str(text)
    try:
        y, m = s[:7].split("-")
        return f"{MONTHS[int(m) - 1]} {int(y)}"
    except (ValueError, IndexError):
        return s


def months(start: object, last: object) -> str:
    """ "Jan 2026 – Jun 2026", or "Oct 2025" when both are the same month."""
    a, b = month(start), month(last)
    return a if a == b else f"{a} – {b}"


def month_before(text: object) -> str:
    """The month before ``YYYY-MM`` (an instrument's ``end`` is its first month without it)."""
    y, m = (int(x) for x in str(text)[:7].split("-"))
    return f"{y - (m == 1)}-{12 if m == 1 else m - 1:02d}"


def share(value: object, thresholds: Iterable[float] = (), digits: int = 1) -> str:
    """A share as a percentage, with as many decimals as it takes (up to 4) for the printed
    number to fall on the same side of every threshold as the value itself: 0.5996 against 0.60
    prints "59.96%", never "60.0%"."""
    if value is None:
        return "–"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if math.isnan(v):
        return "–"
    ths = [float(t) for t in thresholds]
    for d in range(digits, 5):
        shown = round(100 * v, d) / 100
        if all((shown < t) == (v < t) for t in ths):
            return f"{100 * v:.{d}f}%"
    return f"{100 * v:.4f}%"


def money_bn(value: object) -> str:
    """USD billions with two decimals ("–" for a missing value)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(v) else f"{v:,.2f}"


def usd_per_t(value: object) -> str:
    return f"USD {float(value):,.0f}/t"  # type: ignore[arg-type]
