"""Bad panel files through ``polygvc run``: each is rejected before sampling with a clear message.

Every case writes a small file into ``tmp_path``, runs the CLI in-process with
the sampler stubbed out (reaching it fails the test), and checks the exit
status, that no traceback is shown, and that the message names the file, the
column, the row as numbered in the file, the value and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .factory import assert_user_error, small_config, small_panel


def _csv(tmp_path, frame, name="panel.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    return path


def _run(cli, tmp_path, panel_path, **kwargs):
    config = small_config(tmp_path, panel_path, **kwargs)
    return cli("run", config, "--out", tmp_path / "out")


def test_text_in_numeric_column(cli, tmp_path, rng):
    frame = small_panel(rng).astype({"w": "object"})
    frame.loc[3, "w"] = "n.a.?"
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "column 'w'")
    assert "row 5: 'n.a.?'" in message  # data row 3 is line 5 (header is line 1)
    assert "Fix: replace the text with a number" in message


def test_infinite_value(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame.loc[0, "x"] = np.inf
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "column 'x'")
    assert "row 2: inf" in message
    assert "leave the cell empty" in message


def test_negative_light(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame.loc[4, "light"] = -3.5
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "column 'light'")
    assert "must not be negative" in message
    assert "row 6: -3.5" in message


def test_negative_population(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame.loc[7, "population"] = -120.0
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), "column 'population'")
    assert "row 9: -120.0" in message


def test_duplicated_province_year(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "(province, year)")
    assert "row 4: 'Guangdong' 2002" in message
    assert f"row {len(frame) + 1}: 'Guangdong' 2002" in message
    assert "Fix: keep one row per province and year" in message


def test_same_province_spelled_two_ways(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame["province"] = frame["province"].astype(object)
    frame.loc[1, "province"] = "北京"  # Beijing 2007 written in Chinese
    frame.loc[1, "year"] = 2002
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), "(province, year)")
    assert "'Beijing' 2002" in message
    assert "'北京' 2002" in message


def test_unknown_province_name(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame["province"] = frame["province"].replace("Guangdong", "Guangdonq")
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "column 'province'")
    assert "row 4: 'Guangdonq' (close matches: Guangdong" in message


def test_ambiguous_province_name(cli, tmp_path, rng):
    frame = small_panel(rng)
    frame["province"] = frame["province"].replace("Guangdong", "Guang")
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), "row 4: 'Guang'")
    assert "Guangdong" in message
    assert "Guangxi" in message


def test_hong_kong_and_taiwan_rows(cli, tmp_path, rng):
    frame = small_panel(rng)
    extra = frame.iloc[:2].copy()
    extra["province"] = ["香港", "Taiwan"]
    frame = pd.concat([frame, extra], ignore_index=True)
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "not mainland provinces")
    assert "Hong Kong" in message
    assert "Taiwan" in message
    assert "row 18: '香港'" in message
    assert "Fix: delete these rows" in message


def test_missing_province_column(cli, tmp_path, rng):
    frame = small_panel(rng).rename(columns={"province": "provnce"})
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "no unit column 'province'")
    assert "Close matches: 'provnce'" in message
    assert "set data.unit" in message


def test_year_not_whole_number(cli, tmp_path, rng):
    frame = small_panel(rng).astype({"year": "float64"})
    frame.loc[5, "year"] = 2002.5
    path = _csv(tmp_path, frame)
    message = assert_user_error(_run(cli, tmp_path, path), "column 'year'", "whole years")
    assert "row 7: 2002.5" in message


def test_empty_file(cli, tmp_path):
    path = tmp_path / "panel.csv"
    path.write_bytes(b"")
    assert_user_error(_run(cli, tmp_path, path), str(path), "is empty")


def test_header_without_rows(cli, tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("province,year,y,x,z,w\n", encoding="utf-8")
    assert_user_error(_run(cli, tmp_path, path), str(path), "no data rows", "province, year, y")


def test_ragged_csv(cli, tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("province,year,y\nBeijing,2002,1.0\nHebei,2002,2,0,9\n", encoding="utf-8")
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "not a regular table")
    assert "line 3" in message


def test_truncated_parquet(cli, tmp_path, rng):
    whole = tmp_path / "whole.parquet"
    small_panel(rng).to_parquet(whole, index=False)
    path = tmp_path / "panel.parquet"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = assert_user_error(_run(cli, tmp_path, path), str(path))
    assert "is not a complete Parquet file" in message
    assert "copy or export the file again" in message


def test_csv_renamed_to_parquet(cli, tmp_path, rng):
    path = tmp_path / "panel.parquet"
    path.write_text(small_panel(rng).to_csv(index=False), encoding="utf-8")
    assert_user_error(_run(cli, tmp_path, path), str(path), "is not a complete Parquet file")


def test_old_excel_format(cli, tmp_path):
    path = tmp_path / "panel.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 60)
    assert_user_error(_run(cli, tmp_path, path), str(path), ".xls", "save it as .xlsx or CSV")


def test_excel_header_spread_without_merges(cli, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["地区", "年份", "夜间灯光", None, "人口", None])
    sheet.append([None, None, "总量", "城市", "总数", "城镇"])
    sheet.append(["北京", 2002, 1.5, 1.0, 1300, 1000])
    path = tmp_path / "yearbook.xlsx"
    workbook.save(path)
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "header_rows = 2 under")
    assert "row 2 holds the names 总量, 城市, 总数, 城镇 above numbers" in message


def test_panel_file_not_found(cli, tmp_path):
    path = tmp_path / "no_such_panel.csv"
    message = assert_user_error(_run(cli, tmp_path, path), str(path), "was not found")
    assert "data.panel" in message


def test_message_keeps_square_brackets(cli, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["地区", "年份", "夜间灯光", None])
    sheet.append([None, None, "总量", "城市"])
    sheet.append(["北京", 2002, 1.5, 1.0])
    path = tmp_path / "yearbook.xlsx"
    workbook.save(path)
    assert_user_error(_run(cli, tmp_path, path), "header_rows = 2 under [data] in the config")
