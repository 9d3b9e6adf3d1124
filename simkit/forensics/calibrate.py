"""``simkit calibrate``: how often each forensic test rejects on simulated elections of a config.

Under the ``honest`` scenario the rejection rate at α = 0.05 is the test's **size** (its false-positive
rate: a calibrated test rejects about 5% of honest elections); under a manipulated scenario it is the
test's **power** against that mechanism at the config's strength (one row per sweep point). Both nulls
(``textbook`` and ``simulated``) are run, so users see which null keeps its promise on elections shaped
like theirs.

The work is one function of one election as the tests read it, :func:`election_verdicts` (every null × test,
with the forensic seed of its replicate). Locally the replicates are simulated one after another in this process,
each replicate's distinct elections found (:func:`replicate_elections`: a scenario that the sweep does not touch
is the same election at every sweep point) and each tested once, one task per election on every core, while the
next replicate is simulated; on a dask cluster
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
import itertools
import threading
from collections.abc import Iterable, Iterator

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from simkit.engine import aggregation
from simkit import schema, streams
from simkit.config.core import Config
from simkit.electorate.build import electorate_of
from simkit.engine.run import iter_blocks, prepare, static_dataset
from simkit.errors import counted
from simkit.forensics import ALPHA, election_outcomes, rate, rejection_counts, replicate_seed
from simkit.forensics.core import Election, election
from simkit.forensics.floor import floor_lines
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


#: one simulated election's verdicts in one group: ((flat sweep point, scenario, null), test -> (rejected or None,
#: smallest_p of a test that could not reject or None)), :func:`simkit.forensics.election_outcomes`
Outcome = tuple[tuple[int, str, str], dict[str, tuple[bool | None, float | None]]]
#: null -> test -> (rejected or None, smallest_p or None): one election's outcomes under each null
NullOutcomes = dict[str, dict[str, tuple[bool | None, float | None]]]
#: an election the tests read, by the replicate whose forensic seed it is tested with and its :func:`_digest`
ElectionKey = tuple[int, bytes]


def published(ds: xr.Dataset, scenario: str, point: int, replicate: int, seed: int | None,
              aggregate: str) -> Election:
    """Scenario ``scenario`` of one simulated election ``ds`` (dims ``scenario``, ``station``, ``option``;
    sweep point ``point``, replicate ``replicate``) as published under ``aggregate``
    (:mod:`simkit.engine.aggregation`; a sample is drawn once per replicate and point, the same for every
    scenario)."""
    sample_rng = streams.generator(seed, *streams.station_sample_key(replicate, point))
    return election(aggregation.coarsen(ds.sel({schema.SCENARIO: scenario}), aggregate, sample_rng))


def election_verdicts(tests: list[str] | None, nulls: tuple[str, ...], draws: int, seed: int | None,
                      e: Election, replicate: int) -> NullOutcomes:
    """null -> :func:`simkit.forensics.election_outcomes` (α = 0.05; None where a test cannot run) of the
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
        return {null: election_outcomes(e, tests or None, null=null, draws=draws, alpha=ALPHA,
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
    any replicate) and ``n`` (replicates it ran on), for every scenario and sweep point of ``cfg``; and
    ``floored`` and ``smallest_p`` where the test could not reject on some replicates with their null draws
    (:func:`floored`).
    ``seed`` (default: the config's) seeds the simulations and the forensic nulls. ``aggregate``: what
    the tests see (:mod:`simkit.engine.aggregation`: every station, regional totals, or a sample of stations).

    ``ds``: a full-output simulation of ``cfg`` to use instead of simulating. ``cluster``: run on dask
    instead, with these keyword arguments of :func:`simkit.engine.distributed.map_replicates` (``client``,
    ``scheduler`` or ``workers``, ``block_size``, ``quiet``). Else the replicates are simulated one after another in this process
    (:func:`_simulated_replicates`) and each replicate's distinct elections (:func:`replicate_elections`: a
    scenario that the sweep does not touch draws the same election at every sweep point, tested once) are tested
    on ``workers`` local processes (default: every core; :mod:`simkit.engine.parallel`) as soon as they are
    drawn, one task per election, each with its replicate's forensic seed: the table does not depend on
    ``workers``. At most ``2 × workers + 1`` elections wait for or are in a worker (the next one is handed over
    when any finishes, so no core waits behind a slow one), so memory holds one replicate's simulation and those
    elections, whatever the replicates. ``progress``: bars (:func:`simkit.progress.progress_bar`) over the
    replicates simulated and the elections tested."""
    seed = cfg.run.seed if seed is None else seed
    electorate = electorate_of(cfg) if ds is None else None
    # fail before simulating
    aggregation.check_sample(aggregate, electorate.n_stations if ds is None else ds.sizes[schema.STATION])
    if cluster is not None:
        function = functools.partial(replicate_rows, tests, nulls, draws, seed, aggregate)
        outcomes = map_replicates(cfg, function, replicates=replicates, seed=seed, electorate=electorate, **cluster)
        return _rates(cfg, outcomes, aggregate, draws)
    if ds is None:
        run = prepare(cfg, replicates, seed, keep="full", electorate=electorate)
        count, parts = run.replicates, _simulated_replicates(run)
    else:
        count, parts = ds.sizes[schema.REPLICATE], [ds]
    sweep = list(cfg.sweep)
    where_tested: dict[tuple[int, str, int], ElectionKey] = {}
    verdicts: dict[ElectionKey, dict] = {}
    with contextlib.ExitStack() as stack:
        simulated = stack.enter_context(progress_bar(count, enabled=progress))
        replicates = _replicate_elections(parts, sweep, seed, aggregate, where_tested, simulated)
        first = next(replicates, {})  # sizes the pool: the other replicates' elections have the same shapes
        elections = count * len(first)
        work = count * sum(e.n for e in first.values()) * len(nulls) * max(draws, 1)
        where, n_workers = choose(workers, work if elections > 1 else 0, PARALLEL_MIN_STATION_DRAWS)
        pool = stack.enter_context(KeyedPool(_tested, (tests, nulls, draws, seed), where, n_workers))
        bar = stack.enter_context(progress_bar(elections, enabled=progress, unit="election"))
        # the next replicate is simulated here while the workers test the last one's elections (bounded memory)
        items = (item for one in itertools.chain([first], replicates) for item in one.items())
        for (key, _), result in pool.map_unordered(items):
            verdicts[key] = result
            bar.update(1)
    # the table's order: sweep point, then scenario, then replicate, then null (rejection_counts keeps the order
    # first seen)
    outcomes = [((point, scenario, null), dict(verdicts[where_tested[point, scenario, replicate]][null]))
                for point, scenario, replicate in sorted(where_tested, key=_table_order(where_tested))
                for null in nulls]
    return _rates(cfg, outcomes, aggregate, draws)


def _simulated_replicates(run) -> Iterator[xr.Dataset]:
    """The full-output Dataset of each replicate of a prepared run (:func:`simkit.engine.run.prepare`), drawn in
    this process one after another (the same values as :func:`simkit.engine.run.simulate`'s: the engine's draws do
    not depend on the block size), so that its elections are tested while the next replicate is drawn."""
    static = static_dataset(run)
    for block in iter_blocks(run, block_size=1, workers=1):
        yield xr.merge([static, block], combine_attrs="override")


def _replicate_elections(parts: Iterable[xr.Dataset], sweep: list[str], seed: int | None, aggregate: str,
                         where_tested: dict, simulated) -> Iterator[dict[ElectionKey, Election]]:
    """Each replicate's distinct elections (:func:`replicate_elections`) of the full-output Datasets ``parts``, in
    turn, noting where each is tested in ``where_tested`` and each replicate drawn on the bar ``simulated``."""
    for part in parts:
        for replicate in (int(r) for r in part[schema.REPLICATE].values):
            simulated.update(1)
            first, tested_as = replicate_elections(part, sweep, seed, aggregate, replicate)
            where_tested.update(tested_as)
            yield first


def _table_order(where_tested: dict[tuple[int, str, int], ElectionKey]):
    """A sort key of (flat sweep point, scenario, replicate) in the table's order, scenarios in the order first
    seen in ``where_tested`` (the simulation's)."""
    names = list(dict.fromkeys(scenario for _, scenario, _ in where_tested))
    return lambda where: (where[0], names.index(where[1]), where[2])


def election_at(ds: xr.Dataset, sweep: list[str], seed: int | None, aggregate: str,
                where: tuple[int, str, int]) -> Election:
    """The election of a full-output simulation ``ds`` (dims ``replicate``, ``scenario``, the ``sweep`` dims,
    ``station``, ``option``) at ``where`` = (flat sweep point in C order, scenario, replicate: a label of ``ds``'s
    replicate coordinate), as published under ``aggregate`` (:func:`published`)."""
    point, scenario, replicate = where
    shape = tuple(ds.sizes[dim] for dim in sweep)
    at = ds.isel(dict(zip(sweep, np.unravel_index(point, shape)))) if shape else ds
    return published(at.sel({schema.REPLICATE: replicate}), scenario, point, replicate, seed, aggregate)


def replicate_elections(ds: xr.Dataset, sweep: list[str], seed: int | None, aggregate: str, replicate: int
                        ) -> tuple[dict[ElectionKey, Election], dict[tuple[int, str, int], ElectionKey]]:
    """The elections that the tests of replicate ``replicate`` of a full-output simulation ``ds`` read
    (:func:`election_at`), each once, by :data:`ElectionKey` (the replicate and :func:`_digest`: the same counts
    tested with the same replicate's seed give the same verdicts): key -> the election where it is first
    published, sweep points in C order, then scenarios; and (flat sweep point, scenario, replicate) -> the key
    of its election."""
    first: dict[ElectionKey, Election] = {}
    where_tested = {}
    points = int(np.prod(tuple(ds.sizes[dim] for dim in sweep)))
    for point in range(points):
        for scenario in (str(s) for s in ds[schema.SCENARIO].values):
            one = election_at(ds, sweep, seed, aggregate, (point, scenario, replicate))
            key = (replicate, _digest(one))
            first.setdefault(key, one)
            where_tested[point, scenario, replicate] = key
    return first, where_tested


def _tested(job: tuple, task: tuple[ElectionKey, Election]) -> NullOutcomes:
    """:func:`election_verdicts` of the election of ``task`` (its key, the election) with ``job``'s tests,
    nulls, draws and seed."""
    tests, nulls, draws, seed = job
    (replicate, _), e = task
    return election_verdicts(tests, nulls, draws, seed, e, replicate)


def _rates(cfg: Config, outcomes: list[Outcome], aggregate: str, draws: int) -> list[dict]:
    """The table: rejection rate and count per (sweep point, scenario, null, test), in that nesting order; a
    row of a test that could not reject on some elections with their null draws also says so (:func:`floored`)."""
    points = [{dim: float(value) for dim, value in point.items()} for point in cfg.sweep_points()]
    counts = rejection_counts((group, {t: rejected for t, (rejected, _) in tests.items()})
                              for group, tests in outcomes)
    floors = _floors(outcomes)
    strengths = {(point, scenario): _strength(cfg, scenario, points[point]) for point, scenario, _ in counts}
    return [{"test": test, "null": null, "mechanism": "none" if scenario == "honest" else scenario,
             "strength": strengths[point, scenario], **points[point], "aggregate": aggregate, **rate(count),
             **floored(floors.get((point, scenario, null), {}).get(test, []), count[1])}
            for (point, scenario, null), tests in counts.items() for test, count in tests.items()]


def _floors(outcomes: list[Outcome]) -> dict[tuple[int, str, str], dict[str, list[float]]]:
    """group -> test -> the ``smallest_p`` of each election of ``outcomes`` on which the test could not reject."""
    floors: dict[tuple[int, str, str], dict[str, list[float]]] = {}
    for group, tests in outcomes:
        for test, (_, floor) in tests.items():
            if floor is not None:
                floors.setdefault(group, {}).setdefault(test, []).append(floor)
    return floors


def floored(floors: list[float], ran: int) -> dict:
    """A row's marks from the ``floors`` (``smallest_p``) of the elections, of the ``ran`` it ran on, on which its
    test could not reject with its null draws: ``floored`` (how many), and ``smallest_p`` (the least) when it
    could reject on none, its rate 0 whatever the elections; ``{}`` when it could on every one."""
    if not floors:
        return {}
    return {"floored": len(floors), **({"smallest_p": min(floors)} if len(floors) == ran else {})}


def cannot_reject_warnings(rows: list[dict], draws: int) -> list[str]:
    """One line per null of the table ``rows`` whose tests could not reject on any election with their null draws
    (rows with ``smallest_p``, :func:`floored`): :func:`simkit.forensics.floor.floor_lines`, their rates 0 by
    construction; and one per test and null with rows that could not on some (:func:`some_floored_warnings`)."""
    by_null: dict[str, dict[str, float]] = {}
    for row in rows:
        if "smallest_p" in row:
            tests = by_null.setdefault(row["null"], {})
            tests[row["test"]] = max(tests.get(row["test"], 0.0), row["smallest_p"])
    return ([f"{line} (their rates are 0 whatever the elections)" for line in floor_lines(by_null, draws)]
            + some_floored_warnings(rows))


def some_floored_warnings(rows: list[dict]) -> list[str]:
    """One line per test and null of the table ``rows`` with rows whose test could not reject on some of their
    elections with their null draws (``floored`` without ``smallest_p``, :func:`floored`; marked in the table):
    on how many elections per row, in how many rows; their rates count no rejection on those elections."""
    floored_by: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if "floored" in row and "smallest_p" not in row:
            floored_by.setdefault((row["test"], row["null"]), []).append(row["floored"])
    return [f"{test} ({null} null): too few null draws to reject on {_in_rows(counts)}"
            for (test, null), counts in floored_by.items()]


def _in_rows(counts: list[int]) -> str:
    """The elections of each row (``counts``, one per row): ``2 elections in 1 row``, ``1 to 3 elections in each of
    12 rows``."""
    low, high = min(counts), max(counts)
    elections = counted(low, "election") if low == high else f"{low} to {high} elections"
    return f"{elections} in 1 row" if len(counts) == 1 else f"{elections} in each of {len(counts)} rows"


def never_ran(rows: list[dict]) -> list[str]:
    """A warning for each test and null that ran on none of the simulated elections (``n`` = 0 in every row of
    the table ``rows``): its rates are n/a, e.g. regional totals too few for it."""
    tested = {(row["test"], row["null"]) for row in rows if row["n"]}
    aggregate = rows[0]["aggregate"] if rows else ""
    return [f"{test} ({null} null): ran on none of the simulated elections as published (aggregate {aggregate}): "
            "no rate to quote; `simkit forensics` on one of them says why"
            for test, null in dict.fromkeys((row["test"], row["null"]) for row in rows)
            if (test, null) not in tested]


def format_table(rows: list[dict]) -> str:
    """The table as text: one line per test × null × scenario (× sweep point)."""
    lines = [f"{'test':<16}{'null':<11}{'mechanism':<16}{'rate':>6}{'n':>5}  strength"]
    for row in rows:
        value = "  n/a" if row["rejection_rate"] is None else f"{row['rejection_rate']:>6.2f}"
        floor = (f" (cannot reject: smallest p {row['smallest_p']:.3g})" if "smallest_p" in row
                 else f" (could not reject on {row['floored']})" if "floored" in row else "")
        lines.append(f"{row['test']:<16}{row['null']:<11}{row['mechanism']:<16}{value:>6}{row['n']:>5}  "
                     f"{row['strength']}{floor}")
    return "\n".join(lines)
