"""``infer``: the posterior of the ``[[infer]]`` fields given the config's ``[observed]`` evidence, from
loading to the assembled result (the steps are the modules of :mod:`simkit.inference`)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import ValidationError

from simkit.config.checks import prior_value_problems, timeline_share_problems
from simkit.config.core import Config
from simkit.config.load import load_config
from simkit.config.messages import ConfigError, validation_problem
from simkit.config.inference import InferConfig, InferenceSettings, infer_problems, prior_quantile_problems
from simkit.electorate.build import check_station_registers, electorate_of, observed_returns, voterless_turnouts
from simkit.errors import InputError
from simkit.polls.designs import design_problems
from .priors import Prior
from .result import InferenceResult, Population, Run, assemble
from .simulator import Simulations, Simulator
from .smc import OBSERVATION_NOISE_DRAW, PREDICTIVE_STAGE, abc_smc, generator, systematic_resample
from .statistics import statistic_names, with_observation_noise


def load_inference(path: str | Path, overrides: dict | None = None
                   ) -> tuple[Config, list[InferConfig], InferenceSettings]:
    """Read a config with ``[[infer]]`` blocks: (the config, its priors, its settings); ConfigError lists
    every problem, ``file: dotted.field: problem``."""
    cfg = load_config(path, overrides)
    return cfg, list(cfg.infer), cfg.inference or InferenceSettings()


def _with_updates(settings: InferenceSettings, updates: dict) -> InferenceSettings:
    """``settings`` with the caller's ``particles``, ``seed`` or ``workers``; InputError names the one out of range
    (``particles: ...``, a parameter the command line shows as its flag)."""
    try:
        return InferenceSettings.model_validate({**settings.model_dump(exclude_unset=True), **updates})
    except ValidationError as error:
        item = error.errors()[0]
        name, message = validation_problem(item, model=InferenceSettings)
        raise InputError(f"{name}: {message}", parameters=(name,)) from None


def _named(source: str, problems: list[str]) -> ConfigError:
    """The config ``source``'s ``problems``, each named by it (``source: field: problem``)."""
    return ConfigError([f"{source}: {problem}" for problem in problems])


def infer(cfg: Config, blocks: list[InferConfig] | None = None, settings: InferenceSettings | None = None, *,
          particles: int | None = None, seed: int | None = None, workers: int | None = None,
          progress: Callable[[str], None] | None = None, client=None, bar: bool = False,
          source: str = "config") -> InferenceResult:
    """Posterior of the ``[[infer]]`` fields given the config's ``[observed]`` evidence (see
    :mod:`simkit.inference`).

    ``blocks`` and ``settings`` default to ``cfg.infer`` and ``cfg.inference``; ``particles``, ``seed`` and
    ``workers`` override the settings. ``client``: a ``dask.distributed.Client`` whose workers run the
    simulations instead of local processes (the result is the same). ``progress``: called with a line per
    generation; ``bar``: a progress bar over each generation's simulations (on a terminal).

    Raises :class:`simkit.config.messages.ConfigError` (``source: field: problem``) for blocks or settings the config
    cannot infer, evidence it does not give, a published timeline's final figure that reads as a share against a
    turnout mean ``blocks`` leave fixed (the config's own checks judged it against the means ``cfg.infer`` leaves
    fixed: :func:`~simkit.config.checks.timeline_share_problems`), or a poll read as evidence whose design the
    electorate makes impossible; :class:`~simkit.errors.InputError` for station returns read as evidence whose
    stations are not the electorate's (:func:`~simkit.electorate.build.check_station_registers`).
    """
    blocks = blocks if blocks is not None else list(cfg.infer)
    settings = settings if settings is not None else (cfg.inference or InferenceSettings())
    updates = {k: v for k, v in {"particles": particles, "seed": seed, "workers": workers}.items() if v is not None}
    if updates:
        settings = _with_updates(settings, updates)
    problems = (infer_problems(cfg, blocks, settings, prior_value_problems) + timeline_share_problems(cfg, blocks)
                if blocks else ["infer: no [[infer]] blocks (nothing to infer)"])
    if problems:
        raise _named(source, problems)
    scenario = settings.scenario or cfg.scenarios()[-1].name
    electorate = electorate_of(cfg)
    problems = voterless_turnouts(cfg, electorate, settings.statistics)
    if problems:
        raise _named(source, problems)
    returns = observed_returns(cfg, settings.statistics)
    check_station_registers(electorate, returns)
    try:
        statistics = with_observation_noise(statistic_names(cfg, settings.statistics, list(electorate.region_names),
                                                            returns), settings.observation_noise)
    except ConfigError as error:  # a noise entry naming no statistic of this evidence
        raise _named(source, error.problems) from None
    if not statistics.names:
        raise _named(source, ["observed: none of the inference.statistics is given in [observed]"])
    problems = design_problems(cfg, [cfg.exit_poll[index] for index in statistics.poll_indices], electorate)
    if problems:
        raise _named(source, problems)
    priors = [Prior(block) for block in blocks]
    simulator = Simulator(cfg, blocks, statistics, scenario, settings.kernel, electorate)
    # a draw reaching a prior's tail must not make a poll's design impossible in the middle of the run
    problems = prior_quantile_problems(simulator.raw, blocks, simulator.design_problems) if statistics.polls else []
    if problems:
        raise _named(source, problems)
    median = np.array([p.block.distribution().ppf(0.5) for p in priors])
    with Simulations(simulator, settings.workers, client, bar) as simulations:
        def simulate_many(values: np.ndarray, stage: int) -> np.ndarray:
            return simulations.run(values, settings.seed, stage)

        values, weights, summaries, tolerance, history = abc_smc(simulate_many, priors, statistics, settings,
                                                                 median, progress)
        draw_rng = generator(settings.seed, PREDICTIVE_STAGE)
        draws = draw_rng.permutation(systematic_resample(weights, settings.particles, draw_rng))
        predictive_stats = simulate_many(values[draws[:settings.predictive]], PREDICTIVE_STAGE)
        count = simulations.count
    noise_rng = generator(settings.seed, PREDICTIVE_STAGE, OBSERVATION_NOISE_DRAW)
    predictive_stats = predictive_stats + noise_rng.standard_normal(predictive_stats.shape) * statistics.observation_noise
    return assemble(Run(cfg, blocks, settings, scenario, history, count), priors, statistics, summaries,
                    Population(values, weights, draws, tolerance), predictive_stats)
