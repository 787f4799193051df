"""The layers of issue 14, checked on the code: the import-linter contracts in pyproject.toml
([tool.importlinter]) hold, and no critmin module imports itself back through others (no import
cycle, imports under ``if TYPE_CHECKING:`` left out).

Both tools find modules by path, and the folders (sim/, analysis/, ...) are installed as
``critmin.*`` subpackages, so they run in a subprocess on an importable view of the tree: the
``*.py`` files of each folder of pyproject's package-dir copied to its package path
(``critmin/sim/...``). Each check is also run on a view with a planted violation, so a check that
saw nothing (a wrong view, a contract that names no module) fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE_DIR: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]

# Import cycles that remain (runtime imports), each with whose part of issue 14 removes it. A
# cycle not listed here, or one that grew, fails test_no_new_import_cycle.
KNOWN_CYCLES: dict[frozenset[str], str] = {}  # none left: keep it that way

CYCLES_SCRIPT = """
import json, sys
import grimp, networkx as nx
graph = grimp.build_graph("critmin", exclude_type_checking_imports=sys.argv[1] == "runtime", cache_dir=None)
g = nx.DiGraph()
for m in graph.modules:
    g.add_node(m)
    g.add_edges_from((m, n) for n in graph.find_modules_directly_imported_by(m))
cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
print(json.dumps({"modules": len(graph.modules), "cycles": sorted(cycles)}))
"""


def importable_view(dest: Path) -> Path:
    """Copy the source as it is installed (``critmin/sim/*.py``, ``critmin/analysis/*.py``, ...)
    under ``dest``; returns ``dest``, to put on PYTHONPATH."""
    for package, folder in PACKAGE_DIR.items():
        src = ROOT / folder
        target = dest.joinpath(*package.split("."))
        for path in src.rglob("*.py"):
            rel = path.relative_to(src)
            if "__pycache__" in rel.parts or (package == "critmin" and len(rel.parts) > 1):
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
    return dest


def _run(view: Path, args: list[str]) -> subprocess.CompletedProcess:
    # the view first on the path: it, not the editable install, is what `critmin` resolves to
    env = {**os.environ, "PYTHONPATH": str(view), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(args, cwd=view, env=env, capture_output=True, text=True, timeout=300)


def lint_imports(view: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on ``view`` with the contracts of pyproject.toml, copied into the view: the
    tool reads the config from, and puts on the path, its working directory (--no-cache: it
    writes nothing)."""
    exe = Path(sys.executable).with_name("lint-imports")
    exe = exe if exe.is_file() else shutil.which("lint-imports")
    assert exe, "lint-imports not found: install the dev extra (pip install -e '.[dev]')"
    shutil.copy2(PYPROJECT, view / "pyproject.toml")
    return _run(view, [str(exe), "--no-cache"])


def import_cycles(view: Path, mode: str = "runtime") -> dict:
    """Modules analysed and the import cycles (strongly connected groups of modules) among
    them; ``mode`` ``runtime`` leaves imports under ``if TYPE_CHECKING:`` out, ``all`` keeps them."""
    out = _run(view, [sys.executable, "-c", CYCLES_SCRIPT, mode])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _source_modules() -> int:
    """How many modules the tree has (what the tools must analyse)."""
    names = []
    for package, folder in PACKAGE_DIR.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts or (package == "critmin" and len(rel.parts) > 1):
                continue
            parts = rel.with_suffix("").parts
            names.append(".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)]))
    return len(set(names))


@pytest.fixture(scope="module")
def view(tmp_path_factory) -> Path:
    return importable_view(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A view with an engine module importing the analysis layer and two analysis modules
    importing each other."""
    dest = importable_view(tmp_path_factory.mktemp("planted"))
    (dest / "critmin" / "sim" / "planted_report.py").write_text("from critmin.analysis import metrics\n")
    (dest / "critmin" / "analysis" / "planted_a.py").write_text("from critmin.analysis import planted_b\n")
    (dest / "critmin" / "analysis" / "planted_b.py").write_text("from critmin.analysis import planted_a\n")
    return dest


# ---------------------------------------------------------------------- contracts
def test_import_linter_contracts_hold(view):
    out = lint_imports(view)
    assert out.returncode == 0, f"lint-imports: a layer contract is broken\n{out.stdout}\n{out.stderr}"
    # every module of the tree was analysed (a view missing a folder would pass vacuously)
    assert f"Analyzed {_source_modules()} files" in out.stdout, out.stdout
    n = len(tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"])
    assert n >= 5 and f"Contracts: {n} kept, 0 broken." in out.stdout, out.stdout


def test_a_planted_engine_import_of_analysis_breaks_a_contract(planted):
    out = lint_imports(planted)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "critmin.sim.planted_report -> critmin.analysis.metrics" in out.stdout, out.stdout
    assert "does not import the analysis layer or the entry points BROKEN" in " ".join(out.stdout.split())


def test_the_model_contract_allows_no_exception():
    """Instruments, agents and the month's stages see the model through sim/view.ModelView only:
    the contract has no allowed exceptions, so none may creep back in."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    model = [c for c in contracts if c["forbidden_modules"] == ["critmin.sim.model"]]
    assert all(not c.get("ignore_imports") for c in model), model
    sources = {m for c in model for m in c["source_modules"]}
    assert {"critmin.policies", "critmin.agents", "critmin.sim.prices", "critmin.analysis"} <= sources


# ---------------------------------------------------------------------- cycles
def test_no_new_import_cycle(view):
    found = import_cycles(view)
    assert found["modules"] == _source_modules()
    new = [c for c in found["cycles"] if not any(set(c) <= known for known in KNOWN_CYCLES)]
    assert not new, f"import cycles among critmin modules (runtime imports): {new}"


def test_no_import_cycle(view):
    assert import_cycles(view)["cycles"] == []


def test_the_cycle_finder_finds_a_planted_cycle(planted):
    found = import_cycles(planted)
    assert ["critmin.analysis.planted_a", "critmin.analysis.planted_b"] in found["cycles"]
