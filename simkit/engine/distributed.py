"""Scale-out: the same runs on a ``dask.distributed`` cluster, bit-identical to a local run.

dask is the scheduler; this module only says what a task is. A run is split by sweep point and by
blocks of replicates aligned to the zarr chunks (block ``i`` holds replicates
``[i × block_size, (i + 1) × block_size)``; each sweep point is its own chunk along the sweep dims): one
task per (sweep point, block). Each task receives a :class:`RunSpec` (the resolved config TOML text, the kernel and
the hash of the client's electorate), its sweep point (a flat index, C order) and its replicate range, nothing
else: it rebuilds the run with :func:`simkit.parse_config` and :func:`simkit.engine.run.prepare` (cached per
worker process; refused when the worker's electorate is not the client's), computes its part with
:func:`simkit.engine.run.block_dataset` (random streams keyed by ``(replicate, station_group, component)``, so
the values do not depend on which worker computes which part) and writes its region of the zarr store itself
(``to_zarr(region=…)``, in the stored types the client read once from the template; one chunk per variable,
point, scenario and block, as a local run chunks it, so no two tasks touch the same chunk file).
:func:`map_replicates` runs any per-replicate function (the forensic calibration) through the same tasks.

Files, for a target ``out/kz.zarr``::

    out/.kz.zarr.resumable.lock      held (``flock``) by the run writing kz.zarr: a second run on it is refused
    out/.kz.zarr.resumable/          work directory, kept when a run is interrupted or fails run.json
    what the partial run is (config and electorate hashes, seed, kernel, block size, versions)
    done/<point>-<start>-<stop>  one marker per sweep point and block written completely kz.zarr/
    the store: static variables and full-size arrays, filled by the tasks out/kz.zarr                      appears only
    when every block is written (via :func:`simkit.placement.placing.staged`)

``resume=True`` reuses the work directory of an interrupted run of the same config, electorate and block size
and submits only the parts without a marker; without it, a work directory left there is discarded (a warning says
how many finished parts it held). A worker that dies mid-run has its tasks rescheduled by dask
(the scheduler's ``allowed-failures``); a task that raises is retried (``retries``). Rewriting a block
writes the same bytes, so a retried block leaves the store identical.

Workers on a remote cluster must see the output directory at the same path (a shared filesystem),
and any electorate CSV at the absolute path the config resolves it to.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import xarray as xr

from simkit.engine import count_match, run as engine
from simkit import _version, io, progress, schema
from simkit.placement import journals, placing
from simkit.config.core import Config, CsvElectorate
from simkit.errors import InputError, counted
from simkit.config.load import parse_config
from simkit.electorate.build import Electorate, electorate_of
from simkit.engine.resources import check_run
from simkit import streams

#: where a run reports what it does (the command line shows it on stderr: simkit.progress.log_to_stderr)
LOG = logging.getLogger(__name__)

if TYPE_CHECKING:  # dask.distributed is an optional dependency: imported when a run starts
    from dask.distributed import Client

#: times a block task that raised is resubmitted (a worker that dies is handled by the scheduler)
RETRIES = 3
_MANIFEST = "run.json"
_MARKERS = "done"


# --------------------------------------------------------------------------------------------- worker side

@dataclass(frozen=True)
class RunSpec:
    """What a task needs to rebuild the client's run: the resolved config text, the kernel and the digest of the
    electorate the client built (:attr:`simkit.electorate.build.Electorate.sha256`)."""

    config_text: str
    kernel: str
    electorate_sha256: str

    @classmethod
    def of(cls, run: engine.Run) -> RunSpec:
        return cls(run.config.to_toml(), run.kernel, run.electorate.sha256)

    def run(self) -> engine.Run:
        return _prepared(self)


@functools.lru_cache(maxsize=4)
def _prepared(spec: RunSpec) -> engine.Run:
    """The run of ``spec``, built once per worker process and spec (a CSV edited between two runs on the same
    cluster is read again); InputError, before any count matching is solved, unless the electorate this worker
    reads is the client's."""
    cfg = parse_config(spec.config_text, source="<distributed run config>")
    electorate = electorate_of(cfg)
    if electorate.sha256 != spec.electorate_sha256:
        where = cfg.electorate.path if isinstance(cfg.electorate, CsvElectorate) else "the synthetic electorate"
        raise InputError(f"{where}: electorate: a worker reads another electorate (sha256 {electorate.sha256[:16]}) "
                         f"than the client ({spec.electorate_sha256[:16]}): every worker must see the same "
                         f"electorate file at the same path", parameters=("electorate",))
    return engine.prepare(cfg, kernel=spec.kernel, electorate=electorate)


def _replicate_variables(block: xr.Dataset) -> xr.Dataset:
    """The variables of ``block`` that have a ``replicate`` dim, without the ``replicate`` index
    (written once when the store is created, so concurrent tasks never share a chunk)."""
    names = [name for name, var in block.variables.items()
             if schema.REPLICATE in var.dims and name != schema.REPLICATE]
    return block[names].drop_vars(schema.REPLICATE, errors="ignore")


def compute_block(spec: RunSpec, point: int, start: int, stop: int) -> xr.Dataset:
    """Task: replicates ``[start, stop)`` of sweep point ``point`` (its sweep dims of length 1) of the run
    of ``spec``, annotated."""
    run = spec.run()
    return engine.annotate(engine.block_dataset(run, range(start, stop), point), run.config)


def write_block(spec: RunSpec, point: int, start: int, stop: int, store: str, markers: str,
                dtypes: dict[str, np.dtype]) -> int:
    """Task: compute replicates ``[start, stop)`` of sweep point ``point`` and write them into their region
    of the zarr ``store``, each variable in its stored type ``dtypes`` (the template's: checked, never wrapped,
    by :func:`simkit.io.narrowed_block`), then leave the marker ``markers/<point>-<start>-<stop>``. Returns the
    number of replicates written."""
    run = spec.run()
    block = io.narrowed_block(_replicate_variables(compute_block(spec, point, start, stop)), dtypes)
    region = {dim: slice(index, index + 1) for dim, index in zip(run.config.sweep, _unravel(run, point))}
    block.to_zarr(store, region={**region, schema.REPLICATE: slice(start, stop)}, mode="r+", consolidated=False,
                  zarr_format=io.ZARR_FORMAT)
    marker = Path(markers) / _marker_name(point, start, stop)
    partial = marker.with_name(f".{marker.name}.{uuid.uuid4().hex}")
    partial.write_text(f"{point} {start} {stop}\n")
    os.replace(partial, marker)  # a marker exists only for a part written completely
    return stop - start


def replicate_rows(spec: RunSpec, point: int, start: int, stop: int, function) -> list:
    """Task: ``function(election, point, replicate)`` for every replicate of ``[start, stop)`` at sweep
    point ``point``, where ``election`` is that replicate's Dataset (full output with the static variables,
    sweep point selected); returns the concatenated lists ``function`` returns."""
    run = spec.run()
    block = compute_block(spec, point, start, stop).isel({dim: 0 for dim in run.config.sweep})
    static = engine.static_dataset(run).drop_vars(list(run.config.sweep))  # registers, regions, station ids
    ds = xr.merge([static, block], combine_attrs="override")
    rows = []
    for replicate in range(start, stop):
        rows.extend(function(ds.sel({schema.REPLICATE: replicate}), point, replicate))
    return rows


def _unravel(run: engine.Run, point: int) -> tuple[int, ...]:
    """The index of flat sweep point ``point`` along each sweep dim."""
    return tuple(int(i) for i in np.unravel_index(point, run.sweep_shape)) if run.sweep_shape else ()


def _marker_name(point: int, start: int, stop: int) -> str:
    return f"{point:06d}-{start:012d}-{stop:012d}"


# --------------------------------------------------------------------------------------------- client side

def blocks_of(replicates: int, block_size: int) -> list[range]:
    """Replicate ranges of ``block_size`` (the last one shorter), aligned to the zarr chunks."""
    if block_size < 1:
        raise InputError(f"block_size: must be at least 1, got {block_size}", parameters=("block_size",))
    return [range(start, min(start + block_size, replicates)) for start in range(0, replicates, block_size)]


def _versions() -> dict[str, str]:
    """Versions that decide the drawn values: the same on every worker as on the client, or no run."""
    import scipy

    return {"simkit": _version.__version__, "numpy": np.__version__, "scipy": scipy.__version__}


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
    closed after it.

    A client started here never makes itself dask's default scheduler (every task is submitted to it by name):
    one that fails to connect, or is closed only when collected, would otherwise set or reset dask's ``scheduler``
    setting at that moment, sending every later ``compute`` of this process to a client that does not exist."""
    if client is not None:
        yield client
        return
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            owned = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:  # ValueError: not an address (no port, no protocol)
            raise InputError(f"scheduler {scheduler}: cannot connect: {error}", parameters=("scheduler",)) from None
        with owned:
            yield owned
        return
    if workers is None or workers < 1:
        raise InputError(f"workers: must be at least 1, got {workers}", parameters=("workers",))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster, set_as_default=False) as owned:
        yield owned


def template_dataset(run: engine.Run, static: xr.Dataset, block_size: int) -> xr.Dataset:
    """The full result as a lazy template: ``static`` (numpy) plus every replicate variable as dask zeros
    of its full size (replicate dim of length ``run.replicates``, chunked by ``block_size``; every other dim in one
    chunk: :func:`simkit.io.zarr_encoding` stores it as a local run, a chunk per block and world). Shapes and dtypes
    come from one computed replicate of the first sweep point, so the template follows the engine's variables
    whatever they are; the station-level counts are stored as a local run stores them
    (:func:`simkit.io.stored_dtypes`)."""
    import dask.array as da

    sample = _replicate_variables(engine.annotate(engine.block_dataset(run, range(0, 1), 0), run.config))
    sweep_sizes = dict(zip(run.config.sweep, run.sweep_shape))
    dtypes = io.stored_dtypes(static, sample)
    lazy = {}
    for name, var in sample.variables.items():
        shape = tuple(run.replicates if dim == schema.REPLICATE else sweep_sizes.get(dim, size)
                      for dim, size in var.sizes.items())
        chunks = tuple(block_size if dim == schema.REPLICATE else size for dim, size in zip(var.dims, shape))
        lazy[name] = xr.Variable(var.dims, da.zeros(shape, dtype=dtypes.get(name, var.dtype), chunks=chunks),
                                 attrs=var.attrs)
    other_coords = {name: coord for name, coord in sample.coords.items() if schema.REPLICATE not in coord.dims}
    dynamic = xr.Dataset(lazy, coords={**other_coords, schema.REPLICATE: np.arange(run.replicates)})
    return xr.merge([static, dynamic], combine_attrs="override")


class _WorkDir:
    """The resumable work directory beside a target: the store, the run manifest and block markers."""

    def __init__(self, target: Path):
        self.target = target
        self.path = target.with_name(f".{target.name}.resumable")
        self.store = self.path / target.name
        self.markers = self.path / _MARKERS

    @contextmanager
    def held(self) -> Iterator[None]:
        """This run's hold on the target (a non-blocking ``flock`` of ``.NAME.resumable.lock`` beside the work
        directory, removed when the run ends): a second run on the same target, which would share the work
        directory or delete it, is refused (InputError) instead. A lock file replaced since it was opened (a run
        that just ended removed it) counts as held, to be safe."""
        lock = self.path.with_name(f"{self.path.name}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _locked(descriptor, lock):
                raise InputError(f"{self.target}: another run is writing it now (it holds {lock}); wait for that "
                                 "run to end, or write elsewhere")
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
        finally:
            os.close(descriptor)

    @staticmethod
    def manifest(spec: RunSpec, run: engine.Run, block_size: int) -> dict:
        """Everything that changes the numbers written: the resolved config (its hash; the seed and the number
        of replicates are in it and also listed, and so is ``keep``, which changes the variables written: a refusal
        names the parameter to set back rather than the hash), what the draws read beyond the config text (the
        built electorate's hash: a CSV edited since is another election), the kernel, the block size (the chunking
        of the store), the station grouping of the random streams, and the simkit and numpy versions."""
        return {"seed": run.seed, "replicates": run.replicates, "kernel": run.kernel, "keep": run.keep,
                "block_size": block_size, **_installed(),
                "config_sha256": hashlib.sha256(spec.config_text.encode()).hexdigest(),
                "electorate_sha256": spec.electorate_sha256, "parts": "sweep point x block"}

    def resumable(self, manifest: dict) -> bool:
        """True when a partial run with this manifest is there to resume; InputError naming the first field
        that differs when a different one is, or that it does not record (a partial run of an earlier simkit: it
        cannot be told to be this run)."""
        path = self.path / _MANIFEST
        if not path.exists() or not self.store.exists():
            return False
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = None
        if not isinstance(found, dict):
            raise InputError(f"{self.target}: resume: the record of the partial run in {self.path} is unreadable, "
                             "so it cannot be resumed safely; run again without resume to start over",
                             parameters=("resume",))
        for field, value in manifest.items():
            if field not in found:
                raise InputError(f"{self.target}: resume: the partial run in {self.path} does not record {field}, "
                                 "so it cannot be resumed safely; run again without resume to start over",
                                 parameters=("resume", field))
            if found[field] != value:
                raise InputError(f"{self.target}: resume: {field} differs from the partial run in {self.path} "
                                 f"({found[field]!r} there, {value!r} now); run again without resume to start over",
                                 parameters=("resume", field))
        return True

    def discard(self, manifest: dict) -> None:
        """Remove the work directory of an interrupted run before a fresh one (at once: :func:`journals.remove_at_once`,
        so that a removal interrupted part way leaves nothing a ``resume`` would read), then say so (a warning)
        when it held finished parts: how many, and whether ``resume`` would have kept them (its ``manifest`` is this
        run's)."""
        finished = len(self.done()) if self.markers.is_dir() else 0
        try:
            same = finished > 0 and self.resumable(manifest)
        except InputError:
            same = False
        journals.remove_at_once(self.path)
        if finished:
            LOG.warning("%s: discarded %s of an interrupted run (in %s) and started afresh; %s", self.target,
                        counted(finished, "finished part"), self.path,
                        "resume would have kept them" if same else "resume could not have continued that run")

    def create(self, template: xr.Dataset, manifest: dict) -> None:
        """The work directory, its store made from ``template`` (no block written yet) and the ``manifest``; on a
        full disk, or another error of the file system (:func:`_file_error`), it is removed (nothing to resume: no
        manifest) and the one line raised."""
        self.discard(manifest)
        try:
            self.markers.mkdir(parents=True)
            template.to_zarr(self.store, mode="w", compute=False, consolidated=False, zarr_format=io.ZARR_FORMAT,
                             encoding=io.zarr_encoding(template))
            (self.path / _MANIFEST).write_text(json.dumps(manifest))  # last: a manifest means a usable store
        except OSError as error:
            if not _file_error(error):
                raise
            journals.remove_at_once(self.path)
            if placing.disk_full(error):
                raise placing.no_space(self.target, placing.NOTHING_WRITTEN) from None
            raise placing.not_written(self.target, error) from None

    @contextmanager
    def kept_on_a_write_error(self) -> Iterator[None]:
        """A full disk, or another error of the file system (:func:`_file_error`: a permission refused, a file size
        limit), while blocks are written into the store (by the tasks, outside :func:`simkit.placement.placing.staged`)
        or its metadata consolidated: the one line, naming the work directory kept for ``resume``."""
        try:
            yield
        except OSError as error:
            if not _file_error(error):
                raise
            if placing.disk_full(error):
                raise placing.no_space(self.target, f"the partial run is kept in {self.path}: free some space and run "
                                  f"again with resume to finish it", parameters=("resume",)) from None
            raise InputError(f"{self.target}: could not be written ({placing.reason_of(error)}); the partial run is "
                             f"kept in {self.path}: mend that and run again with resume to finish it",
                             parameters=("resume",)) from None

    def stored_dtypes(self) -> dict[str, np.dtype]:
        """The stored type of each replicate variable of the store, read once on the client (the tasks narrow
        their blocks to it, checked)."""
        import zarr  # here, not at the top: every command imports this module, few write a store (0.15 s)

        group = zarr.open_group(str(self.store), mode="r", zarr_format=io.ZARR_FORMAT)
        return {name: array.dtype for name, array in group.arrays()
                if name != schema.REPLICATE and schema.REPLICATE in array.attrs.get("_ARRAY_DIMENSIONS", ())}

    def done(self) -> set[str]:
        return {marker.name for marker in self.markers.iterdir() if not marker.name.startswith(".")}

    def commit(self) -> None:
        """Consolidate the store's metadata and move it to the target (atomically, by :func:`placing.staged`)."""
        import zarr

        zarr.consolidate_metadata(str(self.store), zarr_format=io.ZARR_FORMAT)
        with placing.staged(self.target) as staging:
            os.replace(self.store, staging)
        journals.remove_at_once(self.path)


def _locked(descriptor: int, lock: Path) -> bool:
    """Whether this process now holds the ``flock`` of the open file ``descriptor`` and it is still the file at
    ``lock`` (False at once, without waiting, when another process holds it)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.path.samestat(os.fstat(descriptor), os.stat(lock))
    except (BlockingIOError, FileNotFoundError):
        return False


def _parts(run: engine.Run, blocks: list[range]) -> list[tuple[int, range]]:
    """The tasks of a run: (sweep point, block) pairs, block by block."""
    return [(point, block) for block in blocks for point in range(len(run.plans))]


def _assemble(run: engine.Run, points: list[xr.Dataset]) -> xr.Dataset:
    """One block's Dataset from its sweep points' Datasets (flat C order), concatenated along the sweep dims."""
    if not run.config.sweep:
        return points[0]
    nested = np.empty(run.sweep_shape, dtype=object)
    for index, part in enumerate(points):
        nested[np.unravel_index(index, run.sweep_shape)] = part
    return xr.combine_nested(nested.tolist(), concat_dim=list(run.config.sweep), combine_attrs="override")


def _gather_in_order(client: Client, run: engine.Run, futures: list, bar) -> Iterator[xr.Dataset]:
    """Block Datasets in replicate order as their sweep points complete (memory: the parts finished out of
    order). ``futures`` are ``client``'s, in :func:`_parts` order."""
    from dask.distributed import as_completed

    n_points = len(run.plans)
    index = {future.key: i for i, future in enumerate(futures)}
    ready: dict[int, xr.Dataset] = {}
    next_block = 0
    for future, part in as_completed(futures, loop=client.loop, with_results=True):
        bar.update(part.sizes[schema.REPLICATE])
        ready[index[future.key]] = part
        while all(next_block * n_points + point in ready for point in range(n_points)):
            yield _assemble(run, [ready.pop(next_block * n_points + point) for point in range(n_points)])
            next_block += 1


#: the fields of a resume manifest (:meth:`_WorkDir.manifest`) that a finished result records, and the attribute
#: recording each (the block size and the parts change the chunking only)
_RECORDED = {"seed": "seed", "replicates": "replicates", "kernel": "kernel",
             "station_group_size": "station_group_size", "simkit_version": "simkit_version",
             "numpy_version": "numpy_version", "config_sha256": "simkit_config_sha256",
             "electorate_sha256": "electorate_sha256"}


def _installed() -> dict:
    """The fields of a resume manifest that this installation decides: the station grouping of the random streams
    and the simkit and numpy versions."""
    return {"station_group_size": streams.STATION_GROUP_SIZE, "simkit_version": _version.__version__,
            "numpy_version": np.__version__}


def _check_resumable(output: str | Path | None) -> None:
    """InputError unless ``output`` is a ``.zarr`` store, where ``resume`` may continue a run."""
    if output is None or io.output_format(output) != "zarr":
        raise InputError(f"{output or 'no output'}: resume needs a .zarr output", parameters=("resume",))


def finished(cfg: Config, output: str | Path, *, replicates: int | None = None, seed: int | None = None,
             keep: str | None = None, kernel: str | None = None, source: str = "run") -> bool:
    """Whether ``output`` already holds this run, finished, so that ``resume`` has nothing left to do: no
    interrupted run is kept beside it, and the simulation there records the same resolved config, electorate,
    seed, replicates, kernel, station grouping and versions as :func:`run_on_cluster` with these arguments
    would (the fields a resume checks). Reads only; InputError when ``output`` is no ``.zarr``. The installation's
    fields are compared first; the run is prepared only when they agree, its count-matched scenarios given the
    solutions stored with the result (:func:`simkit.engine.count_match.with_solutions_of`: kept when solved for
    this config, so no pilot is drawn again to tell that the run is the one stored)."""
    _check_resumable(output)
    work = _WorkDir(Path(output))
    if work.path.exists() or not work.target.exists():
        return False
    try:
        attrs = io.open_result(work.target).attrs
    except InputError:
        return False
    if any(attrs.get(_RECORDED[field]) != value for field, value in _installed().items()):
        return False
    try:
        stored = parse_config(attrs.get("simkit_config", ""), source=f"{output}: simkit_config")
    except InputError:
        return False
    run = engine.prepare(count_match.with_solutions_of(cfg, stored), replicates, seed, keep, kernel, source)
    manifest = work.manifest(RunSpec.of(run), run, block_size=0)
    return all(attrs.get(name) == manifest[field] for field, name in _RECORDED.items())


def run_on_cluster(cfg: Config, output: str | Path | None, *, replicates: int | None = None,
                   seed: int | None = None, keep: str | None = None,
                   block_size: int = engine.DEFAULT_BLOCK_SIZE, scheduler: str | None = None,
                   workers: int | None = None, resume: bool = False, quiet: bool = False,
                   client: Client | None = None, kernel: str | None = None, source: str = "run") -> xr.Dataset:
    """Simulate ``cfg`` on a dask cluster and return the result (opened from ``output`` when given).

    The cluster is ``client``, else the scheduler at ``scheduler`` (``tcp://host:port``), else a
    ``LocalCluster`` of ``workers`` processes started for the run. ``replicates``, ``seed`` and ``keep``
    override the config's ``[run]`` as in :func:`simkit.engine.run.prepare`; ``block_size`` is the number of
    replicates per task and per zarr chunk along ``replicate`` (it does not change the values).

    ``output`` ``.zarr``: tasks write their blocks into the store; ``resume`` continues an interrupted run
    of the same config, electorate, seed, kernel, block size and versions. ``.nc`` or ``None``: blocks are
    gathered on the client (in memory for ``None``; the ``.nc`` file is written with
    :func:`simkit.io.write_blocks`). The attrs
    are those of a local run plus ``execution = "dask: <scheduler address>, <n> workers"``. On a local cluster
    the run is first checked against this machine's memory and disk (:mod:`simkit.engine.resources`; ``source``
    names the config in that error).
    """
    fmt = io.output_format(output) if output is not None else None
    if resume:
        _check_resumable(output)
    run = engine.prepare(cfg, replicates, seed, keep, kernel, source)
    blocks = blocks_of(run.replicates, block_size)
    if client is None and scheduler is None:  # local workers: this machine's memory and disk
        check_run(run, block_size, workers or 1, output, source)
    spec = RunSpec.of(run)
    with contextlib.ExitStack() as held:
        if fmt == "zarr":
            work = _WorkDir(Path(output))
            held.enter_context(work.held())  # for the whole run: a second run on the target is refused
            manifest = work.manifest(spec, run, block_size)
            resume = resume and work.resumable(manifest)  # a mismatch fails here, before any cluster starts
        with connect(client, scheduler, workers) as client:
            check_workers(client)
            static = engine.annotate(engine.static_dataset(run), run.config)
            static.attrs["execution"] = execution(client)
            if not quiet:
                LOG.info("%s, %d blocks of up to %d replicates%s%s", static.attrs["execution"], len(blocks),
                         block_size, f" x {len(run.plans)} sweep points" if len(run.plans) > 1 else "",
                         f"; dashboard {client.dashboard_link}" if _has_dashboard(client) else "")
            if fmt == "zarr":
                _write_store(client, spec, run, static, blocks, work, manifest, resume=resume, quiet=quiet)
                return io.open_result(output)
            return _gather(client, spec, run, static, blocks, output, quiet=quiet)


def map_replicates(cfg: Config, function, *, replicates: int | None = None, seed: int | None = None,
                   block_size: int = engine.DEFAULT_BLOCK_SIZE, scheduler: str | None = None,
                   workers: int | None = None, client: Client | None = None, kernel: str | None = None,
                   quiet: bool = True, electorate: Electorate | None = None) -> list:
    """``function(ds, point, replicate)`` (picklable; returns a list) for every replicate of every sweep
    point of ``cfg``'s full-output simulation, computed on the cluster by :func:`replicate_rows` tasks (one
    per sweep point and block, each simulating its part from the config alone); the lists concatenated in
    task order (block by block, sweep points in C order within a block). ``electorate``: ``cfg.electorate``
    already built, else built here."""
    from dask.distributed import as_completed

    run = engine.prepare(cfg, replicates, seed, "full", kernel, electorate=electorate)
    blocks = blocks_of(run.replicates, block_size)
    with connect(client, scheduler, workers) as client:
        check_workers(client)
        spec = RunSpec.of(run)
        futures = [client.submit(replicate_rows, spec, point, block.start, block.stop, function,
                                 retries=RETRIES, key=_key(point, block)) for point, block in _parts(run, blocks)]
        try:
            with progress.progress_bar(len(futures), enabled=not quiet, unit="part") as bar:
                for _ in as_completed(futures, loop=client.loop):
                    bar.update(1)
            results = client.gather(futures)
        finally:
            client.cancel(futures)
    return [row for part in results for row in part]


def _gather(client: Client, spec: RunSpec, run: engine.Run, static: xr.Dataset, blocks: list[range],
            output: Path | None, *, quiet: bool) -> xr.Dataset:
    """Blocks computed on the cluster and gathered on the client: written to the netCDF ``output`` with
    :func:`simkit.io.write_blocks`, or merged in memory when ``output`` is None."""
    futures = [client.submit(compute_block, spec, point, block.start, block.stop, retries=RETRIES,
                             key=_key(point, block))
               for point, block in _parts(run, blocks)]
    try:
        with progress.progress_bar(run.replicates * len(run.plans), enabled=not quiet, unit=_unit(run)) as bar:
            parts = _gather_in_order(client, run, futures, bar)
            if output is not None:
                io.write_blocks(static, parts, output)
                return io.open_result(output)
            parts = list(parts)
    finally:
        client.cancel(futures)
    dynamic = xr.concat(parts, dim=schema.REPLICATE) if len(parts) > 1 else parts[0]
    return engine.annotate(xr.merge([static, dynamic], combine_attrs="override"), run.config)


def _write_store(client: Client, spec: RunSpec, run: engine.Run, static: xr.Dataset, blocks: list[range],
                 work: _WorkDir, manifest: dict, *, resume: bool, quiet: bool) -> None:
    """Tasks write the blocks without a marker into the work directory's store; then it becomes the target.
    On any failure or interruption the work directory stays, for ``resume``."""
    from dask.distributed import as_completed

    if resume:
        done = work.done()  # the store keeps the attrs of the run that created it
    else:
        work.create(template_dataset(run, static, blocks[0].stop - blocks[0].start), manifest)
        done = set()
    parts = _parts(run, blocks)
    missing = [(point, block) for point, block in parts if _marker_name(point, block.start, block.stop) not in done]
    if resume and not quiet:
        LOG.info("resuming: %d of %d parts (sweep point x block) already written, computing %d",
                 len(parts) - len(missing), len(parts), len(missing))
    dtypes = work.stored_dtypes()
    futures = [client.submit(write_block, spec, point, block.start, block.stop, str(work.store), str(work.markers),
                             dtypes, retries=RETRIES, key=_key(point, block))
               for point, block in missing]
    with work.kept_on_a_write_error():
        try:
            with progress.progress_bar(run.replicates * len(run.plans), enabled=not quiet, unit=_unit(run)) as bar:
                bar.update(sum(len(block) for _, block in parts) - sum(len(block) for _, block in missing))
                for _, written in as_completed(futures, loop=client.loop, with_results=True):
                    bar.update(written)
        except BaseException as error:
            client.cancel(futures)
            if not isinstance(error, InputError) and not _file_error(error):  # those: one line says it
                LOG.warning("partial run kept in %s: run again with resume to finish it", work.path)
            raise
        work.commit()


def _file_error(error: BaseException) -> bool:
    """Whether ``error`` is the file system's (a full disk, or an OSError naming a file: a permission refused, a file
    size limit), not the cluster's (a connection lost, a timeout: OSErrors that name no file)."""
    return placing.disk_full(error) or (isinstance(error, OSError) and error.filename is not None
                                   and not isinstance(error, ConnectionError))


def _key(point: int, block: range) -> str:
    """A unique task key naming the part (readable on the dashboard; unique so reruns never share tasks)."""
    return f"simkit-point{point}-block-{block.start}-{block.stop}-{uuid.uuid4().hex[:8]}"


def _unit(run: engine.Run) -> str:
    """The progress bar's unit: replicates, or replicates of one sweep point when there are several."""
    return "replicate" if len(run.plans) == 1 else "point-replicate"


def _has_dashboard(client: Client) -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None and bool(client.dashboard_link)
