"""Klimek, Yegorov, Hanel & Thurner (2012, PNAS 109:16469) fraud model, fitted by histogram distance.

Model, per station: honest turnout ``a ~ N(tau, sigma_tau)`` and leader share ``v ~ N(nu, sigma_nu)`` (both
truncated to (0, 1)). With probability ``f_i`` *incremental* fraud takes a share ``x ~ |N(0, theta)|`` of the
non-voters as leader ballots and a share ``x**alpha`` of the others' votes for the leader; with probability
``f_e`` *extreme* fraud does the same with ``x ~ 1 - |N(0, 0.075)|``. Observed turnout ``a + x (1 - a)``,
leader share ``(a v + x (1 - a) + x**alpha a (1 - v)) / turnout``.

First stage: the paper's, from the data (:func:`first_stage`): ``tau`` and ``nu`` are the modes of the turnout
and leader-share histograms (1-point bins, 3-bin smoothing); ``sigma_tau``, ``sigma_nu`` the root-mean-square
deviation of the stations below the mode (the side fraud does not reach); ``theta`` as in the Klimek/EFT
reference code, the fourth root of the mean square deviation of the leader shares above ``nu``. It is cheap, so
the test uses it (on the data and on every null draw), but incremental stuffing shifts and widens it and the
honest part then absorbs the stuffing (0 of 20 planted f_i recovered, README). The reported estimates use
instead the honest part and ``theta`` of the joint likelihood fit (:func:`simkit.forensics.klimek_ml.estimate`).

Second stage: ``(f_i, f_e, alpha)`` minimise a histogram distance between the simulated and observed
fingerprints (``GRID`` x ``GRID`` 2-D histograms of turnout x leader share, station counts): Neyman's chi-square
``sum((sim - obs)**2 / (obs + 1))``. (The EFT code's ``((sim - obs) / (obs + 1))**2`` on this 2-D grid charges
every simulated station in an empty cell far more than it credits a matched one and missed planted extreme
fraud; the unweighted squared difference is dominated by the honest peak.) The grid: ``f_i`` step 0.01,
``f_e`` step 0.0025 up to 0.1, ``alpha`` 0.5..4 step 0.25, with common random numbers so all
grid points share one simulation. Intervals: 2.5 and 97.5 percentiles over ``REPLICATES`` refits on stations
resampled with replacement and fresh simulation seeds, each with the honest part and ``theta`` drawn from the
joint fit's sampling distribution. Test of ``f_i = f_e = 0``: the statistic is the distance gained by fraud,
``D(0, 0) - D(best)`` with the paper's first stage; textbook null: the same statistic on data simulated from
that first stage's honest model (parametric bootstrap, ``MAX_NULL_DRAWS`` draws).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, verdict
from simkit.forensics.nulls import as_seed_sequence

ID = "klimek"
GRID = 40
F_STEP = 0.0025
FI_STRIDE = 4  # f_i grid = F_STEP * FI_STRIDE = 0.01
FE_STEPS = 40  # f_e up to 0.1
ALPHAS = np.arange(0.5, 4.01, 0.25)
EXTREME_SD = 0.075
REPLICATES = 20
MAX_NULL_DRAWS = 39


@dataclass(frozen=True)
class FirstStage:
    """Honest-model parameters (shares in [0, 1])."""

    tau: float
    sigma_tau: float
    nu: float
    sigma_nu: float
    theta: float


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


def _mode(values: np.ndarray) -> float:
    counts, edges = np.histogram(values, bins=100, range=(0, 1))
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    i = int(np.argmax(smooth))
    return float((edges[i] + edges[i + 1]) / 2)


def first_stage(turnout: np.ndarray, share: np.ndarray) -> FirstStage:
    """Honest parameters from station turnout and leader share (shares, shape (station,))."""
    tau, nu = _mode(turnout), _mode(share)
    below_t, below_v, above_v = turnout[turnout < tau], share[share < nu], share[share > nu]
    return FirstStage(tau=tau, sigma_tau=float(np.sqrt(_mean_square(below_t - tau))), nu=nu,
                      sigma_nu=float(np.sqrt(_mean_square(below_v - nu))),
                      theta=float(_mean_square(above_v - nu) ** 0.25))


def _mean_square(deviations: np.ndarray) -> float:
    """Mean of squared deviations; NaN (undefined, not a warning) when no station lies on that side of the mode."""
    return float(np.mean(deviations ** 2)) if deviations.size else float("nan")


def _truncated_normal(mean: float, sd: float, size: int, gen: np.random.Generator) -> np.ndarray:
    low, high = (0 - mean) / sd, (1 - mean) / sd
    return stats.truncnorm.rvs(low, high, loc=mean, scale=sd, size=size, random_state=gen)


def _bins(turnout: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Flat fingerprint cell (0 .. GRID**2 - 1) of each station."""
    ti = np.clip((turnout * GRID).astype(np.int64), 0, GRID - 1)
    vi = np.clip((share * GRID).astype(np.int64), 0, GRID - 1)
    return ti * GRID + vi


def fingerprint(turnout: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Station counts per fingerprint cell, shape (GRID**2,)."""
    return np.bincount(_bins(turnout, share), minlength=GRID * GRID).astype(float)


def _cumulative(groups: np.ndarray, cells: np.ndarray, n_groups: int) -> np.ndarray:
    """Counts of stations in groups < g per cell, shape (n_groups + 1, GRID**2)."""
    table = np.bincount(groups * GRID * GRID + cells, minlength=n_groups * GRID * GRID)
    out = np.zeros((n_groups + 1, GRID * GRID), dtype=np.int64)
    np.cumsum(table.reshape(n_groups, GRID * GRID), axis=0, out=out[1:])
    return out


def fit(turnout: np.ndarray, share: np.ndarray, gen: np.random.Generator,
        stage: FirstStage | None = None) -> Fit:
    """Grid fit of (f_i, f_e, alpha) to observed station shares (shape (station,)); one simulation (CRN).

    With cumulative cell counts ``I_k``, ``E_k``, ``H_k`` of the stations in the first ``k`` fraud groups under
    incremental, extreme and no fraud, the simulated fingerprint at ``f_i = i h``, ``f_e = j h`` is
    ``I_i - E_i + H_n + (E - H)_{i+j}``, so every distance is a sum of dot products.
    """
    stage = stage or first_stage(turnout, share)
    n = turnout.size
    observed = fingerprint(turnout, share)
    a = _truncated_normal(stage.tau, stage.sigma_tau, n, gen)
    v = _truncated_normal(stage.nu, stage.sigma_nu, n, gen)
    x_inc = np.minimum(np.abs(gen.normal(0, stage.theta, n)), 1 - 1e-9)
    x_ext = np.clip(1 - np.abs(gen.normal(0, EXTREME_SD, n)), 0, 1 - 1e-9)
    n_groups = int(round(1 / F_STEP))
    groups = np.minimum((gen.random(n) / F_STEP).astype(np.int64), n_groups - 1)
    honest = _cumulative(groups, _bins(a, v), n_groups)
    fi_index = np.arange(0, n_groups + 1, FI_STRIDE)
    fe_index = np.arange(FE_STEPS + 1)
    end = fi_index[:, None] + fe_index[None, :]  # (fi, fe) -> group index of f_i + f_e
    feasible = end <= n_groups
    end = np.minimum(end, n_groups)
    scale = 1 / np.sqrt(observed + 1)  # Neyman chi-square weights
    distance_honest = float((((honest[-1] - observed) * scale) ** 2).sum())
    best = (np.inf, 0, 0, 0.0)
    for alpha in ALPHAS:
        cells = {}
        for name, x in (("inc", x_inc), ("ext", x_ext)):
            t_new = a + x * (1 - a)
            w_new = a * v + x * (1 - a) + x ** alpha * a * (1 - v)
            cells[name] = _bins(t_new, w_new / t_new)
        # incremental counts are needed on the f_i grid only: coarser groups
        incremental = _cumulative(groups // FI_STRIDE, cells["inc"], n_groups // FI_STRIDE)
        extreme = _cumulative(groups, cells["ext"], n_groups)
        head = (incremental - extreme[fi_index] + honest[-1] - observed) * scale  # (fi, cell)
        tail = (extreme - honest) * scale  # (group, cell)
        cross = np.einsum("ic,ijc->ij", head, tail[end])  # (fi, fe)
        distance = (head ** 2).sum(axis=1)[:, None] + 2 * cross + (tail ** 2).sum(axis=1)[end]
        distance = np.where(feasible, distance, np.inf)
        i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
        if distance[i, j] < best[0]:
            best = (float(distance[i, j]), fi_index[i], fe_index[j], float(alpha))
    return Fit(f_incremental=best[1] * F_STEP, f_extreme=best[2] * F_STEP, alpha=best[3], distance=best[0],
               distance_honest=distance_honest)


def statistic(e: Election) -> float:
    """Distance gained by the fraud parameters, D(0, 0) - D(best) (>= 0), one fit with a fixed seed."""
    return fit(e.turnout, e.leader_share, np.random.default_rng(0)).gain


def _honest_sample(stage: FirstStage, n: int, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return _truncated_normal(stage.tau, stage.sigma_tau, n, gen), _truncated_normal(stage.nu, stage.sigma_nu, n, gen)


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    from simkit.forensics import klimek_ml

    check_null(null)
    turnout, share = e.turnout, e.leader_share
    stage = first_stage(turnout, share)
    tested = fit(turnout, share, np.random.default_rng(0), stage)  # the statistic, as on every null draw
    joint = klimek_ml.estimate(turnout, share)[1]
    refined = FirstStage(*(joint.value(name) for name in ("tau", "sigma_tau", "nu", "sigma_nu", "theta")))
    point = fit(turnout, share, np.random.default_rng(0), refined)
    seeds = as_seed_sequence(rng).spawn(2)
    covariance = _stage_covariance(joint)
    replicate_fits = []
    for child in seeds[0].spawn(REPLICATES):
        gen = np.random.default_rng(child)
        idx = gen.integers(0, e.n, size=e.n)
        replicate_fits.append(fit(turnout[idx], share[idx], gen, _stage_draw(joint, covariance, refined, gen)))
    table = np.array([[f.f_incremental, f.f_extreme, f.alpha] for f in replicate_fits])
    low, high = np.percentile(table, [2.5, 97.5], axis=0)
    if null == "textbook":
        gains = []
        for child in seeds[1].spawn(min(draws, MAX_NULL_DRAWS)):
            gen = np.random.default_rng(child)
            t_h, v_h = _honest_sample(stage, e.n, gen)
            gains.append(fit(t_h, v_h, np.random.default_rng(0)).gain)
        p_value, reference = simulated_p_value(tested.gain, np.array(gains), "greater")
    else:
        p_value, reference = simulated_p_value(tested.gain, null_statistics, "greater")
    return TestResult(
        test=ID, statistic=tested.gain, reference=reference, p_value=p_value, null=null, verdict=verdict(p_value),
        extra={"f_incremental": point.f_incremental, "f_incremental_low": low[0], "f_incremental_high": high[0],
               "f_extreme": point.f_extreme, "f_extreme_low": low[1], "f_extreme_high": high[1],
               "alpha": point.alpha, "alpha_low": low[2], "alpha_high": high[2],
               "tau": refined.tau, "sigma_tau": refined.sigma_tau, "nu": refined.nu, "sigma_nu": refined.sigma_nu,
               "theta": refined.theta, "distance": point.distance, "distance_honest": point.distance_honest,
               "honest_part_drawn": covariance is not None,
               "assumptions": "histogram distance on the turnout x share fingerprint; estimates on the honest "
                              "part and theta of the joint likelihood fit, intervals from station bootstrap with "
                              "those drawn from their sampling distribution (held at the estimates when "
                              "honest_part_drawn is false: the joint fit's covariance is singular or not positive "
                              "semi-definite); test with the first stage of the modes and the left halves"})


STAGE_NAMES = ("tau", "sigma_tau", "nu", "sigma_nu", "theta")
#: eigenvalue below which a covariance is not positive semi-definite (numpy's own check in multivariate_normal)
PSD_TOLERANCE = 1e-8


def _stage_covariance(joint) -> np.ndarray | None:
    """The covariance (5, 5) of the honest part and theta in the joint fit (``joint``: a
    :class:`simkit.forensics.klimek_joint.JointFit`), or None when it is not finite or not positive
    semi-definite (a singular or indefinite information matrix): then no distribution can be drawn from."""
    index = [2, 3, 4, 5, 6]  # STAGE_NAMES in the order of klimek_joint.PARAMETERS
    covariance = joint.covariance[np.ix_(index, index)]
    if not np.all(np.isfinite(covariance)):
        return None
    covariance = (covariance + covariance.T) / 2
    return covariance if np.linalg.eigvalsh(covariance).min() >= -PSD_TOLERANCE else None


def _stage_draw(joint, covariance: np.ndarray | None, refined: FirstStage, gen: np.random.Generator) -> FirstStage:
    """The honest part and theta of one bootstrap refit: drawn from the joint fit's asymptotic normal
    distribution (``covariance`` from :func:`_stage_covariance`), so that the intervals carry their uncertainty;
    ``refined`` (the estimates) where there is no covariance or a draw leaves the parameter space."""
    if covariance is None:
        return refined
    draw = gen.multivariate_normal(np.array([joint.value(name) for name in STAGE_NAMES]), covariance, method="eigh")
    if not (0 < draw[0] < 1 and 0 < draw[2] < 1 and np.all(draw[[1, 3, 4]] > 0)):
        return refined
    return FirstStage(*(float(value) for value in draw))
