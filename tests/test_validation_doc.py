"""docs/validation.md's scorecard tables are written from the validate run folders kept in
docs/scorecards/ by docs/generate_validation.py: the page must say what those files say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "validation.md"
NOW, BEFORE = ROOT / "docs" / "scorecards" / "now", ROOT / "docs" / "scorecards" / "before_issue15"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_validation", ROOT / "docs" / "generate_validation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scorecard_tables_are_what_the_kept_runs_say():
    text = DOC.read_text()
    assert _generator().render(text, NOW, BEFORE, "before (f5f1436)") == text, (
        "docs/validation.md is stale: python docs/generate_validation.py docs/scorecards/now "
        "--before docs/scorecards/before_issue15 --before-label 'before (f5f1436)'"
    )


def test_a_changed_verdict_is_noticed():
    text = DOC.read_text()
    changed = text.replace("| hit |", "| miss |", 1)
    assert _generator().render(changed, NOW, BEFORE, "before (f5f1436)") != changed


def test_the_kept_runs_are_five_seeds_of_every_episode():
    import pandas as pd

    for folder in (NOW, BEFORE):
        card = pd.read_csv(folder / "scorecard.csv")
        assert card["seeds"].max() == 5
        assert set(card["episode"]) >= {"gage_controls_2023", "drc_cobalt_2025", "baseline_2024"}
