r"""Recovery study: Bayesian scenario effects against the centre-periphery model's true responses.

The study simulates a structural panel
(:func:`polygvc.diagnostics.structural_generator.simulate_structural_panel`),
fits the hierarchical IV model (:mod:`polygvc.models.hierarchical_iv`) with
the polycentricity index as ``endog``, the location-policy lever as the
instrument and the HSR share as a control, and computes two scenarios with
:func:`polygvc.inference.scenarios.run_scenarios` over every province and
panel year:

* ``index_up``: the index rises by ``index_change`` (``how = "absolute"``);
  the truth is ``do(x := x + Delta)`` of the generator.
* ``full_hsr``: ``hsr_city_share`` is set to ``hsr_target`` with
  ``pathway = "total"``, so the index moves through the first stage as city
  wages move it in the model. The truth is ``do(hsr := h)``.

Both scenarios average each province's years, as the truths do, so each
province has one true and one estimated effect, and the national row
averages the provinces with equal weights, as the truth's average does.

Measures, per scenario:

* the share of provinces whose central interval (``ci_prob``, ArviZ's
  ``stats.ci_prob``, 0.89 by default) contains the province's true effect;
* the same share over province-years;
* whether the national interval contains the true average;
* the bias of the national posterior mean.

Two within-province estimators (OLS and 2SLS with province means removed)
give the reference a non-Bayesian analyst would see.

The linear model gives one effect per province for every year, but the truth
varies between years because the GVC proxy is a curved function of the
allocation and of infrastructure. :func:`nonlinearity_summary` measures the
share of the true unit-level variation that lies within provinces, which no
linear province-slope model can represent.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from polygvc.diagnostics.structural_generator import (
    DEFAULT_YEARS,
    StructuralPanel,
    StructuralParams,
    simulate_structural_panel,
)
from polygvc.errors import ConfigError, ExtrapolationWarning

logger = logging.getLogger(__name__)

__all__ = [
    "RecoverySettings",
    "StructuralRecovery",
    "compare_effects",
    "fit_structural_panel",
    "nonlinearity_summary",
    "run_structural_recovery",
    "within_estimates",
]

OUTCOME = "gvc_position"
INSTRUMENT = "location_policy"
CONTROL = "hsr_city_share"
SCENARIO_TRUTH = {"index_up": "true_effect_index", "full_hsr": "true_effect_hsr"}
"""Scenario name -> panel column of its true province-year response."""


@dataclass(frozen=True)
class RecoverySettings:
    """Sampler settings of the study; the defaults are the documented run.

    Attributes
    ----------
    chains, draws, tune : int
        nutpie chains, kept draws and tuning steps per chain.
    target_accept : float
        Target acceptance of NUTS.
    cores : int
        Chains run in parallel (1 keeps the study on one core).
    seed : int
        Sampler and scenario seed.
    ci_prob : float or None
        Interval probability; None uses ArviZ ``rcParams["stats.ci_prob"]``.
    """

    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.95
    cores: int = 1
    seed: int = 20261204
    ci_prob: float | None = None

    def __post_init__(self) -> None:
        for name in ("chains", "draws", "tune", "cores"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"RecoverySettings.{name} = {value!r} must be a positive integer."
                )
        if self.chains < 2:
            raise ConfigError(
                f"RecoverySettings.chains = {self.chains} is too few: R-hat needs at least 2 "
                "chains. Fix: set chains = 2 or more."
            )
        if self.ci_prob is not None and not 0.0 < self.ci_prob < 1.0:
            raise ConfigError(
                f"RecoverySettings.ci_prob = {self.ci_prob!r} must lie strictly between 0 and 1."
            )


@dataclass
class StructuralRecovery:
    """Result of :func:`run_structural_recovery`.

    Attributes
    ----------
    provinces : pandas.DataFrame
        One row per scenario and province: ``truth``, posterior ``mean``,
        ``lower``, ``upper``, ``covered`` and ``error`` (mean - truth), in
        outcome units.
    units : pandas.DataFrame
        The same per province-year.
    summary : pandas.DataFrame
        One row per scenario: ``truth_average``, national ``mean``, ``lower``,
        ``upper``, ``covered``, ``bias``, ``relative_bias``,
        ``province_coverage``, ``unit_coverage``, ``n_provinces`` and
        ``n_flagged_units`` (units with extrapolation flags).
    reference : dict
        Within-province OLS and 2SLS estimates of the ``index_up`` effect.
    nonlinearity : dict
        :func:`nonlinearity_summary` of each scenario's truth.
    convergence : dict
        Maximum R-hat, minimum bulk ESS and divergences of the reported parameters.
    timings : dict
        Seconds spent generating, fitting and computing scenarios.
    structural : StructuralPanel
        The simulated panel and its truth.
    settings : RecoverySettings
    """

    provinces: pd.DataFrame
    units: pd.DataFrame
    summary: pd.DataFrame
    reference: dict[str, float]
    nonlinearity: dict[str, dict[str, float]]
    convergence: dict[str, float]
    timings: dict[str, float]
    structural: StructuralPanel
    settings: RecoverySettings = field(default_factory=RecoverySettings)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (no posterior draws)."""
        truth = {k: v for k, v in self.structural.truth.items() if k != "description"}
        return {
            "summary": self.summary.to_dict(orient="records"),
            "provinces": self.provinces.to_dict(orient="records"),
            "reference": self.reference,
            "nonlinearity": self.nonlinearity,
            "convergence": self.convergence,
            "timings": self.timings,
            "settings": asdict(self.settings),
            "truth": truth,
        }


# --------------------------------------------------------------------------- kernels


def within_estimates(panel: pd.DataFrame, index: str, change: float) -> dict[str, float]:
    """Estimate the ``index_up`` effect by within-province OLS and 2SLS.

    Both regress the outcome on the index and the HSR share after removing
    province means; 2SLS instruments the index with the location-policy
    lever. The effect is the slope times ``change``. They assume one common
    slope, so they estimate a variance-weighted average of the province
    effects, not their plain average.
    """
    columns = [OUTCOME, index, CONTROL, INSTRUMENT]
    demeaned = panel[columns] - panel.groupby("province")[columns].transform("mean")
    y = demeaned[OUTCOME].to_numpy(float)
    x = demeaned[[index, CONTROL]].to_numpy(float)
    z = demeaned[[INSTRUMENT, CONTROL]].to_numpy(float)
    ols = np.linalg.lstsq(x, y, rcond=None)[0]
    fitted = z @ np.linalg.lstsq(z, x, rcond=None)[0]
    tsls = np.linalg.lstsq(fitted, y, rcond=None)[0]
    return {"within_ols": float(ols[0] * change), "within_2sls": float(tsls[0] * change)}


def nonlinearity_summary(panel: pd.DataFrame, truth_column: str) -> dict[str, float]:
    """Measure how much of a true response varies within provinces.

    Returns
    -------
    dict
        * ``within_share``: share of the variance of the province-year
          truths that lies within provinces. A linear model with province
          slopes gives every year of a province the same effect for an
          absolute change, so it cannot represent this part.
        * ``sign_change_provinces``: provinces whose true effect changes sign
          between years.
        * ``max_within_range``: the largest range of a province's true
          effects over its years.
    """
    values = panel[truth_column].to_numpy(float)
    province_mean = panel.groupby("province")[truth_column].transform("mean").to_numpy(float)
    total = float(np.sum((values - values.mean()) ** 2))
    within = float(np.sum((values - province_mean) ** 2))
    grouped = panel.groupby("province")[truth_column]
    sign_change = int((grouped.min() * grouped.max() < 0).sum())
    return {
        "within_share": within / total if total > 0 else 0.0,
        "sign_change_provinces": sign_change,
        "max_within_range": float((grouped.max() - grouped.min()).max()),
    }


def compare_effects(
    table: pd.DataFrame, panel: pd.DataFrame, scenario: str, truth_column: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Join a scenario's posterior summaries with the true responses.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`polygvc.inference.scenarios.ScenarioResults.table`.
    panel : pandas.DataFrame
        The structural panel (``truth_column`` per province-year).
    scenario, truth_column : str
        Scenario name and the panel column of its truth.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, dict)
        Province rows, province-year rows and the national summary.
    """
    rows = table[table["scenario"] == scenario]
    keep = ["province", "region", "mean", "lower", "upper"]

    units = rows[rows["level"] == "unit"][[*keep, "year"]].copy()
    units["year"] = units["year"].astype("int64")
    units = units.merge(
        panel[["province", "year", truth_column]].rename(columns={truth_column: "truth"}),
        on=["province", "year"],
        how="left",
        validate="one_to_one",
    )
    provinces = rows[rows["level"] == "province"][keep].copy()
    truth = panel.groupby("province")[truth_column].mean().rename("truth")
    provinces = provinces.merge(truth, left_on="province", right_index=True, how="left")
    for frame in (units, provinces):
        frame["covered"] = (frame["lower"] <= frame["truth"]) & (frame["truth"] <= frame["upper"])
        frame["error"] = frame["mean"] - frame["truth"]
        frame.insert(0, "scenario", scenario)

    nation = rows[rows["level"] == "nation"].iloc[0]
    average = float(provinces["truth"].mean())
    bias = float(nation["mean"]) - average
    summary = {
        "scenario": scenario,
        "truth_average": average,
        "mean": float(nation["mean"]),
        "lower": float(nation["lower"]),
        "upper": float(nation["upper"]),
        "covered": bool(nation["lower"] <= average <= nation["upper"]),
        "bias": bias,
        "relative_bias": bias / abs(average) if average != 0 else float("nan"),
        "province_coverage": float(provinces["covered"].mean()),
        "unit_coverage": float(units["covered"].mean()),
        "n_provinces": len(provinces),
        "n_flagged_units": int((rows.loc[rows["level"] == "unit", "n_flagged"] > 0).sum()),
    }
    return provinces.reset_index(drop=True), units.reset_index(drop=True), summary


# --------------------------------------------------------------------------- fitting


def fit_structural_panel(panel: pd.DataFrame, index: str, settings: RecoverySettings):
    """Fit the hierarchical IV model to a structural panel.

    Returns
    -------
    (xarray.DataTree, HierarchicalIVSpec)
        Results with the ``spec`` and ``scaling`` root attrs that
        :func:`polygvc.inference.scenarios.run_scenarios` reads.
    """
    from polygvc.inference.sampling import SamplerSettings, sample_model
    from polygvc.models.data import prepare_model_data
    from polygvc.models.hierarchical_iv import build_hierarchical_iv
    from polygvc.models.spec import HierarchicalIVSpec

    spec = HierarchicalIVSpec(
        dependent=OUTCOME, endog=index, instruments=[INSTRUMENT], controls=[CONTROL]
    )
    data = prepare_model_data(panel, spec, source="the structural panel")
    model = build_hierarchical_iv(spec, data)
    sampler = SamplerSettings(
        chains=settings.chains,
        draws=settings.draws,
        tune=settings.tune,
        target_accept=settings.target_accept,
        cores=settings.cores,
        seed=settings.seed,
        posterior_predictive=False,
        log_likelihood=False,
    )
    return sample_model(model, data, spec.to_json(), sampler), spec


def _convergence(dt) -> dict[str, float]:
    from polygvc.diagnostics.convergence import convergence_verdict
    from polygvc.models.hierarchical_iv import REPORTED_PARAMETERS

    names = [n for n in REPORTED_PARAMETERS if n in dt["posterior"].data_vars]
    table = convergence_verdict(dt, var_names=names).table
    return {
        "max_rhat": float(table.loc["max_rhat", "value"]),
        "min_ess_bulk": float(table.loc["min_ess_bulk", "value"]),
        "divergences": float(table.loc["divergences", "value"]),
    }


def _scenarios(structural: StructuralPanel) -> list[dict[str, Any]]:
    truth = structural.truth
    years = [int(y) for y in truth["years"]]
    return [
        {
            "name": "index_up",
            "changes": [
                {"variable": truth["index"], "how": "absolute", "value": truth["index_change"]}
            ],
            "year": years,
        },
        {
            "name": "full_hsr",
            "changes": [{"variable": CONTROL, "how": "set", "value": truth["hsr_target"]}],
            "year": years,
            "pathway": "total",
        },
    ]


def run_structural_recovery(
    structural: StructuralPanel | None = None,
    *,
    settings: RecoverySettings | None = None,
    params: StructuralParams | None = None,
    province_codes: list[int] | None = None,
    years: tuple[int, ...] = DEFAULT_YEARS,
    generator_seed: int = 0,
) -> StructuralRecovery:
    """Simulate a structural panel, fit the hierarchical IV model and compare effects.

    Parameters
    ----------
    structural : StructuralPanel, optional
        A panel from :func:`simulate_structural_panel`; simulated from
        ``params``, ``province_codes``, ``years`` and ``generator_seed`` when
        None (the city geography is then read through the data registry).
    settings : RecoverySettings, optional
        Sampler settings; the documented run when None.
    params, province_codes, years, generator_seed
        Passed to :func:`simulate_structural_panel` when ``structural`` is None.

    Returns
    -------
    StructuralRecovery

    Raises
    ------
    PolygvcError
        From the generator, the model builder or the sampler.

    Notes
    -----
    Scenario extrapolation warnings are expected for ``full_hsr`` because no
    province reaches full HSR coverage in the data. They are counted in
    ``n_flagged_units`` instead of being shown.
    """
    from polygvc.inference.scenarios import run_scenarios

    settings = settings or RecoverySettings()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if structural is None:
        structural = simulate_structural_panel(
            province_codes, years, params=params, seed=generator_seed
        )
    timings["generate"] = round(time.perf_counter() - start, 1)
    panel = structural.panel
    index = structural.truth["index"]

    start = time.perf_counter()
    dt, _ = fit_structural_panel(panel, index, settings)
    timings["fit"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        results = run_scenarios(
            dt, panel, _scenarios(structural), seed=settings.seed, ci_prob=settings.ci_prob
        )
    timings["scenarios"] = round(time.perf_counter() - start, 1)

    province_frames, unit_frames, summaries = [], [], []
    for scenario, column in SCENARIO_TRUTH.items():
        provinces, units, summary = compare_effects(results.table, panel, scenario, column)
        summary["ci_prob"] = results.ci_prob
        province_frames.append(provinces)
        unit_frames.append(units)
        summaries.append(summary)
        logger.info(
            "Scenario %s: true average %.4g, posterior mean %.4g [%.4g, %.4g], province "
            "coverage %.2f",
            scenario,
            summary["truth_average"],
            summary["mean"],
            summary["lower"],
            summary["upper"],
            summary["province_coverage"],
        )
    return StructuralRecovery(
        provinces=pd.concat(province_frames, ignore_index=True),
        units=pd.concat(unit_frames, ignore_index=True),
        summary=pd.DataFrame(summaries),
        reference=within_estimates(panel, index, structural.truth["index_change"]),
        nonlinearity={s: nonlinearity_summary(panel, c) for s, c in SCENARIO_TRUTH.items()},
        convergence=_convergence(dt),
        timings=timings,
        structural=structural,
        settings=settings,
    )
