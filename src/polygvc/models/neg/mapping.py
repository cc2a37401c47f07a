r"""Map model equilibria to the empirical measures: polycentricity and GVC position.

Polycentricity indices are computed on city sizes with the kernels of
:mod:`polygvc.data_prep.polycentricity`, the same ones applied to night-time
light in the province panel:

* ``rank_size_slope`` (<= 0; closer to 0 = more polycentric),
* ``primacy`` (largest city's share; higher = more monocentric),
* ``hhi_norm`` (normalised Herfindahl; higher = more monocentric),
* ``entropy_norm`` (normalised Shannon entropy; higher = more polycentric).

GVC-position proxy defined by the model: the share of domestic business-service
value added in the value of the province's manufacturing exports,

.. math::

   \mathrm{GVC}_p = \frac{\sum_{r \in p} X_r\, \alpha\, d_r}{\sum_{r \in p} X_r},
   \qquad d_r = 1 - \frac{\Phi_F (T^F_r)^{1-\sigma_S}}{(G^S_r)^{1-\sigma_S}},

where ``X_r`` is the export revenue of city ``r``'s manufacturers and ``d_r`` the
share of their service purchases bought from cities of the model rather than
abroad. Higher means more domestic upstream (service) content per unit of
exports, the sense in which a higher value places a province further upstream
in the value chain. The domestic value-added ratio of exports is
``DVAR_p = 1 - alpha + GVC_p`` (manufacturing labour is domestic value added; only
imported services are foreign value added).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from polygvc.data_prep.polycentricity import (
    entropy_normalised,
    hhi_normalised,
    primacy,
    rank_size_slope,
)
from polygvc.errors import ModelError
from polygvc.models.neg.equilibrium import Economy, ShortRunEquilibrium, province_sums

SIZE_MEASURES = ("gdp", "manufacturing")
POLYCENTRICITY_INDICES = {
    "rank_size_slope": rank_size_slope,
    "primacy": primacy,
    "hhi_norm": hhi_normalised,
    "entropy_norm": entropy_normalised,
}


def city_sizes(economy: Economy, eq: ShortRunEquilibrium, size: str = "gdp") -> np.ndarray:
    """Return city sizes (B, R): GDP ``Y_r`` or manufacturing employment ``L^M_r``.

    GDP is the sum of wages, which equals value added because profits are zero.
    Manufacturing employment can be zero in periphery cities, so its rank-size
    slope is NaN or very steep there; GDP stays positive while farm labour is.
    """
    if size == "gdp":
        return eq.income
    if size == "manufacturing":
        return eq.lam_m * economy.mobile_m()
    raise ModelError(f"Unknown size measure {size!r}; valid choices: {', '.join(SIZE_MEASURES)}.")


def gvc_position(economy: Economy, eq: ShortRunEquilibrium) -> tuple[np.ndarray, np.ndarray]:
    """Compute the GVC-position proxy and DVAR of each province's exports.

    Parameters
    ----------
    economy : Economy
        Model economy.
    eq : ShortRunEquilibrium
        Equilibrium for a batch of B allocations.

    Returns
    -------
    (ndarray, ndarray)
        ``GVC_p`` and ``DVAR_p``, shape (B, P), as in the module docstring.
        Higher GVC means more domestic service value added per unit of exports.

    Raises
    ------
    ModelError
        ``export_access = 0``: the province does not export, so the export
        shares are not defined.
    """
    if economy.params.export_access <= 0:
        raise ModelError(
            "The GVC-position proxy is not defined without a world market "
            "(export_access = 0): the province has no exports. Set export_access > 0."
        )
    alpha = economy.params.alpha
    weights = province_sums(eq.exports, economy.province, economy.n_provinces)
    service_va = province_sums(
        eq.exports * alpha * eq.domestic_service_share, economy.province, economy.n_provinces
    )
    gvc = service_va / weights
    return gvc, 1.0 - alpha + gvc


def equilibrium_summary(economy: Economy, eq: ShortRunEquilibrium, size: str = "gdp") -> xr.Dataset:
    """Summarise equilibria by polycentricity indices and the GVC proxy.

    Parameters
    ----------
    economy : Economy
        A one-province economy.
    eq : ShortRunEquilibrium
        Equilibria, batch dim becomes ``equilibrium``.
    size : {"gdp", "manufacturing"}
        City size measure for the polycentricity indices.

    Returns
    -------
    xarray.Dataset
        Dims ``(equilibrium, city)``. Variables: ``lam_m``, ``lam_s``,
        ``wage_m``, ``real_wage_m``, ``size``, ``domestic_service_share``
        per city, and per equilibrium the four polycentricity indices,
        ``gvc_position`` and ``dvar`` (NaN with the reason in the attrs
        ``gvc_note`` when there is no world market), and ``mean_real_wage``
        (worker-weighted real wage of mobile workers; higher = better off).

    Raises
    ------
    ModelError
        The economy has more than one province, or ``size`` is unknown.
    """
    if economy.n_provinces != 1:
        raise ModelError(
            f"equilibrium_summary takes a one-province economy; this one has "
            f"{economy.n_provinces}. Summarise each province's economy separately."
        )
    sizes = city_sizes(economy, eq, size)
    n_eq = sizes.shape[0]
    names = list(economy.names) if economy.names else [f"city {i}" for i in range(sizes.shape[1])]
    data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "lam_m": (("equilibrium", "city"), eq.lam_m),
        "lam_s": (("equilibrium", "city"), eq.lam_s),
        "wage_m": (("equilibrium", "city"), eq.wage_m),
        "real_wage_m": (("equilibrium", "city"), eq.real_wage_m),
        "size": (("equilibrium", "city"), sizes),
        "domestic_service_share": (("equilibrium", "city"), eq.domestic_service_share),
    }
    for name, kernel in POLYCENTRICITY_INDICES.items():
        data[name] = (("equilibrium",), np.array([kernel(row) for row in sizes]))
    attrs = {"size_measure": size}
    if economy.params.export_access > 0:
        gvc, dvar = gvc_position(economy, eq)
        data["gvc_position"] = (("equilibrium",), gvc[:, 0])
        data["dvar"] = (("equilibrium",), dvar[:, 0])
    else:
        data["gvc_position"] = (("equilibrium",), np.full(n_eq, np.nan))
        data["dvar"] = (("equilibrium",), np.full(n_eq, np.nan))
        attrs["gvc_note"] = "not applicable: no world market (export_access = 0)"
    mobile_m, mobile_s = economy.mobile_m(), economy.mobile_s()
    workers = eq.lam_m * mobile_m + eq.lam_s * mobile_s
    real_income = eq.lam_m * mobile_m * eq.real_wage_m + eq.lam_s * mobile_s * eq.real_wage_s
    data["mean_real_wage"] = (("equilibrium",), real_income.sum(axis=1) / workers.sum(axis=1))
    return xr.Dataset(data, coords={"equilibrium": np.arange(n_eq), "city": names}, attrs=attrs)
