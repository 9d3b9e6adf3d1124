"""What the data could have detected: size and power of each test on honest elections shaped like the one under
study, with and without planted manipulation.

When no test rejects, "no anomaly found" must not be read as "no fraud". This module simulates ``replicates``
honest elections from the hierarchical honest model fitted to the data (:mod:`simkit.forensics.nulls.hierarchical`:
registers, regions and districts as observed), plants each manipulation of :data:`PLANTS` with simkit's own
mechanisms (:mod:`simkit.model.manipulation`) for the leader, runs the tests with the chosen null (fitted again to
each planted election, as on real data), and reports the share of replicates in which each test rejects at
α = 0.05: its power at this election's size and shape against that manipulation. The ``none`` row (nothing
planted) is the test's size on the same simulations: a power is worth only what it exceeds the size by.

Verdicts are read and counted by the machine ``simkit calibrate`` uses (:func:`simkit.forensics.election_rejections`,
:func:`simkit.forensics.rejection_counts`); only the elections differ (there the engine's scenarios of a config).

The ``district_stuffing`` row plants stuffing at every station of whole districts: a null fitted per district
reads that as honest district heterogeneity, and the row measures that loss of power.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
from scipy import stats

from simkit.config.manipulation import BallotStuffing, CoercedTurnout, ProtocolFabrication
from simkit.forensics import election_rejections, rate, rejected_tests, rejection_counts
from simkit.forensics.applicable import MIN_STATIONS, is_not_applicable, ran
from simkit.forensics.core import INVALID_OPTION, Election, TestResult, with_ballots_only
from simkit.forensics.nulls.hierarchical import fit_hierarchical, station_district
from simkit.forensics.nulls.flat import as_seed_sequence, keyed_seed, simulate_honest
from simkit.engine.parallel import KeyedPool, choose
from simkit.forensics.nulls.simulated import PARALLEL_MIN_STATION_DRAWS
from simkit.model.manipulation import MECHANISMS
from simkit.progress import progress_bar
from simkit.schema import ALPHA
from simkit.streams import POWER

#: share of stations (or of the stations of whole districts) that a planted manipulation touches
TOUCHED = 0.10
_STUFFING = dict(name="stuffing", kind="ballot_stuffing", beneficiary="leader", f_extreme=0.0, theta=0.1,
                 alpha=2.0)

#: planted manipulations: id -> (description, mechanism block, confined to whole districts); strengths are stated
PLANTS = {
    "none": ("nothing planted (the size)", None, False),
    "stuffing": ("incremental stuffing (Klimek model) at 10% of stations, stuffing fraction |N(0, 0.1)|",
                 BallotStuffing(f_incremental=TOUCHED, **_STUFFING), False),
    "district_stuffing": ("the same stuffing at every station of whole districts drawn at random until they "
                          "hold 10% of stations", BallotStuffing(f_incremental=1.0, **_STUFFING), True),
    "coercion": ("coerced turnout at 10% of stations: 20% of the register coerced, compliance 0.5, loyalty 0.9",
                 CoercedTurnout(name="coercion", kind="coerced_turnout", beneficiary="leader",
                                station_probability=TOUCHED, share=0.2, compliance=0.5, loyalty=0.9), False),
    "rounding": ("fabricated protocols at 2% of stations: turnout and leader share rounded to whole percents",
                 ProtocolFabrication(name="rounding", kind="protocol_fabrication", beneficiary="leader",
                                     station_probability=0.02, round_to_percent=True, rounded="both"), False),
}

#: the plants ``simkit forensics --power`` runs (the panel script ``benchmarks/power_panel.py`` runs them all)
QUICK_PLANTS = ("none", "stuffing", "rounding")


def whole_districts(e: Election, share: float, rng: np.random.Generator) -> np.ndarray:
    """Stations (bool, shape (station,)) of districts drawn in random order until they hold ``share`` of them."""
    _, district = np.unique(station_district(e), return_inverse=True)
    sizes = np.bincount(district)
    order = rng.permutation(sizes.size)
    chosen = order[:int(np.searchsorted(np.cumsum(sizes[order]), share * e.n)) + 1]
    return np.isin(district, chosen)


#: the field of each plant's block that ``strength`` multiplies (stuffing's theta, the coerced share)
STRENGTH_FIELDS = {"stuffing": "theta", "district_stuffing": "theta", "coercion": "share"}


def strengthened(plant: str, strength: float):
    """:data:`PLANTS` ``[plant]``'s mechanism block with its :data:`STRENGTH_FIELDS` field times ``strength``
    (1: as stated); a plant without a strength field is returned as is."""
    block = PLANTS[plant][1]
    name = STRENGTH_FIELDS.get(plant)
    if block is None or name is None or strength == 1:
        return block
    return block.model_validate({**block.model_dump(), name: getattr(block, name) * strength})


def planted(e: Election, plant: str, rng: np.random.Generator, strength: float = 1.0) -> Election:
    """``e`` with the manipulation :data:`PLANTS` ``[plant]`` at ``strength`` (:func:`strengthened`) applied for
    its leader; the ``invalid`` column (when the ballot has one) is passed to the mechanism, so stuffing does not
    take spoiled ballots; ballots that no option holds are planted as one more option
    (:func:`with_unheld_ballots`) and left without one. A station the plant leaves without ballots (``rounding``
    reports a turnout below 0.5% as 0%) is left out as real returns leave it out, and counted in ``excluded``
    (:func:`~simkit.forensics.core.with_ballots_only`)."""
    block, by_district = strengthened(plant, strength), PLANTS[plant][2]
    if block is None:
        return e
    selected = whole_districts(e, TOUCHED, rng) if by_district else rng.random(e.n) < block.station_probability
    invalid = e.options.index(INVALID_OPTION) if INVALID_OPTION in e.options else None
    votes = with_unheld_ballots(e)
    ballots, votes, _, _ = MECHANISMS[block.kind](e.registered, e.ballots, votes, selected=selected,
                                                  beneficiary=e.leader, invalid=invalid, params=block, rng=rng)
    return with_ballots_only(e.with_counts(ballots, votes[:, :e.votes.shape[1]]))


def with_unheld_ballots(e: Election) -> np.ndarray:
    """``e``'s votes (station, option) as a mechanism needs them, summing to the ballots: with one more column of
    the ballots no option holds when there are any (an honest model fitted to returns that map the leader's column
    alone draws the leader's votes and nothing else)."""
    unheld = e.ballots - e.votes.sum(axis=1)
    return np.column_stack([e.votes, unheld]) if unheld.any() else e.votes


def why_no_power(e: Election, results: Iterable[TestResult], replicates: int) -> str | None:
    """Why a power table would not answer "what could these data have detected" (None when it would): no simulated
    election asked (``replicates`` 0), some test rejects (:func:`simkit.forensics.rejected_tests`: on its shown
    p-value or after Holm's correction), no test ran, or ``e``
    has fewer than :data:`~simkit.forensics.applicable.MIN_STATIONS` usable stations to shape them on."""
    results = list(results)
    if replicates <= 0:
        return "none was asked (power 0)"
    if rejected_tests(results):
        return "some test rejects (simulated power answers \"what could these data have detected\" when none does)"
    if not any(map(ran, results)):
        return ("no test could run on these data" if any(map(is_not_applicable, results))
                else "only descriptive results were asked (nothing to reject)")
    if e.n < MIN_STATIONS:
        return f"fewer than {MIN_STATIONS} usable stations to shape simulated elections on"
    return None


def power_applies(e: Election, results: Iterable[TestResult], replicates: int) -> bool:
    """Whether a power table answers "what could these data have detected" (:func:`why_no_power`)."""
    return why_no_power(e, results, replicates) is None


def study_seed(seed: int | np.random.SeedSequence | np.random.Generator | None) -> np.random.SeedSequence:
    """The seed of the power study of a run that also tests the real data under ``seed``: the position
    ``(POWER,)`` below it (:data:`simkit.streams.POWER`, :func:`~simkit.forensics.nulls.flat.keyed_seed`). The
    study's own tree (:func:`planted_elections`: plant, replicate, part) then shares no position with the real
    tests' (:func:`simkit.forensics.run_each`: per test and simulated null, then their draws), which under
    ``seed`` itself it would: the unplanted replicate ``r`` at the ``r``-th test's."""
    return keyed_seed(seed, POWER)


#: the one-sided confidence of the largest power a count of no rejections allows (:func:`largest_unseen_power`)
UNSEEN_LEVEL = 0.95


def largest_unseen_power(replicates: int, level: float = UNSEEN_LEVEL) -> float:
    """The largest true power that rejects in none of ``replicates`` elections with probability ``1 - level`` or
    more: the one-sided upper ``level`` Clopper-Pearson bound of 0 of n, ``1 - (1 - level)^(1/n)`` (0.45 for 5
    elections at 95%). A power table's 0 of ``replicates`` does not exclude a power up to it."""
    return 1 - (1 - level) ** (1 / replicates)


def largest_standard_error(replicates: int) -> float:
    """The binomial standard error of a rejection rate over ``replicates`` elections at its largest (a true rate
    of 0.5): ``1 / (2 sqrt(n))``, 0.22 for 5."""
    return 0.5 / replicates ** 0.5


def clearly_above(power: tuple[int, int], size: tuple[int, int], alpha: float = ALPHA) -> bool:
    """Whether a power of ``power`` = (rejections, elections where the test ran) exceeds the size ``size`` (the
    same with nothing planted) by more than their Monte Carlo error: Fisher's exact test of the two counts,
    one-sided, at ``alpha`` (with 5 elections each, 4 of 5 against 0 of 5 is, 3 of 5 is not; 1 of 5 against 0 never
    is)."""
    (hits, n), (size_hits, size_n) = power, size
    if not n or not size_n:
        return False
    table = [[hits, n - hits], [size_hits, size_n - size_hits]]
    return bool(stats.fisher_exact(table, alternative="greater").pvalue <= alpha)


def above_size(power: tuple[int, int], size: tuple[int, int]) -> str | None:
    """How a power (rejections, elections where the test ran) stands against its ``size``: ``"clearly"``
    (:func:`clearly_above`), ``"within error"`` (a higher rate, by less than their Monte Carlo error), or None (not
    higher, or a count where the test did not run)."""
    (hits, n), (size_hits, size_n) = power, size
    if not n or not size_n or hits / n <= size_hits / size_n:
        return None
    return "clearly" if clearly_above(power, size) else "within error"


def power_table(e: Election, tests: Iterable[str], *, null: str = "textbook", draws: int = 99,
                replicates: int = 5, seed=None, plants: Iterable[str] | None = None, progress: bool = False,
                ) -> dict[str, dict]:
    """``rejection_rates`` (plant -> test -> share of ``replicates`` planted elections shaped like ``e`` in which
    the test rejects at α = 0.05, None where it cannot run; the tests use ``null`` with ``draws``),
    ``rejections`` (plant -> test -> (rejections, elections where it ran): what :func:`clearly_above` compares) and
    ``stations_left_out`` (plant -> the stations left out of each replicate's election: :func:`planted_trials`).
    ``progress``: a bar over the planted elections tested."""
    counts, left_out = planted_trials(e, tests, null=null, draws=draws, replicates=replicates, seed=seed,
                                      plants=plants, progress=progress)
    return {"rejection_rates": {plant: {t: rate(count)["rejection_rate"] for t, count in row.items()}
                                for plant, row in counts.items()},
            "rejections": counts, "stations_left_out": left_out}


def left_out_text(left_out: dict[str, list[int]]) -> str | None:
    """``PLANT n, n; PLANT n, n``: the stations left out without ballots of each replicate's election, per plant
    (``left_out``: :func:`power_table`'s ``stations_left_out``); None when no election left any out."""
    if not any(any(counts) for counts in left_out.values()):
        return None
    return "; ".join(f"{plant} {', '.join(map(str, counts))}" for plant, counts in left_out.items())


def planted_rejections(e: Election, tests: Iterable[str], *, null: str = "simulated", draws: int = 99,
                       replicates: int = 5, seed=None, plants: Iterable[str] | None = None, strength: float = 1.0,
                       ) -> dict[str, dict[str, tuple[int, int]]]:
    """plant -> test -> (rejections at α = 0.05, replicates where it ran) (:func:`planted_trials`)."""
    return planted_trials(e, tests, null=null, draws=draws, replicates=replicates, seed=seed, plants=plants,
                          strength=strength)[0]


def planted_trials(e: Election, tests: Iterable[str], *, null: str = "simulated", draws: int = 99,
                   replicates: int = 5, seed=None, plants: Iterable[str] | None = None, strength: float = 1.0,
                   progress: bool = False, workers: int | None = None,
                   ) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, list[int]]]:
    """The tests run on the elections of :func:`planted_elections`: plant -> test -> (rejections at α = 0.05,
    replicates where it ran), and plant -> the number of ``e``'s stations left out without ballots (by the honest
    simulation or the plant: :func:`planted`) in each replicate's election. The elections are drawn here and
    tested on ``workers`` local processes (default: every core; in this process below
    :data:`~simkit.forensics.nulls.simulated.PARALLEL_MIN_STATION_DRAWS` station-draws in all, as ``simkit
    calibrate`` tests its elections), each from its own seed: the counts do not depend on ``workers``.
    ``progress``: a bar on stderr over the elections tested (:func:`simkit.progress.progress_bar`)."""
    tests = [t for t in tests if t != "fingerprint"]
    chosen = list(PLANTS) if plants is None else list(plants)
    left_out: dict[str, list[int]] = {plant: [] for plant in chosen}

    def elections():
        for plant, election, test_seed in planted_elections(e, replicates=replicates, seed=seed, plants=chosen,
                                                            strength=strength):
            left_out[plant].append(e.n - election.n)
            yield plant, election, test_seed

    count = len(chosen) * replicates
    where, n_workers = choose(workers, e.n * max(draws, 1) * count if count > 1 else 0, PARALLEL_MIN_STATION_DRAWS)
    with (KeyedPool(_tested, (tests, null, draws), where, n_workers) as pool,
          progress_bar(count, enabled=progress, unit="election") as bar):
        def outcomes():
            for outcome in pool.map(elections()):
                bar.update()
                yield outcome

        counts = rejection_counts(outcomes())
    return {plant: {t: counts.get(plant, {}).get(t, (0, 0)) for t in tests} for plant in chosen}, left_out


def _tested(job: tuple, task: tuple[str, Election, np.random.SeedSequence]) -> tuple[str, dict[str, bool | None]]:
    """(plant, :func:`simkit.forensics.election_rejections` of the planted election) of ``task`` (its plant, the
    election, the seed of its tests) with ``job``'s tests, null and draws."""
    tests, null, draws = job
    plant, election, test_seed = task
    return plant, election_rejections(election, tests, null=null, draws=draws, seed=test_seed)


def planted_elections(e: Election, *, replicates: int, seed, plants: list[str], strength: float,
                      ) -> Iterator[tuple[str, Election, np.random.SeedSequence]]:
    """(plant, planted election, the seed of its tests) for ``replicates`` honest elections shaped like ``e`` (the
    hierarchical honest model fitted to ``e``) per plant of ``plants``, each planted at ``strength``
    (:func:`strengthened`). Plant ``p`` uses the ``p``-th child of ``seed`` (its position in :data:`PLANTS`),
    whichever plants are asked for and at any strength: the same honest elections and stations at every strength."""
    model = fit_hierarchical(e)
    seeds = dict(zip(PLANTS, as_seed_sequence(seed).spawn(len(PLANTS))))
    for plant in plants:
        for child in seeds[plant].spawn(replicates):
            honest_seed, plant_rng_seed, test_seed = child.spawn(3)
            yield plant, planted(simulate_honest(e, model, honest_seed), plant,
                                 np.random.default_rng(plant_rng_seed), strength), test_seed
