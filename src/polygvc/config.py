"""Run configuration: one TOML file drives the whole pipeline.

The file is parsed as data (``tomllib``) and validated by pydantic models with
unknown keys forbidden. Every validation problem becomes a
:class:`~polygvc.errors.ConfigError` whose message names the file, the key path
(for example ``model.priors.beta_mu.sigma``), the value, and the valid choices.
Relative paths in the file are resolved against the folder of the config file.

Sections: ``[run]``, ``[data]``, ``[model]`` (with ``[model.priors]``),
``[inference]``, ``[diagnostics]``, ``[report]``. See
``examples/china_provinces.toml`` for the main job and ``docs/config.md`` for the
reference generated from these models.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from polygvc.errors import ConfigError
from polygvc.scenario_config import ScenariosSection


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunSection(_Section):
    """General settings of a run."""

    name: str = Field("polygvc_run", description="Short name of the run, used in report titles.")
    seed: int = Field(
        20261204,
        ge=0,
        description="Seed for sampling, posterior predictive draws and scenarios.",
    )
    out: Path | None = Field(
        None,
        description="Run folder; relative to the config file. The CLI option --out overrides it.",
    )


class DataSection(_Section):
    """Source of the analysis panel and its key columns."""

    source: Literal["china_provinces", "panel_file"] = Field(
        "china_provinces",
        description=(
            "'china_provinces' builds the real province-year panel from the registered public "
            "data; 'panel_file' reads a user panel (CSV or Parquet) given by 'panel'."
        ),
    )
    panel: Path | None = Field(
        None,
        description="Path to a user panel (CSV, Parquet or .xlsx) when source = 'panel_file'.",
    )
    sheet: str | None = Field(None, description="Excel sheet of the user panel; default the first.")
    encoding: str | None = Field(
        None, description="Text encoding of a CSV panel; default tries UTF-8, UTF-8-BOM, GBK."
    )
    header_rows: int | None = Field(
        None, ge=1, description="Header rows of an Excel panel with multi-row headers."
    )
    years: tuple[int, int] = Field(
        (2001, 2020), description="First and last year of the panel built from light data."
    )
    light_column: Literal["total_sol", "urban_sol"] = Field(
        "total_sol", description="Night-time light column used for city sizes."
    )
    unit: str = Field("province", description="Column naming the group unit (partial pooling).")
    group: str = Field("region", description="Column naming the higher-level group of units.")
    time: str = Field("year", description="Column naming the time period.")


class PriorSetting(_Section):
    """A prior given in the config: a distribution name and its parameters."""

    model_config = ConfigDict(extra="allow")

    dist: str = Field(..., description="PyMC distribution name, e.g. 'Normal', 'HalfNormal'.")

    def params(self) -> dict[str, Any]:
        """Return the distribution parameters (every key except ``dist``)."""
        return dict(self.model_extra or {})


class ThresholdConfig(_Section):
    """Threshold (regime) effect of the endogenous regressor, for kind = 'cf_threshold'."""

    variable: str | None = Field(
        None, description="Threshold variable q (any panel column); default: the endog column."
    )
    n_grid: int = Field(30, ge=2, description="Candidate thresholds (trimmed quantiles of q).")
    trim: float = Field(0.15, ge=0, lt=0.5, description="Share of q cut from each tail.")
    n_thresholds: Literal[1, 2] = Field(1, description="One or two thresholds.")
    intercept_shift: bool = Field(False, description="Let the intercept change across regimes.")
    province_varying: bool = Field(False, description="A threshold per province.")
    min_gap: int = Field(1, ge=1, description="Minimum grid steps between two thresholds.")


class SplineConfig(_Section):
    """Penalised-spline effect of the endogenous regressor, for kind = 'cf_spline'."""

    n_knots: int = Field(5, ge=0, description="Interior knots at quantiles of the endog column.")
    degree: int = Field(3, ge=1, description="B-spline degree.")
    province_deviations: bool = Field(
        False, description="Province deviations from the curve, pooled by region."
    )
    n_curve: int = Field(25, ge=2, description="Points at which the fitted curve is stored.")


class ModelSection(_Section):
    """Model choice and variable roles."""

    kind: Literal["hierarchical_iv", "cf_linear", "cf_threshold", "cf_spline"] = Field(
        "hierarchical_iv",
        description=(
            "'hierarchical_iv': joint bivariate-normal IV; 'cf_linear', 'cf_threshold', "
            "'cf_spline': control-function models with interactions, a threshold or a spline."
        ),
    )
    extra_endog: list[str] = Field(
        default_factory=list, description="Further endogenous regressors (control-function kinds)."
    )
    interactions: list[str] = Field(
        default_factory=list,
        description="Moderators interacting with endog (control-function kinds).",
    )
    threshold: ThresholdConfig | None = Field(
        None, description="Threshold settings for kind = 'cf_threshold' (defaults when omitted)."
    )
    spline: SplineConfig | None = Field(
        None, description="Spline settings; default settings for kind = 'cf_spline'."
    )
    dependent: str = Field("vae_gdp_pct", description="Outcome (GVC position) column.")
    endog: str = Field(
        "poly_rank_size_all", description="Endogenous regressor (polycentricity index) column."
    )
    instruments: list[str] = Field(
        default_factory=lambda: ["hist_poly_2000", "ruggedness", "coast_distance_km"],
        description="Excluded instruments of the first stage.",
    )
    controls: list[str] = Field(
        default_factory=lambda: ["log_population"],
        description="Included exogenous controls in both equations.",
    )
    moderators: list[str] = Field(
        default_factory=lambda: ["mean_distance_km", "hsr_city_share"],
        description="Moderators entering the outcome equation (and the first stage) as covariates.",
    )
    likelihood: Literal["per_observation", "sufficient"] = Field(
        "per_observation",
        description=(
            "'sufficient' writes the Gaussian likelihood on per-province Gram matrices, so each "
            "gradient costs the same at any N (kind = 'hierarchical_iv' only)."
        ),
    )
    year_effects: bool = Field(True, description="Zero-sum year effects in both equations.")
    province_slopes: bool = Field(
        True, description="Province-varying slopes of the endogenous regressor, pooled by region."
    )
    lkj_eta: float = Field(2.0, gt=0, description="LKJ shape of the error correlation prior.")
    parameterization: Literal["auto", "centred", "non_centred"] = Field(
        "auto",
        description=(
            "Form of the pooled province terms of the hierarchical IV models: 'non_centred' "
            "(offsets are the free variables; best when provinces have few rows), 'centred' "
            "(best when every province has many rows), or 'auto' (centred when every province "
            "has at least 50 rows). Region terms are always non-centred."
        ),
    )
    priors: dict[str, PriorSetting] = Field(
        default_factory=dict,
        description="Prior overrides by parameter name; unknown names are errors.",
    )

    @field_validator("instruments")
    @classmethod
    def _at_least_one_instrument(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one instrument is required for an IV model")
        return value

    @model_validator(mode="after")
    def _settings_match_kind(self) -> ModelSection:
        # A [model.spline] or [model.threshold] table under another kind would
        # otherwise be ignored without a word.
        for table, kind in (("threshold", "cf_threshold"), ("spline", "cf_spline")):
            if getattr(self, table) is not None and self.kind != kind:
                raise ValueError(
                    f"[model.{table}] applies to kind = '{kind}' only, but kind = "
                    f"{self.kind!r}, so its settings would be ignored. Fix: set kind = "
                    f"'{kind}' or remove [model.{table}]"
                )
        return self


class InferenceSection(_Section):
    """Sampler settings."""

    sampler: Literal["nutpie", "pymc"] = Field("nutpie", description="NUTS implementation.")
    backend: Literal["numba", "jax"] = Field(
        "numba",
        description=(
            "Compiler of the model's log density and gradient for nutpie: 'numba' (fastest per "
            "gradient on a CPU) or 'jax' (compiles faster and runs on a GPU where JAX finds one; "
            "needs the jax extra, pip install 'polygvc[jax]'). Only with sampler = 'nutpie'."
        ),
    )
    chains: int = Field(4, ge=1, le=64, description="Number of chains.")
    draws: int = Field(1000, ge=10, description="Draws per chain after tuning.")
    tune: int = Field(1000, ge=10, description="Tuning draws per chain.")
    target_accept: float = Field(
        0.95, gt=0.5, lt=1.0, description="Target acceptance rate of NUTS step-size adaptation."
    )
    cores: int | None = Field(None, ge=1, description="Chains run in parallel; default all cores.")
    posterior_predictive: bool = Field(True, description="Draw the posterior predictive.")
    log_likelihood: bool = Field(True, description="Store the pointwise log-likelihood for LOO.")

    @model_validator(mode="after")
    def _backend_needs_nutpie(self) -> InferenceSection:
        if self.backend != "numba" and self.sampler != "nutpie":
            raise ValueError(
                f"backend = {self.backend!r} applies to the nutpie sampler only, but sampler = "
                f"{self.sampler!r}. Fix: set sampler = 'nutpie' or remove backend"
            )
        return self


class DiagnosticsSection(_Section):
    """Diagnostics settings."""

    classical: bool = Field(True, description="Run 2SLS and LIML cross-checks (linearmodels).")
    cluster: str | None = Field(
        "province", description="Column to cluster classical standard errors on; none if empty."
    )


class ReportSection(_Section):
    """Report and policy brief settings."""

    title: str = Field(
        "Polycentricity and GVC position: hierarchical Bayesian IV",
        description="Title shown in report.html.",
    )
    html: bool = Field(True, description="Write report.html.")
    brief_lang: Literal["en", "zh", "both", "none"] = Field(
        "both", description="Languages of the policy brief; 'none' skips it."
    )
    brief_pdf: bool = Field(True, description="Also write the briefs as PDF (needs a CJK font).")


class RunConfig(_Section):
    """The whole run configuration."""

    run: RunSection = Field(default_factory=RunSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    diagnostics: DiagnosticsSection = Field(default_factory=DiagnosticsSection)
    report: ReportSection = Field(default_factory=ReportSection)
    scenarios: ScenariosSection = Field(
        default_factory=lambda: ScenariosSection([]),
        description="Policy scenarios (TOML [[scenarios]]); see docs/scenarios.md.",
    )

    source_path: Path | None = Field(None, exclude=True, description="Config file it came from.")

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain JSON-compatible data."""
        return self.model_dump(mode="json", exclude={"source_path"})


def _section_models() -> dict[str, type[BaseModel]]:
    return {
        name: field.annotation  # type: ignore[misc]
        for name, field in RunConfig.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """Return the valid keys at the parent of a failing location."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return sorted(name for name in model.model_fields if name != "source_path")


def _format_validation_error(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(part) for part in loc) or "(top level)"
        value = err.get("input")
        if err.get("type") == "extra_forbidden":
            valid = _valid_keys(loc)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown key '{key}'.{hint} Valid keys here: {', '.join(valid)}.")
        else:
            shown = repr(value) if not isinstance(value, dict) else "a table"
            lines.append(f"key '{key}' = {shown}: {err.get('msg')}.")
    return f"Invalid configuration in {where}: " + " ".join(lines)


def parse_config(data: dict[str, Any], source: Path | None = None) -> RunConfig:
    """Validate a configuration mapping and resolve relative paths.

    Parameters
    ----------
    data : dict
        Parsed TOML content (or an equivalent mapping built in Python).
    source : pathlib.Path, optional
        File the mapping came from; relative paths are resolved against its folder.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Unknown keys, wrong types or invalid values, with the key path named.
    """
    where = str(source) if source is not None else "the configuration mapping"
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where)) from None
    base = source.parent if source is not None else Path.cwd()
    if config.run.out is not None and not config.run.out.is_absolute():
        config.run.out = (base / config.run.out).resolve()
    if config.data.panel is not None and not config.data.panel.is_absolute():
        config.data.panel = (base / config.data.panel).resolve()
    if config.data.source == "panel_file" and config.data.panel is None:
        raise ConfigError(
            f"Invalid configuration in {where}: data.source = 'panel_file' needs data.panel, "
            'the path of a CSV or Parquet panel. Fix: add panel = "my_panel.parquet" under [data].'
        )
    config.source_path = source
    return config


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration.

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or fails validation.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"Config file {path} was not found. Fix: pass the path of a TOML file, for example "
            "examples/china_provinces.toml."
        )
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {exc}. Fix the syntax there."
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text ({exc}). Fix: save it as UTF-8."
        ) from None
    return parse_config(data, source=path)


def coerce_config(config: RunConfig | dict[str, Any] | str | Path) -> RunConfig:
    """Return a ``RunConfig`` from a path, a mapping or a ``RunConfig``."""
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)
