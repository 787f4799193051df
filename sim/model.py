"""The critmin model: a plain ``mesa.Model`` whose step follows DESIGN.md §3.

State is columnar (:class:`State`): one array per quantity over slots, nodes, edges or
markets. Agents own rows of it and decide for all rows of their type in one call; the market
(:mod:`critmin.sim.market`) moves material; :mod:`critmin.sim.origin` traces where it came from;
:class:`~critmin.sim.recorder.Recorder` observes.

Attributes
----------
cfg : RunConfig-like config node
world : World (validated data tables)
net : Network (the supply graph and its array form)
state : State
recorder : Recorder
events : list of scheduled events
policies : list of active policy instruments (empty until instruments are configured)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mesa
import numpy as np
from omegaconf import DictConfig, OmegaConf

from critmin.agents import AGENT_CLASSES, Government, Manufacturer
from critmin.agents.buying import stock_request
from critmin.policies import Contract, Wedges, load_policies, required_stores
from critmin.sim import cache, market, origin
from critmin.sim.capacity import CapacityDynamics
from critmin.sim.config import check_config, parse_month
from critmin.sim.events import Modifiers, load_events
from critmin.sim.network import INPUT, OUTPUT, STORE, Network, compile_network
from critmin.sim.recorder import Recorder
from critmin.sim.world import World, load_worlds

STREAMS = ("demand_noise", "outages", "investment")  # append only: earlier streams keep their draws


def price_index(model: CritminModel) -> float:
    """Mean ratio of seller prices to their 2024 calibration (Mesa DataCollector reporter)."""
    p = np.exp(model.state.log_p).reshape(model.net.n_commodities, -1)
    return float(np.mean(p / model.net.price0[:, None]))


def unmet_share(model: CritminModel) -> float:
    """Share of manufacturers' desired use left unmet this step (Mesa DataCollector reporter)."""
    d = model.demand_nodes
    want = model.state.plan[d].sum()
    return float(1.0 - model.state.activity[d].sum() / want) if want > 0 else 0.0


@dataclass
class Cleared:
    """What the last clearing did, for instruments' payments and for tests (per edge)."""

    result: market.Clearing  # contract + spot flows
    p_del: np.ndarray  # delivered spot cost
    p_paid: np.ndarray  # price actually paid (contract price on contract volume)
    contract_flow: np.ndarray
    log_p: np.ndarray  # market prices at clearing (prices move after it)

    def seller_price(self, model: CritminModel, slots: np.ndarray) -> np.ndarray:
        """Market price each seller slot sold at (before this step's price update)."""
        return np.exp(self.log_p)[model.slot_market()[slots]]


@dataclass
class State:
    """Everything that changes during a run (arrays; see Network for the index conventions)."""

    t: int
    stock: np.ndarray  # per slot, t
    mix: np.ndarray  # per slot × stage × country
    log_p: np.ndarray  # per market (commodity × country): seller price, ln USD/t
    p_exp: np.ndarray  # per market: expected seller price
    paid: np.ndarray  # per slot: last delivered price paid (input slots)
    expected_paid: np.ndarray
    paid0: np.ndarray
    margin0: np.ndarray  # per node: 2024 margin per unit of activity
    plan: np.ndarray  # per node: planned activity (facilities) or desired use (demand)
    activity: np.ndarray  # per node: realised activity / consumption this step
    capacity_factor: np.ndarray
    demand_factor: np.ndarray
    noise: np.ndarray
    outage_left: np.ndarray  # per node: months of random outage left
    in_use: np.ndarray  # per node (demand centres): in-use stock, t
    in_use_mix: np.ndarray
    orders_avg: np.ndarray  # per slot: smoothed monthly orders received (output slots)
    preference: np.ndarray  # per edge: calibrated logit share parameter
    capacity: np.ndarray  # per node: structural capacity, activity units per month (before outages)
    p_lr: np.ndarray  # per market: long-run expected seller price (investment)
    paid_lr: np.ndarray  # per slot: long-run expected delivered price (investment, substitution)
    intensity: np.ndarray  # per node (demand): material intensity after substitution and thrifting
    below_cost_months: np.ndarray  # per node: months the long-run margin has been below cash cost


def data_root() -> Path:
    """Directory holding the packaged world data (``data/`` in the repository)."""
    import critmin.data

    return Path(critmin.data.__file__).parent


class CritminModel(mesa.Model):
    """Monthly agent-based market model of a critical-mineral supply chain.

    Parameters
    ----------
    cfg:
        a resolved run config (see :class:`critmin.sim.config.RunConfig`); ``None`` uses the
        packaged defaults.
    seed:
        master seed; overrides ``cfg.seed``. Each random process draws from its own stream
        spawned from it, so a policy run and its counterfactual share their noise.
    world:
        pre-loaded world tables (tests and benchmarks); default: load ``cfg.scenario.data``.
    """

    def __init__(
        self, cfg: Any = None, *, seed: int | None = None, world: World | None = None, **kwargs: Any
    ) -> None:
        if cfg is None:
            from critmin.sim.run import load_config

            cfg = load_config()
        seed = int(cfg.seed if seed is None else seed)
        super().__init__(rng=seed, **kwargs)
        check_config(cfg)
        self.cfg = cfg
        # plain dataclasses for the hot loop (OmegaConf attribute access costs ~30 µs each)
        self.params = (
            OmegaConf.to_object(cfg.scenario) if isinstance(cfg.scenario, DictConfig) else cfg.scenario
        )
        self.seed = seed
        sc = cfg.scenario
        self.start = parse_month(sc.start, "scenario.start")
        end = parse_month(sc.end, "scenario.end")
        self.n_steps = (end[0] - self.start[0]) * 12 + end[1] - self.start[1] + 1
        if world is None:
            chains = [sc.data] if isinstance(sc.data, str) else list(sc.data)
            paths, blocs = [data_root() / c for c in chains], dict(sc.blocs)
            key = (tuple(chains), tuple(sorted(blocs.items())), cache.files_key(paths))
            world = cache.memo("world", key, lambda: load_worlds(paths, blocs))
        self.world = world
        policy_lists = [
            (list(cfg.policy.instruments), f"configs/policy/{cfg.policy.name}.yaml: policy.instruments"),
            (list(cfg.shock.instruments), f"configs/shock/{cfg.shock.name}.yaml: shock.instruments"),
        ]
        stores = required_stores(policy_lists, self.world)
        key = (id(world), self.start[0], sc.max_suppliers, repr(stores))
        self.net: Network
        _, self.net = cache.memo(  # the world rides along so that its id stays unique
            "network",
            key,
            lambda: (world, cache.freeze(compile_network(world, self.start[0], sc.max_suppliers, stores))),
        )
        net = self.net
        self.events = load_events(list(sc.events), net, self.start, "scenario.events") + load_events(
            list(cfg.shock.events), net, self.start, "shock.events"
        )
        seq = np.random.SeedSequence(seed)
        self.streams = {
            name: np.random.default_rng(child) for name, child in zip(STREAMS, seq.spawn(len(STREAMS)))
        }

        self.producer_nodes = np.flatnonzero(net.is_facility)
        self.demand_nodes = np.flatnonzero(net.is_demand)
        classes = {**AGENT_CLASSES, "Manufacturer": Manufacturer}  # stockpiles belong to governments
        for n, kind in enumerate(net.node_agent):
            if kind in classes:
                classes[kind](self, n)
        self.nodes_by_type = {
            classes[k]: np.array([n for n, a in enumerate(net.node_agent) if a == k], dtype=np.int64)
            for k in dict.fromkeys(net.node_agent)
            if k in classes
        }
        self.governments = {c: Government(self, c, str(net.blocs[i])) for i, c in enumerate(net.countries)}
        self._monthly_growth = self._growth_table()
        inputs = np.flatnonzero(net.slot_role == INPUT)
        self._inputs = inputs
        # origin tracing: the (stage, country) columns that can occur, and what each process
        # stamps on what it makes (all slots for the 2024 fixed point; facility outputs monthly)
        self.origins = origin.Origins.from_stamps(net.slot_stamp, net.slot_country, net.n_countries)
        self._stamp_all = origin.Stamp(self.origins, net.slot_stamp, net.slot_clear, net.slot_country)
        fac_out = np.flatnonzero((net.slot_role == OUTPUT) & net.is_facility[net.slot_node])
        self._fac_out = fac_out
        self._stamp_fac_out = origin.Stamp(
            self.origins, net.slot_stamp[fac_out], net.slot_clear[fac_out], net.slot_country[fac_out]
        )
        self._fac_in = np.flatnonzero((net.slot_role == INPUT) & net.is_facility[net.slot_node])
        self._fac_in_nodes, self._fac_in_starts = np.unique(net.slot_node[self._fac_in], return_index=True)
        d = self.demand_nodes
        has_scrap = net.scrap_slot[d] >= 0
        self._scrap_nodes = d[has_scrap]
        scrap_stage = np.array([st == "scrap" for st in net.commodity_stage])
        self._main_output = ~scrap_stage[net.slot_commodity]
        # what policies set each step (reset every step): government purchases and releases per
        # stockpile slot, price floors per output slot; and per demand centre, collection rates
        self.store_request = np.zeros(net.n_slots)
        self.store_offer = np.zeros(net.n_slots)
        self.store_price = np.repeat(net.price0, net.n_countries)[self.slot_market()]  # release price
        # edges between commercial parties (stockpiles trade in their own rounds)
        self.commercial_edges = (net.slot_role[net.edge_seller] != STORE) & (
            net.slot_role[net.edge_buyer] != STORE
        )
        self.floor = np.zeros(net.n_slots)
        self.collection = np.where(net.is_demand, net.collection_rate[np.maximum(net.end_use, 0)], 0.0)
        self.investment_terms: dict[str, dict] = {}  # permitting and finance terms, read by investment
        self.state = self._initial_state()
        self.investment = CapacityDynamics(self)  # structural capacity and the project pipeline
        self.policies = load_policies(policy_lists, self)
        self.recorder = Recorder(self)
        # model-level reporters for Mesa's own tools (batch_run, visualisation); the full
        # tables come from the columnar Recorder
        self.datacollector = mesa.DataCollector(
            model_reporters={"price_index": price_index, "unmet_share": unmet_share}
        )
        self.running = True

    # ------------------------------------------------------------------ set-up
    def _growth_table(self) -> np.ndarray:
        """Demand index per end use and month, interpolated linearly between Januaries."""
        net = self.net
        months = self.start[0] + (self.start[1] - 1) / 12 + np.arange(self.n_steps) / 12
        return np.stack([np.interp(months, net.growth_years, row) for row in net.growth])

    def growth_index(self, nodes: np.ndarray) -> np.ndarray:
        t = min(self.state.t, self.n_steps - 1)
        return self._monthly_growth[self.net.end_use[nodes], t]

    def _base_flows(self) -> np.ndarray:
        """2024 monthly flow of each slot (t): production of outputs, use of inputs."""
        net = self.net
        flow = net.slot_coef * np.where(net.is_facility, net.activity0, net.demand0)[net.slot_node]
        scrap = net.scrap_slot >= 0
        nodes = np.flatnonzero(scrap)
        eu = net.end_use[nodes]
        in_use0 = self._initial_in_use()[nodes]
        flow[net.scrap_slot[nodes]] = in_use0 / net.lifetime_months[eu] * net.collection_rate[eu]
        return flow

    def _initial_in_use(self) -> np.ndarray:
        """In-use stock consistent with steady growth g: ``D / (g + 1/L)`` (monthly units)."""
        net = self.net
        out = np.zeros(len(net.node_id))
        d = self.demand_nodes
        eu = net.end_use[d]
        g = np.log(self._monthly_growth[eu, min(12, self.n_steps - 1)] / self._monthly_growth[eu, 0]) / 12
        out[d] = net.demand0[d] / (np.maximum(g, 0.0) + 1.0 / net.lifetime_months[eu])
        return out

    def _initial_state(self) -> State:
        net, sc = self.net, self.params
        n_nodes, n_slots, n_edges = len(net.node_id), net.n_slots, net.edge_seller.size
        K, C = self.origins.size, net.n_countries
        base = self._base_flows()
        self._base = base
        is_out = net.slot_role == OUTPUT
        is_consume = np.zeros(n_slots, bool)
        is_consume[net.consume_slot[net.consume_slot >= 0]] = True
        stock = np.where(
            is_out,
            sc.market.cover_target_months * base,
            np.where(is_consume, sc.demand.safety_stock_months, sc.producers.input_cover_months) * base,
        )
        log_p = np.log(np.repeat(net.price0, C))
        key = (id(net), sc.market.theta, cache.array_key(base, log_p))
        _, preference, self.calibration_error = cache.memo(
            "trade_calibration", key, lambda: (net, *self._calibrate_preferences(base, np.exp(log_p)))
        )
        s = State(
            t=0,
            stock=stock,
            mix=np.zeros((n_slots, K)),
            log_p=log_p,
            p_exp=np.exp(log_p),
            paid=np.zeros(n_slots),
            expected_paid=np.zeros(n_slots),
            paid0=np.zeros(n_slots),
            margin0=np.zeros(n_nodes),
            plan=np.zeros(n_nodes),
            activity=np.zeros(n_nodes),
            capacity_factor=np.ones(n_nodes),
            demand_factor=np.ones(n_nodes),
            noise=np.ones(n_nodes),
            outage_left=np.zeros(n_nodes, dtype=np.int64),
            in_use=self._initial_in_use(),
            in_use_mix=np.zeros((n_nodes, K)),
            orders_avg=np.where(is_out, base, 0.0),
            preference=preference,
            capacity=net.capacity.copy(),
            p_lr=np.exp(log_p),
            paid_lr=np.zeros(n_slots),
            intensity=np.ones(n_nodes),
            below_cost_months=np.zeros(n_nodes),
        )
        self.state = s
        p_del = self.delivered_cost(Wedges.none(n_edges))
        w = market.logit_weights(
            p_del, net.edge_buyer, n_slots, sc.market.theta, preference, self.commercial_edges
        )
        self.base_edge_flow = w * np.where(net.slot_role == INPUT, base, 0.0)[net.edge_buyer]  # 2024 trade
        inclusive = np.bincount(net.edge_buyer, weights=w * p_del, minlength=n_slots)
        s.paid = np.where(is_out, 0.0, inclusive)
        s.expected_paid = s.paid.copy()
        s.paid0 = s.paid.copy()
        s.paid_lr = s.paid.copy()
        s.margin0 = self.expected_margin(np.arange(n_nodes))
        bad = net.is_facility & (s.margin0 <= 0) & (net.activity0 > 0)
        if bad.any():
            from critmin.sim.world import DataError

            names = [net.node_id[i] for i in np.flatnonzero(bad)[:5]]
            raise DataError(
                f"commodities.csv/processes.csv: the 2024 prices give facilities {names} a "
                "non-positive margin (output value − input cost per unit of activity); expected > 0"
            )
        # Plants that ran in 2024 although their margin was below our cash-cost estimate are
        # taken to have revenue the model does not see (contracts, state support): they idle
        # only when the margin falls 10% below its 2024 level.
        self.idle_threshold = np.minimum(net.cash_cost, 0.9 * s.margin0)
        ins, outs = net.slot_role == INPUT, net.slot_role == OUTPUT
        self._input_cost0 = np.bincount(
            net.slot_node[ins], weights=net.slot_coef[ins] * s.paid0[ins], minlength=n_nodes
        )
        value0 = np.bincount(
            net.slot_node[outs],
            weights=net.slot_coef[outs] * net.price0[net.slot_commodity[outs]],
            minlength=n_nodes,
        )
        self._input_share0 = np.clip(
            np.divide(self._input_cost0, value0, out=np.zeros(n_nodes), where=value0 > 0), 0.0, 1.0
        )
        self._initial_mixes(w, base)
        return s

    def _calibrate_preferences(self, base: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, float]:
        """Share parameters per edge so that, at 2024 prices, 2024 requests match each seller's
        2024 sales and the observed trade shares in ``trade_shares.csv`` (e.g. 85% of the EU's
        magnets from China).

        Iterative proportional fitting (Armington calibration): one factor per seller slot for
        its output, one pair of factors per trade-share row (the origin's edges into those
        importers, and the other edges). Sellers with no 2024 sales keep a small positive share.
        """
        net, theta = self.net, self.params.market.theta
        n_slots = net.n_slots
        request = np.where(net.slot_role == INPUT, base, 0.0)
        target = np.where(net.slot_role == OUTPUT, base, 0.0)
        p_del = market.delivered_cost(
            price[net.market_index(net.slot_commodity, net.slot_country)[net.edge_seller]], net.edge_transport
        )
        pref_e = np.ones(net.edge_seller.size)
        # plants not yet built (new-capacity nodes) have no 2024 trade: no share parameter; they
        # win orders as capacity comes online (sim/capacity.py)
        seller_node = net.slot_node[net.edge_seller]
        unbuilt = net.is_facility[seller_node] & (net.capacity[seller_node] <= 0)
        active = self.commercial_edges & ~unbuilt
        groups = self._trade_share_groups()
        for _ in range(500):
            w = market.logit_weights(p_del, net.edge_buyer, n_slots, theta, pref_e, active)
            flow = w * request[net.edge_buyer]
            asked = np.bincount(net.edge_seller, weights=flow, minlength=n_slots)
            ratio = np.divide(target, asked, out=np.ones(n_slots), where=asked > 0)
            pref_e = pref_e * np.where(net.slot_role == OUTPUT, ratio, 1.0)[net.edge_seller]
            worst = np.abs(ratio[target > 0] - 1).max()
            for edges, from_origin, share in groups:
                total = flow[edges].sum()
                got = flow[edges[from_origin]].sum() / total if total > 0 else share
                if 0 < got < 1:
                    pref_e[edges[from_origin]] *= share / got
                    pref_e[edges[~from_origin]] *= (1 - share) / (1 - got)
                    worst = max(worst, abs(got - share))
            pref_e = np.clip(pref_e / pref_e[active].max(), 1e-9, 1.0)
            if worst < 1e-10:
                break
        # a government stockpile had no 2024 sales to calibrate on; it sells in its own round
        # (last resort), where only stockpiles offer, so its share parameter is neutral
        pref_e[net.slot_role[net.edge_seller] == STORE] = 1.0
        pref_e[unbuilt] = 0.0
        pref_e.flags.writeable = False
        return pref_e, float(worst)

    def _trade_share_groups(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """For each trade-share row: the edges into the importers' buyers of the commodity
        (cross-border only for scope 'imports'), which of them come from the origin, the share."""
        net = self.net
        out = []
        for row in self.world.trade_shares.itertuples(index=False):
            k = net.commodities.index(row.commodity)
            importers = [net.countries.index(c) for c in row.importers.split()]
            edges = self.commercial_edges & (net.edge_commodity == k) & np.isin(net.edge_to, importers)
            if row.scope == "imports":
                edges &= net.edge_from != net.edge_to
            idx = np.flatnonzero(edges)
            out.append((idx, net.edge_from[idx] == net.countries.index(row.origin), float(row.share)))
        return out

    def _initial_mixes(self, w: np.ndarray, base: np.ndarray) -> None:
        """Origin mixes consistent with 2024 flows: propagate the base allocation to a fixed point."""
        net, s = self.net, self.state
        key = (id(net), cache.array_key(w, base))
        _, mix = cache.memo("origin_fixed_point", key, lambda: (net, self._origin_fixed_point(w, base)))
        s.mix = mix.copy()
        d = self.demand_nodes
        s.in_use_mix[d] = mix[net.consume_slot[d]]
        scrap = net.scrap_slot[d]
        ok = scrap >= 0
        s.mix[scrap[ok]] = mix[net.consume_slot[d[ok]]]

    def _origin_fixed_point(self, w: np.ndarray, base: np.ndarray) -> np.ndarray:
        net = self.net
        flow = w * np.where(net.slot_role == INPUT, base, 0.0)[net.edge_buyer]
        mix = self._stamp_all(np.zeros((net.n_slots, self.origins.size)))
        is_input, is_output = net.slot_role == INPUT, net.slot_role == OUTPUT
        for _ in range(500):  # the recycling loop makes this a fixed point, not a finite pass
            previous = mix
            buyers, _, inflow = origin.group_mix(net.edge_buyer, net.edge_seller, flow, mix)
            mix = np.where(is_input[:, None], 0.0, mix)
            into_inputs = is_input[buyers]
            mix[buyers[into_inputs]] = inflow[into_inputs]
            node_mix = self._input_mix_per_node(mix, base)
            mix = np.where(is_output[:, None], self._stamp_all(node_mix[net.slot_node]), mix)
            if np.abs(mix - previous).max() < 1e-13:
                break
        mix.flags.writeable = False
        return mix

    def _input_mix_per_node(self, mix: np.ndarray, weight_per_slot: np.ndarray) -> np.ndarray:
        """Mass-weighted mix of each node's input slots (what its outputs inherit)."""
        inputs = self._inputs
        nodes, _, node_mix = origin.group_mix(
            self.net.slot_node[inputs], inputs, weight_per_slot[inputs], mix
        )
        out = np.zeros((len(self.net.node_id), mix.shape[1]))
        out[nodes] = node_mix
        return out

    # ------------------------------------------------------------------ helpers
    def prices(self) -> np.ndarray:
        return np.exp(self.state.log_p)

    def slot_market(self) -> np.ndarray:
        return self.net.market_index(self.net.slot_commodity, self.net.slot_country)

    def delivered_cost(self, wedges: Wedges) -> np.ndarray:
        """Delivered cost per edge at current seller prices, with policy wedges."""
        net = self.net
        p_origin = np.exp(self.state.log_p)[self.slot_market()[net.edge_seller]]
        p_origin = np.where(
            net.slot_role[net.edge_seller] == STORE, self.store_price[net.edge_seller], p_origin
        )
        return market.delivered_cost(
            p_origin,
            net.edge_transport,
            export_tax=wedges.export_ad_valorem,
            tariff=wedges.import_ad_valorem,
            specific=wedges.export_specific,
            import_specific=wedges.import_specific,
        )

    def expected_margin(self, nodes: np.ndarray) -> np.ndarray:
        """Expected output value minus expected input cost per unit of activity, per node."""
        net, s = self.net, self.state
        received = np.maximum(s.p_exp[self.slot_market()], self.floor)  # a price floor guarantees the floor
        price = np.where(
            net.slot_role == OUTPUT, received, np.where(net.slot_role == INPUT, -s.expected_paid, 0.0)
        )
        value = np.bincount(net.slot_node, weights=net.slot_coef * price, minlength=len(net.node_id))
        return value[nodes]

    def activity_to_order(self, nodes: np.ndarray) -> np.ndarray:
        """Activity that meets expected orders and closes a share of the finished-stock gap.

        Per output slot the need is ``orders + (cover·orders − stock)/adjust`` tonnes; a node's
        activity is the value-weighted mean over its main (non-scrap) outputs of need/coefficient.
        """
        net, s, sc = self.net, self.state, self.params
        outs = (net.slot_role == OUTPUT) & self._main_output
        orders = s.orders_avg
        need = np.maximum(
            orders + (sc.market.cover_target_months * orders - s.stock) / sc.producers.stock_adjust_months,
            0.0,
        )
        weight = np.where(outs, net.slot_coef * s.p_exp[self.slot_market()], 0.0)
        per_activity = np.divide(need, net.slot_coef, out=np.zeros_like(need), where=net.slot_coef > 0)
        n = len(net.node_id)
        num = np.bincount(net.slot_node, weights=weight * per_activity, minlength=n)
        den = np.bincount(net.slot_node, weights=weight, minlength=n)
        return np.divide(num, den, out=np.zeros(n), where=den > 0)[nodes]

    def base_flow_of_slots(self, slots: np.ndarray) -> np.ndarray:
        """2024 monthly flow of the given slots (output of outputs, use of inputs)."""
        return self._base[slots]

    def normal_price(self) -> np.ndarray:
        """Full-cost anchor per market (cost pass-through), averaged over the market's sellers.

        A seller's normal price for a main output is its 2024 price with the input-cost share
        indexed to today's expected input costs: ``p0·(1 − s + s·c/c0)``. By-products (scrap) and
        outputs of processes without modelled inputs keep their 2024 price, so no loop through
        the recycling chain can inflate itself. Times a utilisation markup: a plant whose orders
        fill less of its capacity than in 2024 prices lower to fill it, one sold out prices higher
        (:meth:`CapacityDynamics.utilisation_markup`).
        """
        net, s = self.net, self.state
        n = len(net.node_id)
        ins, outs = net.slot_role == INPUT, net.slot_role == OUTPUT
        cost_now = np.bincount(
            net.slot_node[ins], weights=net.slot_coef[ins] * s.expected_paid[ins], minlength=n
        )
        index = np.divide(cost_now, self._input_cost0, out=np.ones(n), where=self._input_cost0 > 0)
        share = np.where(self._main_output[outs], self._input_share0[net.slot_node[outs]], 0.0)
        norm = net.price0[net.slot_commodity[outs]] * (1.0 - share + share * index[net.slot_node[outs]])
        norm = norm * self.investment.utilisation_markup(self, np.flatnonzero(outs))
        w = np.maximum(s.orders_avg[outs], 1e-12)
        mk = self.slot_market()[outs]
        m_count = net.n_commodities * net.n_countries
        num = np.bincount(mk, weights=w * norm, minlength=m_count)
        den = np.bincount(mk, weights=w, minlength=m_count)
        return np.divide(num, den, out=np.exp(s.log_p), where=den > 0)

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        """One month: events and policies, decisions, clearing, transformation and consumption,
        payments, prices, record (DESIGN §3)."""
        net, s, sc = self.net, self.state, self.params
        t = s.t
        rec = self.recorder
        rec.open_step(s)
        # 1-2. scenario events, then instruments update their state (and set price floors)
        mods = Modifiers.neutral(net)
        for ev in self.events:
            if ev.active(t):
                ev.apply(mods, t)
        self._random_outages(mods)
        s.capacity_factor, s.demand_factor = mods.capacity_factor, mods.demand_factor
        sd = sc.demand.noise_sd
        s.noise[self.demand_nodes] = np.exp(
            sd * self.streams["demand_noise"].standard_normal(self.demand_nodes.size) - sd * sd / 2
        )
        active = [p for p in self.policies if p.active(t)]
        self.floor[:] = 0.0
        for p in active:
            p.on_step(self, t)
        # 3. investment decisions (on the terms policies just set), then output and purchases,
        # one call per agent type
        self.investment.step(self, active, t)
        for cls, nodes in self.nodes_by_type.items():
            cls.decide(self, nodes)
        request = self._requests()
        offer = np.where(net.slot_role == OUTPUT, s.stock, 0.0)
        # policy wedges, caps, government purchases/releases and contracts
        wedges = Wedges.none(net.edge_seller.size)
        self.store_request[:] = 0.0
        self.store_offer[:] = 0.0
        contracts: list[Contract] = []
        for p in active:
            p.edge_caps(self, mods, request)
            p.edge_costs(self, wedges)
            contracts += p.market(self)
        request = request + self.store_request
        self.last_request = request
        release = np.minimum(self.store_offer, np.where(net.slot_role == STORE, s.stock, 0.0))
        # 4. market clearing: contracts first, then spot, then stockpile releases (the supplier
        # of last resort: they fill what the market left unserved, so they relieve shortages
        # without displacing commercial orders), all commodities at once
        self.wedges = wedges
        p_del = self.delivered_cost(wedges)
        contract_flow, contract_value = self._serve_contracts(contracts, request, offer, mods.edge_cap)
        bought = np.bincount(net.edge_buyer, weights=contract_flow, minlength=net.n_slots)
        sold_c = np.bincount(net.edge_seller, weights=contract_flow, minlength=net.n_slots)
        spot = market.clear(
            np.maximum(request - bought, 0.0),
            np.maximum(offer - sold_c, 0.0),
            net.edge_seller,
            net.edge_buyer,
            p_del,
            theta=sc.market.theta,
            edge_cap=np.maximum(mods.edge_cap - contract_flow, 0.0),
            groups=mods.groups(),
            preference=s.preference,
            passes=sc.market.passes,
        )
        last = spot
        if release.any():
            # releases cover this month's use that the market left short, not restocking
            have = s.stock + np.bincount(
                net.edge_buyer, weights=spot.flow + contract_flow, minlength=net.n_slots
            )
            last = market.clear(
                np.minimum(spot.unmet, np.maximum(self._use - have, 0.0)),
                release,
                net.edge_seller,
                net.edge_buyer,
                p_del,
                theta=sc.market.theta,
                edge_cap=np.maximum(mods.edge_cap - contract_flow - spot.flow, 0.0),
                preference=s.preference,
                passes=sc.market.passes,
            )
        reserve = last.flow if last is not spot else np.zeros_like(spot.flow)
        flow = spot.flow + contract_flow + reserve
        res = market.Clearing(
            flow=flow,
            asked=spot.asked + contract_flow + reserve,
            unmet=last.unmet,
            sold=np.bincount(net.edge_seller, weights=flow, minlength=net.n_slots),
            capped=spot.capped,
        )
        p_paid = np.divide(
            (spot.flow + reserve) * p_del + contract_value, flow, out=p_del.copy(), where=flow > 0
        )
        self.cleared = Cleared(res, p_del, p_paid, contract_flow, s.log_p.copy())
        rec.trade(s, res, p_paid)
        received = np.bincount(net.edge_buyer, weights=flow, minlength=net.n_slots)
        origin.receive(s.stock, s.mix, net.edge_buyer, net.edge_seller, flow)
        s.stock = np.maximum(s.stock - res.sold, 0.0) + received
        # buyers decide on the price at the margin: the average over spot purchases on edges whose
        # cap is not used up (quota imports bought below it carry an infra-marginal rent; contract
        # volumes are infra-marginal too). With unlimited offers this equals
        # market.marginal_price, which the LP oracle docks against.
        open_flow = np.where(spot.capped, 0.0, spot.flow)
        got = np.bincount(net.edge_buyer, weights=open_flow, minlength=net.n_slots)
        spent = np.bincount(net.edge_buyer, weights=open_flow * p_del, minlength=net.n_slots)
        s.paid = np.where(got > 0, spent / np.where(got > 0, got, 1.0), s.paid)
        lam = sc.producers.expectation_weight
        s.expected_paid = lam * s.paid + (1 - lam) * s.expected_paid
        # 5. transformation, consumption, scrap
        production, use = self._transform()
        consumed, desired = self._consume(use)
        scrap = self._end_of_life(production)
        # producers plan on orders received (what buyers asked of them, within caps), not on
        # sales: a sold-out plant that planned on sales would never learn demand exceeds output
        orders = np.bincount(net.edge_seller, weights=res.asked, minlength=net.n_slots)
        s.orders_avg = np.where(net.slot_role == OUTPUT, 0.8 * s.orders_avg + 0.2 * orders, 0.0)
        # 6. governments pay and collect
        for p in active:
            p.after_clearing(self)
        # prices from unmet requests and stock cover
        self._update_prices(res)
        self.investment.after_prices(self)
        # 7. record
        rec.close_step(s, production, use, consumed, desired, scrap)
        self.datacollector.collect(self)
        if (self.start[1] - 1 + t) % 12 == 11:
            year = self.start[0] + (self.start[1] - 1 + t) // 12
            for p in active:
                p.on_year_end(self, year)
        s.t += 1
        if s.t >= self.n_steps:
            self.running = False

    def _serve_contracts(
        self, contracts: list[Contract], request: np.ndarray, offer: np.ndarray, edge_cap: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Deliver contracted tonnes before the spot market, within edge caps (a ban stops
        contracts too) and the seller's stock: take-or-pay contracts in fixed shares, others up
        to the buyers' requests (pro rata to them). Returns tonnes and value per edge."""
        net = self.net
        flow = np.zeros(net.edge_seller.size)
        value = np.zeros(net.edge_seller.size)
        left_req = request.copy()
        left_off = offer.copy()
        for c in contracts:
            e = c.edges
            room = np.maximum(edge_cap[e] - flow[e], 0.0)
            seller = net.edge_seller[e[0]]
            if c.split is not None:  # take-or-pay: buyers take their share whatever they need now
                q = np.minimum(min(c.tonnes, left_off[seller]) * c.split, room)
            else:
                want = np.minimum(left_req[net.edge_buyer[e]], room)
                total = min(c.tonnes, left_off[seller], want.sum())
                q = want * (total / want.sum()) if total > 0 else np.zeros(e.size)
            if q.sum() <= 0:
                continue
            flow[e] += q
            value[e] += q * c.price
            left_off[seller] -= q.sum()
            np.subtract.at(left_req, net.edge_buyer[e], q)
            np.maximum(left_req, 0.0, out=left_req)
        return flow, value

    def _random_outages(self, mods: Modifiers) -> None:
        p = self.params.producers
        nodes = self.producer_nodes
        s = self.state
        starts = self.streams["outages"].random(nodes.size) < p.outage_rate_per_year / 12
        s.outage_left[nodes] = np.where(
            (s.outage_left[nodes] == 0) & starts, p.outage_months, s.outage_left[nodes]
        )
        out = nodes[s.outage_left[nodes] > 0]
        mods.capacity_factor[out] *= 1 - p.outage_capacity_loss
        s.outage_left[out] -= 1

    def _requests(self) -> np.ndarray:
        """Purchase requests per input slot: planned use plus a share of the stock gap."""
        net, s, sc = self.net, self.state, self.params
        use = net.slot_coef * s.plan[net.slot_node]
        self._use = np.where(net.slot_role == INPUT, use, 0.0)
        is_consume = np.zeros(net.n_slots, bool)
        is_consume[net.consume_slot[self.demand_nodes]] = True
        cover = np.where(is_consume, sc.demand.safety_stock_months, sc.producers.input_cover_months)
        adjust = np.where(is_consume, sc.demand.stock_adjust_months, sc.producers.stock_adjust_months)
        inputs = net.slot_role == INPUT
        self._stock_target = np.where(inputs, cover * use, sc.market.cover_target_months * s.orders_avg)
        return np.where(inputs, stock_request(use, s.stock, cover, adjust), 0.0)

    def _transform(self) -> tuple[np.ndarray, np.ndarray]:
        """Facilities run at planned activity limited by input stock; returns per-slot production and use."""
        net, s = self.net, self.state
        n = len(net.node_id)
        fac_input = (net.slot_role == INPUT) & net.is_facility[net.slot_node]
        limit = np.full(n, np.inf)
        fi = self._fac_in  # a node's input slots are contiguous, so a segmented min does it
        limit[self._fac_in_nodes] = np.minimum.reduceat(s.stock[fi] / net.slot_coef[fi], self._fac_in_starts)
        x = np.where(net.is_facility, np.minimum(s.plan, limit), 0.0)
        s.activity = np.where(net.is_facility, x, s.activity)
        amount = net.slot_coef * x[net.slot_node]
        use = np.where(fac_input, amount, 0.0)
        fac_output = (net.slot_role == OUTPUT) & net.is_facility[net.slot_node]
        production = np.where(fac_output, amount, 0.0)
        outs = self._fac_out
        node_mix = self._input_mix_per_node(s.mix, use)
        out_mix = self._stamp_fac_out(node_mix[net.slot_node[outs]])
        s.stock = np.maximum(s.stock - use, 0.0)  # clears float dust (~1e-17 t)
        origin.mix_in(s.stock, s.mix, outs, production[outs], out_mix)
        s.stock = s.stock + production
        return production, use

    def _consume(self, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Demand centres consume from stock into the in-use stock."""
        net, s = self.net, self.state
        d = self.demand_nodes
        slots = net.consume_slot[d]
        desired = s.plan[d]
        consumed = np.minimum(desired, s.stock[slots])
        s.activity[d] = consumed
        origin.mix_in(s.in_use, s.in_use_mix, d, consumed, s.mix[slots])
        s.in_use[d] += consumed
        s.stock[slots] -= consumed
        use[slots] += consumed
        return consumed, desired

    def _end_of_life(self, production: np.ndarray) -> np.ndarray:
        """In-use stock retires at 1/lifetime per month; the collected share becomes scrap."""
        net, s = self.net, self.state
        d = self.demand_nodes
        eu = net.end_use[d]
        retired = s.in_use[d] / net.lifetime_months[eu]
        nodes = self._scrap_nodes
        slots = net.scrap_slot[nodes]
        collected = s.in_use[nodes] / net.lifetime_months[net.end_use[nodes]] * self.collection_rate(nodes)
        rows, mass, incoming = origin.group_mix(slots, nodes, collected, s.in_use_mix)
        origin.mix_in(s.stock, s.mix, rows, mass, incoming)
        s.stock[slots] += collected
        production[slots] += collected
        s.in_use[d] -= retired
        return retired

    def collection_rate(self, nodes: np.ndarray) -> np.ndarray:
        """End-of-life collection of demand centres: the policy-set rate (``self.collection``,
        2024 data unless a recycling target raises it) scaled by the scrap price relative to 2024
        with elasticity ``scenario.recycling.collection_price_elasticity``, at most
        ``collection_max``."""
        net, s, rc = self.net, self.state, self.params.recycling
        slots = net.scrap_slot[nodes]
        ratio = np.exp(s.log_p)[self.slot_market()[slots]] / net.price0[net.slot_commodity[slots]]
        rate = self.collection[nodes] * np.power(np.maximum(ratio, 1e-9), rc.collection_price_elasticity)
        return np.minimum(rate, np.maximum(rc.collection_max, self.collection[nodes]))

    def _update_prices(self, res: market.Clearing) -> None:
        net, s, sc = self.net, self.state, self.params
        m_count = net.n_commodities * net.n_countries
        seller_market = self.slot_market()[net.edge_seller]
        asked = np.bincount(seller_market, weights=res.asked, minlength=m_count)
        sold = np.bincount(seller_market, weights=res.flow, minlength=m_count)
        z = np.divide(np.maximum(asked - sold, 0.0), asked, out=np.zeros(m_count), where=asked > 0)
        # months of cover of a market's supply chain: its sellers' finished stock plus its buyers'
        # input stock, each buyer counted in proportion to what it asked of this market's sellers,
        # over the same sum of stock targets
        outs = net.slot_role == OUTPUT
        mk = self.slot_market()[outs]
        asked_by_buyer = np.bincount(net.edge_buyer, weights=res.asked, minlength=net.n_slots)
        share = np.divide(
            res.asked, asked_by_buyer[net.edge_buyer], out=np.zeros_like(res.asked), where=res.asked > 0
        )
        stock = np.bincount(mk, weights=s.stock[outs], minlength=m_count) + np.bincount(
            seller_market, weights=share * s.stock[net.edge_buyer], minlength=m_count
        )
        target = np.bincount(mk, weights=self._stock_target[outs], minlength=m_count) + np.bincount(
            seller_market, weights=share * self._stock_target[net.edge_buyer], minlength=m_count
        )
        has_sellers = np.bincount(mk, minlength=m_count) > 0
        cover = np.divide(stock, target, out=np.ones(m_count), where=target > 0)
        cover = np.where(has_sellers & (target <= 0) & (stock > 0), 1e6, cover)
        new = market.update_log_prices(
            s.log_p,
            z,
            cover,
            kappa=sc.market.kappa,
            sigma=sc.market.sigma,
            max_step=sc.market.max_log_step,
            log_p_norm=np.log(self.normal_price()),
            rho=sc.market.rho,
        )
        s.log_p = np.where(has_sellers, new, s.log_p)
        lam = sc.producers.expectation_weight
        s.p_exp = lam * np.exp(s.log_p) + (1 - lam) * s.p_exp

    def run(self) -> None:
        """Step to the end of the horizon."""
        while self.running:
            self.step()
