"""ABC with sequential Monte Carlo: population Monte Carlo (Beaumont et al. 2009) with an ESS-adaptive
tolerance (Del Moral, Doucet & Jasra 2012) on semi-automatic summaries (Fearnhead & Prangle 2012).

Summaries: statistics are standardised by sqrt(simulation² + observation²) noise; a linear regression of
each parameter (on its unconstrained scale) on them, fitted on the prior pilot, gives one summary per
parameter (``"regression"``). A linear projection ignores every direction of the statistics outside its
span, so a particle can match the projections while missing the count itself; ``"regression+national"``
(default) therefore keeps the national count's standardised statistics (turnout, shares, invalid) as
summaries too. ``"raw"`` uses every standardised statistic.

Kernel: Gaussian, with SD ``sqrt(observation_k² + (ε simulation_k)²)`` for summary k. Generation 0 is the
prior pilot. Each next tolerance ε is chosen so that reweighting the current particles keeps
``ess_fraction`` of their effective sample size; new particles are drawn from the reweighted population
moved by a Gaussian with its optimal local covariance (Filippi et al. 2013, on the unconstrained scale) and
weighted prior × kernel / proposal. The run ends at the generation whose ε reaches ``final_tolerance`` (or
after ``max_generations``, or before a generation whose ESS falls below ``min_ess``).

Reusing simulations (``recycle``, default on): every generation's simulations are valid draws of the model
at their parameters; at the final tolerance each generation is an importance sample of the ABC posterior
(prior × kernel / its own proposal), and :func:`recycle` pools them with weights scaled by each one's
effective sample size (Nguyen, Le Corff & Moulines 2014), instead of keeping only the last generation. The pooled
effective sample size is then the sum of the generations' own (:func:`pooled_ess`); with ``target_ess`` the run
goes on while it stays at least ``target_ess`` × particles at each new tolerance, and ends, whatever stopped it
(the target, ``max_generations``, ``min_ess``), at the lowest tolerance (not below ``final_tolerance``) that
keeps it (:func:`lowest_tolerance`: the last generation's simulations count too).

``adjustment = "linear"`` applies the Beaumont, Zhang & Balding (2002) regression adjustment to the final
particles: it treats the whole kernel as ABC slack, so where the evidence has real observation noise it is
overconfident.

Reading the tolerance: the ABC posterior is the exact posterior of a model whose summaries carry an extra
Gaussian error of ε × their simulation noise (Wilkinson 2013).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp

from simkit import streams
from simkit.config.inference import InferenceSettings
from .priors import Prior
from .statistics import NATIONAL_GROUPS, Statistics

#: the stages of a run: its simulations' engine seeds at :func:`simkit.streams.inference_simulation_key`
#: ``(stage, index)``, its own draws at :func:`simkit.streams.inference_draw_key` ``(stage, draw)``
NOISE_STAGE, PILOT_STAGE, PREDICTIVE_STAGE = 0, 1, 10_000
GENERATION_STAGE = 2  #: generation g ≥ 1 uses stage GENERATION_STAGE + g (g ≤ 1,000: below PREDICTIVE_STAGE)
#: the predictive stage's second draw, the observation noise added to its simulations (a stage's draw 0: the pilot's
#: prior values, a generation's proposals, the predictive stage's resampling of the particles)
OBSERVATION_NOISE_DRAW = 1
RIDGE = 1e-6  #: relative ridge of the summary regression (statistics are collinear: shares sum to 1)


def generator(seed: int, stage: int, draw: int = 0) -> np.random.Generator:
    """The random generator of draw ``draw`` of ``stage`` of a run seeded ``seed``
    (:func:`simkit.streams.inference_draw_key`: apart from every simulation's seed)."""
    return streams.generator(seed, *streams.inference_draw_key(stage, draw))


@dataclass(frozen=True)
class Summaries:
    """A linear map from statistics to summaries: ``summary = ((stats - observed) / scale) @ projection``
    (the observed data sit at 0), with each summary's simulation and observation noise SDs."""

    names: tuple[str, ...]
    scale: np.ndarray  # (n_stat,) sqrt(simulation² + observation²) noise of each statistic
    statistic_simulation_noise: np.ndarray  # (n_stat,) SD of each statistic across simulations at one value
    projection: np.ndarray  # (n_stat, n_summary)
    simulation_noise: np.ndarray  # (n_summary,)
    observation_noise: np.ndarray  # (n_summary,)

    def __call__(self, stats: np.ndarray, observed: np.ndarray) -> np.ndarray:
        return ((stats - observed) / self.scale) @ self.projection

    def kernel_sd(self, tolerance: float) -> np.ndarray:
        return np.sqrt(self.observation_noise ** 2 + (tolerance * self.simulation_noise) ** 2)


def build_summaries(kind: str, statistics: Statistics, noise_stats: np.ndarray, pilot_u: np.ndarray,
                    pilot_stats: np.ndarray, parameter_names: list[str]) -> Summaries:
    """Summaries from the noise simulations (R, n_stat) at one parameter value and the prior pilot
    (u (n, n_param), stats (n, n_stat)). Statistics that never vary and are observed exactly are dropped
    (scale 0: they carry no information)."""
    simulation_sd = noise_stats.std(axis=0, ddof=1)
    scale = np.sqrt(simulation_sd ** 2 + statistics.observation_noise ** 2)
    keep = scale > 0
    scale = np.where(keep, scale, 1.0)
    relative_observation = statistics.observation_noise / scale
    if kind == "raw":
        projection = np.diag(keep.astype(float))[:, keep]
        names = tuple(name for name, k in zip(statistics.names, keep) if k)
    else:
        ok = np.isfinite(pilot_stats).all(axis=1)
        z = ((pilot_stats[ok] - statistics.observed) / scale)[:, keep]
        design = np.column_stack([np.ones(len(z)), z])
        target = pilot_u[ok]
        gram = design.T @ design
        ridge = RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
        ridge[0, 0] = 0.0
        coefficients = np.linalg.solve(gram + ridge, design.T @ target)[1:]
        projection = np.zeros((len(scale), len(parameter_names)))
        projection[keep] = coefficients
        names = tuple(f"E[{name}]" for name in parameter_names)
        if kind == "regression+national":
            national = keep & np.isin(statistics.groups, NATIONAL_GROUPS)
            projection = np.hstack([projection, np.eye(len(scale))[:, national]])
            names += tuple(name for name, n in zip(statistics.names, national) if n)
    z_noise = (noise_stats - statistics.observed) / scale
    simulation_noise = (z_noise @ projection).std(axis=0, ddof=1)
    observation_noise = np.sqrt((relative_observation[:, None] ** 2 * projection ** 2).sum(axis=0))
    return Summaries(names, scale, simulation_sd, projection, simulation_noise, observation_noise)


def log_kernel(distances: np.ndarray, kernel_sd: np.ndarray) -> np.ndarray:
    """Gaussian log kernel (n,) of summaries' distances (n, n_summary) from the observed, up to a constant;
    -inf for failed simulations."""
    out = -0.5 * ((distances / kernel_sd) ** 2).sum(axis=1)
    return np.where(np.isfinite(out), out, -np.inf)


def effective_sample_size(log_weights: np.ndarray) -> float:
    """Kish's effective sample size of unnormalised log weights."""
    if not np.isfinite(log_weights).any():
        return 0.0
    w = np.exp(log_weights - logsumexp(log_weights))
    return float(1.0 / np.sum(w ** 2))


def next_tolerance(log_weights: np.ndarray, distances: np.ndarray, summaries: Summaries, current: float,
                   final: float, ess_fraction: float) -> float:
    """The tolerance below ``current`` at which reweighting the particles keeps ``ess_fraction`` of their
    ESS (bisection on the log scale), or ``final`` when even that keeps enough."""
    base = log_kernel(distances, summaries.kernel_sd(current)) if math.isfinite(current) else 0.0
    target = ess_fraction * effective_sample_size(log_weights)

    def ess_at(tolerance: float) -> float:
        return effective_sample_size(log_weights + log_kernel(distances, summaries.kernel_sd(tolerance)) - base)

    return _lowest_keeping(ess_at, final, current, target)


def _lowest_keeping(ess_at: Callable[[float], float], low: float, high: float, target: float) -> float:
    """The lowest tolerance in [``low``, ``high``] with ``ess_at(tolerance) >= target``: ``low`` when it does,
    else by bisection on the log scale (60 steps; an infinite ``high`` starts at 1e6); ``high`` when even it keeps
    fewer (the run's ESS then falls short of the target, and its warning says so when below 200)."""
    if ess_at(low) >= target:
        return low
    high = high if math.isfinite(high) else 1e6
    for _ in range(60):
        middle = math.sqrt(low * high)
        if ess_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def _weighted_covariance(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = weights @ u
    centred = u - mean
    covariance = (centred * weights[:, None]).T @ centred
    return np.atleast_2d(covariance) + 1e-10 * np.eye(u.shape[1])


def systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (n,) drawn by systematic resampling of normalised ``weights``."""
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), len(weights) - 1)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles) -> np.ndarray:
    """Quantiles of a weighted sample (weights normalised), by interpolating the weighted CDF at midpoints."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    return np.interp(quantiles, cdf, v)


def abc_smc(simulate_many: Callable[[np.ndarray, int], np.ndarray], priors: list[Prior], statistics: Statistics,
            settings: InferenceSettings, noise_at: np.ndarray,
            progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray, Summaries, float, list[dict]]:
    """Population Monte Carlo ABC with an ESS-adaptive tolerance.

    ``simulate_many(values (n, n_param), stage) -> statistics (n, n_stat)``; ``noise_at`` (n_param,) is the
    parameter value of the noise simulations. Returns the final particles' values (n, n_param) and
    normalised weights (n,), the summaries, the final tolerance and one record per generation.
    """
    say = progress or (lambda message: None)
    seed, n = settings.seed, settings.particles
    n_param = len(priors)
    noise_stats = simulate_many(np.tile(noise_at, (settings.noise_replicates, 1)), NOISE_STAGE)
    pilot_n = settings.pilot or n
    prior_rng = generator(seed, PILOT_STAGE)
    pilot_values = np.column_stack([p.block.distribution().rvs(size=pilot_n, random_state=prior_rng) for p in priors])
    pilot_stats = simulate_many(pilot_values, PILOT_STAGE)
    u = np.column_stack([p.to_unconstrained(pilot_values[:, k]) for k, p in enumerate(priors)])
    summaries = build_summaries(settings.summaries, statistics, noise_stats, u, pilot_stats, [p.name for p in priors])
    distances = summaries(pilot_stats, statistics.observed)
    log_weights = np.where(np.isfinite(pilot_stats).all(axis=1), 0.0, -np.inf)
    tolerance = math.inf
    target = None if settings.target_ess is None else settings.target_ess * n
    history = []
    pool = [(u, distances, log_weights)]  # every generation: u, distances, log(prior / proposal) (pilot: 0)
    for generation in range(1, settings.max_generations + 1):
        new_tolerance = next_tolerance(log_weights, distances, summaries, tolerance, settings.final_tolerance,
                                       settings.ess_fraction)
        base = log_kernel(distances, summaries.kernel_sd(tolerance)) if math.isfinite(tolerance) else 0.0
        parent_log_w = log_weights + log_kernel(distances, summaries.kernel_sd(new_tolerance)) - base
        parent_w = np.exp(parent_log_w - logsumexp(parent_log_w))
        covariances = local_covariances(u, parent_w)
        rng = generator(seed, GENERATION_STAGE + generation)
        parents = rng.choice(len(u), size=n, p=parent_w)
        chol = np.linalg.cholesky(covariances[parents])
        new_u = u[parents] + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, n_param)))
        values = np.column_stack([p.to_value(new_u[:, k]) for k, p in enumerate(priors)])
        stats = simulate_many(values, GENERATION_STAGE + generation)
        new_distances = summaries(stats, statistics.observed)
        log_prior = sum(p.log_density_unconstrained(new_u[:, k]) for k, p in enumerate(priors))
        log_proposal = _log_mixture_density(new_u, u, parent_w, covariances)
        new_log_weights = log_prior + log_kernel(new_distances, summaries.kernel_sd(new_tolerance)) - log_proposal
        pool.append((new_u, new_distances, log_prior - log_proposal))
        ess = effective_sample_size(new_log_weights)
        record = {"generation": generation, "tolerance": float(new_tolerance), "ess": ess, "simulations": n,
                  "kept": ess >= settings.min_ess or not history}
        if target is not None:
            record["pooled_ess"] = pooled_ess(pool, summaries.kernel_sd(new_tolerance))
        history.append(record)
        say(f"generation {generation}: tolerance {new_tolerance:.3g}, ESS {ess:.0f} of {n}"
            + ("" if target is None else f", pooled {record['pooled_ess']:.0f}")
            + ("" if record["kept"] else f": below min_ess {settings.min_ess}, the previous generation is final"))
        if not record["kept"]:
            break
        if target is not None and record["pooled_ess"] < target:
            break
        u, distances, tolerance, log_weights = new_u, new_distances, new_tolerance, new_log_weights
        if tolerance <= settings.final_tolerance:
            break
    if target is not None:  # every simulation counts: as low as the pooled generations allow
        tolerance = lowest_tolerance(pool, summaries, settings.final_tolerance, tolerance, target)
        say(f"final tolerance {tolerance:.3g}: the lowest at which the pooled ESS is at least {target:.0f}")
    weights = np.exp(log_weights - logsumexp(log_weights))
    if settings.recycle:
        u, distances, weights = recycle(pool, summaries.kernel_sd(tolerance))
        say(f"recycled: every generation's simulations at tolerance {tolerance:.3g}, ESS "
            f"{effective_sample_size(np.log(np.maximum(weights, 1e-300))):.0f} of {len(weights)}")
    if settings.adjustment == "linear":
        u = regression_adjust(u, distances, weights)
    values = np.column_stack([p.to_value(u[:, k]) for k, p in enumerate(priors)])
    return values, weights, summaries, tolerance, history


def recycle(pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]], kernel_sd: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every generation's particles weighted at the final kernel and pooled (Nguyen, Le Corff & Moulines 2014,
    recycling the past particles of an SMC sampler): ``pool`` holds per generation u (n_g, n_param), distances
    (n_g, n_summary) and log(prior / proposal) (n_g,) (the pilot's proposal is the prior: 0). Each generation is
    an importance sample of the final ABC posterior with weights prior × kernel / its own proposal; the
    normalised weights of generation g are scaled by λ_g ∝ its ESS, the combination of independent
    self-normalised estimators that adds their effective sizes. Returns u (Σ n_g, n_param), distances and
    normalised weights."""
    parts, scales = [], []
    for _, distances, log_ratio in pool:
        log_w = log_ratio + log_kernel(distances, kernel_sd)
        ess = effective_sample_size(log_w)
        parts.append(np.exp(log_w - logsumexp(log_w)) if ess > 0 else np.zeros(len(log_w)))
        scales.append(ess)
    scales = np.array(scales) / sum(scales)
    weights = np.concatenate([scale * part for scale, part in zip(scales, parts)])
    return (np.concatenate([u for u, _, _ in pool]), np.concatenate([d for _, d, _ in pool]), weights / weights.sum())


def pooled_ess(pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]], kernel_sd: np.ndarray) -> float:
    """The effective sample size of :func:`recycle`'s pooled population at the kernel SDs ``kernel_sd``: the sum
    of the generations' own."""
    return sum(effective_sample_size(log_ratio + log_kernel(distances, kernel_sd)) for _, distances, log_ratio in pool)


def lowest_tolerance(pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]], summaries: Summaries, low: float,
                     high: float, target: float) -> float:
    """The lowest tolerance in [``low``, ``high``] at which the pooled generations keep an effective sample size of
    at least ``target`` (:func:`pooled_ess`; bisection on the log scale, 60 steps; ``high`` infinite: 1e6). The
    tolerance is chosen from the distances only, as each generation's is (Del Moral, Doucet & Jasra 2012)."""
    return _lowest_keeping(lambda tolerance: pooled_ess(pool, summaries.kernel_sd(tolerance)), low, high, target)


def regression_adjust(u: np.ndarray, distances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Beaumont, Zhang & Balding (2002) local-linear adjustment on the unconstrained scale: each particle
    u (n, n_param) moved by -B d, B the weighted least-squares slopes of u on the summaries' distances d
    (n, n_summary) from the observed. It removes the part of the tolerance's slack that is linear in the
    summaries; with fewer than 5 effective particles per coefficient it is skipped (too noisy to fit)."""
    ok = weights > 0
    if effective_sample_size(np.log(np.where(ok, weights, 1e-300))) < 5 * (distances.shape[1] + 1):
        return u
    design = np.column_stack([np.ones(ok.sum()), distances[ok]])
    weighted = design * weights[ok, None]
    slopes = np.linalg.lstsq(weighted.T @ design, weighted.T @ u[ok], rcond=None)[0][1:]
    adjusted = u.copy()
    adjusted[ok] = u[ok] - distances[ok] @ slopes
    return adjusted


def local_covariances(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-particle proposal covariances (n, d, d): the optimal local covariance of Filippi, Barnes, Cornebise &
    Stumpf (2013), sum_k w_k (u_k - u_i)(u_k - u_i)^T = Cov_w + (mean_w - u_i)(mean_w - u_i)^T, with ``weights``
    those of the particles at the new tolerance (narrower than Beaumont et al.'s 2 Cov in several dimensions)."""
    covariance = _weighted_covariance(u, weights)
    offset = weights @ u - u
    return covariance[None] + offset[:, :, None] * offset[:, None, :]


def _log_mixture_density(points: np.ndarray, centres: np.ndarray, weights: np.ndarray, covariances: np.ndarray
                         ) -> np.ndarray:
    """log of Σ_j w_j N(points_i; centres_j, covariances_j), shape (n_points,); ``covariances`` (n_centres, d, d)."""
    d = covariances.shape[-1]
    precisions = np.linalg.inv(covariances)
    _, log_dets = np.linalg.slogdet(covariances)
    log_w = np.log(np.maximum(weights, 1e-300)) - 0.5 * (log_dets + d * math.log(2 * math.pi))
    out = np.empty(len(points))
    for start in range(0, len(points), 128):
        diff = points[start:start + 128, None, :] - centres[None, :, :]
        quad = np.einsum("pci,cij,pcj->pc", diff, precisions, diff)
        out[start:start + 128] = logsumexp(log_w[None, :] - 0.5 * quad, axis=1)
    return out
