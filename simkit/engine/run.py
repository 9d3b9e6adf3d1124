"""The engine: blocks of replicates, SeedSequence keys, sweeps, processes → xarray.Dataset.

Models (``simkit.model``) are pure; this module owns the loop over replicates and station groups,
the parallelism and the assembly of results. Random streams are keyed by
``(replicate, station_group, component)`` only (see :mod:`simkit.streams`), so a result does not
depend on the block size or the number of workers, and every sweep point uses the same underlying
draws (common random numbers).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

import numpy as np
import tomli_w
import xarray as xr

from simkit.engine import count_match
from simkit.engine import kernels, resources
from simkit import io, schema, streams
from simkit.config.core import Config, CsvElectorate, check_config
from simkit.config.load import parse_config
from simkit.config.messages import ConfigError
from simkit.config.manipulation import ManipulationConfig
from simkit.electorate.build import Electorate, electorate_of
from simkit.engine.timeline import TimelinePlan, added_timeline, honest_timeline, make_timeline_plan
from simkit.errors import InputError
from simkit.model.counts import draw_counts
from simkit.model.manipulation import MECHANISMS
from simkit.model.timeline import cumulative
from simkit.model.preferences import PreferencePlan, draw_preferences
from simkit.model.turnout import turnout_from_latent, turnout_locations
from simkit.outputs import KIND_ATTR, SIMULATION
from simkit.engine.parallel import KeyedPool, choose, chunks
from simkit._version import __version__
from simkit.progress import progress_bar

DEFAULT_BLOCK_SIZE = resources.MAX_BLOCK_SIZE  #: replicates per block of a dask run (a local run sizes its blocks
#: by memory: :func:`simkit.engine.resources.block_size`)
DEFAULT_KERNEL = kernels.DEFAULT_KERNEL  #: the random-draw kernel when none is named (see :mod:`simkit.engine.kernels`)


@dataclass(frozen=True)
class ScenarioPlan:
    """One scenario, resolved: ``blocks`` are (index of the block in the config, the block with the
    scenario's overrides applied, the stations of its regions (station,) bool or None for all); ``honest``:
    the honest world of a count-matched scenario (its ``solved_honest`` parameters), None for the sweep
    point's own."""

    name: str
    blocks: tuple[tuple[int, ManipulationConfig, np.ndarray | None], ...]
    honest: Plan | None = None


@dataclass(frozen=True)
class Plan:
    """One sweep point, resolved: its config, the per-station latent parameters and its scenarios."""

    config: Config
    turnout_location: np.ndarray  # (station,) latent location of each station's turnout
    preferences: PreferencePlan
    scenarios: tuple[ScenarioPlan, ...]
    timeline: TimelinePlan | None = None  #: voting through the day, with ``[timeline]``


def make_scenarios(cfg: Config, electorate: Electorate) -> tuple[ScenarioPlan, ...]:
    block_names = [block.name for block in cfg.manipulation]
    region_names = np.array(electorate.region_names)
    plans = []
    for scenario in cfg.scenarios():
        resolved = cfg.at(scenario.overrides) if scenario.overrides else cfg
        blocks = []
        for name in scenario.manipulations:
            index = block_names.index(name)
            block = resolved.manipulation[index]
            regions = None if block.regions is None else np.isin(region_names[electorate.region_index], block.regions)
            blocks.append((index, block, regions))
        honest = honest_plan(cfg.at(scenario.solved_honest[0]), electorate) if scenario.solved_honest else None
        plans.append(ScenarioPlan(scenario.name, tuple(blocks), honest))
    return tuple(plans)


def honest_plan(cfg: Config, electorate: Electorate) -> Plan:
    """The honest part of a plan (turnout locations and preferences), without scenarios or timeline."""
    turnout = cfg.turnout
    means = np.array([turnout.regional_mean.get(name, turnout.mean) for name in electorate.region_names])
    locations = turnout_locations(turnout.model, means, turnout.dispersion)
    preferences = cfg.preferences
    shares = np.array([preferences.shares[name] for name in cfg.option_names])
    plan = PreferencePlan.build(preferences.model, shares, cfg.option_names.index(cfg.leader),
                                preferences.dispersion, preferences.regional_sd, preferences.rho)
    return Plan(cfg, locations[electorate.region_index], plan, ())


def make_plan(cfg: Config, electorate: Electorate) -> Plan:
    return dataclasses.replace(honest_plan(cfg, electorate), scenarios=make_scenarios(cfg, electorate),
                               timeline=make_timeline_plan(cfg, electorate))


def fused(plan: Plan, kernel: str) -> bool:
    """Whether ``kernel`` draws this plan's honest elections with the fused numba kernel (it fuses
    logit-normal turnout with Dirichlet preferences at rho = 0; for the other models the numba kernel draws
    the counts and numpy the turnout and preferences)."""
    return fused_models(plan.config, kernel)


def fused_models(cfg: Config, kernel: str) -> bool:
    """:func:`fused` from a (sweep point's) config's models alone, before any plan is built."""
    return kernel == "numba" and kernels.supports(cfg.turnout.model, cfg.preferences.model, cfg.preferences.rho)


def kernel_draws(plan: Plan, kernel: str) -> str:
    """What draws a plan's honest elections under ``kernel``, as recorded in a result's attrs."""
    if kernel == "numpy":
        return "numpy"
    if fused(plan, kernel):
        return "numba (fused: turnout, preferences and counts)"
    return "numba counts; numpy turnout and preferences"


def honest_replicate(plan: Plan, electorate: Electorate, seed: int, replicate: int,
                     kernel: str = DEFAULT_KERNEL) -> tuple[np.ndarray, np.ndarray]:
    """One honest election: ``ballots`` (station,) and ``votes`` (station, option), int64.

    ``kernel = "numba"`` (default) draws it with :func:`simkit.engine.kernels.honest_stations` where that fuses the
    model (logit-normal turnout, Dirichlet preferences, rho = 0); for the other models turnout and
    preferences come from the numpy streams and the counts from :func:`simkit.engine.kernels.count_stations`.
    ``kernel = "numpy"`` draws everything with numpy (the reference path)."""
    turnout_cfg = plan.config.turnout
    n_regions = len(electorate.region_names)
    region_shift = plan.preferences.regional_sd * streams.generator(
        seed, replicate, 0, streams.REGIONAL).standard_normal(n_regions)
    groups = streams.station_groups(electorate.n_stations)
    states = kernels.replicate_states(seed, replicate, len(groups)) if kernel == "numba" else None
    if fused(plan, kernel):
        return kernels.honest_stations(
            electorate.registered, plan.turnout_location, turnout_cfg.dispersion, plan.preferences.dispersion,
            plan.preferences.regional_composition(region_shift), electorate.region_index, states)
    turnout = np.empty(electorate.n_stations)
    probabilities = np.empty((electorate.n_stations, len(plan.preferences.shares)))
    for group, stations in enumerate(groups):
        latent = streams.generator(seed, replicate, group, streams.TURNOUT).standard_normal(
            stations.stop - stations.start)
        turnout[stations] = turnout_from_latent(turnout_cfg.model, plan.turnout_location[stations],
                                                turnout_cfg.dispersion, latent)
        probabilities[stations] = draw_preferences(plan.preferences,
                                                   streams.generator(seed, replicate, group, streams.PREFERENCES),
                                                   electorate.region_index[stations], region_shift, latent)
    if states is not None:
        return kernels.count_stations(electorate.registered, turnout, probabilities, states)
    ballots = np.empty(electorate.n_stations, dtype=np.int64)
    votes = np.empty(probabilities.shape, dtype=np.int64)
    for group, stations in enumerate(groups):
        ballots[stations], votes[stations] = draw_counts(
            streams.generator(seed, replicate, group, streams.COUNTS),
            electorate.registered[stations], turnout[stations], probabilities[stations])
    return ballots, votes


#: mechanisms that act on voters (real people, whom an exit poll can interview); the others rewrite the count
VOTER_MECHANISMS = ("coerced_turnout",)


def manipulate(scenario: ScenarioPlan, config: Config, electorate: Electorate, seed: int, replicate: int,
               ballots: np.ndarray, votes: np.ndarray, added_by_block: list | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply a scenario's blocks in order to one replicate's honest counts.

    Returns ``ballots`` (station,), ``votes`` (station, option), ``added_ballots`` (station,) summed over
    blocks, ``manipulated`` (station,) int64 with bit i set when block i of the config touched the
    station, and ``voter_votes`` (station, option): the choices of real voters, whom exit polls interview:
    the votes after the scenario's leading voter-level blocks (coercion) and before the first block that
    rewrites the count (stuffed, stolen or fabricated ballots have no voter to answer a pollster). Block i selects its stations from stream ``MANIPULATION_TARGETS + 2 i`` and draws from
    ``MANIPULATION_DRAWS + 2 i``: the same block selects the same stations in every scenario and sweep point.
    With a list ``added_by_block``, each block's (index, added ballots (station,)) is appended to it.
    """
    added = np.zeros(electorate.n_stations, np.int64)
    touched_bits = np.zeros(electorate.n_stations, np.int64)
    options = config.option_names
    voter_votes = None
    for index, block, regions in scenario.blocks:
        if voter_votes is None and block.kind not in VOTER_MECHANISMS:
            voter_votes = votes
        selected = streams.generator(seed, replicate, 0, streams.MANIPULATION_TARGETS + 2 * index).random(
            electorate.n_stations) < block.station_probability
        if regions is not None:
            selected &= regions
        ballots, votes, block_added, touched = MECHANISMS[block.kind](
            electorate.registered, ballots, votes, selected=selected, beneficiary=options.index(block.beneficiary),
            invalid=config.invalid_index, params=block,
            rng=streams.generator(seed, replicate, 0, streams.MANIPULATION_DRAWS + 2 * index))
        added += block_added
        if added_by_block is not None:
            added_by_block.append((index, block_added))
        touched_bits |= touched.astype(np.int64) << index
    return ballots, votes, added, touched_bits, (votes if voter_votes is None else voter_votes)


@dataclass(frozen=True)
class Run:
    """A resolved run: the config as run, its electorate and one plan per sweep point."""

    config: Config
    electorate: Electorate
    plans: list[Plan]
    seed: int
    replicates: int
    keep: str
    kernel: str = DEFAULT_KERNEL  #: "numba" or "numpy" (see :mod:`simkit.engine.kernels`)
    count_matched: str = ""  #: JSON record of the count-matched scenarios' solution (:func:`count_match.resolve`)

    @property
    def sweep_shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.config.sweep.values())

    @property
    def scenario_names(self) -> list[str]:
        return [scenario.name for scenario in self.plans[0].scenarios]


#: the source a config with replaced run fields names in its errors (:func:`with_run_fields`)
RUN_PARAMETERS = "run parameters"


def with_run_fields(cfg: Config, updates: dict) -> Config:
    """``cfg`` with the ``[run]`` fields ``updates`` (``replicates``, ``seed``, ``keep``: parameters of the caller)
    replaced and validated; an InputError names each problem's parameter and its value (``seed=-1: Input should
    be …``), and a problem off those fields the parameters replaced (``… (with replicates=5, seed=2)``)."""
    try:
        return parse_config(tomli_w.dumps(cfg.raw()), source=RUN_PARAMETERS,
                            overrides={f"run.{name}": value for name, value in updates.items()})
    except ConfigError as error:
        problems = [_run_parameter_problem(problem, updates) for problem in error.problems]
        named = {name for _, names in problems for name in names}
        raise InputError("; ".join(text for text, _ in problems),
                         parameters=tuple(name for name in updates if name in named)) from None


def _run_parameter_problem(problem: str, updates: dict) -> tuple[str, tuple[str, ...]]:
    """One problem of a config whose run fields ``updates`` replaced (``run parameters: run.seed: …``), as its
    parameter's (``seed=-1: …``), or, off those fields, naming the replaced parameters; with the parameters it
    names."""
    text = problem.removeprefix(f"{RUN_PARAMETERS}: ")
    for name, value in updates.items():
        if text.startswith(f"run.{name}: "):
            return f"{name}={value}: {text[len(f'run.{name}: '):]}", (name,)
    return f"{text} (with {', '.join(f'{name}={value}' for name, value in updates.items())})", tuple(updates)


def prepare(cfg: Config, replicates: int | None = None, seed: int | None = None, keep: str | None = None,
            kernel: str | None = None, source: str = "config", workers: int | None = None,
            electorate: Electorate | None = None) -> Run:
    """Resolve a config for running: apply run overrides, solve its count-matched scenarios once
    (:func:`simkit.engine.count_match.resolve`, on at most ``workers`` threads or processes; ``source`` names the config in
    its errors; a matched regional turnout of a region without voters is refused there, before any pilot), build
    the electorate and the sweep plans. ``kernel``: "numba" (default) or "numpy"
    (:mod:`simkit.engine.kernels`). ``electorate``: ``cfg.electorate`` already built (e.g. to check it before the
    solve), else built here."""
    check_config(cfg)
    kernel = kernel or DEFAULT_KERNEL
    if kernel not in kernels.KERNELS:
        raise InputError(f"kernel: must be one of {', '.join(kernels.KERNELS)}, got {kernel!r}")
    run_fields = {"replicates": replicates, "seed": seed, "keep": keep}
    updates = {key: value for key, value in run_fields.items() if value is not None}
    if updates:
        cfg = with_run_fields(cfg, updates)
    if electorate is None:  # the solution does not change the electorate
        electorate = electorate_of(cfg)
    # an electorate read from a file is not in the config text: its digest marks the solution too
    data = electorate.sha256 if isinstance(cfg.electorate, CsvElectorate) else ""
    cfg, count_matched = count_match.resolve(
        cfg, electorate, simulate, kernel, source=source, workers=workers,
        releases_gil=functools.partial(_pilots_release_gil, cfg, kernel), data=data)
    plans = [make_plan(point, electorate) for point in count_match.point_configs(cfg)]
    return Run(cfg, electorate, plans, cfg.run.seed, cfg.run.replicates, cfg.run.keep, kernel, count_matched)


def _pilots_release_gil(cfg: Config, kernel: str) -> bool:
    """True when ``kernel`` fuses the models of every sweep point of ``cfg``: count matching's pilots then draw
    their honest elections with the GIL released (the solution moves means and shares only, never the models),
    and its chains run in threads, without copies of this process. It builds every sweep point's config: count
    matching asks only when two chains or more are to be solved."""
    return all(fused_models(cfg.at(point), kernel) for point in cfg.sweep_points())


def region_totals(region_index: np.ndarray, counts: np.ndarray, n_regions: int) -> np.ndarray:
    """Counts summed by region: (station,) → (region,) or (station, option) → (region, option), int64.

    Exact integer sums: with ``region_index`` sorted (the electorate's stations are grouped by region) one
    ``np.add.reduceat`` over each region's run of stations; otherwise a float ``bincount`` (exact below
    2**53 votes per cell)."""
    if region_index.size and np.all(region_index[1:] >= region_index[:-1]):
        starts = np.searchsorted(region_index, np.arange(n_regions + 1))
        present = starts[1:] > starts[:-1]
        totals = np.zeros((n_regions,) + counts.shape[1:], np.int64)
        totals[present] = np.add.reduceat(counts, starts[:-1][present], axis=0)
        return totals
    n_options = counts.shape[1] if counts.ndim == 2 else 1
    cells = (region_index[:, None] * n_options + np.arange(n_options)).ravel()
    totals = np.bincount(cells, weights=counts.ravel(), minlength=n_regions * n_options)
    return totals.astype(np.int64).reshape((n_regions,) + counts.shape[1:])


def _block_arrays(run: Run, replicates: range, points: list[int]) -> dict[str, np.ndarray]:
    """Arrays for one block of the sweep points ``points`` (flat indices into ``run.plans``), with leading
    (point, scenario, replicate) axes."""
    electorate = run.electorate
    n_points, n_scenarios, n_reps = len(points), len(run.scenario_names), len(replicates)
    n_options = len(run.config.options)
    n_regions = len(electorate.region_names)
    lead = (n_points, n_scenarios, n_reps)
    full = run.keep == "full"
    out = {
        "total_ballots": np.empty(lead, np.int64),
        "total_votes": np.empty(lead + (n_options,), np.int64),
        "region_ballots": np.empty(lead + (n_regions,), np.int64),
        "region_votes": np.empty(lead + (n_regions, n_options), np.int64),
    }
    truth = full and bool(run.config.manipulation)  # ground truth only where something can be manipulated
    if full:
        stations = lead + (electorate.n_stations,)
        out.update(ballots=np.empty(stations, np.int64), votes=np.empty(stations + (n_options,), np.int64))
    if truth:
        out.update(manipulated_votes=np.empty(stations + (n_options,), np.int64),
                   voter_votes=np.empty(stations + (n_options,), np.int64),
                   added_ballots=np.empty(stations, np.int64), manipulated=np.empty(stations, np.int64))
    plans = [run.plans[point] for point in points]
    timeline = plans[0].timeline is not None
    if timeline:
        times = (len(plans[0].timeline.report_times),)
        out["timeline_ballots"] = np.empty(lead + (n_regions,) + times, np.int64)
        if full:
            out["station_timeline_ballots"] = np.empty(stations + times, np.int64)
        if truth:
            out["timeline_added_ballots"] = np.empty(stations + times, np.int64)
    honest_plans = [[scenario.honest or plan for scenario in plan.scenarios] for plan in plans]
    honest_keys = [[world.config.turnout.model_dump_json() + world.config.preferences.model_dump_json()
                    for world in worlds] for worlds in honest_plans]
    for r, replicate in enumerate(replicates):
        honest_counts = {}  # sweep points and scenarios with the same honest parameters share the honest draw
        for p, plan in enumerate(plans):
            for s, scenario in enumerate(plan.scenarios):
                key = honest_keys[p][s]
                if key not in honest_counts:
                    honest_counts[key] = honest_replicate(honest_plans[p][s], electorate, run.seed, replicate,
                                                          run.kernel)
                honest_ballots, honest_votes = honest_counts[key]
                if timeline:
                    timeline_key = (key, plan.timeline.key)
                    if timeline_key not in honest_counts:
                        honest_counts[timeline_key] = honest_timeline(plan.timeline, electorate, run.seed, replicate,
                                                                      honest_ballots)
                additions = []
                ballots, votes, added, touched, voter_votes = manipulate(
                    scenario, plan.config, electorate, run.seed, replicate, honest_ballots, honest_votes, additions)
                at = (p, s, r)
                if timeline:
                    added_bins = added_timeline(plan.timeline, electorate, run.seed, replicate, additions)
                    station_timeline = cumulative(honest_counts[timeline_key] + added_bins)
                    out["timeline_ballots"][at] = region_totals(electorate.region_index, station_timeline, n_regions)
                    if full:
                        out["station_timeline_ballots"][at] = station_timeline
                    if truth:
                        out["timeline_added_ballots"][at] = cumulative(added_bins)
                out["region_ballots"][at] = region_totals(electorate.region_index, ballots, n_regions)
                out["region_votes"][at] = region_totals(electorate.region_index, votes, n_regions)
                out["total_ballots"][at] = out["region_ballots"][at].sum()
                out["total_votes"][at] = out["region_votes"][at].sum(axis=0)
                if full:
                    out["ballots"][at], out["votes"][at] = ballots, votes
                if truth:
                    out["manipulated_votes"][at] = votes - honest_votes
                    out["added_ballots"][at], out["manipulated"][at] = added, touched
                    out["voter_votes"][at] = voter_votes
    return out


def block_dataset(run: Run, replicates: range, point: int | None = None) -> xr.Dataset:
    """The Dataset of one block of replicates: all sweep points and scenarios, or with ``point`` (a flat
    index into the sweep, C order) that sweep point alone, its sweep dims of length 1."""
    points = list(range(len(run.plans))) if point is None else [point]
    arrays = _block_arrays(run, replicates, points)
    lead_dims = list(run.config.sweep) + [schema.SCENARIO]
    lead_shape = (run.sweep_shape if point is None else (1,) * len(run.sweep_shape)) + (len(run.scenario_names),)
    data_vars = {}
    for name, values in arrays.items():
        dims = lead_dims + list(schema.VARIABLES[name][0])
        data_vars[name] = (dims, values.reshape(lead_shape + values.shape[2:]))
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
        schema.SCENARIO: run.scenario_names,
    }
    if run.config.timeline is not None:
        coords[schema.REPORT_TIME] = run.config.timeline.report_times()
    for path, values in run.config.sweep.items():
        coords[path] = np.asarray(values, dtype=float)
    data_vars = {
        "registered": ((schema.STATION,), electorate.registered),
        "region_registered": ((schema.REGION_NAME,), electorate.region_registered()),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=provenance(run))


def kernel_draws_record(run: Run) -> str:
    """JSON: what drew the honest elections of each sweep point (flat C-order index) and scenario, as
    ``"point/scenario"`` keys (:func:`kernel_draws`), and what drew the manipulations and the voting timeline
    (the same whatever the kernel: they are applied after the honest draw)."""
    honest = {f"{point}/{scenario.name}": kernel_draws(scenario.honest or plan, run.kernel)
              for point, plan in enumerate(run.plans) for scenario in plan.scenarios}
    return json.dumps({"honest": honest, "manipulation": MANIPULATION_DRAWS, "timeline": "numpy"})


#: what draws the manipulations, whatever the kernel (recorded in ``kernel_draws``)
MANIPULATION_DRAWS = "numpy; compiled samplers for the binomials of coerced_turnout and ballot_stuffing"


def provenance(run: Run) -> dict:
    import scipy

    text = run.config.to_toml()
    return {
        KIND_ATTR: SIMULATION,
        "title": run.config.title,
        "simkit_config": text,
        "simkit_config_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "electorate_sha256": run.electorate.sha256,
        "seed": run.seed,
        "replicates": run.replicates,
        "keep": run.keep,
        "leader": run.config.leader,
        "station_group_size": streams.STATION_GROUP_SIZE,
        "kernel": run.kernel,
        "kernel_draws": kernel_draws_record(run),
        "execution": "local",
        "simkit_version": __version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "xarray_version": xr.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"count_matched": run.count_matched} if run.count_matched else {}),
    }


def annotate(ds: xr.Dataset, config: Config | None = None) -> xr.Dataset:
    """Units and descriptions from the schema on every known variable; with the config, the meaning of
    each bit of ``manipulated``."""
    for name, (_, units, description) in schema.VARIABLES.items():
        if name in ds:
            ds[name].attrs.update(units=units, description=description)
    if config is not None and "manipulated" in ds:
        ds["manipulated"].attrs["bits"] = "; ".join(
            f"bit {i}: {block.name} ({block.kind})" for i, block in enumerate(config.manipulation)) or "none"
    return ds


#: below this many station-draws (stations × replicates × sweep points × scenarios) a run stays in one
#: process: starting workers would cost more than it saves
PARALLEL_MIN_DRAWS = 2_000_000

def iter_blocks(run: Run, block_size: int | None = None, workers: int | None = None) -> Iterator[xr.Dataset]:
    """Block Datasets in replicate order, computed by ``workers`` threads or processes
    (:func:`simkit.engine.parallel.choose`: threads when the fused numba kernel draws every honest election, for it
    releases the GIL and the rest of a block is a few percent of its time; processes otherwise, for numpy's
    binomial and multinomial samplers hold the GIL), at most ``2 × workers + 1`` blocks in flight. Small runs
    (:data:`PARALLEL_MIN_DRAWS`) stay in this process. ``block_size`` None: as many replicates as fit in
    :data:`simkit.engine.resources.BLOCK_BYTES`, so that memory is bounded by the block whatever the run's replicates,
    sweep points and scenarios. The values do not depend on ``block_size`` or ``workers``."""
    block_size = resources.block_size(run, block_size)
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    blocks = chunks(run.replicates, block_size)
    draws = run.replicates * run.electorate.n_stations * len(run.plans) * len(run.scenario_names)
    where, workers = ("serial", 1) if len(blocks) == 1 else choose(
        workers, draws, PARALLEL_MIN_DRAWS, releases_gil=all(fused(plan, run.kernel) for plan in run.plans))
    with KeyedPool(block_dataset, run, where, workers) as pool:
        yield from pool.map(blocks)


def annotated_blocks(run: Run, block_size: int | None = None, workers: int | None = None,
                     progress: bool = False) -> Iterator[xr.Dataset]:
    """:func:`iter_blocks` with units and descriptions (:func:`annotate`), counted on a progress bar on stderr
    when ``progress`` (shown for runs longer than two seconds)."""
    with progress_bar(run.replicates, enabled=progress) as bar:
        for block in iter_blocks(run, block_size, workers):
            bar.update(block.sizes[schema.REPLICATE])
            yield annotate(block, run.config)


def simulate_run(run: Run, block_size: int | None = None, workers: int | None = None,
                 progress: bool = False) -> xr.Dataset:
    """A prepared run (:func:`prepare`) simulated in memory: the Dataset of :func:`simulate`."""
    parts = list(annotated_blocks(run, block_size, workers, progress))
    dynamic = xr.concat(parts, dim=schema.REPLICATE) if len(parts) > 1 else parts[0]
    return annotate(xr.merge([static_dataset(run), dynamic], combine_attrs="override"), run.config)


def world_votes(run: Run, point: int, scenario: int, workers: int | None = None,
                progress: Callable[[int], object] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One world of ``run`` (flat sweep point ``point``, scenario index ``scenario``), every replicate, block
    by block, keeping only what polls sample: ``votes`` (replicate, station, option) as counted and ``voters``
    (same shape) the choices of its real voters (None when they are the votes), both of
    :func:`simkit.io.count_dtype` (int16 for the flagship's stations: no count exceeds its station's register).
    The numbers are those of ``votes`` and ``voter_votes`` of the whole run at that world (same streams); the
    voting day (``[timeline]``, its own streams) is not drawn. ``progress`` is called with each block's replicates."""
    plan = run.plans[point]
    world = dataclasses.replace(plan, scenarios=(plan.scenarios[scenario],), timeline=None)
    alone = dataclasses.replace(run, config=plan.config, plans=[world], keep="full")
    shape = (run.replicates, run.electorate.n_stations, len(run.config.options))
    dtype = io.count_dtype(run.electorate.registered)
    votes = np.empty(shape, dtype)
    voters = np.empty(shape, dtype) if world.scenarios[0].blocks else None
    same = True  # whether the voters' choices are the votes (compared block by block: no array of the world)
    for block in iter_blocks(alone, workers=workers):
        at = slice(int(block[schema.REPLICATE][0]), int(block[schema.REPLICATE][-1]) + 1)
        block_votes = block["votes"].values[0]
        votes[at] = block_votes
        if voters is not None:
            block_voters = block["voter_votes"].values[0]
            voters[at] = block_voters
            same = same and np.array_equal(block_voters, block_votes)
        if progress is not None:
            progress(at.stop - at.start)
    return votes, (None if same else voters)


def simulate(cfg: Config, replicates: int | None = None, seed: int | None = None, keep: str | None = None,
             block_size: int | None = None, workers: int | None = None, progress: bool = False,
             kernel: str | None = None) -> xr.Dataset:
    """Simulate ``replicates`` elections of ``cfg`` in memory and return the Dataset (see :mod:`simkit.schema`).
    ``kernel``: "numba" (default) or "numpy" (see :mod:`simkit.engine.kernels`); recorded in the attrs.
    Count-matched scenarios are solved first (:func:`prepare`)."""
    return simulate_run(prepare(cfg, replicates, seed, keep, kernel, workers=workers), block_size, workers, progress)
