"""Simulation-based inference: ABC with sequential Monte Carlo on the summaries of the published evidence.

Which values of the ``[[infer]]`` fields (coerced share, stuffing rates, honest turnout…) are consistent
with the config's ``[observed]`` figures? The engine is the simulator: each particle is one simulated
election (one replicate, its own seed).

The method, in order (every constant is a setting of :class:`~simkit.config_infer.InferenceSettings`):

1. **Statistics** (:func:`statistic_names`): national turnout (ballots / registered), each valid option's
   share of valid votes (``share.<option>``), the invalid share of ballots (``invalid``), each region's
   turnout (``regional_turnout.<region>``), as far as ``[observed]`` gives them, and each ``[[exit_poll]]``'s
   published shares (``poll.<name>.<option>``; the poll is drawn from the simulated stations as configured,
   misreporting included, by :mod:`simkit.model.exit_poll`), and, where ``[observed.stations]`` gives
   station-level evidence, its :mod:`simkit.forensics.station_statistics` (``stations.<id>``: moments of the
   station turnout and leader share, the fingerprint's high corner, the share of integer percentages),
   computed on the observed returns and on each simulated election's stations. Fractions in [0, 1]
   (a correlation in [-1, 1]).
2. **Noise scales.** ``simulation_noise``: the SD of each statistic across ``noise_replicates``
   simulations at the prior median (station-level dispersion and binomial draws: what one election varies
   by). ``observation_noise``: what the published figure is uncertain by, given per statistic group in
   ``[inference]``; a count of millions is exact, so the default is the rounding of the published figure
   (an official integer count: 0; a share published to 0.01 percentage point: 0.0001 / sqrt(12); a poll's
   share to 0.1 point: 0.001 / sqrt(12), its sampling error being simulated).
3. **Summaries**: Fearnhead & Prangle (2012) semi-automatic ABC. Statistics are standardised by
   sqrt(simulation² + observation²) noise; a linear regression of each parameter (on its unconstrained
   scale) on them, fitted on the prior pilot, gives one summary per parameter (``"regression"``). A
   linear projection ignores every direction of the statistics outside its span, so a particle can
   match the projections while missing the count itself; ``"regression+national"`` (default) therefore
   keeps the national count's standardised statistics (turnout, shares, invalid) as summaries too.
   ``"raw"`` uses every standardised statistic.
4. **ABC-SMC** (population Monte Carlo, Beaumont et al. 2009, with an ESS-adaptive tolerance, Del Moral,
   Doucet & Jasra 2012): a Gaussian kernel whose SD for summary k is
   ``sqrt(observation_k² + (ε simulation_k)²)``. Generation 0 is the prior pilot. Each next tolerance ε
   is chosen so that reweighting the current particles keeps ``ess_fraction`` of their effective sample
   size; new particles are drawn from the reweighted population moved by a Gaussian with its
   optimal local covariance (Filippi et al. 2013, on the unconstrained scale) and weighted
   prior × kernel / proposal. The run ends at the
   generation whose ε reaches ``final_tolerance`` (or after ``max_generations``, or before a generation
   whose ESS falls below ``min_ess``). ``adjustment = "linear"`` (off by default) applies the
   Beaumont, Zhang & Balding (2002) regression adjustment to the final particles: it treats the whole
   kernel as ABC slack, so where the evidence has real observation noise it is overconfident (measured:
   90% intervals covered the truth in 42 of 60 calibration data sets).

   Reading the tolerance: the ABC posterior is the exact posterior of a model whose summaries carry an
   extra Gaussian error of ε × their simulation noise (Wilkinson 2013). At ε = 0.25 the summaries'
   likelihood is widened by a factor sqrt(1 + ε²) ≈ 1.03: intervals are slightly conservative, never
   overconfident on that account.
5. **Output** (:class:`InferenceResult`): posterior draws (chain, draw) per parameter, named by its dotted
   path (ArviZ reads ``result.posterior`` as its ``posterior`` group); posterior predictive simulations
   per statistic with their p-values; a summary per parameter (prior and posterior 90% intervals,
   ``informed`` when the posterior interval is narrower than 0.8 × the prior's).

Random streams: every simulation's engine seed comes from ``SeedSequence(seed, spawn_key=(stage, index))``
(stage: noise, pilot, generation g, predictive); the proposal draws from their own keyed streams. Results
do not depend on the number of workers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from scipy.special import expit, logit, logsumexp

from simkit.engine import run as engine
from simkit.forensics import station_statistics
from simkit import streams
from simkit.config.core import Config, ConfigError, parse_config
from .config_infer import InferConfig, InferenceSettings, infer_problems
from simkit.electorate.build import build_electorate
from .paths import get_path, set_path
from .outputs import INFERENCE, KIND_ATTR
from simkit.engine.parallel import process_pool, stop_pool

INTERVAL = (0.05, 0.95)  #: the 90% intervals of the summary
INFORMED_RATIO = 0.8  #: informed when the posterior 90% interval is narrower than this × the prior's
#: default observation noise (SD, fraction units): official integer counts are exact; regional turnouts
#: published in percent with two decimals carry their rounding error, 0.0001 / sqrt(12)
#: exit polls' published shares: their sampling error is simulated; what remains is rounding to 0.1 point
#: station-level statistics computed from the published returns themselves are exact
DEFAULT_OBSERVATION_NOISE = {"turnout": 0.0, "shares": 0.0, "invalid": 0.0, "regional_turnout": 0.0001 / math.sqrt(12),
                             "polls": 0.001 / math.sqrt(12), "stations": 0.0, "timeline": 0.0001 / math.sqrt(12)}
#: stream stages of SeedSequence(seed, spawn_key=(stage, index))
NOISE_STAGE, PILOT_STAGE, PREDICTIVE_STAGE, PROPOSAL_STAGE, RESAMPLE_STAGE = 0, 1, 10_000, 20_000, 30_000
GENERATION_STAGE = 2  #: generation g ≥ 1 uses stage GENERATION_STAGE + g
#: statistic groups of the national count, kept as summaries of their own by ``regression+national``
NATIONAL_GROUPS = ("turnout", "shares", "invalid")
RIDGE = 1e-6  #: relative ridge of the summary regression (statistics are collinear: shares sum to 1)


# -- loading -----------------------------------------------------------------------------------------

def load_inference(path: str | Path, overrides: dict | None = None
                   ) -> tuple[Config, list[InferConfig], InferenceSettings]:
    """Read a config with ``[[infer]]`` blocks: (the config, its priors, its settings); ConfigError lists
    every problem, ``file: dotted.field: problem``."""
    from simkit.config.core import load_config

    cfg = load_config(path, overrides)
    return cfg, list(cfg.infer), cfg.inference or InferenceSettings()


# -- statistics ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Statistics:
    """Which statistics, from which totals: ``names`` (n_stat,), ``groups`` (n_stat,), the observed values
    (n_stat,) in [0, 1], and their observation noise SDs (n_stat,)."""

    names: tuple[str, ...]
    groups: tuple[str, ...]
    observed: np.ndarray
    observation_noise: np.ndarray
    valid_options: tuple[int, ...]
    invalid: int | None
    regions: tuple[int, ...]
    polls: tuple[tuple[int, int], ...] = ()  # (index of the [[exit_poll]], index among valid options)
    stations: tuple[str, ...] = ()  # ids of simkit.forensics.station_statistics
    leader: int = 0  # index of the leading option (for the station statistics)
    timeline: tuple[int, ...] = ()  # regions of [observed.timeline] (front-loading, then late-surge statistics)
    timeline_early: int = 0  # index of the front-loading test's early report


def statistic_names(cfg: Config, groups: list[str], region_names: list[str]) -> Statistics:
    """The statistics the evidence in ``[observed]`` supports, in a fixed order (turnout, shares, invalid,
    regional turnouts), with their observed values."""
    observed = cfg.observed
    names, kinds, values = [], [], []
    options = cfg.option_names
    invalid = cfg.invalid_index
    valid = [i for i in range(len(options)) if i != invalid]
    if "turnout" in groups and observed.ballots and observed.registered:
        names.append("turnout"), kinds.append("turnout"), values.append(observed.ballots / observed.registered)
    if "shares" in groups and all(options[i] in observed.votes for i in valid):
        total = sum(observed.votes[options[i]] for i in valid)
        for i in valid:
            names.append(f"share.{options[i]}"), kinds.append("shares"), values.append(observed.votes[options[i]] / total)
    if "invalid" in groups and invalid is not None and options[invalid] in observed.votes and observed.ballots:
        names.append("invalid"), kinds.append("invalid"), values.append(observed.votes[options[invalid]] / observed.ballots)
    regions = []
    if "regional_turnout" in groups:
        for index, region in enumerate(region_names):
            if region in observed.regional_turnout:
                regions.append(index)
                names.append(f"regional_turnout.{region}"), kinds.append("regional_turnout")
                values.append(observed.regional_turnout[region])
    polls = []
    if "polls" in groups:
        valid_names = [options[i] for i in valid]
        for index, poll in enumerate(cfg.exit_poll):
            for option, share in poll.published.items():
                if option in valid_names:
                    polls.append((index, valid_names.index(option)))
                    names.append(f"poll.{poll.name}.{option}"), kinds.append("polls"), values.append(share)
    stations = ()
    if "stations" in groups and observed.stations is not None:
        stations = tuple(observed.stations.statistics)
        names += [f"stations.{name}" for name in stations]
        kinds += ["stations"] * len(stations)
        values += list(observed_station_values(observed.stations))
    timeline, early = (), 0
    if "timeline" in groups and observed.timeline is not None and cfg.timeline is not None:
        timeline, early, timeline_values = observed_timeline_values(cfg, region_names)
        for test in ("front_loading", "late_surge"):
            names += [f"timeline.{test}.{region_names[r]}" for r in timeline]
            kinds += ["timeline"] * len(timeline)
            values += list(timeline_values[test])
    return Statistics(tuple(names), tuple(kinds), np.array(values, float), np.zeros(len(names)), tuple(valid),
                      invalid, tuple(regions), tuple(polls), stations, options.index(cfg.leader), timeline, early)


def observed_timeline_values(cfg: Config, region_names: list[str]) -> tuple[tuple[int, ...], int, dict]:
    """The regions of ``[observed.timeline]`` (indices into ``region_names``), the early report's index and
    the observed front-loading and late-surge statistics (:mod:`simkit.timeline.statistics`) by test."""
    from .timeline.statistics import RegionalTimeline, shares_of_final, statistics

    spec = cfg.observed.timeline
    regions = tuple(i for i, name in enumerate(region_names) if name in spec.turnout_percent)
    turnout = np.array([spec.turnout_percent[region_names[i]] for i in regions], float) / 100.0
    early = RegionalTimeline([], list(spec.reports), turnout, np.ones(len(regions)),
                             early_report=spec.early_report).early_index(cfg.timeline.opening, cfg.timeline.closing)
    return regions, early, statistics(shares_of_final(turnout), np.ones(len(regions)), early)


def observed_station_values(stations) -> np.ndarray:
    """The observed values of ``[observed.stations]``'s statistics: as given, or computed from its returns
    (loaded as ``simkit forensics`` loads them)."""
    from simkit.forensics.station_statistics import from_returns

    if stations.values:
        return np.array([stations.values[name] for name in stations.statistics], float)
    from simkit.electorate.returns import load_returns

    ds = load_returns(stations.returns, map_path=stations.map, preset=stations.preset)
    return from_returns(stations.statistics, ds)


def with_observation_noise(statistics: Statistics, noise: dict[str, float]) -> Statistics:
    """``statistics`` with observation noise SDs: a statistic's own name wins over its group's entry, which
    wins over :data:`DEFAULT_OBSERVATION_NOISE`."""
    unknown = [key for key in noise if key not in statistics.names and key not in statistics.groups
               and key not in DEFAULT_OBSERVATION_NOISE]
    if unknown:
        raise ConfigError([f"inference.observation_noise.{key}: not a statistic or statistic group "
                           f"(have {', '.join(DEFAULT_OBSERVATION_NOISE)} and the names {', '.join(statistics.names)})"
                           for key in unknown])
    sds = [noise.get(name, noise.get(group, DEFAULT_OBSERVATION_NOISE[group]))
           for name, group in zip(statistics.names, statistics.groups)]
    return replace(statistics, observation_noise=np.array(sds, float))


def compute_statistics(statistics: Statistics, ballots: np.ndarray, votes: np.ndarray, region_index: np.ndarray,
                       registered: np.ndarray, region_registered: np.ndarray,
                       poll_shares: list[np.ndarray] | None = None, timeline: np.ndarray | None = None) -> np.ndarray:
    """Statistics (n_stat,) of one simulated election: ``ballots`` (station,), ``votes`` (station, option);
    ``poll_shares`` per [[exit_poll]], its estimated shares (valid option,); ``timeline`` (region, report + 1)
    cumulative ballots by region (with the ``timeline`` group)."""
    total_ballots = ballots.sum()
    total_votes = votes.sum(axis=0)
    valid = list(statistics.valid_options)
    out: list[float] = []
    if "turnout" in statistics.groups:
        out.append(total_ballots / registered.sum())
    if "shares" in statistics.groups:
        out += list(total_votes[valid] / max(total_votes[valid].sum(), 1))
    if "invalid" in statistics.groups:
        out.append(total_votes[statistics.invalid] / max(total_ballots, 1))
    if statistics.regions:
        regions = list(statistics.regions)
        region_ballots = engine.region_totals(region_index, ballots, len(region_registered))
        out += list(region_ballots[regions] / region_registered[regions])
    out += [poll_shares[poll][option] for poll, option in statistics.polls]
    if statistics.stations:
        out += list(station_statistics.compute(statistics.stations, registered, ballots, votes[:, statistics.leader]))
    if statistics.timeline:
        from .timeline.statistics import shares_of_final

        shares = shares_of_final(timeline[list(statistics.timeline)].astype(float))
        out += list(shares[:, statistics.timeline_early]) + list(1.0 - shares[:, -2])
    return np.array(out, float)


# -- priors and the unconstrained scale -----------------------------------------------------------------

@dataclass(frozen=True)
class Prior:
    """One parameter's prior and its map to the unconstrained scale u (logit of the position within
    finite bounds; log of the distance to a single finite bound; identity otherwise)."""

    block: InferConfig

    @property
    def name(self) -> str:
        return self.block.path

    def to_value(self, u: np.ndarray) -> np.ndarray:
        low, high = self.block.bounds
        if math.isfinite(low) and math.isfinite(high):
            return low + (high - low) * expit(u)
        if math.isfinite(low):
            return low + np.exp(u)
        if math.isfinite(high):
            return high - np.exp(u)
        return np.asarray(u, float)

    def to_unconstrained(self, value: np.ndarray) -> np.ndarray:
        low, high = self.block.bounds
        value = np.asarray(value, float)
        if math.isfinite(low) and math.isfinite(high):
            return logit(np.clip((value - low) / (high - low), 1e-12, 1 - 1e-12))
        if math.isfinite(low):
            return np.log(np.maximum(value - low, 1e-300))
        if math.isfinite(high):
            return np.log(np.maximum(high - value, 1e-300))
        return value

    def log_density_unconstrained(self, u: np.ndarray) -> np.ndarray:
        """log prior density of u: log p(θ(u)) + log |dθ/du|."""
        low, high = self.block.bounds
        value = self.to_value(u)
        log_density = self.block.distribution().logpdf(value)
        if math.isfinite(low) and math.isfinite(high):
            jacobian = math.log(high - low) - np.logaddexp(0, u) - np.logaddexp(0, -u)
        elif math.isfinite(low) or math.isfinite(high):
            jacobian = u
        else:
            jacobian = 0.0
        return log_density + jacobian

    def interval(self) -> tuple[float, float]:
        """The prior's central 90% interval."""
        distribution = self.block.distribution()
        return float(distribution.ppf(INTERVAL[0])), float(distribution.ppf(INTERVAL[1]))


# -- the simulator ------------------------------------------------------------------------------------------

def apply_values(raw: dict, blocks: list[InferConfig], values: np.ndarray) -> dict:
    """Raw config data with each block's value applied (``set``, ``logit_shift`` or ``set_share``)."""
    for block, value in zip(blocks, values):
        value = float(value)
        if block.apply == "set":
            for path in [block.path, *block.also]:
                raw = set_path(raw, path, value)
        elif block.apply == "logit_shift":
            current = get_path(raw, block.path)
            if isinstance(current, dict):
                shifted = {key: float(expit(logit(share) + value)) for key, share in current.items()}
            else:
                shifted = float(expit(logit(current) + value))
            raw = set_path(raw, block.path, shifted)
        else:  # set_share: the other options keep their proportions
            option = block.path.rsplit(".", 1)[1]
            shares = dict(get_path(raw, "preferences.shares"))
            rest = sum(share for name, share in shares.items() if name != option)
            shares = {name: (value if name == option else share * (1 - value) / rest) for name, share in shares.items()}
            raw = set_path(raw, "preferences.shares", shares)
    return raw


class Simulator:
    """``simulator(values (n_param,), seed) -> statistics (n_stat,)``: one election of the config's chosen
    scenario with the inferred fields set; NaN statistics when the values make an invalid config."""

    def __init__(self, cfg: Config, blocks: list[InferConfig], statistics: Statistics, scenario: str):
        raw = cfg.raw()
        for key in ("sweep", "infer", "inference"):
            raw.pop(key, None)
        chosen = next(s for s in cfg.scenarios() if s.name == scenario)
        raw["scenario"] = [chosen.model_dump()]
        self.raw = raw
        self.blocks = blocks
        self.statistics = statistics
        self.electorate = build_electorate(cfg.electorate)
        self.region_registered = self.electorate.region_registered()
        self.poll_election = None
        if statistics.polls:
            self.poll_election = self._mean_election(cfg)

    def _mean_election(self, cfg: Config):
        """The electorate as :func:`simkit.polls.compare.resolve_design` needs it (register and expected ballots per
        station, from one honest election at the config's values: design feasibility depends on them only)."""
        from simkit.polls.compare import Election

        plan = engine.make_plan(cfg, self.electorate)
        _, votes = engine.honest_replicate(plan, self.electorate, 0, 0)
        return Election(xr.DataArray(votes[None], dims=("replicate", "station", "option")), self.electorate.registered,
                        self.electorate.region_index, np.array([0]))

    def poll_shares(self, cfg: Config, votes: np.ndarray, seed: int) -> list[np.ndarray]:
        """Each [[exit_poll]] drawn from this election's ``votes`` (station, option) as configured (biases
        included): its estimated shares over valid options."""
        from simkit.polls.compare import resolve_design
        from .model.exit_poll import draw_exit_poll

        options = cfg.option_names
        invalid = options[cfg.invalid_index] if cfg.invalid_index is not None else None
        shares = []
        for index, poll in enumerate(cfg.exit_poll):
            design = resolve_design(poll, options, invalid, self.poll_election, unbiased=False).design
            rng = streams.generator(seed, 0, streams.EXIT_POLL, index)
            shares.append(draw_exit_poll(votes, self.electorate.registered, design, rng,
                                         self.electorate.region_index).shares)
        return shares

    def __call__(self, values: np.ndarray, seed: int) -> np.ndarray:
        from pydantic import ValidationError

        try:
            cfg = Config.model_validate(apply_values(self.raw, self.blocks, values))
        except (ValidationError, KeyError, ZeroDivisionError):
            return np.full(len(self.statistics.names), np.nan)
        plan = engine.make_plan(cfg, self.electorate)
        timeline = None
        if self.statistics.timeline:
            ballots, votes, voters, timeline = timeline_replicate(plan, cfg, self.electorate, seed)
        else:
            ballots, votes, voters = manipulated_replicate(plan, cfg, self.electorate, seed)
        polls = self.poll_shares(cfg, voters, seed) if self.statistics.polls else None
        return compute_statistics(self.statistics, ballots, votes, self.electorate.region_index,
                                  self.electorate.registered, self.region_registered, polls, timeline)


def manipulated_replicate(plan, cfg: Config, electorate, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One election of the plan's (single) scenario: ``ballots`` (station,) and ``votes`` (station, option) as
    counted, and ``voters`` (station, option), the ballots of real voters, whom exit polls interview (see
    :func:`simkit.engine.run.manipulate`)."""
    ballots, votes = engine.honest_replicate(plan, electorate, seed, 0)
    ballots, votes, _, _, voters = engine.manipulate(plan.scenarios[0], cfg, electorate, seed, 0, ballots, votes)
    return ballots, votes, voters


def timeline_replicate(plan, cfg: Config, electorate, seed: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`manipulated_replicate` and the election's timeline: cumulative ballots (region, report + 1), the
    honest voters' arrivals and each block's added ballots drawn as the engine draws them."""
    from simkit.engine.timeline import added_timeline, honest_timeline
    from .model.timeline import cumulative

    honest_ballots, honest_votes = engine.honest_replicate(plan, electorate, seed, 0)
    additions = []
    ballots, votes, _, _, voters = engine.manipulate(plan.scenarios[0], cfg, electorate, seed, 0, honest_ballots,
                                                     honest_votes, additions)
    bins = honest_timeline(plan.timeline, electorate, seed, 0, honest_ballots) + added_timeline(
        plan.timeline, electorate, seed, 0, additions)
    timeline = engine.region_totals(electorate.region_index, cumulative(bins), len(electorate.region_names))
    return ballots, votes, voters, timeline


_WORKER_SIMULATOR: Simulator | None = None


def _init_worker(simulator: Simulator) -> None:
    global _WORKER_SIMULATOR
    _WORKER_SIMULATOR = simulator


def _simulate_with(simulator: Simulator, chunk: tuple[np.ndarray, list[int]]) -> np.ndarray:
    """Statistics (n, n_stat) of the chunk's (values (n, n_param), seeds (n,)) simulations."""
    values, seeds = chunk
    return np.array([simulator(v, s) for v, s in zip(values, seeds)])


def _simulate_chunk(chunk: tuple[np.ndarray, list[int]]) -> np.ndarray:
    return _simulate_with(_WORKER_SIMULATOR, chunk)


def simulation_seed(seed: int, stage: int, index: int) -> int:
    """The engine seed of simulation ``index`` of ``stage``: from SeedSequence(seed, spawn_key=(stage, index))."""
    return int(np.random.SeedSequence(seed, spawn_key=(stage, index)).generate_state(1, np.uint64)[0])


def _generator(seed: int, stage: int, index: int = 0) -> np.random.Generator:
    return streams.generator(seed, stage, index)


class Pool:
    """Runs a :class:`Simulator` over many parameter vectors: on the workers of a dask ``client`` (the
    simulator is sent to each once), else in ``workers`` processes (1: in this one). The seeds are keyed by
    position, so where a simulation runs does not change its result."""

    def __init__(self, simulator: Simulator, workers: int, client=None):
        self.simulator = simulator
        self.client = client
        self.remote = client.scatter(simulator, broadcast=True) if client is not None else None
        self.executor = (process_pool(workers, _init_worker, (simulator,))
                         if workers > 1 and client is None else None)
        self.workers = workers if client is None else max(1, len(client.scheduler_info().get("workers", {})))
        self.count = 0

    def run(self, values: np.ndarray, seed: int, stage: int) -> np.ndarray:
        """Statistics (n, n_stat) of simulations of ``values`` (n, n_param); seeds keyed by (stage, index)."""
        seeds = [simulation_seed(seed, stage, index) for index in range(len(values))]
        self.count += len(values)
        if self.executor is None and self.client is None:
            return _simulate_with(self.simulator, (values, seeds))
        size = max(1, math.ceil(len(values) / (4 * self.workers)))
        chunks = [(values[i:i + size], seeds[i:i + size]) for i in range(0, len(values), size)]
        if self.client is not None:
            futures = self.client.map(_simulate_with, [self.remote] * len(chunks), chunks, pure=False)
            return np.concatenate(self.client.gather(futures))
        return np.concatenate(list(self.executor.map(_simulate_chunk, chunks)))

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes; ``wait=False`` (an error or an interruption) terminates them at once."""
        if self.executor is not None:
            stop_pool(self.executor, wait)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)


# -- summaries and kernel --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summaries:
    """A linear map from statistics to summaries: ``summary = ((stats - observed) / scale) @ projection``
    (the observed data sit at 0), with each summary's simulation and observation noise SDs."""

    names: tuple[str, ...]
    scale: np.ndarray  # (n_stat,) sqrt(simulation² + observation²) noise of each statistic
    statistic_simulation_noise: np.ndarray  # (n_stat,) SD of each statistic across simulations at one value
    projection: np.ndarray  # (n_stat, n_summary)
    simulation_noise: np.ndarray  # (n_summary,)
    observation_noise: np.ndarray  # (n_summary,)

    def __call__(self, stats: np.ndarray, observed: np.ndarray) -> np.ndarray:
        return ((stats - observed) / self.scale) @ self.projection

    def kernel_sd(self, tolerance: float) -> np.ndarray:
        return np.sqrt(self.observation_noise ** 2 + (tolerance * self.simulation_noise) ** 2)


def build_summaries(kind: str, statistics: Statistics, noise_stats: np.ndarray, pilot_u: np.ndarray,
                    pilot_stats: np.ndarray, parameter_names: list[str]) -> Summaries:
    """Summaries from the noise simulations (R, n_stat) at one parameter value and the prior pilot
    (u (n, n_param), stats (n, n_stat)). Statistics that never vary and are observed exactly are dropped
    (scale 0: they carry no information)."""
    simulation_sd = noise_stats.std(axis=0, ddof=1)
    scale = np.sqrt(simulation_sd ** 2 + statistics.observation_noise ** 2)
    keep = scale > 0
    scale = np.where(keep, scale, 1.0)
    relative_observation = statistics.observation_noise / scale
    if kind == "raw":
        projection = np.diag(keep.astype(float))[:, keep]
        names = tuple(name for name, k in zip(statistics.names, keep) if k)
    else:
        ok = np.isfinite(pilot_stats).all(axis=1)
        z = ((pilot_stats[ok] - statistics.observed) / scale)[:, keep]
        design = np.column_stack([np.ones(len(z)), z])
        target = pilot_u[ok]
        gram = design.T @ design
        ridge = RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
        ridge[0, 0] = 0.0
        coefficients = np.linalg.solve(gram + ridge, design.T @ target)[1:]
        projection = np.zeros((len(scale), len(parameter_names)))
        projection[keep] = coefficients
        names = tuple(f"E[{name}]" for name in parameter_names)
        if kind == "regression+national":
            national = keep & np.isin(statistics.groups, NATIONAL_GROUPS)
            projection = np.hstack([projection, np.eye(len(scale))[:, national]])
            names += tuple(name for name, n in zip(statistics.names, national) if n)
    z_noise = (noise_stats - statistics.observed) / scale
    simulation_noise = (z_noise @ projection).std(axis=0, ddof=1)
    observation_noise = np.sqrt((relative_observation[:, None] ** 2 * projection ** 2).sum(axis=0))
    return Summaries(names, scale, simulation_sd, projection, simulation_noise, observation_noise)


def log_kernel(distances: np.ndarray, kernel_sd: np.ndarray) -> np.ndarray:
    """Gaussian log kernel (n,) of summaries' distances (n, n_summary) from the observed, up to a constant;
    -inf for failed simulations."""
    out = -0.5 * ((distances / kernel_sd) ** 2).sum(axis=1)
    return np.where(np.isfinite(out), out, -np.inf)


def effective_sample_size(log_weights: np.ndarray) -> float:
    """Kish's effective sample size of unnormalised log weights."""
    if not np.isfinite(log_weights).any():
        return 0.0
    w = np.exp(log_weights - logsumexp(log_weights))
    return float(1.0 / np.sum(w ** 2))


def next_tolerance(log_weights: np.ndarray, distances: np.ndarray, summaries: Summaries, current: float,
                   final: float, ess_fraction: float) -> float:
    """The tolerance below ``current`` at which reweighting the particles keeps ``ess_fraction`` of their
    ESS (bisection on the log scale), or ``final`` when even that keeps enough."""
    base = log_kernel(distances, summaries.kernel_sd(current)) if math.isfinite(current) else 0.0
    target = ess_fraction * effective_sample_size(log_weights)

    def ess_at(tolerance: float) -> float:
        return effective_sample_size(log_weights + log_kernel(distances, summaries.kernel_sd(tolerance)) - base)

    if ess_at(final) >= target:
        return final
    high = current if math.isfinite(current) else 1e6
    low = final
    for _ in range(60):
        middle = math.sqrt(low * high)
        if ess_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def _weighted_covariance(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = weights @ u
    centred = u - mean
    covariance = (centred * weights[:, None]).T @ centred
    return np.atleast_2d(covariance) + 1e-10 * np.eye(u.shape[1])


def systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (n,) drawn by systematic resampling of normalised ``weights``."""
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), len(weights) - 1)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles) -> np.ndarray:
    """Quantiles of a weighted sample (weights normalised), by interpolating the weighted CDF at midpoints."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    return np.interp(quantiles, cdf, v)


# -- the result ------------------------------------------------------------------------------------------------

@dataclass
class InferenceResult:
    """Posterior (ArviZ ``posterior`` layout), predictive checks, per-parameter summary and the run's trace."""

    posterior: xr.Dataset  # one variable per parameter, dims (chain, draw), named by its dotted path
    predictive: xr.Dataset  # per statistic: observed, predictive draws and interval, p-value
    parameters: list[dict]
    tolerance: dict
    generations: list[dict]
    particles: xr.Dataset  # the final generation: values (particle, parameter) and weights (particle,)
    simulations: int
    config_text: str = ""
    attrs: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"parameters": self.parameters, "tolerance": self.tolerance, "generations": self.generations,
                "simulations": self.simulations,
                "predictive": [{"statistic": str(s), "observed": float(self.predictive["observed"].sel(statistic=s)),
                                "low": float(self.predictive["low"].sel(statistic=s)),
                                "median": float(self.predictive["median"].sel(statistic=s)),
                                "high": float(self.predictive["high"].sel(statistic=s)),
                                "p_value": float(self.predictive["p_value"].sel(statistic=s))}
                               for s in self.predictive.statistic.values]}

    def to_dataset(self) -> xr.Dataset:
        """One Dataset for :func:`simkit.io.write_dataset`: the posterior variables (chain, draw), the
        predictive variables prefixed ``predictive_``, the final particles, and the JSON summary in attrs."""
        predictive = self.predictive.rename({name: f"predictive_{name}" for name in self.predictive.data_vars})
        particles = self.particles.rename({name: f"particle_{name}" for name in self.particles.data_vars})
        ds = xr.merge([self.posterior, predictive, particles], combine_attrs="drop")
        ds.attrs.update(self.attrs)
        ds.attrs["simkit_config"] = self.config_text
        ds.attrs["simkit_inference"] = json.dumps(self.to_json())
        ds.attrs[KIND_ATTR] = INFERENCE
        return ds

    def format(self) -> str:
        """Plain-language summary text."""
        kept = [g for g in self.generations if g["kept"]]
        lines = [f"ABC-SMC: {self.simulations:,} simulated elections, {len(kept)} generations after the prior pilot, "
                 f"final tolerance {self.tolerance['final']:.3g} x simulation noise, final ESS {kept[-1]['ess']:.0f}",
                 f"{'parameter':<40}{'prior 90%':>20}{'posterior median [90%]':>30}  informed"]
        for p in self.parameters:
            prior = f"[{p['prior_low']:.4g}, {p['prior_high']:.4g}]"
            post = f"{p['posterior_median']:.4g} [{p['posterior_low']:.4g}, {p['posterior_high']:.4g}]"
            lines.append(f"{p['name']:<40}{prior:>20}{post:>30}  {'yes' if p['informed'] else 'no (prior-like)'}")
        lines.append("posterior predictive (percent): statistic, observed, predictive median [90%], p")
        for row in self.to_json()["predictive"]:
            flag = "  <- misfit" if row["p_value"] < 0.05 else ""
            lines.append(f"  {row['statistic']:<36}{100 * row['observed']:>8.2f}{100 * row['median']:>9.2f} "
                         f"[{100 * row['low']:.2f}, {100 * row['high']:.2f}]  p={row['p_value']:.2f}{flag}")
        return "\n".join(lines)


# -- the algorithm ---------------------------------------------------------------------------------------------

def abc_smc(simulate_many: Callable[[np.ndarray, int], np.ndarray], priors: list[Prior], statistics: Statistics,
            settings: InferenceSettings, noise_at: np.ndarray,
            progress: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray, Summaries, float, list[dict]]:
    """Population Monte Carlo ABC with an ESS-adaptive tolerance.

    ``simulate_many(values (n, n_param), stage) -> statistics (n, n_stat)``; ``noise_at`` (n_param,) is the
    parameter value of the noise simulations. Returns the final particles' values (n, n_param) and
    normalised weights (n,), the summaries, the final tolerance and one record per generation.
    """
    say = progress or (lambda message: None)
    seed, n = settings.seed, settings.particles
    n_param = len(priors)
    noise_stats = simulate_many(np.tile(noise_at, (settings.noise_replicates, 1)), NOISE_STAGE)
    pilot_n = settings.pilot or n
    prior_rng = _generator(seed, PILOT_STAGE)
    pilot_values = np.column_stack([p.block.distribution().rvs(size=pilot_n, random_state=prior_rng) for p in priors])
    pilot_stats = simulate_many(pilot_values, PILOT_STAGE)
    u = np.column_stack([p.to_unconstrained(pilot_values[:, k]) for k, p in enumerate(priors)])
    summaries = build_summaries(settings.summaries, statistics, noise_stats, u, pilot_stats, [p.name for p in priors])
    distances = summaries(pilot_stats, statistics.observed)
    log_weights = np.where(np.isfinite(pilot_stats).all(axis=1), 0.0, -np.inf)
    tolerance = math.inf
    history = []
    for generation in range(1, settings.max_generations + 1):
        new_tolerance = next_tolerance(log_weights, distances, summaries, tolerance, settings.final_tolerance,
                                       settings.ess_fraction)
        base = log_kernel(distances, summaries.kernel_sd(tolerance)) if math.isfinite(tolerance) else 0.0
        parent_log_w = log_weights + log_kernel(distances, summaries.kernel_sd(new_tolerance)) - base
        parent_w = np.exp(parent_log_w - logsumexp(parent_log_w))
        covariances = local_covariances(u, parent_w)
        rng = _generator(seed, PROPOSAL_STAGE, generation)
        parents = rng.choice(len(u), size=n, p=parent_w)
        chol = np.linalg.cholesky(covariances[parents])
        new_u = u[parents] + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, n_param)))
        values = np.column_stack([p.to_value(new_u[:, k]) for k, p in enumerate(priors)])
        stats = simulate_many(values, GENERATION_STAGE + generation)
        new_distances = summaries(stats, statistics.observed)
        log_prior = sum(p.log_density_unconstrained(new_u[:, k]) for k, p in enumerate(priors))
        log_proposal = _log_mixture_density(new_u, u, parent_w, covariances)
        new_log_weights = log_prior + log_kernel(new_distances, summaries.kernel_sd(new_tolerance)) - log_proposal
        ess = effective_sample_size(new_log_weights)
        record = {"generation": generation, "tolerance": float(new_tolerance), "ess": ess, "simulations": n,
                  "kept": ess >= settings.min_ess or not history}
        history.append(record)
        say(f"generation {generation}: tolerance {new_tolerance:.3g}, ESS {ess:.0f} of {n}"
            + ("" if record["kept"] else f": below min_ess {settings.min_ess}, the previous generation is final"))
        if not record["kept"]:
            break
        u, distances, tolerance, log_weights = new_u, new_distances, new_tolerance, new_log_weights
        if tolerance <= settings.final_tolerance:
            break
    weights = np.exp(log_weights - logsumexp(log_weights))
    if settings.adjustment == "linear":
        u = regression_adjust(u, distances, weights)
    values = np.column_stack([p.to_value(u[:, k]) for k, p in enumerate(priors)])
    return values, weights, summaries, tolerance, history


def regression_adjust(u: np.ndarray, distances: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Beaumont, Zhang & Balding (2002) local-linear adjustment on the unconstrained scale: each particle
    u (n, n_param) moved by -B d, B the weighted least-squares slopes of u on the summaries' distances d
    (n, n_summary) from the observed. It removes the part of the tolerance's slack that is linear in the
    summaries; with fewer than 5 effective particles per coefficient it is skipped (too noisy to fit)."""
    ok = weights > 0
    if effective_sample_size(np.log(np.where(ok, weights, 1e-300))) < 5 * (distances.shape[1] + 1):
        return u
    design = np.column_stack([np.ones(ok.sum()), distances[ok]])
    weighted = design * weights[ok, None]
    slopes = np.linalg.lstsq(weighted.T @ design, weighted.T @ u[ok], rcond=None)[0][1:]
    adjusted = u.copy()
    adjusted[ok] = u[ok] - distances[ok] @ slopes
    return adjusted


def local_covariances(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-particle proposal covariances (n, d, d): the optimal local covariance of Filippi, Barnes, Cornebise &
    Stumpf (2013), sum_k w_k (u_k - u_i)(u_k - u_i)^T = Cov_w + (mean_w - u_i)(mean_w - u_i)^T, with ``weights``
    those of the particles at the new tolerance (narrower than Beaumont et al.'s 2 Cov in several dimensions)."""
    covariance = _weighted_covariance(u, weights)
    offset = weights @ u - u
    return covariance[None] + offset[:, :, None] * offset[:, None, :]


def _log_mixture_density(points: np.ndarray, centres: np.ndarray, weights: np.ndarray, covariances: np.ndarray
                         ) -> np.ndarray:
    """log of Σ_j w_j N(points_i; centres_j, covariances_j), shape (n_points,); ``covariances`` (n_centres, d, d)."""
    d = covariances.shape[-1]
    precisions = np.linalg.inv(covariances)
    _, log_dets = np.linalg.slogdet(covariances)
    log_w = np.log(np.maximum(weights, 1e-300)) - 0.5 * (log_dets + d * math.log(2 * math.pi))
    out = np.empty(len(points))
    for start in range(0, len(points), 128):
        diff = points[start:start + 128, None, :] - centres[None, :, :]
        quad = np.einsum("pci,cij,pcj->pc", diff, precisions, diff)
        out[start:start + 128] = logsumexp(log_w[None, :] - 0.5 * quad, axis=1)
    return out


def summarise_parameters(priors: list[Prior], values: np.ndarray, weights: np.ndarray) -> list[dict]:
    """Per parameter: the prior and posterior 90% intervals, the posterior median, ``informed``."""
    rows = []
    for k, prior in enumerate(priors):
        prior_low, prior_high = prior.interval()
        low, median, high = weighted_quantiles(values[:, k], weights, [INTERVAL[0], 0.5, INTERVAL[1]])
        rows.append({"name": prior.name, "prior_low": prior_low, "prior_high": prior_high,
                     "posterior_median": float(median), "posterior_low": float(low), "posterior_high": float(high),
                     "informed": bool(high - low < INFORMED_RATIO * (prior_high - prior_low))})
    return rows


def infer(cfg: Config, blocks: list[InferConfig] | None = None, settings: InferenceSettings | None = None, *,
          particles: int | None = None, seed: int | None = None, workers: int | None = None,
          progress: Callable[[str], None] | None = None, client=None) -> InferenceResult:
    """Posterior of the ``[[infer]]`` fields given the config's ``[observed]`` evidence (see the module doc).

    ``blocks`` and ``settings`` default to ``cfg.infer`` and ``cfg.inference``; ``particles``, ``seed`` and
    ``workers`` override the settings. ``client``: a ``dask.distributed.Client`` whose workers run the
    simulations instead of local processes (the result is the same).
    """
    blocks = blocks if blocks is not None else list(cfg.infer)
    settings = settings if settings is not None else (cfg.inference or InferenceSettings())
    updates = {k: v for k, v in {"particles": particles, "seed": seed, "workers": workers}.items() if v is not None}
    if updates:
        settings = InferenceSettings.model_validate({**settings.model_dump(), **updates})
    problems = infer_problems(cfg, blocks, settings) if blocks else ["infer: no [[infer]] blocks (nothing to infer)"]
    if problems:
        raise ConfigError(problems)
    scenario = settings.scenario or cfg.scenarios()[-1].name
    electorate = build_electorate(cfg.electorate)
    statistics = with_observation_noise(statistic_names(cfg, settings.statistics, list(electorate.region_names)),
                                        settings.observation_noise)
    if not statistics.names:
        raise ConfigError(["observed: none of the inference.statistics is given in [observed]"])
    priors = [Prior(block) for block in blocks]
    simulator = Simulator(cfg, blocks, statistics, scenario)
    median = np.array([p.block.distribution().ppf(0.5) for p in priors])
    with Pool(simulator, settings.workers, client) as pool:
        def simulate_many(values: np.ndarray, stage: int) -> np.ndarray:
            return pool.run(values, settings.seed, stage)

        values, weights, summaries, tolerance, history = abc_smc(simulate_many, priors, statistics, settings,
                                                                 median, progress)
        draw_rng = _generator(settings.seed, RESAMPLE_STAGE)
        draws = values[draw_rng.permutation(systematic_resample(weights, settings.particles, draw_rng))]
        predictive_values = draws[:settings.predictive]
        predictive_stats = simulate_many(predictive_values, PREDICTIVE_STAGE)
        simulations = pool.count
    noise_rng = _generator(settings.seed, PREDICTIVE_STAGE, 1)
    predictive_stats = predictive_stats + noise_rng.standard_normal(predictive_stats.shape) * statistics.observation_noise
    return _assemble(cfg, blocks, settings, priors, statistics, summaries, values, weights, draws, predictive_stats,
                     tolerance, history, simulations, scenario)


def _assemble(cfg, blocks, settings, priors, statistics, summaries, values, weights, draws, predictive_stats,
              tolerance, history, simulations, scenario) -> InferenceResult:
    import tomli_w

    names = [p.name for p in priors]
    posterior = xr.Dataset({name: (("chain", "draw"), draws[None, :, k]) for k, name in enumerate(names)},
                           coords={"chain": [0], "draw": np.arange(len(draws))})
    for block in blocks:
        posterior[block.path].attrs.update(apply=block.apply, prior=block.prior, label=block.label)
    ok = np.isfinite(predictive_stats).all(axis=1)
    sample = predictive_stats[ok]
    low, median, high = np.quantile(sample, [INTERVAL[0], 0.5, INTERVAL[1]], axis=0)
    below = (sample <= statistics.observed).mean(axis=0)
    above = (sample >= statistics.observed).mean(axis=0)
    p_value = np.minimum(1.0, 2 * np.minimum(below, above))
    stat_coords = {"statistic": list(statistics.names)}
    predictive = xr.Dataset({
        "draws": (("chain", "draw_predictive", "statistic"), predictive_stats[None]),
        "observed": ("statistic", statistics.observed),
        "observation_noise": ("statistic", statistics.observation_noise),
        "simulation_noise": ("statistic", summaries.statistic_simulation_noise),
        "low": ("statistic", low), "median": ("statistic", median), "high": ("statistic", high),
        "p_value": ("statistic", p_value),
    }, coords={**stat_coords, "chain": [0], "draw_predictive": np.arange(len(predictive_stats))})
    particles = xr.Dataset({"value": (("particle", "parameter"), values), "weight": ("particle", weights)},
                           coords={"parameter": names})
    kernel = summaries.kernel_sd(tolerance)
    tolerance_record = {
        "final": float(tolerance),
        "units": "multiples of each summary's simulation noise SD; kernel SD = sqrt(observation² + (tolerance × "
                 "simulation)²)",
        "summaries": [{"name": name, "simulation_noise": float(s), "observation_noise": float(o), "kernel_sd": float(k)}
                      for name, s, o, k in zip(summaries.names, summaries.simulation_noise,
                                               summaries.observation_noise, kernel)],
    }
    raw = cfg.raw()
    raw["infer"] = [block.model_dump(exclude_none=True, exclude_defaults=True) | {"path": block.path,
                                                                                   "prior": block.prior}
                    for block in blocks]
    raw["inference"] = settings.model_dump(exclude_none=True)
    attrs = {"method": "ABC-SMC (population Monte Carlo, ESS-adaptive Gaussian kernel)", "seed": settings.seed,
             "scenario": scenario, "particles": settings.particles, "summaries": settings.summaries}
    return InferenceResult(posterior, predictive, summarise_parameters(priors, values, weights), tolerance_record,
                           history, particles, simulations, tomli_w.dumps(raw), attrs)


def simulated_observed(cfg: Config, blocks: list[InferConfig], values, seed: int, scenario: str | None = None
                       ) -> Config:
    """``cfg`` with ``[observed]`` replaced by one simulated election at the given parameter ``values``
    (n_param,): counts, register, regional turnouts (exact fractions) and, when ``cfg`` has
    ``[observed.stations]``, the same station statistics of the simulated stations. For recovery and
    calibration checks."""
    from simkit.config.core import Observed, ObservedStations

    scenario = scenario or cfg.scenarios()[-1].name
    polls = tuple((i, 0) for i in range(len(cfg.exit_poll)))  # any entry: the simulator then draws the polls
    simulator = Simulator(cfg, blocks, Statistics((), (), np.zeros(0), np.zeros(0), (), None, (), polls), scenario)
    run_cfg = Config.model_validate(apply_values(simulator.raw, blocks, np.asarray(values, float)))
    plan = engine.make_plan(run_cfg, simulator.electorate)
    ballots, votes, voters = manipulated_replicate(plan, run_cfg, simulator.electorate, seed)
    electorate = simulator.electorate
    if cfg.exit_poll:
        valid_names = [name for i, name in enumerate(cfg.option_names) if i != cfg.invalid_index]
        published = [dict(zip(valid_names, map(float, shares)))
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
                                          zip(electorate.region_names, region_ballots, simulator.region_registered)},
                        stations=stations,
                        note=f"simulated at {dict(zip([b.path for b in blocks], map(float, values)))}, seed {seed}")
    return cfg.model_copy(update={"observed": observed})
