"""Writing and reading result Datasets: zarr (``.zarr``) or netCDF (``.nc``, h5netcdf), atomically.

A result appears at its target path only when complete: it is written at a staging path beside the target and put
in place at the end (:func:`placing.staged`; the target is never missing, and what a killed run
left is cleaned up or finished by the next write to it: :mod:`simkit.placement`). This module says how a Dataset is
stored: the narrowest integer type that holds its counts (:func:`count_dtype`), zarr chunks of one block each
(:func:`zarr_encoding`), blocks written as they come (:func:`write_blocks`), and read back (:func:`open_result`).
"""
from __future__ import annotations

import asyncio
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import xarray as xr

from .errors import InputError
from .schema import REPLICATE, STATION, VARIABLES
from simkit.placement import placing


FORMATS = {".zarr": "zarr", ".nc": "netcdf"}


#: zarr v2 layout: fixed-width strings (station ids, names) have a stable spec there, not yet in v3
ZARR_FORMAT = 2


def output_format(path: str | Path, role: str = "output path") -> str:
    """``zarr`` or ``netcdf`` from the extension; InputError otherwise (its message names the path's ``role``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: {role}: extension must be .zarr or .nc, got {suffix or 'none'!r}")
    return FORMATS[suffix]


def write_text(text: str, path: str | Path) -> None:
    """Write a text report atomically (UTF-8)."""
    with placing.staged(path) as staging:
        save_text(text, staging)


def save_text(text: str, staging: Path) -> None:
    """:func:`write_text`'s writing of ``text`` at the staging path ``staging`` (:func:`placing.staged_together`)."""
    staging.write_text(text, encoding="utf-8")


def _encoding(ds: xr.Dataset, fmt: str) -> dict:
    if fmt != "netcdf":
        return {}
    return {name: {"compression": "gzip", "compression_opts": 1}
            for name, var in ds.data_vars.items() if var.dtype.kind in "iuf" and var.ndim > 1}


def write_dataset(ds: xr.Dataset, path: str | Path) -> None:
    """Write a complete in-memory Dataset atomically, as zarr or netCDF by the suffix of ``path`` (``.zarr``,
    ``.nc``); a simulation's station-level counts are stored in :func:`count_dtype`. Whatever is at ``path`` is
    replaced without a check: the commands call :func:`simkit.outputs.claim_output` first, which refuses an
    existing output unless ``overwrite=True`` and never writes onto an input."""
    write_blocks(*_static_and_blocks(ds), path)


def save_dataset(ds: xr.Dataset, path: str | Path, staging: Path) -> None:
    """:func:`write_dataset`'s writing of ``ds`` at ``staging``, a staging path of ``path`` (whose suffix gives the
    format) that :func:`placing.staged_together` gave: a result put in place in one placement with other outputs."""
    _save_blocks(*_static_and_blocks(ds), path, staging)


def _static_and_blocks(ds: xr.Dataset) -> tuple[xr.Dataset, list[xr.Dataset]]:
    """``ds`` as :func:`write_blocks` takes it: the variables without a replicate dim, and those with one as a
    single block (none when ``ds`` has no replicate dim)."""
    return (ds.drop_dims(REPLICATE, errors="ignore"),
            [ds[[name for name in ds.data_vars if REPLICATE in ds[name].dims]]] if REPLICATE in ds.dims else [])


def write_tree(tree: xr.DataTree, path: str | Path) -> None:
    """Write a DataTree (one group per node: the inference's ArviZ groups) atomically, as netCDF groups or
    zarr groups; ``xarray.open_datatree`` (or ``arviz.from_netcdf``) reads it back."""
    fmt = output_format(path)
    with placing.staged(path) as staging:
        if fmt == "zarr":
            with _zarr_writes_settled():
                tree.to_zarr(staging, mode="w", consolidated=True, zarr_format=ZARR_FORMAT)
        else:
            _save_netcdf(tree, staging)


#: the types a simulation's station-level counts are held and stored in, narrowest first (:func:`count_dtype`): signed,
#: so that a reader's differences of counts (``manipulated_votes`` is one) never wrap around
COUNT_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))


#: the compressor of the replicate arrays in zarr: Blosc's lz4 at level 1 after a bit shuffle (measured on the
#: benchmark workload's votes, int16, blocks of 32 replicates: about 0.2 CPU ms per replicate, 94 kB a replicate,
#: a ratio of 1.7; zstd at level 1 takes twice the CPU time for 20% less)
COMPRESSOR = {"id": "blosc", "cname": "lz4", "clevel": 1, "shuffle": 2, "blocksize": 0}


#: the most bytes of a chunk before compression (Blosc compresses at most 2 GB at once); an engine block's
#: arrays are at most :data:`simkit.engine.resources.BLOCK_BYTES` (as int64), so a block is one chunk
MAX_CHUNK_BYTES = 64 * 2**20


def count_dtype(registered: np.ndarray) -> np.dtype:
    """The narrowest of :data:`COUNT_DTYPES` that holds the largest of the station registers ``registered``
    (station,): int16 when no register exceeds 32,767 (2 bytes a value; the flagship's largest is 10,879), else
    int32, else int64 (a register is at most :data:`simkit.types.MAX_REGISTER`, 10**10).

    It then holds every station-level count of a simulation (ballots, votes, the voters' choices, added ballots,
    the voting day's cumulative ballots, and the signed ``manipulated_votes``): a count never exceeds its
    station's register in size (honest ballots are drawn from it; every mechanism of
    :mod:`simkit.model.manipulation` keeps ballots within the register and votes summing to the ballots, and the
    voters' choices are a subset of the ballots). Results are stored in it (:func:`stored_dtypes`) and a world's
    votes are held in it (:func:`simkit.engine.run.world_votes`, which relies on that invariant to write each block
    without scanning it)."""
    largest = int(np.max(registered, initial=0))
    return next(dtype for dtype in COUNT_DTYPES if largest <= np.iinfo(dtype).max)


def narrowed(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` of the variable ``name`` in the storage type ``dtype`` (:func:`count_dtype`); raises
    ValueError, naming the variable, if a count lies outside the type's range (a cast would wrap it silently)."""
    values = np.asarray(values)
    if values.dtype != dtype and values.size:
        info = np.iinfo(dtype)
        low, high = int(values.min()), int(values.max())
        if low < info.min or high > info.max:
            raise ValueError(f"{name}: counts from {low} to {high} do not fit the storage type {dtype} chosen "
                             f"from the largest station register")
    return values.astype(dtype, copy=False)


def narrowed_block(block: xr.Dataset, dtypes: dict[str, np.dtype]) -> xr.Dataset:
    """``block`` with each variable named in ``dtypes`` in that type (:func:`narrowed`: checked, never wrapped)."""
    return block.assign({name: block[name].copy(data=narrowed(name, block[name].values, dtype))
                         for name, dtype in dtypes.items() if dtype != block[name].dtype})


def stored_dtypes(static: xr.Dataset, block: xr.Dataset) -> dict[str, np.dtype]:
    """The dtype each integer variable of ``block`` is stored in: the station-level counts of a simulation
    (``static`` holds the ``registered`` station register) in :func:`count_dtype`, the rest as they are."""
    narrow = count_dtype(static["registered"].values) if "registered" in static else None
    return {name: (narrow if narrow is not None and STATION in var.dims and _units(name) == "ballots"
                   else var.dtype) for name, var in block.variables.items() if REPLICATE in var.dims}


def _units(name: str) -> str | None:
    """The units of a simulation's variable (:data:`simkit.schema.VARIABLES`), None for any other."""
    return VARIABLES[name][1] if name in VARIABLES else None


def zarr_encoding(block: xr.Dataset) -> dict:
    """The zarr encoding of a block's replicate arrays: one chunk per block and world (the dims before
    ``replicate``, the sweep and scenario, in chunks of 1; the block's replicates and every station whole; fewer
    replicates when they would take more than :data:`MAX_CHUNK_BYTES`, as a whole simulation written at once
    may), compressed by :data:`COMPRESSOR`. A block of dask arrays (the dask runs' template,
    :mod:`simkit.engine.distributed`, which holds every replicate) gives its chunks along ``replicate`` and after
    it instead."""
    import numcodecs

    encoding = {}
    for name, var in block.variables.items():
        if REPLICATE in var.dims:
            axis = var.dims.index(REPLICATE)
            if var.chunks:
                chunks = tuple(chunk[0] for chunk in var.chunks[axis:])
            else:
                rows = max(1, MAX_CHUNK_BYTES // (var.dtype.itemsize * math.prod(var.shape[axis + 1:])))
                chunks = (min(var.shape[axis], rows),) + var.shape[axis + 1:]
            encoding[name] = {"chunks": (1,) * axis + chunks, "compressors": (numcodecs.get_codec(dict(COMPRESSOR)),)}
    return encoding


async def _resize_zarr(arrays: dict, axes: dict[str, int], length: int) -> None:
    """Give every zarr array of ``arrays`` (name: ``zarr.AsyncArray``, replicate axis ``axes[name]``) ``length``
    replicates, all at once (one trip to the event loop: each of zarr's synchronous calls costs about a CPU
    millisecond, and each resize rewrites the array's metadata)."""

    async def resize(name: str, array) -> None:
        axis = axes[name]
        await array.resize(array.shape[:axis] + (length,) + array.shape[axis + 1:])

    await asyncio.gather(*(resize(name, array) for name, array in arrays.items()))


async def _append_zarr(arrays: dict, axes: dict[str, int], block: xr.Dataset, start: int) -> None:
    """Write ``block``'s replicate arrays into the zarr ``arrays`` (name: ``zarr.AsyncArray``, replicate axis
    ``axes[name]``) from replicate ``start`` on, all at once (one trip to the event loop a block), first growing the
    arrays too short to hold them (a run that did not announce its replicates), written whole chunks at a time
    when the block is as long as the first."""
    stop = start + block.sizes[REPLICATE]
    short = {name: array for name, array in arrays.items() if array.shape[axes[name]] < stop}
    if short:
        await _resize_zarr(short, axes, stop)

    async def append(name: str, array) -> None:
        axis = axes[name]
        await array.setitem((slice(None),) * axis + (slice(start, stop),),
                            narrowed(name, block.variables[name].values, array.dtype))

    await asyncio.gather(*(append(name, array) for name, array in arrays.items()))


def write_blocks(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path,
                 replicates: int | None = None) -> None:
    """Write ``static`` (no replicate dim, with the attrs) and replicate ``blocks`` in order, atomically.

    zarr: the static variables and the first block through xarray in one write (which writes the arrays' dims and
    attrs), chunked one chunk per block and world, the station-level counts of a simulation in
    :func:`count_dtype`, compressed by :data:`COMPRESSOR`; each later block written straight into those arrays
    (memory bounded by one block). With ``replicates`` (the number the blocks hold in all) the arrays are sized
    for all of them once, after the first block, rather than grown block by block (each growth rewrites every
    array's metadata; ``benchmarks/write_profile.py`` times the write); ValueError if the blocks hold another
    number (before it writes a block beyond them; nothing is left at ``path``). :func:`open_result` gives the
    counts back as int64. netCDF: the blocks are gathered in memory first and written in one piece (the resource
    guard, :func:`simkit.engine.resources.check_run`, refuses a run whose replicates would not fit), their number
    checked against ``replicates`` alike.
    """
    output_format(path)  # a wrong extension refused before anything is staged
    with placing.staged(path) as staging:
        _save_blocks(static, blocks, path, staging, replicates)


def _save_blocks(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path, staging: Path,
                 replicates: int | None = None) -> None:
    """:func:`write_blocks`'s writing, at the staging path ``staging`` of ``path`` (whose suffix gives the format)."""
    fmt = output_format(path)
    if fmt == "zarr":
        with _zarr_writes_settled():
            _write_zarr(static, blocks, path, staging, replicates)
    else:
        parts = list(blocks)
        _check_announced(path, replicates, sum(part.sizes[REPLICATE] for part in parts), final=True)
        dynamic = xr.concat(parts, dim=REPLICATE) if len(parts) > 1 else (parts[0] if parts else xr.Dataset())
        full = xr.merge([static, dynamic], combine_attrs="override")
        del parts, dynamic  # the blocks, now in ``full``: its compressed image takes their place in memory
        _save_netcdf(full, staging, encoding=_encoding(full, fmt))


def _save_netcdf(data: xr.Dataset | xr.DataTree, staging: Path, **options) -> None:
    """``data`` as netCDF (h5netcdf, ``options`` passed on) at ``staging``: the file's bytes made in memory, then
    saved from Python, so that a full disk is an OSError of that save. HDF5 never writes to the disk itself: a
    failed write there leaves its file handle unflushable, and the process crashing at exit (code 139). The data
    are in memory: dask's synchronous scheduler, so that xarray takes a thread lock rather than a dask.distributed
    lock named by the in-memory buffer (which that lock cannot name: a RuntimeError inside a dask client)."""
    import dask  # here, not at the top: only a netCDF write needs it

    with dask.config.set(scheduler="synchronous"):
        image = data.to_netcdf(None, engine="h5netcdf", **options)
    staging.write_bytes(image)


@contextmanager
def _zarr_writes_settled() -> Iterator[None]:
    """Around a zarr write: when it fails (or is stopped), wait until every write zarr started for it is done before the
    error goes on. zarr writes a store's keys together (``asyncio.gather`` on its event loop, each key in a thread); the
    first failure is raised at once while the others go on, and one that ended after the staging path was removed
    (:func:`placing.staged_together`) made its folder again: a staging path left behind, or a removal failing on a
    folder not empty. Tasks already on zarr's loop before the write are not waited for."""
    from zarr.core.sync import sync

    before = sync(_tasks())
    try:
        yield
    except BaseException:
        sync(_done(before))
        raise


async def _tasks() -> set[asyncio.Task]:
    """The tasks of the running event loop."""
    return asyncio.all_tasks()


async def _done(before: set[asyncio.Task]) -> None:
    """Wait until every task on the running event loop but this one and those of ``before`` is done (and those they
    start)."""
    current = asyncio.current_task()
    while started := [task for task in asyncio.all_tasks() - before if task is not current and not task.done()]:
        await asyncio.wait(started)


def _check_announced(path: str | Path, replicates: int | None, written: int, final: bool = False) -> None:
    """ValueError naming ``path`` when the ``written`` replicates exceed the ``replicates`` announced for it (None:
    any number), or, when ``final``, differ from them."""
    if replicates is not None and written > replicates:
        raise ValueError(f"{path}: the blocks hold at least {written} replicates, more than the {replicates} announced")
    if replicates is not None and final and written != replicates:
        raise ValueError(f"{path}: the blocks hold {written} replicates, not the {replicates} announced")


def _write_zarr(static: xr.Dataset, blocks: Iterable[xr.Dataset], path: str | Path, staging: Path,
                replicates: int | None) -> None:
    import zarr

    from zarr.core.sync import sync  # zarr's own event loop (in its thread): works inside a running loop too

    blocks = iter(blocks)
    first = next(blocks, None)
    if first is None:
        static.to_zarr(staging, mode="w", consolidated=False, zarr_format=ZARR_FORMAT)
        written = 0
    else:  # the static variables and the first block in one write, which creates the arrays (dims, attrs, encoding)
        dtypes = stored_dtypes(static, first)
        first = narrowed_block(first, dtypes)
        xr.merge([static, first], combine_attrs="override").to_zarr(  # override: the static's provenance attrs
            staging, mode="w", consolidated=False, zarr_format=ZARR_FORMAT, encoding=zarr_encoding(first))
        group = zarr.open_group(str(staging), mode="r+", zarr_format=ZARR_FORMAT)
        arrays, written = {name: group[name].async_array for name in dtypes}, first.sizes[REPLICATE]
        axes = {name: first.variables[name].dims.index(REPLICATE) for name in arrays}
        _check_announced(path, replicates, written)
        if replicates is not None and replicates > written:
            sync(_resize_zarr(arrays, axes, replicates))
        for block in blocks:
            _check_announced(path, replicates, written + block.sizes[REPLICATE])
            sync(_append_zarr(arrays, axes, block, written))
            written += block.sizes[REPLICATE]
    _check_announced(path, replicates, written, final=True)
    zarr.consolidate_metadata(str(staging), zarr_format=ZARR_FORMAT)


def open_result(path: str | Path) -> xr.Dataset:
    """Open a saved result (``.zarr`` as dask arrays, ``.nc`` read lazily from the file) with the schema's dims
    (:mod:`simkit.schema`); counts stored narrow are given back as int64, as they were drawn. InputError when
    ``path`` is missing or not a readable result."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    fmt = output_format(path, "result")
    try:
        if fmt == "zarr":
            ds = xr.open_zarr(path, consolidated=True)
        else:
            ds = xr.open_dataset(path, engine="h5netcdf")
    except Exception as error:  # noqa: BLE001 - any backend failure is unreadable input for the user
        raise InputError(f"{path}: not a readable simkit result: {error}") from None
    return _as_int64(ds)


def _as_int64(ds: xr.Dataset) -> xr.Dataset:
    """A simulation's counts stored narrow (:func:`count_dtype`) as int64 again (lazily for zarr), as they were
    drawn: readers see the same values and types whatever the stored width; each keeps its stored encoding
    (chunks, compressor, stored dtype)."""
    narrow = [name for name, var in ds.data_vars.items()
              if name in VARIABLES and var.dtype.kind == "i" and var.dtype.itemsize < 8]
    if not narrow:
        return ds
    wide = ds.copy()
    for name in narrow:
        wide[name] = ds[name].astype(np.int64)  # lazy: open_zarr gives dask arrays (dask is a dependency)
        wide[name].encoding = dict(ds[name].encoding)
    wide.set_close(ds.close)  # closing the copy closes the store
    return wide
