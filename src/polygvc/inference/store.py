"""Result storage: the DataTree as NetCDF and the run manifest, both written atomically.

NetCDF (HDF5 through h5netcdf) is used instead of pickle so stored results are
plain data that any xarray can read. Object-typed variables that NetCDF cannot
hold (for example nutpie's per-draw divergence messages, mostly ``None``) are
converted to strings before writing.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from polygvc.atomic import atomic_path, write_text
from polygvc.data_prep.registry import sha256_of

POSTERIOR_FILE = "posterior.nc"
MANIFEST_FILE = "manifest.json"

RECORDED_PACKAGES = (
    "polygvc",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "h5netcdf",
    "geopandas",
    "linearmodels",
    "duckdb",
    "matplotlib",
    "jinja2",
)


def _netcdf_safe(ds: xr.Dataset) -> xr.Dataset:
    """Return a copy of ``ds`` whose object-typed variables and coords are strings."""
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype == object:
            values = np.vectorize(lambda v: "" if v is None else str(v), otypes=[str])(var.values)
            out[name] = var.copy(data=values.astype(str))
    return out


def save_datatree(dt: xr.DataTree, path: str | Path) -> Path:
    """Write a DataTree to NetCDF atomically and return the path.

    Each group is made NetCDF-safe first (object dtypes to strings). The file
    appears only when complete.
    """
    path = Path(path)
    safe = xr.DataTree.from_dict(
        {node.path: _netcdf_safe(node.to_dataset(inherit=False)) for node in dt.subtree}
    )
    safe.attrs = dict(dt.attrs)
    with atomic_path(path) as tmp:
        safe.to_netcdf(tmp, engine="h5netcdf")
    return path


def load_datatree(path: str | Path) -> xr.DataTree:
    """Read a stored DataTree fully into memory (the file is closed afterwards)."""
    with xr.open_datatree(path, engine="h5netcdf") as dt:
        return dt.load().copy()


def package_versions() -> dict[str, str]:
    """Return installed versions of the packages that affect results."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    *,
    config: dict[str, Any],
    seed: int,
    inputs: list[Path],
    outputs: dict[str, str],
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest: everything needed to reproduce a run.

    Parameters
    ----------
    config : dict
        The validated configuration as plain data.
    seed : int
        Seed of the run.
    inputs : list of Path
        Input files read; each is recorded with its SHA-256.
    outputs : dict
        Output name to file name inside the run folder.
    timings : dict
        Seconds per stage.
    extra : dict, optional
        Anything else to record (e.g. dropped provinces).
    """
    return {
        "polygvc_version": package_versions()["polygvc"],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "config": config,
        "inputs": {str(p): sha256_of(p) for p in sorted(set(map(Path, inputs)))},
        "outputs": outputs,
        "timings_seconds": timings,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        **(extra or {}),
    }


def write_manifest(manifest: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``manifest.json`` into the run folder atomically."""
    text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str)
    return write_text(Path(run_dir) / MANIFEST_FILE, text + "\n")
