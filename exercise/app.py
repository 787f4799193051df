"""The crisis-exercise web app (Solara): the facilitator's controls, each team's responses, and the
live views, over the :class:`~critmin.exercise.controller.Exercise` objects of a
:class:`~critmin.exercise.hall.Hall`. Started by ``critmin exercise`` (:mod:`.server`).

A browser opens ``/?exercise=ID&role=ROLE`` (role ``facilitator`` or a team's country code):
every browser on the same id sees the same exercise, and each view refreshes within a second of
a change made elsewhere. All numbers come from the exercise's model; words from
:mod:`critmin.analysis.labels`.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import threading
from typing import Any

import solara
import yaml

from critmin.analysis import labels as L
from critmin.exercise.catalogue import RESPONSES, SHOCK_KINDS, compose_shock, library_label, response_template
from critmin.exercise.controller import DEPENDENCY_LINES, Exercise, library_shocks
from critmin.exercise.hall import Hall
from critmin.exercise.timeline import MAX_BYTES, loads
from critmin.sim.world import DataError

log = logging.getLogger("critmin")
PLAY_INTERVAL_S = 1.0  # a month a second while playing
POLL_S = 1.0  # how often a browser looks for changes made by another
_HALL: dict[str, Hall] = {}  # the server's hall, set by configure() (one per process)


def configure(hall: Hall) -> None:
    """Give the app the server's hall (before the first request)."""
    _HALL["hall"] = hall


def hall() -> Hall:
    return _HALL.setdefault("hall", Hall())


# ---------------------------------------------------------------------- charts (matplotlib, server-side)
def _figure(width: float = 9.0, height: float = 3.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout="tight")


def price_figure(ex: Exercise, commodity: str) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    view = ex.price_view(commodity).iloc[max(ex.open_index - 6, 0) :] / 1000
    for col in view.columns:
        inside = "inside" in col
        name = (
            f"{L.country(col.split()[0])}: its sellers' price"
            if inside
            else f"{L.country(col)}: price buyers pay"
        )
        ax.plot(
            range(len(view)),
            view[col].to_numpy(),
            lw=2.5 if inside else 1.6,
            ls="--" if inside else "-",
            label=name,
        )
    ticks = list(range(0, len(view), max(len(view) // 8, 1)))
    ax.set_xticks(ticks, [L.month(view.index[i]) for i in ticks], fontsize=7, rotation=30)
    if ex.open_index > 0 and len(view):
        ax.axvline(min(ex.open_index, 6) - 0.5, color="grey", lw=0.8)
    ax.set_ylabel("USD per kg")
    ax.set_title(
        f"{L.commodity(commodity)}: prices inside and outside {L.country(ex.restricting_country())}",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")
    return fig


def dependency_figure(ex: Exercise) -> Any:
    dep = ex.dependency_view()
    fig = _figure(5.0, 2.6)
    ax = fig.add_subplot()
    if len(dep):
        names = [L.stage(s) for s in dep["stage"]]
        ax.barh(
            names,
            100 * dep["share"].to_numpy(),
            color=["#c0392b" if a else "#2e86c1" for a in dep["above_60"]],
        )
        for x, ls in zip(DEPENDENCY_LINES, ("--", ":"), strict=True):
            ax.axvline(100 * x, color="black", ls=ls, lw=1)
        ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% from the largest outside supplier (dashed: 60% target, dotted: 50%)", fontsize=8)
    ax.set_title(f"G7+ dependency by stage ({L.commodity(ex.final_commodity())})", fontsize=10)
    return fig


def branch_figure(ex: Exercise, commodity: str, country: str) -> Any:
    view = ex.branch_prices(commodity, country).iloc[max(ex.open_index - 3, 0) :] / 1000
    fig = _figure(7.5, 2.8)
    ax = fig.add_subplot()
    for col in view.columns:
        ax.plot(range(len(view)), view[col].to_numpy(), label=col)
    ticks = list(range(0, len(view), max(len(view) // 8, 1)))
    ax.set_xticks(ticks, [L.month(view.index[i]) for i in ticks], fontsize=7, rotation=30)
    ax.set_ylabel("USD per kg")
    ax.set_title(f"Branches: {L.commodity(commodity)} price buyers pay in {L.country(country)}", fontsize=10)
    ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------------- pieces of the page
# plain HTML, not solara.Markdown: Markdown loads KaTeX, which solara-assets does not ship (no CDN)
def _table(header: list[str], rows: list[list[str]]) -> None:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    solara.HTML("table", unsafe_innerHTML=f"<tr>{head}</tr>{body}", classes=["cm-table"])


def _para(text: str, bold: str = "") -> None:
    esc = html.escape
    solara.HTML("p", unsafe_innerHTML=(f"<b>{esc(bold)}</b> " if bold else "") + esc(text))


def _download(label: str, filename: str, data: bytes, mime: str) -> None:
    """A download link carrying the file as a data URL (solara.FileDownload's widget does not
    render in this Solara build; a timeline is at most MAX_BYTES)."""
    href = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    solara.HTML(
        "a",
        unsafe_innerHTML=html.escape(label),
        attributes={"href": href, "download": filename},
        classes=["cm-download"],
    )


def _PlainSelect(label: str, codes: list[str], value: solara.Reactive, words: Any) -> None:
    """A Select showing plain words for code values (the reactive holds the code)."""
    names = {words(c): c for c in codes}
    solara.Select(label, values=list(names), value=words(value.value), on_value=lambda w: value.set(names[w]))


def _role_words(code: str) -> str:
    return "the facilitator" if code == "facilitator" else f"team {L.country(code)} ({code})"


def _cover(value: float) -> str:
    return "–" if value != value else f"{value:,.1f}"


def _try(message: solara.Reactive, action: Any, refresh: Any = None) -> None:
    """Run a user's action; show a bad input's message; redraw this browser (others notice the
    exercise's version within POLL_S)."""
    try:
        action()
        message.set("")
    except DataError as exc:
        message.set(str(exc))
    except Exception as exc:  # shown, not swallowed by the event loop; the log has the trace
        log.exception("critmin exercise: action failed")
        message.set(f"could not do that: {type(exc).__name__}: {exc}")
    if refresh is not None:
        refresh()


def worlds() -> list[str]:
    """The scenarios an exercise can be played in (configs/scenario)."""
    from critmin.sim.compose import config_dir

    return sorted(p.stem for p in (config_dir() / "scenario").glob("*.yaml"))


@solara.component
def Lobby(on_join: Any) -> None:
    message = solara.use_reactive("")
    code = solara.use_reactive("")
    defaults = hall().defaults
    world = solara.use_reactive(defaults.get("world", "ree_2024_short"))
    start = solara.use_reactive(defaults.get("start", "2025-01"))
    seed = solara.use_reactive(int(defaults.get("seed", 0)))
    teams = solara.use_reactive(", ".join(defaults.get("teams", ["USA", "JPN", "DEU", "KOR"])))

    def new() -> None:
        chosen = [t.strip() for t in teams.value.split(",") if t.strip()]
        on_join(
            hall().open(world=world.value, start=start.value.strip(), seed=seed.value, teams=chosen),
            "facilitator",
        )

    with solara.Card("Start or join a crisis exercise"):
        with solara.Columns([2, 1, 1]):
            solara.Select("World (configs/scenario)", values=worlds(), value=world)
            solara.InputText("Opens in month (YYYY-MM)", value=start)
            solara.InputInt("Seed", value=seed)
        solara.InputText("Teams: country codes or groups, e.g. USA, JPN, EU, KOR", value=teams)
        solara.Button("New exercise", on_click=lambda: _try(message, new), color="primary")
        solara.InputText("Exercise code", value=code)
        solara.Button(
            "Join", on_click=lambda: _try(message, lambda: on_join(code.value.strip(), "facilitator"))
        )

        def drop(info: Any) -> None:
            def load() -> None:
                if info.get("size", 0) > MAX_BYTES:
                    raise DataError(f"{info['name']}: a timeline may have at most {MAX_BYTES} bytes")
                data = info["file_obj"].read(MAX_BYTES + 1)
                on_join(hall().open(loads(data, info["name"])), "facilitator")

            _try(message, load)

        solara.FileDrop(label="…or drop a saved timeline (.yaml) here to replay it", on_file=drop, lazy=True)
        if message.value:
            solara.Error(message.value)


@solara.component
def Facilitator(ex: Exercise, commodity: str, refresh: Any, version: int) -> None:
    message = solara.use_reactive("")
    n = solara.use_reactive(3)
    playing = solara.use_reactive(False)
    shocks = library_shocks(ex.model.world.base_year)
    library = solara.use_reactive(shocks[0] if shocks else "")
    kind = solara.use_reactive("export_ban")
    exporter = solara.use_reactive(ex.restricting_country())
    shock_commodity = solara.use_reactive(commodity)
    destinations = solara.use_reactive("")
    share = solara.use_reactive("0.25")
    duration = solara.use_reactive(6)
    facility = solara.use_reactive("")
    news = solara.use_reactive("")
    rewind_to = solara.use_reactive(ex.timeline().start)

    def play(cancel: threading.Event) -> None:
        while playing.value and not cancel.wait(PLAY_INTERVAL_S):
            if ex.step(1) == 0:
                playing.set(False)
            refresh()

    solara.use_thread(play, dependencies=[playing.value])

    def composed() -> None:
        dest = [d.strip() for d in destinations.value.split(",") if d.strip()]
        spec = compose_shock(
            kind.value,
            month=ex.next_month,
            duration_months=duration.value or None,
            exporter=exporter.value.strip(),
            commodity=shock_commodity.value,
            destinations=dest,
            share=float(share.value or 0),
            facility=facility.value.strip(),
            factor=float(share.value or 1),
        )
        ex.inject(spec)

    # inputs and buttons in separate rows: a Vuetify input's details line overlaps its neighbour
    with solara.Card("Facilitator: the clock"):
        with solara.Row():
            solara.Button(
                "Step 1 month",
                on_click=lambda: _try(message, lambda: ex.step(1), refresh),
                disabled=ex.finished,
            )
            solara.Button(
                f"Step {n.value} months",
                on_click=lambda: _try(message, lambda: ex.step(n.value), refresh),
                disabled=ex.finished,
            )
            solara.Button(
                "Pause" if playing.value else "Play",
                on_click=lambda: playing.set(not playing.value),
                color="primary",
            )
            solara.Button("Checkpoint", on_click=lambda: _try(message, lambda: ex.checkpoint(), refresh))
            solara.Button(
                "Rewind", on_click=lambda: _try(message, lambda: ex.rewind(rewind_to.value.strip()), refresh)
            )
        with solara.Columns([1, 1]):
            solara.InputInt("Months per multi-step", value=n)
            solara.InputText("Rewind to month (YYYY-MM)", value=rewind_to)
    with solara.Card(f"Facilitator: inject a shock from {L.month(ex.next_month)}"):
        _PlainSelect("Shock library", shocks, library, library_label)
        solara.Button(
            "Inject library shock",
            on_click=lambda: _try(message, lambda: ex.inject_library(library.value), refresh),
        )
        _PlainSelect("Compose a shock", list(SHOCK_KINDS), kind, SHOCK_KINDS.get)
        with solara.Columns([1, 1, 1]):
            if kind.value in ("export_ban", "export_licensing"):
                solara.InputText("Exporter (country code)", value=exporter)
                solara.InputText(
                    "Destinations (codes or blocs, comma-separated; empty = all)", value=destinations
                )
            if kind.value == "facility_outage":
                solara.InputText("Facility id", value=facility)
            if kind.value != "facility_outage":
                _PlainSelect("Commodity", ex.commodities(), shock_commodity, L.commodity)
            if kind.value == "export_licensing":
                solara.InputText("Share of licences approved (0-1)", value=share)
            if kind.value == "facility_outage":
                solara.InputText("Capacity left (0 = shut)", value=share)
            if kind.value == "demand_surge":
                solara.InputText("Demand factor (1.5 = +50%)", value=share)
            solara.InputInt("Duration in months (0 = open-ended)", value=duration)
        solara.Button("Inject shock", on_click=lambda: _try(message, composed, refresh), color="error")
        solara.InputText("News to the teams", value=news)
        solara.Button("Post news", on_click=lambda: _try(message, lambda: ex.post_news(news.value), refresh))
    if message.value:
        solara.Error(message.value)


@solara.component
def Team(ex: Exercise, team: str, refresh: Any, version: int) -> None:
    message = solara.use_reactive("")
    choice = solara.use_reactive(next(iter(RESPONSES)))
    text = solara.use_reactive(
        yaml.safe_dump(
            response_template(choice.value, team, ex.members[team], ex.users(team, "ndfeb_magnet")),
            sort_keys=False,
        )
    )

    def pick(label: str) -> None:
        choice.set(label)
        text.set(
            yaml.safe_dump(
                response_template(label, team, ex.members[team], ex.users(team, "ndfeb_magnet")),
                sort_keys=False,
            )
        )

    def submit() -> None:
        spec = yaml.safe_load(text.value)
        if not isinstance(spec, dict):
            raise DataError("the response: expected a mapping of parameters")
        ex.respond(team, spec)

    def submit_safely() -> None:
        try:
            _try(message, submit, refresh)
        except yaml.YAMLError as exc:
            message.set(f"the response is not valid YAML: {str(exc).splitlines()[0]}")

    ledger = ex.ledger_view().loc[team]
    with solara.Card(f"Team {L.country(team)}: respond from {L.month(ex.next_month)}"):
        _para(
            f"Budget USD {ledger['budget'] / 1e9:,.2f} bn; fiscal cost of your instruments so far "
            f"USD {ledger['spent'] / 1e9:,.3f} bn (negative: receipts); left USD {ledger['left'] / 1e9:,.2f} bn."
        )
        solara.Select("Instrument", values=list(RESPONSES), value=choice.value, on_value=pick)
        solara.InputTextArea("Parameters (edit, then submit)", value=text, rows=9)
        solara.Button("Submit response", on_click=submit_safely, color="primary")
    if message.value:
        solara.Error(message.value)


@solara.component
def Views(ex: Exercise, role: str, commodity: solara.Reactive, refresh: Any, version: int) -> None:
    with ex.lock:  # not while another browser steps or rebuilds the model
        last = ex.months()[-1] if ex.model.state.t else ex.next_month
        focus = role if role in ex.teams else ex.teams[0]
        price = ex.series("buyer_price", commodity.value, focus)
        shown = L.usd_per_t(price.iloc[-1]) if len(price) else "–"
        with solara.Card("Prices"):  # in a card like the views below: the same margins
            _PlainSelect("Commodity shown", ex.commodities(), commodity, L.commodity)
            solara.Text(
                f"{L.commodity(commodity.value)}: price buyers pay in {L.country(focus)}, {L.month(last)}: {shown}",
                classes=["price-summary"],
            )
            solara.FigureMatplotlib(price_figure(ex, commodity.value), format="png")
        with solara.Columns([1, 1]):
            with solara.Card("Shortages and stock cover, last month played"):
                short = ex.shortage_view(commodity.value)
                _table(
                    ["country", "demand left unmet", "stock cover, months of demand"],
                    [[L.country(t), L.share(r.unmet), _cover(r.cover_months)] for t, r in short.iterrows()],
                )
            with solara.Card("Fiscal ledger (USD bn; negative: receipts)"):
                led = ex.ledger_view()
                _table(
                    ["team", "spent", "budget", "left"],
                    [
                        [
                            L.country(t),
                            f"{r.spent / 1e9:,.3f}",
                            f"{r.budget / 1e9:,.2f}",
                            f"{r.left / 1e9:,.2f}",
                        ]
                        for t, r in led.iterrows()
                    ],
                )
        with solara.Columns([1, 1]):
            solara.FigureMatplotlib(dependency_figure(ex), format="png")
            with solara.Card("Event log"):
                events = ex.event_log()
                if not events:
                    solara.Text("No shock, response or news yet.")
                for e in events:
                    who = (
                        "Facilitator"
                        if e.who == "facilitator"
                        else ("News" if e.who == "news" else L.country(e.who))
                    )
                    _para(e.text, f"{L.month(e.month)}, {who}:")
        if ex.branches:
            with solara.Card("Branches side by side"):
                solara.FigureMatplotlib(branch_figure(ex, commodity.value, focus), format="png")
                with solara.Row():
                    for b in ex.branches[-4:]:
                        solara.Button(
                            f"Continue {b.label}", on_click=lambda b=b: (ex.restore(b), refresh()), text=True
                        )


@solara.component
def Page() -> None:
    router = solara.use_router()
    query = dict(p.split("=", 1) for p in router.search.split("&") if "=" in p) if router.search else {}
    key = solara.use_reactive(query.get("exercise", ""))
    role = solara.use_reactive(query.get("role", "facilitator"))
    tick = solara.use_reactive(0)
    ex = hall().get(key.value)
    _ = tick.value  # read, so that a change of the exercise (tick) redraws the page
    # the parts below take ex.version as a prop: a component whose props are unchanged is not
    # redrawn, and the exercise is the same object before and after a step
    commodity = solara.use_reactive(ex.final_commodity() if ex is not None else "ndfeb_magnet")

    report = solara.use_reactive(None)  # the last after-action report made here (bytes)

    def refresh() -> None:
        tick.set(tick.value + 1)
        report.set(None)  # it described the exercise before this change

    def make_report() -> None:
        from critmin.exercise.report import after_action_html

        report.set(after_action_html(ex, commodity.value).encode())

    def poll(cancel: threading.Event) -> None:  # changes made in another browser
        seen = ex.version if ex is not None else -1
        while ex is not None and not cancel.wait(POLL_S):
            if ex.version != seen:
                seen = ex.version
                tick.set(tick.value + 1)

    solara.use_thread(poll, dependencies=[key.value])
    solara.Title("critmin crisis exercise")
    solara.Style(
        ".price-summary{font-size:1.15em;font-weight:600;margin:.4em 0}"
        ".cm-table{border-collapse:collapse}.cm-table td,.cm-table th{border-bottom:1px solid #ddd;"
        "padding:.2em .6em;text-align:left}"
        ".cm-download{margin-right:1.5em;font-weight:600;color:#1565c0;text-decoration:underline}"
    )

    def join(k: str, r: str) -> None:
        if hall().get(k) is None:
            raise DataError(f"no exercise with code {k!r} on this server")
        key.set(k)
        role.set(r)

    if ex is None:
        Lobby(on_join=join)
        return
    with ex.lock:
        tl = ex.timeline()
        roles = ["facilitator", *ex.teams]
        with solara.Card(f"critmin crisis exercise — code {key.value}"):
            _para(
                f"World {tl.world}, seed {tl.seed}. Opened {L.month(tl.start)}; next month to play: "
                f"{L.month(ex.next_month)} ({ex.played} played). Teams join with the code {key.value}.",
            )
            _PlainSelect("You are", roles, role, _role_words)
            with solara.Row():
                _download(
                    "Download timeline", f"{tl.name}-timeline.yaml", ex.timeline_yaml().encode(), "text/yaml"
                )
                if role.value == "facilitator":
                    if report.value is None:
                        solara.Button(
                            "Prepare after-action report", on_click=lambda: make_report(), text=True
                        )
                    else:
                        _download("Download after-action report", "report.html", report.value, "text/html")
            if ex.news:
                solara.Info(f"News, {L.month(ex.news[-1]['month'])}: {ex.news[-1]['text']}")
        if role.value == "facilitator":
            Facilitator(ex, commodity.value, refresh, ex.version)
        elif role.value in ex.teams:
            Team(ex, role.value, refresh, ex.version)
        Views(ex, role.value, commodity, refresh, ex.version)


def png(fig: Any) -> bytes:
    """A figure as PNG bytes (docs and tests)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
