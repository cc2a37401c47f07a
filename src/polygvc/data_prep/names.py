"""Canonical names, codes and macro-regions of the 31 mainland provinces.

Every data source spells provinces differently: Chinese short names (北京),
full names (北京市, 内蒙古自治区), English names with or without suffixes
("Inner Mongolia", "Nei Mongol Autonomous Region"), Wade-Giles spellings
("Peking", "Shensi"), 2-digit codes (11) and 6-digit administrative codes
(110000, 110101). This module maps all of them to one key, the English
canonical name used as the ``province`` coordinate everywhere in polygvc.

The macro-regions follow the National Bureau of Statistics four-region
division of 2011 (East, Central, West, Northeast).

Hong Kong, Macau and Taiwan are recognised but are not mainland provinces:
:func:`resolve_province` rejects them, and :func:`resolve_series` rejects or
drops them depending on its ``non_mainland`` flag.
"""

from __future__ import annotations

import difflib
import logging
import numbers
import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from polygvc.errors import DataError

logger = logging.getLogger(__name__)

REGIONS: tuple[str, ...] = ("East", "Central", "West", "Northeast")


@dataclass(frozen=True)
class Province:
    """One mainland province-level unit (province, autonomous region or municipality)."""

    code: int
    name: str
    name_zh: str
    name_zh_full: str
    region: str
    variants: tuple[str, ...] = ()


# Order: ascending administrative code. Variants include Wade-Giles and postal
# spellings, pinyin of the official names and the common English suffixes.
_PROVINCES: tuple[Province, ...] = (
    Province(11, "Beijing", "北京", "北京市", "East", ("Peking", "Pekin", "Peiping")),
    Province(12, "Tianjin", "天津", "天津市", "East", ("Tientsin",)),
    Province(13, "Hebei", "河北", "河北省", "East", ("Hopeh", "Hopei")),
    Province(14, "Shanxi", "山西", "山西省", "Central", ("Shansi",)),
    Province(
        15,
        "Inner Mongolia",
        "内蒙古",
        "内蒙古自治区",
        "West",
        (
            "Nei Mongol",
            "Nei Menggu",
            "Neimenggu",
            "Nei Monggol",
            "Inner Mongolia Autonomous Region",
        ),
    ),
    Province(21, "Liaoning", "辽宁", "辽宁省", "Northeast", ()),
    Province(22, "Jilin", "吉林", "吉林省", "Northeast", ("Kirin",)),
    Province(23, "Heilongjiang", "黑龙江", "黑龙江省", "Northeast", ("Heilungkiang",)),
    Province(31, "Shanghai", "上海", "上海市", "East", ()),
    Province(32, "Jiangsu", "江苏", "江苏省", "East", ("Kiangsu",)),
    Province(33, "Zhejiang", "浙江", "浙江省", "East", ("Chekiang",)),
    Province(34, "Anhui", "安徽", "安徽省", "Central", ("Anhwei",)),
    Province(35, "Fujian", "福建", "福建省", "East", ("Fukien",)),
    Province(36, "Jiangxi", "江西", "江西省", "Central", ("Kiangsi",)),
    Province(37, "Shandong", "山东", "山东省", "East", ("Shantung",)),
    Province(41, "Henan", "河南", "河南省", "Central", ("Honan",)),
    Province(42, "Hubei", "湖北", "湖北省", "Central", ("Hupeh", "Hupei")),
    Province(43, "Hunan", "湖南", "湖南省", "Central", ()),
    Province(44, "Guangdong", "广东", "广东省", "East", ("Kwangtung",)),
    Province(
        45,
        "Guangxi",
        "广西",
        "广西壮族自治区",
        "West",
        ("Kwangsi", "Guangxi Zhuang", "Guangxi Zhuang Autonomous Region"),
    ),
    Province(46, "Hainan", "海南", "海南省", "East", ()),
    Province(50, "Chongqing", "重庆", "重庆市", "West", ("Chungking",)),
    Province(51, "Sichuan", "四川", "四川省", "West", ("Szechwan", "Szechuan")),
    Province(52, "Guizhou", "贵州", "贵州省", "West", ("Kweichow",)),
    Province(53, "Yunnan", "云南", "云南省", "West", ()),
    Province(
        54,
        "Tibet",
        "西藏",
        "西藏自治区",
        "West",
        ("Xizang", "Tibet Autonomous Region", "Xizang Autonomous Region"),
    ),
    Province(61, "Shaanxi", "陕西", "陕西省", "West", ("Shensi", "Sha'anxi")),
    Province(62, "Gansu", "甘肃", "甘肃省", "West", ("Kansu",)),
    Province(63, "Qinghai", "青海", "青海省", "West", ("Tsinghai",)),
    Province(
        64,
        "Ningxia",
        "宁夏",
        "宁夏回族自治区",
        "West",
        ("Ningsia", "Ningxia Hui", "Ningxia Hui Autonomous Region"),
    ),
    Province(
        65,
        "Xinjiang",
        "新疆",
        "新疆维吾尔自治区",
        "West",
        (
            "Sinkiang",
            "Xinjiang Uygur",
            "Xinjiang Uyghur",
            "Xinjiang Uygur Autonomous Region",
            "Xinjiang Uyghur Autonomous Region",
        ),
    ),
)

# Province-level units outside the mainland: code -> (English name, names).
_NON_MAINLAND: dict[int, tuple[str, tuple[str, ...]]] = {
    71: ("Taiwan", ("台湾", "台湾省", "臺灣", "Taiwan Province")),
    81: (
        "Hong Kong",
        ("香港", "香港特别行政区", "Hongkong", "Hong Kong SAR", "Xianggang"),
    ),
    82: ("Macau", ("澳门", "澳门特别行政区", "Macao", "Macau SAR", "Aomen")),
}

PROVINCES: tuple[str, ...] = tuple(p.name for p in _PROVINCES)
MUNICIPALITIES: tuple[str, ...] = ("Beijing", "Tianjin", "Shanghai", "Chongqing")

_BY_NAME: dict[str, Province] = {p.name: p for p in _PROVINCES}
_BY_CODE: dict[int, Province] = {p.code: p for p in _PROVINCES}

# Suffixes dropped when a normalised name is not found as written.
_SUFFIXES: tuple[str, ...] = (
    "specialadministrativeregion",
    "autonomousregion",
    "municipality",
    "province",
    "sar",
    "shi",
    "sheng",
)


def _normalise(text: str) -> str:
    """Lower-case and strip whitespace, hyphens, apostrophes and dots."""
    return re.sub(r"[\s\-'’.·_]+", "", text.strip().lower())


def _build_lookup() -> tuple[dict[str, str], dict[str, str]]:
    mainland: dict[str, str] = {}
    for province in _PROVINCES:
        keys = (province.name, province.name_zh, province.name_zh_full, *province.variants)
        for key in keys:
            mainland[_normalise(key)] = province.name
    other: dict[str, str] = {}
    for name, variants in _NON_MAINLAND.values():
        for key in (name, *variants):
            other[_normalise(key)] = name
    return mainland, other


_MAINLAND_LOOKUP, _NON_MAINLAND_LOOKUP = _build_lookup()


class NonMainlandError(DataError):
    """A name or code refers to Hong Kong, Macau or Taiwan, not a mainland province.

    The attribute ``territory`` is the English name of the territory.
    """

    def __init__(self, message: str, territory: str) -> None:
        super().__init__(message)
        self.territory = territory


def province_table() -> pd.DataFrame:
    """Return the canonical table of the 31 mainland provinces.

    Returns
    -------
    pandas.DataFrame
        One row per province in ascending code order, with columns
        ``province`` (English canonical name), ``province_zh`` (short Chinese
        name, e.g. 北京), ``province_zh_full`` (e.g. 北京市),
        ``province_code`` (2-digit int) and ``region`` (NBS 2011 four-region
        division: East, Central, West, Northeast).
    """
    return pd.DataFrame(
        {
            "province": [p.name for p in _PROVINCES],
            "province_zh": [p.name_zh for p in _PROVINCES],
            "province_zh_full": [p.name_zh_full for p in _PROVINCES],
            "province_code": pd.array([p.code for p in _PROVINCES], dtype="int64"),
            "region": [p.region for p in _PROVINCES],
        }
    )


def _code_from_number(value: int) -> int | None:
    """Return the 2-digit province code of a 2-digit or 6-digit code, else None."""
    if 10 <= value <= 99:
        return value
    if 100000 <= value <= 999999:
        return value // 10000
    return None


def _non_mainland_message(name: str, given: object) -> str:
    return (
        f"{given!r} refers to {name}, which is not one of the 31 mainland provinces "
        "covered by polygvc (Hong Kong, Macau and Taiwan are outside the mainland "
        "statistical system). Fix: drop these rows before resolving, or call "
        "resolve_series(..., non_mainland='drop')."
    )


def _close_matches(text: str) -> list[str]:
    """Return canonical names whose spellings are close to ``text``."""
    keys = list(_MAINLAND_LOOKUP)
    found = difflib.get_close_matches(_normalise(text), keys, n=6, cutoff=0.6)
    names: list[str] = []
    for key in found:
        name = _MAINLAND_LOOKUP[key]
        if name not in names:
            names.append(name)
    return names[:3]


def resolve_province(value: object) -> str:
    """Resolve a province name or code to its English canonical name.

    Parameters
    ----------
    value : str or int
        Chinese short or full name (北京, 北京市, 内蒙古自治区), English name
        or variant, 2-digit province code (11 or "11") or 6-digit
        administrative code of the province or of any unit inside it (110000,
        110101, "440300"). English matching ignores case, spaces, hyphens and
        apostrophes. The suffixes "Province", "Municipality", "Autonomous
        Region", "Shi" and "Sheng" are optional. Integral floats such as
        110000.0 are accepted as codes.

    Returns
    -------
    str
        English canonical name, e.g. ``"Inner Mongolia"``.

    Raises
    ------
    NonMainlandError
        The value refers to Hong Kong, Macau or Taiwan.
    DataError
        The value is missing, not a known name, or a code with an unknown
        province prefix. The message lists close matches.

    Examples
    --------
    >>> resolve_province("内蒙古自治区")
    'Inner Mongolia'
    >>> resolve_province(610000)
    'Shaanxi'
    >>> resolve_province(" shensi ")
    'Shaanxi'
    """
    code: int | None = None
    if isinstance(value, bool) or value is None:
        raise DataError(
            f"Province value {value!r} is not a name or code. Fix: pass a Chinese or "
            "English province name or a 2-digit or 6-digit code."
        )
    if isinstance(value, numbers.Integral):
        code = _code_from_number(int(value))
    elif isinstance(value, numbers.Real):
        if value != value or float(value) != int(value):  # NaN or non-integral
            raise DataError(
                f"Province value {value!r} is missing or not an integer code. Fix: pass a "
                "province name or a 2-digit or 6-digit code."
            )
        code = _code_from_number(int(value))
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            code = _code_from_number(int(text))
            if code is None:
                raise DataError(
                    f"Province code {value!r} has {len(text)} digits. Fix: pass a 2-digit "
                    "province code (e.g. 11) or a 6-digit administrative code (e.g. 110000)."
                )
        else:
            return _resolve_text(value)
    else:
        raise DataError(
            f"Province value {value!r} of type {type(value).__name__} is not a name or code. "
            "Fix: pass a str or int."
        )

    if code is None:
        raise DataError(
            f"Province code {value!r} is neither a 2-digit province code (e.g. 11) nor a "
            "6-digit administrative code (e.g. 110000). Fix: pass one of those forms."
        )
    if code in _BY_CODE:
        return _BY_CODE[code].name
    if code in _NON_MAINLAND:
        territory = _NON_MAINLAND[code][0]
        raise NonMainlandError(_non_mainland_message(territory, value), territory)
    valid = ", ".join(str(c) for c in sorted(_BY_CODE))
    raise DataError(
        f"Province code {value!r} has the province prefix {code}, which is not a mainland "
        f"province. Valid 2-digit codes: {valid}."
    )


def _resolve_text(value: str) -> str:
    key = _normalise(value)
    candidates = [key] + [key[: -len(s)] for s in _SUFFIXES if key.endswith(s) and key != s]
    for candidate in candidates:
        if candidate in _MAINLAND_LOOKUP:
            return _MAINLAND_LOOKUP[candidate]
        if candidate in _NON_MAINLAND_LOOKUP:
            territory = _NON_MAINLAND_LOOKUP[candidate]
            raise NonMainlandError(_non_mainland_message(territory, value), territory)
    matches = _close_matches(value)
    hint = f"Close matches: {', '.join(matches)}." if matches else "No close match was found."
    raise DataError(
        f"Unknown province name {value!r}. {hint} Fix: use an English name such as "
        "'Inner Mongolia', a Chinese name such as 内蒙古 or 内蒙古自治区, or a 2-digit code."
    )


def is_non_mainland(value: object) -> bool:
    """Return True when ``value`` names or codes Hong Kong, Macau or Taiwan."""
    try:
        resolve_province(value)
    except NonMainlandError:
        return True
    except DataError:
        return False
    return False


def resolve_series(
    series: pd.Series,
    source: str,
    non_mainland: Literal["raise", "drop"] = "raise",
) -> pd.Series:
    """Resolve every entry of a Series to English canonical province names.

    Parameters
    ----------
    series : pandas.Series
        Names or codes, in any form accepted by :func:`resolve_province`.
    source : str
        Where the values come from, e.g. ``"sol_by_year_by_class_by_city.csv,
        column province_id"``. Error messages name it.
    non_mainland : {"raise", "drop"}, default "raise"
        What to do with Hong Kong, Macau and Taiwan. ``"raise"`` raises
        :class:`NonMainlandError`. ``"drop"`` removes those entries and logs
        how many were dropped. The returned Series keeps the original index of
        the remaining rows, so callers select rows with
        ``frame.loc[result.index]``.

    Returns
    -------
    pandas.Series
        English canonical names (dtype str), same index as ``series`` except
        for dropped entries.

    Raises
    ------
    DataError
        Some entries are unknown or missing. The message names ``source``, the
        row labels, the values and close matches (first 10 problems).
    NonMainlandError
        ``non_mainland="raise"`` and some entries are Hong Kong, Macau or
        Taiwan. The message names the rows.
    """
    if non_mainland not in ("raise", "drop"):
        raise ValueError(f"non_mainland must be 'raise' or 'drop', got {non_mainland!r}")

    resolved: dict[object, str] = {}
    unknown: dict[object, str] = {}
    outside: dict[object, str] = {}
    for value in pd.unique(series.to_numpy(dtype=object)):
        try:
            resolved[value] = resolve_province(value)
        except NonMainlandError as exc:
            outside[value] = exc.territory
        except DataError as exc:
            unknown[value] = str(exc)

    values = series.to_numpy(dtype=object)
    if unknown:
        rows = [(label, v) for label, v in zip(series.index, values, strict=True) if v in unknown]
        listed = "; ".join(f"row {label}: {v!r} ({_hint(v)})" for label, v in rows[:10])
        more = f" and {len(rows) - 10} more rows" if len(rows) > 10 else ""
        raise DataError(
            f"{source}: {len(rows)} province entries could not be resolved: {listed}{more}. "
            "Fix: correct these names or codes in the source, or map them to one of the 31 "
            "mainland provinces before loading."
        )
    out_mask = pd.Series([v in outside for v in values], index=series.index)
    if out_mask.any():
        rows = series.index[out_mask.to_numpy()]
        names = sorted({outside[v] for v in values if v in outside})
        if non_mainland == "raise":
            shown = ", ".join(str(r) for r in rows[:10])
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            raise NonMainlandError(
                f"{source}: rows {shown}{more} refer to {', '.join(names)}, which are not "
                "mainland provinces. Fix: pass non_mainland='drop' to remove them, or filter "
                "them out before resolving.",
                ", ".join(names),
            )
        logger.info("%s: dropped %d rows of %s (not mainland).", source, len(rows), names)
    kept = series[~out_mask]
    return kept.map(resolved).astype("str")


def _hint(value: object) -> str:
    if isinstance(value, str) and not value.strip().isdigit():
        matches = _close_matches(value)
        return f"close matches: {', '.join(matches)}" if matches else "no close match"
    return "not a mainland province code"


def province_code(name_or_code: object) -> int:
    """Return the 2-digit code of a province given in any accepted form."""
    return _BY_NAME[resolve_province(name_or_code)].code


def province_region(name_or_code: object) -> str:
    """Return the NBS macro-region (East, Central, West, Northeast) of a province."""
    return _BY_NAME[resolve_province(name_or_code)].region


def province_name_zh(name_or_code: object) -> str:
    """Return the short Chinese name (e.g. 北京) of a province."""
    return _BY_NAME[resolve_province(name_or_code)].name_zh
