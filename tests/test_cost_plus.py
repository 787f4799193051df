"""Cost-plus pass-through in price formation (sim/prices/anchors.py: cost_plus_floor; issue 15).

A processor does not sell below what the next tonne costs it to make: when its input's price
jumps, the price of its product rises with the cost in the same month, so a thin-margin
aggregate (China's RE metal: a 2024 conversion margin of ~3.5 USD/kg on a ~77 USD/kg product)
is not switched off for a month by a one-month oxide jump (the defect of ODD §9, price chatter).
"""

from __future__ import annotations

import numpy as np
import pytest

import critmin.sim.prices as prices
from critmin.sim.run import load_config, new_model

SHORT = ["scenario=ree_2024_short", "scenario.demand.noise_sd=0", "scenario.end=2024-06"]


def stepped(months: int = 3):
    model = new_model(load_config(SHORT))
    for _ in range(months):
        model.step()
    return model


def market(model, commodity: str, country: str) -> int:
    net = model.net
    return int(
        net.market_index(
            np.array([net.commodities.index(commodity)]), np.array([net.countries.index(country)])
        )[0]
    )


def test_the_floor_does_nothing_in_the_steady_state_or_when_inputs_fall():
    model = stepped()
    s = model.state
    flow = model.cleared.result.flow
    same = prices.cost_plus_floor(model, flow, s.log_p, s.log_p.copy())
    # margins above cash cost: nothing raised (Japan's magnet makers, whose imported inputs
    # cost them a little more than in 2024 by the third month, by 0.3%)
    assert np.abs(same - s.log_p).max() < 0.01
    assert (same != s.log_p).sum() <= 2
    down = s.log_p.copy()
    down[market(model, "ndpr_oxide", "CHN")] -= np.log(1.2)
    out = prices.cost_plus_floor(model, flow, s.log_p, down)
    assert (out >= down).all()  # never lowers a price
    assert np.array_equal(out != down, same != s.log_p)  # a cheaper input raises nothing new


def test_a_twenty_percent_oxide_jump_passes_into_the_metal_price_at_once():
    model = stepped()
    s, net, cal = model.state, model.net, model.calibration
    flow = model.cleared.result.flow
    ox, metal = market(model, "ndpr_oxide", "CHN"), market(model, "re_metal", "CHN")
    new = s.log_p.copy()
    new[ox] += np.log(1.2)
    out = prices.cost_plus_floor(model, flow, s.log_p, new)
    assert out[ox] == new[ox]  # the oxide itself is what moved
    rise = np.exp(out[metal] - s.log_p[metal]) - 1
    # size: China's metal costs 1.133 t NdPr oxide (~77% of its price) plus a little Dy/Tb; a 20%
    # oxide jump adds ~15% of the metal price to its cost, less the ~2% margin left above the
    # idle threshold (3.5 - 2.0 USD/kg of ~78): ~+13%
    node = net.node_id.index("chn_metal")
    head = (cal.margin0[node] - cal.idle_threshold[node]) / np.exp(s.log_p[metal])
    assert 0.10 < rise < 0.16, rise
    assert rise < 0.2 * 0.8 - head + 0.02
    # and the pass-through goes on down the chain in the same month: alloy is mostly metal
    alloy = market(model, "ndfeb_alloy", "CHN")
    assert out[alloy] >= new[alloy]


def _china(overrides: list[str], floor: bool, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """China's RE-metal output and NdPr oxide price over a no-shock run, with or without the floor."""
    if not floor:
        monkeypatch.setattr(prices, "cost_plus_floor", lambda model, flow, old, new, **k: new)
    model = new_model(load_config(overrides))
    model.run()
    net, rec, T = model.net, model.recorder, model.state.t
    shape = (T, net.n_commodities, net.n_countries)
    prod = rec.data["production"][:T].reshape(shape)
    price = rec.data["price"][:T].reshape(shape)
    monkeypatch.undo()
    china = net.countries.index("CHN")
    return prod[:, net.commodities.index("re_metal"), china], price[
        :, net.commodities.index("ndpr_oxide"), china
    ]


def _worst_month(output: np.ndarray) -> float:
    """The smallest month-on-month ratio; a month after one with no output does not count (a
    collapse to zero counts as 0)."""
    prev = output[:-1]
    return float(np.divide(output[1:], prev, out=np.ones(prev.size), where=prev > 0).min())


@pytest.mark.slow
def test_no_shock_runs_keep_china_metal_output_without_month_long_collapses(monkeypatch):
    # measured on the merged engine of 30 Nov 2026 (fifth session: alpha 0.25 worlds, line stops,
    # the cut-off anchor), no shock, to 2035: the smallest month-on-month ratio of China's metal
    # output with / without the floor, seeds 0-4:
    #   ree_2024: 0.89/0.80/0.81/0.90/0.88 vs 0.77/0.76/0.77/0.66/0.62
    #   ree_2026: 0.74/0.76/0.68/0.76/0.82 vs 0.58/0.67/0.76/0.60/0.10
    # and after the sixth session's quota rule and per-ore Dy/Tb yields:
    #   ree_2024: 0.66/0.71/0.65/0.76/0.76 vs 0.41/0.39/0.49/0.48/0.00 (a month with none)
    #   ree_2026: 0.81/0.86/0.84/0.78/0.83 vs 0.73/0.74/0.82/0.55/0.70
    # (with alpha 0.30 the 2024 world halved without the floor too: 0.39 in seed 0). The defect
    # shows in some seeds, not all, so the test asks it of the ten runs together: at least one
    # halving without the floor, none with it, and a higher worst month with it on average
    worst_off, worst_on = [], []
    for world in ("ree_2024", "ree_2026"):
        for seed in range(5):
            run = [f"scenario={world}", f"seed={seed}"]
            metal, _ = _china(run, True, monkeypatch)
            metal_off, _ = _china(run, False, monkeypatch)
            worst_on.append(_worst_month(metal))
            worst_off.append(_worst_month(metal_off))
    assert min(worst_off) < 0.5, worst_off  # the defect, as before the floor
    assert min(worst_on) > 0.6, worst_on  # no halving, with a margin
    assert np.mean(worst_on) > np.mean(worst_off) + 0.1, (worst_on, worst_off)
