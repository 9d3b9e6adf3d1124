"""Klimek, Yegorov, Hanel & Thurner (2012, PNAS 109:16469) fraud model, fitted by histogram distance.

Model, per station: honest turnout ``a ~ N(tau_g, sigma_tau)`` and leader share ``v ~ N(nu_g, sigma_nu)`` (both
truncated to (0, 1)) around the centres of the station's honest group ``g``. With probability ``f_i``
*incremental* fraud takes a share ``x ~ |N(0, theta)|`` of the non-voters as leader ballots and a share
``x**alpha`` of the others' votes for the leader; with probability ``f_e`` *extreme* fraud does the same with
``x ~ 1 - |N(0, 0.075)|``. Observed turnout ``a + x (1 - a)``, leader share
``(a v + x (1 - a) + x**alpha a (1 - v)) / turnout``.

Honest groups (:func:`honest_groups`): the paper fits one national honest cloud, so a vote whose level differs
by region is a mixture of clouds that the fit can only explain as fraud (Uganda 2016: 77-94% of stations
"stuffed"; Poland 2025 round 2: f_i = 1). Here each district (where the election has them) or region with at
least ``MIN_GROUP_STATIONS`` stations has its own honest centres, the smaller ones are pooled, and the SDs are
common: the honest part is a mixture over regions, each station stuffed from its own region's honest point
(centring the residuals instead would move stuffed stations off the map that makes them stuffed). Stuffing
that is uniform over every station of a region is read as that region's honest level: a loss of power.

First stage: the paper's, from the data (:func:`first_stage`), per group: ``tau_g`` and ``nu_g`` are the modes
of the group's turnout and leader-share histograms (1-point bins, 3-bin smoothing, wider for small groups);
``sigma_tau``, ``sigma_nu`` the root-mean-square deviation of the stations below their group's mode (the side
fraud does not reach); ``theta`` as in the Klimek/EFT reference code, the fourth root of the mean square
deviation of the leader shares above ``nu_g``. It is cheap, so the test uses it (on the data and on every null
draw), but incremental stuffing shifts and widens it and the honest part then absorbs the stuffing (0 of 20
planted f_i recovered, docs/forensics.md). The reported estimates use instead the honest part and ``theta`` of the joint
likelihood fit (:func:`simkit.forensics.klimek.ml.estimate`).

Second stage: ``(f_i, f_e, alpha)`` minimise a histogram distance between the simulated and observed
fingerprints (``GRID`` x ``GRID`` 2-D histograms of turnout x leader share, station counts): Neyman's chi-square
``sum((sim - obs)**2 / (obs + 1))``. (The EFT code's ``((sim - obs) / (obs + 1))**2`` on this 2-D grid charges
every simulated station in an empty cell far more than it credits a matched one and missed planted extreme
fraud; the unweighted squared difference is dominated by the honest peak.) The grid: ``f_i`` step 0.01,
``f_e`` step 0.0025 up to 0.1, ``alpha`` 0.5..4 step 0.25, with common random numbers so all
grid points share one simulation. Intervals: 2.5 and 97.5 percentiles over ``REPLICATES`` refits on stations
resampled with replacement and fresh simulation seeds, each with the point's honest part (that of the joint
likelihood fit) and ``theta`` drawn from the joint fit's normal approximation. They carry the resampling, the
simulation's noise and theta's uncertainty, not the honest part's own uncertainty. (Drawn from the joint fit's
asymptotic distribution apart from the resample, as before, the honest part missed the data by its sampling error
and f_i took up the misfit, and on Russia 2011 the interval excluded the point; refitted on each resample, it can
leave f_i unidentified on honest returns, where theta goes to 0;
docs/forensics.md.) Where these intervals and the likelihood fit's do not overlap for ``f_i`` or
``f_e``, the result's ``fits_disagree`` names both estimates (the narrower histogram intervals make it call a
disagreement more readily than full intervals would); warnings raised during the fit are recorded in
its ``warnings``, not printed. Test of ``f_i = f_e = 0``: the statistic is the distance gained by fraud,
``D(0, 0) - D(best)`` with the paper's first stage; textbook null: the same statistic on data simulated from
that first stage's honest model (parametric bootstrap, ``MAX_NULL_DRAWS`` draws).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

import numba
import numpy as np
from scipy import stats

from simkit.forensics.core import DrawnNull, Election, TestResult, check_null, drawn_count, null_for, verdict
from simkit.forensics.klimek import joint as klimek_joint, ml as klimek_ml
from simkit.forensics.klimek.first_stage import EXTREME_SD, FirstStage, first_stage, honest_groups
from simkit.forensics.nulls.flat import as_seed_sequence

ID = "klimek"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous (a distance gained)
GRID = 40
F_STEP = 0.0025
FI_STRIDE = 4  # f_i grid = F_STEP * FI_STRIDE = 0.01
FE_STEPS = 40  # f_e up to 0.1
ALPHAS = np.arange(0.5, 4.01, 0.25)
REPLICATES = 20
MAX_NULL_DRAWS = 39


@dataclass(frozen=True)
class Fit:
    f_incremental: float
    f_extreme: float
    alpha: float
    distance: float
    distance_honest: float

    @property
    def gain(self) -> float:
        return self.distance_honest - self.distance


def _truncated_normal(mean: np.ndarray, sd: float, gen: np.random.Generator) -> np.ndarray:
    """One draw per station from Normal(mean, sd) truncated to (0, 1) (``mean`` shape (station,))."""
    low, high = (0 - mean) / sd, (1 - mean) / sd
    return stats.truncnorm.rvs(low, high, loc=mean, scale=sd, size=mean.size, random_state=gen)


def _bin(values: np.ndarray) -> np.ndarray:
    """Fingerprint row or column (0 .. GRID - 1) of each share."""
    return np.clip((values * GRID).astype(np.int64), 0, GRID - 1)


def _bins(turnout: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Flat fingerprint cell (0 .. GRID**2 - 1) of each station."""
    return _bin(turnout) * GRID + _bin(share)


def fingerprint(turnout: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Station counts per fingerprint cell, shape (GRID**2,)."""
    return np.bincount(_bins(turnout, share), minlength=GRID * GRID).astype(float)


@numba.njit(cache=True, nogil=True)
def _cumulative(groups: np.ndarray, cells: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Counts of stations in groups < g per cell, written into ``out`` (shape (n_groups + 1, GRID**2) int64) and
    returned (``groups``, ``cells``: int64, shape (station,))."""
    n_groups = out.shape[0] - 1
    out[:] = 0
    for station in range(groups.shape[0]):
        out[groups[station] + 1, cells[station]] += 1
    for group in range(1, n_groups + 1):
        for cell in range(GRID * GRID):
            out[group, cell] += out[group - 1, cell]
    return out


class _Rows:
    """Reused buffers of ``rows`` fingerprint rows (shape (rows, GRID**2)): station counts, their weighted
    differences and the squares of those, so that :func:`fit` allocates them once, not once per alpha."""

    def __init__(self, rows: int):
        self.counts = np.empty((rows, GRID * GRID), np.int64)
        self.spare = np.empty_like(self.counts)
        self.values = np.empty((rows, GRID * GRID))
        self.squares = np.empty_like(self.values)

    def weighted(self, scale: np.ndarray, plus: np.ndarray, minus: np.ndarray, *more: np.ndarray) -> np.ndarray:
        """``(plus - minus [+ more[0] - more[1]]) * scale`` (integer counts, then the float observed counts
        and weights), evaluated in that order into :attr:`values`."""
        np.subtract(plus, minus, out=self.spare)
        if more:
            added, observed = more
            np.add(self.spare, added, out=self.spare)
            np.subtract(self.spare, observed, out=self.values)
            return np.multiply(self.values, scale, out=self.values)
        return np.multiply(self.spare, scale, out=self.values)

    def squares_sum(self) -> np.ndarray:
        """The row sums of the squared :attr:`values`, shape (rows,)."""
        return np.square(self.values, out=self.squares).sum(axis=1)


def _stuffed_cells(x_alpha: np.ndarray, a_not_v: tuple[np.ndarray, np.ndarray], w_base: np.ndarray,
                   t_new: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Fingerprint cell of each stuffed station: ``row + _bin((w_base + x_alpha * a * (1 - v)) / t_new)``,
    computed in place in ``x_alpha`` (the station arrays of every alpha were fresh allocations; shape
    (station,))."""
    a, not_v = a_not_v
    x_alpha *= a
    x_alpha *= not_v
    x_alpha += w_base
    x_alpha /= t_new
    x_alpha *= GRID
    cells = x_alpha.astype(np.int64)
    np.clip(cells, 0, GRID - 1, out=cells)
    cells += row
    return cells


def _window_products(head: np.ndarray, tail: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``out[i, j] = head[i] . tail[starts[i] + j]`` for ``j < width``, shape (starts.size, width); 0 where
    ``starts[i] + j`` is past the last row of ``tail`` (infeasible fractions)."""
    out = np.zeros((starts.size, width))
    for i, start in enumerate(starts):
        rows = tail[start:start + width]
        out[i, :rows.shape[0]] = rows @ head[i]
    return out


def fit(turnout: np.ndarray, share: np.ndarray, group: np.ndarray, gen: np.random.Generator,
        stage: FirstStage | None = None) -> Fit:
    """Grid fit of (f_i, f_e, alpha) to observed station shares (shape (station,)) with each station's honest
    group (``group``, indices into the stage's centres); one simulation (CRN): every station's honest values
    are drawn around its own group's centres, so the simulated fingerprint is the mixture of the groups' clouds.

    With cumulative cell counts ``I_k``, ``E_k``, ``H_k`` of the stations in the first ``k`` fraud groups under
    incremental, extreme and no fraud, the simulated fingerprint at ``f_i = i h``, ``f_e = j h`` is
    ``I_i - E_i + H_n + (E - H)_{i+j}``, so every distance is a sum of dot products.
    """
    stage = stage or first_stage(turnout, share, group)
    n = turnout.size
    observed = fingerprint(turnout, share)
    a, v = _honest_sample(stage, group, gen)
    x_inc = np.minimum(np.abs(gen.normal(0, stage.theta, n)), 1 - 1e-9)
    x_ext = np.clip(1 - np.abs(gen.normal(0, EXTREME_SD, n)), 0, 1 - 1e-9)
    n_groups = int(round(1 / F_STEP))
    groups = np.minimum((gen.random(n) / F_STEP).astype(np.int64), n_groups - 1)
    honest = _cumulative(groups, _bins(a, v), np.empty((n_groups + 1, GRID * GRID), np.int64))
    fi_index = np.arange(0, n_groups + 1, FI_STRIDE)
    fe_index = np.arange(FE_STEPS + 1)
    end = fi_index[:, None] + fe_index[None, :]  # (fi, fe) -> group index of f_i + f_e
    feasible = end <= n_groups
    end = np.minimum(end, n_groups)
    scale = 1 / np.sqrt(observed + 1)  # Neyman chi-square weights
    distance_honest = float((((honest[-1] - observed) * scale) ** 2).sum())
    best = (np.inf, 0, 0, 0.0)
    a_not_v = (a, 1 - v)
    stuffed = {}  # the parts of the stuffed turnout and leader votes that do not depend on alpha
    for name, x in (("inc", x_inc), ("ext", x_ext)):
        t_new = a + x * (1 - a)
        stuffed[name] = (x, t_new, a * v + x * (1 - a), _bin(t_new) * GRID)
    # the (group, cell) and (fi, cell) arrays of every alpha reuse these buffers: fresh ones (5 MB each) were
    # page-faulted in anew on every alpha (the allocator returned them to the system)
    head_rows = _Rows(fi_index.size)
    tail_rows = _Rows(n_groups + 1)
    incremental_groups = groups // FI_STRIDE
    for alpha in ALPHAS:
        cells = {name: _stuffed_cells(x ** alpha, a_not_v, w_base, t_new, row)
                 for name, (x, t_new, w_base, row) in stuffed.items()}
        # incremental counts are needed on the f_i grid only: coarser groups
        incremental = _cumulative(incremental_groups, cells["inc"], head_rows.counts)
        extreme = _cumulative(groups, cells["ext"], tail_rows.counts)
        head = head_rows.weighted(scale, incremental, np.take(extreme, fi_index, axis=0, out=head_rows.spare),
                                  honest[-1], observed)  # (fi, cell)
        tail = tail_rows.weighted(scale, extreme, honest)  # (group, cell)
        cross = _window_products(head, tail, fi_index, fe_index.size)  # (fi, fe): head[i] . tail[end[i, j]]
        distance = head_rows.squares_sum()[:, None] + 2 * cross + tail_rows.squares_sum()[end]
        distance = np.where(feasible, distance, np.inf)
        i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
        if distance[i, j] < best[0]:
            best = (float(distance[i, j]), fi_index[i], fe_index[j], float(alpha))
    return Fit(f_incremental=best[1] * F_STEP, f_extreme=best[2] * F_STEP, alpha=best[3], distance=best[0],
               distance_honest=distance_honest)


def statistic(e: Election) -> float:
    """Distance gained by the fraud parameters, D(0, 0) - D(best) (>= 0), one fit with a fixed seed."""
    return fit(e.turnout, e.leader_share, honest_groups(e), np.random.default_rng(0)).gain


def _honest_sample(stage: FirstStage, group: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Honest (turnout, share) of every station around its group's centres, each shape (station,)."""
    return (_truncated_normal(stage.tau[group], stage.sigma_tau, gen),
            _truncated_normal(stage.nu[group], stage.sigma_nu, gen))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None, estimates: bool = True) -> TestResult:
    """The test under ``null``; ``estimates`` False: without the estimates (:func:`estimates_of`: the joint
    likelihood fit and the station bootstrap, which the p-value does not read), for sizes and powers."""
    check_null(null)
    if not estimates:
        return _run(e, null, draws, rng, null_statistics, estimates=False)
    result, notes = _noting_warnings(e, lambda: _run(e, null, draws, rng, null_statistics, estimates=True))
    if notes:  # recorded in the result, not printed
        result.extra["warnings"] = result.extra.get("warnings", []) + notes
    return result


def estimates_of(e: Election, rng=None) -> dict:
    """The estimates :func:`run` reports beside its p-value under every null (:func:`_estimates`, drawn from the
    seed ``run`` gives them) with the warnings raised while fitting; an ``n/a`` result for want of a null reports
    them too (:mod:`simkit.forensics.core`)."""
    figures, notes = _noting_warnings(e, lambda: _estimates(e, _seeds(rng)[0]))
    return {**figures, "warnings": notes} if notes else figures


def _noting_warnings(e: Election, compute: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``compute()`` and the warnings raised meanwhile (``"Category: message"``, sorted), with those of the shared
    likelihood fit, which may have run in the other Klimek test's thread (:func:`klimek_ml.election_estimate`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = compute()
    return value, sorted({f"{w.category.__name__}: {w.message}" for w in caught}
                         | set(klimek_ml.election_estimate(e)[2]))


def _seeds(rng) -> list[np.random.SeedSequence]:
    """The seeds of :func:`run` below ``rng``: its estimates' bootstrap, its textbook null's draws."""
    return as_seed_sequence(rng).spawn(2)


def _run(e: Election, null: str, draws: int, rng, null_statistics, estimates: bool) -> TestResult:
    """The test, with its :func:`_estimates` when ``estimates``."""
    turnout, share, group = e.turnout, e.leader_share, honest_groups(e)
    stage = first_stage(turnout, share, group)
    tested = fit(turnout, share, group, np.random.default_rng(0), stage)  # the statistic, as on every null draw
    seeds = _seeds(rng)
    # before the p-value, which may wait for the simulated null's draws: the estimates' work overlaps them
    extra = _estimates(e, seeds[0]) if estimates else {}

    def textbook() -> DrawnNull:  # the fit's gain on honest samples of the first stage
        gains = []
        for child in seeds[1].spawn(min(draws, MAX_NULL_DRAWS)):
            gen = np.random.default_rng(child)
            t_h, v_h = _honest_sample(stage, group, gen)
            gains.append(fit(t_h, v_h, group, np.random.default_rng(0)).gain)
        return DrawnNull("textbook", np.array(gains))

    drawn = null_for(null, textbook, null_statistics)
    p_value, reference = drawn.p_value(tested.gain, ALTERNATIVE)
    return TestResult(test=ID, statistic=tested.gain, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={**extra, **drawn_count(drawn)})


def _estimates(e: Election, seed: np.random.SeedSequence) -> dict:
    """The estimates :func:`run` reports beside its p-value: f_i, f_e and alpha of the histogram fit on the joint
    likelihood fit's honest part (``klimek_ml.election_estimate``) with 95% intervals from :data:`REPLICATES`
    station bootstrap fits drawn from ``seed``, the joint fit's centres and theta, and the assumptions."""
    turnout, share, group = e.turnout, e.leader_share, honest_groups(e)
    likelihood, joint, _ = klimek_ml.election_estimate(e)
    refined = joint.stage()
    point = fit(turnout, share, group, np.random.default_rng(0), refined)
    replicate_fits = []
    for child in seed.spawn(REPLICATES):
        gen = np.random.default_rng(child)
        idx = gen.integers(0, e.n, size=e.n)
        replicate_fits.append(fit(turnout[idx], share[idx], group[idx], gen, _with_drawn_theta(refined, joint, gen)))
    table = np.array([[f.f_incremental, f.f_extreme, f.alpha] for f in replicate_fits])
    low, high = np.percentile(table, [2.5, 97.5], axis=0)
    fractions = extra_of(point, low, high)
    return {**fractions, "alpha": point.alpha, "alpha_low": low[2], "alpha_high": high[2],
            "tau": joint.value("tau"), "sigma_tau": refined.sigma_tau, "nu": joint.value("nu"),
            "sigma_nu": refined.sigma_nu, "theta": refined.theta, "honest_groups": int(refined.tau.size),
            "distance": point.distance, "distance_honest": point.distance_honest,
            "fits_disagree": fits_disagree(fractions, likelihood),
            "assumptions": "histogram distance on the turnout x share fingerprint, honest part centred per "
                           "region (or district); estimates on the honest part and theta of the joint "
                           "likelihood fit, intervals from station bootstrap with those held; test with the first "
                           "stage of the modes and the left halves"}


def _with_drawn_theta(stage: FirstStage, joint: klimek_joint.JointFit, gen: np.random.Generator) -> FirstStage:
    """``stage`` (the joint fit's honest part) with theta drawn from the joint fit's normal approximation (its
    estimate where that is not finite or the draw not positive). The honest part itself is held: drawn apart
    from a bootstrap resample (every group's centres with their own noise), it missed the resample and f_i took
    up the misfit (module docstring)."""
    position = klimek_joint.GLOBALS.index("theta")
    variance = joint.covariance[position, position]
    if not np.isfinite(variance) or variance <= 0:
        return stage
    theta = stage.theta + math.sqrt(variance) * gen.standard_normal()
    return replace(stage, theta=theta) if theta > 0 else stage


def extra_of(point: Fit, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """The histogram fit's fractions with their bootstrap intervals, named as in the results."""
    return {"f_incremental": point.f_incremental, "f_incremental_low": low[0], "f_incremental_high": high[0],
            "f_extreme": point.f_extreme, "f_extreme_low": low[1], "f_extreme_high": high[1]}


def fits_disagree(distance: dict[str, float], likelihood: dict[str, float]) -> dict[str, dict[str, list[float]]]:
    """The fractions on which the histogram fit and the likelihood fit disagree: their 95% intervals do not
    overlap. Name -> {"distance": [estimate, low, high], "likelihood": [...]}; empty when they agree."""
    out = {}
    for name in ("f_incremental", "f_extreme"):
        pair = {fit_name: [float(x[name]), float(x[f"{name}_low"]), float(x[f"{name}_high"])]
                for fit_name, x in (("distance", distance), ("likelihood", likelihood))}
        if pair["distance"][1] > pair["likelihood"][2] or pair["likelihood"][1] > pair["distance"][2]:
            out[name] = pair
    return out
