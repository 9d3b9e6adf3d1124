"""Simulation-based inference: ABC with sequential Monte Carlo on the summaries of the published evidence.

Which values of the ``[[infer]]`` fields (coerced share, stuffing rates, honest turnout…) are consistent
with the config's ``[observed]`` figures? The engine is the simulator: each particle is one simulated
election (one replicate, its own seed). One module per step (every constant is a setting of
:class:`~simkit.config.inference.InferenceSettings`):

1. :mod:`~simkit.inference.statistics`: the statistics ``[observed]`` supports (national turnout, shares,
   invalid share, regional turnouts, exit polls' published shares, station-level statistics, the timeline's
   front-loading and late surge), their observed values and observation noise (what the published figure is
   uncertain by: a count of millions is exact; a share published to 0.01 point carries 0.0001 / sqrt(12)).
2. :mod:`~simkit.inference.priors`: each ``[[infer]]`` prior and its map to an unconstrained scale.
3. :mod:`~simkit.inference.simulator`: one election at given parameter values, reduced to the statistics,
   and the runner that maps it over particles (local processes or a dask cluster).
4. :mod:`~simkit.inference.smc`: the summaries (Fearnhead & Prangle 2012 regression projections and the
   national count), the noise scales (``simulation_noise``: the SD of each statistic across
   ``noise_replicates`` simulations at the prior median) and ABC-SMC with an ESS-adaptive tolerance.
5. :mod:`~simkit.inference.result`: the ArviZ groups (``posterior``, ``posterior_predictive``,
   ``observed_data``, ``sample_stats``), the per-parameter summary (prior and posterior 90% intervals,
   ``informed`` when the posterior interval is narrower than 0.8 × the prior's) and the warnings.

:func:`~simkit.inference.run.infer` runs them in order. Random streams: every simulation's engine seed
comes from ``SeedSequence(seed, spawn_key=streams.inference_simulation_key(stage, index))`` (stage: noise, pilot,
generation g, predictive); the prior pilot, the proposals, the resampling and the predictive observation noise draw
from ``streams.inference_draw_key(stage, draw)``, apart from every simulation's seed. Results do not depend on the
number of workers.
"""
from .priors import INTERVAL, Prior
from .result import InferenceResult, summarise_parameters
from .run import infer, load_inference
from .simulator import (Simulations, Simulator, manipulated_replicate, simulated_observed, simulation_seed,
                        timeline_replicate)
from .smc import Summaries, abc_smc, build_summaries, effective_sample_size, systematic_resample, weighted_quantiles
from .statistics import (DEFAULT_OBSERVATION_NOISE, Statistics, compute_statistics, observed_station_values,
                         statistic_names, with_observation_noise)

__all__ = ["DEFAULT_OBSERVATION_NOISE", "INTERVAL", "InferenceResult", "Prior", "Simulations", "Simulator",
           "Statistics", "Summaries", "abc_smc", "build_summaries", "compute_statistics", "effective_sample_size",
           "infer", "load_inference", "manipulated_replicate", "observed_station_values", "simulated_observed",
           "simulation_seed", "statistic_names", "summarise_parameters", "systematic_resample", "timeline_replicate",
           "weighted_quantiles", "with_observation_noise"]
