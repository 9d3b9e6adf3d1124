"""The journals of a placement of several outputs (``.NAME.journal-OWNER`` beside each, listing every output, its staged
result and what the target held) and the recovery that reads them: :func:`recover_stale`, called by the next write to a
target, removes what killed runs left beside it, restores an ``.old`` result whose target is missing, and finishes a
killed placement from its journals (all new, never some of each), unless an output changed since, which it leaves as it
is and says so.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


from simkit.errors import InputError, shown_path
from simkit.placement import moves, owners


#: where the cleanup after killed runs reports what it did (:func:`recover_stale`; the command line shows it on
#: stderr: :func:`simkit.progress.log_to_stderr`)
LOG = logging.getLogger(__name__)


def recover_stale(target: str | Path) -> list[str]:
    """Clean up after runs on ``target`` that were killed (their process is gone: :func:`owners._owner_alive`): first a
    placement of several outputs that a journal beside ``target`` lists is finished (:func:`_finish_placement`), then an
    ``.old`` result is moved back to ``target`` when ``target`` is missing (a kill during the final rename), any other
    staging path is deleted. The staging paths and journals of a process of another machine or container are left as
    they are, each said so (:func:`owners.of_another_place`). Returns one message per action (each also logged as a
    warning on :data:`LOG`)."""
    target = Path(target)
    messages = [message for journal in owners.left_by(target, owners.JOURNAL, False)
                if (message := _finish_placement(journal)) is not None]
    # sets left as they are
    kept = {owners.owner_in_name(journal) for journal in owners.left_by(target, owners.JOURNAL, False)}
    messages += [_clean_left(path, target, role) for role in (owners.OLD, owners.STAGING)
                 for path in owners.left_by(target, role, False) if owners.owner_in_name(path) not in kept]
    messages += [owners.of_another_place(path, target) for role in (owners.JOURNAL, owners.OLD, owners.STAGING)
                 for path in owners.left_by(target, role, None)]
    for message in messages:
        LOG.warning("%s", message)
    return messages


def _clean_left(path: Path, target: Path, role: str) -> str:
    """Deal with ``path``, left beside ``target`` in ``role`` by a killed run: an ``.old`` result (``role`` OLD) back
    to a missing ``target``, anything else deleted; the message saying which."""
    if role == owners.OLD and not moves.exists(target):
        os.replace(path, target)
        return f"{target}: restored the previous result from {path.name} (a run killed while replacing it)"
    moves.remove_path(path)
    return f"{target}: removed {path.name}, left by a run that was killed (process {owners.process_in_name(path)})"


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
        raise InputError(f"{shown_path(journal)}: could not finish the placement a killed run left "
                         f"({error.strerror or error}); put its outputs right by hand, then remove it") from error


def _finish_claimed(journal: Path, entries: list[dict] | None) -> str:
    """What :func:`_finish_placement` does with ``journal`` (its ``entries``, None: not readable) once claimed."""
    if entries is None:
        moves.remove_path(journal)
        return (f"{shown_path(journal)}: removed: not a journal of a placement this simkit can read (what it might "
                "list is left as it is)")
    if not _lists_itself(journal, entries):
        moves.remove_path(journal)
        return (f"{shown_path(journal)}: removed: it does not list the output beside it (moved or copied with its "
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
        journals = [owners.staging_path(Path(entry["target"]), owners.JOURNAL, owners.owner_in_name(journal))
                    for entry in entries]
    locked = next((path for path in journals if moves.exists(path)), None)
    try:
        descriptor = os.open(locked, os.O_RDONLY) if locked is not None else None
    except FileNotFoundError:  # removed since
        descriptor = None
    if descriptor is None:
        yield False
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield moves.holds_result(locked, os.fstat(descriptor)) and moves.exists(journal)
    finally:
        os.close(descriptor)  # releases the lock


def _journaled(journal: Path) -> Path:
    """The target, absolute, beside which ``journal`` (``.NAME.journal-PID``) is."""
    return Path(os.path.abspath(journal.with_name(journal.name[1:].rpartition(f".{owners.JOURNAL}-")[0])))


def _read_journal(journal: Path) -> list[dict] | None:
    """The entries of ``journal`` (:func:`write_journals`: at least two, each with a target (str), device and inode
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
    """Finish the placement that ``journal`` (``.NAME.journal-PID`` of a killed run: :func:`write_journals`) lists: each
    new result, found by its device and inode at its target (placed), at its staging path or at ``.NAME.old-PID`` (the
    run put it back there), is put at its target (:func:`moves.put_in_place`; a target that is missing gets it by one
    rename); then the old results, staging paths and journals of every output of the set are removed (a missing target
    gets its ``.old`` result back). A new result found nowhere (its staging removed by a cleanup that found no journal
    there: the run was killed while it wrote the journals, before any rename) leaves every target as it is. A target
    that holds neither its old result as it was nor the new one (:func:`_changed_since`: edited, in place or not, or
    restored since the kill) leaves the whole set as it is, journals, staging paths and old results kept, so that
    nothing is overwritten or deleted until the user removes the journal. The message names the outputs and what was
    done."""
    owner, pid = owners.owner_in_name(journal), owners.process_in_name(journal)
    targets = [Path(entry["target"]) for entry in entries]
    names = ", ".join(shown_path(target) for target in targets)
    changed = [(entry, target) for entry, target in zip(entries, targets) if _changed_since(entry, target)]
    if changed:
        untold = UNTOLD if any(_untold(entry, target) for entry, target in changed) else ""
        journals = ", ".join(shown_path(owners.staging_path(target, owners.JOURNAL, owner)) for target in targets)
        return (f"{names}: left as they are: {', '.join(shown_path(target) for _, target in changed)} changed since a run "
                f"was killed while placing them (process {pid}){untold}; its results are kept beside them until its "
                f"journals are removed: {journals}")
    found = [_new_result(entry, owner) for entry in entries]
    if None in found:
        message = (f"{names}: removed what a run killed while placing them left (process {pid}); not all its "
                   f"results were there, so none was put in place")
    else:
        for path, target in zip(found, targets):
            if path != target:
                moves.put_in_place(path, target)
        moves.synced_folders(targets)  # before the journals go (:func:`placing._place_all`)
        message = f"finished putting in place {names}: a run killed while placing them (process {pid})"
    for entry, target in zip(entries, targets):
        moves.clear_staging(owners.staging_path(target, owners.STAGING, owner), target)
        for role in (owners.OLD, owners.UNFINISHED_JOURNAL):
            if moves.exists(left := owners.staging_path(target, role, owner)):
                _clean_left(left, target, role)
    for target in reversed(targets):  # the first last: the lock of the set (:func:`_claimed`)
        moves.remove_path(owners.staging_path(target, owners.JOURNAL, owner))
    return message


#: what a message of a set left as it is adds when its journals are an older simkit's, which record too little of an old
#: result to tell it unchanged (:func:`_untold`)
UNTOLD = (" or cannot be told unchanged (its journals, of an older simkit, record no size or time of the old results, "
          "or nothing of what a folder holds)")


def _untold(entry: dict, target: Path) -> bool:
    """Whether the journal ``entry`` of an older simkit records too little to tell an old result at ``target``
    unchanged: no ``old_state``, or, for a folder, no ``old_tree``."""
    return "old_state" not in entry or ("old_tree" not in entry and moves.is_folder(target))


def _changed_since(entry: dict, target: Path) -> bool:
    """Whether ``target`` holds something other than the new result of a journal ``entry`` (:func:`write_journals`,
    by device and inode) or the old result as it was (by device and inode, then modification time and size, so that
    an edit in place counts, and for a folder the fingerprint of what it holds, :func:`_tree_fingerprint`, so that a
    file edited inside it counts too): put there or edited after the run was killed. An old result at ``target`` that
    an older simkit's journal records too little of (:func:`_untold`) counts as changed: it cannot be told unchanged,
    and placing over it might lose an edit. A missing target has not changed (a kill between the two renames of
    :func:`moves.put_in_place` leaves it missing; placing there loses nothing)."""
    result = _lstat(target)
    if result is None or [result.st_dev, result.st_ino] == [entry["device"], entry["inode"]]:
        return False
    return _old_fields(target, result) != {field: entry.get(field) for field in ("old", "old_state", "old_tree")}


def _new_result(entry: dict, owner: str) -> Path | None:
    """Where the new result of a journal ``entry`` (of the process ``owner``: :func:`write_journals`) is: its target,
    its staging path or the target's ``.NAME.old-PID``; None if none holds it."""
    target = Path(entry["target"])
    holders = (target, *(owners.staging_path(target, role, owner) for role in (owners.STAGING, owners.OLD)))
    return next((path for path in holders if _identity(path) == [entry["device"], entry["inode"]]), None)


def write_journals(stagings: list[Path], targets: list[Path]) -> None:
    """Before the first rename of a placement of more than one target, write beside each of ``targets`` its journal
    ``.NAME.journal-PID``: every (target, absolute, device and inode of the staged result, and what the target holds:
    :func:`_old_fields`), in JSON (each staging path is the target's
    ``.NAME.partial-PID``); written at ``.NAME.partial-journal-PID``, synced and renamed, so never half written, and
    their folders synced, so that they are on the disk before the first rename (:func:`moves.synced`). A run killed
    while placing leaves them for :func:`recover_stale` to finish the placement; :func:`remove_journals` removes them.
    One target: none (its placement is one rename, or an exchange, or two renames that :func:`recover_stale` undoes).
    An OSError (a staging path missing, a journal not written) is raised as a :class:`moves.PlacementError` naming the
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
            unfinished = owners.staging_path(target, owners.UNFINISHED_JOURNAL)
            unfinished.write_text(json.dumps(entries))
            moves.synced(unfinished)
            os.replace(unfinished, owners.staging_path(target, owners.JOURNAL))
        moves.synced_folders(targets)
    except OSError as error:
        raise moves.PlacementError(target, error) from error


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
    """The fields of a journal entry (:func:`write_journals`) that tell what ``target`` held before the placement,
    from :func:`os.lstat` of it (``result``, None: missing): ``old``, [device, inode], ``old_state``, [modification
    time in ns, size in bytes] (a folder: its own entry's), and ``old_tree``, a folder's :func:`_tree_fingerprint`
    (None for a file); all None when it was missing."""
    if result is None:
        return {"old": None, "old_state": None, "old_tree": None}
    return {"old": [result.st_dev, result.st_ino], "old_state": [result.st_mtime_ns, result.st_size],
            "old_tree": _tree_fingerprint(target) if moves.is_folder(target) else None}


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


def remove_journals(targets: list[Path]) -> None:
    """Remove this process's journals of ``targets`` (:func:`write_journals`), finished or not, the first target's
    last (the journal that locks the set: :func:`_claimed`)."""
    for target in reversed(targets):
        for role in (owners.UNFINISHED_JOURNAL, owners.JOURNAL):
            moves.remove_path(owners.staging_path(target, role))


def remove_at_once(path: str | Path) -> None:
    """Remove the file or folder ``path`` so that no reader ever sees part of it: renamed to its staging path
    ``.NAME.partial-PID`` first (atomic), then deleted there. What an interrupted or killed removal leaves there
    is deleted by the next call on ``path`` once its process is gone (:func:`recover_stale`)."""
    path = Path(path)
    recover_stale(path)
    aside = owners.staging_path(path, owners.STAGING)
    moves.remove_path(aside)  # left by an earlier removal of this process, interrupted
    if moves.exists(path):
        os.replace(path, aside)
        moves.remove_path(aside)
