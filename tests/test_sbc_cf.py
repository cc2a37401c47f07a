"""SBC problems of the control-function models: graphs, simulated shapes, ranks, full runs.

The default tier builds each problem's model, simulates from it and checks
the simulated data against the model's density. Fitting needs a nutpie
compilation of 30-45 s per model on a shared 2-core machine, so the fit and
the 200-simulation runs are marked slow.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy.stats import norm

from polygvc.diagnostics import sbc_problems_cf
from polygvc.diagnostics.sbc import SBCSettings, fit_one, run_sbc
from polygvc.diagnostics.sbc_problems_cf import (
    cf_linear_problem,
    cf_spline_problem,
    cf_threshold_problem,
)
from polygvc.errors import ModelError

PROBLEMS = [cf_linear_problem, cf_threshold_problem, cf_spline_problem]
IDS = ["linear", "threshold", "spline"]


def _data_shapes(model) -> dict[str, tuple[int, ...]]:
    return {
        name: tuple(np.shape(var.get_value()))
        for name, var in model.named_vars.items()
        if var in model.data_vars
    }


@pytest.mark.parametrize(
    ("make_problem", "dims"),
    [
        (cf_linear_problem, {"theta": ("interaction",), "fs_instrument": ("instrument",)}),
        (cf_threshold_problem, {"beta_regime": ("regime",), "threshold_delta": ()}),
        (cf_spline_problem, {"spline_curve": ("x_grid",), "spline": ("knot",)}),
    ],
    ids=IDS,
)
def test_problem_graph_dims(make_problem, dims):
    problem = make_problem()
    model = problem.build_model()
    for name, expected in dims.items():
        assert model.named_vars_to_dims.get(name, ()) == expected, (name, model.named_vars_to_dims)
    assert model.named_vars_to_dims["outcomes"] == ("obs", "equation")
    ranked_in_model = [name for name in problem.parameters if name != "threshold"]
    missing = [name for name in ranked_in_model if name not in model.named_vars]
    assert not missing, missing


def test_threshold_problem_recovers_threshold():
    problem = cf_threshold_problem()
    assert "threshold" in problem.parameters
    assert problem.recover is not None
    model = problem.build_model()
    # The moderator is the threshold variable: a pm.Data column of its own.
    assert "threshold_variable" in _data_shapes(model)
    assert len(model.coords["threshold_grid"]) == 10


@pytest.mark.parametrize("make_problem", PROBLEMS, ids=IDS)
def test_simulate_matches_compiled_shapes(make_problem):
    problem = make_problem()
    model = problem.build_model()
    shapes = _data_shapes(model)
    simulated = problem.simulate(model, 3, 11)
    assert len(simulated) == 3
    for truth, updates in simulated:
        assert set(truth) == set(problem.parameters), (set(truth), problem.parameters)
        assert {"x", "y"} <= set(updates), set(updates)
        for name, values in updates.items():
            assert name in shapes, (name, sorted(shapes))
            assert values.shape == shapes[name], (name, values.shape, shapes[name])
            assert np.all(np.isfinite(values)), name
    # Different prior draws give different data sets.
    assert not np.allclose(simulated[0][1]["y"], simulated[1][1]["y"])


def test_spline_simulation_swaps_basis():
    problem = cf_spline_problem()
    model = problem.build_model()
    template = model["spline_basis"].get_value()
    _, updates = problem.simulate(model, 1, 3)[0]
    assert {"spline_basis", "spline_slope_basis"} <= set(updates), set(updates)
    assert np.max(np.abs(updates["spline_basis"].sum(axis=1) - 1.0)) < 1e-12
    assert np.max(np.abs(updates["spline_basis"] - template)) > 1e-3


def test_threshold_truth_on_grid():
    problem = cf_threshold_problem()
    model = problem.build_model()
    grid = np.asarray(model.coords["threshold_grid"], dtype=float)
    truths = [truth["threshold"] for truth, _ in problem.simulate(model, 20, 2)]
    assert all(np.any(np.isclose(value, grid, rtol=0, atol=1e-12)) for value in truths), truths
    # Drawn from the uniform prior over 10 points: 20 draws hit several.
    assert len(set(truths)) >= 5, truths


@pytest.mark.parametrize("make_problem", PROBLEMS, ids=IDS)
def test_simulator_matches_model_density(make_problem):
    # At the true parameters the model's density must whiten the simulated
    # errors back to the simulator's standard-normal draws, so the quadratic
    # form read off the model's log density equals their sum of squares.
    problem = make_problem()
    model = problem.build_model()
    options = problem.simulate.keywords
    data, spec = options["data"], options["spec"]
    parts = sbc_problems_cf._cf_parts(options["name"], spec, data)
    free = tuple(rv.name for rv in model.free_RVs)
    ranked = ("sigma", "sigma_outcome_given_v", "threshold")
    names = free + tuple(name for name in ranked if name in problem.parameters)
    seed, n_sims, n = 99, 4, data.n_obs
    simulated = sbc_problems_cf._simulate_cf(
        model, n_sims, seed, name=options["name"], spec=spec, data=data, parameters=names
    )
    if parts.kernel is None:
        outputs = [pm.logp(model["outcomes"], model.rvs_to_values[model["outcomes"]]).sum()]
    else:
        threshold_outputs = parts.threshold_outputs
        outputs = [threshold_outputs["fs_logp"].sum(), threshold_outputs["resid"]]
    evaluate = model.compile_fn(outputs, inputs=model.free_RVs, on_unused_input="ignore")

    noise = np.random.default_rng(seed + 7919)
    for truth, updates in simulated:
        first, second = noise.standard_normal(n), noise.standard_normal(n)
        for name, values in updates.items():
            model.set_data(name, values)
        values = evaluate({name: truth[name] for name in free})
        sd_v, sd_eps = float(truth["sigma"][0]), float(truth["sigma_outcome_given_v"])
        if parts.kernel is None:
            logp = float(values[0])
        else:
            grid_index = np.flatnonzero(parts.threshold_grid_original == truth["threshold"])[0]
            q = sbc_problems_cf._standardised(data, spec.threshold_variable)
            lower = q <= parts.kernel.grid[grid_index]
            outcome_error = values[1] - float(truth["threshold_delta"]) * updates["x"] * lower
            logp = float(values[0]) + norm.logpdf(outcome_error, scale=sd_eps).sum()
        quadratic = -2 * logp - 2 * n * np.log(2 * np.pi) - 2 * n * np.log(sd_v * sd_eps)
        expected = np.sum(first**2) + np.sum(second**2)
        assert abs(quadratic - expected) < 1e-6, (quadratic, expected)


def test_threshold_problem_rejects_unknown_variable():
    with pytest.raises(ModelError, match="'w', but the SBC design has only 'm'"):
        cf_threshold_problem(threshold_variable="w")


@pytest.mark.slow
@pytest.mark.parametrize("make_problem", PROBLEMS, ids=IDS)
def test_fit_one_gives_ranks(make_problem):
    problem = make_problem()
    model = problem.build_model()
    truth, updates = problem.simulate(model, 1, 7)[0]
    settings = SBCSettings(draws=50, tune=50, chains=1, n_rank_draws=49, seed=7)
    result = fit_one(problem, 0, truth, updates, settings)
    ranks = np.asarray(result["rank"])
    assert ranks.size == len(result["labels"]) >= len(problem.parameters)
    assert np.all((ranks >= 0) & (ranks <= 49)), dict(zip(result["labels"], ranks, strict=True))
    assert np.all(np.isfinite(result["posterior_mean"])), result["posterior_mean"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_problem", "target_accept"),
    [(cf_linear_problem, 0.9), (cf_threshold_problem, 0.9), (cf_spline_problem, 0.99)],
    ids=IDS,
)
def test_full_sbc_cf_calibrated(make_problem, target_accept):
    # 200 simulations, as for the hierarchical IV model in tests/test_sbc.py.
    # At 0.9, 161 of 200 spline fits had divergences, and at 0.99, 8 had.
    result = run_sbc(make_problem(), 200, SBCSettings(target_accept=target_accept))
    bad = result.uniformity[result.uniformity["chi2_p"] < 0.001]
    assert bad.empty, result.uniformity.to_string()


def test_problem_from_data_rejects_extra_endog():
    from types import SimpleNamespace

    from polygvc.diagnostics.sbc_problems_cf import cf_problem_from_data

    # A valid spec with extra endogenous regressors needs more instruments
    # than the SBC design has; the check reads only extra_endog.
    spec = SimpleNamespace(extra_endog=["x2"], kind="cf_linear")
    with pytest.raises(ModelError, match=r"simulates one endogenous regressor, but this spec also"):
        cf_problem_from_data(spec, None, name="check")


def test_problem_from_data_ranks_by_kind():
    from polygvc.diagnostics.sbc_problems_cf import cf_problem_from_data

    for make_problem, expected in (
        (cf_linear_problem, {"beta_mu", "theta", "beta_region_sd"}),
        (cf_threshold_problem, {"beta_regime", "beta_jump", "threshold"}),
        (cf_spline_problem, {"spline_curve", "spline_sigma"}),
    ):
        template = make_problem()
        spec = template.simulate.keywords["spec"]
        data = template.simulate.keywords["data"]
        problem = cf_problem_from_data(spec, data, name="check")
        assert expected <= set(problem.parameters), (spec.kind, problem.parameters)
        assert problem.name == f"check_{spec.kind}"
        assert (problem.recover is not None) == (spec.kind == "cf_threshold")


@pytest.mark.parametrize(("n_thresholds", "province_varying"), [(2, False), (1, True)])
def test_problem_from_data_rejects_other_thresholds(n_thresholds, province_varying):
    from types import SimpleNamespace

    from polygvc.diagnostics.sbc_problems_cf import cf_problem_from_data

    threshold = SimpleNamespace(n_thresholds=n_thresholds, province_varying=province_varying)
    spec = SimpleNamespace(extra_endog=[], kind="cf_threshold", threshold=threshold)
    with pytest.raises(ModelError) as info:
        cf_problem_from_data(spec, None, name="check")
    message = str(info.value)
    assert message.startswith("SBC of a control-function threshold model simulates one")
    assert f"n_thresholds = {n_thresholds} and province_varying = {province_varying}" in message
