"""Plots of one run: price paths per region, production by country per stage, supply shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

if TYPE_CHECKING:
    from critmin.sim.run import ModelRun


def _grid(n: int) -> tuple[plt.Figure, list]:
    cols = 3 if n > 4 else 2
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def _top(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep the k largest columns, sum the rest into 'other'."""
    order = frame.sum().sort_values(ascending=False).index
    out = frame[order[:k]].copy()
    if len(order) > k:
        out["other"] = frame[order[k:]].sum(axis=1)
    return out


def _wide(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Month × region table per commodity of a variable's rows (one reshape for all)."""
    wide = frame.pivot_table(index="month", columns=["commodity", "region"], values="value", observed=True)
    return {str(c): wide[c].dropna(axis=1, how="all") for c in wide.columns.get_level_values(0).unique()}


def _save(fig: plt.Figure, path: Path) -> Path:
    # fast PNG encoding: the plots are for reading, the files stay small either way
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return path


def write_plots(result: ModelRun, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ts = result.timeseries
    commodities = [str(c) for c in ts["commodity"].cat.categories]
    written = []

    prices = _wide(ts[ts["variable"] == "price"])
    prod = ts[(ts["variable"] == "production") & (ts["region"] != "WORLD")]
    production = _wide(prod)
    fig, axes = _grid(len(commodities))
    for ax, com in zip(axes, commodities):
        p = prices.get(com, pd.DataFrame())
        if p.empty:
            continue
        big = production.get(com, pd.DataFrame()).sum().sort_values(ascending=False).index[:4]
        for region in [r for r in big if r in p.columns]:
            ax.plot(p.index, p[region] / 1000, lw=1, label=str(region))
        if "WORLD" in p.columns:
            ax.plot(p.index, p["WORLD"] / 1000, color="black", lw=2, label="world (sales-weighted)")
        ax.set_title(com)
        ax.set_ylabel("USD/kg")
        ax.legend(fontsize=7)
    fig.suptitle("Seller prices by region (largest producers)")
    fig.tight_layout()
    written.append(_save(fig, folder / "prices.png"))

    fig, axes = _grid(len(commodities))
    for ax, com in zip(axes, commodities):
        p = production.get(com, pd.DataFrame())
        if p.empty:
            continue
        p = _top(p.fillna(0.0), 5) * 12 / 1000
        ax.stackplot(p.index, p.T.to_numpy(), labels=[str(c) for c in p.columns])
        ax.set_title(com)
        ax.set_ylabel("kt/yr (annualised)")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Production by country and stage")
    fig.tight_layout()
    written.append(_save(fig, folder / "production.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for com in commodities:
        p = production.get(com, pd.DataFrame())
        if p.empty:
            continue
        yearly = p.fillna(0.0).groupby(p.index.year).sum()
        share = yearly.div(yearly.sum(axis=1), axis=0)
        top = share.iloc[0].idxmax()
        ax.plot(share.index, share[top] * 100, marker="o", ms=3, label=f"{com}: {top}")
    ax.axhline(60, color="red", ls="--", lw=1)
    ax.axhline(50, color="red", ls=":", lw=1)
    ax.set_ylabel("share of world production, %")
    ax.set_title("Largest producer's share per stage (Alliance targets 60% / 50% dashed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(_save(fig, folder / "supply_shares.png"))
    return written
