"""docs/worlds.md's measured tables are what docs/generate_worlds.py computes from the model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "worlds.md"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_worlds", ROOT / "docs" / "generate_worlds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_worlds_tables_are_what_the_model_gives():
    gen = _generator()
    text = DOC.read_text()
    fresh = gen.render(text, {name: block() for name, block in gen.BLOCKS.items()})
    assert fresh == text, "docs/worlds.md is stale: python docs/generate_worlds.py (or make docs)"


def test_every_block_has_its_place_in_the_page():
    gen = _generator()
    text = DOC.read_text()
    for name in gen.BLOCKS:
        assert f"<!-- generated:worlds-{name} -->" in text and f"<!-- /generated:worlds-{name} -->" in text
