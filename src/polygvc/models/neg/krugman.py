r"""Two-region core-periphery model: break and sustain points, tomahawk diagram.

Two regions, ``alpha = 0``, no world market: FKV (1999) chapter 5, with
``rho = (sigma - 1) / sigma`` and trade cost ``T`` between the regions.

Sustain point. With all manufacturing in region 1 (``lambda = 1``),
``w_1 = G_1 = 1``, ``G_2 = T``, ``Y_1 = (1 + mu)/2`` and ``Y_2 = (1 - mu)/2``.
The wage equation gives the wage a firm in region 2 could pay,
``w_2^sigma = Y_1 T^{1-sigma} + Y_2 T^{sigma-1}``, so

.. math::

   \left(\frac{\omega_2}{\omega_1}\right)^{\sigma}
   = T^{-\mu\sigma}\left[\frac{1+\mu}{2} T^{1-\sigma}
   + \frac{1-\mu}{2} T^{\sigma-1}\right]

(FKV 1999, eq. 5.20). The core is sustainable while the ratio is below 1; the
sustain point ``T_s > 1`` is the root of ratio = 1 other than ``T = 1``. It
exists when ``rho > mu`` (no black hole): then the bracket grows like
``T^{sigma - 1 - mu sigma}`` with ``sigma - 1 - mu sigma = sigma (rho - mu) > 0``.

Break point. Linearising the wage equations around ``lambda = 1/2`` (FKV 1999,
section 5.4) gives ``d(omega_1 - omega_2)/d lambda = 0`` at

.. math::

   T_b^{1-\sigma} = \frac{(\rho - \mu)(1 - \mu)}{(\rho + \mu)(1 + \mu)}

(FKV 1999, eq. 5.26). The symmetric equilibrium is stable for ``T > T_b``
and unstable below; ``T_b < T_s``, so both are stable in ``(T_b, T_s)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import xarray as xr
from scipy import optimize

from polygvc.errors import ModelError
from polygvc.models.neg.equilibrium import Economy, NEGParams, solve_short_run


def _check_no_black_hole(sigma: float, mu: float) -> float:
    params = NEGParams(sigma=sigma, mu=mu)
    rho = (params.sigma - 1.0) / params.sigma
    if not rho > mu:
        raise ModelError(
            f"The no-black-hole condition rho > mu fails: rho = (sigma - 1)/sigma = {rho:.4g} "
            f"and mu = {mu:.4g}. Agglomeration then holds at every trade cost, so there is no "
            "break or sustain point. Raise sigma or lower mu."
        )
    return rho


def two_region_economy(trade_cost: float, sigma: float, mu: float) -> Economy:
    """Build the symmetric two-region Krugman (1991) economy with trade cost ``T``."""
    params = NEGParams(sigma=sigma, mu=mu)
    t = np.array([[1.0, trade_cost], [trade_cost, 1.0]])
    return Economy(
        params=params,
        trade_cost=t,
        service_trade_cost=t.copy(),
        export_cost=np.ones(2),
        import_cost=np.ones(2),
        immobile=np.full(2, (1.0 - mu) / 2.0),
        province=np.zeros(2, dtype=int),
        mobile_labour=np.array([mu]),
        names=("region 1", "region 2"),
    )


def break_point(sigma: float, mu: float) -> float:
    """Compute the break point ``T_b`` in closed form (FKV 1999, eq. 5.26).

    Parameters
    ----------
    sigma : float
        Elasticity of substitution (> 1).
    mu : float
        Manufacturing expenditure share, with ``rho = (sigma-1)/sigma > mu``.

    Returns
    -------
    float
        ``T_b = [(rho - mu)(1 - mu) / ((rho + mu)(1 + mu))]^{1/(1-sigma)}`` (> 1).
        Below ``T_b`` the symmetric equilibrium is unstable.

    Raises
    ------
    ModelError
        ``rho <= mu`` (black hole) or invalid parameters.
    """
    rho = _check_no_black_hole(sigma, mu)
    ratio = (rho - mu) * (1.0 - mu) / ((rho + mu) * (1.0 + mu))
    return float(ratio ** (1.0 / (1.0 - sigma)))


def sustain_ratio(trade_cost: npt.ArrayLike, sigma: float, mu: float) -> np.ndarray:
    """Compute ``(omega_2 / omega_1)^sigma`` at ``lambda = 1`` (FKV 1999, eq. 5.20)."""
    t = np.asarray(trade_cost, dtype=float)
    return t ** (-mu * sigma) * (
        0.5 * (1.0 + mu) * t ** (1.0 - sigma) + 0.5 * (1.0 - mu) * t ** (sigma - 1.0)
    )


def _bracket_above_one(func, start: float) -> tuple[float, float]:
    """Find ``lo < hi`` with ``func(lo) < 0 < func(hi)``, searching upward from ``start``."""
    lo = start
    hi = start
    for _ in range(200):
        hi = 1.0 + 2.0 * (hi - 1.0)
        if func(hi) > 0:
            return lo, hi
        lo = hi
    raise ModelError("No sustain point found below T = 1e60; check that rho > mu.")


def sustain_point(sigma: float, mu: float) -> float:
    """Compute the sustain point ``T_s`` from the closed-form ratio (FKV 1999, eq. 5.20).

    Parameters
    ----------
    sigma : float
        Elasticity of substitution (> 1).
    mu : float
        Manufacturing expenditure share, with ``rho > mu``.

    Returns
    -------
    float
        The root ``T_s > 1`` of ``sustain_ratio(T) = 1``, to ``xtol = 1e-14``.
        The core-periphery pattern is an equilibrium for ``T <= T_s``.

    Raises
    ------
    ModelError
        ``rho <= mu`` (black hole) or invalid parameters.
    """
    _check_no_black_hole(sigma, mu)

    def excess(t: float) -> float:
        return float(np.log(sustain_ratio(t, sigma, mu)))

    # The ratio falls below 1 just above T = 1 (slope -mu (2 sigma - 1) at T = 1).
    lo, hi = _bracket_above_one(excess, 1.0 + 1e-3)
    return float(optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14))


def real_wage_gap(
    trade_cost: float, lam: npt.ArrayLike, sigma: float, mu: float, tol: float = 1e-13
) -> np.ndarray:
    """Compute ``omega_1 - omega_2`` with the general solver at shares ``lam`` of region 1."""
    lam = np.atleast_1d(np.asarray(lam, dtype=float))
    economy = two_region_economy(trade_cost, sigma, mu)
    eq = solve_short_run(economy, np.column_stack([lam, 1.0 - lam]), tol=tol, max_iter=20000)
    return eq.real_wage_m[:, 0] - eq.real_wage_m[:, 1]


def break_point_numeric(sigma: float, mu: float, step: float = 1e-4) -> float:
    """Find the break point as the zero of ``d(omega_1 - omega_2)/d lambda`` at 1/2.

    The derivative is a central difference with step ``step`` of the real-wage
    gap from :func:`solve_short_run`, and its zero in ``T`` is found by Brent's
    method between ``T = 1.0001`` and the first doubling of ``T - 1`` where the
    derivative turns negative.
    """
    _check_no_black_hole(sigma, mu)

    def slope(t: float) -> float:
        gap = real_wage_gap(t, [0.5 + step, 0.5 - step], sigma, mu)
        return float((gap[0] - gap[1]) / (2.0 * step))

    lo = 1.0001
    if slope(lo) <= 0:
        raise ModelError("The symmetric equilibrium is stable even at T = 1.0001.")
    hi = lo
    for _ in range(200):
        hi = 1.0 + 2.0 * (hi - 1.0)
        if slope(hi) < 0:
            break
        lo = hi
    return float(optimize.brentq(slope, lo, hi, xtol=1e-13, rtol=1e-13))


def sustain_point_numeric(sigma: float, mu: float) -> float:
    """Find the sustain point as the root of ``omega_2/omega_1 = 1`` at ``lambda = 1``.

    The real wages come from :func:`solve_short_run`, so this checks
    :func:`sustain_point` against the general multi-region solver.
    """
    _check_no_black_hole(sigma, mu)

    def log_ratio(t: float) -> float:
        return float(-real_wage_gap(t, [1.0], sigma, mu)[0])

    lo, hi = _bracket_above_one(log_ratio, 1.0 + 1e-3)
    return float(optimize.brentq(log_ratio, lo, hi, xtol=1e-13, rtol=1e-13))


def tomahawk(
    sigma: float,
    mu: float,
    trade_costs: npt.ArrayLike,
    n_lambda: int = 200,
    max_branches: int = 5,
) -> xr.Dataset:
    """Compute the tomahawk bifurcation diagram of the two-region model.

    Parameters
    ----------
    sigma, mu : float
        Model parameters.
    trade_costs : array_like
        Grid of ``T > 1``.
    n_lambda : int, default 200
        Number of grid points of ``lambda`` in ``(1/2, 1)`` used to locate the
        asymmetric interior equilibria (by sign changes of the real-wage gap,
        refined by linear interpolation).
    max_branches : int, default 5
        Size of the ``branch`` dim (equilibria per trade cost, NaN padded).

    Returns
    -------
    xarray.Dataset
        ``lam`` (share of region 1 in each equilibrium) and ``stable`` (bool)
        over dims ``(trade_cost, branch)``, plus attrs ``break_point`` and
        ``sustain_point`` from the closed forms.

    Notes
    -----
    Interior equilibria are zeros of ``omega_1 - omega_2``; one is stable when
    the gap falls through the zero. The corners ``lambda = 0, 1`` are stable when
    the core's real wage exceeds the periphery's. Equilibria with
    ``lambda < 1/2`` mirror those above 1/2.
    """
    t_grid = np.asarray(trade_costs, dtype=float)
    half = 0.5 + np.arange(1, n_lambda + 1) / (2.0 * (n_lambda + 1))
    lam_out = np.full((t_grid.size, max_branches), np.nan)
    stable_out = np.zeros((t_grid.size, max_branches), dtype=bool)
    for i, t in enumerate(t_grid):
        gaps = real_wage_gap(t, np.concatenate([[0.5 + 1e-5, 0.5 - 1e-5], half, [1.0]]), sigma, mu)
        found: list[tuple[float, bool]] = [(0.5, bool(gaps[0] - gaps[1] < 0))]
        interior = gaps[2:-1]
        for k in np.flatnonzero(np.sign(interior[:-1]) != np.sign(interior[1:])):
            x0, x1, g0, g1 = half[k], half[k + 1], interior[k], interior[k + 1]
            root = x0 - g0 * (x1 - x0) / (g1 - g0)
            found += [(root, bool(g1 < g0)), (1.0 - root, bool(g1 < g0))]
        core_stable = bool(gaps[-1] > 0)
        found += [(1.0, core_stable), (0.0, core_stable)]
        for j, (value, is_stable) in enumerate(found[:max_branches]):
            lam_out[i, j] = value
            stable_out[i, j] = is_stable
    ds = xr.Dataset(
        {
            "lam": (("trade_cost", "branch"), lam_out),
            "stable": (("trade_cost", "branch"), stable_out),
        },
        coords={"trade_cost": t_grid, "branch": np.arange(max_branches)},
        attrs={"sigma": sigma, "mu": mu},
    )
    ds["lam"].attrs["long_name"] = "share of manufacturing in region 1"
    try:
        ds.attrs["break_point"] = break_point(sigma, mu)
        ds.attrs["sustain_point"] = sustain_point(sigma, mu)
    except ModelError:
        pass
    return ds
