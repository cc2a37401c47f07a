"""Power-scaling prior sensitivity: the diagnosis rule and a fit with a known conflict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from polygvc.diagnostics.sensitivity import diagnose_sensitivity, prior_sensitivity
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
        model=model, nuts_sampler="nutpie", draws=500, tune=500, chains=2,
        random_seed=11, progressbar=False,
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


def test_weak_prior_not_flagged(rng):
    dt, model = _fit(rng, None)
    table = prior_sensitivity(dt, model, var_names=["beta", "sigma"])
    assert table.loc["beta[x]", "diagnosis"] == "no concern", table.to_string()


def test_missing_log_prior_needs_model(rng):
    dt, _ = _fit(rng, None)
    with pytest.raises(DataError, match="no log_prior group and no model"):
        prior_sensitivity(dt, None)
