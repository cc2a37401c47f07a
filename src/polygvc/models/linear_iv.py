r"""Non-hierarchical Bayesian IV model: one first stage, one outcome equation, correlated errors.

This is the joint (full-information) linear IV model of
:mod:`polygvc.models.hierarchical_iv` without units, groups or year effects,
for cross-sections such as Card (1995). On standardised data, for row
:math:`i`:

.. math::

    x_i &= \pi_0 + Z_i \pi + W_i \delta + u_i \\
    y_i &= \alpha + \beta x_i + W_i \gamma + e_i \\
    (u_i, e_i)' &\sim \mathcal N(0, \Sigma), \quad
        \Sigma = \operatorname{diag}(\sigma)\, \Omega \operatorname{diag}(\sigma),
        \quad \Omega \sim \operatorname{LKJ}(\eta)

The likelihood is exact for the same reason as in the hierarchical model:
:math:`x_i` enters the mean of :math:`y_i` as data, so the Jacobian of
:math:`(x_i, y_i) \mapsto (u_i, e_i)` is one (Lancaster 2004, ch. 8).

The hierarchical model cannot stand in for this one with a single group: with
one region the region-level slope offset and ``beta_region_sd`` enter only
through ``beta_mu + beta_region_sd * beta_region_offset``, so ``beta_mu`` is
not identified from the data and its posterior keeps the prior spread of that
sum; :func:`polygvc.models.data.prepare_model_data` also requires two units.

Default priors are in :data:`LINEAR_IV_PRIORS` (standardised scale), and
overrides go by name exactly as for the hierarchical model.

``build_linear_iv(likelihood="suffstat")`` writes the same likelihood on the
Gram matrix of the rows, as :mod:`polygvc.models.hierarchical_iv_suffstat`
does per province. Long runs then cost little, which matters when a tail
quantity such as the posterior sd under a weak instrument has to be estimated
to a few per cent.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from polygvc.errors import ConfigError, DataError, ModelError
from polygvc.models.hierarchical_iv import OBSERVED_NAME
from polygvc.models.hierarchical_iv_suffstat import POTENTIAL_NAME, gram_loglik
from polygvc.models.likelihoods import bivariate_normal
from polygvc.models.priors import Prior, check_prior_name, prior_from_setting

__all__ = [
    "LIKELIHOODS",
    "LINEAR_IV_PRIORS",
    "LinearIVData",
    "bivariate_normal",
    "build_linear_iv",
    "linear_iv_gram",
    "prepare_linear_iv_data",
    "resolve_linear_iv_priors",
]


def _defaults() -> dict[str, Prior]:
    table: dict[str, tuple[str, dict[str, float]]] = {
        "fs_intercept": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "fs_instrument": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "fs_covariate": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "intercept": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "beta": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "gamma": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "sigma": ("HalfNormal", {"sigma": 1.0}),
    }
    return {name: Prior(dist, name=name, **params) for name, (dist, params) in table.items()}


LIKELIHOODS = ("observed", "suffstat")
"""Names accepted by ``build_linear_iv(likelihood=...)``."""

LINEAR_IV_PRIORS: dict[str, Prior] = _defaults()
"""Default priors of the linear IV model on the standardised scale, by parameter name."""


def resolve_linear_iv_priors(overrides: Mapping[str, Any] | None) -> dict[str, Prior]:
    """Merge prior overrides into :data:`LINEAR_IV_PRIORS`.

    Parameters
    ----------
    overrides : mapping of str to Prior or dict, optional
        Each value is a :class:`~polygvc.models.priors.Prior` or
        ``{"dist": ..., **params}``.

    Returns
    -------
    dict of str to Prior

    Raises
    ------
    ConfigError
        Unknown parameter name, a mapping without ``dist``, or a prior on
        ``sigma`` without positive support.
    """
    priors = dict(LINEAR_IV_PRIORS)
    for name, value in (overrides or {}).items():
        check_prior_name(name, LINEAR_IV_PRIORS, "linear IV")
        prior = prior_from_setting(
            value,
            name=name,
            label=f"Linear IV prior {name!r}",
            default=LINEAR_IV_PRIORS[name],
            prior_name=name,
        )
        if name == "sigma" and not prior.positive:
            raise ConfigError(
                f"Linear IV prior 'sigma' is {prior}, which allows negative values. Fix: use a "
                "positive distribution (HalfNormal, HalfStudentT, HalfCauchy, Exponential, Gamma)."
            )
        priors[name] = prior
    return priors


@dataclass
class LinearIVData:
    """Standardised arrays of a cross-sectional IV design.

    Attributes
    ----------
    y, x : ndarray, shape (n_obs,)
        Standardised dependent and endogenous variables.
    Z : ndarray, shape (n_obs, n_instrument)
        Standardised excluded instruments.
    W : ndarray, shape (n_obs, n_covariate)
        Standardised included exogenous regressors.
    coords : dict
        Coordinates of ``obs``, ``instrument``, ``covariate``, ``equation``.
    scaling : dict
        ``{column: {"mean": m, "sd": s}}`` of the original columns.
    dependent, endog : str
        Column names of ``y`` and ``x``.
    """

    y: np.ndarray
    x: np.ndarray
    Z: np.ndarray
    W: np.ndarray
    coords: dict[str, list]
    scaling: dict[str, dict[str, float]]
    dependent: str
    endog: str

    @property
    def n_obs(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    @property
    def effect_ratio(self) -> float:
        """``sd(y) / sd(x)``: multiplies a standardised slope into original units."""
        return self.scaling[self.dependent]["sd"] / self.scaling[self.endog]["sd"]


def prepare_linear_iv_data(
    frame: pd.DataFrame,
    dependent: str,
    endog: str,
    instruments: Sequence[str],
    exog: Sequence[str] = (),
    source: str = "the data",
) -> LinearIVData:
    """Select complete rows and standardise every column of a cross-sectional IV design.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    dependent, endog : str
        Outcome and endogenous regressor columns.
    instruments : sequence of str
        Excluded instruments (at least one).
    exog : sequence of str
        Included exogenous regressors (the intercept is added by the model).
    source : str
        Name of the data used in error messages.

    Returns
    -------
    LinearIVData

    Raises
    ------
    DataError
        A column is missing or not numeric.
    ModelError
        No instrument, a constant column, or fewer rows than coefficients.
    """
    if not instruments:
        raise ModelError("The linear IV model needs at least one instrument; none was given.")
    columns = [dependent, endog, *instruments, *exog]
    for column in columns:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, list(map(str, frame.columns)), n=3)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise DataError(f"Column {column!r} is missing from {source}.{hint}")
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(
                f"Column {column!r} in {source} has type {frame[column].dtype}; it must be "
                "numeric. Fix: convert it to numbers."
            )
    rows = frame[columns].dropna()
    if len(rows) <= len(columns):
        raise ModelError(
            f"{source} has {len(rows)} complete rows for {len(columns)} columns; the linear IV "
            "model needs more rows than coefficients."
        )
    scaling: dict[str, dict[str, float]] = {}
    standardised: dict[str, np.ndarray] = {}
    for column in columns:
        values = rows[column].to_numpy(dtype=float)
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        if sd <= 1e-12 * max(1.0, abs(mean)):
            raise ModelError(
                f"Column {column!r} is constant ({mean:g}) in {source}, so its coefficient "
                "cannot be estimated. Fix: drop it from the model."
            )
        scaling[column] = {"mean": mean, "sd": sd}
        standardised[column] = (values - mean) / sd
    W = np.column_stack([standardised[c] for c in exog]) if exog else np.zeros((len(rows), 0))
    return LinearIVData(
        y=standardised[dependent],
        x=standardised[endog],
        Z=np.column_stack([standardised[c] for c in instruments]),
        W=W,
        coords={
            "obs": list(range(len(rows))),
            "instrument": list(instruments),
            "covariate": list(exog),
            "equation": ["first_stage", "outcome"],
        },
        scaling=scaling,
        dependent=dependent,
        endog=endog,
    )


def build_linear_iv(
    data: LinearIVData,
    priors: Mapping[str, Any] | None = None,
    lkj_eta: float = 2.0,
    likelihood: str = "observed",
) -> pm.Model:
    """Build the joint linear IV model with bivariate normal errors.

    Parameters
    ----------
    data : LinearIVData
        From :func:`prepare_linear_iv_data`.
    priors : mapping, optional
        Overrides of :data:`LINEAR_IV_PRIORS` by name.
    lkj_eta : float, default 2.0
        Shape of the LKJ prior on the error correlation (1 is uniform on
        ``rho``; larger values pull ``rho`` towards 0).
    likelihood : {"observed", "suffstat"}, default "observed"
        ``"observed"`` writes one bivariate normal density per row.
        ``"suffstat"`` writes the same log-likelihood on the Gram matrix of
        ``(x, y, 1, Z, W)`` (see :mod:`polygvc.models.sufficient`), so a
        gradient costs the same at any number of rows.

    Returns
    -------
    pymc.Model
        Free variables ``fs_intercept``, ``fs_instrument`` (dim
        ``instrument``), ``fs_covariate`` and ``gamma`` (dim ``covariate``,
        only with covariates), ``intercept``, ``beta``, ``error_chol``;
        deterministics ``sigma`` (dim ``equation``), ``rho`` and ``effect``
        (the slope in original units, ``beta * sd(y) / sd(x)``). With
        ``likelihood="observed"`` the observed variable is ``outcomes`` with
        dims ``(obs, equation)``, and ``x`` and ``y`` are ``pm.Data`` so a
        compiled model can be refitted on new data. With
        ``likelihood="suffstat"`` the data are the ``pm.Data`` variable
        ``gram`` (dims ``gram_row``, ``gram_col``) and the likelihood is the
        potential ``outcomes_loglik``.

    Raises
    ------
    ModelError
        ``lkj_eta`` is not positive, or ``likelihood`` is not one of the two
        names.

    Notes
    -----
    See the module docstring for the equations. With a just-identified design
    and weak priors the posterior mode is close to LIML, which equals 2SLS when
    the model is just identified.
    """
    if lkj_eta <= 0:
        raise ModelError(f"lkj_eta = {lkj_eta} must be > 0.")
    if likelihood not in LIKELIHOODS:
        raise ModelError(
            f"likelihood = {likelihood!r} is not known; use one of {', '.join(LIKELIHOODS)}."
        )
    resolved = resolve_linear_iv_priors(priors)
    if likelihood == "suffstat":
        return _build_suffstat(data, resolved, lkj_eta)
    has_covariates = data.W.shape[1] > 0
    with pm.Model(coords=data.coords) as model:
        Z = pm.Data("Z", data.Z, dims=("obs", "instrument"))
        W = pm.Data("W", data.W, dims=("obs", "covariate"))
        x = pm.Data("x", data.x, dims="obs")
        y = pm.Data("y", data.y, dims="obs")

        fs_intercept = resolved["fs_intercept"].create("fs_intercept")
        fs_instrument = resolved["fs_instrument"].create("fs_instrument", dims="instrument")
        mu_x = fs_intercept + pt.dot(Z, fs_instrument)

        intercept = resolved["intercept"].create("intercept")
        beta = resolved["beta"].create("beta")
        mu_y = intercept + beta * x
        if has_covariates:
            fs_covariate = resolved["fs_covariate"].create("fs_covariate", dims="covariate")
            gamma = resolved["gamma"].create("gamma", dims="covariate")
            mu_x = mu_x + pt.dot(W, fs_covariate)
            mu_y = mu_y + pt.dot(W, gamma)

        chol = _error_covariance(resolved, lkj_eta)
        bivariate_normal(
            OBSERVED_NAME,
            mu=pt.stack([mu_x, mu_y], axis=1),
            chol=chol,
            observed=pt.stack([x, y], axis=1),
            dims=("obs", "equation"),
        )
        pm.Deterministic("effect", beta * data.effect_ratio)
    return model


def _error_covariance(resolved: dict[str, Prior], lkj_eta: float) -> pt.TensorVariable:
    """Declare the LKJ error covariance, ``sigma`` and ``rho``, and return its Cholesky factor."""
    chol, corr, sigmas = pm.LKJCholeskyCov(
        "error_chol",
        n=2,
        eta=lkj_eta,
        sd_dist=resolved["sigma"].dist_object(),
        compute_corr=True,
    )
    pm.Deterministic("sigma", sigmas, dims="equation")
    pm.Deterministic("rho", corr[0, 1])
    return chol


def linear_iv_gram(data: LinearIVData) -> np.ndarray:
    """Return the Gram matrix of the rows ``d_i = (x_i, y_i, 1, Z_i, W_i)``, shape ``(D, D)``.

    Entry ``[2, 2]`` is the number of rows.
    """
    design = np.column_stack([data.x, data.y, np.ones(data.n_obs), data.Z, data.W])
    return design.T @ design


def _build_suffstat(data: LinearIVData, resolved: dict[str, Prior], lkj_eta: float) -> pm.Model:
    labels = ["x", "y", "const", *data.coords["instrument"], *data.coords["covariate"]]
    coords = {key: value for key, value in data.coords.items() if key != "obs"}
    coords["gram_row"] = labels
    coords["gram_col"] = labels
    n_instrument = data.Z.shape[1]
    has_covariates = data.W.shape[1] > 0
    with pm.Model(coords=coords) as model:
        gram = pm.Data("gram", linear_iv_gram(data), dims=("gram_row", "gram_col"))
        fs_intercept = resolved["fs_intercept"].create("fs_intercept")
        fs_instrument = resolved["fs_instrument"].create("fs_instrument", dims="instrument")
        intercept = resolved["intercept"].create("intercept")
        beta = resolved["beta"].create("beta")
        # Residuals are u_i = a_u d_i and e_i = a_e d_i.
        a_u_parts = [pt.ones(1), pt.zeros(1), -pt.atleast_1d(fs_intercept), -fs_instrument]
        a_e_parts = [
            -pt.atleast_1d(beta),
            pt.ones(1),
            -pt.atleast_1d(intercept),
            pt.zeros(n_instrument),
        ]
        if has_covariates:
            fs_covariate = resolved["fs_covariate"].create("fs_covariate", dims="covariate")
            gamma = resolved["gamma"].create("gamma", dims="covariate")
            a_u_parts.append(-fs_covariate)
            a_e_parts.append(-gamma)
        chol = _error_covariance(resolved, lkj_eta)
        a_u = pt.concatenate(a_u_parts)
        a_e = pt.concatenate(a_e_parts)[None, :]
        # gram_loglik takes one Gram matrix per group; this model has one group.
        pm.Potential(POTENTIAL_NAME, gram_loglik(gram[None, :, :], a_u, a_e, chol))
        pm.Deterministic("effect", beta * data.effect_ratio)
    return model
