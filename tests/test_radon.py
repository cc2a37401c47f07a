"""Varying-intercept model against Gelman and Hill's Minnesota radon results.

Reference (Gelman and Hill 2007, ch. 12, lmer output, p. 258): for
``log radon ~ floor + (1 | county)`` on 919 Minnesota houses in 85 counties,
intercept 1.46 (se 0.05), floor -0.69 (se 0.07), county sd 0.33, residual sd
0.76. The outcome is ``log(activity)`` with a zero activity replaced by 0.1,
as in the book's R code ``log(ifelse(radon == 0, .1, radon))``.

Tolerance: each published value lies inside the 94% equal-tailed posterior
interval and within two posterior sds of the posterior mean (weak default
priors, so the posterior should sit on the REML estimate up to Monte Carlo and
prior effects).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from polygvc.models.varying_intercept import (
    build_varying_intercept,
    prepare_varying_intercept_data,
)

PUBLISHED = {
    "intercept": 1.46,
    "beta": -0.69,
    "intercept_county_sd": 0.33,
    "sigma": 0.76,
}


def load_radon_mn() -> pd.DataFrame:
    """Return the Minnesota rows of srrs2.dat with ``log_radon``, ``floor`` and ``county``."""
    from polygvc.data_prep.registry import fetch

    path = fetch("reference/radon_gelman_hill", "srrs2.dat")
    frame = pd.read_csv(path, skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    mn = frame[frame["state"].str.strip() == "MN"].copy()
    activity = mn["activity"].astype(float)
    mn["log_radon"] = np.log(np.where(activity == 0, 0.1, activity))
    mn["floor"] = mn["floor"].astype(float)
    mn["county"] = mn["county"].str.strip()
    return mn.reset_index(drop=True)


@pytest.fixture(scope="module")
def radon(data_mirror) -> pd.DataFrame:  # noqa: ARG001 (skips without the mirror)
    return load_radon_mn()


def test_radon_subset_shape(radon):
    assert len(radon) == 919, f"{len(radon)} Minnesota rows, expected 919"
    assert radon["county"].nunique() == 85, f"{radon['county'].nunique()} counties, expected 85"


def test_radon_counties_in_cty(radon):
    from polygvc.data_prep.registry import fetch

    # cty.dat spells names without spaces (BIGSTONE), so match on county FIPS codes.
    cty = pd.read_csv(fetch("reference/radon_gelman_hill", "cty.dat"))
    mn_fips = set(cty.loc[cty["st"] == "MN", "ctfips"].astype(int))
    missing = sorted(set(radon["cntyfips"].astype(int)) - mn_fips)
    assert not missing, f"county FIPS codes absent from cty.dat: {missing}"


def test_varying_intercept_graph_names(radon):
    data = prepare_varying_intercept_data(
        radon, "log_radon", ["floor"], "county", group_dim="county"
    )
    model = build_varying_intercept(data)
    free = {rv.name for rv in model.free_RVs}
    assert free == {"intercept", "intercept_county_sd", "intercept_county_offset", "beta", "sigma"}
    assert "intercept_county" in model.named_vars
    assert model.named_vars_to_dims["intercept_county_offset"] == ("county",)


def test_radon_matches_gelman_hill(radon):
    data = prepare_varying_intercept_data(
        radon, "log_radon", ["floor"], "county", group_dim="county"
    )
    model = build_varying_intercept(data)
    dt = pm.sample(
        model=model,
        nuts_sampler="nutpie",
        draws=1000,
        tune=1000,
        chains=4,
        random_seed=20261204,
        progressbar=False,
    )
    post = dt["posterior"]
    assert int(dt["sample_stats"]["diverging"].sum()) == 0, "divergent transitions"
    for name, published in PUBLISHED.items():
        draws = post[name].values.reshape(-1)
        mean, sd = float(draws.mean()), float(draws.std())
        low, high = np.quantile(draws, [0.03, 0.97])
        assert low <= published <= high, (
            f"{name}: published {published} outside 94% interval [{low:.3f}, {high:.3f}]"
        )
        assert abs(mean - published) <= 2 * sd, (
            f"{name}: posterior mean {mean:.3f} (sd {sd:.3f}) is more than 2 sd from {published}"
        )
