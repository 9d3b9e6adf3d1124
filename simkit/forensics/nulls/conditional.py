"""The turnout-conditional honest model: each station keeps its observed ballots; its leader share is drawn from
what honest stations show at the same turnout, relative to their own district.

It is the null of the tests that read the leader's votes against turnout (which tests: ``SIMULATED_MODEL`` in
:mod:`simkit.forensics.registry`). It starts from the robust fit of the hierarchical model
(:func:`simkit.forensics.nulls.hierarchical.fit_core`: size covariate, region and district centres shrunk by
empirical Bayes, a trimmed core without the stuffing corner, residual pools), and replaces the unconditional
residual pair by a **nearest-neighbour conditional bootstrap** of the share residual given the turnout residual
(the k-nearest-neighbour bootstrap of Lall & Sharma 1996, *Water Resources Research* 32:679):

- each station's turnout residual ``e_t`` (``logit`` of its observed turnout minus its fitted centre) and share
  residual ``e_v`` (``logit`` of its leader share minus its centre) are put on a common scale, divided by the
  latent SDs ``s_t``, ``s_v`` of its residual pool (the district, else region and size class, else region, else
  nation, as in the hierarchical model; robust SD with the counting noise removed): ``z_t = e_t / s_t``,
  ``z_v = e_v / s_v``. Districts keep their own spread; the shape of the relation is read from the whole nation;
- the **donors** are the stations outside the national stuffing corner whose share residual (regional slope
  removed) lies within ``TRIM_Z`` SDs of their centre: the hierarchical core without its turnout trimming (the
  turnout is held at the data here, not evidence). Station ``i`` draws one donor ``j`` uniformly among the ``K``
  donors whose ``z_t`` are nearest its own (itself left out when it is one of them), ``K = max(MIN_NEIGHBOURS,
  ceil(sqrt(n)))`` for ``n`` donors (at most ``n - 1``): Lall & Sharma's ``K = sqrt(n)``, so the window narrows
  in share of the donors as the election grows (179 donors of Poland's 32,000 stations);
- latent ``logit v* = c_v[i] + s_v[i] r[j]``, ``c_v[i]`` the station's share centre (size, region, district) and
  ``r[j]`` the donor's ``z_v`` deflated for its counting noise around its local mean: ``r = m + (z_v - m)
  sqrt(s^2 / (s^2 + b_j))``, ``m`` the mean ``z_v`` of the ``K`` donors around ``j`` in turnout order, ``b_j`` its
  counting-noise variance on this scale and ``s^2`` the latent variance of ``z_v - m`` over all donors (variance
  less mean counting noise, floor 1e-4);
- exact counts: ``ballots`` as observed, ``leader ~ Bin(ballots, v*)``, the other options multinomial at the
  station's observed proportions among non-leader votes
  (:func:`simkit.forensics.nulls.compiled_draws.conditional_counts`).

A station whose turnout lies beyond the donors' range gets the donors at that end of the range.

Design history, stated because it was changed after development checks on clean elections (40 draws, before the
false-positive panel was run): donors drawn within each residual pool (district first) reproduced the shape of
the share distribution but not the turnout–share correlation (Poland 2025 round 1: correlation z -6.1, as the
stations at the ends of a small pool's turnout range have no donor at their turnout); donors drawn nationally on
the raw logit scale reproduced the correlation (z +1.4) but not the log vote rate's skew (z -18); the common
scale keeps both (z +1.4 and +2.8 on the same check). Donors restricted to the hierarchical core (turnout trimmed
too) changed the correlation little (-7.0 against -7.2 with pools).

What it absorbs: an association of share and turnout that the honest donors already show is, to this null,
honest, and so is everything about turnout itself (held at the data). What stays visible is a station whose share
is above what honest donors show at the same turnout relative to their districts: stuffing or carousel voting at
a share of stations. A manipulation that moves whole districts (a district effect) or the relation of all donors
(a manipulation spread over most stations) is not detected; the power table of the README measures what is
lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simkit.forensics.core import Election
from simkit.forensics.nulls import compiled_draws
from simkit.forensics.nulls.hierarchical import TRIM_Z, fit_core, other_proportions, pools

#: the least number of donors a station draws from (a pool of fewer donors lends all but the station)
MIN_NEIGHBOURS = 10
#: the latent variance of a donor's share is averaged over this many times ``K`` donors around it
VARIANCE_WINDOWS = 3
#: floor of the latent share variance on the logit scale
MIN_LATENT_VARIANCE = 1e-4


def neighbours(pool_size: int) -> int:
    """``K``, the number of donors of a station whose pool holds ``pool_size`` donors (module docstring)."""
    return max(1, min(pool_size - 1, max(MIN_NEIGHBOURS, math.ceil(math.sqrt(pool_size)))))


def nearest_window(sorted_values: np.ndarray, query: np.ndarray, width: int) -> np.ndarray:
    """Start of the ``width`` consecutive entries of ``sorted_values`` (ascending, shape (n,)) nearest to each
    ``query`` (shape (m,)): in one dimension the ``width`` nearest neighbours are a run of the sorted values.
    Returns int64 starts in ``[0, n - width]``, shape (m,)."""
    n = sorted_values.size
    position = np.searchsorted(sorted_values, query)
    hi = np.minimum(position, n - width)
    lo = np.minimum(np.maximum(position - width, 0), hi)
    # the first start s with a[s + width] - x >= x - a[s] (dropping a[s] for a[s + width] no longer helps)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        right = sorted_values[np.minimum(mid + width, n - 1)]
        stop = (mid >= hi) | (right - query >= query - sorted_values[mid])
        hi = np.where(stop & (lo < hi), mid, hi)
        lo = np.where(~stop & (lo < hi), mid + 1, lo)
    return lo.astype(np.int64)


@dataclass(frozen=True)
class Windows:
    """Each station's donors in one pool: the run ``start[s]:start[s] + span[s]`` of the pool's donors (in turnout
    order) less ``own[s]`` (the station itself when it is a donor; -1 otherwise), ``K`` donors in all."""

    start: np.ndarray
    span: np.ndarray
    own: np.ndarray


def windows(turnout: np.ndarray, query: np.ndarray, own: np.ndarray, k: int) -> Windows:
    """The ``k`` donors nearest each station: ``turnout`` of the donors (ascending, shape (n,)), ``query`` the
    stations' turnout residuals and ``own`` their rank among the donors (-1 for a station that is not one),
    shape (m,)."""
    lends = (own >= 0) & (turnout.size > k)
    start = nearest_window(turnout, query, k)
    start[lends] = np.clip(nearest_window(turnout, query[lends], k + 1), own[lends] - k, own[lends])
    return Windows(start=start, span=np.where(lends, k + 1, k), own=np.where(lends, own, -1))


def local_line_at(turnout: np.ndarray, share: np.ndarray, where: Windows, query: np.ndarray) -> np.ndarray:
    """The least-squares line of ``share`` on ``turnout`` (the donors, ascending turnout, shape (n,)) over each
    station's donors (:class:`Windows`), evaluated at the station's own turnout residual ``query`` held within
    the donors' range; shape (m,)."""
    def window_sum(values: np.ndarray) -> np.ndarray:
        total = np.concatenate([[0.0], np.cumsum(values)])
        inside = total[where.start + where.span] - total[where.start]
        return inside - np.where(where.own >= 0, values[np.maximum(where.own, 0)], 0.0)

    count = where.span - (where.own >= 0)
    mean_x, mean_y = window_sum(turnout) / count, window_sum(share) / count
    var_x = window_sum(turnout ** 2) / count - mean_x ** 2
    cov_xy = window_sum(turnout * share) / count - mean_x * mean_y
    slope = np.divide(cov_xy, var_x, out=np.zeros(query.size), where=var_x > 1e-12)
    return mean_y + slope * (np.clip(query, turnout[0], turnout[-1]) - mean_x)


def window_means(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of ``values`` (shape (n,), in order) over the run of ``width`` entries centred on each (shifted
    inward at the ends), shape (n,)."""
    n = values.size
    width = min(width, n)
    start = np.clip(np.arange(n) - width // 2, 0, n - width)
    total = np.concatenate([[0.0], np.cumsum(values)])
    return (total[start + width] - total[start]) / width


@dataclass(frozen=True)
class PoolFit:
    """One pool's donors (in turnout order, shape (n,)): ``residual`` from the local line of the ``k`` others
    nearest each, and ``latent`` the local latent variance of the share around those lines."""

    residual: np.ndarray
    latent: np.ndarray
    k: int


def pool_fit(turnout: np.ndarray, share: np.ndarray, noise: np.ndarray) -> PoolFit:
    """Local lines of one pool's donors (``turnout`` ascending, ``share``, ``noise`` the share's counting-noise
    variance; shape (n,)) at their own turnouts, each fitted without the donor itself. A residual from a line
    through ``k`` others has about ``1 + 2 / k`` times the variance of a station around the true line; the
    latent variance is that variance, averaged over the ``VARIANCE_WINDOWS * k`` donors around each, less their
    mean counting noise (floor ``MIN_LATENT_VARIANCE``)."""
    k = neighbours(turnout.size)
    line = local_line_at(turnout, share, windows(turnout, turnout, np.arange(turnout.size), k), turnout)
    residual = share - line
    width = VARIANCE_WINDOWS * k
    latent = window_means(residual ** 2, width) / (1 + 2 / k) - window_means(noise, width)
    return PoolFit(residual=residual, latent=np.maximum(latent, MIN_LATENT_VARIANCE), k=k)


def outlying(fit: PoolFit, noise: np.ndarray) -> np.ndarray:
    """Donor candidates (bool, shape (n,)) whose share lies more than ``TRIM_Z`` SDs from their local line."""
    return np.abs(fit.residual) > TRIM_Z * np.sqrt((fit.latent + noise) * (1 + 2 / fit.k))


def deflated(fit: PoolFit, noise: np.ndarray) -> np.ndarray:
    """The donors' residuals (shape (n,)) scaled so that a draw, added to the error of the receiving station's
    own local line (about ``2 (latent + noise) / k``), has the latent variance: the counting noise is drawn afresh
    at the station, and neither it nor the lines' error is counted twice."""
    target = np.maximum(fit.latent - 2 * (fit.latent + noise) / fit.k, MIN_LATENT_VARIANCE)
    return fit.residual * np.sqrt(target / ((fit.latent + noise) * (1 + 2 / fit.k)))


@dataclass(frozen=True)
class ConditionalModel:
    """The fitted turnout-conditional model (module docstring). ``share_center`` (station,) logit scale: the
    station's share centre plus its local line; station ``s`` draws one of the flat ``donor_share`` (the pools'
    deflated residuals, each pool in turnout order) among ``window_size[s]`` entries from ``window_start[s]`` on,
    passing over entry ``skip[s]`` (itself as a donor; -1 for none)."""

    share_center: np.ndarray
    window_start: np.ndarray
    window_size: np.ndarray
    skip: np.ndarray
    donor_share: np.ndarray
    other_proportions: np.ndarray
    donor_share_of_stations: float
    pools: int
    neighbours_median: float

    def counts(self, e: Election, seed: np.random.SeedSequence):
        """One honest election's ``(ballots, votes)``: the ballots of ``e``, the votes drawn (compiled draws)."""
        return compiled_draws.conditional_counts(e.ballots, self.share_center, self.window_start, self.window_size,
                                                 self.skip, self.donor_share, self.other_proportions, e.leader,
                                                 seed)

    def describe(self) -> dict[str, float]:
        return {"donor_share_of_stations": self.donor_share_of_stations, "pools": self.pools,
                "neighbours_median": self.neighbours_median}


def fit_conditional(e: Election) -> ConditionalModel:
    """Fit the turnout-conditional model to ``e`` (module docstring)."""
    fit = fit_core(e)
    et, ev, noise = fit.turnout_residual, fit.share_residual, fit.share_noise
    station_pool, candidates = pools(fit.pool_groups, fit.outside_corner)
    line = np.zeros(e.n)
    start = np.zeros(e.n, dtype=np.int64)
    size = np.zeros(e.n, dtype=np.int64)
    skip = np.full(e.n, -1, dtype=np.int64)
    rank = np.full(e.n, -1, dtype=np.int64)  # a donor's place in the pool being filled, -1 for the others
    is_donor = np.zeros(e.n, dtype=bool)
    by_pool = np.argsort(station_pool, kind="stable")
    bounds = np.searchsorted(station_pool[by_pool], np.arange(len(candidates) + 1))
    donor_share, offset = [], 0
    for pool, members in enumerate(candidates):
        order = members[np.argsort(et[members], kind="stable")]
        order = order[~outlying(pool_fit(et[order], ev[order], noise[order]), noise[order])]
        fitted = pool_fit(et[order], ev[order], noise[order])
        donor_share.append(deflated(fitted, noise[order]))
        k = fitted.k
        stations = by_pool[bounds[pool]:bounds[pool + 1]]
        rank[order] = np.arange(order.size)
        where = windows(et[order], et[stations], rank[stations], k)
        rank[order] = -1
        line[stations] = local_line_at(et[order], ev[order], where, et[stations])
        start[stations] = offset + where.start
        size[stations] = k
        skip[stations] = np.where(where.own >= 0, offset + where.own, -1)
        is_donor[stations] = where.own >= 0
        offset += order.size
    return ConditionalModel(share_center=fit.share.center + line, window_start=start, window_size=size, skip=skip,
                            donor_share=np.concatenate(donor_share), other_proportions=other_proportions(e),
                            donor_share_of_stations=float(is_donor.mean()), pools=len(candidates),
                            neighbours_median=float(np.median(size)))
