"""Size and power of every forensic test on elections shaped like the clean panel, under one null.

For each panel election (presets as in ``benchmarks/false_positives.py``): ``--replicates`` honest elections
drawn from the hierarchical honest model fitted to it, and the same with each planted manipulation of
:data:`simkit.forensics.power.PLANTS` (stuffing at 10% of stations, the same confined to whole districts,
coerced turnout at 10% of stations, rounded protocols at 2%); the tests run under ``--null`` with ``--draws``
draws, refitted to each planted election (under ``simulated`` each test's own honest model, the conditional
or the hierarchical one). One table: test × plant -> rejections at 0.05 over all replicates of
all elections (the ``none`` column is the size). Under ``simulated`` a test read empirically
(:mod:`simkit.forensics.empirical`) counts its empirically calibrated p-value: simulated and planted elections
are no controls, so each is read against all of them. ``--write-calibration`` stores the ``none`` column as the
``simulated`` measurement of the calibration record (:mod:`simkit.forensics.calibration`), which judges the
tests read by their Monte Carlo p-values: only theirs are written; a test read empirically keeps the Monte Carlo
count that chose it.

``--strengths 2,4`` measures, instead of every plant at its stated strength, the size and the plants with a
strength (:data:`SWEPT_PLANTS`, fields :data:`simkit.forensics.power.STRENGTH_FIELDS`: stuffing's theta, the coerced share) at each multiple
of it, on the same honest elections and stations at every strength; a column ``stuffing x2`` is the stuffing
with theta 0.2. (``--write-calibration`` is refused with it.)

Usage::

    python benchmarks/power_panel.py [--elections NAME,...] [--replicates 4] [--draws 39] [--null simulated]
                                     [--tests ID,...] [--seed 1] [--json | --markdown] [--write-calibration]
                                     [--from-json FILE] [--strengths X,...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from false_positives import PANEL, floor_check, load_election, models_note  # the sibling script (run as benchmarks/power_panel.py)
from simkit.forensics import calibration, parse_tests
from simkit.cli.io import finite
from simkit.forensics.floor import cannot_reject
from simkit.forensics.power import PLANTS, STRENGTH_FIELDS, planted_rejections, strengthened


#: the plants ``--strengths`` strengthens (district_stuffing's strength is stuffing's theta: left out for time)
SWEPT_PLANTS = ("stuffing", "coercion")


def column(plant: str, strength: float) -> str:
    """The table's column of ``plant`` at ``strength`` (the plant's id at its stated strength)."""
    return plant if strength == 1 else f"{plant} x{strength:g}"


def measure(elections: list[str], tests: list[str], null: str, draws: int, replicates: int, seed: int,
            strengths: list[float] | None = None) -> dict:
    """election -> column -> test -> [rejections, n]: every plant at its stated strength, or with
    ``strengths`` the size, and stuffing and coercion at each strength."""
    runs = ([(None, 1.0)] if strengths is None else
            [(("none",), 1.0)] + [(SWEPT_PLANTS, strength) for strength in strengths])
    table = {}
    for name in elections:
        start = time.perf_counter()
        e = load_election(name)
        table[name] = {column(plant, strength): {t: list(v) for t, v in row.items()}
                       for plants, strength in runs for plant, row in planted_rejections(
                           e, tests, null=null, draws=draws, replicates=replicates, seed=seed, plants=plants,
                           strength=strength).items()}
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return table


def describe(name: str) -> str:
    """A column's plant, with its strength (:func:`column`): the stated plant, then the strengthened field."""
    plant, _, factor = name.partition(" x")
    if not factor:
        return PLANTS[plant][0]
    field = STRENGTH_FIELDS[plant]
    stated, used = getattr(PLANTS[plant][1], field), getattr(strengthened(plant, float(factor)), field)
    return f"{PLANTS[plant][0]}; here {field} {stated:g} x{factor} = {used:g} instead"


def parse_strengths(text: str) -> list[float]:
    """``--strengths``: positive multiples, each leaving every swept field valid (a coerced share at most 1);
    raises ValueError naming the problem."""
    try:
        strengths = [float(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--strengths: {text!r} is not a comma-separated list of numbers") from None
    for strength in strengths:
        if not strength > 0:
            raise ValueError(f"--strengths: {strength:g} is not a positive multiple")
        for plant in SWEPT_PLANTS:
            field = STRENGTH_FIELDS[plant]
            try:
                strengthened(plant, strength)
            except ValueError:  # the mechanism's own validation (pydantic's error is a ValueError)
                raise ValueError(f"--strengths: {strength:g} x {plant}'s {field} "
                                 f"{getattr(PLANTS[plant][1], field):g} is out of its range") from None
    return strengths


def pooled(table: dict, plant: str, test: str) -> tuple[int, int]:
    """(rejections, runs) of ``test`` under ``plant`` over every election of ``table``."""
    pairs = [table[name][plant][test] for name in table]
    return sum(k for k, _ in pairs), sum(n for _, n in pairs)


def render(table: dict, tests: list[str], header_note: str, markdown: bool) -> str:
    plants = list(next(iter(table.values())))
    rows = [[t] + [f"{k}/{n}" for k, n in (pooled(table, p, t) for p in plants)] for t in tests]
    head = ["test"] + [("size (" + p + ")") if p == "none" else p for p in plants]
    lines = [header_note, ""] + [f"- `{p}`: {describe(p)}" for p in plants] + [""]
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + rows]
    return "\n".join(lines)


def panel_floors(tests: list[str], null: str, draws: int) -> tuple[dict, dict]:
    """The tests that cannot reject under ``null`` with ``draws`` draws by the p-values this table counts
    (:func:`simkit.forensics.floor.cannot_reject`: a test read empirically counts its empirically calibrated
    p-value, with no floor), and those of them whose size ``--write-calibration`` would record (a test read
    empirically keeps its recorded count): each as null -> test -> floor, for
    :func:`false_positives.floor_check`."""
    floored = cannot_reject(tests, null, draws)
    recorded = {t: floor for t, floor in floored.items() if t not in calibration.empirical_tests(null)}
    return {null: floored}, {null: recorded}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elections", help=f"comma-separated presets (default: {', '.join(PANEL)})")
    p.add_argument("--replicates", type=int, default=4)
    p.add_argument("--draws", type=int, default=39)
    p.add_argument("--null", default="simulated")
    p.add_argument("--tests", help="comma-separated test ids (default: all but the fingerprint)")
    p.add_argument("--seed", type=int, default=1)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true")
    p.add_argument("--write-calibration", action="store_true")
    p.add_argument("--from-json", type=argparse.FileType(), metavar="FILE")
    p.add_argument("--strengths", help="comma-separated multiples of the stated strengths (docstring)")
    args = p.parse_args(argv)
    try:
        strengths = parse_strengths(args.strengths) if args.strengths else None
    except ValueError as error:
        p.error(str(error))
    if strengths and args.write_calibration:
        p.error("--write-calibration records the stated plants' size: not with --strengths")
    if args.from_json:
        saved = json.load(args.from_json)
        table, tests, null, command = saved["table"], saved["tests"], saved["null"], saved["command"]
        draws = saved.get("draws")
        if draws is None and args.write_calibration:
            print("--from-json: the measurement does not say its draws: the calibration record could count none "
                  "of its rejections unseen; measure again", file=sys.stderr)
            return 2
    else:
        tests = [t for t in parse_tests(args.tests) if t != "fingerprint"]
        elections = args.elections.split(",") if args.elections else list(PANEL)
        null, draws = args.null, args.draws
    if draws is not None and (refused := floor_check(*panel_floors(tests, null, draws), draws,
                                                     args.write_calibration)):
        return refused
    if not args.from_json:
        table = measure(elections, tests, null, draws, args.replicates, args.seed, strengths)
        command = (f"python benchmarks/power_panel.py --elections {','.join(elections)} --replicates "
                   f"{args.replicates} --draws {args.draws} --null {null} --seed {args.seed}"
                   + (f" --tests {args.tests}" if args.tests else "")
                   + (f" --strengths {args.strengths}" if args.strengths else ""))
    if args.write_calibration:
        # this table counts the p-values the tests report; the measurement is of Monte Carlo p-values, so a test
        # read empirically keeps the Monte Carlo count that chose it (calibration's docstring)
        empirical, kept = calibration.empirical_tests(null), calibration.measured(null).get("simulated", {})
        calibration.record(null, "simulated", {
            **{t: kept[t] for t in tests if t in empirical and t in kept},
            **{t: pooled(table, "none", t) for t in tests if t not in empirical}}, command)
    if args.json:
        print(json.dumps(finite({"command": command, "null": null, "draws": draws, "tests": tests, "table": table})))
    else:
        note = (f"Rejections at 0.05 under the `{null}` null, over the replicates of {', '.join(table)} "
                f"(`{command}`).{models_note(tests, null)}")
        print(render(table, tests, note, args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
