"""A poll's design as modelled: the claimed design resolved against the simulated stations
(:func:`resolve_design`), the design proposed when the claim cannot be met (:func:`proposed_design`), and the
respondents each design delivers against the claim (:func:`design_entry`, flagged below
1 − :data:`SHORTFALL_TOLERANCE` of it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkit.config.polls import ExitPollConfig, check_poll_design, midpoint, misreport_matrix, quota_per_station
from simkit.model.exit_poll import PollDesign, design_feasibility, pps_shortfall
from simkit.errors import InputError
from simkit.polls.draws import Draws
from simkit.polls.elections import Poll, SimulatedElections, poll_kind


#: a design delivering less than (1 - this) of its claimed respondents is flagged
SHORTFALL_TOLERANCE = 0.01


@dataclass(frozen=True)
class Resolved:
    """A poll's design at one set of assumed values, and the feasibility note of its claimed size."""

    design: PollDesign
    note: str = ""


def resolve_design(poll: Poll, options: list[str], invalid: str | None, election: SimulatedElections, *,
                   unbiased: bool, stations: float | None = None, sample_size: float | None = None,
                   response_rate: float | None = None, source: str = "polls") -> Resolved:
    """:func:`proposed_design`, checked: raises :class:`~simkit.errors.InputError` (``source: field: problem``)
    for a design drawn proportional to size that asks for more stations than hold voters
    (:func:`pps_design_problem`)."""
    resolved = proposed_design(poll, options, invalid, election, unbiased=unbiased, stations=stations,
                               sample_size=sample_size, response_rate=response_rate)
    problem = pps_design_problem(poll, resolved.design, election, resolved.note)
    if problem is not None:
        raise InputError(f"{source}: {problem}")
    return resolved


def proposed_design(poll: Poll, options: list[str], invalid: str | None, election: SimulatedElections, *,
                    unbiased: bool, stations: float | None = None, sample_size: float | None = None,
                    response_rate: float | None = None) -> Resolved:
    """The :class:`PollDesign` of ``poll``; unknown figures at their range midpoints unless given.

    ``unbiased`` drops differential non-response and misreporting (the sampling-only baseline).
    A claimed ``sample_size`` the electorate cannot supply is replaced by the nearest feasible design.
    Unchecked against the stations that hold voters (:func:`pps_design_problem`).
    """
    valid = np.array([name != invalid for name in options])
    n_stations = round(stations if stations is not None else midpoint(poll.stations))
    if not isinstance(poll, ExitPollConfig):
        return Resolved(PollDesign(n_stations=n_stations, valid=valid, selection=poll.selection,
                                   by_region=poll.by_region, respondents="whole_flow", estimator=poll.estimator))
    rate = response_rate if response_rate is not None else midpoint(poll.response_rate)
    claimed = sample_size if sample_size is not None else (
        midpoint(poll.sample_size) if poll.sample_size is not None else None)
    selection, mode, per_station, note = poll.selection, poll.respondents, poll.per_station, ""
    if claimed is not None:
        check = design_feasibility(n_stations, round(claimed), election.registered, election.mean_voters, rate,
                                   poll.selection)
        if not check.feasible:
            selection, note = check.selection, check.message
            if check.respondents == "whole_flow":
                mode = "whole_flow"
    if mode == "fixed" and (per_station is None or note):
        per_station = quota_per_station(claimed, n_stations, rate)
    propensity, misreport = None, None
    if not unbiased:
        propensity = np.array([poll.response_propensity.get(name, 1.0) for name in options])
        misreport = misreport_matrix(poll.misreport, options)
    design = PollDesign(n_stations=n_stations, valid=valid, selection=selection, by_region=poll.by_region,
                        respondents=mode, per_station=per_station or 0, every_kth=poll.every_kth or 1,
                        response_rate=rate, response_propensity=propensity, misreport=misreport,
                        estimator=poll.estimator)
    return Resolved(design, note)


def pps_design_problem(poll: Poll, design: PollDesign, election: SimulatedElections, note: str = "") -> str | None:
    """The problem (``field: problem``) of ``design`` (``poll``'s) when, drawn proportional to size, it asks
    ``election`` for more stations than hold voters (a station of 0 voters has no chance of being drawn:
    :func:`simkit.model.exit_poll.pps_shortfall`); None otherwise. When ``poll`` is simple and the draw
    proportional to size was substituted for its infeasible claimed size, the text says so with ``note``, the
    feasibility note."""
    if design.selection != "pps":
        return None
    held = pps_shortfall(design.n_stations, election.registered)
    if held is None:
        return None
    substituted = (f" (proportional to size in place of the simple draw, for the claimed size: {note})"
                   if poll.selection != design.selection else "")
    return (f"{poll_kind(poll)}.{poll.name}.stations: {design.n_stations} stations drawn proportional to size from the "
            f"electorate, which has {held} with voters{substituted}")


def design_entry(poll: Poll, resolved: Resolved, draws: Draws) -> dict:
    """What the modelled design delivers: ``delivered_respondents`` (mean over replicates) against the
    ``claimed_respondents``, and ``design_probability``, the share of replicates in which the design reaches
    the claim. For a whole-flow design the claim counts voters in the flow (before refusals, since the
    pollster approaches every voter); otherwise it counts respondents."""
    respondents = draws.reported_totals.sum(axis=-1)
    claimed = midpoint(poll.sample_size) if isinstance(poll, ExitPollConfig) and poll.sample_size is not None else None
    design = resolved.design
    reached = draws.voters.sum(axis=-1) if design.respondents == "whole_flow" else respondents
    probability = float(np.mean(reached >= claimed)) if claimed is not None else None
    return {"pollster": poll.name, "stations": design.n_stations, "selection": design.selection,
            "respondents": design.respondents, "per_station": design.per_station or None,
            "claimed_respondents": round(claimed) if claimed is not None else None,
            "claim_assumed": isinstance(poll, ExitPollConfig) and isinstance(poll.sample_size, list),
            "claim_counts": None if claimed is None else ("voters in the flow" if design.respondents == "whole_flow"
                                                           else "respondents"),
            "delivered_respondents": float(respondents.mean()),
            "delivered_voters_in_flow": float(draws.voters.sum(axis=-1).mean()),
            "design_probability": probability, "replicates": len(respondents), "note": resolved.note or "feasible"}


def design_flags(entry: dict) -> list[str]:
    """Plain sentences for a design that does not deliver its claim (a size assumed from a range is not a
    claim: no sentence)."""
    claimed, probability = entry["claimed_respondents"], entry["design_probability"]
    if claimed is None or entry["claim_assumed"]:
        return []
    flags = []
    delivered = entry["delivered_respondents"]
    if entry["claim_counts"] == "respondents" and delivered < (1 - SHORTFALL_TOLERANCE) * claimed:
        flags.append(f"{entry['pollster']}: claims {claimed:,} respondents; {entry['stations']} stations with "
                     f"{entry['per_station']} voters approached each deliver {delivered:,.0f} on average (stations "
                     f"smaller than the quota give fewer): shortfall {claimed - delivered:,.0f}")
    if probability is not None and probability < 0.5:
        counted = entry["claim_counts"]
        mean = entry["delivered_voters_in_flow"] if counted == "voters in the flow" else delivered
        chance = (f"in {probability:.1%} of {entry['replicates']:,} replicates: improbable, not impossible"
                  if probability > 0 else f"in none of {entry['replicates']:,} replicates (P < {1 / entry['replicates']:.1g})")
        flags.append(f"{entry['pollster']}: the design reaches {claimed:,} {counted} {chance} (mean {mean:,.0f})")
    return flags


def design_problems(cfg, polls: list[Poll], electorate) -> list[str]:
    """Problems (``dotted.field: problem``) of ``polls``' designs (of ``cfg``) against its ``electorate``
    (:class:`simkit.electorate.build.Electorate`) and ballot: :func:`simkit.config.polls.check_poll_design`."""
    return [problem for poll in polls for problem in check_poll_design(
        poll, electorate.n_stations, electorate.registered, cfg.option_names, cfg.invalid_option_name)]
