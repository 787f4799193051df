"""Line stops (issue 15; agents/buying.py ``line_stops``): a manufacturer stands for many firms
whose stock cover is spread around its mean (``demand.cover_dispersion``, a lognormal CV). A buyer
the market leaves short loses the use of its firms whose stock runs out, while its average stock
is still positive; served in full it loses nothing, so the steady state is untouched."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from critmin.agents.buying import line_stops
from critmin.sim.compose import load_config
from critmin.sim.model import CritminModel
from critmin.sim.trading import Book, trade_month

USE, ADJUST = 100.0, 3.0


def _request(stock: float, target_months: float = 2.0) -> float:
    """The buyer's request (agents/buying.py stock_request): use plus its gap over 3 months."""
    return USE + (target_months * USE - stock) / ADJUST


def _firms(mean: float, cv: float, inflow: float, request: float, n: int = 400_000) -> float:
    """The same buyer as ``n`` firms of equal use drawn from the lognormal: each asks its use
    plus its gap to the common target, gets the buyer's inflow pro rata to its request, and
    stops for what its stock and delivery leave short of its use. Tonnes over the buyer."""
    u = USE / n
    sd = np.sqrt(np.log1p(cv * cv))
    cover = mean * np.exp(sd * np.random.default_rng(7).standard_normal(n) - sd * sd / 2)
    cover *= mean / cover.mean()  # the sample's mean exactly the buyer's
    target = mean + ADJUST * (request / USE - 1.0)  # the common target cover the request implies
    asked = u * (1.0 + (target - cover) / ADJUST)
    got = inflow / request * asked
    return float(np.maximum(u - cover * u - got, 0.0).sum())


@pytest.mark.parametrize("cv", [0.5, 1.0, 1.4])
def test_the_closed_form_is_the_firms_shortfall(cv):
    """The lognormal put equals the shortfall summed over a large sample of firms."""
    stock = 100.0  # one month of cover
    request = _request(stock)
    inflow = 0.5 * USE  # half its use arrives
    stops = line_stops(
        np.array([USE]), np.array([stock]), np.array([inflow]), np.array([request]), ADJUST, cv
    )
    assert stops[0] == pytest.approx(_firms(1.0, cv, inflow, request), rel=0.03)


def test_a_buyer_with_one_month_of_cover_facing_a_halved_supply_stops_only_with_dispersion():
    """Mean cover 1 month, half its use arrives: the average stock covers the month (no stops
    without dispersion), but the firms holding less than about half a month stop; a wider spread
    stops more."""
    stock, inflow = np.array([100.0]), np.array([50.0])
    request = np.array([_request(100.0)])
    use = np.array([USE])
    by_cv = [float(line_stops(use, stock, inflow, request, ADJUST, cv)[0]) for cv in (0.0, 0.5, 1.0, 1.4)]
    assert by_cv[0] == 0.0
    assert 0.0 < by_cv[1] < by_cv[2] < by_cv[3]
    # size: at the default CV 1, a few per cent of its use (3.6%), far below the halved supply
    assert 0.02 * USE < by_cv[2] < 0.08 * USE
    assert by_cv[3] < USE - inflow[0]  # never more than what did not arrive


def test_a_buyer_served_in_full_never_stops_whatever_the_spread():
    """Every firm got its order (its use plus a share of its gap): the steady state is untouched,
    even with its average stock above target and a request below its use."""
    use = np.full(3, USE)
    stock = np.array([10.0, 200.0, 290.0])
    request = np.array([_request(s) for s in stock])
    for cv in (0.5, 1.0, 3.0):
        assert np.all(line_stops(use, stock, request, request, ADJUST, cv) == 0.0)


def test_without_dispersion_it_is_the_homogeneous_shortfall():
    """CV 0: one firm per buyer, stops only once the stock and inflow are used up."""
    use, stock, inflow = np.array([USE, USE]), np.array([30.0, 80.0]), np.array([20.0, 10.0])
    request = np.array([_request(30.0), _request(80.0)])
    stops = line_stops(use, stock, inflow, request, ADJUST, 0.0)
    assert stops == pytest.approx(np.maximum(use - stock - inflow, 0.0))
    assert stops[0] == pytest.approx(50.0) and stops[1] == pytest.approx(10.0)
    # with a spread, at least the homogeneous shortfall, at most what did not arrive
    spread = line_stops(use, stock, inflow, request, ADJUST, 1.0)
    assert np.all(spread >= stops - 1e-9) and np.all(spread <= use - inflow + 1e-9)
    # a buyer with no use (a merchant holder's desk) never stops
    assert line_stops(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), ADJUST, 1.0)[0] == 0.0


def test_releases_serve_the_firms_that_would_stop():
    """The reserve round (sim/trading.py) serves a buyer's use left short: with its firms' cover
    spread that is the use of those whose stock runs out, though its average stock would cover
    the month; without dispersion nothing is released to it."""
    net = SimpleNamespace(edge_seller=np.array([0, 1]), edge_buyer=np.array([2, 2]), n_slots=3)

    def month(cv: float) -> np.ndarray:
        return trade_month(
            Book(
                request=np.array([0.0, 0.0, _request(100.0)]),
                offer=np.array([50.0, 0.0, 0.0]),  # half its use on offer
                release=np.array([0.0, 1000.0, 0.0]),
                use=np.array([0.0, 0.0, USE]),
                stock=np.array([0.0, 0.0, 100.0]),  # one month of cover
                p_del=np.array([1.0, 1.2]),
                edge_cap=np.array([np.inf, np.inf]),
                groups=None,
                preference=np.ones(2),
                adjust=np.array([1.0, 1.0, ADJUST]),
                dispersion=np.array([0.0, 0.0, cv]),
            ),
            net,
            np.zeros(1),
            theta=0.1,
            passes=4,
        ).result.flow

    assert month(0.0)[1] == 0.0
    released = month(1.0)[1]
    expected = line_stops(
        np.array([USE]), np.array([100.0]), np.array([50.0]), np.array([_request(100.0)]), ADJUST, 1.0
    )
    assert released == pytest.approx(expected[0]) and released > 1.0


LICENSING = [
    "scenario=ree_2024",
    "shock=ree_licensing_2025",
    "scenario.end=2025-06",
    "scenario.demand.noise_sd=0.0",
]


def _magnet_unmet(overrides: list[str]) -> tuple[list[float], np.ndarray]:
    """Unmet share of magnet use in JPN+USA+DEU by month of 2025 (Jan-Jun), and the final state's
    magnet buyers' stock."""
    m = CritminModel(load_config(overrides))
    net, d = m.net, m.layout.demand
    slots = net.consume_slot[d]
    countries = np.array(net.countries)[net.slot_country[slots]]
    sel = (net.slot_commodity[slots] == net.commodities.index("ndfeb_magnet")) & np.isin(
        countries, ["JPN", "USA", "DEU"]
    )
    shares = []
    while m.running:
        m.step()
        if m.state.t > 12:
            shares.append(1.0 - m.state.activity[d][sel].sum() / m.state.plan[d][sel].sum())
    return shares, m.state.stock[slots][sel]


def test_licensing_stops_magnet_lines_while_the_average_stock_lasts():
    """The 2025 licensing replay: the magnet users of Japan, the US and Germany keep more than a
    month of stock on average, so without dispersion no use is lost; with the default spread
    their low-cover firms stop in April-May (history: Ford's Chicago line in May, European
    suppliers' lines in early June, Suzuki's Swift from 26 May), under 5% of use."""
    homogeneous, _ = _magnet_unmet([*LICENSING, "scenario.demand.cover_dispersion=0"])
    spread, stock = _magnet_unmet(LICENSING)
    assert max(homogeneous) == 0.0
    assert all(s == 0.0 for s in spread[:3])  # Jan-Mar: served in full
    assert 0.001 < max(spread[3:5]) < 0.05  # Apr-May
    assert np.all(stock > 0)


def test_no_shock_runs_do_not_move():
    """Served in full every month, a no-shock run is the same with and without dispersion."""
    base = ["scenario=ree_2024", "scenario.end=2025-12"]
    a = CritminModel(load_config([*base, "scenario.demand.cover_dispersion=0"]))
    b = CritminModel(load_config(base))
    a.run(), b.run()
    assert np.array_equal(a.state.stock, b.state.stock)
    assert np.array_equal(a.state.log_p, b.state.log_p)
