"""Urban centres detected on light or population rasters, and their polycentricity.

A user who has a gridded night-time light or population product (a GeoTIFF,
or a NetCDF file with CF latitude/longitude coordinates) can measure
polycentricity on urban centres found in the grid instead of on the
prefecture units of :mod:`polygvc.data_prep.light`. Three steps:

1. :func:`read_raster` reads one band or variable into a 2-D
   :class:`xarray.DataArray` with dims ``(y, x)`` and a CRS, and rejects
   inputs that cannot be placed on the map or hold no values.
2. :func:`detect_centres` marks the cells above a threshold (an absolute
   value or a quantile of the valid cells), groups them into patches of
   8-connected cells (:func:`scipy.ndimage.label`), drops patches smaller
   than ``min_cells`` and describes each remaining patch: its size (sum of
   the raster values), its number of cells and its value-weighted centroid
   in longitude and latitude.
3. :func:`assign_centres` places each centre in a region polygon, and
   :func:`raster_polycentricity` computes the indices of
   :func:`polygvc.data_prep.polycentricity.polycentricity_indices` over the
   centres of each region (morphological polycentricity), and, when flows
   between centres are given, the functional indices of
   :func:`polygvc.data_prep.polycentricity.functional_indices`.

Assignment rules
----------------
``method="centroid"`` puts a centre in the polygon that contains its
value-weighted centroid (a point-in-polygon spatial join). A crescent-shaped
patch can have its centroid outside its own cells, even in a neighbouring
region. ``method="majority"`` rasterises the polygons on the raster grid and
puts a centre in the region that holds most of its cells (ties go to the
region listed first); cells outside every polygon do not vote. Either way a
centre outside every polygon is left unassigned and logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from polygvc.data_prep.polycentricity import (
    FUNCTIONAL_COLUMNS,
    functional_indices,
    polycentricity_indices,
)
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

GEOTIFF_SUFFIXES = (".tif", ".tiff")
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")
CENTRE_COLUMNS = ("centre_id", "n_cells", "size", "peak", "lon", "lat", "x", "y")


def read_raster(
    path: str | os.PathLike[str],
    variable: str | None = None,
    band: int = 1,
) -> xr.DataArray:
    """Read a light or population raster as a 2-D DataArray with a CRS.

    Parameters
    ----------
    path : str or path-like
        A GeoTIFF (``.tif``, ``.tiff``) or NetCDF (``.nc``, ``.nc4``) file.
    variable : str, optional
        NetCDF variable to read; required when the file holds more than one
        data variable.
    band : int, default 1
        GeoTIFF band (1-based).

    Returns
    -------
    xarray.DataArray
        Float values with dims ``(y, x)``, 1-D coordinates ``y`` and ``x`` of
        the cell centres in the raster CRS, the CRS in ``rio.crs`` and the
        attribute ``source`` (the path). Nodata cells are NaN.

    Raises
    ------
    DataError
        The file is missing or of an unsupported type; the band or variable
        does not exist; the array is not 2-D after selecting a band (for
        example a time dimension is left); the raster has no CRS and no CF
        latitude/longitude coordinates; or every cell is NaN. Each message
        names the file and the fix.

    Notes
    -----
    A NetCDF file without a CRS is accepted when its coordinates are named
    ``lat``/``latitude`` and ``lon``/``longitude`` (the CF convention for
    geographic coordinates), and is given EPSG:4326.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Raster file {path} was not found. Fix: check the path.")
    suffix = path.suffix.lower()
    if suffix in GEOTIFF_SUFFIXES:
        array = _read_geotiff(path, band)
    elif suffix in NETCDF_SUFFIXES:
        array = _read_netcdf(path, variable)
    else:
        raise DataError(
            f"Raster file {path} has the suffix {suffix!r}; supported are "
            f"{', '.join(GEOTIFF_SUFFIXES + NETCDF_SUFFIXES)}. Fix: convert it to GeoTIFF "
            "or NetCDF (for example with gdal_translate)."
        )
    values = array.to_numpy()
    if not np.isfinite(values).any():
        raise DataError(
            f"Raster {path} contains no valid value: all {values.size} cells are NaN or "
            "nodata. Fix: check the nodata value and the band or variable you selected."
        )
    array.attrs["source"] = str(path)
    return array


def _read_geotiff(path: Path, band: int) -> xr.DataArray:
    import rioxarray

    try:
        data = rioxarray.open_rasterio(path, masked=True)
    except Exception as exc:  # rasterio raises RasterioIOError and friends
        raise DataError(
            f"Raster {path} could not be read as a GeoTIFF ({exc}). Fix: check the file with "
            "gdalinfo, or export it again."
        ) from exc
    if isinstance(data, list | xr.Dataset):
        raise DataError(
            f"Raster {path} holds several subdatasets. Fix: export the band you need to a "
            "single GeoTIFF."
        )
    if data.rio.crs is None:
        raise DataError(
            f"Raster {path} has no coordinate reference system (CRS), so its cells cannot be "
            "placed in regions. Fix: assign one, e.g. gdal_edit.py -a_srs EPSG:4326 "
            f"{path.name}, or set it with rioxarray (data.rio.write_crs('EPSG:4326'))."
        )
    if "band" in data.dims:
        bands = data["band"].to_numpy().tolist()
        if band not in bands:
            raise DataError(
                f"Raster {path} has bands {bands}; band {band} does not exist. Fix: pass one "
                "of these bands."
            )
        data = data.sel(band=band, drop=True)
    return _check_dims(data.astype("float64"), path)


def _read_netcdf(path: Path, variable: str | None) -> xr.DataArray:
    try:
        dataset = xr.open_dataset(path, decode_coords="all")
    except Exception as exc:  # netCDF4/h5netcdf raise several types
        raise DataError(
            f"Raster {path} could not be read as NetCDF ({exc}). Fix: check it with ncdump -h."
        ) from exc
    with dataset:
        names = list(dataset.data_vars)
        if variable is None:
            candidates = [n for n in names if dataset[n].ndim >= 2]
            if len(candidates) != 1:
                raise DataError(
                    f"Raster {path} holds the 2-D variables {candidates}; polygvc cannot tell "
                    "which one to read. Fix: pass variable=<name>."
                )
            variable = candidates[0]
        if variable not in names:
            raise DataError(
                f"Raster {path} has no variable {variable!r}; it has {names}. Fix: pass one of "
                "these."
            )
        data = dataset[variable].load()

    rename = {}
    for dim in data.dims:
        if dim.lower() in _LAT_NAMES:
            rename[dim] = "y"
        elif dim.lower() in _LON_NAMES:
            rename[dim] = "x"
    geographic = len(rename) == 2
    data = data.rename(rename)
    data = _check_dims(data.astype("float64"), path)
    data = data.rio.set_spatial_dims(x_dim="x", y_dim="y")
    if data.rio.crs is None:
        if not geographic:
            raise DataError(
                f"Raster {path}, variable {variable!r}, has no coordinate reference system "
                f"(CRS) and its dims {list(data.dims)} are not CF latitude/longitude. Fix: add "
                "a grid_mapping variable (e.g. with rioxarray's write_crs) or store the grid "
                "with lat/lon coordinates."
            )
        data = data.rio.write_crs("EPSG:4326")
    return data


def _check_dims(data: xr.DataArray, path: Path) -> xr.DataArray:
    if data.ndim != 2 or set(data.dims) != {"y", "x"}:
        raise DataError(
            f"Raster {path} has dims {dict(data.sizes)} after selecting the band or "
            "variable; a centre search needs one 2-D grid with dims y and x. Fix: select one "
            "time step or layer first (e.g. ds.isel(time=0)) and save that grid."
        )
    for dim in ("x", "y"):
        if dim not in data.coords:
            raise DataError(
                f"Raster {path} has no coordinate values along {dim!r}. Fix: store the cell "
                "coordinates (a GeoTIFF transform or NetCDF coordinate variables)."
            )
    return data.transpose("y", "x")


def _threshold(values: np.ndarray, threshold: float | None, quantile: float | None) -> float:
    if (threshold is None) == (quantile is None):
        raise ConfigError(
            "Pass exactly one of threshold (an absolute value) and quantile (in (0, 1)), got "
            f"threshold={threshold!r}, quantile={quantile!r}."
        )
    if quantile is not None:
        if not 0.0 < float(quantile) < 1.0:
            raise ConfigError(f"quantile must lie in (0, 1), got {quantile!r}.")
        return float(np.nanquantile(values, float(quantile)))
    if not np.isfinite(threshold):
        raise ConfigError(f"threshold must be a finite number, got {threshold!r}.")
    return float(threshold)


def label_centres(
    values: np.ndarray,
    threshold: float | None = None,
    quantile: float | None = None,
    min_cells: int = 1,
) -> tuple[np.ndarray, int, float]:
    """Label patches of 8-connected cells above a threshold (NumPy kernel).

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
        Raster values; NaN cells never belong to a centre.
    threshold : float, optional
        Cells with ``value > threshold`` are urban.
    quantile : float, optional
        Use the ``quantile`` of the valid cells as the threshold instead.
    min_cells : int, default 1
        Patches with fewer cells are dropped.

    Returns
    -------
    labels : ndarray of int, shape (ny, nx)
        0 outside centres, ``1..n`` inside, numbered in the order
        :func:`scipy.ndimage.label` finds them (row-major scan).
    n : int
        Number of centres kept.
    threshold : float
        The threshold applied.

    Raises
    ------
    ConfigError
        Neither or both of ``threshold`` and ``quantile`` given, a quantile
        outside (0, 1), or ``min_cells`` below 1.
    """
    if isinstance(min_cells, bool) or int(min_cells) != min_cells or min_cells < 1:
        raise ConfigError(f"min_cells must be a whole number of at least 1, got {min_cells!r}.")
    cut = _threshold(values, threshold, quantile)
    urban = np.isfinite(values) & (values > cut)
    structure = np.ones((3, 3), dtype=bool)  # 8-connectivity
    labels, n = ndimage.label(urban, structure=structure)
    if n and min_cells > 1:
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        small = np.flatnonzero(counts < min_cells)
        small = small[small > 0]
        labels[np.isin(labels, small)] = 0
        labels, n = ndimage.label(labels > 0, structure=structure)
    return labels, int(n), cut


def detect_centres(
    raster: xr.DataArray,
    threshold: float | None = None,
    quantile: float | None = None,
    min_cells: int = 1,
) -> pd.DataFrame:
    """Detect urban centres as contiguous cells above a threshold.

    Parameters
    ----------
    raster : xarray.DataArray
        Output of :func:`read_raster` (dims ``(y, x)`` with a CRS).
    threshold : float, optional
        Absolute cut-off: cells with a value above it are urban.
    quantile : float, optional
        Cut-off as a quantile in (0, 1) of the valid cells (e.g. 0.95).
    min_cells : int, default 1
        Smallest centre in cells.

    Returns
    -------
    pandas.DataFrame
        One row per centre with ``centre_id`` (1..n), ``n_cells``,
        ``size`` (sum of the raster values over the centre's cells, in the
        raster's units: light radiance or persons; higher = larger centre),
        ``peak`` (largest cell value), ``lon`` and ``lat`` (value-weighted
        centroid in EPSG:4326 degrees) and ``x``, ``y`` (the same centroid in
        the raster CRS). The threshold used is in ``attrs["threshold"]`` and
        the label grid in ``attrs["labels"]``.

    Raises
    ------
    ConfigError
        Invalid ``threshold``, ``quantile`` or ``min_cells``.
    DataError
        The raster has no CRS.

    Notes
    -----
    Cells are 8-connected: two urban cells that touch at an edge or a corner
    belong to the same centre. The centroid is
    ``(sum_c v_c x_c / sum_c v_c, sum_c v_c y_c / sum_c v_c)`` over the
    centre's cells ``c`` with values ``v_c`` and cell-centre coordinates, so
    it leans to the brightest part. Morphological polycentricity is then
    measured on the sizes, in the sense of Meijers and Burger (2010).
    """
    crs = raster.rio.crs
    if crs is None:
        raise DataError(
            f"Raster {raster.attrs.get('source', '(in memory)')} has no CRS. Fix: read it with "
            "read_raster or set one with raster.rio.write_crs(...)."
        )
    values = raster.transpose("y", "x").to_numpy().astype(float)
    labels, n, cut = label_centres(values, threshold, quantile, min_cells)
    if n == 0:
        logger.info("No centre found above the threshold %.6g.", cut)
        out = pd.DataFrame({c: pd.Series(dtype="float64") for c in CENTRE_COLUMNS})
        out[["centre_id", "n_cells"]] = out[["centre_id", "n_cells"]].astype("int64")
        out.attrs.update(threshold=cut, labels=labels)
        return out

    index = np.arange(1, n + 1)
    weights = np.where(labels > 0, values, 0.0)
    yy, xx = np.meshgrid(raster["y"].to_numpy(), raster["x"].to_numpy(), indexing="ij")
    size = ndimage.sum_labels(weights, labels, index)
    n_cells = ndimage.sum_labels(np.ones_like(values), labels, index)
    peak = ndimage.maximum(weights, labels, index)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = ndimage.sum_labels(weights * xx, labels, index) / size
        cy = ndimage.sum_labels(weights * yy, labels, index) / size
    # A centre of zero total value (possible with a negative threshold) has no
    # weighted centroid; its cells' plain mean is used instead.
    plain = ~np.isfinite(cx)
    if plain.any():
        cx[plain] = ndimage.mean(xx, labels, index[plain])
        cy[plain] = ndimage.mean(yy, labels, index[plain])
    lon, lat = _to_lonlat(cx, cy, crs)
    out = pd.DataFrame(
        {
            "centre_id": index.astype("int64"),
            "n_cells": n_cells.astype("int64"),
            "size": np.asarray(size, dtype=float),
            "peak": np.asarray(peak, dtype=float),
            "lon": lon,
            "lat": lat,
            "x": cx,
            "y": cy,
        }
    )
    out.attrs.update(threshold=cut, labels=labels)
    logger.info("Found %d centres above %.6g (at least %d cells).", n, cut, min_cells)
    return out


def _to_lonlat(x: np.ndarray, y: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(crs)
    if source.equals(CRS.from_epsg(4326)):
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    transformer = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    lon, lat = transformer.transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def assign_centres(
    centres: pd.DataFrame,
    regions,
    region_col: str,
    method: str = "centroid",
    raster: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Place each centre in a region polygon.

    Parameters
    ----------
    centres : pandas.DataFrame
        Output of :func:`detect_centres`.
    regions : geopandas.GeoDataFrame
        Region polygons with a CRS and the column ``region_col``.
    region_col : str
        Column naming the region (e.g. ``"province_code"``).
    method : {"centroid", "majority"}, default "centroid"
        Rule of the module docstring.
    raster : xarray.DataArray, optional
        The raster the centres came from; required for ``"majority"``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``centres`` with ``region_col`` added (missing for
        centres outside every polygon).

    Raises
    ------
    ConfigError
        Unknown ``method``, or ``"majority"`` without ``raster``.
    DataError
        ``regions`` lacks ``region_col`` or a CRS.
    """
    import geopandas as gpd

    if method not in ("centroid", "majority"):
        raise ConfigError(f"method must be 'centroid' or 'majority', got {method!r}.")
    if region_col not in regions.columns:
        raise DataError(
            f"The region polygons lack the column {region_col!r} (columns: "
            f"{list(regions.columns)}). Fix: pass the column that names the regions."
        )
    if regions.crs is None:
        raise DataError("The region polygons have no CRS. Fix: set it with regions.set_crs(...).")
    out = centres.copy()
    if out.empty:
        out[region_col] = pd.Series(dtype=regions[region_col].dtype)
        return out

    if method == "centroid":
        points = gpd.GeoDataFrame(
            {"centre_id": out["centre_id"].to_numpy()},
            geometry=gpd.points_from_xy(out["lon"], out["lat"]),
            crs="EPSG:4326",
        ).to_crs(regions.crs)
        joined = gpd.sjoin(
            points, regions[[region_col, "geometry"]], how="left", predicate="within"
        )
        joined = joined.drop_duplicates("centre_id")
        out[region_col] = joined.set_index("centre_id").loc[out["centre_id"], region_col].to_numpy()
    else:
        if raster is None:
            raise ConfigError("method='majority' needs the raster the centres were found on.")
        out[region_col] = _majority_regions(out, regions, region_col, raster)

    unassigned = out[region_col].isna()
    if unassigned.any():
        logger.info(
            "%d centres lie outside every region polygon: centre_id %s.",
            int(unassigned.sum()),
            out.loc[unassigned, "centre_id"].tolist()[:20],
        )
    return out


def _majority_regions(centres: pd.DataFrame, regions, region_col: str, raster: xr.DataArray):
    from rasterio import features

    labels = centres.attrs.get("labels")
    if labels is None:
        raise DataError(
            "The centres frame has no label grid (attrs['labels']). Fix: pass the frame "
            "returned by detect_centres unchanged."
        )
    projected = regions.to_crs(raster.rio.crs)
    shapes = ((geom, i + 1) for i, geom in enumerate(projected.geometry))
    grid = features.rasterize(
        shapes,
        out_shape=labels.shape,
        transform=raster.rio.transform(),
        fill=0,
        dtype="int32",
    )
    names = projected[region_col].to_numpy()
    assigned = []
    for centre_id in centres["centre_id"]:
        votes = grid[(labels == centre_id) & (grid > 0)]
        if votes.size == 0:
            assigned.append(None)
            continue
        counts = np.bincount(votes)
        assigned.append(names[int(np.argmax(counts)) - 1])  # argmax takes the first tie
    return pd.Series(assigned, index=centres.index, dtype=object).to_numpy()


def raster_polycentricity(
    raster: xr.DataArray | str | os.PathLike[str],
    regions,
    region_col: str,
    *,
    threshold: float | None = None,
    quantile: float | None = None,
    min_cells: int = 1,
    method: str = "centroid",
    top_n: Sequence[int] = (2, 3, 4),
    flows: pd.DataFrame | None = None,
    variable: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute polycentricity per region over centres detected on a raster.

    Parameters
    ----------
    raster : xarray.DataArray or path
        A raster from :func:`read_raster`, or a path passed to it.
    regions : geopandas.GeoDataFrame
        Region polygons with column ``region_col``.
    region_col : str
        Column naming the regions.
    threshold, quantile, min_cells
        Centre rule, see :func:`detect_centres`.
    method : {"centroid", "majority"}, default "centroid"
        Assignment rule, see :func:`assign_centres`.
    top_n : sequence of int, default (2, 3, 4)
        Cut-offs of the rank-size slopes.
    flows : pandas.DataFrame, optional
        Flows between centres with columns ``origin``, ``destination``
        (``centre_id`` values) and ``flow`` (non-negative). When given, the
        functional indices of each region are computed over the flows
        between its own centres.
    variable : str, optional
        NetCDF variable when ``raster`` is a path.

    Returns
    -------
    centres : pandas.DataFrame
        The centres with their region (see :func:`assign_centres`).
    indices : pandas.DataFrame
        One row per region that has at least one centre: ``region_col``,
        ``n_units`` (centres), the morphological indices of
        :func:`polygvc.data_prep.polycentricity.polycentricity_indices`
        (sizes = raster sums of the centres) and, with ``flows``, the columns
        of :data:`polygvc.data_prep.polycentricity.FUNCTIONAL_COLUMNS`.
        Directions: rank-size slopes closer to 0, higher entropy and higher
        ``func_green`` mean more polycentric; higher primacy, HHI and Gini
        mean more monocentric.

    Raises
    ------
    ConfigError, DataError
        From the steps above, or ``flows`` lacking its columns or naming
        unknown centres.
    """
    if not isinstance(raster, xr.DataArray):
        raster = read_raster(raster, variable=variable)
    centres = detect_centres(raster, threshold=threshold, quantile=quantile, min_cells=min_cells)
    placed = assign_centres(centres, regions, region_col, method=method, raster=raster)
    inside = placed[placed[region_col].notna()]
    indices = polycentricity_indices(inside, region_col, "size", top_n=top_n)
    if flows is not None:
        functional = _functional_by_region(inside, flows, region_col)
        indices = indices.merge(functional, on=region_col, how="left", validate="one_to_one")
    return placed, indices


def _functional_by_region(
    centres: pd.DataFrame, flows: pd.DataFrame, region_col: str
) -> pd.DataFrame:
    needed = ["origin", "destination", "flow"]
    missing = [c for c in needed if c not in flows.columns]
    if missing:
        raise DataError(
            f"The flows table lacks columns {missing} (columns: {list(flows.columns)}). Fix: "
            "give one row per pair with origin, destination (centre_id values) and flow."
        )
    unknown = sorted((set(flows["origin"]) | set(flows["destination"])) - set(centres["centre_id"]))
    if unknown:
        logger.info(
            "Flows name %d centres that are not in any region or were not detected: %s.",
            len(unknown),
            unknown[:20],
        )
    rows = []
    for region, group in centres.groupby(region_col, sort=True):
        ids = group["centre_id"].tolist()
        position = {c: i for i, c in enumerate(ids)}
        matrix = np.zeros((len(ids), len(ids)))
        inner = flows[flows["origin"].isin(ids) & flows["destination"].isin(ids)]
        for origin, destination, flow in inner[needed].itertuples(index=False):
            matrix[position[origin], position[destination]] += flow
        row = {region_col: region, **functional_indices(matrix)}
        rows.append(row)
    return pd.DataFrame(rows, columns=[region_col, *FUNCTIONAL_COLUMNS])
