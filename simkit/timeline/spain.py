"""The clean reference: Spain's general election of 10 Nov 2019, turnout by polling table at 14:00 and
18:00 and the final count (``spain-2019-11/timeline_2019_11.csv.gz``, 09:00–20:00).

What two reports identify. Each table gives three bin counts: voters 09:00–14:00, 14:00–18:00 and after
18:00 (the last bin is the final count minus the 18:00 advance). So the data identify, for each table,
three bin shares, hence: the national mean share of each bin (``p``), the station-level spread of the
shares within a province beyond multinomial noise (``kappa_station``), and the spread of the provinces'
shares (``kappa_region``). They do NOT identify: (1) the shape within a bin (when in the morning voters
came), which the rescaling to other hours must assume (:mod:`simkit.engine.profile`: a constant rate
within each bin, or a smooth monotone curve); (2) in-person voting after 18:00 apart from postal votes:
the advances count in-person voters only, the final count adds the postal votes of the table's voters,
so the last bin's share is in-person late voting plus postal voting (an upper bound on the former);
(3) whether the Dirichlet's single dispersion fits every bin (checked: ``kappa_*_by_bin``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import data_file
from simkit.model.timeline import dirichlet, honest_bins, parse_clock

RELATIVE_PATH = "spain-2019-11/timeline_2019_11.csv.gz"
OPENING, CLOSING, REPORTS = "09:00", "20:00", ("14:00", "18:00")
COLUMNS = ("ballots_1400", "ballots_1800", "ballots_final")


def read_spain(path=None) -> pd.DataFrame:
    """The Spanish table timeline without the CERA pseudo-tables (``special``); raises FileNotFoundError
    when the shared data are absent."""
    path = path or data_file(RELATIVE_PATH)
    if path is None:
        raise FileNotFoundError(f"shared data file {RELATIVE_PATH} not found (simkit.data.data_dir())")
    frame = pd.read_csv(path, dtype={"region": str, "subregion": str, "station_id": str})
    return frame[frame["special"] == 0].reset_index(drop=True)


def usable(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Tables whose cumulative counts do not decrease and whose final count is positive, and how many
    were excluded for each reason (208 tables report more voters at 18:00 than in the final count, which
    the NOTES put down to the unaudited advance)."""
    b14, b18, final = (frame[column].to_numpy() for column in COLUMNS)
    decreasing = (b14 > b18) | (b18 > final)
    empty = final <= 0
    keep = ~decreasing & ~empty
    return frame[keep].reset_index(drop=True), {"decreasing": int(decreasing.sum()),
                                                 "no_ballots": int((empty & ~decreasing).sum())}


def bin_counts(frame: pd.DataFrame) -> np.ndarray:
    """(station, 3) int64: voters 09–14, 14–18, after 18 (final count minus the 18:00 advance)."""
    cumulative = frame[list(COLUMNS)].to_numpy(np.int64)
    return np.diff(cumulative, axis=1, prepend=0)


def province_moments(bins: np.ndarray, province: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics per province j and bin k (arrays (province, bin)) for the moment fit:
    ``ballots`` N_j, ``mean`` m_jk (ballot-weighted share), ``within`` Σ_s (x_sk - m_jk)², ``binomial``
    Σ_s m(1-m)/n_s, ``extra`` Σ_s m(1-m)(1 - 1/n_s), ``w2n`` Σ_s w_s²/n_s and ``w2`` Σ_s w_s²(1 - 1/n_s)
    with w_s = n_s / N_j (each (province, 1) for the last two)."""
    codes, index = np.unique(province, return_inverse=True)
    n = bins.sum(axis=1).astype(float)
    shares = bins / n[:, None]
    n_prov = len(codes)
    totals = np.zeros((n_prov, bins.shape[1]))
    np.add.at(totals, index, bins)
    ballots = totals.sum(axis=1)
    mean = totals / ballots[:, None]
    m = mean[index]
    weight = n / ballots[index]

    def by_province(values):
        out = np.zeros((n_prov,) + values.shape[1:])
        np.add.at(out, index, values)
        return out

    return {"codes": codes, "ballots": ballots, "mean": mean,
            "within": by_province((shares - m) ** 2),
            "binomial": by_province(m * (1 - m) / n[:, None]),
            "extra": by_province(m * (1 - m) * (1 - 1 / n[:, None])),
            "w2n": by_province((weight ** 2 / n)[:, None]), "w2": by_province((weight ** 2 * (1 - 1 / n))[:, None])}


def moment_fit(moments: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, np.ndarray | float]:
    """Moment estimates from the province statistics (optionally a resample ``rows`` of provinces):
    ``p`` (bin,), ``kappa_station`` and ``kappa_region`` pooled over bins, and each by bin."""
    take = (lambda a: a) if rows is None else (lambda a: a[rows])
    ballots, mean = take(moments["ballots"]), take(moments["mean"])
    p = (ballots[:, None] * mean).sum(axis=0) / ballots.sum()
    numerator = (take(moments["within"]) - take(moments["binomial"])).sum(axis=0)
    denominator = take(moments["extra"]).sum(axis=0)
    c_station_bin = numerator / denominator
    c_station = numerator.sum() / denominator.sum()
    # between provinces: E (m_jk - p_k)² = p(1-p) c_region + Σ_s w_s² q(1-q) [1/n_s + (1-1/n_s) c_station]
    q = mean * (1 - mean)
    sampling = q * (take(moments["w2n"]) + take(moments["w2"]) * c_station)
    n_prov = len(ballots)
    between = ((mean - p) ** 2 - sampling).sum(axis=0) * n_prov / max(n_prov - 1, 1)
    c_region_bin = between / (n_prov * p * (1 - p))
    c_region = between.sum() / (n_prov * (p * (1 - p)).sum())
    return {"p": p, "kappa_station": 1 / c_station - 1, "kappa_station_by_bin": 1 / c_station_bin - 1,
            "kappa_region": 1 / c_region - 1, "kappa_region_by_bin": 1 / c_region_bin - 1}


def station_spread(frame: pd.DataFrame) -> np.ndarray:
    """(2,) SD over tables of the share of the final count reached at 14:00 and at 18:00."""
    final = frame["ballots_final"].to_numpy(float)
    return np.array([np.std(frame[column].to_numpy() / final) for column in COLUMNS[:2]])


def fit_spain(frame: pd.DataFrame, bootstrap: int = 200, seed: int = 20191110) -> dict:
    """The honest profile fitted to the Spanish tables (see the module docstring), with province-bootstrap
    standard errors; a JSON-ready dict (the preset ``timeline-spain-2019-11.json``)."""
    if bootstrap < 2:
        raise ValueError(f"bootstrap: at least 2 resamples for a standard error, got {bootstrap}")
    registered = frame["registered"].to_numpy(np.int64)
    kept, excluded = usable(frame)
    bins = bin_counts(kept)
    province = kept["region"].to_numpy()
    moments = province_moments(bins, province)
    fit = moment_fit(moments)
    rng = np.random.default_rng(seed)
    n_prov = len(moments["codes"])
    codes_of_station = np.searchsorted(moments["codes"], province)
    draws, spreads = [], []
    for _ in range(bootstrap):
        rows = rng.integers(0, n_prov, n_prov)
        draws.append(moment_fit(moments, rows))
        chosen = np.bincount(rows, minlength=n_prov)  # resampled provinces, with multiplicity
        weights = chosen[codes_of_station]
        shares = np.cumsum(bins, axis=1)[:, :2] / bins.sum(axis=1, keepdims=True)
        mean = (weights[:, None] * shares).sum(axis=0) / weights.sum()
        spreads.append(np.sqrt((weights[:, None] * (shares - mean) ** 2).sum(axis=0) / weights.sum()))

    def se(key):
        return np.std([np.atleast_1d(d[key]) for d in draws], axis=0, ddof=1)

    opening, closing = parse_clock(OPENING), parse_clock(CLOSING)
    knots = [(parse_clock(t) - opening) / (closing - opening) for t in REPORTS]
    cumulative = np.cumsum(fit["p"])[:-1]
    totals = frame[list(COLUMNS)].to_numpy(np.int64).sum(axis=0)
    return {
        "source": "Spain, general election of 10 Nov 2019, turnout by polling table (in-person advances at 14:00 "
                  "and 18:00, final count); shared data spain-2019-11/timeline_2019_11.csv.gz; "
                  "fitted by scripts/fit_timeline_profile.py",
        "opening": OPENING, "closing": CLOSING, "reports": list(REPORTS),
        "knots": [0.0] + knots + [1.0],
        "cumulative_share": [0.0] + [float(v) for v in cumulative] + [1.0],
        "bin_shares": [float(v) for v in fit["p"]],
        "bin_shares_se": [float(v) for v in se("p")],
        "kappa_station": float(fit["kappa_station"]), "kappa_station_se": float(se("kappa_station")[0]),
        "kappa_station_by_bin": [float(v) for v in fit["kappa_station_by_bin"]],
        "kappa_region": float(fit["kappa_region"]), "kappa_region_se": float(se("kappa_region")[0]),
        "kappa_region_by_bin": [float(v) for v in fit["kappa_region_by_bin"]],
        "stations": int(len(kept)), "excluded": excluded, "regions": int(n_prov),
        "region_unit": "province (52)",
        "national_turnout": {"14:00": float(totals[0] / registered.sum()), "18:00": float(totals[1] / registered.sum()),
                             "final": float(totals[2] / registered.sum())},
        "station_sd": [float(v) for v in station_spread(kept)],
        "station_sd_se": [float(v) for v in np.std(spreads, axis=0, ddof=1)],
        "bootstrap": bootstrap,
    }


def simulate_tables(kept: pd.DataFrame, fit: dict, replicates: int, seed: int) -> np.ndarray:
    """Spain's tables (their final counts and provinces) drawn from the fitted model ``replicates`` times:
    cumulative counts at 14:00 and 18:00, (replicate, station, 2) int64."""
    rng = np.random.default_rng(seed)
    final = kept["ballots_final"].to_numpy(np.int64)
    codes, province = np.unique(kept["region"].to_numpy(), return_inverse=True)
    out = []
    for _ in range(replicates):
        regional = dirichlet(rng, np.tile(fit["bin_shares"], (len(codes), 1)), fit["kappa_region"])
        out.append(np.cumsum(honest_bins(rng, final, regional, province, fit["kappa_station"]), axis=1)[:, :2])
    return np.array(out)


def reproduction(kept: pd.DataFrame, fit: dict, replicates: int = 20, seed: int = 2019) -> dict[str, np.ndarray]:
    """The fitted model against Spain (each (2,): 14:00, 18:00): ``observed`` national turnout and its
    ``simulated`` mean and ``simulated_sd`` over replicates; the station SD of the share of the final reached,
    ``spread`` simulated (mean, ``spread_sd`` over replicates)."""
    simulated = simulate_tables(kept, fit, replicates, seed)
    registered = kept["registered"].to_numpy().sum()
    national = simulated.sum(axis=1) / registered
    spread = (simulated / kept["ballots_final"].to_numpy(float)[None, :, None]).std(axis=1)
    return {"observed": kept[["ballots_1400", "ballots_1800"]].to_numpy().sum(axis=0) / registered,
            "simulated": national.mean(axis=0), "simulated_sd": national.std(axis=0, ddof=1),
            "spread": spread.mean(axis=0), "spread_sd": spread.std(axis=0, ddof=1)}
