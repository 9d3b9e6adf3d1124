"""The numbers of docs/timeline.md, recomputed: Spain's fit, the tests' size and power on
simulated elections, and the Kazakhstan 2022 p-values by region under both interpolations.

    python scripts/timeline_report.py [--replicates 100] [--draws 10000]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from simkit import streams
from simkit.config.load import load_config
from simkit.timeline.calibration import rejection_rates
from simkit.timeline.observed import from_config
from simkit.engine.profile import honest_profile, load_fit
from simkit.timeline.spain import read_spain, reproduction, simulate_tables, usable
from simkit.schema import rejects
from simkit.timeline.stations import STATION_TESTS, station_rows
from simkit.timeline.statistics import TESTS, run_tests

REPO = Path(__file__).resolve().parents[1]
MAGNITUDES = ((0.05, 0.05), (0.1, 0.1), (0.2, 0.2))  # (coerced share of the register, stuffing theta)
#: the seed of the tests of published data (Kazakhstan's timeline, Spain's tables): ``simkit timeline``'s default
SEED = 0
#: the seed the station table's Spains are drawn from the fit under (:func:`simkit.timeline.spain.simulate_tables`)
SIMULATED_SEED = 5


def spain_table() -> str:
    fit = load_fit()
    lines = ["| quantity | value |", "|---|---|"]
    lines.append(f"| tables used (excluded: cumulative decreases) | {fit['stations']:,} ({fit['excluded']['decreasing']}) |")
    lines.append("| mean share of the final count: 09-14, 14-18, after 18 | "
                 + ", ".join(f"{p:.4f} ± {s:.4f}" for p, s in zip(fit["bin_shares"], fit["bin_shares_se"])) + " |")
    lines.append(f"| kappa_station (by bin) | {fit['kappa_station']:.1f} ± {fit['kappa_station_se']:.1f} ("
                 + ", ".join(f"{k:.0f}" for k in fit["kappa_station_by_bin"]) + ") |")
    lines.append(f"| kappa_region, 52 provinces (by bin) | {fit['kappa_region']:.0f} ± {fit['kappa_region_se']:.0f} ("
                 + ", ".join(f"{k:.0f}" for k in fit["kappa_region_by_bin"]) + ") |")
    lines.append("| station SD of the share of the final reached at 14:00, 18:00 | "
                 + ", ".join(f"{v:.4f} ± {s:.4f}" for v, s in zip(fit["station_sd"], fit["station_sd_se"])) + " |")
    kept, _ = usable(read_spain())
    result = reproduction(kept, fit)
    lines.append("| simulated (20 replicates): national turnout at 14:00, 18:00 (observed) | "
                 + ", ".join(f"{100 * m:.2f}% (SD {100 * s:.2f}; {100 * o:.2f}%)" for m, s, o in
                             zip(result["simulated"], result["simulated_sd"], result["observed"])) + " |")
    lines.append("| simulated station SD of the share reached at 14:00, 18:00 | "
                 + ", ".join(f"{m:.4f} (SD {s:.4f})" for m, s in zip(result["spread"], result["spread_sd"])) + " |")
    return "\n".join(lines)


def calibration_table(replicates: int) -> str:
    lines = ["| coerced share | stuffing theta | size: front-loading | size: late surge | size: departure | "
             "power of front-loading vs coercion | power of late surge vs late stuffing | power of departure "
             "(coercion / stuffing) |", "|---|---|---|---|---|---|---|---|"]
    for share, theta in MAGNITUDES:
        rates = rejection_rates(replicates=replicates, coerced_share=share, stuffing_theta=theta)
        size, power = rates["size"], rates["power"]
        lines.append(f"| {share} | {theta} | {size['front_loading']:.3f} | {size['late_surge']:.3f} | "
                     f"{size['departure']:.3f} | {power['coercion']['front_loading']:.3f} | "
                     f"{power['late_stuffing']['late_surge']:.3f} | {power['coercion']['departure']:.3f} / "
                     f"{power['late_stuffing']['departure']:.3f} |")
    lines.append(f"\n(size over {rates['n_size']} honest region rows, power over {rates['n_power']} affected region "
                 f"rows, per magnitude; alpha {rates['alpha']})")
    return "\n".join(lines)


def kazakhstan_table(draws: int) -> str:
    path = REPO / "configs" / "kazakhstan-2022.toml"
    cfg = load_config(path)
    loaded = from_config(cfg, str(path))
    timeline = cfg.timeline
    results = {}
    for interpolation in ("linear", "pchip"):
        profile = honest_profile(timeline.opening, timeline.reports, timeline.closing, interpolation=interpolation)
        rows = run_tests(loaded.observed, profile, timeline.opening, timeline.closing,
                         streams.generator(SEED, *streams.observed_timeline_key(streams.TIMELINE_TESTS)), draws)
        results[interpolation] = {(row["region"], row["test"]): row for row in rows}
    regions = loaded.observed.region_names + ["all", "national"]
    header = "| region | " + " | ".join(f"{t} (stat; p linear / pchip)" for t in TESTS) + " |"
    lines = [header, "|---|" + "---|" * len(TESTS)]
    for region in regions:
        cells = []
        for test in TESTS:
            linear, pchip = results["linear"].get((region, test)), results["pchip"].get((region, test))
            cells.append("" if linear is None else
                         f"{linear['statistic']:.3f}; {linear['p_value']:.4f} / {pchip['p_value']:.4f}")
        lines.append(f"| {region} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sensitivity_table(draws: int) -> str:
    """Regions (of 20) with p ≤ 0.01 per test under each assumption: the interpolation within Spain's bins and
    kappa_region at its fit or 2 bootstrap SE lower (more honest spread between regions)."""
    path = REPO / "configs" / "kazakhstan-2022.toml"
    cfg = load_config(path)
    loaded = from_config(cfg, str(path))
    timeline = cfg.timeline
    fit = load_fit()
    low_kappa = fit["kappa_region"] - 2 * fit["kappa_region_se"]
    lines = ["| assumption | " + " | ".join(TESTS) + " |", "|---|" + "---|" * len(TESTS)]
    for label, interpolation, kappa in (("linear, kappa_region fitted", "linear", None),
                                        ("pchip, kappa_region fitted", "pchip", None),
                                        (f"linear, kappa_region {low_kappa:.0f} (fit - 2 SE)", "linear", low_kappa)):
        profile = honest_profile(timeline.opening, timeline.reports, timeline.closing, interpolation=interpolation,
                                 kappa_region=kappa)
        rows = run_tests(loaded.observed, profile, timeline.opening, timeline.closing,
                         streams.generator(SEED, *streams.observed_timeline_key(streams.TIMELINE_TESTS)), draws)
        counts = [sum(row["test"] == test and row["region"] in loaded.observed.region_names
                      and rejects(row["p_value"], 0.01)
                      for row in rows) for test in TESTS]
        lines.append(f"| {label} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)


def real_station_generator() -> np.random.Generator:
    """The station-level null's generator on Spain's own tables: ``simkit timeline``'s on a station file under its
    default seed (:data:`SEED`, :func:`simkit.streams.observed_timeline_key`)."""
    return streams.generator(SEED, *streams.observed_timeline_key(streams.TIMELINE_STATIONS))


def simulated_station_generator(spain: int) -> np.random.Generator:
    """The station-level null's generator on simulated Spain ``spain``, below the seed that drew it
    (:data:`SIMULATED_SEED`, :data:`simkit.streams.SIMULATED_SPAIN_STATIONS`)."""
    return streams.generator(SIMULATED_SEED, streams.SIMULATED_SPAIN_STATIONS, spain)


def station_table(draws: int = 200, simulated_spains: int = 2) -> str:
    """Station-level tests: rows at p ≤ 0.05 on Spain's tables and on Spains drawn from the fitted model."""
    kept, _ = usable(read_spain())
    fit = load_fit()
    final = kept["ballots_final"].to_numpy(np.int64)
    codes, region = np.unique(kept["region"].to_numpy(), return_inverse=True)
    real = np.column_stack([kept[["ballots_1400", "ballots_1800"]].to_numpy(np.int64), final])
    datasets = [("Spain 2019 tables", [(real, real_station_generator())])]
    simulated = simulate_tables(kept, fit, simulated_spains, SIMULATED_SEED)
    datasets.append((f"{simulated_spains} Spains drawn from the fit",
                     [(np.column_stack([s, final]), simulated_station_generator(i)) for i, s in enumerate(simulated)]))
    lines = ["| data | " + " | ".join(f"{t} at 5% (1%)" for t in STATION_TESTS) + " |", "|---|---|---|"]
    for label, sets in datasets:
        rows = [row for counts, rng in sets for row in
                station_rows(counts, region, list(codes), 0, fit["kappa_station"], rng, draws)]
        cells = [f"{sum(r['test'] == t and rejects(r['p_value']) for r in rows)} "
                 f"({sum(r['test'] == t and rejects(r['p_value'], 0.01) for r in rows)}) of {52 * len(sets)}"
                 for t in STATION_TESTS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--sections", default="spain,kazakhstan,sensitivity,stations,calibration",
                        help="comma-separated: spain, kazakhstan, sensitivity, stations, calibration")
    args = parser.parse_args()
    sections = args.sections.split(",")
    if "spain" in sections:
        print("## Spain 2019 fit\n\n" + spain_table())
    if "kazakhstan" in sections:
        print("\n## Kazakhstan 2022\n\n" + kazakhstan_table(args.draws))
    if "sensitivity" in sections:
        print("\n## Kazakhstan 2022: regions with p ≤ 0.01\n\n" + sensitivity_table(args.draws))
    if "stations" in sections:
        print("\n## Station-level tests\n\n" + station_table())
    if "calibration" in sections:
        print("\n## Size and power\n\n" + calibration_table(args.replicates))


if __name__ == "__main__":
    main()
