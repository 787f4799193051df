"""The run plots (analysis/plots.py): one legend per figure of panels, a country's colour the same
in every panel and figure."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex

from critmin.analysis import labels, plots
from critmin.sim.run import load_config, run_model


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    run = run_model(load_config(["scenario.end=2025-12"]))
    saved = {}

    def keep(fig, path):
        saved[path.name] = fig
        return path

    mp = pytest.MonkeyPatch()
    mp.setattr(plots, "_save", keep)
    try:
        written = plots.write_plots(run, tmp_path_factory.mktemp("plots"))
    finally:
        mp.undo()
    assert [p.name for p in written] == ["prices.png", "production.png", "supply_shares.png"]
    return saved


def legend_colours(fig) -> dict[str, str]:
    (legend,) = fig.legends
    handles = legend.legend_handles
    return {
        t.get_text(): to_hex(h.get_color() if hasattr(h, "get_xdata") else h.get_facecolor())
        for t, h in zip(legend.get_texts(), handles, strict=True)
    }


@pytest.mark.parametrize("name", ["prices.png", "production.png"])
def test_a_grid_has_one_legend_and_no_panel_legends(figures, name):
    fig = figures[name]
    assert len(fig.legends) == 1
    assert all(ax.get_legend() is None for ax in fig.axes)
    # the legend sits in the free cell after the last panel, not over a panel
    box = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent())


def test_a_country_keeps_its_colour_across_panels_and_figures(figures):
    prices, production = legend_colours(figures["prices.png"]), legend_colours(figures["production.png"])
    china = labels.country("CHN")
    assert prices[china] == production[china]
    shared = set(prices) & set(production)
    assert len(shared) >= 3
    assert all(prices[c] == production[c] for c in shared)
    assert len(set(production.values())) == len(production)  # every entry its own colour
    # every line of a panel has its country's legend colour (the world line is black)
    for ax in figures["prices.png"].axes:
        for line in ax.get_lines():
            assert to_hex(line.get_color()) in set(prices.values())
