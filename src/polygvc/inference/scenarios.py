r"""Posterior-predictive policy scenarios: causal effects of interventions, with honesty flags.

For a scenario that changes the endogenous regressor :math:`x` and covariates
:math:`W` of province-year :math:`i` (province :math:`p`, year :math:`t`), the
effect in posterior draw :math:`s` is computed on the outcome equation of the
hierarchical IV model (:mod:`polygvc.models.hierarchical_iv`), in NumPy on the
stored posterior draws (no PyMC graph, no ``pm.do``):

.. math::

    \Delta_{is} = E_s[y_i \mid do(x_i = x^*_i, W_i = W^*_i)] - E_s[y_i \mid x_i, W_i]
                = \beta_{p,s}\,\frac{x^*_i - x_i}{sd_x}
                  + \sum_k \gamma_{k,s}\,\frac{W^*_{ik} - W_{ik}}{sd_{W_k}},

multiplied by :math:`sd_y` to return to outcome units. Because :math:`x` is set
by the intervention, the first stage and the error correlation drop out: the
effect is structural, not the regression of :math:`y` on observed :math:`x`
(Pearl 2009, ch. 3). With ``pathway = "total"`` a covariate change also moves
:math:`x` by :math:`\sum_k \delta_{k,s} \Delta W^{std}_{ik}` through the first
stage, which treats the first-stage coefficients :math:`\delta` as causal.

The outcome under the scenario is predicted as
:math:`\alpha_{p,s} + \beta_{p,s} x^{*std}_i + W^{*std}_i\gamma_s + \tau_{t,s} + e`,
:math:`e \sim N(0, \sigma_{y,s})`. The intervention removes the dependence of
:math:`e` on the first-stage error, so its marginal normal is the right noise.

Draws are reproducible: every random stream is a :class:`numpy.random.Generator`
seeded from the SHA-256 of the run seed and names (scenario, province), never
from Python's ``hash``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from polygvc.atomic import atomic_path
from polygvc.errors import ConfigError, DataError, ExtrapolationWarning, ModelError
from polygvc.scenario_config import ScenarioChange, ScenarioSetting, ScenariosSection

__all__ = [
    "CSV_FLOAT_FORMAT",
    "ScenarioChange",
    "ScenarioResults",
    "ScenarioSetting",
    "ScenariosSection",
    "interval",
    "run_scenarios",
    "scenario_rng",
]

logger = logging.getLogger(__name__)

CSV_FLOAT_FORMAT = "%.6f"
LEVELS = ("unit", "province", "region", "nation")
ROPE_SD_FRACTION = 0.1
"""Default ROPE: 0.1 sd of the outcome, Kruschke's (2018) negligible standardised effect."""


# --------------------------------------------------------------------------- kernels


def scenario_rng(seed: int, *parts: object) -> np.random.Generator:
    """Return a Generator seeded from the SHA-256 of ``seed`` and ``parts``.

    The same seed and parts give the same stream in every process and Python
    version (unlike ``hash()``, which is salted per process).
    """
    text = "\x1f".join(str(part) for part in (seed, *parts))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def interval(samples: np.ndarray, prob: float, kind: str = "eti") -> tuple[np.ndarray, np.ndarray]:
    """Return the lower and upper bounds of a credible interval along axis 0.

    Parameters
    ----------
    samples : ndarray, shape (n_draws, ...)
    prob : float
        Probability mass inside the interval, in (0, 1).
    kind : {"eti", "hdi"}
        Equal-tailed interval, or the narrowest interval holding ``prob`` of the
        sorted draws (highest density for unimodal draws).
    """
    samples = np.asarray(samples, dtype=float)
    if kind == "eti":
        tail = (1.0 - prob) / 2.0
        bounds = np.quantile(samples, [tail, 1.0 - tail], axis=0)
        return bounds[0], bounds[1]
    if kind != "hdi":
        raise ConfigError(
            f"Interval kind {kind!r} (ArviZ rcParams 'stats.ci_kind') is not supported. "
            "Fix: set it to 'eti' or 'hdi'."
        )
    ordered = np.sort(samples, axis=0)
    n = ordered.shape[0]
    width = max(1, int(np.ceil(prob * n)) - 1)
    spans = ordered[width:] - ordered[: n - width]
    start = np.argmin(spans, axis=0)
    lower = np.take_along_axis(ordered, start[None, ...], axis=0)[0]
    upper = np.take_along_axis(ordered, (start + width)[None, ...], axis=0)[0]
    return lower, upper


def effect_draws(
    beta: np.ndarray, gamma: np.ndarray, dx_std: np.ndarray, dw_std: np.ndarray
) -> np.ndarray:
    """Return standardised effects ``beta * dx + gamma @ dw`` per draw and unit.

    Parameters
    ----------
    beta : ndarray, shape (n_draws, n_units)
        Slope of each unit's province in each draw.
    gamma : ndarray, shape (n_draws, n_covariates)
    dx_std : ndarray, shape (n_draws, n_units) or (n_units,)
        Standardised change of the endogenous regressor.
    dw_std : ndarray, shape (n_units, n_covariates)
        Standardised change of each covariate.
    """
    effect = beta * dx_std
    if gamma.shape[1]:
        effect = effect + gamma @ dw_std.T
    return effect


# --------------------------------------------------------------------------- posterior


@dataclass
class _Posterior:
    """Flattened posterior draws (``sample`` = chain-major stack of chain and draw)."""

    spec: dict
    scaling: dict[str, dict[str, float]]
    provinces: list[str]
    regions: list[str]
    years: list[int]
    covariates: list[str]
    region_of: dict[str, str]
    vars: dict[str, np.ndarray]
    model_rows: pd.DataFrame

    @property
    def n_draws(self) -> int:
        return int(self.vars["beta_province"].shape[0])

    def get(self, name: str) -> np.ndarray | None:
        return self.vars.get(name)


def _flatten(da: xr.DataArray) -> np.ndarray:
    other = [d for d in da.dims if d not in ("chain", "draw")]
    stacked = da.transpose("chain", "draw", *other).values
    return stacked.reshape(-1, *stacked.shape[2:]).astype(float)


def _read_posterior(dt: xr.DataTree) -> _Posterior:
    for key in ("spec", "scaling"):
        if key not in dt.attrs:
            raise ModelError(
                f"The results DataTree has no {key!r} root attribute, so scenarios cannot map "
                "variables to the model. Fix: use a posterior.nc written by polygvc's pipeline."
            )
    spec = json.loads(dt.attrs["spec"])
    scaling = json.loads(dt.attrs["scaling"])
    post = dt["posterior"]
    for name in ("beta_province", "intercept_province", "sigma"):
        if name not in post.data_vars:
            raise ModelError(
                f"The posterior has no {name!r}; scenarios need the hierarchical IV outcome "
                "equation. Fix: fit the model with model.kind = 'hierarchical_iv'."
            )
    names = (
        "beta_province",
        "intercept_province",
        "gamma",
        "year_effect",
        "fs_covariate",
        "beta_mu",
        "beta_region",
        "beta_region_sd",
        "beta_province_sd",
        "intercept",
        "intercept_region_sd",
        "intercept_region_offset",
        "intercept_province_sd",
    )
    values = {n: _flatten(post[n]) for n in names if n in post.data_vars}
    values["sigma_y"] = _flatten(post["sigma"].sel(equation="outcome"))
    covariates = (
        [str(c) for c in post.coords["covariate"].values] if "covariate" in post.coords else []
    )
    if "gamma" not in values:
        values["gamma"] = np.zeros((values["beta_province"].shape[0], 0))
    const = dt["constant_data"]
    model_rows = pd.DataFrame(
        {
            "province": const["obs_province"].values.astype(str),
            "region": const["obs_region"].values.astype(str),
            "year": const["obs_year"].values.astype(int),
        }
    )
    endog, dependent = spec["endog"], spec["dependent"]
    model_rows[endog] = const["x"].values * scaling[endog]["sd"] + scaling[endog]["mean"]
    model_rows[dependent] = (
        const["y"].values * scaling[dependent]["sd"] + scaling[dependent]["mean"]
    )
    for k, name in enumerate(covariates):
        model_rows[name] = const["W"].values[:, k] * scaling[name]["sd"] + scaling[name]["mean"]
    region_of = dict(zip(model_rows["province"], model_rows["region"], strict=False))
    return _Posterior(
        spec=spec,
        scaling=scaling,
        provinces=[str(p) for p in post.coords["province"].values],
        regions=[str(r) for r in post.coords["region"].values] if "region" in post.coords else [],
        years=[int(y) for y in post.coords["year"].values] if "year" in post.coords else [],
        covariates=covariates,
        region_of=region_of,
        vars=values,
        model_rows=model_rows,
    )


def _new_province_draws(post: _Posterior, province: str, region: str, seed: int):
    """Draw slope and intercept of a province the model did not see (standardised units)."""
    needed = (
        "beta_mu",
        "beta_region",
        "beta_region_sd",
        "intercept",
        "intercept_region_sd",
        "intercept_region_offset",
        "intercept_province_sd",
    )
    missing = [name for name in needed if post.get(name) is None]
    if missing:
        raise ModelError(
            f"Population draws for {province!r} need the hyperparameters {', '.join(missing)}, "
            "which the posterior lacks. Fix: use new_provinces = 'error' for this model."
        )
    rng = scenario_rng(seed, "new_province", province)
    n = post.n_draws
    z_beta, z_alpha, z_beta_region, z_alpha_region = rng.standard_normal((4, n))
    province_sd = post.get("beta_province_sd")
    beta_within = province_sd[:] * z_beta if province_sd is not None else np.zeros(n)
    alpha_within = post.vars["intercept_province_sd"] * z_alpha
    if region in post.regions:
        r = post.regions.index(region)
        beta = post.vars["beta_region"][:, r] + beta_within
        alpha_region = post.vars["intercept_region_sd"] * post.vars["intercept_region_offset"][:, r]
    else:
        beta = post.vars["beta_mu"] + post.vars["beta_region_sd"] * z_beta_region + beta_within
        alpha_region = post.vars["intercept_region_sd"] * z_alpha_region
    return beta, post.vars["intercept"] + alpha_region + alpha_within


# --------------------------------------------------------------------------- resolution


def _coerce_scenarios(scenarios) -> list[ScenarioSetting]:
    if isinstance(scenarios, ScenariosSection):
        return list(scenarios.root)
    if isinstance(scenarios, ScenarioSetting | Mapping):
        scenarios = [scenarios]
    try:
        section = ScenariosSection.model_validate(
            [s if isinstance(s, ScenarioSetting) else dict(s) for s in scenarios]
        )
    except ValueError as exc:
        raise ConfigError(f"Invalid scenario settings: {exc}") from exc
    return list(section.root)


def _resolve_name(value: object, known: Sequence[str], what: str, scenario: str) -> str:
    if isinstance(value, str) and value in known:
        return value
    from polygvc.data_prep.names import resolve_province

    try:
        return resolve_province(value)
    except DataError as exc:
        raise ConfigError(
            f"Scenario {scenario!r}: {what} {value!r} is not a known province ({exc}). Fix: use "
            f"one of {', '.join(known)}."
        ) from None


def _excluded_reason(panel: pd.DataFrame, province: str) -> str:
    if "excluded_reason" not in panel.columns:
        return ""
    reasons = panel.loc[panel["province"] == province, "excluded_reason"].fillna("")
    reasons = [r for r in dict.fromkeys(reasons) if r]
    return " ".join(reasons)


def _resolve_provinces(
    setting: ScenarioSetting,
    post: _Posterior,
    panel: pd.DataFrame,
    needed: list[str],
    years: list[int],
) -> tuple[list[str], list[str]]:
    """Return (provinces to compute, provinces skipped for missing values)."""
    panel_provinces = list(dict.fromkeys(panel["province"].astype(str)))
    known = list(dict.fromkeys([*post.provinces, *panel_provinces]))
    if setting.provinces == "all":
        if setting.new_provinces == "error":
            return list(post.provinces), []
        chosen, skipped = [], []
        for province in known:
            rows = panel[(panel["province"] == province) & panel["year"].isin(years)]
            complete = len(rows) == len(years) and rows[needed].notna().all().all()
            if province in post.provinces or complete:
                chosen.append(province)
            else:
                skipped.append(province)
        return chosen, skipped
    chosen = []
    for value in setting.provinces:
        province = _resolve_name(value, known, "province", setting.name)
        if province not in post.provinces and setting.new_provinces == "error":
            reason = _excluded_reason(panel, province)
            because = f" Reason recorded in the panel: {reason}" if reason else ""
            raise ConfigError(
                f"Scenario {setting.name!r} names {province!r}, which has no estimates in this "
                f"model.{because} Fix: remove it from 'provinces', or set new_provinces = "
                "'population' to draw its slope and intercept from its region's population "
                "distribution (a prediction for an unseen province, with wider intervals)."
            )
        if province not in chosen:
            chosen.append(province)
    return chosen, []


def _resolve_years(setting: ScenarioSetting, post: _Posterior, panel: pd.DataFrame) -> list[int]:
    if setting.year is None:
        if not post.years:
            raise ConfigError(
                f"Scenario {setting.name!r} has no 'year' and the model stores no years. "
                "Fix: set year in the scenario."
            )
        return [max(post.years)]
    years = [setting.year] if isinstance(setting.year, int) else list(setting.year)
    available = sorted(set(panel["year"].astype(int)))
    for year in years:
        if year not in available:
            raise ConfigError(
                f"Scenario {setting.name!r}: year {year} is not in the panel. Fix: choose one "
                f"of {available[0]}-{available[-1]}."
            )
    return years


def _check_variables(setting: ScenarioSetting, post: _Posterior, panel: pd.DataFrame) -> None:
    valid = [post.spec["endog"], *post.covariates]
    for change in setting.changes:
        if change.variable not in valid:
            raise ConfigError(
                f"Scenario {setting.name!r} changes variable {change.variable!r}, which is not in "
                f"the model. Valid variables: {', '.join(valid)} (the endogenous regressor, "
                "then the controls and moderators). Fix: change one of these, or refit the "
                "model with the variable among its controls or moderators."
            )
    if setting.weight_column and setting.weight_column not in panel.columns:
        raise ConfigError(
            f"Scenario {setting.name!r}: weight_column {setting.weight_column!r} is not a panel "
            f"column. Fix: use one of {', '.join(map(str, panel.columns))}, or remove it for "
            "equal weights."
        )


# --------------------------------------------------------------------------- one scenario


def _panel_rows(
    panel: pd.DataFrame,
    provinces: list[str],
    years: list[int],
    needed: list[str],
    setting: ScenarioSetting,
    post: _Posterior,
) -> pd.DataFrame:
    rows = []
    for province in provinces:
        for year in years:
            match = panel[(panel["province"] == province) & (panel["year"] == year)]
            if match.empty:
                raise ConfigError(
                    f"Scenario {setting.name!r}: the panel has no row for {province!r} in {year}. "
                    "Fix: choose a year the panel covers for every province named."
                )
            row = match.iloc[0]
            missing = [c for c in needed if pd.isna(row[c])]
            if missing:
                raise ConfigError(
                    f"Scenario {setting.name!r}: {province!r} in {year} has no value for "
                    f"{', '.join(missing)}, so its effect cannot be computed. Fix: drop the "
                    "province from the scenario or choose another year."
                )
            region = post.region_of.get(province) or str(row.get("region", ""))
            rows.append(
                {
                    "province": province,
                    "region": region,
                    "year": int(year),
                    "new_province": province not in post.provinces,
                    **{c: float(row[c]) for c in needed},
                }
            )
    return pd.DataFrame(rows)


def _scenario_values(
    change: ScenarioChange,
    units: pd.DataFrame,
    panel: pd.DataFrame,
    post: _Posterior,
    setting: ScenarioSetting,
) -> np.ndarray:
    observed = units[change.variable].to_numpy(dtype=float)
    if change.how == "absolute":
        step = change.value * (post.scaling[change.variable]["sd"] if change.scale == "sd" else 1.0)
        return observed + step
    if change.how == "relative":
        return observed * (1.0 + change.value)
    if change.how == "set":
        return np.full_like(observed, float(change.value))
    if change.how == "quantile":
        out = np.empty_like(observed)
        for year in units["year"].unique():
            cross = panel.loc[panel["year"] == year, change.variable].dropna().to_numpy(float)
            out[units["year"].to_numpy() == year] = np.quantile(cross, change.value)
        return out
    known = list(dict.fromkeys(panel["province"].astype(str)))
    peer = _resolve_name(change.peer, known, "peer", setting.name)
    out = np.empty_like(observed)
    for year in units["year"].unique():
        value = panel.loc[(panel["province"] == peer) & (panel["year"] == year), change.variable]
        if value.empty or pd.isna(value.iloc[0]):
            raise ConfigError(
                f"Scenario {setting.name!r}: peer {peer!r} has no {change.variable!r} value in "
                f"{year}. Fix: choose a peer with an observed value that year."
            )
        out[units["year"].to_numpy() == year] = float(value.iloc[0])
    return out


def _flags(
    units: pd.DataFrame,
    changed: dict[str, np.ndarray],
    post: _Posterior,
    panel: pd.DataFrame,
    knots: Mapping[str, Sequence[float]],
    thresholds: Mapping[str, Sequence[float]],
) -> list[list[str]]:
    """Return the honesty flags of each unit (see the module docs of run_scenarios)."""
    flags: list[list[str]] = [[] for _ in range(len(units))]
    model_rows = post.model_rows
    for i, row in enumerate(units.itertuples(index=False)):
        if row.new_province:
            flags[i].append("new_province")
        if post.years and row.year not in post.years:
            flags[i].append("year_not_in_model")
    for variable, new in changed.items():
        observed = units[variable].to_numpy(dtype=float)
        national = model_rows[variable].to_numpy(dtype=float)
        tol = 1e-9 * max(1.0, float(np.abs(national).max()))
        for i, row in enumerate(units.itertuples(index=False)):
            own = panel.loc[panel["province"] == row.province, variable].dropna().to_numpy(float)
            if own.size and not own.min() - tol <= new[i] <= own.max() + tol:
                flags[i].append(f"outside_province_range:{variable}")
            if not national.min() - tol <= new[i] <= national.max() + tol:
                flags[i].append(f"outside_national_range:{variable}")
            if variable in knots:
                low, high = knots[variable][0], knots[variable][-1]
                if not low <= new[i] <= high:
                    flags[i].append(f"beyond_boundary_knots:{variable}")
            for cut in thresholds.get(variable, ()):
                if (observed[i] - cut) * (new[i] - cut) < 0 or (new[i] == cut) != (
                    observed[i] == cut
                ):
                    flags[i].append(f"crosses_threshold:{variable}")
                    break
    return flags


def _province_weights(
    units: pd.DataFrame, setting: ScenarioSetting, panel: pd.DataFrame, provinces: list[str]
) -> np.ndarray:
    if not setting.weight_column:
        return np.full(len(provinces), 1.0)
    weights = []
    years = sorted(units["year"].unique())
    for province in provinces:
        values = panel.loc[
            (panel["province"] == province) & panel["year"].isin(years), setting.weight_column
        ].to_numpy(dtype=float)
        value = float(np.mean(values)) if values.size else float("nan")
        if not np.isfinite(value) or value <= 0:
            raise ConfigError(
                f"Scenario {setting.name!r}: weight_column {setting.weight_column!r} is "
                f"{value} for {province!r} in {years}; weights must be positive and finite. "
                "Fix: fill the column or use equal weights."
            )
        weights.append(value)
    return np.asarray(weights)


def _summarise(
    effect: np.ndarray,
    outcome: np.ndarray,
    baseline: np.ndarray,
    rope: float,
    ci_prob: float,
    ci_kind: str,
) -> dict[str, np.ndarray]:
    lower, upper = interval(effect, ci_prob, ci_kind)
    pred_lower, pred_upper = interval(outcome, ci_prob, ci_kind)
    return {
        "mean": effect.mean(axis=0),
        "lower": lower,
        "upper": upper,
        "prob_gain": (effect > 0).mean(axis=0),
        "prob_gain_rope": (effect > rope).mean(axis=0),
        "baseline_mean": baseline.mean(axis=0),
        "outcome_mean": outcome.mean(axis=0),
        "outcome_lower": pred_lower,
        "outcome_upper": pred_upper,
    }


def _run_one(
    setting: ScenarioSetting,
    post: _Posterior,
    panel: pd.DataFrame,
    seed: int,
    ci_prob: float,
    ci_kind: str,
    knots: Mapping,
    thresholds: Mapping,
) -> tuple[pd.DataFrame, pd.DataFrame, xr.Dataset]:
    _check_variables(setting, post, panel)
    endog, dependent = post.spec["endog"], post.spec["dependent"]
    needed = [endog, *post.covariates]
    years = _resolve_years(setting, post, panel)
    provinces, skipped = _resolve_provinces(setting, post, panel, needed, years)
    for province in skipped:
        logger.info(
            "Scenario %s: %s skipped (no values for %s in %s).",
            setting.name,
            province,
            ", ".join(needed),
            years,
        )
    if not provinces:
        raise ConfigError(f"Scenario {setting.name!r} covers no province with estimates.")
    units = _panel_rows(panel, provinces, years, needed, setting, post)

    changed = {
        c.variable: _scenario_values(c, units, panel, post, setting) for c in setting.changes
    }
    scale = {name: post.scaling[name]["sd"] for name in needed}
    dw_std = np.zeros((len(units), len(post.covariates)))
    for k, name in enumerate(post.covariates):
        if name in changed:
            dw_std[:, k] = (changed[name] - units[name].to_numpy(float)) / scale[name]
    dx_std = np.zeros(len(units))
    if endog in changed:
        dx_std = (changed[endog] - units[endog].to_numpy(float)) / scale[endog]

    # Slopes and intercepts per unit, drawing unseen provinces from the population.
    n, n_units = post.n_draws, len(units)
    beta = np.empty((n, n_units))
    alpha = np.empty((n, n_units))
    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, row in enumerate(units.itertuples(index=False)):
        if row.province in post.provinces:
            p = post.provinces.index(row.province)
            beta[:, j], alpha[:, j] = (
                post.vars["beta_province"][:, p],
                post.vars["intercept_province"][:, p],
            )
        else:
            if row.province not in drawn:
                drawn[row.province] = _new_province_draws(post, row.province, row.region, seed)
            beta[:, j], alpha[:, j] = drawn[row.province]

    gamma = post.vars["gamma"]
    dx = np.broadcast_to(dx_std, (n, n_units))
    if setting.pathway == "total" and endog not in changed and post.get("fs_covariate") is not None:
        dx = post.vars["fs_covariate"] @ dw_std.T
    effect_std = effect_draws(beta, gamma, dx, dw_std)

    x_std = (units[endog].to_numpy(float) - post.scaling[endog]["mean"]) / scale[endog]
    w_std = (
        np.column_stack(
            [
                (units[c].to_numpy(float) - post.scaling[c]["mean"]) / scale[c]
                for c in post.covariates
            ]
        )
        if post.covariates
        else np.zeros((n_units, 0))
    )
    baseline_std = alpha + beta * x_std + (gamma @ w_std.T if w_std.shape[1] else 0.0)
    if post.get("year_effect") is not None:
        for j, year in enumerate(units["year"]):
            if year in post.years:
                baseline_std[:, j] += post.vars["year_effect"][:, post.years.index(year)]
            # NOTE: a year outside the model gets a year effect of 0, the average of the
            # zero-sum year effects; the unit carries the flag year_not_in_model.
    noise = scenario_rng(seed, "scenario", setting.name, "noise").standard_normal((n, n_units))
    sd_y, mean_y = post.scaling[dependent]["sd"], post.scaling[dependent]["mean"]
    effect = effect_std * sd_y
    baseline = baseline_std * sd_y + mean_y
    outcome = (baseline_std + effect_std + noise * post.vars["sigma_y"][:, None]) * sd_y + mean_y

    flags = _flags(units, changed, post, panel, knots, thresholds)
    rope = setting.rope if setting.rope is not None else ROPE_SD_FRACTION * sd_y
    n_flagged = sum(1 for f in flags if f)
    if n_flagged:
        warnings.warn(
            f"Scenario {setting.name!r}: {n_flagged} of {n_units} province-years carry "
            "extrapolation flags (values outside the fitted range, unseen provinces or years). "
            "Their effects rest on the linear model beyond the data. Fix: read the 'flags' "
            "column and report those rows as extrapolations, or choose smaller changes.",
            ExtrapolationWarning,
            stacklevel=3,
        )

    # Aggregation: provinces average their years; regions and the nation average provinces.
    province_list = list(dict.fromkeys(units["province"]))
    weights = _province_weights(units, setting, panel, province_list)
    membership = np.zeros((n_units, len(province_list)))
    for j, province in enumerate(units["province"]):
        membership[j, province_list.index(province)] = 1.0
    membership /= membership.sum(axis=0, keepdims=True)
    region_of_province = dict(zip(units["province"], units["region"], strict=False))
    province_flags: dict[str, set[str]] = {p: set() for p in province_list}
    for unit_flags, province in zip(flags, units["province"], strict=True):
        province_flags[province].update(unit_flags)

    def province_level(values: np.ndarray) -> np.ndarray:
        return values @ membership

    blocks = []
    summary = _summarise(effect, outcome, baseline, rope, ci_prob, ci_kind)
    unit_frame = units[["province", "region", "year"]].copy()
    unit_frame["level"] = "unit"
    unit_frame["weight"] = np.nan
    unit_frame["n_provinces"] = 1
    unit_frame["n_flagged"] = [int(bool(f)) for f in flags]
    unit_frame["flags"] = [";".join(f) for f in flags]
    blocks.append(unit_frame.assign(**summary))

    p_effect, p_outcome, p_base = (province_level(a) for a in (effect, outcome, baseline))
    prov_frame = pd.DataFrame(
        {
            "province": province_list,
            "region": [region_of_province[p] for p in province_list],
            "year": pd.NA,
            "level": "province",
            "weight": weights / weights.sum(),
            "n_provinces": 1,
            "n_flagged": [int(bool(province_flags[p])) for p in province_list],
            "flags": [";".join(sorted(province_flags[p])) for p in province_list],
        }
    )
    blocks.append(
        prov_frame.assign(**_summarise(p_effect, p_outcome, p_base, rope, ci_prob, ci_kind))
    )

    groups = [
        (r, [p for p in province_list if region_of_province[p] == r], "region")
        for r in sorted(set(region_of_province.values()))
    ]
    groups.append(("", province_list, "nation"))
    for name, members, level in groups:
        idx = [province_list.index(p) for p in members]
        w = weights[idx] / weights[idx].sum()
        agg = [a[:, idx] @ w for a in (p_effect, p_outcome, p_base)]
        stats = _summarise(*(a[:, None] for a in agg), rope, ci_prob, ci_kind)
        blocks.append(
            pd.DataFrame(
                {
                    "province": "",
                    "region": name,
                    "year": [pd.NA],
                    "level": level,
                    "weight": 1.0,
                    "n_provinces": len(members),
                    "n_flagged": sum(int(bool(province_flags[p])) for p in members),
                    "flags": "",
                    **{k: v[0] for k, v in stats.items()},
                }
            )
        )

    table = pd.concat(blocks, ignore_index=True)
    table.insert(0, "scenario", setting.name)
    table.insert(1, "label", setting.display_label)
    table.insert(2, "label_zh", setting.display_label_zh)
    table["changes"] = setting.describe_changes()
    table["pathway"] = setting.pathway
    table["weights"] = setting.weight_column or "equal"
    table["outcome"] = dependent
    table["rope"] = rope
    table["ci_prob"] = ci_prob
    table["ci_kind"] = ci_kind

    change_rows = []
    for variable, new in changed.items():
        frame = units[["province", "year"]].copy()
        frame["variable"] = variable
        frame["observed"] = units[variable].to_numpy(float)
        frame["scenario_value"] = new
        change_rows.append(frame)
    changes = pd.concat(change_rows, ignore_index=True)
    changes.insert(0, "scenario", setting.name)

    draws = xr.Dataset(
        {"effect": (("sample", "unit"), effect), "outcome": (("sample", "unit"), outcome)},
        coords={
            "unit": np.arange(n_units),
            "unit_province": ("unit", units["province"].to_numpy(str)),
            "unit_year": ("unit", units["year"].to_numpy(int)),
        },
        attrs={"scenario": setting.name},
    )
    return table, changes, draws


# --------------------------------------------------------------------------- public API


@dataclass
class ScenarioResults:
    """Scenario summaries, the changed values and the effect draws.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scenario and level (``unit`` = province-year, ``province``,
        ``region``, ``nation``). Effects (``mean``, ``lower``, ``upper``) are in
        outcome units; positive = the outcome rises under the scenario.
    changes : pandas.DataFrame
        Observed and scenario values of every changed variable per unit.
    draws : dict of xarray.Dataset
        Per scenario, ``effect`` and ``outcome`` draws with dims ``(sample, unit)``.
    ci_prob, ci_kind : float, str
        Interval probability and kind read from ArviZ rcParams (or given).
    seed : int
    """

    table: pd.DataFrame
    changes: pd.DataFrame
    draws: dict[str, xr.Dataset] = field(default_factory=dict)
    ci_prob: float = float("nan")
    ci_kind: str = "eti"
    seed: int = 0

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`table` atomically with a fixed float format and return the path."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")
        return path

    def changes_to_csv(self, path: str | Path) -> Path:
        """Write :attr:`changes` atomically with a fixed float format and return the path."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.changes.to_csv(
                tmp, index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n"
            )
        return path


def run_scenarios(
    dt: xr.DataTree,
    panel: pd.DataFrame,
    scenarios: ScenariosSection | Sequence[ScenarioSetting | Mapping] | ScenarioSetting | Mapping,
    seed: int,
    ci_prob: float | None = None,
    *,
    knots: Mapping[str, Sequence[float]] | None = None,
    thresholds: Mapping[str, Sequence[float]] | None = None,
) -> ScenarioResults:
    r"""Compute the causal effects of policy scenarios from a fitted hierarchical IV posterior.

    Parameters
    ----------
    dt : xarray.DataTree
        Results of :func:`polygvc.inference.sampling.sample_model` (root attrs
        ``spec`` and ``scaling``; groups ``posterior`` and ``constant_data``).
    panel : pandas.DataFrame
        The province-year panel of the run; supplies the observed values of the
        scenario year(s), peers, national quantiles and optional weights.
    scenarios : ScenariosSection, ScenarioSetting, mapping or a sequence of them
        Scenario settings (see :mod:`polygvc.scenario_config`).
    seed : int
        Run seed; with the scenario and province names it seeds every draw.
    ci_prob : float, optional
        Interval probability; default ArviZ ``rcParams["stats.ci_prob"]``. The
        interval kind is ``rcParams["stats.ci_kind"]`` (``eti`` or ``hdi``).
    knots : mapping, optional
        ``{variable: (lower, ..., upper)}`` boundary knots of a spline model in
        original units; values outside the outer knots are flagged.
    thresholds : mapping, optional
        ``{variable: [c1, ...]}`` threshold values of a threshold model; a
        change moving a unit across one is flagged.

    Returns
    -------
    ScenarioResults

    Raises
    ------
    ConfigError
        Unknown variable (the message names the scenario, the variable and the
        valid variables), unknown or unseen province (unless
        ``new_provinces = "population"``), a year outside the panel, missing
        values, invalid weights.
    ModelError
        The posterior lacks the outcome-equation variables.

    Warns
    -----
    ExtrapolationWarning
        Some units carry honesty flags.

    Notes
    -----
    The effect of draw :math:`s` on unit :math:`i` is
    :math:`sd_y\,(\beta_{p,s}\Delta x^{std}_i + \gamma_s^\top \Delta W^{std}_i)`, computed in
    NumPy on the posterior of the outcome equation with :math:`x` set by the
    intervention (a do-operation; Pearl 2009, *Causality*, ch. 3), so a scenario that
    leaves every value unchanged gives exactly 0. Unit flags: ``new_province``,
    ``year_not_in_model``, ``outside_province_range:<var>`` (outside the values the
    province shows in any panel year), ``outside_national_range:<var>`` (outside the
    model rows, the data the posterior was fitted on), ``beyond_boundary_knots:<var>``,
    ``crosses_threshold:<var>``. Probabilities are shares of draws with effect
    :math:`> 0` and :math:`>` ROPE (default 0.1 sd of the outcome, after
    Kruschke 2018, *AMPPS* 1(2):270-280). Outcome intervals add
    :math:`N(0, \sigma_{y,s})` noise seeded from (seed, scenario name); unseen
    provinces' draws are seeded from (seed, province) so they agree across scenarios.
    Region and national rows average the scenario's provinces with equal weights
    (or ``weight_column``); each province averages its years equally.

    Examples
    --------
    >>> # results = run_scenarios(dt, panel, [{"name": "sd_up", "changes": [
    >>> #     {"variable": "poly_rank_size_all", "how": "absolute", "value": 1, "scale": "sd"}]}],
    >>> #     seed=1)
    """
    settings = _coerce_scenarios(scenarios)
    if ci_prob is None:
        ci_prob = float(rcParams["stats.ci_prob"])
    if not 0.0 < ci_prob < 1.0:
        raise ConfigError(f"ci_prob = {ci_prob} must lie strictly between 0 and 1.")
    ci_kind = str(rcParams["stats.ci_kind"])
    post = _read_posterior(dt)
    panel = panel.copy()
    panel["province"] = panel["province"].astype(str)
    panel["year"] = panel["year"].astype(int)

    tables, changes, draws = [], [], {}
    for setting in settings:
        table, change, draw = _run_one(
            setting, post, panel, int(seed), ci_prob, ci_kind, knots or {}, thresholds or {}
        )
        tables.append(table)
        changes.append(change)
        draws[setting.name] = draw
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not table.empty:
        table["year"] = table["year"].astype("Int64")
        from polygvc.data_prep.names import province_table

        zh = dict(zip(province_table()["province"], province_table()["province_zh"], strict=True))
        position = table.columns.get_loc("province") + 1
        table.insert(position, "province_zh", table["province"].map(lambda p: zh.get(p, "")))
    return ScenarioResults(
        table=table,
        changes=pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(),
        draws=draws,
        ci_prob=ci_prob,
        ci_kind=ci_kind,
        seed=int(seed),
    )
