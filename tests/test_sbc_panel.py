"""SBC of the fixed-effects panel threshold model: data swapping, simulation, a full run.

The model reads the outcome only through three cross-product arrays that are
``pm.Data``. The default tier checks that swapping them in gives the log
density of a model built on the new outcome, and that the simulator's
outcomes match the model's design. The full SBC run is slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from polygvc.diagnostics.sbc import SBCSettings, run_sbc
from polygvc.diagnostics.sbc_problems_panel import _design, panel_threshold_problem
from polygvc.errors import ModelError
from polygvc.models.panel_threshold import (
    build_panel_threshold_model,
    panel_outcome_values,
    prepare_panel_threshold,
    with_outcome_data,
)
from polygvc.models.threshold import (
    prepare_threshold_kernel,
    threshold_grid,
    threshold_loglik_grid,
    within_transform,
)


@pytest.fixture(scope="module")
def panel():
    frame = _design(12, 5, seed=3)
    data = prepare_panel_threshold(
        frame,
        dependent="y",
        regime_var="z",
        threshold_var="q",
        controls=["x"],
        unit="unit",
        grid=threshold_grid(frame["q"].to_numpy(), n_grid=6, name="q"),
    )
    return frame, data


def test_with_outcome_matches_fresh_kernel(panel):
    frame, data = panel
    y_new = within_transform(np.random.default_rng(5).normal(size=len(frame)), frame["unit"])
    swapped = with_outcome_data(data, y_new).kernel
    fresh = prepare_threshold_kernel(
        frame["q"].to_numpy(float),
        frame["z"].to_numpy(float) / data.z_scale,
        data.kernel.grid,
        fixed_effects=frame["unit"].to_numpy(),
        y=y_new,
        x_fixed=np.column_stack([data.x_fixed, data.z]),
        regressor_names=("z",),
    )
    for key, value in fresh.linear.items():
        np.testing.assert_allclose(swapped.linear[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_swapped_outcome_gives_new_density(panel):
    frame, data = panel
    y_new = within_transform(np.random.default_rng(6).normal(size=len(frame)), frame["unit"])
    model = build_panel_threshold_model(data)
    point = {
        "beta_scaled": np.array([0.4]),
        "beta_regime_scaled": np.array([1.2, -0.3]),
        "sigma_scaled_log__": np.log(0.8),
    }
    before = model.compile_logp(sum=True)(point)
    for name, value in panel_outcome_values(data, y_new).items():
        model.set_data(name, value)
    swapped = model.compile_logp(sum=True)(point)
    rebuilt = build_panel_threshold_model(with_outcome_data(data, y_new)).compile_logp(sum=True)(
        point
    )
    assert swapped != pytest.approx(before)
    np.testing.assert_allclose(swapped, rebuilt, rtol=1e-10)

    # The potential equals the grid sum computed with NumPy on the new outcome.
    kernel = with_outcome_data(data, y_new).kernel
    loglik = threshold_loglik_grid(kernel, np.array([1.5]), 0.8, coef=np.array([0.4, -0.3]))
    expected = logsumexp(loglik + kernel.log_prior[:, None], axis=0).sum()
    (potential_graph,) = model.replace_rvs_by_values([model["threshold_marginal_loglik"]])
    potential = model.compile_fn(potential_graph, inputs=model.value_vars)(point)
    np.testing.assert_allclose(potential, expected, rtol=1e-10)


def test_outcome_of_wrong_length_rejected(panel):
    _, data = panel
    with pytest.raises(ModelError, match="The new outcome has shape \\(3,\\), but the panel"):
        panel_outcome_values(data, np.zeros(3))


def test_simulated_updates_match_model():
    problem = panel_threshold_problem(n_units=10, n_periods=4, n_grid=5)
    model = problem.build_model()
    simulated = problem.simulate(model, 3, 11)
    assert len(simulated) == 3
    for truth, updates in simulated:
        assert set(updates) == {"panel_yy", "panel_xy", "panel_dy"}
        assert truth["threshold"] in set(model.coords["threshold_grid"])
        assert np.shape(truth["beta_regime_scaled"]) == (2,)
        for name, value in updates.items():
            assert np.shape(value) == np.shape(model[name].get_value()), name


@pytest.mark.slow
def test_full_sbc_panel_threshold_calibrated():
    # 1,000 simulations (about 4 min on 2 workers): a 200-simulation run
    # flagged beta_scaled[x], which two 1,000-simulation runs found calibrated.
    result = run_sbc(panel_threshold_problem(), 1000, SBCSettings())
    assert result.uniformity["verdict_adjusted"].eq("calibrated").all(), (
        result.uniformity.to_string()
    )
