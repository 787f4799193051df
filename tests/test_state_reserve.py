"""A restricting country's state reserve buying at home (China's ~100 t germanium purchase of
2024, facts.md §2b/§3.8, in configs/shock/gage_controls_2023.yaml) lifts the inside price that
export licensing alone depresses, and the reserve ends holding what it was sized to hold."""

import pytest
from omegaconf import open_dict

import critmin
from critmin.sim.run import load_config

GAGE = ["scenario=gallium_2024", "scenario.data=[gallium,germanium]", "shock=gage_controls_2023"]


def _run(with_reserve: bool) -> critmin.Result:
    cfg = load_config([*GAGE, "scenario.end=2025-12"])
    if not with_reserve:
        with open_dict(cfg):
            cfg.shock.instruments = [i for i in cfg.shock.instruments if i.type != "stockpile"]
    return critmin.simulate(cfg, keep_model=True)


@pytest.fixture(scope="module")
def runs() -> dict[bool, critmin.Result]:
    return {flag: _run(flag) for flag in (True, False)}


def _value(result: critmin.Result, variable: str, region: str, month: str) -> float:
    ts = result.timeseries
    sel = ts[
        (ts["variable"] == variable)
        & (ts["commodity"] == "ge_refined")
        & (ts["region"] == region)
        & (ts["month"] == month)
    ]
    return float(sel["value"].sum())


def test_the_reserve_buys_toward_its_size_and_pays_for_it(runs):
    model = runs[True].model
    (reserve,) = [p for p in model.policies if p.key == "stockpile"]
    held = float(model.state.stock[reserve.slots].sum())
    assert float(reserve.target.sum()) == pytest.approx(100.0, rel=0.01)  # 19.75 x 5.06 t a month
    # a tenth of the target a month for 12 months; a short market serves part of some requests
    assert 75.0 <= held <= 100.0
    # it buys into the price it lifts: the average paid is above the base-year price
    assert reserve.spent / held > model.net.price0[reserve.commodity]
    # private holders in China sell into the state's buying: the country's stock rises by less
    extra = _value(runs[True], "stock", "CHN", "2025-12-01") - _value(
        runs[False], "stock", "CHN", "2025-12-01"
    )
    assert 0.5 * held < extra < held


def test_state_buying_lifts_the_inside_price_licensing_depresses(runs):
    before = _value(runs[False], "price", "CHN", "2024-07-01")
    without = _value(runs[False], "price", "CHN", "2025-05-01") / before
    with_reserve = _value(runs[True], "price", "CHN", "2025-05-01") / before
    assert without < 1.05  # licensing alone traps supply at home: the inside price does not rise
    # the reserve buys ~10 t a month from a ~12.5 t a month world market: a large rise
    assert with_reserve > 1.3 * without
