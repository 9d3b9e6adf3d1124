"""The resource guard: a run whose planned memory or output exceeds what the machine has is refused before it
starts, with the estimate and an option that would fit; and the default block size, which bounds a run's memory
by the block rather than by its replicates.

The estimate counts the int64 arrays of :func:`simkit.engine.run.block_dataset` (8 bytes per value): per
replicate, sweep point and scenario the totals (1 + options), the regional totals (regions × (1 + options)),
the regional timeline (regions × report times, with ``[timeline]``) and, with ``keep = "full"``, the station
arrays (stations × (1 + options + report times), and stations × (2 + 2 × options + report times) more of
ground truth when the config has manipulation blocks). Unless given, a block holds as many replicates as fit
in :data:`BLOCK_BYTES` (:func:`block_size`). A block is held about :data:`COPIES` times while it is assembled
into a Dataset and written; a local run keeps up to 3 × workers + 1 blocks (2 × workers submitted ahead, one
being computed per worker, one being written; at most all the run's blocks); a netCDF output gathers every
replicate in memory, twice while concatenating (``simkit run`` without an output keeps the totals only). The
output is the uncompressed size of the replicate arrays (zarr and netCDF compress it, so the check is
conservative). Memory available is ``MemAvailable`` of ``/proc/meminfo`` (psutil elsewhere, when installed; no
memory check without either); disk space is that of the output's folder.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from simkit.errors import InputError

BYTES = 8  #: every count is int64
#: the parameters of a run that the options suggested by :func:`check_run` set
OPTIONS = ("keep", "replicates", "block_size", "output", "processes")
#: bytes of one block's arrays when the block size is not given: a block holds as many replicates as fit,
#: so that the memory of a run is bounded by the block, whatever its replicates, sweep points and scenarios
BLOCK_BYTES = 32 * 2**20
#: the most replicates in a block when the block size is not given (small runs: fewer, larger numpy calls)
MAX_BLOCK_SIZE = 32
#: copies of a block alive while it becomes a Dataset and is written (the arrays, their reshaped Dataset,
#: the encoder's buffer)
COPIES = 3


#: allocations of at least this many bytes are mapped from the system and returned to it when freed
#: (:func:`release_large_blocks`)
MMAP_THRESHOLD = 2**20
#: the threshold for a command whose memory is one election and its null draws (``simkit forensics``): each
#: draw frees and allocates again the same station arrays of a few MB, which mapped anew on every draw are
#: page-faulted in anew (system CPU); below glibc's largest threshold (32 MiB) the heap reuses them
REUSED_ARRAYS_THRESHOLD = 32 * 2**20
_M_MMAP_THRESHOLD = -3  #: mallopt's parameter, from glibc's <malloc.h>


def release_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make this process (and the worker processes it forks later) map every allocation of at least
    ``threshold`` bytes (default :data:`MMAP_THRESHOLD`) from the system, so that a block's arrays go back to it
    when freed, whichever thread frees them. glibc's default threshold rises to the size of the largest block freed (up to 32 MiB),
    after which block-sized arrays come from per-thread heaps that a long run fragments and never gives back:
    a run's memory then crept up with the blocks drawn, most in the process that receives and writes them
    (``mallopt(M_MMAP_THRESHOLD)`` also stops that rise). Returns False where the C library has no ``mallopt``
    (not glibc): nothing changes there."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, threshold) == 1


def available_memory() -> int | None:
    """Bytes of memory available to a new run, None when the platform does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def free_disk(path: str | Path) -> int:
    """Bytes free on the filesystem that will hold ``path`` (its first existing ancestor)."""
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


@dataclass(frozen=True)
class Plan:
    """Bytes per replicate of a run's arrays: ``summary`` (totals, all sweep points and scenarios) and
    ``stations`` (the station-level arrays of ``keep = "full"``, 0 for ``summary``)."""

    summary: int
    stations: int

    @property
    def per_replicate(self) -> int:
        return self.summary + self.stations


def plan(run) -> Plan:
    """The bytes per replicate of ``run`` (a :class:`simkit.engine.run.Run`)."""
    points_scenarios = len(run.plans) * len(run.scenario_names)
    options = len(run.config.options)
    regions = len(run.electorate.region_names)
    summary = (1 + options) * (1 + regions) * BYTES * points_scenarios
    stations = 0
    times = len(run.config.timeline.report_times()) if run.config.timeline is not None else 0
    summary += regions * times * BYTES * points_scenarios
    if run.keep == "full":
        truth = bool(run.config.manipulation)
        per_station = 1 + options + ((2 + 2 * options) if truth else 0) + times * (1 + truth)
        stations = run.electorate.n_stations * per_station * BYTES * points_scenarios
    return Plan(summary, stations)


def block_size(run, requested: int | None = None) -> int:
    """Replicates per block: ``requested``, or as many as fit in :data:`BLOCK_BYTES` (at least 1, at most
    :data:`MAX_BLOCK_SIZE`). The block size never changes results (streams are keyed by replicate)."""
    if requested is not None:
        return requested
    return max(1, min(MAX_BLOCK_SIZE, BLOCK_BYTES // plan(run).per_replicate))


def peak_memory(per_replicate: int, replicates: int, block_size: int, workers: int, gathered: bool) -> int:
    """Bytes held at once: blocks in flight, plus every replicate twice when ``gathered`` (netCDF or no output)."""
    block = min(block_size, replicates) * per_replicate * COPIES
    n_blocks = -(-replicates // block_size)
    in_flight = block * min(n_blocks, 3 * workers + 1 if workers > 1 else 1)
    return in_flight + (2 * replicates * per_replicate if gathered else 0)


def _size(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    return ""


def check_run(run, requested_block_size: int | None, workers: int, output: str | Path | None, source: str) -> None:
    """InputError (one line, naming ``source``) when ``run`` would need more memory than is available or
    write more than the output's disk holds, with the estimate and options that fit. ``requested_block_size``
    None: the default of :func:`block_size`."""
    block_size_ = block_size(run, requested_block_size)
    sizes = plan(run)
    fmt = Path(output).suffix.lower() if output is not None else None
    gathered = fmt != ".zarr"
    workers = max(1, workers)
    memory = available_memory()
    need = peak_memory(sizes.per_replicate, run.replicates, block_size_, workers, gathered)
    if memory is not None and need > memory:
        raise InputError(f"{source}: this run needs about {_size(need)} of memory and {_size(memory)} is available; "
                         f"{_fits(sizes, run, block_size_, workers, gathered, memory)}", parameters=OPTIONS)
    if output is not None:
        written = sizes.per_replicate * run.replicates
        disk = free_disk(output)
        if written > disk:
            fewer = disk // sizes.per_replicate
            summary = ("keep=summary (writes " + _size(sizes.summary * run.replicates) + ")"
                       if sizes.stations else None)
            options = [option for option in (summary, f"replicates={fewer:,}" if fewer else None) if option]
            raise InputError(f"{output}: this run writes up to {_size(written)} (uncompressed) and {_size(disk)} is "
                             f"free there; try {' or '.join(options) or 'another folder'}", parameters=OPTIONS)


def _fits(sizes: Plan, run, block_size: int, workers: int, gathered: bool, memory: int) -> str:
    """The options that would fit in ``memory``: keeping totals only, fewer replicates, smaller blocks, a zarr
    output (blocks streamed to disk)."""
    options = []
    if sizes.stations and peak_memory(sizes.summary, run.replicates, block_size, workers, gathered) <= memory:
        options.append("keep=summary")
    fewer = next((n for n in _halvings(run.replicates)
                  if peak_memory(sizes.per_replicate, n, block_size, workers, gathered) <= memory), None)
    if fewer:
        options.append(f"replicates={fewer:,}")
    smaller = next((b for b in _halvings(block_size)
                    if peak_memory(sizes.per_replicate, run.replicates, b, workers, gathered) <= memory), None)
    if smaller:
        options.append(f"block_size={smaller}")
    if gathered and peak_memory(sizes.per_replicate, run.replicates, 1, workers, False) <= memory:
        options.append("output=RESULT.zarr (streamed to disk)")
    if workers > 1 and peak_memory(sizes.per_replicate, run.replicates, block_size, 1, gathered) <= memory:
        options.append("processes=1")
    return f"try {' or '.join(options)}" if options else "no option of this run fits: use a smaller electorate"


def _halvings(value: int):
    while value > 1:
        value //= 2
        yield max(value, 1)
