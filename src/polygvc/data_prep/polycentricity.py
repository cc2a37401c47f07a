"""Polycentricity indices of a region from the sizes of its units.

Two layers:

* NumPy kernels on a 1-D array of unit sizes (for example the night-time light
  sum of each prefecture city in a province): :func:`rank_size_slope`,
  :func:`primacy`, :func:`hhi_normalised`, :func:`entropy_normalised`,
  :func:`gini`.
* :func:`polycentricity_indices`, which applies every kernel per group of a
  tidy frame and reports the groups where an index is undefined and why.

Direction of each index:

============================  ==========  ==================================
index                         range       higher means
============================  ==========  ==================================
rank-size slope ``b``         (-inf, 0]   more polycentric (closer to 0)
primacy                       [1/n, 1]    more monocentric
normalised HHI                [0, 1]      more monocentric
normalised entropy            [0, 1]      more polycentric
Gini                          [0, 1)      more monocentric (more unequal)
============================  ==========  ==================================

Undefined cases follow one rule, applied by every kernel: a region with fewer
than two units, or with a total size of zero, has no distribution of size
among units, so the index is NaN. The rank-size slope also needs at least
``top_n`` units of positive size, because ``ln 0`` is undefined. Negative,
NaN or infinite sizes are data errors and raise :class:`DataError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

INDEX_COLUMNS: tuple[str, ...] = (
    "poly_rank_size_all",
    "poly_primacy",
    "poly_hhi_norm",
    "poly_entropy_norm",
    "poly_gini",
)


def _as_sizes(sizes: npt.ArrayLike) -> np.ndarray:
    """Return ``sizes`` as a 1-D float array, raising on negative or non-finite values."""
    array = np.asarray(sizes, dtype=float)
    if array.ndim != 1:
        raise DataError(
            f"Unit sizes must be a 1-D array, got shape {array.shape}. Fix: pass one size per unit."
        )
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Unit sizes must be finite and non-negative; position {position} contains "
            f"{float(array[position])!r} ({int(bad.sum())} invalid values in all). Fix: remove or "
            "correct these units before computing polycentricity."
        )
    return array


def _shares_reason(sizes: np.ndarray) -> str | None:
    if sizes.size < 2:
        return f"{sizes.size} unit(s), fewer than the 2 needed for a size distribution"
    if sizes.sum() == 0:
        return "total size is zero, so shares are undefined"
    return None


def _rank_size(sizes: np.ndarray, top_n: int | None) -> tuple[float, str | None]:
    """Return the rank-size slope and the reason it is undefined (None when defined)."""
    if top_n is not None:
        if isinstance(top_n, bool) or int(top_n) != top_n or top_n < 2:
            raise ConfigError(
                f"top_n must be an integer of at least 2 (a slope needs two points), got "
                f"{top_n!r}. Fix: use top_n=2 or more, or None for all units."
            )
        top_n = int(top_n)
    positive = np.sort(sizes[sizes > 0])[::-1]
    needed = 2 if top_n is None else top_n
    if sizes.size < needed:
        return np.nan, f"{sizes.size} unit(s), fewer than the {needed} needed"
    if positive.size < needed:
        return np.nan, (
            f"{positive.size} unit(s) of positive size, fewer than the {needed} needed "
            "(ln 0 is undefined)"
        )
    used = positive if top_n is None else positive[:top_n]
    log_rank = np.log(np.arange(1, used.size + 1, dtype=float))
    log_size = np.log(used)
    x = log_rank - log_rank.mean()
    y = log_size - log_size.mean()
    slope = float(np.dot(x, y) / np.dot(x, x))
    # Sizes sorted in decreasing order make the covariance non-positive; round-off
    # can leave a tiny positive value when all sizes are equal.
    return min(slope, 0.0), None


def rank_size_slope(sizes: npt.ArrayLike, top_n: int | None = None) -> float:
    r"""Compute the rank-size slope of unit sizes (Meijers and Burger 2010).

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes, any order.
    top_n : int or None, default None
        Fit over the ``top_n`` largest units (at least 2), or over all units
        of positive size when None.

    Returns
    -------
    float
        The OLS slope ``b`` (at most 0). Closer to 0 means a flatter size
        distribution, so a more polycentric region; a more negative value
        means a more monocentric one. NaN when the region has fewer than
        ``top_n`` units (2 when ``top_n`` is None) of positive size.

    Raises
    ------
    ConfigError
        ``top_n`` is not an integer of at least 2.
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    With units sorted by decreasing size and ranked ``r = 1, ..., n``, the
    slope ``b`` is the OLS estimate in

    .. math:: \ln S_r = a + b \ln r + e_r,

    so ``b = sum((x - xbar)(y - ybar)) / sum((x - xbar)^2)`` with
    ``x = ln r`` and ``y = ln S_r``. This is the rank-size measure of
    morphological polycentricity in Meijers, E. J. and Burger, M. J. (2010),
    "Spatial structure and productivity in US metropolitan areas",
    Environment and Planning A 42, 1383-1402, who fit it over the two, three
    and four largest centres. Units of size zero are left out of the fit
    when ``top_n`` is None because ``ln 0`` is undefined. Tied sizes do not
    change the slope, whatever order they are ranked in.

    Examples
    --------
    >>> round(rank_size_slope([4.0, 2.0, 1.0], top_n=2), 6)  # ln(2/4) / ln 2
    -1.0
    """
    value, _ = _rank_size(_as_sizes(sizes), top_n)
    return value


def primacy(sizes: npt.ArrayLike) -> float:
    """Compute the share of the largest unit in the total size.

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes.

    Returns
    -------
    float
        ``max(S) / sum(S)`` in ``[1/n, 1]``. Higher means more monocentric.
        NaN when there are fewer than 2 units or the total is zero.

    Raises
    ------
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    The primacy ratio of Jefferson, M. (1939), "The law of the primate city",
    Geographical Review 29, 226-232, taken here as a share of the region total.
    """
    array = _as_sizes(sizes)
    if _shares_reason(array) is not None:
        return np.nan
    return float(array.max() / array.sum())


def hhi_normalised(sizes: npt.ArrayLike) -> float:
    """Compute the normalised Herfindahl-Hirschman index of size shares.

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes.

    Returns
    -------
    float
        Value in ``[0, 1]``: 0 when all units are equal, 1 when one unit holds
        everything. Higher means more monocentric. NaN when there are fewer
        than 2 units or the total is zero.

    Raises
    ------
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    With shares ``s_i = S_i / sum(S)`` and ``HHI = sum(s_i^2)``, the index is
    ``(HHI - 1/n) / (1 - 1/n)``, which rescales the range ``[1/n, 1]`` of HHI
    to ``[0, 1]`` so that regions with different numbers of units compare.
    """
    array = _as_sizes(sizes)
    if _shares_reason(array) is not None:
        return np.nan
    n = array.size
    shares = array / array.sum()
    hhi = float(np.dot(shares, shares))
    return float(np.clip((hhi - 1.0 / n) / (1.0 - 1.0 / n), 0.0, 1.0))


def entropy_normalised(sizes: npt.ArrayLike) -> float:
    """Compute the normalised Shannon entropy of size shares.

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes.

    Returns
    -------
    float
        Value in ``[0, 1]``: 1 when all units are equal, 0 when one unit holds
        everything. Higher means more polycentric. NaN when there are fewer
        than 2 units or the total is zero.

    Raises
    ------
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    ``H = -sum(s_i ln s_i)`` with ``0 ln 0 = 0`` (Shannon 1948), divided by
    its maximum ``ln n``, so regions with different numbers of units compare.
    Units of size zero count in ``n``.
    """
    array = _as_sizes(sizes)
    if _shares_reason(array) is not None:
        return np.nan
    shares = array / array.sum()
    positive = shares[shares > 0]
    entropy = float(-np.sum(positive * np.log(positive)))
    return float(np.clip(entropy / np.log(array.size), 0.0, 1.0))


def gini(sizes: npt.ArrayLike) -> float:
    """Compute the Gini coefficient of unit sizes.

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes.

    Returns
    -------
    float
        Value in ``[0, (n - 1)/n]``: 0 when all units are equal. Higher means
        more unequal, so more monocentric. NaN when there are fewer than 2
        units or the total is zero.

    Raises
    ------
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    ``G = sum_i sum_j |S_i - S_j| / (2 n^2 mean(S))``, computed from the sizes
    sorted in increasing order ``S_(1) <= ... <= S_(n)`` as
    ``G = 2 sum_i i S_(i) / (n sum(S)) - (n + 1) / n``.
    """
    array = _as_sizes(sizes)
    if _shares_reason(array) is not None:
        return np.nan
    n = array.size
    ordered = np.sort(array)
    ranks = np.arange(1, n + 1, dtype=float)
    value = 2.0 * np.dot(ranks, ordered) / (n * ordered.sum()) - (n + 1.0) / n
    return float(max(value, 0.0))


def _check_top_n(top_n: Iterable[int]) -> tuple[int, ...]:
    values = tuple(top_n)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ConfigError(
                f"top_n must contain integers of at least 2, got {value!r} in {values!r}. Fix: "
                "use for example top_n=(2, 3, 4)."
            )
    if len(set(values)) != len(values):
        raise ConfigError(f"top_n contains duplicates: {values!r}. Fix: list each value once.")
    return tuple(int(v) for v in values)


def _group_indices(sizes: np.ndarray, top_n: tuple[int, ...]) -> dict[str, object]:
    row: dict[str, object] = {"n_units": int(sizes.size)}
    reasons: list[str] = []
    shares_reason = _shares_reason(sizes)
    if shares_reason is not None and sizes.size < 2:
        # One rule covers every index, so one reason is enough.
        for k in top_n:
            row[f"poly_rank_size_top{k}"] = np.nan
        for column in INDEX_COLUMNS:
            row[column] = np.nan
        row["poly_undefined_reason"] = f"all indices: {shares_reason}"
        return row

    # n_top=None fits the slope over every unit of positive size.
    fits: list[tuple[str, int | None]] = [(f"poly_rank_size_top{k}", k) for k in top_n]
    fits.append(("poly_rank_size_all", None))
    for column, n_top in fits:
        value, reason = _rank_size(sizes, n_top)
        row[column] = value
        if reason is not None:
            reasons.append(f"{column}: {reason}")

    row["poly_primacy"] = primacy(sizes)
    row["poly_hhi_norm"] = hhi_normalised(sizes)
    row["poly_entropy_norm"] = entropy_normalised(sizes)
    row["poly_gini"] = gini(sizes)
    if shares_reason is not None:
        reasons.append(
            f"poly_primacy, poly_hhi_norm, poly_entropy_norm, poly_gini: {shares_reason}"
        )
    row["poly_undefined_reason"] = "; ".join(reasons)
    return row


def polycentricity_indices(
    df: pd.DataFrame,
    group_cols: str | Sequence[str],
    size_col: str,
    top_n: Iterable[int] = (2, 3, 4),
) -> pd.DataFrame:
    """Compute every polycentricity index per group of a tidy frame.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit (e.g. city-year), with the group columns and a size
        column.
    group_cols : str or sequence of str
        Columns that define a region, e.g. ``["province", "year"]``.
    size_col : str
        Column of non-negative unit sizes, e.g. ``"light"``.
    top_n : iterable of int, default (2, 3, 4)
        Numbers of largest units for the rank-size slopes
        ``poly_rank_size_top{k}``.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by the group columns, with the group
        columns, ``n_units`` (int), ``poly_rank_size_top{k}`` for each
        ``k``, ``poly_rank_size_all``, ``poly_primacy``, ``poly_hhi_norm``,
        ``poly_entropy_norm``, ``poly_gini`` (float) and
        ``poly_undefined_reason`` (str): empty when every index is defined,
        otherwise which indices are NaN and why. Directions: rank-size slopes
        closer to 0 and higher entropy mean more polycentric; higher primacy,
        HHI and Gini mean more monocentric.

    Raises
    ------
    DataError
        A column is missing, a group key is missing, or a size is negative,
        NaN or infinite. The message names the rows.
    ConfigError
        ``top_n`` contains a value below 2 or a duplicate.

    Notes
    -----
    See the kernels (:func:`rank_size_slope`, :func:`primacy`,
    :func:`hhi_normalised`, :func:`entropy_normalised`, :func:`gini`) for the
    formulas and the rule for undefined cases.

    Examples
    --------
    >>> frame = pd.DataFrame({"region": ["a", "a", "b"], "size": [2.0, 1.0, 5.0]})
    >>> out = polycentricity_indices(frame, "region", "size", top_n=(2,))
    >>> out[["region", "n_units", "poly_primacy"]].round(4).to_dict("list")
    {'region': ['a', 'b'], 'n_units': [2, 1], 'poly_primacy': [0.6667, nan]}
    """
    groups = [group_cols] if isinstance(group_cols, str) else list(group_cols)
    ks = _check_top_n(top_n)
    missing = [c for c in [*groups, size_col] if c not in df.columns]
    if missing:
        raise DataError(
            f"Columns {missing} are missing from the frame (columns: {list(df.columns)}). "
            "Fix: pass existing group and size column names."
        )
    null_keys = df[groups].isna().any(axis=1)
    if null_keys.any():
        rows = list(df.index[null_keys][:10])
        raise DataError(
            f"Group columns {groups} are missing in rows {rows}. Fix: fill or drop these rows."
        )
    sizes = pd.to_numeric(df[size_col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(sizes) | (sizes < 0)
    if bad.any():
        shown = df.loc[bad, [*groups, size_col]].head(10).to_dict("records")
        raise DataError(
            f"Column {size_col!r} must hold finite non-negative sizes; {int(bad.sum())} rows "
            f"do not, for example {shown}. Fix: correct or drop these units."
        )

    rows = []
    sized = df[groups].assign(_size=sizes)
    for key, group in sized.groupby(groups, sort=True):
        key_tuple = key if isinstance(key, tuple) else (key,)
        row = dict(zip(groups, key_tuple, strict=True))
        row.update(_group_indices(group["_size"].to_numpy(), ks))
        rows.append(row)

    columns = [
        *groups,
        "n_units",
        *(f"poly_rank_size_top{k}" for k in ks),
        *INDEX_COLUMNS,
        "poly_undefined_reason",
    ]
    out = pd.DataFrame(rows, columns=columns)
    out["n_units"] = out["n_units"].astype("int64")
    float_columns = [c for c in columns if c.startswith("poly_") and c != "poly_undefined_reason"]
    out[float_columns] = out[float_columns].astype("float64")
    out["poly_undefined_reason"] = out["poly_undefined_reason"].astype("str")
    undefined = out["poly_undefined_reason"] != ""
    if undefined.any():
        logger.info(
            "Polycentricity undefined for some indices in %d of %d groups.",
            int(undefined.sum()),
            len(out),
        )
    return out


# ---------------------------------------------------------------------------
# Multi-definition rank-size mean (Meijers and Burger 2010)
# ---------------------------------------------------------------------------

RANK_SIZE_DEFINITIONS: tuple[str, ...] = (
    "poly_rank_size_top2",
    "poly_rank_size_top3",
    "poly_rank_size_top4",
    "poly_rank_size_all",
)
"""Rank-size columns averaged by :func:`add_rank_size_mean`."""


def rank_size_mean(
    sizes: npt.ArrayLike, top_n: Iterable[int] = (2, 3, 4), include_all: bool = True
) -> float:
    """Average the rank-size slopes over several definitions of the top units.

    Parameters
    ----------
    sizes : array_like
        1-D non-negative unit sizes.
    top_n : iterable of int, default (2, 3, 4)
        Numbers of largest units, one slope each (see :func:`rank_size_slope`).
    include_all : bool, default True
        Also average the slope over all units of positive size.

    Returns
    -------
    float
        Mean of the slopes that are defined (at most 0; closer to 0 = more
        polycentric). Definitions the region cannot support (for example
        ``top_n=4`` with 3 units) are left out of the mean; NaN when none is
        defined.

    Raises
    ------
    ConfigError
        ``top_n`` contains a value below 2 or a duplicate.
    DataError
        ``sizes`` contains negative, NaN or infinite values.

    Notes
    -----
    Meijers, E. J. and Burger, M. J. (2010), "Spatial structure and
    productivity in US metropolitan areas", Environment and Planning A 42,
    1383-1402, fit the slope over the two, three and four largest centres
    because no single cut-off is canonical. The mean
    ``(b_2 + b_3 + b_4 + b_all) / 4`` smooths the dependence on the cut-off.
    Leaving undefined slopes out means that a region with 3 units averages
    ``b_2``, ``b_3`` and ``b_all`` only, so its mean is not the same average
    as a region with 4 units or more.

    Examples
    --------
    The top-2 slope of sizes 4, 2, 1 is -1 and the slope over all three is
    about -1.2337, so their mean is:

    >>> round(rank_size_mean([4.0, 2.0, 1.0], top_n=(2,), include_all=True), 6)
    -1.116831
    """
    array = _as_sizes(sizes)
    slopes = [_rank_size(array, k)[0] for k in _check_top_n(top_n)]
    if include_all:
        slopes.append(_rank_size(array, None)[0])
    defined = [s for s in slopes if np.isfinite(s)]
    return float(np.mean(defined)) if defined else np.nan


def add_rank_size_mean(
    frame: pd.DataFrame,
    columns: Sequence[str] = RANK_SIZE_DEFINITIONS,
    min_defined: int = 1,
) -> pd.DataFrame:
    """Return a copy of ``frame`` with ``poly_rank_size_mean`` added.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`polycentricity_indices` or a province panel.
    columns : sequence of str, default :data:`RANK_SIZE_DEFINITIONS`
        Rank-size columns to average row by row.
    min_defined : int, default 1
        Rows with fewer defined (non-NaN) slopes get NaN.

    Returns
    -------
    pandas.DataFrame
        A copy with the float column ``poly_rank_size_mean`` (at most 0;
        closer to 0 = more polycentric). The input is not modified.

    Raises
    ------
    DataError
        A column is missing.
    ConfigError
        ``min_defined`` is not between 1 and ``len(columns)``.

    Notes
    -----
    The row mean of the Meijers and Burger (2010) definitions, skipping
    undefined slopes; see :func:`rank_size_mean`.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"Columns {missing} are missing from the frame (columns: {list(frame.columns)}). "
            "Fix: compute them with polycentricity_indices(..., top_n=(2, 3, 4)) first."
        )
    if isinstance(min_defined, bool) or not 1 <= int(min_defined) <= len(columns):
        raise ConfigError(
            f"min_defined must be between 1 and {len(columns)}, got {min_defined!r}."
        )
    values = frame[list(columns)].astype("float64")
    mean = values.mean(axis=1, skipna=True)
    mean[values.notna().sum(axis=1) < int(min_defined)] = np.nan
    out = frame.copy()
    out["poly_rank_size_mean"] = mean.astype("float64")
    return out


# ---------------------------------------------------------------------------
# Functional polycentricity from flows between centres
# ---------------------------------------------------------------------------

FUNCTIONAL_COLUMNS: tuple[str, ...] = (
    "func_rank_size_inflow",
    "func_entropy_inflow",
    "func_link_entropy",
    "func_green",
)


def _as_flows(flows: npt.ArrayLike) -> np.ndarray:
    matrix = np.asarray(flows, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(
            f"Flows must be a square matrix (origin x destination), got shape {matrix.shape}. "
            "Fix: pass one row and one column per centre, in the same order."
        )
    bad = ~np.isfinite(matrix) | (matrix < 0)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"Flows must be finite and non-negative; entry ({i}, {j}) is {matrix[i, j]!r} "
            f"({int(bad.sum())} invalid entries in all). Fix: correct or zero these flows."
        )
    matrix = matrix.copy()
    np.fill_diagonal(matrix, 0.0)
    return matrix


def functional_indices(flows: npt.ArrayLike) -> dict[str, float]:
    r"""Compute functional polycentricity indices from flows between centres.

    Parameters
    ----------
    flows : array_like, shape (n, n)
        Non-negative flows (commuters, trips, calls) from centre ``i`` (row)
        to centre ``j`` (column). The diagonal (flows within a centre) is
        ignored.

    Returns
    -------
    dict of str to float
        ``func_rank_size_inflow``: rank-size slope of the inflows
        ``I_j = sum_i F_ij`` (at most 0; closer to 0 = more polycentric).
        ``func_entropy_inflow``: normalised entropy of inflow shares in
        [0, 1] (higher = more polycentric). ``func_link_entropy``: entropy
        of the flow shares over the ``n (n - 1)`` directed links divided by
        ``ln(n (n - 1))``, in [0, 1] (higher = flows spread evenly over all
        pairs, a more polycentric network). ``func_green``: in [0, 1]
        (higher = more polycentric), see Notes. Every value is NaN when there
        are fewer than 2 centres or no flow between centres.

    Raises
    ------
    DataError
        ``flows`` is not square or contains negative, NaN or infinite values.

    Notes
    -----
    Burger, M. J. and Meijers, E. J. (2012), "Form follows function? Linking
    morphological and functional polycentricity", Urban Studies 49,
    1127-1149, measure functional polycentricity with the same rank-size
    slope as the morphological one, applied to the flows a centre attracts;
    ``func_rank_size_inflow`` and ``func_entropy_inflow`` follow that idea
    with the kernels of this module.

    ``func_green`` follows the construction of Green, N. (2007), "Functional
    polycentricity: a formal definition in terms of social network
    analysis", Urban Studies 44, 2077-2103: an evenness term times a
    density term,

    .. math:: P_F = \left(1 - \frac{\sigma_d}{\sigma_{d,\max}}\right) \Delta,

    with ``d_j = I_j`` the weighted in-degree, ``sigma_d`` its population
    standard deviation, ``sigma_{d,max} = max(d) / 2`` the standard deviation
    of the two-node network ``(max(d), 0)``, and the weighted density
    ``Delta = sum F / (n (n - 1) max F)``. ``P_F = 1`` when every pair
    exchanges the same flow.

    NOTE: the formulas above are the ones computed here; Green (2007) also
    discusses variants (in- and out-degree, a normalisation of ``sigma_d``
    by network size) that give other numbers.
    """
    matrix = _as_flows(flows)
    n = matrix.shape[0]
    nan = dict.fromkeys(FUNCTIONAL_COLUMNS, np.nan)
    if n < 2 or matrix.sum() == 0:
        return nan
    inflow = matrix.sum(axis=0)
    links = matrix[~np.eye(n, dtype=bool)]
    shares = links / links.sum()
    positive = shares[shares > 0]
    link_entropy = float(-np.sum(positive * np.log(positive)) / np.log(n * (n - 1)))
    sigma_max = inflow.max() / 2.0
    evenness = 1.0 - float(np.std(inflow)) / sigma_max
    density = float(links.sum() / (n * (n - 1) * links.max()))
    return {
        "func_rank_size_inflow": rank_size_slope(inflow),
        "func_entropy_inflow": entropy_normalised(inflow),
        "func_link_entropy": float(np.clip(link_entropy, 0.0, 1.0)),
        "func_green": float(np.clip(evenness * density, 0.0, 1.0)),
    }
