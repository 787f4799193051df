"""Capacity over time: the investment pipeline acting on the model, exits, and market presence.

:class:`CapacityDynamics` is the one place where structural capacity changes:

* chains with an ``investment.csv`` grow through the project pipeline (:mod:`critmin.sim.investment`):
  named projects, prospects and brownfield expansions; plants whose long-run expected margin
  stays below cash cost for ``scenario.investment.exit_months`` close for good;
* chains without one keep the exogenous trend ``scenario.producers.capacity_growth_per_year``.

It also keeps each seller's **market presence** proportional to its capacity: the logit share
parameter of an edge is ``intensity × capacity`` of its seller (a capacity-weighted logit), with
the intensities calibrated so that 2024 trade is reproduced; a new plant inherits the intensity
of its country's plants of the same process (else the buyer's average), so it wins orders as
its capacity ramps up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from critmin.agents.producer import unit_margin
from critmin.policies.base import Payment
from critmin.sim import investment as inv
from critmin.sim.network import OUTPUT

if TYPE_CHECKING:
    from critmin.sim.view import ModelView


def group_mean(key: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the mean of the non-NaN ``values`` of the rows with its ``key`` (NaN where the
    group has none), the same numbers as ``pandas.Series.groupby(key).transform("mean")``
    (pandas 3): where no value is NaN and the rows come sorted by key, each group's sum by
    ``np.add.reduceat``, as pandas does; else each group's values added in row order with
    pandas' compensated (Kahan) summation, the k-th values of every group at once (one step per
    value of the largest group, a handful here); then divided by their count. Without pandas'
    ~5 ms per call."""
    _, group = np.unique(key, return_inverse=True)
    group = group.reshape(-1)
    G = int(group.max()) + 1 if group.size else 0
    if group.size and not np.isnan(values).any() and bool(np.all(group[1:] >= group[:-1])):
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        sums = np.add.reduceat(values.astype(np.float64), starts)
        return (sums / np.diff(starts, append=group.size).astype(np.float64))[group]
    ok = np.flatnonzero(~np.isnan(values))
    order = ok[np.argsort(group[ok], kind="stable")]  # each group's values in row order
    g, v = group[order], values[order]
    nobs = np.bincount(g, minlength=G)
    first = np.concatenate(([0], np.cumsum(nobs)[:-1]))
    rank = np.arange(g.size) - first[g]  # position of each value within its group
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(nobs.max(initial=0)) + 1))
    sumx, comp = np.zeros(G), np.zeros(G)
    for k in range(bounds.size - 1):  # the k-th value of every group that has one
        at = by_rank[bounds[k] : bounds[k + 1]]
        lab, val = g[at], v[at]
        y = val - comp[lab]
        t = sumx[lab] + y
        c = t - sumx[lab] - y
        comp[lab] = np.where(c != c, 0.0, c)  # as pandas: an inf sum resets the compensation
        sumx[lab] = t
    mean = np.divide(sumx, nobs, out=np.full(G, np.nan), where=nobs > 0)
    return mean[group]


class CapacityDynamics:
    """Structural capacity of every facility and the pipeline that changes it."""

    def __init__(self, model: ModelView) -> None:
        net, s = model.net, model.state
        p = model.params
        self.enabled = bool(p.investment.enabled)
        agent_of = dict(zip(model.world.processes["process"], model.world.processes["agent_type"]))
        self.pipeline = (
            inv.build_pipeline(
                model.world,
                net,
                model.start,
                p.investment,
                model.streams["investment"],
                digests=getattr(model, "fresh_digests", None),
            )
            if self.enabled
            else inv.empty_pipeline()
        )
        recycler_rows = np.array(
            [agent_of.get(net.node_process[n]) == "Recycler" for n in self.pipeline.node], bool
        )
        self.pipeline.stage = np.where(recycler_rows, "recycling", self.pipeline.stage)
        covered = set(model.world.investment["process"])
        if "all" in covered:
            covered = set(model.world.processes["process"])
        self.endogenous = np.array(
            [
                bool(f) and self.enabled and proc in covered
                for f, proc in zip(net.is_facility, net.node_process)
            ]
        )
        self.base = net.capacity.copy()  # existing plants (and completed expansions), per month
        # 2024 utilisation, kept when capacity changes; new plants take their process's average
        fac = np.flatnonzero(net.is_facility & (net.capacity > 0))
        procs = np.array([net.node_process[n] for n in fac])
        by_process = {
            p: net.activity0[fac[procs == p]].sum() / net.capacity[fac[procs == p]].sum() for p in set(procs)
        }
        typical = np.array([by_process.get(p, 1.0) for p in net.node_process])
        self.utilisation_ref = np.divide(
            net.activity0, net.capacity, out=typical.copy(), where=net.capacity > 0
        )
        self.retired = np.zeros(len(net.node_id), bool)
        main = np.array([st != "scrap" for st in net.commodity_stage])[net.slot_commodity]
        self._main_slot = main
        self._main_out = np.flatnonzero((net.slot_role == OUTPUT) & net.is_facility[net.slot_node] & main)
        self._presence_intensity(model)
        s.capacity = self.capacity(model)
        self.last_pi = np.zeros(self.pipeline.size)
        self._row_country = np.array(net.countries)[self.pipeline.country]
        # the dominant producer's mining quota follows its processors' expected feed (issue 15)
        self.market_quota = (
            inv.market_quota(
                model.world,
                net,
                self.pipeline,
                model.main_output,
                np.exp(s.log_p)[model.slot_market()],
                s.orders_lr,
            )
            if self.pipeline.size
            else None
        )

    # ------------------------------------------------------------------ set-up
    def _presence_intensity(self, model: ModelView) -> None:
        """Per edge: calibrated share parameter per unit of seller capacity."""
        net, s = model.net, model.state
        seller_node = net.slot_node[net.edge_seller]
        self.facility_edge = net.is_facility[seller_node] & model.commercial_edges
        cap0 = net.capacity[seller_node]
        existing = self.facility_edge & (cap0 > 0)
        intensity = np.where(
            existing, np.divide(s.preference, cap0, out=np.zeros_like(cap0), where=cap0 > 0), 0.0
        )
        # templates for new plants: share parameter per tonne of 2024 output (not of capacity:
        # a plant still ramping up in 2024, like Kalgoorlie, would understate what capacity earns)
        # of the sellers with 2024 sales to the buyer, times the process's 2024 utilisation
        act0 = net.activity0[seller_node]
        known = existing & (s.preference > 1e-8) & (act0 > 0)
        new = self.facility_edge & (cap0 <= 0)
        if new.any():
            # the process of each edge's seller as a code (the same groups as its name)
            names, node_code = np.unique(np.asarray(net.node_process, dtype=object), return_inverse=True)
            process = node_code.reshape(-1)[seller_node]
            per_output = np.divide(s.preference, act0, out=np.zeros_like(act0), where=act0 > 0)
            values = np.where(known, per_output, np.nan)
            P, C = max(names.size, 1), net.n_countries
            same = group_mean((net.edge_buyer * C + net.edge_from) * P + process, values)
            buyer = group_mean(net.edge_buyer * P + process, values)
            fill = np.where(np.isnan(same), buyer, same)
            fill = np.where(np.isnan(fill), 0.0, fill)
            u_new = self.utilisation_ref[seller_node]
            intensity = np.where(new, fill * u_new, intensity)
        self.intensity = intensity
        self.preference0 = s.preference.copy()
        self.seller_node = seller_node

    # ------------------------------------------------------------------ each step
    def capacity(self, model: ModelView) -> np.ndarray:
        """Structural capacity per node now (activity units per month)."""
        trend = (1.0 + model.params.producers.capacity_growth_per_year) ** (model.state.t / 12)
        base = np.where(self.endogenous, self.base, self.base * trend)
        if self.pipeline.size:
            base = base + np.bincount(self.pipeline.node, weights=self.pipeline.online(), minlength=base.size)
        return np.where(self.retired, 0.0, base)

    def mine_base_output(self, model: ModelView, nodes: np.ndarray) -> np.ndarray:
        """Output at 2024 prices: the 2024 utilisation of today's capacity (exactly the 2024
        output, trended, where capacity follows the exogenous trend)."""
        net = model.net
        trend = (1.0 + model.params.producers.capacity_growth_per_year) ** (model.state.t / 12)
        return np.where(
            self.endogenous[nodes] | (net.capacity[nodes] <= 0),
            self.utilisation_ref[nodes] * model.state.capacity[nodes],
            net.activity0[nodes] * trend,
        )

    def long_run_margin(self, model: ModelView) -> np.ndarray:
        """Per node: output value at long-run expected prices (price floors applied) minus input
        cost at long-run expected delivered prices, per unit of activity."""
        s = model.state
        return unit_margin(model.net, np.maximum(s.p_lr[model.slot_market()], model.floor), s.paid_lr)

    def step(self, model: ModelView, active: list, t: int) -> list[Payment]:
        """Investment decisions of the month (after policies set their terms), then capacity and
        market presence; returns what concessional finance cost its governments this month."""
        s = model.state
        p = self.pipeline
        payments: list[Payment] = []
        if p.size:
            terms = self._terms(model, active, t)
            before = p.status.copy()
            self.last_pi = inv.advance(
                p, terms, model.streams["investment"], t, model.params.investment, s.capacity
            )
            payments = self._finance_payments(model, before, terms)
            added = inv.renew_expansions(p, self.base, model.params.investment)
            self.base += np.bincount(p.node, weights=added, minlength=self.base.size)
        s.capacity = self.capacity(model)
        s.preference = np.where(
            self.facility_edge, self.intensity * s.capacity[self.seller_node], self.preference0
        )
        self._launch(model)
        return payments

    def _launch(self, model: ModelView) -> None:
        """A plant that has capacity but neither stock nor orders yet (new, or back from zero)
        produces at capacity for the market: buyers only ask sellers that have something to
        sell, so without this a new plant would never receive its first order."""
        net, s = model.net, model.state
        outs = self._main_out
        node = net.slot_node[outs]
        idle = (s.capacity[node] > 0) & (s.orders_avg[outs] <= 0) & (s.stock[outs] <= 0)
        if idle.any():
            s.orders_avg[outs[idle]] = net.slot_coef[outs[idle]] * s.capacity[node[idle]]

    def _terms(self, model: ModelView, active: list, t: int) -> inv.Terms:
        net, p = model.net, self.pipeline
        margin = self.long_run_margin(model)[p.node]
        derisked_nodes = np.zeros(len(net.node_id), bool)
        for policy in active:
            derisked_nodes[policy.derisked_nodes(model)] = True
        rate_cut = np.zeros(p.size)
        permit_cut = np.zeros(p.size)
        countries = self._row_country
        for term in (p.investment_term for p in model.policies if p.investment_term is not None):
            if t < term["from_step"]:
                continue
            ok = np.isin(countries, term["countries"]) & np.isin(p.stage, term["stages"])
            if term["kind"] == "finance":
                rate_cut = np.where(ok, np.maximum(rate_cut, term["rate_reduction"]), rate_cut)
            elif term["kind"] == "permitting":
                permit_cut = np.where(ok, np.maximum(permit_cut, term["lead_time_reduction"]), permit_cut)
        room = key = None
        if self.market_quota is not None:
            s = model.state
            headroom = model.params.investment.quota_headroom
            room, key = inv.quota_room(self.market_quota, p, s.capacity, s.orders_lr, headroom)
        return inv.Terms(margin, derisked_nodes[p.node], rate_cut, permit_cut, room, key)

    def _finance_payments(self, model: ModelView, before: np.ndarray, terms: inv.Terms) -> list[Payment]:
        """Concessional finance costs its government the grant equivalent of the loan at FID:
        ``capex·(1 − A(r_market)/A(r_concessional))`` with A the annuity factor over the
        project's life (OECD grant-element method)."""
        p = self.pipeline
        fid = (before == inv.PERMITTED) & (p.status == inv.FINANCED) & (terms.rate_reduction > 0)
        payments = []
        for i in np.flatnonzero(fid):
            r_m = p.hurdle[i]
            r_c = max(r_m - terms.rate_reduction[i], 1e-6)
            life = p.life_years[i]
            a_m = (1 - (1 + r_m) ** -life) / r_m
            a_c = (1 - (1 + r_c) ** -life) / r_c
            country = model.net.countries[p.country[i]]
            payments.append(Payment(country, "concessional_finance", float(p.capex[i] * (1 - a_m / a_c))))
        return payments

    def after_prices(self, model: ModelView) -> None:
        """Update long-run expectations and close plants whose long-run margin stays below cash cost."""
        s, prm = model.state, model.params
        w = 1.0 / prm.investment.expectation_months
        s.p_lr = s.p_lr + w * (np.exp(s.log_p) - s.p_lr)
        s.paid_lr = s.paid_lr + w * (s.paid - s.paid_lr)
        margin = self.long_run_margin(model)
        below = self.endogenous & (margin < model.idle_threshold) & (s.capacity > 0)
        s.below_cost_months = np.where(below, s.below_cost_months + 1, 0.0)
        exit_now = below & (s.below_cost_months >= prm.investment.exit_months)
        if exit_now.any():
            self.retired |= exit_now
            p = self.pipeline
            gone = np.isin(p.node, np.flatnonzero(exit_now)) & (p.status != inv.CANCELLED)
            p.status = np.where(gone, inv.CANCELLED, p.status)

    def projects(self, model: ModelView) -> pd.DataFrame:
        """The pipeline's rows now (stage, milestones, capacity online), named projects first."""
        df = self.pipeline.frame(model.net.countries, model.start)
        df["node"] = [model.net.node_id[n] for n in self.pipeline.node]
        df["profitability_index"] = self.last_pi
        return df.sort_values(["kind", "component"], kind="stable").reset_index(drop=True)
