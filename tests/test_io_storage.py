"""How a simulation is stored in zarr: station-level counts in the narrowest signed type the registers allow, one
chunk per block and world, read back exactly as drawn (int64), whatever the block size, workers and layout."""
from __future__ import annotations

import numpy as np
import pytest
import tomli_w
import zarr

from simkit import io
from simkit.config.load import parse_config
from simkit.engine import run as engine
from tests.conftest import small_config_dict

MANIPULATION = [
    {"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.3, "compliance": 0.9,
     "loyalty": 0.9},
    {"name": "fabricate", "kind": "protocol_fabrication", "beneficiary": "a", "target_turnout": 0.95,
     "station_probability": 0.3}]
TIMELINE = {"opening": "07:00", "closing": "20:00", "reports": ["12:00", "16:00"]}


def config(registered=40000, replicates=7):
    raw = small_config_dict(stations=40, registered=registered, replicates=replicates,
                            sweep={"turnout.mean": [0.5, 0.7]})
    raw.update(manipulation=MANIPULATION, timeline=TIMELINE)
    return parse_config(tomli_w.dumps(raw))


def write(run, path, block_size, workers, announced=True):
    static = engine.annotate(engine.static_dataset(run), run.config)
    io.write_blocks(static, engine.annotated_blocks(run, block_size, workers), path,
                    replicates=run.replicates if announced else None)
    return io.open_result(path)


@pytest.mark.parametrize("block_size, workers, announced", [(3, 1, True), (2, 2, True), (7, 1, True), (3, 1, False)])
def test_a_stored_run_reads_back_as_drawn(tmp_path, block_size, workers, announced):
    run = engine.prepare(config(), keep="full")
    drawn = engine.simulate_run(run, block_size=7, workers=1)
    stored = write(run, tmp_path / "run.zarr", block_size, workers, announced)
    assert set(stored.data_vars) == set(drawn.data_vars)
    assert (drawn["manipulated_votes"].values < 0).any()  # the signed counts are exercised
    for name in drawn.data_vars:
        assert stored[name].dtype == drawn[name].dtype == np.int64, name
        assert np.array_equal(stored[name].values, drawn[name].values), name
    assert stored.attrs["simkit_config"] == drawn.attrs["simkit_config"]
    np.testing.assert_array_equal(stored["replicate"].values, drawn["replicate"].values)
    on_disk = zarr.open_group(str(tmp_path / "run.zarr"), mode="r")
    for name in ("ballots", "votes", "manipulated_votes", "voter_votes", "added_ballots", "station_timeline_ballots",
                 "timeline_added_ballots"):
        assert on_disk[name].dtype == np.int16, name
        assert on_disk[name].chunks[:4] == (1, 1, block_size, 40), name  # sweep point, scenario, block, stations
    assert on_disk["manipulated"].dtype == np.int64 and on_disk["total_votes"].dtype == np.int64


def test_registers_above_int16_are_stored_wider():
    assert io.count_dtype(np.array([3, 32767])) == np.int16
    assert io.count_dtype(np.array([32768, 5])) == np.int32
    assert io.count_dtype(np.array([2**31 - 1])) == np.int32
    assert io.count_dtype(np.array([2**31])) == np.int64


def test_a_count_outside_the_storage_type_is_an_error_not_wrapped():
    assert io.narrowed("votes", np.array([-32768, 32767]), np.dtype(np.int16)).dtype == np.int16
    for outside in (32768, -32769):
        with pytest.raises(ValueError, match="votes: counts from .* do not fit the storage type int16"):
            io.narrowed("votes", np.array([0, outside]), np.dtype(np.int16))


def test_large_stations_round_trip_exactly(tmp_path):
    run = engine.prepare(config(registered=3_000_000, replicates=3), keep="full")  # about 75,000 voters a station
    assert run.electorate.registered.max() > 32767
    drawn = engine.simulate_run(run, workers=1)
    stored = write(run, tmp_path / "big.zarr", 2, 1)
    assert zarr.open_group(str(tmp_path / "big.zarr"), mode="r")["votes"].dtype == np.int32
    assert np.array_equal(stored["votes"].values, drawn["votes"].values)


def test_a_simulation_written_at_once_is_cut_into_bounded_chunks(tmp_path, monkeypatch):
    drawn = engine.simulate(config(), workers=1)
    per_replicate = 40 * 3 * np.dtype(np.int16).itemsize  # one world's votes of one replicate: stations x options
    monkeypatch.setattr(io, "MAX_CHUNK_BYTES", 2 * per_replicate)
    io.write_dataset(drawn, tmp_path / "all.zarr")
    assert zarr.open_group(str(tmp_path / "all.zarr"), mode="r")["votes"].chunks == (1, 1, 2, 40, 3)
    stored = io.open_result(tmp_path / "all.zarr")
    for name in drawn.data_vars:
        assert np.array_equal(stored[name].values, drawn[name].values), name


def test_widened_counts_stay_lazy_and_closing_closes_the_store(tmp_path):
    import dask.array

    run = engine.prepare(config(replicates=4), keep="full")
    stored = write(run, tmp_path / "run.zarr", 2, 1)
    assert isinstance(stored["votes"].data, dask.array.Array)  # not read into memory by the widening
    assert stored._close is not None  # the widened copy keeps a close for the store it reads


def test_blocks_are_written_from_inside_a_running_event_loop(tmp_path):
    """A notebook runs its cells inside an event loop: the zarr appends must not need a loop of their own."""
    import asyncio

    run = engine.prepare(config(replicates=5), keep="full")

    async def inside_a_loop():
        return write(run, tmp_path / "run.zarr", 2, 1)

    stored = asyncio.run(inside_a_loop())
    drawn = engine.simulate_run(run, block_size=5, workers=1)
    assert np.array_equal(stored["votes"].values, drawn["votes"].values)


def test_announced_replicates_size_the_arrays_once(tmp_path, monkeypatch):
    """Each resize rewrites every array's metadata: with the replicates announced the arrays are sized once after
    the first block, else grown at each later block."""
    run = engine.prepare(config(replicates=9), keep="full")
    resizes = []
    resize = io._resize_zarr

    async def counted(arrays, axes, length):
        resizes.append(length)
        await resize(arrays, axes, length)

    monkeypatch.setattr(io, "_resize_zarr", counted)
    write(run, tmp_path / "a.zarr", 2, 1)
    assert resizes == [9]
    resizes.clear()
    write(run, tmp_path / "g.zarr", 2, 1, announced=False)
    assert resizes == [4, 6, 8, 9]


def test_blocks_that_do_not_hold_the_announced_replicates_are_refused(tmp_path):
    run = engine.prepare(config(replicates=5), keep="full")
    static = engine.annotate(engine.static_dataset(run), run.config)
    target = tmp_path / "r.zarr"
    with pytest.raises(ValueError, match="r.zarr: the blocks hold 5 replicates, not the 6 announced"):
        io.write_blocks(static, engine.annotated_blocks(run, 2, 1), target, replicates=6)
    assert not target.exists() and not list(tmp_path.iterdir())
    written = []  # more than announced: refused before the block beyond them is written
    blocks = (written.append(block.sizes["replicate"]) or block for block in engine.annotated_blocks(run, 2, 1))
    with pytest.raises(ValueError, match="r.zarr: the blocks hold at least 5 replicates, more than the 4 announced"):
        io.write_blocks(static, blocks, target, replicates=4)
    assert written == [2, 2, 1] and not target.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="r.nc: the blocks hold at least 5 replicates, more than the 4 announced"):
        io.write_blocks(static, engine.annotated_blocks(run, 2, 1), tmp_path / "r.nc", replicates=4)
    assert not list(tmp_path.iterdir())
