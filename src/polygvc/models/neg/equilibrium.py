r"""Short-run equilibrium of the multi-city centre-periphery model.

The model follows the multi-region core-periphery model of Fujita, Krugman and
Venables (1999), *The Spatial Economy*, MIT Press, chapters 5 and 6 (itself
Krugman 1991, "Increasing returns and economic geography", Journal of
Political Economy 99, 483-499), with the input-output linkage of chapter 14
(Krugman and Venables 1995, "Globalization and the inequality of nations",
Quarterly Journal of Economics 110, 857-880) taken, as in Venables (1996),
"Equilibrium locations of vertically linked industries", International
Economic Review 37, 341-359, between two industries: an upstream
business-service industry that sells only to a downstream manufacturing
industry.

Cities ``r = 1..R`` lie in provinces ``p(r)``. Immobile farm workers ``A_r``
earn the numeraire wage 1 and produce a freely traded good. Mobile
manufacturing workers ``L^M_r = lambda^M_r L^M_p`` and service workers
``L^S_r = lambda^S_r L^S_p`` move between the cities of their own province
(``sum_{r in p} lambda_r = 1``). With ``c = rho`` and ``F_M = l_M / sigma``,
``F_S = l_S / sigma_S`` (the normalisations of FKV 1999, section 4.3, with
``l_M = mu (1 - alpha)`` and ``l_S = mu alpha``), the short-run equilibrium for
given allocations solves, for every city ``r``:

.. math::

   q_r &= (w^M_r)^{1-\alpha} (G^S_r)^{\alpha}
        &&\text{(unit cost of a manufacturing firm)}\\
   n^M_r &= \frac{L^M_r w^M_r}{(1-\alpha) q_r l_M},\quad n^S_r = \frac{L^S_r}{l_S}
        &&\text{(numbers of firms)}\\
   (G^M_r)^{1-\sigma} &= \sum_s n^M_s (q_s T_{sr})^{1-\sigma}
        &&\text{(manufacturing price index)}\\
   (G^S_r)^{1-\sigma_S} &= \sum_s n^S_s (w^S_s T^S_{sr})^{1-\sigma_S}
        + \Phi_F (T^F_r)^{1-\sigma_S}
        &&\text{(service price index)}\\
   Y_r &= w^M_r L^M_r + w^S_r L^S_r + A_r &&\text{(income)}\\
   q_s^{\sigma} &= \frac{1}{l_M}\Big[\sum_r \mu Y_r T_{sr}^{1-\sigma} (G^M_r)^{\sigma-1}
        + X_W (T^W_s)^{1-\sigma}\Big] &&\text{(manufacturing wage equation)}\\
   (w^S_s)^{\sigma_S} &= \frac{1}{l_S}\sum_r \frac{\alpha}{1-\alpha} L^M_r w^M_r
        (T^S_{sr})^{1-\sigma_S} (G^S_r)^{\sigma_S-1} &&\text{(service wage equation)}\\
   \omega^M_r &= w^M_r (G^M_r)^{-\mu},\quad \omega^S_r = w^S_r (G^M_r)^{-\mu}
        &&\text{(real wages)}

With ``alpha = 0``, no export market (``X_W = 0``) and one province these are
FKV (1999) equations (5.1)-(5.4) for ``R`` regions: ``w_r = q_r``,
``n_r = lambda_r``.

Extensions to the published model, chosen here:

* the service industry and its workers (FKV ch. 14 put the intermediate good in
  the same industry; here the upstream industry is business services);
  manufacturing and service workers are separate mobile groups, so the
  occupational split of a province is fixed and only locations adjust;
* a world market for manufactures with demand ``X_W = E_W G_W^{sigma-1}``
  reached at iceberg cost ``T^W_r``, and foreign business services with
  supply ``Phi_F = n_F p_F^{1-sigma_S}`` reached at ``T^F_r``;
* trade costs built from distance and infrastructure, see
  :mod:`polygvc.models.neg.geography`.

The system is solved in ``x = (ln q, ln w^S)`` by Newton's method on
``F(x) - x = 0`` (``F`` = the wage equations), batched over allocations, with
damped fixed-point iteration ``x <- x + eta (F(x) - x)`` (the method of FKV
1999, section 5.3) as fall-back for members that do not converge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from polygvc.errors import ModelError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NEGParams:
    """Preference, technology and world-market parameters of the model.

    Parameters
    ----------
    sigma : float
        Elasticity of substitution between manufacturing varieties (> 1).
    mu : float
        Share of consumer spending on manufactures, in (0, 1).
    alpha : float
        Cost share of business services in manufacturing, in [0, 1). Zero
        removes the service industry (Krugman 1991).
    sigma_s : float or None
        Elasticity of substitution between service varieties (> 1); None uses
        ``sigma``.
    export_access : float
        World demand for manufactures ``X_W = E_W G_W^{sigma-1}`` (>= 0).
    foreign_services : float
        Supply of foreign business services ``Phi_F = n_F p_F^{1-sigma_S}`` (>= 0).
    """

    sigma: float = 5.0
    mu: float = 0.4
    alpha: float = 0.0
    sigma_s: float | None = None
    export_access: float = 0.0
    foreign_services: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "sigma": (self.sigma, self.sigma > 1.0, "a number above 1"),
            "mu": (self.mu, 0.0 < self.mu < 1.0, "a number in (0, 1)"),
            "alpha": (self.alpha, 0.0 <= self.alpha < 1.0, "a number in [0, 1)"),
            "sigma_s": (self.sigma_s, self.sigma_s is None or self.sigma_s > 1.0, "above 1"),
            "export_access": (self.export_access, self.export_access >= 0.0, "at least 0"),
            "foreign_services": (
                self.foreign_services,
                self.foreign_services >= 0.0,
                "at least 0",
            ),
        }
        for name, (value, valid, expected) in checks.items():
            if not valid or (value is not None and not np.isfinite(value)):
                raise ModelError(
                    f"Invalid centre-periphery parameter {name}={value!r}: it must be "
                    f"{expected}. Set {name} to a valid value in the model parameters."
                )

    @property
    def elasticity_services(self) -> float:
        """Service elasticity ``sigma_S`` (``sigma`` when not set)."""
        return self.sigma if self.sigma_s is None else float(self.sigma_s)

    @property
    def has_services(self) -> bool:
        """Whether the service industry exists (``alpha > 0``)."""
        return self.alpha > 0.0

    @property
    def labour_unit_m(self) -> float:
        """``l_M = mu (1 - alpha)``: manufacturing labour per unit of firm count."""
        return self.mu * (1.0 - self.alpha)

    @property
    def labour_unit_s(self) -> float:
        """``l_S = mu alpha``: service labour per unit of firm count."""
        return self.mu * self.alpha


@dataclass(frozen=True)
class Economy:
    """Geography, endowments and parameters of one model economy.

    Attributes
    ----------
    params : NEGParams
        Model parameters.
    trade_cost : ndarray, shape (R, R)
        Iceberg cost ``T_sr >= 1`` of manufactures shipped from ``s`` to ``r``.
    service_trade_cost : ndarray, shape (R, R)
        Iceberg cost ``T^S_sr >= 1`` of business services.
    export_cost : ndarray, shape (R,)
        Iceberg cost ``T^W_r`` from city ``r`` to the world market.
    import_cost : ndarray, shape (R,)
        Iceberg cost ``T^F_r`` of foreign services delivered to city ``r``.
    immobile : ndarray, shape (R,)
        Immobile (farm) labour ``A_r >= 0``.
    province : ndarray of int, shape (R,)
        Province index ``0..P-1`` of each city.
    mobile_labour : ndarray, shape (P,)
        Mobile labour ``L_p > 0`` of each province, split into
        ``L^M_p = (1 - alpha) L_p`` and ``L^S_p = alpha L_p``.
    names : tuple of str
        City names, length R.
    """

    params: NEGParams
    trade_cost: np.ndarray
    service_trade_cost: np.ndarray
    export_cost: np.ndarray
    import_cost: np.ndarray
    immobile: np.ndarray
    province: np.ndarray
    mobile_labour: np.ndarray
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = np.asarray(self.immobile).shape[0]
        shapes = {
            "trade_cost": (self.trade_cost, (n, n)),
            "service_trade_cost": (self.service_trade_cost, (n, n)),
            "export_cost": (self.export_cost, (n,)),
            "import_cost": (self.import_cost, (n,)),
            "province": (self.province, (n,)),
        }
        for name, (value, shape) in shapes.items():
            if np.shape(value) != shape:
                raise ModelError(
                    f"Economy field {name} has shape {np.shape(value)}, expected {shape} "
                    f"for {n} cities. Build the economy with arrays of one entry per city."
                )
        for name in ("trade_cost", "service_trade_cost", "export_cost", "import_cost"):
            value = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(value)) or np.any(value < 1.0):
                bad = value[~(np.isfinite(value) & (value >= 1.0))]
                raise ModelError(
                    f"Economy field {name} contains iceberg costs below 1 or not finite "
                    f"(for example {bad.flat[0]!r}). Iceberg costs must be finite and >= 1."
                )
        if np.any(np.asarray(self.immobile) < 0):
            raise ModelError("Economy field immobile contains negative labour; use values >= 0.")
        n_prov = int(np.max(self.province)) + 1
        if np.shape(self.mobile_labour) != (n_prov,) or np.any(np.asarray(self.mobile_labour) <= 0):
            raise ModelError(
                f"Economy field mobile_labour must hold one positive value per province "
                f"({n_prov} provinces), got {np.asarray(self.mobile_labour)!r}."
            )
        if self.names and len(self.names) != n:
            raise ModelError(f"Economy has {n} cities but {len(self.names)} names.")

    @property
    def n_cities(self) -> int:
        """Number of cities ``R``."""
        return int(np.asarray(self.immobile).shape[0])

    @property
    def n_provinces(self) -> int:
        """Number of provinces ``P``."""
        return int(np.max(self.province)) + 1

    def mobile_m(self) -> np.ndarray:
        """Manufacturing labour ``L^M_{p(r)}`` of each city's province, shape (R,)."""
        return (1.0 - self.params.alpha) * np.asarray(self.mobile_labour)[self.province]

    def mobile_s(self) -> np.ndarray:
        """Service labour ``L^S_{p(r)}`` of each city's province, shape (R,)."""
        return self.params.alpha * np.asarray(self.mobile_labour)[self.province]


@dataclass(frozen=True)
class ShortRunEquilibrium:
    """Short-run equilibrium for a batch of labour allocations (arrays of shape (B, R))."""

    lam_m: np.ndarray
    lam_s: np.ndarray
    wage_m: np.ndarray
    wage_s: np.ndarray
    unit_cost: np.ndarray
    price_m: np.ndarray
    price_s: np.ndarray
    income: np.ndarray
    firms_m: np.ndarray
    firms_s: np.ndarray
    real_wage_m: np.ndarray
    real_wage_s: np.ndarray
    exports: np.ndarray
    domestic_service_share: np.ndarray
    iterations: int
    residual: float


def province_sums(values: np.ndarray, province: np.ndarray, n_provinces: int) -> np.ndarray:
    """Sum ``values`` (B, R) over the cities of each province; returns (B, P)."""
    onehot = np.zeros((province.size, n_provinces))
    onehot[np.arange(province.size), province] = 1.0
    return values @ onehot


def check_allocation(economy: Economy, lam: npt.ArrayLike, name: str) -> np.ndarray:
    """Validate a batch of allocations: shape (B, R), >= 0, summing to 1 per province.

    Raises
    ------
    ModelError
        Wrong shape, negative shares or province sums away from 1 by more than 1e-8.
    """
    array = np.atleast_2d(np.asarray(lam, dtype=float))
    if array.ndim != 2 or array.shape[1] != economy.n_cities:
        raise ModelError(
            f"Labour allocation {name} has shape {array.shape}; expected (batch, "
            f"{economy.n_cities}) with one share per city."
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ModelError(f"Labour allocation {name} contains negative or non-finite shares.")
    sums = province_sums(array, economy.province, economy.n_provinces)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > 1e-8:
        raise ModelError(
            f"Labour allocation {name} does not sum to 1 within each province (largest "
            f"deviation {worst:.3g}). Normalise the shares of each province's cities."
        )
    return array


class _System:
    """Vectorised pieces of the equilibrium system for one economy."""

    def __init__(self, economy: Economy) -> None:
        p = economy.params
        self.economy = economy
        self.p = p
        self.sigma = p.sigma
        self.sigma_s = p.elasticity_services
        self.t1 = np.asarray(economy.trade_cost, float) ** (1.0 - p.sigma)
        self.ts1 = np.asarray(economy.service_trade_cost, float) ** (1.0 - self.sigma_s)
        self.export1 = p.export_access * np.asarray(economy.export_cost, float) ** (1.0 - p.sigma)
        self.import1 = p.foreign_services * np.asarray(economy.import_cost, float) ** (
            1.0 - self.sigma_s
        )
        self.immobile = np.asarray(economy.immobile, float)
        self.mobile_m = economy.mobile_m()
        self.mobile_s = economy.mobile_s()

    def evaluate(
        self, log_q: np.ndarray, log_ws: np.ndarray, lam_m: np.ndarray, lam_s: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Evaluate every endogenous variable and the updated ``ln q``, ``ln w^S``."""
        p = self.p
        q = np.exp(log_q)
        labour_m = lam_m * self.mobile_m
        labour_s = lam_s * self.mobile_s
        if p.has_services:
            ws = np.exp(log_ws)
            firms_s = labour_s / p.labour_unit_s
            gs_pow = (firms_s * ws ** (1.0 - self.sigma_s)) @ self.ts1 + self.import1
            price_s = gs_pow ** (1.0 / (1.0 - self.sigma_s))
            wm = (q * price_s ** (-p.alpha)) ** (1.0 / (1.0 - p.alpha))
        else:
            ws = np.ones_like(q)
            firms_s = np.zeros_like(q)
            gs_pow = np.ones_like(q)
            price_s = np.ones_like(q)
            wm = q
        firms_m = labour_m * wm / ((1.0 - p.alpha) * q * p.labour_unit_m)
        gm_pow = (firms_m * q ** (1.0 - self.sigma)) @ self.t1
        price_m = gm_pow ** (1.0 / (1.0 - self.sigma))
        income = wm * labour_m + ws * labour_s + self.immobile
        access = (p.mu * income / gm_pow) @ self.t1.T + self.export1
        new_log_q = np.log(access / p.labour_unit_m) / self.sigma
        if p.has_services:
            spend_s = p.alpha / (1.0 - p.alpha) * labour_m * wm
            access_s = (spend_s / gs_pow) @ self.ts1.T
            new_log_ws = np.log(access_s / p.labour_unit_s) / self.sigma_s
        else:
            new_log_ws = np.zeros_like(log_ws)
        return {
            "q": q,
            "ws": ws,
            "wm": wm,
            "firms_m": firms_m,
            "firms_s": firms_s,
            "gm_pow": gm_pow,
            "gs_pow": gs_pow,
            "price_m": price_m,
            "price_s": price_s,
            "income": income,
            "new_log_q": new_log_q,
            "new_log_ws": new_log_ws,
        }


def _stacked_map(
    system: _System, x: np.ndarray, lam_m: np.ndarray, lam_s: np.ndarray
) -> np.ndarray:
    """Apply the wage equations to stacked unknowns ``x = [ln q, ln w^S]`` (B, k)."""
    n = lam_m.shape[1]
    log_ws = x[:, n:] if system.p.has_services else np.zeros_like(lam_m)
    out = system.evaluate(x[:, :n], log_ws, lam_m, lam_s)
    if system.p.has_services:
        return np.concatenate([out["new_log_q"], out["new_log_ws"]], axis=1)
    return out["new_log_q"]


def _residual_norm(step: np.ndarray) -> np.ndarray:
    norm = np.max(np.abs(step), axis=1)
    return np.where(np.isfinite(norm), norm, np.inf)


def _fixed_point(
    system: _System,
    x: np.ndarray,
    lam_m: np.ndarray,
    lam_s: np.ndarray,
    tol: float,
    max_iter: int,
    damping: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Damped fixed-point iteration ``x <- x + damping (F(x) - x)`` for every batch member."""
    residual = np.full(x.shape[0], np.inf)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        step = _stacked_map(system, x, lam_m, lam_s) - x
        residual = _residual_norm(step)
        if np.all(residual < tol) or not np.all(np.isfinite(step)):
            break
        x = x + damping * step
    return x, residual, iterations


def _newton(
    system: _System,
    x: np.ndarray,
    lam_m: np.ndarray,
    lam_s: np.ndarray,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Batched Newton's method on ``F(x) - x = 0`` with a forward-difference Jacobian.

    The Jacobian of every batch member comes from one call of the map on the
    stacked perturbed points. A step is halved (up to 30 times) until the
    max-norm of the residual falls.
    """
    batch, k = x.shape
    eye = np.eye(k)
    step_fd = 1e-7

    def residual_of(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return _stacked_map(system, points, lam_m[rows], lam_s[rows]) - points

    all_rows = np.arange(batch)
    res = residual_of(x, all_rows)
    norm = _residual_norm(res)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        active = np.flatnonzero(norm >= tol)
        if active.size == 0:
            break
        xa = x[active]
        perturbed = (xa[:, None, :] + step_fd * eye[None]).reshape(-1, k)
        rows = np.repeat(active, k)
        jac = residual_of(perturbed, rows).reshape(active.size, k, k) - res[active][:, None, :]
        jac = np.swapaxes(jac, 1, 2) / step_fd
        try:
            direction = np.linalg.solve(jac, -res[active][..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        length = np.ones(active.size)
        pending = np.arange(active.size)
        for _ in range(30):
            trial = xa[pending] + length[pending, None] * direction[pending]
            trial_res = residual_of(trial, active[pending])
            trial_norm = _residual_norm(trial_res)
            better = trial_norm < norm[active[pending]]
            done = pending[better]
            x[active[done]] = trial[better]
            res[active[done]] = trial_res[better]
            norm[active[done]] = trial_norm[better]
            pending = pending[~better]
            if pending.size == 0:
                break
            length[pending] *= 0.5
        if pending.size:
            # No step length lowered the residual: the Jacobian is too inaccurate
            # here, so stop and leave these members to the fall-back method.
            break
    return x, norm, iterations


def solve_short_run(
    economy: Economy,
    lam_m: npt.ArrayLike,
    lam_s: npt.ArrayLike | None = None,
    *,
    tol: float = 1e-10,
    method: str = "newton",
    max_iter: int | None = None,
    damping: float = 0.5,
    initial: tuple[np.ndarray, np.ndarray] | None = None,
    fallback: bool = True,
) -> ShortRunEquilibrium:
    r"""Solve wages, price indices and incomes for given labour allocations.

    Parameters
    ----------
    economy : Economy
        Geography and parameters.
    lam_m : array_like, shape (R,) or (B, R)
        Shares of each province's manufacturing workers living in each city.
    lam_s : array_like or None
        Shares of service workers; None uses ``lam_m``. Ignored when
        ``alpha = 0``.
    tol : float, default 1e-10
        Convergence tolerance on the residual ``max |ln F(x) - ln x|`` of the
        wage equations (the undamped fixed-point step), for every batch member.
    method : {"newton", "fixed_point"}, default "newton"
        Newton's method on the stacked system (batched, forward-difference
        Jacobian, step halving) or damped fixed-point iteration.
    max_iter : int or None
        Iterations of ``method``; None means 100 for Newton, 5000 for the
        fixed point.
    damping : float, default 0.5
        Weight ``eta`` of the new iterate in the fixed point:
        ``x <- (1 - eta) x + eta F(x)`` in logs.
    initial : tuple of ndarray or None
        Starting ``(ln q, ln w^S)``, shape (B, R) each (for warm starts); None
        starts from unit wages.
    fallback : bool, default True
        Retry batch members that miss ``tol`` with the other method.

    Returns
    -------
    ShortRunEquilibrium
        All endogenous variables, shape (B, R).

    Raises
    ------
    ModelError
        Invalid allocations or settings, or the residual stays above ``tol``;
        the message gives the residual and what to change.

    Notes
    -----
    The equations are in the docstring of :mod:`polygvc.models.neg.equilibrium`
    (FKV 1999 eqs. 5.1-5.4 extended with a business-service input). The map
    ``F`` is the wage equations: given ``ln q`` and ``ln w^S``, the price
    indices and incomes follow, and the wage equations return new values.
    Exports of city ``r`` are ``n^M_r q_r^{1-sigma} X_W (T^W_r)^{1-sigma}`` and
    the domestic service share is
    ``1 - Phi_F (T^F_r)^{1-sigma_S} / (G^S_r)^{1-sigma_S}``.
    """
    lam_m = check_allocation(economy, lam_m, "lam_m")
    lam_s = lam_m if lam_s is None else check_allocation(economy, lam_s, "lam_s")
    if lam_s.shape != lam_m.shape:
        raise ModelError(f"lam_m has shape {lam_m.shape} but lam_s has shape {lam_s.shape}.")
    if not 0.0 < damping <= 1.0:
        raise ModelError(f"damping={damping!r} must lie in (0, 1]; 0.5 is a safe default.")
    if method not in ("newton", "fixed_point"):
        raise ModelError(f"method={method!r} is not valid; choose 'newton' or 'fixed_point'.")
    system = _System(economy)
    n = economy.n_cities
    width = 2 * n if economy.params.has_services else n
    x = np.zeros((lam_m.shape[0], width))
    if initial is not None:
        x[:, :n] = initial[0]
        if economy.params.has_services:
            x[:, n:] = initial[1]
    x = np.where(np.isfinite(x), x, 0.0)

    def run(name: str, start: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        if name == "newton":
            limit = 100 if max_iter is None else max_iter
            return _newton(system, start, lam_m[rows], lam_s[rows], tol, limit)
        limit = 5000 if max_iter is None else max_iter
        return _fixed_point(system, start, lam_m[rows], lam_s[rows], tol, limit, damping)

    all_rows = np.arange(lam_m.shape[0])
    x, residual, iterations = run(method, x, all_rows)
    failed = np.flatnonzero(~(residual < tol))
    if failed.size and fallback:
        other = "fixed_point" if method == "newton" else "newton"
        logger.debug("%d members missed tol with %s; retrying with %s", failed.size, method, other)
        x_retry, res_retry, _ = run(other, np.zeros((failed.size, width)), failed)
        better = res_retry < residual[failed]
        x[failed[better]] = x_retry[better]
        residual[failed[better]] = res_retry[better]
        failed = np.flatnonzero(~(residual < tol))
    if failed.size:
        worst = float(np.max(residual[failed]))
        raise ModelError(
            f"Short-run equilibrium did not converge for {failed.size} of "
            f"{lam_m.shape[0]} labour allocations (first: batch member {failed[0]}): "
            f"residual max |change in log wage| = {worst:.3g}, tolerance {tol:.1g}, "
            f"method {method}"
            + (" with the other method as fall-back" if fallback else "")
            + f". Raise max_iter, lower damping (now {damping}) for the fixed point, or "
            "check that trade costs are not extreme (very high sigma with very low trade "
            "costs makes the system stiff)."
        )
    out = system.evaluate(
        x[:, :n], x[:, n:] if economy.params.has_services else np.zeros_like(lam_m), lam_m, lam_s
    )
    residual = float(np.max(residual))

    p = economy.params
    cost_of_living = out["price_m"] ** p.mu
    exports = out["firms_m"] * out["q"] ** (1.0 - p.sigma) * system.export1
    if p.has_services:
        domestic = 1.0 - system.import1 / out["gs_pow"]
    else:
        domestic = np.ones_like(out["q"])
    logger.debug("short-run equilibrium: %d iterations, residual %.3g", iterations, residual)
    return ShortRunEquilibrium(
        lam_m=lam_m,
        lam_s=lam_s,
        wage_m=out["wm"],
        wage_s=out["ws"],
        unit_cost=out["q"],
        price_m=out["price_m"],
        price_s=out["price_s"],
        income=out["income"],
        firms_m=out["firms_m"],
        firms_s=out["firms_s"],
        real_wage_m=out["wm"] / cost_of_living,
        real_wage_s=out["ws"] / cost_of_living,
        exports=exports,
        domestic_service_share=domestic,
        iterations=iterations,
        residual=residual,
    )
