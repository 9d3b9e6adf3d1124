"""Fault injection: ``simkit run`` killed (SIGKILL, SIGTERM) while its workers compute and during the final
rename. Afterwards: no target or a complete one, no process of the run alive a second later, no staging
path after the next run on the target. (``--resume`` after a SIGKILL: tests/test_distributed.py.)"""
from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import tomli_w

import simkit
from simkit import io
from simkit.placement import journals, moves, owners, placing
from simkit.cli.main import main
from simkit.errors import InputError

from conftest import REPO, small_config_dict

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: enough station-draws for a process pool (engine.PARALLEL_MIN_DRAWS), a few seconds of work on 2 cores
RUN = dict(stations=20_000, registered=10_000_000, replicates=400)


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(small_config_dict(**RUN)))
    return path


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def start_run(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    """A run whose blocks go to two worker processes: the numpy kernel's (the numba kernel's blocks run in
    threads, which leave no process behind to test)."""
    return subprocess.Popen([sys.executable, "-m", "simkit.cli.main", "run", str(config), "-o", str(out), "--quiet",
                             "--processes", "2", "--kernel", "numpy", *extra], env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_workers(process: subprocess.Popen, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = children(process.pid)
        if len(workers) >= 2:
            time.sleep(0.5)  # let them start their blocks
            return children(process.pid)
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never started its workers")


def survivors(pids: list[int], within: float) -> list[int]:
    """The ``pids`` still running ``within`` seconds from now (returns as soon as none is)."""
    deadline = time.monotonic() + within
    while True:
        running = [pid for pid in pids if alive(pid)]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.02)


def assert_complete(path: Path, replicates: int) -> None:
    ds = simkit.open_result(path)
    assert ds.sizes["replicate"] == replicates
    assert int(ds["total_ballots"].min()) > 0  # every block written


@pytest.mark.parametrize("signum, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_a_killed_run_leaves_no_worker_and_nothing_after_the_next_run(config, tmp_path, signum, code, capsys):
    out = tmp_path / "out.zarr"
    process = start_run(config, out)
    workers = wait_for_workers(process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert not survivors(workers, within=1.0)
    assert not out.exists()
    if signum == signal.SIGTERM:  # handled like SIGINT: staging removed at once
        assert not list(tmp_path.glob(".out.zarr*")), err
    assert main(["run", str(config), "-o", str(out), "--quiet", "--replicates", "3", "--processes", "1"]) == 0
    assert not list(tmp_path.glob(".out.zarr*"))
    assert_complete(out, 3)


KILL_IN_RENAME = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from simkit.placement import moves
    point = sys.argv[1]
    if point == "between-renames":  # the platform has no atomic exchange: die between the two renames
        moves._exchange = lambda a, b: False
        real_replace = os.replace
        def replace(src, dst):
            real_replace(src, dst)
            if ".old-" in Path(dst).name:
                os.kill(os.getpid(), signal.SIGKILL)
        moves.os = type(sys)("os_with_a_fault")
        moves.os.__dict__.update(os.__dict__)
        moves.os.replace = replace
    else:  # the exchange is done: die before the old result is deleted
        real_remove = moves.remove_path
        def remove(path):
            if ".partial-" in path.name and path.exists():
                os.kill(os.getpid(), signal.SIGKILL)
            real_remove(path)
        moves.remove_path = remove
    from simkit.cli.main import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("point", ["after-exchange", "between-renames"])
def test_a_run_killed_in_the_final_rename_never_loses_the_target(config, tmp_path, point):
    out = tmp_path / "out.zarr"
    assert main(["run", str(config), "-o", str(out), "--quiet", "--replicates", "2", "--processes", "1"]) == 0
    killed = subprocess.run([sys.executable, "-c", KILL_IN_RENAME, point, "run", str(config), "-o", str(out),
                             "--quiet", "--replicates", "3", "--processes", "1", "--overwrite"],
                            env=environment(), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point == "after-exchange":
        assert_complete(out, 3)  # the new result is in place; the old one waits at the staging path
    else:
        assert not out.exists() and list(tmp_path.glob(".out.zarr.old-*"))
    assert main(["run", str(config), "-o", str(out), "--quiet", "--replicates", "4", "--processes", "1",
                 "--overwrite"]) == 0
    assert not list(tmp_path.glob(".out.zarr*"))
    assert_complete(out, 4)


def session_processes(session: int) -> list[int]:
    """Live processes of the session ``session`` (a command started with ``start_new_session``: its own id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, _, _, sid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            except (OSError, ValueError):
                continue
            if int(sid) == session and state != "Z":
                found.append(int(entry.name))
    return found


def test_a_run_on_its_own_dask_cluster_killed_leaves_no_process(tmp_path):
    """``run --workers 2`` starts a LocalCluster (its worker processes, and multiprocessing's resource tracker
    for their queues' semaphores). SIGKILL on the command alone: every process it started is gone soon after.
    The only thing said is the tracker's, on its way out, that it unlinked the semaphores the killed process
    could not (``resource_tracker: There appear to be N leaked semaphore objects to clean up at shutdown``)."""
    pytest.importorskip("dask.distributed")
    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps(small_config_dict(stations=2000, registered=1_000_000, replicates=400)))
    out = tmp_path / "out.zarr"
    process = subprocess.Popen([sys.executable, "-m", "simkit.cli.main", "run", str(config), "-o", str(out),
                                "--quiet", "--workers", "2", "--block-size", "10"], env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    markers = tmp_path / ".out.zarr.resumable" / "done"
    try:
        deadline = time.monotonic() + 180
        while not (markers.exists() and len(list(markers.iterdir())) >= 2):  # the workers are writing blocks
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        assert len(session_processes(process.pid)) > 2  # the command, its workers and the tracker
        process.kill()
        _, err = process.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session_processes(process.pid)
    finally:  # a failed wait leaves nothing of the run behind
        kill_session(process)
    assert only_leaked_semaphore_warnings(err), err
    assert not out.exists()


#: the resource tracker's warning (multiprocessing/resource_tracker.py) as ``warnings`` prints it
LEAKED_SEMAPHORES = re.compile(r"UserWarning: resource_tracker: There appear to be \d+ leaked semaphore objects? "
                               r"to clean up at shutdown")


def only_leaked_semaphore_warnings(err: str) -> bool:
    """Whether ``err`` says nothing but the resource tracker's leaked-semaphore warnings: each unindented line that
    warning, each indented one the source line ``warnings`` shows under it (whatever that source reads)."""
    return all(LEAKED_SEMAPHORES.search(line) for line in err.splitlines() if line.strip() and not line[0].isspace())


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL every live process of ``process``'s session (started with ``start_new_session``), then reap it."""
    for pid in session_processes(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.kill()
    process.wait()


@pytest.mark.parametrize("signal_error, code, word", [("Terminated", 128 + signal.SIGTERM, "terminated"),
                                                      ("KeyboardInterrupt", 130, "interrupted")])
def test_a_signal_after_the_result_is_in_place_does_not_deny_it(tmp_path, monkeypatch, capsys, signal_error, code,
                                                                  word):
    """A SIGTERM while a dask run's cluster closed (the result already in place) printed "nothing was written to
    the target" beside a complete result."""
    import simkit.cli.main as cli

    stopped = cli.Terminated if signal_error == "Terminated" else KeyboardInterrupt

    def signal_arrives(ds, args):
        raise stopped

    monkeypatch.setattr(cli, "_print_outcome", signal_arrives)
    config, target = tmp_path / "c.toml", tmp_path / "r.zarr"
    config.write_text(tomli_w.dumps(small_config_dict(stations=50, registered=5_000, replicates=2)))
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == code
    assert capsys.readouterr().err.strip() == f"{word}: {target} had been written in full before it stopped"
    assert_complete(target, 2)
    assert moves._RECORDS == []  # the command's record of what it wrote closed with it


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)],
                         ids=["ctrl-c-first", "sigterm-first"])
def test_sigterm_held_during_a_placement_wins_over_a_ctrl_c(tmp_path, monkeypatch, capsys, first, second):
    """A Ctrl-C then a SIGTERM while the result was put in place ended as "interrupted" (130): only the first signal
    held back was raised again. The process was asked to terminate: "terminated", 143, whichever came first."""
    put = moves.put_in_place

    def signalled(staging, target):
        put(staging, target)
        for signum in (first, second):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(moves, "put_in_place", signalled)
    config, target = tmp_path / "c.toml", tmp_path / "r.zarr"
    config.write_text(tomli_w.dumps(small_config_dict(stations=50, registered=5_000, replicates=2)))
    assert main(["run", str(config), "-o", str(target), "--quiet"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == f"terminated: {target} had been written in full before it stopped"
    assert_complete(target, 2)


def test_writes_outside_a_command_are_not_recorded(tmp_path):
    """Every write of a library caller was kept in a module-level list that only a command emptied."""
    io.write_text("before", tmp_path / "a.txt")
    with moves.recording_placed() as placed:
        io.write_text("during", tmp_path / "b.txt")
    io.write_text("after", tmp_path / "c.txt")
    assert placed == [tmp_path / "b.txt"] and moves._RECORDS == []


def _stopped_at_placement(monkeypatch, number: int = 2) -> list[Path]:
    """Make :func:`moves.put_in_place` raise KeyboardInterrupt on its ``number``-th call (those before work); the
    targets it is called with, in order."""
    put, calls = moves.put_in_place, []

    def stopped(staging, target):
        calls.append(target)
        if len(calls) == number:
            raise KeyboardInterrupt
        return put(staging, target)

    monkeypatch.setattr(moves, "put_in_place", stopped)
    return calls


def _write_pair(folder: Path, file: Path, text: str) -> None:
    with placing.staged_together(folder, file) as (staging_folder, staging):
        staging_folder.mkdir()
        (staging_folder / "a.png").write_text(text)
        staging.write_text(text)


@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("existed", [True, False])
def test_a_signal_between_two_placements_puts_the_first_back(tmp_path, monkeypatch, existed, exchange):
    """A signal after the figures folder was placed but before the report left the new folder beside the old
    report and both staging paths behind, and the command said nothing was written. Where a folder is replaced by
    two renames (no atomic exchange), putting the old one back moved the new one onto it: an OSError."""
    if not exchange:
        monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    if existed:
        _write_pair(folder, file, "old")
    _stopped_at_placement(monkeypatch)
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed:
        _write_pair(folder, file, "new")
    assert placed == []
    if existed:
        assert (folder / "a.png").read_text() == "old" and file.read_text() == "old"
    else:
        assert not folder.exists() and not file.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == (["r.md", "r_files"] if existed else [])


def test_a_signal_right_after_an_exchange_puts_the_old_result_back(tmp_path, monkeypatch):
    """A signal handled just after the atomic exchange, before its caller learnt where the old result was, left the
    new result in place, deleted the old one and recorded nothing written."""
    target, exchange, calls = tmp_path / "r.zarr", moves._exchange, []

    def write(text):
        with placing.staged(target) as staging:
            staging.mkdir()
            (staging / "a").write_text(text)

    def exchanged_then_stopped(a, b):
        done = exchange(a, b)
        calls.append(a)
        if len(calls) == 1:  # the exchange that puts the new result in place, not the one that undoes it
            raise KeyboardInterrupt
        return done

    write("old")
    monkeypatch.setattr(moves, "_exchange", exchanged_then_stopped)
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed:
        write("new")
    assert placed == [] and (target / "a").read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["r.zarr"]


def test_a_file_replaced_before_the_signal_is_recorded(tmp_path, monkeypatch):
    """An existing file replaced atomically has no old copy to put back: it is new, and the record says so."""
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    for file in (first, second):
        file.write_text("old")
    _stopped_at_placement(monkeypatch)
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed:
        with placing.staged_together(first, second) as stagings:
            for staging in stagings:
                staging.write_text("new")
    assert placed == [first] and first.read_text() == "new" and second.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_outputs_that_can_be_put_back_are_placed_before_files_that_replace_files(tmp_path, monkeypatch):
    """Outputs were placed in the order given: a file replacing an earlier one given first (``--plot`` figures before
    ``-o``) was new for good once placed, so a stop at a later one that could have been put back (a new file, a
    folder) left it new beside the others as they were. Placed last, a stop before it leaves all as they were."""
    file, new, folder = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c"
    file.write_text("old")
    folder.mkdir()
    (folder / "x").write_text("old")
    calls = _stopped_at_placement(monkeypatch, number=3)
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed:
        with placing.staged_together(file, new, folder) as (staging_file, staging_new, staging_folder):
            staging_file.write_text("new")
            staging_new.write_text("new")
            staging_folder.mkdir()
            (staging_folder / "x").write_text("new")
    assert calls[:3] == [new, folder, file] and placed == []  # then the folder put back
    assert file.read_text() == "old" and (folder / "x").read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "c"]


def test_an_undo_that_fails_on_one_target_still_tries_and_records_every_target(tmp_path, monkeypatch):
    """Putting back a placement that failed stopped at the first target it could not put back: the targets after it
    were left as placed (a new file in place), and none was recorded, so the command said nothing was written while a
    file that had replaced an earlier one was new. Each target is now tried and recorded as it goes."""
    refused, added, replaced, stopped_at = (tmp_path / name for name in ("a.txt", "b.txt", "c.txt", "d.txt"))
    for file in (replaced, stopped_at):
        file.write_text("old")
    _stopped_at_placement(monkeypatch, number=4)
    put_back = moves._put_back

    def failing_on_the_first(target, *args):
        if target == refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
        return put_back(target, *args)

    monkeypatch.setattr(moves, "_put_back", failing_on_the_first)
    with pytest.raises(moves.PlacementError, match=f"^{re.escape(str(refused))}: could not be put back \\(Permission "
                                                f"denied\\)$"), moves.recording_placed() as placed:
        with placing.staged_together(refused, added, replaced, stopped_at) as stagings:
            for staging in stagings:
                staging.write_text("new")
    assert placed == [refused, replaced]  # they hold the new result: one could not be put back, one has no old copy
    assert refused.read_text() == replaced.read_text() == "new" and stopped_at.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "c.txt", "d.txt"]  # b.txt taken away


def test_nested_records_each_close_their_own(tmp_path):
    """Closing a record removed the first equal list (both empty: the outer one), so a write after the inner
    context closed went to the closed list, not the open one, and the outer exit raised ValueError."""
    with moves.recording_placed() as outer:
        with moves.recording_placed() as inner:
            pass
        io.write_text("x", tmp_path / "a.txt")
    assert outer == [tmp_path / "a.txt"] and inner == [] and moves._RECORDS == []


def _signalled_once(function, when=lambda *args: True):
    """``function``, sending this process SIGINT as its first call for which ``when(*args)`` holds returns (Python's
    handler then raises KeyboardInterrupt there, as for a Ctrl-C handled at that moment)."""
    sent = []

    def signalled(*args):
        result = function(*args)
        if not sent and when(*args):
            sent.append(args)
            os.kill(os.getpid(), signal.SIGINT)
        return result

    return signalled


def test_a_signal_as_the_targets_are_recorded_keeps_them_recorded_once(tmp_path, monkeypatch):
    """A signal handled right as the targets were recorded put the old results back while the record kept the
    targets (twice): the command then said "written in full" of a target missing or holding the old result."""
    file, folder = tmp_path / "r.md", tmp_path / "r_files"
    _write_pair(folder, file, "old")
    monkeypatch.setattr(moves, "_record", _signalled_once(moves._record, lambda targets: bool(targets)))
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed:
        _write_pair(folder, file, "new")
    assert placed == [folder, file]
    assert (folder / "a.png").read_text() == "new" and file.read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]


def test_a_ctrl_c_between_the_two_renames_is_held_until_the_result_is_in_place(tmp_path, monkeypatch):
    """Where a folder is replaced by two renames (no atomic exchange), a Ctrl-C right after the first left the target
    missing, its old result at ``.NAME.old-PID``, and nothing recorded; then it was undone: it now waits until the
    new result is in place and recorded. (An error there is undone: the bytecode tests below.)"""
    monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    target = tmp_path / "r.zarr"
    target.mkdir()
    (target / "a").write_text("old")
    monkeypatch.setattr(os, "replace", _signalled_once(os.replace, lambda src, dst: ".old-" in Path(dst).name))
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as placed, placing.staged(target) as staging:
        staging.mkdir()
        (staging / "a").write_text("new")
    assert placed == [target] and (target / "a").read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["r.zarr"]


#: the files of the placement's code, whose bytecodes :class:`_StopAt` counts
PLACEMENT_FILES = frozenset(module.__file__ for module in (placing, moves, journals, owners))


class _StopAt:
    """A trace function that, while :func:`placing._place_all` runs, raises KeyboardInterrupt (as an error would) at the
    ``at``-th bytecode run in :mod:`simkit.placement` (:data:`PLACEMENT_FILES`) and raises SIGINT (a Ctrl-C: Python's handler raises KeyboardInterrupt
    there) at the ``signal_at``-th; ``fired`` and ``signalled`` tell whether it came
    that far. A trace function that raises is unset: :meth:`rearm`, the profile function, sets it again."""

    def __init__(self, at: int | None, signal_at: int | None = None):
        self.at, self.signal_at, self.count, self.placing = at, signal_at, 0, False
        self.fired = self.signalled = False

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename not in PLACEMENT_FILES:
            return None
        frame.f_trace_opcodes = True
        return self.opcode

    def opcode(self, frame, event, arg):
        if event == "opcode" and self.placing:
            self.count += 1
            if self.count == self.at:
                self.fired = True
                raise KeyboardInterrupt
            if self.count == self.signal_at:
                self.signalled = True
                signal.raise_signal(signal.SIGINT)  # to this thread: handled here, whatever other threads run
        return self.opcode

    def rearm(self, frame, event, arg):
        """Trace again, from the next bytecode of every frame of :mod:`simkit.placement` on the stack, once raising unset
        it."""
        if sys.gettrace() is None and self.placing:
            sys.settrace(self)
            while frame is not None:
                if frame.f_code.co_filename in PLACEMENT_FILES:
                    frame.f_trace, frame.f_trace_opcodes = self.opcode, True
                frame = frame.f_back


def _stopped_pair_write(folder: Path, file: Path, stop: _StopAt, monkeypatch) -> list[Path]:
    """Write "new" to ``folder`` and ``file`` together, ``stop`` tracing the placement; what was recorded. The
    write ends in KeyboardInterrupt whenever ``stop`` stopped it or signalled."""
    place_all = placing._place_all

    def traced(stagings, targets):
        stop.placing = True
        try:
            return place_all(stagings, targets)
        finally:
            stop.placing = False

    monkeypatch.setattr(placing, "_place_all", traced)
    with moves.recording_placed() as placed:
        sys.settrace(stop)
        sys.setprofile(stop.rearm)
        try:
            _write_pair(folder, file, "new")
        except KeyboardInterrupt:
            assert stop.fired or stop.signalled
        else:
            assert not (stop.fired or stop.signalled)
        finally:
            sys.setprofile(None)
            sys.settrace(None)
            _close_orphaned_folders(folder.parent)
    return placed


def _close_orphaned_folders(root: Path) -> None:
    """Close the descriptors of folders under ``root`` left open. The tracer raises between ``os.open``'s return and
    the store of its descriptor (a folder's, :func:`moves._fsync`), where no error can arise and the placement holds
    signals back: the descriptor is orphaned. Thousands of stopped writes exhausted the process's descriptors (a later
    test's ``select`` failed); a file's descriptor is a file object, which closes itself."""
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, closed since
            continue
        if target.startswith(f"{root}/") or target == str(root):
            os.close(int(name))


def _assert_as_recorded(root: Path, folder: Path, file: Path, placed: list[Path], existed: bool, at) -> None:
    """Each target holds the new result exactly when it is recorded (once), the old one (or nothing, when there was
    none) otherwise, and nothing is left beside them."""
    assert len(placed) == len(set(placed)), at
    expected = {target: "new" if target in placed else "old" if existed else None for target in (folder, file)}
    assert {folder: (folder / "a.png").read_text() if folder.exists() else None,
            file: file.read_text() if file.exists() else None} == expected, at
    assert sorted(path.name for path in root.iterdir()) == sorted(
        target.name for target, text in expected.items() if text is not None), at


def _stopped_pair_writes(tmp_path: Path, monkeypatch, existed: bool, stops: Iterator[_StopAt],
                         all_or_nothing: bool = False) -> tuple[int, _StopAt]:
    """Write a pair (over an old one when ``existed``) stopped by each of ``stops`` in turn, until one no longer
    comes to its signal (to its stop when it sends none): what each leaves is what it recorded
    (:func:`_assert_as_recorded`), both targets or neither when ``all_or_nothing``, and, after signals alone, the
    handlers of SIGINT and SIGTERM are the ones before. How many came that far, and the stop that did not."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for count, stop in enumerate(stops):
        root = tmp_path / str(count)
        root.mkdir(parents=True)
        folder, file = root / "r_files", root / "r.md"
        if existed:
            _write_pair(folder, file, "old")
        with monkeypatch.context() as patch:
            placed = _stopped_pair_write(folder, file, stop, patch)
        left = {signum: signal.getsignal(signum) for signum in handlers}
        for signum, handler in handlers.items():  # a stop raised while they were put back may have left them
            signal.signal(signum, handler)
        if not (stop.signalled if stop.signal_at is not None else stop.fired):
            return count, stop
        where = (stop.at, stop.signal_at)
        _assert_as_recorded(root, folder, file, placed, existed, where)
        assert not all_or_nothing or len(placed) in (0, 2), where
        assert stop.at is not None or left == handlers, where  # signals alone: the handlers are put back
    raise AssertionError("unreachable: the stops are endless")


@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("existed", [True, False])
def test_a_signal_at_any_bytecode_of_the_placement_leaves_what_is_recorded(tmp_path, monkeypatch, existed, exchange):
    """Stopped at each bytecode of the placement in turn: each target holds the new result exactly when it is
    recorded (once), the old one (or nothing, when there was none) otherwise, and nothing is left beside them."""
    if not exchange:
        monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    stopped, _ = _stopped_pair_writes(tmp_path, monkeypatch, existed, (_StopAt(at) for at in itertools.count(1)))
    assert stopped > 50  # it did stop the placement at every step


@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("existed", [True, False])
def test_a_ctrl_c_at_any_bytecode_of_the_placement_places_all_or_nothing(tmp_path, monkeypatch, existed, exchange):
    """A Ctrl-C at each bytecode of the placement in turn: it stops the write (KeyboardInterrupt) and leaves both
    targets new (recorded) or both as they were, never one of each: the placement is held back from it."""
    if not exchange:
        monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    signalled, _ = _stopped_pair_writes(tmp_path, monkeypatch, existed,
                                        (_StopAt(None, signal_at) for signal_at in itertools.count(1)),
                                        all_or_nothing=True)
    assert signalled > 50


#: the bytecodes between the stops of :func:`test_a_second_ctrl_c_during_the_undo_leaves_what_is_recorded`, first
#: stops and Ctrl-Cs after them: every pair of bytecodes would take hours (the placement of an old pair runs some
#: 1,650, its syncs, locks and records included), every 7th and 5th some 11,000 stopped writes a case (37 s on a
#: quiet core). CI (``CI=true``) takes every 29th and 11th (some 1,100): fewer stops, the same assertions on each
FIRST_STOP_STEP, CTRL_C_STEP = (29, 11) if os.environ.get("CI") == "true" else (7, 5)


#: a first stop raised where no signal is handled (the with statement's call of ``__exit__``, say) leaves the
#: deferral's generator to the garbage collector, whose closing it then meets a Ctrl-C: "Exception ignored"
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("existed", [True, False])
def test_a_second_ctrl_c_during_the_undo_leaves_what_is_recorded(tmp_path, monkeypatch, existed, exchange):
    """Stopped at every :data:`FIRST_STOP_STEP`-th bytecode of the placement, then a Ctrl-C at every
    :data:`CTRL_C_STEP`-th bytecode of the undo that follows: the undo runs to its end all the same (a second Ctrl-C
    during it left a target missing, or the old result beside the new one, or the record naming a target that held
    the old result)."""
    if not exchange:
        monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    signalled = 0
    for at in itertools.count(1, FIRST_STOP_STEP):
        stops = (_StopAt(at, signal_at) for signal_at in itertools.count(at + 1, CTRL_C_STEP))
        count, last = _stopped_pair_writes(tmp_path / str(at), monkeypatch, existed, stops)
        signalled += count
        if not last.fired:  # the placement is shorter than ``at`` bytecodes
            break
    assert at > 50 and signalled > 100


def test_a_write_from_another_thread_holds_no_signal_back(tmp_path):
    """Signal handlers can be set only in the main thread: a library caller's write from another thread places its
    result all the same, and the main thread's handlers stay as they were."""
    handler, errors = signal.getsignal(signal.SIGINT), []

    def write():
        try:
            io.write_text("x", tmp_path / "a.txt")
        except BaseException as error:  # noqa: BLE001 - told to the main thread
            errors.append(error)

    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    assert errors == [] and (tmp_path / "a.txt").read_text() == "x"
    assert signal.getsignal(signal.SIGINT) is handler


def test_an_old_result_this_process_left_does_not_block_its_next_write(tmp_path, monkeypatch):
    """A stop while the replaced result was deleted leaves it at ``.NAME.old-PID`` of this process, which is still
    running (a library caller that carries on): the next write of that folder by two renames then failed, renaming
    the target onto that non-empty folder."""
    monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    target = tmp_path / "r.zarr"

    def write(text):
        with placing.staged(target) as staging:
            staging.mkdir()
            (staging / "a").write_text(text)

    write("old")
    left = owners.staging_path(target, owners.OLD)
    left.mkdir()
    (left / "a").write_text("older")
    write("new")
    assert (target / "a").read_text() == "new" and [path.name for path in tmp_path.iterdir()] == ["r.zarr"]


@pytest.mark.parametrize("stop, code", [("Terminated", 128 + signal.SIGTERM), ("KeyboardInterrupt", 130)])
def test_a_stop_raised_inside_a_finaliser_still_stops_the_run(tmp_path, monkeypatch, capsys, stop, code):
    """A SIGTERM or Ctrl-C whose handler raises while a ``__del__`` runs (an event loop collected at that moment)
    is printed by Python as "Exception ignored" and dropped: the run went on to write its result, exit 0."""
    from simkit.cli import main as cli_main
    from simkit.engine import run as engine_run

    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps(small_config_dict(stations=50, registered=5_000, replicates=4)))
    out = tmp_path / "out.zarr"
    raised = {"Terminated": cli_main.Terminated, "KeyboardInterrupt": KeyboardInterrupt}[stop]

    class Finalised:
        def __del__(self):
            raise raised

    real, calls = engine_run.honest_replicate, []

    def replicate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            Finalised()  # collected at once: the stop is raised inside its finaliser
            time.sleep(0.5)  # the run's next step, well after the stop was sent again
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_run, "honest_replicate", replicate)
    assert main(["run", str(config), "-o", str(out), "--replicates", "4", "--processes", "1", "--kernel", "numpy"]) \
        == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))
    assert len(calls) == 1


KILL_IN_PLACEMENT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from simkit.placement import journals, moves, placing
    point, exchange, folder, file = sys.argv[1], sys.argv[2] == "exchange", Path(sys.argv[3]), Path(sys.argv[4])
    if not exchange:
        moves._exchange = lambda a, b: False

    def killed_after(function, calls, wanted=lambda *args: True):
        # ``function``, whose ``calls``-th call that ``wanted`` its arguments kills this process once it returned
        counted = []
        def wrapped(*args):
            result = function(*args)
            counted.extend([1] if wanted(*args) else [])
            if len(counted) == calls:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapped

    if point == "one-journal-written":
        journals.os = type(sys)("os_with_a_fault")
        journals.os.__dict__.update(os.__dict__)
        journals.os.replace = killed_after(os.replace, 1, lambda src, dst: ".journal-" in Path(dst).name)
    elif point == "journals-written":
        journals.write_journals = killed_after(journals.write_journals, 1)
    elif point == "between-renames":  # of the folder, replaced by two renames (no atomic exchange)
        moves.os = type(sys)("os_with_a_fault")
        moves.os.__dict__.update(os.__dict__)
        moves.os.replace = killed_after(os.replace, 1, lambda src, dst: ".old-" in Path(dst).name)
    else:
        moves.put_in_place = killed_after(moves.put_in_place, {"first-placed": 1, "all-placed": 2}[point])
    with placing.staged_together(folder, file) as (staging_folder, staging):
        staging_folder.mkdir()
        (staging_folder / "a.png").write_text("new")
        staging.write_text("new")
""")


def _killed_pair_write(folder: Path, file: Path, point: str, exchange: bool) -> None:
    """Write "new" to ``folder`` (a.png inside) and ``file`` together in a process that SIGKILLs itself at
    ``point`` of the placement (``KILL_IN_PLACEMENT``)."""
    killed = subprocess.run([sys.executable, "-c", KILL_IN_PLACEMENT, point, "exchange" if exchange else "renames",
                             str(folder), str(file)], env=environment(), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def _pair(folder: Path, file: Path) -> tuple[str | None, str | None]:
    """What ``folder``/a.png and ``file`` hold (None: missing)."""
    return ((folder / "a.png").read_text() if folder.exists() else None, file.read_text() if file.exists() else None)


@pytest.mark.parametrize("recovered", ["folder", "file"])
@pytest.mark.parametrize("exchange", [True, False])
@pytest.mark.parametrize("existed", [True, False])
@pytest.mark.parametrize("point", ["journals-written", "first-placed", "between-renames", "all-placed"])
def test_a_placement_killed_between_its_renames_is_finished_by_the_next_write(tmp_path, point, existed, exchange,
                                                                               recovered):
    """A SIGKILL between the renames of outputs placed together (a report and its figures folder) left one new
    beside the other old, for good: the cleanup of the next write (on either) knew only a staging path to delete.
    It finishes the placement from the journals: both new, nothing beside them, one message."""
    if point == "between-renames" and (exchange or not existed):
        pytest.skip("a folder is put in place by two renames only when it replaces one without an atomic exchange")
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    if existed:
        _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, point, exchange)
    assert list(tmp_path.glob(".r_files.journal-*")) and list(tmp_path.glob(".r.md.journal-*"))
    messages = journals.recover_stale(folder if recovered == "folder" else file)
    assert len(messages) == 1 and messages[0].startswith(f"finished putting in place {folder}, {file}: a run "
                                                         f"killed while placing them (process "), messages
    assert _pair(folder, file) == ("new", "new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]
    assert [path.name for path in folder.iterdir()] == ["a.png"]
    assert journals.recover_stale(folder) == [] and journals.recover_stale(file) == []


@pytest.mark.parametrize("recovered_first", ["folder", "file"])
def test_a_run_killed_while_it_wrote_the_journals_leaves_both_new_or_both_old(tmp_path, recovered_first):
    """Killed with the journal beside the figures folder written and the report's not: the cleanup of the report
    alone, finding no journal, deletes its staging path; the folder's journal then lists a result that is gone, and
    both stay old. Cleaned up from the folder first, it finishes the placement: both new."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "one-journal-written", exchange=True)
    assert list(tmp_path.glob(".r_files.journal-*")) and not list(tmp_path.glob(".r.md.journal-*"))
    first, second = (folder, file) if recovered_first == "folder" else (file, folder)
    journals.recover_stale(first)
    journals.recover_stale(second)
    assert _pair(folder, file) == (("new", "new") if recovered_first == "folder" else ("old", "old"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]
    assert [path.name for path in folder.iterdir()] == ["a.png"]


def test_a_placement_of_one_output_writes_no_journal(tmp_path, monkeypatch):
    """Only placements of several outputs are journaled (one rename needs none)."""
    write_journals, beside = journals.write_journals, []

    def journaled(stagings, targets):
        write_journals(stagings, targets)
        beside.extend(path.name for path in tmp_path.iterdir())

    monkeypatch.setattr(journals, "write_journals", journaled)
    with placing.staged(tmp_path / "a.txt") as staging:
        staging.write_text("x")
    assert beside == [owners.staging_path(tmp_path / "a.txt", owners.STAGING).name]
    assert [path.name for path in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("stop", ["Terminated", "KeyboardInterrupt"])
def test_a_stop_sent_again_after_the_command_ended_is_not_sent(monkeypatch, stop):
    """The resend of a stop lost in a finaliser fires from a timer: one that fires once the command has returned
    (its result written in full) must not interrupt the caller, nor print 'Exception ignored'."""
    from simkit.cli import main as cli_main

    raised = {"Terminated": cli_main.Terminated, "KeyboardInterrupt": KeyboardInterrupt}[stop]
    timers = []

    class Finalised:
        def __del__(self):
            raise raised

    class HeldTimer:  # a timer that fires only when the test says
        def __init__(self, interval, function, args=()):
            self.function, self.args, self.daemon = function, args, False

        def start(self):
            timers.append(self)

    def command(args):
        Finalised()
        return 0

    monkeypatch.setattr(cli_main, "_cmd_summary", command)
    monkeypatch.setattr(cli_main.threading, "Timer", HeldTimer)
    assert main(["summary", "anything.zarr"]) == 0
    assert len(timers) == 1
    try:
        timers[0].function(*timers[0].args)  # fires late
        time.sleep(0.05)
    except (KeyboardInterrupt, cli_main.Terminated):
        pytest.fail("a stop sent again after the command ended reached its caller")


def test_a_target_changed_after_a_killed_placement_is_left_as_it_is(tmp_path):
    """Killed with the figures folder placed and the report not yet, the user then writes the report anew (another
    inode): the next write put the killed run's report over it, losing it (a file over a file keeps no old copy). The
    set is left as it is, the killed run's report kept beside it, until the journal named in the message is removed;
    the next write then clears what was left."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "first-placed", exchange=True)
    (tmp_path / "mine").write_text("mine")  # as an editor saves: written beside, renamed over (another inode)
    os.replace(tmp_path / "mine", file)
    for target in (file, folder):
        messages = journals.recover_stale(target)
        assert len(messages) == 1 and "r.md changed since a run was killed while placing them" in messages[0], messages
        assert file.read_text() == "mine" and list(tmp_path.glob(".r.md.partial-*"))
    written = sorted(tmp_path.glob(".*.journal-*"))
    assert len(written) == 2 and all(str(journal) in messages[0] for journal in written)
    for journal in written:
        journal.unlink()
    journals.recover_stale(file)
    journals.recover_stale(folder)
    assert _pair(folder, file) == ("new", "mine")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]


@pytest.mark.parametrize("edit", ["file-size", "file-time", "folder", "file-in-folder"])
def test_a_target_edited_in_place_after_a_killed_placement_is_left_as_it_is(tmp_path, edit):
    """Killed once its journals were written, before any rename; the user then edits an output in place (the same
    inode: the report rewritten, a figure added to the folder, a figure inside it rewritten, which leaves the folder's
    own time and size as they were). The journals knew the old results by device and inode alone, so the next write
    put the killed run's results over the edit. Their modification time and size are recorded too, and a fingerprint of
    what a folder holds: the set is left as it is, as for an output replaced."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "journals-written", exchange=True)
    edited = folder if edit in ("folder", "file-in-folder") else file
    inode = os.lstat(edited).st_ino
    if edit == "file-size":
        file.write_text("mine")
    elif edit == "file-time":  # the same size: the time alone tells
        before = os.stat(file)
        file.write_text("OLD")
        os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    elif edit == "folder":
        (folder / "b.png").write_text("mine")
    else:  # the same size, in place: the folder's own time and size stay as they were
        before = os.stat(folder)
        (folder / "a.png").write_text("OLD")
        assert os.stat(folder).st_mtime_ns == before.st_mtime_ns and os.stat(folder).st_size == before.st_size
    assert os.lstat(edited).st_ino == inode  # edited in place
    for target in (file, folder):
        messages = journals.recover_stale(target)
        assert len(messages) == 1 and f"{edited.name} changed since a run was killed" in messages[0], messages
    assert _pair(folder, file) == ("OLD" if edit == "file-in-folder" else "old",
                                   {"file-size": "mine", "file-time": "OLD"}.get(edit, "old"))
    assert sorted(path.name for path in folder.iterdir()) == (["a.png", "b.png"] if edit == "folder" else ["a.png"])
    assert len(list(tmp_path.glob(".*.journal-*"))) == 2 and list(tmp_path.glob(".r.md.partial-*"))


@pytest.mark.parametrize("recorded", ["identity", "identity-time-size"])
@pytest.mark.parametrize("point", ["journals-written", "first-placed", "all-placed"])
def test_a_journal_of_an_older_simkit_is_read_and_never_overwrites_an_old_result(tmp_path, point, recorded):
    """Journals written before the old results' time and size were recorded (no ``old_state``), or before what a
    folder holds was (no ``old_tree``), are still read. An output that holds its old result and that they record too
    little of to tell it unedited (any, or a folder) leaves the set as it is, and the message says why; outputs that
    hold the new result, or an old file whose time and size are recorded, are no obstacle: the placement is
    finished."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, point, exchange=True)
    dropped = {"old_tree"} if recorded == "identity-time-size" else {"old_state", "old_tree"}
    for journal in tmp_path.glob(".*.journal-*"):
        entries = json.loads(journal.read_text())
        journal.write_text(json.dumps([{key: value for key, value in entry.items() if key not in dropped}
                                       for entry in entries]))
    messages = journals.recover_stale(folder)
    assert len(messages) == 1, messages
    left = {"journals-written": (f"{folder}, {file}" if recorded == "identity" else f"{folder}", ("old", "old")),
            "first-placed": (f"{file}", ("new", "old")) if recorded == "identity" else None}.get(point)
    if left is not None:  # the first-placed folder new, the report old
        assert re.search(rf"{re.escape(left[0])} changed since a run was killed while placing them \(process \d+\)"
                         rf"{re.escape(journals.UNTOLD)}; ", messages[0]), messages
        assert _pair(folder, file) == left[1]
    else:
        assert messages[0].startswith(f"finished putting in place {folder}, {file}"), messages
        assert _pair(folder, file) == ("new", "new")
        assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]


@pytest.mark.parametrize("second", ["folder", "file"])
def test_two_processes_finishing_one_placement_at_once_finish_it_once(tmp_path, monkeypatch, second):
    """Two commands started together after a kill both found the journals and finished the placement at once, each
    moving and removing what the other was moving and removing. Recovery is exclusive: whichever claims the set first
    finishes it, the other waits, then finds it finished and leaves it alone (two threads here, each with its own
    lock, as two processes would be; the first inside the finishing waits for the other to arrive, which only a
    missing lock lets it)."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "first-placed", exchange=True)
    finish, inside, arrived = journals._finish_listed, [], threading.Event()

    def finishing(journal, entries):
        inside.append(journal)
        if len(inside) == 1:
            arrived.wait(timeout=2)
        else:
            arrived.set()
        return finish(journal, entries)

    monkeypatch.setattr(journals, "_finish_listed", finishing)
    messages = {}

    def recover(target: Path) -> None:
        messages[target] = journals.recover_stale(target)

    threads = [threading.Thread(target=recover, args=(target,))
               for target in ((folder, file) if second == "file" else (file, folder))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(inside) == 1 and sorted(map(len, messages.values())) == [0, 1], messages
    assert _pair(folder, file) == ("new", "new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.md", "r_files"]


def test_a_staging_path_is_told_left_by_the_dead_by_its_process_start_boot_and_place(tmp_path):
    """Staging paths were named by the process id alone: a process id used again by another process (or the same
    number in another container sharing the folder) kept a killed run's paths alive for good, and a run in another
    container whose process id is free here had its paths deleted under it. They are named by the process id, its
    start time, and where (host name and process-id namespace) and in which boot it ran: a path of a process id now
    running another process, or of an earlier boot, is removed; one whose process runs is kept; one of another place
    is kept and said so."""
    target = tmp_path / "s.txt"
    target.write_text("mine")
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while (start := owners._start_time(running.pid)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        _, _, place, boot = owners._own_owner().split(".")
        other = "0" * 8 if place != "0" * 8 and boot != "0" * 8 else "f" * 8
        names = {kind: f".s.txt.partial-{running.pid}.{tick}.{where}.{booted}" for kind, tick, where, booted in [
            ("running", start, place, boot), ("reused", int(start) + 1, place, boot), ("rebooted", start, place, other),
            ("elsewhere", start, other, boot)]}
        for name in names.values():
            (tmp_path / name).write_text("partial")
        messages = journals.recover_stale(target)
        left = sorted(path.name for path in tmp_path.iterdir())
    finally:
        running.kill()
        running.wait()
    assert left == sorted([names["elsewhere"], names["running"], "s.txt"]), left
    assert len(messages) == 3 and sum(f"removed {names[kind]}, left by a run that was killed (process {running.pid})"
                                      in message for message in messages for kind in ("reused", "rebooted")) == 2
    assert any(f"left {names['elsewhere']} as it is: written by process {running.pid} of another machine or "
               "container" in message for message in messages), messages


@pytest.mark.parametrize("exchange", [True, False])
def test_a_placement_syncs_its_results_and_journals_before_the_renames_and_the_folder_after(tmp_path, monkeypatch,
                                                                                            exchange):
    """Nothing was synced: after a power cut the renames could be on the disk without the journals or the new results'
    data (a target empty or garbled), or the journals removed while a rename was not. Now every staged file and folder
    is synced before the first journal is written, each journal before its rename, the folder holding them after the
    last of those and before any output is put in place, and again after the outputs are placed and before the
    journals are removed."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    if not exchange:
        monkeypatch.setattr(moves, "_exchange", lambda a, b: False)
    events = []

    def traced(kind, function, name):
        def call(*args, **options):
            result = function(*args, **options)
            events.append((kind, name(*args)))
            return result
        return call

    monkeypatch.setattr(os, "fsync", traced("fsync", os.fsync, lambda fd: os.readlink(f"/proc/self/fd/{fd}")))
    for kind in ("replace", "unlink"):
        monkeypatch.setattr(os, kind, traced(kind, getattr(os, kind), lambda path, *rest: os.fspath(rest[0] if rest
                                                                                                     else path)))
    with placing.staged_together(folder, file) as (staging_folder, staging):
        staging_folder.mkdir()
        (staging_folder / "a.png").write_text("new")
        staging.write_text("new")
    assert _pair(folder, file) == ("new", "new")

    def first(kind, wanted, after=-1):
        return next(i for i, (k, name) in enumerate(events) if k == kind and wanted(name) and i > after)

    journal_written = first("replace", lambda name: ".journal-" in name and ".partial-journal-" not in name)
    placed = first("replace", lambda name: Path(name).name in ("r.md", "r_files"))
    removed = first("unlink", lambda name: ".journal-" in name)
    for synced in (staging_folder / "a.png", staging_folder, staging):
        assert first("fsync", lambda name: name == str(synced)) < journal_written
    assert first("fsync", lambda name: ".partial-journal-" in name) < journal_written
    last_journal = max(i for i, (k, name) in enumerate(events) if k == "replace" and ".journal-" in Path(name).name)
    assert last_journal < first("fsync", lambda name: name == str(tmp_path), last_journal) < placed
    last_placed = max(i for i, (k, name) in enumerate(events) if k == "replace" and Path(name).name == "r.md")
    assert last_placed < first("fsync", lambda name: name == str(tmp_path), last_placed) < removed


def _dead_pid() -> int:
    """The process id of a process that has ended."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(ended.stdout)


@pytest.mark.parametrize("journal", ["", '{"x": 1}', "[1, 2]", "a folder"])
def test_a_journal_that_cannot_be_read_is_removed_once_with_a_warning(tmp_path, journal):
    """A journal that is empty, not a list of entries or not a file raised a traceback (JSONDecodeError, TypeError,
    OSError) at every later write on its target: it is removed, said once, and nothing else is touched."""
    file = tmp_path / "r.md"
    file.write_text("mine")
    path = tmp_path / f".r.md.journal-{_dead_pid()}"
    if journal == "a folder":
        path.mkdir()
    else:
        path.write_text(journal)
    messages = journals.recover_stale(file)
    assert len(messages) == 1 and messages[0].startswith(f"{path}: removed: not a journal"), messages
    assert journals.recover_stale(file) == [] and [p.name for p in tmp_path.iterdir()] == ["r.md"]
    assert file.read_text() == "mine"


def test_a_placement_that_cannot_be_finished_is_one_line_naming_its_journal(tmp_path, monkeypatch):
    """A failed rename while finishing a killed placement was a traceback, at every later write: it is an InputError
    (the command line's one line) naming the journal."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "journals-written", exchange=True)

    def refused(staging, target):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(moves, "put_in_place", refused)
    with pytest.raises(InputError, match=r"\.r_files\.journal-[\d.a-f]+: could not finish the placement a killed "
                                         r"run left \(Permission denied\)"):
        journals.recover_stale(folder)


def test_a_journal_moved_with_its_folder_acts_on_nothing(tmp_path):
    """A journal lists absolute paths: moved or copied with its folder, it named outputs elsewhere, which the next
    write beside the copy then changed. A journal that does not list the output beside it is removed and said so;
    nothing is put in place, and the original outputs and their journals are not touched."""
    original, copy = tmp_path / "a", tmp_path / "b"
    original.mkdir()
    folder, file = original / "r_files", original / "r.md"
    _write_pair(folder, file, "old")
    _killed_pair_write(folder, file, "journals-written", exchange=True)
    shutil.copytree(original, copy, symlinks=True)
    before = sorted(path.name for path in original.iterdir())
    for target in (copy / "r_files", copy / "r.md"):
        messages = journals.recover_stale(target)
        assert messages and "removed: it does not list the output beside it" in messages[0], messages
    assert _pair(folder, file) == ("old", "old") and sorted(path.name for path in original.iterdir()) == before
    assert _pair(copy / "r_files", copy / "r.md") == ("old", "old")
    assert sorted(path.name for path in copy.iterdir()) == ["r.md", "r_files"]


def test_a_staging_path_missing_at_placement_is_the_one_line_placement_error(tmp_path):
    """A write of outputs placed together that left one staging path unwritten raised a bare FileNotFoundError (a
    traceback) from the journals' writing: it is a PlacementError naming that output, and nothing is put in place."""
    folder, file = tmp_path / "r_files", tmp_path / "r.md"
    with pytest.raises(moves.PlacementError, match=rf"^{re.escape(str(file))}: could not be put in place"):
        with placing.staged_together(folder, file) as (staging_folder, staging):
            staging_folder.mkdir()
    assert list(tmp_path.iterdir()) == []
