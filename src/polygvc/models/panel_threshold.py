"""Bayesian fixed-effects panel threshold model (single or double threshold).

The model is Hansen's (1999) panel threshold regression

    y_it = mu_i + x_it' b + z_it beta_r + e_it,    e_it ~ N(0, sigma^2),

where ``r`` is the regime of the threshold variable ``q_it`` (``r = 0`` below
the lowest threshold; a higher ``r`` means a higher ``q``) and ``z`` is the one
regressor whose slope changes across regimes. The thresholds live on a grid
and are summed out exactly by :func:`polygvc.models.threshold.marginal_threshold_loglik`;
their posterior is recovered after sampling by :func:`panel_threshold_posterior`.

Fixed effects. With a flat prior on each ``mu_i`` and Gaussian errors,
integrating ``mu_i`` out gives, for unit ``i`` with ``T_i`` rows,

    (2 pi sigma^2)^{-(T_i - 1)/2} T_i^{-1/2} exp(-SSR_within,i / (2 sigma^2)),

so the within transform is exact for ``b``, ``beta`` and ``sigma``: the model
uses the within-transformed data with ``sum_i (T_i - 1)`` degrees of freedom
in the Gaussian normalising term (not ``n_obs``); this is the default.
Hansen's code instead deletes each unit's last period after the within
transform and treats the other rows as independent; ``drop_last=True`` in
:func:`prepare_panel_threshold` reproduces that quasi-likelihood.

Variables (model coords ``covariate``, ``regime``, ``threshold_grid``):
``beta_scaled`` (covariate), ``beta_regime_scaled`` (regime) and
``sigma_scaled`` are sampled on the scaled data (each within-transformed
variable divided by its sd); ``beta``, ``beta_regime`` and ``sigma`` are the
same in original units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from polygvc.errors import ConfigError, DataError, ModelError
from polygvc.models.priors import Prior, check_prior_name
from polygvc.models.threshold import (
    REGIME_NAMES,
    ThresholdKernel,
    conditional_pointwise_loglik,
    last_period_mask,
    marginal_threshold_loglik,
    prepare_threshold_kernel,
    threshold_grid,
    threshold_posterior,
    with_outcome,
    within_transform,
)

# Weak priors on the scaled data: a one-sd change in a within-transformed
# regressor moving y by 2.5 within-sd is already an extreme effect.
PANEL_THRESHOLD_PRIORS: dict[str, Prior] = {
    "beta_scaled": Prior("Normal", name="beta_scaled", mu=0.0, sigma=2.5),
    "beta_regime_scaled": Prior("Normal", name="beta_regime_scaled", mu=0.0, sigma=2.5),
    "sigma_scaled": Prior("HalfNormal", name="sigma_scaled", sigma=1.0),
}

__all__ = [
    "PANEL_THRESHOLD_PRIORS",
    "PanelThresholdData",
    "build_panel_threshold_model",
    "OUTCOME_STATISTICS",
    "panel_outcome_values",
    "panel_pointwise_loglik",
    "panel_threshold_posterior",
    "prepare_panel_threshold",
    "with_outcome_data",
]

# Kernel cross-products that depend on the outcome; the model reads them as pm.Data.
OUTCOME_STATISTICS = ("yy", "xy", "dy")


@dataclass(frozen=True)
class PanelThresholdData:
    """Within-transformed, scaled panel arrays and the threshold kernel.

    Attributes
    ----------
    y : numpy.ndarray, shape (n_obs,)
        Within-transformed dependent variable divided by ``y_scale``.
    x_fixed : numpy.ndarray, shape (n_obs, p)
        Within-transformed controls, each divided by its ``x_scale``.
    z : numpy.ndarray, shape (n_obs,)
        Within-transformed regime-dependent regressor divided by ``z_scale``.
    kernel : ThresholdKernel
        Built on the scaled ``z`` with ``y`` and ``[x_fixed, z]`` as linear part.
    y_scale, z_scale : float
        Standard deviations used for scaling.
    x_scale : numpy.ndarray, shape (p,)
    controls : tuple of str
    regime_var, threshold_var, dependent, unit : str
    n_units : int
    """

    y: np.ndarray
    x_fixed: np.ndarray
    z: np.ndarray
    kernel: ThresholdKernel
    y_scale: float
    x_scale: np.ndarray
    z_scale: float
    controls: tuple[str, ...]
    regime_var: str
    threshold_var: str
    dependent: str
    unit: str
    n_units: int

    @property
    def regimes(self) -> tuple[str, ...]:
        """Regime labels, lowest threshold variable first."""
        return REGIME_NAMES[self.kernel.n_thresholds]


def prepare_panel_threshold(
    df: pd.DataFrame,
    *,
    dependent: str,
    regime_var: str,
    threshold_var: str,
    controls: Sequence[str],
    unit: str,
    grid: np.ndarray | None = None,
    n_thresholds: int = 1,
    min_gap: int = 1,
    lower_inclusive: bool = True,
    drop_last: bool = False,
    time: str | None = None,
) -> PanelThresholdData:
    """Within transform and scale a panel and precompute its threshold kernel.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit and period.
    dependent, regime_var, threshold_var : str
        Columns of the outcome, the regressor with regime-dependent slope, and
        the threshold variable.
    controls : sequence of str
        Columns with common slopes.
    unit : str
        Column of the fixed-effect unit.
    grid : array_like or None
        Candidate thresholds; default ``threshold_grid(q)`` (50 quantiles
        between the 15% and 85% quantiles).
    n_thresholds : {1, 2}
    min_gap : int, default 1
        Minimum grid steps between two thresholds.
    lower_inclusive : bool, default True
        The low regime is ``q <= gamma`` (True) or ``q < gamma`` (Hansen's code).
    drop_last : bool, default False
        Delete each unit's last period after the within transform and treat
        the remaining rows as independent, as Hansen's code does. This is a
        quasi-likelihood (the within-transformed rows of a unit are
        correlated); the default keeps every row and uses the exact
        fixed-effect-integrated likelihood.
    time : str or None
        Column ordering periods for ``drop_last``; row order if None.

    Returns
    -------
    PanelThresholdData

    Raises
    ------
    DataError
        A named column is missing or has missing values, or a variable has no
        within-unit variation.
    """
    columns = [dependent, regime_var, threshold_var, unit, *controls]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"Panel threshold data lack column(s) {missing}; available: {list(df.columns)}."
        )
    na_counts = df[columns].isna().sum()
    if na_counts.any():
        bad = {k: int(v) for k, v in na_counts.items() if v}
        raise DataError(
            f"Panel threshold data have missing values {bad} (column: rows); "
            "drop those rows before fitting."
        )
    units = df[unit].to_numpy()
    q = df[threshold_var].to_numpy(float)
    grid = threshold_grid(q, name=threshold_var) if grid is None else np.asarray(grid, float)

    def scaled(values: np.ndarray, name: str) -> tuple[np.ndarray, float]:
        within = within_transform(values, units)
        scale = float(np.std(within))
        if scale == 0.0:
            raise DataError(
                f"Column '{name}' does not vary within any '{unit}'; its slope is not "
                "identified with unit fixed effects. Drop it from the model."
            )
        return within / scale, scale

    y, y_scale = scaled(df[dependent].to_numpy(float), dependent)
    z, z_scale = scaled(df[regime_var].to_numpy(float), regime_var)
    x_cols, x_scale = [], []
    for name in controls:
        col, scale = scaled(df[name].to_numpy(float), name)
        x_cols.append(col)
        x_scale.append(scale)
    x_fixed = np.column_stack(x_cols) if x_cols else np.zeros((y.size, 0))
    keep = None
    if drop_last:
        keep = last_period_mask(units, None if time is None else df[time].to_numpy())
        y, z, x_fixed = y[keep], z[keep], x_fixed[keep]

    # The kernel's design is built from the untransformed, scaled z and within
    # transformed per grid point; its linear part is [controls, z] with the
    # high-regime slope on z.
    raw_z = df[regime_var].to_numpy(float) / z_scale
    kernel = prepare_threshold_kernel(
        q,
        raw_z,
        grid,
        n_thresholds=n_thresholds,
        min_gap=min_gap,
        lower_inclusive=lower_inclusive,
        fixed_effects=units,
        y=y,
        x_fixed=np.column_stack([x_fixed, z]),
        regressor_names=(regime_var,),
        keep_rows=keep,
    )
    return PanelThresholdData(
        y=y,
        x_fixed=x_fixed,
        z=z,
        kernel=kernel,
        y_scale=y_scale,
        x_scale=np.asarray(x_scale),
        z_scale=z_scale,
        controls=tuple(controls),
        regime_var=regime_var,
        threshold_var=threshold_var,
        dependent=dependent,
        unit=unit,
        n_units=int(pd.unique(units).size),
    )


def _resolve_priors(overrides: Mapping[str, Any] | None) -> dict[str, Prior]:
    priors = dict(PANEL_THRESHOLD_PRIORS)
    for name, value in (overrides or {}).items():
        check_prior_name(name, PANEL_THRESHOLD_PRIORS, "panel threshold")
        prior = value if isinstance(value, Prior) else Prior(**dict(value), name=name)
        priors[name] = prior
    if not priors["sigma_scaled"].positive:
        raise ConfigError(
            f"Prior for 'sigma_scaled' is {priors['sigma_scaled']}, which allows negative values; "
            "use a positive distribution such as HalfNormal."
        )
    return priors


def build_panel_threshold_model(
    data: PanelThresholdData, priors: Mapping[str, Any] | None = None
) -> pm.Model:
    """Build the PyMC model with the threshold summed out over its grid.

    Parameters
    ----------
    data : PanelThresholdData
        From :func:`prepare_panel_threshold`.
    priors : mapping, optional
        Overrides of :data:`PANEL_THRESHOLD_PRIORS` by name (a ``Prior`` or
        ``{"dist": ..., **params}``).

    Returns
    -------
    pymc.Model
        Free variables ``beta_scaled``, ``beta_regime_scaled``,
        ``sigma_scaled``; deterministics in original units ``beta``,
        ``beta_regime``, ``sigma``; the potential
        ``threshold_marginal_loglik``. The outcome enters only through the
        ``pm.Data`` variables ``panel_yy``, ``panel_xy`` and ``panel_dy``
        (see :func:`panel_outcome_values`).

    Raises
    ------
    ConfigError
        Unknown prior name or a non-positive prior on ``sigma_scaled``.

    Notes
    -----
    With ``delta_r = beta_regime[r] - beta_regime[r + 1]`` the linear predictor
    is ``X b + z beta_high + sum_r D_r delta_r`` with ``D_r`` the within
    transformed ``z * 1[q <= gamma_r]``. The potential is
    ``logsumexp_g (l_g + log p(gamma_g))`` with a uniform prior over the grid
    (or over ordered pairs for two thresholds). Hansen (1999) is the source of
    the model; the grid sum follows the same discretisation as his search.
    """
    resolved = _resolve_priors(priors)
    kernel = data.kernel
    coords = {
        "covariate": list(data.controls),
        "regime": list(data.regimes),
        "threshold_grid": kernel.grid,
    }
    with pm.Model(coords=coords) as model:
        beta_s = resolved["beta_scaled"].create("beta_scaled", dims="covariate")
        beta_regime_s = resolved["beta_regime_scaled"].create("beta_regime_scaled", dims="regime")
        sigma_s = resolved["sigma_scaled"].create("sigma_scaled")

        # The outcome's cross-products are pm.Data, so a compiled model can be
        # refitted on a new outcome (panel_outcome_values) without rebuilding.
        linear = dict(kernel.linear)
        for key in OUTCOME_STATISTICS:
            linear[key] = pm.Data(f"panel_{key}", kernel.linear[key])
        coef = pt.concatenate([beta_s, beta_regime_s[-1:]])
        # One regime-dependent column, so delta has shape (k=1,) or (2, 1).
        steps = beta_regime_s[:-1] - beta_regime_s[1:]
        delta = steps if kernel.n_thresholds == 1 else steps[:, None]
        pm.Potential(
            "threshold_marginal_loglik",
            marginal_threshold_loglik(replace(kernel, linear=linear), delta, sigma_s, coef=coef),
        )

        pm.Deterministic("beta", beta_s * data.y_scale / data.x_scale, dims="covariate")
        pm.Deterministic("beta_regime", beta_regime_s * data.y_scale / data.z_scale, dims="regime")
        pm.Deterministic("sigma", sigma_s * data.y_scale)
    return model


def panel_outcome_values(data: PanelThresholdData, y: np.ndarray) -> dict[str, np.ndarray]:
    """Return the ``pm.Data`` values of the model for a new outcome on the same design.

    Parameters
    ----------
    data : PanelThresholdData
        The data the model was built on.
    y : numpy.ndarray, shape (n_obs,)
        New outcome, within transformed and divided by ``data.y_scale`` like
        ``data.y``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``panel_yy``, ``panel_xy`` and ``panel_dy``; pass them to
        ``pm.set_data`` or nutpie's ``CompiledModel.with_data``.

    Raises
    ------
    ModelError
        ``y`` does not have one value per model row.
    """
    kernel = with_outcome_data(data, y).kernel
    assert kernel.linear is not None
    return {f"panel_{key}": kernel.linear[key] for key in OUTCOME_STATISTICS}


def with_outcome_data(data: PanelThresholdData, y: np.ndarray) -> PanelThresholdData:
    """Return a copy of ``data`` with a new scaled, within-transformed outcome.

    The design, scales and grid stay those of ``data``. The kernel's outcome
    cross-products are recomputed, so :func:`panel_threshold_posterior` on
    the copy recovers the threshold for the new outcome.

    Raises
    ------
    ModelError
        ``y`` does not have one value per model row.
    """
    y = np.asarray(y, dtype=float)
    if y.shape != data.y.shape:
        raise ModelError(
            f"The new outcome has shape {y.shape}, but the panel threshold model has "
            f"{data.y.size} rows. Fix: pass one within-transformed value per model row."
        )
    kernel = with_outcome(data.kernel, y, np.column_stack([data.x_fixed, data.z]))
    return replace(data, y=y, kernel=kernel)


def _draws(trace: xr.DataTree, name: str) -> np.ndarray:
    return np.asarray(trace["posterior"][name].transpose("chain", "draw", ...).values)


def _delta_draws(data: PanelThresholdData, trace: xr.DataTree) -> np.ndarray:
    regime = _draws(trace, "beta_regime_scaled")
    steps = regime[..., :-1] - regime[..., 1:]  # (chain, draw, n_thresholds)
    if data.kernel.n_thresholds == 1:
        return steps  # (chain, draw, k=1)
    return steps[..., None]  # (chain, draw, 2, 1)


def _coef_draws(trace: xr.DataTree) -> np.ndarray:
    beta = _draws(trace, "beta_scaled")
    regime = _draws(trace, "beta_regime_scaled")
    return np.concatenate([beta, regime[..., -1:]], axis=-1)


def panel_threshold_posterior(
    trace: xr.DataTree, data: PanelThresholdData, seed: int = 0
) -> xr.Dataset:
    """Recover the posterior of the threshold(s) on the grid.

    Parameters
    ----------
    trace : xarray.DataTree
        Posterior draws of the model, for example from
        :func:`polygvc.inference.sampling.draw_posterior`.
    data : PanelThresholdData
        The data the model was built on.
    seed : int
        Seed of the per-draw threshold draws.

    Returns
    -------
    xarray.Dataset
        See :func:`polygvc.models.threshold.threshold_posterior`.
    """
    return threshold_posterior(
        data.kernel,
        _delta_draws(data, trace),
        _draws(trace, "sigma_scaled"),
        coef=_coef_draws(trace),
        seed=seed,
    )


def panel_pointwise_loglik(
    trace: xr.DataTree, data: PanelThresholdData, gamma: xr.Dataset
) -> xr.DataArray:
    """Compute per-row log-likelihoods at each draw's sampled threshold(s).

    Parameters
    ----------
    trace : xarray.DataTree
    data : PanelThresholdData
    gamma : xarray.Dataset
        Output of :func:`panel_threshold_posterior` for the same trace.

    Returns
    -------
    xarray.DataArray, dims (chain, draw, obs)
        Log-likelihood of the scaled data (add ``-log(y_scale)`` per row for
        original units). Rows of one unit sum to the unit's
        fixed-effect-integrated log-likelihood, so the sums by unit give an
        exact leave-one-unit-out PSIS-LOO; row-level LOO is approximate
        because rows of a unit share the fixed effect.
    """
    coef = _coef_draws(trace)
    x_all = np.column_stack([data.x_fixed, data.z])
    resid = data.y[None, None, :] - np.einsum("cdp,np->cdn", coef, x_all)
    index_name = "gamma_index" if data.kernel.n_thresholds == 1 else "pair_index"
    if index_name not in gamma:
        raise ModelError(
            f"The threshold posterior lacks '{index_name}'; pass the output of "
            "panel_threshold_posterior for this model."
        )
    values = conditional_pointwise_loglik(
        data.kernel,
        resid,
        _delta_draws(data, trace),
        _draws(trace, "sigma_scaled"),
        gamma[index_name].values,
    )
    return xr.DataArray(values, dims=("chain", "draw", "obs"), name=data.dependent)
