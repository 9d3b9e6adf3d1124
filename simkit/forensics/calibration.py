"""Which tests are calibrated under each null: measured on clean elections, not asserted.

The record ``measured_size.json`` (next to this module) is written by the measurements themselves:

- ``panel``: rejections at α = 0.05 of each test on the clean elections of the false-positive panel
  (``python benchmarks/false_positives.py --draws 200 --null simulated --write-calibration``);
- ``simulated``: rejections on honest simulations of each panel election (the ``none`` row of
  ``python benchmarks/power_panel.py --write-calibration``).

A test is **uncalibrated** under a null when, in either measurement, its rejections ``k`` out of ``n`` would be
improbable at a size of 0.05: the one-sided binomial test ``P(X >= k | n, 0.05) < 0.05``. An uncalibrated test
keeps its p-value (it is not weakened), is marked ``uncalibrated`` wherever that p-value is shown, and is left
out of family-wise (Holm) verdicts.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from scipy import stats

RECORD = Path(__file__).with_name("measured_size.json")
NOMINAL = 0.05
#: level of the one-sided binomial test that flags a size above nominal
FLAG_LEVEL = 0.05


def size_above_nominal(rejections: int, n: int) -> bool:
    """Whether ``rejections`` of ``n`` clean elections are improbable at size :data:`NOMINAL`."""
    return n > 0 and float(stats.binom.sf(rejections - 1, n, NOMINAL)) < FLAG_LEVEL


@lru_cache(maxsize=None)
def _record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


def measured(null: str) -> dict[str, dict[str, list[int]]]:
    """measurement -> test -> [rejections, n] recorded for ``null`` (empty when not measured)."""
    return _record().get(null, {})


def uncalibrated(null: str) -> frozenset[str]:
    """Tests whose measured size under ``null`` is above nominal (module docstring)."""
    return frozenset(test for counts in measured(null).values() for test, (k, n) in counts.items()
                     if size_above_nominal(k, n))


def record(null: str, measurement: str, counts: dict[str, tuple[int, int]], command: str) -> None:
    """Store one measurement's ``test -> (rejections, n)`` for ``null`` in the record, with its command."""
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.setdefault(null, {})[measurement] = {t: [int(k), int(n)] for t, (k, n) in counts.items()}
    data.setdefault("commands", {})[measurement] = command
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    _record.cache_clear()
