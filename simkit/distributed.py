"""Scale-out: the same runs on a ``dask.distributed`` cluster, bit-identical to a local run.

dask is the scheduler; this module only says what a task is. A run is split into blocks of
replicates aligned to the zarr chunks along ``replicate`` (block ``i`` holds replicates
``[i × block_size, (i + 1) × block_size)``). Each task receives the resolved config TOML text and its
replicate range, nothing else: it rebuilds the run with :func:`simkit.parse_config` and
:func:`simkit.engine.prepare` (cached per worker process), computes the block with
:func:`simkit.engine.block_dataset` (random streams keyed by ``(replicate, station_group, component)``,
so the values do not depend on which worker computes which block) and writes its region of the zarr
store itself (``to_zarr(region=…)``; one chunk per variable and block, so no two tasks touch the
same chunk file).

Files, for a target ``out/kz.zarr``::

    out/.kz.zarr.resumable/          work directory, kept when a run is interrupted or fails
        run.json                     what the partial run is (config hash, block size)
        done/<start>-<stop>          one marker per block written completely
        kz.zarr/                     the store: static variables and full-size arrays, filled by the tasks
    out/kz.zarr                      appears only when every block is written (via :func:`simkit.io.staged`)

``resume=True`` reuses the work directory of an interrupted run of the same config and block size and
submits only the blocks without a marker. A worker that dies mid-run has its tasks rescheduled by dask
(the scheduler's ``allowed-failures``); a task that raises is retried (``retries``). Rewriting a block
writes the same bytes, so a retried block leaves the store identical.

Workers on a remote cluster must see the output directory at the same path (a shared filesystem),
and any electorate CSV at the absolute path the config resolves it to.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import xarray as xr

from . import engine, io, schema
from .config import Config
from .errors import InputError

if TYPE_CHECKING:  # dask.distributed is an optional dependency: imported when a run starts
    from dask.distributed import Client

#: times a block task that raised is resubmitted (a worker that dies is handled by the scheduler)
RETRIES = 3
_MANIFEST = "run.json"
_MARKERS = "done"


# --------------------------------------------------------------------------------------------- worker side

@functools.lru_cache(maxsize=4)
def _prepared(config_text: str, kernel: str) -> engine.Run:
    """The run of a resolved config text, built once per worker process, config and kernel."""
    from .config import parse_config

    return engine.prepare(parse_config(config_text, source="<distributed run config>"), kernel=kernel)


def _replicate_variables(block: xr.Dataset) -> xr.Dataset:
    """The variables of ``block`` that have a ``replicate`` dim, without the ``replicate`` index
    (written once when the store is created, so concurrent tasks never share a chunk)."""
    names = [name for name, var in block.variables.items()
             if schema.REPLICATE in var.dims and name != schema.REPLICATE]
    return block[names].drop_vars(schema.REPLICATE, errors="ignore")


def compute_block(config_text: str, start: int, stop: int, kernel: str = "numpy") -> xr.Dataset:
    """Task: replicates ``[start, stop)`` of the run of ``config_text`` (all sweep points), annotated."""
    run = _prepared(config_text, kernel)
    return engine.annotate(engine.block_dataset(run, range(start, stop)), run.config)


def write_block(config_text: str, start: int, stop: int, store: str, markers: str, kernel: str = "numpy") -> int:
    """Task: compute replicates ``[start, stop)`` and write them into their region of the zarr ``store``,
    then leave the marker ``markers/<start>-<stop>``. Returns the number of replicates written."""
    block = _replicate_variables(compute_block(config_text, start, stop, kernel))
    block.to_zarr(store, region={schema.REPLICATE: slice(start, stop)}, mode="r+", consolidated=False,
                  zarr_format=io.ZARR_FORMAT)
    marker = Path(markers) / _marker_name(start, stop)
    partial = marker.with_name(f".{marker.name}.{uuid.uuid4().hex}")
    partial.write_text(f"{start} {stop}\n")
    os.replace(partial, marker)  # a marker exists only for a block written completely
    return stop - start


def _marker_name(start: int, stop: int) -> str:
    return f"{start:012d}-{stop:012d}"


# --------------------------------------------------------------------------------------------- client side

def blocks_of(replicates: int, block_size: int) -> list[range]:
    """Replicate ranges of ``block_size`` (the last one shorter), aligned to the zarr chunks."""
    if block_size < 1:
        raise InputError(f"--block-size: must be at least 1, got {block_size}")
    return [range(start, min(start + block_size, replicates)) for start in range(0, replicates, block_size)]


def _versions() -> dict[str, str]:
    """Versions that decide the drawn values: the same on every worker as on the client, or no run."""
    import scipy

    from . import __version__

    return {"simkit": __version__, "numpy": np.__version__, "scipy": scipy.__version__}


def check_workers(client: Client, timeout: float = 60) -> None:
    """InputError unless a worker joins within ``timeout`` seconds and every worker runs the client's
    simkit, numpy and scipy (other versions could draw other numbers)."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise InputError(f"{client.scheduler.address}: no dask worker joined within {timeout:g} s") from None
    expected = _versions()
    for worker, found in client.run(_versions).items():
        if found != expected:
            raise InputError(f"{worker}: worker versions {found} differ from the client's {expected}: "
                             f"install the same versions on the workers")


def execution(client: Client) -> str:
    """The ``execution`` provenance attr: ``"dask: <scheduler address>, <n> workers"``."""
    n_workers = len(client.scheduler_info().get("workers", {}))
    return f"dask: {client.scheduler.address}, {n_workers} workers"


@contextmanager
def connect(client: Client | None = None, scheduler: str | None = None,
            workers: int | None = None) -> Iterator[Client]:
    """A client: ``client`` itself, one connected to the ``scheduler`` address (``tcp://host:port``), or
    one on a ``LocalCluster`` of ``workers`` single-threaded worker processes started for this run and
    closed after it."""
    if client is not None:
        yield client
        return
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            owned = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise InputError(f"--scheduler {scheduler}: cannot connect: {error}") from None
        with owned:
            yield owned
        return
    if workers is None or workers < 1:
        raise InputError(f"--workers: must be at least 1, got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as owned:
        yield owned


def template_dataset(run: engine.Run, static: xr.Dataset, block_size: int) -> xr.Dataset:
    """The full result as a lazy template: ``static`` (numpy) plus every replicate variable as dask zeros
    of its full size (replicate dim of length ``run.replicates``, chunked by ``block_size``; every other
    dim in one chunk). Shapes and dtypes come from one computed replicate, so the template follows the
    engine's variables whatever they are."""
    import dask.array as da

    sample = engine.annotate(engine.block_dataset(run, range(0, 1)), run.config)
    lazy = {}
    for name, var in _replicate_variables(sample).variables.items():
        shape = tuple(run.replicates if dim == schema.REPLICATE else size for dim, size in var.sizes.items())
        chunks = tuple(block_size if dim == schema.REPLICATE else size for dim, size in var.sizes.items())
        lazy[name] = xr.Variable(var.dims, da.zeros(shape, dtype=var.dtype, chunks=chunks), attrs=var.attrs)
    other_coords = {name: coord for name, coord in sample.coords.items() if schema.REPLICATE not in coord.dims}
    dynamic = xr.Dataset(lazy, coords={**other_coords, schema.REPLICATE: np.arange(run.replicates)})
    return xr.merge([static, dynamic], combine_attrs="override")


def _chunk_encoding(template: xr.Dataset) -> dict:
    return {name: {"chunks": tuple(chunks[0] for chunks in var.chunks)}
            for name, var in template.variables.items() if var.chunks is not None}


class _WorkDir:
    """The resumable work directory beside a target: the store, the run manifest and block markers."""

    def __init__(self, target: Path):
        self.target = target
        self.path = target.with_name(f".{target.name}.resumable")
        self.store = self.path / target.name
        self.markers = self.path / _MARKERS

    def manifest(self, config_text: str, block_size: int) -> dict:
        return {"config_sha256": hashlib.sha256(config_text.encode()).hexdigest(), "block_size": block_size}

    def resumable(self, manifest: dict) -> bool:
        """True when a partial run with this manifest is there to resume; InputError when a different one is."""
        path = self.path / _MANIFEST
        if not path.exists() or not self.store.exists():
            return False
        found = json.loads(path.read_text())
        if found != manifest:
            raise InputError(f"{self.target}: --resume: the partial run in {self.path} is of a different "
                             f"config or block size; rerun without --resume to start over")
        return True

    def create(self, template: xr.Dataset, manifest: dict) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.markers.mkdir(parents=True)
        template.to_zarr(self.store, mode="w", compute=False, consolidated=False, zarr_format=io.ZARR_FORMAT,
                         encoding=_chunk_encoding(template))
        (self.path / _MANIFEST).write_text(json.dumps(manifest))  # last: a manifest means a usable store

    def done(self) -> set[str]:
        return {marker.name for marker in self.markers.iterdir() if not marker.name.startswith(".")}

    def commit(self) -> None:
        """Consolidate the store's metadata and move it to the target (atomically, by :func:`io.staged`)."""
        import zarr

        zarr.consolidate_metadata(str(self.store), zarr_format=io.ZARR_FORMAT)
        with io.staged(self.target) as staging:
            os.replace(self.store, staging)
        shutil.rmtree(self.path)


def _gather_in_order(futures: list, bar) -> Iterator[xr.Dataset]:
    """Block Datasets in replicate order as they complete (memory: the blocks finished out of order)."""
    from dask.distributed import as_completed

    index = {future.key: i for i, future in enumerate(futures)}
    ready: dict[int, xr.Dataset] = {}
    next_index = 0
    for future, block in as_completed(futures, with_results=True):
        bar.update(block.sizes[schema.REPLICATE])
        ready[index[future.key]] = block
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1


def run_on_cluster(cfg: Config, output: str | Path | None, *, replicates: int | None = None,
                   seed: int | None = None, keep: str | None = None,
                   block_size: int = engine.DEFAULT_BLOCK_SIZE, scheduler: str | None = None,
                   workers: int | None = None, resume: bool = False, quiet: bool = False,
                   client: Client | None = None, kernel: str | None = None) -> xr.Dataset:
    """Simulate ``cfg`` on a dask cluster and return the result (opened from ``output`` when given).

    The cluster is ``client``, else the scheduler at ``scheduler`` (``tcp://host:port``), else a
    ``LocalCluster`` of ``workers`` processes started for the run. ``replicates``, ``seed`` and ``keep``
    override the config's ``[run]`` as in :func:`simkit.engine.prepare`; ``block_size`` is the number of
    replicates per task and per zarr chunk along ``replicate`` (it does not change the values).

    ``output`` ``.zarr``: tasks write their blocks into the store; ``resume`` continues an interrupted run
    of the same config and block size. ``.nc`` or ``None``: blocks are gathered on the client (in memory
    for ``None``; the ``.nc`` file is written with :func:`simkit.io.write_blocks`). The attrs are those of
    a local run plus ``execution = "dask: <scheduler address>, <n> workers"``.
    """
    fmt = io.output_format(output) if output is not None else None
    if resume and fmt != "zarr":
        raise InputError(f"{output or 'no output'}: --resume needs a .zarr output")
    run = engine.prepare(cfg, replicates, seed, keep, kernel)
    blocks = blocks_of(run.replicates, block_size)
    if fmt == "zarr":
        work = _WorkDir(Path(output))
        manifest = work.manifest(run.config.to_toml(), block_size)
        resume = resume and work.resumable(manifest)  # a mismatch fails here, before any cluster starts
    with connect(client, scheduler, workers) as client:
        check_workers(client)
        static = engine.annotate(engine.static_dataset(run), run.config)
        static.attrs["execution"] = execution(client)
        if not quiet:
            print(f"simkit: {static.attrs['execution']}, {len(blocks)} blocks of up to {block_size} replicates"
                  + (f"; dashboard {client.dashboard_link}" if _has_dashboard(client) else ""), file=sys.stderr)
        if fmt == "zarr":
            _write_store(client, run, static, blocks, work, manifest, resume=resume, quiet=quiet)
            return io.open_result(output)
        return _gather(client, run, static, blocks, output, quiet=quiet)


def _gather(client: Client, run: engine.Run, static: xr.Dataset, blocks: list[range], output: Path | None, *,
            quiet: bool) -> xr.Dataset:
    """Blocks computed on the cluster and gathered on the client: written to the netCDF ``output`` with
    :func:`simkit.io.write_blocks`, or merged in memory when ``output`` is None."""
    from .progress import progress_bar

    config_text = run.config.to_toml()
    futures = [client.submit(compute_block, config_text, block.start, block.stop, run.kernel, retries=RETRIES,
                             key=_key(block))
               for block in blocks]
    try:
        with progress_bar(run.replicates, enabled=not quiet) as bar:
            parts = _gather_in_order(futures, bar)
            if output is not None:
                io.write_blocks(static, parts, output)
                return io.open_result(output)
            parts = list(parts)
    finally:
        client.cancel(futures)
    dynamic = xr.concat(parts, dim=schema.REPLICATE) if len(parts) > 1 else parts[0]
    return engine.annotate(xr.merge([static, dynamic], combine_attrs="override"), run.config)


def _write_store(client: Client, run: engine.Run, static: xr.Dataset, blocks: list[range], work: _WorkDir,
                 manifest: dict, *, resume: bool, quiet: bool) -> None:
    """Tasks write the blocks without a marker into the work directory's store; then it becomes the target.
    On any failure or interruption the work directory stays, for ``resume``."""
    from dask.distributed import as_completed

    from .progress import progress_bar

    if resume:
        done = work.done()  # the store keeps the attrs of the run that created it
    else:
        work.create(template_dataset(run, static, blocks[0].stop - blocks[0].start), manifest)
        done = set()
    missing = [block for block in blocks if _marker_name(block.start, block.stop) not in done]
    if resume and not quiet:
        print(f"simkit: resuming: {len(blocks) - len(missing)} of {len(blocks)} blocks already written, "
              f"computing {len(missing)}", file=sys.stderr)
    config_text = run.config.to_toml()
    futures = [client.submit(write_block, config_text, block.start, block.stop, str(work.store), str(work.markers),
                             run.kernel, retries=RETRIES, key=_key(block)) for block in missing]
    try:
        with progress_bar(run.replicates, enabled=not quiet) as bar:
            bar.update(run.replicates - sum(len(block) for block in missing))
            for _, written in as_completed(futures, with_results=True):
                bar.update(written)
    except BaseException:
        client.cancel(futures)
        if not quiet:
            print(f"simkit: partial run kept in {work.path}: rerun with --resume to finish it", file=sys.stderr)
        raise
    work.commit()


def _key(block: range) -> str:
    """A unique task key naming the block (readable on the dashboard; unique so reruns never share tasks)."""
    return f"simkit-block-{block.start}-{block.stop}-{uuid.uuid4().hex[:8]}"


def _has_dashboard(client: Client) -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None and bool(client.dashboard_link)
