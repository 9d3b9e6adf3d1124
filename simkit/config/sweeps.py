"""Dotted paths into a config as ``[sweep]`` and ``--set`` read them: which fields a sweep may not vary
(:data:`UNSWEEPABLE`) or may add (:data:`SWEEP_ADDABLE`), the segments of a swept path, and the problem of a sweep
or override target that names no field.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from simkit.paths import get_path, join_path, split_path
from simkit.config.core import Config


#: poll fields are not sweepable: each would re-simulate identical elections; give poll unknowns as ranges
UNSWEEPABLE = ("electorate", "run", "sweep", "observed", "options", "title", "exit_poll", "quick_count", "infer",
               "inference")


#: the region-keyed tables of one number per region that a sweep may add a region's entry to (the others hold
#: lists, or are observed figures, which are not swept)
SWEEP_ADDABLE = ("turnout.regional_mean",)


def sweep_segments(cfg: Config) -> list[tuple[str, list[str]]]:
    """Each key of ``cfg.sweep`` with its segments (:func:`simkit.paths.split_path`); a key with an unbalanced quote
    is left out: :func:`_sweep_problems` refuses it."""
    return [(key, segments) for key in cfg.sweep if (segments := path_segments(key)) is not None]


def path_segments(path: str) -> list[str] | None:
    """Dotted ``path``'s segments, or None for an unbalanced quote (reported where that path is checked)."""
    try:
        return split_path(path)
    except KeyError:
        return None


def swept_below(cfg: Config, path: str) -> list[tuple[str, list[str]]]:
    """Each key of ``cfg.sweep`` that dotted ``path`` names or holds (``path`` itself, or a table or block above
    it), with its segments below ``path`` (none when ``path`` names it); segments compared, so quoting does not
    matter. A sweep key never holds an override's field: swept fields are numbers (:func:`_sweep_problems`)."""
    segments = path_segments(path)
    if segments is None:
        return []
    return [(key, swept[len(segments):]) for key, swept in sweep_segments(cfg) if swept[:len(segments)] == segments]


def set_sweep_keys(cfg: Config, path: str, value: Any) -> list[tuple[str, list[str]]]:
    """The keys of ``cfg.sweep`` whose fields an override of dotted ``path`` by ``value`` sets, each with its
    segments below ``path`` (:func:`swept_below`): ``path`` itself, or a table above them whose ``value`` holds
    them (a table's other fields are kept at every point)."""
    held = []
    for key, below in swept_below(cfg, path):
        try:
            if below:
                get_path(value, join_path(below))
            held.append((key, below))
        except KeyError:
            continue
    return held


def sweep_target_problem(raw: dict, path: str, cfg: Config) -> str | None:
    """Why dotted ``path`` of ``raw`` cannot be swept (``PATH: problem``), or None: a numeric field, or one that
    ``raw`` leaves out and each sweep point adds: a region's entry of a :data:`SWEEP_ADDABLE` table (its region and
    value are checked with the points), or an optional field of a block (:func:`optional_field` of ``cfg``)."""
    try:
        current = get_path(raw, path)
    except KeyError as missing:
        segments = path_segments(path)
        if segments is None:  # an unbalanced quote: get_path's problem says so
            return missing.args[0]
        addable = join_path(segments[:-1]) in SWEEP_ADDABLE or optional_field(cfg, segments)
        return None if addable else missing.args[0]
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        return f"{path}: not a numeric field"
    return None


def optional_field(cfg: Config, segments: list[str]) -> bool:
    """Whether ``segments`` name a field of one of ``cfg``'s blocks that a config may leave out (one with a default;
    of those, only one whose default is None is absent from :meth:`Config.raw`: a fabrication's ``target_share``)."""
    node: Any = cfg
    for segment in segments[:-1]:
        if isinstance(node, BaseModel):
            node = getattr(node, segment) if segment in type(node).model_fields else None
        elif isinstance(node, list):  # blocks, named by their name
            node = next((item for item in node if getattr(item, "name", None) == segment), None)
        else:
            node = node.get(segment) if isinstance(node, dict) else None
    fields = type(node).model_fields if isinstance(node, BaseModel) else {}
    return segments[-1] in fields and not fields[segments[-1]].is_required()


def swept_key(dotted: str) -> str | None:
    """The ``[sweep]`` key an override path ``sweep.PATH`` sets (``PATH`` itself dotted: ``sweep.turnout.dispersion``,
    or one quoted segment as a ``[sweep]`` key is written: ``sweep."turnout.dispersion"``; both give
    ``turnout.dispersion``); None for a path that sets no sweep."""
    head, *rest = split_path(dotted)
    if head != "sweep" or not rest:
        return None
    return rest[0] if len(rest) == 1 else join_path(rest)
