"""Station-level timeline tests, for station files (``simkit timeline DATA --map MAP``).

Within a region, each station's share of its final count reached by the early report (``station_front_loading``)
or arriving after the last intermediate report (``station_late_surge``) is standardised by its honest spread,
``sqrt(c (1 - c) [1/n + (1 - 1/n) / (kappa_station + 1)])`` around the region's own share ``c`` (Dirichlet-
multinomial, n the station's final count). The statistic is the share of the region's stations beyond
``Z_THRESHOLD`` (the upper 1% of a normal): a subset of stations whose voters came early (coerced) or late
(stuffed). The null redraws every station from ``Dirichlet(kappa_station * q_r)`` and a multinomial of its n,
``q_r`` the region's observed bins, and recomputes the statistic; p-values one-sided (greater).
"""
from __future__ import annotations

import numpy as np

from ..errors import first_of
from ..model.timeline import dirichlet, split_counts
from ..schema import MIN_STATIONS

Z_THRESHOLD = 2.326  #: upper 1% point of the standard normal
STATION_TESTS = ("station_front_loading", "station_late_surge")


def _excess(cumulative: np.ndarray, region: np.ndarray, n_regions: int, early: int, kappa: float) -> np.ndarray:
    """(test, region) share of each region's stations beyond the threshold, from cumulative counts (station,
    report + 1)."""
    n = cumulative[:, -1].astype(float)
    columns = {"station_front_loading": cumulative[:, early] / n, "station_late_surge": 1.0 - cumulative[:, -2] / n}
    weights = np.bincount(region, weights=n, minlength=n_regions)
    out = np.empty((len(STATION_TESTS), n_regions))
    stations = np.bincount(region, minlength=n_regions)
    for t, test in enumerate(STATION_TESTS):
        share = columns[test]
        centre = np.bincount(region, weights=share * n, minlength=n_regions) / weights
        c = centre[region]
        sd = np.sqrt(np.clip(c * (1 - c), 1e-12, None) * (1 / n + (1 - 1 / n) / (kappa + 1)))
        out[t] = np.bincount(region, weights=(share - c) / sd > Z_THRESHOLD, minlength=n_regions) / stations
    return out


def station_rows(cumulative: np.ndarray, region: np.ndarray, region_names: list[str], early: int,
                 kappa_station: float, rng: np.random.Generator, draws: int = 200) -> list[dict]:
    """Rows (``region``, ``test``, ``statistic``, ``null_mean``, ``null_sd``, ``p_value``, ``alternative``) for
    stations with positive final counts: ``cumulative`` (station, report + 1) int, ``region`` (station,) indices.
    A region of fewer than :data:`simkit.schema.MIN_STATIONS` stations has no row (:func:`untested_regions`); its
    stations are redrawn all the same, so that the other regions' draws do not depend on it."""
    n_regions = len(region_names)
    seen = _excess(cumulative, region, n_regions, early, kappa_station)
    bins = np.diff(cumulative, axis=1, prepend=0)
    totals = np.zeros((n_regions, bins.shape[1]))
    np.add.at(totals, region, bins)
    profiles = totals / totals.sum(axis=1, keepdims=True)
    null = np.empty((draws,) + seen.shape)
    for d in range(draws):
        station_profiles = dirichlet(rng, profiles[region], kappa_station)
        null[d] = _excess(np.cumsum(split_counts(rng, cumulative[:, -1], station_profiles), axis=1), region,
                          n_regions, early, kappa_station)
    p_values = (1.0 + (null >= seen).sum(axis=0)) / (1.0 + draws)
    tested = np.bincount(region, minlength=n_regions) >= MIN_STATIONS
    return [{"region": name, "test": test, "statistic": float(seen[t, r]), "null_mean": float(null[:, t, r].mean()),
             "null_sd": float(null[:, t, r].std(ddof=1)), "p_value": float(p_values[t, r]), "alternative": "greater"}
            for t, test in enumerate(STATION_TESTS) for r, name in enumerate(region_names) if tested[r]]


def untested_regions(region: np.ndarray, region_names: list[str]) -> dict[str, str]:
    """The station tests -> why they leave out the regions of fewer than :data:`simkit.schema.MIN_STATIONS`
    stations (``region`` (station,) indices into ``region_names``, stations with positive final counts); empty when
    none is."""
    counts = np.bincount(region, minlength=len(region_names))
    small = [f"{name} ({count})" for name, count in zip(region_names, counts) if count < MIN_STATIONS]
    if not small:
        return {}
    return {", ".join(STATION_TESTS): f"in regions of fewer than {MIN_STATIONS} stations with ballots: "
                                      f"{first_of(small)}"}
