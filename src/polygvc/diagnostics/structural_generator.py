r"""Structural panels from the centre-periphery model, with true interventional responses.

Each province-year of the panel is one short-run equilibrium of the
centre-periphery model of :mod:`polygvc.models.neg` on the province's real
prefecture geography (centroids and 2010 population) with its real
city-level high-speed-rail connections of that year. The polycentricity index
and the GVC position are computed from the equilibrium, so the true causal
response of an intervention is known by solving the model again under it.

Design
------
Provinces ``p``, years ``t``, prefecture cities ``r`` with 2010 population
shares ``s_r``.

1. Confounder. ``U_pt = sqrt(phi) U_p + sqrt(1 - phi) eta_pt`` with ``U_p``
   and ``eta_pt`` independent ``N(0, 1)``; ``phi`` is the province-level share
   of its variance. Nothing in the panel a model may use contains ``U``.
2. Instrument. A location-policy lever ``Z_pt ~ N(0, 1)`` (for example
   settlement incentives in secondary cities), drawn independently of ``U``.
   It moves where mobile workers live and enters neither trade costs nor
   production, so it affects the outcome only through the labour allocation.
3. Labour allocation. Manufacturing and service workers are spread over the
   province's cities by the tilt family

   .. math:: \lambda_r(\theta) = \frac{s_r^{\,1-\theta}}{\sum_k s_k^{\,1-\theta}},
             \qquad \theta_{pt} = \theta_{max}
             \tanh(\kappa_T U_{pt} + \pi Z_{pt} + \nu_{pt}),
             \quad \nu_{pt} \sim N(0, \sigma_\nu^2).

   ``theta = 0`` follows population, ``theta -> 1`` spreads workers evenly
   (more polycentric), ``theta < 0`` concentrates them in the largest cities.
   This is a location rule, not the model's long-run equilibrium: at the
   default parameters every stable long-run equilibrium puts each mobile group
   in one city, which leaves no variation to study.
4. Trade costs from great-circle distances and infrastructure
   (:func:`polygvc.models.neg.geography.trade_cost_matrix`): fixed highway and
   communication indices and each city's real HSR connection in year ``t``
   (1 from the first year on an open high-speed line, else 0). The gateway to
   the world market is the provincial capital (city code ``pp0100``), or the
   most populous city where the capital has no data.
5. Short-run equilibrium for ``lambda(theta_pt)``
   (:func:`polygvc.models.neg.equilibrium.solve_short_run`). The index
   ``x_pt`` is computed on city GDP with the panel's kernels. ``GVC_pt`` is
   the model's domestic service value added per unit of exports
   (:func:`polygvc.models.neg.mapping.gvc_position`).
6. Outcome, in percentage points of export value when the scale is 100:

   .. math:: y_{pt} = c \cdot \mathrm{GVC}_{pt} + a_p + \kappa_Y U_{pt}
             + \varepsilon_{pt},\quad a_p \sim N(0, \sigma_a^2),\
             \varepsilon_{pt} \sim N(0, \sigma_y^2).

``U`` raises both the dispersion ``theta`` (``kappa_T``) and the outcome
(``kappa_Y``), so a regression of ``y`` on ``x`` is biased. ``Z`` moves ``x``
and reaches ``y`` only through it, so it is a valid instrument by
construction.

True responses
--------------
Both are computed per province-year by solving the short-run equilibrium again,
with ``a_p``, ``U_pt`` and ``eps_pt`` held fixed:

* ``do(x := x + Delta)``: the allocation is moved along the tilt family to the
  ``theta*`` at which the index of the new equilibrium equals ``x_pt + Delta``
  (the root nearest to ``theta_pt``, found by a grid bracket and Brent's
  method); the response is ``c (GVC(theta*) - GVC(theta_pt))``.
* ``do(hsr := h)``: every city's HSR index is set to ``h`` with the
  allocation held at ``lambda(theta_pt)``; the index moves with city wages,
  so this is the total effect of the infrastructure change. The response is
  ``c (GVC_new - GVC_pt)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from polygvc.data_prep.names import province_table
from polygvc.data_prep.polycentricity import (
    entropy_normalised,
    hhi_normalised,
    primacy,
    rank_size_slope,
)
from polygvc.errors import ConfigError, DataError, ModelError
from polygvc.models.neg.equilibrium import Economy, NEGParams, solve_short_run
from polygvc.models.neg.geography import TradeCostParams, build_economy
from polygvc.models.neg.mapping import gvc_position

logger = logging.getLogger(__name__)

__all__ = [
    "CITY_COLUMNS",
    "DEFAULT_YEARS",
    "INDEX_KERNELS",
    "StructuralPanel",
    "StructuralParams",
    "index_response",
    "load_structural_geography",
    "province_year_economy",
    "simulate_structural_panel",
    "tilt_allocation",
]

DEFAULT_YEARS: tuple[int, ...] = (2008, 2010, 2012, 2014, 2016, 2018)
MIN_CITIES = 5
"""Minimum prefectures of a default province, so the municipalities (one unit each) are left out."""

CITY_COLUMNS = ("province_code", "city_code", "lon", "lat", "pop2010", "hsr_first_year")
INDEX_KERNELS = {
    "poly_entropy_norm": entropy_normalised,
    "poly_primacy": primacy,
    "poly_hhi_norm": hhi_normalised,
    "poly_rank_size_all": rank_size_slope,
}
"""Panel index columns, each computed on the city GDP of the equilibrium."""

THETA_GRID = np.linspace(-1.0, 1.0, 81)
"""Dispersion values that bracket the root of ``index(theta) = target``."""


def _default_model() -> NEGParams:
    return NEGParams(sigma=5.0, mu=0.4, alpha=0.3, export_access=0.2, foreign_services=1.0)


@dataclass(frozen=True)
class StructuralParams:
    """Parameters of the structural panel (symbols of the module docstring).

    Attributes
    ----------
    model : NEGParams
        Centre-periphery parameters; the default (``sigma = 5``, ``mu = 0.4``,
        ``alpha = 0.3``, ``export_access = 0.2``, ``foreign_services = 1``) is
        the point of the Guangdong simulation study in ``docs/centre_periphery.md``.
    trade_costs : TradeCostParams
        Trade-cost parameters.
    highway, comm : float
        Highway and communication indices in [0, 1], the same in every city.
    index : str
        Polycentricity column used as the endogenous regressor and in
        ``do(x := x + Delta)``; one of :data:`INDEX_KERNELS`.
    dispersion_max : float
        ``theta_max`` in (0, 1).
    confounder_on_allocation, instrument_strength, allocation_noise_sd : float
        ``kappa_T``, ``pi`` and ``sigma_nu``.
    confounder_persistence : float
        ``phi`` in [0, 1], the province-level share of the confounder's variance.
    outcome_scale : float
        ``c``; 100 gives the outcome in percentage points of export value.
    confounder_on_outcome, intercept_sd, outcome_noise_sd : float
        ``kappa_Y``, ``sigma_a`` and ``sigma_y``, in outcome units.
    index_change : float
        ``Delta`` of ``do(x := x + Delta)``, in index units (not zero).
    hsr_target : float
        HSR index in [0, 1] given to every city by ``do(hsr := h)``.
    """

    model: NEGParams = field(default_factory=_default_model)
    trade_costs: TradeCostParams = field(default_factory=TradeCostParams)
    highway: float = 0.3
    comm: float = 0.5
    index: str = "poly_rank_size_all"
    dispersion_max: float = 0.6
    confounder_on_allocation: float = 0.5
    instrument_strength: float = 0.5
    allocation_noise_sd: float = 0.2
    confounder_persistence: float = 0.5
    outcome_scale: float = 100.0
    confounder_on_outcome: float = 0.05
    intercept_sd: float = 0.3
    outcome_noise_sd: float = 0.03
    index_change: float = 0.05
    hsr_target: float = 1.0

    def __post_init__(self) -> None:
        if self.index not in INDEX_KERNELS:
            raise ConfigError(
                f"StructuralParams.index = {self.index!r} is not a polycentricity column of the "
                f"structural panel. Fix: use one of {', '.join(INDEX_KERNELS)}."
            )
        if self.model.export_access <= 0:
            raise ConfigError(
                "StructuralParams.model.export_access must be > 0: the GVC outcome is defined "
                "only for a province that exports. Fix: set export_access to a positive value."
            )
        ranges = {
            "highway": (self.highway, 0.0, 1.0),
            "comm": (self.comm, 0.0, 1.0),
            "hsr_target": (self.hsr_target, 0.0, 1.0),
            "confounder_persistence": (self.confounder_persistence, 0.0, 1.0),
        }
        for name, (value, low, high) in ranges.items():
            if not low <= value <= high:
                raise ConfigError(
                    f"StructuralParams.{name} = {value!r} is outside [{low}, {high}]. "
                    f"Fix: set {name} to a value in that range."
                )
        if not 0.0 < self.dispersion_max < 1.0:
            raise ConfigError(
                f"StructuralParams.dispersion_max = {self.dispersion_max!r} must lie in (0, 1): "
                "at theta = 1 every city holds the same share, beyond it the ranking inverts. "
                "Fix: use a value such as 0.6."
            )
        for name in ("allocation_noise_sd", "intercept_sd", "outcome_noise_sd"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"StructuralParams.{name} = {getattr(self, name)!r} is a standard deviation "
                    "and must be >= 0."
                )
        if self.outcome_scale <= 0:
            raise ConfigError(
                f"StructuralParams.outcome_scale = {self.outcome_scale!r} must be > 0."
            )
        if self.index_change == 0 or not np.isfinite(self.index_change):
            raise ConfigError(
                f"StructuralParams.index_change = {self.index_change!r} must be finite and "
                "non-zero: it is the change of the index under do(x := x + Delta)."
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-ready dict (nested dataclasses as dicts)."""
        return asdict(self)


@dataclass
class StructuralPanel:
    """Structural panel, its city geography and the truth.

    Attributes
    ----------
    panel : pandas.DataFrame
        One row per province-year (columns in :func:`simulate_structural_panel`).
    cities : pandas.DataFrame
        The city table used (:data:`CITY_COLUMNS`).
    truth : dict
        Parameters, seed, sizes and the true responses averaged per province
        and over provinces.
    """

    panel: pd.DataFrame
    cities: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- geography


def load_structural_geography(province_codes: Iterable[int] | None = None) -> pd.DataFrame:
    """Load prefecture centroids, 2010 population and first HSR year through the data registry.

    Parameters
    ----------
    province_codes : iterable of int, optional
        Two-digit province codes; None takes every mainland province with at
        least :data:`MIN_CITIES` prefectures that have coordinates and 2010
        population (27 provinces with the registered files).

    Returns
    -------
    pandas.DataFrame
        :data:`CITY_COLUMNS`, one row per prefecture; ``hsr_first_year`` is
        NaN for a city never on an open high-speed line.

    Raises
    ------
    DataError
        A requested province has fewer than 2 such prefectures.
    """
    from polygvc.data_prep.geography import prefecture_centroids
    from polygvc.data_prep.infrastructure import hsr_first_year

    table = prefecture_centroids().dropna(subset=["lon", "lat", "pop2010"])
    counts = table.groupby("province_code").size()
    if province_codes is None:
        codes = sorted(int(c) for c, n in counts.items() if n >= MIN_CITIES)
    else:
        codes = [int(c) for c in province_codes]
        for code in codes:
            if counts.get(code, 0) < 2:
                raise DataError(
                    f"Province code {code} has {int(counts.get(code, 0))} prefectures with "
                    "coordinates and 2010 population; the structural panel needs at least 2. "
                    "Fix: leave it out of province_codes (the municipalities have one unit)."
                )
    table = table.loc[table["province_code"].isin(codes)]
    first = hsr_first_year()[["city_code", "hsr_first_year"]]
    table = table.merge(first, on="city_code", how="left", validate="one_to_one")
    table["hsr_first_year"] = table["hsr_first_year"].astype(float)
    return table[list(CITY_COLUMNS)].sort_values(["province_code", "city_code"], ignore_index=True)


def _check_cities(cities: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in CITY_COLUMNS if c not in cities.columns]
    if missing:
        raise DataError(
            f"The city table lacks columns {missing}. Fix: build it with "
            "load_structural_geography(), or give the columns "
            f"{', '.join(CITY_COLUMNS)} (hsr_first_year NaN = never connected)."
        )

    values = cities[["lon", "lat", "pop2010"]].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1) | (values[:, 2] <= 0)
    if bad.any():
        row = cities.loc[bad].iloc[0]
        population = float(row["pop2010"])
        raise DataError(
            f"City {int(row['city_code'])} of province {int(row['province_code'])} has a missing "
            f"coordinate or a population that is not positive (pop2010 = {population!r}). "
            "Fix: drop the city or fill lon, lat and pop2010."
        )

    known = set(province_table()["province_code"].astype(int))
    unknown = sorted(set(cities["province_code"].astype(int)) - known)
    if unknown:
        raise DataError(
            f"The city table has province codes {unknown} that are not mainland provinces. "
            "Fix: use 2-digit codes such as 44 (Guangdong)."
        )

    small = cities.groupby("province_code").size()
    small = small[small < 2]
    if len(small):
        raise DataError(
            f"Provinces {small.index.tolist()} have fewer than 2 cities in the city table; a "
            "province needs at least 2 for a distribution of city sizes. Fix: drop them."
        )
    return cities.sort_values(["province_code", "city_code"], ignore_index=True)


def _gateway(cities: pd.DataFrame, province_code: int) -> int:
    """Position of the capital (code ``pp0100``), else of the most populous city."""
    codes = cities["city_code"].to_numpy()
    capital = np.flatnonzero(codes == province_code * 10000 + 100)
    if capital.size:
        return int(capital[0])
    return int(np.argmax(cities["pop2010"].to_numpy(dtype=float)))


def province_year_economy(
    cities: pd.DataFrame,
    year: int,
    params: StructuralParams,
    hsr: float | np.ndarray | None = None,
) -> Economy:
    """Build the economy of one province in one year.

    Parameters
    ----------
    cities : pandas.DataFrame
        The province's rows of the city table (:data:`CITY_COLUMNS`).
    year : int
        Calendar year; a city's HSR index is 1 from ``hsr_first_year`` on.
    params : StructuralParams
        Model, trade-cost and infrastructure parameters.
    hsr : float or ndarray, optional
        HSR index per city overriding the real connections (used by
        ``do(hsr := h)``).

    Returns
    -------
    Economy
        A one-province economy, cities in ``city_code`` order.
    """
    cities = cities.sort_values("city_code")
    province_code = int(cities["province_code"].iloc[0])
    if hsr is None:
        hsr = _hsr_index(cities, year)
    return build_economy(
        cities["lon"],
        cities["lat"],
        cities["pop2010"],
        params.model,
        params.trade_costs,
        highway=params.highway,
        hsr=hsr,
        comm=params.comm,
        gateway=_gateway(cities, province_code),
        names=tuple(str(c) for c in cities["city_code"]),
    )


def _hsr_index(cities: pd.DataFrame, year: int) -> np.ndarray:
    first = cities["hsr_first_year"].to_numpy(dtype=float)
    return np.where(np.isfinite(first) & (first <= year), 1.0, 0.0)


# --------------------------------------------------------------------------- kernels


def tilt_allocation(shares: np.ndarray, theta: np.ndarray | float) -> np.ndarray:
    """Return the labour allocations ``s^(1 - theta) / sum(s^(1 - theta))``, shape (B, R).

    Parameters
    ----------
    shares : ndarray, shape (R,)
        Positive population shares of the province's cities.
    theta : float or ndarray, shape (B,)
        Dispersion; 0 follows ``shares``, 1 is uniform.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    log_weights = (1.0 - theta)[:, None] * np.log(np.asarray(shares, dtype=float))[None, :]
    log_weights -= log_weights.max(axis=1, keepdims=True)
    weights = np.exp(log_weights)
    return weights / weights.sum(axis=1, keepdims=True)


def _evaluate(
    economy: Economy, shares: np.ndarray, theta: np.ndarray, index: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the equilibria of a batch of dispersions: (index, GVC, all four indices)."""
    eq = solve_short_run(economy, tilt_allocation(shares, theta))
    gvc, _ = gvc_position(economy, eq)
    table = np.array([[kernel(row) for kernel in INDEX_KERNELS.values()] for row in eq.income])
    column = list(INDEX_KERNELS).index(index)
    return table[:, column], gvc[:, 0], table


def index_response(
    economy: Economy, shares: np.ndarray, theta: float, change: float, index: str
) -> tuple[float, float]:
    """Find the dispersion that moves the index by ``change``; return it and the new GVC.

    Parameters
    ----------
    economy : Economy
        The province-year economy.
    shares : ndarray, shape (R,)
        Population shares of its cities.
    theta : float
        Observed dispersion ``theta_pt``.
    change : float
        ``Delta``, in index units.
    index : str
        Index column (a key of :data:`INDEX_KERNELS`).

    Returns
    -------
    (float, float)
        ``theta*`` and ``GVC(theta*)``.

    Raises
    ------
    ModelError
        No dispersion in [-1, 1] reaches the target index; the message gives
        the reachable range and the fix.

    Notes
    -----
    ``index(theta) - target`` is evaluated on :data:`THETA_GRID` in one
    batched solve; among the sign changes, the one nearest to ``theta`` is
    refined with Brent's method to ``|theta* - root| < 1e-12``.
    """
    baseline, _, _ = _evaluate(economy, shares, np.array([theta]), index)
    target = float(baseline[0]) + change
    values, _, _ = _evaluate(economy, shares, THETA_GRID, index)
    gaps = values - target
    crossings = np.flatnonzero(np.sign(gaps[:-1]) * np.sign(gaps[1:]) <= 0)
    if crossings.size == 0:
        raise ModelError(
            f"do({index} := {baseline[0]:.6g} + {change:g}) is out of reach: along the "
            f"allocation family theta in [-1, 1] the index ranges over [{np.nanmin(values):.6g}, "
            f"{np.nanmax(values):.6g}]. Fix: use a smaller StructuralParams.index_change."
        )
    centres = 0.5 * (THETA_GRID[crossings] + THETA_GRID[crossings + 1])
    k = int(crossings[np.argmin(np.abs(centres - theta))])

    def gap(value: float) -> float:
        found, _, _ = _evaluate(economy, shares, np.array([value]), index)
        return float(found[0]) - target

    low, high = THETA_GRID[k], THETA_GRID[k + 1]
    if gaps[k] == 0:
        root = low
    elif gaps[k + 1] == 0:
        root = high
    else:
        root = brentq(gap, low, high, xtol=1e-12)
    _, gvc, _ = _evaluate(economy, shares, np.array([root]), index)
    return float(root), float(gvc[0])


# --------------------------------------------------------------------------- generator


def _check_years(years: Sequence[int]) -> list[int]:
    values = [int(y) for y in years]
    if not values or len(set(values)) != len(values):
        raise ConfigError(
            f"years = {list(years)!r} must be a non-empty list of distinct calendar years. "
            f"Fix: pass for example {list(DEFAULT_YEARS)}."
        )
    return sorted(values)


def simulate_structural_panel(
    province_codes: Iterable[int] | None = None,
    years: Sequence[int] = DEFAULT_YEARS,
    *,
    params: StructuralParams | None = None,
    seed: int = 0,
    cities: pd.DataFrame | None = None,
) -> StructuralPanel:
    """Simulate a province-year panel from the centre-periphery model with known responses.

    Parameters
    ----------
    province_codes : iterable of int, optional
        Provinces to include; None takes those of ``cities``, or every province
        with at least :data:`MIN_CITIES` prefectures when ``cities`` is None.
    years : sequence of int, default :data:`DEFAULT_YEARS`
        Calendar years (they set the real HSR connections).
    params : StructuralParams, optional
        Parameters; defaults when None.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed and inputs give
        an identical panel.
    cities : pandas.DataFrame, optional
        City table (:data:`CITY_COLUMNS`); loaded with
        :func:`load_structural_geography` when None.

    Returns
    -------
    StructuralPanel
        The ``panel`` has one row per province-year with these columns:

        * keys ``province``, ``province_code``, ``region``, ``year`` and
          ``n_cities``;
        * the four index columns of :data:`INDEX_KERNELS`;
        * ``gvc_position`` (outcome ``y``) and ``gvc_structural``
          (``c GVC``, without intercept, confounder or noise);
        * ``location_policy`` (instrument ``Z``) and ``hsr_city_share``
          (share of the province's cities on HSR);
        * ``dispersion`` (``theta``) and ``dispersion_do`` (``theta*``);
        * ``true_effect_index`` and ``true_effect_hsr``, the true responses
          in outcome units;
        * ``confounder_u``, which a model must not use.

    Raises
    ------
    ConfigError
        Invalid parameters or years.
    DataError
        Invalid city table or unknown provinces.
    ModelError
        An equilibrium does not converge, or ``do(x := x + Delta)`` is out of
        reach for some province-year.

    Notes
    -----
    The design and the two interventions are in the module docstring.
    """
    params = params or StructuralParams()
    year_list = _check_years(years)
    if cities is None:
        cities = load_structural_geography(province_codes)
    cities = _check_cities(cities)
    if province_codes is not None:
        codes = [int(c) for c in province_codes]
        absent = sorted(set(codes) - set(cities["province_code"].astype(int)))
        if absent:
            raise DataError(
                f"Provinces {absent} in province_codes have no rows in the city table. "
                "Fix: remove them or add their cities."
            )
        cities = cities.loc[cities["province_code"].isin(codes)].reset_index(drop=True)
    codes = sorted(int(c) for c in cities["province_code"].unique())
    names = province_table().set_index("province_code")

    rng = np.random.default_rng(seed)
    n_prov, n_year = len(codes), len(year_list)
    province_u = rng.normal(size=n_prov)
    intercept = rng.normal(0.0, params.intercept_sd, n_prov)
    year_u = rng.normal(size=(n_prov, n_year))
    policy = rng.normal(size=(n_prov, n_year))
    allocation_noise = rng.normal(0.0, params.allocation_noise_sd, (n_prov, n_year))
    outcome_noise = rng.normal(0.0, params.outcome_noise_sd, (n_prov, n_year))
    phi = params.confounder_persistence
    confounder = np.sqrt(phi) * province_u[:, None] + np.sqrt(1.0 - phi) * year_u
    theta = params.dispersion_max * np.tanh(
        params.confounder_on_allocation * confounder
        + params.instrument_strength * policy
        + allocation_noise
    )

    scale = params.outcome_scale
    rows = []
    for i, code in enumerate(codes):
        own = cities.loc[cities["province_code"] == code]
        pop = own["pop2010"].to_numpy(dtype=float)
        shares = pop / pop.sum()
        for j, year in enumerate(year_list):
            economy = province_year_economy(own, year, params)
            _, gvc, table = _evaluate(economy, shares, theta[i, j : j + 1], params.index)
            theta_star, gvc_star = index_response(
                economy, shares, float(theta[i, j]), params.index_change, params.index
            )
            full = np.full(len(own), params.hsr_target)
            hsr_economy = province_year_economy(own, year, params, hsr=full)
            _, gvc_hsr, _ = _evaluate(hsr_economy, shares, theta[i, j : j + 1], params.index)
            structural = scale * float(gvc[0])
            rows.append(
                {
                    "province": names.loc[code, "province"],
                    "province_code": code,
                    "region": names.loc[code, "region"],
                    "year": year,
                    "n_cities": len(own),
                    **dict(zip(INDEX_KERNELS, table[0], strict=True)),
                    "gvc_position": structural
                    + intercept[i]
                    + params.confounder_on_outcome * confounder[i, j]
                    + outcome_noise[i, j],
                    "gvc_structural": structural,
                    "location_policy": float(policy[i, j]),
                    "hsr_city_share": float(_hsr_index(own, year).mean()),
                    "dispersion": float(theta[i, j]),
                    "dispersion_do": theta_star,
                    "true_effect_index": scale * (gvc_star - float(gvc[0])),
                    "true_effect_hsr": scale * (float(gvc_hsr[0]) - float(gvc[0])),
                    "confounder_u": float(confounder[i, j]),
                }
            )
        logger.debug("Structural panel: province %d solved for %d years", code, n_year)
    panel = pd.DataFrame(rows)
    panel["province_code"] = panel["province_code"].astype("int64")
    panel["year"] = panel["year"].astype("int64")
    panel["n_cities"] = panel["n_cities"].astype("int64")
    truth = _truth(panel, cities, params, seed, year_list)
    return StructuralPanel(panel=panel, cities=cities, truth=truth)


def _truth(
    panel: pd.DataFrame,
    cities: pd.DataFrame,
    params: StructuralParams,
    seed: int,
    years: list[int],
) -> dict[str, Any]:
    by_province = panel.groupby("province", sort=False)
    index_effect = by_province["true_effect_index"].mean()
    hsr_effect = by_province["true_effect_hsr"].mean()
    return {
        "description": (
            "Structural panel from the centre-periphery model; symbols as in "
            "polygvc.diagnostics.structural_generator. effect_index[province] is the mean over "
            "the panel years of the change in gvc_position under do(index := index + "
            "index_change); effect_hsr[province] the mean change under do(every city's HSR "
            "index := hsr_target), allocation held."
        ),
        "seed": int(seed),
        "params": params.to_dict(),
        "index": params.index,
        "index_change": params.index_change,
        "hsr_target": params.hsr_target,
        "years": years,
        "n_provinces": int(panel["province"].nunique()),
        "n_province_years": len(panel),
        "n_cities": len(cities),
        "effect_index": {str(k): float(v) for k, v in index_effect.items()},
        "effect_hsr": {str(k): float(v) for k, v in hsr_effect.items()},
        "effect_index_average": float(index_effect.mean()),
        "effect_hsr_average": float(hsr_effect.mean()),
    }
