"""Shared fixtures: seeded RNG, simulated IV panels, and the data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261204)


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The local data mirror; tests that read real data skip without it."""
    value = os.environ.get("POLYGVC_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("POLYGVC_DATA_DIR is not set to the data mirror; real-data tests need it")
    return Path(value)


def simulate_iv_panel(
    rng: np.random.Generator,
    n_provinces: int = 20,
    years: tuple[int, ...] = (2002, 2007),
    beta: float = 0.5,
    pi: float = 0.8,
    rho: float = 0.6,
    beta_region: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Simulate a province-year panel with the structure of the hierarchical IV model.

    The instrument is constant within a province (as the geographic instruments
    are), the error correlation ``rho`` makes ``x`` endogenous, and the slope of
    ``x`` is ``beta`` plus an optional region shift.
    """
    regions = np.array(["East", "Central", "West", "Northeast"])
    province_region = regions[np.arange(n_provinces) % 4]
    n_years = len(years)
    z = np.repeat(rng.normal(size=n_provinces), n_years)
    w = rng.normal(size=n_provinces * n_years)
    cov = np.array([[1.0, rho], [rho, 1.0]])
    errors = rng.multivariate_normal(np.zeros(2), cov, size=n_provinces * n_years)
    x = pi * z + 0.3 * w + errors[:, 0]
    region_of_row = np.repeat(province_region, n_years)
    shift = np.array([(beta_region or {}).get(r, 0.0) for r in region_of_row])
    y = 1.0 + (beta + shift) * x - 0.4 * w + errors[:, 1]
    return pd.DataFrame(
        {
            "province": np.repeat([f"P{i:02d}" for i in range(n_provinces)], n_years),
            "region": region_of_row,
            "year": np.tile(np.array(years), n_provinces),
            "z": z,
            "w": w,
            "x": x,
            "y": y,
        }
    )


@pytest.fixture
def iv_panel(rng) -> pd.DataFrame:
    return simulate_iv_panel(rng)


@pytest.fixture(scope="session")
def real_main_run(tmp_path_factory, data_mirror) -> Path:
    """Run the main job on the real panel once per session, with short chains.

    Uses examples/china_provinces.toml with 2 chains x 300 draws (600 tuning) so that the
    default tier stays fast; the README's command runs the full settings.
    Extrapolation warnings of the example scenarios, weak-instrument warnings
    and ESS warnings of the short chains are expected here and silenced.
    """
    import tomllib
    import warnings

    from polygvc.config import parse_config
    from polygvc.errors import ConvergenceWarning, ExtrapolationWarning, WeakInstrumentWarning
    from polygvc.pipeline import run

    path = REPO_ROOT / "examples" / "china_provinces.toml"
    with open(path, "rb") as handle:
        settings = tomllib.load(handle)
    settings["inference"].update({"chains": 2, "draws": 300, "tune": 600})
    settings["report"] = {**settings.get("report", {}), "brief_pdf": False}
    config = parse_config(settings, source=path)
    out = tmp_path_factory.mktemp("main_job")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        warnings.simplefilter("ignore", WeakInstrumentWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        run(config, out=out)
    return out
