"""Model data: the rows a model uses, standardised, with coords and scaling.

:func:`prepare_model_data` turns a panel and a spec into :class:`ModelData`.
It checks that every column exists and is numeric and finite, drops rows with
missing values (logging which units lost rows and why), and rejects designs a
model cannot identify: a constant column, collinear regressors, fewer than two
units.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polygvc.errors import DataError, ModelError
from polygvc.models.spec import HierarchicalIVSpec

logger = logging.getLogger(__name__)


@dataclass
class ModelData:
    """Standardised arrays and coords for one model fit.

    Attributes
    ----------
    y, x : ndarray, shape (n_obs,)
        Standardised dependent and endogenous variables.
    Z : ndarray, shape (n_obs, n_instrument)
        Standardised instruments.
    W : ndarray, shape (n_obs, n_covariate)
        Standardised covariates (controls then moderators).
    unit_idx, group_idx_of_unit, time_idx : ndarray of int
        Unit of each row, group of each unit, time period of each row.
    coords : dict
        Coordinates for the dims ``obs``, ``province``, ``region``, ``year``,
        ``instrument``, ``covariate``, ``equation``.
    scaling : dict
        ``{column: {"mean": m, "sd": s}}`` of the original columns.
    frame : pandas.DataFrame
        The model rows in original units.
    dropped : pandas.DataFrame
        Rows not used, with the reason.
    """

    y: np.ndarray
    x: np.ndarray
    Z: np.ndarray
    W: np.ndarray
    unit_idx: np.ndarray
    group_idx_of_unit: np.ndarray
    time_idx: np.ndarray
    coords: dict[str, list]
    scaling: dict[str, dict[str, float]]
    frame: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_obs(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    def unscale_effect(self, beta_std):
        """Convert a standardised slope of ``endog`` into original units of the outcome."""
        spec_y, spec_x = self.frame.attrs["dependent"], self.frame.attrs["endog"]
        return beta_std * self.scaling[spec_y]["sd"] / self.scaling[spec_x]["sd"]


def _check_columns(panel: pd.DataFrame, spec: HierarchicalIVSpec, source: str) -> None:
    roles = {spec.dependent: "model.dependent", spec.endog: "model.endog"}
    roles.update({c: "model.instruments" for c in spec.instruments})
    roles.update({c: "model.controls" for c in spec.controls})
    roles.update({c: "model.moderators" for c in spec.moderators})
    roles.update({c: "model.extra_endog" for c in getattr(spec, "extra_endog", [])})
    threshold_variable = getattr(spec, "threshold_variable", None)
    if threshold_variable is not None:
        roles.setdefault(threshold_variable, "model.threshold.variable")
    roles.update({spec.unit: "data.unit", spec.group: "data.group", spec.time: "data.time"})
    needed = [*spec.columns, spec.unit, spec.group, spec.time]
    available = list(panel.columns)
    for column in needed:
        if column not in panel.columns:
            close = difflib.get_close_matches(column, available, n=3)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            key = roles.get(column, "the model spec")
            raise DataError(
                f"Column {column!r} named in {key} is missing from {source}.{hint} "
                f"Available columns: {', '.join(map(str, available))}. Fix: correct {key} "
                "in the config or add the column to the panel."
            )
    for column in spec.columns:
        if not pd.api.types.is_numeric_dtype(panel[column]):
            bad = panel[column][
                pd.to_numeric(panel[column], errors="coerce").isna() & panel[column].notna()
            ]
            example = f" (row {bad.index[0]}: {bad.iloc[0]!r})" if len(bad) else ""
            key = roles.get(column, "the model spec")
            raise DataError(
                f"Column {column!r} (named in {key}) in {source} must be numeric but has type "
                f"{panel[column].dtype}{example}. Fix: clean the column so it holds numbers "
                f"only, or name a numeric column in {key}."
            )
        values = panel[column].to_numpy(dtype=float)
        infinite = np.isinf(values)
        if infinite.any():
            row = panel.index[np.argmax(infinite)]
            raise DataError(
                f"Column {column!r} in {source} has an infinite value at row {row}. "
                "Fix: replace it with a finite value or leave it missing."
            )


def _drop_incomplete(
    panel: pd.DataFrame, spec: HierarchicalIVSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = panel[spec.columns].isna()
    keep = ~missing.any(axis=1)
    reasons = missing.apply(
        lambda row: "missing " + ", ".join(col for col, miss in row.items() if miss), axis=1
    )
    dropped = panel.loc[~keep, [spec.unit, spec.time]].copy()
    dropped["reason"] = reasons[~keep]
    if "excluded_reason" in panel.columns:
        excluded = panel.loc[~keep, "excluded_reason"].fillna("")
        dropped.loc[excluded != "", "reason"] = excluded[excluded != ""]
    return panel.loc[keep].copy(), dropped


def _missing_summary(panel: pd.DataFrame, spec: HierarchicalIVSpec) -> str:
    counts = panel[spec.columns].isna().sum()
    counts = counts[counts > 0]
    parts = [
        f"{column} is missing in {int(n)} of {len(panel)} rows" for column, n in counts.items()
    ]
    return ("; ".join(parts) + ".") if parts else ""


def _standardise(values: np.ndarray, column: str, source: str) -> tuple[np.ndarray, float, float]:
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    if not np.isfinite(sd) or sd <= 1e-12 * max(1.0, abs(mean)):
        raise ModelError(
            f"Column {column!r} is constant ({mean:g}) in the {values.size} model rows of "
            f"{source}, so its coefficient cannot be estimated. Fix: drop it from the model "
            "or use a variable that varies across these rows."
        )
    return (values - mean) / sd, mean, sd


def _check_rank(design: np.ndarray, names: list[str], source: str) -> None:
    rank = np.linalg.matrix_rank(design)
    if rank == design.shape[1]:
        return
    # The right singular vector of the smallest singular value gives the linear
    # combination that is (numerically) zero; its non-negligible weights name
    # the columns involved.
    _, _, vt = np.linalg.svd(design / np.linalg.norm(design, axis=0), full_matrices=False)
    weights = np.abs(vt[-1])
    involved = [name for name, w in zip(names, weights, strict=True) if w > 1e-6 * weights.max()]
    shown = [name for name in involved if name != "intercept"] or involved
    raise ModelError(
        f"Columns {', '.join(shown)} are collinear"
        + (" with the intercept" if "intercept" in involved and len(shown) < len(involved) else "")
        + f" in the model rows of {source} (design rank {rank} < {design.shape[1]} columns), "
        f"so the model is not identified. Fix: drop one of {', '.join(shown)} from the "
        "instruments, controls or moderators."
    )


def prepare_model_data(
    panel: pd.DataFrame, spec: HierarchicalIVSpec, source: str = "the panel"
) -> ModelData:
    """Select, check and standardise the model rows of a panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Long panel with one row per unit and time period.
    spec : HierarchicalIVSpec
        Variable roles.
    source : str
        Name of the panel's file or origin, used in error messages.

    Returns
    -------
    ModelData

    Raises
    ------
    DataError
        A column is missing, non-numeric or infinite; duplicated unit-time keys.
    ModelError
        Too few rows or units, a constant column, or collinear regressors.
    """
    _check_columns(panel, spec, source)
    duplicated = panel.duplicated([spec.unit, spec.time], keep=False)
    if duplicated.any():
        first = panel.loc[duplicated, [spec.unit, spec.time]].iloc[0]
        raise DataError(
            f"{source} has {int(duplicated.sum())} rows with a duplicated "
            f"({spec.unit}, {spec.time}) key, first {first[spec.unit]!r}, {first[spec.time]}. "
            "Fix: keep one row per unit and period (aggregate or remove the duplicates)."
        )
    rows, dropped = _drop_incomplete(panel, spec)
    if not dropped.empty:
        for unit, reasons in dropped.groupby(spec.unit)["reason"]:
            logger.info(
                "%s: %d rows not used (%s)", unit, len(reasons), "; ".join(sorted(set(reasons)))
            )
    rows = rows.sort_values([spec.group, spec.unit, spec.time]).reset_index(drop=True)
    units = list(dict.fromkeys(rows[spec.unit]))
    if not units:
        raise ModelError(
            f"No {spec.unit} has complete data for {', '.join(spec.columns)} in {source}. "
            f"{_missing_summary(panel, spec)} Fix: fill these columns or choose other ones."
        )
    if len(units) < 2:
        raise ModelError(
            f"Only 1 {spec.unit} ({units[0]}) has complete data for {', '.join(spec.columns)} "
            f"in {source}; partial pooling needs at least two. Fix: check the missing values "
            "listed in the log or widen the years."
        )
    n_params = 1 + len(spec.instruments) + len(spec.covariates)
    if len(rows) <= n_params:
        raise ModelError(
            f"{source} has {len(rows)} complete rows for {n_params} first-stage coefficients. "
            "Fix: use fewer instruments or covariates, or more data."
        )
    unit_group = rows.groupby(spec.unit, sort=False)[spec.group].agg(lambda s: set(s))
    split = unit_group[unit_group.map(len) > 1]
    if len(split):
        raise DataError(
            f"{spec.unit} {split.index[0]!r} belongs to several {spec.group} values "
            f"{sorted(split.iloc[0])} in {source}. Fix: give each {spec.unit} one {spec.group}."
        )
    groups = sorted(set(rows[spec.group]))
    if len(groups) < 2:
        raise ModelError(
            f"All model rows of {source} are in one {spec.group} ({groups[0]!r}), so the "
            f"{spec.group}-level spread of the slopes is not identified. Fix: set "
            "data.group to a column with two or more groups."
        )
    times = sorted(set(rows[spec.time]))

    scaling: dict[str, dict[str, float]] = {}
    standardised: dict[str, np.ndarray] = {}
    for column in spec.columns:
        values = rows[column].to_numpy(dtype=float)
        standardised[column], mean, sd = _standardise(values, column, source)
        scaling[column] = {"mean": mean, "sd": sd}

    Z = np.column_stack([standardised[c] for c in spec.instruments])
    W = (
        np.column_stack([standardised[c] for c in spec.covariates])
        if spec.covariates
        else np.zeros((len(rows), 0))
    )
    time_idx = np.array([times.index(t) for t in rows[spec.time]], dtype=int)
    first_stage_design = np.column_stack([np.ones(len(rows)), Z, W])
    names = ["intercept", *spec.instruments, *spec.covariates]
    if spec.year_effects and len(times) > 1:
        dummies = np.eye(len(times))[time_idx][:, 1:]
        first_stage_design = np.column_stack([first_stage_design, dummies])
        names += [f"{spec.time}={t}" for t in times[1:]]
    _check_rank(first_stage_design, names, source)

    unit_idx = np.array([units.index(u) for u in rows[spec.unit]], dtype=int)
    group_of_unit = np.array([groups.index(next(iter(unit_group[u]))) for u in units], dtype=int)
    rows.attrs["dependent"], rows.attrs["endog"] = spec.dependent, spec.endog
    coords = {
        "obs": list(range(len(rows))),
        "province": [str(u) for u in units],
        "region": [str(g) for g in groups],
        "year": [int(t) for t in times],
        "instrument": list(spec.instruments),
        "covariate": list(spec.covariates),
        "equation": ["first_stage", "outcome"],
    }
    return ModelData(
        y=standardised[spec.dependent],
        x=standardised[spec.endog],
        Z=Z,
        W=W,
        unit_idx=unit_idx,
        group_idx_of_unit=group_of_unit,
        time_idx=time_idx,
        coords=coords,
        scaling=scaling,
        frame=rows,
        dropped=dropped.reset_index(drop=True),
    )
