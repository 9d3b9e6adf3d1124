"""The turnout-conditional honest model: each station keeps its observed ballots; its leader share is drawn from
what honest stations of its pool show at the same turnout, relative to their own centres.

It is the null of the tests that read the leader's votes against turnout (which tests: ``SIMULATED_MODEL`` in
:mod:`simkit.forensics.registry`). It starts from the robust fit of the hierarchical model
(:func:`simkit.forensics.nulls.hierarchical.fit_core`: size covariate, region and district centres shrunk by
empirical Bayes, the national stuffing corner, residual pools), and replaces the unconditional residual pair by
a **nearest-neighbour conditional bootstrap** of the share residual given the turnout residual (the
k-nearest-neighbour bootstrap of Lall & Sharma 1996, *Water Resources Research* 32:679) around local lines
(local linear regression, Cleveland 1979, *JASA* 74:829, which removes the bias of a nearest-neighbour mean at
the ends of the turnout range):

- each station has its turnout residual ``e_t`` (``logit`` of its observed turnout minus its district's centre)
  and share residual ``e_v`` (``logit`` of its leader share minus its district's centre ``c_v``), a district's
  centre being its fitted, shrunk centre plus the mean residual of its core stations, *unshrunk*
  (:func:`district_centred`): the null holds each district's own level, as it holds each station's turnout, and a
  donor from another district of the pool lends only a deviation within its district;
- **pools** as in the hierarchical model (the district, else region and size class, else region, else nation,
  the first with at least ``MIN_POOL`` candidates), the candidates being the stations outside the stuffing
  corner; in each pool, a candidate whose ``e_v`` lies more than ``TRIM_Z`` SDs (latent and counting noise) from
  the local line of its nearest others is no donor: a stuffed station does not lend its share;
- ``K = max(MIN_NEIGHBOURS, ceil(sqrt(n)))`` for a pool of ``n`` donors (at most ``n - 1``): Lall & Sharma's
  ``K = sqrt(n)``, so the window narrows in share of the pool as the pool grows, with a floor so that a small
  pool still gives a spread of donors. A station's donors are the ``K`` of its pool whose ``e_t`` are nearest
  its own, itself left out when it is one of them;
- the station's share centre is ``c_v + l``, ``l`` the least-squares line of ``e_v`` on ``e_t`` over its ``K``
  donors, evaluated at its own ``e_t`` (held within the donors' range: no extrapolation beyond the last donor);
- each donor lends its residual from its own local line (fitted on its ``K`` nearest others), scaled by
  ``sqrt(L' / ((L + b) (1 + 2 / K)))``: ``b`` its counting-noise variance ``1 / (n p (1 - p))``, ``L`` the latent
  variance around the lines over the ``VARIANCE_WINDOWS K`` donors around it (the mean squared residual divided
  by ``1 + 2 / K``, the inflation of a residual from a line through ``K`` others, less the mean counting noise),
  and ``L' = L - 2 (L + b) / K`` what is left of it once the error of the receiving station's own line (about
  ``2 (L + b) / K``) is counted; so neither the counting noise, drawn afresh, nor the lines' error is counted
  twice (floors ``MIN_LATENT_VARIANCE``);
- latent ``logit v* = c_v + l + r`` for the residual ``r`` of one donor drawn uniformly; exact counts:
  ``ballots`` as observed, ``leader ~ Bin(ballots, v*)``, and the rest in one column for every other option
  together (:func:`simkit.forensics.nulls.compiled_draws.conditional_counts`): the tests of this model read the
  leader's votes, the ballots and the registers alone, so the other options are not drawn one by one.

Design history, stated because it changed after development checks on clean elections (12-40 draws, before
the false-positive panel of docs/forensics.md was run): donors drawn from the K nearest of the pool without local lines
left the stations at the ends of a small pool's turnout range with donors all on one side (Poland 2025 round
1: correlation z -6.1); donors drawn nationally reproduced the correlation (z +1.4) but not the log vote rate's
skew (z -18); local lines fixed the first without the second. A synthetic election with a strongly bent relation
(``tests/test_forensics_conditional.py``) showed the lines' own error as extra spread, which the scaling above
removes. After the false-positive panel had been run (docs/forensics.md), residuals about the shrunk centres were
replaced by residuals about each district's own centre (above): shrinkage had left part of a small district's
effect in its stations' residuals, which donors from other districts (Spain's 8,000 municipalities are mostly
too small to be their own pool) lent with the pool's relation; on Spain the correlation's null z went from
+13.4 to +2.4 (200 draws). The panel of docs/forensics.md was rerun after that change; where the pool is the district
itself (Mexico's federal districts) nothing changes, as a local line is unmoved by a shift of all its donors.

Known limits, measured: where the relation bends strongly at the ends of the turnout range, the end stations'
lines miss the bend (synthetic election with ``logit v = 1.2 e_t - 0.9 e_t^2``, 800-2,500 voters: the 2% of
stations with the highest turnout get a mean share residual of +0.47 in the null against +0.23 in the data, and
the correlation lies at z -4.6 in its null; with 60-250 voters, where counting noise hides the ends, at -2.0).

What it absorbs: an association of share and turnout that the honest donors already show is, to this null,
honest, and so is everything about turnout itself (held at the data). What stays visible is a station whose share
is above what honest donors show at the same turnout relative to their districts: stuffing or carousel voting at
a share of stations. A manipulation that moves whole districts (a district effect) or the relation of all donors
(a manipulation spread over most stations) is not detected; the power table of docs/forensics.md measures what is
lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simkit.forensics.core import Election
from simkit.forensics.nulls import compiled_draws
from simkit.forensics.nulls.hierarchical import TRIM_Z, CoreFit, fit_core, pools

#: the name of the column that holds every option but the leader in this model's elections
OTHER_OPTIONS = "all other options"
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
    start = np.empty(query.size, dtype=np.int64)
    start[~lends] = nearest_window(turnout, query[~lends], k)
    start[lends] = np.clip(nearest_window(turnout, query[lends], k + 1), own[lends] - k, own[lends])
    return Windows(start=start, span=np.where(lends, k + 1, k), own=np.where(lends, own, -1))


def run_sums(values: np.ndarray, start: np.ndarray, length) -> np.ndarray:
    """Sums of ``values`` (shape (n,)) over the runs ``start:start + length`` (shape (m,) each, or ``length`` a
    scalar), by one prefix sum; shape (m,)."""
    total = np.concatenate([[0.0], np.cumsum(values)])
    return total[start + length] - total[start]


def local_line_at(turnout: np.ndarray, share: np.ndarray, where: Windows, query: np.ndarray) -> np.ndarray:
    """The least-squares line of ``share`` on ``turnout`` (the donors, ascending turnout, shape (n,)) over each
    station's donors (:class:`Windows`), evaluated at the station's own turnout residual ``query`` held within
    the donors' range; shape (m,)."""
    def window_sum(values: np.ndarray) -> np.ndarray:
        inside = run_sums(values, where.start, where.span)
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
    return run_sums(values, start, width) / width


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
    donor_share_of_stations: float
    pools: int
    neighbours_median: float

    def counts(self, e: Election, seed: np.random.SeedSequence):
        """One honest election's ``(ballots, votes)``: the ballots of ``e``, the leader's votes drawn and every other
        option's together (compiled draws; columns :meth:`options`)."""
        return compiled_draws.conditional_counts(e.ballots, self.share_center, self.window_start, self.window_size,
                                                 self.skip, self.donor_share, seed)

    def options(self, e: Election) -> tuple[tuple[str, ...], int]:
        """The options of its elections and the leader's index: ``e``'s leader, then every other option
        together (:data:`OTHER_OPTIONS`; its tests read the leader's votes, ballots and registers alone)."""
        return (e.options[e.leader], OTHER_OPTIONS), 0

    def describe(self) -> dict[str, float]:
        return {"donor_share_of_stations": self.donor_share_of_stations, "pools": self.pools,
                "neighbours_median": self.neighbours_median}


def district_centred(fit: CoreFit) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residuals about each district's own centre: ``(share_centre, turnout_residual, share_residual, lends)``,
    shape (station,). A district's centre is its fitted (shrunk) centre plus the mean residual of its core
    stations, unshrunk: the null conditions on the district's own level, so a donor from another district
    lends only a within-district deviation. A district with no core station keeps its shrunk centre; a station
    lends (``lends``) only outside the stuffing corner and in a district of at least two core stations (a lone
    station's residual about its own mean is 0)."""
    district = fit.pool_groups[0]
    n_districts = int(district.max()) + 1
    core = np.bincount(district[fit.core], minlength=n_districts).astype(float)

    def core_mean(residual: np.ndarray) -> np.ndarray:
        total = np.bincount(district[fit.core], weights=residual[fit.core], minlength=n_districts)
        return np.divide(total, core, out=np.zeros(n_districts), where=core > 0)[district]

    turnout_mean, share_mean = core_mean(fit.turnout_residual), core_mean(fit.share_residual)
    return (fit.share.center + share_mean, fit.turnout_residual - turnout_mean, fit.share_residual - share_mean,
            fit.outside_corner & (core[district] >= 2))


def donors(e: Election) -> int:
    """How many stations of ``e`` may lend the model a residual (``lends`` of :func:`district_centred`): with
    none it has nothing to draw from; computed once per election, as each test of this null asks)."""
    return e.derived("nulls.donors", lambda: int(district_centred(fit_core(e))[3].sum()))


def fit_conditional(e: Election) -> ConditionalModel:
    """Fit the turnout-conditional model to ``e`` (module docstring)."""
    fit = fit_core(e)
    centre, et, ev, lends = district_centred(fit)
    noise = fit.share_noise
    station_pool, candidates = pools(fit.pool_groups, lends)
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
    return ConditionalModel(share_center=centre + line, window_start=start, window_size=size, skip=skip,
                            donor_share=np.concatenate(donor_share),
                            donor_share_of_stations=float(is_donor.mean()), pools=len(candidates),
                            neighbours_median=float(np.median(size)))
