"""Data report of a province-year panel: coverage, missingness, maps, trajectories.

:func:`write_data_report` writes one self-contained ``data_report.html``
(figures embedded as base64 PNG, Jinja2 with autoescape). It works for the
real panel of :func:`polygvc.data_prep.panel.build_province_panel` and for
the semi-synthetic panel of :mod:`polygvc.data_prep.semisynthetic`, and for
any panel with the ``province`` and ``year`` columns (missing contract
columns are reported, not required).

Statistics come first (:func:`coverage_table`, :func:`missing_by_province`,
:func:`missing_by_year`), then figures, then the HTML. No function modifies
the panel it is given.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from polygvc.atomic import write_text
from polygvc.data_prep.names import MUNICIPALITIES, province_table
from polygvc.errors import DataError, PolygvcError
from polygvc.reports.fonts import find_cjk_font, matplotlib_rc

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
REPORT_FILE = "data_report.html"
SECTION_IDS = ("coverage", "missing-province", "missing-year", "maps", "trajectories", "exclusions")
MAP_INDEX = "poly_entropy_norm"
MAP_YEARS = (2002, 2007)
ALBERS_CHINA = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +ellps=WGS84 +units=m +no_defs"
REGION_COLORS = {"East": "#1b6ca8", "Central": "#d9822b", "West": "#2e8b57", "Northeast": "#8e44ad"}

# Column -> source, in the order of the panel contract.
COLUMN_SOURCES: dict[str, str] = {
    "n_cities": "city light",
    "poly_rank_size_top2": "polycentricity (light)",
    "poly_rank_size_top3": "polycentricity (light)",
    "poly_rank_size_top4": "polycentricity (light)",
    "poly_rank_size_all": "polycentricity (light)",
    "poly_primacy": "polycentricity (light)",
    "poly_hhi_norm": "polycentricity (light)",
    "poly_entropy_norm": "polycentricity (light)",
    "vae_gdp_pct": "GVC outcome",
    "dvar_exports": "GVC outcome",
    "mean_distance_km": "geography",
    "hsr_city_share": "infrastructure",
    "highway_segments": "infrastructure",
    "ruggedness": "terrain (instrument)",
    "elev_sd": "terrain (instrument)",
    "coast_distance_km": "geography (instrument)",
    "hist_poly_2000": "census 2000 (instrument)",
    "log_population": "census population",
    "gvc_sim": "simulated outcome",
}
_STRUCTURAL_YEARS = {"vae_gdp_pct": (1997, 2002, 2007), "dvar_exports": (2007,)}


def _check_panel(panel: pd.DataFrame) -> None:
    missing = [c for c in ("province", "year") if c not in panel.columns]
    if missing:
        raise DataError(
            f"The panel lacks the columns {missing}, which the data report needs. Fix: pass a "
            "province-year panel (build_province_panel or a panel file)."
        )


def _value_columns(panel: pd.DataFrame) -> list[str]:
    return [c for c in COLUMN_SOURCES if c in panel.columns]


def coverage_table(panel: pd.DataFrame) -> pd.DataFrame:
    """Tabulate coverage per column: present values, missing values, years with data.

    Parameters
    ----------
    panel : pandas.DataFrame
        Province-year panel.

    Returns
    -------
    pandas.DataFrame
        One row per value column of :data:`COLUMN_SOURCES` present in the
        panel: ``column``, ``source``, ``present``, ``missing``,
        ``share_present`` (in [0, 1]; higher = better covered),
        ``provinces`` (with at least one value), ``years`` (first-last year
        with a value) and ``note`` (outcomes observed only in survey years).

    Raises
    ------
    DataError
        ``province`` or ``year`` is missing.
    """
    _check_panel(panel)
    rows = []
    for column in _value_columns(panel):
        values = panel[column]
        present = values.notna()
        years = panel.loc[present, "year"]
        note = ""
        if column in _STRUCTURAL_YEARS:
            note = "observed in survey years " + ", ".join(map(str, _STRUCTURAL_YEARS[column]))
        rows.append(
            {
                "column": column,
                "source": COLUMN_SOURCES[column],
                "present": int(present.sum()),
                "missing": int((~present).sum()),
                "share_present": float(present.mean()) if len(values) else np.nan,
                "provinces": int(panel.loc[present, "province"].nunique()),
                "years": f"{years.min()}-{years.max()}" if len(years) else "none",
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def missing_by_province(panel: pd.DataFrame) -> pd.DataFrame:
    """Return the share of missing values per province (rows) and source (columns).

    Outcome columns count only their survey years, so a value that exists by
    design in 2002 and 2007 alone is not reported as missing in other years.
    Values are in [0, 1]; higher = more missing.
    """
    _check_panel(panel)
    sources: dict[str, list[str]] = {}
    for column in _value_columns(panel):
        sources.setdefault(COLUMN_SOURCES[column], []).append(column)
    table = province_table().set_index("province")
    rows = []
    for province, group in panel.groupby("province", sort=False):
        row: dict[str, object] = {"province": province, "label": _label(province, table)}
        for source, columns in sources.items():
            shares = []
            for column in columns:
                years = _STRUCTURAL_YEARS.get(column)
                part = group if years is None else group[group["year"].isin(years)]
                if len(part):
                    shares.append(float(part[column].isna().mean()))
            row[source] = float(np.mean(shares)) if shares else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    code = out["province"].map(table["province_code"]) if len(out) else pd.Series(dtype=float)
    return out.assign(_code=code).sort_values("_code").drop(columns="_code").reset_index(drop=True)


def missing_by_year(panel: pd.DataFrame) -> pd.DataFrame:
    """Return the number of provinces with a value, per year (rows) and column."""
    _check_panel(panel)
    columns = _value_columns(panel)
    counts = panel.groupby("year")[columns].count()
    counts.insert(0, "provinces", panel.groupby("year")["province"].nunique())
    return counts.reset_index()


def _label(province: str, table: pd.DataFrame) -> str:
    if province in table.index:
        return f"{table.at[province, 'province_zh']} {province}"
    return str(province)


def _png_base64(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def missingness_figure(by_province: pd.DataFrame, font=None) -> str:
    """Draw the province x source missingness heatmap; return base64 PNG."""
    import matplotlib.pyplot as plt

    values = by_province.drop(columns=["province", "label"])
    with plt.rc_context(matplotlib_rc(font)):
        fig, ax = plt.subplots(figsize=(1.0 + 0.75 * values.shape[1], 0.28 * len(values) + 1.6))
        image = ax.imshow(values.to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(values)), by_province["label"], fontsize=8)
        ax.set_xticks(range(values.shape[1]), values.columns, rotation=40, ha="right", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.6, label="share missing (higher = more missing)")
        return _png_base64(fig)


def choropleth_figure(panel: pd.DataFrame, polygons, column: str, year: int, font=None) -> str:
    """Map ``column`` in ``year`` by province; undefined provinces are hatched grey.

    The colour scale spans the column over all years, so maps of different
    years compare.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    values = panel[panel["year"] == year].set_index("province_code")[column]
    frame = polygons.to_crs(ALBERS_CHINA).copy()
    frame["value"] = frame["province_code"].map(values)
    has_value = frame["value"].notna()
    municipality_codes = set(
        province_table().set_index("province").loc[list(MUNICIPALITIES), "province_code"]
    )
    with plt.rc_context(matplotlib_rc(font)):
        fig, ax = plt.subplots(figsize=(5.6, 4.4))
        if has_value.any():
            frame[has_value].plot(
                column="value",
                cmap="viridis",
                ax=ax,
                edgecolor="#444444",
                linewidth=0.3,
                vmin=float(panel[column].min()),
                vmax=float(panel[column].max()),
                legend=True,
                legend_kwds={"label": column, "shrink": 0.6},
            )
        if (~has_value).any():
            frame[~has_value].plot(
                ax=ax, facecolor="#dddddd", edgecolor="#666666", hatch="////", linewidth=0.3
            )
        undefined = sorted(set(frame.loc[~has_value, "province_code"]))
        label = "undefined"
        if undefined and set(undefined) <= municipality_codes:
            label = "undefined (municipality: one light unit)"
        ax.legend(
            handles=[Patch(facecolor="#dddddd", edgecolor="#666666", hatch="////", label=label)],
            loc="lower left",
            fontsize=7,
            frameon=False,
        )
        ax.set_title(f"{column}, {year}", fontsize=9)
        ax.set_axis_off()
        return _png_base64(fig)


def trajectories_figure(panel: pd.DataFrame, column: str, font=None) -> str:
    """Draw one small panel per province of ``column`` over the years; base64 PNG."""
    import matplotlib.pyplot as plt

    table = province_table().set_index("province")
    provinces = [p for p in table.index if p in set(panel["province"])]
    extra = sorted(set(panel["province"]) - set(provinces))
    provinces += extra
    n_cols = 6
    n_rows = max(1, int(np.ceil(len(provinces) / n_cols)))
    finite = panel[column].dropna()
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    pad = 0.05 * (high - low if high > low else 1.0)
    with plt.rc_context(matplotlib_rc(font)):
        fig, axes = plt.subplots(
            n_rows, n_cols, figsize=(13, 1.9 * n_rows), sharex=True, sharey=True, squeeze=False
        )
        for ax, province in zip(axes.ravel(), provinces, strict=False):
            rows = panel[panel["province"] == province].sort_values("year")
            region = table.at[province, "region"] if province in table.index else ""
            color = REGION_COLORS.get(region, "#333333")
            if rows[column].notna().any():
                ax.plot(rows["year"], rows[column], color=color, linewidth=1.4)
            else:
                ax.text(
                    0.5,
                    0.5,
                    "undefined",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="#777777",
                )
            ax.set_title(_label(province, table), fontsize=8)
            ax.set_ylim(low - pad, high + pad)
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(provinces) :]:
            ax.set_axis_off()
        fig.suptitle(f"{column} by province (line colour = region)", fontsize=10)
        fig.tight_layout()
        return _png_base64(fig)


def _table(frame: pd.DataFrame, digits: int = 3) -> dict:
    def cell(value):
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    return {
        "columns": [str(c) for c in frame.columns],
        "rows": [[cell(v) for v in row] for row in frame.itertuples(index=False)],
    }


def _maps(panel: pd.DataFrame, font) -> tuple[list[dict], str]:
    if MAP_INDEX not in panel.columns or "province_code" not in panel.columns:
        return [], f"No map: the panel has no {MAP_INDEX} or province_code column."
    try:
        from polygvc.data_prep.geography import province_polygons

        polygons = province_polygons()
    except PolygvcError as exc:
        logger.info("Province polygons unavailable, maps left out: %s", exc)
        return [], f"No map: the province outlines could not be loaded ({exc})."
    defined = panel.loc[panel[MAP_INDEX].notna(), "year"]
    latest = int(defined.max()) if len(defined) else int(panel["year"].max())
    years = [y for y in MAP_YEARS if y in set(panel["year"])]
    years = sorted(set(years) | {latest})
    maps = [
        {"year": y, "image": choropleth_figure(panel, polygons, MAP_INDEX, y, font)} for y in years
    ]
    return maps, ""


def write_data_report(
    panel: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    title: str = "polygvc data report",
    join_report: pd.DataFrame | None = None,
) -> Path:
    """Write ``data_report.html`` describing a province-year panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Province-year panel (real or semi-synthetic).
    out_dir : str or path-like
        Folder for the report (created if needed).
    title : str, default "polygvc data report"
        Page title.
    join_report : pandas.DataFrame, optional
        Output of :func:`polygvc.data_prep.panel.panel_join_report`, shown
        as a table of sources per province.

    Returns
    -------
    pathlib.Path
        Path of the written ``data_report.html``.

    Raises
    ------
    DataError
        ``panel`` lacks ``province`` or ``year``.

    Notes
    -----
    Sections (HTML ids): ``coverage``, ``missing-province``,
    ``missing-year``, ``maps`` (choropleths of ``poly_entropy_norm`` in
    2002, 2007 and the latest year with values; higher = more polycentric;
    municipalities hatched), ``trajectories`` (2001-2020 per province),
    ``exclusions`` (``excluded_reason`` per province) and, with
    ``join_report``, ``join``. Province names are written in Chinese and
    English. Chinese glyphs in figures need a CJK font
    (:func:`polygvc.reports.fonts.find_cjk_font`); without one they show as
    boxes and a log line says so.
    """
    _check_panel(panel)
    font = find_cjk_font()
    if font is None:
        logger.info("No CJK font found; Chinese province names in figures will show as boxes.")
    table = province_table().set_index("province")

    coverage = coverage_table(panel)
    by_province = missing_by_province(panel)
    by_year = missing_by_year(panel)
    maps, map_note = _maps(panel, font)
    trajectories = trajectories_figure(panel, MAP_INDEX, font) if MAP_INDEX in panel.columns else ""
    exclusions = []
    if "excluded_reason" in panel.columns:
        reasons = panel.loc[
            panel["excluded_reason"].fillna("") != "", ["province", "excluded_reason"]
        ]
        for province, group in reasons.groupby("province", sort=False):
            exclusions.append(
                {
                    "province": _label(province, table),
                    "years": f"{group.index.size} rows",
                    "reason": " | ".join(dict.fromkeys(group["excluded_reason"])),
                }
            )

    years = sorted(panel["year"].unique().tolist())
    context = {
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "n_rows": len(panel),
        "n_provinces": int(panel["province"].nunique()),
        "years": f"{years[0]}-{years[-1]}" if years else "none",
        "coverage": _table(coverage),
        "by_province": _table(by_province.drop(columns="province"), digits=2),
        "missing_figure": missingness_figure(by_province, font) if len(by_province) else "",
        "by_year": _table(by_year),
        "maps": maps,
        "map_note": map_note,
        "map_index": MAP_INDEX,
        "trajectories": trajectories,
        "exclusions": exclusions,
        "join": _table(join_report) if join_report is not None else None,
        "section_ids": SECTION_IDS,
    }
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    html = environment.get_template("data_report.html.j2").render(**context)
    target = Path(out_dir) / REPORT_FILE
    write_text(target, html)
    logger.info("Wrote data report to %s.", target)
    return target
