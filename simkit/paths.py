"""The project's one dotted-path grammar over raw (TOML) config data.

``turnout.dispersion`` addresses a table key; repeated blocks (``[[options]]``, ``[[manipulation]]``,
``[[exit_poll]]``, ``[[scenario]]``…) are addressed by their ``name``, never by position:
``exit_poll.amanat.response_rate``. A segment holding a dot is quoted as TOML quotes a dotted key's segment:
``turnout.regional_mean."St. Petersburg"`` or ``turnout.regional_mean.'St. Petersburg'`` (escapes as in a TOML
string inside double quotes, none inside single quotes); a bare segment is anything up to the next dot.
"""
from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

#: the characters that open (and close) a quoted segment
QUOTES = ('"', "'")


def _quoted_end(path: str, start: int) -> int:
    """The index just past the quoted segment opening at ``path[start]``; KeyError naming the path when it is
    not closed or does not end at a dot."""
    quote = path[start]
    index = start + 1
    while index < len(path) and path[index] != quote:
        index += 2 if quote == '"' and path[index] == "\\" else 1
    if index >= len(path):
        raise KeyError(f"{path}: unbalanced quote (quote whole segments: regions.\"St. Petersburg\".x)")
    if index + 1 < len(path) and path[index + 1] != ".":
        raise KeyError(f"{path}: a quoted segment must end at a dot (quote whole segments: "
                       "regions.\"St. Petersburg\".x)")
    return index + 1


def _unquoted(path: str, quoted: str) -> str:
    """The name a quoted segment of ``path`` spells, read as TOML reads a quoted key."""
    try:
        return tomllib.loads(f"segment = {quoted}")["segment"]
    except tomllib.TOMLDecodeError:
        raise KeyError(f"{path}: {quoted}: not a TOML string") from None


def split_path(path: str) -> list[str]:
    """The segments of dotted ``path``, quoted segments unquoted (``a."b.c".d`` -> ``['a', 'b.c', 'd']``);
    KeyError naming the path when a quote is unbalanced."""
    segments, start = [], 0
    while True:
        if path[start:start + 1] in QUOTES:
            end = _quoted_end(path, start)
            segments.append(_unquoted(path, path[start:end]))
        else:
            end = path.find(".", start)
            end = len(path) if end < 0 else end
            segments.append(path[start:end])
        if end >= len(path):
            return segments
        start = end + 1


def join_path(segments: list[str]) -> str:
    """The dotted path of ``segments``, each holding a dot (or opening with a quote) quoted: the inverse of
    :func:`split_path`."""
    return ".".join(json.dumps(segment, ensure_ascii=False) if "." in segment or segment[:1] in QUOTES
                    else segment for segment in segments)


def block_name(item: Any) -> Any:
    """The name a repeated block is addressed by: its ``name``; an [[infer]] block's, the ``path`` it infers."""
    return (item.get("name") or item.get("path")) if isinstance(item, dict) else None


def _child(node: Any, segment: str, path: str) -> Any:
    if isinstance(node, dict):
        if segment not in node:
            raise KeyError(f"{path}: no such field")
        return node[segment]
    if isinstance(node, list):
        for item in node:
            if block_name(item) == segment:
                return item
        raise KeyError(f"{path}: no block named {segment!r}")
    raise KeyError(f"{path}: cannot descend into a {type(node).__name__}")


def get_path(raw: dict, path: str) -> Any:
    """The value at dotted ``path`` in raw config data; KeyError naming the path when absent."""
    node: Any = raw
    for segment in split_path(path):
        node = _child(node, segment, path)
    return node


def set_path(raw: dict, path: str, value: Any) -> dict:
    """A deep copy of ``raw`` with ``path`` set to ``value``.

    Intermediate tables are created when missing (the validator then rejects unknown keys);
    a block named in the path must already exist.
    """
    updated = copy.deepcopy(raw)
    set_in_place(updated, path, value)
    return updated


def set_in_place(raw: dict, path: str, value: Any) -> None:
    """Set ``path`` to ``value`` in ``raw`` itself (as :func:`set_path` does in its copy): for a caller that
    sets many paths of one private copy."""
    segments = split_path(path)
    node: Any = raw
    for segment in segments[:-1]:
        if isinstance(node, dict) and segment not in node:
            node[segment] = {}
        node = _child(node, segment, path)
    if not isinstance(node, dict):
        raise KeyError(f"{path}: cannot set a field inside a {type(node).__name__}")
    node[segments[-1]] = value


#: the fields whose value chooses the model of a block (``kind = "protocol_fabrication"``, ``source = "csv"``)
UNION_TAGS = ("kind", "source")


def dotted_location(loc: tuple, raw: Any) -> str:
    """Turn a pydantic error location into a dotted path, naming list items as they are addressed
    (:func:`block_name`: a block's ``name``, an [[infer]] block's ``path``), else by their ``[index]``."""
    parts: list[str] = []
    node: Any = raw
    for position, key in enumerate(loc):
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            name = block_name(item)
            parts.append(name if isinstance(name, str) and name else f"[{key}]")
            node = item
            continue
        is_last = position == len(loc) - 1
        if isinstance(key, str) and isinstance(node, dict) and key not in node and parts and (
                not is_last or key in (node.get(tag) for tag in UNION_TAGS)):
            # pydantic names the chosen member of a tagged union ("synthetic"); the user never wrote it. Last in the
            # location, the member names a check of the whole block ("protocol_fabrication"), else a missing field
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts)
