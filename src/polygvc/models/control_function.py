r"""Control-function models: nonlinear and moderated effects of endogenous regressors.

The hierarchical IV model (:mod:`polygvc.models.hierarchical_iv`) is linear in
the endogenous regressor. A control function keeps its joint likelihood but
lets the outcome depend on :math:`x` through any function :math:`f`. On
standardised data, for row :math:`i` in province :math:`p`, region
:math:`r(p)` and year :math:`t`, with :math:`K` endogenous regressors:

.. math::

    x_{ik} &= \pi_{0k} + Z_i \pi_k + W_i \delta_k + \tau^{x}_{kt} + v_{ik},
        \qquad v_i \sim \mathcal N(0, \Sigma_v) \\
    y_i &= \alpha_p + f_p(x_i, m_i) + W_i \gamma + \tau^{y}_t
        + \rho' v_i + \varepsilon_i,
        \qquad \varepsilon_i \sim \mathcal N(0, \sigma_\varepsilon^2)

where :math:`v_i = x_i - \mathrm E[x_i \mid Z_i, W_i]` is the first-stage
error, a deterministic function of the first-stage parameters, so both
equations are estimated jointly. The likelihood is the first stage times the
outcome given :math:`v`; it is the joint normal of :math:`(v_i, u_i)` with
:math:`u_i = \rho' v_i + \varepsilon_i`, written through the Cholesky factor
:math:`L` of its covariance (LKJ prior, as in the hierarchical IV model):
:math:`\rho = L_{vv}^{-\top} l_{yv}` and :math:`\sigma_\varepsilon = L_{yy}`.
With :math:`f_p(x) = \beta_p x` and one endogenous regressor the model is the
hierarchical IV model, with the same priors and the same likelihood.

Assumptions (Wooldridge 2015; Blundell and Powell 2003):

1. The instruments :math:`Z` and the exogenous covariates :math:`W` are
   independent of :math:`(v, e)`, where :math:`e = \rho' v + \varepsilon` is
   the structural error of the outcome.
2. :math:`\mathrm E[e \mid v, Z, W] = \rho' v` (linear in :math:`v`), and
   :math:`(v, e)` are jointly normal for the likelihood.
3. The instruments move :math:`x` over the range where :math:`f` is
   estimated (relevance), with at least :math:`K` instruments.

Under 1 and 2, :math:`\mathrm E[y \mid x, m, Z, W] = \alpha_p + f(x, m) + W\gamma
+ \rho' v`, so any function of :math:`x` and its interactions with exogenous
moderators :math:`m` is identified. This is stronger than the IV moment
condition :math:`\mathrm E[Z' e] = 0` that 2SLS needs: with a nonlinear
:math:`f` 2SLS has no such simple form, and the control function buys the
identification of :math:`f` with the distributional assumption 2.

Variants of :math:`f` (``spec.kind``):

* ``cf_linear``: :math:`\beta_p x_{i1} + \sum_m \theta_m x_{i1} m_i +
  \sum_{k>1} \beta^{\text{extra}}_k x_{ik}`.
* ``cf_threshold``: the slope of :math:`x_{i1}` (and optionally the
  intercept) changes at one or two thresholds of a variable :math:`q`
  (:mod:`polygvc.models.cf_threshold`).
* ``cf_spline``: a P-spline in :math:`x_{i1}` (:mod:`polygvc.models.cf_spline`).

The interaction and extra-endogenous terms are available in every variant.

References
----------
Wooldridge, J. M. (2015). Control function methods in applied econometrics.
Journal of Human Resources 50, 420-445.
Blundell, R. W. and Powell, J. L. (2003). Endogeneity in nonparametric and
semiparametric regression models. In Dewatripont, Hansen and Turnovsky (eds.),
Advances in Economics and Econometrics, vol. II, 312-357. Cambridge
University Press.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from polygvc.errors import ConfigError, ModelError
from polygvc.models.cf_spline import (
    SplineDesign,
    SplineSettings,
    add_spline_term,
    prepare_spline_design,
    spline_data,
)
from polygvc.models.cf_threshold import (
    ThresholdSettings,
    add_threshold_results,
    add_threshold_term,
    prepare_kernel,
    regime_coords,
)
from polygvc.models.data import ModelData
from polygvc.models.pooling import pooled_normal
from polygvc.models.priors import Prior
from polygvc.models.spec import (
    DEFAULT_PRIORS,
    HierarchicalIVSpec,
    check_prior_name,
    prior_override,
)
from polygvc.models.threshold import ThresholdKernel

logger = logging.getLogger(__name__)

OBSERVED_NAME = "outcomes"
CF_KINDS = ("cf_linear", "cf_threshold", "cf_spline")

__all__ = [
    "CF_DEFAULT_PRIORS",
    "CF_KINDS",
    "CFParts",
    "ControlFunctionSpec",
    "SplineSettings",
    "ThresholdSettings",
    "build_control_function",
    "build_control_function_parts",
    "cf_data_values",
    "cf_pointwise_logp",
    "complete_cf_datatree",
]


def _cf_priors() -> dict[str, Prior]:
    table: dict[str, tuple[str, dict[str, float]]] = {
        # Slopes of the second and later endogenous regressors.
        "beta_extra": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        # Interaction slopes of endog x moderator (standardised units).
        "theta": ("Normal", {"mu": 0.0, "sigma": 0.5}),
        # Lower-regime slope minus the next higher one, and the intercept shift.
        "threshold_delta": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "intercept_delta": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        # RW2 innovation scale of the spline and of province deviations.
        "spline_sigma": ("HalfNormal", {"sigma": 0.5}),
        "spline_province_sigma": ("HalfNormal", {"sigma": 0.2}),
    }
    return {name: Prior(dist, name=name, **params) for name, (dist, params) in table.items()}


CF_DEFAULT_PRIORS: dict[str, Prior] = _cf_priors()
_CF_SCALE_PARAMETERS = {"spline_sigma", "spline_province_sigma"}


def _resolve_cf_priors(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Prior]]:
    """Split overrides into base ones (for :func:`resolve_priors`) and CF ones, validated."""
    valid = sorted({*DEFAULT_PRIORS, *CF_DEFAULT_PRIORS})
    base: dict[str, Any] = {}
    extra = dict(CF_DEFAULT_PRIORS)
    for name, value in (overrides or {}).items():
        if name in DEFAULT_PRIORS:
            base[name] = value
            continue
        # Base names were routed above, so only control-function names pass here.
        check_prior_name(name, valid, " for control-function models")
        prior = prior_override(name, value, CF_DEFAULT_PRIORS[name], _CF_SCALE_PARAMETERS)
        if prior.dist == "ZeroSumNormal":
            raise ConfigError(
                f"Prior 'model.priors.{name}' cannot be ZeroSumNormal (only year effects are). "
                f"Fix: {CF_DEFAULT_PRIORS[name].example()}."
            )
        extra[name] = prior
    return base, extra


@dataclass
class ControlFunctionSpec(HierarchicalIVSpec):
    """Variable roles and settings of a control-function model.

    Parameters
    ----------
    dependent, endog, instruments, controls, moderators, unit, group, time,
    year_effects, province_slopes, lkj_eta, priors, labels
        As in :class:`~polygvc.models.spec.HierarchicalIVSpec`. ``endog`` is
        the endogenous regressor whose effect is nonlinear or moderated.
        ``priors`` also accepts the names in :data:`CF_DEFAULT_PRIORS`.
    kind : {"cf_linear", "cf_threshold", "cf_spline"}
        Form of :math:`f`.
    extra_endog : list of str
        Further endogenous regressors, each with its own first stage; they
        enter the outcome linearly (``beta_extra``, dim ``extra_endog``).
    interactions : list of str
        Moderators whose product with ``endog`` enters the outcome
        (``theta``, dim ``interaction``). Each must also be a control or
        moderator, so that its main effect is in the model.
    threshold : ThresholdSettings or None
        Settings of ``cf_threshold`` (defaults when None).
    spline : SplineSettings or None
        Settings of ``cf_spline`` (defaults when None).

    Raises
    ------
    ConfigError
        Unknown kind, a column with two roles, an interaction term that is not
        a covariate, fewer instruments than endogenous regressors, or invalid
        priors.
    """

    kind: str = "cf_linear"
    extra_endog: list[str] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    threshold: ThresholdSettings | None = None
    spline: SplineSettings | None = None

    def __post_init__(self) -> None:
        if self.kind not in CF_KINDS:
            close = difflib.get_close_matches(str(self.kind), CF_KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"model.kind = {self.kind!r} is not a control-function model.{hint} Valid "
                f"kinds: {', '.join(CF_KINDS)} (and 'hierarchical_iv' for the linear IV model)."
            )
        if self.kind == "cf_threshold" and self.threshold is None:
            self.threshold = ThresholdSettings()
        if self.kind == "cf_spline" and self.spline is None:
            self.spline = SplineSettings()

        base_priors, cf_priors = _resolve_cf_priors(self.priors)
        overrides = self.priors
        self.priors = base_priors
        try:
            super().__post_init__()
        finally:
            self.priors = overrides
        self.resolved_priors = {**self.resolved_priors, **cf_priors}

        roles = {
            "dependent": [self.dependent],
            "endog": [self.endog],
            "instruments": self.instruments,
            "controls": self.controls,
            "moderators": self.moderators,
        }
        for column in self.extra_endog:
            for role, columns in roles.items():
                if column in columns:
                    raise ConfigError(
                        f"Column {column!r} is given both as model.{role} and as "
                        "model.extra_endog. Fix: give each column one role."
                    )
        if len(set(self.extra_endog)) < len(self.extra_endog):
            raise ConfigError(f"model.extra_endog {self.extra_endog} lists a column twice.")
        n_endog = 1 + len(self.extra_endog)
        if len(self.instruments) < n_endog:
            raise ConfigError(
                f"The control-function model has {n_endog} endogenous regressors "
                f"({', '.join(self.endog_columns)}) but only {len(self.instruments)} "
                f"instrument(s) ({', '.join(self.instruments)}). Fix: add instruments or "
                "drop endogenous regressors."
            )
        covariates = self.covariates
        for moderator in self.interactions:
            if moderator not in covariates:
                raise ConfigError(
                    f"model.interactions lists {moderator!r}, which is not a control or "
                    f"moderator (covariates: {', '.join(covariates) or 'none'}). Its main "
                    "effect must be in the model. Fix: add it to model.moderators."
                )
        if len(set(self.interactions)) < len(self.interactions):
            raise ConfigError(f"model.interactions {self.interactions} lists a moderator twice.")
        if self.threshold is not None:
            q = self.threshold_variable
            if q == self.dependent:
                raise ConfigError(
                    f"model.threshold.variable = {q!r} is the dependent variable. Fix: use "
                    "the endogenous regressor, a moderator or another exogenous column."
                )

    @property
    def endog_columns(self) -> list[str]:
        """All endogenous regressors: ``endog`` first, then ``extra_endog``."""
        return [self.endog, *self.extra_endog]

    @property
    def threshold_variable(self) -> str | None:
        """Threshold column (``endog`` when the settings name none), or None."""
        if self.threshold is None:
            return None
        return self.threshold.variable or self.endog

    @property
    def columns(self) -> list[str]:
        """Every numeric column the model reads (threshold variable included)."""
        base = [self.dependent, self.endog, *self.extra_endog, *self.instruments]
        base += self.covariates
        q = self.threshold_variable
        if q is not None and q not in base:
            base.append(q)
        return base

    def to_json(self) -> str:
        """Serialise the spec (with resolved priors) as JSON for result attrs."""
        payload = json.loads(super().to_json())
        payload["model"] = self.kind
        payload["extra_endog"] = self.extra_endog
        payload["interactions"] = self.interactions
        payload["threshold"] = asdict(self.threshold) if self.threshold else None
        payload["spline"] = asdict(self.spline) if self.spline else None
        return json.dumps(payload, ensure_ascii=False)

    @classmethod
    def from_config(cls, model_section: Any, data_section: Any) -> ControlFunctionSpec:
        """Build a spec from the ``[model]`` and ``[data]`` config sections."""
        threshold = getattr(model_section, "threshold", None)
        spline = getattr(model_section, "spline", None)
        return cls(
            **cls.config_fields(model_section, data_section),
            kind=model_section.kind,
            extra_endog=list(getattr(model_section, "extra_endog", [])),
            interactions=list(getattr(model_section, "interactions", [])),
            threshold=ThresholdSettings(**threshold.model_dump()) if threshold else None,
            spline=SplineSettings(**spline.model_dump()) if spline else None,
        )


# ---------------------------------------------------------------------------
# Likelihood: first stage times outcome given the first-stage errors
# ---------------------------------------------------------------------------


def cf_pointwise_logp(
    value: Any,
    mu_x: Any,
    cond_mean_y: Any,
    chol_vv: Any,
    sigma_eps: Any,
    *,
    n_endog: int | None = None,
    include_outcome: bool = True,
) -> Any:
    r"""Compute the control-function log density of each row.

    Works on NumPy arrays and PyTensor tensors.

    Parameters
    ----------
    value : array or tensor, shape (n_obs, K + 1)
        Observed endogenous regressors then the outcome.
    mu_x : array or tensor, shape (n_obs, K)
        First-stage means.
    cond_mean_y : array or tensor, shape (n_obs,)
        Outcome mean given the first-stage errors,
        :math:`\mu_{y,i} + \rho' v_i`.
    chol_vv : array or tensor, shape (K, K)
        Lower Cholesky factor of the first-stage error covariance.
    sigma_eps : float or tensor
        Sd of the outcome error given :math:`v`.
    n_endog : int, optional
        K; needed for tensors, read from ``mu_x`` for arrays.
    include_outcome : bool, default True
        False returns the first-stage term only (the threshold model adds the
        outcome term, marginalised over the threshold, elsewhere).

    Returns
    -------
    array or tensor, shape (n_obs,)
        :math:`\log N(v_i; 0, L_{vv} L_{vv}') + \log N(y_i; \mathrm E[y_i \mid v_i],
        \sigma_\varepsilon^2)`.

    Notes
    -----
    With :math:`u_i = \rho' v_i + \varepsilon_i` this is the bivariate (or
    multivariate) normal density of :math:`(v_i, u_i)` factorised as
    :math:`p(v_i)\, p(u_i \mid v_i)`; the Jacobian of
    :math:`(x_i, y_i) \mapsto (v_i, u_i)` is one because :math:`x_i` enters
    the outcome mean as data.
    """
    tensor = any(isinstance(a, pt.Variable) for a in (value, mu_x, chol_vv, sigma_eps))
    xp = pt if tensor else np
    if n_endog is None:
        if tensor:
            raise ModelError("cf_pointwise_logp needs n_endog for tensor inputs.")
        n_endog = int(np.shape(mu_x)[-1])
    v = value[..., :n_endog] - mu_x
    # CustomDist broadcasts every parameter to the rows; the factor is shared.
    while chol_vv.ndim > 2:
        chol_vv = chol_vv[0]
    if n_endog == 1:
        z = v / chol_vv[0, 0]
    elif tensor:
        z = pt.linalg.solve_triangular(chol_vv, v.T, lower=True).T
    else:
        z = np.linalg.solve(chol_vv, v.T).T
    log_det = xp.log(xp.diag(chol_vv)).sum()
    first_stage = -0.5 * n_endog * np.log(2 * np.pi) - log_det - 0.5 * (z**2).sum(axis=-1)
    if not include_outcome:
        return first_stage
    resid = (value[..., n_endog] - cond_mean_y) / sigma_eps
    outcome = -0.5 * np.log(2 * np.pi) - xp.log(sigma_eps) - 0.5 * resid**2
    return first_stage + outcome


def _cf_random(mu_x, cond_mean_y, chol_vv, sigma_eps, equation_template, rng=None, size=None):
    """Draw first-stage replicates and outcome replicates given the observed ``v``.

    ``equation_template`` (zeros of length K + 1) only carries the size of the
    ``equation`` dim, which the signature cannot infer from the other inputs.
    """
    mu_x = np.asarray(mu_x)
    batch = np.broadcast_shapes(
        mu_x.shape[:-1], np.shape(cond_mean_y), np.shape(chol_vv)[:-2], np.shape(sigma_eps)
    )
    if size is not None:
        batch = tuple(np.atleast_1d(size))
    n_endog = mu_x.shape[-1]
    z = rng.standard_normal(batch + (n_endog,))
    x_rep = np.broadcast_to(mu_x, batch + (n_endog,)) + np.einsum(
        "...ij,...j->...i", np.asarray(chol_vv), z
    )
    y_rep = cond_mean_y + np.asarray(sigma_eps) * rng.standard_normal(batch)
    return np.concatenate([x_rep, np.broadcast_to(y_rep, batch)[..., None]], axis=-1)


# ---------------------------------------------------------------------------
# Design arrays and the graph
# ---------------------------------------------------------------------------


@dataclass
class CFParts:
    """A built control-function model and the design it was built from.

    Attributes
    ----------
    model : pymc.Model
    spec : ControlFunctionSpec
    coords : dict
        Model coords.
    X : numpy.ndarray, shape (n_obs, K)
        Standardised endogenous regressors.
    y : numpy.ndarray, shape (n_obs,)
        Standardised outcome.
    kernel : ThresholdKernel or None
        Threshold grid and regime design (``cf_threshold``).
    threshold_variable : str or None
    threshold_grid_original : numpy.ndarray or None
        Grid of the threshold in original units of its column.
    spline : SplineDesign or None
    threshold_outputs : dict
        Tensors evaluated per draw after sampling (``cf_threshold``).
    """

    model: pm.Model
    spec: ControlFunctionSpec
    coords: dict[str, list]
    X: np.ndarray
    y: np.ndarray
    kernel: ThresholdKernel | None = None
    threshold_variable: str | None = None
    threshold_grid_original: np.ndarray | None = None
    spline: SplineDesign | None = None
    threshold_outputs: dict[str, Any] = field(default_factory=dict)


def _standardised(data: ModelData, column: str) -> np.ndarray:
    scale = data.scaling[column]
    return (data.frame[column].to_numpy(dtype=float) - scale["mean"]) / scale["sd"]


def _equation_coords(endog: list[str]) -> list[str]:
    if len(endog) == 1:
        return ["first_stage", "outcome"]
    return [f"first_stage:{name}" for name in endog] + ["outcome"]


def _first_stage(priors, Z, W, time_idx, n_endog: int, use_years: bool, has_cov: bool):
    """Return the first-stage means, shape (n_obs, K)."""
    lead = ("endog",) if n_endog > 1 else ()
    fs_intercept = priors["fs_intercept"].create("fs_intercept", dims=lead or None)
    fs_instrument = priors["fs_instrument"].create("fs_instrument", dims=(*lead, "instrument"))
    if n_endog > 1:
        mu_x = fs_intercept[None, :] + pt.dot(Z, fs_instrument.T)
    else:
        mu_x = (fs_intercept + pt.dot(Z, fs_instrument))[:, None]
    if has_cov:
        fs_covariate = priors["fs_covariate"].create("fs_covariate", dims=(*lead, "covariate"))
        if n_endog > 1:
            mu_x = mu_x + pt.dot(W, fs_covariate.T)
        else:
            mu_x = mu_x + pt.dot(W, fs_covariate)[:, None]
    if use_years:
        fs_year = priors["fs_year"].create("fs_year", dims=(*lead, "year"))
        mu_x = mu_x + (fs_year[:, time_idx].T if n_endog > 1 else fs_year[time_idx][:, None])
    return mu_x


def build_control_function_parts(spec: ControlFunctionSpec, data: ModelData) -> CFParts:
    r"""Build a control-function model and keep the design it used.

    Parameters
    ----------
    spec : ControlFunctionSpec
    data : ModelData
        Output of :func:`polygvc.models.data.prepare_model_data` for ``spec``.

    Returns
    -------
    CFParts

    Raises
    ------
    ModelError
        ``data`` was prepared for another spec (a column is missing from its
        scaling), or the threshold variable or spline knots have too few
        distinct values.

    Notes
    -----
    Variables shared with :func:`~polygvc.models.hierarchical_iv.build_hierarchical_iv`
    keep its names and dims (with one endogenous regressor): ``fs_*``,
    ``intercept*``, ``beta_*``, ``gamma``, ``year_effect``, ``error_chol``,
    ``sigma`` (equation), ``rho``, ``effect_*``. With several endogenous
    regressors the ``fs_*`` variables gain a leading dim ``endog`` and the
    ``equation`` coords are ``first_stage:<column>`` then ``outcome``. Added:
    ``cf_coef`` (:math:`\rho`, dim ``endog`` when K > 1),
    ``sigma_outcome_given_v`` (:math:`\sigma_\varepsilon`), ``theta`` and
    ``effect_interaction`` (dim ``interaction``), ``beta_extra`` (dim
    ``extra_endog``), and the threshold or spline terms of their modules.
    Pooled terms follow ``spec.parameterization``
    (:mod:`polygvc.models.pooling`); offsets are named ``<term>_offset``.
    """
    missing = [column for column in spec.columns if column not in data.scaling]
    if missing:
        raise ModelError(
            f"The model data has no column {missing[0]!r}, so it was prepared for another "
            "spec. Fix: call prepare_model_data(panel, spec) with this ControlFunctionSpec."
        )
    priors = spec.resolved_priors
    endog = spec.endog_columns
    n_endog = len(endog)
    X = np.column_stack([_standardised(data, column) for column in endog])
    M = (
        np.column_stack([_standardised(data, column) for column in spec.interactions])
        if spec.interactions
        else np.zeros((data.n_obs, 0))
    )
    coords = {key: list(value) for key, value in data.coords.items()}
    coords["equation"] = _equation_coords(endog)
    if n_endog > 1:
        coords["endog"] = list(endog)
        coords["extra_endog"] = list(spec.extra_endog)
    if spec.interactions:
        coords["interaction"] = [f"{spec.endog}:{m}" for m in spec.interactions]

    kernel = grid_original = spline_design = None
    if spec.kind == "cf_threshold":
        assert spec.threshold is not None and spec.threshold_variable is not None
        q_name = spec.threshold_variable
        q = _standardised(data, q_name)
        kernel = prepare_kernel(q, X[:, 0], data.unit_idx, spec.threshold, q_name)
        scale = data.scaling[q_name]
        grid_original = kernel.grid * scale["sd"] + scale["mean"]
        coords["threshold_grid"] = [float(g) for g in grid_original]
        coords.update(regime_coords(spec.threshold))
    if spec.kind == "cf_spline":
        assert spec.spline is not None
        spline_design = prepare_spline_design(X[:, 0], spec.spline, spec.endog)
        coords["knot"] = list(range(spline_design.n_basis))
        scale = data.scaling[spec.endog]
        coords["x_grid"] = [float(v) for v in spline_design.x_grid * scale["sd"] + scale["mean"]]

    n_year = len(coords["year"])
    use_years = spec.year_effects and n_year > 1
    has_covariates = data.W.shape[1] > 0
    y_sd = data.scaling[spec.dependent]["sd"]
    ratio = y_sd / data.scaling[spec.endog]["sd"]
    group_of_unit = np.asarray(data.group_idx_of_unit)
    outputs: dict[str, Any] = {}

    with pm.Model(coords=coords) as model:
        Z = pm.Data("Z", data.Z, dims=("obs", "instrument"))
        W = pm.Data("W", data.W, dims=("obs", "covariate"))
        x = pm.Data("x", data.x, dims="obs")
        y = pm.Data("y", data.y, dims="obs")
        unit_idx = pm.Data("unit_idx", data.unit_idx, dims="obs")
        time_idx = pm.Data("time_idx", data.time_idx, dims="obs")
        X_all = pm.Data("X_endog", X, dims=("obs", "endog")) if n_endog > 1 else x[:, None]

        mu_x = _first_stage(priors, Z, W, time_idx, n_endog, use_years, has_covariates)

        # Intercepts pooled by region; the region level stays non-centred
        # (see declare_pooled_outcome_parameters). The spline's level replaces the global
        # intercept, and province spline deviations replace the province
        # intercepts (B-spline columns sum to one).
        centred = spec.centred_for(np.bincount(data.unit_idx, minlength=len(coords["province"])))
        spline = spec.kind == "cf_spline"
        deviations = spline and spec.spline is not None and spec.spline.province_deviations
        alpha = 0.0 if spline else priors["intercept"].create("intercept")
        intercept_region_sd = priors["intercept_region_sd"].create("intercept_region_sd")
        intercept_region = pooled_normal(
            "intercept_region", alpha, intercept_region_sd, "region", False
        )
        if deviations:
            intercept_province = pm.Deterministic(
                "intercept_province", intercept_region[group_of_unit], dims="province"
            )
        else:
            intercept_province_sd = priors["intercept_province_sd"].create("intercept_province_sd")
            intercept_province = pooled_normal(
                "intercept_province",
                intercept_region[group_of_unit],
                intercept_province_sd,
                "province",
                centred,
            )
        mu_y = intercept_province[unit_idx]

        beta_mu = None
        if spline:
            assert spline_design is not None
            mu_y = mu_y + add_spline_term(spline_design, priors, unit_idx, deviations, y_sd)
            pm.Deterministic("effect_ame", model["spline_ame"] * ratio)
        else:
            beta_mu = priors["beta_mu"].create("beta_mu")
            beta_region_sd = priors["beta_region_sd"].create("beta_region_sd")
            beta_region = pooled_normal("beta_region", beta_mu, beta_region_sd, "region", False)
            if spec.province_slopes:
                beta_province_sd = priors["beta_province_sd"].create("beta_province_sd")
                beta_province = pooled_normal(
                    "beta_province",
                    beta_region[group_of_unit],
                    beta_province_sd,
                    "province",
                    centred,
                )
            else:
                beta_province = pm.Deterministic(
                    "beta_province", beta_region[group_of_unit], dims="province"
                )
            mu_y = mu_y + beta_province[unit_idx] * x

        if spec.interactions:
            M_data = pm.Data("M", M, dims=("obs", "interaction"))
            theta = priors["theta"].create("theta", dims="interaction")
            mu_y = mu_y + pt.dot(M_data * x[:, None], theta)
            m_sd = np.array([data.scaling[m]["sd"] for m in spec.interactions])
            pm.Deterministic("effect_interaction", theta * ratio / m_sd, dims="interaction")
        if n_endog > 1:
            beta_extra = priors["beta_extra"].create("beta_extra", dims="extra_endog")
            mu_y = mu_y + pt.dot(X_all[:, 1:], beta_extra)
        if has_covariates:
            gamma = priors["gamma"].create("gamma", dims="covariate")
            mu_y = mu_y + pt.dot(W, gamma)
        if use_years:
            year_effect = priors["year_effect"].create("year_effect", dims="year")
            mu_y = mu_y + year_effect[time_idx]

        # Joint error covariance of (v, u) through its Cholesky factor, as in
        # the hierarchical IV model; rho and sigma_eps follow from it.
        chol, corr, sigmas = pm.LKJCholeskyCov(
            "error_chol",
            n=n_endog + 1,
            eta=spec.lkj_eta,
            sd_dist=priors["sigma"].dist_object(),
            compute_corr=True,
        )
        pm.Deterministic("sigma", sigmas, dims="equation")
        chol_vv = chol[:n_endog, :n_endog]
        l_yv = chol[n_endog, :n_endog]
        sigma_eps = chol[n_endog, n_endog]
        if n_endog == 1:
            pm.Deterministic("rho", corr[0, 1])
            cf_coef = pm.Deterministic("cf_coef", l_yv[0] / chol_vv[0, 0])
            control = cf_coef * (x - mu_x[:, 0])
        else:
            cf_coef = pm.Deterministic(
                "cf_coef",
                pt.linalg.solve_triangular(chol_vv.T, l_yv, lower=False),
                dims="endog",
            )
            control = pt.dot(X_all - mu_x, cf_coef)
        pm.Deterministic("sigma_outcome_given_v", sigma_eps)

        if spec.kind == "cf_threshold":
            assert kernel is not None and beta_mu is not None
            resid = y - mu_y - control
            # The regime design is computed in the graph from model data, so a
            # refit on new data values (pm.set_data, CompiledModel.with_data)
            # moves the regimes. The grid stays the one built from this data.
            if q_name in endog:
                q_data = X_all[:, endog.index(q_name)]
            else:
                q_data = pm.Data("threshold_variable", q, dims="obs")
            delta = add_threshold_term(
                kernel, priors, resid, sigma_eps, beta_mu, ratio, q=q_data, x_regime=x
            )
            outputs = {
                "resid": resid,
                "delta": delta,
                "sigma_eps": sigma_eps,
                "mu_x": mu_x,
                "chol_vv": chol_vv,
                "fs_logp": cf_pointwise_logp(
                    pt.concatenate([X_all, y[:, None]], axis=1),
                    mu_x,
                    mu_y,
                    chol_vv,
                    sigma_eps,
                    n_endog=n_endog,
                    include_outcome=False,
                ),
            }
            # The outcome column's density is in the potential threshold_loglik;
            # complete_cf_datatree fills in its log-likelihood and predictive.
            cond_mean_y = pt.full_like(y, np.nan)
            include_outcome = False
        else:
            cond_mean_y = mu_y + control
            include_outcome = True

        # Built from the pm.Data variables (not copied as constants), so the
        # likelihood reads swapped-in data values.
        observed = pt.concatenate([X_all, y[:, None]], axis=1)

        def logp(value, mu_x, cond_mean_y, chol_vv, sigma_eps, equation_template):
            return cf_pointwise_logp(
                value,
                mu_x,
                cond_mean_y,
                chol_vv,
                sigma_eps,
                n_endog=n_endog,
                include_outcome=include_outcome,
            )

        pm.CustomDist(
            OBSERVED_NAME,
            mu_x,
            cond_mean_y,
            chol_vv,
            sigma_eps,
            np.zeros(n_endog + 1),
            logp=logp,
            random=_cf_random,
            signature="(k),(),(k,k),(),(e)->(e)",
            observed=observed,
            dims=("obs", "equation"),
        )

        if beta_mu is not None:
            pm.Deterministic("effect_mu", beta_mu * ratio)
            pm.Deterministic("effect_region", model["beta_region"] * ratio, dims="region")
            pm.Deterministic("effect_province", model["beta_province"] * ratio, dims="province")

    return CFParts(
        model=model,
        spec=spec,
        coords=coords,
        X=X,
        y=np.asarray(data.y, dtype=float),
        kernel=kernel,
        threshold_variable=spec.threshold_variable,
        threshold_grid_original=grid_original,
        spline=spline_design,
        threshold_outputs=outputs,
    )


def build_control_function(spec: ControlFunctionSpec, data: ModelData) -> pm.Model:
    """Build the PyMC model of a control-function spec.

    Parameters
    ----------
    spec : ControlFunctionSpec
    data : ModelData

    Returns
    -------
    pymc.Model
        Observed variable ``outcomes`` with dims ``(obs, equation)``; see
        :func:`build_control_function_parts` for the variables.

    Raises
    ------
    ModelError
        As :func:`build_control_function_parts`.

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
    ...     "z": rng.normal(size=n), "m": rng.normal(size=n),
    ...     "y": rng.normal(size=n), "x": rng.normal(size=n)})
    >>> spec = ControlFunctionSpec(dependent="y", endog="x", instruments=["z"],
    ...                            moderators=["m"], interactions=["m"])
    >>> model = build_control_function(spec, prepare_model_data(panel, spec))
    >>> model.named_vars_to_dims["theta"]
    ('interaction',)
    """
    return build_control_function_parts(spec, data).model


def cf_data_values(parts: CFParts, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Return every ``pm.Data`` value that changes when ``x`` and ``y`` change.

    Parameters
    ----------
    parts : CFParts
        The built model and its design.
    x : numpy.ndarray, shape (n_obs,) or (n_obs, K)
        New standardised endogenous regressors on the model rows (K columns
        with extra endogenous regressors, ``endog`` first).
    y : numpy.ndarray, shape (n_obs,)
        New standardised outcome.

    Returns
    -------
    dict of str to numpy.ndarray
        ``x``, ``y``, ``X_endog`` (K > 1) and, for ``cf_spline``, the basis at
        the new ``x`` (:func:`~polygvc.models.cf_spline.spline_data`). Pass it to
        ``pm.set_data`` or nutpie's ``CompiledModel.with_data``.

    Raises
    ------
    ModelError
        ``x`` or ``y`` has a shape other than the model's.

    Notes
    -----
    What the builder derived from the data stays as built: the
    standardisation, the threshold grid, the spline knots and boundary. The
    threshold regimes follow the new values because the regime design is
    computed in the graph. Instruments, covariates, the grouping and a
    threshold variable that is not endogenous stay the model's.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    X = x[:, None] if x.ndim == 1 else x
    if X.shape != parts.X.shape or y.shape != parts.y.shape:
        raise ModelError(
            f"New data have x of shape {x.shape} and y of shape {y.shape}, but the model was "
            f"built with x of shape {parts.X.shape} and y of shape {parts.y.shape}. Fix: pass "
            "values for the same rows and endogenous regressors, or rebuild the model."
        )
    values = {"x": X[:, 0], "y": y}
    if X.shape[1] > 1:
        values["X_endog"] = X
    if parts.spline is not None:
        values.update(spline_data(parts.spline, X[:, 0]))
    return values


def complete_cf_datatree(
    dt: xr.DataTree, spec: HierarchicalIVSpec, data: ModelData, seed: int | None = None
) -> xr.DataTree:
    """Add what sampling alone cannot store for a control-function fit.

    Call it on the result of :func:`polygvc.inference.sampling.sample_model`.
    For ``cf_threshold`` it adds the threshold posterior (``posterior``
    ``threshold``, group ``threshold``), the pointwise log-likelihood
    ``outcomes`` at each draw's threshold and the outcome predictive
    (see :func:`polygvc.models.cf_threshold.add_threshold_results`). For
    every other spec it returns ``dt`` unchanged.

    Parameters
    ----------
    dt : xarray.DataTree
    spec : HierarchicalIVSpec or ControlFunctionSpec
    data : ModelData
        The data the model was built on.
    seed : int, optional
        Seed of the threshold and predictive draws.

    Returns
    -------
    xarray.DataTree
    """
    if not isinstance(spec, ControlFunctionSpec) or spec.kind != "cf_threshold":
        return dt
    parts = build_control_function_parts(spec, data)
    return add_threshold_results(dt, parts, seed=seed)


REPORTED_PARAMETERS = (
    "beta_mu",
    "beta_region",
    "beta_province",
    "beta_region_sd",
    "beta_province_sd",
    "beta_regime",
    "beta_jump",
    "intercept_jump",
    "beta_extra",
    "theta",
    "spline_sigma",
    "spline_province_sigma",
    "spline_ame",
    "intercept",
    "intercept_province_sd",
    "intercept_region_sd",
    "fs_instrument",
    "fs_covariate",
    "gamma",
    "sigma",
    "rho",
    "cf_coef",
    "sigma_outcome_given_v",
    "effect_mu",
    "effect_interaction",
    "effect_regime",
    "effect_ame",
)
