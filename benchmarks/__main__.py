"""Benchmark: one default run, and synthetic worlds with 10x and 100x the facilities.

Declaration: each case builds the model (not timed), then times ``model.run()`` over the full
default horizon (144 monthly steps), reporting wall time, time per step and peak traced
memory. Synthetic worlds copy every facility and demand centre of the ree world k times
(new ids, same countries), scale demand by k, and limit each buyer to its 8 cheapest suppliers so edges grow
linearly with facilities. Medians over 3 repeats.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import pandas as pd

from critmin.sim.model import CritminModel, data_root
from critmin.sim.run import load_config
from critmin.sim.world import load_world


def scaled_world(k: int):
    world = load_world(data_root() / "ree")
    if k == 1:
        return world
    fac = pd.concat([world.facilities.assign(facility=world.facilities.facility + f"_{i}") for i in range(k)])
    world.facilities = fac.reset_index(drop=True)
    # demand centres are keyed by country x end use, so demand is scaled rather than copied
    world.demand = world.demand.assign(demand_2024_t=world.demand.demand_2024_t * k)
    return world


def case(k: int, repeats: int = 3) -> dict:
    overrides = [] if k == 1 else ["scenario.max_suppliers=8"]
    times, peaks = [], []
    for _ in range(repeats):
        model = CritminModel(load_config(overrides), world=scaled_world(k))
        tracemalloc.start()
        t0 = time.perf_counter()
        model.run()
        times.append(time.perf_counter() - t0)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    wall = statistics.median(times)
    return {
        "world": f"{k}x facilities",
        "facilities": int(model.net.is_facility.sum()),
        "edges": int(model.net.edge_seller.size),
        "steps": model.n_steps,
        "wall_s": round(wall, 3),
        "ms_per_step": round(1000 * wall / model.n_steps, 2),
        "peak_mem_MiB": round(statistics.median(peaks), 1),
    }


def main() -> None:
    rows = [case(1), case(10), case(100, repeats=1)]
    df = pd.DataFrame(rows)
    df["time_ratio_vs_1x"] = (df.ms_per_step / df.ms_per_step.iloc[0]).round(2)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
