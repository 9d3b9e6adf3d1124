"""The measured-size record: which tests are uncalibrated, from rejections on clean elections at 0.05 and at the
family level α / m."""
from __future__ import annotations

from dataclasses import replace

import pytest
from scipy import stats

from benchmarks.false_positives import PANEL, family_alarms, panel_counts, panel_family_counts
from simkit.forensics import calibration, family_p_value, holm_alarms
from simkit.forensics.core import TestResult
from simkit.schema import rejects


def _rows(p_values: dict[str, list[float]], tail_p: dict[str, list[float | None]]) -> dict:
    """Panel rows as ``benchmarks/false_positives.py --json`` stores them (test -> one p per panel election)."""
    return {name: {"results": {test: {"p_value": p[i], "tail_p": tail_p[test][i]} for test, p in p_values.items()}}
            for i, name in enumerate(PANEL)}


def test_size_above_nominal_is_a_binomial_test_at_the_measured_level():
    assert not calibration.size_above_nominal(1, 5)  # P(X >= 1 | 5, 0.05) = 0.23
    assert calibration.size_above_nominal(2, 5)  # 0.023
    level = 0.05 / 11
    assert stats.binom.sf(0, 5, level) < 0.05
    assert calibration.size_above_nominal(1, 5, level)
    assert not calibration.size_above_nominal(0, 5, level)


def test_family_level_counts_read_the_tail_p_value_the_verdict_reads():
    p_values = {"a": [0.005, 0.3, 0.6, 0.9, 0.2], "b": [0.004975, 0.5, 0.5, 0.5, 0.5]}
    tail_p = {"a": [0.001, None, None, None, None], "b": [0.03, None, None, None, None]}
    rows = _rows(p_values, tail_p)
    assert panel_counts(rows, ["a", "b"]) == {"a": (1, 5), "b": (1, 5)}
    family = panel_family_counts(rows, ["a", "b"])
    assert family["a"] == (1, 5, pytest.approx(0.025)) and family["b"] == (0, 5, pytest.approx(0.025))


def test_a_p_value_exactly_at_the_level_rejects_everywhere():
    """One rule, at or below the level (the usual rule for a Monte Carlo p-value (1 + k) / (n + 1), exact in size
    when alpha (n + 1) is a whole number), for every verdict, the panel's Holm-alarm column and its family counts.
    Two Klimek floors 1/40 in a 2-test family: Holm's 2 x 1/40 = 0.05 raises an alarm on both."""
    floor = 1 / 40
    row = {"results": {"klimek_ml": {"p_value": floor}, "klimek": {"p_value": floor}}}
    assert family_alarms(row, frozenset()) == ["klimek_ml", "klimek"]
    rows = _rows({"a": [0.025, 0.5, 0.5, 0.5, 0.5], "b": [0.5] * 5}, {"a": [None] * 5, "b": [None] * 5})
    assert panel_family_counts(rows, ["a", "b"])["a"][0] == 1
    assert rejects(0.05) and rejects(1 / 20) and rejects(5 / 100) and not rejects(0.0501) and not rejects(None)
    assert rejects(0.01, 0.01)


def test_record_round_trips_both_count_forms(tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "RECORD", tmp_path / "measured_size.json")
    calibration._record.cache_clear()
    try:
        calibration.record("simulated", "panel", {"a": (0, 5), "b": (1, 5)}, "cmd")
        calibration.record("simulated", "panel_family", {"a": (0, 5, 0.005), "b": (1, 5, 0.005)}, "cmd")
        assert calibration.measured("simulated")["panel_family"]["b"] == [1, 5, 0.005]
        assert calibration.uncalibrated("simulated") == frozenset({"b"})
    finally:
        calibration._record.cache_clear()


def test_a_test_that_ran_on_no_election_is_no_candidate_of_the_family():
    """The family level 0.05 / m counts the candidate members: a test n/a on every panel election (``klimek_ml``
    under the textbook null) is none. Counted, it made four tests five, 0.05 / 5 = 0.01, where one clean election
    at p 0.009 is improbable (P = 0.049) and flagged the test (as the textbook ``shpilkin``, Poland round 1 at
    0.005); at 0.05 / 4 it is not (P = 0.061)."""
    from benchmarks.false_positives import calibrate

    p_values = {"a": [0.009, 0.5, 0.5, 0.5, 0.5], "b": [0.5] * 5, "c": [0.5] * 5, "d": [0.5] * 5}
    rows = _rows(p_values, {test: [None] * 5 for test in p_values})
    for row in rows.values():
        row["results"]["lawless"] = None
    read = calibrate(rows, [*p_values, "lawless"], "textbook")
    assert read["panel"]["lawless"] == (0, 0)
    assert read["panel_family"]["a"] == (1, 5, pytest.approx(0.05 / 4)) and "a" not in read["flagged"]


def test_a_test_that_ran_on_no_election_is_not_recorded(tmp_path, monkeypatch):
    """A test n/a on every panel election (``klimek_ml`` under the textbook null) has no size: the record leaves
    it out, so it stays ``not measured`` (it was stored as 0 of 0, a measurement)."""
    monkeypatch.setattr(calibration, "RECORD", tmp_path / "measured_size.json")
    calibration._record.cache_clear()
    try:
        calibration.record("textbook", "panel", {"a": (0, 5), "klimek_ml": (0, 0)}, "cmd")
        assert calibration.measured("textbook")["panel"] == {"a": [0, 5]}
    finally:
        calibration._record.cache_clear()


def test_only_measured_calibrated_tests_enter_the_family():
    """A test left out of the family unless its size was measured and found nominal: an uncalibrated or an
    unmeasured test with a tiny p-value raises no Holm alarm; the same p-value of a calibrated test does."""
    def result(test, status):
        return TestResult(test=test, statistic=0.0, reference=0.0, p_value=1e-6, null="simulated", verdict="",
                          extra={"calibration": status, "null_tail_p": 1e-6})

    results = [result("a", "calibrated"), result("b", "uncalibrated"), result("c", "not measured")]
    assert [family_p_value(r) for r in results] == [1e-6, None, None]
    assert holm_alarms(results) == ["a"]


def test_a_statistic_chosen_on_the_panel_is_labelled_not_held_out():
    """klimek_ml's f_e was chosen on the false-positive panel that measures its size: its calibrated status
    says so wherever the label shows, and it stays in the family; a test chosen beforehand (dip) keeps the bare
    ``calibrated`` and no label."""
    from simkit.forensics import _with_calibration, calibration_label
    from simkit.forensics.registry import NOT_HELD_OUT, chosen_on_panel

    def result(test, null):
        return TestResult(test=test, statistic=0.0, reference=0.0, p_value=1e-6, null=null, verdict="",
                          extra={"null_tail_p": 1e-6})

    assert chosen_on_panel("klimek_ml", "simulated")
    assert not chosen_on_panel("dip", "simulated")
    marked = _with_calibration({t: result(t, "simulated") for t in ("klimek_ml", "dip")}, "simulated", None)
    status = marked["klimek_ml"].extra["calibration"]
    assert status == f"calibrated ({NOT_HELD_OUT})"
    assert calibration_label(status) == status and NOT_HELD_OUT in calibration_label(status)
    assert family_p_value(marked["klimek_ml"]) == 1e-6
    assert marked["dip"].extra["calibration"] == "calibrated" and calibration_label("calibrated") is None


def test_tests_under_the_flat_null_read_the_flat_panel_measurement():
    """The record measures the false-positive panel under ``--null flat`` too: every test the panel runs gets a
    measured status there (none is ``not measured``), by the same rule as under the other nulls: ``uncalibrated``
    exactly when a measured size under ``flat`` is above nominal, else ``calibrated`` and in the family. The
    histogram Klimek fit, which the panel leaves out for time, stays ``not measured``."""
    from simkit.forensics import TESTS, _with_calibration
    from simkit.forensics.calibration_status import CalibrationStatus

    panel_tests = [t for t in TESTS if t not in ("fingerprint", "klimek")]
    results = {t: TestResult(test=t, statistic=0.0, reference=0.0, p_value=1e-6, null="flat", verdict="",
                             extra={"null_tail_p": 1e-6}) for t in panel_tests}
    results["klimek"] = replace(results["dip"], test="klimek")
    flagged = calibration.uncalibrated("flat")
    marked = _with_calibration(results, "flat", None)
    for test in panel_tests:
        status = CalibrationStatus.read(marked[test].extra["calibration"])
        assert status.state == ("uncalibrated" if test in flagged else "calibrated"), (test, status)
        assert (family_p_value(marked[test]) is None) == (test in flagged)
    assert marked["klimek"].extra["calibration"] == "not measured"
    assert not calibration.empirical_tests("flat")  # no controls: the flat null's p-values are its own


def test_the_false_positive_tables_run_the_tests_without_the_estimates_they_do_not_read(monkeypatch, capsys):
    """The panel's tables and calibration record read p-values, statistics and null moments alone: the tests run
    without their estimates (the Klimek fits' joint fit and bootstrap, the integer test's exact null under a
    simulated null), which only ``--json``'s records (``scalars``) keep."""
    import benchmarks.false_positives as panel
    from forensics_helpers import honest_dataset
    from simkit.forensics import election, run_each

    asked = []

    def spied(*args, **kwargs):
        asked.append(kwargs["estimates"])
        return run_each(*args, **kwargs)

    monkeypatch.setattr(panel, "load_election", lambda name: election(honest_dataset(200, 3)))
    monkeypatch.setattr(panel, "run_each", spied)
    for output in ([], ["--markdown"], ["--json"]):
        assert panel.main(["--draws", "19", "--null", "textbook", "--tests", "dip", "--elections", "x"] + output) == 0
    assert asked == [False, False, True]
    assert '"tables"' in capsys.readouterr().out
