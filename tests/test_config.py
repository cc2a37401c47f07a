"""Config parsing: valid files load, bad keys and values name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from polygvc.config import load_config, parse_config
from polygvc.errors import ConfigError
from polygvc.models.spec import DEFAULT_PRIORS, HierarchicalIVSpec, resolve_priors

REPO = Path(__file__).resolve().parents[1]


def test_example_config_loads():
    config = load_config(REPO / "examples" / "china_provinces.toml")
    assert config.model.endog == "poly_rank_size_all"
    assert config.inference.sampler == "nutpie"
    assert config.inference.chains == 4


def test_unknown_top_level_key_lists_valid_keys(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[modle]\nendog = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'modle'\. Did you mean 'model'\?") as info:
        load_config(path)
    assert "Valid keys here: data, diagnostics, inference, model, report, run" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_nested_key_names_path():
    with pytest.raises(ConfigError, match=r"unknown key 'inference\.draw'\. Did you mean 'draws'"):
        parse_config({"inference": {"draw": 10}})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"key 'inference\.chains' = 'four'"):
        parse_config({"inference": {"chains": "four"}})


def test_invalid_toml_syntax(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[run\nname = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="was not found"):
        load_config(tmp_path / "nope.toml")


def test_relative_paths_resolve_against_config(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.toml"
    path.write_text('[run]\nout = "out"\n[data]\nsource = "panel_file"\npanel = "p.csv"\n')
    config = load_config(path)
    assert config.run.out == (tmp_path / "sub" / "out").resolve()
    assert config.data.panel == (tmp_path / "sub" / "p.csv").resolve()


def test_panel_file_source_needs_path():
    with pytest.raises(ConfigError, match="data.source = 'panel_file' needs data.panel"):
        parse_config({"data": {"source": "panel_file"}})


def test_unknown_prior_name_lists_valid_names():
    with pytest.raises(ConfigError, match=r"Unknown prior name 'model\.priors\.beta_m'") as info:
        resolve_priors({"beta_m": {"dist": "Normal", "mu": 0, "sigma": 1}})
    message = str(info.value)
    assert "Did you mean 'beta_mu'?" in message
    assert ", ".join(sorted(DEFAULT_PRIORS)) in message


def test_prior_with_invalid_parameter_value():
    with pytest.raises(ConfigError, match=r"parameter sigma = -1 must be > 0 for Normal"):
        resolve_priors({"beta_mu": {"dist": "Normal", "mu": 0, "sigma": -1}})


def test_prior_with_unknown_parameter():
    expected = r"Normal has no parameter scale\. Its parameters are: mu"
    with pytest.raises(ConfigError, match=expected):
        resolve_priors({"beta_mu": {"dist": "Normal", "mu": 0, "scale": 1}})


def test_scale_prior_needs_positive_support():
    with pytest.raises(ConfigError, match="is a scale parameter and needs a positive"):
        resolve_priors({"beta_province_sd": {"dist": "Normal", "mu": 0, "sigma": 1}})


def test_prior_override_from_config_reaches_spec():
    config = parse_config(
        {"model": {"priors": {"beta_mu": {"dist": "StudentT", "nu": 4, "mu": 0, "sigma": 2}}}}
    )
    spec = HierarchicalIVSpec.from_config(config.model, config.data)
    assert str(spec.resolved_priors["beta_mu"]) == "StudentT(nu=4, mu=0, sigma=2)"


def test_column_with_two_roles_rejected():
    with pytest.raises(ConfigError, match="given both as model.endog and as model.instruments"):
        HierarchicalIVSpec(dependent="y", endog="x", instruments=["x"])


def test_empty_instruments_rejected():
    with pytest.raises(ConfigError, match="at least one instrument is required"):
        parse_config({"model": {"instruments": []}})


def test_jax_backend_needs_nutpie_sampler():
    with pytest.raises(ConfigError, match=r"backend = 'jax' applies to the nutpie sampler only"):
        parse_config({"inference": {"sampler": "pymc", "backend": "jax"}})


def test_parameterization_unknown_value():
    with pytest.raises(ConfigError, match=r"model\.parameterization"):
        parse_config({"model": {"parameterization": "center"}})


def test_spline_table_under_linear_kind_rejected():
    from polygvc.config import parse_config

    section = {
        "kind": "cf_linear", "dependent": "y", "endog": "x", "instruments": ["z"],
        "spline": {"n_knots": 4},
    }
    with pytest.raises(ConfigError) as info:
        parse_config({"model": section})
    message = str(info.value)
    assert "[model.spline] applies to kind = 'cf_spline' only, but kind = 'cf_linear'" in message
    assert "Fix: set kind = 'cf_spline' or remove [model.spline]" in message
