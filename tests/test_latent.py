"""The mean-matching of the logit-normal model (simkit.model.latent): Newton's solution against an independent
quadrature + root-finder reference and against the bisection it replaced."""
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from simkit.model import latent


def _reference_location(mean: float, sd: float) -> float:
    """μ with E[expit(μ + sd Z)] = mean, by scipy quad and brentq."""
    def expected(mu):
        return integrate.quad(lambda z: special.expit(mu + sd * z) * stats.norm.pdf(z), -12, 12)[0]
    return optimize.brentq(lambda mu: expected(mu) - mean, -30, 30, xtol=1e-13)


@pytest.mark.parametrize("sd", [0.0, 0.1, 0.5, 1.5])
def test_location_matches_an_independent_reference(sd):
    means = np.array([0.02, 0.287, 0.5, 0.6944, 0.93])
    locations = latent.logit_location_for_mean(means, sd)
    reference = [_reference_location(m, sd) if sd else special.logit(m) for m in means]
    np.testing.assert_allclose(locations, reference, rtol=0, atol=1e-8)


@pytest.mark.parametrize("sd", [0.0, 0.5, 3.0])
def test_location_solves_the_mean_equation_like_bisection(sd):
    """The mean at Newton's location equals the target to rounding, as at bisection's, everywhere in [0, 1]."""
    means = np.concatenate([np.linspace(0.0, 1.0, 101), [1e-9, 1 - 1e-9]])
    newton = latent.logit_location_for_mean(means, sd)
    bisection = latent.invert_monotone(lambda mu: latent.logit_normal_mean(mu, sd), means, -40.0, 40.0)
    assert np.abs(latent.logit_normal_mean(newton, sd) - means).max() < 1e-14
    assert np.abs(latent.logit_normal_mean(bisection, sd) - means).max() < 1e-14
    assert latent.logit_location_for_mean(np.array(0.7), sd).shape == ()
