"""Robust readers for user panel files: CSV, Parquet and Excel.

Users bring panels exported from statistical yearbooks, Excel and other
software. :func:`read_table` reads such a file into a DataFrame and turns the
usual problems into a :class:`~polygvc.errors.DataError` that names the file,
what is wrong and the fix:

* CSV in UTF-8, UTF-8 with a byte-order mark, GBK or GB18030 (tried in that
  order unless ``encoding`` is given), separated by commas, tabs or semicolons;
* Parquet files that are truncated or not Parquet at all;
* ``.xlsx`` sheets with a title row and merged multi-row headers, as in Chinese
  statistical yearbooks. Merged header rows are flattened into
  ``"top_sub"`` column names;
* empty files.

The index of the returned frame contains the row numbers of the file as a spreadsheet
shows them (the header is row 1 in a CSV), so messages about "row 7" point at
the line the user can open. :func:`read_panel_file` adds the checks of a
province-year panel on top.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from polygvc.data_prep.names import (
    NonMainlandError,
    is_non_mainland,
    province_table,
    resolve_series,
)
from polygvc.errors import DataError

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
CSV_ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gbk", "gb18030")

# Cell texts that statistical yearbooks and spreadsheets use for "no data".
MISSING_MARKERS: tuple[str, ...] = ("", "-", "--", "—", "——", "–", "…", "...", "NA", "N/A", "n.a.")

# Header names accepted in place of the key columns (after stripping spaces).
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "province": ("省份", "省", "地区", "省区市", "province_name", "Province"),
    "year": ("年份", "年", "Year"),
}

# Maximum number of header rows inferred from merged cells; more need an explicit header_rows.
MAX_HEADER_ROWS = 4


def _supported() -> str:
    return ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES, *EXCEL_SUFFIXES))


def read_table(
    path: str | os.PathLike[str],
    sheet: str | int | None = None,
    encoding: str | None = None,
    header_rows: int | None = None,
) -> pd.DataFrame:
    """Read a CSV, Parquet or Excel table with clear errors for common problems.

    Parameters
    ----------
    path : str or path-like
        The file. Its suffix picks the reader: ``.csv``, ``.tsv``, ``.txt``
        (text), ``.parquet``, ``.pq`` (Parquet), ``.xlsx``, ``.xlsm`` (Excel).
    sheet : str or int, optional
        Excel sheet name or 0-based position; default the first sheet.
    encoding : str, optional
        Text encoding of a CSV. By default UTF-8 (with or without a byte-order
        mark), then GBK, then GB18030 are tried, and the first that decodes the
        whole file is used.
    header_rows : int, optional
        Number of header rows of an Excel sheet, counted after any title rows.
        By default it is inferred from the merged cells at the top of the sheet.

    Returns
    -------
    pandas.DataFrame
        Column names as strings with surrounding spaces removed. The index
        (named ``file_row``) is the row number in the file, counting the first
        line or sheet row as 1. Cells holding a missing-value marker
        (:data:`MISSING_MARKERS`, e.g. ``—``) are NaN.

    Raises
    ------
    DataError
        The file is missing, empty, of an unsupported type, not decodable
        with the given encoding, not a complete Parquet file, an old ``.xls``
        workbook, or an Excel sheet whose header rows cannot be inferred.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Panel file {path} was not found. Fix: correct the path; relative paths in a "
            "config are read from the config file's folder."
        )
    if path.stat().st_size == 0:
        raise DataError(f"Panel file {path} is empty (0 bytes). Fix: export the table again.")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        frame = _read_csv(path, encoding)
    elif suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    elif suffix in EXCEL_SUFFIXES:
        frame = _read_excel(path, sheet, header_rows)
    elif suffix == ".xls":
        raise DataError(
            f"Panel file {path} is an old Excel 97-2003 workbook (.xls), which polygvc does not "
            "read. Fix: open it in Excel or LibreOffice and save it as .xlsx or CSV (UTF-8)."
        )
    else:
        raise DataError(
            f"Panel file {path} has the suffix {suffix!r}, which polygvc cannot read. "
            f"Supported suffixes: {_supported()}. Fix: save the table as CSV or Parquet."
        )
    if frame.empty:
        raise DataError(
            f"Panel file {path} has a header but no data rows (columns: "
            f"{', '.join(map(str, frame.columns))}). Fix: export the rows as well."
        )
    return frame


def _decode(path: Path, raw: bytes, encoding: str | None) -> str:
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise DataError(
                f"Unknown text encoding {encoding!r} given for {path}. Fix: use a Python codec "
                "name such as 'utf-8', 'gbk' or 'gb18030'."
            ) from None
        except UnicodeDecodeError as exc:
            raise DataError(
                f"Panel file {path} is not valid {encoding} text: byte {exc.start} "
                f"({raw[exc.start : exc.start + 4]!r}) cannot be decoded. Fix: give the file's "
                "real encoding, or leave the encoding out to let polygvc try UTF-8, GBK "
                "and GB18030."
            ) from None
    for candidate in CSV_ENCODINGS:
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        if candidate != CSV_ENCODINGS[0]:
            logger.info("Read %s as %s text (it is not UTF-8).", path, candidate)
        return text
    raise DataError(
        f"Panel file {path} is neither UTF-8, GBK nor GB18030 text. Fix: save it as "
        "CSV UTF-8, or give its encoding explicitly."
    )


def _sniff_separator(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first.count(sep) for sep in (",", "\t", ";")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    raw = path.read_bytes()
    text = _decode(path, raw, encoding)
    if not text.strip("\ufeff \t\r\n"):
        raise DataError(
            f"Panel file {path} is empty (only blank lines). Fix: export the table again."
        )
    sep = "\t" if path.suffix.lower() == ".tsv" else _sniff_separator(text)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            na_values=list(MISSING_MARKERS),
            skip_blank_lines=False,
            skipinitialspace=True,
        )
    except pd.errors.ParserError as exc:
        raise DataError(
            f"Panel file {path} is not a regular table: {exc}. Fix: every line must have the "
            "same number of fields as the header (check for unquoted separators in names)."
        ) from None
    frame.columns = _clean_names(frame.columns)
    # Row 1 is the header line, so data row i (0-based) is line i + 2.
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="file_row")
    return frame.dropna(how="all")


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(max(0, path.stat().st_size - 4))
        tail = handle.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        where = "start" if head != b"PAR1" else "end"
        raise DataError(
            f"Panel file {path} is not a complete Parquet file: the 'PAR1' marker at its "
            f"{where} is missing, so it was probably cut off while copying or writing. Fix: "
            "copy or export the file again."
        )
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"Panel file {path} is not a complete Parquet file ({exc}). Fix: copy or export "
            "the file again."
        ) from None
    frame.columns = _clean_names(frame.columns)
    # Parquet has no visible rows; number them as a CSV export would (header = row 1).
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="file_row")
    return frame


def _clean_names(columns: Iterable[object]) -> list[str]:
    return [str(c).replace("\ufeff", "").strip() for c in columns]


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_excel(path: Path, sheet: str | int | None, header_rows: int | None) -> pd.DataFrame:
    from zipfile import BadZipFile

    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except (BadZipFile, OSError, KeyError) as exc:
        raise DataError(
            f"Panel file {path} is not a readable .xlsx workbook ({exc}). Fix: open it in Excel "
            "or LibreOffice and save it again as .xlsx, or export it as CSV."
        ) from None
    names = workbook.sheetnames
    if sheet is None:
        ws = workbook[names[0]]
    elif isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise DataError(
                f"Panel file {path} has {len(names)} sheets ({', '.join(names)}); sheet position "
                f"{sheet} does not exist. Fix: pass a position from 0 to {len(names) - 1}."
            )
        ws = workbook[names[sheet]]
    elif sheet in names:
        ws = workbook[sheet]
    else:
        close = difflib.get_close_matches(str(sheet), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"Panel file {path} has no sheet {sheet!r}.{hint} Sheets: {', '.join(names)}."
        )

    grid = [[cell for cell in row] for row in ws.iter_rows(values_only=True)]
    n_cols = max((len(r) for r in grid), default=0)
    grid = [list(r) + [None] * (n_cols - len(r)) for r in grid]
    if not grid or all(_cell_text(v) == "" for row in grid for v in row):
        raise DataError(
            f"Panel file {path}, sheet {ws.title!r}, is empty. Fix: pick the sheet "
            "that holds the table with sheet=."
        )
    merged = [
        (r.min_row - 1, r.max_row - 1, r.min_col - 1, r.max_col - 1) for r in ws.merged_cells.ranges
    ]
    # Give every cell of a merged range the value of its top-left cell.
    for top, bottom, left, right in merged:
        value = grid[top][left]
        for i in range(top, bottom + 1):
            for j in range(left, right + 1):
                grid[i][j] = value

    start = _skip_title_rows(grid, merged, path, ws.title)
    if header_rows is None:
        header_rows = _infer_header_rows(grid, merged, start, path, ws.title)
    elif header_rows < 1:
        raise DataError(f"header_rows = {header_rows} for {path}; it must be at least 1.")
    header = grid[start : start + header_rows]
    columns = _flatten_header(header)
    used = [j for j, name in enumerate(columns) if name]
    body_start = start + header_rows
    records = [[grid[i][j] for j in used] for i in range(body_start, len(grid))]
    frame = pd.DataFrame(
        records,
        columns=[columns[j] for j in used],
        index=pd.RangeIndex(body_start + 1, len(grid) + 1, name="file_row"),
        dtype=object,
    )
    frame = frame.map(lambda v: np.nan if _cell_text(v) in MISSING_MARKERS else v)
    frame = frame.dropna(how="all")
    frame = _drop_trailing_notes(frame, path)
    for column in frame.columns:
        converted = pd.to_numeric(frame[column], errors="coerce")
        if converted.notna().sum() == frame[column].notna().sum():
            frame[column] = converted
        else:
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else _cell_text(v))
    duplicated = pd.Index(frame.columns)[pd.Index(frame.columns).duplicated()].tolist()
    if duplicated:
        raise DataError(
            f"Panel file {path}, sheet {ws.title!r}: the header gives the column names "
            f"{duplicated} more than once (header rows {start + 1}-{start + header_rows}). "
            "Fix: give the number of header rows (header_rows under [data] in the config), or "
            "rename the columns."
        )
    return frame


def _skip_title_rows(
    grid: list[list], merged: list[tuple[int, int, int, int]], path: Path, sheet: str
) -> int:
    """Return the index of the first row after blank rows and one-cell title rows."""
    width = len(grid[0])
    start = 0
    while start < len(grid) - 1:
        texts = {_cell_text(v) for v in grid[start]} - {""}
        spans_all = any(
            top == start and left == 0 and right >= width - 1 for top, _, left, right in merged
        )
        filled = sum(_cell_text(v) != "" for v in grid[start])
        if not texts or (len(texts) == 1 and (spans_all or filled == 1) and width > 1):
            if texts:
                logger.info(
                    "%s, sheet %r: skipped title row %d: %s",
                    path,
                    sheet,
                    start + 1,
                    next(iter(texts)),
                )
            start += 1
            continue
        break
    return start


def _infer_header_rows(
    grid: list[list], merged: list[tuple[int, int, int, int]], start: int, path: Path, sheet: str
) -> int:
    """Count header rows from merged cells: a merge across columns needs a row below it."""
    rows = 1
    while True:
        last = start + rows - 1
        needed = rows
        for top, bottom, left, right in merged:
            if top < start or top > last:
                continue
            end = bottom + 1 if right > left else bottom
            needed = max(needed, end - start + 1)
        if needed == rows:
            break
        rows = needed
    if rows > MAX_HEADER_ROWS:
        raise DataError(
            f"Panel file {path}, sheet {sheet!r}: merged cells at the top span {rows} rows, "
            f"more than the {MAX_HEADER_ROWS} header rows polygvc infers by itself. Fix: give "
            "the number of header rows below the title, e.g. header_rows = 5 under [data] in "
            "the config (header_rows=5 in Python)."
        )
    if rows == 1 and start + 2 < len(grid):
        _reject_unmerged_header(grid, start, path, sheet)
    return rows


def _is_number(value: object) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    try:
        float(_cell_text(value))
    except ValueError:
        return False
    return True


def _reject_unmerged_header(grid: list[list], start: int, path: Path, sheet: str) -> None:
    """Raise when the header looks spread over two rows without merged cells.

    The sign is a first row with blank cells and a second row with text in
    columns that hold numbers further down, e.g. 夜间灯光 | (blank) over
    总量 | 城市.
    """
    first, second, below = grid[start], grid[start + 1], grid[start + 2 :]
    used = [j for j in range(len(first)) if any(_cell_text(r[j]) != "" for r in grid[start:])]
    blanks = [j for j in used if _cell_text(first[j]) == ""]
    if not blanks:
        return
    names = []
    for j in used:
        text = _cell_text(second[j])
        column = [r[j] for r in below if _cell_text(r[j]) != ""]
        numeric = column and sum(_is_number(v) for v in column) > len(column) / 2
        if text and not _is_number(second[j]) and numeric:
            names.append(text)
    if names:
        raise DataError(
            f"Panel file {path}, sheet {sheet!r}: row {start + 1} leaves {len(blanks)} column "
            f"names blank and row {start + 2} holds the names {', '.join(names)} above numbers, "
            "so the header seems to span two rows without merged cells. Fix: give the number "
            "of header rows, e.g. header_rows = 2 under [data] in the config (header_rows=2 "
            "in Python), or put every column name in one row."
        )


def _flatten_header(header: list[list]) -> list[str]:
    names = []
    for j in range(len(header[0])):
        parts: list[str] = []
        for row in header:
            text = _cell_text(row[j]).replace("\n", " ").replace("\ufeff", "")
            if text and text not in parts:
                parts.append(text)
        names.append("_".join(parts))
    return names


def _drop_trailing_notes(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Drop rows at the bottom with text in the first cell only (notes, sources)."""
    keep = len(frame)
    while keep > 0:
        row = frame.iloc[keep - 1]
        if row.iloc[1:].isna().all() and isinstance(row.iloc[0], str) and len(frame.columns) > 1:
            logger.info("%s: skipped note row %s: %s", path, frame.index[keep - 1], row.iloc[0])
            keep -= 1
            continue
        break
    return frame.iloc[:keep]


# --- Panel checks ------------------------------------------------------------------------------


def _rows_text(frame: pd.DataFrame, mask: pd.Series, column: str, limit: int = 5) -> str:
    rows = frame.loc[mask.to_numpy(), column]
    parts = [f"row {label}: {value!r}" for label, value in rows.head(limit).items()]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return "; ".join(parts) + more


def _find_key(frame: pd.DataFrame, key: str, path: Path, role: str) -> pd.DataFrame:
    if key in frame.columns:
        return frame
    for alias in KEY_ALIASES.get(key, ()):
        if alias in frame.columns:
            logger.info("%s: using column %r as the %s column %r.", path.name, alias, role, key)
            return frame.rename(columns={alias: key})
    available = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(key, available, n=3, cutoff=0.6)
    hint = f" Close matches: {', '.join(repr(c) for c in close)}." if close else ""
    raise DataError(
        f"Panel file {path} has no {role} column {key!r}.{hint} Columns in the file: "
        f"{', '.join(available)}. Fix: rename the column to {key!r}, or set data.{role} in "
        "the config to the column's name."
    )


def _check_year(frame: pd.DataFrame, time: str, path: Path) -> pd.DataFrame:
    values = frame[time]
    missing = values.isna()
    if missing.any():
        raise DataError(
            f"Panel file {path}, column {time!r}, is empty in {int(missing.sum())} rows "
            f"(rows {', '.join(map(str, frame.index[missing.to_numpy()][:10]))}). Fix: fill in the "
            "year or delete those rows."
        )
    text = values.astype(str).str.strip().str.removesuffix("年")
    numeric = pd.to_numeric(text, errors="coerce")
    not_integer = numeric.isna() | (numeric != np.floor(numeric))
    if not_integer.any():
        raise DataError(
            f"Panel file {path}, column {time!r}, must contain whole years such as 2007, but has "
            f"{_rows_text(frame, not_integer, time)}. Fix: write each year as a four-digit "
            "number."
        )
    out = frame.copy()
    out[time] = numeric.astype("int64")
    return out


def _resolve_provinces(frame: pd.DataFrame, unit: str, path: Path) -> pd.DataFrame:
    values = frame[unit]
    missing = values.isna() | (values.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(
            f"Panel file {path}, column {unit!r}, is empty in rows "
            f"{', '.join(map(str, frame.index[missing.to_numpy()][:10]))}. Fix: fill in the "
            "province or delete those rows."
        )
    source = f"Panel file {path}, column {unit!r}"
    try:
        resolved = resolve_series(values, source, non_mainland="raise")
    except NonMainlandError as exc:
        outside = values.map(is_non_mainland).astype(bool)
        shown = _rows_text(frame, outside, unit)
        raise DataError(
            f"{source} has rows for {exc.territory}, which are not mainland provinces: {shown}. "
            "polygvc models the 31 mainland provinces, whose statistics share one system. "
            "Fix: delete these rows from the file."
        ) from None
    out = frame.copy()
    if "province_as_written" not in out.columns:
        out["province_as_written"] = values.astype("str")
    out[unit] = resolved
    return out


def _check_numeric(frame: pd.DataFrame, path: Path, skip: set[str]) -> pd.DataFrame:
    """Reject text in columns that otherwise hold numbers, and infinite values."""
    out = frame.copy()
    for column in frame.columns:
        if column in skip:
            continue
        series = frame[column]
        if not pd.api.types.is_numeric_dtype(series):
            present = series.notna()
            converted = pd.to_numeric(series, errors="coerce")
            text = present & converted.isna()
            if not text.any():
                out[column] = converted.astype("float64")
                continue
            if text.sum() > present.sum() / 2:
                continue  # a text column, e.g. notes
            raise DataError(
                f"Panel file {path}, column {column!r}, contains numbers but also text in "
                f"{_rows_text(frame, text, column)}. Fix: replace the text with a number, or "
                "leave the cell empty if the value is missing (empty cells are dropped from "
                "the model rows and logged)."
            )
        values = out[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        infinite = np.isinf(values.to_numpy(dtype=float))
        if infinite.any():
            raise DataError(
                f"Panel file {path}, column {column!r}, has infinite values in "
                f"{_rows_text(out, pd.Series(infinite, index=out.index), column)}. These usually "
                "come from dividing by zero or taking log(0). Fix: correct the value or leave the "
                "cell empty."
            )
    return out


def _non_negative_columns(columns: Iterable[str]) -> list[str]:
    """Columns that must not be negative: light, population and the panel's counts."""
    from polygvc.data_prep.panel import _NON_NEGATIVE_COLUMNS

    chosen = []
    for column in columns:
        name = column.lower()
        if name.startswith("log") or name.startswith("ln"):
            continue
        is_light = "light" in name or name.endswith("sol") or "灯光" in name
        is_population = "population" in name or name == "pop" or "人口" in name
        if is_light or is_population or column in _NON_NEGATIVE_COLUMNS:
            chosen.append(column)
    return chosen


def read_panel_file(
    path: str | os.PathLike[str],
    *,
    unit: str = "province",
    time: str = "year",
    group: str = "region",
    sheet: str | int | None = None,
    encoding: str | None = None,
    header_rows: int | None = None,
) -> pd.DataFrame:
    """Read and check a user's province-year panel file.

    Parameters
    ----------
    path : str or path-like
        CSV, Parquet or Excel file; see :func:`read_table`.
    unit, time, group : str
        Names of the province, year and region columns (``data.unit``,
        ``data.time`` and ``data.group`` of the config). The headers 省份,
        省, 地区 and 年份 are accepted for province and year.
    sheet, encoding, header_rows
        Passed to :func:`read_table`.

    Returns
    -------
    pandas.DataFrame
        The file's rows, sorted by province code and year, with the unit
        column holding English canonical province names, the original
        spelling in ``province_as_written``, the year as int64, and
        ``province_zh``, ``province_code`` and ``region`` (NBS 2011
        four-region division) added from the canonical table when absent.
        Numeric columns are float64 or int64. Missing values stay NaN; the
        model drops and logs rows that lack a value it needs.

    Raises
    ------
    DataError
        Any problem from :func:`read_table`; a missing province or year column
        (close matches listed); empty or non-integer years; unknown province
        names (close matches listed); Hong Kong, Macau or Taiwan rows;
        duplicated province-year keys (after resolving names, so 北京 and
        Beijing in the same year collide); text in a numeric column; infinite
        values; negative light, population or count values. Every message
        names the file, the column, the rows as numbered in the file and the
        values.
    """
    path = Path(path)
    frame = read_table(path, sheet=sheet, encoding=encoding, header_rows=header_rows)
    frame = _find_key(frame, unit, path, "unit")
    frame = _find_key(frame, time, path, "time")
    frame = _check_year(frame, time, path)
    frame = _resolve_provinces(frame, unit, path)

    duplicated = frame.duplicated([unit, time], keep=False)
    if duplicated.any():
        rows = frame.loc[duplicated.to_numpy()].sort_values([unit, time])
        listed = "; ".join(
            f"row {label}: {row['province_as_written']!r} {row[time]}"
            for label, row in rows.head(6).iterrows()
        )
        raise DataError(
            f"Panel file {path} has {int(duplicated.sum())} rows sharing a ({unit}, {time}) key: "
            f"{listed}. Names are compared after mapping variants (北京, Beijing, 11) to one "
            "province. Fix: keep one row per province and year."
        )

    table = province_table().set_index("province")
    if group not in frame.columns:
        if group != "region":
            raise DataError(
                f"Panel file {path} has no group column {group!r} (data.group). Fix: add it, or "
                'set data.group = "region" to use the NBS four-region division.'
            )
        frame["region"] = frame[unit].map(table["region"]).astype("str")
        logger.info("%s: added the region column from the NBS four-region division.", path.name)
    elif frame[group].isna().any():
        missing = frame[group].isna()
        raise DataError(
            f"Panel file {path}, column {group!r}, is empty in rows "
            f"{', '.join(map(str, frame.index[missing.to_numpy()][:10]))}. Fix: fill it in, or "
            "delete the column to use the NBS four-region division."
        )
    for column in ("province_zh", "province_code"):
        if column not in frame.columns and unit == "province":
            frame[column] = frame[unit].map(table[column])
    if "province_code" in frame.columns:
        frame["province_code"] = pd.to_numeric(frame["province_code"]).astype("int64")

    keys = {unit, time, group, "province_as_written", "province_zh", "excluded_reason"}
    frame = _check_numeric(frame, path, skip=keys)
    for column in _non_negative_columns(frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        negative = frame[column] < 0
        if negative.any():
            raise DataError(
                f"Panel file {path}, column {column!r}, must not be negative (it is a light, "
                f"population or count value) but has {_rows_text(frame, negative, column)}. "
                "Fix: correct the value, or leave the cell empty if it is unknown."
            )
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]):
            frame[column] = frame[column].astype("str")
    if "excluded_reason" in frame.columns:
        frame["excluded_reason"] = frame["excluded_reason"].fillna("").astype("str")
    sort_key = ["province_code", time] if "province_code" in frame.columns else [unit, time]
    frame = frame.sort_values(sort_key, kind="stable")
    logger.info(
        "Read panel %s: %d rows, %d provinces, years %s-%s.",
        path.name,
        len(frame),
        frame[unit].nunique(),
        frame[time].min(),
        frame[time].max(),
    )
    return frame
