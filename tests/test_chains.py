"""Every packaged chain, alone and all together: 2024 shares and prices against the data."""

import numpy as np
import pytest

from critmin.sim.model import CritminModel
from critmin.sim.run import collect, load_config

CHAINS = ["gallium", "germanium", "graphite", "cobalt", "lithium", "nickel"]


def run_chain(name: str):
    cfg = load_config([f"scenario={name}_2024", "scenario.end=2025-12"])
    model = CritminModel(cfg)
    model.run()
    return model, collect(model, cfg)


@pytest.mark.parametrize("chain", CHAINS)
def test_chain_reproduces_2024_shares_and_keeps_prices_within_25pct(chain):
    model, res = run_chain(chain)
    assert model.recorder.mass_balance_errors().max() <= 1e-9
    fac, procs = model.world.facilities, model.world.processes
    ts = res.timeseries
    prod = ts[(ts.variable == "production") & (ts.region != "WORLD") & (ts.month.dt.year == 2024)]
    for commodity in model.net.commodities:
        makers = procs[(procs.role == "output") & (procs.commodity == commodity)].process
        data = fac[fac.process.isin(makers)]
        coef = (
            procs[(procs.role == "output") & (procs.commodity == commodity)].set_index("process").coefficient
        )
        data = (data.output_2024_tpa * data.process.map(coef)).groupby(data.country).sum()
        if data.sum() <= 0:
            continue
        sim = prod[prod.commodity == commodity].groupby("region", observed=True)["value"].sum()
        for country, share in (data / data.sum()).items():
            assert sim.get(country, 0.0) / sim.sum() == pytest.approx(share, abs=0.03), (commodity, country)
    p0 = dict(zip(model.net.commodities, model.net.price0, strict=True))
    for commodity in model.net.commodities:
        ratio = res.series("price", commodity) / p0[commodity]
        assert ratio.between(0.75, 1.25).all(), (commodity, ratio.min(), ratio.max())


def test_all_chains_run_together_in_one_world():
    model = CritminModel(load_config(["scenario=full_2024", "scenario.end=2024-12"]))
    model.run()
    minerals = set(model.world.commodities.mineral)
    assert len(minerals) == 7  # every chain loaded
    assert model.recorder.mass_balance_errors().max() <= 1e-9
    assert np.isfinite(np.exp(model.state.log_p)).all()
    # one government per country, shared by every chain
    assert set(model.governments) == set(model.net.countries)
