"""Independent check of the clearing engine: a static spatial price equilibrium as an LP.

For small single-commodity worlds (a few regions, each with a supply and a demand curve taken
from the agents' own decision rules, linked by edges with transport cost, a specific export
tax and an optional cap), two computations must agree (DESIGN §3.1):

* :func:`lp_equilibrium` maximises demand value − supply cost − transport and tax subject to
  node balance and edge caps (``scipy.optimize.linprog``, HiGHS). Node duals are prices, cap
  duals are quota rents. Curves are discretised into blocks, refined around the solution.
* :func:`engine_equilibrium` finds the steady state of the model's own clearing
  (:func:`critmin.sim.market.clear`) with stocks frozen: seller prices at which every region's
  supply is exactly what buyers route to it. :func:`engine_tatonnement` gets there by the
  model's own price rule, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog, root

from critmin.agents.manufacturer import desired_use
from critmin.agents.producer import price_driven_activity
from critmin.sim import market, parameters, prices


@dataclass
class ToyMarket:
    """One commodity, regions with isoelastic supply and demand (the agents' rules)."""

    supply0: np.ndarray  # t at reference price p0, per region
    demand0: np.ndarray
    p0: float = 100.0
    supply_elasticity: float = 1.0
    demand_elasticity: float = 0.5
    capacity: np.ndarray | None = None  # per region, default 10×supply0
    # edges: (from, to, transport, specific export tax, cap); own-region links are added
    edges: list[tuple[int, int, float, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.supply0 = np.asarray(self.supply0, float)
        self.demand0 = np.asarray(self.demand0, float)
        if self.capacity is None:
            self.capacity = 10 * self.supply0

    @property
    def n(self) -> int:
        return self.supply0.size

    def all_edges(self) -> tuple[np.ndarray, ...]:
        own = [(r, r, 0.0, 0.0, np.inf) for r in range(self.n)]
        arr = np.array(own + list(self.edges), dtype=float)
        return arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2], arr[:, 3], arr[:, 4]

    def supply(self, p: np.ndarray) -> np.ndarray:
        return price_driven_activity(
            p, np.full(self.n, self.p0), self.supply0, self.capacity, self.supply_elasticity
        )

    def demand(self, p: np.ndarray) -> np.ndarray:
        return desired_use(self.demand0, p, np.full(self.n, self.p0), self.demand_elasticity)

    def inverse_supply(self, q: np.ndarray, r: int) -> np.ndarray:
        return self.p0 * (q / self.supply0[r]) ** (1 / self.supply_elasticity)

    def inverse_demand(self, q: np.ndarray, r: int) -> np.ndarray:
        return self.p0 * (np.maximum(q, 1e-12) / self.demand0[r]) ** (-1 / self.demand_elasticity)


@dataclass
class Equilibrium:
    flow: np.ndarray  # per edge (own-region links first, then ToyMarket.edges)
    supply_price: np.ndarray  # per region
    demand_price: np.ndarray  # per region
    cap_rent: np.ndarray  # per edge: dual of its cap (0 where slack)


def _blocks(lo: float, hi: float, n: int, window: tuple[float, float] | None, n_fine: int) -> np.ndarray:
    """Quantity breakpoints from lo to hi, dense inside ``window``."""
    if window is None:
        return np.linspace(lo, hi, n + 1)
    a, b = max(lo, window[0]), min(hi, window[1])
    parts = [
        np.linspace(lo, a, max(n // 4, 2)),
        np.linspace(a, b, n_fine + 1),
        np.linspace(b, hi, max(n // 4, 2)),
    ]
    return np.unique(np.concatenate(parts))


def lp_equilibrium(m: ToyMarket, n_blocks: int = 400, n_fine: int = 4000) -> Equilibrium:
    """Spatial price equilibrium by LP, solved twice: coarse, then refined around the answer."""
    sol = _solve_lp(m, n_blocks, None, n_fine)
    width_s = 4 * m.capacity / n_blocks
    width_d = 4 * m.demand(np.full(m.n, m.p0 * 0.05)) / n_blocks
    windows = (
        [(q - w, q + w) for q, w in zip(sol[1], width_s, strict=True)],
        [(q - w, q + w) for q, w in zip(sol[2], width_d, strict=True)],
    )
    return _solve_lp(m, n_blocks, windows, n_fine)[0]


def _solve_lp(m: ToyMarket, n_blocks: int, windows, n_fine: int):
    frm, to, transport, tax, cap = m.all_edges()
    costs, bounds, owner_s, owner_d, kinds = [], [], [], [], []
    d_max = m.demand(np.full(m.n, m.p0 * 0.05))
    for r in range(m.n):  # supply blocks: cost = inverse supply at the block midpoint
        q = _blocks(0.0, m.capacity[r], n_blocks, windows[0][r] if windows else None, n_fine)
        mid = (q[:-1] + q[1:]) / 2
        costs += list(m.inverse_supply(mid, r))
        bounds += list(zip(np.zeros(mid.size), np.diff(q), strict=True))
        owner_s += [r] * mid.size
        owner_d += [-1] * mid.size
        kinds += ["s"] * mid.size
    for r in range(m.n):  # demand blocks: value = inverse demand at the block midpoint
        q = _blocks(0.0, d_max[r], n_blocks, windows[1][r] if windows else None, n_fine)
        mid = (q[:-1] + q[1:]) / 2
        costs += list(-m.inverse_demand(mid, r))
        bounds += list(zip(np.zeros(mid.size), np.diff(q), strict=True))
        owner_s += [-1] * mid.size
        owner_d += [r] * mid.size
        kinds += ["d"] * mid.size
    n_blk = len(costs)
    costs += list(transport + tax)
    bounds += [(0.0, None if np.isinf(c) else c) for c in cap]
    n_var = len(costs)
    a_eq = np.zeros((2 * m.n, n_var))
    for j in range(n_blk):
        if kinds[j] == "s":
            a_eq[owner_s[j], j] = 1.0  # supply node: Σ s − Σ exports = 0
        else:
            a_eq[m.n + owner_d[j], j] = -1.0  # demand node: Σ imports − Σ d = 0
    for e in range(frm.size):
        a_eq[frm[e], n_blk + e] = -1.0
        a_eq[m.n + to[e], n_blk + e] = 1.0
    res = linprog(np.array(costs), A_eq=a_eq, b_eq=np.zeros(2 * m.n), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"LP oracle failed: {res.message}")
    x = res.x
    flow = x[n_blk:]
    prices = res.eqlin.marginals
    rent = -res.upper.marginals[n_blk:]
    s_q = np.bincount(
        [o for o in owner_s if o >= 0], weights=x[:n_blk][np.array(owner_s) >= 0], minlength=m.n
    )
    d_q = np.bincount(
        [o for o in owner_d if o >= 0], weights=x[:n_blk][np.array(owner_d) >= 0], minlength=m.n
    )
    return Equilibrium(flow, prices[: m.n], prices[m.n :], np.maximum(rent, 0.0)), s_q, d_q


def _engine_flows(m: ToyMarket, log_p: np.ndarray, theta: float, offer: np.ndarray | None = None):
    """One clearing of the toy world at seller prices exp(log_p): slots 0..n-1 sell, n..2n-1 buy.

    Buyers request their demand at the marginal delivered price (over edges whose cap is not
    used up); which caps bind depends on the requests, so the two are iterated to agreement.
    """
    frm, to, transport, tax, cap = m.all_edges()
    p = np.exp(log_p)
    p_del = prices.delivered_cost(p[frm], transport, specific=tax)
    seller, buyer = frm, m.n + to
    n_slots = 2 * m.n
    ones = np.ones(frm.size)
    supply = m.supply(p)
    offers = np.concatenate([supply if offer is None else offer, np.zeros(m.n)])
    capped = cap <= 0
    for _ in range(10):
        price = prices.marginal_price(p_del, buyer, n_slots, theta, ones, capped)[m.n :]
        request = np.concatenate([np.zeros(m.n), m.demand(price)])
        res = market.clear(request, offers, seller, buyer, p_del, theta=theta, edge_cap=cap, passes=50)
        if np.array_equal(res.capped, capped):
            break
        capped = res.capped
    return res, supply, p_del


def engine_equilibrium(m: ToyMarket, theta: float = 1e-6) -> Equilibrium:
    """Steady state of the engine's clearing with stocks frozen, by root-finding on seller prices.

    Residual per region: ln(what buyers route to its sellers / its supply) with unlimited offers;
    θ is lowered step by step (continuation) so each solve starts close to its answer.
    """
    x = np.full(m.n, np.log(m.p0))
    for th in sorted({0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, theta} | {theta}, reverse=True):
        if th < theta:
            continue

        def residual(lp: np.ndarray, th: float = th) -> np.ndarray:
            res, supply, _ = _engine_flows(m, lp, th, offer=np.full(m.n, 1e30))
            asked = res.sold[: m.n]
            return np.log(np.maximum(asked, 1e-300) / np.maximum(supply, 1e-300))

        sol = root(residual, x, method="hybr", options={"xtol": 1e-13})
        x = sol.x
    return _summarise(m, x, theta)


def _summarise(m: ToyMarket, log_p: np.ndarray, theta: float) -> Equilibrium:
    res, _, p_del = _engine_flows(m, log_p, theta)
    frm, to, transport, tax, _ = m.all_edges()
    buyer = m.n + to
    demand_price = prices.marginal_price(p_del, buyer, 2 * m.n, theta, np.ones(frm.size), res.capped)[m.n :]
    p = np.exp(log_p)
    gap = demand_price[to] - p[frm] - transport - tax  # price gap net of transport and tax
    return Equilibrium(res.flow, p, demand_price, np.where(res.capped, np.maximum(gap, 0.0), 0.0))


def _unserved(m: ToyMarket, res: market.Clearing) -> np.ndarray:
    """Per region: its buyers' requests left unserved, shared over the sellers they asked (as
    the model's price formation does, sim/prices/step.py ``scarcity``)."""
    frm, to = m.all_edges()[:2]
    buyer = m.n + to
    asked_by_buyer = np.bincount(buyer, weights=res.asked, minlength=2 * m.n)
    share = np.divide(res.asked, asked_by_buyer[buyer], out=np.zeros_like(res.asked), where=res.asked > 0)
    return np.bincount(frm, weights=share * res.unmet[buyer], minlength=m.n)


def engine_tatonnement(
    m: ToyMarket,
    theta: float,
    kappa: float | None = None,
    sigma: float | None = None,
    max_step: float | None = None,
    steps: int = 3000,
) -> tuple[np.ndarray, float]:
    """Run the model's price rule month after month with stocks frozen.

    ``kappa``, ``sigma`` and ``max_step`` default to the model's own values
    (``scenario.market.kappa``, ``.sigma``, ``.max_log_step`` in configs/parameters.csv); the
    rationing gap uses the model's short-run demand elasticity.

    Offers are each month's supply; unsold supply stands in for excess stock cover
    (``cover = 1 + unsold share``). Returns final log prices and the last step's largest move.
    """
    kappa = parameters.default("scenario.market.kappa") if kappa is None else kappa
    sigma = parameters.default("scenario.market.sigma") if sigma is None else sigma
    max_step = parameters.default("scenario.market.max_log_step") if max_step is None else max_step
    elasticity = parameters.default("scenario.demand.price_elasticity")
    x = np.full(m.n, np.log(m.p0))
    move = np.inf
    for _ in range(steps):
        res, supply, _ = _engine_flows(m, x, theta)
        sold = res.sold[: m.n]
        gap = prices.rationing_gap(sold + _unserved(m, res), sold, elasticity)
        # unsold supply stands in for stock above target; requests beyond it for stock drawn
        # below target (a sold-out seller's cover falls, as the model's does)
        asked = np.bincount(m.all_edges()[0], weights=res.asked, minlength=m.n)
        cover = np.where(
            asked > supply,
            np.divide(supply, asked, out=np.ones(m.n), where=asked > 0),
            1.0 + np.divide(supply - sold, supply, out=np.zeros(m.n), where=supply > 0),
        )
        new = prices.update_log_prices(x, gap, cover, kappa=kappa, sigma=sigma, max_step=max_step)
        move = float(np.abs(new - x).max())
        x = new
        if move < 1e-12:
            break
    return x, move
