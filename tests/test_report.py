"""Structural tests of the report figures and report.html."""

from __future__ import annotations

import base64
import copy
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from fake_results import make_fake_datatree

from polygvc.errors import ReportError
from polygvc.reports import figures
from polygvc.reports.html import SECTION_IDS, render_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def classical_table():
    return pd.DataFrame(
        {
            "estimator": ["2SLS", "LIML"],
            "term": ["poly_entropy_norm", "poly_entropy_norm"],
            "estimate": [25.0, 27.0],
            "std_error": [10.0, 12.0],
            "ci_lower": [5.0, 3.0],
            "ci_upper": [45.0, 51.0],
            "cov_type": ["clustered", "clustered"],
            "nobs": [12, 12],
        }
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, classical_table):
    tree = make_fake_datatree(n_divergent=1)
    path = render_report(
        tree,
        diagnostics={},
        first_stage={"f.stat": 8.3, "partial.rsquared": 0.2},
        classical=classical_table,
        panel_notes=["The outcome table is thin (26 provinces × 2 years) and model-based."],
        title="Test report",
        out_path=tmp_path_factory.mktemp("report"),
    )
    return path, path.read_text(encoding="utf-8")


def decoded_png(text):
    return base64.b64decode(text)[:8]


@pytest.mark.parametrize(
    "draw",
    [
        figures.forest_effects_plot,
        figures.rank_plot,
        figures.ppc_plot,
        figures.pooling_plot,
        figures.first_stage_plot,
    ],
)
def test_figure_returns_png_and_closes(draw):
    tree = make_fake_datatree()
    open_before = len(plt.get_fignums())
    encoded = draw(tree)
    assert decoded_png(encoded) == PNG_MAGIC
    assert len(plt.get_fignums()) == open_before


def test_figures_do_not_modify_inputs():
    tree = make_fake_datatree()
    before = tree.copy(deep=True)
    no_pooling = {"Beijing": 30.0, "Shanxi": -5.0}
    no_pooling_before = copy.deepcopy(no_pooling)
    f_stats = pd.Series({"poly_entropy_norm": 8.3})
    figures.forest_effects_plot(tree)
    figures.rank_plot(tree, var_names=["beta_mu"])
    figures.ppc_plot(tree)
    figures.pooling_plot(tree, no_pooling=no_pooling)
    figures.first_stage_plot(tree, f_statistics=f_stats)
    assert tree.identical(before)
    assert no_pooling == no_pooling_before
    assert f_stats.to_dict() == {"poly_entropy_norm": 8.3}


def test_pooling_factor_bounds():
    table = figures.pooling_statistics(make_fake_datatree())
    assert list(table.index) == ["region", "province"]
    for level, factor in table["pooling_factor"].items():
        assert 0.0 <= factor <= 1.0, f"{level}: {factor}"


def test_effect_intervals_p_positive():
    tree = make_fake_datatree()
    table = figures.effect_intervals(tree, ("effect_mu",))
    expected = float((tree["posterior"]["effect_mu"] > 0).mean())
    assert table.loc[0, "p_positive"] == pytest.approx(expected)


def test_report_has_all_sections(rendered):
    _, html = rendered
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in html, section


def test_report_is_self_contained(rendered):
    path, html = rendered
    assert path.name == "report.html"
    assert html.count("data:image/png;base64,") == 5
    assert re.search(r"<link|src=\"http", html) is None


def test_report_shows_classical_and_posterior(rendered):
    _, html = rendered
    assert "Bayesian hierarchical IV (posterior mean)" in html
    assert "LIML" in html


def test_report_states_thresholds(rendered):
    _, html = rendered
    assert "pass ≤ 1.01, warn ≤ 1.05, else fail" in html


def test_labels_are_escaped(tmp_path):
    tree = make_fake_datatree(
        province_names=[SCRIPT, "Shanxi", "Sichuan", "Liaoning", "Guangdong", "Hubei"]
    )
    path = render_report(
        tree,
        diagnostics={"note": SCRIPT},
        first_stage=None,
        classical=None,
        panel_notes=[SCRIPT],
        title=f"Title {SCRIPT}",
        out_path=tmp_path / "report.html",
    )
    html = path.read_text(encoding="utf-8")
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_render_does_not_modify_inputs(tmp_path, classical_table):
    tree = make_fake_datatree()
    before = tree.copy(deep=True)
    classical_before = classical_table.copy()
    diagnostics = {"extra": pd.DataFrame({"a": [1.0]})}
    first_stage = {"f.stat": 8.3}
    notes = ["note"]
    render_report(
        tree,
        diagnostics=diagnostics,
        first_stage=first_stage,
        classical=classical_table,
        panel_notes=notes,
        title="t",
        out_path=tmp_path / "r.html",
    )
    assert tree.identical(before)
    pd.testing.assert_frame_equal(classical_table, classical_before)
    assert list(diagnostics) == ["extra"]
    assert first_stage == {"f.stat": 8.3}
    assert notes == ["note"]


def test_bad_first_stage_type_raises(tmp_path):
    with pytest.raises(ReportError, match="first_stage has type int"):
        render_report(
            make_fake_datatree(),
            diagnostics={},
            first_stage=3,
            classical=None,
            panel_notes=[],
            title="t",
            out_path=tmp_path / "r.html",
        )
