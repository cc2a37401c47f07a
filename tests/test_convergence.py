"""Structural and numerical tests of convergence verdicts and PPC summaries."""

from __future__ import annotations

import arviz_base
import numpy as np
import pytest
from fake_results import make_fake_datatree

from polygvc.diagnostics.convergence import (
    ConvergenceThresholds,
    convergence_summary,
    convergence_verdict,
    divergence_report,
    warn_if_needed,
)
from polygvc.diagnostics.ppc import loo_pit_check, posterior_predictive_summary
from polygvc.errors import ConvergenceWarning, DataError


@pytest.fixture(scope="module")
def good_tree():
    # Independent draws: 4 chains x 1000 draws keep every R-hat below 1.01
    # and every ESS above 400.
    return make_fake_datatree(chains=4, draws=1000, seed=11)


def replace_values(tree, group, name, values):
    """Set new values of one variable in place, keeping its dims and coords."""
    dataset = tree[group].to_dataset()
    dataset[name] = dataset[name].copy(data=values)
    tree[group] = dataset


def shifted(tree, name, shift):
    """Return a copy of ``tree`` with chain 1 of ``name`` moved by ``shift``."""
    copy = tree.copy(deep=True)
    values = copy["posterior"][name].values.copy()
    values[1] += shift
    replace_values(copy, "posterior", name, values)
    return copy


def test_verdict_good_chains_pass(good_tree):
    verdict = convergence_verdict(good_tree)
    assert verdict.overall == "pass", verdict.table[["value", "verdict"]].to_string()


def test_verdict_rows_state_thresholds(good_tree):
    table = convergence_verdict(good_tree).table
    expected = [
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "divergences",
        "min_ebfmi",
        "treedepth_saturation",
    ]
    assert list(table.index) == expected
    assert table.loc["max_rhat", "threshold"] == "pass ≤ 1.01, warn ≤ 1.05, else fail"
    assert "pass ≥ 400 (100 per chain × 4)" in table.loc["min_ess_bulk", "threshold"]


def test_shifted_chain_fails_rhat(good_tree):
    # A shift of 1 posterior sd (0.1) in one of four chains gives R-hat 1.097.
    tree = shifted(good_tree, "beta_mu", 0.1)
    verdict = convergence_verdict(tree, var_names=["beta_mu"])
    rhat = verdict.table.loc["max_rhat", "value"]
    assert verdict.table.loc["max_rhat", "verdict"] == "fail", f"R-hat {rhat}"
    assert verdict.overall == "fail"


def test_small_shift_warns_rhat(good_tree):
    # A shift of 0.5 sd (0.05) in one of four chains gives R-hat 1.024 with seed 11.
    tree = shifted(good_tree, "beta_mu", 0.05)
    verdict = convergence_verdict(tree, var_names=["beta_mu"])
    rhat = verdict.table.loc["max_rhat", "value"]
    assert 1.01 < rhat <= 1.05, f"R-hat {rhat}"
    assert verdict.table.loc["max_rhat", "verdict"] == "warn"


def test_rhat_threshold_is_configurable(good_tree):
    tree = shifted(good_tree, "beta_mu", 0.05)
    loose = ConvergenceThresholds(rhat_pass=1.06, rhat_warn=1.1)
    verdict = convergence_verdict(tree, var_names=["beta_mu"], thresholds=loose)
    assert verdict.table.loc["max_rhat", "verdict"] == "pass"


def test_ess_low_for_autocorrelated_chain():
    tree = make_fake_datatree(chains=4, draws=1000, seed=3)
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(0, 0.01, size=(4, 1000)), axis=1)
    replace_values(tree, "posterior", "rho", walk)
    table = convergence_verdict(tree, var_names=["rho"]).table
    ess = table.loc["min_ess_bulk", "value"]
    assert table.loc["min_ess_bulk", "verdict"] == "fail", f"ESS {ess}"


@pytest.mark.parametrize(
    ("n_divergent", "expected"),
    [(0, "pass"), (2, "warn"), (3, "fail")],
)
def test_divergence_verdict(n_divergent, expected):
    # 2 chains x 1000 draws: 2 divergences = 0.1 % (warn), 3 = 0.15 % (fail).
    tree = make_fake_datatree(chains=2, draws=1000, n_divergent=n_divergent)
    row = convergence_verdict(tree).table.loc["divergences"]
    assert row["value"] == n_divergent
    assert row["verdict"] == expected, row.to_string()


def test_divergence_report_locates_funnel():
    tree = make_fake_datatree(chains=2, draws=500, n_divergent=5)
    report = divergence_report(tree)
    assert report.n_divergent == 5
    assert report.per_chain.tolist() == [5, 0]
    share = report.funnel.loc["beta_province_sd", "share_in_lowest_decile"]
    assert share == 1.0, f"share {share}"


def test_divergence_report_missing_stats():
    tree = make_fake_datatree()
    del tree["sample_stats"]
    assert divergence_report(tree) is None
    table = convergence_verdict(tree).table
    assert table.loc["divergences", "verdict"] == "n/a"
    assert "diverging" in table.loc["divergences", "detail"]


def test_nutpie_names_for_tree_depth():
    tree = make_fake_datatree(chains=2, draws=100)
    stats = tree["sample_stats"].to_dataset()
    stats = stats.rename({"tree_depth": "depth"}).drop_vars("reached_max_treedepth")
    flags = np.zeros((2, 100), dtype=bool)
    flags[0, :20] = True
    stats["maxdepth_reached"] = (("chain", "draw"), flags)
    tree["sample_stats"] = stats
    row = convergence_verdict(tree).table.loc["treedepth_saturation"]
    assert row["value"] == pytest.approx(0.1)
    assert row["verdict"] == "warn"


def test_warn_if_needed_names_check_and_fix():
    tree = make_fake_datatree(chains=2, draws=500, n_divergent=5)
    verdict = convergence_verdict(tree, var_names=["beta_mu"])
    with pytest.warns(ConvergenceWarning, match=r"Divergent transitions = 5 .*target_accept"):
        flagged = warn_if_needed(verdict)
    assert "divergences" in flagged


def test_warn_if_needed_silent_on_pass(good_tree):
    assert warn_if_needed(convergence_verdict(good_tree)) == []


def test_summary_ci_prob_follows_rcparams():
    tree = make_fake_datatree()
    with arviz_base.rc_context({"stats.ci_prob": 0.5}):
        narrow = convergence_summary(tree, ["beta_mu"])
    with arviz_base.rc_context({"stats.ci_prob": 0.95}):
        wide = convergence_summary(tree, ["beta_mu"])
    narrow_width = narrow.loc["beta_mu", "ci_ub"] - narrow.loc["beta_mu", "ci_lb"]
    wide_width = wide.loc["beta_mu", "ci_ub"] - wide.loc["beta_mu", "ci_lb"]
    assert narrow.attrs["ci_prob"] == 0.5
    assert wide.attrs["ci_prob"] == 0.95
    assert narrow_width < wide_width, f"{narrow_width} vs {wide_width}"


def test_summary_columns_and_rows():
    tree = make_fake_datatree(n_provinces=6)
    frame = convergence_summary(tree, ["effect_province"])
    assert list(frame.columns) == [
        "mean",
        "sd",
        "ci_lb",
        "ci_ub",
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "mcse_mean",
        "mcse_sd",
    ]
    assert len(frame) == 6


def test_unknown_var_name_raises():
    tree = make_fake_datatree()
    with pytest.raises(DataError, match=r"Unknown variable\(s\) \['beta_nope'\].*Valid names"):
        convergence_verdict(tree, var_names=["beta_nope"])


def test_missing_posterior_raises():
    tree = make_fake_datatree()
    del tree["posterior"]
    with pytest.raises(DataError, match="no 'posterior' group"):
        convergence_summary(tree)


def test_verdict_does_not_modify_tree():
    tree = make_fake_datatree(n_divergent=2)
    before = tree.copy(deep=True)
    convergence_verdict(tree)
    convergence_summary(tree)
    posterior_predictive_summary(tree)
    loo_pit_check(tree)
    assert tree.identical(before)


def test_ppc_summary_per_equation():
    tree = make_fake_datatree()
    frame = posterior_predictive_summary(tree)
    assert list(frame.index) == ["first_stage", "outcome"]
    observed = tree["observed_data"]["outcomes"].sel(equation="outcome")
    assert frame.loc["outcome", "observed_mean"] == pytest.approx(float(observed.mean()))
    assert 0.0 <= frame.loc["outcome", "p_sd"] <= 1.0


def test_ppc_p_value_detects_misfit():
    tree = make_fake_datatree()
    values = tree["observed_data"]["outcomes"].values.copy()
    values[:, 1] *= 5.0  # observed outcome sd far above the predictive sd
    replace_values(tree, "observed_data", "outcomes", values)
    frame = posterior_predictive_summary(tree)
    assert frame.loc["outcome", "p_sd"] == 0.0
    assert frame.loc["first_stage", "p_sd"] > 0.0


def test_loo_pit_applies_with_joint_likelihood():
    result = loo_pit_check(make_fake_datatree())
    assert result.applicable, result.reason
    assert result.values.dims == ("obs", "equation")
    assert float(result.values.min()) >= 0.0
    assert float(result.values.max()) <= 1.0


def test_loo_pit_not_applicable_without_log_likelihood():
    tree = make_fake_datatree()
    del tree["log_likelihood"]
    result = loo_pit_check(tree)
    assert not result.applicable
    assert "log_likelihood" in result.reason
