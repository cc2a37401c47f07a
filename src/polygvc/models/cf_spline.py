r"""Penalised-spline term of the control-function model: :math:`f_p(x)` as a P-spline.

The outcome equation of a ``cf_spline`` model replaces the linear slope
:math:`\beta_p x` by a cubic (by default) B-spline in the standardised
endogenous regressor,

.. math::

    f_p(x) = \sum_j B_j(x)\, \beta_{pj}, \qquad
    \beta_{pj} = \beta_j + \sigma_{\text{prov}}\, d_{pj},

with interior knots at equally spaced quantiles of :math:`x`
(:func:`polygvc.models.splines.quantile_knots`), a second-order random-walk
prior on :math:`\beta_j` (Lang and Brezger 2004) and, as an option,
province deviations :math:`d_{pj}` that are themselves RW2 paths, non-centred
and shrunk towards the common curve by :math:`\sigma_{\text{prov}}`
(:func:`polygvc.models.splines.pspline_coefficients`). Outside the data range
the basis continues linearly (:func:`polygvc.models.splines.bspline_basis`).

The B-spline columns sum to one, so the curve's level and the model intercept
are the same quantity: the ``cf_spline`` model has no global ``intercept``
(the spline's level takes its place), and with province deviations the
province intercept offsets are dropped (the deviation's level takes their
place). Reported curves are therefore differences: ``spline_curve`` is
:math:`f(x) - f(0)`, the change in the standardised outcome when ``x`` moves
from its sample mean to a grid value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from polygvc.errors import ConfigError
from polygvc.models.splines import SplineBasis, bspline_basis, pspline_coefficients, quantile_knots

__all__ = [
    "SplineDesign",
    "SplineSettings",
    "add_spline_term",
    "prepare_spline_design",
    "spline_data",
]

# Half-width of the central difference used for the average slope (standardised x).
_DERIVATIVE_STEP = 1e-4


@dataclass(frozen=True)
class SplineSettings:
    """Settings of the spline term (``[model.spline]`` in the config).

    Parameters
    ----------
    n_knots : int, default 5
        Interior knots, placed at the quantiles ``k / (n_knots + 1)`` of the
        endogenous regressor. The basis has ``n_knots + degree + 1`` columns.
    degree : int, default 3
        Polynomial degree of the B-splines (3 = cubic).
    province_deviations : bool, default False
        Province curves deviate from the common curve by partially pooled RW2
        paths (``spline_province_offset``, ``spline_province_sigma``).
    n_curve : int, default 25
        Points of the evaluation grid (dim ``x_grid``) between the smallest and
        largest observed value of the endogenous regressor.
    """

    n_knots: int = 5
    degree: int = 3
    province_deviations: bool = False
    n_curve: int = 25

    def __post_init__(self) -> None:
        if self.n_knots < 0:
            raise ConfigError(
                f"model.spline.n_knots = {self.n_knots} is negative. Fix: use 0 or more "
                "interior knots (5 is a common choice)."
            )
        if self.degree < 1:
            raise ConfigError(
                f"model.spline.degree = {self.degree}; use 1 or more (3 = cubic B-splines)."
            )
        if self.n_knots + self.degree + 1 < 3:
            raise ConfigError(
                f"model.spline: n_knots = {self.n_knots} and degree = {self.degree} give "
                f"{self.n_knots + self.degree + 1} basis functions, but the RW2 prior needs at "
                "least 3. Fix: raise n_knots or degree."
            )
        if self.n_curve < 2:
            raise ConfigError(f"model.spline.n_curve = {self.n_curve}; use 2 or more points.")


@dataclass(frozen=True)
class SplineDesign:
    """B-spline basis at the data and at the curve grid (standardised ``x``).

    Attributes
    ----------
    basis : SplineBasis
        Basis at the model rows (dim ``(obs, knot)``).
    x_grid : numpy.ndarray, shape (n_curve,)
        Evaluation grid of the standardised endogenous regressor.
    grid_basis, zero_basis : numpy.ndarray
        Basis at ``x_grid`` (n_curve, n_basis) and at ``x = 0`` (n_basis,).
    slope_basis : numpy.ndarray, shape (n_obs, n_basis)
        Derivative of the basis at the model rows (central difference), so
        ``slope_basis @ beta`` is :math:`f'(x_i)`.
    """

    basis: SplineBasis
    x_grid: np.ndarray
    grid_basis: np.ndarray
    zero_basis: np.ndarray
    slope_basis: np.ndarray

    @property
    def n_basis(self) -> int:
        """Number of basis functions (length of the ``knot`` dim)."""
        return int(self.basis.basis.shape[1])


def prepare_spline_design(x: np.ndarray, settings: SplineSettings, name: str) -> SplineDesign:
    """Build the B-spline basis of the standardised endogenous regressor.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_obs,)
        Standardised endogenous regressor.
    settings : SplineSettings
    name : str
        Column name, for error messages.

    Returns
    -------
    SplineDesign

    Raises
    ------
    ModelError
        Too few distinct values of ``x`` for the requested knots.
    """
    knots = quantile_knots(x, settings.n_knots, name=name)
    boundary = (float(np.min(x)), float(np.max(x)))
    basis = bspline_basis(x, knots, boundary, settings.degree)
    x_grid = np.linspace(boundary[0], boundary[1], settings.n_curve)
    grid_basis = bspline_basis(x_grid, knots, boundary, settings.degree).basis
    zero_basis = bspline_basis(np.array([0.0]), knots, boundary, settings.degree).basis[0]
    step = _DERIVATIVE_STEP
    upper = bspline_basis(x + step, knots, boundary, settings.degree).basis
    lower = bspline_basis(x - step, knots, boundary, settings.degree).basis
    slope_basis = (upper - lower) / (2.0 * step)
    return SplineDesign(basis, x_grid, grid_basis, zero_basis, slope_basis)


def _basis_at(design: SplineDesign, x: np.ndarray) -> np.ndarray:
    basis = design.basis
    interior = basis.knots[basis.degree + 1 : basis.knots.size - basis.degree - 1]
    return bspline_basis(x, interior, basis.boundary, basis.degree).basis


def spline_data(design: SplineDesign, x: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate the model's basis data at new values of the endogenous regressor.

    Parameters
    ----------
    design : SplineDesign
        The design the model was built with. Its knots and boundary are kept.
    x : numpy.ndarray, shape (n_obs,)
        New standardised values of the endogenous regressor on the model rows.

    Returns
    -------
    dict of str to numpy.ndarray
        ``spline_basis`` and ``spline_slope_basis``, shape (n_obs, n_basis),
        to pass with ``x`` to ``pm.set_data`` or ``CompiledModel.with_data``.
        Values outside the boundary use the linear extension of
        :func:`~polygvc.models.splines.bspline_basis`.
    """
    x = np.asarray(x, dtype=float)
    step = _DERIVATIVE_STEP
    slope = (_basis_at(design, x + step) - _basis_at(design, x - step)) / (2.0 * step)
    return {"spline_basis": _basis_at(design, x), "spline_slope_basis": slope}


def add_spline_term(
    design: SplineDesign,
    priors: dict[str, Any],
    unit_idx: Any,
    province_deviations: bool,
    y_sd: float,
) -> pt.TensorVariable:
    """Add the P-spline coefficients and curve summaries to the current model.

    Parameters
    ----------
    design : SplineDesign
    priors : dict
        Resolved priors; uses ``spline_sigma`` and ``spline_province_sigma``.
    unit_idx : tensor, shape (n_obs,)
        Province index of each row.
    province_deviations : bool
        Province-varying curves.
    y_sd : float
        Standard deviation of the outcome, to report ``effect_curve`` in its units.

    Returns
    -------
    tensor, shape (n_obs,)
        :math:`f_{p(i)}(x_i)` for every row.

    Notes
    -----
    The basis and its derivative at the rows are ``pm.Data``
    (``spline_basis``, ``spline_slope_basis``), and :func:`spline_data`
    gives their values for new ``x`` at the same knots.
    Creates ``spline`` (knot), ``spline_offset``, ``spline_sigma`` and, with
    province deviations, ``spline_province`` (province, knot),
    ``spline_province_offset`` and ``spline_province_sigma``. Deterministics:
    ``spline_curve`` (x_grid), :math:`f(x) - f(0)` of the common curve on the
    standardised scale; ``effect_curve`` (x_grid), the same in outcome units;
    ``spline_ame``, the average over rows of :math:`f'(x_i)` (standardised
    slope, comparable with ``beta_mu`` of the linear model) and
    ``effect_ame`` in original units is added by the caller.
    """
    basis = pm.Data("spline_basis", design.basis.basis, dims=("obs", "knot"))
    slope_basis = pm.Data("spline_slope_basis", design.slope_basis, dims=("obs", "knot"))
    common, by_province = pspline_coefficients(
        "spline",
        design.n_basis,
        priors["spline_sigma"],
        dims="knot",
        group_dim="province" if province_deviations else None,
        group_sigma_prior=priors["spline_province_sigma"],
    )
    if by_province is None:
        fitted = pt.dot(basis, common)
    else:
        fitted = (basis * by_province[unit_idx]).sum(axis=-1)

    curve = pt.dot(pt.as_tensor_variable(design.grid_basis), common) - pt.dot(
        pt.as_tensor_variable(design.zero_basis), common
    )
    pm.Deterministic("spline_curve", curve, dims="x_grid")
    pm.Deterministic("effect_curve", curve * y_sd, dims="x_grid")
    pm.Deterministic("spline_ame", pt.dot(slope_basis, common).mean())
    return fitted
