"""Plot of a poll comparison: per pollster, the simulated distribution of each published option's
estimate, with the published figure and the official count marked. Matplotlib; returns a Figure."""
from __future__ import annotations

import numpy as np
import xarray as xr


def plot_poll_comparison(estimates: xr.Dataset):
    """One row per pollster, one panel per option it published.

    ``estimates``: :attr:`simkit.compare.Comparison.estimates`: ``estimate`` (pollster, replicate, option)
    and ``published`` (pollster, option) in percent, optionally ``official`` (option).
    """
    from matplotlib.figure import Figure

    pollsters = [str(name) for name in estimates["pollster"].values]
    published = estimates["published"]
    columns = max(int(np.isfinite(published.sel(pollster=name)).sum()) for name in pollsters)
    figure = Figure(figsize=(2.6 * max(columns, 1), 2.2 * len(pollsters)), layout="constrained")
    axes = figure.subplots(len(pollsters), max(columns, 1), squeeze=False)
    for row, name in enumerate(pollsters):
        shown = [str(option) for option in estimates["option"].values
                 if np.isfinite(published.sel(pollster=name, option=option))]
        for column, ax in enumerate(axes[row]):
            if column >= len(shown):
                ax.set_axis_off()
                continue
            option = shown[column]
            values = estimates["estimate"].sel(pollster=name, option=option).values
            ax.hist(values[np.isfinite(values)], bins=40, color="0.7")
            ax.axvline(float(published.sel(pollster=name, option=option)), color="tab:red", label="published")
            if "official" in estimates:
                ax.axvline(float(estimates["official"].sel(option=option)), color="black", linestyle="--",
                           label="official")
            ax.set_title(f"{name}: {option}", fontsize=9)
            ax.set_xlabel("percent of valid answers", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
    axes[0][0].legend(fontsize=7)
    return figure
