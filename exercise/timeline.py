"""An exercise's record: the world, the seed and every decision with its month, as validated YAML.

A timeline is data, like every config file (no code, size-limited): :func:`load` checks its
shape and names here, and each decision's ``spec`` is then validated exactly as the same entry
of a shock file would be, by building the model (:mod:`critmin.policies` registry,
:class:`critmin.sim.spec.Spec`). It maps onto an ordinary run: the facilitator's shocks and the
teams' responses become the events and instruments of one shock file whose entries start at
their decision's month (:meth:`Timeline.shock_file`), so ``critmin run --timeline FILE`` replays
the exercise through the same code path as any batch run::

    critmin_exercise: 1
    name: table-top-1            # plain name: labels the run folder
    world: ree_2024_short        # configs/scenario/<world>.yaml
    policy: none                 # configs/policy/<policy>.yaml in force from the start
    seed: 0
    start: "2025-01"             # the month the exercise opened (months before it: warm-up)
    played_until: "2025-06"      # the last month played
    teams: [USA, JPN, DEU, KOR]
    budget_usd: 2.0e9            # each team's budget for its responses
    decisions:
      - {month: "2025-04", by: facilitator, kind: event,
         spec: {type: export_cap, country: CHN, commodity: ndfeb_magnet, max_tonnes_per_month: 0}}
      - {month: "2025-05", by: JPN, kind: instrument,
         spec: {type: stockpile, name: JPN_stockpile_release_1, country: JPN, ...}}
    news:
      - {month: "2025-04", text: "MOFCOM announces a halt of magnet exports"}

An entry that starts at month *m* in a batch run behaves exactly like one injected at *m* in the
exercise: entries are inactive before their ``start``, and a stockpile's nodes and first fill
are compiled at build time whatever its start month (tests/test_exercise.py checks both, bit for
bit).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from critmin.sim.config import check_folder_name, parse_month
from critmin.sim.world import DataError

FORMAT = 1
MAX_BYTES = 256 * 1024  # an uploaded timeline larger than this is refused before parsing
MAX_DECISIONS = 500
MAX_NEWS = 500
MAX_TEXT = 2000
KINDS = ("event", "instrument")
FACILITATOR = "facilitator"
TOP_KEYS = {
    "critmin_exercise",
    "name",
    "world",
    "policy",
    "seed",
    "start",
    "played_until",
    "teams",
    "budget_usd",
    "decisions",
    "news",
}
_COUNTRY = re.compile(r"^[A-Z]{3}$")
_TEAM = re.compile(r"^[A-Z][A-Z0-9+]{1,5}$")  # a country code or a group (EU, G7+): checked on build
_FORBIDDEN = ("_target_", "()")


def month_text(ym: tuple[int, int]) -> str:
    return f"{ym[0]}-{ym[1]:02d}"


def add_months(month: str, n: int) -> str:
    y, m = parse_month(month, "month")
    k = y * 12 + (m - 1) + n
    return month_text((k // 12, k % 12 + 1))


def months_between(first: str, last: str) -> int:
    """Months from ``first`` to ``last`` (0 when equal)."""
    a, b = parse_month(first, "month"), parse_month(last, "month")
    return (b[0] - a[0]) * 12 + b[1] - a[1]


@dataclass
class Decision:
    """One injected shock or team response: ``spec`` is a shock-file entry starting at ``month``."""

    month: str
    by: str  # "facilitator" or a team's country code
    kind: str  # "event" (shock.events) or "instrument" (shock.instruments)
    spec: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"month": self.month, "by": self.by, "kind": self.kind, "spec": copy.deepcopy(self.spec)}


@dataclass
class Timeline:
    """What an exercise was: enough to rebuild it at any month and to replay it as a run."""

    name: str = "exercise"
    world: str = "ree_2024_short"
    policy: str = "none"
    seed: int = 0
    start: str = "2024-01"
    played_until: str | None = None  # None: nothing played yet
    teams: list[str] = field(default_factory=lambda: ["USA", "JPN", "DEU", "KOR"])
    budget_usd: float = 2.0e9
    decisions: list[Decision] = field(default_factory=list)
    news: list[dict[str, str]] = field(default_factory=list)

    # ------------------------------------------------------------------ as a run
    @property
    def shock_name(self) -> str:
        return f"exercise_{self.name}"

    def shock_file(self, before: str | None = None) -> dict[str, Any] | None:
        """The decisions as one shock file (events and instruments starting at their month),
        only those whose month is before ``before`` when given; None when there are none."""
        chosen = [d for d in self.decisions if before is None or months_between(d.month, before) > 0]
        if not chosen:
            return None
        out: dict[str, Any] = {"name": self.shock_name, "events": [], "instruments": []}
        for d in chosen:
            out["events" if d.kind == "event" else "instruments"].append({**d.spec, "start": d.month})
        return out

    def overrides(self, config_dir: Path | None) -> list[str]:
        """Hydra overrides that compose this timeline's run; ``config_dir`` holds the shock file
        (:func:`write_config_dir`) or is None when there are no decisions."""
        out = [f"scenario={self.world}", f"policy={self.policy}", f"seed={self.seed}"]
        out.append(f"shock={self.shock_name}" if config_dir is not None else "shock=none")
        return out

    def write_config_dir(self, folder: Path, before: str | None = None) -> Path | None:
        """Write ``shock/<shock_name>.yaml`` under ``folder``; returns ``folder`` or None when no
        decision applies."""
        shock = self.shock_file(before)
        if shock is None:
            return None
        (folder / "shock").mkdir(parents=True, exist_ok=True)
        (folder / "shock" / f"{self.shock_name}.yaml").write_text(
            "# written by critmin exercise from a timeline: the exercise's decisions\n"
            + yaml.safe_dump(shock, sort_keys=False)
        )
        return folder

    # ------------------------------------------------------------------ as YAML
    def as_dict(self) -> dict[str, Any]:
        return {
            "critmin_exercise": FORMAT,
            "name": self.name,
            "world": self.world,
            "policy": self.policy,
            "seed": self.seed,
            "start": self.start,
            "played_until": self.played_until,
            "teams": list(self.teams),
            "budget_usd": float(self.budget_usd),
            "decisions": [d.as_dict() for d in self.decisions],
            "news": [dict(n) for n in self.news],
        }

    def to_yaml(self) -> str:
        head = (
            "# critmin exercise timeline: replay with `critmin run --timeline THIS_FILE`\n"
            "# (docs/exercise.md); every decision is a shock-file entry starting at its month\n"
        )
        return head + yaml.safe_dump(self.as_dict(), sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------------- validation
def _forbidden(node: Any, where: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise DataError(f"{where}: keys must be strings, got {k!r}")
            if k in _FORBIDDEN:
                raise DataError(f"{where}.{k}: a timeline is data; it cannot name code to run")
            _forbidden(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _forbidden(v, f"{where}[{i}]")
    elif not (node is None or isinstance(node, str | int | float | bool)):
        raise DataError(f"{where}: expected plain YAML values, got {type(node).__name__}")


def _month(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: expected a month 'YYYY-MM' in quotes, got {value!r}")
    return month_text(parse_month(value, where))


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    """A decision's entry: a mapping with a ``type`` and plain values; its ``start`` and ``end``
    are set from the decision (an ``end`` is kept). The registry validates the rest."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise DataError(
            f"{where}: expected a mapping with a 'type' (a shock or instrument name), got {spec!r}"
        )
    _forbidden(spec, where)
    return {k: v for k, v in spec.items() if k != "start"}


def from_dict(raw: Any, source: str = "timeline") -> Timeline:
    """A :class:`Timeline` from parsed YAML; DataError naming the key for anything unexpected."""
    if not isinstance(raw, dict):
        raise DataError(
            f"{source}: expected a mapping (a critmin exercise timeline), got {type(raw).__name__}"
        )
    _forbidden(raw, source)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise DataError(f"{source}: unknown key(s) {unknown}; expected only {sorted(TOP_KEYS)}")
    if raw.get("critmin_exercise") != FORMAT:
        raise DataError(
            f"{source}: key critmin_exercise: expected {FORMAT} (a timeline written by critmin exercise), "
            f"got {raw.get('critmin_exercise')!r}"
        )
    tl = Timeline()
    for key in ("name", "world", "policy"):
        if key in raw:
            setattr(tl, key, check_folder_name(raw[key], key, source))
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"{source}: key seed: expected a whole number >= 0, got {seed!r}")
    tl.seed = seed
    tl.start = _month(raw.get("start", tl.start), f"{source}: key start")
    if raw.get("played_until") is not None:
        tl.played_until = _month(raw["played_until"], f"{source}: key played_until")
        if months_between(tl.start, tl.played_until) < 0:
            raise DataError(f"{source}: key played_until: expected a month from start {tl.start} on")
    teams = raw.get("teams", tl.teams)
    if not isinstance(teams, list) or not all(isinstance(t, str) and _TEAM.match(t) for t in teams):
        raise DataError(
            f"{source}: key teams: expected a list of country codes or groups (e.g. [USA, JPN, EU]), got {teams!r}"
        )
    tl.teams = list(teams)
    budget = raw.get("budget_usd", tl.budget_usd)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget <= 1e13:
        raise DataError(f"{source}: key budget_usd: expected a number in [0, 1e13], got {budget!r}")
    tl.budget_usd = float(budget)
    decisions = raw.get("decisions") or []
    if not isinstance(decisions, list) or len(decisions) > MAX_DECISIONS:
        raise DataError(f"{source}: key decisions: expected a list of at most {MAX_DECISIONS} decisions")
    for i, d in enumerate(decisions):
        where = f"{source}: decisions[{i}]"
        if not isinstance(d, dict) or set(d) - {"month", "by", "kind", "spec"}:
            raise DataError(f"{where}: expected a mapping with keys month, by, kind, spec, got {d!r}")
        by = d.get("by")
        if by != FACILITATOR and by not in tl.teams:
            raise DataError(f"{where}.by: expected {FACILITATOR!r} or a team of {tl.teams}, got {by!r}")
        kind = d.get("kind")
        if kind not in KINDS:
            raise DataError(f"{where}.kind: expected one of {list(KINDS)}, got {kind!r}")
        month = _month(d.get("month"), f"{where}.month")
        if months_between(tl.start, month) < 0:
            raise DataError(
                f"{where}.month: expected a month from the exercise's start {tl.start} on, got {month}"
            )
        if tl.played_until is not None and months_between(month, tl.played_until) < 0:
            raise DataError(f"{where}.month: {month} is after the last month played {tl.played_until}")
        tl.decisions.append(Decision(month, by, kind, check_spec(d.get("spec"), f"{where}.spec")))
    news = raw.get("news") or []
    if not isinstance(news, list) or len(news) > MAX_NEWS:
        raise DataError(f"{source}: key news: expected a list of at most {MAX_NEWS} items")
    for i, n in enumerate(news):
        if (
            not isinstance(n, dict)
            or set(n) != {"month", "text"}
            or not isinstance(n["text"], str)
            or len(n["text"]) > MAX_TEXT
        ):
            raise DataError(
                f"{source}: news[{i}]: expected {{month, text}} with at most {MAX_TEXT} characters"
            )
        tl.news.append({"month": _month(n["month"], f"{source}: news[{i}].month"), "text": n["text"]})
    return tl


def loads(text: str | bytes, source: str = "timeline") -> Timeline:
    """Parse and validate a timeline (size-limited, safe YAML: no tags, no code)."""
    if len(text) > MAX_BYTES:
        raise DataError(f"{source}: {len(text)} bytes; a timeline may have at most {MAX_BYTES} bytes")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return from_dict(raw, source)


def load(path: str | Path) -> Timeline:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DataError(f"{path}: {size} bytes; a timeline may have at most {MAX_BYTES} bytes")
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the timeline: {exc}") from None
    return loads(text, str(path))
