"""Raster centre detection and region polycentricity on small hand-made rasters.

Numerical tier: the centres, sizes and indices below are computed by hand from
the cell values written in each test (tolerance 1e-9).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from shapely.geometry import box

from polygvc.data_prep import raster_centres as rc
from polygvc.errors import ConfigError, DataError


def _grid() -> xr.DataArray:
    values = np.zeros((10, 12))
    values[1:3, 1:3] = 5.0  # centre A: 4 cells, size 20
    values[6:9, 7:10] = 2.0  # centre C: 9 cells, size 18
    values[5, 2] = 1.0  # centre B: 1 cell, size 1
    values[4, 11] = 0.4  # below the threshold 0.5
    x = 100.0 + np.arange(12) * 0.1 + 0.05
    y = 30.0 - np.arange(10) * 0.1 - 0.05
    return xr.DataArray(values, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs("EPSG:4326")


def _regions() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"region": ["west", "east"]},
        geometry=[box(100.0, 29.0, 100.6, 30.0), box(100.6, 29.0, 101.2, 30.0)],
        crs="EPSG:4326",
    )


@pytest.fixture
def geotiff(tmp_path):
    path = tmp_path / "light.tif"
    _grid().rio.to_raster(path)
    return path


def test_geotiff_centres_sizes(geotiff):
    centres = rc.detect_centres(rc.read_raster(geotiff), threshold=0.5)
    assert centres["size"].tolist() == [20.0, 1.0, 18.0], centres
    assert centres["n_cells"].tolist() == [4, 1, 9], centres
    assert centres.loc[0, "lon"] == pytest.approx(100.2, abs=1e-9)
    assert centres.loc[0, "lat"] == pytest.approx(29.8, abs=1e-9)


def test_min_cells_drops_small_centres(geotiff):
    centres = rc.detect_centres(rc.read_raster(geotiff), threshold=0.5, min_cells=2)
    assert centres["size"].tolist() == [20.0, 18.0], centres


def test_quantile_threshold(geotiff):
    raster = rc.read_raster(geotiff)
    centres = rc.detect_centres(raster, quantile=0.9)
    # 120 cells, 14 nonzero: the 0.9 quantile is 2.0, so only the value-5 cells pass.
    assert centres.attrs["threshold"] == pytest.approx(2.0)
    assert centres["size"].tolist() == [20.0], centres


def test_diagonal_cells_are_connected():
    values = np.zeros((4, 4))
    values[0, 0] = values[1, 1] = values[2, 2] = 1.0
    labels, n, _ = rc.label_centres(values, threshold=0.5)
    assert n == 1, labels


def test_region_indices_by_hand(geotiff):
    centres, indices = rc.raster_polycentricity(geotiff, _regions(), "region", threshold=0.5)
    west = indices.set_index("region").loc["west"]
    # west holds sizes 20 and 1: primacy 20/21, slope ln(1/20)/ln 2.
    assert west["n_units"] == 2
    assert west["poly_primacy"] == pytest.approx(20 / 21, abs=1e-9)
    assert west["poly_rank_size_top2"] == pytest.approx(np.log(1 / 20) / np.log(2), abs=1e-9)
    assert centres["region"].tolist() == ["west", "west", "east"]


def test_majority_assignment():
    raster = _grid()
    # Shift the boundary so centre C (columns 7-9) is split 1 column west, 2 east.
    regions = gpd.GeoDataFrame(
        {"region": ["west", "east"]},
        geometry=[box(100.0, 29.0, 100.8, 30.0), box(100.8, 29.0, 101.2, 30.0)],
        crs="EPSG:4326",
    )
    centres = rc.detect_centres(raster, threshold=0.5)
    placed = rc.assign_centres(centres, regions, "region", method="majority", raster=raster)
    assert placed["region"].tolist() == ["west", "west", "east"], placed


def test_netcdf_lat_lon_without_crs(tmp_path):
    grid = _grid()
    dataset = xr.Dataset(
        {"light": (("lat", "lon"), grid.to_numpy())},
        coords={"lat": grid["y"].to_numpy(), "lon": grid["x"].to_numpy()},
    )
    path = tmp_path / "light.nc"
    dataset.to_netcdf(path)
    raster = rc.read_raster(path)
    assert raster.rio.crs.to_epsg() == 4326
    assert rc.detect_centres(raster, threshold=0.5)["size"].sum() == pytest.approx(39.0)


def test_projected_raster_lonlat(tmp_path):
    grid = _grid().rio.reproject("EPSG:3857")
    path = tmp_path / "merc.tif"
    grid.rio.to_raster(path)
    centres = rc.detect_centres(rc.read_raster(path), threshold=0.5)
    assert centres["lon"].between(100.0, 101.2).all(), centres
    assert centres["lat"].between(29.0, 30.0).all(), centres


def test_functional_indices_with_flows(geotiff):
    flows = pd.DataFrame({"origin": [1, 2], "destination": [2, 1], "flow": [3.0, 3.0]})
    _, indices = rc.raster_polycentricity(geotiff, _regions(), "region", threshold=0.5, flows=flows)
    west = indices.set_index("region").loc["west"]
    # Two centres exchanging equal flows: perfectly even network.
    assert west["func_green"] == pytest.approx(1.0)
    assert west["func_link_entropy"] == pytest.approx(1.0)


def test_geotiff_without_crs(tmp_path):
    path = tmp_path / "nocrs.tif"
    xr.DataArray(
        np.ones((3, 3)), dims=("y", "x"), coords={"y": [2, 1, 0], "x": [0, 1, 2]}
    ).rio.to_raster(path)
    with pytest.raises(DataError, match=r"nocrs\.tif has no coordinate reference system"):
        rc.read_raster(path)


def test_netcdf_wrong_dims(tmp_path):
    path = tmp_path / "cube.nc"
    xr.Dataset(
        {"light": (("time", "lat", "lon"), np.ones((2, 3, 3)))},
        coords={"time": [0, 1], "lat": [0.0, 1.0, 2.0], "lon": [0.0, 1.0, 2.0]},
    ).to_netcdf(path)
    with pytest.raises(DataError, match=r"cube\.nc has dims .*select one time step"):
        rc.read_raster(path)


def test_all_nan_raster(tmp_path):
    path = tmp_path / "empty.tif"
    grid = _grid() * np.nan
    grid.rio.to_raster(path)
    with pytest.raises(DataError, match=r"empty\.tif contains no valid value"):
        rc.read_raster(path)


def test_threshold_and_quantile_exclusive(geotiff):
    with pytest.raises(ConfigError, match="exactly one of threshold"):
        rc.detect_centres(rc.read_raster(geotiff), threshold=1.0, quantile=0.5)
