"""Round-number test: share of counts, and of leader percentages, ending in 0 or 5.

Counts: candidates' station counts >= 100 (share ending in 0 or 5; textbook 0.2). Percentages: the leader's
share in whole percent (rounded), stations with >= 100 ballots (textbook 0.2). The statistic and p-value are
for counts; the percentage figures are in ``extra``. Textbook p-values are two-sided binomial z-tests.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, verdict
from simkit.forensics.digits.shared import digit_counts, tally_mean

ID = "zero_five"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous
MIN_COUNT = 100
TEXTBOOK_SHARE = 0.2


def _ends_in_zero_five(values: np.ndarray) -> np.ndarray:
    return (values % 5) == 0


#: 1 for the last digits 0 and 5, else 0 (indexed by digit)
ZERO_FIVE = _ends_in_zero_five(np.arange(10)).astype(np.int64)


def _percent_digits(e: Election) -> np.ndarray:
    mask = e.ballots >= MIN_COUNT
    return np.round(100 * e.leader_share[mask]).astype(np.int64)


def statistic(e: Election) -> float:
    """Share (0..1) of candidates' counts >= 100 ending in 0 or 5 (NaN when there are none)."""
    return tally_mean(digit_counts(e, MIN_COUNT), ZERO_FIVE)


def textbook_law(n: int) -> LawNull:
    """The normal law of a share of ``n`` values ending in 0 or 5 when each does with probability 0.2."""
    return LawNull(stats.norm(TEXTBOOK_SHARE, np.sqrt(TEXTBOOK_SHARE * (1 - TEXTBOOK_SHARE) / n)))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    tested = int(digit_counts(e, MIN_COUNT).sum())
    share = statistic(e)
    percents = _percent_digits(e)
    percent_share = float(_ends_in_zero_five(percents).mean())
    p_value, reference = null_for(null, lambda: textbook_law(tested), null_statistics).p_value(share, ALTERNATIVE)
    return TestResult(test=ID, statistic=share, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"counts_tested": tested, "percent_share": percent_share,
                             "percent_p_value_textbook": textbook_law(percents.size).p_value(percent_share,
                                                                                             ALTERNATIVE)[0],
                             "percents_tested": int(percents.size)})
