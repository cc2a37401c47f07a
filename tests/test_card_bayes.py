"""Bayesian joint IV model against 2SLS on Card (1995).

Reference: Card (1995) college-proximity data as distributed with Wooldridge,
Introductory Econometrics, Example 15.4: log(wage) on educ, exper, expersq,
black, smsa, south, smsa66, reg662-reg669, educ instrumented by nearc4. 2SLS
(linearmodels 7.1, homoskedastic, Stata-style small-sample dof) gives
educ = 0.13150 (SE 0.05496), N = 3010.

Tolerances with weak priors (Normal sd 10 on the standardised scale, LKJ
eta = 1): posterior mean within 0.1 SE of 2SLS, posterior sd within 15% of the
2SLS SE, and the half-width of the central 68.3% interval within 15% too.

With a first-stage t of 3.6 the exact posterior has heavier tails than the
normal approximation behind the 2SLS SE: the sd is about 12% above the SE
(1.124 and 1.115 in two runs of 4 x 10,000 draws) while the 68.3% half-width
is within 1% of it. The sd of a heavy-tailed posterior is a noisy estimate:
at 4 x 1,000 draws single runs gave 11-21% above the SE. The slow test
therefore samples the sufficient-statistic form of the same likelihood for
4 x 40,000 draws and requires the Monte Carlo standard error of the sd to be
below 2% of the SE, so that the 15% check has resolving power.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest

from polygvc.models.linear_iv import (
    LINEAR_IV_PRIORS,
    bivariate_normal,
    build_linear_iv,
    prepare_linear_iv_data,
)

TSLS_EDUC = 0.13150
TSLS_SE = 0.05496
EXOG = ["exper", "expersq", "black", "smsa", "south", "smsa66"] + [
    f"reg66{k}" for k in range(2, 10)
]
WEAK_PRIORS = {
    **{
        name: {"dist": "Normal", "mu": 0.0, "sigma": 10.0}
        for name in LINEAR_IV_PRIORS
        if name != "sigma"
    },
    "sigma": {"dist": "HalfNormal", "sigma": 10.0},
}
CARD_DRAWS = 40_000


@pytest.fixture(scope="module")
def card(data_mirror) -> pd.DataFrame:  # noqa: ARG001 (skips without the mirror)
    from polygvc.data_prep.registry import fetch

    return pd.read_csv(fetch("reference/card1995", "card.csv.bz2"))


def test_bivariate_normal_matches_mvnormal(rng):
    mu = rng.normal(size=(6, 2))
    value = rng.normal(size=(6, 2))
    chol = np.array([[0.7, 0.0], [0.4, 1.3]])
    with pm.Model():
        variable = bivariate_normal("v", mu=pt.as_tensor(mu), chol=pt.as_tensor(chol))
    mine = pm.logp(variable, value).eval()
    reference = pm.logp(pm.MvNormal.dist(mu=mu, chol=chol), value).eval()
    np.testing.assert_allclose(mine, reference, rtol=1e-10)


def test_linear_iv_graph_names(card):
    data = prepare_linear_iv_data(card, "lwage", "educ", ["nearc4"], EXOG, source="card.csv")
    model = build_linear_iv(data)
    free = {rv.name for rv in model.free_RVs}
    expected = {
        "fs_intercept", "fs_instrument", "fs_covariate", "intercept", "beta", "gamma",
        "error_chol",
    }
    assert free == expected
    assert model.named_vars_to_dims["outcomes"] == ("obs", "equation")
    assert data.n_obs == 3010, f"{data.n_obs} rows, expected 3010"


def test_linear_iv_suffstat_logp_matches_rows(card, rng):
    data = prepare_linear_iv_data(card, "lwage", "educ", ["nearc4"], EXOG, source="card.csv")
    rows = build_linear_iv(data, priors=WEAK_PRIORS, lkj_eta=1.0)
    gram = build_linear_iv(data, priors=WEAK_PRIORS, lkj_eta=1.0, likelihood="suffstat")
    assert {rv.name for rv in rows.free_RVs} == {rv.name for rv in gram.free_RVs}
    assert gram.named_vars_to_dims["gram"] == ("gram_row", "gram_col")
    start = rows.initial_point()
    for trial in range(3):
        point = {
            name: value + rng.normal(scale=0.2, size=np.shape(value))
            for name, value in start.items()
        }
        by_rows = rows.compile_logp()(point)
        by_gram = gram.compile_logp()(point)
        np.testing.assert_allclose(by_gram, by_rows, rtol=1e-10, err_msg=f"trial {trial}")


def test_linear_iv_unknown_likelihood(card):
    from polygvc.errors import ModelError

    data = prepare_linear_iv_data(card, "lwage", "educ", ["nearc4"], EXOG, source="card.csv")
    with pytest.raises(ModelError, match="likelihood = 'gram' is not known; use one of observed"):
        build_linear_iv(data, likelihood="gram")


def test_linear_iv_unknown_prior():
    from polygvc.errors import ConfigError
    from polygvc.models.linear_iv import resolve_linear_iv_priors

    with pytest.raises(ConfigError, match="Unknown linear IV prior name 'betta'.*'beta'"):
        resolve_linear_iv_priors({"betta": {"dist": "Normal", "mu": 0, "sigma": 1}})


@pytest.mark.slow
def test_card_posterior_matches_2sls(card):
    data = prepare_linear_iv_data(card, "lwage", "educ", ["nearc4"], EXOG, source="card.csv")
    model = build_linear_iv(data, priors=WEAK_PRIORS, lkj_eta=1.0, likelihood="suffstat")
    dt = pm.sample(
        model=model,
        nuts_sampler="nutpie",
        draws=CARD_DRAWS,
        tune=1000,
        chains=4,
        random_seed=20261204,
        progressbar=False,
    )
    mcse_sd = float(azs.mcse(dt, var_names=["effect"], method="sd")["effect"])
    assert mcse_sd <= 0.02 * TSLS_SE, f"MCSE of the posterior sd {mcse_sd:.5f} is too large"
    effect = dt["posterior"]["effect"].values.reshape(-1)
    mean = float(effect.mean())
    sd = float(effect.std())
    low, high = np.quantile(effect, [0.5 - 0.6827 / 2, 0.5 + 0.6827 / 2])
    half_width = float(high - low) / 2
    assert abs(mean - TSLS_EDUC) <= 0.1 * TSLS_SE, (
        f"posterior mean {mean:.4f} vs 2SLS {TSLS_EDUC} (allowed {0.1 * TSLS_SE:.4f})"
    )
    assert abs(half_width / TSLS_SE - 1) <= 0.15, (
        f"68.3% half-width {half_width:.4f} vs 2SLS SE {TSLS_SE}"
    )
    assert abs(sd / TSLS_SE - 1) <= 0.15, (
        f"posterior sd {sd:.4f} (MCSE {mcse_sd:.5f}) vs 2SLS SE {TSLS_SE}"
    )
