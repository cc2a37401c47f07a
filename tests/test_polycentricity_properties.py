"""Property tests of the indices added beside the kernels: rank-size mean, functional.

The kernel invariants (scale, permutation, bounds) are in test_polycentricity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygvc.data_prep.polycentricity import functional_indices, rank_size_mean

sizes_strategy = st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=2, max_size=30)


@settings(max_examples=100, deadline=None)
@given(sizes=sizes_strategy, scale=st.floats(min_value=1e-3, max_value=1e3), data=st.data())
def test_rank_size_mean_invariances(sizes, scale, data):
    value = rank_size_mean(sizes)
    shuffled = data.draw(st.permutations(sizes))
    assert value <= 0.0, value
    assert rank_size_mean([s * scale for s in sizes]) == pytest.approx(value, rel=1e-7, abs=1e-9)
    assert rank_size_mean(shuffled) == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_rank_size_mean_by_hand():
    # Zipf sizes 12/r for r = 1..4: every definition has slope exactly -1.
    assert rank_size_mean([12.0, 6.0, 4.0, 3.0]) == pytest.approx(-1.0, abs=1e-12)
    # sizes 4, 2, 1: b2 = -1 and b3 = b_all (numpy.polyfit); top4 is undefined and left out.
    b3 = np.polyfit(np.log([1, 2, 3]), np.log([4, 2, 1]), 1)[0]
    assert rank_size_mean([4.0, 2.0, 1.0]) == pytest.approx((-1.0 + 2 * b3) / 3, abs=1e-12)


# Flows are zero or at least 1e-6: a subnormal flow such as 5e-324 underflows to
# zero when scaled, which breaks scale invariance for a reason no real flow has.
flow_values = st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e4))
flows_strategy = st.integers(min_value=2, max_value=8).flatmap(
    lambda n: st.lists(flow_values, min_size=n * n, max_size=n * n).map(
        lambda v: np.array(v).reshape(n, n)
    )
)


@settings(max_examples=100, deadline=None)
@given(flows=flows_strategy, scale=st.floats(min_value=1e-2, max_value=1e2), data=st.data())
def test_functional_invariances(flows, scale, data):
    n = flows.shape[0]
    before = functional_indices(flows)
    order = np.array(data.draw(st.permutations(list(range(n)))))
    permuted = functional_indices(flows[np.ix_(order, order)])
    scaled = functional_indices(flows * scale)
    for name, value in before.items():
        if np.isnan(value):
            continue
        assert permuted[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
        assert scaled[name] == pytest.approx(value, rel=1e-7, abs=1e-9), name
    for name in ("func_entropy_inflow", "func_link_entropy", "func_green"):
        value = before[name]
        assert np.isnan(value) or 0.0 <= value <= 1.0, (name, value)


def test_functional_even_network():
    flows = np.ones((4, 4))
    out = functional_indices(flows)
    assert out["func_green"] == pytest.approx(1.0)
    assert out["func_link_entropy"] == pytest.approx(1.0)
    assert out["func_rank_size_inflow"] == pytest.approx(0.0)


def test_functional_star_network():
    # All flows go to centre 0: inflow entropy 0, Green index low.
    flows = np.zeros((3, 3))
    flows[1, 0] = flows[2, 0] = 5.0
    out = functional_indices(flows)
    assert out["func_entropy_inflow"] == pytest.approx(0.0, abs=1e-12)
    # sd of inflows (10, 0, 0) = 4.714; sd_max = 5; density = 10 / (6 * 5) = 1/3.
    assert out["func_green"] == pytest.approx((1 - np.std([10, 0, 0]) / 5) / 3, abs=1e-12)
