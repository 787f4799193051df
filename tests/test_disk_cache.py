"""The disk cache of built worlds, networks and calibrations (critmin.sim.cache.disk_memo): a hit
gives the same objects and the same run, and an edit of one data cell, of one builder's source
or of a world in memory is a miss. Bad input is never stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from world_copies import edit_csv, set_cell, world_copy

from critmin.sim import cache, compose, config_files, world
from critmin.sim.network import compile_network, compile_network_digested, network_content
from critmin.sim.world import DataError, load_worlds


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The disk cache on, in a fresh folder."""
    folder = tmp_path / "cache"
    monkeypatch.delenv("CRITMIN_CACHE", raising=False)
    monkeypatch.setenv("CRITMIN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the world builds (cache misses)."""
    calls: list[int] = []
    real = world._load_worlds

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(world, "_load_worlds", counted)
    return calls


def _entries(folder: Path, namespace: str) -> list[Path]:
    return sorted(folder.glob(f"{namespace}-*.pkl"))


def test_world_is_stored_then_loaded_equal(tmp_path: Path, disk: Path, builds: list[int]) -> None:
    data = world_copy(tmp_path)
    first = load_worlds([data])
    second = load_worlds([data])
    assert len(builds) == 1 and len(_entries(disk, "world")) == 1
    assert second is not first  # a fresh copy: a caller that changes it changes nothing stored
    pd.testing.assert_frame_equal(second.facilities, first.facilities)
    assert cache.content_digest(second) == cache.content_digest(first)


def test_one_edited_cell_is_a_miss(tmp_path: Path, disk: Path, builds: list[int]) -> None:
    data = world_copy(tmp_path)
    before = load_worlds([data])
    old = before.facilities["capacity_tpa"].iloc[0]
    edit_csv(data / "facilities.csv", set_cell("capacity_tpa", str(old + 1.0)))
    after = load_worlds([data])
    assert len(builds) == 2 and len(_entries(disk, "world")) == 2
    assert after.facilities["capacity_tpa"].iloc[0] == old + 1.0


def test_one_edited_builder_source_is_a_miss(
    tmp_path: Path, disk: Path, builds: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src" / "sim"
    src.mkdir(parents=True)
    shutil.copy(Path(world.__file__), src / "world.py")
    monkeypatch.setattr(cache, "source_folders", lambda: [src])
    cache._process_source_digest.cache_clear()  # as in a new process
    data = world_copy(tmp_path)
    load_worlds([data])
    load_worlds([data])
    assert len(builds) == 1
    with (src / "world.py").open("a") as f:
        f.write("\n# an edit\n")
    load_worlds([data])  # a process reads its source once: the running code is the old one
    assert len(builds) == 1
    cache._process_source_digest.cache_clear()  # a new process, with the edited source
    load_worlds([data])
    assert len(builds) == 2 and len(_entries(disk, "world")) == 2
    cache._process_source_digest.cache_clear()


def test_key_names_library_versions_and_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cache.disk_key("world", "inputs")
    assert cache.disk_key("world", "other inputs") != key
    assert cache.disk_key("network", "inputs") != key
    monkeypatch.setattr(cache, "library_versions", lambda: (("numpy", "0.0"),))
    assert cache.disk_key("world", "inputs") != key


def test_bad_input_is_never_stored(tmp_path: Path, disk: Path) -> None:
    data = world_copy(tmp_path)
    edit_csv(data / "facilities.csv", set_cell("capacity_tpa", "-5"))
    for _ in range(2):  # the same clear error each time
        with pytest.raises(DataError, match="capacity_tpa"):
            load_worlds([data])
    assert not _entries(disk, "world")


def test_damaged_entry_is_rebuilt_and_replaced(tmp_path: Path, disk: Path, builds: list[int]) -> None:
    data = world_copy(tmp_path)
    load_worlds([data])
    (entry,) = _entries(disk, "world")
    entry.write_bytes(b"not a pickle")
    again = load_worlds([data])
    assert len(builds) == 2 and again.facilities.shape[0] > 0
    load_worlds([data])
    assert len(builds) == 2  # the replaced entry is read


def test_off_writes_nothing(tmp_path: Path, disk: Path, builds: list[int], monkeypatch) -> None:
    monkeypatch.setenv("CRITMIN_CACHE", "off")
    data = world_copy(tmp_path)
    load_worlds([data])
    load_worlds([data])
    assert len(builds) == 2 and not disk.exists()


def test_world_edited_in_memory_compiles_anew(tmp_path: Path, disk: Path) -> None:
    w = load_worlds([world_copy(tmp_path)])
    compile_network(w, 2024)
    compile_network(w, 2024)
    assert len(_entries(disk, "network")) == 1
    w.facilities.loc[0, "capacity_tpa"] += 1.0
    net = compile_network(w, 2024)
    assert len(_entries(disk, "network")) == 2
    assert net.capacity.max() > 0


def test_a_world_is_stored_with_its_digest(tmp_path: Path, disk: Path) -> None:
    """The digest stored with a world is its content digest, built or loaded; a network keyed
    by it is the entry keyed by the digest computed from the world (the same key)."""
    data = world_copy(tmp_path)
    built, digest = world.load_worlds_digested([data])
    loaded, stored = world.load_worlds_digested([data])
    assert loaded is not built
    assert digest == stored == cache.content_digest(built) == cache.content_digest(loaded)
    built_net, net_digest = compile_network_digested(loaded, 2024, world_digest=stored)
    again, stored_net = compile_network_digested(loaded, 2024)  # from disk, with its digest
    assert len(_entries(disk, "network")) == 1
    assert net_digest == stored_net == cache.content_digest(network_content(again))
    assert again is not built_net
    loaded.facilities.loc[0, "capacity_tpa"] += 1.0  # edited: computed from the world, a miss
    compile_network(loaded, 2024)
    assert len(_entries(disk, "network")) == 2


def test_no_world_digest_without_the_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRITMIN_CACHE", "off")
    assert world.load_worlds_digested([world_copy(tmp_path)])[1] is None


def test_the_model_takes_the_digest_only_of_a_world_it_just_loaded(disk: Path) -> None:
    """A world from the per-process cache may have been changed in place by an earlier caller:
    its digest is computed again, not taken from when it was loaded."""
    from critmin.sim import model
    from critmin.sim.run import load_config

    scenario = load_config(["scenario=ree_2024_short"]).scenario
    cache._caches.pop("world", None)  # as in a fresh process
    first, digest = model._load_world(scenario)
    again, none = model._load_world(scenario)
    assert again is first and digest == cache.content_digest(first) and none is None
    # the network likewise, and the model hands both on only when both are fresh
    cache._caches.pop("network", None)
    net, net_digest = model._network(first, 2024, None, [], digest)
    same, no_digest = model._network(first, 2024, None, [], digest)
    assert same is net and net_digest == cache.content_digest(network_content(net)) and no_digest is None
    cache._caches.pop("world", None)
    cache._caches.pop("network", None)
    fresh = model.CritminModel(load_config(["scenario=ree_2024_short", "scenario.end=2024-02"]))
    assert fresh.fresh_digests == (
        cache.content_digest(fresh.world),
        cache.content_digest(network_content(fresh.net)),
    )
    reused = model.CritminModel(load_config(["scenario=ree_2024_short", "scenario.end=2024-02"]))
    assert reused.world is fresh.world and reused.fresh_digests is None


def test_a_run_from_the_disk_cache_is_identical(disk: Path) -> None:
    """Built, then loaded from disk in a fresh per-process cache: the same tables, bit for bit."""
    from critmin.experiments.api import simulate
    from critmin.sim.run import load_config

    overrides = ["scenario=ree_2024_short", "scenario.end=2024-06"]
    fresh_process()
    built = simulate(load_config(overrides))
    stored = {p.name.split("-")[0] for p in disk.glob("*.pkl")}
    assert stored >= {"world", "network", "calibration", "config", "configcheck", "pipeline"}
    fresh_process()  # every object comes from disk
    loaded = simulate(load_config(overrides))
    fresh_process()
    for name in ("timeseries", "flows", "facility_activity", "consumption_origin", "projects"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(built, name), check_exact=True)
    assert loaded.summary == built.summary


def test_a_project_edited_in_memory_builds_its_pipeline_anew(tmp_path: Path, disk: Path) -> None:
    import numpy as np

    from critmin.sim.investment import build_pipeline
    from critmin.sim.run import load_config

    params = load_config([]).scenario.investment
    w = load_worlds([world_copy(tmp_path)])
    net = compile_network(w, 2024)
    first = build_pipeline(w, net, (2024, 1), params, np.random.default_rng(0))
    fresh_process()
    again = build_pipeline(w, net, (2024, 1), params, np.random.default_rng(0))
    assert len(_entries(disk, "pipeline")) == 1
    np.testing.assert_array_equal(again.capex, first.capex)
    w.projects.loc[0, "capacity_tpa"] *= 2
    fresh_process()
    edited = build_pipeline(w, net, (2024, 1), params, np.random.default_rng(0))
    assert len(_entries(disk, "pipeline")) == 2
    row = int(np.flatnonzero(edited.ids == w.projects.loc[0, "facility"])[0])
    assert edited.nameplate[row] == 2 * first.nameplate[row]


def fresh_process() -> None:
    """Empty the per-process caches, as in a new process."""
    cache._caches.clear()
    compose._COMPOSED.clear()
    config_files._PASSED.clear()


def test_composed_config_from_disk_is_equal(disk: Path) -> None:
    from omegaconf import OmegaConf

    overrides = ["scenario=ree_2024_short", "policy=alliance_all"]
    fresh_process()
    built = compose.load_config(overrides)
    fresh_process()
    loaded = compose.load_config(overrides)
    fresh_process()
    assert OmegaConf.to_yaml(loaded) == OmegaConf.to_yaml(built)
    assert OmegaConf.get_type(loaded) is OmegaConf.get_type(built)
    assert OmegaConf.is_struct(loaded)


def test_an_edited_config_file_is_checked_and_composed_anew(
    tmp_path: Path, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config folder on the search path: one value edited is a miss for the composed config;
    an edit that breaks a rule fails the check, however often the folder passed before."""
    extra = tmp_path / "extra" / "scenario"
    extra.mkdir(parents=True)
    text = (config_files.package_config_dir() / "scenario" / "ree_2024_short.yaml").read_text()
    (extra / "mine.yaml").write_text(text.replace("name: ree_2024_short", "name: mine"))
    overrides = ["scenario=mine", f"hydra.searchpath=[file://{extra.parent}]"]
    fresh_process()
    first = compose.load_config(overrides)
    (extra / "mine.yaml").write_text(
        text.replace("name: ree_2024_short", "name: mine") + "\nmax_suppliers: 7\n"
    )
    fresh_process()
    second = compose.load_config(overrides)
    assert second.scenario.max_suppliers == 7 != first.scenario.max_suppliers
    (extra / "mine.yaml").write_text(text)  # its name is no longer its file's
    fresh_process()
    with pytest.raises(DataError, match="key name"):
        compose.load_config(overrides)
    fresh_process()


def test_an_unwritable_cache_folder_only_costs_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builds: list[int]
) -> None:
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    monkeypatch.delenv("CRITMIN_CACHE", raising=False)
    monkeypatch.setenv("CRITMIN_CACHE_DIR", str(blocked / "cache"))
    data = world_copy(tmp_path)
    first, second = load_worlds([data]), load_worlds([data])
    assert len(builds) == 2
    pd.testing.assert_frame_equal(first.facilities, second.facilities)


def test_a_folder_others_can_write_is_never_read(
    tmp_path: Path, disk: Path, builds: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Entries are pickles: one planted in a folder others can write must not be loaded."""
    data = world_copy(tmp_path)
    load_worlds([data])
    assert len(builds) == 1 and _entries(disk, "world")
    disk.chmod(0o777)
    with caplog.at_level("WARNING", logger="critmin"):
        load_worlds([data])
    assert len(builds) == 2  # built again, the entry not read
    assert "others cannot write" in caplog.text
    disk.chmod(0o700)
    load_worlds([data])
    assert len(builds) == 2  # the user's own folder again: read


def test_content_digest_tells_content_apart() -> None:
    import numpy as np

    d = cache.content_digest
    one = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert d(one) == d(one.copy())
    assert d(one) != d(one.assign(a=[1.0, 2.0 + 1e-12]))  # one value, in its last digits
    assert d(one) != d(one.assign(b=["x", "z"]))
    assert d(one) != d(one[["b", "a"]])  # column order
    assert d(["ab", "c"]) != d(["a", "bc"])  # strings hashed with their lengths
    assert d([1, "1"]) != d(["1", "1"]) and d(1) != d(1.0) != d(True)
    assert d({"a": 1, "b": 2}) != d({"b": 2, "a": 1})  # order matters to the builders
    assert d({"a", "b"}) == d({"b", "a"})  # a set has none
    cats = pd.Series(["x", "y"], dtype=pd.CategoricalDtype(["x", "y"]))
    assert d(cats) != d(cats.cat.reorder_categories(["y", "x"]))
    assert d(np.zeros(3)) != d(np.zeros(3, dtype=np.float32)) != d(np.zeros((3, 1)))


def test_content_digest_of_arrow_strings_reads_their_content_not_their_layout() -> None:
    """A digest stored with a world must be the one its unpickled copy gives: an Arrow-backed
    string column made of several chunks (a concat, as a multi-chain world's tables) or sliced
    out of a longer one has the digest of the same values in one piece; a moved boundary, a
    changed or a missing value does not."""
    d = cache.content_digest
    whole = pd.Series(["ab", "c", "", "déjà"], dtype="str")
    chunks = pd.concat([pd.Series(["ab", "c"], dtype="str"), pd.Series(["", "déjà"], dtype="str")])
    sliced = pd.Series(["zz", "ab", "c", "", "déjà"], dtype="str").iloc[1:]
    assert isinstance(whole.array, pd.arrays.ArrowStringArray)
    assert chunks.array.__arrow_array__().num_chunks == 2  # the layout differs, not the content
    assert d(whole) == d(chunks.reset_index(drop=True)) == d(sliced.reset_index(drop=True))
    assert d(whole) != d(pd.Series(["a", "bc", "", "déjà"], dtype="str"))
    assert d(whole) != d(pd.Series(["ab", "c", "", "deja"], dtype="str"))
    assert d(whole) != d(pd.Series(["ab", "c", None, "déjà"], dtype="str"))
    assert d(pd.Series(["ab", None], dtype="str")) != d(pd.Series(["ab", "nan"], dtype="str"))
    assert d(pd.Series([], dtype="str")) != d(pd.Series([""], dtype="str"))
    assert d(whole) != d(whole.astype(object))  # the dtype is part of it


def test_parameter_table_is_stored_then_loaded_equal(disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged parameter table is read and checked once, then loaded from the disk cache;
    an edited table is a miss (its SHA-256 is in the key)."""
    from critmin.sim import parameters

    reads: list[Path] = []
    real = parameters.load_table

    def counted(path: Path | None = None) -> dict:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(parameters, "load_table", counted)
    parameters.table.cache_clear()
    built = parameters.table()
    parameters.table.cache_clear()
    loaded = parameters.table()
    parameters.table.cache_clear()
    assert len(reads) == 1 and len(_entries(disk, "parameters")) == 1
    assert repr(loaded) == repr(built) and loaded is not built  # NaN bounds: compared as text
    monkeypatch.setattr(cache, "file_digest", lambda path: "edited")
    parameters.table()
    parameters.table.cache_clear()
    assert len(reads) == 2 and len(_entries(disk, "parameters")) == 2
