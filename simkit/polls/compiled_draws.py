"""A poll drawn from every replicate in one compiled call: the same design and the same laws as
:func:`simkit.model.exit_poll.draw_exit_poll` (the reference), drawn with the engine's exact samplers
(:mod:`simkit.engine.kernels`), so the same distribution but not the same numbers.

Per replicate, from the xoshiro256** state of ``SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate,
poll_index))`` (keyed by logical position, so a replicate's poll does not depend on which other replicates are
drawn, in which chunk or on how many threads):

1. **stations**, per stratum (the whole country, or each region with its allocation
   :func:`simkit.model.exit_poll.allocate_by_region`): ``simple``, a partial Fisher-Yates shuffle (each
   subset of the stratum equally likely, inclusion ``take / stations``); ``pps``, the stations
   :func:`simkit.model.exit_poll.certain_stations` takes with certainty, then systematic sampling
   proportional to the register from a uniformly random order of the rest with voters (inclusion ``remaining ×
   size / total``; a station of 0 voters has probability 0);
2. **approached** voters: ``min(per_station, voters)``, every ``k``-th from a uniform start, or all of them;
   drawn without replacement from the station's ballots (read for all the sampled stations of a replicate first,
   so that their cache misses overlap): up to :data:`ONE_BY_ONE_MAX` one by one, each uniform among the voters
   not yet approached, else as sequential hypergeometric counts
   (:func:`simkit.model.samplers.hypergeometric_sample`);
3. **responders**: binomial thinning of each option's approached voters by its response probability (when
   every option has the same probability ``p`` and voters are sampled, the number who answer is drawn first,
   Binomial(approached, p), and that many are drawn without replacement in step 2: the answering part of a
   uniformly random subset is a uniformly random subset of binomial size, so the law is the same);
4. **reported** answers: each option's responders split over the ``misreport`` row as sequential
   conditional binomials (a multinomial).

Steps 3 (when not drawn before the approach) and 4 are drawn per station, or once on the sums over the sampled
stations when only the sums are asked for (``pooled``: the same law of the sums).

The published estimate (step 5) is :func:`simkit.model.exit_poll.estimate_shares`, vectorised over
replicates. Shapes: ``R`` replicates, ``S`` stations, ``K`` options, ``n`` sampled stations.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numba
import numpy as np

from simkit import streams
from simkit.model import samplers
from simkit.engine.parallel import KeyedPool, choose, chunks
from simkit.model.exit_poll import (PollDesign, allocate_by_region, certain_stations, check_pps, estimate_shares,
                                   station_sums)

#: approach modes of the compiled sampler, in the order of :data:`simkit.model.exit_poll.RespondentMode`
MODES = ("fixed", "every_kth", "whole_flow")
#: how approached voters answer (:func:`_interview`): all, with one probability, with one per option
EVERY_ONE, COMMON, BY_OPTION = 0, 1, 2
#: replicates per chunk handed to a worker thread (part of no stream: results do not depend on it)
CHUNK_REPLICATES = 64
#: approached voters up to which a station's are drawn one by one (a uniform each), not as K − 1 hypergeometric
#: counts (each costs some ten uniforms: its mode's probability and a search from it)
ONE_BY_ONE_MAX = 24
#: sampled station-replicates below which threads cost more than they save
MIN_PARALLEL_WORK = 20_000


@dataclass(frozen=True)
class Strata:
    """Where stations are drawn from, fixed for a design and an electorate: per stratum ``g``, the stations
    drawn at random (under ``pps``, those with voters) ``candidates[candidate_offsets[g]:candidate_offsets[g + 1]]``, those taken with certainty
    ``certain[certain_offsets[g]:certain_offsets[g + 1]]`` and ``takes[g]`` stations to draw in all;
    ``sizes`` (S,) float64 the register (the size measure of ``pps``)."""

    candidates: np.ndarray
    candidate_offsets: np.ndarray
    certain: np.ndarray
    certain_offsets: np.ndarray
    takes: np.ndarray
    sizes: np.ndarray

    @property
    def n_sampled(self) -> int:
        return int(self.takes.sum())


def strata(design: PollDesign, registered: np.ndarray, region_index: np.ndarray | None) -> Strata:
    """The :class:`Strata` of ``design`` over an electorate of ``registered`` (S,) voters per station and
    ``region_index`` (S,) (used when ``design.by_region``). A comparison draws the same stations' design
    again (at ledger points that vary only what comes after the stations, and in its scenarios), so the last
    few are kept: callers must not write to them. A ``pps`` design asking for more stations than hold voters is
    refused (:func:`simkit.model.exit_poll.check_pps`)."""
    registered = np.asarray(registered)
    if not 1 <= design.n_stations <= len(registered):
        raise ValueError(f"cannot sample {design.n_stations} stations out of {len(registered)}")
    if design.selection == "pps":
        check_pps(design.n_stations, registered)
    regions = np.asarray(region_index, dtype=np.int64).tobytes() if design.by_region else None
    return _strata(design.n_stations, design.selection, registered.astype(np.float64).tobytes(), regions)


@functools.lru_cache(maxsize=8)
def _strata(n_stations: int, selection: str, registered: bytes, regions: bytes | None) -> Strata:
    registered = np.frombuffer(registered, dtype=np.float64).copy()  # writeable: the compiled signature
    if regions is not None:
        region_index = np.frombuffer(regions, dtype=np.int64)
        members = [np.flatnonzero(region_index == region)
                   for region in range(int(region_index.max()) + 1)]
        takes = allocate_by_region(n_stations, region_index, registered, selection)
    else:
        members, takes = [np.arange(len(registered))], np.array([n_stations])
    candidates, certain = [], []
    pps = selection == "pps"
    for stations, take in zip(members, takes):
        sure = (certain_stations(registered[stations], int(take)) if pps and take > 0
                else np.zeros(len(stations), dtype=bool))
        # a station of 0 voters has no chance under pps: no candidate
        candidates.append(stations[~sure & (registered[stations] > 0)] if pps else stations[~sure])
        certain.append(stations[sure])

    def packed(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.concatenate([[0], np.cumsum([len(part) for part in parts])]).astype(np.int64)
        return np.concatenate(parts).astype(np.int64), offsets

    return Strata(*packed(candidates), *packed(certain), np.asarray(takes, dtype=np.int64), registered)


@samplers.inline_jit
def _uniform_below(state, n):
    """A uniform integer in [0, n) (n >= 1) and the state."""
    u, state = samplers.uniform_sample(state)
    return min(int(u * n), n - 1), state


@samplers.inline_jit
def _sample_stations(state, strata_arrays, pps, order, cumulative, stations_out, inclusion_out):
    """One replicate's sampled stations into ``stations_out`` (n,) and their inclusion probabilities into
    ``inclusion_out`` (n,); ``order`` and ``cumulative`` are work buffers as long as the largest stratum.
    Returns the state."""
    candidates, candidate_offsets, certain, certain_offsets, takes, sizes = strata_arrays
    position = 0
    for stratum in range(takes.shape[0]):
        first, last = candidate_offsets[stratum], candidate_offsets[stratum + 1]
        n_candidates = last - first
        for index in range(certain_offsets[stratum], certain_offsets[stratum + 1]):
            stations_out[position] = certain[index]
            inclusion_out[position] = 1.0
            position += 1
        remaining = takes[stratum] - (certain_offsets[stratum + 1] - certain_offsets[stratum])
        if remaining <= 0:
            continue
        for index in range(n_candidates):
            order[index] = candidates[first + index]
        shuffled = n_candidates if pps else remaining  # a partial shuffle suffices for a simple sample
        for index in range(min(shuffled, n_candidates - 1)):
            offset, state = _uniform_below(state, n_candidates - index)
            swap = index + offset
            order[index], order[swap] = order[swap], order[index]
        if not pps:
            for index in range(remaining):
                stations_out[position] = order[index]
                inclusion_out[position] = remaining / n_candidates
                position += 1
            continue
        running = 0.0
        for index in range(n_candidates):
            running += sizes[order[index]]
            cumulative[index] = running
        step = running / remaining
        start, state = samplers.uniform_sample(state)
        pointer = 0
        for point_index in range(remaining):
            point = (start + point_index) * step
            while pointer < n_candidates - 1 and cumulative[pointer] <= point:
                pointer += 1
            stations_out[position] = order[pointer]
            inclusion_out[position] = remaining * sizes[order[pointer]] / running
            position += 1
    return state


@samplers.inline_jit
def _approach(state, station_votes, mode, per_station, every_kth, probability, thin_first, approached):
    """One sampled station's approached voters: ``station_votes`` (K,) ballots by option in, ``approached`` (K,)
    int64 out, drawn without replacement (one by one for a few, else sequential hypergeometric counts). With ``thin_first`` the number who
    answer at the :data:`COMMON` probability ``probability[0]`` is drawn before the approach, and ``approached``
    holds those who answer. Returns ``(voters, state)``."""
    n_options = station_votes.shape[0]
    voters = 0
    for option in range(n_options):
        voters += station_votes[option]
    if mode == 2:
        draws = voters
    elif mode == 0:
        draws = min(per_station, voters)
    else:
        start, state = _uniform_below(state, every_kth)
        draws = max(voters - start + every_kth - 1, 0) // every_kth
    if thin_first:  # the answering part of a random subset is a random subset of a binomial size
        draws, state = samplers.binomial_sample(state, draws, probability[0])
    if draws == voters:
        for option in range(n_options):
            approached[option] = station_votes[option]
    elif draws <= ONE_BY_ONE_MAX:  # voter by voter, each uniform among those not yet approached
        for option in range(n_options):
            approached[option] = 0
        for taken in range(draws):
            pick, state = _uniform_below(state, voters - taken)
            option = 0
            while pick >= station_votes[option] - approached[option]:
                pick -= station_votes[option] - approached[option]
                option += 1
            approached[option] += 1
    else:
        remaining_total, remaining_draws = voters, draws
        for option in range(n_options - 1):
            good = station_votes[option]
            taken, state = samplers.hypergeometric_sample(state, good, remaining_total - good, remaining_draws)
            approached[option] = taken
            remaining_total -= good
            remaining_draws -= taken
        approached[n_options - 1] = remaining_draws
    return voters, state


@samplers.inline_jit
def _answer(state, approached, response, thin_first, probability, misreport, honest, said, responders,
            reported):
    """The answers of ``approached`` (K,) voters by option (of one station, or summed over stations: a sum of
    binomials with a common probability is a binomial of the sum, and likewise multinomials): ``responders``
    (K,) by their vote and ``reported`` (K,) by their answer, out (``said`` (K,) int64 a work buffer).
    ``response``: :data:`EVERY_ONE` answers, a :data:`COMMON` probability ``probability[0]`` or one per option
    (:data:`BY_OPTION`); with ``thin_first`` the approach drew those who answer already. Returns the state."""
    n_options = approached.shape[0]
    for option in range(n_options):
        if response == EVERY_ONE or thin_first:
            responders[option] = approached[option]
        else:
            responders[option], state = samplers.binomial_sample(state, approached[option], probability[option])
        reported[option] = 0
    for option in range(n_options):
        if honest or misreport[option, option] == 1.0:
            reported[option] += responders[option]
            continue
        # the misreport row sums to 1
        state = samplers.multinomial_sample(state, responders[option], misreport[option], 1.0, said)
        for answer in range(n_options):
            reported[answer] += said[answer]
    return state


def _draw_replicates_impl(votes, rows, states, strata_arrays, pps, mode, per_station, every_kth, probability,
                          misreport, honest, pooled, stations_out, inclusion_out, voters_out, responders_out,
                          reported_out):
    n_options = votes.shape[2]
    n_sampled = stations_out.shape[1]
    response = EVERY_ONE
    for option in range(n_options):
        if probability[option] != probability[0]:
            response = BY_OPTION
    if response == EVERY_ONE and probability[0] != 1.0:
        response = COMMON
    thin_first = response == COMMON and mode != 2
    order = np.empty(strata_arrays[0].shape[0], dtype=np.int64)
    cumulative = np.empty(strata_arrays[0].shape[0])
    approached = np.empty(n_options, dtype=np.int64)
    approached_sum = np.empty(n_options, dtype=np.int64)
    said = np.empty(n_options, dtype=np.int64)
    station_votes = np.empty((n_sampled, n_options), dtype=np.int64)
    for index in range(rows.shape[0]):
        state = (states[index, 0], states[index, 1], states[index, 2], states[index, 3])
        state = _sample_stations(state, strata_arrays, pps, order, cumulative, stations_out[index],
                                 inclusion_out[index])
        # every sampled station's votes read first, in a loop of loads only: their cache misses overlap
        for sampled in range(n_sampled):
            for option in range(n_options):
                station_votes[sampled, option] = votes[rows[index], stations_out[index, sampled], option]
        approached_sum[:] = 0
        for sampled in range(n_sampled):
            voters_out[index, sampled], state = _approach(
                state, station_votes[sampled], mode, per_station, every_kth, probability, thin_first, approached)
            if pooled:
                for option in range(n_options):
                    approached_sum[option] += approached[option]
            else:
                state = _answer(state, approached, response, thin_first, probability, misreport, honest, said,
                                responders_out[index, sampled], reported_out[index, sampled])
        if pooled:
            state = _answer(state, approached_sum, response, thin_first, probability, misreport, honest, said,
                            responders_out[index, 0], reported_out[index, 0])


_draw_replicates_jit = numba.njit(nogil=True, cache=True, error_model="numpy")(_draw_replicates_impl)


class _Reduction(NamedTuple):
    """What a job makes of each chunk's draws: ``reduce`` maps them (:func:`_outputs`) to the chunk's rows of the
    job's outputs; ``shape`` (n, answered stations, K) sizes the chunk's own arrays they are drawn into."""

    reduce: Callable[[tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class _Job:
    """What every chunk of replicates shares: the votes (R, S, K), each replicate's generator state, the
    design's arguments of the compiled draw (:func:`_design_arguments`, computed once per poll) and the output
    arrays, each chunk writing its own rows: the draws (stations, inclusion and voters (R, n), responders and
    reported (R, n, K), or (R, 1, K) pooled), or with a ``reduction`` what it makes of a chunk's draws, drawn into
    the chunk's own arrays and dropped once reduced."""

    votes: np.ndarray
    states: np.ndarray  #: (R, 4) uint64 each replicate's xoshiro256** state (:func:`poll_states`)
    design: tuple  #: the compiled draw's arguments from ``strata_arrays`` to ``pooled``
    out: tuple[np.ndarray, ...]  #: the results of every replicate, filled chunk by chunk (:func:`_draw_chunk`)
    reduction: _Reduction | None = None


def _outputs(count: int, sampled: int, answered: int, n_options: int) -> tuple[np.ndarray, ...]:
    """Empty arrays for the draws of ``count`` replicates: stations, inclusion and voters (count, sampled),
    responders and reported (count, answered, n_options)."""
    return (np.empty((count, sampled), np.int64), np.empty((count, sampled)), np.empty((count, sampled), np.int64),
            np.empty((count, answered, n_options), np.int64), np.empty((count, answered, n_options), np.int64))


def _design_arguments(design: PollDesign, strata_: Strata, n_options: int, pooled: bool) -> tuple:
    """The arguments of the compiled draw that depend on the design only, in its order: the strata's arrays,
    ``pps``, the approach mode, ``per_station``, ``every_kth``, the response probability (K,), the misreport
    matrix (K, K), whether answers are honest and whether answers are drawn on the stations' pooled counts."""
    misreport = np.eye(n_options) if design.misreport is None else np.asarray(design.misreport, dtype=float)
    return ((strata_.candidates, strata_.candidate_offsets, strata_.certain, strata_.certain_offsets,
             strata_.takes, strata_.sizes),
            design.selection == "pps", MODES.index(design.respondents), int(design.per_station),
            int(design.every_kth), design.response_probability(n_options).astype(float), misreport,
            design.misreport is None, pooled)


def replicate_state(seed: int, replicate: int, poll_index: int) -> np.ndarray:
    """(4,) uint64 xoshiro256** state of one replicate's poll, from
    ``SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate, poll_index))``."""
    return np.random.SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate, poll_index)).generate_state(
        4, np.uint64)


def poll_states(seed: int, poll_index: int, replicates: np.ndarray) -> np.ndarray:
    """(R, 4) uint64: :func:`replicate_state` of each of ``replicates`` (R,) >= 0. A comparison draws the same poll
    from the same replicates at every point of its ledger (:func:`simkit.polls.draws.draw_pooled`), so each
    poll's states are kept for replicates 0 … the largest asked
    (32 bytes a replicate; about 16 CPU ms per 1,000 replicates to make), for the last :data:`KEPT_POLLS` polls."""
    replicates = np.asarray(replicates, dtype=np.int64)
    needed = int(replicates.max(initial=-1)) + 1
    with _STATE_LOCK:
        table = _STATE_TABLES.pop((seed, poll_index), None)
        if table is None or table.shape[0] < needed:
            made = 0 if table is None else table.shape[0]
            extra = np.array([replicate_state(seed, replicate, poll_index) for replicate in range(made, needed)],
                             dtype=np.uint64).reshape(-1, 4)
            table = extra if table is None else np.concatenate([table, extra])
        _STATE_TABLES[seed, poll_index] = table  # most recently used last
        while len(_STATE_TABLES) > KEPT_POLLS:
            del _STATE_TABLES[next(iter(_STATE_TABLES))]
    return table[replicates]


#: polls (seed and index) whose states :func:`poll_states` keeps
KEPT_POLLS = 64
_STATE_TABLES: dict[tuple[int, int], np.ndarray] = {}
_STATE_LOCK = threading.Lock()


def _draw_chunk(job: _Job, rows: range) -> None:
    """Draw the replicates at positions ``rows`` of ``job.votes`` into those rows of ``job.out`` (with
    ``job.reduction``: into the chunk's own arrays, then their reduction into those rows)."""
    mine, reduction = slice(rows.start, rows.stop), job.reduction
    drawn = tuple(array[mine] for array in job.out) if reduction is None else _outputs(len(rows), *reduction.shape)
    _draw_replicates_jit(job.votes, np.arange(rows.start, rows.stop, dtype=np.int64),
                         job.states[mine],  # poll_states' own copy: writeable, as compiled
                         *job.design, *drawn)
    if reduction is not None:
        for array, reduced in zip(job.out, reduction.reduce(drawn)):
            array[mine] = reduced


def _run(job: _Job, count: int, sampled: int, workers: int | None) -> None:
    """Fill ``job.out`` for ``count`` replicates of ``sampled`` stations each, in chunks of
    :data:`CHUNK_REPLICATES` on ``workers`` threads (the compiled draw releases the GIL)."""
    where, workers = choose(workers, count * sampled, MIN_PARALLEL_WORK, releases_gil=True)
    with KeyedPool(_draw_chunk, job, where, workers) as pool:
        for _ in pool.map(chunks(count, CHUNK_REPLICATES)):
            pass


def _job(votes: np.ndarray, replicates: np.ndarray, registered: np.ndarray, design: PollDesign, seed: int,
         poll_index: int, region_index: np.ndarray | None, pooled: bool) -> tuple[Strata, dict]:
    """The strata of ``design`` and the fields of its :class:`_Job` but the outputs (checked: a response
    probability above 1 is refused)."""
    if design.response_probability(votes.shape[-1]).max() > 1.0:
        raise ValueError("response probability above 1: response_rate × response_propensity must not exceed 1")
    strata_ = strata(design, registered, region_index)
    return strata_, {"votes": votes, "states": poll_states(seed, poll_index, replicates),
                     "design": _design_arguments(design, strata_, votes.shape[-1], pooled)}


def draw_replicates(votes: np.ndarray, replicates: np.ndarray, registered: np.ndarray, design: PollDesign,
                    seed: int, poll_index: int, region_index: np.ndarray | None = None,
                    workers: int | None = 1, pooled: bool = False) -> tuple[np.ndarray, ...]:
    """``design`` drawn from every replicate of ``votes`` (R, S, K) ballots per station and option (integer):
    ``(stations, inclusion, voters, responders, reported)``, shapes (R, n), (R, n), (R, n), (R, n, K),
    (R, n, K). ``replicates`` (R,) ids key the streams; ``registered`` (S,) and ``region_index`` (S,) as for
    :func:`simkit.model.exit_poll.draw_exit_poll`. ``workers``: threads (None: every core); the result is
    bit-identical whatever their number.

    ``pooled``: ``responders`` and ``reported`` are the sums over the sampled stations, (R, 1, K), all a ``raw``
    estimate reads; the voters approached are drawn station by station, and the response thinning that comes
    after the approach and the misreporting are drawn once on the sums (a sum of binomials with one probability
    is a binomial of the sum, likewise multinomials with one row: the same law of the sums, other numbers, at a
    fraction of the cost for a whole-flow design)."""
    strata_, fields = _job(votes, replicates, registered, design, seed, poll_index, region_index, pooled)
    count, n = len(replicates), strata_.n_sampled
    out = _outputs(count, n, 1 if pooled else n, votes.shape[-1])
    _run(_Job(**fields, out=out), count, n, workers)
    return out


def draw_totals(votes: np.ndarray, replicates: np.ndarray, registered: np.ndarray, design: PollDesign,
                seed: int, poll_index: int, region_index: np.ndarray | None = None,
                workers: int | None = 1, pooled: bool = False) -> tuple[np.ndarray, ...]:
    """:func:`draw_replicates` reduced inside each chunk's task to what each replicate's poll gives once its
    stations are pooled: ``(shares, voters, responders, reported)``, shapes (R, V), (R,), (R, K), (R, K): the
    design's estimate (:func:`simkit.model.exit_poll.estimate_shares` of the stations' draws), the voters at the
    sampled stations and the respondents by vote and by answer, summed over them. The same numbers as
    :func:`draw_replicates` reduced after the draw; memory: these, and the draws by station of one chunk of
    :data:`CHUNK_REPLICATES` per thread, not of every replicate."""
    strata_, fields = _job(votes, replicates, registered, design, seed, poll_index, region_index, pooled)
    count, n, n_options = len(replicates), strata_.n_sampled, votes.shape[-1]
    out = (np.empty((count, int(np.sum(design.valid))), float), np.empty(count, np.int64),
           np.empty((count, n_options), np.int64), np.empty((count, n_options), np.int64))
    reduction = _Reduction(functools.partial(_totals, design), (n, 1 if pooled else n, n_options))
    job = _Job(**fields, out=out, reduction=reduction)
    _run(job, count, n, workers)
    return out


def _totals(design: PollDesign, drawn: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """A chunk's draws (:func:`_outputs`) reduced as :func:`draw_totals` returns them."""
    _, inclusion, voters, responders, reported = drawn
    return (estimate_shares(reported, voters, inclusion, design.valid, design.estimator), voters.sum(axis=-1),
            station_sums(responders), station_sums(reported))
