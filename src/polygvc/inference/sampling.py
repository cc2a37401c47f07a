"""Sampling: NUTS through nutpie (default) or PyMC, then predictive draws and log-likelihood.

The result is one ``xarray.DataTree`` with the groups ``posterior``,
``sample_stats``, ``posterior_predictive``, ``log_likelihood``,
``observed_data`` and ``constant_data``. The row labels of the model data
(``obs_province``, ``obs_region``, ``obs_year``) are added to ``constant_data``
and the spec and scaling are stored as JSON strings in the root attrs, so a
stored result is self-describing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

from polygvc.errors import SamplingError
from polygvc.models.data import ModelData

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler settings; see ``[inference]`` in the config reference."""

    sampler: str = "nutpie"
    backend: str = "numba"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.95
    cores: int | None = None
    seed: int = 20261204
    posterior_predictive: bool = True
    log_likelihood: bool = True
    progressbar: bool = False

    @classmethod
    def from_config(cls, inference, seed: int, progressbar: bool = False) -> SamplerSettings:
        """Build settings from the ``[inference]`` section and the run seed."""
        return cls(
            sampler=inference.sampler,
            backend=inference.backend,
            chains=inference.chains,
            draws=inference.draws,
            tune=inference.tune,
            target_accept=inference.target_accept,
            cores=inference.cores,
            seed=seed,
            posterior_predictive=inference.posterior_predictive,
            log_likelihood=inference.log_likelihood,
            progressbar=progressbar,
        )


def _label_rows(dt: xr.DataTree, data: ModelData, spec_json: str) -> None:
    spec = json.loads(spec_json)
    frame = data.frame
    labels = xr.Dataset(
        {
            "obs_province": ("obs", frame[spec["unit"]].astype(str).to_numpy()),
            "obs_region": ("obs", frame[spec["group"]].astype(str).to_numpy()),
            "obs_year": ("obs", frame[spec["time"]].astype(int).to_numpy()),
            "endog_original": ("obs", frame[spec["endog"]].to_numpy(dtype=float)),
            "dependent_original": ("obs", frame[spec["dependent"]].to_numpy(dtype=float)),
        },
        coords={"obs": np.arange(data.n_obs)},
    )
    if "constant_data" in dt.children:
        merged = dt["constant_data"].to_dataset().merge(labels)
    else:
        merged = labels
    dt["constant_data"] = xr.DataTree(merged)
    dt.attrs["spec"] = spec_json
    dt.attrs["scaling"] = json.dumps(data.scaling)


def _chains_with_nan(posterior: xr.DataTree) -> list[int]:
    """Return the chains in which any posterior variable has a non-finite draw."""
    bad: set[int] = set()
    for var in posterior.data_vars.values():
        if not np.issubdtype(var.dtype, np.floating):
            continue
        other = [dim for dim in var.dims if dim != "chain"]
        finite = np.isfinite(var).all(dim=other) if other else np.isfinite(var)
        bad.update(int(c) for c in var["chain"].values[~finite.values])
    return sorted(bad)


def nutpie_compile_kwargs(settings: SamplerSettings) -> dict | None:
    """Return the nutpie compile options of ``settings.backend``.

    Raises
    ------
    SamplingError
        ``backend = "jax"`` without JAX installed, or a backend other than
        numba with ``sampler = "pymc"``.
    """
    if settings.backend == "numba":
        return None
    if settings.backend != "jax":
        raise SamplingError(
            f"Invalid sampler backend {settings.backend!r}. Fix: use 'numba' or 'jax'."
        )
    if settings.sampler != "nutpie":
        raise SamplingError(
            f"backend = 'jax' applies to the nutpie sampler only, but sampler = "
            f"{settings.sampler!r}. Fix: set sampler = 'nutpie' or backend = 'numba'."
        )
    if importlib.util.find_spec("jax") is None:
        raise SamplingError(
            "backend = 'jax' needs JAX, which is not installed in this environment. Fix: "
            "pip install 'polygvc[jax]' (CPU; for a GPU install the jax build for its CUDA "
            "version), or set backend = 'numba'."
        )
    return {"backend": "jax", "gradient_backend": "jax"}


def stored_var_names(model: pm.Model, settings: SamplerSettings) -> list[str] | None:
    """Return the variables nutpie stores, or None for all of them.

    NOTE: nutpie 0.16.11's JAX backend panics ("Unexpected expand key") while
    expanding the draws of the ``<name>_corr`` and ``<name>_stds``
    deterministics of ``LKJCholeskyCov``. The JAX backend therefore leaves them
    out, and ``sigma`` and ``rho`` carry the same information.
    """
    if settings.backend != "jax":
        return None
    names = [rv.name for rv in model.free_RVs]
    names += [
        d.name for d in model.deterministics if not d.name.endswith(("_corr", "_stds"))
    ]
    return names


def sample_model(
    model: pm.Model, data: ModelData, spec_json: str, settings: SamplerSettings
) -> xr.DataTree:
    """Sample a built model and return the complete DataTree.

    Parameters
    ----------
    model : pymc.Model
        A model from :mod:`polygvc.models`.
    data : ModelData
        The data the model was built on (for row labels and scaling).
    spec_json : str
        The spec as JSON (``spec.to_json()``), stored in the root attrs.
    settings : SamplerSettings
        Sampler choice, chains, draws, tuning, target acceptance and seed.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    SamplingError
        The sampler failed, or the user interrupted it (nothing is stored then).
    """
    dt = draw_posterior(model, settings)
    if settings.posterior_predictive:
        pm.sample_posterior_predictive(
            dt,
            model=model,
            random_seed=settings.seed + 1,
            extend_inferencedata=True,
            progressbar=False,
        )
    if settings.log_likelihood:
        pm.compute_log_likelihood(dt, model=model, extend_inferencedata=True, progressbar=False)
    _label_rows(dt, data, spec_json)
    return dt


def draw_posterior(model: pm.Model, settings: SamplerSettings) -> xr.DataTree:
    """Sample the posterior of any PyMC model and check that every chain finished.

    The first step of :func:`sample_model`, on its own for models whose
    likelihood is a potential (no observed variable to predict or to score
    per row), such as :mod:`polygvc.models.panel_threshold`.
    ``settings.posterior_predictive`` and ``settings.log_likelihood`` are not
    read here.

    Parameters
    ----------
    model : pymc.Model
    settings : SamplerSettings

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` and ``sample_stats`` (and what the sampler adds).

    Raises
    ------
    SamplingError
        The sampler failed, was interrupted, or a chain returned non-finite
        draws.
    """
    compile_kwargs = nutpie_compile_kwargs(settings)
    start = time.perf_counter()
    logger.info(
        "Sampling with %s (%s): %d chains x %d draws (%d tuning), seed %d",
        settings.sampler,
        settings.backend if settings.sampler == "nutpie" else "pytensor",
        settings.chains,
        settings.draws,
        settings.tune,
        settings.seed,
    )
    try:
        with warnings.catch_warnings():
            # PyTensor warns about BLAS at first compile; the numba backend used
            # by nutpie does not go through it.
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            dt = pm.sample(
                model=model,
                nuts_sampler=settings.sampler,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=settings.cores,
                random_seed=settings.seed,
                progressbar=settings.progressbar,
                nuts={"target_accept": settings.target_accept},
                compile_kwargs=compile_kwargs,
                var_names=stored_var_names(model, settings),
            )
    except KeyboardInterrupt:
        raise SamplingError(
            "Sampling was interrupted; no posterior was written for this run. Outputs "
            "written before sampling are kept. Fix: run again (the same seed gives the same draws)."
        ) from None
    except (ValueError, RuntimeError, FloatingPointError) as exc:
        raise SamplingError(
            f"The {settings.sampler} sampler failed: {exc}. Fix: check the data for extreme "
            'values, try sampler = "pymc" in [inference], or tighten the priors.'
        ) from exc
    # nutpie returns the draws made so far when interrupted instead of raising:
    # either fewer draws, or full-size arrays whose unfinished chains hold NaN.
    n_draws = int(dt["posterior"].sizes.get("draw", 0))
    unfinished = _chains_with_nan(dt["posterior"])
    if unfinished:
        raise SamplingError(
            f"Chains {', '.join(map(str, unfinished))} returned non-finite draws (sampling was "
            "interrupted or a chain failed to initialise); no posterior was written for this "
            "run. Fix: run again; if it recurs without an interruption, check the data for "
            "extreme values or tighten the priors."
        )
    if n_draws < settings.draws:
        raise SamplingError(
            f"Sampling stopped after {n_draws} of {settings.draws} draws per chain "
            "(interrupted); no posterior was written for this run. Outputs written before "
            "sampling are kept. Fix: run again (the same seed gives the same draws)."
        )
    logger.info("Sampling finished in %.1f s", time.perf_counter() - start)
    return dt
