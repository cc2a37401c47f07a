"""Structural and numerical tests of polygvc.diagnostics.classical."""

import numpy as np
import pandas as pd
import pytest

from polygvc.diagnostics.classical import (
    TABLE_COLUMNS,
    classical_iv,
    instrumented_interactions,
)
from polygvc.errors import DataError, ModelError


def simulate(n: int = 400, seed: int = 1, n_clusters: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z1, z2, w, m = rng.normal(size=(4, n))
    u = rng.normal(size=n)
    d = 0.8 * z1 + 0.5 * z2 + 0.3 * w + 0.6 * u + rng.normal(size=n)
    y = 1.0 + 0.5 * d + 0.3 * d * m + 0.2 * m - 0.4 * w + u
    return pd.DataFrame(
        {
            "y": y,
            "d": d,
            "z1": z1,
            "z2": z2,
            "w": w,
            "m": m,
            "group": rng.integers(0, n_clusters, size=n),
        }
    )


def numpy_2sls(y: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """beta = (X'P_Z X)^{-1} X'P_Z y with P_Z = Z (Z'Z)^{-1} Z'."""
    projection = z @ np.linalg.solve(z.T @ z, z.T)
    return np.linalg.solve(x.T @ projection @ x, x.T @ projection @ y)


def test_table_columns_and_rows():
    result = classical_iv(simulate(), "y", ["d"], ["w"], ["z1", "z2"])
    assert list(result.table.columns) == TABLE_COLUMNS
    assert set(result.table["estimator"]) == {"OLS", "2SLS", "LIML"}
    assert set(result.table["cov_type"]) == {"robust", "unadjusted"}
    assert len(result.table) == 3 * 2 * 3, len(result.table)


def test_clustered_cov_type():
    result = classical_iv(simulate(), "y", ["d"], ["w"], ["z1", "z2"], cluster="group")
    assert result.cov_type == "clustered"
    assert set(result.table["cov_type"]) == {"clustered", "unadjusted"}
    fitted = result.results[("2SLS", "clustered")]
    assert fitted.cov_type == "clustered", fitted.cov_type


def test_2sls_matches_projection():
    data = simulate()
    result = classical_iv(data, "y", ["d"], ["w"], ["z1", "z2"])
    ones = np.ones(len(data))
    x = np.column_stack([ones, data["w"], data["d"]])
    z = np.column_stack([ones, data["w"], data["z1"], data["z2"]])
    expected = numpy_2sls(data["y"].to_numpy(), x, z)
    got = result.results[("2SLS", "robust")].params[["const", "w", "d"]].to_numpy()
    assert np.max(np.abs(got - expected)) < 1e-6, (got, expected)


def test_interactions_match_projection():
    data = simulate(seed=7)
    terms = instrumented_interactions(data, ["d"], ["m"], ["z1", "z2"])
    assert terms.endog == ["d", "d:m"]
    assert terms.instruments == ["z1", "z2", "z1:m", "z2:m"]
    assert "d:m" not in data.columns
    result = classical_iv(terms.data, "y", terms.endog, ["w", "m"], terms.instruments)
    frame = terms.data
    ones = np.ones(len(frame))
    x = np.column_stack([ones, frame["w"], frame["m"], frame["d"], frame["d"] * frame["m"]])
    z = np.column_stack(
        [
            ones,
            frame["w"],
            frame["m"],
            frame["z1"],
            frame["z2"],
            frame["z1"] * frame["m"],
            frame["z2"] * frame["m"],
        ]
    )
    expected = numpy_2sls(frame["y"].to_numpy(), x, z)
    got = result.results[("2SLS", "robust")].params[["const", "w", "m", "d", "d:m"]].to_numpy()
    assert np.max(np.abs(got - expected)) < 1e-6, (got, expected)


def test_interaction_name_collision():
    data = simulate().assign(**{"d:m": 0.0})
    with pytest.raises(DataError, match="'d:m'.*already has a column"):
        instrumented_interactions(data, ["d"], ["m"], ["z1"])


def test_missing_column_names_available():
    with pytest.raises(DataError, match=r"\['educ'\] given as endog.*Available columns: \['y'"):
        classical_iv(simulate(), "y", ["educ"], ["w"], ["z1"])


def test_missing_cluster_column():
    with pytest.raises(DataError, match=r"\['province'\] given as cluster"):
        classical_iv(simulate(), "y", ["d"], ["w"], ["z1"], cluster="province")


def test_nan_rows_dropped_and_counted():
    data = simulate()
    data.loc[[3, 10], "z1"] = np.nan
    data.loc[20, "y"] = np.nan
    result = classical_iv(data, "y", ["d"], ["w"], ["z1", "z2"])
    assert result.n_dropped == 3, result.n_dropped
    assert result.nobs == 397, result.nobs
    assert set(result.table["nobs"]) == {397}


def test_underidentified_raises():
    with pytest.raises(ModelError, match="underidentified: 1 excluded instrument"):
        classical_iv(simulate(), "y", ["d", "m"], ["w"], ["z1"])


def test_column_in_two_roles_raises():
    with pytest.raises(ModelError, match="'w' is given both as exog and as instruments"):
        classical_iv(simulate(), "y", ["d"], ["w"], ["w", "z1"])


def test_non_numeric_column_raises():
    data = simulate().assign(w=lambda f: f["w"].astype(str))
    with pytest.raises(DataError, match="Column 'w' has dtype"):
        classical_iv(data, "y", ["d"], ["w"], ["z1"])


def test_estimate_lookup_error_lists_choices():
    result = classical_iv(simulate(), "y", ["d"], ["w"], ["z1"])
    with pytest.raises(KeyError, match="Estimators: \\['2SLS', 'LIML', 'OLS'\\]"):
        result.estimate("GMM", "d")


def test_unadjusted_se_is_debiased():
    # Homoskedastic 2SLS SE with s^2 = e'e / (n - K), K = 3 regressors.
    data = simulate()
    result = classical_iv(data, "y", ["d"], ["w"], ["z1", "z2"])
    ones = np.ones(len(data))
    x = np.column_stack([ones, data["w"], data["d"]])
    z = np.column_stack([ones, data["w"], data["z1"], data["z2"]])
    beta = numpy_2sls(data["y"].to_numpy(), x, z)
    resid = data["y"].to_numpy() - x @ beta
    s2 = resid @ resid / (len(data) - 3)
    x_hat = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    se = np.sqrt(np.diag(s2 * np.linalg.inv(x_hat.T @ x_hat)))[2]
    got = result.estimate("2SLS", "d", "unadjusted")["std_error"]
    assert abs(got - se) < 1e-10, (got, se)
