"""Loading real station-level returns into simkit's Dataset schema (see ``simkit.schema``).

A *mapping* (a small TOML file, or one of the presets in ``simkit/electorate/presets/``) says how to read a CSV file
(optionally inside a ZIP) and where each quantity is::

    source = "russia/2011.csv.zip"      # optional: file inside the shared data folder (presets)
    ballots_meaning = "valid + invalid ballots found in the boxes"
    leader = "United Russia"            # optional: default is the option with the most votes

    [format]
    delimiter = ","                     # default ","
    encoding = "utf-8"                  # default "utf-8"
    member = "2011.csv"                 # ZIP member; default: the only CSV in the archive

    [columns]                           # a column is a name, a 0-based position,
    registered = 3                      # a list of columns to sum, {sum = [...]},
    valid = 12                          # or {diff = [a, b, ...]} (a minus the others)
    invalid = 11
    ballots = {sum = [11, 12]}          # derived from valid + invalid when absent
    region = 0                          # optional; a list of columns is joined with "/"
    district = [0, 1]                   # optional unit inside a region (each district in one region only)
    special = "special"                 # optional: 1 marks a pseudo-station (abroad, mobile, no register)
    id = [0, 1, 2]                      # optional station id (joined with "/")

    [options]                           # option name -> column
    "United Russia" = 26

Derivations: ``ballots = valid + invalid``, ``invalid = ballots - valid`` and ``valid = ballots - invalid`` when
one of the three is missing; with only ``ballots`` (no split), votes hold the options alone.

Cells of count columns: whole numbers, also written as integral decimals (``1208.0``, as pandas writes a column
with a missing value); a sign is read (a negative count is flagged ``negative``). A non-integral number (``12.5``),
a number that may be thousands grouped with ``.`` or ``,`` (``1.359``, ``12.000``, ``1,208``: 1,359, 12,000 and
1,208, or decimals?) or with a space or ``'`` (``1 208``), or a count above 10^10 stops the load with its data row,
line, column and cell: simkit reads no thousands separator (write counts without them). A blank cell (empty,
``NA``, ``-``...) and any other text (``n/a?``, ``²``) are *missing*.

A row with fewer or more fields than the header stops the load with the first such row; empty fields beyond
the header (every data row ending with the delimiter, a common export) are dropped. A row that repeats the header
(files joined, such as two rounds' returns) stops the load with its line; two elections' rows joined without one are
not caught (with an ``id`` column, reported as ``duplicate_id``).

Row rules (every rule is reported in ``attrs["anomalies"]`` with counts and 1-based data-row numbers):

- **excluded** at load: a missing cell in a quantity of ``[columns]`` (``blank``, ``not_a_number``);
- **kept, option missing** (``missing_option``): a missing cell of an option is missing for that option only: the
  ``missing(station, option)`` variable is 1 there and ``votes`` holds 0 (so sums are lower bounds, and the digit
  tests, which read counts of 10 and more, leave the cell out); a station whose *leader* count is missing is left
  out of the forensic tests (``simkit.forensics.election``);
- **special** (``special`` column not 0: voters abroad, mobile boxes, stations without a register): kept in the
  Dataset with ``special = 1``, reported as their own class, never flagged, and left out of every forensic test;
- **kept and flagged** (ordinary stations only) in the ``flags`` bit mask: ``zero_register`` (registered = 0),
  ``ballots_gt_registered``, ``votes_gt_ballots`` (options + invalid exceed ballots), ``negative`` (a count below
  zero, read or derived), ``totals_row`` (a guess at a spreadsheet's totals row: register, ballots and every option
  each the sum of every other parsed row's, among 3 or more rows with a register; a column with a missing cell
  is not compared; in a small file a station can match). A totals row among subtotal rows stops the load, naming
  them (:func:`simkit.electorate.totals.subtotals_problem`).
  Forensic tests drop flagged stations and say how many;
- **reported**: ``blank_region`` (region ``(none)``), ``duplicate_id`` (rows that share a station id),
  ``region_spelling`` (region names the same but for case, surrounding spaces or Unicode form, ``Sofia`` and
  ``sofia``: read as the separate regions they are written as, not merged).

When more than 5% (:data:`MAX_INCONSISTENT_SHARE`) of the ordinary rows are excluded, miss an option or are
flagged, the load stops with one line naming the fields, the counts, what the rows of the largest hold (its column's
first cells that are no number, as written, or the first counts a flag compares) and the first rows (a mapping one
column off, a text column mapped as counts), unless ``allow_inconsistent`` (``--allow-inconsistent``) says to test
the rest. A file with no usable station (header only, every row special, blank, flagged or without ballots) is an error.
"""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from simkit.data import data_file
from simkit.errors import InputError, columns_named, counted, first_of
from simkit.electorate.mapping import (COUNT_QUANTITIES, INVALID_OPTION, PRESET_DIR, PRESETS, ColumnSpec,
                                       ReturnsMapping, load_mapping, name, preset_mapping, shown)
from simkit.electorate.read import delimiter_hint, read_header, read_rows, returns_format
from simkit.electorate.totals import subtotals_problem, sums_the_others
from simkit.schema import OPTION, STATION, STATION_DISTRICT, STATION_REGION

__all__ = ["PRESETS", "PRESET_DIR", "FLAG_BITS", "MAX_INCONSISTENT_SHARE", "ReturnsMapping", "load_mapping",
           "preset_mapping", "load_returns", "anomaly_report", "GROUPED", "grouping_problem"]

#: bit of the ``flags`` variable -> rule name (kept-and-flagged rows)
FLAG_BITS = {1: "zero_register", 2: "ballots_gt_registered", 4: "votes_gt_ballots", 8: "negative", 16: "totals_row"}
#: flag rule -> (the field it blames, what it says): for the error when too many rows are flagged
FLAG_LABELS = {"zero_register": ("columns.registered", "columns.registered = 0"),
               "ballots_gt_registered": ("columns.ballots", "columns.ballots > columns.registered"),
               "votes_gt_ballots": ("options", "options + invalid > columns.ballots"),
               "negative": ("counts", "a negative count"),
               "totals_row": ("DATA", "a row summing the others")}
#: largest share of ordinary rows that may be excluded, miss an option or be flagged before the load stops
MAX_INCONSISTENT_SHARE = 0.05
#: largest count a cell may hold (more than any station's register; sums of 10^8 such cells fit int64); the
#: error message says "10^10"
MAX_COUNT = 10 ** 10
BLANK, NOT_A_NUMBER = 1, 2
MISSING_CELLS = {BLANK: "blank", NOT_A_NUMBER: "not_a_number"}
NA_MARKERS = frozenset({"na", "n/a", "nan", "null", "none", "-", "--", "\u2013", "\u2014"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: a number written with one separator grouping its thousands: ``.`` or ``,`` (``1.359``, ``12.000``, ``1,208``, which
#: a decimal reading, point or comma, would take for 1.359, 12 or 1.208), a space (plain, no-break or narrow no-break:
#: ``1 208``) or ``'`` (``1'208``)
GROUPED = re.compile(r"[+-]?[0-9]{1,3}([.,'\u0020\u00a0\u202f])[0-9]{3}(\1[0-9]{3})*")


def grouping_problem(cell: str) -> str | None:
    """Why ``cell`` (stripped) is no count when it is a :data:`GROUPED` number (simkit reads no thousands separator,
    and ``.`` or ``,`` may as well be a decimal mark), else None."""
    grouped = GROUPED.fullmatch(cell)
    if grouped is None:
        return None
    decimal = ", or as a decimal" if grouped.group(1) in ".," else ""
    return (f"reads as a count with {shown(grouped.group(1))} grouping its thousands{decimal} (write counts without "
            "separators)")


def parse_cell(cell: str) -> tuple[int, int, str | None]:
    """(value, missing code, why it is no count) of one stripped cell; ``why`` is set for a number that no count
    can be (non-integral, thousands grouped: :func:`grouping_problem`, or above :data:`MAX_COUNT`)."""
    if not cell or cell.lower() in NA_MARKERS:
        return 0, BLANK, None
    if _INTEGER.fullmatch(cell):
        value = int(cell) if len(cell) <= 12 else MAX_COUNT + 1  # int() of a long digit string is slow
    elif GROUPED.fullmatch(cell):
        return 0, 0, grouping_problem(cell)
    elif _DECIMAL.fullmatch(cell):
        number = Decimal(cell)
        if abs(number) > MAX_COUNT:
            value = MAX_COUNT + 1
        elif number != number.to_integral_value():
            return 0, 0, "is not a whole number (counts are integers; 1208.0 is read as 1208)"
        else:
            value = int(number)
    else:
        return 0, NOT_A_NUMBER, None
    if abs(value) > MAX_COUNT:
        return 0, 0, "is above 10^10, more than any station's count"
    return value, 0, None


def _near_duplicate_names(names: np.ndarray) -> tuple[np.ndarray, str]:
    """Which of ``names`` (row,) are spelt otherwise elsewhere in it, the same but for case, surrounding spaces or
    Unicode form (:func:`_loose`): (row,) bool, and the sets as text (``: 'Sofia' / 'sofia'``; the first ten, then
    how many more), "" with none."""
    spellings: dict[str, set[str]] = {}
    for written in np.unique(names.astype(str)):
        spellings.setdefault(_loose(str(written)), set()).add(str(written))
    clashes = [sorted(group) for group in spellings.values() if len(group) > 1]
    near = np.isin(names.astype(str), [written for group in clashes for written in group])
    return near, (": " + first_of(" / ".join(map(repr, group)) for group in clashes)) if clashes else ""


def _loose(column: str) -> str:
    """A column name without case, surrounding spaces or Unicode normalisation: only to name a near miss."""
    return unicodedata.normalize("NFC", column).strip().casefold()


class _Header:
    """A file's columns by name or 0-based position (``index``), each problem an InputError naming the mapping
    (``origin``) and the field."""

    def __init__(self, path: Path, origin: str, header: list[str], delimiter: str):
        self.path, self.origin, self.header, self.delimiter = path, origin, header, delimiter

    def check(self, mapping: ReturnsMapping) -> None:
        """Find every column ``mapping`` names, in the order :func:`load_returns` reads them (count quantities,
        options, then labels)."""
        columns = mapping.columns
        fields = ([(f"columns.{q}", columns[q]) for q in COUNT_QUANTITIES if q in columns]
                  + [(f"options.{name(option)}", spec) for option, spec in mapping.options.items()]
                  + [(f"columns.{q}", columns[q]) for q in ("region", "id", "district") if q in columns])
        for field, spec in fields:
            for ref in _refs(spec):
                self.index(field, ref)

    def index(self, field: str, ref: int | str) -> int:
        if isinstance(ref, int):
            if not ref < len(self.header):
                raise InputError(f"{self.origin}: {field}: position {ref} outside 0..{len(self.header) - 1} "
                                 f"({self.path.name} has {counted(len(self.header), 'column')})"
                                 + delimiter_hint(self.header, self.delimiter, "format.delimiter"))
            return ref
        found = self.header.count(ref)
        if found != 1:
            hint = delimiter_hint(self.header, self.delimiter, "format.delimiter")
            if self.header and self.header[0].startswith(("\ufeff", "\u00ef\u00bb\u00bf")):
                hint = " (the file starts with a UTF-8 byte-order mark: set format.encoding = \"utf-8\")"
            alike = [column for column in self.header if _loose(column) == _loose(ref)]
            if not found and alike:
                hint = (f" (the file has {shown(alike[0])}: the names differ in case, spaces around them or "
                        "Unicode form)")
            problem = (f"no column named {shown(ref)} in {self.path.name}{hint}" if not found else
                       columns_named(ref, found, f"the header of {self.path.name}", remedy="map it by position"))
            raise InputError(f"{self.origin}: {field}: {problem}")
        return self.header.index(ref)


def _refs(spec: ColumnSpec):
    """The column names and positions a column spec reads (a name, a position, a list, ``{sum|diff = [...]}``)."""
    if isinstance(spec, (dict, list)):
        for part in next(iter(spec.values())) if isinstance(spec, dict) else spec:
            yield from _refs(part)
    else:
        yield spec


class _Table(_Header):
    """Column access by spec on parsed CSV rows; count columns give values and a missing code per row. Empty
    fields beyond the header's width (a row ending with the delimiter; blank ones too) are dropped; any other length
    stops."""

    def __init__(self, path: Path, origin: str, header: list[str], rows: list[list[str]], lines: list[int],
                 delimiter: str):
        super().__init__(path, origin, header, delimiter)
        width = len(header)
        rows = [row[:width] if not any(cell.strip() for cell in row[width:]) else row for row in rows]
        for word, wrong in (("fewer", [i for i, row in enumerate(rows) if len(row) < width]),
                            ("more", [i for i, row in enumerate(rows) if len(row) > width])):
            if wrong:
                rows_have = counted(len(wrong), "row") + (" has" if len(wrong) == 1 else " have")
                raise InputError(f"{path}: DATA: {rows_have} {word} than {width} fields "
                                 f"(first at data row {wrong[0] + 1})")
        self.rows, self.lines = rows, lines
        #: field -> missing code per row (0 where the field's cells are all counts)
        self.missing: dict[str, np.ndarray] = {}
        #: field -> the column spec its counts were read from
        self.specs: dict[str, ColumnSpec] = {}

    def text(self, field: str, ref: int | str) -> list[str]:
        col = self.index(field, ref)
        return [row[col].strip() for row in self.rows]

    def counts(self, field: str, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
        """Counts (int64, shape (row,)) of a column spec and the missing code per row (0: a count; else
        :data:`MISSING_CELLS`); values are 0 where missing. Recorded in ``self.missing[field]``."""
        values, missing = self._counts(field, spec)
        self.missing[field], self.specs[field] = missing, spec
        return values, missing

    def missing_cells(self, field: str, codes: tuple[int, ...]) -> str:
        """`` (column 'name': 'S0', 'S1', 'S2', …)``: the columns of ``field`` (read by :meth:`counts`) whose cells
        are missing with one of ``codes`` (:data:`MISSING_CELLS`), each with the first :data:`CELLS_SHOWN` such
        cells as written (distinct, in file order): what a column one off, or a text column, holds; "" without
        ``codes``."""
        parts = []
        for ref in _refs(self.specs[field]) if codes else ():
            column = self.index(field, ref)
            cells = dict.fromkeys(row[column].strip() for row in self.rows)
            bad = [cell for cell in cells if parse_cell(cell)[1] in codes]
            if bad:
                parts.append(f"column {shown(self.header[column])}: "
                             + first_of(map(shown, bad), CELLS_SHOWN, how_many=False))
        return f" ({'; '.join(parts)})" if parts else ""

    def _counts(self, field: str, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(spec, (dict, list)):
            kind, parts = next(iter(spec.items())) if isinstance(spec, dict) else ("sum", spec)
            pieces = [self._counts(field, part) for part in parts]
            values = [v for v, _ in pieces]
            total = values[0] - sum(values[1:]) if kind == "diff" else sum(values)
            missing = np.maximum.reduce([m for _, m in pieces])
            return np.where(missing == 0, total, 0), missing
        return self._parse(field, self.index(field, spec), np.array(self.text(field, spec), dtype=str))

    def _parse(self, field: str, column: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised for plain ASCII digit strings, cell by distinct cell for the rest; a cell no count can be
        (:func:`parse_cell`) stops with its data row, line, ``column`` (0-based) and text."""
        values = np.zeros(cells.size, dtype=np.int64)
        missing = np.zeros(cells.size, dtype=np.uint8)
        width = cells.dtype.itemsize // 4
        plain = np.zeros(cells.size, dtype=bool)
        if width:
            ascii_text = (cells.view(np.uint32).reshape(cells.size, width) < 128).all(axis=1)
            plain = ascii_text & np.char.isdigit(cells) & (np.char.str_len(cells) <= 10)
            values[plain] = cells[plain].astype(np.int64)
        rest = np.flatnonzero(~plain)
        if rest.size:
            distinct, inverse = np.unique(cells[rest], return_inverse=True)
            parsed = [parse_cell(str(cell)) for cell in distinct]
            wrong = np.array([why is not None for _, _, why in parsed])
            if wrong.any():
                first = int(rest[wrong[inverse]].min())
                _, _, why = parse_cell(str(cells[first]))
                raise InputError(f"{self.path}: {field}: data row {first + 1} (line {self.lines[first]:,}), column "
                                 f"{shown(self.header[column])}: {shown(str(cells[first]))} {why}")
            values[rest] = np.array([value for value, _, _ in parsed], dtype=np.int64)[inverse]
            missing[rest] = np.array([code for _, code, _ in parsed], dtype=np.uint8)[inverse]
        return values, missing

    def labels(self, field: str, spec: ColumnSpec) -> np.ndarray:
        refs = spec if isinstance(spec, list) else [spec]
        parts = [self.text(field, ref) for ref in refs]
        return np.array(["/".join(cells) for cells in zip(*parts)], dtype=object)


#: data rows a message lists before ``…``
ROWS_SHOWN = 5
#: cells (or pairs of counts) of one column a message shows before ``…``
CELLS_SHOWN = 3


def data_rows(rows: list[int], count: int | None = None) -> str:
    """``data row 5`` or ``data rows 7, 8, 9, 10, 11, …``: the first :data:`ROWS_SHOWN` of ``rows`` (1-based data
    row numbers), then ``…`` when there are more (:func:`~simkit.errors.first_of`: every message showing rows gives
    their count beside them); ``count``: how many there are when ``rows`` holds only the first of them (a loader
    anomaly's ``rows`` as a summary or a report's provenance keeps them), else ``len(rows)``. Every list of data
    rows a message or table shows goes through here."""
    count = len(rows) if count is None else count
    return f"data row{'s' if count > 1 else ''} {first_of(map(str, rows), ROWS_SHOWN, count, how_many=False)}"


def _rows_at(lines: list[int], rows: list[int]) -> str:
    """``data row 9 (line 10)`` or ``data rows 4, 8``: 0-based parsed ``rows`` as :func:`data_rows` names them, one
    row also by its line in the file (``lines``, each parsed row's)."""
    return data_rows([row + 1 for row in rows]) + (f" (line {lines[rows[0]]:,})" if len(rows) == 1 else "")


def _rows_report(mask: np.ndarray, rows: np.ndarray, rule: str, **extra) -> dict:
    return {"count": int(mask.sum()), "rows": [int(r) for r in rows[mask]], "rule": rule, **extra}


def _field_counts(missing: dict[str, np.ndarray], code: int) -> dict[str, int]:
    """field -> number of rows whose cells in the field have missing code ``code`` (fields with none left out)."""
    counts = {field: int((m == code).sum()) for field, m in missing.items()}
    return {field: count for field, count in counts.items() if count}


def _mapping_of(mapping: ReturnsMapping | None, map_path, preset) -> ReturnsMapping:
    if sum(x is not None for x in (mapping, map_path, preset)) != 1:
        raise InputError("forensics: map_path/preset: give exactly one of a mapping file or a preset",
                         parameters=("map_path", "preset"))
    if map_path is not None:
        return load_mapping(map_path)
    return preset_mapping(preset) if preset is not None else mapping


def _data_path(data: str | Path | None, mapping: ReturnsMapping) -> Path:
    if data is not None:
        return Path(data)
    if mapping.source is None:
        raise InputError(f"{mapping.origin}: source: no DATA file given and the mapping names none")
    found = data_file(mapping.source)
    if found is None:
        raise InputError(f"{mapping.source}: DATA: not found in the shared data folder (set SIMKIT_DATA)")
    return found


def load_returns(data: str | Path | None = None, *, mapping: ReturnsMapping | None = None,
                 map_path: str | Path | None = None, preset: str | None = None,
                 allow_inconsistent: bool = False, allow_field: str | None = None) -> xr.Dataset:
    """Load station-level returns as a Dataset in simkit's schema.

    Give exactly one of ``mapping``, ``map_path`` or ``preset``. With a preset and no ``data``, the file is the
    preset's ``source`` inside the shared data folder (``simkit.data.data_file``). ``allow_inconsistent`` lifts
    the :data:`MAX_INCONSISTENT_SHARE` limit (the rows are still excluded or flagged, and reported); ``allow_field``:
    the config field that sets it, when a config does (the limit's error names that field, not the parameter).

    Returns variables ``registered(station)``, ``ballots(station)``, ``votes(station, option)`` (int64 counts;
    option ``invalid`` last when the source has an invalid count), ``missing(station, option)`` (1 where an
    option's cell is missing), ``flags(station)`` (bit mask, see ``FLAG_BITS``), ``special(station)`` (1 for a
    pseudo-station), coordinates ``region``, ``district`` (when the mapping has one), ``station_id`` and ``row``
    (1-based data row in the file), and attrs ``leader``, ``source``, ``ballots_meaning``, ``anomalies`` (JSON:
    rule -> count, rows and rule; see the module docstring). Raises ``InputError`` (one line) on bad input.
    """
    mapping = _mapping_of(mapping, map_path, preset)
    path = _data_path(data, mapping)
    _Header(path, mapping.origin, read_header(path, returns_format(mapping)), mapping.delimiter).check(mapping)
    header, rows, lines = read_rows(path, mapping)
    if not rows:
        raise InputError(f"{path}: DATA: no data rows (header only)")
    table = _Table(path, mapping.origin, header, rows, lines, mapping.delimiter)
    cols = mapping.columns
    read = {q: table.counts(f"columns.{q}", cols[q]) for q in COUNT_QUANTITIES if q in cols}
    get = {q: values for q, (values, _) in read.items()}
    row_missing = np.maximum.reduce([missing for _, missing in read.values()])
    if "ballots" not in get:
        get["ballots"] = get["valid"] + get["invalid"]
    if "valid" in get and "invalid" not in get:
        get["invalid"] = get["ballots"] - get["valid"]
    if "invalid" in get and "valid" not in get:
        get["valid"] = get["ballots"] - get["invalid"]
    names = list(mapping.options)
    options = [table.counts(f"options.{name(option)}", spec) for option, spec in mapping.options.items()]
    option_votes = np.stack([values for values, _ in options], axis=1)
    option_missing = np.stack([missing != 0 for _, missing in options], axis=1)
    if "invalid" in get:
        names.append(INVALID_OPTION)
        option_votes = np.concatenate([option_votes, get["invalid"][:, None]], axis=1)
        option_missing = np.concatenate([option_missing, np.zeros((len(rows), 1), dtype=bool)], axis=1)
    summed = _totals_columns(read, get, option_votes, option_missing, len(mapping.options))
    problem = subtotals_problem(["registered", "ballots", *mapping.options], *summed,
                                functools.partial(_rows_at, lines))
    if problem:
        raise InputError(f"{path}: DATA: {problem}")
    all_rows = np.arange(1, len(rows) + 1)
    region = table.labels("columns.region", cols["region"]) if "region" in cols else np.full(len(rows), "all",
                                                                                             dtype=object)
    station_id = table.labels("columns.id", cols["id"]) if "id" in cols else all_rows.astype(str).astype(object)
    district = table.labels("columns.district", cols["district"]) if "district" in cols else None
    special = get["special"] != 0 if "special" in get else np.zeros(len(rows), dtype=bool)

    keep = row_missing == 0
    main_fields = {f: m for f, m in table.missing.items() if f.startswith("columns.")}
    option_fields = {f: m for f, m in table.missing.items() if f.startswith("options.")}
    anomalies = {MISSING_CELLS[code]: _rows_report(row_missing == code, all_rows, "excluded",
                                                   fields=_field_counts(main_fields, code))
                 for code in MISSING_CELLS}
    anomalies["missing_option"] = _rows_report(
        keep & option_missing.any(axis=1), all_rows,
        "kept; missing for that option only (0 in votes, 1 in missing); a missing leader count leaves the "
        "station out of the tests", fields={f: int(((m != 0) & keep).sum()) for f, m in option_fields.items()
                                            if ((m != 0) & keep).any()})
    if "id" in cols:
        _, inverse, repeats = np.unique(station_id.astype(str), return_inverse=True, return_counts=True)
        anomalies["duplicate_id"] = _rows_report(repeats[inverse] > 1, all_rows, "kept, reported (ids not unique)")
    registered, ballots = get["registered"][keep], get["ballots"][keep]
    votes, missing_cells = option_votes[keep], option_missing[keep]
    region, station_id, rows_kept, special = region[keep], station_id[keep], all_rows[keep], special[keep]
    blank_region = region == ""
    region = np.where(blank_region, "(none)", region)
    coords = {}
    if district is not None:
        district = np.where(district[keep] == "", "(none)", district[keep])
        _check_districts(mapping.origin, region, district)
        coords[STATION_DISTRICT] = ((STATION,), district.astype(str))
    derived = [get[q][keep] for q in ("registered", "valid", "invalid") if q in get]
    ordinary = ~special
    checks = {
        "zero_register": ordinary & (registered == 0),
        "ballots_gt_registered": ordinary & (ballots > registered),
        "votes_gt_ballots": ordinary & (votes.sum(axis=1) > ballots),
        "negative": ordinary & ((votes < 0).any(axis=1) | (ballots < 0) | np.any([d < 0 for d in derived], axis=0)),
        "totals_row": ordinary & sums_the_others(*summed)[keep],
    }
    flags = np.zeros(keep.sum(), dtype=np.uint8)
    for bit, rule in FLAG_BITS.items():
        flags |= np.where(checks[rule], bit, 0).astype(np.uint8)
        anomalies[rule] = _rows_report(checks[rule], rows_kept, "kept, flagged")
    anomalies["blank_region"] = _rows_report(blank_region, rows_kept, "kept, region '(none)'")
    near, spellings = _near_duplicate_names(region)
    anomalies["region_spelling"] = _rows_report(near, rows_kept, "kept, reported (region names the same but for "
                                                f"case, spaces or Unicode form, read as separate regions{spellings})")
    anomalies["special"] = _rows_report(special, rows_kept, "kept, left out of the tests")

    totals = votes[:, : len(mapping.options)].sum(axis=0)
    leader = mapping.leader or names[int(np.argmax(totals))]
    inconsistent = ~keep
    inconsistent[keep] = ordinary & ((flags != 0) | missing_cells.any(axis=1))
    if not allow_inconsistent:
        compared = {"ballots_gt_registered": (ballots, registered), "votes_gt_ballots": (votes.sum(axis=1), ballots)}
        _check_share(path, inconsistent, len(rows) - int(special.sum()), anomalies, allow_field,
                     _ShareExamples(table, {rule: (a[checks[rule]], b[checks[rule]])
                                            for rule, (a, b) in compared.items()}))
    usable = ordinary & (flags == 0) & (ballots > 0) & ~missing_cells[:, names.index(leader)]
    if not usable.any():
        counts = ", ".join(f"{rule} {item['count']:,}" for rule, item in anomalies.items() if item["count"])
        raise InputError(f"{path}: DATA: no usable station in {len(rows):,} rows ({counts or 'none has ballots'})")
    return xr.Dataset(
        {
            "registered": ((STATION,), registered, {"units": "voters"}),
            "ballots": ((STATION,), ballots, {"units": "ballots", "description": mapping.ballots_meaning}),
            "votes": ((STATION, OPTION), votes, {"units": "ballots"}),
            "missing": ((STATION, OPTION), missing_cells.astype(np.uint8),
                        {"description": "1: the option's cell is missing in the file (votes holds 0 there)"}),
            "flags": ((STATION,), flags, {"flag_masks": list(FLAG_BITS),
                                          "flag_meanings": " ".join(FLAG_BITS.values())}),
            "special": ((STATION,), special.astype(np.uint8),
                        {"description": "1: pseudo-station (abroad, mobile, no register), left out of the tests"}),
        },
        coords={STATION: np.arange(len(registered)), OPTION: names,
                STATION_REGION: ((STATION,), region.astype(str)),
                "station_id": ((STATION,), station_id.astype(str)),
                "row": ((STATION,), rows_kept, {"description": "1-based data row in the source file"}), **coords},
        attrs={"leader": leader, "source": str(path), "ballots_meaning": mapping.ballots_meaning,
               "mapping": mapping.origin, "anomalies": json.dumps(anomalies),
               **({"label": mapping.label} if mapping.label else {})},
    )


def _totals_columns(read: dict, get: dict, option_votes: np.ndarray, option_missing: np.ndarray,
                    n_options: int) -> tuple[np.ndarray, np.ndarray]:
    """The count columns a totals row sums, over every parsed row: values (int64, shape (row, column): register,
    ballots, then the mapping's ``n_options`` options) and missing (bool, same shape; a missing cell reads 0)."""
    ballots_read = ("ballots",) if "ballots" in read else ("valid", "invalid")
    missing = [read["registered"][1] != 0, np.any([read[q][1] != 0 for q in ballots_read], axis=0)]
    values = [get["registered"], get["ballots"]]
    return (np.column_stack(values + [option_votes[:, :n_options]]),
            np.column_stack(missing + [option_missing[:, :n_options]]))


class _ShareExamples:
    """What the rows of one rule hold, for the share limit's message: a field's missing cells (``table``, the
    :class:`_Table` read), or the two counts a flag compares (``compared``: rule -> (left, right), int64 (flagged
    row,) each, as ``left > right``)."""

    def __init__(self, table: _Table, compared: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.table, self.compared = table, compared

    def cells(self, field: str, codes: tuple[int, ...]) -> str:
        return self.table.missing_cells(field, codes)

    def counts(self, rule: str) -> str:
        """`` (1200 > 1000, 950 > 900, …)``: the first :data:`CELLS_SHOWN` pairs a flag compares; "" for another
        rule."""
        if rule not in self.compared:
            return ""
        left, right = self.compared[rule]
        pairs = (f"{a} > {b}" for a, b in zip(left[:CELLS_SHOWN + 1].tolist(), right[:CELLS_SHOWN + 1].tolist()))
        return f" ({first_of(pairs, CELLS_SHOWN, len(left), how_many=False)})"


#: missing-cell rules of the share limit's message: rule, its word, the missing codes whose cells it shows (a blank
#: cell is said by the word)
_SHARE_MISSING = (("blank", "blank", ()), ("not_a_number", "not a number", (NOT_A_NUMBER,)),
                  ("missing_option", "missing", (NOT_A_NUMBER,)))


def _check_share(path: Path, inconsistent: np.ndarray, ordinary_rows: int, anomalies: dict,
                 allow_field: str | None, examples: _ShareExamples) -> None:
    """Stop when more than :data:`MAX_INCONSISTENT_SHARE` of the ordinary rows are excluded, miss an option or
    are flagged (``inconsistent``: bool per parsed row): one line naming the columns involved, the largest
    counts, the largest with what its rows hold (``examples``: a column's first cells that are no number, a flag's
    first compared counts; one only, to keep the line short), the first data rows (:func:`data_rows`), and how to
    test the rest: ``allow_field``, the config field that lifts the limit, or (None) the ``allow_inconsistent``
    parameter."""
    bad = int(inconsistent.sum())
    if bad <= MAX_INCONSISTENT_SHARE * ordinary_rows:
        return
    parts: dict[tuple[str, str], tuple[int, Callable[[], str]]] = {}
    for rule, word, codes in _SHARE_MISSING:
        parts.update({(field, f"{field} {word}"): (count, functools.partial(examples.cells, field, codes))
                      for field, count in anomalies[rule]["fields"].items()})
    parts.update({FLAG_LABELS[rule]: (anomalies[rule]["count"], functools.partial(examples.counts, rule))
                  for rule in FLAG_BITS.values() if anomalies[rule]["count"]})
    largest = sorted(parts.items(), key=lambda item: -item[1][0])[:3]
    fields = ", ".join(dict.fromkeys(field for (field, _), _ in largest))
    where = data_rows((np.flatnonzero(inconsistent) + 1).tolist())
    raise InputError(f"{path}: {fields}: {bad:,} of {ordinary_rows:,} rows ({bad / ordinary_rows:.0%}) are blank "
                     f"or inconsistent, above the {MAX_INCONSISTENT_SHARE:.0%} limit ("
                     + "; ".join([f"{label} {count:,}" + (shown_rows() if not rank else "")
                                  for rank, ((_, label), (count, shown_rows)) in enumerate(largest)] + [where])
                     + "); check the mapping, or "
                     + (f"set {allow_field} = true" if allow_field else "pass allow_inconsistent=True")
                     + " to test the rest", parameters=() if allow_field else ("allow_inconsistent",))


def _check_districts(origin: str, region: np.ndarray, district: np.ndarray) -> None:
    """A district lies in one region: a district name found in two regions is an error naming both."""
    pairs = np.unique(np.stack([district.astype(str), region.astype(str)], axis=1), axis=0)
    names, counts = np.unique(pairs[:, 0], return_counts=True)
    if (counts > 1).any():
        district_name = str(names[counts > 1][0])
        where = [str(r) for r in pairs[pairs[:, 0] == district_name, 1][:2]]
        raise InputError(f"{origin}: columns.district: district {shown(district_name)} lies in regions "
                         f"{shown(where[0])} and {shown(where[1])} (map the district as [region, district] to name "
                         "it within its region)")


def anomaly_report(ds: xr.Dataset) -> dict[str, dict]:
    """Inconsistent-row report of a loaded Dataset: rule -> {count, rows, rule, ...}."""
    return json.loads(ds.attrs.get("anomalies", "{}"))
