"""Builder of a fake results DataTree with the layout the sampler stores.

The numbers are random draws, not a fitted model: they only give diagnostics
and report code the groups, variable names, dims and root attrs that
``polygvc.inference.sampling.sample_model`` writes. No sampler runs here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

# English canonical names with their NBS 2011 macro-region, in the order used
# to pick the first ``n_provinces``. The order mixes regions so that even a
# small fake panel has several regions.
FAKE_PROVINCES: tuple[tuple[str, str], ...] = (
    ("Beijing", "East"),
    ("Shanxi", "Central"),
    ("Sichuan", "West"),
    ("Liaoning", "Northeast"),
    ("Guangdong", "East"),
    ("Hubei", "Central"),
    ("Yunnan", "West"),
    ("Jilin", "Northeast"),
    ("Zhejiang", "East"),
    ("Henan", "Central"),
    ("Gansu", "West"),
    ("Heilongjiang", "Northeast"),
    ("Jiangsu", "East"),
    ("Hunan", "Central"),
    ("Guizhou", "West"),
    ("Shandong", "East"),
    ("Anhui", "Central"),
    ("Shaanxi", "West"),
    ("Fujian", "East"),
    ("Jiangxi", "Central"),
    ("Chongqing", "West"),
    ("Tianjin", "East"),
    ("Guangxi", "West"),
    ("Hebei", "East"),
    ("Shanghai", "East"),
    ("Inner Mongolia", "West"),
    ("Ningxia", "West"),
    ("Qinghai", "West"),
    ("Xinjiang", "West"),
    ("Hainan", "East"),
    ("Tibet", "West"),
)

FAKE_SPEC: dict = {
    "dependent": "vae_gdp_pct",
    "endog": "poly_entropy_norm",
    "instruments": ["ruggedness", "hist_poly_2000"],
    "controls": ["log_population"],
    "moderators": ["hsr_city_share"],
    "labels": {
        "vae_gdp_pct": "Export-induced value added (% of GDP)",
        "poly_entropy_norm": "Polycentricity (normalised entropy of light)",
    },
}

FAKE_SCALING: dict = {
    "means": {
        "vae_gdp_pct": 18.0,
        "poly_entropy_norm": 0.6,
        "ruggedness": 1.2,
        "hist_poly_2000": 0.55,
        "log_population": 17.3,
        "hsr_city_share": 0.2,
    },
    "sds": {
        "vae_gdp_pct": 9.0,
        "poly_entropy_norm": 0.15,
        "ruggedness": 0.8,
        "hist_poly_2000": 0.12,
        "log_population": 0.7,
        "hsr_city_share": 0.25,
    },
}


def make_fake_datatree(
    n_provinces: int = 6,
    years: Sequence[int] = (2002, 2007),
    chains: int = 2,
    draws: int = 200,
    seed: int = 20240611,
    province_names: Sequence[str] | None = None,
    n_divergent: int = 0,
) -> xr.DataTree:
    """Build a results DataTree of random numbers with the stored layout.

    Parameters
    ----------
    n_provinces : int
        Number of provinces, taken in order from ``FAKE_PROVINCES``.
    years : sequence of int
        Calendar years of the panel.
    chains, draws : int
        Sample dims sizes.
    seed : int
        Seed of ``numpy.random.default_rng``.
    province_names : sequence of str, optional
        Replace the province coordinate values (for escaping tests).
    n_divergent : int
        Number of draws of chain 0 flagged as divergent, placed at the draws
        where ``beta_province_sd`` is smallest (the neck of the funnel).

    Returns
    -------
    xarray.DataTree
        Groups posterior, posterior_predictive, log_likelihood, sample_stats,
        observed_data and constant_data; root attrs ``spec`` and ``scaling``.
    """
    rng = np.random.default_rng(seed)
    picked = FAKE_PROVINCES[:n_provinces]
    provinces = list(province_names) if province_names is not None else [p for p, _ in picked]
    province_region = [r for _, r in picked]
    regions = sorted(set(province_region))
    years = list(years)
    instruments = FAKE_SPEC["instruments"]
    covariates = FAKE_SPEC["controls"] + FAKE_SPEC["moderators"]
    n_obs = n_provinces * len(years)
    shape = (chains, draws)

    def draw_normal(loc, scale, *extra):
        return rng.normal(loc, scale, size=shape + tuple(extra))

    def draw_half(scale, *extra):
        return np.abs(rng.normal(0.0, scale, size=shape + tuple(extra)))

    beta_mu = draw_normal(0.3, 0.1)
    beta_region_sd = draw_half(0.2)
    beta_province_sd = draw_half(0.2)
    beta_region_offset = draw_normal(0.0, 1.0, len(regions))
    beta_province_offset = draw_normal(0.0, 1.0, n_provinces)
    beta_region = beta_mu[..., None] + beta_region_sd[..., None] * beta_region_offset
    region_index = np.array([regions.index(r) for r in province_region])
    beta_province = (
        beta_region[..., region_index] + beta_province_sd[..., None] * beta_province_offset
    )
    intercept = draw_normal(0.0, 0.1)
    intercept_province_sd = draw_half(0.3)
    intercept_province_offset = draw_normal(0.0, 1.0, n_provinces)
    intercept_province = intercept[..., None] + (
        intercept_province_sd[..., None] * intercept_province_offset
    )
    unit_ratio = FAKE_SCALING["sds"]["vae_gdp_pct"] / FAKE_SCALING["sds"]["poly_entropy_norm"]

    chain_dims = ["chain", "draw"]
    posterior = xr.Dataset(
        {
            "beta_mu": (chain_dims, beta_mu),
            "beta_region": (chain_dims + ["region"], beta_region),
            "beta_province": (chain_dims + ["province"], beta_province),
            "beta_region_sd": (chain_dims, beta_region_sd),
            "beta_province_sd": (chain_dims, beta_province_sd),
            "beta_region_offset": (chain_dims + ["region"], beta_region_offset),
            "beta_province_offset": (chain_dims + ["province"], beta_province_offset),
            "intercept": (chain_dims, intercept),
            "intercept_province": (chain_dims + ["province"], intercept_province),
            "intercept_province_sd": (chain_dims, intercept_province_sd),
            "intercept_province_offset": (chain_dims + ["province"], intercept_province_offset),
            "gamma": (chain_dims + ["covariate"], draw_normal(0.0, 0.2, len(covariates))),
            "year_effect": (chain_dims + ["year"], draw_normal(0.0, 0.1, len(years))),
            "fs_intercept": (chain_dims, draw_normal(0.0, 0.1)),
            "fs_instrument": (
                chain_dims + ["instrument"],
                draw_normal(np.array([0.5, 0.1]), 0.1, len(instruments)),
            ),
            "fs_covariate": (chain_dims + ["covariate"], draw_normal(0.0, 0.2, len(covariates))),
            "fs_year": (chain_dims + ["year"], draw_normal(0.0, 0.1, len(years))),
            "sigma": (chain_dims + ["equation"], 0.5 + draw_half(0.2, 2)),
            "rho": (chain_dims, np.tanh(draw_normal(0.2, 0.3))),
            "effect_mu": (chain_dims, beta_mu * unit_ratio),
            "effect_region": (chain_dims + ["region"], beta_region * unit_ratio),
            "effect_province": (chain_dims + ["province"], beta_province * unit_ratio),
        },
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(draws),
            "region": regions,
            "province": provinces,
            "covariate": covariates,
            "instrument": instruments,
            "year": years,
            "equation": ["first_stage", "outcome"],
        },
    )

    obs_coords = {"obs": np.arange(n_obs), "equation": ["first_stage", "outcome"]}
    observed = rng.normal(0.0, 1.0, size=(n_obs, 2))
    predictive = observed[None, None] * 0.6 + rng.normal(0.0, 0.8, size=shape + (n_obs, 2))
    residual = predictive - observed[None, None]
    log_lik = -0.5 * (residual**2).sum(axis=-1) - np.log(2 * np.pi * 0.64)

    obs_province = np.repeat(np.array(provinces, dtype=object), len(years))
    obs_year = np.tile(np.array(years, dtype=np.int64), n_provinces)
    obs_region = np.repeat(np.array(province_region, dtype=object), len(years))

    diverging = np.zeros(shape, dtype=bool)
    if n_divergent:
        neck = np.argsort(beta_province_sd[0])[:n_divergent]
        diverging[0, neck] = True
    tree_depth = rng.integers(2, 6, size=shape)
    sample_stats = xr.Dataset(
        {
            "diverging": (chain_dims, diverging),
            "energy": (chain_dims, rng.normal(50.0, 5.0, size=shape)),
            "tree_depth": (chain_dims, tree_depth),
            "reached_max_treedepth": (chain_dims, np.zeros(shape, dtype=bool)),
            "step_size": (chain_dims, np.full(shape, 0.3)),
            "lp": (chain_dims, rng.normal(-100.0, 3.0, size=shape)),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )

    sample_coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "posterior_predictive": xr.Dataset(
                {"outcomes": (chain_dims + ["obs", "equation"], predictive)},
                coords={**sample_coords, **obs_coords},
            ),
            "log_likelihood": xr.Dataset(
                {"outcomes": (chain_dims + ["obs"], log_lik)},
                coords={**sample_coords, "obs": obs_coords["obs"]},
            ),
            "sample_stats": sample_stats,
            "observed_data": xr.Dataset(
                {"outcomes": (["obs", "equation"], observed)}, coords=obs_coords
            ),
            "constant_data": xr.Dataset(
                {
                    "obs_province": ("obs", obs_province.astype(str)),
                    "obs_year": ("obs", obs_year),
                    "obs_region": ("obs", obs_region.astype(str)),
                },
                coords={"obs": obs_coords["obs"]},
            ),
        }
    )
    tree.attrs["spec"] = json.dumps(FAKE_SPEC)
    tree.attrs["scaling"] = json.dumps(FAKE_SCALING)
    return tree
