"""What the facilitator can compose and teams can choose, as shock-file entries (plain data).

The app's forms fill these in; each entry is then validated by the registry like any config
entry (:meth:`critmin.exercise.controller.Exercise.inject` / ``respond``). Team responses are
templates a team edits (parameters in YAML) before submitting: the instrument registry
(:mod:`critmin.policies`) is what they choose from.
"""

from __future__ import annotations

from typing import Any

from critmin.exercise.timeline import add_months

# facilitator's composed shocks: label -> what the form asks
SHOCK_KINDS = {
    "export_ban": "Export ban (exporter, commodity, destinations)",
    "export_licensing": "Export licensing or quota (share of licences approved)",
    "facility_outage": "Facility outage (a plant runs at a share of its capacity)",
    "demand_surge": "Demand surge (demand multiplied by a factor)",
}

# the shock library (configs/shock/*.yaml): file name -> plain words for the facilitator's list;
# a file without a label shows its name. "(world ...)" says which scenario the file is written for.
LIBRARY_LABELS = {
    "magnet_ban_demo": "Illustrative: China halts magnet exports for six months",
    "refiner_cut": "Generic: China halves its exports of refined rare-earth products for six months",
    "ree_export_tax_2008": "China's rare-earth export taxes of 2008, replayed on today's world",
    "ree_quotas_2010": "China's rare-earth export quotas of 2010-14, replayed",
    "ree_licensing_2025": "China's rare-earth licensing of April 2025 (Announcement No. 18: Dy/Tb oxide, alloy and magnets; world ree_2024)",
    "ree_oct2025_package_lapse": "China's October 2025 rare-earth package returns when its suspension lapses in Nov 2026 (world ree_2026)",
    "ree_oct2025_package_extended": "China's October 2025 rare-earth package: suspension extended a year, back in Nov 2027 (world ree_2026)",
    "ree_customer_licences_2026_lapse": "China's year-long magnet licences lapse in Dec 2026: per-shipment licences again (world ree_2026)",
    "ree_customer_licences_2026_extended": "China's year-long magnet licences renewed to Dec 2027, then lapse (world ree_2026)",
    "ree_entity_list_2026_stays": "MP Materials and USA Rare Earth on China's control list from Jun 2026 (world ree_2026)",
    "ree_entity_list_2026_lifted": "MP Materials and USA Rare Earth on China's control list, Jun to Nov 2026 (world ree_2026)",
    "ree_controls_2026_lapse": "All 2025-26 rare-earth controls, November 2026 brings no renewal (world ree_2026)",
    "ree_controls_2026_extended": "All 2025-26 rare-earth controls, the truce renewed for a year in Nov 2026 (world ree_2026)",
    "gage_controls_2023": "China's gallium and germanium licensing from Aug 2023 and the US ban (Ga/Ge worlds)",
    "gage_us_ban_2026_lapse": "China's gallium and germanium ban on the US returns when its suspension lapses in Nov 2026 (world full_2024)",
    "gage_us_ban_2026_extended": "China's gallium and germanium ban on the US: suspension extended to Nov 2027 (world full_2024)",
    "graphite_controls_2023": "China's graphite export licensing from Dec 2023 (graphite worlds)",
    "drc_cobalt_2025": "DRC cobalt export ban of 2025 and quotas from Oct 2025 (cobalt worlds)",
}


def library_label(name: str) -> str:
    """Plain words for a library shock (its file name when it has no label)."""
    return LIBRARY_LABELS.get(name, name)


# teams' responses: label -> registry type (the issue's list; licence fast-track is the
# permitting acceleration of the investment terms)
RESPONSES = {
    "Stockpile release": "stockpile",
    "Joint procurement (offtake)": "offtake",
    "Price floor": "price_floor",
    "Import tariff": "import_tariff",
    "Diversification cap": "diversification_cap",
    "Licence fast-track (permitting)": "permitting_acceleration",
}


def compose_shock(
    kind: str,
    *,
    month: str,
    duration_months: int | None = None,
    exporter: str = "CHN",
    commodity: str = "ndfeb_magnet",
    destinations: list[str] | None = None,
    share: float = 0.0,
    facility: str | None = None,
    factor: float = 1.5,
    country: str | None = None,
) -> dict[str, Any]:
    """A facilitator's shock from the form: ``duration_months`` (None: open-ended) sets its end
    from ``month``, the month it starts."""
    if kind == "export_ban":
        spec: dict[str, Any] = {"type": "export_ban", "country": exporter, "commodity": commodity}
        if destinations:
            spec["destinations"] = list(destinations)
    elif kind == "export_licensing":
        spec = {
            "type": "export_licensing",
            "country": exporter,
            "commodity": commodity,
            "approval_rate": float(share),
            "delay_months": 2,
        }
        if destinations:
            spec["destinations"] = list(destinations)
    elif kind == "facility_outage":
        spec = {"type": "facility_outage", "facility": facility or "", "capacity_factor": float(share)}
    elif kind == "demand_surge":
        spec = {"type": "demand_shock", "commodity": commodity, "factor": float(factor)}
        if country:
            spec["country"] = country
    else:
        raise ValueError(f"unknown shock kind {kind!r}; expected one of {sorted(SHOCK_KINDS)}")
    if duration_months:
        spec["end"] = add_months(month, int(duration_months))
    return spec


def response_template(
    label: str, team: str, members: list[str] | None = None, magnet_users: list[str] | None = None
) -> dict[str, Any]:
    """A team's response of the REE world with the team as holder, buyer or payer; the team edits
    its parameters before submitting. A group team (e.g. the EU) acts for its ``members``: a
    joint stockpile held in equal shares by the members that use magnets (``magnet_users``: a
    stockpile holds months of its holder's use), its members' buyers, each member paying the
    floor on its own producers."""
    kind = RESPONSES[label]
    members = members or [team]
    who: dict[str, Any] = {"country": team} if members == [team] else {"country": list(members)}
    if kind == "stockpile":  # the team's strategic stock, released from the month it starts
        users = magnet_users or members
        holders: dict[str, Any] = (
            {"country": team}
            if members == [team]
            else {"holders": [{"country": c, "share": 1 / len(users)} for c in users]}
        )
        return {
            "type": "stockpile",
            **holders,
            "commodity": "ndfeb_magnet",
            "target_months": 2,
            "initial_months": 2,
            "release_price_ratio": 1.0,
            "release_unmet_share": 0.0,
            "release_share_per_month": 0.25,
        }
    if kind == "offtake":
        return {
            "type": "offtake",
            "buyers": list(members),
            "commodity": "ndpr_oxide",
            "producers": ["mys_lynas_lamp", "usa_mountain_pass_sep"],
            "tonnes_per_month": 100,
            "premium": 0.05,
        }
    if kind == "price_floor":  # for the team's own magnet makers (USD/t; 2024 price ~50,000)
        return {"type": "price_floor", **who, "commodity": "ndfeb_magnet", "floor_usd_per_t": 60000}
    if kind == "import_tariff":
        return {
            "type": "import_tariff",
            **who,
            "commodity": "ndfeb_magnet",
            "partners": ["CHN"],
            "ad_valorem": 0.25,
        }
    if kind == "diversification_cap":
        return {
            "type": "diversification_cap",
            "buyers": list(members),
            "commodity": "ndfeb_magnet",
            "max_share": 0.65,
            "exempt_origins": ["g7", "partner"],
        }
    return {"type": "permitting_acceleration", "countries": list(members), "lead_time_reduction": 0.33}
