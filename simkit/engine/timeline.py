"""The engine's side of voting through the day: resolve ``[timeline]`` into per-region profiles and
arrival windows, and draw a replicate's timeline from its keyed streams (:mod:`simkit.streams`).

Honest ballots arrive by profiles drawn per replicate (regions, stream ``TIMELINE_REGIONAL``) and per station
(stream ``TIMELINE`` of the station's group); a manipulation block's added ballots arrive in its window
(stream ``TIMELINE_ADDED`` of the group and block). None of these streams is used by anything else, so a
config with or without ``[timeline]`` draws the same elections.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkit import streams
from simkit.config.core import Config
from simkit.config.timeline import LATE_HOURS, MORNING_END, Arrival
from simkit.electorate.build import Electorate
from simkit.model.timeline import dirichlet, final_only, honest_bins, parse_clock, split_counts, window_shares
from simkit.timeline.profile import HonestProfile, honest_profile


@dataclass(frozen=True)
class TimelinePlan:
    """``profile``: the honest model on the config's hours; ``region_profiles`` (region, bin) the mean
    profile of each region; ``block_shares``: block index → (bin,) shares of its added ballots per bin."""

    report_times: tuple[str, ...]
    profile: HonestProfile
    region_profiles: np.ndarray
    block_shares: dict[int, np.ndarray]

    @property
    def key(self) -> str:
        return repr((self.report_times, self.profile, self.region_profiles.tobytes()))


def arrival_shares(arrival: Arrival | None, kind: str, edges: np.ndarray) -> np.ndarray:
    """(bin,) shares of a block's added ballots per bin: its window (defaults by ``kind``: coercion in the
    morning, stuffing in the last hours) or the final count only."""
    opening, closing = edges[0], edges[-1]
    arrival = arrival or Arrival(when="final" if kind == "protocol_fabrication" else "window")
    if arrival.when == "final":
        return final_only(len(edges) - 1)
    if kind == "coerced_turnout":
        default = (opening, max(min(parse_clock(MORNING_END), closing), opening))
    else:
        default = (max(closing - 60 * LATE_HOURS, opening), closing)
    start = parse_clock(arrival.start) if arrival.start is not None else default[0]
    end = parse_clock(arrival.end) if arrival.end is not None else default[1]
    return window_shares(edges, max(start, opening), min(end, closing))


def make_timeline_plan(cfg: Config, electorate: Electorate) -> TimelinePlan | None:
    timeline = cfg.timeline
    if timeline is None:
        return None
    profile = honest_profile(timeline.opening, timeline.reports, timeline.closing, timeline.profile,
                             timeline.interpolation, timeline.dispersion, timeline.regional_dispersion)
    regions = np.tile(profile.bin_shares, (len(electorate.region_names), 1))
    for r, name in enumerate(electorate.region_names):
        if name in timeline.regional:
            regions[r] = np.diff(np.concatenate([[0.0], timeline.regional[name], [1.0]]))
    shares = {index: arrival_shares(timeline.arrival.get(block.name), block.kind, profile.edges)
              for index, block in enumerate(cfg.manipulation)}
    return TimelinePlan(tuple(timeline.report_times()), profile, regions, shares)


def honest_timeline(plan: TimelinePlan, electorate: Electorate, seed: int, replicate: int,
                    ballots: np.ndarray) -> np.ndarray:
    """(station, bin) int64: each station's honest ``ballots`` (station,) split over the bins."""
    regional = dirichlet(streams.generator(seed, replicate, 0, streams.TIMELINE_REGIONAL),
                         plan.region_profiles, plan.profile.kappa_region)
    out = np.empty((electorate.n_stations, len(plan.report_times)), np.int64)
    for group, stations in enumerate(streams.station_groups(electorate.n_stations)):
        out[stations] = honest_bins(streams.generator(seed, replicate, group, streams.TIMELINE),
                                    ballots[stations], regional, electorate.region_index[stations],
                                    plan.profile.kappa_station)
    return out


def added_timeline(plan: TimelinePlan, electorate: Electorate, seed: int, replicate: int,
                   additions: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """(station, bin) int64: the ballots added by each block (``additions``: (block index, added (station,))
    in the order applied) placed in its arrival bins; negative changes (fabrication lowering the turnout)
    are in the final count only."""
    out = np.zeros((electorate.n_stations, len(plan.report_times)), np.int64)
    for index, added in additions:
        out[:, -1] += np.minimum(added, 0)
        positive = np.maximum(added, 0)
        shares = plan.block_shares[index]
        if shares[-1] == 1.0 or not positive.any():
            out[:, -1] += positive
            continue
        for group, stations in enumerate(streams.station_groups(electorate.n_stations)):
            rng = streams.generator(seed, replicate, group, streams.TIMELINE_ADDED, index)
            out[stations] += split_counts(rng, positive[stations], shares)
    return out
