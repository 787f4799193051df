"""Origin tracing on hand-built mixes (no Mesa, no model).

They pin the public functions of ``sim/origin.py``: ``Origins`` (``from_stamps``, ``column``,
``expand``, ``stage_share``), ``Stamp``, ``group_mix``, ``mix_in`` and ``receive``.

The toy world: two stages (0 mine, 1 refining), three countries. Slot 0 is a mine in country 0,
slot 1 a mine in country 2, slot 2 a refinery in country 1 (it stamps refining and keeps the
mine stage of its feed).
"""

import numpy as np
import pytest
from scipy.sparse import csr_array

from critmin.sim import origin
from critmin.sim.origin import Blocks, Origins, Shipments, Stamp, group_mix, mix_in, receive

SLOT_STAMP = np.array([[True, False], [True, False], [False, True]])
SLOT_CLEAR = np.array([[False, True], [False, True], [False, False]])  # a mine clears refining
SLOT_COUNTRY = np.array([0, 2, 1])


@pytest.fixture
def origins():
    return Origins.from_stamps(SLOT_STAMP, SLOT_COUNTRY, 3)


def test_origin_columns_are_the_stage_country_pairs_that_can_occur(origins):
    # mine in countries 0 and 2, refining in country 1: three columns, by stage then country
    assert origins.size == 3
    assert list(zip(origins.stage, origins.country, strict=True)) == [(0, 0), (0, 2), (1, 1)]
    np.testing.assert_array_equal(origins.column(np.array([1, 0]), np.array([1, 2])), [2, 1])
    mix = np.array([[0.25, 0.75, 1.0]])
    full = origins.expand(mix)
    assert full.shape == (1, 2, 3)
    np.testing.assert_allclose(full[0], [[0.25, 0.0, 0.75], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(origins.stage_share(mix, 0), [[0.25, 0.0, 0.75]])


def test_stamp_sets_the_own_stage_to_the_own_country_and_keeps_or_clears_the_others(origins):
    stamp = Stamp(origins, SLOT_STAMP, SLOT_CLEAR, SLOT_COUNTRY)
    before = np.array([[0.5, 0.5, 1.0], [0.5, 0.5, 1.0], [0.25, 0.75, 0.0]])
    after = stamp(before)
    np.testing.assert_allclose(after[0], [1.0, 0.0, 0.0])  # mine in country 0; refining cleared
    np.testing.assert_allclose(after[1], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(after[2], [0.25, 0.75, 1.0])  # refinery keeps its feed's mine mix
    np.testing.assert_allclose(before[2], [0.25, 0.75, 0.0])  # a copy: the input is untouched
    for stage in (0, 1):  # each stage of each row sums to 1 once passed, else 0
        sums = origins.stage_share(after, stage).sum(axis=1)
        assert np.all(np.isclose(sums, 0.0) | np.isclose(sums, 1.0))


def test_group_mix_is_the_mass_weighted_mix_of_what_flows_in():
    mix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 1.0]])
    group = np.array([4, 4, 1, 4])
    source = np.array([0, 1, 2, 2])
    weight = np.array([1.0, 3.0, 2.0, 0.0])  # the last item carries nothing: skipped
    groups, mass, got = group_mix(group, source, weight, mix)
    np.testing.assert_array_equal(groups, [1, 4])
    np.testing.assert_allclose(mass, [2.0, 4.0])
    np.testing.assert_allclose(got, [[0.5, 0.5, 1.0], [0.25, 0.75, 0.0]])


def test_mix_in_blends_by_mass_and_leaves_rows_that_receive_nothing():
    stock = np.array([3.0, 5.0, 0.0, 0.0])
    mix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    incoming = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 1.0], [1.0, 0.0, 0.0]])
    mix_in(stock, mix, np.array([0, 1, 2, 3]), np.array([1.0, 0.0, 2.0, 0.0]), incoming)
    np.testing.assert_allclose(mix[0], [0.75, 0.25, 0.0])  # 3 t of one origin + 1 t of the other
    np.testing.assert_allclose(mix[1], [0.0, 1.0, 0.0])  # nothing arrived
    np.testing.assert_allclose(mix[2], [0.5, 0.5, 1.0])  # an empty row takes the arrival's mix
    np.testing.assert_array_equal(mix[3], [0.0, 0.0, 0.0])  # empty and nothing arrived: still empty


def test_receive_uses_the_mixes_before_any_arrival_and_conserves_origin_tonnes():
    stock = np.array([2.0, 2.0, 4.0])
    mix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    # row 1 receives from row 0 and sends to row 2 in the same round: row 2 gets row 1's old mix
    group, source, amount = np.array([1, 2, 2]), np.array([0, 1, 0]), np.array([2.0, 1.0, 1.0])
    tonnes_before = stock[:, None] * mix
    moved = amount[:, None] * mix[source]
    receive(stock, mix, group, Shipments.of(source, amount, mix))
    np.testing.assert_allclose(mix[1], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(mix[2], [(2 + 1) / 6, (2 + 1) / 6, 0.0])
    # receive moves mixes only; with the stocks the caller books, tonnes per origin add up
    new_stock = stock + np.bincount(group, weights=amount, minlength=3)
    added = np.zeros_like(moved)
    np.add.at(added, group, moved)
    np.testing.assert_allclose(new_stock[:, None] * mix, tonnes_before + added)


# Two chains that never trade with each other: slots 0-2 as above (chain A: origin columns 0-2),
# slots 3-4 a second chain (a mine of a third stage in country 1 selling to a buyer slot: its
# own column 3).
def _two_chains():
    slot_stamp = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], bool)
    slot_clear = np.zeros_like(slot_stamp)
    slot_country = np.array([0, 2, 1, 1, 2])
    slot_node = np.array([0, 1, 2, 3, 4])
    origins = Origins.from_stamps(slot_stamp, slot_country, 3)
    stamp = Stamp(origins, slot_stamp, slot_clear, slot_country)
    seller, buyer = np.array([0, 1, 0, 3, 3]), np.array([2, 2, 2, 4, 4])
    rng = np.random.default_rng(5)
    mix = np.zeros((5, origins.size))
    mix[[0, 1, 2], :2] = rng.dirichlet([1, 1], 3)
    mix[2, 2] = 1.0
    mix[3, 3] = mix[4, 3] = 1.0
    return origins, stamp, slot_node, seller, buyer, mix


def test_blocks_trace_each_chain_over_its_own_columns_with_the_same_numbers():
    origins, stamp, slot_node, seller, buyer, mix = _two_chains()
    blocks = Blocks.of(seller, buyer, slot_node, stamp, origins.size, (mix,))
    assert blocks is not None and len(blocks.columns) == 2
    assert [c.tolist() for c in blocks.columns] == [[0, 1, 2], [3]]
    flow = np.array([2.0, 1.0, 0.5, 3.0, 0.0])  # the last edge carries nothing
    dense, split = Shipments.of(seller, flow, mix), Shipments.of(seller, flow, mix, blocks)
    assert split.parts and not dense.parts
    for group in (buyer, np.array([7, 7, 8, 9, 9])):  # by buyer; by any grouping within a chain
        for a, b in zip(dense.by(group), split.by(group), strict=True):
            np.testing.assert_array_equal(a, b)  # the same numbers, bit for bit
    stock = np.array([1.0, 1.0, 2.0, 1.0, 4.0])
    m1, m2 = mix.copy(), mix.copy()
    receive(stock, m1, buyer, dense)
    receive(stock, m2, buyer, split)
    np.testing.assert_array_equal(m1, m2)
    assert m2[2, 3] == 0.0 and m2[4, :3].sum() == 0.0  # nothing crosses between the chains


def test_shipments_go_block_by_block_only_from_parts_from_items_times_columns():
    origins, stamp, slot_node, seller, buyer, mix = _two_chains()
    blocks = Blocks.of(seller, buyer, slot_node, stamp, origins.size, (mix,))
    flow = np.array([2.0, 1.0, 0.5, 3.0, 0.0])  # 4 items x 4 columns = 16
    assert Shipments.of(seller, flow, mix, blocks, parts_from=16).parts
    assert not Shipments.of(seller, flow, mix, blocks, parts_from=17).parts


def test_blocks_are_not_used_for_one_chain_or_a_mix_outside_its_chain():
    origins, stamp, slot_node, seller, buyer, mix = _two_chains()
    first = Origins.from_stamps(SLOT_STAMP, SLOT_COUNTRY, 3)
    stamp_first = Stamp(first, SLOT_STAMP, SLOT_CLEAR, SLOT_COUNTRY)
    assert Blocks.of(seller[:3], buyer[:3], slot_node[:3], stamp_first, first.size) is None
    crossed = mix.copy()
    crossed[4, 0] = 0.1  # a row of the second chain carrying a first-chain origin
    assert Blocks.of(seller, buyer, slot_node, stamp, origins.size, (crossed,)) is None


def test_group_sums_add_each_groups_items_in_order_as_the_sparse_product_does():
    # origin._sum_rows calls the kernel of ``csr_array @ x`` directly: the same numbers, bit
    # for bit, as the public product, and each group's items added in item order
    rng = np.random.default_rng(11)
    x = rng.random((40, 9)) * (rng.random((40, 9)) < 0.4)
    rows = rng.integers(0, 40, 300)
    weight = rng.uniform(0, 100, 300)
    starts = np.r_[0, np.sort(rng.choice(np.arange(1, 300), 49, replace=False))]
    got = origin._sum_rows(rows, weight, starts, x)
    want = csr_array((weight, rows, np.r_[starts, 300]), shape=(50, 40)) @ x
    np.testing.assert_array_equal(got, want)
    first = np.zeros(9)
    for i in range(starts[0], starts[1]):
        first = first + weight[i] * x[rows[i]]
    np.testing.assert_array_equal(got[0], first)
    np.testing.assert_array_equal(origin._sum_rows(rows, weight, starts, np.asfortranarray(x)), want)


def test_a_model_finds_its_blocks_only_where_a_month_can_reach_parts_from(monkeypatch):
    # the blocks are used only where a month's shipments x origin columns reach PARTS_FROM, so a
    # model of a smaller world does not build them; with the bar at zero a two-chain world has them
    from critmin.sim import origin
    from critmin.sim.model import CritminModel
    from critmin.sim.run import load_config

    cfg = load_config(["scenario=full_2024", "scenario.end=2024-01"])
    model = CritminModel(cfg)
    assert model.net.edge_seller.size * model.origins.size < origin.PARTS_FROM
    assert model.blocks is None
    monkeypatch.setattr(origin, "PARTS_FROM", 0)
    blocked = CritminModel(cfg)
    assert blocked.blocks is not None and len(blocked.blocks.columns) >= 2
