"""The DoD–MP Materials price floor (configs/policy/us_dod_mp_2025.yaml) replayed.

The CfD pays floor − benchmark per covered tonne below the floor and takes back 30% of
benchmark − floor above it; the benchmark is China's NdPr oxide market; the covered tonnes are
Mountain Pass output sold or stockpiled. Checked in the government's ledger of a run, against
the published payment path (facts.md §2g) with the benchmark pinned to the published China
price, and in the `critmin compare` table.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from critmin.experiments import compare
from critmin.policies.price_floor import cfd_payment_per_t
from critmin.sim import physical
from critmin.sim.model import CritminModel
from critmin.sim.run import collect, config_dir, load_config
from critmin.sim.world import DataError

POLICY = yaml.safe_load((config_dir() / "policy" / "us_dod_mp_2025.yaml").read_text())
FLOOR = POLICY["instruments"][0]
BASE = ["scenario=ree_2024_short", "scenario.demand.noise_sd=0", "scenario.end=2024-12"]
# published payment path (facts.md §2g): China NdPr oxide price → DoD payment, USD/kg
PUBLISHED = [(63.0, 47.0), (88.0, 22.0), (93.0, 17.0)]  # Jul 2025, Aug 2025, Jan 2026 (91–95 → 15–19)


def run(instruments, end="2024-12", monkeypatch=None):
    cfg = load_config([*BASE[:-1], f"scenario.end={end}"])
    cfg.policy.name = "test"
    cfg.policy.instruments = [dict(i) for i in instruments]
    model = CritminModel(cfg)
    model.produced = []  # per month: production per slot, as the physical stage returns it
    if monkeypatch is not None:
        transform = physical.transform

        def recording(*args, **kw):
            out = transform(*args, **kw)
            model.produced.append(out[0].copy())
            return out

        monkeypatch.setattr(physical, "transform", recording)
    model.run()
    return model, collect(model, cfg)


def floor_from(month: str, **changes) -> dict:
    return {**copy.deepcopy(FLOOR), "start": month, **changes}


@pytest.fixture(scope="module")
def replay():
    with pytest.MonkeyPatch.context() as mp:
        return run([floor_from("2024-02")], monkeypatch=mp)


def test_ledger_pays_floor_minus_china_price_on_mountain_pass_output(replay):
    model, res = replay
    ledger = pd.DataFrame(model.governments["USA"].ledger, columns=["step", "item", "usd"])
    paid = ledger[ledger["item"] == FLOOR["name"]].set_index("step")["usd"]
    assert len(paid) == 11 and (paid > 0).all()  # Feb–Dec 2024, the China price is below $110/kg
    # the benchmark is China's price at clearing = the price recorded at the end of the month before
    china = res.series("price", "ndpr_oxide", "CHN").to_numpy()
    (slot,) = model.policies[0].slots  # Mountain Pass separation's NdPr oxide output
    output = np.array([p[slot] for p in model.produced])  # its production each month
    assert output.sum() < res.series("production", "ndpr_oxide", "USA").sum()  # a second US plant
    steps = paid.index.to_numpy()
    expected = (FLOOR["floor_usd_per_t"] - china[steps - 1]) * output[steps]
    np.testing.assert_allclose(paid.to_numpy(), expected, rtol=1e-6)


def test_output_stockpiled_is_covered_sold_only_is_not(replay):
    model, _ = replay
    produced = np.array([h["volume"] for h in model.policies[0].history])
    sold_model, _ = run([floor_from("2024-02", coverage="sold")])
    sold = np.array([h["volume"] for h in sold_model.policies[0].history])
    # each month's covered tonnes differ (stock moves) while the year's totals stay close
    assert np.abs(produced - sold).max() > 1e-6
    assert produced.sum() == pytest.approx(sold.sum(), rel=0.3)


def pinned(model, china_usd_per_kg: float):
    """The model as the instrument sees it, with China's NdPr price at clearing set to a value."""
    net = model.net
    market = net.market_index(
        np.array([net.commodities.index("ndpr_oxide")]), np.array([net.countries.index("CHN")])
    )
    log_p = model.cleared.log_p.copy()
    log_p[market] = np.log(china_usd_per_kg * 1000)
    view = SimpleNamespace(
        net=net,
        state=model.state,
        cleared=dataclasses.replace(model.cleared, log_p=log_p),
        slot_market=model.slot_market,
    )
    view.origins = model.origins
    return view


@pytest.mark.parametrize("china, published", PUBLISHED)
def test_per_kg_payment_matches_the_published_path_within_30pct(replay, china, published):
    model, _ = replay
    floor = model.policies[0]
    floor.on_step(model, model.state.t)  # opening stock = the current stock: covered = sold
    (payment,) = floor.after_clearing(pinned(model, china))
    h = floor.history[-1]
    assert h["volume"] > 0 and payment.usd == pytest.approx(h["usd_per_kg"] * h["volume"] * 1000)
    assert abs(h["usd_per_kg"] - published) <= 0.3 * published


def test_above_the_floor_the_producer_pays_30pct_of_the_upside(replay):
    model, _ = replay
    floor = model.policies[0]
    floor.on_step(model, model.state.t)
    (payment,) = floor.after_clearing(pinned(model, 130.0))
    assert payment.usd < 0  # the government receives
    assert floor.history[-1]["usd_per_kg"] == pytest.approx(-0.3 * 20.0)
    assert cfd_payment_per_t(110000, np.array([63000.0, 110000.0]), 0.3).tolist() == [47000.0, 0.0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"coverage": "shipped"}, "coverage: expected one of ['sold', 'produced']"),
        ({"benchmark_market": "XXX"}, "benchmark_market"),
        ({"upside_share": 1.5}, "upside_share"),
    ],
)
def test_bad_floor_terms_fail_before_the_run(change, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run([floor_from("2024-02", **change)])


def test_the_replay_fiscal_cost_appears_in_the_comparison_table(tmp_path: Path):
    out = tmp_path / "cmp"
    code = compare.main(
        [
            "--mixes",
            "none,us_dod_mp_2025",
            "--seeds",
            "1",
            "--jobs",
            "1",
            "--out",
            str(out),
            "scenario=ree_2024_short",
        ]
    )
    assert code == 0
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    summary = pd.read_csv(folder / "summary.csv")
    cost = summary.set_index("mix")["fiscal_bn_total"]
    assert cost["none"] == 0 and cost["us_dod_mp_2025"] > 0
    tidy = pd.read_parquet(folder / "comparison.parquet")
    items = tidy[(tidy["mix"] == "us_dod_mp_2025") & (tidy["metric"] == "fiscal_cost_by_instrument_usd")]
    assert FLOOR["name"] in set(items["detail"])
