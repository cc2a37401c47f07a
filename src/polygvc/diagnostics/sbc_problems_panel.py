r"""SBC problem for the fixed-effects panel threshold model (Hansen 1999 form).

The model (:mod:`polygvc.models.panel_threshold`) integrates the unit fixed
effects out under a flat prior and sums the threshold out over its grid. Its
likelihood reads the data only through the within-transformed outcome's
cross-products with the design, which are ``pm.Data``, so one compiled model
serves every simulated outcome (:func:`~polygvc.models.panel_threshold.panel_outcome_values`).

The simulator draws ``beta_scaled``, ``beta_regime_scaled`` and
``sigma_scaled`` from the model's prior and the threshold uniformly from the
grid (the model's prior), then builds the outcome on the scaled,
untransformed design

.. math::

    y^*_{it} = a_i + x_{it}'\beta + z_{it}\,\beta_{\text{high}}
        + z_{it}\,1[q_{it} \le \gamma]\,(\beta_{\text{low}} - \beta_{\text{high}})
        + \sigma\,\varepsilon_{it},

with :math:`\varepsilon_{it}` standard normal and unit effects
:math:`a_i` standard normal. The within transform removes :math:`a_i`, so the
posterior does not depend on them; they are there so that the data look like
a panel. The model is fitted to the within-transformed :math:`y^*`.

The threshold is not sampled by NUTS. After each fit the problem's
``recover`` step draws one threshold per posterior draw from its conditional
posterior on the simulated outcome
(:func:`~polygvc.models.panel_threshold.panel_threshold_posterior` with the
simulated outcome's cross-products); ties with the true grid point are split
at random when ranking.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from polygvc.diagnostics.sbc import SBCProblem, draw_to_dict, prior_draws

__all__ = ["panel_threshold_problem"]

_PARAMETERS = ("beta_scaled", "beta_regime_scaled", "sigma_scaled")


def _design(n_units: int, n_periods: int, seed: int) -> pd.DataFrame:
    """Return a balanced panel with a control ``x``, regime regressor ``z`` and threshold ``q``.

    ``y`` is a placeholder that fixes the outcome scale.
    """
    rng = np.random.default_rng(seed)
    n = n_units * n_periods
    unit_level = np.repeat(rng.normal(size=n_units), n_periods)
    return pd.DataFrame(
        {
            "unit": np.repeat([f"u{unit:03d}" for unit in range(n_units)], n_periods),
            "period": np.tile(np.arange(n_periods), n_units),
            "x": rng.normal(size=n) + unit_level,
            "z": rng.normal(size=n) + 0.5 * unit_level,
            "q": rng.normal(size=n) + unit_level,
            "y": rng.normal(size=n),
        }
    )


def _simulate_panel(
    model: Any, n: int, seed: int, *, data: Any, frame: pd.DataFrame
) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Simulate ``n`` within-transformed outcomes from the model's prior."""
    from polygvc.models.panel_threshold import panel_outcome_values
    from polygvc.models.threshold import within_transform

    kernel = data.kernel
    with warnings.catch_warnings():
        # The potential is the likelihood, not a prior term, so prior draws
        # rightly leave it out.
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = prior_draws(model, n, seed, list(_PARAMETERS))
    rng = np.random.default_rng(seed + 7919)
    grid_prior = np.exp(kernel.log_prior)
    threshold_index = np.random.default_rng([seed, 1]).choice(
        kernel.grid.size, size=n, p=grid_prior / grid_prior.sum()
    )
    units = frame[data.unit].to_numpy()
    unit_codes = pd.factorize(units)[0]
    x_raw = np.column_stack(
        [
            frame[c].to_numpy(float) / scale
            for c, scale in zip(data.controls, data.x_scale, strict=True)
        ]
    )
    z_raw = frame[data.regime_var].to_numpy(float) / data.z_scale
    q = frame[data.threshold_var].to_numpy(float)

    out = []
    for s in range(n):
        draw = draw_to_dict(prior, _PARAMETERS, s)
        low, high = draw["beta_regime_scaled"]
        gamma = kernel.grid[threshold_index[s]]
        effects = rng.standard_normal(unit_codes.max() + 1)[unit_codes]
        y_star = (
            effects
            + x_raw @ draw["beta_scaled"]
            + z_raw * high
            + z_raw * (q <= gamma) * (low - high)
            + float(draw["sigma_scaled"]) * rng.standard_normal(units.size)
        )
        y = within_transform(y_star, units)
        truth = {name: draw[name] for name in _PARAMETERS}
        truth["threshold"] = float(gamma)
        out.append((truth, panel_outcome_values(data, y)))
    return out


def _recover_panel_threshold(
    posterior: xr.Dataset, updates: Mapping[str, np.ndarray], seed: int, *, data: Any
) -> xr.Dataset:
    """Add ``threshold``, one grid draw per posterior draw, for the simulated outcome."""
    from polygvc.models.panel_threshold import OUTCOME_STATISTICS, panel_threshold_posterior

    linear = dict(data.kernel.linear)
    linear.update({key: np.asarray(updates[f"panel_{key}"]) for key in OUTCOME_STATISTICS})
    simulated = replace(data, kernel=replace(data.kernel, linear=linear))
    trace = xr.DataTree.from_dict({"posterior": posterior})
    recovered = panel_threshold_posterior(trace, simulated, seed)
    gamma = recovered["gamma"].transpose("chain", "draw").to_numpy()
    return posterior.assign(threshold=(("chain", "draw"), gamma))


def panel_threshold_problem(
    n_units: int = 40,
    n_periods: int = 6,
    n_grid: int = 10,
    seed: int = 1,
    priors: Mapping[str, Any] | None = None,
) -> SBCProblem:
    """Return the single-threshold fixed-effects panel model as an SBC problem.

    Parameters
    ----------
    n_units, n_periods : int
        Balanced panel size.
    n_grid : int, default 10
        Grid points: quantiles of ``q`` between its 15% and 85% quantiles.
    seed : int
        Seed of the fixed design.
    priors : mapping, optional
        Overrides of :data:`~polygvc.models.panel_threshold.PANEL_THRESHOLD_PRIORS`.

    Returns
    -------
    SBCProblem
        Ranked: ``beta_scaled[x]``, ``beta_regime_scaled[low]``,
        ``beta_regime_scaled[high]``, ``sigma_scaled`` and ``threshold``.
    """
    from polygvc.models.panel_threshold import (
        build_panel_threshold_model,
        prepare_panel_threshold,
    )
    from polygvc.models.threshold import threshold_grid

    frame = _design(n_units, n_periods, seed)
    data = prepare_panel_threshold(
        frame,
        dependent="y",
        regime_var="z",
        threshold_var="q",
        controls=["x"],
        unit="unit",
        grid=threshold_grid(frame["q"].to_numpy(), n_grid=n_grid, name="q"),
    )
    name = f"panel_threshold_{n_units}x{n_periods}_g{n_grid}"
    if seed != 1:
        name += f"_seed{seed}"
    if priors:
        name += "_priors_" + "_".join(sorted(priors))
    parameters: Sequence[str] = (*_PARAMETERS, "threshold")
    return SBCProblem(
        name=name,
        build_model=functools.partial(build_panel_threshold_model, data, dict(priors or {})),
        simulate=functools.partial(_simulate_panel, data=data, frame=frame),
        parameters=tuple(parameters),
        description=(
            f"fixed-effects panel threshold, {n_units} units x {n_periods} periods, "
            f"one control, {n_grid}-point grid"
        ),
        recover=functools.partial(_recover_panel_threshold, data=data),
    )
