"""Tests for polygvc.data_prep.infrastructure on the registered real data."""

from __future__ import annotations

import os

import pytest

from polygvc.data_prep import infrastructure
from polygvc.errors import ConfigError

needs_data = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the real-data mirror is not available",
)

YEARS = range(2001, 2021)


@pytest.fixture(scope="module")
def table():
    return infrastructure.province_infrastructure(YEARS)


@needs_data
def test_covers_provinces_and_years(table):
    assert table["province_code"].nunique() == 31, table["province_code"].nunique()
    assert len(table) == 31 * len(YEARS), len(table)
    assert table.notna().all().all(), table[table.isna().any(axis=1)]


@needs_data
def test_hsr_share_monotone(table):
    for code, group in table.groupby("province_code"):
        steps = group.sort_values("year")["hsr_city_share"].diff().dropna()
        assert (steps >= 0).all(), f"province {code}: shares {group['hsr_city_share'].tolist()}"
    assert table["hsr_city_share"].between(0, 1).all(), table["hsr_city_share"].describe()


@needs_data
def test_no_hsr_before_qinshen(table):
    early = table[table["year"] < 2003]
    assert (early["hsr_cities"] == 0).all(), early[early["hsr_cities"] > 0]


@needs_data
def test_beijing_tianjin_by_2008(table):
    rows = table[(table["year"] == 2008) & table["province_code"].isin([11, 12])]
    assert (rows["hsr_city_share"] == 1.0).all(), rows.to_string()


@needs_data
def test_qinshen_opens_2003(table):
    first = infrastructure.hsr_first_year().set_index("city_code")["hsr_first_year"]
    for code in (130300, 210700, 210100):  # Qinhuangdao, Jinzhou, Shenyang
        assert first[code] == 2003, f"{code}: {first.get(code)}"


@needs_data
def test_highways_carried_forward(table):
    late = table[table["year"] > 2017]
    assert late["highway_carried_forward"].all(), "years after 2017 must be flagged"
    assert not table.loc[table["year"] <= 2017, "highway_carried_forward"].any()
    y2017 = table[table["year"] == 2017].set_index("province_code")["highway_segments"]
    y2020 = table[table["year"] == 2020].set_index("province_code")["highway_segments"]
    assert (y2017 == y2020).all(), (y2020 - y2017)[y2017 != y2020]


@needs_data
def test_highways_monotone_positive(table):
    for code, group in table.groupby("province_code"):
        steps = group.sort_values("year")["highway_segments"].diff().dropna()
        assert (steps >= 0).all(), f"province {code}: {group['highway_segments'].tolist()}"
    y2017 = table[table["year"] == 2017]
    assert (y2017["highway_segments"] > 0).all(), y2017[y2017["highway_segments"] == 0]


@needs_data
def test_match_reports_account_for_everything():
    stations = infrastructure.hsr_match_report()
    placed_share = stations["city_code"].notna().mean()
    assert placed_share > 0.95, f"HSR names placed: {placed_share:.3f}"
    segments = infrastructure.highway_match_report()
    assert len(segments) == 1572, len(segments)
    assert set(segments["status"]) <= {"placed", "partly placed", "unplaced"}, set(
        segments["status"]
    )
    placed = (segments["status"] != "unplaced").mean()
    assert placed > 0.9, f"highway segments placed: {placed:.3f}"


@needs_data
def test_resolver_names():
    resolver = infrastructure.place_resolver()
    cases = {
        "济南西": 370100,  # direction suffix stripped after the exact name fails
        "济南": 370100,  # 南 is part of the name
        "上海虹桥": 310100,  # longest known prefix
        "婺源": 361100,  # county in Shangrao
        "黔江": 500100,  # Chongqing district
        "汉口": 420100,  # alias
    }
    for name, expected in cases.items():
        match = resolver.resolve(name)
        assert match.city_code == expected, f"{name}: {match}"
    assert resolver.resolve("惠安堡").city_code is None, "town must not match Hui'an county"


def test_years_validation():
    with pytest.raises(ConfigError, match="years is empty"):
        infrastructure.province_infrastructure([])
    with pytest.raises(ConfigError, match="must be integers"):
        infrastructure.province_infrastructure(["twenty"])
