"""The benchmarks run (tiny sizes, no timing assertions): compare.py's JSON and every asv benchmark once."""
import functools
import importlib
import json
import subprocess
import sys

import pytest

from conftest import REPO

REQUIRED_KEYS = ("per_voter_rps", "numpy_rps", "simkit_rps", "simkit_full_rps", "simkit_peak_rss_mb",
                 "simkit_full_peak_rss_mb")


def test_compare_smoke_prints_every_required_key():
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare.py"), "--smoke", "--json"],
                               capture_output=True, text=True, timeout=120, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    for key in REQUIRED_KEYS:
        assert report[key] > 0, key
    assert report["smoke"] is True
    assert report["workload"]["outcomes"] == 8


def test_kernel_profile_prints_every_part():
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kernel_profile.py"), "--replicates", "1",
                                "--repeats", "1", "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert list(report["ns_per_station_replicate"]) == ["turnout latent and share", "ballots binomial",
                                                        "Dirichlet gammas", "multinomial chain"]
    assert report["stages_total"] > 0 and report["honest_stations"] > 0


def test_write_profile_reports_the_stored_layout():
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "write_profile.py"), "--replicates", "3",
                                "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["write_cpu_ms_per_replicate"] > 0 and report["draw_cpu_ms_per_replicate"] > 0
    assert report["votes_dtype"] == "int16" and report["votes_chunks"] == [1, 3, 10101, 8]


def test_compare_baselines_draw_the_workload_model():
    """Same model in the baselines as in simkit: national leader totals agree within a few standard errors."""
    compare = _import("benchmarks.compare")
    params, _ = compare._parameters(compare.SMOKE_OVERRIDES)
    per_voter = compare.per_voter(params, 30, seed=1)[:, 0]
    numpy = compare.numpy_baseline(params, 30, seed=2)[:, 0]
    standard_error = (per_voter.var(ddof=1) / 30 + numpy.var(ddof=1) / 30) ** 0.5
    assert abs(per_voter.mean() - numpy.mean()) < 4 * standard_error


def _import(name: str):
    """A module of the repository's ``benchmarks`` package (not installed: imported from the checkout)."""
    sys.path.insert(0, str(REPO))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO))


def _benchmark_calls():
    module = _import("benchmarks.benchmarks")
    module.use_smoke_sizes()
    for name in dir(module):
        cls = getattr(module, name)
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        combos = [()] if not hasattr(cls, "params") else [(value,) for value in cls.params[0]]
        for method in sorted(m for m in dir(cls) if m.startswith(("time_", "peakmem_"))):
            for combo in combos:
                yield pytest.param(cls, method, combo, id=f"{name}.{method}{list(combo) if combo else ''}")


@pytest.mark.parametrize("cls,method,args", list(_benchmark_calls()))
def test_asv_benchmark_runs_once_at_tiny_size(cls, method, args):
    instance = cls()
    try:
        instance.setup(*args)
    except NotImplementedError as skip:
        pytest.skip(str(skip))
    getattr(instance, method)(*args)


def test_the_streamed_run_announces_its_replicates_as_simkit_run_does(monkeypatch):
    """asv's StreamedRun times the write path of ``simkit run -o X.zarr``: arrays sized once for the announced
    replicates, not grown block by block."""
    from simkit import io

    module = _import("benchmarks.benchmarks")
    module.use_smoke_sizes()
    calls = []

    @functools.wraps(io.write_blocks)
    def recorded(*args, write=io.write_blocks, **kwargs):
        calls.append(kwargs)
        return write(*args, **kwargs)

    monkeypatch.setattr(io, "write_blocks", recorded)
    streamed = module.StreamedRun()
    streamed.setup(64)
    try:
        streamed.peakmem_stream_to_zarr(64)
    finally:
        streamed.teardown(64)
    assert calls == [{"replicates": streamed.run.replicates}]


@pytest.mark.parametrize("strengths, problem", [("2,x", "not a comma-separated list of numbers"),
                                                ("0", "not a positive multiple"),
                                                ("6", "out of its range")])
def test_power_panel_refuses_bad_strengths_before_loading_data(strengths, problem):
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "power_panel.py"), "--strengths", strengths],
                               capture_output=True, text=True, cwd=REPO, timeout=300)
    assert completed.returncode == 2
    assert problem in completed.stderr and completed.stdout == ""
