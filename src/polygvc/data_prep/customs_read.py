"""Read and validate China Customs transaction files with DuckDB.

A file (CSV in any encoding, gzip CSV, Parquet or a folder of Parquet files)
is opened as a DuckDB view and cleaned into a view ``tx``, and one grouped pass
then checks every row. The small CSV side tables (concordances, share
tables, firm lists) are read with pandas. The input schema is listed in
:mod:`polygvc.data_prep.customs`, which builds the measures from these views
and imports the reading helpers listed in ``__all__``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from polygvc.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_REGIME_ALIASES",
    "PROCESSING_REGIMES",
    "REQUIRED_COLUMNS",
    "VALID_FLOWS",
    "VALID_REGIMES",
    "CustomsSource",
    "EngineSettings",
    "clean_view_sql",
    "customs_inventory",
    "longest_prefix_map",
    "read_hs_sector_concordance",
    "read_small_csv",
    "share_column",
    "sql_literal",
]

REQUIRED_COLUMNS = ("firm_id", "year", "hs_code", "regime", "flow", "value", "partner", "city")
PROCESSING_REGIMES = ("processing_imported_materials", "processing_assembly")
VALID_REGIMES = ("ordinary", *PROCESSING_REGIMES, "bonded_warehouse", "other")
VALID_FLOWS = ("export", "import")

# Chinese customs names of the regimes (贸易方式) as printed in the customs
# records; users can pass more aliases through ``regime_aliases``.
DEFAULT_REGIME_ALIASES: dict[str, str] = {
    "一般贸易": "ordinary",
    "进料加工贸易": "processing_imported_materials",
    "来料加工装配贸易": "processing_assembly",
    "来料加工贸易": "processing_assembly",
    "保税仓库进出境货物": "bonded_warehouse",
    "保税区仓储转口货物": "bonded_warehouse",
}

# DuckDB reads these encodings natively; others are transcoded to UTF-8 first.
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}
_TRANSCODE_CHUNK_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True)
class EngineSettings:
    """DuckDB resources and CSV reading options.

    Attributes
    ----------
    memory_limit : str
        DuckDB memory limit, e.g. ``"2GB"``; DuckDB spills to
        ``temp_directory`` above it.
    threads : int or None
        Worker threads; ``None`` lets DuckDB use every core.
    temp_directory : str or None
        Spill folder (default: DuckDB's own ``.tmp`` folder).
    encoding : str
        Text encoding of CSV input, e.g. ``"utf-8"`` or ``"gbk"``. Encodings
        other than UTF-8, UTF-16 and Latin-1 are transcoded to a temporary
        UTF-8 file in chunks before DuckDB reads it (one extra pass).
    delimiter : str
        CSV field delimiter.
    """

    memory_limit: str = "2GB"
    threads: int | None = None
    temp_directory: str | None = None
    encoding: str = "utf-8"
    delimiter: str = ","

    def connect(self) -> duckdb.DuckDBPyConnection:
        """Open an in-memory DuckDB connection with these settings."""
        config: dict[str, str | int | bool] = {
            "memory_limit": self.memory_limit,
            "preserve_insertion_order": False,
        }
        if self.threads is not None:
            config["threads"] = int(self.threads)
        if self.temp_directory is not None:
            config["temp_directory"] = self.temp_directory
        try:
            return duckdb.connect(database=":memory:", config=config)
        except duckdb.Error as exc:
            raise ConfigError(
                f"DuckDB rejected the engine settings {config}: {exc}. Fix: give memory_limit "
                "as e.g. '2GB' and threads as a positive integer."
            ) from exc


# --------------------------------------------------------------------------- reading


def sql_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal, doubling any single quote."""
    return "'" + str(text).replace("'", "''") + "'"


def _transcode_to_utf8(path: Path, encoding: str, folder: str | None) -> Path:
    """Copy a text file to a temporary UTF-8 file, chunk by chunk."""
    fd, name = tempfile.mkstemp(prefix="polygvc_customs_", suffix=".csv", dir=folder)
    os.close(fd)
    target = Path(name)
    try:
        with (
            open(path, encoding=encoding, errors="strict", newline="") as source,
            open(target, "w", encoding="utf-8", newline="") as sink,
        ):
            while chunk := source.read(_TRANSCODE_CHUNK_CHARS):
                sink.write(chunk)
    except UnicodeDecodeError as exc:
        target.unlink(missing_ok=True)
        raise DataError(
            f"{path} is not valid {encoding} text (byte offset {exc.start} of a chunk: "
            f"{exc.reason}). Fix: pass the file's real encoding in EngineSettings.encoding."
        ) from exc
    return target


def _locate_bad_bytes(path: Path, delimiter: str) -> str:
    """Name the first line and column that is not valid UTF-8, for error messages."""
    with open(path, "rb") as handle:
        header = handle.readline()
        columns = header.decode("utf-8", errors="replace").strip().lstrip("\ufeff").split(delimiter)
        try:
            header.decode("utf-8")
        except UnicodeDecodeError:
            return "the header line"
        for line_number, raw in enumerate(handle, start=2):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                fields = raw.split(delimiter.encode())
                for index, value in enumerate(fields):
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        name = columns[index] if index < len(columns) else f"#{index + 1}"
                        return f"line {line_number}, column {name!r}"
                return f"line {line_number}"
            if line_number > 1_000_000:
                break
    return "an unknown position"


class CustomsSource:
    """A customs file opened as a DuckDB view ``raw`` (plus a temporary copy if transcoded)."""

    def __init__(
        self, path: str | Path, connection: duckdb.DuckDBPyConnection, settings: EngineSettings
    ):
        self.path = Path(path)
        self.settings = settings
        self.temporary: Path | None = None
        if not self.path.exists():
            raise DataError(f"Customs file {self.path} does not exist. Fix: check the path.")
        name = self.path.name.lower()
        if name.endswith(".parquet") or self.path.is_dir():
            pattern = str(self.path / "*.parquet") if self.path.is_dir() else str(self.path)
            relation = f"read_parquet({sql_literal(pattern)})"
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            encoding = settings.encoding.lower().replace("_", "-")
            read_path = self.path
            if encoding not in _DUCKDB_ENCODINGS:
                if name.endswith(".gz"):
                    raise DataError(
                        f"{self.path}: encoding {settings.encoding!r} needs transcoding, which "
                        "does not read gzip files. Fix: decompress the file first."
                    )
                self.temporary = _transcode_to_utf8(
                    self.path, settings.encoding, settings.temp_directory
                )
                read_path = self.temporary
                encoding = "utf-8"
            relation = (
                f"read_csv({sql_literal(str(read_path))}, header=true, all_varchar=true, "
                f"delim={sql_literal(settings.delimiter)}, "
                f"encoding={sql_literal(_DUCKDB_ENCODINGS[encoding])})"
            )
        else:
            raise DataError(
                f"Customs file {self.path} has an unknown type; expected .parquet, .csv, "
                ".csv.gz or a folder of Parquet files."
            )
        try:
            connection.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM {relation}")
            described = connection.execute("DESCRIBE raw").fetchall()
        except duckdb.InvalidInputException as exc:
            self.close()
            raise self._read_error(exc) from exc
        except duckdb.Error as exc:
            self.close()
            raise DataError(f"DuckDB could not read {self.path}: {exc}") from exc
        self.columns = {row[0]: row[1] for row in described}
        missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
        if missing:
            self.close()
            raise DataError(
                f"Customs file {self.path} lacks required column(s) {missing}; it has "
                f"{list(self.columns)}. Fix: rename the columns to {list(REQUIRED_COLUMNS)} "
                "(firm_id, year, hs_code, regime, flow, value, partner, city)."
            )

    def _read_error(self, exc: duckdb.Error) -> DataError:
        settings = self.settings
        message = str(exc)
        if "unicode" in message.lower() or "utf" in message.lower():
            where = _locate_bad_bytes(self.path, settings.delimiter)
            return DataError(
                f"{self.path} is not {settings.encoding} text: invalid bytes at {where}. "
                "Chinese customs exports are often GBK or GB18030. Fix: pass "
                "EngineSettings(encoding='gbk') (or 'gb18030')."
            )
        return DataError(f"DuckDB could not read {self.path}: {message.splitlines()[0]}")

    def close(self) -> None:
        """Delete the transcoded temporary copy, if one was made."""
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)
            self.temporary = None


def clean_view_sql(columns: Mapping[str, str], aliases: Mapping[str, str]) -> str:
    """Return the SQL that defines the cleaned view ``tx`` over the view ``raw``.

    ``columns`` maps column names to DuckDB types (a numeric ``hs_code`` gets
    its leading zeros back), and ``aliases`` maps regime names as written in
    the file to the canonical regime names.
    """
    hs_type = columns["hs_code"].upper()
    hs_text = "trim(CAST(hs_code AS VARCHAR))"
    if any(word in hs_type for word in ("INT", "DECIMAL", "DOUBLE", "FLOAT")):
        # A numeric column has lost its leading zeros; restore them.
        hs_text = "lpad(CAST(CAST(hs_code AS BIGINT) AS VARCHAR), 8, '0')"
    regime_text = "trim(CAST(regime AS VARCHAR))"
    cases = " ".join(
        f"WHEN {sql_literal(alias)} THEN {sql_literal(target)}" for alias, target in aliases.items()
    )
    regime_sql = (
        f"CASE {regime_text} {cases} ELSE lower({regime_text}) END"
        if cases
        else (f"lower({regime_text})")
    )
    return f"""
        CREATE OR REPLACE TEMP VIEW tx AS
        SELECT
            trim(CAST(firm_id AS VARCHAR)) AS firm_id,
            TRY_CAST(year AS INTEGER) AS year,
            {hs_text} AS hs_code,
            {regime_sql} AS regime,
            lower(trim(CAST(flow AS VARCHAR))) AS flow,
            TRY_CAST(value AS DOUBLE) AS value,
            trim(CAST(city AS VARCHAR)) AS city,
            year AS year_raw,
            value AS value_raw
        FROM raw
    """


# --------------------------------------------------------------------------- small tables


def read_small_csv(path: str | Path, columns: list[str], table_label: str) -> pd.DataFrame:
    """Read ``columns`` of a side table as stripped text.

    ``table_label`` names the table in error messages.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"Could not read the {table_label} {path}: {exc}.") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"The {table_label} {path} lacks column(s) {missing}; it has {list(frame.columns)}. "
            f"Fix: give it the columns {columns}."
        )
    return frame[columns].apply(lambda s: s.str.strip())


def share_column(frame: pd.DataFrame, column: str, path: str | Path, table_label: str) -> pd.Series:
    """Convert a share column to numbers, raising DataError on the first value outside [0, 1]."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values < 0) | (values > 1)
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"The {table_label} {path} has an invalid {column} {frame[column].iloc[row]!r} on "
            f"data row {row + 1}; shares must be numbers in [0, 1]."
        )
    return values


def longest_prefix_map(codes: pd.Series, prefixes: pd.Series, values: pd.Series) -> pd.Series:
    """Map each HS code to the value of its longest matching prefix (NaN when none)."""
    lookup = dict(zip(prefixes, values, strict=True))
    result = pd.Series(np.nan, index=codes.index, dtype=object)
    for length in sorted({len(p) for p in prefixes}, reverse=True):
        unresolved = result.isna()
        if not unresolved.any():
            break
        heads = codes[unresolved].str.slice(0, length)
        result[unresolved] = heads.map(lookup)
    return result


def read_hs_sector_concordance(path: str | Path) -> pd.DataFrame:
    """Read an HS-to-IO-sector concordance (CSV ``hs_prefix, sector``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame
        Columns ``hs_prefix`` (2 to 8 digits) and ``sector`` (string code).

    Raises
    ------
    DataError
        Missing columns, non-digit or duplicated prefixes.
    """
    frame = read_small_csv(path, ["hs_prefix", "sector"], "HS-to-sector concordance")
    bad = ~frame["hs_prefix"].str.fullmatch(r"[0-9]{2,8}")
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"HS-to-sector concordance {path}: hs_prefix {frame['hs_prefix'].iloc[row]!r} on data "
            f"row {row + 1} is not 2 to 8 digits. Fix: store prefixes as text with leading zeros."
        )
    duplicated = frame["hs_prefix"][frame["hs_prefix"].duplicated()].tolist()
    if duplicated:
        raise DataError(
            f"HS-to-sector concordance {path}: hs_prefix {duplicated[:5]} listed more than once."
        )
    return frame


# --------------------------------------------------------------------------- validation


def customs_inventory(
    connection: duckdb.DuckDBPyConnection, source: CustomsSource, with_intermediaries: bool
) -> pd.DataFrame:
    """Validate every row in one pass and return value totals by regime, flow, year, HS code."""
    flag = (
        "(firm_id IN (SELECT firm_id FROM intermediary_ids))" if with_intermediaries else ("false")
    )
    frame = connection.execute(
        f"""
        SELECT regime, flow, year, hs_code, {flag} AS is_intermediary,
            count(*) AS n_rows,
            sum(value) AS value,
            count(*) FILTER (WHERE value IS NULL OR value < 0 OR isnan(value)) AS n_bad_value,
            count(*) FILTER (WHERE year IS NULL) AS n_bad_year,
            count(*) FILTER (WHERE firm_id IS NULL OR firm_id = '') AS n_bad_firm,
            count(*) FILTER (
                WHERE city IS NULL OR NOT regexp_full_match(city, '[0-9]{{6}}')
            ) AS n_bad_city
        FROM tx
        GROUP BY ALL
        """
    ).df()
    path = source.path

    def example(condition: str, column: str) -> str:
        row = connection.execute(f"SELECT {column} FROM tx WHERE {condition} LIMIT 1").fetchone()
        return repr(row[0]) if row else "?"

    if frame.empty:
        raise DataError(f"Customs file {path} has no data rows.")
    checks = [
        (
            "n_bad_value",
            "value",
            "value_raw",
            "value IS NULL OR value < 0 OR isnan(value)",
            "a non-negative number in USD",
        ),
        ("n_bad_year", "year", "year_raw", "year IS NULL", "an integer year"),
        ("n_bad_firm", "firm_id", "firm_id", "firm_id IS NULL OR firm_id = ''", "a non-empty id"),
        (
            "n_bad_city",
            "city",
            "city",
            "city IS NULL OR NOT regexp_full_match(city, '[0-9]{6}')",
            "a 6-digit city code",
        ),
    ]
    for count_column, column, shown, condition, expected in checks:
        n_bad = int(frame[count_column].sum())
        if n_bad:
            raise DataError(
                f"Customs file {path}: column {column!r} has {n_bad} invalid value(s), for "
                f"example {example(condition, shown)}; each must be {expected}. Fix: clean or "
                "drop those rows before the build."
            )
    bad_regimes = sorted(set(frame["regime"].dropna()) - set(VALID_REGIMES))
    if bad_regimes or frame["regime"].isna().any():
        raise DataError(
            f"Customs file {path}: column 'regime' has unknown label(s) "
            f"{(bad_regimes or [None])[:5]}; valid labels are {list(VALID_REGIMES)}. Fix: pass "
            "regime_aliases={'<label>': '<valid label>'} to map them."
        )
    bad_flows = sorted(set(frame["flow"].dropna()) - set(VALID_FLOWS))
    if bad_flows or frame["flow"].isna().any():
        raise DataError(
            f"Customs file {path}: column 'flow' has unknown value(s) {(bad_flows or [None])[:5]}; "
            f"valid values are {list(VALID_FLOWS)}."
        )
    bad_hs = frame.loc[~frame["hs_code"].fillna("").str.fullmatch(r"[0-9]{8}"), "hs_code"]
    if len(bad_hs):
        raise DataError(
            f"Customs file {path}: column 'hs_code' has {len(bad_hs.unique())} value(s) that are "
            f"not 8-digit strings, for example {bad_hs.iloc[0]!r}. Fix: store HS codes as text "
            "with leading zeros, 8 digits."
        )
    return frame
