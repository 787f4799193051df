"""The crisis exercise without a browser: step, inject, respond, rewind, export the timeline, and
the timeline replayed by `critmin run` (critmin.exercise.controller, .timeline)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from critmin.exercise.catalogue import RESPONSES, response_template
from critmin.exercise.controller import Exercise
from critmin.exercise.timeline import MAX_BYTES, loads
from critmin.sim.world import DataError

MAGNET = "ndfeb_magnet"
BAN = {"type": "export_cap", "country": "CHN", "commodity": MAGNET, "max_tonnes_per_month": 0}
# a team's stockpile release: two months of Japan's magnet use held from the start, released
# from the month it starts (trigger at the pre-crisis price, any unserved order)
RELEASE = {
    "type": "stockpile",
    "country": "JPN",
    "commodity": MAGNET,
    "target_months": 2,
    "initial_months": 2,
    "release_price_ratio": 1.0,
    "release_unmet_share": 0.0,
    "release_share_per_month": 0.5,
}


def _open(**kw) -> Exercise:
    return Exercise(world="ree_2024_short", start="2024-07", **kw)


@pytest.fixture(scope="module")
def played() -> Exercise:
    """Opened Jul 2024, three months played, magnet export ban from Oct, Japan releases its
    stockpile from Nov, three more months."""
    ex = _open(name="played")
    ex.step(3)
    ex.inject(BAN)
    ex.step(1)
    ex.respond("JPN", RELEASE)
    ex.step(3)
    return ex


def test_open_and_step_move_the_clock():
    ex = _open()
    assert (ex.next_month, ex.played) == ("2024-07", 0)  # Jan-Jun 2024 are warm-up
    assert ex.step(3) == 3
    assert (ex.next_month, ex.played, ex.timeline().played_until) == ("2024-10", 3, "2024-09")
    assert ex.step(100) == 15 and ex.finished  # the short world ends in Dec 2025
    assert ex.step(1) == 0
    with pytest.raises(DataError, match="last month"):
        ex.inject(BAN)


def test_decisions_take_effect_from_the_next_month(played):
    ban, release = played.decisions
    assert (ban.month, ban.by, ban.kind) == ("2024-10", "facilitator", "event")
    assert (release.month, release.by, release.kind) == ("2024-11", "JPN", "instrument")
    prices = played.price_view(MAGNET)
    # the ban: prices outside China climb month after month; China's own sellers' price dips in
    # the ban's first month, then its holders store what they cannot export, expecting the
    # premium abroad (sim/prices/anchors.py: storage_anchor), so it stays near its pre-ban level: a wedge
    assert prices["DEU"]["2025-01"] > 1.2 * prices["DEU"]["2024-09"]
    assert prices["CHN (inside)"]["2024-10"] < prices["CHN (inside)"]["2024-09"]
    assert abs(prices["CHN (inside)"]["2025-01"] / prices["CHN (inside)"]["2024-09"] - 1) < 0.05
    assert prices["DEU"]["2025-01"] > 1.4 * prices["CHN (inside)"]["2025-01"]


def test_injecting_leaves_the_months_played_unchanged():
    """Rebuild-and-replay: the months shown before a decision are bit for bit the same after it,
    also for a response that needs new stockpile nodes."""
    ex = _open()
    ex.step(4)
    before = ex.model.recorder.data["price"][: ex.model.state.t].copy()
    ex.inject(BAN)
    ex.respond("JPN", RELEASE)
    after = ex.model.recorder.data["price"][: ex.model.state.t]
    assert np.array_equal(before, after, equal_nan=True)
    ex.step(1)  # and the month after differs: the decisions act
    assert not np.array_equal(ex.model.recorder.data["price"][4], ex.model.recorder.data["price"][3])


def test_the_stockpile_release_relieves_japan_against_the_shock_alone(played):
    base = played.without_responses()
    assert [d.by for d in base.decisions] == ["facilitator"]
    with_release = played.shortage_view(MAGNET).loc["JPN"]
    without = base.shortage_view(MAGNET).loc["JPN"]
    assert with_release["unmet"] < without["unmet"] - 0.05
    assert (
        played.series("buyer_price", MAGNET, "JPN")["2025-01"]
        < base.series("buyer_price", MAGNET, "JPN")["2025-01"]
    )
    # Japan's buyers draw less on the world market: the others' shortfall is no worse
    assert played.shortage_view(MAGNET).loc["DEU", "unmet"] <= base.shortage_view(MAGNET).loc["DEU", "unmet"]
    # releases are sold: Japan's treasury receives money (negative cost)
    assert played.ledger_view().loc["JPN", "spent"] < 0
    assert played.ledger_view().loc["USA", "spent"] == 0


def test_views_read_plainly(played):
    log = played.event_log()
    assert [e.who for e in log] == ["facilitator", "JPN"]
    assert "China" in log[0].text and "NdFeB magnets" in log[0].text and "Oct 2024" in log[0].text
    dep = played.dependency_view()
    assert list(dep["stage"]) == ["mine", "refining", "metal", "alloy", "magnet"][: len(dep)]
    assert dep.loc[dep["stage"] == "refining", "supplier"].item() == "CHN"
    assert dep.loc[dep["stage"] == "refining", "above_60"].item()
    assert played.restricting_country() == "CHN"


def test_bad_decisions_are_refused_naming_them_and_change_nothing():
    ex = _open()
    ex.step(1)
    version, month = ex.version, ex.next_month
    with pytest.raises(DataError, match="unobtainium"):
        ex.inject({**BAN, "commodity": "unobtainium"})
    with pytest.raises(DataError, match="expected one of"):
        ex.inject({"type": "os.system"})
    with pytest.raises(DataError, match="unknown team"):
        ex.respond("FRA", RELEASE)
    with pytest.raises(DataError, match="teams respond with instruments"):
        ex.respond("JPN", BAN)
    with pytest.raises(DataError, match=r"decision \(JPN, 2024-08, stockpile\).*target_months"):
        ex.respond("JPN", {**RELEASE, "target_months": -1})
    with pytest.raises(DataError, match="code to run"):
        ex.inject({**BAN, "_target_": "os.system"})
    assert (ex.version, ex.next_month, ex.decisions) == (version, month, [])


def test_rewind_keeps_the_branch_and_tries_another_response(played):
    ex = Exercise(played.timeline())  # a copy: rebuilt from the timeline, at the same month
    assert np.array_equal(
        ex.model.recorder.data["price"][: ex.model.state.t],
        played.model.recorder.data["price"][: played.model.state.t],
        equal_nan=True,
    )
    ex.rewind("2024-11")
    assert ex.next_month == "2024-11" and [d.by for d in ex.decisions] == ["facilitator"]
    assert ex.branches[-1].label.endswith("(before rewind to Nov 2024)")
    ex.respond("JPN", {**RELEASE, "release_share_per_month": 0.1})  # a slower release
    ex.step(3)
    both = ex.branch_prices(MAGNET, "JPN")
    assert list(both.columns) == [ex.branches[-1].label, "current"]
    assert both.loc["2024-10"].nunique() == 1  # same past
    assert both.loc["2025-01"].iloc[0] != both.loc["2025-01"].iloc[1]  # another response, another price
    with pytest.raises(DataError, match="rewind: expected a month"):
        ex.rewind("2024-03")  # before the exercise opened


def test_library_shocks_keep_their_length_from_the_next_month():
    ex = _open()
    ex.step(3)
    (d,) = ex.inject_library("magnet_ban_demo")  # Apr-Oct 2025 in the file: six months
    assert (d.month, d.spec["end"]) == ("2024-10", "2025-04")
    with pytest.raises(DataError, match="unknown shock"):
        ex.inject_library("no_such_shock")


def test_timeline_round_trip_and_validation(played):
    text = played.timeline_yaml()
    tl = loads(text)
    assert tl.as_dict() == played.timeline().as_dict()
    raw = yaml.safe_load(text)
    bad = [
        ({**raw, "hydra": {}}, "unknown key"),
        ({**raw, "critmin_exercise": 2}, "critmin_exercise"),
        ({**raw, "name": "../x"}, "plain name"),
        (
            {**raw, "decisions": [{**raw["decisions"][0], "spec": {"type": "x", "_target_": "os.system"}}]},
            "code to run",
        ),
        ({**raw, "decisions": [{**raw["decisions"][0], "month": "2026-01"}]}, "after the last month played"),
        ({**raw, "decisions": [{**raw["decisions"][0], "by": "CHN"}]}, "facilitator"),
        ({**raw, "teams": ["usa"]}, "country codes"),
    ]
    for doc, message in bad:
        with pytest.raises(DataError, match=message):
            loads(yaml.safe_dump(doc))
    with pytest.raises(DataError, match="at most"):
        loads("#" * (MAX_BYTES + 1))
    with pytest.raises(DataError, match=r"not valid YAML|expected a mapping"):
        loads("!!python/object/apply:os.system ['echo x']")


def test_a_decision_at_month_m_equals_a_batch_entry_starting_at_m(played, tmp_path):
    """A shock file written by hand for a batch run, its entries starting at the decisions'
    months, gives the exercise's prices bit for bit."""
    from critmin.sim.run import load_config, run_model

    (tmp_path / "shock").mkdir()
    hand = {
        "name": "hand_written",
        "events": [{**BAN, "start": "2024-10"}],
        "instruments": [{**RELEASE, "name": "jogmec_release", "start": "2024-11"}],
    }
    (tmp_path / "shock" / "hand_written.yaml").write_text(yaml.safe_dump(hand))
    cfg = load_config(
        ["scenario=ree_2024_short", "shock=hand_written", f"hydra.searchpath=[file://{tmp_path}]"]
    )
    batch = run_model(cfg, keep_model=True).model.recorder.data["price"]
    t = played.model.state.t
    assert np.array_equal(batch[:t], played.model.recorder.data["price"][:t], equal_nan=True)


def test_critmin_run_replays_the_timeline_to_identical_prices(played, tmp_path):
    path = tmp_path / "timeline.yaml"
    path.write_text(played.timeline_yaml())
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "run", "--timeline", str(path)]
    cmd += [f"output_root={tmp_path / 'out'}", "experiment.plots=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (run,) = list((tmp_path / "out" / "default").iterdir())
    assert "exercise_played" in run.name
    batch = pd.read_parquet(run / "timeseries.parquet")
    mine = played.model.recorder.timeseries()
    last = mine["month"].max()

    def prices(ts: pd.DataFrame) -> pd.Series:
        sel = ts[ts["variable"].isin(["price", "buyer_price"]) & (ts["month"] <= last)]
        return sel.set_index(["month", "commodity", "region", "variable"])["value"].sort_index()

    a, b = prices(mine), prices(batch)
    assert len(a) > 1000 and a.index.equals(b.index)
    assert np.array_equal(a.to_numpy(), b.to_numpy())  # bit for bit


def test_critmin_run_refuses_a_bad_timeline(tmp_path):
    path = tmp_path / "timeline.yaml"
    path.write_text("critmin_exercise: 1\nworld: ree_2024_short\nseed: -1\n")
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "run", "--timeline", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "seed" in done.stderr


# ---------------------------------------------------------------------- the server's binding
def test_the_server_refuses_a_non_loopback_address_without_a_token():
    from critmin.exercise.server import check_binding, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "a-long-enough-secret")
    with pytest.raises(DataError, match="needs --token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(DataError, match="16 characters"):
        check_binding("0.0.0.0", "short")
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "exercise", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs --token" in done.stderr and "open http" not in done.stdout


def _call(gate, scope: dict) -> list[dict]:
    import asyncio

    sent: list[dict] = []
    reached: list[dict] = []

    async def app(scope, receive, send):
        reached.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    gate.app = app
    asyncio.run(gate(scope, receive, send))
    return sent


def test_the_token_gate_lets_only_the_token_in():
    from critmin.exercise.server import COOKIE, TokenGate

    token = "s3cret-s3cret-s3cret"
    gate = TokenGate(None, token)
    http = {"type": "http", "path": "/", "headers": []}
    assert _call(gate, {**http, "query_string": b""})[0]["status"] == 403
    assert _call(gate, {**http, "query_string": b"token=wrong-wrong-wrong"})[0]["status"] == 403
    ok = _call(gate, {**http, "query_string": f"exercise=ab12&token={token}".encode()})
    assert ok[0]["status"] == 200 and ok[1]["body"] == b"page"
    cookie = dict(ok[0]["headers"])[b"set-cookie"].decode()
    assert cookie.startswith(f"{COOKIE}={token}") and "HttpOnly" in cookie
    # the page's assets and websocket carry the cookie
    with_cookie = {**http, "query_string": b"", "headers": [(b"cookie", f"{COOKIE}={token}".encode())]}
    assert _call(gate, with_cookie)[0]["status"] == 200
    refused = _call(gate, {"type": "websocket", "path": "/jupyter", "query_string": b"", "headers": []})
    assert refused == [{"type": "websocket.close", "code": 1008}]


def test_the_app_forms_inject_and_respond_without_a_browser():
    """The facilitator's composed shock and a team's template go through the same checks."""
    import ipyvuetify as v
    import solara

    from critmin.exercise import app

    ex = _open()
    ex.step(2)
    solara.render(app.Facilitator(ex, MAGNET, lambda: None, ex.version), handle_error=False)[1].find(
        v.Btn, children=["Inject shock"]
    ).widget.click()
    solara.render(app.Team(ex, "KOR", lambda: None, ex.version), handle_error=False)[1].find(
        v.Btn, children=["Submit response"]
    ).widget.click()
    (ban, release) = ex.decisions
    assert (ban.spec["type"], ban.spec["country"], ban.spec["end"]) == ("export_ban", "CHN", "2025-03")
    assert (release.by, release.spec["type"], release.spec["country"]) == ("KOR", "stockpile", "KOR")


def test_the_lobby_opens_an_exercise_in_the_chosen_world_and_month():
    import ipyvuetify as v
    import solara

    from critmin.exercise import app
    from critmin.exercise.hall import Hall

    hall = Hall({"world": "ree_2024_short", "start": "2024-10", "seed": 3})
    app.configure(hall)
    joined = []
    rc = solara.render(app.Lobby(on_join=lambda key, role: joined.append((key, role))), handle_error=False)[1]
    rc.find(v.Btn, children=["New exercise"]).widget.click()
    ((key, role),) = joined
    ex = hall.get(key)
    assert role == "facilitator" and ex.next_month == "2024-10" and ex.timeline().seed == 3
    assert "ree_2024" in app.worlds() and hall.get("../etc") is None


def test_a_bloc_team_acts_for_its_members_and_its_views_add_them_up():
    """The EU as one team (issue 19: teams per government or bloc): its members are the EU states
    of the world (experiment.metrics.regions); each response template acts for all of them; its
    views add up their tonnes and ledgers and weight their prices by demand."""
    ex = _open(name="bloc", teams=["USA", "EU"])
    eu = ex.members["EU"]
    assert {"DEU", "FRA", "ITA"} <= set(eu) and "USA" not in eu and ex.members["USA"] == ["USA"]

    def words(node):
        if isinstance(node, dict):
            return {w for v in node.values() for w in words(v)}
        if isinstance(node, list):
            return {w for v in node for w in words(v)}
        return {node} if isinstance(node, str) else set()

    for label in RESPONSES:
        spec = response_template(label, "EU", eu)
        assert "EU" not in words(spec) and set(eu) & words(spec)  # the registry knows countries
    ex.step(3)
    ex.inject(BAN)
    ex.step(1)
    release = response_template("Stockpile release", "EU", eu, ex.users("EU", MAGNET))
    assert {h["country"] for h in release["holders"]} == set(ex.users("EU", MAGNET)) and len(
        release["holders"]
    ) > 1
    ex.respond("EU", {**release, "release_share_per_month": 0.5})
    floor = response_template("Price floor", "EU", eu)
    ex.respond("EU", floor)
    ex.step(3)
    data, t = ex.model.recorder.data, ex.model.state.t
    members_demand = sum(ex.series("demand", MAGNET, c) for c in eu)
    np.testing.assert_allclose(ex.series("demand", MAGNET, "EU"), members_demand)
    shortage = ex.shortage_view(MAGNET).loc["EU"]
    unmet = sum(data["unmet_demand"][t - 1, ex._market(MAGNET, c)] for c in eu)
    assert shortage["unmet"] == pytest.approx(unmet / members_demand.iloc[-1])
    prices = pd.DataFrame({c: ex.series("buyer_price", MAGNET, c) for c in eu})
    weights = pd.DataFrame({c: ex.series("demand", MAGNET, c) for c in eu})
    expected = (prices * weights).sum(axis=1) / weights.where(prices.notna(), 0).sum(axis=1)
    np.testing.assert_allclose(ex.series("buyer_price", MAGNET, "EU"), expected)
    spent = sum(v for c in eu for _, _, v in ex.model.governments[c].ledger)
    assert ex.ledger_view().loc["EU", "spent"] == pytest.approx(spent)
    assert spent != 0  # the joint stockpile was bought by the members' governments
    with pytest.raises(DataError, match="neither a country of the world nor a group"):
        _open(teams=["USA", "ASEAN"])


def test_the_readme_and_the_guide_show_what_the_server_prints():
    from pathlib import Path

    from critmin.exercise.server import banner

    root = Path(__file__).resolve().parents[1]
    line = banner("http://127.0.0.1:8765/?exercise=3f9a1c&role=facilitator")
    assert line in (root / "README.md").read_text()
    assert line in (root / "docs" / "exercise.md").read_text()
