"""Uncertainty-aware policy briefs in English and Simplified Chinese (HTML and PDF).

A brief is written for readers who are not statisticians. It is built in three
steps: statistics are read from the run folder (``scenarios.csv``,
``diagnostics.json``, ``panel.parquet``, ``posterior.nc``, ``manifest.json``),
turned into formatted strings and figures, and rendered by the Jinja2 template
``templates/brief.html.j2`` with autoescape on, so scenario labels, titles and
province names cannot inject markup. Every number comes from those files; the
fixed wording lives in :mod:`polygvc.reports.brief_text`. The PDF is the same
HTML printed by WeasyPrint, which needs an installed CJK font.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from polygvc import __version__
from polygvc.atomic import atomic_path, write_text
from polygvc.errors import DataError, ReportError
from polygvc.reports import brief_text as bt
from polygvc.reports.fonts import CJKFont, find_cjk_font, require_cjk_font

__all__ = ["SCENARIOS_FILE", "build_brief_context", "render_brief_html", "write_briefs"]

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
SCENARIOS_FILE = "scenarios.csv"
_REQUIRED_FILES = ("posterior.nc", "panel.parquet", "diagnostics.json", SCENARIOS_FILE)


# --------------------------------------------------------------------------- inputs


def _read_run(run_dir: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    missing = [name for name in _REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        hint = (
            " scenarios.csv is written when the config has [[scenarios]] tables; add them and "
            "run again, or write it with polygvc.inference.scenarios.run_scenarios(...).to_csv()."
            if SCENARIOS_FILE in missing
            else ""
        )
        raise ReportError(
            f"Run folder {run_dir} lacks {', '.join(missing)}, which the policy brief reads.{hint}"
        )
    from polygvc.inference.store import load_datatree

    dt = load_datatree(run_dir / "posterior.nc")
    const = dt["constant_data"]
    manifest_path = run_dir / "manifest.json"
    if manifest is None:
        manifest = (
            json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest_path.is_file()
            else {}
        )
    return {
        "spec": json.loads(dt.attrs.get("spec", "{}")),
        "obs_province": const["obs_province"].values.astype(str),
        "obs_year": const["obs_year"].values.astype(int),
        "panel": pd.read_parquet(run_dir / "panel.parquet"),
        "diagnostics": json.loads((run_dir / "diagnostics.json").read_text(encoding="utf-8")),
        "scenarios": pd.read_csv(
            run_dir / SCENARIOS_FILE,
            keep_default_na=False,
            na_values={c: [""] for c in ("mean", "lower", "upper", "year")},
        ),
        "manifest": manifest,
    }


def _excluded_provinces(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """Provinces of the panel without estimates, with the reasons recorded in the data."""
    panel = inputs["panel"]
    in_model = set(inputs["obs_province"])
    dropped = pd.DataFrame(inputs["manifest"].get("dropped_rows", []))
    out = []
    for province in dict.fromkeys(panel["province"].astype(str)):
        if province in in_model:
            continue
        reasons: list[str] = []
        if "excluded_reason" in panel.columns:
            rows = panel.loc[panel["province"] == province, "excluded_reason"].fillna("")
            reasons = [r for r in dict.fromkeys(rows) if r]
        if not reasons and not dropped.empty and "province" in dropped.columns:
            rows = dropped.loc[dropped["province"] == province, "reason"].fillna("")
            reasons = [r for r in dict.fromkeys(rows) if r]
        out.append({"province": province, "reason": " ".join(reasons)})
    return out


# --------------------------------------------------------------------------- formatting


def _num(value: float, digits: int = 1) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    return "0." + "0" * digits if text in ("-0." + "0" * digits,) else text.replace("-", "−")


def _prob(value: float) -> str:
    return f"{value:.2f}"


def _province_label(row: pd.Series, lang: str) -> str:
    zh, en = str(row.get("province_zh", "") or ""), str(row["province"])
    if not zh:
        return en
    return f"{zh} {en}" if lang == "zh" else f"{en} {zh}"


def _flag_text(flags: str, lang: str) -> str:
    kinds = list(dict.fromkeys(f.split(":")[0] for f in str(flags).split(";") if f))
    return "; ".join(bt.FLAG_TEXT.get(k, {}).get(lang, k) for k in kinds)


def _label(row: pd.Series, lang: str) -> str:
    if lang == "zh" and str(row.get("label_zh", "")):
        return str(row["label_zh"])
    return str(row.get("label", "")) or str(row["scenario"])


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- context


def _scenario_sections(
    table: pd.DataFrame, lang: str, t: dict[str, str], unit: str, polygons, font: CJKFont | None
) -> tuple[list[dict[str, Any]], list[str]]:
    from polygvc.data_prep.names import province_code
    from polygvc.reports.maps import choropleth_png

    sections, caveats = [], []
    for name in dict.fromkeys(table["scenario"]):
        rows = table[table["scenario"] == name]
        nation = rows[rows["level"] == "nation"].iloc[0]
        provinces = rows[rows["level"] == "province"].sort_values("mean", ascending=False)
        label = _label(nation, lang)
        ci = f"{100 * float(nation['ci_prob']):g}"
        rope = float(nation["rope"])
        headline = t["headline"].format(
            label=label,
            n=int(nation["n_provinces"]),
            mean=_num(nation["mean"]),
            unit=unit,
            ci=ci,
            lower=_num(nation["lower"]),
            upper=_num(nation["upper"]),
            word=bt.likelihood_word(nation["prob_gain"], lang),
            p=_prob(nation["prob_gain"]),
            rope=_num(rope),
            word_rope=bt.likelihood_word(nation["prob_gain_rope"], lang),
            p_rope=_prob(nation["prob_gain_rope"]),
        )
        ranked = [
            {
                "rank": i + 1,
                "province": _province_label(row, lang),
                "mean": _num(row["mean"]),
                "interval": f"{_num(row['lower'])} – {_num(row['upper'])}",
                "p": _prob(row["prob_gain"]),
                "p_rope": _prob(row["prob_gain_rope"]),
                "word": bt.likelihood_word(row["prob_gain"], lang),
                "flags": _flag_text(row["flags"], lang),
            }
            for i, (_, row) in enumerate(provinces.iterrows())
        ]
        map_uri, map_error = None, None
        if polygons is not None:
            values = pd.Series(
                provinces["mean"].to_numpy(float),
                index=[province_code(p) for p in provinces["province"]],
            )
            map_uri = _data_uri(
                choropleth_png(
                    polygons,
                    values,
                    legend_label=unit,
                    missing_label=t["map_missing_label"],
                    font=font,
                )
            )
        flagged = int((provinces["flags"].astype(str) != "").sum())
        if flagged:
            kinds = _flag_text(";".join(provinces["flags"].astype(str)), lang)
            caveats.append(
                t["caveat_flags"].format(label=label, n=flagged, total=len(provinces), kinds=kinds)
            )
        else:
            caveats.append(t["caveat_no_flags"].format(label=label))
        sections.append(
            {
                "label": label,
                "changes": str(nation["changes"]),
                "headline": headline,
                "ranked": ranked,
                "map": map_uri,
                "map_error": map_error,
                "map_caption": t["map_caption"].format(label=label, unit=unit),
                "col_interval": t["col_interval"].format(ci=ci),
                "col_p_rope": t["col_p_rope"].format(rope=_num(rope)),
            }
        )
    return sections, caveats


def _weak_instrument_caveats(first_stage: dict[str, Any], t: dict[str, str]) -> list[str]:
    out = []
    eff, crit = first_stage.get("effective_f"), first_stage.get("effective_f_critical_value")
    if eff is not None and crit is not None:
        out.append(
            t["caveat_weak"].format(
                eff_f=_num(float(eff)),
                crit=_num(float(crit)),
                kp_p=_prob(float(first_stage.get("kp_rk_lm_pvalue", float("nan")))),
                verdict=t["weak_yes"] if float(eff) < float(crit) else t["weak_no"],
            )
        )
    ar = first_stage.get("anderson_rubin_set_clustered") or first_stage.get(
        "anderson_rubin_set_homoskedastic"
    )
    if ar:
        out.append(t["caveat_ar"].format(ar=ar))
    return out


def build_brief_context(
    run_dir: str | Path,
    lang: str,
    *,
    font: CJKFont | None = None,
    inputs: dict[str, Any] | None = None,
    polygons=None,
) -> dict[str, Any]:
    """Compute every string and figure of one brief.

    Parameters
    ----------
    run_dir : str or Path
        Finished run folder with ``scenarios.csv``.
    lang : {"en", "zh"}
    font : CJKFont, optional
        Font for Chinese in figures; default: the installed one, if any.
    inputs, polygons : optional
        Already-read run files and province polygons (used by :func:`write_briefs`
        to read them once for both languages).

    Returns
    -------
    dict
        Template context.
    """
    run_dir = Path(run_dir)
    if lang not in bt.LANGUAGES:
        raise ReportError(f"Brief language {lang!r} is not supported. Fix: use 'en' or 'zh'.")
    inputs = inputs if inputs is not None else _read_run(run_dir)
    font = font if font is not None else find_cjk_font()
    t = bt.TEXT[lang]
    spec, table = inputs["spec"], inputs["scenarios"]
    if table.empty:
        raise ReportError(f"{run_dir / SCENARIOS_FILE} has no rows. Fix: define [[scenarios]].")
    dependent = str(table["outcome"].iloc[0])
    unit = bt.OUTCOME_UNIT.get(dependent, bt.DEFAULT_UNIT)[lang]
    years = sorted(set(inputs["obs_year"].tolist()))
    provinces = sorted(set(inputs["obs_province"].tolist()))

    data_notes = [
        t["data_rows"].format(
            n_rows=len(inputs["obs_year"]),
            n_prov=len(provinces),
            n_years=len(years),
            years=", ".join(map(str, years)),
        ),
        t["thin"].format(n_years=len(years)),
    ]
    if dependent in ("vae_gdp_pct", "dvar_exports"):
        data_notes.append(t["model_based"])
    if polygons is None:
        try:
            from polygvc.data_prep.geography import province_polygons

            polygons = province_polygons()
        except DataError as exc:
            logger.warning("Brief map skipped: %s", exc)
            polygons = None
    sections, flag_caveats = _scenario_sections(table, lang, t, unit, polygons, font)
    map_missing = (
        None
        if polygons is not None
        else t["no_map"].format(reason="province polygons unavailable (set POLYGVC_DATA_DIR)")
    )

    from polygvc.reports.maps import scenario_comparison_png

    nations = table[table["level"] == "nation"]
    ci = f"{100 * float(nations['ci_prob'].iloc[0]):g}"
    comparison = _data_uri(
        scenario_comparison_png(
            [_label(row, lang) for _, row in nations.iterrows()],
            nations["mean"].to_numpy(float),
            nations["lower"].to_numpy(float),
            nations["upper"].to_numpy(float),
            xlabel=unit,
            font=font,
        )
    )

    diagnostics = inputs["diagnostics"]
    overall = diagnostics.get("overall")
    verdict = t.get(f"verdict_{overall}", t["verdict_missing"])
    weights = str(nations["weights"].iloc[0])
    kind = str(nations["ci_kind"].iloc[0]).upper()
    endog = spec.get("endog", "")
    scale = [bt.LIKELIHOOD_SCALE[i] for i in bt.SCALE_DISPLAY_ORDER]
    return {
        "lang": lang,
        "t": t,
        "font_family": font.family if font else "",
        "outcome_line": t["outcome_line"].format(
            outcome=bt.OUTCOME_DESCRIPTION.get(dependent, {}).get(lang, dependent)
        ),
        "endog_line": t["endog_line"].format(
            endog=bt.ENDOG_DESCRIPTION.get(endog, {}).get(lang, endog)
        ),
        "data_notes": data_notes,
        "excluded": _excluded_provinces(inputs),
        "sections": sections,
        "map_missing": map_missing,
        "comparison": comparison,
        "compare_caption": t["compare_caption"].format(ci=ci),
        "scale": [{"range": bt.scale_range(s), "word": getattr(s, lang)} for s in scale],
        "scale_source": bt.SCALE_SOURCE,
        "diagnostics": t["diagnostics"].format(verdict=verdict),
        "caveats": [
            *flag_caveats,
            *_weak_instrument_caveats(diagnostics.get("first_stage") or {}, t),
            t["caveat_causal"],
        ],
        "method": t["method"].format(
            kind=kind,
            ci=ci,
            seed=inputs["manifest"].get("seed", t["na"]),
            weights=t["equal"] if weights == "equal" else weights,
        ),
        "source_note": t["source_note"].format(version=__version__, run=run_dir.name),
    }


# --------------------------------------------------------------------------- rendering


def render_brief_html(context: dict[str, Any]) -> str:
    """Render a brief context to a self-contained HTML string (autoescape on)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("brief.html.j2").render(**context)


def _write_pdf(html: str, target: Path, base_url: Path) -> Path:
    try:
        import weasyprint
    except ImportError as exc:  # pragma: no cover - weasyprint is a dependency
        raise ReportError(
            f"WeasyPrint could not be imported ({exc}), so {target.name} was not written. Fix: "
            "install weasyprint and its system library pango."
        ) from exc
    with atomic_path(target) as tmp:
        weasyprint.HTML(string=html, base_url=str(base_url)).write_pdf(str(tmp))
    return target


def write_briefs(
    run_dir: str | Path,
    lang: str = "both",
    *,
    pdf: bool = True,
    manifest: dict[str, Any] | None = None,
) -> list[Path]:
    """Write ``brief.<lang>.html`` and ``brief.<lang>.pdf`` into a finished run folder.

    Parameters
    ----------
    run_dir : str or Path
        Run folder with ``posterior.nc``, ``panel.parquet``, ``diagnostics.json``,
        ``scenarios.csv`` and (optionally) ``manifest.json``.
    lang : {"en", "zh", "both"}
        Brief language(s).
    pdf : bool, default True
        Also print each HTML brief to PDF with WeasyPrint.
    manifest : dict, optional
        The run's manifest, for a pipeline that writes ``manifest.json`` only
        after the briefs; read from the folder when not given.

    Returns
    -------
    list of Path
        Files written, HTML first, in language order.

    Raises
    ------
    ReportError
        A required file is missing, ``lang`` is invalid, or (PDF step only, after
        the HTML files are written) no CJK font is installed: the message names
        the Debian package ``fonts-noto-cjk``.

    Notes
    -----
    Likelihood words follow the IPCC scale (Mastrandrea et al. 2010) shown in
    the brief; see :mod:`polygvc.reports.brief_text`.
    """
    run_dir = Path(run_dir)
    langs = list(bt.LANGUAGES) if lang == "both" else [lang]
    for code in langs:
        if code not in bt.LANGUAGES:
            raise ReportError(
                f"Brief language {lang!r} is not supported. Fix: use 'en', 'zh' or 'both'."
            )
    inputs = _read_run(run_dir, manifest)
    font = find_cjk_font()
    if font is None:
        logger.warning("No CJK font found; Chinese text in brief figures will show as boxes.")
    polygons = None
    try:
        from polygvc.data_prep.geography import province_polygons

        polygons = province_polygons()
    except DataError as exc:
        logger.warning("Brief map skipped: %s", exc)

    written: list[Path] = []
    pages: dict[str, str] = {}
    for code in langs:
        context = build_brief_context(run_dir, code, font=font, inputs=inputs, polygons=polygons)
        pages[code] = render_brief_html(context)
        written.append(write_text(run_dir / f"brief.{code}.html", pages[code]))
        logger.info("Wrote %s", written[-1])
    if pdf:
        require_cjk_font("the PDF brief")
        for code in langs:
            written.append(_write_pdf(pages[code], run_dir / f"brief.{code}.pdf", run_dir))
            logger.info("Wrote %s", written[-1])
    return written
