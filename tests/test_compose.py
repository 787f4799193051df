"""Composing run configs: once per process for the same overrides and config files."""

import os

from omegaconf import OmegaConf

from critmin.sim import compose


def test_the_same_overrides_compose_once_and_each_caller_gets_its_own_copy(monkeypatch):
    calls = []
    real = compose.compose_checked
    monkeypatch.setattr(compose, "compose_checked", lambda o, **kw: calls.append(list(o)) or real(o, **kw))
    monkeypatch.setattr(compose, "_COMPOSED", type(compose._COMPOSED)())
    first = compose.load_config(["scenario.end=2026-12"])
    again = compose.load_config(["scenario.end=2026-12", "seed=7"])  # a plain seed: set on the copy
    assert calls == [["scenario.end=2026-12"]]
    assert again.seed == 7 and first.seed == 0
    direct = real(["scenario.end=2026-12", "seed=7"])
    assert OmegaConf.to_container(again) == OmegaConf.to_container(direct)
    # the copy (a pickle round trip) keeps the structured type and Hydra's struct flag: an
    # unknown key is still refused
    assert OmegaConf.get_type(again) is OmegaConf.get_type(direct)
    assert OmegaConf.is_struct(again) == OmegaConf.is_struct(direct)
    assert OmegaConf.is_struct(again.scenario) == OmegaConf.is_struct(direct.scenario)
    again.scenario.end = "2025-01"  # a caller changing its config changes nobody else's
    assert compose.load_config(["scenario.end=2026-12"]).scenario.end == "2026-12"
    compose.load_config(["scenario.end=2026-12", "seed=01"])  # not a plain seed: composed
    assert len(calls) == 2


def test_a_changed_config_file_is_composed_again(tmp_path):
    (tmp_path / "policy").mkdir()
    path = tmp_path / "policy" / "mine.yaml"
    path.write_text("name: mine\ninstruments: []\n")
    overrides = [f"hydra.searchpath=[file://{tmp_path}]", "policy=mine"]
    assert list(compose.load_config(overrides).policy.instruments) == []
    path.write_text("name: mine\ninstruments: []\n# changed\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    key = (tuple(overrides), compose._files_key(overrides))
    assert key not in compose._COMPOSED
    compose.load_config(overrides)
    assert key in compose._COMPOSED


def test_a_cold_load_config_reads_the_config_folders_once(tmp_path, monkeypatch):
    """The file check's disk key and the composed config's disk key hash the same folders: read
    once per load_config call (a new process paid for both)."""
    from critmin.sim import cache, config_files

    monkeypatch.delenv("CRITMIN_CACHE", raising=False)  # the disk cache on (tests run without)
    monkeypatch.setenv("CRITMIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(compose, "_COMPOSED", type(compose._COMPOSED)())
    monkeypatch.setattr(config_files, "_PASSED", set())
    reads = []
    real = cache.folder_inputs
    configs = config_files.search_dirs([])

    def counted(folders):  # the config folders' reads (Hydra's plugin folders are read too)
        if list(folders) == configs:
            reads.append(1)
        return real(folders)

    monkeypatch.setattr(cache, "folder_inputs", counted)
    first = compose.load_config(["scenario.end=2025-06"])
    assert len(reads) == 1  # both keys, one read
    monkeypatch.setattr(compose, "_COMPOSED", type(compose._COMPOSED)())
    monkeypatch.setattr(config_files, "_PASSED", set())
    again = compose.load_config(["scenario.end=2025-06"])  # from the disk cache, under the same keys
    assert len(reads) == 2 and len(list((tmp_path / "cache").glob("config-*.pkl"))) == 1
    assert OmegaConf.to_container(again) == OmegaConf.to_container(first)
