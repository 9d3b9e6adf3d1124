"""Empirical calibration against clean control elections (simkit.forensics.empirical): the t-law p-value, its
size on synthetic panels, the held-out controls, and the benchmark's reading of a saved panel."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from benchmarks.false_positives import COUNTRY, PANEL, calibrate, held_out_rows, panel_controls
from simkit.data import data_dir
from simkit.electorate.returns import load_returns
from simkit.forensics import election, family_p_value, holm_alarms, is_calibrated
from simkit.forensics.calibration import controls, data_fingerprint
from simkit.forensics.core import TestResult
from simkit.forensics.empirical import (Control, calibrated_p, calibrated_reading, effect, empirical_p, fit_tau,
                                       held_out)


def test_with_no_null_spread_the_p_value_is_students_t_of_d_over_the_controls_rms():
    d_controls = [0.03, -0.05, 0.01, 0.04, -0.02]
    rms = np.sqrt(np.mean(np.square(d_controls)))
    for alternative, tail in (("greater", stats.t(5).sf(0.09 / rms)), ("less", stats.t(5).cdf(0.09 / rms)),
                              ("two-sided", 2 * stats.t(5).sf(0.09 / rms))):
        p, tau, k = empirical_p(0.09, 0.0, d_controls, [0.0] * 5, alternative)
        assert (tau, k) == (pytest.approx(rms), 5)
        assert p == pytest.approx(tail, rel=1e-12)


def test_tau_is_the_maximum_likelihood_estimate():
    d, s = np.array([0.3, -1.2, 0.8, 0.1]), np.array([0.2, 0.5, 0.1, 0.4])
    tau = fit_tau(d, s)
    grid = np.linspace(0, 2, 20001)
    v = grid[:, None] ** 2 + s ** 2
    best = grid[np.argmin(np.sum(np.log(v) + d ** 2 / v, axis=1))]
    assert tau == pytest.approx(best, abs=2e-4)
    assert fit_tau([0.01, -0.01], [1.0, 1.0]) == 0.0  # errors well inside the null spread: no systematic error


@pytest.mark.parametrize("ratio", [0.0, 0.3])
def test_size_on_synthetic_panels_is_nominal(ratio):
    """Controls and an election under test drawn from d ~ N(0, tau^2 + s^2) with s = ratio * tau (about the
    panel's ratio for the tests read empirically, whose clean null z are 2..7): the two-sided rejection rate at
    0.05 over 2,000 panels of five controls is within 3 binomial SE of 0.05. (With s as large as tau the
    procedure is conservative: the t law's k degrees of freedom then overstate the uncertainty of tau.)"""
    rng = np.random.default_rng(2014)
    panels, k = 2000, 5
    rejections = 0
    for _ in range(panels):
        s = ratio * rng.uniform(0.5, 1.5, size=k + 1)
        d = rng.normal(0.0, np.sqrt(1.0 + s ** 2))
        rejections += empirical_p(d[-1], s[-1], d[:-1], s[:-1], "two-sided")[0] < 0.05
    se = np.sqrt(0.05 * 0.95 / panels)
    assert abs(rejections / panels - 0.05) <= 3 * se, rejections / panels


def test_an_election_that_is_a_control_is_read_without_itself_and_its_country():
    controls = {"es": Control("Spain", "spain", {"t": (0.1, 0.0)}), "p1": Control("Poland", "poland-r1", {"t": (
        -0.2, 0.0)}), "p2": Control("Poland", "poland-r2", {"t": (0.3, 0.0)}), "mx": Control("Mexico", "mexico", {})}
    assert held_out(controls, "p2") == ["es", "mx"]
    assert held_out(controls, "es") == ["p1", "p2", "mx"]
    assert held_out(controls, "new") == ["es", "p1", "p2", "mx"]
    reading = calibrated_p("t", 0.5, 0.0, controls, "p1", "greater")
    assert reading["empirical_k"] == 1 and reading["empirical_controls"] == ["spain"]  # mx did not measure t
    assert calibrated_p("t", 0.5, 0.0, {"es": controls["es"]}, "es", "greater") is None


def test_a_reading_from_the_null_s_moments_is_the_calibrated_p_of_their_effect():
    """The one reading the library and the panel script share: from (statistic, null mean, null SD), the
    held-out calibrated p of :func:`effect`'s (d, s); nothing when the null's moments are unknown."""
    controls = {"es": Control("Spain", "spain", {"integer_percent": (0.01, 0.001)}),
                "mx": Control("Mexico", "mexico", {"integer_percent": (-0.02, 0.002)})}
    reading = calibrated_reading("integer_percent", 60.0, 40.0, 2.0, 1000, controls, "new", "greater")
    assert reading == calibrated_p("integer_percent", 0.02, 0.002, controls, "new", "greater")
    assert calibrated_reading("integer_percent", 60.0, None, 2.0, 1000, controls, "new", "greater") is None
    assert calibrated_reading("integer_percent", 60.0, 40.0, None, 1000, controls, "new", "greater") is None


def test_counts_are_read_per_station_and_scale_free_statistics_as_they_are():
    assert effect("integer_percent", 50.0, 0.0, 25.0, 500) == (0.1, 0.05)
    assert effect("klimek_ml", 0.02, 0.01, 0.001, 1000) == (0.01, 0.001)  # a fraction of stations
    assert effect("correlation", 0.2, 0.1, 0.01, 1000) == (pytest.approx(0.1), 0.01)


def test_fingerprint_depends_on_the_data_not_the_order_of_the_rows():
    registered, ballots = np.array([500, 700, 300]), np.array([250, 400, 100])
    key = data_fingerprint(registered, ballots)
    assert data_fingerprint(registered[::-1], ballots[::-1]) == key
    assert data_fingerprint(registered, ballots + np.array([0, 0, 1])) != key


def _rows(errors: dict[str, list[float]], p_values: dict[str, list[float]]) -> dict:
    """Panel rows as ``benchmarks/false_positives.py --json`` stores them, with null SD 0.001."""
    return {name: {"stations": 1000, "fingerprint": f"fp{i}", "results": {t: {
        "p_value": p_values[t][i], "tail_p": p_values[t][i], "null_z": 0.0, "statistic": errors[t][i],
        "null_mean": 0.0, "null_sd": 0.001} for t in errors}} for i, name in enumerate(PANEL)}


def test_the_benchmark_reads_a_monte_carlo_uncalibrated_test_empirically_and_held_out():
    """A test whose Monte Carlo p-values reject on every clean election (errors of a few hundredths against a
    null SD of 0.001) is read empirically; each election's p-value comes from the other countries' errors, and
    that held-out size is nominal here, so the test is calibrated and no election raises a Holm alarm. A test
    with nominal Monte Carlo size keeps its p-values."""
    errors = {"correlation": [0.03, -0.04, 0.02, -0.05, 0.045], "dip": [0.0] * 5}
    rows = _rows(errors, {"correlation": [0.005] * 5, "dip": [0.3, 0.6, 0.2, 0.9, 0.5]})
    read = calibrate(rows, list(errors), "simulated")
    assert read["empirical"] == {"correlation"} and read["flagged"] == frozenset()
    assert {c.country for c in read["controls"].values()} == {COUNTRY[name] for name in PANEL}
    poland_r2 = read["rows"]["poland-2025-r2"]["results"]["correlation"]
    assert poland_r2["empirical_k"] == 3 and poland_r2["monte_carlo_p"] == 0.005
    d_others = [0.03, -0.04, 0.02]  # Spain, Mexico, Bulgaria
    expected = empirical_p(0.045, 0.001, d_others, [0.001] * 3, "two-sided")[0]
    assert poland_r2["p_value"] == pytest.approx(expected)
    assert read["rows"]["spain-2019-11"]["results"]["dip"]["p_value"] == 0.3
    assert read["panel"]["correlation"] == (0, 5)
    assert held_out_rows(rows, frozenset(), panel_controls(rows, list(errors))) == rows


def test_an_empirically_calibrated_test_enters_the_family_by_its_empirical_p_value():
    def result(status, **extra):
        return TestResult(test="correlation", statistic=0.0, reference=0.0, p_value=1e-4, null="simulated",
                          verdict="", extra={"calibration": status, "null_tail_p": 1e-9, **extra})

    inside = result("calibrated (empirical, 4 clean elections)", empirical_p=1e-4)
    outside = result("uncalibrated (empirical, 4 clean elections)", empirical_p=1e-4)
    assert is_calibrated(inside.extra["calibration"]) and not is_calibrated(outside.extra["calibration"])
    assert family_p_value(inside) == 1e-4 and family_p_value(outside) is None
    assert holm_alarms([inside, outside]) == ["correlation"]


MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'


def test_cli_shows_the_empirical_reading_and_labels_its_p_value(tmp_path, capsys):
    """An election that is no control is read against every recorded control: the JSON keeps the Monte Carlo
    p-value beside the empirical one, and the table labels the p-value with its calibration."""
    from forensics_helpers import honest_dataset
    from simkit.cli.main import main
    from simkit.forensics import calibration

    empirical = sorted(calibration.empirical_tests("simulated"))
    assert empirical, "the calibration record names no test read empirically"
    test = "correlation" if "correlation" in empirical else empirical[0]
    ds = honest_dataset(400, seed=52)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in zip(
        ds["registered"].values, ds["ballots"].values, ds["votes"].values)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    args = ["forensics", str(tmp_path / "r.csv"), "--map", str(tmp_path / "m.toml"), "--tests", test,
            "--null", "simulated", "--draws", "19", "--power", "0", "--quiet"]
    assert main(args + ["--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["tests"][0]
    k = len(calibration.controls("simulated"))
    assert entry["empirical_k"] == k and entry["p_value"] == entry["empirical_p"]
    assert 0 < entry["monte_carlo_p"] <= 1 and entry["empirical_tau"] >= 0
    assert entry["calibration"].endswith(f"(empirical, {k} clean elections)")
    assert "smallest_p" not in entry  # a Student-t p-value: 19 draws put no floor under it
    assert main(args) == 0
    assert f"(empirical, {k} clean elections)]" in capsys.readouterr().out


@pytest.mark.parametrize("preset", PANEL)
def test_each_panel_preset_is_recognised_as_its_recorded_control(preset):
    """Held out means recognised: each clean panel election, loaded by its preset, has the data fingerprint the
    record keeps for it (a new version of the file would be read against itself: this test says so first)."""
    if data_dir() is None:
        pytest.skip("shared data absent (set SIMKIT_DATA or place ../shared/data)")
    e = election(load_returns(preset=preset))
    recorded = {c.election: key for key, c in controls("simulated").items()}
    assert data_fingerprint(e.registered, e.ballots) == recorded[preset]


def test_the_benchmark_reads_its_records_family_wise_through_the_library(monkeypatch):
    """The panel's family p-values and Holm alarms were the benchmark's own copies of the library's rules on the
    saved records; they are the library's (:func:`simkit.forensics.family_p_value`, :func:`holm_alarms`): a record
    reads its empirical p-value, else its tail one, else its Monte Carlo one, and the tests the panel flags are
    left out of Holm's family."""
    import benchmarks.false_positives as panel

    row = {"results": {"dip": {"p_value": 0.04, "tail_p": 0.001}, "spikes": {"p_value": 0.01, "tail_p": None},
                       "correlation": {"p_value": 0.01, "tail_p": 1e-6, "empirical_p": 0.2},
                       "zero_five": {"p_value": 1e-5}, "last_digit": {"p_value": None}, "sawtooth": None}}
    assert panel.family_alarms(row, frozenset({"zero_five"})) == ["dip", "spikes"]
    assert [family_p_value(panel.as_result(t, r)) for t, r in row["results"].items() if r] == [
        0.001, 0.01, 0.2, 1e-5, None]
    reads = []
    monkeypatch.setattr(panel, "holm_alarms", lambda results: reads.append([r.test for r in results]) or [])
    monkeypatch.setattr(panel, "family_p_value", lambda result: reads.append(result.test) or None)
    assert panel.family_alarms(row, frozenset()) == []
    assert panel.panel_family_counts({"spain-2019-11": row}, ["dip"]) == {"dip": (0, 1, 0.05)}
    assert reads == [["dip", "spikes", "correlation", "zero_five", "last_digit"], "dip"]
