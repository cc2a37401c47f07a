"""Messy but valid files read correctly: Chinese encodings, BOMs, yearbook sheets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polygvc import pipeline
from polygvc.config import parse_config
from polygvc.data_prep.readers import read_panel_file, read_table
from polygvc.errors import DataError

from .factory import small_panel


def _chinese_panel(rng) -> pd.DataFrame:
    frame = small_panel(rng, provinces=("北京", "广东", "内蒙古自治区", "黑龙江"))
    return frame.rename(columns={"province": "省份", "year": "年份"})


def _via_pipeline(path):
    config = parse_config({"data": {"source": "panel_file", "panel": str(path)}})
    return pipeline.build_panel(config)


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_encoded_csv_reads(tmp_path, rng, encoding):
    frame = _chinese_panel(rng)
    path = tmp_path / "panel.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    panel = _via_pipeline(path)
    assert panel["province"].unique().tolist() == [
        "Beijing",
        "Inner Mongolia",
        "Heilongjiang",
        "Guangdong",
    ]
    assert panel["province_as_written"].iloc[0] == "北京"
    np.testing.assert_allclose(panel.sort_index()["y"].to_numpy(), frame["y"].to_numpy())


def test_utf8_bom_csv_reads(tmp_path, rng):
    frame = small_panel(rng)
    path = tmp_path / "panel.csv"
    path.write_bytes(frame.to_csv(index=False).encode("utf-8-sig"))
    panel = _via_pipeline(path)
    assert "province" in panel.columns
    assert len(panel) == len(frame)
    assert panel["region"].isna().sum() == 0


def test_tab_separated_with_dash_markers(tmp_path, rng):
    frame = small_panel(rng).astype({"w": "object"})
    frame.loc[1, "w"] = "—"
    path = tmp_path / "panel.txt"
    path.write_text(frame.to_csv(index=False, sep="\t"), encoding="utf-8")
    panel = read_panel_file(path)
    assert pd.isna(panel.loc[3, "w"])
    assert panel["w"].dtype == "float64"


def test_wrong_encoding_override(tmp_path, rng):
    path = tmp_path / "panel.csv"
    path.write_bytes(_chinese_panel(rng).to_csv(index=False).encode("gbk"))
    with pytest.raises(DataError, match=r"is not valid utf-8 text: byte 2") as info:
        read_table(path, encoding="utf-8")
    assert "give the file's real encoding" in str(info.value)


def _yearbook(path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "表3-1"
    sheet.append(["表3-1 各地区夜间灯光与人口", None, None, None, None])
    sheet.merge_cells("A1:E1")
    sheet.append(["地区", "年份", "夜间灯光", None, "人口"])
    sheet.merge_cells("A2:A3")
    sheet.merge_cells("B2:B3")
    sheet.merge_cells("C2:D2")
    sheet.merge_cells("E2:E3")
    sheet.append([None, None, "总量", "城市", None])
    sheet.append(["北京", 2002, 1.5, 1.0, 1385])
    sheet.append(["上海", "2002年", 2.5, "—", 1625])
    sheet.append(["湖北", 2002, 3.5, 2.0, 5988])
    sheet.append(["注：—表示无数据。", None, None, None, None])
    workbook.save(path)


def test_excel_merged_header_reads(tmp_path):
    path = tmp_path / "yearbook.xlsx"
    _yearbook(path)
    panel = _via_pipeline(path)
    assert list(panel.columns[:5]) == ["province", "year", "夜间灯光_总量", "夜间灯光_城市", "人口"]
    assert panel["province"].tolist() == ["Beijing", "Shanghai", "Hubei"]
    assert panel["year"].tolist() == [2002, 2002, 2002]
    assert panel.index.tolist() == [4, 5, 6]  # rows as numbered in the sheet
    assert pd.isna(panel.loc[5, "夜间灯光_城市"])


def test_excel_negative_light_names_sheet_row(tmp_path):
    import openpyxl

    path = tmp_path / "yearbook.xlsx"
    _yearbook(path)
    workbook = openpyxl.load_workbook(path)
    workbook.active["C6"] = -2.0
    workbook.save(path)
    with pytest.raises(DataError, match=r"column '夜间灯光_总量', must not be negative") as info:
        read_panel_file(path)
    assert "row 6: -2.0" in str(info.value)


def test_excel_unknown_sheet(tmp_path):
    path = tmp_path / "yearbook.xlsx"
    _yearbook(path)
    with pytest.raises(DataError, match=r"has no sheet '表3-2'\. Did you mean '表3-1'\?"):
        read_table(path, sheet="表3-2")
