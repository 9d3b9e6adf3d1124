"""Engine invariants (hypothesis), reproducibility, sweeps and blocks."""
import warnings

import numpy as np
import pytest
import tomli_w
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkit import parse_config, simulate

from conftest import small_config_dict


@st.composite
def configs(draw):
    n_options = draw(st.integers(2, 5))
    weights = draw(st.lists(st.floats(0.05, 1.0), min_size=n_options, max_size=n_options))
    shares = [w / sum(weights) for w in weights]
    shares[-1] = 1.0 - sum(shares[:-1])
    stations = draw(st.integers(2, 40))
    raw = small_config_dict(
        stations=stations, registered=draw(st.integers(stations * 2, 40_000)),
        options=tuple(f"o{i}" for i in range(n_options)), shares=tuple(shares),
        turnout_model=draw(st.sampled_from(["logit_normal", "beta", "truncated_normal"])),
        turnout_mean=draw(st.floats(0.05, 0.95)),
        turnout_dispersion=draw(st.floats(0.05, 1.5)),
        preference_model=draw(st.sampled_from(["dirichlet", "logistic_normal", "truncated_normal"])),
        preference_dispersion=draw(st.floats(0.2, 50.0)),
        rho=draw(st.sampled_from([0.0, 0.5, -0.7])),
        regional_sd=draw(st.sampled_from([0.0, 0.3])),
        invalid=draw(st.booleans()), replicates=draw(st.integers(1, 5)), seed=draw(st.integers(0, 2**32)))
    if raw["turnout"]["model"] == "beta":
        raw["turnout"]["dispersion"] = draw(st.floats(0.5, 100.0))
    if raw["turnout"]["model"] == "truncated_normal":  # wider SDs cannot reach means near 0.05 or 0.95 (refused)
        raw["turnout"]["dispersion"] = draw(st.floats(0.05, 0.3))
    if raw["preferences"]["model"] == "truncated_normal":
        raw["preferences"]["dispersion"] = draw(st.floats(0.01, 0.4))
    if raw["preferences"]["model"] == "logistic_normal":
        raw["preferences"]["dispersion"] = draw(st.floats(0.01, 2.0))
    return parse_config(tomli_w.dumps(raw))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs())
def test_counts_are_consistent(cfg):
    ds = simulate(cfg, workers=1)
    ballots, votes, registered = ds["ballots"].values, ds["votes"].values, ds["registered"].values
    assert ballots.dtype == np.int64 and votes.dtype == np.int64
    assert (votes >= 0).all() and (ballots >= 0).all()
    assert (votes.sum(axis=-1) == ballots).all()
    assert (ballots <= registered).all()
    assert (ds["total_votes"] == ds["votes"].sum("station")).all()
    assert int(registered.sum()) == cfg.electorate.registered


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), block_size=st.integers(1, 4), workers=st.integers(1, 3))
def test_same_seed_same_result_whatever_the_blocks(cfg, block_size, workers):
    reference = simulate(cfg, workers=1, block_size=1000)
    again = simulate(cfg, workers=workers, block_size=block_size)
    xr.testing.assert_identical(reference.drop_attrs(), again.drop_attrs())


def test_different_seed_different_result():
    cfg = parse_config(tomli_w.dumps(small_config_dict()))
    assert not np.array_equal(simulate(cfg, seed=1)["votes"], simulate(cfg, seed=2)["votes"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), values=st.lists(st.floats(0.1, 0.9), min_size=1, max_size=3, unique=True))
def test_sweep_point_equals_the_config_run_alone(cfg, values):
    raw = cfg.raw()
    raw["sweep"] = {"turnout.mean": values}
    swept = parse_config(tomli_w.dumps(raw))
    ds = simulate(swept, workers=2)
    assert ds["votes"].dims[0] == "turnout.mean"
    for value in values:
        alone = simulate(cfg.at({"turnout.mean": value}))
        xr.testing.assert_equal(ds["votes"].sel({"turnout.mean": value}, drop=True), alone["votes"])


def test_summary_only_totals_equal_full_totals():
    cfg = parse_config(tomli_w.dumps(small_config_dict(replicates=30)))
    full = simulate(cfg, keep="full")
    summary = simulate(cfg, keep="summary")
    assert "votes" not in summary and "ballots" not in summary
    for name in ("total_votes", "total_ballots", "region_votes", "region_ballots"):
        xr.testing.assert_equal(full[name], summary[name])


def test_provenance_attrs():
    cfg = parse_config(tomli_w.dumps(small_config_dict()))
    ds = simulate(cfg, replicates=3, seed=9)
    assert ds.attrs["seed"] == 9 and ds.attrs["replicates"] == 3
    rerun = simulate(parse_config(ds.attrs["simkit_config"]))
    xr.testing.assert_identical(ds.drop_attrs(), rerun.drop_attrs())
    for key in ("simkit_config_sha256", "numpy_version", "xarray_version", "simkit_version", "created"):
        assert ds.attrs[key]
    assert ds["votes"].attrs["units"] == "ballots"


def test_worker_processes_give_the_serial_result(monkeypatch):
    """The process pool path (forced on for a small run) is bit-identical to one process."""
    from simkit.engine import run as engine
    cfg = parse_config(tomli_w.dumps(small_config_dict(replicates=9, sweep={"turnout.mean": [0.4, 0.7]})))
    serial = simulate(cfg, workers=1)
    monkeypatch.setattr(engine, "PARALLEL_MIN_DRAWS", 0)
    parallel = simulate(cfg, workers=2, block_size=2)
    xr.testing.assert_identical(serial.drop_attrs(), parallel.drop_attrs())


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
@pytest.mark.parametrize("leader, rho, regional_sd", [("a", 0.0, 0.0), ("a", 0.5, 0.0), ("a", 0.0, 0.3),
                                                       ("b", 0.0, 0.0), ("b", -0.5, 0.3)])
def test_an_option_with_every_ballot(kernel, leader, rho, regional_sd):
    """Shares of exactly 1 and 0 (a one-sided election) are legal: the option of share 1 gets every ballot, with
    the leader it (the default) or an option of share 0 (set), and no warning (0/0) or crash (NaN probabilities)."""
    raw = small_config_dict(shares=(1.0, 0.0, 0.0), rho=rho, regional_sd=regional_sd, replicates=3)
    raw["preferences"]["leader"] = leader
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = simulate(parse_config(tomli_w.dumps(raw)), kernel=kernel, workers=1)
    assert (ds["votes"].sel(option="a") == ds["ballots"]).all()
    assert int(ds["ballots"].sum()) > 0
