"""Composing run configs: once per process for the same overrides and config files."""

import os

from omegaconf import OmegaConf

from critmin.sim import compose


def test_the_same_overrides_compose_once_and_each_caller_gets_its_own_copy(monkeypatch):
    calls = []
    real = compose.compose_checked
    monkeypatch.setattr(compose, "compose_checked", lambda o: calls.append(list(o)) or real(o))
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
