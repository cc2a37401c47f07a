r"""Semi-synthetic data with a known causal truth, on the real province geography.

The generator keeps the real world where the analysis cannot change it (the
31 provinces and their regions, the prefecture cities' night-time light, the
distances between prefectures, high-speed-rail exposure, terrain and census
population from :func:`polygvc.data_prep.panel.build_province_panel`) and
simulates what the analysis estimates: how polycentric each province is and
the GVC position of its firms. Because the simulated parameters are known,
a model fitted on the output can be checked against ``truth.json``.

Structural model
----------------
Provinces ``p`` lie in regions ``r(p)``; years ``t``; firms ``i``.

1. Unobserved confounder ``U_p ~ N(0, 1)``, one per province.
2. Polycentricity. The light ``L_c`` of each city ``c`` of province ``p`` is
   tilted,

   .. math:: \tilde L_{ct} = L_{ct}^{\,1 - \theta_{pt}},\qquad
             \theta_{pt} = \tfrac12 \tanh(\kappa_T U_p + \pi Z_p + \nu_{pt}),
             \quad \nu_{pt} \sim N(0, \sigma_\nu^2),

   with ``Z_p`` the standardised ruggedness (the excluded instrument). A
   positive tilt flattens the size distribution: the rank-size slope over
   all cities becomes exactly ``(1 - theta) b``. Every polycentricity column
   of the panel is recomputed from the tilted sizes with the panel's own
   kernels, so the columns stay consistent with each other.
3. Treatment ``T_pt``: the column ``params.treatment`` (default
   ``poly_entropy_norm``) standardised with its mean ``m_T`` and standard
   deviation ``s_T`` over the defined province-years (stored in the truth).
4. Effects, partially pooled by region:
   ``beta_p = mu_beta + b_r(p) + b_p`` with ``b_r ~ N(0, tau_region^2)``
   and ``b_p ~ N(0, tau_province^2)``.
5. Infrastructure threshold and distance moderation:
   ``g_pt = 1[hsr_city_share_pt >= gamma*] (1 + delta D_p)``, with ``D_p``
   the standardised mean distance between the province's prefectures
   (``delta < 0``: wider provinces gain less, distance dampens the effect).
6. Firm outcome (GVC position, in standard-deviation-like units; higher =
   more domestic value added in exports):

   .. math:: y_{ipt} = \alpha_p + \beta_p g_{pt} T_{pt} + \kappa_Y U_p
             + \phi P_{pt} + \varepsilon_{ipt},\quad
             \varepsilon \sim N(0, \sigma_y^2),\ \alpha_p \sim N(0, \sigma_\alpha^2),

   with ``P_pt`` the standardised log population. Where the treatment is
   undefined (the municipalities, one light unit each) the term
   ``beta_p g_pt T_pt`` is 0.

``U`` raises both polycentricity (``kappa_T``) and GVC position
(``kappa_Y``), so a regression of ``y`` on ``T`` is biased; ruggedness moves
``T`` but not ``y`` except through ``T``, so it is a valid instrument by
construction.

The true causal effect of a +1 sd intervention, ``do(T_pt := T_pt + 1)``
(one ``s_T`` in index units), on the mean GVC position of province ``p``'s
firms in year ``t`` is ``beta_p g_pt``; ``truth.json`` lists it per province
and year.

Outputs
-------
* a province-year panel with the columns of
  :data:`polygvc.data_prep.panel.PANEL_COLUMNS` plus ``gvc_sim`` (mean
  firm outcome, every year), ``treatment_std`` and ``confounder_u`` (kept
  for checks; a model must not use it). ``vae_gdp_pct`` in the survey years
  2002 and 2007 is ``clip(15 + 5 gvc_sim, 0, 100)`` and ``dvar_exports`` in
  2007 is ``logistic(gvc_sim)``, so the real-data outcome years also exist;
* a firm table: ``firm_id``, ``province``, ``province_code``, ``region``,
  ``year``, ``gvc_position``;
* ``truth.json``.

Centre-periphery hook
---------------------
``city_model`` replaces the real light of a province-year by city sizes from
a model before the tilt: a callable ``(province_code, year, hsr_city_share)
-> pandas.Series`` of sizes indexed by city code. A hook built on the
multi-city centre-periphery model (``polygvc.models.centre_periphery``: the
province's real prefecture centroids, trade costs lowered by its
high-speed-rail share, city GDP at the short-run equilibrium) makes city
sizes respond to an infrastructure intervention through the model, and the
outcome equation above turns the resulting change in ``T`` into a known
change in GVC position. ``docs/data_prep.md`` gives such a hook; it lives
outside this module because ``data_prep`` may not import the later
``models`` stage. A hook that raises :class:`DataError` for a province (for
example one with fewer than 2 prefectures) leaves that province's real light
in place.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polygvc.atomic import atomic_path, write_text
from polygvc.data_prep.names import REGIONS, province_table
from polygvc.data_prep.panel import PANEL_COLUMNS, POLY_COLUMNS, TOP_N, validate_panel
from polygvc.data_prep.polycentricity import polycentricity_indices
from polygvc.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PANEL_FILE, FIRMS_FILE, TRUTH_FILE = "panel.parquet", "firms.parquet", "truth.json"
CityModel = Callable[[int, int, float], pd.Series]
"""``(province_code, year, hsr_city_share) -> city sizes`` (index: city code)."""


@dataclass(frozen=True)
class SemiSyntheticParams:
    """Parameters of the structural model (symbols of the module docstring).

    Attributes
    ----------
    treatment : str
        Polycentricity column used as ``T`` (one of the panel's index columns).
    beta_mean, tau_region, tau_province : float
        ``mu_beta`` and the region and province standard deviations of ``beta_p``.
    hsr_threshold : float
        ``gamma*`` in [0, 1]: the effect is on only where ``hsr_city_share >= gamma*``.
    distance_moderation : float
        ``delta``; negative values dampen the effect in wide provinces.
    confounder_on_treatment, confounder_on_outcome : float
        ``kappa_T`` and ``kappa_Y``.
    instrument_strength : float
        ``pi``, the effect of standardised ruggedness on the tilt.
    tilt_noise_sd : float
        ``sigma_nu``.
    intercept_sd, population_effect, firm_noise_sd : float
        ``sigma_alpha``, ``phi``, ``sigma_y``.
    firms_per_cell : int
        Firms simulated per province-year.
    """

    treatment: str = "poly_entropy_norm"
    beta_mean: float = 0.5
    tau_region: float = 0.2
    tau_province: float = 0.15
    hsr_threshold: float = 0.3
    distance_moderation: float = -0.3
    confounder_on_treatment: float = 0.6
    confounder_on_outcome: float = 0.8
    instrument_strength: float = 0.5
    tilt_noise_sd: float = 0.1
    intercept_sd: float = 0.5
    population_effect: float = 0.2
    firm_noise_sd: float = 1.0
    firms_per_cell: int = 30

    def __post_init__(self) -> None:
        if self.treatment not in POLY_COLUMNS:
            raise ConfigError(
                f"treatment {self.treatment!r} is not a polycentricity column. Valid: "
                f"{', '.join(POLY_COLUMNS)}."
            )
        if not 0.0 <= self.hsr_threshold <= 1.0:
            raise ConfigError(f"hsr_threshold must lie in [0, 1], got {self.hsr_threshold!r}.")
        for name in (
            "tau_region",
            "tau_province",
            "tilt_noise_sd",
            "intercept_sd",
            "firm_noise_sd",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be at least 0, got {getattr(self, name)!r}.")
        if isinstance(self.firms_per_cell, bool) or int(self.firms_per_cell) < 1:
            raise ConfigError(f"firms_per_cell must be at least 1, got {self.firms_per_cell!r}.")


@dataclass
class SemiSyntheticResult:
    """Simulated panel, firms and truth (see the module docstring)."""

    panel: pd.DataFrame
    firms: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)


def _standardise(values: pd.Series) -> tuple[pd.Series, float, float]:
    mean = float(values.mean())
    sd = float(values.std(ddof=0))
    sd = sd if sd > 0 else 1.0
    return (values - mean) / sd, mean, sd


def _province_draws(rng: np.random.Generator, params: SemiSyntheticParams) -> pd.DataFrame:
    table = province_table()[["province", "province_code", "region"]].copy()
    region_effect = dict(
        zip(REGIONS, rng.normal(0.0, params.tau_region, len(REGIONS)), strict=True)
    )
    n = len(table)
    table["confounder_u"] = rng.normal(0.0, 1.0, n)
    table["region_effect"] = table["region"].map(region_effect)
    table["province_effect"] = rng.normal(0.0, params.tau_province, n)
    table["beta"] = params.beta_mean + table["region_effect"] + table["province_effect"]
    table["alpha"] = rng.normal(0.0, params.intercept_sd, n)
    return table


def _tilted_indices(
    cities: pd.DataFrame, tilt: pd.DataFrame, city_model: CityModel | None, hsr: pd.Series
) -> pd.DataFrame:
    frame = cities[["province", "year", "city_code", "light"]].copy()
    if city_model is not None:
        frame = _apply_city_model(frame, city_model, hsr)
    frame = frame.merge(tilt, on=["province", "year"], how="left", validate="many_to_one")
    positive = frame["light"] > 0
    frame["size"] = 0.0
    frame.loc[positive, "size"] = np.exp(
        (1.0 - frame.loc[positive, "tilt"]) * np.log(frame.loc[positive, "light"])
    )
    poly = polycentricity_indices(frame, ["province", "year"], "size", top_n=TOP_N)
    return poly.rename(columns={"n_units": "n_cities"})


def _apply_city_model(frame: pd.DataFrame, city_model: CityModel, hsr: pd.Series) -> pd.DataFrame:
    codes = province_table().set_index("province")["province_code"]
    parts = []
    for (province, year), group in frame.groupby(["province", "year"], sort=True):
        try:
            sizes = city_model(int(codes[province]), int(year), float(hsr[(province, year)]))
        except DataError as exc:
            logger.info("City model skipped for %s %s, real light kept: %s", province, year, exc)
            parts.append(group)
            continue
        parts.append(
            pd.DataFrame(
                {
                    "province": province,
                    "year": year,
                    "city_code": np.asarray(sizes.index, dtype="int64"),
                    "light": np.asarray(sizes, dtype=float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def simulate_semisynthetic(
    base_panel: pd.DataFrame | None = None,
    cities: pd.DataFrame | None = None,
    *,
    params: SemiSyntheticParams | None = None,
    seed: int = 0,
    years: range | None = None,
    city_model: CityModel | None = None,
) -> SemiSyntheticResult:
    """Simulate polycentricity and firm GVC outcomes with a known causal truth.

    Parameters
    ----------
    base_panel : pandas.DataFrame, optional
        Real province-year panel (:func:`polygvc.data_prep.panel.build_province_panel`);
        built for ``years`` when None.
    cities : pandas.DataFrame, optional
        City light with ``province``, ``year``, ``city_code``, ``light``
        (:func:`polygvc.data_prep.light.load_city_light`); loaded when None.
    params : SemiSyntheticParams, optional
        Structural parameters; defaults when None.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed and inputs
        give identical outputs.
    years : range, optional
        Years to build when ``base_panel`` is None (default 2001-2020).
    city_model : callable, optional
        Hook replacing the real light by model city sizes (module docstring).

    Returns
    -------
    SemiSyntheticResult
        ``panel`` (passes :func:`polygvc.data_prep.panel.validate_panel`),
        ``firms`` and ``truth`` (a JSON-ready dict).

    Raises
    ------
    DataError
        ``base_panel`` or ``cities`` lack needed columns or rows.
    ConfigError
        Invalid parameters.

    Notes
    -----
    The model and its symbols are in the module docstring.
    """
    params = params or SemiSyntheticParams()
    if base_panel is None:
        from polygvc.data_prep.panel import build_province_panel

        base_panel = build_province_panel(years=years or range(2001, 2021))
    if cities is None:
        from polygvc.data_prep.light import load_city_light

        cities = load_city_light(years=sorted(base_panel["year"].unique()))
    _check_inputs(base_panel, cities)
    rng = np.random.default_rng(seed)

    provinces = _province_draws(rng, params)
    panel = base_panel.sort_values(["province_code", "year"], ignore_index=True).copy()
    panel = panel.merge(
        provinces[["province", "confounder_u", "beta", "alpha"]], on="province", how="left"
    )

    # Step 2: tilt of the city size distribution.
    ruggedness_z, _, _ = _standardise(panel.groupby("province")["ruggedness"].first())
    z = panel["province"].map(ruggedness_z).fillna(0.0)
    noise = rng.normal(0.0, params.tilt_noise_sd, len(panel))
    panel["tilt"] = 0.5 * np.tanh(
        params.confounder_on_treatment * panel["confounder_u"]
        + params.instrument_strength * z
        + noise
    )
    hsr = panel.set_index(["province", "year"])["hsr_city_share"]
    poly = _tilted_indices(cities, panel[["province", "year", "tilt"]], city_model, hsr)
    panel = panel.drop(columns=[*POLY_COLUMNS, "n_cities"]).merge(
        poly[["province", "year", "n_cities", *POLY_COLUMNS]],
        on=["province", "year"],
        how="left",
        validate="one_to_one",
    )
    panel["n_cities"] = panel["n_cities"].fillna(0).astype("int64")

    # Steps 3-5: treatment, threshold and moderator.
    treatment = panel[params.treatment]
    defined = treatment.notna()
    t_mean = float(treatment[defined].mean())
    t_sd = float(treatment[defined].std(ddof=0)) or 1.0
    panel["treatment_std"] = (treatment - t_mean) / t_sd
    distance_z, d_mean, d_sd = _standardise(panel.groupby("province")["mean_distance_km"].first())
    distance = panel["province"].map(distance_z).fillna(0.0)
    regime = (panel["hsr_city_share"] >= params.hsr_threshold).astype(float)
    panel["effect_multiplier"] = regime * (1.0 + params.distance_moderation * distance)
    population_z, _, _ = _standardise(panel["log_population"])

    # Step 6: firm outcomes.
    mean_part = (
        panel["alpha"]
        + panel["beta"] * panel["effect_multiplier"] * panel["treatment_std"].fillna(0.0)
        + params.confounder_on_outcome * panel["confounder_u"]
        + params.population_effect * population_z
    ).to_numpy()
    k = int(params.firms_per_cell)
    outcome = np.repeat(mean_part, k) + rng.normal(0.0, params.firm_noise_sd, len(panel) * k)
    firms = pd.DataFrame(
        {
            "firm_id": np.arange(len(outcome), dtype="int64"),
            "province": np.repeat(panel["province"].to_numpy(), k),
            "province_code": np.repeat(panel["province_code"].to_numpy(), k).astype("int64"),
            "region": np.repeat(panel["region"].to_numpy(), k),
            "year": np.repeat(panel["year"].to_numpy(), k).astype("int64"),
            "gvc_position": outcome,
        }
    )
    for column in ("province", "region"):
        firms[column] = firms[column].astype("str")
    gvc = firms.groupby(["province", "year"])["gvc_position"].mean()
    panel["gvc_sim"] = pd.MultiIndex.from_frame(panel[["province", "year"]]).map(gvc).astype(float)

    truth = _truth(panel, provinces, params, seed, t_mean, t_sd, d_mean, d_sd)
    panel = _finish_panel(panel)
    return SemiSyntheticResult(panel=panel, firms=firms, truth=truth)


def _check_inputs(base_panel: pd.DataFrame, cities: pd.DataFrame) -> None:
    missing = [c for c in PANEL_COLUMNS if c not in base_panel.columns]
    if missing:
        raise DataError(
            f"The base panel lacks columns {missing}. Fix: build it with "
            "polygvc.data_prep.panel.build_province_panel."
        )
    missing = [c for c in ("province", "year", "city_code", "light") if c not in cities.columns]
    if missing:
        raise DataError(
            f"The city light table lacks columns {missing}. Fix: load it with "
            "polygvc.data_prep.light.load_city_light."
        )


def _truth(
    panel: pd.DataFrame,
    provinces: pd.DataFrame,
    params: SemiSyntheticParams,
    seed: int,
    t_mean: float,
    t_sd: float,
    d_mean: float,
    d_sd: float,
) -> dict[str, Any]:
    effects: dict[str, dict[str, float | None]] = {}
    for row in panel.itertuples(index=False):
        value = float(row.beta * row.effect_multiplier) if pd.notna(row.treatment_std) else None
        effects.setdefault(row.province, {})[str(int(row.year))] = value
    latest = int(panel["year"].max())
    return {
        "description": (
            "Semi-synthetic polygvc data; symbols as in polygvc.data_prep.semisynthetic. "
            "effect_plus_1sd[province][year] is the true change in the mean GVC position "
            "of the province's firms when the treatment rises by one treatment_sd, "
            "null where the treatment is undefined."
        ),
        "seed": int(seed),
        "params": asdict(params),
        "treatment": params.treatment,
        "treatment_mean": t_mean,
        "treatment_sd": t_sd,
        "hsr_threshold": params.hsr_threshold,
        "distance_mean_km": d_mean,
        "distance_sd_km": d_sd,
        "region_effects": {
            r: float(v) for r, v in provinces.groupby("region")["region_effect"].first().items()
        },
        "province_beta": dict(
            zip(provinces["province"], provinces["beta"].astype(float), strict=True)
        ),
        "province_alpha": dict(
            zip(provinces["province"], provinces["alpha"].astype(float), strict=True)
        ),
        "confounder_u": dict(
            zip(provinces["province"], provinces["confounder_u"].astype(float), strict=True)
        ),
        "effect_plus_1sd": effects,
        "effect_plus_1sd_latest_year": {p: v[str(latest)] for p, v in effects.items()},
        "latest_year": latest,
    }


_OUTCOME_SENTENCE = re.compile(r"[^.]*Wu, Li and Lei \(2016\)[^.]*\.\s*")


def _finish_panel(panel: pd.DataFrame) -> pd.DataFrame:
    out = panel.copy()
    survey = out["year"].isin([2002, 2007])
    out["vae_gdp_pct"] = np.where(survey, np.clip(15.0 + 5.0 * out["gvc_sim"], 0.0, 100.0), np.nan)
    out["dvar_exports"] = np.where(
        out["year"] == 2007, 1.0 / (1.0 + np.exp(-out["gvc_sim"])), np.nan
    )
    # Every province has a simulated outcome, so the real-data outcome reasons no longer apply.
    out["excluded_reason"] = (
        out["excluded_reason"].str.replace(_OUTCOME_SENTENCE, "", regex=True).str.strip()
    )
    undefined = out[list(POLY_COLUMNS)].isna().any(axis=1) & (out["excluded_reason"] == "")
    out.loc[undefined, "excluded_reason"] = (
        "Polycentricity indices are undefined for the simulated city sizes."
    )
    extra = ["gvc_sim", "treatment_std", "effect_multiplier", "tilt", "confounder_u"]
    out = out[[*PANEL_COLUMNS, *extra]]
    for column, kind in PANEL_COLUMNS.items():
        if kind == "float":
            out[column] = out[column].astype("float64")
    validate_panel(out)
    return out.reset_index(drop=True)


def write_semisynthetic(
    result: SemiSyntheticResult, out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write the panel, the firm table and ``truth.json`` atomically.

    Parameters
    ----------
    result : SemiSyntheticResult
        Output of :func:`simulate_semisynthetic`.
    out_dir : str or path-like
        Folder (created if needed).

    Returns
    -------
    dict of str to pathlib.Path
        ``{"panel": ..., "firms": ..., "truth": ...}``.

    Raises
    ------
    DataError
        The panel fails validation; nothing is written.
    """
    validate_panel(result.panel)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "panel": folder / PANEL_FILE,
        "firms": folder / FIRMS_FILE,
        "truth": folder / TRUTH_FILE,
    }
    for key in ("panel", "firms"):
        frame = result.panel if key == "panel" else result.firms
        with atomic_path(paths[key]) as tmp:
            frame.to_parquet(tmp, index=False)
    write_text(paths["truth"], json.dumps(result.truth, indent=2, sort_keys=True, allow_nan=False))
    logger.info("Wrote semi-synthetic data to %s.", folder)
    return paths
