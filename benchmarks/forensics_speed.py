"""Speed of ``simkit forensics`` (and ``simkit report``) on Russia 2011: this tree against another (an older
commit's checkout), the same commands in one run, and whether they give the same results.

    python benchmarks/forensics_speed.py [--old-tree /path/to/old/checkout] [--preset russia-2011]
        [--draws 1000] [--report] [--json]
    python benchmarks/forensics_speed.py --parts [--preset russia-2011] [--json]

Each tree runs ``simkit forensics --preset P --null simulated --draws N --power 0 --seed 1 --json`` in a child
process (its own ``PYTHONPATH``), the old tree first, after an untimed run at 2 draws that compiles its numba
caches. ``--report`` adds ``simkit report --preset P --seed 1 -o TMP.html`` (1,000 draws, the report's default).
Reported per tree and command: CPU seconds (the child and its worker processes, from ``getrusage``: what the run
costs, little affected by other load on a shared machine), wall seconds, the largest process's peak resident
memory, the load average before the run; the ratios old / new; and for ``forensics``, how many tests report the
same statistic and p-value in both trees (equal to the last bit, or the largest relative difference). On a
2-core machine shared with other work the wall time depends on the load; the CPU ratio is the one to quote.

``--parts`` says where the time goes, in this process and this tree: CPU seconds of loading the returns, of fitting
the honest model, of one honest election's draw, of each test's statistic on one honest election (the mean over
``PART_DRAWS`` draws), and of each test's own work on the data under the simulated null (its ``run`` with stand-in
null statistics); and per test the CPU seconds its statistic costs over a run of ``--draws`` null draws (its
``MAX_NULL_DRAWS`` for the model fits). The two Klimek tests share one likelihood fit of the data: it counts in the
own work of ``klimek``, which runs first.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ENTRY = "import sys\nfrom simkit.cli.main import run\nsys.exit(run())"


def run_once(tree: Path, arguments: list[str]) -> dict:
    """One ``simkit ARGUMENTS`` in a child process with ``tree`` on its path: CPU and wall seconds and peak memory
    of its largest process (the child's own ``rusage``, its worker processes included), the load average before
    it, and its standard output."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", ENTRY, *arguments], stdout=out, stderr=err, cwd=tree,
                                 env={**os.environ, "PYTHONPATH": str(tree)})
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tree}: simkit {' '.join(arguments)} failed:\n{stderr[-2000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "load_before": load, "stdout": stdout}


def forensics_arguments(preset: str, draws: int) -> list[str]:
    return ["forensics", "--preset", preset, "--null", "simulated", "--draws", str(draws), "--power", "0",
            "--seed", "1", "--json"]


def agreement(old: str, new: str) -> dict:
    """Tests whose statistic and p-value are the same in both outputs (``--json`` of ``simkit forensics``), and
    the largest relative difference of a statistic."""
    old_tests = {r["test"]: r for r in json.loads(old)["tests"]}
    new_tests = {r["test"]: r for r in json.loads(new)["tests"]}
    same, largest = [], 0.0
    for test, row in new_tests.items():
        before = old_tests.get(test)
        if before is None:
            continue
        if before["statistic"] == row["statistic"] and before["p_value"] == row["p_value"]:
            same.append(test)
        elif before["statistic"] is not None and row["statistic"] is not None:
            scale = max(abs(before["statistic"]), 1e-300)
            largest = max(largest, abs(before["statistic"] - row["statistic"]) / scale)
    p_same = [t for t, r in new_tests.items() if t in old_tests and old_tests[t]["p_value"] == r["p_value"]]
    return {"tests": len(new_tests), "identical": same, "same_p_value": p_same,
            "largest_relative_statistic_difference": largest}


#: honest elections over which ``--parts`` averages a statistic's CPU time
PART_DRAWS = 4


def parts(preset: str, draws: int) -> dict:
    """CPU seconds of each part of ``simkit forensics --preset P --null simulated`` (``--parts``)."""
    # reason: the library is imported only here, so that the timed runs above use each tree's own code
    import numpy as np

    from simkit.electorate.returns import load_returns
    from simkit.forensics import TESTS, election
    from simkit.forensics.nulls.flat import HONEST_MODELS, model_seed, simulate_honest
    from simkit.forensics.registry import honest_model

    def cpu(work):
        start = time.process_time()
        value = work()
        return time.process_time() - start, value

    load_s, e = cpu(lambda: election(load_returns(preset=preset)))
    # each test reads the honest elections of its own model (registry.SIMULATED_MODEL), one per model and draw
    own_model = {test: honest_model(test, "simulated") for test in TESTS}
    fits = {name: cpu(lambda: HONEST_MODELS[name](e)) for name in dict.fromkeys(own_model.values())}
    fit_s = sum(seconds for seconds, _ in fits.values())
    seeds = np.random.SeedSequence(1).spawn(PART_DRAWS + 1)
    draw_s, honest = 0.0, {}
    for name, (_, model) in fits.items():
        simulate_honest(e, model, model_seed(seeds[0], name))  # compiles
        seconds, honest[name] = cpu(lambda: [simulate_honest(e, model, model_seed(seed, name))
                                             for seed in seeds[1:]])
        draw_s += seconds
    statistics = {}
    for test, module in TESTS.items():
        module.statistic(honest[own_model[test]][0])  # compiles, and computes what draws share
        statistics[test] = cpu(lambda: [module.statistic(h) for h in honest[own_model[test]]])[0] / PART_DRAWS
    stand_in = np.random.default_rng(0).normal(size=draws)
    own = {test: cpu(lambda: module.run(e, null="simulated", draws=draws, rng=np.random.SeedSequence(2),
                                        null_statistics=stand_in))[0] for test, module in TESTS.items()}
    limits = {test: min(draws, getattr(module, "MAX_NULL_DRAWS", draws)) for test, module in TESTS.items()}
    return {"preset": preset, "stations": e.n, "draws": draws, "load_s": load_s, "fit_s": fit_s,
            "honest_draw_s": draw_s / PART_DRAWS, "statistic_s": statistics, "own_work_s": own,
            "statistic_over_run_s": {t: statistics[t] * limits[t] for t in TESTS},
            "total_s": load_s + fit_s + draws * draw_s / PART_DRAWS + sum(own.values())
            + sum(statistics[t] * limits[t] for t in TESTS)}


def print_parts(result: dict) -> None:
    print(f"{result['preset']} ({result['stations']:,} stations), {result['draws']} null draws, CPU seconds:")
    print(f"  load {result['load_s']:.1f}, honest models' fits {result['fit_s']:.1f}, one draw of each honest model "
          f"{result['honest_draw_s']:.3f} (x {result['draws']}: {result['honest_draw_s'] * result['draws']:.0f})")
    print(f"  {'test':16s} {'statistic':>10s} {'over run':>9s} {'own work':>9s}")
    for test, value in result["statistic_s"].items():
        print(f"  {test:16s} {value:10.4f} {result['statistic_over_run_s'][test]:9.1f} "
              f"{result['own_work_s'][test]:9.1f}")
    print(f"  total {result['total_s']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", type=Path, help="checkout of the code to compare against")
    parser.add_argument("--preset", default="russia-2011")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--report", action="store_true", help="time `simkit report --preset P` too")
    parser.add_argument("--parts", action="store_true", help="CPU seconds per part, in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.parts:
        result = parts(args.preset, args.draws)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print_parts(result)
        return
    trees = {"old": args.old_tree.resolve(), "new": HERE} if args.old_tree else {"new": HERE}
    runs: dict[str, dict[str, dict]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory() as folder:
        for name, tree in trees.items():
            run_once(tree, forensics_arguments(args.preset, 2))  # compiles the tree's numba caches
            runs[name]["forensics"] = run_once(tree, forensics_arguments(args.preset, args.draws))
            if args.report:
                runs[name]["report"] = run_once(tree, ["report", "--preset", args.preset, "--seed", "1", "-o",
                                                       str(Path(folder) / f"{name}.html"), "--overwrite"])
    result = {"preset": args.preset, "draws": args.draws,
              "runs": {name: {command: {k: v for k, v in row.items() if k != "stdout"} for command, row in rows.items()}
                       for name, rows in runs.items()}}
    if args.old_tree:
        result["ratios"] = {command: {f"{kind}_old_over_new": runs["old"][command][f"{kind}_s"]
                                      / runs["new"][command][f"{kind}_s"] for kind in ("cpu", "wall")}
                            for command in runs["new"]}
        result["agreement"] = agreement(runs["old"]["forensics"]["stdout"], runs["new"]["forensics"]["stdout"])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, rows in result["runs"].items():
        for command, row in rows.items():
            print(f"{name} {command}: {row['cpu_s']:.0f} CPU s, {row['wall_s']:.0f} s wall, peak "
                  f"{row['peak_rss_mb']:.0f} MB, load average {row['load_before']:.1f} before")
    for command, ratio in result.get("ratios", {}).items():
        print(f"{command} old / new: CPU {ratio['cpu_old_over_new']:.2f}x, wall {ratio['wall_old_over_new']:.2f}x")
    if "agreement" in result:
        same = result["agreement"]
        print(f"same statistic and p-value in both trees: {len(same['identical'])} of {same['tests']} tests; same "
              f"p-value: {len(same['same_p_value'])}; largest relative difference of a statistic "
              f"{same['largest_relative_statistic_difference']:.1e}")


if __name__ == "__main__":
    main()
