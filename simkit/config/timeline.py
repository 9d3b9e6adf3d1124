"""Config of voting through the day: ``[timeline]`` (hours, reporting times, honest profile, arrival
windows of manipulations) and ``[observed.timeline]`` (a published timeline by region).

Example (TOML)::

    [timeline]
    opening = "07:00"
    closing = "20:00"
    reports = ["10:05", "12:05", "14:05", "16:05", "18:05"]   # intermediate reports; closing = final count
    profile = "spain-2019-11"          # fitted honest profile (simkit/electorate/presets/timeline-*.json)
    interpolation = "linear"           # shape within the fitted bins: "linear" or "pchip"
    # dispersion = 95.0                # station Dirichlet concentration (default: the fit's)
    # regional_dispersion = 207.0      # region concentration (default: the fit's)
    [timeline.regional]                # known mean cumulative shares of the final turnout at each report
    almaty_city = [0.29, 0.59, 0.84, 0.91, 0.97]
    [timeline.arrival]                 # per manipulation block: when its added ballots arrive
    coercion = { start = "07:00", end = "12:00" }
    stuffing = { when = "final" }

    [observed.timeline]
    reports = ["10:05", "12:05", "14:05", "16:05", "18:05"]
    [observed.timeline.turnout_percent]  # each region: percent at each report, then the final
    abai = [25.64, 43.67, 69.32, 73.57, 78.88, 80.18]

Default arrival windows by kind: ``coerced_turnout`` from opening to 12:00 (the morning);
``ballot_stuffing`` the last two hours before closing; ``protocol_fabrication`` the final count only
(the intermediate reports are not rewritten); the other kinds add no ballots (:data:`NO_BALLOTS_ADDED`), and an
arrival given for one of them is refused.

The final figures of ``[observed.timeline]`` are the count at closing: they must agree with ``[observed]``'s
turnout within rounding at their published precision (:func:`final_figure_problems`); a final figure that reads
as a share written for a percent against the turnout the config models is refused (:func:`share_figure_problems`).
"""
from __future__ import annotations

from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simkit.config.precision import last_digit_unit, rounding_interval
from simkit.errors import listed
from simkit.model.timeline import parse_clock
from simkit.types import Positive, Share

MORNING_END = "12:00"  #: end of the default arrival window of coerced voters
LATE_HOURS = 2  #: the default stuffing window: this many hours before closing
TIMELINE_TURNOUT = "observed.timeline.turnout_percent"  #: the published timeline's table of regions' turnouts


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clock(value: str) -> str:
    parse_clock(value)
    return value


def _increasing(times: list[str]) -> list[str]:
    minutes = [parse_clock(t) for t in times]
    for earlier, later, text in zip(minutes, minutes[1:], times[1:]):
        if later <= earlier:
            raise ValueError(f"reporting times must increase: {text} does not come after the time before it")
    return times


class Arrival(_Block):
    """When a manipulation block's added ballots enter the count: uniformly over ``[start, end]``
    (either defaults to the block kind's window) or, with ``when = "final"``, in the final count only."""

    when: Literal["window", "final"] = "window"
    start: str | None = None
    end: str | None = None

    _check_start = field_validator("start", "end")(lambda cls, v: v if v is None else _clock(v))

    @model_validator(mode="after")
    def _final_has_no_window(self) -> "Arrival":
        if self.when == "final" and (self.start is not None or self.end is not None):
            raise ValueError("when = \"final\" takes no start or end")
        if self.start is not None and self.end is not None and parse_clock(self.end) < parse_clock(self.start):
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class TimelineConfig(_Block):
    """Hours and reporting times of the voting day, and the honest profile of arrivals."""

    opening: str = Field(description="polls open, HH:MM")
    closing: str = Field(description="polls close, HH:MM; the final count is the closing report")
    reports: list[str] = Field(min_length=1, description="intermediate reporting times HH:MM, increasing")
    profile: str = Field("spain-2019-11", description="fitted honest profile (presets/timeline-<name>.json)")
    model: Literal["dirichlet"] = "dirichlet"
    interpolation: Literal["linear", "pchip"] = "linear"
    dispersion: Positive | None = Field(None, description="station Dirichlet concentration; default: the fit's")
    regional_dispersion: Positive | None = Field(None, description="regional concentration; default: the fit's")
    regional: dict[str, list[Share]] = Field(default_factory=dict,
                                             description="region -> mean cumulative share of its final turnout "
                                                         "at each intermediate report")
    arrival: dict[str, Arrival] = Field(default_factory=dict, description="manipulation block -> arrival")

    _check_clock = field_validator("opening", "closing")(lambda cls, v: _clock(v))
    _check_reports = field_validator("reports")(lambda cls, v: _increasing([_clock(t) for t in v]))

    @model_validator(mode="after")
    def _inside_the_day(self) -> "TimelineConfig":
        opening, closing = parse_clock(self.opening), parse_clock(self.closing)
        if closing <= opening:
            raise ValueError(f"closing: must come after opening {self.opening}, got {self.closing}")
        for t in self.reports:
            if not opening < parse_clock(t) < closing:
                raise ValueError(f"reports: {t} is outside the opening hours {self.opening}-{self.closing}")
        return self

    def report_times(self) -> list[str]:
        """The report_time coordinate: the intermediate reports and the closing (the final count)."""
        return list(self.reports) + [self.closing]


class ObservedTimeline(_Block):
    """A published timeline: each region's turnout (percent of the register) at each report and the final."""

    reports: list[str] = Field(min_length=1, description="times of the intermediate figures, HH:MM")
    turnout_percent: dict[str, list[float]] = Field(min_length=1, description="region -> percents")
    national: list[float] | None = Field(None, description="national percents (reports, then final)")
    early_report: str | None = Field(None, description="report of the front-loading test; default the last "
                                                       "report at or before the middle of the day")
    note: str = ""

    _check_reports = field_validator("reports")(lambda cls, v: _increasing([_clock(t) for t in v]))


def _percent_problems(path: str, values: list[float], n_values: int) -> list[str]:
    if len(values) != n_values:
        return [f"{path}: expected {n_values} figures (each report, then the final), got {len(values)}"]
    problems = []
    for i, value in enumerate(values):
        if not 0 <= value <= 100:
            problems.append(f"{path}[{i}]: turnout {value:g}% is outside 0-100%")
    for i in range(1, len(values)):
        if values[i] < values[i - 1]:
            problems.append(f"{path}[{i}]: cumulative turnout decreases ({values[i - 1]:g} -> {values[i]:g})")
    if not problems and values[-1] == 0:
        problems.append(f"{path}[{n_values - 1}]: final turnout 0%: no voters, so no share of the final turnout "
                        "to time")
    return problems


#: manipulation kinds that move votes among a station's ballots and add none: an arrival window has nothing to place
NO_BALLOTS_ADDED = ("vote_stealing", "invalidation")


def timeline_problems(timeline: TimelineConfig | None, observed: ObservedTimeline | None,
                      block_kinds: dict[str, str]) -> list[str]:
    """Cross-field problems: names that must exist (``block_kinds``: each manipulation block's name → kind), an
    arrival only for a block that adds ballots, figures per report, reports inside the hours (the regions:
    :func:`simkit.config.regions.region_problems`)."""
    problems = []
    if timeline is not None:
        for region, shares in timeline.regional.items():
            if len(shares) != len(timeline.reports):
                problems.append(f"timeline.regional.{region}: expected {len(timeline.reports)} shares (one per "
                                f"report), got {len(shares)}")
            elif any(b < a for a, b in zip(shares, shares[1:])):
                problems.append(f"timeline.regional.{region}: cumulative shares decrease")
        for name in timeline.arrival:
            if name not in block_kinds:
                problems.append(f"timeline.arrival.{name}: not a [[manipulation]] block")
            elif block_kinds[name] in NO_BALLOTS_ADDED:
                problems.append(f"timeline.arrival.{name}: a {block_kinds[name]} block adds no ballots, so there is "
                                "no arrival to time; leave it out")
    if observed is None:
        return problems
    if timeline is None:
        return problems + ["observed.timeline: needs [timeline] (opening and closing hours)"]
    opening, closing = parse_clock(timeline.opening), parse_clock(timeline.closing)
    for i, t in enumerate(observed.reports):
        if not opening < parse_clock(t) < closing:
            problems.append(f"observed.timeline.reports[{i}]: {t} is outside the opening hours "
                            f"{timeline.opening}-{timeline.closing}")
    if not problems and list(observed.reports) != list(timeline.reports):
        problems.append(f"observed.timeline.reports: must equal timeline.reports ({listed(timeline.reports)})")
    if observed.early_report is not None and observed.early_report not in observed.reports:
        problems.append(f"observed.timeline.early_report: not one of the reports, got {observed.early_report}")
    n_values = len(observed.reports) + 1
    for region, values in observed.turnout_percent.items():
        problems += _percent_problems(f"{TIMELINE_TURNOUT}.{region}", values, n_values)
    if observed.national is not None:
        problems += _percent_problems("observed.timeline.national", observed.national, n_values)
    return problems


def _unit(values: Iterable[float]) -> float:
    """The precision ``values`` (a row or a table of figures) were published at: one unit of the last decimal any of
    them shows (:func:`~simkit.config.precision.last_digit_unit`; a figure ending in 0 shows fewer decimals, the
    others tell); 1 for whole numbers."""
    return min((last_digit_unit(v) for v in values), default=1.0)


def _one_turnout(final: float, unit: float, other: float, other_unit: float) -> bool:
    """Whether ``final`` (published at precision ``unit``) and ``other`` (at ``other_unit``; 0: exact) can be one
    turnout: the true values each can stand for (:func:`~simkit.config.precision.rounding_interval`: rounded to
    nearest or down) must meet (1e-9 of slack for the floats)."""
    low, high = rounding_interval(final, unit)
    other_low, other_high = rounding_interval(other, other_unit)
    return low <= other_high + 1e-9 and other_low <= high + 1e-9


def final_figure_problems(observed: ObservedTimeline, turnout: float | None,
                          regional_turnout: dict[str, float]) -> list[str]:
    """The final figures of a published timeline (the count at closing) against the count: the national one
    against ``turnout`` (percent, exact: the count's ballots over its register; None when not given), each region's
    against ``regional_turnout`` (region -> fraction, as published). A difference that rounding (to nearest or
    down, :func:`_one_turnout`) at the figures' published precision (:func:`_unit`: each row of the timeline's,
    the table of regional turnouts') cannot make is a problem."""
    regional_unit = 100 * _unit(regional_turnout.values())
    checks = []  # (path, the timeline's figures, the count's turnout in percent, its precision, what that is)
    if observed.national is not None and turnout is not None:
        checks.append(("observed.timeline.national", observed.national, turnout, 0.0,
                       "the count's turnout (observed.ballots / observed.registered)"))
    for region, values in observed.turnout_percent.items():
        if region in regional_turnout:
            checks.append((f"{TIMELINE_TURNOUT}.{region}", values, 100 * regional_turnout[region],
                           regional_unit, f"observed.regional_turnout.{region}"))
    return [f"{path}[{len(values) - 1}]: final turnout {values[-1]:g}% is not {what}, {other:.4f}%: further apart "
            f"than rounding at the published precision ({_unit(values):g} point) allows"
            for path, values, other, other_unit, what in checks
            if not _one_turnout(values[-1], _unit(values), other, other_unit)]


#: how many times below the modelled turnout a final figure read as a percent must lie, when the figure read as a
#: share is not (it is at most 1), to be refused as a share written for a percent: the two readings differ 100-fold,
#: so the figure is refused when the model is nearer the share reading on a log scale (more than 10 times the
#: percent reading, sqrt(100))
SHARE_READING_FACTOR = 10.0


def share_figure_problems(observed: ObservedTimeline, regional: dict[str, tuple[str, float]],
                          national: tuple[str, float] | None) -> list[str]:
    """Each row of a published timeline whose final figure ``F`` (percent) is at most 1 while the turnout the config
    models for it (a fraction, with the field that sets it: ``regional[region]``; ``national``, the lowest mean in use,
    below which no national turnout can lie) is more than :data:`SHARE_READING_FACTOR` times ``F / 100``: ``F`` is
    nearer the model read as a share (0.45 written for 45%) than as a percent. Rows left out of ``regional`` (and
    the national row when ``national`` is None) and empty rows are not checked. Needs no official turnout; a real
    turnout below 1% (a boycott) passes when the config models it so, and early figures below 1% (a small region at
    08:00) never count, only the final."""
    rows = [(f"{TIMELINE_TURNOUT}.{region}", values, *regional[region], "")
            for region, values in observed.turnout_percent.items() if region in regional and values]
    if observed.national and national is not None:
        rows.append(("observed.timeline.national", observed.national, *national, ", the lowest mean in use"))
    return [f"{path}[{len(values) - 1}]: final turnout {values[-1]:g}% is more than {SHARE_READING_FACTOR:g} times "
            f"below the turnout the config models ({100 * model:g}%: {field} = {model:g}{lowest}): a share written "
            f"for a percent? (if {values[-1]:g} is a share, write it as {100 * values[-1]:g}; if the turnout is truly "
            f"that low, model it so)"
            for path, values, field, model, lowest in rows
            if values[-1] <= 1 and model > SHARE_READING_FACTOR * values[-1] / 100]
