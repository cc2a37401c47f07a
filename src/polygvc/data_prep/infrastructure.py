"""High-speed rail and highway exposure per province and year.

Sources (read through :func:`polygvc.data_prep.registry.fetch`):

* ``railway_lines_vis/network.json``: about 250 railway lines with service class
  (普速铁路 conventional, 快速铁路 fast, 高速铁路 high-speed), current design speed,
  opening date and the main cities on the route (RailwayVIS, Peking University
  student project, 2021; compiled from Wikipedia and cnrail.geogv.org).
* ``transport_ma_tang/seg_info_road.csv`` and ``seg_year_road.csv``: road
  segments with construction years, 1988-2018 (Ma and Tang 2024, "The
  Distributional Impacts of Transportation Networks in China", Journal of
  International Economics 148, 103873).
* Gazetteers to place station and road-endpoint names: the census prefecture
  names (:mod:`polygvc.data_prep.geography`), ``geo_from_packages/cpca_adcodes.csv``
  (12-digit administrative codes with coordinates, cpca 0.5.5) and
  ``geo_from_packages/pyecharts_city_coordinates.json`` (pyecharts 2.1.0).

Places are resolved to the census analysis units of
:func:`polygvc.data_prep.geography.analysis_units`. Every load is cached
in-process; public functions return copies.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely

from polygvc.data_prep import geography
from polygvc.data_prep.registry import fetch
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

HSR_MIN_SPEED_KMH = 200
"""Lines of another service class count as high-speed rail from this design speed."""

HSR_FIRST_YEAR = 2003
"""Opening year of the Qinhuangdao-Shenyang passenger line, China's first line
built for 200 km/h and more. Non-高速 lines opened earlier that now run at
200 km/h reached that speed through later upgrades (the 2007 speed-up), and the
data hold only their original opening date, so they are not counted."""

HIGHWAY_LAST_YEAR = 2017
"""Last year of the Ma-Tang road panel; later years repeat its counts."""

PLACE_ALIASES = {
    "汉口": "武汉",  # Hankou station, Wuhan
    "华山": "渭南",  # Huashan station in Huayin, Weinan
    "青城山": "成都",  # Qingchengshan station in Dujiangyan, Chengdu
    "宋城路": "开封",  # Songchenglu station, Kaifeng
    "毫州": "亳州",  # misspelling in the Ma-Tang road notes
    "棉阳": "绵阳",  # misspelling in the Ma-Tang road notes
}
"""Station names that are not administrative units, and misspelt names in the
source notes, mapped to their prefecture."""

HIGHWAY_MAX_ENDPOINT_KM = 600.0
"""A lower-tier match (county, coordinates, prefix) this far from the other
endpoint of a highway segment is rejected as a homonym."""

_RAIL = ("railway_lines_vis", "network.json")
_ROAD_INFO = ("transport_ma_tang", "seg_info_road.csv")
_ROAD_YEAR = ("transport_ma_tang", "seg_year_road.csv")
_CPCA = ("geo_from_packages", "cpca_adcodes.csv")
_PYECHARTS = ("geo_from_packages", "pyecharts_city_coordinates.json")

_ADMIN_SUFFIXES = (
    "特别行政区", "自治县", "自治旗", "自治州", "林区", "地区", "新区", "矿区",
    "市", "县", "区", "旗", "盟",
)  # fmt: skip
_DIRECTIONS = "东西南北"
_MUNICIPALITIES = (11, 12, 31, 50)
_NEAREST_LIMIT_KM = 60.0
_ENDPOINT_SEPARATORS = re.compile(r"到|至|—|－|-|~|、")
_PARENTHESES = re.compile(r"[（(].*$")


# ---------------------------------------------------------------------------
# Gazetteer
# ---------------------------------------------------------------------------


def _short_name(name: str) -> str:
    """Strip one administrative suffix when at least two characters remain."""
    for suffix in _ADMIN_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class PlaceMatch:
    """Outcome of resolving one place name."""

    name: str
    city_code: int | None
    method: str
    """``prefecture``, ``county``, ``coordinates``, ``alias``, ``prefix``,
    ``ambiguous``, ``too far`` or ``unmatched``."""


class PlaceResolver:
    """Resolve Chinese place and station names to census analysis units.

    Parameters
    ----------
    units : pandas.DataFrame
        :func:`~polygvc.data_prep.geography.analysis_units` rows.
    polygons : geopandas.GeoDataFrame
        :func:`~polygvc.data_prep.geography.prefecture_polygons` rows.
    counties : pandas.DataFrame
        ``adcode`` (12-digit str), ``name``, ``longitude``, ``latitude``.
    coordinates : dict
        Place name -> ``[lon, lat]``.

    Notes
    -----
    A name is tried as given, then without an administrative suffix, then
    without a trailing 站 or direction character
    (东, 西, 南, 北: 济南西 -> 济南, while 济南 itself matches first). Each variant
    is looked up, in order, among (1) prefecture names, full or without the
    suffix (市, 地区, 盟, 自治州 ...) or as the unique prefix of one full name;
    (2) county-level names in cpca, full or short, mapped to their prefecture by
    code prefix (the county code itself for units directly under a province,
    the whole city for the four municipalities), or by the cpca coordinates when
    the code is out of date; (3) pyecharts coordinates, placed by
    point-in-polygon, else the nearest unit centroid within 60 km. Some
    pyecharts entries appear to be in degrees.minutes, so they can be off by up
    to about 0.4 degrees, which is why they come last. A name matching several
    units takes the one nearest to ``context`` (the other places on the same
    line or segment), else it is reported as ambiguous. The last resort is the
    longest known name that starts the text and leaves at least two more
    characters (上海虹桥 -> 上海, 哈尔滨环线 -> 哈尔滨, but not 惠安堡 -> 惠安).
    """

    def __init__(self, units, polygons, counties, coordinates):
        self._units = units.set_index("city_code")
        unit_codes = set(self._units.index)
        self._prefecture = {}
        for code, name in zip(units["city_code"], units["city_zh"], strict=True):
            self._prefecture[name] = code
            self._prefecture.setdefault(_short_name(name), code)
        self._full_names = list(zip(units["city_zh"], units["city_code"], strict=True))

        kept = polygons[polygons["city_code"].isin(unit_codes)].reset_index(drop=True)
        self._polygon_codes = kept["city_code"].to_numpy()
        self._tree = shapely.STRtree(kept.geometry.values)

        # Units without a 2010 population (Corps cities, Sansha) resolve to the
        # analysis unit nearest to their centroid, which is the host prefecture.
        for row in polygons[~polygons["city_code"].isin(unit_codes)].itertuples():
            nearest = self._tree.query_nearest(row.geometry.centroid, all_matches=False)
            host = int(self._polygon_codes[nearest[0]])
            self._prefecture.setdefault(row.city_zh, host)
            self._prefecture.setdefault(_short_name(row.city_zh), host)

        self._county: dict[str, set[int]] = {}
        for adcode, name, lon, lat in counties[
            ["adcode", "name", "longitude", "latitude"]
        ].itertuples(index=False):
            if adcode[4:6] == "00":
                continue
            code = self._unit_from_adcode(adcode, unit_codes)
            if code is None:
                code = self._unit_at(lon, lat)
            if code is None:
                continue
            for key in {name, _short_name(name)}:
                self._county.setdefault(key, set()).add(code)

        self._coordinates: dict[str, set[int]] = {}
        for name, lonlat in coordinates.items():
            code = self._unit_at(*lonlat[:2])
            if code is None:
                continue
            for key in {name, _short_name(name)}:
                self._coordinates.setdefault(key, set()).add(code)
        self._known = sorted(set(self._prefecture) | set(self._county), key=len, reverse=True)

    @staticmethod
    def _unit_from_adcode(adcode: str, unit_codes: set[int]) -> int | None:
        province = int(adcode[:2])
        if province in _MUNICIPALITIES:
            return province * 10000 + 100
        for candidate in (int(adcode[:6]), int(adcode[:4]) * 100):
            if candidate in unit_codes:
                return candidate
        return None

    def _unit_at(self, lon: float, lat: float) -> int | None:
        if not (np.isfinite(lon) and np.isfinite(lat)):
            return None
        point = shapely.Point(lon, lat)
        hits = self._tree.query(point, predicate="intersects")
        if hits.size:
            return int(self._polygon_codes[hits[0]])
        distances = geography.great_circle_km(
            lon, lat, self._units["lon"].to_numpy(), self._units["lat"].to_numpy()
        )
        best = int(np.argmin(distances))
        return int(self._units.index[best]) if distances[best] <= _NEAREST_LIMIT_KM else None

    def location(self, code: int) -> tuple[float, float]:
        """Return the centroid (lon, lat) of an analysis unit."""
        row = self._units.loc[code]
        return float(row["lon"]), float(row["lat"])

    def _pick(self, codes: set[int], context) -> int | None:
        if len(codes) == 1:
            return next(iter(codes))
        if context is None:
            return None
        ordered = sorted(codes)
        lon = [self.location(c)[0] for c in ordered]
        lat = [self.location(c)[1] for c in ordered]
        return ordered[int(np.argmin(geography.great_circle_km(context[0], context[1], lon, lat)))]

    def _variants(self, name: str) -> list[str]:
        variants = [name]
        if _short_name(name) != name:
            variants.append(_short_name(name))  # 垫江区 -> 垫江, listed as 垫江县
        if name.endswith("站") and len(name) >= 3:
            variants.append(name[:-1])
        if variants[-1][-1] in _DIRECTIONS and len(variants[-1]) >= 3:
            variants.append(variants[-1][:-1])
        return variants

    def resolve(self, raw: str, context: tuple[float, float] | None = None) -> PlaceMatch:
        """Resolve one name; ``context`` is a (lon, lat) to break ties."""
        name = _PARENTHESES.sub("", str(raw)).strip()
        if not name:
            return PlaceMatch(str(raw), None, "unmatched")
        if name in PLACE_ALIASES:
            return PlaceMatch(raw, self._prefecture[PLACE_ALIASES[name]], "alias")
        ambiguous = False
        for variant in self._variants(name):
            if variant in self._prefecture:
                return PlaceMatch(raw, self._prefecture[variant], "prefecture")
            prefixed = {
                code
                for full, code in self._full_names
                if len(variant) >= 2 and full.startswith(variant)
            }
            if len(prefixed) == 1:
                return PlaceMatch(raw, prefixed.pop(), "prefecture")
            for table, method in ((self._county, "county"), (self._coordinates, "coordinates")):
                if variant in table:
                    code = self._pick(table[variant], context)
                    if code is not None:
                        return PlaceMatch(raw, code, method)
                    ambiguous = True
        if ambiguous:
            return PlaceMatch(raw, None, "ambiguous")
        for known in self._known:
            # A one-character remainder is usually part of another place name
            # (惠安堡 is a town in Ningxia, not Hui'an county in Fujian).
            if len(known) >= 2 and len(name) - len(known) >= 2 and name.startswith(known):
                codes = (
                    {self._prefecture[known]} if known in self._prefecture else self._county[known]
                )
                code = self._pick(codes, context)
                if code is not None:
                    return PlaceMatch(raw, code, "prefix")
        return PlaceMatch(raw, None, "unmatched")

    def resolve_group(self, names: Iterable[str], max_km: float | None = None) -> list[PlaceMatch]:
        """Resolve names that belong together, using the group's centre for ties.

        With ``max_km``, a county, coordinate or prefix match farther than
        ``max_km`` from every other placed name is rejected (method ``too far``),
        because it is most likely a homonym elsewhere in China.
        """
        names = list(names)
        matches = [self.resolve(n) for n in names]
        placed = [self.location(m.city_code) for m in matches if m.city_code is not None]
        if placed and not all(m.city_code is not None for m in matches):
            context = (
                float(np.mean([p[0] for p in placed])),
                float(np.mean([p[1] for p in placed])),
            )
            matches = [
                m if m.city_code is not None else self.resolve(n, context)
                for n, m in zip(names, matches, strict=True)
            ]
        if max_km is None or len(matches) < 2:
            return matches
        checked = []
        for i, match in enumerate(matches):
            others = [
                self.location(m.city_code)
                for j, m in enumerate(matches)
                if j != i and m.city_code is not None
            ]
            if match.method in ("county", "coordinates", "prefix") and others:
                lon, lat = self.location(match.city_code)
                gaps = geography.great_circle_km(
                    lon, lat, [o[0] for o in others], [o[1] for o in others]
                )
                if np.min(gaps) > max_km:
                    match = PlaceMatch(match.name, None, "too far")
            checked.append(match)
        return checked


@lru_cache(maxsize=1)
def place_resolver() -> PlaceResolver:
    """Build the cached :class:`PlaceResolver` from the registered gazetteers."""
    counties = pd.read_csv(fetch(*_CPCA), dtype={"adcode": str})
    missing = {"adcode", "name", "longitude", "latitude"} - set(counties.columns)
    if missing:
        raise DataError(
            f"cpca_adcodes.csv lacks columns {sorted(missing)}; fetch the registered file again."
        )
    with open(fetch(*_PYECHARTS), encoding="utf-8") as handle:
        coordinates = json.load(handle)
    return PlaceResolver(
        geography.analysis_units(), geography.prefecture_polygons(), counties, coordinates
    )


# ---------------------------------------------------------------------------
# High-speed rail
# ---------------------------------------------------------------------------


def _opening_year(date: str, line: str) -> int:
    match = re.match(r"^\s*(\d{4})", str(date))
    if match is None:
        raise DataError(
            f"network.json: line {line!r} has opening date {date!r}, "
            "expected 'YYYY' or 'YYYY.M[.D]'. "
            "Fix: correct the date in the mirror copy or fetch the registered file again."
        )
    return int(match.group(1))


def _is_hsr(service: str, speed: str, year: int) -> bool:
    if service == "高速铁路":
        return True
    try:
        speed_kmh = float(speed)
    except (TypeError, ValueError):
        return False
    return speed_kmh >= HSR_MIN_SPEED_KMH and year >= HSR_FIRST_YEAR


@lru_cache(maxsize=1)
def _hsr_matches() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (lines, station names) for the high-speed lines."""
    with open(fetch(*_RAIL), encoding="utf-8") as handle:
        network = json.load(handle)
    resolver = place_resolver()
    line_rows, name_rows = [], []
    for line, info in network.items():
        year = _opening_year(info.get("date", ""), line)
        if not _is_hsr(info.get("service"), info.get("speed"), year):
            continue
        names = list(
            dict.fromkeys([info.get("start", ""), *info.get("route", []), info.get("end", "")])
        )
        names = [n for n in names if n]
        line_rows.append(
            {"line": line, "service": info.get("service"), "speed": info.get("speed"), "year": year}
        )
        for match in resolver.resolve_group(names):
            name_rows.append(
                {
                    "line": line,
                    "year": year,
                    "name": match.name,
                    "city_code": match.city_code,
                    "method": match.method,
                }
            )
    names = pd.DataFrame(name_rows)
    names["city_code"] = names["city_code"].astype("Int64")
    unmatched = sorted(set(names.loc[names["city_code"].isna(), "name"]))
    logger.info(
        "HSR: %d lines, %d distinct station names, %d unmatched: %s",
        len(line_rows),
        names["name"].nunique(),
        len(unmatched),
        ", ".join(unmatched) or "none",
    )
    return pd.DataFrame(line_rows), names


def hsr_match_report() -> pd.DataFrame:
    """List how each station name on a high-speed line was placed.

    Returns
    -------
    pandas.DataFrame
        One row per distinct name: ``name``, ``city_code`` (NA when not placed),
        ``province_code``, ``method`` (see :class:`PlaceMatch`), ``lines``
        (the lines naming it, joined by ``;``) and ``first_year``.
    """
    _, names = _hsr_matches()
    report = (
        names.groupby(["name", "city_code", "method"], dropna=False)
        .agg(lines=("line", lambda s: ";".join(sorted(set(s)))), first_year=("year", "min"))
        .reset_index()
    )
    report.insert(2, "province_code", (report["city_code"] // 10000).astype("Int64"))
    return report.sort_values(["method", "name"]).reset_index(drop=True)


def hsr_first_year() -> pd.DataFrame:
    """Find the first year each analysis unit is on an open high-speed line.

    Returns
    -------
    pandas.DataFrame
        ``city_code``, ``province_code``, ``hsr_first_year`` for the units named
        on at least one high-speed line.

    Notes
    -----
    A line counts as high-speed when its service class is 高速铁路, or when its
    design speed is at least 200 km/h and it opened in 2003 or later
    (``HSR_FIRST_YEAR``). The year is the earliest opening year over the
    high-speed lines whose start, end or route names the unit. The route lists
    only major stations, so small cities passed without a listed stop are missed.
    """
    _, names = _hsr_matches()
    placed = names.dropna(subset=["city_code"])
    first = placed.groupby("city_code")["year"].min().rename("hsr_first_year").reset_index()
    first["city_code"] = first["city_code"].astype(int)
    first.insert(1, "province_code", first["city_code"] // 10000)
    return first


# ---------------------------------------------------------------------------
# Highways
# ---------------------------------------------------------------------------


def _split_endpoints(text: str, resolver: PlaceResolver) -> list[str]:
    text = _PARENTHESES.sub("", text).strip()
    if not text:
        return []
    parts = [p.strip() for p in _ENDPOINT_SEPARATORS.split(text) if p.strip()]
    if len(parts) > 1:
        return parts
    if resolver.resolve(text).city_code is not None and resolver.resolve(text).method != "prefix":
        return [text]
    # Two names written together, e.g. 龙岩漳平 or 宣城铜陵.
    for cut in range(2, len(text) - 1):
        head, tail = resolver.resolve(text[:cut]), resolver.resolve(text[cut:])
        if head.method not in ("prefix", "unmatched", "ambiguous") and tail.city_code is not None:
            return [text[:cut], text[cut:]]
    return [text]


@lru_cache(maxsize=1)
def _highway_segments() -> pd.DataFrame:
    info = pd.read_csv(fetch(*_ROAD_INFO))
    years = pd.read_csv(fetch(*_ROAD_YEAR))
    needed = {"seg_id", "rate", "year", "path_name", "notes"}
    if needed - set(info.columns):
        raise DataError(f"seg_info_road.csv lacks columns {sorted(needed - set(info.columns))}.")
    type_columns = [c for c in years.columns if c.startswith("year_type_")]
    values = set(pd.unique(years[type_columns].to_numpy().ravel()))
    if values != {"both"}:
        # NOTE: the registered file has 'both' in every cell, so opening is read from
        # the construction year. A new version with 'none' cells needs a review here.
        logger.warning(
            "seg_year_road.csv contains year types %s; only 'year' is used for opening.",
            sorted(values),
        )

    resolver = place_resolver()
    rows = []
    for segment in info.itertuples(index=False):
        text = (
            segment.notes
            if isinstance(segment.notes, str) and segment.notes.strip()
            else segment.path_name
        )
        text = text if isinstance(text, str) else ""
        endpoints = (
            _split_endpoints(text.replace("高速公路", "").replace("高速", ""), resolver)
            if text
            else []
        )
        matches = resolver.resolve_group(endpoints, max_km=HIGHWAY_MAX_ENDPOINT_KM)
        provinces = sorted({m.city_code // 10000 for m in matches if m.city_code is not None})
        placed = sum(m.city_code is not None for m in matches)
        status = (
            "unplaced"
            if not provinces
            else ("placed" if placed == len(matches) else "partly placed")
        )
        rows.append(
            {
                "seg_id": segment.seg_id,
                "rate": segment.rate,
                "year": int(segment.year),
                "text": text,
                "endpoints": "|".join(endpoints),
                "cities": "|".join(
                    str(m.city_code) if m.city_code is not None else "?" for m in matches
                ),
                "methods": "|".join(m.method for m in matches),
                "provinces": provinces,
                "status": status,
            }
        )
    frame = pd.DataFrame(rows)
    highway = frame[frame["rate"] == "highway"]
    counts = highway["status"].value_counts()
    logger.info(
        "Highways: %d segments; placed %d, partly placed %d, unplaced %d; %d first-rate roads "
        "have no place names and are not counted.",
        len(highway),
        counts.get("placed", 0),
        counts.get("partly placed", 0),
        counts.get("unplaced", 0),
        int((frame["rate"] != "highway").sum()),
    )
    return frame


def highway_match_report() -> pd.DataFrame:
    """List how each highway segment was placed in provinces.

    Returns
    -------
    pandas.DataFrame
        One row per highway segment: ``seg_id``, ``year`` (construction year),
        ``text`` (the endpoint note), ``endpoints``, ``cities`` (``?`` where an
        endpoint was not placed), ``methods`` (per endpoint, see
        :class:`PlaceMatch`), ``provinces`` and ``status`` (``placed``,
        ``partly placed`` or ``unplaced``).
    """
    frame = _highway_segments()
    return frame[frame["rate"] == "highway"].drop(columns="rate").reset_index(drop=True).copy()


# ---------------------------------------------------------------------------
# Province-year table
# ---------------------------------------------------------------------------


def _validate_years(years) -> list[int]:
    try:
        values = sorted({int(y) for y in years})
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"years must be integers, got {years!r} ({exc}). Fix: pass e.g. range(2001, 2021)."
        ) from exc
    if not values:
        raise ConfigError("years is empty. Fix: pass at least one year, e.g. range(2001, 2021).")
    if values[0] < 1949 or values[-1] > 2100:
        raise ConfigError(f"years must lie in 1949-2100, got {values[0]}-{values[-1]}.")
    return values


def province_infrastructure(years: Iterable[int] = range(2001, 2021)) -> pd.DataFrame:
    """Tabulate high-speed rail and highway exposure per province and year.

    Parameters
    ----------
    years : iterable of int, default 2001-2020
        Calendar years to tabulate.

    Returns
    -------
    pandas.DataFrame
        One row per mainland province (31) and year: ``province_code``,
        ``year``, ``hsr_city_share`` (``hsr_cities / n_prefectures``, in [0, 1];
        higher = more of the province's cities on high-speed rail),
        ``hsr_cities``, ``n_prefectures``, ``highway_segments`` (highway
        segments open by the end of the year that touch the province) and
        ``highway_carried_forward`` (True for years after 2017, whose counts
        repeat 2017).

    Raises
    ------
    ConfigError
        ``years`` is empty or not integers.
    DataError
        An input file cannot be read or has an unexpected layout.

    Notes
    -----
    HSR: a unit is connected from the first year in :func:`hsr_first_year`,
    ``n_prefectures`` counts the analysis units, so the share is the fraction
    of prefecture-level units served. Openings after mid-2020 are not in the
    line list.

    Highways: the Ma-Tang year-type panel is ``both`` for every segment and
    year, so it carries no opening information. A segment is open in year
    ``t`` when its construction year ``year <= t``. A segment is counted once
    in each province holding one of its placed endpoints, so a segment crossing
    a border counts in both provinces. Unplaced segments are not counted in any
    province; :func:`highway_match_report` lists them. First-rate roads carry no
    place names and are left out.
    """
    values = _validate_years(years)
    units = geography.analysis_units()
    n_units = units.groupby("province_code").size()
    first = hsr_first_year()

    segments = _highway_segments()
    highway = segments[(segments["rate"] == "highway") & (segments["status"] != "unplaced")]
    exploded = (
        highway[["seg_id", "year", "provinces"]]
        .explode("provinces")
        .rename(columns={"provinces": "province_code"})
    )

    rows = []
    for code in sorted(n_units.index):
        hsr_years = first.loc[first["province_code"] == code, "hsr_first_year"].to_numpy()
        road_years = exploded.loc[exploded["province_code"] == code, "year"].to_numpy()
        for year in values:
            road_year = min(year, HIGHWAY_LAST_YEAR)
            connected = int(np.sum(hsr_years <= year))
            rows.append(
                {
                    "province_code": int(code),
                    "year": year,
                    "hsr_city_share": connected / int(n_units[code]),
                    "hsr_cities": connected,
                    "n_prefectures": int(n_units[code]),
                    "highway_segments": int(np.sum(road_years <= road_year)),
                    "highway_carried_forward": year > HIGHWAY_LAST_YEAR,
                }
            )
    return pd.DataFrame(rows)
