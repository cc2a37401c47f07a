"""Classical 2SLS and LIML cross-checks of the Bayesian IV model, with linearmodels.

The Bayesian hierarchical IV model is checked against the frequentist
estimators that applied economists report: OLS (for reference), two-stage
least squares (2SLS) and limited-information maximum likelihood (LIML). Each
is fitted with a robust or cluster-robust covariance. For comparison with
published tables each is also fitted with the homoskedastic covariance and the
small-sample correction of Stata's ``ivreg``.

This module also holds the data preparation shared by the first-stage
diagnostics (:mod:`polygvc.diagnostics.instruments`) and the weak-instrument
robust confidence sets (:mod:`polygvc.diagnostics.weak_iv`): column checks,
removal of incomplete rows and partialling out of the included exogenous
regressors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from linearmodels.iv import IV2SLS, IVLIML

from polygvc.errors import DataError, ModelError

logger = logging.getLogger(__name__)

CONSTANT = "const"
ESTIMATORS = ("OLS", "2SLS", "LIML")
TABLE_COLUMNS = [
    "estimator",
    "term",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "cov_type",
    "nobs",
]


@dataclass(frozen=True)
class IVFrame:
    """Complete-case data of one IV specification, ready for estimation.

    Attributes
    ----------
    data : pandas.DataFrame
        The used columns, rows with a missing value removed, original index kept.
        A constant column named ``"const"`` is added when requested.
    dependent, endog, exog, instruments : str and lists of str
        Variable roles. ``exog`` includes ``"const"`` when a constant was added.
    clusters : numpy.ndarray or None
        Integer cluster codes aligned with the rows of ``data``.
    cluster : str or None
        Name of the cluster column.
    n_dropped : int
        Number of rows removed because a used column was missing.
    """

    data: pd.DataFrame
    dependent: str
    endog: list[str]
    exog: list[str]
    instruments: list[str]
    clusters: np.ndarray | None
    cluster: str | None
    n_dropped: int

    @property
    def nobs(self) -> int:
        """Number of complete rows."""
        return int(self.data.shape[0])

    @property
    def n_clusters(self) -> int | None:
        """Number of distinct clusters, or None without clustering."""
        return None if self.clusters is None else int(np.unique(self.clusters).size)

    def partialled(self) -> PartialledArrays:
        """Return the arrays with the included exogenous regressors partialled out."""
        return partial_out(self)


@dataclass(frozen=True)
class PartialledArrays:
    """Residuals of y, X and Z on the included exogenous regressors W.

    By the Frisch-Waugh-Lovell theorem every first-stage and Anderson-Rubin
    statistic on the excluded instruments can be computed from these residuals.

    Attributes
    ----------
    y : numpy.ndarray, shape (n,)
        :math:`M_W y`.
    x : numpy.ndarray, shape (n, m)
        :math:`M_W X` for the m endogenous regressors.
    z : numpy.ndarray, shape (n, k)
        :math:`M_W Z` for the k excluded instruments.
    n_exog : int
        Number of columns of W (the constant included), used in degrees of freedom.
    clusters : numpy.ndarray or None
        Integer cluster codes.
    endog, instruments : list of str
        Names of the columns of ``x`` and ``z``.
    """

    y: np.ndarray
    x: np.ndarray
    z: np.ndarray
    n_exog: int
    clusters: np.ndarray | None
    endog: list[str]
    instruments: list[str]

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self.z.shape[0])

    @property
    def n_instruments(self) -> int:
        """Number of excluded instruments k."""
        return int(self.z.shape[1])

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom of the first stage, n - k - c."""
        return self.nobs - self.n_instruments - self.n_exog


@dataclass
class ClassicalIVResult:
    """Classical OLS, 2SLS and LIML estimates of one IV specification.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per estimator, covariance and term, with the columns
        ``estimator, term, estimate, std_error, ci_lower, ci_upper, cov_type, nobs``.
    results : dict
        The linearmodels result objects keyed by ``(estimator, cov_type)``, for
        example ``("2SLS", "unadjusted")``.
    cov_type : str
        The main covariance: ``"clustered"`` or ``"robust"``.
    nobs, n_dropped : int
        Rows used, and rows removed because a used column was missing.
    frame : IVFrame
        The complete-case data the estimators saw.
    """

    table: pd.DataFrame
    results: dict[tuple[str, str], Any]
    cov_type: str
    nobs: int
    n_dropped: int
    frame: IVFrame = field(repr=False)

    def estimate(self, estimator: str, term: str, cov_type: str | None = None) -> pd.Series:
        """Return one row of :attr:`table`.

        Parameters
        ----------
        estimator : {"OLS", "2SLS", "LIML"}
        term : str
            Regressor name.
        cov_type : str, optional
            ``"robust"``, ``"clustered"`` or ``"unadjusted"``; defaults to the main one.

        Raises
        ------
        KeyError
            When no such row exists; the message lists the valid choices.
        """
        cov = cov_type or self.cov_type
        table = self.table
        rows = table[
            (table["estimator"] == estimator) & (table["term"] == term) & (table["cov_type"] == cov)
        ]
        if rows.empty:
            raise KeyError(
                f"No row for estimator={estimator!r}, term={term!r}, cov_type={cov!r}. "
                f"Estimators: {sorted(table['estimator'].unique())}; terms: "
                f"{list(table['term'].unique())}; cov types: {sorted(table['cov_type'].unique())}."
            )
        return rows.iloc[0]


@dataclass(frozen=True)
class InteractionTerms:
    """A frame with instrumented interaction columns added, and the role lists to use.

    Attributes
    ----------
    data : pandas.DataFrame
        A copy of the input with one column per endog x moderator and per
        instrument x moderator product, named ``"<a>:<b>"``.
    endog : list of str
        The endogenous regressors followed by the endog x moderator products.
    instruments : list of str
        The instruments followed by the instrument x moderator products.
    moderators : list of str
        The moderators; they must also enter the model as exogenous regressors.
    """

    data: pd.DataFrame
    endog: list[str]
    instruments: list[str]
    moderators: list[str]


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _check_columns(data: pd.DataFrame, names: Sequence[str], role: str) -> None:
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise DataError(
            f"Column(s) {missing} given as {role} are not in the data frame. Available "
            f"columns: {list(map(str, data.columns))}. Fix: correct the name or add the column."
        )


def prepare_iv_frame(
    data: pd.DataFrame,
    dependent: str,
    endog: str | Sequence[str],
    exog: str | Sequence[str] | None,
    instruments: str | Sequence[str],
    cluster: str | None = None,
    add_constant: bool = True,
) -> IVFrame:
    """Validate an IV specification against a frame and keep its complete rows.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data, one row per observation.
    dependent : str
        Outcome column.
    endog : str or list of str
        Endogenous regressors.
    exog : str or list of str or None
        Included exogenous regressors (controls and moderators).
    instruments : str or list of str
        Excluded instruments.
    cluster : str, optional
        Column whose values define clusters (any hashable values).
    add_constant : bool, default True
        Add a column of ones named ``"const"`` to ``exog``.

    Returns
    -------
    IVFrame

    Raises
    ------
    DataError
        A named column is missing, is not numeric, or no complete row is left.
    ModelError
        No endogenous regressor, fewer instruments than endogenous regressors,
        or a column given in two roles.
    """
    endog_list = _as_list(endog)
    exog_list = _as_list(exog)
    instrument_list = _as_list(instruments)
    roles = {
        "dependent": [dependent],
        "endog": endog_list,
        "exog": exog_list,
        "instruments": instrument_list,
    }
    for role, names in roles.items():
        _check_columns(data, names, role)
    if cluster is not None:
        _check_columns(data, [cluster], "cluster")

    if not endog_list:
        raise ModelError("The IV specification has no endogenous regressor. Fix: pass endog.")
    if len(instrument_list) < len(endog_list):
        raise ModelError(
            f"The IV specification is underidentified: {len(instrument_list)} excluded "
            f"instrument(s) {instrument_list} for {len(endog_list)} endogenous regressor(s) "
            f"{endog_list}. Fix: add instruments so there are at least as many as endog."
        )
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen:
                raise ModelError(
                    f"Column {name!r} is given both as {seen[name]} and as {role}. "
                    "Fix: give each column one role."
                )
            seen[name] = role
    if add_constant and CONSTANT in data.columns:
        raise ModelError(
            f"The data already has a column named {CONSTANT!r} and add_constant=True. "
            f"Fix: pass add_constant=False and list {CONSTANT!r} in exog, or rename it."
        )

    numeric_names = list(seen)
    for name in numeric_names:
        column = data[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            raise DataError(
                f"Column {name!r} has dtype {column.dtype}, but IV estimation needs numbers. "
                "Fix: convert it to a numeric column (for a category, add dummy columns)."
            )
    used = numeric_names + ([cluster] if cluster is not None else [])
    frame = data[list(dict.fromkeys(used))]
    complete = frame.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        logger.info(
            "Dropped %d of %d rows with a missing value in %s.", n_dropped, len(frame), used
        )
    if not complete.any():
        raise DataError(
            f"No row has all of the columns {used} present. Fix: check the missing values."
        )
    clean = frame.loc[complete, numeric_names].astype(float)
    if add_constant:
        clean.insert(0, CONSTANT, 1.0)
        exog_list = [CONSTANT, *exog_list]
    clusters = None
    if cluster is not None:
        clusters, _ = pd.factorize(frame.loc[complete, cluster])
        clusters = np.asarray(clusters, dtype=np.int64)
    return IVFrame(
        data=clean,
        dependent=dependent,
        endog=endog_list,
        exog=exog_list,
        instruments=instrument_list,
        clusters=clusters,
        cluster=cluster,
        n_dropped=n_dropped,
    )


def _residualise(target: np.ndarray, basis: np.ndarray) -> np.ndarray:
    if basis.shape[1] == 0:
        return target.copy()
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    return target - basis @ coef


def partial_out(frame: IVFrame) -> PartialledArrays:
    r"""Partial the included exogenous regressors out of y, X and Z.

    Parameters
    ----------
    frame : IVFrame

    Returns
    -------
    PartialledArrays
        :math:`M_W y`, :math:`M_W X`, :math:`M_W Z` with
        :math:`M_W = I - W(W'W)^{-1}W'`.
    """
    data = frame.data
    w = data[frame.exog].to_numpy(dtype=float)
    y = _residualise(data[[frame.dependent]].to_numpy(dtype=float), w)[:, 0]
    x = _residualise(data[frame.endog].to_numpy(dtype=float), w)
    z = _residualise(data[frame.instruments].to_numpy(dtype=float), w)
    return PartialledArrays(
        y=y,
        x=x,
        z=z,
        n_exog=len(frame.exog),
        clusters=frame.clusters,
        endog=list(frame.endog),
        instruments=list(frame.instruments),
    )


def _fit(
    model: Any, estimator: str, cov_type: str, debiased: bool, clusters: np.ndarray | None
) -> Any:
    options: dict[str, Any] = {"cov_type": cov_type, "debiased": debiased}
    if cov_type == "clustered":
        options["clusters"] = clusters
    try:
        return model.fit(**options)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise ModelError(
            f"linearmodels could not fit {estimator} with cov_type={cov_type!r}: {exc} "
            "Fix: check for instruments or regressors that are collinear, or that "
            "predict an endogenous regressor exactly."
        ) from exc


def _tidy(result: Any, estimator: str, cov_type: str, ci_prob: float) -> pd.DataFrame:
    interval = result.conf_int(level=ci_prob)
    return pd.DataFrame(
        {
            "estimator": estimator,
            "term": list(result.params.index),
            "estimate": result.params.to_numpy(),
            "std_error": result.std_errors.to_numpy(),
            "ci_lower": interval["lower"].to_numpy(),
            "ci_upper": interval["upper"].to_numpy(),
            "cov_type": cov_type,
            "nobs": int(result.nobs),
        }
    )


def classical_iv(
    data: pd.DataFrame,
    dependent: str,
    endog: str | Sequence[str],
    exog: str | Sequence[str] | None,
    instruments: str | Sequence[str],
    cluster: str | None = None,
    add_constant: bool = True,
    *,
    debiased: bool = True,
    ci_prob: float = 0.95,
) -> ClassicalIVResult:
    r"""Estimate OLS, 2SLS and LIML with linearmodels as a cross-check.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data, one row per observation.
    dependent : str
        Outcome column.
    endog : str or list of str
        Endogenous regressors.
    exog : str or list of str or None
        Included exogenous regressors (controls and moderators).
    instruments : str or list of str
        Excluded instruments.
    cluster : str, optional
        Cluster column. When given the main covariance is one-way clustered,
        otherwise heteroskedasticity robust.
    add_constant : bool, default True
        Add an intercept named ``"const"``.
    debiased : bool, default True
        Small-sample correction of the robust or clustered covariance, as
        Stata's ``small`` option: :math:`n/(n-K)` for robust (HC1) and
        :math:`\frac{G}{G-1}\frac{n-1}{n-K}` for clustered (CR1), with K
        regressors and G clusters. The homoskedastic variant is always debiased.
    ci_prob : float, default 0.95
        Confidence level of the Wald intervals. This is a frequentist level,
        so it does not follow the ArviZ credible-interval default.

    Returns
    -------
    ClassicalIVResult
        Tidy table and raw linearmodels results for OLS, 2SLS and LIML, each
        with the main covariance and with the homoskedastic one
        (``cov_type="unadjusted"``, residual variance divided by n - K as in
        Stata ``ivreg``).

    Raises
    ------
    DataError
        A named column is missing (the message lists the available columns),
        not numeric, or no complete row remains.
    ModelError
        The specification is underidentified, a column has two roles, or
        linearmodels fails (for example on collinear instruments).

    Notes
    -----
    With :math:`X = [W, Y_2]` the regressors and :math:`Z = [W, Z_1]` the
    instruments, 2SLS is :math:`\hat\beta = (X'P_ZX)^{-1}X'P_Zy` with
    :math:`P_Z = Z(Z'Z)^{-1}Z'`. LIML is the k-class estimator
    :math:`(X'(I-\kappa M_Z)X)^{-1}X'(I-\kappa M_Z)y` with :math:`\kappa` the
    smallest root of Anderson and Rubin's (1949) determinantal equation.
    LIML is less biased than 2SLS with many or weak instruments (Stock and
    Yogo, 2005). Neither estimator's Wald interval is valid under weak
    instruments; use :func:`polygvc.diagnostics.weak_iv.anderson_rubin_set`.
    Rows with a missing value in any used column (and the cluster column)
    are dropped; their count is ``n_dropped``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=500); v = rng.normal(size=500)
    >>> x = z + v; y = 2 * x + v + rng.normal(size=500)
    >>> res = classical_iv(pd.DataFrame({"y": y, "x": x, "z": z}), "y", ["x"], [], ["z"])
    >>> bool(abs(res.estimate("2SLS", "x")["estimate"] - 2) < 0.2)
    True
    """
    frame = prepare_iv_frame(data, dependent, endog, exog, instruments, cluster, add_constant)
    main_cov = "clustered" if cluster is not None else "robust"
    frame_data = frame.data
    dep = frame_data[frame.dependent]
    exog_frame = frame_data[frame.exog] if frame.exog else None
    endog_frame = frame_data[frame.endog]
    instrument_frame = frame_data[frame.instruments]

    regressors = frame_data[frame.exog + frame.endog]
    models = {
        "OLS": IV2SLS(dep, regressors, None, None),
        "2SLS": IV2SLS(dep, exog_frame, endog_frame, instrument_frame),
        "LIML": IVLIML(dep, exog_frame, endog_frame, instrument_frame),
    }
    results: dict[tuple[str, str], Any] = {}
    tables = []
    for estimator in ESTIMATORS:
        for cov_type, cov_debiased in ((main_cov, debiased), ("unadjusted", True)):
            fitted = _fit(models[estimator], estimator, cov_type, cov_debiased, frame.clusters)
            results[(estimator, cov_type)] = fitted
            tables.append(_tidy(fitted, estimator, cov_type, ci_prob))
    table = pd.concat(tables, ignore_index=True)[TABLE_COLUMNS]
    return ClassicalIVResult(
        table=table,
        results=results,
        cov_type=main_cov,
        nobs=frame.nobs,
        n_dropped=frame.n_dropped,
        frame=frame,
    )


def instrumented_interactions(
    data: pd.DataFrame,
    endog: str | Sequence[str],
    moderators: str | Sequence[str],
    instruments: str | Sequence[str],
) -> InteractionTerms:
    r"""Add endog x moderator regressors and their instrument x moderator instruments.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data; it is not modified.
    endog : str or list of str
        Endogenous regressors D.
    moderators : str or list of str
        Exogenous moderators M. Pass them also as ``exog`` of the model, so
        that their main effects are controlled for.
    instruments : str or list of str
        Excluded instruments Z.

    Returns
    -------
    InteractionTerms
        The new frame and the extended ``endog`` and ``instruments`` lists.
        Products are named ``"<left>:<right>"``.

    Raises
    ------
    DataError
        A named column is missing, or a product name already exists in the data.

    Notes
    -----
    In :math:`y = \beta D + \delta (D \times M) + \gamma M + u` the product
    :math:`D \times M` is endogenous whenever D is. With M exogenous,
    :math:`E[(Z \times M)u] = 0`, so the products :math:`Z \times M` are
    valid excluded instruments for it.
    """
    endog_list = _as_list(endog)
    moderator_list = _as_list(moderators)
    instrument_list = _as_list(instruments)
    _check_columns(data, endog_list, "endog")
    _check_columns(data, moderator_list, "moderators")
    _check_columns(data, instrument_list, "instruments")

    out = data.copy()
    new_endog: list[str] = []
    new_instruments: list[str] = []
    for moderator in moderator_list:
        for left, target in [(name, new_endog) for name in endog_list] + [
            (name, new_instruments) for name in instrument_list
        ]:
            name = f"{left}:{moderator}"
            if name in out.columns:
                raise DataError(
                    f"Cannot add the interaction column {name!r} because the data already "
                    "has a column of that name. Fix: rename or drop that column."
                )
            out[name] = out[left] * out[moderator]
            target.append(name)
    return InteractionTerms(
        data=out,
        endog=endog_list + new_endog,
        instruments=instrument_list + new_instruments,
        moderators=moderator_list,
    )
