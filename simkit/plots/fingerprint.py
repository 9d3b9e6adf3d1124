"""Figures (matplotlib); functions return figures and never write files or set a backend themselves."""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure


def fingerprint_figure(counts: np.ndarray, edges: np.ndarray, *, title: str = "",
                       leader: str = "leader") -> Figure:
    """Election fingerprint: station counts on a turnout x leader-share grid (counts shape (turnout, share))."""
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    mesh = ax.pcolormesh(edges, edges, counts.T, norm=LogNorm(vmin=1, vmax=max(int(counts.max()), 2)),
                         cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="stations")
    ax.set_xlabel("turnout (ballots / registered)")
    ax.set_ylabel(f"{leader} share of ballots")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "election fingerprint")
    return fig
