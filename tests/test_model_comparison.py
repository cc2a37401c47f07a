"""LOO comparison of fitted models: table, Pareto-k flags and input errors.

The DataTrees here are built from known log-likelihood draws, so no model is
sampled and the expected ELPD ordering is known.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from polygvc.diagnostics.comparison import compare_models, loo_table
from polygvc.errors import DataQualityWarning, ModelError


def _tree(rng, mean: float, n_obs: int = 50, outlier: bool = False) -> xr.DataTree:
    loglik = rng.normal(mean, 0.1, size=(2, 200, n_obs))
    if outlier:
        # Ratios exp(-loglik) = exp(1 + 1.5 E), E exponential, have a Pareto
        # tail with shape k = 1.5, well above 0.7.
        loglik[..., 0] = -1.0 - 1.5 * rng.exponential(size=(2, 200))
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 200)))}),
            "log_likelihood": xr.Dataset({"outcomes": (("chain", "draw", "obs"), loglik)}),
        }
    )


def test_compare_ranks_better_model_first(rng):
    table = compare_models({"worse": _tree(rng, -1.3), "better": _tree(rng, -1.0)})
    assert list(table.index) == ["better", "worse"], table
    assert table.loc["worse", "elpd_diff"] < -10, table.loc["worse", "elpd_diff"]
    assert table.loc["better", "n_k_above_0.7"] == 0


def test_compare_columns(rng):
    table = compare_models({"a": _tree(rng, -1.0), "b": _tree(rng, -1.1)})
    for column in ("rank", "elpd", "elpd_diff", "dse", "weight", "n_obs", "good_k", "max_k",
                   "n_k_above_0.7", "n_k_above_good_k", "pareto_k_message"):
        assert column in table.columns, list(table.columns)
    assert (table["n_obs"] == 50).all()


def test_compare_flags_high_pareto_k(rng):
    with pytest.warns(DataQualityWarning, match="K-fold"):
        table = compare_models({"flagged": _tree(rng, -1.0, outlier=True), "ok": _tree(rng, -1.0)})
    assert table.loc["flagged", "n_k_above_good_k"] >= 1, table.loc["flagged", "max_k"]
    assert "moment matching" in table.loc["flagged", "pareto_k_message"]
    assert table.loc["ok", "pareto_k_message"] == ""


def test_loo_table_one_model(rng):
    table = loo_table({"only": _tree(rng, -1.0)})
    assert table.loc["only", "elpd"] == pytest.approx(-50.0, abs=2.0)


def test_compare_needs_two_models(rng):
    with pytest.raises(ModelError, match="at least two models"):
        compare_models({"only": _tree(rng, -1.0)})


def test_compare_rejects_different_rows(rng):
    with pytest.raises(ModelError, match="different numbers of rows"):
        compare_models({"a": _tree(rng, -1.0, n_obs=50), "b": _tree(rng, -1.0, n_obs=40)})


def test_compare_rejects_missing_loglik(rng):
    tree = _tree(rng, -1.0)
    bare = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset()})
    with pytest.raises(ModelError, match="no log_likelihood group"):
        compare_models({"a": tree, "b": bare})


def test_compare_rejects_nan_loglik(rng):
    tree = _tree(rng, -1.0)
    ds = tree["log_likelihood"].to_dataset()
    ds["outcomes"][0, 0, 0] = np.nan
    tree["log_likelihood"] = xr.DataTree(ds)
    with pytest.raises(ModelError, match="non-finite"):
        compare_models({"a": tree, "b": _tree(rng, -1.0)})
