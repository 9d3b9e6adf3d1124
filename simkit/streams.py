"""Random streams keyed by logical position, never by runtime layout or global state.

Every draw comes from ``SeedSequence(seed, spawn_key=(replicate, station_group, component))``;
station groups have a fixed size (:data:`STATION_GROUP_SIZE`) that does not depend on how the engine
blocks its work, so results are bit-identical whatever the block size or worker count.
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
EXIT_POLL = 100  #: a poll's draws, keyed (replicate, EXIT_POLL, poll index)
MISREPORT = 101  #: compare's misreporting search, keyed (MISREPORT, poll index, option)
STATION_SAMPLE = 102  #: calibrate's published sample of stations, keyed (replicate, STATION_SAMPLE, sweep point)
TIMELINE_NULL = 103  #: the timeline tests' simulated null, keyed (TIMELINE_NULL,)
#: the power study's planted elections beside the tests of the real data under one seed, keyed (POWER,) below that
#: seed's own key; above any replicate index, so no engine stream of that seed shares its positions
POWER = 2**32 - 2
#: the forensic tests of one election's returns (``simkit report``, ``simkit forensics``: per test, then their simulated
#: null) under one seed, keyed (OBSERVED,) below that seed's own key; above any replicate index, so no engine stream
#: of that seed shares its positions (at the seed itself, test i's draws sat at engine replicate 0's station group i,
#: and null draw d at replicate 1's group d)
OBSERVED = 2**32 - 3
#: the forensic tests of simulated replicate r (``simkit calibrate``, ``rejection_rates``) under the seed that
#: simulated it, keyed (REPLICATE_TESTS, r) below that seed's own key; above any replicate index, so no engine
#: stream of that seed shares its positions (keyed (r,), test i's seed was the very position of replicate r's
#: station group 0 component i: the Shpilkin bootstrap drew the generator of manipulation block 1's targets)
REPLICATE_TESTS = 2**32 - 4
ELECTORATE = 2**32 - 1  #: the synthetic register, keyed (ELECTORATE,) from the electorate's seed


def generator(seed: int, *key: int) -> np.random.Generator:
    """A PCG64 generator for the logical position ``key`` under ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def station_groups(n_stations: int) -> list[slice]:
    """The fixed station groups: consecutive slices of :data:`STATION_GROUP_SIZE` stations."""
    return [slice(start, min(start + STATION_GROUP_SIZE, n_stations))
            for start in range(0, n_stations, STATION_GROUP_SIZE)]
