"""Priors declared as data: a distribution name and its parameters.

A :class:`Prior` is validated when it is made (known distribution, known
parameter names, valid values), so a bad prior in a config file fails before
any model is built, with a message naming the prior and the fix.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pymc as pm

from polygvc.errors import ConfigError

# Distributions a user may name, with their parameters and the constraint each
# parameter must satisfy. Only scalar parameters are accepted from configs.
_POSITIVE = "positive"
_REAL = "real"
SUPPORTED: dict[str, dict[str, str]] = {
    "Normal": {"mu": _REAL, "sigma": _POSITIVE},
    "StudentT": {"nu": _POSITIVE, "mu": _REAL, "sigma": _POSITIVE},
    "Cauchy": {"alpha": _REAL, "beta": _POSITIVE},
    "HalfNormal": {"sigma": _POSITIVE},
    "HalfStudentT": {"nu": _POSITIVE, "sigma": _POSITIVE},
    "HalfCauchy": {"beta": _POSITIVE},
    "Exponential": {"lam": _POSITIVE},
    "Gamma": {"alpha": _POSITIVE, "beta": _POSITIVE},
    "ZeroSumNormal": {"sigma": _POSITIVE},
}
POSITIVE_SUPPORT = {"HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma"}


@dataclass(frozen=True)
class Prior:
    """A prior distribution by name, e.g. ``Prior("Normal", mu=0, sigma=1)``.

    Parameters
    ----------
    dist : str
        A name from :data:`SUPPORTED`.
    **params
        The distribution's parameters; all must be given.

    Raises
    ------
    ConfigError
        Unknown distribution, unknown or missing parameter, or invalid value.
    """

    dist: str
    params: dict[str, float] = field(default_factory=dict)
    name: str = "prior"

    def __init__(self, dist: str, name: str = "prior", **params: Any) -> None:
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", dict(params))
        self.validate()

    def validate(self) -> None:
        """Check the distribution name and its parameters."""
        if self.dist not in SUPPORTED:
            raise ConfigError(
                f"Prior '{self.name}': unknown distribution {self.dist!r}. "
                f"Supported: {', '.join(sorted(SUPPORTED))}."
            )
        expected = SUPPORTED[self.dist]
        unknown = sorted(set(self.params) - set(expected))
        if unknown:
            raise ConfigError(
                f"Prior '{self.name}': {self.dist} has no parameter {', '.join(unknown)}. "
                f"Its parameters are: {', '.join(expected)}."
            )
        missing = [key for key in expected if key not in self.params]
        if missing:
            raise ConfigError(
                f"Prior '{self.name}': {self.dist} needs {', '.join(missing)}. "
                f"Give all of: {', '.join(expected)}, e.g. {self.example()}."
            )
        for key, kind in expected.items():
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"Prior '{self.name}': parameter {key} = {value!r} must be a number."
                )
            if not math.isfinite(value):
                raise ConfigError(
                    f"Prior '{self.name}': parameter {key} = {value!r} must be finite."
                )
            if kind == _POSITIVE and value <= 0:
                raise ConfigError(
                    f"Prior '{self.name}': parameter {key} = {value!r} must be > 0 for {self.dist}."
                )

    def example(self) -> str:
        """Return a TOML inline table showing this distribution's parameters."""
        parts = [f'dist = "{self.dist}"'] + [f"{key} = 1.0" for key in SUPPORTED[self.dist]]
        return "{ " + ", ".join(parts) + " }"

    @property
    def positive(self) -> bool:
        """Whether the distribution's support is the positive reals."""
        return self.dist in POSITIVE_SUPPORT

    def create(self, name: str, **kwargs: Any) -> Any:
        """Create the PyMC random variable ``name`` in the current model context."""
        dist = getattr(pm, self.dist)
        return dist(name, **self.params, **kwargs)

    def dist_object(self) -> Any:
        """Return an unnamed PyMC distribution (for ``sd_dist`` arguments)."""
        return getattr(pm, self.dist).dist(**self.params)

    def to_dict(self) -> dict[str, Any]:
        """Return the prior as ``{"dist": ..., **params}``."""
        return {"dist": self.dist, **self.params}

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value:g}" for key, value in self.params.items())
        return f"{self.dist}({args})"


def prior_from_setting(
    value: Prior | Mapping[str, Any], *, name: str, label: str, default: Prior, prior_name: str
) -> Prior:
    """Return a :class:`Prior` from a ``Prior`` or a mapping ``{"dist": ..., **params}``.

    Parameters
    ----------
    value : Prior or mapping
        The user's setting.
    name : str
        Parameter name; a given ``Prior`` is renamed to it.
    label : str
        How error messages refer to the setting, e.g. ``"Prior 'model.priors.beta_mu'"``.
    default : Prior
        The default prior, shown as an example in the error message.
    prior_name : str
        Name given to a prior built from a mapping (appears in its own errors).

    Raises
    ------
    ConfigError
        The mapping has no ``dist``, or the distribution or parameters are invalid.
    """
    if isinstance(value, Prior):
        return Prior(value.dist, name=name, **value.params)
    setting = dict(value)
    dist = setting.pop("dist", None)
    if dist is None:
        raise ConfigError(f"{label} has no 'dist'. Fix: write it as {default.example()}.")
    return Prior(dist, name=prior_name, **setting)


def check_prior_name(name: str, valid: Collection[str], model_label: str) -> None:
    """Raise ConfigError when ``name`` is not one of a model's prior names.

    The message names the model (``model_label``, e.g. ``"linear IV"``),
    suggests the closest valid name and lists all of them.
    """
    if name in valid:
        return
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Unknown {model_label} prior name {name!r}.{hint} Valid names: {', '.join(sorted(valid))}."
    )
