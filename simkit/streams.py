"""Random streams keyed by logical position, never by runtime layout or global state.

Every draw comes from ``SeedSequence(seed, spawn_key=(replicate, station_group, component))``;
station groups have a fixed size (:data:`STATION_GROUP_SIZE`) that does not depend on how the engine
blocks its work, so results are bit-identical whatever the block size or worker count. What else draws under
a simulation's seed (polls, the misreporting search, station samples, forensic tests, an inference run's
simulations and draws, the station-level timeline tests of simulated Spains) sits below a root at the top of the
key space (2**32 - 10 and up), above any replicate index, so it never shares an engine stream. Two draw elsewhere:
the timeline calibration's null, keyed (:data:`TIMELINE_NULL`, replicate) (two words: no engine key is that short),
and compare's ledger hypercube, seeded from entropy words, not a spawn key (:data:`LEDGER`). The tests of observed
data sit below :data:`OBSERVED`: the forensic tests of returns on its branches 0 and 1, ``simkit timeline``'s draws
on its branch :data:`OBSERVED_TIMELINE` (:func:`observed_timeline_key`).
"""
from __future__ import annotations

import numpy as np

#: stations per random-stream group; part of the reproducibility contract (changing it changes results)
STATION_GROUP_SIZE = 1024

#: one child stream per model component (stable ids: never renumber)
TURNOUT = 0
PREFERENCES = 1
COUNTS = 2
REGIONAL = 3  #: per-replicate regional effects, keyed (replicate, 0, REGIONAL)
FAST_KERNEL = 4  #: the numba kernel's generator states of a replicate, keyed (replicate, 0, FAST_KERNEL)
TIMELINE = 5  #: honest arrival profiles and bin splits, keyed (replicate, station_group, TIMELINE)
TIMELINE_REGIONAL = 6  #: regional arrival profiles, keyed (replicate, 0, TIMELINE_REGIONAL)
TIMELINE_ADDED = 7  #: arrival times of a block's added ballots, keyed (replicate, station_group, TIMELINE_ADDED, block)
MANIPULATION_TARGETS = 10  #: + 2 * block index: which stations a manipulation block selects
MANIPULATION_DRAWS = 11  #: + 2 * block index: the mechanism's own draws
#: the timeline calibration's simulated null of replicate r under the seed that simulated it, keyed (TIMELINE_NULL, r).
#: Not at the top of the key space: two words, at no engine position (three or four words; replicate 103's sit below
#: (TIMELINE_NULL, r), a prefix nothing spawns from). ``simkit timeline`` draws below :data:`OBSERVED`
#: (:func:`observed_timeline_key`): keyed (TIMELINE_NULL,), (TIMELINE_NULL, 1) and (TIMELINE_NULL, 2) until
#: 2026-11-30, its figure and station-level test drew where the calibration's replicates 1 and 2 do
TIMELINE_NULL = 103
#: the power study's planted elections beside the tests of the real data under one seed, keyed (POWER,) below that
#: seed's own key; above any replicate index, so no engine stream of that seed shares its positions
POWER = 2**32 - 2
#: the forensic tests of one election's returns (``simkit report``, ``simkit forensics``: per test, then their simulated
#: null) under one seed, keyed (OBSERVED,) below that seed's own key; above any replicate index, so no engine stream
#: of that seed shares its positions (at the seed itself, test i's draws sat at engine replicate 0's station group i,
#: and null draw d at replicate 1's group d). The forensic tests take its branches 0 and 1 (the two children
#: :func:`simkit.forensics.run_each` spawns: the tests' seeds, their simulated null), ``simkit timeline`` the branch
#: :data:`OBSERVED_TIMELINE`
OBSERVED = 2**32 - 3
#: ``simkit timeline``'s branch below :data:`OBSERVED`: its draws on a published timeline under its ``--seed``, keyed
#: (OBSERVED, OBSERVED_TIMELINE, part) (:func:`observed_timeline_key`), beside the forensic tests' branches 0 and 1
OBSERVED_TIMELINE = 2
#: the parts of ``simkit timeline``'s draws (:func:`observed_timeline_key`): the regional tests' simulated null, the
#: figure's honest band, the station-level tests' null
TIMELINE_TESTS, TIMELINE_FIGURE, TIMELINE_STATIONS = 0, 1, 2
#: the forensic tests of simulated replicate r (``simkit calibrate``, ``rejection_rates``) under the seed that
#: simulated it, keyed (REPLICATE_TESTS, r) below that seed's own key; above any replicate index, so no engine
#: stream of that seed shares its positions (keyed (r,), test i's seed was the very position of replicate r's
#: station group 0 component i: the Shpilkin bootstrap drew the generator of manipulation block 1's targets)
REPLICATE_TESTS = 2**32 - 4
#: a poll's draws from simulated replicate r (``simkit compare``, ``simkit infer``) under the seed that simulated it,
#: keyed (EXIT_POLL, r, poll index) (:func:`exit_poll_key`); above any replicate index, so no engine stream of that
#: seed shares its positions (keyed (r, 100, poll), poll p drew replicate r's station group 100, component p: the
#: very streams of an electorate of more than 102,400 stations)
EXIT_POLL = 2**32 - 5
#: compare's misreporting search, keyed (MISREPORT, poll index, option) (:func:`misreport_key`); above any replicate
#: index (keyed (101, poll, option), poll 0's option 4 drew the FAST_KERNEL states of replicate 101, which compare
#: simulates by default, and option 3 its REGIONAL effects)
MISREPORT = 2**32 - 6
#: calibrate's published sample of stations (``--aggregate sample:N``) of replicate r at sweep point k, keyed
#: (STATION_SAMPLE, r, k) (:func:`station_sample_key`); above any replicate index (keyed (r, 102, k), it drew replicate
#: r's station group 102, component k: the streams of an electorate of more than 104,448 stations)
STATION_SAMPLE = 2**32 - 7
#: ``simkit infer``'s simulations under the run's seed: simulation ``index`` of stage ``stage`` takes its engine seed
#: from (INFER_SIMULATION, stage, index) (:func:`inference_simulation_key`; the stages are
#: :mod:`simkit.inference.smc`'s); above any replicate index (keyed (stage, index), the pilot's simulation 0 sat at the
#: very position of the pilot's prior draws, and predictive simulation 1 at that of the predictive observation noise)
INFER_SIMULATION = 2**32 - 8
#: ``simkit infer``'s own draws (prior pilot, proposals, resampling, predictive observation noise) under the run's
#: seed, keyed (INFER_DRAW, stage, draw) (:func:`inference_draw_key`): apart from every simulation's seed
INFER_DRAW = 2**32 - 9
#: the station-level timeline tests' simulated null (:func:`simkit.timeline.stations.station_rows`) on simulated Spain r
#: (Spain's tables drawn from the fitted model, :func:`simkit.timeline.spain.simulate_tables`; the station table of
#: ``scripts/timeline_report.py``) under the seed that drew them, keyed (SIMULATED_SPAIN_STATIONS, r); above any
#: replicate index. Until 2026-12-01 the script drew it from ``default_rng(r)``, and the real tables' null from
#: ``default_rng(0)``: simulated Spain 0's null and the real tables' took one stream
SIMULATED_SPAIN_STATIONS = 2**32 - 10
#: compare's ledger hypercube, seeded ``default_rng([seed, LEDGER])``: entropy words, not a spawn key, so no
#: keyed stream of the seed shares it (EXIT_POLL's value before it moved to the top of the key space)
LEDGER = 100
ELECTORATE = 2**32 - 1  #: the synthetic register, keyed (ELECTORATE,) from the electorate's seed


def generator(seed: int, *key: int) -> np.random.Generator:
    """A PCG64 generator for the logical position ``key`` under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def exit_poll_key(replicate: int, poll: int) -> tuple[int, int, int]:
    """The spawn key of poll ``poll``'s draws from simulated replicate ``replicate`` (:data:`EXIT_POLL`)."""
    return EXIT_POLL, replicate, poll


def misreport_key(poll: int, option: int) -> tuple[int, int, int]:
    """The spawn key of the misreporting search toward option index ``option`` of poll ``poll`` (:data:`MISREPORT`)."""
    return MISREPORT, poll, option


def station_sample_key(replicate: int, point: int) -> tuple[int, int, int]:
    """The spawn key of the published sample of stations of replicate ``replicate`` at flat sweep point ``point``
    (:data:`STATION_SAMPLE`)."""
    return STATION_SAMPLE, replicate, point


def inference_simulation_key(stage: int, index: int) -> tuple[int, int, int]:
    """The spawn key of the engine seed of simulation ``index`` of inference stage ``stage``
    (:data:`INFER_SIMULATION`)."""
    return INFER_SIMULATION, stage, index


def inference_draw_key(stage: int, draw: int) -> tuple[int, int, int]:
    """The spawn key of draw ``draw`` of inference stage ``stage``: the stage's own randomness (prior, proposal,
    resampling, observation noise), not a simulation's (:data:`INFER_DRAW`)."""
    return INFER_DRAW, stage, draw


def observed_timeline_key(part: int) -> tuple[int, int, int]:
    """The spawn key of part ``part`` (:data:`TIMELINE_TESTS`, :data:`TIMELINE_FIGURE`, :data:`TIMELINE_STATIONS`)
    of ``simkit timeline``'s draws on a published timeline (:data:`OBSERVED_TIMELINE`)."""
    return OBSERVED, OBSERVED_TIMELINE, part


def station_groups(n_stations: int) -> list[slice]:
    """The fixed station groups: consecutive slices of :data:`STATION_GROUP_SIZE` stations."""
    return [slice(start, min(start + STATION_GROUP_SIZE, n_stations))
            for start in range(0, n_stations, STATION_GROUP_SIZE)]
