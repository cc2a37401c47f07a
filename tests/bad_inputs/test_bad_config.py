"""Bad configs and run folders through ``polygvc run``: clear messages, no sampling."""

from __future__ import annotations

import subprocess

import pytest

from polygvc.config import RunConfig

from .factory import (
    CLI,
    assert_user_error,
    cli_env,
    contract_panel,
    small_config,
    small_panel,
    write_config,
)


@pytest.fixture
def contract_file(tmp_path, rng):
    """A Parquet panel meeting the full panel contract, so runs get past the data stage."""
    path = tmp_path / "contract.parquet"
    contract_panel(rng).to_parquet(path, index=False)
    return path


def _contract_config(tmp_path, panel, model=None, **sections):
    body = {
        "run": {"seed": 3},
        "data": {"source": "panel_file", "panel": str(panel)},
        "model": model or {},
        "inference": {"chains": 1, "draws": 10, "tune": 10},
        "diagnostics": {"classical": False},
        "report": {"html": False},
    }
    body.update(sections)
    return write_config(tmp_path / "config.toml", body)


def _subprocess(*args):
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=cli_env(), timeout=120
    )


def test_unknown_key(cli, tmp_path, rng):
    panel = tmp_path / "panel.csv"
    small_panel(rng).to_csv(panel, index=False)
    config = small_config(tmp_path, panel, extra={"inference": {"draw": 100}})
    message = assert_user_error(cli("run", config), str(config), "unknown key 'inference.draw'")
    assert "Did you mean 'draws'?" in message


def test_wrong_type(cli, tmp_path, rng):
    panel = tmp_path / "panel.csv"
    small_panel(rng).to_csv(panel, index=False)
    config = small_config(tmp_path, panel, extra={"inference": {"chains": "four"}})
    assert_user_error(cli("run", config), str(config), "key 'inference.chains' = 'four'")


def test_prior_with_invalid_parameter(cli, tmp_path, contract_file):
    priors = {"beta_mu": {"dist": "Normal", "mu": 0.0, "sigma": -1.0}}
    config = _contract_config(tmp_path, contract_file, model={"priors": priors})
    message = assert_user_error(
        cli("run", config, "--out", tmp_path / "out"), "model.priors.beta_mu"
    )
    assert "parameter sigma = -1.0 must be > 0 for Normal" in message


def test_unknown_prior_name(cli, tmp_path, contract_file):
    priors = {"beta_m": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}}
    config = _contract_config(tmp_path, contract_file, model={"priors": priors})
    message = assert_user_error(
        cli("run", config, "--out", tmp_path / "out"), "Unknown prior name 'model.priors.beta_m'"
    )
    assert "Did you mean 'beta_mu'?" in message


def test_unknown_distribution(cli, tmp_path, contract_file):
    priors = {"beta_mu": {"dist": "Normall", "mu": 0.0, "sigma": 1.0}}
    config = _contract_config(tmp_path, contract_file, model={"priors": priors})
    message = assert_user_error(
        cli("run", config, "--out", tmp_path / "out"), "unknown distribution 'Normall'"
    )
    assert "Supported: Cauchy, Exponential" in message


def test_scenario_names_unknown_variable(cli, tmp_path, contract_file):
    if "scenarios" not in RunConfig.model_fields:
        pytest.skip("RunConfig has no [[scenarios]] section yet; nothing to validate")
    config = tmp_path / "config.toml"
    _contract_config(tmp_path, contract_file)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text
        + '\n[[scenarios]]\nname = "more_rail"\n[[scenarios.changes]]\n'
        + 'variable = "no_such_column"\nhow = "absolute"\nvalue = 0.1\n',
        encoding="utf-8",
    )
    assert_user_error(
        cli("run", config, "--out", tmp_path / "out"), "'more_rail'", "'no_such_column'"
    )


def test_config_file_missing_subprocess(tmp_path):
    missing = tmp_path / "nope.toml"
    result = _subprocess("run", missing)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Config file {missing} was not found" in " ".join(result.stderr.split())


def test_config_not_toml_subprocess(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[run\nname = 'x'\n", encoding="utf-8")
    result = _subprocess("run", config)
    flat = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Config file {config} is not valid TOML" in flat
    assert "(at line 1, column 5)" in flat


def test_config_not_utf8(cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes('[run]\nname = "华北"\n'.encode("gbk"))
    assert_user_error(cli("run", config), str(config), "is not UTF-8", "save it as UTF-8")


def test_debug_shows_traceback(cli, tmp_path):
    result = cli("--debug", "run", tmp_path / "nope.toml")
    assert result.exit_code == 2, result.output
    assert "Traceback" in result.output


def test_finished_run_folder(cli, tmp_path, rng):
    panel = tmp_path / "panel.csv"
    small_panel(rng).to_csv(panel, index=False)
    config = small_config(tmp_path, panel)
    out = tmp_path / "finished"
    out.mkdir()
    (out / "manifest.json").write_text("{}", encoding="utf-8")
    message = assert_user_error(cli("run", config, "--out", out), str(out), "contains a finished run")
    assert "pass --overwrite" in message
    assert (out / "manifest.json").read_text(encoding="utf-8") == "{}"


def test_out_path_is_a_file(cli, tmp_path, rng):
    panel = tmp_path / "panel.csv"
    small_panel(rng).to_csv(panel, index=False)
    config = small_config(tmp_path, panel)
    out = tmp_path / "a_file"
    out.write_text("keep me", encoding="utf-8")
    assert_user_error(cli("run", config, "--out", out), str(out), "is not a folder")
    assert out.read_text(encoding="utf-8") == "keep me"
