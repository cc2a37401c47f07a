r"""Trade costs from distance and infrastructure, and model geographies.

Trade-cost function (an extension to FKV 1999, which take ``T`` as given):

.. math::

   T_{ij} = 1 + \tau_0 \left(\frac{d_{ij}}{d_0}\right)^{\delta}
            \exp\!\left(-\theta_h h_{ij} - \theta_r r_{ij} - \theta_c c_{ij}\right),
   \qquad T^S_{ij} = 1 + \kappa_S (T_{ij} - 1),

with ``d_ij`` the great-circle distance in km, ``d_0`` a reference distance
(100 km by default), and ``h``, ``r``, ``c`` highway, high-speed-rail and
communication indices in [0, 1] (1 = full coverage). A pair's index is the mean
of its two cities' indices. ``kappa_S`` >= 1 makes services costlier to trade
than goods (face-to-face delivery). ``T_ii = 1``.

The government lever of province ``p`` is infrastructure spending
``g_p`` in [0, 1], the fraction of each city's infrastructure gap it closes:
``x_i <- x_i + g_p (1 - x_i)`` for every index ``x`` and city ``i`` in ``p``.

The world market is reached through a gateway city ``k`` (a port): city ``r``
exports at ``T^W_r = T_world T_{rk}`` and buys foreign services at
``T^F_r = T_world T^S_{rk}``. Without a gateway every city faces ``T_world``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from polygvc.errors import DataError, ModelError
from polygvc.models.neg.equilibrium import Economy, NEGParams

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class TradeCostParams:
    """Parameters of the trade-cost function (see the module docstring).

    Parameters
    ----------
    tau0 : float
        Scale of distance costs (>= 0); 0 means free trade.
    delta : float
        Elasticity of trade costs with respect to distance (> 0).
    distance_scale_km : float
        Reference distance ``d_0`` in km.
    theta_highway, theta_hsr, theta_comm : float
        Semi-elasticities of the cost margin in the highway, high-speed-rail and
        communication indices (>= 0); higher means infrastructure cuts costs more.
    service_cost_factor : float
        ``kappa_S`` >= 1 relative cost margin of services.
    world_cost : float
        Iceberg cost ``T_world`` >= 1 between the gateway and the world market.
    """

    tau0: float = 0.5
    delta: float = 0.5
    distance_scale_km: float = 100.0
    theta_highway: float = 0.4
    theta_hsr: float = 0.4
    theta_comm: float = 0.2
    service_cost_factor: float = 2.0
    world_cost: float = 1.5

    def __post_init__(self) -> None:
        rules = {
            "tau0": self.tau0 >= 0,
            "delta": self.delta > 0,
            "distance_scale_km": self.distance_scale_km > 0,
            "theta_highway": self.theta_highway >= 0,
            "theta_hsr": self.theta_hsr >= 0,
            "theta_comm": self.theta_comm >= 0,
            "service_cost_factor": self.service_cost_factor >= 1,
            "world_cost": self.world_cost >= 1,
        }
        for name, valid in rules.items():
            value = getattr(self, name)
            if not valid or not np.isfinite(value):
                raise ModelError(
                    f"Invalid trade-cost parameter {name}={value!r}. tau0 and the theta "
                    "values must be >= 0, delta and distance_scale_km > 0, "
                    "service_cost_factor and world_cost >= 1."
                )


def great_circle_km(lon: npt.ArrayLike, lat: npt.ArrayLike) -> np.ndarray:
    """Compute the matrix of great-circle distances (haversine, km) between points.

    Parameters
    ----------
    lon, lat : array_like, shape (R,)
        Longitude and latitude in degrees.

    Returns
    -------
    ndarray, shape (R, R)
        Symmetric distances with a zero diagonal, on a sphere of radius
        6371.0088 km (the IUGG mean Earth radius).
    """
    lon_r = np.radians(np.asarray(lon, float))
    lat_r = np.radians(np.asarray(lat, float))
    dlat = lat_r[:, None] - lat_r[None, :]
    dlon = lon_r[:, None] - lon_r[None, :]
    h = (
        np.sin(dlat / 2) ** 2
        + np.cos(lat_r[:, None]) * np.cos(lat_r[None, :]) * np.sin(dlon / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _pair_index(values: npt.ArrayLike | float, n: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape == (n,):
        array = 0.5 * (array[:, None] + array[None, :])
    if array.shape != (n, n):
        raise ModelError(
            f"Infrastructure index {name} has shape {array.shape}; give a scalar, one "
            f"value per city ({n},) or one per city pair ({n}, {n})."
        )
    if np.any(array < 0) or np.any(array > 1) or not np.all(np.isfinite(array)):
        raise ModelError(f"Infrastructure index {name} must lie in [0, 1] (1 = full coverage).")
    return array


def trade_cost_matrix(
    distance_km: npt.ArrayLike,
    costs: TradeCostParams,
    highway: npt.ArrayLike | float = 0.0,
    hsr: npt.ArrayLike | float = 0.0,
    comm: npt.ArrayLike | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Build goods and service iceberg costs from distance and infrastructure.

    Parameters
    ----------
    distance_km : array_like, shape (R, R)
        Great-circle distances in km.
    costs : TradeCostParams
        Trade-cost parameters.
    highway, hsr, comm : float or array_like
        Infrastructure indices in [0, 1], per city (R,) or per pair (R, R).

    Returns
    -------
    (ndarray, ndarray)
        ``T`` and ``T^S``, shape (R, R), both >= 1 with unit diagonal.

    Notes
    -----
    ``T_ij = 1 + tau0 (d_ij / d_0)^delta exp(-theta_h h_ij - theta_r r_ij -
    theta_c c_ij)`` and ``T^S_ij = 1 + kappa_S (T_ij - 1)``; this functional
    form is this module's extension of FKV (1999), who treat ``T`` as a
    parameter. Higher infrastructure indices mean lower trade costs.
    """
    distance = np.asarray(distance_km, dtype=float)
    n = distance.shape[0]
    if distance.shape != (n, n) or np.any(distance < 0):
        raise ModelError(
            f"distance_km must be a square matrix of non-negative km, got shape {distance.shape}."
        )
    h = _pair_index(highway, n, "highway")
    r = _pair_index(hsr, n, "hsr")
    c = _pair_index(comm, n, "comm")
    margin = (
        costs.tau0
        * (distance / costs.distance_scale_km) ** costs.delta
        * np.exp(-costs.theta_highway * h - costs.theta_hsr * r - costs.theta_comm * c)
    )
    np.fill_diagonal(margin, 0.0)
    return 1.0 + margin, 1.0 + costs.service_cost_factor * margin


def apply_spending(index: npt.ArrayLike | float, spending: float, name: str) -> np.ndarray | float:
    """Close a fraction ``spending`` in [0, 1] of the gap between an index and full coverage."""
    if not 0.0 <= spending <= 1.0:
        raise ModelError(
            f"Infrastructure spending for {name} is {spending!r}; it is the fraction of the "
            "infrastructure gap closed and must lie in [0, 1]."
        )
    array = np.asarray(index, dtype=float)
    return array + spending * (1.0 - array)


def build_economy(
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    population: npt.ArrayLike,
    params: NEGParams,
    costs: TradeCostParams,
    *,
    highway: npt.ArrayLike | float = 0.0,
    hsr: npt.ArrayLike | float = 0.0,
    comm: npt.ArrayLike | float = 0.0,
    spending: float = 0.0,
    gateway: int | None = None,
    names: tuple[str, ...] = (),
    distance_km: npt.ArrayLike | None = None,
) -> Economy:
    """Build a one-province economy from city locations and populations.

    Parameters
    ----------
    lon, lat : array_like, shape (R,)
        City coordinates in degrees (ignored when ``distance_km`` is given).
    population : array_like, shape (R,)
        City populations; immobile labour is ``A_r = (1 - mu) pop_r / sum(pop)``
        and the province's mobile labour is ``mu``, so total labour is 1 as in
        FKV (1999).
    params : NEGParams
        Model parameters.
    costs : TradeCostParams
        Trade-cost parameters.
    highway, hsr, comm : float or array_like
        Infrastructure indices in [0, 1] per city or pair.
    spending : float, default 0
        Infrastructure spending ``g`` in [0, 1] (the government lever).
    gateway : int or None
        Position of the gateway (port) city; None gives every city the cost
        ``world_cost`` to the world market.
    names : tuple of str
        City names.
    distance_km : array_like or None
        Distance matrix in km overriding the great-circle distances.

    Returns
    -------
    Economy
        A one-province economy.

    Raises
    ------
    ModelError
        Invalid populations, indices, spending or gateway.
    """
    pop = np.asarray(population, dtype=float)
    n = pop.size
    if n < 2 or np.any(pop < 0) or pop.sum() <= 0 or not np.all(np.isfinite(pop)):
        raise ModelError(
            f"A model province needs at least 2 cities with non-negative finite population "
            f"and a positive total, got {n} cities with total {pop.sum()!r}."
        )
    distance = great_circle_km(lon, lat) if distance_km is None else np.asarray(distance_km)
    indices = {
        name: apply_spending(value, spending, name)
        for name, value in (("highway", highway), ("hsr", hsr), ("comm", comm))
    }
    t_goods, t_services = trade_cost_matrix(distance, costs, **indices)
    if gateway is None:
        export_cost = np.full(n, costs.world_cost)
        import_cost = np.full(n, costs.world_cost)
    else:
        if not 0 <= gateway < n:
            raise ModelError(f"gateway={gateway!r} is not a city position in 0..{n - 1}.")
        export_cost = costs.world_cost * t_goods[:, gateway]
        import_cost = costs.world_cost * t_services[:, gateway]
    return Economy(
        params=params,
        trade_cost=t_goods,
        service_trade_cost=t_services,
        export_cost=export_cost,
        import_cost=import_cost,
        immobile=(1.0 - params.mu) * pop / pop.sum(),
        province=np.zeros(n, dtype=int),
        mobile_labour=np.array([params.mu]),
        names=tuple(names),
    )


def racetrack_distances(n_cities: int, circumference_km: float = 1000.0) -> np.ndarray:
    """Compute distances between ``n_cities`` equally spaced on a circle (FKV 1999, ch. 6).

    The distance is the shorter arc, so every city has the same position, as in
    the racetrack economy of Fujita, Krugman and Venables (1999), chapter 6.
    """
    if n_cities < 2:
        raise ModelError(f"A racetrack economy needs at least 2 cities, got {n_cities}.")
    k = np.arange(n_cities)
    steps = np.abs(k[:, None] - k[None, :])
    steps = np.minimum(steps, n_cities - steps)
    return steps * circumference_km / n_cities


def prefecture_table(province_code: int) -> pd.DataFrame:
    """Load the prefecture centroids and 2010 populations of one province.

    Parameters
    ----------
    province_code : int
        Two-digit province code (for example 44 Guangdong, 32 Jiangsu).

    Returns
    -------
    pandas.DataFrame
        Columns ``city_code``, ``city_zh``, ``province_code``, ``lon``, ``lat``,
        ``pop2010``, one row per prefecture, sorted by ``city_code``.

    Raises
    ------
    DataError
        The province has fewer than 2 prefectures with coordinates and population.

    Notes
    -----
    Uses :func:`polygvc.data_prep.geography.prefecture_centroids` when that module
    exists; otherwise reads ``cityinfo.csv`` of Ma and Tang (2024) through the
    data registry (province = ``dzcode // 100``, population ``cpop2010`` in
    10,000 persons).
    """
    try:
        from polygvc.data_prep.geography import prefecture_centroids
    except ImportError:
        prefecture_centroids = None
    if prefecture_centroids is not None:
        table = prefecture_centroids()
        table = table.loc[table["province_code"] == province_code]
        table = table[["city_code", "city_zh", "province_code", "lon", "lat", "pop2010"]]
    else:
        from polygvc.data_prep.registry import fetch

        path = fetch("transport_ma_tang", "cityinfo.csv")
        raw = pd.read_csv(path)
        table = pd.DataFrame(
            {
                "city_code": raw["dzcode"].astype(int),
                "city_zh": raw["cityname_chn"].astype(str),
                "province_code": raw["dzcode"].astype(int) // 100,
                "lon": raw["coord_long"].astype(float),
                "lat": raw["coord_lat"].astype(float),
                "pop2010": raw["cpop2010"].astype(float),
            }
        )
        table = table.loc[table["province_code"] == province_code]
    table = table.dropna(subset=["lon", "lat", "pop2010"]).sort_values("city_code")
    if len(table) < 2:
        raise DataError(
            f"Province code {province_code} has {len(table)} prefectures with coordinates "
            "and 2010 population in the prefecture table; the model needs at least 2. "
            "Use a 2-digit mainland province code such as 44 (Guangdong) or 32 (Jiangsu)."
        )
    return table.reset_index(drop=True)


def province_economy(
    province_code: int,
    params: NEGParams,
    costs: TradeCostParams,
    *,
    highway: npt.ArrayLike | float = 0.0,
    hsr: npt.ArrayLike | float = 0.0,
    comm: npt.ArrayLike | float = 0.0,
    spending: float = 0.0,
    gateway_city_code: int | None = None,
) -> Economy:
    """Build the economy of one province from its prefecture geography.

    Parameters
    ----------
    province_code : int
        Two-digit province code.
    params, costs, highway, hsr, comm, spending
        As in :func:`build_economy`.
    gateway_city_code : int or None
        ``city_code`` of the gateway (port) prefecture in
        :func:`prefecture_table`, for example 440100 (Guangzhou) with the census
        centroids; None gives every city the same world-market cost.

    Returns
    -------
    Economy
        Cities ordered by prefecture code and named by their Chinese name.

    Raises
    ------
    DataError
        Unknown province or gateway code.
    """
    table = prefecture_table(province_code)
    gateway = None
    if gateway_city_code is not None:
        hits = np.flatnonzero(table["city_code"].to_numpy() == gateway_city_code)
        if hits.size == 0:
            raise DataError(
                f"Gateway city code {gateway_city_code} is not a prefecture of province "
                f"{province_code}; valid codes: {table['city_code'].tolist()}."
            )
        gateway = int(hits[0])
    return build_economy(
        table["lon"],
        table["lat"],
        table["pop2010"],
        params,
        costs,
        highway=highway,
        hsr=hsr,
        comm=comm,
        spending=spending,
        gateway=gateway,
        names=tuple(table["city_zh"]),
    )
