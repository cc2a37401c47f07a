"""Census population by province and the historical polycentricity instrument.

Sources (registry datasets):

* ``census_leiii/census_city_2010-2020_v1.csv``: 2010 and 2020 census
  population by prefecture (Dong et al. 2022, GitHub leiii/census; MIT),
  UTF-8 with a byte-order mark, columns ``city, city_code, province,
  province_code`` (6-digit), ``popu_2010, popu_2020`` and a WKT boundary.
* ``transport_ma_tang/cityinfo.csv``: 279 prefectures with 4-digit codes
  (``dzcode``) and 2000 and 2010 census population in ten-thousands
  (Ma and Tang 2024, Journal of International Economics 148, 103873;
  GPL-3.0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from polygvc.data_prep.names import province_table, resolve_series
from polygvc.data_prep.polycentricity import polycentricity_indices
from polygvc.data_prep.registry import fetch
from polygvc.errors import DataError

logger = logging.getLogger(__name__)

CENSUS_DATASET, CENSUS_FILE = "census_leiii", "census_city_2010-2020_v1.csv"
MATANG_DATASET, MATANG_FILE = "transport_ma_tang", "cityinfo.csv"
CENSUS_YEARS: tuple[int, int] = (2010, 2020)


def load_census_cities() -> pd.DataFrame:
    """Load 2010 and 2020 census population of mainland prefectures.

    Returns
    -------
    pandas.DataFrame
        One row per mainland prefecture-level unit with columns ``province``
        (English canonical name), ``province_code`` (2-digit int),
        ``city_code`` (6-digit int), ``city_zh``, ``popu_2010`` and
        ``popu_2020`` (persons, float; NaN where the source has no figure).

    Raises
    ------
    DataError
        Missing columns, duplicated city codes, unknown province codes, or
        negative population.

    Notes
    -----
    Hong Kong and Macau are in the file and are dropped. The source has no
    population for the county-level cities of the Xinjiang Production and
    Construction Corps (6590xx) in either year and none for Sansha (460300)
    in 2010, the year before it was created.
    """
    path = fetch(CENSUS_DATASET, CENSUS_FILE)
    frame = pd.read_csv(path, encoding="utf-8-sig", usecols=lambda c: c != "coord")
    needed = ["city", "city_code", "province", "province_code", "popu_2010", "popu_2020"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks columns {missing} (found {list(frame.columns)}). Fix: replace it "
            f"with the registered version of {CENSUS_DATASET}/{CENSUS_FILE}."
        )
    duplicated = frame["city_code"].duplicated(keep=False)
    if duplicated.any():
        codes = sorted(frame.loc[duplicated, "city_code"].unique().tolist())
        raise DataError(
            f"{CENSUS_FILE}: duplicated city_code {codes}. Fix: use the registered file."
        )

    names = resolve_series(
        frame["province_code"], source=f"{CENSUS_FILE}, column province_code", non_mainland="drop"
    )
    frame = frame.loc[names.index]
    out = pd.DataFrame(
        {
            "province": names,
            "province_code": (frame["province_code"] // 10000).astype("int64"),
            "city_code": frame["city_code"].astype("int64"),
            "city_zh": frame["city"].astype("str"),
            "popu_2010": frame["popu_2010"].astype("float64"),
            "popu_2020": frame["popu_2020"].astype("float64"),
        }
    )
    for column in ("popu_2010", "popu_2020"):
        negative = out[column] < 0
        if negative.any():
            rows = out.loc[negative, ["city_zh", "city_code", column]].to_dict("records")
            raise DataError(f"{CENSUS_FILE}: negative {column} in {rows}. Fix: correct them.")
    return out.reset_index(drop=True)


def province_population(years: Iterable[int]) -> pd.DataFrame:
    r"""Return log census population per province, interpolated log-linearly.

    Parameters
    ----------
    years : iterable of int
        Calendar years to return.

    Returns
    -------
    pandas.DataFrame
        One row per mainland province and year, sorted by ``province_code``
        and ``year``, with columns ``province``, ``province_code``, ``year``
        and ``log_population`` (natural log of persons).

    Raises
    ------
    DataError
        A province has no prefecture with a 2010 or 2020 figure.

    Notes
    -----
    Province totals are sums of prefecture populations in each census year,
    over the prefectures with a figure. With ``P10`` and ``P20`` the 2010
    and 2020 totals,

    .. math:: \ln P_t = \ln P_{10} + (t - 2010) (\ln P_{20} - \ln P_{10}) / 10,

    which interpolates between the censuses at a constant growth rate and
    extrapolates the same rate outside 2010-2020 (e.g. 2001-2009). The
    extrapolation assumes 2000s growth equal to the 2010s rate, which
    understates population change where migration reversed (Northeast).

    NOTE: Xinjiang totals leave out the Production and Construction Corps
    cities, which the source lacks in both years (about 4 % of the
    province's 2010 census population of 21.8 million).
    """
    cities = load_census_cities()
    totals = cities.groupby(["province", "province_code"], as_index=False)[
        ["popu_2010", "popu_2020"]
    ].sum(min_count=1)
    table = province_table()[["province", "province_code"]]
    totals = table.merge(totals, on=["province", "province_code"], how="left", validate="1:1")
    for column in ("popu_2010", "popu_2020"):
        empty = totals[column].isna() | (totals[column] <= 0)
        if empty.any():
            raise DataError(
                f"{CENSUS_FILE}: no {column} figure for provinces "
                f"{totals.loc[empty, 'province'].tolist()}. Fix: use the registered file."
            )
    partial = cities[cities[["popu_2010", "popu_2020"]].isna().any(axis=1)]
    if not partial.empty:
        logger.info(
            "Census totals leave out units without a figure: %s.",
            partial[["city_zh", "popu_2010", "popu_2020"]].to_dict("records"),
        )

    year_values = np.array(sorted({int(y) for y in years}), dtype="int64")
    log10 = np.log(totals["popu_2010"].to_numpy())
    log20 = np.log(totals["popu_2020"].to_numpy())
    slope = (log20 - log10) / (CENSUS_YEARS[1] - CENSUS_YEARS[0])
    log_population = log10[:, None] + (year_values[None, :] - CENSUS_YEARS[0]) * slope[:, None]
    outside = year_values[(year_values < CENSUS_YEARS[0]) | (year_values > CENSUS_YEARS[1])]
    if outside.size:
        logger.info(
            "log_population is extrapolated at the 2010-2020 growth rate for years %s.",
            outside.tolist(),
        )
    out = pd.DataFrame(
        {
            "province": np.repeat(totals["province"].to_numpy(), year_values.size),
            "province_code": np.repeat(totals["province_code"].to_numpy(), year_values.size),
            "year": np.tile(year_values, len(totals)),
            "log_population": log_population.ravel(),
        }
    )
    out["province"] = out["province"].astype("str")
    out["province_code"] = out["province_code"].astype("int64")
    return out


def load_prefectures_2000() -> pd.DataFrame:
    """Load the 279 prefectures of Ma and Tang (2024) with 2000 census population.

    Returns
    -------
    pandas.DataFrame
        Columns ``province``, ``province_code`` (2-digit int, ``dzcode // 100``),
        ``dzcode`` (4-digit int), ``city_zh`` and ``cpop2000`` and ``cpop2010``
        (ten-thousand persons).

    Raises
    ------
    DataError
        Missing columns, codes that are not 4-digit, duplicated codes, unknown
        provinces or non-positive population.
    """
    path = fetch(MATANG_DATASET, MATANG_FILE)
    frame = pd.read_csv(path)
    needed = ["dzcode", "cityname_chn", "cpop2000", "cpop2010"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks columns {missing}. Fix: use the registered version of "
            f"{MATANG_DATASET}/{MATANG_FILE}."
        )
    bad_code = (frame["dzcode"] < 1000) | (frame["dzcode"] > 9999)
    if bad_code.any():
        raise DataError(
            f"{MATANG_FILE}: dzcode must have 4 digits, got "
            f"{frame.loc[bad_code, 'dzcode'].tolist()[:10]}. Fix: use the registered file."
        )
    if frame["dzcode"].duplicated().any():
        codes = frame.loc[frame["dzcode"].duplicated(), "dzcode"].tolist()
        raise DataError(f"{MATANG_FILE}: duplicated dzcode {codes}. Fix: use the registered file.")
    bad_pop = ~(frame["cpop2000"] > 0)
    if bad_pop.any():
        rows = frame.loc[bad_pop, ["dzcode", "cityname_chn", "cpop2000"]].to_dict("records")
        raise DataError(
            f"{MATANG_FILE}: cpop2000 is missing or not positive in {rows}. Fix: use the "
            "registered file."
        )
    province_code = (frame["dzcode"] // 100).astype("int64")
    names = resolve_series(province_code, source=f"{MATANG_FILE}, column dzcode // 100")
    return pd.DataFrame(
        {
            "province": names,
            "province_code": province_code,
            "dzcode": frame["dzcode"].astype("int64"),
            "city_zh": frame["cityname_chn"].astype("str"),
            "cpop2000": frame["cpop2000"].astype("float64"),
            "cpop2010": frame["cpop2010"].astype("float64"),
        }
    )


def historical_polycentricity() -> pd.DataFrame:
    """Compute the 2000 census rank-size slope per province (historical instrument).

    Returns
    -------
    pandas.DataFrame
        One row per mainland province (31, ascending code) with columns
        ``province``, ``province_code``, ``n_prefectures_2000`` (int),
        ``hist_poly_2000`` (float; rank-size slope of 2000 prefecture
        population over all prefectures in the file; at most 0, closer to 0
        = more polycentric) and ``hist_poly_reason`` (str; empty when
        defined, otherwise why it is NaN).

    Raises
    ------
    DataError
        The source file fails validation.

    Notes
    -----
    The slope is the OLS ``b`` in ``ln P_r = a + b ln r`` over the
    prefectures of a province ranked by 2000 census population (Meijers and
    Burger 2010; see :func:`polygvc.data_prep.polycentricity.rank_size_slope`).
    The 279 prefectures of Ma and Tang (2024) cover the prefecture-level
    cities only, not autonomous prefectures or leagues, so provinces with
    fewer than 2 listed prefectures get NaN: the four municipalities
    (one unit each), Qinghai (Xining only) and Tibet (none). Hainan, Guizhou
    and Xinjiang have 2 listed prefectures each, so their slope rests on two
    points. For Xinjiang (Urumqi and the much smaller Karamay) it is about
    -2.9, far below the other provinces (-0.4 to -0.9).
    """
    prefectures = load_prefectures_2000()
    indices = polycentricity_indices(prefectures, "province_code", "cpop2000", top_n=())
    table = province_table()[["province", "province_code"]]
    out = table.merge(
        indices[["province_code", "n_units", "poly_rank_size_all"]],
        on="province_code",
        how="left",
        validate="1:1",
    )
    out = out.rename(
        columns={"n_units": "n_prefectures_2000", "poly_rank_size_all": "hist_poly_2000"}
    )
    out["n_prefectures_2000"] = out["n_prefectures_2000"].fillna(0).astype("int64")
    out["hist_poly_2000"] = out["hist_poly_2000"].astype("float64")
    reasons = []
    for n_units, value in zip(out["n_prefectures_2000"], out["hist_poly_2000"], strict=True):
        if n_units == 0:
            reasons.append("no prefecture of this province is in the Ma and Tang (2024) list")
        elif np.isnan(value):
            reasons.append(
                f"only {n_units} prefecture of this province is in the Ma and Tang (2024) "
                "list, and a rank-size slope needs at least 2"
            )
        else:
            reasons.append("")
    out["hist_poly_reason"] = pd.Series(reasons, index=out.index, dtype="str")
    undefined = out.loc[out["hist_poly_reason"] != "", "province"].tolist()
    logger.info("hist_poly_2000 is undefined for %s.", undefined)
    return out[
        ["province", "province_code", "n_prefectures_2000", "hist_poly_2000", "hist_poly_reason"]
    ]
