"""Sampling, storage and reproducibility at small size; recovery in the slow tier."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from polygvc.errors import SamplingError
from polygvc.inference.sampling import SamplerSettings, nutpie_compile_kwargs, sample_model
from polygvc.inference.store import load_datatree, save_datatree
from polygvc.models.data import prepare_model_data
from polygvc.models.hierarchical_iv import build_hierarchical_iv
from polygvc.models.spec import HierarchicalIVSpec
from tests.conftest import simulate_iv_panel

SMALL = SamplerSettings(chains=2, draws=150, tune=200, seed=7)


def _fit(panel, settings=SMALL):
    spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], controls=["w"])
    data = prepare_model_data(panel, spec)
    model = build_hierarchical_iv(spec, data)
    return sample_model(model, data, spec.to_json(), settings)


@pytest.fixture(scope="module")
def small_fit():
    panel = simulate_iv_panel(np.random.default_rng(3), n_provinces=12)
    return panel, _fit(panel)


def test_datatree_groups_present(small_fit):
    _, dt = small_fit
    for group in ("posterior", "sample_stats", "posterior_predictive", "log_likelihood",
                  "observed_data", "constant_data"):
        assert group in dt.children, group
    assert dt["log_likelihood"]["outcomes"].dims == ("chain", "draw", "obs")
    assert dt["posterior_predictive"]["outcomes"].dims == ("chain", "draw", "obs", "equation")


def test_rows_labelled_and_spec_stored(small_fit):
    panel, dt = small_fit
    labels = dt["constant_data"]["obs_province"].values
    assert sorted(set(labels)) == sorted(set(panel["province"]))
    spec = json.loads(dt.attrs["spec"])
    assert spec["endog"] == "x"
    scaling = json.loads(dt.attrs["scaling"])
    assert scaling["y"]["sd"] == pytest.approx(panel["y"].std(ddof=1))


def test_netcdf_round_trip(small_fit, tmp_path):
    _, dt = small_fit
    path = save_datatree(dt, tmp_path / "posterior.nc")
    back = load_datatree(path)
    xr.testing.assert_allclose(
        back["posterior"]["beta_province"], dt["posterior"]["beta_province"]
    )
    assert back.attrs["spec"] == dt.attrs["spec"]
    assert not list(tmp_path.glob("*.partial"))


def test_same_seed_same_posterior(small_fit):
    panel, dt = small_fit
    again = _fit(panel)
    np.testing.assert_array_equal(
        again["posterior"]["beta_mu"].values, dt["posterior"]["beta_mu"].values
    )


@pytest.mark.slow
def test_recovers_known_effect():
    # Truth: beta = 0.5 in original units with strong endogeneity (rho = 0.6).
    # The 89% interval must cover the truth and the mean must lie within two
    # posterior sds of it.
    rng = np.random.default_rng(11)
    panel = simulate_iv_panel(rng, n_provinces=40, years=(2001, 2004, 2007, 2010), beta=0.5)
    dt = _fit(panel, SamplerSettings(chains=4, draws=500, tune=500, seed=11))
    effect = dt["posterior"]["effect_mu"].values.ravel()
    lower, upper = np.quantile(effect, [0.055, 0.945])
    assert lower < 0.5 < upper, (lower, upper)
    assert abs(effect.mean() - 0.5) < 2 * effect.std(), (effect.mean(), effect.std())
    rho = dt["posterior"]["rho"].values.ravel()
    assert np.quantile(rho, 0.055) < 0.6 < np.quantile(rho, 0.945)


def test_chains_with_nan_detected():
    # nutpie returns full-size arrays with NaN in chains it could not finish.
    from polygvc.inference.sampling import _chains_with_nan

    values = np.zeros((4, 10, 3))
    values[2, 5:, 1] = np.nan
    posterior = xr.Dataset(
        {"beta": (("chain", "draw", "province"), values),
         "flag": (("chain", "draw"), np.zeros((4, 10), dtype=int))},
        coords={"chain": np.arange(4), "draw": np.arange(10)},
    )
    assert _chains_with_nan(xr.DataTree(posterior)) == [2]


def test_jax_backend_matches_numba_posterior(small_fit):
    """The JAX-compiled model targets the same posterior as the numba one."""
    pytest.importorskip("jax", reason="the jax extra is part of the test install")
    panel, numba_dt = small_fit
    settings = SamplerSettings(
        chains=2, draws=150, tune=200, seed=7, backend="jax",
        posterior_predictive=False, log_likelihood=False,
    )
    jax_dt = _fit(panel, settings)
    assert jax_dt["posterior"].sizes["draw"] == 150
    numba_beta = numba_dt["posterior"]["beta_mu"]
    jax_beta = jax_dt["posterior"]["beta_mu"]
    # Two independent 300-draw runs: the means differ by Monte Carlo error only.
    assert abs(float(jax_beta.mean()) - float(numba_beta.mean())) < 0.5 * float(numba_beta.std())


def test_jax_backend_missing_message(monkeypatch):
    import polygvc.inference.sampling as sampling

    real_find_spec = sampling.importlib.util.find_spec
    monkeypatch.setattr(
        sampling.importlib.util, "find_spec",
        lambda name, *args: None if name == "jax" else real_find_spec(name, *args),
    )
    with pytest.raises(SamplingError, match=r"backend = 'jax' needs JAX.*pip install 'polygvc\[jax\]'"):
        sampling.nutpie_compile_kwargs(SamplerSettings(backend="jax"))


def test_jax_backend_with_pymc_sampler_rejected():
    with pytest.raises(SamplingError, match="applies to the nutpie sampler only"):
        nutpie_compile_kwargs(SamplerSettings(sampler="pymc", backend="jax"))
