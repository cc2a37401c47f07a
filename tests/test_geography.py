"""Tests for polygvc.data_prep.geography: distance kernels, terrain, real data."""

from __future__ import annotations

import os

import numpy as np
import pytest

from polygvc.data_prep import geography

needs_data = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the real-data mirror is not available",
)

MUNICIPALITIES = {11, 12, 31, 50}


# --- kernels ----------------------------------------------------------------


def test_haversine_beijing_shanghai():
    # Beijing (116.4074 E, 39.9042 N) and Shanghai (121.4737 E, 31.2304 N), the
    # cpca coordinates of the two city governments. By hand: dphi = -8.6738 deg,
    # dlambda = 5.0663 deg, h = sin^2(dphi/2) + cos(39.9042) cos(31.2304)
    # sin^2(dlambda/2) = 0.0057181 + 0.7672 * 0.8551 * 0.0019527 = 0.0069987,
    # d = 2 * 6371.0088 * asin(sqrt(h)) = 1067.3 km. Tolerance 0.5 km.
    d = geography.great_circle_km(116.4074, 39.9042, 121.4737, 31.2304)
    assert abs(float(d) - 1067.3) < 0.5, f"Beijing-Shanghai distance {float(d):.2f} km"


def test_haversine_quarter_meridian():
    # Equator to pole along a meridian is pi/2 * R = 10007.557 km.
    d = geography.great_circle_km(0.0, 0.0, 0.0, 90.0)
    assert abs(float(d) - np.pi / 2 * geography.EARTH_RADIUS_KM) < 1e-6, f"got {float(d)}"


def test_distance_matrix_symmetric():
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(75, 135, size=12)
    lat = rng.uniform(18, 53, size=12)
    matrix = geography.distance_matrix(lon, lat)
    assert matrix.shape == (12, 12), f"shape {matrix.shape}"
    assert np.allclose(matrix, matrix.T), f"max asymmetry {np.max(np.abs(matrix - matrix.T))}"
    assert np.all(np.diag(matrix) == 0.0), f"diagonal {np.diag(matrix)}"
    assert np.all(matrix[~np.eye(12, dtype=bool)] > 0), "off-diagonal distance not positive"


def test_distance_matrix_rejects_mismatched():
    with pytest.raises(ValueError, match="equal length"):
        geography.distance_matrix([1.0, 2.0], [1.0])


def test_mean_pair_distance_three_points():
    # Three points on the equator at 0, 1 and 3 degrees: pair distances are 1, 3
    # and 2 degrees of arc, one degree = pi R / 180 = 111.195 km.
    km_per_degree = np.pi * geography.EARTH_RADIUS_KM / 180.0
    lon, lat = [0.0, 1.0, 3.0], [0.0, 0.0, 0.0]
    unweighted = geography.mean_pair_distance(lon, lat)
    assert abs(unweighted - 2.0 * km_per_degree) < 1e-6, f"unweighted {unweighted}"
    # Weights 1, 2, 1: pair weights 2 (0-1), 1 (0-2), 2 (1-2); weighted mean of
    # 1, 3 and 2 degrees = (2*1 + 1*3 + 2*2) / 5 = 1.8 degrees.
    weighted = geography.mean_pair_distance(lon, lat, [1.0, 2.0, 1.0])
    assert abs(weighted - 1.8 * km_per_degree) < 1e-6, f"weighted {weighted}"


def test_mean_pair_distance_single_point_nan():
    assert np.isnan(geography.mean_pair_distance([100.0], [30.0]))


def test_ruggedness_synthetic_grid():
    z = np.array([[0.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 4.0]])
    tri = geography.terrain_ruggedness(z)
    # Centre: |0-8| for 7 neighbours and |4-8| for one: (7*8 + 4) / 8 = 7.5.
    assert tri[1, 1] == pytest.approx(7.5), f"centre {tri[1, 1]}"
    # Corner (0, 0) has 3 neighbours 0, 0, 8: (0 + 0 + 8) / 3.
    assert tri[0, 0] == pytest.approx(8.0 / 3.0), f"corner {tri[0, 0]}"
    # Corner (2, 2) has neighbours 0, 8, 0 around elevation 4: (4 + 4 + 4) / 3 = 4.
    assert tri[2, 2] == pytest.approx(4.0), f"corner {tri[2, 2]}"
    riley = geography.terrain_ruggedness(z, method="riley")
    # Riley et al. (1999): sqrt(7 * 8^2 + 4^2) = sqrt(464) at the centre only.
    assert riley[1, 1] == pytest.approx(np.sqrt(464.0)), f"riley centre {riley[1, 1]}"
    assert np.isnan(riley[0, 0]), "riley needs all 8 neighbours"


def test_ruggedness_skips_nodata():
    z = np.array([[np.nan, 10.0], [10.0, 20.0]])
    tri = geography.terrain_ruggedness(z)
    assert np.isnan(tri[0, 0]), "no-data cell must stay NaN"
    # Cell (1, 1) = 20 has valid neighbours 10 and 10 only: mean |diff| = 10.
    assert tri[1, 1] == pytest.approx(10.0), f"got {tri[1, 1]}"


def test_ruggedness_rejects_method():
    with pytest.raises(ValueError, match="method must be"):
        geography.terrain_ruggedness(np.zeros((3, 3)), method="slope")


def test_zonal_terrain_weights():
    z = np.array([[100.0, 300.0], [100.0, 300.0]])
    labels = np.array([[1, 1], [0, 0]])
    table = geography.zonal_terrain(z, np.array([0.0, 60.0]), labels)
    row = table.iloc[0]
    assert row["mean_elevation"] == pytest.approx(200.0), f"mean {row['mean_elevation']}"
    assert row["elev_sd"] == pytest.approx(100.0), f"sd {row['elev_sd']}"
    assert row["n_cells"] == 2, f"cells {row['n_cells']}"


# --- real data ---------------------------------------------------------------


@needs_data
def test_centroids_cover_31_provinces():
    centroids = geography.prefecture_centroids()
    assert centroids["province_code"].nunique() == 31, sorted(centroids["province_code"].unique())
    assert not centroids["province_code"].isin([71, 81, 82]).any(), "HK, Macau or Taiwan present"
    assert centroids["lon"].between(73, 136).all(), centroids["lon"].describe()
    assert centroids["lat"].between(3, 54).all(), centroids["lat"].describe()
    beijing = centroids.loc[centroids["city_code"] == 110100].iloc[0]
    # The Beijing municipality's area centroid lies north of the city centre.
    assert abs(beijing["lon"] - 116.4) < 0.3, f"Beijing lon {beijing['lon']}"
    assert abs(beijing["lat"] - 40.2) < 0.3, f"Beijing lat {beijing['lat']}"


@needs_data
def test_polygons_geodataframes():
    prefectures = geography.prefecture_polygons()
    provinces = geography.province_polygons()
    assert prefectures.crs.to_epsg() == 4326, prefectures.crs
    assert len(provinces) == 31, len(provinces)
    assert provinces.geometry.is_valid.all(), "invalid province outline"


@needs_data
def test_mean_distance_nan_only_municipalities():
    table = geography.province_mean_distance()
    assert len(table) == 31, len(table)
    missing = set(table.loc[table["mean_distance_km"].isna(), "province_code"])
    assert missing == MUNICIPALITIES, missing
    noted = set(table.loc[table["distance_note"] != "", "province_code"])
    assert noted == MUNICIPALITIES, noted
    finite = table.dropna(subset=["mean_distance_km"])
    assert finite["mean_distance_km"].between(50, 1000).all(), finite.to_string()
    assert finite["popweighted_distance_km"].between(50, 1000).all(), finite.to_string()


@needs_data
def test_terrain_all_provinces():
    table = geography.province_terrain()
    assert len(table) == 31, len(table)
    assert table[["ruggedness", "elev_sd", "mean_elevation"]].notna().all().all(), table.to_string()
    by_code = table.set_index("province_code")
    assert by_code.loc[54, "mean_elevation"] > 4000, by_code.loc[54].to_dict()
    assert by_code.loc[31, "ruggedness"] < by_code.loc[51, "ruggedness"], by_code.loc[
        [31, 51]
    ].to_string()


@needs_data
def test_coast_distance_values():
    table = geography.province_coast_distance().set_index("province_code")["coast_distance_km"]
    assert len(table) == 31, len(table)
    for code in (31, 33):
        assert table[code] < 150, f"province {code}: {table[code]:.0f} km"
    for code in (54, 65):
        assert table[code] > 1500, f"province {code}: {table[code]:.0f} km"


@needs_data
def test_coastline_provinces():
    coastal = {12, 13, 21, 31, 32, 33, 35, 37, 44, 45, 46}
    found = set(geography.coastline_points()["province_code"])
    assert coastal <= found, f"missing coastal provinces {coastal - found}"
    # Jilin's Tumen River tip lies about 15 km from the sea and is the only extra.
    assert found <= coastal | {22}, f"unexpected {found - coastal - {22}}"
