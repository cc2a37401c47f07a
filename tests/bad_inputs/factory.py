"""Small input files for the bad-input corpus and the interrupt tests, made at test time.

Nothing here is committed as data: every panel, config and broken file is written
into the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from polygvc.data_prep.names import province_table
from polygvc.data_prep.panel import PANEL_COLUMNS

REPO_ROOT = Path(__file__).resolve().parents[2]

# Eight provinces, two per region, so partial pooling has units in every region.
SMALL_PROVINCES = (
    "Beijing",
    "Guangdong",
    "Shanxi",
    "Hubei",
    "Sichuan",
    "Gansu",
    "Liaoning",
    "Jilin",
)

TINY_INFERENCE = {"chains": 1, "draws": 10, "tune": 10, "sampler": "nutpie"}


def small_panel(
    rng: np.random.Generator,
    provinces: tuple[str, ...] = SMALL_PROVINCES,
    years: tuple[int, ...] = (2002, 2007),
) -> pd.DataFrame:
    """Simulate a small province-year panel with an IV structure.

    Columns: ``province``, ``year``, ``y`` (outcome), ``x`` (endogenous),
    ``z`` (instrument, constant within a province), ``w`` (control),
    ``light`` and ``population`` (positive levels).
    """
    n_years = len(years)
    n = len(provinces) * n_years
    z = np.repeat(rng.normal(size=len(provinces)), n_years)
    w = rng.normal(size=n)
    u, e = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], size=n).T
    x = 0.8 * z + 0.3 * w + u
    return pd.DataFrame(
        {
            "province": np.repeat(list(provinces), n_years),
            "year": np.tile(np.array(years, dtype="int64"), len(provinces)),
            "y": 1.0 + 0.5 * x - 0.4 * w + e,
            "x": x,
            "z": z,
            "w": w,
            "light": rng.gamma(2.0, 10.0, size=n),
            "population": rng.gamma(5.0, 800.0, size=n),
        }
    )


def small_model_section(**overrides) -> dict:
    """Return a ``[model]`` section for :func:`small_panel`."""
    section = {
        "dependent": "y",
        "endog": "x",
        "instruments": ["z"],
        "controls": ["w"],
        "moderators": [],
        "year_effects": True,
        "province_slopes": False,
    }
    section.update(overrides)
    return section


def contract_panel(rng: np.random.Generator, years: tuple[int, ...] = (2002, 2007)) -> pd.DataFrame:
    """Simulate a panel that meets the full panel contract (31 provinces, every column).

    The outcome ``vae_gdp_pct`` is observed in 2002 and 2007 only, as in the
    real data, so ``years`` must be survey years (1997, 2002, 2007).
    """
    table = province_table().drop(columns="province_zh_full")
    panel = table.merge(pd.DataFrame({"year": np.array(years, dtype="int64")}), how="cross")
    n_prov, n_years = len(table), len(years)
    n = len(panel)

    def per_province(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, n_years)

    hist = per_province(-rng.uniform(0.3, 1.5, size=n_prov))
    rugged = per_province(rng.gamma(2.0, 0.5, size=n_prov))
    coast = per_province(rng.gamma(2.0, 300.0, size=n_prov))
    log_pop = per_province(rng.normal(8.0, 0.8, size=n_prov)) + rng.normal(0, 0.02, size=n)
    distance = per_province(rng.gamma(4.0, 60.0, size=n_prov))
    hsr = rng.uniform(0.0, 1.0, size=n)
    u, e = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], size=n).T
    endog = -1.0 + 0.5 * hist - 0.1 * rugged + 0.1 * u
    endog = np.minimum(endog, -0.01)
    vae = np.clip(20 + 8 * endog - 0.005 * coast + 2 * e, 0.5, 95)

    panel["n_cities"] = rng.integers(2, 20, size=n).astype("int64")
    for column in ("poly_rank_size_top2", "poly_rank_size_top3", "poly_rank_size_top4"):
        panel[column] = np.minimum(endog + rng.normal(0, 0.05, size=n), 0.0)
    panel["poly_rank_size_all"] = endog
    panel["poly_primacy"] = rng.uniform(0.1, 0.6, size=n)
    panel["poly_hhi_norm"] = rng.uniform(0.0, 0.5, size=n)
    panel["poly_entropy_norm"] = rng.uniform(0.4, 1.0, size=n)
    panel["vae_gdp_pct"] = vae
    panel["dvar_exports"] = np.where(panel["year"] == 2007, rng.uniform(0.5, 0.9, size=n), np.nan)
    panel["mean_distance_km"] = distance
    panel["hsr_city_share"] = hsr
    panel["highway_segments"] = rng.integers(10, 500, size=n).astype(float)
    panel["ruggedness"] = rugged
    panel["elev_sd"] = rugged * 300.0
    panel["coast_distance_km"] = coast
    panel["hist_poly_2000"] = hist
    panel["log_population"] = log_pop
    panel["excluded_reason"] = ""
    panel = panel[list(PANEL_COLUMNS)]
    panel["province"] = panel["province"].astype("str")
    panel["province_zh"] = panel["province_zh"].astype("str")
    panel["region"] = panel["region"].astype("str")
    panel["excluded_reason"] = panel["excluded_reason"].astype("str")
    return panel


def toml_value(value) -> str:
    """Format a Python value as TOML (scalars, lists and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(path: Path, sections: dict[str, dict]) -> Path:
    """Write a TOML config with one table per section (nested dicts as sub-tables)."""
    lines: list[str] = []
    for name, section in sections.items():
        scalars = {k: v for k, v in section.items() if not isinstance(v, dict) or k != "priors"}
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in scalars.items()]
        if isinstance(section.get("priors"), dict):
            lines.append(f"[{name}.priors]")
            lines += [f"{k} = {toml_value(v)}" for k, v in section["priors"].items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def small_config(
    tmp_path: Path,
    panel_file: str | Path,
    model: dict | None = None,
    extra: dict[str, dict] | None = None,
) -> Path:
    """Write a config that reads ``panel_file`` with the small model and tiny sampling."""
    sections: dict[str, dict] = {
        "run": {"name": "bad_input", "seed": 1},
        "data": {"source": "panel_file", "panel": str(panel_file)},
        "model": model if model is not None else small_model_section(),
        "inference": dict(TINY_INFERENCE),
        "diagnostics": {"classical": False},
        "report": {"html": False},
    }
    for name, section in (extra or {}).items():
        sections.setdefault(name, {}).update(section)
    return write_config(tmp_path / "config.toml", sections)


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: the package importable, quiet numerics."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


CLI = [sys.executable, "-m", "polygvc.cli"]


class SamplingReached(AssertionError):
    """Raised by the stubbed sampler: the bad input was not caught before sampling."""


def assert_user_error(result, *fragments: str) -> str:
    """Check a CLI result failed cleanly with a message holding every fragment; return it."""
    output = result.output
    assert not isinstance(result.exception, SamplingReached), output
    assert result.exit_code != 0, f"exit code {result.exit_code}; output:\n{output}"
    assert "Traceback" not in output, output
    assert "Error:" in output, output
    # Rich wraps nothing (soft_wrap) but may insert line breaks in long paths; join lines.
    flat = " ".join(output.split())
    for fragment in fragments:
        assert " ".join(fragment.split()) in flat, f"{fragment!r} not in message:\n{output}"
    return flat
