"""Issue 15: the stated-policies 2024 mix the IEA outlook episodes run under.

``configs/policy/stated_policies_2024.yaml`` carries the rare-earth public finance and offtakes
committed by January 2024 (docs/mining_gap.md): Japan's JARE priority supply from Lynas Malaysia
(an offtake, which derisks LAMP's expansions) and Australia's Critical Minerals Facility and NAIF
(concessional finance for Australian mine and separation projects, Nolans among them). These tests
check that the mix loads, that the outlook episodes name it, and that its instruments reach the
projects they are meant for, by how much, and no others.
"""

from __future__ import annotations

import numpy as np
import pytest

from critmin.analysis import scorecard as sc
from critmin.sim import investment as inv
from critmin.sim.model import CritminModel
from critmin.sim.run import load_config

MIX = "policy=stated_policies_2024"
SHORT = ["scenario.end=2024-03", "scenario.demand.noise_sd=0"]


@pytest.fixture(scope="module")
def runs() -> tuple[CritminModel, CritminModel]:
    base = CritminModel(load_config(SHORT))
    base.run()
    mix = CritminModel(load_config([*SHORT, MIX]))
    mix.run()
    return base, mix


def test_the_outlook_episodes_run_under_the_stated_policies_mix():
    for ep in sc.load_episodes(names=["iea_outlook_2030", "iea_outlook_2035"]):
        assert MIX in ep.overrides
    (base,) = sc.load_episodes(names=["baseline_2024"])
    assert not any(o.startswith("policy=") for o in base.overrides)  # the 2024 fit has no mix
    cfg = load_config([MIX])
    kinds = sorted(i["type"] for i in cfg.policy.instruments)
    assert kinds == ["concessional_finance", "offtake"]


def test_an_episode_may_name_its_mix_but_not_its_scenario(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    header = "episode,label,scenario,shock,overrides,shift_months,shock_month,pre,source\n"
    facts = (sc.validation_dir() / "iea_outlook_2030.csv").read_text()
    (folder / "x.csv").write_text(facts)
    row = "x,l,full_2024,none,{},0,2024-01,2024-01..2024-12,s\n"
    (folder / "episodes.csv").write_text(header + row.format(MIX))
    (ep,) = sc.load_episodes(folder)
    assert ep.overrides == (MIX,)
    (folder / "episodes.csv").write_text(header + row.format("scenario=ree_2024"))
    with pytest.raises(sc.DataError, match="column overrides"):
        sc.load_episodes(folder)


def test_the_mix_reaches_nolans_and_lamp_and_no_other_project(runs):
    base, mix = runs
    p = mix.investment.pipeline
    node = np.asarray(mix.net.node_id, dtype=object)[p.node]
    country = np.asarray(mix.net.countries, dtype=object)[p.country]
    pi0, pi1 = base.investment.last_pi, mix.investment.last_pi
    # Australian mine and separation projects: 2 points off the cost of capital
    aus = (country == "AUS") & np.isin(p.stage, ["mine", "refining"]) & (p.kind == inv.KIND_NAMED)
    nolans = np.isin(p.ids, ["aus_nolans_mine", "aus_nolans_sep"])
    assert nolans.sum() == 2 and np.all(aus[nolans])
    live = aus & (pi0 > 0.2)
    assert live.sum() >= 3
    assert np.all(pi1[live] > 1.1 * pi0[live])  # measured: Nolans 0.66 -> 0.78 by 2030
    # LAMP's own expansions: the JARE offtake drops their 4-point risk premium, a larger lift
    lamp = node == "mys_lynas_lamp"
    assert lamp.sum() >= 1
    assert np.all(pi1[lamp] > 1.2 * pi0[lamp])  # measured: 0.88 -> 1.15-1.17
    assert np.all(pi1[lamp] / pi0[lamp] > np.max(pi1[live] / pi0[live]))
    # every other named project (the US, Europe, Africa, Brazil, Australia's magnets) unchanged
    others = (p.kind == inv.KIND_NAMED) & ~aus & ~lamp
    assert others.sum() >= 20
    np.testing.assert_allclose(pi1[others], pi0[others], rtol=0.05)


def test_japan_takes_its_priority_ndpr_from_lamp(runs):
    _, mix = runs
    (offtake,) = [p for p in mix.policies if p.label == "jare_lynas_priority_supply"]
    assert not offtake.take_or_pay  # a priority right, capped by Japan's requests
    delivered = np.asarray(offtake.delivered)
    assert delivered.size == 3
    assert np.all(delivered > 0) and np.all(delivered <= 600 + 1e-6)
