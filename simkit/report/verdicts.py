"""The short answer: verdict sentences generated from the analyses' numbers by stated rules.

Every threshold lives in :data:`THRESHOLDS` (shown in the report's appendix); every number a sentence shows
is recorded in its :class:`Verdict` ``figures`` with where it came from, so a test can check each against
the analysis result. Wording: "anomalous (p ≤ 0.05)", "consistent with", "not evidence of a clean count";
no sentence calls anything fraud.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import counted
from ..forensics import calibration_label, holm_alarms
from ..forensics.calibration import measured
from ..forensics.core import ALPHA, holm
from ..schema import rejects
from ..forensics.floor import minimum_draws, result_floors
from ..forensics.power import UNSEEN_LEVEL, above_size, largest_unseen_power
from ..polls.figures import census_reading, consistent
from ..polls.ledger import ledger_space
from ..polls.statistics import smallest_monte_carlo_p

#: the thresholds every rule below uses (name -> (value, what it decides))
THRESHOLDS = {
    "alpha": (ALPHA, "a published figure or a forensic test is anomalous when its p-value is at or below this; the "
                     "same cut against sampling error alone (p) and against total survey error (p total)"),
    "family": ("Holm", "across all published figures (or all forensic tests) of a report, the figures that stay "
                       "at or below alpha after Holm's step-down correction are counted separately"),
    "direction": (0.0, "a poll's gap (published − official) leans toward the incumbent when it raises the "
                       "incumbent's share or lowers another option's, else away from the incumbent; a turnout "
                       "figure's gap is above or below the official turnout"),
    "fits": (0.05, "a single mechanism fits a poll when the goodness-of-fit p of its best parameter (d² on its df) "
                   "is above this"),
    "improbable": (0.05, "a claimed poll design is improbable when the modelled design reaches its claimed sample "
                         "in fewer than this share of the replicates"),
}
#: the cuts themselves (values of :data:`THRESHOLDS`)
FITS, IMPROBABLE = THRESHOLDS["fits"][0], THRESHOLDS["improbable"][0]
#: the option name of a poll's published turnout row (:func:`simkit.polls.figures.turnout_row`)
TURNOUT = "turnout"

#: what can and cannot produce a poll–count gap in each direction (rows of the short answer)
EXPLANATIONS = {
    "toward": ("respondents overstating a vote for the incumbent, the incumbent's opponents refusing the "
               "interview more often, a poll weighted or reported in the incumbent's favour, or a count that "
               "understates the incumbent",
               "ballot stuffing or rewritten protocols in the incumbent's favour (they raise the count above the "
               "voters the polls interview, a gap the other way)"),
    "away": ("ballot stuffing, rewritten protocols or other count manipulation in the incumbent's favour, "
             "respondents hiding a vote for the incumbent, or the incumbent's voters refusing the interview "
             "more often",
             "respondents overstating a vote for the incumbent (that moves the poll toward the incumbent)"),
}


#: the forensic nulls in words (:data:`simkit.report.NULLS`; docs/forensics.md, "Nulls"), as each forensic verdict
#: names the null its p-values are read against
NULL_WORDS = {"textbook": "the textbook null (each test's classical reference)",
              "simulated": "the simulated null (honest elections redrawn to match these data)"}


@dataclass(frozen=True)
class Number:
    """One number shown in a sentence: its ``value``, the ``text`` it is shown as, and ``source`` (where in the
    analysis it came from: e.g. {"analysis": "polls", "pollster": ..., "option": ..., "field": "z"})."""

    value: float
    text: str
    source: dict


@dataclass
class Verdict:
    """A sentence of the short answer and the numbers in it."""

    text: str
    figures: list[Number] = field(default_factory=list)


class _Writer:
    """Builds one sentence while recording each number it formats."""

    def __init__(self):
        self.figures: list[Number] = []

    def num(self, value: float, spec: str, **source) -> str:
        text = format(value, spec) if spec != "d" else format(round(value), ",d")
        self.figures.append(Number(float(value), text, source))
        return text

    def count(self, value: int, **source) -> str:
        """A count as :meth:`num` writes it (``"d"``), but ``none`` for 0 (recorded so)."""
        if value:
            return self.num(value, "d", **source)
        self.figures.append(Number(0.0, "none", source))
        return "none"

    def verdict(self, text: str) -> Verdict:
        return Verdict(text, self.figures)


def p_text(p: float) -> str:
    """The stated wording of a p-value against :data:`ALPHA`."""
    return f"anomalous (p ≤ {ALPHA:g})" if rejects(p) else f"consistent with it (p > {ALPHA:g})"


def fits_all(entry: dict) -> bool:
    """Whether a mechanism fit (an entry of ``compare``'s ``mechanisms``) fits every published figure of its poll:
    its fit p-value does not reject at :data:`FITS` (:func:`simkit.schema.rejects`)."""
    return entry["fit_p"] is not None and not rejects(entry["fit_p"], FITS)


def leans(row: dict, incumbent: str) -> str:
    """The direction of a poll row's gap (published − official, the row's ``gap``): ``toward`` or ``away``
    from the incumbent, or for a turnout row ``above`` or ``below`` the official turnout."""
    if row["option"] == TURNOUT:
        return "above" if row["gap"] > 0 else "below"
    return "toward" if (row["gap"] > 0) == (row["option"] == incumbent) else "away"


def _p(row: dict, total: bool) -> float | None:
    value = row.get("p_total") if total else row.get("p_value")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _anomalous(row: dict, total: bool) -> bool:
    """Whether a poll row is anomalous: p (``total``: p total) at or below ALPHA (:func:`simkit.schema.rejects`),
    or a census figure (no p-value) beyond its published rounding (:func:`simkit.polls.figures.consistent`)."""
    if not total and "rounding" in row:
        return not consistent(row)
    p = _p(row, total)
    return rejects(p)


def _direction_words(lean: set[str]) -> str:
    """The directions of a set of anomalous gaps (:func:`leans`) in words."""
    shares, turnout = lean & {"toward", "away"}, lean & {"above", "below"}
    words = []
    if shares:
        words.append("the share gaps lean both ways" if len(shares) > 1 else
                     f"every share gap leans {'toward' if shares == {'toward'} else 'away from'} the incumbent")
    if turnout:
        words.append(f"the turnout gap is {' and '.join(sorted(turnout))} the official turnout")
    return "; ".join(words)


def _figure_list(w: "_Writer", pollster: str, rows: list[dict], total: bool) -> str:
    parts = []
    for row in rows:
        source = {"analysis": "polls", "pollster": pollster, "option": row["option"]}
        z_field, p_field = ("z_total", "p_total") if total else ("z", "p_value")
        z = (f"{'z total' if total else 'z'} = {w.num(row[z_field], '+.1f', **source, field=z_field)}"
             if math.isfinite(row[z_field]) else "no sampling error")
        p = (census_reading(row["rounding"], lambda half: w.num(half, "g", **source, field="half_unit"))
             if not total and "rounding" in row else
             f"p{' total' if total else ''} = {w.num(row[p_field], '.2g', **source, field=p_field)}"
             + (" from the normal tail" if not total and _normal_tail(row) else ""))
        parts.append(f"{row['option']} {w.num(row['published'], '.2f', **source, field='published')}% published "
                     f"against {w.num(row['official'], '.2f', **source, field='official')}% counted (gap "
                     f"{w.num(row['gap'], '+.2f', **source, field='gap')} points, {z}, {p}"
                     + (_ledger_words(w, source, row) if not total and row.get("verdict") else "") + ")")
    return "; ".join(parts)


def _assumption_words(anomalous: list[dict]) -> str:
    """What "sampling error alone does not explain them" rests on when a joint ledger judged the ``anomalous``
    rows (their ``verdict``): each unpublished design figure at the midpoint of its range; and the options whose
    ledger does not reject them at every assumption (the claim holds at the midpoints only); "" without a
    ledger."""
    if not any(row.get("verdict") for row in anomalous):
        return ""
    unsettled = [row["option"] for row in anomalous if row.get("verdict")
                 and not row["verdict"].startswith("rejected")]
    return " with each unpublished design figure at the midpoint of its range" + (
        f", though over the joint ledger's assumptions (those ranges and the others the poll section lists) "
        f"{_listed(unsettled)} {'is' if len(unsettled) == 1 else 'are'} "
        "not rejected everywhere" if unsettled else "")


def _normal_tail(row: dict) -> bool:
    """Whether a poll row's p is the normal tail's, beyond what its replicates confirm
    (:func:`simkit.polls.statistics.tail_p_value`), not a Monte Carlo share."""
    return row.get("p_method") == "normal_tail"


def _tail_words(w: "_Writer", pollster: str, rows: list[dict]) -> str:
    """The clause on the ``rows`` whose p is the normal tail's (:func:`_normal_tail`): below what the replicates
    place it (:func:`simkit.polls.statistics.smallest_monte_carlo_p` of each row's ``p_floor``; a range when they
    differ), as the poll table's caption says, and that its verdict rests on the normal tail alone when that bound
    is above :data:`ALPHA` (the replicates cannot tell p ≤ alpha); "" when none is."""
    tail = {row["p_floor"]: row for row in rows if _normal_tail(row)}
    if not tail:
        return ""
    floors = sorted(tail)
    reach = " to ".join(w.num(smallest_monte_carlo_p(floor), ".2g", analysis="polls", pollster=pollster,
                              option=tail[floor]["option"], field="p_floor", transform="smallest_monte_carlo_p")
                        for floor in dict.fromkeys([floors[0], floors[-1]]))
    unsettled = smallest_monte_carlo_p(floors[-1]) > ALPHA
    return (f" A p from the normal tail is a normal extrapolation, not a Monte Carlo result: too few simulated "
            f"replicates are as extreme, so they place it only below {reach}, their smallest Monte Carlo p"
            + (f"; as that is above {ALPHA:g}, a verdict on such a p rests on the normal tail alone (more replicates "
               "settle it)" if unsettled else "") + ".")


def _ledger_words(w: "_Writer", source: dict, row: dict) -> str:
    """A figure's joint-ledger verdict, naming the points it was taken over when not all
    (:func:`simkit.polls.ledger.ledger_space`)."""
    return f"; ledger over {ledger_space(row, lambda value, name: w.num(value, 'd', **source, field=name))}: " \
           f"{row['verdict']}"


def _pollster_verdicts(pollster: str, own: list[dict], name: str, incumbent: str) -> tuple[list[Verdict], set]:
    """Beyond sampling error, then beyond total survey error, for one pollster's rows."""
    w = _Writer()
    count = w.num(len(own), "d", analysis="polls", pollster=pollster, field="count")
    anomalous = [row for row in own if _anomalous(row, False)]
    if not anomalous:
        return [w.verdict(f"{name}: all {count} published figures are consistent with the official count within "
                          f"sampling error (p > {ALPHA:g}).")], set()
    lean = {leans(row, incumbent) for row in anomalous}
    verdicts = [w.verdict(
        f"{name}: {w.num(len(anomalous), 'd', analysis='polls', pollster=pollster, field='anomalous')} of {count} "
        f"published figures {'is' if len(anomalous) == 1 else 'are'} anomalous (p ≤ {ALPHA:g}) against polls drawn "
        f"from an honest count equal to the official one: {_figure_list(w, pollster, anomalous, False)}. Sampling "
        f"error alone does not explain {'it' if len(anomalous) == 1 else 'them'}{_assumption_words(anomalous)}; "
        f"{_direction_words(lean)}.{_tail_words(w, pollster, anomalous)}")]
    with_total = [row for row in own if _p(row, True) is not None]
    if with_total:
        w = _Writer()
        beyond = [row for row in with_total if _anomalous(row, True)]
        total = w.num(len(with_total), "d", analysis="polls", pollster=pollster, field="count_total")
        if beyond:
            text = (f"{w.num(len(beyond), 'd', analysis='polls', pollster=pollster, field='anomalous_total')} of "
                    f"{total} figures {'is' if len(beyond) == 1 else 'are'} anomalous (p total ≤ {ALPHA:g}): "
                    f"{_figure_list(w, pollster, beyond, True)}; "
                    f"{_direction_words({leans(row, incumbent) for row in beyond})}.")
        else:
            text = (f"none of its {total} figures is anomalous (p total > {ALPHA:g}): its gaps are within exit "
                    "polls' usual total error.")
        verdicts.append(w.verdict(f"{name}, against total survey error (sampling plus exit polls' historical "
                                  f"non-sampling error): {text}"))
    return verdicts, lean


def mechanism_verdict(pollster: str, name: str, entries: list[dict]) -> Verdict:
    """Which single mechanisms can and cannot produce ``pollster``'s gap in its observed direction
    (``entries``: its :attr:`simkit.polls.compare.Comparison.mechanisms`): those moving the gap the observed way
    and fitting every published figure (:func:`fits_all`), those moving it but misfitting, those that cannot."""
    w = _Writer()

    def fitted(entry: dict) -> str:
        source = {"analysis": "mechanisms", "pollster": pollster, "mechanism": entry["mechanism"]}
        estimate = "" if entry["estimate"] is None else (
            f"{w.num(entry['estimate'], '.3f', **source, field='estimate')} "
            f"[{w.num(entry['low'], '.3f', **source, field='low')}, "
            f"{w.num(entry['high'], '.3f', **source, field='high')}], ")
        fit_p = "" if entry["fit_p"] is None else f", fit p = {w.num(entry['fit_p'], '.2g', **source, field='fit_p')}"
        return (f"{entry['mechanism']} ({estimate}d² = {w.num(entry['d2'], '.1f', **source, field='d2')} on "
                f"{w.num(entry['df'], 'd', **source, field='df')}{fit_p})")

    moving = [e for e in entries if e["moves_gap_observed_way"]]
    fits = [e for e in moving if fits_all(e)]
    misfits = [e for e in moving if e not in fits]
    cannot = [e["mechanism"] for e in entries if not e["moves_gap_observed_way"]]
    judged = entries[0].get("judged_on")
    text = f"{name}, one mechanism at a time (direction judged on {judged}): " if judged else f"{name}: "
    text += (f"can produce the gap in its direction and fit all its figures (fit p > {FITS:g}): "
             + "; ".join(fitted(e) for e in fits) if fits else
             f"no single mechanism both moves the gap in its direction and fits all its figures (fit p > {FITS:g})")
    if misfits:
        text += "; move the gap in its direction but do not fit: " + "; ".join(fitted(e) for e in misfits)
    text += ("; cannot produce a gap in this direction: " + ", ".join(cannot) if cannot else "") + "."
    return w.verdict(text)


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _left_out(joint: dict, labels: dict[str, str]) -> str:
    """The joint test's words for the figures it leaves out (``joint["left_out"]``, figures without sampling
    error), by pollster; "" when none."""
    figures = joint.get("left_out", [])
    if not figures:
        return ""
    pollsters = dict.fromkeys(f["pollster"] for f in figures)
    by_poll = [f"{labels.get(name, name)}'s {_listed([f['option'] for f in figures if f['pollster'] == name])}"
               for name in pollsters]
    return f", leaving out {' and '.join(by_poll)} (no sampling error: the same in every replicate, judged row by row)"


def joint_verdict(joint: dict, labels: dict[str, str]) -> Verdict:
    """Hotelling's T² of all published gaps, with the Monte Carlo floor its p-value is stated against, naming the
    figures without sampling error it leaves out."""
    w = _Writer()
    source = {"analysis": "joint"}
    p, floor = joint["p_value"], joint["p_floor"]
    beyond = joint["p_method"] != "hotelling_f"
    per_poll = "; ".join(
        f"{labels.get(poll['pollster'], poll['pollster'])} T² = "
        f"{w.num(poll['t2'], '.1f', analysis='joint', pollster=poll['pollster'], field='t2')}"
        for poll in joint.get("per_poll", []))
    return w.verdict(
        f"All published figures jointly{_left_out(joint, labels)} (Hotelling's T² against the sampling-only "
        "baseline): T² = "
        f"{w.num(joint['t2'], '.1f', **source, field='t2')}, F = {w.num(joint['f'], '.2f', **source, field='f')} on "
        f"({w.num(joint['df1'], 'd', **source, field='df1')}, {w.num(joint['df2'], 'd', **source, field='df2')}), "
        f"p = {w.num(p, '.2g', **source, field='p_value')} from the F reference, {p_text(p)}; "
        + (f"the simulated replicates confirm p-values only down to "
           f"{w.num(floor, '.2g', **source, field='p_floor')}, so below that the figure is the F reference's "
           "extrapolation, not a Monte Carlo result" if beyond else
           "the Monte Carlo share of replicates as far is "
           f"{w.num(joint['p_monte_carlo'], '.2g', **source, field='p_monte_carlo')}")
        + _size_words(w, joint) + (f". Per poll: {per_poll}." if per_poll else "."))


def _size_words(w: "_Writer", joint: dict) -> str:
    """The joint test's measured size (:func:`simkit.polls.statistics.held_out_size`): how many replicates drawn
    under the sampling-only baseline, each held out, it rejects at :data:`ALPHA`; "" when not measured."""
    if joint.get("size_rejected") is None:
        return ""
    source = {"analysis": "joint"}
    return (f"; its measured size: it rejects {w.count(joint['size_rejected'], **source, field='size_rejected')} of "
            f"{w.num(joint['size_replicates'], 'd', **source, field='size_replicates')} replicates drawn under that "
            f"baseline, each held out and tested against the others, at {ALPHA:g}")


def design_verdicts(designs: list[dict], labels: dict[str, str]) -> list[Verdict]:
    """Per claimed design (not a size assumed from a range): respondents delivered against the claim, and the
    probability that the modelled design reaches it ("improbable" below ``IMPROBABLE``)."""
    verdicts = []
    for entry in designs:
        claimed, probability = entry.get("claimed_respondents"), entry.get("design_probability")
        if claimed is None or entry.get("claim_assumed") or probability is None:
            continue
        w = _Writer()
        source = {"analysis": "designs", "pollster": entry["pollster"]}
        counted = entry["claim_counts"]
        field = "delivered_voters_in_flow" if counted == "voters in the flow" else "delivered_respondents"
        replicates = w.num(entry["replicates"], "d", **source, field="replicates")
        if probability == 0:
            chance = (f"is improbable, P < "
                      f"{w.num(1 / entry['replicates'], '.1g', **source, field='replicates', transform='reciprocal')} "
                      f"(none of {replicates} replicates)")
        else:
            chance = (f"{'is improbable, P' if probability < IMPROBABLE else 'has P'} = "
                      f"{w.num(probability, '.2g', **source, field='design_probability')} (share of {replicates} "
                      "replicates)")
        verdicts.append(w.verdict(
            f"{labels.get(entry['pollster'], entry['pollster'])}'s design: claims "
            f"{w.num(claimed, 'd', **source, field='claimed_respondents')} {counted}; the modelled design delivers "
            f"{w.num(entry[field], 'd', **source, field=field)} on average; reaching the claim {chance}."))
    return verdicts


def poll_verdicts(rows: list[dict], incumbent: str, labels: dict[str, str], *, mechanisms: list[dict] = (),
                  joint: dict | None = None, designs: list[dict] = ()) -> list[Verdict]:
    """Sentences on the published poll figures (``rows``, ``mechanisms``, ``joint``, ``designs``: those of
    :class:`simkit.polls.compare.Comparison`): per pollster, which figures are anomalous beyond sampling error and
    beyond total survey error (``p_total``), in which direction, and which single mechanisms can and cannot
    produce its gap in that direction; the Holm count across all figures; the joint Hotelling T²; the claimed
    designs' delivered samples."""
    verdicts, directions = [], set()
    for pollster in dict.fromkeys(row["pollster"] for row in rows):
        name = labels.get(pollster, pollster)
        own, lean = _pollster_verdicts(pollster, [row for row in rows if row["pollster"] == pollster], name,
                                       incumbent)
        verdicts += own
        directions |= lean
        entries = [entry for entry in mechanisms if entry["pollster"] == pollster]
        if lean and entries:
            verdicts.append(mechanism_verdict(pollster, name, entries))
    if directions:
        w = _Writer()
        still_anomalous = (sum(rejects(p) for p in holm([_p(row, False) for row in rows]))
                           + sum(not consistent(row) for row in rows if "rounding" in row))  # a census: no correction
        verdicts.append(w.verdict(
            f"Across all {w.num(len(rows), 'd', analysis='polls', field='rows')} published figures, "
            f"{w.num(still_anomalous, 'd', analysis='polls', field='holm')} "
            f"{'stays' if still_anomalous <= 1 else 'stay'} anomalous against sampling error alone (p, not p total) "
            f"after Holm's correction for testing them all at {ALPHA:g}."))
    if joint:
        verdicts.append(joint_verdict(joint, labels))
    verdicts += design_verdicts(list(designs), labels)
    if not mechanisms:
        for direction in sorted(directions & set(EXPLANATIONS), reverse=True):
            can, cannot = EXPLANATIONS[direction]
            verdicts.append(Verdict(f"A gap {direction} the incumbent can come from {can}; it cannot come from "
                                    f"{cannot}."))
    if directions:
        verdicts.append(Verdict("This does not show which side is wrong: the polls, the count, or both. Polls that "
                                "agree with a count are not evidence of a clean count either."))
    return verdicts


def result_field(result, name: str):
    """A test result's optional figure ``name``: an attribute of the result, else an entry of its ``extra``
    (fields other analyses may add, e.g. ``calibration``, ``null_z``, ``null_tail_p``)."""
    value = getattr(result, name, None)
    return result.extra.get(name) if value is None else value


def forensic_verdicts(results: list, detects: dict[str, str], *, power_shown: bool) -> list[Verdict]:
    """Sentences on the forensic tests (``results``: :class:`simkit.forensics.TestResult`): against which null
    (:data:`NULL_WORDS`), how many are anomalous at :data:`ALPHA`, which (each with its calibration label and the
    clean elections it rejected, :func:`clean_rejections`), how many tests of nominal size an honest count makes
    anomalous by chance on average (tests × ALPHA, whatever their dependence), how many Holm's correction rejects (naming those it
    rejects on a p-value below the one shown, with or without a test shown anomalous), what each can detect; "no
    anomaly" (and no Holm rejection) is never read as a clean count, and points to each test's power when the
    report shows it (``power_shown``), else says it was not computed."""
    tested = [r for r in results if r.p_value is not None]
    if not tested:
        return []
    anomalous = [r for r in tested if rejects(r.p_value)]
    floors = result_floors(tested)
    floored = [r for r in tested if r.test in floors]
    w = _Writer()
    alarms = holm_alarms(tested)
    against = f"Against {_null_words(tested)}, "
    if not anomalous:
        could_not = (f", and {'none' if len(floored) == len(tested) else 'some'} could"
                     f"{'' if len(floored) == len(tested) else ' not'} have been") if floored else ""
        rejected = f"; {_holm_count(w, alarms, set())}" if alarms else ""
        hedge = "" if alarms else " This is not evidence of a clean count: " + (
            "see each test's power below." if power_shown else
            "what these tests could have detected on these data was not computed (see below).")
        return [w.verdict(
            f"{against}none of the {w.num(len(tested), 'd', analysis='forensics', field='tests')} station-level "
            "tests is "
            f"anomalous (p ≤ {ALPHA:g}){could_not}{rejected}.{hedge}"
        )] + _floor_verdicts(floored) + _detects_verdicts([], alarms, detects)
    names = []
    for r in anomalous:
        label = calibration_label(result_field(r, "calibration"))
        size = clean_rejections(r)
        flags = ([label] if label else []) + ([
            f"rejected {w.num(size[0], 'd', analysis='forensics', test=r.test, field='clean_rejections')} of "
            f"{w.num(size[1], 'd', analysis='forensics', test=r.test, field='clean_elections')} clean elections"]
            if size else [])
        names.append(f"{r.test} ({'; '.join(flags)})" if flags else r.test)
    verdict = w.verdict(
        f"{against}{w.num(len(anomalous), 'd', analysis='forensics', field='anomalous')} of "
        f"{w.num(len(tested), 'd', analysis='forensics', field='tests')} station-level tests "
        f"{'is' if len(anomalous) == 1 else 'are'} anomalous "
        f"(p ≤ {ALPHA:g}): {', '.join(names)}; {_holm_count(w, alarms, {r.test for r in anomalous})}. By chance "
        f"alone, {w.num(len(tested) * ALPHA, '.1f', analysis='forensics', field='expected_by_chance')} of "
        f"{w.num(len(tested), 'd', analysis='forensics', field='tests')} tests of nominal size would be anomalous "
        "on average on an honest count.")
    return [verdict] + _floor_verdicts(floored) + _detects_verdicts([r.test for r in anomalous], alarms, detects)


def clean_rejections(result) -> tuple[int, int] | None:
    """The measured size of a test's reported p-value under its null: how many of the clean elections of the
    false-positive panel it rejected at :data:`ALPHA`, and of how many (the record's ``panel`` measurement,
    :mod:`simkit.forensics.calibration`, held out for a test read empirically); None when not measured."""
    count = measured(result.null).get("panel", {}).get(result.test)
    return None if count is None else (int(count[0]), int(count[1]))


def _null_words(results: list) -> str:
    """The null(s) the ``results`` were read against, in words (:data:`NULL_WORDS`)."""
    return " and ".join(NULL_WORDS.get(null, f"the {null} null") for null in dict.fromkeys(r.null for r in results))


def power_verdicts(counts: dict[str, dict[str, tuple[int, int]]] | None, replicates: int) -> list[Verdict]:
    """The sentence on what the tests could have seen when none rejects (``counts``: plant -> test -> (rejections,
    elections where it ran) over ``replicates`` simulated elections shaped like the data, ``none`` the size:
    :func:`simkit.forensics.power.power_table`'s ``rejections``; None when not computed, no sentence): per planted
    manipulation, the tests rejecting it more often than with nothing planted, with both rates, those whose excess
    is within the two rates' Monte Carlo error (:func:`simkit.forensics.power.above_size`) said so, or that none
    does. "No anomaly" is otherwise read as a clean count by a reader who does not look up a power of 0, and a power
    of 1 in 5 against a size of 0 as a test that sees it."""
    if not counts:
        return []
    w = _Writer()
    size = counts["none"]

    def rate(count: tuple[int, int], plant: str, test: str) -> str:
        return w.num(count[0] / count[1], ".2f", analysis="forensics", plant=plant, test=test, field="power")

    def listed(plant: str, test: str, excess: str) -> str:
        words = f"{test} {rate(counts[plant][test], plant, test)} (size {rate(size[test], 'none', test)}"
        return words + (")" if excess == "clearly" else ": within Monte Carlo error)")

    parts = []
    for plant, row in counts.items():
        if plant == "none":
            continue
        excess = {test: above_size(count, size.get(test, (0, 0))) for test, count in row.items()}
        seen = sorted((test for test in row if excess[test]), key=lambda test: -row[test][0] / row[test][1])
        clearly = [test for test in seen if excess[test] == "clearly"]
        parts.append(f"{plant}: " + (", ".join(listed(plant, test, excess[test]) for test in seen) if seen else
                                     "no test above its size") + ("" if clearly or not seen else
                                                                  "; none clearly above it"))
    return [w.verdict(
        f"What these tests could have seen (power: the share of "
        f"{w.num(replicates, 'd', analysis='forensics', field='power_replicates')} simulated elections shaped like "
        "these data in which a test rejects, with each manipulation the forensic section describes planted; size: "
        "with nothing planted; a power is clearly above its size when Fisher's exact test of the two counts, "
        f"one-sided, gives {ALPHA:g} or less): " + "; ".join(parts) + ". A manipulation no test sees clearly above "
        "its size here could have gone unseen: with "
        f"{counted(replicates, 'election', w.num(replicates, 'd', analysis='forensics', field='power_replicates'))} "
        "a power of 0 still allows one of up to "
        f"{w.num(largest_unseen_power(replicates), '.2f', analysis='forensics', field='largest_unseen_power')} "
        f"(one-sided {UNSEEN_LEVEL:.0%}).")]


def _detects_verdicts(anomalous: list[str], alarms: list[str], detects: dict[str, str]) -> list[Verdict]:
    """The sentence on what the ``anomalous`` tests and those Holm's correction rejects (``alarms``) can detect
    (``detects``: each test's malpractice, :data:`simkit.report.catalogue.DETECTS`) and what they cannot say; the
    tests only the family rejects are named as such (the sentence is about their rejections when no test is shown
    anomalous). None when no test has a known malpractice."""
    kinds = sorted({detects.get(test, "") for test in [*anomalous, *alarms]} - {""})
    if not kinds:
        return []
    holm_only = [test for test in alarms if test not in anomalous]
    if anomalous:
        rejected = f" (including {_listed(holm_only)}, rejected after Holm's correction only)" if holm_only else ""
        subject, whose, finding = f"Each anomaly{rejected} is", "its test", "an anomaly"
    else:
        one = len(alarms) == 1
        subject = (f"The rejection{'' if one else 's'} of {_listed(alarms)} (after Holm's correction only) "
                   f"{'is' if one else 'are'}")
        whose, finding = "its test" if one else "each test", "a rejection"
    return [Verdict(f"{subject} consistent with the malpractice {whose} is built to detect (" + "; ".join(kinds)
                    + f") and with honest patterns its null does not model; {finding} is not proof of malpractice "
                    "and does not say where it happened (see the follow-up lists).")]


def _holm_count(w: _Writer, alarms: list[str], anomalous: set[str]) -> str:
    """How many tests Holm's correction rejects (``alarms``, :func:`simkit.forensics.holm_alarms`; the count
    recorded by ``w``), what that does beside the ``anomalous`` tests (:func:`_holm_clause`) and which tests the
    family leaves out."""
    return (f"{w.count(len(alarms), analysis='forensics', field='holm')} {_holm_clause(alarms, anomalous)} "
            f"(tests whose measured size on clean elections is above nominal, or was not measured under this null, "
            f"are left out of that count)")


def _holm_clause(alarms: list[str], anomalous: set[str]) -> str:
    """What the Holm count of the verdict does (``alarms``: the tests Holm's correction rejects,
    :func:`simkit.forensics.holm_alarms`), its verb agreeing with the count, naming them: ``stay so`` when they
    are among the ``anomalous`` tests; else it names those that are not, rejected on the p-value the family reads
    (:func:`simkit.forensics.family_p_value`: a simulated null's fitted tail, past its Monte Carlo p-value), not on
    the one shown."""
    beyond = [test for test in alarms if test not in anomalous]
    one = len(alarms) <= 1  # "none stays so", "1 stays so"
    holm = "after Holm's correction across the calibrated tests"
    if not beyond:
        return f"{'stays' if one else 'stay'} so {holm}" + (f": {_listed(alarms)}" if alarms else "")
    on = ("on its null's tail p-value, below the one shown for it" if len(beyond) == 1 else
          "on their nulls' tail p-values, below the ones shown for them")
    which = ":" if len(beyond) == len(alarms) else f" ({_listed(alarms)}), of which"
    return f"{'rejects' if one else 'reject'} {holm}{which} {_listed(beyond)} {on}"


def _floor_verdicts(floored: list) -> list[Verdict]:
    """The sentence on the tests (``floored``: results carrying ``smallest_p`` and, but for results saved before
    they did, the ``null_draws`` it rests on, :mod:`simkit.forensics.floor`) whose p-value could not fall to
    :data:`ALPHA` with their null draws: they could not reject, whatever the data; none when there are none. The
    sentence states their floors, and their draws when every result records them (each a range when they
    differ)."""
    if not floored:
        return []
    w = _Writer()
    floors = sorted({r.extra["smallest_p"] for r in floored})
    recorded = [r.extra.get("null_draws") for r in floored]
    draws = [] if None in recorded else sorted(set(recorded))
    names = ", ".join(r.test for r in floored)
    one = len(floored) == 1
    if not draws:
        with_draws = ""
    elif len(draws) == 1:
        with_draws = f"with {counted(draws[0], 'null draw', _span(w, draws, 'd', 'draws'))} "
    else:
        with_draws = f"with {_span(w, draws, 'd', 'draws')} null draws "
    return [w.verdict(
        f"{names} could not reject: {with_draws}{'its' if one else 'their'} smallest "
        f"{'p-value is' if len(floors) == 1 else 'p-values are'} {_span(w, floors, '.3g', 'smallest_p')}, above "
        f"{ALPHA:g}, so {'its verdict says' if one else 'their verdicts say'} nothing about these data (at least "
        f"{w.num(minimum_draws(), 'd', analysis='forensics', field='minimum_draws')} draws are needed).")]


def _span(w: _Writer, values: list[float], spec: str, field: str) -> str:
    """``values`` (sorted) as ``low to high``, or the one value when all are equal, each number recorded by ``w``
    as the forensic figure ``field``."""
    ends = values[:1] if values[0] == values[-1] else [values[0], values[-1]]
    return " to ".join(w.num(value, spec, analysis="forensics", field=field) for value in ends)
