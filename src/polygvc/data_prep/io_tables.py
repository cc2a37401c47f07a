"""National input-output tables and the GVC position measures built on them.

Three layers:

* loaders turn the registry files of dataset ``national_io_ionet`` into a
  validated :class:`IOTable` (NBS 42-sector tables for 2015, 2017, 2018, 2020;
  OECD 2021-edition 45-sector tables for China, 1995-2018);
* NumPy kernels compute sector upstreamness (Antràs, Chor, Fally and Hillberry
  2012), the import content of exports (Hummels, Ishii and Yi 2001) and the
  Koopman-Wang-Wei GVC participation and position indices on a multi-region
  table;
* thin wrappers return pandas objects indexed by sector code.

Conventions: ``Z[i, j]`` is the value of product ``i`` used as an input by
sector ``j``; every vector is indexed by product (row) or sector (column) in the
order of ``IOTable.sector_codes``. The NBS tables are in 10,000 yuan at producer
prices and the OECD tables in million USD at basic prices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from polygvc.errors import DataError

logger = logging.getLogger(__name__)

DATASET = "national_io_ionet"
NBS_YEARS = (2015, 2017, 2018, 2020)
OECD_FILE = "OECD21ed_CHN_1995to2018_long.csv"
OECD_YEARS = tuple(range(1995, 2019))

# Relative tolerance of the accounting identities, as a share of the sector's
# gross output; an absolute floor (in table units) absorbs rounding of the
# published cells. OECD cells are rounded to 0.1 million USD, and a row or
# column sums about 55 cells, so rounding alone can reach about 3.
IDENTITY_RTOL = 1e-6
NBS_IDENTITY_ATOL = 1.0
OECD_IDENTITY_ATOL = 5.0


@dataclass(frozen=True)
class IOTable:
    """A single-country input-output table with its final-demand and trade columns.

    Attributes
    ----------
    source : str
        File the table was read from.
    year : int
        Reference year.
    units : str
        Money unit of every array.
    sector_codes, sector_names : tuple of str
        Product/sector codes and English names, in array order.
    Z : numpy.ndarray, shape (N, N)
        Total intermediate use (domestic plus imported products).
    gross_output : numpy.ndarray, shape (N,)
        Domestic gross output ``Y``.
    consumption : numpy.ndarray
        Final consumption (households, government, NPISH, direct purchases).
    capital_formation : numpy.ndarray
        Gross fixed capital formation.
    inventories : numpy.ndarray
        Changes in inventories ``N`` (may be negative).
    exports, imports : numpy.ndarray
        Total exports ``X`` (including re-exports of imported goods where the
        table shows them) and total imports ``M`` (positive).
    discrepancy : numpy.ndarray
        Statistical discrepancy column (NBS 2015 ``ERR``); zeros elsewhere.
    value_added : numpy.ndarray
        Primary inputs per using sector: value added plus net product taxes
        recorded in the sector's column (OECD ``VALU`` + ``TXS_INT_FNL`` +
        ``TXS_IMP_FNL``; NBS ``TVA``).
    Z_domestic, Z_imports : numpy.ndarray or None
        Split of ``Z`` by origin when the table gives it (NBS 2017, 2018, 2020).
    exports_domestic : numpy.ndarray or None
        Exports of domestically produced goods when the table gives the split;
        the rest of ``exports`` is re-exports of imports.
    notes : tuple of str
        Facts about how the table was read (sectors dropped, conventions).
    """

    source: str
    year: int
    units: str
    sector_codes: tuple[str, ...]
    sector_names: tuple[str, ...]
    Z: np.ndarray
    gross_output: np.ndarray
    consumption: np.ndarray
    capital_formation: np.ndarray
    inventories: np.ndarray
    exports: np.ndarray
    imports: np.ndarray
    discrepancy: np.ndarray
    value_added: np.ndarray
    Z_domestic: np.ndarray | None = None
    Z_imports: np.ndarray | None = None
    exports_domestic: np.ndarray | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_sectors(self) -> int:
        """Number of sectors ``N``."""
        return len(self.sector_codes)

    @property
    def has_import_split(self) -> bool:
        """Whether intermediate use is split into domestic and imported origin."""
        return self.Z_domestic is not None and self.Z_imports is not None

    def validate(self, rtol: float = IDENTITY_RTOL, atol: float = NBS_IDENTITY_ATOL) -> None:
        """Check shapes, signs and the row and column accounting identities.

        Parameters
        ----------
        rtol : float
            Tolerance relative to the sector's gross output.
        atol : float
            Absolute floor in table units (rounding of published cells).

        Raises
        ------
        DataError
            Naming the file, the sector and the failed check.

        Notes
        -----
        Row identity (product ``i``): ``Y_i = sum_j Z_ij + C_i + GFCF_i + N_i + X_i
        - M_i + ERR_i``. Column identity (sector ``j``): ``Y_j = sum_i Z_ij + VA_j``.
        """
        n = self.n_sectors
        if self.Z.shape != (n, n):
            raise DataError(
                f"{self.source}: the intermediate matrix has shape {self.Z.shape}, but there "
                f"are {n} sector codes; the matrix must be square with one row and one column "
                "per sector. Fix: check that every sector code appears once as a row and once "
                "as a column."
            )
        vectors = {
            "gross_output": self.gross_output,
            "consumption": self.consumption,
            "capital_formation": self.capital_formation,
            "inventories": self.inventories,
            "exports": self.exports,
            "imports": self.imports,
            "discrepancy": self.discrepancy,
            "value_added": self.value_added,
        }
        for name, vector in vectors.items():
            if vector.shape != (n,):
                raise DataError(f"{self.source}: {name} has shape {vector.shape}, expected ({n},).")
        arrays = {"Z": self.Z, **vectors}
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                bad = np.argwhere(~np.isfinite(np.atleast_2d(array)))[0]
                raise DataError(
                    f"{self.source}: {name} has a missing or infinite value at position "
                    f"{tuple(int(i) for i in bad)}. Fix: fill the cell from the published table."
                )
        for name in ("Z", "gross_output", "exports", "imports"):
            array = arrays[name]
            if np.any(array < 0):
                position = np.argwhere(np.atleast_2d(array) < 0)[0]
                codes = self._codes_at(name, position)
                raise DataError(
                    f"{self.source}: {name} must be non-negative but is "
                    f"{np.atleast_2d(array)[tuple(position)]:.6g} at {codes}. Fix: check the "
                    "sign convention of the column (imports are stored as positive numbers)."
                )

        tolerance = rtol * np.maximum(self.gross_output, 1.0) + atol
        supply = (
            self.Z.sum(axis=1)
            + self.consumption
            + self.capital_formation
            + self.inventories
            + self.exports
            - self.imports
            + self.discrepancy
        )
        row_gap = supply - self.gross_output
        worst = int(np.argmax(np.abs(row_gap) - tolerance))
        if abs(row_gap[worst]) > tolerance[worst]:
            raise DataError(
                f"{self.source}: the row identity fails for product {self.sector_codes[worst]} "
                f"({self.sector_names[worst]}): intermediate use + final use - imports = "
                f"{supply[worst]:.6g} but gross output = {self.gross_output[worst]:.6g} "
                f"(gap {row_gap[worst]:.3g}, tolerance {tolerance[worst]:.3g}). Fix: check the "
                "final-demand columns of that row."
            )
        column_gap = self.Z.sum(axis=0) + self.value_added - self.gross_output
        worst = int(np.argmax(np.abs(column_gap) - tolerance))
        if abs(column_gap[worst]) > tolerance[worst]:
            raise DataError(
                f"{self.source}: the column identity fails for sector {self.sector_codes[worst]} "
                f"({self.sector_names[worst]}): intermediate inputs + value added = "
                f"{self.gross_output[worst] + column_gap[worst]:.6g} but gross output = "
                f"{self.gross_output[worst]:.6g} (gap {column_gap[worst]:.3g}, tolerance "
                f"{tolerance[worst]:.3g}). Fix: check the value-added rows of that column."
            )
        if self.has_import_split:
            assert self.Z_domestic is not None
            assert self.Z_imports is not None
            split_gap = np.abs(self.Z_domestic + self.Z_imports - self.Z).max()
            if split_gap > atol:
                raise DataError(
                    f"{self.source}: domestic plus imported intermediate use differs from total "
                    f"use by up to {split_gap:.3g}. Fix: rebuild Z as Z_domestic + Z_imports."
                )

    def _codes_at(self, name: str, position: np.ndarray) -> str:
        if name == "Z":
            return f"row {self.sector_codes[position[0]]}, column {self.sector_codes[position[1]]}"
        return f"sector {self.sector_codes[position[-1]]}"


# --------------------------------------------------------------------------- loaders


def _fetch(filename: str) -> Path:
    from polygvc.data_prep.registry import fetch

    return fetch(DATASET, filename)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"Code": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"Could not read the input-output file {path}: {exc}. Fix: replace it with the "
            f"registered copy of dataset {DATASET!r}."
        ) from exc


def _require_columns(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: required column(s) {missing} are missing; the file has "
            f"{list(frame.columns)[:12]}... Fix: use the registered file of dataset {DATASET!r}."
        )


def _require_rows(frame: pd.DataFrame, codes: list[str], path: Path, what: str) -> pd.DataFrame:
    missing = [c for c in codes if c not in frame.index]
    if missing:
        raise DataError(
            f"{path}: {what} row(s) with Code {missing} are missing. Fix: use the registered "
            f"file of dataset {DATASET!r}."
        )
    duplicated = frame.index[frame.index.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{path}: {what} row Code(s) {duplicated} appear more than once.")
    return frame.loc[codes]


def load_nbs_table(year: int, path: str | Path | None = None) -> IOTable:
    """Load an NBS 42-sector national input-output table.

    Parameters
    ----------
    year : int
        One of 2015, 2017, 2018, 2020.
    path : str or Path, optional
        Read this file in place of the registry file ``china_<year>_42.csv``
        (same layout).

    Returns
    -------
    IOTable
        In 10,000 yuan at producer prices. The 2015 table is a competitive-import
        table (one block, imports in column ``IM``); 2017, 2018 and 2020 are
        non-competitive (``Origin`` = ``Domestic`` / ``Imports`` blocks), so
        ``Z_domestic``, ``Z_imports`` and ``exports_domestic`` are filled.

    Raises
    ------
    DataError
        Missing columns or rows, negative flows, or failed identities.

    Notes
    -----
    Column meanings: ``TIU`` total intermediate use, ``TC`` final consumption,
    ``FU201`` gross fixed capital formation, ``FU202`` changes in inventories,
    ``EX`` exports, ``IM`` imports (2015 only), ``ERR`` statistical discrepancy
    (2015 only), ``GO`` gross output (for ``Imports`` rows: total imports).
    In the non-competitive tables the ``EX`` entry of an ``Imports`` row is the
    re-export of imported goods; it is part of ``exports`` but not of
    ``exports_domestic``.
    """
    if year not in NBS_YEARS:
        raise DataError(
            f"No NBS 42-sector table for year {year}; available years: {list(NBS_YEARS)}."
        )
    file_path = Path(path) if path is not None else _fetch(f"china_{year}_42.csv")
    frame = _read_csv(file_path)
    codes = [f"{i:02d}" for i in range(1, 43)]
    _require_columns(frame, ["Code", "Description", *codes, "TIU", "TC", "EX", "GO"], file_path)
    notes = ["NBS 42-sector table, producer prices, 10,000 yuan"]

    if "Origin" in frame.columns:
        _require_columns(frame, ["FU201", "FU202", "TFU"], file_path)
        domestic = _require_rows(
            frame[frame["Origin"] == "Domestic"].set_index("Code"), codes, file_path, "Domestic"
        )
        imported = _require_rows(
            frame[frame["Origin"] == "Imports"].set_index("Code"), codes, file_path, "Imports"
        )
        totals = _require_rows(
            frame[frame["Origin"] == "TOT"].set_index("Code"), ["TVA"], file_path, "TOT"
        )
        z_domestic = domestic[codes].to_numpy(dtype=float)
        z_imports = imported[codes].to_numpy(dtype=float)

        def both(column: str) -> np.ndarray:
            return domestic[column].to_numpy(float) + imported[column].to_numpy(float)

        table = IOTable(
            source=str(file_path),
            year=year,
            units="10,000 yuan",
            sector_codes=tuple(codes),
            sector_names=tuple(domestic["Description"].astype(str)),
            Z=z_domestic + z_imports,
            gross_output=domestic["GO"].to_numpy(float),
            consumption=both("TC"),
            capital_formation=both("FU201"),
            inventories=both("FU202"),
            exports=both("EX"),
            imports=imported["GO"].to_numpy(float),
            discrepancy=np.zeros(len(codes)),
            value_added=totals.loc["TVA", codes].to_numpy(float),
            Z_domestic=z_domestic,
            Z_imports=z_imports,
            exports_domestic=domestic["EX"].to_numpy(float),
            notes=(*notes, "non-competitive imports: Domestic and Imports blocks"),
        )
    else:
        _require_columns(frame, ["FU201", "FU202", "IM", "ERR"], file_path)
        indexed = frame.set_index("Code")
        rows = _require_rows(indexed, codes, file_path, "product")
        totals = _require_rows(indexed, ["TVA"], file_path, "total")
        table = IOTable(
            source=str(file_path),
            year=year,
            units="10,000 yuan",
            sector_codes=tuple(codes),
            sector_names=tuple(rows["Description"].astype(str)),
            Z=rows[codes].to_numpy(float),
            gross_output=rows["GO"].to_numpy(float),
            consumption=rows["TC"].to_numpy(float),
            capital_formation=rows["FU201"].to_numpy(float),
            inventories=rows["FU202"].to_numpy(float),
            exports=rows["EX"].to_numpy(float),
            imports=rows["IM"].to_numpy(float),
            discrepancy=rows["ERR"].to_numpy(float),
            value_added=totals.loc["TVA", codes].to_numpy(float),
            notes=(*notes, "competitive imports: one block, imports in column IM"),
        )
    table.validate(atol=NBS_IDENTITY_ATOL)
    return table


def load_oecd_table(year: int, path: str | Path | None = None) -> IOTable:
    """Load the OECD 2021-edition input-output table for China for one year.

    Parameters
    ----------
    year : int
        1995 to 2018.
    path : str or Path, optional
        Read this file in place of the registry file
        ``OECD21ed_CHN_1995to2018_long.csv`` (same layout).

    Returns
    -------
    IOTable
        In million USD at basic prices; a competitive-import table (no split by
        origin). Sectors with zero gross output and zero use (sector 45,
        households as employers) are dropped and named in ``notes``.

    Raises
    ------
    DataError
        Missing columns, rows or year, negative flows, or failed identities.

    Notes
    -----
    ``X = EXPO``, ``M = -IMPO`` (the file stores imports as negative numbers),
    ``N = INVNT``; final consumption sums ``HFCE``, ``NPISH``, ``GGFC``,
    ``CONS_ABR`` and ``CONS_NONRES``. Value added is ``VALU`` plus the net
    product taxes in the sector's column (``TXS_INT_FNL`` and ``TXS_IMP_FNL``),
    so that intermediate inputs plus value added equal ``OUTPUT``.
    """
    if year not in OECD_YEARS:
        raise DataError(
            f"No OECD table for year {year}; the file covers {OECD_YEARS[0]}-{OECD_YEARS[-1]}."
        )
    file_path = Path(path) if path is not None else _fetch(OECD_FILE)
    frame = _read_csv(file_path)
    codes = [f"{i:02d}" for i in range(1, 46)]
    # NOTE: direct purchases by non-residents (CONS_NONRES) are counted as
    # consumption, not exports; whether TiVA counts them in exports is unchecked.
    consumption_columns = ["HFCE", "NPISH", "GGFC", "CONS_ABR", "CONS_NONRES"]
    _require_columns(
        frame,
        ["year", "Code", "Description", *codes, *consumption_columns, "GFCF", "INVNT"]
        + ["EXPO", "IMPO"],
        file_path,
    )
    one_year = frame[frame["year"] == year].set_index("Code")
    if one_year.empty:
        raise DataError(f"{file_path}: no rows for year {year} in column 'year'.")
    rows = _require_rows(one_year, codes, file_path, "product")
    totals = _require_rows(
        one_year, ["VALU", "OUTPUT", "TXS_INT_FNL", "TXS_IMP_FNL"], file_path, "total"
    )
    output = totals.loc["OUTPUT", codes].to_numpy(float)
    z = rows[codes].to_numpy(float)
    final_use = rows[[*consumption_columns, "GFCF", "INVNT", "EXPO", "IMPO"]].abs().sum(axis=1)
    empty = (output == 0) & (z.sum(axis=0) == 0) & (z.sum(axis=1) == 0) & (final_use == 0)
    keep = ~np.asarray(empty)
    dropped = [c for c, k in zip(codes, keep, strict=True) if not k]
    kept = [c for c, k in zip(codes, keep, strict=True) if k]
    notes = ["OECD 2021 edition, basic prices, million USD; competitive imports"]
    if dropped:
        logger.info("OECD %d: dropped empty sectors %s", year, dropped)
        notes.append(f"dropped sectors with no output and no use: {dropped}")
    rows = rows.loc[kept]
    value_added = (
        totals.loc["VALU", kept].to_numpy(float)
        + totals.loc["TXS_INT_FNL", kept].to_numpy(float)
        + totals.loc["TXS_IMP_FNL", kept].to_numpy(float)
    )
    table = IOTable(
        source=str(file_path),
        year=year,
        units="million USD",
        sector_codes=tuple(kept),
        sector_names=tuple(rows["Description"].astype(str)),
        Z=rows[kept].to_numpy(float),
        gross_output=totals.loc["OUTPUT", kept].to_numpy(float),
        consumption=rows[consumption_columns].sum(axis=1).to_numpy(float),
        capital_formation=rows["GFCF"].to_numpy(float),
        inventories=rows["INVNT"].to_numpy(float),
        exports=rows["EXPO"].to_numpy(float),
        imports=-rows["IMPO"].to_numpy(float),
        discrepancy=np.zeros(len(kept)),
        value_added=value_added,
        notes=tuple(notes),
    )
    # NOTE: dropping a sector removes its (zero) column from the other rows'
    # sums, so the identities are unchanged.
    table.validate(atol=OECD_IDENTITY_ATOL)
    return table


# --------------------------------------------------------------------------- upstreamness


def upstreamness_kernel(z: np.ndarray, absorption: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``(I - Delta) U = 1`` with ``Delta_ij = Z_ij / absorption_i``.

    Parameters
    ----------
    z : numpy.ndarray, shape (N, N)
        Intermediate use, non-negative.
    absorption : numpy.ndarray, shape (N,)
        Positive denominators (adjusted domestic absorption).

    Returns
    -------
    U : numpy.ndarray, shape (N,)
    Delta : numpy.ndarray, shape (N, N)
    """
    delta = z / absorption[:, None]
    n = z.shape[0]
    u = np.linalg.solve(np.eye(n) - delta, np.ones(n))
    return u, delta


def upstreamness(
    table: IOTable, adjustment: Literal["inventories", "open_economy"] = "inventories"
) -> pd.Series:
    """Compute the upstreamness of each sector (Antràs, Chor, Fally and Hillberry 2012).

    Parameters
    ----------
    table : IOTable
    adjustment : {"inventories", "open_economy"}
        Denominator of ``Delta``. ``"inventories"`` (default) uses
        ``Y_i - X_i + M_i - N_i - ERR_i``: the open-economy correction plus the
        net-inventory correction of the paper, with the statistical discrepancy
        treated like inventories. ``"open_economy"`` uses ``Y_i - X_i + M_i``.

    Returns
    -------
    pandas.Series
        Named ``upstreamness``, indexed by sector code. Higher = further from
        final use (more production stages before the good reaches a final
        buyer); 1 = sold only to final use.

    Raises
    ------
    DataError
        A denominator is not positive, or a row of ``Delta`` sums to 1 or more,
        so ``U`` is undefined; the message names the sector.

    Notes
    -----
    Gross output satisfies ``Y_i = F_i + sum_j Z_ij + X_i - M_i + N_i``. If a
    sector's exports, imports and inventory change are used in the same
    proportions as its domestic shipments, ``Z_ij`` scaled by
    ``Y_i / (Y_i - X_i + M_i - N_i)`` is the part of output ``i`` that feeds
    sector ``j``. Upstreamness is ``U = (I - Delta)^{-1} 1`` with
    ``Delta_ij = Z_ij / (Y_i - X_i + M_i - N_i)``; it equals
    ``1 + sum_j Delta_ij U_j``, the average number of stages before final use.
    With the ``"inventories"`` denominator, which equals intermediate use plus
    consumption plus fixed capital formation, each row of ``Delta`` sums to at
    most 1 and ``U >= 1`` holds. The ``"open_economy"`` denominator fails on the
    NBS 2015-2020 tables: for some mining rows a fall in inventories makes
    intermediate use exceed ``Y - X + M``, and the function raises.
    """
    if adjustment == "inventories":
        absorption = (
            table.gross_output
            - table.exports
            + table.imports
            - table.inventories
            - table.discrepancy
        )
    elif adjustment == "open_economy":
        absorption = table.gross_output - table.exports + table.imports
    else:
        raise DataError(
            f"Unknown upstreamness adjustment {adjustment!r}; use 'inventories' or 'open_economy'."
        )
    codes = table.sector_codes
    positive_use = table.Z.sum(axis=1) > 0
    if np.any((absorption <= 0) & positive_use):
        i = int(np.argmax((absorption <= 0) & positive_use))
        raise DataError(
            f"{table.source}: sector {codes[i]} ({table.sector_names[i]}) has a non-positive "
            f"upstreamness denominator {absorption[i]:.6g} ({adjustment!r} adjustment), so its "
            "upstreamness is undefined. Fix: use the other adjustment or drop the sector."
        )
    safe = np.where(absorption > 0, absorption, 1.0)
    u, delta = upstreamness_kernel(table.Z, safe)
    # A row of Delta sums to exactly 1 for products with no final use (mining
    # in the NBS tables); U stays finite while the spectral radius is below 1.
    row_sums = delta.sum(axis=1)
    if np.any(row_sums > 1 + 1e-12):
        i = int(np.argmax(row_sums))
        fix = (
            "Fix: use adjustment='inventories'."
            if adjustment == "open_economy"
            else "Fix: check the final-demand columns of that row."
        )
        raise DataError(
            f"{table.source}: row {codes[i]} ({table.sector_names[i]}) of Delta sums to "
            f"{row_sums[i]:.4f} > 1 ({adjustment!r} adjustment): intermediate use exceeds the "
            f"adjusted absorption, so upstreamness is not defined. {fix}"
        )
    radius = float(np.abs(np.linalg.eigvals(delta)).max())
    if radius >= 1 - 1e-12:
        raise DataError(
            f"{table.source}: the spectral radius of Delta is {radius:.6f} >= 1, so "
            "(I - Delta) has no non-negative inverse and upstreamness is not defined."
        )
    return pd.Series(u, index=pd.Index(codes, name="sector"), name="upstreamness")


# --------------------------------------------------------------------------- import content


@dataclass(frozen=True)
class ExportContent:
    """Import content (VS) and domestic value-added content of exports.

    Attributes
    ----------
    by_sector : pandas.DataFrame
        Indexed by sector code; columns ``exports``, ``vs``, ``dva``,
        ``vs_share``, ``dva_share`` (shares of the sector's own exports).
    vs_share, dva_share : float
        Totals: ``u' A^M L E / u' E`` and ``v' L E / u' E``.
    import_split : str
        ``"table"`` when the table gives the domestic/import split,
        ``"proportional"`` otherwise.
    """

    by_sector: pd.DataFrame
    vs_share: float
    dva_share: float
    import_split: str


def export_content_kernel(
    a_domestic: np.ndarray, a_imports: np.ndarray, va_coefficients: np.ndarray, exports: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return per-sector VS and domestic value added embodied in exports.

    ``VS_j = (u' A^M L)_j E_j`` and ``DVA_j = (v' L)_j E_j`` with
    ``L = (I - A^D)^{-1}``.
    """
    n = a_domestic.shape[0]
    leontief = np.linalg.inv(np.eye(n) - a_domestic)
    vs = (a_imports.sum(axis=0) @ leontief) * exports
    dva = (va_coefficients @ leontief) * exports
    return vs, dva


def export_content(
    table: IOTable, import_split: Literal["table", "proportional"] | None = None
) -> ExportContent:
    """Compute the import content of exports (Hummels, Ishii and Yi 2001) and its complement.

    Parameters
    ----------
    table : IOTable
    import_split : {"table", "proportional"}, optional
        ``"table"`` uses the table's own domestic/import split (NBS 2017, 2018,
        2020). ``"proportional"`` splits total use with each product's import
        share of domestic absorption, ``m_i = M_i / (Y_i - X_i + M_i)``, so
        ``A^M = diag(m) A`` and ``A^D = diag(1 - m) A``. Default: ``"table"``
        when the split exists; otherwise an error, because the proportional
        split is an assumption the caller must choose.

    Returns
    -------
    ExportContent
        Higher ``vs_share`` = more foreign value added per unit of exports
        (deeper backward participation in value chains).

    Raises
    ------
    DataError
        No split in the table and ``import_split`` not given, or the
        proportional import share falls outside [0, 1].

    Notes
    -----
    With ``A^D_ij = Z^D_ij / Y_j``, ``A^M_ij = Z^M_ij / Y_j``,
    ``v_j = VA_j / Y_j`` and ``L = (I - A^D)^{-1}``:
    ``VS = u' A^M L E / u' E`` and ``DVA share = v' L E / u' E``. Since each
    column satisfies ``u' A^D + u' A^M + v' = u'``, ``(u' A^M + v') L = u'``
    and the two shares add to 1. ``E`` is exports of domestically produced
    goods; re-exports of imports are left out because they carry no domestic
    production.
    """
    y = table.gross_output
    safe_y = np.where(y > 0, y, 1.0)
    if import_split is None:
        import_split = "table" if table.has_import_split else None
    if import_split is None:
        raise DataError(
            f"{table.source} is a competitive-import table without a domestic/import split of "
            "intermediate use, so the import content of exports needs an assumption. Fix: "
            "pass import_split='proportional' (import share of absorption applied to every "
            "user), or use an NBS table for 2017, 2018 or 2020."
        )
    if import_split == "table":
        if not table.has_import_split:
            raise DataError(
                f"{table.source} has no domestic/import split; use import_split='proportional'."
            )
        assert table.Z_domestic is not None
        assert table.Z_imports is not None
        a_domestic = table.Z_domestic / safe_y
        a_imports = table.Z_imports / safe_y
        exports = table.exports_domestic if table.exports_domestic is not None else table.exports
    elif import_split == "proportional":
        absorption = y - table.exports + table.imports
        share = np.divide(
            table.imports, absorption, out=np.zeros_like(absorption), where=absorption > 0
        )
        if np.any((share < 0) | (share > 1)):
            i = int(np.argmax((share < 0) | (share > 1)))
            raise DataError(
                f"{table.source}: import share of absorption for sector {table.sector_codes[i]} "
                f"is {share[i]:.4f}, outside [0, 1]; the proportional split is not usable."
            )
        a_total = table.Z / safe_y
        a_imports = share[:, None] * a_total
        a_domestic = a_total - a_imports
        exports = table.exports
    else:
        raise DataError(f"Unknown import_split {import_split!r}; use 'table' or 'proportional'.")
    va_coefficients = table.value_added / safe_y
    vs, dva = export_content_kernel(a_domestic, a_imports, va_coefficients, exports)
    total_exports = exports.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame(
            {
                "exports": exports,
                "vs": vs,
                "dva": dva,
                "vs_share": np.where(exports > 0, vs / exports, np.nan),
                "dva_share": np.where(exports > 0, dva / exports, np.nan),
            },
            index=pd.Index(table.sector_codes, name="sector"),
        )
    return ExportContent(
        by_sector=frame,
        vs_share=float(vs.sum() / total_exports),
        dva_share=float(dva.sum() / total_exports),
        import_split=import_split,
    )


# --------------------------------------------------------------------------- KWW indices


def kww_gvc_indices(
    z: np.ndarray,
    final_demand: np.ndarray,
    gross_output: np.ndarray,
    n_regions: int,
    region_names: list[str] | None = None,
    iv_definition: Literal["vs1", "third_country"] = "vs1",
) -> pd.DataFrame:
    """Compute GVC participation and position per region from a multi-region table.

    Parameters
    ----------
    z : numpy.ndarray, shape (G*N, G*N)
        Inter-region intermediate use; block ``(r, s)`` is products of region
        ``r`` used by sectors of region ``s``. Rows and columns are ordered
        region by region, sector within region.
    final_demand : numpy.ndarray, shape (G*N, G)
        Final use of each region-product by each destination region.
    gross_output : numpy.ndarray, shape (G*N,)
    n_regions : int
        ``G``; the number of sectors ``N`` is ``len(gross_output) / G``.
    region_names : list of str, optional
    iv_definition : {"vs1", "third_country"}
        ``"vs1"`` (default): ``IV_r = sum_{s != r} V^r B^{rs} E^{s}``, region
        ``r``'s value added in the gross exports of every other region, the
        measure used by Koopman, Powers, Wang and Wei (2010); it includes value
        added that returns home. ``"third_country"``: term 3 of the
        Koopman-Wang-Wei (2014) decomposition,
        ``sum_{s != r} sum_{t != r, s} V^r B^{rs} Y^{st}``, value added in
        intermediates that the importer re-exports to third regions in final
        goods; it is 0 when ``G = 2``.

    Returns
    -------
    pandas.DataFrame
        Indexed by region with columns ``exports`` (gross), ``dv``
        (``V^r B^{rr} E^r``, domestic content), ``fv`` (foreign content
        ``sum_{t != r} V^t B^{tr} E^r``), ``iv``, ``participation``
        (``IV/E + FV/E``; higher = more involved in value chains) and
        ``position`` (``ln(1 + IV/E) - ln(1 + FV/E)``; higher = more upstream,
        supplying value added to others rather than using theirs).

    Raises
    ------
    DataError
        Inconsistent shapes or non-positive gross output with positive use.

    Notes
    -----
    ``A = Z diag(x)^{-1}``, ``B = (I - A)^{-1}``, ``v = 1 - u'A`` (value-added
    coefficients as the residual of each column). Region ``r``'s gross exports
    ``E^r = sum_{s != r} (A^{rs} x^s + Y^{rs})`` by sector. Because the columns
    of ``V B`` sum to 1, ``dv + fv = exports``.
    """
    z = np.asarray(z, dtype=float)
    final_demand = np.asarray(final_demand, dtype=float)
    x = np.asarray(gross_output, dtype=float)
    gn = x.shape[0]
    if n_regions < 2 or gn % n_regions:
        raise DataError(
            f"gross_output has {gn} entries, which is not a multiple of n_regions={n_regions} "
            "(at least 2 regions are needed)."
        )
    n = gn // n_regions
    if z.shape != (gn, gn) or final_demand.shape != (gn, n_regions):
        raise DataError(
            f"Expected z of shape {(gn, gn)} and final_demand of shape {(gn, n_regions)}, got "
            f"{z.shape} and {final_demand.shape}."
        )
    if np.any((x <= 0) & (z.sum(axis=1) + final_demand.sum(axis=1) > 0)):
        raise DataError("gross_output must be positive for every region-sector that is used.")
    names = region_names or [f"region_{g}" for g in range(n_regions)]
    safe_x = np.where(x > 0, x, 1.0)
    a = z / safe_x
    b = np.linalg.inv(np.eye(gn) - a)
    v = 1.0 - a.sum(axis=0)

    def block(g: int) -> slice:
        return slice(g * n, (g + 1) * n)

    exports = np.zeros(gn)
    for r in range(n_regions):
        for s in range(n_regions):
            if s != r:
                exports[block(r)] += z[block(r), block(s)].sum(axis=1) + final_demand[block(r), s]

    rows = []
    for r in range(n_regions):
        e_r = exports[block(r)]
        dv = v[block(r)] @ b[block(r), block(r)] @ e_r
        fv = sum(v[block(t)] @ b[block(t), block(r)] @ e_r for t in range(n_regions) if t != r)
        if iv_definition == "vs1":
            iv = sum(
                v[block(r)] @ b[block(r), block(s)] @ exports[block(s)]
                for s in range(n_regions)
                if s != r
            )
        elif iv_definition == "third_country":
            iv = sum(
                v[block(r)] @ b[block(r), block(s)] @ final_demand[block(s), t]
                for s in range(n_regions)
                if s != r
                for t in range(n_regions)
                if t not in (r, s)
            )
        else:
            raise DataError(
                f"Unknown iv_definition {iv_definition!r}; use 'vs1' or 'third_country'."
            )
        total = e_r.sum()
        rows.append(
            {
                "region": names[r],
                "exports": total,
                "dv": float(dv),
                "fv": float(fv),
                "iv": float(iv),
                "participation": float(iv / total + fv / total),
                "position": float(np.log1p(iv / total) - np.log1p(fv / total)),
            }
        )
    return pd.DataFrame(rows).set_index("region")
