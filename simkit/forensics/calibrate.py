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

import numpy as np
import xarray as xr

from simkit.engine import aggregation
from simkit import schema, streams
from simkit.config.core import Config
from simkit.engine.run import simulate
from simkit.forensics import ALPHA, rate, rejection_counts, replicate_rejections, replicate_seed
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
                   ds: xr.Dataset, point: int, replicate: int) -> list[Outcome]:
    """Rejections (α = 0.05; None where a test cannot run) of every test under every null in every scenario
    of one simulated election ``ds`` (dims ``scenario``, ``station``, ``option``; sweep point ``point``,
    replicate ``replicate``), as published under ``aggregate`` (:mod:`simkit.engine.aggregation`; a sample is
    drawn once per replicate and point, the same for every scenario): one :data:`Outcome` per scenario and
    null, for :func:`simkit.forensics.rejection_counts`."""
    outcomes = []
    for scenario in ds[schema.SCENARIO].values:
        sample_rng = streams.generator(seed, replicate, streams.STATION_SAMPLE, point)
        election = aggregation.coarsen(ds.sel({schema.SCENARIO: scenario}), aggregate, sample_rng)
        for null in nulls:
            outcomes.append(((point, str(scenario), null),
                             replicate_rejections(election, tests, null=null, draws=draws, alpha=ALPHA,
                                                  seed=replicate_seed(seed, replicate))))
    return outcomes


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
    simulation, then over the replicates tested (one per replicate and sweep point)."""
    seed = cfg.run.seed if seed is None else seed
    aggregation.parse(aggregate)  # fail before simulating
    function = functools.partial(replicate_rows, tests, nulls, draws, seed, aggregate)
    if cluster is not None:
        outcomes = map_replicates(cfg, function, replicates=replicates, seed=seed, **cluster)
    else:
        if ds is None:
            ds = simulate(cfg, replicates=replicates, seed=seed, keep="full", progress=progress)
        shape = tuple(ds.sizes[dim] for dim in cfg.sweep)
        keys = [(point, replicate) for point in range(int(np.prod(shape)))
                for replicate in range(ds.sizes[schema.REPLICATE])]
        work = ds.sizes[schema.STATION] * ds.sizes[schema.SCENARIO] * len(nulls) * max(draws, 1) * len(keys)
        where, workers = choose(workers, work if len(keys) > 1 else 0, PARALLEL_MIN_STATION_DRAWS)
        with (KeyedPool(_replicate_rows, (function, ds, list(cfg.sweep), shape), where, workers) as pool,
              progress_bar(len(keys), enabled=progress) as bar):
            outcomes = []
            for part in pool.map(keys):
                outcomes.extend(part)
                bar.update(1)
    return _rates(cfg, outcomes, aggregate)


def _replicate_rows(job: tuple, key: tuple[int, int]) -> list[Outcome]:
    """:func:`replicate_rows` (bound in ``job``'s function) of replicate ``key[1]`` at flat sweep point
    ``key[0]`` of the simulation ``job[1]`` (sweep dims ``job[2]``, shape ``job[3]``)."""
    function, ds, sweep, shape = job
    point, replicate = key
    at = ds.isel(dict(zip(sweep, np.unravel_index(point, shape)))) if shape else ds
    return function(at.isel({schema.REPLICATE: replicate}), point, replicate)


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
