"""Configuration schema of policy scenarios (the ``[[scenarios]]`` tables of a run config).

A scenario names the provinces and years it covers and one or more changes.
Each change sets a new value for one model variable (the endogenous regressor
or a covariate) from its observed value:

============  =====================================================================
``how``       new value
============  =====================================================================
absolute      observed + ``value`` (``scale = "sd"``: + ``value`` x the model's sd)
relative      observed x (1 + ``value``)
set           ``value``
quantile      the ``value``-quantile of the variable across all provinces that year
peer          the observed value of province ``peer`` in the same year
============  =====================================================================

The computation lives in :mod:`polygvc.inference.scenarios`; this module only
validates the settings, so the config layer can import it without NumPy work.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

__all__ = ["ScenarioChange", "ScenarioSetting", "ScenariosSection"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ScenarioChange(_Strict):
    """One intervention on one variable, in the variable's original units."""

    variable: str = Field(
        ...,
        description=(
            "Panel column to change: the model's endogenous regressor or one of its controls "
            "or moderators."
        ),
    )
    how: Literal["absolute", "relative", "set", "quantile", "peer"] = Field(
        ...,
        description=(
            "'absolute' adds value; 'relative' multiplies by 1 + value; 'set' sets value; "
            "'quantile' sets the value-quantile (0 to 1) of the variable across all provinces "
            "in the scenario year; 'peer' sets the value of province 'peer' in that year."
        ),
    )
    value: float | None = Field(
        None, description="Amount, factor, level or quantile; not used when how = 'peer'."
    )
    peer: str | None = Field(
        None, description="Province (any accepted name or code) whose value is copied."
    )
    scale: Literal["original", "sd"] = Field(
        "original",
        description=(
            "Unit of value when how = 'absolute': 'original' units of the variable, or 'sd' "
            "for multiples of its standard deviation over the model rows."
        ),
    )

    @model_validator(mode="after")
    def _check_arguments(self) -> ScenarioChange:
        if self.how == "peer":
            if not self.peer:
                raise ValueError(
                    f"change of {self.variable!r} with how = 'peer' needs 'peer', the province "
                    "whose observed value is copied"
                )
            if self.value is not None:
                raise ValueError(
                    f"change of {self.variable!r} with how = 'peer' takes no 'value'; remove it"
                )
        else:
            if self.peer is not None:
                raise ValueError(f"'peer' is only used with how = 'peer', not how = {self.how!r}")
            if self.value is None or not math.isfinite(self.value):
                raise ValueError(
                    f"change of {self.variable!r} with how = {self.how!r} needs a finite 'value'"
                )
        if self.how == "quantile" and not 0.0 <= float(self.value) <= 1.0:  # type: ignore[arg-type]
            raise ValueError(
                f"quantile value {self.value} for {self.variable!r} must lie in [0, 1]"
            )
        if self.scale == "sd" and self.how != "absolute":
            raise ValueError(
                f"scale = 'sd' only applies to how = 'absolute', not how = {self.how!r}"
            )
        return self

    def describe(self) -> str:
        """Return a short plain-text description, e.g. ``"x +1 sd"``."""
        if self.how == "absolute":
            unit = " sd" if self.scale == "sd" else ""
            return f"{self.variable} {self.value:+g}{unit}"
        if self.how == "relative":
            return f"{self.variable} x (1 {self.value:+g})"
        if self.how == "set":
            return f"{self.variable} = {self.value:g}"
        if self.how == "quantile":
            return f"{self.variable} = national q{self.value:g}"
        return f"{self.variable} = value of {self.peer}"


class ScenarioSetting(_Strict):
    """One named policy scenario: where, when and what changes."""

    name: str = Field(
        ...,
        min_length=1,
        description="Short unique identifier; also seeds the scenario's random draws.",
    )
    label: str = Field("", description="English label shown in briefs (defaults to name).")
    label_zh: str = Field("", description="Chinese label shown in briefs (defaults to label).")
    provinces: Literal["all"] | list[str | int] = Field(
        "all",
        description=(
            "'all' (every province with estimates; with new_provinces = 'population' also every "
            "other panel province with the needed values) or a list of names or codes."
        ),
    )
    year: int | list[int] | None = Field(
        None,
        description="Year or years whose observed values are changed; default the last model year.",
    )
    changes: list[ScenarioChange] = Field(
        ..., min_length=1, description="Interventions applied together."
    )
    pathway: Literal["direct", "total"] = Field(
        "direct",
        description=(
            "'direct' holds the endogenous regressor at its observed value unless it is changed; "
            "'total' also moves it through the first-stage coefficients of changed covariates."
        ),
    )
    new_provinces: Literal["error", "population"] = Field(
        "error",
        description=(
            "Provinces without estimates: 'error' rejects them; 'population' draws their slope "
            "and intercept from the region's (else the nation's) population distribution."
        ),
    )
    rope: float | None = Field(
        None,
        ge=0,
        description=(
            "Region of practical equivalence in outcome units; gains above it count as "
            "practically relevant. Default: 0.1 sd of the outcome over the model rows."
        ),
    )
    weight_column: str | None = Field(
        None,
        description=(
            "Panel column weighting provinces in region and national averages (e.g. GDP); "
            "default equal weights."
        ),
    )

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("scenario name must not be blank")
        return value

    @field_validator("year")
    @classmethod
    def _unique_years(cls, value: int | list[int] | None) -> int | list[int] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("year list must not be empty")
            if len(set(value)) != len(value):
                raise ValueError(f"year list {value} repeats a year")
        return value

    @model_validator(mode="after")
    def _one_change_per_variable(self) -> ScenarioSetting:
        seen: set[str] = set()
        for change in self.changes:
            if change.variable in seen:
                raise ValueError(
                    f"scenario {self.name!r} changes {change.variable!r} twice; combine the "
                    "changes into one"
                )
            seen.add(change.variable)
        return self

    @property
    def display_label(self) -> str:
        """English label, falling back to the name."""
        return self.label or self.name

    @property
    def display_label_zh(self) -> str:
        """Chinese label, falling back to the English label."""
        return self.label_zh or self.display_label

    def describe_changes(self) -> str:
        """Return the changes as one plain-text line joined by ``"; "``."""
        return "; ".join(change.describe() for change in self.changes)


class ScenariosSection(RootModel[list[ScenarioSetting]]):
    """The list of scenarios of a run (TOML ``[[scenarios]]``); names must be unique."""

    root: list[ScenarioSetting] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ScenariosSection:
        names = [s.name for s in self.root]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(repeated)}")
        return self

    def __iter__(self):  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)
