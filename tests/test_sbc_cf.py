"""SBC problems of the control-function models: graphs, simulated shapes, ranks, full runs.

The default tier builds each problem's model and simulates from it. Fitting
needs a nutpie compilation of 30-45 s per model on a shared 2-core machine,
so the fit and the 200-simulation runs are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

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
@pytest.mark.parametrize("make_problem", PROBLEMS, ids=IDS)
def test_full_sbc_cf_calibrated(make_problem):
    # 200 simulations, as for the hierarchical IV model in tests/test_sbc.py.
    result = run_sbc(make_problem(), 200, SBCSettings())
    bad = result.uniformity[result.uniformity["chi2_p"] < 0.001]
    assert bad.empty, result.uniformity.to_string()
