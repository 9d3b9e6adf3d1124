"""The statistics of the evidence: which ones ``[observed]`` supports, their observed values and observation
noise, and the same statistics computed from one simulated election.

Groups (fractions in [0, 1], a correlation in [-1, 1]): national turnout (ballots / registered), each valid
option's share of valid votes (``share.<option>``), the invalid share of ballots (``invalid``), each region's
turnout (``regional_turnout.<region>``), each ``[[exit_poll]]``'s published shares
(``poll.<name>.<option>``), the station-level statistics of :mod:`simkit.forensics.station_statistics`
(``stations.<id>``) and the timeline's front-loading and late-surge shares by region
(``timeline.<test>.<region>``, :mod:`simkit.timeline.statistics`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from simkit.forensics import station_statistics
from simkit.config.core import Config
from simkit.config.messages import ConfigError
from simkit.engine.run import region_totals
from simkit.errors import listed
from simkit.electorate.build import observed_returns
from simkit.forensics.station_statistics import from_returns
from simkit.timeline.statistics import RegionalTimeline, shares_of_final
from simkit.timeline.statistics import statistics as timeline_statistics

#: default observation noise (SD, fraction units): official integer counts are exact; regional turnouts
#: published in percent with two decimals carry their rounding error, 0.0001 / sqrt(12)
#: exit polls' published shares: their sampling error is simulated; what remains is rounding to 0.1 point
#: station-level statistics computed from the published returns themselves are exact
DEFAULT_OBSERVATION_NOISE = {"turnout": 0.0, "shares": 0.0, "invalid": 0.0, "regional_turnout": 0.0001 / math.sqrt(12),
                             "polls": 0.001 / math.sqrt(12), "stations": 0.0, "timeline": 0.0001 / math.sqrt(12)}
#: what ``[observed]`` must give for each statistic group
EVIDENCE = {"turnout": "observed.registered and observed.ballots", "shares": "observed.votes of every valid option",
            "invalid": "an invalid option, its observed.votes and observed.ballots",
            "regional_turnout": "observed.regional_turnout", "polls": "an [[exit_poll]] with published shares",
            "stations": "[observed.stations]", "timeline": "[observed.timeline] and [timeline]"}
#: statistic groups of the national count
NATIONAL_GROUPS = ("turnout", "shares", "invalid")


@dataclass(frozen=True)
class Statistics:
    """Which statistics, from which totals: ``names`` (n_stat,), ``groups`` (n_stat,), the observed values
    (n_stat,) in [0, 1], and their observation noise SDs (n_stat,)."""

    names: tuple[str, ...]
    groups: tuple[str, ...]
    observed: np.ndarray
    observation_noise: np.ndarray
    valid_options: tuple[int, ...]
    invalid: int | None
    regions: tuple[int, ...]
    polls: tuple[tuple[int, int], ...] = ()  # (index of the [[exit_poll]], index among valid options)
    stations: tuple[str, ...] = ()  # ids of simkit.station_statistics
    leader: int = 0  # index of the leading option (for the station statistics)
    timeline: tuple[int, ...] = ()  # regions of [observed.timeline] (front-loading, then late-surge statistics)
    timeline_early: int = 0  # index of the front-loading test's early report

    @property
    def poll_indices(self) -> tuple[int, ...]:
        """The [[exit_poll]] blocks a statistic reads (their indices, increasing)."""
        return tuple(sorted({index for index, _ in self.polls}))


def statistic_names(cfg: Config, groups: list[str], region_names: list[str],
                    returns: xr.Dataset | None = None) -> Statistics:
    """The statistics the evidence in ``[observed]`` supports, in a fixed order (turnout, shares, invalid,
    regional turnouts), with their observed values. ``returns``: the returns file of ``[observed.stations]`` as
    :func:`~simkit.electorate.build.observed_returns` reads it for ``groups``, when the caller has read it (the
    run checks the electorate on the same table); read here otherwise."""
    observed = cfg.observed
    names, kinds, values = [], [], []
    valid_names, invalid = cfg.valid_option_names, cfg.invalid_option_name
    if "turnout" in groups and observed.ballots and observed.registered:
        names.append("turnout"), kinds.append("turnout"), values.append(observed.ballots / observed.registered)
    if "shares" in groups and all(name in observed.votes for name in valid_names):
        total = sum(observed.votes[name] for name in valid_names)
        for name in valid_names:
            names.append(f"share.{name}"), kinds.append("shares"), values.append(observed.votes[name] / total)
    if "invalid" in groups and invalid is not None and invalid in observed.votes and observed.ballots:
        names.append("invalid"), kinds.append("invalid"), values.append(observed.votes[invalid] / observed.ballots)
    regions = []
    if "regional_turnout" in groups:
        for index, region in enumerate(region_names):
            if region in observed.regional_turnout:
                regions.append(index)
                names.append(f"regional_turnout.{region}"), kinds.append("regional_turnout")
                values.append(observed.regional_turnout[region])
    polls = []
    if "polls" in groups:
        for index, poll in enumerate(cfg.exit_poll):
            for option, share in poll.published.items():
                if option in valid_names:
                    polls.append((index, valid_names.index(option)))
                    names.append(f"poll.{poll.name}.{option}"), kinds.append("polls"), values.append(share)
    stations = ()
    if "stations" in groups and observed.stations is not None:
        stations = tuple(observed.stations.statistics)
        names += [f"stations.{name}" for name in stations]
        kinds += ["stations"] * len(stations)
        table = returns if returns is not None else observed_returns(cfg, groups)
        values += list(observed_station_values(observed.stations, table))
    timeline, early = (), 0
    if "timeline" in groups and observed.timeline is not None and cfg.timeline is not None:
        timeline, early, timeline_values = observed_timeline_values(cfg, region_names)
        for test in ("front_loading", "late_surge"):
            names += [f"timeline.{test}.{region_names[r]}" for r in timeline]
            kinds += ["timeline"] * len(timeline)
            values += list(timeline_values[test])
    options = cfg.option_names
    valid = tuple(index for index, name in enumerate(options) if name != invalid)
    return Statistics(tuple(names), tuple(kinds), np.array(values, float), np.zeros(len(names)), valid,
                      cfg.invalid_index, tuple(regions), tuple(polls), stations, options.index(cfg.leader), timeline,
                      early)


def observed_timeline_values(cfg: Config, region_names: list[str]) -> tuple[tuple[int, ...], int, dict]:
    """The regions of ``[observed.timeline]`` (indices into ``region_names``), the early report's index and
    the observed front-loading and late-surge statistics (:mod:`simkit.timeline.statistics`) by test."""
    spec = cfg.observed.timeline
    regions = tuple(i for i, name in enumerate(region_names) if name in spec.turnout_percent)
    turnout = np.array([spec.turnout_percent[region_names[i]] for i in regions], float) / 100.0
    early = RegionalTimeline([], list(spec.reports), turnout, np.ones(len(regions)),
                             early_report=spec.early_report).early_index(cfg.timeline.opening, cfg.timeline.closing)
    return regions, early, timeline_statistics(shares_of_final(turnout), np.ones(len(regions)), early)


def observed_station_values(stations, returns: xr.Dataset | None) -> np.ndarray:
    """The observed values of ``[observed.stations]``'s statistics: as given, or computed from ``returns``, its
    returns file loaded as ``simkit forensics`` loads it (:func:`~simkit.electorate.build.observed_returns`; None
    when the values are given)."""
    if stations.values:
        return np.array([stations.values[name] for name in stations.statistics], float)
    return from_returns(stations.statistics, returns)


def with_observation_noise(statistics: Statistics, noise: dict[str, float]) -> Statistics:
    """``statistics`` with observation noise SDs: a statistic's own name wins over its group's entry, which
    wins over :data:`DEFAULT_OBSERVATION_NOISE`."""
    unknown = [key for key in noise if key not in statistics.names and key not in statistics.groups
               and key not in DEFAULT_OBSERVATION_NOISE]
    if unknown:
        raise ConfigError([f"inference.observation_noise.{key}: not a statistic or statistic group "
                           f"(have {', '.join(DEFAULT_OBSERVATION_NOISE)} and the names {listed(statistics.names)})"
                           for key in unknown])
    sds = [noise.get(name, noise.get(group, DEFAULT_OBSERVATION_NOISE[group]))
           for name, group in zip(statistics.names, statistics.groups)]
    return replace(statistics, observation_noise=np.array(sds, float))


def compute_statistics(statistics: Statistics, ballots: np.ndarray, votes: np.ndarray, region_index: np.ndarray,
                       registered: np.ndarray, region_registered: np.ndarray,
                       poll_shares: list[np.ndarray] | None = None, timeline: np.ndarray | None = None) -> np.ndarray:
    """Statistics (n_stat,) of one simulated election: ``ballots`` (station,), ``votes`` (station, option);
    ``poll_shares`` per [[exit_poll]], its estimated shares (valid option,); ``timeline`` (region, report + 1)
    cumulative ballots by region (with the ``timeline`` group)."""
    total_ballots = ballots.sum()
    total_votes = votes.sum(axis=0)
    valid = list(statistics.valid_options)
    out: list[float] = []
    if "turnout" in statistics.groups:
        out.append(total_ballots / registered.sum())
    if "shares" in statistics.groups:
        out += list(total_votes[valid] / max(total_votes[valid].sum(), 1))
    if "invalid" in statistics.groups:
        out.append(total_votes[statistics.invalid] / max(total_ballots, 1))
    if statistics.regions:
        regions = list(statistics.regions)
        region_ballots = region_totals(region_index, ballots, len(region_registered))
        out += list(region_ballots[regions] / region_registered[regions])
    out += [poll_shares[poll][option] for poll, option in statistics.polls]
    if statistics.stations:
        out += list(station_statistics.compute(statistics.stations, registered, ballots, votes[:, statistics.leader]))
    if statistics.timeline:
        shares = shares_of_final(timeline[list(statistics.timeline)].astype(float))
        out += list(shares[:, statistics.timeline_early]) + list(1.0 - shares[:, -2])
    return np.array(out, float)
