"""The hierarchical honest model of the simulated null, fitted robustly to the election it tests.

On the logit scale, with ``x`` = log registered (centred on its median) and ``r``, ``d`` a station's region and
district (district = region when the data have none),

    logit t = mu_t + beta_t x + a_t[r] + a_t[d] + e_t
    logit v = mu_v + beta_v x + a_v[r] + a_v[d] + gamma[r] e_t + e_v

(``t`` turnout, ``v`` leader share). Fit, on the *core* (below):

- ``mu``, ``beta``: least squares on the core, alternated with the group effects (``FIT_ROUNDS`` backfitting
  passes);
- group effects by **empirical Bayes** (normal-normal, method of moments): a group's mean residual ``m_g`` over
  its ``n_g`` core stations has sampling variance ``s^2 / n_g`` (``s^2`` the pooled within-group variance), the
  between-group variance is ``tau^2 = max(mean(m_g^2 - s^2 / n_g), 0)``, and the effect is
  ``m_g tau^2 / (tau^2 + s^2 / n_g)``: regions shrink toward the nation, districts (fitted on what the region
  leaves) toward their region; a group with no core station gets 0;
- ``gamma[r]``: the within-region least-squares slope of the share residual on the turnout residual, shrunk the
  same way toward the core-weighted national slope;
- the **core** is refitted each pass: stations whose residuals lie within ``TRIM_Z`` standard deviations in both
  dimensions, the standard deviation of station ``i`` being ``sqrt(sigma^2 + binomial_i)`` (``sigma`` the robust
  1.4826 MAD scale of the latent residuals, ``binomial_i`` the counting noise ``1 / (n p (1 - p))`` of its
  counts), so small stations are not trimmed for their counting noise. What is trimmed is reported as
  ``core_share``: stations far out of their district's cloud (a stuffed tail, whole-percent or 100% outliers)
  neither pull the fit nor lend their residuals to the null. Stations in the national *stuffing corner* (logit
  turnout and logit leader share both more than ``CORNER_Z`` = 2.5 robust SDs above their national medians)
  never enter the core: a region or district stuffed as a whole would otherwise be read as an honest effect.

Simulation (:func:`simkit.forensics.nulls.compiled_draws.resampled_counts`): each station draws one residual *pair*
``(e_t, e_v)`` from the core stations of its district; when the district has fewer than ``MIN_POOL`` core
stations, from those of its region in the same station-size class (``SIZE_CLASSES`` national quantile classes of
log registered: small stations spread more), else its whole region, else the nation. So the skew, heavy tails,
size-dependent spread and within-district turnout–share dependence of the data are kept; a residual is first shrunk by ``sqrt(sigma_p^2 / (sigma_p^2 +
binomial_i))`` (``sigma_p`` the pool's latent scale) so that its own counting noise is not counted twice. Then
exact counts at the observed register: ``ballots ~ Bin(registered, t)``, ``leader ~ Bin(ballots, v)``, the other
options multinomial at the station's observed proportions among non-leader votes.

What this null absorbs: a manipulation uniform over whole districts is, to this model, a district effect, so it
is not detected (the power table measures that loss). A manipulation at a share of stations within districts
stays visible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkit.forensics.nulls import compiled_draws
from simkit.forensics.core import Election

TRIM_Z = 4.0
CORNER_Z = 2.5
MIN_POOL = 30
SIZE_CLASSES = 3
FIT_ROUNDS = 4
MAD_TO_SD = 1.4826


def station_district(e: Election) -> np.ndarray:
    """Each station's district label (str, shape (station,)), unique across regions (``Election.district`` is
    the region when the data have no district)."""
    return np.char.add(np.char.add(np.asarray(e.region).astype(str), "\x1f"), np.asarray(e.district).astype(str))


def logit_share(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Logit of count/total with a half-count correction so 0 and 1 stay finite."""
    return np.log((count + 0.5) / (total - count + 0.5))


def binomial_logit_variance(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Counting-noise variance of :func:`logit_share`, ``1 / (n p (1 - p))`` with half-count corrections."""
    p = (count + 0.5) / (total + 1.0)
    return 1.0 / ((total + 1.0) * p * (1 - p))


def shrinkage_weight(tau2: float, sampling: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Normal-normal shrinkage weight ``tau2 / (tau2 + sampling)`` of each group (shape (group,)) where ``used``;
    0 elsewhere, and where both variances are 0 (no spread between or within groups: nothing to shrink, and
    weight 0 loses nothing: every group's estimate is then the common one, a mean of 0 in :func:`shrink`, the
    national slope in :func:`fit_slopes`)."""
    total = tau2 + sampling
    return np.divide(tau2, total, out=np.zeros(sampling.shape), where=used & (total > 0))


def shrink(residual: np.ndarray, group: np.ndarray, n_groups: int, core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes group effects of ``residual`` over the ``core`` stations (module docstring).

    Returns ``(effect, posterior_sd)``, each shape (n_groups,)."""
    counts = np.bincount(group[core], minlength=n_groups).astype(float)
    sums = np.bincount(group[core], weights=residual[core], minlength=n_groups)
    means = np.divide(sums, counts, out=np.zeros(n_groups), where=counts > 0)
    within = residual[core] - means[group[core]]
    dof = max(core.sum() - (counts > 0).sum(), 1)
    s2 = float(within @ within / dof)
    used = counts > 0
    sampling = np.divide(s2, counts, out=np.full(n_groups, np.inf), where=used)
    tau2 = max(float(np.mean(means[used] ** 2 - sampling[used])), 0.0) if used.any() else 0.0
    weight = shrinkage_weight(tau2, sampling, used)
    return weight * means, np.sqrt(np.where(used, weight * np.where(used, sampling, 0.0), tau2))


@dataclass(frozen=True)
class Location:
    """One logit-scale variable's fit: ``center`` (station,), ``size_slope`` (per unit log registered),
    ``region_effect``/``district_effect`` and their posterior sds (shape (region,), (district,))."""

    center: np.ndarray
    size_slope: float
    region_effect: np.ndarray
    region_sd: np.ndarray
    district_effect: np.ndarray
    district_sd: np.ndarray


def fit_location(y: np.ndarray, x: np.ndarray, region: np.ndarray, district: np.ndarray, core: np.ndarray,
                 n_regions: int, n_districts: int) -> Location:
    """Backfit ``y = mu + beta x + a[region] + a[district]`` on ``core`` (effects shrunk, module docstring)."""
    a_r = np.zeros(n_regions)
    a_d = np.zeros(n_districts)
    sd_r, sd_d = np.zeros(n_regions), np.zeros(n_districts)
    design = np.column_stack([np.ones(core.sum()), x[core]])
    mu = beta = 0.0
    for _ in range(FIT_ROUNDS):
        mu, beta = np.linalg.lstsq(design, (y - a_r[region] - a_d[district])[core], rcond=None)[0]
        a_r, sd_r = shrink(y - mu - beta * x - a_d[district], region, n_regions, core)
        a_d, sd_d = shrink(y - mu - beta * x - a_r[region], district, n_districts, core)
    return Location(center=mu + beta * x + a_r[region] + a_d[district], size_slope=float(beta), region_effect=a_r,
                    region_sd=sd_r, district_effect=a_d, district_sd=sd_d)


def fit_slopes(share_residual: np.ndarray, turnout_residual: np.ndarray, region: np.ndarray, core: np.ndarray,
               n_regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Within-region slopes of the share residual on the turnout residual, shrunk toward the national slope.

    Returns ``(slope, posterior_sd)``, shape (region,)."""
    sxx = np.bincount(region[core], weights=turnout_residual[core] ** 2, minlength=n_regions)
    sxy = np.bincount(region[core], weights=(turnout_residual * share_residual)[core], minlength=n_regions)
    national = float(sxy.sum() / max(sxx.sum(), 1e-12))
    raw = np.divide(sxy, sxx, out=np.full(n_regions, national), where=sxx > 0)
    noise = share_residual[core] - raw[region[core]] * turnout_residual[core]
    s2 = float(noise @ noise / max(core.sum() - n_regions, 1))
    used = sxx > 0
    sampling = np.divide(s2, sxx, out=np.full(n_regions, np.inf), where=used)
    tau2 = max(float(np.mean((raw[used] - national) ** 2 - sampling[used])), 0.0) if used.any() else 0.0
    weight = shrinkage_weight(tau2, sampling, used)
    return national + weight * (raw - national), np.sqrt(np.where(used, weight * np.where(used, sampling, 0.0), tau2))


class EveryOption:
    """The ``options`` of an honest model that draws every option of the election it is fitted to."""

    def options(self, e: Election) -> tuple[tuple[str, ...], int]:
        """The options of its elections (``e``'s, every one drawn) and the leader's index."""
        return e.options, e.leader


@dataclass(frozen=True)
class HierarchicalModel(EveryOption):
    """The fitted model (module docstring). Station arrays have shape (station,); residual pools are stored
    flat, pool ``p`` being ``pool_turnout[pool_offsets[p]:pool_offsets[p + 1]]`` (and ``pool_share``)."""

    turnout: Location
    share: Location
    slope: np.ndarray  # (region,)
    slope_sd: np.ndarray
    station_slope: np.ndarray
    station_pool: np.ndarray
    pool_offsets: np.ndarray
    pool_turnout: np.ndarray
    pool_share: np.ndarray
    other_proportions: np.ndarray
    core_share: float

    def counts(self, e: Election, seed: np.random.SeedSequence):
        """One honest election's ``(ballots, votes)`` at the registers of ``e`` (compiled draws)."""
        return compiled_draws.resampled_counts(e.registered, self.turnout.center, self.share.center,
                                               self.station_slope, self.station_pool, self.pool_offsets,
                                               self.pool_turnout, self.pool_share, self.other_proportions,
                                               e.leader, seed)

    def describe(self) -> dict[str, float]:
        return {"core_share": self.core_share, "turnout_size_slope": self.turnout.size_slope,
                "share_size_slope": self.share.size_slope,
                "turnout_region_sd": float(np.std(self.turnout.region_effect)),
                "turnout_district_sd": float(np.std(self.turnout.district_effect)),
                "share_region_sd": float(np.std(self.share.region_effect)),
                "share_district_sd": float(np.std(self.share.district_effect)),
                "slope_median": float(np.median(self.slope)), "pools": int(self.pool_offsets.size - 1)}


def other_proportions(e: Election) -> np.ndarray:
    """Each station's shares among non-leader votes (national shares where it has none), (station, option - 1)."""
    others = np.delete(e.votes, e.leader, axis=1).astype(float)
    national = others.sum(axis=0) / max(others.sum(), 1.0)
    totals = others.sum(axis=1, keepdims=True)
    return np.where(totals > 0, others / np.maximum(totals, 1.0), national)


def stuffing_corner(lt: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """Stations (bool, shape (station,)) whose logit turnout *and* logit leader share both lie more than
    ``CORNER_Z`` robust SDs above their national medians: the upper-right corner that ballot stuffing fills.
    They never enter the core, so a stuffed region or district does not become an honest effect."""
    def z(x):
        return (x - np.median(x)) / max(_robust_scale(x), 1e-9)

    return (z(lt) > CORNER_Z) & (z(lv) > CORNER_Z)


def _robust_scale(x: np.ndarray) -> float:
    return float(MAD_TO_SD * np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def latent_sd(residual: np.ndarray, noise: np.ndarray) -> float:
    """Robust scale of residuals with the mean counting noise removed (floor 0.01)."""
    return float(np.sqrt(max(_robust_scale(residual) ** 2 - float(np.median(noise)), 1e-4)))


def pools(groups: list[np.ndarray], core: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each station's pool index (station,) and each pool's members among the stations ``core`` (bool,
    (station,)): the first of ``groups`` (codes, shape (station,), finest first) whose group holds at least
    ``MIN_POOL`` of them, else the nation."""
    core_index = np.flatnonzero(core)
    members: list[np.ndarray] = []
    pool = np.full(core.size, -1)
    for codes in groups:
        counts = np.bincount(codes[core_index], minlength=int(codes.max()) + 1)
        needed = np.unique(codes[pool < 0])
        eligible = needed[counts[needed] >= MIN_POOL]
        pool_of_code = np.full(counts.size, -1)
        pool_of_code[eligible] = len(members) + np.arange(eligible.size)
        order = np.argsort(codes[core_index], kind="stable")
        bounds = np.r_[0, np.cumsum(counts)]
        members += [core_index[order[bounds[c]:bounds[c + 1]]] for c in eligible]
        pool = np.where(pool < 0, pool_of_code[codes], pool)
    members.append(core_index)  # the nation
    return np.where(pool >= 0, pool, len(members) - 1).astype(np.int64), members


@dataclass(frozen=True)
class CoreFit:
    """The robust fit both honest models start from (module docstring), station arrays of shape (station,):
    the turnout and share :class:`Location` fits, the regional slopes, each station's latent-scale residuals
    ``turnout_residual`` (``logit t`` minus its centre) and ``share_residual`` (``logit v`` minus its centre,
    the slope term not removed), their counting-noise variances, the ``core`` mask, ``outside_corner`` (the
    stations that may enter the core), the codes of the residual pools' groups (finest first: :func:`pools`),
    each station's residual pool and each pool's core members (indices, finest pools first, the nation last)."""

    turnout: Location
    share: Location
    slope: np.ndarray  # (region,)
    slope_sd: np.ndarray
    region: np.ndarray
    turnout_residual: np.ndarray
    share_residual: np.ndarray
    turnout_noise: np.ndarray
    share_noise: np.ndarray
    core: np.ndarray
    outside_corner: np.ndarray
    pool_groups: list[np.ndarray]
    station_pool: np.ndarray
    members: list[np.ndarray]


def fit_core(e: Election) -> CoreFit:
    """Fit the location, slope and core of the hierarchical model to ``e`` and assign the residual pools
    (module docstring); computed once per election and shared by the hierarchical and turnout-conditional
    models (neither changes it)."""
    return e.derived("nulls.core_fit", lambda: _fit_core(e))


def _fit_core(e: Election) -> CoreFit:
    if e.n < 2:
        raise ValueError(f"the hierarchical honest model needs at least 2 stations, got {e.n}")
    _, region = np.unique(e.region, return_inverse=True)
    _, district = np.unique(station_district(e), return_inverse=True)
    n_regions, n_districts = int(region.max()) + 1, int(district.max()) + 1
    lt = logit_share(e.ballots, e.registered)
    lv = logit_share(e.leader_votes, e.ballots)
    noise_t = binomial_logit_variance(e.ballots, e.registered)
    noise_v = binomial_logit_variance(e.leader_votes, e.ballots)
    log_size = np.log(e.registered.astype(float))
    x = log_size - np.median(log_size)
    core_allowed = ~stuffing_corner(lt, lv)
    core = core_allowed.copy()
    for _ in range(FIT_ROUNDS):
        turnout = fit_location(lt, x, region, district, core, n_regions, n_districts)
        share = fit_location(lv, x, region, district, core, n_regions, n_districts)
        et, ev_raw = lt - turnout.center, lv - share.center
        slope, slope_sd = fit_slopes(ev_raw, et, region, core, n_regions)
        ev = ev_raw - slope[region] * et
        sigma_t, sigma_v = latent_sd(et[core], noise_t[core]), latent_sd(ev[core], noise_v[core])
        inside = ((np.abs(et) <= TRIM_Z * np.sqrt(sigma_t ** 2 + noise_t))
                  & (np.abs(ev) <= TRIM_Z * np.sqrt(sigma_v ** 2 + noise_v)) & core_allowed)
        if inside.sum() < 2 or np.array_equal(inside, core):
            break
        core = inside
    size_class = np.searchsorted(np.quantile(x, np.arange(1, SIZE_CLASSES) / SIZE_CLASSES), x)
    groups = [district, region * SIZE_CLASSES + size_class, region]
    station_pool, members = pools(groups, core)
    return CoreFit(turnout=turnout, share=share, slope=slope, slope_sd=slope_sd, region=region,
                   turnout_residual=et, share_residual=ev_raw, turnout_noise=noise_t, share_noise=noise_v,
                   core=core, outside_corner=core_allowed, pool_groups=groups, station_pool=station_pool,
                   members=members)


def fit_hierarchical(e: Election) -> HierarchicalModel:
    """Fit the hierarchical honest model to ``e`` (module docstring)."""
    fit = fit_core(e)
    et, noise_t, noise_v = fit.turnout_residual, fit.turnout_noise, fit.share_noise
    ev = fit.share_residual - fit.slope[fit.region] * et
    pool_t, pool_v = [], []
    for index in fit.members:
        scale_t = latent_sd(et[index], noise_t[index]) ** 2
        scale_v = latent_sd(ev[index], noise_v[index]) ** 2
        pool_t.append(et[index] * np.sqrt(scale_t / (scale_t + noise_t[index])))
        pool_v.append(ev[index] * np.sqrt(scale_v / (scale_v + noise_v[index])))
    offsets = np.concatenate([[0], np.cumsum([m.size for m in fit.members])]).astype(np.int64)
    return HierarchicalModel(turnout=fit.turnout, share=fit.share, slope=fit.slope, slope_sd=fit.slope_sd,
                             station_slope=fit.slope[fit.region], station_pool=fit.station_pool,
                             pool_offsets=offsets, pool_turnout=np.concatenate(pool_t),
                             pool_share=np.concatenate(pool_v), other_proportions=other_proportions(e),
                             core_share=float(fit.core.mean()))
