"""What an instrument mix or a shock contains, in plain words, generated from its config.

``describe_mix(policy_config)`` and ``describe_shock(shock_config)`` return one sentence per
instrument or event, e.g. "Price floor: USD 110,000/t on NdPr oxide from MP Materials Mountain
Pass separation (NdPr oxide) (United States), paid by the United States government, from
Oct 2025." Levels come from the config the runs used (variants and overrides included).
Names come from :mod:`critmin.analysis.labels`. An instrument type without a sentence here is still
listed, with its settings in words, so nothing a run contains goes unmentioned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from critmin.analysis import labels as L

Spec = dict[str, Any]


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(v)] if isinstance(v, str) else [str(x) for x in v]


def _commodities(v: Any) -> str:
    return L.join(L.commodity(c) for c in _list(v))


def _n_months(v: Any) -> str:
    if isinstance(v, list):  # a distribution of processing times
        return L.join(f"{_n_months(d['months'])} for {_pct(d['share'])}" for d in v)
    n = int(v)
    return f"{n} month" if n == 1 else f"{n} months"


def _tranches(s: Spec) -> str:
    if s.get("period", "year") == "month":
        return ""
    t = s.get("tranches", "quarterly")
    how = f"in {t} tranches" if isinstance(t, str) else f"in {len(t)} tranches"
    return f", issued {how}" + (", unused ones lapsing" if s.get("tranche_lapse") else "")


def _pct(v: Any) -> str:
    x = 100 * float(v)
    return f"{x:.0f}%" if abs(x - round(x)) < 1e-9 else f"{x:.1f}%"


def period(spec: Spec) -> str:
    """ "from Oct 2025", "Jan 2026 – Jun 2026" (``end`` is the first month without it), or
    "for the whole run"."""
    start, end = spec.get("start"), spec.get("end")
    if start and end:
        return L.months(start, L.month_before(end))
    if start:
        return f"from {L.month(start)}, no end date"
    if end:
        return f"until {L.month(L.month_before(end))}"
    return "for the whole run"


def _price_floor(s: Spec) -> str:
    who = _list(s.get("producers"))
    src = L.join(L.facility(p) for p in who) if who else f"producers in {L.places(s.get('country'))}"
    several = len(_list(s.get("country"))) > 1
    payer = (
        f"the governments of {L.places(s.get('country'))} each pay the gap to the market price on their own producers"
        if several
        else f"the government of {L.places(s.get('country'))} pays the gap to the market price"
    )
    text = f"Price floor: {L.usd_per_t(s['floor_usd_per_t'])} on {_commodities(s.get('commodity'))} from {src}; {payer}"
    if "max_tonnes_per_month" in s:
        text += f", up to {float(s['max_tonnes_per_month']):,.0f} t a month"
    return text


def _offtake(s: Spec) -> str:
    who = L.join(L.facility(p) for p in _list(s.get("producers")))
    if s.get("price_usd_per_t") is not None:
        price = f"at {L.usd_per_t(s['price_usd_per_t'])}"
    else:
        premium = float(s.get("premium", 0.0))
        price = "at the market price" + (f" plus {_pct(premium)}" if premium else "")
        if s.get("price_floor_usd_per_t"):
            price += f", at least {L.usd_per_t(s['price_floor_usd_per_t'])}"
        if s.get("price_ceiling_usd_per_t"):
            price += f", at most {L.usd_per_t(s['price_ceiling_usd_per_t'])}"
    pay = "" if s.get("take_or_pay", True) else " (buyers need not take what they do not use)"
    return (
        f"Offtake contract: buyers in {L.places(s.get('buyers'))} take "
        f"{float(s['tonnes_per_month']):,.0f} t a month of {_commodities(s.get('commodity'))} from {who}, "
        f"{price}{pay}"
    )


def _stockpile(s: Spec) -> str:
    holders = s.get("holders")
    if holders:
        who = L.join(f"{L.country(h['country'])} {_pct(h['share'])}" for h in holders)
        held = f"held jointly ({who} of the cost)"
    else:
        held = f"held by {L.places(s.get('country'))}"
    text = (
        f"Stockpile of {_commodities(s.get('commodity'))}, {held}: built up to "
        f"{_n_months(s['target_months']) if float(s['target_months']).is_integer() else str(s['target_months']) + ' months'} of the holders' consumption"
    )
    if float(s.get("initial_months", 0) or 0):
        text += f" (full at the start: {float(s['initial_months']):g} months)"
    text += (
        f", buying while the price is at most {float(s.get('buy_below_price_ratio', 1.05)):g}× its "
        f"pre-crisis level; released at {_pct(s.get('release_share_per_month', 0.25))} of the stock a "
        f"month when buyers pay {float(s.get('release_price_ratio', 1.3)):g}× that level or more, or "
        f"when more than {_pct(s.get('release_unmet_share', 0.05))} of their orders go unserved"
    )
    if s.get("budget_usd") is not None:
        text += f"; budget USD {float(s['budget_usd']) / 1e9:,.2f} bn"
    return text


def _diversification(s: Spec) -> str:
    exempt = _list(s.get("exempt_origins"))
    from_where = f"any one country outside {L.places(exempt)}" if exempt else "any one country"
    return (
        f"Diversification cap: buyers in {L.places(s.get('buyers'))} take at most "
        f"{_pct(s['max_share'])} of their {_commodities(s.get('commodity'))} from {from_where}"
    )


def _recycling(s: Spec) -> str:
    parts = []
    if s.get("collection_rate"):
        years = float(s.get("phase_in_years", 3))
        parts.append(
            f"collect {_pct(s['collection_rate'])} of end-of-life magnets (phased in over {years:g} years)"
        )
    if s.get("epr_fee_usd_per_t"):
        parts.append(f"producer fee {L.usd_per_t(s['epr_fee_usd_per_t'])}")
    if s.get("recycled_content"):
        parts.append(
            f"{_pct(s['recycled_content'])} recycled content in "
            f"{_commodities(s.get('content_commodity', 'ndfeb_alloy'))}"
        )
    return f"Recycling obligation in {L.places(s.get('countries'))}: {L.join(parts) or 'no terms set'}"


def _export_ban(s: Spec) -> str:
    dest = _list(s.get("destinations"))
    to = f" to {L.places(dest)}" if dest else ""
    who = s.get("country")
    verb = "export" if L.is_plural(_list(who)) else "exports"
    return f"Export ban: {L.places(who)} {verb} no {_commodities(s.get('commodity'))}{to}"


def _certification(s: Spec) -> str:
    st = L.stage(str(s.get("stage", "")), _list(s.get("commodity"))[0] if s.get("commodity") else None)
    need = float(s.get("min_share", 1.0))
    return (
        f"Origin certification: buyers in {L.places(s.get('buyers'))} buy only "
        f"{_commodities(s.get('commodity'))} with at least {_pct(need)} of its {st} done in "
        f"{L.places(s.get('qualifying'))}"
    )


def _permitting(s: Spec) -> str:
    return (
        f"Faster permitting: permitting time for new projects in {L.places(s.get('countries'))} cut by "
        f"{_pct(s['lead_time_reduction'])}"
    )


def _finance(s: Spec) -> str:
    stages = _list(s.get("stages"))
    which = f"{L.join(L.stage(x) for x in stages)} projects" if stages else "projects"
    text = (
        f"Concessional finance: the interest rate for new {which} in {L.places(s.get('countries'))} "
        f"cut by {100 * float(s['rate_reduction']):g} percentage points"
    )
    if s.get("budget_usd") is not None:
        text += f" (budget USD {float(s['budget_usd']) / 1e9:,.2f} bn)"
    return text


def _quota_size(s: Spec, baseline: str) -> str:
    """'<size> a <period><tranches>' of a quota whose share is of ``baseline``."""
    size = (
        f"{_pct(s['share_of_baseline'])} of {baseline}"
        if "share_of_baseline" in s
        else f"{float(s['tonnes_per_period']):,.0f} t"
    )
    per = "a month" if s.get("period", "year") == "month" else "a year"
    return f"{size} {per}{_tranches(s)}"


def _quota(kind: str) -> Callable[[Spec], str]:
    def text(s: Spec) -> str:
        size = _quota_size(s, f"the base year's {'exports' if kind == 'export' else 'imports'}")
        partners = _list(s.get("partners"))
        if kind == "export":
            other = f" to {L.places(partners)}" if partners else ""
            return (
                f"Export quota: {L.places(s.get('country'))} exports of {_commodities(s.get('commodity'))}"
                f"{other} limited to {size}"
            )
        other = f" from {L.places(partners)}" if partners else ""
        return (
            f"Import quota: {L.places(s.get('country'))} imports of {_commodities(s.get('commodity'))}"
            f"{other} limited to {size}"
        )

    return text


def _production_quota(s: Spec) -> str:
    return (
        f"Production quota: {L.places(s.get('country'))} output of {_commodities(s.get('commodity'))}"
        f" limited to {_quota_size(s, 'its base-year output')}"
    )


def _tax(kind: str) -> Callable[[Spec], str]:
    def text(s: Spec) -> str:
        rates = []
        if s.get("ad_valorem"):
            rates.append(f"{_pct(s['ad_valorem'])} of the value")
        if s.get("specific_usd_per_t"):
            rates.append(L.usd_per_t(s["specific_usd_per_t"]))
        partners = _list(s.get("partners"))
        if kind == "export":
            to = f" to {L.places(partners)}" if partners else ""
            verb = "tax" if len(_list(s.get("country"))) > 1 else "taxes"
            return (
                f"Export tax: {L.places(s.get('country'))} {verb} exports of "
                f"{_commodities(s.get('commodity'))}{to} at {L.join(rates) or '0'}"
            )
        frm = f" from {L.places(partners)}" if partners else ""
        verb = "each charge" if len(_list(s.get("country"))) > 1 else "charges"
        return (
            f"Import tariff: {L.places(s.get('country'))} {verb} {L.join(rates) or '0'} on imports of "
            f"{_commodities(s.get('commodity'))}{frm}"
        )

    return text


def _licensing(s: Spec) -> str:
    rate = s.get("approval_rate", 1.0)
    if isinstance(rate, list):
        steps = L.join(f"{_pct(r['rate'])} from {L.month(r['from'])}" for r in rate)
        approved = f"approved: {steps}"
    else:
        approved = f"{_pct(rate)} approved"
    return (
        f"Export licensing: {L.places(s.get('country'))} licenses {_covered(s.get('covered_share', 1.0))}exports of "
        f"{_commodities(s.get('commodity'))}; licences take {_licence_time(s)}, {approved}"
    )


def _covered(share: object) -> str:
    """The part of the trade a licence covers: '' (all of it), 'a share of' or a schedule."""
    if isinstance(share, list):
        steps = L.join(
            f"{_pct(r['share'])} from {L.month(r['from'])}" if "from" in r else _pct(r["share"])
            for r in share
        )
        return f"part ({steps}) of the "
    if isinstance(share, int | float) and float(share) < 1.0:
        return f"{_pct(share)} of the "
    return ""


def _licence_time(s: Spec) -> str:
    days = s.get("processing_days")
    if isinstance(days, dict) and "decided" in days:  # a minimum, then the ministry's monthly pace
        pace = L.join(
            f"{_pct(r['per_month'])} from {L.month(r['from'])}" if "from" in r else _pct(r["per_month"])
            for r in days["decided"]
        )
        return f"at least {days.get('min')} days to process, then a share of those waiting is decided each month ({pace})"
    if isinstance(days, dict):
        return f"{days.get('min')}–{days.get('max')} days to process"
    return _n_months(s.get("delay_months", 2))


def _export_cap(s: Spec) -> str:
    cap = float(s.get("max_tonnes_per_month", 0.0))
    dest = _list(s.get("destinations"))
    to = f" to {L.places(dest)}" if dest else ""
    what = "no" if cap == 0 else f"at most {cap:,.0f} t a month of"
    head = "Export halt" if cap == 0 else "Export cap"
    verb = "export" if L.is_plural(_list(s.get("country"))) else "exports"
    return f"{head}: {L.places(s.get('country'))} {verb} {what} {_commodities(s.get('commodity'))}{to}"


def _outage(s: Spec) -> str:
    f = float(s.get("capacity_factor", 0.0))
    state = "shut" if f == 0 else f"at {_pct(f)} of capacity"
    return f"Plant outage: {L.facility(s.get('facility', ''))} {state}"


def _demand(s: Spec) -> str:
    where = []
    if s.get("country"):
        where.append(f"in {L.places(s['country'])}")
    if s.get("end_use"):
        where.append(f"for {L.join(L._humanise(u) for u in _list(s['end_use']))}")
    if s.get("commodity"):
        where.append(f"of {_commodities(s['commodity'])}")
    return f"Demand shock: final demand {' '.join(where) or 'everywhere'} × {float(s['factor']):g}"


SENTENCES: dict[str, Callable[[Spec], str]] = {
    "price_floor": _price_floor,
    "offtake": _offtake,
    "stockpile": _stockpile,
    "diversification_cap": _diversification,
    "recycling_target": _recycling,
    "export_ban": _export_ban,
    "origin_certification": _certification,
    "permitting_acceleration": _permitting,
    "concessional_finance": _finance,
    "export_quota": _quota("export"),
    "import_quota": _quota("import"),
    "production_quota": _production_quota,
    "export_tax": _tax("export"),
    "import_tariff": _tax("import"),
    "export_licensing": _licensing,
    "export_cap": _export_cap,
    "facility_outage": _outage,
    "demand_shock": _demand,
}
SKIP = {"type", "name", "start", "end"}


def describe(spec: Spec) -> str:
    """One instrument or event in a sentence, with when it applies."""
    kind = str(spec.get("type", ""))
    try:
        text = SENTENCES[kind](spec)
    except (KeyError, TypeError, ValueError):
        settings = "; ".join(f"{L._humanise(k)} {v}" for k, v in spec.items() if k not in SKIP)
        text = f"{L._humanise(kind).capitalize() or 'Instrument'}: {settings or 'no settings'}"
    return f"{text}, {period(spec)}."


def describe_mix(policy: dict[str, Any] | None) -> list[str]:
    """The instruments of a policy config, one sentence each ("No instruments." for none)."""
    items = list((policy or {}).get("instruments") or [])
    return [describe(i) for i in items] or ["No instruments: the market as in the scenario."]


def describe_shock(shock: dict[str, Any] | None) -> list[str]:
    """The events and foreign instruments of a shock config, one sentence each."""
    items = list((shock or {}).get("events") or []) + list((shock or {}).get("instruments") or [])
    return [describe(i) for i in items] or ["No shock."]
