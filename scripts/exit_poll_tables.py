"""Regenerate the exit-poll tables of docs/exit-polls.md and statements from `simkit compare --json`.

    python scripts/exit_poll_tables.py                  # run the commands (slow: full replicates), rewrite the page
    python scripts/exit_poll_tables.py --from-json FLAGSHIP.json SCENARIOS.json SENSITIVITY.json  # saved outputs

The commands run are::

    simkit compare configs/kazakhstan-2022.toml --json --history configs/kazakhstan-2015.toml \
        configs/kazakhstan-2019.toml --plot docs   # its poll_gaps.png saved as docs/kazakhstan-2022-exit-polls.png
    simkit compare configs/kazakhstan-2022-scenarios.toml --json --ledger-points 0
    simkit compare configs/kazakhstan-2022-poll-sensitivity.toml --json --replicates 300

Everything between ``<!-- exit-poll-tables:begin -->`` and ``<!-- exit-poll-tables:end -->`` in docs/exit-polls.md
(``--page``) is replaced; numbers in the plain-words statements come from the same JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from simkit.polls.figures import consistent
from simkit.polls.ledger import ledger_share
from simkit.polls.statistics import tail_p_standard_error
from simkit.report.verdicts import fits_all
from simkit.schema import ALPHA, rejects

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- exit-poll-tables:begin -->", "<!-- exit-poll-tables:end -->"
FLAGSHIP = ["configs/kazakhstan-2022.toml", "--json", "--history", "configs/kazakhstan-2015.toml",
            "configs/kazakhstan-2019.toml"]
#: the flagship's dot plot (``--plot DIR`` writes ``DIR/poll_gaps.png``; it is renamed to this)
FIGURE = REPO / "docs" / "kazakhstan-2022-exit-polls.png"
SCENARIOS = ["configs/kazakhstan-2022-scenarios.toml", "--json", "--ledger-points", "0"]
SENSITIVITY = ["configs/kazakhstan-2022-poll-sensitivity.toml", "--json", "--replicates", "300"]
#: a z the JSON holds as null: infinite, the z of a census figure (every station's count or every voter read),
#: whose simulated gap is the same in every replicate
CENSUS = "n/a (census: no sampling error)"


def run(arguments: list[str]) -> dict:
    command = [sys.executable, "-c", "import sys; from simkit.cli.main import main; sys.exit(main(sys.argv[1:]))",
               "compare", *arguments]
    completed = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout)


def number(value, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def z_text(value) -> str:
    """A row's z; null (infinite: a census) as :data:`CENSUS`."""
    return CENSUS if value is None else f"{value:+.1f}"


def z_range(row: dict) -> str:
    """A row's joint-ledger z range; a census's (null ends) as :data:`CENSUS`."""
    return CENSUS if row["z_min"] is None or row["z_max"] is None else f"{row['z_min']:+.1f} to {row['z_max']:+.1f}"


def p_text(value) -> str:
    return "—" if value is None else (f"{value:.2g}" if value >= 1e-3 else f"{value:.0e}")


def borderline(row: dict) -> bool:
    """Whether a row's simulated sampling-only p lies within 2 Monte Carlo SE
    (:func:`~simkit.polls.statistics.tail_p_standard_error`, over the replicates in which the poll got an answer) of
    ALPHA, on either side: another run (another seed, or more replicates) may call it the other way."""
    se = tail_p_standard_error(row)
    return se is not None and abs(row["p_value"] - ALPHA) < 2 * se


def sampling_p(row: dict) -> str:
    """A row's sampling-only p in words. A simulated p with its Monte Carlo SE
    (:func:`~simkit.polls.statistics.tail_p_standard_error`), and "borderline" when :func:`borderline`; a p from the
    normal tail beyond the replicates says so; a census figure has none (its rounding decides)."""
    p = row["p_value"]
    if p is None:
        return "beyond its rounding"
    se = tail_p_standard_error(row)
    if se is None:
        return f"p {p_text(p)} from the normal tail"
    return f"p {p_text(p)}, Monte Carlo SE {se:.1g}" + (", borderline" if borderline(row) else "")


def name_of(pollster: str, labels: dict) -> str:
    return labels.get(pollster, pollster)


def baseline_table(report: dict) -> list[str]:
    counts = report.get("baseline_table") or {}
    lines = [f"The table holds {counts.get('polls')} polls from {counts.get('countries')} countries; "
             f"{counts.get('baseline_polls')} polls from {counts.get('baseline_countries')} countries form the "
             "baseline.", "","| option class | from class | figures | polls | countries | mean error | RMS error (non-sampling SD) |",
             "|---|---|---|---|---|---|---|"]
    for entry in report["baseline"]:
        lines.append(f"| {entry['option_class']} | {entry['from_class']} | {entry['figures']} | {entry['polls']} | "
                     f"{entry['countries']} | {number(entry['mean_error'], '+.2f')} | "
                     f"{number(entry['nonsampling_sd'], '.2f')} |")
    return lines


def rows_table(report: dict, labels: dict) -> list[str]:
    lines = ["| pollster | option | published | official | gap | sampling SD | z | z total | p total | "
             "joint ledger: z range, share consistent |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        if row["option"] not in ("tokayev", "against_all", "turnout"):
            continue
        ledger = "—" if row.get("verdict") is None else (
            f"{z_range(row)}, {ledger_share(row)} ({row['verdict']})")
        lines.append(f"| {name_of(row['pollster'], labels)} | {row['option']} | {row['published']:.2f} | "
                     f"{row['official']:.2f} | {row['gap']:+.2f} | {row['gap_sd']:.2f} | {z_text(row['z'])} | "
                     f"{number(row['z_total'], '+.1f')} | {p_text(row['p_total'])} | {ledger} |")
    return lines


def joint_lines(report: dict, labels: dict) -> list[str]:
    joint = report["joint"]
    per_poll = "; ".join(f"{name_of(poll['pollster'], labels)} d² = {poll['d2']:.1f} (p = {p_text(poll['p_value'])})"
                         for poll in joint["per_poll"])
    return [f"Jointly, the {joint['df1']} published gaps give Hotelling T² = {joint['t2']:.1f}, F = {joint['f']:.2f} on "
            f"({joint['df1']}, {joint['df2']}) degrees of freedom, p = {p_text(joint['p_value'])} from the F reference; "
            f"{joint['df2'] + joint['df1']:,} replicates can only certify p ≥ {joint['p_floor']:.1g} "
            f"(Monte Carlo p = {joint['p_monte_carlo']:.1g}). Per poll: {per_poll}."]


def designs_lines(report: dict, labels: dict) -> list[str]:
    lines = ["| pollster | claim | design used | delivered respondents | voters in the flow | P(design reaches claim) |",
             "|---|---|---|---|---|---|"]
    for entry in report["designs"]:
        claim = "—" if entry["claimed_respondents"] is None else (
            f"{entry['claimed_respondents']:,} {entry['claim_counts']}" + (" (assumed)" if entry["claim_assumed"] else ""))
        design = f"{entry['stations']} stations, {entry['selection']}, {entry['respondents']}" + (
            f" ({entry['per_station']} approached each)" if entry["per_station"] else "")
        lines.append(f"| {name_of(entry['pollster'], labels)} | {claim} | {design} | "
                     f"{entry['delivered_respondents']:,.0f} | {entry['delivered_voters_in_flow']:,.0f} | "
                     f"{number(entry['design_probability'], '.3f')} |")
    return lines


def mechanisms_table(report: dict, labels: dict) -> list[str]:
    lines = ["| pollster | mechanism | estimate [95%] | d² | df | fit p | moves the incumbent's gap the observed way |",
             "|---|---|---|---|---|---|---|"]
    for entry in report["mechanisms"]:
        estimate = "no effect on any gap" if entry["estimate"] is None else (
            f"{entry['estimate']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]")
        lines.append(f"| {name_of(entry['pollster'], labels)} | {entry['mechanism']} | {estimate} | {entry['d2']:.1f} | "
                     f"{entry['df']} | {p_text(entry['fit_p'])} | {'yes' if entry['moves_gap_observed_way'] else 'no'} |")
    return lines


def scenarios_table(report: dict) -> list[str]:
    lines = ["| scenario (count-matched) | count turnout | T² | F (df) | p |", "|---|---|---|---|---|"]
    for entry in report["scenarios"]:
        lines.append(f"| {entry['scenario']} | {entry['count_turnout']:.2f}% | {entry['t2']:.1f} | "
                     f"{entry['f']:.2f} ({entry['df1']}, {entry['df2']}) | {p_text(entry['p_value'])} |")
    return lines


def ledger_table(report: dict, labels: dict) -> list[str]:
    lines = ["| pollster | option | z range | share of the space consistent with sampling error at those assumptions | verdict |",
             "|---|---|---|---|---|"]
    for row in report["rows"]:
        if row["option"] in ("tokayev", "against_all") and row.get("verdict") is not None:
            lines.append(f"| {name_of(row['pollster'], labels)} | {row['option']} | {z_range(row)} | "
                         f"{ledger_share(row)} | {row['verdict']} |")
    return lines


def history_table(report: dict) -> list[str]:
    lines = ["| election | pollster | option | gap | sampling SD | z | z total |", "|---|---|---|---|---|---|---|"]
    for election in report.get("history", []):
        for row in election["rows"]:
            lines.append(f"| {election['title']} | {row['pollster']} | {row['option']} | {row['gap']:+.2f} | "
                         f"{row['gap_sd']:.2f} | {z_text(row['z'])} | {number(row['z_total'], '+.1f')} |")
    return lines


def gaps_text(rows: list[dict], labels: dict) -> str:
    """The rows' gaps in plain words, each with its z, sampling-only p (:func:`sampling_p`) and z total when it
    has one: ``none.`` when there are none."""
    return ("; ".join(f"{name_of(row['pollster'], labels)} {row['option']} ({row['gap']:+.2f}, z {z_text(row['z'])}, "
                      f"{sampling_p(row)}" + ("" if row["z_total"] is None else f", z total {row['z_total']:+.1f}")
                      + ")" for row in rows) if rows else "none") + "."


def statements(report: dict, labels: dict) -> list[str]:
    """Plain words: which gaps exceed total survey error, which mechanisms could explain each poll."""
    lines = []
    figures = [row for row in report["rows"] if row["p_total"] is not None]
    exceed = [row for row in figures if rejects(row["p_total"])]
    within = [row for row in figures if not rejects(row["p_total"]) and not consistent(row)]
    lines.append(f"- **Gaps larger than exit polls' usual total error** (p total ≤ {ALPHA:g}): " + (
        "; ".join(f"{name_of(row['pollster'], labels)} {row['option']} ({row['gap']:+.2f} points, z total "
                  f"{row['z_total']:+.1f}, p total {p_text(row['p_total'])})" for row in exceed) if exceed else "none")
        + ".")
    lines.append("- **Gaps beyond sampling error but within the historical total error**: " + gaps_text(within, labels))
    alone = [row for row in report["rows"] if row["p_total"] is None and not consistent(row)]
    if alone:  # quick counts (exit polls' interview error does not apply), or no history of exit-poll errors
        lines.append("- **Gaps beyond sampling error, judged by sampling error alone**: " + gaps_text(alone, labels))
    near = [row for row in report["rows"] if consistent(row) and borderline(row)]
    lines.append(f"- **Gaps within sampling error, borderline** (p above {ALPHA:g} by less than 2 Monte Carlo SE): "
                 + gaps_text(near, labels))
    for pollster in dict.fromkeys(entry["pollster"] for entry in report["mechanisms"]):
        entries = [entry for entry in report["mechanisms"] if entry["pollster"] == pollster]
        fitting = [e for e in entries if e["moves_gap_observed_way"] and fits_all(e)]
        moving = [e for e in entries if e["moves_gap_observed_way"] and e not in fitting]
        wrong = [e for e in entries if not e["moves_gap_observed_way"]]
        best = min(entries, key=lambda e: e["d2"])
        text = f"- **{name_of(pollster, labels)}**: "
        text += ("could be explained by " + " or ".join(
            f"{e['mechanism']} ({e['estimate']:.3f}, d² {e['d2']:.1f} on {e['df']})" for e in fitting)
            if fitting else f"no single mechanism fits all its figures (best: {best['mechanism']}, d² {best['d2']:.1f} "
                            f"on {best['df']}, p = {p_text(best['fit_p'])})")
        if moving:
            text += "; these move its gap the right way but leave misfits: " + ", ".join(
                f"{e['mechanism']} (d² {e['d2']:.1f})" for e in moving)
        text += "; cannot move the incumbent's gap the observed way: " + ", ".join(e["mechanism"] for e in wrong) + "."
        lines.append(text)
    return lines


def render(flagship: dict, scenarios: dict | None, sensitivity: dict | None = None) -> str:
    labels = {"open_society": "Open Society", "amanat": "Amanat", "socis": "SOCIS-A"}
    parts = [BEGIN, "", "Total-survey-error baseline (`configs/exit_poll_history.csv`: published exit polls against "
             "official counts; errors in points; the baseline uses the clean elections only):", "",
             *baseline_table(flagship), "", "Kazakhstan 2022, the incumbent, against all and turnout "
             "(`simkit compare configs/kazakhstan-2022.toml`; shares in percent of valid answers):", "",
             *rows_table(flagship, labels), "", *joint_lines(flagship, labels), "", "What the designs deliver:", "",
             *designs_lines(flagship, labels), "", "One mechanism at a time (count held at the official figures):", "",
             *mechanisms_table(flagship, labels), ""]
    if scenarios is not None:
        parts += ["Count-matched scenarios (`configs/kazakhstan-2022-scenarios.toml`, polls as configured):", "",
                  *scenarios_table(scenarios), ""]
    if sensitivity is not None:
        points = len({entry["point"] for entry in sensitivity["ledger"]})
        parts += [f"Joint ledger with station heterogeneity swept as well (`configs/kazakhstan-2022-poll-sensitivity.toml`, "
                  f"300 replicates, {points} Latin-hypercube points over every assumption the ledger varies, "
                  "design figures, estimator and the invalid-ballot voters' answer: see above):", "",
                  *ledger_table(sensitivity, labels), ""]
    if flagship.get("history"):
        parts += ["2015, 2019 and 2022 side by side, same baseline (`--history`):", "", *history_table(flagship), ""]
    parts += ["In plain words (generated from the same output):", "", *statements(flagship, labels), "", END]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-json", nargs="+", type=Path, metavar="JSON",
                        help="saved outputs of the flagship command (and optionally the scenarios command)")
    parser.add_argument("--page", type=Path, default=REPO / "docs" / "exit-polls.md")
    args = parser.parse_args(argv)
    if args.from_json:
        flagship = json.loads(args.from_json[0].read_text())
        scenarios = json.loads(args.from_json[1].read_text()) if len(args.from_json) > 1 else None
        sensitivity = json.loads(args.from_json[2].read_text()) if len(args.from_json) > 2 else None
    else:
        (REPO / "docs").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory() as figures:
            flagship = run(FLAGSHIP + ["--plot", figures])
            shutil.move(Path(figures) / "poll_gaps.png", FIGURE)
        scenarios, sensitivity = run(SCENARIOS), run(SENSITIVITY)
    text = args.page.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{args.page}: no {BEGIN} ... {END} section", file=sys.stderr)
        return 2
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    args.page.write_text(before + render(flagship, scenarios, sensitivity) + after, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
