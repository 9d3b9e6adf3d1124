"""The false-positive panel: every forensic test under each null on clean elections, and on Russia for contrast.

Clean elections (observers judged them competitive and clean; ``../shared/data/README.md``): Spain Congress
Nov 2019, Mexico presidential 2012, Bulgaria parliament Jul 2021, Poland presidential 2025 rounds 1 and 2.
Contrast: Russia Duma 2011 and presidential 2018. Each election is loaded with its preset, every test is run
under each null with ``--draws`` draws (seed ``--seed``), and one table per null shows, per election and test,
the p-value the test reports and the null z; a ``*`` marks a rejection at 0.05. Per election: rejections at 0.05
and the tests that still reject after Holm's correction at 0.05 over the calibrated tests, using the p-values the
family verdict reads (:func:`simkit.forensics.family_p_value`); under ``simulated`` each test reads its own
honest model (:data:`simkit.forensics.registry.SIMULATED_MODEL`), named in the table's title. Per test:
rejections over the clean elections. Uncalibrated tests (:mod:`simkit.forensics.calibration`) are marked
``(uncal.)``.

Under ``simulated``, a test whose Monte Carlo size on the clean elections is above nominal is read against the
systematic-error model of :mod:`simkit.forensics.empirical`, with the clean elections as its controls (marked
``(emp.)``): each election's p-value is computed as the library computes it, held out (an election is read
without itself and its country's elections; Russia against all five). :func:`calibrate` is that reading, from
the saved measurement alone.

``--write-calibration`` stores, per null, the clean elections' rejections by the reported (held-out) p-values
as the ``panel`` measurement of the calibration record (at 0.05) and as its ``panel_family`` measurement (at
0.05 / m, m the candidate family members, by the p-values the family verdict reads); under ``simulated`` also
the controls' errors, each test's fitted tau, the tests read empirically and the Monte Carlo counts that chose
them (:mod:`simkit.forensics.calibration`); run it with the full panel and all tests. ``--markdown`` prints the
tables as docs/forensics.md shows them.

Usage::

    python benchmarks/false_positives.py [--draws 200] [--null simulated[,flat,textbook]] [--tests ID,...]
                                         [--elections NAME,...] [--seed 1] [--json | --markdown]
                                         [--write-calibration] [--from-json FILE]

``--from-json FILE`` renders (and with ``--write-calibration`` records) a measurement saved by ``--json``. The
tests compute the estimates no table reads (:func:`measure`'s ``estimates``) only for ``--json``, whose records
keep every scalar figure of a result (``scalars``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from simkit.forensics import (alternative, calibration, election, family_p_value, holm_alarms, parse_tests, ran,
                              run_each)
from simkit.forensics.calibration_status import CALIBRATED, UNCALIBRATED
from simkit.forensics.empirical import Control, calibrated_reading, effect, fit_tau
from simkit.forensics.core import ALPHA, NULLS, TestResult
from simkit.schema import rejects
from simkit.cli.io import finite
from simkit.forensics.floor import cannot_reject, floor_lines
from simkit.forensics.registry import honest_model
from simkit.electorate.returns import load_returns

PANEL = ("spain-2019-11", "mexico-2012", "bulgaria-2021-07", "poland-2025-r1", "poland-2025-r2")
CONTRAST = ("russia-2011", "russia-2018")
#: each clean election's country: controls of the same country are held out together
COUNTRY = {"spain-2019-11": "Spain", "mexico-2012": "Mexico", "bulgaria-2021-07": "Bulgaria",
           "poland-2025-r1": "Poland", "poland-2025-r2": "Poland"}


def load_election(preset: str):
    """One election of the shared data by its preset (``special`` rows and inconsistent stations left out)."""
    return election(load_returns(preset=preset))


def measure(elections: list[str], nulls: list[str], tests: list[str], draws: int, seed: int,
            estimates: bool = True) -> dict:
    """null -> election -> {"stations", "seconds", "results": test -> record, or None for a test without a p-value
    there (n/a)}. ``p_value`` is the Monte
    Carlo one even for a test the record reads empirically (its ``monte_carlo_p``): :func:`calibrate` chooses the
    empirical tests and reads them from these, so a rerun reproduces the record. ``estimates`` False: the tests
    leave out what they estimate beside their p-value (:data:`simkit.forensics.registry.ESTIMATES_APART`: the
    Klimek fits' joint fit and bootstrap, the integer test's exact null under a simulated null), which only a
    record's ``scalars`` would hold: the tables and the calibration record read none of it."""
    table: dict = {null: {} for null in nulls}
    for name in elections:
        e = load_election(name)
        for null in nulls:
            start = time.perf_counter()
            results = run_each(e, tests, null, draws, seed, tolerate=True, estimates=estimates)
            table[null][name] = {
                "stations": e.n, "seconds": round(time.perf_counter() - start, 1),
                "fingerprint": calibration.data_fingerprint(e.registered, e.ballots),
                "results": {t: None if r is None or not ran(r) else {
                    "p_value": r.extra.get("monte_carlo_p", r.p_value), "null_z": r.extra.get("null_z"), "tail_p": r.extra.get("null_tail_p"),
                    "tail": r.extra.get("null_tail"), "calibration": r.extra.get("calibration"),
                    "statistic": r.statistic, "null_mean": r.extra.get("simulated_mean"),
                    "null_sd": r.extra.get("simulated_sd"), "null_draws": r.extra.get("null_draws"),
                    "scalars": {k: v for k, v in r.to_dict().items() if isinstance(v, (int, float, str))}}
                    for t, r in results.items()}}
            print(f"{name} under {null}: {table[null][name]['seconds']} s", file=sys.stderr)
    return table


def panel_counts(rows: dict, tests: list[str]) -> dict[str, tuple[int, int]]:
    """test -> (rejections at 0.05, clean elections where it ran)."""
    counts = {}
    for test in tests:
        ran = [rows[name]["results"][test] for name in PANEL if name in rows and rows[name]["results"][test]]
        counts[test] = (sum(rejects(r["p_value"]) for r in ran), len(ran))
    return counts


#: a record's keys (:func:`measure`, :func:`held_out_rows`) -> the ``extra`` keys of a result that hold the same
STORED_EXTRA = {"empirical_p": "empirical_p", "tail_p": "null_tail_p"}


def as_result(test: str, record: dict, calibrated: bool = True) -> TestResult:
    """A stored record as the library's result, for the library's family-wise reading of it
    (:func:`simkit.forensics.family_p_value`, :func:`simkit.forensics.holm_alarms`): its p-value, its empirical and
    tail p-values where it has them, and as its calibration status this measurement's judgement ``calibrated`` (not
    the status stored with the record). Its reference, null and verdict, which that reading does not use, are
    left empty."""
    extra = {key: record[stored] for stored, key in STORED_EXTRA.items() if record.get(stored) is not None}
    return TestResult(test, record.get("statistic"), float("nan"), record["p_value"], "", "",
                      {**extra, "calibration": CALIBRATED if calibrated else UNCALIBRATED})


def panel_family_counts(rows: dict, tests: list[str], family_size: int | None = None
                        ) -> dict[str, tuple[int, int, float]]:
    """test -> (clean elections with a family p-value at or below 0.05 / ``family_size`` (default: the number of
    tests), elections where it ran, that level): the calibration record's ``panel_family`` measurement."""
    level = ALPHA / (family_size or len(tests))
    counts = {}
    for test in tests:
        ran = [rows[name]["results"][test] for name in PANEL if name in rows and rows[name]["results"][test]]
        counts[test] = (sum(rejects(family_p_value(as_result(test, r)), level) for r in ran), len(ran), level)
    return counts


def panel_controls(rows: dict, tests: list[str]) -> dict[str, Control]:
    """The clean panel elections of ``rows`` as negative controls: data fingerprint -> their errors ``(d, s)``
    per test (:func:`simkit.forensics.empirical.effect`); empty when the rows carry no statistics (a null
    without draws, or a measurement saved before they were recorded)."""
    out = {}
    for name in PANEL:
        row = rows.get(name)
        if row is None or "fingerprint" not in row:
            continue
        results = row["results"]
        out[row["fingerprint"]] = Control(COUNTRY[name], name, {
            t: effect(t, results[t]["statistic"], results[t]["null_mean"], results[t]["null_sd"], row["stations"])
            for t in tests if results[t] and results[t].get("null_sd") is not None})
    return out


def held_out_rows(rows: dict, empirical_tests: frozenset[str], controls: dict[str, Control],
                  direction: Callable[[str], str] = alternative) -> dict:
    """``rows`` with each empirical test's p-value read against the controls, held out as the library reads it
    (:func:`simkit.forensics.empirical.calibrated_reading`, as :mod:`simkit.forensics` reads a result), in the
    test's ``direction`` (the registry's by default): ``p_value`` becomes the empirical one, ``monte_carlo_p``
    keeps the Monte Carlo one."""
    out = {}
    for name, row in rows.items():
        results = {}
        for test, r in row["results"].items():
            reading = None if not r or test not in empirical_tests else calibrated_reading(
                test, r["statistic"], r.get("null_mean"), r.get("null_sd"), row["stations"], controls, row["fingerprint"],
                direction(test))
            results[test] = r if reading is None else {**r, "monte_carlo_p": r["p_value"],
                                                       "p_value": reading["empirical_p"], **reading}
        out[name] = {**row, "results": results}
    return out


def calibrate(rows: dict, tests: list[str], null: str) -> dict:
    """The calibration of one null's panel measurement (:mod:`simkit.forensics.calibration`): the raw Monte
    Carlo counts, the tests they send to the empirical reading (under ``simulated``, when the rows carry
    statistics), the controls and each test's ``tau`` on all of them, the held-out rows, their ``panel`` and
    ``panel_family`` counts and the tests left uncalibrated. The record's ``simulated`` measurement (honest
    simulations, Monte Carlo p-values) judges the tests read by their Monte Carlo p-values."""
    simulated = {t: c for t, c in calibration.measured(null).get("simulated", {}).items() if t in tests}
    by_simulations = {t for t, c in simulated.items() if calibration.size_above_nominal(*c)}

    def judged(table: dict, exempt: frozenset[str]) -> tuple[dict, dict, set[str]]:
        panel = panel_counts(table, tests)
        others = {t for t in tests if calibration.size_above_nominal(*panel[t])
                  or (t in by_simulations and t not in exempt)}
        candidates = [t for t in tests if t not in others and panel[t][1] > 0]  # a test n/a everywhere is none
        family = panel_family_counts(table, tests, max(1, len(candidates)))
        return panel, family, others | {t for t in tests if calibration.size_above_nominal(*family[t])}

    raw_panel, raw_family, raw_flagged = judged(rows, frozenset())
    controls = panel_controls(rows, tests) if null == "simulated" else {}
    empirical_tests = frozenset(t for t in raw_flagged if any(t in c.errors for c in controls.values()))
    reported = held_out_rows(rows, empirical_tests, controls)
    panel, family, flagged = judged(reported, empirical_tests)
    tau = {t: fit_tau([c.errors[t][0] for c in controls.values() if t in c.errors],
                      [c.errors[t][1] for c in controls.values() if t in c.errors])
           for t in tests if any(t in c.errors for c in controls.values())}
    return {"raw": {"raw_panel": raw_panel, "raw_panel_family": raw_family}, "empirical": empirical_tests,
            "controls": controls, "tau": tau, "rows": reported, "panel": panel, "panel_family": family,
            "flagged": frozenset(flagged)}


def _cell(record: dict | None) -> str:
    if record is None:
        return "n/a"
    z = record["null_z"]
    mark = "*" if rejects(record["p_value"]) else ""
    p = record["p_value"]
    return (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}") + mark + ("" if z is None else f" ({z:+.1f})")


def family_alarms(row: dict, flagged: frozenset[str]) -> list[str]:
    """Holm alarms at 0.05 over the calibrated tests (all but ``flagged``) of one election's records
    (:func:`simkit.forensics.holm_alarms`)."""
    return holm_alarms([as_result(t, r, t not in flagged) for t, r in row["results"].items() if r])


def models_note(tests: list[str], null: str) -> str:
    """" Honest models: ..." naming each model's tests under ``null`` (empty under ``textbook``)."""
    by_model: dict[str, list[str]] = {}
    for test in tests:
        model = honest_model(test, null)
        if model is not None:
            by_model.setdefault(model, []).append(test)
    return "" if not by_model else " Honest models: " + "; ".join(
        f"{model} for {', '.join(names)}" for model, names in by_model.items()) + "."


def render(table: dict, tests: list[str], draws: int, seed: int, markdown: bool) -> str:
    out = []
    for null, rows in table.items():
        read = calibrate(rows, tests, null)
        flagged, empirical_tests, rows = read["flagged"], read["empirical"], read["rows"]
        label = {t: t + (" (emp.)" if t in empirical_tests else "") + (" (uncal.)" if t in flagged else "")
                 for t in tests}
        header = ["election (stations)"] + [label[t] for t in tests] + ["rejections: calibrated (all)",
                                                                        "Holm alarms"]
        body = []
        for name, row in rows.items():
            ran = {t: r for t, r in row["results"].items() if r}
            rejected = [t for t, r in ran.items() if rejects(r["p_value"])]
            calibrated = [t for t in ran if t not in flagged]
            body.append([f"{name} ({row['stations']:,})"] + [_cell(row["results"][t]) for t in tests]
                        + [f"{len([t for t in rejected if t not in flagged])} of {len(calibrated)} "
                           f"({len(rejected)} of {len(ran)})", ", ".join(family_alarms(row, flagged)) or "none"])
        counts = read["panel"]
        body.append(["clean elections rejecting"] + [f"{k} of {n}" for k, n in (counts[t] for t in tests)] + ["", ""])
        title = (f"Null `{null}`, {draws} draws, seed {seed}: p-value (null z); * rejects at {ALPHA:g}; Holm at "
                 f"{ALPHA:g} over the calibrated tests with the p-values the family verdict reads; uncalibrated "
                 f"tests: {', '.join(sorted(flagged)) or 'none'} (simkit/forensics/calibration.py).")
        if empirical_tests:
            k = len(read["controls"])
            title += (f" Tests marked (emp.) report the p-value calibrated empirically on the clean elections "
                      f"({k} controls; held out, a control is read without itself and its country's "
                      f"elections, so against k = {k} minus those; simkit/forensics/empirical.py); their null z is the Monte Carlo one. Fitted "
                      f"tau on all controls: " + ", ".join(f"{t} {read['tau'][t]:.3g}" for t in tests
                                                         if t in empirical_tests) + ".")
        shown = floor_lines({null: {t: floor for t, floor in recorded_floors(tests, [null], draws)[null].items()
                                    if t not in read["empirical"]}}, draws)  # (emp.) cells are not Monte Carlo
        if shown:
            title += f" {shown[0][0].upper()}{shown[0][1:]}."
        out.append(title + models_note(tests, null))
        if markdown:
            out.append("")
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(cells) + " |" for cells in body]
        else:
            widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
            out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in [header] + body]
        out.append("")
    return "\n".join(out)


def write_calibration(table: dict, tests: list[str], command: str) -> None:
    """Store each null's held-out ``panel`` and ``panel_family`` counts and, under a null with controls, the
    empirical calibration (:func:`simkit.forensics.calibration.record_empirical`)."""
    for null, rows in table.items():
        read = calibrate(rows, tests, null)
        if read["controls"]:
            calibration.record_empirical(null, sorted(read["empirical"]), read["controls"], read["tau"],
                                         read["raw"], command)
        calibration.record(null, "panel", read["panel"], command)
        calibration.record(null, "panel_family", read["panel_family"], command)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--null", default="simulated", help=f"comma-separated nulls of {NULLS}")
    p.add_argument("--tests", help="comma-separated test ids (default: all but the descriptive fingerprint)")
    p.add_argument("--elections", help=f"comma-separated presets (default: {', '.join(PANEL + CONTRAST)})")
    p.add_argument("--seed", type=int, default=1)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true")
    p.add_argument("--write-calibration", action="store_true",
                   help="store the clean elections' rejections as the calibration record's panel measurement")
    p.add_argument("--from-json", type=argparse.FileType(), metavar="FILE",
                   help="render (and record) a measurement saved by --json instead of measuring again")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.load(args.from_json)
        table, draws, seed = saved["tables"], saved["draws"], saved["seed"]
        nulls = list(table)
        tests = list(next(iter(next(iter(table.values())).values()))["results"])
        command = saved.get("command") or (f"python benchmarks/false_positives.py --draws {draws} --null "
                                           f"{','.join(table)} --seed {seed} --tests {','.join(tests)}")
    else:
        nulls = [n.strip() for n in args.null.split(",")]
        if unknown := [n for n in nulls if n not in NULLS]:
            p.error(f"--null: unknown {unknown} (choose from {NULLS})")
        tests = [t for t in parse_tests(args.tests) if t != "fingerprint"]
        elections = args.elections.split(",") if args.elections else list(PANEL + CONTRAST)
        draws, seed = args.draws, args.seed
    floors = recorded_floors(tests, nulls, draws)
    if refused := floor_check(floors, floors, draws, args.write_calibration):
        return refused
    if not args.from_json:
        table = measure(elections, nulls, tests, draws, seed, args.json)  # estimates: only --json writes them
        command = (f"python benchmarks/false_positives.py --draws {draws} --null {args.null} --seed {seed}"
                   + (f" --tests {args.tests}" if args.tests else "")
                   + (f" --elections {args.elections}" if args.elections else ""))
    if args.write_calibration:
        write_calibration(table, tests, command)
    if args.json:
        print(json.dumps(finite({"command": command, "draws": draws, "seed": seed, "alpha": ALPHA, "panel": PANEL,
                                 "tests": tests, "tables": table,
                                 "cannot_reject": {null: list(floors[null]) for null in nulls}})))
    else:
        print(render(table, tests, draws, seed, args.markdown))
    return 0


def floor_check(floored: dict[str, dict[str, float]], recorded: dict[str, dict[str, float]], draws: int,
                write_calibration: bool) -> int:
    """A panel's floor rule (this one's and ``power_panel.py``'s): 2 (refused, on stderr) when
    ``write_calibration`` would record the size of a test of ``recorded`` (null -> test -> floor: the tests
    whose counts the calibration record would store that cannot reject with ``draws`` draws), whose record would
    count none of its rejections: a false size; else 0, with a warning for each null of ``floored`` (null -> test
    -> floor: the tests whose counts the table shows that cannot reject)."""
    refused = floor_lines(recorded, draws)
    if refused and write_calibration:
        print(f"--draws: {draws}: {'; '.join(refused)}: the calibration record would count none of their "
              "rejections", file=sys.stderr)
        return 2
    for line in floor_lines(floored, draws):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def recorded_floors(tests: list[str], nulls: list[str], draws: int) -> dict[str, dict[str, float]]:
    """null -> test -> floor of the ``tests`` that cannot reject at 0.05 by their Monte Carlo p-values (the ones
    this panel records and counts, :func:`measure`) with ``draws`` null draws (:mod:`simkit.forensics.floor`)."""
    return {null: cannot_reject(tests, null, draws, monte_carlo=True) for null in nulls}


if __name__ == "__main__":
    raise SystemExit(main())
