"""Runs on a dask.distributed cluster: the same result as a local run, through worker deaths and resumes.

CI starts the clusters itself (``LocalCluster`` with 2 worker processes); each test is bounded in time.
"""
import errno
import functools
import gc
import inspect
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import simkit
from simkit.engine import distributed, run as engine
from simkit import _version, io, progress
from simkit.errors import counted

from conftest import small_config_dict

distributed_api = pytest.importorskip("dask.distributed")

#: attrs that describe one execution, not the result (a local and a dask run differ there only)
EXECUTION_ATTRS = ("created", "execution")


def config(**fields) -> simkit.Config:
    raw = small_config_dict(sweep={"turnout.mean": [0.5, 0.6], "preferences.dispersion": [20.0, 40.0]}, **fields)
    return simkit.Config.model_validate(raw)


def local_result(cfg, path, *, replicates, seed, keep=None, block_size) -> xr.Dataset:
    """The reference: a local run written by io.write_blocks (the path `simkit run` takes without dask)."""
    run = engine.prepare(cfg, replicates, seed, keep)
    static = engine.annotate(engine.static_dataset(run), run.config)
    blocks = (engine.annotate(block, run.config) for block in engine.iter_blocks(run, block_size, workers=1))
    io.write_blocks(static, blocks, path)
    return io.open_result(path).load()


def assert_same_result(result: xr.Dataset, reference: xr.Dataset) -> None:
    result, reference = result.load().copy(), reference.copy()
    for ds in (result, reference):
        for name in EXECUTION_ATTRS:
            ds.attrs.pop(name, None)
    xr.testing.assert_identical(result, reference)


@pytest.fixture(scope="module")
def client():
    with distributed_api.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as connected:
        yield connected


def test_two_worker_processes_give_exactly_the_local_result(client, tmp_path):
    cfg = config()
    reference = local_result(cfg, tmp_path / "local.zarr", replicates=23, seed=5, block_size=23)
    result = distributed.run_on_cluster(cfg, tmp_path / "dask.zarr", replicates=23, seed=5, block_size=4,
                                        client=client, quiet=True)
    assert_same_result(result, reference)
    assert result.attrs["execution"] == f"dask: {client.scheduler.address}, 2 workers"
    assert not list(tmp_path.glob(".dask.zarr*"))  # no staging or work directory left behind


def test_store_is_chunked_by_block_along_replicate_and_by_sweep_point_and_scenario_as_a_local_run(client, tmp_path):
    cfg = simkit.Config.model_validate({
        **config().raw(), "scenario": [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff"]}],
        "manipulation": [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.6,
                          "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]})
    result = distributed.run_on_cluster(cfg, tmp_path / "r.zarr", replicates=8, seed=1, block_size=4,
                                        client=client, quiet=True)
    chunks = dict(zip(result.votes.dims, result.votes.encoding["chunks"]))
    assert chunks["replicate"] == 4
    assert chunks["turnout.mean"] == chunks["preferences.dispersion"] == chunks["scenario"] == 1
    assert result.votes.encoding["dtype"] == np.int16 and result.votes.dtype == np.int64  # stored as a local run
    local = local_result(cfg, tmp_path / "local.zarr", replicates=8, seed=1, block_size=4)
    assert_same_result(result, local)
    def layout(ds):  # the replicate index aside: written once by a dask run, block by block by a local one
        return {name: (var.encoding.get("chunks"), var.encoding.get("dtype"))
                for name, var in ds.variables.items() if name != "replicate"}

    assert layout(result) == layout(local)


@pytest.mark.parametrize("suffix", [".nc", None])
def test_gathered_results_equal_the_local_result(client, tmp_path, suffix):
    cfg = config(keep="summary")
    reference = local_result(cfg, tmp_path / "local.zarr", replicates=9, seed=2, block_size=9)
    output = tmp_path / f"dask{suffix}" if suffix else None
    result = distributed.run_on_cluster(cfg, output, replicates=9, seed=2, block_size=2, client=client, quiet=True)
    assert_same_result(result, reference)


def test_resume_needs_a_zarr_output(tmp_path):
    with pytest.raises(simkit.InputError, match="resume needs a .zarr output"):
        distributed.run_on_cluster(config(), tmp_path / "r.nc", replicates=4, block_size=2, workers=2, resume=True)


def test_resume_of_a_finished_run_says_so_and_touches_nothing(tmp_path, capsys):
    """``--resume`` where the run already finished: nothing was left to do, exit 0, no file written or removed;
    another run there (another seed) is still refused as an existing output."""
    from simkit.cli.main import main

    config_path, target = tmp_path / "c.toml", tmp_path / "r.zarr"
    config_path.write_text(config().to_toml())
    command = ["run", str(config_path), "-o", str(target), "--replicates", "4", "--seed", "3", "--quiet"]
    assert main(command) == 0
    before = sorted((path, path.stat().st_mtime_ns) for path in tmp_path.rglob("*"))
    capsys.readouterr()
    assert main([*command, "--workers", "1", "--resume"]) == 0
    assert capsys.readouterr().out == f"{target}: the run is complete (no interrupted run to resume); nothing " \
                                      "was written\n"
    assert main([*command, "--seed", "4", "--workers", "1", "--resume"]) == 2
    assert "output path exists; give --overwrite" in capsys.readouterr().err
    assert sorted((path, path.stat().st_mtime_ns) for path in tmp_path.rglob("*")) == before


def test_a_finished_count_matched_run_is_told_finished_without_drawing_a_pilot(tmp_path, monkeypatch):
    """The count-matched scenarios take the solutions stored with the result, which count matching keeps when they
    were solved for this config (its fingerprint): no pilot is drawn to tell the run finished. Another seed makes
    them stale: solved again, and the run is not the one stored."""
    from test_exit_poll_count_match import matched_config
    from simkit.cli.main import main
    from simkit.engine import count_match

    config_path, target = tmp_path / "c.toml", tmp_path / "r.zarr"
    config_path.write_text(matched_config(0.1).to_toml())
    assert main(["run", str(config_path), "-o", str(target), "--replicates", "4", "--quiet"]) == 0
    cfg, solve = simkit.load_config(config_path), count_match.solve
    with monkeypatch.context() as patch:
        patch.setattr(count_match, "solve", lambda *args, **kwargs: pytest.fail("a pilot was drawn"))
        assert distributed.finished(cfg, target, replicates=4)
    solved = []
    monkeypatch.setattr(count_match, "solve", lambda *args, **kwargs: solved.append(1) or solve(*args, **kwargs))
    assert not distributed.finished(cfg, target, replicates=4, seed=cfg.run.seed + 1) and solved


def test_a_run_of_another_installation_is_told_unfinished_before_its_config_is_read(tmp_path, monkeypatch):
    """The installation's fields are the cheap check of ``finished``: a simkit version other than the one stored
    answers no before the stored config is parsed."""
    from simkit.cli.main import main

    config_path, target = tmp_path / "c.toml", tmp_path / "r.zarr"
    config_path.write_text(config().to_toml())
    assert main(["run", str(config_path), "-o", str(target), "--replicates", "4", "--quiet"]) == 0
    installed = distributed._installed
    monkeypatch.setattr(distributed, "_installed", lambda: {**installed(), "simkit_version": "0.0.0"})
    monkeypatch.setattr(distributed, "parse_config", lambda *args, **kwargs: pytest.fail("the config was parsed"))
    assert not distributed.finished(simkit.load_config(config_path), target, replicates=4)


def worker_pid_busy_with_a_block(client) -> int:
    """The process id of a worker that is computing a block right now."""
    for address, keys in client.processing().items():
        if keys:
            return client.run(os.getpid, workers=[address])[address]
    raise AssertionError("no worker is computing a block")


def test_a_worker_killed_mid_run_leaves_the_result_identical(tmp_path):
    # parts (sweep point x block) of ~0.03 s each, 48 of them, so the run is still going when the first is done
    cfg = config(stations=10000, registered=5_000_000, keep="summary")
    replicates, block_size = 24, 2
    target = tmp_path / "dask.zarr"
    markers = tmp_path / ".dask.zarr.resumable" / "done"
    outcome = {}
    with distributed_api.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as client:
        def run():
            outcome["result"] = distributed.run_on_cluster(cfg, target, replicates=replicates, seed=7,
                                                           block_size=block_size, client=client, quiet=True)
        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 60
        while not (markers.exists() and any(markers.iterdir())):
            assert time.monotonic() < deadline and runner.is_alive(), "the run did not start"
            time.sleep(0.01)
        os.kill(worker_pid_busy_with_a_block(client), signal.SIGKILL)
        parts_done_at_kill = len(list(markers.iterdir()))
        runner.join(timeout=90)
        assert not runner.is_alive(), "the run did not finish after the worker died"
    assert parts_done_at_kill < 4 * replicates // block_size
    reference = local_result(cfg, tmp_path / "local.zarr", replicates=replicates, seed=7, block_size=replicates)
    assert_same_result(outcome["result"], reference)


class InterruptingBar:
    """A progress bar that interrupts the run (as Ctrl-C would) after ``blocks`` parts are reported done."""

    def __init__(self, blocks):
        self.blocks = blocks

    def __call__(self, total, enabled=True, unit="replicate"):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, replicates):
        if replicates:
            self.blocks -= 1
            if self.blocks == 0:
                raise KeyboardInterrupt


def chunk_files_by_part(store: Path, variable: str) -> dict[tuple[int, int], tuple]:
    """(name, inode, mtime in ns) of each chunk file of ``variable``, by (flat sweep point, chunk index along
    ``replicate``): the part (sweep point x block) that wrote it."""
    dims = json.loads((store / variable / ".zattrs").read_text())["_ARRAY_DIMENSIONS"]
    sweep_axes = [dims.index(name) for name in ("turnout.mean", "preferences.dispersion")]
    files = {}
    for chunk in (store / variable).iterdir():
        if not chunk.name.startswith("."):
            stat = chunk.stat()
            index = [int(i) for i in chunk.name.split(".")]
            point = int(np.ravel_multi_index([index[axis] for axis in sweep_axes], (2, 2)))
            files.setdefault((point, index[dims.index("replicate")]), []).append(
                (chunk.name, stat.st_ino, stat.st_mtime_ns))
    return {part: tuple(sorted(entries)) for part, entries in files.items()}


def test_resume_computes_only_the_missing_parts(client, tmp_path, monkeypatch, caplog):
    cfg = config()  # 4 sweep points x 10 blocks = 40 parts
    replicates, block_size, n_parts = 20, 2, 40
    target = tmp_path / "dask.zarr"
    work = tmp_path / ".dask.zarr.resumable"
    with monkeypatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=3))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(cfg, target, replicates=replicates, seed=3, block_size=block_size, workers=2)
    assert not target.exists()
    done = sorted(marker.name for marker in (work / "done").iterdir())
    assert 3 <= len(done) < n_parts
    done_chunks = {(int(name.split("-")[0]), int(name.split("-")[1]) // block_size) for name in done}
    before = chunk_files_by_part(work / "dask.zarr", "votes")

    with caplog.at_level(logging.INFO, logger="simkit"):  # the library logs; the command line shows it on stderr
        result = distributed.run_on_cluster(cfg, target, replicates=replicates, seed=3, block_size=block_size,
                                            client=client, resume=True)
    assert (f"{len(done)} of {n_parts} parts (sweep point x block) already written, computing {n_parts - len(done)}"
            in caplog.text)
    after = chunk_files_by_part(target, "votes")
    assert {index: after[index] for index in done_chunks} == {index: before[index] for index in done_chunks}
    assert not work.exists()
    reference = local_result(cfg, tmp_path / "local.zarr", replicates=replicates, seed=3, block_size=block_size)
    assert_same_result(result, reference)


def test_resume_refuses_a_partial_run_that_differs_in_anything_that_changes_the_numbers(tmp_path, monkeypatch):
    target = tmp_path / "dask.zarr"
    with monkeypatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=1))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, quiet=True)
    with pytest.raises(simkit.InputError, match="seed differs"):
        distributed.run_on_cluster(config(), target, replicates=8, seed=4, block_size=2, workers=1, resume=True)
    with pytest.raises(simkit.InputError, match="block_size differs"):
        distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=4, workers=1, resume=True)
    with pytest.raises(simkit.InputError, match="kernel differs"):  # numba draws (default), then numpy: refused
        distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, resume=True,
                                   kernel="numpy")
    with pytest.raises(simkit.InputError, match="keep differs"):
        distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, resume=True,
                                   keep="summary" if config().run.keep == "full" else "full")
    cfg = config()
    with pytest.raises(simkit.InputError, match="config_sha256 differs"):
        distributed.run_on_cluster(cfg.at({"turnout.mean": cfg.turnout.mean / 2}), target, replicates=8, seed=3,
                                   block_size=2, workers=1, resume=True)
    manifest = target.with_name(".dask.zarr.resumable") / "run.json"
    recorded = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**recorded, "numpy_version": "1.0.0"}))
    with pytest.raises(simkit.InputError, match="numpy_version differs"):
        distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, resume=True)


def test_resume_refuses_a_partial_run_that_does_not_record_a_field_saying_so(tmp_path, monkeypatch):
    """A partial run of an earlier simkit whose record lacks a field (``keep``, recorded since) cannot be told to
    be this run: refused as not recorded, not as differing."""
    target = tmp_path / "dask.zarr"
    with monkeypatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=1))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, quiet=True)
    manifest = target.with_name(".dask.zarr.resumable") / "run.json"
    manifest.write_text(json.dumps({key: value for key, value in json.loads(manifest.read_text()).items()
                                    if key != "keep"}))
    refusal = (r"^\S+dask\.zarr: resume: the partial run in \S+ does not record keep, so it cannot be resumed "
               r"safely; run again without resume to start over$")
    with pytest.raises(simkit.InputError, match=refusal) as error:
        distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, workers=1, resume=True)
    assert error.value.parameters == ("resume", "keep")


def interrupted_run(cfg, target, *, seed, blocks) -> int:
    """Interrupt a run of ``cfg`` into ``target`` (8 replicates in blocks of 2, its own cluster) after ``blocks``
    parts; the number of finished parts it keeps for resume."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=blocks))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(cfg, target, replicates=8, seed=seed, block_size=2, workers=1, quiet=True)
    return len(list((target.with_name(f".{target.name}.resumable") / "done").iterdir()))


@pytest.mark.parametrize("seed, advice", [(3, "resume would have kept them"),
                                          (4, "resume could not have continued that run")])
def test_a_fresh_run_over_an_interrupted_one_says_how_many_finished_parts_it_discards(client, tmp_path, caplog, seed,
                                                                                     advice):
    """Without resume the finished parts of an interrupted run on the target were deleted without a word."""
    target = tmp_path / "dask.zarr"
    finished = interrupted_run(config(), target, seed=3, blocks=2)
    assert finished >= 2
    caplog.clear()  # the interrupted run's own line: where it keeps the parts
    with caplog.at_level(logging.WARNING, logger="simkit"):
        distributed.run_on_cluster(config(), target, replicates=8, seed=seed, block_size=2, client=client, quiet=True)
    assert [record.getMessage() for record in caplog.records if record.name.startswith("simkit")] == [
        f"{target}: discarded {finished} finished parts of an interrupted run (in {tmp_path / '.dask.zarr.resumable'}) "
        f"and started afresh; {advice}"]
    assert not list(tmp_path.glob(".dask.zarr*"))


def test_an_interrupted_quiet_run_says_its_partial_run_is_kept(tmp_path, caplog):
    """``quiet`` silenced the one warning that tells where the finished parts are kept for resume."""
    target = tmp_path / "dask.zarr"
    with caplog.at_level(logging.WARNING, logger="simkit"):
        interrupted_run(config(), target, seed=3, blocks=1)
    assert [record.getMessage() for record in caplog.records if record.name.startswith("simkit")] == [
        f"partial run kept in {tmp_path / '.dask.zarr.resumable'}: run again with resume to finish it"]


def test_a_fresh_run_stopped_while_it_discards_an_interrupted_one_leaves_nothing_to_resume(client, tmp_path,
                                                                                          monkeypatch, caplog):
    """Stopped part way through deleting the work directory of an interrupted run (a variable of its store gone,
    its record and markers not yet), a fresh run left a partial run that resume then took up without that
    variable; and it had already said it discarded the finished parts."""
    target = tmp_path / "dask.zarr"
    interrupted_run(config(), target, seed=3, blocks=2)
    rmtree = shutil.rmtree

    def stopped(path, *args, **kwargs):
        rmtree(next(variable for variable in sorted((Path(path) / target.name).iterdir()) if variable.is_dir()))
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, logger="simkit"):
        patch.setattr(shutil, "rmtree", stopped)
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, client=client,
                                       quiet=True)
    assert not [record for record in caplog.records if "discarded" in record.getMessage()]
    assert not (tmp_path / ".dask.zarr.resumable").exists()
    result = distributed.run_on_cluster(config(), target, replicates=8, seed=3, block_size=2, client=client,
                                        quiet=True, resume=True)
    assert_same_result(result, local_result(config(), tmp_path / "local.zarr", replicates=8, seed=3, block_size=2))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dask.zarr", "local.zarr"]


def test_a_quiet_command_still_says_it_discards_finished_parts(client, tmp_path):
    """``--quiet`` silences the progress and the run's notes, not the loss of finished parts."""
    import subprocess
    import tomli_w

    from conftest import REPO

    config_path, target = tmp_path / "c.toml", tmp_path / "dask.zarr"
    config_path.write_text(tomli_w.dumps(config().raw()))
    finished = interrupted_run(simkit.load_config(config_path), target, seed=3, blocks=1)
    command = [sys.executable, "-m", "simkit.cli.main", "run", str(config_path), "-o", str(target), "--quiet",
               "--scheduler", client.scheduler.address, "--replicates", "8", "--block-size", "2", "--seed", "3"]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [
        f"simkit: {target}: discarded {counted(finished, 'finished part')} of an interrupted run (in "
        f"{tmp_path / '.dask.zarr.resumable'}) and started afresh; resume would have kept them"]


def test_workers_with_other_versions_are_refused(client, tmp_path, monkeypatch):
    monkeypatch.setattr(_version, "__version__", "0.0.0-client")
    with pytest.raises(simkit.InputError, match="differ from the client's"):
        distributed.run_on_cluster(config(), tmp_path / "r.zarr", replicates=4, block_size=2, client=client)
    assert not list(tmp_path.iterdir())


def test_resume_after_a_sigkilled_run_is_bit_identical(client, tmp_path):
    """`simkit run --resume` after the client of a run was killed with SIGKILL (no cleanup at all) gives
    exactly the uninterrupted result."""
    import subprocess
    import sys

    import tomli_w

    from conftest import REPO

    config_path, target = tmp_path / "c.toml", tmp_path / "dask.zarr"
    config_path.write_text(tomli_w.dumps(config().raw()))
    command = [sys.executable, "-m", "simkit.cli.main", "run", str(config_path), "-o", str(target), "--quiet",
               "--scheduler", client.scheduler.address, "--replicates", "8", "--block-size", "2", "--seed", "7"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    markers = tmp_path / ".dask.zarr.resumable" / "done"
    deadline = time.monotonic() + 120
    while not (markers.exists() and len(list(markers.iterdir())) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.kill()
    process.communicate(timeout=60)
    assert not target.exists() and (tmp_path / ".dask.zarr.resumable.lock").exists()  # the killed run's lock stays
    resumed = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = local_result(config(), tmp_path / "local.zarr", replicates=8, seed=7, block_size=2)
    assert_same_result(simkit.open_result(target), reference)
    assert not list(tmp_path.glob(".dask.zarr*"))


def csv_config(tmp_path, registers) -> Path:
    """A config file whose electorate is a CSV beside it (stations of ``registers``, north then south)."""
    import tomli_w

    raw = config().raw()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    rows = [f"{'north' if i < len(registers) // 2 else 'south'},{register}" for i, register in enumerate(registers)]
    (tmp_path / "stations.csv").write_text("region,registered\n" + "\n".join(rows) + "\n")
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_resume_refuses_a_partial_run_whose_electorate_csv_was_edited(tmp_path, monkeypatch, capsys):
    """The config text is unchanged but the CSV it points to is not: another election, never mixed into the
    partial one."""
    from simkit.cli.main import main

    registers = [500, 800, 300, 650, 720, 410]
    config_path, target = csv_config(tmp_path, registers), tmp_path / "dask.zarr"
    work = tmp_path / ".dask.zarr.resumable"
    with monkeypatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=1))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(simkit.load_config(config_path), target, replicates=8, seed=3, block_size=2,
                                       workers=1, quiet=True)  # its own cluster, closed: no task writes after
    before = sorted((path.relative_to(work), path.stat().st_mtime_ns) for path in work.rglob("*"))
    assert any(name.parts[0] == "done" for name, _ in before)
    csv_config(tmp_path, registers[:2] + [registers[2] + 1] + registers[3:])  # one register edited
    capsys.readouterr()
    assert main(["run", str(config_path), "-o", str(target), "--replicates", "8", "--seed", "3", "--block-size", "2",
                 "--workers", "1", "--resume", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--resume: electorate_sha256 differs" in lines[0], lines
    assert not target.exists()
    assert sorted((path.relative_to(work), path.stat().st_mtime_ns) for path in work.rglob("*")) == before


@pytest.mark.parametrize("flags, named", [(["--keep", "summary"], "--resume: --keep differs"),
                                          (["--kernel", "numpy"], "--resume: --kernel differs")])
def test_resume_names_the_flag_that_differs_from_the_partial_run(tmp_path, monkeypatch, capsys, flags, named):
    """A flag changed since the interrupted run is named as the flag the user can set back, not as the config
    hash it also changes."""
    from simkit.cli.main import main

    config_path, target = csv_config(tmp_path, [500, 800, 300, 650]), tmp_path / "dask.zarr"
    with monkeypatch.context() as patch:
        patch.setattr(progress, "progress_bar", InterruptingBar(blocks=1))
        with pytest.raises(KeyboardInterrupt):
            distributed.run_on_cluster(simkit.load_config(config_path), target, replicates=8, seed=3, block_size=2,
                                       workers=1, keep="full", quiet=True)
    capsys.readouterr()
    assert main(["run", str(config_path), "-o", str(target), "--replicates", "8", "--seed", "3", "--block-size", "2",
                 "--workers", "1", "--keep", "full", *flags, "--resume", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], lines


def _block_writes_failing(error: OSError):
    """``xarray.Dataset.to_zarr`` raising ``error`` for the blocks from replicate 4 on (a task's region write; the
    first block of 4 and the store's creation go through)."""
    to_zarr = xr.Dataset.to_zarr

    def failing(self, store, *args, region=None, **kwargs):
        if region is not None and region["replicate"].start >= 4:
            raise error
        return to_zarr(self, store, *args, region=region, **kwargs)
    return failing


def test_a_full_disk_while_the_blocks_are_written_is_one_line_and_keeps_the_partial_run(tmp_path, monkeypatch):
    """Tasks write their blocks into the partial store themselves (outside the staged write): a full disk there
    is the same one line, naming the partial run kept for resume; resuming once there is space finishes it."""
    cfg, target = config(), tmp_path / "dask.zarr"
    filling_the_disk = _block_writes_failing(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with distributed_api.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as in_process:
        with monkeypatch.context() as patch:
            patch.setattr(xr.Dataset, "to_zarr", filling_the_disk)
            with pytest.raises(simkit.InputError) as caught:
                distributed.run_on_cluster(cfg, target, replicates=8, seed=3, block_size=4, client=in_process,
                                           quiet=True)
        work = tmp_path / ".dask.zarr.resumable"
        assert str(caught.value) == (f"{target}: no space left on the device while writing it; the partial run is "
                                     f"kept in {work}: free some space and run again with resume to finish it")
        assert caught.value.parameters == ("resume",) and work.exists() and not target.exists()
        result = distributed.run_on_cluster(cfg, target, replicates=8, seed=3, block_size=4, client=in_process,
                                            resume=True, quiet=True)
    assert_same_result(result, local_result(cfg, tmp_path / "local.zarr", replicates=8, seed=3, block_size=8))


def test_a_refused_write_of_the_blocks_is_one_line_and_keeps_the_partial_run(tmp_path, monkeypatch):
    """Another error of the file system than a full disk (here a permission refused, naming its file) while the
    tasks write their blocks: one line naming the file and the partial run kept for resume (it was a traceback)."""
    cfg, target, refused = config(), tmp_path / "dask.zarr", tmp_path / "refused"
    refusing = _block_writes_failing(PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(refused)))
    with distributed_api.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as in_process:
        with monkeypatch.context() as patch:
            patch.setattr(xr.Dataset, "to_zarr", refusing)
            with pytest.raises(simkit.InputError) as caught:
                distributed.run_on_cluster(cfg, target, replicates=8, seed=3, block_size=4, client=in_process,
                                           quiet=True)
    work = tmp_path / ".dask.zarr.resumable"
    assert str(caught.value) == (f"{target}: could not be written ({os.strerror(errno.EACCES)}: {refused}); the "
                                 f"partial run is kept in {work}: mend that and run again with resume to finish it")
    assert caught.value.parameters == ("resume",) and work.exists() and not target.exists()


def _not_called(*args, **kwargs):
    raise AssertionError("called")


def test_the_result_records_its_electorate_and_workers_refuse_another(tmp_path, monkeypatch):
    config_path = csv_config(tmp_path, [500, 800, 300, 650])
    run = engine.prepare(simkit.load_config(config_path), replicates=2)
    spec = distributed.RunSpec.of(run)
    assert engine.static_dataset(run).attrs["electorate_sha256"] == spec.electorate_sha256
    assert distributed.compute_block(spec, 0, 0, 2).sizes["replicate"] == 2
    csv_config(tmp_path, [500, 800, 300, 651])  # edited after the client built the run
    distributed._prepared.cache_clear()  # a worker that starts now reads the edited file: refused
    monkeypatch.setattr(engine, "prepare", _not_called)  # before any preparation (a count-matching solve)
    with pytest.raises(simkit.InputError, match=r"\.csv: electorate: a worker reads another electorate .* than the client"):
        distributed.compute_block(spec, 0, 2, 4)
    monkeypatch.undo()
    edited = distributed.RunSpec.of(engine.prepare(simkit.load_config(config_path), replicates=2))
    assert edited.electorate_sha256 != spec.electorate_sha256  # the same config text, another election
    assert edited.config_text == spec.config_text
    assert int(edited.run().electorate.registered[-1]) == 651  # read again, not the run cached for the old file


def refuse_zarr_calls_from(modules: tuple[str, ...], monkeypatch) -> None:
    """Every function of zarr's namespace, and ``zarr.Array.open`` / ``zarr.Group.open``, raises AssertionError when
    code of one of ``modules`` calls it (xarray's own calls go through): the modules import zarr where they use it,
    so the test watches zarr itself."""
    import zarr

    def refused(name, function):
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__")
            if caller in modules:
                raise AssertionError(f"{caller} called zarr.{name}")
            return function(*args, **kwargs)
        return guarded

    for name, function in vars(zarr).items():
        if inspect.isfunction(function):
            monkeypatch.setattr(zarr, name, refused(name, function))
    for cls in (zarr.Array, zarr.Group):  # their class-level openers too
        opener = inspect.getattr_static(cls, "open")
        monkeypatch.setattr(cls, "open", classmethod(refused(f"{cls.__name__}.open", opener.__func__)))


def test_a_block_task_writes_with_the_types_it_is_given_without_reading_the_store(tmp_path, monkeypatch):
    """The client reads the store's types once and hands them to every task: a task opens no zarr metadata of
    its own (xarray's region write aside), and narrows its block to those types, checked."""
    run = engine.prepare(config(), replicates=4, seed=2)
    static = engine.annotate(engine.static_dataset(run), run.config)
    work = distributed._WorkDir(tmp_path / "r.zarr")
    work.create(distributed.template_dataset(run, static, 2), {})
    dtypes = work.stored_dtypes()
    assert dtypes["votes"] == np.int16 and dtypes["total_votes"] == np.int64 and "replicate" not in dtypes

    refuse_zarr_calls_from((distributed.__name__, io.__name__), monkeypatch)
    with pytest.raises(AssertionError, match="distributed called zarr.open_group"):  # the guard does watch
        work.stored_dtypes()
    spec = distributed.RunSpec.of(run)
    assert distributed.write_block(spec, 1, 2, 4, str(work.store), str(work.markers), dtypes) == 2
    with pytest.raises(ValueError, match="votes: counts from"):  # a type too narrow for the counts: refused
        distributed.write_block(spec, 1, 0, 2, str(work.store), str(work.markers),
                                {**dtypes, "votes": np.dtype(np.int8)})


def test_the_command_line_starts_without_importing_zarr():
    """zarr costs every command about 0.15 s to import: only the commands that write or read a store import it."""
    import subprocess

    root = str(Path(simkit.__file__).resolve().parent.parent)
    found = subprocess.run([sys.executable, "-c", "import sys, simkit.cli.main; print(sorted(m for m in sys.modules "
                            "if m.split('.')[0] == 'zarr'))"], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": root}, timeout=120).stdout.strip()
    assert found == "[]"


@pytest.mark.parametrize("address", ["notanaddress", "tcp://h", "nope://h:1"])  # no port; an unknown scheme
def test_a_scheduler_that_is_no_address_is_one_line(tmp_path, capsys, address):
    """``--scheduler notanaddress`` ended in a traceback (dask's ValueError), not the one line of a scheduler that
    cannot be reached."""
    import tomli_w
    from simkit.cli.main import main

    import dask

    path, out = tmp_path / "c.toml", tmp_path / "r.zarr"
    path.write_text(tomli_w.dumps(small_config_dict(stations=20, registered=2_000, replicates=2)))
    default = dask.config.get("scheduler", None)  # another test's live client may be the default
    with dask.config.set(scheduler="sync"):  # a setting that ends before the failed Client is collected
        assert main(["run", str(path), "-o", str(out), "--scheduler", address, "--quiet"]) == 2
        assert dask.config.get("scheduler") == "sync"  # the failed Client did not make itself the default
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"--scheduler {address}: cannot connect: ")  # then dask's words
    assert not list(tmp_path.glob("*r.zarr*"))
    gc.collect()  # a collected Client that had made itself the default put back what it had replaced ("sync")
    assert dask.config.get("scheduler", None) == default


HOLDER = """
import sys
from pathlib import Path
from simkit.engine.distributed import _WorkDir

work = _WorkDir(Path(sys.argv[1]))
with work.held():
    (work.path / "done").mkdir(parents=True)
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
"""


def test_a_second_run_on_a_target_being_written_is_refused(tmp_path, capsys):
    """Two dask runs on one target shared its work directory, and one without resume deleted the other's."""
    import subprocess
    import tomli_w
    from simkit.cli.main import main

    path, out = tmp_path / "c.toml", tmp_path / "r.zarr"
    path.write_text(tomli_w.dumps(small_config_dict(stations=20, registered=2_000, replicates=2)))
    root = str(Path(simkit.__file__).resolve().parent.parent)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": root})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["run", str(path), "-o", str(out), "--workers", "1", "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{out}: another run is writing it now (it holds ")
        assert (tmp_path / ".r.zarr.resumable" / "done").is_dir() and not out.exists()
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    assert not (tmp_path / ".r.zarr.resumable.lock").exists()  # the run that held it removed it


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_the_lock_of_a_sigkilled_run_is_free_for_the_next_run_which_removes_it(tmp_path, resume):
    """A run killed by SIGKILL cannot remove its lock file: the next run, resumed or not, takes it (the flock died
    with the process) and, finished, leaves no lock behind."""
    import subprocess
    import tomli_w
    from simkit.cli.main import main

    path, out = tmp_path / "c.toml", tmp_path / "r.zarr"
    path.write_text(tomli_w.dumps(small_config_dict(stations=20, registered=2_000, replicates=2)))
    root = str(Path(simkit.__file__).resolve().parent.parent)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": root})
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.communicate(timeout=60)
    assert (tmp_path / ".r.zarr.resumable.lock").exists()
    assert main(["run", str(path), "-o", str(out), "--workers", "1", "--quiet", *resume]) == 0
    assert simkit.open_result(out).sizes["replicate"] == 2
    assert not list(tmp_path.glob(".r.zarr*"))
