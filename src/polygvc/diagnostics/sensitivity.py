r"""Prior and likelihood sensitivity by power-scaling (Kallioinen et al. 2024).

The posterior is perturbed as :math:`p_\alpha(\theta \mid y) \propto
p(\theta)^\alpha p(y \mid \theta)` (prior scaling) or
:math:`p(\theta)\, p(y \mid \theta)^\alpha` (likelihood scaling) with
:math:`\alpha` near 1; the change of each marginal posterior, measured by the
cumulative Jensen-Shannon distance per unit of :math:`\log \alpha` and
estimated by Pareto-smoothed importance sampling from the existing draws, is
the sensitivity. A higher value means the posterior of that parameter moves
more when the prior (or likelihood) is made stronger or weaker.

Reference: Kallioinen, Paananen, Bürkner and Vehtari (2024), Detecting and
diagnosing prior and likelihood sensitivity with power-scaling, Statistics
and Computing 34:57. Computation by ``arviz_stats.psense`` (arviz-stats 1.3),
which needs the groups ``log_prior`` and ``log_likelihood``; the pipeline
stores ``log_likelihood`` (variable ``outcomes``), and :func:`prior_sensitivity`
adds ``log_prior`` with ``pymc.compute_log_prior`` when it is missing.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from polygvc.errors import DataError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAIN_PARAMETERS",
    "diagnose_sensitivity",
    "prior_sensitivity",
    "scaled_prior_names",
]

DEFAULT_THRESHOLD = 0.05
"""Sensitivity above which a prior or likelihood counts as influential (Kallioinen et al. 2024)."""

DIAGNOSES = {
    "conflict": "prior-data conflict",
    "strong_prior": "strong prior / weak likelihood",
    "weak_likelihood": "weak likelihood",
    "ok": "no concern",
}


def diagnose_sensitivity(
    prior: float, likelihood: float, threshold: float = DEFAULT_THRESHOLD
) -> str:
    """Name the diagnosis of one parameter from its prior and likelihood sensitivity.

    Parameters
    ----------
    prior, likelihood : float
        Power-scaling sensitivities.
    threshold : float
        Boundary between small and large sensitivity.

    Returns
    -------
    str
        ``"prior-data conflict"`` when both are above ``threshold``;
        ``"strong prior / weak likelihood"`` when only the prior one is;
        ``"weak likelihood"`` when neither is (the data say little, and the
        prior, although not dominant, is not challenged either);
        ``"no concern"`` when only the likelihood one is, the usual case of a
        data-driven posterior.
    """
    if prior > threshold and likelihood > threshold:
        return DIAGNOSES["conflict"]
    if prior > threshold:
        return DIAGNOSES["strong_prior"]
    if likelihood <= threshold:
        return DIAGNOSES["weak_likelihood"]
    return DIAGNOSES["ok"]


MAIN_PARAMETERS = (
    "beta_mu", "fs_instrument", "rho", "sigma", "beta_region_sd", "beta_province_sd", "gamma",
    "theta", "cf_coef", "beta_regime",
)
"""Structural and first-stage parameters whose sensitivity runs and pre-flight checks report."""

# Group-level terms whose prior is the hierarchical model itself; the
# centred province and region terms of models.pooling carry these names.
POOLED_TERMS = frozenset({"intercept_province", "beta_province", "intercept_region", "beta_region"})


def scaled_prior_names(log_prior: xr.Dataset) -> list[str]:
    """Return the ``log_prior`` variables that prior power-scaling scales.

    Group-level terms are left out: the standard-normal offsets
    (``<term>_offset``) and the centred pooled terms. Scaling their densities
    shrinks or spreads every group effect at once, which changes the
    hierarchical model rather than the strength of a prior, and on the real
    province panel it marked every parameter as a prior-data conflict. Their
    scale parameters (``<term>_sd``) stay in, so the pooling prior is still
    assessed.
    """
    return [
        str(name)
        for name in log_prior.data_vars
        if not str(name).endswith("_offset") and str(name) not in POOLED_TERMS
    ]


def _with_log_prior(dt: xr.DataTree, model: Any) -> xr.DataTree:
    if "log_prior" in dt.children:
        return dt
    if model is None:
        raise DataError(
            "The result has no log_prior group and no model was given to compute it. Fix: pass "
            "the PyMC model (model=...) or add the group with pymc.stats.compute_log_prior."
        )
    import pymc as pm

    dt = dt.copy()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        pm.stats.compute_log_prior(dt, model=model, extend_inferencedata=True, progressbar=False)
    return dt


def prior_sensitivity(
    dt: xr.DataTree,
    model: Any = None,
    var_names: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    alphas: tuple[float, float] = (0.99, 1.01),
) -> pd.DataFrame:
    """Compute power-scaling prior and likelihood sensitivity with a diagnosis per parameter.

    Parameters
    ----------
    dt : xarray.DataTree
        Result with ``posterior`` and ``log_likelihood`` groups; not modified.
    model : pymc.Model, optional
        Needed only when ``dt`` has no ``log_prior`` group.
    var_names : sequence of str, optional
        Posterior variables to assess; all of them by default. Names missing
        from the posterior are skipped with a log message.
    threshold : float, default 0.05
        Sensitivity boundary of the diagnosis.
    alphas : tuple of float
        Power-scaling factors below and above 1.

    Returns
    -------
    pandas.DataFrame
        One row per scalar parameter element (``beta_mu``, ``sigma[outcome]``);
        columns ``prior``, ``likelihood`` (sensitivities; higher = more
        sensitive) and ``diagnosis`` (see :func:`diagnose_sensitivity`).

    Raises
    ------
    DataError
        The posterior or log-likelihood group is missing, or no ``log_prior``
        group and no model.

    Notes
    -----
    Summing the pointwise log likelihood of every observed variable gives the
    likelihood that is scaled. The scaled log prior sums the densities that
    ``pymc.compute_log_prior`` stores (constrained scale) over the variables
    of :func:`scaled_prior_names`, which leaves out the group-level terms.
    """
    from arviz_stats import psense

    for group in ("posterior", "log_likelihood"):
        if group not in dt.children:
            raise DataError(
                f"Sensitivity needs the '{group}' group of the result, which has only "
                f"{', '.join(dt.children)}. Fix: sample with log_likelihood = true in [inference]."
            )
    dt = _with_log_prior(dt, model)
    posterior = dt["posterior"]
    names = list(var_names) if var_names is not None else list(posterior.data_vars)
    present = [name for name in names if name in posterior.data_vars]
    skipped = sorted(set(names) - set(present))
    if skipped:
        logger.info("Sensitivity: not in the posterior, skipped: %s", ", ".join(skipped))
    with warnings.catch_warnings():
        # PSIS warns when k-hat is high; a power-scaling step of 1% keeps k-hat
        # small, and the table is still informative when it is not.
        warnings.filterwarnings("ignore", category=UserWarning, module="arviz_stats")
        prior = psense(
            dt, var_names=present, group="prior", alphas=alphas,
            group_var_names=scaled_prior_names(dt["log_prior"].to_dataset()),
        )
        likelihood = psense(dt, var_names=present, group="likelihood", alphas=alphas)
    rows = []
    for name in present:
        prior_values = np.atleast_1d(prior[name].values).reshape(-1)
        like_values = np.atleast_1d(likelihood[name].values).reshape(-1)
        extra_dims = [d for d in prior[name].dims]
        if extra_dims:
            labels = [
                f"{name}[{', '.join(str(v) for v in combo)}]"
                for combo in _coord_products(prior[name])
            ]
        else:
            labels = [name]
        for label, p_value, l_value in zip(labels, prior_values, like_values, strict=True):
            rows.append(
                {
                    "parameter": label,
                    "prior": round(float(p_value), 4),
                    "likelihood": round(float(l_value), 4),
                    "diagnosis": diagnose_sensitivity(float(p_value), float(l_value), threshold),
                }
            )
    return pd.DataFrame(rows).set_index("parameter")


def _coord_products(values: xr.DataArray) -> list[tuple]:
    grids = np.meshgrid(*[values[d].values for d in values.dims], indexing="ij")
    return list(zip(*[grid.reshape(-1) for grid in grids], strict=True))
