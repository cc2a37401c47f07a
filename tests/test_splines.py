"""Tests of the B-spline basis with linear extension and the RW2 P-spline prior."""

import numpy as np
import pymc as pm
import pytest

from polygvc.errors import ModelError
from polygvc.models.splines import bspline_basis, pspline_coefficients, quantile_knots, rw2_path


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture
def basis_setup(rng):
    x = rng.gamma(2.0, 1.0, size=400)
    knots = quantile_knots(x, 5, name="x")
    return x, knots, (float(x.min()), float(x.max()))


def test_partition_of_unity_inside(basis_setup):
    x, knots, boundary = basis_setup
    result = bspline_basis(np.linspace(*boundary, 101), knots, boundary)
    max_error = np.abs(result.basis.sum(axis=1) - 1).max()
    assert max_error < 1e-12, f"row sums differ from 1 by up to {max_error}"
    assert result.basis.shape[1] == 5 + 3 + 1, f"n_basis {result.basis.shape[1]}"


def test_extension_continuous_at_boundary(basis_setup, rng):
    _, knots, boundary = basis_setup
    coef = rng.normal(size=knots.size + 4)
    h = 1e-6
    for edge, outward in ((boundary[0], -1.0), (boundary[1], 1.0)):
        points = np.array([edge - outward * h, edge, edge + outward * h, edge + outward * 2 * h])
        curve = bspline_basis(points, knots, boundary).basis @ coef
        jump = abs(curve[2] - curve[1] - (curve[1] - curve[0]))
        assert jump < 1e-9, f"value/slope jump {jump} at boundary {edge}"
        slope_inside = (curve[1] - curve[0]) / h
        slope_outside = (curve[3] - curve[2]) / h
        assert slope_inside == pytest.approx(slope_outside, rel=1e-4, abs=1e-4), (
            f"slope inside {slope_inside} vs outside {slope_outside} at {edge}"
        )


def test_extension_is_linear_outside(basis_setup, rng):
    _, knots, boundary = basis_setup
    coef = rng.normal(size=knots.size + 4)
    far = boundary[1] + np.array([1.0, 2.0, 3.0])
    curve = bspline_basis(far, knots, boundary).basis @ coef
    second_difference = curve[2] - 2 * curve[1] + curve[0]
    assert abs(second_difference) < 1e-10, f"second difference {second_difference} outside"
    sums = bspline_basis(far, knots, boundary).basis.sum(axis=1)
    assert np.allclose(sums, 1.0), f"row sums outside {sums}"


def test_extrapolated_flags(basis_setup):
    _, knots, boundary = basis_setup
    points = np.array([boundary[0] - 0.5, boundary[0], 1.5, boundary[1], boundary[1] + 0.1])
    flags = bspline_basis(points, knots, boundary).extrapolated
    assert flags.tolist() == [True, False, False, False, True], f"flags {flags}"


def test_quantile_knots_too_few_values():
    x = np.repeat([0.0, 1.0, 2.0], 50)
    with pytest.raises(ModelError, match="'hsr_city_share' has 3 distinct values"):
        quantile_knots(x, 6, name="hsr_city_share")


def test_rw2_second_differences_equal_scaled_innovations(rng):
    innovations = rng.normal(size=(4, 8))
    path = rw2_path(np.zeros(4), np.ones(4), innovations)
    second = np.diff(path, n=2, axis=-1)
    assert np.allclose(second, innovations), "second differences differ from innovations"


def test_pspline_graph_and_rw2_draws(rng):
    coords = {"province": ["Beijing", "Hebei", "Shanxi"]}
    with pm.Model(coords=coords) as model:
        coef, by_group = pspline_coefficients("f_poly", 8, sigma_prior=0.3, group_dim="province")
    names = set(model.named_vars)
    expected = {
        "f_poly",
        "f_poly_offset",
        "f_poly_sigma",
        "f_poly_province",
        "f_poly_province_offset",
        "f_poly_province_sigma",
    }
    assert expected <= names, f"missing {expected - names}"
    assert model.named_vars_to_dims["f_poly_province"] == ("province", "knot")
    draws = pm.draw([coef, model["f_poly_sigma"], model["f_poly_offset"]], draws=400, random_seed=7)
    second = np.diff(draws[0], n=2, axis=-1)
    scaled = second / draws[1][:, None]
    assert np.allclose(scaled, draws[2][:, 2:]), "second differences / sigma != offsets"
    sd = scaled.std()
    assert abs(sd - 1.0) < 0.05, f"sd of scaled second differences {sd}"


def test_pspline_rejects_wrong_coord_length():
    with pm.Model(coords={"knot": [0, 1, 2]}):
        with pytest.raises(ModelError, match="coord 'knot' has 3 entries but P-spline 'g' has 6"):
            pspline_coefficients("g", 6)
