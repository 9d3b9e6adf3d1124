"""Side-by-side speed and memory of simkit against a per-voter reference and a plain numpy baseline.

The workload (``benchmarks/workload.toml``): Kazakhstan 2022 at full scale, 11,953,465 registered voters
in 10,101 polling stations, 8 outcomes (6 candidates, against all, invalid), logit-normal station turnout
(SD 0.5 on the logit scale around the regional means), Dirichlet station preferences (concentration 40
around the national shares), rho = 0, 1,000 replicates. Every method draws the same model: per replicate,
each station's turnout latent and preferences drawn anew, then the counts.

Methods, run in ONE invocation, one after the other, each in its own subprocess (so each has its own
peak resident memory, read from the child's ``rusage`` with ``os.wait4``):

1. ``per_voter``: a plain per-voter reference. Per replicate: station latents drawn anew, then every
   voter's turnout (a uniform against the station's turnout share) and every voter's choice (a uniform
   against the station's cumulative probabilities) drawn individually; counts by ``np.bincount``. Timed on
   a few replicates (``--per-voter-replicates``) and scaled to replicates per second.
2. ``numpy``: the plain numpy baseline. Per replicate, for all stations at once: latent turnout and
   Dirichlet preferences (normalised ``standard_gamma``), then ``Generator.binomial`` for the ballots and
   ``Generator.multinomial`` for the votes; one generator, one thread.
3. ``simkit``: ``simkit.simulate(cfg, keep="summary")`` (national and regional totals only).
4. ``simkit_full``: full station-level output written to zarr block by block, as ``simkit run -o X.zarr``
   does (``engine.iter_blocks`` into ``io.write_blocks``).

The model parameters of 1 and 2 (register, regions, turnout locations, regional composition) come from
simkit's own plan of the same config, computed once by the parent and handed over in an ``.npz`` file, so
the baselines' children import numpy only and their memory is theirs.

Output: replicates per second (wall clock) for each method, CPU seconds per replicate (user + system, all
threads: with other work on the machine the wall clock is the noisier of the two), the ratios
simkit/numpy and simkit/per-voter, each method's peak resident memory (MB), and the load average before
each method. ``--json`` prints the same as one JSON object with (at least) the keys ``per_voter_rps``,
``numpy_rps``, ``simkit_rps``, ``simkit_full_rps``, ``simkit_peak_rss_mb``, ``simkit_full_peak_rss_mb``.
``--scaling`` adds simkit summary-only runs on the workload's country at 1, 2.5 and 10 times its stations
and voters (the largest a 101,010-station country), each at a tenth of the replicates (``--replicates`` / 10),
with their wall and CPU seconds and peak memory per station, to show that time and memory grow linearly with
the stations (the ``scaling`` list; ``cpu_us_per_station_replicate`` should stay flat). ``--smoke`` runs tiny
sizes (for CI: no timing claims).

Usage::

    python benchmarks/compare.py [--replicates 1000] [--per-voter-replicates 3] [--workers W]
                                 [--kernel numba|numpy] [--scaling] [--smoke] [--json]

``--kernel`` defaults to simkit's own default (``simkit.engine.kernels.DEFAULT_KERNEL``, the numba kernel), read
from the simkit under test, so the report says which kernel the default user gets; ``--kernel numpy`` times
the reference path.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKLOAD = Path(__file__).resolve().with_name("workload.toml")
#: ``--smoke``: a tiny election with the workload's regions, options and model
#: (400 stations, so that a quarter of them still covers the 21 regions and the 68 stations abroad)
SMOKE_OVERRIDES = {"electorate.registered": 400_000, "electorate.stations": 400}
SMOKE_REPLICATES = 4
METHODS = ("per_voter", "numpy", "simkit", "simkit_full")


# -- the two baselines (numpy only) -----------------------------------------------------------------

def _station_turnout(rng: np.random.Generator, params: dict) -> np.ndarray:
    """(station,) turnout shares: expit(location + dispersion × z), z ~ N(0, 1) per station."""
    latent = rng.standard_normal(len(params["registered"]))
    return 1.0 / (1.0 + np.exp(-(params["turnout_location"] + params["turnout_dispersion"] * latent)))


def _station_probabilities(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """(station, option) ballot probabilities ~ Dirichlet(alpha) per station, as normalised gammas."""
    gammas = rng.standard_gamma(alpha)
    return gammas / gammas.sum(axis=1, keepdims=True)


def per_voter(params: dict, replicates: int, seed: int) -> np.ndarray:
    """The per-voter reference; returns (replicate, option) national vote totals."""
    rng = np.random.default_rng(seed)
    registered = params["registered"]
    n_stations, n_options = len(registered), params["composition"].shape[1]
    alpha = params["concentration"] * params["composition"][params["region_index"]]
    station_of_voter = np.repeat(np.arange(n_stations), registered)  # (voter,)
    totals = np.empty((replicates, n_options), np.int64)
    for replicate in range(replicates):
        turnout = _station_turnout(rng, params)
        cumulative = np.cumsum(_station_probabilities(rng, alpha), axis=1)  # (station, option)
        voted = rng.random(len(station_of_voter)) < turnout[station_of_voter]  # each voter: turns out?
        voter_station = station_of_voter[voted]  # (ballot,)
        uniform = rng.random(len(voter_station))  # each voter's choice: inverse CDF of the station's row
        choice = np.zeros(len(voter_station), np.int64)
        for option in range(n_options - 1):
            choice += uniform >= cumulative[voter_station, option]
        votes = np.bincount(voter_station * n_options + choice, minlength=n_stations * n_options)
        totals[replicate] = votes.reshape(n_stations, n_options).sum(axis=0)
    return totals


def numpy_baseline(params: dict, replicates: int, seed: int) -> np.ndarray:
    """The plain numpy baseline; returns (replicate, option) national vote totals."""
    rng = np.random.default_rng(seed)
    alpha = params["concentration"] * params["composition"][params["region_index"]]
    totals = np.empty((replicates, alpha.shape[1]), np.int64)
    for replicate in range(replicates):
        turnout = _station_turnout(rng, params)
        probabilities = _station_probabilities(rng, alpha)
        ballots = rng.binomial(params["registered"], turnout)
        votes = rng.multinomial(ballots, probabilities)
        totals[replicate] = votes.sum(axis=0)
    return totals


# -- simkit ---------------------------------------------------------------------------------------

def _load(overrides: dict):
    import simkit

    return simkit.load_config(WORKLOAD, overrides or None)


def _default_kernel() -> str:
    """The kernel the simkit under test uses when none is asked for."""
    from simkit.engine import kernels

    return kernels.DEFAULT_KERNEL


def _kernel_arguments(kernel: str) -> dict:
    """``{"kernel": kernel}`` when the engine takes one; the numpy path needs none."""
    import inspect

    from simkit.engine import run as engine

    if "kernel" in inspect.signature(engine.prepare).parameters:
        return {"kernel": kernel}
    if kernel != "numpy":
        raise SystemExit(f"this simkit engine has no kernel option: cannot run kernel {kernel!r}")
    return {}


def announced(io, replicates: int) -> dict:
    """``{"replicates": replicates}`` when ``io.write_blocks`` sizes its arrays once from it (as ``simkit run``
    does); older trees grow them block by block."""
    import inspect

    return {"replicates": replicates} if "replicates" in inspect.signature(io.write_blocks).parameters else {}


def simkit_summary(cfg, replicates: int, seed: int, workers: int | None, kernel: str) -> np.ndarray:
    """``simkit.simulate(keep="summary")``; returns (replicate, option) national vote totals."""
    import simkit

    ds = simkit.simulate(cfg, replicates=replicates, seed=seed, keep="summary", workers=workers,
                         **_kernel_arguments(kernel))
    return ds["total_votes"].values.reshape(replicates, -1)


def simkit_full(cfg, replicates: int, seed: int, workers: int | None, kernel: str, directory: str) -> np.ndarray:
    """Full station-level output written to zarr as ``simkit run -o X.zarr`` does; returns the totals."""
    from simkit.engine import run as engine
    from simkit import io

    run = engine.prepare(cfg, replicates, seed, "full", **_kernel_arguments(kernel))
    static = engine.annotate(engine.static_dataset(run), run.config)
    path = Path(directory) / "full.zarr"
    io.write_blocks(static, (engine.annotate(block) for block in engine.iter_blocks(run, workers=workers)), path,
                    **announced(io, replicates))
    return io.open_result(path)["total_votes"].values.reshape(replicates, -1)


# -- one method in this process (the child) ---------------------------------------------------------

def _child(args: argparse.Namespace) -> None:
    baseline = args.method in ("per_voter", "numpy")
    params = dict(np.load(args.params)) if baseline else None
    if not baseline:  # imports, config parsing and the numba compilation (cached on disk) are not timed
        cfg = _load(json.loads(args.overrides))
        _kernel_arguments(args.kernel)
        if args.kernel == "numba":  # load the compiled kernel from numba's on-disk cache (or compile it)
            from simkit.engine import kernels

            kernels.warm_up()
        # xarray imports dask.array at its first Dataset when dask is installed (~0.45 s), in both children
        importlib.import_module("dask.array")
        if args.method == "simkit_full":  # what the write and the read-back import at their first use (~0.2 s)
            importlib.import_module("zarr")
            importlib.import_module("dask.base").get_scheduler()  # imports dask.distributed, if installed
    started_cpu, started = os.times(), time.perf_counter()
    if args.method == "per_voter":
        totals = per_voter(params, args.replicates, args.seed)
    elif args.method == "numpy":
        totals = numpy_baseline(params, args.replicates, args.seed)
    elif args.method == "simkit":
        totals = simkit_summary(cfg, args.replicates, args.seed, args.workers, args.kernel)
    else:
        totals = simkit_full(cfg, args.replicates, args.seed, args.workers, args.kernel, args.directory)
    seconds = time.perf_counter() - started
    ended_cpu = os.times()
    cpu = sum(getattr(ended_cpu, field) - getattr(started_cpu, field)  # simkit's worker processes included
              for field in ("user", "system", "children_user", "children_system"))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "replicates": args.replicates,
                      "mean_total_votes": totals.mean(axis=0).tolist()}))


# -- the parent: each method in its own subprocess ----------------------------------------------------

def _parameters(overrides: dict) -> tuple[dict, dict]:
    """The model parameters of simkit's plan for the workload, and a description of the workload."""
    from simkit.engine import run as engine

    run = engine.prepare(_load(overrides), replicates=1)
    plan, electorate = run.plans[0], run.electorate
    if plan.preferences.regional_sd != 0 or plan.preferences.rho != 0:
        raise SystemExit("the baselines implement regional_sd = 0 and rho = 0 only")
    params = {
        "registered": electorate.registered,
        "region_index": electorate.region_index,
        "turnout_location": plan.turnout_location,
        "turnout_dispersion": np.float64(plan.config.turnout.dispersion),
        "concentration": np.float64(plan.preferences.dispersion),
        "composition": plan.preferences.regional_composition(np.zeros(len(electorate.region_names))),
    }
    workload = {"voters": int(electorate.registered.sum()), "stations": electorate.n_stations,
                "outcomes": len(plan.preferences.shares), "turnout": plan.config.turnout.model,
                "preferences": plan.preferences.model, "rho": plan.preferences.rho}
    return params, workload


def _measure(method: str, replicates: int, args: argparse.Namespace, params_path: str, overrides: dict,
             directory: str) -> dict:
    """Run one method in a fresh interpreter; its timing plus its own peak RSS (MB) from ``wait4``."""
    command = [sys.executable, __file__, "--child", method, "--replicates", str(replicates),
               "--seed", str(args.seed), "--kernel", args.kernel, "--params", params_path,
               "--overrides", json.dumps(overrides), "--directory", directory]
    if args.workers:
        command += ["--workers", str(args.workers)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(command, stdout=stdout)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        output = stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"{method}: child failed with exit code {process.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result.update(method=method, rps=replicates / result["seconds"],
                  cpu_ms_per_replicate=1e3 * result["cpu_seconds"] / replicates,
                  peak_rss_mb=usage.ru_maxrss / 1024, load_before=load_before)
    return result


#: ``--scaling``: the workload's stations and voters times these factors (10: a 101,010-station country)
SCALING_FACTORS = (1.0, 2.5, 10.0)


def _scaled(overrides: dict, factor: float) -> dict:
    """The workload with ``factor`` × its stations and voters (the same station sizes)."""
    cfg = _load(overrides)
    return {**overrides, "electorate.registered": round(cfg.electorate.registered * factor),
            "electorate.stations": round(cfg.electorate.stations * factor)}


def _linear_fit(scaling: list[dict]) -> dict:
    """Least-squares lines through the scaling runs: CPU seconds = start-up + per station-replicate × stations
    × replicates, and peak memory = base + per station × stations; with each line's largest relative residual
    (small when growth is linear)."""
    fit = {}
    for name, x_key, y_key in (("cpu", "station_replicates", "cpu_seconds"), ("memory", "stations", "peak_rss_mb")):
        x = np.array([result[x_key] for result in scaling], dtype=float)
        y = np.array([result[y_key] for result in scaling], dtype=float)
        slope, intercept = np.polyfit(x, y, 1)
        fit[name] = {"intercept": float(intercept), "slope": float(slope),
                     "max_relative_residual": float(np.max(np.abs(y - (intercept + slope * x)) / y))}
    return fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=None, help="replicates (default 1000; smoke 4)")
    parser.add_argument("--per-voter-replicates", type=int, default=None, help="per-voter replicates timed (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="simkit worker processes (default: all cores)")
    parser.add_argument("--kernel", choices=("numpy", "numba"), default=None,
                        help="simkit's kernel (default: simkit's default kernel, numba)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--scaling", action="store_true",
                        help="also simkit summary-only at 1, 2.5 and 10 times the stations (replicates / 10)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI (no timing claims)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", choices=METHODS, dest="method", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    replicates = args.replicates or (SMOKE_REPLICATES if args.smoke else 1000)
    args.kernel = args.kernel or _default_kernel()
    if args.method:
        args.replicates = replicates
        _child(args)
        return 0

    overrides = SMOKE_OVERRIDES if args.smoke else {}
    per_voter_replicates = args.per_voter_replicates or (1 if args.smoke else 3)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}")
    params, workload = _parameters(overrides)
    report = {"workload": {**workload, "replicates": replicates, "config": str(WORKLOAD), "overrides": overrides},
              "smoke": args.smoke, "kernel": args.kernel, "default_kernel": _default_kernel(), "workers": args.workers or os.cpu_count(),
              "cpu_count": os.cpu_count(), "per_voter_replicates": per_voter_replicates, "methods": {}}
    with tempfile.TemporaryDirectory(prefix="simkit-compare-") as directory:
        params_path = str(Path(directory) / "params.npz")
        np.savez(params_path, **params)
        for method in methods:
            n = per_voter_replicates if method == "per_voter" else replicates
            report["methods"][method] = _measure(method, n, args, params_path, overrides, directory)
            if not args.json:
                _print_method(report["methods"][method])
        if args.scaling:
            report["scaling"] = []
            n = max(1, replicates // 10)
            for factor in SCALING_FACTORS:
                sized = _scaled(overrides, factor)
                result = _measure("simkit", n, args, params_path, sized, directory)
                stations = sized["electorate.stations"]
                result.update(factor=factor, stations=stations, station_replicates=stations * n,
                              us_per_station_replicate=1e6 * result["seconds"] / (stations * n),
                              cpu_us_per_station_replicate=1e6 * result["cpu_seconds"] / (stations * n),
                              peak_rss_kb_per_station=1024 * result["peak_rss_mb"] / stations)
                report["scaling"].append(result)
            report["scaling_fit"] = _linear_fit(report["scaling"])
    measured = report["methods"]
    for key in METHODS:
        if key in measured:
            report[f"{key}_rps"] = measured[key]["rps"]
            report[f"{key}_peak_rss_mb"] = measured[key]["peak_rss_mb"]
    if "simkit" in measured and "numpy" in measured:
        report["ratio_simkit_numpy"] = measured["simkit"]["rps"] / measured["numpy"]["rps"]
    if "simkit" in measured and "per_voter" in measured:
        report["ratio_simkit_per_voter"] = measured["simkit"]["rps"] / measured["per_voter"]["rps"]
    if "simkit_full" in measured and "numpy" in measured:
        report["ratio_simkit_full_numpy"] = measured["simkit_full"]["rps"] / measured["numpy"]["rps"]
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_summary(report)
    return 0


def _print_method(result: dict) -> None:
    print(f"{result['method']:>12}: {result['replicates']:>5} replicates in {result['seconds']:8.2f} s = "
          f"{result['rps']:9.3f} replicates/s | CPU {result['cpu_ms_per_replicate']:9.1f} ms/replicate | "
          f"peak RSS {result['peak_rss_mb']:7.0f} MB | load before {result['load_before']:.2f}", flush=True)


def _print_summary(report: dict) -> None:
    w = report["workload"]
    print(f"workload: {w['voters']:,} voters, {w['stations']:,} stations, {w['outcomes']} outcomes, "
          f"{w['turnout']} turnout, {w['preferences']} preferences, rho = {w['rho']}, {w['replicates']} replicates"
          f"{' (SMOKE: tiny sizes, timings mean nothing)' if report['smoke'] else ''}; kernel {report['kernel']}"
          f"{' (the default)' if report['kernel'] == report['default_kernel'] else ''}, "
          f"{report['workers']} simkit workers (threads with the numba kernel, else processes) on {report['cpu_count']} cores")
    for key, label in (("ratio_simkit_numpy", "simkit / numpy"), ("ratio_simkit_per_voter", "simkit / per-voter"),
                       ("ratio_simkit_full_numpy", "simkit full (zarr) / numpy")):
        if key in report:
            print(f"{label:>28}: {report[key]:8.2f}x")
    if "scaling_fit" in report:
        cpu, memory = report["scaling_fit"]["cpu"], report["scaling_fit"]["memory"]
        print(f"scaling fit: CPU {cpu['intercept']:.2f} s + {1e6 * cpu['slope']:.3f} us per station-replicate "
              f"(largest residual {cpu['max_relative_residual']:.1%}); peak {memory['intercept']:.0f} MB + "
              f"{1024 * memory['slope']:.2f} kB per station (largest residual {memory['max_relative_residual']:.1%})")
    for result in report.get("scaling", []):
        print(f"scaling: {result['stations']:>7,} stations x {result['replicates']:>5} replicates: "
              f"{result['seconds']:7.2f} s, CPU {result['cpu_seconds']:7.1f} s = "
              f"{result['cpu_us_per_station_replicate']:.3f} CPU us per station-replicate, peak RSS "
              f"{result['peak_rss_mb']:6.0f} MB, load before {result['load_before']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
