"""Station-level ballot probabilities (station, option), each row summing to 1.

Three station-level models around national shares p (the expected probabilities):
``dirichlet`` (concentration κ), ``logistic_normal`` (SD σ of each option's logit) and
``truncated_normal`` (leader share ~ N(μ, σ²) truncated to [0, 1]; the rest split in national
proportions). Regional variation shifts the leader's logit by δ_r ~ N(0, regional_sd²) per region and
replicate; the center is solved so that the mean over δ is still p. A Gaussian copula ties the
leader's latent to the station's turnout latent with correlation ρ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from .latent import logit_location_for_mean, truncated_location_for_mean, truncated_normal_quantile

#: rows of the fixed sample used to calibrate the logistic-normal centers (deterministic, seed 0)
CALIBRATION_ROWS = 20_000
CALIBRATION_ITERATIONS = 60


@dataclass(frozen=True)
class PreferencePlan:
    """Everything derived once per config. ``shares`` (option,), ``leader`` index, ``center`` the leader
    logit (dirichlet, truncated_normal) or the option logits (logistic_normal)."""

    model: str
    shares: np.ndarray
    leader: int
    dispersion: float
    regional_sd: float
    rho: float
    center: np.ndarray

    @classmethod
    def build(cls, model: str, shares: np.ndarray, leader: int, dispersion: float,
              regional_sd: float, rho: float) -> "PreferencePlan":
        shares = np.asarray(shares, dtype=float)
        if model == "logistic_normal":
            center = _logistic_normal_center(shares, leader, dispersion, regional_sd)
        elif regional_sd > 0:
            center = logit_location_for_mean(np.array(shares[leader]), regional_sd)
        else:
            center = special.logit(np.array(shares[leader]))
        return cls(model, shares, leader, dispersion, regional_sd, rho, np.asarray(center, dtype=float))

    def regional_leader_share(self, region_shift: np.ndarray) -> np.ndarray:
        """Mean leader probability per region (region,) given the replicate's shifts δ_r."""
        return special.expit(self.center + region_shift)

    def regional_composition(self, region_shift: np.ndarray) -> np.ndarray:
        """Mean ballot probabilities per region (region, option): leader at its regional mean, the
        others in national proportions."""
        leader_share = self.regional_leader_share(region_shift)
        composition = (1.0 - leader_share)[:, None] * self.rest_proportions()[None, :]
        composition[:, self.leader] = leader_share
        return composition

    def rest_proportions(self) -> np.ndarray:
        """Each option's share of the ballots not for the leader (option,), the leader's own entry 0; all 0 when
        the leader's share is 1 (no ballot goes elsewhere), which only a ``dirichlet`` plan meets: validation
        refuses ``truncated_normal`` at a share of 1."""
        rest = 1.0 - self.shares[self.leader]
        proportions = self.shares / rest if rest > 0 else np.zeros_like(self.shares)
        proportions[self.leader] = 0.0
        return proportions


def _logistic_normal_center(shares, leader, sd, regional_sd) -> np.ndarray:
    """Option logits c with E[softmax(c + σε + δ e_leader)] = shares, by fixed-point iteration on a
    fixed normal sample (so the calibration is deterministic)."""
    sample = np.random.default_rng(0).standard_normal((CALIBRATION_ROWS, len(shares) + 1))
    noise = sd * sample[:, :-1]
    noise[:, leader] += regional_sd * sample[:, -1]
    center = np.log(np.maximum(shares, 1e-300))
    for _ in range(CALIBRATION_ITERATIONS):
        mean = special.softmax(center + noise, axis=1).mean(axis=0)
        center = center + np.log(np.maximum(shares, 1e-300)) - np.log(np.maximum(mean, 1e-300))
    return center


def _leader_latent(plan: PreferencePlan, rng: np.random.Generator, turnout_latent: np.ndarray) -> np.ndarray:
    own = rng.standard_normal(turnout_latent.shape)
    return plan.rho * turnout_latent + np.sqrt(1.0 - plan.rho**2) * own


def draw_preferences(plan: PreferencePlan, rng: np.random.Generator, region_index: np.ndarray,
                     region_shift: np.ndarray, turnout_latent: np.ndarray) -> np.ndarray:
    """Ballot probabilities (station, option) for stations in regions ``region_index`` (station,),
    given the replicate's regional shifts (region,) and the stations' turnout latents (station,)."""
    if plan.model == "dirichlet":
        return _dirichlet(plan, rng, region_index, region_shift, turnout_latent)
    if plan.model == "logistic_normal":
        return _logistic_normal(plan, rng, region_index, region_shift, turnout_latent)
    if plan.model == "truncated_normal":
        return _truncated_normal(plan, rng, region_index, region_shift, turnout_latent)
    raise ValueError(f"unknown preference model {plan.model!r}")


def _normalise(weights: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1, keepdims=True)
    return np.where(total > 0, weights / np.where(total > 0, total, 1.0), fallback)


def _dirichlet(plan, rng, region_index, region_shift, turnout_latent):
    mean = plan.regional_composition(region_shift)[region_index]
    alpha = plan.dispersion * mean
    if plan.rho == 0.0:
        return _normalise(rng.standard_gamma(alpha), mean)
    # copula: the leader's Beta marginal from the correlated latent, the rest a Dirichlet of the remainder
    leader_alpha = alpha[:, plan.leader]
    leader = _beta_quantile(leader_alpha, plan.dispersion - leader_alpha,
                            special.ndtr(_leader_latent(plan, rng, turnout_latent)))
    gammas = rng.standard_gamma(alpha)
    gammas[:, plan.leader] = 0.0
    rest_mean = mean.copy()
    rest_mean[:, plan.leader] = 0.0
    # where a station's gammas are all 0, the rest's mean proportions, themselves all 0 at a leader share of 1
    probabilities = (1.0 - leader)[:, None] * _normalise(gammas, _normalise(rest_mean, rest_mean))
    probabilities[:, plan.leader] = leader
    return probabilities


def _beta_quantile(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The u-quantile of Beta(a, b) (station,), elementwise; a degenerate Beta (b = 0: every ballot for the
    leader; a = 0: none) is its point mass, where ``betaincinv`` gives NaN."""
    return np.where(b > 0, np.where(a > 0, special.betaincinv(a, b, u), 0.0), 1.0)


def _logistic_normal(plan, rng, region_index, region_shift, turnout_latent):
    logits = plan.center + plan.dispersion * rng.standard_normal((len(region_index), len(plan.shares)))
    leader_latent = _leader_latent(plan, rng, turnout_latent)
    logits[:, plan.leader] = (plan.center[plan.leader] + region_shift[region_index]
                              + plan.dispersion * leader_latent)
    return special.softmax(logits, axis=1)


def _truncated_normal(plan, rng, region_index, region_shift, turnout_latent):
    mean = plan.regional_composition(region_shift)
    location = truncated_location_for_mean(mean[:, plan.leader], plan.dispersion)[region_index]
    leader = truncated_normal_quantile(special.ndtr(_leader_latent(plan, rng, turnout_latent)),
                                       location, plan.dispersion)
    probabilities = (1.0 - leader)[:, None] * plan.rest_proportions()[None, :]
    probabilities[:, plan.leader] = leader
    return probabilities
