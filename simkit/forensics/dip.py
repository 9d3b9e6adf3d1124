"""Hartigan's dip test of unimodality of station turnout (ballots / registered), via the ``diptest`` package.

Textbook null: the uniform distribution (Hartigan's least favourable unimodal case; ``diptest``'s tabulated
p-value, conservative). The simulated null gives a dip distribution for an honest unimodal election like this one.
"""
from __future__ import annotations

import warnings

import diptest
import numpy as np

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, verdict

ID = "dip"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous


def statistic(e: Election) -> float:
    """Hartigan's dip of the turnout distribution (in [0, 0.25])."""
    return float(diptest.dipstat(e.turnout))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    if null == "textbook":
        with warnings.catch_warnings():  # diptest warns that its table stops at n = 72,000; p stays conservative
            warnings.simplefilter("ignore", UserWarning)
            dip, p_value = diptest.diptest(e.turnout)
        dip, p_value, reference = float(dip), float(p_value), None
    else:
        dip = statistic(e)
        p_value, reference = simulated_p_value(dip, null_statistics, ALTERNATIVE)
    return TestResult(test=ID, statistic=dip, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"stations_tested": e.n})
