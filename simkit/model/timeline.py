"""Voting through the day: pure functions of parameters and a random generator.

Time is measured in minutes after midnight; a day runs from ``opening`` to ``closing`` and is cut into
bins at the reporting times: ``edges = (opening, report_1, ..., report_m, closing)`` gives ``m + 1`` bins,
and the cumulative count at report i is the sum of the first i bins (the last, at closing, is the final
count). Arrival profiles are the shares of a station's ballots in each bin.

The honest family is a Dirichlet over the bins: a region's profile ``q ~ Dirichlet(kappa_region * p)``
around the country's profile ``p``, a station's ``Dirichlet(kappa_station * q)`` around its region's. The
Dirichlet is closed under merging bins (merging two bins of a Dirichlet(kappa a) gives a Dirichlet whose
concentration is still kappa), so one dispersion fitted on Spain's three bins defines the same model on any
other set of reporting times; its limit is one dispersion for every bin (see simkit/timeline/spain.py for
how far Spain's bins disagree).
"""
from __future__ import annotations

import numpy as np


def parse_clock(text: str) -> int:
    """``"HH:MM"`` → minutes after midnight; ValueError naming the text otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a clock time HH:MM")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
        raise ValueError(f"{text!r} is not a clock time between 00:00 and 24:00")
    return value


def window_shares(edges: np.ndarray, start: float, end: float) -> np.ndarray:
    """(bin,) shares of arrivals spread uniformly over ``[start, end]`` (minutes) falling in each bin of
    ``edges`` (bin + 1,); a window of zero length puts everything in the bin that holds ``start``."""
    edges = np.asarray(edges, float)
    if end <= start:
        index = min(max(np.searchsorted(edges, start, side="right") - 1, 0), len(edges) - 2)
        shares = np.zeros(len(edges) - 1)
        shares[index] = 1.0
        return shares
    overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0.0, None)
    return overlap / (end - start)


def final_only(n_bins: int) -> np.ndarray:
    """(bin,) shares that put everything in the last bin: seen only in the final count."""
    shares = np.zeros(n_bins)
    shares[-1] = 1.0
    return shares


def dirichlet(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    """Dirichlet(concentration * mean) draws, one per row of ``mean`` (..., bin), from gamma variates.
    Bins of mean 0 get share 0; rows are normalised to sum to 1."""
    mean = np.asarray(mean, float)
    gammas = np.zeros(mean.shape)
    positive = mean > 0
    gammas[positive] = rng.standard_gamma(concentration * mean[positive])
    totals = gammas.sum(axis=-1, keepdims=True)
    empty = totals[..., 0] <= 0  # every gamma underflowed (tiny concentrations): fall back on the mean
    if empty.any():
        gammas[empty] = mean[empty]
        totals[empty] = mean[empty].sum(axis=-1, keepdims=True)
    return gammas / totals


def split_counts(rng: np.random.Generator, counts: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Multinomial split of ``counts`` (station,) int over bins with ``shares`` (station, bin) or (bin,):
    (station, bin) int64 summing to ``counts`` exactly (conditional binomials, bin by bin)."""
    counts = np.asarray(counts, np.int64)
    shares = np.broadcast_to(np.asarray(shares, float), counts.shape + (np.shape(shares)[-1],))
    out = np.zeros(shares.shape, np.int64)
    remaining = counts.copy()
    left = np.ones(counts.shape)
    for k in range(shares.shape[-1] - 1):
        probability = np.divide(shares[..., k], left, out=np.zeros(counts.shape), where=left > 0)
        out[..., k] = rng.binomial(remaining, np.clip(probability, 0.0, 1.0))
        remaining -= out[..., k]
        left = left - shares[..., k]
    out[..., -1] = remaining
    return out


def honest_bins(rng: np.random.Generator, ballots: np.ndarray, region_profiles: np.ndarray,
                station_region: np.ndarray, kappa_station: float) -> np.ndarray:
    """Honest ballots (station,) split over the bins: each station's profile ~ Dirichlet(kappa_station *
    its region's profile) (``region_profiles`` (region, bin), ``station_region`` (station,) indices), then a
    multinomial split. Returns (station, bin) int64 summing to ``ballots``."""
    profiles = dirichlet(rng, region_profiles[station_region], kappa_station)
    return split_counts(rng, ballots, profiles)


def cumulative(bins: np.ndarray) -> np.ndarray:
    """(..., bin) counts → (..., report) cumulative counts at each reporting time (the last: the final)."""
    return np.cumsum(bins, axis=-1)
