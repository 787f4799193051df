"""Plots of one run: price paths per region, production by country per stage, supply shares.

Drawn for speed (a single ``critmin run`` spent about a second here, a third of its time): the
figures are built without pyplot (no figure manager, nothing to close), months are plotted as
decimal years (plain number ticks; date locators and formatters cost more than the lines), the
margins are fixed rather than measured by ``tight_layout`` (which draws every figure twice) and
each figure of panels has one legend in a cell of its own (``loc="best"`` searched over the lines
of each panel, and fifteen legends were a third of the text the draw laid out), and a country
keeps its colour across panels and figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from critmin.analysis import labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from critmin.sim.run import ModelRun

PANEL_W, PANEL_H = 5.2, 3.4  # inches per panel of a grid


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _ticks(ax: Axes) -> None:
    """At most 5 ticks a side, whole years on the time axis: each tick is five artists (two
    marks, a grid line, two labels) that the draw lays out, most of a panel's cost (the
    default 7-9 a side cost a third of the plots' time)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))


def _grid(n: int, title: str) -> tuple[Figure, list[Axes]]:
    """A figure of n panels (2 or 3 columns) and a free cell after them for the legend
    (:func:`_legend`), the title on top, margins fixed in inches."""
    cols = 3 if n > 4 else 2
    rows = max(-(-(n + 1) // cols), 1)
    w, h = PANEL_W * cols, PANEL_H * rows
    fig = _figure(w, h)
    top = 0.7  # inches for the title and the first row's titles
    fig.subplots_adjust(
        left=0.7 / w, right=1 - 0.15 / w, bottom=0.4 / h, top=1 - top / h, wspace=0.28, hspace=0.4
    )
    grid = fig.add_gridspec(rows, cols)
    # only the panels drawn: an axes costs ~10 ms to build and lay out, shown or not
    axes: list[Axes] = []
    for i in range(n):
        axes.append(fig.add_subplot(grid[i // cols, i % cols], sharex=axes[0] if axes else None))
        _ticks(axes[-1])
        # one time axis: its years are written under the lowest panel of each column only
        axes[-1].tick_params(labelbottom=i + cols >= n)
    fig.suptitle(title, y=1 - 0.12 / h, va="top")
    return fig, axes


OTHER_COLOUR, WORLD_COLOUR = "#b0b0b0", "black"


def _palette(countries: list[str]) -> dict[str, str]:
    """A colour per country, in the order given (the largest producer first), the same in every
    panel and figure of a run: Tableau's ten strong colours without its grey, then their light
    variants (grey is kept for "other", black for the world)."""
    from matplotlib import colormaps

    tab20 = [colormaps["tab20"](i) for i in range(20)]
    colours = [c for i, c in enumerate(tab20) if i % 2 == 0 and i != 14]
    colours += [c for i, c in enumerate(tab20) if i % 2 == 1 and i != 15]
    return {c: colours[i % len(colours)] for i, c in enumerate(countries)}


def _legend(fig: Figure, axes: list[Axes], handles: list, names: list[str]) -> None:
    """One legend for every panel of a grid, in the free cell after the last panel."""
    grid = axes[-1].get_subplotspec().get_gridspec()
    cols = grid.get_geometry()[1]
    k = len(axes)  # the free cell: after the last panel
    cell = grid[k // cols, k % cols].get_position(fig)
    fig.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(cell.x0, cell.y1),
        fontsize=9,
        ncols=2 if len(names) > 8 else 1,
        frameon=False,
    )


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


def _years(index: pd.Index) -> np.ndarray:
    """Months as decimal years (Jan 2030 = 2030.0)."""
    idx = pd.DatetimeIndex(index)
    return idx.year.to_numpy() + (idx.month.to_numpy() - 1) / 12


def _save(fig: Figure, path: Path) -> Path:
    # fast PNG encoding: the plots are for reading, the files stay small either way
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})
    return path


def free_figures() -> None:
    """Free the figures drawn so far now: their artists refer to each other and every text keeps
    the renderer with its pixel buffer, so only the cyclic garbage collector frees them (each
    figure's ~10 MiB lingered under the next one's, at the peak of a ``critmin run``). Cheap
    once per figure because ``import critmin`` froze what the imports built (the collection
    scans only the run's own objects)."""
    import gc

    gc.collect()


def write_plots(result: ModelRun, folder: Path) -> list[Path]:
    """The run's figures (prices, production, supply shares) as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ts = result.timeseries
    commodities = [str(c) for c in ts["commodity"].cat.categories]
    written = []

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    prices = _wide(ts[ts["variable"] == "price"])
    prod = ts[(ts["variable"] == "production") & (ts["region"] != "WORLD")]
    production = _wide(prod)
    # the countries each panel shows: the four largest producers (prices), the five largest
    # and the rest summed (production); coloured alike in both figures, largest producer first
    price_regions, stacks = {}, {}
    for com in commodities:
        p = prices.get(com, pd.DataFrame())
        if not p.empty:
            big = production.get(com, pd.DataFrame()).sum().sort_values(ascending=False).index[:4]
            price_regions[com] = [r for r in big if r in p.columns]
        q = production.get(com, pd.DataFrame())
        if not q.empty:
            stacks[com] = _top(q.fillna(0.0), 5) * 12 / 1000
    shown = {r for rs in price_regions.values() for r in rs}
    shown |= {c for q in stacks.values() for c in q.columns if c != "other"}
    total = prod.groupby("region", observed=True)["value"].sum()
    order = sorted(shown, key=lambda c: (-float(total.get(c, 0.0)), c))
    colour = _palette(order)

    fig, axes = _grid(len(commodities), "Seller prices by region (largest producers), USD/kg")
    for ax, com in zip(axes, commodities):
        p = prices.get(com, pd.DataFrame())
        if p.empty:
            continue
        x = _years(p.index)
        for region in price_regions[com]:
            ax.plot(x, p[region].to_numpy() / 1000, lw=1, color=colour[region])
        if "WORLD" in p.columns:
            ax.plot(x, p["WORLD"].to_numpy() / 1000, color=WORLD_COLOUR, lw=2)
        ax.set_title(labels.commodity(com))
    used = [c for c in order if any(c in rs for rs in price_regions.values())]
    _legend(
        fig,
        axes,
        [Line2D([], [], color=colour[c], lw=1) for c in used] + [Line2D([], [], color=WORLD_COLOUR, lw=2)],
        [labels.country(c) for c in used] + ["world (sales-weighted)"],
    )
    written.append(_save(fig, folder / "prices.png"))
    fig = axes = ax = None  # nothing of the figure left referenced
    free_figures()

    fig, axes = _grid(len(commodities), "Production by country and stage, kt/yr (annualised)")
    for ax, com in zip(axes, commodities):
        if com not in stacks:
            continue
        p = stacks[com]
        ax.stackplot(_years(p.index), p.T.to_numpy(), colors=[colour.get(c, OTHER_COLOUR) for c in p.columns])
        ax.set_title(labels.commodity(com))
    used = [c for c in order if any(c in q.columns for q in stacks.values())]
    other = any("other" in q.columns for q in stacks.values())
    _legend(
        fig,
        axes,
        [Patch(color=colour[c]) for c in used] + ([Patch(color=OTHER_COLOUR)] if other else []),
        [labels.country(c) for c in used] + (["other countries"] if other else []),
    )
    written.append(_save(fig, folder / "production.png"))
    fig = axes = ax = None  # nothing of the figure left referenced
    free_figures()

    fig = _figure(8, 4.5)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.09, top=0.92)
    ax = fig.add_subplot()
    _ticks(ax)
    for com in commodities:
        p = production.get(com, pd.DataFrame())
        if p.empty:
            continue
        yearly = p.fillna(0.0).groupby(p.index.year).sum()
        share = yearly.div(yearly.sum(axis=1), axis=0)
        top = share.iloc[0].idxmax()
        ax.plot(
            share.index,
            share[top] * 100,
            marker="o",
            ms=3,
            label=f"{labels.commodity(com)}: {labels.country(top)}",
        )
    ax.axhline(60, color="red", ls="--", lw=1)
    ax.axhline(50, color="red", ls=":", lw=1)
    ax.set_ylabel("share of world production, %")
    ax.set_title("Largest producer's share per stage (Alliance targets 60% / 50% dashed)")
    ax.legend(fontsize=7, loc="lower left")
    written.append(_save(fig, folder / "supply_shares.png"))
    fig = ax = None
    free_figures()
    return written
