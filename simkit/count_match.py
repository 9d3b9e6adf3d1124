"""Count-matched scenarios: honest parameters solved so that the manipulated count reproduces the official
figures, for scenarios with ``match_observed = true``.

Without it a scenario stacks its manipulations on an honest baseline that already equals the official
count, so "coercion 20%" shows 73.7% turnout against the official 69.44%. With it, the honest turnout
means (national and regional) and the preference shares are solved, per scenario and sweep point, so that
the count AFTER the manipulations matches ``[observed]`` (turnout, regional turnout and every option's
share of the ballots) within :data:`TOLERANCE`; exit polls are then drawn from the voters of that world.

The solver is a fixed point on pilot simulations of :data:`PILOT_REPLICATES` replicates (fewer when the run
has fewer) under the run's seed (common random numbers: every iteration sees the same draws, which are the
run's first replicates), warm-started from the previous sweep point's solution: regional turnout means move on the
logit scale by the logit gap between official and pilot turnout, shares multiplicatively by official /
pilot. A figure still off by more than :data:`TOLERANCE` after :data:`MAX_ITERATIONS` (e.g. coercion that
alone pushes turnout above the official figure) is an :class:`~simkit.errors.InputError` naming it.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import xarray as xr
from scipy.special import expit, logit

from . import schema
from .errors import InputError

#: the largest difference, in points, between a matched count and an official figure
TOLERANCE = 0.1
#: pilot replicates per solver iteration
PILOT_REPLICATES = 16
MAX_ITERATIONS = 12
#: honest turnout means and shares stay inside (FLOOR, 1 - FLOOR)
FLOOR = 1e-4


def needs_matching(cfg) -> bool:
    return any(scenario.match_observed for scenario in cfg.scenarios())


def _only(cfg, scenario):
    """``cfg`` with the sweep dropped and ``scenario`` alone, its flag cleared (the engine runs it as set)."""
    return cfg.model_copy(update={"scenario": [scenario.model_copy(update={"match_observed": False})], "sweep": {}})


def _targets(cfg) -> dict[str, float]:
    """Official figures as fractions: ``turnout``, ``turnout.<region>``, ``share.<option>`` (of ballots)."""
    observed = cfg.observed
    if not observed.ballots or not observed.registered or not observed.votes:
        raise InputError("observed: match_observed needs [observed] registered, ballots and votes")
    targets = {"turnout": observed.ballots / observed.registered}
    targets.update({f"turnout.{region}": value for region, value in observed.regional_turnout.items()})
    total = sum(observed.votes.values())
    targets.update({f"share.{name}": observed.votes.get(name, 0) / total for name in cfg.option_names})
    return targets


def _achieved(ds: xr.Dataset, cfg) -> dict[str, float]:
    """The same figures in a pilot Dataset (one scenario), pooled over its replicates."""
    ballots = ds["region_ballots"].isel({schema.SCENARIO: 0}).sum(schema.REPLICATE)
    registered = ds["region_registered"] * ds.sizes[schema.REPLICATE]
    regional = (ballots / registered).to_series()
    achieved = {"turnout": float(ballots.sum() / registered.sum())}
    achieved.update({f"turnout.{region}": float(regional[region]) for region in cfg.observed.regional_turnout})
    votes = ds["total_votes"].isel({schema.SCENARIO: 0}).sum(schema.REPLICATE)
    achieved.update({f"share.{name}": float(votes.sel({schema.OPTION: name}) / votes.sum())
                     for name in cfg.option_names})
    return achieved


def _update(cfg, targets: dict[str, float], achieved: dict[str, float]):
    """One fixed-point step on the honest parameters."""
    turnout = cfg.turnout
    shift = logit(targets["turnout"]) - logit(achieved["turnout"])
    regions = list(turnout.regional_mean) + [key.removeprefix("turnout.") for key in targets
                                              if key.startswith("turnout.") and key[8:] not in turnout.regional_mean]
    regional = {}
    for region in regions:
        key = f"turnout.{region}"
        step = logit(targets[key]) - logit(achieved[key]) if key in targets else shift
        regional[region] = float(np.clip(expit(logit(turnout.regional_mean.get(region, turnout.mean)) + step),
                                          FLOOR, 1 - FLOOR))
    national = float(np.clip(expit(logit(turnout.mean) + shift), FLOOR, 1 - FLOOR))
    shares = {name: max(value * targets[f"share.{name}"] / max(achieved[f"share.{name}"], FLOOR), FLOOR)
              for name, value in cfg.preferences.shares.items()}
    total = sum(shares.values())
    return cfg.at({"turnout.mean": national, **{f"turnout.regional_mean.{r}": v for r, v in regional.items()},
                   **{f"preferences.shares.{name}": value / total for name, value in shares.items()}})


def _honest_parameters(cfg) -> dict:
    """The fields the solver sets, as dotted assignments (to warm-start the next sweep point)."""
    return {"turnout.mean": cfg.turnout.mean,
            **{f"turnout.regional_mean.{r}": v for r, v in cfg.turnout.regional_mean.items()},
            **{f"preferences.shares.{name}": v for name, v in cfg.preferences.shares.items()}}


def solve(cfg, scenario_name: str, seed: int, source: str = "config", start: dict | None = None,
          pilot_replicates: int = PILOT_REPLICATES):
    """The config (sweep dropped, only ``scenario_name`` kept) whose manipulated count matches
    ``[observed]``, and the figures its pilot reaches (fractions). ``start``: honest parameters to begin
    from (dotted assignments; default the config's own)."""
    from .engine import simulate

    targets = _targets(cfg)
    current = _only(cfg, next(s for s in cfg.scenarios() if s.name == scenario_name))
    if start:
        current = current.at(start)
    for _ in range(MAX_ITERATIONS):
        pilot = simulate(current, replicates=pilot_replicates, seed=seed, keep="summary")
        achieved = _achieved(pilot, current)
        worst = max(targets, key=lambda key: abs(achieved[key] - targets[key]))
        if abs(achieved[worst] - targets[worst]) * 100 <= TOLERANCE:
            return current, achieved
        current = _update(current, targets, achieved)
    raise InputError(f"{source}: scenario.{scenario_name}.match_observed: the official {worst.replace('share.', 'share of ')} "
                     f"({100 * targets[worst]:.2f}%) cannot be reached: no honest parameters bring the manipulated count "
                     f"closer than {100 * achieved[worst]:.2f}%")


def _nest(items: list, shape: list[int]) -> list:
    """``items`` in row-major order as nested lists of ``shape``."""
    if len(shape) <= 1:
        return items
    step = len(items) // shape[0]
    return [_nest(items[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def simulate_matched(cfg, replicates: int | None = None, seed: int | None = None, keep: str | None = None,
                     source: str = "config") -> xr.Dataset:
    """Simulate every scenario and sweep point of ``cfg``; those with ``match_observed`` under their solved
    honest parameters. The Dataset has the engine's layout; ``attrs["count_matched"]`` (JSON) holds, per
    matched scenario and sweep point, the solved parameters and the figures the pilot reached."""
    from .engine import simulate

    seed = cfg.run.seed if seed is None else seed
    pilot_replicates = min(PILOT_REPLICATES, replicates or cfg.run.replicates)
    sweep = list(cfg.sweep.items())
    points = list(itertools.product(*[values for _, values in sweep])) or [()]
    solved, by_point, warm = {}, [], {}
    for point in points:
        assignments = {path: value for (path, _), value in zip(sweep, point)}
        at_point = cfg.at(assignments) if assignments else cfg
        parts = []
        for scenario in cfg.scenarios():
            single = _only(at_point, scenario)
            if scenario.match_observed:
                single, achieved = solve(at_point, scenario.name, seed, source, warm.get(scenario.name),
                                         pilot_replicates)
                warm[scenario.name] = _honest_parameters(single)
                solved[json.dumps({"scenario": scenario.name, **assignments})] = {
                    "turnout.mean": single.turnout.mean, "turnout.regional_mean": dict(single.turnout.regional_mean),
                    "preferences.shares": dict(single.preferences.shares),
                    "pilot": {key: 100 * value for key, value in achieved.items()}}
            parts.append(simulate(single, replicates=replicates, seed=seed, keep=keep))
        merged = xr.concat(parts, dim=schema.SCENARIO, data_vars="minimal", coords="minimal", compat="override",
                           combine_attrs="override")
        by_point.append(merged.expand_dims({path: [float(value)] for path, value in assignments.items()}))
    result = by_point[0] if len(by_point) == 1 else xr.combine_nested(
        _nest(by_point, [len(values) for _, values in sweep]),
        concat_dim=[path for path, _ in sweep], data_vars="minimal", coords="minimal", compat="override",
        combine_attrs="override")
    result.attrs["simkit_config"] = cfg.to_toml()
    result.attrs["count_matched"] = json.dumps(solved)
    return result
