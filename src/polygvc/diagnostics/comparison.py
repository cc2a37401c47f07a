"""Model comparison by PSIS-LOO, with Pareto-k diagnostics in plain words.

:func:`compare_models` takes fitted results (DataTrees with a
``log_likelihood`` group, as :func:`polygvc.inference.sampling.sample_model`
and :func:`polygvc.models.control_function.complete_cf_datatree` write them)
and returns the :func:`arviz_stats.compare` table with Pareto-k counts added.

The pointwise log-likelihood ``outcomes`` of every polygvc IV model is the
joint density of one row's first stage and outcome, so LOO here leaves out a
whole province-year (both equations). For threshold models it is the
conditional log-likelihood at each draw's sampled threshold.

A Pareto shape ``k`` above 0.7 (or above the sample-size dependent
``good_k = min(1 - 1/log10(S), 0.7)`` for ``S`` draws) means the importance
weights for leaving that row out have too heavy a tail, so its LOO term and the
ELPD difference can be biased (Vehtari, Gelman and Gabry 2017; Vehtari et al.
2024, "Pareto smoothed importance sampling", JMLR 25).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import compare, loo

from polygvc.errors import DataQualityWarning, ModelError

logger = logging.getLogger(__name__)

__all__ = ["PARETO_K_LIMIT", "compare_models", "loo_table"]

PARETO_K_LIMIT = 0.7
OBSERVED_NAME = "outcomes"


def _check_tree(name: str, dt: xr.DataTree, var_name: str) -> int:
    if "log_likelihood" not in dt.children:
        raise ModelError(
            f"Model {name!r} has no log_likelihood group, so LOO cannot be computed. Fix: "
            "sample with log_likelihood = true in [inference] (and, for cf_threshold models, "
            "call complete_cf_datatree after sampling)."
        )
    group = dt["log_likelihood"]
    if var_name not in group.data_vars:
        raise ModelError(
            f"Model {name!r} has no log-likelihood variable {var_name!r}; it has "
            f"{sorted(group.data_vars)}. Fix: pass var_name= one of these."
        )
    values = group[var_name].to_numpy()
    if not np.all(np.isfinite(values)):
        raise ModelError(
            f"Model {name!r}: the log-likelihood {var_name!r} has "
            f"{int(np.sum(~np.isfinite(values)))} non-finite values. Fix: for a cf_threshold "
            "model, call complete_cf_datatree after sampling; otherwise check the fit."
        )
    sizes = group[var_name].sizes
    return int(np.prod([size for dim, size in sizes.items() if dim not in ("chain", "draw")]))


def loo_table(models: Mapping[str, xr.DataTree], var_name: str = OBSERVED_NAME) -> pd.DataFrame:
    """Compute PSIS-LOO of each model with its Pareto-k summary.

    Parameters
    ----------
    models : mapping of str to xarray.DataTree
    var_name : str, default "outcomes"

    Returns
    -------
    pandas.DataFrame
        Index = model name; columns ``elpd``, ``se``, ``p_loo``, ``n_obs``,
        ``good_k``, ``max_k``, ``n_k_above_0.7``, ``n_k_above_good_k`` and
        ``pareto_k_message`` (empty when no row is flagged).
    """
    rows = {}
    for name, dt in models.items():
        _check_tree(name, dt, var_name)
        result = loo(dt, pointwise=True, var_name=var_name)
        k = np.asarray(result.pareto_k).ravel()
        n_high = int(np.sum(k > PARETO_K_LIMIT))
        n_above_good = int(np.sum(k > result.good_k))
        rows[name] = {
            "elpd": float(result.elpd),
            "se": float(result.se),
            "p_loo": float(result.p),
            "n_obs": int(result.n_data_points),
            "good_k": float(result.good_k),
            "max_k": float(np.max(k)),
            "n_k_above_0.7": n_high,
            "n_k_above_good_k": n_above_good,
            "pareto_k_message": _pareto_message(name, n_above_good, k.size, result.good_k),
            "_loo": result,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _pareto_message(name: str, n_flagged: int, n_obs: int, good_k: float) -> str:
    if n_flagged == 0:
        return ""
    return (
        f"{name}: {n_flagged} of {n_obs} rows have Pareto k > {good_k:.2f}, so their "
        "leave-one-out terms are unreliable and the ELPD may be too optimistic. These rows "
        "are influential (often provinces with few years). Fix: use exact K-fold "
        "cross-validation by province (arviz_stats.loo_kfold), or moment matching "
        "(arviz_stats.loo(..., moment_match=True, model=pymc_model)), before trusting the "
        "ranking."
    )


def compare_models(
    models: Mapping[str, xr.DataTree],
    var_name: str = OBSERVED_NAME,
    method: str = "stacking",
) -> pd.DataFrame:
    r"""Rank fitted models by PSIS-LOO expected log predictive density.

    Parameters
    ----------
    models : mapping of str to xarray.DataTree
        At least two fitted results on the same rows, keyed by model name.
    var_name : str, default "outcomes"
        Log-likelihood variable (joint over both equations in polygvc models).
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Weighting method of :func:`arviz_stats.compare`.

    Returns
    -------
    pandas.DataFrame
        The :func:`arviz_stats.compare` table (``rank``, ``elpd``, ``p``,
        ``elpd_diff``, ``weight``, ``se``, ``dse``, ...; best model first,
        ``elpd_diff`` = model minus best, so higher is better) joined with
        ``n_obs``, ``good_k``, ``max_k``, ``n_k_above_0.7``,
        ``n_k_above_good_k`` and ``pareto_k_message``.

    Raises
    ------
    ModelError
        Fewer than two models, a model without the log-likelihood variable or
        with non-finite values, or models fitted on different numbers of rows.

    Warns
    -----
    DataQualityWarning
        When any model has rows with Pareto k above ``good_k``; the message
        names the model, the count and the fix.

    Notes
    -----
    PSIS-LOO (Vehtari, Gelman and Gabry 2017, Statistics and Computing 27,
    1413-1432) estimates :math:`\mathrm{elpd} = \sum_i \log p(y_i \mid
    y_{-i})`. The difference of two models has standard error ``dse`` from
    the paired pointwise differences; a difference smaller than about 4 or
    than twice ``dse`` does not separate the models.
    """
    if len(models) < 2:
        raise ModelError(
            f"compare_models needs at least two models; got {len(models)} "
            f"({', '.join(models) or 'none'}). Fix: pass a dict of two or more fitted results."
        )
    sizes = {name: _check_tree(name, dt, var_name) for name, dt in models.items()}
    if len(set(sizes.values())) > 1:
        raise ModelError(
            f"The models were fitted on different numbers of rows {sizes}, so their ELPDs "
            "are not comparable. Fix: fit every model on the same model data."
        )
    table = loo_table(models, var_name=var_name)
    loos = {name: table.loc[name, "_loo"] for name in table.index}
    ranking = compare(loos, method=method, round_to="none")
    extra = table.drop(columns=["_loo", "elpd", "se", "p_loo"])
    out = ranking.join(extra)
    for message in out["pareto_k_message"]:
        if message:
            warnings.warn(message, DataQualityWarning, stacklevel=2)
    logger.info("LOO comparison of %d models: best %s", len(models), out.index[0])
    return out
