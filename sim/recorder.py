"""Columnar recorder: preallocated arrays per step, turned into tidy tables at the end.

Mesa's agent-level DataCollector would deep-copy per agent; here each step adds a few
``bincount`` results per market (commodity × country), per facility and per trade pair.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from critmin.sim import origin
from critmin.sim.network import INPUT, OUTPUT

if TYPE_CHECKING:
    from critmin.sim.market import Clearing
    from critmin.sim.view import ModelView, State

MARKET_VARS = (
    "price",  # seller (FOB) price in the region's market, USD/t
    "buyer_price",  # flow-weighted delivered price paid by the region's buyers, USD/t
    "production",
    "capacity",  # production capacity of main outputs (structural, before outages), t/month
    "use",  # input use by processes plus final consumption
    "consumption",  # final consumption by manufacturers
    "demand",  # manufacturers' desired consumption
    "unmet_demand",  # desired − consumed
    "imports",
    "exports",
    "stock_open",
    "stock",  # closing stock (all holders)
    "in_use",  # in-use stock (end uses)
    "scrap_retired",  # products retired from use this month (t of product)
    "carrying_cost_usd",  # cost of holding the region's stocks this month (rate/12 × value)
    "recycled_production",  # production by recyclers (t of their main output, e.g. alloy from scrap)
)


def mapped_zeros(nbytes: int) -> np.ndarray:
    """``nbytes`` zeroed bytes of their own anonymous memory map (huge pages asked for where the
    system has them), returned to the system when the last array on them is freed. Not from
    malloc: glibc raises its threshold for serving an allocation from a memory map to the size
    of the largest mapped block freed, so freeing ~8 MiB blocks made it keep the later
    multi-MB temporaries of writing the tables in its heap, and the peak of ``critmin run``
    rose by ~12 MiB."""
    size = max(int(nbytes), 1)
    if hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS"):
        # private: a shared anonymous map is shared memory, which gets no huge pages
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:  # Windows: the page file's anonymous map
        buf = mmap.mmap(-1, size)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):
            buf.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(buf, np.uint8)


def zeroed_arrays(parts: dict[str, tuple[tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
    """Zeroed arrays of the given shapes and dtypes, each a C-contiguous view of one allocation
    (64-byte aligned). The recorder's arrays are a few MiB together but each below 4 MiB: as
    separate arrays their pages are faulted in 4 KiB at a time on first write (~1,700 faults of
    a fresh process's first run), while NumPy asks for huge pages for an allocation of 4 MiB or
    more. The allocation lives as long as any of its arrays."""
    offsets, at = {}, 0
    for name, (shape, dtype) in parts.items():
        offsets[name] = at
        at += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64
    raw = mapped_zeros(at + 64)
    start = -raw.ctypes.data % 64  # the first 64-byte boundary (a map starts on a page)
    out = {}
    for name, (shape, dtype) in parts.items():
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        a = start + offsets[name]
        out[name] = raw[a : a + n].view(dtype).reshape(shape)
    return out


# triples of the trade pairs' origin mix kept per block (:meth:`Recorder._keep_mix`): 10 bytes
# each, ~8 MiB a block (a multiple of 4, so that each part of a block is aligned)
MIX_BLOCK = 838_860


class Recorder:
    """Observes a :class:`~critmin.sim.view.ModelView`; never changes it."""

    def __init__(self, model: ModelView) -> None:
        self.model = model
        net = model.net
        T, M = model.n_steps, net.n_commodities * net.n_countries
        # the month-by-market records in one zeroed allocation (see :func:`zeroed_arrays`)
        self.data = zeroed_arrays({v: ((T, M), np.float64) for v in MARKET_VARS})
        for v in MARKET_VARS:
            if "price" in v:
                self.data[v].fill(np.nan)
        self.activity = np.zeros((T, len(net.node_id)))
        key = (net.edge_commodity * net.n_countries + net.edge_from) * net.n_countries + net.edge_to
        self.pair_keys, self.edge_pair = np.unique(key, return_inverse=True)
        P, K = self.pair_keys.size, model.origins.size
        self._use_slots = np.flatnonzero(net.slot_role == INPUT)
        self._slot_market = model.slot_market()
        self.use_keys, self._use_group = np.unique(self._slot_market[self._use_slots], return_inverse=True)
        # what a run's result keeps (trade_cells, consumption_cells) in a second one
        kept = zeroed_arrays(
            {
                "pair_tonnes": ((T, P), np.float64),
                "pair_value": ((T, P), np.float64),
                "use_tonnes": ((T, self.use_keys.size), np.float64),
                "use_mix": ((T, self.use_keys.size, K), np.float32),
            }
        )
        self.pair_tonnes, self.pair_value = kept["pair_tonnes"], kept["pair_value"]
        # origin mix of the trade pairs that carried material, per month (pairs ascending), as
        # (row, origin column, share) triples: most pairs are idle in most months and most
        # origin columns of a pair are zero, so only the non-zero shares are kept
        self.pair_mix: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._mix_block: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _keep_mix
        self._mix_at = 0
        self._M = M
        # origin mix of what each market's plants and manufacturers use (consumption scope)
        self.use_tonnes, self.use_mix = kept["use_tonnes"], kept["use_mix"]
        # final demand per demand centre (unmet demand by end use)
        self.node_desired = np.zeros((T, model.demand_nodes.size))
        self.node_consumed = np.zeros((T, model.demand_nodes.size))
        recycler = np.array([a == "Recycler" for a in net.node_agent])
        main = np.array([st != "scrap" for st in net.commodity_stage])[net.slot_commodity]
        self._recycled_slots = np.flatnonzero((net.slot_role == OUTPUT) & recycler[net.slot_node] & main)
        self._capacity_slots = np.flatnonzero(
            (net.slot_role == OUTPUT) & net.is_facility[net.slot_node] & main
        )
        # fixed for the run: the markets each edge exports from and imports into, the edges that
        # cross a border, the markets with sellers
        C = net.n_countries
        self._cross = np.flatnonzero(net.edge_from != net.edge_to)
        self._imp_m = net.edge_commodity * C + net.edge_to
        self._exp_cross = (net.edge_commodity * C + net.edge_from)[self._cross]
        self._imp_cross = self._imp_m[self._cross]
        self._has_sellers = np.bincount(self._slot_market[net.slot_role == OUTPUT], minlength=M) > 0
        self._demand_market = self._slot_market[net.consume_slot[model.demand_nodes]]
        self._capacity_market = self._slot_market[self._capacity_slots]
        self._capacity_coef = net.slot_coef[self._capacity_slots]
        self._capacity_node = net.slot_node[self._capacity_slots]
        self._recycled_market = self._slot_market[self._recycled_slots]

    def _by_market(self, per_slot: np.ndarray) -> np.ndarray:
        return np.bincount(self._slot_market, weights=per_slot, minlength=self._M)

    def open_step(self, s: State) -> None:
        self.data["stock_open"][s.t] = self._by_market(s.stock + s.in_transit)  # afloat: the buyer's

    def trade(self, s: State, res: Clearing, p_del: np.ndarray, shipped: origin.Shipments) -> None:
        """Record shipments with the origin mix they carry (called right after clearing;
        ``shipped``: the edges' flows with the origin tonnes they carry)."""
        t = s.t
        P = self.pair_keys.size
        self.pair_tonnes[t] = np.bincount(self.edge_pair, weights=res.flow, minlength=P)
        value = res.flow * p_del
        self.pair_value[t] = np.bincount(self.edge_pair, weights=value, minlength=P)
        if shipped.parts:  # block by block: the pairs' rows among all pairs that carried material
            per = shipped.by_part(self.edge_pair)
            received = np.concatenate([p[0] for p in per])
            at = np.empty(received.size, np.int64)
            at[np.argsort(received, kind="stable")] = np.arange(received.size)
            triples, start = [], 0
            for pairs, tonnes, columns, mix in per:
                mix /= tonnes[:, None]
                nz = np.flatnonzero(mix != 0)  # row-major, as np.nonzero (a bool scan is faster)
                r = nz // columns.size
                c = nz - r * columns.size
                triples.append((at[start + r], columns[c], mix.reshape(-1)[nz]))
                start += pairs.size
            rows, cols, values = (np.concatenate(x) for x in zip(*triples))
        else:
            _, tonnes, mix = shipped.by(self.edge_pair)
            nz = np.flatnonzero(mix != 0)  # row-major, as np.nonzero (a bool scan is faster)
            rows = nz // mix.shape[1]  # np.divmod costs 5 times more
            cols = nz - rows * mix.shape[1]
            values = mix.reshape(-1)[nz] / tonnes[rows]  # tonnes by origin -> shares
            if not values.all():  # a share too small for a float
                rows, cols, values = rows[values != 0], cols[values != 0], values[values != 0]
        self.pair_mix.append(self._keep_mix(rows, cols, values))
        M = self._M
        crossing = res.flow[self._cross]
        self.data["exports"][t] = np.bincount(self._exp_cross, weights=crossing, minlength=M)
        self.data["imports"][t] = np.bincount(self._imp_cross, weights=crossing, minlength=M)
        paid = np.bincount(self._imp_m, weights=value, minlength=M)
        got = np.bincount(self._imp_m, weights=res.flow, minlength=M)
        self.data["buyer_price"][t] = np.where(got > 0, paid / np.where(got > 0, got, 1.0), np.nan)

    def _keep_mix(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
        """A month's (row, origin column, share) triples as int32, int16 and float32 (the same
        values ``astype`` gives), copied into slices of a few large blocks of
        :data:`MIX_BLOCK` triples rather than three small arrays a month: a default run keeps
        ~2 M triples (~21 MB), and small arrays grow the heap page by page, each 4 KiB page
        faulted in on first write (~7,000 faults, ~10 ms of a fresh process's first run),
        while NumPy asks for huge pages for an allocation of 4 MiB or more. A block is freed
        when the last month it holds is dropped (:meth:`trade_cells` with ``take``)."""
        n = rows.size
        if self._mix_block is None or self._mix_at + n > self._mix_block[0].size:
            cap = max(MIX_BLOCK, -(-n // 4) * 4)
            raw = mapped_zeros(cap * 10)  # one allocation: int32, int16, float32 parts
            self._mix_block = (
                raw[: 4 * cap].view(np.int32),
                raw[4 * cap : 6 * cap].view(np.int16),
                raw[6 * cap :].view(np.float32),
            )
            self._mix_at = 0
        a, b = self._mix_at, self._mix_at + n
        r, c, v = (part[a:b] for part in self._mix_block)
        r[...] = rows
        c[...] = cols
        v[...] = values
        self._mix_at = b
        return r, c, v

    def close_step(
        self,
        s: State,
        production: np.ndarray,
        use: np.ndarray,
        consumed: np.ndarray,
        desired: np.ndarray,
        retired: np.ndarray,
    ) -> None:
        net, t, d = self.model.net, s.t, self.model.demand_nodes
        M, has_sellers = self._M, self._has_sellers
        seller_price = np.where(has_sellers, np.exp(s.log_p), np.nan)
        self.data["price"][t] = seller_price
        self.data["production"][t] = self._by_market(production)
        self.data["use"][t] = self._by_market(use)
        self.data["stock"][t] = self._by_market(s.stock + s.in_transit)
        dm = self._demand_market
        self.data["consumption"][t] = np.bincount(dm, weights=consumed, minlength=M)
        self.data["demand"][t] = np.bincount(dm, weights=desired, minlength=M)
        self.data["unmet_demand"][t] = self.data["demand"][t] - self.data["consumption"][t]
        self.data["in_use"][t] = np.bincount(dm, weights=s.in_use[d], minlength=M)
        self.data["scrap_retired"][t] = np.bincount(dm, weights=retired, minlength=M)
        # stocks valued at the holder's market price, or the commodity's mean seller price where
        # the holder's country has no sellers
        price = seller_price.reshape(net.n_commodities, -1)
        priced = ~np.isnan(price)
        count = priced.sum(axis=1, keepdims=True)
        mean = np.where(priced, price, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        value = np.where(priced, price, mean).reshape(-1)  # 0 where nobody sells the commodity
        rate = self.model.params.demand.carrying_cost_per_year / 12
        self.data["carrying_cost_usd"][t] = rate * self.data["stock"][t] * value
        self.activity[t] = s.activity
        self.data["capacity"][t] = np.bincount(
            self._capacity_market, weights=self._capacity_coef * s.capacity[self._capacity_node], minlength=M
        )
        self.data["recycled_production"][t] = np.bincount(
            self._recycled_market, weights=production[self._recycled_slots], minlength=M
        )
        # the mix of an input slot is unchanged by drawing on it, so at the close of the step it
        # is the mix of what was used this step
        u = use[self._use_slots]
        self.use_tonnes[t] = np.bincount(self._use_group, weights=u, minlength=self.use_keys.size)
        groups, _, mix = origin.group_mix(self._use_group, self._use_slots, u, s.mix)
        self.use_mix[t, groups] = mix
        self.node_desired[t] = desired
        self.node_consumed[t] = consumed

    # ------------------------------------------------------------------ checks and tables
    def mass_balance_errors(self) -> np.ndarray:
        """Relative error of open + production + imports = close + use + exports, per step × market.

        Independent records: stocks are summed from holders, production and use come from
        transformation and consumption, imports and exports from cleared edge flows.
        """
        d = self.data
        lhs = d["stock_open"] + d["production"] + d["imports"]
        rhs = d["stock"] + d["use"] + d["exports"]
        scale = np.maximum(np.maximum(lhs, rhs), 1e-9 * max(lhs.max(), 1.0))
        return np.abs(lhs - rhs) / scale

    def months(self) -> pd.DatetimeIndex:
        """The months recorded so far (built once per length: every table of a run asks)."""
        T = self.model.state.t
        cached = self.__dict__.get("_months")
        if cached is None or len(cached) != T:
            y, m = self.model.start
            cached = self._months = pd.date_range(f"{y}-{m:02d}-01", periods=T, freq="MS")
        return cached

    def timeseries(self) -> pd.DataFrame:
        """Tidy table: month, commodity, region, variable, value (regions = countries + WORLD).

        Built from integer codes; the categorical columns list the names that occur, sorted."""
        net = self.model.net
        T = self.model.state.t
        K, C = net.n_commodities, net.n_countries
        regions = [*net.countries, "WORLD"]
        variables = [v for v in self.data if v != "stock_open"]
        blocks = []  # (variable code, [T, K, R] values, region codes)
        for v, var in enumerate(variables):
            a = self.data[var][:T].reshape(T, K, C)
            blocks.append((v, a, np.arange(C)))
            if "price" not in var:
                blocks.append((v, a.sum(axis=2, keepdims=True), np.array([C])))
        blocks.append((variables.index("price"), self._world_price(T)[:, :, None], np.array([C])))
        month, com, reg, var, val = [], [], [], [], []
        keep_zero = {variables.index("price"), variables.index("buyer_price")}
        for v, a, region_codes in blocks:
            a = np.ascontiguousarray(a)
            flat = np.flatnonzero(~np.isnan(a) & ((a != 0) | (v in keep_zero)))  # as np.nonzero
            rest = flat // a.shape[2]  # // and a product: np.divmod costs several times more
            r = flat - rest * a.shape[2]
            t = rest // a.shape[1]
            k = rest - t * a.shape[1]
            month.append(t)
            com.append(k)
            reg.append(region_codes[r])
            var.append(np.full(t.size, v))
            val.append(a.reshape(-1)[flat])
        months = self.months()
        return pd.DataFrame(
            {
                "month": months[np.concatenate(month)],
                "commodity": _categorical(np.concatenate(com), net.commodities),
                "region": _categorical(np.concatenate(reg), regions),
                "variable": _categorical(np.concatenate(var), variables),
                "value": np.concatenate(val),
            }
        )

    def _world_price(self, T: int) -> np.ndarray:
        """Sales-weighted average seller price per commodity (production weights where no sales)."""
        net = self.model.net
        K, C = net.n_commodities, net.n_countries
        p = self.data["price"][:T].reshape(T, K, C)
        w = (self.data["production"][:T]).reshape(T, K, C)
        w = np.where(np.isnan(p), 0.0, w)
        has = np.where(np.isnan(p), 0.0, 1.0)
        w = np.where(w.sum(axis=2, keepdims=True) > 0, w, has)
        return np.nansum(np.nan_to_num(p) * w, axis=2) / np.maximum(w.sum(axis=2), 1e-300)

    def flows(self, consume: bool = False) -> pd.DataFrame:
        """Trade by month, commodity, origin and destination country, with the origin mix.
        ``consume``: free each month's origin shares once copied into the table, so that they
        and the table are not both held whole (~17 MiB of a default run, at the peak of its
        ``collect``); the recorder cannot build the table again."""
        return flows_table(self.trade_cells(take=consume))

    def trade_cells(self, take: bool = False) -> dict[str, Any]:
        """The arrays :meth:`flows` is built from, as plain arrays and names: per month and
        trade pair its ``tonnes`` and ``value`` (delivered USD), per pair its ``commodity``,
        ``origin`` and ``destination`` code, the table's ``rows`` ((month, pair) with tonnes >
        0, row-major), its origin ``columns`` (those with a share in some month, ascending) and
        ``mix``, the rows' shares in them (one float32 block [rows, columns], the table's own
        columns), per origin column its ``column_stage``, ``column_country`` and
        ``column_owner`` code, the ``months`` and the names the codes index. ``take``: each
        month's shares are freed once copied into the block (the recorder keeps none and cannot
        build the table again)."""
        if getattr(self, "_flows_consumed", False):
            raise RuntimeError("Recorder.flows: the origin shares were freed by flows(consume=True)")
        net = self.model.net
        T, C = self.model.state.t, net.n_countries
        com, rest = np.divmod(self.pair_keys, C * C)
        frm, to = np.divmod(rest, C)
        origins = self.model.origins
        carried = self.pair_tonnes[:T] > 0
        t_idx, p_idx = np.nonzero(carried)
        parts = self.pair_mix[:T]
        offset = np.r_[0, np.cumsum(np.count_nonzero(carried, axis=1))]
        present = np.zeros(origins.size, bool)  # columns are sorted by stage, country, owner
        for _, c, _ in parts:
            present[c] = True
        used = np.flatnonzero(present)
        col = np.cumsum(present) - 1
        # the origin mix is traced in float32 (a share, 7 significant digits), so the block is
        # float32; filled month by month: concatenating every month's triplets first doubled
        # the peak
        mix = np.zeros((t_idx.size, used.size), np.float32)
        flat = mix.reshape(-1)
        if take:
            self._mix_block = None  # each block is freed with the last month it holds
        for t in range(len(parts)):
            r, c, v = parts[t]
            flat[(r + offset[t]) * used.size + col[c]] = v
            if take:  # each block of shares is freed with the last month it holds
                parts[t] = self.pair_mix[t] = None  # type: ignore[call-overload]
                del r, c, v
        if take:
            self.pair_mix = []
            self._flows_consumed = True
        out: dict[str, Any] = {
            "months": self.months(),
            "tonnes": self.pair_tonnes[:T],
            "value": self.pair_value[:T],
            "commodity": com,
            "origin": frm,
            "destination": to,
            "rows": (t_idx, p_idx),
            "columns": used,
            "mix": mix,
            "column_stage": np.asarray(origins.stage),
            "column_country": np.asarray(origins.country),
            "column_owner": np.asarray(origins.owner),
            "commodities": list(net.commodities),
            "countries": list(net.countries),
            "stages": list(net.stages),
        }
        for a in [*out.values(), t_idx, p_idx]:
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        return out

    def consumption_origin(self) -> pd.DataFrame:
        """Origin of what each country uses (consumption scope), tidy.

        Columns: month, commodity, region (the using country), stage, origin, [owner,] tonnes —
        the tonnes of the commodity used that month (process inputs and final consumption) whose
        ``stage`` happened in ``origin``, in a plant owned from ``owner``. For a stage the
        material has passed, a (month, commodity, region, stage) group sums to the tonnes used;
        stages not yet passed have no rows. The ``owner`` column is there only when some plant's
        owner differs from its country (else owner = origin on every row, and the table is the
        same as before ownership was traced); a (..., stage, origin) group then sums over owners
        to the location view.
        """
        return consumption_origin_table(self.consumption_cells())

    def consumption_cells(self) -> dict[str, Any]:
        """The arrays :meth:`consumption_origin` is built from, as plain arrays and names (what
        the metrics read in place of its rows: the rows of one commodity and stage are a slice):
        ``tonnes`` [months, markets] used, ``mix`` [months, markets, origin columns] their origin
        shares (float32, as traced; views of the recorder's arrays, not to be changed), per
        market its ``commodity`` and ``region`` code, per origin column its ``stage``,
        ``origin`` and ``owner`` code, the ``months`` and the names the codes index. A table
        row is a cell with ``tonnes > 0`` and ``mix > 0``, in row-major (month, market, column)
        order, its tonnes ``tonnes[t, u] * mix[t, u, k]``."""
        net = self.model.net
        T, C = self.model.state.t, net.n_countries
        com, ctry = np.divmod(self.use_keys, C)
        origins = self.model.origins
        out = {
            "months": self.months(),
            "tonnes": self.use_tonnes[:T],
            "mix": self.use_mix[:T],
            "commodity": com,
            "region": ctry,
            "stage": np.asarray(origins.stage),
            "origin": np.asarray(origins.country),
            "owner": np.asarray(origins.owner),
            "commodities": list(net.commodities),
            "countries": list(net.countries),
            "stages": list(net.stages),
        }
        for a in out.values():
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        return out

    def final_demand(self) -> pd.DataFrame:
        """Final demand per country × end use × commodity and month: demand, consumption, unmet."""
        net, d = self.model.net, self.model.demand_nodes
        T = self.model.state.t
        months = self.months()
        n = d.size
        desired, consumed = self.node_desired[:T].reshape(-1), self.node_consumed[:T].reshape(-1)
        com = net.slot_commodity[net.consume_slot[d]]
        return pd.DataFrame(
            {
                "month": np.repeat(months, n),
                "commodity": pd.Categorical.from_codes(np.tile(com, T), net.commodities),
                "region": pd.Categorical.from_codes(np.tile(net.node_country[d], T), net.countries),
                "end_use": pd.Categorical.from_codes(np.tile(net.end_use[d], T), net.end_uses),
                "demand": desired,
                "consumption": consumed,
                "unmet_demand": desired - consumed,
            }
        )

    def facility_activity(self) -> pd.DataFrame:
        net = self.model.net
        T = self.model.state.t
        fac = np.flatnonzero(net.is_facility)
        return pd.DataFrame(
            self.activity[:T, fac], index=self.months(), columns=[net.node_id[i] for i in fac]
        )


OWNER_TAG = "_owner_"


def origin_column_name(stage: str, country: str, owner: str) -> str:
    """Name of an origin column in the flows table: ``{stage}_origin_{country}`` for a plant
    owned where it stands, ``{stage}_origin_{country}_owner_{OWNER}`` for a foreign-owned one
    (summing a (stage, country)'s columns gives the location view)."""
    return f"{stage}_origin_{country}" + (f"{OWNER_TAG}{owner}" if owner != country else "")


def flows_table(cells: dict[str, Any]) -> pd.DataFrame:
    """The flows table (:meth:`Recorder.flows`) of a run's trade cells
    (:meth:`Recorder.trade_cells`); its origin columns are the cells' block (not a copy)."""
    countries = cells["countries"]
    t_idx, p_idx = cells["rows"]
    front = {
        "month": cells["months"][t_idx],
        "commodity": pd.Categorical.from_codes(cells["commodity"][p_idx], cells["commodities"]),
        "origin": pd.Categorical.from_codes(cells["origin"][p_idx], countries),
        "destination": pd.Categorical.from_codes(cells["destination"][p_idx], countries),
        "tonnes": cells["tonnes"][t_idx, p_idx],
        "value_usd": cells["value"][t_idx, p_idx],
    }
    stages = cells["stages"]
    stage, country, owner = cells["column_stage"], cells["column_country"], cells["column_owner"]
    names = [
        origin_column_name(stages[stage[k]], countries[country[k]], countries[owner[k]])
        for k in cells["columns"]
    ]
    # the mix block stays the one array (a concat would copy it: 80 MB in the full world)
    table = pd.DataFrame(cells["mix"], columns=names, copy=False)
    for i, (column, values) in enumerate(front.items()):
        table.insert(i, column, values)
    return table


def consumption_origin_table(cells: dict[str, Any]) -> pd.DataFrame:
    """The consumption-origin table (:meth:`Recorder.consumption_origin`) of a run's cells
    (:meth:`Recorder.consumption_cells`): what a run's ``consumption_origin`` is built from when
    first read."""
    T = len(cells["months"])
    use_tonnes, use_mix = cells["tonnes"], cells["mix"]
    countries = cells["countries"]
    # the nonzero cells only (a dense months x markets x origins product was the largest
    # array of the table); float32 shares times float64 tonnes promote exactly
    used = use_tonnes[:T] > 0
    mix = use_mix[:T]
    # the cells' indices, row-major (np.nonzero of a 3-D mask costs twice the flat scan and
    # the divisions); each index array is the table's length: temporaries are freed as soon
    # as their column is built
    flat = np.flatnonzero((mix > 0) & used[:, :, None])
    U, K = mix.shape[1], mix.shape[2]
    tu = flat // K  # the (month, market) cell, row-major: two divisions in place of three
    k_idx = flat - tu * K
    t_idx = tu // U
    u_idx = tu - t_idx * U
    out = {
        "month": cells["months"][t_idx],
        "commodity": _from_codes(cells["commodity"], u_idx, cells["commodities"]),
        "region": _from_codes(cells["region"], u_idx, countries),
        "stage": _from_codes(cells["stage"], k_idx, cells["stages"]),
        "origin": _from_codes(cells["origin"], k_idx, countries),
    }
    if (cells["owner"] != cells["origin"]).any():  # some plant is foreign-owned
        out["owner"] = _from_codes(cells["owner"], k_idx, countries)
    # float32 shares times float64 tonnes promote exactly (in the multiplication: no float64
    # copy of the shares first); the cell's tonnes by its flat index
    out["tonnes"] = use_tonnes[:T].reshape(-1)[tu] * mix.reshape(-1)[flat]
    del t_idx, u_idx, k_idx, flat, tu
    return pd.DataFrame(out, copy=False)


def _from_codes(codes: np.ndarray, at: np.ndarray, names: list[str]) -> pd.Categorical:
    """``pd.Categorical.from_codes(codes[at], names)`` for codes known to be valid (built from
    the network's own indices): gathered already in the codes' type pandas keeps (int8 for fewer
    than 127 names), so pandas neither converts nor checks them (~1 ms each for a default run's
    300k-row consumption table)."""
    small = np.int8 if len(names) < 127 else np.int16 if len(names) < 32767 else np.int32
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= len(names)):
        raise ValueError(f"codes outside 0..{len(names) - 1}")
    return pd.Categorical.from_codes(codes.astype(small)[at], names, validate=False)


def _categorical(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """Categorical of ``names[codes]`` whose categories are the names that occur, sorted."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(names)))  # np.unique, without a sort
    order = sorted(range(used.size), key=lambda i: names[used[i]])
    remap = np.empty(len(names), np.int64)
    remap[used[order]] = np.arange(used.size)
    return pd.Categorical.from_codes(remap[codes], [names[used[i]] for i in order])
