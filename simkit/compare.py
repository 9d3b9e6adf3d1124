"""Simulated versus published: exit polls and quick counts against the official count.

Every poll is drawn from each simulated replicate's station-level votes (:mod:`simkit.model.exit_poll`),
so its spread comes from the real clustering of the simulated stations, not from a formula.

Three products (shares and rates in percent; see :func:`compare_polls`):

* **rows**, the sampling-only baseline: the election is the honest simulation calibrated to the
  official count and each poll is unbiased (no differential non-response, no misreporting). ``z`` and
  ``p_value`` answer "could sampling error alone explain this gap?";
  ``misreport_needed`` is the misreporting rate toward the incumbent that makes the published figure
  the simulated median (negative: away from the incumbent), with the rates at which the published
  figure sits at the edges of the simulated 90% interval;
* **scenarios**: per scenario of the Dataset (``honest`` when there is none), the polls as configured
  (with their stated biases), and the joint tail probability of all published figures (Mahalanobis
  distance under the simulated distribution);
* **ledger**: the baseline figures again at both ends of every stated range (a poll's unknown
  ``stations``, ``sample_size``, ``response_rate``) and at every value of every swept config field.

Random streams: ``SeedSequence(seed, spawn_key=(replicate, streams.EXIT_POLL, poll_index))`` per replicate and
poll, so a poll draw depends only on its logical position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import xarray as xr
from scipy import stats

from . import schema, streams
from .paths import set_path
from .config_polls import ExitPollConfig, QuickCountConfig, low_high, midpoint, misreport_matrix
from .model.exit_poll import (PollDesign, design_feasibility, estimate_shares, draw_exit_poll)

#: stream ids of the polls (kept apart from the engine's component ids in :mod:`simkit.streams`)
#: central interval of the simulated estimates
INTERVAL = (0.05, 0.95)
#: a Monte Carlo p-value needs at least this many replicates at least as extreme; else normal approx.
MIN_TAIL_COUNT = 5
#: bisection steps for ``misreport_needed`` (rates in [-1, 1]: resolution 2 / 2**steps)
BISECTION_STEPS = 18

Poll = ExitPollConfig | QuickCountConfig




# -- the election arrays ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Election:
    """One set of simulated elections: ``votes`` (replicate, station, option) DataArray as counted,
    ``registered`` (S,), ``region_index`` (S,), ``replicates`` (R,) replicate ids (the keys of the poll
    streams), and ``voters`` (replicate, station, option), the choices of real voters where manipulations
    ran (None: the same as ``votes``)."""

    votes: xr.DataArray
    registered: np.ndarray
    region_index: np.ndarray
    replicates: np.ndarray
    voters: xr.DataArray | None = None

    def for_poll(self, poll: "Poll") -> "Election":
        """What ``poll`` samples: an exit poll interviews voters (stuffed or rewritten ballots have nobody to
        answer); a quick count copies the protocol, i.e. the count."""
        if isinstance(poll, ExitPollConfig) and self.voters is not None:
            return replace(self, votes=self.voters, voters=None)
        return self

    @cached_property
    def mean_voters(self) -> np.ndarray:
        """(S,) mean ballots per station over replicates."""
        return self.votes.sum(schema.OPTION).mean(schema.REPLICATE).values


def sweep_dims(ds: xr.Dataset) -> list[str]:
    """Dimensions of ``votes`` that are neither core dims nor ``scenario``: the swept config fields."""
    core = {schema.REPLICATE, schema.STATION, schema.OPTION, schema.SCENARIO}
    return [dim for dim in ds["votes"].dims if dim not in core]


def baseline_point(ds: xr.Dataset) -> dict[str, int]:
    """Index of the baseline: the middle value of every swept field, scenario ``honest`` (or the first)."""
    point = {dim: ds.sizes[dim] // 2 for dim in sweep_dims(ds)}
    if schema.SCENARIO in ds["votes"].dims:
        names = list(ds[schema.SCENARIO].values)
        point[schema.SCENARIO] = names.index("honest") if "honest" in names else 0
    return point


def election_at(ds: xr.Dataset, point: dict[str, int]) -> Election:
    """The elections at one sweep point / scenario (``point`` maps dims to indices)."""
    dims = (schema.REPLICATE, schema.STATION, schema.OPTION)
    votes = ds["votes"].isel(point).transpose(*dims)
    voters = ds["voter_votes"].isel(point).transpose(*dims) if "voter_votes" in ds else None
    _, region_index = np.unique(ds[schema.STATION_REGION].values, return_inverse=True)
    registered = ds["registered"].isel({dim: index for dim, index in point.items() if dim in ds["registered"].dims})
    return Election(votes, registered.values, region_index, ds[schema.REPLICATE].values, voters)


def _kind(poll: Poll) -> str:
    return "exit_poll" if isinstance(poll, ExitPollConfig) else "quick_count"


def polls_at(polls: list[Poll], ds: xr.Dataset, point: dict[str, int]) -> list[Poll]:
    """The polls with the values of swept poll fields (sweep dims named ``exit_poll.<name>.<field>`` or
    ``quick_count.<name>.<field>``) at ``point`` applied. Such sweeps leave the election unchanged."""
    updated = []
    for poll in polls:
        raw = poll.model_dump(exclude_none=True)
        prefix = f"{_kind(poll)}.{poll.name}."
        for dim, index in point.items():
            if dim.startswith(prefix):
                raw = set_path(raw, dim.removeprefix(prefix), ds[dim].values[index].item())
        updated.append(type(poll).model_validate(raw) if raw != poll.model_dump(exclude_none=True) else poll)
    return updated


# -- designs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """A poll's design at one set of assumed values, and the feasibility note of its claimed size."""

    design: PollDesign
    note: str = ""


def resolve_design(poll: Poll, options: list[str], invalid: str | None, election: Election, *,
                   unbiased: bool, stations: float | None = None, sample_size: float | None = None,
                   response_rate: float | None = None) -> Resolved:
    """The :class:`PollDesign` of ``poll``; unknown figures at their range midpoints unless given.

    ``unbiased`` drops differential non-response and misreporting (the sampling-only baseline).
    A claimed ``sample_size`` the electorate cannot supply is replaced by the nearest feasible design.
    """
    valid = np.array([name != invalid for name in options])
    n_stations = round(stations if stations is not None else midpoint(poll.stations))
    if not isinstance(poll, ExitPollConfig):
        return Resolved(PollDesign(n_stations=n_stations, valid=valid, selection=poll.selection,
                                   by_region=poll.by_region, respondents="whole_flow", estimator=poll.estimator))
    rate = response_rate if response_rate is not None else midpoint(poll.response_rate)
    claimed = sample_size if sample_size is not None else (
        midpoint(poll.sample_size) if poll.sample_size is not None else None)
    selection, mode, per_station, note = poll.selection, poll.respondents, poll.per_station, ""
    if claimed is not None:
        check = design_feasibility(n_stations, round(claimed), election.registered, election.mean_voters, rate,
                                   poll.selection)
        if not check.feasible:
            selection, note = check.selection, check.message
            if check.respondents == "whole_flow":
                mode = "whole_flow"
    if mode == "fixed" and (per_station is None or note):
        per_station = max(1, round(claimed / (n_stations * rate)))
    propensity, misreport = None, None
    if not unbiased:
        propensity = np.array([poll.response_propensity.get(name, 1.0) for name in options])
        misreport = misreport_matrix(poll.misreport, options)
    design = PollDesign(n_stations=n_stations, valid=valid, selection=selection, by_region=poll.by_region,
                        respondents=mode, per_station=per_station or 0, every_kth=poll.every_kth or 1,
                        response_rate=rate, response_propensity=propensity, misreport=misreport,
                        estimator=poll.estimator)
    return Resolved(design, note)


# -- drawing many replicates ------------------------------------------------------------------------

@dataclass(frozen=True)
class Draws:
    """A poll drawn in every replicate: ``shares`` (R, V) published-style estimates (fractions);
    ``responders`` / ``reported`` (R, n, K); ``voters``, ``inclusion`` (R, n); ``valid`` (K,) options
    counted in the shares."""

    shares: np.ndarray
    responders: np.ndarray
    reported: np.ndarray
    voters: np.ndarray
    inclusion: np.ndarray
    valid: np.ndarray

    @property
    def valid_respondents(self) -> np.ndarray:
        """(R,) respondents giving a valid answer."""
        return self.reported[..., self.valid].sum(axis=(-2, -1))


def draw_polls(election: Election, design: PollDesign, seed: int, poll_index: int) -> Draws:
    """Draw ``design`` from every replicate of ``election`` (keyed streams; see module docstring)."""
    draws = []
    votes = election.votes.values
    for r, replicate in enumerate(election.replicates):
        rng = streams.generator(seed, int(replicate), streams.EXIT_POLL, poll_index)
        draws.append(draw_exit_poll(votes[r], election.registered, design, rng, election.region_index))
    stack = {name: np.stack([getattr(d, name) for d in draws])
             for name in ("shares", "responders", "reported", "voters", "inclusion")}
    return Draws(**stack, valid=design.valid)


# -- statistics -------------------------------------------------------------------------------------

def tail_p_value(simulated: np.ndarray, published: float, z: float) -> tuple[float, str]:
    """Two-sided p-value of ``published`` under the ``simulated`` (R,) values: Monte Carlo
    (2 × (tail count + 1) / (R + 1)) when at least :data:`MIN_TAIL_COUNT` replicates are as extreme,
    else from the normal approximation ``2 Φ(−|z|)``."""
    tail = min(np.sum(simulated >= published), np.sum(simulated <= published))
    if tail >= MIN_TAIL_COUNT:
        return min(1.0, 2.0 * (tail + 1) / (len(simulated) + 1)), "monte_carlo"
    return float(2.0 * stats.norm.sf(abs(z))), "normal"


def _with_misreport(draws: Draws, design: PollDesign, target: int, incumbent: int, rate: float,
                    rng: np.random.Generator, away_shares: np.ndarray) -> np.ndarray:
    """(R,) estimate of option ``target`` (index among all options) when respondents misreport at signed
    ``rate``: > 0 toward the incumbent (from ``target``, or from every other valid option when
    ``target`` is the incumbent), < 0 away from it (to ``target``, or to the others in proportion to
    ``away_shares``)."""
    responders = draws.responders
    reported = responders.copy()
    others = [k for k in np.flatnonzero(design.valid) if k != incumbent]
    if rate > 0:
        for source in (others if target == incumbent else [target]):
            moved = rng.binomial(responders[..., source], rate)
            reported[..., source] -= moved
            reported[..., incumbent] += moved
    elif rate < 0:
        moved = rng.binomial(responders[..., incumbent], -rate)
        reported[..., incumbent] -= moved
        if target == incumbent:
            reported[..., others] += rng.multinomial(moved, away_shares)
        else:
            reported[..., target] += moved
    shares = estimate_shares(reported, draws.voters, draws.inclusion, design.valid, design.estimator)
    return shares[:, int(np.flatnonzero(design.valid).tolist().index(target))]


def pooled(draws: Draws) -> Draws:
    """The draws with each replicate's stations pooled into one (R, 1, K): the ``raw`` estimate is
    unchanged, and misreporting drawn on pooled counts has the same distribution (a sum of binomials
    with a common rate is a binomial of the sum) at a fraction of the cost."""
    return Draws(draws.shares, draws.responders.sum(axis=-2, keepdims=True),
                 draws.reported.sum(axis=-2, keepdims=True), draws.voters.sum(axis=-1, keepdims=True),
                 np.ones((len(draws.voters), 1)), draws.valid)


def misreport_needed(draws: Draws, design: PollDesign, target: int, incumbent: int, published: float,
                     seed: int, poll_index: int) -> tuple[float | None, float | None, float | None]:
    """Signed misreporting rates (fractions of the source voters) at which ``published`` (fraction) is the
    simulated median, the 95th and the 5th percentile: ``(needed, low, high)``. None where no rate in
    [-1, 1] gets there. Common random numbers: every rate uses the same stream."""
    valid_index = np.flatnonzero(design.valid)
    others = [k for k in valid_index if k != incumbent]
    away = draws.shares.mean(axis=0)[[valid_index.tolist().index(k) for k in others]]
    away = away / away.sum()
    increasing = target == incumbent
    draws = pooled(draws) if design.estimator == "raw" else draws

    def quantile_at(rate: float, q: float) -> float:
        rng = streams.generator(seed, streams.MISREPORT, poll_index, target)
        return float(np.nanquantile(_with_misreport(draws, design, target, incumbent, rate, rng, away), q))

    def solve(q: float) -> float | None:
        low, high = -1.0, 1.0
        sign = 1.0 if increasing else -1.0
        if sign * (quantile_at(low, q) - published) > 0 or sign * (quantile_at(high, q) - published) < 0:
            return None
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (low + high)
            if sign * (quantile_at(mid, q) - published) < 0:
                low = mid
            else:
                high = mid
        return 0.5 * (low + high)

    needed = solve(0.5)
    edges = [solve(INTERVAL[0]), solve(INTERVAL[1])]
    if None in edges:
        return needed, None, None
    return needed, min(edges), max(edges)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def poll_rows(poll: Poll, draws: Draws, design: PollDesign, options: list[str], incumbent: str,
              seed: int, poll_index: int, with_misreport: bool = True) -> list[dict]:
    """One row per published option of ``poll`` (see the module docstring; shares in percent)."""
    valid_names = [name for name, ok in zip(options, design.valid) if ok]
    respondents = draws.valid_respondents.mean()
    rows = []
    for option, published_share in poll.published.items():
        column = valid_names.index(option)
        simulated = 100.0 * draws.shares[:, column]
        published = 100.0 * published_share
        mean, sd = float(np.nanmean(simulated)), float(np.nanstd(simulated, ddof=1))
        z = (published - mean) / sd if sd > 0 else math.copysign(math.inf, published - mean)
        p_value, p_method = tail_p_value(simulated, published, z)
        share = mean / 100.0
        srs_variance = share * (1.0 - share) / respondents
        needed = low = high = None
        if with_misreport and isinstance(poll, ExitPollConfig):
            needed, low, high = misreport_needed(draws, design, options.index(option), options.index(incumbent),
                                                 published_share, seed, poll_index)
        low_q, high_q = np.nanquantile(simulated, INTERVAL)
        rows.append({
            "pollster": poll.name, "option": option, "published": published,
            "simulated_mean": mean, "simulated_sd": sd,
            "simulated_low": float(low_q), "simulated_high": float(high_q),
            "z": z, "p_value": p_value, "p_method": p_method,
            "design_effect": (sd / 100.0) ** 2 / srs_variance if srs_variance > 0 else None,
            "bias_needed": published - mean,
            "misreport_needed": _percent(needed), "misreport_needed_low": _percent(low),
            "misreport_needed_high": _percent(high),
        })
    return rows


def published_vector(polls: list[Poll], valid_names: list[str]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The published figures as one vector: ``(poll index, valid-option column)`` pairs and values
    (fractions). A poll that publishes every valid option loses its last one (the shares sum to 1, so it
    carries no information and would make the covariance singular)."""
    keys, values = [], []
    for p, poll in enumerate(polls):
        names = [name for name in valid_names if name in poll.published]
        if len(names) == len(valid_names):
            names = names[:-1]
        keys += [(p, valid_names.index(name)) for name in names]
        values += [poll.published[name] for name in names]
    return keys, np.array(values)


def joint_tail(simulated: np.ndarray, published: np.ndarray) -> dict:
    """Mahalanobis distance² of ``published`` (D,) under ``simulated`` (R, D), with its tail probability:
    the share of replicates at least as far (Monte Carlo) or, when fewer than :data:`MIN_TAIL_COUNT` are,
    the χ²(D) tail."""
    mean = simulated.mean(axis=0)
    precision = np.linalg.pinv(np.cov(simulated, rowvar=False).reshape(len(mean), len(mean)))
    def distance2(x: np.ndarray) -> np.ndarray:
        centred = x - mean
        return np.einsum("...i,ij,...j->...", centred, precision, centred)
    published_d2 = float(distance2(published))
    tail = int(np.sum(distance2(simulated) >= published_d2))
    if tail >= MIN_TAIL_COUNT:
        p_value, method = (tail + 1) / (len(simulated) + 1), "monte_carlo"
    else:
        p_value, method = float(stats.chi2.sf(published_d2, len(mean))), "chi2"
    return {"mahalanobis": math.sqrt(published_d2), "df": len(mean), "p_value": p_value, "p_method": method}


# -- the comparison ---------------------------------------------------------------------------------

@dataclass
class Comparison:
    """What :func:`compare_polls` returns. ``flags``: claimed designs the electorate cannot supply (and the
    design used instead), stated margins of error beside the simulated ones. ``estimates`` (pollster, replicate, option) baseline estimates in
    percent, with ``published`` (pollster, option) and ``official`` (option) for plotting."""

    rows: list[dict]
    scenarios: list[dict]
    ledger: list[dict]
    flags: list[str]
    estimates: xr.Dataset

    def to_json(self) -> dict:
        return {"rows": self.rows, "scenarios": self.scenarios, "ledger": self.ledger, "flags": self.flags}


def _ranged_fields(poll: Poll) -> list[str]:
    names = ["stations"] + (["sample_size", "response_rate"] if isinstance(poll, ExitPollConfig) else [])
    return [name for name in names if getattr(poll, name) is not None and isinstance(getattr(poll, name), list)]


def compare_polls(ds: xr.Dataset, polls: list[Poll], *, incumbent: str, invalid: str | None = None,
                  official: dict[str, int] | None = None, seed: int = 0,
                  scenario_polls: dict[str, list[Poll]] | None = None, misreport: bool = True) -> Comparison:
    """Compare published polls with polls drawn from the simulated elections ``ds`` (see :mod:`simkit.schema`).

    ``polls``: exit polls and quick counts (config models). ``incumbent``: the option misreporting
    favours. ``invalid``: the invalid-ballot option, excluded from published shares. ``official``: the
    official count per option (only used to mark the plot). ``scenario_polls``: per scenario name, the polls
    as that scenario states them (default: ``polls``). ``misreport=False`` skips ``misreport_needed``.
    """
    options = [str(name) for name in ds[schema.OPTION].values]
    valid_names = [name for name in options if name != invalid]
    base = baseline_point(ds)
    election = election_at(ds, base)
    rows, flags, estimates = [], [], []
    for p, poll in enumerate(polls_at(polls, ds, base)):
        resolved = resolve_design(poll, options, invalid, election, unbiased=True)
        if resolved.note:
            flags.append(f"{poll.name}: {resolved.note}")
        draws = draw_polls(election.for_poll(poll), resolved.design, seed, p)
        poll_table = poll_rows(poll, draws, resolved.design, options, incumbent, seed, p, with_misreport=misreport)
        if isinstance(poll, ExitPollConfig) and poll.stated_error is not None and poll_table:
            half_width = stats.norm.ppf(0.975) * max(row["simulated_sd"] for row in poll_table)
            flags.append(f"{poll.name}: stated error ±{100 * poll.stated_error:.1f} points; sampling alone gives a "
                         f"95% half-width of up to ±{half_width:.1f} points for its published figures")
        rows += poll_table
        estimates.append(100.0 * draws.shares)
    ledger = _ledger(ds, polls, options, invalid, incumbent, seed, base, election)
    scenarios = _scenarios(ds, polls, scenario_polls or {}, options, invalid, valid_names, seed, base)
    names = [poll.name for poll in polls]
    published = np.array([[100.0 * poll.published.get(name, np.nan) for name in valid_names] for poll in polls])
    data = {"estimate": (("pollster", schema.REPLICATE, schema.OPTION), np.stack(estimates)),
            "published": (("pollster", schema.OPTION), published)}
    if official:
        valid_total = sum(official.get(name, 0) for name in valid_names)
        data["official"] = ((schema.OPTION,), np.array([100.0 * official.get(name, np.nan) / valid_total
                                                        for name in valid_names]))
    dataset = xr.Dataset(data, coords={"pollster": names, schema.OPTION: valid_names,
                                       schema.REPLICATE: election.replicates},
                         attrs={"units": "percent of valid answers"})
    return Comparison(rows, scenarios, ledger, flags, dataset)


def _ledger(ds, polls, options, invalid, incumbent, seed, base, election) -> list[dict]:
    """Baseline z and p at both ends of every stated range and at every swept value."""
    entries = []

    def record(assumption, value, poll_index, poll, election_here, **assumed):
        resolved = resolve_design(poll, options, invalid, election_here, unbiased=True, **assumed)
        draws = draw_polls(election_here.for_poll(poll), resolved.design, seed, poll_index)
        for row in poll_rows(poll, draws, resolved.design, options, incumbent, seed, poll_index,
                             with_misreport=False):
            entries.append({"assumption": assumption, "value": value, "pollster": poll.name, "option": row["option"],
                            "simulated_mean": row["simulated_mean"], "simulated_sd": row["simulated_sd"],
                            "z": row["z"], "p_value": row["p_value"], "design_effect": row["design_effect"],
                            "feasibility": resolved.note or "feasible"})

    for p, poll in enumerate(polls_at(polls, ds, base)):
        for name in _ranged_fields(poll):
            for value in low_high(getattr(poll, name)):
                record(f"{_kind(poll)}.{poll.name}.{name}", value, p, poll, election, **{name: value})
    for dim in sweep_dims(ds):
        for index, value in enumerate(ds[dim].values):
            point = {**base, dim: index}
            here = election_at(ds, point)
            for p, poll in enumerate(polls_at(polls, ds, point)):
                record(dim, float(value), p, poll, here)
    return entries


def _scenarios(ds, polls, scenario_polls, options, invalid, valid_names, seed, base) -> list[dict]:
    """Joint tail probability of the published figures per scenario, polls as configured."""
    keys, published = published_vector(polls, valid_names)
    if not keys:
        return []
    has_scenarios = schema.SCENARIO in ds["votes"].dims
    names = [str(name) for name in ds[schema.SCENARIO].values] if has_scenarios else ["honest"]
    results = []
    for index, name in enumerate(names):
        point = {**base, schema.SCENARIO: index} if has_scenarios else base
        election = election_at(ds, point)
        stated = polls_at(scenario_polls.get(name, polls), ds, point)
        columns = []
        for p, poll in enumerate(stated):
            design = resolve_design(poll, options, invalid, election, unbiased=False).design
            columns.append(draw_polls(election.for_poll(poll), design, seed, p).shares)
        simulated = np.stack([columns[p][:, column] for p, column in keys], axis=-1)
        results.append({"scenario": name, **joint_tail(simulated, published)})
    return results


def scenario_polls(cfg, polls: list) -> dict[str, list]:
    """Per ``[[scenario]]`` of the config that overrides ``exit_poll.*`` or ``quick_count.*`` fields, the
    polls with those overrides applied."""
    result = {}
    for scenario in cfg.scenario:
        if any(path.split(".")[0] in ("exit_poll", "quick_count") for path in scenario.overrides):
            resolved = cfg.at(scenario.overrides)
            result[scenario.name] = list(resolved.exit_poll) + list(resolved.quick_count)
    return result


def compare_config(cfg, *, replicates: int | None = None, seed: int | None = None, ds: xr.Dataset | None = None,
                   source: str = "config") -> Comparison:
    """The whole comparison for a config: check its poll designs against the electorate, simulate
    ``replicates`` elections with full station-level output (unless ``ds`` gives them) and compare every
    ``[[exit_poll]]`` and ``[[quick_count]]`` with the official count of ``[observed]``.

    Raises :class:`simkit.errors.InputError` (``source: field: problem``) for a config without polls or a
    design the electorate makes impossible.
    """
    from .config_polls import check_poll_design
    from .electorate import build_electorate
    from .engine import simulate
    from .errors import InputError

    polls = list(cfg.exit_poll) + list(cfg.quick_count)
    if not polls:
        raise InputError(f"{source}: exit_poll: the config has no [[exit_poll]] or [[quick_count]] blocks")
    electorate = build_electorate(cfg.electorate)
    invalid = cfg.option_names[cfg.invalid_index] if cfg.invalid_index is not None else None
    for poll in polls:
        problems = check_poll_design(poll, electorate.n_stations, electorate.registered, cfg.option_names, invalid)
        if problems:
            raise InputError(f"{source}: {problems[0]}")
    if ds is None:
        ds = simulate(cfg, replicates=replicates, seed=seed, keep="full")
    return compare_polls(ds, polls, incumbent=cfg.leader, invalid=invalid, official=dict(cfg.observed.votes),
                         seed=seed if seed is not None else cfg.run.seed, scenario_polls=scenario_polls(cfg, polls))
