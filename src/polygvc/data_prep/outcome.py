"""Province GVC outcomes from Wu, Li and Lei (2016).

Source: Wu, S., Li, S. and Lei, Y. (2016), "Estimation of the contribution of
exports to the provincial economy: an analysis based on China's
multi-regional input-output tables", SpringerPlus 5:210,
doi:10.1186/s40064-016-1803-7, Tables 3-6 (CC BY 4.0). The table ships with
polygvc as package data (``data/wu_li_lei_2016_province_export_va.csv``,
citation in ``data/CITATION.txt``).

What the numbers are, and what they are not:

* ``vae_gdp_pct`` is the value added generated in a province by China's
  exports, as a percentage of the province's GDP. It counts value added
  induced by *all* of China's exports, including other provinces' exports
  that use the province's inputs, so it measures how far a province's
  economy is tied to global demand through domestic supply chains.
* ``dvar_exports = vae_1e8yuan / exports_1e8yuan`` (2007 only, the one year
  with levels in the article) divides that value added by the province's own
  exports. It is a proxy for a domestic value-added ratio, not the
  Kee and Tang (2016) DVAR of a province's own exports. The numerator
  includes value added induced by other provinces' exports, so the ratio can
  exceed 1 for inland provinces that supply coastal exporters (Henan: 2.66).
* All figures are model-based multi-regional input-output estimates, rounded
  to integers in the article, so percentages carry about +-0.5 points of
  rounding error and small provinces' ratios are coarse.
* Tibet is not covered: the regional tables have 30 provinces.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import resources

import numpy as np
import pandas as pd

from polygvc.data_prep.names import province_region, province_table, resolve_series
from polygvc.errors import DataError

logger = logging.getLogger(__name__)

PACKAGE_FILE = "wu_li_lei_2016_province_export_va.csv"
CITATION = (
    "Wu, S., Li, S. and Lei, Y. (2016). Estimation of the contribution of exports to the "
    "provincial economy: an analysis based on China's multi-regional input-output tables. "
    "SpringerPlus 5:210. doi:10.1186/s40064-016-1803-7."
)
YEARS: tuple[int, ...] = (1997, 2002, 2007)
DVAR_YEAR = 2007
_COLUMNS = (
    "province",
    "region",
    "year",
    "export_dependence_pct",
    "vae_gdp_pct",
    "gdp_1e8yuan",
    "vae_1e8yuan",
    "exports_1e8yuan",
)


def load_wu_li_lei_2016() -> pd.DataFrame:
    """Load the Wu, Li and Lei (2016) province table shipped with polygvc.

    Returns
    -------
    pandas.DataFrame
        The table as published (30 provinces x 1997, 2002, 2007), with
        ``province`` replaced by the English canonical name and
        ``province_code`` (2-digit int) added. Percentages in percent, levels
        in 100 million yuan (current prices).

    Raises
    ------
    DataError
        The package file lacks a column, has duplicated province-years,
        negative values, a region that disagrees with the NBS division, or
        years other than 1997, 2002 and 2007.

    Notes
    -----
    See the module docstring for what each column measures. Citation:
    Wu, Li and Lei (2016), SpringerPlus 5:210, doi:10.1186/s40064-016-1803-7.
    """
    source = resources.files("polygvc.data_prep").joinpath("data", PACKAGE_FILE)
    with resources.as_file(source) as path:
        frame = pd.read_csv(path)
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"Package file {PACKAGE_FILE} lacks columns {missing}. Fix: reinstall polygvc "
            "or restore the file from the repository."
        )
    frame["province"] = resolve_series(frame["province"], source=f"{PACKAGE_FILE}, province")
    frame.insert(1, "province_code", frame["province"].map(_codes()).astype("int64"))

    duplicated = frame.duplicated(["province", "year"], keep=False)
    if duplicated.any():
        rows = frame.loc[duplicated, ["province", "year"]].to_dict("records")
        raise DataError(f"{PACKAGE_FILE}: duplicated province-years {rows}. Fix: restore it.")
    unexpected = sorted(set(frame["year"]) - set(YEARS))
    if unexpected:
        raise DataError(
            f"{PACKAGE_FILE}: years {unexpected} are not in the article ({YEARS}). Fix: restore it."
        )
    expected_region = frame["province"].map(province_region)
    wrong = frame["region"] != expected_region
    if wrong.any():
        rows = frame.loc[wrong, ["province", "region"]].drop_duplicates().to_dict("records")
        raise DataError(
            f"{PACKAGE_FILE}: column region disagrees with the NBS four-region division for "
            f"{rows}. Fix: correct the region column."
        )
    numeric = frame.select_dtypes("number").drop(columns=["province_code", "year"])
    negative = (numeric < 0).any(axis=1)
    if negative.any():
        rows = frame.loc[negative, ["province", "year"]].to_dict("records")
        raise DataError(f"{PACKAGE_FILE}: negative values in rows {rows}. Fix: restore it.")
    return frame


def _codes() -> dict[str, int]:
    table = province_table()
    return dict(zip(table["province"], table["province_code"], strict=True))


def province_outcomes(years: Iterable[int] | None = None) -> pd.DataFrame:
    """Return the GVC outcome variables per province and year.

    Parameters
    ----------
    years : iterable of int, optional
        Years to keep among 1997, 2002 and 2007. Default: all three.

    Returns
    -------
    pandas.DataFrame
        One row per covered province and year (30 provinces; no Tibet),
        sorted by ``province_code`` and ``year``, with columns ``province``,
        ``province_code``, ``year``, ``vae_gdp_pct`` (value added generated
        in the province by China's exports, % of provincial GDP; higher =
        more of the province's output depends on export demand) and
        ``dvar_exports`` (that value added divided by the province's own
        exports, 2007 only, NaN in other years; higher = more value added
        per yuan of own exports).

    Raises
    ------
    DataError
        The package table fails validation, or ``years`` requests a year
        the article does not cover.

    Notes
    -----
    ``dvar_exports = vae_1e8yuan / exports_1e8yuan`` is a proxy, not the
    Kee and Tang (2016) domestic value-added ratio: the numerator includes
    value added induced by other provinces' exports, so the ratio can exceed
    1. Values come from the multi-regional input-output estimates of
    Wu, Li and Lei (2016), SpringerPlus 5:210, rounded to integers there.
    Tibet is not covered.
    """
    table = load_wu_li_lei_2016()
    if years is not None:
        requested_years = sorted({int(y) for y in years})
        absent = [y for y in requested_years if y not in YEARS]
        if absent:
            raise DataError(
                f"Wu, Li and Lei (2016) has no outcomes for years {absent}. Fix: choose years "
                f"among {YEARS}."
            )
        table = table[table["year"].isin(requested_years)]

    exports = table["exports_1e8yuan"].to_numpy(dtype=float)
    vae = table["vae_1e8yuan"].to_numpy(dtype=float)
    is_dvar_year = table["year"].to_numpy() == DVAR_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(is_dvar_year & (exports > 0), vae / exports, np.nan)
    missing = is_dvar_year & ~np.isfinite(ratio)
    if missing.any():
        names = table.loc[missing, "province"].tolist()
        raise DataError(
            f"{PACKAGE_FILE}: {DVAR_YEAR} exports or export-induced value added are missing "
            f"or zero for {names}, so dvar_exports is undefined. Fix: restore the file."
        )

    out = pd.DataFrame(
        {
            "province": table["province"].astype("str"),
            "province_code": table["province_code"].astype("int64"),
            "year": table["year"].astype("int64"),
            "vae_gdp_pct": table["vae_gdp_pct"].astype("float64"),
            "dvar_exports": ratio,
        }
    )
    return out.sort_values(["province_code", "year"], ignore_index=True)
