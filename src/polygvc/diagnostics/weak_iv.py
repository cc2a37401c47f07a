r"""Anderson-Rubin confidence sets that stay valid when instruments are weak.

For one endogenous regressor the Anderson and Rubin (1949) test of
:math:`H_0: \beta = \beta_0` regresses :math:`y - x\beta_0` on the excluded
instruments (after partialling out the exogenous regressors) and tests that
all k coefficients are zero. Its size does not depend on instrument strength,
so the set of :math:`\beta_0` it does not reject is a confidence set with
correct coverage even when the first stage is weak. Such a set need not be an
interval: it can be bounded, the union of two rays, the whole real line, or
empty (the last only with more instruments than regressors).

Two constructions are provided:

* :func:`anderson_rubin_set` solves the homoskedastic quadratic inequality in
  closed form;
* :func:`anderson_rubin_grid` inverts the robust or cluster-robust test over a
  grid, refines each boundary by root finding and decides the tails from the
  limit of the statistic as :math:`|\beta_0| \to \infty`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from polygvc.diagnostics.classical import PartialledArrays, prepare_iv_frame
from polygvc.errors import ModelError

logger = logging.getLogger(__name__)

KIND_BOUNDED = "bounded"
KIND_TWO_RAYS = "union of two rays"
KIND_WHOLE_LINE = "whole real line"
KIND_EMPTY = "empty"
KIND_RAY = "ray"
KIND_UNION = "union of intervals"


def _format_number(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _classify(intervals: tuple[tuple[float, float], ...]) -> str:
    if not intervals:
        return KIND_EMPTY
    if len(intervals) == 1:
        lower, upper = intervals[0]
        if math.isinf(lower) and math.isinf(upper):
            return KIND_WHOLE_LINE
        if math.isinf(lower) or math.isinf(upper):
            return KIND_RAY
        return KIND_BOUNDED
    if len(intervals) == 2 and math.isinf(intervals[0][0]) and math.isinf(intervals[1][1]):
        return KIND_TWO_RAYS
    return KIND_UNION


@dataclass(frozen=True)
class ARConfidenceSet:
    """Anderson-Rubin confidence set for the coefficient of one endogenous regressor.

    Attributes
    ----------
    intervals : tuple of (float, float)
        Disjoint closed intervals in increasing order; ``-inf``/``inf`` mark rays.
    kind : str
        ``"bounded"``, ``"union of two rays"``, ``"whole real line"``,
        ``"empty"``, ``"ray"`` (one half-line, a boundary case) or
        ``"union of intervals"`` (possible with robust covariances).
    level : float
        Confidence level, e.g. 0.95.
    method : str
        ``"analytic"`` (closed form) or ``"grid"`` (test inversion).
    cov_type : str
        ``"unadjusted"``, ``"robust"`` or ``"clustered"``.
    endog : str
        Name of the endogenous regressor.
    """

    intervals: tuple[tuple[float, float], ...]
    level: float
    method: str
    cov_type: str
    endog: str

    @property
    def kind(self) -> str:
        """Shape of the set, derived from :attr:`intervals`."""
        return _classify(self.intervals)

    @property
    def endpoints(self) -> tuple[float, ...]:
        """Finite boundary points in increasing order."""
        points = [value for pair in self.intervals for value in pair]
        return tuple(value for value in points if math.isfinite(value))

    @property
    def is_bounded(self) -> bool:
        """True when the set is non-empty and has finite length."""
        return bool(self.intervals) and not any(
            math.isinf(value) for pair in self.intervals for value in pair
        )

    @property
    def length(self) -> float:
        """Total length; ``inf`` for unbounded sets and 0 for the empty set."""
        return float(sum(upper - lower for lower, upper in self.intervals))

    def contains(self, value: float) -> bool:
        """Return whether ``value`` lies in the set."""
        return any(lower <= value <= upper for lower, upper in self.intervals)

    def __str__(self) -> str:
        if not self.intervals:
            return "∅"
        parts = []
        for lower, upper in self.intervals:
            left = "(" if math.isinf(lower) else "["
            right = ")" if math.isinf(upper) else "]"
            parts.append(f"{left}{_format_number(lower)}, {_format_number(upper)}{right}")
        return " ∪ ".join(parts)


def _single_endog(arrays: PartialledArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if arrays.x.shape[1] != 1:
        raise ModelError(
            f"The Anderson-Rubin set here is for one endogenous regressor, but the "
            f"specification has {arrays.x.shape[1]}: {arrays.endog}. Fix: pass one endog; "
            "for several, invert the joint AR test or use a projection method."
        )
    return arrays.y, arrays.x[:, 0], arrays.z


def _critical_value(level: float, k: int, df_denom: int) -> float:
    return float(stats.f.ppf(level, k, df_denom))


def _quadratic_intervals(a: float, b: float, c: float) -> tuple[tuple[float, float], ...]:
    """Solve ``a t^2 + b t + c <= 0`` over the real line."""
    scale = max(abs(a), abs(b), abs(c), np.finfo(float).tiny)
    if abs(a) <= 1e-12 * scale:
        if abs(b) <= 1e-12 * scale:
            return ((-math.inf, math.inf),) if c <= 0 else ()
        root = -c / b
        return ((-math.inf, root),) if b > 0 else ((root, math.inf),)
    disc = b * b - 4.0 * a * c
    if disc < 0:
        return () if a > 0 else ((-math.inf, math.inf),)
    sqrt_disc = math.sqrt(disc)
    # Numerically stable roots (avoid cancellation in -b +- sqrt(disc)).
    q = -0.5 * (b + math.copysign(sqrt_disc, b))
    roots = sorted([q / a, c / q] if q != 0 else [-b / (2 * a)] * 2)
    if a > 0:
        return ((roots[0], roots[1]),)
    if roots[0] == roots[1]:
        return ((-math.inf, math.inf),)
    return ((-math.inf, roots[0]), (roots[1], math.inf))


def ar_quadratic(arrays: PartialledArrays, level: float = 0.95) -> tuple[float, float, float]:
    r"""Return the coefficients (a, b, c) of the homoskedastic AR inequality.

    Parameters
    ----------
    arrays : PartialledArrays
        Data with the exogenous regressors partialled out; one endogenous regressor.
    level : float, default 0.95

    Returns
    -------
    tuple of float
        The AR set is :math:`\{\beta: a\beta^2 + b\beta + c \le 0\}`; see
        :func:`anderson_rubin_set` for the formulas.
    """
    y, x, z = _single_endog(arrays)
    k = z.shape[1]
    df_denom = arrays.df_resid
    kappa = k * _critical_value(level, k, df_denom) / df_denom
    coef_y, *_ = np.linalg.lstsq(z, y, rcond=None)
    coef_x, *_ = np.linalg.lstsq(z, x, rcond=None)
    fitted_y, fitted_x = z @ coef_y, z @ coef_x
    pyy, pxy, pxx = fitted_y @ fitted_y, fitted_x @ fitted_y, fitted_x @ fitted_x
    myy, mxy, mxx = y @ y - pyy, x @ y - pxy, x @ x - pxx
    a = pxx - kappa * mxx
    b = -2.0 * (pxy - kappa * mxy)
    c = pyy - kappa * myy
    return float(a), float(b), float(c)


def anderson_rubin_set(
    data: pd.DataFrame,
    dependent: str,
    endog: str | Sequence[str],
    exog: str | Sequence[str] | None,
    instruments: str | Sequence[str],
    add_constant: bool = True,
    level: float = 0.95,
) -> ARConfidenceSet:
    r"""Compute the homoskedastic Anderson-Rubin confidence set in closed form.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data.
    dependent : str
        Outcome column.
    endog : str or list of one str
        The single endogenous regressor.
    exog : str or list of str or None
        Included exogenous regressors.
    instruments : str or list of str
        Excluded instruments (k of them).
    add_constant : bool, default True
        Include an intercept among the exogenous regressors.
    level : float, default 0.95
        Confidence level :math:`1-\alpha`.

    Returns
    -------
    ARConfidenceSet
        With ``method="analytic"`` and ``cov_type="unadjusted"``.

    Raises
    ------
    DataError
        Missing or non-numeric columns.
    ModelError
        More than one endogenous regressor.

    Notes
    -----
    Anderson and Rubin (1949). After partialling out the exogenous regressors
    W, let :math:`e(\beta_0) = y - x\beta_0`, :math:`P` the projection on the
    k instruments and :math:`M = I - P`. The statistic

    .. math:: AR(\beta_0) = \frac{e'Pe / k}{e'Me / (n - k - c)}

    is :math:`F(k, n-k-c)` under :math:`H_0` with normal homoskedastic errors,
    whatever the instrument strength (c = number of columns of W). With
    :math:`\kappa = k F_{1-\alpha}(k, n-k-c) / (n-k-c)` the acceptance region
    :math:`e'Pe \le \kappa\, e'Me` is the quadratic inequality
    :math:`a\beta_0^2 + b\beta_0 + c_0 \le 0` with

    .. math::

        a = x'Px - \kappa x'Mx, \quad
        b = -2(x'Py - \kappa x'My), \quad
        c_0 = y'Py - \kappa y'My.

    If :math:`a > 0` (the first-stage F exceeds the critical value
    :math:`F_{1-\alpha}(k, n-k-c)`) the set is a bounded interval, or empty
    when the discriminant is negative (possible only for k > 1). If
    :math:`a < 0` the set is the union of two disjoint rays, or the whole real
    line when the discriminant is negative. Unbounded sets signal that the
    data carry little information on :math:`\beta` (Dufour, 1997).
    """
    frame = prepare_iv_frame(data, dependent, endog, exog, instruments, None, add_constant)
    arrays = frame.partialled()
    return ar_set_from_arrays(arrays, level)


def ar_set_from_arrays(arrays: PartialledArrays, level: float = 0.95) -> ARConfidenceSet:
    """Compute the analytic AR set from partialled arrays; see :func:`anderson_rubin_set`."""
    a, b, c = ar_quadratic(arrays, level)
    return ARConfidenceSet(
        intervals=_quadratic_intervals(a, b, c),
        level=level,
        method="analytic",
        cov_type="unadjusted",
        endog=arrays.endog[0],
    )


@dataclass(frozen=True)
class _ARScoreParts:
    r"""Pieces from which the AR Wald statistic at any beta is a cheap function.

    With :math:`r(\beta) = r_y - \beta r_x` the residuals of :math:`e(\beta)`
    on Z, the coefficient is :math:`g(\beta) = g_y - \beta g_x` and the
    meat of the sandwich is :math:`S_{yy} - \beta(S_{xy} + S_{xy}') + \beta^2 S_{xx}`.
    """

    g_y: np.ndarray
    g_x: np.ndarray
    bread: np.ndarray
    s_yy: np.ndarray
    s_xy: np.ndarray
    s_xx: np.ndarray
    scale: float
    k: int
    df_denom: int


def _score_parts(arrays: PartialledArrays, cov_type: str) -> _ARScoreParts:
    y, x, z = _single_endog(arrays)
    n, k = z.shape
    zz_inv = np.linalg.inv(z.T @ z)
    g_y = zz_inv @ (z.T @ y)
    g_x = zz_inv @ (z.T @ x)
    r_y = y - z @ g_y
    r_x = x - z @ g_x
    df_resid = arrays.df_resid
    if cov_type == "unadjusted":
        # Homoskedastic: V = s^2 (Z'Z)^{-1}; the "meat" is the scalar e'Me times Z'Z.
        zz = z.T @ z
        s_yy = (r_y @ r_y) * zz
        s_xy = (r_x @ r_y) * zz
        s_xx = (r_x @ r_x) * zz
        bread = zz_inv @ zz_inv
        scale = 1.0 / df_resid
        df_denom = df_resid
    elif cov_type == "robust":
        a_scores = z * r_y[:, None]
        b_scores = z * r_x[:, None]
        s_yy, s_xy, s_xx = a_scores.T @ a_scores, b_scores.T @ a_scores, b_scores.T @ b_scores
        bread = zz_inv
        scale = n / df_resid
        df_denom = df_resid
    elif cov_type == "clustered":
        if arrays.clusters is None:
            raise ModelError(
                "cov_type='clustered' needs a cluster column. Fix: pass cluster=<column>."
            )
        codes = arrays.clusters
        n_groups = int(codes.max()) + 1
        a_scores = np.zeros((n_groups, k))
        b_scores = np.zeros((n_groups, k))
        np.add.at(a_scores, codes, z * r_y[:, None])
        np.add.at(b_scores, codes, z * r_x[:, None])
        s_yy, s_xy, s_xx = a_scores.T @ a_scores, b_scores.T @ a_scores, b_scores.T @ b_scores
        bread = zz_inv
        g_count = int(np.unique(codes).size)
        scale = g_count / (g_count - 1) * (n - 1) / df_resid
        df_denom = g_count - 1
    else:
        raise ModelError(
            f"Unknown cov_type {cov_type!r}. Valid choices: 'unadjusted', 'robust', 'clustered'."
        )
    return _ARScoreParts(g_y, g_x, bread, s_yy, s_xy, s_xx, scale, k, df_denom)


def _ar_statistic(parts: _ARScoreParts, beta: float) -> float:
    coef = parts.g_y - beta * parts.g_x
    meat = parts.s_yy - beta * (parts.s_xy + parts.s_xy.T) + beta * beta * parts.s_xx
    cov = _covariance(parts, meat)
    return float(coef @ np.linalg.solve(cov, coef)) / parts.k


def _covariance(parts: _ARScoreParts, meat: np.ndarray) -> np.ndarray:
    if parts.scale < 1.0:
        # Homoskedastic branch: meat = (e'Me) Z'Z and bread = (Z'Z)^{-2}, so
        # bread @ meat = s^2 (n-k-c) (Z'Z)^{-1}.
        return parts.scale * (parts.bread @ meat)
    return parts.scale * (parts.bread @ meat @ parts.bread)


def _tail_statistic(parts: _ARScoreParts) -> float:
    """Limit of the AR statistic as |beta| -> inf: the first-stage Wald F of x."""
    cov = _covariance(parts, parts.s_xx)
    return float(parts.g_x @ np.linalg.solve(cov, parts.g_x)) / parts.k


def _default_grid(parts: _ARScoreParts, arrays: PartialledArrays, n_points: int) -> np.ndarray:
    _, x, z = _single_endog(arrays)
    fitted_x = z @ parts.g_x
    denom = float(fitted_x @ x)
    centre = float(fitted_x @ arrays.y) / denom if denom != 0 else 0.0
    resid = arrays.y - x * centre
    variance = max(resid @ resid / max(arrays.df_resid, 1), 1e-300)
    spread = math.sqrt(variance / max(abs(denom), 1e-300))
    half_width = 50.0 * max(spread, 1e-8 * max(1.0, abs(centre)))
    return np.linspace(centre - half_width, centre + half_width, n_points)


def anderson_rubin_grid(
    data: pd.DataFrame,
    dependent: str,
    endog: str | Sequence[str],
    exog: str | Sequence[str] | None,
    instruments: str | Sequence[str],
    cluster: str | None = None,
    add_constant: bool = True,
    level: float = 0.95,
    cov_type: str | None = None,
    grid: np.ndarray | None = None,
    n_points: int = 2001,
) -> ARConfidenceSet:
    r"""Invert the (cluster-)robust Anderson-Rubin test over a grid of coefficients.

    Parameters
    ----------
    data, dependent, endog, exog, instruments, add_constant
        As in :func:`anderson_rubin_set`.
    cluster : str, optional
        Cluster column; implies ``cov_type="clustered"``.
    level : float, default 0.95
        Confidence level.
    cov_type : {"unadjusted", "robust", "clustered"}, optional
        Defaults to ``"clustered"`` with a cluster column, else ``"robust"``.
    grid : numpy.ndarray, optional
        Increasing values of :math:`\beta_0` to test. The default is 2001
        points centred on the 2SLS estimate, 50 homoskedastic standard errors
        either side; it is widened up to 5 times (x4 each) while an accepted
        region touches the grid edge and the tails are rejected.
    n_points : int, default 2001
        Size of the default grid.

    Returns
    -------
    ARConfidenceSet
        With ``method="grid"``. Boundaries are refined by Brent's method
        between neighbouring grid points, so they are exact to ~1e-10 relative
        tolerance; a component narrower than the grid spacing can be missed.

    Raises
    ------
    DataError, ModelError
        As in :func:`anderson_rubin_set`; also for an unknown ``cov_type``.

    Notes
    -----
    For each :math:`\beta_0` the residual :math:`e = y - x\beta_0` (W
    partialled out) is regressed on Z, giving :math:`\hat g(\beta_0)`, and
    :math:`AR(\beta_0) = \hat g' \hat V^{-1} \hat g / k` is compared with
    :math:`F_{1-\alpha}(k, d)`. :math:`\hat V` is HC1
    (:math:`d = n-k-c`) or CR1 with G clusters
    (:math:`\frac{G}{G-1}\frac{n-1}{n-k-c}`, :math:`d = G-1`), following
    Stata's small-sample conventions. As :math:`|\beta_0| \to \infty`,
    :math:`AR(\beta_0)` tends to the robust first-stage Wald F of x on Z, so
    both tails belong to the set exactly when that F is below the critical
    value; this decides unboundedness without a grid edge.
    """
    cov = cov_type or ("clustered" if cluster is not None else "robust")
    frame = prepare_iv_frame(data, dependent, endog, exog, instruments, cluster, add_constant)
    arrays = frame.partialled()
    return ar_grid_from_arrays(arrays, level, cov, grid, n_points)


def ar_grid_from_arrays(
    arrays: PartialledArrays,
    level: float = 0.95,
    cov_type: str = "robust",
    grid: np.ndarray | None = None,
    n_points: int = 2001,
) -> ARConfidenceSet:
    """Compute the grid-inverted AR set from partialled arrays; see :func:`anderson_rubin_grid`."""
    parts = _score_parts(arrays, cov_type)
    critical = _critical_value(level, parts.k, parts.df_denom)
    tails_accepted = _tail_statistic(parts) <= critical
    if grid is None:
        values = _default_grid(parts, arrays, n_points)
    else:
        values = np.asarray(grid, dtype=float)
    if values.ndim != 1 or values.size < 2 or np.any(np.diff(values) <= 0):
        raise ModelError(
            f"The AR grid must be a 1-D increasing array with at least 2 values; got shape "
            f"{values.shape}. Fix: pass e.g. numpy.linspace(lower, upper, 2001)."
        )

    def excess(beta: float) -> float:
        return _ar_statistic(parts, beta) - critical

    values = _extend_to_tails(values, excess, tails_accepted)
    accepted = np.array([excess(beta) <= 0 for beta in values])

    intervals: list[tuple[float, float]] = []
    start: float | None = None
    for index, beta in enumerate(values):
        if accepted[index] and start is None:
            if index == 0:
                start = -math.inf if tails_accepted else float(beta)
            else:
                start = _boundary(excess, values[index - 1], beta)
        elif not accepted[index] and start is not None:
            intervals.append((start, _boundary(excess, values[index - 1], beta)))
            start = None
    if start is not None:
        intervals.append((start, math.inf if tails_accepted else float(values[-1])))
    return ARConfidenceSet(
        intervals=tuple(intervals),
        level=level,
        method="grid",
        cov_type=cov_type,
        endog=arrays.endog[0],
    )


def _boundary(excess, lower: float, upper: float) -> float:
    return float(optimize.brentq(excess, lower, upper, xtol=1e-12, rtol=1e-12))


def _extend_to_tails(values: np.ndarray, excess, tails_accepted: bool) -> np.ndarray:
    """Append points outside the grid until each edge agrees with the tail limit.

    Beyond the returned grid the AR statistic is taken to stay on the same
    side of the critical value as its limit, which is what makes a boundary
    "inf" or a clipped edge honest.
    """
    centre = 0.5 * (values[0] + values[-1])
    half_width = 0.5 * (values[-1] - values[0])
    left: list[float] = []
    right: list[float] = []
    for side, points, sign in (("lower", left, -1.0), ("upper", right, 1.0)):
        edge = values[0] if sign < 0 else values[-1]
        distance = half_width
        for _ in range(60):
            if (excess(edge) <= 0) == tails_accepted:
                break
            distance *= 2.0
            edge = centre + sign * distance
            points.append(edge)
        else:
            # NOTE: the statistic sits at the critical value far out, so the set
            # is reported as clipped at the last grid point on this side.
            logger.warning(
                "AR test inversion: the %s edge of the grid never matched the tail "
                "limit; the reported set is clipped at %.6g.",
                side,
                edge,
            )
    return np.concatenate([np.array(left[::-1]), values, np.array(right)])
