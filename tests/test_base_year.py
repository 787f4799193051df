"""A world is data plus a base year: the year its headers name (``price_2024_usd_per_t``).

The base year is a label of the data, not a constant of the engine: the 2024 world relabelled as
a world of 2030 (headers, growth years and project dates moved six years) runs the same numbers
six years later. Files naming different years, or a run starting outside its world's base year,
are refused before the run, naming the file or key.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from world_copies import edit_csv, world_copy

from critmin.sim.config import check_config
from critmin.sim.run import load_config, run_model
from critmin.sim.world import DataError, base_year_of, data_root, load_world

REE = data_root() / "ree"
SHIFT = 6


def _shift_month(value: str, years: int) -> str:
    year, month = value.split("-")
    return f"{int(year) + years}-{month}"


def relabel(folder: Path, year: int, only: str | None = None) -> None:
    """Rename the dated headers of ``folder``'s files (or of file ``only``) to ``year``; move the
    growth years and project dates with them."""
    for path in sorted(folder.glob("*.csv")):
        if only is not None and path.name != only:
            continue
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df.columns = [re.sub(r"_2024(_|$)", rf"_{year}\1", c) for c in df.columns]
        if only is None and path.name == "demand_growth.csv":
            df["year"] = (df["year"].astype(int) + year - 2024).astype(str)
        if only is None and path.name == "projects.csv":
            df["expected_start"] = [_shift_month(v, year - 2024) for v in df["expected_start"]]
        df.to_csv(path, index=False)


@pytest.fixture
def ree_2030(tmp_path) -> Path:
    folder = tmp_path / "ree_2030"
    shutil.copytree(REE, folder)
    relabel(folder, 2024 + SHIFT)
    return folder


def test_the_packaged_worlds_name_their_base_year():
    assert load_world(REE).base_year == 2024
    assert base_year_of(REE) == 2024


def test_a_relabelled_world_runs_the_same_numbers_in_its_own_years(ree_2030):
    a = run_model(["shock=refiner_cut", "scenario.end=2026-12"])
    shifted = [f"scenario.data={ree_2030}", "scenario.start=2030-01", "scenario.end=2032-12"]
    shock = ["shock=refiner_cut", "shock.instruments.0.start=2032-01", "shock.instruments.0.end=2032-07"]
    b = run_model([*shifted, *shock])
    assert b.summary["base_year"] == 2030 and a.summary["base_year"] == 2024
    pa = a.timeseries.query("variable == 'price' and region == 'WORLD'").sort_values(["commodity", "month"])
    pb = b.timeseries.query("variable == 'price' and region == 'WORLD'").sort_values(["commodity", "month"])
    assert (pb["month"].dt.year.to_numpy() - pa["month"].dt.year.to_numpy() == SHIFT).all()
    assert np.allclose(pa["value"].to_numpy(), pb["value"].to_numpy(), rtol=1e-12)
    assert pa["value"].max() > 1.05 * pa["value"].min()  # the shock moved prices: not a flat comparison


def test_files_naming_different_years_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(REE, folder)
    relabel(folder, 2025, only="demand.csv")
    with pytest.raises(DataError, match=r"base year.*demand\.csv: 2025.*2024|2024.*demand\.csv: 2025"):
        load_world(folder)


def test_a_header_without_its_year_names_the_expected_column(tmp_path):
    folder = world_copy(tmp_path, name="undated")
    edit_csv(folder / "facilities.csv", lambda df: df.rename(columns={"output_2024_tpa": "output_tpa"}))
    with pytest.raises(DataError, match=r"facilities\.csv: expected one column 'output_\{year\}_tpa'.*2024"):
        load_world(folder)


def test_a_run_starts_in_its_worlds_base_year(ree_2030):
    with pytest.raises(DataError, match=r"scenario\.start: expected a month of 2030"):
        check_config(load_config([f"scenario.data={ree_2030}"]))
    with pytest.raises(DataError, match=r"scenario\.start: expected a month of 2024"):
        check_config(load_config(["scenario.start=2025-01"]))


def test_a_timeline_runs_only_on_worlds_of_the_base_years_it_names():
    """ree_licensing_2025 replays 2025 on the 2024 world; the world of 2026 (base year 2025)
    already holds it in its flows: refused before the run, naming the file and key."""
    with pytest.raises(
        DataError, match=r"configs/shock/ree_licensing_2025\.yaml: key base_years.*\[2024\].*2025"
    ):
        check_config(load_config(["scenario=ree_2026", "shock=ree_licensing_2025"]))
    check_config(load_config(["shock=ree_licensing_2025"]))  # its own world


def test_the_exercise_library_offers_the_timelines_of_its_world():
    from critmin.exercise.controller import library_shocks

    assert "ree_quotas_2010" in library_shocks(2009) and "ree_quotas_2010" not in library_shocks(2024)
    assert "ree_licensing_2025" in library_shocks(2024) and "ree_licensing_2025" not in library_shocks(2025)
    assert "refiner_cut" in library_shocks(2009)  # names no base year: any world
