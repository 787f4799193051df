"""The install is quiet and complete: every folder setuptools would see as a package is in
pyproject's package list (no "Package would be ignored" warnings), with its data files."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folders() -> dict[str, Path]:
    """Every installed package name -> its source folder, from package-dir and the disk."""
    out = {}
    for pkg, src in CONF["package-dir"].items():
        base = ROOT / src
        out[pkg] = base
        for d in base.rglob("*"):
            if d.is_dir() and "__pycache__" not in d.parts and any(f.is_file() for f in d.iterdir()):
                out[pkg + "." + ".".join(d.relative_to(base).parts)] = d
    return out


def test_every_folder_with_files_is_a_listed_package():
    missing = sorted(set(_folders()) - set(CONF["packages"]))
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    absent = sorted(set(CONF["packages"]) - set(_folders()))
    assert not absent, f"listed packages without a folder: {absent}"


def test_every_data_file_is_covered_by_package_data():
    data = CONF["package-data"]
    for pkg, folder in _folders().items():
        for f in folder.iterdir():
            if f.is_file() and f.suffix in (".yaml", ".csv", ".j2"):
                patterns = data.get(pkg, [])
                assert any(f.match(p) for p in patterns), (
                    f"{f.relative_to(ROOT)} not in package-data[{pkg!r}]"
                )


def test_templates_ship_with_the_package():
    assert "critmin.analysis.templates" in CONF["packages"]
    assert (ROOT / "analysis" / "templates" / "run_report.html.j2").is_file()
    assert (ROOT / "analysis" / "templates" / "comparison_report.html.j2").is_file()
