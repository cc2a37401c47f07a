"""Province name resolution: every accepted form, rejections and messages."""

from __future__ import annotations

import pandas as pd
import pytest

from polygvc.data_prep.names import (
    MUNICIPALITIES,
    PROVINCES,
    REGIONS,
    NonMainlandError,
    is_non_mainland,
    province_code,
    province_region,
    province_table,
    resolve_province,
    resolve_series,
)
from polygvc.errors import DataError

TABLE = province_table()


def test_table_has_31_provinces():
    assert len(TABLE) == 31
    assert TABLE["province"].is_unique
    assert TABLE["province_code"].is_unique
    assert tuple(TABLE["province"]) == PROVINCES


def test_region_sizes():
    counts = TABLE["region"].value_counts().to_dict()
    assert counts == {"East": 10, "Central": 6, "West": 12, "Northeast": 3}
    assert set(TABLE["region"]) == set(REGIONS)


@pytest.mark.parametrize(
    ("province", "region"),
    [
        ("Hainan", "East"),
        ("Shanxi", "Central"),
        ("Inner Mongolia", "West"),
        ("Guangxi", "West"),
        ("Chongqing", "West"),
        ("Liaoning", "Northeast"),
    ],
)
def test_region_of_border_cases(province, region):
    assert province_region(province) == region


@pytest.mark.parametrize("column", ["province", "province_zh", "province_zh_full"])
def test_every_name_form_resolves(column):
    for value, expected in zip(TABLE[column], TABLE["province"], strict=True):
        assert resolve_province(value) == expected, value


def test_every_code_form_resolves():
    for code, expected in zip(TABLE["province_code"], TABLE["province"], strict=True):
        code = int(code)
        assert resolve_province(code) == expected
        assert resolve_province(str(code)) == expected
        assert resolve_province(code * 10000) == expected
        assert resolve_province(str(code * 10000)) == expected
        assert resolve_province(code * 10000 + 101) == expected
        assert resolve_province(float(code * 10000)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Peking", "Beijing"),
        ("  beijing  ", "Beijing"),
        ("BEIJING MUNICIPALITY", "Beijing"),
        ("Beijing Shi", "Beijing"),
        ("Nei Mongol", "Inner Mongolia"),
        ("inner-mongolia", "Inner Mongolia"),
        ("Inner Mongolia Autonomous Region", "Inner Mongolia"),
        ("Xizang", "Tibet"),
        ("Tibet Autonomous Region", "Tibet"),
        ("Shensi", "Shaanxi"),
        ("Sha'anxi", "Shaanxi"),
        ("Shansi", "Shanxi"),
        ("Shanxi Province", "Shanxi"),
        ("Guangxi Zhuang Autonomous Region", "Guangxi"),
        ("Ningxia Hui", "Ningxia"),
        ("Xinjiang Uyghur Autonomous Region", "Xinjiang"),
        ("Szechwan", "Sichuan"),
        ("Kwangtung", "Guangdong"),
        ("内蒙古", "Inner Mongolia"),
        ("新疆维吾尔自治区", "Xinjiang"),
        ("440300", "Guangdong"),
        (659001, "Xinjiang"),
    ],
)
def test_variants(value, expected):
    assert resolve_province(value) == expected


def test_shanxi_and_shaanxi_distinct():
    assert resolve_province("Shanxi") == "Shanxi"
    assert resolve_province("Shaanxi") == "Shaanxi"
    assert province_code("Shanxi") == 14
    assert province_code("Shaanxi") == 61


def test_unknown_name_lists_close_matches():
    with pytest.raises(
        DataError, match=r"Unknown province name 'Shanxii'\. Close matches: Shanxi, Shaanxi"
    ):
        resolve_province("Shanxii")


def test_unknown_name_without_match():
    with pytest.raises(DataError, match="No close match was found"):
        resolve_province("Atlantis")


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (99, "province prefix 99, which is not a mainland province"),
        (1234, "neither a 2-digit province code"),
        ("1234", "has 4 digits"),
        (None, "is not a name or code"),
        (float("nan"), "missing or not an integer code"),
    ],
)
def test_invalid_codes(value, pattern):
    with pytest.raises(DataError, match=pattern):
        resolve_province(value)


@pytest.mark.parametrize(
    ("value", "territory"),
    [
        ("Hong Kong", "Hong Kong"),
        ("香港特别行政区", "Hong Kong"),
        (810000, "Hong Kong"),
        ("Macao", "Macau"),
        ("澳门", "Macau"),
        ("台湾省", "Taiwan"),
        (71, "Taiwan"),
    ],
)
def test_non_mainland_rejected(value, territory):
    with pytest.raises(
        NonMainlandError, match=f"refers to {territory}, which is not one of the 31"
    ):
        resolve_province(value)
    assert is_non_mainland(value)


def test_mainland_is_not_non_mainland():
    assert not is_non_mainland("Beijing")
    assert not is_non_mainland("Atlantis")


def test_municipalities():
    assert set(MUNICIPALITIES) == {"Beijing", "Tianjin", "Shanghai", "Chongqing"}


def test_series_resolves_mixed_forms():
    series = pd.Series(["北京市", 310000, "Xizang", "62"], index=[10, 11, 12, 13])
    out = resolve_series(series, source="test.csv, column province")
    assert out.tolist() == ["Beijing", "Shanghai", "Tibet", "Gansu"]
    assert out.index.tolist() == [10, 11, 12, 13]


def test_series_error_names_source_and_rows():
    series = pd.Series(["Hubei", "Hubay", "Hubei", "Zz"])
    with pytest.raises(DataError, match=r"prov\.csv, column name: 2 province entries") as info:
        resolve_series(series, source="prov.csv, column name")
    message = str(info.value)
    assert "row 1: 'Hubay' (close matches: Hunan, Hubei)" in message
    assert "row 3: 'Zz' (no close match)" in message


def test_series_non_mainland_raise():
    series = pd.Series(["Beijing", "香港", 820000])
    with pytest.raises(NonMainlandError, match=r"x\.csv: rows 1, 2 refer to Hong Kong, Macau"):
        resolve_series(series, source="x.csv")


def test_series_non_mainland_drop():
    series = pd.Series(["Beijing", "香港", 820000, "台湾省", "Hebei"])
    out = resolve_series(series, source="x.csv", non_mainland="drop")
    assert out.tolist() == ["Beijing", "Hebei"]
    assert out.index.tolist() == [0, 4]
