"""The exercises a server holds, by id: several browsers (the facilitator and each team) join
one by its id. Each :class:`~critmin.exercise.controller.Exercise` owns its model; the hall only
finds them. The server makes one hall (:mod:`critmin.exercise.server`)."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from critmin.exercise.controller import Exercise
from critmin.exercise.timeline import Timeline
from critmin.sim.world import DataError

MAX_EXERCISES = 20  # a server is for a few tables, not a public service
_ID = re.compile(r"^[a-z0-9-]{1,40}$")


@dataclass
class Hall:
    """Exercises by id, and the settings a new one starts from."""

    defaults: dict[str, Any] = field(default_factory=dict)
    exercises: dict[str, Exercise] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, timeline: Timeline | None = None, **settings: Any) -> str:
        """Start an exercise (from ``settings`` over the defaults, or a timeline); its id."""
        with self.lock:
            if len(self.exercises) >= MAX_EXERCISES:
                raise DataError(f"this server holds {MAX_EXERCISES} exercises already")
        ex = Exercise(timeline) if timeline is not None else Exercise(**{**self.defaults, **settings})
        with self.lock:
            key = secrets.token_hex(3)
            while key in self.exercises:
                key = secrets.token_hex(3)
            self.exercises[key] = ex
        if timeline is None:
            ex.rename(f"exercise-{key}")
        return key

    def get(self, key: str) -> Exercise | None:
        if not isinstance(key, str) or not _ID.match(key):
            return None
        return self.exercises.get(key)
