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

import copy
from typing import Any

import mesa
import numpy as np
from omegaconf import DictConfig, OmegaConf

from critmin.agents import AGENT_CLASSES, Government, Manufacturer, buying, merchant
from critmin.agents.producer import Producer
from critmin.policies import Contract, Effects, Payment, Wedges, load_policies, required_stores
from critmin.sim import cache, calibration, origin, physical, prices, trading, transit
from critmin.sim.capacity import CapacityDynamics
from critmin.sim.compose import load_config
from critmin.sim.config import check_config, parse_month
from critmin.sim.events import Modifiers
from critmin.sim.network import OUTPUT, STORE, Network, compile_network_digested
from critmin.sim.recorder import Recorder
from critmin.sim.world import World, data_root, load_worlds_digested

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


class CritminModel(mesa.Model):
    """Monthly agent-based market model of a critical-mineral supply chain.

    Parameters
    ----------
    cfg:
        a resolved run config (see :class:`critmin.sim.config.RunConfig`); ``None`` uses the
        packaged defaults.
    world:
        pre-loaded world tables (tests and benchmarks); default: load ``cfg.scenario.data``.
    rng:
        master seed (Mesa's name for it); ``seed`` is accepted too and wins. Default ``cfg.seed``.
        Each random process draws from its own stream spawned from it, so a policy run and its
        counterfactual share their noise.
    **parameters:
        config overrides by dotted key, e.g. ``**{"scenario.market.kappa": 0.3}``: what
        ``mesa.batch_run(CritminModel, parameters={"seed": [0, 1], "scenario.end": "2024-06"})``
        passes.
    """

    def __init__(
        self, cfg: Any = None, *, world: World | None = None, rng: Any = None, **parameters: Any
    ) -> None:
        cfg = self._configure(cfg, rng, parameters)
        check_config(cfg)  # before Mesa seeds its generator: a bad seed is bad input, named
        seed = int(cfg.seed)
        super().__init__(rng=seed)
        self.cfg, self.seed = cfg, seed
        # plain dataclasses for the hot loop (OmegaConf attribute access costs ~30 µs each)
        self.params = (
            OmegaConf.to_object(cfg.scenario) if isinstance(cfg.scenario, DictConfig) else cfg.scenario
        )
        sc = cfg.scenario
        self.start = parse_month(sc.start, "scenario.start")
        end = parse_month(sc.end, "scenario.end")
        self.n_steps = (end[0] - self.start[0]) * 12 + end[1] - self.start[1] + 1
        world_digest = None  # the world's content digest, where it is known to be current
        if world is None:
            world, world_digest = _load_world(sc)
        self.world = world
        policy_lists = [
            (list(cfg.policy.instruments), f"configs/policy/{cfg.policy.name}.yaml: policy.instruments"),
            (list(cfg.shock.instruments), f"configs/shock/{cfg.shock.name}.yaml: shock.instruments"),
        ]
        stores = required_stores(policy_lists, self.world) + merchant.holder_stores(self.world)
        self.net, net_digest = _network(self.world, self.start[0], sc.max_suppliers, stores, world_digest)
        net: Network = self.net
        # the content digests of a world and network this call has just loaded (None for ones
        # from the per-process cache, which may have been changed in place since): the keys of
        # the calibration and the investment pipeline in the disk cache
        self.fresh_digests = (world_digest, net_digest) if world_digest and net_digest else None
        event_lists = [
            (list(sc.events), "scenario.events"),
            (list(cfg.shock.events), f"configs/shock/{cfg.shock.name}.yaml: shock.events"),
        ]
        self.events = load_policies(event_lists, self, kind="event")
        seq = np.random.SeedSequence(seed)
        self.streams = {name: np.random.default_rng(c) for name, c in zip(STREAMS, seq.spawn(len(STREAMS)))}
        self._make_agents()
        self._monthly_growth = self._growth_table()
        # origin tracing: the (stage, country, owner) columns that can occur, and what each process
        # stamps
        owners = origin.Owners(net.owner_node, net.owner_country, net.owner_share)
        self.origins = origin.Origins.from_stamps(
            net.slot_stamp, net.slot_country, net.n_countries, net.slot_node, owners
        )
        self.layout = physical.Layout.of(net, self.origins)
        # slot roles read every month (fixed for the network)
        self._is_output = net.slot_role == OUTPUT
        self._is_store = net.slot_role == STORE
        self.main_output = ~np.array([st == "scrap" for st in net.commodity_stage])[net.slot_commodity]
        stamp = origin.Stamp(
            self.origins, net.slot_stamp, net.slot_clear, net.slot_country, net.slot_node, owners
        )
        self.calibration = calibration.cached_calibration(
            net, self.params.market.theta, self.world.trade_shares, self._growth_table(13), self.demand_nodes,
            self.origins, stamp, net_digest,
        )  # fmt: skip
        self._instrument_settings()
        self.state = calibration.initial_state(net, self.calibration, self.params)
        # chains that never exchange material are traced each over its own origin columns, where
        # a month's shipments × columns can reach origin.PARTS_FROM (not in a world this small)
        self.blocks = (
            origin.Blocks.of(
                net.edge_seller, net.edge_buyer, net.slot_node, stamp, self.origins.size, (self.state.mix,)
            )
            if net.edge_seller.size * self.origins.size >= origin.PARTS_FROM
            else None
        )
        self.investment = CapacityDynamics(self)  # structural capacity and the project pipeline
        self.policies = load_policies(policy_lists, self)
        for p in [*self.policies, self.merchants]:  # e.g. a stockpile's first fill, holders' stock
            for slots, tonnes in p.initial_stocks():
                self.state.stock[slots] += tonnes
        # goods in transit (sim/transit.py): the routes that take months, with the base year's cargo afloat
        self.routes = transit.Routes.of(net.edge_transit, net.edge_seller, net.edge_buyer)
        transit.start(self.routes, self.state, self.calibration.base_edge_flow, self.origins.size)
        self.normal_afloat = transit.normal_afloat(
            net.edge_transit, net.edge_buyer, self.calibration.base_edge_flow, net.n_slots
        )
        self.recorder = Recorder(self)
        # model-level reporters for Mesa's own tools (batch_run, visualisation); the full
        # tables come from the columnar Recorder
        self.datacollector = mesa.DataCollector(
            model_reporters={"price_index": price_index, "unmet_share": unmet_share}
        )
        self.running = True

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _configure(cfg: Any, rng: Any, parameters: dict[str, Any]) -> Any:
        """The run config: ``cfg`` (default: the packaged one) with ``parameters`` (dotted keys)
        and the seed applied, on a copy."""
        if cfg is None:
            cfg = load_config()
        seed = parameters.pop("seed", None)
        seed = rng if seed is None else seed
        if not parameters and seed is None:
            return cfg
        cfg = copy.deepcopy(cfg)
        for key, value in parameters.items():
            OmegaConf.update(cfg, key, value, merge=False)
        if seed is not None:
            cfg.seed = seed
        return cfg

    def _make_agents(self) -> None:
        """One Mesa agent per facility, manufacturer (demand centre) and government."""
        net = self.net
        self.producer_nodes = np.flatnonzero(net.is_facility)
        self.demand_nodes = np.flatnonzero(net.is_demand)
        classes = {**AGENT_CLASSES, "Manufacturer": Manufacturer}  # stockpiles belong to governments
        for n, kind in enumerate(net.node_agent):
            if kind in classes:
                classes[kind](self, n)
        self.merchants = merchant.Holders(self)  # merchant holders (holders.csv); decide after buyers
        # each agent type decides for all its agents in one vectorised call: its Mesa AgentSet
        # gives the rows (fixed for the run, so read once)
        self.nodes_by_type = {
            cls: np.fromiter((a.node for a in agents), dtype=np.int64, count=len(agents))
            for cls, agents in self.agents_by_type.items()
            if hasattr(cls, "decide")
        }
        self.governments = {c: Government(self, c, str(net.blocs[i])) for i, c in enumerate(net.countries)}

    def _instrument_settings(self) -> None:
        """What instruments set each month (reset every month): government purchases and releases
        per stockpile slot and their price, price floors per output slot, collection rates per
        demand centre (set by applying their Effects)."""
        net = self.net
        self.store_request = np.zeros(net.n_slots)
        self.store_offer = np.zeros(net.n_slots)
        self.store_price = np.repeat(net.price0, net.n_countries)[self.slot_market()]  # release price
        # edges between commercial parties (stockpiles trade in their own rounds)
        self.commercial_edges = net.commercial_edges()
        self.is_consume, self.restock_months = buying.restocking(net, self.params, self.demand_nodes)
        self.cover_dispersion = np.where(self.is_consume, self.params.demand.cover_dispersion, 0.0)
        self.floor = np.zeros(net.n_slots)
        self.collection = np.where(net.is_demand, net.collection_rate[np.maximum(net.end_use, 0)], 0.0)

    def _growth_table(self, n_months: int | None = None) -> np.ndarray:
        """Demand index per end use and month (the run's months, or the first ``n_months``),
        interpolated linearly between Januaries."""
        net = self.net
        n = self.n_steps if n_months is None else n_months
        months = self.start[0] + (self.start[1] - 1) / 12 + np.arange(n) / 12
        return np.stack([np.interp(months, net.growth_years, row) for row in net.growth])

    # ------------------------------------------------------------------ views for agents and instruments
    def growth_index(self, nodes: np.ndarray) -> np.ndarray:
        t = min(self.state.t, self.n_steps - 1)
        return self._monthly_growth[self.net.end_use[nodes], t]

    def slot_market(self) -> np.ndarray:
        """Per slot: its (commodity, country) market; fixed for the run, computed once (read-only)."""
        sm = self.__dict__.get("_slot_market")
        if sm is None:
            sm = self.net.market_index(self.net.slot_commodity, self.net.slot_country)
            sm.flags.writeable = False
            self._slot_market = sm
        return sm

    @property
    def idle_threshold(self) -> np.ndarray:
        return self.calibration.idle_threshold

    @property
    def base_edge_flow(self) -> np.ndarray:
        return self.calibration.base_edge_flow

    def base_flow_of_slots(self, slots: np.ndarray) -> np.ndarray:
        """2024 monthly flow of the given slots (output of outputs, use of inputs)."""
        return self.calibration.base[slots]

    def collection_rate(self, nodes: np.ndarray) -> np.ndarray:
        return physical.collection_rate(
            self.net, self.state, self.slot_market(), self.collection, self.params.recycling, nodes
        )

    # ------------------------------------------------------------------ the month
    def step(self) -> None:
        """One month (docs/ARCHITECTURE.md): events and instruments, investment, decisions,
        trading and delivery, physical flows, settlement, prices, record."""
        s, net, t = self.state, self.net, self.state.t
        self.recorder.open_step(s)
        mods, active = self._events_and_instruments(t)
        self._settle(self.investment.step(self, active, t))  # investment decisions, on the terms just set
        self.decision_memo: dict | None = None
        for cls, nodes in self.nodes_by_type.items():  # agents plan output and use
            # producers share the month's per-node margins and order-driven activity (their
            # decisions write only their plans); any other decision may move what those read
            if not issubclass(cls, Producer):
                self.decision_memo = None
            elif self.decision_memo is None:
                self.decision_memo = {}
            cls.decide(self, nodes)
        self.decision_memo = None
        book = self._book(mods, active)
        self.cleared = trading.trade_month(
            book, net, s.log_p, self.params.market.theta, self.params.market.passes
        )
        self._deliver(self.cleared)
        production, use = physical.transform(net, self.layout, s)
        consumed, desired = physical.consume(net, self.layout, s, use, self._line_stops(book))
        retired = physical.end_of_life(
            net, self.layout, s, production, self.collection_rate(self.layout.scrap_nodes)
        )
        # producers plan on orders received (what buyers asked of them, within caps), not on
        # sales: a sold-out plant that planned on sales would never learn demand exceeds output
        orders = np.bincount(net.edge_seller, weights=self.cleared.result.asked, minlength=net.n_slots)
        s.orders_avg = np.where(self._is_output, 0.8 * s.orders_avg + 0.2 * orders, 0.0)
        s.orders_lr = np.where(
            self._is_output,
            prices.smooth(s.orders_lr, orders, 1 / self.params.market.normal_sales_months),
            0.0,
        )
        for p in active:  # settlement: governments pay and collect what instruments return
            self._settle(p.after_clearing(self))
        prices.update(self, self.cleared)
        self.investment.after_prices(self)
        self.recorder.close_step(s, production, use, consumed, desired, retired)
        self.datacollector.collect(self)
        self._year_end(active, t)
        s.t += 1
        self.running = s.t < self.n_steps

    def _events_and_instruments(self, t: int) -> tuple[Modifiers, list]:
        """Scenario events and random outages set this month's modifiers; demand noise is drawn;
        active instruments update their state (and set price floors)."""
        s, sd = self.state, self.params.demand.noise_sd
        mods = Modifiers.neutral(self.net)
        for ev in self.events:
            if ev.active(t):
                self.apply(ev.modify(self, t), mods)
        self._random_outages(mods)
        s.capacity_factor, s.demand_factor = mods.capacity_factor, mods.demand_factor
        s.activity_cap = mods.activity_cap
        noise = self.streams["demand_noise"].standard_normal(self.demand_nodes.size)
        s.noise[self.demand_nodes] = np.exp(sd * noise - sd * sd / 2)
        active = [p for p in self.policies if p.active(t)]
        self.floor[:] = 0.0
        for p in active:
            self.apply(p.on_step(self, t), mods)
        return mods, active

    def _book(self, mods: Modifiers, active: list) -> trading.Book:
        """This month's orders and offers, with the caps, wedges, government purchases and
        releases and contracts the active instruments add."""
        net, s = self.net, self.state
        request, self.last_use, self.stock_target = buying.purchase_requests(
            net,
            s,
            self.params,
            self.is_consume,
            self.restock_months,
            self.normal_afloat,
            self.calibration.base,
        )
        wedges = Wedges.none(net.edge_seller.size)
        self.store_request[:] = 0.0
        self.store_offer[:] = 0.0
        self.merchants.market(self)  # merchant holders' purchases, and offers from their stores
        contracts: list[Contract] = []
        wedged = False  # whether an instrument set a wedge this month (else p_del skips them)
        for p in active:
            effects = p.market(self, request)
            wedged = wedged or bool(effects.wedges)
            contracts += self.apply(effects, mods, wedges)
        self.last_request = request = request + self.store_request
        self.wedges = wedges
        # merchant holders sell in the spot round like any seller; governments' releases keep
        # the reserve round (policy, not arbitrage)
        offered = np.minimum(self.store_offer, np.where(self._is_store, s.stock, 0.0))
        traders = self.merchants.is_store
        mods.edge_cap[self.merchants.wash_edges] = 0.0  # holders do not trade with one another
        return trading.Book(
            request=request,
            offer=np.where(self._is_output, s.stock, np.where(traders, offered, 0.0)),
            release=np.where(traders, 0.0, offered),
            use=self.last_use,
            stock=s.stock,
            p_del=prices.edge_costs(
                net, s.log_p, self.slot_market(), self.store_price, wedges if wedged else None
            ),
            edge_cap=mods.edge_cap,
            groups=mods.groups(),
            preference=s.preference,
            contracts=contracts,
            adjust=self.restock_months,
            dispersion=self.cover_dispersion,
        )

    def apply(self, effects: Effects, mods: Modifiers, wedges: Wedges | None = None) -> list[Contract]:
        """Apply what an instrument or event returned to this month's modifiers, wedges, price
        floors, collection rates and government orders; returns its contracts (served first)."""
        for nodes, factor in effects.capacity_factor:
            mods.capacity_factor[nodes] *= factor
        for nodes, cap in effects.activity_cap:
            mods.activity_cap[nodes] = np.minimum(mods.activity_cap[nodes], cap)
        for nodes, factor in effects.demand_factor:
            mods.demand_factor[nodes] *= factor
        for edges, cap in effects.edge_caps:
            mods.edge_cap[edges] = np.minimum(mods.edge_cap[edges], cap)
        for edges, cap in effects.shared_caps:
            mods.add_group(edges, cap)
        for edges, name, rate in effects.wedges:
            getattr(wedges, name)[edges] += rate
        for slots, floor in effects.floors:
            self.floor[slots] = np.maximum(self.floor[slots], floor)
        for nodes, rate in effects.collection:
            self.collection[nodes] = rate
        for target, items in (
            (self.store_request, effects.purchases),
            (self.store_offer, effects.releases),
            (self.store_price, effects.release_prices),
        ):
            for slots, value in items:
                target[slots] = value
        return effects.contracts

    def _deliver(self, cleared: trading.Cleared) -> None:
        """Traded material moves into buyers' stocks with its origin mix; buyers learn the
        price they paid at the margin."""
        net, s, res = self.net, self.state, cleared.result
        # sellers' mixes, read in place: every sum is taken before ``receive`` writes into them
        shipped = origin.Shipments.of(
            net.edge_seller, res.flow, s.mix, self.blocks, copy=False, parts_from=origin.PARTS_FROM
        )
        self.recorder.trade(s, res, cleared.p_paid, shipped)
        now = transit.ship(self.routes, s, res.flow)  # cargo on routes that take months is afloat
        if now is not res.flow:
            shipped = origin.Shipments.of(
                net.edge_seller, now, s.mix, self.blocks, copy=False, parts_from=origin.PARTS_FROM
            )
        received = np.bincount(net.edge_buyer, weights=now, minlength=net.n_slots)
        origin.receive(s.stock, s.mix, net.edge_buyer, shipped)
        s.stock = np.maximum(s.stock - res.sold, 0.0) + received
        transit.arrive(self.routes, s)  # what was shipped months ago lands
        s.paid = prices.learn_paid(net, cleared, s.paid, self.params.market.theta, s.preference)
        s.expected_paid = prices.smooth(s.expected_paid, s.paid, self.params.producers.expectation_weight)

    def _line_stops(self, book: trading.Book) -> np.ndarray | None:
        """Per demand centre: the use its firms whose stock runs out cannot run this month (line
        stops, agents/buying.py), from its stock before trading, what it asked and what it got."""
        d, s = self.layout.demand, self.state
        slots = self.net.consume_slot[d]
        if not (self.cleared.result.unmet[slots] > 0).any():
            return None  # every manufacturer served in full: no firm stops (buying.line_stops)
        return buying.line_stops(
            s.plan[d],
            book.stock[slots],
            s.stock[slots] - book.stock[slots],
            self.last_request[slots],
            self.restock_months[slots],
            self.cover_dispersion[slots],
        )

    def _settle(self, payments: list[Payment]) -> None:
        """Book payments in their governments' fiscal ledgers (the ledger is built from them)."""
        for pay in payments:
            self.governments[pay.country].book(pay)

    def _year_end(self, active: list, t: int) -> None:
        if (self.start[1] - 1 + t) % 12 == 11:
            year = self.start[0] + (self.start[1] - 1 + t) // 12
            for p in active:
                p.on_year_end(self, year)

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

    def run(self) -> None:
        """Step to the end of the horizon."""
        while self.running:
            self.step()


def _load_world(sc: Any) -> tuple[World, str | None]:
    """The scenario's world, parsed once per process while its files are unchanged; and its
    content digest when this call loaded it (from the disk cache or its files): no one can
    have changed it yet. A world from the per-process cache may have been changed in place
    since (it is the one every model of the process shares), so its digest is not given."""
    chains = [sc.data] if isinstance(sc.data, str) else list(sc.data)
    paths, blocs = [data_root() / c for c in chains], dict(sc.blocs)
    key = (tuple(chains), tuple(sorted(blocs.items())), cache.files_key(paths))
    (world, digest), built = cache.memo_built("world", key, lambda: load_worlds_digested(paths, blocs))
    return world, (digest if built else None)


def _network(
    world: World,
    start_year: int,
    max_suppliers: int | None,
    stores: list[tuple],
    world_digest: str | None = None,
) -> tuple[Network, str | None]:
    """The compiled network, once per world, start year, supplier limit and stockpile nodes
    (``world_digest``: see :func:`compile_network`); and its content digest when this call
    compiled or loaded it (see :func:`_load_world`)."""
    key = (id(world), start_year, max_suppliers, repr(stores))

    def load() -> tuple[World, Network, str | None]:
        net, digest = compile_network_digested(
            world, start_year, max_suppliers, stores, world_digest=world_digest
        )
        return world, cache.freeze(net), digest

    # the world rides along so that its id stays unique while cached
    (_, net, digest), built = cache.memo_built("network", key, load)
    return net, (digest if built else None)
