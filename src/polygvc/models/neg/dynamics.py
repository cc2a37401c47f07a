r"""Replicator dynamics of mobile labour and the stable long-run equilibria.

Workers of each group ``k`` (manufacturing ``M``, business services ``S``) move
toward cities of their province with higher real wages (FKV 1999, eq. 5.9 for
two regions, eq. 6.7 for many):

.. math::

   \frac{d\lambda^k_r}{dt} = \gamma\,\lambda^k_r\,
   \frac{\omega^k_r - \bar\omega^k_{p(r)}}{\bar\omega^k_{p(r)}},\qquad
   \bar\omega^k_p = \sum_{s \in p} \lambda^k_s \omega^k_s .

Dividing by ``bar omega`` only rescales time, so rest points and their
stability are those of FKV's ``gamma lambda (omega - bar omega)``. The path is
integrated with the exponential (multiplicative) Euler step
``lambda <- lambda exp(gamma h g) / normaliser``, which keeps shares positive and
summing to 1 within each province. The step ``h`` is at most ``dt``, cut so
that no share changes by more than ``max_share_step``, and halved for a start
whose manufacturing real-wage gaps change sign (an overshoot of a rest point).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from polygvc.errors import ModelError
from polygvc.models.neg.equilibrium import (
    Economy,
    ShortRunEquilibrium,
    check_allocation,
    province_sums,
    solve_short_run,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DynamicsResult:
    """End points of replicator paths for a batch of starts.

    Attributes
    ----------
    lam_m, lam_s : ndarray, shape (B, R)
        Final allocations of manufacturing and service workers.
    converged : ndarray of bool, shape (B,)
        Whether the replicator speed fell below the tolerance.
    steps : ndarray of int, shape (B,)
        Steps taken until convergence (``max_steps`` where not converged).
    speed : ndarray, shape (B,)
        Final ``max_r lambda_r |g_r|`` over both groups.
    equilibrium : ShortRunEquilibrium
        Short-run equilibrium at the final allocations.
    """

    lam_m: np.ndarray
    lam_s: np.ndarray
    converged: np.ndarray
    steps: np.ndarray
    speed: np.ndarray
    equilibrium: ShortRunEquilibrium


def _relative_gap(
    omega: np.ndarray, lam: np.ndarray, province: np.ndarray, n_prov: int
) -> np.ndarray:
    mean = province_sums(lam * omega, province, n_prov)[:, province]
    return omega / mean - 1.0


def _normalise(lam: np.ndarray, province: np.ndarray, n_prov: int) -> np.ndarray:
    return lam / province_sums(lam, province, n_prov)[:, province]


def simulate_dynamics(
    economy: Economy,
    lam_m0: npt.ArrayLike,
    lam_s0: npt.ArrayLike | None = None,
    *,
    gamma: float = 1.0,
    dt: float = 10.0,
    max_share_step: float = 0.02,
    max_steps: int = 5000,
    tol: float = 1e-7,
    solver_tol: float = 1e-11,
) -> DynamicsResult:
    """Integrate the replicator dynamics from a batch of starting allocations.

    Parameters
    ----------
    economy : Economy
        Model economy.
    lam_m0 : array_like, shape (B, R)
        Starting shares of manufacturing workers (positive, summing to 1 per province).
    lam_s0 : array_like or None
        Starting shares of service workers; None uses ``lam_m0``.
    gamma : float, default 1
        Speed of adjustment.
    dt : float, default 10
        Largest time step.
    max_share_step : float, default 0.02
        Largest change ``h gamma lambda_r |g_r|`` of any share in one step
        (to first order).
    max_steps : int, default 5000
        Steps before giving up.
    tol : float, default 1e-7
        Convergence when ``max_r lambda_r |g_r| < tol`` for both groups, with
        ``g_r`` the relative real-wage gap of the module docstring.
    solver_tol : float, default 1e-11
        Tolerance of the short-run solver at each step.

    Returns
    -------
    DynamicsResult
        Final allocations with per-start convergence flags; the caller decides
        what to do with starts that did not converge.

    Raises
    ------
    ModelError
        Invalid starts or settings, or a short-run equilibrium that fails.

    Notes
    -----
    A start that converges has reached a rest point of the replicator
    dynamics. Paths started from random interior points almost surely end at
    asymptotically stable rest points; a path that ends near an unstable one
    (a saddle) is possible only from a set of starts of measure zero.
    """
    if gamma <= 0 or dt <= 0 or max_share_step <= 0 or max_steps < 1 or tol <= 0:
        raise ModelError(
            f"Invalid replicator settings gamma={gamma}, dt={dt}, max_share_step={max_share_step}, "
            f"max_steps={max_steps}, tol={tol}: all must be positive."
        )
    lam_m = check_allocation(economy, lam_m0, "lam_m0").copy()
    lam_s = lam_m.copy() if lam_s0 is None else check_allocation(economy, lam_s0, "lam_s0").copy()
    services = economy.params.has_services
    if not services:
        # Without a service industry service shares carry no information; tying
        # them to lam_m keeps end points of different starts comparable.
        lam_s = lam_m
    if np.any(lam_m <= 0) or np.any(lam_s <= 0):
        raise ModelError(
            "Replicator starts must be strictly positive: a city with zero workers never "
            "gains any. Draw starts from the interior of the simplex."
        )
    province, n_prov = economy.province, economy.n_provinces
    batch = lam_m.shape[0]
    converged = np.zeros(batch, dtype=bool)
    steps = np.full(batch, max_steps)
    speed = np.full(batch, np.inf)
    warm = None
    step_cap = np.full(batch, dt)
    previous_gap = np.zeros_like(lam_m)
    for step in range(max_steps):
        eq = solve_short_run(economy, lam_m, lam_s, tol=solver_tol, initial=warm)
        warm = (np.log(eq.unit_cost), np.log(eq.wage_s))
        gap_m = _relative_gap(eq.real_wage_m, lam_m, province, n_prov)
        speed = np.max(lam_m * np.abs(gap_m), axis=1)
        if services:
            gap_s = _relative_gap(eq.real_wage_s, lam_s, province, n_prov)
            speed = np.maximum(speed, np.max(lam_s * np.abs(gap_s), axis=1))
        newly = (speed < tol) & ~converged
        steps[newly] = step
        converged |= speed < tol
        if np.all(converged):
            break
        # A gap that changes sign in a city with a non-negligible share means the
        # step overshot a rest point, so that start's time step is halved;
        # otherwise it grows back toward dt.
        overshoot = np.any((gap_m * previous_gap < 0) & (lam_m > 1e-3), axis=1)
        step_cap = np.where(overshoot, 0.5 * step_cap, np.minimum(1.1 * step_cap, dt))
        previous_gap = gap_m
        # Limit the step by the largest change of a share, not of a log share:
        # vanishing cities keep a large negative gap but move no labour.
        h = np.minimum(step_cap, max_share_step / np.maximum(gamma * speed, 1e-300))
        h = np.where(converged, 0.0, h)[:, None]
        lam_m = _normalise(lam_m * np.exp(gamma * h * gap_m), province, n_prov)
        if services:
            lam_s = _normalise(lam_s * np.exp(gamma * h * gap_s), province, n_prov)
        else:
            lam_s = lam_m
    logger.info(
        "replicator dynamics: %d of %d starts converged (max speed %.3g)",
        int(converged.sum()),
        batch,
        float(np.max(speed)),
    )
    eq = solve_short_run(economy, lam_m, lam_s, tol=solver_tol, initial=warm)
    return DynamicsResult(lam_m, lam_s, converged, steps, speed, eq)


def random_starts(economy: Economy, n_starts: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_starts`` allocations uniformly on each province's simplex (Dirichlet(1))."""
    if n_starts < 1:
        raise ModelError(f"n_starts={n_starts} must be at least 1.")
    draws = rng.exponential(size=(n_starts, economy.n_cities))
    return _normalise(draws, economy.province, economy.n_provinces)


@dataclass(frozen=True)
class StableEquilibria:
    """Distinct stable long-run equilibria found from random starts.

    Attributes
    ----------
    lam_m, lam_s : ndarray, shape (E, R)
        Allocations of each distinct equilibrium (mean over its basin), sorted by
        basin count, largest first.
    basin_count : ndarray of int, shape (E,)
        Number of starts that ended at each equilibrium.
    n_starts : int
        Number of starts.
    equilibrium : ShortRunEquilibrium
        Short-run equilibrium at each distinct allocation (batch of E).
    assignment : ndarray of int, shape (n_starts,)
        Index of the equilibrium each start reached.
    """

    lam_m: np.ndarray
    lam_s: np.ndarray
    basin_count: np.ndarray
    n_starts: int
    equilibrium: ShortRunEquilibrium
    assignment: np.ndarray


def cluster_allocations(points: np.ndarray, tol: float) -> np.ndarray:
    """Label rows of ``points`` so rows within ``tol`` (max-abs distance) of a centre share one.

    Greedy leader clustering: each row joins the first earlier centre within
    ``tol``, otherwise it starts a new centre. Returns labels ``0..E-1``.
    """
    centres: list[np.ndarray] = []
    labels = np.empty(points.shape[0], dtype=int)
    for i, row in enumerate(points):
        for j, centre in enumerate(centres):
            if np.max(np.abs(row - centre)) <= tol:
                labels[i] = j
                break
        else:
            centres.append(row)
            labels[i] = len(centres) - 1
    return labels


def find_stable_equilibria(
    economy: Economy,
    n_starts: int = 20,
    seed: int | np.random.Generator = 0,
    *,
    cluster_tol: float = 1e-4,
    **dynamics_options: float,
) -> StableEquilibria:
    """Run the replicator dynamics from random starts and group the end points.

    Parameters
    ----------
    economy : Economy
        Model economy.
    n_starts : int, default 20
        Number of random interior starts (Dirichlet(1) on each province's
        simplex, independently for manufacturing and service workers).
    seed : int or numpy.random.Generator, default 0
        Seed of :func:`numpy.random.default_rng`.
    cluster_tol : float, default 1e-4
        End points whose shares differ by at most this (max-abs) are one equilibrium.
    **dynamics_options
        Passed to :func:`simulate_dynamics` (``gamma``, ``dt``, ``max_steps``,
        ``tol``, ...).

    Returns
    -------
    StableEquilibria
        Distinct equilibria with basin counts, largest basin first.

    Raises
    ------
    ModelError
        Some starts did not reach a rest point within ``max_steps``; the
        message says how many and what to change.
    """
    rng = np.random.default_rng(seed)
    start_m = random_starts(economy, n_starts, rng)
    start_s = random_starts(economy, n_starts, rng)
    result = simulate_dynamics(economy, start_m, start_s, **dynamics_options)
    if not np.all(result.converged):
        bad = np.flatnonzero(~result.converged)
        raise ModelError(
            f"Replicator dynamics did not settle for {bad.size} of {n_starts} starts "
            f"(largest remaining speed max lambda|g| = {float(np.max(result.speed[bad])):.3g}, "
            f"tolerance {dynamics_options.get('tol', 1e-7):.1g}). Raise max_steps or dt, or "
            "loosen tol; a persistent failure can mean a cycle, which this model should not "
            "have, so check the parameters too."
        )
    points = np.concatenate([result.lam_m, result.lam_s], axis=1)
    labels = cluster_allocations(points, cluster_tol)
    counts = np.bincount(labels)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    n = economy.n_cities
    centres = np.stack([points[labels == k].mean(axis=0) for k in order])
    lam_m = _normalise(centres[:, :n], economy.province, economy.n_provinces)
    lam_s = _normalise(centres[:, n:], economy.province, economy.n_provinces)
    eq = solve_short_run(economy, lam_m, lam_s)
    return StableEquilibria(lam_m, lam_s, counts[order], n_starts, eq, rank[labels])
