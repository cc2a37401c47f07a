"""Tests of the centre-periphery model (polygvc.models.neg)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from polygvc.errors import ConfigError, ModelError
from polygvc.models.centre_periphery import (
    NEGParams,
    TradeCostParams,
    break_point,
    break_point_numeric,
    build_economy,
    equilibrium_summary,
    find_stable_equilibria,
    great_circle_km,
    gvc_position,
    plot_response,
    plot_tomahawk,
    province_economy,
    racetrack_distances,
    simulate_sweep,
    solve_short_run,
    sustain_point,
    sustain_point_numeric,
    tomahawk,
    trade_cost_matrix,
    two_region_economy,
)

# (sigma, mu) pairs that satisfy the no-black-hole condition rho = (sigma-1)/sigma > mu.
KRUGMAN_CASES = [(5.0, 0.4), (4.0, 0.3), (8.0, 0.2), (3.0, 0.5), (6.0, 0.6), (10.0, 0.1)]

needs_data = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is not set, so the prefecture table cannot be read",
)


def service_economy(tau0=0.5, foreign=0.5, n=6, spending=0.0):
    params = NEGParams(sigma=5.0, mu=0.4, alpha=0.3, export_access=0.2, foreign_services=foreign)
    costs = TradeCostParams(tau0=tau0)
    return build_economy(
        np.zeros(n),
        np.zeros(n),
        np.ones(n),
        params,
        costs,
        highway=0.3,
        spending=spending,
        gateway=0,
        distance_km=racetrack_distances(n, 600.0),
    )


# --- numerical tier: the two-region Krugman (1991) model, FKV (1999) ch. 5 ---


@pytest.mark.parametrize(("sigma", "mu"), KRUGMAN_CASES)
def test_break_point_closed_form_matches_solver(sigma, mu):
    # Reference: FKV (1999) eq. 5.26; tolerance 1e-6 relative (solver tol 1e-13,
    # central difference step 1e-4 of an odd function of lambda - 1/2).
    closed = break_point(sigma, mu)
    numeric = break_point_numeric(sigma, mu)
    assert abs(numeric / closed - 1) < 1e-6, f"sigma={sigma} mu={mu}: {numeric} vs {closed}"


@pytest.mark.parametrize(("sigma", "mu"), KRUGMAN_CASES)
def test_sustain_point_closed_form_matches_solver(sigma, mu):
    # Reference: FKV (1999) eq. 5.20 solved by Brent's method; tolerance 1e-6 relative.
    closed = sustain_point(sigma, mu)
    numeric = sustain_point_numeric(sigma, mu)
    assert abs(numeric / closed - 1) < 1e-6, f"sigma={sigma} mu={mu}: {numeric} vs {closed}"


@pytest.mark.parametrize(("sigma", "mu"), KRUGMAN_CASES)
def test_sustain_point_above_break_point(sigma, mu):
    t_b, t_s = break_point(sigma, mu), sustain_point(sigma, mu)
    assert 1.0 < t_b, f"T_b={t_b}"
    assert t_b < t_s, f"T_b={t_b} T_s={t_s}"


def test_break_point_textbook_case():
    # sigma = 5, mu = 0.4: rho = 0.8, T_b^{-4} = (0.4 * 0.6) / (1.2 * 1.4) = 1/7.
    assert break_point(5.0, 0.4) == pytest.approx(7.0**0.25, rel=1e-12)


def test_black_hole_raises():
    with pytest.raises(ModelError, match="no-black-hole condition rho > mu fails"):
        break_point(2.0, 0.6)


def test_symmetric_wages_equal_one():
    # FKV normalisation: at lambda = 1/2 every wage and real-wage gap is exact.
    eq = solve_short_run(two_region_economy(1.7, 5.0, 0.4), [0.5, 0.5], tol=1e-13)
    assert np.max(np.abs(eq.wage_m - 1.0)) < 1e-12, eq.wage_m
    assert abs(eq.real_wage_m[0, 0] - eq.real_wage_m[0, 1]) < 1e-12, eq.real_wage_m


def test_tomahawk_stability_pattern():
    ds = tomahawk(5.0, 0.4, [1.3, 1.7, 2.5], n_lambda=60)
    sym = ds["lam"] == 0.5
    core = ds["lam"] == 1.0
    sym_stable = ds["stable"].where(sym).max("branch").values.astype(bool)
    core_stable = ds["stable"].where(core).max("branch").values.astype(bool)
    # T_b = 1.627, T_s = 1.807: below T_b only the core is stable, between both,
    # above T_s only the symmetric equilibrium.
    assert list(sym_stable) == [False, True, True], sym_stable
    assert list(core_stable) == [True, True, False], core_stable


def test_replicator_two_regions_agglomerate_below_break():
    found = find_stable_equilibria(two_region_economy(1.3, 5.0, 0.4), n_starts=10, seed=1)
    # The replicator stops at speed lambda |g| < 1e-7, so a periphery keeps ~1e-6.
    shares = sorted(found.lam_m[:, 0].round(4))
    assert shares == [0.0, 1.0], found.lam_m


def test_replicator_two_regions_disperse_above_sustain():
    found = find_stable_equilibria(two_region_economy(2.5, 5.0, 0.4), n_starts=10, seed=1)
    assert found.basin_count.tolist() == [10], found.basin_count
    assert abs(found.lam_m[0, 0] - 0.5) < 1e-5, found.lam_m


# --- structural tier: solver, trade costs, mapping ---


def test_newton_matches_fixed_point(rng):
    economy = service_economy()
    lam = rng.dirichlet(np.ones(6), size=5)
    newton = solve_short_run(economy, lam, method="newton")
    fixed = solve_short_run(economy, lam, method="fixed_point")
    assert np.max(np.abs(newton.wage_m - fixed.wage_m)) < 1e-8
    assert np.max(np.abs(newton.wage_s - fixed.wage_s)) < 1e-8


def test_nonconvergence_names_tolerance(rng):
    economy = service_economy()
    lam = rng.dirichlet(np.ones(6), size=2)
    with pytest.raises(ModelError, match=r"did not converge .* tolerance 1e-10"):
        solve_short_run(economy, lam, method="fixed_point", max_iter=2, fallback=False)


def test_allocation_must_sum_to_one():
    with pytest.raises(ModelError, match="does not sum to 1"):
        solve_short_run(two_region_economy(1.5, 5.0, 0.4), [0.6, 0.6])


def test_invalid_sigma_raises():
    with pytest.raises(ModelError, match="sigma=0.5"):
        NEGParams(sigma=0.5)


def test_trade_cost_formula():
    distance = np.array([[0.0, 400.0], [400.0, 0.0]])
    costs = TradeCostParams(tau0=0.5, delta=0.5, theta_highway=0.4, service_cost_factor=2.0)
    goods, services = trade_cost_matrix(distance, costs, highway=[1.0, 0.0])
    expected = 1.0 + 0.5 * 4.0**0.5 * np.exp(-0.4 * 0.5)
    assert goods[0, 1] == pytest.approx(expected, rel=1e-12)
    assert services[0, 1] == pytest.approx(1.0 + 2.0 * (expected - 1.0), rel=1e-12)
    assert np.all(np.diag(goods) == 1.0), goods


def test_spending_lowers_trade_costs():
    low = service_economy(spending=0.0).trade_cost
    high = service_economy(spending=1.0).trade_cost
    off = ~np.eye(6, dtype=bool)
    assert np.all(high[off] < low[off]), (high, low)


def test_great_circle_beijing_shanghai():
    # Reference: haversine distance between the city centres, about 1067 km.
    km = great_circle_km([116.4074, 121.4737], [39.9042, 31.2304])[0, 1]
    assert abs(km - 1067.0) < 5.0, km


def test_gvc_position_bounds(rng):
    economy = service_economy()
    eq = solve_short_run(economy, rng.dirichlet(np.ones(6), size=4))
    gvc, dvar = gvc_position(economy, eq)
    assert np.all((gvc > 0) & (gvc < 0.3)), gvc
    assert np.allclose(dvar, 0.7 + gvc), (dvar, gvc)


def test_foreign_services_lower_gvc_position():
    lam = np.full(6, 1 / 6)
    few = service_economy(foreign=0.1)
    many = service_economy(foreign=2.0)
    gvc_few = gvc_position(few, solve_short_run(few, lam))[0][0, 0]
    gvc_many = gvc_position(many, solve_short_run(many, lam))[0][0, 0]
    assert gvc_many < gvc_few, (gvc_many, gvc_few)


def test_gvc_requires_world_market():
    economy = two_region_economy(1.5, 5.0, 0.4)
    with pytest.raises(ModelError, match="export_access = 0"):
        gvc_position(economy, solve_short_run(economy, [0.5, 0.5]))


def test_summary_dims_and_indices():
    economy = service_economy()
    found = find_stable_equilibria(economy, n_starts=6, seed=2)
    summary = equilibrium_summary(economy, found.equilibrium)
    assert summary["lam_m"].dims == ("equilibrium", "city")
    assert int(found.basin_count.sum()) == 6, found.basin_count
    entropy = summary["entropy_norm"].values
    assert np.all((entropy >= 0) & (entropy <= 1)), entropy


# --- sweeps and plots ---

SWEEP = {
    "model": {"alpha": 0.3, "export_access": 0.2, "foreign_services": 0.5},
    "geography": {"n_cities": 5, "gateway": 0},
    "grid": {"tau0": [0.3, 1.5], "spending": [0.0, 1.0]},
    "infrastructure": {"highway": 0.2},
    "dynamics": {"n_starts": 6},
}


def test_sweep_serial_writes_netcdf(tmp_path):
    out = tmp_path / "sweep.nc"
    ds = simulate_sweep({**SWEEP, "dask": {"enabled": False}, "output": str(out)})
    assert ds["gvc_position"].dims == ("tau0", "spending", "equilibrium")
    assert ds["lam_m"].dims == ("tau0", "spending", "equilibrium", "city")
    assert np.all(ds["basin_count"].sum("equilibrium").values == 6)
    assert out.exists()
    with xr.open_dataset(out, engine="h5netcdf") as stored:
        assert np.allclose(stored["gvc_position"], ds["gvc_position"], equal_nan=True)


def test_sweep_dask_matches_serial():
    serial = simulate_sweep({**SWEEP, "dask": {"enabled": False}})
    parallel = simulate_sweep({**SWEEP, "dask": {"n_workers": 2}})
    assert np.allclose(
        serial["gvc_position_basin_mean"], parallel["gvc_position_basin_mean"], equal_nan=True
    )


def test_sweep_unknown_key_lists_valid():
    with pytest.raises(ConfigError, match="Unknown key model.sigmaa; valid keys: alpha"):
        simulate_sweep({"model": {"sigmaa": 4.0}})


def test_sweep_bad_grid_key():
    with pytest.raises(ConfigError, match="Grid key 'rho' is not a model"):
        simulate_sweep({"grid": {"rho": [0.5]}})


def test_plots_return_figures():
    assert isinstance(plot_tomahawk(tomahawk(5.0, 0.4, [1.3, 2.0], n_lambda=20)), Figure)
    ds = simulate_sweep({**SWEEP, "dask": {"enabled": False}})
    assert isinstance(plot_response(ds, x="tau0", hue="spending"), Figure)


# --- real geography ---


@needs_data
@pytest.mark.parametrize(("code", "gateway"), [(44, None), (32, None)])
def test_real_province_twenty_starts(code, gateway):
    params = NEGParams(sigma=5.0, mu=0.4, alpha=0.3, export_access=0.2, foreign_services=0.5)
    economy = province_economy(code, params, TradeCostParams(tau0=0.8))
    found = find_stable_equilibria(economy, n_starts=20, seed=0)
    assert int(found.basin_count.sum()) == 20, found.basin_count
    assert found.lam_m.shape[1] == economy.n_cities
    assert economy.n_cities >= 10, economy.n_cities
