"""`critmin solve`'s search on a toy world whose optimum is known in closed form (no engine).

One instrument, a subsidy of ``level`` in [0, 100]: the highest checked share falls linearly,
``share = 0.9 − 0.006·level`` (0.9 without it), and it costs ``c·level`` USD a year from 2026 to
2035, paid by the members in equal parts. Below 60% needs level > 50, below 50% needs
level > 66.67, so the cheapest mixes cost PV(50) and PV(66.67) exactly; the solver (NSGA-II
screen, full check, export) must find each within 2%. A second, useless instrument (cost, no
effect) must be left out. The coalition splits the same bill over three members, so each pays a
third: the direction of the coalition result (coordination costs each member no more).
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from critmin.analysis import comparison
from critmin.analysis import solve as sv
from critmin.experiments import solve, solve_plan

SLOPE, D0, C = 0.006, 0.9, 1e8
YEARS = range(2024, 2036)


def toy_run(plan, mode, params, shock, seed):
    on = params["use.subsidy"]
    level = params["subsidy.level"] if on else 0.0
    share = D0 - SLOPE * level
    waste = params["waste.level"] if params["use.waste"] else 0.0
    members = plan.modes[mode]["members"]
    per_year = {y: (C * level + 1e7 * waste if y >= 2026 else 0.0) for y in YEARS}
    record = {
        "shock": shock,
        "seed": seed,
        "share": share,
        "binding": "ndfeb_magnet metal",
        "met": {t.name: share < t.threshold for t in plan.crit.targets},
        "fiscal": per_year,
        "members": {m: {y: v / len(members) for y, v in per_year.items()} for m in members},
        "unmet_pct": 0.0,
        "peak_ratio": 1.0 + 0.1 * seed,
    }
    return record, pd.DataFrame(columns=comparison.TIDY_COLUMNS)


def toy_settings(out, modes=("coalition",), budget=60):
    s, _ = solve_plan.load_settings("default")
    s = copy.deepcopy(s)
    s.update(
        name="toy",
        out=str(out),
        budget=budget,
        jobs=1,
        population=16,
        seeds=3,
        shocks=["none", "magnet_ban_demo"],
        pv_years=[2035, 2030],
        full_check={"candidates": 6, "margin": 0.02},
    )
    s["modes"] = {
        m: {"members": ["USA"] if m == "alone" else ["USA", "JPN", "DEU"], "payer": "USA"} for m in modes
    }
    s["instruments"] = [
        {
            "type": "price_floor",
            "name": "subsidy",
            "country": "$members",
            "commodity": "ndfeb_alloy",
            "floor_usd_per_t": 0,
        },
        {
            "type": "price_floor",
            "name": "waste",
            "country": "$members",
            "commodity": "ndfeb_magnet",
            "floor_usd_per_t": 0,
        },
    ]
    s["variables"] = [
        {"instrument": "subsidy", "key": "level", "range": [0, 100]},
        {"instrument": "waste", "key": "level", "range": [0, 100]},
    ]
    return s


def toy_plan(settings):
    plan = solve_plan.plan_from_settings(settings, "toy")
    plan.crit = sv.Criteria(
        targets=[comparison.Target("60%", 0.6, 2030), comparison.Target("50%", 0.5, 2030)],
        seed_share=plan.crit.seed_share,
        discount_rate=plan.crit.discount_rate,
        base_year=plan.crit.base_year,
        pv_years=plan.crit.pv_years,
    )
    plan.runner = toy_run
    return plan


def known_cost(level, plan):
    per_year = {y: (C * level if y >= 2026 else 0.0) for y in YEARS}
    return sv.present_value(per_year, plan.crit.discount_rate, plan.crit.base_year, plan.crit.pv_years[0])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    plan = toy_plan(toy_settings(out, modes=("alone", "coalition")))
    folder = solve.study_folder(plan, None)
    result = solve.solve(plan, folder)
    return plan, folder, result


def test_the_solver_finds_the_known_optimum_within_2_percent(toy):
    plan, folder, result = toy
    for threshold, level in ((0.6, (D0 - 0.6) / SLOPE), (0.5, (D0 - 0.5) / SLOPE)):
        best = next(b for b in result["best"] if b["threshold"] == threshold and b["mode"] == "coalition")
        assert best["found"], best
        optimum = known_cost(level, plan)
        found = best["pv_2035_usd"]
        assert optimum <= found <= 1.02 * optimum, (threshold, found / optimum)
        policy = yaml.safe_load((folder / "configs" / "policy" / f"{best['policy']}.yaml").read_text())
        assert [i["name"] for i in policy["instruments"]] == ["subsidy"]  # the useless one left out
        assert policy["name"] == best["policy"]


def test_coalition_costs_each_member_no_more_than_acting_alone(toy):
    _, folder, _ = toy
    table = pd.read_csv(folder / "coalition.csv")
    assert len(table) == 2
    # the same bill split over three members: a third, within the 2% of each search
    assert table["payer_ratio"].between(0.98 / 3, 1.02 / 3).all(), table
    assert (table["coalition_payer_cost_usd"] <= table["alone_payer_cost_usd"]).all()
    assert table["coalition_no_dearer"].all()
    curve = pd.read_csv(folder / "coalition_curve.csv").dropna(subset=["payer_ratio"])
    assert len(curve) and curve["coalition_no_dearer"].all()


def test_a_rerun_continues_the_study_and_a_changed_config_starts_a_new_one(toy, capsys):
    plan, folder, _ = toy
    again = toy_plan(toy_settings(plan.settings["out"], modes=("alone", "coalition")))
    assert again.folder() == folder  # same settings: same study
    changed = toy_settings(plan.settings["out"], modes=("alone", "coalition"))
    changed["seed_share"] = 1.0
    other = toy_plan(changed)
    assert other.folder() != folder
    with pytest.raises(solve_plan.DataError, match="other settings"):
        solve.study_folder(other, str(folder))
    new = solve.study_folder(other, None)
    assert new == other.folder()
    assert "starting a new study" in capsys.readouterr().err


def test_the_tpe_sampler_finds_it_too(tmp_path):
    s = toy_settings(tmp_path, modes=("coalition",), budget=30)
    s["sampler"] = "tpe"
    plan = toy_plan(s)
    result = solve.solve(plan, solve.study_folder(plan, None))
    best = next(b for b in result["best"] if b["threshold"] == 0.6)
    optimum = known_cost((D0 - 0.6) / SLOPE, plan)
    assert optimum <= best["pv_2035_usd"] <= 1.02 * optimum
