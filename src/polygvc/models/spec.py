"""Specification of the hierarchical Bayesian IV model: variable roles and priors.

All default priors live in :data:`DEFAULT_PRIORS`, keyed by parameter name, on
the standardised scale (every variable has mean 0 and sd 1 in the model data).
User priors override defaults by name; an unknown name is an error listing the
valid names.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polygvc.errors import ConfigError
from polygvc.models.pooling import use_centred
from polygvc.models.priors import Prior, prior_from_setting

logger = logging.getLogger(__name__)


def _defaults() -> dict[str, Prior]:
    table: dict[str, tuple[str, dict[str, float]]] = {
        # First stage: endogenous regressor on instruments and covariates.
        "fs_intercept": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "fs_instrument": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "fs_covariate": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "fs_year": ("ZeroSumNormal", {"sigma": 0.5}),
        # Outcome equation.
        "intercept": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "intercept_region_sd": ("HalfNormal", {"sigma": 0.5}),
        "intercept_province_sd": ("HalfNormal", {"sigma": 0.5}),
        "beta_mu": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "beta_region_sd": ("HalfNormal", {"sigma": 0.3}),
        "beta_province_sd": ("HalfNormal", {"sigma": 0.3}),
        "gamma": ("Normal", {"mu": 0.0, "sigma": 1.0}),
        "year_effect": ("ZeroSumNormal", {"sigma": 0.5}),
        # Error scales of both equations (the sd_dist of the LKJ Cholesky prior).
        "sigma": ("HalfNormal", {"sigma": 1.0}),
    }
    return {name: Prior(dist, name=name, **params) for name, (dist, params) in table.items()}


DEFAULT_PRIORS: dict[str, Prior] = _defaults()

# Parameters whose prior must have positive support (scales).
_SCALE_PARAMETERS = {
    "intercept_region_sd",
    "intercept_province_sd",
    "beta_region_sd",
    "beta_province_sd",
    "sigma",
}
_ZERO_SUM_PARAMETERS = {"fs_year", "year_effect"}


def check_prior_name(name: str, valid: Collection[str], scope: str = "") -> None:
    """Raise ConfigError when ``model.priors.<name>`` is not one of ``valid``.

    The message suggests the closest valid name and lists all of them after
    "Valid names" plus ``scope``, e.g. ``" for control-function models"``.
    """
    if name in valid:
        return
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"Unknown prior name 'model.priors.{name}'.{hint} Valid names{scope}: {', '.join(names)}."
    )


def prior_override(
    name: str,
    value: Prior | Mapping[str, Any],
    default: Prior,
    scale_parameters: Collection[str],
) -> Prior:
    """Build the user's prior ``model.priors.<name>`` and check a scale parameter's support.

    Raises
    ------
    ConfigError
        Invalid distribution or parameters (see :func:`prior_from_setting`), or
        a distribution without positive support for a name in ``scale_parameters``.
    """
    prior = prior_from_setting(
        value,
        name=name,
        label=f"Prior 'model.priors.{name}'",
        default=default,
        prior_name=f"model.priors.{name}",
    )
    if name in scale_parameters and not prior.positive:
        raise ConfigError(
            f"Prior 'model.priors.{name}' is a scale parameter and needs a positive "
            f"distribution (HalfNormal, HalfStudentT, HalfCauchy, Exponential, Gamma); "
            f"got {prior.dist}."
        )
    return prior


def resolve_priors(overrides: Mapping[str, Any] | None) -> dict[str, Prior]:
    """Merge user prior overrides into the defaults.

    Parameters
    ----------
    overrides : mapping of str to Prior or dict
        Each value is a :class:`Prior` or a mapping ``{"dist": ..., **params}``.

    Returns
    -------
    dict of str to Prior

    Raises
    ------
    ConfigError
        Unknown parameter name, invalid distribution or parameters, or a
        distribution whose support does not fit the parameter.
    """
    priors = dict(DEFAULT_PRIORS)
    for name, value in (overrides or {}).items():
        check_prior_name(name, DEFAULT_PRIORS)
        prior = prior_override(name, value, DEFAULT_PRIORS[name], _SCALE_PARAMETERS)
        if (name in _ZERO_SUM_PARAMETERS) != (prior.dist == "ZeroSumNormal"):
            raise ConfigError(
                f"Prior 'model.priors.{name}': year effects use ZeroSumNormal and other "
                f"parameters cannot; got {prior.dist}. Fix: "
                f"{DEFAULT_PRIORS[name].example()}."
            )
        priors[name] = prior
    return priors


@dataclass
class HierarchicalIVSpec:
    """Variable roles and settings of the hierarchical Bayesian IV model.

    Parameters
    ----------
    dependent : str
        Outcome column (GVC position).
    endog : str
        Endogenous regressor column (a polycentricity index).
    instruments : list of str
        Excluded instruments (first stage only).
    controls, moderators : list of str
        Included exogenous regressors; both enter both equations (the
        ``covariate`` dim). Moderators are listed apart so reports can label them.
    unit, group, time : str
        Columns naming the pooled unit (province), its group (region), and time.
    year_effects : bool
        Zero-sum time effects in both equations.
    province_slopes : bool
        Unit-varying slopes of ``endog`` partially pooled within groups.
    lkj_eta : float
        Shape of the LKJ prior on the error correlation.
    parameterization : {"auto", "centred", "non_centred"}
        Form of the pooled province terms
        (:func:`polygvc.models.pooling.use_centred`): ``"auto"`` centres them
        when every province has many rows. Region terms stay non-centred.
    priors : dict
        Prior overrides by parameter name (see :data:`DEFAULT_PRIORS`).
    labels : dict
        Human-readable labels of columns, for reports.
    """

    dependent: str
    endog: str
    instruments: list[str]
    controls: list[str] = field(default_factory=list)
    moderators: list[str] = field(default_factory=list)
    unit: str = "province"
    group: str = "region"
    time: str = "year"
    year_effects: bool = True
    province_slopes: bool = True
    lkj_eta: float = 2.0
    parameterization: str = "auto"
    priors: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.instruments:
            raise ConfigError("model.instruments is empty: an IV model needs at least one.")
        roles = {
            "dependent": [self.dependent],
            "endog": [self.endog],
            "instruments": self.instruments,
            "controls": self.controls,
            "moderators": self.moderators,
        }
        seen: dict[str, str] = {}
        for role, columns in roles.items():
            for column in columns:
                if column in seen:
                    raise ConfigError(
                        f"Column {column!r} is given both as model.{seen[column]} and as "
                        f"model.{role}. Fix: give each column one role."
                    )
                seen[column] = role
        if self.lkj_eta <= 0:
            raise ConfigError(f"model.lkj_eta = {self.lkj_eta} must be > 0.")
        use_centred(self.parameterization, [])  # validates the setting
        self.resolved_priors = resolve_priors(self.priors)

    def centred_for(self, rows_per_unit) -> bool:
        """Return whether the pooled terms are centred for these rows per province."""
        centred = use_centred(self.parameterization, rows_per_unit)
        rows = np.asarray(rows_per_unit, dtype=float)
        logger.info(
            "Pooled province terms declared %s (model.parameterization = %r, fewest rows "
            "per province %s)",
            "centred" if centred else "non-centred",
            self.parameterization,
            f"{rows.min():.0f}" if rows.size else "n/a",
        )
        return centred

    @property
    def covariates(self) -> list[str]:
        """Included exogenous regressors: controls then moderators."""
        return [*self.controls, *self.moderators]

    @property
    def columns(self) -> list[str]:
        """Every numeric column the model reads."""
        return [self.dependent, self.endog, *self.instruments, *self.covariates]

    def to_json(self) -> str:
        """Serialise the spec (with resolved priors) as JSON for result attrs."""
        payload = {
            "model": "hierarchical_iv",
            "dependent": self.dependent,
            "endog": self.endog,
            "instruments": self.instruments,
            "controls": self.controls,
            "moderators": self.moderators,
            "unit": self.unit,
            "group": self.group,
            "time": self.time,
            "year_effects": self.year_effects,
            "province_slopes": self.province_slopes,
            "lkj_eta": self.lkj_eta,
            "parameterization": self.parameterization,
            "priors": {name: prior.to_dict() for name, prior in self.resolved_priors.items()},
            "labels": self.labels,
        }
        return json.dumps(payload, ensure_ascii=False)

    @classmethod
    def from_config(cls, model_section: Any, data_section: Any) -> HierarchicalIVSpec:
        """Build a spec from the ``[model]`` and ``[data]`` config sections."""
        return cls(**cls.config_fields(model_section, data_section))

    @staticmethod
    def config_fields(model_section: Any, data_section: Any) -> dict[str, Any]:
        """Return the constructor arguments that every IV spec reads from the config.

        Subclasses add their own fields to this dict in their ``from_config``.
        """
        priors = {
            name: {"dist": setting.dist, **setting.params()}
            for name, setting in model_section.priors.items()
        }
        return {
            "dependent": model_section.dependent,
            "endog": model_section.endog,
            "instruments": list(model_section.instruments),
            "controls": list(model_section.controls),
            "moderators": list(model_section.moderators),
            "unit": data_section.unit,
            "group": data_section.group,
            "time": data_section.time,
            "year_effects": model_section.year_effects,
            "province_slopes": model_section.province_slopes,
            "lkj_eta": model_section.lkj_eta,
            "parameterization": model_section.parameterization,
            "priors": priors,
        }
