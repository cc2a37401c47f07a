"""Exception and warning classes shared by every stage.

Every error a user can cause derives from :class:`PolygvcError`. The CLI prints
its message as one paragraph and exits with a non-zero status, without a
traceback unless ``--debug`` is given. Messages name the file, column, row or
key at fault, the offending value, and the fix.
"""

from __future__ import annotations


class PolygvcError(Exception):
    """Base class for errors caused by user input or the environment."""

    exit_code = 2


class ConfigError(PolygvcError):
    """Invalid or inconsistent run configuration (TOML file or Python object)."""


class DataError(PolygvcError):
    """Input data that is missing, unreadable or fails validation."""


class DataNotFoundError(DataError):
    """A registered dataset is not in the mirror and could not be downloaded."""


class ModelError(PolygvcError):
    """A model specification that cannot be built on the given data."""


class SamplingError(PolygvcError):
    """The sampler failed or was interrupted."""

    exit_code = 3


class ReportError(PolygvcError):
    """A report or brief could not be rendered (missing font, renderer)."""


class RunDirectoryError(PolygvcError):
    """The output directory is unusable, for example a finished run exists."""


class PolygvcWarning(UserWarning):
    """Base class for warnings that ask the user to act."""


class WeakInstrumentWarning(PolygvcWarning):
    """First-stage statistics indicate weak instruments."""


class ConvergenceWarning(PolygvcWarning):
    """Sampler diagnostics exceed the stated thresholds."""


class ExtrapolationWarning(PolygvcWarning):
    """A prediction or scenario leaves the range supported by the data."""


class DataQualityWarning(PolygvcWarning):
    """Input data were accepted but have a documented weakness."""
