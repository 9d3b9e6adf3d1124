"""Values computed once from an election's arrays and kept with it (:class:`simkit.forensics.core.Election`).

A simulated null evaluates a dozen statistics on every honest election, and several need the same derived
arrays (turnout, leader share, candidate counts, the honest groups of the Klimek fits): :class:`Computed` holds
each such value under a key, computed on first use. Tests run in threads side by side, so a key is computed by
one thread while the others wait for it (a lock per key: a slow value does not hold up the others). Values are
arrays made read-only, or other objects that their users do not change.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Hashable

import numpy as np


def read_only(value: Any) -> Any:
    """``value``, made read-only when it is a numpy array (so a caller cannot change a cached value)."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    return value


class Computed:
    """Key -> value, each computed once by ``get(key, compute)``; thread-safe. Not pickled: a copy sent to
    another process starts empty (the values are recomputed there, from the same arrays)."""

    def __init__(self, initial: dict[Hashable, Any] | None = None):
        self._values: dict[Hashable, Any] = {key: read_only(value) for key, value in (initial or {}).items()}
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
