"""Writing and reading result Datasets: zarr (``.zarr``) or netCDF (``.nc``, h5netcdf), atomically.

A result appears at its target path only when complete: blocks are written to a staging path
``.NAME.partial-PID`` beside the target and renamed into place at the end; a failed or interrupted run
removes the staging path. An existing target is replaced so that it is never missing (:func:`_put_in_place`:
an atomic rename for a file, an atomic exchange for a folder on Linux, else two renames through
``.NAME.old-PID``). A run killed at any point (SIGKILL leaves no chance to clean up) may leave a staging
path behind: :func:`recover_stale` (called by the next write to the same target, :func:`staged`) deletes it, and
restores an ``.old`` result when the target is missing.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import xarray as xr

from .errors import InputError
from .schema import REPLICATE

FORMATS = {".zarr": "zarr", ".nc": "netcdf"}
#: zarr v2 layout: fixed-width strings (station ids, names) have a stable spec there, not yet in v3
ZARR_FORMAT = 2


def output_format(path: str | Path) -> str:
    """``zarr`` or ``netcdf`` from the extension; InputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: output path: extension must be .zarr or .nc, got {suffix or 'none'!r}")
    return FORMATS[suffix]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


STAGING, OLD = "partial", "old"  #: the staging paths beside a target: ``.NAME.partial-PID``, ``.NAME.old-PID``


def _staging_path(target: Path, role: str, pid: int | None = None) -> Path:
    return target.with_name(f".{target.name}.{role}-{os.getpid() if pid is None else pid}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_stale(target: str | Path) -> list[str]:
    """Clean up after runs on ``target`` that were killed (their process is gone): an ``.old`` result is
    moved back to ``target`` when ``target`` is missing (a kill during the final rename), any other staging
    path is deleted. Returns one message per action (also printed on stderr)."""
    target = Path(target)
    messages = []
    for role in (OLD, STAGING):
        for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.{role}-*")):
            pid = path.name.rpartition("-")[2]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if role == OLD and not (target.exists() or target.is_symlink()):
                os.replace(path, target)
                messages.append(f"{target}: restored the previous result from {path.name} (a run killed while "
                                f"replacing it)")
            else:
                _remove(path)
                messages.append(f"{target}: removed {path.name}, left by a run that was killed (process {pid})")
    for message in messages:
        print(f"simkit: {message}", file=sys.stderr)
    return messages


@contextmanager
def staged(target: str | Path) -> Iterator[Path]:
    """Yield a staging path beside ``target``; on success put it at ``target`` (an existing ``target`` is
    moved aside first and deleted after), on failure or interruption remove it. Staging left by killed runs
    on ``target`` is cleaned up first (:func:`recover_stale`), whichever command writes it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_stale(target)
    staging = _staging_path(target, STAGING)
    _remove(staging)
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    _put_in_place(staging, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the platform
    or the filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _put_in_place(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` to ``target`` so that ``target`` is never missing: a file replaces a file
    atomically; a folder is swapped with the existing one atomically where the platform can (the old result
    then sits at the staging path until deleted), else moved aside to ``.NAME.old-PID`` first (restored by
    :func:`recover_stale` if the run dies between the two renames)."""
    if not (target.exists() or target.is_symlink()) or not (staging.is_dir() or target.is_dir()):
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        _remove(staging)
        return
    trash = _staging_path(target, OLD)
    os.replace(target, trash)
    try:
        os.replace(staging, target)
    except BaseException:  # interrupted between the two renames: put the old result back
        if not (target.exists() or target.is_symlink()):
            os.replace(trash, target)
        _remove(staging)
        raise
    _remove(trash)


def write_text(text: str, path: str | Path) -> None:
    """Write a text report atomically (UTF-8)."""
    with staged(path) as staging:
        staging.write_text(text, encoding="utf-8")


def _encoding(ds: xr.Dataset, fmt: str) -> dict:
    if fmt != "netcdf":
        return {}
    return {name: {"compression": "gzip", "compression_opts": 1}
            for name, var in ds.data_vars.items() if var.dtype.kind in "iuf" and var.ndim > 1}


def write_dataset(ds: xr.Dataset, path: str | Path) -> None:
    """Write a complete in-memory Dataset atomically."""
    write_blocks(ds.drop_dims(REPLICATE, errors="ignore"),
                 [ds[[name for name in ds.data_vars if REPLICATE in ds[name].dims]]]
                 if REPLICATE in ds.dims else [], path)


def write_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a DataTree (one group per node: the inference's ArviZ groups) atomically, as netCDF groups or
    zarr groups; ``xarray.open_datatree`` (or ``arviz.from_netcdf``) reads it back."""
    fmt = output_format(path)
    with staged(path) as staging:
        if fmt == "zarr":
            tree.to_zarr(staging, mode="w", consolidated=True, zarr_format=ZARR_FORMAT)
        else:
            tree.to_netcdf(staging, engine="h5netcdf")


def write_blocks(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path) -> None:
    """Write ``static`` (no replicate dim, with the attrs) and replicate ``blocks`` in order, atomically.

    zarr: appended block by block along ``replicate`` (memory bounded by one block); netCDF: the blocks
    are gathered in memory first and written in one piece (the resource guard,
    :func:`simkit.engine.resources.check_run`, refuses a run whose replicates would not fit).
    """
    fmt = output_format(path)
    with staged(path) as staging:
        if fmt == "zarr":
            static.to_zarr(staging, mode="w", consolidated=False, zarr_format=ZARR_FORMAT)
            for block in blocks:
                has_replicates = staging.joinpath(REPLICATE).exists()
                block.attrs = static.attrs  # appending rewrites the group attrs: keep the provenance
                block.to_zarr(staging, mode="a", append_dim=REPLICATE if has_replicates else None,
                              consolidated=False, zarr_format=ZARR_FORMAT)
            import zarr
            zarr.consolidate_metadata(str(staging), zarr_format=ZARR_FORMAT)
        else:
            parts = list(blocks)
            dynamic = xr.concat(parts, dim=REPLICATE) if len(parts) > 1 else (parts[0] if parts else xr.Dataset())
            full = xr.merge([static, dynamic], combine_attrs="override")
            full.to_netcdf(staging, engine="h5netcdf", encoding=_encoding(full, fmt))


def open_result(path: str | Path) -> xr.Dataset:
    """Open a saved result (lazily for zarr)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    fmt = output_format(path)
    try:
        if fmt == "zarr":
            return xr.open_zarr(path, consolidated=True)
        return xr.open_dataset(path, engine="h5netcdf")
    except Exception as error:  # noqa: BLE001 - any backend failure is unreadable input for the user
        raise InputError(f"{path}: not a readable simkit result: {error}") from None
