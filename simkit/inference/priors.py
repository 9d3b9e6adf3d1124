"""Priors of the ``[[infer]]`` fields and their map to an unconstrained scale, where the SMC proposals move."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from simkit.config.inference import InferConfig
from simkit.schema import INTERVAL


#: the position within finite bounds is clipped to [floor, ceiling] before its logit (a draw at a bound would be
#: infinite): the smallest normal float and the largest float below 1, so a prior's mass near a bound (a
#: log-uniform from 1e-300) keeps its values
POSITION_FLOOR, POSITION_CEILING = float(np.finfo(float).tiny), float(np.nextafter(1.0, 0.0))


@dataclass(frozen=True)
class Prior:
    """One parameter's prior and its map to the unconstrained scale u (logit of the position within
    finite bounds; log of the distance to a single finite bound; identity otherwise)."""

    block: InferConfig

    @property
    def name(self) -> str:
        return self.block.path

    def to_value(self, u: np.ndarray) -> np.ndarray:
        low, high = self.block.bounds
        if math.isfinite(low) and math.isfinite(high):
            return low + (high - low) * expit(u)
        if math.isfinite(low):
            return low + np.exp(u)
        if math.isfinite(high):
            return high - np.exp(u)
        return np.asarray(u, float)

    def to_unconstrained(self, value: np.ndarray) -> np.ndarray:
        low, high = self.block.bounds
        value = np.asarray(value, float)
        if math.isfinite(low) and math.isfinite(high):
            return logit(np.clip((value - low) / (high - low), POSITION_FLOOR, POSITION_CEILING))
        if math.isfinite(low):
            return np.log(np.maximum(value - low, 1e-300))
        if math.isfinite(high):
            return np.log(np.maximum(high - value, 1e-300))
        return value

    def log_density_unconstrained(self, u: np.ndarray) -> np.ndarray:
        """log prior density of u: log p(θ(u)) + log |dθ/du|."""
        low, high = self.block.bounds
        value = self.to_value(u)
        log_density = self.block.distribution().logpdf(value)
        if math.isfinite(low) and math.isfinite(high):
            jacobian = math.log(high - low) - np.logaddexp(0, u) - np.logaddexp(0, -u)
        elif math.isfinite(low) or math.isfinite(high):
            jacobian = u
        else:
            jacobian = 0.0
        return log_density + jacobian

    def interval(self) -> tuple[float, float]:
        """The prior's central 90% interval."""
        distribution = self.block.distribution()
        return float(distribution.ppf(INTERVAL[0])), float(distribution.ppf(INTERVAL[1]))
