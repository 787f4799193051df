"""Market clearing: NumPy in, NumPy out, no Mesa and no model state.

One call clears every commodity at once, because trade edges never connect slots of different
commodities. The allocation follows DESIGN.md §3.1:

* each buyer splits its remaining request over its permitted edges with a logit on delivered
  cost, ``w_e ∝ a_s · exp(-(p_del_e - min p_del) / (theta · min p_del))`` where ``a_s`` is the
  seller's calibrated share parameter (Armington-style; 1 when uncalibrated);
* edge requests are cut to the edge cap and the cap group's remaining quota, then scaled down
  pro rata where a seller is asked for more than it offers;
* what is left unserved is redistributed over the remaining edges in a few passes.

Prices are formed in :mod:`critmin.sim.prices`; the month's trading rounds (contracts, spot,
stockpile releases) are in :mod:`critmin.sim.trading`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INF = np.inf


@dataclass(frozen=True)
class Clearing:
    """Result of one clearing call (all arrays are float64, non-negative)."""

    flow: np.ndarray  # tonnes per edge
    asked: np.ndarray  # tonnes per edge requested over all passes, within caps (before stock limits)
    unmet: np.ndarray  # tonnes per buyer left unserved
    sold: np.ndarray  # tonnes per seller
    capped: np.ndarray  # per edge: its cap or its group's quota is used up


def logit_weights(
    p_del: np.ndarray,
    buyer: np.ndarray,
    n_buyers: int,
    theta: float,
    preference: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """Per-edge share of its buyer's request; shares of each buyer's active edges sum to 1.

    ``theta`` is the relative cost spread (dimensionless): 0 is strict merit order with ties
    shared equally.
    """
    return _weights(np.where(active, p_del, INF), buyer, n_buyers, theta, preference, active)


def _weights(
    cost: np.ndarray,
    buyer: np.ndarray,
    n_buyers: int,
    theta: float,
    preference: np.ndarray,
    active: np.ndarray | None,
    by_buyer: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`logit_weights` of ``cost`` (``inf`` on inactive edges); ``active`` None: every
    edge is active (the clearing passes run over active edges only). ``by_buyer``: the edges
    grouped by buyer (:func:`_by_buyer` of ``buyer``), when the caller has it."""
    if by_buyer is None:
        best = np.empty(n_buyers)
        best.fill(INF)
        np.minimum.at(best, buyer, cost)
    else:
        best = _buyer_min(cost, n_buyers, *by_buyer)
    if theta > 0:
        # per buyer, then per edge: a buyer with no finite cost gets 0 in place of its best, so
        # that no inf - inf arises (its edges' weights are 0 either way: exp(-inf) or no share)
        finite = np.isfinite(best)
        scale = theta * np.where(finite & (best > 0), best, 1.0)
        d = cost - np.where(finite, best, 0.0)[buyer]
        d /= scale[buyer]
        np.negative(d, out=d)
        np.exp(d, out=d)
        d *= preference
        w = d
    else:
        at_best = cost <= best[buyer]
        w = np.where(at_best if active is None else active & at_best, preference, 0.0)
    total = np.bincount(buyer, weights=w, minlength=n_buyers)
    return w / np.where(total > 0, total, INF)[buyer]


def _finite_weights(
    cost: np.ndarray,
    buyer: np.ndarray,
    n_buyers: int,
    theta: float,
    preference: np.ndarray,
    by_buyer: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """:func:`_weights` of edges that are all active, at finite costs, with ``theta`` > 0: each
    buyer's least cost is then finite, so its edges' offsets and scales are taken per edge
    without the checks for buyers without a finite cost (the same numbers, in fewer steps: the
    clearing's passes call this 4 times a month)."""
    order, starts, buyers = by_buyer
    best = np.empty(n_buyers)  # read only at buyers with edges
    best[buyers] = np.minimum.reduceat(cost[order], starts)
    best_e = best[buyer]
    d = cost - best_e
    d /= theta * np.where(best_e > 0, best_e, 1.0)
    np.negative(d, out=d)
    np.exp(d, out=d)
    d *= preference
    total = np.bincount(buyer, weights=d, minlength=n_buyers)
    return d / np.where(total > 0, total, INF)[buyer]


def _by_buyer(buyer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges grouped by buyer: (order that sorts ``buyer``, the start of each buyer's run in
    it, the buyers that have edges)."""
    # a stable sort of 16-bit codes is a radix sort (~2x faster than sorting int64; any order of
    # a buyer's edges gives the same minimum)
    small = buyer.astype(np.int16) if buyer.size and buyer.min() >= 0 and buyer.max() < 32768 else buyer
    return _grouped(np.argsort(small, kind="stable"), buyer)


def _keep_by_buyer(
    by_buyer: tuple[np.ndarray, np.ndarray, np.ndarray], kept: np.ndarray, buyer: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_by_buyer` of the edges that ``kept`` marks (``buyer``: theirs), from that of all
    of them, without sorting again: the kept edges in the same order, renumbered."""
    order = by_buyer[0]
    return _grouped((np.cumsum(kept) - 1)[order[kept[order]]], buyer)


def _grouped(order: np.ndarray, buyer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = buyer[order]
    first = np.empty(b.size, bool)
    first[:1] = True
    np.not_equal(b[1:], b[:-1], out=first[1:])
    starts = first.nonzero()[0]
    return order, starts, b[starts]


def _buyer_min(
    cost: np.ndarray, n_buyers: int, order: np.ndarray, starts: np.ndarray, buyers: np.ndarray
) -> np.ndarray:
    """Per buyer: the least ``cost`` of its edges (``inf`` without edges). The minimum of each
    run of the sorted costs: the same numbers as ``np.minimum.at`` (a minimum does not depend on
    the order), at a fraction of its cost (~60 µs for 1,500 edges, 4 to 8 times a month)."""
    best = np.empty(n_buyers)
    best.fill(INF)
    if starts.size:
        best[buyers] = np.minimum.reduceat(cost[order], starts)
    return best


def _spill(
    want: np.ndarray, w: np.ndarray, cap: np.ndarray, buyer: np.ndarray, n_b: int, rounds: int = 4
) -> np.ndarray:
    """Per edge, what a buyer asks in this pass: its logit share ``want`` within the edge's cap,
    the part above a cap spilled over its other edges with room, by their logit weights, in the
    same pass (a buyer knows a licence or a ban when it orders). Without this, a buyer whose
    cheap supplier is capped reached its other suppliers only in the next pass, after the first
    pass had shared their stock pro rata among buyers without capped suppliers: under China's
    licensing, buyers with a banned Chinese edge (cap 0, not asked at all) were served first and
    those with licensed ones rationed (docs/ODD.md §9). No cap binding: ``want`` unchanged."""
    q = np.minimum(want, cap)
    for _ in range(rounds):
        over = want - q
        if not (over > 1e-12).any():
            break
        blocked = np.bincount(buyer, weights=over, minlength=n_b)
        room = np.where(cap - q > 1e-12, w, 0.0)
        norm = np.bincount(buyer, weights=room, minlength=n_b)[buyer]
        want = q + np.divide(room * blocked[buyer], norm, out=np.zeros_like(room), where=norm > 0)
        q = np.minimum(want, cap)
    return q


@dataclass
class _SharedCaps:
    """Caps shared by groups of edges (an edge may be in several: a country's export quota, a
    buyer's diversification limit, ...), as membership pairs and what is left of each cap."""

    edge: np.ndarray  # per membership: the edge
    group: np.ndarray  # per membership: the group
    left: np.ndarray  # per group: tonnes still allowed
    n_edges: int

    @classmethod
    def of(cls, groups: tuple[np.ndarray, np.ndarray, np.ndarray] | None, n_edges: int) -> _SharedCaps | None:
        if groups is None or groups[2].size == 0:
            return None
        return cls(groups[0], groups[1], groups[2].astype(float).copy(), n_edges)

    def _any_group(self, per_group: np.ndarray) -> np.ndarray:
        """Per edge: whether any of its groups has the flag."""
        return np.bincount(self.edge, weights=per_group[self.group].astype(float), minlength=self.n_edges) > 0

    def exhausted(self) -> np.ndarray:
        return self._any_group(self.left <= 0)

    def used_up(self) -> np.ndarray:
        return self._any_group(self.left <= 1e-9)

    def scale(self, q: np.ndarray) -> np.ndarray:
        """Scale each edge by the tightest of its groups (keeps every group feasible)."""
        asked = np.bincount(self.group, weights=q[self.edge], minlength=self.left.size)
        g_scale = np.divide(self.left, asked, out=np.ones_like(self.left), where=asked > self.left)
        e_scale = np.ones(self.n_edges)
        np.minimum.at(e_scale, self.edge, g_scale[self.group])
        return q * e_scale

    def take(self, q: np.ndarray) -> None:
        self.left = np.maximum(
            self.left - np.bincount(self.group, weights=q[self.edge], minlength=self.left.size), 0.0
        )


def clear(
    request: np.ndarray,
    offer: np.ndarray,
    seller: np.ndarray,
    buyer: np.ndarray,
    p_del: np.ndarray,
    *,
    theta: float,
    edge_cap: np.ndarray | None = None,
    groups: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    preference: np.ndarray | None = None,
    passes: int = 4,
) -> Clearing:
    """Allocate buyers' requests (t per buyer slot) over edges (``seller``, ``buyer`` index
    pairs) to sellers' offers (t per seller slot), at delivered cost ``p_del`` per edge (USD/t,
    transport and wedges included). ``edge_cap``: t per edge this period (``inf`` none, 0 a
    ban); ``groups``: shared caps ``(edge, group, cap)`` (:class:`_SharedCaps`); ``preference``:
    per-edge logit share parameter (default 1)."""
    n_b, n_s, n_all = request.size, offer.size, seller.size
    cap_all = np.full(n_all, INF) if edge_cap is None else edge_cap.astype(float).copy()
    shared_all = _SharedCaps.of(groups, n_all)
    remaining_req = np.maximum(request.astype(float), 0.0)
    remaining_off = np.maximum(offer.astype(float), 0.0)
    # only edges active in the first pass can carry flow (activity only ends over the passes):
    # the passes run over them alone, in edge order, so every sum is the same as over all edges
    # (the others add exact zeros)
    # (per slot, then per edge: the same flags as comparing the gathered amounts, at less cost)
    live = (cap_all > 0) & (remaining_off > 0)[seller] & (remaining_req > 0)[buyer]
    if shared_all:
        live &= ~shared_all.exhausted()
    edges = live.nonzero()[0]  # np.flatnonzero adds a Python call (~1 µs, many a month)
    n_e = edges.size
    seller, buyer, p_del = seller[edges], buyer[edges], p_del[edges]
    preference = np.ones(n_e) if preference is None else preference[edges]
    cap = cap_all[edges]
    shared = None
    if shared_all:
        at = np.full(n_all, -1)
        at[edges] = np.arange(n_e)
        member = at[shared_all.edge] >= 0
        shared = _SharedCaps(at[shared_all.edge[member]], shared_all.group[member], shared_all.left, n_e)
    live_edges, live_seller = edges, seller
    by_buyer = _by_buyer(buyer)  # the passes' edges grouped by buyer (kept as they shrink)
    finite = theta > 0 and bool(np.isfinite(p_del).all())
    flow = np.zeros(n_e)
    asked = np.zeros(n_e)
    flow_all, asked_all = np.zeros(n_all), np.zeros(n_all)
    for k in range(max(passes, 1) if n_e else 0):
        if k > 0:  # the live edges are exactly the first pass's active ones
            active = (cap > 0) & (remaining_off > 0)[seller] & (remaining_req > 0)[buyer]
            if shared:
                active &= ~shared.exhausted()
            if not active.any():
                break
        if k > 0 and not active.all():
            # an edge inactive now stays so (caps, offers and requests only fall): the edge's
            # results are final; the pass runs over the active edges alone, in edge order, so
            # every sum is the same as over all of them (the others would add exact zeros)
            flow_all[edges], asked_all[edges], cap_all[edges] = flow, asked, cap
            keep = active.nonzero()[0]
            edges, seller, buyer, p_del, preference = (
                a[keep] for a in (edges, seller, buyer, p_del, preference)
            )
            flow, asked, cap = flow[keep], asked[keep], cap[keep]
            by_buyer = _keep_by_buyer(by_buyer, active, buyer)
            if shared:
                at = np.full(active.size, -1)
                at[keep] = np.arange(keep.size)
                member = at[shared.edge] >= 0
                shared = _SharedCaps(at[shared.edge[member]], shared.group[member], shared.left, keep.size)
        if finite:  # every edge here is active
            w = _finite_weights(p_del, buyer, n_b, theta, preference, by_buyer)
        else:
            w = _weights(p_del, buyer, n_b, theta, preference, None, by_buyer)
        q = _spill(w * remaining_req[buyer], w, cap, buyer, n_b)
        if shared:
            q = shared.scale(q)
        asked += q  # what sellers were asked for, within what bans and quotas allow
        asked_s = np.bincount(seller, weights=q, minlength=n_s)
        s_scale = np.divide(
            remaining_off, asked_s, out=np.ones_like(remaining_off), where=asked_s > remaining_off
        )
        q = q * s_scale[seller]
        flow += q
        cap = np.maximum(cap - q, 0.0)
        if shared:
            shared.take(q)
        remaining_off = np.maximum(remaining_off - np.bincount(seller, weights=q, minlength=n_s), 0)
        remaining_req = np.maximum(remaining_req - np.bincount(buyer, weights=q, minlength=n_b), 0)
    flow_all[edges], asked_all[edges], cap_all[edges] = flow, asked, cap
    sold = np.bincount(live_seller, weights=flow_all[live_edges], minlength=n_s)
    capped = cap_all <= 1e-12 * np.maximum(flow_all, 1.0)
    if shared_all:
        shared_all.left = shared.left
        capped |= shared_all.used_up()
    return Clearing(flow=flow_all, asked=asked_all, unmet=remaining_req, sold=sold, capped=capped)
