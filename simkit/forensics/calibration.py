"""Which tests are calibrated under each null, and how: measured on clean elections, not asserted.

The record ``measured_size.json`` (next to this module) is written by the measurements themselves:

- ``panel``: rejections at α = 0.05 of each test on the clean elections of the false-positive panel, by the
  p-value each test reports (held out: see below)
  (``python benchmarks/false_positives.py --draws 200 --null simulated --write-calibration``);
- ``panel_family``: on the same elections, rejections at the family level the verdicts use, α / m, by the
  p-value the family verdict reads (:func:`simkit.forensics.family_p_value`): how often the test alone would
  raise a family-wise alarm on a clean election. ``m`` is the number of *candidate* family members, the tests
  that pass every other measurement; the family is a subset of them, so α / m is at least as strict as the
  first step of Holm's procedure over the family;
- ``simulated``: rejections on honest simulations of each panel election (the ``none`` row of
  ``python benchmarks/power_panel.py --write-calibration``), by the Monte Carlo p-value.

Each count is ``[k, n]`` (level 0.05) or ``[k, n, level]``. A size is **above nominal** when its rejections
``k`` out of ``n`` would be improbable at its level: the one-sided binomial test ``P(X >= k | n, level) ≤ 0.05``
(:func:`simkit.schema.rejects`).
(A valid p-value is at most ``level`` with probability at most ``level``, at every level, so a test whose
clean elections fall to or below α / m too often cannot be trusted in a family-wise verdict even when its rejections
at 0.05 look nominal.)

**The rule, under the simulated null.** A test whose *Monte Carlo* size on the clean panel is above nominal
(the record's ``empirical`` section keeps those raw counts, ``raw_panel`` and ``raw_panel_family``, and the
``simulated`` measurement) is read against the systematic-error model of :mod:`simkit.forensics.empirical`:
its reported p-value becomes the empirically calibrated one, fitted on the clean elections (the *controls*,
whose errors ``d``, ``s`` and fitted ``tau`` per test the record keeps), held out when the election under test is
a control (recognised by its data's fingerprint, so a subset or another version of a control's file is not
recognised and is read against all controls, itself included) and then without its country's other controls. Its status is then ``calibrated (empirical, k clean elections)`` when its
held-out size (``panel`` and ``panel_family``, counted on the held-out p-values) is nominal, else
``uncalibrated (empirical, k clean elections)``. Tests whose Monte Carlo size is nominal keep their Monte Carlo
p-values. ``flat`` and ``textbook`` have no controls: their p-values are their own.

An uncalibrated test keeps its p-value (it is not weakened), is marked ``uncalibrated`` wherever that p-value
is shown, and is left out of family-wise (Holm) verdicts. A test with no measurement under a null is ``not
measured`` there and is left out of the family too: only a size measured and found nominal makes a test
calibrated.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import stats

from simkit.forensics.empirical import Control
from simkit.schema import rejects

RECORD = Path(__file__).with_name("measured_size.json")
NOMINAL = 0.05
#: level of the one-sided binomial test that flags a size above nominal
FLAG_LEVEL = 0.05


def size_above_nominal(rejections: int, n: int, level: float = NOMINAL) -> bool:
    """Whether ``rejections`` (at ``level``) of ``n`` clean elections are improbable for a test of size
    ``level``."""
    return n > 0 and rejects(float(stats.binom.sf(rejections - 1, n, level)), FLAG_LEVEL)


@lru_cache(maxsize=None)
def _record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


def measured(null: str) -> dict[str, dict[str, list]]:
    """measurement -> test -> [rejections, n] or [rejections, n, level] recorded for ``null`` (empty when not
    measured)."""
    return _record().get(null, {})


def uncalibrated(null: str) -> frozenset[str]:
    """Tests whose measured size under ``null`` is above nominal (module docstring): a test read empirically is
    judged by its held-out measurements (:data:`HELD_OUT`) alone."""
    empirical = empirical_tests(null)
    return frozenset(test for name, counts in measured(null).items() for test, count in counts.items()
                     if (test not in empirical or name in HELD_OUT) and size_above_nominal(*count))


#: the measurements counted on the p-values each test reports (held-out empirical ones for empirical tests)
HELD_OUT = ("panel", "panel_family")


def _empirical(null: str) -> dict:
    return _record().get("empirical", {}).get(null, {})


def empirical_tests(null: str) -> frozenset[str]:
    """Tests whose reported p-value under ``null`` is the empirically calibrated one (module docstring)."""
    return frozenset(_empirical(null).get("tests", ()))


def controls(null: str) -> dict[str, Control]:
    """The clean control elections recorded for ``null``: data fingerprint -> :class:`Control`."""
    return {key: Control(c["country"], c["election"], {t: tuple(v) for t, v in c["errors"].items()})
            for key, c in _empirical(null).get("controls", {}).items()}


def record_empirical(null: str, tests: list[str], control_elections: dict[str, Control], tau: dict[str, float],
                     raw: dict[str, dict[str, tuple]], command: str) -> None:
    """Store, for ``null``, the tests read empirically, the controls' errors (fingerprint -> country, election,
    test -> [d, s]), each test's ``tau`` fitted on all controls, and the raw Monte Carlo counts that chose the
    tests (measurement -> test -> count), with the command that measured them."""
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.setdefault("empirical", {})[null] = {
        "tests": sorted(tests), "command": command, "tau": tau,
        "controls": {key: {"country": c.country, "election": c.election,
                           "errors": {t: [float(x) for x in v] for t, v in c.errors.items()}}
                     for key, c in control_elections.items()},
        **{name: {t: [int(c[0]), int(c[1]), *[float(x) for x in c[2:]]] for t, c in counts.items()}
           for name, counts in raw.items()}}
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    _record.cache_clear()


def record(null: str, measurement: str, counts: dict[str, tuple], command: str) -> None:
    """Store one measurement's ``test -> (rejections, n)`` or ``(rejections, n, level)`` for ``null`` in the
    record, with its command (``commands[null][measurement]``). A test that ran on none of the elections (n = 0:
    n/a on every one, as ``klimek_ml`` under the textbook null) has no measurement there and is left out: it
    stays ``not measured``."""
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.setdefault(null, {})[measurement] = {t: [int(c[0]), int(c[1]), *[float(x) for x in c[2:]]]
                                              for t, c in counts.items() if c[1] > 0}
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
