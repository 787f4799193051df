"""config_files.yaml_paths: one os.walk in place of the two rglobs that listed the config files
to check (and the composed config's file key): the same paths, in the same order."""

from pathlib import Path

import pytest

from critmin.sim.config_files import package_config_dir, yaml_paths


def _rglob(root: Path, hidden: bool) -> list[Path]:
    """What the config scan used before: both rglobs, hidden parts dropped unless ``hidden``."""
    return sorted(
        p
        for pattern in ("*.yaml", "*.yml")
        for p in root.rglob(pattern)
        if hidden or not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _tree(root: Path) -> None:
    for rel in (
        "config.yaml",
        "a/b.yml",
        "a/c.txt",
        "a/deep/er/x.yaml",
        ".hidden/h.yaml",
        "a/.h.yaml",
        "d.yaml/e.yml",  # a folder named like a config file, and a file in it
        "outside/o.yaml",
        "YAML/upper.YAML",  # not matched (case-sensitive, as rglob on POSIX)
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x: 1\n")
    (root / "a" / "linked").symlink_to(root / "outside", target_is_directory=True)  # listed, not entered
    (root / "a" / "link.yaml").symlink_to(root / "config.yaml")


@pytest.mark.parametrize("hidden", [False, True])
def test_yaml_paths_are_the_rglob_paths(tmp_path: Path, hidden: bool) -> None:
    _tree(tmp_path)
    got = yaml_paths(tmp_path, hidden=hidden)
    assert got == _rglob(tmp_path, hidden)
    assert (tmp_path / ".hidden" / "h.yaml" in got) == hidden  # the hidden ones differ
    assert tmp_path / "d.yaml" in got and tmp_path / "a" / "link.yaml" in got
    assert tmp_path / "a" / "linked" / "o.yaml" not in got


def test_yaml_paths_of_the_packaged_configs() -> None:
    root = package_config_dir()
    assert yaml_paths(root) == _rglob(root, False) and len(yaml_paths(root)) > 20
    assert yaml_paths(root, hidden=True) == _rglob(root, True)
