"""Hartigan's dip test of unimodality of station turnout (ballots / registered), via the ``diptest`` package.

Textbook null: the uniform distribution (Hartigan's least favourable unimodal case; ``diptest``'s tabulated
p-value, conservative). The simulated null gives a dip distribution for an honest unimodal election like this one.
"""
from __future__ import annotations

import warnings

import diptest
from diptest.diptest import Consts
import numpy as np

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, verdict

ID = "dip"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous


def statistic(e: Election) -> float:
    """Hartigan's dip of the turnout distribution (in [0, 0.25])."""
    return float(diptest.dipstat(e.turnout))


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
    dip = statistic(e)
    p_value, reference = null_for(null, lambda: LawNull(DipLaw(e.n)),
                                  null_statistics).p_value(dip, ALTERNATIVE)
    return TestResult(test=ID, statistic=dip, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"stations_tested": e.n})
