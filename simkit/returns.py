"""Loading real station-level returns into simkit's Dataset schema (see ``simkit.schema``).

A *mapping* (a small TOML file, or one of the presets in ``simkit/presets/``) says how to read a CSV file
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

Row rules (every rule is reported in ``attrs["anomalies"]`` with counts and 1-based data-row numbers):

- **excluded** at load: a blank or non-integer cell in any used count column (``blank``);
- **special** (``special`` column not 0: voters abroad, mobile boxes, stations without a register): kept in the
  Dataset with ``special = 1``, reported as their own class, never flagged, and left out of every forensic test;
- **kept and flagged** (ordinary stations only) in the ``flags`` bit mask: ``zero_register`` (registered = 0),
  ``ballots_gt_registered``, ``votes_gt_ballots`` (options + invalid exceed ballots), ``negative`` (a derived count below zero).
  Forensic tests drop flagged stations and say how many (``simkit.forensics.election``).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simkit.data import data_file
from simkit.errors import InputError
from simkit.schema import OPTION, STATION, STATION_DISTRICT, STATION_REGION

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESETS = ("russia-2011", "russia-2018", "poland-2025-r1", "poland-2025-r2", "albania-2013", "spain-2019-11",
           "mexico-2012", "bulgaria-2021-07")

#: bit of the ``flags`` variable -> rule name (kept-and-flagged rows)
FLAG_BITS = {1: "zero_register", 2: "ballots_gt_registered", 4: "votes_gt_ballots", 8: "negative"}
INVALID_OPTION = "invalid"

ColumnSpec = Any  # int | str | list | {"sum": [...]} | {"diff": [...]}


@dataclass(frozen=True)
class ReturnsMapping:
    """How to read one returns file. ``columns`` maps quantity -> column spec; ``options`` name -> spec."""

    origin: str
    columns: dict[str, ColumnSpec]
    options: dict[str, ColumnSpec]
    delimiter: str = ","
    encoding: str = "utf-8"
    member: str | None = None
    leader: str | None = None
    source: str | None = None
    ballots_meaning: str = "ballots cast as published"


def load_mapping(path: str | Path) -> ReturnsMapping:
    """Read and validate a mapping TOML file; errors are ``InputError("path: field: problem")``."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: map: file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: map: not valid TOML ({err})") from None
    return _mapping_from_dict(raw, str(path))


def preset_mapping(name: str) -> ReturnsMapping:
    """The mapping of a preset (one of ``PRESETS``)."""
    if name not in PRESETS:
        raise InputError(f"--preset: {name}: unknown preset (choose from {', '.join(PRESETS)})")
    return load_mapping(PRESET_DIR / f"{name}.toml")


def _mapping_from_dict(raw: dict, origin: str) -> ReturnsMapping:
    known = {"source", "ballots_meaning", "leader", "format", "columns", "options"}
    for key in raw:
        if key not in known:
            raise InputError(f"{origin}: {key}: unknown key (expected one of {', '.join(sorted(known))})")
    fmt = raw.get("format", {})
    for key in fmt:
        if key not in {"delimiter", "encoding", "member"}:
            raise InputError(f"{origin}: format.{key}: unknown key")
    columns = dict(raw.get("columns", {}))
    for key in columns:
        if key not in {"registered", "ballots", "valid", "invalid", "region", "district", "special", "id"}:
            raise InputError(f"{origin}: columns.{key}: unknown quantity")
    if "registered" not in columns:
        raise InputError(f"{origin}: columns.registered: required")
    if "ballots" not in columns and not {"valid", "invalid"} <= columns.keys():
        raise InputError(f"{origin}: columns.ballots: required unless both valid and invalid are given")
    options = dict(raw.get("options", {}))
    if not options:
        raise InputError(f"{origin}: options: at least one option column is required")
    if INVALID_OPTION in options:
        raise InputError(f"{origin}: options.invalid: reserved name (map it as columns.invalid)")
    leader = raw.get("leader")
    if leader is not None and leader not in options:
        raise InputError(f"{origin}: leader: {leader!r} is not one of the options")
    return ReturnsMapping(origin=origin, columns=columns, options=options, delimiter=fmt.get("delimiter", ","),
                          encoding=fmt.get("encoding", "utf-8"), member=fmt.get("member"), leader=leader,
                          source=raw.get("source"), ballots_meaning=raw.get("ballots_meaning",
                                                                            "ballots cast as published"))


def _read_rows(path: Path, mapping: ReturnsMapping) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the CSV (inside the ZIP when ``path`` ends with ``.zip``)."""
    if not path.is_file():
        raise InputError(f"{path}: DATA: file not found")
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                member = mapping.member or (names[0] if len(names) == 1 else None)
                if member not in names:
                    raise InputError(f"{path}: format.member: choose one of {', '.join(names)}")
                text = archive.read(member).decode(mapping.encoding)
        elif path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding=mapping.encoding) as stream:
                text = stream.read()
        else:
            text = path.read_text(encoding=mapping.encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise InputError(f"{path}: format.encoding: cannot decode ({err})") from None
    except zipfile.BadZipFile:
        raise InputError(f"{path}: DATA: not a valid ZIP archive") from None
    except (gzip.BadGzipFile, EOFError):
        raise InputError(f"{path}: DATA: not a valid gzip file") from None
    reader = csv.reader(io.StringIO(text), delimiter=mapping.delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError(f"{path}: DATA: empty file")
    rows = [row for row in reader if row]
    return header, rows


class _Table:
    """Column access by spec on parsed CSV rows; integer columns record blank/non-integer cells."""

    def __init__(self, path: Path, origin: str, header: list[str], rows: list[list[str]]):
        self.path, self.origin, self.header = path, origin, header
        width = len(header)
        short = [i for i, row in enumerate(rows) if len(row) < width]
        if short:
            raise InputError(f"{path}: DATA: {len(short)} rows have fewer than {width} fields "
                             f"(first at data row {short[0] + 1})")
        self.rows = rows
        self.bad = np.zeros(len(rows), dtype=bool)

    def index(self, field: str, ref: int | str) -> int:
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise InputError(f"{self.origin}: {field}: a column is a name or a 0-based position, got {ref!r}")
        if isinstance(ref, int):
            if not 0 <= ref < len(self.header):
                raise InputError(f"{self.origin}: {field}: position {ref} outside 0..{len(self.header) - 1}")
            return ref
        if ref not in self.header:
            raise InputError(f"{self.origin}: {field}: no column named {ref!r} in {self.path.name}")
        return self.header.index(ref)

    def text(self, field: str, ref: int | str) -> np.ndarray:
        col = self.index(field, ref)
        return np.array([row[col].strip() for row in self.rows], dtype=object)

    def integers(self, field: str, spec: ColumnSpec) -> np.ndarray:
        """Counts (int64, shape (row,)) for a column spec; blank cells become 0 and mark the row bad."""
        if isinstance(spec, dict):
            if len(spec) != 1 or next(iter(spec)) not in {"sum", "diff"}:
                raise InputError(f"{self.origin}: {field}: use {{sum = [...]}} or {{diff = [...]}}")
            kind, parts = next(iter(spec.items()))
            if not isinstance(parts, list) or len(parts) < (2 if kind == "diff" else 1):
                raise InputError(f"{self.origin}: {field}.{kind}: needs a list of columns")
            values = [self.integers(field, part) for part in parts]
            return values[0] - sum(values[1:]) if kind == "diff" else sum(values)
        if isinstance(spec, list):
            return self.integers(field, {"sum": spec})
        cells = np.array(self.text(field, spec), dtype=str)
        ok = np.char.isdigit(cells)
        self.bad |= ~ok
        return np.where(ok, cells, "0").astype(np.int64)

    def labels(self, field: str, spec: ColumnSpec) -> np.ndarray:
        refs = spec if isinstance(spec, list) else [spec]
        parts = [self.text(field, ref) for ref in refs]
        return np.array(["/".join(cells) for cells in zip(*parts)], dtype=object)


def _rows_report(mask: np.ndarray, rows: np.ndarray) -> dict:
    return {"count": int(mask.sum()), "rows": [int(r) for r in rows[mask]]}


def load_returns(data: str | Path | None = None, *, mapping: ReturnsMapping | None = None,
                 map_path: str | Path | None = None, preset: str | None = None) -> xr.Dataset:
    """Load station-level returns as a Dataset in simkit's schema.

    Give exactly one of ``mapping``, ``map_path`` or ``preset``. With a preset and no ``data``, the file is the
    preset's ``source`` inside the shared data folder (``simkit.data.data_file``).

    Returns variables ``registered(station)``, ``ballots(station)``, ``votes(station, option)`` (int64 counts;
    option ``invalid`` last when the source has an invalid count), ``flags(station)`` (bit mask, see
    ``FLAG_BITS``), ``special(station)`` (1 for a pseudo-station), coordinates ``region``, ``district`` (when
    the mapping has one), ``station_id`` and ``row`` (1-based data row in the file), and attrs
    ``leader``, ``source``, ``ballots_meaning``, ``anomalies`` (JSON: rule -> count and rows).
    """
    if sum(x is not None for x in (mapping, map_path, preset)) != 1:
        raise InputError("forensics: --map/--preset: give exactly one of a mapping file or a preset")
    if map_path is not None:
        mapping = load_mapping(map_path)
    elif preset is not None:
        mapping = preset_mapping(preset)
    if data is None:
        if mapping.source is None:
            raise InputError(f"{mapping.origin}: source: no DATA file given and the mapping names none")
        found = data_file(mapping.source)
        if found is None:
            raise InputError(f"{mapping.source}: DATA: not found in the shared data folder (set SIMKIT_DATA)")
        data = found
    path = Path(data)
    header, rows = _read_rows(path, mapping)
    table = _Table(path, mapping.origin, header, rows)
    cols = mapping.columns
    get = {q: table.integers(f"columns.{q}", cols[q]) for q in ("registered", "ballots", "valid", "invalid")
           if q in cols}
    if "ballots" not in get:
        get["ballots"] = get["valid"] + get["invalid"]
    if "valid" in get and "invalid" not in get:
        get["invalid"] = get["ballots"] - get["valid"]
    if "invalid" in get and "valid" not in get:
        get["valid"] = get["ballots"] - get["invalid"]
    names = list(mapping.options)
    option_votes = np.stack([table.integers(f"options.{name}", spec) for name, spec in mapping.options.items()],
                            axis=1)
    if "invalid" in get:
        names.append(INVALID_OPTION)
        option_votes = np.concatenate([option_votes, get["invalid"][:, None]], axis=1)
    row_numbers = np.arange(1, len(rows) + 1)
    region = table.labels("columns.region", cols["region"]) if "region" in cols else np.full(len(rows), "all",
                                                                                             dtype=object)
    station_id = (table.labels("columns.id", cols["id"]) if "id" in cols else row_numbers.astype(str).astype(object))
    district = table.labels("columns.district", cols["district"]) if "district" in cols else None
    special = (table.integers("columns.special", cols["special"]) != 0 if "special" in cols
               else np.zeros(len(rows), dtype=bool))

    keep = ~table.bad
    anomalies = {"blank": {**_rows_report(table.bad, row_numbers), "rule": "excluded"}}
    registered, ballots = get["registered"][keep], get["ballots"][keep]
    votes, region, station_id, row_numbers = option_votes[keep], region[keep], station_id[keep], row_numbers[keep]
    special = special[keep]
    blank_region = region == ""
    region = np.where(blank_region, "(none)", region)
    coords = {}
    if district is not None:
        district = np.where(district[keep] == "", "(none)", district[keep])
        _check_districts(mapping.origin, region, district)
        coords[STATION_DISTRICT] = ((STATION,), district.astype(str))
    derived_negative = np.zeros(keep.sum(), dtype=bool)
    if "valid" in get:
        derived_negative = (get["valid"][keep] < 0) | (get["invalid"][keep] < 0)
    ordinary = ~special
    checks = {
        "zero_register": ordinary & (registered == 0),
        "ballots_gt_registered": ordinary & (ballots > registered),
        "votes_gt_ballots": ordinary & (votes.sum(axis=1) > ballots),
        "negative": ordinary & (derived_negative | (votes < 0).any(axis=1) | (ballots < 0)),
    }
    flags = np.zeros(keep.sum(), dtype=np.uint8)
    for bit, name in FLAG_BITS.items():
        flags |= np.where(checks[name], bit, 0).astype(np.uint8)
        anomalies[name] = {**_rows_report(checks[name], row_numbers), "rule": "kept, flagged"}
    anomalies["blank_region"] = {**_rows_report(blank_region, row_numbers), "rule": "kept, region '(none)'"}
    anomalies["special"] = {**_rows_report(special, row_numbers), "rule": "kept, left out of the tests"}

    totals = votes[:, : len(mapping.options)].sum(axis=0)
    leader = mapping.leader or names[int(np.argmax(totals))]
    return xr.Dataset(
        {
            "registered": ((STATION,), registered, {"units": "voters"}),
            "ballots": ((STATION,), ballots, {"units": "ballots", "description": mapping.ballots_meaning}),
            "votes": ((STATION, OPTION), votes, {"units": "ballots"}),
            "flags": ((STATION,), flags, {"flag_masks": list(FLAG_BITS),
                                          "flag_meanings": " ".join(FLAG_BITS.values())}),
            "special": ((STATION,), special.astype(np.uint8),
                        {"description": "1: pseudo-station (abroad, mobile, no register), left out of the tests"}),
        },
        coords={STATION: np.arange(len(registered)), OPTION: names,
                STATION_REGION: ((STATION,), region.astype(str)),
                "station_id": ((STATION,), station_id.astype(str)),
                "row": ((STATION,), row_numbers, {"description": "1-based data row in the source file"}), **coords},
        attrs={"leader": leader, "source": str(path), "ballots_meaning": mapping.ballots_meaning,
               "mapping": mapping.origin, "anomalies": json.dumps(anomalies)},
    )


def _check_districts(origin: str, region: np.ndarray, district: np.ndarray) -> None:
    """A district lies in one region: a district name found in two regions is an error naming both."""
    pairs = np.unique(np.stack([district.astype(str), region.astype(str)], axis=1), axis=0)
    names, counts = np.unique(pairs[:, 0], return_counts=True)
    if (counts > 1).any():
        name = str(names[counts > 1][0])
        where = [str(r) for r in pairs[pairs[:, 0] == name, 1][:2]]
        raise InputError(f"{origin}: columns.district: district {name!r} lies in regions {where[0]!r} and "
                         f"{where[1]!r} (map the district as [region, district] to name it within its region)")


def anomaly_report(ds: xr.Dataset) -> dict[str, dict]:
    """Inconsistent-row report of a loaded Dataset: rule -> {count, rows, rule}."""
    return json.loads(ds.attrs.get("anomalies", "{}"))
