"""The state of a run: everything that changes from month to month, as arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class State:
    """Everything that changes during a run (arrays; see Network for the index conventions)."""

    t: int
    stock: np.ndarray  # per slot, t
    mix: np.ndarray  # per slot × origin column (sim/origin.py)
    log_p: np.ndarray  # per market (commodity × country): seller price, ln USD/t
    p_exp: np.ndarray  # per market: expected seller price
    paid: np.ndarray  # per slot: last delivered price paid (input slots)
    expected_paid: np.ndarray
    paid0: np.ndarray
    margin0: np.ndarray  # per node: 2024 margin per unit of activity
    plan: np.ndarray  # per node: planned activity (facilities) or desired use (demand)
    activity: np.ndarray  # per node: realised activity / consumption this step
    capacity_factor: np.ndarray
    activity_cap: np.ndarray  # per node: this month's cap on activity (a production quota; inf = none)
    demand_factor: np.ndarray
    noise: np.ndarray
    outage_left: np.ndarray  # per node: months of random outage left
    in_use: np.ndarray  # per node (demand centres): in-use stock, t
    in_use_mix: np.ndarray  # per node × origin column
    orders_avg: np.ndarray  # per slot: smoothed monthly orders received (output slots)
    orders_lr: np.ndarray  # per slot: normal monthly sales, orders smoothed over a year (output slots)
    log_p_ref: np.ndarray  # per market: ln max(normal price, price abroad): what stored output fetches later
    trend: np.ndarray  # per market: smoothed monthly change of ln price (extrapolative expectations)
    storage_return: np.ndarray  # per slot: holder's expected monthly ln price gain (storage motive)
    preference: np.ndarray  # per edge: calibrated logit share parameter
    capacity: np.ndarray  # per node: structural capacity, activity units per month (before outages)
    p_lr: np.ndarray  # per market: long-run expected seller price (investment)
    paid_lr: np.ndarray  # per slot: long-run expected delivered price (investment, substitution)
    intensity: np.ndarray  # per node (demand): material intensity after substitution and thrifting
    battery_shares: (
        np.ndarray
    )  # LFP in EV cells, LFP in storage cells, Na-ion in storage (agents/chemistry.py)
    below_cost_months: np.ndarray  # per node: months the long-run margin has been below cash cost
    run_share: (
        np.ndarray
    )  # per node: share of a processing plant's capacity that ran last month (agents/producer.py)
    # goods in transit (sim/transit.py), set when the run starts: per slot the tonnes afloat to a
    # buyer slot; the ring buffer over transit edges, tonnes and origin mix
    in_transit: np.ndarray | None = None
    afloat: np.ndarray | None = None  # [ring, transit edges]
    afloat_mix: np.ndarray | None = None  # [ring, transit edges, origin columns]
