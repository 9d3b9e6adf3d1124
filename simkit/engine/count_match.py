"""Count-matched scenarios: honest parameters solved so that the manipulated count reproduces the official
figures, for scenarios with ``match_observed = true``.

Without it a scenario stacks its manipulations on an honest baseline that already equals the official
count, so "coercion 20%" shows 73.7% turnout against the official 69.44%. With it, the honest turnout
means (national and regional) and the preference shares are solved, per scenario and sweep point, so that
the count AFTER the manipulations matches ``[observed]`` (turnout, regional turnout and every option's
share of the ballots) within :data:`TOLERANCE`; exit polls are then drawn from the voters of that world.

:func:`resolve` solves once, up front, in the process that plans the run (:func:`simkit.engine.run.prepare`,
which every path goes through: ``simkit run``, :func:`simkit.simulate`, the dask runs, ``compare`` and
``calibrate``). It returns the *resolved config*: each matched scenario carries its solution as
``solved_honest``, one table of dotted honest parameters per sweep point (C order), and the engine draws
that scenario's honest elections from them, so no block ever solves anything and the resolved config's
text reruns to the same numbers. A scenario that already has ``solved_honest`` is not solved again.

The solver is a fixed point on pilot simulations: replicates ``0 .. PILOT_REPLICATES - 1`` of the run's
seed, whatever the run's size, block size or workers (common random numbers: every iteration sees the same
draws, which are also the run's first replicates), drawn in one process with the run's kernel, so the
solution depends on the config, the seed and the kernel only. Each sweep point is warm-started from the previous
point's solution: regional turnout means move on the logit scale by the logit gap between official and
pilot turnout, shares multiplicatively by official / pilot. A figure still off by more than
:data:`TOLERANCE` after :data:`MAX_ITERATIONS` (e.g. coercion that alone pushes turnout above the official
figure) is an :class:`~simkit.errors.InputError` naming it, unless the miss is within the pilot's own Monte Carlo
noise: a small region's turnout over 16 pilot replicates can have a standard error above the tolerance (8
stations: about 0.25 points), so that no iteration gets within it, the solver only chasing the noise. Then the
iteration whose every miss is within :data:`NOISE_MULTIPLE` standard errors (or the tolerance, if larger), the
least of them in those units, is the solution, and the record gives the pilot's standard errors beside its figures.
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable

import numpy as np
import xarray as xr
from scipy.special import expit, logit

from simkit import schema
from simkit.electorate.build import Electorate, voterless_turnouts
from simkit.engine.parallel import KeyedPool, choose
from simkit.errors import InputError
from simkit.paths import join_path

#: the largest difference, in points, between a matched count and an official figure
TOLERANCE = 0.1
#: pilot replicates per solver iteration
PILOT_REPLICATES = 16
MAX_ITERATIONS = 12
#: after :data:`MAX_ITERATIONS`, a figure off by at most this many of its pilot standard errors is matched as
#: closely as the pilot can tell (a pilot figure's 99.7% interval under normal noise)
NOISE_MULTIPLE = 3.0
#: below this many station-draws of pilots (stations × pilot replicates × sweep points × scenarios to solve)
#: the scenarios are solved one after another in this process: starting workers would cost more than it saves
PARALLEL_MIN_PILOT_DRAWS = 2_000_000
#: honest turnout means and shares stay inside (FLOOR, 1 - FLOOR)
FLOOR = 1e-4


def fingerprint(cfg, kernel: str, data: str = "") -> str:
    """What a solution depends on: a SHA-256 (16 hex digits) of ``cfg`` without its solutions and without
    ``run.replicates`` and ``run.keep`` (the pilot's size and output are fixed), of the pilot's ``kernel``, and of
    ``data``, a digest of what the pilots read beyond the config text (an electorate CSV's contents:
    :attr:`simkit.electorate.build.Electorate.sha256`), so a seed, sweep, observed figure, model, kernel or electorate
    file changed since the solve invalidates it. The numpy kernel and an empty ``data`` (an electorate drawn from
    the config itself) add nothing to the hash: solutions made before either was part of it stay valid."""
    raw = cfg.raw()
    if kernel != "numpy":
        raw["pilot_kernel"] = kernel
    if data:
        raw["pilot_data"] = data
    raw["run"] = {key: value for key, value in raw["run"].items() if key not in ("replicates", "keep")}
    raw["scenario"] = [{key: value for key, value in scenario.items() if key not in ("solved_honest", "solved_for")}
                       for scenario in raw.get("scenario", [])]
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unsolved(cfg, kernel: str, data: str = "") -> list:
    """The scenarios of ``cfg`` to solve: count-matched, without a ``solved_honest`` solution for this very
    config, seed, kernel and ``data`` (:func:`fingerprint`)."""
    key = fingerprint(cfg, kernel, data)
    return [scenario for scenario in cfg.scenarios()
            if scenario.match_observed and (not scenario.solved_honest or scenario.solved_for != key)]


def _only(cfg, scenario):
    """``cfg`` with the sweep dropped and ``scenario`` alone, unmatched (the engine runs it as set), without
    a timeline (its own streams: the counts are the same without it, and the pilot needs only the counts)."""
    return cfg.model_copy(update={"scenario": [scenario.model_copy(update={"match_observed": False, "solved_honest": None, "solved_for": None})],
                                  "sweep": {},
                                  "timeline": None, "observed": cfg.observed.model_copy(update={"timeline": None})})


def point_configs(cfg) -> list:
    """One config per sweep point of ``cfg`` (C order, sweep dropped), each scenario's ``solved_honest``
    reduced to that point's table."""
    configs = []
    for index, point in enumerate(cfg.sweep_points()):
        at = cfg.at(point)
        if any(scenario.solved_honest for scenario in at.scenario):
            at = at.model_copy(update={"scenario": [
                scenario.model_copy(update={"solved_honest": scenario.solved_honest[index:index + 1]})
                if scenario.solved_honest else scenario for scenario in at.scenario]})
        configs.append(at)
    return configs


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


def _figure_counts(ds: xr.Dataset, cfg) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each of :func:`_targets`' figures in a pilot Dataset (one scenario) as integer counts per replicate:
    numerator and denominator, both (replicate,) int64 (ballots over the register, an option's votes over all)."""
    ballots = ds["region_ballots"].isel({schema.SCENARIO: 0})
    registered = ds["region_registered"]
    votes = ds["total_votes"].isel({schema.SCENARIO: 0})
    replicates = ds.sizes[schema.REPLICATE]
    figures = {"turnout": (ballots.sum(schema.REGION_NAME).values, np.full(replicates, int(registered.sum())))}
    figures.update({f"turnout.{region}": (ballots.sel({schema.REGION_NAME: region}).values,
                                          np.full(replicates, int(registered.sel({schema.REGION_NAME: region}))))
                    for region in cfg.observed.regional_turnout})
    figures.update({f"share.{name}": (votes.sel({schema.OPTION: name}).values, votes.sum(schema.OPTION).values)
                    for name in cfg.option_names})
    return figures


def _achieved(figures: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The figures of :func:`_figure_counts`, pooled over the pilot's replicates (fractions)."""
    return {key: float(numerator.sum() / denominator.sum()) for key, (numerator, denominator) in figures.items()}


def _standard_errors(figures: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The Monte Carlo standard error (fraction) of each of :func:`_achieved`'s figures: the standard deviation of
    the figure between the pilot's replicates over the square root of their number."""
    return {key: float(np.std(numerator / denominator, ddof=1)) / np.sqrt(numerator.size)
            for key, (numerator, denominator) in figures.items()}


def _logit(fraction: float) -> float:
    """logit of a turnout kept within [FLOOR, 1 - FLOOR]: an official or pilot turnout of exactly 0 or 1 (a
    region nobody voted in, a tiny region) gives a finite step, and an unreachable target ends in the solver's
    own error instead of NaN."""
    return float(logit(np.clip(fraction, FLOOR, 1 - FLOOR)))


def _update(cfg, targets: dict[str, float], achieved: dict[str, float]):
    """One fixed-point step on the honest parameters."""
    turnout = cfg.turnout
    shift = _logit(targets["turnout"]) - _logit(achieved["turnout"])
    regions = list(turnout.regional_mean) + [key.removeprefix("turnout.") for key in targets
                                              if key.startswith("turnout.") and key[8:] not in turnout.regional_mean]
    regional = {}
    for region in regions:
        key = f"turnout.{region}"
        step = _logit(targets[key]) - _logit(achieved[key]) if key in targets else shift
        regional[region] = float(np.clip(expit(logit(turnout.regional_mean.get(region, turnout.mean)) + step),
                                          FLOOR, 1 - FLOOR))
    national = float(np.clip(expit(logit(turnout.mean) + shift), FLOOR, 1 - FLOOR))
    shares = {name: max(value * targets[f"share.{name}"] / max(achieved[f"share.{name}"], FLOOR), FLOOR)
              for name, value in cfg.preferences.shares.items()}
    total = sum(shares.values())
    return cfg.at({"turnout.mean": national, **{join_path(["turnout", "regional_mean", r]): v for r, v in regional.items()},
                   **{f"preferences.shares.{name}": value / total for name, value in shares.items()}})


def _honest_parameters(cfg) -> dict:
    """The fields the solver sets, as dotted assignments (to warm-start the next sweep point)."""
    return {"turnout.mean": cfg.turnout.mean,
            **{join_path(["turnout", "regional_mean", r]): v for r, v in cfg.turnout.regional_mean.items()},
            **{f"preferences.shares.{name}": v for name, v in cfg.preferences.shares.items()}}


def solve(cfg, scenario_name: str, seed: int, simulate, kernel: str, source: str = "config",
          start: dict | None = None):
    """The config (sweep dropped, only ``scenario_name`` kept) whose manipulated count matches
    ``[observed]``, the figures its pilot reaches (fractions) and None, or, for a match within the pilot's noise
    only (module docstring), their standard errors (fractions); the pilots drawn by ``simulate`` (the
    engine's :func:`simkit.engine.run.simulate`, which calls this module while planning a run) with ``kernel``.
    ``start``: honest parameters to begin from (dotted assignments; default the config's own)."""
    targets = _targets(cfg)
    current = _only(cfg, next(s for s in cfg.scenarios() if s.name == scenario_name))
    if start:
        current = current.at(start)
    best = None  # (the largest miss in units of what the pilot can tell, config, figures, standard errors)
    for _ in range(MAX_ITERATIONS):
        pilot = simulate(current, replicates=PILOT_REPLICATES, seed=seed, keep="summary", workers=1, kernel=kernel)
        figures = _figure_counts(pilot, current)
        achieved = _achieved(figures)
        worst = max(targets, key=lambda key: abs(achieved[key] - targets[key]))
        if abs(achieved[worst] - targets[worst]) * 100 <= TOLERANCE:
            return current, achieved, None
        errors = _standard_errors(figures)
        miss = max(abs(achieved[key] - targets[key]) / max(TOLERANCE / 100, NOISE_MULTIPLE * errors[key])
                   for key in targets)
        if best is None or miss < best[0]:
            best = (miss, current, achieved, errors)
        current = _update(current, targets, achieved)
    if best[0] <= 1.0:
        return best[1:]
    raise InputError(f"{source}: scenario.{scenario_name}.match_observed: the official {worst.replace('share.', 'share of ')} "
                     f"({100 * targets[worst]:.2f}%) cannot be reached: no honest parameters bring the manipulated count "
                     f"closer than {100 * achieved[worst]:.2f}%, beyond the pilot's Monte Carlo noise")


def check_matched_regions(cfg, electorate, source: str = "config") -> None:
    """Raise :class:`~simkit.errors.InputError` when a count-matched scenario of ``cfg`` targets the ``[observed]``
    turnout of a region whose stations have no voters on ``electorate``'s register
    (:func:`simkit.electorate.build.voterless_turnouts`): it has no turnout to match. Before any pilot."""
    matched = [scenario.name for scenario in cfg.scenarios() if scenario.match_observed]
    problems = voterless_turnouts(cfg, electorate, ["regional_turnout"]) if matched else []
    if problems:
        raise InputError(f"{source}: scenario.{matched[0]}.match_observed: {problems[0]}")


def with_solutions_of(cfg, solved):
    """``cfg`` with each count-matched scenario that carries no solution of its own given the one of the scenario
    of that name in ``solved`` (a resolved config: a finished run's stored one). :func:`resolve` keeps a solution
    solved for this very config, seed, kernel and electorate (:func:`fingerprint`), the one its pilots would reach
    again, and solves a stale one again."""
    stored = {scenario.name: scenario for scenario in solved.scenario if scenario.solved_honest}
    return cfg.model_copy(update={"scenario": [
        scenario.model_copy(update={"solved_honest": stored[scenario.name].solved_honest,
                                    "solved_for": stored[scenario.name].solved_for})
        if scenario.match_observed and not scenario.solved_honest and scenario.name in stored else scenario
        for scenario in cfg.scenario]})


def resolve(cfg, electorate: Electorate, simulate, kernel: str, *, source: str = "config",
            workers: int | None = None, releases_gil: Callable[[], bool] = lambda: False, data: str = ""):
    """``cfg`` with every count-matched scenario's honest parameters solved (pilots drawn by ``simulate`` with
    ``kernel``, as in :func:`solve`) (``solved_honest``: one table
    of dotted assignments per sweep point, C order), and the record of the solution as JSON text
    (``""`` when no scenario is count-matched): ``pilot_replicates``, ``pilot_seed``, ``tolerance_points``
    and ``solved``, one entry per matched scenario and sweep point with ``scenario``, ``point`` (the swept
    values), ``parameters`` (the solved honest parameters) and ``pilot`` (the figures the pilot reached, in
    percent; None for a solution the config already gave), and, for a match within the pilot's noise only,
    ``pilot_standard_errors`` (percent points) and ``noise_multiple``. The run's ``[run] seed`` seeds the pilot, drawn
    with the run's ``kernel`` (so that its replicates are the run's first ones).
    ``solved_for`` (:func:`fingerprint`, with ``data``) marks each solution with the config it was solved for: a
    stale one (seed, sweep, observed figures, honest model, kernel or electorate file changed since) is solved
    again.

    Each scenario's sweep points are solved in order (:func:`_solve_chain`, each warm-started from the last);
    the scenarios' chains are independent, and run on every core (:mod:`simkit.engine.parallel`) when their
    pilots draw at least :data:`PARALLEL_MIN_PILOT_DRAWS` station-draws on the electorate's stations, on at most
    ``workers`` (default: every core; :func:`simkit.engine.parallel.choose`): the solution is the same. They run
    in threads when ``releases_gil()`` (asked only when two chains or more are to be solved: True when the fused
    numba kernel draws every pilot's honest elections),
    else in worker processes: a forked worker copies much of this process as it runs (on the flagship's
    scenarios, 10 replicates of ``simkit run``, the peak memory of the process tree was 428 MB with two worker
    processes, 230 MB with two threads and 237 MB in this process alone). A scenario that cannot be matched
    raises the error of the first sweep point, then the first scenario, that fails.

    ``electorate``: ``cfg.electorate`` built (:class:`~simkit.electorate.build.Electorate`): a matched regional
    turnout of a region without voters on it is refused first, before any pilot (:func:`check_matched_regions`),
    and its stations size the pilots' work."""
    matched = [scenario for scenario in cfg.scenarios() if scenario.match_observed]
    if not matched:
        return cfg, ""
    check_matched_regions(cfg, electorate, source)
    order = [scenario.name for scenario in matched]
    # more manipulations take more solver iterations: their chains start first, so that no long chain is left
    # to run alone at the end
    unsolved = [scenario.name for scenario in sorted(_unsolved(cfg, kernel, data), key=lambda s: -len(s.manipulations))]
    points = cfg.sweep_points()
    work = electorate.n_stations * PILOT_REPLICATES * len(points) * len(unsolved) if len(unsolved) > 1 else 0
    where, workers = choose(workers, work, PARALLEL_MIN_PILOT_DRAWS, len(unsolved) > 1 and releases_gil())
    job = ([cfg.at(point) for point in points], cfg.run.seed, simulate, kernel, source)
    with KeyedPool(_solve_chain, job, where, workers) as pool:
        chains = dict(zip(unsolved, pool.map(unsolved)))
    failures = [(*failure, order.index(name)) for name, (_, failure) in chains.items() if failure is not None]
    if failures:
        raise min(failures, key=lambda failure: (failure[0], failure[2]))[1]
    solutions = {scenario.name: [parameters for parameters, _, _ in chains[scenario.name][0]]
                 if scenario.name in chains else list(scenario.solved_honest) for scenario in matched}
    pilots = {(name, index): _in_percent(achieved) for name, (solved, _) in chains.items()
              for index, (_, achieved, _) in enumerate(solved)}
    noise = {(name, index): _in_percent(errors) for name, (solved, _) in chains.items()
             for index, (_, _, errors) in enumerate(solved) if errors is not None}
    solved_for = fingerprint(cfg, kernel, data)
    resolved = cfg.model_copy(update={"scenario": [
        scenario.model_copy(update={"solved_honest": solutions[scenario.name], "solved_for": solved_for})
        if scenario.match_observed
        else scenario for scenario in cfg.scenarios()]})
    record = {"pilot_replicates": PILOT_REPLICATES, "pilot_seed": cfg.run.seed, "pilot_kernel": kernel,
              "tolerance_points": TOLERANCE,
              "solved": [{"scenario": scenario.name, "point": point,
                          "parameters": solutions[scenario.name][index],
                          "pilot": pilots.get((scenario.name, index)),
                          **({"pilot_standard_errors": noise[scenario.name, index], "noise_multiple": NOISE_MULTIPLE}
                             if (scenario.name, index) in noise else {})}
                         for index, point in enumerate(points) for scenario in matched]}
    return resolved, json.dumps(record)


def _in_percent(figures: dict[str, float]) -> dict[str, float]:
    return {key: 100 * value for key, value in figures.items()}


def _solve_chain(job: tuple, name: str) -> tuple[list[tuple[dict, dict, dict | None]], tuple[int, InputError] | None]:
    """Scenario ``name`` solved (:func:`solve`) at each sweep point's config of ``job`` (the configs, seed,
    ``simulate``, kernel, source) in order, each point warm-started from the last one's solution: its
    (honest parameters, figures reached, their standard errors or None: :func:`solve`) per point, and None, or, at the first point it cannot match, the
    solutions before it and (that point's index, the error). A point whose pilots draw what the last point's
    drew (:func:`_pilot_key`: the sweep does not touch the scenario) keeps the last point's solution, which
    :func:`solve` warm-started from it would return after one pilot."""
    at_points, seed, simulate, kernel, source = job
    solved: list[tuple[dict, dict, dict | None]] = []
    previous = None
    for index, at_point in enumerate(at_points):
        drawn_from, previous = previous, _pilot_key(at_point, name)
        if previous == drawn_from:  # the point's pilots would be the last point's: its solution stands
            solved.append(solved[-1])
            continue
        try:
            single, achieved, errors = solve(at_point, name, seed, simulate, kernel, source,
                                             solved[-1][0] if solved else None)
        except InputError as error:
            return solved, (index, error)
        solved.append((_honest_parameters(single), achieved, errors))
    return solved, None


def _pilot_key(cfg, name: str) -> str:
    """What the pilots of scenario ``name`` draw from in ``cfg`` (one sweep point's config): the config of
    :func:`_only`, the manipulation blocks that the scenario does not apply reduced to their names (the engine
    reads only the scenario's own blocks; their positions, which key the streams, are kept)."""
    scenario = next(s for s in cfg.scenarios() if s.name == name)
    raw = _only(cfg, scenario).raw()
    raw["manipulation"] = [block if block["name"] in scenario.manipulations else {"name": block["name"]}
                           for block in raw.get("manipulation", [])]
    return json.dumps(raw, sort_keys=True, default=str)
