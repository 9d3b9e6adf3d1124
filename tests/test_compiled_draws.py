"""The forensic nulls' compiled draws: honest elections and the integer statistic's resamples.

The samplers themselves are tested against their exact laws in ``test_kernels.py``; these tests check what
the loops build from them (which column gets which count, the multinomial split, the correlation of the
latent normals, the integer predicate), with fixed seeds and tolerances of a few standard errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from forensics_helpers import honest_dataset
from simkit.forensics import election
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.nulls.compiled_draws import honest_counts, integer_resample_counts

K = 4.0  # standard errors


def _draw(seed, n=20000, correlation=0.0, turnout_scale=0.0, share_scale=0.0):
    registered = np.full(n, 400)
    proportions = np.tile([0.25, 0.75], (n, 1))
    return registered, honest_counts(registered, np.full(n, special.logit(0.6)), np.full(n, special.logit(0.3)),
                                     turnout_scale, share_scale, correlation, proportions, 1,
                                     np.random.SeedSequence(seed))


def test_counts_add_up_and_repeat_with_the_seed():
    _, (ballots, votes) = _draw(1)
    assert votes.shape == (20000, 3) and votes.dtype == np.int64
    assert (votes.sum(axis=1) == ballots).all() and (votes >= 0).all()
    _, (again_ballots, again_votes) = _draw(1)
    assert np.array_equal(ballots, again_ballots) and np.array_equal(votes, again_votes)
    _, (other_ballots, _) = _draw(2)
    assert not np.array_equal(ballots, other_ballots)


def test_leader_column_and_multinomial_split_have_their_means():
    """Fixed rates (scales 0): ballots ~ Bin(400, 0.6), the leader (column 1) ~ Bin(ballots, 0.3), the others
    split the rest 1:3 in columns 0 and 2."""
    registered, (ballots, votes) = _draw(3)
    n = ballots.size
    assert abs(ballots.mean() - 240) <= K * np.sqrt(400 * 0.6 * 0.4 / n)
    leader_rate = votes[:, 1].sum() / ballots.sum()
    assert abs(leader_rate - 0.3) <= K * np.sqrt(0.3 * 0.7 / ballots.sum())
    rest = ballots - votes[:, 1]
    first_rate = votes[:, 0].sum() / rest.sum()
    assert abs(first_rate - 0.25) <= K * np.sqrt(0.25 * 0.75 / rest.sum())


def test_latent_normals_are_correlated_as_asked():
    """With wide latent scales the logit rates carry the latent correlation (0.6) up to the counting noise,
    which only shrinks it; the rank correlation of the rates is within 0.1 of the Gaussian copula's."""
    _, (ballots, votes) = _draw(4, correlation=0.6, turnout_scale=1.0, share_scale=1.0)
    from scipy import stats

    turnout, share = ballots / 400, votes[:, 1] / np.maximum(ballots, 1)
    rank = stats.spearmanr(turnout, share).statistic
    assert 6 / np.pi * np.arcsin(0.6 / 2) - 0.1 <= rank <= 6 / np.pi * np.arcsin(0.6 / 2) + 0.01


def test_integer_resamples_match_the_exact_null_mean():
    """The mean integer count of 200 compiled resamples equals the exact Poisson-binomial mean within K
    standard errors of a 200-draw mean."""
    e = election(honest_dataset(3000, seed=7, register_low=100, register_high=900))
    mask = integer_percent.used(e)
    counts = integer_resample_counts(e.registered[mask], e.turnout[mask], e.leader_share[mask], 200,
                                     integer_percent.WINDOW, np.random.SeedSequence(8))
    probabilities = integer_percent.station_probabilities(e)
    sd = np.sqrt((probabilities * (1 - probabilities)).sum())
    assert counts.mean() == pytest.approx(probabilities.sum(), abs=K * sd / np.sqrt(200))
    assert counts.std(ddof=1) == pytest.approx(sd, rel=0.25)  # 200 draws: the SD's SE is 5%
