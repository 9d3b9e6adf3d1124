"""Station turnout: a share in [0, 1] per station, from a standard-normal latent (so that a Gaussian
copula can tie it to the leader's share)."""
from __future__ import annotations

import numpy as np
from scipy import special

from .latent import logit_location_for_mean, truncated_location_for_mean, truncated_normal_quantile


def turnout_locations(model: str, means: np.ndarray, dispersion: float) -> np.ndarray:
    """The latent location per region whose station turnout has expectation ``means`` (region,)."""
    means = np.asarray(means, dtype=float)
    if model == "logit_normal":
        return logit_location_for_mean(means, dispersion)
    if model == "truncated_normal":
        return truncated_location_for_mean(means, dispersion)
    if model == "beta":
        return means
    raise ValueError(f"unknown turnout model {model!r}")


def turnout_from_latent(model: str, location: np.ndarray, dispersion: float, latent: np.ndarray) -> np.ndarray:
    """Station turnout shares (station,) from standard-normal ``latent`` (station,) and each station's
    region ``location`` (station,)."""
    if model == "logit_normal":
        return special.expit(location + dispersion * latent)
    if model == "truncated_normal":
        return truncated_normal_quantile(special.ndtr(latent), location, dispersion)
    if model == "beta":
        return special.betaincinv(location * dispersion, (1.0 - location) * dispersion, special.ndtr(latent))
    raise ValueError(f"unknown turnout model {model!r}")
