r"""Per-province Gram matrices: sufficient statistics of the Gaussian joint IV likelihood.

In the joint IV model of :mod:`polygvc.models.hierarchical_iv` the residuals
of row :math:`i` in province :math:`p` are linear in the row's data given the
parameters :math:`\theta`:

.. math::

    r_i = (u_i, e_i)' = A_p(\theta)\, d_i, \qquad
    d_i = (x_i, y_i, 1, Z_i, W_i, \mathbb 1[t_i = t_1], \ldots, \mathbb 1[t_i = t_T])'

with the two coefficient rows

.. math::

    a_u &= (1, 0, -\pi_0, -\pi', -\delta', -\tau^{x\prime}) \\
    a_{e,p} &= (-\beta_p, 1, -\alpha_p, 0', -\gamma', -\tau^{y\prime}).

The residual cross-product matrix is then
:math:`S = \sum_i r_i r_i' = \sum_p A_p G_p A_p'` with the Gram matrix
:math:`G_p = \sum_{i \in p} d_i d_i'`, and the log-likelihood

.. math::

    \ell(\theta) = -n \log 2\pi - \tfrac n2 \log|\Sigma|
        - \tfrac12 \operatorname{tr}(\Sigma^{-1} S)

depends on the data only through :math:`G_1, \ldots, G_P`, the sufficient
statistics of the multivariate normal (Anderson 2003, *An Introduction to
Multivariate Statistical Analysis*, ch. 3). One pass over the rows computes
them. Afterwards a gradient costs :math:`O(P D^2)` whatever the number of rows.

Two paths build the Gram matrices:

* :func:`gram_from_model_data`: NumPy, for :class:`~polygvc.models.data.ModelData`
  in memory (already standardised).
* :func:`gram_from_duckdb`: one ``GROUP BY province, year`` SQL query over a
  Parquet or CSV file, so the rows never enter Python. The raw Gram matrices
  are standardised afterwards by the exact affine map of
  :func:`standardise_gram`.

The year block of :math:`d_i` is a one-hot vector over all years (no
reference year), which matches the zero-sum year effects of the model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polygvc.errors import DataError, DataNotFoundError, ModelError
from polygvc.models.data import ModelData
from polygvc.models.spec import HierarchicalIVSpec

logger = logging.getLogger(__name__)

__all__ = [
    "GramLayout",
    "SufficientStats",
    "coefficient_rows",
    "gram_from_duckdb",
    "gram_from_model_data",
    "loglik_from_gram",
    "loglik_per_observation",
    "residuals_per_observation",
    "standardise_gram",
]

# A squared mean/sd ratio above this loses more than about 1e-9 relative
# precision when a variance is taken from raw sums of squares, so
# gram_from_duckdb then repeats the pass on data shifted by the first-pass means.
_CANCELLATION_LIMIT = 1e6


@dataclass(frozen=True)
class GramLayout:
    """Column order of the data vector :math:`d_i` whose Gram matrices are kept.

    Attributes
    ----------
    instruments, covariates : tuple of str
        Names of the instrument and covariate columns, in model order.
    years : tuple of int
        Years with a one-hot column (empty when the model has no year effects).
    """

    instruments: tuple[str, ...]
    covariates: tuple[str, ...]
    years: tuple[int, ...] = ()

    X: int = 0
    Y: int = 1
    CONST: int = 2

    @property
    def n_columns(self) -> int:
        """Length D of the data vector."""
        return 3 + len(self.instruments) + len(self.covariates) + len(self.years)

    @property
    def instrument_slice(self) -> slice:
        """Positions of the instruments."""
        return slice(3, 3 + len(self.instruments))

    @property
    def covariate_slice(self) -> slice:
        """Positions of the covariates."""
        start = self.instrument_slice.stop
        return slice(start, start + len(self.covariates))

    @property
    def year_slice(self) -> slice:
        """Positions of the year one-hot columns."""
        start = self.covariate_slice.stop
        return slice(start, start + len(self.years))

    @property
    def labels(self) -> list[str]:
        """Readable label of every column (``x``, ``y``, ``1``, then names)."""
        return [
            "x",
            "y",
            "1",
            *(f"instrument:{name}" for name in self.instruments),
            *(f"covariate:{name}" for name in self.covariates),
            *(f"year:{year}" for year in self.years),
        ]


@dataclass
class SufficientStats:
    r"""Per-province Gram matrices of the standardised data and what labels them.

    Attributes
    ----------
    gram : ndarray, shape (n_province, D, D)
        :math:`G_p = \sum_{i \in p} d_i d_i'` on the standardised scale, in
        the column order of ``layout``.
    layout : GramLayout
        Column order of :math:`d_i`.
    n_obs : int
        Number of rows summed (the sum of ``gram[:, 2, 2]``).
    group_idx_of_unit : ndarray of int, shape (n_province,)
        Region of each province, as a position in ``coords["region"]``.
    coords : dict
        Coordinates of ``province``, ``region``, ``year``, ``instrument``,
        ``covariate``, ``equation`` (no ``obs``: rows are not kept).
    scaling : dict
        ``{column: {"mean": m, "sd": s}}`` of the original columns (sd with
        ``ddof=1``), as in :class:`~polygvc.models.data.ModelData`.
    data_pass_seconds : float
        Wall time of the pass over the rows.
    source : str
        Where the rows came from, for messages.
    """

    gram: np.ndarray
    layout: GramLayout
    n_obs: int
    group_idx_of_unit: np.ndarray
    coords: dict[str, list]
    scaling: dict[str, dict[str, float]]
    data_pass_seconds: float = 0.0
    source: str = "the model data"
    rows_per_province: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n_province(self) -> int:
        """Number of provinces (groups of the Gram matrices)."""
        return int(self.gram.shape[0])


def _layout_for(spec: HierarchicalIVSpec, years: list[int]) -> GramLayout:
    use_years = spec.year_effects and len(years) > 1
    return GramLayout(
        instruments=tuple(spec.instruments),
        covariates=tuple(spec.covariates),
        years=tuple(int(t) for t in years) if use_years else (),
    )


def gram_from_model_data(
    data: ModelData, spec: HierarchicalIVSpec, chunk_rows: int = 200_000
) -> SufficientStats:
    """Compute the per-province Gram matrices of in-memory model data.

    Parameters
    ----------
    data : ModelData
        Standardised model data (:func:`polygvc.models.data.prepare_model_data`).
    spec : HierarchicalIVSpec
        Decides whether year one-hot columns are kept (``spec.year_effects``).
    chunk_rows : int
        Rows of the design built at a time, which bounds the extra memory at
        about ``chunk_rows * D * 8`` bytes.

    Returns
    -------
    SufficientStats

    Notes
    -----
    Rows are grouped by ``data.unit_idx`` with a stable sort, then each chunk
    of a province adds ``d' d`` to its Gram matrix (one BLAS call per chunk).
    """
    start = time.perf_counter()
    layout = _layout_for(spec, list(data.coords["year"]))
    n_unit = len(data.coords["province"])
    width = layout.n_columns
    gram = np.zeros((n_unit, width, width))
    order = np.argsort(data.unit_idx, kind="stable")
    bounds = np.searchsorted(data.unit_idx[order], np.arange(n_unit + 1))
    for unit in range(n_unit):
        rows_of_unit = order[bounds[unit] : bounds[unit + 1]]
        for lo in range(0, rows_of_unit.size, chunk_rows):
            rows = rows_of_unit[lo : lo + chunk_rows]
            design = _design_rows(data, layout, rows)
            gram[unit] += design.T @ design
    counts = np.diff(bounds)
    return SufficientStats(
        gram=gram,
        layout=layout,
        n_obs=data.n_obs,
        group_idx_of_unit=np.asarray(data.group_idx_of_unit, dtype=int),
        coords={k: list(v) for k, v in data.coords.items() if k != "obs"},
        scaling=dict(data.scaling),
        data_pass_seconds=time.perf_counter() - start,
        source="the model data",
        rows_per_province=counts,
    )


def _design_rows(data: ModelData, layout: GramLayout, rows: np.ndarray) -> np.ndarray:
    parts = [
        data.x[rows, None],
        data.y[rows, None],
        np.ones((rows.size, 1)),
        data.Z[rows],
        data.W[rows],
    ]
    if layout.years:
        parts.append(np.eye(len(layout.years))[data.time_idx[rows]])
    return np.concatenate(parts, axis=1)


def standardise_gram(
    raw: np.ndarray, means: np.ndarray, sds: np.ndarray, n_scaled: int
) -> np.ndarray:
    """Map Gram matrices of raw (or shifted) data to those of standardised data.

    Parameters
    ----------
    raw : ndarray, shape (..., D, D)
        Gram matrices whose columns ``0, 3, 4, ...`` (see below) hold data
        ``v`` and column 2 the constant.
    means, sds : ndarray, shape (n_scaled,)
        Location and scale of the first ``n_scaled`` scaled columns, given in
        the coordinates of ``raw`` (subtract any shift already applied).
    n_scaled : int
        Number of scaled columns: ``x``, ``y`` then the instruments and
        covariates, at positions ``0, 1, 3, 4, ..., 2 + n_scaled - 1``.

    Returns
    -------
    ndarray, same shape as ``raw``
        ``T raw T'`` where ``T d_raw = d_std`` row by row.

    Notes
    -----
    For a scaled column ``j`` the standardised value is ``(v_j - m_j) / s_j``,
    so row ``j`` of ``T`` has ``1/s_j`` at ``j`` and ``-m_j/s_j`` at the
    constant column. Year one-hot columns and the constant map to themselves.
    """
    width = raw.shape[-1]
    transform = np.eye(width)
    positions = [0, 1, *range(3, 3 + n_scaled - 2)]
    for position, mean, sd in zip(positions, means, sds, strict=True):
        transform[position, position] = 1.0 / sd
        transform[position, 2] = -mean / sd
    return transform @ raw @ transform.T


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_expression(path: Path) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith(".parquet") or path.is_dir():
        return f"read_parquet({literal})"
    if suffix.endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv_auto({literal})"
    raise DataError(
        f"Cannot read {path}: the suffix {suffix or '(none)'} is not a Parquet (.parquet) or "
        "CSV (.csv, .csv.gz, .tsv) file. Fix: convert the file or rename it with its format."
    )


def gram_from_duckdb(
    source: str | Path,
    spec: HierarchicalIVSpec,
    *,
    connection: Any | None = None,
) -> SufficientStats:
    """Compute the standardised per-province Gram matrices of a file with DuckDB.

    Parameters
    ----------
    source : str or Path
        A Parquet file (or folder of Parquet files, or a glob) or a CSV file
        with the columns named in ``spec`` and ``spec.unit``, ``spec.group``,
        ``spec.time``. Rows may repeat a (unit, time) pair (for example firm or
        city rows within a province-year).
    spec : HierarchicalIVSpec
        Variable roles and ``year_effects``.
    connection : duckdb.DuckDBPyConnection, optional
        Connection to use; an in-memory one by default.

    Returns
    -------
    SufficientStats

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    DataError
        A column is missing, the format is unknown, or a province lies in
        several regions.
    ModelError
        Fewer than two provinces, a constant column, or collinear first-stage
        regressors.

    Notes
    -----
    One ``GROUP BY unit, group, time`` query sums the count, the first moments
    and every product of ``(x, y, Z, W)``. Each province's Gram matrix follows
    from these cells because the year one-hot columns pick out the sums of each year. Rows
    with a NULL in any model column are skipped and counted in the log.
    Means and sds (``ddof=1``) come from the pooled sums, and
    :func:`standardise_gram` rescales exactly. When a column's squared
    mean/sd ratio exceeds 1e6 the query is repeated on data shifted by the
    first-pass means, so the variances do not lose precision to cancellation.
    """
    import duckdb

    start = time.perf_counter()
    path = Path(source)
    if "*" not in str(path) and not path.exists():
        raise DataNotFoundError(
            f"Model data file {path} was not found. Fix: check the path in the config or "
            "write the panel to that file first."
        )
    read = _read_expression(path)
    con = connection if connection is not None else duckdb.connect()
    available = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {read}").fetchall()]
    needed = [*spec.columns, spec.unit, spec.group, spec.time]
    for column in needed:
        if column not in available:
            raise DataError(
                f"Column {column!r} named in the model spec is missing from {path}. Available "
                f"columns: {', '.join(available)}. Fix: correct the name in the [model] section "
                "or add the column to the file."
            )

    values = [spec.endog, spec.dependent, *spec.instruments, *spec.covariates]
    shifts = np.zeros(len(values))
    cells = _grouped_sums(con, read, spec, values, shifts)
    n_total = int(cells["count"].sum())
    means, sds = _moments(cells, values, shifts, n_total, path)
    ratio = (means / sds) ** 2
    if np.any(ratio > _CANCELLATION_LIMIT):
        logger.info(
            "Repeating the Gram pass over %s shifted by the column means (mean/sd up to %.3g)",
            path,
            float(np.sqrt(ratio.max())),
        )
        shifts = means.copy()
        cells = _grouped_sums(con, read, spec, values, shifts)
        means, sds = _moments(cells, values, shifts, n_total, path)

    units = list(dict.fromkeys(cells["unit"]))
    if len(units) < 2:
        raise ModelError(
            f"Only {len(units)} {spec.unit} has complete data in {path}; partial pooling needs "
            "at least two. Fix: check the missing values of the model columns."
        )
    groups = sorted(set(cells["group"]))
    group_of_unit = {}
    for unit, group in zip(cells["unit"], cells["group"], strict=True):
        if group_of_unit.setdefault(unit, group) != group:
            raise DataError(
                f"{spec.unit} {unit!r} belongs to several {spec.group} values "
                f"({group_of_unit[unit]!r}, {group!r}) in {path}. "
                f"Fix: give each {spec.unit} one {spec.group}."
            )
    years = sorted({int(t) for t in cells["time"]})
    layout = _layout_for(spec, years)
    gram_raw = _assemble_gram(cells, layout, units, years, len(values))
    # Means relative to the shift: the raw Gram is in shifted coordinates.
    gram = standardise_gram(gram_raw, means - shifts, sds, len(values))
    _check_first_stage_rank(gram.sum(axis=0), layout, path)

    scaling = {
        name: {"mean": float(m), "sd": float(s)}
        for name, m, s in zip(values, means, sds, strict=True)
    }
    coords = {
        "province": [str(u) for u in units],
        "region": [str(g) for g in groups],
        "year": years,
        "instrument": list(spec.instruments),
        "covariate": list(spec.covariates),
        "equation": ["first_stage", "outcome"],
    }
    elapsed = time.perf_counter() - start
    logger.info("Gram matrices of %d rows from %s in %.2f s", n_total, path, elapsed)
    return SufficientStats(
        gram=gram,
        layout=layout,
        n_obs=n_total,
        group_idx_of_unit=np.array([groups.index(group_of_unit[u]) for u in units], dtype=int),
        coords=coords,
        scaling=scaling,
        data_pass_seconds=elapsed,
        source=str(path),
        rows_per_province=np.rint(gram[:, 2, 2]).astype(int),
    )


def _grouped_sums(con, read, spec, values, shifts) -> dict[str, np.ndarray]:
    shifted = [
        f"({_quote_identifier(name)} - {float(shift)!r})"
        for name, shift in zip(values, shifts, strict=True)
    ]
    unit, group, time_col = (_quote_identifier(c) for c in (spec.unit, spec.group, spec.time))
    terms = ["COUNT(*) AS n"]
    terms += [f"SUM({expr}) AS s{j}" for j, expr in enumerate(shifted)]
    for j, left in enumerate(shifted):
        for k in range(j, len(shifted)):
            terms.append(f"SUM({left} * {shifted[k]}) AS p{j}_{k}")
    not_null = " AND ".join(
        f"{_quote_identifier(c)} IS NOT NULL"
        for c in [*values, spec.unit, spec.group, spec.time]
    )
    query = (
        f"SELECT CAST({unit} AS VARCHAR) AS unit, CAST({group} AS VARCHAR) AS grp, "
        f"CAST({time_col} AS BIGINT) AS t, {', '.join(terms)} FROM {read} WHERE {not_null} "
        "GROUP BY ALL ORDER BY grp, unit, t"
    )
    table = con.execute(query).fetchnumpy()
    skipped = con.execute(f"SELECT COUNT(*) FROM {read} WHERE NOT ({not_null})").fetchone()[0]
    if skipped:
        logger.info("%d rows with a missing model column were not used", skipped)
    n_values = len(values)
    products = np.zeros((len(table["n"]), n_values, n_values))
    for j in range(n_values):
        for k in range(j, n_values):
            products[:, j, k] = products[:, k, j] = np.asarray(table[f"p{j}_{k}"], dtype=float)
    return {
        "unit": np.asarray(table["unit"], dtype=object),
        "group": np.asarray(table["grp"], dtype=object),
        "time": np.asarray(table["t"], dtype=int),
        "count": np.asarray(table["n"], dtype=float),
        "sums": np.column_stack([np.asarray(table[f"s{j}"], dtype=float) for j in range(n_values)]),
        "products": products,
    }


def _moments(cells, values, shifts, n_total, path) -> tuple[np.ndarray, np.ndarray]:
    if n_total < 2:
        raise ModelError(f"{path} has {n_total} complete rows; the model needs many more.")
    sums = cells["sums"].sum(axis=0)
    squares = np.diagonal(cells["products"].sum(axis=0))
    shifted_mean = sums / n_total
    variance = (squares - n_total * shifted_mean**2) / (n_total - 1)
    means = shifted_mean + shifts
    sds = np.sqrt(np.clip(variance, 0.0, None))
    for name, mean, sd in zip(values, means, sds, strict=True):
        if not np.isfinite(sd) or sd <= 1e-12 * max(1.0, abs(mean)):
            raise ModelError(
                f"Column {name!r} is constant ({mean:g}) in the {n_total} rows of {path}, so its "
                "coefficient cannot be estimated. Fix: drop it from the model."
            )
    return means, sds


def _assemble_gram(cells, layout: GramLayout, units, years, n_values) -> np.ndarray:
    width = layout.n_columns
    # Positions of (x, y, Z..., W...) in d, and of the constant.
    value_pos = np.array([0, 1, *range(3, 3 + n_values - 2)])
    gram = np.zeros((len(units), width, width))
    unit_pos = {u: i for i, u in enumerate(units)}
    year_pos = {t: i for i, t in enumerate(years)}
    for row in range(len(cells["count"])):
        p = unit_pos[cells["unit"][row]]
        count, sums = cells["count"][row], cells["sums"][row]
        block = gram[p]
        block[np.ix_(value_pos, value_pos)] += cells["products"][row]
        block[value_pos, 2] += sums
        block[2, value_pos] += sums
        block[2, 2] += count
        if layout.years:
            col = layout.year_slice.start + year_pos[int(cells["time"][row])]
            block[value_pos, col] += sums
            block[col, value_pos] += sums
            block[2, col] += count
            block[col, 2] += count
            block[col, col] += count
    return gram


def _check_first_stage_rank(pooled: np.ndarray, layout: GramLayout, path: Path) -> None:
    # First-stage design: constant, instruments, covariates, years after the first.
    columns = [2, *range(3, layout.covariate_slice.stop)]
    columns += list(range(layout.year_slice.start + 1, layout.year_slice.stop))
    block = pooled[np.ix_(columns, columns)]
    eigen = np.linalg.eigvalsh(block)
    if eigen.min() <= 1e-10 * eigen.max():
        labels = [layout.labels[c] for c in columns]
        raise ModelError(
            f"The first-stage regressors {', '.join(labels)} are collinear in {path} (smallest "
            f"Gram eigenvalue {eigen.min():.3g}, largest {eigen.max():.3g}), so the model is not "
            "identified. Fix: drop one of the collinear instruments or covariates."
        )


def coefficient_rows(params: dict[str, np.ndarray], layout: GramLayout) -> tuple[np.ndarray, ...]:
    """Build the residual coefficient rows :math:`a_u` and :math:`a_{e,p}` (NumPy).

    Parameters
    ----------
    params : dict
        ``fs_intercept`` (scalar), ``fs_instrument`` (K), ``fs_covariate`` (C),
        ``fs_year`` (T), ``intercept_province`` (P), ``beta_province`` (P),
        ``gamma`` (C), ``year_effect`` (T). Keys for absent terms may be missing.
    layout : GramLayout

    Returns
    -------
    a_u : ndarray, shape (D,)
    a_e : ndarray, shape (P, D)
        With ``u_i = a_u d_i`` and ``e_i = a_e[p] d_i``.
    """
    width = layout.n_columns
    n_cov, n_year = len(layout.covariates), len(layout.years)
    a_u = np.zeros(width)
    a_u[layout.X] = 1.0
    a_u[layout.CONST] = -float(params["fs_intercept"])
    a_u[layout.instrument_slice] = -np.asarray(params["fs_instrument"])
    if n_cov:
        a_u[layout.covariate_slice] = -np.asarray(params["fs_covariate"])
    if n_year:
        a_u[layout.year_slice] = -np.asarray(params["fs_year"])
    beta = np.asarray(params["beta_province"])
    a_e = np.zeros((beta.size, width))
    a_e[:, layout.X] = -beta
    a_e[:, layout.Y] = 1.0
    a_e[:, layout.CONST] = -np.asarray(params["intercept_province"])
    if n_cov:
        a_e[:, layout.covariate_slice] = -np.asarray(params["gamma"])
    if n_year:
        a_e[:, layout.year_slice] = -np.asarray(params["year_effect"])
    return a_u, a_e


def _gaussian_loglik(s_uu, s_ue, s_ee, n, sigma, rho):
    det_corr = 1.0 - rho**2
    log_det = 2.0 * np.log(sigma[..., 0]) + 2.0 * np.log(sigma[..., 1]) + np.log(det_corr)
    quad = (
        s_uu / sigma[..., 0] ** 2
        - 2.0 * rho * s_ue / (sigma[..., 0] * sigma[..., 1])
        + s_ee / sigma[..., 1] ** 2
    ) / det_corr
    return -n * np.log(2.0 * np.pi) - 0.5 * n * log_det - 0.5 * quad


def loglik_from_gram(stats: SufficientStats, params: dict[str, np.ndarray]) -> float:
    r"""Evaluate the joint log-likelihood from the Gram matrices (NumPy reference).

    Parameters
    ----------
    stats : SufficientStats
    params : dict
        As in :func:`coefficient_rows`, plus ``sigma`` (2,) and ``rho``.

    Returns
    -------
    float
        The log-likelihood
        :math:`-n\log 2\pi - \tfrac n2 \log|\Sigma| - \tfrac12 \operatorname{tr}(\Sigma^{-1} S)`.
    """
    a_u, a_e = coefficient_rows(params, stats.layout)
    gram = stats.gram
    g_au = gram @ a_u  # (P, D)
    s_uu = float(a_u @ g_au.sum(axis=0))
    s_ue = float(np.sum(g_au * a_e))
    s_ee = float(np.einsum("pd,pde,pe->", a_e, gram, a_e))
    return float(
        _gaussian_loglik(
            s_uu, s_ue, s_ee, stats.n_obs, np.asarray(params["sigma"]), float(params["rho"])
        )
    )


def residuals_per_observation(
    data: ModelData, params: dict[str, Any], year_effects: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the first-stage and outcome residuals of every row.

    Parameters
    ----------
    data : ModelData
    params : dict
        As in :func:`coefficient_rows`; each value may carry leading sample
        dims (for example ``(chain, draw)``) before its own dims.
    year_effects : bool
        Whether ``fs_year`` and ``year_effect`` enter the means.

    Returns
    -------
    u, e : ndarray, shape (..., n_obs)
    """
    fs_instrument = np.asarray(params["fs_instrument"])
    mu_x = np.asarray(params["fs_intercept"])[..., None] + fs_instrument @ data.Z.T
    intercept = np.asarray(params["intercept_province"])[..., data.unit_idx]
    beta = np.asarray(params["beta_province"])[..., data.unit_idx]
    mu_y = intercept + beta * data.x
    if data.W.shape[1]:
        mu_x = mu_x + np.asarray(params["fs_covariate"]) @ data.W.T
        mu_y = mu_y + np.asarray(params["gamma"]) @ data.W.T
    if year_effects:
        mu_x = mu_x + np.asarray(params["fs_year"])[..., data.time_idx]
        mu_y = mu_y + np.asarray(params["year_effect"])[..., data.time_idx]
    return data.x - mu_x, data.y - mu_y


def loglik_per_observation(
    data: ModelData, params: dict[str, Any], year_effects: bool
) -> np.ndarray:
    r"""Evaluate the bivariate normal log-density of every row (NumPy reference).

    Parameters
    ----------
    data : ModelData
    params : dict
        As in :func:`residuals_per_observation`, plus ``sigma`` (..., 2) and
        ``rho`` (...).
    year_effects : bool

    Returns
    -------
    ndarray, shape (..., n_obs)
        :math:`\log \mathcal N((u_i, e_i); 0, \Sigma)`; the sum over rows is
        the joint log-likelihood.
    """
    u, e = residuals_per_observation(data, params, year_effects)
    sigma = np.asarray(params["sigma"])[..., None, :]
    rho = np.asarray(params["rho"])[..., None]
    return _gaussian_loglik(u**2, u * e, e**2, 1.0, sigma, rho)
