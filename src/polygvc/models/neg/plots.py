"""Figures of the centre-periphery model (matplotlib, returned as Figure objects).

The functions build figures with :class:`matplotlib.figure.Figure` directly,
without pyplot, so they need no display and change no global state, and they
never modify the Dataset they are given.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from polygvc.errors import ModelError


def plot_tomahawk(ds: xr.Dataset) -> Figure:
    """Draw the tomahawk bifurcation diagram from :func:`~polygvc.models.neg.krugman.tomahawk`.

    Stable equilibria are filled dots, unstable ones open circles; the break
    point ``T_b`` and sustain point ``T_s`` are dashed vertical lines.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of ``tomahawk`` with ``lam`` and ``stable`` over
        ``(trade_cost, branch)``.

    Returns
    -------
    matplotlib.figure.Figure
        Share of manufacturing in region 1 against the trade cost ``T``.
    """
    for name in ("lam", "stable"):
        if name not in ds:
            raise ModelError(f"plot_tomahawk needs variable {name!r}; pass the output of tomahawk.")
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    t = np.broadcast_to(ds["trade_cost"].values[:, None], ds["lam"].shape)
    lam = ds["lam"].values
    stable = ds["stable"].values.astype(bool)
    ax.plot(t[stable], lam[stable], "o", ms=2.5, color="black", label="stable")
    ax.plot(
        t[~stable & ~np.isnan(lam)],
        lam[~stable & ~np.isnan(lam)],
        "o",
        ms=2.5,
        mfc="none",
        color="grey",
        label="unstable",
    )
    for key, label in (("break_point", "$T_b$"), ("sustain_point", "$T_s$")):
        if key in ds.attrs:
            ax.axvline(ds.attrs[key], ls="--", lw=0.8, color="tab:red")
            ax.annotate(label, (ds.attrs[key], 1.02), ha="center", fontsize=9)
    ax.set_xlabel("trade cost $T$ (iceberg, $\\geq 1$)")
    ax.set_ylabel("share of manufacturing in region 1, $\\lambda$")
    ax.set_ylim(-0.05, 1.08)
    ax.set_title(f"Core-periphery tomahawk, sigma={ds.attrs.get('sigma')}, mu={ds.attrs.get('mu')}")
    ax.legend(loc="center right", fontsize=8)
    return fig


def plot_response(
    ds: xr.Dataset,
    y: str = "gvc_position_basin_mean",
    x: str | None = None,
    hue: str | None = None,
) -> Figure:
    """Draw a sweep response: a line per ``hue`` value, or a heat map over two grid dims.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`~polygvc.models.neg.sweeps.simulate_sweep`.
    y : str
        Variable over grid dims only (for example ``gvc_position_basin_mean``
        or ``entropy_norm_basin_mean``).
    x : str or None
        Grid dim on the horizontal axis; the first grid dim when None.
    hue : str or None
        Second grid dim: drawn as a heat map (``x`` horizontal, ``hue``
        vertical, colour = ``y``). None draws one line (other grid dims must
        have length 1).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if y not in ds:
        raise ModelError(f"Sweep has no variable {y!r}; variables: {', '.join(ds.data_vars)}.")
    array = ds[y]
    dims = list(array.dims)
    x = x or dims[0]
    others = [d for d in dims if d not in (x, hue)]
    if any(array.sizes[d] > 1 for d in others) or x not in dims or (hue and hue not in dims):
        raise ModelError(
            f"Cannot draw {y!r} over x={x!r}, hue={hue!r}: its dims are {dims}; choose x and "
            "hue among them and select the other dims to length 1 first."
        )
    array = array.squeeze([d for d in others], drop=True)
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if hue is None:
        ax.plot(array[x].values, array.values, marker="o")
        ax.set_ylabel(y)
    else:
        values = array.transpose(hue, x).values
        mesh = ax.pcolormesh(
            array[x].values, array[hue].values, values, shading="nearest", cmap="viridis"
        )
        fig.colorbar(mesh, ax=ax, label=y)
        ax.set_ylabel(hue)
    ax.set_xlabel(x)
    return fig
