"""Hartigan's dip test of unimodality of station turnout (ballots / registered), via the ``diptest`` package.

Textbook null: the uniform distribution (Hartigan's least favourable unimodal case; ``diptest``'s tabulated
p-value, conservative). Its law is that of continuous values, and a station's turnout is not one: it lies on the
lattice k / n of its register n, so stations of a few voters pile up on a few values (1/2, 2/3, 1), atoms the
dip reads as modes (a clean election of 1,981 stations of 3 to 7 voters has a dip of 0.096, where the
uniform's 5% critical value at that size is 0.012). The textbook statistic is therefore the dip of the *spread* turnout
(ballots + U) / (registered + 1), U uniform on [0, 1) from a fixed seed (:func:`textbook_statistic`): when the
latent turnout is uniform (the least favourable case) the ballots are uniform on 0..n and the spread turnout is
exactly uniform on [0, 1] at every register, so the law holds whatever the station sizes; at a register of n it
moves a turnout by at most 1 / (n + 1). The simulated null needs no spreading: its draws share the data's
registers and lattice, and it reads the dip of the turnout itself (:func:`statistic`).
"""
from __future__ import annotations

import warnings

import diptest
from diptest.diptest import Consts
import numpy as np

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, verdict

ID = "dip"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous
SPREAD_SEED = 0  #: the fixed seed of the textbook statistic's spreading (a statistic of the data alone)


def statistic(e: Election) -> float:
    """Hartigan's dip of the turnout distribution (in [0, 0.25])."""
    return float(diptest.dipstat(e.turnout))


def spread_turnout(registered: np.ndarray, ballots: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(ballots + U) / (registered + 1) with U uniform on [0, 1) drawn from ``rng``, shape (station,): the
    turnout spread over its lattice step, exactly uniform on [0, 1] when the ballots are uniform on
    0..registered (module docstring)."""
    return (ballots + rng.random(ballots.shape)) / (registered + 1.0)


def textbook_statistic(e: Election) -> float:
    """Hartigan's dip of the spread turnout (:func:`spread_turnout`, from :data:`SPREAD_SEED`): the number whose
    law the textbook null gives at any station size."""
    rng = np.random.default_rng(SPREAD_SEED)
    return float(diptest.dipstat(spread_turnout(e.registered, e.ballots, rng)))


class DipLaw:
    """The dip of ``n`` values drawn from the uniform distribution: ``sf`` by ``diptest``'s interpolation of
    its tabulated critical values (conservative beyond its table, n = 72,000). Only the upper tail is known."""

    def __init__(self, n: int):
        self.n = n

    def sf(self, dip: float) -> float:
        with warnings.catch_warnings():  # diptest warns that its table stops at n = 72,000; p stays conservative
            warnings.simplefilter("ignore", UserWarning)
            return float(Consts.compute_pval_interpolation(self.n, dip))

    def cdf(self, dip: float) -> float:
        return 1.0 - self.sf(dip)


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    dip = textbook_statistic(e) if null == "textbook" else statistic(e)
    p_value, reference = null_for(null, lambda: LawNull(DipLaw(e.n)),
                                  null_statistics).p_value(dip, ALTERNATIVE)
    return TestResult(test=ID, statistic=dip, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"stations_tested": e.n})
