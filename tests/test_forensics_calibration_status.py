"""A result's calibration status: built as a state with qualifiers, rendered in one place, read back by every
reader (the family verdict, the report's verdicts, the command line's table, the registry's panel rule)."""
from __future__ import annotations

import numpy as np
import pytest

from simkit.forensics import (_with_calibration, calibration_label, calibration_state, family_p_value, holm_alarms,
                              is_calibrated)
from simkit.forensics.calibration import controls, empirical_tests
from simkit.forensics.calibration_status import CalibrationStatus
from simkit.forensics.core import ALPHA, Election, TestResult, verdict
from simkit.forensics.registry import NOT_HELD_OUT

EMPIRICAL = "empirical, 4 clean elections"


def result(test: str, status: str | None = None, p_value: float = 1e-6, null: str = "simulated",
           **extra) -> TestResult:
    return TestResult(test=test, statistic=0.0, reference=0.0, p_value=p_value, null=null, verdict="anomalous",
                      extra={**({"calibration": status} if status else {}), "null_tail_p": p_value, **extra})


def test_a_status_renders_its_state_then_its_qualifiers_in_the_order_added():
    assert CalibrationStatus("calibrated").text == "calibrated"
    both = CalibrationStatus("calibrated").qualified(EMPIRICAL).qualified(NOT_HELD_OUT)
    assert both.text == f"calibrated ({EMPIRICAL}; {NOT_HELD_OUT})"
    assert CalibrationStatus("uncalibrated", (EMPIRICAL,)).text == f"uncalibrated ({EMPIRICAL})"


@pytest.mark.parametrize("status", [CalibrationStatus("calibrated"), CalibrationStatus("not measured"),
                                    CalibrationStatus("uncalibrated", (EMPIRICAL,)),
                                    CalibrationStatus("calibrated", (EMPIRICAL, NOT_HELD_OUT))])
def test_reading_a_rendered_status_gives_the_status_back(status):
    assert CalibrationStatus.read(status.text) == status
    assert CalibrationStatus.read(None) is None


@pytest.mark.parametrize("build", [lambda: CalibrationStatus("well calibrated"),
                                   lambda: CalibrationStatus("calibrated", ("a; b",)),
                                   lambda: CalibrationStatus("calibrated", ("",)),
                                   lambda: CalibrationStatus.read("calibrated (empirical"),
                                   lambda: CalibrationStatus.read("uncalibrated: above nominal")])
def test_a_state_or_qualifier_that_would_not_read_back_is_refused(build):
    with pytest.raises(ValueError, match="calibration"):
        build()


def test_the_label_beside_a_p_value():
    """A bare calibrated status carries no label, other bare states a short one, a qualified status its text."""
    assert [calibration_label(s) for s in (None, "calibrated", "uncalibrated", "not measured")] == [
        None, None, "uncalibrated", "size not measured"]
    qualified = f"calibrated ({EMPIRICAL}; {NOT_HELD_OUT})"
    assert calibration_label(qualified) == qualified


def test_the_family_reads_the_state_whatever_the_qualifiers():
    results = [result("a", f"calibrated ({EMPIRICAL}; {NOT_HELD_OUT})", empirical_p=1e-5),
               result("b", f"uncalibrated ({EMPIRICAL})", empirical_p=1e-5), result("c", "not measured")]
    assert [calibration_state(r.extra["calibration"]) for r in results] == ["calibrated", "uncalibrated",
                                                                           "not measured"]
    assert [is_calibrated(r.extra["calibration"]) for r in results] == [True, False, False]
    assert [family_p_value(r) for r in results] == [1e-5, None, None]
    assert holm_alarms(results) == ["a"]


def test_the_registry_rule_adds_its_qualifier_after_the_empirical_one(monkeypatch):
    """A test read empirically whose statistic was chosen on the panel (the registry's rule, here made to hold
    for an empirically read test) gets both qualifiers, empirical first: no string is spliced."""
    test = sorted(empirical_tests("simulated"))[0]
    k = len(controls("simulated"))
    monkeypatch.setattr("simkit.forensics.chosen_on_panel", lambda t, null: t == test)
    monkeypatch.setattr("simkit.forensics.uncalibrated", lambda null: frozenset())
    rng = np.random.default_rng(0)
    registered = rng.integers(500, 1000, 50)
    ballots = (registered * 0.6).astype(np.int64)
    leader = (ballots * 0.5).astype(np.int64)
    e = Election(registered, ballots, np.stack([leader, ballots - leader], axis=1), ("a", "b"), 0,
                 np.array(["r"] * 50), np.array([str(i) for i in range(50)]))
    marked = _with_calibration({test: result(test, simulated_mean=0.0, simulated_sd=1.0)}, "simulated", e)
    assert marked[test].extra["calibration"] == f"calibrated (empirical, {k} clean elections; {NOT_HELD_OUT})"
    assert marked[test].p_value == marked[test].extra["empirical_p"]


def test_the_command_line_table_shows_the_label_and_leaves_qualified_uncalibrated_tests_out():
    from simkit.cli.forensics import format_table

    results = [result("dip", f"uncalibrated ({EMPIRICAL})"), result("spikes", "not measured"),
               result("sobyanin", f"calibrated ({NOT_HELD_OUT})")]
    summary = {"source": "x.csv", "stations_used": 10, "leader": "a", "null": "simulated", "draws": 39,
               "stations_excluded": {}}
    lines = format_table(results, summary).splitlines()
    assert any(line.startswith("dip") and line.endswith(f"[uncalibrated ({EMPIRICAL})]") for line in lines)
    assert any(line.startswith("spikes") and line.endswith("[size not measured]") for line in lines)
    assert any(line.startswith("sobyanin") and f"[calibrated ({NOT_HELD_OUT})]" in line for line in lines)
    assert lines[-1] == (f"Holm at {ALPHA:g} over the calibrated tests: sobyanin (uncalibrated under this null, left "
                         "out: dip; size not measured on clean elections under this null, left out: spikes)")


def test_the_report_names_each_anomalous_test_with_its_label():
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import clean_rejections, forensic_verdicts

    results = [result("dip", f"uncalibrated ({EMPIRICAL})"), result("klimek_ml", "calibrated")]
    text = forensic_verdicts(results, DETECTS, power_shown=True)[0].text
    dip, klimek = (f"rejected {k} of {n} clean elections" for k, n in map(clean_rejections, results))
    assert f"dip (uncalibrated ({EMPIRICAL}); {dip}), klimek_ml ({klimek});" in text
    assert "1 stays so after Holm" in text


def test_the_family_rejects_where_the_verdict_does_at_alpha():
    """A p-value at exactly ALPHA (2/40 with 39 Monte Carlo draws) is anomalous in its verdict (p ≤ ALPHA), and
    raises a Holm alarm too: the table, its Holm line and the report agree."""
    at_alpha = result("a", "calibrated", p_value=2 / 40)
    assert verdict(at_alpha.p_value) == "anomalous (p ≤ 0.05)"
    assert holm_alarms([at_alpha]) == ["a"]
    above = result("a", "calibrated", p_value=np.nextafter(ALPHA, 1))
    assert verdict(above.p_value) == "no anomaly detected" and holm_alarms([above]) == []
