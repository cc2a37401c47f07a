"""Control-function models: graph structure, likelihood identities, threshold results.

Numerical references:
* The linear control-function likelihood must equal the bivariate normal
  likelihood of the hierarchical IV model at the same parameter values (the
  factorisation p(v, u) = p(v) p(u | v)); tolerance 1e-8.
* The grid-marginal threshold potential must equal a brute-force loop over
  grid points (or pairs, and provinces) written here; tolerance 1e-8.
* 2SLS with instrumented interactions must match a direct linearmodels fit
  and the closed form (X'PzX)^-1 X'Pz y; tolerance 1e-6.
Logp functions are compiled in FAST_COMPILE mode to keep this tier quick.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from conftest import simulate_iv_panel
from linearmodels.iv import IV2SLS
from scipy.special import logsumexp
from scipy.stats import norm

from polygvc.diagnostics.classical import classical_iv, instrumented_interactions
from polygvc.errors import ConfigError, ModelError
from polygvc.models.cf_spline import spline_data
from polygvc.models.control_function import (
    CF_DEFAULT_PRIORS,
    ControlFunctionSpec,
    SplineSettings,
    ThresholdSettings,
    build_control_function,
    build_control_function_parts,
    cf_data_values,
    cf_pointwise_logp,
    complete_cf_datatree,
)
from polygvc.models.data import prepare_model_data
from polygvc.models.hierarchical_iv import build_hierarchical_iv
from polygvc.models.spec import DEFAULT_PRIORS, HierarchicalIVSpec

MODE = "FAST_COMPILE"


@pytest.fixture
def panel(rng) -> pd.DataFrame:
    frame = simulate_iv_panel(rng, n_provinces=12, years=(2002, 2007, 2012))
    frame["m"] = rng.normal(size=len(frame))
    frame["z2"] = rng.normal(size=len(frame))
    frame["x2"] = frame["z2"] + 0.5 * frame["z"] + rng.normal(size=len(frame))
    return frame


def _spec(**kwargs) -> ControlFunctionSpec:
    kwargs.setdefault("instruments", ["z"])
    return ControlFunctionSpec(dependent="y", endog="x", controls=["w"], moderators=["m"], **kwargs)


def _build(panel, **kwargs):
    spec = _spec(**kwargs)
    data = prepare_model_data(panel, spec)
    return spec, data, build_control_function_parts(spec, data)


def _random_point(model, rng) -> dict:
    return {
        var.name: rng.normal(scale=0.5, size=var.type.shape if None not in var.type.shape else
                             model.initial_point()[var.name].shape)
        for var in model.value_vars
    }


# ---------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------


def test_linear_matches_hierarchical_variables(panel):
    spec, data, parts = _build(panel)
    iv_spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], controls=["w"],
                                 moderators=["m"])
    reference = build_hierarchical_iv(iv_spec, prepare_model_data(panel, iv_spec))
    free = {rv.name for rv in parts.model.free_RVs}
    assert free == {rv.name for rv in reference.free_RVs}
    deterministics = {d.name for d in parts.model.deterministics}
    assert {"cf_coef", "sigma_outcome_given_v", "rho", "effect_mu"} <= deterministics


def test_interaction_and_extra_endog_dims(panel):
    spec, data, parts = _build(panel, interactions=["m"], extra_endog=["x2"],
                               instruments=["z", "z2"])
    dims = parts.model.named_vars_to_dims
    assert dims["theta"] == ("interaction",)
    assert dims["effect_interaction"] == ("interaction",)
    assert dims["beta_extra"] == ("extra_endog",)
    assert dims["fs_instrument"] == ("endog", "instrument")
    assert dims["cf_coef"] == ("endog",)
    assert dims["outcomes"] == ("obs", "equation")
    assert parts.model.coords["equation"] == ("first_stage:x", "first_stage:x2", "outcome")
    assert parts.model.coords["interaction"] == ("x:m",)


def test_threshold_graph(panel):
    spec, data, parts = _build(
        panel, kind="cf_threshold",
        threshold=ThresholdSettings(n_grid=8, n_thresholds=2, intercept_shift=True),
    )
    model = parts.model
    dims = model.named_vars_to_dims
    assert dims["threshold_delta"] == ("threshold_crossing",)
    assert dims["intercept_delta"] == ("threshold_crossing",)
    assert dims["beta_regime"] == ("regime",)
    assert model.coords["regime"] == ("low", "middle", "high")
    assert len(model.coords["threshold_grid"]) == 8
    assert "threshold_loglik" in {p.name for p in model.potentials}
    for name in ("beta_province_offset", "beta_region_offset", "intercept_province_offset"):
        assert name in {rv.name for rv in model.free_RVs}, name


def test_spline_graph_offsets(panel):
    spec, data, parts = _build(panel, kind="cf_spline",
                               spline=SplineSettings(n_knots=3, province_deviations=True))
    model = parts.model
    free = {rv.name for rv in model.free_RVs}
    assert {"spline_offset", "spline_sigma", "spline_province_offset",
            "spline_province_sigma"} <= free
    # The spline's level replaces the global intercept and province offsets.
    assert "intercept" not in free
    assert "intercept_province_offset" not in free
    dims = model.named_vars_to_dims
    assert dims["spline"] == ("knot",)
    assert dims["spline_province"] == ("province", "knot")
    assert dims["spline_curve"] == ("x_grid",)
    assert len(model.coords["knot"]) == 3 + 3 + 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"interactions": ["m"]},
        {"kind": "cf_threshold", "threshold": ThresholdSettings(n_grid=6)},
        {"kind": "cf_threshold",
         "threshold": ThresholdSettings(n_grid=6, variable="m", province_varying=True)},
        {"kind": "cf_spline", "spline": SplineSettings(n_knots=2)},
    ],
    ids=["linear", "interaction", "threshold", "threshold_province", "spline"],
)
def test_logp_finite(panel, kwargs):
    _, _, parts = _build(panel, **kwargs)
    model = parts.model
    value = model.compile_logp(mode=MODE)(model.initial_point())
    assert np.isfinite(value), value


# ---------------------------------------------------------------------------
# Likelihood identities
# ---------------------------------------------------------------------------


def test_cf_equals_bivariate_normal(panel, rng):
    spec, data, parts = _build(panel)
    iv_spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], controls=["w"],
                                 moderators=["m"])
    reference = build_hierarchical_iv(iv_spec, prepare_model_data(panel, iv_spec))
    cf_model = parts.model
    cf_total = cf_model.compile_logp(mode=MODE)
    iv_total = reference.compile_logp(mode=MODE)
    cf_rows = cf_model.compile_fn(cf_model.logp(vars=[cf_model["outcomes"]], sum=False)[0],
                                  mode=MODE)
    iv_rows = reference.compile_fn(reference.logp(vars=[reference["outcomes"]], sum=False)[0],
                                   mode=MODE)
    for _ in range(5):
        point = _random_point(cf_model, rng)
        a, b = cf_total(point), iv_total(point)
        assert abs(a - b) < 1e-8, (a, b)
        rows_a, rows_b = cf_rows(point), iv_rows(point)
        assert np.max(np.abs(rows_a - rows_b)) < 1e-8, np.max(np.abs(rows_a - rows_b))


def test_pointwise_logp_numpy_two_endog(rng):
    n = 7
    chol = np.array([[1.2, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.4, 0.5, 0.6]])
    mu = rng.normal(size=(n, 3))
    value = mu + rng.normal(size=(n, 3)) @ chol.T
    cov = chol @ chol.T
    from scipy.stats import multivariate_normal

    expected = multivariate_normal(np.zeros(3), cov).logpdf(value - mu)
    rho = np.linalg.solve(chol[:2, :2].T, chol[2, :2])
    cond = mu[:, 2] + (value[:, :2] - mu[:, :2]) @ rho
    got = cf_pointwise_logp(value, mu[:, :2], cond, chol[:2, :2], chol[2, 2])
    assert np.max(np.abs(got - expected)) < 1e-10, np.max(np.abs(got - expected))


def _brute_force_threshold(parts, point, rng_unused=None):
    model = parts.model
    out = parts.threshold_outputs
    outputs = model.replace_rvs_by_values([out["resid"], out["delta"], out["sigma_eps"]])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=MODE)
    resid, delta, sigma = fn(point)
    kernel = parts.kernel
    q_design = kernel.design  # (G, n, k) = x_regime * 1[q <= grid]
    codes = kernel.group_codes
    total = 0.0
    for group in range(kernel.n_groups):
        rows = codes == group
        terms = []
        if kernel.n_thresholds == 1:
            for g in range(kernel.grid.size):
                r = resid[rows] - q_design[g][rows] @ delta
                terms.append(norm.logpdf(r, scale=sigma).sum())
        else:
            for a, b in kernel.pairs:
                r = resid[rows] - q_design[a][rows] @ delta[0] - q_design[b][rows] @ delta[1]
                terms.append(norm.logpdf(r, scale=sigma).sum())
        total += logsumexp(terms) - np.log(len(terms))
    return total


@pytest.mark.parametrize(
    "settings",
    [
        ThresholdSettings(n_grid=6),
        ThresholdSettings(n_grid=5, n_thresholds=2, intercept_shift=True, province_varying=True),
    ],
    ids=["single", "double_province"],
)
def test_threshold_marginal_brute_force(panel, rng, settings):
    _, _, parts = _build(panel, kind="cf_threshold", threshold=settings)
    model = parts.model
    [term] = model.replace_rvs_by_values([model["threshold_loglik"]])
    potential = model.compile_fn(term, inputs=model.value_vars, on_unused_input="ignore", mode=MODE)
    for _ in range(3):
        point = _random_point(model, rng)
        got = float(potential(point))
        expected = _brute_force_threshold(parts, point)
        assert abs(got - expected) < 1e-8, (got, expected)


# ---------------------------------------------------------------------------
# Threshold results after sampling (prior draws stand in for the posterior)
# ---------------------------------------------------------------------------


def _prior_tree(model, draws=15):
    # Prior draws only stand in for posterior draws here, so the warning that
    # prior predictive sampling ignores the threshold potential does not apply.
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = pm.sample_prior_predictive(
            draws=draws, random_seed=5, compile_kwargs={"mode": MODE}
        )
    import xarray as xr

    return xr.DataTree.from_dict(
        {
            "posterior": prior["prior"].to_dataset(),
            "log_likelihood": xr.Dataset(),
            "posterior_predictive": prior["prior_predictive"].to_dataset(),
        }
    )


def test_complete_threshold_datatree(panel):
    spec, data, parts = _build(panel, kind="cf_threshold", threshold=ThresholdSettings(n_grid=6))
    dt = complete_cf_datatree(_prior_tree(parts.model), spec, data, seed=3)
    posterior = dt["posterior"]
    assert posterior["threshold"].dims == ("chain", "draw")
    assert set(np.unique(posterior["threshold"])) <= set(parts.threshold_grid_original)
    prob = dt["threshold"]["threshold_prob"]
    assert prob.dims == ("threshold_grid",)
    assert abs(float(prob.sum()) - 1.0) < 1e-10, float(prob.sum())
    loglik = dt["log_likelihood"]["outcomes"]
    assert loglik.dims == ("chain", "draw", "obs")
    assert np.all(np.isfinite(loglik)), "non-finite log-likelihood"
    replicate = dt["posterior_predictive"]["outcomes"]
    assert replicate.dims == ("chain", "draw", "obs", "equation")
    assert np.all(np.isfinite(replicate)), "non-finite predictive"


def test_threshold_loglik_at_sampled_threshold(panel):
    spec, data, parts = _build(panel, kind="cf_threshold", threshold=ThresholdSettings(n_grid=6))
    dt = complete_cf_datatree(_prior_tree(parts.model, draws=3), spec, data, seed=3)
    posterior = dt["posterior"].to_dataset()
    point = {rv.name: posterior[rv.name].to_numpy()[0, 1] for rv in parts.model.free_RVs}
    out = parts.threshold_outputs
    fn = parts.model.compile_fn(
        [out["resid"], out["delta"], out["sigma_eps"], out["fs_logp"]],
        inputs=parts.model.free_RVs, mode=MODE,
    )
    resid, delta, sigma, fs_logp = fn(point)
    g = int(posterior["threshold_index"][0, 1])
    r = resid - parts.kernel.design[g] @ delta
    expected = fs_logp + norm.logpdf(r, scale=sigma)
    got = dt["log_likelihood"]["outcomes"].to_numpy()[0, 1]
    assert np.max(np.abs(got - expected)) < 1e-8, np.max(np.abs(got - expected))


def test_complete_is_noop_for_linear(panel):
    spec, data, parts = _build(panel)
    tree = _prior_tree(parts.model, draws=2)
    assert complete_cf_datatree(tree, spec, data) is tree


# ---------------------------------------------------------------------------
# Spec errors
# ---------------------------------------------------------------------------


def test_unknown_kind():
    with pytest.raises(ConfigError, match="Valid kinds: cf_linear, cf_threshold, cf_spline"):
        _spec(kind="cf_thresold")


def test_unknown_prior_lists_cf_names():
    with pytest.raises(ConfigError, match="Did you mean 'theta'") as info:
        _spec(priors={"thetta": {"dist": "Normal", "mu": 0, "sigma": 1}})
    valid = ", ".join(sorted({*DEFAULT_PRIORS, *CF_DEFAULT_PRIORS}))
    assert f"Valid names for control-function models: {valid}." in str(info.value)


def test_cf_prior_override_applies():
    spec = _spec(kind="cf_spline", priors={"spline_sigma": {"dist": "HalfNormal", "sigma": 0.1}})
    assert spec.resolved_priors["spline_sigma"].params == {"sigma": 0.1}
    assert spec.resolved_priors["beta_mu"].dist == "Normal"


def test_scale_prior_must_be_positive():
    with pytest.raises(ConfigError, match="needs a positive distribution"):
        _spec(priors={"spline_sigma": {"dist": "Normal", "mu": 0, "sigma": 1}})


def test_interaction_must_be_covariate():
    with pytest.raises(ConfigError, match="not a control or moderator"):
        _spec(interactions=["z"])


def test_too_few_instruments():
    with pytest.raises(ConfigError, match="2 endogenous regressors"):
        _spec(extra_endog=["x2"])


def test_threshold_on_dependent():
    with pytest.raises(ConfigError, match="is the dependent variable"):
        _spec(kind="cf_threshold", threshold=ThresholdSettings(variable="y"))


def test_threshold_settings_validated():
    with pytest.raises(ConfigError, match="supports 1 or 2"):
        ThresholdSettings(n_thresholds=3)


def test_data_for_other_spec(panel):
    base = _spec()
    data = prepare_model_data(panel, base)
    with pytest.raises(ModelError, match="prepared for another spec"):
        build_control_function(_spec(kind="cf_threshold",
                                     threshold=ThresholdSettings(variable="x2")), data)


def test_spec_json_has_kind():
    import json

    payload = json.loads(_spec(kind="cf_threshold").to_json())
    assert payload["model"] == "cf_threshold"
    assert payload["threshold"]["n_grid"] == 30
    assert "threshold_delta" in payload["priors"]


# ---------------------------------------------------------------------------
# Refits on new data values (pm.set_data, CompiledModel.with_data)
# ---------------------------------------------------------------------------


def _with_new_values(data, x, y):
    """Return ``data`` with standardised ``x`` and ``y`` replaced, scaling kept."""
    frame = data.frame.copy()
    for column, values in (("x", x), ("y", y)):
        scale = data.scaling[column]
        frame[column] = values * scale["sd"] + scale["mean"]
    return dataclasses.replace(data, x=x, y=y, frame=frame)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interactions": ["m"]},
        {"kind": "cf_threshold", "threshold": ThresholdSettings(n_grid=6, variable="m")},
        {"kind": "cf_threshold",
         "threshold": ThresholdSettings(n_grid=5, variable="m", n_thresholds=2,
                                        intercept_shift=True, province_varying=True)},
    ],
    ids=["interaction", "threshold", "double_province"],
)
def test_swapped_data_matches_rebuilt(panel, rng, kwargs):
    # A model refitted through pm.Data must equal a model built on the new
    # values: the observed pairs and the regime design follow the data.
    spec, data, parts = _build(panel, **kwargs)
    new_x = rng.normal(size=data.n_obs)
    new_y = rng.normal(size=data.n_obs)
    rebuilt = build_control_function_parts(spec, _with_new_values(data, new_x, new_y)).model
    model = parts.model
    for name, values in cf_data_values(parts, new_x, new_y).items():
        model.set_data(name, values)
    swapped_logp = model.compile_logp(mode=MODE)
    rebuilt_logp = rebuilt.compile_logp(mode=MODE)
    for _ in range(3):
        point = _random_point(model, rng)
        a, b = swapped_logp(point), rebuilt_logp(point)
        assert abs(a - b) < 1e-8, (a, b)


def test_spline_data_reproduces_basis(panel):
    _, data, parts = _build(panel, kind="cf_spline", spline=SplineSettings(n_knots=3))
    values = spline_data(parts.spline, data.x)
    assert np.max(np.abs(values["spline_basis"] - parts.spline.basis.basis)) < 1e-12
    assert np.max(np.abs(values["spline_slope_basis"] - parts.spline.slope_basis)) < 1e-12


def test_spline_swap_moves_basis(panel):
    _, data, parts = _build(panel, kind="cf_spline", spline=SplineSettings(n_knots=3))
    values = cf_data_values(parts, data.x + 0.5, data.y)
    assert set(values) == {"x", "y", "spline_basis", "spline_slope_basis"}, set(values)
    # Rows still sum to one at the new x, and the basis changed.
    assert np.max(np.abs(values["spline_basis"].sum(axis=1) - 1.0)) < 1e-12
    assert np.max(np.abs(values["spline_basis"] - parts.spline.basis.basis)) > 0.01


def test_data_values_reject_other_rows(panel):
    _, data, parts = _build(panel)
    with pytest.raises(ModelError, match=r"x of shape \(5,\).*built with x of shape \(36, 1\)"):
        cf_data_values(parts, np.zeros(5), np.zeros(5))


# ---------------------------------------------------------------------------
# Classical cross-check with instrumented interactions
# ---------------------------------------------------------------------------


def test_instrumented_interactions_2sls(rng):
    n = 300
    z = rng.normal(size=n)
    m = rng.normal(size=n)
    w = rng.normal(size=n)
    v = rng.normal(size=n)
    x = 0.8 * z + 0.3 * w + v
    y = 1.0 + 0.5 * x + 0.3 * x * m + 0.2 * m - 0.4 * w + 0.6 * v + rng.normal(size=n)
    frame = pd.DataFrame({"y": y, "x": x, "z": z, "m": m, "w": w})
    terms = instrumented_interactions(frame, "x", ["m"], ["z"])
    result = classical_iv(terms.data, "y", terms.endog, ["w", "m"], terms.instruments)
    ours = result.results[("2SLS", "robust")].params

    data = terms.data.assign(const=1.0)
    direct = IV2SLS(data["y"], data[["const", "w", "m"]], data[["x", "x:m"]],
                    data[["z", "z:m"]]).fit(cov_type="robust")
    for term in ("x", "x:m", "w", "m", "const"):
        assert abs(ours[term] - direct.params[term]) < 1e-6, (term, ours[term], direct.params[term])

    X = data[["const", "w", "m", "x", "x:m"]].to_numpy()
    Z = data[["const", "w", "m", "z", "z:m"]].to_numpy()
    projected = Z @ np.linalg.solve(Z.T @ Z, Z.T @ X)
    closed = np.linalg.solve(projected.T @ X, projected.T @ data["y"].to_numpy())
    for term, value in zip(["const", "w", "m", "x", "x:m"], closed, strict=True):
        assert abs(ours[term] - value) < 1e-6, (term, ours[term], value)
