"""County-level polycentricity within prefectures and provinces, 2010 and 2020.

Sources (registry datasets, read through :func:`polygvc.data_prep.registry.fetch`):

* ``census_leiii/census_county_2010_v1.xlsx``: the 2010 (sixth) census
  yearbook by county, one sheet. Columns 地区 (name, indented), 区划代码
  (6-digit code, text) and 合计 (resident population). Province rows end in
  ``0000``, prefecture rows in ``00``. Rows without a code are either
  aggregates (市辖区, 县, 省直辖县级行政区划, 自治区直辖县级行政区划), a
  footer line, or real county-level units the yearbook lists without a code
  (the four districts of 大兴安岭地区, 平桂管理区, the three 行委 of 海西州,
  the South China Sea islands).
* ``census_leiii/census_county_2020_v1.xlsx``: the 2020 (seventh) census
  yearbook by county, sheet 七普（年鉴）. Columns 区划代码, 省, 市, 区县 and
  人口数_合计. It lists 45 development zones and other functional areas
  without a code, and one zone (五台山风景名胜区) with the code 170971 whose
  province prefix 17 does not exist (the 省 column gives 山西省, 14).
* ``county2020_tudigong/population.csv``: the 2020 census tabulation by
  county compiled in GitHub thebamboogrove/tudigong, columns ``CODE``,
  ``NAME``, ``POPU``; it gives the development zones codes ``xxxx7x``.

Units
-----
The units are the *leaf* rows: coded rows that no other row lies under, plus
the real units without a code. A prefecture row counts as a unit only when
the source lists nothing under it (东莞, 中山, 儋州 and 嘉峪关 in 2020; 三亚
in 2010). A unit without a code belongs to the prefecture of the coded row
just above it in the sheet (the yearbooks list units under their parent).
Units are grouped by the first four digits of their code, and each group is
a prefecture. The county-level units that a province administers directly
(codes ``xx90xx``: Henan's Jiyuan, Hubei's Xiantao, Qianjiang, Tianmen and
Shennongjia, Hainan's cities and counties, Xinjiang's Corps cities) form the
group ``prefecture_kind == "province_administered"``, which is not a
prefecture and is listed only so that nothing is lost.

In the four municipalities (Beijing, Tianjin, Shanghai, Chongqing) the
districts and counties are the units, and the whole municipality is one
"prefecture" (``prefecture_kind == "municipality"``, code ``xx0100``). The
light data treat each municipality as one unit, so there the panel's
polycentricity is undefined; the county indices here give the municipalities
a value (see :func:`attach_county_polycentricity`).

Development zones (``unit_type == "zone"``) are statistical units with their
own residents, carved out of their host districts; they are kept by default
so that the units add up to the published province totals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from polygvc.data_prep.names import MUNICIPALITIES, province_table, resolve_series
from polygvc.data_prep.polycentricity import add_rank_size_mean, polycentricity_indices
from polygvc.data_prep.registry import fetch
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

CENSUS_DATASET = "census_leiii"
COUNTY_FILES: dict[int, str] = {
    2010: "census_county_2010_v1.xlsx",
    2020: "census_county_2020_v1.xlsx",
}
TUDIGONG_DATASET, TUDIGONG_FILE = "county2020_tudigong", "population.csv"
CENSUS_YEARS: tuple[int, ...] = (2010, 2020)
TOP_N: tuple[int, ...] = (2, 3, 4)

AGGREGATE_NAMES = frozenset(
    {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", "全国"}
)
"""Row names of sums over other rows, never units."""

_ZONE_WORDS = (
    "开发区",
    "园区",
    "产业园",
    "管理区",
    "示范区",
    "新区",
    "保税区",
    "风景名胜区",
    "食品区",
)
_MUNICIPALITY_CODES = frozenset({11, 12, 31, 50})

UNIT_COLUMNS: tuple[str, ...] = (
    "year",
    "province",
    "province_code",
    "prefecture_code",
    "prefecture_zh",
    "prefecture_kind",
    "county_code",
    "county_zh",
    "unit_type",
    "population",
    "code_note",
)


def _unit_type(name: str, code: str | None) -> str:
    if (code is not None and code[4] == "7") or any(w in name for w in _ZONE_WORDS):
        return "zone"
    if name.endswith("区"):
        return "district"
    if name.endswith("市"):
        return "county_city"
    if name.endswith(("县", "旗", "特区", "林区")):
        return "county"
    return "other"


def _check_columns(frame: pd.DataFrame, needed: Sequence[str], path, dataset: str, name: str):
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks the columns {missing} (found {list(frame.columns)[:12]} ...). Fix: "
            f"replace it with the registered version of {dataset}/{name}."
        )


_HEADERS: dict[int, tuple[str, ...]] = {
    2010: ("地区", "区划代码", "合计"),
    2020: ("区划代码", "省", "市", "区县", "人口数_合计"),
}


@lru_cache(maxsize=2)
def _yearbook_cells(year: int) -> tuple[tuple[str, ...], tuple[tuple, ...], str]:
    """Read the first columns of a yearbook sheet (cached: the files take seconds to parse)."""
    import openpyxl

    filename = COUNTY_FILES[year]
    path = fetch(CENSUS_DATASET, filename)
    width = len(_HEADERS[year])
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException
        raise DataError(
            f"{path} could not be opened as an Excel workbook ({exc}). Fix: replace it with "
            f"the registered version of {CENSUS_DATASET}/{filename}."
        ) from exc
    try:
        cells = tuple(book.worksheets[0].iter_rows(max_col=width, values_only=True))
    finally:
        book.close()
    header = tuple(str(c).strip() if c is not None else "" for c in cells[0]) if cells else ()
    return header, cells[1:], str(path)


def _read_yearbook(year: int) -> tuple[pd.DataFrame, str]:
    """Return (name, code, population, province name) rows in sheet order."""
    header, cells, path = _yearbook_cells(year)
    expected = _HEADERS[year]
    if header != expected:
        raise DataError(
            f"{path}: the first columns are {list(header)}, expected {list(expected)}. Fix: "
            f"replace it with the registered version of {CENSUS_DATASET}/{COUNTY_FILES[year]}."
        )
    frame = pd.DataFrame(list(cells), columns=list(expected), dtype=object)
    if year == 2010:
        rows = pd.DataFrame(
            {"name": frame["地区"], "code": frame["区划代码"], "population": frame["合计"]}
        )
        rows["prov"] = None
    else:
        rows = pd.DataFrame(
            {
                "name": frame["区县"],
                "code": frame["区划代码"],
                "population": frame["人口数_合计"],
                "prov": frame["省"],
            }
        )
    rows["name"] = rows["name"].map(lambda v: None if v is None else str(v).strip())
    rows["name"] = rows["name"].astype("string")
    rows["code"] = rows["code"].map(lambda v: None if v is None else str(v).strip())
    rows["code"] = rows["code"].astype("string").replace({"NA": pd.NA, "": pd.NA})
    rows["population"] = pd.to_numeric(rows["population"], errors="coerce")
    bad_code = rows["code"].notna() & ~rows["code"].fillna("").str.fullmatch(r"\d{6}")
    if bad_code.any():
        shown = rows.loc[bad_code, ["name", "code"]].head(5).to_dict("records")
        raise DataError(
            f"{path}: {int(bad_code.sum())} region codes are not 6 digits, for example {shown}. "
            "Fix: use the registered file."
        )
    return rows.reset_index(drop=True), path


def _repair_codes(rows: pd.DataFrame, path) -> pd.DataFrame:
    """Fix a code whose province prefix disagrees with the 省 column (2020 only)."""
    rows = rows.copy()
    rows["code_note"] = ""
    has_prov = rows["prov"].notna() & rows["code"].notna() & (rows["name"] != "全国")
    if not has_prov.any():
        return rows
    named = resolve_series(
        rows.loc[has_prov, "prov"], source=f"{path}, column 省", non_mainland="drop"
    )
    for label, province in named.items():
        code = rows.at[label, "code"]
        expected = f"{province_table().set_index('province').at[province, 'province_code']:02d}"
        if code[:2] != expected:
            fixed = expected + code[2:]
            rows.at[label, "code"] = fixed
            rows.at[label, "code_note"] = f"code {code} corrected to {fixed} (province {province})"
            logger.info(
                "%s: code %s of %s corrected to %s.", path, code, rows.at[label, "name"], fixed
            )
    return rows


def _leaf_units(rows: pd.DataFrame, year: int, path) -> pd.DataFrame:
    """Select the leaf units of a yearbook sheet and attach their prefecture."""
    coded = rows["code"].notna()
    prefix4 = rows["code"].str[:4]
    tail = rows["code"].str[4:]
    is_province = coded & (rows["code"].str[2:] == "0000")
    is_prefecture = coded & (tail == "00") & ~is_province

    # Units without a code take the prefecture of the coded row above them.
    parent = prefix4.where(coded).ffill()
    real_uncoded = (
        ~coded
        & rows["name"].notna()
        & ~rows["name"].isin(AGGREGATE_NAMES)
        & rows["population"].notna()
    )
    dropped = ~coded & rows["name"].notna() & ~rows["name"].isin(AGGREGATE_NAMES) & ~real_uncoded
    if dropped.any():
        logger.info(
            "%s: rows without a code and without population left out: %s.",
            path,
            rows.loc[dropped, "name"].tolist(),
        )

    has_children = set(prefix4[coded & ~is_prefecture & ~is_province]) | set(parent[real_uncoded])
    leaf_prefecture = is_prefecture & ~prefix4.isin(has_children)
    leaf = (coded & ~is_province & ~is_prefecture) | leaf_prefecture | real_uncoded
    names = {
        p: n for p, n in zip(prefix4[is_prefecture], rows.loc[is_prefecture, "name"], strict=True)
    }

    units = rows.loc[leaf].copy()
    units["prefix4"] = parent[leaf]
    missing_pop = units["population"].isna()
    if missing_pop.any():
        logger.info(
            "%s: %d units without population left out: %s.",
            path,
            int(missing_pop.sum()),
            units.loc[missing_pop, ["name", "code"]].to_dict("records")[:10],
        )
        units = units[~missing_pop]
    negative = units["population"] < 0
    if negative.any():
        shown = units.loc[negative, ["name", "code"]].to_dict("records")
        raise DataError(f"{path}: negative population in {shown}. Fix: use the registered file.")
    units["prefecture_zh"] = units["prefix4"].map(names)
    return _finish_units(units, year, str(path))


def _finish_units(units: pd.DataFrame, year: int, source: str) -> pd.DataFrame:
    province_code = units["prefix4"].str[:2].astype("int64")
    provinces = resolve_series(province_code, source=f"{source}, region codes", non_mainland="drop")
    units = units.loc[provinces.index]
    province_code = province_code.loc[provinces.index]
    municipality = province_code.isin(_MUNICIPALITY_CODES)
    administered = units["prefix4"].str[2:] == "90"
    prefecture_code = units["prefix4"].astype("int64") * 100
    prefecture_code = prefecture_code.where(~municipality, province_code * 10000 + 100)
    table = province_table().set_index("province")
    prefecture_zh = units["prefecture_zh"].astype("object")
    prefecture_zh = prefecture_zh.where(~municipality, provinces.map(table["province_zh_full"]))
    prefecture_zh = prefecture_zh.where(~administered, "省直辖县级行政区划")
    kind = np.select(
        [municipality, administered], ["municipality", "province_administered"], "prefecture"
    )
    codes = units["code"]
    out = pd.DataFrame(
        {
            "year": np.full(len(units), year, dtype="int64"),
            "province": provinces.astype("str"),
            "province_code": province_code.astype("int64"),
            "prefecture_code": prefecture_code.astype("int64"),
            "prefecture_zh": prefecture_zh.fillna("").astype("str"),
            "prefecture_kind": pd.Series(kind, index=units.index, dtype="str"),
            "county_code": pd.array(
                [int(c) if isinstance(c, str) else pd.NA for c in codes.tolist()], dtype="Int64"
            ),
            "county_zh": units["name"].astype("str"),
            "unit_type": [
                _unit_type(n, c if isinstance(c, str) else None)
                for n, c in zip(units["name"], codes.tolist(), strict=True)
            ],
            "population": units["population"].astype("float64"),
            "code_note": units.get("code_note", pd.Series("", index=units.index))
            .fillna("")
            .astype("str"),
        }
    )
    out["unit_type"] = out["unit_type"].astype("str")
    return out.sort_values(["province_code", "prefecture_code", "county_code"], ignore_index=True)


def load_county_census(year: int, include_zones: bool = True) -> pd.DataFrame:
    """Load the county-level units and resident population of a census year.

    Parameters
    ----------
    year : {2010, 2020}
        Census year (the leiii yearbook file of that year).
    include_zones : bool, default True
        Keep development zones and other functional areas (units with a
        ``xxxx7x`` code or a zone name). Dropping them removes their
        residents from every total.

    Returns
    -------
    pandas.DataFrame
        One row per county-level unit with the columns of
        :data:`UNIT_COLUMNS`: ``year``, ``province`` (English canonical),
        ``province_code`` (2-digit), ``prefecture_code`` (6-digit,
        ``xxxx00``; ``xx0100`` for a municipality), ``prefecture_zh``,
        ``prefecture_kind`` (``prefecture``, ``municipality`` or
        ``province_administered``), ``county_code`` (6-digit, nullable: <NA>
        for the units listed without a code), ``county_zh``, ``unit_type``
        (``district``, ``county_city``, ``county``, ``zone``, ``other``),
        ``population`` (census residents) and ``code_note`` (a corrected
        code, else empty).

    Raises
    ------
    ConfigError
        ``year`` is not 2010 or 2020.
    DataError
        The file lacks its columns, has malformed codes or negative
        population.
    DataNotFoundError
        The file is neither in the mirror nor downloadable.

    Notes
    -----
    The unit rules are in the module docstring. Hong Kong, Macau and
    Taiwan rows are dropped.
    """
    if year not in COUNTY_FILES:
        raise ConfigError(
            f"year must be one of the census years {sorted(COUNTY_FILES)}, got {year!r}."
        )
    rows, path = _read_yearbook(year)
    rows = _repair_codes(rows, path)
    units = _leaf_units(rows, year, path)
    if not include_zones:
        zones = units["unit_type"] == "zone"
        logger.info(
            "Left out %d development zones with %.0f residents in %d.",
            int(zones.sum()),
            units.loc[zones, "population"].sum(),
            year,
        )
        units = units[~zones].reset_index(drop=True)
    logger.info(
        "Loaded %d county-level units of %d (%d provinces).",
        len(units),
        year,
        units["province"].nunique(),
    )
    return units


def load_county_tudigong() -> pd.DataFrame:
    """Load the 2020 county census population compiled in tudigong.

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`load_county_census` (``year`` 2020;
        ``prefecture_zh`` empty because the file has no prefecture names).

    Raises
    ------
    DataError
        Missing columns, malformed or duplicated codes, negative population.

    Notes
    -----
    Every row of the file is a leaf unit. 金门县 (350527, administered from
    Taiwan) has no population and is left out.
    """
    path = fetch(TUDIGONG_DATASET, TUDIGONG_FILE)
    raw = pd.read_csv(path, encoding="utf-8-sig", dtype={"CODE": "string"})
    _check_columns(raw, ["CODE", "NAME", "POPU"], path, TUDIGONG_DATASET, TUDIGONG_FILE)
    codes = raw["CODE"].str.strip()
    bad = ~codes.fillna("").str.fullmatch(r"\d{6}")
    if bad.any():
        raise DataError(
            f"{path}: column CODE has values that are not 6 digits in rows "
            f"{list(raw.index[bad][:10] + 2)}. Fix: use the registered file."
        )
    duplicated = codes.duplicated(keep=False)
    if duplicated.any():
        raise DataError(
            f"{path}: duplicated CODE {sorted(codes[duplicated].unique().tolist())[:10]}. Fix: use "
            "the registered file."
        )
    units = pd.DataFrame(
        {
            "name": raw["NAME"].astype("str").str.strip(),
            "code": codes,
            "population": pd.to_numeric(raw["POPU"], errors="coerce"),
            "prefix4": codes.str[:4],
            "prefecture_zh": "",
            "code_note": "",
        }
    )
    missing = units["population"].isna()
    if missing.any():
        logger.info(
            "%s: units without population left out: %s.",
            path,
            units.loc[missing, ["name", "code"]].to_dict("records"),
        )
        units = units[~missing]
    if (units["population"] < 0).any():
        raise DataError(f"{path}: negative POPU values. Fix: use the registered file.")
    return _finish_units(units, 2020, str(path))


def county_polycentricity(units: pd.DataFrame, level: str = "prefecture") -> pd.DataFrame:
    """Compute polycentricity of county populations per prefecture or province.

    Parameters
    ----------
    units : pandas.DataFrame
        Units as returned by :func:`load_county_census` (one or more years).
    level : {"prefecture", "province"}, default "prefecture"
        Region whose county units are compared.

    Returns
    -------
    pandas.DataFrame
        One row per region and year with ``year``, ``province``,
        ``province_zh``, ``province_code``, ``region``, (for prefectures)
        ``prefecture_code``, ``prefecture_zh``, ``prefecture_kind``, then
        ``n_units`` (county-level units), ``population`` (their sum), the
        indices of :func:`polygvc.data_prep.polycentricity.polycentricity_indices`
        on county population (``top_n = (2, 3, 4)``),
        ``poly_rank_size_mean`` and ``poly_undefined_reason``, and
        ``is_municipality``. Directions: rank-size slopes closer to 0 and
        higher entropy mean more polycentric; higher primacy, HHI and Gini
        mean more monocentric.

    Raises
    ------
    ConfigError
        Unknown ``level``.
    DataError
        ``units`` lacks a needed column.

    Notes
    -----
    County-level polycentricity is the spread of residents over county
    units, which mixes urban districts and rural counties. It is not the
    same measure as the light-based index over prefecture cities, so the
    two should not be pooled in one variable without standardising each
    (see :func:`attach_county_polycentricity`).
    """
    if level not in ("prefecture", "province"):
        raise ConfigError(f"level must be 'prefecture' or 'province', got {level!r}.")
    keys = ["year", "province", "province_code"]
    if level == "prefecture":
        keys += ["prefecture_code", "prefecture_zh", "prefecture_kind"]
    missing = [c for c in [*keys, "population"] if c not in units.columns]
    if missing:
        raise DataError(
            f"The county units lack columns {missing}. Fix: load them with load_county_census."
        )
    indices = polycentricity_indices(units, keys, "population", top_n=TOP_N)
    indices = add_rank_size_mean(indices)
    totals = units.groupby(keys, as_index=False)["population"].sum()
    indices = indices.merge(totals, on=keys, how="left", validate="one_to_one")
    table = province_table()[["province", "province_zh", "region"]]
    indices = indices.merge(table, on="province", how="left", validate="many_to_one")
    indices["is_municipality"] = indices["province"].isin(MUNICIPALITIES)
    front = ["year", "province", "province_zh", "province_code", "region", *keys[3:]]
    rest = [c for c in indices.columns if c not in front]
    reason = rest.pop(rest.index("poly_undefined_reason"))
    rest.remove("population")
    ordered = [*front, "n_units", "population", *[c for c in rest if c != "n_units"], reason]
    return indices[ordered].sort_values(keys, ignore_index=True)


def county_indices(
    years: Iterable[int] = CENSUS_YEARS, include_zones: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute county-based polycentricity per prefecture and per province.

    Parameters
    ----------
    years : iterable of int, default (2010, 2020)
        Census years.
    include_zones : bool, default True
        See :func:`load_county_census`.

    Returns
    -------
    prefectures, provinces : pandas.DataFrame
        :func:`county_polycentricity` at each level, all years stacked.

    Raises
    ------
    ConfigError
        A year is not a census year.
    DataError
        A source fails validation, or a province has no unit in a year.
    """
    frames = [load_county_census(int(y), include_zones=include_zones) for y in years]
    units = pd.concat(frames, ignore_index=True)
    for year, group in units.groupby("year"):
        absent = sorted(set(province_table()["province"]) - set(group["province"]))
        if absent:
            raise DataError(
                f"The {year} county census has no unit in provinces {absent}. Fix: use the "
                "registered file."
            )
    return county_polycentricity(units, "prefecture"), county_polycentricity(units, "province")


def cross_check_2020() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare the 2020 county populations of the leiii yearbook and tudigong.

    Returns
    -------
    provinces : pandas.DataFrame
        One row per province: ``province``, ``province_code``,
        ``leiii_units``, ``tudigong_units``, ``leiii_total``,
        ``tudigong_total``, ``difference`` (leiii minus tudigong, persons)
        and ``relative_difference`` (difference / tudigong total).
    counties : pandas.DataFrame
        The county units that differ: ``leiii_code``, ``tudigong_code``
        (nullable), ``province``, ``county_zh``, ``leiii_population``,
        ``tudigong_population`` and ``status``: ``different_population``
        (same name, different figure), ``only_leiii``, ``only_tudigong``, or
        ``code_differs`` (same name and figure under another code, or no code
        in the yearbook, as for the 2020 development zones) or
        ``name_differs`` (same code and figure, names written differently;
        ``county_zh`` then shows both as "leiii / tudigong"). Units are
        matched by code first and then by province and name.

    Raises
    ------
    DataError
        A source fails validation.
    """
    leiii = load_county_census(2020)
    tudigong = load_county_tudigong()
    rows = []
    for code, province in province_table()[["province_code", "province"]].itertuples(index=False):
        a = leiii[leiii["province_code"] == code]
        b = tudigong[tudigong["province_code"] == code]
        rows.append(
            {
                "province": province,
                "province_code": int(code),
                "leiii_units": len(a),
                "tudigong_units": len(b),
                "leiii_total": float(a["population"].sum()),
                "tudigong_total": float(b["population"].sum()),
            }
        )
    provinces = pd.DataFrame(rows)
    provinces["difference"] = provinces["leiii_total"] - provinces["tudigong_total"]
    provinces["relative_difference"] = provinces["difference"] / provinces["tudigong_total"]

    counties = _county_mismatches(leiii, tudigong)
    logger.info(
        "2020 cross-check: national totals %.0f (leiii) vs %.0f (tudigong); %d units differ.",
        provinces["leiii_total"].sum(),
        provinces["tudigong_total"].sum(),
        len(counties),
    )
    return provinces, counties


def _county_mismatches(leiii: pd.DataFrame, tudigong: pd.DataFrame) -> pd.DataFrame:
    """List units that differ between the sources: by code first, then by name."""
    columns = ["county_code", "province", "county_zh", "population"]
    merged = leiii[columns].merge(
        tudigong[columns], on="county_code", how="outer", suffixes=("_leiii", "_tudigong")
    )
    same_population = (merged["population_leiii"] == merged["population_tudigong"]).to_numpy()
    same_name = (merged["county_zh_leiii"] == merged["county_zh_tudigong"]).to_numpy()
    renamed = merged[same_population & ~same_name]
    merged = merged[~same_population]
    left = merged[merged["county_zh_leiii"].notna()].rename(
        columns=lambda c: c.replace("_leiii", "") if c.endswith("_leiii") else c
    )[["county_code", "province", "county_zh", "population"]]
    right = merged[merged["county_zh_tudigong"].notna()][
        ["county_code", "province_tudigong", "county_zh_tudigong", "population_tudigong"]
    ].rename(columns=lambda c: c.replace("_tudigong", ""))
    # Second pass: the same unit under another code (or none) in one source.
    by_name = left.merge(
        right, on=["province", "county_zh"], how="outer", suffixes=("_leiii", "_tudigong")
    )
    status = np.select(
        [
            by_name["population_tudigong"].isna().to_numpy(),
            by_name["population_leiii"].isna().to_numpy(),
            (by_name["population_leiii"] != by_name["population_tudigong"]).to_numpy(),
        ],
        ["only_leiii", "only_tudigong", "different_population"],
        "code_differs",
    )
    out = pd.DataFrame(
        {
            "leiii_code": by_name["county_code_leiii"].astype("Int64"),
            "tudigong_code": by_name["county_code_tudigong"].astype("Int64"),
            "province": by_name["province"].astype("str"),
            "county_zh": by_name["county_zh"].astype("str"),
            "leiii_population": by_name["population_leiii"].astype("float64"),
            "tudigong_population": by_name["population_tudigong"].astype("float64"),
            "status": pd.Series(status, index=by_name.index, dtype="str"),
        }
    )
    renamed_rows = pd.DataFrame(
        {
            "leiii_code": renamed["county_code"].astype("Int64"),
            "tudigong_code": renamed["county_code"].astype("Int64"),
            "province": renamed["province_leiii"].astype("str"),
            "county_zh": (
                renamed["county_zh_leiii"] + " / " + renamed["county_zh_tudigong"]
            ).astype("str"),
            "leiii_population": renamed["population_leiii"].astype("float64"),
            "tudigong_population": renamed["population_tudigong"].astype("float64"),
            "status": "name_differs",
        }
    )
    out = pd.concat([out, renamed_rows], ignore_index=True)
    order = {
        "different_population": 0,
        "only_leiii": 1,
        "only_tudigong": 2,
        "name_differs": 3,
        "code_differs": 4,
    }
    out = out.sort_values(
        ["status", "province", "county_zh"], key=lambda s: s.map(order) if s.name == "status" else s
    )
    return out.reset_index(drop=True)


def attach_county_polycentricity(
    panel: pd.DataFrame,
    provinces: pd.DataFrame,
    columns: Sequence[str] = ("poly_entropy_norm", "poly_rank_size_mean"),
    suffix: str = "_county",
) -> pd.DataFrame:
    """Add county-based province indices to a province-year panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Province-year panel with ``province`` and ``year``.
    provinces : pandas.DataFrame
        Province-level output of :func:`county_indices` (years 2010, 2020).
    columns : sequence of str
        Index columns to add.
    suffix : str, default "_county"
        Appended to each column name (``poly_entropy_norm_county``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``panel`` with the new float columns. Years between the
        censuses are interpolated linearly; years before 2010 take the 2010
        value and years after 2020 the 2020 value. The input is not modified.

    Raises
    ------
    DataError
        A column is missing from ``provinces`` or ``panel``.

    Notes
    -----
    This is how the municipalities get a polycentricity value: their
    districts are county units here. A user can (a) use the new column as
    the endogenous variable in a model on all 31 provinces, or (b) keep the
    light-based index and add the county index as a robustness check.
    Because the two measures differ in units and meaning, never fill the
    NaN of the light-based index with the county value in the same column.
    The panel validator accepts the extra columns.
    """
    needed = ["province", "year", *columns]
    missing = [c for c in needed if c not in provinces.columns]
    if missing:
        raise DataError(
            f"The province indices lack columns {missing}. Fix: pass the second frame returned "
            "by county_indices."
        )
    for column in ("province", "year"):
        if column not in panel.columns:
            raise DataError(f"The panel lacks the column {column!r}.")
    out = panel.copy()
    years = out["year"].to_numpy(dtype=float)
    for column in columns:
        wide = provinces.pivot(index="province", columns="year", values=column).sort_index(axis=1)
        census_years = wide.columns.to_numpy(dtype=float)
        values = np.full(len(out), np.nan)
        for province, row in wide.iterrows():
            mask = (out["province"] == province).to_numpy()
            known = np.isfinite(row.to_numpy(dtype=float))
            if known.sum() == 0:
                continue
            values[mask] = np.interp(
                years[mask], census_years[known], row.to_numpy(dtype=float)[known]
            )
        out[f"{column}{suffix}"] = values.astype("float64")
    return out
