r"""Partially pooled normal terms, centred or non-centred, and the rule that picks one.

A pooled term :math:`\theta_k \sim N(\mu_{g(k)}, \tau^2)` can be written in two
ways that define the same prior:

* non-centred: a free offset :math:`z_k \sim N(0, 1)` and
  :math:`\theta_k = \mu_{g(k)} + \tau z_k`;
* centred: :math:`\theta_k` itself is the free variable.

Which one samples well depends on how informative the data are about each
:math:`\theta_k`. When a group has few rows, its likelihood is flat compared
with the prior, :math:`\theta_k` and :math:`\tau` form a funnel, and the
non-centred form removes it. When every group has many rows, each
:math:`\theta_k` is pinned down by its own data, and the non-centred form
creates the funnel instead. Then :math:`z_k` and :math:`\tau` are tightly
negatively correlated, so NUTS needs long trajectories and the gradient calls
per draw grow with the number of rows (measured in
``benchmarks/bench_sampling.py``).

:func:`pooled_normal` declares a term in either form under the same names:
the term ``name`` and its standardised offset ``offset_name`` are always in
the model, one as the free variable and the other as a deterministic, so
posterior readers (scenarios, pooling factors, reports) work with both.
:func:`use_centred` turns the config value ``"auto" | "centred" |
"non_centred"`` into a choice from the number of rows per group. The IV
builders apply the choice to the province level only (see
:func:`polygvc.models.hierarchical_iv.declare_pooled_outcome_parameters`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymc as pm

from polygvc.errors import ConfigError

__all__ = [
    "AUTO_CENTRED_MIN_ROWS",
    "PARAMETERIZATIONS",
    "pooled_normal",
    "use_centred",
]

PARAMETERIZATIONS = ("auto", "centred", "non_centred")

# "auto" centres the province terms when every province has at least this
# many rows. Measured with benchmarks/bench_sampling.py (31 provinces, 300
# draws x 4 chains, about 160 rows per province): the centred province level
# gave several times the ESS per second of the non-centred form. Its sampling
# time stayed flat up to 1,000,000 rows, where the non-centred form took 11x
# to 15x longer than at 5,000. The cut-off of 50 rows is a judgement between
# that design and the real province panel (2 rows per province), where the
# non-centred form is the standard choice. It was not tuned on other sizes.
AUTO_CENTRED_MIN_ROWS = 50


def use_centred(parameterization: str, rows_per_unit: Sequence[float] | np.ndarray) -> bool:
    """Decide whether the pooled terms are declared centred.

    Parameters
    ----------
    parameterization : {"auto", "centred", "non_centred"}
        The ``model.parameterization`` setting.
    rows_per_unit : array-like of float
        Rows of data per pooled unit (province).

    Returns
    -------
    bool
        True for the centred form. ``"auto"`` is centred when the smallest
        unit has at least :data:`AUTO_CENTRED_MIN_ROWS` rows.

    Raises
    ------
    ConfigError
        Unknown setting.
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ConfigError(
            f"model.parameterization = {parameterization!r} is not one of "
            f"{', '.join(PARAMETERIZATIONS)}. Fix: use 'auto' unless you have measured that "
            "the other form samples better."
        )
    if parameterization != "auto":
        return parameterization == "centred"
    rows = np.asarray(rows_per_unit, dtype=float)
    return bool(rows.size > 0 and rows.min() >= AUTO_CENTRED_MIN_ROWS)


def pooled_normal(
    name: str,
    mean,
    sd,
    dims: str,
    centred: bool,
    offset_name: str | None = None,
):
    """Declare ``name ~ Normal(mean, sd)`` in the current model, centred or not.

    Parameters
    ----------
    name : str
        Name of the pooled term (one value per element of ``dims``).
    mean, sd : tensor
        Prior mean (broadcast to ``dims``) and the pooling sd.
    dims : str
        Dim of the term, e.g. ``"province"``.
    centred : bool
        Declare the term itself as the free variable (True) or a standard
        normal offset (False).
    offset_name : str, optional
        Name of the standardised deviation ``(name - mean) / sd``; default
        ``<name>_offset``.

    Returns
    -------
    tensor
        The term, with both ``name`` and ``offset_name`` in the model.
    """
    offset_name = offset_name or f"{name}_offset"
    if centred:
        term = pm.Normal(name, mean, sd, dims=dims)
        pm.Deterministic(offset_name, (term - mean) / sd, dims=dims)
        return term
    offset = pm.Normal(offset_name, 0.0, 1.0, dims=dims)
    return pm.Deterministic(name, mean + sd * offset, dims=dims)
