"""Fixtures for the bad-input corpus: the CLI run in-process with sampling stubbed out."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from polygvc.cli import app

from .factory import SamplingReached


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261204)


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Return ``invoke(*args)`` running ``polygvc`` in-process; sampling raises SamplingReached."""

    def no_sampling(*args, **kwargs):
        raise SamplingReached("the pipeline reached sampling; the input was not rejected before")

    monkeypatch.setattr("polygvc.pipeline.fit", no_sampling)
    monkeypatch.chdir(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    runner = CliRunner()

    def invoke(*args: str | Path):
        return runner.invoke(app, [str(a) for a in args])

    yield invoke
    signal.signal(signal.SIGTERM, previous)
