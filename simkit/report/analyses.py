"""Running the analyses a report shows: the simulation, the poll comparison, the station-level forensics.

Each returns its results or, when the inputs do not allow it, a reason (a string) that the report states as
an omission. Bad input (a returns file that does not load, a design the electorate cannot supply) raises
:class:`simkit.errors.InputError` as everywhere else.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ..errors import InputError, listed
from simkit.config.core import Config
from simkit.engine import count_match, run as engine
from simkit.polls.checks import comparable_problem
from simkit.polls.compare import compare_config
from simkit.electorate.build import Electorate
from simkit.electorate.returns import load_returns
from simkit.forensics import TESTS, election, observed_seed, run_tests
from simkit.forensics.floor import result_floors
from simkit.forensics.power import power_applies, power_table, study_seed


@dataclass
class Forensics:
    """One election's forensic results: ``election`` (:class:`simkit.forensics.core.Election`), ``results``
    (TestResult per test), ``power`` (plant -> test -> rejection rate, or None when not computed),
    ``power_counts`` (plant -> test -> (rejections, elections where it ran), or None likewise), ``dataset``
    (the loaded returns), ``title`` (the map's label, else the config's title), ``null``, ``draws``, ``seed``,
    ``stations_left_out`` (plant -> the stations each replicate's simulated election left out without ballots, or
    None when power was not computed: :func:`simkit.forensics.power.power_table`);
    :attr:`could_not_reject` names the tests whose results could not reject with those draws."""

    election: object
    results: list
    power: dict | None
    power_replicates: int
    dataset: xr.Dataset
    title: str
    null: str
    draws: int
    seed: int
    stations_left_out: dict[str, list[int]] | None = None
    power_counts: dict[str, dict[str, tuple[int, int]]] | None = None

    @property
    def could_not_reject(self) -> dict[str, float]:
        """The tests whose results could not fall to ALPHA with the null draws their p-values rest on (of
        :attr:`draws` asked for), with their floors (:func:`simkit.forensics.floor.result_floors`): their verdicts,
        sizes and powers say nothing."""
        return result_floors(self.results)


def simulate(cfg, electorate: Electorate, replicates: int | None, seed: int | None,
             progress: bool) -> tuple[xr.Dataset, Config]:
    """The config's elections on its built ``electorate``, national and regional totals (what the report's tables
    show; the polls draw their own station-level worlds one at a time, :func:`compare`), and the config as run:
    its count-matched scenarios solved (what :func:`compare` reads their solutions from)."""
    run = engine.prepare(cfg, replicates, seed, "summary", electorate=electorate)
    return engine.simulate_run(run, progress=progress), run.config


def polls_omission(cfg, electorate: Electorate, replicates: int) -> InputError | None:
    """Why the poll comparison cannot run on ``cfg`` over its built ``electorate`` with ``replicates`` simulated
    elections: its polls have no official count to compare with, or
    :func:`simkit.polls.checks.comparable_problem` (its ``parameters`` those it names); None when it can run."""
    if (cfg.exit_poll or cfg.quick_count) and not cfg.observed.votes:
        return InputError("observed: the config has no [observed] official count to compare the polls with")
    return comparable_problem(cfg, electorate, replicates)


def compare(cfg, solved: Config, electorate: Electorate, replicates: int | None, seed: int, source: str,
            progress: bool):
    """:func:`simkit.polls.compare.compare_config`: the same elections as :func:`simulate` (same replicates, seed
    and ``electorate``), simulated one world at a time with station-level votes, so that memory holds one world.
    The count-matched scenarios take the solutions of ``solved``, the config as :func:`simulate` ran it
    (:func:`simkit.engine.count_match.with_solutions_of`): their pilots are not drawn again."""
    return compare_config(count_match.with_solutions_of(cfg, solved), replicates=replicates, seed=seed,
                          source=source, progress=progress, electorate=electorate)


def load(returns: Path | None, preset: str | None, map_path: Path | None) -> xr.Dataset:
    """Station returns through a preset or a mapping (``returns`` None: the preset's file in the data folder)."""
    if not (preset or map_path):
        raise InputError(f"{returns}: returns: give preset=NAME or map=MAP.toml to read returns",
                         parameters=("returns", "preset", "map"))
    if returns is not None and not Path(returns).exists():
        raise InputError(f"{returns}: returns: file not found", parameters=("returns",))
    return load_returns(returns, map_path=map_path, preset=preset)


def option_key(text: str) -> str:
    """How an option's name or label is compared across a config and a returns mapping: accents dropped (NFKD,
    combining marks removed, so NFC and NFD spellings agree), case folded, and ``_``, ``-`` and spaces alike
    (``pena_nieto``, ``Pena Nieto`` and ``Peña Nieto`` are one option)."""
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(re.split(r"[\s_-]+", bare.casefold())).strip()


def check_one_election(cfg: Config, config: Path, ds: xr.Dataset) -> None:
    """Refuse returns ``ds`` none of whose options (``invalid`` aside) is an option of ``cfg`` (the config read
    from ``config``) by name or label, compared by :func:`option_key`: they are another election's, and a report
    describes one. The message names the mapping (map or preset file) that names the returns' options."""
    ours = [option for option in cfg.options if option.kind != "invalid"]
    known = {option_key(text) for option in ours for text in (option.name, option.label) if text}
    theirs = [str(option) for option in ds["option"].values if option != "invalid"]
    if not any(option_key(option) in known for option in theirs):
        raise InputError(f"{ds.attrs['mapping']}: options: none of its options ({listed(theirs)}) is an option "
                         f"of {config} ({listed(option.name for option in ours)}) by name or label (accents, "
                         f"case, spaces, _ and - aside); a report describes one election")


def forensics(ds: xr.Dataset, title: str, tests: list[str] | None, null: str, draws: int, seed: int,
              power_replicates: int, progress: bool = False) -> Forensics:
    """Run the tests on the returns ``ds``; when none rejects, their size and power on ``power_replicates``
    simulated elections shaped like the data (:func:`simkit.forensics.power.power_table`; ``progress``: a bar over
    those elections)."""
    e = election(ds)
    ids = list(TESTS) if tests is None else tests
    results = run_tests(e, ids, null=null, draws=draws, seed=observed_seed(seed))
    power = left_out = counts = None
    if power_applies(e, results, power_replicates):
        table = power_table(e, ids, null=null, draws=draws, replicates=power_replicates, seed=study_seed(seed),
                            progress=progress)
        power, counts, left_out = table["rejection_rates"], table["rejections"], table["stations_left_out"]
    return Forensics(e, results, power, power_replicates, ds, title, null, draws, seed, left_out, counts)
