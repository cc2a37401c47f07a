"""Self-contained ``report.html`` from a results DataTree.

Statistics are computed first (diagnostics, effect intervals, pooling), then
turned into tables of strings, then rendered by a Jinja2 template with
autoescape on, so labels from data or config cannot inject markup. Figures are
embedded as PNG data URIs and the CSS is inlined, so the file opens offline.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from polygvc import __version__
from polygvc.atomic import write_text
from polygvc.diagnostics.convergence import VerdictTable, convergence_verdict
from polygvc.diagnostics.ppc import LooPitResult, loo_pit_check, posterior_predictive_summary
from polygvc.errors import ReportError
from polygvc.reports import figures

__all__ = ["SECTION_IDS", "render_report"]

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
SECTION_IDS = (
    "run-info",
    "data",
    "model",
    "effects",
    "pooling",
    "first-stage",
    "classical",
    "ppc",
    "convergence",
)
_ESTIMATE_COLUMNS = ("estimate", "coef", "params", "effect")
_SE_COLUMNS = ("std_error", "se", "std_err", "bse")


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        magnitude = abs(value)
        if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
            return f"{value:.3e}"
        return f"{value:.3f}"
    return str(value)


def _table(frame: pd.DataFrame, index_name: str | None = None) -> dict:
    """Turn a DataFrame into header and (text, is_number) cells; the template escapes them."""
    include_index = index_name is not None
    columns = ([index_name] if include_index else []) + [str(c) for c in frame.columns]
    rows = []
    for index, values in zip(frame.index, frame.astype(object).to_numpy(), strict=True):
        cells = [
            (_format_value(v), isinstance(v, int | float | np.integer | np.floating))
            for v in values
        ]
        rows.append(([(str(index), False)] if include_index else []) + cells)
    return {"columns": columns, "rows": rows}


def _spec_and_scaling(dt: xr.DataTree) -> tuple[dict, dict]:
    parsed = []
    for key in ("spec", "scaling"):
        raw = dt.attrs.get(key, "{}")
        try:
            parsed.append(json.loads(raw) if isinstance(raw, str) else dict(raw))
        except (TypeError, ValueError) as error:
            raise ReportError(
                f"Root attribute '{key}' of the results tree is not valid JSON ({error}). "
                "Rewrite posterior.nc with polygvc.inference.store, which stores it as a JSON "
                "string."
            ) from error
    return parsed[0], parsed[1]


def _run_info(dt: xr.DataTree, spec: dict) -> list[tuple[str, str]]:
    posterior = dt["posterior"]
    info = [
        ("polygvc version", __version__),
        ("Chains × draws", f"{posterior.sizes.get('chain', 1)} × {posterior.sizes.get('draw', 0)}"),
    ]
    if "observed_data" in dt.children:
        info.append(
            ("Observations (province-years)", str(dt["observed_data"].sizes.get("obs", "")))
        )
    for dim in ("province", "region", "year"):
        if dim in posterior.sizes:
            info.append((f"Number of {dim}s", str(posterior.sizes[dim])))
    for role in ("dependent", "endog", "instruments", "controls", "moderators"):
        if role in spec:
            value = spec[role]
            info.append((role, ", ".join(value) if isinstance(value, list) else str(value)))
    for key, value in dt.attrs.items():
        if key in ("spec", "scaling"):
            continue
        text = str(value)
        info.append((str(key), text if len(text) <= 200 else text[:200] + " …"))
    return info


def _first_stage_frame(first_stage: object | None) -> pd.DataFrame | None:
    if first_stage is None:
        return None
    candidate = getattr(first_stage, "diagnostics", first_stage)
    if isinstance(candidate, pd.DataFrame):
        return candidate
    if isinstance(candidate, pd.Series):
        return candidate.to_frame("value")
    if isinstance(candidate, Mapping):
        return pd.Series({str(k): v for k, v in candidate.items()}, dtype=object).to_frame("value")
    raise ReportError(
        f"first_stage has type {type(first_stage).__name__}; render_report accepts a pandas "
        "DataFrame or Series, a mapping of statistic name to value, or an object with a "
        "'diagnostics' DataFrame (linearmodels FirstStageResults). Convert it to one of these."
    )


def _f_statistics(frame: pd.DataFrame | None) -> pd.Series | None:
    if frame is None:
        return None
    lowered = {str(c).lower(): c for c in frame.columns}
    for name in figures.F_STAT_NAMES:
        if name in lowered:
            return pd.to_numeric(frame[lowered[name]], errors="coerce").dropna()
    if list(frame.columns) == ["value"]:
        index = {str(i).lower(): i for i in frame.index}
        picked = {
            index[n]: frame.loc[index[n], "value"] for n in figures.F_STAT_NAMES if n in index
        }
        series = pd.to_numeric(pd.Series(picked, dtype=object), errors="coerce").dropna()
        return series if len(series) else None
    return None


def _classical_table(classical: pd.DataFrame | None, effects: pd.DataFrame, endog: str):
    if classical is None:
        return None
    frame = classical.copy()
    if "term" in frame.columns and endog in set(frame["term"]):
        frame = frame[frame["term"] == endog]
    average = effects[effects["variable"] == "effect_mu"]
    if average.empty:
        return _table(frame.reset_index(drop=True))
    posterior_row = {column: "" for column in frame.columns}
    if "estimator" in frame.columns:
        posterior_row["estimator"] = "Bayesian hierarchical IV (posterior mean)"
    if "term" in frame.columns:
        posterior_row["term"] = "effect_mu"
    estimate = next((c for c in _ESTIMATE_COLUMNS if c in frame.columns), None)
    std_error = next((c for c in _SE_COLUMNS if c in frame.columns), None)
    row = average.iloc[0]
    if estimate is not None:
        posterior_row[estimate] = row["mean"]
    if std_error is not None:
        posterior_row[std_error] = row["sd"]
    if "ci_lower" in frame.columns and "ci_upper" in frame.columns:
        posterior_row["ci_lower"], posterior_row["ci_upper"] = row["ci_lb"], row["ci_ub"]
    if "cov_type" in frame.columns:
        posterior_row["cov_type"] = "posterior"
    frame = pd.concat([frame, pd.DataFrame([posterior_row])], ignore_index=True)
    return _table(frame)


def _extra_diagnostics(diagnostics: Mapping) -> list[dict]:
    extras = []
    for key, value in diagnostics.items():
        if key in ("verdict", "ppc", "loo_pit", "no_pooling"):
            continue
        if isinstance(value, pd.DataFrame):
            table = _table(value, index_name="")
        elif isinstance(value, pd.Series):
            table = _table(value.to_frame(), index_name="")
        else:
            table = None
        extras.append({"name": str(key), "table": table, "text": _format_value(value)})
    return extras


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    dt: xr.DataTree,
    *,
    diagnostics: Mapping[str, Any] | None = None,
    first_stage: object | None = None,
    classical: pd.DataFrame | None = None,
    panel_notes: Sequence[str] = (),
    title: str = "polygvc report",
    out_path: str | os.PathLike[str],
) -> Path:
    """Render the run's results into a self-contained ``report.html``.

    Parameters
    ----------
    dt : xarray.DataTree
        Results (groups posterior, posterior_predictive, log_likelihood,
        sample_stats, observed_data, constant_data; root attrs ``spec`` and
        ``scaling`` as JSON strings).
    diagnostics : mapping, optional
        Precomputed results: ``verdict`` (:class:`VerdictTable`), ``ppc``
        (DataFrame from :func:`posterior_predictive_summary`), ``loo_pit``
        (:class:`LooPitResult`), ``no_pooling`` (province -> separate slope in
        original units). Missing ones are computed here. Any other key is shown
        under "Other diagnostics" (DataFrames as tables, other values as text).
    first_stage : DataFrame, Series, mapping or object with ``diagnostics``, optional
        Classical first-stage statistics; F statistics found among
        ``figures.F_STAT_NAMES`` are also plotted against F = 10.
    classical : pandas.DataFrame, optional
        Classical estimates, for example ``ClassicalIVResult.table`` (columns
        ``estimator, term, estimate, std_error, ci_lower, ci_upper, ...``).
        Rows for the endogenous regressor are shown with the posterior mean
        of ``effect_mu`` appended.
    panel_notes : sequence of str
        Limits of the data, one sentence or paragraph each.
    title : str
        Page title.
    out_path : path
        Target file, or an existing folder to write ``report.html`` into.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    polygvc.errors.ReportError
        If the template fails to render, ``spec``/``scaling`` are not JSON,
        or ``first_stage`` has an unsupported type.
    polygvc.errors.DataError
        If the tree lacks the posterior, predictive or observed groups.

    Notes
    -----
    Intervals use ``arviz_base.rcParams["stats.ci_prob"]`` and ``["stats.ci_kind"]``
    at render time. No argument is modified.
    """
    diagnostics = dict(diagnostics or {})
    spec, _scaling = _spec_and_scaling(dt)
    dependent_label, endog_label = figures._spec_labels(dt)
    ci_prob = float(rcParams["stats.ci_prob"])
    ci_kind = str(rcParams["stats.ci_kind"])

    # Statistics.
    verdict: VerdictTable = diagnostics.get("verdict") or convergence_verdict(dt)
    ppc_frame = diagnostics.get("ppc")
    if ppc_frame is None:
        ppc_frame = posterior_predictive_summary(dt)
    loo_pit: LooPitResult = diagnostics.get("loo_pit") or loo_pit_check(dt)
    effects = figures.effect_intervals(dt)
    pooling = figures.pooling_statistics(dt)
    first_stage_frame = _first_stage_frame(first_stage)
    f_statistics = _f_statistics(first_stage_frame)
    no_pooling = diagnostics.get("no_pooling")

    # Tables.
    effect_columns = ["label", "mean", "sd", "ci_lb", "ci_ub", "p_positive"]
    effect_tables = {}
    for variable in ("effect_mu", "effect_region", "effect_province"):
        part = effects[effects["variable"] == variable][effect_columns]
        effect_tables[variable] = _table(part.set_index("label"), index_name=variable)
    verdict_frame = verdict.table[["label", "value", "threshold", "verdict", "detail", "fix"]]
    funnel = None
    if verdict.divergences is not None and not verdict.divergences.funnel.empty:
        funnel = _table(verdict.divergences.funnel, index_name="parameter")
    context = {
        "title": title,
        "run_info": _run_info(dt, spec),
        "panel_notes": list(panel_notes),
        "dependent": dependent_label,
        "endog": endog_label,
        "instruments": ", ".join(spec.get("instruments", [])) or "the excluded instruments",
        "ci_text": f"{ci_kind.upper()} {ci_prob:.0%}",
        "effect_tables": effect_tables,
        "pooling_table": _table(pooling, index_name="level") if not pooling.empty else None,
        "first_stage_table": (
            _table(first_stage_frame, index_name="") if first_stage_frame is not None else None
        ),
        "fs_table": _table(
            effects.iloc[0:0]
            if "fs_instrument" not in dt["posterior"].data_vars
            else figures.effect_intervals(dt, ("fs_instrument",))[effect_columns].set_index(
                "label"
            ),
            index_name="instrument",
        ),
        "classical_table": _classical_table(classical, effects, spec.get("endog", "")),
        "ppc_table": _table(ppc_frame, index_name="equation"),
        "loo_pit": {
            "applicable": loo_pit.applicable,
            "reason": loo_pit.reason,
            "table": (
                _table(loo_pit.summary, index_name="equation")
                if loo_pit.summary is not None
                else None
            ),
        },
        "verdict_table": _table(verdict_frame, index_name="check"),
        "verdict_rows": list(verdict.table["verdict"]),
        "overall": verdict.overall,
        "verdict_notes": verdict.notes,
        "funnel_table": funnel,
        "extra_diagnostics": _extra_diagnostics(diagnostics),
        "css": (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8"),
    }

    # Figures.
    context["figures"] = {
        "forest": figures.forest_effects_plot(dt),
        "pooling": figures.pooling_plot(dt, no_pooling=no_pooling),
        "first_stage": (
            figures.first_stage_plot(dt, f_statistics=f_statistics)
            if "fs_instrument" in dt["posterior"].data_vars
            else None
        ),
        "ppc": figures.ppc_plot(dt),
        "rank": figures.rank_plot(dt),
    }

    try:
        html = _environment().get_template("report.html.j2").render(**context)
    except jinja2.TemplateError as error:
        raise ReportError(
            f"Rendering report.html.j2 from {TEMPLATE_DIR} failed: {error}. Reinstall polygvc "
            "so the packaged template is complete."
        ) from error

    target = Path(out_path)
    if target.is_dir():
        target = target / "report.html"
    write_text(target, html)
    logger.info("Wrote report to %s", target)
    return target
