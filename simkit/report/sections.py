"""The report's sections, each built from one analysis result (see :mod:`simkit.report.document` for the keys).

The poll section reads :class:`simkit.polls.compare.Comparison` as it is: its rows (gap, z, p, z total, p total and
the joint ledger's verdict, which :func:`simkit.polls.ledger.ledger_verdicts` decides, not this module), its joint
Hotelling T², mechanisms and designs. Fields and products beyond those (and forensic ``extra`` fields such as
``calibration``, ``null_tail_p``) are still shown, so the report grows with the analyses.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..errors import counted, shown_path
from ..forensics import family_p_value, holm_alarms, rejected_tests
from ..forensics.core import ALPHA
from ..forensics.floor import draws_behind, floor_line
from ..forensics.power import (PLANTS, UNSEEN_LEVEL, largest_standard_error, largest_unseen_power, left_out_text,
                               why_no_power)
from .catalogue import DETECTS, POLLS_CANNOT, UNDETECTABLE
from .document import Bullets, Image, Paragraph, Preformatted, Section, Table
from .verdicts import EXPLANATIONS, FITS, THRESHOLDS, Verdict, clean_rejections, fits_all, p_text, result_field
from simkit.electorate.returns import data_rows
from simkit.engine.summary import summary_rows
from simkit.plots.polls import plot_poll_comparison
from simkit.polls.figures import census_reading
from simkit.polls.ledger import ledger_share, ledger_space, ledger_varied, z_span
from simkit.polls.statistics import smallest_monte_carlo_p
from simkit.plots.forensics import figure

#: poll-row fields of :mod:`simkit.polls.compare` the main table shows, or leaves to the JSON (the simulated
#: distribution, the ledger's total-error share); any other field gets a column of its own
POLL_FIELDS = {"pollster", "option", "published", "official", "gap", "gap_mean", "gap_sd", "simulated_mean",
               "simulated_sd", "simulated_low", "simulated_high", "z", "z_unconditional", "p_value", "p_method",
               "p_floor", "option_class", "nonsampling_sd", "z_total", "p_total", "z_min", "z_max",
               "share_consistent", "share_consistent_total", "verdict", "points_compared", "ledger_points",
               "design_effect", "bias_needed",
               "misreport_needed", "misreport_needed_low", "misreport_needed_high", "rounding"}
#: comparison products shown in their own way; any other product is shown as a table
COMPARISON_PRODUCTS = {"rows", "joint", "designs", "mechanisms", "scenarios", "ledger", "baseline_table", "flags"}
#: forensic ``extra`` entries shown as columns when present (fields other analyses add)
FORENSIC_OPTIONAL = ("honest_model", "calibration", "null_z", "null_tail_p")
#: follow-up list lengths
TOP_REGIONS, TOP_STATIONS = 5, 10


def fmt(value, spec: str | None = None) -> str:
    """A number for a table cell ("—" for a missing or non-finite value); ``spec`` None: a whole number (int)
    in full, so that a seed or a count reads as given, any other number to 3 significant digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return format(value, spec or "d")
    if isinstance(value, (float, np.floating)):
        return format(value, spec or ".3g")
    return str(value)


def generic_table(name: str, value, caption: str = "") -> list:
    """Blocks for a product the report has no dedicated layout for: a list of records as a table, a mapping
    as a two-column table, anything else as text."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        return [Table(columns, [[fmt(v.get(c)) for c in columns] for v in value], caption or name)]
    if isinstance(value, dict):
        return [Table(["field", "value"], [[str(k), fmt(v) if not isinstance(v, (dict, list)) else str(v)]
                                           for k, v in value.items()], caption or name)]
    return [Paragraph(f"{name}: {value}")]


# -- the short answer ------------------------------------------------------------------------------

def _described(omitted: dict[str, str]) -> str:
    """What a report without verdicts still shows: its simulation and/or station returns (the analyses not
    ``omitted``)."""
    shown = [what for key, what in (("simulation", "the simulation"), ("forensics", "the station returns"))
             if key not in omitted]
    return " and ".join(shown)


def answer(question: str, verdicts: list[Verdict], omitted: dict[str, str]) -> Section:
    blocks = [Paragraph(question)]
    blocks += [Paragraph(v.text) for v in verdicts]
    if not verdicts:
        blocks.append(Paragraph("No poll comparison or station-level test gave a verdict to state; the sections below "
                                f"describe {_described(omitted)}."))
    if omitted:
        blocks.append(Paragraph("Left out of this report:"))
        blocks.append(Bullets([f"{key}: {reason}" for key, reason in omitted.items()]))
    return Section("answer", blocks)


# -- the simulation --------------------------------------------------------------------------------

def simulation(ds, cfg) -> Section:
    """Simulated turnout and shares (mean, 90% interval) beside the official figures, at the baseline."""
    rows = [row for row in summary_rows(ds, cfg) if row["point"].get("scenario", "honest") == "honest"]
    points = list(dict.fromkeys(str(row["point"]) for row in rows))
    rows = [row for row in rows if str(row["point"]) == points[len(points) // 2]]
    table = Table(["quantity", "simulated mean", "5%", "95%", "official"],
                  [[row["quantity"], fmt(row["mean"], ".2f"), fmt(row["low"], ".2f"), fmt(row["high"], ".2f"),
                    fmt(row["official"], ".2f")] for row in rows],
                  f"{counted(ds.sizes['replicate'], 'replicate')} of {counted(ds.sizes['station'], 'station')}; "
                  "percent (options of valid votes, invalid of ballots)")
    return Section("simulation", [Paragraph(_simulation_reading(rows, ds.sizes["replicate"])), table])


def _simulation_reading(rows: list[dict], replicates: int) -> str:
    """What the simulation table can be read for: against the official figures when it has any; of
    ``replicates`` 1, that its 5% and 95% columns are no interval."""
    if any(row["official"] is not None for row in rows):
        reading = ("The honest simulation is calibrated to the official figures: agreement below checks the "
                   "machinery, it is not evidence that the count was honest.")
    else:
        reading = ("The config gives no official figures ([observed]): the table shows what the simulation draws, "
                   "with nothing to check it against.")
    if replicates == 1:
        reading += (" One replicate was drawn: its 5% and 95% columns repeat its value, so the table shows no "
                    "interval and no spread of the simulated figures.")
    return reading


# -- exit polls and quick counts ----------------------------------------------------------------------

def _poll_table(comparison) -> Table:
    extra = [k for k in dict.fromkeys(k for row in comparison.rows for k in row) if k not in POLL_FIELDS]
    columns = ["pollster", "option", "published", "official", "gap", "gap SD", "z", "p", "verdict", "class",
               "non-sampling SD", "z total", "p total", "total-error verdict", "ledger: z range",
               "ledger: share consistent", "ledger verdict", "misreport needed [90%]"] + extra
    rows = []
    for row in comparison.rows:
        needed = "—" if row["misreport_needed"] is None else (
            f"{row['misreport_needed']:.1f} [{fmt(row['misreport_needed_low'], '.1f')}, "
            f"{fmt(row['misreport_needed_high'], '.1f')}]")
        total = "—" if row.get("p_total") is None else p_text(row["p_total"]).replace("with it", "with the count")
        span = "—" if row.get("z_min") is None else z_span(row["z_min"], row["z_max"])
        rows.append([row["pollster"], row["option"], fmt(row["published"], ".2f"), fmt(row["official"], ".2f"),
                     fmt(row["gap"], "+.2f"), fmt(row["gap_sd"], ".2f"), fmt(row["z"], "+.1f"),
                     fmt(row["p_value"], ".2g") + ("*" if row["p_method"] == "normal_tail" else ""),
                     census_reading(row["rounding"]) if "rounding" in row else
                     p_text(row["p_value"]).replace("with it", "with the count"), row.get("option_class", "—"),
                     fmt(row.get("nonsampling_sd"), ".2f"), fmt(row.get("z_total"), "+.1f"),
                     fmt(row.get("p_total"), ".2g"), total, span,
                     "—" if row.get("share_consistent") is None else ledger_share(row),
                     row.get("verdict") or "—", needed] + [fmt(row.get(k)) for k in extra])
    reach = smallest_monte_carlo_p(comparison.rows[0]["p_floor"]) if comparison.rows else None
    return Table(columns, rows,
                 "Shares in percent of valid answers, turnout in percent of the register; gap = published − "
                 "official, points. z and p: sampling error only (SD of a poll minus its own replicate's count); p "
                 "two-sided Monte Carlo, * from the normal tail: too few replicates as extreme, they place it only "
                 f"below {fmt(reach, '.2g')}, their smallest Monte Carlo p; a census figure (every station's count or every voter read: no sampling "
                 "error) has no p and is consistent when the published value can be the census's own rounded to "
                 "its last digit, to nearest or down (its gap minus the census's at least −1 unit, at most +½ unit). "
                 "z total and p total: sampling plus exit polls' historical non-sampling error of the option's "
                 "class (exit polls only: a quick count copies official protocols, so its station sample's sampling "
                 "error alone judges it). Ledger: the assumptions listed with the ledger below, varied jointly; share "
                 "consistent = share of that space where p > 0.05 (a census: within rounding); (K of N points): the poll's "
                 "design gets too few answers at the others, so the share is of those K. Misreport needed: % of the "
                 "option's voters telling "
                 "the incumbent (incumbent row: % of all others) for the published figure to be the simulated "
                 "median; negative = away from the incumbent.")


def _joint_table(joint: dict) -> Table:
    tests = [("all polls", joint)] + [(poll["pollster"], poll) for poll in joint.get("per_poll", [])]
    return Table(["published figures", "T²", "F", "df", "p (F reference)", "p method", "Monte Carlo p", "floor",
                  "measured size"],
                 [[name, fmt(t["t2"], ".1f"), fmt(t["f"], ".2f"), f"({t['df1']}, {t['df2']})", fmt(t["p_value"], ".2g"),
                   t["p_method"], fmt(t["p_monte_carlo"], ".2g"), fmt(t["p_floor"], ".2g"), _size_cell(t)]
                  for name, t in tests],
                 "Hotelling's T² of the published gaps against the sampling-only baseline, with its exact F "
                 "reference; a p-value below the floor (one over replicates + 1) is the F reference's "
                 "extrapolation (p method hotelling_f_beyond_monte_carlo), not confirmed by the replicates. Measured "
                 f"size: the replicates, each held out and tested against the others, that the test rejects at "
                 f"{ALPHA:g} (about {ALPHA:g} of them where its F reference is right).")


def _size_cell(test: dict) -> str:
    """A joint test's measured size for a table cell: ``k of R``, or "—" when not measured
    (:func:`simkit.polls.statistics.held_out_size`)."""
    if test.get("size_rejected") is None:
        return "—"
    return f"{test['size_rejected']:,} of {test['size_replicates']:,}"


def _mechanism_table(mechanisms: list[dict]) -> Table:
    return Table(["pollster", "mechanism", "parameter", "estimate [95%]", "d²", "df", "fit p", "fits",
                  "moves the gap the observed way"],
                 [[e["pollster"], e["mechanism"], e.get("parameter", "—"),
                   "no effect on the gap" if e["estimate"] is None else
                   f"{e['estimate']:.3f} [{fmt(e['low'], '.3f')}, {fmt(e['high'], '.3f')}]",
                   fmt(e["d2"], ".1f"), fmt(e["df"], "d"), fmt(e["fit_p"], ".2g"),
                   fmt(fits_all(e)), fmt(e["moves_gap_observed_way"])]
                  for e in mechanisms],
                 "One mechanism at a time, count held at the official figures: the fitted parameter with its 95% "
                 f"profile interval, d² of the residual on df, and \"fits\" when fit p > {FITS:g}.")


def _design_table(designs: list[dict]) -> Table:
    return Table(["pollster", "stations", "selection", "respondents", "claimed", "claim counts", "delivered (mean)",
                  "voters in the flow (mean)", "P(reaches the claim)", "design"],
                 [[d["pollster"], fmt(d["stations"], ",d"), d["selection"], d["respondents"],
                   fmt(d["claimed_respondents"], ",d") + (" (assumed)" if d.get("claim_assumed") else ""),
                   d.get("claim_counts") or "—", fmt(d["delivered_respondents"], ",.0f"),
                   fmt(d["delivered_voters_in_flow"], ",.0f"), fmt(d["design_probability"], ".2g"), d["note"]]
                  for d in designs],
                 f"What each modelled design delivers over {designs[0]['replicates']:,} replicates against the "
                 "pollster's claim; a claim assumed from a stated range is marked.")


def _history_table(comparison) -> list:
    """The history table behind the total-error baseline (:meth:`simkit.polls.compare.Comparison.baseline_table`),
    its file named as the provenance names a file (:func:`simkit.errors.shown_path`); nothing without a baseline."""
    table = comparison.baseline_table()
    if table is None:
        return []
    return generic_table("baseline_table", {**table, "source": shown_path(table["source"])})


def _ledger_words(comparison) -> list[str]:
    """Per published figure, the joint ledger's verdict as :mod:`simkit.polls.compare` decided it."""
    return [f"{row['pollster']}, {row['option']}: z from {z_span(row['z_min'], row['z_max'])}, consistent "
            f"with the count in {row['share_consistent']:.0%} of {ledger_space(row)}: {row['verdict']}."
            for row in comparison.rows if row.get("verdict")]


def _pollster_key(cfg) -> str:
    """The pollsters' names as the tables give them beside their labels, as the short answer gives them (a
    sentence quoting "Open Society ..." is found in the table's rows of ``open_society``); "" when every poll goes
    by its name."""
    named = [f"{poll.name} = {poll.label}" for poll in cfg.polls if poll.label and poll.label != poll.name]
    return f" Pollsters in the tables, as the short answer names them: {'; '.join(named)}." if named else ""


def polls(comparison, cfg, incumbent: str) -> Section:
    blocks = [
        Paragraph("Sampling-only baseline: the official count is taken as the truth and every poll as unbiased; "
                  "each poll's design is drawn from every simulated election, so z and p answer \"could sampling "
                  "error alone explain this gap?\"; z total and p total answer \"is it larger than exit polls' "
                  f"usual total error?\". Incumbent: {incumbent}.{_pollster_key(cfg)}"),
        _poll_table(comparison),
        Image.from_figure("polls", plot_poll_comparison(comparison),
                          "Published minus official, in points, per poll: sampling bars (90% and 99%) and paler "
                          "total-error bars."),
    ]
    if comparison.joint:
        blocks.append(_joint_table(comparison.joint))
    if comparison.mechanisms:
        blocks.append(_mechanism_table(comparison.mechanisms))
    if comparison.designs:
        blocks.append(_design_table(comparison.designs))
    if comparison.flags:
        blocks += [Paragraph("Notes on the pollsters' claims:"), Bullets(list(comparison.flags))]
    ledger = _ledger_words(comparison)
    if ledger:
        points = len({entry["point"] for entry in comparison.ledger})
        blocks += [Paragraph(f"The joint assumption ledger in words: {ledger_varied(comparison.ledger)}, varied "
                             f"together ({points} Latin-hypercube points); per figure, its z range, the share of the "
                             "space where sampling error explains the gap at those assumptions (not sampling alone "
                             "where they include how voters answer), and the verdict (rejected everywhere, "
                             "depends, consistent everywhere; \"wherever compared\" instead of \"everywhere\" "
                             "when its design gets too few answers at some points)."), Bullets(ledger)]
    for name, value in comparison.to_json().items():
        if name not in COMPARISON_PRODUCTS and value:
            blocks += generic_table(name, value)
    return Section("polls", blocks + _history_table(comparison))


# -- scenarios ---------------------------------------------------------------------------------------

def scenarios(ds, cfg, comparison) -> Section:
    """Per scenario (and sweep point): turnout and the leader's share beside the honest count at the same
    point; and per scenario, the count's turnout and the published polls' Hotelling T² if the polls had
    sampled that election. Count-matched scenarios (``match_observed``) say so: their count equals the
    official one by construction, so only the polls tell them apart."""
    matched = {scenario.name for scenario in cfg.scenarios() if scenario.match_observed}
    rows = [row for row in summary_rows(ds, cfg) if row["quantity"] in ("turnout", cfg.leader)]
    honest = {(str({k: v for k, v in row["point"].items() if k != "scenario"}), row["quantity"]): row
              for row in rows if row["point"].get("scenario") == "honest"}
    table_rows = []
    for row in rows:
        name = row["point"].get("scenario", "honest")
        if name == "honest":
            continue
        sweep = {k: v for k, v in row["point"].items() if k != "scenario"}
        base = honest.get((str(sweep), row["quantity"]))
        table_rows.append([name, ", ".join(f"{k} = {v:g}" for k, v in sweep.items()) or "—", row["quantity"],
                           f"{row['mean']:.2f} [{row['low']:.2f}, {row['high']:.2f}]",
                           fmt(base["mean"], ".2f") if base else "—",
                           fmt(row["mean"] - base["mean"], "+.2f") if base else "—",
                           fmt(row["official"], ".2f")])
    blocks = [Paragraph("Each named manipulation applied to the same honest draw: the count it would have produced "
                        "(mean and 90% interval, percent) beside the honest count at the same sweep point. The "
                        "strengths are the config's stated assumptions, not estimates."
                        + (" Count-matched scenarios (" + ", ".join(sorted(matched)) + "): their honest turnout and "
                           "shares were solved so that the manipulated count reproduces the official figures, so "
                           "their count equals the official one and the polls, drawn from the voters of that "
                           "world, are what differs." if matched else "")),
              Table(["scenario", "sweep point", "quantity", "scenario count", "honest", "change", "official"],
                    table_rows)]
    if comparison is not None and comparison.scenarios:
        blocks.append(Table(
            ["scenario", "count-matched", "count turnout", "T²", "F", "df", "p (F reference)", "p method",
             "measured size", "verdict"],
            [[s["scenario"], fmt(s["scenario"] in matched), fmt(s["count_turnout"], ".2f"), fmt(s["t2"], ".1f"),
              fmt(s["f"], ".2f"), f"({s['df1']}, {s['df2']})", fmt(s["p_value"], ".2g"), s["p_method"],
              _size_cell(s), p_text(s["p_value"]).replace("with it", "with the polls")] for s in comparison.scenarios],
            "Per scenario at the baseline sweep point, polls as configured: the count's turnout (percent of the "
            "register) and Hotelling's T² of all published gaps against polls drawn from that scenario's voters. "
            f"Measured size: that scenario's replicates, each held out and tested against the others, that the test "
            f"rejects at {ALPHA:g}."))
    return Section("scenarios", blocks)


# -- forensics ---------------------------------------------------------------------------------------

def _forensic_table(f) -> Table:
    optional = [k for k in FORENSIC_OPTIONAL if any(result_field(r, k) is not None for r in f.results)]
    sizes = {r.test: clean_rejections(r) for r in f.results}
    alarms = set(holm_alarms(f.results))
    plants = [p for p in (f.power or {}) if p != "none"]
    columns = (["test", "statistic", "reference", "p-value", "verdict", "after Holm's correction"] + optional
               + (["clean elections rejected"] if any(sizes.values()) else [])
               + (["size (nothing planted)"] + [f"power: {p}" for p in plants] if f.power else [])
               + ["built to detect"])
    rows = []
    floored = f.could_not_reject
    for r in f.results:
        cells = [r.test, fmt(r.statistic, ".4g"), fmt(r.reference, ".4g"), fmt(r.p_value, ".3g"), r.verdict,
                 _holm_cell(r, alarms)]
        cells += [fmt(result_field(r, k)) for k in optional]
        if any(sizes.values()):
            cells.append(_clean_cell(r, sizes[r.test]))
        if f.power:
            mark = " (cannot reject)" if r.test in floored else ""
            cells += [fmt(f.power[p].get(r.test), ".2f") + mark for p in ["none"] + plants]
        rows.append(cells + [DETECTS.get(r.test, "")])
    return Table(columns, rows, f"{f.null} null, {f.draws} draws, seed {f.seed}; after Holm's correction: at "
                 f"{ALPHA:g} across the calibrated tests, on the p-value the family reads (an empirically calibrated "
                 "one, else a simulated null's tail past its Monte Carlo p-value, else the one shown); left out: not "
                 "calibrated under this null"
                 + (f"; clean elections rejected: of the false-positive panel's clean elections, those the test's "
                    f"reported p-value rejected at {ALPHA:g} under this null (its measured size; "
                    "docs/forensics.md)" if any(sizes.values()) else ""))


def _holm_cell(result, alarms: set[str]) -> str:
    """A test's place in Holm's correction across the calibrated tests, as the short answer counts it
    (``alarms``: :func:`simkit.forensics.holm_alarms`): ``rejected``, ``not rejected``, ``left out`` (a test not
    calibrated under its null: :func:`simkit.forensics.family_p_value` None), or "—" for a test without a p-value."""
    if result.p_value is None:
        return "—"
    if family_p_value(result) is None:
        return "left out"
    return "rejected" if result.test in alarms else "not rejected"


def _clean_cell(result, size: tuple[int, int] | None) -> str:
    """A test's measured size as the forensic table shows it (:func:`clean_rejections`): ``k of n``, ``not
    measured``, or "—" for a test without a p-value."""
    if result.p_value is None:
        return "—"
    return "not measured" if size is None else f"{size[0]} of {size[1]}"


def _floor_note(f) -> list:
    """The paragraph beside the table on the tests that cannot reject with ``f.draws`` null draws
    (:mod:`simkit.forensics.floor`); none when every test can."""
    floored = f.could_not_reject
    if not floored:
        return []
    line = floor_line(floored, f.null, f.draws)
    one = len(floored) == 1
    said = (f"{'Its verdict, size' if one else 'Their verdicts, sizes'} and powers (0 whatever the data) say"
            if f.power else "Its verdict says" if one else "Their verdicts say")
    return [Paragraph(f"{line[0].upper()}{line[1:]}. {said} nothing about these data.")]


def _figure_caption(result) -> str:
    """A forensic figure's caption: the test, its verdict on these data, and what it is built to detect (said as
    such: a caption quoted alone must not read as a finding, "a second turnout mode", on a clean election)."""
    built = f"; built to detect: {DETECTS[result.test]}" if result.test in DETECTS else ""
    return f"{result.test} ({result.verdict}){built}"


def _follow_up(f) -> list:
    blocks = []
    rejected = rejected_tests(f.results)
    for r in f.results:
        if r.test not in rejected:
            continue
        regions, stations = r.extra.get("top_regions"), r.extra.get("top_stations")
        if regions:
            blocks.append(Table(["region", "score", "stations"],
                                [[x["region"], fmt(x["score"], ".4g"), fmt(x["stations"], "d")]
                                 for x in regions[:TOP_REGIONS]], f"{r.test}: regions to look at first"))
        if stations:
            keys = [k for k in stations[0] if k not in ("station_id", "region")]
            blocks.append(Table(["station", "region"] + keys,
                                [[x["station_id"], x["region"]] + [fmt(x[k], ".4g") for k in keys]
                                 for x in stations[:TOP_STATIONS]], f"{r.test}: stations to look at first"))
    return blocks


def _uncertainty_sentence(replicates: int) -> str:
    """The Monte Carlo error of a rate over ``replicates`` simulated elections: its largest standard error
    (:func:`simkit.forensics.power.largest_standard_error`) and the largest power a rate of 0 allows
    (:func:`simkit.forensics.power.largest_unseen_power`), so that a 0 is not read as no power."""
    return (f" Each rate is a count out of {counted(replicates, 'election')}: its standard error is up to "
            f"{largest_standard_error(replicates):.2f}, and a rate of 0 still allows a power of up to "
            f"{largest_unseen_power(replicates):.2f} (one-sided {UNSEEN_LEVEL:.0%}).")


def _left_out_sentence(f) -> str:
    """The sentence naming the stations the power's simulated elections left out without ballots, per plant and
    replicate (:func:`simkit.forensics.power.left_out_text`); empty when none did."""
    left_out = left_out_text(f.stations_left_out or {})
    return (f" Stations left without ballots by the simulation or the plant were left out of those elections, as "
            f"the returns' own are (per plant and replicate: {left_out})." if left_out else "")


def forensics(f) -> Section:
    e = f.election
    excluded = ", ".join(f"{k}: {v:,}" for k, v in e.excluded.items()) or "none"
    blocks = [Paragraph(f"{f.title}: {e.n:,} stations tested, leader {e.options[e.leader]}; stations left out of "
                        f"the tests: {excluded}."),
              _forensic_table(f), *_floor_note(f)]
    if f.power:
        blocks.append(Paragraph(
            f"No test rejects at {ALPHA:g}, which is not evidence of a clean count. Size and power: the share of "
            f"{f.power_replicates} simulated honest elections shaped like these data in which each test rejects, "
            "with nothing planted (its size) and with each planted manipulation (simkit.forensics.power). A power "
            "is worth only what it exceeds the size by." + _uncertainty_sentence(f.power_replicates)
            + _left_out_sentence(f) + " The planted manipulations:"))
        blocks.append(Bullets([f"{plant}: {PLANTS[plant][0]}" for plant in f.power if plant != "none"]))
    else:
        why = why_no_power(f.election, f.results, f.power_replicates)
        blocks.append(Paragraph(f"Power was not computed: {why}."))
    follow = _follow_up(f)
    if follow:
        blocks += [Paragraph("Follow-up lists of the anomalous tests: where the statistic comes from. They say where "
                             "to look, not what happened there.")] + follow
    for r in f.results:
        fig = figure(r.test, e, r, f.title)
        if fig is not None:
            blocks.append(Image.from_figure(f"forensics-{r.test}", fig, _figure_caption(r)))
    return Section("forensics", blocks)


# -- limits, provenance, appendix ---------------------------------------------------------------------

def assumed_lines(config_text: str) -> list[str]:
    """The config's comment lines marked ASSUMED (the fixed assumptions a conclusion rests on)."""
    found = []
    for line in config_text.splitlines():
        comment = line.partition("#")[2].strip()
        if "ASSUMED" in comment:
            found.append(re.sub(r"\s+", " ", comment))
    return found


def limits(config_text: str | None, has_polls: bool, forensics_result) -> Section:
    blocks = []
    if has_polls:
        blocks += [Paragraph("The poll comparison rests on: the official count as the truth for the simulated "
                             "elections; unbiased polls in the sampling-only baseline; exit polls' non-sampling "
                             "error as large as in the history table's clean elections (total-error baseline); "
                             "each unpublished design figure at the midpoint of its stated range (the joint ledger "
                             "varies them together over their ranges, with the other assumptions it lists). Exit polls and counts cannot show:"),
                   Bullets(POLLS_CANNOT)]
    assumed = assumed_lines(config_text) if config_text else []
    if assumed:
        blocks += [Paragraph("Assumptions stated in the config (comments marked ASSUMED):"), Bullets(assumed)]
    if forensics_result is not None:
        floored = forensics_result.could_not_reject
        rejected = rejected_tests(forensics_result.results)
        quiet = [r.test for r in forensics_result.results
                 if r.p_value is not None and r.test not in rejected and r.test not in floored]
        if quiet:
            blocks.append(Paragraph("Tests without an anomaly (" + ", ".join(quiet) + ") are not evidence of a "
                                    "clean count: they show only that the pattern each is built for was not found "
                                    "at its power on these data."))
        if floored:
            draws = draws_behind(floored, forensics_result.draws)
            blocks.append(Paragraph(f"Tests that could not reject with {draws} ("
                                    + ", ".join(floored) + ") say nothing either way: their p-value cannot fall "
                                    f"to {ALPHA:g} with so few draws."))
    blocks += [Paragraph("No station-level test here detects:"), Bullets(UNDETECTABLE)]
    return Section("limits", blocks)


def provenance(record: dict) -> Section:
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    files = []
    for item in record["files"]:
        anomalies = "; ".join(f"{rule}: {a['count']:,} ({a['rule']}; {data_rows(a['first_rows'], a['count'])})"
                              for rule, a in item.get("anomalies", {}).items()) or ("none" if "stations" in item
                                                                                    else "—")
        files.append([item["role"], item["path"], item["sha256"] or "—", fmt(item.get("data_rows"), ",d"),
                      fmt(item.get("stations"), ",d"), anomalies])
    blocks = [Table(["field", "value"], [["date", record["date"]], ["versions", versions],
                                         ["seed", fmt(record["seed"])], ["replicates", fmt(record["replicates"])],
                                         ["command line", record["command"] or "(Python: simkit.report.build)"]]),
              Paragraph("Reproduce this report:"), Preformatted(record["reproduce"]),
              Table(["role", "path", "sha256", "data rows", "stations", "anomalies (rule; first rows)"], files,
                    "Input files")]
    if record["config_text"] is not None:
        blocks += [Paragraph(f"The config (sha256 {record['config_sha256']}):"), Preformatted(record["config_text"])]
    return Section("provenance", blocks)


def appendix() -> Section:
    return Section("appendix", [
        Paragraph("The short answer is generated from the numbers by these rules (simkit/report/verdicts.py); no "
                  "sentence is written by hand for an election."),
        Table(["threshold", "value", "what it decides"], [[k, str(v), what] for k, (v, what) in THRESHOLDS.items()]),
        Table(["gap direction", "can come from", "cannot come from"],
              [[direction, can, cannot] for direction, (can, cannot) in EXPLANATIONS.items()]),
        Table(["test", "built to detect"], [[k, v] for k, v in DETECTS.items()]),
    ])
