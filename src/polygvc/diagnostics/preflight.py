"""Checks to run before the main job: prior predictive ranges, a small SBC, prior sensitivity.

:func:`run_preflight` builds the config's model on its real design and

1. draws from the prior predictive (first stage, then outcome at the simulated
   endogenous regressor) and compares the implied ranges of the endogenous
   regressor and the outcome, in original units, with the observed ranges;
2. runs simulation-based calibration with few simulations on the same design
   (:mod:`polygvc.diagnostics.sbc`), which catches a model that cannot recover
   its own parameters there (weak identification, a funnel) before hours of
   sampling;
3. fits the model briefly and reports power-scaling prior sensitivity
   (:mod:`polygvc.diagnostics.sensitivity`).

It returns tables and writes files only when given a folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polygvc.atomic import write_text
from polygvc.diagnostics.sensitivity import MAIN_PARAMETERS
from polygvc.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["PreflightReport", "prior_predictive_ranges", "run_preflight"]

PLAUSIBLE_WIDTH_RATIO = 10.0
"""Prior predictive 1-99% width above this multiple of the observed range is flagged."""

SENSITIVITY_PARAMETERS = MAIN_PARAMETERS


@dataclass
class PreflightReport:
    """Tables from :func:`run_preflight`.

    Attributes
    ----------
    prior_predictive : pandas.DataFrame or None
        One row per variable (endogenous regressor, outcome): observed min and
        max, prior predictive 1%, 50% and 99% quantiles, the ratio of the
        prior 1-99% width to the observed range, and ``verdict``
        (``"plausible"`` or ``"too wide"``). None when the model has no
        simulator (see ``notes``).
    sbc : pandas.DataFrame or None
        :func:`polygvc.diagnostics.sbc.sbc_uniformity` of the small SBC; None
        when ``sbc_simulations`` is 0 or the model has no simulator (see
        ``notes``).
    sensitivity : pandas.DataFrame or None
        :func:`polygvc.diagnostics.sensitivity.prior_sensitivity` of the short
        fit; None when switched off.
    timings : dict of str to float
        Seconds per check.
    notes : list of str
        Plain-language remarks (checks not run and why).
    files : dict of str to Path
        Files written, when a folder was given.
    """

    prior_predictive: pd.DataFrame | None
    sbc: pd.DataFrame | None
    sensitivity: pd.DataFrame | None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def flags(self) -> list[str]:
        """Return one line per check that is not clean, naming the parameters."""
        flags = []
        if self.prior_predictive is not None:
            wide = self.prior_predictive.index[self.prior_predictive["verdict"] != "plausible"]
            if len(wide):
                flags.append(f"prior predictive too wide for {', '.join(map(str, wide))}")
        if self.sbc is not None:
            failed = self.sbc.index[self.sbc["verdict"] != "calibrated"]
            if len(failed):
                flags.append(f"SBC verdict 'check' for {', '.join(map(str, failed))}")
        if self.sensitivity is not None:
            for diagnosis in ("prior-data conflict", "strong prior / weak likelihood"):
                names = self.sensitivity.index[self.sensitivity["diagnosis"] == diagnosis]
                if len(names):
                    flags.append(f"{diagnosis} for {', '.join(map(str, names))}")
        return flags

    @property
    def ok(self) -> bool:
        """Whether every table's verdicts are clean (no :attr:`flags`)."""
        return not self.flags


def _configured_problem(config: Any, panel: pd.DataFrame) -> tuple[Any, Any, Any, str | None]:
    """Return the spec, model data and SBC problem of the model that ``polygvc run`` fits.

    The problem is None, with the reason, when the simulator does not cover
    the model (extra endogenous regressors, two or province-varying thresholds).
    """
    from polygvc.errors import ModelError
    from polygvc.models.data import prepare_model_data

    if config.model.kind == "hierarchical_iv":
        from polygvc.diagnostics.sbc import iv_problem_from_data
        from polygvc.models.spec import HierarchicalIVSpec

        spec = HierarchicalIVSpec.from_config(config.model, config.data)
        data = prepare_model_data(panel, spec)
        return spec, data, iv_problem_from_data(spec, data, name="preflight"), None
    from polygvc.diagnostics.sbc_problems_cf import cf_problem_from_data
    from polygvc.models.control_function import ControlFunctionSpec

    spec = ControlFunctionSpec.from_config(config.model, config.data)
    data = prepare_model_data(panel, spec)
    try:
        return spec, data, cf_problem_from_data(spec, data, name="preflight"), None
    except ModelError as exc:
        return spec, data, None, str(exc)


def _sensitivity_model(spec: Any, data: Any) -> Any:
    """Build the per-row model that the short sensitivity fit samples."""
    if getattr(spec, "kind", "hierarchical_iv") == "hierarchical_iv":
        from polygvc.models.hierarchical_iv import build_hierarchical_iv

        return build_hierarchical_iv(spec, data)
    from polygvc.models.control_function import build_control_function

    return build_control_function(spec, data)


def prior_predictive_ranges(
    spec: Any, data: Any, n_draws: int = 500, seed: int = 0, problem: Any = None
) -> pd.DataFrame:
    """Compare prior predictive ranges of the endogenous regressor and outcome with the data.

    Parameters
    ----------
    spec : HierarchicalIVSpec or ControlFunctionSpec
    data : ModelData
    n_draws : int
        Prior predictive data sets.
    seed : int
    problem : SBCProblem, optional
        The simulator to draw from; the hierarchical IV problem on ``data``
        when omitted.

    Returns
    -------
    pandas.DataFrame
        See :attr:`PreflightReport.prior_predictive`; values in original units.

    Notes
    -----
    Data sets are simulated as in SBC (first stage, then the outcome at the
    simulated regressor) and pooled over draws and rows. Because the model
    works on standardised data with priors of scale one, a 1-99% prior width
    of a few observed ranges is expected; more than
    :data:`PLAUSIBLE_WIDTH_RATIO` means the priors let the model imagine data
    far outside anything plausible, which can also slow sampling.
    """
    if problem is None:
        from polygvc.diagnostics.sbc import iv_problem_from_data

        problem = iv_problem_from_data(spec, data, name="preflight")
    simulated = problem.simulate(problem.build_model(), n_draws, seed)
    rows = []
    for key, column in (("x", spec.endog), ("y", spec.dependent)):
        scale = data.scaling[column]
        values = np.concatenate([updates[key] for _, updates in simulated])
        values = values * scale["sd"] + scale["mean"]
        observed = data.frame[column].to_numpy(dtype=float)
        q01, q50, q99 = np.quantile(values, [0.01, 0.5, 0.99])
        observed_range = float(observed.max() - observed.min())
        ratio = float(q99 - q01) / observed_range
        rows.append(
            {
                "variable": column,
                "observed_min": float(observed.min()),
                "observed_max": float(observed.max()),
                "prior_q01": float(q01),
                "prior_q50": float(q50),
                "prior_q99": float(q99),
                "width_ratio": round(ratio, 2),
                "verdict": "plausible" if ratio <= PLAUSIBLE_WIDTH_RATIO else "too wide",
            }
        )
    return pd.DataFrame(rows).set_index("variable")


def run_preflight(
    config: Any,
    panel: pd.DataFrame | None = None,
    *,
    folder: str | Path | None = None,
    sbc_simulations: int = 20,
    sbc_draws: int = 200,
    fit_draws: int = 300,
    sensitivity: bool = True,
    scheduler_address: str | None = None,
    n_workers: int = 2,
) -> PreflightReport:
    """Run the pre-flight checks of a configuration.

    Parameters
    ----------
    config : RunConfig, dict, str or Path
        The run configuration or its TOML path.
    panel : pandas.DataFrame, optional
        The analysis panel; built from the config's ``[data]`` section when omitted.
    folder : str or Path, optional
        When given, writes ``preflight.json`` (all tables) and the SBC figures
        and ranks there. Nothing is written otherwise.
    sbc_simulations : int, default 20
        Simulations of the small SBC; 0 skips it. Twenty finds gross failures
        only (a parameter never recovered), not subtle miscalibration.
    sbc_draws : int, default 200
        Draws and tuning steps per chain (2 chains) of each SBC fit.
    fit_draws : int, default 300
        Draws and tuning steps per chain (2 chains) of the short fit used for
        sensitivity.
    sensitivity : bool, default True
        Run the short fit and the power-scaling sensitivity.
    scheduler_address : str, optional
        Dask scheduler for the SBC; a 2-worker ``LocalCluster`` by default.
    n_workers : int, default 2
        Workers of the local cluster.

    Returns
    -------
    PreflightReport

    Raises
    ------
    PolygvcError
        Config, data or model errors, as in the main job.
    ConfigError
        ``sbc_simulations`` is negative, or ``folder`` is an existing file.

    Notes
    -----
    When the simulator does not cover the model (extra endogenous
    regressors, two thresholds, province-varying thresholds), the prior
    predictive and the SBC are skipped with a note and the sensitivity fit
    still runs.
    """
    from polygvc.config import coerce_config

    config = coerce_config(config)
    if sbc_simulations < 0:
        raise ConfigError(
            f"The number of SBC simulations is {sbc_simulations}; it must be 0 (skip the SBC) "
            "or more. Fix: pass 0 (--sims 0 on the command line) or a positive number."
        )
    out = Path(folder) if folder is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(
            f"The output folder {out} is a file, so the pre-flight results cannot be written "
            "there. Fix: pass a folder path to --out."
        )
    timings: dict[str, float] = {}
    notes: list[str] = []
    if panel is None:
        from polygvc.data_prep.panel import panel_from_config

        panel = panel_from_config(config.data)
    spec, data, problem, no_simulator = _configured_problem(config, panel)

    prior_table = None
    if problem is not None:
        start = time.perf_counter()
        prior_table = prior_predictive_ranges(spec, data, seed=config.run.seed, problem=problem)
        timings["prior_predictive"] = round(time.perf_counter() - start, 2)
    else:
        notes.append(f"Prior predictive and SBC not run: {no_simulator}")

    sbc_table = None
    files: dict[str, Path] = {}
    if problem is not None and sbc_simulations > 0:
        from polygvc.diagnostics.sbc import SBCSettings, plot_sbc, run_sbc

        start = time.perf_counter()
        settings = SBCSettings(
            draws=sbc_draws,
            tune=sbc_draws,
            chains=2,
            n_rank_draws=min(99, 2 * sbc_draws - 1),
            seed=config.run.seed,
        )
        result = run_sbc(
            problem,
            sbc_simulations,
            settings,
            scheduler_address=scheduler_address,
            n_workers=n_workers,
            out=out / "preflight_sbc.nc" if out else None,
        )
        sbc_table = result.uniformity
        if out is not None:
            pictures = plot_sbc(result.ranks, out, "preflight_sbc")
            files.update({f"sbc_{kind}": Path(path) for kind, path in pictures.items()})
            files["sbc_ranks"] = out / "preflight_sbc.nc"
        timings["sbc"] = round(time.perf_counter() - start, 2)
    elif problem is not None:
        notes.append("SBC not run: sbc_simulations = 0.")

    sensitivity_table = None
    if sensitivity:
        import pymc as pm

        from polygvc.diagnostics.sensitivity import prior_sensitivity

        start = time.perf_counter()
        model = _sensitivity_model(spec, data)
        dt = pm.sample(
            model=model,
            nuts_sampler=config.inference.sampler,
            draws=fit_draws,
            tune=fit_draws,
            chains=2,
            random_seed=config.run.seed,
            progressbar=False,
        )
        pm.compute_log_likelihood(dt, model=model, progressbar=False)
        if config.model.kind != "hierarchical_iv":
            from polygvc.models.control_function import complete_cf_datatree

            # The threshold model's outcome density is a potential; this adds
            # its pointwise log-likelihood at each draw's threshold.
            dt = complete_cf_datatree(dt, spec, data, seed=config.run.seed + 2)
        present = [name for name in SENSITIVITY_PARAMETERS if name in model.named_vars]
        sensitivity_table = prior_sensitivity(dt, model, var_names=present)
        timings["sensitivity"] = round(time.perf_counter() - start, 2)
    else:
        notes.append("Sensitivity not run: switched off.")

    report = PreflightReport(prior_table, sbc_table, sensitivity_table, timings, notes, files)
    if out is not None:
        payload = {
            "prior_predictive": None
            if prior_table is None
            else json.loads(prior_table.reset_index().to_json(orient="records")),
            "sbc": None
            if sbc_table is None
            else json.loads(sbc_table.reset_index().to_json(orient="records")),
            "sensitivity": None
            if sensitivity_table is None
            else json.loads(sensitivity_table.reset_index().to_json(orient="records")),
            "timings": timings,
            "notes": notes,
            "flags": report.flags,
            "ok": report.ok,
        }
        text = json.dumps(payload, indent=2) + "\n"
        files["preflight"] = write_text(out / "preflight.json", text)
    return report
