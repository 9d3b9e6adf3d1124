"""Writing outputs atomically: :func:`staged` and :func:`staged_together` hand the writer staging paths beside the
targets and put every result in place at the end, the targets never missing, signals held while they move
(:func:`signals_deferred`); a write that fails leaves the targets as they were and says what was written
(:func:`nothing_written_on_error`).
"""
from __future__ import annotations

import errno
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


from simkit.errors import InputError
from simkit.placement import journals, moves, owners


@contextmanager
def staged(target: str | Path) -> Iterator[Path]:
    """Yield a staging path beside ``target``; on success put it at ``target`` (an existing ``target`` is
    moved aside first and deleted after), on failure or interruption remove it. Staging left by killed runs
    on ``target`` is cleaned up first (:func:`journals.recover_stale`), whichever command writes it."""
    with staged_together(target) as (staging,), nothing_written_on_error(target):
        yield staging


@contextmanager
def staged_together(*targets: str | Path) -> Iterator[list[Path]]:
    """:func:`staged` for outputs that make one result (a Markdown report and its figures folder): yield a staging path
    beside each of ``targets``; when all are written, put them in place (those that can be put back first:
    :func:`_reversible_first`) and record them (:func:`moves.recording_placed`, :func:`_place_all`). On failure or
    interruption before placing none is put in place; a failure once placing began puts back those already placed (an
    OSError raised again as a :class:`moves.PlacementError`), and a Ctrl-C (or the command line's SIGTERM) while placing
    or putting back waits until that is done (:func:`_signals_deferred`); whatever happens, every staging path and every
    displaced old result is removed at the end (:func:`moves.clear_staging`). No targets: nothing to stage or place. An
    OSError while a staging path is made ready (:func:`_prepared`) is the one line naming its target; one while it is
    written (a full disk, a permission refused) is made so by the caller, around the writing of each staging path
    (:func:`nothing_written_on_error`)."""
    targets = [Path(target) for target in targets]
    if not targets:
        yield []
        return
    stagings = []
    for target in targets:
        with nothing_written_on_error(target):
            stagings.append(_prepared(target))
    try:
        yield stagings
        _synced_results(stagings, targets)
        _place_all(stagings, targets)
    finally:
        journals.remove_journals(targets)  # left by an error while :func:`_place_all` removed them: before the stagings
        for staging, target in zip(stagings, targets):
            moves.clear_staging(staging, target)


def _prepared(target: Path) -> Path:
    """The staging path of ``target``, made ready for :func:`staged_together`: the folder of ``target`` made, what
    killed runs left beside it cleaned up (:func:`journals.recover_stale`), what this process left there removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    journals.recover_stale(target)
    staging = owners.staging_path(target, owners.STAGING)
    journals.remove_journals([target])  # what a write of this process, stopped while it cleared up, left
    moves.clear_staging(staging, target)
    return staging


@contextmanager
def nothing_written_on_error(target: str | Path) -> Iterator[None]:
    """An OSError while the staging path of ``target`` is made ready or written (around that alone, so that the line
    names the output being written among those placed together: :func:`staged_together`) raised as the one line
    saying nothing was written: a full disk as :func:`no_space`, any other (a permission refused, a name too long
    for the staging path, a file size limit) as :func:`not_written`; the staging paths are removed by
    :func:`staged_together`. A broken pipe, or another :class:`ConnectionError`, is not the file's: raised as it is
    (the command line takes a closed output pipe for the end of the reader)."""
    try:
        yield
    except OSError as error:
        if disk_full(error):
            raise no_space(target, NOTHING_WRITTEN) from None
        if isinstance(error, ConnectionError):
            raise
        raise not_written(target, error) from None


def not_written(target: str | Path, error: OSError) -> InputError:
    """The one line of ``error``, which stopped ``target`` from being written before anything was put in place:
    ``out.json: could not be written (File too large: .out.json.partial-PID); nothing was written (…)``."""
    return InputError(f"{target}: could not be written ({reason_of(error)}); {NOTHING_CHANGED}")


def reason_of(error: OSError) -> str:
    """What stopped a write, in a few words: ``error``'s message and the file it names (``Permission denied: x``)."""
    reason = error.strerror or str(error)
    if error.filename is not None:
        reason += f": {os.fsdecode(error.filename)}"
    return reason


def _reversible_first(stagings: list[Path], targets: list[Path]) -> tuple[list[Path], list[Path]]:
    """``stagings`` and their ``targets`` in the order :func:`_place_all` puts them in place: first those whose
    placement can be put back (a new target, a folder), then the files that replace a file
    (:func:`moves.keeps_no_old_copy`), each group in the order given, so that a failure leaves all as they were unless
    it comes after a file was replaced."""
    order = sorted(zip(stagings, targets), key=lambda pair: moves.keeps_no_old_copy(*pair))
    return [staging for staging, target in order], [target for staging, target in order]


def _synced_results(stagings: list[Path], targets: list[Path]) -> None:
    """Make every staged result durable (:func:`moves.synced`) before :func:`_place_all` writes journals that name
    them; before the signals are held, so that a Ctrl-C during a long sync (a large zarr store) stops the write at
    once, nothing placed. An OSError is raised as a :class:`moves.PlacementError` naming the target."""
    for staging, target in zip(stagings, targets):
        try:
            moves.synced(staging)
        except OSError as error:
            raise moves.PlacementError(target, error) from error


def _place_all(stagings: list[Path], targets: list[Path]) -> None:
    """Put each staging path at its target (:func:`moves.put_in_place`), in the order of :func:`_reversible_first`, then
    record the targets in that order. If interrupted or failing before all are in place, put back the old result of each
    target it reached (a target that did not exist is taken away), every one, recording as it goes those that hold the
    new result still (a file that atomically replaced a file: its old copy is gone; :func:`moves._put_all_back`), and
    re-raise; once all are in place they are kept and recorded, whatever interrupts the recording (:func:`moves._record`
    adds a target once), so that what is recorded is always what is there. An OSError is raised again as a
    :class:`moves.PlacementError` naming the target it failed on.

    A Ctrl-C (or the command line's SIGTERM) while it runs, placing or undoing, is held back until it is done
    (:func:`_signals_deferred`): the placement is all or nothing however many arrive. What was placed is told from the
    files, not from :func:`moves.put_in_place`'s return: any exception at any point of a placement, even right after a
    rename or an exchange, is undone like any other (:func:`moves._put_back`). With several targets their journals are
    written before the first rename and removed once all are placed or put back (:func:`journals.write_journals`), so
    that a run killed (SIGKILL) in between is finished by the next write to any of them
    (:func:`journals.recover_stale`).

    Durable against a power cut (:func:`moves.synced`): the staged results were synced before it runs
    (:func:`_synced_results`), each journal is synced before its rename and the folders holding them after, and the
    targets' folders after the renames, before the journals are removed; so that either the journals and every new
    result, or the old results, are there after a restart, and the next write puts the set right."""
    stagings, targets = _reversible_first(stagings, targets)
    with _signals_deferred():
        try:
            journals.write_journals(stagings, targets)
            moves.place_or_put_back(stagings, targets)
            moves.synced_folders(targets)
        finally:
            journals.remove_journals(targets)


#: the signals whose Python handlers :func:`_signals_deferred` holds back, the one raised again first when both were
#: held: the command line's SIGTERM (:class:`simkit.cli.main.Terminated`), then a Ctrl-C (KeyboardInterrupt), whose
#: handler is put back last, so that another Ctrl-C while the handlers are put back is either held back or comes once
#: all are back
DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back :data:`DEFERRED_SIGNALS` while the context is open: each one handled by a Python function is
    recorded rather than handled, and once the context closes the handlers are put back and one recorded signal is
    raised again (:func:`signal.raise_signal`), so that a Ctrl-C (or a second one) during a placement or its undo
    stops the program right after it rather than in the middle. Of several, SIGTERM wins, whichever came first (the
    first of :data:`DEFERRED_SIGNALS` recorded): the process was asked to terminate, and a Ctrl-C besides does not
    make that an interruption (the command line exits 143, not 130). Outside the main thread (where handlers
    can be neither set nor run) it holds nothing back. A handler that a signal stopped from being put back passes
    each later signal on to the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: handler for signum in DEFERRED_SIGNALS if callable(handler := signal.getsignal(signum))}
    held: list[int] = []
    deferring = True

    def hold(signum, frame):
        if deferring:
            held.append(signum)
        else:
            previous[signum](signum, frame)

    try:
        for signum in previous:
            signal.signal(signum, hold)
        yield
    finally:
        try:
            _restore_handlers(list(previous.items()))
        finally:
            deferring = False
        if held:
            signal.raise_signal(next(signum for signum in DEFERRED_SIGNALS if signum in held))


def _restore_handlers(handlers: list[tuple[int, object]]) -> None:
    """Set each (signal, handler) pair of ``handlers``, every one even when a signal raises during an earlier one."""
    if handlers:
        try:
            signal.signal(*handlers[0])
        finally:
            _restore_handlers(handlers[1:])


#: the errors of a full filesystem or an exhausted quota
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


#: what a write that filled the disk left: nothing (its staging is removed)
NOTHING_WRITTEN = "nothing was written (free some space, or write elsewhere)"


#: what a write that failed otherwise, or a placement that was put back, left: nothing new
NOTHING_CHANGED = "nothing was written (the outputs already there are as they were)"


def no_space(target: str | Path, outcome: str, parameters: tuple[str, ...] = ()) -> InputError:
    """The one line of a disk that filled up while ``target`` was written, ending with what was left (``outcome``);
    ``parameters`` as :attr:`InputError.parameters`."""
    return InputError(f"{target}: no space left on the device while writing it; {outcome}", parameters=parameters)


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk is full: an OSError with its errno (HDF5 never writes to the disk itself:
    `_save_netcdf`)."""
    return isinstance(error, OSError) and error.errno in DISK_FULL
