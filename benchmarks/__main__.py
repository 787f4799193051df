"""Benchmark: one default run, and synthetic worlds with 10x and 100x the facilities.

Declaration: each case builds the model (not timed), then times ``model.run()`` over the full
default horizon (144 monthly steps): wall time (median of 3), time per step, and peak traced
memory (from one more run under tracemalloc). Synthetic worlds copy every facility of the ree
world k times (new ids, same countries; the new-capacity nodes of the investment pipeline stay
single) and scale demand by k; scaling cases limit each buyer
to its 8 cheapest suppliers, so edges grow linearly with facilities, and are compared with the
1x world under the same limit.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import pandas as pd

from critmin.sim.model import CritminModel, data_root
from critmin.sim.run import load_config
from critmin.sim.world import load_world, new_capacity_node


def scaled_world(k: int):
    world = load_world(data_root() / "ree")
    if k == 1:
        return world
    # the 2024 plants are copied; the nodes that receive new capacity (one per country x
    # process, named in projects.csv/prospects.csv) stay single, so the pipeline finds them
    f = world.facilities
    new = f.facility == [new_capacity_node(p, c) for p, c in zip(f.process, f.country)]
    copies = [f[~new].assign(facility=f.facility[~new] + f"_{i}") for i in range(k)]
    world.facilities = pd.concat([*copies, f[new]]).reset_index(drop=True)
    # demand centres are keyed by country x end use, so demand is scaled rather than copied
    world.demand = world.demand.assign(demand_2024_t=world.demand.demand_2024_t * k)
    return world


def case(k: int, max_suppliers: int | None, repeats: int = 3) -> dict:
    overrides = [] if max_suppliers is None else [f"scenario.max_suppliers={max_suppliers}"]
    times = []
    for _ in range(repeats):
        model = CritminModel(load_config(overrides), world=scaled_world(k))
        t0 = time.perf_counter()
        model.run()
        times.append(time.perf_counter() - t0)
    # memory in a separate run: tracemalloc slows NumPy allocation and would distort the timing
    model = CritminModel(load_config(overrides), world=scaled_world(k))
    tracemalloc.start()
    model.run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    wall = statistics.median(times)
    return {
        "world": f"{k}x facilities" + ("" if max_suppliers is None else f", {max_suppliers} suppliers/buyer"),
        "facilities": int(model.net.is_facility.sum()),
        "edges": int(model.net.edge_seller.size),
        "steps": model.n_steps,
        "wall_s": round(wall, 3),
        "ms_per_step": round(1000 * wall / model.n_steps, 2),
        "peak_mem_MiB": round(peak, 1),
    }


def full_world(repeats: int = 3) -> dict:
    """All seven chains in one world (issue 6 target: <= 5 s wall after imports)."""
    times = []
    for _ in range(repeats):
        model = CritminModel(load_config(["scenario=full_2024"]))
        t0 = time.perf_counter()
        model.run()
        times.append(time.perf_counter() - t0)
    wall = statistics.median(times)
    return {
        "world": "full: 7 chains",
        "facilities": int(model.net.is_facility.sum()),
        "edges": int(model.net.edge_seller.size),
        "steps": model.n_steps,
        "wall_s": round(wall, 3),
        "ms_per_step": round(1000 * wall / model.n_steps, 2),
    }


def main() -> None:
    default = case(1, None)
    scaled = [case(1, 8), case(10, 8), case(100, 8, repeats=1)]
    print("Default run (target: <= 1 s wall after imports, one core):")
    print(pd.DataFrame([default]).to_string(index=False))
    print("\nAll chains in one world (target: <= 5 s):")
    print(pd.DataFrame([full_world()]).to_string(index=False))
    df = pd.DataFrame(scaled)
    df["time_ratio_vs_1x"] = (df.ms_per_step / df.ms_per_step.iloc[0]).round(2)
    df["facility_ratio"] = df.facilities / df.facilities.iloc[0]
    print("\nScaling (target: time per step grows no faster than facilities):")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
