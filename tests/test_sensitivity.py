"""`critmin sensitivity`: the SALib core on functions with known indices, the model end to end,
and config errors raised before any simulation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from SALib.test_functions import Ishigami

import critmin.experiments.api
from critmin.experiments import sensitivity, sensitivity_core
from critmin.experiments.sensitivity_config import ConfigError, load_sensitivity_config
from critmin.experiments.sensitivity_core import Design, FailedSamplesError, Problem
from critmin.sim import parameters

PI = math.pi
ISHIGAMI = Problem(("x1", "x2", "x3"), ((-PI, PI),) * 3)


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Analytic first-order and total Sobol indices of the Ishigami function (Ishigami & Homma 1990)."""
    v1 = 0.5 * (1 + b * PI**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = 8 * b**2 * PI**8 / 225
    var = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / var, np.array([v1 + v13, v2, v13]) / var


# ---------------------------------------------------------------------- core: known functions
def test_sobol_reproduces_the_ishigami_indices():
    s1, st = ishigami_indices()
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-4)  # the published values
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-4)
    # N = 4096 (20,480 evaluations): over 10 seeds the largest error was 0.007 and the bootstrap
    # 95% half-widths 0.015-0.048. The test asks the estimate to lie inside its own confidence
    # interval, and the interval to be narrower than 0.05, so every index is within 0.05.
    result = sensitivity_core.run(
        ISHIGAMI, Design("sobol", 4096, seed=1), Ishigami.evaluate, ["y"], vectorised=True
    )
    wide = result.indices.pivot(index="parameter", columns="index", values="value").loc[["x1", "x2", "x3"]]
    conf = result.indices.pivot(index="parameter", columns="index", values="conf").loc[["x1", "x2", "x3"]]
    assert (conf[["S1", "ST"]].to_numpy() < 0.05).all()
    assert (np.abs(wide["S1"].to_numpy() - s1) <= conf["S1"].to_numpy()).all(), wide
    assert (np.abs(wide["ST"].to_numpy() - st) <= conf["ST"].to_numpy()).all(), wide


def test_morris_on_ishigami_ranks_x1_x2_above_x3_but_x3_is_not_negligible():
    result = sensitivity_core.run(
        ISHIGAMI, Design("morris", 1000, seed=1, levels=4), Ishigami.evaluate, ["y"], vectorised=True
    )
    ix = result.indices.pivot(index="parameter", columns="index", values="value")
    conf = result.indices.query("index == 'mu_star'").set_index("parameter")["conf"]
    # 4 levels on [-pi, pi]: the grid is {-pi, -pi/3, pi/3, pi} and a step is 2/3 of the range.
    # x2 enters as 7 sin^2(x2): every step changes y by 7 * 3/4, so mu*_2 = 5.25 / (2/3) exactly.
    assert ix.at["x2", "mu_star"] == pytest.approx(7.875, rel=1e-9)
    assert abs(ix.at["x2", "mu"]) < 0.25 * ix.at["x2", "mu_star"]  # up and down: not monotonic
    # expectations over the grid: mu*_1 = (sqrt(3)/2)/(2/3) * E[1 + 0.1 x3^4],
    # mu*_3 = 0.1 (pi^4 - (pi/3)^4)/(2/3) * E|sin x1| (x3 acts only through x1)
    mu1 = math.sqrt(3) / 2 / (2 / 3) * (1 + 0.1 * PI**4 * (1 + 1 / 81) / 2)
    mu3 = 0.1 * PI**4 * (1 - 1 / 81) / (2 / 3) * (math.sqrt(3) / 2) / 2
    assert abs(ix.at["x1", "mu_star"] - mu1) <= 2 * conf["x1"]
    assert abs(ix.at["x3", "mu_star"] - mu3) <= 2 * conf["x3"]
    # x1 and x2 rank above x3 with separated intervals...
    assert (
        min(ix.at["x1", "mu_star"] - conf["x1"], ix.at["x2", "mu_star"]) > ix.at["x3", "mu_star"] + conf["x3"]
    )
    # ...but x3 (S1 = 0) is not negligible: its effect is an interaction, so sigma exceeds mu*
    assert ix.at["x3", "mu_star"] > 0.5 * ix.at["x1", "mu_star"]
    assert ix.at["x3", "sigma"] > ix.at["x3", "mu_star"]


def test_morris_on_a_linear_function_gives_coefficient_times_range():
    problem = Problem(("a", "b", "c"), ((0.0, 1.0), (2.0, 5.0), (-1.0, 1.0)))
    coef = np.array([3.0, -2.0, 0.5])
    result = sensitivity_core.run(
        problem, Design("morris", 6, seed=3), lambda X: X @ coef, ["y"], vectorised=True
    )
    ix = result.indices.pivot(index="parameter", columns="index", values="value").loc[["a", "b", "c"]]
    np.testing.assert_allclose(ix["mu"], coef * [1.0, 3.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(ix["mu_star"], np.abs(coef) * [1.0, 3.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(ix["sigma"], 0.0, atol=1e-12)


def _fails_when_x1_is_high(x: np.ndarray) -> dict[str, float]:
    if x[0] > 3.0:
        raise RuntimeError("solver diverged")
    return {"y": float(Ishigami.evaluate(x[None, :])[0]), "z": float(x[1])}


def test_a_failed_sample_is_recorded_and_the_analysis_refuses_with_its_number():
    design = Design("morris", 4, seed=1)
    X = sensitivity_core.sample(ISHIGAMI, design)
    failing = set(np.flatnonzero(X[:, 0] > 3.0).tolist())
    assert failing and len(failing) < len(X)  # the design hits both branches
    evaluation = sensitivity_core.evaluate(_fails_when_x1_is_high, X, ["y", "z"], n_jobs=2)
    assert set(evaluation.failures) == failing
    assert all("RuntimeError: solver diverged" in e for e in evaluation.failures.values())
    ok = sorted(set(range(len(X))) - failing)
    assert np.isfinite(evaluation.values.iloc[ok].to_numpy()).all()  # the other samples ran
    with pytest.raises(FailedSamplesError) as err:
        sensitivity_core.analyse(ISHIGAMI, design, X, evaluation)
    assert set(err.value.failures) == failing
    assert "RuntimeError: solver diverged" in str(err.value) and f"{min(failing)}" in str(err.value)


def test_the_refusal_groups_samples_by_reason():
    err = FailedSamplesError(
        {68: "DataError: x", 69: "DataError: x", 70: "DataError: x", 72: "DataError: x", 3: "b"}, 100
    )
    assert err.failures == {
        3: "b",
        68: "DataError: x",
        69: "DataError: x",
        70: "DataError: x",
        72: "DataError: x",
    }
    assert str(err).startswith("5 of 100 samples have no finite output")
    assert str(err).endswith("sample 3: b; samples 68-70, 72: DataError: x")


def test_a_non_finite_output_also_refuses_and_names_the_output():
    design = Design("sobol", 8, seed=0)
    X = sensitivity_core.sample(ISHIGAMI, design)
    evaluation = sensitivity_core.evaluate(lambda x: [np.nan if x[2] > 0 else 1.0 + x[0]], X, ["y"])
    with pytest.raises(FailedSamplesError, match="output y = nan"):
        sensitivity_core.analyse(ISHIGAMI, design, X, evaluation)


def test_a_constant_output_has_zero_morris_and_undefined_sobol_indices():
    for design, expect in ((Design("morris", 4), 0.0), (Design("sobol", 16), np.nan)):
        result = sensitivity_core.run(
            ISHIGAMI, design, lambda X: np.full(len(X), 2.0), ["c"], vectorised=True
        )
        main = result.indices[result.indices["index"].isin(["mu_star", "S1", "ST"])]["value"]
        np.testing.assert_array_equal(main, expect)
        assert result.notes == [result.notes[0]] and "constant" in result.notes[0]


@pytest.mark.parametrize(
    ("design", "message"),
    [
        (dict(method="sobol", n=100), "power of 2"),
        (dict(method="morris", n=1), "at least 2 trajectories"),
        (dict(method="morris", n=4, levels=3), "even number of levels"),
        (dict(method="fast", n=4), "expected one of"),
    ],
)
def test_bad_designs_are_refused(design, message):
    with pytest.raises(sensitivity_core.SensitivityError, match=message):
        Design(**design)


# ---------------------------------------------------------------------- the model
BASE = [
    "scenario=ree_2024_short",
    "scenario.end=2024-12",
    "policy=stockpile_joint",
    "shock=magnet_ban_demo",
    "shock.events.0.start=2024-04",
    "shock.events.0.end=2024-08",
]


def write_config(path: Path, **changes) -> Path:
    """A two-parameter analysis of 2024 with the joint stockpile and the magnet ban moved to
    Apr-Jul 2024, so a 12-month run sees it and all four outputs vary."""
    cfg = {
        "name": "tiny",
        "seed": 7,
        "base_overrides": BASE,
        "morris": {"trajectories": 2, "levels": 4},
        "parameters": [
            {"key": "scenario.market.kappa", "range": [0.05, 1.0], "basis": "ree_2024.yaml comment"},
            {"key": "scenario.demand.safety_stock_months", "range": [0.5, 6.0], "basis": "facts.md §3.8"},
        ],
        "outputs": [
            {
                "name": "dependency_2024",
                "kind": "dependency",
                "commodity": "ndfeb_magnet",
                "stage": "magnet",
                "year": 2024,
            },
            {"name": "peak_price_ratio", "kind": "peak_price_ratio", "commodity": "ndfeb_magnet"},
            {"name": "fiscal_cost", "kind": "fiscal_cost"},
            {"name": "unmet_share", "kind": "unmet_share", "region": "G7+"},
        ],
    }
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


def test_morris_on_the_model_end_to_end(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml")
    code = sensitivity.main(["--config", str(config), "--jobs", "2", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("tiny-morris-")
    names = {"samples.parquet", "indices.parquet", "indices.csv", "indices.png", "manifest.yaml"}
    assert names <= {p.name for p in folder.iterdir()}
    printed = capsys.readouterr().out
    assert "dependency_2024 [share]" in printed and "market.kappa" in printed

    indices = pd.read_parquet(folder / "indices.parquet")
    assert list(indices.columns) == ["output", "parameter", "index", "value", "conf"]
    assert len(indices) == 4 * 2 * 3  # outputs x parameters x (mu_star, sigma, mu)
    assert np.isfinite(indices["value"]).all()
    assert np.isfinite(indices.query("index == 'mu_star'")["conf"]).all()
    pd.testing.assert_frame_equal(pd.read_csv(folder / "indices.csv"), indices, check_dtype=False)

    samples = pd.read_parquet(folder / "samples.parquet")
    assert len(samples) == 2 * (2 + 1) and samples["error"].isna().all()
    outputs = ["dependency_2024", "peak_price_ratio", "fiscal_cost", "unmet_share"]
    assert (samples[outputs].nunique() > 1).all()  # the design moves every output (else adjust BASE)
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    assert manifest["seed"] == 7 and manifest["design"]["runs"] == 6
    assert manifest["code_version"] and manifest["input_data_sha256"]
    assert all(len(h) == 64 for h in manifest["input_data_sha256"].values())

    # one sample, simulated independently from its parameter values, gives the same outputs
    row = samples.iloc[4]
    result = critmin.simulate(
        [
            *BASE,
            f"scenario.market.kappa={float(row['scenario.market.kappa'])!r}",
            f"scenario.demand.safety_stock_months={float(row['scenario.demand.safety_stock_months'])!r}",
        ]
    )
    dep = result.dependency("ndfeb_magnet", "magnet").set_index("period").at[2024, "share"]
    price = result.series("price", "ndfeb_magnet", "WORLD")
    peak = price.max() / result.summary["price_usd_per_t_base_year"]["ndfeb_magnet"]
    fiscal = result.summary["dependency"]["fiscal_cost_usd_total"]
    g7plus = {c for c, bloc in result.summary["world"]["countries"].items() if bloc in ("g7", "partner")}
    fd = result.final_demand[result.final_demand["region"].isin(g7plus)]
    unmet = fd["unmet_demand"].sum() / fd["demand"].sum()
    got = row[["dependency_2024", "peak_price_ratio", "fiscal_cost", "unmet_share"]].to_numpy(float)
    np.testing.assert_allclose(got, [dep, peak, fiscal, unmet], rtol=1e-12, atol=0)


def test_sobol_tables_and_plot_are_written_for_each_output(tmp_path, no_simulation):
    config = load_sensitivity_config(str(write_config(tmp_path / "c.yaml")))
    design = Design("sobol", 64, seed=0)
    problem = config.problem()
    coef = np.array([1.0, 0.2])  # outputs: a linear function, and a constant one (undefined indices)
    fake = {
        "dependency_2024": lambda X: X @ coef,
        "peak_price_ratio": lambda X: X[:, 0] * X[:, 1],
        "fiscal_cost": lambda X: np.zeros(len(X)),
        "unmet_share": lambda X: X[:, 1],
    }
    result = sensitivity_core.run(
        problem, design, lambda X: np.column_stack([f(X) for f in fake.values()]), list(fake), vectorised=True
    )
    sensitivity.write_outputs(tmp_path / "out", config, design, result.samples(), result.indices, {"seed": 0})
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "samples.parquet",
        "indices.parquet",
        "indices.csv",
        "indices.png",
        "manifest.yaml",
    }
    text = sensitivity.format_table(result.indices, config, "sobol")
    assert text.count("±S1") == 4 and "fiscal_cost [USD]" in text
    st = result.indices.query("output == 'unmet_share' and index == 'ST'").set_index("parameter")["value"]
    assert st["scenario.market.kappa"] == pytest.approx(0.0, abs=1e-9) and st.iloc[1] > 0.9


def test_integer_parameters_are_drawn_evenly_and_rounded(tmp_path):
    params = [{"key": "scenario.market.passes", "range": [2, 6], "basis": "numerical, 2-8"}]
    config = load_sensitivity_config(str(write_config(tmp_path / "c.yaml", parameters=params)))
    (p,) = config.parameters
    assert p.integer and p.design_bounds() == (1.5, 6.5)
    assert [p.override(x) for x in (1.5, 2.49, 4.6, 6.5)] == [
        f"scenario.market.passes={v}" for v in (2, 2, 5, 6)
    ]


@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a simulation started before the config was checked")

    monkeypatch.setattr(sensitivity, "simulate", refuse)
    monkeypatch.setattr(critmin.experiments.api, "simulate", refuse)


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        (
            {"key": "scenario.market.thetaa", "range": [0.02, 0.3], "basis": "b"},
            "not a key of the composed run config",
        ),
        (
            {"key": "scenario.market.kappa", "range": [1.0, 0.05], "basis": "b"},
            "expected [low, high] with low < high",
        ),
        (
            {"key": "scenario.market.rho", "range": [0.1, 1.5], "basis": "b"},
            "high end 1.5 is outside the bounds [0, 1] of scenario.market.rho (configs/parameters.csv)",
        ),
        ({"key": "scenario.name", "range": [0, 1], "basis": "b"}, "expected a numeric config value"),
        ({"key": "scenario.market.kappa", "range": [0.05, 1.0]}, "basis"),
    ],
)
def test_a_bad_config_fails_before_any_run_naming_file_and_key(
    tmp_path, capsys, no_simulation, parameter, expected
):
    good = {"key": "scenario.market.sigma", "range": [0.02, 0.5], "basis": "b"}
    path = write_config(tmp_path / "bad.yaml", parameters=[good, parameter])
    with pytest.raises(ConfigError) as err:
        load_sensitivity_config(str(path))
    message = str(err.value)
    assert str(path) in message and f"parameters[1] (key {parameter['key']})" in message
    assert expected in message
    assert sensitivity.main(["--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"bad input: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_output_options_and_uncovered_years_are_refused(tmp_path, no_simulation):
    outputs = [{"name": "dep", "kind": "dependency", "year": 2030}]
    with pytest.raises(
        ConfigError, match=r"outputs\[0\] \(dep\)\.year: expected a year the run covers \(2024-2024\)"
    ):
        load_sensitivity_config(str(write_config(tmp_path / "a.yaml", outputs=outputs)))
    outputs = [{"name": "p", "kind": "peak_price_ratio", "commodity": "ndfeb_magnet", "month": "2025-01"}]
    with pytest.raises(ConfigError, match=r"outputs\[0\] \(p\): unknown keys \['month'\]"):
        load_sensitivity_config(str(write_config(tmp_path / "b.yaml", outputs=outputs)))


def test_a_parameter_without_a_range_is_varied_over_the_tables_plausible_range(tmp_path, no_simulation):
    params = [
        {"key": "scenario.market.kappa"},
        {"key": "scenario.demand.safety_stock_months", "range": [1.0, 3.0], "basis": "narrowed on purpose"},
    ]
    kappa, stock = load_sensitivity_config(
        str(write_config(tmp_path / "c.yaml", parameters=params))
    ).parameters
    row = parameters.table()["scenario.market.kappa"]
    assert (kappa.low, kappa.high) == row.calibration_range == (0.02, 0.2)
    assert kappa.basis == f"configs/parameters.csv: {row.source}"
    assert (stock.low, stock.high, stock.basis) == (1.0, 3.0, "narrowed on purpose")
    no_range = [{"key": "shock.events.0.start_share"}]  # not a scenario parameter: no default range
    with pytest.raises(ConfigError, match=r"parameters\[0\] \(key shock\.events\.0\.start_share\): range"):
        load_sensitivity_config(str(write_config(tmp_path / "d.yaml", parameters=no_range)))


def test_the_packaged_default_config_is_valid(no_simulation):
    config = load_sensitivity_config("default")
    assert config.source == "configs/sensitivity/default.yaml"
    assert {o.name for o in config.outputs} >= {
        "dependency_2030",
        "peak_price_ratio",
        "fiscal_cost",
        "unmet_share",
    }
    assert all(p.basis for p in config.parameters)


def test_a_sample_config_equals_the_composed_overrides():
    """Samples set their values on a base config composed once per process; the result must be
    the config Hydra composes from the sample's overrides."""
    from omegaconf import OmegaConf

    from critmin.experiments.sensitivity import sample_config
    from critmin.sim.run import load_config

    config = load_sensitivity_config("default")
    x = np.array([np.mean(b) for b in config.problem().bounds])
    fast = OmegaConf.to_container(sample_config(config, x), resolve=True)
    composed = OmegaConf.to_container(load_config(config.sample_overrides(x)), resolve=True)
    assert fast == composed
