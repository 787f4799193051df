"""Battery cell makers' chemistry choice: LFP or nickel-based (NMC/NCA) cathodes for EV and
storage cells, and sodium-ion cells for storage (ODD §7.10).

One decision per month for the world (cell making is a world market, three-quarters of it in
China): the shares live in ``state.battery_shares`` (LFP in EV cells, LFP in storage cells,
sodium-ion in storage cells) and the manufacturers of the battery end uses read them as a
factor on their material intensity (:func:`intensity_factor`), 1 at the 2024 shares.

* LFP vs NMC: the target share is a logit in the cathode-material cost gap per kWh,
  ``logit(s*) = logit(s0) + (ΔC − ΔC0)/scale`` with ``ΔC = C_NMC − C_LFP``, the cost of the
  nickel, cobalt and lithium in an NMC kWh minus the lithium in an LFP kWh at the battery makers'
  long-run expected delivered prices (each a 2024 cost per kWh times the price index). The
  other cost differences (cell making, energy density) are in the 2024 share.
* Sodium-ion: its target share of storage cells rises linearly from the 2024 share when the
  lithium price index passes ``naion_threshold_price_ratio`` to ``naion_max_share_storage`` at
  ``naion_full_price_ratio`` (no lithium in the cell, and no graphite: hard-carbon anodes).
* The shares move toward their targets at ``1/adjust_months`` a month (platform and line
  changes take years).

Prices: each material's index is the battery end uses' long-run expected delivered price over
its 2024 level (``paid_lr/paid0``, weighted by 2024 demand). A chain that is not in the run
(``scenario=cobalt_2024`` has no nickel or lithium) keeps index 1, its base-year price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from critmin.sim.view import ModelView

LFP_EV, LFP_STORAGE, NAION_STORAGE = 0, 1, 2

# end use -> (segment, material) for the end uses whose intensity the chemistry sets;
# graphite in EV cells is the same per kWh in LFP and NMC cells (factor 1, not listed)
BATTERY_END_USES: dict[str, tuple[str, str]] = {
    "li_ev_batteries": ("ev", "li"),
    "li_ess": ("storage", "li"),
    "ni_batteries": ("ev", "ni"),
    "co_ev_batteries": ("ev", "co"),
    "gr_ess": ("storage", "gr"),
}
# what each material is bought as
MATERIAL_COMMODITY = {"li": "li_chemical", "ni": "ni_refined", "co": "co_refined"}


def base_shares(c: Any) -> np.ndarray:
    """The 2024 shares (LFP in EV, LFP in storage, sodium-ion in storage)."""
    return np.array([c.lfp_share_ev_2024, c.lfp_share_storage_2024, c.naion_share_storage_2024])


def _logit(p: float | np.ndarray) -> float | np.ndarray:
    return np.log(p) - np.log1p(-p)


def cost_gap(c: Any, ni: float, co: float, li: float) -> float:
    """Cathode-material cost of an NMC kWh minus an LFP kWh (USD/kWh) at price indices (1 = 2024)."""
    return (
        c.nmc_ni_usd_per_kwh * ni
        + c.nmc_co_usd_per_kwh * co
        + (c.nmc_li_usd_per_kwh - c.lfp_li_usd_per_kwh) * li
    )


def target_shares(c: Any, ni: float, co: float, li: float) -> np.ndarray:
    """Where the shares go at these price indices (1 = 2024): the shares of a world that kept
    these prices for good."""
    s0 = base_shares(c)
    shift = (cost_gap(c, ni, co, li) - cost_gap(c, 1.0, 1.0, 1.0)) / c.choice_scale_usd_per_kwh
    lfp = 1.0 / (1.0 + np.exp(-(_logit(s0[:2]) + shift)))
    span = max(c.naion_full_price_ratio - c.naion_threshold_price_ratio, 1e-9)  # equal: a step
    rise = np.clip((li - c.naion_threshold_price_ratio) / span, 0.0, 1.0)
    naion = s0[NAION_STORAGE] + rise * max(c.naion_max_share_storage - s0[NAION_STORAGE], 0.0)
    return np.array([lfp[0], lfp[1], naion])


def factors(c: Any, shares: np.ndarray) -> dict[tuple[str, str], float]:
    """Material intensity per kWh at ``shares`` relative to the 2024 shares, per (segment, material)."""
    s0 = base_shares(c)

    def li_per_kwh(lfp: float) -> float:
        return lfp * c.lfp_li_usd_per_kwh + (1.0 - lfp) * c.nmc_li_usd_per_kwh

    ev, ev0 = shares[LFP_EV], s0[LFP_EV]
    na, na0 = shares[NAION_STORAGE], s0[NAION_STORAGE]
    lithium_cells = (1.0 - na) / (1.0 - na0)
    return {
        ("ev", "ni"): (1.0 - ev) / (1.0 - ev0),
        ("ev", "co"): (1.0 - ev) / (1.0 - ev0),
        ("ev", "li"): li_per_kwh(ev) / li_per_kwh(ev0),
        ("storage", "li"): lithium_cells * li_per_kwh(shares[LFP_STORAGE]) / li_per_kwh(s0[LFP_STORAGE]),
        ("storage", "gr"): lithium_cells,
    }


def price_indices(model: ModelView) -> dict[str, float]:
    """Per material: the battery end uses' long-run expected delivered price over 2024
    (2024-demand weighted); 1 (the base-year price) for a material whose chain is not in the run."""
    net, s = model.net, model.state
    out = {}
    for material in MATERIAL_COMMODITY:
        rows = _battery_rows(net, material)
        if rows.size == 0:
            out[material] = 1.0
            continue
        slots = net.consume_slot[rows]
        w = net.demand0[rows]
        ratio = np.divide(s.paid_lr[slots], s.paid0[slots], out=np.ones(rows.size), where=s.paid0[slots] > 0)
        out[material] = float(np.average(ratio, weights=w)) if w.sum() > 0 else 1.0
    return out


_ROWS: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}


def _battery_rows(net: Any, material: str) -> np.ndarray:
    """Demand nodes of the battery end uses that buy ``material`` (as its battery commodity);
    fixed for a network, found once (a few networks kept per process, each held with its rows
    so that its id stays unique)."""
    hit = _ROWS.get((id(net), material))
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_ROWS) >= 24:
        _ROWS.pop(next(iter(_ROWS)))
    rows = _find_battery_rows(net, material)
    rows.flags.writeable = False
    _ROWS[(id(net), material)] = (net, rows)
    return rows


def _find_battery_rows(net: Any, material: str) -> np.ndarray:
    names = [e for e, (_, m) in BATTERY_END_USES.items() if m == material and e in net.end_uses]
    if not names:
        return np.zeros(0, dtype=np.int64)
    mask = net.is_demand & np.isin(net.end_use, [net.end_uses.index(e) for e in names])
    commodity = MATERIAL_COMMODITY.get(material)
    if commodity is not None:
        if commodity not in net.commodities:
            return np.zeros(0, dtype=np.int64)
        bought = net.slot_commodity[np.maximum(net.consume_slot, 0)]
        mask &= bought == net.commodities.index(commodity)
    return np.flatnonzero(mask)


def decide(model: ModelView) -> None:
    """One month of the cell makers' choice: the shares move toward their targets."""
    c, s = model.params.chemistry, model.state
    p = price_indices(model)
    target = target_shares(c, p["ni"], p["co"], p["li"])
    s.battery_shares = s.battery_shares + (target - s.battery_shares) / c.adjust_months


def intensity_factor(model: ModelView, nodes: np.ndarray) -> np.ndarray:
    """Per demand node: its material intensity per kWh at today's shares over 2024 (1 for end
    uses the chemistry does not touch)."""
    net = model.net
    f = factors(model.params.chemistry, model.state.battery_shares)
    out = np.ones(nodes.size)
    eu = net.end_use[nodes]
    for name, key in BATTERY_END_USES.items():
        if name in net.end_uses:
            out[eu == net.end_uses.index(name)] = f[key]
    return out
