"""The publishable figure of a poll comparison: one dot plot of published minus official, in points.

One row per poll, for the incumbent and for "against all" (one panel each), with the 90% and 99% intervals
of what sampling error alone gives (dark bars) and the 99% interval of sampling plus the historical
non-sampling error (pale bar); reference rows below for earlier polls (e.g. Kazakhstan 2015 and 2019 from
the history table), drawn with their non-sampling error only. Returns a matplotlib Figure; sets no backend.
"""
from __future__ import annotations

import textwrap

from scipy import stats

from simkit.polls.error import ErrorBaseline

Z90, Z99 = stats.norm.ppf(0.95), stats.norm.ppf(0.995)


def _panel_rows(rows: list[dict], option: str, labels: dict[str, str]) -> list[dict]:
    return [{**row, "label": textwrap.fill(labels.get(row["pollster"], row["pollster"]), 42)}
            for row in rows if row["option"] == option]


def plot_gap_dots(rows: list[dict], *, incumbent: str, against_all: str | None, labels: dict[str, str],
                  title: str, baseline: ErrorBaseline | None = None, reference: list | None = None,
                  option_labels: dict[str, str] | None = None):
    """The dot plot. ``rows``: :attr:`simkit.polls.compare.Comparison.rows`; ``labels``: pollster name → readable
    name; ``reference``: history rows (:class:`simkit.polls.error.HistoryRow`) drawn as reference rows in the
    incumbent panel (their own large-candidate error bars). Returns the Figure."""
    from matplotlib.figure import Figure

    option_labels = option_labels or {}
    panels = [(incumbent, option_labels.get(incumbent, incumbent))]
    if against_all is not None:
        panels.append((against_all, option_labels.get(against_all, against_all)))
    reference = reference or []
    height = 2.2 + 0.5 * (max(len(_panel_rows(rows, option, labels)) for option, _ in panels) + len(reference))
    figure = Figure(figsize=(11, height), layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    polls = [textwrap.fill(labels.get(name, name), 42) for name in dict.fromkeys(row["pollster"] for row in rows)]
    names = polls + [f"{row.pollster}, {row.date[:4]} ({row.option})" for row in reference]
    for ax, (option, name) in zip(axes, panels):
        for row in _panel_rows(rows, option, labels):
            y = polls.index(row["label"])
            centre, sd = row["gap_mean"], row["gap_sd"]
            if row["nonsampling_sd"] is not None:
                total = (sd ** 2 + row["nonsampling_sd"] ** 2) ** 0.5
                ax.plot([centre - Z99 * total, centre + Z99 * total], [y, y], color="tab:blue", alpha=0.2, lw=9,
                        solid_capstyle="butt", label="99%, sampling + historical non-sampling error")
            ax.plot([centre - Z99 * sd, centre + Z99 * sd], [y, y], color="0.45", lw=2.5, label="99%, sampling alone")
            ax.plot([centre - Z90 * sd, centre + Z90 * sd], [y, y], color="black", lw=5, label="90%, sampling alone")
            ax.plot(row["gap"], y, "o", color="tab:red", ms=7, zorder=5, label="published − official, 2022")
        for k, history in enumerate(reference if option == incumbent else []):
            y = len(polls) + k
            if baseline is not None:
                spread = Z99 * baseline.sd(history.option_class)
                ax.plot([-spread, spread], [y, y], color="tab:blue", alpha=0.2, lw=9, solid_capstyle="butt")
            ax.plot(history.error, y, "o", color="tab:orange", ms=7, zorder=5, label="earlier Kazakh exit polls")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("published minus official, points")
        ax.grid(axis="x", color="0.9")
    axes[0].set_yticks(range(len(names)), names, fontsize=8)
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes[-1].legend(handles.values(), handles.keys(), fontsize=7, loc="best")
    figure.suptitle(title, fontsize=11)
    if baseline is not None:
        counts = baseline.counts()
        classes = {entry["option_class"]: entry for entry in baseline.summary()}
        figure.supxlabel(
            f"Pale bars: sampling error (simulated) plus the non-sampling error of {counts['baseline_polls']} exit polls "
            f"in {counts['baseline_countries']} countries judged clean (RMS {classes['large']['nonsampling_sd']:.2f} "
            f"points for large candidates, {classes['small']['nonsampling_sd']:.2f} for small ones and against all).",
            fontsize=8)
    return figure


def plot_poll_comparison(comparison, reference: list | None = None):
    """:func:`plot_gap_dots` of a :class:`simkit.polls.compare.Comparison`, with the names, title and baseline it
    carries; ``reference`` defaults to the baseline table's rows outside the baseline (Kazakhstan 2015 and
    2019) for the incumbent of those elections."""
    baseline = comparison.error_baseline
    if reference is None and baseline is not None:
        reference = [row for row in baseline.rows if not row.in_baseline and row.option_class == "large"]
    context = comparison.context
    return plot_gap_dots(comparison.rows, incumbent=context["incumbent"], against_all=context.get("against_all"),
                         labels=comparison.labels, title=context.get("title", ""), baseline=baseline,
                         reference=reference, option_labels=context.get("option_labels"))
