"""The project's one dotted-path grammar over raw (TOML) config data.

``turnout.dispersion`` addresses a table key; repeated blocks (``[[options]]``, ``[[manipulation]]``,
``[[exit_poll]]``, ``[[scenario]]``…) are addressed by their ``name``, never by position:
``exit_poll.amanat.response_rate``.
"""
from __future__ import annotations

import copy
from typing import Any


def _child(node: Any, segment: str, path: str) -> Any:
    if isinstance(node, dict):
        if segment not in node:
            raise KeyError(f"{path}: no such field")
        return node[segment]
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == segment:
                return item
        raise KeyError(f"{path}: no block named {segment!r}")
    raise KeyError(f"{path}: cannot descend into a {type(node).__name__}")


def get_path(raw: dict, path: str) -> Any:
    """The value at dotted ``path`` in raw config data; KeyError naming the path when absent."""
    node: Any = raw
    for segment in path.split("."):
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
    segments = path.split(".")
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
    """Turn a pydantic error location into a dotted path, naming list items by their ``name``."""
    parts: list[str] = []
    node: Any = raw
    for position, key in enumerate(loc):
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            # blocks are named by ``name``; [[infer]] blocks by the ``path`` they infer
            name = (item.get("name") or item.get("path")) if isinstance(item, dict) else None
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
