"""The supply graph: built once from world data as a NetworkX DiGraph, compiled to arrays.

Nodes are facilities (mines, refineries, alloy and magnet plants, recyclers) and demand
centres (one per country × end use × commodity). A DiGraph edge ``u → v`` is a permitted trade
link; its ``links`` attribute maps each commodity ``u`` may sell to ``v`` onto the link's
transport cost. Transformation is the node's ``process`` (inputs → outputs with coefficients).

The per-step work never touches the graph: :class:`Network` holds the same structure as flat
arrays over *slots* (one stock of one commodity at one node) and *edges* (seller slot → buyer
slot). The graph stays the source of truth for structure, plotting and analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from critmin.sim import cache, transit
from critmin.sim.world import DataError, World, ownership

INPUT, OUTPUT, STORE = 0, 1, 2  # a STORE slot (government stockpile) both buys and sells


@dataclass
class Network:
    """Array form of the supply graph. Index conventions are documented per field."""

    graph: nx.DiGraph
    countries: list[str]
    blocs: np.ndarray  # bloc name per country
    commodities: list[str]
    commodity_stage: list[str]
    price0: np.ndarray  # USD/t per commodity (base-year calibration)
    stages: list[str]  # origin stages traced, in chain order
    # nodes (facilities first, then demand centres)
    node_id: list[str]
    node_country: np.ndarray
    # country of each node's controlling (largest) owner (facilities.csv ``owner``; default
    # node_country; demand centres and stockpiles: their country)
    node_owner: np.ndarray
    # who owns the nodes, as parts (node, owner country, share; a node's parts sum to 1): an
    # aggregate of several owners has several parts. Only the origin tracing reads it
    owner_node: np.ndarray
    owner_country: np.ndarray
    owner_share: np.ndarray
    node_agent: list[str]  # Miner, Refiner, Recycler, Manufacturer
    node_process: list[str]  # process name (consume, store for non-facilities)
    is_facility: np.ndarray
    is_demand: np.ndarray  # demand centres (manufacturers)
    is_store: np.ndarray  # government stockpiles
    capacity: np.ndarray  # activity units per month (0 for demand centres)
    activity0: np.ndarray  # base-year activity per month
    cash_cost: np.ndarray  # USD per activity unit
    # by-product plants (by_products.csv): the share h of base-year revenue from a host metal
    # outside the model, and what that brings per activity unit, held at the base year
    # (h/(1-h) x the modelled outputs' base-year value); 0 for other nodes
    host_share: np.ndarray
    host_value: np.ndarray
    stamp_stage: np.ndarray  # origin stage index stamped by the node's process, -1 for none
    slot_stamp: np.ndarray  # [slot, stage] bool: stages an output slot's production is stamped with
    slot_clear: np.ndarray  # [slot, stage] bool: stages emptied on production (not yet happened)
    # demand centres (arrays over nodes; zero/-1 for facilities)
    demand0: np.ndarray  # t per month in the base year
    end_use: np.ndarray  # index into end_uses, -1 for facilities
    end_uses: list[str]
    lifetime_months: np.ndarray  # per end use
    collection_rate: np.ndarray  # per end use
    growth: np.ndarray  # [end use, year offset from start year] demand index
    growth_years: np.ndarray
    # slots
    slot_node: np.ndarray
    slot_commodity: np.ndarray
    slot_role: np.ndarray  # INPUT, OUTPUT or STORE
    slot_coef: np.ndarray  # t per activity unit (1 for a demand centre's input)
    consume_slot: np.ndarray  # per node: its demand slot (demand centres), -1 otherwise
    scrap_slot: np.ndarray  # per node: output slot of end-of-life scrap, -1 if none
    # edges
    edge_seller: np.ndarray  # seller slot
    edge_buyer: np.ndarray  # buyer slot
    edge_transport: np.ndarray  # USD/t
    edge_commodity: np.ndarray
    edge_from: np.ndarray  # origin country index
    edge_to: np.ndarray  # destination country index
    # whole months a shipment takes (transit.csv; sim/transit.py); 0: arrives within the month
    edge_transit: np.ndarray | None = None
    # per slot: months of input its holder holds (a plant: processes.csv input_cover_months, else
    # its commodity's commodities.csv buyer_cover_months; a manufacturer: the latter); NaN: the
    # scenario's producers.input_cover_months or demand.safety_stock_months
    slot_cover: np.ndarray | None = None

    @property
    def n_countries(self) -> int:
        return len(self.countries)

    @property
    def n_commodities(self) -> int:
        return len(self.commodities)

    @property
    def n_slots(self) -> int:
        return self.slot_node.size

    @property
    def slot_country(self) -> np.ndarray:
        return self.node_country[self.slot_node]

    @property
    def slot_owner(self) -> np.ndarray:
        return self.node_owner[self.slot_node]

    def input_cover(self, default: float) -> np.ndarray:
        """Per slot: months of input its plant holds (processes.csv ``input_cover_months``,
        ``default`` where blank: the scenario's ``producers.input_cover_months``)."""
        if self.slot_cover is None:
            return np.full(self.n_slots, float(default))
        return np.where(np.isnan(self.slot_cover), float(default), self.slot_cover)

    def holder_cover(
        self, plant_default: float, consume_default: float, is_consume: np.ndarray
    ) -> np.ndarray:
        """Per slot: months of use its buyer holds: the data's cover (:attr:`slot_cover`) where
        given, else the scenario's, ``consume_default`` for manufacturers (``is_consume``) and
        ``plant_default`` for plants."""
        default = np.where(is_consume, float(consume_default), float(plant_default))
        if self.slot_cover is None:
            return default
        return np.where(np.isnan(self.slot_cover), default, self.slot_cover)

    def commercial_edges(self) -> np.ndarray:
        """Per edge: neither end is a government stockpile (stockpiles trade in their own rounds)."""
        return (self.slot_role[self.edge_seller] != STORE) & (self.slot_role[self.edge_buyer] != STORE)

    def market_index(self, commodity: np.ndarray, country: np.ndarray) -> np.ndarray:
        """Flat index of a (commodity, country) market."""
        return commodity * self.n_countries + country

    def country_index(self, code: str, where: str) -> int:
        try:
            return self.countries.index(code)
        except ValueError:
            raise DataError(f"{where}: unknown country {code!r}; expected one of {self.countries}") from None

    def commodity_index(self, name: str, where: str) -> int:
        try:
            return self.commodities.index(name)
        except ValueError:
            raise DataError(
                f"{where}: unknown commodity {name!r}; expected one of {self.commodities}"
            ) from None


def build_graph(world: World, max_suppliers: int | None = None, stores: list[tuple] = ()) -> nx.DiGraph:
    """Facilities, demand centres and stockpiles as nodes, permitted trade links as edges.

    ``stores`` lists government stockpiles as (id, country, commodity, sell_to): each buys from
    every seller of its commodity and sells to its buyers in the ``sell_to`` countries (the
    holder, or the members of a coordinated stockpile).
    """
    g = nx.DiGraph(name="supply graph")
    _add_facilities(g, world)
    _add_demand_centres(g, world)
    for node, country, commodity in stores:
        g.add_node(
            node,
            kind="store",
            country=country,
            process="store",
            agent="Stockpile",
            stage="",
            inputs={commodity: 1.0},
            outputs={commodity: 1.0},
            name=node,
        )
    transport = dict(zip(world.commodities["commodity"], world.commodities["transport_usd_per_t"]))
    _add_trade_links(g, transport, max_suppliers)
    return g


def _add_facilities(g: nx.DiGraph, world: World) -> None:
    """One node per facility, with its process's recipe (inputs and outputs per unit)."""
    recipes = {
        p: {
            "inputs": dict(
                zip(r.loc[r.role == "input", "commodity"], r.loc[r.role == "input", "coefficient"])
            ),
            "outputs": dict(
                zip(r.loc[r.role == "output", "commodity"], r.loc[r.role == "output", "coefficient"])
            ),
            "agent": r["agent_type"].iloc[0],
            "stage": r["origin_stage"].iloc[0],
        }
        for p, r in world.processes.groupby("process", sort=False)
    }
    for f in world.facilities.itertuples(index=False):
        rec = recipes[f.process]
        g.add_node(
            f.facility,
            kind="facility",
            country=f.country,
            process=f.process,
            agent=rec["agent"],
            stage=rec["stage"],
            inputs=rec["inputs"],
            outputs=rec["outputs"],
            owners=ownership(getattr(f, "owner", "") or f.country, getattr(f, "owner_share", ""), f.country),
            capacity_tpa=f.capacity_tpa,
            output_base_tpa=f.output_base_tpa,
            cash_cost=f.cash_cost_usd_per_t,
            name=f.name,
        )


def _add_demand_centres(g: nx.DiGraph, world: World) -> None:
    """One node per country × end use × commodity; its retired products are its mineral's scrap."""
    scrap_of = _scrap_commodities(world)
    for d in world.demand.itertuples(index=False):
        node = f"demand:{d.country}:{d.end_use}:{d.commodity}"
        scrap = scrap_of.get(d.commodity)
        g.add_node(
            node,
            kind="demand",
            country=d.country,
            process="consume",
            agent="Manufacturer",
            stage="",
            inputs={d.commodity: 1.0},
            outputs={scrap: 1.0} if scrap else {},
            end_use=d.end_use,
            demand_base_t=d.demand_base_t,
            name=node,
        )


def _add_trade_links(g: nx.DiGraph, transport: dict[str, float], max_suppliers: int | None) -> None:
    """Every buyer of a commodity may buy from every seller of it (stockpiles not from each
    other), at the commodity's transport cost across borders; with ``max_suppliers``, from its
    cheapest ones only."""
    sellers: dict[str, list[str]] = {}
    buyers: dict[str, list[str]] = {}
    for n, a in g.nodes(data=True):
        for c in a["outputs"]:
            sellers.setdefault(c, []).append(n)
        for c in a["inputs"]:
            buyers.setdefault(c, []).append(n)
    for c, bs in buyers.items():
        for b in bs:
            is_store = g.nodes[b]["kind"] == "store"
            cands = [
                s for s in sellers.get(c, []) if s != b and not (is_store and g.nodes[s]["kind"] == "store")
            ]
            cost = [0.0 if g.nodes[s]["country"] == g.nodes[b]["country"] else transport[c] for s in cands]
            if max_suppliers is not None and len(cands) > max_suppliers:
                order = np.argsort(np.asarray(cost), kind="stable")[:max_suppliers]
                cands = [cands[i] for i in order]
                cost = [cost[i] for i in order]
            for s, t in zip(cands, cost):
                if g.has_edge(s, b):
                    g.edges[s, b]["links"][c] = t
                else:
                    g.add_edge(s, b, links={c: t})


def _scrap_commodities(world: World) -> dict[str, str]:
    """Map each consumed commodity to its mineral's scrap commodity (if the mineral has one)."""
    com = world.commodities
    scrap = com[com["stage"] == "scrap"]
    per_mineral = scrap.groupby("mineral")["commodity"].apply(list)
    out = {}
    for mineral, names in per_mineral.items():
        if len(names) > 1:
            raise DataError(f"commodities.csv: mineral {mineral!r} has several scrap commodities {names}")
        for c in com.loc[(com["mineral"] == mineral) & (com["stage"] != "scrap"), "commodity"]:
            out[c] = names[0]
    return out


def _slots(
    nodes: list[str], attrs: list[dict], kidx: dict[str, int]
) -> tuple[dict[str, list], dict[tuple[str, str, int], int], np.ndarray, np.ndarray]:
    """One slot per node × commodity × role (a stockpile's one slot both buys and sells); the
    slot each demand centre consumes from and the one its scrap goes to."""
    cols: dict[str, list] = {"node": [], "commodity": [], "role": [], "coef": []}
    slot_of: dict[tuple[str, str, int], int] = {}
    consume_slot = np.full(len(nodes), -1)
    scrap_slot = np.full(len(nodes), -1)

    def add(i: int, c: str, role: int, coef: float) -> None:
        for key, value in (("node", i), ("commodity", kidx[c]), ("role", role), ("coef", coef)):
            cols[key].append(value)

    for i, a in enumerate(attrs):
        if a["kind"] == "store":  # one slot that plays buyer and seller
            c = next(iter(a["inputs"]))
            slot_of[(nodes[i], c, INPUT)] = slot_of[(nodes[i], c, OUTPUT)] = len(cols["node"])
            add(i, c, STORE, 1.0)
            continue
        for role, recipe in ((INPUT, a["inputs"]), (OUTPUT, a["outputs"])):
            for c, coef in recipe.items():
                slot_of[(nodes[i], c, role)] = len(cols["node"])
                add(i, c, role, float(coef))
        if a["kind"] == "demand":
            consume_slot[i] = slot_of[(nodes[i], next(iter(a["inputs"])), INPUT)]
            if a["outputs"]:
                scrap_slot[i] = slot_of[(nodes[i], next(iter(a["outputs"])), OUTPUT)]
    return cols, slot_of, consume_slot, scrap_slot


def _edges(
    g: nx.DiGraph, slot_of: dict[tuple[str, str, int], int], kidx: dict[str, int]
) -> dict[str, np.ndarray]:
    """One edge per trade link and commodity: seller slot, buyer slot, transport, commodity."""
    e_s, e_b, e_t, e_c = [], [], [], []
    for u, v, links in g.edges(data="links"):
        for c, t in links.items():
            e_s.append(slot_of[(u, c, OUTPUT)])
            e_b.append(slot_of[(v, c, INPUT)])
            e_t.append(t)
            e_c.append(kidx[c])
    return {
        "seller": np.array(e_s, dtype=np.int64),
        "buyer": np.array(e_b, dtype=np.int64),
        "transport": np.array(e_t, dtype=float),
        "commodity": np.array(e_c, dtype=np.int64),
    }


def _growth(world: World, end_uses: list[str], start_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Demand index per end use and data year, and the years."""
    eidx = {e: i for i, e in enumerate(end_uses)}
    years = np.array(sorted(world.growth["year"].astype(int).unique()))
    growth = np.ones((len(end_uses), years.size))
    for r in world.growth.itertuples(index=False):
        growth[eidx[r.end_use], np.searchsorted(years, int(r.year))] = r.index
    if start_year < years[0]:
        raise DataError(f"demand_growth.csv: starts in {years[0]}, after the run start {start_year}")
    return growth, years


def _node_fields(
    nodes: list[str], attrs: list[dict], node_country: np.ndarray, cidx: dict[str, int]
) -> dict[str, Any]:
    """Per-node arrays of the network (monthly units for capacity, activity and demand)."""
    return {
        "node_id": nodes,
        "node_country": node_country,
        **_owner_fields(attrs, node_country, cidx),
        "node_agent": [a["agent"] for a in attrs],
        "node_process": [a["process"] for a in attrs],
        "is_facility": np.array([a["kind"] == "facility" for a in attrs]),
        "is_demand": np.array([a["kind"] == "demand" for a in attrs]),
        "is_store": np.array([a["kind"] == "store" for a in attrs]),
        "capacity": np.array([a.get("capacity_tpa", 0.0) / 12 for a in attrs]),
        "activity0": np.array([a.get("output_base_tpa", 0.0) / 12 for a in attrs]),
        "cash_cost": np.array([a.get("cash_cost", 0.0) for a in attrs]),
        "demand0": np.array([a.get("demand_base_t", 0.0) / 12 for a in attrs]),
    }


def _owner_fields(attrs: list[dict], node_country: np.ndarray, cidx: dict[str, int]) -> dict[str, np.ndarray]:
    """Who owns each node: its parts (node, owner, share) and its largest owner."""
    node, owner, share, main = [], [], [], []
    for i, (a, c) in enumerate(zip(attrs, node_country, strict=True)):
        parts = [(cidx[code], s) for code, s in a.get("owners", ())] or [(int(c), 1.0)]
        node += [i] * len(parts)
        owner += [p[0] for p in parts]
        share += [p[1] for p in parts]
        main.append(max(parts, key=lambda p: p[1])[0])
    return {
        "node_owner": np.array(main, dtype=np.int64),
        "owner_node": np.array(node, dtype=np.int64),
        "owner_country": np.array(owner, dtype=np.int64),
        "owner_share": np.array(share, dtype=float),
    }


def host_shares(world: World, processes: list[str], countries: list[str]) -> np.ndarray:
    """Per node, the share of its base-year revenue from a host metal (``by_products.csv``: the
    row of its country, else of its bloc, else ``all``); 0 for processes without a host."""
    rows = {(r.process, r.region): float(r.host_revenue_share) for r in world.by_products.itertuples()}
    bloc = dict(zip(world.countries["country"], world.countries["bloc"], strict=True))
    out = np.zeros(len(processes))
    for i, (process, country) in enumerate(zip(processes, countries, strict=True)):
        for region in (country, bloc.get(country, ""), "all"):
            if (process, region) in rows:
                out[i] = rows[(process, region)]
                break
    return out


def compile_network(
    world: World,
    start_year: int,
    max_suppliers: int | None = None,
    stores: list[tuple] = (),
    *,
    world_digest: str | None = None,
) -> Network:
    """Build the graph and flatten it to arrays for the per-step market work. Kept in the disk
    cache (:func:`critmin.sim.cache.disk_memo`) under the SHA-256 of the world's content and
    the other arguments, so an edited world (in memory or on disk) is compiled anew.
    ``world_digest``: the world's :func:`~critmin.sim.cache.content_digest` where the caller
    knows it is current (a world just loaded, that nobody could have changed yet:
    :func:`critmin.sim.world.load_worlds_digested`); else it is computed here."""
    return compile_network_digested(world, start_year, max_suppliers, stores, world_digest=world_digest)[0]


def compile_network_digested(
    world: World,
    start_year: int,
    max_suppliers: int | None = None,
    stores: list[tuple] = (),
    *,
    world_digest: str | None = None,
) -> tuple[Network, str | None]:
    """:func:`compile_network` and the digest of the network's :func:`network_content`,
    computed once when it is compiled and stored with it (None when the disk cache is off).
    Valid while nobody has changed the network: for a caller that uses it at once."""

    def build() -> tuple[Network, str | None]:
        net = _compile_network(world, start_year, max_suppliers, stores)
        return net, (cache.content_digest(network_content(net)) if cache.disk_dir() is not None else None)

    return cache.disk_memo(
        "network",
        lambda: cache.disk_key(
            "network",
            cache.content_digest(
                world_digest or cache.content_digest(world), start_year, max_suppliers, list(stores)
            ),
        ),
        build,
    )


def network_content(net: Network) -> dict[str, Any]:
    """What of a network calibration can read, for its disk-cache key: every field, and of the
    graph its nodes and edges in order (nothing here reads the graph's attributes, which the
    arrays hold; hashing them would cost ~40 ms, more than the calibration it saves)."""
    out = {k: v for k, v in vars(net).items() if k != "graph"}
    out["graph_nodes"] = [str(n) for n in net.graph.nodes]
    out["graph_edges"] = [f"{u}\x00{v}" for u, v in net.graph.edges]
    return out


def _compile_network(
    world: World, start_year: int, max_suppliers: int | None = None, stores: list[tuple] = ()
) -> Network:
    g = build_graph(world, max_suppliers, stores)
    countries = world.countries["country"].tolist()
    cidx = {c: i for i, c in enumerate(countries)}
    commodities = world.commodities["commodity"].tolist()
    kidx = {c: i for i, c in enumerate(commodities)}
    stages = world.origin_stages
    end_uses = world.end_uses["end_use"].tolist()
    eidx = {e: i for i, e in enumerate(end_uses)}
    nodes = list(g.nodes)
    attrs = [g.nodes[n] for n in nodes]
    slots, slot_of, consume_slot, scrap_slot = _slots(nodes, attrs, kidx)
    edges = _edges(g, slot_of, kidx)
    node_country = np.array([cidx[a["country"]] for a in attrs], dtype=np.int64)
    slot_node_a = np.array(slots["node"], dtype=np.int64)
    e_s_a, e_b_a = edges["seller"], edges["buyer"]
    growth, growth_years = _growth(world, end_uses, start_year)
    eu = world.end_uses.set_index("end_use")
    stamp_stage = np.array([stages.index(a["stage"]) if a["stage"] in stages else -1 for a in attrs])
    slot_com, slot_role = slots["commodity"], slots["role"]
    slot_stamp, slot_clear = _stamp_masks(
        stamp_stage[slot_node_a],
        np.array(slot_role) == OUTPUT,
        [world.commodities["stage"].iloc[k] for k in slot_com],
        stages,
    )
    fields = _node_fields(nodes, attrs, node_country, cidx)
    value0 = np.bincount(
        slot_node_a,
        weights=np.where(np.array(slot_role) == OUTPUT, np.array(slots["coef"]), 0.0)
        * world.commodities["price_base_usd_per_t"].to_numpy(float)[np.array(slot_com, dtype=np.int64)],
        minlength=len(nodes),
    )
    h = host_shares(world, fields["node_process"], [countries[c] for c in node_country])
    return Network(
        graph=g,
        countries=countries,
        blocs=world.countries["bloc"].to_numpy(),
        commodities=commodities,
        commodity_stage=world.commodities["stage"].tolist(),
        price0=world.commodities["price_base_usd_per_t"].to_numpy(float),
        stages=stages,
        **fields,
        host_share=h,
        host_value=h / (1.0 - h) * value0,
        stamp_stage=stamp_stage,
        slot_stamp=slot_stamp,
        slot_clear=slot_clear,
        end_use=np.array([eidx[a["end_use"]] if "end_use" in a else -1 for a in attrs]),
        end_uses=end_uses,
        lifetime_months=eu.loc[end_uses, "lifetime_years"].to_numpy(float) * 12,
        collection_rate=eu.loc[end_uses, "collection_rate_base"].to_numpy(float),
        growth=growth,
        growth_years=growth_years,
        slot_node=slot_node_a,
        slot_commodity=np.array(slot_com, dtype=np.int64),
        slot_role=np.array(slot_role, dtype=np.int64),
        slot_coef=np.array(slots["coef"]),
        consume_slot=consume_slot,
        scrap_slot=scrap_slot,
        edge_seller=e_s_a,
        edge_buyer=e_b_a,
        edge_transport=edges["transport"],
        edge_commodity=edges["commodity"],
        edge_from=node_country[slot_node_a[e_s_a]] if e_s_a.size else np.zeros(0, np.int64),
        edge_to=node_country[slot_node_a[e_b_a]] if e_b_a.size else np.zeros(0, np.int64),
        slot_cover=_slot_cover(world, fields["node_process"], slot_node_a, slot_com, slot_role, commodities),
        edge_transit=transit.edge_months(
            world.transit,
            commodities,
            countries,
            edges["commodity"],
            node_country[slot_node_a[e_s_a]] if e_s_a.size else np.zeros(0, np.int64),
            node_country[slot_node_a[e_b_a]] if e_b_a.size else np.zeros(0, np.int64),
            (np.array(slot_role)[e_s_a] != STORE) & (np.array(slot_role)[e_b_a] != STORE)
            if e_s_a.size
            else np.zeros(0, bool),
        ),
    )


def _slot_cover(
    world: World,
    node_process: list[str],
    slot_node: np.ndarray,
    slot_commodity: list[int],
    slot_role: list[int],
    commodities: list[str],
) -> np.ndarray:
    """Per slot: months of use its holder keeps of an input: processes.csv ``input_cover_months`` of
    the slot's (process, input commodity) for a plant, else commodities.csv ``buyer_cover_months``
    of the commodity (plants and manufacturers); NaN where neither is given or the slot is not an
    input."""
    cover = np.full(slot_node.size, np.nan)
    table = world.processes
    given: dict[tuple[str, str], float] = {}
    if "input_cover_months" in table.columns:
        rows = table[(table["role"] == "input") & table["input_cover_months"].notna()]
        given = {(r.process, r.commodity): float(r.input_cover_months) for r in rows.itertuples(index=False)}
    by_commodity: dict[str, float] = {}
    com = world.commodities
    if "buyer_cover_months" in com.columns:
        rows = com[com["buyer_cover_months"].notna()]
        by_commodity = {r.commodity: float(r.buyer_cover_months) for r in rows.itertuples(index=False)}
    if not given and not by_commodity:
        return cover
    for i, (node, k, role) in enumerate(zip(slot_node, slot_commodity, slot_role, strict=True)):
        if role == INPUT:
            name = commodities[k]
            cover[i] = given.get((node_process[node], name), by_commodity.get(name, np.nan))
    return cover


def _stamp_masks(
    process_stage: np.ndarray, is_output: np.ndarray, commodity_stage: list[str], stages: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Which origin stages production into each slot is stamped with, and which it clears.

    A process stamps its own stage with its country. Where its output sits at a later stage
    than the process's origin stage (a recycler, stamped "mine", making alloy), it stamps every
    stage from its own through the output's: recycled alloy is mined, refined and made into
    metal in the recycler's country, as a secondary source. Stages after the output's are
    cleared: they have not happened yet to this material.
    """
    n, g = process_stage.size, len(stages)
    stamp = np.zeros((n, g), bool)
    clear = np.zeros((n, g), bool)
    for i in np.flatnonzero(is_output & (process_stage >= 0)):
        own = process_stage[i]
        if commodity_stage[i] in stages:
            out = stages.index(commodity_stage[i])
            stamp[i, own : max(out, own) + 1] = True
            clear[i, max(out, own) + 1 :] = True
        else:  # by-products (scrap) keep the full history of the material they came from
            stamp[i, own] = True
    return stamp, clear


def chain_graph(world: World) -> nx.DiGraph:
    """Commodity-level chain (mine → refine → metal → magnet → end use), for display."""
    g = nx.DiGraph()
    for p, rows in world.processes.groupby("process", sort=False):
        ins = rows.loc[rows.role == "input", "commodity"]
        outs = rows.loc[rows.role == "output", "commodity"]
        for o in outs:
            g.add_node(o)
            for i in ins:
                g.add_edge(i, o, process=p)
    for d in world.demand[["commodity", "end_use"]].drop_duplicates().itertuples(index=False):
        g.add_edge(d.commodity, f"end use: {d.end_use}", process="consume")
    return g
