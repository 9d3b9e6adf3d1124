"""Running the analyses a report shows: the simulation, the poll comparison, the station-level forensics.

Each returns its results or, when the inputs do not allow it, a reason (a string) that the report states as
an omission. Bad input (a returns file that does not load, a design the electorate cannot supply) raises
:class:`simkit.errors.InputError` as everywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ..errors import InputError


@dataclass
class Forensics:
    """One election's forensic results: ``election`` (:class:`simkit.forensics.core.Election`), ``results``
    (TestResult per test), ``power`` (plant -> test -> rejection rate, or None when not computed), ``dataset``
    (the loaded returns), ``title`` (the map's label, else the config's title), ``null``, ``draws``, ``seed``."""

    election: object
    results: list
    power: dict | None
    power_replicates: int
    dataset: xr.Dataset
    title: str
    null: str
    draws: int
    seed: int


def simulate(cfg, replicates: int | None, seed: int | None, full: bool, progress: bool) -> xr.Dataset:
    """The config's elections (station-level output when ``full``, which the polls need)."""
    from simkit.engine.run import simulate as run

    return run(cfg, replicates=replicates, seed=seed, keep="full" if full else "summary", progress=progress)


def polls_omission(cfg) -> str | None:
    """Why the poll comparison cannot run on ``cfg`` (None when it can)."""
    if not (cfg.exit_poll or cfg.quick_count):
        return "the config has no [[exit_poll]] or [[quick_count]] blocks"
    if not cfg.observed.votes:
        return "the config has no [observed] official count to compare the polls with"
    return None


def compare(cfg, ds: xr.Dataset, seed: int, source: str):
    """:func:`simkit.polls.compare.compare_config` on the simulated ``ds``."""
    from simkit.polls.compare import compare_config

    return compare_config(cfg, ds=ds, seed=seed, source=source)


def load(returns: Path | None, preset: str | None, map_path: Path | None) -> xr.Dataset:
    """Station returns through a preset or a mapping (``returns`` None: the preset's file in the data folder)."""
    from simkit.electorate.returns import load_returns

    if not (preset or map_path):
        raise InputError(f"{returns}: --returns: give --preset NAME or --map MAP.toml to read returns")
    if returns is not None and not Path(returns).exists():
        raise InputError(f"{returns}: --returns: file not found")
    return load_returns(returns, map_path=map_path, preset=preset)


def forensics(ds: xr.Dataset, title: str, tests: list[str] | None, null: str, draws: int, seed: int,
              power_replicates: int) -> Forensics:
    """Run the tests on the returns ``ds``; when none rejects, their size and power on ``power_replicates``
    simulated elections shaped like the data (:func:`simkit.forensics.power.planted_power`)."""
    from ..forensics import TESTS, election, run_tests
    from ..forensics.core import ALPHA

    e = election(ds)
    ids = tests or list(TESTS)
    results = run_tests(e, ids, null=null, draws=draws, seed=seed)
    power = None
    if power_replicates > 0 and not any(r.p_value is not None and r.p_value < ALPHA for r in results):
        from ..forensics.power import planted_power

        power = planted_power(e, ids, null=null, draws=draws, replicates=power_replicates, seed=seed)
    return Forensics(e, results, power, power_replicates, ds, title, null, draws, seed)
