"""County-level polycentricity: hand table (numerical tier) and the real census files."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from polygvc.data_prep import county
from polygvc.errors import ConfigError

needs_mirror = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the real census county files are unavailable",
)


def _hand_units() -> pd.DataFrame:
    rows = [
        # prefecture 1301: sizes 4, 2, 1; prefecture 1302: 3, 3; municipality Beijing: 6, 2
        ("Hebei", 13, 130100, "prefecture", 130102, 4.0),
        ("Hebei", 13, 130100, "prefecture", 130104, 2.0),
        ("Hebei", 13, 130100, "prefecture", 130105, 1.0),
        ("Hebei", 13, 130200, "prefecture", 130202, 3.0),
        ("Hebei", 13, 130200, "prefecture", 130203, 3.0),
        ("Beijing", 11, 110100, "municipality", 110101, 6.0),
        ("Beijing", 11, 110100, "municipality", 110102, 2.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "province",
            "province_code",
            "prefecture_code",
            "prefecture_kind",
            "county_code",
            "population",
        ],
    )
    frame["year"] = 2020
    frame["prefecture_zh"] = ""
    return frame


def test_prefecture_indices_by_hand():
    out = county.county_polycentricity(_hand_units(), "prefecture").set_index("prefecture_code")
    assert out.at[130100, "poly_primacy"] == pytest.approx(4 / 7, abs=1e-12)
    # ln(2/4) / ln 2 = -1 for the top 2; equal sizes give slope 0.
    assert out.at[130100, "poly_rank_size_top2"] == pytest.approx(-1.0, abs=1e-12)
    assert out.at[130200, "poly_entropy_norm"] == pytest.approx(1.0, abs=1e-12)
    assert out.at[130200, "poly_rank_size_mean"] == pytest.approx(0.0, abs=1e-12)


def test_province_indices_by_hand():
    out = county.county_polycentricity(_hand_units(), "province").set_index("province")
    assert out.at["Hebei", "n_units"] == 5
    assert out.at["Hebei", "population"] == pytest.approx(13.0)
    assert out.at["Beijing", "poly_primacy"] == pytest.approx(0.75, abs=1e-12)
    assert bool(out.at["Beijing", "is_municipality"])


def test_rank_size_mean_skips_undefined():
    out = county.county_polycentricity(_hand_units(), "prefecture").set_index("prefecture_code")
    expected = np.mean(
        [
            out.at[130100, c]
            for c in ("poly_rank_size_top2", "poly_rank_size_top3", "poly_rank_size_all")
        ]
    )
    assert np.isnan(out.at[130100, "poly_rank_size_top4"])
    assert out.at[130100, "poly_rank_size_mean"] == pytest.approx(expected, abs=1e-12)


def test_unknown_level():
    with pytest.raises(ConfigError, match="level must be 'prefecture' or 'province'"):
        county.county_polycentricity(_hand_units(), "county")


def test_bad_year():
    with pytest.raises(ConfigError, match="census years"):
        county.load_county_census(2015)


def test_attach_interpolates():
    provinces = pd.DataFrame(
        {"province": ["Beijing", "Beijing"], "year": [2010, 2020], "poly_entropy_norm": [0.8, 0.9]}
    )
    panel = pd.DataFrame({"province": ["Beijing"] * 3, "year": [2005, 2015, 2020]})
    out = county.attach_county_polycentricity(panel, provinces, columns=("poly_entropy_norm",))
    assert out["poly_entropy_norm_county"].tolist() == pytest.approx([0.8, 0.85, 0.9])
    assert "poly_entropy_norm_county" not in panel.columns


@needs_mirror
def test_real_county_indices_cover_provinces():
    prefectures, provinces = county.county_indices()
    for year in (2010, 2020):
        got = provinces[provinces["year"] == year]
        assert got["province"].nunique() == 31, got["province"].unique()
        municipal = got[got["is_municipality"]]
        assert municipal["poly_entropy_norm"].notna().sum() == 4, municipal
    # Beijing 2020: 16 districts (census yearbook).
    beijing = provinces[(provinces["province"] == "Beijing") & (provinces["year"] == 2020)]
    assert int(beijing["n_units"].iloc[0]) == 16
    assert set(prefectures["prefecture_kind"]) == {
        "prefecture",
        "municipality",
        "province_administered",
    }


@needs_mirror
def test_real_units_match_published_totals():
    units = county.load_county_census(2020)
    # National 2020 census total of the 31 provinces in the yearbook: 1,409,778,724.
    assert units["population"].sum() == pytest.approx(1_409_778_724, abs=0.5)
    fixed = units[units["code_note"] != ""]
    assert fixed["county_code"].tolist() == [140971], fixed


@needs_mirror
def test_cross_check_2020():
    provinces, counties = county.cross_check_2020()
    differing = provinces[provinces["difference"] != 0]
    # Only Inner Mongolia differs: 扎赉诺尔区 is 84,424 in leiii and 184,424 in tudigong.
    assert differing["province"].tolist() == ["Inner Mongolia"], differing
    assert differing["difference"].iloc[0] == pytest.approx(-100_000)
    population = counties[counties["status"] == "different_population"]
    assert population["county_zh"].tolist() == ["扎赉诺尔区"], population
