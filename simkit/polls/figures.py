"""The published figures against the simulated polls: the official reference (:class:`Reference`), how
finely a figure was published (:func:`published_unit`), one row per published figure (:func:`poll_rows`,
:func:`turnout_row`: the gap, z and p against sampling alone and against the total survey error), which figures
each poll publishes (:func:`published_vector`), and the flags that go with the rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from simkit.schema import INTERVAL, rejects
from simkit.config.polls import ExitPollConfig, QuickCountConfig
from simkit.config.precision import last_digit_unit, rounds_to
from simkit.model.exit_poll import PollDesign
from simkit.polls.error import ErrorBaseline, option_class
from simkit.polls.draws import Draws, misreport_needed
from simkit.polls.elections import Poll, SimulatedElections, poll_kind
from simkit.polls.statistics import CENSUS_SPREAD, answered, has_sampling_error, tail_p_value


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


@dataclass(frozen=True)
class Reference:
    """What the polls are measured against: ``official`` (V,) shares of valid votes in percent (the
    simulated count's mean when the config has no official count), the official ``turnout`` in percent
    (None: unknown), the ``against_all`` option names and the total-error ``baseline`` (None: no
    total-error columns)."""

    official: np.ndarray
    turnout: float | None = None
    against_all: tuple[str, ...] = ()
    baseline: ErrorBaseline | None = None

    def option_class(self, option: str, official_percent: float) -> str:
        return option_class("against_all" if option in self.against_all else "candidate", official_percent)


#: the coarsest unit read from a published value (whole percents): a float keeps no trailing zero, so ``0.5`` is
#: as likely "50%" as "50.0%"; read as tenths it would call a census figure 5 points off consistent. A coarser
#: publication states ``precision``.
COARSEST_READ_UNIT = 0.01


def published_unit(value: float, precision: float | None = None) -> float:
    """The unit of a published figure's last stated digit (a fraction, as ``value``): the poll's ``precision``
    when its config states one, else read from ``value`` as the config holds it, a float
    (:func:`~simkit.config.precision.last_digit_unit`: 0.8202 → 0.0001; a float keeps no trailing zero, so 0.820
    reads as 0.82 → 0.01), at most :data:`COARSEST_READ_UNIT` (0.5 → 0.01)."""
    if precision is not None:
        return precision
    return min(last_digit_unit(value), COARSEST_READ_UNIT)


def census_rounding(published_gap: float, census_gap: float, unit: float) -> dict:
    """A census figure's verdict (it has no sampling error, so no p-value): ``consistent`` when its
    ``published_gap`` (published − official, points) is the ``census_gap`` (the census's own, points) published at
    ``unit`` (points, :func:`published_unit`) rounded to nearest or down
    (:func:`~simkit.config.precision.rounds_to`: −unit < published_gap − census_gap ≤ unit/2), up to the census's
    own rounding (:data:`CENSUS_SPREAD`); ``half_unit`` is unit/2."""
    return {"half_unit": unit / 2.0,
            "consistent": rounds_to(census_gap, published_gap, unit, slack=100.0 * CENSUS_SPREAD)}


def census_reading(rounding: dict, number: Callable[[float], str] = "{:g}".format) -> str:
    """A census row's verdict (:func:`census_rounding`) in words, its half unit written by ``number``."""
    rule = f"to nearest, ±{number(rounding['half_unit'])} points, or down"
    return (f"consistent within rounding ({rule})" if rounding["consistent"] else
            f"inconsistent (beyond rounding {rule})")


def consistent(row: dict) -> bool:
    """Whether a row or ledger entry is consistent with the count by sampling error alone: its p-value does not
    reject (:func:`simkit.schema.rejects`: above ALPHA), or for a census figure (``rounding``, no p-value) its gap
    within the published rounding."""
    return row["rounding"]["consistent"] if "rounding" in row else not rejects(row["p_value"])


def total_error_baseline(poll: Poll, reference: Reference) -> ErrorBaseline | None:
    """The non-sampling error ``poll``'s figures are judged with beyond sampling error (``z_total``, ``p_total``):
    the exit polls' history (``reference.baseline``) for an exit poll; None for a quick count, whose observers
    copy the official protocols of its sampled stations: no voter is interviewed, so the refusals, misreporting
    and approach errors that history measures do not apply, and its figures carry the sampling error of its
    station sample alone."""
    return reference.baseline if isinstance(poll, ExitPollConfig) else None


def quick_count_flags(polls: list[Poll], reference: Reference) -> list[str]:
    """The note of each quick count among ``polls`` when exit polls are judged with a total-error baseline
    (:func:`total_error_baseline`): it is not."""
    if reference.baseline is None:
        return []
    return [f"{poll.name}: a quick count (official protocols of sampled stations) is judged by the sampling error "
            "of its station sample alone: exit polls' historical interview error does not apply to it (no z total "
            "or p total)" for poll in polls if isinstance(poll, QuickCountConfig) and publishes(poll)]


def _gap_statistics(simulated: np.ndarray, counted: np.ndarray, published: float, official: float,
                    option_kind: str, baseline: ErrorBaseline | None, unit: float) -> dict:
    """Row figures of one published figure: ``simulated`` (R,) poll estimates and ``counted`` (R,) the
    same replicates' counts, in percent; ``unit`` the published value's last digit in points
    (:func:`published_unit`). z uses the SD of (poll − its replicate's count). A census figure (no sampling
    error: :func:`has_sampling_error`) has no p-value (``p_method`` ``census``) but ``rounding``
    (:func:`census_rounding`). ``baseline``: the non-sampling error of ``option_kind`` added for ``z_total`` and
    ``p_total`` (None: none, and those are None: :func:`total_error_baseline`)."""
    gap = simulated - counted
    published_gap = published - official
    gap_mean, gap_sd = float(np.nanmean(gap)), float(np.nanstd(gap, ddof=1))
    census = {}
    if gap_sd > 0 and has_sampling_error(gap / 100.0):
        z = (published_gap - gap_mean) / gap_sd
        p_value, p_method = tail_p_value(gap, published_gap, z)
    else:  # a census: its gap is the published one up to the publication's rounding, or it is not
        gap_sd = 0.0
        z = math.copysign(math.inf, published_gap - gap_mean) if published_gap != gap_mean else 0.0
        p_value, p_method = None, "census"
        census = {"rounding": census_rounding(published_gap, gap_mean, unit)}
    mean, sd = float(np.nanmean(simulated)), float(np.nanstd(simulated, ddof=1))
    row = {"official": official, "gap": published_gap, "gap_mean": gap_mean, "gap_sd": gap_sd,
           "simulated_mean": mean, "simulated_sd": sd,
           "z": z, "p_value": p_value, "p_method": p_method, "p_floor": 1.0 / (len(gap) + 1),
           "z_unconditional": (published - mean) / sd if sd > 0 else None,
           "option_class": option_kind, "nonsampling_sd": None, "z_total": None, "p_total": None, **census}
    if baseline is not None:
        nonsampling = baseline.sd(option_kind)
        z_total = (published_gap - gap_mean) / math.hypot(gap_sd, nonsampling)
        row.update(nonsampling_sd=nonsampling, z_total=z_total, p_total=float(2.0 * stats.norm.sf(abs(z_total))))
    return row


def poll_rows(poll: Poll, draws: Draws, design: PollDesign, options: list[str], incumbent: str,
              seed: int, poll_index: int, count: np.ndarray, reference: Reference,
              with_misreport: bool = True) -> list[dict]:
    """One row per published option of ``poll`` (shares in percent), over the replicates in which it got a valid
    answer (:func:`answered`). ``count`` (R, V): each replicate's counted shares of the valid options
    (fractions), the replicates ``draws`` were drawn from."""
    valid_names = [name for name, ok in zip(options, design.valid) if ok]
    kept = answered(draws.shares)
    respondents = draws.valid_respondents[kept].mean()
    baseline = total_error_baseline(poll, reference)
    rows = []
    for option, published_share in poll.published.items():
        column = valid_names.index(option)
        simulated = 100.0 * draws.shares[kept, column]
        published = 100.0 * published_share
        official = float(reference.official[column])
        statistics = _gap_statistics(simulated, 100.0 * count[kept, column], published, official,
                                     reference.option_class(option, official), baseline,
                                     100.0 * published_unit(published_share, poll.precision))
        share = statistics["simulated_mean"] / 100.0
        srs_variance = share * (1.0 - share) / respondents
        needed = low = high = None
        if with_misreport and isinstance(poll, ExitPollConfig):
            needed, low, high = misreport_needed(draws, design, options.index(option), options.index(incumbent),
                                                 published_share, seed, poll_index)
        low_q, high_q = np.nanquantile(simulated, INTERVAL)
        rows.append({
            "pollster": poll.name, "option": option, "published": published, **statistics,
            "simulated_low": float(low_q), "simulated_high": float(high_q),
            "design_effect": (statistics["simulated_sd"] / 100.0) ** 2 / srs_variance if srs_variance > 0 else None,
            "bias_needed": published - statistics["simulated_mean"],
            "misreport_needed": _percent(needed), "misreport_needed_low": _percent(low),
            "misreport_needed_high": _percent(high),
        })
    return rows


def turnout_row(poll: ExitPollConfig, draws: Draws, election: SimulatedElections, reference: Reference) -> dict:
    """The poll's published turnout estimate against the official turnout, as a row with option
    ``turnout``. The simulated estimate is the sampled stations' voters over their register, each station
    weighted by 1 / inclusion probability; the count's is ballots over the register in the same replicate. Only
    the replicates in which the poll got a valid answer (:func:`answered`)."""
    kept = answered(draws.shares)
    weights = 1.0 / draws.inclusion[kept]
    registered = election.registered[draws.stations[kept]]
    simulated = 100.0 * (draws.voters[kept] * weights).sum(axis=-1) / (registered * weights).sum(axis=-1)
    counted = 100.0 * election.totals[kept].sum(axis=-1) / election.registered.sum()
    official = reference.turnout if reference.turnout is not None else float(counted.mean())
    published = 100.0 * poll.published_turnout
    statistics = _gap_statistics(simulated, counted, published, official, "turnout",
                                 total_error_baseline(poll, reference),
                                 100.0 * published_unit(poll.published_turnout, poll.precision))
    low_q, high_q = np.nanquantile(simulated, INTERVAL)
    return {"pollster": poll.name, "option": "turnout", "published": published, **statistics,
            "simulated_low": float(low_q), "simulated_high": float(high_q), "design_effect": None,
            "bias_needed": published - statistics["simulated_mean"], "misreport_needed": None,
            "misreport_needed_low": None, "misreport_needed_high": None}


def left_out(polls: list[Poll], keys: list[tuple[int, int]], kept: np.ndarray,
             valid_names: list[str]) -> list[dict]:
    """The published figures (``keys``) without sampling error (``kept`` False, :func:`sampled`), left out of the
    joint test: ``{"pollster", "option"}`` each, in the order of ``keys``."""
    return [{"pollster": polls[p].name, "option": valid_names[column]}
            for (p, column), keep in zip(keys, kept) if not keep]


def census_flags(figures: list[dict]) -> list[str]:
    """One flag per poll with published figures without sampling error (:func:`left_out`), naming them."""
    return [f"{pollster}: {', '.join(f['option'] for f in figures if f['pollster'] == pollster)}: the same in every "
            "simulated replicate (every station's count or every voter read: no sampling error), so left out of the "
            "joint test and the mechanism fits, and judged by the rounding of its publication"
            for pollster in dict.fromkeys(f["pollster"] for f in figures)]


def publishes_turnout(poll: Poll) -> bool:
    """Whether ``poll`` publishes a turnout (an exit poll's ``published_turnout``): a row of the comparison."""
    return isinstance(poll, ExitPollConfig) and poll.published_turnout is not None


def publishes(poll: Poll) -> bool:
    """Whether ``poll`` publishes a figure (a share, or a turnout: :func:`publishes_turnout`): each is a row of the
    comparison."""
    return bool(poll.published) or publishes_turnout(poll)


def figure_fields(poll: Poll) -> list[str]:
    """The dotted config fields that hold ``poll``'s published figures (:func:`publishes`), as its kind has them:
    ``published`` and, for an exit poll, ``published_turnout``."""
    return [f"{poll_kind(poll)}.{poll.name}.{name}" for name in ("published", "published_turnout")
            if name in type(poll).model_fields]


def published_vector(polls: list[Poll], valid_names: list[str]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The published figures as one vector: ``(poll index, valid-option column)`` pairs and values
    (fractions). A poll that publishes every valid option loses its last one (the shares sum to 1, so it
    carries no information and would make the covariance singular)."""
    keys, values = [], []
    for p, poll in enumerate(polls):
        names = [name for name in valid_names if name in poll.published]
        if len(names) == len(valid_names):
            names = names[:-1]
        keys += [(p, valid_names.index(name)) for name in names]
        values += [poll.published[name] for name in names]
    return keys, np.array(values)
