"""Published timelines, read from a config's ``[observed.timeline]`` or from a station file with a map.

A map (TOML) names the hours and the columns of a station file (CSV, read as a returns file is: plain, gzip or a ZIP
of one file, :func:`simkit.electorate.read.read_records`)::

    [timeline]
    opening = "09:00"
    closing = "20:00"
    reports = ["14:00", "18:00"]

    [columns]
    region = "region"                            # stations are summed by region
    registered = "registered"
    reports = ["ballots_1400", "ballots_1800"]   # cumulative ballots at each report
    final = "ballots_final"
    exclude = "special"                          # optional: rows where this column is non-zero are left out

    [checks]
    decreasing = "error"                         # or "exclude": drop (and count) stations whose figures fall

    [format]                                     # optional
    delimiter = ";"                              # default ","
    encoding = "latin-1"                         # default "utf-8"

A cell that is blank (empty, ``NA``, ``-``…) is blank; a row is numbered by the file's line it starts on.

Stations whose cumulative ballots decrease are an error unless the map says ``decreasing = "exclude"``;
the number excluded is reported, never hidden. Ballots above the register are an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simkit.config.core import Config, CsvDelimiter, TextEncoding
from simkit.config.messages import validation_problem
from simkit.config.timeline import TimelineConfig
from simkit.types import MAX_REGISTER
from ..errors import InputError, columns_named, listed, shown
from .statistics import RegionalTimeline
from simkit.electorate.build import electorate_of, voterless_turnouts
from simkit.electorate.read import TextFormat, delimiter_hint, read_header, read_records
from simkit.electorate.returns import GROUPED, NA_MARKERS, grouping_problem
from simkit.electorate.totals import check_no_totals_row
from simkit.electorate.mapping import read_map_toml


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MapColumns(_Block):
    region: str
    registered: str
    reports: list[str] = Field(min_length=1)
    final: str
    exclude: str | None = None

    def names(self) -> list[str]:
        """Every column named: region, registered, each report, final, then exclude when given."""
        return [self.region, self.registered, *self.reports, self.final] + ([self.exclude] if self.exclude else [])

    @model_validator(mode="after")
    def _one_column_each(self) -> "MapColumns":
        named = self.names()
        twice = [name for name in dict.fromkeys(named) if named.count(name) > 1]
        if twice:
            raise ValueError(f"{twice[0]!r} is named for two columns (region, registered, each report, final, "
                             "exclude)")
        return self


class MapChecks(_Block):
    decreasing: Literal["error", "exclude"] = "error"


class MapFormat(_Block):
    delimiter: CsvDelimiter = ","
    encoding: TextEncoding = "utf-8"


class TimelineMap(_Block):
    timeline: TimelineConfig
    columns: MapColumns
    checks: MapChecks = MapChecks()
    format: MapFormat = MapFormat()


@dataclass(frozen=True)
class Loaded:
    """An observed timeline with the hours it was published on, and notes on excluded stations."""

    observed: RegionalTimeline
    timeline: TimelineConfig
    excluded: dict[str, int]
    source: str
    station_counts: np.ndarray | None = None  #: (station, report + 1) cumulative ballots, from a station file
    station_region: np.ndarray | None = None  #: (station,) index into ``observed.region_names``


def from_config(cfg: Config, source: str) -> Loaded:
    """The config's ``[observed.timeline]`` (validated with the config), weighted by the regions' registers.
    A region whose stations have no voters on the register has no turnout through the day: its timeline is refused
    (:func:`~simkit.electorate.build.voterless_turnouts`)."""
    spec = cfg.observed.timeline
    if spec is None or cfg.timeline is None:
        raise InputError(f"{source}: observed.timeline: missing (the config has no published timeline)")
    electorate = electorate_of(cfg)
    problems = voterless_turnouts(cfg, electorate, ["timeline"])
    if problems:
        raise InputError(f"{source}: {problems[0]}")
    registered = dict(zip(electorate.region_names, electorate.region_registered()))
    names = list(spec.turnout_percent)
    turnout = np.array([spec.turnout_percent[name] for name in names], float) / 100.0
    national = None if spec.national is None else np.array(spec.national, float) / 100.0
    observed = RegionalTimeline(names, list(spec.reports), turnout,
                                np.array([registered[name] for name in names], float), national, spec.early_report)
    return Loaded(observed, cfg.timeline, {}, source)


def read_map(path: Path) -> TimelineMap:
    """The checked timeline map at ``path`` (read as a returns mapping is: :func:`read_map_toml`)."""
    raw = read_map_toml(path)
    try:
        return TimelineMap.model_validate(raw)
    except ValidationError as error:
        field, message = validation_problem(error.errors()[0], raw, TimelineMap)
        raise InputError(f"{path}: {field}: {message}") from None


def _lines(frame) -> np.ndarray:
    """(row,) the file's line each row of ``frame`` (:func:`_station_frame`) starts on."""
    return frame.index.to_numpy() + 2


def _first_row(frame, bad: np.ndarray) -> int:
    """The file's line (:func:`_lines`) of the first row flagged in ``bad`` (row,) bool."""
    return int(_lines(frame)[np.flatnonzero(bad)[0]])


def _numbers(frame, column: str, data: Path, blank: float | None = None) -> np.ndarray:
    """(row,) the numbers of ``column`` (its cells as written, str); a blank cell is ``blank`` (None: refused); a
    cell that is no number, or that may be a count with its thousands grouped
    (:func:`~simkit.electorate.returns.grouping_problem`: ``1.000``, 1000 or 1?), raises InputError naming the file,
    row and column."""
    import pandas as pd

    text = frame[column]
    grouped = text.str.strip().str.fullmatch(GROUPED.pattern).fillna(False).to_numpy(bool)
    if grouped.any():
        cell = text.to_numpy()[np.flatnonzero(grouped)[0]]
        raise InputError(f"{data}: row {_first_row(frame, grouped)}: {column}: {shown(str(cell))} "
                         f"{grouping_problem(str(cell).strip())}")
    values = pd.to_numeric(text, errors="coerce").to_numpy(float)
    if blank is not None:
        values = np.where(text.isna(), blank, values)
    bad = np.isnan(values)
    if bad.any():
        cell = text.to_numpy()[np.flatnonzero(bad)[0]]
        problem = "blank" if pd.isna(cell) else f"{shown(str(cell))} is not a number"
        raise InputError(f"{data}: row {_first_row(frame, bad)}: {column}: {problem}")
    return values


def _counts(frame, column: str, data: Path) -> np.ndarray:
    """(row,) int64 counts of ``column``: whole numbers from 0 to MAX_REGISTER, else InputError (file, row,
    column)."""
    values = _numbers(frame, column, data)
    bad = ~((values >= 0) & (values <= MAX_REGISTER) & (values == np.floor(values)))
    if bad.any():
        cell = frame[column].to_numpy()[np.flatnonzero(bad)[0]]
        raise InputError(f"{data}: row {_first_row(frame, bad)}: {column}: {shown(str(cell))} is not a count (a whole "
                         f"number from 0 to {MAX_REGISTER:.0e})")
    return values.astype(np.int64)


def _station_frame(data: Path, map_path: Path, fmt: MapFormat, wanted: list[str]):
    """The ``wanted`` columns of the station file ``data`` as a DataFrame of its cells as written (str; a blank
    cell, empty or one of :data:`~simkit.electorate.returns.NA_MARKERS`, None), indexed by the file's line each row
    starts on minus 2 (:func:`_lines`). InputError naming the file for a column missing or named twice in its
    header (:func:`_check_header`), and for a row with a cell beyond the header (a delimiter inside an unquoted field
    shifts every cell after it); blank cells beyond the header, a delimiter ending every row, are dropped, and a
    short row's missing cells are blank."""
    import pandas as pd

    text = TextFormat(fmt.delimiter, fmt.encoding, member_field=None, noun="station file")
    _check_header(data, map_path, read_header(data, text), fmt.delimiter, wanted)
    header, rows, lines = read_records(data, text)
    wide = next((line for line, row in zip(lines, rows) if any(cell.strip() for cell in row[len(header):])), None)
    if wide is not None:
        raise InputError(f"{data}: row {wide}: more cells than the header's {len(header)} columns (a delimiter "
                         "inside an unquoted field, such as a thousands separator?)")
    cells = {name: [_cell(row, header.index(name)) for row in rows] for name in wanted}
    return pd.DataFrame(cells, index=np.array(lines, dtype=np.int64) - 2, dtype=object)


def _check_header(data: Path, map_path: Path, header: list[str], delimiter: str, wanted: list[str]) -> None:
    """InputError naming the file ``data`` when a column the map names is missing from its ``header`` or named twice
    in it (the map would read one of the two, silently); checked before the rows are read, so that a file of other
    text is not read whole."""
    missing = [name for name in wanted if name not in header]
    if missing:
        raise InputError(f"{data}: column {missing[0]!r} (named in {map_path}) not found"
                         + delimiter_hint(header, delimiter, "format.delimiter"))
    twice = [name for name in wanted if header.count(name) > 1]
    if twice:
        raise InputError(f"{data}: {columns_named(twice[0], header.count(twice[0]), named_in=str(map_path))}")


def _cell(row: list[str], column: int) -> str | None:
    """The cell of ``row`` in ``column`` as written, None when blank or past a short row's end."""
    cell = row[column] if column < len(row) else ""
    return None if not cell.strip() or cell.strip().lower() in NA_MARKERS else cell


def _check_regions(frame, column: str, data: Path) -> None:
    """A blank region cell raises InputError naming the file, row and column."""
    blank = frame[column].isna().to_numpy() | (frame[column].astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise InputError(f"{data}: row {_first_row(frame, blank)}: {column}: blank (every station needs a region)")


#: ``decreasing = "exclude"`` drops the odd bad station; when more than this share of them decrease, the map's
#: columns are likely out of time order (or its final column another count than the reports', such as valid votes
#: for ballots), and the stations left would be a biased few. A judgement, not a derived bound: a real file's
#: corrections decrease a few percent of its stations, a misread one most of them
MAX_DECREASING_SHARE = 0.5


def from_stations(data: Path, map_path: Path) -> Loaded:
    """Station timelines summed by region; bad figures raise InputError naming the file, column and row."""
    spec = read_map(map_path)
    columns = spec.columns
    if len(columns.reports) != len(spec.timeline.reports):
        raise InputError(f"{map_path}: columns.reports: {len(columns.reports)} columns for "
                         f"{len(spec.timeline.reports)} reporting times")
    wanted = columns.names()
    frame = _station_frame(data, map_path, spec.format, wanted)
    if columns.exclude:
        frame = frame[_numbers(frame, columns.exclude, data, blank=0) == 0]
    _check_regions(frame, columns.region, data)
    counts = np.column_stack([_counts(frame, name, data) for name in [*columns.reports, columns.final]])
    registered = _counts(frame, columns.registered, data)
    check_no_totals_row(str(data), [columns.registered, *columns.reports, columns.final],
                        np.column_stack([registered, counts]), _lines(frame))
    over = counts.max(axis=1) > registered
    if over.any():
        raise InputError(f"{data}: row {_first_row(frame, over)}: ballots exceed {columns.registered} (turnout above "
                         "100%)")
    falling = (np.diff(counts, axis=1) < 0).any(axis=1)
    excluded = {"decreasing": int(falling.sum())}
    if falling.any() and spec.checks.decreasing == "error":
        raise InputError(f"{data}: row {_first_row(frame, falling)}: cumulative ballots decrease across "
                         f"{listed(columns.reports)}, "
                         f"{columns.final} ({int(falling.sum())} stations; map checks.decreasing = \"exclude\" "
                         f"drops them)")
    if falling.sum() > MAX_DECREASING_SHARE * len(falling):
        raise InputError(f"{data}: {int(falling.sum())} of {len(falling)} stations have cumulative ballots decreasing "
                         f"across {listed(columns.reports)}, {columns.final}: more than "
                         f"{MAX_DECREASING_SHARE:.0%}, so the columns are likely out of time order, or a final "
                         f"column that is not the same count as the reports ({map_path}: columns.reports from the "
                         "first report, then final, all counting ballots); checks.decreasing = \"exclude\" is for "
                         "the odd bad station")
    frame, counts, registered = frame[~falling], counts[~falling], registered[~falling]
    if not len(frame):
        raise InputError(f"{data}: no stations left to test (after the map's exclude column and checks)")
    names, index = np.unique(frame[columns.region].to_numpy(), return_inverse=True)
    sums = np.zeros((len(names), counts.shape[1]))
    np.add.at(sums, index, counts)
    register = np.bincount(index, weights=registered, minlength=len(names))
    if (sums[:, -1] == 0).any():
        raise InputError(f"{data}: region {names[np.flatnonzero(sums[:, -1] == 0)[0]]}: no ballots in "
                         f"{columns.final} at any station: no share of the final count to time")
    observed = RegionalTimeline([str(n) for n in names], list(spec.timeline.reports), sums / register[:, None],
                                register, sums.sum(axis=0) / register.sum())
    positive = counts[:, -1] > 0
    return Loaded(observed, spec.timeline, excluded, str(data), counts[positive].astype(np.int64), index[positive])
