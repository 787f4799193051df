"""Global sensitivity analysis, independent of the model: Morris screening and Sobol indices (SALib).

A :class:`Problem` names the inputs and their ranges; a :class:`Design` picks the method, the
sample size and the seed. :func:`sample` draws the design matrix, :func:`evaluate` runs a function
on every row (one process per job with joblib, or one call on the whole matrix when the function
is vectorised), and :func:`analyse` turns the outputs into one tidy table of indices::

    output  parameter  index    value  conf

Morris rows: ``mu`` (mean elementary effect), ``mu_star`` (mean absolute elementary effect, with
its bootstrap confidence half-width in ``conf``) and ``sigma`` (standard deviation of the
elementary effects). Sobol rows: ``S1`` and ``ST`` (first-order and total indices, with bootstrap
confidence half-widths) and, when asked, ``S2`` for each pair (``parameter`` = ``"a:b"``).

Failed samples: a per-sample function that raises is recorded (NaN outputs and the error
message) and the other samples still run. :func:`analyse` then refuses, with
:class:`FailedSamplesError` naming the failed samples: Morris elementary effects are differences
along trajectories and Sobol estimators combine rows of the A, B and AB matrices, so dropping a
sample silently would bias or break both. Fix the cause (or narrow the ranges) and run again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

METHODS = ("morris", "sobol")
INDEX_COLUMNS = ["output", "parameter", "index", "value", "conf"]


class SensitivityError(ValueError):
    """Bad input to a sensitivity analysis (the message names what was expected)."""


class FailedSamplesError(SensitivityError):
    """Some samples have no finite output; ``failures`` maps sample number -> reason."""

    def __init__(self, failures: dict[int, str], n_samples: int) -> None:
        self.failures = dict(sorted(failures.items()))
        by_reason: dict[str, list[int]] = {}
        for i, msg in self.failures.items():
            by_reason.setdefault(msg, []).append(i)
        shown = "; ".join(f"{_sample_list(ids)}: {_clip(msg)}" for msg, ids in list(by_reason.items())[:5])
        more = f"; and {len(by_reason) - 5} other reasons" if len(by_reason) > 5 else ""
        super().__init__(
            f"{len(self.failures)} of {n_samples} samples have no finite output, so no indices were "
            f"computed (dropping samples would bias Morris trajectories and Sobol estimators): {shown}{more}"
        )


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sample_list(ids: list[int]) -> str:
    """``sample 3`` or ``samples 3, 7-9`` (consecutive numbers as ranges)."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"sample {text}" if len(ids) == 1 else f"samples {text}"


@dataclass(frozen=True)
class Problem:
    """Input names and their ``(low, high)`` ranges (uniform distributions)."""

    names: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.bounds) or not self.names:
            raise SensitivityError(f"problem: expected one (low, high) range per name, got {self.names}")
        if len(set(self.names)) != len(self.names):
            raise SensitivityError(f"problem: names must be unique, got {list(self.names)}")
        for name, (low, high) in zip(self.names, self.bounds):
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise SensitivityError(f"problem: {name}: expected finite low < high, got [{low}, {high}]")

    @property
    def k(self) -> int:
        return len(self.names)

    def to_salib(self) -> dict[str, Any]:
        return {
            "num_vars": self.k,
            "names": list(self.names),
            "bounds": [[float(lo), float(hi)] for lo, hi in self.bounds],
        }


@dataclass(frozen=True)
class Design:
    """Method and sample size. ``n`` is the number of Morris trajectories r, or Sobol's base
    sample N (a power of 2). Runs: Morris r·(k+1); Sobol N·(k+2), or N·(2k+2) with S2."""

    method: str = "morris"
    n: int = 10
    seed: int = 0
    levels: int = 4  # Morris grid levels (even)
    second_order: bool = False  # Sobol S2
    num_resamples: int = 100  # bootstrap resamples for the confidence intervals
    conf_level: float = 0.95

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SensitivityError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        if self.method == "morris" and self.n < 2:
            raise SensitivityError(f"morris: expected at least 2 trajectories (n), got {self.n}")
        if self.method == "morris" and (self.levels < 2 or self.levels % 2):
            raise SensitivityError(f"morris: expected an even number of levels >= 2, got {self.levels}")
        if self.method == "sobol" and (self.n < 2 or self.n & (self.n - 1)):
            raise SensitivityError(
                f"sobol: base sample N must be a power of 2 (e.g. 128, 256, 512) to keep the Sobol' "
                f"sequence balanced, got {self.n}"
            )
        if not 0 < self.conf_level < 1:
            raise SensitivityError(f"conf_level: expected a probability in (0, 1), got {self.conf_level}")

    def runs(self, k: int) -> int:
        """Number of function evaluations for ``k`` inputs."""
        if self.method == "morris":
            return self.n * (k + 1)
        return self.n * (2 * k + 2 if self.second_order else k + 2)


def sample(problem: Problem, design: Design) -> np.ndarray:
    """The design matrix (runs × k), reproducible from ``design.seed``."""
    if design.method == "morris":
        from SALib.sample import morris

        return morris.sample(problem.to_salib(), design.n, num_levels=design.levels, seed=design.seed)
    from SALib.sample import sobol

    return sobol.sample(problem.to_salib(), design.n, calc_second_order=design.second_order, seed=design.seed)


# ---------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Outputs per sample (NaN where the sample failed), the error message of each failed sample
    and the wall time of each call (seconds; the whole call spread evenly when vectorised)."""

    values: pd.DataFrame
    errors: list[str | None]
    seconds: np.ndarray

    @property
    def failures(self) -> dict[int, str]:
        return {i: e for i, e in enumerate(self.errors) if e is not None}


def _as_row(y: Any, outputs: Sequence[str]) -> np.ndarray:
    if isinstance(y, Mapping):
        missing = [o for o in outputs if o not in y]
        if missing:
            raise KeyError(f"function returned no value for outputs {missing}")
        return np.array([float(y[o]) for o in outputs])
    row = np.atleast_1d(np.asarray(y, dtype=float)).ravel()
    if row.size != len(outputs):
        raise ValueError(f"function returned {row.size} values, expected {len(outputs)} ({list(outputs)})")
    return row


def _call_one(
    func: Callable[[np.ndarray], Any], x: np.ndarray, outputs: Sequence[str]
) -> tuple[np.ndarray, str | None, float]:
    """One sample; an exception becomes NaN outputs and its message (the analysis goes on)."""
    t0 = time.perf_counter()
    try:
        row, error = _as_row(func(x), outputs), None
    except Exception as exc:
        row, error = np.full(len(outputs), np.nan), f"{type(exc).__name__}: {exc}"
    return row, error, time.perf_counter() - t0


def evaluate(
    func: Callable[[np.ndarray], Any],
    X: np.ndarray,
    outputs: Sequence[str],
    *,
    vectorised: bool = False,
    n_jobs: int = 1,
    progress: Callable[[int, int, int], None] | None = None,
) -> Evaluation:
    """Run ``func`` on every row of ``X``.

    Per sample (default), ``func(x)`` returns a float, a sequence of ``len(outputs)`` floats or a
    mapping output -> float; ``n_jobs`` > 1 (or -1 for every core) runs samples in joblib worker
    processes, so ``func`` must be picklable. Vectorised, ``func(X)`` returns an array (runs,) or
    (runs, outputs) in one call, and an exception propagates. ``progress(done, total, failed)``
    is called as results arrive.
    """
    X = np.asarray(X, dtype=float)
    outputs = list(outputs)
    if vectorised:
        t0 = time.perf_counter()
        Y = np.asarray(func(X), dtype=float).reshape(len(X), -1)
        if Y.shape[1] != len(outputs):
            raise SensitivityError(f"vectorised function returned {Y.shape[1]} columns, expected {outputs}")
        seconds = np.full(len(X), (time.perf_counter() - t0) / max(len(X), 1))
        return Evaluation(pd.DataFrame(Y, columns=outputs), [None] * len(X), seconds)
    rows, errors, seconds = [], [], []
    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_call_one)(func, x, outputs) for x in X)
    for row, error, sec in results:
        rows.append(row)
        errors.append(error)
        seconds.append(sec)
        if progress is not None:
            progress(len(rows), len(X), sum(e is not None for e in errors))
    values = pd.DataFrame(np.vstack(rows) if rows else np.empty((0, len(outputs))), columns=outputs)
    return Evaluation(values, errors, np.asarray(seconds))


# ---------------------------------------------------------------------- analysis
def nonfinite_samples(evaluation: Evaluation) -> dict[int, str]:
    """Samples with a non-finite output and why (the error, or which output is not finite)."""
    out = dict(evaluation.failures)
    bad = ~np.isfinite(evaluation.values.to_numpy(float))
    for i in np.flatnonzero(bad.any(axis=1)):
        if int(i) not in out:
            cols = evaluation.values.columns[bad[i]]
            out[int(i)] = ", ".join(f"output {c} = {evaluation.values.iloc[i][c]}" for c in cols)
    return out


def _filled(a: Any) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(a, dtype=float), np.nan)


def _morris_rows(problem: Problem, design: Design, X: np.ndarray, y: np.ndarray) -> list[dict]:
    from SALib.analyze import morris

    r = morris.analyze(
        problem.to_salib(),
        X,
        y,
        num_resamples=design.num_resamples,
        conf_level=design.conf_level,
        num_levels=design.levels,
        seed=design.seed,
    )
    mu, mu_star, sigma, conf = (_filled(r[k]) for k in ("mu", "mu_star", "sigma", "mu_star_conf"))
    rows = []
    for j, name in enumerate(problem.names):
        rows += [
            {"parameter": name, "index": "mu_star", "value": mu_star[j], "conf": conf[j]},
            {"parameter": name, "index": "sigma", "value": sigma[j], "conf": np.nan},
            {"parameter": name, "index": "mu", "value": mu[j], "conf": np.nan},
        ]
    return rows


def _sobol_rows(problem: Problem, design: Design, y: np.ndarray) -> list[dict]:
    from SALib.analyze import sobol

    r = sobol.analyze(
        problem.to_salib(),
        y,
        calc_second_order=design.second_order,
        num_resamples=design.num_resamples,
        conf_level=design.conf_level,
        seed=design.seed,
    )
    rows = []
    for j, name in enumerate(problem.names):
        for index in ("S1", "ST"):
            rows.append(
                {"parameter": name, "index": index, "value": r[index][j], "conf": r[f"{index}_conf"][j]}
            )
    if design.second_order:
        for i in range(problem.k):
            for j in range(i + 1, problem.k):
                rows.append(
                    {
                        "parameter": f"{problem.names[i]}:{problem.names[j]}",
                        "index": "S2",
                        "value": r["S2"][i, j],
                        "conf": r["S2_conf"][i, j],
                    }
                )
    return rows


def _undefined_sobol_rows(problem: Problem, design: Design) -> list[dict]:
    rows = [
        {"parameter": n, "index": i, "value": np.nan, "conf": np.nan}
        for n in problem.names
        for i in ("S1", "ST")
    ]
    if design.second_order:
        rows += [
            {"parameter": f"{a}:{b}", "index": "S2", "value": np.nan, "conf": np.nan}
            for i, a in enumerate(problem.names)
            for b in problem.names[i + 1 :]
        ]
    return rows


def analyse(
    problem: Problem, design: Design, X: np.ndarray, evaluation: Evaluation
) -> tuple[pd.DataFrame, list[str]]:
    """Tidy indices (:data:`INDEX_COLUMNS`) for every output, and notes for the reader.

    Raises :class:`FailedSamplesError` when any sample has a non-finite output. An output that
    is constant over all samples gets Morris indices of 0 and undefined (NaN) Sobol indices
    (zero variance), with a note.
    """
    failures = nonfinite_samples(evaluation)
    if failures:
        raise FailedSamplesError(failures, len(evaluation.values))
    X = np.asarray(X, dtype=float)
    expected = design.runs(problem.k)
    if X.shape != (expected, problem.k) or len(evaluation.values) != expected:
        raise SensitivityError(
            f"{design.method}: expected {expected} samples × {problem.k} inputs for n={design.n}, "
            f"got X {X.shape} and {len(evaluation.values)} outputs"
        )
    tables, notes = [], []
    for output in evaluation.values.columns:
        y = evaluation.values[output].to_numpy(float)
        constant = bool(np.ptp(y) == 0)
        if constant:
            what = "Sobol indices are undefined (zero variance)" if design.method == "sobol" else "mu* = 0"
            notes.append(f"output {output} is constant ({y[0]:g}) over all samples: {what}")
        if design.method == "morris":
            rows = _morris_rows(problem, design, X, y)
        else:
            rows = _undefined_sobol_rows(problem, design) if constant else _sobol_rows(problem, design, y)
        tables.append(pd.DataFrame(rows).assign(output=output))
    out = pd.concat(tables, ignore_index=True)[INDEX_COLUMNS]
    out[["value", "conf"]] = out[["value", "conf"]].astype(float)
    return out, notes


@dataclass
class Analysis:
    """Everything one analysis produced."""

    problem: Problem
    design: Design
    X: np.ndarray
    evaluation: Evaluation
    indices: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def samples(self) -> pd.DataFrame:
        """Inputs and outputs per sample (one row per function evaluation)."""
        return sample_table(self.problem, self.X, self.evaluation)


def sample_table(problem: Problem, X: np.ndarray, evaluation: Evaluation) -> pd.DataFrame:
    """``sample``, one column per input, one per output, ``error`` (None when the run worked)."""
    df = pd.DataFrame(np.asarray(X, dtype=float), columns=list(problem.names))
    df.insert(0, "sample", np.arange(len(df)))
    df = pd.concat([df, evaluation.values.reset_index(drop=True)], axis=1)
    df["error"] = pd.Series(evaluation.errors, dtype="string")
    return df


def run(
    problem: Problem,
    design: Design,
    func: Callable[[np.ndarray], Any],
    outputs: Sequence[str],
    *,
    vectorised: bool = False,
    n_jobs: int = 1,
) -> Analysis:
    """Sample, evaluate and analyse in one call (see :func:`evaluate` for ``func``)."""
    X = sample(problem, design)
    evaluation = evaluate(func, X, outputs, vectorised=vectorised, n_jobs=n_jobs)
    indices, notes = analyse(problem, design, X, evaluation)
    return Analysis(problem, design, X, evaluation, indices, notes)
