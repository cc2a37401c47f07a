"""Penalised B-splines: a basis with linear extension and a random-walk prior.

* :func:`quantile_knots` and :func:`bspline_basis`: a cubic (by default)
  B-spline design matrix with interior knots at quantiles of the data. Outside
  the boundary knots each basis function continues along its tangent at the
  boundary, so a fitted curve is extended linearly with matching value and
  slope, and the rows that needed the extension are flagged.
* :func:`pspline_coefficients`: the second-order random-walk (RW2) prior on
  the coefficients (a Bayesian P-spline), with optional group-varying
  deviations that are partially pooled and non-centred.

References
----------
Eilers, P. H. C. and Marx, B. D. (1996). Flexible smoothing with B-splines
and penalties. Statistical Science 11, 89-121.
Lang, S. and Brezger, A. (2004). Bayesian P-splines. Journal of
Computational and Graphical Statistics 13, 183-212.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.interpolate import BSpline

from polygvc.errors import ModelError
from polygvc.models.priors import Prior

__all__ = ["SplineBasis", "bspline_basis", "pspline_coefficients", "quantile_knots", "rw2_path"]


class SplineBasis(NamedTuple):
    """B-spline design matrix and the rows evaluated by linear extension.

    Attributes
    ----------
    basis : numpy.ndarray, shape (n_obs, n_basis)
        Basis functions at each row (columns follow the ``knot`` dim).
    extrapolated : numpy.ndarray of bool, shape (n_obs,)
        True where ``x`` lies outside ``[boundary[0], boundary[1]]``.
    knots : numpy.ndarray
        Full knot vector (boundary knots repeated ``degree + 1`` times).
    degree : int
    boundary : tuple of float
    """

    basis: np.ndarray
    extrapolated: np.ndarray
    knots: np.ndarray
    degree: int
    boundary: tuple[float, float]


def quantile_knots(x: np.ndarray, n_interior: int, name: str = "x") -> np.ndarray:
    """Place interior knots at equally spaced quantiles of ``x``.

    Parameters
    ----------
    x : array_like
        Data the spline is fitted on.
    n_interior : int
        Number of interior knots (0 gives a single polynomial piece).
    name : str
        Variable name for error messages.

    Returns
    -------
    numpy.ndarray, shape (n_interior,)
        Quantiles at probabilities ``k / (n_interior + 1)``, ``k = 1..n_interior``.

    Raises
    ------
    ModelError
        Non-finite data, or tied quantiles (too few distinct values).
    """
    values = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(values)):
        raise ModelError(
            f"Spline variable '{name}' has {int(np.sum(~np.isfinite(values)))} missing or "
            "non-finite values; drop or impute them before building the basis."
        )
    if n_interior < 0:
        raise ModelError(f"n_interior for '{name}' is {n_interior}; use 0 or more knots.")
    probs = np.arange(1, n_interior + 1) / (n_interior + 1)
    knots = np.quantile(values, probs)
    inner = np.concatenate([[values.min()], knots, [values.max()]])
    if np.any(np.diff(inner) <= 0):
        raise ModelError(
            f"Spline variable '{name}' has {np.unique(values).size} distinct values, too few "
            f"for {n_interior} distinct interior knots at its quantiles. Use fewer knots."
        )
    return knots


def bspline_basis(
    x: np.ndarray,
    interior_knots: np.ndarray,
    boundary: tuple[float, float],
    degree: int = 3,
) -> SplineBasis:
    """Evaluate a B-spline basis, extending it linearly outside the boundary.

    Parameters
    ----------
    x : array_like, shape (n_obs,)
        Points at which to evaluate the basis.
    interior_knots : array_like
        Strictly increasing knots inside ``boundary``, e.g. from
        :func:`quantile_knots`.
    boundary : (float, float)
        Lower and upper boundary knots, usually the range of the fitting data.
    degree : int, default 3
        Polynomial degree (3 = cubic).

    Returns
    -------
    SplineBasis
        ``n_basis = len(interior_knots) + degree + 1`` columns.

    Raises
    ------
    ModelError
        Non-finite ``x``, knots outside the boundary or not increasing.

    Notes
    -----
    Inside ``[a, b]`` the columns are the usual B-splines (Eilers and Marx
    1996) and sum to one. For ``x < a`` each column is
    ``B_j(a) + (x - a) B_j'(a)`` and for ``x > b`` it is
    ``B_j(b) + (x - b) B_j'(b)``. Since the derivatives sum to zero, the
    columns still sum to one, and ``sum_j beta_j B_j(x)`` continues the
    fitted curve along its boundary tangent. A cubic polynomial would instead
    keep bending outside the data.
    """
    values = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(values)):
        raise ModelError("Spline input has missing or non-finite values; drop or impute them.")
    lower, upper = float(boundary[0]), float(boundary[1])
    inner = np.asarray(interior_knots, dtype=float).ravel()
    edges = np.concatenate([[lower], inner, [upper]])
    if np.any(np.diff(edges) <= 0):
        raise ModelError(
            f"Spline knots must increase strictly inside the boundary ({lower}, {upper}); "
            f"got interior knots {inner.tolist()}."
        )
    if degree < 1:
        raise ModelError(f"Spline degree is {degree}; use 1 or more (3 = cubic).")
    knots = np.concatenate([np.repeat(lower, degree + 1), inner, np.repeat(upper, degree + 1)])
    n_basis = knots.size - degree - 1
    spline = BSpline(knots, np.eye(n_basis), degree, extrapolate=False)
    slope = spline.derivative()

    below = values < lower
    above = values > upper
    basis = np.empty((values.size, n_basis))
    inside = ~(below | above)
    if inside.any():
        basis[inside] = BSpline.design_matrix(values[inside], knots, degree).toarray()
    if below.any():
        basis[below] = spline(lower)[None, :] + (values[below] - lower)[:, None] * slope(lower)
    if above.any():
        basis[above] = spline(upper)[None, :] + (values[above] - upper)[:, None] * slope(upper)
    return SplineBasis(basis, below | above, knots, degree, (lower, upper))


def rw2_path(level: Any, slope: Any, innovations: Any) -> Any:
    """Build RW2 coefficients from a starting level, slope and scaled innovations.

    Parameters
    ----------
    level, slope : tensor or array, shape (...)
        ``beta_0`` and ``beta_1 - beta_0``.
    innovations : tensor or array, shape (..., n_basis - 2)
        Second differences ``beta_{j+2} - 2 beta_{j+1} + beta_j``.

    Returns
    -------
    tensor or array, shape (..., n_basis)
    """
    xp = pt if isinstance(innovations, pt.TensorVariable) else np
    steps = slope[..., None] + xp.cumsum(innovations, axis=-1)
    increments = xp.concatenate([slope[..., None], steps], axis=-1)
    path = level[..., None] + xp.cumsum(increments, axis=-1)
    return xp.concatenate([level[..., None], path], axis=-1)


def _scale_variable(name: str, prior: float | Prior | Any, **kwargs: Any) -> Any:
    if isinstance(prior, Prior):
        if not prior.positive:
            raise ModelError(
                f"Prior for '{name}' is {prior}, which allows negative values; "
                "use a positive distribution such as HalfNormal."
            )
        return prior.create(name, **kwargs)
    if isinstance(prior, (int, float)):
        if prior <= 0:
            raise ModelError(
                f"Scale prior for '{name}' is {prior}; use a positive HalfNormal scale."
            )
        return pm.HalfNormal(name, sigma=float(prior), **kwargs)
    return prior  # an existing tensor: a shared smoothing scale


def pspline_coefficients(
    name: str,
    n_basis: int,
    sigma_prior: float | Prior | Any = 1.0,
    dims: str = "knot",
    *,
    init_sigma: float = 1.0,
    group_dim: str | None = None,
    group_sigma_prior: float | Prior | Any = 0.5,
) -> tuple[Any, Any | None]:
    """Create P-spline coefficients with a second-order random-walk prior.

    Must be called inside a ``pm.Model`` context.

    Parameters
    ----------
    name : str
        Term name; creates ``name`` (deterministic, dims ``dims``),
        ``<name>_offset`` and ``<name>_sigma``.
    n_basis : int
        Number of basis functions (at least 3).
    sigma_prior : float, Prior or tensor, default 1.0
        Prior of the RW2 innovation scale ``<name>_sigma``: a HalfNormal scale,
        a positive :class:`~polygvc.models.priors.Prior`, or an existing tensor.
        Smaller values give smoother curves.
    dims : str, default "knot"
        Dim of the coefficients; coords ``0..n_basis-1`` are added if absent.
    init_sigma : float, default 1.0
        Prior sd of the first coefficient and of the first difference.
    group_dim : str or None
        When given (e.g. ``"province"``, which must be a model coord), adds
        group deviations that are themselves RW2 paths scaled by
        ``<name>_<group_dim>_sigma`` and creates ``<name>_<group_dim>``
        (dims ``(group_dim, dims)``) = common + deviation.
    group_sigma_prior : float, Prior or tensor, default 0.5
        Prior of ``<name>_<group_dim>_sigma``.

    Returns
    -------
    (tensor, tensor or None)
        Common coefficients (``n_basis``,) and group coefficients
        (``n_groups, n_basis``) or None.

    Raises
    ------
    ModelError
        ``n_basis < 3``, a coord length that disagrees with ``n_basis``, a
        missing ``group_dim`` coord, or a scale prior with negative support.

    Notes
    -----
    RW2 prior (Lang and Brezger 2004): ``beta_j = 2 beta_{j-1} - beta_{j-2}
    + sigma u_j`` with ``u_j ~ N(0, 1)`` for ``j >= 2``, and ``beta_0``,
    ``beta_1 - beta_0 ~ N(0, init_sigma^2)``. This is the Bayesian form of the
    second-difference penalty of Eilers and Marx (1996); as ``sigma -> 0`` the
    curve tends to a straight line in the coefficients. Non-centred: the
    offsets ``<name>_offset`` (dims ``dims``) hold ``[beta_0 / init_sigma,
    (beta_1 - beta_0) / init_sigma, u_2, ..., u_{n-1}]``. Group deviations
    use offsets ``<name>_<group_dim>_offset`` with unit initial scales, all
    multiplied by the group scale, so the scale shrinks every group curve
    towards the common one. Because B-spline columns sum to one, adding a
    constant to every coefficient shifts the curve: drop the model intercept
    (or the unit fixed effects absorb it) to keep the level identified.
    """
    if n_basis < 3:
        raise ModelError(f"P-spline '{name}' has n_basis={n_basis}; an RW2 prior needs at least 3.")
    model = pm.modelcontext(None)
    if dims in model.coords:
        size = len(model.coords[dims])
        if size != n_basis:
            raise ModelError(
                f"Model coord '{dims}' has {size} entries but P-spline '{name}' has {n_basis} "
                "basis functions; use a separate dim name or matching coords."
            )
    else:
        model.add_coord(dims, np.arange(n_basis))

    sigma = _scale_variable(f"{name}_sigma", sigma_prior)
    offset = pm.Normal(f"{name}_offset", 0.0, 1.0, dims=dims)
    common = rw2_path(offset[0] * init_sigma, offset[1] * init_sigma, offset[2:] * sigma)
    common = pm.Deterministic(name, common, dims=dims)
    if group_dim is None:
        return common, None

    if group_dim not in model.coords:
        raise ModelError(
            f"P-spline '{name}' varies by '{group_dim}', but the model has no such coord; "
            f"create the model with coords={{'{group_dim}': [...]}}."
        )
    term = f"{name}_{group_dim}"
    group_sigma = _scale_variable(f"{term}_sigma", group_sigma_prior)
    group_offset = pm.Normal(f"{term}_offset", 0.0, 1.0, dims=(group_dim, dims))
    deviation = group_sigma * rw2_path(group_offset[:, 0], group_offset[:, 1], group_offset[:, 2:])
    by_group = pm.Deterministic(term, common[None, :] + deviation, dims=(group_dim, dims))
    return common, by_group
