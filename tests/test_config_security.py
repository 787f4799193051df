"""Config files are data (issue 12): no code from config files, no writes outside output_root,
nothing written into the source checkout. The payloads run through `critmin run` as a user would."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from critmin.sim.config_files import check_config_files
from critmin.sim.run import code_version, config_dir
from critmin.sim.world import DataError

ROOT = Path(__file__).resolve().parents[1]


def critmin_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "critmin.experiments.cli", "run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


# the two known payloads (issue 12): hydra.callbacks with an os.makedirs / shutil.copyfile target,
# and one with os.system; each would leave a marker if it ran
def payload_files(folder: Path, marker: Path) -> dict[str, str]:
    return {
        "policy/pwn_makedirs.yaml": (
            "# @package _global_\n"
            "hydra:\n  callbacks:\n    pwn:\n      _target_: os.makedirs\n"
            f"      name: {marker}\n"
            "policy:\n  name: pwn_makedirs\n  instruments: []\n"
        ),
        "policy/pwn_copy.yaml": (
            "# @package _global_\n"
            "hydra:\n  callbacks:\n    pwn:\n      _target_: shutil.copyfile\n"
            f"      src: {ROOT / 'README.md'}\n      dst: {marker}\n"
            "policy:\n  name: pwn_copy\n  instruments: []\n"
        ),
        "shock/pwn_system.yaml": (
            "# @package _global_\n"
            "hydra:\n  callbacks:\n    pwn:\n      _target_: os.system\n"
            f"      _args_: ['touch {marker}']\n"
            "shock:\n  name: pwn_system\n  events: []\n"
        ),
    }


@pytest.mark.parametrize(
    ("payload", "choice", "how"),
    [
        ("policy/pwn_makedirs.yaml", "policy=pwn_makedirs", "config-dir"),
        ("policy/pwn_copy.yaml", "policy=pwn_copy", "searchpath"),
        ("shock/pwn_system.yaml", "shock=pwn_system", "config-dir"),
    ],
)
def test_hydra_callback_payloads_are_rejected_and_never_run(tmp_path, payload, choice, how):
    folder, marker, out = tmp_path / "shared_configs", tmp_path / "MARKER", tmp_path / "out"
    (folder / payload).parent.mkdir(parents=True)
    (folder / payload).write_text(payload_files(folder, marker)[payload])
    where = ["--config-dir", str(folder)] if how == "config-dir" else [f"hydra.searchpath=[file://{folder}]"]
    done = critmin_run(
        *where, choice, "scenario=ree_2024_short", "scenario.end=2024-02", f"output_root={out}", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert Path(payload).name in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()  # nothing executed
    assert not out.exists()  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared_configs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# @package _global_\nname: x\n", "@package _global_"),
        ("# @package hydra.callbacks\nname: x\n", "@package hydra.callbacks"),
        ("name: x\nhydra:\n  run:\n    dir: /tmp\n", "key hydra"),
        (
            "name: x\ninstruments:\n  - type: tariff\n    cb: {_target_: os.getcwd}\n",
            "instruments[0].cb._target_",
        ),
        ("defaults:\n  - override /hydra/launcher: joblib\nname: x\n", "Hydra's own settings"),
        ("defaults:\n  - /policy@_global_: none\nname: x\n", "package (@...)"),
        ("name: x\nevents:\n  - a: 1\n - b: 2\n", "invalid YAML (line 4"),
        ("", "expected a mapping"),
        ("name: other\n", "key name: expected 'x'"),
    ],
)
def test_every_rule_names_the_file(tmp_path, text, expected):
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "x.yaml").write_text(text)
    with pytest.raises(DataError) as err:
        check_config_files([], [tmp_path])
    assert "x.yaml" in str(err.value) and expected in str(err.value)


def test_packaged_configs_follow_the_rules():
    check_config_files()  # raises on the first packaged file that breaks a rule
    assert (config_dir() / "launcher" / "joblib.yaml").read_text().startswith("# @package _global_")


def test_critmin_run_refuses_another_primary_config_or_a_pickle(tmp_path):
    done = critmin_run("--config-name", "evil", f"output_root={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode == 2 and "--config-name" in done.stderr
    done = critmin_run("--experimental-rerun", str(tmp_path / "x.pickle"), cwd=tmp_path)
    assert done.returncode == 2 and "--experimental-rerun" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "override",
    [
        "experiment.name=../../escaped",
        "experiment.name=a/b",
        "experiment.name=/tmp/escaped_abs",
        "scenario.name=../escaped",
        "policy.name=..",
        "shock.name=.hidden",
    ],
)
def test_names_cannot_escape_output_root(tmp_path, override):
    root = tmp_path / "a" / "b" / "out"
    done = critmin_run(
        override, "scenario=ree_2024_short", "scenario.end=2024-02", f"output_root={root}", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    key = override.split("=")[0]
    assert key in done.stderr and "plain name" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere under tmp_path


def test_sweep_with_an_escaping_name_writes_nothing(tmp_path):
    done = critmin_run(
        "-m", "experiment.name=ok,../../escaped", "scenario=ree_2024_short", "scenario.end=2024-02",
        f"output_root={tmp_path / 'out'}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "experiment.name" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_code_version_leaves_the_git_index_alone(tmp_path):
    """`git status` refreshes the index of a checkout whose files were touched (writing
    .git/index.lock and .git/index); code_version must not."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)

    git("init", "-q")
    (repo / "f.txt").write_text("x\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    index = repo / ".git" / "index"
    os.utime(repo / "f.txt", (1e9, 1e9))  # stat data changed, content not: git status would rewrite
    os.utime(index, (1e9, 1e9))
    before = (index.stat().st_mtime_ns, sorted(p.name for p in (repo / ".git").iterdir()))
    version = code_version(repo)
    assert "+g" in version and not version.endswith(".dirty")
    assert (index.stat().st_mtime_ns, sorted(p.name for p in (repo / ".git").iterdir())) == before


def test_hydra_core_is_pinned_to_the_tested_range():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (spec,) = [d for d in pyproject["project"]["dependencies"] if d.startswith("hydra-core")]
    allowed = SpecifierSet(spec.removeprefix("hydra-core"))
    assert Version("1.3.2") not in allowed  # os.system ran through a config file with 1.3.2
    assert Version("1.4.0") not in allowed  # not tested
    assert Version(importlib.metadata.version("hydra-core")) in allowed


def test_a_parameter_named_like_a_target_is_not_code():
    """``cover_target_months`` contains the letters of Hydra's ``_target_`` but is a parameter:
    overrides of it compose (calibrate writes such overrides), while ``_target_`` itself is refused."""
    from critmin.sim.run import load_config

    cfg = load_config(["scenario.market.cover_target_months=1.7"])
    assert cfg.scenario.market.cover_target_months == 1.7
    with pytest.raises(DataError, match="name code to run"):
        load_config(["scenario.market._target_=os.system"])
