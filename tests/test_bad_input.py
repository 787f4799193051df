"""Issue 12: every input critmin used to accept silently, or answer with a traceback, now gets a
clear error (exit 2 on the command line, naming the file and key or row) or a documented warning
in summary.json. One row per case of the issue, run as a user would hit it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from world_copies import edited_world, set_cell

from critmin.experiments.cli import main as critmin
from critmin.sim.model import CritminModel
from critmin.sim.run import collect, config_dir, load_config
from critmin.sim.world import DataError, data_root, load_world

SHORT = ["scenario=ree_2024_short", "scenario.end=2024-03"]


def cli(args: list[str], capsys) -> tuple[int, str]:
    """``critmin ARGS`` in this process: (exit status, stdout + stderr)."""
    try:
        code = critmin(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return int(code or 0), out.out + out.err


def run(args: list[str], tmp_path: Path, capsys) -> tuple[int, str]:
    return cli(["run", *args, f"output_root={tmp_path / 'out'}"], capsys)


def config_dir_with(tmp_path: Path, rel: str, text: str) -> str:
    path = tmp_path / "my_configs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(tmp_path / "my_configs")


def data_case(name: str, edit) -> Callable[[Path, object], tuple[int, str]]:
    def case(tmp_path, capsys):
        folder = edited_world(tmp_path, name, edit)
        try:
            load_world(folder)
        except DataError as exc:
            return 2, str(exc)
        return 0, "loaded"

    return case


def cli_case(*args: str, config: tuple[str, str] | None = None):
    def case(tmp_path, capsys):
        extra = ["--config-dir", config_dir_with(tmp_path, *config)] if config else []
        return run([*extra, *args], tmp_path, capsys)

    return case


def mass_balance_case(tmp_path, capsys):
    """Data validation now refuses lifetime 0.001 years (the row below); a world that bypasses
    it (pre-loaded tables) still cannot finish with a mass-balance error above 1e-9."""
    cfg = load_config(SHORT)
    world = load_world(data_root() / "ree")
    world.end_uses["lifetime_years"] = 0.001
    model = CritminModel(cfg, world=world)
    model.run()
    try:
        collect(model, cfg)
    except DataError as exc:
        return 2, str(exc)
    return 0, "finished"


def sensitivity_n0(tmp_path, capsys):
    return cli(["sensitivity", "--n", "0", "--out", str(tmp_path / "out")], capsys)


def trace_top0(tmp_path, capsys):
    return cli(["trace", str(tmp_path), "--top", "0"], capsys)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One short run folder written by `critmin run` (target year 2030 outside the run)."""
    root = tmp_path_factory.mktemp("runs")
    code = critmin(["run", *SHORT, f"output_root={root}"])
    assert code == 0
    (folder,) = (root / "default").iterdir()
    return folder


def truncated_parquet_case(finished_run):
    def case(tmp_path, capsys):
        folder = tmp_path / "run"
        shutil.copytree(finished_run, folder)
        data = (folder / "timeseries.parquet").read_bytes()
        (folder / "timeseries.parquet").write_bytes(data[: len(data) // 2])
        return cli(["trace", str(folder)], capsys)

    return case


def zz_case(tmp_path, capsys):
    text = (config_dir() / "policy" / "alliance_all.yaml").read_text()
    return run(
        ["--config-dir", config_dir_with(tmp_path, "policy/zz.yaml", text), "policy=zz", *SHORT],
        tmp_path,
        capsys,
    )


def unwritable_root(tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    return cli(["run", *SHORT, f"output_root={tmp_path / 'a_file' / 'out'}"], capsys)


# (case, how it is hit, what the message must name)
CASES: list[tuple[str, Callable, list[str]]] = [
    # silent acceptance
    ("mass balance 1.1e-2 exits 0", mass_balance_case, ["mass balance", "1e-09", "lifetime_years"]),
    (
        "lifetime_years 0.001",
        data_case("end_uses.csv", set_cell("lifetime_years", "0.001")),
        ["end_uses.csv", "row 2", "lifetime_years"],
    ),
    (
        "a process no facility runs (found by fuzzing)",
        data_case("processes.csv", set_cell("process", "-1", row=3)),
        ["processes.csv", "row 5", "'-1'", "run by no facility"],
    ),
    (
        "demand for a commodity no process makes",
        data_case("processes.csv", set_cell("role", "input", where=("commodity", "ndfeb_magnet"))),
        ["demand.csv", "row 2", "no process", "ndfeb_magnet"],
    ),
    (
        "shock window before the start",
        cli_case(
            "shock=magnet_ban_demo", "shock.events.0.start=2020-01", "shock.events.0.end=2021-01", *SHORT
        ),
        ["magnet_ban_demo.yaml", "shock.events[0]", "outside the run"],
    ),
    (
        "shock window after the end",
        cli_case("shock=refiner_cut", *SHORT),
        ["refiner_cut.yaml", "shock.instruments[0]", "outside the run"],
    ),
    (
        "empty shock file",
        cli_case("shock=quiet", *SHORT, config=("shock/quiet.yaml", "")),
        ["quiet.yaml", "expected a mapping"],
    ),
    (
        "shock file without events",
        cli_case("shock=quiet", *SHORT, config=("shock/quiet.yaml", "name: quiet\n")),
        ["quiet.yaml", "no events or instruments"],
    ),
    (
        "price_floor with two commodities",
        cli_case(
            "policy=price_floor",
            "policy.instruments.0.commodity=[ndpr_oxide,dytb_oxide]",
            "policy.instruments.0.start=2024-02",
            *SHORT,
        ),
        ["price_floor.yaml", "policy.instruments[0].commodity", "one commodity"],
    ),
    (
        "quota tranche shares not summing to 1",
        cli_case(
            "shock=refiner_cut",
            "shock.instruments.0.period=year",
            "shock.instruments.0.start=2024-01",
            "shock.instruments.0.end=2025-01",
            "+shock.instruments.0.tranches=[{month: 1, share: 0.5}, {month: 7, share: 0.4}]",
            *SHORT,
        ),
        ["refiner_cut.yaml", "shock.instruments[0].tranches", "sum to 1"],
    ),
    (
        "unknown quota tranche keyword",
        cli_case(
            "shock=refiner_cut",
            "shock.instruments.0.period=year",
            "shock.instruments.0.start=2024-01",
            "shock.instruments.0.end=2025-01",
            "+shock.instruments.0.tranches=weekly",
            *SHORT,
        ),
        ["refiner_cut.yaml", "shock.instruments[0].tranches", "'weekly'", "quarterly"],
    ),
    ("sensitivity --n 0", sensitivity_n0, ["--n", ">= 1"]),
    ("trace --top 0", trace_top0, ["--top", ">= 1"]),
    (
        "unknown metric-check commodity",
        cli_case("experiment.metrics.checks=[{commodity: ndfeb_magnt, stages: [magnet]}]", *SHORT),
        ["experiment.metrics.checks[0].commodity", "ndfeb_magnt"],
    ),
    (
        "scenario.start=2030-01",
        cli_case("scenario.start=2030-01", "scenario.end=2030-03"),
        ["scenario.start", "2024"],
    ),
    ("scenario.end=2300-12", cli_case("scenario.end=2300-12"), ["scenario.end", "2050-12"]),
    (
        "header-only facilities.csv",
        data_case("facilities.csv", lambda df: df.iloc[:0]),
        ["facilities.csv", "no rows"],
    ),
    (
        "import shares sum to 160%",
        data_case(
            "trade_shares.csv", lambda df: pd.concat([df, df.iloc[[0]].assign(origin="JPN", share="0.75")])
        ),
        ["trade_shares.csv", "ndfeb_magnet", "1.6"],
    ),
    (
        "expected_start 1850",
        data_case("projects.csv", set_cell("expected_start", "1850-01")),
        ["projects.csv", "row 2", "expected_start", "1850-01"],
    ),
    (
        "fractional prospect count",
        data_case("prospects.csv", set_cell("count", "1.5")),
        ["prospects.csv", "row 2", "count", "whole number"],
    ),
    (
        "hurdle_rate 5.0",
        data_case("investment.csv", set_cell("value", "5.0", where=("parameter", "hurdle_rate"))),
        ["investment.csv", "hurdle_rate", "value"],
    ),
    (
        "misspelled investment parameter",
        data_case("investment.csv", set_cell("parameter", "hurdle_rte", where=("parameter", "hurdle_rate"))),
        ["investment.csv", "hurdle_rte", "parameter"],
    ),
    ("error in zz.yaml named after its name: key", zz_case, ["zz.yaml", "key name", "'zz'"]),
    ("Hydra: unknown override key", cli_case("scenario.markt.theta=1", *SHORT), ["scenario.markt"]),
    ("Hydra: unknown group option", cli_case("policy=alliance_al", *SHORT), ["policy/alliance_al"]),
    ("Hydra: malformed override", cli_case("scenario.end=[2024", *SHORT), ["scenario.end=[2024"]),
    # tracebacks
    ("seed=-1", cli_case("seed=-1", *SHORT), ["seed", ">= 0"]),
    ("unwritable output_root", unwritable_root, ["output_root", "a_file"]),
    (
        "invalid YAML in a shock file",
        cli_case(
            "shock=broken",
            *SHORT,
            config=("shock/broken.yaml", "name: broken\nevents:\n  - type: x\n - start: 2024-02\n"),
        ),
        ["broken.yaml", "invalid YAML", "line 4"],
    ),
]


@pytest.mark.parametrize(("name", "case", "named"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(name, case, named, tmp_path, capsys):
    code, text = case(tmp_path, capsys)
    assert code == 2, f"{name}: exit {code}\n{text}"
    assert "Traceback" not in text
    for part in named:
        assert part in text, f"{name}: {part!r} not in {text!r}"


def test_truncated_parquet_in_trace(finished_run, tmp_path, capsys):
    code, text = truncated_parquet_case(finished_run)(tmp_path, capsys)
    assert code == 2 and "timeseries.parquet" in text and "Traceback" not in text


def test_target_year_outside_the_run_is_a_warning_in_summary_json(finished_run):
    warnings = json.loads((finished_run / "summary.json").read_text())["warnings"]
    assert any("targets[0]" in w and "2030" in w and "no verdict" in w for w in warnings), warnings


def test_a_plausible_run_has_no_warnings_and_names_none(tmp_path, capsys):
    code, _ = run(
        ["scenario.end=2030-12", "experiment.plots=false", "experiment.metrics.report=false"],
        tmp_path,
        capsys,
    )
    assert code == 0
    (folder,) = (tmp_path / "out" / "default").iterdir()
    assert json.loads((folder / "summary.json").read_text())["warnings"] == []
