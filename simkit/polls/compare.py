"""Simulated versus published: exit polls and quick counts against the official count.

Every poll is drawn from each simulated replicate's station-level votes (:mod:`simkit.model.exit_poll`),
so its spread comes from the real clustering of the simulated stations, not from a formula.

What :func:`compare_polls` returns (shares and rates in percent; JSON keys of :meth:`Comparison.to_json`):

* ``rows``, one per published figure, against the sampling-only baseline (the election is the honest
  simulation calibrated to the official count; each poll unbiased): the gap published − official, ``z`` and
  ``p_value`` from the distribution of (poll − its own replicate's count), ``z_total``/``p_total`` against
  sampling plus the historical non-sampling error of :mod:`simkit.polls.error`, ``misreport_needed`` (the
  misreporting rate toward the incumbent that makes the published figure the simulated median), and the
  joint ledger's ``points_compared`` of its ``ledger_points``, ``z_min``, ``z_max``, ``share_consistent`` and
  ``verdict`` (:func:`ledger_verdicts`); a poll's published turnout is a row with option ``turnout``;
* ``joint``: Hotelling T² of all published gaps with its F reference, and per poll; ``left_out``, when some
  figures have no sampling error (a census: :func:`sampled`), names them (``pollster``, ``option``);
* ``designs``: respondents each modelled design delivers against the claim, and the probability it reaches it;
* ``mechanisms``: one-mechanism fits per poll (:mod:`simkit.polls.mechanisms`);
* ``scenarios``: per scenario of the Dataset (``honest`` when there is none), the polls as configured (with
  their stated biases): Hotelling T² of the published gaps;
* ``ledger``: the rows' z and p at the points of a Latin hypercube over every stated assumption jointly.

Random streams: ``SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate, poll_index))`` per replicate and
poll, so a poll draw depends only on its logical position; the ledger's hypercube by ``[seed, streams.LEDGER]``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from scipy import stats

from simkit import schema, streams
from simkit.schema import INTERVAL, rejects
from simkit.engine.run import prepare, world_votes
from simkit.progress import progress_bar
from simkit.paths import set_path
from simkit.config.core import check_config
from simkit.config.polls import ExitPollConfig, QuickCountConfig, midpoint, misreport_matrix, quota_per_station
from simkit.config.precision import last_digit_unit, rounds_to
from simkit.model.exit_poll import (PollDesign, design_feasibility, draw_exit_poll, estimate_shares, pps_shortfall,
                                    station_sums)
from simkit.polls.compiled_draws import draw_replicates, draw_totals
from simkit.polls.error import DEFAULT_HISTORY, ErrorBaseline, option_class
from simkit.polls.mechanisms import Ballot, Observed, fit_poll
from simkit.config.polls import check_poll_design
from simkit.electorate.build import Electorate, electorate_of
from simkit.errors import InputError, first_of

#: a Monte Carlo p-value needs at least this many replicates at least as extreme; else normal approx.
MIN_TAIL_COUNT = 5
#: bisection steps for ``misreport_needed`` (rates in [-1, 1]: resolution 2 / 2**steps)
BISECTION_STEPS = 18
#: points of the joint ledger's Latin hypercube over the stated assumptions
LEDGER_POINTS = 16
#: a design delivering less than (1 - this) of its claimed respondents is flagged
SHORTFALL_TOLERANCE = 0.01

Poll = ExitPollConfig | QuickCountConfig




# -- the election arrays ----------------------------------------------------------------------------

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


def _kind(poll: Poll) -> str:
    return "exit_poll" if isinstance(poll, ExitPollConfig) else "quick_count"


def polls_at(polls: list[Poll], worlds: Worlds, point: dict[str, int]) -> list[Poll]:
    """The polls with the values of swept poll fields (sweep dims named ``exit_poll.<name>.<field>`` or
    ``quick_count.<name>.<field>``) at ``point`` applied. Such sweeps leave the election unchanged."""
    updated = []
    for poll in polls:
        raw = poll.model_dump(exclude_none=True)
        prefix = f"{_kind(poll)}.{poll.name}."
        for dim, index in point.items():
            if dim.startswith(prefix):
                raw = set_path(raw, dim.removeprefix(prefix), worlds.coords[dim][index].item())
        updated.append(type(poll).model_validate(raw) if raw != poll.model_dump(exclude_none=True) else poll)
    return updated


# -- designs ----------------------------------------------------------------------------------------

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
    return (f"{_kind(poll)}.{poll.name}.stations: {design.n_stations} stations drawn proportional to size from the "
            f"electorate, which has {held} with voters{substituted}")


# -- drawing many replicates ------------------------------------------------------------------------

@dataclass(frozen=True)
class Draws:
    """A poll drawn in every replicate: ``shares`` (R, V) published-style estimates (fractions);
    ``responders`` / ``reported`` (R, n, K), or (R, 1, K) summed over the stations (:func:`pooled`, and the
    ``raw`` estimator's draws); ``voters``, ``inclusion``, ``stations`` (R, n); ``valid`` (K,) options counted in
    the shares."""

    shares: np.ndarray
    responders: np.ndarray
    reported: np.ndarray
    voters: np.ndarray
    inclusion: np.ndarray
    valid: np.ndarray
    stations: np.ndarray | None = None

    @classmethod
    def summed(cls, shares: np.ndarray, responders: np.ndarray, reported: np.ndarray, voters: np.ndarray,
               valid: np.ndarray) -> "Draws":
        """Draws whose stations are summed into one: ``responders`` / ``reported`` (R, K) respondents' totals,
        ``voters`` (R,) the sampled stations' voters, held as (R, 1, K) and (R, 1) with inclusion 1."""
        return cls(shares, responders[:, None], reported[:, None], voters[:, None], np.ones((len(voters), 1)), valid)

    @cached_property
    def reported_totals(self) -> np.ndarray:
        """(R, K) int64 respondents by reported answer, summed over stations."""
        return station_sums(self.reported)

    @cached_property
    def responders_totals(self) -> np.ndarray:
        """(R, K) int64 respondents by true vote, summed over stations."""
        return station_sums(self.responders)

    @property
    def valid_respondents(self) -> np.ndarray:
        """(R,) respondents giving a valid answer."""
        return self.reported_totals[..., self.valid].sum(axis=-1)


def draw_polls(election: SimulatedElections, design: PollDesign, seed: int, poll_index: int) -> Draws:
    """Draw ``design`` from every replicate of ``election`` (keyed streams; see module docstring) in one compiled
    call (:func:`simkit.polls.compiled_draws.draw_replicates`, in threads on every core, with the same result
    whatever their number). A ``raw`` estimate reads only the respondents summed over stations: its answers are
    drawn on the sums (``responders`` and ``reported`` (R, 1, K); the same law: :func:`answered_on_sums`)."""
    stations, inclusion, voters, responders, reported = draw_replicates(
        election.votes.values, election.replicates, election.registered, design, seed, poll_index,
        election.region_index, None, pooled=answered_on_sums(design))
    shares = estimate_shares(reported, voters, inclusion, design.valid, design.estimator)
    return Draws(shares, responders, reported, voters, inclusion, design.valid, stations)


def answered_on_sums(design: PollDesign) -> bool:
    """Whether the draw takes ``design``'s answers on the respondents summed over its stations: a ``raw``
    estimate reads nothing else (the ``pooled`` of :func:`simkit.polls.compiled_draws.draw_replicates`)."""
    return design.estimator == "raw"


def draw_pooled(election: SimulatedElections, design: PollDesign, seed: int, poll_index: int) -> Draws:
    """:func:`draw_polls` with each replicate's sampled stations pooled (:func:`pooled`: the shares and the
    respondents' totals, all the ledger and the scenarios read), to the bit: the stations' draws are reduced
    inside each task of the compiled draw (:func:`simkit.polls.compiled_draws.draw_totals`), so that the
    respondents by station are held for one task's replicates per thread, not for every replicate."""
    shares, voters, responders, reported = draw_totals(
        election.votes.values, election.replicates, election.registered, design, seed, poll_index,
        election.region_index, None, pooled=answered_on_sums(design))
    return Draws.summed(shares, responders, reported, voters, design.valid)


def canonical_design(design: PollDesign, n_options: int) -> PollDesign:
    """``design`` in the form the draw reads it (:func:`simkit.polls.compiled_draws.draw_replicates`): the
    response rate and propensities only through their product, the response probability (K,)
    (``response_rate`` 1, ``response_propensity`` that product), and no misreporting as the identity matrix
    (K, K), whose answers the draw takes on the honest path; arrays as float (bool for ``valid``). Two designs
    with the same canonical form draw the same numbers."""
    misreport = np.eye(n_options) if design.misreport is None else np.asarray(design.misreport, dtype=float)
    return replace(design, valid=np.asarray(design.valid, dtype=bool), response_rate=1.0,
                   response_propensity=design.response_probability(n_options).astype(float), misreport=misreport)


def drawn_alike(poll: Poll, design: PollDesign, n_options: int) -> tuple:
    """What the draw of ``poll`` under ``design`` reads besides the world, the seed and the poll's index: the
    poll's kind (an exit poll interviews voters, a quick count reads the count) and every field of the design's
    canonical form (:func:`canonical_design`), so that a new design field enters the key without being listed
    here; two designs with equal keys draw the same numbers (a stated design without differential non-response
    or misreporting is drawn as its sampling-only one)."""
    canonical = canonical_design(design, n_options)
    return (_kind(poll), *(_hashable(getattr(canonical, f.name)) for f in fields(canonical)))


def _hashable(value) -> object:
    """A design field's value as a key part: an array by its shape, dtype and bytes; anything else as is."""
    if isinstance(value, np.ndarray):
        return value.shape, value.dtype.str, value.tobytes()
    return value


def draw_polls_reference(election: SimulatedElections, design: PollDesign, seed: int, poll_index: int) -> Draws:
    """:func:`draw_polls` replicate by replicate with numpy (:func:`simkit.model.exit_poll.draw_exit_poll`,
    each replicate from ``streams.generator(seed, *streams.exit_poll_key(replicate, poll_index))``): the reference,
    the same laws in other numbers (tested against the compiled draw by distribution)."""
    votes = election.votes.values
    draws = []
    for r, replicate in enumerate(election.replicates):
        rng = streams.generator(seed, *streams.exit_poll_key(int(replicate), poll_index))
        draws.append(draw_exit_poll(votes[r], election.registered, design, rng, election.region_index))
    stack = {name: np.stack([getattr(d, name) for d in draws])
             for name in ("shares", "responders", "reported", "voters", "inclusion", "stations")}
    return Draws(**stack, valid=design.valid)


# -- statistics -------------------------------------------------------------------------------------

def tail_p_value(simulated: np.ndarray, published: float, z: float) -> tuple[float, str]:
    """Two-sided p-value of ``published`` under the ``simulated`` (R,) values: Monte Carlo
    (2 × (tail count + 1) / (R + 1), never below 2 / (R + 1)) when at least :data:`MIN_TAIL_COUNT`
    replicates are as extreme; else ``normal_tail``: ``2 Φ(−|z|)``, a normal extrapolation beyond what R
    replicates can confirm (the row's ``p_floor`` = 1 / (R + 1) says how far they reach)."""
    tail = min(np.sum(simulated >= published), np.sum(simulated <= published))
    if tail >= MIN_TAIL_COUNT:
        return min(1.0, 2.0 * (tail + 1) / (len(simulated) + 1)), "monte_carlo"
    return float(2.0 * stats.norm.sf(abs(z))), "normal_tail"


def tail_p_standard_error(row: dict) -> float | None:
    """The Monte Carlo standard error of a row's simulated p-value (``p_method`` ``monte_carlo``,
    :func:`tail_p_value`), √(p (2 − p) / R) for a two-sided tail share (twice a binomial proportion p / 2) of the R
    replicates it was taken over: those in which the poll got an answer (:func:`answered`), R = 1 / ``p_floor`` − 1.
    None for a p from the normal tail or a census figure (no simulated p)."""
    if row["p_method"] != "monte_carlo":
        return None
    p, replicates = row["p_value"], round(1.0 / row["p_floor"]) - 1
    return math.sqrt(p * (2.0 - p) / replicates)


def hotelling_f(t2: float, n: int, dimension: int) -> dict:
    """Hotelling's T² with ``n`` observations in ``dimension`` dimensions, as its exact F:
    F = (n − p) / (p (n − 1)) T² on (p, n − p) degrees of freedom (multivariate normal data)."""
    df2 = n - dimension
    f = df2 / (dimension * (n - 1)) * t2
    return {"t2": t2, "f": f, "df1": dimension, "df2": df2, "p_value": float(stats.f.sf(f, dimension, df2))}


def prediction_t2(simulated: np.ndarray, observed: np.ndarray) -> dict:
    """T² of ONE new observation ``observed`` (D,) against the sample ``simulated`` (R, D) whose mean and
    covariance it is measured by: T² = R / (R + 1) d², d² the Mahalanobis distance² under the sample
    covariance, with its F reference (:func:`hotelling_f` with n = R) and ``d2``. Also the Monte Carlo
    share of replicates at least as far (``p_monte_carlo``, ≥ ``p_floor`` = 1 / (R + 1))."""
    replicates, dimension = simulated.shape
    mean = simulated.mean(axis=0)
    precision = np.linalg.pinv(np.cov(simulated, rowvar=False).reshape(dimension, dimension))

    def distance2(x: np.ndarray) -> np.ndarray:
        centred = x - mean
        return np.einsum("...i,ij,...j->...", centred, precision, centred)

    d2 = float(distance2(observed))
    result = hotelling_f(replicates / (replicates + 1) * d2, replicates, dimension)
    tail = int(np.sum(distance2(simulated) >= d2))
    floor = 1.0 / (replicates + 1)
    return {"d2": d2, **result, "p_method": "hotelling_f" if result["p_value"] >= floor else "hotelling_f_beyond_monte_carlo",
            "p_monte_carlo": (tail + 1) / (replicates + 1), "p_floor": floor}


#: a figure's simulated gap (poll − count, a fraction) moving by at most this between replicates has no sampling
#: error: a census read the same way in every replicate, up to floating-point rounding (a weighted estimate
#: rebuilds a station's votes as share × ballots, 1e-16 off), far below any sample's spread (above 1e-5 for a
#: poll of 10^9 respondents)
CENSUS_SPREAD = 1e-12


def has_sampling_error(gap: np.ndarray) -> bool:
    """Whether a figure's simulated gaps ``gap`` (R,) (fractions) differ between replicates beyond rounding
    (:data:`CENSUS_SPREAD`), judged on the replicates with a figure (NaN: no answer there, :func:`answered`)."""
    finite = gap[np.isfinite(gap)]
    return finite.size > 0 and float(np.ptp(finite)) > CENSUS_SPREAD


def answered(shares: np.ndarray) -> np.ndarray:
    """(R,) bool: the replicates in which a poll drawn as ``shares`` (R, V) got a valid answer (NaN shares
    where it got none). A poll without answers publishes nothing, so a published poll's simulated distribution
    is conditioned on the replicates with answers: the others are dropped from every figure of it."""
    return np.isfinite(shares).all(axis=-1)


def complete(simulated: np.ndarray) -> np.ndarray:
    """(R', D) the rows of ``simulated`` (R, D) without a NaN: the replicates in which every poll with a figure
    among the D got a valid answer (:func:`answered`); ``simulated`` itself when it has no NaN (a copy would
    change its memory layout, and with it the rounding of the covariance)."""
    finite = np.isfinite(simulated).all(axis=-1)
    return simulated if finite.all() else simulated[finite]


def sampled(keys: list[tuple[int, int]], gaps: list[np.ndarray]) -> np.ndarray:
    """(D,) bool: which ``keys`` (``(poll index, valid column)`` pairs) have a simulated gap ``gaps[p]`` (R, V)
    (poll − count) with sampling error (:func:`has_sampling_error`). A figure read from every voter or every
    station's protocol (a census) is the same in every replicate, so no covariance can weigh its gap."""
    return np.array([has_sampling_error(gaps[p][:, column]) for p, column in keys], dtype=bool)


def joint_test(names: list[str], keys: list[tuple[int, int]], gaps: list[np.ndarray],
               published_gaps: np.ndarray, kept: np.ndarray | None = None) -> dict | None:
    """Hotelling T² of all published gaps (fractions) jointly and of each poll's own; ``keys`` are
    ``(poll index, valid column)`` pairs, ``gaps[p]`` (R, V) the simulated (poll − count) of poll p (NaN in the
    replicates without an answer, which are left out: :func:`complete`). Figures without sampling error
    (``kept`` False, :func:`sampled` of them when not given) are left out; None when no figure is left."""
    kept = sampled(keys, gaps) if kept is None else kept
    if not kept.any():
        return None
    keys, published_gaps = [key for key, keep in zip(keys, kept) if keep], published_gaps[kept]
    simulated = np.stack([gaps[p][:, column] for p, column in keys], axis=-1)
    joint = prediction_t2(complete(simulated), published_gaps)
    per_poll = []
    for p, name in enumerate(names):
        mine = [k for k, (poll, _) in enumerate(keys) if poll == p]
        if mine:
            per_poll.append({"pollster": name, **prediction_t2(complete(simulated[:, mine]), published_gaps[mine])})
    return {**joint, "per_poll": per_poll}


def _with_misreport(draws: Draws, design: PollDesign, target: int, incumbent: int, rate: float,
                    rng: np.random.Generator, away_shares: np.ndarray) -> np.ndarray:
    """(R,) estimate of option ``target`` (index among all options) when respondents misreport at signed
    ``rate``: > 0 toward the incumbent (from ``target``, or from every other valid option when
    ``target`` is the incumbent), < 0 away from it (to ``target``, or to the others in proportion to
    ``away_shares``)."""
    responders = draws.responders
    reported = responders.copy()
    others = [k for k in np.flatnonzero(design.valid) if k != incumbent]
    if rate > 0:
        for source in (others if target == incumbent else [target]):
            moved = rng.binomial(responders[..., source], rate)
            reported[..., source] -= moved
            reported[..., incumbent] += moved
    elif rate < 0:
        moved = rng.binomial(responders[..., incumbent], -rate)
        reported[..., incumbent] -= moved
        if target == incumbent:
            reported[..., others] += rng.multinomial(moved, away_shares)
        else:
            reported[..., target] += moved
    shares = estimate_shares(reported, draws.voters, draws.inclusion, design.valid, design.estimator)
    return shares[:, int(np.flatnonzero(design.valid).tolist().index(target))]


def pooled(draws: Draws) -> Draws:
    """The draws with each replicate's stations pooled into one (R, 1, K): the ``raw`` estimate is
    unchanged, and misreporting drawn on pooled counts has the same distribution (a sum of binomials
    with a common rate is a binomial of the sum) at a fraction of the cost."""
    return Draws.summed(draws.shares, draws.responders_totals, draws.reported_totals, draws.voters.sum(axis=-1),
                        draws.valid)


def misreport_needed(draws: Draws, design: PollDesign, target: int, incumbent: int, published: float,
                     seed: int, poll_index: int) -> tuple[float | None, float | None, float | None]:
    """Signed misreporting rates (fractions of the source voters) at which ``published`` (fraction) is the
    simulated median, the 95th and the 5th percentile: ``(needed, low, high)``. None where no rate in
    [-1, 1] gets there. Common random numbers: every rate uses the same stream."""
    valid_index = np.flatnonzero(design.valid)
    others = [k for k in valid_index if k != incumbent]
    away = draws.shares[answered(draws.shares)].mean(axis=0)[[valid_index.tolist().index(k) for k in others]]
    away = away / away.sum()
    increasing = target == incumbent
    draws = pooled(draws) if answered_on_sums(design) else draws

    def quantile_at(rate: float, q: float) -> float:
        rng = streams.generator(seed, *streams.misreport_key(poll_index, target))
        return float(np.nanquantile(_with_misreport(draws, design, target, incumbent, rate, rng, away), q))

    def solve(q: float) -> float | None:
        low, high = -1.0, 1.0
        sign = 1.0 if increasing else -1.0
        if sign * (quantile_at(low, q) - published) > 0 or sign * (quantile_at(high, q) - published) < 0:
            return None
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (low + high)
            if sign * (quantile_at(mid, q) - published) < 0:
                low = mid
            else:
                high = mid
        return 0.5 * (low + high)

    needed = solve(0.5)
    edges = [solve(INTERVAL[0]), solve(INTERVAL[1])]
    if None in edges:
        return needed, None, None
    return needed, min(edges), max(edges)


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
    return [f"{_kind(poll)}.{poll.name}.{name}" for name in ("published", "published_turnout")
            if name in type(poll).model_fields]


def publishes_problem(polls: list[Poll]) -> InputError | None:
    """Why ``polls`` cannot be compared when none of them publishes a figure (:func:`publishes`): the comparison
    would have no row, joint test or mechanism fit (and ``compare --history`` nothing to add), so it is refused
    before anything is simulated (``field: problem``, naming the fields that hold the figures, the first
    :data:`~simkit.errors.MAX_LISTED` of them: :func:`~simkit.errors.first_of`); None when one does."""
    if any(publishes(poll) for poll in polls):
        return None
    fields = first_of(name for poll in polls for name in figure_fields(poll))
    return InputError(f"{fields}: no published figure: the comparison would have no row; give the figures the "
                      "pollsters published")


def silent_flags(polls: list[Poll]) -> list[str]:
    """The flag of each of ``polls`` that publishes no figure (:func:`publishes`) beside others that do: it is drawn
    for what its design delivers, and has no row."""
    return [f"{poll.name}: publishes no figure (none of {', '.join(figure_fields(poll))}): no row; only what its "
            "design delivers is shown" for poll in polls if not publishes(poll)]


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


def replicates_needed(keys: list[tuple[int, int]]) -> int:
    """The fewest replicates that estimate the covariance of the polls' D published figures ``keys``
    (:func:`published_vector`): D + 1 (1 when none is published). The joint test's Hotelling F has R − D denominator
    degrees of freedom and each poll's mechanism fits invert its block of that covariance; with fewer replicates
    the sample covariance is singular and its distances and p-values are meaningless."""
    return len(keys) + 1


def replicates_problem(replicates: int, needed: int, saved: bool = False) -> InputError | None:
    """Why ``replicates`` are too few for the covariance of the published figures, None when they reach ``needed``
    (:func:`replicates_needed`): an InputError to raise or to state (``field: problem``, without the source;
    naming the parameter ``replicates``). ``saved``: they are a saved result's (simulated again, not set by a
    parameter)."""
    if replicates >= needed:
        return None
    why = (f"too few to estimate the covariance of the {needed - 1} published figures (the joint test and the "
           f"mechanism fits need at least {needed})")
    if saved:
        return InputError(f"replicate: the result holds {replicates} replicates, {why}; simulate it again with more")
    return InputError(f"replicates: {replicates} are {why}", parameters=("replicates",))


def check_replicates(replicates: int, needed: int, source: str, saved: bool = False) -> None:
    """Raise :func:`replicates_problem` (``source: field: problem``) when there is one."""
    raise_problem(replicates_problem(replicates, needed, saved), source)


def raise_problem(problem: InputError | None, source: str) -> None:
    """Raise ``problem`` (``field: problem``, as :func:`comparable_problem` states it) as ``source: field: problem``,
    with the parameters it names; nothing when None."""
    if problem is not None:
        raise InputError(f"{source}: {problem}", parameters=problem.parameters)


def too_few_answers(draws: Draws, needed: int, where: str = "") -> tuple[int, str | None]:
    """The number of replicates of ``draws`` without a valid answer, and ``only A of R simulated
    replicates{where} get a valid answer (m valid answers on average), fewer than the {needed} a comparison
    needs`` (``only 1 of R ... gets``, ``none of the R ... gets``) when fewer than ``needed``
    (:func:`replicates_needed`) have one: too few for the covariance of the published figures, and a figure of one
    replicate would pass for a census (None otherwise)."""
    answers = draws.valid_respondents
    empty = int(np.sum(answers == 0))
    with_answer = len(answers) - empty
    if with_answer >= needed:
        return empty, None
    which = f"none of the {len(answers)}" if with_answer == 0 else f"only {with_answer} of {len(answers)}"
    return empty, (f"{which} simulated replicates{where} {'get' if with_answer > 1 else 'gets'} a valid answer "
                   f"({answers.mean():.1f} valid answers on average), fewer than the {needed} a comparison needs")


def check_answers(poll: Poll, draws: Draws, needed: int, source: str, scenario: str | None = None) -> int:
    """The number of replicates in which ``poll``'s design, drawn as ``draws`` (in ``scenario``'s world, when
    named), gets no valid answer (dropped from its distribution: :func:`answered`). Raise
    :class:`~simkit.errors.InputError` when fewer than ``needed`` have one (:func:`too_few_answers`): the remedy
    is the design the pollster used."""
    empty, shortfall = too_few_answers(draws, needed, _of_scenario(scenario))
    if shortfall is not None:
        raise InputError(f"{source}: {_kind(poll)}.{poll.name}: {shortfall}; state the design the pollster used")
    return empty


def check_together(polls: list[Poll], keys: list[tuple[int, int]], gaps: list[np.ndarray], needed: int, source: str,
                   scenario: str | None = None) -> None:
    """Raise :class:`~simkit.errors.InputError` when the replicates in which every poll with a published figure
    (``keys``) got a valid answer, those of the joint test (``gaps[p]`` (R, V), NaN without one), are fewer than
    ``needed``."""
    publishing = sorted({p for p, _ in keys})
    if not publishing:
        return
    together = np.all([answered(gaps[p]) for p in publishing], axis=0)
    if together.sum() < needed:
        names = first_of(f"{_kind(polls[p])}.{polls[p].name}" for p in publishing)
        raise InputError(f"{source}: {names}: every poll has a valid answer in only {int(together.sum())} of "
                         f"{len(together)} simulated replicates{_of_scenario(scenario)}: the joint test needs at "
                         f"least {needed}; state the designs the pollsters used")


def _of_scenario(scenario: str | None) -> str:
    return f" of scenario {scenario}" if scenario is not None else ""


def answers_flag(poll: Poll, empty: int, replicates: int, scenario: str | None = None) -> list[str]:
    """The flag of a poll whose design got no valid answer in ``empty`` of ``replicates`` (none when 0)."""
    if not empty:
        return []
    return [f"{poll.name}: no valid answer in {empty} of {replicates} simulated replicates{_of_scenario(scenario)}: "
            "left out of its simulated figures (a poll without answers publishes nothing)"]


def poll_mechanisms(poll: Poll, p: int, keys: list[tuple[int, int]], gaps: np.ndarray, rows: list[dict],
                    official_votes: dict[str, int], options: list[str], valid_names: list[str], incumbent: str,
                    invalid: str | None, against_all: tuple[str, ...]) -> list[dict]:
    """One-mechanism fits of one poll (:mod:`simkit.polls.mechanisms`): covariance of its published gaps
    from ``gaps`` (R, V) (the replicates with answers); the direction is judged on the incumbent's gap when the
    poll publishes it, else on its figure farthest from the count (largest |z|) among those with sampling error (a
    census row, z = ±inf and ``rounding``, is left out of the fits)."""
    valid = np.array([name != invalid for name in options])
    total = sum(official_votes.get(name, 0) for name in options)
    ballot = Ballot(np.array([official_votes.get(name, 0) / total for name in options]), options.index(incumbent),
                    valid, options.index(invalid) if invalid is not None else None)
    columns = [column for poll_index, column in keys if poll_index == p and has_sampling_error(gaps[:, column])]
    if not columns:  # a census: no sampling error to weigh its gaps by (see :func:`sampled`)
        return []
    observed = Observed(np.array([options.index(valid_names[c]) for c in columns]),
                        np.array([poll.published[valid_names[c]] for c in columns]),
                        np.cov(complete(gaps[:, columns]), rowvar=False).reshape(len(columns), len(columns)))
    judged = next((row for row in rows if row["option"] == incumbent), None) or max(
        (row for row in rows if row["option"] in valid_names and "rounding" not in row), key=lambda row: abs(row["z"]))
    return fit_poll(poll.name, ballot, observed, options, list(against_all), options.index(judged["option"]),
                    judged["gap"] / 100.0)


# -- the comparison ---------------------------------------------------------------------------------

@dataclass
class Comparison:
    """What :func:`compare_polls` returns (see :meth:`to_json` for the keys). ``flags``: claimed designs
    the electorate cannot supply (and the design used instead), shortfalls, stated margins of error beside
    the simulated ones. ``estimates`` (pollster, replicate, option) baseline estimates in percent, with
    ``published`` (pollster, option) and ``official`` (option) for plotting."""

    rows: list[dict]
    scenarios: list[dict]
    ledger: list[dict]
    flags: list[str]
    estimates: xr.Dataset
    joint: dict | None = None
    designs: list[dict] = field(default_factory=list)
    mechanisms: list[dict] = field(default_factory=list)
    baseline: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    #: ``incumbent``, ``against_all`` (first "against all" option or None), ``title``, ``option_labels``
    context: dict = field(default_factory=dict)
    error_baseline: ErrorBaseline | None = None

    def to_json(self) -> dict:
        return {"rows": self.rows, "joint": self.joint, "designs": self.designs, "mechanisms": self.mechanisms,
                "scenarios": self.scenarios, "ledger": self.ledger, "baseline": self.baseline,
                "baseline_table": ({"source": self.error_baseline.source, **self.error_baseline.counts()}
                                   if self.error_baseline is not None else None),
                "flags": self.flags}


def _reference(election: SimulatedElections, valid_names: list[str], options: list[str],
               official: dict[str, int] | None, official_turnout: float | None, against_all, baseline) -> Reference:
    if official:
        valid_total = sum(official.get(name, 0) for name in valid_names)
        shares = np.array([100.0 * official.get(name, np.nan) / valid_total for name in valid_names])
    else:
        shares = 100.0 * election.count_shares(np.array([name in valid_names for name in options])).mean(axis=0)
    return Reference(shares, official_turnout, tuple(against_all), baseline)


def compare_polls(ds: xr.Dataset | Worlds, polls: list[Poll], *, incumbent: str, invalid: str | None = None,
                  official: dict[str, int] | None = None, seed: int = 0,
                  scenario_polls: dict[str, list[Poll]] | None = None, misreport: bool = True,
                  against_all: tuple[str, ...] = (), baseline: ErrorBaseline | None = None,
                  official_turnout: float | None = None, ledger_points: int = LEDGER_POINTS,
                  progress: bool = False, source: str = "polls") -> Comparison:
    """Compare published polls with polls drawn from the simulated elections ``ds`` (see :mod:`simkit.schema`;
    or :class:`Worlds` that give them one world at a time).

    ``polls``: exit polls and quick counts (config models). ``incumbent``: the option misreporting
    favours. ``invalid``: the invalid-ballot option, excluded from published shares. ``official``: the
    official count per option (the reference of every gap; without it, the simulated count's mean, and no
    mechanism fits). ``official_turnout``: percent. ``against_all``: "against all" option names (their own
    error class). ``baseline``: the total-survey-error baseline (None: no ``z_total``). ``scenario_polls``:
    per scenario name, the polls as that scenario states them (default: ``polls``). ``misreport=False``
    skips ``misreport_needed``. ``ledger_points``: points of the joint ledger's Latin hypercube (0: none).
    ``progress``: a progress bar on stderr over the polls drawn (each over every replicate). A poll's replicates
    without a valid answer are left out of its figures (:func:`answered`), counted per pollster in the estimates'
    attribute ``replicates_without_answers`` and flagged. Raises :class:`~simkit.errors.InputError`
    (``source: field: problem``) when the elections have fewer replicates than :func:`replicates_needed`, or
    fewer with a poll's valid answers (:func:`check_answers`, :func:`check_together`).
    """

    worlds = ds if isinstance(ds, Worlds) else Worlds.of(ds)
    options = worlds.options
    valid_names = [name for name in options if name != invalid]
    valid = np.array([name != invalid for name in options])
    base = worlds.baseline()
    election = worlds.election(base)
    here = polls_at(polls, worlds, base)
    keys, published = published_vector(here, valid_names)
    needed = replicates_needed(keys)
    check_replicates(len(election.replicates), needed, source)
    flags = []
    missing = [name for name in valid_names if official and name not in official]
    if missing:
        flags.append(f"the official count has no figure for {', '.join(missing)}: gaps are measured against the "
                     f"simulated count's mean, and no mechanism is fitted")
        official = None
    reference = _reference(election, valid_names, options, official, official_turnout, against_all, baseline)
    count = election.count_shares(valid)
    published_gaps = published - np.array([reference.official[column] / 100.0 for _, column in keys])
    n_worlds = len(worlds.scenario_names or ["honest"]) if keys else 0
    n_points = ledger_points if ledger_axes(worlds, here, invalid) else 0
    bar = progress_bar(len(polls) * (1 + n_points + n_worlds), enabled=progress, unit="poll")
    bar.set_description("drawing polls")
    rows, estimates, gaps, designs, mechanisms, dropped = [], [], [], [], [], []
    drawn = {}  # the baseline world's shares by poll and design, for the scenarios
    flags += silent_flags(here) + quick_count_flags(here, reference)
    for p, poll in enumerate(here):
        resolved = resolve_design(poll, options, invalid, election, unbiased=True, source=source)
        if resolved.note:
            flags.append(f"{poll.name}: {resolved.note}")
        draws = draw_polls(election.for_poll(poll), resolved.design, seed, p)
        dropped.append(check_answers(poll, draws, needed, source))
        flags += answers_flag(poll, dropped[-1], len(draws.shares))
        drawn[(p, drawn_alike(poll, resolved.design, len(options)))] = draws.shares
        bar.update()
        poll_table = poll_rows(poll, draws, resolved.design, options, incumbent, seed, p, count, reference,
                               with_misreport=misreport)
        if isinstance(poll, ExitPollConfig) and poll.stated_error is not None and poll_table:
            half_width = stats.norm.ppf(0.975) * max(row["gap_sd"] for row in poll_table)
            flags.append(f"{poll.name}: stated error ±{100 * poll.stated_error:.1f} points; sampling alone gives a "
                         f"95% half-width of up to ±{half_width:.1f} points for its published figures")
        if publishes_turnout(poll):
            poll_table.append(turnout_row(poll, draws, election.for_poll(poll), reference))
        designs.append(design_entry(poll, resolved, draws))
        flags += design_flags(designs[-1])
        gaps.append(draws.shares - count)
        if official and isinstance(poll, ExitPollConfig) and any(key[0] == p for key in keys):
            mechanisms += poll_mechanisms(poll, p, keys, gaps[-1], poll_table, dict(official), options, valid_names,
                                          incumbent, invalid, reference.against_all)
        rows += poll_table
        estimates.append(100.0 * draws.shares)
    check_together(here, keys, gaps, needed, source)
    kept = sampled(keys, gaps)
    joint = joint_test([poll.name for poll in here], keys, gaps, published_gaps, kept) if keys else None
    census = left_out(here, keys, kept, valid_names)
    if joint is not None and census:
        joint["left_out"] = census
    flags += census_flags(census)
    replicates = election.replicates
    del election, draws  # worlds made on demand are held one at a time
    with bar:
        ledger = _ledger(worlds, polls, options, invalid, incumbent, seed, base, reference, ledger_points,
                         bar.update, source, needed)
        scenarios, scenario_flags = _scenarios(worlds, polls, scenario_polls or {}, options, invalid, keys,
                                               published_gaps, seed, base, bar.update, drawn, source)
    flags += scenario_flags + ledger_flags(ledger)
    ledger_verdicts(rows, ledger)
    names = [poll.name for poll in polls]
    published_table = np.array([[100.0 * poll.published.get(name, np.nan) for name in valid_names] for poll in polls])
    data = {"estimate": (("pollster", schema.REPLICATE, schema.OPTION), np.stack(estimates)),
            "published": (("pollster", schema.OPTION), published_table),
            "official": ((schema.OPTION,), reference.official)}
    dataset = xr.Dataset(data, coords={"pollster": names, schema.OPTION: valid_names,
                                       schema.REPLICATE: replicates},
                         attrs={"units": "percent of valid answers", "replicates_without_answers": dropped})
    return Comparison(rows, scenarios, ledger, flags, dataset, joint, designs, mechanisms,
                      baseline.summary() if baseline is not None else [],
                      {poll.name: poll.label or poll.name for poll in polls},
                      {"incumbent": incumbent, "against_all": against_all[0] if against_all else None}, baseline)


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
        prefix = f"{_kind(poll)}.{poll.name}"
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
    prefix = f"{_kind(poll)}.{poll.name}."
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


def _ledger(worlds: Worlds, polls, options, invalid, incumbent, seed, base, reference, points: int,
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
                    if name.startswith(f"{_kind(poll)}.{poll.name}.") or name in worlds.sweep_dims}
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


def _scenarios(worlds: Worlds, polls, scenario_polls, options, invalid, keys: list[tuple[int, int]],
               published_gaps: np.ndarray, seed, base, tick: Callable[[], object], drawn: dict[tuple, np.ndarray],
               source: str) -> tuple[list[dict], list[str]]:
    """Per scenario, the polls as configured: Hotelling T² of the published gaps ``published_gaps`` (D,)
    (published − official, fractions, of the figures ``keys``: :func:`published_vector`) against the simulated
    (poll − count) of that scenario's world. ``drawn``: the baseline world's shares
    (R, V) by poll index and :func:`drawn_alike` key (checked there), not drawn again; a poll drawn afresh is
    checked for answers (:func:`check_answers`, :func:`check_together`, naming the scenario). Returns the
    entries and the flags of polls drawn afresh without answers in some replicate (:func:`answers_flag`)."""
    if not keys:
        return [], []
    needed = replicates_needed(keys)
    valid = np.array([name != invalid for name in options])
    has_scenarios = worlds.scenario_names is not None
    names = worlds.scenario_names if has_scenarios else ["honest"]
    base_scenario = base.get(schema.SCENARIO)
    # the baseline's world first: the ledger left it in hand
    order = sorted(range(len(names)), key=lambda index: index != base_scenario)
    results, flags = {}, []
    for index in order:
        name = names[index]
        point = {**base, schema.SCENARIO: index} if has_scenarios else base
        election = None  # let the previous world go before the next is made
        election = worlds.election(point)
        count = election.count_shares(valid)
        stated = polls_at(scenario_polls.get(name, polls), worlds, point)
        gaps = []
        for p, poll in enumerate(stated):
            design = resolve_design(poll, options, invalid, election, unbiased=False, source=source).design
            shares = drawn.get((p, drawn_alike(poll, design, len(options)))) if point == base else None
            if shares is None:
                draws = draw_pooled(election.for_poll(poll), design, seed, p)
                shares = draws.shares
                flags += answers_flag(poll, check_answers(poll, draws, needed, source, name), len(shares), name)
            gaps.append(shares - count)
            tick()
        check_together(stated, keys, gaps, needed, source, name)
        test = joint_test([poll.name for poll in stated], keys, gaps, published_gaps)
        if test is not None:
            results[index] = {"scenario": name, "count_turnout": 100.0 * float(
                election.totals.sum(axis=-1).mean() / election.registered.sum()), **test}
    return [results[index] for index in range(len(names)) if index in results], flags


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


def design_problems(cfg, polls: list[Poll], electorate) -> list[str]:
    """Problems (``dotted.field: problem``) of ``polls``' designs (of ``cfg``) against its ``electorate``
    (:class:`simkit.electorate.build.Electorate`) and ballot: :func:`simkit.config.polls.check_poll_design`."""
    return [problem for poll in polls for problem in check_poll_design(
        poll, electorate.n_stations, electorate.registered, cfg.option_names, cfg.invalid_option_name)]


def comparable_problem(cfg, electorate: Electorate, replicates: int | None = None,
                       ds: xr.Dataset | None = None) -> InputError | None:
    """The first reason :func:`compare_config` cannot compare the polls of ``cfg`` (``[[exit_poll]]`` then
    ``[[quick_count]]``), found before anything is simulated, or None: there are none, none publishes a figure
    (:func:`publishes_problem`), a design is impossible in the ``electorate``
    (:func:`simkit.electorate.build.electorate_of`), or ``replicates`` (the config's when None; the replicates of
    ``ds`` when given) are too few for the covariance of the published figures. An InputError to
    raise (:func:`check_comparable`) or to state (the report's omission): ``field: problem``, without the source,
    its ``parameters`` those it names."""
    polls = cfg.polls
    if not polls:
        return InputError("exit_poll: the config has no [[exit_poll]] or [[quick_count]] blocks")
    silent = publishes_problem(polls)
    if silent is not None:
        return silent
    problems = design_problems(cfg, polls, electorate)
    if problems:
        return InputError(problems[0])
    needed = replicates_needed(published_vector(polls, cfg.valid_option_names)[0])
    if ds is not None:
        return replicates_problem(ds.sizes[schema.REPLICATE], needed, saved=True)
    return replicates_problem(cfg.run.replicates if replicates is None else replicates, needed)


def check_comparable(cfg, *, replicates: int | None = None, ds: xr.Dataset | None = None,
                     source: str = "config", electorate: Electorate | None = None) -> list[Poll]:
    """The polls of ``cfg`` (``[[exit_poll]]`` then ``[[quick_count]]``), once checked that :func:`compare_config`
    can compare them (:func:`comparable_problem`, raised as ``source: field: problem``). ``electorate``: the
    config's, when the caller has built it (:func:`simkit.electorate.build.electorate_of`)."""
    raise_problem(comparable_problem(cfg, electorate if electorate is not None else electorate_of(cfg), replicates, ds),
                  source)
    return cfg.polls


def compare_config(cfg, *, replicates: int | None = None, seed: int | None = None, ds: xr.Dataset | None = None,
                   source: str = "config", history: Path | str | None = DEFAULT_HISTORY,
                   ledger_points: int | None = None, progress: bool = False,
                   electorate: Electorate | None = None) -> Comparison:
    """The whole comparison for a config: check its poll designs against the electorate, simulate
    ``replicates`` elections (unless ``ds`` gives them: then one world at a time, each held only while its
    polls are drawn, with a progress bar when ``progress``) and compare every
    ``[[exit_poll]]`` and ``[[quick_count]]`` with the official count of ``[observed]``, under the
    total-survey-error baseline of the ``history`` table (None: sampling error only). ``electorate``: the
    config's, when the caller has built it (:func:`simkit.electorate.build.electorate_of`), else built here.

    Raises :class:`simkit.errors.InputError` (``source: field: problem``) for a config without polls, a
    design the electorate makes impossible, too few replicates for the covariance of the published figures
    (:func:`check_replicates`) or a bad history table.
    """
    check_config(cfg)
    electorate = electorate if electorate is not None else electorate_of(cfg)
    polls = check_comparable(cfg, replicates=replicates, ds=ds, source=source, electorate=electorate)
    baseline = ErrorBaseline.from_file(history) if history is not None else None
    invalid = cfg.invalid_option_name
    worlds = Worlds.of(ds) if ds is not None else simulated_worlds(
        prepare(cfg, replicates, seed, "full", source=source, electorate=electorate), progress=progress)
    observed = cfg.observed
    comparison = compare_polls(worlds, polls, incumbent=cfg.leader, invalid=invalid, official=dict(observed.votes) or None,
                         seed=seed if seed is not None else cfg.run.seed, scenario_polls=scenario_polls(cfg, polls),
                         against_all=tuple(option.name for option in cfg.options if option.kind == "against_all"),
                         baseline=baseline, official_turnout=observed.counted_turnout(),
                         ledger_points=LEDGER_POINTS if ledger_points is None else ledger_points,
                         progress=progress, source=source)
    comparison.context.update(title=cfg.title, option_labels={option.name: option.label or option.name
                                                              for option in cfg.options})
    return comparison
