"""The short answer: verdict sentences generated from the analyses' numbers by stated rules.

Every threshold lives in :data:`THRESHOLDS` (shown in the report's appendix); every number a sentence shows
is recorded in its :class:`Verdict` ``figures`` with where it came from, so a test can check each against
the analysis result. Wording: "anomalous (p < 0.05)", "consistent with", "not evidence of a clean count";
no sentence calls anything fraud.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..forensics.core import ALPHA, holm

#: the thresholds every rule below uses (name -> (value, what it decides))
THRESHOLDS = {
    "alpha": (ALPHA, "a published figure or a forensic test is anomalous when its p-value is below this"),
    "family": ("Holm", "across all published figures (or all forensic tests) of a report, the figures that stay "
                       "below alpha after Holm's step-down correction are counted separately"),
    "direction": (0.0, "a poll's gap (published − simulated) leans toward the incumbent when it raises the "
                       "incumbent's share or lowers another option's, else away from the incumbent"),
}

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
        text = format(value, spec).replace("-", "−") if spec != "d" else format(int(value), ",d")
        self.figures.append(Number(float(value), text, source))
        return text

    def verdict(self, text: str) -> Verdict:
        return Verdict(text, self.figures)


def p_text(p: float) -> str:
    """The stated wording of a p-value against :data:`ALPHA`."""
    return f"anomalous (p < {ALPHA:g})" if p < ALPHA else f"consistent with it (p ≥ {ALPHA:g})"


def leans(row: dict, incumbent: str) -> str:
    """``toward`` or ``away``: the direction of a poll row's gap relative to the incumbent."""
    gap = row["published"] - row["simulated_mean"]
    return "toward" if (gap > 0) == (row["option"] == incumbent) else "away"


def _p(row: dict, total: bool) -> float | None:
    value = row.get("p_total") if total else row.get("p_value")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def poll_verdicts(rows: list[dict], incumbent: str, labels: dict[str, str]) -> list[Verdict]:
    """Sentences on the published poll figures (``rows``: :attr:`simkit.compare.Comparison.rows`): per pollster,
    which figures are anomalous against polls drawn from an honest count equal to the official one, in which
    direction, and which explanations can produce a gap in that direction. With ``p_total`` in the rows (total
    survey error), the figures beyond it are stated too."""
    verdicts = []
    adjusted = holm([_p(row, False) for row in rows])
    family = sum(p is not None and p < ALPHA for p in adjusted)
    directions = set()
    for pollster in dict.fromkeys(row["pollster"] for row in rows):
        own = [row for row in rows if row["pollster"] == pollster]
        name = labels.get(pollster, pollster)
        w = _Writer()
        anomalous = [row for row in own if _p(row, False) is not None and _p(row, False) < ALPHA]
        if not anomalous:
            verdicts.append(w.verdict(
                f"{name}: all {w.num(len(own), 'd', analysis='polls', pollster=pollster, field='count')} published "
                f"figures are consistent with the official count within sampling error (p ≥ {ALPHA:g})."))
            continue
        parts = []
        for row in anomalous:
            source = {"analysis": "polls", "pollster": pollster, "option": row["option"]}
            parts.append(f"{row['option']} {w.num(row['published'], '.2f', **source, field='published')}% published "
                         f"against {w.num(row['simulated_mean'], '.2f', **source, field='simulated_mean')}% "
                         f"simulated (z = {w.num(row['z'], '+.1f', **source, field='z')})")
        lean = {leans(row, incumbent) for row in anomalous}
        directions |= lean
        direction = ("every one of these gaps leans toward the incumbent" if lean == {"toward"} else
                     "every one of these gaps leans away from the incumbent" if lean == {"away"} else
                     "the gaps lean both ways")
        verdicts.append(w.verdict(
            f"{name}: {w.num(len(anomalous), 'd', analysis='polls', pollster=pollster, field='anomalous')} of "
            f"{w.num(len(own), 'd', analysis='polls', pollster=pollster, field='count')} published figures "
            f"{'is' if len(anomalous) == 1 else 'are'} anomalous (p < {ALPHA:g}) against polls drawn from an honest count equal to the official one: "
            f"{'; '.join(parts)}. Sampling error alone does not explain them; {direction}."))
        beyond_total = [row for row in own if _p(row, True) is not None]
        if beyond_total:
            w = _Writer()
            still = [row for row in beyond_total if _p(row, True) < ALPHA]
            verdicts.append(w.verdict(
                f"{name}, allowing for total survey error (non-sampling error as stated in the config): "
                f"{w.num(len(still), 'd', analysis='polls', pollster=pollster, field='anomalous_total')} of "
                f"{w.num(len(beyond_total), 'd', analysis='polls', pollster=pollster, field='count_total')} "
                f"figures remain anomalous (p < {ALPHA:g})."))
    if directions:
        w = _Writer()
        verdicts.append(w.verdict(
            f"Across all {w.num(len(rows), 'd', analysis='polls', field='rows')} published figures, "
            f"{w.num(family, 'd', analysis='polls', field='holm')} stay anomalous after Holm's correction for "
            f"testing them all at {ALPHA:g}."))
    for direction in sorted(directions, reverse=True):
        can, cannot = EXPLANATIONS[direction]
        verdicts.append(Verdict(f"A gap {direction} the incumbent can come from {can}; it cannot come from "
                                f"{cannot}."))
    if directions:
        verdicts.append(Verdict("This does not show which side is wrong: the polls, the count, or both. Polls that "
                                "agree with a count are not evidence of a clean count either."))
    return verdicts


def result_field(result, name: str):
    """A test result's optional figure ``name``: an attribute of the result, else an entry of its ``extra``
    (fields other analyses may add, e.g. ``alternative``, ``uncalibrated``, ``measured_size``)."""
    value = getattr(result, name, None)
    return result.extra.get(name) if value is None else value


def forensic_verdicts(results: list, detects: dict[str, str]) -> list[Verdict]:
    """Sentences on the forensic tests (``results``: :class:`simkit.forensics.TestResult`): how many are anomalous
    at :data:`ALPHA`, which, what each can detect; "no anomaly" is never read as a clean count."""
    tested = [r for r in results if r.p_value is not None]
    if not tested:
        return []
    anomalous = [r for r in tested if r.p_value < ALPHA]
    w = _Writer()
    adjusted = holm([r.p_value for r in tested])
    family = sum(p < ALPHA for p in adjusted)
    if not anomalous:
        return [w.verdict(
            f"None of the {w.num(len(tested), 'd', analysis='forensics', field='tests')} station-level tests is "
            f"anomalous (p < {ALPHA:g}). This is not evidence of a clean count: see each test's power below.")]
    names = []
    for r in anomalous:
        flag = " (uncalibrated)" if result_field(r, "uncalibrated") else ""
        names.append(f"{r.test}{flag}")
    verdicts = [w.verdict(
        f"{w.num(len(anomalous), 'd', analysis='forensics', field='anomalous')} of "
        f"{w.num(len(tested), 'd', analysis='forensics', field='tests')} station-level tests "
        f"{'is' if len(anomalous) == 1 else 'are'} anomalous "
        f"(p < {ALPHA:g}): {', '.join(names)}; {w.num(family, 'd', analysis='forensics', field='holm')} stay so "
        f"after Holm's correction across the tests.")]
    kinds = sorted({detects.get(r.test, "") for r in anomalous} - {""})
    if kinds:
        verdicts.append(Verdict("Each anomaly is consistent with the malpractice its test is built to detect ("
                                + "; ".join(kinds) + ") and with honest patterns its null does not model; an anomaly "
                                "is not proof of malpractice and does not say where it happened (see the follow-up "
                                "lists)."))
    return verdicts
