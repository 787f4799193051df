"""Where the tonnes go under a customs clearance (issue 15, diagnosis): on the REE licensing replay
(configs/shock/ree_licensing_2025.yaml, instrument cn_licensing_no18), a clearance after each
licence's grant (``clearance_days``, policies/export_controls.py: Clearance) loses no licensed
tonne. Every tonne granted has shipped on the licensed edges, waits at customs, or is a cap the
market did not use (the buyer asked less of that edge, or was served elsewhere); none is withdrawn
once granted or counted twice. What a clearance takes out of the Jan-Oct 2025 window is the goods
still at customs at its end, at the pace licences are granted then (above the 2024 month while the
backlog clears), and a smaller part the buyers withdraw: short of stock while their goods wait,
they re-source or cancel more of the applications that wait (the withdrawal counts the goods at
customs as missing, as the buyers' market requests do)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import open_dict

from critmin.policies.export_controls import DAYS_PER_MONTH
from critmin.sim.model import CritminModel
from critmin.sim.run import load_config

NAME = "cn_licensing_no18"  # China's magnet and alloy licences of 4 Apr 2025
RUN = ["scenario=ree_2024", "scenario.end=2025-10", "shock=ree_licensing_2025", "scenario.demand.noise_sd=0"]


def account(lo: float, hi: float) -> dict[str, np.ndarray]:
    """Run the replay to Oct 2025 with a ``lo..hi``-day clearance on the magnet licences (0..0 is
    bit for bit the replay without one: tests/test_licence_clearance.py) and record, per month from
    the control's start and per licensed edge: granted (decided) tonnes, the cap the market saw,
    what shipped, what waits at customs, and the applications filed and withdrawn."""
    cfg = load_config(RUN)
    with open_dict(cfg):
        for ins in cfg.shock.instruments:
            if ins["name"] == NAME:
                ins["clearance_days"] = {"min": lo, "max": hi}
    model = CritminModel(cfg)
    policy = next(p for p in model.policies if p.label == NAME)
    rec: dict[str, list] = {k: [] for k in ("granted", "cap", "flow", "held", "applied", "withdrawn")}
    release, market = policy.clearance.release, policy.market
    month: dict[str, np.ndarray] = {}

    def recorded_release(t, approved):
        month["granted"] = approved.copy()
        return release(t, approved)

    def recorded_market(m, request):
        before = policy.pending()
        effects = market(m, request)
        month["cap"] = effects.edge_caps[0][1].copy()
        filed = (1.0 - policy.free) if m.state.t == policy.first else 1.0
        month["applied"] = filed * policy.applied
        month["withdrawn"] = before + month["applied"] - month["granted"] - policy.pending()
        return effects

    policy.clearance.release, policy.market = recorded_release, recorded_market
    while model.running:
        month.clear()
        model.step()
        if month:
            month["flow"] = model.cleared.result.flow[policy.edges].copy()
            month["held"] = policy.clearance.held().copy()
            for key, value in month.items():
                rec[key].append(value)
    out = {k: np.array(v) for k, v in rec.items()}
    magnets = model.net.edge_commodity[policy.edges] == model.net.commodities.index("ndfeb_magnet")
    out["magnets"] = magnets
    out["month_2024"] = np.array(model.base_edge_flow[policy.edges][magnets].sum())
    return out


@pytest.fixture(scope="module")
def runs():
    return {"none": account(0, 0), "7-21": account(7, 21), "7-61": account(7, 61)}


@pytest.mark.parametrize("case", ["none", "7-21", "7-61"])
def test_customs_releases_every_granted_tonne_and_the_market_ships_all_but_a_sliver(runs, case):
    r = runs[case]
    # what customs released over the run: every grant but the goods still held at the end
    released = r["granted"].sum(axis=0) - r["held"][-1]
    # the start month's cap also holds its unlicensed days (1-3 Apr), the same with or without a
    # clearance; the rest of the caps the market saw is exactly what customs released
    first_release = r["granted"][0] - r["held"][0]
    unlicensed = r["cap"][0] - first_release
    assert unlicensed.min() > -1e-9
    none = runs["none"]
    np.testing.assert_allclose(unlicensed, none["cap"][0] - none["granted"][0], atol=1e-9)
    np.testing.assert_allclose(r["cap"].sum(axis=0) - unlicensed, released, atol=1e-9)
    # the market ships within its caps and leaves only a sliver of them (0.8-1.5% of grants:
    # buyers asked less of that edge than its cap, or the exporter's stock ran short), and a
    # clearance does not add to what it leaves
    lapsed = r["cap"] - r["flow"]
    assert lapsed.min() > -1e-9
    assert lapsed.sum() < 0.02 * r["granted"].sum()
    assert lapsed.sum() <= none["cap"].sum() - none["flow"].sum() + 1e-9


@pytest.mark.parametrize(("case", "mean_days"), [("7-21", 14.0), ("7-61", 34.0)])
def test_the_window_loses_the_goods_at_customs_and_some_withdrawn_applications(runs, case, mean_days):
    # China's magnet exports over the control's months to Oct 2025, against the replay without a
    # clearance, in 2024 months of its magnet exports
    none, r = runs["none"], runs[case]
    mag = r["magnets"]
    unit = float(r["month_2024"])
    drop = (r["flow"][:, mag].sum() - none["flow"][:, mag].sum()) / unit
    held = r["held"][-1, mag].sum() / unit
    granted = (r["granted"][:, mag].sum() - none["granted"][:, mag].sum()) / unit
    # the goods at customs at the end of October are the largest part: October's grants (1.15 /
    # 1.04 of the 2024 month, the backlog still clearing) times the mean clearance (14 / 34 days:
    # 0.46 / 1.12 months); measured, no noise: 0.53 / 1.09 of the drop of 0.63 / 1.53 months
    october = r["granted"][-1, mag].sum() / unit
    assert held == pytest.approx(october * mean_days / DAYS_PER_MONTH, rel=0.1)
    assert held > 0.65 * -drop
    # the rest: buyers short of stock while their goods wait at customs withdraw more of the
    # applications that wait than they would with the goods in hand (0.15 / 0.57 of a month more),
    # which new applications (0.07 / 0.11) only partly make up: 0.11 / 0.46 fewer granted
    withdrawn = (r["withdrawn"][:, mag].sum() - none["withdrawn"][:, mag].sum()) / unit
    assert withdrawn > 0.05
    assert granted < 0.0
    assert -granted < 0.5 * held
