"""The main job on the real province panel, end to end (short chains)."""

from __future__ import annotations

import json

import pandas as pd

from polygvc.data_prep.names import PROVINCES
from polygvc.inference.store import load_datatree

OUTPUTS = (
    "panel.parquet",
    "posterior.nc",
    "diagnostics.json",
    "report.html",
    "scenarios.csv",
    "brief.en.html",
    "brief.zh.html",
    "manifest.json",
)


def test_run_folder_complete(real_main_run):
    for name in OUTPUTS:
        assert (real_main_run / name).is_file(), name
    assert not list(real_main_run.glob("*.partial"))


def test_panel_keeps_all_provinces(real_main_run):
    panel = pd.read_parquet(real_main_run / "panel.parquet")
    assert panel["province"].nunique() == 31
    assert set(panel["province"]) == set(PROVINCES)
    excluded = set(panel.loc[panel["excluded_reason"] != "", "province"])
    assert excluded == {"Beijing", "Tianjin", "Shanghai", "Chongqing", "Tibet", "Qinghai"}


def test_model_uses_the_remaining_provinces(real_main_run):
    dt = load_datatree(real_main_run / "posterior.nc")
    provinces = list(dt["posterior"].coords["province"].values)
    assert len(provinces) == 25, provinces
    assert dt["posterior"]["beta_province"].dims == ("chain", "draw", "province")
    assert int(dt["sample_stats"]["diverging"].sum()) == 0


def test_manifest_records_inputs_and_seed(real_main_run):
    manifest = json.loads((real_main_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 20261204
    inputs = manifest["inputs"]
    assert any(path.endswith("sol_by_year_by_class_by_city.csv") for path in inputs)
    assert all(len(digest) == 64 for digest in inputs.values())
    assert manifest["packages"]["pymc"].startswith("6.4")
    assert set(manifest["outputs"].values()) >= set(OUTPUTS) - {"manifest.json"}


def test_report_states_data_limits(real_main_run):
    html = (real_main_run / "report.html").read_text(encoding="utf-8")
    for section in ("run-info", "data", "model", "effects", "pooling", "first-stage",
                    "classical", "ppc", "convergence"):
        assert f'id="{section}"' in html, section
    assert "model-based" in html
    assert "thin" in html


def test_prior_sensitivity_reported(real_main_run):
    diagnostics = json.loads((real_main_run / "diagnostics.json").read_text(encoding="utf-8"))
    rows = {row["parameter"]: row for row in diagnostics["prior_sensitivity"]}
    assert "beta_mu" in rows
    assert rows["beta_mu"]["diagnosis"] in {
        "prior-data conflict", "strong prior / weak likelihood", "weak likelihood", "no concern",
    }
    report = (real_main_run / "report.html").read_text(encoding="utf-8")
    assert "Prior sensitivity (power-scaling" in report
