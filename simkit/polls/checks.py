"""Checks before and during a comparison, each a one-line :class:`simkit.errors.InputError` naming the
config: polls that publish nothing to compare, too few replicates for the figures compared, and designs whose
valid answers come from too few replicates (a figure of one replicate would pass for a census).
"""
from __future__ import annotations


import numpy as np
import xarray as xr

from simkit import schema
from simkit.electorate.build import Electorate, electorate_of
from simkit.errors import InputError, first_of
from simkit.polls.designs import design_problems
from simkit.polls.draws import Draws
from simkit.polls.elections import Poll, poll_kind
from simkit.polls.figures import figure_fields, published_vector, publishes
from simkit.polls.statistics import answered


def publishes_problem(polls: list[Poll]) -> InputError | None:
    """Why ``polls`` cannot be compared when none of them publishes a figure (:func:`publishes`): the comparison
    would have no row, joint test or mechanism fit (and ``compare --history`` nothing to add), so it is refused
    before anything is simulated (``field: problem``, naming the fields that hold the figures, the first
    :data:`~simkit.errors.MAX_LISTED` of them: :func:`~simkit.errors.first_of`); None when one does."""
    if any(publishes(poll) for poll in polls):
        return None
    fields = first_of(name for poll in polls for name in figure_fields(poll))
    return InputError(f"{fields}: no published figure: the comparison would have no row; give the figures the "
                      "pollsters published")


def silent_flags(polls: list[Poll]) -> list[str]:
    """The flag of each of ``polls`` that publishes no figure (:func:`publishes`) beside others that do: it is drawn
    for what its design delivers, and has no row."""
    return [f"{poll.name}: publishes no figure (none of {', '.join(figure_fields(poll))}): no row; only what its "
            "design delivers is shown" for poll in polls if not publishes(poll)]


def replicates_needed(keys: list[tuple[int, int]]) -> int:
    """The fewest replicates that estimate the covariance of the polls' D published figures ``keys``
    (:func:`published_vector`): D + 1 (1 when none is published). The joint test's Hotelling F has R − D denominator
    degrees of freedom and each poll's mechanism fits invert its block of that covariance; with fewer replicates
    the sample covariance is singular and its distances and p-values are meaningless."""
    return len(keys) + 1


def replicates_problem(replicates: int, needed: int, saved: bool = False) -> InputError | None:
    """Why ``replicates`` are too few for the covariance of the published figures, None when they reach ``needed``
    (:func:`replicates_needed`): an InputError to raise or to state (``field: problem``, without the source;
    naming the parameter ``replicates``). ``saved``: they are a saved result's (simulated again, not set by a
    parameter)."""
    if replicates >= needed:
        return None
    why = (f"too few to estimate the covariance of the {needed - 1} published figures (the joint test and the "
           f"mechanism fits need at least {needed})")
    if saved:
        return InputError(f"replicate: the result holds {replicates} replicates, {why}; simulate it again with more")
    return InputError(f"replicates: {replicates} are {why}", parameters=("replicates",))


def check_replicates(replicates: int, needed: int, source: str, saved: bool = False) -> None:
    """Raise :func:`replicates_problem` (``source: field: problem``) when there is one."""
    raise_problem(replicates_problem(replicates, needed, saved), source)


def raise_problem(problem: InputError | None, source: str) -> None:
    """Raise ``problem`` (``field: problem``, as :func:`comparable_problem` states it) as ``source: field: problem``,
    with the parameters it names; nothing when None."""
    if problem is not None:
        raise InputError(f"{source}: {problem}", parameters=problem.parameters)


def too_few_answers(draws: Draws, needed: int, where: str = "") -> tuple[int, str | None]:
    """The number of replicates of ``draws`` without a valid answer, and ``only A of R simulated
    replicates{where} get a valid answer (m valid answers on average), fewer than the {needed} a comparison
    needs`` (``only 1 of R ... gets``, ``none of the R ... gets``) when fewer than ``needed``
    (:func:`replicates_needed`) have one: too few for the covariance of the published figures, and a figure of one
    replicate would pass for a census (None otherwise)."""
    answers = draws.valid_respondents
    empty = int(np.sum(answers == 0))
    with_answer = len(answers) - empty
    if with_answer >= needed:
        return empty, None
    which = f"none of the {len(answers)}" if with_answer == 0 else f"only {with_answer} of {len(answers)}"
    return empty, (f"{which} simulated replicates{where} {'get' if with_answer > 1 else 'gets'} a valid answer "
                   f"({answers.mean():.1f} valid answers on average), fewer than the {needed} a comparison needs")


def check_answers(poll: Poll, draws: Draws, needed: int, source: str, scenario: str | None = None) -> int:
    """The number of replicates in which ``poll``'s design, drawn as ``draws`` (in ``scenario``'s world, when
    named), gets no valid answer (dropped from its distribution: :func:`answered`). Raise
    :class:`~simkit.errors.InputError` when fewer than ``needed`` have one (:func:`too_few_answers`): the remedy
    is the design the pollster used."""
    empty, shortfall = too_few_answers(draws, needed, _of_scenario(scenario))
    if shortfall is not None:
        raise InputError(f"{source}: {poll_kind(poll)}.{poll.name}: {shortfall}; state the design the pollster used")
    return empty


def check_together(polls: list[Poll], keys: list[tuple[int, int]], gaps: list[np.ndarray], needed: int, source: str,
                   scenario: str | None = None) -> None:
    """Raise :class:`~simkit.errors.InputError` when the replicates in which every poll with a published figure
    (``keys``) got a valid answer, those of the joint test (``gaps[p]`` (R, V), NaN without one), are fewer than
    ``needed``."""
    publishing = sorted({p for p, _ in keys})
    if not publishing:
        return
    together = np.all([answered(gaps[p]) for p in publishing], axis=0)
    if together.sum() < needed:
        names = first_of(f"{poll_kind(polls[p])}.{polls[p].name}" for p in publishing)
        raise InputError(f"{source}: {names}: every poll has a valid answer in only {int(together.sum())} of "
                         f"{len(together)} simulated replicates{_of_scenario(scenario)}: the joint test needs at "
                         f"least {needed}; state the designs the pollsters used")


def _of_scenario(scenario: str | None) -> str:
    return f" of scenario {scenario}" if scenario is not None else ""


def answers_flag(poll: Poll, empty: int, replicates: int, scenario: str | None = None) -> list[str]:
    """The flag of a poll whose design got no valid answer in ``empty`` of ``replicates`` (none when 0)."""
    if not empty:
        return []
    return [f"{poll.name}: no valid answer in {empty} of {replicates} simulated replicates{_of_scenario(scenario)}: "
            "left out of its simulated figures (a poll without answers publishes nothing)"]


def comparable_problem(cfg, electorate: Electorate, replicates: int | None = None,
                       ds: xr.Dataset | None = None) -> InputError | None:
    """The first reason :func:`compare_config` cannot compare the polls of ``cfg`` (``[[exit_poll]]`` then
    ``[[quick_count]]``), found before anything is simulated, or None: there are none, none publishes a figure
    (:func:`publishes_problem`), a design is impossible in the ``electorate``
    (:func:`simkit.electorate.build.electorate_of`), or ``replicates`` (the config's when None; the replicates of
    ``ds`` when given) are too few for the covariance of the published figures. An InputError to
    raise (:func:`check_comparable`) or to state (the report's omission): ``field: problem``, without the source,
    its ``parameters`` those it names."""
    polls = cfg.polls
    if not polls:
        return InputError("exit_poll: the config has no [[exit_poll]] or [[quick_count]] blocks")
    silent = publishes_problem(polls)
    if silent is not None:
        return silent
    problems = design_problems(cfg, polls, electorate)
    if problems:
        return InputError(problems[0])
    needed = replicates_needed(published_vector(polls, cfg.valid_option_names)[0])
    if ds is not None:
        return replicates_problem(ds.sizes[schema.REPLICATE], needed, saved=True)
    return replicates_problem(cfg.run.replicates if replicates is None else replicates, needed)


def check_comparable(cfg, *, replicates: int | None = None, ds: xr.Dataset | None = None,
                     source: str = "config", electorate: Electorate | None = None) -> list[Poll]:
    """The polls of ``cfg`` (``[[exit_poll]]`` then ``[[quick_count]]``), once checked that :func:`compare_config`
    can compare them (:func:`comparable_problem`, raised as ``source: field: problem``). ``electorate``: the
    config's, when the caller has built it (:func:`simkit.electorate.build.electorate_of`)."""
    raise_problem(comparable_problem(cfg, electorate if electorate is not None else electorate_of(cfg), replicates, ds),
                  source)
    return cfg.polls
