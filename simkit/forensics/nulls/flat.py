"""The nulls a forensic test can be read against, in one registry, and the flat honest model.

:data:`HONEST_MODELS` maps each honest model's name to its fit function:

- ``hierarchical``: district and region effects shrunk by empirical Bayes, a regional turnout–share slope,
  station size, residual pairs resampled within districts, fitted on a trimmed core
  (:mod:`simkit.forensics.nulls.hierarchical`);
- ``turnout_conditional``: the same fit, each station's ballots kept and its leader share drawn from core
  stations of its pool at the nearest turnouts (:mod:`simkit.forensics.nulls.conditional`);
- ``flat``: the earlier one-level model of this module (below), kept for comparison.

``--null simulated`` reads each test against its own model of the first two
(:data:`simkit.forensics.registry.SIMULATED_MODEL`), ``--null flat`` every test against the flat one, and
``textbook`` is each test's own analytic or resampling null (its module docstring). A fitted model has
``counts(election, seed) -> (ballots, votes)`` and ``options(election) -> (options, leader)``, the columns of
``votes``; :func:`simulate_honest` turns it into an election, from the seed
:func:`model_seed` gives the model.

The *flat* null is an honest election shaped like the one under study:

- station registers and regions as observed;
- latent turnout and leader support per station are logit-normal, ``logit t = c_t[region] + s_t z_1`` and
  ``logit v = c_v[region] + s_v z_2`` with ``corr(z_1, z_2) = rho``;
- the fit uses the *low-anomaly part*: stations whose logit turnout and logit leader share both lie within
  ``2.5`` robust standard deviations (1.4826 MAD) of the national median. Region centres are medians over those
  stations (the national median when a region has fewer than 10); ``s_t``, ``s_v`` are the residuals' robust
  scales with the binomial counting noise removed; ``rho`` is the rank correlation of the residuals
  (``2 sin(pi r_s / 6)``);
- counts are binomial: ``ballots ~ Bin(registered, t)``, ``leader ~ Bin(ballots, v)``; the other options share the
  rest multinomially at the station's observed proportions among non-leader votes.

Known limit: the within-region dependence of turnout and support is one Gaussian copula; where the real relation
bends (Poland 2025: urban/rural), the tests of that relation (``correlation``, ``sobyanin``) still reject.

Every draw uses its own generator from ``numpy.random.SeedSequence`` children, so draw ``i`` is the same whatever
the number of draws (compiled samplers: :mod:`simkit.forensics.nulls.compiled_draws`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from simkit.forensics.nulls import compiled_draws
from simkit.forensics.core import Election, with_ballots_only
from simkit.forensics.nulls.conditional import fit_conditional
from simkit.forensics.nulls.hierarchical import EveryOption, fit_hierarchical, logit_share

ROBUST_Z = 2.5
MIN_REGION_STATIONS = 10
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class HonestModel(EveryOption):
    """Fitted honest-election model; arrays have shape (station,) or (station, option)."""

    turnout_center: np.ndarray
    share_center: np.ndarray
    turnout_scale: float
    share_scale: float
    correlation: float
    other_proportions: np.ndarray
    low_anomaly_share: float

    def counts(self, e: Election, seed: np.random.SeedSequence):
        """One honest election's ``(ballots, votes)`` at the registers of ``e`` (compiled draws)."""
        return compiled_draws.honest_counts(e.registered, self.turnout_center, self.share_center,
                                            self.turnout_scale, self.share_scale, self.correlation,
                                            self.other_proportions, e.leader, seed)

    def describe(self) -> dict[str, float]:
        return {"turnout_logit_scale": self.turnout_scale, "share_logit_scale": self.share_scale,
                "correlation": self.correlation, "low_anomaly_share": self.low_anomaly_share,
                "turnout_median": float(special.expit(np.median(self.turnout_center))),
                "share_median": float(special.expit(np.median(self.share_center)))}


def _robust(x: np.ndarray) -> tuple[float, float]:
    median = float(np.median(x))
    return median, float(MAD_TO_SD * np.median(np.abs(x - median)))


def low_anomaly_mask(e: Election) -> np.ndarray:
    """Stations in the bulk of the turnout and leader-share distributions (bool, shape (station,))."""
    lt = logit_share(e.ballots, e.registered)
    lv = logit_share(e.leader_votes, e.ballots)
    mt, st = _robust(lt)
    mv, sv = _robust(lv)
    return (np.abs(lt - mt) <= ROBUST_Z * st) & (np.abs(lv - mv) <= ROBUST_Z * sv)


def _region_centers(values: np.ndarray, inverse: np.ndarray, bulk: np.ndarray, n_regions: int) -> np.ndarray:
    national = float(np.median(values[bulk]))
    centers = np.full(n_regions, national)
    order = np.argsort(inverse[bulk], kind="stable")
    grouped = np.split(values[bulk][order], np.cumsum(np.bincount(inverse[bulk], minlength=n_regions))[:-1])
    for r, group in enumerate(grouped):
        if group.size >= MIN_REGION_STATIONS:
            centers[r] = np.median(group)
    return centers[inverse]


def fit_honest(e: Election) -> HonestModel:
    """Fit the honest model to the low-anomaly part of an election."""
    bulk = low_anomaly_mask(e)
    _, inverse = np.unique(e.region, return_inverse=True)
    n_regions = int(inverse.max()) + 1
    lt = logit_share(e.ballots, e.registered)
    lv = logit_share(e.leader_votes, e.ballots)
    ct = _region_centers(lt, inverse, bulk, n_regions)
    cv = _region_centers(lv, inverse, bulk, n_regions)
    rt, rv = (lt - ct)[bulk], (lv - cv)[bulk]
    t, v = e.turnout[bulk], e.leader_share[bulk]
    # binomial noise on the logit scale: var ~ 1 / (n p (1 - p))
    noise_t = np.mean(1.0 / np.maximum(e.registered[bulk] * t * (1 - t), 1.0))
    noise_v = np.mean(1.0 / np.maximum(e.ballots[bulk] * v * (1 - v), 1.0))
    st = np.sqrt(max(_robust(rt)[1] ** 2 - noise_t, 1e-4))
    sv = np.sqrt(max(_robust(rv)[1] ** 2 - noise_v, 1e-4))
    rho = float(2 * np.sin(np.pi * stats.spearmanr(rt, rv).statistic / 6))
    others = np.delete(e.votes, e.leader, axis=1).astype(float)
    national = others.sum(axis=0) / max(others.sum(), 1.0)
    totals = others.sum(axis=1, keepdims=True)
    proportions = np.where(totals > 0, others / np.maximum(totals, 1.0), national)
    return HonestModel(turnout_center=ct, share_center=cv, turnout_scale=float(st), share_scale=float(sv),
                       correlation=rho, other_proportions=proportions, low_anomaly_share=float(bulk.mean()))


#: honest model name -> its fit function (module docstring)
HONEST_MODELS = {"hierarchical": fit_hierarchical, "turnout_conditional": fit_conditional, "flat": fit_honest}
#: the key that sets a model's random stream apart from the draw's own (None: the draw's seed itself)
STREAM_KEY = {"hierarchical": None, "flat": None, "turnout_conditional": 1}


def model_seed(seed: np.random.SeedSequence, model: str) -> np.random.SeedSequence:
    """The seed of ``model``'s election in the null draw seeded ``seed``: the draw's seed itself for the
    unconditional models (their streams as before the conditional model existed), its keyed child ``(1,)``
    (computed from the position, not spawned) for the turnout-conditional one, so the two elections of one draw
    are independent and each is the same whatever else is drawn."""
    key = STREAM_KEY[model]
    return seed if key is None else keyed_seed(seed, key)


def simulate_honest(e: Election, model, seed: np.random.SeedSequence) -> Election:
    """One honest election on the stations of ``e`` (same registers and regions; the options of the model's
    ``options``: ``e``'s in order, or the leader and the rest together), drawn by the model's compiled ``counts``
    from ``seed`` alone; stations that draw no ballots are left out, as in real returns, and counted
    (:func:`~simkit.forensics.core.with_ballots_only`)."""
    ballots, votes = model.counts(e, seed)
    return with_ballots_only(e.with_counts(ballots, votes, *model.options(e)))


def as_seed_sequence(rng: int | np.random.SeedSequence | np.random.Generator | None) -> np.random.SeedSequence:
    """A SeedSequence from a seed, a SeedSequence, or a Generator (whose bit generator's seed is used)."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.seed_seq.spawn(1)[0]
    return np.random.SeedSequence(rng)


def keyed_seed(rng: int | np.random.SeedSequence | np.random.Generator | None, *key: int
               ) -> np.random.SeedSequence:
    """The SeedSequence at the logical position ``key`` below :func:`as_seed_sequence` ``(rng)``: its entropy and
    pool size, its spawn key extended by ``key``. Computed from the position, not spawned, so for an int or a
    SeedSequence it is the same whatever that seed has spawned or will spawn; a Generator is a stream, not a
    position: :func:`as_seed_sequence` spawns from it, so each call gives the next one."""
    base = as_seed_sequence(rng)
    return np.random.SeedSequence(base.entropy, spawn_key=(*base.spawn_key, *key), pool_size=base.pool_size)
