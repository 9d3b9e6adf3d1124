"""The moves that put results in place and back: an atomic rename for a file, an atomic exchange for a folder on Linux,
else two renames through ``.NAME.old-OWNER`` (:func:`put_in_place`); the fsyncs that make them durable (:func:`synced`,
:func:`synced_folders`); putting old results back when a placement fails (:func:`put_all_back`, raising
:class:`PlacementError`); and the record of what was placed (:func:`recording_placed`).
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


from simkit.placement import owners


def exists(path: Path) -> bool:
    """Whether ``path`` is there (a broken symlink counts)."""
    return path.exists() or path.is_symlink()


def is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself (not a symlink to one)."""
    return path.is_dir() and not path.is_symlink()


def remove_path(path: Path) -> None:
    if is_folder(path):
        shutil.rmtree(path)
    elif exists(path):
        path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the platform
    or the filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def put_in_place(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` to ``target`` so that ``target`` is never missing: a file replaces a file
    atomically; a folder is swapped with the existing one atomically where the platform can (the old result then sits at
    the staging path), else moved aside to ``.NAME.old-PID`` first. Interrupted between those two renames, the old
    result is put back by the caller (:func:`_put_back`), or, after a kill, by :func:`journals.recover_stale`; the old
    result is deleted by :func:`clear_staging`."""
    if not exists(target) or keeps_no_old_copy(staging, target):
        os.replace(staging, target)
    elif not _exchange(staging, target):
        os.replace(target, owners.staging_path(target, owners.OLD))
        os.replace(staging, target)


def keeps_no_old_copy(staging: Path, target: Path) -> bool:
    """Whether putting ``staging`` at ``target`` replaces a file by a file: one atomic rename (:func:`put_in_place`),
    after which the old file is gone, so that :func:`_put_back` cannot undo it."""
    return exists(target) and not (staging.is_dir() or target.is_dir())


def synced(path: Path) -> None:
    """Make the file or folder ``path`` durable (written to the disk, not only to its cache, so that a power cut
    keeps it): :func:`os.fsync` of the file, or of every file inside the folder, then of each folder, the innermost
    first (symlinks not followed)."""
    if not is_folder(path):
        _fsync(path)
        return
    for root, _, files in os.walk(path, topdown=False):
        for name in files:
            if not os.path.islink(file := os.path.join(root, name)):
                _fsync(file)
        _fsync(root)


def synced_folders(paths: list[Path]) -> None:
    """Make the names in the folders of ``paths`` durable (renames, new files): :func:`os.fsync` of each folder
    once."""
    for folder in dict.fromkeys(Path(os.path.abspath(path)).parent for path in paths):
        _fsync(folder)


def _fsync(path: str | Path) -> None:
    """:func:`os.fsync` of the file or folder ``path``; a filesystem that cannot sync it (EINVAL: a folder on some)
    is left as it is. A file is opened as a file object, which closes itself however the sync is interrupted (a raw
    descriptor was orphaned by an exception between its opening and the ``try``); a folder, which no file object
    opens, by its descriptor."""
    try:
        if is_folder(Path(path)):
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        else:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise


def clear_staging(staging: Path, target: Path) -> None:
    """Remove what a write of ``target`` leaves beside it: the ``staging`` path (the unplaced new result, or the
    old result an exchange swapped out) and the old result at ``.NAME.old-PID`` once ``target`` is there (a
    missing ``target`` keeps it: :func:`journals.recover_stale` puts it back)."""
    remove_path(staging)
    if exists(target):
        remove_path(owners.staging_path(target, owners.OLD))


def holds_result(path: Path, result: os.stat_result) -> bool:
    """Whether ``path`` is the file or folder ``result`` (:func:`os.lstat` of it) describes (renames keep it)."""
    try:
        return os.path.samestat(os.lstat(path), result)
    except FileNotFoundError:
        return False


def _displaced(target: Path, staging: Path) -> Path | None:
    """Where :func:`put_in_place` left the old result of ``target`` once the staged one is there: at ``staging``
    (swapped), at ``.NAME.old-PID`` (two renames), or nowhere (None: there was none, or a file replaced it)."""
    return next((path for path in (staging, owners.staging_path(target, owners.OLD)) if exists(path)), None)


def _put_back(target: Path, staging: Path, new: os.stat_result, existed: bool) -> None:
    """Undo :func:`put_in_place` of the staged result ``new`` (:func:`os.lstat` of ``staging`` before the move) at
    ``target``, however far it got: the old result back in place (from ``.NAME.old-PID`` too when the run stopped
    between the two renames), or ``target`` taken away when there was none (``existed`` False); the new result is left
    beside it for :func:`clear_staging`. A file replaced atomically cannot be undone (no old copy): it stays new."""
    trash = owners.staging_path(target, owners.OLD)
    if not holds_result(target, new):
        if not exists(target) and exists(trash):  # moved aside, the new result not yet in its place
            os.replace(trash, target)
        return
    old = _displaced(target, staging)
    if old is not None:
        if old != staging:  # at .NAME.old-PID, where putting it back would move the new result aside
            os.replace(old, staging)
        put_in_place(staging, target)
    elif not existed:
        os.replace(target, staging)


def _record(targets: list[Path]) -> None:
    """Add each of ``targets`` (put in place, complete) to every list :func:`recording_placed` has open that does not
    hold it yet (so that recording again, after an interrupted recording, adds each once)."""
    for record in _RECORDS:
        record.extend([target for target in targets if target not in record])


#: the lists :func:`recording_placed` has open, each extended by every target :func:`placing.staged` puts in place
_RECORDS: list[list[Path]] = []


@contextmanager
def recording_placed() -> Iterator[list[Path]]:
    """Yield a list of the targets :func:`placing.staged` puts in place, complete, while the context is open (any
    thread), so that a command stopped by a signal after writing says so rather than "nothing was written"; outside such
    a context nothing is recorded (a library caller's writes do not pile up)."""
    record: list[Path] = []
    _RECORDS.append(record)
    try:
        yield record
    finally:  # by identity: two open lists that are equal (both empty, say) are not the same list
        del _RECORDS[next(i for i, open_record in enumerate(_RECORDS) if open_record is record)]


class PlacementError(OSError):
    """An OSError (its errno kept) while ``target`` was put in place, or put back (``doing``) after another failed
    (:func:`placing._place_all`): the outputs of its placement were put back where they could be, and those that hold
    the new result are recorded (:func:`recording_placed`). Its message is one line: the target, what failed and the
    error (``out.json: could not be put in place (Permission denied)``)."""

    def __init__(self, target: Path, error: OSError, doing: str = "put in place"):
        super().__init__(error.errno, error.strerror)
        self.target, self.doing, self.reason = target, doing, error.strerror or str(error)

    def __str__(self) -> str:
        return f"{self.target}: could not be {self.doing} ({self.reason})"


def place_or_put_back(stagings: list[Path], targets: list[Path]) -> None:
    """The placement of :func:`placing._place_all`, in the order given: all placed and recorded, or put back."""
    attempted: list[tuple[Path, Path, os.stat_result, bool]] = []  # (target, staging, staged result, existed)
    placed = False
    try:
        for staging, target in zip(stagings, targets):
            attempted.append((target, staging, os.lstat(staging), exists(target)))
            put_in_place(staging, target)
        placed = True
        _record(targets)
    except BaseException as error:
        if placed:
            _record(targets)
        else:
            _put_all_back(attempted)
        if isinstance(error, OSError):  # ``target``: the loop's, whose placement failed
            raise PlacementError(target, error) from error
        raise


def _put_all_back(attempted: list[tuple[Path, Path, os.stat_result, bool]]) -> None:
    """Put back each placement of ``attempted`` (target, staging path, staged result, whether the target existed:
    :func:`_put_back`), every one even when putting back an earlier one fails (the last such failure raised once all
    were tried, an OSError as a :class:`PlacementError`), recording each target as soon as it is found to hold the new
    result still (it could not be put back: :func:`_record`), so that what is recorded is what is there."""
    if not attempted:
        return
    target, staging, new, existed = attempted[0]
    try:
        _put_back(target, staging, new, existed)
    except OSError as error:
        raise PlacementError(target, error, "put back") from error
    finally:
        try:
            if holds_result(target, new):
                _record([target])
        finally:
            _put_all_back(attempted[1:])
