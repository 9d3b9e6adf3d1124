"""Whose staging paths these are: every path a run writes beside a target is named ``.NAME.ROLE-OWNER``, the owner
``PID.START.PLACE.BOOT`` (:data:`OWNER`), so that a later run can tell a live run's paths from a killed one's, a process
id used again from the one that wrote them, and another machine's or container's from this one's (:func:`owner_alive`).
"""
from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
import socket
from pathlib import Path




STAGING, OLD = "partial", "old"  #: the staging paths beside a target: ``.NAME.partial-PID``, ``.NAME.old-PID``


#: the journal of a placement of several outputs beside each (:func:`journals.write_journals`): ``.NAME.journal-PID``,
#: written at ``.NAME.partial-journal-PID`` first (a staging path: what a killed run leaves there is removed as one)
JOURNAL, UNFINISHED_JOURNAL = "journal", "partial-journal"


#: the owner ending a staging path's name (the ``PID`` of ``.NAME.ROLE-PID``): this simkit's :func:`_own_owner`
#: ``PID.START.PLACE.BOOT``, or an older simkit's process id alone
OWNER = re.compile(r"(\d+)(?:\.(\d+)\.([0-9a-f]{8})\.([0-9a-f]{8}))?")


def staging_path(target: Path, role: str, owner: str | None = None) -> Path:
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


def owner_in_name(path: Path) -> str:
    """The owner ending the name of a path ``.NAME.ROLE-OWNER`` beside a target (:data:`OWNER`; anything else: not
    such a path)."""
    return path.name.rpartition("-")[2]


def process_in_name(path: Path) -> str:
    """The process id of the owner of ``path`` (:func:`owner_in_name`), as messages name it."""
    return owner_in_name(path).partition(".")[0]


def left_by(target: Path, role: str, alive: bool | None) -> list[Path]:
    """The paths ``.NAME.ROLE-OWNER`` beside ``target`` whose owner's :func:`_owner_alive` is ``alive`` (False: gone,
    None: cannot be told), sorted."""
    paths = sorted(target.parent.glob(f".{glob.escape(target.name)}.{role}-*"))
    return [path for path in paths
            if OWNER.fullmatch(owner_in_name(path)) and _owner_alive(owner_in_name(path)) is alive]


def of_another_place(path: Path, target: Path) -> str:
    """The message of ``path``, beside ``target``, of a process of another machine or container
    (:func:`_owner_alive`), which is left as it is."""
    return (f"{target}: left {path.name} as it is: written by process {process_in_name(path)} of another machine or "
            "container (or of this one before it restarted), which cannot be told ended; remove it once no run writes "
            "there")
