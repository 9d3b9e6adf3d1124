"""Total survey error of exit polls, calibrated on history: how far published exit polls land from the
official count in elections judged clean.

The history table (``configs/exit_poll_history.csv``, one row per poll and published figure) holds the
published figure and the official one in percent (a candidate's of valid votes, a turnout of registered voters,
unless the row's ``note`` names another base, as Ukraine's shares of ballots cast), whether the row is part of
the baseline (``in_baseline``: clean elections only; Kazakhstan's 2015 and 2019 polls are kept beside it
for comparison) and where each number comes from (``poll_source``, ``official_source``). It holds no sample
sizes: each error includes its poll's own sampling error, whatever its size.

The non-sampling error of a published figure is taken as normal with mean 0 and standard deviation the
root mean square of the baseline errors (published − official, points) of its **option class**:

* ``large``: a candidate or party with at least :data:`LARGE_SHARE` percent of the official count;
* ``small``: one below it;
* ``against_all``: an "against all" line (no clean election of the table has one: the ``small`` class
  stands in, and :meth:`ErrorBaseline.summary` says so);
* ``turnout``: the poll's turnout estimate against the official turnout.

The RMS includes the historical polls' own sampling error, so it overstates the non-sampling part: a gap
that exceeds sampling plus this error exceeds it conservatively.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simkit.errors import InputError
from simkit.electorate.read import width_problem

#: percent of the official count from which a candidate is ``large``
LARGE_SHARE = 20.0
#: the table shipped with the repository
DEFAULT_HISTORY = Path(__file__).resolve().parents[2] / "configs" / "exit_poll_history.csv"
COLUMNS = ("country", "election", "date", "pollster", "kind", "option", "published", "official", "in_baseline",
           "poll_source", "official_source", "note")
KINDS = ("candidate", "against_all", "turnout")
CLASSES = ("large", "small", "against_all", "turnout")
#: a class without baseline rows borrows another's error
FALLBACK = {"against_all": "small"}


@dataclass(frozen=True)
class HistoryRow:
    """One published figure of one historical poll (percent)."""

    country: str
    election: str
    date: str
    pollster: str
    kind: str
    option: str
    published: float
    official: float
    in_baseline: bool
    poll_source: str
    official_source: str

    @property
    def error(self) -> float:
        """Published minus official, in points."""
        return self.published - self.official

    @property
    def option_class(self) -> str:
        return option_class(self.kind, self.official)

    @property
    def poll_key(self) -> tuple[str, str, str]:
        return (self.country, self.date, self.pollster)


def option_class(kind: str, official_percent: float) -> str:
    """The error class of a figure: ``turnout``, ``against_all``, else ``large`` / ``small`` by its official
    share (percent) against :data:`LARGE_SHARE`."""
    if kind in ("turnout", "against_all"):
        return kind
    return "large" if official_percent >= LARGE_SHARE else "small"


def _share(path: Path, line: int, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path}: row {line}.{field}: {text!r} is not a number") from None
    if not 0.0 <= value <= 100.0 or not math.isfinite(value):
        raise InputError(f"{path}: row {line}.{field}: {value:g} is not a share in percent (0 to 100)")
    return value


def load_history(path: Path | str = DEFAULT_HISTORY) -> list[HistoryRow]:
    """Read and check the history table. Raises :class:`InputError` (``file: row N.field: problem``) for a
    missing column, a row of more or fewer fields than the header, a row without a source, a share outside
    [0, 100], an unknown kind or a figure (country, election, date, pollster, kind, option) given twice."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read the exit-poll history ({error.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: header: missing column {missing[0]}")
        rows, lines = [], {}
        for line, raw in enumerate(reader, start=2):
            problem = width_problem(raw, reader.fieldnames, line)
            if problem:
                raise InputError(f"{path}: {problem}")
            figure = (raw["country"], raw["election"], raw["date"], raw["pollster"], raw["kind"], raw["option"])
            if figure in lines:
                raise InputError(f"{path}: row {line}: repeats row {lines[figure]}'s figure ({', '.join(figure)}): "
                                 "its error would count twice")
            lines[figure] = line
            for field in ("poll_source", "official_source"):
                if not (raw[field] or "").strip():
                    raise InputError(f"{path}: row {line}.{field}: empty; every figure needs its source")
            if raw["kind"] not in KINDS:
                raise InputError(f"{path}: row {line}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
            if raw["in_baseline"] not in ("true", "false"):
                raise InputError(f"{path}: row {line}.in_baseline: {raw['in_baseline']!r} is not true or false")
            rows.append(HistoryRow(raw["country"], raw["election"], raw["date"], raw["pollster"], raw["kind"],
                                   raw["option"], _share(path, line, "published", raw["published"]),
                                   _share(path, line, "official", raw["official"]), raw["in_baseline"] == "true",
                                   raw["poll_source"].strip(), raw["official_source"].strip()))
    if not any(row.in_baseline for row in rows):
        raise InputError(f"{path}: in_baseline: no row is part of the baseline")
    return rows


@dataclass(frozen=True)
class ErrorBaseline:
    """The non-sampling error per option class, from the baseline rows of a history table."""

    rows: tuple[HistoryRow, ...]
    source: str = str(DEFAULT_HISTORY)

    @classmethod
    def from_file(cls, path: Path | str = DEFAULT_HISTORY) -> "ErrorBaseline":
        return cls(tuple(load_history(path)), str(path))

    def _errors(self, name: str) -> np.ndarray:
        return np.array([row.error for row in self.rows if row.in_baseline and row.option_class == name])

    def resolved_class(self, name: str) -> str:
        """The class whose errors stand for ``name`` (itself, or its fallback when it has no rows)."""
        return name if len(self._errors(name)) or name not in FALLBACK else FALLBACK[name]

    def sd(self, name: str) -> float:
        """Non-sampling SD (points) of class ``name``: the RMS of its baseline errors."""
        errors = self._errors(self.resolved_class(name))
        if not len(errors):
            raise InputError(f"{self.source}: in_baseline: no baseline rows of class {name}")
        return float(np.sqrt(np.mean(errors ** 2)))

    def summary(self) -> list[dict]:
        """Per class: figures, polls, countries, mean and RMS error (points), and the class used."""
        table = []
        for name in CLASSES:
            used = self.resolved_class(name)
            members = [row for row in self.rows if row.in_baseline and row.option_class == used]
            errors = np.array([row.error for row in members])
            table.append({"option_class": name, "from_class": used, "figures": len(members),
                          "polls": len({row.poll_key for row in members}),
                          "countries": len({row.country for row in members}),
                          "mean_error": float(errors.mean()) if len(errors) else None,
                          "max_abs_error": float(np.abs(errors).max()) if len(errors) else None,
                          "nonsampling_sd": float(np.sqrt(np.mean(errors ** 2))) if len(errors) else None})
        return table

    def counts(self) -> dict:
        """Polls and countries of the whole table and of the baseline."""
        baseline = [row for row in self.rows if row.in_baseline]
        return {"polls": len({row.poll_key for row in self.rows}),
                "countries": len({row.country for row in self.rows}),
                "baseline_polls": len({row.poll_key for row in baseline}),
                "baseline_countries": len({row.country for row in baseline})}
