"""Hansen (1999) panel threshold reference: least-squares search and Bayesian fits.

Data: Hansen's firm investment panel (565 firms x 14 years, Stata xthreg's
hansen1999.dta) read through the data registry. Model: investment ``i`` on
lagged cash flow ``c1`` with a regime-dependent slope, threshold variable
lagged debt/assets ``d1``, controls ``q1, q2, q3, d1, qd1``, firm fixed effects.

Reference values. Thresholds 0.0157 (single) and 0.0157 / 0.5362 (double) are
Hansen's (1999) published estimates. Slopes and SSRs are not published in a
form we could check, so they come from an independent reproduction of
Hansen's algorithm recorded with the data mirror: single 0.0589 / 0.0904,
SSR 16.5178; double 0.0632 / 0.0977 / 0.0392, SSR 16.4600; White standard
errors 0.0138 / 0.0116 and 0.0135 / 0.0103 / 0.0311.

Grid used everywhere: Hansen's, 393 quantiles (1%, 1.25%, ..., 99%) of the
sorted unique values of d1 (``threshold_grid(..., 393, 0.01, "hansen_unique")``).
Hansen's algorithm is this grid with the regime rule d1 < gamma, the within
transform followed by deleting each firm's last period, and the sequential
double search with refinement.
"""

import os
import time

import numpy as np
import pandas as pd
import pytest

from polygvc.inference.sampling import SamplerSettings, draw_posterior
from polygvc.models.panel_threshold import (
    build_panel_threshold_model,
    panel_pointwise_loglik,
    panel_threshold_posterior,
    prepare_panel_threshold,
)
from polygvc.models.threshold import fit_threshold_ls, threshold_grid

pytestmark = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is not set, so the Hansen (1999) data mirror is unavailable",
)

CONTROLS = ["q1", "q2", "q3", "d1", "qd1"]


@pytest.fixture(scope="module")
def hansen():
    from polygvc.data_prep import registry

    df = pd.read_stata(registry.fetch("reference/hansen1999", "hansen1999.dta"))
    grid = threshold_grid(df["d1"].to_numpy(float), 393, 0.01, "hansen_unique", name="d1")
    return df, grid


def _ls(df, grid, n_thresholds, hansen_algorithm=True):
    return fit_threshold_ls(
        df["i"].to_numpy(float),
        df["c1"].to_numpy(float),
        df["d1"].to_numpy(float),
        x_fixed=df[CONTROLS].to_numpy(float),
        fixed_effects=df["id"].to_numpy(),
        grid=grid,
        n_thresholds=n_thresholds,
        lower_inclusive=not hansen_algorithm,
        drop_last=hansen_algorithm,
        time=df["year"].to_numpy(),
    )


def test_ls_single_threshold(hansen):
    df, grid = hansen
    result = _ls(df, grid, 1)
    assert result.thresholds[0] == pytest.approx(0.0157, abs=5e-5), f"{result.thresholds}"
    assert result.ssr == pytest.approx(16.5178, abs=1e-4), f"SSR {result.ssr}"
    slopes = result.regime_coef[:, 0]
    assert slopes == pytest.approx([0.0589, 0.0904], abs=5e-5), f"slopes {slopes}"
    white = result.regime_se_white[:, 0]
    assert white == pytest.approx([0.0138, 0.0116], abs=5e-5), f"White SE {white}"


def test_ls_double_threshold(hansen):
    df, grid = hansen
    result = _ls(df, grid, 2)
    assert result.thresholds == pytest.approx([0.0157, 0.5362], abs=5e-5), f"{result.thresholds}"
    assert result.ssr == pytest.approx(16.4600, abs=1e-4), f"SSR {result.ssr}"
    slopes = result.regime_coef[:, 0]
    assert slopes == pytest.approx([0.0632, 0.0977, 0.0392], abs=5e-5), f"slopes {slopes}"
    white = result.regime_se_white[:, 0]
    assert white == pytest.approx([0.0135, 0.0103, 0.0311], abs=5e-5), f"White SE {white}"
    share = result.regime_share
    assert share == pytest.approx([0.122, 0.809, 0.069], abs=5e-4), f"shares {share}"


def test_ls_exact_within_single_threshold(hansen):
    """All rows kept, d1 <= gamma: the single threshold is still 0.0157."""
    df, grid = hansen
    result = _ls(df, grid, 1, hansen_algorithm=False)
    assert result.thresholds[0] == pytest.approx(0.0157, abs=5e-5), f"{result.thresholds}"
    assert result.ssr == pytest.approx(17.7817, abs=1e-4), f"SSR {result.ssr}"


def test_bayes_model_structure(hansen):
    df, grid = hansen
    data = prepare_panel_threshold(
        df,
        dependent="i",
        regime_var="c1",
        threshold_var="d1",
        controls=CONTROLS,
        unit="id",
        grid=grid,
        n_thresholds=2,
    )
    model = build_panel_threshold_model(data)
    assert {v.name for v in model.free_RVs} == {"beta_scaled", "beta_regime_scaled", "sigma_scaled"}
    assert model.named_vars_to_dims["beta_regime"] == ("regime",)
    assert list(model.coords["regime"]) == ["low", "middle", "high"]
    assert len(model.coords["threshold_grid"]) == 393
    assert data.kernel.pairs.shape[0] == 393 * 392 // 2
    assert data.kernel.n_effective[0] == 7910 - 565, f"{data.kernel.n_effective}"
    logp = model.compile_logp()(model.initial_point())
    assert np.isfinite(logp), f"log density at the initial point {logp}"


def _fit(df, grid, n_thresholds, drop_last=False):
    data = prepare_panel_threshold(
        df,
        dependent="i",
        regime_var="c1",
        threshold_var="d1",
        controls=CONTROLS,
        unit="id",
        grid=grid,
        n_thresholds=n_thresholds,
        lower_inclusive=False,
        drop_last=drop_last,
        time="year",
    )
    start = time.perf_counter()
    settings = SamplerSettings(draws=500, tune=500, chains=4, seed=1999)
    trace = draw_posterior(build_panel_threshold_model(data), settings)
    print(f"\nHansen {n_thresholds}-threshold fit: {time.perf_counter() - start:.0f} s")
    return data, trace, panel_threshold_posterior(trace, data, seed=1999)


def _assert_slopes_within_sd(trace, reference):
    posterior = trace["posterior"]["beta_regime"]
    mean = posterior.mean(("chain", "draw")).values
    sd = posterior.std(("chain", "draw")).values
    for regime, (m, s, ref) in enumerate(zip(mean, sd, reference, strict=True)):
        assert abs(m - ref) < s, f"regime {regime}: posterior {m:.4f} (sd {s:.4f}) vs LS {ref}"


@pytest.mark.slow
def test_bayes_single_threshold(hansen):
    df, grid = hansen
    data, trace, post = _fit(df, grid, 1)
    prob = post["gamma_prob"].values
    mode = int(prob.argmax())
    assert grid[mode] == pytest.approx(0.0157, abs=5e-5), f"mode {grid[mode]}"
    near = prob[mode - 1 : mode + 2].sum()
    assert near > 0.8, f"mass within one grid step of the mode {near:.3f}"
    # Exact-likelihood LS at 0.0157 (all rows, d1 <= gamma): 0.0553, 0.0863.
    _assert_slopes_within_sd(trace, [0.0589, 0.0904])
    _assert_slopes_within_sd(trace, [0.0553, 0.0863])
    loglik = panel_pointwise_loglik(trace, data, post)
    assert loglik.dims == ("chain", "draw", "obs")
    assert np.isfinite(loglik.values).all()


@pytest.mark.slow
def test_bayes_double_threshold(hansen):
    df, grid = hansen
    # Hansen's quasi-likelihood (last period deleted), so the slopes compare
    # like for like with the reproduction of his algorithm.
    _, trace, post = _fit(df, grid, 2, drop_last=True)
    lower = post["gamma_prob_lower"].values
    upper = post["gamma_prob_upper"].values
    assert grid[lower.argmax()] == pytest.approx(0.0157, abs=5e-5), f"{grid[lower.argmax()]}"
    near_upper = upper[(grid >= 0.52) & (grid <= 0.56)].sum()
    assert near_upper > 0.5, f"mass of the upper threshold in [0.52, 0.56]: {near_upper:.3f}"
    _assert_slopes_within_sd(trace, [0.0632, 0.0977, 0.0392])
