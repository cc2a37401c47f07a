"""Data report: statistics tables and the rendered HTML with every section."""

from __future__ import annotations

import os

import pytest

from polygvc.reports import data_report
from tests.test_semisynthetic import _simulate

needs_mirror = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the province outlines for the maps are unavailable",
)


def test_coverage_counts():
    panel = _simulate().panel
    table = data_report.coverage_table(panel).set_index("column")
    expected = int(panel["poly_entropy_norm"].notna().sum())
    assert table.at["poly_entropy_norm", "present"] == expected
    assert table.at["gvc_sim", "share_present"] == pytest.approx(1.0)


def test_missing_by_province_ignores_off_survey_years():
    panel = _simulate().panel
    table = data_report.missing_by_province(panel).set_index("province")
    assert table.at["Hebei", "GVC outcome"] == pytest.approx(0.0)
    assert table.at["Beijing", "polycentricity (light)"] == pytest.approx(1.0)


def test_input_not_modified(tmp_path):
    panel = _simulate().panel
    before = panel.copy()
    data_report.write_data_report(panel, tmp_path)
    assert panel.equals(before)


@needs_mirror
def test_report_has_all_sections(tmp_path):
    panel = _simulate().panel
    path = data_report.write_data_report(panel, tmp_path, title="semi <synthetic>")
    html = path.read_text(encoding="utf-8")
    for section in data_report.SECTION_IDS:
        assert f'id="{section}"' in html, section
    assert "semi &lt;synthetic&gt;" in html
    assert html.count('src="data:image/png;base64,') >= 4  # heatmap, 2 maps, trajectories
    assert "北京 Beijing" in html


def test_report_without_polygons(tmp_path, monkeypatch):
    monkeypatch.delenv("POLYGVC_DATA_DIR", raising=False)
    monkeypatch.setenv("POLYGVC_CACHE_DIR", str(tmp_path / "cache"))
    from polygvc.data_prep import geography

    geography._census_polygons.cache_clear()
    geography._province_polygons.cache_clear()

    def offline(*args, **kwargs):
        from polygvc.errors import DataNotFoundError

        raise DataNotFoundError("offline in this test")

    monkeypatch.setattr(geography, "fetch", offline)
    html = data_report.write_data_report(_simulate().panel, tmp_path).read_text()
    assert "No map: the province outlines could not be loaded" in html
    geography._census_polygons.cache_clear()
    geography._province_polygons.cache_clear()


def test_panel_without_keys(tmp_path):
    from polygvc.errors import DataError

    with pytest.raises(DataError, match="lacks the columns \\['year'\\]"):
        data_report.write_data_report(_simulate().panel.drop(columns="year"), tmp_path)
