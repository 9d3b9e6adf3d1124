"""The target of a command's output: never replaced silently, never the command's own input.

Every command that writes a file (``run -o``, ``forensics -o``, ``compare -o``, ``infer -o``) calls
:func:`claim_output` before it starts working. A target is refused (one line, exit 2) when:

- it is, contains or lies inside one of the command's inputs (``simkit forensics sim.zarr -o sim.zarr``);
- its folder cannot be made (``-o /dev/null/x.zarr``) or written;
- it exists and ``overwrite`` is not set (``--overwrite`` on the command line);
- it exists, ``overwrite`` is set, and it is not a simkit result of the same kind (recognised by its
  attributes: :data:`KIND_ATTR`, or the attributes each kind has always carried), so that a folder of
  photos named ``a.zarr`` or a simulation given to ``forensics -o`` is never deleted; anything but a regular
  file or a folder (a FIFO, ``/dev/stdout``) is never a result, and is not opened to find out.

It first cleans up after killed runs on the same target (:func:`simkit.placement.journals.recover_stale`).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError
from simkit.io import FORMATS, open_result
from simkit.placement.journals import recover_stale
from simkit.placement.moves import exists

#: the attribute naming what a result holds; written into every result by the command that makes it
KIND_ATTR = "simkit_result"
SIMULATION, FORENSICS, COMPARISON, INFERENCE, REPORT = "simulation", "forensics", "comparison", "inference", "report"
#: kinds written only as JSON reports (``-o PATH.json``), recognised by their keys
SUMMARY, CALIBRATION, TIMELINE = "summary", "calibration", "timeline"
#: the help of every command's ``--overwrite``
OVERWRITE_HELP = "replace an existing output, if it is a simkit result of the same kind (else refused)"


def dataset_kind(attrs: dict, variables: Iterable[str]) -> str | None:
    """What a result Dataset holds, from its attrs and variable names (results written before
    :data:`KIND_ATTR` existed are recognised by the attributes their kind always had); None if not simkit's."""
    if KIND_ATTR in attrs:
        return str(attrs[KIND_ATTR])
    variables = set(variables)
    if "simkit_inference" in attrs:
        return INFERENCE
    if "simkit_config" in attrs and "total_votes" in variables:
        return SIMULATION
    if "tests_json" in attrs:
        return FORENSICS
    if {"estimate", "published"} <= variables:
        return COMPARISON
    return None


def _stored_kind(path: Path) -> str | None:
    """The kind of the simkit result Dataset at ``path``, None when it is not one."""
    if path.suffix.lower() not in FORMATS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = open_result(path)
    except InputError:
        return None
    return dataset_kind(ds.attrs, ds.variables)


def _file_or_folder(path: Path) -> bool:
    """Whether ``path`` is a regular file or a folder (links followed): the only things a result can be, and
    the only ones opened to recognise one (opening a FIFO, ``/dev/stdout`` or a socket would wait forever)."""
    return path.is_file() or path.is_dir()


def _same_path(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _check_folder(target: Path) -> None:
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{target}: output path: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{target}: output path: cannot write in {ancestor}")


def claim_output(path: str | Path, kind: str, *, overwrite: bool = False, inputs: Iterable[str | Path] = (),
                 recognise: Callable[[Path], bool] | None = None) -> Path:
    """Check that the command may write its ``kind`` result at ``path`` (see the module docstring); InputError
    otherwise. ``inputs``: the files the command reads. ``recognise(path)``: whether an existing file or folder
    that is not a result Dataset (a text or JSON report, a report's figures) is this command's output. Returns
    ``path``."""
    target = Path(path)
    for source in inputs:
        if source is not None and _same_path(target.resolve(), Path(source).resolve()):
            raise InputError(f"{target}: output path: it is (or holds, or lies in) an input of the command "
                             f"({source}); write the output elsewhere")
    _check_folder(Path(os.path.abspath(target)))
    recover_stale(target)
    if not exists(target):
        return target
    if not overwrite:
        raise InputError(f"{target}: output path exists; give overwrite=True to replace it (only a simkit {kind} "
                         f"result is replaced)", parameters=("overwrite",))
    if not _file_or_folder(target):
        raise InputError(f"{target}: overwrite: not a file or a folder, so not a {kind} result; it was not "
                         "replaced", parameters=("overwrite",))
    found = _stored_kind(target)
    same = found == kind or (found is None and recognise is not None and recognise(target))
    if not same:
        what = f"a simkit {found} result" if found else "not a simkit result"
        raise InputError(f"{target}: overwrite: {what}, not a {kind} result; it was not replaced",
                         parameters=("overwrite",))
    return target


def is_json_report(keys: Iterable[str]) -> Callable[[Path], bool]:
    """A ``recognise`` for :func:`claim_output`: a JSON file holding an object with every one of ``keys``."""
    def recognise(path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(data, dict) and set(keys) <= set(data)
    return recognise


def contains(marker: str, head: int = 4096) -> Callable[[Path], bool]:
    """A ``recognise`` for :func:`claim_output`: a UTF-8 text file whose first ``head`` characters hold ``marker``."""
    def recognise(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8") as handle:
                return marker in handle.read(head)
        except (OSError, UnicodeDecodeError):
            return False
    return recognise


def starts_with(header: str) -> Callable[[Path], bool]:
    """A ``recognise`` for :func:`claim_output`: a UTF-8 text file whose first line starts with ``header``."""
    def recognise(path: Path) -> bool:
        try:
            with path.open(encoding="utf-8") as handle:
                return handle.readline().startswith(header)
        except (OSError, UnicodeDecodeError):
            return False
    return recognise
