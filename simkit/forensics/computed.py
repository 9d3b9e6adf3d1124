"""Values computed once from an election's arrays and kept with it (:class:`simkit.forensics.core.Election`).

A simulated null evaluates a dozen statistics on every honest election, and several need the same derived
arrays (turnout, leader share, candidate counts, the honest groups of the Klimek fits): :class:`Computed` holds
each such value under a key, computed on first use. Tests run in threads side by side, so a key is computed by
one thread while the others wait for it (a lock per key: a slow value does not hold up the others). Values are
arrays made read-only, or other objects that their users do not change. A process forked while a value was being
computed gets fresh locks and computes that value itself (its finished values it keeps).
"""
from __future__ import annotations

import os
import threading
import weakref
from dataclasses import fields, is_dataclass
from typing import Any, Callable, Hashable

import numpy as np


def read_only(value: Any) -> Any:
    """``value`` with every numpy array in it made read-only (so a caller cannot change a cached value): the
    value itself, the items of a list or tuple, the fields of a dataclass, and so on within them."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (list, tuple)):
        for item in value:
            read_only(item)
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            read_only(getattr(value, field.name))
    return value


#: every live :class:`Computed`, so that a forked child can replace their locks
_ALL: weakref.WeakSet = weakref.WeakSet()


class Computed:
    """Key -> value, each computed once by ``get(key, compute)``; thread-safe. Not pickled: a copy sent to
    another process starts empty (the values are recomputed there, from the same arrays)."""

    def __init__(self, initial: dict[Hashable, Any] | None = None):
        self._values: dict[Hashable, Any] = {key: read_only(value) for key, value in (initial or {}).items()}
        self._fresh_locks()
        _ALL.add(self)

    def _fresh_locks(self) -> None:
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value of ``key``, computed by ``compute()`` (arrays made read-only) the first time."""
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = read_only(compute())
            return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __reduce__(self):
        return Computed, ()


def _after_fork_in_child() -> None:
    """A lock held by a thread of the parent at the fork would never be released in the child."""
    for computed in list(_ALL):
        computed._fresh_locks()


os.register_at_fork(after_in_child=_after_fork_in_child)
