"""A poll drawn in every replicate (:class:`Draws`): station by station (:func:`draw_polls`), pooled over each
replicate's sampled stations (:func:`draw_pooled`, what the ledger and the scenarios read), replicate by replicate
with numpy (:func:`draw_polls_reference`, the reference), and the misreporting rate that makes a published figure
the simulated median (:func:`misreport_needed`).

Random streams: ``SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate, poll_index))`` per replicate and
poll, so a poll draw depends only on its logical position.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np

from simkit import streams
from simkit.schema import INTERVAL
from simkit.model.exit_poll import PollDesign, draw_exit_poll, estimate_shares, station_sums
from simkit.polls.compiled_draws import draw_replicates, draw_totals
from simkit.polls.elections import Poll, SimulatedElections, poll_kind
from simkit.polls.statistics import answered


#: bisection steps for ``misreport_needed`` (rates in [-1, 1]: resolution 2 / 2**steps)
BISECTION_STEPS = 18


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
    return (poll_kind(poll), *(_hashable(getattr(canonical, f.name)) for f in fields(canonical)))


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
