"""Centre-periphery model of polycentric agglomeration and GVC position (public API).

Re-exports the public functions of :mod:`polygvc.models.neg`. The model is the
multi-region core-periphery model of Fujita, Krugman and Venables (1999), *The
Spatial Economy*, chapters 5-6 (Krugman 1991), with a business-service input to
manufacturing in the manner of chapter 14 (Krugman and Venables 1995) and
Venables (1996); equations and extensions are in
:mod:`polygvc.models.neg.equilibrium` and ``docs/centre_periphery.md``.
"""

from __future__ import annotations

from polygvc.models.neg.dynamics import (
    DynamicsResult,
    StableEquilibria,
    find_stable_equilibria,
    random_starts,
    simulate_dynamics,
)
from polygvc.models.neg.equilibrium import (
    Economy,
    NEGParams,
    ShortRunEquilibrium,
    solve_short_run,
)
from polygvc.models.neg.geography import (
    TradeCostParams,
    build_economy,
    great_circle_km,
    prefecture_table,
    province_economy,
    racetrack_distances,
    trade_cost_matrix,
)
from polygvc.models.neg.krugman import (
    break_point,
    break_point_numeric,
    sustain_point,
    sustain_point_numeric,
    tomahawk,
    two_region_economy,
)
from polygvc.models.neg.mapping import equilibrium_summary, gvc_position
from polygvc.models.neg.plots import plot_response, plot_tomahawk
from polygvc.models.neg.sweeps import DEFAULT_CONFIG, resolve_config, simulate_sweep

__all__ = [
    "DEFAULT_CONFIG",
    "DynamicsResult",
    "Economy",
    "NEGParams",
    "ShortRunEquilibrium",
    "StableEquilibria",
    "TradeCostParams",
    "break_point",
    "break_point_numeric",
    "build_economy",
    "equilibrium_summary",
    "find_stable_equilibria",
    "great_circle_km",
    "gvc_position",
    "plot_response",
    "plot_tomahawk",
    "prefecture_table",
    "province_economy",
    "racetrack_distances",
    "random_starts",
    "resolve_config",
    "simulate_dynamics",
    "simulate_sweep",
    "solve_short_run",
    "sustain_point",
    "sustain_point_numeric",
    "tomahawk",
    "trade_cost_matrix",
    "two_region_economy",
]
