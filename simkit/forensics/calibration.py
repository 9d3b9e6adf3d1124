"""Which tests are calibrated under each null: measured on clean elections, not asserted.

The record ``measured_size.json`` (next to this module) is written by the measurements themselves:

- ``panel``: rejections at α = 0.05 of each test on the clean elections of the false-positive panel
  (``python benchmarks/false_positives.py --draws 200 --null simulated --write-calibration``);
- ``panel_family``: on the same elections, rejections at the family level the verdicts use, α / m for the
  m tests measured (Bonferroni's level, the first step of Holm's), by the direction-aware tail p-value that the
  family verdict reads (:func:`simkit.forensics.family_p_value`): how often the test alone would raise a
  family-wise alarm on a clean election;
- ``simulated``: rejections on honest simulations of each panel election (the ``none`` row of
  ``python benchmarks/power_panel.py --write-calibration``).

Each count is ``[k, n]`` (level 0.05) or ``[k, n, level]``. A test is **uncalibrated** under a null when, in
any measurement, its rejections ``k`` out of ``n`` would be improbable at its level: the one-sided binomial
test ``P(X >= k | n, level) < 0.05``. (A valid p-value is at most ``level`` with probability at most
``level``, at every level, so a test whose clean elections fall below α / m too often cannot be trusted in a
family-wise verdict even when its rejections at 0.05 look nominal.) An uncalibrated test keeps its p-value (it
is not weakened), is marked ``uncalibrated`` wherever that p-value is shown, and is left out of family-wise
(Holm) verdicts. A test with no measurement under a null is ``not measured`` there and is left out of the family
too: only a size measured and found nominal makes a test calibrated.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import stats

RECORD = Path(__file__).with_name("measured_size.json")
NOMINAL = 0.05
#: level of the one-sided binomial test that flags a size above nominal
FLAG_LEVEL = 0.05


def size_above_nominal(rejections: int, n: int, level: float = NOMINAL) -> bool:
    """Whether ``rejections`` (at ``level``) of ``n`` clean elections are improbable for a test of size
    ``level``."""
    return n > 0 and float(stats.binom.sf(rejections - 1, n, level)) < FLAG_LEVEL


@lru_cache(maxsize=None)
def _record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


def measured(null: str) -> dict[str, dict[str, list]]:
    """measurement -> test -> [rejections, n] or [rejections, n, level] recorded for ``null`` (empty when not
    measured)."""
    return _record().get(null, {})


def uncalibrated(null: str) -> frozenset[str]:
    """Tests whose measured size under ``null`` is above nominal (module docstring)."""
    return frozenset(test for counts in measured(null).values() for test, count in counts.items()
                     if size_above_nominal(*count))


def record(null: str, measurement: str, counts: dict[str, tuple], command: str) -> None:
    """Store one measurement's ``test -> (rejections, n)`` or ``(rejections, n, level)`` for ``null`` in the
    record, with its command (``commands[null][measurement]``)."""
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.setdefault(null, {})[measurement] = {t: [int(c[0]), int(c[1]), *[float(x) for x in c[2:]]]
                                              for t, c in counts.items()}
    data.setdefault("commands", {}).setdefault(null, {})[measurement] = command
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    _record.cache_clear()


def data_fingerprint(registered: np.ndarray, ballots: np.ndarray) -> str:
    """An election's identity from its data, not its name: the first 16 hex digits of the SHA-256 of its
    stations' (registered, ballots) pairs (shape (station,) each, integers) in sorted order, so that the same
    returns give the same fingerprint whatever the file, the map or the order of the rows."""
    pairs = np.stack([np.asarray(registered, dtype=np.int64), np.asarray(ballots, dtype=np.int64)], axis=1)
    ordered = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return hashlib.sha256(np.ascontiguousarray(ordered).tobytes()).hexdigest()[:16]
