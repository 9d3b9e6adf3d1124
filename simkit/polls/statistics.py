"""The statistics of the published figures against their simulated replicates: Monte Carlo tail p-values
(normal tail below :data:`MIN_TAIL_COUNT` replicates at least as extreme) and their standard errors, Hotelling's T²
of the published gaps with its F reference, and which figures carry sampling error (a census does not).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from simkit.schema import ALPHA


#: a Monte Carlo p-value needs at least this many replicates at least as extreme; else normal approx.
MIN_TAIL_COUNT = 5


def tail_p_value(simulated: np.ndarray, published: float, z: float) -> tuple[float, str]:
    """Two-sided p-value of ``published`` under the ``simulated`` (R,) values: Monte Carlo
    (2 × (tail count + 1) / (R + 1), never below :func:`smallest_monte_carlo_p`, 2 (:data:`MIN_TAIL_COUNT` + 1) /
    (R + 1)) when at least :data:`MIN_TAIL_COUNT` replicates are as extreme; else ``normal_tail``: ``2 Φ(−|z|)``, a
    normal extrapolation beyond what R replicates can confirm (the row's ``p_floor`` is 1 / (R + 1))."""
    tail = min(np.sum(simulated >= published), np.sum(simulated <= published))
    if tail >= MIN_TAIL_COUNT:
        return min(1.0, 2.0 * (tail + 1) / (len(simulated) + 1)), "monte_carlo"
    return float(2.0 * stats.norm.sf(abs(z))), "normal_tail"


def smallest_monte_carlo_p(p_floor: float) -> float:
    """The smallest two-sided Monte Carlo p-value :func:`tail_p_value` gives over the R replicates of a row's
    ``p_floor`` (1 / (R + 1)): 2 (:data:`MIN_TAIL_COUNT` + 1) / (R + 1), at the fewest replicates as extreme it
    counts. A p from the normal tail is where fewer are: the replicates place it only below this."""
    return 2.0 * (MIN_TAIL_COUNT + 1) * p_floor


def tail_p_standard_error(row: dict) -> float | None:
    """The Monte Carlo standard error of a row's simulated p-value (``p_method`` ``monte_carlo``,
    :func:`tail_p_value`), √(p (2 − p) / R) for a two-sided tail share (twice a binomial proportion p / 2) of the R
    replicates it was taken over: those in which the poll got an answer (:func:`answered`), R = 1 / ``p_floor`` − 1.
    None for a p from the normal tail or a census figure (no simulated p)."""
    if row["p_method"] != "monte_carlo":
        return None
    p, replicates = row["p_value"], round(1.0 / row["p_floor"]) - 1
    return math.sqrt(p * (2.0 - p) / replicates)


def hotelling_f(t2: float, n: int, dimension: int) -> dict:
    """Hotelling's T² with ``n`` observations in ``dimension`` dimensions, as its exact F:
    F = (n − p) / (p (n − 1)) T² on (p, n − p) degrees of freedom (multivariate normal data)."""
    df2 = n - dimension
    f = df2 / (dimension * (n - 1)) * t2
    return {"t2": t2, "f": f, "df1": dimension, "df2": df2, "p_value": float(stats.f.sf(f, dimension, df2))}


def prediction_t2(simulated: np.ndarray, observed: np.ndarray) -> dict:
    """T² of ONE new observation ``observed`` (D,) against the sample ``simulated`` (R, D) whose mean and
    covariance it is measured by: T² = R / (R + 1) d², d² the Mahalanobis distance² under the sample
    covariance, with its F reference (:func:`hotelling_f` with n = R) and ``d2``. Also the Monte Carlo p-value
    (``p_monte_carlo``, ≥ ``p_floor`` = 1 / (R + 1)): the share of replicates at least as far, each held out and
    measured against the other R − 1 as ``observed`` is against all R (their F p-values compared, which puts the two
    sample sizes on one scale), so that ``observed`` and the replicates are exchangeable when the stated assumptions
    hold; a replicate's distance from a mean and covariance that include it runs short (about R d² / (R − 1 + d²)
    in place of d²), which made that share too small. With R − 1 ≤ D (no F for a held-out replicate) the in-sample
    distances are compared, as an approximation. And :func:`held_out_size`'s measured size."""
    replicates, dimension = simulated.shape
    mean = simulated.mean(axis=0)
    precision = np.linalg.pinv(np.cov(simulated, rowvar=False).reshape(dimension, dimension))

    def distance2(x: np.ndarray) -> np.ndarray:
        centred = x - mean
        return np.einsum("...i,ij,...j->...", centred, precision, centred)

    d2 = float(distance2(observed))
    result = hotelling_f(replicates / (replicates + 1) * d2, replicates, dimension)
    in_sample = distance2(simulated)
    held_out = held_out_p_values(in_sample, replicates, dimension)
    tail = int(np.sum(in_sample >= d2) if held_out is None else np.sum(held_out <= result["p_value"]))
    floor = 1.0 / (replicates + 1)
    return {"d2": d2, **result, "p_method": "hotelling_f" if result["p_value"] >= floor else "hotelling_f_beyond_monte_carlo",
            "p_monte_carlo": (tail + 1) / (replicates + 1), "p_floor": floor,
            **held_out_size(held_out, replicates)}


def held_out_distances(in_sample: np.ndarray, replicates: int) -> np.ndarray:
    """(R,) each replicate's Mahalanobis distance² from the other R − 1 (their mean and sample covariance), from
    ``in_sample`` (R,), its distance² from all R (theirs), by the rank-one downdate of the covariance (Sherman-
    Morrison): with h its in-sample distance² over R − 1, (R / (R − 1))² (R − 2) h / (1 − R h / (R − 1))."""
    h = in_sample / (replicates - 1)
    return (replicates / (replicates - 1)) ** 2 * (replicates - 2) * h / (1.0 - replicates / (replicates - 1) * h)


def held_out_p_values(in_sample: np.ndarray, replicates: int, dimension: int) -> np.ndarray | None:
    """(R,) the F-reference p-value of each replicate held out and tested against the other R − 1 as the published
    figures are against all R (:func:`prediction_t2`), from ``in_sample`` (R,), their distance² from all R; None
    with fewer than ``dimension`` + 2 replicates (R − 1 held-out replicates give F no denominator degrees of
    freedom)."""
    others = replicates - 1
    if others <= dimension:
        return None
    t2 = others / (others + 1) * held_out_distances(in_sample, replicates)
    f = (others - dimension) / (dimension * (others - 1)) * t2
    return stats.f.sf(f, dimension, others - dimension)


def held_out_size(held_out: np.ndarray | None, replicates: int, alpha: float = ALPHA) -> dict:
    """The measured size of :func:`prediction_t2`'s F-reference test at ``alpha``: ``size_rejected``, how many of
    the ``size_replicates`` R replicates it rejects when each is held out (``held_out`` (R,), their p-values,
    :func:`held_out_p_values`). Each replicate is a vector of figures drawn under the assumptions the test states,
    so this is how often the test rejects when they hold: about ``alpha`` R where the F reference is right (it is
    exact for normal gaps). None (both) where ``held_out`` is None."""
    if held_out is None:
        return {"size_rejected": None, "size_replicates": None}
    return {"size_rejected": int(np.sum(held_out <= alpha)), "size_replicates": replicates}


#: a figure's simulated gap (poll − count, a fraction) moving by at most this between replicates has no sampling
#: error: a census read the same way in every replicate, up to floating-point rounding (a weighted estimate
#: rebuilds a station's votes as share × ballots, 1e-16 off), far below any sample's spread (above 1e-5 for a
#: poll of 10^9 respondents)
CENSUS_SPREAD = 1e-12


def has_sampling_error(gap: np.ndarray) -> bool:
    """Whether a figure's simulated gaps ``gap`` (R,) (fractions) differ between replicates beyond rounding
    (:data:`CENSUS_SPREAD`), judged on the replicates with a figure (NaN: no answer there, :func:`answered`)."""
    finite = gap[np.isfinite(gap)]
    return finite.size > 0 and float(np.ptp(finite)) > CENSUS_SPREAD


def answered(shares: np.ndarray) -> np.ndarray:
    """(R,) bool: the replicates in which a poll drawn as ``shares`` (R, V) got a valid answer (NaN shares
    where it got none). A poll without answers publishes nothing, so a published poll's simulated distribution
    is conditioned on the replicates with answers: the others are dropped from every figure of it."""
    return np.isfinite(shares).all(axis=-1)


def complete(simulated: np.ndarray) -> np.ndarray:
    """(R', D) the rows of ``simulated`` (R, D) without a NaN: the replicates in which every poll with a figure
    among the D got a valid answer (:func:`answered`); ``simulated`` itself when it has no NaN (a copy would
    change its memory layout, and with it the rounding of the covariance)."""
    finite = np.isfinite(simulated).all(axis=-1)
    return simulated if finite.all() else simulated[finite]


def sampled(keys: list[tuple[int, int]], gaps: list[np.ndarray]) -> np.ndarray:
    """(D,) bool: which ``keys`` (``(poll index, valid column)`` pairs) have a simulated gap ``gaps[p]`` (R, V)
    (poll − count) with sampling error (:func:`has_sampling_error`). A figure read from every voter or every
    station's protocol (a census) is the same in every replicate, so no covariance can weigh its gap."""
    return np.array([has_sampling_error(gaps[p][:, column]) for p, column in keys], dtype=bool)


def joint_test(names: list[str], keys: list[tuple[int, int]], gaps: list[np.ndarray],
               published_gaps: np.ndarray, kept: np.ndarray | None = None) -> dict | None:
    """Hotelling T² of all published gaps (fractions) jointly and of each poll's own; ``keys`` are
    ``(poll index, valid column)`` pairs, ``gaps[p]`` (R, V) the simulated (poll − count) of poll p (NaN in the
    replicates without an answer, which are left out: :func:`complete`). Figures without sampling error
    (``kept`` False, :func:`sampled` of them when not given) are left out; None when no figure is left."""
    kept = sampled(keys, gaps) if kept is None else kept
    if not kept.any():
        return None
    keys, published_gaps = [key for key, keep in zip(keys, kept) if keep], published_gaps[kept]
    simulated = np.stack([gaps[p][:, column] for p, column in keys], axis=-1)
    joint = prediction_t2(complete(simulated), published_gaps)
    per_poll = []
    for p, name in enumerate(names):
        mine = [k for k, (poll, _) in enumerate(keys) if poll == p]
        if mine:
            per_poll.append({"pollster": name, **prediction_t2(complete(simulated[:, mine]), published_gaps[mine])})
    return {**joint, "per_poll": per_poll}
