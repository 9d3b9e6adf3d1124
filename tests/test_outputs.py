"""Outputs are never replaced silently, never written onto the command's own input, and killed runs leave
nothing that the next run does not clean up (:mod:`simkit.outputs`, :func:`simkit.io.recover_stale`)."""
from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from simkit import io
from simkit.placement import journals, moves
from simkit.cli.main import main

from conftest import TIMELINE_MAP, small_config_dict


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(small_config_dict(stations=6, registered=3000, replicates=2)))
    return path


def one_line_error(capsys, *fragments):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_folder_that_is_not_a_result_is_never_replaced(tmp_path, config, capsys):
    target = tmp_path / "a.zarr"
    (target / "photos").mkdir(parents=True)
    (target / "photos" / "1.txt").write_text("x")
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == 2
    one_line_error(capsys, "a.zarr", "exists", "--overwrite")
    assert main(["run", str(config), "-o", str(target), "--quiet", "--overwrite"]) == 2
    one_line_error(capsys, "a.zarr", "not a simkit result")
    assert (target / "photos" / "1.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "c.toml"]


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_overwrite_replaces_a_simulation_with_a_simulation(tmp_path, config, suffix):
    import simkit

    target = tmp_path / f"s{suffix}"
    assert main(["run", str(config), "-o", str(target), "--quiet", "--seed", "1"]) == 0
    assert main(["run", str(config), "-o", str(target), "--quiet", "--seed", "2", "--overwrite"]) == 0
    assert simkit.open_result(target).attrs["seed"] == 2


def test_forensics_never_writes_onto_its_input(tmp_path, config, capsys):
    sim = tmp_path / "sim.zarr"
    assert main(["run", str(config), "-o", str(sim), "--quiet"]) == 0
    before = sorted(str(p) for p in sim.rglob("*"))
    assert main(["forensics", str(sim), "-o", str(sim), "--tests", "last_digit", "--overwrite"]) == 2
    one_line_error(capsys, "sim.zarr", "input")
    assert sorted(str(p) for p in sim.rglob("*")) == before


def test_plot_never_writes_into_its_input(tmp_path, config, capsys):
    """``forensics sim.zarr --plot sim.zarr`` wrote its PNGs into the input store."""
    sim = tmp_path / "sim.zarr"
    assert main(["run", str(config), "-o", str(sim), "--quiet"]) == 0
    before = sorted(str(p) for p in sim.rglob("*"))
    capsys.readouterr()
    assert main(["forensics", str(sim), "--tests", "last_digit", "--power", "0", "--plot", str(sim)]) == 2
    one_line_error(capsys, "--plot", "sim.zarr", "an input")
    assert sorted(str(p) for p in sim.rglob("*")) == before


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_plot_figures_appear_together_or_not_at_all(tmp_path, monkeypatch, stop):
    """``--plot DIR`` wrote its PNGs in place one by one: a failure (or a Ctrl-C) at the second figure left the
    first one new beside the others of an earlier run, or alone in a new folder."""
    from matplotlib.figure import Figure

    from simkit.cli.io import figure_writers, place_outputs

    def figures(size):
        return {name: Figure(figsize=(size, size)) for name in ("a", "b", "c")}

    def save_figures(plot, figures):
        place_outputs(figure_writers(plot, figures))

    earlier, fresh = tmp_path / "earlier", tmp_path / "fresh"
    save_figures(earlier, figures(2))
    before = {path.name: path.read_bytes() for path in earlier.iterdir()}
    assert sorted(before) == ["a.png", "b.png", "c.png"]
    draw, calls = Figure.savefig, []

    def stopped_at_the_second(figure, *args, **kwargs):
        calls.append(figure)
        if len(calls) % 3 == 2:
            raise stop
        return draw(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", stopped_at_the_second)
    for plot in (earlier, fresh):
        with pytest.raises(stop):
            save_figures(plot, figures(3))
    assert {path.name: path.read_bytes() for path in earlier.iterdir()} == before
    assert list(fresh.iterdir()) == []


def test_a_result_writer_takes_its_format_from_the_target_it_is_placed_at(tmp_path):
    """``dataset_writer(ds, path)`` was given the path that its key in :func:`place_outputs` already held (callers
    passed it twice): the writer is given its target."""
    import numpy as np
    import xarray as xr

    from simkit.cli.io import dataset_writer, place_outputs

    ds = xr.Dataset({"x": ("station", np.arange(3))}, attrs={"title": "t"})
    place_outputs({tmp_path / "r.nc": dataset_writer(ds), tmp_path / "r.zarr": dataset_writer(ds)})
    for name in ("r.nc", "r.zarr"):
        assert io.open_result(tmp_path / name).load().identical(ds)
    assert (tmp_path / "r.nc").is_file() and (tmp_path / "r.zarr").is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.nc", "r.zarr"]


#: a station timeline for ``simkit timeline STATIONS --map MAP`` (two regions, two reports before the final count)
TIMELINE_STATIONS = "region,registered,b14,b18,final\na,100,30,40,50\nb,100,30,40,50\n"


def _with_output_and_plot(command: str, tmp_path, config) -> list[str]:
    """The arguments of ``command`` writing ``-o`` (``out.*``) and ``--plot plots``, on small inputs."""
    if command == "forensics":
        sim = tmp_path / "sim.zarr"
        config.write_text(tomli_w.dumps(small_config_dict(stations=40, registered=40_000, replicates=1)))
        assert main(["run", str(config), "-o", str(sim), "--quiet"]) == 0
        return ["forensics", str(sim), "--tests", "last_digit", "--power", "0", "--draws", "99", "-o",
                str(tmp_path / "out.nc"), "--plot", str(tmp_path / "plots")]
    if command == "compare":
        raw = small_config_dict(stations=20, registered=20_000)
        raw["exit_poll"] = [{"name": "p", "stations": 5, "per_station": 20, "published": {"a": 0.5, "b": 0.5}}]
        config.write_text(tomli_w.dumps(raw))
        return ["compare", str(config), "--replicates", "20", "--quiet", "-o", str(tmp_path / "out.json"),
                "--plot", str(tmp_path / "plots")]
    stations, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    stations.write_text(TIMELINE_STATIONS)
    map_path.write_text(TIMELINE_MAP)
    return ["timeline", str(stations), "--map", str(map_path), "--draws", "100", "--station-draws", "20", "-o",
            str(tmp_path / "out.json"), "--plot", str(tmp_path / "plots")]


@pytest.mark.parametrize("command", ["forensics", "compare", "timeline"])
def test_the_output_and_its_figures_appear_together_or_not_at_all(tmp_path, config, capsys, monkeypatch, command):
    """``-o`` and ``--plot`` were put in place one after the other (forensics and compare the figures after the
    output, timeline before it): a stop between the two left the result without its figures, or the reverse."""
    argv = _with_output_and_plot(command, tmp_path, config)
    put, calls = moves.put_in_place, []

    def stopped_at_the_second(staging, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return put(staging, target)

    monkeypatch.setattr(moves, "put_in_place", stopped_at_the_second)
    capsys.readouterr()
    assert main(argv) == 130
    assert capsys.readouterr().err.startswith("interrupted: nothing was written to the target")
    assert len(calls) == 2 and not any(tmp_path.glob("out.*")) and list((tmp_path / "plots").iterdir()) == []
    monkeypatch.setattr(moves, "put_in_place", put)
    assert main(argv) == 0  # and without the stop, both
    assert len(list(tmp_path.glob("out.*"))) == 1 and len(list((tmp_path / "plots").glob("*.png"))) == 1


def _refused_placing(monkeypatch, refused_target):
    """Make :func:`moves.put_in_place` refuse to put anything at ``refused_target`` (a PermissionError, as a rename
    into a read-only folder or onto an immutable file meets); every other target is placed."""
    put = moves.put_in_place

    def refusing(staging, target):
        if target == refused_target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(staging), None, str(target))
        return put(staging, target)

    monkeypatch.setattr(moves, "put_in_place", refusing)


def test_an_output_that_cannot_be_placed_is_one_line_naming_what_was_written(tmp_path, config, capsys, monkeypatch):
    """``timeline -o out.json --plot plots --overwrite``: a PermissionError putting ``out.json`` in place, once the
    figure had replaced an earlier run's (no old copy to put back), was a traceback, and nothing said that the
    figure was new beside the old ``out.json``."""
    argv = _with_output_and_plot("timeline", tmp_path, config)
    assert main(argv) == 0
    figure, output = tmp_path / "plots" / "timeline.png", tmp_path / "out.json"
    figure_before, output_before = os.stat(figure), os.stat(output)
    _refused_placing(monkeypatch, output)
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    one_line_error(capsys, f"{output}: could not be put in place (Permission denied); {figure} had been written in "
                           f"full before it failed")
    assert not os.path.samestat(os.stat(figure), figure_before)  # the figure is new, as the line says
    assert os.path.samestat(os.stat(output), output_before)
    assert sorted(p.name for p in tmp_path.glob(".*")) == [] and os.listdir(tmp_path / "plots") == ["timeline.png"]


def test_plot_onto_the_output_is_refused_before_any_work(tmp_path, config, capsys):
    """``compare x.toml -o x.txt --plot x.txt`` wrote the text, then failed on the folder with a traceback."""
    raw = small_config_dict(stations=20, registered=20_000)
    raw["exit_poll"] = [{"name": "p", "stations": 5, "per_station": 20, "published": {"a": 0.5, "b": 0.5}}]
    config.write_text(tomli_w.dumps(raw))
    target = tmp_path / "x.txt"
    assert main(["compare", str(config), "-o", str(target), "--plot", str(target), "--replicates", "20"]) == 2
    one_line_error(capsys, "--plot", "x.txt", "the -o output")
    assert not target.exists()


def test_overwrite_refuses_a_result_of_another_kind(tmp_path, config, capsys):
    sim, other = tmp_path / "sim.nc", tmp_path / "other.nc"
    for path in (sim, other):
        assert main(["run", str(config), "-o", str(path), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["forensics", str(sim), "-o", str(other), "--tests", "last_digit", "--power", "0",
                 "--overwrite"]) == 2
    one_line_error(capsys, "other.nc", "simulation", "forensics")


def test_a_run_onto_its_own_stored_config_is_refused(tmp_path, config, capsys):
    sim = tmp_path / "sim.nc"
    assert main(["run", str(config), "-o", str(sim), "--quiet"]) == 0
    assert main(["run", str(sim), "-o", str(sim), "--quiet", "--overwrite"]) == 2
    one_line_error(capsys, "sim.nc", "input")


@pytest.mark.parametrize("under", ["file", "/dev/null"])
def test_an_output_under_a_file_is_one_line(tmp_path, config, capsys, under):
    parent = tmp_path / under
    if under == "file":
        parent.write_text("")
    elif not parent.exists():
        pytest.skip("no /dev/null")
    assert main(["run", str(config), "-o", str(parent / "x.zarr"), "--quiet"]) == 2
    one_line_error(capsys, "x.zarr", "is not a folder")


def test_a_compare_report_is_not_written_over_its_config(tmp_path, capsys):
    raw = small_config_dict(stations=6, registered=3000, replicates=2)
    raw["exit_poll"] = [{"name": "p", "stations": 3, "per_station": 10, "published": {"a": 0.5, "b": 0.3, "c": 0.2}}]
    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps(raw))
    assert main(["compare", str(config), "-o", str(config), "--overwrite"]) == 2
    one_line_error(capsys, "c.toml", "input")
    assert tomli_w.dumps(raw) == config.read_text()


def dead_pid() -> int:
    """The id of a process that has ended."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(dead.stdout)


def test_stale_staging_of_a_dead_run_is_removed_with_a_message(tmp_path, config, capsys):
    pid = dead_pid()
    staging = tmp_path / f".s.zarr.partial-{pid}"
    (staging / "x").mkdir(parents=True)
    assert main(["run", str(config), "-o", str(tmp_path / "s.zarr"), "--quiet"]) == 0
    assert capsys.readouterr().err == (f"simkit: {tmp_path / 's.zarr'}: removed .s.zarr.partial-{pid}, left by a run "
                                       f"that was killed (process {pid})\n")
    assert not staging.exists()


def test_the_cleanup_after_killed_runs_logs_rather_than_prints(tmp_path, capsys, caplog, monkeypatch):
    """Library code printed its cleanup on stderr, whatever the caller's logging said: it logs a warning on
    ``simkit.placement.journals`` (the command line shows it, as above) and returns the messages."""
    monkeypatch.setattr(logging.getLogger("simkit"), "handlers", [])  # the command line's, if a test ran one
    pid = dead_pid()
    (tmp_path / f".s.nc.partial-{pid}").write_text("")
    with caplog.at_level("WARNING", logger="simkit"):
        messages = journals.recover_stale(tmp_path / "s.nc")
    assert messages == [f"{tmp_path / 's.nc'}: removed .s.nc.partial-{pid}, left by a run that was killed "
                        f"(process {pid})"]
    assert [(record.name, record.levelname, record.getMessage()) for record in caplog.records] == [
        ("simkit.placement.journals", "WARNING", messages[0])]
    assert "removed" not in capsys.readouterr().err


def test_a_result_moved_aside_by_a_killed_rename_is_restored(tmp_path, config, capsys):
    pid = dead_pid()
    target = tmp_path / "s.nc"
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == 0
    os.replace(target, tmp_path / f".s.nc.old-{pid}")
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == 2  # restored, so it exists again
    err = capsys.readouterr().err
    assert "restored the previous result" in err and "exists" in err
    assert target.exists() and not list(tmp_path.glob(".s.nc*"))


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_a_report_replaces_only_a_report(tmp_path, config, capsys, fmt):
    target = tmp_path / f"r.{fmt}"
    target.write_text("my notes")
    args = ["report", str(config), "-o", str(target), "--format", fmt, "--replicates", "2", "--quiet"]
    assert main(args) == 2
    one_line_error(capsys, f"r.{fmt}", "exists", "--overwrite")
    assert main(args + ["--overwrite"]) == 2
    one_line_error(capsys, f"r.{fmt}", "not a simkit result")
    assert target.read_text() == "my notes"
    target.unlink()
    assert main(args) == 0
    assert main(args + ["--overwrite"]) == 0  # a report made by simkit is recognised and replaced


def _zarr_filling_the_disk(static, blocks, path, staging, replicates):
    staging.mkdir()
    (staging / "part").write_text("x")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _netcdf_filling_the_disk(data, staging, **options):
    staging.write_bytes(b"x")  # part of the file's bytes saved
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(tmp_path, config, capsys, monkeypatch, suffix):
    """The disk fills up after the free-space check (another process, a filesystem's per-file overhead): one line
    naming the target, exit 2, no staging left."""
    monkeypatch.setattr(io, "_write_zarr", _zarr_filling_the_disk)
    monkeypatch.setattr(io, "_save_netcdf", _netcdf_filling_the_disk)
    target = tmp_path / f"r{suffix}"
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == 2
    one_line_error(capsys, str(target), "no space left on the device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def _filling_the_disk(write):
    """In place of ``write`` (``Figure.savefig``, ``save_text``: the staging path its last positional argument): a
    writer that saves part of its output, then meets a full disk."""

    def filling(*args, **kwargs):
        Path(args[-1]).write_bytes(b"x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return filling


@pytest.mark.parametrize("kind", ["dataset", "tree"])
def test_a_failed_zarr_write_leaves_no_staging_once_its_other_writes_end(tmp_path, monkeypatch, kind):
    """zarr writes a store's keys together, each in a thread: the first that failed was raised at once and the
    staging path removed while the others went on, and one ending later made it again (a ``.r.zarr.partial-PID``
    left behind, now and then, after a write that failed). The error now waits for them."""
    import threading
    import time

    import numpy as np
    import xarray as xr
    import zarr.storage._local as local

    from simkit.errors import InputError

    put, calls, lock = local._put, [], threading.Lock()

    def failing_first(path, value, exclusive=False):
        with lock:
            calls.append(path)
            first = len(calls) == 1
        if first:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        time.sleep(0.5)  # ends well after the first failed
        return put(path, value, exclusive=exclusive)

    monkeypatch.setattr(local, "_put", failing_first)
    ds = xr.Dataset({name: ("replicate", np.arange(4)) for name in "abc"})
    with pytest.raises(InputError, match="r.zarr: could not be written \\(File too large\\)"):
        if kind == "dataset":
            io.write_dataset(ds, tmp_path / "r.zarr")
        else:
            io.write_tree(xr.DataTree(ds), tmp_path / "r.zarr")
    time.sleep(1.0)  # any write still going has ended
    assert len(calls) > 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("filled_by", ["figure", "output"])
def test_a_full_disk_names_the_output_being_written(tmp_path, config, capsys, monkeypatch, filled_by):
    """``timeline -o out.json --plot plots``: the disk filling up while the figure was saved blamed ``out.json``
    (the line named the last of the outputs placed together, ``-o``, whichever was being written)."""
    from matplotlib.figure import Figure

    import simkit.cli.io as cli_io

    argv = _with_output_and_plot("timeline", tmp_path, config)
    figure, output = tmp_path / "plots" / "timeline.png", tmp_path / "out.json"
    if filled_by == "figure":
        monkeypatch.setattr(Figure, "savefig", _filling_the_disk(Figure.savefig))
    else:
        monkeypatch.setattr(cli_io, "save_text", _filling_the_disk(cli_io.save_text))
    capsys.readouterr()
    assert main(argv) == 2
    one_line_error(capsys, f"{figure if filled_by == 'figure' else output}: no space left on the device while "
                           f"writing it; nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "map.toml", "plots", "stations.csv"]
    assert os.listdir(tmp_path / "plots") == []


def _writing(command: str, tmp_path: Path, config: Path) -> list[str]:
    """The arguments of ``command`` writing its outputs (``-o out.*``, and ``--plot plots`` where it has one) on small
    inputs in ``tmp_path`` (``config``: a small election)."""
    if command in ("forensics", "compare", "timeline"):
        return _with_output_and_plot(command, tmp_path, config)
    if command in ("run.zarr", "run.nc"):
        return ["run", str(config), "-o", str(tmp_path / f"out.{command[4:]}"), "--quiet"]
    if command == "summary":
        assert main(["run", str(config), "-o", str(tmp_path / "sim.nc"), "--quiet"]) == 0
        return ["summary", str(tmp_path / "sim.nc"), "-o", str(tmp_path / "out.json")]
    if command == "calibrate":  # stations enough for the test to run on each simulated election
        config.write_text(tomli_w.dumps(small_config_dict(stations=100, registered=100_000, replicates=2)))
        return ["calibrate", str(config), "--replicates", "2", "--tests", "zero_five", "--null", "textbook",
                "--quiet", "-o", str(tmp_path / "out.json")]
    if command in ("report.html", "report.md"):  # an exit poll against the count: a figure (Markdown: out_files/)
        raw = small_config_dict(stations=20, registered=20_000)
        raw["exit_poll"] = [{"name": "p", "stations": 5, "per_station": 20,
                             "published": {"a": 0.5, "b": 0.3, "c": 0.2}}]
        raw["observed"] = {"votes": {"a": 6000, "b": 3600, "c": 2400}}
        config.write_text(tomli_w.dumps(raw))
        return ["report", str(config), "--replicates", "20", "--power", "0", "--quiet", "-o",
                str(tmp_path / f"out.{command[7:]}")]
    from test_kill_commands import infer_inputs

    return [*infer_inputs(tmp_path)[1], "-o", str(tmp_path / "out.nc")]


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (relative), with its bytes (None: a folder)."""
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes() for path in folder.rglob("*")}


def _no_file_larger_than_nothing():
    """In a child process before it runs: no file it writes may grow past 0 bytes (a write fails with EFBIG, "File
    too large", as it would under a file size limit or a quota; root is not exempt)."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.parametrize("command", ["run.zarr", "run.nc", "summary", "compare", "forensics", "calibrate", "timeline",
                                     "report.html", "report.md", "infer"])
def test_a_failure_while_the_outputs_are_written_is_one_line_and_changes_nothing(tmp_path, config, command):
    """A write of a staged copy that failed (not a full disk: a file size limit here, or a permission refused, a
    name too long for the staging path) was a traceback: it is one line naming the output and the problem, exit 2,
    every staging path removed and the earlier outputs (written by the same command first) as they were."""
    from test_kill import environment

    argv = _writing(command, tmp_path, config)
    assert main(argv) == 0  # the earlier outputs (and any compiled code cached, so the child writes nothing else)
    assert command != "report.md" or (tmp_path / "out_files" / "polls.png").exists()  # two outputs placed together
    before = _tree(tmp_path)
    failed = subprocess.run([sys.executable, "-m", "simkit.cli.main", *argv, "--overwrite"], env=environment(),
                            capture_output=True, text=True, timeout=300, preexec_fn=_no_file_larger_than_nothing)
    assert failed.returncode == 2, failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"{re.escape(str(tmp_path))}/\S+: could not be written \(File too "
                                            rf"large(: \S+)?\); nothing was written \(the outputs already there "
                                            rf"are as they were\)", lines[0]), failed.stderr
    assert _tree(tmp_path) == before


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc, where no folder can be made")
@pytest.mark.parametrize("command", ["forensics", "compare", "timeline"])
def test_a_plot_folder_that_cannot_be_made_is_one_line(tmp_path, config, capsys, command):
    """``--plot DIR`` whose folder cannot be made (here under /proc, where even root makes none) was a traceback
    from the figures' writing: one line naming it, exit 2, no output written."""
    argv = _with_output_and_plot(command, tmp_path, config)
    argv[argv.index("--plot") + 1] = "/proc/simkit-nowhere/plots"
    before = _tree(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    one_line_error(capsys, "/proc/simkit-nowhere/plots: could not be written (", "/proc/simkit-nowhere")
    assert _tree(tmp_path) == before


#: writes 800 kB of random floats (incompressible) to the netCDF path argv[1]; exit 2 with the error's line
_NETCDF_WRITER = """
import sys
import numpy as np
import xarray as xr
from simkit import InputError, io
ds = xr.Dataset({"x": (("replicate", "station"), np.random.default_rng(0).random((50, 2000)))})
try:
    io.write_dataset(ds, sys.argv[1])
except InputError as error:
    print(error)
    sys.exit(2)
"""
#: mount a 200 kB tmpfs at $1 (in this private mount namespace), run the writer onto it, list what it left
_ON_A_SMALL_TMPFS = 'mount -t tmpfs -o size=200k tmpfs "$1" || exit 99; "$2" -c "$3" "$1/r.nc"; code=$?; ls -A "$1"; ' \
                    'exit $code'


def test_a_netcdf_write_filling_a_real_disk_exits_cleanly(tmp_path):
    """A real full filesystem (a small tmpfs, mounted in a user and mount namespace): the one line, exit 2, no
    staging; HDF5 is never left with a failed flush (which crashed the process at exit, code 139)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no unprivileged user and mount namespaces here: cannot mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", _ON_A_SMALL_TMPFS, "sh", str(mount), sys.executable,
                           _NETCDF_WRITER], capture_output=True, text=True, timeout=120)
    if done.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    assert done.returncode == 2, done
    assert done.stdout == f"{mount}/r.nc: no space left on the device while writing it; nothing was written " \
                          f"(free some space, or write elsewhere)\n", done  # and ls -A listed nothing


def _waited_too_long(signum, frame):
    raise TimeoutError("the target was opened and waited on")


@pytest.mark.parametrize("kind", ["report", "simulation"])
def test_a_fifo_target_is_refused_without_being_opened(tmp_path, kind):
    from simkit.errors import InputError
    from simkit.outputs import claim_output

    target = tmp_path / ("r.md" if kind == "report" else "r.nc")
    os.mkfifo(target)  # opening it for reading would wait for a writer forever
    opened = []
    previous = signal.signal(signal.SIGALRM, _waited_too_long)
    signal.alarm(30)  # the wait, were it opened, fails the test (the signal interrupts open())
    try:
        with pytest.raises(InputError, match="not a file or a folder"):
            claim_output(target, kind, overwrite=True, recognise=opened.append)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert opened == [] and target.exists()
