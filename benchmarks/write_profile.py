"""CPU cost of writing a full-output run to zarr, apart from drawing it: the write path of ``simkit run -o X.zarr``.

Draws the benchmark workload's blocks (``benchmarks/workload.toml``, ``keep = "full"``, the engine's default block
size) in memory first, in this process, then times :func:`simkit.io.write_blocks` alone on them (CPU seconds of
every thread of this process: zarr compresses in its own threads), and prints CPU ms per replicate of both, the
stored dtype, chunks and compressor of ``votes``, the store's size on disk, and parts of the write timed alone
(:func:`_parts`: the fixed costs of a store, narrowing, the codec; :func:`_rewrites`: a later block's ``votes`` and
its small arrays written again alone). zarr is imported before the clock starts. Which simkit is measured is
whichever ``import simkit`` finds: run it with ``PYTHONPATH=OTHER_CHECKOUT`` to time another tree's write path on the
same workload (one after the other in one shell, for a ratio).

Usage::

    python benchmarks/write_profile.py [--replicates 320] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from compare import announced  # benchmarks/compare.py: this script's folder is on the path when run as a script

WORKLOAD = Path(__file__).resolve().with_name("workload.toml")


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _size_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 2**20


def _parts(io, static, blocks: list, path: Path) -> dict:
    """Parts of the write, each timed alone: the store with its first block only (``first_block_cpu_ms``: the
    fixed costs, static variables, the first block through xarray and the consolidated metadata, plus one block),
    narrowing every block to its stored types with the range check (``narrow_cpu_ms_per_replicate``), and
    compressing every block's narrowed ``votes`` with the store's codec alone (``votes_codec_cpu_ms_per_replicate``)."""
    import numcodecs

    replicates = sum(block.sizes["replicate"] for block in blocks)
    started = _cpu()
    io.write_blocks(static, iter(blocks[:1]), path)
    first = _cpu() - started
    dtypes = io.stored_dtypes(static, blocks[0])
    started = _cpu()
    narrow = [io.narrowed_block(block, dtypes) for block in blocks]
    narrowing = _cpu() - started
    codec = numcodecs.get_codec(dict(io.COMPRESSOR))
    started = _cpu()
    for block in narrow:
        codec.encode(block["votes"].values)
    return {"first_block_cpu_ms": 1e3 * first, "first_block_replicates": blocks[0].sizes["replicate"],
            "narrow_cpu_ms_per_replicate": 1e3 * narrowing / replicates,
            "votes_codec_cpu_ms_per_replicate": 1e3 * (_cpu() - started) / replicates}


def _rewrites(io, static, blocks: list, store: Path) -> dict:
    """CPU ms per later block (``time.process_time``: every thread) of writing again, through zarr's own API, its
    ``votes`` and, apart, its arrays without a station dim into the finished ``store``: one zarr call per array and
    block, the values narrowed beforehand, untimed (``nan`` with one block)."""
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    dtypes = io.stored_dtypes(static, blocks[0])
    parts = {"votes": ["votes"],
             "arrays without a station dim": [name for name in dtypes if "station" not in blocks[0][name].dims
                                              and name != "replicate"]}
    seconds = dict.fromkeys(parts, 0.0)
    start = blocks[0].sizes["replicate"]
    for block in blocks[1:]:
        stop = start + block.sizes["replicate"]
        for part, names in parts.items():
            values = {name: io.narrowed(name, block[name].values, dtypes[name]) for name in names}
            started = time.process_time()
            for name in names:
                axis = block[name].dims.index("replicate")
                group[name][(slice(None),) * axis + (slice(start, stop),)] = values[name]
            seconds[part] += time.process_time() - started
        start = stop
    return {part: 1e3 * total / (len(blocks) - 1) if len(blocks) > 1 else float("nan")
            for part, total in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=320)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import zarr  # noqa: F401 - imported before the clock starts

    import simkit
    from simkit import io
    from simkit.engine import run as engine

    run = engine.prepare(simkit.load_config(WORKLOAD), args.replicates, 1, "full")
    static = engine.annotate(engine.static_dataset(run), run.config)
    started = _cpu()
    blocks = [engine.annotate(block, run.config) for block in engine.iter_blocks(run, workers=1)]
    drawn = _cpu() - started
    with tempfile.TemporaryDirectory(prefix="simkit-write-") as folder:
        path = Path(folder) / "full.zarr"
        started, wall = _cpu(), time.perf_counter()
        io.write_blocks(static, iter(blocks), path, **announced(io, args.replicates))
        written, wall = _cpu() - started, time.perf_counter() - wall
        votes = zarr.open_group(str(path), mode="r")["votes"]
        report = {"simkit": str(Path(simkit.__file__).parent), "replicates": args.replicates, "blocks": len(blocks),
                  "draw_cpu_ms_per_replicate": 1e3 * drawn / args.replicates,
                  "write_cpu_ms_per_replicate": 1e3 * written / args.replicates,
                  "write_wall_ms_per_replicate": 1e3 * wall / args.replicates,
                  **_parts(io, static, blocks, Path(folder) / "first.zarr"),
                  "votes_dtype": str(votes.dtype), "votes_chunks": list(votes.chunks),
                  "votes_compressor": str(votes.compressors), "store_mb": _size_mb(path),
                  "later_block_cpu_ms": _rewrites(io, static, blocks, path)}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{report['simkit']}: {args.replicates} replicates in {len(blocks)} blocks; draw "
              f"{report['draw_cpu_ms_per_replicate']:.2f} CPU ms/replicate, write {report['write_cpu_ms_per_replicate']:.2f} "
              f"CPU ms/replicate ({report['write_wall_ms_per_replicate']:.2f} ms wall); votes {report['votes_dtype']} "
              f"in chunks {tuple(report['votes_chunks'])}, {report['votes_compressor']}; {report['store_mb']:.1f} MB")
        print(f"parts: the store with its first block of {report['first_block_replicates']} replicates "
              f"{report['first_block_cpu_ms']:.0f} CPU ms; narrowing {report['narrow_cpu_ms_per_replicate']:.3f} "
              f"and the votes' codec alone {report['votes_codec_cpu_ms_per_replicate']:.3f} CPU ms/replicate; "
              "a later block, written alone: " + ", ".join(f"{names} {cost:.1f}" for names, cost
                                                          in report["later_block_cpu_ms"].items()) + " CPU ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
