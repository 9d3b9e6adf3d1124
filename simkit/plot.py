"""Figures (matplotlib, Agg backend); functions return figures and never write files themselves."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def fingerprint_figure(counts: np.ndarray, edges: np.ndarray, *, title: str = "",
                       leader: str = "leader") -> Figure:
    """Election fingerprint: station counts on a turnout x leader-share grid (counts shape (turnout, share))."""
    fig, ax = plt.subplots(figsize=(6, 5))
    mesh = ax.pcolormesh(edges, edges, counts.T, norm=LogNorm(vmin=1, vmax=max(int(counts.max()), 2)),
                         cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="stations")
    ax.set_xlabel("turnout (ballots / registered)")
    ax.set_ylabel(f"{leader} share of ballots")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "election fingerprint")
    fig.tight_layout()
    return fig
