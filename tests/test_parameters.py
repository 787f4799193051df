"""The parameter table (configs/parameters.csv): it covers every scenario parameter and nothing
else, its bounds are enforced on scenario files and composed configs, it gives sensitivity and
calibration their default ranges, and docs/ODD.md's table is generated from it."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import math
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from critmin.sim import config as config_module
from critmin.sim import parameters
from critmin.sim.config import check_config
from critmin.sim.config_files import check_config_files
from critmin.sim.oracle import ToyMarket, engine_tatonnement
from critmin.sim.run import config_dir, load_config
from critmin.sim.schemas import DataError

ROOT = Path(__file__).resolve().parent.parent
TABLE = parameters.table()
SCENARIOS = sorted(p.stem for p in (config_dir() / "scenario").glob("*.yaml"))
# scenario keys that are not parameters: the run's identity, window, world and timed changes
STRUCTURE = {"name", "data", "start", "end", "blocs", "events"}


def leaves(node: DictConfig, prefix: str) -> dict[str, object]:
    out = {}
    for key in node:
        value = node[key]
        name = f"{prefix}.{key}"
        out |= leaves(value, name) if isinstance(value, DictConfig) else {name: value}
    return out


@pytest.fixture(scope="module")
def ree() -> DictConfig:
    return load_config(["scenario=ree_2024"])


# ---------------------------------------------------------------------- coverage
def test_every_scenario_parameter_has_a_row_and_every_row_a_key(ree):
    keys = {k for k in leaves(ree.scenario, "scenario") if k.split(".")[1] not in STRUCTURE}
    assert len(keys) > 30
    assert sorted(keys - set(TABLE)) == [], "parameters without a row in configs/parameters.csv"
    assert sorted(set(TABLE) - keys) == [], "rows of configs/parameters.csv without a config key"


def _dataclass_types(cls: type, prefix: str) -> dict[str, str]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        name = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(hint):
            out |= _dataclass_types(hint, name)
        else:
            out[name] = {float: "float", int: "int", bool: "bool", int | None: "int|null"}.get(
                hint, str(hint)
            )
    return out


def test_the_table_types_agree_with_the_hydra_schema():
    types = _dataclass_types(config_module.ScenarioConfig, "scenario")
    assert {name: types.get(name) for name in TABLE} == {name: p.type for name, p in TABLE.items()}


def test_the_tables_default_is_the_packaged_ree_2024_value(ree):
    values = leaves(ree.scenario, "scenario")
    for name, p in TABLE.items():
        assert values[name] == p.default, name


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_packaged_scenario_is_within_bounds(name):
    path = config_dir() / "scenario" / f"{name}.yaml"
    parameters.check_file(yaml.safe_load(path.read_text()), str(path))  # the file's own values
    check_config(load_config([f"scenario={name}"]), source=name)  # and as composed


def test_every_row_has_unit_source_description_and_a_range_inside_its_bounds():
    for p in TABLE.values():
        assert p.unit and p.source and p.description, p.name
        if p.numeric:
            assert p.calibration_range is not None, f"{p.name}: no plausible range"
            lo, hi = p.calibration_range
            assert not (p.outside(lo) or p.outside(hi)), p.name
            assert lo <= p.default <= hi or p.name == "scenario.producers.outage_rate_per_year", p.name


# ---------------------------------------------------------------------- bounds enforced
def _outside_values(p: parameters.Parameter) -> list[float | int]:
    """A value above the upper and one below the lower bound (whole numbers for whole-number types)."""
    whole = p.type in ("int", "int|null")
    out = []
    if not math.isnan(p.upper):
        out.append(int(p.upper) + 1 if whole else p.upper * 1.5 + 0.1)
    if not math.isnan(p.lower):
        out.append(int(p.lower) - 1 if whole else p.lower - abs(p.lower) * 0.5 - 0.1)
    return out


CASES = [(p.name, v) for p in TABLE.values() for v in _outside_values(p)]


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v:g}" for n, v in CASES])
def test_a_value_outside_the_bounds_is_refused_naming_the_key(ree, name, value):
    cfg = copy.deepcopy(ree)
    OmegaConf.update(cfg, name, value)
    with pytest.raises(DataError) as err:
        check_config(cfg, source="configs/scenario/ree_2024.yaml")
    p = TABLE[name]
    assert str(err.value) == f"configs/scenario/ree_2024.yaml: {name}: expected {p.expected()}, got {value!r}"


def test_the_message_reads_as_documented(ree):
    cfg = copy.deepcopy(ree)
    OmegaConf.update(cfg, "scenario.market.sigma", 50)
    with pytest.raises(
        DataError, match=r"^x: scenario\.market\.sigma: expected a number in \[0, 10\], got 50"
    ):
        check_config(cfg, source="x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("scenario.market.theta", True),
        ("scenario.market.passes", 2.5),
        ("scenario.demand.noise_sd", math.nan),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(ree, name, value):
    scenario = OmegaConf.to_container(ree.scenario)
    block, key = name.split(".")[1:]
    scenario[block][key] = value
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        parameters.check_scenario(scenario)


def test_a_scenario_file_out_of_bounds_is_refused_before_composition(tmp_path):
    folder = tmp_path / "scenario"
    folder.mkdir()
    (folder / "my.yaml").write_text("defaults:\n  - ree_2024\n  - _self_\nname: my\nmarket:\n  rho: 1.5\n")
    with pytest.raises(DataError) as err:
        check_config_files([], [tmp_path])
    assert (
        str(err.value) == f"{folder / 'my.yaml'}: scenario.market.rho: expected a number in [0, 1], got 1.5"
    )
    (folder / "my.yaml").write_text("name: my\nmarket:\n  rhoo: 0.5\n")
    with pytest.raises(DataError, match=r"my\.yaml: scenario\.market\.rhoo: not a parameter"):
        check_config_files([], [tmp_path])
    (folder / "my.yaml").write_text(
        "name: my\nmarket:\n  rho: '0.3'\n  kappa: 5e-1\n"
    )  # text Hydra reads as numbers
    check_config_files([], [tmp_path])


# ---------------------------------------------------------------------- sweep ranges
def test_sweep_ranges_default_to_the_plausible_range_and_stay_within_the_bounds():
    sigma = TABLE["scenario.market.sigma"]
    assert parameters.sweep_range("scenario.market.sigma", None, "w") == sigma.calibration_range
    assert parameters.sweep_range("scenario.market.sigma", [0.1, 0.3], "w") == (0.1, 0.3)  # narrowed
    assert parameters.sweep_range("scenario.market.sigma", [0.01, 3.0], "w") == (
        0.01,
        3.0,
    )  # wider, in bounds
    with pytest.raises(
        DataError, match=r"^w: range \[0\.1, 12\]: high end 12 is outside the bounds \[0, 10\]"
    ):
        parameters.sweep_range("scenario.market.sigma", [0.1, 12], "w")
    with pytest.raises(DataError, match=r"low < high"):
        parameters.sweep_range("scenario.market.sigma", [0.3, 0.1], "w")
    with pytest.raises(DataError, match=r"has no calibration range"):
        parameters.sweep_range("scenario.max_suppliers", None, "w")
    with pytest.raises(DataError, match=r"shock\.x is not in configs/parameters\.csv"):
        parameters.sweep_range("shock.x", None, "w")
    assert parameters.sweep_range("shock.x", [1, 2], "w") == (1.0, 2.0)  # not a scenario parameter: as given


def test_the_price_rule_oracle_defaults_to_the_models_values():
    m = ToyMarket(
        supply0=[100, 20], demand0=[40, 80], edges=[(0, 1, 5.0, 0.0, np.inf), (1, 0, 5.0, 0.0, np.inf)]
    )
    model = dict(
        kappa=TABLE["scenario.market.kappa"].default,
        sigma=TABLE["scenario.market.sigma"].default,
        max_step=TABLE["scenario.market.max_log_step"].default,
    )
    default, _ = engine_tatonnement(m, theta=0.1, steps=3)
    explicit, _ = engine_tatonnement(m, theta=0.1, steps=3, **model)
    np.testing.assert_array_equal(default, explicit)
    other, _ = engine_tatonnement(m, theta=0.1, steps=3, **{**model, "sigma": 0.3})
    assert not np.array_equal(default, other)


# ---------------------------------------------------------------------- the table as a data file
@pytest.mark.parametrize(
    ("row", "column", "value", "expected"),
    [
        ("scenario.market.kappa", "type", "number", "column 'type': expected one of"),
        ("scenario.market.kappa", "calib_upper", "0.01", "columns 'calib_lower', 'calib_upper'"),
        ("scenario.market.sigma", "calib_upper", "11", "columns 'calib_upper', 'upper'"),
        ("scenario.market.sigma", "default", "12", "column 'default': expected a number in [0, 10]"),
        ("scenario.market.passes", "default", "4.5", "column 'default': expected a int"),
        ("scenario.market.kappa", "lower", "abc", "column 'lower': expected a number or an empty cell"),
        ("scenario.market.kappa", "source", "", "column 'source': expected a non-empty value"),
        (
            "scenario.market.sigma",
            "name",
            "scenario.market.kappa",
            "duplicate key (name=scenario.market.kappa)",
        ),
    ],
)
def test_a_bad_table_row_names_file_row_and_column(tmp_path, row, column, value, expected):
    import pandas as pd

    path = tmp_path / "parameters.csv"
    shutil.copy(parameters.table_path(), path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[df["name"] == row, column] = value
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        parameters.load_table(path)
    line = int(df.index[df["name"] == (value if column == "name" else row)][-1]) + 2
    assert str(path) in str(err.value) and f"row {line}" in str(err.value) and expected in str(err.value)


# ---------------------------------------------------------------------- docs/ODD.md
def _odd_generator():
    spec = importlib.util.spec_from_file_location("generate_odd", ROOT / "docs" / "generate_odd.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_odd_parameter_table_is_generated_from_the_table():
    gen = _odd_generator()
    block = gen.current(gen.ODD.read_text())
    assert block == parameters.markdown_table(), "docs/ODD.md §14 is stale: run `make docs`"
    for p in TABLE.values():
        assert f"`{p.name.removeprefix('scenario.')}`" in block


def test_a_changed_cell_of_the_odd_table_is_noticed(tmp_path, monkeypatch):
    gen = _odd_generator()
    odd = tmp_path / "ODD.md"
    text = gen.ODD.read_text()
    odd.write_text(text.replace("| 0.1 | [0, 10] | 0.02–0.5 |", "| 0.3 | [0, 10] | 0.02–0.5 |"))
    assert odd.read_text() != text
    monkeypatch.setattr(gen, "ODD", odd)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and odd.read_text() == text
