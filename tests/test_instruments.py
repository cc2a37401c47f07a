"""Tests of first-stage strength statistics and Anderson-Rubin sets."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from linearmodels.iv.common import kleibergen_paap_f
from scipy import stats

from polygvc.diagnostics.classical import prepare_iv_frame
from polygvc.diagnostics.instruments import (
    NotApplicable,
    effective_f,
    first_stage_f,
    first_stage_strength,
    kleibergen_paap_rk,
    mop_simplified_critical_value,
    posterior_concentration,
)
from polygvc.diagnostics.weak_iv import (
    anderson_rubin_grid,
    anderson_rubin_set,
)
from polygvc.errors import DataError, ModelError, WeakInstrumentWarning


def simulate(
    n: int = 500,
    pi: tuple[float, ...] = (1.0,),
    beta: float = 1.0,
    direct: tuple[float, ...] | None = None,
    seed: int = 0,
    n_clusters: int = 50,
    rho: float = 0.5,
) -> pd.DataFrame:
    """y = beta x + 0.3 w + direct'z + u, x = pi'z + 0.5 w + v, corr(u, v) = rho."""
    rng = np.random.default_rng(seed)
    k = len(pi)
    z = rng.normal(size=(n, k))
    w = rng.normal(size=n)
    v = rng.normal(size=n)
    u = rho * v + math.sqrt(1 - rho**2) * rng.normal(size=n)
    x = z @ np.asarray(pi) + 0.5 * w + v
    y = beta * x + 0.3 * w + u
    if direct is not None:
        y = y + z @ np.asarray(direct)
    frame = pd.DataFrame({"y": y, "x": x, "w": w, "g": rng.integers(0, n_clusters, size=n)})
    for j in range(k):
        frame[f"z{j + 1}"] = z[:, j]
    return frame


def instruments_of(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if name.startswith("z")]


def brute_force_ar(frame: pd.DataFrame, betas: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Homoskedastic AR F statistic by full regressions of y - x b on [1, w, Z]."""
    z_cols = instruments_of(frame)
    n, k = len(frame), len(z_cols)
    restricted = np.column_stack([np.ones(n), frame["w"]])
    full = np.column_stack([restricted, frame[z_cols]])
    out = []
    for b in betas:
        e = frame["y"].to_numpy() - b * frame["x"].to_numpy()
        rss_r = np.sum((e - restricted @ np.linalg.lstsq(restricted, e, rcond=None)[0]) ** 2)
        rss_f = np.sum((e - full @ np.linalg.lstsq(full, e, rcond=None)[0]) ** 2)
        out.append(((rss_r - rss_f) / k) / (rss_f / (n - full.shape[1])))
    return np.array(out)


AR_CASES = {
    # strong first stage -> bounded interval
    "bounded": dict(pi=(1.0,), beta=1.0, seed=1),
    # weak first stage but a strong reduced form (a direct effect of z on y)
    # -> two rays around a rejected gap
    "union of two rays": dict(pi=(0.02,), beta=0.0, direct=(0.5,), seed=2),
    # instrument unrelated to both x and y -> nothing rejected
    "whole real line": dict(pi=(0.0,), beta=0.0, seed=3),
    # two strong instruments with opposite direct effects on y -> every beta rejected
    "empty": dict(pi=(1.0, 1.0), beta=1.0, direct=(1.0, -1.0), seed=4),
}


@pytest.mark.parametrize("kind", list(AR_CASES))
def test_ar_kind_analytic(kind):
    frame = simulate(**AR_CASES[kind])
    ar = anderson_rubin_set(frame, "y", "x", ["w"], instruments_of(frame))
    assert ar.kind == kind, (ar.kind, str(ar))


@pytest.mark.parametrize("kind", list(AR_CASES))
def test_ar_analytic_matches_brute_force(kind):
    frame = simulate(**AR_CASES[kind])
    z_cols = instruments_of(frame)
    ar = anderson_rubin_set(frame, "y", "x", ["w"], z_cols)
    n, k = len(frame), len(z_cols)
    critical = stats.f.ppf(0.95, k, n - k - 2)
    for point in ar.endpoints:
        value = brute_force_ar(frame, np.array([point]))[0]
        assert abs(value - critical) < 1e-6 * critical, (point, value, critical)
    betas = np.linspace(-30, 30, 1201)
    accepted = brute_force_ar(frame, betas) <= critical
    near_endpoint = np.array([any(abs(b - p) < 1e-6 for p in ar.endpoints) for b in betas])
    analytic = np.array([ar.contains(b) for b in betas])
    mismatch = (accepted != analytic) & ~near_endpoint
    assert not mismatch.any(), betas[mismatch]


@pytest.mark.parametrize("kind", list(AR_CASES))
def test_ar_grid_matches_analytic(kind):
    frame = simulate(**AR_CASES[kind])
    z_cols = instruments_of(frame)
    analytic = anderson_rubin_set(frame, "y", "x", ["w"], z_cols)
    grid = anderson_rubin_grid(frame, "y", "x", ["w"], z_cols, cov_type="unadjusted")
    assert grid.kind == analytic.kind, (str(grid), str(analytic))
    assert len(grid.endpoints) == len(analytic.endpoints), (str(grid), str(analytic))
    for got, expected in zip(grid.endpoints, analytic.endpoints, strict=True):
        assert abs(got - expected) < 1e-7 * max(1.0, abs(expected)), (got, expected)


def test_ar_set_str_two_rays():
    frame = simulate(**AR_CASES["union of two rays"])
    ar = anderson_rubin_set(frame, "y", "x", ["w"], ["z1"])
    text = str(ar)
    assert text.startswith("(-inf, "), text
    assert text.endswith(", inf)"), text
    assert " ∪ [" in text, text


def test_ar_set_str_empty_and_whole_line():
    empty = anderson_rubin_set(simulate(**AR_CASES["empty"]), "y", "x", ["w"], ["z1", "z2"])
    whole = anderson_rubin_set(simulate(**AR_CASES["whole real line"]), "y", "x", ["w"], ["z1"])
    assert str(empty) == "∅", str(empty)
    assert str(whole) == "(-inf, inf)", str(whole)


def test_ar_two_endog_raises():
    frame = simulate(pi=(1.0, 0.5)).assign(x2=lambda f: f["z1"] + f["w"])
    with pytest.raises(ModelError, match="one endogenous regressor, but the specification has 2"):
        anderson_rubin_set(frame, "y", ["x", "x2"], ["w"], ["z1", "z2"])


def test_weak_instrument_warns_with_value():
    frame = simulate(pi=(0.05,), seed=11)
    with pytest.warns(WeakInstrumentWarning) as record:
        report = first_stage_strength(frame, "y", "x", ["w"], ["z1"])
    f_robust = report.first_stage.loc["x", "f_robust"]
    assert f_robust < 5, f_robust
    message = str(record[0].message)
    assert f"first-stage F (robust) for 'x' = {f_robust:.3f}" in message, message
    assert "effective F (Montiel Olea-Pflueger)" in message, message
    assert "Anderson-Rubin" in message, message


def test_weak_ar_set_much_wider_than_strong():
    with pytest.warns(WeakInstrumentWarning, match="first-stage F"):
        weak = first_stage_strength(simulate(pi=(0.05,), seed=11), "y", "x", ["w"], ["z1"])
    strong = first_stage_strength(simulate(pi=(1.0,), seed=11), "y", "x", ["w"], ["z1"])
    for weak_set, strong_set in (
        (weak.ar_set, strong.ar_set),
        (weak.ar_set_robust, strong.ar_set_robust),
    ):
        assert strong_set.is_bounded, str(strong_set)
        wide = (not weak_set.is_bounded) or weak_set.length > 10 * strong_set.length
        assert wide, (str(weak_set), str(strong_set))


def test_kp_cluster_one_instrument_hand_formula():
    frame = simulate(n=400, pi=(0.4,), seed=5, n_clusters=40)
    arrays = prepare_iv_frame(frame, "y", "x", ["w"], ["z1"], cluster="g").partialled()
    z, x = arrays.z[:, 0], arrays.x[:, 0]
    n, c, k = len(z), 2, 1
    pi_hat = (z @ x) / (z @ z)
    v = x - z * pi_hat
    sums = pd.Series(z * v).groupby(frame["g"].to_numpy()).sum().to_numpy()
    groups = len(sums)
    cr0 = np.sum(sums**2) / (z @ z) ** 2
    rk_wald = pi_hat**2 / cr0  # KP rk Wald with m = k = 1 is the CR0 Wald statistic
    cr1 = cr0 * groups / (groups - 1) * (n - 1) / (n - k - c)
    f_cr1 = pi_hat**2 / cr1
    kp = kleibergen_paap_rk(arrays, "clustered")
    assert abs(kp.rk_wald - rk_wald) < 1e-9 * rk_wald, (kp.rk_wald, rk_wald)
    # Stata ivreg2 scaling: F = rk_wald (n-k-c)(G-1) / ((n-1) G k) = CR1 Wald F.
    assert abs(kp.wald_f - f_cr1) < 1e-9 * f_cr1, (kp.wald_f, f_cr1)
    robust_f = first_stage_f(arrays, "clustered").loc["x", "f_robust"]
    assert abs(robust_f - f_cr1) < 1e-9 * f_cr1, (robust_f, f_cr1)


def test_kp_cluster_matches_linearmodels():
    frame = simulate(n=400, pi=(0.4, 0.2), seed=6, n_clusters=40)
    prepared = prepare_iv_frame(frame, "y", "x", ["w"], ["z1", "z2"], cluster="g")
    data = prepared.data
    expected = kleibergen_paap_f(
        data[["x"]].to_numpy(),
        data[["z1", "z2"]].to_numpy(),
        data[["const", "w"]].to_numpy(),
        "clustered",
        {"clusters": prepared.clusters},
    )
    kp = kleibergen_paap_rk(prepared.partialled(), "clustered")
    assert abs(kp.wald_f - expected) < 1e-8 * expected, (kp.wald_f, expected)


def test_effective_f_equals_robust_f_one_instrument():
    frame = simulate(pi=(0.5,), seed=8)
    arrays = prepare_iv_frame(frame, "y", "x", ["w"], ["z1"]).partialled()
    eff = effective_f(arrays)
    f_rob = first_stage_f(arrays).loc["x", "f_robust"]
    assert abs(eff.value - f_rob) < 1e-9 * f_rob, (eff.value, f_rob)
    assert abs(eff.k_eff - 1.0) < 1e-12, eff.k_eff


def test_effective_f_between_bounds_two_instruments():
    # F_eff = pi'Q pi / tr(V Q) lies between the smallest and largest
    # eigen-direction Wald ratios; check against the homoskedastic limit.
    frame = simulate(pi=(0.5, 0.3), seed=9)
    arrays = prepare_iv_frame(frame, "y", "x", ["w"], ["z1", "z2"]).partialled()
    eff = effective_f(arrays)
    f_conv = first_stage_f(arrays).loc["x", "f_conventional"]
    assert abs(eff.value / f_conv - 1) < 0.15, (eff.value, f_conv)
    assert 1.0 <= eff.k_eff <= 2.0, eff.k_eff


def test_mop_critical_value_rule_of_thumb():
    # Montiel Olea-Pflueger simplified TSLS critical value, tau = 10 %, alpha = 5 %,
    # K_eff = 1: 23.1 (quoted as the robust rule of thumb).
    value = mop_simplified_critical_value(1.0, 0.10, 0.05)
    assert abs(value - 23.1) < 0.05, value


def test_effective_f_not_applicable_two_endog():
    frame = simulate(pi=(1.0, 0.5), seed=10).assign(x2=lambda f: f["z2"] + f["w"])
    arrays = prepare_iv_frame(frame, "y", ["x", "x2"], ["w"], ["z1", "z2"]).partialled()
    result = effective_f(arrays)
    assert isinstance(result, NotApplicable)
    assert "2 (x, x2)" in result.reason, result.reason


def test_report_two_endog_marks_ar_not_applicable():
    frame = simulate(pi=(1.0, 0.5), seed=10).assign(x2=lambda f: f["z2"] + f["w"])
    report = first_stage_strength(frame, "y", ["x", "x2"], ["w"], ["z1", "z2"])
    assert isinstance(report.ar_set, NotApplicable)
    assert "not applicable" in str(report), str(report)


def test_posterior_concentration_numpy_and_xarray():
    rng = np.random.default_rng(12)
    z = rng.normal(size=(100, 2))
    coefs = rng.normal(size=(2, 5, 2))
    sigma = rng.uniform(0.5, 2.0, size=(2, 5))
    gram = z.T @ z
    expected = np.einsum("cdi,ij,cdj->cd", coefs, gram, coefs) / sigma**2
    got = posterior_concentration(coefs, z, sigma)
    assert np.allclose(got, expected, rtol=1e-12), (got, expected)
    coefs_da = xr.DataArray(coefs, dims=("chain", "draw", "instrument"))
    sigma_da = xr.DataArray(sigma, dims=("chain", "draw"))
    got_da = posterior_concentration(coefs_da, z, sigma_da)
    assert got_da.dims == ("chain", "draw"), got_da.dims
    assert got_da.name == "concentration"
    assert np.allclose(got_da.values, expected, rtol=1e-12)


def test_posterior_concentration_partials_exog():
    rng = np.random.default_rng(13)
    w = np.column_stack([np.ones(50), rng.normal(size=50)])
    z = rng.normal(size=(50, 1)) + 3.0
    resid = z - w @ np.linalg.lstsq(w, z, rcond=None)[0]
    got = posterior_concentration(np.array([0.7]), z, 1.5, exog=w)
    expected = 0.49 * float(resid[:, 0] @ resid[:, 0]) / 2.25
    assert abs(float(got) - expected) < 1e-10, (got, expected)


def test_posterior_concentration_mismatch_raises():
    with pytest.raises(DataError, match="3 instrument coefficient\\(s\\) but Z has 2"):
        posterior_concentration(np.ones(3), np.ones((10, 2)), 1.0)


def test_clustered_ar_grid_bounded_and_grid_independent():
    frame = simulate(n=600, pi=(0.8,), beta=1.0, seed=14, n_clusters=60)
    default = anderson_rubin_grid(frame, "y", "x", ["w"], ["z1"], cluster="g")
    narrow = anderson_rubin_grid(
        frame, "y", "x", ["w"], ["z1"], cluster="g", grid=np.linspace(0.9, 1.1, 5)
    )
    assert default.cov_type == "clustered"
    assert default.kind == "bounded", str(default)
    assert default.contains(1.0), str(default)
    for got, expected in zip(narrow.endpoints, default.endpoints, strict=True):
        assert abs(got - expected) < 1e-8, (got, expected)


def test_robust_ar_grid_two_rays_when_weak():
    frame = simulate(**AR_CASES["union of two rays"])
    robust = anderson_rubin_grid(frame, "y", "x", ["w"], ["z1"])
    assert robust.kind == "union of two rays", str(robust)


def test_weak_instrument_posterior_wider_than_strong():
    import pymc as pm

    from polygvc.models.linear_iv import build_linear_iv, prepare_linear_iv_data

    widths = {}
    for label, pi in (("weak", 0.05), ("strong", 1.0)):
        frame = simulate(pi=(pi,), seed=11)
        data = prepare_linear_iv_data(frame, "y", "x", ["z1"], ["w"], source=f"{label} design")
        dt = pm.sample(
            model=build_linear_iv(data, likelihood="suffstat"),
            nuts_sampler="nutpie",
            draws=500,
            tune=500,
            chains=2,
            random_seed=11,
            progressbar=False,
        )
        low, high = np.quantile(dt["posterior"]["effect"].values, [0.05, 0.95])
        widths[label] = high - low
    # Same data-generating process and seed as the AR test above: robust F
    # below 5 for the weak design.
    print(f"\n90% interval widths: {widths}")
    assert widths["weak"] > 5 * widths["strong"], widths
