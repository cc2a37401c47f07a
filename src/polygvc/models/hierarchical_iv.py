r"""Hierarchical Bayesian instrumental-variable model with correlated errors.

The model is the joint (full-information) form of linear IV: a first stage for
the endogenous regressor and an outcome equation, with bivariate normal errors,
so the posterior of the structural slope accounts for the endogeneity through
the error correlation. On standardised data, for row :math:`i` in unit
(province) :math:`p`, group (region) :math:`r(p)` and period :math:`t`:

.. math::

    x_i &= \pi_0 + Z_i \pi + W_i \delta + \tau^{x}_{t} + u_i \\
    y_i &= \alpha_p + \beta_p x_i + W_i \gamma + \tau^{y}_{t} + e_i \\
    (u_i, e_i)' &\sim \mathcal N(0, \Sigma), \quad
        \Sigma = \operatorname{diag}(\sigma)\, \Omega \operatorname{diag}(\sigma),
        \quad \Omega \sim \operatorname{LKJ}(\eta)

with partial pooling of the intercepts and slopes, written non-centred at both
levels when provinces have few rows:

.. math::

    \beta_{r} &= \beta_\mu + s^{\beta}_{r}\, z^{\beta}_{r}, \qquad
    \beta_p = \beta_{r(p)} + s^{\beta}_{p}\, z^{\beta}_{p} \\
    \alpha_p &= \alpha_0 + s^{\alpha}_{r}\, z^{\alpha}_{r(p)} + s^{\alpha}_{p}\, z^{\alpha}_{p}

With many rows per province the same prior is written centred
(:mod:`polygvc.models.pooling`; ``spec.parameterization``), which samples
faster there.

The first stage has no unit effects: the instruments used here are constant
within a unit, so unit effects in the first stage would absorb them. Year
effects are zero-sum. Because :math:`x_i` enters the mean of :math:`y_i` as
data, the joint density of :math:`(x_i, y_i)` factorises with unit Jacobian, so
the multivariate normal on the stacked residuals is the exact likelihood
(Lancaster 2004, ch. 8; Rossi, Allenby and McCulloch 2005, ch. 7).

Effects are reported in original units as ``effect_* = beta_* * sd(y) / sd(x)``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from polygvc.models.data import ModelData
from polygvc.models.likelihoods import bivariate_normal
from polygvc.models.pooling import pooled_normal
from polygvc.models.spec import HierarchicalIVSpec

OBSERVED_NAME = "outcomes"


def build_hierarchical_iv(spec: HierarchicalIVSpec, data: ModelData) -> pm.Model:
    """Build the PyMC model for a spec and its prepared data.

    Parameters
    ----------
    spec : HierarchicalIVSpec
        Variable roles and priors (``spec.resolved_priors``).
    data : ModelData
        Output of :func:`polygvc.models.data.prepare_model_data`.

    Returns
    -------
    pymc.Model
        With named dims ``obs``, ``province``, ``region``, ``year``,
        ``instrument``, ``covariate``, ``equation``; the observed variable is
        ``outcomes`` with dims ``(obs, equation)``.

    Notes
    -----
    Offsets are named ``<term>_offset``; they are the free variables in the
    non-centred form and deterministics in the centred one
    (``spec.parameterization``). ``beta_province``, ``beta_region``,
    ``intercept_region``, ``intercept_province``, ``sigma``,
    ``rho`` and ``effect_mu``, ``effect_region``, ``effect_province`` (original
    units) are recorded in the posterior.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from polygvc.models.data import prepare_model_data
    >>> rng = np.random.default_rng(1)
    >>> n = 40
    >>> panel = pd.DataFrame({
    ...     "province": np.repeat([f"p{i}" for i in range(10)], 4),
    ...     "region": np.repeat(["East", "West"] * 5, 4),
    ...     "year": np.tile([2001, 2002, 2003, 2004], 10),
    ...     "z": rng.normal(size=n), "y": rng.normal(size=n), "x": rng.normal(size=n)})
    >>> spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"])
    >>> model = build_hierarchical_iv(spec, prepare_model_data(panel, spec))
    >>> sorted(model.coords)[:3]
    ['covariate', 'equation', 'instrument']
    """
    priors = spec.resolved_priors
    coords = {key: value for key, value in data.coords.items()}
    n_year = len(coords["year"])
    use_years = spec.year_effects and n_year > 1
    has_covariates = data.W.shape[1] > 0

    with pm.Model(coords=coords) as model:
        Z = pm.Data("Z", data.Z, dims=("obs", "instrument"))
        W = pm.Data("W", data.W, dims=("obs", "covariate"))
        x = pm.Data("x", data.x, dims="obs")
        y = pm.Data("y", data.y, dims="obs")
        unit_idx = pm.Data("unit_idx", data.unit_idx, dims="obs")
        time_idx = pm.Data("time_idx", data.time_idx, dims="obs")
        group_of_unit = np.asarray(data.group_idx_of_unit)

        # First stage.
        fs_intercept = priors["fs_intercept"].create("fs_intercept")
        fs_instrument = priors["fs_instrument"].create("fs_instrument", dims="instrument")
        mu_x = fs_intercept + pt.dot(Z, fs_instrument)
        if has_covariates:
            fs_covariate = priors["fs_covariate"].create("fs_covariate", dims="covariate")
            mu_x = mu_x + pt.dot(W, fs_covariate)
        if use_years:
            fs_year = priors["fs_year"].create("fs_year", dims="year")
            mu_x = mu_x + fs_year[time_idx]

        centred = spec.centred_for(np.bincount(data.unit_idx, minlength=len(coords["province"])))
        intercept_province, beta_region, beta_province = declare_pooled_outcome_parameters(
            spec, priors, group_of_unit, centred
        )

        mu_y = intercept_province[unit_idx] + beta_province[unit_idx] * x
        if has_covariates:
            gamma = priors["gamma"].create("gamma", dims="covariate")
            mu_y = mu_y + pt.dot(W, gamma)
        if use_years:
            year_effect = priors["year_effect"].create("year_effect", dims="year")
            mu_y = mu_y + year_effect[time_idx]

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

        mu = pt.stack([mu_x, mu_y], axis=1)
        observed = pt.stack([x, y], axis=1)
        # Same density as pm.MvNormal(mu, chol=chol), written per row; PyMC 6.4's
        # MvNormal graph made each gradient several hundred times slower here.
        bivariate_normal(OBSERVED_NAME, mu, chol, observed=observed, dims=("obs", "equation"))

        # Effects per original unit of the endogenous regressor.
        ratio = data.scaling[spec.dependent]["sd"] / data.scaling[spec.endog]["sd"]
        pm.Deterministic("effect_mu", model["beta_mu"] * ratio)
        pm.Deterministic("effect_region", beta_region * ratio, dims="region")
        pm.Deterministic("effect_province", beta_province * ratio, dims="province")
    return model


def declare_pooled_outcome_parameters(
    spec: HierarchicalIVSpec, priors: dict, group_of_unit: np.ndarray, centred: bool = False
) -> tuple:
    """Declare the outcome equation's pooled intercepts and slopes in the current model.

    Intercepts and slopes of the endogenous regressor vary by province, pooled
    within regions (:func:`polygvc.models.pooling.pooled_normal`). The province
    level is centred when ``centred`` is true. The region level is always
    non-centred: with four regions the region sd is weakly identified, and the
    centred form diverged in the funnel near zero sd in the benchmarks. The
    offsets ``<term>_offset`` are in the model either way.
    Shared by the per-observation and sufficient-statistic builders so both
    keep the same parameters.

    Returns
    -------
    tuple
        ``(intercept_province, beta_region, beta_province)`` tensors.
    """
    intercept = priors["intercept"].create("intercept")
    intercept_region_sd = priors["intercept_region_sd"].create("intercept_region_sd")
    intercept_region = pooled_normal(
        "intercept_region", intercept, intercept_region_sd, "region", False
    )
    intercept_province_sd = priors["intercept_province_sd"].create("intercept_province_sd")
    intercept_province = pooled_normal(
        "intercept_province", intercept_region[group_of_unit], intercept_province_sd,
        "province", centred,
    )

    beta_mu = priors["beta_mu"].create("beta_mu")
    beta_region_sd = priors["beta_region_sd"].create("beta_region_sd")
    beta_region = pooled_normal("beta_region", beta_mu, beta_region_sd, "region", False)
    if spec.province_slopes:
        beta_province_sd = priors["beta_province_sd"].create("beta_province_sd")
        beta_province = pooled_normal(
            "beta_province", beta_region[group_of_unit], beta_province_sd, "province", centred
        )
    else:
        beta_province = pm.Deterministic(
            "beta_province", beta_region[group_of_unit], dims="province"
        )
    return intercept_province, beta_region, beta_province


REPORTED_PARAMETERS = (
    "beta_mu",
    "beta_region",
    "beta_province",
    "beta_region_sd",
    "beta_province_sd",
    "intercept",
    "intercept_province_sd",
    "intercept_region_sd",
    "fs_instrument",
    "fs_covariate",
    "gamma",
    "sigma",
    "rho",
    "effect_mu",
)
