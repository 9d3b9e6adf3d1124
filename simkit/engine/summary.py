"""The short summary printed after a run: national turnout and shares, mean and 90% interval, beside
the official figures. Candidate and against-all shares are over valid votes (all options but
``invalid``), as the Kazakh commission publishes them; ``invalid`` is a share of ballots cast."""
from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from simkit.config.core import Config
from simkit.config.load import parse_config
from simkit.errors import counted
from simkit.schema import INTERVAL, OPTION, REPLICATE, SCENARIO


def national_shares(ds: xr.Dataset, config: Config) -> xr.Dataset:
    """``turnout`` and ``share`` (option) per replicate (and sweep point), in percent; a share is NaN where its
    replicate has no valid vote (or, ``invalid``, no ballot)."""
    # the national totals are small: read (from a lazy result too) and divided here, where the errstate holds,
    # rather than in dask's threads
    votes, ballots = ds["total_votes"].compute(), ds["total_ballots"].compute()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 100.0 * votes / votes.sel({OPTION: config.valid_option_names}).sum(OPTION)
        invalid = config.invalid_option_name
        if invalid is not None:
            share.loc[{OPTION: invalid}] = 100.0 * votes.sel({OPTION: invalid}) / ballots
    turnout = 100.0 * ballots / int(ds["registered"].sum())
    return xr.Dataset({"turnout": turnout, "share": share})


def official_figures(config: Config) -> dict[str, float]:
    """Official turnout and shares in percent from ``[observed]`` (same definitions as above)."""
    observed = config.observed
    figures: dict[str, float] = {}
    turnout = observed.counted_turnout()
    if turnout is not None:
        figures["turnout"] = turnout
    valid_names = config.valid_option_names
    if all(name in observed.votes for name in valid_names):
        total = sum(observed.votes[name] for name in valid_names)
        figures.update({name: 100.0 * observed.votes[name] / total for name in valid_names})
    invalid = config.invalid_option_name
    if invalid is not None and invalid in observed.votes and observed.ballots:
        figures[invalid] = 100.0 * observed.votes[invalid] / observed.ballots
    return figures


def summary_rows(ds: xr.Dataset, config: Config) -> list[dict]:
    """One row per sweep point × quantity: ``point`` (dict), ``quantity``, ``mean``, ``low``, ``high``, ``official``."""
    shares = national_shares(ds, config).load()
    official = official_figures(config)
    point_dims = [dim for dim in shares["share"].dims if dim not in (REPLICATE, OPTION)]
    rows = []
    for values in itertools.product(*(shares[dim].values for dim in point_dims)):
        point = {dim: (str(v) if dim == SCENARIO else float(v)) for dim, v in zip(point_dims, values)}
        at = shares.sel(point) if point else shares
        series = [("turnout", at["turnout"])] + [(name, at["share"].sel({OPTION: name})) for name in config.option_names]
        for quantity, values_ in series:
            sample = np.asarray(values_)
            low, high = np.quantile(sample, INTERVAL)
            rows.append({"point": point, "quantity": quantity, "mean": float(sample.mean()),
                         "low": float(low), "high": float(high), "official": official.get(quantity)})
    return rows


def format_summary(ds: xr.Dataset, config: Config | None = None) -> str:
    """Readable summary text of a result Dataset (the config defaults to the one stored in its attrs)."""
    config = config or parse_config(ds.attrs["simkit_config"], source="result attrs")
    rows = summary_rows(ds, config)
    lines = [f"{config.title or 'simkit run'}: {counted(ds.sizes['replicate'], 'replicate')}, seed "
             f"{ds.attrs.get('seed')}, {counted(ds.sizes['station'], 'station')}, "
             f"{int(ds['registered'].sum()):,} registered",
             "shares of valid votes; invalid as a share of ballots; percent"]
    header = f"{'':<16}{'mean':>8}{'5%':>8}{'95%':>8}{'official':>10}"
    current = None
    for row in rows:
        if row["point"] != current:
            current = row["point"]
            if current and current != {SCENARIO: "honest"}:
                lines.append("at " + ", ".join(f"{k} = {v}" for k, v in current.items()))
            lines.append(header)
        official = _percent(row["official"], 10) if row["official"] is not None else f"{'':>10}"
        lines.append(f"{row['quantity']:<16}{_percent(row['mean'], 8)}{_percent(row['low'], 8)}"
                     f"{_percent(row['high'], 8)}{official}")
    return "\n".join(lines)


def _percent(value: float, width: int) -> str:
    """A percentage with 2 decimals right-aligned in ``width`` characters; ``n/a`` for a share that does not
    exist (NaN: no valid vote, no ballot)."""
    return f"{value:>{width}.2f}" if np.isfinite(value) else f"{'n/a':>{width}}"
