"""Stations, registers and regions: synthetic (drawn once from the electorate's seed) or read from CSV."""
from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from simkit import streams
from simkit.config.core import Config, CsvElectorate, SyntheticElectorate
from simkit.config.regions import check_regions, region_keys
from simkit.config.inference import STATISTIC_GROUPS
from simkit.config.timeline import TIMELINE_TURNOUT
from simkit.errors import InputError, columns_named, counted, listed, shown
from simkit.electorate.read import (TextFormat, delimiter_hint, read_header, read_records, row_cells,
                                   width_problem)
from simkit.electorate.returns import MISSING_CELLS, load_returns, parse_cell
from simkit.electorate.totals import check_no_totals_row
from simkit.model.rounding import largest_remainder
from simkit.types import MAX_REGISTER


@dataclass(frozen=True)
class Electorate:
    """The register. ``registered`` (station,) int64 voters; ``region_index`` (station,) int64 index into
    ``region_names``; ``station_ids`` (station,) str."""

    registered: np.ndarray
    region_index: np.ndarray
    region_names: tuple[str, ...]
    station_ids: np.ndarray

    @property
    def n_stations(self) -> int:
        return len(self.registered)

    @functools.cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of everything a run's draws read of the electorate that is not in its config text: each
        station's register, region and id, and the region names, in order (computed once). A CSV electorate edited
        since a run changes it; a synthetic one (drawn from the config's own seed) does not, unless the code that
        draws it does."""
        digest = hashlib.sha256()
        for array in (self.registered, self.region_index):
            digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
        digest.update(json.dumps([list(self.region_names), [str(i) for i in self.station_ids]]).encode())
        return digest.hexdigest()

    def region_registered(self) -> np.ndarray:
        """Voters on the register per region, (region,) int64."""
        return np.bincount(self.region_index, weights=self.registered,
                           minlength=len(self.region_names)).astype(np.int64)


def electorate_of(cfg: Config) -> Electorate:
    """The electorate of ``cfg``, built, every region the config names checked against it (an electorate file's
    regions are known only once it is read: :func:`simkit.config.regions.check_regions`)."""
    electorate = build_electorate(cfg.electorate)
    check_regions(cfg, electorate.region_names)
    return electorate


#: the config's tables of published turnouts by region, by the evidence that reads them (groups of
#: ``[inference] statistics``): the count's regional turnouts and the timeline's
PUBLISHED_TURNOUTS = {"regional_turnout": "observed.regional_turnout", "timeline": TIMELINE_TURNOUT}


def voterless_turnouts(cfg: Config, electorate: Electorate, evidence: Collection[str]) -> list[str]:
    """Problems (``field.region: problem``, tables in :data:`PUBLISHED_TURNOUTS` order) of the turnouts ``cfg``
    publishes, in the tables of the ``evidence`` read (keys of :data:`PUBLISHED_TURNOUTS`; the other statistic groups
    read no such table), of regions whose stations have no voters on ``electorate``'s register: such a region has no
    turnout to compare (its simulated turnout would be 0 / 0). The one check of the inference, the count matching and
    the timeline. ValueError for evidence that is no group of :data:`~simkit.config.inference.STATISTIC_GROUPS` (a
    mistyped name would check nothing)."""
    unknown = [read for read in evidence if read not in STATISTIC_GROUPS]
    if unknown:
        raise ValueError(f"evidence {listed(unknown)}: not statistic groups (one of {', '.join(STATISTIC_GROUPS)})")
    empty = [name for name, registered in zip(electorate.region_names, electorate.region_registered())
             if registered == 0]
    published = {field: set(region_keys(cfg, field)) for read, field in PUBLISHED_TURNOUTS.items() if read in evidence}
    return [f"{field}.{name}: the stations of region {name} have no voters on the register: it has no turnout to "
            "compare"
            for field, regions in published.items() for name in empty if name in regions]


#: how many voters a station's register may differ from its counterpart's: rounding a register to whole voters
#: moves it by less than one
REGISTER_ROUNDING = 1


def observed_returns(cfg: Config, evidence: Collection[str]) -> xr.Dataset | None:
    """The returns file of ``[observed.stations]``, loaded as ``simkit forensics`` loads it
    (:func:`~simkit.electorate.returns.load_returns`), when the ``evidence`` read (statistic groups) includes
    ``stations`` and the statistics are computed from that file; None otherwise (given as values, or not read). Read
    once per run: the electorate check (:func:`check_station_registers`) and the observed statistics take the
    table."""
    stations = cfg.observed.stations
    if "stations" not in evidence or stations is None or stations.values:
        return None
    return load_returns(stations.returns, map_path=stations.map, preset=stations.preset,
                        allow_inconsistent=stations.allow_inconsistent,
                        allow_field="observed.stations.allow_inconsistent")


def check_station_registers(electorate: Electorate, returns: xr.Dataset | None) -> None:
    """InputError naming the returns file of ``[observed.stations]`` (``file: observed.stations.returns: problem``)
    when ``returns``, its table (:func:`observed_returns`), has stations that are not ``electorate``'s: the station
    statistics are computed on the returns and on simulations of the electorate, and most of them depend on station
    sizes. Stations without voters are left out on both sides (no statistic reads them); :func:`register_mismatch`
    compares the rest. Nothing to check without a table (the statistics given as values, or not read)."""
    if returns is None:
        return
    anomalies = json.loads(returns.attrs["anomalies"])
    unread = sum(anomalies[rule]["count"] for rule in MISSING_CELLS.values())
    problem = register_mismatch(np.asarray(returns["registered"].values), electorate.registered, unread)
    if problem:
        raise InputError(f"{returns.attrs['source']}: observed.stations.returns: {problem}; the station statistics "
                         "are compared with simulations of the electorate's stations: give the electorate the "
                         "returns' own registers ([electorate] source = \"csv\" on this file)")


def register_mismatch(returns: np.ndarray, electorate: np.ndarray, unread: int = 0) -> str | None:
    """Why the registers of a returns file's stations, ``returns`` (station,) voters, are not the ``electorate``'s
    (station,) voters, or None. Stations without voters are left out of both. Each of the returns' stations must
    have an electorate station of its own whose register is within :data:`REGISTER_ROUNDING` voters (matched in
    increasing order, which pairs the most stations), and every electorate station must be matched, but for up to
    ``unread`` of them: the file's rows that the loader left out for missing cells, whose registers it does not
    know."""
    returns = np.sort(returns[returns > 0])
    electorate = np.sort(electorate[electorate > 0])
    unmatched, skipped, j = 0, 0, 0
    for register in returns:
        while j < len(electorate) and electorate[j] < register - REGISTER_ROUNDING:
            j, skipped = j + 1, skipped + 1
        if j < len(electorate) and electorate[j] <= register + REGISTER_ROUNDING:
            j += 1
        else:
            unmatched += 1
    skipped += len(electorate) - j
    if not unmatched and skipped <= unread:
        return None
    here = f"its {counted(len(returns), 'station')} with voters (median register {_median(returns)})"
    there = f"the electorate's {len(electorate):,} (median {_median(electorate)})"
    if len(electorate) - len(returns) not in range(unread + 1):
        left = f" and {unread:,} rows left out for missing cells" if unread else ""
        return f"{here}{left}, {there}"
    return (f"{unmatched:,} of {here} have no electorate station within {counted(REGISTER_ROUNDING, 'voter')} of "
            f"their register; {there}")


def _median(registers: np.ndarray) -> str:
    """The median of ``registers`` (station,) in whole voters, for a message (``none`` without stations)."""
    return f"{np.median(registers):,.0f}" if len(registers) else "none"


def build_electorate(spec: SyntheticElectorate | CsvElectorate) -> Electorate:
    if isinstance(spec, SyntheticElectorate):
        return synthetic_electorate(spec)
    return csv_electorate(spec)


def synthetic_electorate(spec: SyntheticElectorate) -> Electorate:
    """Regional registers by largest remainder of the national register; station counts as given or
    ∝ register share; station sizes log-normal (SD ``station_size_sd``), rescaled to the region's
    register exactly, each at least one voter."""
    region_registered, stations = spec.region_sizes()  # validated: every region has a voter per station
    rng = streams.generator(spec.seed, streams.ELECTORATE)
    sizes, region_index = [], []
    for index, (voters, n) in enumerate(zip(region_registered, stations)):
        weights = rng.lognormal(0.0, spec.station_size_sd, size=n)
        sizes.append(1 + largest_remainder(int(voters - n), weights))
        region_index.append(np.full(n, index, dtype=np.int64))
    registered = np.concatenate(sizes)
    ids = np.array([f"{spec.regions[r].name}-{i}" for r, n in enumerate(stations) for i in range(1, n + 1)])
    return Electorate(registered, np.concatenate(region_index),
                      tuple(region.name for region in spec.regions), ids)


def csv_electorate(spec: CsvElectorate) -> Electorate:
    """Read one station per row; every row must have a whole-number register (0 included). The file is read as a
    returns file is (:func:`simkit.electorate.read.read_records`: plain, gzip or a ZIP of one file, blank lines
    skipped); a row's number in a message is the file's line it starts on (the header's is 1 when no blank line
    is above it)."""
    path = Path(spec.path)
    fmt = TextFormat(spec.delimiter, spec.encoding, file="electorate.path", encoding_field="electorate.encoding",
                     member_field=None, noun="register file")
    _check_columns(path, spec, read_header(path, fmt))  # before the rows: a file of other text is not read whole
    header, cells, lines = read_records(path, fmt)
    if not cells:
        raise InputError(f"{path}: electorate.path: no data rows")
    rows = [_record(header, row) for row in cells]
    _check_row_lengths(path, rows, lines, header)
    registered = _registers(path, rows, lines, header, spec.registered_column)
    labels = (_region_labels(path, rows, lines, header, spec.region_column) if spec.region_column
              else ["all"] * len(rows))
    region_names, region_index = np.unique(np.array(labels), return_inverse=True)
    ids = (_station_ids(path, rows, lines, header, spec.station_column) if spec.station_column
           else np.array([str(i) for i in range(1, len(rows) + 1)]))
    return Electorate(registered, region_index.astype(np.int64), tuple(str(n) for n in region_names), ids)


def _record(header: list[str], cells: list[str]) -> dict:
    """A row's ``cells`` keyed by the ``header``'s column names as :class:`csv.DictReader` keys them: a name given
    twice holds its last cell, the cells beyond the header are a list under None, the columns past a short row's
    end hold None."""
    record: dict = dict(zip(header, cells))
    if len(cells) > len(header):
        record[None] = cells[len(header):]
    for column in header[len(cells):]:
        record[column] = None
    return record


def _check_columns(path: Path, spec: CsvElectorate, header: list[str]) -> None:
    """Each column the config names is in ``header`` exactly once: ``csv.DictReader`` would keep the last of two
    columns of one name, silently. A missing one is named beside the columns the header has (a wrong delimiter
    reads the whole header as one column)."""
    for field in ("registered_column", "region_column", "station_column"):
        column = getattr(spec, field)
        if column is None:
            continue
        if column not in header:
            raise InputError(f"{path}: electorate.{field}: no column {shown(column)} (the header's columns: "
                             f"{listed(header)}){delimiter_hint(header, spec.delimiter, 'electorate.delimiter')}")
        if header.count(column) > 1:
            raise InputError(f"{path}: electorate.{field}: {columns_named(column, header.count(column))}")


def _check_row_lengths(path: Path, rows: list[dict], lines: list[int], header: list[str]) -> None:
    """Refuse a row with a cell beyond the ``header``, a blank one included: an unquoted ``1,000`` shifts every
    later cell of its row, and under ``id,registered,note`` the row ``b,1,000,`` (a blank note) would read a
    register of 1 and a note of 000. Rows that end with blank cells the header lacks fit when they are a delimiter
    each row ends with (:func:`_trailing_delimiters`); a file whose lines all end with one, the header's included,
    has an unnamed column, which fits. Told first: the first row with a non-blank cell beyond the header
    (:func:`simkit.electorate.read.width_problem`); then, the blank cells beyond it differing between rows, the
    first row whose number of them differs from most rows'; or a file's one row with any. A short row is told
    where it leaves a cell blank."""
    beyond = [row.get(None) or [] for row in rows]
    if _trailing_delimiters(beyond):
        return
    for number, row, cells in zip(lines, rows, beyond):
        if any(cell.strip() for cell in cells):
            raise InputError(f"{path}: electorate.path: {width_problem(row, header, number)}")
    counts = [len(cells) for cells in beyond]
    if not any(counts):
        return
    if len(rows) == 1:
        raise InputError(f"{path}: electorate.path: {width_problem(rows[0], header, lines[0])}")
    usual = max(counts, key=counts.count)  # the most rows' (the first such on a tie)
    number, count = next((number, count) for number, count in zip(lines, counts) if count != usual)
    raise InputError(f"{path}: electorate.path: row {number} ends with {counted(count, 'blank cell')} beyond the "
                     f"header's {len(header)} columns, most rows with {usual}: rows end with different numbers of "
                     f"delimiters (an unquoted thousands separator in a row whose last column is blank?)")


def _trailing_delimiters(beyond: list[list[str]]) -> bool:
    """Whether the cells beyond the header of each row (``beyond``, one list per row) are a delimiter (or several)
    ending each data row that the header lacks, as some exports write them: all blank, the same number in every
    row, two rows at least, save that the last line may lack them. One row alone cannot tell them from an unquoted
    ``1,000`` that left the row's last column blank; nor can rows that differ otherwise."""
    holding = beyond if beyond[-1] else beyond[:-1]
    return (len(holding) > 1 and all(holding) and len({len(cells) for cells in holding}) == 1
            and not any(cell.strip() for cells in holding for cell in cells))


def _shortness(row: dict, header: list[str]) -> str:
    """`` (the row has K cells, the header M columns)`` for a row shorter than the ``header``
    (:func:`simkit.electorate.read.row_cells`), else ``""``: said beside the blank cell it causes."""
    cells = row_cells(row, header)
    if cells >= len(header):
        return ""
    return f" (the row has {counted(cells, 'cell')}, the header {len(header)} columns)"


def _region_labels(path: Path, rows: list[dict], lines: list[int], header: list[str], column: str) -> list[str]:
    """Each row's region name from ``column``; a blank or missing cell (a short row) is refused, not read as a
    region named ``""`` (or, missing, crashing the sort of region names), and so is one name written in two Unicode
    forms (``Île`` composed in one row, I and a combining accent in another: two regions that print alike)."""
    forms: dict[str, tuple[str, int]] = {}  # each name's NFC form → (the name as written, its first row)
    for number, row in zip(lines, rows):
        label = row[column] or ""
        if not label.strip():
            raise InputError(f"{path}: electorate.region_column: row {number}: blank region{_shortness(row, header)}")
        written, first = forms.setdefault(unicodedata.normalize("NFC", label), (label, number))
        if written != label:
            raise InputError(f"{path}: electorate.region_column: rows {first} and {number} write one region in two "
                             f"Unicode forms, {ascii(written)} and {ascii(label)} (they print alike): one region or "
                             "two? write them alike")
    return [row[column] for row in rows]


def _station_ids(path: Path, rows: list[dict], lines: list[int], header: list[str], column: str) -> np.ndarray:
    """Each row's station id (row,) str from ``column``, not blank and unique: ids index the ``station`` dimension
    of a result."""
    first_row: dict[str, int] = {}
    for number, row in zip(lines, rows):
        station = row[column] or ""
        if not station.strip():
            raise InputError(f"{path}: electorate.station_column: row {number}: blank station id{_shortness(row, header)}")
        if station in first_row:
            raise InputError(f"{path}: electorate.station_column: rows {first_row[station]} and {number} hold the "
                             f"same station id {shown(station)} (ids must be unique)")
        first_row[station] = number
    return np.array(list(first_row))


def _registers(path: Path, rows: list[dict], lines: list[int], header: list[str], column: str) -> np.ndarray:
    """Each row's register (row,) int64 from ``column``, a whole number >= 0 read as a returns file's count is
    (:func:`~simkit.electorate.returns.parse_cell`: ASCII digits, or an integral decimal such as ``812.0``, as pandas
    writes a column with a gap, so that a returns file serves as its own electorate; ``1.359``, which may group
    thousands, refused), 0 included (a closed station, or one nobody is registered at, draws no ballots); together
    above 0 and at most :data:`MAX_REGISTER` voters (the synthetic register's bound: every sum exact in int64 and
    float64)."""
    registered = np.empty(len(rows), dtype=np.int64)
    total = 0
    for index, (number, row) in enumerate(zip(lines, rows)):
        text = (row[column] or "").strip()
        value, missing, why = parse_cell(text)
        if missing or why or value < 0:
            raise InputError(f"{path}: electorate.registered_column: row {number}: register must be a whole number "
                             f"of voters, got {shown(text)}{f' ({why})' if why else ''}{_shortness(row, header)}")
        total += value
        if total > MAX_REGISTER:
            raise InputError(f"{path}: electorate.registered_column: row {number}: the register passes 10^10 "
                             "voters here, the most simkit sums exactly")
        registered[index] = value
    if total == 0:
        raise InputError(f"{path}: electorate.registered_column: every register is 0 (no voters to draw)")
    check_no_totals_row(f"{path}: electorate.registered_column", [column], registered[:, None], lines)
    return registered
