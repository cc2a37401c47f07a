r"""SBC problems for the control-function models: linear with an interaction, threshold, spline.

Each constructor builds a small synthetic province-year design, prepares it
for a :class:`~polygvc.models.control_function.ControlFunctionSpec` and
returns an :class:`~polygvc.diagnostics.sbc.SBCProblem` for
:func:`~polygvc.diagnostics.sbc.run_sbc`.

The simulator draws the parameters from the model's own prior
(:func:`~polygvc.diagnostics.sbc.prior_draws`) and generates the data in the
order of the structural model: first

.. math::

    x = \pi_0 + Z\pi + W\delta + \tau^x_t + v,

then the outcome at the simulated :math:`x`,
:math:`y = \alpha_p + f(x, m) + W\gamma + \tau^y_t + u`, with
:math:`(v, u)` bivariate normal with sds ``sigma`` and correlation ``rho``.
The model factorises the same density as :math:`p(v)\,p(u \mid v)` with
:math:`u \mid v \sim N(\rho' v, \sigma_\varepsilon^2)`, so the simulator and
the model are written from the two sides of that identity.

What the builder derives from the template data stays fixed for every
simulation, in the simulator and in the model alike: the standardisation,
the threshold grid (quantiles of the template threshold variable) and the
spline knots and boundary. Only ``pm.Data`` values change, through
:func:`~polygvc.models.control_function.cf_data_values`: ``x``, ``y`` and,
for the spline, the basis at the simulated ``x``. The threshold regimes are
computed in the model graph from ``x`` and the threshold variable.

The threshold is summed out of the likelihood, so NUTS does not sample it.
Its true value is drawn from the model's prior over the grid (uniform), and
after each fit the problem's ``recover`` step draws one threshold per
posterior draw from its conditional posterior
(:func:`~polygvc.models.threshold.threshold_posterior`), the same
computation as :func:`~polygvc.models.cf_threshold.add_threshold_results`
but on the simulated data. These draws are ranked; ties on the grid are split
at random.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from polygvc.diagnostics.sbc import SBCProblem, draw_to_dict, prior_draws, simulate_first_stage
from polygvc.errors import ModelError

__all__ = [
    "cf_linear_problem",
    "cf_problem_from_data",
    "cf_spline_problem",
    "cf_threshold_problem",
]

# Built models by problem name, so that a worker builds each model once and
# its recover step reads the same graph that was compiled.
_PARTS: dict[str, Any] = {}
# Compiled per-draw functions of the threshold recovery, by problem name.
_RECOVERY_FN: dict[str, Any] = {}

# Parameters that the simulator reads from the prior, when the model has them.
_SIMULATION_INPUTS = (
    "fs_intercept",
    "fs_instrument",
    "fs_covariate",
    "fs_year",
    "intercept_province",
    "beta_province",
    "theta",
    "gamma",
    "year_effect",
    "sigma",
    "rho",
    "threshold_delta",
    "intercept_delta",
    "spline",
)


def _design_panel(
    n_regions: int, provinces_per_region: int, years: Sequence[int], seed: int
) -> pd.DataFrame:
    """Return a panel with a row-varying instrument ``z``, control ``w`` and moderator ``m``.

    ``x`` and ``y`` are standard-normal placeholders: they fix the
    standardisation, and ``x`` fixes the spline knots.
    """
    rng = np.random.default_rng(seed)
    n_units = n_regions * provinces_per_region
    years = list(years)
    n = n_units * len(years)
    return pd.DataFrame(
        {
            "province": np.repeat([f"p{unit:02d}" for unit in range(n_units)], len(years)),
            "region": np.repeat([f"r{unit % n_regions}" for unit in range(n_units)], len(years)),
            "year": np.tile(years, n_units),
            "z": rng.normal(size=n),
            "w": rng.normal(size=n),
            "m": rng.normal(size=n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


def _cf_parts(name: str, spec: Any, data: Any) -> Any:
    """Build (once per process) the control-function model of a problem."""
    if name not in _PARTS:
        from polygvc.models.control_function import build_control_function_parts

        _PARTS[name] = build_control_function_parts(spec, data)
    return _PARTS[name]


def _cf_model(name: str, spec: Any, data: Any) -> Any:
    return _cf_parts(name, spec, data).model


def _standardised(data: Any, column: str) -> np.ndarray:
    scale = data.scaling[column]
    return (data.frame[column].to_numpy(dtype=float) - scale["mean"]) / scale["sd"]


def _threshold_draw(parts: Any, n: int, seed: int) -> np.ndarray:
    """Draw grid indices from the model's prior over the threshold grid."""
    prior = np.exp(parts.kernel.log_prior)
    return np.random.default_rng([seed, 1]).choice(prior.size, size=n, p=prior / prior.sum())


def _simulate_cf(
    model: Any, n: int, seed: int, *, name: str, spec: Any, data: Any, parameters: Sequence[str]
) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Simulate ``n`` data sets in structural order: ``x`` first, then ``y`` at that ``x``."""
    from polygvc.models.cf_spline import spline_data
    from polygvc.models.control_function import cf_data_values

    parts = _cf_parts(name, spec, data)
    from_prior = sorted(v for v in {*_SIMULATION_INPUTS, *parameters} if v in model.named_vars)
    with warnings.catch_warnings():
        # The threshold model's potential is its outcome likelihood, not a
        # prior term, so prior draws rightly leave it out.
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = prior_draws(model, n, seed, from_prior)
    rng = np.random.default_rng(seed + 7919)
    unit = data.unit_idx
    moderators = None
    if spec.interactions:
        moderators = np.column_stack([_standardised(data, column) for column in spec.interactions])
    threshold_index = _threshold_draw(parts, n, seed) if parts.kernel is not None else None
    q_fixed = None
    if parts.kernel is not None and spec.threshold_variable != spec.endog:
        q_fixed = _standardised(data, spec.threshold_variable)

    out = []
    for s in range(n):
        draw = draw_to_dict(prior, from_prior, s)
        x, mu_y, u = simulate_first_stage(draw, data, rng)

        truth = {v: draw[v] for v in parameters if v in draw}
        if "spline" in draw:
            # The basis at the simulated x, at the model's fixed knots.
            mu_y = mu_y + spline_data(parts.spline, x)["spline_basis"] @ draw["spline"]
        else:
            mu_y = mu_y + draw["beta_province"][unit] * x
        if moderators is not None:
            mu_y = mu_y + (moderators * x[:, None]) @ draw["theta"]
        if threshold_index is not None:
            g = int(threshold_index[s])
            q = x if q_fixed is None else q_fixed
            lower = (q <= parts.kernel.grid[g]).astype(float)
            mu_y = mu_y + float(draw["threshold_delta"]) * x * lower
            if "intercept_delta" in draw:
                mu_y = mu_y + float(draw["intercept_delta"]) * lower
            truth["threshold"] = parts.threshold_grid_original[g]
        y = mu_y + u
        out.append((truth, cf_data_values(parts, x, y)))
    return out


def _recover_threshold(
    posterior: xr.Dataset,
    updates: Mapping[str, np.ndarray],
    seed: int,
    *,
    name: str,
    spec: Any,
    data: Any,
) -> xr.Dataset:
    """Add ``threshold`` (original units), one draw per posterior draw, for the fitted data."""
    from polygvc.models.threshold import prepare_threshold_kernel, threshold_posterior

    parts = _cf_parts(name, spec, data)
    model = parts.model
    if name not in _RECOVERY_FN:
        outputs = parts.threshold_outputs
        _RECOVERY_FN[name] = model.compile_fn(
            [outputs["resid"], outputs["delta"], outputs["sigma_eps"]],
            inputs=model.free_RVs,
            on_unused_input="ignore",
        )
    evaluate = _RECOVERY_FN[name]
    for key, value in updates.items():
        model.set_data(key, value)

    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    values = {rv.name: posterior[rv.name].to_numpy() for rv in model.free_RVs}
    resid, delta, sigma_eps = [], [], []
    for c in range(n_chain):
        for d in range(n_draw):
            resid_draw, delta_draw, sigma_draw = evaluate(
                {key: array[c, d] for key, array in values.items()}
            )
            resid.append(resid_draw)
            delta.append(delta_draw)
            sigma_eps.append(sigma_draw)
    shape = (n_chain, n_draw)

    x = np.asarray(updates["x"], dtype=float)
    q_name = spec.threshold_variable
    q = x if q_name == spec.endog else _standardised(data, q_name)
    kernel = prepare_threshold_kernel(
        q,
        x,
        parts.kernel.grid,
        n_thresholds=1,
        intercept=bool(spec.threshold.intercept_shift),
        regressor_names=("slope",),
    )
    recovered = threshold_posterior(
        kernel,
        np.stack(delta).reshape(shape + np.shape(delta[0])),
        np.asarray(sigma_eps).reshape(shape),
        resid=np.stack(resid).reshape(shape + (-1,)),
        seed=seed,
    )
    index = recovered["gamma_index"].to_numpy()
    threshold = parts.threshold_grid_original[index]
    return posterior.assign(threshold=(("chain", "draw"), threshold))


def _cf_problem(
    kind: str,
    label: str,
    parameters: Sequence[str],
    n_regions: int,
    provinces_per_region: int,
    years: Sequence[int],
    seed: int,
    priors: Mapping[str, Any] | None,
    recover: bool = False,
    **spec_options: Any,
) -> SBCProblem:
    from polygvc.models.control_function import ControlFunctionSpec
    from polygvc.models.data import prepare_model_data

    panel = _design_panel(n_regions, provinces_per_region, years, seed)
    spec = ControlFunctionSpec(
        dependent="y",
        endog="x",
        instruments=["z"],
        controls=["w"],
        moderators=["m"],
        year_effects=len(list(years)) > 1,
        priors=dict(priors or {}),
        kind=kind,
        **spec_options,
    )
    data = prepare_model_data(panel, spec, source="the SBC design")
    n_units = n_regions * provinces_per_region
    # The name keys the model caches on workers, so it records every setting
    # that changes the graph or its fixed data.
    name = f"{label}_{n_units}x{len(list(years))}"
    if seed != 1:
        name += f"_seed{seed}"
    if priors:
        digest = hashlib.sha256(spec.to_json().encode()).hexdigest()[:8]
        name += f"_priors{digest}"
    return _problem(
        spec,
        data,
        name,
        parameters,
        recover,
        description=(
            f"{kind}, {n_units} provinces in {n_regions} regions x {len(list(years))} years, "
            "1 row-varying instrument, 1 control, 1 moderator"
        ),
    )


def _problem(
    spec: Any,
    data: Any,
    name: str,
    parameters: Sequence[str],
    recover: bool,
    description: str,
) -> SBCProblem:
    options: dict[str, Any] = {"name": name, "spec": spec, "data": data}
    return SBCProblem(
        name=name,
        build_model=functools.partial(_cf_model, name, spec, data),
        simulate=functools.partial(_simulate_cf, parameters=tuple(parameters), **options),
        parameters=tuple(parameters),
        description=description,
        recover=functools.partial(_recover_threshold, **options) if recover else None,
    )


def cf_problem_from_data(spec: Any, data: Any, name: str) -> SBCProblem:
    """Return a control-function model on a prepared design as an SBC problem.

    Used by the pre-flight checks, which calibrate the configured model on
    the config's own rows.

    Parameters
    ----------
    spec : ControlFunctionSpec
        Kind, variable roles, priors and the threshold or spline settings.
    data : ModelData
        The design the simulations keep (instruments, covariates, moderators,
        grouping); ``x`` and ``y`` are simulated.
    name : str
        Problem name (the compiled-model cache key on workers); the kind is
        appended.

    Returns
    -------
    SBCProblem
        Always ranked: ``fs_instrument``, ``cf_coef``, ``sigma`` and
        ``sigma_outcome_given_v``. ``cf_linear`` adds ``beta_mu``,
        ``beta_region_sd``, ``beta_province_sd`` (with province slopes) and
        ``theta`` (with interactions). ``cf_threshold`` adds ``beta_regime``,
        ``beta_jump``, ``threshold`` and ``intercept_jump`` (with an
        intercept shift). ``cf_spline`` adds ``spline_curve`` and
        ``spline_sigma``.

    Raises
    ------
    ModelError
        The spec has extra endogenous regressors, two thresholds or
        province-varying thresholds, which the simulator does not draw.
    """
    if spec.extra_endog:
        raise ModelError(
            f"SBC of a control-function model simulates one endogenous regressor, but this "
            f"spec also has {list(spec.extra_endog)} (model.extra_endog). Fix: calibrate the "
            "model without them."
        )
    threshold = spec.threshold if spec.kind == "cf_threshold" else None
    if threshold is not None and (threshold.n_thresholds != 1 or threshold.province_varying):
        raise ModelError(
            "SBC of a control-function threshold model simulates one threshold common to all "
            f"provinces, but this spec has n_thresholds = {threshold.n_thresholds} and "
            f"province_varying = {threshold.province_varying} (model.threshold). Fix: "
            "calibrate the single common-threshold form of the model."
        )
    parameters = ["fs_instrument", "cf_coef", "sigma", "sigma_outcome_given_v"]
    recover = False
    if spec.kind == "cf_threshold":
        parameters += ["beta_regime", "beta_jump", "threshold"]
        if spec.threshold is not None and spec.threshold.intercept_shift:
            parameters.append("intercept_jump")
        recover = True
    elif spec.kind == "cf_spline":
        parameters += ["spline_curve", "spline_sigma"]
    else:
        parameters += ["beta_mu", "beta_region_sd"]
        if spec.province_slopes:
            parameters.append("beta_province_sd")
        if spec.interactions:
            parameters.append("theta")
    return _problem(
        spec,
        data,
        f"{name}_{spec.kind}",
        parameters,
        recover,
        description=f"{spec.kind} on {data.n_obs} rows",
    )


def cf_linear_problem(
    n_regions: int = 4,
    provinces_per_region: int = 4,
    years: Sequence[int] = (2002, 2007, 2012),
    province_slopes: bool = False,
    seed: int = 1,
    priors: Mapping[str, Any] | None = None,
) -> SBCProblem:
    """Return the linear control-function model with an endog x moderator interaction.

    Parameters
    ----------
    n_regions, provinces_per_region : int
        Grouping sizes (provinces nested in regions).
    years : sequence of int
        Periods; year effects are on with two or more.
    province_slopes : bool, default False
        Province-varying slopes of ``x``. Off by default so that the run tests
        the control function and the interaction rather than the sampler on a
        second pooling level.
    seed : int
        Seed of the fixed design (instrument, control, moderator, grouping).
    priors : mapping, optional
        Prior overrides, as in the config's ``[model.priors]``.

    Returns
    -------
    SBCProblem
        Ranked: ``fs_instrument``, ``beta_mu``, ``theta`` (x:m),
        ``cf_coef``, ``sigma`` (both equations), ``sigma_outcome_given_v``,
        ``beta_region_sd``.
    """
    parameters = [
        "fs_instrument",
        "beta_mu",
        "theta",
        "cf_coef",
        "sigma",
        "sigma_outcome_given_v",
        "beta_region_sd",
    ]
    if province_slopes:
        parameters.append("beta_province_sd")
    return _cf_problem(
        "cf_linear",
        "cf_linear_ps" if province_slopes else "cf_linear",
        parameters,
        n_regions,
        provinces_per_region,
        years,
        seed,
        priors,
        interactions=["m"],
        province_slopes=province_slopes,
    )


def cf_threshold_problem(
    n_regions: int = 4,
    provinces_per_region: int = 4,
    years: Sequence[int] = (2002, 2007, 2012),
    n_grid: int = 10,
    threshold_variable: str = "m",
    intercept_shift: bool = False,
    seed: int = 1,
    priors: Mapping[str, Any] | None = None,
) -> SBCProblem:
    """Return the control-function model with one threshold in the slope of ``x``.

    Parameters
    ----------
    n_regions, provinces_per_region, years, seed, priors
        As in :func:`cf_linear_problem`; province slopes are off.
    n_grid : int, default 10
        Grid points of the threshold (quantiles 0.15 to 0.85 of the template
        threshold variable).
    threshold_variable : {"m", "x"}
        ``"m"``: the moderator, a fixed column, so the grid splits the rows
        the same way in every simulation. ``"x"``: the endogenous regressor;
        the grid stays at quantiles of the template ``x`` and the regimes
        follow each simulated ``x``.
    intercept_shift : bool, default False
        The intercept also changes at the threshold (``intercept_delta``).

    Returns
    -------
    SBCProblem
        Ranked: ``fs_instrument``, ``beta_regime`` (low and high),
        ``beta_jump``, ``cf_coef``, ``sigma``, ``sigma_outcome_given_v``,
        ``threshold`` (recovered per draw after sampling, original units of
        the threshold variable), and ``intercept_jump`` with an intercept
        shift.

    Raises
    ------
    ModelError
        ``threshold_variable`` is not ``"m"`` or ``"x"``.
    """
    from polygvc.models.cf_threshold import ThresholdSettings

    if threshold_variable not in ("m", "x"):
        raise ModelError(
            f"cf_threshold_problem got threshold_variable = {threshold_variable!r}, but the SBC "
            "design has only 'm' (moderator) and 'x' (endogenous regressor). Fix: pass one "
            "of them."
        )
    parameters = [
        "fs_instrument",
        "beta_regime",
        "beta_jump",
        "cf_coef",
        "sigma",
        "sigma_outcome_given_v",
        "threshold",
    ]
    if intercept_shift:
        parameters.append("intercept_jump")
    settings = ThresholdSettings(
        variable=threshold_variable, n_grid=n_grid, intercept_shift=intercept_shift
    )
    return _cf_problem(
        "cf_threshold",
        f"cf_threshold_{threshold_variable}_g{n_grid}{'_shift' if intercept_shift else ''}",
        parameters,
        n_regions,
        provinces_per_region,
        years,
        seed,
        priors,
        recover=True,
        threshold=settings,
        province_slopes=False,
    )


def cf_spline_problem(
    n_regions: int = 4,
    provinces_per_region: int = 4,
    years: Sequence[int] = (2002, 2007, 2012),
    n_knots: int = 3,
    n_curve: int = 4,
    seed: int = 1,
    priors: Mapping[str, Any] | None = None,
) -> SBCProblem:
    """Return the control-function model with a P-spline in ``x``.

    Parameters
    ----------
    n_regions, provinces_per_region, years, seed, priors
        As in :func:`cf_linear_problem`.
    n_knots : int, default 3
        Interior knots (quantiles of the template ``x``); cubic B-splines.
    n_curve : int, default 4
        Points of ``spline_curve``, :math:`f(x) - f(0)` on an even grid over
        the template ``x``; each point is ranked. An even count keeps the
        grid off ``x = 0``, where the curve is zero by construction.

    Returns
    -------
    SBCProblem
        Ranked: ``fs_instrument``, ``spline_curve`` (every ``x_grid``
        point), ``spline_sigma``, ``cf_coef``, ``sigma``,
        ``sigma_outcome_given_v``.
    """
    from polygvc.models.cf_spline import SplineSettings

    parameters = [
        "fs_instrument",
        "spline_curve",
        "spline_sigma",
        "cf_coef",
        "sigma",
        "sigma_outcome_given_v",
    ]
    return _cf_problem(
        "cf_spline",
        f"cf_spline_k{n_knots}_c{n_curve}",
        parameters,
        n_regions,
        provinces_per_region,
        years,
        seed,
        priors,
        spline=SplineSettings(n_knots=n_knots, n_curve=n_curve),
    )
