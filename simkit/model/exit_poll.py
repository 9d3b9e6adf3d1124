"""Exit polls and quick counts drawn from one simulated election's station-level votes.

Pure functions: arrays, plain parameters and a ``numpy.random.Generator`` in, arrays out.

An exit poll here is what happens at the door of the sampled stations:

1. **stations** are sampled (simple random or proportional to the register, nationally or by region);
2. at each, voters are **approached**: a fixed number ``m``, every ``k``-th voter, or the whole flow,
   drawn WITHOUT replacement from the station's actual ballots (a multivariate hypergeometric draw,
   done as sequential hypergeometrics vectorized over stations);
3. each approached voter **responds** with a probability that may depend on how they voted
   (``response_rate`` × a relative propensity per option: differential non-response);
4. a respondent who voted for option ``j`` **reports** option ``l`` with probability ``misreport[j, l]``;
5. the pollster publishes **shares over valid answers** (``invalid`` excluded, as Kazakh pollsters do),
   pooled over respondents (``raw``) or as a ratio of Horvitz-Thompson estimates of the options' votes
   (``weighted``: each station's shares of all answers times its ballots, over its inclusion probability).

A quick count (parallel vote tabulation) is steps 1 and 5 on the exact station protocols.

Shapes: ``S`` stations in the election, ``K`` options (``invalid`` included), ``n`` sampled stations,
``V`` valid options. Counts are int64; shares are fractions in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Selection = Literal["simple", "pps"]
RespondentMode = Literal["fixed", "every_kth", "whole_flow"]
Estimator = Literal["raw", "weighted"]


@dataclass(frozen=True)
class PollDesign:
    """A pollster's design in plain parameters (the config layer builds it).

    ``response_propensity`` (K,) is each option's relative propensity to answer (1 = average);
    the response probability of a voter for option ``j`` is ``response_rate * response_propensity[j]``
    and must not exceed 1. ``misreport`` (K, K) has rows summing to 1 (identity = honest answers).
    ``valid`` (K,) marks the options counted in the published shares.
    """

    n_stations: int
    valid: np.ndarray
    selection: Selection = "simple"
    by_region: bool = False
    respondents: RespondentMode = "fixed"
    per_station: int = 0
    every_kth: int = 1
    response_rate: float = 1.0
    response_propensity: np.ndarray | None = None
    misreport: np.ndarray | None = None
    estimator: Estimator = "raw"

    def response_probability(self, n_options: int) -> np.ndarray:
        """(K,) probability that an approached voter of each option answers."""
        propensity = np.ones(n_options) if self.response_propensity is None else self.response_propensity
        return self.response_rate * np.asarray(propensity, dtype=float)


@dataclass(frozen=True)
class PollDraw:
    """One poll drawn from one election.

    ``stations`` (n,) indices of the sampled stations; ``inclusion`` (n,) their inclusion probabilities;
    ``voters`` (n,) ballots cast there; ``responders`` (n, K) respondents by how they actually voted;
    ``reported`` (n, K) respondents by what they told the interviewer; ``shares`` (V,) the published
    estimate over valid options.
    """

    stations: np.ndarray
    inclusion: np.ndarray
    voters: np.ndarray
    responders: np.ndarray
    reported: np.ndarray
    shares: np.ndarray

    @property
    def respondents(self) -> np.ndarray:
        """(n,) respondents per sampled station (never more than ``voters``)."""
        return self.reported.sum(axis=-1)


# -- stations ---------------------------------------------------------------------------------------

def certain_stations(sizes: np.ndarray, n: int) -> np.ndarray:
    """(S,) bool: the stations a sample of ``n`` proportional to ``sizes`` (S,) takes with certainty (those
    whose inclusion probability would reach 1, found again among the rest until none does); a station of size 0
    has probability 0, never 1."""
    sizes = np.asarray(sizes, dtype=float)
    certain = np.zeros(len(sizes), dtype=bool)
    while True:
        remaining = n - certain.sum()
        rest_total = sizes[~certain].sum()
        newly = ~certain & (sizes > 0) & (remaining * sizes >= rest_total)
        if remaining <= 0 or not newly.any():
            return certain
        certain |= newly


def _systematic_pps(rng: np.random.Generator, sizes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Systematic sampling proportional to ``sizes`` (S,) from a random order: exact inclusion
    probabilities ``n * size / total``; stations that would reach probability 1 are taken with certainty."""
    sizes = np.asarray(sizes, dtype=float)
    certain = certain_stations(sizes, n)
    chosen = [np.flatnonzero(certain)]
    inclusion = [np.ones(certain.sum())]
    remaining = n - certain.sum()
    if remaining > 0:
        candidates = rng.permutation(np.flatnonzero(~certain & (sizes > 0)))
        cumulative = np.cumsum(sizes[candidates])
        step = cumulative[-1] / remaining
        points = (rng.random() + np.arange(remaining)) * step
        picked = candidates[np.searchsorted(cumulative, points, side="right")]
        chosen.append(picked)
        inclusion.append(remaining * sizes[picked] / cumulative[-1])
    return np.concatenate(chosen).astype(np.int64), np.concatenate(inclusion)


def _sample_within(rng: np.random.Generator, sizes: np.ndarray, n: int,
                   selection: Selection) -> tuple[np.ndarray, np.ndarray]:
    if selection == "simple":
        return rng.choice(len(sizes), size=n, replace=False).astype(np.int64), np.full(n, n / len(sizes))
    return _systematic_pps(rng, sizes, n)


def allocate_by_region(n: int, region_index: np.ndarray, registered: np.ndarray,
                       selection: Selection = "simple") -> np.ndarray:
    """(region,) stations per region: proportional to the region's register (largest remainders), never more than
    the stations the region can give (under ``pps``, its stations with voters: a station of 0 voters has
    probability 0). ValueError when the regions together cannot give ``n``."""
    n_regions = int(region_index.max()) + 1
    region_sizes = np.bincount(region_index, weights=registered, minlength=n_regions)
    drawable = registered > 0 if selection == "pps" else np.ones(len(region_index), dtype=bool)
    region_stations = np.bincount(region_index, weights=drawable, minlength=n_regions).astype(np.int64)
    if n > region_stations.sum():
        raise ValueError(f"cannot allocate {n} stations: the regions can give {region_stations.sum()}")
    quotas = n * region_sizes / region_sizes.sum()
    counts = np.minimum(np.floor(quotas).astype(np.int64), region_stations)
    while counts.sum() < n:
        room = counts < region_stations
        gap = np.where(room, quotas - counts, -np.inf)
        counts[int(np.argmax(gap))] += 1
    return counts


def pps_shortfall(n: int, registered: np.ndarray) -> int | None:
    """The stations with voters on ``registered`` (S,) when a sample of ``n`` stations proportional to size asks
    for more (a station of 0 voters has probability 0); None when there are enough. Stratified by region or not
    alike: :func:`allocate_by_region` gives no region more than its stations with voters."""
    held = int(np.count_nonzero(np.asarray(registered) > 0))
    return held if n > held else None


def check_pps(n: int, registered: np.ndarray) -> None:
    """Raise ValueError when a sample of ``n`` stations proportional to ``registered`` (S,) asks for more stations
    than hold voters (:func:`pps_shortfall`)."""
    held = pps_shortfall(n, registered)
    if held is not None:
        raise ValueError(f"{n} stations to draw proportional to size, but only {held} hold voters")


def sample_stations(rng: np.random.Generator, registered: np.ndarray, n: int, selection: Selection = "simple",
                    region_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` distinct stations: ``(stations (n,) int64, inclusion (n,) probabilities)``.

    ``selection``: ``simple`` (equal probabilities) or ``pps`` (proportional to ``registered`` (S,),
    systematic). With ``region_index`` (S,) the sample is stratified by region, allocated in proportion
    to each region's register. A ``pps`` sample of more stations than hold voters is refused (:func:`check_pps`).
    """
    registered = np.asarray(registered)
    if not 1 <= n <= len(registered):
        raise ValueError(f"cannot sample {n} stations out of {len(registered)}")
    if selection == "pps":
        check_pps(n, registered)
    if region_index is None:
        return _sample_within(rng, registered, n, selection)
    stations, inclusion = [], []
    for region, count in enumerate(allocate_by_region(n, region_index, registered, selection)):
        if count == 0:
            continue
        members = np.flatnonzero(region_index == region)
        picked, probability = _sample_within(rng, registered[members], int(count), selection)
        stations.append(members[picked])
        inclusion.append(probability)
    return np.concatenate(stations), np.concatenate(inclusion)


# -- voters at a station ----------------------------------------------------------------------------

def approached_counts(voters: np.ndarray, design: PollDesign, rng: np.random.Generator) -> np.ndarray:
    """(n,) voters approached at each sampled station, given its ``voters`` (n,) ballots cast."""
    if design.respondents == "whole_flow":
        return voters.copy()
    if design.respondents == "fixed":
        return np.minimum(design.per_station, voters)
    start = rng.integers(0, design.every_kth, size=voters.shape)
    return np.maximum(voters - start + design.every_kth - 1, 0) // design.every_kth


def sample_without_replacement(rng: np.random.Generator, counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Multivariate hypergeometric draws, vectorized over rows.

    ``counts`` (n, K) items of each kind per row; ``draws`` (n,) items taken per row (≤ the row total).
    Returns (n, K) counts taken. Done as K − 1 sequential hypergeometric draws over all rows at once.
    """
    counts = np.asarray(counts, dtype=np.int64)
    taken = np.zeros_like(counts)
    remaining_total = counts.sum(axis=-1)
    remaining_draws = np.asarray(draws, dtype=np.int64).copy()
    for kind in range(counts.shape[-1] - 1):
        good = counts[..., kind]
        taken[..., kind] = rng.hypergeometric(good, remaining_total - good, remaining_draws)
        remaining_total = remaining_total - good
        remaining_draws = remaining_draws - taken[..., kind]
    taken[..., -1] = remaining_draws
    return taken


def apply_misreport(rng: np.random.Generator, responders: np.ndarray, misreport: np.ndarray | None) -> np.ndarray:
    """(n, K) answers given by ``responders`` (n, K) (counted by true vote) under ``misreport`` (K, K)."""
    if misreport is None:
        return responders.copy()
    reported = np.zeros_like(responders)
    for true_option in range(responders.shape[-1]):
        row = misreport[true_option]
        if row[true_option] == 1.0:
            reported[..., true_option] += responders[..., true_option]
        else:
            reported += rng.multinomial(responders[..., true_option], row)
    return reported


# -- estimators -------------------------------------------------------------------------------------

def station_sums(counts: np.ndarray) -> np.ndarray:
    """(..., K) integer ``counts`` (..., n, K) summed over stations, in int64 (exact; ``einsum`` reduces the
    middle axis faster than ``sum``)."""
    return np.einsum("...nk->...k", counts, dtype=np.int64)


def estimate_shares(reported: np.ndarray, voters: np.ndarray, inclusion: np.ndarray, valid: np.ndarray,
                    estimator: Estimator = "raw") -> np.ndarray:
    """Published-style shares over valid options, (..., V) from ``reported`` (..., n, K).

    ``raw``: valid answers pooled over stations. ``weighted``: a ratio of Horvitz-Thompson estimates of each
    valid option's votes: at each station, its answers for the option over all its answers (``invalid``
    included) times its ``voters`` (..., n) ballots, over its ``inclusion`` probability (..., n), summed over
    stations; a station's valid shares thus weigh by its estimated valid votes, not its ballots, so a quick count
    of every station is the count exactly. Stations without an answer carry no weight. Returns NaN where no
    valid answer exists at all.
    """
    if estimator == "raw":  # integer sums over stations first: exact, and far fewer values to select and convert
        pooled = station_sums(reported)[..., valid].astype(float)
    else:
        station_share = reported[..., valid].astype(float)  # the counts, made shares of all answers in place
        station_total = reported.sum(axis=-1, keepdims=True)
        # a station without an answer keeps its zero counts: share 0
        np.divide(station_share, station_total, out=station_share, where=station_total > 0)
        station_share *= (voters / inclusion)[..., None]
        pooled = station_share.sum(axis=-2)
    total = pooled.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pooled / total


# -- polls ------------------------------------------------------------------------------------------

def draw_exit_poll(votes: np.ndarray, registered: np.ndarray, design: PollDesign, rng: np.random.Generator,
                   region_index: np.ndarray | None = None) -> PollDraw:
    """Draw one exit poll from one election's ``votes`` (S, K) ballots per station and option.

    ``registered`` (S,) is the register (the size measure of ``pps`` and of regional allocation);
    ``region_index`` (S,) is needed when ``design.by_region``.
    """
    stations, inclusion = sample_stations(rng, registered, design.n_stations, design.selection,
                                          region_index if design.by_region else None)
    station_votes = votes[stations].astype(np.int64, copy=False)
    voters = station_votes.sum(axis=-1)
    approached_total = approached_counts(voters, design, rng)
    if design.respondents == "whole_flow":
        approached = station_votes
    else:
        approached = sample_without_replacement(rng, station_votes, approached_total)
    probability = design.response_probability(votes.shape[-1])
    responders = approached if np.all(probability == 1.0) else rng.binomial(approached, probability)
    reported = apply_misreport(rng, responders, design.misreport)
    shares = estimate_shares(reported, voters, inclusion, design.valid, design.estimator)
    return PollDraw(stations, inclusion, voters, responders, reported, shares)


# -- analytic approximations and checks -------------------------------------------------------------

def kish_design_effect(mean_cluster_size: float | np.ndarray, icc: float | np.ndarray) -> float | np.ndarray:
    """Kish's approximation of the design effect of a cluster sample: ``1 + (m̄ − 1) ρ``.

    The library never calls it: it is the theory the tests hold :func:`draw_exit_poll`'s spread to (with
    :func:`intra_cluster_correlation`), kept here beside the model it describes."""
    return 1.0 + (np.asarray(mean_cluster_size) - 1.0) * np.asarray(icc)


def intra_cluster_correlation(successes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """ANOVA estimator of the intra-cluster correlation ρ of a binary answer.

    ``successes`` (..., c) and ``sizes`` (..., c): per cluster (station), how many gave the answer and
    how many were asked. Returns (...) ρ̂ = (MSB − MSW) / (MSB + (m₀ − 1) MSW) with
    m₀ = (N − Σ mᵢ² / N) / (c − 1). The library never calls it: the tests measure the ρ of simulated elections
    with it, for :func:`kish_design_effect`.
    """
    successes = np.asarray(successes, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    clusters = sizes.shape[-1]
    total = sizes.sum(axis=-1)
    p = successes.sum(axis=-1) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        square_term = np.where(sizes > 0, successes ** 2 / sizes, 0.0).sum(axis=-1)
    between = (square_term - total * p ** 2) / (clusters - 1)
    within = (successes.sum(axis=-1) - square_term) / (total - clusters)
    m0 = (total - (sizes ** 2).sum(axis=-1) / total) / (clusters - 1)
    return (between - within) / (between + (m0 - 1.0) * within)


@dataclass(frozen=True)
class Feasibility:
    """Whether a claimed number of respondents is reachable, and the nearest design that reaches most.

    Counts are respondents (voters who answer). ``capacity_simple`` / ``capacity_pps``: expected
    respondents when every voter at ``n`` stations drawn simply / proportional to size is approached.
    """

    feasible: bool
    claimed: int
    capacity_simple: float
    capacity_pps: float
    selection: Selection
    respondents: RespondentMode
    expected_respondents: float
    message: str


def design_feasibility(n_stations: int, claimed_respondents: int, registered: np.ndarray,
                       mean_voters: np.ndarray, response_rate: float = 1.0,
                       selection: Selection = "simple") -> Feasibility:
    """Check a claimed design (``claimed_respondents`` at ``n_stations``) against the electorate.

    ``registered`` (S,) voters on the register; ``mean_voters`` (S,) expected ballots per station
    (e.g. the mean over replicates). The claim is feasible when it does not exceed the expected voters
    who answer at ``n_stations`` stations under the stated ``selection``. Otherwise the nearest
    feasible design is stations proportional to size (which reaches the largest stations) with the
    whole flow approached, and ``expected_respondents`` is what that design yields.
    """
    registered = np.asarray(registered, dtype=float)
    mean_voters = np.asarray(mean_voters, dtype=float)
    capacity_simple = n_stations * mean_voters.mean() * response_rate
    capacity_pps = n_stations * (mean_voters * registered).sum() / registered.sum() * response_rate
    capacity = capacity_simple if selection == "simple" else capacity_pps
    per_station = claimed_respondents / n_stations
    if claimed_respondents <= capacity:
        return Feasibility(True, claimed_respondents, capacity_simple, capacity_pps, selection, "fixed",
                           float(claimed_respondents), "feasible")
    if claimed_respondents <= capacity_pps:
        return Feasibility(False, claimed_respondents, capacity_simple, capacity_pps, "pps", "fixed",
                           float(claimed_respondents),
                           f"{claimed_respondents:,} respondents at {n_stations} stations is {per_station:,.0f} per "
                           f"station; stations drawn simply hold {capacity_simple / n_stations:,.0f} answering voters on "
                           f"average: using stations drawn proportional to size")
    return Feasibility(False, claimed_respondents, capacity_simple, capacity_pps, "pps", "whole_flow", capacity_pps,
                       f"{claimed_respondents:,} respondents at {n_stations} stations is {per_station:,.0f} per station; "
                       f"even stations drawn proportional to size hold {capacity_pps / n_stations:,.0f} answering voters "
                       f"on average: using the whole flow at stations drawn proportional to size "
                       f"(~{capacity_pps:,.0f} respondents)")
