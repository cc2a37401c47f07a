"""The main job: data, model, sampling, diagnostics and report from one config.

Each stage is also a function here, so script users can run them one by one::

    import polygvc.pipeline as pipe
    config = pipe.load("examples/china_provinces.toml")
    panel, notes = pipe.build_panel(config)
    spec, data, model = pipe.build_model(config, panel)
    dt = pipe.fit(config, spec, data, model)

:func:`run` does all of it and writes the run folder:

``panel.parquet``, ``posterior.nc``, ``diagnostics.json``, ``report.html``,
``manifest.json`` (written last; its presence marks a finished run) and
``polygvc.log`` (written by the CLI).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from polygvc.atomic import atomic_path, write_text
from polygvc.config import RunConfig, coerce_config
from polygvc.errors import ConfigError, DataError, RunDirectoryError
from polygvc.inference.sampling import SamplerSettings, sample_model
from polygvc.inference.store import (
    MANIFEST_FILE,
    POSTERIOR_FILE,
    build_manifest,
    save_datatree,
    write_manifest,
)
from polygvc.models.data import ModelData, prepare_model_data
from polygvc.models.hierarchical_iv import REPORTED_PARAMETERS, build_hierarchical_iv
from polygvc.models.spec import HierarchicalIVSpec

logger = logging.getLogger(__name__)

PANEL_FILE = "panel.parquet"
REPORT_FILE = "report.html"
DIAGNOSTICS_FILE = "diagnostics.json"
SCENARIOS_FILE = "scenarios.csv"


@dataclass
class RunResult:
    """Output of :func:`run`: the run folder, its files, and the main objects."""

    run_dir: Path
    files: dict[str, Path]
    datatree: xr.DataTree
    panel: pd.DataFrame
    verdict: Any
    timings: dict[str, float] = field(default_factory=dict)


def load(config: RunConfig | dict | str | Path) -> RunConfig:
    """Return a validated configuration from a path, mapping or ``RunConfig``."""
    return coerce_config(config)


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write a DataFrame as Parquet atomically and return the path."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def prepare_run_dir(out: Path, overwrite: bool) -> Path:
    """Create the run folder; reject a finished run unless ``overwrite`` is set.

    A run is finished when its ``manifest.json`` exists. A folder left by an
    interrupted run (no manifest) is reused; its complete files stay until
    replaced.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(
            f"Run folder {out} exists and is not a folder. Fix: choose another --out path."
        )
    if (out / MANIFEST_FILE).exists() and not overwrite:
        raise RunDirectoryError(
            f"Run folder {out} contains a finished run ({MANIFEST_FILE} exists). polygvc does not "
            "overwrite finished runs. Fix: choose another --out folder, or pass --overwrite "
            "to replace it."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _panel_notes(panel: pd.DataFrame, spec: HierarchicalIVSpec, data: ModelData) -> list[str]:
    """Plain-language notes on the data and its limits, computed from the panel."""
    notes: list[str] = []
    n_units = len(data.coords["province"])
    years = data.coords["year"]
    notes.append(
        f"The model uses {data.n_obs} province-years: {n_units} provinces observed in "
        f"{len(years)} years ({', '.join(map(str, years))}). This outcome table is thin, so "
        "province effects lean heavily on pooling within regions."
    )
    if spec.dependent in ("vae_gdp_pct", "dvar_exports"):
        notes.append(
            "The outcome is model-based: export-induced value added estimated by Wu, Li and Lei "
            "(2016, SpringerPlus 5:210) from China's multi-regional input-output tables and "
            "rounded to whole percentages in the article. It is not an observed customs measure."
        )
    if "excluded_reason" in panel.columns:
        excluded = panel.loc[
            panel["excluded_reason"].fillna("") != "", ["province", "excluded_reason"]
        ].drop_duplicates("province")
        for _, row in excluded.iterrows():
            notes.append(f"{row['province']} is not in the model: {row['excluded_reason']}")
    if spec.endog.startswith("poly_"):
        notes.append(
            "Polycentricity is measured from NPP-VIIRS-like night-time light of prefecture cities; "
            "the light series is noisy before 2013, so indices use within-province shares, which "
            "are robust to level jumps in the national total."
        )
    return notes


def build_panel(config: RunConfig) -> pd.DataFrame:
    """Build the real province panel or read the user's panel file."""
    from polygvc.data_prep.panel import panel_from_config

    return panel_from_config(config.data)


def build_model(config: RunConfig, panel: pd.DataFrame, source: str = "the panel"):
    """Return ``(spec, model_data, pymc_model)`` for a config and panel.

    ``model.kind = "hierarchical_iv"`` builds the joint bivariate-normal IV
    model; the ``cf_*`` kinds build control-function models (linear with
    interactions, threshold, spline) from :mod:`polygvc.models.control_function`.
    """
    if config.model.kind == "hierarchical_iv":
        spec = HierarchicalIVSpec.from_config(config.model, config.data)
        data = prepare_model_data(panel, spec, source=source)
        if config.model.likelihood == "sufficient":
            from polygvc.models.hierarchical_iv_suffstat import build_hierarchical_iv_suffstat

            return spec, data, build_hierarchical_iv_suffstat(spec, data)
        return spec, data, build_hierarchical_iv(spec, data)
    if config.model.likelihood == "sufficient":
        raise ConfigError(
            f"model.likelihood = 'sufficient' is available for kind = 'hierarchical_iv' only, "
            f"not {config.model.kind!r}. Fix: set model.likelihood = 'per_observation'."
        )
    from polygvc.models.control_function import ControlFunctionSpec, build_control_function

    spec = ControlFunctionSpec.from_config(config.model, config.data)
    data = prepare_model_data(panel, spec, source=source)
    return spec, data, build_control_function(spec, data)


def check_scenarios(config: RunConfig, spec: HierarchicalIVSpec) -> None:
    """Reject scenarios that change a variable the model lacks, before sampling."""
    valid = [spec.endog, *getattr(spec, "extra_endog", []), *spec.covariates]
    where = str(config.source_path) if config.source_path else "the configuration"
    for scenario in config.scenarios.root:
        for change in scenario.changes:
            if change.variable not in valid:
                raise ConfigError(
                    f"Scenario {scenario.name!r} in {where} changes {change.variable!r}, which "
                    f"is not in the model. Valid variables: {', '.join(valid)}. Fix: change "
                    "one of these, or add the column to model.controls or model.moderators."
                )


def _reported_parameters(spec: HierarchicalIVSpec) -> tuple[str, ...]:
    if isinstance(spec, HierarchicalIVSpec) and type(spec) is HierarchicalIVSpec:
        return REPORTED_PARAMETERS
    from polygvc.models.control_function import REPORTED_PARAMETERS as CF_REPORTED

    return CF_REPORTED


def fit(
    config: RunConfig,
    spec: HierarchicalIVSpec,
    data: ModelData,
    model,
    progressbar: bool = False,
) -> xr.DataTree:
    """Sample the model with the config's settings and return the DataTree."""
    settings = SamplerSettings.from_config(config.inference, config.run.seed, progressbar)
    if config.model.likelihood == "sufficient":
        return _fit_sufficient(config, spec, data, model, settings)
    dt = sample_model(model, data, spec.to_json(), settings)
    if config.model.kind == "hierarchical_iv":
        return dt
    from polygvc.models.control_function import complete_cf_datatree

    # Threshold fits keep the outcome density in a potential; this fills in the
    # outcome's predictive draws, log-likelihood and the threshold posterior.
    return complete_cf_datatree(dt, spec, data, seed=settings.seed + 2)


def _fit_sufficient(config, spec, data, model, settings: SamplerSettings) -> xr.DataTree:
    """Sample the sufficient-statistic model, then add per-row predictive draws and log-likelihood.

    PyMC cannot derive these from a likelihood written as a potential, so they
    are computed from the posterior draws and the model rows.
    """
    from dataclasses import replace

    from polygvc.models.hierarchical_iv_suffstat import (
        add_log_likelihood,
        add_posterior_predictive,
    )

    plain = replace(settings, posterior_predictive=False, log_likelihood=False)
    dt = sample_model(model, data, spec.to_json(), plain)
    if settings.log_likelihood:
        add_log_likelihood(dt, data)
    if settings.posterior_predictive:
        add_posterior_predictive(dt, data, seed=settings.seed + 1)
    # The potential has no observed variable, so the observed pairs are stored
    # here as the per-observation model stores them.
    observed = xr.Dataset(
        {"outcomes": (("obs", "equation"), np.column_stack([data.x, data.y]))},
        coords={"obs": data.coords["obs"], "equation": data.coords["equation"]},
    )
    dt["observed_data"] = xr.DataTree(observed)
    # The Gram matrices are model input, not results; they would add dims outside
    # the stored vocabulary.
    constant = dt["constant_data"].to_dataset()
    dt["constant_data"] = xr.DataTree(constant.drop_vars(["gram"], errors="ignore"))
    return dt


def diagnose(
    config: RunConfig,
    spec: HierarchicalIVSpec,
    data: ModelData,
    dt: xr.DataTree,
    model: Any = None,
):
    """Run convergence, first-stage, classical and prior-sensitivity checks.

    Returns a dict with ``verdict`` (convergence verdict table), ``summary``
    (per-parameter table), ``first_stage``, ``classical`` (or None when
    switched off) and ``sensitivity`` (power-scaling table; None without
    ``model`` or without a log-likelihood group).
    """
    from polygvc.diagnostics.convergence import (
        convergence_summary,
        convergence_verdict,
        warn_if_needed,
    )

    reported = _reported_parameters(spec)
    var_names = [name for name in reported if name in dt["posterior"].data_vars]
    verdict = convergence_verdict(dt, var_names=var_names)
    warn_if_needed(verdict)
    summary = convergence_summary(dt, var_names=var_names)
    result: dict[str, Any] = {"verdict": verdict, "summary": summary}

    frame = data.frame
    cluster = config.diagnostics.cluster or None
    from polygvc.diagnostics.instruments import first_stage_strength

    endog = [spec.endog, *getattr(spec, "extra_endog", [])]
    result["first_stage"] = first_stage_strength(
        frame,
        spec.dependent,
        endog=endog,
        instruments=list(spec.instruments),
        exog=list(spec.covariates),
        cluster=cluster,
    )
    if config.diagnostics.classical:
        from polygvc.diagnostics.classical import classical_iv

        interactions = list(getattr(spec, "interactions", []))
        if interactions:
            from polygvc.diagnostics.classical import instrumented_interactions

            terms = instrumented_interactions(frame, spec.endog, interactions, spec.instruments)
            frame, endog_terms, instrument_terms = terms.data, terms.endog, terms.instruments
        else:
            endog_terms, instrument_terms = endog, list(spec.instruments)
        result["classical"] = classical_iv(
            frame,
            dependent=spec.dependent,
            endog=endog_terms,
            exog=list(spec.covariates),
            instruments=instrument_terms,
            cluster=cluster,
        )
    else:
        result["classical"] = None
    result["sensitivity"] = _sensitivity(dt, model, var_names)
    return result


def _sensitivity(dt: xr.DataTree, model: Any, var_names: list[str]) -> pd.DataFrame | None:
    if model is None or "log_likelihood" not in dt.children:
        return None
    from polygvc.diagnostics.sensitivity import MAIN_PARAMETERS, prior_sensitivity

    # Only the structural and first-stage parameters: sensitivities of
    # deterministic per-province effects add rows without adding a diagnosis.
    main = [name for name in var_names if name in MAIN_PARAMETERS]
    try:
        return prior_sensitivity(dt, model, var_names=main)
    except (DataError, ValueError) as exc:
        logger.warning("Prior sensitivity was not computed: %s", exc)
        return None


def run_scenario_stage(
    config: RunConfig, dt: xr.DataTree, panel: pd.DataFrame, run_dir: Path
) -> Path:
    """Compute the config's policy scenarios and write ``scenarios.csv``."""
    from polygvc.inference.scenarios import run_scenarios

    results = run_scenarios(dt, panel, config.scenarios, seed=config.run.seed)
    return results.to_csv(run_dir / SCENARIOS_FILE)


def write_brief_stage(
    run_dir: Path, config: RunConfig, manifest: dict[str, Any] | None = None
) -> list[Path]:
    """Write the policy briefs in the configured languages (HTML, and PDF if asked)."""
    from polygvc.reports.brief import write_briefs

    return write_briefs(
        run_dir, lang=config.report.brief_lang, pdf=config.report.brief_pdf, manifest=manifest
    )


def _frame_or_none(report: Any) -> pd.DataFrame | None:
    return report.to_frame() if report is not None else None


SENSITIVITY_TITLE = (
    "Prior sensitivity (power-scaling, threshold 0.05; a conflict means the posterior "
    "moves with both the prior and the likelihood)"
)


def _report_diagnostics(diag: dict[str, Any]) -> dict[str, Any]:
    report_items: dict[str, Any] = {"verdict": diag["verdict"]}
    if diag.get("sensitivity") is not None:
        report_items[SENSITIVITY_TITLE] = diag["sensitivity"]
    return report_items


def _table_or_none(result: Any) -> pd.DataFrame | None:
    return result.table if result is not None else None


def _diagnostics_json(diag: dict[str, Any]) -> str:
    verdict = diag["verdict"]
    table = verdict.table if hasattr(verdict, "table") else verdict
    payload = {
        "overall": getattr(verdict, "overall", None),
        "checks": json.loads(table.to_json(orient="records")) if hasattr(table, "to_json") else [],
        "summary": json.loads(diag["summary"].reset_index().to_json(orient="records")),
    }
    first_stage = diag.get("first_stage")
    if first_stage is not None and hasattr(first_stage, "to_dict"):
        payload["first_stage"] = first_stage.to_dict()
    classical = diag.get("classical")
    if classical is not None and hasattr(classical, "table"):
        payload["classical"] = json.loads(classical.table.to_json(orient="records"))
    sensitivity = diag.get("sensitivity")
    if sensitivity is not None:
        payload["prior_sensitivity"] = json.loads(
            sensitivity.reset_index().to_json(orient="records")
        )
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str)


def run(
    config: RunConfig | dict | str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progressbar: bool = False,
    on_stage: Callable[[str, float], None] | None = None,
) -> RunResult:
    """Run the main job and write the run folder.

    Parameters
    ----------
    config : RunConfig, dict, str or Path
        The run configuration or the path of its TOML file.
    out : str or Path, optional
        Run folder; defaults to ``run.out`` from the config, else ``runs/<run.name>``.
    overwrite : bool, default False
        Replace a finished run in ``out``.
    progressbar : bool, default False
        Show the sampler's progress bar.
    on_stage : callable, optional
        Called as ``on_stage(name, seconds)`` after each stage (the CLI logs it).

    Returns
    -------
    RunResult

    Raises
    ------
    PolygvcError
        Any user-facing failure (config, data, model, sampling, run folder).
    """
    config = coerce_config(config)
    run_dir = Path(out) if out is not None else (config.run.out or Path("runs") / config.run.name)
    run_dir = prepare_run_dir(run_dir, overwrite)
    timings: dict[str, float] = {}
    files: dict[str, Path] = {}

    def stage_done(name: str, start: float) -> None:
        timings[name] = round(time.perf_counter() - start, 2)
        logger.info("stage %s finished in %.1f s", name, timings[name])
        if on_stage is not None:
            on_stage(name, timings[name])

    start = time.perf_counter()
    panel = build_panel(config)
    from polygvc.data_prep.panel import write_panel

    if config.data.source == "panel_file":
        # A user panel follows its own columns, not the China panel contract.
        files["panel"] = write_parquet(panel, run_dir / PANEL_FILE)
        source = str(config.data.panel)
    else:
        files["panel"] = write_panel(panel, run_dir / PANEL_FILE)
        source = "the China province panel"
    stage_done("data", start)

    start = time.perf_counter()
    spec, data, model = build_model(config, panel, source=source)
    check_scenarios(config, spec)
    stage_done("model", start)

    start = time.perf_counter()
    dt = fit(config, spec, data, model, progressbar=progressbar)
    files["posterior"] = save_datatree(dt, run_dir / POSTERIOR_FILE)
    stage_done("inference", start)

    start = time.perf_counter()
    diag = diagnose(config, spec, data, dt, model=model)
    files["diagnostics"] = write_text(run_dir / DIAGNOSTICS_FILE, _diagnostics_json(diag) + "\n")
    stage_done("diagnostics", start)

    if config.report.html:
        start = time.perf_counter()
        from polygvc.reports.html import render_report

        files["report"] = render_report(
            dt,
            diagnostics=_report_diagnostics(diag),
            first_stage=_frame_or_none(diag.get("first_stage")),
            classical=_table_or_none(diag.get("classical")),
            panel_notes=_panel_notes(panel, spec, data),
            title=config.report.title,
            out_path=run_dir / REPORT_FILE,
        )
        stage_done("report", start)

    if len(config.scenarios.root):
        start = time.perf_counter()
        files["scenarios"] = run_scenario_stage(config, dt, panel, run_dir)
        stage_done("scenarios", start)

    from polygvc.data_prep.registry import accessed_files

    def make_manifest() -> dict[str, Any]:
        return build_manifest(
            config=config.to_dict(),
            seed=config.run.seed,
            inputs=accessed_files(),
            outputs={name: path.name for name, path in files.items()},
            timings=timings,
            extra={
                "config_file": str(config.source_path) if config.source_path else None,
                "model_rows": data.n_obs,
                "provinces": data.coords["province"],
                "dropped_rows": json.loads(data.dropped.to_json(orient="records")),
            },
        )

    # The briefs read the manifest's facts; manifest.json itself is written last
    # because its presence marks a finished run.
    if config.report.brief_lang != "none" and "scenarios" in files:
        start = time.perf_counter()
        for path in write_brief_stage(run_dir, config, make_manifest()):
            files[path.name] = path
        stage_done("brief", start)
    files["manifest"] = write_manifest(make_manifest(), run_dir)
    return RunResult(run_dir, files, dt, panel, diag["verdict"], timings)
