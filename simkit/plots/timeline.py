"""Figure of a published timeline against the honest band: one small panel per region, cumulative turnout
(percent of the register) through the day, the band where an honest region with the same final turnout
would lie (5-95% of the simulated null) and the reporting times marked. Returns a Figure; never sets a
matplotlib backend."""
from __future__ import annotations

import math

import numpy as np

from simkit.timeline.profile import HonestProfile
from simkit.timeline.statistics import RegionalTimeline, null_cumulative

BAND = (0.05, 0.95)


def plot_timeline(observed: RegionalTimeline, profile: HonestProfile, rng: np.random.Generator,
                  draws: int = 2000, labels: dict[str, str] | None = None):
    """Small multiples of the regions' curves (``observed``) against the honest band of ``profile``."""
    from matplotlib.figure import Figure

    labels = labels or {}
    hours = np.asarray(profile.edges) / 60.0
    band = np.quantile(null_cumulative(profile, rng, draws, 1)[:, 0], BAND, axis=0)  # (2, report + 1)
    n = len(observed.region_names)
    columns = min(5, n)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(2.4 * columns, 2.0 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for ax, name, turnout in zip(axes.flat, observed.region_names, observed.turnout):
        final = 100.0 * turnout[-1]
        ax.fill_between(hours, np.concatenate([[0], band[0]]) * final, np.concatenate([[0], band[1]]) * final,
                        color="0.85", label="honest 5-95%")
        ax.plot(hours, np.concatenate([[0], 100.0 * turnout]), "o-", color="C3", ms=3, label="published")
        for t in hours[1:-1]:
            ax.axvline(t, color="0.6", lw=0.5, ls=":")
        ax.set_title(labels.get(name, name), fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6, loc="upper left")
    figure.supxlabel("hour of the day", fontsize=8)
    figure.supylabel("turnout, % of the register", fontsize=8)
    return figure
