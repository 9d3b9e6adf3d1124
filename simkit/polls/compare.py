"""Simulated versus published: exit polls and quick counts against the official count.

Every poll is drawn from each simulated replicate's station-level votes (:mod:`simkit.model.exit_poll`),
so its spread comes from the real clustering of the simulated stations, not from a formula.

What :func:`compare_polls` returns (shares and rates in percent; JSON keys of :meth:`Comparison.to_json`):

* ``rows``, one per published figure, against the sampling-only baseline (the election is the honest
  simulation calibrated to the official count; each poll unbiased): the gap published − official, ``z`` and
  ``p_value`` from the distribution of (poll − its own replicate's count), ``z_total``/``p_total`` against
  sampling plus the historical non-sampling error of :mod:`simkit.polls.error`, ``misreport_needed`` (the
  misreporting rate toward the incumbent that makes the published figure the simulated median), and the
  joint ledger's ``points_compared`` of its ``ledger_points``, ``z_min``, ``z_max``, ``share_consistent`` and
  ``verdict`` (:func:`simkit.polls.ledger.ledger_verdicts`); a poll's published turnout is a row with option
  ``turnout``;
* ``joint``: Hotelling T² of all published gaps with its F reference, and per poll; ``left_out``, when some
  figures have no sampling error (a census: :func:`simkit.polls.statistics.sampled`), names them (``pollster``,
  ``option``);
* ``designs``: respondents each modelled design delivers against the claim, and the probability it reaches it;
* ``mechanisms``: one-mechanism fits per poll (:mod:`simkit.polls.mechanisms`);
* ``scenarios``: per scenario of the Dataset (``honest`` when there is none), the polls as configured (with
  their stated biases): Hotelling T² of the published gaps;
* ``ledger``: the rows' z and p at the points of a Latin hypercube over every stated assumption jointly;
* ``baseline``: the total-survey-error baseline per option class (:meth:`simkit.polls.error.ErrorBaseline.summary`),
  and ``baseline_table``: its source and the polls and countries of the history table and of the baseline
  (:meth:`simkit.polls.error.ErrorBaseline.counts`), null without a baseline;
* ``flags``: one-line warnings beside the figures (designs, stated margins of error, answers, census figures,
  scenarios and the ledger; see :class:`Comparison`).

Random streams: ``SeedSequence(seed, spawn_key=streams.exit_poll_key(replicate, poll_index))`` per replicate and
poll, so a poll draw depends only on its logical position; the ledger's hypercube by ``[seed, streams.LEDGER]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from scipy import stats

from simkit import schema
from simkit.engine.run import prepare
from simkit.progress import progress_bar
from simkit.config.core import check_config
from simkit.config.polls import ExitPollConfig
from simkit.polls.error import DEFAULT_HISTORY, ErrorBaseline
from simkit.polls.mechanisms import Ballot, Observed, fit_poll
from simkit.electorate.build import Electorate, electorate_of
from simkit.polls.checks import (answers_flag, check_answers, check_comparable, check_replicates, check_together,
                                 replicates_needed, silent_flags)
from simkit.polls.designs import design_entry, design_flags, resolve_design
from simkit.polls.draws import draw_polls, draw_pooled, drawn_alike
from simkit.polls.elections import Poll, SimulatedElections, Worlds, polls_at, scenario_polls, simulated_worlds
from simkit.polls.figures import (Reference, census_flags, left_out, poll_rows, published_vector, publishes_turnout,
                                  quick_count_flags, turnout_row)
from simkit.polls.ledger import LEDGER_POINTS, ledger_axes, ledger_entries, ledger_flags, ledger_verdicts
from simkit.polls.statistics import complete, has_sampling_error, joint_test, sampled


def poll_mechanisms(poll: Poll, p: int, keys: list[tuple[int, int]], gaps: np.ndarray, rows: list[dict],
                    official_votes: dict[str, int], options: list[str], valid_names: list[str], incumbent: str,
                    invalid: str | None, against_all: tuple[str, ...]) -> list[dict]:
    """One-mechanism fits of one poll (:mod:`simkit.polls.mechanisms`): covariance of its published gaps
    from ``gaps`` (R, V) (the replicates with answers); the direction is judged on the incumbent's gap when the
    poll publishes it, else on its figure farthest from the count (largest |z|) among those with sampling error (a
    census row, z = ±inf and ``rounding``, is left out of the fits)."""
    valid = np.array([name != invalid for name in options])
    total = sum(official_votes.get(name, 0) for name in options)
    ballot = Ballot(np.array([official_votes.get(name, 0) / total for name in options]), options.index(incumbent),
                    valid, options.index(invalid) if invalid is not None else None)
    columns = [column for poll_index, column in keys if poll_index == p and has_sampling_error(gaps[:, column])]
    if not columns:  # a census: no sampling error to weigh its gaps by (see :func:`sampled`)
        return []
    observed = Observed(np.array([options.index(valid_names[c]) for c in columns]),
                        np.array([poll.published[valid_names[c]] for c in columns]),
                        np.cov(complete(gaps[:, columns]), rowvar=False).reshape(len(columns), len(columns)))
    judged = next((row for row in rows if row["option"] == incumbent), None) or max(
        (row for row in rows if row["option"] in valid_names and "rounding" not in row), key=lambda row: abs(row["z"]))
    return fit_poll(poll.name, ballot, observed, options, list(against_all), options.index(judged["option"]),
                    judged["gap"] / 100.0)


@dataclass
class Comparison:
    """What :func:`compare_polls` returns (see :meth:`to_json` for the keys). ``flags``: claimed designs
    the electorate cannot supply (and the design used instead), shortfalls, stated margins of error beside
    the simulated ones. ``estimates`` (pollster, replicate, option) baseline estimates in percent, with
    ``published`` (pollster, option) and ``official`` (option) for plotting."""

    rows: list[dict]
    scenarios: list[dict]
    ledger: list[dict]
    flags: list[str]
    estimates: xr.Dataset
    joint: dict | None = None
    designs: list[dict] = field(default_factory=list)
    mechanisms: list[dict] = field(default_factory=list)
    baseline: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    #: ``incumbent``, ``against_all`` (first "against all" option or None), ``title``, ``option_labels``
    context: dict = field(default_factory=dict)
    error_baseline: ErrorBaseline | None = None

    def to_json(self) -> dict:
        return {"rows": self.rows, "joint": self.joint, "designs": self.designs, "mechanisms": self.mechanisms,
                "scenarios": self.scenarios, "ledger": self.ledger, "baseline": self.baseline,
                "baseline_table": self.baseline_table(), "flags": self.flags}

    def baseline_table(self) -> dict | None:
        """The history table the total-error baseline was read from: its ``source`` (the file's path as given) and
        the polls and countries of the table and of the baseline (:meth:`simkit.polls.error.ErrorBaseline.counts`);
        None without a baseline."""
        if self.error_baseline is None:
            return None
        return {"source": self.error_baseline.source, **self.error_baseline.counts()}


def _reference(election: SimulatedElections, valid_names: list[str], options: list[str],
               official: dict[str, int] | None, official_turnout: float | None, against_all, baseline) -> Reference:
    if official:
        valid_total = sum(official.get(name, 0) for name in valid_names)
        shares = np.array([100.0 * official.get(name, np.nan) / valid_total for name in valid_names])
    else:
        shares = 100.0 * election.count_shares(np.array([name in valid_names for name in options])).mean(axis=0)
    return Reference(shares, official_turnout, tuple(against_all), baseline)


def compare_polls(ds: xr.Dataset | Worlds, polls: list[Poll], *, incumbent: str, invalid: str | None = None,
                  official: dict[str, int] | None = None, seed: int = 0,
                  scenario_polls: dict[str, list[Poll]] | None = None, misreport: bool = True,
                  against_all: tuple[str, ...] = (), baseline: ErrorBaseline | None = None,
                  official_turnout: float | None = None, ledger_points: int = LEDGER_POINTS,
                  progress: bool = False, source: str = "polls") -> Comparison:
    """Compare published polls with polls drawn from the simulated elections ``ds`` (see :mod:`simkit.schema`;
    or :class:`Worlds` that give them one world at a time).

    ``polls``: exit polls and quick counts (config models). ``incumbent``: the option misreporting
    favours. ``invalid``: the invalid-ballot option, excluded from published shares. ``official``: the
    official count per option (the reference of every gap; without it, the simulated count's mean, and no
    mechanism fits). ``official_turnout``: percent. ``against_all``: "against all" option names (their own
    error class). ``baseline``: the total-survey-error baseline (None: no ``z_total``). ``scenario_polls``:
    per scenario name, the polls as that scenario states them (default: ``polls``). ``misreport=False``
    skips ``misreport_needed``. ``ledger_points``: points of the joint ledger's Latin hypercube (0: none).
    ``progress``: a progress bar on stderr over the polls drawn (each over every replicate). A poll's replicates
    without a valid answer are left out of its figures (:func:`answered`), counted per pollster in the estimates'
    attribute ``replicates_without_answers`` and flagged. Raises :class:`~simkit.errors.InputError`
    (``source: field: problem``) when the elections have fewer replicates than :func:`replicates_needed`, or
    fewer with a poll's valid answers (:func:`check_answers`, :func:`check_together`).
    """

    worlds = ds if isinstance(ds, Worlds) else Worlds.of(ds)
    options = worlds.options
    valid_names = [name for name in options if name != invalid]
    valid = np.array([name != invalid for name in options])
    base = worlds.baseline()
    election = worlds.election(base)
    here = polls_at(polls, worlds, base)
    keys, published = published_vector(here, valid_names)
    needed = replicates_needed(keys)
    check_replicates(len(election.replicates), needed, source)
    flags = []
    missing = [name for name in valid_names if official and name not in official]
    if missing:
        flags.append(f"the official count has no figure for {', '.join(missing)}: gaps are measured against the "
                     f"simulated count's mean, and no mechanism is fitted")
        official = None
    reference = _reference(election, valid_names, options, official, official_turnout, against_all, baseline)
    count = election.count_shares(valid)
    published_gaps = published - np.array([reference.official[column] / 100.0 for _, column in keys])
    n_worlds = len(worlds.scenario_names or ["honest"]) if keys else 0
    n_points = ledger_points if ledger_axes(worlds, here, invalid) else 0
    bar = progress_bar(len(polls) * (1 + n_points + n_worlds), enabled=progress, unit="poll")
    bar.set_description("drawing polls")
    rows, estimates, gaps, designs, mechanisms, dropped = [], [], [], [], [], []
    drawn = {}  # the baseline world's shares by poll and design, for the scenarios
    flags += silent_flags(here) + quick_count_flags(here, reference)
    for p, poll in enumerate(here):
        resolved = resolve_design(poll, options, invalid, election, unbiased=True, source=source)
        if resolved.note:
            flags.append(f"{poll.name}: {resolved.note}")
        draws = draw_polls(election.for_poll(poll), resolved.design, seed, p)
        dropped.append(check_answers(poll, draws, needed, source))
        flags += answers_flag(poll, dropped[-1], len(draws.shares))
        drawn[(p, drawn_alike(poll, resolved.design, len(options)))] = draws.shares
        bar.update()
        poll_table = poll_rows(poll, draws, resolved.design, options, incumbent, seed, p, count, reference,
                               with_misreport=misreport)
        if isinstance(poll, ExitPollConfig) and poll.stated_error is not None and poll_table:
            half_width = stats.norm.ppf(0.975) * max(row["gap_sd"] for row in poll_table)
            flags.append(f"{poll.name}: stated error ±{100 * poll.stated_error:.1f} points; sampling alone gives a "
                         f"95% half-width of up to ±{half_width:.1f} points for its published figures")
        if publishes_turnout(poll):
            poll_table.append(turnout_row(poll, draws, election.for_poll(poll), reference))
        designs.append(design_entry(poll, resolved, draws))
        flags += design_flags(designs[-1])
        gaps.append(draws.shares - count)
        if official and isinstance(poll, ExitPollConfig) and any(key[0] == p for key in keys):
            mechanisms += poll_mechanisms(poll, p, keys, gaps[-1], poll_table, dict(official), options, valid_names,
                                          incumbent, invalid, reference.against_all)
        rows += poll_table
        estimates.append(100.0 * draws.shares)
    check_together(here, keys, gaps, needed, source)
    kept = sampled(keys, gaps)
    joint = joint_test([poll.name for poll in here], keys, gaps, published_gaps, kept) if keys else None
    census = left_out(here, keys, kept, valid_names)
    if joint is not None and census:
        joint["left_out"] = census
    flags += census_flags(census)
    replicates = election.replicates
    del election, draws  # worlds made on demand are held one at a time
    with bar:
        ledger = ledger_entries(worlds, polls, options, invalid, incumbent, seed, base, reference, ledger_points,
                         bar.update, source, needed)
        scenarios, scenario_flags = _scenarios(worlds, polls, scenario_polls or {}, options, invalid, keys,
                                               published_gaps, seed, base, bar.update, drawn, source)
    flags += scenario_flags + ledger_flags(ledger)
    ledger_verdicts(rows, ledger)
    names = [poll.name for poll in polls]
    published_table = np.array([[100.0 * poll.published.get(name, np.nan) for name in valid_names] for poll in polls])
    data = {"estimate": (("pollster", schema.REPLICATE, schema.OPTION), np.stack(estimates)),
            "published": (("pollster", schema.OPTION), published_table),
            "official": ((schema.OPTION,), reference.official)}
    dataset = xr.Dataset(data, coords={"pollster": names, schema.OPTION: valid_names,
                                       schema.REPLICATE: replicates},
                         attrs={"units": "percent of valid answers", "replicates_without_answers": dropped})
    return Comparison(rows, scenarios, ledger, flags, dataset, joint, designs, mechanisms,
                      baseline.summary() if baseline is not None else [],
                      {poll.name: poll.label or poll.name for poll in polls},
                      {"incumbent": incumbent, "against_all": against_all[0] if against_all else None}, baseline)


def _scenarios(worlds: Worlds, polls, scenario_polls, options, invalid, keys: list[tuple[int, int]],
               published_gaps: np.ndarray, seed, base, tick: Callable[[], object], drawn: dict[tuple, np.ndarray],
               source: str) -> tuple[list[dict], list[str]]:
    """Per scenario, the polls as configured: Hotelling T² of the published gaps ``published_gaps`` (D,)
    (published − official, fractions, of the figures ``keys``: :func:`published_vector`) against the simulated
    (poll − count) of that scenario's world. ``drawn``: the baseline world's shares
    (R, V) by poll index and :func:`drawn_alike` key (checked there), not drawn again; a poll drawn afresh is
    checked for answers (:func:`check_answers`, :func:`check_together`, naming the scenario). Returns the
    entries and the flags of polls drawn afresh without answers in some replicate (:func:`answers_flag`)."""
    if not keys:
        return [], []
    needed = replicates_needed(keys)
    valid = np.array([name != invalid for name in options])
    has_scenarios = worlds.scenario_names is not None
    names = worlds.scenario_names if has_scenarios else ["honest"]
    base_scenario = base.get(schema.SCENARIO)
    # the baseline's world first: the ledger left it in hand
    order = sorted(range(len(names)), key=lambda index: index != base_scenario)
    results, flags = {}, []
    for index in order:
        name = names[index]
        point = {**base, schema.SCENARIO: index} if has_scenarios else base
        election = None  # let the previous world go before the next is made
        election = worlds.election(point)
        count = election.count_shares(valid)
        stated = polls_at(scenario_polls.get(name, polls), worlds, point)
        gaps = []
        for p, poll in enumerate(stated):
            design = resolve_design(poll, options, invalid, election, unbiased=False, source=source).design
            shares = drawn.get((p, drawn_alike(poll, design, len(options)))) if point == base else None
            if shares is None:
                draws = draw_pooled(election.for_poll(poll), design, seed, p)
                shares = draws.shares
                flags += answers_flag(poll, check_answers(poll, draws, needed, source, name), len(shares), name)
            gaps.append(shares - count)
            tick()
        check_together(stated, keys, gaps, needed, source, name)
        test = joint_test([poll.name for poll in stated], keys, gaps, published_gaps)
        if test is not None:
            results[index] = {"scenario": name, "count_turnout": 100.0 * float(
                election.totals.sum(axis=-1).mean() / election.registered.sum()), **test}
    return [results[index] for index in range(len(names)) if index in results], flags


def compare_config(cfg, *, replicates: int | None = None, seed: int | None = None, ds: xr.Dataset | None = None,
                   source: str = "config", history: Path | str | None = DEFAULT_HISTORY,
                   ledger_points: int | None = None, progress: bool = False,
                   electorate: Electorate | None = None) -> Comparison:
    """The whole comparison for a config: check its poll designs against the electorate, simulate
    ``replicates`` elections (unless ``ds`` gives them: then one world at a time, each held only while its
    polls are drawn, with a progress bar when ``progress``) and compare every
    ``[[exit_poll]]`` and ``[[quick_count]]`` with the official count of ``[observed]``, under the
    total-survey-error baseline of the ``history`` table (None: sampling error only). ``electorate``: the
    config's, when the caller has built it (:func:`simkit.electorate.build.electorate_of`), else built here.

    Raises :class:`simkit.errors.InputError` (``source: field: problem``) for a config without polls, a
    design the electorate makes impossible, too few replicates for the covariance of the published figures
    (:func:`check_replicates`) or a bad history table.
    """
    check_config(cfg)
    electorate = electorate if electorate is not None else electorate_of(cfg)
    polls = check_comparable(cfg, replicates=replicates, ds=ds, source=source, electorate=electorate)
    baseline = ErrorBaseline.from_file(history) if history is not None else None
    invalid = cfg.invalid_option_name
    worlds = Worlds.of(ds) if ds is not None else simulated_worlds(
        prepare(cfg, replicates, seed, "full", source=source, electorate=electorate), progress=progress)
    observed = cfg.observed
    comparison = compare_polls(worlds, polls, incumbent=cfg.leader, invalid=invalid, official=dict(observed.votes) or None,
                         seed=seed if seed is not None else cfg.run.seed, scenario_polls=scenario_polls(cfg, polls),
                         against_all=tuple(option.name for option in cfg.options if option.kind == "against_all"),
                         baseline=baseline, official_turnout=observed.counted_turnout(),
                         ledger_points=LEDGER_POINTS if ledger_points is None else ledger_points,
                         progress=progress, source=source)
    comparison.context.update(title=cfg.title, option_labels={option.name: option.label or option.name
                                                              for option in cfg.options})
    return comparison
