"""Sufficient-statistic likelihood of the joint IV model: equality, DuckDB path, reuse.

Numerical reference: the per-observation bivariate normal log-density (PyMC's
``MvNormal`` in ``hierarchical_iv.py`` and the NumPy function
``loglik_per_observation``). The Gram form is algebraically identical, so the
tolerance is rounding only: 1e-8 relative on the summed log-likelihood.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from conftest import simulate_iv_panel

from polygvc.errors import DataError, DataNotFoundError, ModelError
from polygvc.inference.compiled import CompiledSampler
from polygvc.inference.sampling import SamplerSettings
from polygvc.models.data import prepare_model_data
from polygvc.models.hierarchical_iv import build_hierarchical_iv
from polygvc.models.hierarchical_iv_suffstat import (
    POTENTIAL_NAME,
    add_log_likelihood,
    add_posterior_predictive,
    build_hierarchical_iv_suffstat,
)
from polygvc.models.spec import HierarchicalIVSpec
from polygvc.models.sufficient import (
    coefficient_rows,
    gram_from_duckdb,
    gram_from_model_data,
    loglik_from_gram,
    loglik_per_observation,
    residuals_per_observation,
)

RTOL = 1e-8
SEEDS = (11, 12, 13)


def _panel(seed: int, n_years: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    panel = simulate_iv_panel(rng, n_provinces=12, years=tuple(range(2001, 2001 + n_years)))
    panel["z2"] = rng.normal(size=len(panel))
    panel["w2"] = rng.normal(loc=3.0, scale=2.0, size=len(panel))
    return panel


def _spec(**kwargs) -> HierarchicalIVSpec:
    settings = {"instruments": ["z", "z2"], "controls": ["w", "w2"]}
    settings.update(kwargs)
    return HierarchicalIVSpec(dependent="y", endog="x", **settings)


def _random_params(rng: np.random.Generator, data, spec) -> dict:
    n_unit, n_year = len(data.coords["province"]), len(data.coords["year"])
    return {
        "fs_intercept": rng.normal(),
        "fs_instrument": rng.normal(size=data.Z.shape[1]),
        "fs_covariate": rng.normal(size=data.W.shape[1]),
        "fs_year": rng.normal(size=n_year),
        "intercept_province": rng.normal(size=n_unit),
        "beta_province": rng.normal(size=n_unit),
        "gamma": rng.normal(size=data.W.shape[1]),
        "year_effect": rng.normal(size=n_year),
        "sigma": rng.uniform(0.3, 2.0, size=2),
        "rho": rng.uniform(-0.9, 0.9),
    }


def _random_point(model: pm.Model, rng: np.random.Generator) -> dict:
    point = model.initial_point()
    return {name: rng.normal(scale=0.7, size=np.shape(value)) for name, value in point.items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_gram_residuals_match_rows(seed):
    spec = _spec()
    data = prepare_model_data(_panel(seed), spec)
    stats = gram_from_model_data(data, spec)
    params = _random_params(np.random.default_rng(seed), data, spec)
    a_u, a_e = coefficient_rows(params, stats.layout)
    expected = loglik_per_observation(data, params, year_effects=True).sum()
    got = loglik_from_gram(stats, params)
    assert abs(got - expected) <= RTOL * abs(expected), (got, expected)
    assert stats.gram.shape == (12, 3 + 2 + 2 + 4, 3 + 2 + 2 + 4), stats.gram.shape
    assert a_e.shape == (12, stats.layout.n_columns), a_e.shape
    assert stats.n_obs == data.n_obs, (stats.n_obs, data.n_obs)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"province_slopes": False, "year_effects": False},
        {"instruments": ["z"], "controls": [], "lkj_eta": 1.0},
    ],
)
def test_model_logp_matches_per_observation(options):
    spec = _spec(**options)
    data = prepare_model_data(_panel(SEEDS[0]), spec)
    per_obs = build_hierarchical_iv(spec, data)
    suffstat = build_hierarchical_iv_suffstat(spec, data)
    # FAST_COMPILE skips the C compilation; the graphs are the same.
    per_obs_logp = per_obs.compile_logp(mode="FAST_COMPILE")
    suffstat_logp = suffstat.compile_logp(mode="FAST_COMPILE")
    for seed in SEEDS:
        point = _random_point(per_obs, np.random.default_rng(seed))
        expected = float(per_obs_logp(point))
        got = float(suffstat_logp(point))
        assert abs(got - expected) <= RTOL * abs(expected), (seed, got, expected)


def test_potential_equals_mvnormal_logp():
    spec = _spec()
    data = prepare_model_data(_panel(SEEDS[1]), spec)
    per_obs = build_hierarchical_iv(spec, data)
    suffstat = build_hierarchical_iv_suffstat(spec, data)
    mvnormal_logp = per_obs.compile_logp(vars=[per_obs["outcomes"]], mode="FAST_COMPILE")
    potential = suffstat.replace_rvs_by_values([suffstat[POTENTIAL_NAME]])[0]
    potential_fn = suffstat.compile_fn(potential, inputs=suffstat.value_vars, mode="FAST_COMPILE")
    for seed in SEEDS:
        point = _random_point(per_obs, np.random.default_rng(seed))
        expected = float(mvnormal_logp(point))
        got = float(potential_fn(point))
        assert abs(got - expected) <= RTOL * abs(expected), (seed, got, expected)


def test_suffstat_graph_variables():
    spec = _spec()
    data = prepare_model_data(_panel(1), spec)
    per_obs = build_hierarchical_iv(spec, data)
    suffstat = build_hierarchical_iv_suffstat(spec, data)
    free = {rv.name for rv in suffstat.free_RVs}
    assert free == {rv.name for rv in per_obs.free_RVs}, free
    deterministics = {d.name for d in suffstat.deterministics}
    assert deterministics == {d.name for d in per_obs.deterministics}, deterministics
    assert suffstat.observed_RVs == [], suffstat.observed_RVs
    assert [p.name for p in suffstat.potentials] == [POTENTIAL_NAME]
    assert "obs" not in suffstat.coords
    assert suffstat.named_vars_to_dims["gram"] == ("province", "gram_row", "gram_col")


def test_layout_mismatch_raises():
    spec = _spec()
    data = prepare_model_data(_panel(2), spec)
    stats = gram_from_model_data(data, spec)
    other = _spec(controls=["w"])
    with pytest.raises(ModelError, match=r"covariates \['w', 'w2'\].*names.*\['w'\]"):
        build_hierarchical_iv_suffstat(other, stats)
    no_years = _spec(year_effects=False)
    with pytest.raises(ModelError, match="year_effects = False.*have year columns"):
        build_hierarchical_iv_suffstat(no_years, stats)


# DuckDB path -----------------------------------------------------------------


def test_duckdb_matches_numpy(tmp_path):
    spec = _spec()
    panel = _panel(3)
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    data = prepare_model_data(panel, spec)
    expected = gram_from_model_data(data, spec)
    got = gram_from_duckdb(path, spec)
    assert got.coords == expected.coords
    np.testing.assert_allclose(got.gram, expected.gram, rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(got.group_idx_of_unit, expected.group_idx_of_unit)
    for column, scale in expected.scaling.items():
        assert got.scaling[column]["mean"] == pytest.approx(scale["mean"], rel=1e-12, abs=1e-12)
        assert got.scaling[column]["sd"] == pytest.approx(scale["sd"], rel=1e-12)


def test_duckdb_repeated_rows_and_shift(tmp_path):
    # Several rows per province-year (city or firm rows) and a column whose
    # mean/sd ratio (1e5) forces the shifted second pass.
    rng = np.random.default_rng(4)
    spec = _spec()
    panel = pd.concat([_panel(4)] * 3, ignore_index=True)
    panel["x"] = panel["x"] + rng.normal(size=len(panel))
    panel["w2"] = 1e5 + rng.normal(size=len(panel))
    path = tmp_path / "rows.csv"
    panel.to_csv(path, index=False)
    got = gram_from_duckdb(path, spec)

    frame = panel.sort_values(["region", "province", "year"])
    columns = ["x", "y", "z", "z2", "w", "w2"]
    standard = (frame[columns] - frame[columns].mean()) / frame[columns].std(ddof=1)
    years = sorted(frame["year"].unique())
    design = np.column_stack(
        [
            standard[["x", "y"]].to_numpy(),
            np.ones(len(frame)),
            standard[["z", "z2", "w", "w2"]].to_numpy(),
            (frame["year"].to_numpy()[:, None] == np.array(years)).astype(float),
        ]
    )
    units = list(dict.fromkeys(frame["province"]))
    for p, unit in enumerate(units):
        rows = design[(frame["province"] == unit).to_numpy()]
        np.testing.assert_allclose(got.gram[p], rows.T @ rows, rtol=1e-9, atol=1e-7)
    assert got.n_obs == len(panel), got.n_obs
    assert got.scaling["w2"]["mean"] == pytest.approx(panel["w2"].mean(), rel=1e-14)


def test_duckdb_missing_column(tmp_path):
    path = tmp_path / "panel.parquet"
    _panel(5).drop(columns="z2").to_parquet(path)
    with pytest.raises(DataError, match="Column 'z2' named in the model spec is missing"):
        gram_from_duckdb(path, _spec())


def test_duckdb_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="nothing.parquet was not found"):
        gram_from_duckdb(tmp_path / "nothing.parquet", _spec())


def test_duckdb_split_region(tmp_path):
    panel = _panel(6)
    panel.loc[0, "region"] = "Elsewhere"
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    with pytest.raises(DataError, match="P00' belongs to several region values"):
        gram_from_duckdb(path, _spec())


def test_duckdb_skips_null_rows(tmp_path):
    spec = _spec()
    panel = _panel(7)
    panel.loc[[3, 10], "z"] = np.nan
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    got = gram_from_duckdb(path, spec)
    expected = gram_from_model_data(prepare_model_data(panel, spec), spec)
    assert got.n_obs == len(panel) - 2, got.n_obs
    np.testing.assert_allclose(got.gram, expected.gram, rtol=1e-10, atol=1e-9)


# Pointwise log-likelihood and predictive draws after sampling -----------------


def _prior_as_posterior(model: pm.Model, seed: int) -> xr.DataTree:
    prior = pm.sample_prior_predictive(draws=40, model=model, random_seed=seed)
    draws = prior["prior"].to_dataset()
    # Two pseudo-chains of 20 draws, so the chain dim is exercised.
    stacked = draws.isel(chain=0).drop_vars("chain")
    halves = [stacked.isel(draw=slice(0, 20)), stacked.isel(draw=slice(20, 40))]
    halves = [h.assign_coords(draw=np.arange(20)) for h in halves]
    posterior = xr.concat(halves, dim="chain").assign_coords(chain=[0, 1])
    return xr.DataTree.from_dict({"posterior": posterior})


def test_pointwise_loglik_matches_pymc():
    spec = _spec()
    data = prepare_model_data(_panel(8), spec)
    per_obs = build_hierarchical_iv(spec, data)
    dt = _prior_as_posterior(per_obs, seed=8)
    expected = pm.compute_log_likelihood(dt.copy(), model=per_obs, progressbar=False)
    expected = expected["log_likelihood"]["outcomes"]
    got = add_log_likelihood(dt, data)["log_likelihood"]["outcomes"]
    assert got.dims == expected.dims, (got.dims, expected.dims)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-10, atol=1e-10)


def test_posterior_predictive_dims_and_spread():
    spec = _spec()
    data = prepare_model_data(_panel(9), spec)
    dt = _prior_as_posterior(build_hierarchical_iv(spec, data), seed=9)
    replicated = add_posterior_predictive(dt, data, seed=9)["posterior_predictive"]["outcomes"]
    assert replicated.dims == ("chain", "draw", "obs", "equation"), replicated.dims

    posterior = dt["posterior"].to_dataset()
    params = {name: posterior[name].to_numpy() for name in posterior.data_vars}
    u, e = residuals_per_observation(data, params, year_effects=True)
    noise_x = replicated.sel(equation="first_stage").to_numpy() - (data.x - u)
    noise_y = replicated.sel(equation="outcome").to_numpy() - (data.y - e)
    # 48 rows per draw: the sd ratio averaged over 40 draws is 1 within a few percent.
    sd_ratio = float(np.mean(noise_x.std(axis=-1) / params["sigma"][..., 0]))
    assert 0.85 < sd_ratio < 1.15, sd_ratio
    sd_ratio_y = float(np.mean(noise_y.std(axis=-1) / params["sigma"][..., 1]))
    assert 0.85 < sd_ratio_y < 1.15, sd_ratio_y
    corr = np.mean(noise_x * noise_y, axis=-1) / (noise_x.std(axis=-1) * noise_y.std(axis=-1))
    corr_error = float(np.mean(corr - params["rho"]))
    assert abs(corr_error) < 0.1, corr_error


# Compile once, sample with new data (slow: a nutpie compile takes about a minute
# on a shared 2-core machine) ---------------------------------------------------


@pytest.fixture(scope="module")
def compiled_suffstat():
    spec = _spec(instruments=["z"], controls=["w"])
    data = prepare_model_data(_panel(20), spec)
    model = build_hierarchical_iv_suffstat(spec, data)
    return spec, model, CompiledSampler(model)


@pytest.mark.slow
def test_compiled_refit_uses_new_data(compiled_suffstat):
    spec, model, sampler = compiled_suffstat
    settings = SamplerSettings(chains=2, draws=150, tune=150, seed=5)
    first = sampler.sample(settings)
    panel = _panel(21)
    panel["y"] = panel["y"] + 2.0 * panel["x"]
    new_gram = gram_from_model_data(prepare_model_data(panel, spec), spec).gram
    second = sampler.sample(settings, data={"gram": new_gram})
    shift = float(second["posterior"]["beta_mu"].mean() - first["posterior"]["beta_mu"].mean())
    assert shift > 0.3, shift
    np.testing.assert_array_equal(second["constant_data"]["gram"].to_numpy(), new_gram)
    assert not np.array_equal(model["gram"].get_value(), new_gram)
    assert len(sampler.timing.sampling_seconds) == 2, sampler.timing
    assert second.attrs["compile_seconds"] > 0


@pytest.mark.slow
def test_compiled_rejects_bad_data(compiled_suffstat):
    _, model, sampler = compiled_suffstat
    settings = SamplerSettings(chains=1, draws=5, tune=5)
    with pytest.raises(ModelError, match="no pm.Data variable of that name. Valid names: gram"):
        sampler.sample(settings, data={"grams": model["gram"].get_value()})
    with pytest.raises(ModelError, match=r"has shape \(2, 2\) but the model was compiled"):
        sampler.sample(settings, data={"gram": np.eye(2)})


def test_compiled_sampler_rejects_jax():
    spec = _spec(instruments=["z"], controls=["w"])
    model = build_hierarchical_iv_suffstat(spec, prepare_model_data(_panel(20), spec))
    with pytest.raises(ModelError, match=r"supports backend 'numba' only, not 'jax'"):
        CompiledSampler(model, backend="jax")
