"""Writing and reading result Datasets: zarr (``.zarr``) or netCDF (``.nc``, h5netcdf), atomically.

A result appears at its target path only when complete: blocks are written to a staging path
``.NAME.partial-PID`` beside the target and renamed into place at the end; a failed or interrupted run
removes the staging path. An existing target is replaced so that it is never missing (:func:`_put_in_place`:
an atomic rename for a file, an atomic exchange for a folder on Linux, else two renames through
``.NAME.old-PID``). A run killed at any point (SIGKILL leaves no chance to clean up) may leave a staging
path behind: :func:`recover_stale` (called by the next write to the same target, :func:`staged`) deletes it, and
restores an ``.old`` result when the target is missing. Outputs placed together (:func:`staged_together`) are listed
in a journal ``.NAME.journal-PID`` beside each of them before the first rename, so that a run killed between their
renames is finished by the next write to any of them (:func:`recover_stale`): all new, never some of each.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import functools
import glob
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import xarray as xr

from .errors import InputError
from .schema import REPLICATE, STATION, VARIABLES

FORMATS = {".zarr": "zarr", ".nc": "netcdf"}
#: zarr v2 layout: fixed-width strings (station ids, names) have a stable spec there, not yet in v3
ZARR_FORMAT = 2
#: where the cleanup after killed runs reports what it did (:func:`recover_stale`; the command line shows it on
#: stderr: :func:`simkit.progress.log_to_stderr`)
LOG = logging.getLogger(__name__)


def output_format(path: str | Path, role: str = "output path") -> str:
    """``zarr`` or ``netcdf`` from the extension; InputError otherwise (its message names the path's ``role``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: {role}: extension must be .zarr or .nc, got {suffix or 'none'!r}")
    return FORMATS[suffix]


def exists(path: Path) -> bool:
    """Whether ``path`` is there (a broken symlink counts)."""
    return path.exists() or path.is_symlink()


def _is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself (not a symlink to one)."""
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    if _is_folder(path):
        shutil.rmtree(path)
    elif exists(path):
        path.unlink()


STAGING, OLD = "partial", "old"  #: the staging paths beside a target: ``.NAME.partial-PID``, ``.NAME.old-PID``
#: the journal of a placement of several outputs beside each (:func:`_write_journals`): ``.NAME.journal-PID``, written
#: at ``.NAME.partial-journal-PID`` first (a staging path: what a killed run leaves there is removed as one)
JOURNAL, UNFINISHED_JOURNAL = "journal", "partial-journal"
#: the owner ending a staging path's name (the ``PID`` of ``.NAME.ROLE-PID``): this simkit's :func:`_own_owner`
#: ``PID.START.PLACE.BOOT``, or an older simkit's process id alone
OWNER = re.compile(r"(\d+)(?:\.(\d+)\.([0-9a-f]{8})\.([0-9a-f]{8}))?")


def _staging_path(target: Path, role: str, owner: str | None = None) -> Path:
    """The path ``.NAME.ROLE-OWNER`` beside ``target`` of the process ``owner`` (:data:`OWNER`; None: this one's)."""
    return target.with_name(f".{target.name}.{role}-{_own_owner() if owner is None else owner}")


def _own_owner() -> str:
    """This process's owner of the staging paths it writes (:data:`OWNER`), ``PID.START.PLACE.BOOT``: its process id
    and start time (clock ticks after boot, :func:`_start_time`; 0 where /proc cannot tell), so that a process id
    used again by another process names other paths; the first 8 hex digits of the SHA-256 of the host name and
    process-id namespace (the place where the process id means this process: two containers sharing a folder have
    other places); and of the kernel's boot id (a restart ends every process)."""
    return _owner_of(os.getpid())


@functools.lru_cache(maxsize=None)
def _owner_of(pid: int) -> str:
    """:func:`_own_owner` of the process ``pid`` (this one: kept by process id, so that a forked child has its own)."""
    return f"{pid}.{_start_time(pid) or 0}.{_place()}.{_digest(_read_proc('sys/kernel/random/boot_id'))}"


def _start_time(pid: int) -> str | None:
    """The start time of the process ``pid`` in clock ticks after boot (/proc/PID/stat, field 22), None when it cannot
    be read (no such process, another namespace's, hidden, or no /proc)."""
    stat = _read_proc(f"{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else None


def _read_proc(name: str) -> str:
    """The text of /proc/``name``, "" when it cannot be read."""
    try:
        return Path("/proc", name).read_text()
    except OSError:
        return ""


def _place() -> str:
    """The first 8 hex digits of the SHA-256 of this host's name and of the inode of its process-id namespace (0 where
    /proc cannot tell): where a process id names one process (:func:`_own_owner`)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return _digest(f"{socket.gethostname()}\0{namespace}")


def _digest(text: str) -> str:
    """The first 8 hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _owner_alive(owner: str) -> bool | None:
    """Whether the process ``owner`` of a staging path (:data:`OWNER`) is running: this one is; an older simkit's
    process id alone by :func:`_alive`; one of this place (:func:`_place`) before its last boot is not; one of this
    place and boot is when its process id runs the process that started at the recorded time (a process id used again
    by another process does not keep its paths alive; one whose start time /proc hides is told by :func:`_alive`);
    one of another place (another machine, another container) cannot be told: None."""
    if owner == _own_owner():
        return True
    pid, start, place, boot = OWNER.fullmatch(owner).groups()
    if start is None:
        return _alive(int(pid))
    _, _, own_place, own_boot = _own_owner().split(".")
    if place != own_place:
        return None
    if boot != own_boot:
        return False
    running = _start_time(int(pid)) if start != "0" else None
    return _alive(int(pid)) if running is None else running == start


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (or is this one): by a signal 0."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_stale(target: str | Path) -> list[str]:
    """Clean up after runs on ``target`` that were killed (their process is gone: :func:`_owner_alive`): first a
    placement of several outputs that a journal beside ``target`` lists is finished (:func:`_finish_placement`), then
    an ``.old`` result is moved back to ``target`` when ``target`` is missing (a kill during the final rename), any
    other staging path is deleted. The staging paths and journals of a process of another machine or container are
    left as they are, each said so (:func:`_of_another_place`). Returns one message per action (each also logged as a
    warning on :data:`LOG`)."""
    target = Path(target)
    messages = [message for journal in _left_by(target, JOURNAL, False)
                if (message := _finish_placement(journal)) is not None]
    kept = {_owner(journal) for journal in _left_by(target, JOURNAL, False)}  # sets left as they are
    messages += [_clean_left(path, target, role) for role in (OLD, STAGING) for path in _left_by(target, role, False)
                 if _owner(path) not in kept]
    messages += [_of_another_place(path, target) for role in (JOURNAL, OLD, STAGING)
                 for path in _left_by(target, role, None)]
    for message in messages:
        LOG.warning("%s", message)
    return messages


def _owner(path: Path) -> str:
    """The owner ending the name of a path ``.NAME.ROLE-OWNER`` beside a target (:data:`OWNER`; anything else: not
    such a path)."""
    return path.name.rpartition("-")[2]


def _process(path: Path) -> str:
    """The process id of the owner of ``path`` (:func:`_owner`), as messages name it."""
    return _owner(path).partition(".")[0]


def _left_by(target: Path, role: str, alive: bool | None) -> list[Path]:
    """The paths ``.NAME.ROLE-OWNER`` beside ``target`` whose owner's :func:`_owner_alive` is ``alive`` (False: gone,
    None: cannot be told), sorted."""
    paths = sorted(target.parent.glob(f".{glob.escape(target.name)}.{role}-*"))
    return [path for path in paths if OWNER.fullmatch(_owner(path)) and _owner_alive(_owner(path)) is alive]


def _of_another_place(path: Path, target: Path) -> str:
    """The message of ``path``, beside ``target``, of a process of another machine or container
    (:func:`_owner_alive`), which is left as it is."""
    return (f"{target}: left {path.name} as it is: written by process {_process(path)} of another machine or container "
            f"(or of this one before it restarted), which cannot be told ended; remove it once no run writes there")


def _clean_left(path: Path, target: Path, role: str) -> str:
    """Deal with ``path``, left beside ``target`` in ``role`` by a killed run: an ``.old`` result (``role`` OLD) back
    to a missing ``target``, anything else deleted; the message saying which."""
    if role == OLD and not exists(target):
        os.replace(path, target)
        return f"{target}: restored the previous result from {path.name} (a run killed while replacing it)"
    _remove(path)
    return f"{target}: removed {path.name}, left by a run that was killed (process {_process(path)})"


def _finish_placement(journal: Path) -> str | None:
    """:func:`_finish_listed` of ``journal``, by one process at a time (:func:`_claimed`: None when another finished it
    meanwhile); a journal that cannot be read or is not one (:func:`_read_journal`) is removed (its name is simkit's,
    its process gone) and said so, and nothing it might list is touched, and so is a journal whose own target
    (:func:`_journaled`) it does not list (its folder moved or copied); an OSError while finishing is raised as a
    one-line :class:`InputError` naming the journal (not a traceback at every later write)."""
    entries = _read_journal(journal)
    try:
        with _claimed(journal, entries) as claimed:
            return _finish_claimed(journal, entries) if claimed else None
    except OSError as error:
        raise InputError(f"{_shown(journal)}: could not finish the placement a killed run left "
                         f"({error.strerror or error}); put its outputs right by hand, then remove it") from error


def _finish_claimed(journal: Path, entries: list[dict] | None) -> str:
    """What :func:`_finish_placement` does with ``journal`` (its ``entries``, None: not readable) once claimed."""
    if entries is None:
        _remove(journal)
        return (f"{_shown(journal)}: removed: not a journal of a placement this simkit can read (what it might "
                "list is left as it is)")
    if not _lists_itself(journal, entries):
        _remove(journal)
        return (f"{_shown(journal)}: removed: it does not list the output beside it (moved or copied with its "
                "folder), so what it lists is left as it is")
    return _finish_listed(journal, entries)


def _lists_itself(journal: Path, entries: list[dict]) -> bool:
    """Whether the journal ``entries`` list the target beside ``journal`` (:func:`_journaled`)."""
    return _journaled(journal) in [Path(entry["target"]) for entry in entries]


@contextmanager
def _claimed(journal: Path, entries: list[dict] | None) -> Iterator[bool]:
    """Hold the lock of the set of outputs that ``journal`` (its ``entries``: :func:`_read_journal`) lists, so that two
    processes (or threads) that find it at once never finish it both: an exclusive :func:`fcntl.flock` on the first
    of its journals (one beside each output, in the order listed) that is there, the one a finished placement removes
    last (:func:`_finish_listed`), or on ``journal`` itself when it is unreadable or does not list its own output.
    Waits while another holds it; yields whether ``journal`` is still to be finished: the locked journal and
    ``journal`` both still there (False: another finished it meanwhile, so this one leaves it alone). The lock is
    released when the context closes, or when its process dies."""
    journals = [journal]
    if entries is not None and _lists_itself(journal, entries):
        journals = [_staging_path(Path(entry["target"]), JOURNAL, _owner(journal)) for entry in entries]
    locked = next((path for path in journals if exists(path)), None)
    try:
        descriptor = os.open(locked, os.O_RDONLY) if locked is not None else None
    except FileNotFoundError:  # removed since
        descriptor = None
    if descriptor is None:
        yield False
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield _holds(locked, os.fstat(descriptor)) and exists(journal)
    finally:
        os.close(descriptor)  # releases the lock


def _journaled(journal: Path) -> Path:
    """The target, absolute, beside which ``journal`` (``.NAME.journal-PID``) is."""
    return Path(os.path.abspath(journal.with_name(journal.name[1:].rpartition(f".{JOURNAL}-")[0])))


def _read_journal(journal: Path) -> list[dict] | None:
    """The entries of ``journal`` (:func:`_write_journals`: at least two, each with a target (str), device and inode
    (int), old ([device, inode] or None), old_state ([mtime in ns, size in bytes] or None) and old_tree (a hex string
    or None); old_state, old_tree or both are absent from the journals of an older simkit); None when it cannot be
    read or is not that."""
    try:
        entries = json.loads(journal.read_text())
    except (OSError, ValueError):
        return None
    return entries if isinstance(entries, list) and len(entries) > 1 and all(map(_valid_entry, entries)) else None


def _valid_entry(entry: object) -> bool:
    """Whether ``entry`` is a journal entry as :func:`_read_journal` describes it."""
    def pair(value: object) -> bool:
        return isinstance(value, list) and len(value) == 2 and all(type(number) is int for number in value)
    return (isinstance(entry, dict) and isinstance(entry.get("target"), str)
            and pair([entry.get("device"), entry.get("inode")])
            and all(entry.get(field) is None or pair(entry[field]) for field in ("old", "old_state"))
            and (entry.get("old_tree") is None or isinstance(entry["old_tree"], str)))


def _finish_listed(journal: Path, entries: list[dict]) -> str:
    """Finish the placement that ``journal`` (``.NAME.journal-PID`` of a killed run: :func:`_write_journals`) lists:
    each new result, found by its device and inode at its target (placed), at its staging path or at ``.NAME.old-PID``
    (the run put it back there), is put at its target (:func:`_put_in_place`; a target that is missing gets it by one
    rename); then the old results, staging paths and journals of every output of the set are removed (a missing target
    gets its ``.old`` result back). A new result found nowhere (its staging removed by a cleanup that found no journal
    there: the run was killed while it wrote the journals, before any rename) leaves every target as it is. A target
    that holds neither its old result as it was nor the new one (:func:`_changed_since`: edited, in place or not, or
    restored since the kill) leaves the whole set as it is, journals, staging paths and old results kept, so that
    nothing is overwritten or deleted until the user removes the journal. The message names the outputs and what was
    done."""
    owner, pid = _owner(journal), _process(journal)
    targets = [Path(entry["target"]) for entry in entries]
    names = ", ".join(_shown(target) for target in targets)
    changed = [(entry, target) for entry, target in zip(entries, targets) if _changed_since(entry, target)]
    if changed:
        untold = UNTOLD if any(_untold(entry, target) for entry, target in changed) else ""
        journals = ", ".join(_shown(_staging_path(target, JOURNAL, owner)) for target in targets)
        return (f"{names}: left as they are: {', '.join(_shown(target) for _, target in changed)} changed since a run "
                f"was killed while placing them (process {pid}){untold}; its results are kept beside them until its "
                f"journals are removed: {journals}")
    found = [_new_result(entry, owner) for entry in entries]
    if None in found:
        message = (f"{names}: removed what a run killed while placing them left (process {pid}); not all its "
                   f"results were there, so none was put in place")
    else:
        for path, target in zip(found, targets):
            if path != target:
                _put_in_place(path, target)
        _synced_folders(targets)  # before the journals go (:func:`_place_all`)
        message = f"finished putting in place {names}: a run killed while placing them (process {pid})"
    for entry, target in zip(entries, targets):
        _clear(_staging_path(target, STAGING, owner), target)
        for role in (OLD, UNFINISHED_JOURNAL):
            if exists(left := _staging_path(target, role, owner)):
                _clean_left(left, target, role)
    for target in reversed(targets):  # the first last: the lock of the set (:func:`_claimed`)
        _remove(_staging_path(target, JOURNAL, owner))
    return message


#: what a message of a set left as it is adds when its journals are an older simkit's, which record too little of an old
#: result to tell it unchanged (:func:`_untold`)
UNTOLD = (" or cannot be told unchanged (its journals, of an older simkit, record no size or time of the old results, "
          "or nothing of what a folder holds)")


def _untold(entry: dict, target: Path) -> bool:
    """Whether the journal ``entry`` of an older simkit records too little to tell an old result at ``target``
    unchanged: no ``old_state``, or, for a folder, no ``old_tree``."""
    return "old_state" not in entry or ("old_tree" not in entry and _is_folder(target))


def _changed_since(entry: dict, target: Path) -> bool:
    """Whether ``target`` holds something other than the new result of a journal ``entry`` (:func:`_write_journals`,
    by device and inode) or the old result as it was (by device and inode, then modification time and size, so that
    an edit in place counts, and for a folder the fingerprint of what it holds, :func:`_tree_fingerprint`, so that a
    file edited inside it counts too): put there or edited after the run was killed. An old result at ``target`` that
    an older simkit's journal records too little of (:func:`_untold`) counts as changed: it cannot be told unchanged,
    and placing over it might lose an edit. A missing target has not changed (a kill between the two renames of
    :func:`_put_in_place` leaves it missing; placing there loses nothing)."""
    result = _lstat(target)
    if result is None or [result.st_dev, result.st_ino] == [entry["device"], entry["inode"]]:
        return False
    return _old_fields(target, result) != {field: entry.get(field) for field in ("old", "old_state", "old_tree")}


def _new_result(entry: dict, owner: str) -> Path | None:
    """Where the new result of a journal ``entry`` (of the process ``owner``: :func:`_write_journals`) is: its target,
    its staging path or the target's ``.NAME.old-PID``; None if none holds it."""
    target = Path(entry["target"])
    return next((path for path in (target, _staging_path(target, STAGING, owner), _staging_path(target, OLD, owner))
                 if _identity(path) == [entry["device"], entry["inode"]]), None)


def _shown(path: Path) -> str:
    """``path`` as a message names it: relative to the current folder when inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_journals(stagings: list[Path], targets: list[Path]) -> None:
    """Before the first rename of a placement of more than one target, write beside each of ``targets`` its journal
    ``.NAME.journal-PID``: every (target, absolute, device and inode of the staged result, and what the target holds:
    :func:`_old_fields`), in JSON (each staging path is the target's
    ``.NAME.partial-PID``); written at ``.NAME.partial-journal-PID``, synced and renamed, so never half written, and
    their folders synced, so that they are on the disk before the first rename (:func:`_synced`). A run killed
    while placing leaves them for :func:`recover_stale` to finish the placement; :func:`_remove_journals` removes them.
    One target: none (its placement is one rename, or an exchange, or two renames that :func:`recover_stale` undoes).
    An OSError (a staging path missing, a journal not written) is raised as a :class:`PlacementError` naming the
    target it concerns."""
    if len(targets) < 2:
        return
    target = targets[0]
    try:
        entries = []
        for staging, target in zip(stagings, targets):
            result = os.lstat(staging)
            entries.append({"target": os.path.abspath(target), "device": result.st_dev, "inode": result.st_ino,
                            **_old_fields(target, _lstat(target))})
        for target in targets:
            unfinished = _staging_path(target, UNFINISHED_JOURNAL)
            unfinished.write_text(json.dumps(entries))
            _synced(unfinished)
            os.replace(unfinished, _staging_path(target, JOURNAL))
        _synced_folders(targets)
    except OSError as error:
        raise PlacementError(target, error) from error


def _lstat(path: Path) -> os.stat_result | None:
    """:func:`os.lstat` of ``path``, None when it is missing."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _identity(path: Path) -> list[int] | None:
    """[device, inode] of ``path`` (:func:`os.lstat`), None when it is missing."""
    result = _lstat(path)
    return None if result is None else [result.st_dev, result.st_ino]


def _old_fields(target: Path, result: os.stat_result | None) -> dict:
    """The fields of a journal entry (:func:`_write_journals`) that tell what ``target`` held before the placement,
    from :func:`os.lstat` of it (``result``, None: missing): ``old``, [device, inode], ``old_state``, [modification
    time in ns, size in bytes] (a folder: its own entry's), and ``old_tree``, a folder's :func:`_tree_fingerprint`
    (None for a file); all None when it was missing."""
    if result is None:
        return {"old": None, "old_state": None, "old_tree": None}
    return {"old": [result.st_dev, result.st_ino], "old_state": [result.st_mtime_ns, result.st_size],
            "old_tree": _tree_fingerprint(target) if _is_folder(target) else None}


def _tree_fingerprint(folder: Path) -> str:
    """A fingerprint of everything inside ``folder`` (its subfolders walked, symlinks not followed): the SHA-256, in
    hex, of each entry's path relative to ``folder`` with its type and permissions, inode, size, modification and
    change times in ns (:func:`os.lstat`), in the order of the paths, so that a file edited, added, removed or replaced
    inside it changes it, at the cost of one lstat an entry (the contents are not read). An entry that goes while it is
    walked is left out."""
    lines = []
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(root, name)
            try:
                result = os.lstat(path)
            except FileNotFoundError:
                continue
            lines.append(f"{os.path.relpath(path, folder)}\0{result.st_mode} {result.st_ino} {result.st_size} "
                         f"{result.st_mtime_ns} {result.st_ctime_ns}")
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8", "surrogateescape")).hexdigest()


def _remove_journals(targets: list[Path]) -> None:
    """Remove this process's journals of ``targets`` (:func:`_write_journals`), finished or not, the first target's
    last (the journal that locks the set: :func:`_claimed`)."""
    for target in reversed(targets):
        for role in (UNFINISHED_JOURNAL, JOURNAL):
            _remove(_staging_path(target, role))


def remove_at_once(path: str | Path) -> None:
    """Remove the file or folder ``path`` so that no reader ever sees part of it: renamed to its staging path
    ``.NAME.partial-PID`` first (atomic), then deleted there. What an interrupted or killed removal leaves there
    is deleted by the next call on ``path`` once its process is gone (:func:`recover_stale`)."""
    path = Path(path)
    recover_stale(path)
    aside = _staging_path(path, STAGING)
    _remove(aside)  # left by an earlier removal of this process, interrupted
    if exists(path):
        os.replace(path, aside)
        _remove(aside)


@contextmanager
def staged(target: str | Path) -> Iterator[Path]:
    """Yield a staging path beside ``target``; on success put it at ``target`` (an existing ``target`` is
    moved aside first and deleted after), on failure or interruption remove it. Staging left by killed runs
    on ``target`` is cleaned up first (:func:`recover_stale`), whichever command writes it."""
    with staged_together(target) as (staging,), nothing_written_on_error(target):
        yield staging


@contextmanager
def staged_together(*targets: str | Path) -> Iterator[list[Path]]:
    """:func:`staged` for outputs that make one result (a Markdown report and its figures folder): yield a staging path
    beside each of ``targets``; when all are written, put them in place (those that can be put back first:
    :func:`_reversible_first`) and record them (:func:`recording_placed`, :func:`_place_all`). On failure or
    interruption before placing none is put in place; a failure once placing began puts back those already placed (an
    OSError raised again as a :class:`PlacementError`), and a Ctrl-C (or the command line's SIGTERM) while placing or
    putting back waits until that is done (:func:`_signals_deferred`); whatever happens, every staging path and every
    displaced old result is removed at the end (:func:`_clear`). No targets: nothing to stage or place. An OSError while
    a staging path is made ready (:func:`_prepared`) is the one line naming its target; one while it is written (a
    full disk, a permission refused) is made so by the caller, around the writing of each staging path
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
        _place_all(stagings, targets)
    finally:
        _remove_journals(targets)  # left by an error while :func:`_place_all` removed them: before the stagings
        for staging, target in zip(stagings, targets):
            _clear(staging, target)


def _prepared(target: Path) -> Path:
    """The staging path of ``target``, made ready for :func:`staged_together`: the folder of ``target`` made, what
    killed runs left beside it cleaned up (:func:`recover_stale`), what this process left there removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_stale(target)
    staging = _staging_path(target, STAGING)
    _remove_journals([target])  # what a write of this process, stopped while it cleared up, left
    _clear(staging, target)
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


def _clear(staging: Path, target: Path) -> None:
    """Remove what a write of ``target`` leaves beside it: the ``staging`` path (the unplaced new result, or the
    old result an exchange swapped out) and the old result at ``.NAME.old-PID`` once ``target`` is there (a
    missing ``target`` keeps it: :func:`recover_stale` puts it back)."""
    _remove(staging)
    if exists(target):
        _remove(_staging_path(target, OLD))


def _reversible_first(stagings: list[Path], targets: list[Path]) -> tuple[list[Path], list[Path]]:
    """``stagings`` and their ``targets`` in the order :func:`_place_all` puts them in place: first those whose
    placement can be put back (a new target, a folder), then the files that replace a file
    (:func:`_keeps_no_old_copy`), each group in the order given, so that a failure leaves all as they were unless it
    comes after a file was replaced."""
    order = sorted(zip(stagings, targets), key=lambda pair: _keeps_no_old_copy(*pair))
    return [staging for staging, target in order], [target for staging, target in order]


def _keeps_no_old_copy(staging: Path, target: Path) -> bool:
    """Whether putting ``staging`` at ``target`` replaces a file by a file: one atomic rename (:func:`_put_in_place`),
    after which the old file is gone, so that :func:`_put_back` cannot undo it."""
    return exists(target) and not (staging.is_dir() or target.is_dir())


def _place_all(stagings: list[Path], targets: list[Path]) -> None:
    """Put each staging path at its target (:func:`_put_in_place`), in the order of :func:`_reversible_first`, then
    record the targets in that order. If interrupted or failing before all are in place, put back the old result of each
    target it reached (a target that did not exist is taken away), every one, recording as it goes those that hold the
    new result still (a file that atomically replaced a file: its old copy is gone; :func:`_put_all_back`), and
    re-raise; once all are in place they are kept and recorded, whatever interrupts the recording (:func:`_record` adds
    a target once), so that what is recorded is always what is there. An OSError is raised again as a
    :class:`PlacementError` naming the target it failed on.

    A Ctrl-C (or the command line's SIGTERM) while it runs, placing or undoing, is held back until it is done
    (:func:`_signals_deferred`): the placement is all or nothing however many arrive. What was placed is told from the
    files, not from :func:`_put_in_place`'s return: any exception at any point of a placement, even right after a rename
    or an exchange, is undone like any other (:func:`_put_back`). With several targets their journals are written before
    the first rename and removed once all are placed or put back (:func:`_write_journals`), so that a run killed
    (SIGKILL) in between is finished by the next write to any of them (:func:`recover_stale`).

    Durable against a power cut (:func:`_synced`): the staged results are synced before the journals are written,
    each journal before its rename and the folders holding them after, and the targets' folders after the renames,
    before the journals are removed; so that either the journals and every new result, or the old results, are
    there after a restart, and the next write puts the set right."""
    stagings, targets = _reversible_first(stagings, targets)
    for staging, target in zip(stagings, targets):
        try:
            _synced(staging)
        except OSError as error:
            raise PlacementError(target, error) from error
    with _signals_deferred():
        try:
            _write_journals(stagings, targets)
            _place_or_put_back(stagings, targets)
            _synced_folders(targets)
        finally:
            _remove_journals(targets)


def _synced(path: Path) -> None:
    """Make the file or folder ``path`` durable (written to the disk, not only to its cache, so that a power cut
    keeps it): :func:`os.fsync` of the file, or of every file inside the folder, then of each folder, the innermost
    first (symlinks not followed)."""
    if not _is_folder(path):
        _fsync(path)
        return
    for root, _, files in os.walk(path, topdown=False):
        for name in files:
            if not os.path.islink(file := os.path.join(root, name)):
                _fsync(file)
        _fsync(root)


def _synced_folders(paths: list[Path]) -> None:
    """Make the names in the folders of ``paths`` durable (renames, new files): :func:`os.fsync` of each folder
    once."""
    for folder in dict.fromkeys(Path(os.path.abspath(path)).parent for path in paths):
        _fsync(folder)


def _fsync(path: str | Path) -> None:
    """:func:`os.fsync` of the file or folder ``path``; a filesystem that cannot sync it (EINVAL: a folder on some)
    is left as it is."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(descriptor)


def _place_or_put_back(stagings: list[Path], targets: list[Path]) -> None:
    """The placement of :func:`_place_all`, in the order given: all placed and recorded, or put back."""
    attempted: list[tuple[Path, Path, os.stat_result, bool]] = []  # (target, staging, staged result, existed)
    placed = False
    try:
        for staging, target in zip(stagings, targets):
            attempted.append((target, staging, os.lstat(staging), exists(target)))
            _put_in_place(staging, target)
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
            if _holds(target, new):
                _record([target])
        finally:
            _put_all_back(attempted[1:])


class PlacementError(OSError):
    """An OSError (its errno kept) while ``target`` was put in place, or put back (``doing``) after another failed
    (:func:`_place_all`): the outputs of its placement were put back where they could be, and those that hold the new
    result are recorded (:func:`recording_placed`). Its message is one line: the target, what failed and the error
    (``out.json: could not be put in place (Permission denied)``)."""

    def __init__(self, target: Path, error: OSError, doing: str = "put in place"):
        super().__init__(error.errno, error.strerror)
        self.target, self.doing, self.reason = target, doing, error.strerror or str(error)

    def __str__(self) -> str:
        return f"{self.target}: could not be {self.doing} ({self.reason})"


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


def _holds(path: Path, result: os.stat_result) -> bool:
    """Whether ``path`` is the file or folder ``result`` (:func:`os.lstat` of it) describes (renames keep it)."""
    try:
        return os.path.samestat(os.lstat(path), result)
    except FileNotFoundError:
        return False


def _displaced(target: Path, staging: Path) -> Path | None:
    """Where :func:`_put_in_place` left the old result of ``target`` once the staged one is there: at ``staging``
    (swapped), at ``.NAME.old-PID`` (two renames), or nowhere (None: there was none, or a file replaced it)."""
    return next((path for path in (staging, _staging_path(target, OLD)) if exists(path)), None)


def _put_back(target: Path, staging: Path, new: os.stat_result, existed: bool) -> None:
    """Undo :func:`_put_in_place` of the staged result ``new`` (:func:`os.lstat` of ``staging`` before the move) at
    ``target``, however far it got: the old result back in place (from ``.NAME.old-PID`` too when the run stopped
    between the two renames), or ``target`` taken away when there was none (``existed`` False); the new result is
    left beside it for :func:`_clear`. A file replaced atomically cannot be undone (no old copy): it stays new."""
    trash = _staging_path(target, OLD)
    if not _holds(target, new):
        if not exists(target) and exists(trash):  # moved aside, the new result not yet in its place
            os.replace(trash, target)
        return
    old = _displaced(target, staging)
    if old is not None:
        if old != staging:  # at .NAME.old-PID, where putting it back would move the new result aside
            os.replace(old, staging)
        _put_in_place(staging, target)
    elif not existed:
        os.replace(target, staging)


def _record(targets: list[Path]) -> None:
    """Add each of ``targets`` (put in place, complete) to every list :func:`recording_placed` has open that does not
    hold it yet (so that recording again, after an interrupted recording, adds each once)."""
    for record in _RECORDS:
        record.extend([target for target in targets if target not in record])


#: the lists :func:`recording_placed` has open, each extended by every target :func:`staged` puts in place
_RECORDS: list[list[Path]] = []


@contextmanager
def recording_placed() -> Iterator[list[Path]]:
    """Yield a list of the targets :func:`staged` puts in place, complete, while the context is open (any thread),
    so that a command stopped by a signal after writing says so rather than "nothing was written"; outside such a
    context nothing is recorded (a library caller's writes do not pile up)."""
    record: list[Path] = []
    _RECORDS.append(record)
    try:
        yield record
    finally:  # by identity: two open lists that are equal (both empty, say) are not the same list
        del _RECORDS[next(i for i, open_record in enumerate(_RECORDS) if open_record is record)]


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


def _put_in_place(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` to ``target`` so that ``target`` is never missing: a file replaces a file
    atomically; a folder is swapped with the existing one atomically where the platform can (the old result
    then sits at the staging path), else moved aside to ``.NAME.old-PID`` first. Interrupted between those two
    renames, the old result is put back by the caller (:func:`_put_back`), or, after a kill, by :func:`recover_stale`;
    the old result is deleted by :func:`_clear`."""
    if not exists(target) or _keeps_no_old_copy(staging, target):
        os.replace(staging, target)
    elif not _exchange(staging, target):
        os.replace(target, _staging_path(target, OLD))
        os.replace(staging, target)


def write_text(text: str, path: str | Path) -> None:
    """Write a text report atomically (UTF-8)."""
    with staged(path) as staging:
        save_text(text, staging)


def save_text(text: str, staging: Path) -> None:
    """:func:`write_text`'s writing of ``text`` at the staging path ``staging`` (:func:`staged_together`)."""
    staging.write_text(text, encoding="utf-8")


def _encoding(ds: xr.Dataset, fmt: str) -> dict:
    if fmt != "netcdf":
        return {}
    return {name: {"compression": "gzip", "compression_opts": 1}
            for name, var in ds.data_vars.items() if var.dtype.kind in "iuf" and var.ndim > 1}


def write_dataset(ds: xr.Dataset, path: str | Path) -> None:
    """Write a complete in-memory Dataset atomically, as zarr or netCDF by the suffix of ``path`` (``.zarr``,
    ``.nc``); a simulation's station-level counts are stored in :func:`count_dtype`. Whatever is at ``path`` is
    replaced without a check: the commands call :func:`simkit.outputs.claim_output` first, which refuses an
    existing output unless ``overwrite=True`` and never writes onto an input."""
    write_blocks(*_static_and_blocks(ds), path)


def save_dataset(ds: xr.Dataset, path: str | Path, staging: Path) -> None:
    """:func:`write_dataset`'s writing of ``ds`` at ``staging``, a staging path of ``path`` (whose suffix gives the
    format) that :func:`staged_together` gave: a result put in place in one placement with other outputs."""
    _save_blocks(*_static_and_blocks(ds), path, staging)


def _static_and_blocks(ds: xr.Dataset) -> tuple[xr.Dataset, list[xr.Dataset]]:
    """``ds`` as :func:`write_blocks` takes it: the variables without a replicate dim, and those with one as a
    single block (none when ``ds`` has no replicate dim)."""
    return (ds.drop_dims(REPLICATE, errors="ignore"),
            [ds[[name for name in ds.data_vars if REPLICATE in ds[name].dims]]] if REPLICATE in ds.dims else [])


def write_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a DataTree (one group per node: the inference's ArviZ groups) atomically, as netCDF groups or
    zarr groups; ``xarray.open_datatree`` (or ``arviz.from_netcdf``) reads it back."""
    fmt = output_format(path)
    with staged(path) as staging:
        if fmt == "zarr":
            with _zarr_writes_settled():
                tree.to_zarr(staging, mode="w", consolidated=True, zarr_format=ZARR_FORMAT)
        else:
            _save_netcdf(tree, staging)


#: the types a simulation's station-level counts are held and stored in, narrowest first (:func:`count_dtype`): signed,
#: so that a reader's differences of counts (``manipulated_votes`` is one) never wrap around
COUNT_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))
#: the compressor of the replicate arrays in zarr: Blosc's lz4 at level 1 after a bit shuffle (measured on the
#: benchmark workload's votes, int16, blocks of 32 replicates: about 0.2 CPU ms per replicate, 94 kB a replicate,
#: a ratio of 1.7; zstd at level 1 takes twice the CPU time for 20% less)
COMPRESSOR = {"id": "blosc", "cname": "lz4", "clevel": 1, "shuffle": 2, "blocksize": 0}
#: the most bytes of a chunk before compression (Blosc compresses at most 2 GB at once); an engine block's
#: arrays are at most :data:`simkit.engine.resources.BLOCK_BYTES` (as int64), so a block is one chunk
MAX_CHUNK_BYTES = 64 * 2**20


def count_dtype(registered: np.ndarray) -> np.dtype:
    """The narrowest of :data:`COUNT_DTYPES` that holds the largest of the station registers ``registered``
    (station,): int16 when no register exceeds 32,767 (2 bytes a value; the flagship's largest is 10,879), else
    int32, else int64 (a register is at most :data:`simkit.types.MAX_REGISTER`, 10**10).

    It then holds every station-level count of a simulation (ballots, votes, the voters' choices, added ballots,
    the voting day's cumulative ballots, and the signed ``manipulated_votes``): a count never exceeds its
    station's register in size (honest ballots are drawn from it; every mechanism of
    :mod:`simkit.model.manipulation` keeps ballots within the register and votes summing to the ballots, and the
    voters' choices are a subset of the ballots). Results are stored in it (:func:`stored_dtypes`) and a world's
    votes are held in it (:func:`simkit.engine.run.world_votes`, which relies on that invariant to write each block
    without scanning it)."""
    largest = int(np.max(registered, initial=0))
    return next(dtype for dtype in COUNT_DTYPES if largest <= np.iinfo(dtype).max)


def narrowed(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` of the variable ``name`` in the storage type ``dtype`` (:func:`count_dtype`); raises
    ValueError, naming the variable, if a count lies outside the type's range (a cast would wrap it silently)."""
    values = np.asarray(values)
    if values.dtype != dtype and values.size:
        info = np.iinfo(dtype)
        low, high = int(values.min()), int(values.max())
        if low < info.min or high > info.max:
            raise ValueError(f"{name}: counts from {low} to {high} do not fit the storage type {dtype} chosen "
                             f"from the largest station register")
    return values.astype(dtype, copy=False)


def narrowed_block(block: xr.Dataset, dtypes: dict[str, np.dtype]) -> xr.Dataset:
    """``block`` with each variable named in ``dtypes`` in that type (:func:`narrowed`: checked, never wrapped)."""
    return block.assign({name: block[name].copy(data=narrowed(name, block[name].values, dtype))
                         for name, dtype in dtypes.items() if dtype != block[name].dtype})


def stored_dtypes(static: xr.Dataset, block: xr.Dataset) -> dict[str, np.dtype]:
    """The dtype each integer variable of ``block`` is stored in: the station-level counts of a simulation
    (``static`` holds the ``registered`` station register) in :func:`count_dtype`, the rest as they are."""
    narrow = count_dtype(static["registered"].values) if "registered" in static else None
    return {name: (narrow if narrow is not None and STATION in var.dims and _units(name) == "ballots"
                   else var.dtype) for name, var in block.variables.items() if REPLICATE in var.dims}


def _units(name: str) -> str | None:
    """The units of a simulation's variable (:data:`simkit.schema.VARIABLES`), None for any other."""
    return VARIABLES[name][1] if name in VARIABLES else None


def zarr_encoding(block: xr.Dataset) -> dict:
    """The zarr encoding of a block's replicate arrays: one chunk per block and world (the dims before
    ``replicate``, the sweep and scenario, in chunks of 1; the block's replicates and every station whole; fewer
    replicates when they would take more than :data:`MAX_CHUNK_BYTES`, as a whole simulation written at once
    may), compressed by :data:`COMPRESSOR`. A block of dask arrays (the dask runs' template,
    :mod:`simkit.engine.distributed`, which holds every replicate) gives its chunks along ``replicate`` and after
    it instead."""
    import numcodecs

    encoding = {}
    for name, var in block.variables.items():
        if REPLICATE in var.dims:
            axis = var.dims.index(REPLICATE)
            if var.chunks:
                chunks = tuple(chunk[0] for chunk in var.chunks[axis:])
            else:
                rows = max(1, MAX_CHUNK_BYTES // (var.dtype.itemsize * math.prod(var.shape[axis + 1:])))
                chunks = (min(var.shape[axis], rows),) + var.shape[axis + 1:]
            encoding[name] = {"chunks": (1,) * axis + chunks, "compressors": (numcodecs.get_codec(dict(COMPRESSOR)),)}
    return encoding


async def _resize_zarr(arrays: dict, axes: dict[str, int], length: int) -> None:
    """Give every zarr array of ``arrays`` (name: ``zarr.AsyncArray``, replicate axis ``axes[name]``) ``length``
    replicates, all at once (one trip to the event loop: each of zarr's synchronous calls costs about a CPU
    millisecond, and each resize rewrites the array's metadata)."""

    async def resize(name: str, array) -> None:
        axis = axes[name]
        await array.resize(array.shape[:axis] + (length,) + array.shape[axis + 1:])

    await asyncio.gather(*(resize(name, array) for name, array in arrays.items()))


async def _append_zarr(arrays: dict, axes: dict[str, int], block: xr.Dataset, start: int) -> None:
    """Write ``block``'s replicate arrays into the zarr ``arrays`` (name: ``zarr.AsyncArray``, replicate axis
    ``axes[name]``) from replicate ``start`` on, all at once (one trip to the event loop a block), first growing the
    arrays too short to hold them (a run that did not announce its replicates), written whole chunks at a time
    when the block is as long as the first."""
    stop = start + block.sizes[REPLICATE]
    short = {name: array for name, array in arrays.items() if array.shape[axes[name]] < stop}
    if short:
        await _resize_zarr(short, axes, stop)

    async def append(name: str, array) -> None:
        axis = axes[name]
        await array.setitem((slice(None),) * axis + (slice(start, stop),),
                            narrowed(name, block.variables[name].values, array.dtype))

    await asyncio.gather(*(append(name, array) for name, array in arrays.items()))


def write_blocks(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path,
                 replicates: int | None = None) -> None:
    """Write ``static`` (no replicate dim, with the attrs) and replicate ``blocks`` in order, atomically.

    zarr: the static variables and the first block through xarray in one write (which writes the arrays' dims and
    attrs), chunked one chunk per block and world, the station-level counts of a simulation in
    :func:`count_dtype`, compressed by :data:`COMPRESSOR`; each later block written straight into those arrays
    (memory bounded by one block). With ``replicates`` (the number the blocks hold in all) the arrays are sized
    for all of them once, after the first block, rather than grown block by block (each growth rewrites every
    array's metadata; ``benchmarks/write_profile.py`` times the write); ValueError if the blocks hold another
    number (before it writes a block beyond them; nothing is left at ``path``). :func:`open_result` gives the
    counts back as int64. netCDF: the blocks are gathered in memory first and written in one piece (the resource
    guard, :func:`simkit.engine.resources.check_run`, refuses a run whose replicates would not fit), their number
    checked against ``replicates`` alike.
    """
    output_format(path)  # a wrong extension refused before anything is staged
    with staged(path) as staging:
        _save_blocks(static, blocks, path, staging, replicates)


def _save_blocks(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path, staging: Path,
                 replicates: int | None = None) -> None:
    """:func:`write_blocks`'s writing, at the staging path ``staging`` of ``path`` (whose suffix gives the format)."""
    fmt = output_format(path)
    if fmt == "zarr":
        with _zarr_writes_settled():
            _write_zarr(static, blocks, path, staging, replicates)
    else:
        parts = list(blocks)
        _check_announced(path, replicates, sum(part.sizes[REPLICATE] for part in parts), final=True)
        dynamic = xr.concat(parts, dim=REPLICATE) if len(parts) > 1 else (parts[0] if parts else xr.Dataset())
        full = xr.merge([static, dynamic], combine_attrs="override")
        del parts, dynamic  # the blocks, now in ``full``: its compressed image takes their place in memory
        _save_netcdf(full, staging, encoding=_encoding(full, fmt))


def _save_netcdf(data: xr.Dataset | xr.DataTree, staging: Path, **options) -> None:
    """``data`` as netCDF (h5netcdf, ``options`` passed on) at ``staging``: the file's bytes made in memory, then
    saved from Python, so that a full disk is an OSError of that save. HDF5 never writes to the disk itself: a
    failed write there leaves its file handle unflushable, and the process crashing at exit (code 139). The data
    are in memory: dask's synchronous scheduler, so that xarray takes a thread lock rather than a dask.distributed
    lock named by the in-memory buffer (which that lock cannot name: a RuntimeError inside a dask client)."""
    import dask  # here, not at the top: only a netCDF write needs it

    with dask.config.set(scheduler="synchronous"):
        image = data.to_netcdf(None, engine="h5netcdf", **options)
    staging.write_bytes(image)


@contextmanager
def _zarr_writes_settled() -> Iterator[None]:
    """Around a zarr write: when it fails (or is stopped), wait until every write zarr started for it is done before
    the error goes on. zarr writes a store's keys together (``asyncio.gather`` on its event loop, each key in a
    thread); the first failure is raised at once while the others go on, and one that ended after the staging path
    was removed (:func:`staged_together`) made its folder again: a staging path left behind, or a removal failing on
    a folder not empty. Tasks already on zarr's loop before the write are not waited for."""
    from zarr.core.sync import sync

    before = sync(_tasks())
    try:
        yield
    except BaseException:
        sync(_done(before))
        raise


async def _tasks() -> set[asyncio.Task]:
    """The tasks of the running event loop."""
    return asyncio.all_tasks()


async def _done(before: set[asyncio.Task]) -> None:
    """Wait until every task on the running event loop but this one and those of ``before`` is done (and those they
    start)."""
    current = asyncio.current_task()
    while started := [task for task in asyncio.all_tasks() - before if task is not current and not task.done()]:
        await asyncio.wait(started)


def _check_announced(path: str | Path, replicates: int | None, written: int, final: bool = False) -> None:
    """ValueError naming ``path`` when the ``written`` replicates exceed the ``replicates`` announced for it (None:
    any number), or, when ``final``, differ from them."""
    if replicates is not None and written > replicates:
        raise ValueError(f"{path}: the blocks hold at least {written} replicates, more than the {replicates} announced")
    if replicates is not None and final and written != replicates:
        raise ValueError(f"{path}: the blocks hold {written} replicates, not the {replicates} announced")


def _write_zarr(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path, staging: Path,
                replicates: int | None) -> None:
    import zarr

    from zarr.core.sync import sync  # zarr's own event loop (in its thread): works inside a running loop too

    blocks = iter(blocks)
    first = next(blocks, None)
    if first is None:
        static.to_zarr(staging, mode="w", consolidated=False, zarr_format=ZARR_FORMAT)
        written = 0
    else:  # the static variables and the first block in one write, which creates the arrays (dims, attrs, encoding)
        dtypes = stored_dtypes(static, first)
        first = narrowed_block(first, dtypes)
        xr.merge([static, first], combine_attrs="override").to_zarr(  # override: the static's provenance attrs
            staging, mode="w", consolidated=False, zarr_format=ZARR_FORMAT, encoding=zarr_encoding(first))
        group = zarr.open_group(str(staging), mode="r+", zarr_format=ZARR_FORMAT)
        arrays, written = {name: group[name].async_array for name in dtypes}, first.sizes[REPLICATE]
        axes = {name: first.variables[name].dims.index(REPLICATE) for name in arrays}
        _check_announced(path, replicates, written)
        if replicates is not None and replicates > written:
            sync(_resize_zarr(arrays, axes, replicates))
        for block in blocks:
            _check_announced(path, replicates, written + block.sizes[REPLICATE])
            sync(_append_zarr(arrays, axes, block, written))
            written += block.sizes[REPLICATE]
    _check_announced(path, replicates, written, final=True)
    zarr.consolidate_metadata(str(staging), zarr_format=ZARR_FORMAT)


def open_result(path: str | Path) -> xr.Dataset:
    """Open a saved result (``.zarr`` as dask arrays, ``.nc`` read lazily from the file) with the schema's dims
    (:mod:`simkit.schema`); counts stored narrow are given back as int64, as they were drawn. InputError when
    ``path`` is missing or not a readable result."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    fmt = output_format(path, "result")
    try:
        if fmt == "zarr":
            ds = xr.open_zarr(path, consolidated=True)
        else:
            ds = xr.open_dataset(path, engine="h5netcdf")
    except Exception as error:  # noqa: BLE001 - any backend failure is unreadable input for the user
        raise InputError(f"{path}: not a readable simkit result: {error}") from None
    return _as_int64(ds)


def _as_int64(ds: xr.Dataset) -> xr.Dataset:
    """A simulation's counts stored narrow (:func:`count_dtype`) as int64 again (lazily for zarr), as they were
    drawn: readers see the same values and types whatever the stored width; each keeps its stored encoding
    (chunks, compressor, stored dtype)."""
    narrow = [name for name, var in ds.data_vars.items()
              if name in VARIABLES and var.dtype.kind == "i" and var.dtype.itemsize < 8]
    if not narrow:
        return ds
    wide = ds.copy()
    for name in narrow:
        wide[name] = ds[name].astype(np.int64)  # lazy: open_zarr gives dask arrays (dask is a dependency)
        wide[name].encoding = dict(ds[name].encoding)
    wide.set_close(ds.close)  # closing the copy closes the store
    return wide
