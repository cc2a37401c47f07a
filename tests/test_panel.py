"""Source loaders (light, outcome, census) and the province-year panel.

Reads the real data mirror named by POLYGVC_DATA_DIR; every test that needs
it is skipped when the variable is unset. Join tests run against stand-in
geography and infrastructure modules so that they check panel.py alone.
The real-panel tests also need polygvc.data_prep.geography and
polygvc.data_prep.infrastructure and are skipped while those cannot be
imported.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import types

import numpy as np
import pandas as pd
import pytest

import polygvc.data_prep as data_prep
from polygvc.data_prep import census, light, outcome, panel
from polygvc.data_prep.names import MUNICIPALITIES, PROVINCES, province_table
from polygvc.errors import ConfigError, DataError

needs_data = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset; set it to the data mirror (e.g. /work/shared/data)",
)
YEARS = list(range(2001, 2021))
# Provinces whose rows carry an excluded_reason in the real panel, and why.
DOCUMENTED_EXCLUSIONS = {
    "Beijing": "municipality with one unit in the city light data",
    "Tianjin": "municipality with one unit in the city light data",
    "Shanghai": "municipality with one unit in the city light data",
    "Chongqing": "municipality with one unit in the city light data",
    "Tibet": "not covered by Wu, Li and Lei (2016)",
    "Qinghai": "hist_poly_2000 is undefined",
}


def _import_or_skip(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{name} cannot be imported yet ({exc}); the real panel needs it")


# Light -----------------------------------------------------------------------


@needs_data
def test_light_mainland_only():
    cities = light.load_city_light()
    assert set(cities["province"]) == set(PROVINCES)
    assert cities["city_code"].nunique() == 368, cities["city_code"].nunique()
    assert not cities["city_code"].floordiv(10000).isin([71, 81, 82]).any()


@needs_data
def test_light_keys_and_values():
    cities = light.load_city_light()
    assert not cities.duplicated(["city_code", "year"]).any()
    assert sorted(cities["year"].unique()) == YEARS
    assert (cities["light"] >= 0).all()
    # Sansha (South China Sea islands) has zero LandScan population in some years.
    assert (cities["population"] >= 0).all()
    assert list(cities.columns) == [
        "province",
        "province_code",
        "city_code",
        "city_zh",
        "year",
        "light",
        "population",
    ]


@needs_data
def test_light_municipalities_one_unit():
    cities = light.load_city_light(years=[2010])
    counts = cities.groupby("province")["city_code"].nunique()
    for name in MUNICIPALITIES:
        assert counts[name] == 1, f"{name}: {counts[name]} units"


def test_light_column_choice_rejected():
    with pytest.raises(ConfigError, match="light_column 'sol' is not a light column"):
        light.load_city_light(light_column="sol")


def test_light_years_outside_rejected():
    with pytest.raises(ConfigError, match=r"years \[2021\] lie outside the light data"):
        light.load_city_light(years=[2020, 2021])


# Outcome ---------------------------------------------------------------------


def test_outcome_coverage():
    table = outcome.province_outcomes()
    assert table["province"].nunique() == 30
    assert "Tibet" not in set(table["province"])
    assert sorted(table["year"].unique()) == [1997, 2002, 2007]


def test_outcome_reference_values():
    # Wu, Li and Lei (2016), Table 6 (2007): Henan VAE 1806, exports 679 (1e8 yuan);
    # Table 3: Guangdong 2007 VAE/GDP 43 %. Ratios exact to float precision.
    table = outcome.province_outcomes().set_index(["province", "year"])
    henan = table.loc[("Henan", 2007), "dvar_exports"]
    assert henan == pytest.approx(1806 / 679, rel=1e-12), henan
    assert table.loc[("Guangdong", 2007), "vae_gdp_pct"] == 43.0
    assert math.isnan(table.loc[("Henan", 2002), "dvar_exports"])


def test_outcome_unknown_year_rejected():
    with pytest.raises(DataError, match=r"no outcomes for years \[2010\]"):
        outcome.province_outcomes(years=[2007, 2010])


# Census ----------------------------------------------------------------------


@needs_data
def test_population_log_linear():
    cities = census.load_census_cities()
    totals = cities.groupby("province")[["popu_2010", "popu_2020"]].sum()
    pop = census.province_population([2005, 2010, 2015, 2020]).set_index(["province", "year"])
    log10 = math.log(totals.loc["Beijing", "popu_2010"])
    log20 = math.log(totals.loc["Beijing", "popu_2020"])
    # 2015 is the midpoint; 2005 extrapolates the 2010-2020 rate back by five years.
    assert pop.loc[("Beijing", 2010), "log_population"] == pytest.approx(log10, rel=1e-12)
    assert pop.loc[("Beijing", 2015), "log_population"] == pytest.approx((log10 + log20) / 2)
    assert pop.loc[("Beijing", 2005), "log_population"] == pytest.approx(
        log10 - (log20 - log10) / 2
    )
    # Census 2010: Beijing 19,612,368 residents.
    assert totals.loc["Beijing", "popu_2010"] == 19612368


@needs_data
def test_population_covers_31_provinces():
    pop = census.province_population(YEARS)
    assert len(pop) == 31 * 20
    assert pop["log_population"].notna().all()


@needs_data
def test_historical_instrument_coverage():
    hist = census.historical_polycentricity()
    assert len(hist) == 31
    undefined = set(hist.loc[hist["hist_poly_2000"].isna(), "province"])
    assert undefined == {*MUNICIPALITIES, "Tibet", "Qinghai"}
    assert (hist.loc[hist["hist_poly_2000"].notna(), "hist_poly_reason"] == "").all()
    assert (hist["hist_poly_2000"].dropna() <= 0).all()
    tibet = hist.set_index("province").loc["Tibet", "hist_poly_reason"]
    assert tibet == "no prefecture of this province is in the Ma and Tang (2024) list"


@needs_data
def test_historical_instrument_two_units():
    # Hainan in Ma and Tang (2024): two prefectures, so the slope is
    # ln(P2 / P1) / ln 2 with P1 >= P2 their 2000 populations.
    prefectures = census.load_prefectures_2000()
    sizes = np.sort(prefectures.loc[prefectures["province_code"] == 46, "cpop2000"])[::-1]
    expected = math.log(sizes[1] / sizes[0]) / math.log(2)
    hist = census.historical_polycentricity().set_index("province")
    assert hist.loc["Hainan", "hist_poly_2000"] == pytest.approx(expected, rel=1e-12)


# Panel joins with stand-in geography and infrastructure -----------------------


def _fake_sources(drop_code: int | None = None, duplicate: bool = False, bad_code: bool = False):
    codes = province_table()["province_code"].tolist()
    if drop_code is not None:
        codes = [c for c in codes if c != drop_code]
    if bad_code:
        codes = [*codes, 81]
    rng = np.random.default_rng(20240601)

    def by_province(**columns):
        frame = pd.DataFrame({"province_code": codes})
        for name, (low, high) in columns.items():
            frame[name] = rng.uniform(low, high, len(codes))
        if duplicate:
            frame = pd.concat([frame, frame.iloc[:1]], ignore_index=True)
        return frame

    geography = types.ModuleType("polygvc.data_prep.geography")
    geography.prefecture_centroids = lambda: pd.DataFrame()
    geography.province_mean_distance = lambda centroids: by_province(
        mean_distance_km=(50, 800), popweighted_distance_km=(50, 800)
    )
    geography.province_terrain = lambda: by_province(
        ruggedness=(1, 400), elev_sd=(1, 1500), mean_elevation=(0, 4500)
    )
    geography.province_coast_distance = lambda: by_province(coast_distance_km=(0, 3000))

    infrastructure = types.ModuleType("polygvc.data_prep.infrastructure")

    def province_infrastructure(years):
        frame = by_province().merge(pd.DataFrame({"year": list(years)}), how="cross")
        frame["hsr_city_share"] = rng.uniform(0, 1, len(frame))
        frame["hsr_cities"] = 1
        frame["highway_segments"] = rng.integers(0, 60, len(frame)).astype(float)
        return frame

    infrastructure.province_infrastructure = province_infrastructure
    return geography, infrastructure


@pytest.fixture
def fake_sources(monkeypatch):
    def install(**options):
        geography, infrastructure = _fake_sources(**options)
        for name, module in (("geography", geography), ("infrastructure", infrastructure)):
            monkeypatch.setitem(sys.modules, f"polygvc.data_prep.{name}", module)
            monkeypatch.setattr(data_prep, name, module, raising=False)

    return install


@needs_data
def test_fake_panel_shape_and_exclusions(fake_sources):
    fake_sources()
    table = panel.build_province_panel(years=[2002, 2007])
    assert len(table) == 31 * 2
    assert list(table.columns) == list(panel.PANEL_COLUMNS)
    flagged = set(table.loc[table["excluded_reason"] != "", "province"])
    assert flagged == set(DOCUMENTED_EXCLUSIONS), sorted(flagged)


@needs_data
def test_fake_panel_missing_province_recorded(fake_sources):
    fake_sources(drop_code=42)
    table = panel.build_province_panel(years=[2007])
    assert set(table["province"]) == set(PROVINCES)
    hubei = table.set_index("province").loc["Hubei"]
    assert math.isnan(hubei["ruggedness"])
    assert (
        "ruggedness (terrain ruggedness) is not available for Hubei."
        in (hubei["excluded_reason"])
    )


@needs_data
def test_fake_panel_duplicate_keys_rejected(fake_sources):
    fake_sources(duplicate=True)
    with pytest.raises(DataError, match=r"geography\.province_mean_distance has 2 rows with dup"):
        panel.build_province_panel(years=[2007])


@needs_data
def test_fake_panel_non_mainland_code_rejected(fake_sources):
    fake_sources(bad_code=True)
    with pytest.raises(DataError, match=r"returned province codes \[81\] that are not mainland"):
        panel.build_province_panel(years=[2007])


def test_panel_empty_years_rejected():
    with pytest.raises(ConfigError, match="years is empty"):
        panel.build_province_panel(years=[])


# Real panel ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_panel() -> pd.DataFrame:
    if not os.environ.get("POLYGVC_DATA_DIR"):
        pytest.skip("POLYGVC_DATA_DIR is unset; set it to the data mirror")
    _import_or_skip("polygvc.data_prep.geography")
    _import_or_skip("polygvc.data_prep.infrastructure")
    return panel.build_province_panel()


def test_panel_shape(real_panel):
    assert len(real_panel) == 31 * 20
    assert real_panel["province"].nunique() == 31
    assert sorted(real_panel["year"].unique()) == YEARS
    assert not real_panel.duplicated(["province", "year"]).any()
    assert list(real_panel.columns) == list(panel.PANEL_COLUMNS)


def test_panel_documented_exclusions(real_panel):
    flagged = real_panel.loc[real_panel["excluded_reason"] != ""]
    assert set(flagged["province"]) == set(DOCUMENTED_EXCLUSIONS), sorted(set(flagged["province"]))
    for province, phrase in DOCUMENTED_EXCLUSIONS.items():
        reasons = real_panel.loc[real_panel["province"] == province, "excluded_reason"]
        assert reasons.str.contains(phrase, regex=False).all(), (province, reasons.iloc[0])


def test_panel_municipalities_undefined(real_panel):
    rows = real_panel[real_panel["province"].isin(MUNICIPALITIES)]
    assert (rows["n_cities"] == 1).all()
    assert rows[list(panel.POLY_COLUMNS)].isna().all().all()
    others = real_panel[~real_panel["province"].isin(MUNICIPALITIES)]
    assert others[list(panel.POLY_COLUMNS)].notna().all().all()


def test_panel_outcome_years(real_panel):
    observed = real_panel.loc[real_panel["vae_gdp_pct"].notna()]
    assert sorted(observed["year"].unique()) == [2002, 2007]
    assert observed["province"].nunique() == 30
    assert "Tibet" not in set(observed["province"])
    dvar = real_panel.loc[real_panel["dvar_exports"].notna()]
    assert sorted(dvar["year"].unique()) == [2007]


def test_panel_join_report_keeps_31(real_panel):
    report = panel.panel_join_report(real_panel)
    assert len(report) == 31
    assert report["light"].all()
    assert report["census_population"].all()
    assert report["infrastructure"].all()
    assert set(report.loc[~report["outcome"], "province"]) == {"Tibet"}
    no_poly = set(report.loc[~report["polycentricity"], "province"])
    assert no_poly == set(MUNICIPALITIES)


def test_panel_validates(real_panel):
    panel.validate_panel(real_panel)


def _first_defined(df: pd.DataFrame, column: str) -> int:
    return int(df.index[df[column].notna()][0])


def test_validate_share_out_of_range(real_panel):
    broken = real_panel.copy()
    row = _first_defined(broken, "poly_primacy")
    broken.loc[row, "poly_primacy"] = 1.5
    with pytest.raises(
        DataError, match=r"'poly_primacy' must be a share in \[0, 1\], but contains row"
    ):
        panel.validate_panel(broken)


def test_validate_positive_slope(real_panel):
    broken = real_panel.copy()
    row = _first_defined(broken, "poly_rank_size_all")
    broken.loc[row, "poly_rank_size_all"] = 0.3
    with pytest.raises(
        DataError, match="'poly_rank_size_all' must be a rank-size slope of at most 0"
    ):
        panel.validate_panel(broken)


def test_validate_unexplained_missing(real_panel):
    broken = real_panel.copy()
    row = int(broken.index[broken["province"] == "Hebei"][0])
    broken.loc[row, "log_population"] = np.nan
    with pytest.raises(
        DataError, match=r"'log_population' is missing without an excluded_reason in row"
    ):
        panel.validate_panel(broken)


def test_validate_duplicated_key(real_panel):
    broken = pd.concat([real_panel, real_panel.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicated \(province, year\) keys"):
        panel.validate_panel(broken)


def test_validate_dtype(real_panel):
    broken = real_panel.copy()
    broken["year"] = broken["year"].astype(float)
    with pytest.raises(DataError, match="'year' has dtype float64, expected int"):
        panel.validate_panel(broken)


def test_validate_outcome_off_year(real_panel):
    broken = real_panel.copy()
    row = int(broken.index[(broken["province"] == "Hebei") & (broken["year"] == 2003)][0])
    broken.loc[row, "vae_gdp_pct"] = 10.0
    with pytest.raises(DataError, match="'vae_gdp_pct' has values outside its survey years"):
        panel.validate_panel(broken)


def test_write_panel_roundtrip(real_panel, tmp_path):
    path = panel.write_panel(real_panel, tmp_path / "out" / "panel.parquet")
    back = pd.read_parquet(path)
    assert back.shape == real_panel.shape
    assert list(back.columns) == list(real_panel.columns)
    assert np.allclose(back["log_population"], real_panel["log_population"])
    assert list(tmp_path.joinpath("out").iterdir()) == [path]


def test_write_invalid_panel_leaves_nothing(real_panel, tmp_path):
    broken = real_panel.drop(columns="region")
    target = tmp_path / "panel.parquet"
    with pytest.raises(DataError, match=r"Panel lacks columns \['region'\]"):
        panel.write_panel(broken, target)
    assert not target.exists()
