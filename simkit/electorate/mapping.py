"""Returns mappings: how to read one returns file, parsed from TOML and checked field by field.

The format is described in :mod:`simkit.electorate.returns`. Every problem is an ``InputError`` of one line,
``MAP: dotted.field: problem``, that shows at most the offending value (shortened by :func:`simkit.errors.shown`).
"""
from __future__ import annotations

import codecs
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simkit.errors import InputError, listed, name, shown

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESETS = ("russia-2011", "russia-2018", "poland-2025-r1", "poland-2025-r2", "albania-2013", "spain-2019-11",
           "mexico-2012", "bulgaria-2021-07")
INVALID_OPTION = "invalid"
#: count quantities (summed or differenced columns allowed) and label quantities (a column or a list joined by "/")
COUNT_QUANTITIES = ("registered", "ballots", "valid", "invalid", "special")
LABEL_QUANTITIES = ("region", "district", "id")
TOP_KEYS = ("source", "ballots_meaning", "leader", "label", "format", "columns", "options")
FORMAT_KEYS = ("delimiter", "encoding", "member")

ColumnSpec = Any  # int | str | list[int | str] | {"sum": [...]} | {"diff": [...]}


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
    label: str | None = None


def load_mapping(path: str | Path) -> ReturnsMapping:
    """Read and check a mapping TOML file; errors are ``InputError("path: field: problem")``."""
    return mapping_from_dict(read_map_toml(Path(path)), str(path))


def read_map_toml(path: Path) -> dict:
    """The parsed TOML of a map file (a returns mapping, a timeline map): UTF-8, a leading byte-order mark
    allowed; InputError ``PATH: map: problem`` when it cannot be read or parsed."""
    if path.is_dir():
        raise InputError(f"{path}: map: is a folder, not a mapping file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: map: file not found") from None
    except OSError as err:
        raise InputError(f"{path}: map: cannot be read ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is allowed and dropped
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: map: not UTF-8 text (byte {err.start}); save the mapping as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: map: not valid TOML ({str(err).splitlines()[0]})") from None
    except RecursionError:
        raise InputError(f"{path}: map: not valid TOML (nested too deeply)") from None
    return raw


def preset_mapping(name: str) -> ReturnsMapping:
    """The mapping of a preset (one of ``PRESETS``)."""
    if name not in PRESETS:
        raise InputError(f"preset: {shown(name)}: unknown name (choose from {', '.join(PRESETS)})",
                         parameters=("preset",))
    return load_mapping(PRESET_DIR / f"{name}.toml")


def mapping_from_dict(raw: dict, origin: str) -> ReturnsMapping:
    """A checked :class:`ReturnsMapping` from parsed TOML; ``origin`` names the file in errors."""
    _keys(raw, TOP_KEYS, origin, "")
    fmt = _table(raw, "format", origin)
    _keys(fmt, FORMAT_KEYS, origin, "format.")
    columns = _table(raw, "columns", origin)
    _keys(columns, COUNT_QUANTITIES + LABEL_QUANTITIES, origin, "columns.", noun="quantity")
    for quantity, spec in columns.items():
        _check_spec(spec, origin, f"columns.{quantity}", counts=quantity in COUNT_QUANTITIES)
    if "registered" not in columns:
        raise InputError(f"{origin}: columns.registered: required")
    if "ballots" not in columns and not {"valid", "invalid"} <= columns.keys():
        raise InputError(f"{origin}: columns.ballots: required unless both valid and invalid are given")
    options = _table(raw, "options", origin)
    if not options:
        raise InputError(f"{origin}: options: at least one option column is required")
    for option, spec in options.items():
        if not option.strip():
            raise InputError(f"{origin}: options: an option name is blank")
        _check_spec(spec, origin, f"options.{name(option)}", counts=True)
    if INVALID_OPTION in options:
        raise InputError(f"{origin}: options.invalid: reserved name (map it as columns.invalid)")
    texts = {key: _text(raw, key, origin) for key in ("leader", "source", "ballots_meaning", "label")}
    problem = leader_problem(texts["leader"], options)
    if problem:
        raise InputError(f"{origin}: leader: {problem}")
    delimiter = _text(fmt, "delimiter", origin, "format.")
    delimiter = "," if delimiter is None else delimiter
    if len(delimiter) != 1 or delimiter in "\r\n\"":
        raise InputError(f"{origin}: format.delimiter: {shown(delimiter)}: must be one character "
                         "(not a quote or a line break)")
    encoding = _text(fmt, "encoding", origin, "format.")
    encoding = "utf-8" if encoding is None else encoding
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"{origin}: format.encoding: {shown(encoding)}: unknown encoding") from None
    return ReturnsMapping(origin=origin, columns=columns, options=options, delimiter=delimiter, encoding=encoding,
                          member=_text(fmt, "member", origin, "format."), leader=texts["leader"],
                          source=texts["source"],
                          ballots_meaning=texts["ballots_meaning"] or "ballots cast as published",
                          label=texts["label"])


def leader_problem(leader: str | None, options) -> str | None:
    """Why ``leader`` cannot be the leader the forensic tests read among ``options`` (option names; the invalid
    ballots' column, :data:`INVALID_OPTION`, may be one of them and is no candidate), in the words every entry
    that takes a leader uses after its own ``leader:`` (a mapping's, ``election(leader=...)``, ``--leader``);
    None when it can be (or is None: the default leader)."""
    if leader is None:
        return None
    candidates = listed(option for option in options if option != INVALID_OPTION)
    if not leader.strip():
        return f"{shown(leader)}: a blank name, not a candidate ({candidates})"
    if leader == INVALID_OPTION:
        return f"{shown(leader)}: the name of the invalid ballots, not a candidate ({candidates})"
    if leader not in options:
        return f"{shown(leader)}: not one of the candidates ({candidates})"
    return None


def _keys(table: dict, known: tuple[str, ...], origin: str, prefix: str, noun: str = "key") -> None:
    for key in table:
        if key not in known:
            raise InputError(f"{origin}: {prefix}{name(key)}: unknown {noun} (expected one of "
                             f"{', '.join(known)})")


def _table(raw: dict, key: str, origin: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"{origin}: {key}: must be a table ([{key}] with one name = value per line), "
                         f"got {shown(value)}")
    return dict(value)


def _text(table: dict, key: str, origin: str, prefix: str = "") -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{origin}: {prefix}{key}: must be a string, got {shown(value)}")
    return value


def _check_spec(spec: ColumnSpec, origin: str, field: str, *, counts: bool) -> None:
    """A column spec: a name, a 0-based position, a non-empty list of those, or (counts only) one
    ``{sum = [...]}`` / ``{diff = [a, b, ...]}``."""
    if isinstance(spec, dict):
        kind = next(iter(spec), None)
        if not counts or len(spec) != 1 or kind not in ("sum", "diff"):
            allowed = "{sum = [...]} or {diff = [...]}" if counts else "a column or a list of columns"
            raise InputError(f"{origin}: {field}: use {allowed}, got {shown(spec)}")
        parts = spec[kind]
        if not isinstance(parts, list) or len(parts) < (2 if kind == "diff" else 1):
            raise InputError(f"{origin}: {field}.{kind}: needs a list of {'two or more ' if kind == 'diff' else ''}"
                             f"columns, got {shown(parts)}")
        for part in parts:
            _check_spec(part, origin, f"{field}.{kind}", counts=counts)
        return
    if isinstance(spec, list):
        if not spec:
            raise InputError(f"{origin}: {field}: an empty list of columns")
        for part in spec:
            if isinstance(part, (list, dict)):
                raise InputError(f"{origin}: {field}: a list holds column names or positions, got {shown(part)}")
            _check_spec(part, origin, field, counts=counts)
        return
    if isinstance(spec, bool) or not isinstance(spec, (int, str)) or (isinstance(spec, int) and spec < 0):
        raise InputError(f"{origin}: {field}: a column is a name or a 0-based position, got {shown(spec)}")
