"""Structural tests of the hierarchical IV graph and its data checks (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from polygvc.errors import ConfigError, DataError, ModelError
from polygvc.models.data import prepare_model_data
from polygvc.models.hierarchical_iv import build_hierarchical_iv
from polygvc.models.pooling import AUTO_CENTRED_MIN_ROWS, use_centred
from polygvc.models.spec import HierarchicalIVSpec


@pytest.fixture
def spec() -> HierarchicalIVSpec:
    return HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], controls=["w"])


def test_graph_has_expected_variables(iv_panel, spec):
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    free = {rv.name for rv in model.free_RVs}
    expected = {
        "fs_intercept", "fs_instrument", "fs_covariate", "fs_year", "intercept",
        "intercept_region_sd", "intercept_region_offset", "intercept_province_sd",
        "intercept_province_offset", "beta_mu", "beta_region_sd", "beta_region_offset",
        "beta_province_sd", "beta_province_offset", "gamma", "year_effect", "error_chol",
    }
    assert free == expected
    deterministics = {d.name for d in model.deterministics}
    assert {"beta_province", "beta_region", "intercept_province", "rho", "sigma",
            "effect_mu", "effect_region", "effect_province"} <= deterministics


def test_graph_is_non_centred(iv_panel, spec):
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    for name in ("beta_province_offset", "beta_region_offset", "intercept_province_offset"):
        rv = model[name]
        assert rv.owner.op.name == "normal", name
    # The province slopes are deterministic functions of offsets, not free variables.
    assert "beta_province" not in {rv.name for rv in model.free_RVs}


def test_graph_dims(iv_panel, spec):
    data = prepare_model_data(iv_panel, spec)
    model = build_hierarchical_iv(spec, data)
    dims = model.named_vars_to_dims
    assert dims["beta_province"] == ("province",)
    assert dims["beta_region"] == ("region",)
    assert dims["fs_instrument"] == ("instrument",)
    assert dims["gamma"] == ("covariate",)
    assert dims["year_effect"] == ("year",)
    assert dims["outcomes"] == ("obs", "equation")
    assert model.coords["equation"] == ("first_stage", "outcome")
    assert len(model.coords["province"]) == 20
    assert set(model.coords["region"]) == {"Central", "East", "Northeast", "West"}


def test_graph_without_province_slopes(iv_panel):
    spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], province_slopes=False)
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    assert "beta_province_offset" not in model.named_vars
    assert "fs_covariate" not in model.named_vars


def test_logp_finite_at_initial_point(iv_panel, spec):
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    logp = model.compile_logp()(model.initial_point())
    assert np.isfinite(logp), logp


def test_effect_scaling_to_original_units(iv_panel, spec):
    data = prepare_model_data(iv_panel, spec)
    ratio = data.scaling["y"]["sd"] / data.scaling["x"]["sd"]
    assert data.unscale_effect(1.0) == pytest.approx(ratio)


def test_missing_column_names_close_match(iv_panel):
    spec = HierarchicalIVSpec(dependent="y", endog="xx", instruments=["z"])
    with pytest.raises(DataError, match=r"Column 'xx' named in model.endog is missing") as info:
        prepare_model_data(iv_panel, spec, source="panel.csv")
    assert "panel.csv" in str(info.value)
    assert "Close matches: x" in str(info.value)


def test_constant_instrument_rejected(iv_panel, spec):
    iv_panel["z"] = 3.0
    with pytest.raises(ModelError, match=r"Column 'z' is constant \(3\)"):
        prepare_model_data(iv_panel, spec)


def test_collinear_control_rejected(iv_panel):
    iv_panel["w2"] = 2.0 * iv_panel["w"] + 1.0
    spec = HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], controls=["w", "w2"])
    expected = r"Columns w, w2 are collinear in the model rows of the panel"
    with pytest.raises(ModelError, match=expected):
        prepare_model_data(iv_panel, spec)


def test_duplicated_keys_rejected(iv_panel, spec):
    panel = pd.concat([iv_panel, iv_panel.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicated \(province, year\) key, first 'P00', 2002"):
        prepare_model_data(panel, spec)


def test_single_province_rejected(iv_panel, spec):
    one = iv_panel[iv_panel["province"] == "P00"]
    with pytest.raises(ModelError, match=r"Only 1 province \(P00\) has complete data"):
        prepare_model_data(one, spec)


def test_infinite_value_rejected(iv_panel, spec):
    iv_panel.loc[3, "w"] = np.inf
    with pytest.raises(DataError, match=r"Column 'w' in the panel has an infinite value at row 3"):
        prepare_model_data(iv_panel, spec)


def test_missing_rows_dropped_with_reason(iv_panel, spec):
    iv_panel.loc[0, "y"] = np.nan
    data = prepare_model_data(iv_panel, spec)
    assert data.n_obs == len(iv_panel) - 1
    assert data.dropped["reason"].tolist() == ["missing y"]


def test_prior_predictive_runs(iv_panel, spec):
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    prior = pm.sample_prior_predictive(draws=20, model=model, random_seed=1)
    assert prior["prior_predictive"]["outcomes"].shape == (1, 20, 40, 2)


def test_single_region_rejected(iv_panel, spec):
    iv_panel["region"] = "East"
    expected = r"All model rows of the panel are in one region \('East'\)"
    with pytest.raises(ModelError, match=expected):
        prepare_model_data(iv_panel, spec)


def test_centred_graph_free_variables(iv_panel):
    spec = HierarchicalIVSpec(
        dependent="y", endog="x", instruments=["z"], controls=["w"], parameterization="centred"
    )
    model = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    free = {rv.name for rv in model.free_RVs}
    deterministics = {d.name for d in model.deterministics}
    for name in ("intercept_province", "beta_province"):
        assert name in free, name
        assert f"{name}_offset" in deterministics, name
    # The region level stays non-centred in both forms.
    for name in ("intercept_region_offset", "beta_region_offset"):
        assert name in free, name
    assert model.named_vars_to_dims["intercept_province_offset"] == ("province",)


def test_parameterization_auto_rule():
    assert use_centred("auto", [AUTO_CENTRED_MIN_ROWS, 500]) is True
    assert use_centred("auto", [AUTO_CENTRED_MIN_ROWS - 1, 500]) is False
    assert use_centred("auto", []) is False
    assert use_centred("centred", [1]) is True
    assert use_centred("non_centred", [10_000]) is False


def test_parameterization_invalid_message():
    with pytest.raises(ConfigError, match=r"model.parameterization = 'center' is not one of"):
        HierarchicalIVSpec(dependent="y", endog="x", instruments=["z"], parameterization="center")


def test_centred_and_non_centred_same_likelihood(iv_panel):
    """At matching parameter values both forms give the same data log-likelihood."""
    models = {}
    for form in ("non_centred", "centred"):
        spec = HierarchicalIVSpec(
            dependent="y", endog="x", instruments=["z"], controls=["w"], parameterization=form
        )
        models[form] = build_hierarchical_iv(spec, prepare_model_data(iv_panel, spec))
    non_centred, centred = models["non_centred"], models["centred"]
    rng = np.random.default_rng(3)
    point = {
        name: value + rng.normal(scale=0.5, size=np.shape(value))
        for name, value in non_centred.initial_point().items()
    }
    province_terms = ("intercept_province", "beta_province")
    outputs = non_centred.replace_rvs_by_values([non_centred[name] for name in province_terms])
    evaluate = pm.compile(non_centred.value_vars, outputs, on_unused_input="ignore")
    terms = evaluate(**point)
    centred_point = {
        name: value for name, value in point.items()
        if name not in {f"{term}_offset" for term in province_terms}
    }
    centred_point.update(dict(zip(province_terms, terms, strict=True)))
    assert set(centred_point) == set(centred.initial_point())

    def loglik(model, values):
        return model.compile_logp(vars=[model["outcomes"]])(values)

    assert loglik(centred, centred_point) == pytest.approx(loglik(non_centred, point), rel=1e-10)
