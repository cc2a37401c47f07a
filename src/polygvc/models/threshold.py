"""Threshold regression kernels: candidate grids, exact marginalisation, Hansen's search.

A threshold model lets the slopes of ``x_regime`` (and optionally an intercept)
change when the threshold variable ``q`` crosses an unknown value ``gamma``. The
regime indicators are step functions of ``gamma``, so gradient-based samplers
cannot move ``gamma`` directly. Instead ``gamma`` is restricted to a finite grid
(:func:`threshold_grid`) and summed out exactly:

    log p(y | theta) = logsumexp_g [ l_g(theta) + log p(gamma_g) ],

where ``l_g`` is the Gaussian log-likelihood with the regime indicators fixed at
grid point ``g``, so each ``l_g`` is smooth in ``theta``. Layers:

* :func:`threshold_grid`, :func:`within_transform`: NumPy preparation.
* :func:`prepare_threshold_kernel` -> :class:`ThresholdKernel`: the regime
  design at every grid point and its cross-products (sufficient statistics).
* :func:`threshold_loglik_grid` (NumPy or PyTensor) and
  :func:`marginal_threshold_loglik` (PyTensor, for ``pm.Potential``).
* :func:`threshold_posterior`: per-draw posterior of ``gamma`` on the grid,
  averaged over draws (Rao-Blackwellised), and one seeded ``gamma`` draw per
  posterior draw; :func:`conditional_pointwise_loglik` for LOO.
* :func:`fit_threshold_ls`: Hansen's (1999) least-squares search for
  fixed-effects panels, pure NumPy.

Direction: regime 1 (``"low"``) contains rows with ``q <= gamma`` (``q < gamma``
with ``lower_inclusive=False``, Hansen's convention); a higher regime index
means a higher ``q``.

References
----------
Hansen, B. E. (1999). Threshold effects in non-dynamic panels: estimation,
testing, and inference. Journal of Econometrics 93, 345-368.
Hansen, B. E. (2000). Sample splitting and threshold estimation.
Econometrica 68, 575-603.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
import xarray as xr
from scipy.special import logsumexp as np_logsumexp

from polygvc.errors import ModelError

logger = logging.getLogger(__name__)

REGIME_NAMES = {1: ("low", "high"), 2: ("low", "middle", "high")}

__all__ = [
    "REGIME_NAMES",
    "LSThresholdResult",
    "ThresholdKernel",
    "conditional_pointwise_loglik",
    "fit_threshold_ls",
    "last_period_mask",
    "marginal_threshold_loglik",
    "prepare_threshold_kernel",
    "regime_index",
    "tensor_kernel",
    "with_outcome",
    "threshold_grid",
    "threshold_loglik_grid",
    "threshold_pairs",
    "threshold_posterior",
    "within_transform",
]


# ---------------------------------------------------------------------------
# Candidate grid
# ---------------------------------------------------------------------------


def threshold_grid(
    q: np.ndarray,
    n_grid: int = 50,
    trim: float = 0.15,
    method: Literal["quantile", "hansen_unique"] = "quantile",
    name: str = "q",
) -> np.ndarray:
    """Build the candidate threshold values ``gamma_g`` from the threshold variable.

    Parameters
    ----------
    q : array_like, shape (n_obs,)
        Threshold variable. Missing values are not allowed.
    n_grid : int, default 50
        Number of grid points.
    trim : float, default 0.15
        Share of observations kept out of each end: the grid runs from the
        ``trim`` to the ``1 - trim`` quantile, so every regime of a single
        threshold contains at least about ``trim`` of the rows.
    method : {"quantile", "hansen_unique"}
        ``"quantile"``: the ``n_grid`` probabilities ``linspace(trim, 1 - trim)``
        applied to the observed ``q`` (``numpy.quantile`` with
        ``method="inverted_cdf"``, so every grid point is an observed value).
        ``"hansen_unique"``: the same probabilities applied to the *sorted
        unique* values of ``q`` as in Hansen's panel threshold code: point
        ``p`` is the ``floor(p * n_unique)``-th smallest distinct value
        (1-based). Hansen's grid is ``n_grid=393, trim=0.01`` (1% to 99% in
        steps of 0.25%).
    name : str, default "q"
        Variable name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (n_grid,)
        Strictly increasing grid of observed values of ``q``.

    Raises
    ------
    ModelError
        Non-finite ``q``, invalid ``trim`` or ``n_grid``, unknown ``method``, or
        fewer distinct values of ``q`` in the trimmed range than ``n_grid``.

    Notes
    -----
    Hansen (1999, section 3) minimises the sum of squared residuals over the
    distinct values of ``q`` and suggests restricting the search to a grid of
    quantiles to save time. Both methods here return observed values, so the
    regime split at a grid point is the split at that data value.
    """
    values = np.asarray(q, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ModelError(
            f"Threshold variable '{name}' has {bad} missing or non-finite values out of "
            f"{values.size}. Drop or impute those rows before building the threshold grid."
        )
    if not 0.0 <= trim < 0.5:
        raise ModelError(
            f"Threshold grid trim for '{name}' is {trim}; it must be in [0, 0.5). "
            "Use a share such as 0.15 (15% of rows kept out of each end)."
        )
    if n_grid < 1:
        raise ModelError(f"Threshold grid size for '{name}' is {n_grid}; use n_grid >= 1.")
    probs = np.linspace(trim, 1.0 - trim, n_grid)
    unique = np.unique(values)
    if method == "quantile":
        grid = np.quantile(values, probs, method="inverted_cdf")
    elif method == "hansen_unique":
        # Rounding guards p * n against values like 84.99999999 that are whole numbers.
        position = np.floor(np.round(probs * unique.size, 9)).astype(int)
        grid = unique[np.clip(position - 1, 0, unique.size - 1)]
    else:
        raise ModelError(
            f"Unknown threshold grid method '{method}' for '{name}'. "
            "Valid methods: 'quantile', 'hansen_unique'."
        )
    n_distinct = np.unique(grid).size
    if n_distinct < n_grid:
        inside = unique[(unique >= grid[0]) & (unique <= grid[-1])].size
        raise ModelError(
            f"Threshold variable '{name}' has {unique.size} distinct values "
            f"({inside} between the {trim:.0%} and {1 - trim:.0%} quantiles), too few for "
            f"a grid of {n_grid} distinct points (only {n_distinct} came out). "
            f"Set n_grid to at most {n_distinct}, lower trim, or use a threshold variable "
            "with more distinct values."
        )
    return grid


def threshold_pairs(n_grid: int, min_gap: int = 1) -> np.ndarray:
    """List the ordered grid-index pairs ``(a, b)`` with ``b - a >= min_gap``.

    Parameters
    ----------
    n_grid : int
        Number of grid points.
    min_gap : int, default 1
        Minimum distance between the two thresholds in grid steps; the middle
        regime of a pair then contains at least the rows between ``min_gap``
        neighbouring grid points.

    Returns
    -------
    numpy.ndarray, shape (n_pairs, 2)
        Integer indices, lower threshold first.

    Raises
    ------
    ModelError
        ``min_gap < 1`` or no pair fits on the grid.
    """
    if min_gap < 1:
        raise ModelError(f"Double-threshold min_gap is {min_gap}; use min_gap >= 1 grid step.")
    lower, upper = np.triu_indices(n_grid, k=min_gap)
    if lower.size == 0:
        raise ModelError(
            f"No threshold pair with min_gap={min_gap} fits on a grid of {n_grid} points. "
            "Use a larger grid or a smaller min_gap."
        )
    return np.column_stack([lower, upper])


# ---------------------------------------------------------------------------
# Fixed-effects transform
# ---------------------------------------------------------------------------


def _group_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    return codes.ravel(), int(codes.max()) + 1


def within_transform(x: np.ndarray, groups: np.ndarray, axis: int = 0) -> np.ndarray:
    """Subtract group means (the fixed-effects within transform).

    Parameters
    ----------
    x : array_like
        Data with observations along ``axis``.
    groups : array_like, shape (n_obs,)
        Fixed-effect group label of every observation (firm, province).
    axis : int, default 0
        Observation axis of ``x``.

    Returns
    -------
    numpy.ndarray
        ``x`` minus the mean of its group, same shape as ``x``.
    """
    values = np.moveaxis(np.asarray(x, dtype=float), axis, 0)
    codes, n_groups = _group_codes(groups)
    if codes.size != values.shape[0]:
        raise ModelError(
            f"Fixed-effect groups have {codes.size} labels but the data have "
            f"{values.shape[0]} rows; pass one label per row."
        )
    indicator = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_groups, codes.size)
    )
    counts = np.bincount(codes, minlength=n_groups).astype(float)
    flat = values.reshape(values.shape[0], -1)
    means = (indicator @ flat) / counts[:, None]
    out = flat - means[codes]
    return np.moveaxis(out.reshape(values.shape), 0, axis)


# ---------------------------------------------------------------------------
# Kernel data (sufficient statistics per grid point)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdKernel:
    """Precomputed regime designs and cross-products for grid marginalisation.

    Attributes
    ----------
    grid : numpy.ndarray, shape (n_grid,)
        Candidate thresholds, increasing.
    n_thresholds : int
        1 or 2.
    design : numpy.ndarray, shape (n_grid, n_obs, k)
        Lower-side regime design ``x_regime * 1[q <= gamma_g]`` (within
        transformed when fixed effects are used) at each grid point.
    gram : numpy.ndarray, shape (n_grid, n_groups, k, k)
        ``D_g' H_j D_g`` for each threshold group ``j``.
    pairs : numpy.ndarray or None, shape (n_pairs, 2)
        Grid-index pairs of a double threshold.
    cross : numpy.ndarray or None, shape (n_pairs, n_groups, k, k)
        ``D_a' H_j D_b`` for each pair.
    log_prior : numpy.ndarray, shape (n_grid,) or (n_pairs,)
        Normalised log prior over grid points (single) or pairs (double).
    group_codes : numpy.ndarray, shape (n_obs,)
        Threshold group of each row (all zero without province thresholds).
    group_onehot : numpy.ndarray, shape (n_obs, n_groups)
        One-hot matrix ``H`` of ``group_codes``.
    n_effective : numpy.ndarray, shape (n_groups,)
        Rows per group minus fixed effects absorbed (the Gaussian normalising
        term uses these degrees of freedom).
    row_weight, row_constant : numpy.ndarray, shape (n_obs,)
        Share of the normalising term and the constant ``-log(T_i) / (2 T_i)``
        each row carries so that per-row log-likelihoods sum to the
        fixed-effect-integrated log-likelihood of its unit (1 and 0 without
        fixed effects).
    linear : dict or None
        Cross-products with a constant ``y`` and ``X`` for the ``coef`` path.
    regressor_names : tuple of str
        Names of the columns of ``design``.
    """

    grid: np.ndarray
    n_thresholds: int
    design: np.ndarray
    gram: np.ndarray
    pairs: np.ndarray | None
    cross: np.ndarray | None
    log_prior: np.ndarray
    group_codes: np.ndarray
    group_onehot: np.ndarray
    n_effective: np.ndarray
    row_weight: np.ndarray
    row_constant: np.ndarray
    linear: dict[str, np.ndarray] | None = None
    regressor_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_groups(self) -> int:
        """Number of threshold groups (1 unless thresholds vary by group)."""
        return self.group_onehot.shape[1]

    @property
    def n_support(self) -> int:
        """Number of support points summed over: grid points or pairs."""
        return self.log_prior.shape[0]


def regime_index(q: np.ndarray, thresholds: Any, lower_inclusive: bool = True) -> np.ndarray:
    """Assign each row its regime (0 = lowest ``q``) given sorted thresholds.

    Parameters
    ----------
    q : array_like, shape (n_obs,)
        Threshold variable.
    thresholds : float or sequence of float
        One or two thresholds, increasing.
    lower_inclusive : bool, default True
        Rows with ``q == gamma`` go to the lower regime when True.

    Returns
    -------
    numpy.ndarray of int, shape (n_obs,)
        0, 1 (and 2 with two thresholds); higher means higher ``q``.
    """
    values = np.asarray(q, dtype=float)
    cuts = np.atleast_1d(np.asarray(thresholds, dtype=float))
    side = "left" if lower_inclusive else "right"
    return np.searchsorted(cuts, values, side=side)


def _lower_indicator(q: np.ndarray, grid: np.ndarray, lower_inclusive: bool) -> np.ndarray:
    """Return the (n_grid, n_obs) matrix of ``1[q <= gamma_g]`` (or ``<``)."""
    if lower_inclusive:
        return (q[None, :] <= grid[:, None]).astype(float)
    return (q[None, :] < grid[:, None]).astype(float)


def prepare_threshold_kernel(
    q: np.ndarray,
    x_regime: np.ndarray,
    grid: np.ndarray,
    *,
    n_thresholds: int = 1,
    min_gap: int = 1,
    intercept: bool = False,
    lower_inclusive: bool = True,
    fixed_effects: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    log_prior: np.ndarray | None = None,
    y: np.ndarray | None = None,
    x_fixed: np.ndarray | None = None,
    regressor_names: tuple[str, ...] | None = None,
    keep_rows: np.ndarray | None = None,
) -> ThresholdKernel:
    """Precompute the regime designs of a threshold model at every grid point.

    Parameters
    ----------
    q : array_like, shape (n_obs,)
        Threshold variable.
    x_regime : array_like, shape (n_obs,) or (n_obs, k)
        Regressors whose slopes change across the threshold, untransformed.
    grid : array_like, shape (n_grid,)
        Candidate thresholds from :func:`threshold_grid`.
    n_thresholds : {1, 2}
        Single or double threshold.
    min_gap : int, default 1
        Minimum grid steps between the two thresholds (double only).
    intercept : bool, default False
        Add a column of ones to ``x_regime`` so the intercept also changes.
    lower_inclusive : bool, default True
        ``1[q <= gamma]`` when True, ``1[q < gamma]`` (Hansen's code) otherwise.
    fixed_effects : array_like or None, shape (n_obs,)
        Fixed-effect unit of every row; the regime design is then within
        transformed, and the caller must pass within-transformed ``y`` and
        residuals. Each unit must lie inside one threshold group.
    groups : array_like or None, shape (n_obs,)
        Threshold group (e.g. province) when each group has its own threshold.
        The marginal then factorises: a sum over groups of a logsumexp over
        the grid.
    log_prior : array_like or None
        Log prior weights over grid points (single) or over the pairs of
        :func:`threshold_pairs` (double); normalised here. Uniform if None.
    y, x_fixed : array_like or None
        Constant outcome (n_obs,) and regressors with threshold-independent
        coefficients (n_obs, p), already transformed like the residuals. When
        given, the kernel stores their cross-products so that
        :func:`marginal_threshold_loglik` can take ``coef`` in place of a
        residual vector (cost per evaluation independent of ``n_obs``).
    regressor_names : tuple of str or None
        Names of the regime-dependent columns (``"intercept"`` appended first).
    keep_rows : array_like of bool or None, shape (n_obs,)
        Rows kept after the within transform, e.g. all but each unit's last
        period as in Hansen's code. The kept rows are then treated as
        independent (``n_effective`` = kept rows, no per-unit constant), a
        quasi-likelihood; ``y``, ``x_fixed`` and residuals must cover the kept
        rows only. Needs ``fixed_effects``.

    Returns
    -------
    ThresholdKernel

    Raises
    ------
    ModelError
        Shapes that disagree, unsorted grid, or a fixed-effect unit spread over
        several threshold groups.

    Notes
    -----
    With design ``D_g`` (n_obs x k) and residual ``e = y - X b - x_regime
    beta_high``, the sum of squared residuals at grid point ``g`` is

        SSR_g = e'e - 2 delta' D_g'e + delta' D_g'D_g delta,

    and for a pair ``(a, b)`` of a double threshold with ``delta_1`` at ``a``
    and ``delta_2`` at ``b`` the term ``2 delta_1' D_a'D_b delta_2`` is added.
    The kernel stores ``D_g`` and the Gram matrices ``D_g'D_g``, ``D_a'D_b``.
    """
    q = np.asarray(q, dtype=float).ravel()
    n_obs = q.size
    x = np.asarray(x_regime, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    if x.shape[0] != n_obs:
        raise ModelError(
            f"x_regime has {x.shape[0]} rows but the threshold variable has {n_obs}; "
            "pass both for the same rows."
        )
    names = tuple(regressor_names) if regressor_names else tuple(f"x{j}" for j in range(x.shape[1]))
    if intercept:
        x = np.column_stack([np.ones(n_obs), x])
        names = ("intercept", *names)
    grid = np.asarray(grid, dtype=float).ravel()
    if grid.size > 1 and np.any(np.diff(grid) <= 0):
        raise ModelError(
            "Threshold grid must be strictly increasing; build it with threshold_grid."
        )
    if n_thresholds not in (1, 2):
        raise ModelError(f"n_thresholds is {n_thresholds}; polygvc supports 1 or 2 thresholds.")

    lower = _lower_indicator(q, grid, lower_inclusive)
    design = lower[:, :, None] * x[None, :, :]
    if fixed_effects is not None:
        design = within_transform(design, fixed_effects, axis=1)

    if keep_rows is not None:
        if fixed_effects is None:
            raise ModelError(
                "keep_rows needs fixed_effects: it selects rows after the within transform."
            )
        keep = np.asarray(keep_rows, dtype=bool)
        design = design[:, keep]
        groups = None if groups is None else np.asarray(groups)[keep]
        n_obs = int(keep.sum())

    if groups is None:
        codes = np.zeros(n_obs, dtype=int)
        n_groups = 1
    else:
        codes, n_groups = _group_codes(groups)
    onehot = np.zeros((n_obs, n_groups))
    onehot[np.arange(n_obs), codes] = 1.0

    n_rows = onehot.sum(axis=0)
    row_weight = np.ones(n_obs)
    row_constant = np.zeros(n_obs)
    if fixed_effects is not None and keep_rows is None:
        fe_codes, n_fe = _group_codes(fixed_effects)
        unit_size = np.bincount(fe_codes, minlength=n_fe).astype(float)
        groups_per_unit = np.zeros((n_fe, n_groups))
        groups_per_unit[fe_codes, codes] = 1.0
        if np.any(groups_per_unit.sum(axis=1) > 1):
            raise ModelError(
                "A fixed-effect unit spans several threshold groups; each unit must belong "
                "to one group (nest the fixed effects inside the threshold groups)."
            )
        n_effective = n_rows - groups_per_unit.sum(axis=0)
        size = unit_size[fe_codes]
        row_weight = (size - 1.0) / size
        row_constant = -np.log(size) / (2.0 * size)
    else:
        n_effective = n_rows

    weighted = design[:, :, None, :] * onehot[None, :, :, None]  # (G, N, J, k)
    gram = np.einsum("gnjk,gnl->gjkl", weighted, design)

    pairs = cross = None
    if n_thresholds == 2:
        pairs = threshold_pairs(grid.size, min_gap)
        cross = _pair_cross(design, onehot, pairs)
        n_support = pairs.shape[0]
    else:
        n_support = grid.size

    if log_prior is None:
        prior = np.full(n_support, -np.log(n_support))
    else:
        prior = np.asarray(log_prior, dtype=float).ravel()
        if prior.size != n_support:
            raise ModelError(
                f"log_prior has {prior.size} entries but the threshold support has {n_support} "
                "points (grid points for one threshold, pairs for two)."
            )
        prior = prior - np_logsumexp(prior)

    linear = None
    if y is not None:
        linear = _linear_statistics(design, onehot, y, x_fixed)

    return ThresholdKernel(
        grid=grid,
        n_thresholds=n_thresholds,
        design=design,
        gram=gram,
        pairs=pairs,
        cross=cross,
        log_prior=prior,
        group_codes=codes,
        group_onehot=onehot,
        n_effective=n_effective,
        row_weight=row_weight,
        row_constant=row_constant,
        linear=linear,
        regressor_names=names,
    )


def _pair_cross(design: np.ndarray, onehot: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Return ``D_a' H_j D_b`` for each pair, shape (n_pairs, n_groups, k, k)."""
    n_grid, _, k = design.shape
    n_groups = onehot.shape[1]
    # All grid-point cross-products per group, then gather the pairs.
    full = np.empty((n_grid, n_grid, n_groups, k, k))
    for j in range(n_groups):
        rows = onehot[:, j] > 0
        block = design[:, rows, :].transpose(0, 2, 1).reshape(n_grid * k, -1)
        product = (block @ block.T).reshape(n_grid, k, n_grid, k)
        full[:, :, j] = product.transpose(0, 2, 1, 3)
    return full[pairs[:, 0], pairs[:, 1]]


def tensor_kernel(
    kernel: ThresholdKernel, q: Any, x_regime: Any, *, lower_inclusive: bool = True
) -> ThresholdKernel:
    """Recompute the data-dependent arrays of a kernel as PyTensor expressions.

    Parameters
    ----------
    kernel : ThresholdKernel
        From :func:`prepare_threshold_kernel` without ``fixed_effects``,
        ``keep_rows``, ``y`` or ``x_fixed``.
    q : tensor, shape (n_obs,)
        Threshold variable, e.g. a ``pm.Data`` variable.
    x_regime : tensor, shape (n_obs,)
        The one regressor whose slope changes (a column of ones is put first
        when the kernel has an intercept shift).
    lower_inclusive : bool, default True
        As given to :func:`prepare_threshold_kernel`.

    Returns
    -------
    ThresholdKernel
        A copy whose ``design``, ``gram`` and ``cross`` are tensors built from
        ``q`` and ``x_regime``; the grid, groups and prior are the kernel's.
        It is meant for the model graph (:func:`marginal_threshold_loglik`):
        a model whose ``q`` and ``x_regime`` are ``pm.Data`` then stays
        correct when new values are swapped in (``pm.set_data``, nutpie's
        ``CompiledModel.with_data``). The NumPy kernel is still what
        :func:`threshold_posterior` needs after sampling.

    Raises
    ------
    ModelError
        The kernel was prepared with fixed effects, kept rows or linear
        statistics, which this function does not rebuild.

    Notes
    -----
    For a pair ``a < b`` of a double threshold,
    ``1[q <= gamma_a] 1[q <= gamma_b] = 1[q <= gamma_a]``, so
    ``D_a' H_j D_b = D_a' H_j D_a``: the cross-product of a pair is the Gram
    matrix of its lower point, and no pair loop is needed in the graph.
    """
    if kernel.linear is not None or not np.all(kernel.row_weight == 1.0):
        raise ModelError(
            "tensor_kernel rebuilds only kernels prepared without fixed_effects, keep_rows, y "
            "or x_fixed. Fix: use the NumPy kernel for fixed-effects and coef-path models."
        )
    grid = pt.as_tensor_variable(kernel.grid)
    compare = pt.le if lower_inclusive else pt.lt
    lower = pt.cast(compare(q[None, :], grid[:, None]), "float64")  # (G, N)
    columns = [x_regime]
    if kernel.regressor_names and kernel.regressor_names[0] == "intercept":
        columns = [pt.ones_like(x_regime), x_regime]
    design = lower[:, :, None] * pt.stack(columns, axis=-1)[None, :, :]  # (G, N, k)
    outer = design[:, :, :, None] * design[:, :, None, :]  # (G, N, k, k)
    onehot = pt.as_tensor_variable(kernel.group_onehot)
    gram = pt.tensordot(outer, onehot, axes=[[1], [0]]).transpose(0, 3, 1, 2)  # (G, J, k, k)
    cross = None if kernel.pairs is None else gram[kernel.pairs[:, 0]]
    # The dataclass fields are typed as arrays, but here they hold tensors.
    return replace(kernel, design=design, gram=gram, cross=cross)  # type: ignore[arg-type]


def with_outcome(kernel: ThresholdKernel, y: np.ndarray, x_fixed: np.ndarray) -> ThresholdKernel:
    """Return a copy of a kernel with its ``linear`` cross-products for a new outcome.

    Parameters
    ----------
    kernel : ThresholdKernel
        From :func:`prepare_threshold_kernel` with ``y`` and ``x_fixed``.
    y : numpy.ndarray, shape (n_obs,)
        New outcome on the kernel's rows (within transformed when the kernel
        has fixed effects, after ``keep_rows``).
    x_fixed : numpy.ndarray, shape (n_obs, p)
        The same common-slope regressors the kernel was prepared with.

    Returns
    -------
    ThresholdKernel
        Same grid, designs, groups and prior; ``linear`` recomputed.

    Raises
    ------
    ModelError
        The kernel has no ``linear`` part, or ``y`` has another number of rows.
    """
    if kernel.linear is None:
        raise ModelError(
            "This threshold kernel was prepared without y and x_fixed, so it has no outcome "
            "cross-products to replace. Fix: prepare it with prepare_threshold_kernel(y=..., "
            "x_fixed=...)."
        )
    linear = _linear_statistics(kernel.design, kernel.group_onehot, y, x_fixed)
    return replace(kernel, linear=linear)


def _linear_statistics(
    design: np.ndarray, onehot: np.ndarray, y: np.ndarray, x_fixed: np.ndarray | None
) -> dict[str, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    if y.size != design.shape[1]:
        raise ModelError(f"y has {y.size} rows but the threshold design has {design.shape[1]}.")
    if x_fixed is None:
        x_fixed = np.zeros((y.size, 0))
    x_fixed = np.asarray(x_fixed, dtype=float)
    x_fixed = x_fixed[:, None] if x_fixed.ndim == 1 else x_fixed
    hy = onehot * y[:, None]  # (N, J)
    return {
        "yy": hy.T @ y,  # (J,)
        "xy": np.einsum("nj,np->jp", hy, x_fixed),  # (J, p)
        "xx": np.einsum("nj,np,nq->jpq", onehot, x_fixed, x_fixed),  # (J, p, p)
        "dy": np.einsum("gnk,nj->gjk", design, hy),  # (G, J, k)
        "dx": np.einsum("gnk,nj,np->gjkp", design, onehot, x_fixed, optimize=True),  # (G, J, k, p)
    }


# ---------------------------------------------------------------------------
# Log-likelihood over the grid (NumPy or PyTensor) and its marginal
# ---------------------------------------------------------------------------


def _is_tensor(*values: Any) -> bool:
    return any(isinstance(v, pt.TensorVariable) for v in values)


def _quad(matrix: Any, left: Any, right: Any) -> Any:
    """``left' M right`` over the last two axes, broadcasting leading axes."""
    return (matrix * left[..., :, None] * right[..., None, :]).sum(axis=(-1, -2))


def _residual_statistics(kernel: ThresholdKernel, resid: Any, coef: Any, xp: Any) -> tuple:
    """Return ``e'H_j e`` (J,) and ``D_g'H_j e`` (G, J, k) for the residual."""
    if (resid is None) == (coef is None):
        raise ModelError("Pass exactly one of resid (a residual vector) or coef.")
    if resid is not None:
        weighted = resid[:, None] * kernel.group_onehot  # (N, J)
        ee = (weighted * resid[:, None]).sum(axis=0)
        de = xp.tensordot(kernel.design, weighted, axes=[[1], [0]])  # (G, k, J)
        return ee, de.transpose(0, 2, 1)
    lin = kernel.linear
    if lin is None:
        raise ModelError(
            "This threshold kernel was prepared without y and x_fixed, so it needs a residual "
            "vector: pass resid=..., or rebuild it with "
            "prepare_threshold_kernel(y=..., x_fixed=...)."
        )
    # e = y - X b; e'e = y'y - 2 b'X'y + b'X'X b and D'e = D'y - D'X b.
    ee = lin["yy"] - 2.0 * (lin["xy"] * coef).sum(axis=-1) + _quad(lin["xx"], coef, coef)
    de = lin["dy"] - (lin["dx"] * coef).sum(axis=-1)
    return ee, de


def threshold_loglik_grid(
    kernel: ThresholdKernel,
    delta: Any,
    sigma: Any,
    *,
    resid: Any = None,
    coef: Any = None,
) -> Any:
    """Compute the Gaussian log-likelihood at every grid point (or pair) and group.

    Works on NumPy arrays and on PyTensor tensors (the output type follows the
    inputs).

    Parameters
    ----------
    kernel : ThresholdKernel
        From :func:`prepare_threshold_kernel`.
    delta : array_like or tensor
        Slope change of the regime design: for one threshold shape (k,) or
        (n_groups, k), the lower regime's slopes minus the upper regime's;
        for two thresholds shape (2, k) or (2, n_groups, k), row 0 the change
        at the lower threshold (``beta_low - beta_middle``) and row 1 at the
        upper one (``beta_middle - beta_high``).
    sigma : float, array or tensor
        Residual standard deviation, scalar or (n_groups,).
    resid : array or tensor, shape (n_obs,), optional
        ``y - X b - x_regime beta_high`` (within transformed with fixed
        effects). Exactly one of ``resid`` and ``coef``.
    coef : array or tensor, shape (p,), optional
        Coefficients on the kernel's ``x_fixed`` (which then must contain
        ``x_regime`` for ``beta_high``).

    Returns
    -------
    array or tensor, shape (n_grid, n_groups) or (n_pairs, n_groups)
        ``l_g`` per group, including ``-n_effective / 2 * log(2 pi sigma^2)``.
    """
    xp = pt if _is_tensor(delta, sigma, resid, coef) else np
    if xp is np:
        delta = np.asarray(delta, dtype=float)
        sigma = np.asarray(sigma, dtype=float)
        resid = None if resid is None else np.asarray(resid, dtype=float)
        coef = None if coef is None else np.asarray(coef, dtype=float)
    else:
        delta = pt.as_tensor_variable(delta)
        sigma = pt.as_tensor_variable(sigma)
    ee, de = _residual_statistics(kernel, resid, coef, xp)

    if kernel.n_thresholds == 1:
        d1 = delta if delta.ndim == 2 else delta[None, :]  # (J or 1, k)
        ssr = (
            ee[None, :]
            - 2.0 * (de * d1[None]).sum(axis=-1)
            + _quad(kernel.gram, d1[None], d1[None])
        )
    else:
        d_low = delta[0] if delta.ndim == 3 else delta[0][None, :]
        d_up = delta[1] if delta.ndim == 3 else delta[1][None, :]
        a, b = kernel.pairs[:, 0], kernel.pairs[:, 1]
        ssr = (
            ee[None, :]
            - 2.0 * (de[a] * d_low[None]).sum(axis=-1)
            - 2.0 * (de[b] * d_up[None]).sum(axis=-1)
            + _quad(kernel.gram[a], d_low[None], d_low[None])
            + _quad(kernel.gram[b], d_up[None], d_up[None])
            + 2.0 * _quad(kernel.cross, d_low[None], d_up[None])
        )
    variance = sigma**2
    norm = -0.5 * kernel.n_effective * xp.log(2.0 * np.pi * variance)
    return norm - ssr / (2.0 * variance)


def marginal_threshold_loglik(
    kernel: ThresholdKernel,
    delta: Any,
    sigma: Any,
    *,
    resid: Any = None,
    coef: Any = None,
) -> pt.TensorVariable:
    """Sum the threshold out of the Gaussian likelihood exactly (PyTensor).

    Parameters
    ----------
    kernel, delta, sigma, resid, coef
        As in :func:`threshold_loglik_grid`.

    Returns
    -------
    pytensor.tensor.TensorVariable
        Scalar ``sum_j logsumexp_g (l_gj + log p(gamma_g))``; add it to a model
        with ``pm.Potential``.

    Notes
    -----
    Every regime indicator is fixed within ``l_g``, so the sum is smooth in
    the parameters and NUTS can sample them; the threshold itself is recovered
    afterwards by :func:`threshold_posterior`. With province thresholds the
    groups are independent given the parameters, so the marginal factorises:
    ``sum_j logsumexp_g``. Hansen (1999) restricts the least-squares search to
    such a grid; the Bayesian sum over a grid follows the same discretisation.
    """
    delta = pt.as_tensor_variable(delta)
    sigma = pt.as_tensor_variable(sigma)
    resid = None if resid is None else pt.as_tensor_variable(resid)
    coef = None if coef is None else pt.as_tensor_variable(coef)
    loglik = threshold_loglik_grid(kernel, delta, sigma, resid=resid, coef=coef)
    log_prior = pt.as_tensor_variable(kernel.log_prior)[:, None]
    return pt.logsumexp(loglik + log_prior, axis=0).sum()


# ---------------------------------------------------------------------------
# Posterior of the threshold (Rao-Blackwellised) and pointwise log-likelihood
# ---------------------------------------------------------------------------


def _flatten_draws(value: Any, n_sample_dims: int) -> tuple[np.ndarray, tuple[int, ...]]:
    array = np.asarray(value, dtype=float)
    lead = array.shape[:n_sample_dims]
    return array.reshape((int(np.prod(lead)),) + array.shape[n_sample_dims:]), lead


def threshold_posterior(
    kernel: ThresholdKernel,
    delta: np.ndarray,
    sigma: np.ndarray,
    *,
    resid: np.ndarray | None = None,
    coef: np.ndarray | None = None,
    seed: int | np.random.Generator | None = None,
    group_dim: str = "province",
    group_coords: Any = None,
) -> xr.Dataset:
    """Recover the posterior of the threshold on the grid from parameter draws.

    Parameters
    ----------
    kernel : ThresholdKernel
        The kernel the model was built with.
    delta, sigma, resid, coef : numpy.ndarray
        Posterior draws with leading dims ``(chain, draw)``, then the shapes of
        :func:`threshold_loglik_grid`.
    seed : int or numpy.random.Generator, optional
        Seed for the per-draw threshold draws.
    group_dim : str, default "province"
        Dim name of the threshold groups when thresholds vary by group.
    group_coords : sequence, optional
        Coordinates of ``group_dim``; defaults to 0..n_groups-1.

    Returns
    -------
    xarray.Dataset
        One threshold: ``gamma_prob`` (threshold_grid), the Rao-Blackwellised
        posterior ``mean_s P(gamma = gamma_g | theta_s, y)``; ``gamma`` and
        ``gamma_index`` (chain, draw), one draw per posterior draw. Two
        thresholds: ``gamma_prob_lower``, ``gamma_prob_upper`` (marginals of
        the pair posterior), ``gamma_lower``, ``gamma_upper`` and their
        indices. With groups every variable gains ``group_dim``.

    Notes
    -----
    For each draw ``theta_s`` the conditional posterior of the threshold is
    ``P(g | theta_s, y) = softmax_g(l_g(theta_s) + log p(gamma_g))``. Its mean
    over draws estimates ``P(g | y)`` with less Monte Carlo error than the
    histogram of sampled thresholds (Rao-Blackwellisation), and sampling ``g``
    from it gives exact joint draws of ``(theta, gamma)``.
    """
    rng = np.random.default_rng(seed)
    is_coef = coef is not None
    data = coef if is_coef else resid
    if data is None:
        raise ModelError("Pass posterior draws of resid or coef to threshold_posterior.")
    data_flat, lead = _flatten_draws(data, 2)
    delta_flat, _ = _flatten_draws(delta, 2)
    sigma_flat, _ = _flatten_draws(sigma, 2)
    n_draws = data_flat.shape[0]
    n_support, n_groups = kernel.n_support, kernel.n_groups

    prob_sum = np.zeros((n_support, n_groups))
    sampled = np.empty((n_draws, n_groups), dtype=int)
    for s in range(n_draws):
        kwargs = {"coef": data_flat[s]} if is_coef else {"resid": data_flat[s]}
        loglik = threshold_loglik_grid(kernel, delta_flat[s], sigma_flat[s], **kwargs)
        log_post = loglik + kernel.log_prior[:, None]
        prob = np.exp(log_post - np_logsumexp(log_post, axis=0, keepdims=True))
        prob_sum += prob
        cumulative = np.cumsum(prob, axis=0)
        u = rng.random(n_groups) * cumulative[-1]
        sampled[s] = [np.searchsorted(cumulative[:, j], u[j]) for j in range(n_groups)]
    prob_mean = prob_sum / n_draws
    sampled = np.minimum(sampled, n_support - 1).reshape(lead + (n_groups,))

    grid = kernel.grid
    coords: dict[str, Any] = {"threshold_grid": grid}
    sample_dims = ["chain", "draw"]
    grouped = n_groups > 1
    if grouped:
        coords[group_dim] = list(group_coords) if group_coords is not None else np.arange(n_groups)

    def _prob(values: np.ndarray) -> xr.DataArray:
        array = values.T if grouped else values[:, 0]
        dims = [group_dim, "threshold_grid"] if grouped else ["threshold_grid"]
        return xr.DataArray(array, dims=dims)

    def _draws(index: np.ndarray) -> tuple[xr.DataArray, xr.DataArray]:
        dims = sample_dims + ([group_dim] if grouped else [])
        index = index if grouped else index[..., 0]
        return xr.DataArray(grid[index], dims=dims), xr.DataArray(index, dims=dims)

    out: dict[str, xr.DataArray] = {}
    if kernel.n_thresholds == 1:
        out["gamma_prob"] = _prob(prob_mean)
        out["gamma"], out["gamma_index"] = _draws(sampled)
    else:
        a, b = kernel.pairs[:, 0], kernel.pairs[:, 1]
        lower = np.zeros((grid.size, n_groups))
        upper = np.zeros((grid.size, n_groups))
        np.add.at(lower, a, prob_mean)
        np.add.at(upper, b, prob_mean)
        out["gamma_prob_lower"] = _prob(lower)
        out["gamma_prob_upper"] = _prob(upper)
        out["gamma_lower"], out["gamma_lower_index"] = _draws(a[sampled])
        out["gamma_upper"], out["gamma_upper_index"] = _draws(b[sampled])
        out["pair_index"] = xr.DataArray(
            sampled if grouped else sampled[..., 0],
            dims=sample_dims + ([group_dim] if grouped else []),
        )
    return xr.Dataset(out, coords=coords)


def conditional_pointwise_loglik(
    kernel: ThresholdKernel,
    resid: np.ndarray,
    delta: np.ndarray,
    sigma: np.ndarray,
    support_index: np.ndarray,
) -> np.ndarray:
    """Compute per-row log-likelihoods at the threshold drawn for each posterior draw.

    Parameters
    ----------
    kernel : ThresholdKernel
        The model's kernel.
    resid : numpy.ndarray, shape (chain, draw, n_obs)
        ``y - X b - x_regime beta_high`` per draw.
    delta, sigma : numpy.ndarray
        Draws as in :func:`threshold_posterior`.
    support_index : numpy.ndarray of int, shape (chain, draw) or (chain, draw, n_groups)
        The sampled grid index (single) or pair index (double), e.g.
        ``gamma_index`` or ``pair_index`` from :func:`threshold_posterior`.

    Returns
    -------
    numpy.ndarray, shape (chain, draw, n_obs)
        ``log N(r_i | 0, sigma)`` with ``r_i`` the residual under the drawn
        regimes; with fixed effects each row carries the share
        ``(T_i - 1) / T_i`` of the normalising term and ``-log(T_i) / (2 T_i)``
        so that rows of a unit sum to the unit's fixed-effect-integrated
        log-likelihood.

    Notes
    -----
    Given ``(theta, gamma)`` the likelihood factorises over rows (over units
    with fixed effects), and ``(theta_s, gamma_s)`` are joint posterior draws,
    so these values are the usual pointwise log-likelihood of the model with
    ``gamma`` as a parameter and PSIS-LOO applies to them. The per-row
    marginal over ``gamma`` does not factorise, which is why it is not stored.
    """
    resid_flat, lead = _flatten_draws(resid, 2)
    delta_flat, _ = _flatten_draws(delta, 2)
    sigma_flat, _ = _flatten_draws(sigma, 2)
    index = np.asarray(support_index).reshape(resid_flat.shape[0], -1)
    codes = kernel.group_codes
    rows = np.arange(codes.size)
    out = np.empty_like(resid_flat)
    for s in range(resid_flat.shape[0]):
        chosen = index[s][codes]  # support point of each row's group
        delta_s = delta_flat[s]
        sigma_rows = np.broadcast_to(sigma_flat[s], (kernel.n_groups,))[codes]
        if kernel.n_thresholds == 1:
            d = delta_s[codes] if delta_s.ndim == 2 else delta_s[None, :]
            fitted = (kernel.design[chosen, rows] * d).sum(axis=-1)
        else:
            d_low = delta_s[0][codes] if delta_s.ndim == 3 else delta_s[0][None, :]
            d_up = delta_s[1][codes] if delta_s.ndim == 3 else delta_s[1][None, :]
            a, b = kernel.pairs[chosen, 0], kernel.pairs[chosen, 1]
            fitted = (kernel.design[a, rows] * d_low).sum(-1) + (kernel.design[b, rows] * d_up).sum(
                -1
            )
        r = resid_flat[s] - fitted
        variance = sigma_rows**2
        out[s] = (
            -0.5 * kernel.row_weight * np.log(2 * np.pi * variance)
            + kernel.row_constant
            - r**2 / (2 * variance)
        )
    return out.reshape(lead + (codes.size,))


# ---------------------------------------------------------------------------
# Hansen (1999) least-squares search for fixed-effects panels
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LSThresholdResult:
    """Least-squares threshold estimates of a (panel) threshold regression.

    Attributes
    ----------
    thresholds : numpy.ndarray, shape (n_thresholds,)
        Estimated thresholds, increasing.
    ssr : float
        Sum of squared residuals at the estimates.
    sigma2 : float
        ``ssr / (n_used - n_units - n_params)``, the residual variance behind
        the homoskedastic standard errors. With ``drop_last`` this subtracts
        the units twice (once by dropping rows); it is kept so because it
        reproduces the reference standard errors of the Hansen (1999) data.
    n_used : int
        Rows entering the least-squares fit (after dropping last periods).
    regime_coef, regime_se_ols, regime_se_white : numpy.ndarray, shape (n_regimes, k)
        Slopes of ``x_regime`` by regime (row 0 = lowest ``q``) with the
        homoskedastic and White (HC0) standard errors.
    fixed_coef, fixed_se_ols, fixed_se_white : numpy.ndarray, shape (p,)
        Coefficients of ``x_fixed``.
    regime_share : numpy.ndarray, shape (n_regimes,)
        Share of all input rows in each regime.
    grid : numpy.ndarray
        The grid searched.
    ssr_single : numpy.ndarray, shape (n_grid,)
        SSR of the single-threshold model at each grid point.
    ssr_second, ssr_refine : numpy.ndarray or None, shape (n_grid,)
        Double threshold: SSR over the second threshold given the first, and
        over the first given the second (refinement); ``inf`` where a point
        coincides with the fixed threshold.
    single_threshold : float
        The single-threshold estimate (the first step of the sequential search).
    """

    thresholds: np.ndarray
    ssr: float
    sigma2: float
    n_used: int
    regime_coef: np.ndarray
    regime_se_ols: np.ndarray
    regime_se_white: np.ndarray
    fixed_coef: np.ndarray
    fixed_se_ols: np.ndarray
    fixed_se_white: np.ndarray
    regime_share: np.ndarray
    grid: np.ndarray
    ssr_single: np.ndarray
    ssr_second: np.ndarray | None
    ssr_refine: np.ndarray | None
    single_threshold: float


def last_period_mask(fixed_effects: np.ndarray, time: np.ndarray | None) -> np.ndarray:
    """Mark every row except the last period of each unit (True = keep).

    Parameters
    ----------
    fixed_effects : array_like, shape (n_obs,)
        Unit of each row.
    time : array_like or None
        Period of each row; the row order within a unit if None.

    Returns
    -------
    numpy.ndarray of bool, shape (n_obs,)
    """
    codes, n_units = _group_codes(fixed_effects)
    order = np.arange(codes.size) if time is None else np.asarray(time)
    keep = np.ones(codes.size, dtype=bool)
    # Sort by unit, then time, and mark each unit's final row.
    sorter = np.lexsort((order, codes))
    last = np.r_[codes[sorter][1:] != codes[sorter][:-1], True]
    keep[sorter[last]] = False
    return keep


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    coef, _, _, _ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    return coef, float(resid @ resid)


def _regime_columns(lower_design: np.ndarray, x_t: np.ndarray, indices: list[int]) -> np.ndarray:
    """Return the regime-specific copies of ``x`` for sorted grid indices.

    Regime ``r`` covers ``(gamma_{r-1}, gamma_r]``, so its columns are the
    lower design at ``gamma_r`` minus the lower design at ``gamma_{r-1}``.
    """
    parts = [lower_design[i] for i in sorted(indices)] + [x_t]
    blocks = [parts[0]] + [parts[r] - parts[r - 1] for r in range(1, len(parts))]
    return np.column_stack(blocks)


class _SSRSearch:
    """SSR of many threshold designs from one set of cross-products.

    The controls are partialled out once (Frisch-Waugh-Lovell, via a QR
    decomposition), then the SSR at thresholds ``(a, b, ...)`` is computed from
    ``Z'Z`` for ``Z = [y, x, D_0, ..., D_{G-1}]``. The regime columns at
    ``(a, b)`` span the same space as ``[D_a, D_b, x]``, so only blocks of
    ``Z'Z`` are needed and each SSR costs a small linear solve.
    """

    def __init__(self, y: np.ndarray, x_fixed: np.ndarray, x: np.ndarray, lower: np.ndarray):
        n_grid, n_rows, k = lower.shape
        columns = np.column_stack([y, x, lower.transpose(1, 0, 2).reshape(n_rows, n_grid * k)])
        if x_fixed.shape[1] > 0:
            basis, _ = np.linalg.qr(x_fixed)
            columns = columns - basis @ (basis.T @ columns)
        self.cross = columns.T @ columns
        self.k = k

    def ssr(self, indices: np.ndarray) -> np.ndarray:
        """Return the SSR for each row of grid indices (shape (n, n_thresholds))."""
        k = self.k
        offsets = np.arange(k)
        n = indices.shape[0]
        # Column selection per row: x first, then the block of each threshold.
        blocks = [np.broadcast_to(1 + offsets, (n, k))]
        blocks += [1 + k + index[:, None] * k + offsets[None, :] for index in indices.T]
        cols = np.column_stack(blocks)
        xtx = self.cross[cols[:, :, None], cols[:, None, :]]
        xty = self.cross[cols, 0]
        out = np.full(indices.shape[0], np.inf)
        for row in range(indices.shape[0]):
            try:
                solution = np.linalg.solve(xtx[row], xty[row])
            except np.linalg.LinAlgError:
                continue
            out[row] = self.cross[0, 0] - xty[row] @ solution
        return out


def fit_threshold_ls(
    y: np.ndarray,
    x_regime: np.ndarray,
    q: np.ndarray,
    *,
    x_fixed: np.ndarray | None = None,
    fixed_effects: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    n_thresholds: int = 1,
    lower_inclusive: bool = True,
    drop_last: bool = False,
    time: np.ndarray | None = None,
) -> LSThresholdResult:
    """Estimate one or two thresholds by least squares (Hansen 1999).

    Parameters
    ----------
    y : array_like, shape (n_obs,)
        Dependent variable.
    x_regime : array_like, shape (n_obs,) or (n_obs, k)
        Regressors with regime-dependent slopes.
    q : array_like, shape (n_obs,)
        Threshold variable.
    x_fixed : array_like or None, shape (n_obs, p)
        Regressors with common slopes (controls).
    fixed_effects : array_like or None, shape (n_obs,)
        Unit of each row; all variables are within transformed by unit. Without
        it an intercept is added to ``x_fixed``.
    grid : array_like or None
        Candidate thresholds; default ``threshold_grid(q)``.
    n_thresholds : {1, 2}
        Single threshold, or Hansen's sequential double-threshold search.
    lower_inclusive : bool, default True
        Regime 1 is ``q <= gamma``; Hansen's code uses ``q < gamma`` (False).
    drop_last : bool, default False
        After the within transform, drop each unit's last period before the
        fit, as Hansen's code does (the within-transformed rows of a unit sum
        to zero, so one of them is redundant). Requires ``fixed_effects``.
    time : array_like or None
        Period of each row for ``drop_last``; row order within unit if None.

    Returns
    -------
    LSThresholdResult

    Raises
    ------
    ModelError
        Invalid option combination or shapes.

    Notes
    -----
    For a threshold ``gamma`` the model is ``y_it = mu_i + x_fixed_it' b +
    x_regime_it' beta_r + e_it`` with ``r`` the regime of ``q_it``. After the
    within transform, ``S(gamma)`` is the OLS sum of squared residuals, and
    ``gamma_hat = argmin_grid S(gamma)`` (Hansen 1999, eq. 10). The double
    threshold is found sequentially (Hansen 1999, section 4): fix the single
    estimate ``gamma_1``, minimise ``S(gamma_1, gamma_2)`` over ``gamma_2``, then
    refine ``gamma_1`` with ``gamma_2`` fixed. Standard errors: homoskedastic
    with ``sigma2`` as in :class:`LSThresholdResult`, and White (HC0)
    heteroskedasticity-robust. Hansen (2000) gives the least-squares
    threshold estimator and its likelihood-ratio inference.
    """
    y = np.asarray(y, dtype=float).ravel()
    q = np.asarray(q, dtype=float).ravel()
    n_obs = y.size
    x = np.asarray(x_regime, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    if x_fixed is None:
        xf = np.zeros((n_obs, 0))
    else:
        xf = np.asarray(x_fixed, dtype=float)
        xf = xf[:, None] if xf.ndim == 1 else xf
    if not (x.shape[0] == q.size == xf.shape[0] == n_obs):
        raise ModelError(
            f"Row counts differ: y {n_obs}, x_regime {x.shape[0]}, q {q.size}, "
            f"x_fixed {xf.shape[0]}; pass all arrays for the same rows."
        )
    if n_thresholds not in (1, 2):
        raise ModelError(f"n_thresholds is {n_thresholds}; use 1 or 2.")
    if drop_last and fixed_effects is None:
        raise ModelError("drop_last=True needs fixed_effects (the unit of every row).")
    grid = threshold_grid(q) if grid is None else np.asarray(grid, dtype=float).ravel()

    if fixed_effects is None:
        xf = np.column_stack([np.ones(n_obs), xf])
        keep = np.ones(n_obs, dtype=bool)

        def transform(values: np.ndarray, axis: int = 0) -> np.ndarray:
            return values
    else:
        keep = last_period_mask(fixed_effects, time) if drop_last else np.ones(n_obs, dtype=bool)

        def transform(values: np.ndarray, axis: int = 0) -> np.ndarray:
            return within_transform(values, fixed_effects, axis=axis)

    y_t = transform(y)[keep]
    xf_t = transform(xf)[keep]
    x_t = transform(x)[keep]
    lower = _lower_indicator(q, grid, lower_inclusive)
    lower_design = transform(lower[:, :, None] * x[None], axis=1)[:, keep]  # (G, n_used, k)
    n_used = int(keep.sum())

    search = _SSRSearch(y_t, xf_t, x_t, lower_design)
    ssr_single = search.ssr(np.arange(grid.size)[:, None])
    first = int(np.argmin(ssr_single))
    chosen = [first]
    ssr_second = ssr_refine = None
    if n_thresholds == 2:
        others = np.arange(grid.size)
        ssr_second = search.ssr(np.column_stack([np.full(grid.size, first), others]))
        ssr_second[first] = np.inf
        second = int(np.argmin(ssr_second))
        ssr_refine = search.ssr(np.column_stack([others, np.full(grid.size, second)]))
        ssr_refine[second] = np.inf
        refined = int(np.argmin(ssr_refine))
        chosen = sorted([refined, second])
        logger.debug(
            "Threshold search: single %.6g, second %.6g, refined first %.6g",
            grid[first],
            grid[second],
            grid[refined],
        )

    design = np.column_stack([xf_t, _regime_columns(lower_design, x_t, chosen)])
    coef, ssr = _ols(y_t, design)
    resid = y_t - design @ coef
    xtx_inv = np.linalg.inv(design.T @ design)
    n_units = 0 if fixed_effects is None else _group_codes(fixed_effects)[1]
    dof = n_used - n_units - design.shape[1]
    sigma2 = ssr / dof
    se_ols = np.sqrt(np.diag(xtx_inv) * sigma2)
    meat = (design * resid[:, None] ** 2).T @ design
    se_white = np.sqrt(np.diag(xtx_inv @ meat @ xtx_inv))

    p, k = xf_t.shape[1], x.shape[1]
    n_regimes = len(chosen) + 1
    shape = (n_regimes, k)
    regimes = regime_index(q, grid[chosen], lower_inclusive)
    return LSThresholdResult(
        thresholds=grid[chosen],
        ssr=ssr,
        sigma2=sigma2,
        n_used=n_used,
        regime_coef=coef[p:].reshape(shape),
        regime_se_ols=se_ols[p:].reshape(shape),
        regime_se_white=se_white[p:].reshape(shape),
        fixed_coef=coef[:p],
        fixed_se_ols=se_ols[:p],
        fixed_se_white=se_white[:p],
        regime_share=np.bincount(regimes, minlength=n_regimes) / n_obs,
        grid=grid,
        ssr_single=ssr_single,
        ssr_second=ssr_second,
        ssr_refine=ssr_refine,
        single_threshold=float(grid[first]),
    )
