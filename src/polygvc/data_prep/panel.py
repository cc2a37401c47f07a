"""Build, validate and write the province-year analysis panel.

The panel has one row per mainland province (31) and year. Its columns and
types are the panel contract of ``ARCHITECTURE.md`` and are listed in
:data:`PANEL_COLUMNS`. Every source is joined onto a complete
province x year skeleton, so a join can leave values missing but never drops
a province. Each missing value is either structural (outcomes exist only in
the survey years 1997, 2002 and 2007, ``dvar_exports`` only in 2007) or
explained in ``excluded_reason`` with a plain sentence.

Sources: city night-time light (:mod:`polygvc.data_prep.light`), the
Wu, Li and Lei (2016) outcomes (:mod:`polygvc.data_prep.outcome`), census
population and the 2000 rank-size instrument (:mod:`polygvc.data_prep.census`),
prefecture geography and terrain (:mod:`polygvc.data_prep.geography`) and
transport infrastructure (:mod:`polygvc.data_prep.infrastructure`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polygvc.atomic import atomic_path
from polygvc.data_prep import census, light, outcome
from polygvc.data_prep.names import MUNICIPALITIES, PROVINCES, REGIONS, province_table
from polygvc.data_prep.polycentricity import polycentricity_indices
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

TOP_N: tuple[int, ...] = (2, 3, 4)
POLY_COLUMNS: tuple[str, ...] = (
    *(f"poly_rank_size_top{k}" for k in TOP_N),
    "poly_rank_size_all",
    "poly_primacy",
    "poly_hhi_norm",
    "poly_entropy_norm",
)

# Column -> kind ("str", "int" or "float"), in contract order.
PANEL_COLUMNS: dict[str, str] = {
    "province": "str",
    "province_zh": "str",
    "province_code": "int",
    "region": "str",
    "year": "int",
    "n_cities": "int",
    **dict.fromkeys(POLY_COLUMNS, "float"),
    "vae_gdp_pct": "float",
    "dvar_exports": "float",
    "mean_distance_km": "float",
    "hsr_city_share": "float",
    "highway_segments": "float",
    "ruggedness": "float",
    "elev_sd": "float",
    "coast_distance_km": "float",
    "hist_poly_2000": "float",
    "log_population": "float",
    "excluded_reason": "str",
}

# Outcome columns are observed only in these years; NaN elsewhere is structural.
OUTCOME_YEARS: dict[str, tuple[int, ...]] = {
    "vae_gdp_pct": (1997, 2002, 2007),
    "dvar_exports": (2007,),
}

_SHARE_COLUMNS = ("poly_primacy", "poly_hhi_norm", "poly_entropy_norm", "hsr_city_share")
_SLOPE_COLUMNS = (*(c for c in POLY_COLUMNS if c.startswith("poly_rank_size")), "hist_poly_2000")
_NON_NEGATIVE_COLUMNS = (
    "n_cities",
    "mean_distance_km",
    "coast_distance_km",
    "ruggedness",
    "elev_sd",
    "highway_segments",
    "vae_gdp_pct",
    "dvar_exports",
)


class _Reasons:
    """Sentences explaining missing values, collected per panel row."""

    def __init__(self, index: pd.Index) -> None:
        self._parts: dict[object, list[str]] = {label: [] for label in index}

    def add_rows(
        self, panel: pd.DataFrame, mask: pd.Series, sentence: Callable[[pd.Series], str]
    ) -> None:
        """Append ``sentence(row)`` to every row where ``mask`` is True, once per text."""
        for label in mask.index[mask.to_numpy()]:
            text = sentence(panel.loc[label])
            if text not in self._parts[label]:
                self._parts[label].append(text)

    def to_series(self, index: pd.Index) -> pd.Series:
        return pd.Series(
            [" ".join(self._parts[label]) for label in index], index=index, dtype="str"
        )


def _check_years(years: Iterable[int]) -> list[int]:
    try:
        values = sorted({int(y) for y in years})
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"years must be integers, got {years!r}. Fix: e.g. range(2001, 2021)."
        ) from exc
    if not values:
        raise ConfigError("years is empty. Fix: pass at least one year, e.g. range(2001, 2021).")
    return values


def _skeleton(years: list[int]) -> pd.DataFrame:
    table = province_table()
    table = table.drop(columns="province_zh_full")
    return table.merge(pd.DataFrame({"year": pd.array(years, dtype="int64")}), how="cross")


def _with_province(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a source's 2-digit ``province_code`` values against the canonical table."""
    if "province_code" not in frame.columns:
        raise DataError(
            f"{source} returned no province_code column (columns: {list(frame.columns)}). Fix: "
            "return one row per province with its 2-digit province_code."
        )
    codes = pd.to_numeric(frame["province_code"], errors="coerce")
    known = set(province_table()["province_code"])
    unknown = sorted({c for c in codes.tolist() if c not in known}, key=str)
    if unknown:
        raise DataError(
            f"{source} returned province codes {unknown} that are not mainland 2-digit codes. "
            "Fix: map them to the 31 mainland provinces (e.g. 110000 -> 11) or drop them."
        )
    out = frame.copy()
    out["province_code"] = codes.astype("int64")
    return out


def _join(
    panel: pd.DataFrame,
    right: pd.DataFrame,
    on: list[str],
    columns: list[str],
    source: str,
) -> tuple[pd.DataFrame, pd.Series]:
    """Left-join ``columns`` of ``right`` onto the panel, checking keys and coverage.

    Returns the joined panel and a boolean Series, True for panel rows that
    found no row in ``right``.
    """
    missing = [c for c in [*on, *columns] if c not in right.columns]
    if missing:
        raise DataError(
            f"{source} lacks columns {missing} (columns: {list(right.columns)}). Fix: return "
            "the documented columns."
        )
    right = right[[*on, *columns]]
    duplicated = right.duplicated(on, keep=False)
    if duplicated.any():
        rows = right.loc[duplicated, on].head(5).to_dict("records")
        raise DataError(
            f"{source} has {int(duplicated.sum())} rows with duplicated keys {on}, for example "
            f"{rows}. Fix: return one row per key."
        )
    before = len(panel)
    joined = panel.merge(right.assign(_matched=True), on=on, how="left", validate="many_to_one")
    provinces_after = set(joined["province"])
    if len(joined) != before or provinces_after != set(PROVINCES):
        lost = sorted(set(PROVINCES) - provinces_after)
        raise DataError(
            f"Joining {source} changed the panel from {before} to {len(joined)} rows (provinces "
            f"lost: {lost}). Fix: check the keys {on} of {source}."
        )
    unmatched = joined["_matched"].isna()
    joined = joined.drop(columns="_matched")
    if unmatched.any():
        matched_provinces = set(joined.loc[~unmatched, "province"])
        absent = sorted(set(PROVINCES) - matched_provinces)
        logger.info(
            "%s matches no row for %d panel rows; provinces absent from it: %s.",
            source,
            int(unmatched.sum()),
            absent,
        )
    return joined, unmatched


def _poly_sentence(row: pd.Series) -> str:
    if row["province"] in MUNICIPALITIES and row["n_cities"] == 1:
        return (
            f"{row['province']} is a municipality with one unit in the city light data, so "
            "prefecture-level polycentricity indices are undefined."
        )
    if row["n_cities"] == 0:
        return f"{row['province']} has no city light data in {row['year']}."
    return f"Polycentricity indices are undefined in {row['year']}: {row['_poly_reason']}."


# Plain descriptions of panel columns for the sentences in ``excluded_reason``,
# which reports and policy briefs show to readers who do not know the code.
_COLUMN_DESCRIPTIONS = {
    "mean_distance_km": "the mean distance between prefecture cities, which needs two or "
    "more prefecture-level units",
    "popweighted_distance_km": "the population-weighted distance between prefecture cities",
    "ruggedness": "terrain ruggedness",
    "elev_sd": "the dispersion of elevation",
    "coast_distance_km": "the distance to the coast",
    "hsr_city_share": "the share of cities on high-speed rail",
    "highway_segments": "the count of open highway segments",
    "log_population": "census population",
}


def _missing_sentence(column: str, source: str, per_year: bool) -> Callable[[pd.Series], str]:
    description = _COLUMN_DESCRIPTIONS.get(column, f"the value from {source}")

    def sentence(row: pd.Series) -> str:
        when = f" in {row['year']}" if per_year else ""
        return f"{column} ({description}) is not available for {row['province']}{when}."

    return sentence


def build_province_panel(
    years: Iterable[int] = range(2001, 2021),
    light_column: str = "total_sol",
) -> pd.DataFrame:
    """Build the province-year panel of polycentricity, GVC outcomes and controls.

    Parameters
    ----------
    years : iterable of int, default range(2001, 2021)
        Panel years, within the light data's 2001-2020.
    light_column : {"total_sol", "urban_sol", "agriculture_sol"}, default "total_sol"
        Light measure whose distribution over prefecture cities defines the
        polycentricity indices.

    Returns
    -------
    pandas.DataFrame
        One row per mainland province and year (31 x len(years)), sorted by
        ``province_code`` and ``year``, with exactly the columns of
        :data:`PANEL_COLUMNS` (the panel contract in ``ARCHITECTURE.md``).
        Directions: rank-size slopes closer to 0 and higher entropy mean more
        polycentric; higher primacy and HHI mean more monocentric.

    Raises
    ------
    ConfigError
        ``years`` or ``light_column`` is invalid.
    DataError
        A source fails validation, or a join would lose or duplicate rows.
    DataNotFoundError
        A source file is not in the mirror and cannot be downloaded.

    Notes
    -----
    Polycentricity indices are computed over the city units of the light data
    per province-year (:func:`polygvc.data_prep.polycentricity.polycentricity_indices`).
    The four municipalities are one unit each there, so their indices are NaN
    and ``excluded_reason`` states why. Tibet has no outcome because Wu, Li and
    Lei (2016) do not cover it. ``hist_poly_2000`` is NaN where the
    Ma and Tang (2024) prefecture list has fewer than two prefectures
    (municipalities, Qinghai, Tibet). Any other missing value gets its own
    sentence in ``excluded_reason``, so an empty reason means the row has
    every column (outcomes in their survey years).
    """
    year_list = _check_years(years)
    # Imported here so that the rest of data_prep works while these modules are absent.
    from polygvc.data_prep import geography, infrastructure

    panel = _skeleton(year_list)
    reasons = _Reasons(panel.index)

    # Polycentricity of city light.
    # NOTE: the light units include county-level units directly under a province
    # (15 of Hainan's 19 units, 11 Xinjiang Corps cities, 4 in Hubei, 1 in Henan),
    # so n_cities and the indices there mix prefecture- and county-level units.
    cities = light.load_city_light(light_column=light_column, years=year_list)
    poly = polycentricity_indices(cities, ["province", "year"], "light", top_n=TOP_N)
    poly = poly.rename(columns={"n_units": "n_cities", "poly_undefined_reason": "_poly_reason"})
    panel, _ = _join(
        panel,
        poly,
        ["province", "year"],
        ["n_cities", *POLY_COLUMNS, "_poly_reason"],
        f"city light ({light.LIGHT_FILE}, {light_column})",
    )
    panel["n_cities"] = panel["n_cities"].fillna(0).astype("int64")
    panel["_poly_reason"] = panel["_poly_reason"].fillna("no city light data")
    reasons.add_rows(panel, panel["_poly_reason"] != "", _poly_sentence)

    # Outcomes: structural NaN outside the survey years.
    outcomes = outcome.province_outcomes()
    panel, _ = _join(
        panel,
        outcomes,
        ["province", "year"],
        ["vae_gdp_pct", "dvar_exports"],
        "Wu, Li and Lei (2016) outcomes",
    )
    covered = set(outcomes["province"])
    not_covered = ~panel["province"].isin(covered)
    reasons.add_rows(
        panel,
        not_covered,
        lambda row: (
            f"{row['province']} is not covered by Wu, Li and Lei (2016), so it has no GVC outcome."
        ),
    )
    for column, survey_years in OUTCOME_YEARS.items():
        gap = panel[column].isna() & panel["year"].isin(survey_years) & ~not_covered
        reasons.add_rows(panel, gap, _missing_sentence(column, "Wu, Li and Lei (2016)", True))

    # Time-invariant geography and instruments, keyed by province code.
    centroids = geography.prefecture_centroids()
    invariant_sources = [
        (
            geography.province_mean_distance(centroids),
            ["mean_distance_km"],
            "geography.province_mean_distance",
        ),
        (geography.province_terrain(), ["ruggedness", "elev_sd"], "geography.province_terrain"),
        (
            geography.province_coast_distance(),
            ["coast_distance_km"],
            "geography.province_coast_distance",
        ),
    ]
    for frame, columns, source in invariant_sources:
        panel, _ = _join(panel, _with_province(frame, source), ["province_code"], columns, source)
        for column in columns:
            reasons.add_rows(panel, panel[column].isna(), _missing_sentence(column, source, False))

    historical = census.historical_polycentricity()
    panel, _ = _join(
        panel,
        historical.rename(columns={"hist_poly_reason": "_hist_reason"}),
        ["province_code"],
        ["hist_poly_2000", "_hist_reason"],
        "census.historical_polycentricity",
    )
    reasons.add_rows(
        panel,
        panel["hist_poly_2000"].isna(),
        lambda row: (
            "The 2000 rank-size instrument hist_poly_2000 is undefined: "
            f"{row['_hist_reason'] or 'no value'}."
        ),
    )

    # Time-varying controls.
    infra = _with_province(
        infrastructure.province_infrastructure(year_list), "infrastructure.province_infrastructure"
    )
    panel, _ = _join(
        panel,
        infra,
        ["province_code", "year"],
        ["hsr_city_share", "highway_segments"],
        "infrastructure.province_infrastructure",
    )
    population = census.province_population(year_list)
    panel, _ = _join(
        panel, population, ["province", "year"], ["log_population"], "census.province_population"
    )
    for column, source in (
        ("hsr_city_share", "infrastructure.province_infrastructure"),
        ("highway_segments", "infrastructure.province_infrastructure"),
        ("log_population", "census.province_population"),
    ):
        reasons.add_rows(panel, panel[column].isna(), _missing_sentence(column, source, True))

    panel["excluded_reason"] = reasons.to_series(panel.index)
    panel = panel.sort_values(["province_code", "year"], ignore_index=True)
    panel = _coerce(panel[list(PANEL_COLUMNS)])
    validate_panel(panel)
    flagged = panel.loc[panel["excluded_reason"] != "", "province"].unique().tolist()
    logger.info(
        "Built panel: %d provinces x %d years; rows with an excluded_reason in %s.",
        panel["province"].nunique(),
        len(year_list),
        flagged,
    )
    return panel


def _coerce(panel: pd.DataFrame) -> pd.DataFrame:
    out = panel.copy()
    for column, kind in PANEL_COLUMNS.items():
        if kind == "str":
            out[column] = out[column].astype("str")
        elif kind == "int":
            out[column] = out[column].astype("int64")
        else:
            out[column] = pd.to_numeric(out[column]).astype("float64")
    return out


def _describe_rows(df: pd.DataFrame, mask: pd.Series, column: str, limit: int = 5) -> str:
    rows = df.loc[mask]
    parts = []
    for label, row in rows.head(limit).iterrows():
        where = f"row {label}"
        if "province" in df.columns and "year" in df.columns:
            where += f" ({row['province']}, {row['year']})"
        parts.append(f"{where}: {row[column]!r}")
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return "; ".join(parts) + more


def validate_panel(df: pd.DataFrame) -> None:
    """Check a province-year panel against the panel contract.

    Parameters
    ----------
    df : pandas.DataFrame
        A panel as returned by :func:`build_province_panel`.

    Raises
    ------
    DataError
        On the first failing check, naming the column, the rows (index,
        province and year), the values and the fix. Checks in order: every
        contract column present; types (str, int64, float64); no
        duplicated (province, year) keys; every year contains all 31 mainland
        provinces; ``province_zh``, ``province_code`` and ``region`` agree
        with the canonical table; no infinite values; shares in [0, 1]
        (primacy, HHI, entropy, ``hsr_city_share``); rank-size slopes at most
        0 (``poly_rank_size_*``, ``hist_poly_2000``); non-negative counts,
        distances, terrain, outcomes; missing values only where structural
        (outcomes outside their survey years) or explained by a non-empty
        ``excluded_reason``.

    Notes
    -----
    Extra columns are allowed and not checked.
    """
    missing = [c for c in PANEL_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"Panel lacks columns {missing}. Fix: build it with build_province_panel or add "
            "these columns (see PANEL_COLUMNS)."
        )

    for column, kind in PANEL_COLUMNS.items():
        dtype = df[column].dtype
        ok = {
            "str": pd.api.types.is_string_dtype(dtype),
            "int": pd.api.types.is_integer_dtype(dtype),
            "float": pd.api.types.is_float_dtype(dtype),
        }[kind]
        if not ok:
            raise DataError(
                f"Panel column {column!r} has dtype {dtype}, expected {kind}. Fix: convert it, "
                f"e.g. df[{column!r}].astype({'str' if kind == 'str' else kind + '64'!r})."
            )
    null_keys = df[["province", "year", "excluded_reason"]].isna().any(axis=1)
    if null_keys.any():
        raise DataError(
            f"Panel has missing province, year or excluded_reason in rows "
            f"{list(df.index[null_keys][:10])}. Fix: fill excluded_reason with '' and drop rows "
            "without a key."
        )

    duplicated = df.duplicated(["province", "year"], keep=False)
    if duplicated.any():
        raise DataError(
            f"Panel has duplicated (province, year) keys: "
            f"{_describe_rows(df, duplicated, 'province')}. Fix: keep one row per province-year."
        )
    unknown = ~df["province"].isin(PROVINCES)
    if unknown.any():
        raise DataError(
            f"Panel column 'province' contains names that are not canonical: "
            f"{_describe_rows(df, unknown, 'province')}. Fix: map them with "
            "polygvc.data_prep.names.resolve_series."
        )
    for year, group in df.groupby("year"):
        absent = sorted(set(PROVINCES) - set(group["province"]))
        if absent:
            raise DataError(
                f"Panel year {year} lacks provinces {absent}. Fix: keep all 31 provinces in every "
                "year and explain missing values in excluded_reason."
            )

    table = province_table().set_index("province")
    for column, reference in (
        ("province_zh", "province_zh"),
        ("province_code", "province_code"),
        ("region", "region"),
    ):
        expected = df["province"].map(table[reference])
        wrong = df[column] != expected
        if wrong.any():
            raise DataError(
                f"Panel column {column!r} disagrees with the canonical table: "
                f"{_describe_rows(df, wrong, column)}. Fix: take {column} from "
                "polygvc.data_prep.names.province_table()."
            )
    bad_region = ~df["region"].isin(REGIONS)
    if bad_region.any():
        raise DataError(
            f"Panel column 'region' contains {_describe_rows(df, bad_region, 'region')}; valid: "
            f"{', '.join(REGIONS)}."
        )

    float_columns = [c for c, kind in PANEL_COLUMNS.items() if kind == "float"]
    for column in float_columns:
        infinite = np.isinf(df[column].to_numpy(dtype=float))
        if infinite.any():
            raise DataError(
                f"Panel column {column!r} contains infinite values: "
                f"{_describe_rows(df, pd.Series(infinite, index=df.index), column)}. Fix: "
                "correct the source or set them to NaN with an excluded_reason."
            )
    _check_range(df, _SHARE_COLUMNS, lambda v: (v >= 0) & (v <= 1), "a share in [0, 1]")
    _check_range(df, _SLOPE_COLUMNS, lambda v: v <= 0, "a rank-size slope of at most 0")
    _check_range(df, _NON_NEGATIVE_COLUMNS, lambda v: v >= 0, "non-negative")
    _check_range(df, ("vae_gdp_pct",), lambda v: v <= 100, "a percentage of at most 100")

    has_reason = df["excluded_reason"] != ""
    for column in float_columns:
        missing_values = df[column].isna()
        if column in OUTCOME_YEARS:
            missing_values &= df["year"].isin(OUTCOME_YEARS[column])
            off_year = df[column].notna() & ~df["year"].isin(OUTCOME_YEARS[column])
            if off_year.any():
                raise DataError(
                    f"Panel column {column!r} has values outside its survey years "
                    f"{OUTCOME_YEARS[column]}: {_describe_rows(df, off_year, column)}. Fix: set "
                    "them to NaN; Wu, Li and Lei (2016) report no other years."
                )
        unexplained = missing_values & ~has_reason
        if unexplained.any():
            raise DataError(
                f"Panel column {column!r} is missing without an excluded_reason in "
                f"{_describe_rows(df, unexplained, column)}. Fix: supply the value or state why "
                "it is missing in excluded_reason."
            )


def _check_range(
    df: pd.DataFrame,
    columns: Iterable[str],
    condition: Callable[[pd.Series], pd.Series],
    description: str,
) -> None:
    for column in columns:
        values = df[column]
        bad = values.notna() & ~condition(values)
        if bad.any():
            raise DataError(
                f"Panel column {column!r} must be {description}, but contains "
                f"{_describe_rows(df, bad, column)}. Fix: correct the source of {column}."
            )


_SOURCE_CHECKS: dict[str, tuple[str, ...]] = {
    "light": ("n_cities",),
    "polycentricity": POLY_COLUMNS,
    "outcome": ("vae_gdp_pct",),
    "geography": ("mean_distance_km", "ruggedness", "elev_sd", "coast_distance_km"),
    "infrastructure": ("hsr_city_share", "highway_segments"),
    "census_population": ("log_population",),
    "hist_instrument": ("hist_poly_2000",),
}


def panel_join_report(df: pd.DataFrame) -> pd.DataFrame:
    """Report which sources each province has in a panel.

    Parameters
    ----------
    df : pandas.DataFrame
        A panel as returned by :func:`build_province_panel`.

    Returns
    -------
    pandas.DataFrame
        One row per province in the panel (ascending code) with columns
        ``province``, ``province_code``, ``n_years`` and one boolean per
        source: ``light`` (at least one city in every year),
        ``polycentricity`` (every index in every year), ``outcome`` (a
        ``vae_gdp_pct`` value in at least one survey year), ``geography``,
        ``infrastructure``, ``census_population`` and ``hist_instrument``
        (every value present in every year), and ``excluded_reason`` (the
        distinct reasons, joined).
    """
    rows = []
    for (code, province), group in df.groupby(["province_code", "province"], sort=True):
        row: dict[str, object] = {
            "province": province,
            "province_code": int(code),
            "n_years": int(group["year"].nunique()),
        }
        for source, columns in _SOURCE_CHECKS.items():
            present = group[list(columns)]
            if source == "light":
                row[source] = bool((group["n_cities"] > 0).all())
            elif source == "outcome":
                row[source] = bool(present.notna().to_numpy().any())
            else:
                row[source] = bool(present.notna().to_numpy().all())
        reasons = [r for r in dict.fromkeys(group["excluded_reason"]) if r]
        row["excluded_reason"] = " | ".join(reasons)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["province"] = out["province"].astype("str")
    out["excluded_reason"] = out["excluded_reason"].astype("str")
    return out


def write_panel(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Validate a panel and write it to Parquet atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        A panel as returned by :func:`build_province_panel`.
    path : str or path-like
        Target file; its folder is created if needed.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    DataError
        The panel fails :func:`validate_panel`; nothing is written.
    """
    validate_panel(df)
    target = Path(path)
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False)
    logger.info("Wrote panel (%d rows) to %s.", len(df), target)
    return target


def read_panel_file(path: str | os.PathLike[str], **options) -> pd.DataFrame:
    """Read and check a user's province-year panel file (CSV, Parquet or Excel).

    Parameters
    ----------
    path : str or path-like
        The panel file (``data.panel`` of the config).
    **options
        ``unit``, ``time``, ``group``, ``sheet``, ``encoding`` and
        ``header_rows``, passed to :func:`polygvc.data_prep.readers.read_panel_file`.

    Returns
    -------
    pandas.DataFrame
        The checked panel; see :func:`polygvc.data_prep.readers.read_panel_file`.

    Raises
    ------
    DataError
        The file cannot be read or fails the panel checks; the message names
        the file, column, rows and values.
    """
    from polygvc.data_prep.readers import read_panel_file as _read

    return _read(path, **options)


def panel_from_config(data_section: Any) -> pd.DataFrame:
    """Build the real province panel or read the user's panel file, following ``[data]``.

    Used by ``polygvc run`` and by the pre-flight checks of ``polygvc check``,
    so both read a user's panel with the same column names, sheet and
    encoding.

    Parameters
    ----------
    data_section : polygvc.config.DataConfig
        The ``[data]`` section: ``source``, ``years`` and ``light_column``
        for the built panel; ``panel``, ``unit``, ``time``, ``group``,
        ``sheet``, ``encoding`` and ``header_rows`` for a panel file.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        The panel file is missing, cannot be read or fails the panel checks.
    """
    if data_section.source == "china_provinces":
        first, last = data_section.years
        panel = build_province_panel(
            years=range(first, last + 1), light_column=data_section.light_column
        )
        validate_panel(panel)
        return panel
    path = Path(data_section.panel)
    if not path.is_file():
        raise DataError(
            f"Panel file {path} (data.panel) was not found. Fix: correct the path; relative "
            "paths are read from the config file's folder."
        )
    return read_panel_file(
        path,
        unit=data_section.unit,
        time=data_section.time,
        group=data_section.group,
        sheet=data_section.sheet,
        encoding=data_section.encoding,
        header_rows=data_section.header_rows,
    )
