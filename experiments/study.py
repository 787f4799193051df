"""Studies shared by the search commands (``critmin calibrate``, ``critmin solve``; the identity
also by ``critmin compare``): the
SQLite storage in the study folder, counting finished and running evaluations, giving up the
evaluations an interrupted run left running, and worker processes (joblib, as ``critmin
compare`` uses it) that share one study up to a budget."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

STORAGE_FILE = "study.db"


def identity(config_id: str, configs: Iterable[Any]) -> dict[str, Any]:
    """What a study's or comparison's results depend on: the digest of its settings and configs
    (``config_id``), the input data every run config reads and the code; hashed by
    :func:`critmin.sim.run.identity_id` into the folder name."""
    from critmin.sim.run import code_identity, input_hashes

    inputs: dict[str, str] = {}
    for cfg in configs:
        inputs.update(input_hashes(cfg))
    return {"config_id": config_id, "inputs": dict(sorted(inputs.items())), "code": code_identity()}


def storage(folder: Path) -> Any:
    """The study's SQLite storage, ``<folder>/study.db`` (several processes may share it)."""
    import optuna

    return optuna.storages.RDBStorage(
        f"sqlite:///{(folder / STORAGE_FILE).resolve()}", engine_kwargs={"connect_args": {"timeout": 120}}
    )


def finished(study: Any) -> int:
    """Evaluations that ended (complete or failed)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def running(study: Any) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def waiting(study: Any) -> int:
    """Enqueued evaluations not started yet."""
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))


def give_up_interrupted(study: Any) -> int:
    """Mark evaluations left running by an interrupted run as failed (they would block the
    budget); returns how many."""
    import optuna

    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


def run_workers(
    open_study: Callable[[int], Any],
    objective: Callable[[Any], Any],
    budget: int,
    jobs: int | None,
) -> int:
    """Evaluate until the study (``open_study(k)`` opens it in worker ``k``, with its own sampler
    seed) holds ``budget`` finished evaluations, in ``jobs`` processes sharing the storage
    (1: in this process). Returns the evaluations it held before."""
    from joblib import Parallel, delayed

    study = open_study(0)
    give_up_interrupted(study)
    done = finished(study)
    left = budget - done
    if left <= 0:
        return done
    # enqueued evaluations (defaults, corners) run here first: workers sharing a SQLite study can
    # both pop the same waiting trial, and the second to finish it fails
    while waiting(study) and finished(study) < budget:
        study.optimize(objective, n_trials=1, catch=(Exception,))
    left = budget - finished(study)
    if left <= 0:
        return done
    n = max(1, min(jobs or os.cpu_count() or 1, left))
    if n == 1:
        _worker(open_study, objective, budget, 0)
    else:
        Parallel(n_jobs=n)(delayed(_worker)(open_study, objective, budget, k) for k in range(n))
    return done


def _worker(open_study: Callable[[int], Any], objective: Callable[[Any], Any], budget: int, k: int) -> int:
    """One process: evaluate until the study holds ``budget`` finished or running evaluations."""
    logging.getLogger("mesa").setLevel(logging.WARNING)
    study = open_study(k)
    n = 0
    while finished(study) + running(study) < budget:
        study.optimize(objective, n_trials=1, catch=(Exception,))
        n += 1
    return n
