"""A test that Holm's correction rejects only on its null's tail p-value (its shown p-value at or above 0.05,
possible with a hundred or so draws) is rejected everywhere the run says so: one rule,
:func:`simkit.forensics.rejected_tests`, in the power decision, the report's limits and follow-up lists, and the
command's table."""
from types import SimpleNamespace

from simkit.forensics import holm_alarms, rejected_tests
from simkit.forensics.core import TestResult

REGIONS = [{"region": "north", "score": 3.2, "stations": 40}]


def holm_only(**extra) -> TestResult:
    """A calibrated dip test whose shown p-value (0.06) does not reject while its tail p-value (0.001) does."""
    return TestResult("dip", .02, .004, 0.06, "simulated", "no anomaly detected",
                      {"calibration": "calibrated", "null_tail_p": 0.001, "null_draws": 100, **extra})


def test_the_rule_counts_a_test_holm_alone_rejects():
    dip = holm_only()
    assert holm_alarms([dip]) == ["dip"] and rejected_tests([dip]) == {"dip"}


def test_no_power_study_when_holm_alone_rejects():
    from simkit.forensics.power import why_no_power

    assert why_no_power(SimpleNamespace(n=10_000), [holm_only()], 20).startswith("some test rejects")


def test_the_limits_do_not_list_a_holm_rejected_test_as_without_an_anomaly():
    from simkit.report import sections

    section = sections.limits(None, False, SimpleNamespace(results=[holm_only()], could_not_reject={}, draws=100))
    assert not any("Tests without an anomaly" in getattr(block, "text", "") for block in section.blocks)


def test_the_follow_up_lists_include_a_holm_rejected_test():
    from simkit.report.sections import _follow_up

    blocks = _follow_up(SimpleNamespace(results=[holm_only(top_regions=REGIONS)]))
    assert [block.caption for block in blocks] == ["dip: regions to look at first"]


def test_the_command_table_points_to_the_regions_of_a_holm_rejected_test():
    from simkit.cli.forensics import format_table

    summary = {"source": "r.csv", "stations_used": 197, "leader": "b", "null": "simulated", "draws": 100,
               "stations_excluded": {}, "row_anomalies": {}}
    assert "look first at: north" in format_table([holm_only(top_regions=REGIONS)], summary)


def test_the_power_note_keeps_a_computed_power_table_after_the_holm_note():
    from simkit.cli.forensics import power_note

    note = power_note([holm_only()], {"rejection_rates": {"none": {"dip": .05}}, "rejections": {"none": {"dip": (1, 20)}},
                                      "stations_left_out": {}})
    lines = note.splitlines()
    assert lines[0] == "No shown p-value is at or below 0.05; Holm rejects dip on its tail p-value."
    assert "Rejection rates at 0.05 in simulated elections shaped like these data (same null):" in lines
    assert any(line.split() == ["dip", "0.05"] for line in lines)


def test_the_polls_holm_sentence_agrees_with_one():
    from simkit.report.verdicts import poll_verdicts

    row = {"pollster": "qc", "option": "inc", "published": 51.0, "official": 50.0, "gap": 1.0, "z": float("inf"),
           "p_value": None, "p_method": "census", "rounding": {"half_unit": 0.005, "consistent": False},
           "z_total": 1.0, "p_total": 0.3, "z_min": float("inf"), "z_max": float("inf"),
           "share_consistent": 0.0, "verdict": "rejected everywhere", "points_compared": 16, "ledger_points": 16}
    text = " ".join(verdict.text for verdict in poll_verdicts([row], "inc", {"qc": "QC"}))
    assert "1 stays anomalous against sampling error alone (p, not p total) after Holm's correction" in text
