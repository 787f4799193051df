"""Synthetic worlds for the scaling benchmark: the ree world with every 2024 plant copied k times."""

from __future__ import annotations

import pandas as pd

from critmin.sim.world import World, data_root, load_world, new_capacity_node


def scaled_world(k: int) -> World:
    """Every 2024 plant copied k times (new ids, same countries) and demand scaled by k.

    The nodes that receive new capacity (one per country x process, named in projects.csv and
    prospects.csv) stay single, so the investment pipeline finds them; demand centres are keyed
    by country x end use, so their demand is scaled rather than copied."""
    world = load_world(data_root() / "ree")
    if k == 1:
        return world
    f = world.facilities
    new = f.facility == [new_capacity_node(p, c) for p, c in zip(f.process, f.country)]
    copies = [f[~new].assign(facility=f.facility[~new] + f"_{i}") for i in range(k)]
    world.facilities = pd.concat([*copies, f[new]]).reset_index(drop=True)
    world.demand = world.demand.assign(demand_base_t=world.demand.demand_base_t * k)
    return world
