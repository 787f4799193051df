"""Test helpers for the scorecard: a fact with the bookkeeping fields filled in, and a writable
copy of the packaged facts files (tests/test_validate.py, tests/test_scorecard_origin.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from critmin.analysis import scorecard as sc


def make_fact(**fields) -> sc.Fact:
    """A :class:`scorecard.Fact` of the demo episode; ``fields`` give what the test is about."""
    return sc.Fact(
        **{"episode": "demo", "fact": "f", "label": "f", "source": "test", "expressible": True, **fields}
    )


def copy_facts(tmp_path: Path) -> Path:
    """The packaged facts files copied to ``tmp_path/validation``, for tests that edit them."""
    folder = tmp_path / "validation"
    shutil.copytree(sc.validation_dir(), folder)
    return folder
