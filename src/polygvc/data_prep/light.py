"""City night-time light and LandScan population, 2001-2020.

Source files (dataset ``ntl_city_viirslike`` of the registry):

* ``sol_by_year_by_class_by_city.csv``: sum of light (SOL) of the
  NPP-VIIRS-like series of Chen et al. (2021), Earth System Science Data 13,
  889-906, per city and year, over urban land, agricultural land and all land
  (MODIS land-cover classes). Columns ``province, province_id, city,
  city_id, year, urban_sol, agriculture_sol, total_sol``.
* ``population_by_year_by_class_by_city.csv``: LandScan population per city
  and year, same keys, columns ``agriculture_population,
  urban_population, total_population``.

The city units are the prefecture-level divisions plus the county-level
units directly under a province (Hainan, Hubei, Henan and Xinjiang have such
units), 371 units in all. Each of the four municipalities (Beijing, Tianjin,
Shanghai, Chongqing) is one unit. Hong Kong, Macau and Taiwan are in the
files as one unit each and are dropped here.

The light series is noisy before 2013 (jumps in the national total in
2010-11 and 2012-13), so within-province shares, which the polycentricity
indices use, are safer than raw levels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from polygvc.data_prep.names import resolve_series
from polygvc.data_prep.registry import fetch
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DATASET = "ntl_city_viirslike"
LIGHT_FILE = "sol_by_year_by_class_by_city.csv"
POPULATION_FILE = "population_by_year_by_class_by_city.csv"
LIGHT_COLUMNS: tuple[str, ...] = ("total_sol", "urban_sol", "agriculture_sol")
POPULATION_COLUMNS: tuple[str, ...] = (
    "total_population",
    "urban_population",
    "agriculture_population",
)
FIRST_YEAR, LAST_YEAR = 2001, 2020
_KEYS = ["province", "province_id", "city", "city_id", "year"]


def _read(filename: str, value_columns: Iterable[str]) -> pd.DataFrame:
    path = fetch(DATASET, filename)
    frame = pd.read_csv(path)
    needed = [*_KEYS, *value_columns]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks columns {missing} (found {list(frame.columns)}). Fix: replace the "
            f"file with the registered version of {DATASET}/{filename}."
        )
    return frame


def _check_values(frame: pd.DataFrame, columns: Iterable[str], filename: str) -> None:
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0) | ~np.isfinite(values)
        if bad.any():
            rows = frame.loc[bad, ["city", "city_id", "year", column]].head(5).to_dict("records")
            raise DataError(
                f"{filename}, column {column!r}: {int(bad.sum())} rows are missing, negative "
                f"or infinite, for example {rows}. Fix: replace the file with the registered "
                "version."
            )


def _check_keys(frame: pd.DataFrame, filename: str) -> None:
    duplicated = frame.duplicated(["city_id", "year"], keep=False)
    if duplicated.any():
        rows = frame.loc[duplicated, ["city", "city_id", "year"]].head(5).to_dict("records")
        raise DataError(
            f"{filename}: {int(duplicated.sum())} rows share a city_id and year, for example "
            f"{rows}. Fix: replace the file with the registered version."
        )
    years = frame["year"]
    outside = (years < FIRST_YEAR) | (years > LAST_YEAR)
    if outside.any():
        raise DataError(
            f"{filename}: years {sorted(years[outside].unique().tolist())} lie outside "
            f"{FIRST_YEAR}-{LAST_YEAR}. Fix: replace the file with the registered version."
        )
    mismatch = frame["city_id"] // 10000 != frame["province_id"] // 10000
    if mismatch.any():
        rows = frame.loc[mismatch, ["province_id", "city", "city_id"]].head(5).to_dict("records")
        raise DataError(
            f"{filename}: city_id and province_id disagree on the province in "
            f"{int(mismatch.sum())} rows, for example {rows}. Fix: correct the codes."
        )


def load_city_light(
    light_column: str = "total_sol",
    population_column: str = "total_population",
    years: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Load city night-time light and LandScan population as a tidy frame.

    Parameters
    ----------
    light_column : {"total_sol", "urban_sol", "agriculture_sol"}, default "total_sol"
        Sum of light over all land, urban land or agricultural land.
    population_column : {"total_population", "urban_population", \
"agriculture_population"}, default "total_population"
        LandScan population over the same land classes.
    years : iterable of int, optional
        Years to keep, within 2001-2020. Default: all.

    Returns
    -------
    pandas.DataFrame
        One row per mainland city and year, sorted by ``province_code``,
        ``city_code`` and ``year``, with columns ``province`` (English
        canonical name), ``province_code`` (2-digit int), ``city_code``
        (6-digit int), ``city_zh``, ``year`` (int), ``light`` (float, sum of
        light in the source's radiance units; higher = brighter) and
        ``population`` (float, persons).

    Raises
    ------
    ConfigError
        ``light_column``, ``population_column`` or ``years`` is invalid.
    DataError
        The files fail validation: duplicated city-year keys, negative or
        missing values, years outside 2001-2020, unknown province codes, or
        city-years present in one file but not the other.
    DataNotFoundError
        The files are not in the mirror and cannot be downloaded.

    Notes
    -----
    Provinces are resolved from the 6-digit ``province_id`` and checked
    against the Chinese ``province`` column. Hong Kong, Macau and Taiwan are
    dropped (logged at INFO level).
    """
    if light_column not in LIGHT_COLUMNS:
        raise ConfigError(
            f"light_column {light_column!r} is not a light column. Valid choices: "
            f"{', '.join(LIGHT_COLUMNS)}."
        )
    if population_column not in POPULATION_COLUMNS:
        raise ConfigError(
            f"population_column {population_column!r} is not a population column. Valid "
            f"choices: {', '.join(POPULATION_COLUMNS)}."
        )
    requested_years = None if years is None else sorted({int(y) for y in years})
    if requested_years is not None:
        outside = [y for y in requested_years if y < FIRST_YEAR or y > LAST_YEAR]
        if outside:
            raise ConfigError(
                f"years {outside} lie outside the light data ({FIRST_YEAR}-{LAST_YEAR}). Fix: "
                f"choose years within {FIRST_YEAR}-{LAST_YEAR}."
            )

    light = _read(LIGHT_FILE, [light_column])
    population = _read(POPULATION_FILE, [population_column])
    for frame, filename, column in (
        (light, LIGHT_FILE, light_column),
        (population, POPULATION_FILE, population_column),
    ):
        _check_keys(frame, filename)
        _check_values(frame, [column], filename)

    merged = light[[*_KEYS, light_column]].merge(
        population[["city_id", "year", population_column]],
        on=["city_id", "year"],
        how="outer",
        validate="one_to_one",
        indicator=True,
    )
    unmatched = merged["_merge"] != "both"
    if unmatched.any():
        rows = merged.loc[unmatched, ["city_id", "year", "_merge"]].head(5).to_dict("records")
        raise DataError(
            f"{LIGHT_FILE} and {POPULATION_FILE} disagree on city-years: {int(unmatched.sum())} "
            f"rows are in only one file, for example {rows}. Fix: use the registered versions."
        )

    by_code = resolve_series(
        merged["province_id"], source=f"{LIGHT_FILE}, column province_id", non_mainland="drop"
    )
    dropped = merged.loc[~merged.index.isin(by_code.index), "city"].unique().tolist()
    if dropped:
        logger.info("Dropped non-mainland units from the light data: %s.", dropped)
    merged = merged.loc[by_code.index]
    by_name = resolve_series(merged["province"], source=f"{LIGHT_FILE}, column province")
    disagree = by_name != by_code
    if disagree.any():
        rows = merged.loc[disagree, ["province", "province_id", "city"]].head(5)
        raise DataError(
            f"{LIGHT_FILE}: the province name and province_id disagree in "
            f"{int(disagree.sum())} rows, for example {rows.to_dict('records')}. Fix: correct "
            "the name or the code."
        )

    out = pd.DataFrame(
        {
            "province": by_code.astype("str"),
            "province_code": (merged["province_id"] // 10000).astype("int64"),
            "city_code": merged["city_id"].astype("int64"),
            "city_zh": merged["city"].astype("str"),
            "year": merged["year"].astype("int64"),
            "light": merged[light_column].astype("float64"),
            "population": merged[population_column].astype("float64"),
        }
    )
    if requested_years is not None:
        out = out[out["year"].isin(requested_years)]
        absent = sorted(set(requested_years) - set(out["year"]))
        if absent:
            raise DataError(
                f"{LIGHT_FILE} has no rows for years {absent}. Fix: use the registered file, "
                f"which covers {FIRST_YEAR}-{LAST_YEAR}."
            )
    out = out.sort_values(["province_code", "city_code", "year"], ignore_index=True)
    logger.info(
        "Loaded %s for %d mainland cities, %d-%d.",
        light_column,
        out["city_code"].nunique(),
        out["year"].min(),
        out["year"].max(),
    )
    return out
