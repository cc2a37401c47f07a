"""Report figures as base64 PNG strings, and the small statistics they show.

Every plotting function draws with matplotlib (Agg canvas, no display) or
arviz-plots with the matplotlib backend, closes its figure, and never modifies
the DataTree or other arguments it receives. Text is drawn with mathtext off,
so province names or labels containing ``$`` print as typed. Interval bounds
use ``arviz_base.rcParams["stats.ci_prob"]`` and ``["stats.ci_kind"]`` unless a
``ci_prob`` is passed.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Mapping, Sequence

import arviz_plots as azp
import arviz_stats as azs
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rcParams
from matplotlib.figure import Figure

__all__ = [
    "effect_intervals",
    "figure_to_base64",
    "first_stage_plot",
    "forest_effects_plot",
    "pooling_plot",
    "pooling_statistics",
    "ppc_plot",
    "province_regions",
    "rank_plot",
]

logger = logging.getLogger(__name__)

REGION_COLORS = {"East": "#1b6ca8", "Central": "#d9822b", "West": "#2e8b57", "Northeast": "#8e44ad"}
DEFAULT_RANK_VARS = (
    "beta_mu",
    "beta_region_sd",
    "beta_province_sd",
    "intercept_province_sd",
    "rho",
    "sigma",
)
# Names of first-stage F statistics as linearmodels (``f.stat``) and other
# helpers may label them; the first column or key found is plotted.
F_STAT_NAMES = ("f.stat", "f_stat", "partial_f", "first_stage_f", "effective_f", "kp_f", "f")
_RC = {"text.parse_math": False, "figure.dpi": 100, "font.size": 9}


# --- statistics the figures and the HTML tables share -----------------------


def province_regions(dt: xr.DataTree) -> pd.Series:
    """Map each province to its macro-region from ``constant_data``.

    Returns
    -------
    pandas.Series
        Region name indexed by province; empty when ``constant_data`` lacks
        ``obs_province`` or ``obs_region``.
    """
    if "constant_data" not in dt.children:
        return pd.Series(dtype=object)
    const = dt["constant_data"]
    if "obs_province" not in const.data_vars or "obs_region" not in const.data_vars:
        return pd.Series(dtype=object)
    pairs = pd.DataFrame(
        {
            "province": np.asarray(const["obs_province"].values).astype(str),
            "region": np.asarray(const["obs_region"].values).astype(str),
        }
    ).drop_duplicates("province")
    return pairs.set_index("province")["region"]


def effect_intervals(
    dt: xr.DataTree,
    var_names: Sequence[str] = ("effect_mu", "effect_region", "effect_province"),
    *,
    ci_prob: float | None = None,
    ci_kind: str | None = None,
) -> pd.DataFrame:
    """Summarise effect variables: mean, sd, credible interval and P(effect > 0).

    Parameters
    ----------
    dt : xarray.DataTree
        Results with a ``posterior`` group.
    var_names : sequence of str
        Posterior variables, each scalar or with one dim; missing ones are skipped.
    ci_prob, ci_kind : optional
        Interval settings; default to ``arviz_base.rcParams``.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``dim``, ``label`` (coordinate value, or the
        variable name for scalars), ``mean``, ``sd``, ``ci_lb``, ``ci_ub``,
        ``p_positive``; ``attrs`` record ``ci_prob`` and ``ci_kind``. A positive
        effect means the dependent variable rises when the endogenous regressor
        rises.
    """
    prob = rcParams["stats.ci_prob"] if ci_prob is None else float(ci_prob)
    kind = rcParams["stats.ci_kind"] if ci_kind is None else ci_kind
    posterior = dt["posterior"]
    rows = []
    for name in var_names:
        if name not in posterior.data_vars:
            continue
        var = posterior[name]
        extra_dims = [d for d in var.dims if d not in ("chain", "draw")]
        interval_fn = azs.hdi if kind == "hdi" else azs.eti
        bounds = interval_fn(var, prob=prob)
        mean = var.mean(("chain", "draw"))
        sd = var.std(("chain", "draw"))
        p_positive = (var > 0).mean(("chain", "draw"))
        if not extra_dims:
            labels = [(None, name, {})]
        else:
            dim = extra_dims[0]
            labels = [(dim, str(v), {dim: v}) for v in var[dim].values]
        for dim, label, sel in labels:
            ci = bounds.sel(sel).values
            rows.append(
                {
                    "variable": name,
                    "dim": dim,
                    "label": label,
                    "mean": float(mean.sel(sel)),
                    "sd": float(sd.sel(sel)),
                    "ci_lb": float(ci[0]),
                    "ci_ub": float(ci[1]),
                    "p_positive": float(p_positive.sel(sel)),
                }
            )
    frame = pd.DataFrame(
        rows, columns=["variable", "dim", "label", "mean", "sd", "ci_lb", "ci_ub", "p_positive"]
    )
    frame.attrs["ci_prob"] = prob
    frame.attrs["ci_kind"] = kind
    return frame


def pooling_statistics(dt: xr.DataTree) -> pd.DataFrame:
    r"""Compute the pooling factor of the region and province slope deviations.

    Parameters
    ----------
    dt : xarray.DataTree
        Results whose posterior contains ``beta_region_sd`` and
        ``beta_region_offset`` and/or ``beta_province_sd`` and
        ``beta_province_offset``.

    Returns
    -------
    pandas.DataFrame
        Indexed by level (``region``, ``province``): ``pooling_factor``,
        ``sd_mean`` (posterior mean of the level's sd, standardised units) and
        ``n_groups``. Levels whose variables are missing are left out.

    Notes
    -----
    With deviations :math:`\epsilon_k = \sigma \cdot z_k` of group k from the
    level above (the non-centred offsets times their sd), the pooling factor
    of Gelman and Pardoe (2006, Technometrics 48(2)) is

    .. math:: \lambda = 1 - \frac{V_k(E[\epsilon_k])}{E[V_k(\epsilon_k)]},

    with :math:`V_k` the variance over groups and E over draws. Higher means
    more pooling: 0 is no pooling (groups keep their own estimates), 1 is
    complete pooling (all groups shrunk to the level above).
    """
    posterior = dt["posterior"]
    rows = {}
    for level in ("region", "province"):
        sd_name, offset_name = f"beta_{level}_sd", f"beta_{level}_offset"
        if sd_name not in posterior.data_vars or offset_name not in posterior.data_vars:
            continue
        deviation = posterior[sd_name] * posterior[offset_name]
        variance_of_means = float(deviation.mean(("chain", "draw")).var(level, ddof=1))
        mean_of_variances = float(deviation.var(level, ddof=1).mean(("chain", "draw")))
        factor = 1.0 - variance_of_means / mean_of_variances if mean_of_variances > 0 else np.nan
        rows[level] = {
            "pooling_factor": factor,
            "sd_mean": float(posterior[sd_name].mean()),
            "n_groups": int(posterior.sizes[level]),
        }
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["pooling_factor", "sd_mean", "n_groups"]
    )
    frame.index.name = "level"
    return frame


def _spec_labels(dt: xr.DataTree) -> tuple[str, str]:
    try:
        spec = json.loads(dt.attrs.get("spec", "{}"))
    except (TypeError, ValueError):
        spec = {}
    labels = spec.get("labels") or {}
    dependent = spec.get("dependent", "dependent variable")
    endog = spec.get("endog", "endogenous regressor")
    return labels.get(dependent, dependent), labels.get(endog, endog)


# --- figures ----------------------------------------------------------------


def figure_to_base64(fig: Figure) -> str:
    """Render a matplotlib figure to a base64 PNG string and close it."""
    buffer = io.BytesIO()
    try:
        with plt.rc_context(_RC):
            fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_figure(nrows=1, ncols=1, figsize=(8, 4), **kwargs):
    matplotlib.use("Agg", force=False)
    with plt.rc_context(_RC):
        return plt.subplots(nrows, ncols, figsize=figsize, **kwargs)


def forest_effects_plot(dt: xr.DataTree, *, ci_prob: float | None = None) -> str:
    """Draw a forest plot of the effects, provinces grouped and coloured by region.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``effect_mu``, ``effect_region`` and ``effect_province``.
    ci_prob : float, optional
        Interval probability; defaults to ``arviz_base.rcParams["stats.ci_prob"]``.

    Returns
    -------
    str
        Base64 PNG. Rows from the top: the average effect, then per region its
        region effect (diamond) followed by its provinces sorted by posterior
        mean. The x axis is in original units (change in the dependent variable
        per one-unit change of the endogenous regressor); right of 0 is positive.
    """
    table = effect_intervals(dt, ci_prob=ci_prob)
    regions = province_regions(dt)
    dependent, endog = _spec_labels(dt)
    rows = []  # (label, mean, lb, ub, color, marker, bold)
    for _, row in table[table["variable"] == "effect_mu"].iterrows():
        rows.append(("Average effect", row, "black", "s", True))
    provinces = table[table["variable"] == "effect_province"]
    region_rows = table[table["variable"] == "effect_region"].set_index("label")
    region_names = list(region_rows.index) or sorted(set(regions.values))
    for region in region_names:
        color = REGION_COLORS.get(region, "dimgray")
        if region in region_rows.index:
            rows.append((f"{region} (region)", region_rows.loc[region], color, "D", True))
        members = provinces[provinces["label"].map(regions) == region].sort_values("mean")
        for _, prow in members.iterrows():
            rows.append((f"  {prow['label']}", prow, color, "o", False))
    ungrouped = provinces[~provinces["label"].isin(regions.index)]
    for _, prow in ungrouped.sort_values("mean").iterrows():
        rows.append((prow["label"], prow, "dimgray", "o", False))

    fig, ax = _new_figure(figsize=(8, 0.28 * len(rows) + 1.2))
    with plt.rc_context(_RC):
        for position, (_, row, color, marker, bold) in enumerate(rows):
            y = len(rows) - 1 - position
            ax.hlines(y, row["ci_lb"], row["ci_ub"], color=color, linewidth=2.5 if bold else 1.5)
            ax.plot(row["mean"], y, marker=marker, color=color, markersize=6 if bold else 4)
        ax.set_yticks(range(len(rows))[::-1])
        ax.set_yticklabels([r[0] for r in rows])
        for tick, (_, _, color, _, bold) in zip(ax.get_yticklabels(), rows, strict=True):
            tick.set_color(color)
            tick.set_fontweight("bold" if bold else "normal")
        ax.axvline(0.0, color="gray", linestyle=":", linewidth=1)
        ax.set_xlabel(
            f"Effect on {dependent} per unit of {endog} "
            f"(mean and {table.attrs['ci_kind'].upper()} {table.attrs['ci_prob']:.0%})"
        )
        ax.set_ylim(-0.8, len(rows) - 0.2)
        ax.spines[["top", "right"]].set_visible(False)
    return figure_to_base64(fig)


def rank_plot(dt: xr.DataTree, var_names: Sequence[str] | None = None) -> str:
    """Draw fractional-rank ECDF difference plots per chain with arviz-plots.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with a ``posterior`` group.
    var_names : sequence of str, optional
        Variables to show; by default the main scalars present among
        ``DEFAULT_RANK_VARS``.

    Returns
    -------
    str
        Base64 PNG. Lines of well-mixed chains stay inside the envelope around
        zero; a chain far above or below it sampled a different region.
    """
    names = [n for n in (var_names or DEFAULT_RANK_VARS) if n in dt["posterior"].data_vars]
    matplotlib.use("Agg", force=False)
    n_panels = sum(
        int(
            np.prod(
                [
                    size
                    for dim, size in dt["posterior"][n].sizes.items()
                    if dim not in ("chain", "draw")
                ]
            )
        )
        for n in names
    )
    n_rows = max(1, int(np.ceil(n_panels / 4)))
    with plt.rc_context(_RC):
        collection = azp.plot_rank(
            dt,
            var_names=names,
            backend="matplotlib",
            col_wrap=4,
            figure_kwargs={"figsize": (12, 2.8 * n_rows), "layout": "constrained"},
        )
    return figure_to_base64(collection.get_viz("figure"))


def ppc_plot(dt: xr.DataTree, var_name: str = "outcomes") -> str:
    """Draw the posterior predictive check, one panel per equation, with arviz-plots.

    Returns
    -------
    str
        Base64 PNG: ECDFs (or densities, per ``rcParams["plot.density_kind"]``)
        of replicated data sets against the observed data, in standardised units.
    """
    matplotlib.use("Agg", force=False)
    columns = ["equation"] if "equation" in dt["posterior_predictive"][var_name].dims else None
    kwargs = {"cols": columns} if columns else {}
    with plt.rc_context(_RC):
        collection = azp.plot_ppc_dist(
            dt,
            var_names=[var_name],
            backend="matplotlib",
            figure_kwargs={"figsize": (9, 3.2)},
            **kwargs,
        )
    return figure_to_base64(collection.get_viz("figure"))


def pooling_plot(dt: xr.DataTree, *, no_pooling: pd.Series | Mapping | None = None) -> str:
    """Show how strongly the province effects are pooled.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``beta_region_sd``, ``beta_province_sd`` and
        ``effect_province``; a ``prior`` group with the sds adds a prior overlay.
    no_pooling : pandas.Series or mapping, optional
        Per-province no-pooling slope (province -> estimate) in the original
        units of ``effect_province``, for example a separate least-squares
        slope per province. Adds a panel of posterior mean against it.

    Returns
    -------
    str
        Base64 PNG. Left: posterior (and prior, if stored) of the region and
        province sds in standardised units; mass near 0 means strong pooling.
        Right (with ``no_pooling``): points below the 45-degree line towards the
        average effect show shrinkage.
    """
    posterior = dt["posterior"]
    has_prior = "prior" in dt.children
    ncols = 2 if no_pooling is not None else 1
    fig, axes = _new_figure(1, ncols, figsize=(5 * ncols + 1, 3.6), squeeze=False)
    axes = axes[0]
    with plt.rc_context(_RC):
        ax = axes[0]
        for name, color in (("beta_region_sd", "#d9822b"), ("beta_province_sd", "#1b6ca8")):
            if name not in posterior.data_vars:
                continue
            values = posterior[name].values.ravel()
            ax.hist(values, bins=40, density=True, alpha=0.55, color=color, label=name)
            if has_prior and name in dt["prior"].data_vars:
                prior_values = dt["prior"][name].values.ravel()
                ax.hist(
                    prior_values,
                    bins=40,
                    density=True,
                    histtype="step",
                    color=color,
                    linestyle="--",
                    label=f"{name} prior",
                )
        ax.set_xlabel("Group sd of the slope (standardised units)")
        ax.set_ylabel("Density")
        ax.legend(frameon=False)
        ax.spines[["top", "right"]].set_visible(False)

        if no_pooling is not None:
            ax = axes[1]
            separate = pd.Series(no_pooling, dtype=float)
            table = effect_intervals(dt, ("effect_mu", "effect_province"))
            provinces = table[table["variable"] == "effect_province"].set_index("label")
            common = [p for p in provinces.index if p in separate.index]
            regions = province_regions(dt)
            colors = [REGION_COLORS.get(regions.get(p, ""), "dimgray") for p in common]
            ax.scatter(separate[common], provinces.loc[common, "mean"], c=colors, s=18)
            span = np.array(
                [
                    min(separate[common].min(), provinces.loc[common, "mean"].min()),
                    max(separate[common].max(), provinces.loc[common, "mean"].max()),
                ]
            )
            ax.plot(span, span, color="gray", linestyle=":", label="no pooling (45°)")
            average = table[table["variable"] == "effect_mu"]["mean"]
            if not average.empty:
                ax.axhline(average.iloc[0], color="black", linewidth=1, label="average effect")
            ax.set_xlabel("Separate per-province estimate")
            ax.set_ylabel("Posterior mean, effect_province")
            ax.legend(frameon=False)
            ax.spines[["top", "right"]].set_visible(False)
    return figure_to_base64(fig)


def first_stage_plot(dt: xr.DataTree, *, f_statistics: pd.Series | None = None) -> str:
    """Draw the first-stage instrument coefficients and, if given, classical F statistics.

    Parameters
    ----------
    dt : xarray.DataTree
        Results with ``fs_instrument`` (dim ``instrument``, standardised units).
    f_statistics : pandas.Series, optional
        Classical first-stage F statistics, indexed by a label (endogenous
        regressor or statistic name).

    Returns
    -------
    str
        Base64 PNG. Left: posterior mean and interval per instrument; intervals
        far from 0 mean a strong instrument. Right (with ``f_statistics``):
        bars with the F = 10 rule-of-thumb line of Staiger and Stock (1997).
    """
    ncols = 2 if f_statistics is not None and len(f_statistics) else 1
    table = effect_intervals(dt, ("fs_instrument",))
    fig, axes = _new_figure(1, ncols, figsize=(5 * ncols + 1, 0.4 * len(table) + 2), squeeze=False)
    axes = axes[0]
    with plt.rc_context(_RC):
        ax = axes[0]
        y = np.arange(len(table))[::-1]
        ax.hlines(y, table["ci_lb"], table["ci_ub"], color="#1b6ca8", linewidth=2)
        ax.plot(table["mean"], y, "o", color="#1b6ca8")
        ax.set_yticks(y)
        ax.set_yticklabels(table["label"])
        ax.axvline(0.0, color="gray", linestyle=":")
        ax.set_xlabel(
            f"First-stage coefficient (standardised; {table.attrs['ci_prob']:.0%} interval)"
        )
        ax.spines[["top", "right"]].set_visible(False)
        if ncols == 2:
            ax = axes[1]
            values = pd.Series(f_statistics, dtype=float)
            ax.barh([str(i) for i in values.index], values.values, color="#2e8b57")
            ax.axvline(10.0, color="firebrick", linestyle="--", label="F = 10")
            ax.set_xlabel("Classical first-stage F")
            ax.legend(frameon=False)
            ax.spines[["top", "right"]].set_visible(False)
    return figure_to_base64(fig)
