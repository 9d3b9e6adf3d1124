"""The engine: blocks of replicates, SeedSequence keys, sweeps, threads → xarray.Dataset.

Models (``simkit.model``) are pure; this module owns the loop over replicates and station groups,
the parallelism and the assembly of results. Random streams are keyed by
``(replicate, station_group, component)`` only (see :mod:`simkit.streams`), so a result does not
depend on the block size or the number of workers, and every sweep point uses the same underlying
draws (common random numbers).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import numpy as np
import xarray as xr

from . import schema, streams
from .config import Config
from .electorate import Electorate, build_electorate
from .model.counts import draw_counts
from .model.preferences import PreferencePlan, draw_preferences
from .model.turnout import turnout_from_latent, turnout_locations

DEFAULT_BLOCK_SIZE = 32  #: replicates per block (memory ≈ block × stations × options × 8 bytes per sweep point)


@dataclass(frozen=True)
class Plan:
    """One sweep point, resolved: its config and the per-station latent parameters."""

    config: Config
    turnout_location: np.ndarray  # (station,) latent location of each station's turnout
    preferences: PreferencePlan


def make_plan(cfg: Config, electorate: Electorate) -> Plan:
    turnout = cfg.turnout
    means = np.array([turnout.regional_mean.get(name, turnout.mean) for name in electorate.region_names])
    locations = turnout_locations(turnout.model, means, turnout.dispersion)
    preferences = cfg.preferences
    shares = np.array([preferences.shares[name] for name in cfg.option_names])
    plan = PreferencePlan.build(preferences.model, shares, cfg.option_names.index(cfg.leader),
                                preferences.dispersion, preferences.regional_sd, preferences.rho)
    return Plan(cfg, locations[electorate.region_index], plan)


def honest_replicate(plan: Plan, electorate: Electorate, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """One honest election: ``ballots`` (station,) and ``votes`` (station, option), int64."""
    turnout_cfg = plan.config.turnout
    n_regions = len(electorate.region_names)
    region_shift = plan.preferences.regional_sd * streams.generator(
        seed, replicate, 0, streams.REGIONAL).standard_normal(n_regions)
    ballots = np.empty(electorate.n_stations, dtype=np.int64)
    votes = np.empty((electorate.n_stations, len(plan.preferences.shares)), dtype=np.int64)
    for group, stations in enumerate(streams.station_groups(electorate.n_stations)):
        latent = streams.generator(seed, replicate, group, streams.TURNOUT).standard_normal(
            stations.stop - stations.start)
        turnout = turnout_from_latent(turnout_cfg.model, plan.turnout_location[stations],
                                      turnout_cfg.dispersion, latent)
        probabilities = draw_preferences(plan.preferences,
                                         streams.generator(seed, replicate, group, streams.PREFERENCES),
                                         electorate.region_index[stations], region_shift, latent)
        ballots[stations], votes[stations] = draw_counts(
            streams.generator(seed, replicate, group, streams.COUNTS),
            electorate.registered[stations], turnout, probabilities)
    return ballots, votes


@dataclass(frozen=True)
class Run:
    """A resolved run: the config as run, its electorate and one plan per sweep point."""

    config: Config
    electorate: Electorate
    plans: list[Plan]
    seed: int
    replicates: int
    keep: str

    @property
    def sweep_shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.config.sweep.values())


def prepare(cfg: Config, replicates: int | None = None, seed: int | None = None, keep: str | None = None) -> Run:
    """Resolve a config for running: apply run overrides, build the electorate and the sweep plans."""
    run_fields = {"replicates": replicates, "seed": seed, "keep": keep}
    updates = {key: value for key, value in run_fields.items() if value is not None}
    if updates:
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update=updates)})
        cfg = Config.model_validate(cfg.raw())  # re-validate the overridden values
    electorate = build_electorate(cfg.electorate)
    plans = [make_plan(cfg.at(point), electorate) for point in cfg.sweep_points()]
    return Run(cfg, electorate, plans, cfg.run.seed, cfg.run.replicates, cfg.run.keep)


def _block_arrays(run: Run, replicates: range) -> dict[str, np.ndarray]:
    """Arrays for one block, with a leading (sweep point, replicate) pair of axes."""
    electorate = run.electorate
    n_points, n_reps = len(run.plans), len(replicates)
    n_options = len(run.config.options)
    n_regions = len(electorate.region_names)
    full = run.keep == "full"
    out = {
        "total_ballots": np.empty((n_points, n_reps), np.int64),
        "total_votes": np.empty((n_points, n_reps, n_options), np.int64),
        "region_ballots": np.empty((n_points, n_reps, n_regions), np.int64),
        "region_votes": np.empty((n_points, n_reps, n_regions, n_options), np.int64),
    }
    if full:
        out["ballots"] = np.empty((n_points, n_reps, electorate.n_stations), np.int64)
        out["votes"] = np.empty((n_points, n_reps, electorate.n_stations, n_options), np.int64)
    for p, plan in enumerate(run.plans):
        for r, replicate in enumerate(replicates):
            ballots, votes = honest_replicate(plan, electorate, run.seed, replicate)
            out["total_ballots"][p, r] = ballots.sum()
            out["total_votes"][p, r] = votes.sum(axis=0)
            out["region_ballots"][p, r] = np.bincount(electorate.region_index, ballots, n_regions)
            region_votes = np.zeros((n_regions, n_options), np.int64)
            np.add.at(region_votes, electorate.region_index, votes)
            out["region_votes"][p, r] = region_votes
            if full:
                out["ballots"][p, r] = ballots
                out["votes"][p, r] = votes
    return out


def block_dataset(run: Run, replicates: range) -> xr.Dataset:
    """The Dataset of one block of replicates (all sweep points)."""
    arrays = _block_arrays(run, replicates)
    sweep_dims = list(run.config.sweep)
    data_vars = {}
    for name, values in arrays.items():
        dims = sweep_dims + list(schema.VARIABLES[name][0])
        data_vars[name] = (dims, values.reshape(run.sweep_shape + values.shape[1:]))
    coords = {schema.REPLICATE: np.arange(replicates.start, replicates.stop)}
    return xr.Dataset(data_vars, coords=coords)


def static_dataset(run: Run) -> xr.Dataset:
    """Variables and coordinates that do not depend on the replicate, with provenance attrs."""
    electorate = run.electorate
    coords = {
        schema.STATION: electorate.station_ids,
        schema.STATION_REGION: (schema.STATION, np.array(electorate.region_names)[electorate.region_index]),
        schema.OPTION: run.config.option_names,
        schema.REGION_NAME: list(electorate.region_names),
    }
    for path, values in run.config.sweep.items():
        coords[path] = np.asarray(values, dtype=float)
    data_vars = {
        "registered": ((schema.STATION,), electorate.registered),
        "region_registered": ((schema.REGION_NAME,), electorate.region_registered()),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=provenance(run))


def provenance(run: Run) -> dict:
    import scipy

    from . import __version__

    text = run.config.to_toml()
    return {
        "title": run.config.title,
        "simkit_config": text,
        "simkit_config_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "seed": run.seed,
        "replicates": run.replicates,
        "keep": run.keep,
        "leader": run.config.leader,
        "station_group_size": streams.STATION_GROUP_SIZE,
        "kernel": "numpy",
        "simkit_version": __version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "xarray_version": xr.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Units and descriptions from the schema on every known variable."""
    for name, (_, units, description) in schema.VARIABLES.items():
        if name in ds:
            ds[name].attrs.update(units=units, description=description)
    return ds


def iter_blocks(run: Run, block_size: int = DEFAULT_BLOCK_SIZE, workers: int | None = None) -> Iterator[xr.Dataset]:
    """Block Datasets in replicate order, computed by ``workers`` threads (numpy releases the GIL in
    its random kernels), at most ``2 × workers`` blocks in memory at once."""
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    workers = workers or os.cpu_count() or 1
    blocks = [range(start, min(start + block_size, run.replicates)) for start in range(0, run.replicates, block_size)]
    if workers == 1:
        yield from (block_dataset(run, block) for block in blocks)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for block in blocks:
            pending.append(pool.submit(block_dataset, run, block))
            if len(pending) > 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def simulate(cfg: Config, replicates: int | None = None, seed: int | None = None, keep: str | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, workers: int | None = None, progress: bool = False) -> xr.Dataset:
    """Simulate ``replicates`` elections of ``cfg`` in memory and return the Dataset (see :mod:`simkit.schema`)."""
    from .progress import progress_bar

    run = prepare(cfg, replicates, seed, keep)
    with progress_bar(run.replicates, enabled=progress) as bar:
        parts = []
        for block in iter_blocks(run, block_size, workers):
            parts.append(block)
            bar.update(block.sizes[schema.REPLICATE])
    dynamic = xr.concat(parts, dim=schema.REPLICATE) if len(parts) > 1 else parts[0]
    return annotate(xr.merge([static_dataset(run), dynamic], combine_attrs="override"))
