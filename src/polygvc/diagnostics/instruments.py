r"""First-stage instrument strength: classical statistics and the Bayesian counterpart.

Every statistic here is larger when the excluded instruments predict the
endogenous regressors better (higher = stronger instruments). The statistics
are computed on the Frisch-Waugh-Lovell residuals: :math:`\tilde x = M_W x`,
:math:`\tilde Z = M_W Z`, with W the included exogenous regressors and the
constant, n observations, k excluded instruments, m endogenous regressors
and c columns of W. The first stage is :math:`\tilde x = \tilde Z\pi + v`.

Covariance conventions (Stata's small-sample ones, so that numbers can be
compared with ``regress, robust`` / ``ivreg2``):

* robust (HC1): :math:`\hat V = \frac{n}{n-k-c}
  (\tilde Z'\tilde Z)^{-1}\left(\sum_i \tilde z_i\tilde z_i'\hat v_i^2\right)
  (\tilde Z'\tilde Z)^{-1}`;
* clustered (CR1, G clusters): the sum runs over cluster sums of
  :math:`\tilde z_i\hat v_i` and the factor is
  :math:`\frac{G}{G-1}\frac{n-1}{n-k-c}`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from polygvc.diagnostics.classical import PartialledArrays, prepare_iv_frame
from polygvc.diagnostics.weak_iv import (
    ARConfidenceSet,
    ar_grid_from_arrays,
    ar_set_from_arrays,
)
from polygvc.errors import DataError, ModelError, WeakInstrumentWarning

logger = logging.getLogger(__name__)

WEAK_F_THRESHOLD = 10.0
"""Staiger and Stock (1997) rule of thumb: first-stage F below 10 signals weak instruments."""


@dataclass(frozen=True)
class NotApplicable:
    """A diagnostic that does not apply to this specification, with the reason.

    Attributes
    ----------
    statistic : str
        Name of the diagnostic.
    reason : str
        Why it was not computed.
    """

    statistic: str
    reason: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.statistic}: not applicable ({self.reason})"


@dataclass(frozen=True)
class EffectiveF:
    r"""Montiel Olea-Pflueger effective F and its critical value.

    Attributes
    ----------
    value : float
        Effective F; higher = stronger instruments.
    k_eff : float
        Effective degrees of freedom :math:`K_{eff}`.
    critical_value : float
        Simplified-procedure critical value for TSLS at bias threshold ``tau``
        and test level ``alpha``.
    tau, alpha : float
        Worst-case Nagar bias relative to the OLS benchmark, and the test level.
    method : str
        How the critical value was computed.
    cov_type : str
        Covariance used for :math:`\hat W_2`.
    """

    value: float
    k_eff: float
    critical_value: float
    tau: float
    alpha: float
    method: str
    cov_type: str

    @property
    def exceeds_critical_value(self) -> bool:
        """True when the null of weak instruments (bias above tau) is rejected."""
        return self.value > self.critical_value

    def __str__(self) -> str:
        verdict = "rejects" if self.exceeds_critical_value else "does not reject"
        return (
            f"effective F = {self.value:.3f} (K_eff = {self.k_eff:.2f}); {self.method} "
            f"critical value {self.critical_value:.2f} for tau = {self.tau:g} at "
            f"alpha = {self.alpha:g}: {verdict} weak instruments"
        )


@dataclass(frozen=True)
class KleibergenPaap:
    r"""Kleibergen-Paap rk statistics for the rank of the first-stage matrix.

    Attributes
    ----------
    rk_lm : float
        rk LM statistic of underidentification, :math:`\chi^2(k-m+1)` under the null.
    lm_df : int
    lm_pvalue : float
    rk_wald : float
        rk Wald statistic (scores from first-stage residuals).
    wald_f : float
        rk Wald F (Stata ``ivreg2`` scaling, see :func:`kleibergen_paap_rk`).
    cov_type : str
    n_clusters : int or None
    """

    rk_lm: float
    lm_df: int
    lm_pvalue: float
    rk_wald: float
    wald_f: float
    cov_type: str
    n_clusters: int | None


@dataclass
class FirstStageReport:
    """Bundle of first-stage strength diagnostics of one IV specification.

    Attributes
    ----------
    first_stage : pandas.DataFrame
        One row per endogenous regressor (index ``endog``) with ``f_conventional``,
        ``pvalue_conventional``, ``f_robust`` (robust or clustered, per
        ``cov_type``), ``pvalue_robust``, ``df_num``, ``df_denom``,
        ``df_denom_robust``, ``partial_r2``.
    effective_f : EffectiveF or NotApplicable
    kleibergen_paap : KleibergenPaap or NotApplicable
    ar_set : ARConfidenceSet or NotApplicable
        Homoskedastic Anderson-Rubin set in closed form.
    ar_set_robust : ARConfidenceSet or NotApplicable
        Robust or cluster-robust Anderson-Rubin set by grid inversion.
    cov_type : str
        ``"robust"`` or ``"clustered"``.
    nobs, n_dropped : int
    n_clusters : int or None
    threshold : float
        F below which instruments were flagged weak.
    weak_messages : list of str
        One entry per statistic below ``threshold``; empty when none.
    """

    first_stage: pd.DataFrame
    effective_f: EffectiveF | NotApplicable
    kleibergen_paap: KleibergenPaap | NotApplicable
    ar_set: ARConfidenceSet | NotApplicable
    ar_set_robust: ARConfidenceSet | NotApplicable
    cov_type: str
    nobs: int
    n_dropped: int
    n_clusters: int | None
    threshold: float
    weak_messages: list[str] = field(default_factory=list)

    @property
    def weak(self) -> bool:
        """True when any statistic fell below :attr:`threshold`."""
        return bool(self.weak_messages)

    def to_frame(self) -> pd.DataFrame:
        """Return the statistics as one ``value`` column indexed by statistic name.

        F statistics are numbers; the Anderson-Rubin sets and not-applicable
        results are their text. The index uses the names the report's F chart
        reads (``first_stage_f``, ``effective_f``, ``kp_f``).
        """
        rows: dict[str, object] = {}
        for name, row in self.first_stage.iterrows():
            suffix = "" if len(self.first_stage) == 1 else f" ({name})"
            rows[f"first_stage_f{suffix}"] = float(row["f_conventional"])
            rows[f"first_stage_f_{self.cov_type}{suffix}"] = float(row["f_robust"])
            rows[f"partial_r2{suffix}"] = float(row["partial_r2"])
        effective = self.effective_f
        if isinstance(effective, EffectiveF):
            rows["effective_f"] = float(effective.value)
            rows["effective_f_critical_value"] = float(effective.critical_value)
        else:
            rows["effective_f"] = str(effective)
        kp = self.kleibergen_paap
        if isinstance(kp, KleibergenPaap):
            rows["kp_f"] = float(kp.wald_f)
            rows["kp_rk_lm"] = float(kp.rk_lm)
            rows["kp_rk_lm_pvalue"] = float(kp.lm_pvalue)
        else:
            rows["kp_f"] = str(kp)
        rows["anderson_rubin_set_homoskedastic"] = str(self.ar_set)
        rows[f"anderson_rubin_set_{self.cov_type}"] = str(self.ar_set_robust)
        rows["nobs"] = self.nobs
        rows["n_clusters"] = self.n_clusters if self.n_clusters is not None else "n/a"
        frame = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
        frame.index.name = "statistic"
        return frame

    def to_dict(self) -> dict[str, object]:
        """Return :meth:`to_frame` as a plain mapping, plus the weak-instrument messages."""
        out: dict[str, object] = dict(self.to_frame()["value"].items())
        out["weak_messages"] = list(self.weak_messages)
        return out

    def __str__(self) -> str:
        lines = [f"First-stage strength (n = {self.nobs}, cov_type = {self.cov_type})"]
        for name, row in self.first_stage.iterrows():
            lines.append(
                f"  {name}: F = {row['f_conventional']:.3f}, {self.cov_type} F = "
                f"{row['f_robust']:.3f}, partial R2 = {row['partial_r2']:.4f}"
            )
        lines.append(f"  {self.effective_f}")
        kp = self.kleibergen_paap
        if isinstance(kp, KleibergenPaap):
            lines.append(
                f"  Kleibergen-Paap rk LM = {kp.rk_lm:.3f} (df {kp.lm_df}, p = "
                f"{kp.lm_pvalue:.4g}); rk Wald F = {kp.wald_f:.3f}"
            )
        else:
            lines.append(f"  {kp}")
        lines.append(f"  Anderson-Rubin set (homoskedastic): {self.ar_set}")
        lines.append(f"  Anderson-Rubin set ({self.cov_type}): {self.ar_set_robust}")
        return "\n".join(lines)


def _score_sum(scores: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Return the unscaled outer-product sum of scores, within clusters if given."""
    if clusters is None:
        return scores.T @ scores
    sums = np.zeros((int(clusters.max()) + 1, scores.shape[1]))
    np.add.at(sums, clusters, scores)
    return sums.T @ sums


def _robust_scale(arrays: PartialledArrays, cov_type: str) -> float:
    n = arrays.nobs
    if cov_type == "clustered":
        groups = int(np.unique(arrays.clusters).size)
        return groups / (groups - 1) * (n - 1) / arrays.df_resid
    return n / arrays.df_resid


def _check_cov_type(arrays: PartialledArrays, cov_type: str) -> None:
    if cov_type not in ("robust", "clustered"):
        raise ModelError(
            f"Unknown cov_type {cov_type!r} for first-stage statistics. Valid choices: "
            "'robust', 'clustered'."
        )
    if cov_type == "clustered" and arrays.clusters is None:
        raise ModelError("cov_type='clustered' needs a cluster column. Fix: pass cluster=<column>.")


def _robust_coef_cov(
    arrays: PartialledArrays, residuals: np.ndarray, cov_type: str, zz_inv: np.ndarray
) -> np.ndarray:
    clusters = arrays.clusters if cov_type == "clustered" else None
    meat = _score_sum(arrays.z * residuals[:, None], clusters)
    return _robust_scale(arrays, cov_type) * zz_inv @ meat @ zz_inv


def first_stage_f(arrays: PartialledArrays, cov_type: str = "robust") -> pd.DataFrame:
    r"""Compute classical and robust first-stage F statistics per endogenous regressor.

    Parameters
    ----------
    arrays : PartialledArrays
        Data with the exogenous regressors partialled out.
    cov_type : {"robust", "clustered"}, default "robust"

    Returns
    -------
    pandas.DataFrame
        Index ``endog``; columns ``f_conventional``, ``pvalue_conventional``,
        ``f_robust``, ``pvalue_robust``, ``df_num``, ``df_denom``,
        ``df_denom_robust``, ``partial_r2``. Higher F = stronger instruments.

    Notes
    -----
    For endogenous regressor j with first-stage coefficients :math:`\hat\pi_j`
    on the k excluded instruments,

    .. math::

        F_j = \frac{\hat\pi_j'\tilde Z'\tilde Z\hat\pi_j / k}{\hat v_j'\hat v_j/(n-k-c)},
        \qquad
        F_j^{rob} = \hat\pi_j'\hat V_j^{-1}\hat\pi_j / k,

    with :math:`\hat V_j` the HC1 or CR1 covariance (module docstring). The
    conventional F is referred to :math:`F(k, n-k-c)`; the robust one to
    :math:`F(k, n-k-c)`, or :math:`F(k, G-1)` when clustered. Staiger and
    Stock (1997) suggest treating :math:`F < 10` as a sign of weak
    instruments; Stock and Yogo (2005) tabulate exact critical values for the
    homoskedastic case. The partial :math:`R^2` is
    :math:`1 - \hat v_j'\hat v_j / \tilde x_j'\tilde x_j`.
    """
    _check_cov_type(arrays, cov_type)
    z = arrays.z
    k = arrays.n_instruments
    df_denom = arrays.df_resid
    zz = z.T @ z
    zz_inv = np.linalg.inv(zz)
    groups = None if arrays.clusters is None else int(np.unique(arrays.clusters).size)
    df_robust = groups - 1 if cov_type == "clustered" and groups is not None else df_denom
    rows = []
    for j, name in enumerate(arrays.endog):
        x = arrays.x[:, j]
        coef = zz_inv @ (z.T @ x)
        resid = x - z @ coef
        rss = float(resid @ resid)
        f_conv = float(coef @ zz @ coef) / k / (rss / df_denom)
        cov = _robust_coef_cov(arrays, resid, cov_type, zz_inv)
        f_rob = float(coef @ np.linalg.solve(cov, coef)) / k
        rows.append(
            {
                "endog": name,
                "f_conventional": f_conv,
                "pvalue_conventional": float(stats.f.sf(f_conv, k, df_denom)),
                "f_robust": f_rob,
                "pvalue_robust": float(stats.f.sf(f_rob, k, df_robust)),
                "df_num": k,
                "df_denom": df_denom,
                "df_denom_robust": df_robust,
                "partial_r2": 1.0 - rss / float(x @ x),
            }
        )
    return pd.DataFrame(rows).set_index("endog")


def mop_simplified_critical_value(k_eff: float, tau: float = 0.10, alpha: float = 0.05) -> float:
    r"""Return the Montiel Olea-Pflueger simplified critical value for TSLS.

    Parameters
    ----------
    k_eff : float
        Effective degrees of freedom (positive).
    tau : float, default 0.10
        Tolerated worst-case Nagar bias as a fraction of the OLS benchmark bias.
    alpha : float, default 0.05
        Test level.

    Returns
    -------
    float
        :math:`c = \chi^{2}_{K_{eff}}(x K_{eff})^{-1}(1-\alpha) / K_{eff}` with
        :math:`x = 1/\tau`: the upper-:math:`\alpha` quantile of a noncentral
        chi-square with :math:`K_{eff}` degrees of freedom and noncentrality
        :math:`K_{eff}/\tau`, divided by :math:`K_{eff}`.

    Notes
    -----
    Montiel Olea and Pflueger (2013), simplified (conservative) procedure: the
    TSLS Nagar bias bound :math:`B_e \le 1` replaces its data-dependent value,
    so :math:`x = B_e/\tau = 1/\tau`. For :math:`K_{eff} = 1`, tau = 0.10 and
    alpha = 0.05 this gives the widely quoted 23.1. The generalized procedure,
    which computes :math:`B_e` from the joint covariance of the reduced form
    and first stage, gives smaller critical values and is not implemented.
    """
    x = 1.0 / tau
    return float(stats.ncx2.ppf(1.0 - alpha, k_eff, x * k_eff) / k_eff)


def effective_f(
    arrays: PartialledArrays,
    cov_type: str = "robust",
    tau: float = 0.10,
    alpha: float = 0.05,
) -> EffectiveF | NotApplicable:
    r"""Compute the Montiel Olea-Pflueger (2013) effective first-stage F.

    Parameters
    ----------
    arrays : PartialledArrays
        Data with the exogenous regressors partialled out.
    cov_type : {"robust", "clustered"}, default "robust"
    tau : float, default 0.10
        Worst-case bias threshold for the critical value.
    alpha : float, default 0.05
        Test level for the critical value.

    Returns
    -------
    EffectiveF or NotApplicable
        Not applicable with more than one endogenous regressor, because the
        statistic is defined for one.

    Notes
    -----
    With :math:`\hat W_2 = n\hat V(\hat\pi)` in coordinates where
    :math:`\tilde Z'\tilde Z/n = I_k`,

    .. math::

        F_{eff} = \frac{\hat\pi'\tilde Z'\tilde Z\hat\pi}{\mathrm{tr}(\hat V\tilde Z'\tilde Z)}
        = \frac{\tilde x' P_{\tilde Z}\tilde x}{n\,\mathrm{tr}(\hat W_2)},

    which is invariant to linear recombination of the instruments. It equals
    the robust first-stage F when k = 1 and the conventional F under
    homoskedasticity. The effective degrees of freedom are

    .. math::

        K_{eff} = \frac{\mathrm{tr}(\hat W_2)^2 (1 + 2x)}
        {\mathrm{tr}(\hat W_2'\hat W_2) + 2x\,\mathrm{tr}(\hat W_2)\lambda_{max}(\hat W_2)},
        \quad x = 1/\tau,

    and :func:`mop_simplified_critical_value` gives the critical value.
    :math:`\hat V` uses the HC1 or CR1 scaling of the module docstring, so the
    value equals Stata ``weakivtest`` only up to that small-sample factor.
    """
    name = "effective F (Montiel Olea-Pflueger 2013)"
    if arrays.x.shape[1] != 1:
        return NotApplicable(
            name,
            f"defined for one endogenous regressor; this specification has "
            f"{arrays.x.shape[1]} ({', '.join(arrays.endog)}). Use the Kleibergen-Paap rk "
            "Wald F instead.",
        )
    _check_cov_type(arrays, cov_type)
    z = arrays.z
    x = arrays.x[:, 0]
    zz = z.T @ z
    zz_inv = np.linalg.inv(zz)
    coef = zz_inv @ (z.T @ x)
    resid = x - z @ coef
    cov = _robust_coef_cov(arrays, resid, cov_type, zz_inv)
    lower = np.linalg.cholesky(zz)
    w2 = lower.T @ cov @ lower
    w2 = 0.5 * (w2 + w2.T)
    trace = float(np.trace(w2))
    value = float(coef @ zz @ coef) / trace
    # NOTE: K_eff follows the simplified-procedure formula of Montiel Olea and
    # Pflueger (2013) as stated in the docstring; it was checked only in its limits
    # (K_eff = k under homoskedasticity, 1 for one instrument), not against weakivtest.
    x_bias = 1.0 / tau
    max_eig = float(np.linalg.eigvalsh(w2)[-1])
    k_eff = trace**2 * (1 + 2 * x_bias) / (float(np.sum(w2 * w2)) + 2 * x_bias * trace * max_eig)
    return EffectiveF(
        value=value,
        k_eff=k_eff,
        critical_value=mop_simplified_critical_value(k_eff, tau, alpha),
        tau=tau,
        alpha=alpha,
        method="Montiel Olea-Pflueger simplified (conservative) TSLS",
        cov_type=cov_type,
    )


def _upper_cholesky_inverse(matrix: np.ndarray) -> np.ndarray:
    """Return inv(R) for the upper Cholesky factor R with R'R = matrix."""
    upper = np.linalg.cholesky(matrix).T
    return np.linalg.inv(upper)


def kleibergen_paap_rk(
    arrays: PartialledArrays, cov_type: str = "robust"
) -> KleibergenPaap | NotApplicable:
    r"""Compute the Kleibergen-Paap (2006) rk LM and Wald statistics.

    Parameters
    ----------
    arrays : PartialledArrays
        Data with the exogenous regressors partialled out.
    cov_type : {"robust", "clustered"}, default "robust"

    Returns
    -------
    KleibergenPaap or NotApplicable
        Not applicable when the partialled instruments or regressors are
        collinear or there are too few clusters.

    Notes
    -----
    Let :math:`Q_{zz} = \tilde Z'\tilde Z/n = R_z'R_z`, :math:`Q_{xx} = R_x'R_x`
    (upper Cholesky factors) and :math:`\hat\Theta = R_z^{-\prime}Q_{zx}R_x^{-1}`,
    whose singular values are the partial canonical correlations. With the
    SVD :math:`\hat\Theta = USV'`, let :math:`A_\perp` hold the last
    :math:`k-m+1` left singular vectors and :math:`B_\perp` the last right
    singular vector. With :math:`\lambda = A_\perp'\hat\Theta B_\perp` the statistic for
    :math:`H_0: \mathrm{rank}(\Pi) = m-1` is

    .. math::

        rk = n\,\lambda'\left[(B_\perp\otimes A_\perp)'\hat V_\Theta
        (B_\perp\otimes A_\perp)\right]^{-1}\lambda \sim \chi^2(k-m+1),

    :math:`\hat V_\Theta = (R_x^{-\prime}\otimes R_z^{-\prime})\hat S
    (R_x^{-1}\otimes R_z^{-1})`, where :math:`\hat S` is the (cluster-)robust
    covariance of :math:`n^{-1/2}\sum_i u_i\otimes\tilde z_i`. The LM form
    uses :math:`u_i = \tilde x_i` and the Wald form the first-stage residuals
    :math:`\hat v_i`, as in Kleibergen and Schaffer's ``ranktest``. The
    Wald F follows Stata ``ivreg2``:

    .. math::

        F_{rk} = \frac{rk_{W}}{k}\frac{n-k-c}{n}\ \text{(robust)},\qquad
        F_{rk} = \frac{rk_{W}}{k}\frac{(n-k-c)(G-1)}{(n-1)G}\ \text{(clustered)}.

    With m = 1 the rk Wald statistic is the HC0/CR0 Wald test of
    :math:`\pi = 0`, so :math:`F_{rk}` equals the HC1/CR1 robust first-stage
    F of :func:`first_stage_f` exactly.
    """
    name = "Kleibergen-Paap rk"
    _check_cov_type(arrays, cov_type)
    n, k = arrays.z.shape
    m = arrays.x.shape[1]
    clusters = arrays.clusters if cov_type == "clustered" else None
    n_clusters = None if clusters is None else int(np.unique(clusters).size)
    if n_clusters is not None and n_clusters < k - m + 2:
        return NotApplicable(
            name,
            f"{n_clusters} clusters is fewer than k - m + 2 = {k - m + 2} needed for a "
            "nonsingular score covariance",
        )
    z, x = arrays.z, arrays.x
    if np.linalg.matrix_rank(z) < k or np.linalg.matrix_rank(x) < m:
        return NotApplicable(
            name, "instruments or endogenous regressors are collinear after partialling out W"
        )
    qzz, qxx, qzx = z.T @ z / n, x.T @ x / n, z.T @ x / n
    irz = _upper_cholesky_inverse(qzz)
    irx = _upper_cholesky_inverse(qxx)
    theta = irz.T @ qzx @ irx
    left, _, right_t = np.linalg.svd(theta, full_matrices=True)
    a_perp = left[:, m - 1 :]
    b_perp = right_t.T[:, m - 1 :]
    lam = (a_perp.T @ theta @ b_perp).ravel(order="F")
    select = np.kron(b_perp.T, a_perp.T)
    transform = np.kron(irx.T, irz.T)
    pi_hat = np.linalg.solve(qzz, qzx)

    def rk_statistic(series: np.ndarray) -> float:
        scores = np.column_stack([series[:, [j]] * z for j in range(m)])
        s_hat = _score_sum(scores, clusters) / n
        v_lam = select @ transform @ s_hat @ transform.T @ select.T
        v_lam = 0.5 * (v_lam + v_lam.T)
        return float(n * lam @ np.linalg.solve(v_lam, lam))

    rk_lm = rk_statistic(x)
    rk_wald = rk_statistic(x - z @ pi_hat)
    df_resid = arrays.df_resid
    if n_clusters is not None:
        scale = df_resid * (n_clusters - 1) / (n_clusters * (n - 1))
    else:
        scale = df_resid / n
    lm_df = k - m + 1
    return KleibergenPaap(
        rk_lm=rk_lm,
        lm_df=lm_df,
        lm_pvalue=float(stats.chi2.sf(rk_lm, lm_df)),
        rk_wald=rk_wald,
        wald_f=rk_wald * scale / k,
        cov_type=cov_type,
        n_clusters=n_clusters,
    )


def _weak_messages(
    table: pd.DataFrame,
    eff: EffectiveF | NotApplicable,
    cov_type: str,
    threshold: float,
) -> list[str]:
    messages = []
    for name, row in table.iterrows():
        if row["f_conventional"] < threshold:
            messages.append(
                f"first-stage F (conventional) for {name!r} = {row['f_conventional']:.3f}"
            )
        if row["f_robust"] < threshold:
            messages.append(f"first-stage F ({cov_type}) for {name!r} = {row['f_robust']:.3f}")
    if isinstance(eff, EffectiveF) and eff.value < threshold:
        messages.append(
            f"effective F (Montiel Olea-Pflueger) = {eff.value:.3f}, against a simplified "
            f"critical value of {eff.critical_value:.2f} for {eff.tau:.0%} worst-case TSLS bias"
        )
    return messages


def first_stage_strength(
    data: pd.DataFrame,
    dependent: str,
    endog: str | Sequence[str],
    exog: str | Sequence[str] | None,
    instruments: str | Sequence[str],
    cluster: str | None = None,
    add_constant: bool = True,
    *,
    threshold: float = WEAK_F_THRESHOLD,
    level: float = 0.95,
    tau: float = 0.10,
    alpha: float = 0.05,
    ar_grid: np.ndarray | None = None,
) -> FirstStageReport:
    """Compute first-stage strength diagnostics and warn when instruments are weak.

    Parameters
    ----------
    data : pandas.DataFrame
        Analysis data.
    dependent : str
        Outcome column (used by the Anderson-Rubin sets).
    endog, exog, instruments : str or list of str
        Variable roles, as in :func:`polygvc.diagnostics.classical.classical_iv`.
    cluster : str, optional
        Cluster column; the robust statistics become cluster-robust.
    add_constant : bool, default True
    threshold : float, default 10
        A conventional, robust or effective F below this issues a
        :class:`~polygvc.errors.WeakInstrumentWarning` (Staiger and Stock, 1997).
    level : float, default 0.95
        Confidence level of the Anderson-Rubin sets.
    tau, alpha : float
        Bias threshold and level of the effective-F critical value.
    ar_grid : numpy.ndarray, optional
        Grid for the robust Anderson-Rubin inversion; see
        :func:`polygvc.diagnostics.weak_iv.anderson_rubin_grid`.

    Returns
    -------
    FirstStageReport

    Raises
    ------
    DataError
        Missing or non-numeric columns, or no complete rows.
    ModelError
        Underidentified specification or a column in two roles.

    Warns
    -----
    WeakInstrumentWarning
        Naming each statistic below ``threshold`` with its value.

    Notes
    -----
    Statistics: :func:`first_stage_f` (Staiger and Stock 1997; Stock and Yogo
    2005), :func:`effective_f` (Montiel Olea and Pflueger 2013),
    :func:`kleibergen_paap_rk` (Kleibergen and Paap 2006) and the Anderson
    and Rubin (1949) sets of :mod:`polygvc.diagnostics.weak_iv`. The
    effective F and AR sets apply to one endogenous regressor only; with
    more they are :class:`NotApplicable`.
    """
    frame = prepare_iv_frame(data, dependent, endog, exog, instruments, cluster, add_constant)
    arrays = frame.partialled()
    cov_type = "clustered" if cluster is not None else "robust"
    table = first_stage_f(arrays, cov_type)
    eff = effective_f(arrays, cov_type, tau, alpha)
    kp = kleibergen_paap_rk(arrays, cov_type)
    if arrays.x.shape[1] == 1:
        ar_set: ARConfidenceSet | NotApplicable = ar_set_from_arrays(arrays, level)
        ar_robust: ARConfidenceSet | NotApplicable = ar_grid_from_arrays(
            arrays, level, cov_type, ar_grid
        )
    else:
        reason = (
            f"implemented for one endogenous regressor; this specification has "
            f"{arrays.x.shape[1]} ({', '.join(arrays.endog)})"
        )
        ar_set = NotApplicable("Anderson-Rubin set", reason)
        ar_robust = NotApplicable("Anderson-Rubin set (robust)", reason)

    messages = _weak_messages(table, eff, cov_type, threshold)
    report = FirstStageReport(
        first_stage=table,
        effective_f=eff,
        kleibergen_paap=kp,
        ar_set=ar_set,
        ar_set_robust=ar_robust,
        cov_type=cov_type,
        nobs=frame.nobs,
        n_dropped=frame.n_dropped,
        n_clusters=frame.n_clusters,
        threshold=threshold,
        weak_messages=messages,
    )
    if messages:
        if isinstance(ar_robust, ARConfidenceSet):
            remedy = (
                f"report the weak-instrument robust Anderson-Rubin {level:.0%} set "
                f"{ar_robust} ({cov_type}) instead of the 2SLS Wald interval"
            )
        else:
            remedy = "report a weak-instrument robust confidence set instead of 2SLS Wald intervals"
        warnings.warn(
            f"Weak instruments {list(frame.instruments)}: {'; '.join(messages)} "
            f"(below {threshold:g}). 2SLS estimates are biased towards OLS and their "
            f"Wald intervals under-cover. Fix: add or choose stronger instruments, and "
            f"{remedy}.",
            WeakInstrumentWarning,
            stacklevel=2,
        )
    return report


def posterior_concentration(
    first_stage_coefs: np.ndarray | xr.DataArray,
    Z: np.ndarray | pd.DataFrame | xr.DataArray,  # noqa: N803 (matrix notation)
    sigma_v: float | np.ndarray | xr.DataArray,
    *,
    exog: np.ndarray | pd.DataFrame | None = None,
) -> np.ndarray | xr.DataArray:
    r"""Compute the concentration parameter per posterior draw.

    Parameters
    ----------
    first_stage_coefs : numpy.ndarray or xarray.DataArray
        Coefficients :math:`\pi` of the excluded instruments in the first
        stage of one endogenous regressor. An array has the instruments on
        its last axis, shape ``(..., k)``; a DataArray has an ``instrument``
        dim (optional when k = 1) and any others, such as ``chain`` and ``draw``.
    Z : numpy.ndarray, pandas.DataFrame or xarray.DataArray
        Excluded instruments, shape ``(n, k)`` (a DataArray with dims ``obs``
        and ``instrument``), on the scale that ``first_stage_coefs`` uses.
    sigma_v : float, numpy.ndarray or xarray.DataArray
        First-stage error standard deviation per draw, broadcastable against
        the coefficients without their instrument axis.
    exog : numpy.ndarray or pandas.DataFrame, optional
        Included exogenous regressors (n rows). When given, Z is replaced by
        :math:`M_W Z` first; without it Z should already be residualised, or
        :math:`\mu^2` overstates strength.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        :math:`\mu^2` per draw, named ``"concentration"`` for DataArrays;
        higher = stronger instruments.

    Raises
    ------
    DataError
        When the instrument counts of ``Z`` and the coefficients differ.

    Notes
    -----
    :math:`\mu^2 = \pi'\tilde Z'\tilde Z\pi / \sigma_v^2` (Staiger and Stock
    1997; Stock and Yogo 2005). The classical first-stage F estimates
    :math:`1 + \mu^2/k`, so :math:`\mu^2/k` below about 9 matches the F < 10
    rule of thumb. Computed per draw, it gives the posterior distribution of
    instrument strength. The function is pure and does not modify its inputs.
    """
    if isinstance(Z, xr.DataArray):
        z_values = Z.transpose(..., "instrument").values if "instrument" in Z.dims else Z.values
    else:
        z_values = np.asarray(Z, dtype=float)
    if z_values.ndim == 1:
        z_values = z_values[:, None]
    if exog is not None:
        w = np.asarray(exog, dtype=float)
        w = w[:, None] if w.ndim == 1 else w
        coef, *_ = np.linalg.lstsq(w, z_values, rcond=None)
        z_values = z_values - w @ coef
    gram = z_values.T @ z_values
    k = gram.shape[0]

    if isinstance(first_stage_coefs, xr.DataArray):
        coefs = first_stage_coefs
        if "instrument" not in coefs.dims:
            if k != 1:
                raise DataError(
                    f"first_stage_coefs has no 'instrument' dim but Z has {k} instruments. "
                    "Fix: give the coefficients an 'instrument' dim of that length."
                )
            coefs = coefs.expand_dims(instrument=1, axis=-1)
        _check_k(coefs.sizes["instrument"], k)
        quad = xr.apply_ufunc(
            lambda p: np.einsum("...i,ij,...j->...", p, gram, p),
            coefs,
            input_core_dims=[["instrument"]],
        )
        sigma = sigma_v if isinstance(sigma_v, xr.DataArray) else np.asarray(sigma_v, dtype=float)
        return (quad / sigma**2).rename("concentration")

    coefs_array = np.asarray(first_stage_coefs, dtype=float)
    if coefs_array.ndim == 0:
        coefs_array = coefs_array[None]
    _check_k(coefs_array.shape[-1], k)
    quad = np.einsum("...i,ij,...j->...", coefs_array, gram, coefs_array)
    return quad / np.asarray(sigma_v, dtype=float) ** 2


def _check_k(k_coefs: int, k_z: int) -> None:
    if k_coefs != k_z:
        raise DataError(
            f"first_stage_coefs has {k_coefs} instrument coefficient(s) but Z has {k_z} "
            "column(s). Fix: pass Z with the same instruments, in the same order."
        )


__all__ = [
    "WEAK_F_THRESHOLD",
    "EffectiveF",
    "FirstStageReport",
    "KleibergenPaap",
    "NotApplicable",
    "effective_f",
    "first_stage_f",
    "first_stage_strength",
    "kleibergen_paap_rk",
    "mop_simplified_critical_value",
    "posterior_concentration",
]
