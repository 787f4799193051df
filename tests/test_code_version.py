"""The manifest's code version (sim/run.py: code_version): the commit of the source tree from
one git call, ``.dirty`` when a tracked file changed, the bare package version without a commit
or without git; the call may be started ahead of the run (start_code_version)."""

from __future__ import annotations

import os
import subprocess

from critmin.sim import run
from critmin.version import __version__


def _repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
        ).stdout.strip()

    return repo, git


def test_the_commit_and_a_changed_tracked_file(tmp_path):
    repo, git = _repo(tmp_path)
    git("init", "-q")
    assert run.code_version(repo) == __version__  # no commit yet
    (repo / "f.txt").write_text("x\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    sha = git("rev-parse", "HEAD")[:12]
    run.code_version.cache_clear()
    (repo / "new.txt").write_text("untracked\n")  # untracked files do not count
    assert run.code_version(repo) == f"{__version__}+g{sha}"
    (repo / "f.txt").write_text("y\n")
    run.code_version.cache_clear()
    assert run.code_version(repo) == f"{__version__}+g{sha}.dirty"
    run.code_version.cache_clear()


def test_without_a_repository_the_package_version(tmp_path):
    run.code_version.cache_clear()
    assert run.code_version(tmp_path) == __version__
    run.code_version.cache_clear()


def test_started_ahead_gives_the_same_version():
    run.code_version.cache_clear()
    direct = run.code_version()
    run.code_version.cache_clear()
    run.start_code_version()
    assert run._pending_git
    assert run.code_version() == direct
    assert not run._pending_git  # read and reaped
    run.start_code_version()  # known now: nothing started
    assert not run._pending_git
