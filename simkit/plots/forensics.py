"""Each forensic test's own figure: what its statistic looks at, beside what its null expects.

``figure(test_id, election, result, title)`` returns a matplotlib Figure (or None for a test without one);
nothing here writes files or sets a backend. Figures are drawn from the election's station arrays
(:class:`simkit.forensics.core.Election`) and the figures the test put in ``TestResult.extra``; where a null
needs a draw (the binomial redraws of the integer-percentage and spikes tests), one redraw from a fixed seed
is shown, so a figure is the same every time. ``title`` names the election (a config title or a returns
map's label), never a file path.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from simkit.forensics import dip, fingerprint, log_vote_rate, shpilkin, spikes
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.klimek import histogram as klimek
from simkit.forensics.digits import last as last_digit, second as second_digit, zero_five
from simkit.forensics.applicable import is_not_applicable
from simkit.forensics.core import Election, TestResult
from simkit.forensics.digits.shared import benford_second_digit, candidate_counts, second_digit as digit_of
from simkit.plots.fingerprint import fingerprint_figure

#: seed of the single null redraw a figure shows (fixed: the figure does not change from run to run)
FIGURE_SEED = 0
#: stations drawn from a fitted Klimek model for its figure (at most; the data's size when smaller)
KLIMEK_SAMPLE = 100_000


def _figure(title: str, subtitle: str, panels: int = 1, width: float = 6.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * panels if panels > 1 else width, 4), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    fig.suptitle(f"{title}: {subtitle}" if title else subtitle, fontsize=10)
    return fig, list(axes)


def _binomial_redraw(e: Election, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One redraw of ballots ~ Bin(registered, turnout) and leader ~ Bin(ballots, share) at ``mask``'s stations."""
    gen = np.random.default_rng(FIGURE_SEED)
    ballots = gen.binomial(e.registered[mask], e.turnout[mask])
    leader = gen.binomial(ballots, e.leader_share[mask])
    return ballots, leader


def integer_percent_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Turnout and leader share in 0.1-point bins, data against one binomial redraw (the paper's null)."""
    mask = integer_percent.used(e)
    ballots, leader = _binomial_redraw(e, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        null_turnout, null_share = 100 * ballots / e.registered[mask], 100 * leader / np.maximum(ballots, 1)
    fig, axes = _figure(title, "integer percentages against the binomial null", 2)
    bins = np.arange(0, 100.05, 0.1)
    for ax, data, null, label in ((axes[0], 100 * e.turnout[mask], null_turnout, "turnout, %"),
                                  (axes[1], 100 * e.leader_share[mask], null_share, f"{e.options[e.leader]}, %")):
        ax.hist(null, bins=bins, histtype="step", color="0.5", label="binomial null (one redraw)")
        ax.hist(data, bins=bins, histtype="step", color="tab:red", lw=0.8, label="data")
        ax.set(xlabel=f"{label} (0.1-point bins)", ylabel="stations", xlim=(20, 100))
    x = result.extra
    if "excess" in x:
        axes[0].set_title(f"integer stations: {x['excess'] + x['null_mean']:,.0f} observed, "
                          f"null {x['null_mean']:,.0f} ± {x['null_sd']:,.0f}", fontsize=9)
    axes[0].legend(fontsize=7)
    return fig


def fingerprint_test_figure(e: Election, result: TestResult, title: str) -> Figure:
    """The turnout x leader-share density (station counts, log colour)."""
    counts, edges = fingerprint.histogram(e)
    return fingerprint_figure(counts, edges, title=f"{title}: turnout–share density" if title else "",
                              leader=e.options[e.leader])


def klimek_sample(parameters: dict, n: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(turnout, leader share) of ``n`` stations from Klimek's model at ``parameters`` (the test's ``extra``:
    tau, sigma_tau, nu, sigma_nu, theta, f_incremental, f_extreme, alpha; the model of
    :mod:`simkit.forensics.klimek.histogram`)."""
    p = parameters

    def truncated(mean: float, sd: float) -> np.ndarray:
        sd = max(sd, 1e-6)
        return stats.truncnorm.rvs(-mean / sd, (1 - mean) / sd, loc=mean, scale=sd, size=n, random_state=gen)

    honest_turnout, honest_share = truncated(p["tau"], p["sigma_tau"]), truncated(p["nu"], p["sigma_nu"])
    kind = gen.random(n)
    incremental = kind < p["f_incremental"]
    extreme = (kind >= p["f_incremental"]) & (kind < p["f_incremental"] + p["f_extreme"])
    x = np.zeros(n)
    x[incremental] = np.abs(gen.normal(0, max(p["theta"], 1e-6), incremental.sum()))
    x[extreme] = 1 - np.abs(gen.normal(0, klimek.EXTREME_SD, extreme.sum()))
    x = np.clip(x, 0, 1)
    turnout = honest_turnout + x * (1 - honest_turnout)
    share = (honest_turnout * honest_share + x * (1 - honest_turnout)
             + x ** p["alpha"] * honest_turnout * (1 - honest_share)) / turnout
    return turnout, np.clip(share, 0, 1)


#: the estimates a Klimek figure draws its model from
KLIMEK_FIGURE_ESTIMATES = ("tau", "sigma_tau", "nu", "sigma_nu", "theta", "f_incremental", "f_extreme", "alpha")


def klimek_fitted(result: TestResult) -> bool:
    """Whether ``result`` carries the estimates a Klimek figure draws (:data:`KLIMEK_FIGURE_ESTIMATES`)."""
    return all(result.extra.get(name) is not None for name in KLIMEK_FIGURE_ESTIMATES)


def klimek_figure(e: Election, result: TestResult, title: str) -> Figure:
    """The data's fingerprint beside one draw of the fitted model (same number of stations, same bins)."""
    fig, axes = _figure(title, f"Klimek model fit ({result.test}) beside the data", 2, width=5)
    edges = np.linspace(0, 1, fingerprint.BINS + 1)
    data, _, _ = np.histogram2d(e.turnout, e.leader_share, bins=[edges, edges])
    panels = [(axes[0], data, "data")]
    if klimek_fitted(result):
        turnout, share = klimek_sample(result.extra, min(e.n, KLIMEK_SAMPLE), np.random.default_rng(FIGURE_SEED))
        model, _, _ = np.histogram2d(turnout, share, bins=[edges, edges])
        x = result.extra
        panels.append((axes[1], model, f"fit: f_i {x['f_incremental']:.3f}, f_e {x['f_extreme']:.4f}, "
                                       f"α {x['alpha']:.2f}"))
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "the fit's parameters are not in the result", ha="center", transform=axes[1].transAxes)
    from matplotlib.colors import LogNorm
    vmax = max(2, int(max(panel.max() for _, panel, _ in panels)))
    for ax, counts, label in panels:
        mesh = ax.pcolormesh(edges, edges, counts.T, norm=LogNorm(vmin=1, vmax=vmax), cmap="viridis")
        ax.set(xlabel="turnout", ylabel=f"{e.options[e.leader]} share", title=label)
        ax.title.set_fontsize(9)
    fig.colorbar(mesh, ax=axes, label="stations")
    return fig


def spikes_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Leader-share density at 0.1-point resolution, data against one binomial redraw, coarse fractions marked."""
    mask = e.ballots >= spikes.MIN_BALLOTS
    gen = np.random.default_rng(FIGURE_SEED)
    null_share = gen.binomial(e.ballots[mask], e.leader_share[mask]) / e.ballots[mask]
    fig, axes = _figure(title, "leader-share spikes at coarse fractions", width=8)
    bins = np.arange(0, 1.0005, 0.001)
    axes[0].hist(null_share, bins=bins, histtype="step", color="0.5", label="binomial redraw (null)")
    axes[0].hist(e.leader_share[mask], bins=bins, histtype="step", color="tab:red", lw=0.8, label="data")
    for fraction in spikes.FRACTIONS:
        axes[0].axvline(fraction, color="tab:blue", lw=0.3, alpha=0.5)
    axes[0].set(xlabel=f"{e.options[e.leader]} share of ballots (blue: coarse fractions)", ylabel="stations")
    axes[0].legend(fontsize=7)
    return fig


def shpilkin_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Votes per 1-point turnout bin: the leader's, the others', and the leader's expected at the clean ratio."""
    peak = result.extra.get("clean_turnout", shpilkin.clean_turnout(e))
    edges = np.arange(0, 1 + shpilkin.BIN_WIDTH, shpilkin.BIN_WIDTH)
    turnout = np.clip(e.turnout, 0, 1)
    others = e.ballots - e.leader_votes
    leader_bins, _ = np.histogram(turnout, edges, weights=e.leader_votes)
    other_bins, _ = np.histogram(turnout, edges, weights=others)
    clean = e.turnout <= peak
    ratio = e.leader_votes[clean].sum() / max(others[clean].sum(), 1)
    fig, axes = _figure(title, "votes by turnout (Shpilkin)", width=8)
    centres = 100 * (edges[:-1] + edges[1:]) / 2
    ax = axes[0]
    ax.plot(centres, leader_bins, color="tab:red", label=e.options[e.leader])
    ax.plot(centres, other_bins, color="0.4", label="all others")
    ax.plot(centres, ratio * other_bins, color="tab:red", ls=":", label=f"{e.options[e.leader]} at the clean ratio")
    ax.axvline(100 * peak, color="k", lw=0.6)
    ax.set(xlabel=f"turnout, % (line: clean turnout {100 * peak:.0f}%)", ylabel="votes per 1-point bin")
    ax.legend(fontsize=7)
    return fig


def digits_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Digit shares of the candidates' counts against the test's law (Benford's second digit, uniform last)."""
    if result.test == second_digit.ID:
        digits = digit_of(candidate_counts(e, second_digit.MIN_COUNT))
        law, name = benford_second_digit(), "second digit (Benford's law)"
    else:
        minimum = last_digit.MIN_COUNT if result.test == last_digit.ID else zero_five.MIN_COUNT
        digits = candidate_counts(e, minimum) % 10
        law, name = np.full(10, 0.1), "last digit (uniform)"
    shares = np.bincount(digits, minlength=10) / max(digits.size, 1)
    fig, axes = _figure(title, f"{name} of candidates' counts", width=6)
    axes[0].bar(np.arange(10), shares, color="tab:red", alpha=0.6, label=f"data ({digits.size:,} counts)")
    axes[0].plot(np.arange(10), law, "ko-", ms=3, label="law")
    axes[0].set(xlabel="digit", ylabel="share", xticks=range(10))
    axes[0].legend(fontsize=7)
    return fig


def log_vote_rate_figure(e: Election, result: TestResult, title: str) -> Figure:
    """The log vote rate's histogram against the normal of the same mean and SD (the textbook null)."""
    rate = log_vote_rate.log_vote_rate(e)
    fig, axes = _figure(title, "log vote rate against a normal", width=6)
    axes[0].hist(rate, bins=100, density=True, color="tab:red", alpha=0.5, label="data")
    grid = np.linspace(rate.min(), rate.max(), 200)
    axes[0].plot(grid, stats.norm.pdf(grid, rate.mean(), rate.std()), "k", label="normal")
    axes[0].set(xlabel=f"ln(W / (N − W)), W: {e.options[e.leader]} votes, N: register", ylabel="density")
    axes[0].legend(fontsize=7)
    return fig


def turnout_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Station turnout histogram (the dip test asks whether it has one mode)."""
    fig, axes = _figure(title, "station turnout (dip test of unimodality)", width=6)
    axes[0].hist(100 * np.clip(e.turnout, 0, 1), bins=np.arange(0, 100.5, 0.5), color="0.4")
    axes[0].set(xlabel="turnout, % (0.5-point bins)", ylabel="stations")
    return fig


def turnout_share_figure(e: Election, result: TestResult, title: str) -> Figure:
    """Leader votes per registered voter against turnout, with the least-squares line (correlation, Sobyanin)."""
    y = e.leader_votes / e.registered
    fig, axes = _figure(title, f"{e.options[e.leader]} votes per voter against turnout", width=6)
    ax = axes[0]
    ax.hexbin(np.clip(e.turnout, 0, 1), y, gridsize=60, bins="log", cmap="viridis", mincnt=1)
    slope, intercept = np.polyfit(e.turnout, y, 1)
    grid = np.linspace(0, 1, 50)
    ax.plot(grid, intercept + slope * grid, "r", lw=1, label=f"least squares, slope {slope:.2f}")
    ax.plot(grid, grid, "k:", lw=0.8, label="every voter to the leader (slope 1)")
    ax.set(xlabel="turnout", ylabel=f"{e.options[e.leader]} votes / registered", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7)
    return fig


#: test id -> figure function (election, result, title) -> Figure
FIGURES: dict[str, Callable[[Election, TestResult, str], Figure]] = {
    "second_digit": digits_figure, "last_digit": digits_figure, "zero_five": digits_figure,
    "log_vote_rate": log_vote_rate_figure, dip.ID: turnout_figure, "correlation": turnout_share_figure,
    "sobyanin": turnout_share_figure, fingerprint.ID: fingerprint_test_figure, klimek.ID: klimek_figure,
    "klimek_ml": klimek_figure, integer_percent.ID: integer_percent_figure, spikes.ID: spikes_figure,
    shpilkin.ID: shpilkin_figure,
}
#: test id -> whether a result carries the estimates its figure draws: drawn for an ``n/a`` result that does
#: (a test n/a for want of a null reports its estimates, :func:`simkit.forensics.run_each`)
DRAWN_FROM_ESTIMATES: dict[str, Callable[[TestResult], bool]] = {klimek.ID: klimek_fitted, "klimek_ml": klimek_fitted}


def election_title(ds) -> str:
    """The election's name for figure titles: a returns map's ``label``, else the title of the config stored in a
    simulated result, else "election" (never a file path)."""
    import tomllib

    if ds.attrs.get("label"):
        return str(ds.attrs["label"])
    try:
        return tomllib.loads(ds.attrs.get("simkit_config", "")).get("title") or "election"
    except tomllib.TOMLDecodeError:
        return "election"


def figure(test: str, e: Election, result: TestResult, title: str = "") -> Figure | None:
    """The figure of ``test`` on election ``e`` (None for a test without one, and for a result that could not be
    computed on ``e``: an ``n/a`` result has no statistic to show, unless the figure draws the estimates it carries:
    :data:`DRAWN_FROM_ESTIMATES`)."""
    draw = FIGURES.get(test)
    shown = not is_not_applicable(result) or (test in DRAWN_FROM_ESTIMATES and DRAWN_FROM_ESTIMATES[test](result))
    return draw(e, result, title) if draw is not None and shown else None
