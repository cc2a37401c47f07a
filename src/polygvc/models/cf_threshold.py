r"""Threshold term of the control-function model, and its posterior of the threshold.

In a ``cf_threshold`` model the slope of the endogenous regressor (and, as an
option, the intercept) changes when a threshold variable :math:`q` crosses an
unknown value :math:`\gamma` (Hansen 1999, 2000):

.. math::

    y_i = \dots + \beta_{p,\text{high}} x_i
          + \delta' z_i \mathbf 1[q_i \le \gamma] + \rho' v_i + \varepsilon_i,

with :math:`z_i = x_i` (or :math:`(1, x_i)` with an intercept shift), so the
low-regime slope is :math:`\beta_{\text{high}} + \delta`. Two thresholds
:math:`\gamma_a < \gamma_b` add a middle regime. Regime 0 (``low``) holds the
rows with the lowest :math:`q`; a higher regime index means a higher
:math:`q`.

:math:`\gamma` lives on a grid of trimmed quantiles of :math:`q`
(:func:`polygvc.models.threshold.threshold_grid`) and is summed out exactly
on the outcome-given-:math:`v` likelihood
(:func:`polygvc.models.threshold.marginal_threshold_loglik`), so NUTS samples
only smooth parameters. With province-varying thresholds the sum factorises by
province. After sampling, :func:`add_threshold_results` recovers the
threshold per draw and the pointwise log-likelihood for LOO.

Storage in the DataTree (see :func:`add_threshold_results`):

* ``posterior``: ``threshold`` (one threshold) or ``threshold_lower`` and
  ``threshold_upper`` (two), in original units of :math:`q`, one joint draw
  per posterior draw, with the grid index ``threshold_index`` (or
  ``pair_index``); dim ``province`` is added with province thresholds.
* group ``threshold``: ``threshold_prob`` (or ``threshold_prob_lower`` and
  ``threshold_prob_upper``) on dim ``threshold_grid`` (coordinate = grid
  values in original units), the Rao-Blackwellised posterior probability of
  each grid point, and ``grid_standardised``.
* ``log_likelihood``: ``outcomes`` (obs) = first-stage log density plus the
  outcome log density given :math:`v` at each draw's sampled threshold.

The name ``threshold`` is used because ``gamma`` already names the covariate
coefficients of the outcome equation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from polygvc.errors import ConfigError, ModelError
from polygvc.models.threshold import (
    REGIME_NAMES,
    ThresholdKernel,
    conditional_pointwise_loglik,
    marginal_threshold_loglik,
    prepare_threshold_kernel,
    tensor_kernel,
    threshold_grid,
    threshold_posterior,
)

if TYPE_CHECKING:
    from polygvc.models.control_function import CFParts

logger = logging.getLogger(__name__)

__all__ = ["ThresholdSettings", "add_threshold_results", "add_threshold_term", "prepare_kernel"]


@dataclass(frozen=True)
class ThresholdSettings:
    r"""Settings of the threshold term (``[model.threshold]`` in the config).

    Parameters
    ----------
    variable : str or None
        Threshold variable :math:`q`: the endogenous regressor (default, None),
        a moderator, or any other column of the panel.
    n_grid : int, default 30
        Grid points for :math:`\gamma`.
    trim : float, default 0.15
        Share of rows kept out of each end of the grid (Hansen's trimming).
    n_thresholds : {1, 2}
        One threshold (two regimes) or two (three regimes).
    intercept_shift : bool, default False
        The intercept also changes across the threshold.
    province_varying : bool, default False
        Each province has its own threshold on the common grid; the jump
        ``delta`` stays common.
    min_gap : int, default 1
        Two thresholds: minimum distance in grid steps.
    """

    variable: str | None = None
    n_grid: int = 30
    trim: float = 0.15
    n_thresholds: int = 1
    intercept_shift: bool = False
    province_varying: bool = False
    min_gap: int = 1

    def __post_init__(self) -> None:
        if self.n_thresholds not in (1, 2):
            raise ConfigError(
                f"model.threshold.n_thresholds = {self.n_thresholds}; polygvc supports 1 or 2."
            )
        if self.n_grid < 2:
            raise ConfigError(f"model.threshold.n_grid = {self.n_grid}; use 2 or more points.")
        if not 0.0 <= self.trim < 0.5:
            raise ConfigError(
                f"model.threshold.trim = {self.trim}; it must be in [0, 0.5), e.g. 0.15."
            )
        if self.min_gap < 1:
            raise ConfigError(f"model.threshold.min_gap = {self.min_gap}; use 1 or more.")


def prepare_kernel(
    q: np.ndarray,
    x: np.ndarray,
    unit_idx: np.ndarray,
    settings: ThresholdSettings,
    name: str,
) -> ThresholdKernel:
    """Build the grid and the regime design of the threshold term.

    Parameters
    ----------
    q : numpy.ndarray, shape (n_obs,)
        Standardised threshold variable.
    x : numpy.ndarray, shape (n_obs,)
        Standardised endogenous regressor (its slope changes across regimes).
    unit_idx : numpy.ndarray of int
        Province of each row (threshold groups with ``province_varying``).
    settings : ThresholdSettings
    name : str
        Threshold column name, for messages.

    Returns
    -------
    ThresholdKernel

    Raises
    ------
    ModelError
        Too few distinct values of ``q`` for the grid.
    """
    grid = threshold_grid(q, n_grid=settings.n_grid, trim=settings.trim, name=name)
    return prepare_threshold_kernel(
        q,
        x,
        grid,
        n_thresholds=settings.n_thresholds,
        min_gap=settings.min_gap,
        intercept=settings.intercept_shift,
        groups=unit_idx if settings.province_varying else None,
        regressor_names=("slope",),
    )


def add_threshold_term(
    kernel: ThresholdKernel,
    priors: dict[str, Any],
    resid: Any,
    sigma_eps: Any,
    beta_mu: Any,
    ratio: float,
    *,
    q: Any,
    x_regime: Any,
) -> Any:
    """Add the slope changes and the grid-marginal likelihood to the current model.

    Parameters
    ----------
    kernel : ThresholdKernel
        NumPy kernel of the model data. Its grid and groups are kept, and
        its regime design is rebuilt in the graph from ``q`` and ``x_regime``.
    priors : dict
        Resolved priors; uses ``threshold_delta`` and ``intercept_delta``.
    resid : tensor, shape (n_obs,)
        Outcome minus every term except the regime shift (high-regime fit,
        control function included).
    sigma_eps : tensor
        Standard deviation of the outcome error given the first-stage errors.
    beta_mu : tensor
        Population slope in the high regime (for the reported regime slopes).
    ratio : float
        ``sd(y) / sd(x)`` to report slopes in original units.
    q, x_regime : tensor, shape (n_obs,)
        Standardised threshold variable and endogenous regressor as model
        data, so that swapping new data values in also changes the regime
        design (:func:`polygvc.models.threshold.tensor_kernel`).

    Returns
    -------
    tensor
        ``delta``: shape (k,) for one threshold, (2, k) for two, with ``k``
        the regime-dependent columns (intercept first when shifted).

    Notes
    -----
    Adds ``threshold_delta`` (scalar or dim ``threshold_crossing``), the slope
    of the lower regime minus the next higher one, ``intercept_delta`` with an
    intercept shift, the potential ``threshold_loglik`` and the deterministics
    ``beta_regime`` (regime, population slopes), ``effect_regime`` (original
    units), ``beta_jump`` (the change in slope as ``q`` rises past each
    threshold; scalar or ``threshold_crossing``) and ``intercept_jump``.
    """
    double = kernel.n_thresholds == 2
    crossing = {"dims": "threshold_crossing"} if double else {}
    slope_delta = priors["threshold_delta"].create("threshold_delta", **crossing)
    parts = [slope_delta]
    intercept_delta = None
    if kernel.regressor_names[0] == "intercept":
        intercept_delta = priors["intercept_delta"].create("intercept_delta", **crossing)
        parts = [intercept_delta, slope_delta]
    delta = pt.stack(parts, axis=-1)  # (k,) or (2, k)

    graph_kernel = tensor_kernel(kernel, q, x_regime)
    pm.Potential(
        "threshold_loglik", marginal_threshold_loglik(graph_kernel, delta, sigma_eps, resid=resid)
    )

    if double:
        # Row 0: change at the lower threshold (low - middle); row 1: middle - high.
        regimes = pt.stack(
            [beta_mu + slope_delta[0] + slope_delta[1], beta_mu + slope_delta[1], beta_mu]
        )
    else:
        regimes = pt.stack([beta_mu + slope_delta, beta_mu])
    pm.Deterministic("beta_regime", regimes, dims="regime")
    pm.Deterministic("effect_regime", regimes * ratio, dims="regime")
    pm.Deterministic("beta_jump", -slope_delta, **crossing)
    if intercept_delta is not None:
        pm.Deterministic("intercept_jump", -intercept_delta, **crossing)
    return delta


def regime_coords(settings: ThresholdSettings) -> dict[str, list[str]]:
    """Return the model coords of the regime dims."""
    coords = {"regime": list(REGIME_NAMES[settings.n_thresholds])}
    if settings.n_thresholds == 2:
        coords["threshold_crossing"] = ["lower", "upper"]
    return coords


# ---------------------------------------------------------------------------
# After sampling: threshold posterior, pointwise log-likelihood, predictive
# ---------------------------------------------------------------------------


def _evaluate_draws(parts: CFParts, posterior: xr.Dataset, outputs: dict[str, Any]) -> dict:
    """Evaluate model tensors at every posterior draw, shape (chain, draw, ...)."""
    model = parts.model
    names = list(outputs)
    fn = model.compile_fn(
        [outputs[name] for name in names], inputs=model.free_RVs, on_unused_input="ignore"
    )
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    values = {rv.name: posterior[rv.name].to_numpy() for rv in model.free_RVs}
    result: dict[str, list] = {name: [] for name in names}
    for c in range(n_chain):
        for d in range(n_draw):
            point = {name: array[c, d] for name, array in values.items()}
            for name, value in zip(names, fn(point), strict=True):
                result[name].append(np.asarray(value))
    return {
        name: np.stack(arrays).reshape((n_chain, n_draw) + arrays[0].shape)
        for name, arrays in result.items()
    }


def _regime_fit(kernel: ThresholdKernel, delta: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return the regime shift of every row at the sampled support points.

    ``delta`` has shape (S, k) or (S, 2, k); ``index`` (S, n_groups).
    """
    codes = kernel.group_codes
    rows = np.arange(codes.size)
    out = np.empty((delta.shape[0], codes.size))
    for s in range(delta.shape[0]):
        chosen = index[s][codes]
        if kernel.n_thresholds == 1:
            out[s] = (kernel.design[chosen, rows] * delta[s][None, :]).sum(-1)
        else:
            a, b = kernel.pairs[chosen, 0], kernel.pairs[chosen, 1]
            out[s] = (kernel.design[a, rows] * delta[s][0][None, :]).sum(-1) + (
                kernel.design[b, rows] * delta[s][1][None, :]
            ).sum(-1)
    return out


def _replace_group(dt: xr.DataTree, name: str, dataset: xr.Dataset) -> None:
    dt[name] = xr.DataTree(dataset)


def add_threshold_results(
    dt: xr.DataTree, parts: CFParts, seed: int | None = None
) -> xr.DataTree:
    r"""Add the threshold posterior, log-likelihood and predictive of a ``cf_threshold`` fit.

    Parameters
    ----------
    dt : xarray.DataTree
        Result of sampling ``parts.model`` (needs ``posterior``; the groups
        ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` are
        completed or replaced when present).
    parts : CFParts
        The built model and its design (:func:`build_control_function_parts`
        on the same spec and data).
    seed : int, optional
        Seed of the per-draw threshold draws and the predictive draws.

    Returns
    -------
    xarray.DataTree
        ``dt``, changed in place: see the module docstring for what is stored.

    Raises
    ------
    ModelError
        ``dt`` has no posterior, or a free variable of the model is missing.

    Notes
    -----
    For draw :math:`s` with parameters :math:`\theta_s`, the conditional
    posterior of the threshold is
    :math:`P(\gamma_g \mid \theta_s, y) \propto p(\gamma_g)
    \prod_i N(r_{ig}(\theta_s); 0, \sigma_\varepsilon^2)` on the
    outcome-given-:math:`v` likelihood (the first stage does not depend on
    :math:`\gamma`). One :math:`\gamma_s` is drawn from it, so
    :math:`(\theta_s, \gamma_s)` are joint posterior draws, and the stored
    pointwise log-likelihood is the conditional one at :math:`\gamma_s`:
    :math:`\log p(x_i \mid \theta_s) + \log N(y_i \mid \mu_i(\theta_s,
    \gamma_s) + \rho' v_i, \sigma_\varepsilon^2)`. PSIS-LOO applies to it as
    to any model with :math:`\gamma` as a parameter; the sampled
    :math:`\gamma_s` add Monte Carlo noise. The per-row mixture over
    :math:`\gamma` is not stored because the product of per-row mixtures is
    not the joint marginal likelihood.
    """
    if "posterior" not in dt.children:
        raise ModelError(
            "The DataTree has no posterior group, so the threshold cannot be recovered. "
            "Fix: pass the result of sampling the cf_threshold model."
        )
    posterior = dt["posterior"].to_dataset()
    missing = [rv.name for rv in parts.model.free_RVs if rv.name not in posterior]
    if missing:
        raise ModelError(
            f"The posterior lacks the model variables {missing}, so it does not come from "
            "this cf_threshold model. Fix: rebuild the model from the spec and data that "
            "were sampled."
        )
    kernel = parts.kernel
    assert kernel is not None
    draws = _evaluate_draws(parts, posterior, parts.threshold_outputs)
    n_chain, n_draw = draws["resid"].shape[:2]
    rng = np.random.default_rng(seed)

    province_coords = parts.coords["province"] if kernel.n_groups > 1 else None
    recovered = threshold_posterior(
        kernel,
        draws["delta"],
        draws["sigma_eps"],
        resid=draws["resid"],
        seed=rng,
        group_coords=province_coords,
    )
    grid_original = parts.threshold_grid_original
    grid_coord = {"threshold_grid": grid_original}

    def _original(values: xr.DataArray) -> xr.DataArray:
        index = values.to_numpy()
        return values.copy(data=grid_original[index])

    post_new: dict[str, xr.DataArray] = {}
    group_new: dict[str, xr.DataArray] = {}
    if kernel.n_thresholds == 1:
        index = recovered["gamma_index"]
        post_new["threshold"] = _original(index)
        post_new["threshold_index"] = index
        group_new["threshold_prob"] = recovered["gamma_prob"]
        support_index = index.to_numpy()
    else:
        post_new["threshold_lower"] = _original(recovered["gamma_lower_index"])
        post_new["threshold_upper"] = _original(recovered["gamma_upper_index"])
        post_new["pair_index"] = recovered["pair_index"]
        group_new["threshold_prob_lower"] = recovered["gamma_prob_lower"]
        group_new["threshold_prob_upper"] = recovered["gamma_prob_upper"]
        support_index = recovered["pair_index"].to_numpy()
    chain_draw = {"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}
    extra = {"province": list(province_coords)} if province_coords is not None else {}
    new_posterior = posterior.assign(
        {name: value.assign_coords(chain_draw | extra) for name, value in post_new.items()}
    )
    _replace_group(dt, "posterior", new_posterior)
    threshold_group = xr.Dataset(
        {name: value.assign_coords(grid_coord | extra) for name, value in group_new.items()}
    )
    threshold_group["grid_standardised"] = xr.DataArray(kernel.grid, dims="threshold_grid")
    threshold_group.attrs["variable"] = parts.threshold_variable
    threshold_group.attrs["convention"] = (
        "regime 0 (low) holds rows with q <= threshold; a higher regime means a higher q"
    )
    _replace_group(dt, "threshold", threshold_group)

    # Pointwise log-likelihood at the sampled threshold, first stage included.
    outcome_ll = conditional_pointwise_loglik(
        kernel, draws["resid"], draws["delta"], draws["sigma_eps"], support_index
    )
    loglik = outcome_ll + draws["fs_logp"]
    obs_coord = {"obs": parts.coords["obs"]}
    loglik_da = xr.DataArray(
        loglik, dims=("chain", "draw", "obs"), coords=chain_draw | obs_coord
    )
    if "log_likelihood" in dt.children:
        ll_group = dt["log_likelihood"].to_dataset().assign(outcomes=loglik_da)
    else:
        ll_group = xr.Dataset({"outcomes": loglik_da})
    _replace_group(dt, "log_likelihood", ll_group)

    # Predictive: first stage redrawn, outcome redrawn given the observed v
    # and the sampled threshold.
    flat_index = support_index.reshape(n_chain * n_draw, -1)
    flat_delta = draws["delta"].reshape((n_chain * n_draw,) + draws["delta"].shape[2:])
    shift = _regime_fit(kernel, flat_delta, flat_index).reshape(n_chain, n_draw, -1)
    y = parts.y
    fitted_y = y[None, None, :] - draws["resid"] + shift
    noise = rng.standard_normal(fitted_y.shape) * draws["sigma_eps"][..., None]
    y_rep = fitted_y + noise
    chol = draws["chol_vv"]
    z = rng.standard_normal(draws["mu_x"].shape)
    x_rep = draws["mu_x"] + np.einsum("cdij,cdnj->cdni", chol, z)
    replicate = np.concatenate([x_rep, y_rep[..., None]], axis=-1)
    equation = {"equation": parts.coords["equation"]}
    rep_da = xr.DataArray(
        replicate,
        dims=("chain", "draw", "obs", "equation"),
        coords=chain_draw | obs_coord | equation,
    )
    if "posterior_predictive" in dt.children:
        pp_group = dt["posterior_predictive"].to_dataset().assign(outcomes=rep_da)
        _replace_group(dt, "posterior_predictive", pp_group)
    dt.attrs["threshold"] = json.dumps(
        {
            "variable": parts.threshold_variable,
            "n_thresholds": kernel.n_thresholds,
            "province_varying": kernel.n_groups > 1,
            "log_likelihood": "conditional at the sampled threshold, first stage included",
        }
    )
    logger.info(
        "Recovered the threshold posterior on %d grid points from %d draws",
        kernel.grid.size,
        n_chain * n_draw,
    )
    return dt
