"""Firm-year export DVAR and export upstreamness from China Customs transactions.

Users bring the transaction records (they are licensed and never shipped). The
file is read by DuckDB straight from CSV or Parquet with SQL, so it is never
loaded into pandas; only the firm-year result (one row per firm and year) is
returned as a DataFrame. DuckDB's memory limit and thread count are settable
through :class:`EngineSettings`, and DuckDB spills to disk above the limit.

Input schema (one row per transaction or per firm-product-regime-partner line):

=========  ==========================================================
column     meaning
=========  ==========================================================
firm_id    firm identifier (string)
year       calendar year (integer)
hs_code    8-digit HS code as a string (leading zeros kept)
regime     customs regime, one of :data:`VALID_REGIMES` or an alias
flow       ``export`` or ``import``
value      value in USD, non-negative
partner    partner country, ISO 3166 alpha-3
city       6-digit administrative code of the firm's city
=========  ==========================================================

The measures and each Kee-Tang adjustment are described in
``docs/gvc_measures.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from polygvc.atomic import atomic_path
from polygvc.data_prep.customs_read import (
    DEFAULT_REGIME_ALIASES,
    PROCESSING_REGIMES,
    REQUIRED_COLUMNS,
    VALID_FLOWS,
    VALID_REGIMES,
    CustomsSource,
    EngineSettings,
    clean_view_sql,
    customs_inventory,
    longest_prefix_map,
    read_hs_sector_concordance,
    read_small_csv,
    share_column,
    sql_literal,
)
from polygvc.errors import ConfigError, DataError

__all__ = [
    "BEC_CAPITAL_CODES",
    "DEFAULT_REGIME_ALIASES",
    "PROCESSING_REGIMES",
    "REQUIRED_COLUMNS",
    "VALID_FLOWS",
    "VALID_REGIMES",
    "BuildReport",
    "EngineSettings",
    "FirmYearMeasures",
    "KeeTangOptions",
    "aggregate_measures",
    "build_firm_year_measures",
    "read_hs_sector_concordance",
]

logger = logging.getLogger(__name__)

# BEC Rev. 4 codes of capital goods: 41 (capital goods except transport
# equipment) and 521 (transport equipment, industrial).
BEC_CAPITAL_CODES = ("41", "521")


@dataclass(frozen=True)
class KeeTangOptions:
    """Switches for the Kee and Tang (2016) firm-level DVAR adjustments.

    Attributes
    ----------
    processing_only : bool
        (a) ``True`` (default): DVAR of processing trade, processing imports
        over processing exports; firm-years without processing exports get no
        DVAR. ``False``: every regime pooled, all imports over all exports,
        with ordinary imports scaled by ``firm_sales_path`` when given.
    firm_sales_path : str or Path or None
        CSV ``firm_id, year, total_sales`` (USD). Used only when
        ``processing_only`` is ``False``: ordinary imports used in ordinary
        exports are ``M_ordinary * X_ordinary / (sales - X_processing)``.
    exclude_capital_goods : bool
        (b) Drop imports of capital goods (BEC 41 and 521). Needs
        ``bec_concordance_path``; without it the adjustment is off.
    bec_concordance_path : str or Path or None
        CSV ``hs_prefix, bec`` (HS code prefix of 2 to 8 digits, BEC code).
    intermediaries : {"keep", "drop", "adjust"}
        (c) ``"keep"``: no adjustment. ``"drop"``: drop the rows of the
        trade-intermediary firms listed in ``intermediary_ids_path``.
        ``"adjust"``: drop them and inflate each producer's ordinary imports of
        an HS6 product by ``1 / (1 - s)``, where ``s`` is the intermediaries'
        share of ordinary imports of that product and year.
    intermediary_ids_path : str or Path or None
        CSV with a ``firm_id`` column.
    max_intermediary_share : float
        Cap on ``s`` so that ``1 / (1 - s)`` stays finite.
    domestic_content : bool
        (d) Remove the domestic content of imported materials and add the
        foreign content of domestic materials. Needs
        ``import_domestic_content_path``; ``domestic_materials_path`` is
        optional.
    import_domestic_content_path : str or Path or None
        CSV ``hs_prefix, domestic_share``: share of Chinese value added in
        imports of that product (from an inter-country table), in [0, 1].
    domestic_materials_path : str or Path or None
        CSV ``firm_id, year, domestic_materials, foreign_share``: the firm's
        purchases of domestic materials (USD) and their foreign content share.
    bounds : {"drop", "clip", "keep"}
        (e) What to do with DVAR outside [0, 1]: set it to missing with a
        status (default, as Kee and Tang drop such firms), clip it, or keep it.
    trim_quantiles : tuple of float or None
        (e) Also set DVAR to missing below and above these quantiles, e.g.
        ``(0.01, 0.99)``.
    """

    processing_only: bool = True
    firm_sales_path: str | Path | None = None
    exclude_capital_goods: bool = False
    bec_concordance_path: str | Path | None = None
    intermediaries: Literal["keep", "drop", "adjust"] = "keep"
    intermediary_ids_path: str | Path | None = None
    max_intermediary_share: float = 0.95
    domestic_content: bool = False
    import_domestic_content_path: str | Path | None = None
    domestic_materials_path: str | Path | None = None
    bounds: Literal["drop", "clip", "keep"] = "drop"
    trim_quantiles: tuple[float, float] | None = None

    def check(self) -> None:
        """Raise ConfigError for a switch that lacks its input table or has a bad value."""
        if self.exclude_capital_goods and self.bec_concordance_path is None:
            raise ConfigError(
                "KeeTangOptions.exclude_capital_goods is True but bec_concordance_path is not "
                "set. Capital goods can only be told apart with an HS-to-BEC concordance. Fix: "
                "pass a CSV with columns hs_prefix, bec, or set exclude_capital_goods=False."
            )
        if self.intermediaries not in ("keep", "drop", "adjust"):
            raise ConfigError(
                f"KeeTangOptions.intermediaries is {self.intermediaries!r}; valid values are "
                "'keep', 'drop' and 'adjust'."
            )
        if self.intermediaries != "keep" and self.intermediary_ids_path is None:
            raise ConfigError(
                f"KeeTangOptions.intermediaries is {self.intermediaries!r} but "
                "intermediary_ids_path is not set. Fix: pass a CSV with a firm_id column listing "
                "trade intermediaries, or set intermediaries='keep'."
            )
        if self.domestic_content and self.import_domestic_content_path is None:
            raise ConfigError(
                "KeeTangOptions.domestic_content is True but import_domestic_content_path is not "
                "set. The domestic content of imports cannot be read from customs records. Fix: "
                "pass a CSV with columns hs_prefix, domestic_share (from an inter-country "
                "input-output table), or set domestic_content=False."
            )
        if self.bounds not in ("drop", "clip", "keep"):
            raise ConfigError(
                f"KeeTangOptions.bounds is {self.bounds!r}; valid values are 'drop', 'clip', "
                "'keep'."
            )
        if not 0 <= self.max_intermediary_share < 1:
            raise ConfigError(
                f"KeeTangOptions.max_intermediary_share is {self.max_intermediary_share}; it "
                "must be in [0, 1)."
            )
        if self.trim_quantiles is not None:
            low, high = self.trim_quantiles
            if not 0 <= low < high <= 1:
                raise ConfigError(
                    f"KeeTangOptions.trim_quantiles is {self.trim_quantiles}; give (low, high) "
                    "with 0 <= low < high <= 1."
                )


@dataclass
class BuildReport:
    """Counts and shares from one firm-year build, for the run log and the docs.

    Attributes
    ----------
    source : str
    n_rows : int
        Transaction rows read.
    n_firm_years : int
    export_value, import_value : float
        Totals over the input (USD).
    dvar_status_counts : dict
        Firm-years per DVAR status (``ok``, ``below_0``, ``above_1``,
        ``trimmed``, ``no_exports_in_scope``).
    capital_goods_import_share : float or None
        Share of import value classed as capital goods (adjustment b).
    bec_unmatched_import_share : float or None
        Share of import value whose HS code has no BEC entry (kept as materials).
    intermediary_rows_dropped : int
    unmatched_export_share : float or None
        Share of export value whose HS code has no IO sector.
    unmatched_hs_codes : list of str
        Unmatched HS codes with the largest export value (up to 20).
    notes : list of str
    """

    source: str
    n_rows: int = 0
    n_firm_years: int = 0
    export_value: float = 0.0
    import_value: float = 0.0
    dvar_status_counts: dict[str, int] = field(default_factory=dict)
    capital_goods_import_share: float | None = None
    bec_unmatched_import_share: float | None = None
    intermediary_rows_dropped: int = 0
    unmatched_export_share: float | None = None
    unmatched_hs_codes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class FirmYearMeasures:
    """Firm-year DVAR and export upstreamness with the build report.

    Attributes
    ----------
    firm_year : pandas.DataFrame
        One row per firm and year; see :func:`build_firm_year_measures`.
    report : BuildReport
    """

    firm_year: pd.DataFrame
    report: BuildReport


# --------------------------------------------------------------------------- build


def _hs_table(
    inventory: pd.DataFrame,
    options: KeeTangOptions,
    concordance: pd.DataFrame | None,
    sector_upstreamness: pd.Series | None,
) -> pd.DataFrame:
    """Build the per-HS-code lookup: sector upstreamness, capital flag, domestic content."""
    codes = pd.Series(sorted(inventory["hs_code"].unique()), name="hs_code")
    table = pd.DataFrame({"hs_code": codes})
    table["upstreamness"] = np.nan
    if concordance is not None and sector_upstreamness is not None:
        sectors = longest_prefix_map(codes, concordance["hs_prefix"], concordance["sector"])
        levels = {str(k): float(v) for k, v in sector_upstreamness.items()}
        unknown = sorted(set(concordance["sector"]) - set(levels))
        if unknown:
            raise DataError(
                f"The HS-to-sector concordance uses sector code(s) {unknown[:5]} that have no "
                f"upstreamness value; the upstreamness series has {sorted(levels)[:8]}... Fix: "
                "use the same sector codes in both."
            )
        table["upstreamness"] = sectors.map(levels).astype(float)
    table["is_capital"] = False
    table["bec_matched"] = True
    if options.exclude_capital_goods:
        assert options.bec_concordance_path is not None
        bec = read_small_csv(options.bec_concordance_path, ["hs_prefix", "bec"], "BEC concordance")
        codes_bec = longest_prefix_map(codes, bec["hs_prefix"], bec["bec"])
        table["bec_matched"] = codes_bec.notna().to_numpy()
        table["is_capital"] = codes_bec.isin(BEC_CAPITAL_CODES).to_numpy()
    table["domestic_share"] = 0.0
    if options.domestic_content:
        assert options.import_domestic_content_path is not None
        path = options.import_domestic_content_path
        shares = read_small_csv(path, ["hs_prefix", "domestic_share"], "domestic-content table")
        values = share_column(shares, "domestic_share", path, "domestic-content table")
        mapped = longest_prefix_map(codes, shares["hs_prefix"], values)
        table["domestic_share"] = pd.to_numeric(mapped, errors="coerce").fillna(0.0).to_numpy()
    return table


def _intermediary_shares(inventory: pd.DataFrame, cap: float) -> pd.DataFrame:
    """Intermediaries' share of ordinary imports by HS6 product and year."""
    ordinary = inventory[(inventory["flow"] == "import") & (inventory["regime"] == "ordinary")]
    ordinary = ordinary.assign(hs6=ordinary["hs_code"].str.slice(0, 6))
    grouped = (
        ordinary.groupby(["hs6", "year", "is_intermediary"])["value"].sum().unstack(fill_value=0.0)
    )
    via = grouped[True] if True in grouped.columns else pd.Series(0.0, index=grouped.index)
    total = grouped.sum(axis=1)
    share = (via / total.where(total > 0)).fillna(0.0).clip(upper=cap)
    return share.rename("intermediary_share").reset_index()


def build_firm_year_measures(
    source: str | Path,
    options: KeeTangOptions | None = None,
    *,
    hs_sector_path: str | Path | None = None,
    sector_upstreamness: pd.Series | None = None,
    regime_aliases: Mapping[str, str] | None = None,
    engine: EngineSettings | None = None,
    output_path: str | Path | None = None,
) -> FirmYearMeasures:
    """Build firm-year export DVAR (Kee and Tang 2016) and export upstreamness.

    Parameters
    ----------
    source : str or Path
        Customs transactions: a CSV (optionally gzip), a Parquet file or a
        folder of Parquet files, with the columns in the module docstring.
    options : KeeTangOptions, optional
        DVAR adjustments; default: processing trade, no other adjustment,
        firm-years with DVAR outside [0, 1] set to missing.
    hs_sector_path : str or Path, optional
        HS-to-IO-sector concordance (CSV ``hs_prefix, sector``); needed with
        ``sector_upstreamness``.
    sector_upstreamness : pandas.Series, optional
        Upstreamness per sector code, e.g. from
        :func:`polygvc.data_prep.io_tables.upstreamness`.
    regime_aliases : mapping, optional
        Extra regime labels mapped to :data:`VALID_REGIMES`, added to
        :data:`DEFAULT_REGIME_ALIASES`.
    engine : EngineSettings, optional
        DuckDB memory limit, threads and CSV encoding.
    output_path : str or Path, optional
        Also write the firm-year table to this Parquet file (atomically).

    Returns
    -------
    FirmYearMeasures
        ``firm_year`` has one row per firm and year with: ``firm_id``,
        ``year``, ``city`` (city with the largest export value, then import
        value), ``trader_type`` (``processing``, ``ordinary``, ``mixed``,
        ``import_only``), export and import totals by regime group,
        ``exports_in_scope`` and ``imports_used`` (numerator and denominator of
        DVAR after adjustments), ``dvar``, ``dvar_status``, ``upstreamness``,
        ``exports_matched`` and ``unmatched_export_share``.

    Raises
    ------
    ConfigError
        A switch is enabled without its input table.
    DataError
        Unreadable file, missing columns, unknown regime or flow labels,
        invalid values; messages name the file and column.

    Notes
    -----
    Kee and Tang (2016, AER 106(6)): for a processing exporter,
    ``DVAR = 1 - (M^P - M^K - delta^D M^P + delta^F D) / X^P``, with processing
    imports ``M^P``, imported capital goods ``M^K``, the domestic content of
    imports ``delta^D``, domestic materials ``D`` with foreign content
    ``delta^F`` and processing exports ``X^P``. Higher DVAR = more domestic
    value added per dollar of exports.

    Export upstreamness (Chor, Manova and Yu 2021):
    ``U_ft = sum_h X_fht U_s(h) / sum_h X_fht`` over the firm's exports whose
    HS code maps to an IO sector ``s(h)``; higher = the firm exports goods
    further from final use. Export value without a sector is reported in
    ``unmatched_export_share``, never dropped silently.
    """
    options = options or KeeTangOptions()
    options.check()
    engine = engine or EngineSettings()
    if (hs_sector_path is None) != (sector_upstreamness is None):
        raise ConfigError(
            "Export upstreamness needs both hs_sector_path and sector_upstreamness; only one "
            "was given. Fix: pass both, or neither to skip upstreamness."
        )
    concordance = read_hs_sector_concordance(hs_sector_path) if hs_sector_path else None
    aliases = {**DEFAULT_REGIME_ALIASES, **(regime_aliases or {})}
    bad_targets = sorted({v for v in aliases.values() if v not in VALID_REGIMES})
    if bad_targets:
        raise ConfigError(
            f"regime_aliases map to unknown regime(s) {bad_targets}; valid: {list(VALID_REGIMES)}."
        )

    connection = engine.connect()
    reader = CustomsSource(source, connection, engine)
    try:
        result = _build(connection, reader, options, concordance, sector_upstreamness, aliases)
    finally:
        reader.close()
        connection.close()
    if output_path is not None:
        with atomic_path(output_path) as tmp:
            result.firm_year.to_parquet(tmp, index=False)
    return result


def _build(
    connection: duckdb.DuckDBPyConnection,
    reader: CustomsSource,
    options: KeeTangOptions,
    concordance: pd.DataFrame | None,
    sector_upstreamness: pd.Series | None,
    aliases: Mapping[str, str],
) -> FirmYearMeasures:
    report = BuildReport(source=str(reader.path))
    connection.execute(clean_view_sql(reader.columns, aliases))
    with_intermediaries = options.intermediaries != "keep"
    if with_intermediaries:
        assert options.intermediary_ids_path is not None
        ids = read_small_csv(options.intermediary_ids_path, ["firm_id"], "intermediary list")
        connection.register("intermediary_ids_df", ids.drop_duplicates())
        connection.execute(
            "CREATE TEMP TABLE intermediary_ids AS SELECT * FROM intermediary_ids_df"
        )

    try:
        inventory = customs_inventory(connection, reader, with_intermediaries)
    except duckdb.InvalidInputException as exc:
        raise reader._read_error(exc) from exc
    report.n_rows = int(inventory["n_rows"].sum())
    report.export_value = float(inventory.loc[inventory["flow"] == "export", "value"].sum())
    report.import_value = float(inventory.loc[inventory["flow"] == "import", "value"].sum())
    logger.info("customs inventory: %d rows from %s", report.n_rows, reader.path)

    hs_table = _hs_table(inventory, options, concordance, sector_upstreamness)
    connection.register("hs_table_df", hs_table)
    connection.execute("CREATE TEMP TABLE hs_table AS SELECT * FROM hs_table_df")

    imports = inventory[inventory["flow"] == "import"].merge(hs_table, on="hs_code", how="left")
    if options.exclude_capital_goods and report.import_value > 0:
        report.capital_goods_import_share = float(
            imports.loc[imports["is_capital"], "value"].sum() / report.import_value
        )
        report.bec_unmatched_import_share = float(
            imports.loc[~imports["bec_matched"], "value"].sum() / report.import_value
        )
    share_join = ""
    share_factor = "1.0"
    if with_intermediaries:
        report.intermediary_rows_dropped = int(
            inventory.loc[inventory["is_intermediary"], "n_rows"].sum()
        )
    if options.intermediaries == "adjust":
        shares = _intermediary_shares(inventory, options.max_intermediary_share)
        connection.register("intermediary_share_df", shares)
        connection.execute(
            "CREATE TEMP TABLE intermediary_share AS SELECT * FROM intermediary_share_df"
        )
        share_join = (
            "LEFT JOIN intermediary_share s ON substr(t.hs_code, 1, 6) = s.hs6 AND t.year = s.year"
        )
        share_factor = "1.0 / (1.0 - coalesce(s.intermediary_share, 0.0))"
    exclude = (
        "WHERE t.firm_id NOT IN (SELECT firm_id FROM intermediary_ids)"
        if with_intermediaries
        else ""
    )
    processing = ", ".join(sql_literal(r) for r in PROCESSING_REGIMES)
    keep_import = "NOT h.is_capital" if options.exclude_capital_goods else "true"
    material = "(1.0 - h.domestic_share)"

    # One pass over the transactions, grouped by firm, year and city; a second,
    # small aggregation rolls the cities up to the firm-year.
    connection.execute(
        f"""
        CREATE TEMP TABLE firm_year_city AS
        SELECT t.firm_id, t.year, t.city,
            sum(t.value) FILTER (WHERE t.flow = 'export') AS exports,
            sum(t.value) FILTER (WHERE t.flow = 'export' AND t.regime IN ({processing}))
                AS exports_processing,
            sum(t.value) FILTER (WHERE t.flow = 'export' AND t.regime = 'ordinary')
                AS exports_ordinary,
            sum(t.value) FILTER (WHERE t.flow = 'import') AS imports,
            sum(t.value) FILTER (WHERE t.flow = 'import' AND t.regime IN ({processing}))
                AS imports_processing,
            sum(t.value) FILTER (WHERE t.flow = 'import' AND t.regime = 'ordinary')
                AS imports_ordinary,
            sum(t.value * {material}) FILTER (
                WHERE t.flow = 'import' AND t.regime IN ({processing}) AND {keep_import}
            ) AS materials_processing,
            sum(t.value * {material} * {share_factor}) FILTER (
                WHERE t.flow = 'import' AND t.regime = 'ordinary' AND {keep_import}
            ) AS materials_ordinary,
            sum(t.value * {material}) FILTER (
                WHERE t.flow = 'import' AND t.regime NOT IN ({processing}, 'ordinary')
                AND {keep_import}
            ) AS materials_other,
            sum(t.value) FILTER (WHERE t.flow = 'export' AND h.upstreamness IS NOT NULL)
                AS exports_matched,
            sum(t.value * h.upstreamness) FILTER (
                WHERE t.flow = 'export' AND h.upstreamness IS NOT NULL
            ) AS exports_times_upstreamness
        FROM tx t
        JOIN hs_table h ON t.hs_code = h.hs_code
        {share_join}
        {exclude}
        GROUP BY t.firm_id, t.year, t.city
        """
    )
    firm_year = connection.execute(
        """
        SELECT firm_id, year,
            arg_max(city, (coalesce(exports, 0), coalesce(imports, 0), city)) AS city,
            coalesce(sum(exports), 0) AS exports,
            coalesce(sum(exports_processing), 0) AS exports_processing,
            coalesce(sum(exports_ordinary), 0) AS exports_ordinary,
            coalesce(sum(imports), 0) AS imports,
            coalesce(sum(imports_processing), 0) AS imports_processing,
            coalesce(sum(imports_ordinary), 0) AS imports_ordinary,
            coalesce(sum(materials_processing), 0) AS materials_processing,
            coalesce(sum(materials_ordinary), 0) AS materials_ordinary,
            coalesce(sum(materials_other), 0) AS materials_other,
            coalesce(sum(exports_matched), 0) AS exports_matched,
            coalesce(sum(exports_times_upstreamness), 0) AS exports_times_upstreamness
        FROM firm_year_city
        GROUP BY firm_id, year
        ORDER BY firm_id, year
        """
    ).df()
    firm_year = _finish_dvar(firm_year, options, report)
    _finish_upstreamness(firm_year, inventory, hs_table, concordance is not None, report)
    report.n_firm_years = len(firm_year)
    return FirmYearMeasures(firm_year=firm_year, report=report)


def _finish_dvar(
    firm_year: pd.DataFrame, options: KeeTangOptions, report: BuildReport
) -> pd.DataFrame:
    """Compute DVAR from the firm-year sums and apply the bounds and trimming rules."""
    firm_year["year"] = firm_year["year"].astype("int64")
    exports_other = (
        firm_year["exports"] - firm_year["exports_processing"] - firm_year["exports_ordinary"]
    )
    has_processing = firm_year["exports_processing"] > 0
    has_ordinary = (firm_year["exports_ordinary"] + exports_other) > 0
    firm_year["trader_type"] = np.select(
        [has_processing & ~has_ordinary, ~has_processing & has_ordinary, has_processing],
        ["processing", "ordinary", "mixed"],
        default="import_only",
    )

    foreign_in_domestic = pd.Series(0.0, index=firm_year.index)
    if options.domestic_content and options.domestic_materials_path is not None:
        path = options.domestic_materials_path
        materials = read_small_csv(
            path, ["firm_id", "year", "domestic_materials", "foreign_share"], "domestic materials"
        )
        share = share_column(materials, "foreign_share", path, "domestic materials table")
        amount = pd.to_numeric(materials["domestic_materials"], errors="coerce")
        if amount.isna().any() or (amount < 0).any():
            raise DataError(
                f"Domestic materials table {path}: column 'domestic_materials' must hold "
                "non-negative numbers (USD)."
            )
        materials = materials.assign(
            year=pd.to_numeric(materials["year"]).astype("int64"), foreign=amount * share
        )
        merged = firm_year[["firm_id", "year"]].merge(
            materials[["firm_id", "year", "foreign"]], on=["firm_id", "year"], how="left"
        )
        foreign_in_domestic = merged["foreign"].fillna(0.0)

    if options.processing_only:
        firm_year["exports_in_scope"] = firm_year["exports_processing"]
        firm_year["imports_used"] = firm_year["materials_processing"] + foreign_in_domestic
    else:
        ordinary_use = pd.Series(1.0, index=firm_year.index)
        if options.firm_sales_path is not None:
            path = options.firm_sales_path
            sales = read_small_csv(path, ["firm_id", "year", "total_sales"], "firm sales table")
            sales = sales.assign(
                year=pd.to_numeric(sales["year"]).astype("int64"),
                total_sales=pd.to_numeric(sales["total_sales"], errors="coerce"),
            )
            merged = firm_year[["firm_id", "year"]].merge(sales, on=["firm_id", "year"], how="left")
            non_processing_sales = merged["total_sales"] - firm_year["exports_processing"]
            ratio = firm_year["exports_ordinary"] / non_processing_sales.where(
                non_processing_sales > 0
            )
            ordinary_use = ratio.clip(0.0, 1.0).fillna(1.0)
        firm_year["exports_in_scope"] = firm_year["exports"]
        firm_year["imports_used"] = (
            firm_year["materials_processing"]
            + firm_year["materials_ordinary"] * ordinary_use
            + firm_year["materials_other"]
            + foreign_in_domestic
        )

    in_scope = firm_year["exports_in_scope"] > 0
    dvar = 1.0 - firm_year["imports_used"] / firm_year["exports_in_scope"].where(in_scope)
    status = pd.Series(np.where(in_scope, "ok", "no_exports_in_scope"), index=firm_year.index)
    below, above = dvar < 0, dvar > 1
    if options.bounds == "drop":
        status[below] = "below_0"
        status[above] = "above_1"
        dvar = dvar.where(~(below | above))
    elif options.bounds == "clip":
        dvar = dvar.clip(0.0, 1.0)
    if options.trim_quantiles is not None:
        low, high = dvar.quantile(list(options.trim_quantiles))
        trimmed = (dvar < low) | (dvar > high)
        status[trimmed] = "trimmed"
        dvar = dvar.where(~trimmed)
    firm_year["dvar"] = dvar
    firm_year["dvar_status"] = status
    report.dvar_status_counts = {str(k): int(v) for k, v in status.value_counts().items()}
    return firm_year


def _finish_upstreamness(
    firm_year: pd.DataFrame,
    inventory: pd.DataFrame,
    hs_table: pd.DataFrame,
    has_concordance: bool,
    report: BuildReport,
) -> None:
    if not has_concordance:
        firm_year["upstreamness"] = np.nan
        firm_year["unmatched_export_share"] = np.nan
        report.notes.append("export upstreamness not computed: no HS-to-sector concordance given")
        del firm_year["exports_times_upstreamness"]
        return
    matched = firm_year["exports_matched"]
    firm_year["upstreamness"] = firm_year["exports_times_upstreamness"] / matched.where(matched > 0)
    firm_year["unmatched_export_share"] = 1.0 - matched / firm_year["exports"].where(
        firm_year["exports"] > 0
    )
    del firm_year["exports_times_upstreamness"]
    exports = inventory[inventory["flow"] == "export"].merge(hs_table, on="hs_code", how="left")
    unmatched = exports[exports["upstreamness"].isna()]
    total = exports["value"].sum()
    report.unmatched_export_share = float(unmatched["value"].sum() / total) if total > 0 else None
    by_code = unmatched.groupby("hs_code")["value"].sum().sort_values(ascending=False)
    report.unmatched_hs_codes = [str(c) for c in by_code.index[:20]]
    if report.unmatched_export_share:
        logger.info(
            "%.2f%% of export value has no IO sector (largest codes: %s)",
            100 * report.unmatched_export_share,
            report.unmatched_hs_codes[:5],
        )


# --------------------------------------------------------------------------- aggregation


def aggregate_measures(
    firm_year: pd.DataFrame,
    by: Literal["city", "province"] | pd.DataFrame = "province",
    group_column: str = "group",
) -> pd.DataFrame:
    """Aggregate firm-year DVAR and upstreamness to cities, provinces or user groups.

    Parameters
    ----------
    firm_year : pandas.DataFrame
        ``FirmYearMeasures.firm_year``.
    by : {"city", "province"} or pandas.DataFrame
        ``"city"``: the firm-year's main city; ``"province"``: its first two
        digits; a DataFrame with columns ``firm_id`` and ``group_column`` assigns
        firms to user groups (firms not listed are left out and counted).
    group_column : str
        Name of the group column in a user DataFrame.

    Returns
    -------
    pandas.DataFrame
        One row per group and year: ``n_firms``, ``exports``, ``dvar``
        (``sum X_f DVAR_f / sum X_f`` over firm-years with a DVAR, weights
        ``exports_in_scope``, which equals ``1 - sum M_f / sum X_f``),
        ``dvar_firms``, ``upstreamness`` (weights ``exports_matched``) and
        ``unmatched_export_share``.

    Raises
    ------
    DataError
        Missing columns in ``firm_year`` or in the group table.
    """
    needed = ["firm_id", "year", "city", "exports", "exports_in_scope", "dvar"]
    needed += ["exports_matched", "upstreamness"]
    missing = [c for c in needed if c not in firm_year.columns]
    if missing:
        raise DataError(
            f"firm_year lacks column(s) {missing}; pass the table from build_firm_year_measures."
        )
    frame = firm_year.copy()
    if isinstance(by, pd.DataFrame):
        if "firm_id" not in by.columns or group_column not in by.columns:
            raise DataError(
                f"The group table needs columns 'firm_id' and {group_column!r}; it has "
                f"{list(by.columns)}."
            )
        if by["firm_id"].duplicated().any():
            raise DataError("The group table lists a firm_id more than once.")
        frame = frame.merge(by[["firm_id", group_column]], on="firm_id", how="inner")
        key = group_column
        left_out = len(firm_year) - len(frame)
        if left_out:
            logger.info("aggregate_measures: %d firm-years have no group", left_out)
    elif by == "city":
        key = "city"
    elif by == "province":
        frame["province_code"] = frame["city"].str.slice(0, 2).astype(int)
        key = "province_code"
    else:
        raise DataError(f"Unknown grouping {by!r}; use 'city', 'province' or a DataFrame.")

    has_dvar = frame["dvar"].notna()
    has_u = frame["upstreamness"].notna()
    frame["w_dvar"] = np.where(has_dvar, frame["exports_in_scope"], 0.0)
    frame["wx_dvar"] = np.where(has_dvar, frame["exports_in_scope"] * frame["dvar"], 0.0)
    frame["w_u"] = np.where(has_u, frame["exports_matched"], 0.0)
    frame["wx_u"] = np.where(has_u, frame["exports_matched"] * frame["upstreamness"], 0.0)
    frame["has_dvar"] = has_dvar
    grouped = frame.groupby([key, "year"], sort=True).agg(
        n_firms=("firm_id", "nunique"),
        exports=("exports", "sum"),
        dvar_firms=("has_dvar", "sum"),
        w_dvar=("w_dvar", "sum"),
        wx_dvar=("wx_dvar", "sum"),
        w_u=("w_u", "sum"),
        wx_u=("wx_u", "sum"),
        exports_matched=("exports_matched", "sum"),
    )
    grouped["dvar"] = grouped["wx_dvar"] / grouped["w_dvar"].where(grouped["w_dvar"] > 0)
    grouped["upstreamness"] = grouped["wx_u"] / grouped["w_u"].where(grouped["w_u"] > 0)
    grouped["unmatched_export_share"] = 1.0 - grouped["exports_matched"] / grouped["exports"].where(
        grouped["exports"] > 0
    )
    return grouped.drop(columns=["w_dvar", "wx_dvar", "w_u", "wx_u"]).reset_index()
