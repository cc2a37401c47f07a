"""Figures of the policy brief: province choropleth and scenario comparison chart.

Both functions take plain tables, leave them unchanged and return PNG bytes.
Chinese labels need a CJK font (:mod:`polygvc.reports.fonts`); without one they
draw as boxes, which the PDF step rejects.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from polygvc.reports.fonts import CJKFont, matplotlib_rc

ALBERS_CHINA = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +ellps=WGS84 +units=m +no_defs"


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def choropleth_png(
    polygons,
    values: pd.Series,
    *,
    legend_label: str,
    missing_label: str,
    font: CJKFont | None = None,
) -> bytes:
    """Draw a province choropleth with a diverging colour scale centred on 0.

    Parameters
    ----------
    polygons : geopandas.GeoDataFrame
        Province outlines with column ``province_code`` (EPSG:4326).
    values : pandas.Series
        Effect per ``province_code``; provinces absent or NaN are drawn grey
        and hatched with a legend entry ``missing_label``.
    legend_label : str
        Colour-bar label (outcome units).
    font : CJKFont, optional
        Font for Chinese labels.

    Returns
    -------
    bytes
        PNG image.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Patch

    frame = polygons.to_crs(ALBERS_CHINA).copy()
    frame["value"] = frame["province_code"].map(values)
    has_value = frame["value"].notna()
    finite = frame.loc[has_value, "value"].to_numpy(dtype=float)
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    norm = TwoSlopeNorm(vmin=-bound, vcenter=0.0, vmax=bound)
    with plt.rc_context(matplotlib_rc(font)):
        fig, ax = plt.subplots(figsize=(6.4, 5.0))
        if has_value.any():
            frame[has_value].plot(
                column="value",
                cmap="RdBu",
                norm=norm,
                ax=ax,
                edgecolor="#555555",
                linewidth=0.4,
                legend=True,
                legend_kwds={"label": legend_label, "shrink": 0.7},
            )
        if (~has_value).any():
            frame[~has_value].plot(
                ax=ax, facecolor="#d9d9d9", edgecolor="#777777", hatch="////", linewidth=0.4
            )
        ax.legend(
            handles=[
                Patch(facecolor="#d9d9d9", edgecolor="#777777", hatch="////", label=missing_label)
            ],
            loc="lower left",
            fontsize=8,
            frameon=False,
        )
        ax.set_axis_off()
        return _png(fig)


def scenario_comparison_png(
    labels: Sequence[str],
    means: Sequence[float],
    lowers: Sequence[float],
    uppers: Sequence[float],
    *,
    xlabel: str,
    font: CJKFont | None = None,
) -> bytes:
    """Draw one horizontal interval per scenario (point = mean, bar = interval) as PNG."""
    import matplotlib.pyplot as plt

    n = len(labels)
    y = np.arange(n)[::-1]
    with plt.rc_context(matplotlib_rc(font)):
        fig, ax = plt.subplots(figsize=(7.5, 0.55 * n + 1.2))
        ax.axvline(0.0, color="#888888", linewidth=0.8)
        ax.hlines(y, lowers, uppers, color="#2b6cb0", linewidth=2.5)
        ax.plot(means, y, "o", color="#1a365d")
        ax.set_yticks(y, labels)
        ax.set_xlabel(xlabel)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)
