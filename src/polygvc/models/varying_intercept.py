r"""Linear regression with group-varying intercepts, non-centred: ``y ~ x + (1 | group)``.

For row :math:`i` in group :math:`j[i]`:

.. math::

    y_i &= \alpha_{j[i]} + X_i \beta + e_i, \qquad e_i \sim \mathcal N(0, \sigma^2) \\
    \alpha_j &= \alpha_0 + s_\alpha z_j, \qquad z_j \sim \mathcal N(0, 1)

This is the varying-intercept model of Gelman and Hill (2007, ch. 12), used
here as a reference check against their Minnesota radon results and as a
second model class for simulation-based calibration. The data are used as
given (no standardising), so published coefficients can be compared directly;
the default priors in :data:`VARYING_INTERCEPT_PRIORS` are weakly informative
for outcomes and regressors of order one.

Variables: ``intercept`` (:math:`\alpha_0`), ``beta`` (dim ``covariate``),
``intercept_<group>_sd`` (:math:`s_\alpha`), ``intercept_<group>_offset``
(:math:`z`, dim ``<group>``), deterministic ``intercept_<group>``
(:math:`\alpha`), ``sigma``; the observed variable is ``outcomes`` (dim
``obs``). ``<group>`` is the group dim name, e.g. ``county`` or ``province``.
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
from polygvc.models.priors import Prior, check_prior_name, prior_from_setting

__all__ = [
    "VARYING_INTERCEPT_PRIORS",
    "VaryingInterceptData",
    "build_varying_intercept",
    "prepare_varying_intercept_data",
    "resolve_varying_intercept_priors",
]

_PRIOR_TABLE: dict[str, tuple[str, dict[str, float]]] = {
    "intercept": ("Normal", {"mu": 0.0, "sigma": 5.0}),
    "beta": ("Normal", {"mu": 0.0, "sigma": 5.0}),
    # Named for any group dim; the variable is intercept_<group>_sd.
    "intercept_group_sd": ("HalfNormal", {"sigma": 1.0}),
    "sigma": ("HalfNormal", {"sigma": 2.0}),
}
VARYING_INTERCEPT_PRIORS: dict[str, Prior] = {
    name: Prior(dist, name=name, **params) for name, (dist, params) in _PRIOR_TABLE.items()
}
"""Default priors of the varying-intercept model, by parameter name."""

_SCALES = {"intercept_group_sd", "sigma"}


def resolve_varying_intercept_priors(overrides: Mapping[str, Any] | None) -> dict[str, Prior]:
    """Merge prior overrides into :data:`VARYING_INTERCEPT_PRIORS`.

    Parameters
    ----------
    overrides : mapping of str to Prior or dict, optional
        Each value is a :class:`~polygvc.models.priors.Prior` or ``{"dist": ..., **params}``.

    Returns
    -------
    dict of str to Prior

    Raises
    ------
    ConfigError
        Unknown name, missing ``dist``, or a scale prior without positive support.
    """
    priors = dict(VARYING_INTERCEPT_PRIORS)
    for name, value in (overrides or {}).items():
        check_prior_name(name, VARYING_INTERCEPT_PRIORS, "varying-intercept")
        prior = prior_from_setting(
            value,
            name=name,
            label=f"Varying-intercept prior {name!r}",
            default=VARYING_INTERCEPT_PRIORS[name],
            prior_name=name,
        )
        if name in _SCALES and not prior.positive:
            raise ConfigError(
                f"Varying-intercept prior {name!r} is {prior}, which allows negative values. "
                "Fix: use HalfNormal, HalfStudentT, HalfCauchy, Exponential or Gamma."
            )
        priors[name] = prior
    return priors


@dataclass
class VaryingInterceptData:
    """Arrays and coords of a varying-intercept regression.

    Attributes
    ----------
    y : ndarray, shape (n_obs,)
        Outcome, in the units given.
    X : ndarray, shape (n_obs, n_covariate)
        Regressors, in the units given (no intercept column).
    group_idx : ndarray of int, shape (n_obs,)
        Position of each row's group in ``coords[group_dim]``.
    group_dim : str
        Name of the group dim (``county``, ``province``, ...).
    coords : dict
        Coordinates of ``obs``, ``covariate`` and ``group_dim``.
    """

    y: np.ndarray
    X: np.ndarray
    group_idx: np.ndarray
    group_dim: str
    coords: dict[str, list]

    @property
    def n_obs(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])


def prepare_varying_intercept_data(
    frame: pd.DataFrame,
    dependent: str,
    regressors: Sequence[str],
    group: str,
    group_dim: str = "group",
    source: str = "the data",
) -> VaryingInterceptData:
    """Collect the arrays of a varying-intercept regression from a tidy frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per observation.
    dependent : str
        Outcome column.
    regressors : sequence of str
        Numeric regressor columns (may be empty).
    group : str
        Column naming each row's group.
    group_dim : str, default "group"
        Name of the group dim in the model.
    source : str
        Name of the data used in error messages.

    Returns
    -------
    VaryingInterceptData
        Groups sorted by their label; rows with a missing value are dropped.

    Raises
    ------
    DataError
        A missing or non-numeric column.
    ModelError
        Fewer than two groups.
    """
    for column in [dependent, *regressors, group]:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, list(map(str, frame.columns)), n=3)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise DataError(f"Column {column!r} is missing from {source}.{hint}")
    for column in [dependent, *regressors]:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(
                f"Column {column!r} in {source} has type {frame[column].dtype}; it must be "
                "numeric. Fix: convert it to numbers."
            )
    rows = frame[[dependent, *regressors, group]].dropna()
    labels = sorted(set(rows[group]))
    if len(labels) < 2:
        raise ModelError(
            f"{source} has {len(labels)} distinct value(s) in {group!r}; varying intercepts "
            "need at least two groups."
        )
    position = {label: k for k, label in enumerate(labels)}
    X = rows[list(regressors)].to_numpy(dtype=float) if regressors else np.zeros((len(rows), 0))
    return VaryingInterceptData(
        y=rows[dependent].to_numpy(dtype=float),
        X=X,
        group_idx=rows[group].map(position).to_numpy(dtype=int),
        group_dim=group_dim,
        coords={
            "obs": list(range(len(rows))),
            "covariate": list(regressors),
            group_dim: [str(label) for label in labels],
        },
    )


def build_varying_intercept(
    data: VaryingInterceptData, priors: Mapping[str, Any] | None = None
) -> pm.Model:
    """Build the non-centred varying-intercept regression.

    Parameters
    ----------
    data : VaryingInterceptData
        From :func:`prepare_varying_intercept_data`.
    priors : mapping, optional
        Overrides of :data:`VARYING_INTERCEPT_PRIORS` by name.

    Returns
    -------
    pymc.Model
        See the module docstring for the variable names. ``X``, ``y`` and
        ``group_idx`` are ``pm.Data`` so a compiled model can be refitted on
        data of the same shape.

    Raises
    ------
    ConfigError
        Invalid prior overrides.
    """
    resolved = resolve_varying_intercept_priors(priors)
    group = data.group_dim
    with pm.Model(coords=data.coords) as model:
        X = pm.Data("X", data.X, dims=("obs", "covariate"))
        y = pm.Data("y", data.y, dims="obs")
        group_idx = pm.Data("group_idx", data.group_idx, dims="obs")

        intercept = resolved["intercept"].create("intercept")
        intercept_sd = resolved["intercept_group_sd"].create(f"intercept_{group}_sd")
        offset = pm.Normal(f"intercept_{group}_offset", 0.0, 1.0, dims=group)
        intercept_group = pm.Deterministic(
            f"intercept_{group}", intercept + intercept_sd * offset, dims=group
        )
        mu = intercept_group[group_idx]
        if data.X.shape[1] > 0:
            beta = resolved["beta"].create("beta", dims="covariate")
            mu = mu + pt.dot(X, beta)
        sigma = resolved["sigma"].create("sigma")
        pm.Normal(OBSERVED_NAME, mu=mu, sigma=sigma, observed=y, dims="obs")
    return model
