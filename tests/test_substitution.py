"""Battery chemistry choice (agents/chemistry.py, ODD §7.10): cell makers move toward LFP when
nickel and cobalt are dear, toward sodium-ion storage cells when lithium passes its threshold,
with a lag; the battery end uses' material intensity per kWh follows. Natural vs synthetic
graphite anodes substitute through the one gr_anode market."""

import numpy as np
import pytest

from critmin.agents import chemistry
from critmin.sim.run import load_config, new_model


@pytest.fixture(scope="module")
def chem():
    return load_config().scenario.chemistry


def test_at_2024_prices_the_shares_and_intensities_stay_put(chem):
    np.testing.assert_allclose(chemistry.target_shares(chem, 1.0, 1.0, 1.0), chemistry.base_shares(chem))
    for value in chemistry.factors(chem, chemistry.base_shares(chem)).values():
        assert value == pytest.approx(1.0)


def test_dearer_nickel_and_cobalt_move_ev_cells_to_lfp(chem):
    s0 = chemistry.base_shares(chem)
    target = chemistry.target_shares(chem, 1.5, 1.5, 1.0)
    # +50% Ni and Co widen the NMC-LFP gap by 0.5 x (10.9 + 2.65) = 6.8 USD/kWh: log-odds +0.45
    assert target[chemistry.LFP_EV] == pytest.approx(0.59, abs=0.01)
    assert target[chemistry.LFP_STORAGE] > s0[chemistry.LFP_STORAGE]
    assert target[chemistry.NAION_STORAGE] == s0[chemistry.NAION_STORAGE]  # lithium unchanged
    f = chemistry.factors(chem, target)
    # nickel and cobalt per EV kWh fall together, by ~20%
    assert f[("ev", "ni")] == pytest.approx(f[("ev", "co")])
    assert 0.75 < f[("ev", "ni")] < 0.85
    # lithium per EV kWh moves the way LFP's lithium per kWh differs from NMC's, by a few %
    sign = np.sign(chem.lfp_li_usd_per_kwh - chem.nmc_li_usd_per_kwh)
    assert np.sign(f[("ev", "li")] - 1.0) == sign
    assert abs(f[("ev", "li")] - 1.0) < 0.05
    # cheaper nickel and cobalt do the opposite
    assert chemistry.target_shares(chem, 0.7, 0.7, 1.0)[chemistry.LFP_EV] < s0[chemistry.LFP_EV]


def test_lithium_above_its_threshold_brings_sodium_ion_into_storage(chem):
    s0 = chemistry.base_shares(chem)
    below = chemistry.target_shares(chem, 1.0, 1.0, 0.9 * chem.naion_threshold_price_ratio)
    assert below[chemistry.NAION_STORAGE] == s0[chemistry.NAION_STORAGE]
    mid = 0.5 * (chem.naion_threshold_price_ratio + chem.naion_full_price_ratio)
    target = chemistry.target_shares(chem, 1.0, 1.0, mid)
    expected = s0[2] + 0.5 * (chem.naion_max_share_storage - s0[2])
    assert target[chemistry.NAION_STORAGE] == pytest.approx(expected)
    f = chemistry.factors(chem, target)
    # storage cells' lithium and graphite fall with the sodium-ion share (hard-carbon anodes)
    assert f[("storage", "gr")] == pytest.approx((1 - expected) / (1 - s0[2]))
    assert f[("storage", "li")] < 0.8
    top = chemistry.target_shares(chem, 1.0, 1.0, 10 * chem.naion_full_price_ratio)
    assert top[chemistry.NAION_STORAGE] == pytest.approx(chem.naion_max_share_storage)


@pytest.fixture(scope="module")
def cobalt():
    return new_model(load_config(["scenario=cobalt_2024", "scenario.end=2024-03"]))


def test_a_chain_alone_takes_its_partners_at_base_year_prices(cobalt):
    # the cobalt world has no nickel or lithium markets: their indices stay at 1
    p = chemistry.price_indices(cobalt)
    assert p["ni"] == 1.0 and p["li"] == 1.0
    assert chemistry._battery_rows(cobalt.net, "co").size > 0


def test_the_shares_move_toward_the_target_with_a_lag(cobalt):
    net, s = cobalt.net, cobalt.state
    c = cobalt.params.chemistry
    saved = s.paid_lr.copy(), s.battery_shares.copy()
    try:
        slots = net.consume_slot[chemistry._battery_rows(net, "co")]
        s.paid_lr[slots] = 3.0 * s.paid0[slots]
        s.battery_shares = chemistry.base_shares(c)
        target = chemistry.target_shares(c, 1.0, 3.0, 1.0)
        gap = target - s.battery_shares
        chemistry.decide(cobalt)
        np.testing.assert_allclose(s.battery_shares - chemistry.base_shares(c), gap / c.adjust_months)
        for _ in range(int(c.adjust_months) - 1):
            chemistry.decide(cobalt)
        moved = (s.battery_shares - chemistry.base_shares(c))[chemistry.LFP_EV] / gap[chemistry.LFP_EV]
        assert moved == pytest.approx(1 - (1 - 1 / c.adjust_months) ** c.adjust_months)
        # cobalt-battery demand centres read the lower intensity, others do not
        rows = chemistry._battery_rows(net, "co")
        assert np.all(chemistry.intensity_factor(cobalt, rows) < 0.97)
        others = np.setdiff1d(np.flatnonzero(net.is_demand), rows)
        assert np.all(chemistry.intensity_factor(cobalt, others) == 1.0)
    finally:
        s.paid_lr, s.battery_shares = saved


def _battery_use(args: list[str], months: int) -> tuple[float, np.ndarray]:
    """Nickel the battery end use consumed in the last 12 of ``months``, and the shares then."""
    m = new_model(load_config(["scenario=nickel_2024", "scenario.demand.noise_sd=0", *args]))
    rows = chemistry._battery_rows(m.net, "ni")
    used = 0.0
    for t in range(months):
        m.step()
        if t >= months - 12:
            used += float(m.state.activity[rows].sum())
    return used, m.state.battery_shares.copy()


def test_in_a_run_dearer_nickel_cuts_battery_nickel_through_lfp():
    # twice the demand for nickel alloys and plating from Feb 2024 lifts the class-1 price; the
    # cell makers' move to LFP cuts battery nickel beyond what the generic thrifting does
    hot = (
        "+shock.events=[{type: demand_shock, factor: 2.0, end_use: ni_alloys_plating_other, start: 2024-02}]"
    )
    months = 36
    with_choice, shares = _battery_use([hot, "scenario.end=2026-12"], months)
    without, _ = _battery_use(
        [hot, "scenario.end=2026-12", "scenario.chemistry.choice_scale_usd_per_kwh=1000"], months
    )
    assert shares[chemistry.LFP_EV] > 0.49
    ratio = with_choice / without
    assert 0.9 < ratio < 0.97  # measured 0.94 (LFP 48% -> 53% of EV cells by Dec 2026)


def _anode_shares(args: list[str]) -> float:
    """Natural graphite's share of anode output in 2025."""
    m = new_model(
        load_config(["scenario=graphite_2024", "scenario.end=2025-12", "scenario.demand.noise_sd=0", *args])
    )
    net = m.net
    natural = np.array(["anode_natural" in n for n in net.node_id])
    synthetic = np.array(["anode_synthetic" in n for n in net.node_id])
    out = np.zeros(2)
    for t in range(24):
        m.step()
        if t >= 12:
            out += [m.state.activity[natural].sum(), m.state.activity[synthetic].sum()]
    return out[0] / out.sum()


def test_dear_flake_moves_anode_buyers_to_synthetic_graphite():
    # both anode processes sell the one gr_anode market: when China's flake mines lose half their
    # capacity, natural anodes cost more and buyers move to synthetic ones within their capacity
    # (measured: natural share of anode output 10.2% -> 5.8% in 2025); no separate choice rule
    base = _anode_shares([])
    cut = _anode_shares(
        [
            "+shock.events=[{type: facility_outage, facility: chn_gr_mine, capacity_factor: 0.5, start: 2024-02}]"
        ]
    )
    assert 0.08 < base < 0.13
    assert cut < 0.75 * base
