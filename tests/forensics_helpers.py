"""Synthetic station returns for forensics tests, built in code (binomial counts at known rates)."""
from __future__ import annotations

import importlib

import numpy as np
import xarray as xr


def honest_dataset(n_stations: int, seed: int, *, replicates: int | None = None, turnout_mean: float = 0.6,
                   turnout_sd: float = 0.08, share_mean: float = 0.5, share_sd: float = 0.08,
                   register_low: int = 500, register_high: int = 2500) -> xr.Dataset:
    """Honest two-option returns: normal turnout and leader support per station, binomial counts.

    With ``replicates``, the Dataset has a leading ``replicate`` dim (registers fixed, as from the engine).
    """
    gen = np.random.default_rng(seed)
    registered = gen.integers(register_low, register_high, n_stations)
    reps = replicates or 1
    turnout = np.clip(gen.normal(turnout_mean, turnout_sd, (reps, n_stations)), 0.05, 0.95)
    share = np.clip(gen.normal(share_mean, share_sd, (reps, n_stations)), 0.05, 0.95)
    ballots = gen.binomial(registered, turnout)
    leader = gen.binomial(ballots, share)
    votes = np.stack([leader, ballots - leader], axis=-1)
    ds = xr.Dataset({"registered": ("station", registered), "ballots": (("replicate", "station"), ballots),
                     "votes": (("replicate", "station", "option"), votes)},
                    coords={"option": ["a", "b"], "region": ("station", np.array(["north", "south"])[
                        np.arange(n_stations) % 2])})
    return ds if replicates else ds.isel(replicate=0)


def stuff_ballots(ds: xr.Dataset, fraction: float, seed: int, *, x_sd: float = 0.075,
                  alpha: float = 1.0) -> xr.Dataset:
    """Klimek's extreme fraud in ``fraction`` of stations: with ``x = 1 - |N(0, x_sd)|``, a share ``x`` of the
    non-voters are added as ballots for option ``a`` and a share ``x**alpha`` of option ``b``'s votes move to ``a``."""
    gen = np.random.default_rng(seed)
    out = ds.copy(deep=True)
    registered = out["registered"].values
    ballots = out["ballots"].values
    votes = out["votes"].values
    chosen = gen.random(registered.size) < fraction
    x = np.clip(1 - np.abs(gen.normal(0, x_sd, registered.size)), 0, 1)
    added = np.where(chosen, np.round(x * (registered - ballots)), 0).astype(np.int64)
    moved = np.where(chosen, np.round(x ** alpha * votes[..., 1]), 0).astype(np.int64)
    votes[..., 0] += added + moved
    votes[..., 1] -= moved
    out["ballots"].values[...] = ballots + added
    return out


def record_seed_positions(monkeypatch, power_entry: str) -> dict[str, list[tuple]]:
    """Record the random-stream positions, (entropy, spawn key), of the seeds a forensics run hands to each test
    (``simkit.forensics._run_one``) and to the power study's honest elections and plants
    (``simkit.forensics.power.simulate_honest``, ``planted``): phase -> positions, phase ``real`` until the
    function ``power_entry`` ("module.name", where the run calls the power study) is entered, ``power`` after. The
    power study tests its elections in this process while recording."""
    from simkit.forensics import power

    positions: dict[str, list[tuple]] = {"real": [], "power": []}
    phase = ["real"]

    def wrap(module, name: str, before) -> None:
        original = getattr(module, name)

        def wrapped(*args, **kwargs):
            before(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    def record(seed_of):
        def before(args) -> None:
            seed = seed_of(args)
            positions[phase[0]].append((seed.entropy, seed.spawn_key))
        return before

    def enter_power(args) -> None:
        phase[0] = "power"

    wrap(importlib.import_module("simkit.forensics"), "_run_one", record(lambda args: args[4]))
    wrap(power, "simulate_honest", record(lambda args: args[2]))
    wrap(power, "planted", record(lambda args: args[2].bit_generator.seed_seq))
    # the planted elections tested in this process, where the recorder sees their tests' seeds (on worker processes,
    # as a large study tests them, the same seeds: tests/test_power.py)
    monkeypatch.setattr(power, "PARALLEL_MIN_STATION_DRAWS", float("inf"))
    module_name, name = power_entry.rsplit(".", 1)
    wrap(importlib.import_module(module_name), name, enter_power)
    return positions


def shared_positions(positions: dict[str, list[tuple]]) -> list[tuple]:
    """(real, power) pairs of :func:`record_seed_positions` at one position or one below the other
    (:func:`overlapping`): streams of the power study drawn from the real tests' seeds."""
    return overlapping(positions["real"], positions["power"])


def overlapping(first: list[tuple], second: list[tuple]) -> list[tuple]:
    """Pairs of positions, (entropy, spawn key), one of ``first`` and one of ``second``, at one position or one
    below the other (same entropy, one spawn key a prefix of the other): streams that share their draws."""
    def below(key: tuple, root: tuple) -> bool:
        return key[:len(root)] == root

    return [(a, b) for a in first for b in second
            if a[0] == b[0] and (below(b[1], a[1]) or below(a[1], b[1]))]


def engine_positions(seed: int, replicates: int, groups: int) -> list[tuple]:
    """The positions, (entropy, spawn key), of the engine's streams of ``replicates`` replicates of an election of
    ``groups`` station groups under ``seed`` (:mod:`simkit.streams`: (replicate, station group, component), for
    every component id from 0 to :data:`simkit.streams.TIMELINE_NULL`)."""
    from simkit import streams

    components = range(streams.TIMELINE_NULL + 1)
    return [(seed, (replicate, group, component)) for replicate in range(replicates) for group in range(groups)
            for component in components]
