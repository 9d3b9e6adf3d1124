"""``simkit calibrate``: how often each forensic test rejects on simulated elections of a config.

Under the ``honest`` scenario the rejection rate at α = 0.05 is the test's **size** (its false-positive
rate: a calibrated test rejects about 5% of honest elections); under a manipulated scenario it is the
test's **power** against that mechanism at the config's strength (one row per sweep point). Both nulls
(``textbook`` and ``simulated``) are run, so users see which null keeps its promise on elections shaped
like theirs.

The work is one function of one election as the tests read it, :func:`election_verdicts` (every null × test,
with the forensic seed of its replicate). Locally the simulation's distinct elections are found first
(:func:`distinct_elections`: a scenario that the sweep does not touch is the same election at every sweep
point) and each is tested once, one task per election on every core; on a dask cluster
:func:`replicate_rows` tests one replicate at one sweep point through
:func:`simkit.engine.distributed.map_replicates` (each task simulates its part from the config alone): the two
give the same table. Verdicts are read and counted by the
same machine as the power check on real data (:func:`simkit.forensics.election_rejections`,
:func:`simkit.forensics.rejection_counts`; :mod:`simkit.forensics.power`); only the elections differ (here the
engine's scenarios, there the honest model fitted to the data with planted mechanisms).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import threading

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from simkit.engine import aggregation
from simkit import schema, streams
from simkit.config.core import Config
from simkit.engine.run import simulate
from simkit.forensics import ALPHA, election_rejections, rate, rejection_counts, replicate_seed
from simkit.forensics.core import Election, election
from simkit.forensics.nulls.simulated import PARALLEL_MIN_STATION_DRAWS
from simkit.engine.parallel import KeyedPool, choose
from simkit.engine.distributed import map_replicates
from simkit.progress import progress_bar

NULLS = ("textbook", "simulated")


def _strength(cfg: Config, scenario: str, point: dict) -> str:
    """The manipulation parameters in force in ``scenario`` at sweep ``point``, as ``block: field=value``."""
    if scenario == "honest":
        return ""
    resolved = cfg.at(point)
    chosen = next(s for s in resolved.scenarios() if s.name == scenario)
    resolved = resolved.at(chosen.overrides) if chosen.overrides else resolved
    blocks = {block.name: block for block in resolved.manipulation}
    common = {"name", "kind", "beneficiary", "regions", "label"}
    return "; ".join(
        f"{name}: " + ", ".join(f"{key}={value:g}" for key, value in blocks[name].model_dump().items()
                                if key not in common and isinstance(value, (int, float)) and not isinstance(value, bool))
        for name in chosen.manipulations)


#: one simulated election's verdicts in one group: ((flat sweep point, scenario, null), test -> rejected or None)
Outcome = tuple[tuple[int, str, str], dict[str, bool | None]]
#: an election the tests read, by the replicate whose forensic seed it is tested with and its :func:`_digest`
ElectionKey = tuple[int, bytes]


def published(ds: xr.Dataset, scenario: str, point: int, replicate: int, seed: int | None,
              aggregate: str) -> Election:
    """Scenario ``scenario`` of one simulated election ``ds`` (dims ``scenario``, ``station``, ``option``;
    sweep point ``point``, replicate ``replicate``) as published under ``aggregate``
    (:mod:`simkit.engine.aggregation`; a sample is drawn once per replicate and point, the same for every
    scenario)."""
    sample_rng = streams.generator(seed, replicate, streams.STATION_SAMPLE, point)
    return election(aggregation.coarsen(ds.sel({schema.SCENARIO: scenario}), aggregate, sample_rng))


def election_verdicts(tests: list[str] | None, nulls: tuple[str, ...], draws: int, seed: int | None,
                      e: Election, replicate: int) -> dict[str, dict[str, bool | None]]:
    """null -> :func:`simkit.forensics.election_rejections` (α = 0.05; None where a test cannot run) of the
    election ``e`` under each of ``nulls``, with the forensic seed of replicate ``replicate``: a function of the
    election and the replicate alone, so an election that two scenarios or sweep points share is tested once.

    BLAS runs on one thread meanwhile: the elections already run one per core, and the tests in threads beside
    the null draws. A multithreaded BLAS call (OpenBLAS threads a dot product of more than 10,000 entries, as
    in the honest core fit on Kazakhstan's 10,101 stations) waits for cores that are busy, which made the fit
    several times slower on a loaded machine (a one-off measurement; quiet, the two take the same time). The limit is
    process-wide, so it is set only from a process's main thread (a serial run, a worker process): in a dask
    worker's threads, nested limits would be restored out of order. The single-threaded workers of a local
    dask cluster (``--workers``) need none: dask's nanny starts them with BLAS on one thread
    (``OPENBLAS_NUM_THREADS=1``; tested)."""
    with _one_blas_thread():
        return {null: election_rejections(e, tests or None, null=null, draws=draws, alpha=ALPHA,
                                          seed=replicate_seed(seed, replicate)) for null in nulls}


def _one_blas_thread():
    """A context holding BLAS to one thread (threadpoolctl), from the main thread; else a no-op."""
    if threading.current_thread() is threading.main_thread():
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def replicate_rows(tests: list[str] | None, nulls: tuple[str, ...], draws: int, seed: int | None, aggregate: str,
                   ds: xr.Dataset, point: int, replicate: int) -> list[Outcome]:
    """Rejections of every test under every null in every scenario of one simulated election ``ds`` (dims
    ``scenario``, ``station``, ``option``; sweep point ``point``, replicate ``replicate``), as published under
    ``aggregate`` (:func:`published`; :func:`election_verdicts`): one :data:`Outcome` per scenario and null, for
    :func:`simkit.forensics.rejection_counts`. The task of a dask part (:func:`calibration_table`)."""
    verdicts: dict[bytes, dict] = {}
    outcomes = []
    for scenario in ds[schema.SCENARIO].values:
        one = published(ds, str(scenario), point, replicate, seed, aggregate)
        digest = _digest(one)
        if digest not in verdicts:
            verdicts[digest] = election_verdicts(tests, nulls, draws, seed, one, replicate)
        outcomes.extend(((point, str(scenario), null), dict(verdicts[digest][null])) for null in nulls)
    return outcomes


def _digest(e: Election) -> bytes:
    """A digest of what the tests read of an election: its stations' units and counts and its options."""
    h = hashlib.blake2b(digest_size=16)
    for values in (e.registered, e.ballots, e.votes, e.region.astype(str), e.district.astype(str)):
        h.update(np.ascontiguousarray(values).tobytes())
    h.update(repr((e.options, e.leader)).encode())
    return h.digest()


def calibration_table(cfg: Config, *, replicates: int | None = None, tests: list[str] | None = None,
                      nulls: tuple[str, ...] = NULLS, draws: int = 99, seed: int | None = None,
                      ds: xr.Dataset | None = None, cluster: dict | None = None,
                      aggregate: str = "station", workers: int | None = None, progress: bool = False) -> list[dict]:
    """Rows ``test``, ``null``, ``mechanism`` (``none`` for the honest scenario), ``strength``, the sweep
    point's values, ``aggregate``, ``rejection_rate`` (at α = 0.05; None where the test could not run on
    any replicate) and ``n`` (replicates it ran on), for every scenario and sweep point of ``cfg``.
    ``seed`` (default: the config's) seeds the simulations and the forensic nulls. ``aggregate``: what
    the tests see (:mod:`simkit.engine.aggregation`: every station, regional totals, or a sample of stations).

    ``ds``: a full-output simulation of ``cfg`` to use instead of simulating. ``cluster``: run on dask
    instead, with these keyword arguments of :func:`simkit.engine.distributed.map_replicates` (``client``,
    ``scheduler`` or ``workers``, ``block_size``, ``quiet``). Else the distinct elections of the simulation
    (:func:`distinct_elections`: a scenario that the sweep does not touch draws the same election at every
    sweep point, tested once) are tested on ``workers`` local processes (default: every core;
    :mod:`simkit.engine.parallel`), one task per election, each with its replicate's forensic seed: the table
    does not depend on ``workers``; ``progress``: a bar (:func:`simkit.progress.progress_bar`) over the
    simulation, then over the elections tested."""
    seed = cfg.run.seed if seed is None else seed
    aggregation.parse(aggregate)  # fail before simulating
    if cluster is not None:
        function = functools.partial(replicate_rows, tests, nulls, draws, seed, aggregate)
        outcomes = map_replicates(cfg, function, replicates=replicates, seed=seed, **cluster)
        return _rates(cfg, outcomes, aggregate)
    if ds is None:
        ds = simulate(cfg, replicates=replicates, seed=seed, keep="full", progress=progress)
    sweep = list(cfg.sweep)
    first, where_tested, stations = distinct_elections(ds, sweep, seed, aggregate)
    keys = list(first)
    work = stations * len(nulls) * max(draws, 1)
    where, workers = choose(workers, work if len(keys) > 1 else 0, PARALLEL_MIN_STATION_DRAWS)
    verdicts = {}
    with (KeyedPool(_tested, (tests, nulls, draws, seed, ds, sweep, aggregate, first), where, workers) as pool,
          progress_bar(len(keys), enabled=progress) as bar):
        for key, part in zip(keys, pool.map(keys)):
            verdicts[key] = part
            bar.update(1)
    # the table's order: sweep point, then scenario, then null (rejection_counts keeps the order first seen)
    outcomes = [((point, scenario, null), dict(verdicts[key][null]))
                for (point, scenario, replicate), key in where_tested.items() for null in nulls]
    return _rates(cfg, outcomes, aggregate)


def election_at(ds: xr.Dataset, sweep: list[str], seed: int | None, aggregate: str,
                where: tuple[int, str, int]) -> Election:
    """The election of a full-output simulation ``ds`` (dims ``replicate``, ``scenario``, the ``sweep`` dims,
    ``station``, ``option``) at ``where`` = (flat sweep point in C order, scenario, replicate), as published
    under ``aggregate`` (:func:`published`)."""
    point, scenario, replicate = where
    shape = tuple(ds.sizes[dim] for dim in sweep)
    at = ds.isel(dict(zip(sweep, np.unravel_index(point, shape)))) if shape else ds
    return published(at.isel({schema.REPLICATE: replicate}), scenario, point, replicate, seed, aggregate)


def distinct_elections(ds: xr.Dataset, sweep: list[str], seed: int | None, aggregate: str
                       ) -> tuple[dict[ElectionKey, tuple[int, str, int]], dict[tuple[int, str, int], ElectionKey],
                                  int]:
    """The elections that the tests of a full-output simulation ``ds`` read (:func:`election_at`), each once,
    by :data:`ElectionKey` (its replicate and :func:`_digest`: the same counts tested with the same replicate's
    seed give the same verdicts): key -> where it is first published; (flat sweep point, scenario, replicate)
    -> the key of its election, sweep points in C order, then scenarios, then replicates; and the distinct
    elections' stations in all. Each election is let go once hashed (a task rebuilds it from ``ds``), so memory
    holds ``ds`` and one election, whatever the replicates and scenarios."""
    first: dict[ElectionKey, tuple[int, str, int]] = {}
    where_tested = {}
    stations = 0
    points = int(np.prod(tuple(ds.sizes[dim] for dim in sweep)))
    for point in range(points):
        for scenario in (str(s) for s in ds[schema.SCENARIO].values):
            for replicate in range(ds.sizes[schema.REPLICATE]):
                one = election_at(ds, sweep, seed, aggregate, (point, scenario, replicate))
                key = (replicate, _digest(one))
                if key not in first:
                    first[key] = (point, scenario, replicate)
                    stations += one.n
                where_tested[point, scenario, replicate] = key
    return first, where_tested, stations


def _tested(job: tuple, key: ElectionKey) -> dict[str, dict[str, bool | None]]:
    """:func:`election_verdicts` of the election ``key`` of ``job`` (tests, nulls, draws, seed, the simulation,
    its sweep dims, the aggregate, where each key is first published), rebuilt by :func:`election_at`."""
    tests, nulls, draws, seed, ds, sweep, aggregate, first = job
    return election_verdicts(tests, nulls, draws, seed, election_at(ds, sweep, seed, aggregate, first[key]), key[0])


def _rates(cfg: Config, outcomes: list[Outcome], aggregate: str) -> list[dict]:
    """The table: rejection rate and count per (sweep point, scenario, null, test), in that nesting order."""
    points = [{dim: float(value) for dim, value in point.items()} for point in cfg.sweep_points()]
    counts = rejection_counts(outcomes)
    strengths = {(point, scenario): _strength(cfg, scenario, points[point]) for point, scenario, _ in counts}
    return [{"test": test, "null": null, "mechanism": "none" if scenario == "honest" else scenario,
             "strength": strengths[point, scenario], **points[point], "aggregate": aggregate, **rate(count)}
            for (point, scenario, null), tests in counts.items() for test, count in tests.items()]


def format_table(rows: list[dict]) -> str:
    """The table as text: one line per test × null × scenario (× sweep point)."""
    lines = [f"{'test':<16}{'null':<11}{'mechanism':<16}{'rate':>6}{'n':>5}  strength"]
    for row in rows:
        value = "  n/a" if row["rejection_rate"] is None else f"{row['rejection_rate']:>6.2f}"
        lines.append(f"{row['test']:<16}{row['null']:<11}{row['mechanism']:<16}{value:>6}{row['n']:>5}  {row['strength']}")
    return "\n".join(lines)
