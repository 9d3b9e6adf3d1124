"""The inference's result, as ArviZ-style groups: ``posterior`` (chain, draw) per parameter, named by its
dotted path; ``posterior_predictive`` (chain, draw, statistic) and ``observed_data`` (statistic,), whose
variable ``statistics`` shares its name so that ArviZ's predictive checks pair them; ``sample_stats``: the
final SMC population (particle values and weights) and which particle each draw is.

:meth:`InferenceResult.to_datatree` gives the groups as an ``xarray.DataTree`` (root attributes: the run's
provenance, the JSON summary, the warnings); :func:`simkit.io.write_tree` writes it, and
``arviz.from_netcdf`` or ``xarray.open_datatree`` reads it back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np
import tomli_w
import xarray as xr

from simkit.config.core import Config
from simkit.config.inference import InferConfig, InferenceSettings
from simkit.outputs import INFERENCE, KIND_ATTR
from .priors import INTERVAL, Prior
from simkit.schema import rejects
from .smc import Summaries, effective_sample_size, weighted_quantiles
from .statistics import EVIDENCE, Statistics

INFORMED_RATIO = 0.8  #: informed when the posterior 90% interval is narrower than this × the prior's
#: warn when the final tolerance exceeds this many × the summaries' simulation noise (the ABC posterior is then
#: that of a model whose summaries carry this much extra noise: wider than the evidence allows)
WARN_TOLERANCE = 1.0
WARN_ESS = 200  #: warn when the final population's effective sample size is below this (noisy intervals)
GROUPS = ("posterior", "posterior_predictive", "observed_data", "sample_stats")


@dataclass
class InferenceResult:
    """The ArviZ groups of one inference run, its per-parameter summary and its trace."""

    posterior: xr.Dataset  # one variable per parameter, dims (chain, draw), named by its dotted path
    posterior_predictive: xr.Dataset  # statistics (chain, draw, statistic): simulated at posterior draws
    observed_data: xr.Dataset  # statistics (statistic,) observed, with observation and simulation noise SDs
    sample_stats: xr.Dataset  # final population: value (particle, parameter), weight (particle,), draw_particle
    parameters: list[dict]
    tolerance: dict
    generations: list[dict]
    simulations: int
    warnings: list[str] = field(default_factory=list)
    config_text: str = ""
    attrs: dict = field(default_factory=dict)

    @cached_property
    def checks(self) -> xr.Dataset:
        """Posterior predictive checks per statistic: observed, predictive median and 90% interval, and the
        two-sided p-value ``min(1, 2 min(P(sim ≤ obs), P(sim ≥ obs)))`` over finite predictive draws."""
        draws = self.posterior_predictive["statistics"].values.reshape(-1, self.observed_data.sizes["statistic"])
        sample = draws[np.isfinite(draws).all(axis=1)]
        observed = self.observed_data["statistics"].values
        low, median, high = np.quantile(sample, [INTERVAL[0], 0.5, INTERVAL[1]], axis=0)
        below = (sample <= observed).mean(axis=0)
        above = (sample >= observed).mean(axis=0)
        return xr.Dataset({"observed": ("statistic", observed), "low": ("statistic", low),
                           "median": ("statistic", median), "high": ("statistic", high),
                           "p_value": ("statistic", np.minimum(1.0, 2 * np.minimum(below, above)))},
                          coords={"statistic": self.observed_data["statistic"].values})

    def to_json(self) -> dict:
        checks = self.checks
        return {"parameters": self.parameters, "tolerance": self.tolerance, "generations": self.generations,
                "simulations": self.simulations, "warnings": self.warnings,
                "predictive": [{"statistic": str(s), **{key: float(checks[key].sel(statistic=s))
                                                         for key in ("observed", "low", "median", "high", "p_value")}}
                               for s in checks.statistic.values]}

    def to_datatree(self) -> xr.DataTree:
        """The four groups under one root whose attributes hold the provenance (config, seed, method), the JSON
        summary (``simkit_inference``) and the warnings."""
        root = xr.Dataset(attrs={**self.attrs, "simkit_config": self.config_text,
                                 "simkit_inference": json.dumps(self.to_json()),
                                 "warnings": json.dumps(self.warnings), KIND_ATTR: INFERENCE})
        return xr.DataTree.from_dict({"/": root, **{name: getattr(self, name) for name in GROUPS}})

    def format(self) -> str:
        """Plain-language summary text (the warnings first)."""
        kept = [g for g in self.generations if g["kept"]]
        lines = [f"warning: {text}" for text in self.warnings]
        lines += [f"ABC-SMC: {self.simulations:,} simulated elections, {len(kept)} generations after the prior pilot, "
                  f"final tolerance {self.tolerance['final']:.3g} x simulation noise, final ESS {self.tolerance['ess']:.0f}",
                  f"{'parameter':<40}{'prior 90%':>20}{'posterior median [90%]':>30}  informed"]
        for p in self.parameters:
            prior = f"[{p['prior_low']:.4g}, {p['prior_high']:.4g}]"
            post = f"{p['posterior_median']:.4g} [{p['posterior_low']:.4g}, {p['posterior_high']:.4g}]"
            lines.append(f"{p['name']:<40}{prior:>20}{post:>30}  {'yes' if p['informed'] else 'no (prior-like)'}")
        lines.append("posterior predictive (percent): statistic, observed, predictive median [90%], p")
        for row in self.to_json()["predictive"]:
            flag = "  <- misfit" if rejects(row["p_value"]) else ""
            lines.append(f"  {row['statistic']:<36}{100 * row['observed']:>8.2f}{100 * row['median']:>9.2f} "
                         f"[{100 * row['low']:.2f}, {100 * row['high']:.2f}]  p={row['p_value']:.2f}{flag}")
        return "\n".join(lines)


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


def left_out(statistics: Statistics, settings: InferenceSettings) -> tuple[str, ...]:
    """The groups ``[inference] statistics`` names explicitly that ``[observed]`` does not give (the default, every
    group, takes the evidence there is: none is left out)."""
    if "statistics" not in settings.model_fields_set:
        return ()
    return tuple(group for group in dict.fromkeys(settings.statistics) if group not in statistics.groups)


def unchecked_stations(cfg: Config, statistics: Statistics) -> bool:
    """Whether the evidence reads ``[observed.stations]`` given as ``values``: with no returns file, nothing checks
    the config's electorate against the stations the values were computed on
    (:func:`simkit.electorate.build.check_station_registers`)."""
    return "stations" in statistics.groups and bool(cfg.observed.stations.values)


#: the warning of :func:`unchecked_stations`
UNCHECKED_STATIONS = ("observed.stations: given as values: nothing checks the electorate's stations against those "
                      "they were computed on, and most station statistics depend on station sizes; give the returns "
                      "file instead, or an electorate of those stations' own registers")


def run_warnings(tolerance: float, ess: float, left_out: Sequence[str] = (), unchecked: bool = False) -> list[str]:
    """What a reader must know before quoting the posterior: statistic groups the settings name that the evidence
    lacks (``left_out``), station statistics given as values whose stations nothing checked (``unchecked``,
    :func:`unchecked_stations`), a final tolerance above :data:`WARN_TOLERANCE` × the simulation noise, an ESS below
    :data:`WARN_ESS`."""
    warnings = [f"inference.statistics: {group}: not given in [observed] (needs {EVIDENCE[group]}): left out of "
                "the evidence" for group in left_out] + ([UNCHECKED_STATIONS] if unchecked else [])
    if tolerance > WARN_TOLERANCE:
        warnings.append(f"final tolerance {tolerance:.3g} x the simulation noise (above {WARN_TOLERANCE:g}): the "
                        "posterior is wider than the evidence allows; run more particles or generations")
    if ess < WARN_ESS:
        warnings.append(f"effective sample size {ess:.0f} (below {WARN_ESS}): the intervals are noisy; run more "
                        "particles")
    return warnings


@dataclass(frozen=True)
class Population:
    """The final SMC population: ``values`` (particle, parameter) on the parameters' own scale, normalised
    ``weights`` (particle,), the ``draws`` (draw,) indices of the particles resampled as posterior draws, and the
    final ``tolerance`` (simulation-noise units)."""

    values: np.ndarray
    weights: np.ndarray
    draws: np.ndarray
    tolerance: float


@dataclass(frozen=True)
class Run:
    """What a run was: its config and priors, its settings, the scenario simulated, its trace (one record
    per generation) and the number of simulations."""

    cfg: Config
    blocks: list[InferConfig]
    settings: InferenceSettings
    scenario: str
    history: list[dict]
    simulations: int


def assemble(run: Run, priors: list[Prior], statistics: Statistics, summaries: Summaries, population: Population,
             predictive_stats: np.ndarray) -> InferenceResult:
    """The result of a run from its final population and its posterior predictive simulations
    ``predictive_stats`` (draw, statistic)."""
    names = [p.name for p in priors]
    draws = population.values[population.draws]
    posterior = xr.Dataset({name: (("chain", "draw"), draws[None, :, k]) for k, name in enumerate(names)},
                           coords={"chain": [0], "draw": np.arange(len(draws))})
    for block in run.blocks:
        posterior[block.path].attrs.update(apply=block.apply, prior=block.prior, label=block.label)
    statistic = {"statistic": list(statistics.names)}
    predictive = xr.Dataset({"statistics": (("chain", "draw", "statistic"), predictive_stats[None])},
                            coords={**statistic, "chain": [0], "draw": np.arange(len(predictive_stats))})
    observed = xr.Dataset({"statistics": ("statistic", statistics.observed),
                           "observation_noise": ("statistic", statistics.observation_noise),
                           "simulation_noise": ("statistic", summaries.statistic_simulation_noise)}, coords=statistic)
    sample_stats = xr.Dataset({"value": (("particle", "parameter"), population.values),
                               "weight": ("particle", population.weights),
                               "draw_particle": (("chain", "draw"), population.draws[None])},
                              coords={"parameter": names, "chain": [0], "draw": np.arange(len(draws))})
    ess = effective_sample_size(np.log(np.maximum(population.weights, 1e-300)))
    kernel = summaries.kernel_sd(population.tolerance)
    tolerance_record = {
        "final": float(population.tolerance), "ess": ess,
        "units": "multiples of each summary's simulation noise SD; kernel SD = sqrt(observation² + (tolerance × "
                 "simulation)²)",
        "summaries": [{"name": name, "simulation_noise": float(s), "observation_noise": float(o), "kernel_sd": float(k)}
                      for name, s, o, k in zip(summaries.names, summaries.simulation_noise,
                                               summaries.observation_noise, kernel)],
    }
    raw = run.cfg.raw()
    raw["infer"] = [block.model_dump(exclude_none=True, exclude_defaults=True) | {"path": block.path,
                                                                                   "prior": block.prior}
                    for block in run.blocks]
    raw["inference"] = run.settings.model_dump(exclude_none=True)
    attrs = {"method": "ABC-SMC (population Monte Carlo, ESS-adaptive Gaussian kernel)", "seed": run.settings.seed,
             "scenario": run.scenario, "particles": run.settings.particles, "summaries": run.settings.summaries}
    return InferenceResult(posterior, predictive, observed, sample_stats,
                           summarise_parameters(priors, population.values, population.weights), tolerance_record,
                           run.history, run.simulations,
                           run_warnings(population.tolerance, ess, left_out(statistics, run.settings),
                                        unchecked_stations(run.cfg, statistics)), tomli_w.dumps(raw),
                           attrs)
