"""The forensic tests by id: the registry every runner, null and command reads (``TESTS``), each test's
direction, and the honest model each test's simulated null draws from (``SIMULATED_MODEL``)."""
from __future__ import annotations

from types import ModuleType
from typing import Callable

from simkit.errors import InputError, listed
from simkit.forensics.core import Election, check_null
from simkit.forensics import correlation, dip, fingerprint, log_vote_rate, shpilkin, sobyanin, spikes
from simkit.forensics.digits import last as last_digit, second as second_digit, zero_five
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.klimek import histogram as klimek_histogram, ml as klimek_ml

_MODULES = (second_digit, last_digit, zero_five, log_vote_rate, dip, correlation, sobyanin, fingerprint,
            klimek_histogram, klimek_ml, integer_percent, spikes, shpilkin)
#: test id -> its module (the interface of :mod:`simkit.forensics.core`)
TESTS: dict[str, ModuleType] = {m.ID: m for m in _MODULES}

#: the honest models of ``--null simulated`` (:data:`simkit.forensics.nulls.flat.HONEST_MODELS`)
HIERARCHICAL, CONDITIONAL = "hierarchical", "turnout_conditional"
#: Which honest model each test's ``--null simulated`` draws from, by one rule stated before the panel was run.
#: The turnout-conditional model (:mod:`simkit.forensics.nulls.conditional`) holds every station's ballots and
#: register at the data and redraws only the leader's share given the turnout. It is the null of a test whose
#: statistic reads the leader's votes *against* the station's turnout, ballots or register: a relation
#: (``correlation``, Sobyanin's slope, Shpilkin's excess above the modal turnout, the Klimek fits of the joint
#: turnout x share cloud) or the leader's count per ballot or per voter (``log_vote_rate``, the share spikes).
#: A test keeps the unconditional hierarchical model (:mod:`simkit.forensics.nulls.hierarchical`), under which
#: turnout varies too, when its statistic reads something the conditional model holds fixed as evidence in its
#: own right: the turnout distribution (``dip``), whole-percent turnouts (``integer_percent``, which reads
#: turnout and share alike), or the digits of the counts, which do not read the leader against turnout
#: (``second_digit``, ``last_digit``, ``zero_five``). ``fingerprint`` is descriptive (no null).
SIMULATED_MODEL: dict[str, str] = {
    second_digit.ID: HIERARCHICAL, last_digit.ID: HIERARCHICAL, zero_five.ID: HIERARCHICAL, dip.ID: HIERARCHICAL,
    integer_percent.ID: HIERARCHICAL, fingerprint.ID: HIERARCHICAL,
    log_vote_rate.ID: CONDITIONAL, correlation.ID: CONDITIONAL, sobyanin.ID: CONDITIONAL,
    klimek_histogram.ID: CONDITIONAL, klimek_ml.ID: CONDITIONAL, spikes.ID: CONDITIONAL, shpilkin.ID: CONDITIONAL}


#: Tests whose ``textbook`` null is drawn, not a law: their p-value is a share of ``draws`` draws, with its floor
#: (:mod:`simkit.forensics.floor`): ``spikes`` (binomial redraws of the leader's votes), ``shpilkin`` (a station
#: bootstrap), ``klimek`` (the fit's gain on honest samples of its first stage, at most ``MAX_NULL_DRAWS``). Every
#: other textbook null is a law (continuous, or for the integer test a Poisson-binomial of exact station
#: probabilities whose tail is Volkova's refined normal approximation), and every ``simulated`` and ``flat`` null
#: is drawn.
TEXTBOOK_DRAWN = frozenset({spikes.ID, shpilkin.ID, klimek_histogram.ID})

#: Tests whose ``run`` takes ``estimates``: False leaves out what they estimate beside the p-value (the Klimek
#: fits' joint likelihood fit and station bootstrap, the integer test's exact binomial null under a simulated null
#: and its top regions), which no verdict reads and which cost more than the p-value: several times its CPU on a
#: large election. Sizes and powers read the verdict alone (:func:`simkit.forensics.election_outcomes`); every
#: other test's estimates are cheap beside its p-value.
ESTIMATES_APART = frozenset({klimek_histogram.ID, klimek_ml.ID, integer_percent.ID})


#: Tests whose statistic was chosen on the false-positive panel, the clean elections that also measure its size
#: (``klimek_ml``: the extreme fit's f_e replaced the grid fit's likelihood ratio after the LR missed Russia on
#: that panel; ``benchmarks/klimek_candidates.py``). The panel is therefore not a held-out check of it: its
#: ``calibrated`` status says so (:func:`chosen_on_panel`, :data:`NOT_HELD_OUT`).
CHOSEN_ON_PANEL = frozenset({klimek_ml.ID})
#: what a calibrated status adds for a test whose statistic was chosen on the panel that measured it
NOT_HELD_OUT = "on the panel it was chosen on: not held out"


def chosen_on_panel(test: str, null: str) -> bool:
    """Whether the statistic ``test`` reports under ``null`` (:func:`statistic_function`) was chosen on the
    false-positive panel (:data:`CHOSEN_ON_PANEL`): the module's own ``statistic``, not a textbook one."""
    return test in CHOSEN_ON_PANEL and statistic_function(test, null) is TESTS[test].statistic


def honest_model(test: str, null: str) -> str | None:
    """The honest model whose simulated elections make ``test``'s null under ``null``: the test's own
    (:data:`SIMULATED_MODEL`) under ``simulated``, the flat model under ``flat``, None under ``textbook``."""
    check_null(null)
    return {"simulated": SIMULATED_MODEL[test], "flat": "flat"}.get(null)


def null_draws_used(test: str, draws: int) -> int:
    """The draws of ``draws`` that ``test``'s drawn null uses: all, or the first ``MAX_NULL_DRAWS`` of a test
    whose statistic is a model fit (its module's constant; the two Klimek fits)."""
    return min(draws, getattr(TESTS[test], "MAX_NULL_DRAWS", draws))


def alternative(test: str) -> str | None:
    """The direction in which ``test``'s statistic is anomalous (``ALTERNATIVE`` of its module); None for the
    descriptive fingerprint."""
    if test == fingerprint.ID:
        return None
    return TESTS[test].ALTERNATIVE


def statistic_function(test: str, null: str) -> Callable[[Election], float]:
    """The function whose value ``test`` reports under ``null``, and of which its null is the law: the
    module's ``statistic`` (computed on the data and on every simulated draw), or under the textbook null its
    ``textbook_statistic`` when that null is about another number (``integer_percent``: the integer-station
    count)."""
    check_null(null)
    module = TESTS[test]
    return getattr(module, "textbook_statistic", module.statistic) if null == "textbook" else module.statistic


def parse_tests(text: str | None) -> list[str]:
    """Test ids from a comma-separated list (all tests when None); raises ValueError on an unknown id."""
    if text is None:
        return list(TESTS)
    ids = [t.strip() for t in text.split(",") if t.strip()]
    problem = _unknown(ids)
    if problem:
        raise ValueError(problem)
    return ids


def check_tests(tests) -> list[str]:
    """The test ids of a list given from Python (InputError naming ``tests`` for a string, an empty list or an
    unknown id)."""
    if isinstance(tests, str):
        raise InputError(f"tests: a list of test ids, got the string {tests!r} (choose from {', '.join(TESTS)})",
                         parameters=("tests",))
    ids = list(tests)
    problem = _unknown(ids)
    if problem:
        raise InputError(f"tests: {problem}", parameters=("tests",))
    return ids


def _unknown(ids: list[str]) -> str | None:
    """What is wrong with ``ids`` (an unknown id, or none at all), or None."""
    unknown = [t for t in ids if t not in TESTS]
    if unknown or not ids:
        return f"unknown test id {listed(unknown) or '(none)'} (choose from {', '.join(TESTS)})"
    return None
