"""Packaged policy mixes under packaged shocks: invariants and each instrument's own effect.

The default run keeps a covering set of (mix, shock) cases: every instrument type, every shock
file and both worlds the matrix uses appear at least once, and the cases pair instruments with
shocks on the same commodities where that is cheap (a magnet stockpile under magnet licensing,
an NdPr price floor under an NdPr export tax, an EU magnet import quota under Chinese export
quotas). The full matrix (every mix with every shock) is marked ``slow`` (``make test-slow``).

Each run checks more than mass balance: every instrument that was active is checked against
what it promises, from the run's own records (trade flows, prices, fiscal ledger) where they
show it, and from the instrument's monthly record where they do not:

==========================  ===============================================================
instrument                  what is checked
==========================  ===============================================================
export_ban, export_cap      covered trade is zero (or within the cap) while active
export_quota, import_quota  covered trade per period within the quota
export_licensing            no covered trade before the first approvals (the delay; with processing
                            days, the start month only its unlicensed days and early approvals)
export_tax, import_tariff   covered trade is priced at least (1 + rate) x the seller price
price_floor                 the treasury pays a non-negative gap, at most gap x sales, and
                            pays when the market is below the floor
offtake                     contracted tonnes never exceed the contract and are shipped
stockpile                   releases only while triggered, buys only while not
diversification_cap         no covered buyer above the cap from one origin
recycling_target            covered countries' collection rate rises toward the target
origin_certification        covered buyers receive no non-qualifying origin
==========================  ===============================================================

Permitting acceleration and concessional finance act on the project pipeline only; their
effects are tested in ``test_policies.py`` and ``test_investment.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from critmin.sim.model import CritminModel
from critmin.sim.run import config_dir, load_config

END = "2026-06"
PULL_FORWARD = "2025-07"  # default cases: instruments starting after this start here instead
END_OF = {"ree_2009": "2012-12"}
OTHER_CHAINS = {
    "gage_controls_2023",
    "graphite_controls_2023",
    "drc_cobalt_2025",
    "gage_us_ban_2026_lapse",
    "gage_us_ban_2026_extended",
}
# the world of a shock file's base years (ree_2024_short for 2024 and for files naming none)
WORLD_OF_YEAR = {2009: "ree_2009", 2025: "ree_2026"}


def _base_years(shock: str) -> list[int]:
    return (
        yaml.safe_load((Path(config_dir()) / "shock" / f"{shock}.yaml").read_text()).get("base_years") or []
    )


# timelines of late 2026 need a horizon that reaches their first months (the listing of Jul
# 2026, the November 2026 expiries)
LATE = {
    name
    for name in sorted(p.stem for p in (Path(config_dir()) / "shock").glob("*.yaml"))
    if 2025 in _base_years(name) or name.startswith("gage_us_ban_2026")
}
END_LATE = "2028-03"
REL = 1e-9


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


def world_for(shock: str) -> str:
    """Shocks on other chains run in the seven-chain world (the mixes name rare-earth commodities);
    a timeline written for another base year in its world (the 2010 quotas in the world of 2009,
    the 2025-26 timelines in the world of 2026)."""
    for year in _base_years(shock):
        if year in WORLD_OF_YEAR:
            return WORLD_OF_YEAR[year]
    return "full_2024" if shock in OTHER_CHAINS else "ree_2024_short"


def run_case(policy: str, shock: str, pull_forward: bool) -> tuple[CritminModel, Any]:
    world = world_for(shock)
    end = END_LATE if shock in LATE else END_OF.get(world, END)
    cfg = load_config([f"scenario={world}", f"policy={policy}", f"shock={shock}", f"scenario.end={end}"])
    if pull_forward:  # mixes start in 2027 in places: bring every instrument into the horizon
        for inst in cfg.policy.instruments:
            if "start" in inst and str(inst.start) > PULL_FORWARD:
                inst.start = PULL_FORWARD
    model = CritminModel(cfg)
    model.run()
    return model, cfg


# ---------------------------------------------------------------------- reading a finished run
class Run:
    """A finished model and the tables the checks read (built once, on first use)."""

    def __init__(self, model: CritminModel) -> None:
        self.model = model
        self.net = model.net
        self._flows: pd.DataFrame | None = None
        self._prices: pd.DataFrame | None = None

    @property
    def months(self) -> pd.DatetimeIndex:
        return self.model.recorder.months()

    @property
    def flows(self) -> pd.DataFrame:
        """Cross-border trade by month, commodity, origin and destination."""
        if self._flows is None:
            fl = self.model.recorder.flows()
            self._flows = fl[fl.origin != fl.destination]
        return self._flows

    def price(self, commodity: str, country: str) -> pd.Series:
        """Seller price of a market by month, as recorded at the close of the month."""
        if self._prices is None:
            ts = self.model.recorder.timeseries()
            self._prices = ts[ts.variable == "price"]
        p = self._prices
        sel = p[(p.commodity == commodity) & (p.region == country)]
        return sel.set_index("month")["value"].reindex(self.months)

    def countries(self, value: Any, default: Any = None) -> list[str]:
        """Country codes named by a config value: codes and/or bloc names (g7, partner, other)."""
        if value is None:
            value = default if default is not None else list(self.net.countries)
        names = [value] if isinstance(value, str) else list(value)
        out = []
        for c, bloc in zip(self.net.countries, self.net.blocs, strict=True):
            if c in names or bloc in names:
                out.append(c)
        return out

    def window(self, inst: dict) -> np.ndarray:
        """Per recorded month: whether the instrument or event was active."""
        m = self.months
        on = np.ones(m.size, bool)
        if inst.get("start") is not None:
            on &= m >= pd.Timestamp(str(inst["start"]))
        if inst.get("end") is not None:
            on &= m < pd.Timestamp(str(inst["end"]))
        return on

    def trade(self, commodities: Any, origins: list[str], destinations: list[str]) -> pd.DataFrame:
        commodities = [commodities] if isinstance(commodities, str) else list(commodities)
        fl = self.flows
        sel = fl.commodity.isin(commodities) & fl.origin.isin(origins) & fl.destination.isin(destinations)
        return fl[sel]

    def monthly(self, trade: pd.DataFrame) -> pd.Series:
        return trade.groupby("month")["tonnes"].sum().reindex(self.months, fill_value=0.0)

    def base_trade(self, commodities: Any, origins: list[str], destinations: list[str]) -> float:
        """2024 monthly trade on the covered cross-border edges (what quotas are shares of)."""
        net = self.net
        commodities = [commodities] if isinstance(commodities, str) else list(commodities)
        k = [net.commodities.index(c) for c in commodities]
        o = [net.countries.index(c) for c in origins]
        d = [net.countries.index(c) for c in destinations]
        e = (
            np.isin(net.edge_commodity, k)
            & np.isin(net.edge_from, o)
            & np.isin(net.edge_to, d)
            & (net.edge_from != net.edge_to)
        )
        return float(self.model.base_edge_flow[e].sum())

    def ledger(self, country: str, item: str) -> pd.Series:
        """The government's fiscal ledger for one item, USD per recorded month (+ spent)."""
        out = np.zeros(self.months.size)
        for step, name, usd in self.model.governments[country].ledger:
            if name == item:
                out[step] += usd
        return pd.Series(out, index=self.months)


def _label(inst: dict) -> str:
    return str(inst.get("name", inst["type"]))


# ---------------------------------------------------------------------- one check per instrument
def check_ban(run: Run, inst: dict, policy: Any) -> None:
    if inst.get("buyers"):
        check_listed_buyers(run, inst, policy)
        return
    exporters = run.countries(inst["country"])
    trade = run.monthly(run.trade(inst["commodity"], exporters, run.countries(inst.get("destinations"))))
    on = run.window(inst)
    cap = float(inst.get("max_tonnes_per_month", 0.0))
    # grey flows (transit via third countries) pass in months with a grey share: at most that
    # share of what buyers would ask, here bounded by three times the 2024 trade; a ban given as
    # a scenario event (policy None) has no grey share
    grey = np.array([policy.grey_share(t) if policy is not None else 0.0 for t in range(run.months.size)])
    base = run.base_trade(inst["commodity"], exporters, run.countries(inst.get("destinations")))
    limit = cap + 3.0 * grey * base
    assert (trade[on] <= limit[on] * (1 + REL)).all(), trade[on][trade[on] > limit[on] * (1 + REL)]


def check_listed_buyers(run: Run, inst: dict, policy: Any) -> None:
    """A ban on listed buyers (an entity list) closes only the edges into their plants; once it
    has run a year, the input stocks they use hold almost nothing of the exporter's making (the
    stage of each covered commodity; the recorder keeps trade by country pair, not by buyer). A
    stock its plant no longer uses keeps what it held before the ban: with the fitted licence
    withdrawal (0.228) the listed metal makers in ree_controls_2026_lapse stand idle with ~0.7 t
    of Dy/Tb oxide, ~6% of it separated in China before the ban, unchanged from Apr 2027 on."""
    net, model = run.net, run.model
    nodes = [net.node_id.index(b) for b in inst["buyers"]]
    assert policy.edges.size and np.isin(net.slot_node[net.edge_buyer[policy.edges]], nodes).all()
    if not run.window(inst)[-12:].all():
        return
    exporter = net.countries.index(inst["country"])
    commodities = [inst["commodity"]] if isinstance(inst["commodity"], str) else inst["commodity"]
    for name in commodities:
        k = net.commodities.index(name)
        stage = net.stages.index(net.commodity_stage[k]) if net.commodity_stage[k] in net.stages else -1
        slots = policy.edges[net.edge_commodity[policy.edges] == k]
        slots = np.unique(net.edge_buyer[slots])
        slots = slots[model.last_use[slots] > 0]  # idle plants' stocks do not turn over
        stock = model.state.stock[slots]
        if stage < 0 or stock.sum() <= 0:
            continue
        share = model.origins.stage_share(model.state.mix[slots], stage)[:, exporter]
        assert (share * stock).sum() / stock.sum() < 0.05, (name, share)


def check_quota(run: Run, inst: dict, policy: Any) -> None:
    home = run.countries(inst["country"])
    partners = run.countries(inst.get("partners"))
    origins, dests = (home, partners) if inst["type"] == "export_quota" else (partners, home)
    trade = run.monthly(run.trade(inst["commodity"], origins, dests))
    yearly = inst.get("period", "year") == "year"
    if "tonnes_per_period" in inst:
        size = float(inst["tonnes_per_period"])
    else:
        size = (
            inst["share_of_baseline"]
            * run.base_trade(inst["commodity"], origins, dests)
            * (12 if yearly else 1)
        )
    on = run.window(inst)
    periods = trade[on].groupby(trade.index[on].year if yearly else trade.index[on]).sum()
    assert (periods <= size * (1 + REL) + 1e-9).all(), (periods, size)


def check_licensing(run: Run, inst: dict, policy: Any) -> None:
    if inst.get("sellers"):  # only the listed plants' sales are licensed (tests/test_control_coverage.py)
        net = run.net
        listed = [net.node_id.index(f) for f in inst["sellers"]]
        assert policy.edges.size > 0 and np.isin(net.slot_node[net.edge_seller[policy.edges]], listed).all()
        return
    exporters = run.countries(inst["country"])
    trade = run.monthly(run.trade(inst["commodity"], exporters, run.countries(inst.get("destinations"))))
    on = run.window(inst)
    if "covered_share" in inst:  # part of the trade ships unlicensed (tests/test_licence_timing.py)
        covered = inst["covered_share"]
        least = min(float(c["share"]) for c in covered) if isinstance(covered, list) else float(covered)
        dests = run.countries(inst.get("destinations"))
        base = run.base_trade(inst["commodity"], exporters, dests)
        start = np.flatnonzero(on)[0]
        # the start month: the uncovered part, and of the covered part the days before the control
        # day and what is approved within it (buyers short of stock ask up to twice a normal month)
        licensed = policy.free + (1.0 - policy.free) * policy.kernels[0][0]
        share = (1.0 - least) + least * licensed
        assert trade.iloc[start] <= 2.0 * share * base + 1e-9, (trade.iloc[start], share, base)
        # months wholly before the shortest processing time carry only the uncovered part
        first_approval = int(np.flatnonzero(policy.kernels[0] > 0)[0])
        between = np.flatnonzero(on)[1:first_approval]
        assert (trade.iloc[between] <= 2.0 * (1.0 - least) * base + 1e-9).all(), trade.iloc[between]
        return
    if "processing_days" in inst:  # at the resolution of days (policies/export_controls.py)
        start = np.flatnonzero(on)[0]
        dests = run.countries(inst.get("destinations"))
        base = run.base_trade(inst["commodity"], exporters, dests)
        # the start month: the days before the control day, plus what is approved within it
        share = policy.free + (1.0 - policy.free) * policy.kernels[0][0]
        assert trade.iloc[start] <= 2.0 * share * base + 1e-9, (trade.iloc[start], share, base)
        # months wholly before the shortest processing time carry nothing
        first_approval = int(np.flatnonzero(policy.kernels[0] > 0)[0])
        between = np.flatnonzero(on)[1:first_approval]
        assert (trade.iloc[between] == 0.0).all(), trade.iloc[between]
        return
    delay = inst.get("delay_months", 2)  # a number, or a distribution of processing times
    shortest = min(d["months"] for d in delay) if isinstance(delay, list) else delay
    first = np.flatnonzero(on)[: int(shortest)]
    assert (trade.iloc[first] == 0.0).all(), trade.iloc[first]  # nothing approved before the delay


def check_wedge(run: Run, inst: dict, policy: Any) -> None:
    """Covered trade pays at least (1 + rate) x the seller's price of the month it cleared at
    (prices move after clearing, so that is the price recorded at the close of the month before)."""
    home = run.countries(inst["country"])
    partners = run.countries(inst.get("partners"))
    origins, dests = (home, partners) if inst["type"] == "export_tax" else (partners, home)
    rate = float(inst.get("ad_valorem", 0.0))
    trade = run.trade(inst["commodity"], origins, dests)
    on = pd.Series(run.window(inst), index=run.months)
    trade = trade[trade.month.map(on).astype(bool) & (trade.month > run.months[0])]
    for (commodity, origin), rows in trade.groupby(["commodity", "origin"], observed=True):
        before = run.price(commodity, origin).shift(1).reindex(rows.month).to_numpy()
        unit = (rows.value_usd / rows.tonnes).to_numpy()
        assert (unit >= (1 + rate) * before * (1 - REL)).all(), (commodity, origin)


def check_price_floor(run: Run, inst: dict, policy: Any) -> None:
    if not isinstance(inst["country"], str):  # a bloc's joint floor: each payer on its own producers
        for payer in policy.payers:
            check_price_floor(run, {**inst, "country": payer}, policy)
        return
    country = inst["country"]
    paid = run.ledger(country, _label(inst))
    on = run.window(inst)
    # the gap is measured against the benchmark market (default: the producers' own)
    price = run.price(inst["commodity"], inst.get("benchmark_market", country)).shift(1)
    price.iloc[0] = run.net.price0[run.net.commodities.index(inst["commodity"])]
    floor, share = inst["floor_usd_per_t"], inst.get("upside_share", 0.0)
    per_t = np.where(price < floor, floor - price, -share * (price - floor))
    if inst.get("coverage", "sold") == "produced":  # output sold or stockpiled
        ts = run.model.recorder.timeseries()
        sel = ts[(ts.variable == "production") & (ts.commodity == inst["commodity"]) & (ts.region == country)]
        volume = sel.set_index("month")["value"].reindex(run.months, fill_value=0.0)
    else:
        fl = run.model.recorder.flows()  # sales at home count too
        volume = run.monthly(fl[(fl.commodity == inst["commodity"]) & (fl.origin == country)])
    bound = per_t * volume.to_numpy()  # the country's whole volume bounds the covered plants'
    assert (paid[~on] == 0).all()
    lo, hi = np.minimum(bound, 0.0), np.maximum(bound, 0.0)
    assert (paid[on] >= lo[on] * (1 + 1e-6) - 1e-6).all() and (paid[on] <= hi[on] * (1 + 1e-6) + 1e-6).all()
    if (per_t[on] > 0).any() and volume[on].sum() > 0:
        assert paid[on].sum() > 0  # below the floor, the treasury pays


def check_offtake(run: Run, inst: dict, policy: Any) -> None:
    delivered = np.asarray(policy.delivered)
    assert (delivered <= inst["tonnes_per_month"] * (1 + REL)).all()
    if delivered.size:
        names = [inst["producers"]] if isinstance(inst["producers"], str) else list(inst["producers"])
        origins = sorted({run.net.countries[run.net.node_country[run.net.node_id.index(n)]] for n in names})
        fl = run.model.recorder.flows()  # contracts ship on the trade pairs, domestic ones included
        sel = fl[(fl.commodity == inst["commodity"]) & fl.origin.isin(origins)]
        shipped = run.monthly(sel[sel.destination.isin(run.countries(inst["buyers"]))])
        on = run.window(inst)
        assert (shipped[on].to_numpy() >= delivered * (1 - 1e-6)).all()


def check_stockpile(run: Run, inst: dict, policy: Any) -> None:
    for month in policy.log:
        if month["released"] > 0:
            assert month["releasing"] == 1.0  # releases only while triggered
        if month["bought"] > 0:
            assert month["releasing"] == 0.0  # buys only while not
        assert month["stock"] >= 0


def check_diversification(run: Run, inst: dict, policy: Any) -> None:
    assert max(policy.worst, default=0.0) <= inst["max_share"] + REL


def check_recycling(run: Run, inst: dict, policy: Any) -> None:
    if not run.window(inst).any():
        return
    rate = run.model.collection[policy.nodes]
    target = float(inst.get("collection_rate", 0.0))
    base = policy.base_rate
    assert (rate >= base - REL).all() and (rate <= np.maximum(base, target) + REL).all()
    assert (rate[base < target] > base[base < target]).all()  # raised toward the target


def check_certification(run: Run, inst: dict, policy: Any) -> None:
    qualifying = set(run.countries(inst["qualifying"]))
    fl = run.model.recorder.flows()  # domestic supply must qualify too
    on = pd.Series(run.window(inst), index=run.months)
    into = fl[
        (fl.commodity == inst["commodity"])
        & fl.destination.isin(run.countries(inst["buyers"]))
        & fl.month.map(on).astype(bool)
    ]
    stage = inst.get("stage")
    bad = [c for c in into.columns if c.startswith(f"{stage}_origin_") and c.split("_")[-1] not in qualifying]
    assert (into[bad].fillna(0).to_numpy() == 0).all()


def check_production_quota(run: Run, inst: dict, policy: Any) -> None:
    """The covered output per period stays within the quota (tonnes, or a share of the covered
    plants' base-year output: the data's, not the instrument's own arithmetic). The quota caps
    activity, so capacity coming online later in the month (investment runs after the
    instruments in CritminModel.step) cannot lift output past it (it did by 0.7% of the year in
    ree_2009, 2010, when the quota was a share of capacity)."""
    countries = run.countries(inst["country"])
    ts = run.model.recorder.timeseries()
    sel = ts[(ts.variable == "production") & (ts.commodity == inst["commodity"]) & ts.region.isin(countries)]
    made = sel.groupby("month", observed=True)["value"].sum().reindex(run.months, fill_value=0.0)
    yearly = inst.get("period", "year") == "year"
    if "tonnes_per_period" in inst:
        size = float(inst["tonnes_per_period"])
    else:
        world = run.model.world
        procs = world.processes[
            (world.processes.role == "output") & (world.processes.commodity == inst["commodity"])
        ]
        fac = world.facilities[
            world.facilities.country.isin(countries) & world.facilities.process.isin(procs.process)
        ]
        base = (fac.output_base_tpa * fac.process.map(procs.set_index("process").coefficient)).sum()
        size = inst["share_of_baseline"] * base * (1 if yearly else 1 / 12)
    on = run.window(inst)
    periods = made[on].groupby(made.index[on].year if yearly else made.index[on]).sum()
    assert (periods <= size * (1 + 1e-9)).all(), (periods, size)


def check_none(run: Run, inst: dict, policy: Any) -> None:
    """Instruments that act only on the project pipeline (tested in test_investment.py)."""


def check_outage(run: Run, inst: dict, policy: Any) -> None:
    """A facility outage holds the plant at its capacity factor while it lasts (the last month)."""
    node = run.net.node_id.index(inst["facility"])
    if run.window(inst)[-1]:
        assert run.model.state.capacity_factor[node] <= inst.get("capacity_factor", 0.0) + 1e-12


CHECKS: dict[str, Callable[[Run, dict, Any], None]] = {
    "facility_outage": check_outage,
    "export_ban": check_ban,
    "export_cap": check_ban,
    "export_quota": check_quota,
    "production_quota": check_production_quota,
    "import_quota": check_quota,
    "export_licensing": check_licensing,
    "export_tax": check_wedge,
    "import_tariff": check_wedge,
    "price_floor": check_price_floor,
    "offtake": check_offtake,
    "stockpile": check_stockpile,
    "diversification_cap": check_diversification,
    "recycling_target": check_recycling,
    "origin_certification": check_certification,
    "permitting_acceleration": check_none,
    "concessional_finance": check_none,
}


def check_run(model: CritminModel, cfg: Any) -> list[str]:
    """Invariants, then every configured instrument and event against its promise; returns the
    types checked."""
    assert model.recorder.mass_balance_errors().max() <= 1e-9
    s = model.state
    assert (s.stock >= 0).all() and np.isfinite(np.exp(s.log_p)).all() and (s.log_p > -700).all()
    assert (model.recorder.pair_tonnes >= 0).all()
    run = Run(model)
    instruments = [*cfg.policy.instruments, *cfg.shock.instruments]
    assert len(instruments) == len(model.policies)
    for inst, policy in zip(instruments, model.policies, strict=True):
        CHECKS[inst.type](run, OmegaConf.to_container(inst), policy)
    for ev in [*cfg.scenario.events, *cfg.shock.events]:
        if ev.type in CHECKS:
            CHECKS[ev.type](run, OmegaConf.to_container(ev), None)
    return [i.type for i in instruments]


# ---------------------------------------------------------------------- the cases
# (mix, shock): every mix and every shock at least once (so every instrument type), both worlds;
# where a mix and a shock act on the same commodity, they are paired
COVERING = [
    ("alliance_all", "refiner_cut"),  # 9 instrument types; magnet stockpile under a magnet cut
    ("stockpile", "ree_licensing_2025"),  # JOGMEC releases under 2025 licensing
    ("price_floor", "ree_export_tax_2008"),  # US NdPr floor while China taxes NdPr exports
    ("import_quota", "ree_quotas_2010_on_2024"),  # EU magnet import quota under Chinese export quotas
    ("tariff", "magnet_ban_demo"),  # US tariff on Chinese magnets, then a ban on them
    ("stockpile_joint", "magnet_ban_demo"),  # the G7+ stockpile releases during the ban
    ("alliance_stockpile_diversification", "ree_licensing_2025"),
    ("alliance_offtake_floor", "ree_licensing_2025"),  # NdPr offtake under 2025 licensing
    (
        "alliance_midstream",
        "ree_licensing_2025",
    ),  # RE-metal floor and offtake under licensing of its Dy/Tb part
    ("alliance_all_midstream", "refiner_cut"),  # the whole package with the midstream
    ("us_dod_mp_2025", "ree_licensing_2025"),  # the DoD–MP floor and 10X offtake under 2025 licensing
    ("certification", "ree_quotas_2010_on_2024"),  # certified NdPr under Chinese NdPr quotas
    ("none", "ree_quotas_2010"),  # the 2009-2015 controls on real dates: quotas, taxes, halt, mining quotas
    ("permitting_finance", "refiner_cut"),
    ("stated_policies_2024", "refiner_cut"),  # the Japan-Lynas offtake and Australian finance of Jan 2024
    ("none", "ree_export_tax_2008"),  # the shock's own wedge, no policy
    ("offtake", "none"),
    ("diversification", "gage_controls_2023"),  # seven-chain world
    ("recycling", "graphite_controls_2023"),
    ("scrap_export_ban", "drc_cobalt_2025"),
    # the 2025-26 timelines (ree_2026 world; the US Ga/Ge ban in the seven-chain world)
    ("us_dod_mp_2025", "ree_entity_list_2026_stays"),  # the DoD floor on MP while MP is listed
    ("none", "ree_entity_list_2026_lifted"),
    ("stockpile_joint", "ree_customer_licences_2026_lapse"),  # G7+ releases in the licence gap
    ("none", "ree_customer_licences_2026_extended"),
    ("none", "ree_oct2025_package_lapse"),
    ("none", "ree_oct2025_package_extended"),
    ("stockpile", "ree_controls_2026_lapse"),  # JOGMEC releases when every control bites
    ("none", "ree_controls_2026_extended"),
    ("diversification", "gage_us_ban_2026_lapse"),
    ("none", "gage_us_ban_2026_extended"),
]


def test_covering_set_covers_every_instrument_shock_and_world():
    def types(group: str, name: str) -> set[str]:
        node = OmegaConf.load(Path(config_dir()) / group / f"{name}.yaml")
        return {i["type"] for i in node.get("instruments", []) + node.get("events", [])}

    every_type = set().union(*(types("policy", p) for p in _names("policy")))
    every_type |= set().union(*(types("shock", s) for s in _names("shock")))
    covered = set().union(*(types("policy", p) | types("shock", s) for p, s in COVERING))
    assert covered == every_type
    assert every_type <= set(CHECKS)  # every instrument type has a check
    assert {s for _, s in COVERING} == set(_names("shock"))
    assert {p for p, _ in COVERING} == set(_names("policy"))
    assert {world_for(s) for _, s in COVERING} == {world_for(s) for s in _names("shock")}


@pytest.mark.parametrize("policy, shock", COVERING, ids=[f"{p}-{s}" for p, s in COVERING])
def test_mix_under_shock_keeps_invariants_and_each_instrument_does_what_it_promises(policy, shock):
    model, cfg = run_case(policy, shock, pull_forward=True)
    check_run(model, cfg)


@pytest.mark.slow
@pytest.mark.parametrize("shock", _names("shock"))
@pytest.mark.parametrize("policy", _names("policy"))
def test_every_mix_runs_with_every_shock(policy, shock):
    if world_for(shock) == "ree_2009" and policy != "none":
        pytest.skip(
            "the mixes are the 2024 world's (named plants, starts from 2025); the 2009 world runs without one"
        )
    model, cfg = run_case(policy, shock, pull_forward=False)
    check_run(model, cfg)


def test_every_instrument_active_at_once_keeps_invariants_and_promises():
    cfg = load_config(
        ["scenario=ree_2024_short", "policy=alliance_all", "shock=ree_licensing_2025", "scenario.end=2026-12"]
    )
    cfg.scenario.demand.noise_sd = 0
    for inst in cfg.policy.instruments:  # bring every start date into the horizon
        if "start" in inst:
            inst.start = "2024-06"
    model = CritminModel(cfg)
    model.run()
    assert (
        len(set(check_run(model, cfg))) == 11
    )  # nine types in the mix, licensing and the production quota in the shock
