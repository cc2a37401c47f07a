"""MCMC convergence summaries and a pass/warn/fail verdict table.

The table has one row per check (R-hat, bulk and tail ESS, divergences,
E-BFMI, tree-depth saturation), each with its value, the threshold stated as
text, and a verdict. The overall verdict is the worst row. Interval bounds in
the per-parameter summary use ``arviz_base.rcParams["stats.ci_prob"]`` and
``["stats.ci_kind"]`` unless the caller passes others.

References
----------
Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of
MCMC. Bayesian Analysis 16(2), 667-718.
Betancourt (2016). Diagnosing suboptimal cotangent disintegrations in
Hamiltonian Monte Carlo. arXiv:1604.00695.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams

from polygvc.errors import ConvergenceWarning, DataError

__all__ = [
    "ConvergenceThresholds",
    "DivergenceReport",
    "VerdictTable",
    "VERDICT_ORDER",
    "convergence_summary",
    "convergence_verdict",
    "divergence_report",
    "warn_if_needed",
]

logger = logging.getLogger(__name__)

# Verdicts from best to worst; "n/a" marks a check whose input is missing and
# never decides the overall verdict.
VERDICT_ORDER: tuple[str, ...] = ("pass", "warn", "fail")
NOT_APPLICABLE = "n/a"

# Sampler statistic names differ between PyMC (``arviz`` converter renames
# ``depth`` to ``tree_depth``) and nutpie (``depth``, ``maxdepth_reached``).
_TREE_DEPTH_NAMES = ("tree_depth", "depth")
_MAX_DEPTH_FLAG_NAMES = ("reached_max_treedepth", "maxdepth_reached")

_FIXES = {
    "max_rhat": (
        "run longer warm-up (tune) and more draws, and look at the rank plots for a chain "
        "stuck in another mode; if it persists, reparameterise or tighten the priors of the "
        "group standard deviations"
    ),
    "min_ess_bulk": (
        "draw more samples or tune longer; a low ESS with a high R-hat means the chains "
        "have not mixed, not only that the run is short"
    ),
    "min_ess_tail": (
        "draw more samples; a low tail ESS often comes with a funnel in a hierarchical sd, "
        "so check the divergence report and consider reparameterising"
    ),
    "divergences": (
        "raise target_accept (for example 0.95 or 0.99); if divergences remain, "
        "reparameterise the hierarchical terms (non-centred offsets) or tighten the priors "
        "of the *_sd parameters"
    ),
    "min_ebfmi": (
        "reparameterise (heavy tails or funnels), or tune longer so the mass matrix adapts"
    ),
    "treedepth_saturation": (
        "raise max_treedepth, or reparameterise to remove strong posterior correlations "
        "(for example between intercepts and year effects)"
    ),
}


@dataclass(frozen=True)
class ConvergenceThresholds:
    """Pass and warn limits of the convergence checks.

    Attributes
    ----------
    rhat_pass, rhat_warn : float
        Max rank-normalised split R-hat: pass at or below ``rhat_pass``, warn at
        or below ``rhat_warn``, fail above (Vehtari et al. 2021 recommend 1.01).
    ess_pass_per_chain : float
        Bulk and tail ESS pass at or above this number times the number of
        chains (100 per chain, so 400 for four chains, as in Vehtari et al. 2021).
    ess_warn : float
        Bulk and tail ESS warn at or above this total; below it they fail.
    divergence_warn_share : float
        Divergences: pass when none; warn when the share of post-warm-up
        draws that diverged is at most this value (0.001 = 0.1 %); fail above.
    ebfmi_pass, ebfmi_warn : float
        Min E-BFMI over chains: pass at or above ``ebfmi_pass`` (0.3, Betancourt
        2016), warn at or above ``ebfmi_warn``, fail below.
    treedepth_pass_share, treedepth_warn_share : float
        Share of draws that hit the max tree depth: pass at or below the first,
        warn at or below the second, fail above. Saturation costs efficiency,
        not validity, so the limits are looser than for divergences.
    max_treedepth : int
        Max tree depth of the run, used only when the sampler stored the depth
        but no saturation flag.
    """

    rhat_pass: float = 1.01
    rhat_warn: float = 1.05
    ess_pass_per_chain: float = 100.0
    ess_warn: float = 100.0
    divergence_warn_share: float = 0.001
    ebfmi_pass: float = 0.3
    ebfmi_warn: float = 0.2
    treedepth_pass_share: float = 0.01
    treedepth_warn_share: float = 0.10
    max_treedepth: int = 10


@dataclass
class DivergenceReport:
    """Counts and locations of divergent transitions.

    Attributes
    ----------
    n_divergent : int
        Number of divergent post-warm-up draws over all chains.
    n_draws : int
        Number of post-warm-up draws over all chains.
    per_chain : pandas.Series
        Divergent draws per chain, indexed by chain.
    funnel : pandas.DataFrame
        One row per scalar funnel parameter (the hierarchical sds): mean at
        divergent draws, mean at the other draws, and ``share_in_lowest_decile``,
        the share of divergent draws whose value lies below the 10th percentile
        of the other draws. Shares well above 0.1 point to the neck of a funnel.
        Empty when there are no divergences.
    """

    n_divergent: int
    n_draws: int
    per_chain: pd.Series
    funnel: pd.DataFrame

    @property
    def share(self) -> float:
        """Share of post-warm-up draws that diverged."""
        return self.n_divergent / self.n_draws if self.n_draws else float("nan")


@dataclass
class VerdictTable:
    """Convergence checks with their verdicts.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by check name; columns ``label``, ``value``, ``threshold``,
        ``verdict`` (pass, warn, fail or n/a), ``detail`` and ``fix``.
    overall : str
        Worst verdict over the applicable checks.
    thresholds : ConvergenceThresholds
        Limits the verdicts were judged against.
    divergences : DivergenceReport or None
        Divergence locations; None when the tree has no ``diverging`` statistic.
    """

    table: pd.DataFrame
    overall: str
    thresholds: ConvergenceThresholds
    divergences: DivergenceReport | None = None
    notes: list[str] = field(default_factory=list)

    def flagged(self) -> pd.DataFrame:
        """Return the rows whose verdict is warn or fail."""
        return self.table[self.table["verdict"].isin(["warn", "fail"])]


def _require_group(dt: xr.DataTree, group: str) -> xr.Dataset:
    if group not in dt.children:
        raise DataError(
            f"The results tree has no '{group}' group (groups present: "
            f"{sorted(dt.children)}). Load the posterior.nc written by "
            "polygvc.inference.store, or rerun the sampling step."
        )
    return dt[group].to_dataset()


def _check_var_names(dataset: xr.Dataset, var_names: Sequence[str] | None, group: str):
    if var_names is None:
        return list(dataset.data_vars)
    if isinstance(var_names, str):
        var_names = [var_names]
    unknown = [name for name in var_names if name not in dataset.data_vars]
    if unknown:
        raise DataError(
            f"Unknown variable(s) {unknown} in group '{group}'. Valid names: "
            f"{sorted(dataset.data_vars)}."
        )
    return list(var_names)


def _interval_settings(ci_prob: float | None, ci_kind: str | None) -> tuple[float, str]:
    prob = rcParams["stats.ci_prob"] if ci_prob is None else ci_prob
    kind = rcParams["stats.ci_kind"] if ci_kind is None else ci_kind
    return float(prob), str(kind)


def convergence_summary(
    dt: xr.DataTree,
    var_names: Sequence[str] | None = None,
    *,
    ci_prob: float | None = None,
    ci_kind: str | None = None,
) -> pd.DataFrame:
    """Summarise each posterior element: moments, credible interval and MCMC diagnostics.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with a ``posterior`` group (dims ``chain``, ``draw`` and others).
    var_names : sequence of str, optional
        Posterior variables to include; all by default.
    ci_prob : float, optional
        Interval probability; defaults to ``arviz_base.rcParams["stats.ci_prob"]``.
    ci_kind : {"eti", "hdi"}, optional
        Equal-tailed or highest-density interval; defaults to
        ``rcParams["stats.ci_kind"]``.

    Returns
    -------
    pandas.DataFrame
        One row per element, labelled like ``effect_province[Beijing]``, with
        columns ``mean``, ``sd``, ``ci_lb``, ``ci_ub``, ``r_hat``, ``ess_bulk``,
        ``ess_tail``, ``mcse_mean``, ``mcse_sd``. ``attrs["ci_prob"]`` and
        ``attrs["ci_kind"]`` record the interval used.

    Raises
    ------
    polygvc.errors.DataError
        If the posterior group is missing or a name in ``var_names`` is unknown.

    Notes
    -----
    R-hat is the rank-normalised split R-hat, the max of the bulk and folded
    versions; ESS bulk and tail follow Vehtari et al. (2021). Values come from
    :func:`arviz_stats.summary` unrounded.
    """
    posterior = _require_group(dt, "posterior")
    names = _check_var_names(posterior, var_names, "posterior")
    prob, kind = _interval_settings(ci_prob, ci_kind)
    frame = azs.summary(
        dt, var_names=names, kind="all", ci_prob=prob, ci_kind=kind, round_to="none"
    )
    frame = pd.DataFrame(frame)
    # arviz names the bounds after the probability (eti89_lb); a fixed name lets
    # callers read them without knowing rcParams, and attrs keep the probability.
    bound_columns = [c for c in frame.columns if c.endswith("_lb") or c.endswith("_ub")]
    frame = frame.rename(columns={c: "ci_" + c.rsplit("_", 1)[1] for c in bound_columns})
    frame = frame[
        ["mean", "sd", "ci_lb", "ci_ub", "r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"]
    ].astype(float)
    frame.attrs["ci_prob"] = prob
    frame.attrs["ci_kind"] = kind
    return frame


def divergence_report(
    dt: xr.DataTree, funnel_vars: Sequence[str] | None = None
) -> DivergenceReport | None:
    """Count divergent transitions per chain and compare funnel parameters at them.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``sample_stats`` (variable ``diverging``) and ``posterior``.
    funnel_vars : sequence of str, optional
        Scalar posterior variables to compare; by default every scalar variable
        whose name ends in ``_sd`` (the hierarchical scales).

    Returns
    -------
    DivergenceReport or None
        None when ``sample_stats`` or its ``diverging`` variable is missing.

    Notes
    -----
    In a non-centred hierarchy divergences concentrate where a group sd is
    near zero (the neck of Neal's funnel). If divergent draws fall mostly in
    the lowest decile of the other draws' sd values, the sd prior or the
    parameterisation is the place to act.
    """
    if "sample_stats" not in dt.children or "diverging" not in dt["sample_stats"].data_vars:
        return None
    diverging = dt["sample_stats"]["diverging"].astype(bool)
    per_chain = diverging.sum("draw").to_series().astype(int).rename("n_divergent")
    n_divergent = int(diverging.sum())
    n_draws = int(diverging.size)

    posterior = dt["posterior"].to_dataset() if "posterior" in dt.children else xr.Dataset()
    if funnel_vars is None:
        funnel_vars = [
            name
            for name, var in posterior.data_vars.items()
            if name.endswith("_sd") and set(var.dims) <= {"chain", "draw"}
        ]
    rows = []
    if n_divergent:
        mask = diverging.values.ravel()
        for name in funnel_vars:
            if name not in posterior.data_vars:
                raise DataError(
                    f"Funnel variable '{name}' is not in the posterior group. Valid names: "
                    f"{sorted(posterior.data_vars)}."
                )
            values = posterior[name].transpose("chain", "draw").values.ravel()
            at_divergent = values[mask]
            others = values[~mask]
            lowest_decile = np.quantile(others, 0.1) if others.size else np.nan
            rows.append(
                {
                    "parameter": name,
                    "mean_divergent": float(at_divergent.mean()),
                    "mean_other": float(others.mean()) if others.size else np.nan,
                    "share_in_lowest_decile": float(np.mean(at_divergent < lowest_decile)),
                }
            )
    funnel = pd.DataFrame(
        rows, columns=["parameter", "mean_divergent", "mean_other", "share_in_lowest_decile"]
    ).set_index("parameter")
    return DivergenceReport(n_divergent, n_draws, per_chain, funnel)


def _grade_upper(value: float, pass_max: float, warn_max: float) -> str:
    if value <= pass_max:
        return "pass"
    if value <= warn_max:
        return "warn"
    return "fail"


def _grade_lower(value: float, pass_min: float, warn_min: float) -> str:
    if value >= pass_min:
        return "pass"
    if value >= warn_min:
        return "warn"
    return "fail"


def _row(check, label, value, threshold, verdict, detail=""):
    return {
        "check": check,
        "label": label,
        "value": value,
        "threshold": threshold,
        "verdict": verdict,
        "detail": detail,
        "fix": _FIXES[check] if verdict in ("warn", "fail") else "",
    }


def _diagnostic_rows(diag: pd.DataFrame, n_chains: int, limits: ConvergenceThresholds):
    rows = []
    rhat = diag["r_hat"].astype(float)
    n_nan = int(rhat.isna().sum())
    nan_note = f"; {n_nan} element(s) with undefined R-hat (constant draws)" if n_nan else ""
    if rhat.notna().any():
        worst = rhat.idxmax()
        rows.append(
            _row(
                "max_rhat",
                "Max R-hat (rank-normalised, split)",
                float(rhat.max()),
                f"pass ≤ {limits.rhat_pass}, warn ≤ {limits.rhat_warn}, else fail",
                _grade_upper(float(rhat.max()), limits.rhat_pass, limits.rhat_warn),
                f"worst: {worst}{nan_note}",
            )
        )
    else:
        rows.append(
            _row(
                "max_rhat",
                "Max R-hat (rank-normalised, split)",
                np.nan,
                f"pass ≤ {limits.rhat_pass}; undefined everywhere = fail",
                "fail",
                "R-hat is undefined for every element: the draws are constant or non-finite, "
                "so the sampler did not explore the posterior" + nan_note,
            )
        )

    ess_pass = max(limits.ess_pass_per_chain * n_chains, limits.ess_warn)
    for column, check, label in (
        ("ess_bulk", "min_ess_bulk", "Min bulk ESS"),
        ("ess_tail", "min_ess_tail", "Min tail ESS"),
    ):
        ess = diag[column].astype(float)
        if ess.notna().any():
            value = float(ess.min())
            rows.append(
                _row(
                    check,
                    label,
                    value,
                    f"pass ≥ {ess_pass:g} ({limits.ess_pass_per_chain:g} per chain × "
                    f"{n_chains}), warn ≥ {limits.ess_warn:g}, else fail",
                    _grade_lower(value, ess_pass, limits.ess_warn),
                    f"worst: {ess.idxmin()}",
                )
            )
        else:
            rows.append(_row(check, label, np.nan, "", NOT_APPLICABLE, "ESS undefined"))
    return rows


def _sampler_rows(dt: xr.DataTree, limits: ConvergenceThresholds, report):
    rows = []
    stats = dt["sample_stats"].to_dataset() if "sample_stats" in dt.children else xr.Dataset()

    divergence_threshold = (
        f"pass = 0, warn ≤ {100 * limits.divergence_warn_share:g} % of draws, else fail"
    )
    if report is None:
        rows.append(
            _row(
                "divergences",
                "Divergent transitions",
                np.nan,
                divergence_threshold,
                NOT_APPLICABLE,
                "sample_stats has no 'diverging' variable",
            )
        )
    else:
        if report.n_divergent == 0:
            verdict = "pass"
        elif report.share <= limits.divergence_warn_share:
            verdict = "warn"
        else:
            verdict = "fail"
        chains = [str(c) for c, n in report.per_chain.items() if n > 0]
        detail = f"{report.n_divergent} of {report.n_draws} draws ({100 * report.share:.2f} %)"
        if chains:
            detail += f"; chains {', '.join(chains)}"
        rows.append(
            _row(
                "divergences",
                "Divergent transitions",
                float(report.n_divergent),
                divergence_threshold,
                verdict,
                detail,
            )
        )

    ebfmi_threshold = f"pass ≥ {limits.ebfmi_pass}, warn ≥ {limits.ebfmi_warn}, else fail"
    if "energy" in stats.data_vars:
        ebfmi = azs.bfmi(stats[["energy"]])["energy"]
        per_chain = ", ".join(f"{float(v):.2f}" for v in np.atleast_1d(ebfmi.values))
        value = float(ebfmi.min())
        rows.append(
            _row(
                "min_ebfmi",
                "Min E-BFMI over chains",
                value,
                ebfmi_threshold,
                _grade_lower(value, limits.ebfmi_pass, limits.ebfmi_warn),
                f"per chain: {per_chain}",
            )
        )
    else:
        rows.append(
            _row(
                "min_ebfmi",
                "Min E-BFMI over chains",
                np.nan,
                ebfmi_threshold,
                NOT_APPLICABLE,
                "sample_stats has no 'energy' variable",
            )
        )

    depth_threshold = (
        f"pass ≤ {100 * limits.treedepth_pass_share:g} % of draws at max depth, "
        f"warn ≤ {100 * limits.treedepth_warn_share:g} %, else fail"
    )
    flag_name = next((n for n in _MAX_DEPTH_FLAG_NAMES if n in stats.data_vars), None)
    depth_name = next((n for n in _TREE_DEPTH_NAMES if n in stats.data_vars), None)
    if flag_name is not None:
        saturated = stats[flag_name].astype(bool)
        source = f"'{flag_name}' flag"
    elif depth_name is not None:
        saturated = stats[depth_name] >= limits.max_treedepth
        source = f"'{depth_name}' ≥ max_treedepth = {limits.max_treedepth}"
    else:
        saturated = None
    if saturated is None:
        rows.append(
            _row(
                "treedepth_saturation",
                "Tree-depth saturation",
                np.nan,
                depth_threshold,
                NOT_APPLICABLE,
                "sample_stats has no tree-depth statistic",
            )
        )
    else:
        share = float(saturated.mean())
        rows.append(
            _row(
                "treedepth_saturation",
                "Tree-depth saturation",
                share,
                depth_threshold,
                _grade_upper(share, limits.treedepth_pass_share, limits.treedepth_warn_share),
                f"share of draws; from {source}",
            )
        )
    return rows


def convergence_verdict(
    dt: xr.DataTree,
    var_names: Sequence[str] | None = None,
    thresholds: ConvergenceThresholds | None = None,
) -> VerdictTable:
    r"""Judge convergence with one pass/warn/fail row per check.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``posterior`` and, for the sampler checks, ``sample_stats``.
    var_names : sequence of str, optional
        Posterior variables for the R-hat and ESS checks; all by default
        (including offsets and the derived ``effect_*`` variables).
    thresholds : ConvergenceThresholds, optional
        Limits; the defaults are stated in :class:`ConvergenceThresholds`.

    Returns
    -------
    VerdictTable
        Rows ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``min_ebfmi``, ``treedepth_saturation``. A check whose input is missing
        gets verdict ``n/a`` with the reason, and does not enter ``overall``.
        Lower R-hat is better; higher ESS and E-BFMI are better.

    Raises
    ------
    polygvc.errors.DataError
        If the posterior group is missing or a name in ``var_names`` is unknown.

    Notes
    -----
    R-hat and ESS follow Vehtari et al. (2021); E-BFMI is
    :math:`\sum_t (E_t - E_{t-1})^2 / \sum_t (E_t - \bar E)^2` per chain
    (Betancourt 2016), computed by :func:`arviz_stats.bfmi`.
    """
    limits = thresholds if thresholds is not None else ConvergenceThresholds()
    posterior = _require_group(dt, "posterior")
    names = _check_var_names(posterior, var_names, "posterior")
    n_chains = int(posterior.sizes.get("chain", 1))
    diag = pd.DataFrame(
        azs.summary(dt, var_names=names, kind="diagnostics", round_to="none")
    ).astype(float)

    report = divergence_report(dt)
    rows = _diagnostic_rows(diag, n_chains, limits) + _sampler_rows(dt, limits, report)
    table = pd.DataFrame(rows).set_index("check")

    applicable = [v for v in table["verdict"] if v in VERDICT_ORDER]
    overall = max(applicable, key=VERDICT_ORDER.index) if applicable else NOT_APPLICABLE
    notes = []
    if n_chains < 2:
        notes.append("Only one chain: R-hat compares the two halves of that chain only.")
    logger.info("Convergence verdict: %s", overall)
    return VerdictTable(table, overall, limits, report, notes)


def warn_if_needed(verdict: VerdictTable, stacklevel: int = 2) -> list[str]:
    """Emit one ConvergenceWarning listing every check that warned or failed.

    Parameters
    ----------
    verdict : VerdictTable
        Output of :func:`convergence_verdict`.
    stacklevel : int
        Passed to :func:`warnings.warn`; 2 points at the caller.

    Returns
    -------
    list of str
        Names of the flagged checks; empty when every check passed.
    """
    flagged = verdict.flagged()
    if flagged.empty:
        return []
    parts = []
    for _, row in flagged.iterrows():
        parts.append(
            f"{row['label']} = {row['value']:.4g} ({row['verdict']}; {row['threshold']}; "
            f"{row['detail']}). Fix: {row['fix']}."
        )
    message = (
        f"Convergence verdict '{verdict.overall}': posterior summaries may be biased or "
        "their Monte Carlo error understated. " + " ".join(parts)
    )
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)
    return list(flagged.index)
