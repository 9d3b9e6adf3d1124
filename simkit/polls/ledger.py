"""The joint ledger: the rows' z and p at :data:`LEDGER_POINTS` points of a Latin hypercube over every stated
assumption jointly (:func:`ledger_axes`: design fields, biases, swept config fields), and its verdict per
published figure (:func:`ledger_verdicts`). The hypercube is drawn from ``[seed, streams.LEDGER]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy import stats

from simkit import streams
from simkit.schema import rejects
from simkit.config.polls import ExitPollConfig
from simkit.polls.checks import too_few_answers
from simkit.polls.designs import Resolved, resolve_design
from simkit.polls.draws import draw_pooled
from simkit.polls.elections import Poll, SimulatedElections, Worlds, poll_kind, polls_at
from simkit.polls.figures import consistent, poll_rows


#: points of the joint ledger's Latin hypercube over the stated assumptions
LEDGER_POINTS = 16


@dataclass(frozen=True)
class Axis:
    """One stated assumption of the joint ledger: ``name`` (dotted), the poll it applies to (index, or None
    for a swept config field), and either ``values`` (discrete) or a ``span`` (low, high) drawn log-uniform
    (``log``) or uniform."""

    name: str
    poll: int | None
    values: tuple = ()
    span: tuple[float, float] | None = None
    log: bool = True

    def at(self, u: float):
        if self.span is None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        low, high = self.span
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if self.log else low + u * (high - low)


def ledger_axes(worlds: Worlds, polls: list[Poll], invalid: str | None) -> list[Axis]:
    """Every stated assumption: each poll's unknown ``stations``, ``sample_size`` (range and other published
    readings), ``response_rate``, its estimator (raw or size-weighted) and, for exit polls with an invalid
    option, the share of invalid-ballot voters who name the incumbent; and every swept config field."""
    axes = []
    for p, poll in enumerate(polls):
        prefix = f"{poll_kind(poll)}.{poll.name}"
        if isinstance(poll.stations, list):
            axes.append(Axis(f"{prefix}.stations", p, span=tuple(poll.stations)))
        if not isinstance(poll, ExitPollConfig):
            continue
        if isinstance(poll.sample_size, list):
            axes.append(Axis(f"{prefix}.sample_size", p, span=tuple(poll.sample_size)))
        if poll.sample_size_readings:
            axes.append(Axis(f"{prefix}.sample_size_reading", p, values=("stated", *poll.sample_size_readings)))
        if isinstance(poll.response_rate, list):
            axes.append(Axis(f"{prefix}.response_rate", p, span=tuple(poll.response_rate)))
        axes.append(Axis(f"{prefix}.estimator", p, values=("raw", "weighted")))
        if invalid is not None:
            axes.append(Axis(f"{prefix}.invalid_name_incumbent", p, span=(0.0, 1.0), log=False))
    axes += [Axis(dim, None, values=tuple(range(worlds.sizes[dim]))) for dim in worlds.sweep_dims]
    return axes


def _ledger_design(poll: Poll, p: int, assumed: dict, options: list[str], invalid: str | None, incumbent: str,
                   election: SimulatedElections, source: str) -> Resolved:
    """The sampling-only design of poll ``p`` at one point of the assumption space (``source`` names the
    config in an error: :func:`resolve_design`)."""
    prefix = f"{poll_kind(poll)}.{poll.name}."
    mine = {name.removeprefix(prefix): value for name, value in assumed.items() if name.startswith(prefix)}
    sample_size = mine.get("sample_size")
    if mine.get("sample_size_reading", "stated") != "stated":
        sample_size = mine["sample_size_reading"]
    resolved = resolve_design(poll, options, invalid, election, unbiased=True, stations=mine.get("stations"),
                              sample_size=sample_size, response_rate=mine.get("response_rate"), source=source)
    design = resolved.design
    if "estimator" in mine:
        design = replace(design, estimator=mine["estimator"])
    if mine.get("invalid_name_incumbent"):
        matrix = np.eye(len(options))
        row = options.index(invalid)
        matrix[row, row] = 1.0 - mine["invalid_name_incumbent"]
        matrix[row, options.index(incumbent)] = mine["invalid_name_incumbent"]
        design = replace(design, misreport=matrix)
    return Resolved(design, resolved.note)


def ledger_entries(worlds: Worlds, polls, options, invalid, incumbent, seed, base, reference, points: int,
            tick: Callable[[], object], source: str, needed: int) -> list[dict]:
    """The rows' z and p at ``points`` points of a Latin hypercube over every stated assumption jointly
    (:func:`ledger_axes`); one entry per point, poll and published figure, with the assumed values. The points
    are visited world by world, the baseline's last (so that worlds simulated on demand are made once each);
    the entries are in point order. ``tick`` is called after each poll drawn; ``source`` names the config in an
    error (:func:`resolve_design`). At a point where a poll's design gets valid answers in fewer than ``needed``
    replicates (:func:`too_few_answers`: a figure of one replicate would pass for a census), its entries have no
    z or p, and ``not_compared`` says why (:func:`ledger_verdicts` leaves them out, :func:`ledger_flags` counts
    them)."""
    axes = ledger_axes(worlds, polls_at(polls, worlds, base), invalid)
    if not axes or points < 1:
        return []
    valid = np.array([name != invalid for name in options])
    unit = stats.qmc.LatinHypercube(d=len(axes), seed=np.random.default_rng([seed, streams.LEDGER])).random(points)
    assumed_at = [{axis.name: axis.at(value) for axis, value in zip(axes, u)} for u in unit]
    points_at = [{**base, **{axis.name: assumed[axis.name] for axis in axes if axis.poll is None}}
                 for assumed in assumed_at]
    order = sorted(range(points), key=lambda k: (points_at[k] == base, sorted(points_at[k].items())))
    entries: dict[int, list[dict]] = {}
    election, at = None, None
    for k in order:
        assumed, point = assumed_at[k], points_at[k]
        if point != at:
            election = None  # let the previous world go before the next is made
            election, at = worlds.election(point), point
            count = election.count_shares(valid)
        entries[k] = []
        for p, poll in enumerate(polls_at(polls, worlds, point)):
            resolved = _ledger_design(poll, p, assumed, options, invalid, incumbent, election, source)
            draws = draw_pooled(election.for_poll(poll), resolved.design, seed, p)
            mine = {name: (float(value) if isinstance(value, (int, float, np.number)) else value)
                    for name, value in assumed.items()
                    if name.startswith(f"{poll_kind(poll)}.{poll.name}.") or name in worlds.sweep_dims}
            tick()
            _, shortfall = too_few_answers(draws, needed)
            if shortfall is not None:
                entries[k] += [{"point": k, "assumed": mine, "pollster": poll.name, "option": option,
                                **dict.fromkeys(("gap_sd", "z", "p_value", "z_total", "p_total")),
                                "feasibility": resolved.note or "feasible",
                                "not_compared": shortfall}
                               for option in poll.published]
                continue
            for row in poll_rows(poll, draws, resolved.design, options, incumbent, seed, p, count, reference,
                                 with_misreport=False):
                entries[k].append({"point": k, "assumed": mine, "pollster": poll.name, "option": row["option"],
                                   "gap_sd": row["gap_sd"], "z": row["z"], "p_value": row["p_value"],
                                   "z_total": row["z_total"], "p_total": row["p_total"],
                                   "feasibility": resolved.note or "feasible",
                                   **({"rounding": row["rounding"]} if "rounding" in row else {})})
    return [entry for k in range(points) for entry in entries[k]]


def ledger_flags(ledger: list[dict]) -> list[str]:
    """Per poll, the joint ledger's points at which its design gets too few valid answers to be compared (their
    entries' ``not_compared``): left out of its rows' z range and shares consistent."""
    flags = []
    points = len({entry["point"] for entry in ledger})
    for pollster in dict.fromkeys(entry["pollster"] for entry in ledger):
        left = sorted({entry["point"] for entry in ledger if entry["pollster"] == pollster and "not_compared" in entry})
        if left:
            flags.append(f"{pollster}: at {len(left)} of {points} joint-ledger points (entries' not_compared) its "
                         "design gets a valid answer in too few replicates to publish a comparable figure: those "
                         "points are left out of its ledger verdicts")
    return flags


#: a poll field the joint ledger varies (:func:`ledger_axes`), in words
AXIS_WORDS = {"stations": "stations", "sample_size": "sample size", "sample_size_reading": "reading of the sample size",
              "response_rate": "response rate", "estimator": "estimator (raw or weighted)",
              "invalid_name_incumbent": "share of invalid-ballot voters who name the incumbent (0 to 1: how they "
                                        "answer is a poll-side bias, the mechanism invalid_name_incumbent)"}


def _poll_field(name: str) -> bool:
    """Whether a ledger axis ``name`` is a poll's field (``exit_poll.<poll>.<field>``), not a swept config field."""
    return name.split(".")[0] in ("exit_poll", "quick_count") and name.count(".") == 2


def ledger_varied(ledger: list[dict]) -> str:
    """What the joint ledger's entries varied (their ``assumed`` values' names, :func:`ledger_axes`), in words: the
    polls' fields (:data:`AXIS_WORDS`), then the swept config fields; "" without entries. Not sampling alone: the
    invalid-ballot voters' answer is a bias of the poll, which moves its figures as a mechanism does."""
    names = dict.fromkeys(name for entry in ledger for name in entry["assumed"])
    found = {name.split(".")[2] for name in names if _poll_field(name)}
    fields = [field for field in AXIS_WORDS if field in found]
    swept = [name for name in names if not _poll_field(name)]
    words = [f"each poll's {', '.join(AXIS_WORDS[field] for field in fields)}"] if fields else []
    return "; ".join(words + ([f"the swept {', '.join(swept)}"] if swept else []))


def z_span(low: float, high: float) -> str:
    """A figure's z range, ``low`` to ``high``; an infinite z (a figure without sampling error, read from every
    voter or every station's count) as ±∞, saying why."""
    ends = [f"{value:+.1f}".replace("inf", "∞") for value in (low, high)]
    why = "" if math.isfinite(low) and math.isfinite(high) else " (no sampling error)"
    return f"{ends[0]} to {ends[1]}{why}"


def ledger_verdicts(rows: list[dict], ledger: list[dict]) -> None:
    """Add to each row its range over the joint ledger, over the points where its poll was compared (entries
    without ``not_compared``): ``points_compared`` of the ``ledger_points``, ``z_min``, ``z_max``,
    ``share_consistent`` (share of those points where p > 0.05, or a census figure is within its rounding:
    :func:`consistent`; ``share_consistent_total`` likewise for p_total) and ``verdict`` (:func:`ledger_verdict`);
    all but the counts None when it was compared nowhere."""
    points = len({entry["point"] for entry in ledger})
    for row in rows:
        entries = [e for e in ledger if e["pollster"] == row["pollster"] and e["option"] == row["option"]
                   and "not_compared" not in e]
        row.update(points_compared=len(entries), ledger_points=points)
        if not entries:
            row.update(z_min=None, z_max=None, share_consistent=None, share_consistent_total=None, verdict=None)
            continue
        zs = [e["z"] for e in entries]
        agree = np.array([consistent(e) for e in entries])
        totals = [not rejects(e["p_total"]) for e in entries if e["p_total"] is not None]
        row.update(z_min=float(min(zs)), z_max=float(max(zs)), share_consistent=float(agree.mean()),
                   share_consistent_total=float(np.mean(totals)) if totals else None,
                   verdict=ledger_verdict(agree, points))


def ledger_verdict(agree: np.ndarray, points: int) -> str:
    """A figure's ledger verdict from ``agree`` (K,), whether it is consistent (:func:`consistent`) at each of
    the K points where its poll was compared, of the ledger's ``points`` (N): ``consistent`` or ``rejected``
    ``everywhere`` when K = N, ``wherever compared`` when K < N (points without answers say nothing), else
    ``depends``."""
    where = "everywhere" if len(agree) == points else "wherever compared"
    return f"consistent {where}" if agree.all() else f"rejected {where}" if not agree.any() else "depends"


def compared_everywhere(row: dict) -> bool:
    """Whether a row's poll was compared at every point of the joint ledger (:func:`ledger_verdicts`)."""
    return row["points_compared"] == row["ledger_points"]


def ledger_space(row: dict, number: Callable[[int, str], str] = lambda value, name: f"{value:,d}") -> str:
    """Where a row's ledger share consistent and verdict were taken (:func:`ledger_verdicts`): ``the assumption
    space`` when its poll was compared at every point, else ``the K of N points where its design gets answers``;
    ``number(value, field)`` writes K (field ``points_compared``) and N (``ledger_points``)."""
    if compared_everywhere(row):
        return "the assumption space"
    compared, points = (number(row[name], name) for name in ("points_compared", "ledger_points"))
    return f"the {compared} of {points} points where its design gets answers"


def ledger_share(row: dict) -> str:
    """A row's ledger share consistent for a table cell: ``62%``, or ``62% (5 of 8 points)`` when its poll was
    compared at only 5 of the 8 points."""
    share = f"{row['share_consistent']:.0%}"
    if compared_everywhere(row):
        return share
    return f"{share} ({row['points_compared']} of {row['ledger_points']} points)"
