"""polygvc: Bayesian causal inference on polycentric agglomeration and GVC position."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "run"]


def run(config, out=None, **kwargs):
    """Run the whole pipeline from a config path, mapping or ``RunConfig``.

    See :func:`polygvc.pipeline.run` for the parameters.
    """
    from polygvc.pipeline import run as _run

    return _run(config, out=out, **kwargs)
