"""TOML text → :class:`simkit.config.core.Config`: the file read (``extends = "other.toml"`` merged underneath), data
paths resolved against the config's folder, dotted overrides (``--set``) applied, then validated and cross-checked
(:func:`load_config`, :func:`parse_config`); every problem found is raised at once as a
:class:`simkit.config.messages.ConfigError`.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simkit.errors import InputError
from simkit.paths import set_path, split_path
from simkit.config.checks import cross_check
from simkit.config.core import Config
from simkit.config.messages import ConfigError, pydantic_problems, shown_once
from simkit.config.sweeps import set_sweep_keys, sweep_target_problem, swept_key


def parse_value(text: str) -> Any:
    """An ``overrides`` value given as text: TOML syntax when it parses (numbers, booleans, lists), else a
    string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise InputError(f"overrides {text[:20]}…: nested too deeply", parameters=("overrides",)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read, override (dotted paths) and validate a TOML config; raise ConfigError with every problem."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path: a config file path, got {type(path).__name__} {path!r:.80}", parameters=("path",))
    path = Path(path)
    return parse_config(read_config_text(path, str(path)), source=str(path), base_dir=path.parent, overrides=overrides)


def read_config_text(path: Path, source: str) -> str:
    """The text of the config file at ``path`` as the config reader reads it (a leading byte-order mark dropped);
    ConfigError naming ``source`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not TOML
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{source}: cannot read: {error}"]) from None


def _deep_merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``: tables merge key by key; any other value (arrays of blocks included) replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_toml(text: str, source: str, base_dir: Path | None, seen: tuple[str, ...] = ()) -> dict:
    """TOML text → raw dict, with ``extends = "other.toml"`` (relative to this file) merged underneath."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{source}: invalid TOML: {error}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: invalid TOML: arrays or tables nested too deeply"]) from None
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or base_dir is None:
        raise ConfigError([f"{source}: extends: must be a path to another config file"])
    parent_path = (base_dir / parent).resolve()
    if str(parent_path) in seen:
        raise ConfigError([f"{source}: extends: {parent} extends itself"])
    parent_source = f"{source}: extends {parent}"
    base = _parse_toml(read_config_text(parent_path, parent_source), parent_source, parent_path.parent,
                       seen + (str(parent_path),))
    return _deep_merge(base, raw)


#: tables and their fields that hold file paths, resolved against the config file's folder
_PATH_FIELDS = (("electorate", ("path",)), ("observed.stations", ("returns", "map")))


def _path_tables(raw: dict):
    """(table, keys) for each table of :data:`_PATH_FIELDS` present in ``raw``."""
    for table_path, keys in _PATH_FIELDS:
        table = raw
        for part in table_path.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict):
            yield table, keys


def data_paths(cfg: Config) -> list[str]:
    """The data files a config reads (electorate CSV, observed returns and map), as resolved."""
    return [table[key] for table, keys in _path_tables(cfg.raw()) for key in keys if isinstance(table.get(key), str)]


def _resolve_paths(raw: dict, base_dir: Path) -> None:
    """Make the relative file paths of :data:`_PATH_FIELDS` absolute (in place), relative to ``base_dir``."""
    for table, keys in _path_tables(raw):
        for key in keys:
            if isinstance(table.get(key), str):
                table[key] = str((base_dir / table[key]).resolve())


def set_override(raw: dict, dotted: str, value: Any) -> dict:
    """``raw`` with one override applied: ``sweep.PATH`` sets the values swept over ``PATH`` (:func:`swept_key`),
    beside the config's other sweeps; any other path sets that field (:func:`simkit.paths.set_path`). KeyError
    naming the path when it cannot be set."""
    swept = swept_key(dotted)
    if swept is None:
        return set_path(raw, dotted, value)
    sweep = raw.get("sweep", {})
    if not isinstance(sweep, dict):
        raise KeyError(f"sweep: cannot set a field inside a {type(sweep).__name__}")
    return {**raw, "sweep": {**sweep, swept: value}}


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None,
                 overrides: dict[str, Any] | None = None) -> Config:
    """Validate config text; relative paths (``extends``, data files) are resolved against ``base_dir``.
    ``overrides`` (dotted path -> value) replace fields of the text; a problem at a field one of them sets leaves
    its value out (:func:`shown_once`: the caller gave it, and names it: ``--set turnout.mean=x``, ``replicates=0``)."""
    raw = file_raw = _parse_toml(text, source, base_dir)
    for dotted, value in (overrides or {}).items():
        try:
            raw = set_override(raw, dotted, value)
        except KeyError as missing:
            raise ConfigError([f"{source}: {missing.args[0]}"]) from None
    if base_dir is not None:
        _resolve_paths(raw, base_dir)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as error:
        problems = pydantic_problems(error, raw)
    else:
        problems = _swept_override_problems(cfg, overrides or {}, file_raw) + cross_check(cfg)
    if problems:
        given = _set_fields(overrides)
        raise ConfigError([f"{source}: {shown_once(p, given)}" for p in problems])
    return cfg


def _set_fields(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The dotted fields (unquoted, as problems name them) that ``overrides`` set, each with its value, sweeps left
    out."""
    return {".".join(split_path(dotted)): value for dotted, value in (overrides or {}).items()
            if swept_key(dotted) is None}


def _swept_override_problems(cfg: Config, overrides: dict[str, Any], file_raw: dict) -> list[str]:
    """Each override that sets a field ``cfg`` sweeps (itself, or in a table that holds it:
    :func:`set_sweep_keys`) where the sweep needs no such value, as the field is in ``file_raw`` (the config before
    its overrides) or a sweep adds it (:func:`sweep_target_problem`): every sweep point sets the field, so the
    value would be used at none (as a scenario's override of a swept field would not be). A table set without the
    swept field (possible where the field is optional) keeps its other fields at every point: not refused."""
    problems = []
    for dotted, value in overrides.items():
        held = [] if swept_key(dotted) is not None else set_sweep_keys(cfg, dotted, value)
        for key, below in held:
            if sweep_target_problem(file_raw, key, cfg) is not None:  # the sweep needs this value to exist
                continue
            if not below:
                problems.append(f"{dotted}: swept ([sweep] or --sweep): this value would be used at no point; "
                                "drop one")
            else:
                problems.append(f"{dotted}: holds the swept field {key} ([sweep] or --sweep), whose value here would "
                                f"be used at no point; set the table's other fields one by one ({dotted}.FIELD=...)")
            break
    return problems
