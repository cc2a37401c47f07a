"""Numerical tier: Card (1995) college-proximity IV, Wooldridge Example 15.4.

Reference values (SOURCE.txt of the mirror folder reference/card1995): published
2SLS educ = .132 (.055), OLS educ = .075 (.003), first stage nearc4 = .320 (.088)
(Wooldridge, Introductory Econometrics, Example 15.4 = Card 1995 Table 3);
reproduced with linearmodels 7.1 as 0.13150 (0.05496), OLS 0.0747 (0.0035),
first stage 0.3199 (0.0879), t = 3.64. Tolerances: 5e-4 on estimates and SEs.
"""

import os

import numpy as np
import pandas as pd
import pytest
from linearmodels.iv.common import kleibergen_paap_f

from polygvc.diagnostics.classical import classical_iv, prepare_iv_frame
from polygvc.diagnostics.instruments import first_stage_strength
from polygvc.diagnostics.weak_iv import anderson_rubin_set

pytestmark = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the Card (1995) mirror file cannot be read",
)

EXOG = ["exper", "expersq", "black", "smsa", "south", "smsa66"] + [
    f"reg66{i}" for i in range(2, 10)
]
TOL = 5e-4


@pytest.fixture(scope="module")
def card() -> pd.DataFrame:
    from polygvc.data_prep import registry

    frame = pd.read_csv(registry.fetch("reference/card1995", "card.csv.bz2"))
    return frame.assign(log_wage=np.log(frame["wage"]))


@pytest.fixture(scope="module")
def card_iv(card):
    return classical_iv(card, "log_wage", ["educ"], EXOG, ["nearc4"])


def test_card_sample_size(card_iv):
    assert card_iv.nobs == 3010, card_iv.nobs
    assert card_iv.n_dropped == 0, card_iv.n_dropped


def test_card_2sls_estimate(card_iv):
    row = card_iv.estimate("2SLS", "educ", "unadjusted")
    assert abs(row["estimate"] - 0.1315) < TOL, row["estimate"]
    assert abs(row["std_error"] - 0.0550) < TOL, row["std_error"]


def test_card_ols_estimate(card_iv):
    row = card_iv.estimate("OLS", "educ", "unadjusted")
    assert abs(row["estimate"] - 0.0747) < TOL, row["estimate"]
    assert abs(row["std_error"] - 0.0035) < TOL, row["std_error"]


def test_card_liml_equals_2sls(card_iv):
    # Just identified: LIML kappa = 1, so LIML and 2SLS coincide.
    liml = card_iv.estimate("LIML", "educ")["estimate"]
    tsls = card_iv.estimate("2SLS", "educ")["estimate"]
    assert abs(liml - tsls) < 1e-10, (liml, tsls)


def test_card_first_stage(card_iv):
    first = card_iv.results[("2SLS", "unadjusted")].first_stage.individual["educ"]
    assert abs(first.params["nearc4"] - 0.320) < TOL, first.params["nearc4"]
    assert abs(first.std_errors["nearc4"] - 0.088) < TOL, first.std_errors["nearc4"]


def test_card_first_stage_f_is_t_squared(card, card_iv):
    report = first_stage_strength(card, "log_wage", ["educ"], EXOG, ["nearc4"])
    first = card_iv.results[("2SLS", "unadjusted")].first_stage.individual["educ"]
    t_squared = float(first.tstats["nearc4"]) ** 2
    f_conv = report.first_stage.loc["educ", "f_conventional"]
    assert abs(f_conv - t_squared) < 1e-8, (f_conv, t_squared)
    assert abs(f_conv - 13.3) < 0.1, f_conv


def test_card_robust_statistics_agree(card, card_iv):
    report = first_stage_strength(card, "log_wage", ["educ"], EXOG, ["nearc4"])
    f_rob = report.first_stage.loc["educ", "f_robust"]
    lm_first = card_iv.results[("2SLS", "robust")].first_stage
    assert abs(report.effective_f.value - f_rob) < 1e-8, (report.effective_f.value, f_rob)
    assert abs(report.kleibergen_paap.wald_f - f_rob) < 1e-8, (report.kleibergen_paap.wald_f, f_rob)
    assert abs(lm_first.kleibergen_paap_f - f_rob) < 1e-8, (lm_first.kleibergen_paap_f, f_rob)
    # linearmodels reports the HC1 Wald statistic (not divided by k = 1) as f.stat.
    lm_wald = float(lm_first.diagnostics.loc["educ", "f.stat"])
    assert abs(lm_wald - f_rob) < 1e-8, (lm_wald, f_rob)
    assert not report.weak, report.weak_messages


def test_card_kp_lm_matches_linearmodels(card, card_iv):
    report = first_stage_strength(card, "log_wage", ["educ"], EXOG, ["nearc4"])
    lm_stat = float(card_iv.results[("2SLS", "robust")].first_stage.kleibergen_paap.stat)
    assert abs(report.kleibergen_paap.rk_lm - lm_stat) < 1e-8, (
        report.kleibergen_paap.rk_lm,
        lm_stat,
    )


def test_card_ar_set_bounded(card):
    ar = anderson_rubin_set(card, "log_wage", "educ", EXOG, "nearc4")
    assert ar.kind == "bounded", str(ar)
    assert ar.contains(0.1315), str(ar)
    assert not ar.contains(0.0), str(ar)


def test_card_two_endog_kp_matches_linearmodels(card):
    spec = ("log_wage", ["educ", "south"], EXOG[:4] + ["smsa66"], ["nearc4", "nearc2", "south66"])
    frame = prepare_iv_frame(card, *spec)
    data = frame.data
    expected = kleibergen_paap_f(
        data[frame.endog].to_numpy(),
        data[frame.instruments].to_numpy(),
        data[frame.exog].to_numpy(),
        "robust",
    )
    report = first_stage_strength(card, *spec)
    assert abs(report.kleibergen_paap.wald_f - expected) < 1e-8, (
        report.kleibergen_paap.wald_f,
        expected,
    )
    assert not report.effective_f, str(report.effective_f)
    assert "one endogenous regressor" in report.effective_f.reason
