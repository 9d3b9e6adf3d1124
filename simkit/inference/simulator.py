"""The inference's simulator: one election of the config's chosen scenario with the inferred fields set,
reduced to the statistics of :mod:`simkit.inference.statistics`; and the runner that maps it over many
parameter vectors, in this process, in worker processes or on a dask cluster.

Random streams: simulation ``index`` of ``stage`` runs the engine with the seed drawn from
``SeedSequence(seed, spawn_key=streams.inference_simulation_key(stage, index))`` (:func:`simulation_seed`), so where
it runs never changes its result.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr
from pydantic import ValidationError

from simkit import streams
from simkit.engine import run as engine
from simkit.forensics import station_statistics
from simkit.polls.designs import Resolved, design_problems, pps_design_problem, proposed_design, resolve_design
from simkit.polls.elections import SimulatedElections
from simkit.config.core import Config, Observed, ObservedStations
from simkit.config.inference import InferConfig, apply_values
from simkit.electorate.build import Electorate, electorate_of
from simkit.engine.timeline import added_timeline, honest_timeline
from simkit.model.exit_poll import PollDesign, draw_exit_poll
from simkit.model.timeline import cumulative
from simkit.engine.parallel import KeyedPool, choose
from simkit.progress import progress_bar
from .statistics import Statistics, compute_statistics


class Simulator:
    """``simulator(values (n_param,), seed) -> statistics (n_stat,)``: one election of the config's chosen
    scenario with the inferred fields set; NaN statistics when the values make an invalid config."""

    def __init__(self, cfg: Config, blocks: list[InferConfig], statistics: Statistics, scenario: str,
                 kernel: str = engine.DEFAULT_KERNEL, electorate: Electorate | None = None):
        raw = cfg.raw()
        for key in ("sweep", "infer", "inference"):
            raw.pop(key, None)
        chosen = next(s for s in cfg.scenarios() if s.name == scenario)
        raw["scenario"] = [chosen.model_dump()]
        self.raw = raw
        self.blocks = blocks
        self.statistics = statistics
        self.kernel = kernel
        self.electorate = electorate if electorate is not None else electorate_of(cfg)
        self.region_registered = self.electorate.region_registered()
        self.poll_election = None
        if statistics.polls:
            self.poll_election = self._mean_election(cfg)

    def _mean_election(self, cfg: Config) -> SimulatedElections:
        """The electorate as :func:`simkit.polls.designs.resolve_design` needs it (register and expected ballots per
        station, from one honest election at the config's values: design feasibility depends on them only)."""
        plan = engine.make_plan(cfg, self.electorate)
        _, votes = engine.honest_replicate(plan, self.electorate, 0, 0)
        return SimulatedElections(xr.DataArray(votes[None], dims=("replicate", "station", "option")), self.electorate.registered,
                        self.electorate.region_index, np.array([0]))

    def config_at(self, values: np.ndarray) -> Config:
        """The config with the inferred fields at ``values`` (n_param,); pydantic's ValidationError, KeyError
        or ZeroDivisionError when they make an invalid one."""
        return Config.model_validate(apply_values(self.raw, self.blocks, values))

    def resolved_polls(self, cfg: Config, resolve=proposed_design) -> list[Resolved | None]:
        """Each [[exit_poll]] of ``cfg`` that a statistic reads, resolved as drawn (biases included) by ``resolve``:
        :func:`simkit.polls.designs.proposed_design` (a claimed size the electorate cannot supply replaced by the
        nearest feasible design, unchecked against the stations that hold voters) or its checked
        :func:`~simkit.polls.designs.resolve_design`; None for a poll no statistic reads."""
        read = self.statistics.poll_indices
        return [resolve(poll, cfg.option_names, cfg.invalid_option_name, self.poll_election, unbiased=False)
                if index in read else None for index, poll in enumerate(cfg.exit_poll)]

    def poll_designs(self, cfg: Config) -> list[PollDesign | None]:
        """The design of each [[exit_poll]] of ``cfg`` that a statistic reads, as drawn, None for a poll no
        statistic reads; InputError (``polls: field: problem``) for a design drawn proportional to size at more
        stations than hold voters (:func:`simkit.polls.designs.resolve_design`)."""
        return [None if polled is None else polled.design for polled in self.resolved_polls(cfg, resolve_design)]

    def poll_shares(self, cfg: Config, votes: np.ndarray, seed: int) -> list[np.ndarray]:
        """Each [[exit_poll]] that a statistic reads drawn from this election's ``votes`` (station, option) as
        configured (:meth:`poll_designs`): its estimated shares over valid options (None for a poll no statistic
        reads: not drawn; each poll draws from its own stream, so the others do not change)."""
        shares = []
        for index, design in enumerate(self.poll_designs(cfg)):
            if design is None:
                shares.append(None)
                continue
            rng = streams.generator(seed, *streams.exit_poll_key(0, index))
            shares.append(draw_exit_poll(votes, self.electorate.registered, design, rng,
                                         self.electorate.region_index).shares)
        return shares

    def design_problems(self, raw: dict) -> list[str]:
        """Problems (``dotted.field: problem``) of the polls that the statistics read, in raw config data ``raw``
        (this simulator's config with the inferred fields set): their designs against the register
        (:func:`simkit.polls.designs.design_problems`), then as a draw resolves them (:meth:`resolved_polls`): the
        first poll's :func:`simkit.polls.designs.pps_design_problem`."""
        cfg = Config.model_validate(raw)
        problems = design_problems(cfg, [cfg.exit_poll[index] for index in self.statistics.poll_indices],
                                   self.electorate)
        if problems:
            return problems
        drawn = (pps_design_problem(poll, polled.design, self.poll_election, polled.note)
                 for poll, polled in zip(cfg.exit_poll, self.resolved_polls(cfg)) if polled is not None)
        problem = next((problem for problem in drawn if problem is not None), None)
        return [] if problem is None else [problem]

    def __call__(self, values: np.ndarray, seed: int) -> np.ndarray:
        try:
            cfg = self.config_at(values)
        except (ValidationError, KeyError, ZeroDivisionError):
            return np.full(len(self.statistics.names), np.nan)
        plan = engine.make_plan(cfg, self.electorate)
        timeline = None
        if self.statistics.timeline:
            ballots, votes, voters, timeline = timeline_replicate(plan, cfg, self.electorate, seed, self.kernel)
        else:
            ballots, votes, voters = manipulated_replicate(plan, cfg, self.electorate, seed, self.kernel)
        polls = self.poll_shares(cfg, voters, seed) if self.statistics.polls else None
        return compute_statistics(self.statistics, ballots, votes, self.electorate.region_index,
                                  self.electorate.registered, self.region_registered, polls, timeline)


def manipulated_replicate(plan, cfg: Config, electorate, seed: int, kernel: str = engine.DEFAULT_KERNEL
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One election of the plan's (single) scenario: ``ballots`` (station,) and ``votes`` (station, option) as
    counted, and ``voters`` (station, option), the ballots of real voters, whom exit polls interview (see
    :func:`simkit.engine.run.manipulate`); ``kernel`` draws the honest count (:func:`simkit.engine.run.honest_replicate`)."""
    ballots, votes = engine.honest_replicate(plan, electorate, seed, 0, kernel)
    ballots, votes, _, _, voters = engine.manipulate(plan.scenarios[0], cfg, electorate, seed, 0, ballots, votes)
    return ballots, votes, voters


def timeline_replicate(plan, cfg: Config, electorate, seed: int, kernel: str = engine.DEFAULT_KERNEL
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`manipulated_replicate` and the election's timeline: cumulative ballots (region, report + 1), the
    honest voters' arrivals and each block's added ballots drawn as the engine draws them."""
    honest_ballots, honest_votes = engine.honest_replicate(plan, electorate, seed, 0, kernel)
    additions = []
    ballots, votes, _, _, voters = engine.manipulate(plan.scenarios[0], cfg, electorate, seed, 0, honest_ballots,
                                                     honest_votes, additions)
    bins = honest_timeline(plan.timeline, electorate, seed, 0, honest_ballots) + added_timeline(
        plan.timeline, electorate, seed, 0, additions)
    timeline = engine.region_totals(electorate.region_index, cumulative(bins), len(electorate.region_names))
    return ballots, votes, voters, timeline


def simulation_seed(seed: int, stage: int, index: int) -> int:
    """The engine seed of simulation ``index`` of ``stage``: from SeedSequence(seed,
    spawn_key=streams.inference_simulation_key(stage, index))."""
    key = streams.inference_simulation_key(stage, index)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


def simulate_chunk(simulator: Simulator, chunk: tuple[np.ndarray, list[int]]) -> np.ndarray:
    """Statistics (n, n_stat) of the chunk's (values (n, n_param), seeds (n,)) simulations."""
    values, seeds = chunk
    return np.array([simulator(v, s) for v, s in zip(values, seeds)]).reshape(len(seeds), -1)


class Simulations:
    """Runs a :class:`Simulator` over many parameter vectors: on the workers of a dask ``client`` (the
    simulator is sent to each once), else on the shared parallel machinery
    (:class:`simkit.engine.parallel.KeyedPool`: ``workers`` processes, or this one when ``workers`` is 1 or
    this is a daemonic process), whose keys are chunks of (values, seeds). Each simulation's seed is keyed by
    its (stage, index) (:func:`simulation_seed`: :func:`simkit.streams.inference_simulation_key`), so where a
    simulation runs does not change its result. ``count`` is the number of simulations run so
    far; ``bar``: a progress bar over each generation's simulations (on a terminal). A context manager: the
    workers stop on exit, at once when an error or an interruption unwinds."""

    def __init__(self, simulator: Simulator, workers: int, client=None, bar: bool = False):
        self.simulator = simulator
        self.bar = bar
        self.client = client
        self.remote = client.scatter(simulator, broadcast=True) if client is not None else None
        self.pool = None
        if client is None:
            # every simulation is a whole election (tens of ms of Python and numpy): worth a process from 2 on
            where, workers = choose(workers, work=workers, min_work=2)
            self.pool = KeyedPool(simulate_chunk, simulator, where, workers)
        self.workers = workers if client is None else max(1, len(client.scheduler_info().get("workers", {})))
        self.count = 0

    def run(self, values: np.ndarray, seed: int, stage: int) -> np.ndarray:
        """Statistics (n, n_stat) of simulations of ``values`` (n, n_param); each seed from
        :func:`simulation_seed` (:func:`simkit.streams.inference_simulation_key`)."""
        seeds = [simulation_seed(seed, stage, index) for index in range(len(values))]
        self.count += len(values)
        size = max(1, math.ceil(len(values) / (4 * self.workers)))
        chunks = [(values[i:i + size], seeds[i:i + size]) for i in range(0, len(values), size)]
        if self.client is not None:
            futures = self.client.map(simulate_chunk, [self.remote] * len(chunks), chunks, pure=False)
            return np.concatenate(self.client.gather(futures))
        parts = []
        with progress_bar(len(values), enabled=self.bar, unit="simulation") as shown:
            for part in self.pool.map(chunks):
                parts.append(part)
                shown.update(len(part))
        return np.concatenate(parts)

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes; ``wait=False`` (an error or an interruption) terminates them at once."""
        if self.pool is not None:
            self.pool.close(wait)
            self.pool = None

    def __enter__(self) -> Simulations:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)


def simulated_observed(cfg: Config, blocks: list[InferConfig], values, seed: int, scenario: str | None = None
                       ) -> Config:
    """``cfg`` with ``[observed]`` replaced by one simulated election at the given parameter ``values``
    (n_param,): counts, register, regional turnouts (exact fractions; none for a region without voters) and, when
    ``cfg`` has ``[observed.stations]``, the same station statistics of the simulated stations; each
    ``[[exit_poll]]``'s published shares drawn from it. For recovery and calibration checks."""
    scenario = scenario or cfg.scenarios()[-1].name
    polls = tuple((i, 0) for i in range(len(cfg.exit_poll)))  # any entry: the simulator then draws the polls
    simulator = Simulator(cfg, blocks, Statistics((), (), np.zeros(0), np.zeros(0), (), None, (), polls), scenario)
    run_cfg = simulator.config_at(np.asarray(values, float))
    plan = engine.make_plan(run_cfg, simulator.electorate)
    ballots, votes, voters = manipulated_replicate(plan, run_cfg, simulator.electorate, seed)
    electorate = simulator.electorate
    if cfg.exit_poll:
        published = [dict(zip(cfg.valid_option_names, map(float, shares)))
                     for shares in simulator.poll_shares(run_cfg, voters, seed)]
        cfg = cfg.model_copy(update={"exit_poll": [poll.model_copy(update={"published": figures})
                                                   for poll, figures in zip(cfg.exit_poll, published)]})
    region_ballots = engine.region_totals(electorate.region_index, ballots, len(electorate.region_names))
    stations = cfg.observed.stations
    if stations is not None:  # the same statistics, now of the simulated stations
        names = tuple(stations.statistics)
        computed = station_statistics.compute(names, electorate.registered, ballots,
                                              votes[:, cfg.option_names.index(cfg.leader)])
        stations = ObservedStations(statistics=list(names), values=dict(zip(names, map(float, computed))))
    observed = Observed(registered=int(electorate.registered.sum()), ballots=int(ballots.sum()),
                        votes=dict(zip(cfg.option_names, (int(v) for v in votes.sum(axis=0)))),
                        regional_turnout={name: float(b / r) for name, b, r in
                                          zip(electorate.region_names, region_ballots, simulator.region_registered)
                                          if r > 0},
                        stations=stations,
                        note=f"simulated at {dict(zip([b.path for b in blocks], map(float, values)))}, seed {seed}")
    return cfg.model_copy(update={"observed": observed})
