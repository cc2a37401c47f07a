"""Posterior predictive checks per equation of the IV model.

The stored predictive variable ``outcomes`` has dims (chain, draw, obs,
equation), with equation ``first_stage`` (the endogenous regressor) and
``outcome`` (the dependent variable), both standardised. Each equation is
checked on its own: replicated-data means and sds against the observed ones,
per-observation interval coverage, and LOO-PIT values.

References
----------
Gelman, Carlin, Stern, Dunson, Vehtari and Rubin (2013). Bayesian Data
Analysis, 3rd ed., chapter 6 (posterior predictive p-values).
Vehtari, Gelman and Gabry (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. Statistics and Computing 27(5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from polygvc.errors import DataError

__all__ = ["LooPitResult", "loo_pit_check", "posterior_predictive_summary"]

logger = logging.getLogger(__name__)

SAMPLE_DIMS = ("chain", "draw")


@dataclass
class LooPitResult:
    """LOO-PIT values, or the reason they do not apply.

    Attributes
    ----------
    applicable : bool
        False when the tree lacks what LOO-PIT needs; ``reason`` names what is missing.
    reason : str
        Why LOO-PIT does not apply, or how it was computed when it does.
    values : xarray.DataArray or None
        PIT values in [0, 1] with dims (obs, equation). Under a calibrated
        model they are close to uniform; values piling up near 0 and 1 mean the
        predictive distribution is too narrow, values piling up near 0.5 mean
        it is too wide.
    summary : pandas.DataFrame or None
        Per equation: mean PIT (0.5 expected) and the share of PIT values
        outside [0.05, 0.95] (0.10 expected).
    """

    applicable: bool
    reason: str
    values: xr.DataArray | None = None
    summary: pd.DataFrame | None = None


def _predictive_pair(dt: xr.DataTree, var_name: str) -> tuple[xr.DataArray, xr.DataArray]:
    for group in ("posterior_predictive", "observed_data"):
        if group not in dt.children:
            raise DataError(
                f"The results tree has no '{group}' group (groups present: "
                f"{sorted(dt.children)}). Sample the posterior predictive with "
                "polygvc.inference.sampling.sample_model before checking it."
            )
        if var_name not in dt[group].data_vars:
            raise DataError(
                f"Variable '{var_name}' is not in group '{group}'. Valid names: "
                f"{sorted(dt[group].data_vars)}."
            )
    predictive = dt["posterior_predictive"][var_name]
    observed = dt["observed_data"][var_name]
    if "equation" not in predictive.dims:
        predictive = predictive.expand_dims(equation=[var_name], axis=-1)
        observed = observed.expand_dims(equation=[var_name], axis=-1)
    return predictive, observed


def posterior_predictive_summary(
    dt: xr.DataTree, var_name: str = "outcomes", *, ci_prob: float | None = None
) -> pd.DataFrame:
    r"""Compare observed and replicated data per equation.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``posterior_predictive`` and ``observed_data``.
    var_name : str
        Predictive variable; dims (chain, draw, obs[, equation]).
    ci_prob : float, optional
        Interval probability; defaults to ``arviz_base.rcParams["stats.ci_prob"]``.

    Returns
    -------
    pandas.DataFrame
        Indexed by equation, columns: ``observed_mean``, ``predictive_mean``,
        ``mean_ci_lb``, ``mean_ci_ub`` (equal-tailed interval of the replicated
        means), ``p_mean``; the same four for the sd (``observed_sd`` ...
        ``p_sd``); ``coverage`` (share of observations inside their own
        pointwise predictive interval; ``ci_prob`` expected) and ``n_obs``.
        ``attrs["ci_prob"]`` records the probability.

    Raises
    ------
    polygvc.errors.DataError
        If a group or the variable is missing.

    Notes
    -----
    The posterior predictive p-value of a test statistic :math:`T` is
    :math:`p_B = \Pr(T(y^{rep}) \ge T(y) \mid y)`, estimated by the share of
    draws (Gelman et al. 2013, ch. 6). Values near 0 or 1 flag a misfit. A
    value near 0.5 shows no misfit in that statistic. For the mean of a model
    with an intercept, such a value is expected by construction.
    """
    prob = rcParams["stats.ci_prob"] if ci_prob is None else float(ci_prob)
    predictive, observed = _predictive_pair(dt, var_name)
    tail = (1.0 - prob) / 2.0
    rows = {}
    for equation in predictive["equation"].values:
        pred = predictive.sel(equation=equation)
        obs = observed.sel(equation=equation)
        obs_dims = [d for d in pred.dims if d not in SAMPLE_DIMS]
        rep_mean = pred.mean(obs_dims)
        rep_sd = pred.std(obs_dims, ddof=1)
        obs_mean = float(obs.mean())
        obs_sd = float(obs.std(ddof=1))
        lower = pred.quantile(tail, dim=list(SAMPLE_DIMS))
        upper = pred.quantile(1.0 - tail, dim=list(SAMPLE_DIMS))
        inside = (obs >= lower) & (obs <= upper)
        rows[str(equation)] = {
            "observed_mean": obs_mean,
            "predictive_mean": float(rep_mean.mean()),
            "mean_ci_lb": float(rep_mean.quantile(tail)),
            "mean_ci_ub": float(rep_mean.quantile(1.0 - tail)),
            "p_mean": float((rep_mean >= obs_mean).mean()),
            "observed_sd": obs_sd,
            "predictive_sd": float(rep_sd.mean()),
            "sd_ci_lb": float(rep_sd.quantile(tail)),
            "sd_ci_ub": float(rep_sd.quantile(1.0 - tail)),
            "p_sd": float((rep_sd >= obs_sd).mean()),
            "coverage": float(inside.mean()),
            "n_obs": int(obs.size),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "equation"
    frame.attrs["ci_prob"] = prob
    return frame


def _summarise_pit(values: xr.DataArray) -> pd.DataFrame:
    rows = {}
    for equation in values["equation"].values:
        pit = values.sel(equation=equation).values.ravel()
        rows[str(equation)] = {
            "mean_pit": float(np.mean(pit)),
            "share_outside_05_95": float(np.mean((pit < 0.05) | (pit > 0.95))),
            "n_obs": int(pit.size),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "equation"
    return frame


def loo_pit_check(dt: xr.DataTree, var_name: str = "outcomes") -> LooPitResult:
    r"""Compute LOO-PIT values per equation, or say why they do not apply.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``posterior``, ``posterior_predictive``, ``observed_data``
        and ``log_likelihood``.
    var_name : str
        Variable present in those groups.

    Returns
    -------
    LooPitResult
        Not applicable (with the reason) when a group or variable is missing,
        or when the log-likelihood dims fit neither layout below.

    Notes
    -----
    The stored log-likelihood of ``outcomes`` is the joint bivariate normal
    density of both equations per obs, with dims (chain, draw, obs). PSIS
    weights from it leave out a whole province-year; applied to the
    predictive draws of one equation they give
    :math:`\Pr(\tilde y_{i,e} \le y_{i,e} \mid y_{-i})`, the LOO-PIT of that
    equation's marginal (Vehtari et al. 2017). When the log-likelihood also has
    the ``equation`` dim, each equation uses its own. Computed by
    :func:`arviz_stats.loo_pit` on one equation at a time.
    """
    missing = [
        group
        for group in ("posterior", "posterior_predictive", "observed_data", "log_likelihood")
        if group not in dt.children
        or (group != "posterior" and var_name not in dt[group].data_vars)
    ]
    if missing:
        return LooPitResult(
            False,
            f"LOO-PIT needs '{var_name}' in groups {missing}, which the results tree lacks.",
        )
    predictive, observed = _predictive_pair(dt, var_name)
    log_lik = dt["log_likelihood"][var_name]
    pred_obs_dims = set(predictive.dims) - set(SAMPLE_DIMS)
    lik_obs_dims = set(log_lik.dims) - set(SAMPLE_DIMS)
    if not lik_obs_dims <= pred_obs_dims or not lik_obs_dims:
        return LooPitResult(
            False,
            f"log_likelihood '{var_name}' has dims {sorted(lik_obs_dims)}, which are not a "
            f"non-empty subset of the predictive dims {sorted(pred_obs_dims)}; PSIS weights "
            "cannot be matched to predictive draws.",
        )

    posterior = dt["posterior"].to_dataset()
    pieces = []
    for equation in predictive["equation"].values:
        lik = log_lik.sel(equation=equation) if "equation" in log_lik.dims else log_lik
        sub = xr.DataTree.from_dict(
            {
                "posterior": posterior,
                "posterior_predictive": predictive.sel(equation=equation, drop=True).to_dataset(
                    name=var_name
                ),
                "observed_data": observed.sel(equation=equation, drop=True).to_dataset(
                    name=var_name
                ),
                "log_likelihood": lik.drop_vars("equation", errors="ignore").to_dataset(
                    name=var_name
                ),
            }
        )
        pit = azs.loo_pit(sub, var_names=var_name)[var_name]
        pieces.append(pit.expand_dims(equation=[equation]))
    values = xr.concat(pieces, dim="equation").transpose(..., "equation")
    method_note = (
        "PSIS weights from the joint log-likelihood of both equations per obs"
        if "equation" not in log_lik.dims
        else "PSIS weights from each equation's own log-likelihood"
    )
    return LooPitResult(True, method_note, values, _summarise_pit(values))
