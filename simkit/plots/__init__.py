"""Figures (matplotlib); functions return figures and never write files or set a backend themselves."""

from simkit.plots.fingerprint import fingerprint_figure
from simkit.plots.forensics import figure as forensic_figure
from simkit.plots.polls import plot_poll_comparison
from simkit.plots.timeline import plot_timeline

__all__ = ["fingerprint_figure", "forensic_figure", "plot_poll_comparison", "plot_timeline"]
