"""Real-data checks of the forensics issue: Poland 2025 round 2 under both nulls; Russia 2011 still flagged.

Known result (documented, not hidden by widening the null): on Poland round 2, under each test's own simulated
null, the tests of the turnout-share relation and the histogram Klimek fit still misfit some clean elections
(``correlation``, ``sobyanin``, ``log_vote_rate``, ``shpilkin``; docs/forensics.md, the false-positive panel:
Poland round 2 at 200 draws has ``shpilkin`` z +4.5, ``log_vote_rate`` +1.9). A test
that rejects this clean election must therefore be one the panel measured as uncalibrated, and so labelled in its
result; the histogram Klimek fit, which the panel leaves out for time, is a known misfit here too (its honest
part, independent normals, does not fit Poland's fingerprint).

Holm across tests at 0.01 uses each test's normal p-value from its simulated null (``null_normal_p``; its
empirically calibrated p-value for a test read against the clean controls, Poland round 2 held out): the Monte
Carlo p-value's floor at 100 draws (0.0099) times 12 tests can never reach 0.01, which made an assertion on
it vacuous.
"""
from __future__ import annotations

import numpy as np
import pytest

from simkit.data import data_file
from simkit.forensics import TESTS, election, run_tests
from simkit.forensics.core import holm

COUNT_TESTS = ("second_digit", "last_digit", "zero_five", "dip", "integer_percent", "spikes", "shpilkin")
#: the count tests the false-positive panel measured as calibrated (docs/forensics.md): they must stay quiet on Poland
CALIBRATED_COUNT_TESTS = {"last_digit", "zero_five", "dip", "integer_percent", "spikes"}
#: the documented misfit that the panel does not measure (module docstring)
KNOWN_MISFITS = {"klimek"}
#: family level of the Holm correction across tests
FAMILY_ALPHA = 0.01


def normal_p(result) -> float | None:
    """The test's ``null_normal_p`` (None for the descriptive fingerprint): unlike the Monte Carlo p-value,
    whose floor 1 / (draws + 1) = 0.0099 at 100 draws can never pass Holm at 0.01 over 12 tests, it can fall
    that low. A test read empirically (docs/forensics.md: empirical calibration) reports its empirically calibrated
    p-value, which has no such floor: that one."""
    value = result.extra.get("empirical_p", result.extra.get("null_normal_p"))
    return None if result.p_value is None or value is None or not np.isfinite(value) else value


def _load(preset, relative):
    if data_file(relative) is None:
        pytest.skip(f"shared data {relative} absent (set SIMKIT_DATA or place ../shared/data)")
    from simkit.electorate.returns import load_returns

    return election(load_returns(preset=preset))


def test_poland_round2_under_both_nulls():
    e = _load("poland-2025-r2", "poland-2025/2025_presidential_round2_clean.csv")
    by_null = {null: run_tests(e, null=null, draws=100, seed=2025) for null in ("textbook", "simulated")}
    for textbook, simulated in zip(by_null["textbook"], by_null["simulated"]):
        print(f"{textbook.test:16s} textbook p {textbook.p_value!s:>24}  simulated p {simulated.p_value!s:>24}")
    simulated = {r.test: r for r in by_null["simulated"]}
    assert set(simulated) == set(TESTS)
    labelled = {t for t, r in simulated.items() if r.extra.get("calibration", "").startswith("uncalibrated")}
    for test in COUNT_TESTS:
        assert simulated[test].p_value > 0.01 or test in labelled, test
    adjusted = holm([normal_p(r) for r in by_null["simulated"]])
    alarms = {r.test for r, p in zip(by_null["simulated"], adjusted) if p is not None and p <= FAMILY_ALPHA}
    print(f"Holm alarms at {FAMILY_ALPHA} (normal p-values from the simulated null): {sorted(alarms)}")
    assert alarms <= KNOWN_MISFITS | labelled
    assert CALIBRATED_COUNT_TESTS.isdisjoint(labelled)


def test_russia_2011_still_flagged_with_the_same_simulated_null():
    e = _load("russia-2011", "russia/2011.csv.zip")
    results = {r.test: r for r in run_tests(e, ["integer_percent", "klimek"], null="simulated", draws=100,
                                            seed=2025)}
    assert results["integer_percent"].p_value <= 1 / 101
    assert results["klimek"].p_value <= 1 / 40
    # and beyond the Monte Carlo floor: each passes Holm at 0.01 over the 12 tests by its normal p-value
    for test in ("integer_percent", "klimek"):
        assert normal_p(results[test]) * 12 <= FAMILY_ALPHA, (test, results[test].extra["null_z"])
