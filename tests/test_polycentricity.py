"""Polycentricity kernels and the grouped function.

Numerical tier: values computed by hand (arithmetic in the comments), checked
to 1e-6 absolute tolerance, which covers the rounding of the hand values.
Property tier: hypothesis tests of scale and permutation invariance and of
the bounds of each index.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygvc.data_prep.polycentricity import (
    entropy_normalised,
    gini,
    hhi_normalised,
    polycentricity_indices,
    primacy,
    rank_size_slope,
)
from polygvc.errors import ConfigError, DataError

TOL = 1e-6

# Hand-made regions; one row per unit.
#   A: 12, 6, 4, 3  (S_r = 12 / r, an exact rank-size law with slope -1)
#   B: 5, 5         (two equal units)
#   C: 7            (one unit: every index undefined)
#   D: 4, 1, 0      (a unit of size zero)
#   E: 10, 5, 4
#   F: 0, 0         (zero total)
UNITS = pd.DataFrame(
    {
        "region": ["A"] * 4 + ["B"] * 2 + ["C"] + ["D"] * 3 + ["E"] * 3 + ["F"] * 2,
        "size": [12.0, 6.0, 4.0, 3.0, 5.0, 5.0, 7.0, 4.0, 1.0, 0.0, 10.0, 5.0, 4.0, 0.0, 0.0],
    }
)


@pytest.fixture(scope="module")
def indices() -> pd.DataFrame:
    return polycentricity_indices(UNITS, "region", "size", top_n=(2, 3, 4)).set_index("region")


def test_exact_rank_size_law(indices):
    # ln S_r = ln 12 - ln r for r = 1..4, so every fit has slope exactly -1.
    for column in ("poly_rank_size_top2", "poly_rank_size_top3", "poly_rank_size_top4"):
        value = indices.loc["A", column]
        assert value == pytest.approx(-1.0, abs=TOL), f"{column}={value}"
    assert indices.loc["A", "poly_rank_size_all"] == pytest.approx(-1.0, abs=TOL)


def test_shares_indices_by_hand(indices):
    # A: total 25, shares .48 .24 .16 .12.
    # primacy = 12 / 25 = 0.48
    # HHI = .2304 + .0576 + .0256 + .0144 = .328; (.328 - 1/4) / (1 - 1/4) = .078 / .75 = .104
    # H = -(.48 ln .48 + .24 ln .24 + .16 ln .16 + .12 ln .12)
    #   = .352305 + .342508 + .293213 + .254432 = 1.242458; H / ln 4 = 1.242458 / 1.386294 = .896244
    # Gini, sorted 3 4 6 12: sum i x_(i) = 3 + 8 + 18 + 48 = 77;
    #   2 * 77 / (4 * 25) - 5 / 4 = 1.54 - 1.25 = .29
    #   (check: sum over ordered pairs |x_i - x_j| = 2 * 29 = 58; 58 / (2 * 16 * 6.25) = .29)
    row = indices.loc["A"]
    assert row["poly_primacy"] == pytest.approx(0.48, abs=TOL)
    assert row["poly_hhi_norm"] == pytest.approx(0.104, abs=TOL)
    assert row["poly_entropy_norm"] == pytest.approx(0.896244, abs=TOL)
    assert row["poly_gini"] == pytest.approx(0.29, abs=TOL)
    assert row["n_units"] == 4
    assert row["poly_undefined_reason"] == ""


def test_non_integral_slope_by_hand(indices):
    # E, top 3: x = ln r = 0, .693147, 1.098612 (mean .597253)
    #           y = ln S  = 2.302585, 1.609438, 1.386294 (mean 1.766106)
    # dx = -.597253, .095894, .501359; dy = .536479, -.156668, -.379811
    # sum dx dy = -.320411 - .015023 - .190423 = -.525859
    # sum dx^2  = .356711 + .009196 + .251361 = .617268
    # b = -.525859 / .617268 = -.851914
    assert indices.loc["E", "poly_rank_size_top3"] == pytest.approx(-0.851914, abs=TOL)
    # Top 2: ln(5/10) / ln 2 = -1.
    assert indices.loc["E", "poly_rank_size_top2"] == pytest.approx(-1.0, abs=TOL)


def test_equal_units_are_fully_polycentric(indices):
    row = indices.loc["B"]
    assert row["poly_rank_size_top2"] == pytest.approx(0.0, abs=TOL)
    assert row["poly_primacy"] == pytest.approx(0.5, abs=TOL)
    assert row["poly_hhi_norm"] == pytest.approx(0.0, abs=TOL)
    assert row["poly_entropy_norm"] == pytest.approx(1.0, abs=TOL)
    assert row["poly_gini"] == pytest.approx(0.0, abs=TOL)


def test_too_few_units_for_top_n(indices):
    row = indices.loc["B"]
    assert math.isnan(row["poly_rank_size_top3"])
    assert math.isnan(row["poly_rank_size_top4"])
    assert "poly_rank_size_top3: 2 unit(s), fewer than the 3 needed" in row["poly_undefined_reason"]


def test_single_unit_undefined(indices):
    row = indices.loc["C"]
    values = row.drop(["n_units", "poly_undefined_reason"]).astype(float)
    assert values.isna().all(), values.to_dict()
    assert row["poly_undefined_reason"].startswith("all indices: 1 unit(s)")


def test_zero_unit_rules(indices):
    # D = 4, 1, 0. Rank-size over all units leaves the zero out (ln 0 undefined):
    #   two points, b = (ln 1 - ln 4) / (ln 2 - ln 1) = -2.
    # Shares 0.8, 0.2, 0 with n = 3:
    #   HHI = .64 + .04 = .68; (.68 - 1/3) / (2/3) = .52
    #   H = -(.8 ln .8 + .2 ln .2) = .178515 + .321888 = .500402
    #   H / ln 3 = .500402 / 1.098612 = .455486
    #   Gini, sorted 0 1 4: 2 * (0 + 2 + 12) / (3 * 5) - 4/3 = 1.866667 - 1.333333 = .533333
    row = indices.loc["D"]
    assert row["poly_rank_size_all"] == pytest.approx(-2.0, abs=TOL)
    assert row["poly_rank_size_top2"] == pytest.approx(-2.0, abs=TOL)
    assert math.isnan(row["poly_rank_size_top3"])
    assert "positive size, fewer than the 3 needed" in row["poly_undefined_reason"]
    assert row["poly_primacy"] == pytest.approx(0.8, abs=TOL)
    assert row["poly_hhi_norm"] == pytest.approx(0.52, abs=TOL)
    assert row["poly_entropy_norm"] == pytest.approx(0.455486, abs=TOL)
    assert row["poly_gini"] == pytest.approx(0.533333, abs=TOL)


def test_zero_total_undefined(indices):
    row = indices.loc["F"]
    assert math.isnan(row["poly_primacy"])
    assert math.isnan(row["poly_rank_size_all"])
    assert "total size is zero" in row["poly_undefined_reason"]


def test_grouped_columns_and_types(indices):
    expected = [
        "n_units",
        "poly_rank_size_top2",
        "poly_rank_size_top3",
        "poly_rank_size_top4",
        "poly_rank_size_all",
        "poly_primacy",
        "poly_hhi_norm",
        "poly_entropy_norm",
        "poly_gini",
        "poly_undefined_reason",
    ]
    assert list(indices.columns) == expected
    assert indices["n_units"].dtype == "int64"
    assert list(indices.index) == ["A", "B", "C", "D", "E", "F"]


def test_grouped_two_keys():
    frame = pd.DataFrame(
        {"province": ["p", "p", "p", "p"], "year": [1, 1, 2, 2], "light": [2.0, 1.0, 3.0, 3.0]}
    )
    out = polycentricity_indices(frame, ["province", "year"], "light", top_n=(2,))
    assert list(out["year"]) == [1, 2]
    # Year 1: ln(1/2) / ln 2 = -1; year 2: equal sizes, slope 0.
    assert out["poly_rank_size_top2"].tolist() == pytest.approx([-1.0, 0.0], abs=TOL)


def test_negative_size_rejected():
    with pytest.raises(DataError, match=r"position 1 contains -1\.0"):
        primacy([3.0, -1.0])


def test_nan_size_rejected_in_groups():
    frame = pd.DataFrame({"region": ["a", "a"], "size": [1.0, np.nan]})
    with pytest.raises(
        DataError, match=r"Column 'size' must hold finite non-negative sizes; 1 rows"
    ):
        polycentricity_indices(frame, "region", "size")


def test_top_n_below_two_rejected():
    expected = r"top_n must be an integer of at least 2 \(a slope needs two points\), got 1\."
    with pytest.raises(ConfigError, match=expected):
        rank_size_slope([3.0, 2.0, 1.0], top_n=1)


def test_grouped_top_n_rejected():
    with pytest.raises(ConfigError, match=r"got 1 in \(1, 2\)"):
        polycentricity_indices(UNITS, "region", "size", top_n=(1, 2))


def test_missing_column_rejected():
    with pytest.raises(DataError, match=r"Columns \['light'\] are missing"):
        polycentricity_indices(UNITS, "region", "light")


def test_kernel_single_unit_nan():
    assert math.isnan(rank_size_slope([5.0]))
    assert math.isnan(gini([5.0]))


# Property tests -------------------------------------------------------------

sizes_strategy = st.lists(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=30,
)
KERNELS = {
    "rank_size_all": rank_size_slope,
    "rank_size_top2": lambda s: rank_size_slope(s, top_n=2),
    "primacy": primacy,
    "hhi": hhi_normalised,
    "entropy": entropy_normalised,
    "gini": gini,
}


@settings(max_examples=100, deadline=None)
@given(sizes=sizes_strategy, scale=st.floats(min_value=1e-3, max_value=1e3))
def test_scale_invariance(sizes, scale):
    scaled = [s * scale for s in sizes]
    for name, kernel in KERNELS.items():
        before, after = kernel(sizes), kernel(scaled)
        assert after == pytest.approx(before, rel=1e-7, abs=1e-9), f"{name}: {before} vs {after}"


@settings(max_examples=100, deadline=None)
@given(data=st.data(), sizes=sizes_strategy)
def test_permutation_invariance(data, sizes):
    shuffled = data.draw(st.permutations(sizes))
    for name, kernel in KERNELS.items():
        before, after = kernel(sizes), kernel(shuffled)
        assert after == pytest.approx(before, rel=1e-9, abs=1e-12), f"{name}: {before} vs {after}"


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_strategy)
def test_bounds(sizes):
    n = len(sizes)
    slope = rank_size_slope(sizes)
    share = primacy(sizes)
    hhi = hhi_normalised(sizes)
    entropy = entropy_normalised(sizes)
    inequality = gini(sizes)
    assert slope <= 0.0, f"slope {slope}"
    assert 1.0 / n - 1e-12 <= share <= 1.0, f"primacy {share} with n={n}"
    assert 0.0 <= hhi <= 1.0, f"hhi {hhi}"
    assert 0.0 <= entropy <= 1.0, f"entropy {entropy}"
    assert 0.0 <= inequality <= (n - 1) / n + 1e-12, f"gini {inequality} with n={n}"


@settings(max_examples=50, deadline=None)
@given(size=st.floats(min_value=1e-3, max_value=1e6), n=st.integers(min_value=2, max_value=30))
def test_equal_sizes_extremes(size, n):
    sizes = [size] * n
    assert rank_size_slope(sizes) == pytest.approx(0.0, abs=1e-9)
    assert hhi_normalised(sizes) == pytest.approx(0.0, abs=1e-9)
    assert entropy_normalised(sizes) == pytest.approx(1.0, abs=1e-9)
    assert gini(sizes) == pytest.approx(0.0, abs=1e-9)
