"""Data-file schemas (sim/schemas.py): the declarations are consistent, every packaged file
follows them, and references and cross-file rules fail naming file, row, key and column."""

from __future__ import annotations

import pytest
from world_copies import edited_world, set_cell

from critmin.sim.schemas import PARAMETER_TABLE, WORLD_FILES, DataError, read_table
from critmin.sim.world import data_root, load_world

CHAINS = sorted(p.name for p in data_root().iterdir() if (p / "countries.csv").is_file())


def test_declarations_are_consistent():
    for schema in (*WORLD_FILES.values(), PARAMETER_TABLE):
        names = schema.column_names
        assert len(names) == len(set(names)), schema.name
        assert set(schema.key) <= set(names), schema.name
        for ref in schema.references:
            assert ref.column in names and ref.table in WORLD_FILES, (schema.name, ref)
            assert ref.target in WORLD_FILES[ref.table].column_names, (schema.name, ref)


@pytest.mark.parametrize("chain", CHAINS)
def test_every_packaged_file_follows_its_schema(chain):
    folder = data_root() / chain
    for name, schema in WORLD_FILES.items():
        if (folder / name).is_file():
            assert len(read_table(folder / name, schema)) or not schema.required, f"{chain}/{name}"
        else:
            assert not schema.required, f"{chain}/{name} missing"


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        (
            "demand.csv",
            set_cell("end_use", "toasters"),
            "demand.csv: row 2 (country=",
        ),
        ("demand.csv", set_cell("end_use", "toasters"), "column 'end_use': unknown end use 'toasters'"),
        (
            "investment.csv",
            set_cell("region", "mars"),
            "column 'region': unknown region (bloc, country or all) 'mars'",
        ),
        ("trade_shares.csv", set_cell("importers", "DEU XXX"), "column 'importers': unknown country 'XXX'"),
        (
            "projects.csv",
            lambda df: df.assign(facility=["chn_mine_north", *df["facility"][1:]]),
            "projects.csv: row 2 column 'facility': 'chn_mine_north' is already in facilities.csv",
        ),
        (
            "demand_growth.csv",
            lambda df: df[df["end_use"] != df["end_use"].iloc[0]],
            "demand_growth.csv: no rows for end use(s)",
        ),
        (
            "facilities.csv",
            set_cell("output_2024_tpa", "1e7"),
            "column 'output_2024_tpa': expected <= capacity_tpa",
        ),
        (
            "prospects.csv",
            set_cell("capacity_tpa", "1e308"),  # found by fuzzing: overflowed the investment step
            "column 'capacity_tpa': expected a number in [1e-09, 1e+08]",
        ),
        (
            "prospects.csv",
            set_cell("cash_cost_low", "1e9"),
            "columns cash_cost_low/cash_cost_mode/cash_cost_high",
        ),
    ],
)
def test_references_and_rules_name_file_row_and_column(tmp_path, name, edit, expected):
    with pytest.raises(DataError) as err:
        load_world(edited_world(tmp_path, name, edit))
    assert expected in str(err.value)


def test_the_parameter_table_goes_through_the_same_checks(tmp_path):
    path = tmp_path / "parameters.csv"
    path.write_text("name,type\nscenario.x,float\n")
    with pytest.raises(DataError, match=r"parameters\.csv: missing column\(s\) \['unit', 'default'"):
        read_table(path, PARAMETER_TABLE)
