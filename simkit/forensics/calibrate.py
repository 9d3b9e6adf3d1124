"""``simkit calibrate``: how often each forensic test rejects on simulated elections of a config.

Under the ``honest`` scenario the rejection rate at α = 0.05 is the test's **size** (its false-positive
rate: a calibrated test rejects about 5% of honest elections); under a manipulated scenario it is the
test's **power** against that mechanism at the config's strength (one row per sweep point). Both nulls
(``textbook`` and ``simulated``) are run, so users see which null keeps its promise on elections shaped
like theirs.

The work is one function of one simulated election, :func:`replicate_rows` (every scenario × null × test
of one replicate at one sweep point, with the forensic seed of that replicate), applied locally to a
simulated Dataset or on a dask cluster through :func:`simkit.engine.distributed.map_replicates` (each task
simulates its part from the config alone): the two give the same table.
"""
from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from simkit.engine import aggregation
from simkit import schema, streams
from simkit.config.core import Config
from simkit.engine.run import simulate
from simkit.forensics import ALPHA, rate, replicate_rejections, replicate_seed

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


def replicate_rows(tests: list[str] | None, nulls: tuple[str, ...], draws: int, seed: int | None, aggregate: str,
                   ds: xr.Dataset, point: int, replicate: int) -> list[dict]:
    """Rejections (α = 0.05; None where a test cannot run) of every test under every null in every scenario
    of one simulated election ``ds`` (dims ``scenario``, ``station``, ``option``; sweep point ``point``,
    replicate ``replicate``), as published under ``aggregate`` (:mod:`simkit.engine.aggregation`; a sample is
    drawn once per replicate and point, the same for every scenario): rows ``point``, ``scenario``,
    ``null``, ``test``, ``rejected``."""
    rows = []
    for scenario in ds[schema.SCENARIO].values:
        sample_rng = streams.generator(seed, replicate, streams.STATION_SAMPLE, point)
        election = aggregation.coarsen(ds.sel({schema.SCENARIO: scenario}), aggregate, sample_rng)
        for null in nulls:
            rejected = replicate_rejections(election, tests, null=null, draws=draws, alpha=ALPHA,
                                            seed=replicate_seed(seed, replicate))
            rows.extend({"point": point, "scenario": str(scenario), "null": null, "test": test,
                         "rejected": value} for test, value in rejected.items())
    return rows


def calibration_table(cfg: Config, *, replicates: int | None = None, tests: list[str] | None = None,
                      nulls: tuple[str, ...] = NULLS, draws: int = 99, seed: int | None = None,
                      ds: xr.Dataset | None = None, cluster: dict | None = None,
                      aggregate: str = "station") -> list[dict]:
    """Rows ``test``, ``null``, ``mechanism`` (``none`` for the honest scenario), ``strength``, the sweep
    point's values, ``aggregate``, ``rejection_rate`` (at α = 0.05; None where the test could not run on
    any replicate) and ``n`` (replicates it ran on), for every scenario and sweep point of ``cfg``.
    ``seed`` (default: the config's) seeds the simulations and the forensic nulls. ``aggregate``: what
    the tests see (:mod:`simkit.engine.aggregation`: every station, regional totals, or a sample of stations).

    ``ds``: a full-output simulation of ``cfg`` to use instead of simulating. ``cluster``: run on dask
    instead, with these keyword arguments of :func:`simkit.engine.distributed.map_replicates` (``client``,
    ``scheduler`` or ``workers``, ``block_size``, ``quiet``)."""
    seed = cfg.run.seed if seed is None else seed
    aggregation.parse(aggregate)  # fail before simulating
    function = functools.partial(replicate_rows, tests, nulls, draws, seed, aggregate)
    if cluster is not None:
        from simkit.engine.distributed import map_replicates

        rows = map_replicates(cfg, function, replicates=replicates, seed=seed, **cluster)
    else:
        if ds is None:
            ds = simulate(cfg, replicates=replicates, seed=seed, keep="full")
        rows = []
        shape = tuple(ds.sizes[dim] for dim in cfg.sweep)
        for point in range(int(np.prod(shape))):
            at = ds.isel(dict(zip(cfg.sweep, np.unravel_index(point, shape)))) if shape else ds
            for replicate in range(at.sizes[schema.REPLICATE]):
                rows.extend(function(at.isel({schema.REPLICATE: replicate}), point, replicate))
    return _rates(cfg, rows, aggregate)


def _rates(cfg: Config, rows: list[dict], aggregate: str) -> list[dict]:
    """The table: rejection rate and count per (sweep point, scenario, null, test), in that nesting order."""
    points = [{dim: float(value) for dim, value in point.items()} for point in cfg.sweep_points()]
    groups: dict[tuple, list[bool]] = {}
    for row in rows:
        groups.setdefault((row["point"], row["scenario"], row["null"], row["test"]), []).append(row["rejected"])
    return [{"test": test, "null": null, "mechanism": "none" if scenario == "honest" else scenario,
             "strength": _strength(cfg, scenario, points[point]), **points[point], "aggregate": aggregate,
             **rate(values)}
            for (point, scenario, null, test), values in groups.items()]


def format_table(rows: list[dict]) -> str:
    """The table as text: one line per test × null × scenario (× sweep point)."""
    lines = [f"{'test':<16}{'null':<11}{'mechanism':<16}{'rate':>6}{'n':>5}  strength"]
    for row in rows:
        value = "  n/a" if row["rejection_rate"] is None else f"{row['rejection_rate']:>6.2f}"
        lines.append(f"{row['test']:<16}{row['null']:<11}{row['mechanism']:<16}{value:>6}{row['n']:>5}  {row['strength']}")
    return "\n".join(lines)
