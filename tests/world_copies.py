"""Test helpers: a copy of a packaged world, and one of its tables edited (bad-input and
what-if tests)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from critmin.sim.world import data_root

Edit = Callable[[pd.DataFrame], pd.DataFrame]


def world_copy(tmp_path: Path, world: str = "ree", name: str | None = None) -> Path:
    """A copy of ``data/<world>`` at ``tmp_path/<name or world>``."""
    folder = tmp_path / (name or world)
    shutil.copytree(data_root() / world, folder)
    return folder


def edit_csv(path: Path, edit: Edit) -> None:
    """Rewrite one CSV file through ``edit`` (read as text: no value is reformatted)."""
    edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)


def edited_world(tmp_path: Path, name: str, edit: Edit, world: str = "ree") -> Path:
    """A copy of ``data/<world>`` with the table ``name`` edited."""
    folder = world_copy(tmp_path, world)
    edit_csv(folder / name, edit)
    return folder


def set_cell(column: str, value: str, row: int = 0, where: tuple[str, str] | None = None) -> Edit:
    """An edit that sets one cell: in ``row``, or in the first row whose ``where[0]`` is ``where[1]``."""

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        i = df.index[df[where[0]] == where[1]][0] if where else df.index[row]
        df.loc[i, column] = value
        return df

    return edit
