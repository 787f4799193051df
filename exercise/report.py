"""The after-action report (``report.html``): the decisions, their timing, and their consequences
against the same shocks without any team's response (the exercise replayed with the
facilitator's decisions only). Self-contained HTML: the chart is an embedded PNG."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd

from critmin.analysis import labels as L
from critmin.exercise.controller import Exercise


def consequences(ex: Exercise, base: Exercise, commodity: str) -> pd.DataFrame:
    """Per team, from the exercise's first month to the last played: the highest price its buyers
    paid, the share of its demand left unmet, and its fiscal cost, with and without responses."""
    first = ex.open_index
    rows = []
    for team in ex.teams:
        row = {"team": team}
        for tag, e in (("with", ex), ("without", base)):
            price = e.series("buyer_price", commodity, team).iloc[first:]
            demand = e.series("demand", commodity, team).iloc[first:].sum()
            unmet = e.series("unmet_demand", commodity, team).iloc[first:].sum()
            row[f"peak_price_{tag}"] = float(np.nanmax(price)) if len(price) else np.nan
            row[f"unmet_{tag}"] = float(unmet / demand) if demand > 0 else 0.0
            row[f"fiscal_{tag}"] = float(e.ledger_view().loc[team, "spent"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("team")


def _chart(ex: Exercise, base: Exercise, commodity: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=90)
    first = max(ex.open_index - 6, 0)
    for i, team in enumerate(ex.teams):
        color = f"C{i}"
        a = ex.series("buyer_price", commodity, team).iloc[first:] / 1000
        b = base.series("buyer_price", commodity, team).iloc[first:] / 1000
        ax.plot(a.index, a.to_numpy(), color=color, label=f"{L.country(team)}: with responses")
        ax.plot(b.index, b.to_numpy(), color=color, ls="--", label=f"{L.country(team)}: shock alone")
    ax.set_ylabel(f"{L.commodity(commodity)}: price buyers pay, USD/kg")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def after_action_html(ex: Exercise, commodity: str | None = None) -> str:
    """The report as one HTML page."""
    commodity = commodity or ex.final_commodity()
    base = ex.without_responses()
    tl = ex.timeline()
    esc = html.escape
    log_rows = "".join(
        f"<tr><td>{esc(L.month(e.month))}</td><td>{esc(L.country(e.who) if len(e.who) == 3 else e.who)}</td>"
        f"<td>{esc(e.text)}</td></tr>"
        for e in ex.event_log()
    )
    cons = consequences(ex, base, commodity)
    cons_rows = "".join(
        f"<tr><td>{esc(L.country(t))}</td>"
        f"<td>{L.usd_per_t(r.peak_price_with)}</td><td>{L.usd_per_t(r.peak_price_without)}</td>"
        f"<td>{L.share(r.unmet_with)}</td><td>{L.share(r.unmet_without)}</td>"
        f"<td>{L.money_bn(r.fiscal_with / 1e9)}</td></tr>"
        for t, r in cons.iterrows()
    )
    played = L.months(tl.start, tl.played_until) if tl.played_until else "nothing played"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>After-action report: {esc(tl.name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>
</head><body>
<h1>After-action report: {esc(tl.name)}</h1>
<p>World <b>{esc(tl.world)}</b>, seed {tl.seed}, played {esc(played)}. Consequences are compared
with the same shocks and no team response (the exercise replayed with the facilitator's decisions
only). Replay it with <code>critmin run --timeline timeline.yaml</code>.</p>
<h2>Decisions and their timing</h2>
<table><tr><th>from</th><th>who</th><th>what</th></tr>{log_rows}</table>
<h2>Consequences for {esc(L.commodity(commodity))}</h2>
<table><tr><th>team</th><th>highest price paid, with responses</th><th>without</th>
<th>demand left unmet, with responses</th><th>without</th><th>fiscal cost of responses, USD bn (− = receipts)</th></tr>
{cons_rows}</table>
<p><img alt="price buyers pay, with and without responses" src="data:image/png;base64,{_chart(ex, base, commodity)}"></p>
</body></html>
"""
