"""Compile a PyMC model once with nutpie and sample it again with new data.

Compiling the logp and gradient of a model with numba takes seconds to tens of
seconds, often longer than sampling a small model. Refits on new data of the
same shapes (simulation-based calibration, bootstrap panels, data updates)
can reuse one compilation: nutpie's ``CompiledModel.with_data`` swaps the
values of ``pm.Data`` variables in the compiled functions without compiling
again (nutpie 0.16).

:class:`CompiledSampler` wraps that: ``CompiledSampler(model)`` compiles,
``.sample(settings, data={...})`` returns an ``xarray.DataTree`` with
``posterior``, ``sample_stats``, ``constant_data`` and ``observed_data``, and
records how long compiling and each sampling run took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import xarray as xr
from pymc.backends.arviz import patch_nutpie_idata

from polygvc.errors import ModelError, SamplingError
from polygvc.inference.sampling import SamplerSettings

logger = logging.getLogger(__name__)

__all__ = ["CompiledSampler", "FitTiming"]


@dataclass
class FitTiming:
    """Wall-clock seconds of one compilation and of the sampling runs that reused it."""

    compile_seconds: float
    sampling_seconds: list[float] = field(default_factory=list)


class CompiledSampler:
    """A PyMC model compiled once by nutpie and sampled many times.

    Parameters
    ----------
    model : pymc.Model
        Model whose data enter through ``pm.Data`` variables.
    var_names : iterable of str, optional
        Variables to store in the posterior; all free variables and
        deterministics by default.
    backend : {"numba"}
        nutpie compile backend; others raise ``ModelError`` (see the note in
        ``__init__``).

    Attributes
    ----------
    timing : FitTiming
        Compile time and the sampling time of each call to :meth:`sample`.

    Notes
    -----
    New data must keep every array's shape, because nutpie fixes the shapes
    of the stored variables when it compiles; :meth:`sample` raises
    ``ModelError`` otherwise. The ``pm.Data`` values of ``model`` itself are
    restored after each call, so the model object is left as it was given.

    Examples
    --------
    >>> sampler = CompiledSampler(model)                       # doctest: +SKIP
    >>> first = sampler.sample(SamplerSettings(draws=500))     # doctest: +SKIP
    >>> refit = sampler.sample(SamplerSettings(), data={"gram": new_gram})  # doctest: +SKIP
    """

    def __init__(
        self,
        model: pm.Model,
        var_names: Iterable[str] | None = None,
        backend: str = "numba",
    ) -> None:
        import nutpie

        self.model = model
        self._data_shapes = {
            name: tuple(np.shape(var.get_value())) for name, var in self._data_vars().items()
        }
        if backend != "numba":
            # NOTE: with nutpie 0.16.11 the JAX backend either freezes pm.Data into
            # constants (then with_data rejects every name) or, unfrozen, fails on
            # the data's dynamic shapes, so refits with new data need numba.
            raise ModelError(
                f"CompiledSampler supports backend 'numba' only, not {backend!r}: refitting "
                "with new data under JAX is not available in nutpie 0.16. Fix: use "
                "backend='numba' here; inference.backend = 'jax' still works for single fits."
            )
        start = time.perf_counter()
        self.compiled = nutpie.compile_pymc_model(
            model,
            backend=backend,
            var_names=list(var_names) if var_names is not None else None,
        )
        elapsed = time.perf_counter() - start
        self.timing = FitTiming(compile_seconds=elapsed)
        logger.info("Compiled the model with nutpie (%s) in %.1f s", backend, elapsed)

    def _data_vars(self) -> dict:
        return {
            name: var for name, var in self.model.named_vars.items() if var in self.model.data_vars
        }

    @property
    def data_names(self) -> tuple[str, ...]:
        """Names of the ``pm.Data`` variables that :meth:`sample` can replace."""
        return tuple(self._data_shapes)

    def _check_data(self, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        checked = {}
        for name, value in data.items():
            if name not in self._data_shapes:
                raise ModelError(
                    f"Cannot replace data {name!r}: the compiled model has no pm.Data variable "
                    f"of that name. Valid names: {', '.join(self.data_names)}."
                )
            array = np.asarray(value)
            if array.shape != self._data_shapes[name]:
                raise ModelError(
                    f"New data {name!r} has shape {array.shape} but the model was compiled with "
                    f"shape {self._data_shapes[name]}. Fix: build and compile a model for the "
                    "new shape (CompiledSampler reuses a compilation only for equal shapes)."
                )
            if not np.all(np.isfinite(array)) and np.issubdtype(array.dtype, np.floating):
                raise ModelError(
                    f"New data {name!r} contains NaN or infinite values. Fix: drop or fill them "
                    "before refitting."
                )
            checked[name] = array
        return checked

    def sample(
        self,
        settings: SamplerSettings,
        data: Mapping[str, np.ndarray] | None = None,
    ) -> xr.DataTree:
        """Sample the compiled model, optionally with new values of its ``pm.Data``.

        Parameters
        ----------
        settings : SamplerSettings
            ``chains``, ``draws``, ``tune``, ``target_accept``, ``cores`` and
            ``seed`` are used; predictive draws and log-likelihood are not
            computed here.
        data : mapping of str to ndarray, optional
            New values by ``pm.Data`` name; the others keep their values.

        Returns
        -------
        xarray.DataTree
            Groups ``posterior``, ``sample_stats``, ``constant_data``,
            ``observed_data`` (the latter two hold the data of this fit). The
            ``posterior`` attrs hold ``sampling_time`` (s) and the root attrs
            ``compile_seconds``.

        Raises
        ------
        ModelError
            Unknown data name, changed shape or non-finite values.
        SamplingError
            nutpie failed or the run was interrupted.
        """
        import nutpie

        new_data = self._check_data(data or {})
        compiled = self.compiled.with_data(**new_data) if new_data else self.compiled
        data_vars = self._data_vars()
        previous = {name: data_vars[name].get_value() for name in new_data}
        start = time.perf_counter()
        try:
            dt = nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=settings.cores,
                seed=settings.seed,
                save_warmup=False,
                progress_bar=settings.progressbar,
                target_accept=settings.target_accept,
            )
        except KeyboardInterrupt:
            raise SamplingError(
                "Sampling was interrupted; no posterior was returned. Fix: run again (the same "
                "seed gives the same draws)."
            ) from None
        except (ValueError, RuntimeError, FloatingPointError) as exc:
            raise SamplingError(
                f"nutpie failed while sampling the compiled model: {exc}. Fix: check the new "
                "data for extreme values or tighten the priors."
            ) from exc
        elapsed = time.perf_counter() - start
        self.timing.sampling_seconds.append(elapsed)
        try:
            # The constant and observed groups are read from the model, so it
            # holds the new data while they are written.
            for name, value in new_data.items():
                data_vars[name].set_value(value)
            patch_nutpie_idata(dt, self.model, sampling_time=elapsed)
        finally:
            for name, value in previous.items():
                data_vars[name].set_value(value)
        dt.attrs["compile_seconds"] = self.timing.compile_seconds
        logger.info(
            "Sampled in %.1f s (compiled once in %.1f s)", elapsed, self.timing.compile_seconds
        )
        return dt

    def sample_many(
        self,
        datasets: Iterable[Mapping[str, np.ndarray]],
        settings: SamplerSettings,
    ) -> Iterator[xr.DataTree]:
        """Yield one fit per dataset, reusing the compilation (for SBC and refits).

        Parameters
        ----------
        datasets : iterable of mapping
            New ``pm.Data`` values of each fit.
        settings : SamplerSettings
            Fit ``k`` (from 0) uses seed ``settings.seed + k``.

        Yields
        ------
        xarray.DataTree
            As :meth:`sample` returns.
        """
        for index, data in enumerate(datasets):
            fit_settings = SamplerSettings(
                **{**settings.__dict__, "seed": settings.seed + index}
            )
            yield self.sample(fit_settings, data=data)
