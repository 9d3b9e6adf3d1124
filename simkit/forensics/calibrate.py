"""``simkit calibrate``: how often each forensic test rejects on simulated elections of a config.

Under the ``honest`` scenario the rejection rate at α = 0.05 is the test's **size** (its false-positive
rate: a calibrated test rejects about 5% of honest elections); under a manipulated scenario it is the
test's **power** against that mechanism at the config's strength (one row per sweep point). Both nulls
(``textbook`` and ``simulated``) are run, so users see which null keeps its promise on elections shaped
like theirs.

The work is one function of one simulated election, :func:`replicate_rows` (every scenario × null × test
of one replicate at one sweep point, with the forensic seed of that replicate), applied locally to a
simulated Dataset or on a dask cluster through :func:`simkit.engine.distributed.map_replicates` (each task
simulates its part from the config alone): the two give the same table. Verdicts are read and counted by the
same machine as the power check on real data (:func:`simkit.forensics.election_rejections`,
:func:`simkit.forensics.rejection_counts`; :mod:`simkit.forensics.power`); only the elections differ (here the
engine's scenarios, there the honest model fitted to the data with planted mechanisms).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import xarray as xr

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


def replicate_rows(tests: list[str] | None, nulls: tuple[str, ...], draws: int, seed: int | None, aggregate: str,
                   ds: xr.Dataset, point: int, replicate: int, scenarios: list[str] | None = None,
                   memo: dict | None = None) -> list[Outcome]:
    """Rejections (α = 0.05; None where a test cannot run) of every test under every null in every scenario
    (or those named in ``scenarios``) of one simulated election ``ds`` (dims ``scenario``, ``station``,
    ``option``; sweep point ``point``, replicate ``replicate``), as published under ``aggregate``
    (:mod:`simkit.engine.aggregation`; a sample is drawn once per replicate and point, the same for every
    scenario): one :data:`Outcome` per scenario and null, for :func:`simkit.forensics.rejection_counts`.

    ``memo`` (a dict kept across the sweep points of one replicate): the rejections of an election already
    tested, by its counts' digest and the null. A scenario that the swept parameters do not touch draws the
    same election at every sweep point (the engine's streams do not depend on the point), and its tests, with
    the replicate's seed, give the same rejections: they are run once."""
    memo = {} if memo is None else memo
    outcomes = []
    for scenario in ds[schema.SCENARIO].values if scenarios is None else scenarios:
        sample_rng = streams.generator(seed, replicate, streams.STATION_SAMPLE, point)
        one = election(aggregation.coarsen(ds.sel({schema.SCENARIO: scenario}), aggregate, sample_rng))
        digest = _digest(one)
        for null in nulls:
            key = (digest, null)
            if key not in memo:
                memo[key] = election_rejections(one, tests or None, null=null, draws=draws, alpha=ALPHA,
                                                seed=replicate_seed(seed, replicate))
            outcomes.append(((point, str(scenario), null), dict(memo[key])))
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
    ``scheduler`` or ``workers``, ``block_size``, ``quiet``). Else the replicates run on ``workers`` local
    processes (default: every core; :mod:`simkit.engine.parallel`), each replicate's null in its worker: the
    table does not depend on ``workers``; ``progress``: a bar (:func:`simkit.progress.progress_bar`) over the
    simulation, then over the tasks tested (one per replicate and scenario, over its sweep points)."""
    seed = cfg.run.seed if seed is None else seed
    aggregation.parse(aggregate)  # fail before simulating
    function = functools.partial(replicate_rows, tests, nulls, draws, seed, aggregate)
    if cluster is not None:
        outcomes = map_replicates(cfg, function, replicates=replicates, seed=seed, **cluster)
    else:
        if ds is None:
            ds = simulate(cfg, replicates=replicates, seed=seed, keep="full", progress=progress)
        shape = tuple(ds.sizes[dim] for dim in cfg.sweep)
        scenarios = [str(s) for s in ds[schema.SCENARIO].values]
        keys = [(replicate, scenario) for replicate in range(ds.sizes[schema.REPLICATE]) for scenario in scenarios]
        points = int(np.prod(shape))
        work = ds.sizes[schema.STATION] * len(nulls) * max(draws, 1) * points * len(keys)
        where, workers = choose(workers, work if len(keys) > 1 else 0, PARALLEL_MIN_STATION_DRAWS)
        with (KeyedPool(_replicate_rows, (function, ds, list(cfg.sweep), shape), where, workers) as pool,
              progress_bar(len(keys), enabled=progress) as bar):
            outcomes = []
            for part in pool.map(keys):
                outcomes.extend(part)
                bar.update(1)
        # the table's order: sweep point, then scenario, then null (rejection_counts keeps the order first seen)
        order = {(point, scenario, null): i for i, (point, scenario, null) in enumerate(
            (p, s, n) for p in range(points) for s in scenarios for n in nulls)}
        outcomes.sort(key=lambda outcome: order[outcome[0]])
    return _rates(cfg, outcomes, aggregate)


def _replicate_rows(job: tuple, key: tuple[int, str]) -> list[Outcome]:
    """:func:`replicate_rows` (bound in ``job``'s function) of replicate ``key[0]`` and scenario ``key[1]`` at
    every sweep point of the simulation ``job[1]`` (sweep dims ``job[2]``, shape ``job[3]``), in one memo: an
    election that two sweep points share is tested once."""
    function, ds, sweep, shape = job
    replicate, scenario = key
    memo: dict = {}
    outcomes = []
    for point in range(int(np.prod(shape))):
        at = ds.isel(dict(zip(sweep, np.unravel_index(point, shape)))) if shape else ds
        outcomes.extend(function(at.isel({schema.REPLICATE: replicate}), point, replicate, [scenario], memo))
    return outcomes


def _rates(cfg: Config, outcomes: list[Outcome], aggregate: str) -> list[dict]:
    """The table: rejection rate and count per (sweep point, scenario, null, test), in that nesting order."""
    points = [{dim: float(value) for dim, value in point.items()} for point in cfg.sweep_points()]
    return [{"test": test, "null": null, "mechanism": "none" if scenario == "honest" else scenario,
             "strength": _strength(cfg, scenario, points[point]), **points[point], "aggregate": aggregate,
             **rate(count)}
            for (point, scenario, null), tests in rejection_counts(outcomes).items() for test, count in tests.items()]


def format_table(rows: list[dict]) -> str:
    """The table as text: one line per test × null × scenario (× sweep point)."""
    lines = [f"{'test':<16}{'null':<11}{'mechanism':<16}{'rate':>6}{'n':>5}  strength"]
    for row in rows:
        value = "  n/a" if row["rejection_rate"] is None else f"{row['rejection_rate']:>6.2f}"
        lines.append(f"{row['test']:<16}{row['null']:<11}{row['mechanism']:<16}{value:>6}{row['n']:>5}  {row['strength']}")
    return "\n".join(lines)
