"""Policy briefs: escaping, wording from results, both languages, PDF and font errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from polygvc.data_prep.names import province_code
from polygvc.errors import ExtrapolationWarning, ReportError
from polygvc.inference.scenarios import run_scenarios
from polygvc.inference.store import save_datatree
from polygvc.reports import brief as brief_module
from polygvc.reports.brief import build_brief_context, render_brief_html, write_briefs
from polygvc.reports.brief_text import LIKELIHOOD_SCALE, likelihood_word
from polygvc.reports.fonts import find_cjk_font
from tests.test_scenarios import PROVINCES, make_panel, make_posterior

REAL_RUN_ENV = os.environ.get("POLYGVC_TEST_RUN_DIR")
XSS = "<script>alert(1)</script>"


def _fake_polygons() -> gpd.GeoDataFrame:
    """One unit square per test province, so maps need no data mirror."""
    codes = [province_code(p) for p in PROVINCES]
    squares = [shapely.box(100 + i, 30, 101 + i, 31) for i in range(len(codes))]
    return gpd.GeoDataFrame({"province_code": codes}, geometry=squares, crs="EPSG:4326")


@pytest.fixture
def fake_run(tmp_path, rng) -> Path:
    panel = make_panel(rng)
    dt = make_posterior(panel)
    save_datatree(dt, tmp_path / "posterior.nc")
    panel.to_parquet(tmp_path / "panel.parquet")
    diagnostics = {
        "overall": "warn",
        "first_stage": {
            "effective_f": 8.5,
            "effective_f_critical_value": 19.4,
            "kp_rk_lm_pvalue": 0.04,
            "anderson_rubin_set_clustered": "[-1.5, 9.0]",
        },
    }
    (tmp_path / "diagnostics.json").write_text(json.dumps(diagnostics), encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 42}), encoding="utf-8")
    scenarios = [
        {
            "name": "xss",
            "label": XSS,
            "label_zh": XSS,
            "changes": [{"variable": "x", "how": "absolute", "value": 0.1}],
        }
    ]
    with pytest.warns(ExtrapolationWarning):
        run_scenarios(dt, panel, scenarios, seed=42).to_csv(tmp_path / "scenarios.csv")
    return tmp_path


def test_likelihood_scale_boundaries():
    cases = {
        1.0: "virtually certain",
        0.99: "virtually certain",
        0.95: "very likely",
        0.66: "likely",
        0.5: "about as likely as not",
        0.33: "unlikely",
        0.1: "very unlikely",
        0.005: "exceptionally unlikely",
    }
    for probability, word in cases.items():
        assert likelihood_word(probability, "en") == word, probability
    assert likelihood_word(0.95, "zh") == "很可能"
    assert len({term.en for term in LIKELIHOOD_SCALE}) == len(LIKELIHOOD_SCALE)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_label_script_is_escaped(fake_run, lang):
    context = build_brief_context(fake_run, lang, polygons=_fake_polygons())
    html = render_brief_html(context)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_brief_numbers_come_from_csv(fake_run):
    table = pd.read_csv(fake_run / "scenarios.csv")
    nation = table[table["level"] == "nation"].iloc[0]
    html = render_brief_html(build_brief_context(fake_run, "en", polygons=_fake_polygons()))
    assert f"{nation['mean']:.1f}".replace("-", "−") in html
    assert likelihood_word(nation["prob_gain"], "en") in html
    assert f"{100 * nation['ci_prob']:g}% interval" in html
    assert "effective F = 8.5" in html
    assert "warn (" in html
    assert "Tibet has no outcome." in html


def test_missing_scenarios_csv_raises(fake_run):
    (fake_run / "scenarios.csv").unlink()
    with pytest.raises(ReportError, match=r"lacks scenarios.csv.*\[\[scenarios\]\]"):
        write_briefs(fake_run, pdf=False)


def test_invalid_language_raises(fake_run):
    with pytest.raises(ReportError, match="Brief language 'fr' is not supported"):
        write_briefs(fake_run, lang="fr", pdf=False)


def test_pdf_without_cjk_font_names_package(fake_run, monkeypatch):
    monkeypatch.setattr(brief_module, "find_cjk_font", lambda: None)
    monkeypatch.setattr("polygvc.reports.fonts.find_cjk_font", lambda: None)
    monkeypatch.setattr("polygvc.data_prep.geography.province_polygons", _fake_polygons)
    with pytest.raises(ReportError, match="fonts-noto-cjk"):
        write_briefs(fake_run, lang="en")
    assert (fake_run / "brief.en.html").is_file(), "HTML must be written before the PDF step"


# --------------------------------------------------------------------------- real run


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, data_mirror, request) -> Path:
    # A run folder given by POLYGVC_TEST_RUN_DIR, else the session's short real run.
    source = Path(REAL_RUN_ENV) if REAL_RUN_ENV else request.getfixturevalue("real_main_run")
    if not (source / "posterior.nc").is_file():
        pytest.skip(f"no fitted run at {source}; set POLYGVC_TEST_RUN_DIR to a run folder")
    REAL_RUN = source
    out = tmp_path_factory.mktemp("real_run")
    for name in ("posterior.nc", "panel.parquet", "diagnostics.json", "manifest.json"):
        shutil.copy(REAL_RUN / name, out / name)
    from polygvc.inference.store import load_datatree

    dt = load_datatree(out / "posterior.nc")
    panel = pd.read_parquet(out / "panel.parquet")
    endog = json.loads(dt.attrs["spec"])["endog"]
    scenarios = [
        {
            "name": "poly_up_1sd",
            "label": "More polycentric by one sd",
            "label_zh": "多中心程度提高一个标准差",
            "changes": [{"variable": endog, "how": "absolute", "value": 1.0, "scale": "sd"}],
        },
        {
            "name": "west_like_guangdong",
            "provinces": ["Sichuan", "Gansu", "Tibet"],
            "new_provinces": "population",
            "changes": [{"variable": endog, "how": "peer", "peer": "Guangdong"}],
        },
    ]
    with pytest.warns(ExtrapolationWarning):
        run_scenarios(dt, panel, scenarios, seed=20261204).to_csv(out / "scenarios.csv")
    return out


def test_real_run_html_both_languages(real_run):
    written = write_briefs(real_run, lang="both", pdf=False)
    assert [p.name for p in written] == ["brief.en.html", "brief.zh.html"]
    zh = (real_run / "brief.zh.html").read_text(encoding="utf-8")
    en = (real_run / "brief.en.html").read_text(encoding="utf-8")
    assert "多中心程度提高一个标准差" in zh
    assert "广东 Guangdong" in zh
    assert "Guangdong 广东" in en
    assert en.count("data:image/png;base64,") == 3, "two maps and the comparison chart"
    panel = pd.read_parquet(real_run / "panel.parquet")
    reason = panel.loc[panel["province"] == "Tibet", "excluded_reason"].iloc[0]
    assert reason.split(".")[0] in en


def test_real_run_pdf(real_run):
    if find_cjk_font() is None:
        pytest.skip("no CJK font installed (Debian package fonts-noto-cjk); PDF needs one")
    written = write_briefs(real_run, lang="zh")
    pdf = real_run / "brief.zh.pdf"
    assert pdf in written
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed; text check skipped")
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "政策简报" in text, text[:200]
