r"""The hierarchical Bayesian IV model with its likelihood on per-province Gram matrices.

Same model, priors, parameter names and deterministics as
:func:`polygvc.models.hierarchical_iv.build_hierarchical_iv`; only the
likelihood is written differently. With the Gram matrices :math:`G_p` of
:mod:`polygvc.models.sufficient`, the residual cross-product matrix is
:math:`S = \sum_p A_p G_p A_p'` and

.. math::

    \ell(\theta) = -n\log 2\pi - n \log(L_{11} L_{22})
        - \tfrac12 \operatorname{tr}(L^{-1} S L^{-\prime}),

with :math:`\Sigma = L L'` the Cholesky factor of the error covariance. This
equals the sum of the per-row bivariate normal log-densities exactly (up to
rounding), but a gradient costs :math:`O(P D^2)` instead of :math:`O(n)`.

Rows are not in the model, so the observed variable ``outcomes`` of the
per-observation model is replaced by the potential ``outcomes_loglik``. When the
rows are in memory, :func:`add_log_likelihood` and
:func:`add_posterior_predictive` fill the ``log_likelihood`` and
``posterior_predictive`` groups after sampling, with the same variable name
(``outcomes``) and dims as the per-observation model produces.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from polygvc.errors import ModelError
from polygvc.models.data import ModelData
from polygvc.models.hierarchical_iv import OBSERVED_NAME, declare_pooled_outcome_parameters
from polygvc.models.spec import HierarchicalIVSpec
from polygvc.models.sufficient import (
    SufficientStats,
    gram_from_model_data,
    loglik_per_observation,
    residuals_per_observation,
)

__all__ = [
    "POTENTIAL_NAME",
    "add_log_likelihood",
    "add_posterior_predictive",
    "build_hierarchical_iv_suffstat",
    "pointwise_log_likelihood",
]

POTENTIAL_NAME = "outcomes_loglik"
GRAM_DIMS = ("province", "gram_row", "gram_col")


def build_hierarchical_iv_suffstat(
    spec: HierarchicalIVSpec, data: ModelData | SufficientStats
) -> pm.Model:
    """Build the hierarchical IV model with the sufficient-statistic likelihood.

    Parameters
    ----------
    spec : HierarchicalIVSpec
        Variable roles and priors (``spec.resolved_priors``).
    data : ModelData or SufficientStats
        In-memory model data (its Gram matrices are computed here with
        :func:`polygvc.models.sufficient.gram_from_model_data`) or Gram
        matrices already computed, for example by
        :func:`polygvc.models.sufficient.gram_from_duckdb`.

    Returns
    -------
    pymc.Model
        Free variables, deterministics and dims as in
        :func:`~polygvc.models.hierarchical_iv.build_hierarchical_iv`, except
        that the data are the ``pm.Data`` variable ``gram`` with dims
        ``(province, gram_row, gram_col)`` and the likelihood is the potential
        ``outcomes_loglik``. There is no ``obs`` dim.

    Raises
    ------
    ModelError
        The Gram matrices do not match the spec (other instruments, covariates
        or year columns).

    Notes
    -----
    Equality with the per-observation likelihood is checked in
    ``tests/test_sufficient.py`` (relative difference below 1e-8). The number
    of rows is read from the Gram matrices (the sum of the constant-constant
    entries), so replacing ``gram`` with ``pm.set_data`` or
    ``CompiledModel.with_data`` keeps the likelihood consistent.
    """
    stats = gram_from_model_data(data, spec) if isinstance(data, ModelData) else data
    layout = stats.layout
    _check_layout(spec, stats)
    priors = spec.resolved_priors
    coords = {key: list(value) for key, value in stats.coords.items() if key != "obs"}
    coords["gram_row"] = layout.labels
    coords["gram_col"] = layout.labels
    use_years = bool(layout.years)
    has_covariates = bool(layout.covariates)
    n_instrument = len(layout.instruments)

    with pm.Model(coords=coords) as model:
        gram = pm.Data("gram", stats.gram, dims=GRAM_DIMS)
        group_of_unit = np.asarray(stats.group_idx_of_unit)
        n_unit = len(coords["province"])

        # First stage.
        fs_intercept = priors["fs_intercept"].create("fs_intercept")
        fs_instrument = priors["fs_instrument"].create("fs_instrument", dims="instrument")
        a_u_parts = [pt.ones(1), pt.zeros(1), -pt.atleast_1d(fs_intercept), -fs_instrument]
        if has_covariates:
            fs_covariate = priors["fs_covariate"].create("fs_covariate", dims="covariate")
            a_u_parts.append(-fs_covariate)
        if use_years:
            fs_year = priors["fs_year"].create("fs_year", dims="year")
            a_u_parts.append(-fs_year)

        centred = spec.centred_for(np.asarray(stats.gram)[:, 2, 2])
        intercept_province, beta_region, beta_province = declare_pooled_outcome_parameters(
            spec, priors, group_of_unit, centred
        )

        a_e_parts = [
            -beta_province[:, None],
            pt.ones((n_unit, 1)),
            -intercept_province[:, None],
            pt.zeros((n_unit, n_instrument)),
        ]
        if has_covariates:
            gamma = priors["gamma"].create("gamma", dims="covariate")
            a_e_parts.append(pt.broadcast_to(-gamma[None, :], (n_unit, len(layout.covariates))))
        if use_years:
            year_effect = priors["year_effect"].create("year_effect", dims="year")
            a_e_parts.append(pt.broadcast_to(-year_effect[None, :], (n_unit, len(layout.years))))

        # Correlated errors of the two equations.
        chol, corr, sigmas = pm.LKJCholeskyCov(
            "error_chol",
            n=2,
            eta=spec.lkj_eta,
            sd_dist=priors["sigma"].dist_object(),
            compute_corr=True,
        )
        pm.Deterministic("sigma", sigmas, dims="equation")
        pm.Deterministic("rho", corr[0, 1])

        a_u = pt.concatenate(a_u_parts)
        a_e = pt.concatenate(a_e_parts, axis=1)
        pm.Potential(POTENTIAL_NAME, gram_loglik(gram, a_u, a_e, chol))

        # Effects per original unit of the endogenous regressor.
        ratio = stats.scaling[spec.dependent]["sd"] / stats.scaling[spec.endog]["sd"]
        pm.Deterministic("effect_mu", model["beta_mu"] * ratio)
        pm.Deterministic("effect_region", beta_region * ratio, dims="region")
        pm.Deterministic("effect_province", beta_province * ratio, dims="province")
    return model


def gram_loglik(gram, a_u, a_e, chol):
    r"""Build the joint Gaussian log-likelihood from Gram matrices (PyTensor).

    Parameters
    ----------
    gram : tensor, shape (P, D, D)
        Per-province Gram matrices; entry ``[:, 2, 2]`` counts the rows.
    a_u : tensor, shape (D,)
        First-stage residual coefficients, ``u_i = a_u d_i``.
    a_e : tensor, shape (P, D)
        Outcome residual coefficients of each province, ``e_i = a_e[p] d_i``.
    chol : tensor, shape (2, 2)
        Lower Cholesky factor ``L`` of the error covariance.

    Returns
    -------
    scalar tensor
        The log-likelihood :math:`-n\log 2\pi - n\log(L_{11}L_{22})
        - \tfrac12 \operatorname{tr}(L^{-1} S L^{-\prime})`.

    Notes
    -----
    With :math:`L = [[a, 0], [c, b]]`, :math:`L^{-1} = [[1/a, 0], [-c/(ab), 1/b]]`,
    so the trace is :math:`S_{uu}/a^2 + (c/a)^2 S_{uu}/b^2 - 2 (c/a) S_{ue}/b^2 + S_{ee}/b^2`.
    """
    n = pt.sum(gram[:, 2, 2])
    g_au = pt.dot(gram, a_u)  # (P, D)
    s_uu = pt.dot(pt.sum(g_au, axis=0), a_u)
    s_ue = pt.sum(g_au * a_e)
    g_ae = pt.sum(gram * a_e[:, None, :], axis=2)  # (P, D)
    s_ee = pt.sum(g_ae * a_e)
    a, c, b = chol[0, 0], chol[1, 0], chol[1, 1]
    ratio = c / a
    trace = s_uu / a**2 + (ratio**2 * s_uu - 2.0 * ratio * s_ue + s_ee) / b**2
    return -n * np.log(2.0 * np.pi) - n * (pt.log(a) + pt.log(b)) - 0.5 * trace


def _check_layout(spec: HierarchicalIVSpec, stats: SufficientStats) -> None:
    layout = stats.layout
    expected = (tuple(spec.instruments), tuple(spec.covariates))
    found = (layout.instruments, layout.covariates)
    if expected != found:
        raise ModelError(
            f"The Gram matrices from {stats.source} hold instruments {list(found[0])} and "
            f"covariates {list(found[1])}, but the spec names {list(expected[0])} and "
            f"{list(expected[1])}. Fix: compute the Gram matrices with this spec."
        )
    wants_years = spec.year_effects and len(stats.coords["year"]) > 1
    if wants_years != bool(layout.years):
        raise ModelError(
            f"The spec has year_effects = {spec.year_effects} but the Gram matrices from "
            f"{stats.source} {'have' if layout.years else 'lack'} year columns. Fix: compute "
            "the Gram matrices with this spec."
        )


def _posterior_params(posterior: xr.Dataset, data: ModelData) -> dict[str, np.ndarray]:
    names = ["fs_intercept", "fs_instrument", "intercept_province", "beta_province", "sigma", "rho"]
    if data.W.shape[1]:
        names += ["fs_covariate", "gamma"]
    if "fs_year" in posterior:
        names += ["fs_year", "year_effect"]
    missing = [name for name in names if name not in posterior]
    if missing:
        raise ModelError(
            f"The posterior lacks {', '.join(missing)}, so the pointwise log-likelihood cannot "
            "be computed. Fix: sample a hierarchical IV model and keep these variables."
        )
    return {name: posterior[name].to_numpy() for name in names}


def pointwise_log_likelihood(
    posterior: xr.Dataset, data: ModelData, draws_per_chunk: int = 200
) -> xr.DataArray:
    r"""Compute the log-density of every row at every posterior draw (NumPy).

    Parameters
    ----------
    posterior : xarray.Dataset
        The ``posterior`` group of a hierarchical IV fit (either likelihood form).
    data : ModelData
        The rows the model was fitted to.
    draws_per_chunk : int
        Draws per vectorised block, which bounds memory at about
        ``chains * draws_per_chunk * n_obs * 8 * 4`` bytes.

    Returns
    -------
    xarray.DataArray
        ``outcomes`` with dims ``(chain, draw, obs)``; summing over ``obs``
        gives the joint log-likelihood at each draw.

    Notes
    -----
    Each row's value is the bivariate normal log-density of its residuals,
    :math:`-\log 2\pi - \tfrac12\log|\Sigma| - \tfrac12 r_i'\Sigma^{-1}r_i`,
    as ``pymc.compute_log_likelihood`` returns for the per-observation model.
    """
    params = _posterior_params(posterior, data)
    year_effects = "fs_year" in params
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    out = np.empty((n_chain, n_draw, data.n_obs))
    for lo in range(0, n_draw, draws_per_chunk):
        block = {name: value[:, lo : lo + draws_per_chunk] for name, value in params.items()}
        out[:, lo : lo + draws_per_chunk] = loglik_per_observation(data, block, year_effects)
    return xr.DataArray(
        out,
        dims=("chain", "draw", "obs"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "obs": np.asarray(data.coords["obs"]),
        },
        name=OBSERVED_NAME,
    )


def add_log_likelihood(dt: xr.DataTree, data: ModelData) -> xr.DataTree:
    """Add the ``log_likelihood`` group (``outcomes``, dims ``(chain, draw, obs)``) in place.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with a ``posterior`` group.
    data : ModelData
        The rows the model was fitted to.

    Returns
    -------
    xarray.DataTree
        ``dt``, for chaining.
    """
    values = pointwise_log_likelihood(dt["posterior"].to_dataset(), data)
    dt["log_likelihood"] = xr.DataTree(xr.Dataset({OBSERVED_NAME: values}))
    return dt


def add_posterior_predictive(dt: xr.DataTree, data: ModelData, seed: int) -> xr.DataTree:
    """Add ``posterior_predictive`` draws of ``outcomes`` (dims ``(chain, draw, obs, equation)``).

    Parameters
    ----------
    dt : xarray.DataTree
        A fit with a ``posterior`` group.
    data : ModelData
        The rows the model was fitted to (``x`` enters the outcome mean as data,
        as in the per-observation model, so the replicated ``x`` column does not
        feed the replicated ``y``).
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    xarray.DataTree
        ``dt``, for chaining.
    """
    posterior = dt["posterior"].to_dataset()
    params = _posterior_params(posterior, data)
    u, e = residuals_per_observation(data, params, "fs_year" in params)
    mu_x, mu_y = data.x - u, data.y - e
    rng = np.random.default_rng(seed)
    sigma, rho = params["sigma"], params["rho"]
    first = rng.standard_normal(mu_x.shape)
    second = rng.standard_normal(mu_x.shape)
    s_x = sigma[..., 0, None]
    s_y = sigma[..., 1, None]
    r = rho[..., None]
    x_rep = mu_x + s_x * first
    y_rep = mu_y + s_y * (r * first + np.sqrt(1.0 - r**2) * second)
    values = xr.DataArray(
        np.stack([x_rep, y_rep], axis=-1),
        dims=("chain", "draw", "obs", "equation"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "obs": np.asarray(data.coords["obs"]),
            "equation": list(data.coords["equation"]),
        },
    )
    dt["posterior_predictive"] = xr.DataTree(xr.Dataset({OBSERVED_NAME: values}))
    return dt
