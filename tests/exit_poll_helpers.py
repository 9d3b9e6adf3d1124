"""A synthetic simulated-election Dataset (the engine's schema) built with numpy, for the poll tests."""
from __future__ import annotations

import numpy as np
import xarray as xr


def dirichlet_votes(rng: np.random.Generator, ballots: np.ndarray, shares: np.ndarray,
                    concentration: float | None) -> np.ndarray:
    """(…, station, option) votes: station probabilities ~ Dirichlet(concentration × shares) (the same
    ``shares`` everywhere when ``concentration`` is None), then multinomial counts of ``ballots`` (…, station).
    The intra-station correlation of any option is then 1 / (concentration + 1)."""
    if concentration is None:
        return rng.multinomial(ballots, shares)
    probabilities = rng.dirichlet(concentration * np.asarray(shares), size=ballots.shape)
    return rng.multinomial(ballots, probabilities)


def synthetic_election(*, replicates: int, stations: int, options: list[str], shares: list[float],
                       concentration: float | None, mean_registered: float = 1000.0, size_sd: float = 0.0,
                       turnout: float = 0.7, regions: int = 4, seed: int = 0) -> xr.Dataset:
    """A Dataset with ``registered`` (station), ``ballots`` (replicate, station), ``votes`` (replicate,
    station, option) and the ``region`` station coordinate."""
    rng = np.random.default_rng(seed)
    registered = np.maximum(1, np.round(mean_registered * np.exp(size_sd * rng.standard_normal(stations)
                                                                 - size_sd ** 2 / 2))).astype(np.int64)
    ballots = rng.binomial(registered, turnout, size=(replicates, stations))
    votes = dirichlet_votes(rng, ballots, np.asarray(shares), concentration)
    region = np.array([f"r{i % regions}" for i in range(stations)])
    return xr.Dataset(
        {"registered": ("station", registered), "ballots": (("replicate", "station"), ballots),
         "votes": (("replicate", "station", "option"), votes)},
        coords={"replicate": np.arange(replicates), "station": np.arange(stations), "option": options,
                "region": ("station", region)})
