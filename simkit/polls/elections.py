"""The simulated elections the polls are drawn from: each replicate's station-level counts at one world
(sweep point and scenario) as :class:`SimulatedElections`, the worlds of a run simulated on demand one at a time
(:func:`simulated_worlds`), and the polls as configured at each world (:func:`polls_at`, :func:`scenario_polls`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable

import numpy as np
import xarray as xr

from simkit import schema
from simkit.engine.run import world_votes
from simkit.progress import progress_bar
from simkit.paths import set_path
from simkit.config.polls import ExitPollConfig, QuickCountConfig
from simkit.model.exit_poll import station_sums


Poll = ExitPollConfig | QuickCountConfig


def poll_kind(poll: Poll) -> str:
    return "exit_poll" if isinstance(poll, ExitPollConfig) else "quick_count"


@dataclass(frozen=True)
class SimulatedElections:
    """One set of simulated elections: ``votes`` (replicate, station, option) DataArray as counted,
    ``registered`` (S,), ``region_index`` (S,), ``replicates`` (R,) replicate ids (the keys of the poll
    streams), ``voters`` (replicate, station, option), the choices of real voters where manipulations
    ran (None: the same as ``votes``)."""

    votes: xr.DataArray
    registered: np.ndarray
    region_index: np.ndarray
    replicates: np.ndarray
    voters: xr.DataArray | None = None

    def for_poll(self, poll: "Poll") -> "SimulatedElections":
        """What ``poll`` samples: an exit poll interviews voters (stuffed or rewritten ballots have nobody to
        answer); a quick count copies the protocol, i.e. the count."""
        if isinstance(poll, ExitPollConfig) and self.voters is not None:
            return replace(self, votes=self.voters, voters=None)
        return self

    @cached_property
    def totals(self) -> np.ndarray:
        """(R, K) int64 each replicate's counted ballots by option (summed over stations once per world)."""
        return station_sums(self.votes.values)

    def count_shares(self, valid: np.ndarray) -> np.ndarray:
        """(R, V) each replicate's counted shares of the ``valid`` (K,) options (fractions); NaN in a replicate
        without a valid vote (its polls have no answer either, and are left out)."""
        totals = self.totals[:, valid].astype(float)
        with np.errstate(invalid="ignore"):
            return totals / totals.sum(axis=-1, keepdims=True)

    @cached_property
    def mean_voters(self) -> np.ndarray:
        """(S,) mean ballots per station over replicates (exact integer sums, then divided: no (R, S) array)."""
        votes = self.votes.transpose(schema.REPLICATE, schema.STATION, schema.OPTION).values
        return np.einsum("rsk->s", votes, dtype=np.int64) / votes.shape[0]


#: dims of a simulated election that are not a world dim (a swept config field or ``scenario``)
CORE_DIMS = (schema.REPLICATE, schema.STATION, schema.OPTION)


def election_at(ds: xr.Dataset, point: dict[str, int]) -> SimulatedElections:
    """The elections at one sweep point / scenario (``point`` maps dims to indices)."""
    dims = (schema.REPLICATE, schema.STATION, schema.OPTION)
    votes = ds["votes"].isel(point).transpose(*dims)
    voters = ds["voter_votes"].isel(point).transpose(*dims) if "voter_votes" in ds else None
    _, region_index = np.unique(ds[schema.STATION_REGION].values, return_inverse=True)
    registered = ds["registered"].isel({dim: index for dim, index in point.items() if dim in ds["registered"].dims})
    return SimulatedElections(votes, registered.values, region_index, ds[schema.REPLICATE].values, voters)


@dataclass(frozen=True)
class Worlds:
    """The simulated worlds a comparison draws its polls from. ``sizes``: the world dims in order (the swept
    config fields, then ``scenario`` when the elections have scenarios) and their lengths; ``coords`` their
    values; ``options`` the option names; ``election(point)`` the elections of one world (``point`` maps world
    dims to indices). :meth:`of` reads them from a simulated Dataset held in memory; :func:`compare_config`
    simulates them one world at a time (:func:`simulated_worlds`)."""

    sizes: dict[str, int]
    coords: dict[str, np.ndarray]
    options: list[str]
    election: Callable[[dict[str, int]], SimulatedElections]

    @classmethod
    def of(cls, ds: xr.Dataset) -> "Worlds":
        dims = [dim for dim in ds["votes"].dims if dim not in CORE_DIMS]
        return cls({dim: ds.sizes[dim] for dim in dims}, {dim: ds[dim].values for dim in dims},
                   [str(name) for name in ds[schema.OPTION].values], functools.partial(election_at, ds))

    @property
    def sweep_dims(self) -> list[str]:
        """The world dims that are swept config fields."""
        return [dim for dim in self.sizes if dim != schema.SCENARIO]

    @property
    def scenario_names(self) -> list[str] | None:
        """The scenarios' names, None when the elections have no scenario dim."""
        return [str(name) for name in self.coords[schema.SCENARIO]] if schema.SCENARIO in self.sizes else None

    def baseline(self) -> dict[str, int]:
        """Index of the baseline: the middle value of every swept field, scenario ``honest`` (or the first)."""
        point = {dim: self.sizes[dim] // 2 for dim in self.sweep_dims}
        names = self.scenario_names
        if names is not None:
            point[schema.SCENARIO] = names.index("honest") if "honest" in names else 0
        return point


def polls_at(polls: list[Poll], worlds: Worlds, point: dict[str, int]) -> list[Poll]:
    """The polls with the values of swept poll fields (sweep dims named ``exit_poll.<name>.<field>`` or
    ``quick_count.<name>.<field>``) at ``point`` applied. Such sweeps leave the election unchanged."""
    updated = []
    for poll in polls:
        raw = poll.model_dump(exclude_none=True)
        prefix = f"{poll_kind(poll)}.{poll.name}."
        for dim, index in point.items():
            if dim.startswith(prefix):
                raw = set_path(raw, dim.removeprefix(prefix), worlds.coords[dim][index].item())
        updated.append(type(poll).model_validate(raw) if raw != poll.model_dump(exclude_none=True) else poll)
    return updated


def scenario_polls(cfg, polls: list) -> dict[str, list]:
    """Per ``[[scenario]]`` of the config that overrides ``exit_poll.*`` or ``quick_count.*`` fields, the
    polls with those overrides applied."""
    result = {}
    for scenario in cfg.scenario:
        if any(path.split(".")[0] in ("exit_poll", "quick_count") for path in scenario.overrides):
            resolved = cfg.at(scenario.overrides)
            result[scenario.name] = resolved.polls
    return result


def simulated_worlds(run, workers: int | None = None, progress: bool = False) -> Worlds:
    """The worlds of ``run`` (a :class:`simkit.engine.run.Run`) simulated on demand, one at a time
    (:func:`simkit.engine.run.world_votes`): memory holds one world's votes (and voters) as int32, whatever the
    number of sweep points and scenarios. The last world asked for is kept until another is asked for."""
    sweep = {path: np.asarray(values, dtype=float) for path, values in run.config.sweep.items()}
    sizes = {**{path: len(values) for path, values in sweep.items()}, schema.SCENARIO: len(run.scenario_names)}
    coords = {**sweep, schema.SCENARIO: np.array(run.scenario_names)}
    _, region_index = np.unique(np.array(run.electorate.region_names)[run.electorate.region_index],
                                    return_inverse=True)
    dims = (schema.REPLICATE, schema.STATION, schema.OPTION)
    held: dict[tuple, SimulatedElections] = {}

    def election(point: dict[str, int]) -> SimulatedElections:
        key = tuple(point[dim] for dim in sizes)
        if key not in held:
            held.clear()
            flat = int(np.ravel_multi_index(key[:-1], tuple(sizes.values())[:-1])) if sweep else 0
            with progress_bar(run.replicates, enabled=progress) as bar:
                votes, voters = world_votes(run, flat, key[-1], workers, bar.update)
            held[key] = SimulatedElections(xr.DataArray(votes, dims=dims), run.electorate.registered, region_index,
                                 np.arange(run.replicates),
                                 None if voters is None else xr.DataArray(voters, dims=dims))
        return held[key]

    return Worlds(sizes, coords, list(run.config.option_names), election)
