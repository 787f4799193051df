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
