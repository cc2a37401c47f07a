"""Designs a model cannot use, caught by ``pipeline.build_model`` before any sampling.

These cases read a small panel file through ``pipeline.build_panel`` (the
real reader) and build the model with ``pipeline.build_model``. Missing values
in a needed column are a documented drop, not an error: the rows are left out
and logged with the reason.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from polygvc import pipeline
from polygvc.config import parse_config
from polygvc.errors import DataError, ModelError

from .factory import small_model_section, small_panel


def _build(tmp_path, frame, **model):
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "panel_file", "panel": str(path)},
            "model": small_model_section(**model),
        }
    )
    panel = pipeline.build_panel(config)
    return pipeline.build_model(config, panel, source=str(path))


def test_missing_model_column(tmp_path, rng):
    frame = small_panel(rng).drop(columns="w")
    with pytest.raises(DataError, match=r"Column 'w' named in model.controls is missing") as info:
        _build(tmp_path, frame)
    message = str(info.value)
    assert str(tmp_path / "panel.csv") in message
    assert "Fix: correct model.controls in the config" in message


def test_misspelled_column_suggests_match(tmp_path, rng):
    frame = small_panel(rng)
    with pytest.raises(DataError, match=r"Column 'popluation' named in model.controls") as info:
        _build(tmp_path, frame, controls=["popluation"])
    assert "Close matches: population" in str(info.value)


def test_nan_rows_dropped_and_logged(tmp_path, rng, caplog):
    frame = small_panel(rng)
    frame.loc[[2, 5], "w"] = np.nan
    with caplog.at_level(logging.INFO, logger="polygvc.models.data"):
        _, data, _ = _build(tmp_path, frame)
    assert data.n_obs == len(frame) - 2
    reasons = data.dropped["reason"].tolist()
    assert reasons == ["missing w", "missing w"]
    assert "Guangdong: 1 rows not used (missing w)" in caplog.text


def test_single_province(tmp_path, rng):
    frame = small_panel(rng, provinces=("Hubei",), years=(2002, 2007, 2012, 2017))
    with pytest.raises(ModelError, match=r"Only 1 province \(Hubei\) has complete data") as info:
        _build(tmp_path, frame)
    assert "partial pooling needs at least two" in str(info.value)


def test_single_year_with_year_effects(tmp_path, rng):
    # One year leaves nothing for year effects to estimate; the model builds without them.
    frame = small_panel(rng, years=(2007,))
    _, data, model = _build(tmp_path, frame, year_effects=True)
    assert data.coords["year"] == [2007]
    assert "year_effect" not in model.named_vars
    assert "fs_year" not in model.named_vars


def test_constant_instrument(tmp_path, rng):
    frame = small_panel(rng)
    frame["z"] = 4.2
    with pytest.raises(ModelError, match=r"Column 'z' is constant \(4\.2\)") as info:
        _build(tmp_path, frame)
    assert "Fix: drop it from the model" in str(info.value)


def test_instrument_collinear_with_control(tmp_path, rng):
    frame = small_panel(rng)
    frame["z2"] = 2.0 * frame["w"] + 1.0
    expected = r"Columns z2, w are collinear in the model rows of"
    with pytest.raises(ModelError, match=expected) as info:
        _build(tmp_path, frame, instruments=["z", "z2"])
    message = str(info.value)
    assert "Fix: drop one of z2, w" in message


def test_collinear_controls(tmp_path, rng):
    frame = small_panel(rng)
    frame["w2"] = frame["w"] - 0.5 * frame["population"]
    with pytest.raises(ModelError, match=r"Columns w, w2, population are collinear") as info:
        _build(tmp_path, frame, controls=["w", "w2", "population"])
    assert "design rank" in str(info.value)


def test_threshold_variable_with_few_values(tmp_path, rng):
    threshold = pytest.importorskip("polygvc.models.threshold", reason="threshold module absent")
    frame = small_panel(rng)
    frame["q"] = np.tile([0.0, 1.0, 2.0, 3.0], len(frame) // 4)
    with pytest.raises(ModelError, match=r"Threshold variable 'q' has 4 distinct values") as info:
        threshold.threshold_grid(frame["q"].to_numpy(), n_grid=20, name="q")
    assert "Set n_grid to at most" in str(info.value)


def test_missing_threshold_variable_names_key(tmp_path, rng):
    frame = small_panel(rng)
    threshold = {"variable": "mean_dist", "n_grid": 5}
    with pytest.raises(DataError) as info:
        _build(tmp_path, frame, kind="cf_threshold", threshold=threshold)
    message = str(info.value)
    assert message.startswith("Column 'mean_dist' named in model.threshold.variable is missing")
    assert "Fix: correct model.threshold.variable in the config" in message


def test_text_threshold_variable_names_key(tmp_path, rng):
    frame = small_panel(rng).assign(label=lambda f: "a" + f["province"])
    threshold = {"variable": "label", "n_grid": 5}
    with pytest.raises(DataError) as info:
        _build(tmp_path, frame, kind="cf_threshold", threshold=threshold)
    message = str(info.value)
    assert message.startswith("Column 'label' (named in model.threshold.variable) in ")
    assert "must be numeric" in message
