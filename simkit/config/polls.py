"""Config models of exit polls (``[[exit_poll]]``) and quick counts (``[[quick_count]]``).

Shares and rates are fractions in [0, 1]. A figure a pollster did not publish may be given as a
range ``[low, high]`` (``stations``, ``sample_size``, ``response_rate``): comparisons then use the
range's geometric midpoint and report the conclusions at both ends (the assumption ledger).
Checks that need the electorate or the option list are in :func:`check_poll_design`.

Example (TOML)::

    [[exit_poll]]
    name = "socis"
    stations = 379
    respondents = "whole_flow"
    sample_size = 482000               # claimed respondents
    response_rate = [0.6, 1.0]          # unknown: a range
    misreport = { against_all = { tokayev = 0.1 } }
    published = { tokayev = 0.8202, against_all = 0.0422 }
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, Field, PlainValidator, model_validator

from simkit.errors import listed
from simkit.model.exit_poll import pps_shortfall
from simkit.types import MAX_REGISTER, MAX_STATIONS, STRICT, Identifier, Share, _positive_share

#: published figures are rounded; half a point allows 10 options rounded to 0.1 pp
PUBLISHED_SUM_TOLERANCE = 0.005
#: a misreporting row given in full (diagonal included) must sum to 1 within this
MISREPORT_SUM_TOLERANCE = 1e-6


def _row_total(row: dict[str, float]) -> dict[str, float]:
    total = sum(row.values())
    if total > 1.0 + MISREPORT_SUM_TOLERANCE:
        raise ValueError(f"shares sum to {total:.6g}, more than 1")
    return row


def _published_total(published: dict[str, float]) -> dict[str, float]:
    total = sum(published.values())
    if total > 1.0 + PUBLISHED_SUM_TOLERANCE:
        raise ValueError(f"shares sum to {total:.4f}, more than 1")
    return published


def _number_or_range(check, kind):
    """A validator accepting a number or a ``[low, high]`` range, each value passed through ``check``."""
    def validate(value):
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"a range must be [low, high], got [{listed(value)}]")
            low, high = (validate(item) for item in value)
            if low > high:
                raise ValueError(f"a range must be [low, high] with low <= high, got [{listed(value)}]")
            return [low, high]
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (kind is int and value != int(value))):
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'} or a [low, high] range, "
                             f"got {value!r}")
        return check(kind(value))
    return PlainValidator(validate)


def _count_up_to(largest: int):
    """A check of a count: at least 1 and at most ``largest``."""
    def check(value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        if value > largest:
            raise ValueError(f"must be at most {largest:,}, got {value}")
        return value
    return check


Count = Annotated[int, Field(ge=1, le=MAX_REGISTER)]
StationCountOrRange = Annotated[int | list[int], _number_or_range(_count_up_to(MAX_STATIONS), int)]
CountOrRange = Annotated[int | list[int], _number_or_range(_count_up_to(MAX_REGISTER), int)]
RateOrRange = Annotated[float | list[float], _number_or_range(_positive_share, float)]
MisreportRow = Annotated[dict[str, Share], AfterValidator(_row_total)]
Published = Annotated[dict[str, Share], AfterValidator(_published_total)]


def low_high(value: float | list) -> tuple[float, float]:
    """``(low, high)`` of a number or a ``[low, high]`` range."""
    return (value[0], value[1]) if isinstance(value, list) else (value, value)


def midpoint(value: float | list) -> float:
    """The geometric midpoint of a range (the value itself for a number)."""
    low, high = low_high(value)
    return math.sqrt(low * high)


class _Block(BaseModel):
    model_config = STRICT


class _Sample(_Block):
    """Fields shared by exit polls and quick counts."""

    name: Identifier
    label: str = ""
    source: str = Field("", description="where the published figures come from")
    selection: Literal["simple", "pps"] = Field("simple", description="stations drawn simply or proportional to size")
    by_region: bool = Field(False, description="stratified by region, allocated in proportion to the register")
    published: Published = Field(default_factory=dict, description="published shares over valid votes")
    precision: float | None = Field(None, gt=0, le=0.1,
                                    description="unit of the published figures' last digit, as a share (0.001: "
                                                "percentages to one decimal); default: read from each value")


class QuickCountConfig(_Sample):
    """Observers' parallel vote tabulation: the exact protocols of a sample of stations."""

    stations: Annotated[int, Field(ge=1, le=MAX_STATIONS)] = Field(description="stations whose protocols are copied")
    estimator: Literal["raw", "weighted"] = Field("weighted", description="raw: valid votes pooled; weighted: a "
                                                  "ratio of Horvitz-Thompson estimates of each option's votes")


class ExitPollConfig(_Sample):
    """One pollster's exit poll. ``stations``, ``sample_size`` and ``response_rate`` may be ranges.

    ``respondents``: ``fixed`` (``per_station`` voters approached, or ``sample_size`` answers spread
    evenly), ``every_kth`` (every ``every_kth``-th voter approached) or ``whole_flow`` (every voter).
    ``sample_size``: the respondents the pollster claims (checked for feasibility).
    ``response_propensity``: relative propensity of each option's voters to answer (1 = average;
    differential non-response). ``misreport.<from>.<to>``: share of ``from``'s voters who tell the
    interviewer ``to``; a row without its own option leaves the rest truthful, a row with it must sum to 1.
    """

    stations: StationCountOrRange = Field(description="stations where voters are interviewed")
    estimator: Literal["raw", "weighted"] = Field("raw", description="raw: valid answers pooled; weighted: a ratio "
                                                  "of Horvitz-Thompson estimates of each option's votes")
    respondents: Literal["fixed", "every_kth", "whole_flow"] = "fixed"
    per_station: Count | None = Field(None, description="voters approached per station (fixed)")
    every_kth: Count | None = None
    sample_size: CountOrRange | None = Field(None, description="respondents claimed by the pollster")
    sample_size_readings: list[Count] = Field(default_factory=list,
                                              description="other published readings of the sample size (ledger only)")
    response_rate: RateOrRange = 1.0
    response_propensity: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=dict)
    misreport: dict[str, MisreportRow] = Field(default_factory=dict)
    stated_error: float | None = Field(None, ge=0, le=1,
                                      description="the pollster's stated margin of error, as a share")
    published_turnout: Share | None = Field(None, description="the poll's published turnout estimate")

    @model_validator(mode="after")
    def _design(self):
        if self.respondents == "fixed" and self.per_station is None and self.sample_size is None:
            raise ValueError("per_station: required when respondents = \"fixed\" and no sample_size is given")
        if self.respondents == "every_kth" and self.every_kth is None:
            raise ValueError("every_kth: required when respondents = \"every_kth\"")
        for option, row in self.misreport.items():
            total = sum(row.values())
            if option in row and not math.isclose(total, 1.0, abs_tol=MISREPORT_SUM_TOLERANCE):
                raise ValueError(f"misreport.{option}: a row that includes {option} itself must sum to 1, "
                                 f"got {total:.6g}")
        highest_rate = low_high(self.response_rate)[1]
        for option, propensity in self.response_propensity.items():
            if highest_rate * propensity > 1.0:
                raise ValueError(f"response_propensity.{option}: response_rate x {propensity:g} exceeds 1")
        return self


def misreport_matrix(misreport: dict[str, dict[str, float]], options: list[str]) -> np.ndarray | None:
    """(K, K) matrix ``[from, to]`` with rows summing to 1, or None when everyone answers truthfully."""
    matrix = np.eye(len(options))
    for source, row in misreport.items():
        i = options.index(source)
        matrix[i] = 0.0
        for target, value in row.items():
            matrix[i, options.index(target)] = value
        if source not in row:
            matrix[i, i] = 1.0 - sum(row.values())
    return matrix if not np.array_equal(matrix, np.eye(len(options))) else None


def approached_a_station(sample_size: float, stations: float, response_rate: float) -> float:
    """Voters a design of fixed quotas approaches a station (unrounded) for ``sample_size`` respondents at
    ``stations`` stations answering at ``response_rate`` (a share)."""
    return sample_size / (stations * response_rate)


def quota_per_station(sample_size: float, stations: float, response_rate: float) -> int:
    """Voters approached a station by a design of fixed quotas from a claimed size: :func:`approached_a_station`
    rounded, and at least one (a claim below one a station is multiplied: :func:`check_poll_design` refuses it)."""
    return max(1, round(approached_a_station(sample_size, stations, response_rate)))


def _quota_problems(poll: ExitPollConfig, where: str) -> list[str]:
    """A design of fixed quotas from a claimed size (no ``per_station``) approaches claim / (stations × response
    rate) voters a station, rounded: a claim (any reading) below one a station at the most stations and the
    highest rate would be raised to one, the claim multiplied silently. The problem names the field of the
    smallest claim (``sample_size``, else ``sample_size_readings``)."""
    if poll.respondents != "fixed" or poll.per_station is not None or poll.sample_size is None:
        return []
    stated = low_high(poll.sample_size)[0]
    fewest = min([stated, *poll.sample_size_readings])
    most, rate = low_high(poll.stations)[1], low_high(poll.response_rate)[1]
    approached = approached_a_station(fewest, most, rate)
    if approached >= 1:
        return []
    field = "sample_size" if fewest == stated else "sample_size_readings"
    return [f"{where}.{field}: {fewest:,} respondents at up to {most} stations answering at up to {rate:g} is "
            f"{approached:.2g} voters approached a station: a design approaches at least one; narrow stations or "
            f"give per_station"]


def check_poll_design(poll: ExitPollConfig | QuickCountConfig, n_stations: int, registered: np.ndarray | None,
                      options: list[str] | None = None, invalid: str | None = None,
                      prefix: str = "") -> list[str]:
    """Problems of a poll against the electorate (``n_stations``, ``registered`` (S,) voters per station,
    or None to skip the checks that need the register) and the ballot (``options``; ``invalid`` the invalid-ballot option). Messages read ``dotted.field: problem``.

    A claimed ``sample_size`` above what the electorate can supply at the stated number of stations is
    NOT an error: :func:`simkit.model.exit_poll.design_feasibility` flags it and picks the nearest
    feasible design (which may draw proportional to size: that design is checked where it is made). A sample
    larger than the whole register is an error, and so is a design drawn proportional to size that may ask
    for more stations (the top of its range) than hold voters (by region or not:
    :func:`simkit.model.exit_poll.pps_shortfall`).
    """
    where = prefix or f"{'exit_poll' if isinstance(poll, ExitPollConfig) else 'quick_count'}.{poll.name}"
    problems = []
    most = low_high(poll.stations)[1]
    if most > n_stations:
        problems.append(f"{where}.stations: more than the {n_stations} stations of the electorate, got {most}")
    if poll.selection == "pps" and registered is not None:
        held = pps_shortfall(round(most), registered)
        if held is not None:
            problems.append(f"{where}.stations: {round(most)} stations drawn proportional to size, but only {held} "
                            "hold voters")
    if isinstance(poll, ExitPollConfig) and registered is not None:
        registered = np.asarray(registered)
        if poll.sample_size is not None and low_high(poll.sample_size)[1] > registered.sum():
            problems.append(f"{where}.sample_size: {low_high(poll.sample_size)[1]:,} respondents is more than the "
                            f"{int(registered.sum()):,} registered voters")
        if poll.per_station is not None and poll.per_station > registered.max():
            problems.append(f"{where}.per_station: {poll.per_station} is more than the largest station's "
                            f"{int(registered.max())} registered voters")
    if isinstance(poll, ExitPollConfig):
        problems += _quota_problems(poll, where)
    if options is None:
        return problems
    named = {"published": poll.published}
    if isinstance(poll, ExitPollConfig):
        named["response_propensity"] = poll.response_propensity
        named["misreport"] = poll.misreport
        named.update({f"misreport.{source}": row for source, row in poll.misreport.items()})
    for field, mapping in named.items():
        problems += [f"{where}.{field}.{name}: not an option" for name in mapping if name not in options]
    if invalid is not None and invalid in poll.published:
        problems.append(f"{where}.published.{invalid}: published shares are over valid votes; "
                        f"{invalid} cannot be one")
    valid = [name for name in options if name != invalid]
    total = sum(poll.published.values())
    if set(valid) <= set(poll.published) and abs(total - 1.0) > PUBLISHED_SUM_TOLERANCE:
        problems.append(f"{where}.published: every valid option is published, so shares must sum to 1 "
                        f"(within {PUBLISHED_SUM_TOLERANCE:g}), got {total:.4f}")
    return problems
