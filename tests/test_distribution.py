"""The engine against a slow per-voter reference simulator and against analytic expectations.

The reference is written independently of simkit's model code: the latent location of the
logit-normal turnout is found with scipy quad + brentq, the Dirichlet preferences with
``Generator.dirichlet``, and each voter's turnout and choice are drawn one by one.
"""
import numpy as np
import pytest
import tomli_w
from scipy import integrate, optimize, special, stats

from simkit import parse_config, simulate

from conftest import small_config_dict

SHARES = (0.5, 0.3, 0.2)
MEAN_TURNOUT, TURNOUT_SD, CONCENTRATION = 0.6, 0.4, 30.0


def reference_location(mean: float, sd: float) -> float:
    """μ with E[expit(μ + sd Z)] = mean, by quadrature."""
    def expected(mu):
        return integrate.quad(lambda z: special.expit(mu + sd * z) * stats.norm.pdf(z), -12, 12)[0]
    return optimize.brentq(lambda mu: expected(mu) - mean, -20, 20)


def per_voter_station(rng, registered: int, location: float) -> tuple[int, np.ndarray]:
    turnout = special.expit(location + TURNOUT_SD * rng.standard_normal())
    preferences = rng.dirichlet(CONCENTRATION * np.array(SHARES))
    votes_cast = rng.random(registered) < turnout
    choices = np.searchsorted(np.cumsum(preferences), rng.random(int(votes_cast.sum())), side="right")
    return int(votes_cast.sum()), np.bincount(np.minimum(choices, len(SHARES) - 1), minlength=len(SHARES))


def chi_square_two_sample(a: np.ndarray, b: np.ndarray, bins: int = 12) -> float:
    """p-value of a chi-square test that two samples of counts share one distribution (equal-mass bins)."""
    edges = np.unique(np.quantile(np.concatenate([a, b]), np.linspace(0, 1, bins + 1)))
    table = np.array([np.histogram(a, edges)[0], np.histogram(b, edges)[0]])
    return stats.chi2_contingency(table[:, table.sum(0) > 0])[1]


@pytest.fixture(scope="module")
def engine_and_reference():
    replicates = 1500
    cfg = parse_config(tomli_w.dumps(small_config_dict(
        stations=3, registered=900, regions=(("only", 1.0),), shares=SHARES, turnout_mean=MEAN_TURNOUT,
        turnout_dispersion=TURNOUT_SD, preference_dispersion=CONCENTRATION, replicates=replicates, seed=11)))
    engine = simulate(cfg).sel(scenario="honest")
    registered = engine["registered"].values
    location = reference_location(MEAN_TURNOUT, TURNOUT_SD)
    rng = np.random.default_rng(12345)
    reference_ballots = np.empty((replicates, 3), np.int64)
    reference_votes = np.empty((replicates, 3, len(SHARES)), np.int64)
    for r in range(replicates):
        for s, size in enumerate(registered):
            reference_ballots[r, s], reference_votes[r, s] = per_voter_station(rng, int(size), location)
    return engine, reference_ballots, reference_votes


def test_ballots_per_station_agree_in_distribution(engine_and_reference):
    engine, reference_ballots, _ = engine_and_reference
    for station in range(3):
        p = chi_square_two_sample(engine["ballots"].values[:, station], reference_ballots[:, station])
        assert p > 0.001, f"station {station}: p = {p:.2g}"


def test_votes_per_station_agree_in_distribution(engine_and_reference):
    engine, _, reference_votes = engine_and_reference
    for option in range(len(SHARES)):
        p = chi_square_two_sample(engine["votes"].values[:, 0, option], reference_votes[:, 0, option])
        assert p > 0.001, f"option {option}: p = {p:.2g}"


@pytest.mark.parametrize("turnout_model,dispersion", [("logit_normal", 0.5), ("beta", 20.0), ("truncated_normal", 0.15)])
@pytest.mark.parametrize("preference_model,pref_dispersion", [("dirichlet", 20.0), ("logistic_normal", 0.6),
                                                              ("truncated_normal", 0.1)])
def test_national_means_match_analytic_expectation(turnout_model, dispersion, preference_model, pref_dispersion):
    """E[turnout] = the configured mean; E[share of ballots] = the configured share; within 4 SE."""
    shares = (0.55, 0.25, 0.2)
    cfg = parse_config(tomli_w.dumps(small_config_dict(
        stations=300, registered=150_000, shares=shares, turnout_model=turnout_model, turnout_mean=0.65,
        turnout_dispersion=dispersion, preference_model=preference_model, preference_dispersion=pref_dispersion,
        regional_sd=0.2 if preference_model != "logistic_normal" else 0.0, replicates=300, seed=5, keep="summary")))
    ds = simulate(cfg).sel(scenario="honest")
    registered = ds["registered"].values
    turnout = ds["total_ballots"].values / registered.sum()
    assert abs(turnout.mean() - 0.65) < 4 * turnout.std(ddof=1) / np.sqrt(len(turnout))
    share = ds["total_votes"].values / ds["total_ballots"].values[:, None]
    for k, expected in enumerate(shares):
        se = share[:, k].std(ddof=1) / np.sqrt(len(share))
        # the logistic-normal centres are calibrated on a 20,000-row sample: allow its own MC error too
        calibration = 0.5 / np.sqrt(20_000) if preference_model == "logistic_normal" else 0.0
        assert abs(share[:, k].mean() - expected) < 4 * se + calibration, (k, share[:, k].mean(), expected)
