"""Power-scaling prior sensitivity: the diagnosis rule and a fit with a known conflict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from polygvc.diagnostics.sensitivity import (
    diagnose_sensitivity,
    prior_sensitivity,
    scaled_prior_names,
)
from polygvc.errors import DataError
from polygvc.models.varying_intercept import (
    build_varying_intercept,
    prepare_varying_intercept_data,
)


@pytest.mark.parametrize(
    ("prior", "likelihood", "expected"),
    [
        (0.2, 0.2, "prior-data conflict"),
        (0.2, 0.01, "strong prior / weak likelihood"),
        (0.01, 0.01, "weak likelihood"),
        (0.01, 0.2, "no concern"),
    ],
)
def test_diagnosis_rule(prior, likelihood, expected):
    assert diagnose_sensitivity(prior, likelihood) == expected


def _fit(rng, priors):
    n_groups, per_group = 6, 10
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n_groups * per_group),
            "g": np.repeat([f"g{k}" for k in range(n_groups)], per_group),
        }
    )
    frame["y"] = 3.0 + 1.5 * frame["x"] + rng.normal(scale=0.5, size=len(frame))
    data = prepare_varying_intercept_data(frame, "y", ["x"], "g")
    model = build_varying_intercept(data, priors=priors)
    dt = pm.sample(
        model=model,
        nuts_sampler="nutpie",
        draws=500,
        tune=500,
        chains=2,
        random_seed=11,
        progressbar=False,
    )
    pm.compute_log_likelihood(dt, model=model, progressbar=False)
    return dt, model


def test_conflicting_prior_flagged(rng):
    # Prior Normal(-3, 0.3) on the slope against data generated with slope 1.5.
    dt, model = _fit(rng, {"beta": {"dist": "Normal", "mu": -3.0, "sigma": 0.3}})
    table = prior_sensitivity(dt, model, var_names=["beta", "sigma", "intercept"])
    assert table.loc["beta[x]", "diagnosis"] == "prior-data conflict", table.to_string()
    assert table.loc["beta[x]", "prior"] > 0.05, table.to_string()
    assert "log_prior" not in dt.children, "the input DataTree was modified"


@pytest.fixture(scope="module")
def weak_fit():
    return _fit(np.random.default_rng(20261204), None)


def test_weak_prior_not_flagged(weak_fit):
    dt, model = weak_fit
    table = prior_sensitivity(dt, model, var_names=["beta", "sigma"])
    assert table.loc["beta[x]", "diagnosis"] == "no concern", table.to_string()


def test_missing_log_prior_needs_model(weak_fit):
    dt, _ = weak_fit
    with pytest.raises(DataError, match="no log_prior group and no model"):
        prior_sensitivity(dt, None)


def test_preflight_prior_predictive_only(rng, tmp_path):
    from polygvc.diagnostics.preflight import run_preflight

    n_units, years = 8, [2002, 2007]
    panel = pd.DataFrame(
        {
            "province": np.repeat([f"p{k}" for k in range(n_units)], len(years)),
            "region": np.repeat(["East", "West"] * (n_units // 2), len(years)),
            "year": years * n_units,
            "z": np.repeat(rng.normal(size=n_units), len(years)),
        }
    )
    panel["x"] = panel["z"] + rng.normal(size=len(panel))
    panel["y"] = 0.5 * panel["x"] + rng.normal(size=len(panel))
    config = {
        "model": {
            "dependent": "y",
            "endog": "x",
            "instruments": ["z"],
            "controls": [],
            "moderators": [],
        }
    }
    report = run_preflight(config, panel, folder=tmp_path, sbc_simulations=0, sensitivity=False)
    table = report.prior_predictive
    assert list(table.index) == ["x", "y"]
    assert (table["verdict"] == "plausible").all(), table.to_string()
    assert report.sbc is None
    expected = ["SBC not run: sbc_simulations = 0.", "Sensitivity not run: switched off."]
    assert report.notes == expected
    assert (tmp_path / "preflight.json").is_file()


def test_scaled_prior_names_skip_group_terms():
    log_prior = xr.Dataset(
        {
            name: (("chain", "draw"), np.zeros((1, 2)))
            for name in (
                "beta_mu",
                "beta_region_sd",
                "beta_region_offset",
                "intercept_province",
                "spline_offset",
                "sigma",
            )
        }
    )
    assert scaled_prior_names(log_prior) == ["beta_mu", "beta_region_sd", "sigma"]


def test_preflight_reads_panel_file_options(rng, tmp_path):
    from polygvc.diagnostics.preflight import run_preflight

    provinces = ["Beijing", "Tianjin", "Hebei", "Shanxi", "Shanghai", "Jiangsu"]
    years = [2002, 2007]
    panel = pd.DataFrame(
        {
            "省份": np.repeat(provinces, len(years)),
            "yr": years * len(provinces),
            "z": np.repeat(rng.normal(size=len(provinces)), len(years)),
        }
    )
    panel["x"] = panel["z"] + rng.normal(size=len(panel))
    panel["y"] = 0.5 * panel["x"] + rng.normal(size=len(panel))
    path = tmp_path / "panel_gbk.csv"
    panel.to_csv(path, index=False, encoding="gbk")
    config = {
        "data": {
            "source": "panel_file",
            "panel": str(path),
            "unit": "省份",
            "time": "yr",
            "encoding": "gbk",
        },
        "model": {
            "dependent": "y",
            "endog": "x",
            "instruments": ["z"],
            "controls": [],
            "moderators": [],
        },
    }
    # The same [data] options as polygvc run: a GBK file with its own unit and year headers.
    report = run_preflight(config, sbc_simulations=0, sensitivity=False)
    assert list(report.prior_predictive.index) == ["x", "y"]
    observed = report.prior_predictive.loc["x", "observed_max"]
    assert observed == pytest.approx(panel["x"].max())


def _cf_panel(rng) -> pd.DataFrame:
    n_units, years = 8, [2002, 2007, 2012]
    panel = pd.DataFrame(
        {
            "province": np.repeat([f"p{k}" for k in range(n_units)], len(years)),
            "region": np.repeat(["East", "West"] * (n_units // 2), len(years)),
            "year": years * n_units,
        }
    )
    panel["z"] = rng.normal(size=len(panel))
    panel["m"] = rng.normal(size=len(panel))
    panel["x"] = panel["z"] + rng.normal(size=len(panel))
    panel["y"] = 0.5 * panel["x"] + 0.3 * panel["x"] * panel["m"] + rng.normal(size=len(panel))
    return panel


CF_THRESHOLD_MODEL = {
    "kind": "cf_threshold",
    "dependent": "y",
    "endog": "x",
    "instruments": ["z"],
    "controls": [],
    "moderators": ["m"],
    "threshold": {"variable": "m", "n_grid": 6},
}


def test_preflight_control_function_prior_predictive(rng):
    from polygvc.diagnostics.preflight import run_preflight

    panel = _cf_panel(rng)
    report = run_preflight(
        {"model": CF_THRESHOLD_MODEL}, panel, sbc_simulations=0, sensitivity=False
    )
    table = report.prior_predictive
    assert list(table.index) == ["x", "y"]
    assert table.loc["y", "observed_max"] == pytest.approx(panel["y"].max())


@pytest.mark.slow
def test_preflight_control_function_sbc_and_sensitivity(rng, tmp_path):
    from polygvc.diagnostics.preflight import run_preflight

    report = run_preflight(
        {"model": CF_THRESHOLD_MODEL},
        _cf_panel(rng),
        folder=tmp_path,
        sbc_simulations=4,
        sbc_draws=100,
        fit_draws=200,
        n_workers=1,
    )
    ranked = set(report.sbc.index)
    assert {"threshold", "beta_jump", "cf_coef"} <= ranked, ranked
    assert {"beta_regime[low]", "beta_regime[high]", "cf_coef"} <= set(report.sensitivity.index)
    assert (tmp_path / "preflight.json").is_file()


def test_preflight_two_thresholds_skips_simulation(rng):
    from polygvc.diagnostics.preflight import run_preflight

    model = {**CF_THRESHOLD_MODEL, "threshold": {"variable": "m", "n_grid": 6, "n_thresholds": 2}}
    report = run_preflight({"model": model}, _cf_panel(rng), sensitivity=False)
    assert report.prior_predictive is None
    assert report.sbc is None
    assert report.notes[0].startswith("Prior predictive and SBC not run: SBC of a control-function")


def test_preflight_rejects_negative_sims(rng):
    from polygvc.diagnostics.preflight import run_preflight
    from polygvc.errors import ConfigError

    with pytest.raises(ConfigError, match="The number of SBC simulations is -1; it must be 0"):
        run_preflight({"model": CF_THRESHOLD_MODEL}, _cf_panel(rng), sbc_simulations=-1)


def test_preflight_rejects_file_as_folder(rng, tmp_path):
    from polygvc.diagnostics.preflight import run_preflight
    from polygvc.errors import ConfigError

    target = tmp_path / "outfile.txt"
    target.write_text("keep me\n")
    with pytest.raises(ConfigError, match="The output folder .*outfile.txt is a file"):
        run_preflight({"model": CF_THRESHOLD_MODEL}, _cf_panel(rng), folder=target)
    assert target.read_text() == "keep me\n"


def test_preflight_flags_name_parameters():
    from polygvc.diagnostics.preflight import PreflightReport

    prior = pd.DataFrame({"verdict": ["plausible", "too wide"]}, index=["x", "y"])
    sensitivity = pd.DataFrame(
        {"diagnosis": ["no concern", "prior-data conflict", "prior-data conflict"]},
        index=["beta_mu", "rho", "sigma[outcome]"],
    )
    report = PreflightReport(prior, None, sensitivity)
    assert report.flags == [
        "prior predictive too wide for y",
        "prior-data conflict for rho, sigma[outcome]",
    ]
    assert not report.ok
    assert PreflightReport(prior.iloc[:1], None, sensitivity.iloc[:1]).ok
