"""Tests of the threshold kernels: grids, exact grid marginalisation, posterior, LS search."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate
from scipy.special import logsumexp

from polygvc.errors import ModelError
from polygvc.models.threshold import (
    conditional_pointwise_loglik,
    fit_threshold_ls,
    marginal_threshold_loglik,
    prepare_threshold_kernel,
    regime_index,
    tensor_kernel,
    threshold_grid,
    threshold_loglik_grid,
    threshold_pairs,
    threshold_posterior,
    within_transform,
)


@pytest.fixture
def rng():
    return np.random.default_rng(19990915)


@pytest.fixture
def sim(rng):
    """Small single-threshold panel: 30 units x 8 periods, true gamma = 0.5."""
    n_units, n_periods = 30, 8
    unit = np.repeat(np.arange(n_units), n_periods)
    q = rng.uniform(0, 1, unit.size)
    x = rng.normal(size=unit.size)
    control = rng.normal(size=unit.size)
    alpha = rng.normal(size=n_units)[unit]
    slope = np.where(q <= 0.5, 1.0, -0.5)
    y = alpha + 0.3 * control + slope * x + rng.normal(scale=0.5, size=unit.size)
    return {"unit": unit, "q": q, "x": x, "control": control, "y": y}


def _brute_force_loglik(y_resid, design_low, delta, sigma, n_eff, groups, log_prior):
    """Per grid point and group: Gaussian log-lik of explicit residuals, then logsumexp."""
    n_grid = design_low.shape[0]
    group_ids = np.unique(groups)
    table = np.empty((n_grid, group_ids.size))
    for g in range(n_grid):
        r = y_resid - design_low[g] @ delta
        for j, group in enumerate(group_ids):
            rows = groups == group
            table[g, j] = -0.5 * n_eff[j] * np.log(2 * np.pi * sigma**2) - (r[rows] ** 2).sum() / (
                2 * sigma**2
            )
    return logsumexp(table + log_prior[:, None], axis=0).sum(), table


def _compile_marginal(kernel, k, shape):
    delta = pt.tensor("delta", shape=shape)
    sigma = pt.scalar("sigma")
    resid = pt.vector("resid")
    out = marginal_threshold_loglik(kernel, delta, sigma, resid=resid)
    return pytensor.function([resid, delta, sigma], out)


# --- grid -------------------------------------------------------------------


def test_hansen_grid_size_and_positions(rng):
    q = rng.permutation(np.arange(1000.0))
    grid = threshold_grid(q, n_grid=393, trim=0.01, method="hansen_unique")
    assert grid.size == 393, f"grid size {grid.size}"
    # Point p is the floor(p * 1000)-th smallest distinct value (1-based).
    assert grid[0] == 9.0, f"first point {grid[0]}"
    assert grid[-1] == 989.0, f"last point {grid[-1]}"


def test_quantile_grid_observed_and_trimmed(rng):
    q = rng.normal(size=500)
    grid = threshold_grid(q, n_grid=20, trim=0.1)
    assert np.isin(grid, q).all(), "grid points are not observed values"
    share_below = (q <= grid[0]).mean()
    assert 0.09 <= share_below <= 0.11, f"share below first point {share_below}"


def test_grid_too_few_distinct_values():
    q = np.repeat(np.arange(12.0), 10)
    with pytest.raises(ModelError, match=r"'poly_entropy_norm' has 12 distinct values.*n_grid"):
        threshold_grid(q, n_grid=30, name="poly_entropy_norm")


def test_grid_unknown_method(rng):
    with pytest.raises(ModelError, match="Valid methods: 'quantile', 'hansen_unique'"):
        threshold_grid(rng.normal(size=50), method="uniform")


def test_pairs_respect_min_gap():
    pairs = threshold_pairs(6, min_gap=2)
    gaps = pairs[:, 1] - pairs[:, 0]
    assert gaps.min() == 2, f"min gap {gaps.min()}"
    assert len(pairs) == 10, f"{len(pairs)} pairs"


# --- marginalisation kernel against brute force -------------------------------


def test_single_threshold_marginal_matches_brute_force(sim, rng):
    grid = threshold_grid(sim["q"], n_grid=15, trim=0.15)
    kernel = prepare_threshold_kernel(sim["q"], sim["x"], grid)
    delta = np.array([1.3])
    resid = sim["y"] - 0.3 * sim["control"] + 0.5 * sim["x"]
    expected, _ = _brute_force_loglik(
        resid, kernel.design, delta, 0.7, [resid.size], np.zeros(resid.size), kernel.log_prior
    )
    got = _compile_marginal(kernel, 1, (1,))(resid, delta, 0.7)
    assert abs(got - expected) < 1e-10, f"PyTensor {got} vs brute force {expected}"


def test_intercept_and_groups_match_brute_force(sim, rng):
    groups = sim["unit"] % 3
    grid = threshold_grid(sim["q"], n_grid=10, trim=0.2)
    log_prior = rng.normal(size=grid.size)
    kernel = prepare_threshold_kernel(
        sim["q"], sim["x"], grid, intercept=True, groups=groups, log_prior=log_prior
    )
    delta = np.array([0.2, 1.1])
    resid = sim["y"] - 0.4 * sim["x"]
    prior = log_prior - logsumexp(log_prior)
    n_eff = np.bincount(groups)
    expected, _ = _brute_force_loglik(resid, kernel.design, delta, 0.9, n_eff, groups, prior)
    got = _compile_marginal(kernel, 2, (2,))(resid, delta, 0.9)
    assert abs(got - expected) < 1e-10, f"PyTensor {got} vs brute force {expected}"


def test_double_threshold_matches_brute_force(sim):
    grid = threshold_grid(sim["q"], n_grid=12, trim=0.1)
    kernel = prepare_threshold_kernel(sim["q"], sim["x"], grid, n_thresholds=2, min_gap=2)
    delta = np.array([[0.8], [0.6]])
    resid = sim["y"] - 0.2 * sim["x"]
    table = []
    for a, b in kernel.pairs:
        r = resid - kernel.design[a] @ delta[0] - kernel.design[b] @ delta[1]
        table.append(-0.5 * r.size * np.log(2 * np.pi * 0.6**2) - (r**2).sum() / (2 * 0.6**2))
    expected = logsumexp(np.array(table) + kernel.log_prior)
    got = _compile_marginal(kernel, 1, (2, 1))(resid, delta, 0.6)
    assert abs(got - expected) < 1e-10, f"PyTensor {got} vs brute force {expected}"


@pytest.mark.parametrize(
    "options",
    [{}, {"n_thresholds": 2, "min_gap": 2, "intercept": True, "groups": "thirds"}],
    ids=["single", "double_intercept_groups"],
)
def test_tensor_kernel_matches_numpy(sim, options):
    # The graph kernel at new data must equal a NumPy kernel prepared on that data.
    options = dict(options)
    if options.get("groups") == "thirds":
        options["groups"] = sim["unit"] % 3
    grid = threshold_grid(sim["q"], n_grid=8, trim=0.15)
    template = prepare_threshold_kernel(sim["q"], sim["x"], grid, **options)
    q_new, x_new = sim["q"][::-1].copy(), sim["x"] * 2.0 + 1.0
    expected = prepare_threshold_kernel(q_new, x_new, grid, **options)
    q, x = pt.vector("q"), pt.vector("x")
    graph = tensor_kernel(template, q, x)
    outputs = [graph.design, graph.gram] + ([graph.cross] if graph.cross is not None else [])
    values = pytensor.function([q, x], outputs)(q_new, x_new)
    references = [expected.design, expected.gram] + (
        [expected.cross] if expected.cross is not None else []
    )
    for got, reference in zip(values, references, strict=True):
        assert got.shape == reference.shape, (got.shape, reference.shape)
        assert np.max(np.abs(got - reference)) < 1e-10, np.max(np.abs(got - reference))


def test_tensor_kernel_rejects_fixed_effects(sim):
    grid = threshold_grid(sim["q"], n_grid=8)
    kernel = prepare_threshold_kernel(sim["q"], sim["x"], grid, fixed_effects=sim["unit"])
    with pytest.raises(ModelError, match="only kernels prepared without fixed_effects"):
        tensor_kernel(kernel, pt.vector("q"), pt.vector("x"))


def test_coef_path_matches_resid_path(sim):
    within_y = within_transform(sim["y"], sim["unit"])
    x_fixed = within_transform(np.column_stack([sim["control"], sim["x"]]), sim["unit"])
    grid = threshold_grid(sim["q"], n_grid=15)
    kernel = prepare_threshold_kernel(
        sim["q"], sim["x"], grid, fixed_effects=sim["unit"], y=within_y, x_fixed=x_fixed
    )
    coef = np.array([0.25, -0.4])
    by_coef = threshold_loglik_grid(kernel, np.array([1.5]), 0.5, coef=coef)
    by_resid = threshold_loglik_grid(kernel, np.array([1.5]), 0.5, resid=within_y - x_fixed @ coef)
    assert np.allclose(by_coef, by_resid, atol=1e-9), "coef and resid paths differ"
    assert kernel.n_effective[0] == 30 * 7, f"n_effective {kernel.n_effective}"


def test_pointwise_loglik_sums_to_integrated_unit_loglik(sim):
    """Rows of a unit sum to log of the likelihood integrated over a flat fixed effect."""
    within_y = within_transform(sim["y"], sim["unit"])
    grid = threshold_grid(sim["q"], n_grid=10)
    kernel = prepare_threshold_kernel(sim["q"], sim["x"], grid, fixed_effects=sim["unit"])
    within_x = within_transform(sim["x"], sim["unit"])
    beta_high, delta, sigma, index = -0.5, np.array([1.5]), 0.5, 4
    resid = within_y - beta_high * within_x
    values = conditional_pointwise_loglik(
        kernel, resid[None, None], delta[None, None], np.array([[sigma]]), np.array([[index]])
    )[0, 0]
    rows = sim["unit"] == 0
    fitted = beta_high * sim["x"] + (sim["x"] * (sim["q"] <= grid[index])) * delta[0]

    def integrand(alpha):
        r = sim["y"][rows] - alpha - fitted[rows]
        return np.exp(-0.5 * (r**2).sum() / sigma**2) / (np.sqrt(2 * np.pi) * sigma) ** rows.sum()

    centre = (sim["y"][rows] - fitted[rows]).mean()
    integral, _ = integrate.quad(integrand, centre - 5, centre + 5, epsabs=0, epsrel=1e-12)
    got = values[rows].sum()
    assert abs(got - np.log(integral)) < 1e-8, f"{got} vs quadrature {np.log(integral)}"


# --- posterior over the grid --------------------------------------------------


def test_threshold_posterior_rao_blackwell(sim):
    grid = threshold_grid(sim["q"], n_grid=15)
    kernel = prepare_threshold_kernel(sim["q"], sim["x"], grid)
    resid = sim["y"] - 0.3 * sim["control"] + 0.5 * sim["x"]
    draws = np.broadcast_to(resid, (2, 5, resid.size))
    delta = np.full((2, 5, 1), 1.5)
    sigma = np.full((2, 5), 1.2)
    post = threshold_posterior(kernel, delta, sigma, resid=draws, seed=3)
    total = float(post["gamma_prob"].sum())
    assert abs(total - 1) < 1e-12, f"probabilities sum to {total}"
    _, table = _brute_force_loglik(
        resid, kernel.design, delta[0, 0], 1.2, [resid.size], np.zeros(resid.size), kernel.log_prior
    )
    exact = np.exp(table[:, 0] - logsumexp(table[:, 0]))
    assert np.allclose(post["gamma_prob"].values, exact), "posterior differs from brute force"
    again = threshold_posterior(kernel, delta, sigma, resid=draws, seed=3)
    assert (post["gamma"].values == again["gamma"].values).all(), "seeded draws differ"
    assert post["gamma"].dims == ("chain", "draw"), f"dims {post['gamma'].dims}"


def test_regime_index_convention():
    q = np.array([0.1, 0.5, 0.7, 0.9])
    assert regime_index(q, [0.5, 0.8]).tolist() == [0, 0, 1, 2]
    assert regime_index(q, [0.5, 0.8], lower_inclusive=False).tolist() == [0, 1, 1, 2]


# --- least-squares search ----------------------------------------------------


def test_ls_search_recovers_simulated_threshold(sim):
    grid = threshold_grid(sim["q"], n_grid=40)
    result = fit_threshold_ls(
        sim["y"], sim["x"], sim["q"], x_fixed=sim["control"], fixed_effects=sim["unit"], grid=grid
    )
    assert abs(result.thresholds[0] - 0.5) < 0.05, f"gamma hat {result.thresholds}"
    slopes = result.regime_coef[:, 0]
    assert abs(slopes[0] - 1.0) < 3 * result.regime_se_ols[0, 0], f"low slope {slopes[0]}"
    assert abs(slopes[1] + 0.5) < 3 * result.regime_se_ols[1, 0], f"high slope {slopes[1]}"


def test_ls_drop_last_needs_units(sim):
    with pytest.raises(ModelError, match="drop_last=True needs fixed_effects"):
        fit_threshold_ls(sim["y"], sim["x"], sim["q"], drop_last=True)


# --- Bayesian recovery on simulated data -------------------------------------


def test_bayes_recovers_simulated_threshold(rng):
    """Cross-section, n = 300, true gamma = 0.4, slopes 1.0 below and -0.5 above."""
    import nutpie
    import pymc as pm

    n = 300
    q = rng.uniform(0, 1, n)
    x = rng.normal(size=n)
    y = 0.2 + np.where(q <= 0.4, 1.0, -0.5) * x + rng.normal(scale=0.3, size=n)
    grid = threshold_grid(q, n_grid=25, trim=0.1)
    x_fixed = np.column_stack([np.ones(n), x])
    kernel = prepare_threshold_kernel(q, x, grid, y=y, x_fixed=x_fixed)
    with pm.Model(coords={"regime": ["low", "high"]}) as model:
        intercept = pm.Normal("intercept", 0, 2)
        slope = pm.Normal("beta_regime", 0, 2, dims="regime")
        sigma = pm.HalfNormal("sigma", 1)
        coef = pt.stack([intercept, slope[1]])
        pm.Potential(
            "threshold_marginal_loglik",
            marginal_threshold_loglik(kernel, slope[:1] - slope[1:], sigma, coef=coef),
        )
    trace = nutpie.sample(
        nutpie.compile_pymc_model(model), draws=300, tune=300, chains=2, seed=5, progress_bar=False
    )
    posterior = trace["posterior"]
    coef_draws = np.stack(
        [posterior["intercept"].values, posterior["beta_regime"].values[..., 1]], axis=-1
    )
    delta = posterior["beta_regime"].values[..., 0] - posterior["beta_regime"].values[..., 1]
    post = threshold_posterior(
        kernel, delta[..., None], posterior["sigma"].values, coef=coef_draws, seed=1
    )
    mode = float(grid[post["gamma_prob"].values.argmax()])
    assert abs(mode - 0.4) < 0.05, f"posterior mode of gamma {mode}, true 0.4"
    slopes = posterior["beta_regime"].mean(("chain", "draw")).values
    assert abs(slopes[0] - 1.0) < 0.1, f"low-regime slope {slopes[0]}, true 1.0"
    assert abs(slopes[1] + 0.5) < 0.1, f"high-regime slope {slopes[1]}, true -0.5"
