"""The random streams' keys: no consumer of a simulation's seed draws from an engine stream of that seed."""
from simkit import streams
from simkit.config.inference import InferenceSettings
from simkit.inference import smc

#: more replicates than compare's MISREPORT id once was (101) and more stations than EXIT_POLL's and
#: STATION_SAMPLE's group ids once reached (100 and 102 groups of 1,024): Mexico 2012 has ~143,000 stations
REPLICATES = 103
STATIONS = 105_000
POLLS = 8
OPTIONS = 8
POINTS = 3
BLOCKS = 4
#: simulations per inference stage: past predictive simulation 1, whose key was once its observation noise's
SIMULATIONS = 3
#: the branches below OBSERVED the forensic tests of returns draw on (:func:`simkit.forensics.run_each` spawns two
#: children of :func:`simkit.forensics.observed_seed`: the tests' seeds, their simulated null)
FORENSIC_BRANCHES = 2
#: ``simkit timeline``'s draws on a published timeline: its regional tests' null, its figure, its station-level tests
TIMELINE_PARTS = (streams.TIMELINE_TESTS, streams.TIMELINE_FIGURE, streams.TIMELINE_STATIONS)
#: an inference run's generations, at most (its stages GENERATION_STAGE + g reach this far)
GENERATIONS = next(m.le for m in InferenceSettings.model_fields["max_generations"].metadata if hasattr(m, "le"))


def engine_keys(replicates: int, n_stations: int, blocks: int) -> set[tuple[int, ...]]:
    """Every spawn key the engine draws from for ``replicates`` replicates of ``n_stations`` stations with
    ``blocks`` manipulation blocks (:mod:`simkit.streams`: (replicate, station group, component), and
    (replicate, station group, TIMELINE_ADDED, block))."""
    components = [streams.TURNOUT, streams.PREFERENCES, streams.COUNTS, streams.REGIONAL, streams.FAST_KERNEL,
                  streams.TIMELINE, streams.TIMELINE_REGIONAL, streams.TIMELINE_ADDED]
    components += [first + 2 * b for b in range(blocks)
                   for first in (streams.MANIPULATION_TARGETS, streams.MANIPULATION_DRAWS)]
    groups = range(len(streams.station_groups(n_stations)))
    keys = {(r, g, c) for r in range(replicates) for g in groups for c in components}
    keys |= {(r, g, streams.TIMELINE_ADDED, b) for r in range(replicates) for g in groups for b in range(blocks)}
    return keys


def inference_keys(simulations: int, generations: int) -> list[tuple[int, ...]]:
    """The spawn keys under an inference run's seed of ``generations`` generations of ``simulations`` simulations each
    (and as many noise, pilot and predictive ones): each simulation's engine seed, then each stage's own draws
    (:mod:`simkit.inference.smc`: the pilot's prior, each generation's proposal, the predictive stage's resampling
    and observation noise)."""
    stages = [smc.NOISE_STAGE, smc.PILOT_STAGE, smc.PREDICTIVE_STAGE]
    stages += [smc.GENERATION_STAGE + g for g in range(1, generations + 1)]
    keys = [streams.inference_simulation_key(stage, i) for stage in stages for i in range(simulations)]
    draws = [(smc.PILOT_STAGE, 0), (smc.PREDICTIVE_STAGE, 0), (smc.PREDICTIVE_STAGE, smc.OBSERVATION_NOISE_DRAW)]
    draws += [(smc.GENERATION_STAGE + g, 0) for g in range(1, generations + 1)]
    return keys + [streams.inference_draw_key(stage, draw) for stage, draw in draws]


def consumer_key_list(replicates: int, polls: int, options: int, points: int) -> list[tuple[int, ...]]:
    """The spawn keys, one per consumer's stream, of the polls, the misreporting search, calibrate's station
    samples, the timeline calibration's nulls and the station-level nulls of as many simulated Spains
    (``scripts/timeline_report.py``) under the seed of a simulation of ``replicates`` replicates, of the
    forensic tests of returns (:data:`FORENSIC_BRANCHES`) and ``simkit timeline`` (:data:`TIMELINE_PARTS`) under
    the same seed, and of an inference run's simulations and draws (:func:`inference_keys`)."""
    keys = [streams.exit_poll_key(r, p) for r in range(replicates) for p in range(polls)]
    keys += [(streams.TIMELINE_NULL, r) for r in range(replicates)]
    keys += [(streams.SIMULATED_SPAIN_STATIONS, r) for r in range(replicates)]
    keys += [(streams.OBSERVED, branch) for branch in range(FORENSIC_BRANCHES)]
    keys += [streams.observed_timeline_key(part) for part in TIMELINE_PARTS]
    keys += [streams.misreport_key(p, k) for p in range(polls) for k in range(options)]
    keys += [streams.station_sample_key(r, k) for r in range(replicates) for k in range(points)]
    return keys + inference_keys(SIMULATIONS, GENERATIONS)


def shared(keys: set[tuple[int, ...]], others: set[tuple[int, ...]]) -> set[tuple[int, ...]]:
    """The keys of ``keys`` at a position of ``others`` or one below the other (a spawn key a prefix of the
    other: a child stream)."""
    prefixes = {key[:n] for key in others for n in range(1, len(key) + 1)}
    return {key for key in keys if key in prefixes or any(key[:n] in others for n in range(1, len(key)))}


def test_no_consumer_key_is_an_engine_key():
    engine = engine_keys(REPLICATES, STATIONS, BLOCKS)
    assert len(streams.station_groups(STATIONS)) > 102
    assert shared(set(consumer_key_list(REPLICATES, POLLS, OPTIONS, POINTS)), engine) == set()


def test_consumer_keys_are_distinct():
    """No two streams share a key, nor is one's key a prefix of another's (its child streams): ``simkit timeline``'s
    figure and station-level test once drew at the timeline calibration's (TIMELINE_NULL, 1) and (TIMELINE_NULL, 2),
    and its regional tests at (TIMELINE_NULL,), above every replicate's."""
    keys = consumer_key_list(REPLICATES, POLLS, OPTIONS, POINTS)
    assert len(set(keys)) == len(keys)
    assert {key[:n] for key in keys for n in range(1, len(key))}.isdisjoint(keys)


def test_the_roots_are_distinct():
    roots = [streams.EXIT_POLL, streams.MISREPORT, streams.STATION_SAMPLE, streams.REPLICATE_TESTS, streams.OBSERVED,
             streams.POWER, streams.ELECTORATE, streams.INFER_SIMULATION, streams.INFER_DRAW, streams.TIMELINE_NULL,
             streams.SIMULATED_SPAIN_STATIONS]
    assert len(set(roots)) == len(roots)
