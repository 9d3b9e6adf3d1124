"""The first stage of Klimek's fraud model, shared by the histogram and likelihood fits: each station's honest
group, and the honest centres and spreads estimated from the modes of each group's turnout and leader share."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkit.forensics.core import Election

#: SD of extreme fraud's turnout and share around 1 (shares)
EXTREME_SD = 0.075
#: an honest group (district or region) needs this many stations; smaller ones are pooled
MIN_GROUP_STATIONS = 30
#: bins of the histograms whose modes are the first stage's centres
MODE_BINS = 100
#: the smallest honest SD (shares)
MIN_SD = 1e-3


@dataclass(frozen=True)
class FirstStage:
    """Honest-model parameters (shares in [0, 1]): the centres ``tau``, ``nu`` of each honest group, shape
    (group,), and the common within-group SDs ``sigma_tau``, ``sigma_nu`` and incremental fraud's ``theta``."""

    tau: np.ndarray
    sigma_tau: float
    nu: np.ndarray
    sigma_nu: float
    theta: float


def honest_groups(e: Election) -> np.ndarray:
    """The honest group of every station, shape (station,), int64 indices 0..G-1: its ``district`` (where the
    election has one) when that holds at least ``MIN_GROUP_STATIONS`` stations, else its ``region`` when that
    does, else one group pooling the remaining stations. Units smaller than that give too noisy a centre.
    Groups are numbered in the order of their labels (the pool ``""``, a region's name, and
    ``region + "\x1f" + district`` for a district); computed once per election's stations
    (:meth:`simkit.forensics.core.Election.geographic`)."""
    return e.geographic("honest_groups", lambda: _honest_groups(e))


def _honest_groups(e: Election) -> np.ndarray:
    region_names, region, district_names, district = e.unit_codes()
    # a unit is a code: 1 + 2 r for region r, 2 + 2 (r D + d) for district d of region r; 0 for the pool
    levels = (2 + 2 * (region * district_names.size + district), 1 + 2 * region)
    unit = np.zeros(e.n, dtype=np.int64)
    for level in levels:
        free = np.flatnonzero(unit == 0)
        _, index, counts = np.unique(level[free], return_inverse=True, return_counts=True)
        take = free[counts[index.reshape(-1)] >= MIN_GROUP_STATIONS]
        unit[take] = level[take]
    codes, group = np.unique(unit, return_inverse=True)
    in_region = np.where(codes % 2 == 1, (codes - 1) // 2, (codes - 2) // 2 // max(district_names.size, 1))
    labels = np.where(codes == 0, "", np.char.add(region_names[in_region], np.where(
        codes % 2 == 1, "", np.char.add("\x1f", district_names[(codes - 2) // 2 % max(district_names.size, 1)]))))
    rank = np.empty(codes.size, dtype=np.int64)
    rank[np.argsort(labels, kind="stable")] = np.arange(codes.size)
    return rank[group.reshape(-1)]


def _modes(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's mode of ``values`` (shares, shape (station,)), shape (group,): the centre of the fullest
    window of a 100-bin histogram, 3 bins wide at 2,000 or more values and wider below (about 60 / sqrt(n) bins
    either side), so that a group of 30 stations still has a stable mode. Where several windows tie for the
    fullest, the mode is the midpoint of the run of consecutive fullest windows that holds the first of them
    (every window of that run holds as many values, so the counts prefer no centre in it and its middle favours
    neither side; the first window would put the mode up to half a window below the values): a group whose
    values lie in one bin gets that bin's centre, in two adjacent bins their common edge. Window centres run
    past the histogram's edges (from half a window below bin 0 to half a window above bin 99, the bins outside
    empty), so the run is not cut off there and values crowding the first or last bin get that bin's centre
    (0.005, 0.995), not a mode up to half a window inward; the midpoint is then clipped to bins 0..99."""
    cells = np.clip((values * MODE_BINS).astype(np.int64), 0, MODE_BINS - 1)
    counts = np.bincount(group * MODE_BINS + cells, minlength=n_groups * MODE_BINS).reshape(n_groups, MODE_BINS)
    half = np.maximum(1, (60 / np.sqrt(np.maximum(counts.sum(axis=1), 1))).astype(np.int64))[:, None]
    cumulative = np.concatenate([np.zeros((n_groups, 1), np.int64), np.cumsum(counts, axis=1)], axis=1)
    reach = int(half.max())
    centre = np.arange(-reach, MODE_BINS + reach)[None, :]
    window = (np.take_along_axis(cumulative, np.clip(centre + half + 1, 0, MODE_BINS), axis=1)
              - np.take_along_axis(cumulative, np.clip(centre - half, 0, MODE_BINS), axis=1))
    middle = _middle_of_first_run(window == window.max(axis=1, keepdims=True)) - reach
    return (np.clip(middle, 0, MODE_BINS - 1) + 0.5) / MODE_BINS


def _middle_of_first_run(is_max: np.ndarray) -> np.ndarray:
    """The midpoint of the first run of True in each row of ``is_max`` (shape (group, bin), each row with at
    least one True), shape (group,), float bin indices (a half-integer for a run of even length)."""
    first = np.argmax(is_max, axis=1)
    after = ~is_max & (np.arange(is_max.shape[1])[None, :] > first[:, None])
    last = np.where(after.any(axis=1), np.argmax(after, axis=1), is_max.shape[1]) - 1
    return (first + last) / 2


def first_stage(turnout: np.ndarray, share: np.ndarray, group: np.ndarray | None = None) -> FirstStage:
    """Honest parameters from station turnout and leader share (shares, shape (station,)) and each station's
    honest group (:func:`honest_groups`; None: one group): each group's modes, the SDs and theta pooled over
    the groups around their own modes."""
    group = np.zeros(turnout.size, np.int64) if group is None else group
    n_groups = int(group.max()) + 1 if group.size else 1
    tau, nu = _modes(turnout, group, n_groups), _modes(share, group, n_groups)
    dt, dv = turnout - tau[group], share - nu[group]
    return FirstStage(tau=tau, sigma_tau=_root_mean_square(dt[dt < 0]), nu=nu, sigma_nu=_root_mean_square(dv[dv < 0]),
                      theta=_root_mean_square(dv[dv > 0]) ** 0.5)


def _root_mean_square(values: np.ndarray) -> float:
    """sqrt(mean(values**2)), ``MIN_SD`` for no values or zeros (a group at one point)."""
    return max(float(np.sqrt(np.mean(values ** 2))) if values.size else 0.0, MIN_SD)
