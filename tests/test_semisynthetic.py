"""Semi-synthetic generator: reproducibility, truth bookkeeping, panel contract."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from polygvc.data_prep import semisynthetic as ss
from polygvc.data_prep.names import province_table
from polygvc.data_prep.panel import PANEL_COLUMNS, validate_panel
from polygvc.errors import ConfigError

YEARS = (2006, 2007, 2015)


def _base() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small fake real panel and city light table for all 31 provinces."""
    rng = np.random.default_rng(11)
    table = province_table().drop(columns="province_zh_full")
    rows, cities = [], []
    for i, row in enumerate(table.itertuples(index=False)):
        municipality = row.province in ("Beijing", "Tianjin", "Shanghai", "Chongqing")
        n = 1 if municipality else 3 + i % 5
        for year in YEARS:
            light = rng.gamma(2.0, 50.0, n)
            for k in range(n):
                cities.append(
                    (row.province, year, row.province_code * 10000 + 100 * (k + 1), light[k])
                )
            rows.append(
                {
                    **row._asdict(),
                    "year": year,
                    "n_cities": n,
                    **{c: np.nan for c in PANEL_COLUMNS if c.startswith("poly_")},
                    "vae_gdp_pct": np.nan,
                    "dvar_exports": np.nan,
                    "mean_distance_km": np.nan if municipality else 100.0 + 10 * i,
                    "hsr_city_share": 0.0 if year < 2010 else min(1.0, 0.1 * (i % 8)),
                    "highway_segments": 10.0,
                    "ruggedness": 50.0 + 7.0 * i,
                    "elev_sd": 100.0,
                    "coast_distance_km": 200.0,
                    "hist_poly_2000": -0.5,
                    "log_population": 17.0 + 0.01 * i,
                    "excluded_reason": "municipality, one unit" if municipality else "",
                }
            )
    panel = pd.DataFrame(rows)[list(PANEL_COLUMNS)]
    city_frame = pd.DataFrame(cities, columns=["province", "year", "city_code", "light"])
    return panel, city_frame


def _simulate(seed=5, **params):
    panel, cities = _base()
    return ss.simulate_semisynthetic(
        panel, cities, seed=seed, params=ss.SemiSyntheticParams(firms_per_cell=5, **params)
    )


def test_panel_passes_contract():
    result = _simulate()
    validate_panel(result.panel)
    assert list(result.panel.columns[: len(PANEL_COLUMNS)]) == list(PANEL_COLUMNS)
    assert result.panel["gvc_sim"].notna().all()


def test_same_seed_identical_files(tmp_path):
    first = ss.write_semisynthetic(_simulate(seed=9), tmp_path / "a")
    second = ss.write_semisynthetic(_simulate(seed=9), tmp_path / "b")
    for key in ("panel", "firms", "truth"):
        assert first[key].read_bytes() == second[key].read_bytes(), key


def test_other_seed_differs():
    a, b = _simulate(seed=1), _simulate(seed=2)
    assert not np.allclose(a.firms["gvc_position"], b.firms["gvc_position"])


def test_truth_matches_simulation(tmp_path):
    result = _simulate(seed=4)
    paths = ss.write_semisynthetic(result, tmp_path)
    truth = json.loads(paths["truth"].read_text())
    panel = result.panel
    for row in panel.itertuples(index=False):
        expected = truth["effect_plus_1sd"][row.province][str(row.year)]
        if np.isnan(row.treatment_std):
            assert expected is None, (row.province, row.year)
            continue
        beta = truth["province_beta"][row.province]
        assert expected == pytest.approx(beta * row.effect_multiplier, abs=1e-12)
        below = row.hsr_city_share < truth["hsr_threshold"]
        assert (expected == 0.0) == below or beta == 0.0, (row.province, row.year, expected)
    treatment = panel[truth["treatment"]]
    recomputed = (treatment - truth["treatment_mean"]) / truth["treatment_sd"]
    assert np.allclose(recomputed, panel["treatment_std"], equal_nan=True)


def test_firm_means_follow_structural_equation():
    result = _simulate(seed=6, firm_noise_sd=0.0)
    truth, panel = result.truth, result.panel
    # Without firm noise, each province-year mean equals the structural mean exactly.
    population = (panel["log_population"] - panel["log_population"].mean()) / panel[
        "log_population"
    ].std(ddof=0)
    expected = (
        panel["province"].map(truth["province_alpha"])
        + panel["province"].map(truth["province_beta"])
        * panel["effect_multiplier"]
        * panel["treatment_std"].fillna(0.0)
        + truth["params"]["confounder_on_outcome"] * panel["province"].map(truth["confounder_u"])
        + truth["params"]["population_effect"] * population
    )
    assert np.allclose(panel["gvc_sim"], expected, atol=1e-10)


def test_confounder_moves_treatment():
    result = _simulate(seed=8, confounder_on_treatment=2.0, instrument_strength=0.0)
    panel = result.panel.dropna(subset=["treatment_std"])
    corr = np.corrcoef(panel["treatment_std"], panel["confounder_u"])[0, 1]
    assert corr > 0.3, f"corr(T, U) = {corr:.3f}"


def test_city_model_hook_replaces_sizes():
    def flat_sizes(province_code, year, hsr):  # every city the same size: entropy 1
        return pd.Series([1.0, 1.0, 1.0], index=[1, 2, 3])

    result = _simulate(
        seed=3, tilt_noise_sd=0.0, confounder_on_treatment=0.0, instrument_strength=0.0
    )
    panel, cities = _base()
    hooked = ss.simulate_semisynthetic(panel, cities, seed=3, city_model=flat_sizes)
    assert np.allclose(hooked.panel["poly_entropy_norm"], 1.0)
    assert not np.allclose(result.panel["poly_entropy_norm"].dropna(), 1.0)


def test_bad_treatment():
    with pytest.raises(ConfigError, match="treatment 'gdp' is not a polycentricity column"):
        ss.SemiSyntheticParams(treatment="gdp")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("POLYGVC_DATA_DIR"), reason="POLYGVC_DATA_DIR is unset")
def test_real_geography(tmp_path):
    result = ss.simulate_semisynthetic(seed=0, params=ss.SemiSyntheticParams(firms_per_cell=3))
    validate_panel(result.panel)
    assert result.panel["province"].nunique() == 31
