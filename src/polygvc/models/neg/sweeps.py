"""Parameter sweeps of the centre-periphery model, run in parallel with dask.distributed.

A sweep takes a configuration mapping (the ``[simulate]`` table of a run
configuration, or a plain dict), builds one economy per point of the Cartesian
grid, finds its stable equilibria from random starts, and returns an
:class:`xarray.Dataset` with one dim per grid key plus ``equilibrium``
(distinct stable equilibria, largest basin first, NaN padded) and ``city``.

Configuration keys (defaults in :data:`DEFAULT_CONFIG`):

``geography``
    ``kind`` (``"racetrack"`` or ``"province"``), ``n_cities`` and
    ``circumference_km`` (racetrack), ``province_code`` and
    ``gateway_city_code`` (province), ``gateway`` (city position, racetrack).
``model``
    :class:`~polygvc.models.neg.equilibrium.NEGParams` fields.
``trade_costs``
    :class:`~polygvc.models.neg.geography.TradeCostParams` fields.
``infrastructure``
    ``highway``, ``hsr``, ``comm`` (indices in [0, 1]) and ``spending``
    (the government lever, fraction of the infrastructure gap closed).
``grid``
    Mapping from any key of ``model``, ``trade_costs`` or ``infrastructure``
    to a list of values; the sweep runs over their Cartesian product.
``dynamics``
    ``n_starts``, ``seed``, ``cluster_tol`` and the options of
    :func:`~polygvc.models.neg.dynamics.simulate_dynamics`.
``size_measure``
    ``"gdp"`` or ``"manufacturing"``; ``max_equilibria`` (size of the
    ``equilibrium`` dim).
``dask``
    ``enabled`` (False runs serially in this process), ``n_workers``,
    ``threads_per_worker``, ``processes``, ``scheduler_address`` (connect to a
    running scheduler instead of starting a LocalCluster).
``output``
    Path of the NetCDF file to write atomically, or None.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np
import xarray as xr

from polygvc.atomic import atomic_path
from polygvc.errors import ConfigError, PolygvcError
from polygvc.models.neg.dynamics import find_stable_equilibria
from polygvc.models.neg.equilibrium import Economy, NEGParams
from polygvc.models.neg.geography import (
    TradeCostParams,
    build_economy,
    province_economy,
    racetrack_distances,
)
from polygvc.models.neg.mapping import SIZE_MEASURES, equilibrium_summary

logger = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, Any] = {
    "geography": {
        "kind": "racetrack",
        "n_cities": 6,
        "circumference_km": 600.0,
        "gateway": None,
        "province_code": None,
        "gateway_city_code": None,
    },
    "model": {f.name: f.default for f in fields(NEGParams)},
    "trade_costs": {f.name: f.default for f in fields(TradeCostParams)},
    "infrastructure": {"highway": 0.0, "hsr": 0.0, "comm": 0.0, "spending": 0.0},
    "grid": {},
    "dynamics": {
        "n_starts": 20,
        "seed": 0,
        "cluster_tol": 1e-4,
        "gamma": 1.0,
        "dt": 10.0,
        "max_share_step": 0.02,
        "max_steps": 5000,
        "tol": 1e-7,
    },
    "size_measure": "gdp",
    "max_equilibria": 8,
    "dask": {
        "enabled": True,
        "n_workers": 2,
        "threads_per_worker": 1,
        "processes": True,
        "scheduler_address": None,
    },
    "output": None,
}

GRID_SECTIONS = ("model", "trade_costs", "infrastructure")
PER_EQUILIBRIUM = (
    "gvc_position",
    "dvar",
    "rank_size_slope",
    "primacy",
    "hhi_norm",
    "entropy_norm",
    "mean_real_wage",
)


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``config`` over :data:`DEFAULT_CONFIG` and validate keys and values.

    Raises
    ------
    ConfigError
        Unknown keys (the message lists the valid ones), grid keys that are not
        parameters, empty grids, or an unknown geography kind or size measure.
    """
    resolved = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in config.items():
        if key not in resolved:
            raise ConfigError(
                f"Unknown sweep configuration key {key!r}; valid keys: "
                f"{', '.join(sorted(resolved))}."
            )
        if isinstance(resolved[key], dict) and key != "grid":
            if not isinstance(value, Mapping):
                raise ConfigError(f"Sweep configuration key {key!r} must be a table (mapping).")
            for sub, sub_value in value.items():
                if sub not in resolved[key]:
                    raise ConfigError(
                        f"Unknown key {key}.{sub}; valid keys: {', '.join(sorted(resolved[key]))}."
                    )
                resolved[key][sub] = sub_value
        else:
            resolved[key] = copy.deepcopy(value)
    valid_grid = {name: section for section in GRID_SECTIONS for name in resolved[section]}
    for name, values in resolved["grid"].items():
        if name not in valid_grid:
            raise ConfigError(
                f"Grid key {name!r} is not a model, trade-cost or infrastructure parameter; "
                f"valid keys: {', '.join(sorted(valid_grid))}."
            )
        if np.ndim(values) != 1 or len(values) == 0:
            raise ConfigError(f"Grid key {name!r} must list at least one value, got {values!r}.")
    if resolved["geography"]["kind"] not in ("racetrack", "province"):
        raise ConfigError(
            f"geography.kind={resolved['geography']['kind']!r}; valid: racetrack, province."
        )
    if (
        resolved["geography"]["kind"] == "province"
        and resolved["geography"]["province_code"] is None
    ):
        raise ConfigError("geography.kind = 'province' needs geography.province_code, e.g. 44.")
    if resolved["size_measure"] not in SIZE_MEASURES:
        raise ConfigError(
            f"size_measure={resolved['size_measure']!r}; valid: {', '.join(SIZE_MEASURES)}."
        )
    return resolved


def economy_from_config(config: Mapping[str, Any], point: Mapping[str, float]) -> Economy:
    """Build the economy of one grid point from a resolved configuration."""
    sections = {name: dict(config[name]) for name in GRID_SECTIONS}
    for name, value in point.items():
        for section in GRID_SECTIONS:
            if name in sections[section]:
                sections[section][name] = value
    params = NEGParams(**sections["model"])
    costs = TradeCostParams(**sections["trade_costs"])
    infra = sections["infrastructure"]
    geo = config["geography"]
    if geo["kind"] == "province":
        return province_economy(
            int(geo["province_code"]),
            params,
            costs,
            highway=infra["highway"],
            hsr=infra["hsr"],
            comm=infra["comm"],
            spending=float(infra["spending"]),
            gateway_city_code=geo["gateway_city_code"],
        )
    n = int(geo["n_cities"])
    return build_economy(
        np.zeros(n),
        np.zeros(n),
        np.ones(n),
        params,
        costs,
        highway=infra["highway"],
        hsr=infra["hsr"],
        comm=infra["comm"],
        spending=float(infra["spending"]),
        gateway=geo["gateway"],
        names=tuple(f"city {i}" for i in range(n)),
        distance_km=racetrack_distances(n, float(geo["circumference_km"])),
    )


def run_point(config: Mapping[str, Any], point: Mapping[str, float]) -> dict[str, Any]:
    """Find and summarise the stable equilibria at one grid point.

    Returns a dict of NumPy arrays padded to ``max_equilibria``, or with
    ``error`` set to the message of a :class:`~polygvc.errors.PolygvcError`.
    """
    max_eq = int(config["max_equilibria"])
    try:
        economy = economy_from_config(config, point)
        dyn = dict(config["dynamics"])
        n_starts, seed, cluster_tol = dyn.pop("n_starts"), dyn.pop("seed"), dyn.pop("cluster_tol")
        found = find_stable_equilibria(
            economy, int(n_starts), int(seed), cluster_tol=float(cluster_tol), **dyn
        )
        summary = equilibrium_summary(economy, found.equilibrium, config["size_measure"])
    except PolygvcError as error:
        logger.warning("sweep point %s failed: %s", dict(point), error)
        return {"error": str(error)}
    n_eq = found.basin_count.size
    if n_eq > max_eq:
        logger.warning(
            "sweep point %s has %d distinct equilibria; keeping the %d largest basins",
            dict(point),
            n_eq,
            max_eq,
        )
    keep = min(n_eq, max_eq)
    out: dict[str, Any] = {
        "error": "",
        "n_equilibria": n_eq,
        "cities": list(summary["city"].values),
    }
    basin = np.zeros(max_eq)
    basin[:keep] = found.basin_count[:keep]
    out["basin_count"] = basin
    for name in PER_EQUILIBRIUM:
        values = np.full(max_eq, np.nan)
        values[:keep] = summary[name].values[:keep]
        out[name] = values
    lam = np.full((max_eq, economy.n_cities), np.nan)
    lam[:keep] = found.lam_m[:keep]
    out["lam_m"] = lam
    return out


def _client(dask_config: Mapping[str, Any]):
    from dask.distributed import Client, LocalCluster

    if dask_config["scheduler_address"]:
        return Client(dask_config["scheduler_address"]), None
    cluster = LocalCluster(
        n_workers=int(dask_config["n_workers"]),
        threads_per_worker=int(dask_config["threads_per_worker"]),
        processes=bool(dask_config["processes"]),
        dashboard_address=None,
    )
    return Client(cluster), cluster


def simulate_sweep(config: Mapping[str, Any]) -> xr.Dataset:
    """Run a parameter sweep of the centre-periphery model.

    Parameters
    ----------
    config : mapping
        Sweep configuration; see the module docstring for the keys. Missing
        keys take the values in :data:`DEFAULT_CONFIG`.

    Returns
    -------
    xarray.Dataset
        Dims: one per ``grid`` key (in the order given), ``equilibrium`` and
        ``city``. Variables over ``(grid..., equilibrium)``: ``basin_count``
        and :data:`PER_EQUILIBRIUM` (``gvc_position`` higher = more domestic
        service value added in exports; ``entropy_norm`` higher = more
        polycentric; ``primacy``, ``hhi_norm`` higher = more monocentric;
        ``rank_size_slope`` closer to 0 = more polycentric); ``lam_m`` over
        ``(grid..., equilibrium, city)``; per grid point ``n_equilibria``,
        ``error`` (empty string when the point succeeded) and, for each
        per-equilibrium variable, ``<name>_basin_mean``, the mean over
        equilibria weighted by basin counts. Attr ``config`` holds the resolved
        configuration as JSON.

    Raises
    ------
    ConfigError
        Invalid configuration.
    polygvc.errors.ModelError
        Every grid point failed (the message of the first failure is given).

    Notes
    -----
    Grid points are independent and are mapped over dask workers
    (a :class:`dask.distributed.LocalCluster` with ``n_workers`` processes by
    default). The output file, if requested, is written with
    :func:`polygvc.atomic.atomic_path`, so it is complete or absent.
    """
    from polygvc.errors import ModelError

    resolved = resolve_config(config)
    grid = {name: list(values) for name, values in resolved["grid"].items()}
    names = list(grid)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if not points:
        points = [{}]
    logger.info("centre-periphery sweep: %d grid points", len(points))
    if resolved["dask"]["enabled"]:
        client, cluster = _client(resolved["dask"])
        try:
            futures = client.map(run_point, [resolved] * len(points), points, pure=False)
            results = client.gather(futures)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        results = [run_point(resolved, point) for point in points]

    succeeded = [r for r in results if not r["error"]]
    if not succeeded:
        raise ModelError(f"Every point of the sweep failed; first failure: {results[0]['error']}")
    max_eq = int(resolved["max_equilibria"])
    cities = succeeded[0]["cities"]
    shape = tuple(len(v) for v in grid.values())
    grid_dims = tuple(names)

    def stack(key: str, tail: tuple[int, ...]) -> np.ndarray:
        array = np.full((len(points), *tail), np.nan)
        for i, result in enumerate(results):
            if not result["error"]:
                array[i] = result[key]
        return array.reshape(shape + tail)

    data: dict[str, Any] = {
        "basin_count": (grid_dims + ("equilibrium",), stack("basin_count", (max_eq,))),
        "lam_m": (grid_dims + ("equilibrium", "city"), stack("lam_m", (max_eq, len(cities)))),
        "n_equilibria": (grid_dims, stack("n_equilibria", ())),
        "error": (
            grid_dims,
            np.array([r["error"] for r in results], dtype=object).reshape(shape),
        ),
    }
    basin = data["basin_count"][1]
    weights = basin / np.sum(basin, axis=-1, keepdims=True)
    for name in PER_EQUILIBRIUM:
        values = stack(name, (max_eq,))
        data[name] = (grid_dims + ("equilibrium",), values)
        valid = ~np.isnan(values) & (weights > 0)
        total = np.where(valid, weights, 0.0).sum(axis=-1)
        weighted = np.where(valid, values * weights, 0.0).sum(axis=-1)
        mean = np.full(total.shape, np.nan)
        np.divide(weighted, total, out=mean, where=total > 0)
        data[f"{name}_basin_mean"] = (grid_dims, mean)
    coords = {name: np.asarray(values) for name, values in grid.items()}
    coords["equilibrium"] = np.arange(max_eq)
    coords["city"] = np.asarray(cities, dtype=object)
    ds = xr.Dataset(data, coords=coords, attrs={"config": json.dumps(resolved, default=str)})
    ds["basin_count"].attrs["long_name"] = "random starts ending at this equilibrium"
    ds["gvc_position"].attrs["long_name"] = "domestic service value added / manufacturing exports"
    if resolved["output"]:
        with atomic_path(resolved["output"]) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")
        logger.info("wrote sweep to %s", resolved["output"])
    return ds
