"""The crisis exercise without a browser: an :class:`Exercise` owns its model and its timeline.

The facilitator steps the world month by month and injects shocks; teams respond with
instruments; any month can be checkpointed and rewound to. The exercise's state is its
:class:`~critmin.exercise.timeline.Timeline` (world, seed, every decision with its month) plus
the model built from it: there is no module-level model.

**How a decision enters the running model.** A decision taken while month *m* is the next to
play becomes a shock-file entry with ``start: m`` (facilitator shocks and team responses alike
take effect in the next month played). The exercise then rebuilds its model from the timeline
and replays the months already played: entries are inactive before their start, so the replayed
months are bit-for-bit the months shown before (the stockpile nodes a response needs are
compiled at build time, and a stockpile's first fill sits unused until its start; checked in
tests/test_exercise.py). Rebuild-and-replay makes every decision validated exactly as a config
file (the same registry and :class:`~critmin.sim.spec.Spec`, through a composed config), lets
responses need new stockpile nodes mid-run, and makes ``critmin run --timeline`` reproduce the
exercise by construction. A replay costs a model build plus one step per month played
(~0.3 s + 5-10 ms a month for the REE world); a plain step costs one month.

Rewinding to month *m* keeps the decisions taken before *m* and replays to it; the branch left
behind is kept (:attr:`Exercise.branches`) to compare side by side.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from critmin.exercise.timeline import (
    FACILITATOR,
    Decision,
    Timeline,
    add_months,
    check_spec,
    month_text,
    months_between,
)
from critmin.policies.base import REGISTRY
from critmin.sim.compose import config_dir, load_config
from critmin.sim.config import check_folder_name, parse_month
from critmin.sim.run import new_model
from critmin.sim.world import BLOCS, DataError

log = logging.getLogger("critmin")
DEPENDENCY_LINES = (0.6, 0.5)  # the Alliance's 2030 target and ambition
ALLIED_BLOCS = ("g7", "partner")
LIBRARY_MONTH_KEYS = ("start", "end")  # shifted when a library shock is injected at another month


@dataclass
class Branch:
    """A saved line of play: its timeline and the recorded prices, buyer prices, unmet demand
    and stocks up to the month it was saved."""

    label: str
    timeline: Timeline
    months: list[str]
    data: dict[str, np.ndarray]  # variable -> [months, markets]


@dataclass
class Event:
    """One line of the event log."""

    month: str
    who: str
    text: str


@dataclass
class _Built:
    model: Any
    cfg: Any
    first_month: str  # the scenario's first month (index 0 of the model)


def _library_shock(name: str) -> dict[str, Any]:
    check_folder_name(name, "shock", "exercise")
    path = config_dir() / "shock" / f"{name}.yaml"
    if not path.is_file():
        raise DataError(f"shock library: unknown shock {name!r}; expected one of {library_shocks()}")
    return yaml.safe_load(path.read_text())


def library_shocks(base_year: int | None = None) -> list[str]:
    """The packaged shock files (configs/shock), except ``none``; with ``base_year``, those
    written for worlds of that year (their ``base_years``, or any when they name none)."""
    out = []
    for path in sorted((config_dir() / "shock").glob("*.yaml")):
        if path.stem == "none":
            continue
        years = (yaml.safe_load(path.read_text()) or {}).get("base_years") or []
        if base_year is None or not years or base_year in years:
            out.append(path.stem)
    return out


def _shift_months(node: Any, months: int) -> Any:
    """A copy of a shock entry with its start, end and schedule months (``from``) moved."""
    if isinstance(node, dict):
        return {
            k: add_months(v, months)
            if k in (*LIBRARY_MONTH_KEYS, "from") and isinstance(v, str)
            else _shift_months(v, months)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_shift_months(v, months) for v in node]
    return node


PRICE_VARIABLES = {"price", "buyer_price"}


def team_members(team: str, built: _Built) -> list[str]:
    """The countries a team speaks for: a country of the world, or a group of
    ``experiment.metrics.regions`` (e.g. EU: its member states in this world; groups may name
    blocs)."""
    net = built.model.net
    if team in net.countries:
        return [team]
    groups = dict(built.cfg.experiment.metrics.get("regions", {}) or {})
    if team in groups:
        members: list[str] = []
        for item in groups[team]:
            if item in BLOCS:
                members += [c for c, b in zip(net.countries, net.blocs) if b == item]
            elif item in net.countries:
                members.append(item)
        if members:
            return list(dict.fromkeys(members))
    raise DataError(
        f"exercise teams: {team!r} is neither a country of the world nor a group of "
        f"experiment.metrics.regions with countries in it; expected one of {list(net.countries)} "
        f"or {sorted(groups)}"
    )


class Exercise:
    """A crisis exercise: a world stepped month by month with decisions injected as it runs.

    Thread-safe: a lock guards the model, so several browsers (facilitator and teams) can act on
    one exercise; :attr:`version` grows with every change, for views to notice.
    """

    def __init__(self, timeline: Timeline | None = None, **settings: Any) -> None:
        tl = copy.deepcopy(timeline) if timeline is not None else Timeline(**settings)
        self.lock = threading.RLock()
        self.version = 0
        self.branches: list[Branch] = []
        self.news: list[dict[str, str]] = list(tl.news)
        self._tl = tl
        built = self._build(tl.decisions)
        self.first_month = built.first_month
        self.open_index = months_between(self.first_month, tl.start)
        if self.open_index < 0:
            raise DataError(
                f"exercise start {tl.start}: expected a month from the world's start {self.first_month}"
            )
        if self.open_index >= built.model.n_steps:
            raise DataError(
                f"exercise start {tl.start}: after the world's last month {self.last_month(built)}"
            )
        self.members = {team: team_members(team, built) for team in tl.teams}
        target = self.open_index
        if tl.played_until is not None:
            target = months_between(self.first_month, tl.played_until) + 1
        self._built = built
        self._replay_to(built, target)
        self._sync_played()

    # ------------------------------------------------------------------ building
    def _build(self, decisions: list[Decision]) -> _Built:
        """Compose the run config of ``decisions`` (as ``critmin run --timeline`` does) and build
        its model; validation errors name the decision."""
        tl = copy.copy(self._tl)
        tl.decisions = decisions
        with tempfile.TemporaryDirectory(prefix="critmin-exercise-") as tmp:
            folder = tl.write_config_dir(Path(tmp))
            overrides = tl.overrides(folder)
            if folder is not None:
                overrides.append(f"hydra.searchpath=[file://{folder}]")
            try:
                cfg = load_config(overrides)
                model = new_model(cfg)
            except DataError as exc:
                raise DataError(_name_decision(str(exc), tl)) from None
        for name in ("mesa", "MESA"):  # Mesa 3 logs every step at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        return _Built(model, cfg, month_text(parse_month(cfg.scenario.start, "scenario.start")))

    @staticmethod
    def _replay_to(built: _Built, t: int) -> None:
        model = built.model
        if t > model.n_steps:
            raise DataError(f"cannot play to month index {t}: the world ends after {model.n_steps} months")
        while model.state.t < t:
            model.step()

    def _sync_played(self) -> None:
        t = self.model.state.t
        self._tl.played_until = self.month_at(t - 1) if t > self.open_index else None
        self.version += 1

    @staticmethod
    def last_month(built: _Built) -> str:
        return add_months(built.first_month, built.model.n_steps - 1)

    # ------------------------------------------------------------------ reading the clock
    @property
    def model(self) -> Any:
        return self._built.model

    @property
    def teams(self) -> list[str]:
        return list(self._tl.teams)

    @property
    def decisions(self) -> list[Decision]:
        return list(self._tl.decisions)

    def month_at(self, t: int) -> str:
        return add_months(self.first_month, t)

    @property
    def next_month(self) -> str:
        """The month the next step plays (decisions now take effect in it)."""
        return self.month_at(self.model.state.t)

    @property
    def played(self) -> int:
        """Months played since the exercise opened."""
        return self.model.state.t - self.open_index

    @property
    def finished(self) -> bool:
        return self.model.state.t >= self.model.n_steps

    # ------------------------------------------------------------------ the facilitator's controls
    def step(self, n: int = 1) -> int:
        """Play ``n`` months (fewer at the end of the world); returns the months played."""
        if n < 0:
            raise ValueError("step: expected n >= 0")
        with self.lock:
            done = 0
            while done < n and not self.finished:
                self.model.step()
                done += 1
            self._sync_played()
            return done

    def _add(self, new: list[Decision]) -> list[Decision]:
        """Rebuild with ``new`` decisions and replay to the current month; on bad input the
        exercise is unchanged and the error names the decision."""
        with self.lock:
            if self.finished:
                raise DataError("the exercise has reached the world's last month; rewind to decide again")
            t = self.model.state.t
            built = self._build([*self._tl.decisions, *new])
            self._replay_to(built, t)
            self._built = built
            self._tl.decisions.extend(new)
            self._sync_played()
            return new

    def _decision(self, spec: dict[str, Any], by: str, kind: str | None = None) -> Decision:
        if not isinstance(spec, dict) or spec.get("type") not in REGISTRY:
            known = sorted(REGISTRY)
            raise DataError(
                f"decision by {by}: type: expected one of {known}, got {spec.get('type') if isinstance(spec, dict) else spec!r}"
            )
        kind = kind or REGISTRY[spec["type"]].kind
        spec = check_spec(copy.deepcopy(spec), f"decision by {by}")
        if kind == "instrument" and "name" not in spec:  # stockpile nodes are named by it
            n = sum(1 for d in self._tl.decisions if d.by == by) + 1
            spec["name"] = f"{by}_{spec['type']}_{n}"
        return Decision(self.next_month, by, kind, spec)

    def inject(self, spec: dict[str, Any]) -> Decision:
        """The facilitator injects a shock (a shock-file event or instrument) from the next
        month; validated as a shock file's entry would be."""
        return self._add([self._decision(spec, FACILITATOR)])[0]

    def inject_library(self, name: str) -> list[Decision]:
        """Inject a shock of the library (configs/shock/NAME.yaml) with its first start moved to
        the next month; its durations and schedules keep their length."""
        raw = _library_shock(name)
        years, base = raw.get("base_years") or [], self.model.world.base_year
        if years and base not in years:
            raise DataError(
                f"shock library: {name!r} is written for worlds of {years}; this exercise's world is "
                f"of {base}; expected one of {library_shocks(base)}"
            )
        items = [("event", e) for e in raw.get("events") or []] + [
            ("instrument", i) for i in raw.get("instruments") or []
        ]
        if not items:
            raise DataError(f"shock library: {name!r} has no events or instruments")
        first = min(e.get("start", self.first_month) for _, e in items)
        shift = months_between(first, self.next_month)
        out = []
        for kind, entry in items:
            spec = _shift_months(entry, shift)
            month = spec.pop("start", None)
            d = self._decision(spec, FACILITATOR, kind)
            if month is not None:
                d.month = month
            out.append(d)
        return self._add(out)

    def respond(self, team: str, spec: dict[str, Any]) -> Decision:
        """A team's response (an instrument of the registry) from the next month."""
        if team not in self._tl.teams:
            raise DataError(f"respond: unknown team {team!r}; expected one of {self._tl.teams}")
        if (
            isinstance(spec, dict)
            and spec.get("type") in REGISTRY
            and REGISTRY[spec["type"]].kind != "instrument"
        ):
            raise DataError(f"respond: {spec['type']!r} is a shock; teams respond with instruments")
        return self._add([self._decision(spec, team, "instrument")])[0]

    def rename(self, name: str) -> None:
        """The timeline's name (it labels the replayed run's folder)."""
        with self.lock:
            self._tl.name = check_folder_name(name, "name", "exercise")
            self.version += 1

    def post_news(self, text: str) -> None:
        with self.lock:
            self.news.append({"month": self.next_month, "text": str(text)[:2000]})
            self._tl.news = list(self.news)
            self.version += 1

    # ------------------------------------------------------------------ branches
    def checkpoint(self, label: str | None = None) -> Branch:
        """Save the line of play so far (to compare, or to come back to)."""
        with self.lock:
            t = self.model.state.t
            data = self.model.recorder.data
            branch = Branch(
                label or f"branch {len(self.branches) + 1} (played to {_words(self.month_at(t - 1))})",
                self.timeline(),
                [self.month_at(i) for i in range(t)],
                {v: data[v][:t].copy() for v in ("price", "buyer_price", "unmet_demand", "demand", "stock")},
            )
            self.branches.append(branch)
            self.version += 1
            return branch

    def rewind(self, month: str) -> None:
        """Go back so that ``month`` is the next month to play: decisions from ``month`` on are
        dropped (the line of play left behind is saved as a branch first)."""
        with self.lock:
            target = months_between(self.first_month, month)
            if not self.open_index <= target <= self.model.state.t:
                raise DataError(
                    f"rewind: expected a month from {self._tl.start} to {self.next_month}, got {month!r}"
                )
            self.checkpoint(f"branch {len(self.branches) + 1} (before rewind to {_words(month)})")
            kept = [d for d in self._tl.decisions if months_between(d.month, month) > 0]
            built = self._build(kept)
            self._replay_to(built, target)
            self._built = built
            self._tl.decisions = kept
            self.news = [n for n in self.news if months_between(n["month"], month) > 0]
            self._tl.news = list(self.news)
            self._sync_played()

    def restore(self, branch: Branch) -> None:
        """Continue a saved branch (its timeline, replayed)."""
        with self.lock:
            self.checkpoint(f"before restoring {branch.label}")
            tl = copy.deepcopy(branch.timeline)
            built = self._build(tl.decisions)
            t = (
                self.open_index
                if tl.played_until is None
                else months_between(self.first_month, tl.played_until) + 1
            )
            self._replay_to(built, t)
            self._built, self._tl = built, tl
            self.news = list(tl.news)
            self._sync_played()

    # ------------------------------------------------------------------ record and replay
    def timeline(self) -> Timeline:
        with self.lock:
            tl = copy.deepcopy(self._tl)
            tl.news = list(self.news)
            return tl

    def timeline_yaml(self) -> str:
        return self.timeline().to_yaml()

    def without_responses(self) -> Exercise:
        """The same exercise with the facilitator's shocks only (the after-action baseline)."""
        tl = self.timeline()
        tl.decisions = [d for d in tl.decisions if d.by == FACILITATOR]
        return Exercise(tl)

    # ------------------------------------------------------------------ views
    def _market(self, commodity: str, country: str) -> int:
        net = self.model.net
        return net.commodity_index(commodity, "commodity") * net.n_countries + net.country_index(
            country, "country"
        )

    def months(self, first: int = 0) -> list[str]:
        return [self.month_at(i) for i in range(first, self.model.state.t)]

    def _values(
        self, data: dict[str, np.ndarray], variable: str, commodity: str, who: str, t: int
    ) -> np.ndarray:
        """A recorded market series for a country, or for a group team over its members: tonnes
        add up; prices are averaged weighted by the members' demand (equally where none has any)."""
        markets = [self._market(commodity, c) for c in self.members.get(who, [who])]
        values = data[variable][:t, markets]
        if len(markets) == 1:
            return values[:, 0]
        known = np.isfinite(values)
        if variable not in PRICE_VARIABLES:
            return np.where(known, values, 0.0).sum(axis=1)
        weight = np.where(known, data["demand"][:t, markets], 0.0)
        equal = known.astype(float)
        weight = np.where(weight.sum(axis=1, keepdims=True) > 0, weight, equal)
        total = weight.sum(axis=1)
        num = np.where(known, values, 0.0) * weight
        return np.divide(num.sum(axis=1), total, out=np.full(t, np.nan), where=total > 0)

    def users(self, team: str, commodity: str) -> list[str]:
        """The team's members whose manufacturers use ``commodity`` in this world."""
        net = self.model.net
        d = self.model.demand_nodes
        using = net.slot_commodity[net.consume_slot[d]] == net.commodity_index(commodity, "commodity")
        countries = {net.countries[k] for k in net.node_country[d[using]]}
        return [c for c in self.members[team] if c in countries]

    def series(self, variable: str, commodity: str, country: str) -> pd.Series:
        """One recorded market series (the recorder's ``variable``) over the months played, for a
        country or a group team (:meth:`_values`)."""
        t = self.model.state.t
        values = self._values(self.model.recorder.data, variable, commodity, country, t)
        return pd.Series(values, index=self.months(), name=f"{variable} {commodity} {country}")

    def restricting_country(self) -> str:
        """The exporter of the latest export restriction injected (CHN if none)."""
        for d in reversed(self._tl.decisions):
            c = d.spec.get("country")
            if d.by == FACILITATOR and isinstance(c, str) and c not in BLOCS and "export" in d.spec["type"]:
                return c
        return "CHN" if "CHN" in self.model.net.countries else self.model.net.countries[0]

    def commodities(self) -> list[str]:
        net = self.model.net
        return [c for c, st in zip(net.commodities, net.commodity_stage) if st != "scrap"]

    def final_commodity(self) -> str:
        """The commodity final demand buys most of (NdFeB magnets in the REE world)."""
        net = self.model.net
        d = self.model.demand_nodes
        com = net.slot_commodity[net.consume_slot[d]]
        totals = np.bincount(com, weights=net.demand0[d], minlength=net.n_commodities)
        return net.commodities[int(np.argmax(totals))]

    def price_view(self, commodity: str) -> pd.DataFrame:
        """Prices inside the restricting country (its sellers' price) and outside it (the price
        each team's buyers pay at the margin), USD/t, by month."""
        inside = self.restricting_country()
        cols = {f"{inside} (inside)": self.series("price", commodity, inside)}
        for team in self._tl.teams:
            cols[team] = self.series("buyer_price", commodity, team)
        return pd.DataFrame(cols)

    def shortage_view(self, commodity: str) -> pd.DataFrame:
        """Per team, the last month played: unmet share of demand and stock cover in months of
        demand."""
        rows = []
        t = self.model.state.t
        for team in self._tl.teams:
            if t == 0:
                rows.append({"team": team, "unmet": 0.0, "cover_months": np.nan})
                continue
            data = self.model.recorder.data
            demand, unmet, stock = (
                self._values(data, v, commodity, team, t)[-1] for v in ("demand", "unmet_demand", "stock")
            )
            rows.append(
                {
                    "team": team,
                    "unmet": float(unmet / demand) if demand > 0 else 0.0,
                    "cover_months": float(stock / demand) if demand > 0 else np.nan,
                }
            )
        return pd.DataFrame(rows).set_index("team")

    def dependency_view(self, commodity: str | None = None) -> pd.DataFrame:
        """The allies' (blocs g7 + partner) dependency on their largest outside supplier, by
        stage, in the last month played: share of the commodity they used whose stage happened
        there, against the 60% and 50% lines."""
        commodity = commodity or self.final_commodity()
        if self.model.state.t == 0:
            return pd.DataFrame(columns=["stage", "supplier", "share", "above_60", "above_50"])
        net = self.model.net
        co = self.model.recorder.consumption_origin()
        last = co["month"].max()
        allies = [c for c, b in zip(net.countries, net.blocs) if b in ALLIED_BLOCS]
        sel = co[(co["month"] == last) & (co["commodity"] == commodity) & co["region"].isin(allies)]
        rows = []
        for stage, g in sel.groupby("stage", observed=True, sort=False):
            by = g.groupby("origin", observed=True)["tonnes"].sum()
            outside = by[~by.index.isin(allies)]
            if outside.empty or by.sum() <= 0:
                continue
            share = float(outside.max() / by.sum())
            rows.append(
                {
                    "stage": str(stage),
                    "supplier": str(outside.idxmax()),
                    "share": share,
                    "above_60": share > DEPENDENCY_LINES[0],
                    "above_50": share > DEPENDENCY_LINES[1],
                }
            )
        order = {s: i for i, s in enumerate(net.stages)}
        return pd.DataFrame(rows).sort_values("stage", key=lambda s: s.map(order)).reset_index(drop=True)

    def ledger_view(self) -> pd.DataFrame:
        """Per team: fiscal cost of its instruments so far (USD; + paid, − received), its budget
        and what is left."""
        rows = []
        for team in self._tl.teams:
            govs = [self.model.governments[c] for c in self.members[team]]
            spent = float(sum(v for g in govs for _, _, v in g.ledger))
            rows.append(
                {
                    "team": team,
                    "spent": spent,
                    "budget": self._tl.budget_usd,
                    "left": self._tl.budget_usd - spent,
                }
            )
        return pd.DataFrame(rows).set_index("team")

    def event_log(self) -> list[Event]:
        """Decisions and news in month order (plain language)."""
        from critmin.analysis.instrument_text import describe

        out = [Event(n["month"], "news", n["text"]) for n in self.news]
        for d in self._tl.decisions:
            spec = {**d.spec, "start": d.month}
            try:
                text = describe(spec)
            except Exception:  # a sentence is a courtesy: never fail a view on it
                text = f"{d.spec['type']}"
            out.append(Event(d.month, "facilitator" if d.by == FACILITATOR else d.by, text))
        return sorted(out, key=lambda e: e.month)

    def branch_prices(self, commodity: str, country: str) -> pd.DataFrame:
        """The buyers' price of ``commodity`` in ``country`` in each saved branch and now."""
        cols = {
            b.label: pd.Series(
                self._values(b.data, "buyer_price", commodity, country, len(b.months)), index=b.months
            )
            for b in self.branches
        }
        cols["current"] = self.series("buyer_price", commodity, country)
        return pd.DataFrame(cols)


def _words(month: str) -> str:
    from critmin.analysis.labels import month as in_words

    return in_words(month)


def _name_decision(message: str, tl: Timeline) -> str:
    """Errors from the composed shock file name its entries (shock.events[i]); say which
    decision that is."""
    import re

    events = [d for d in tl.decisions if d.kind == "event"]
    instruments = [d for d in tl.decisions if d.kind == "instrument"]

    def repl(m: re.Match) -> str:
        group, i = m.group(1), int(m.group(2))
        pool = events if group == "events" else instruments
        if i < len(pool):
            d = pool[i]
            return f"decision ({d.by}, {d.month}, {d.spec.get('type')})"
        return m.group(0)

    message = re.sub(
        r"configs/shock/exercise_[^:]*\.yaml: shock\.(events|instruments)\[(\d+)\]", repl, message
    )
    return message
