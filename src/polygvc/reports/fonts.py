"""Discovery of an installed CJK font for Chinese text in figures and PDF briefs.

Matplotlib and WeasyPrint render Chinese only with a font that has the glyphs;
without one, characters show as empty boxes. :func:`find_cjk_font` searches
matplotlib's font list; :func:`require_cjk_font` turns a miss into a
:class:`~polygvc.errors.ReportError` naming the Debian package to install.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from polygvc.errors import ReportError

logger = logging.getLogger(__name__)

CJK_FONT_PACKAGE = "fonts-noto-cjk"

# Simplified-Chinese families first, in order of preference.
PREFERRED_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


@dataclass(frozen=True)
class CJKFont:
    """An installed font family with Chinese glyphs and one of its files."""

    family: str
    path: str


def find_cjk_font() -> CJKFont | None:
    """Return the preferred installed CJK font family, or None when there is none.

    Families in :data:`PREFERRED_FAMILIES` win in that order; otherwise any
    family whose name contains "CJK" is used.
    """
    from matplotlib import font_manager

    fonts: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        # Keep the regular-weight file of each family when there is one.
        if entry.name not in fonts or entry.weight in (400, "normal", "regular"):
            fonts[entry.name] = entry.fname
    for family in PREFERRED_FAMILIES:
        if family in fonts:
            return CJKFont(family, fonts[family])
    for family in sorted(fonts):
        if "CJK" in family:
            return CJKFont(family, fonts[family])
    return None


def require_cjk_font(purpose: str = "the PDF brief") -> CJKFont:
    """Return a CJK font or raise :class:`ReportError` naming the package to install.

    Raises
    ------
    ReportError
        No installed font has Chinese glyphs.
    """
    font = find_cjk_font()
    if font is None:
        raise ReportError(
            f"No installed font has Chinese (CJK) glyphs, so {purpose} would show empty boxes "
            f"in place of Chinese characters. Fix: install the Debian package {CJK_FONT_PACKAGE} "
            f"(apt-get install {CJK_FONT_PACKAGE}) or another CJK font, then run again. The HTML "
            "brief does not need it."
        )
    return font


def matplotlib_rc(font: CJKFont | None) -> dict[str, object]:
    """Return matplotlib rc settings that draw Chinese with ``font`` (English otherwise)."""
    families = [font.family] if font else []
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [*families, "DejaVu Sans"],
        "axes.unicode_minus": False,
    }
