"""README.md's example outputs are what the code produces: every ``<!-- generated:NAME -->``
block must equal what ``docs/generate_readme.py`` (``make docs``) writes for it now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("generate_readme", ROOT / "docs" / "generate_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _generator()
PRESENT = gen.blocks_in((ROOT / "README.md").read_text())


def test_readme_has_the_generated_blocks():
    assert set(PRESENT) == set(gen.BLOCKS), "README.md and docs/generate_readme.py disagree on the blocks"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in gen.FAST else pytest.mark.slow) for n in gen.BLOCKS]
)
def test_readme_block_matches_what_the_script_produces(name):
    assert PRESENT[name] == gen.BLOCKS[name](), (
        f"README.md block {name!r} is stale: run `make docs` (python docs/generate_readme.py {name})"
    )


def test_a_changed_number_in_a_block_is_noticed(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = PRESENT["crisis"]
    digit = next(c for c in block if c.isdigit())
    changed = gen.replace(text, "crisis", block.replace(digit, str((int(digit) + 1) % 10), 1))
    assert gen.blocks_in(changed)["crisis"] != block
    with pytest.raises(KeyError):
        gen.replace("no markers here", "crisis", "x")
