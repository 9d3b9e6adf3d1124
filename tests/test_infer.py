"""Inference (ABC-SMC) as a specification: priors and configs, calibration, recovery, identifiability.

Calibration follows Talts et al. (2018): draw the parameter from its prior, simulate a data set, infer,
and record where the truth falls in the posterior (its posterior CDF value, continuous rank). Under a
calibrated method those values are uniform on [0, 1] and the 90% intervals cover the truth 90% of the time.
The check runs where ABC is near-exact: the published figures carry an observation noise (SD 0.02, of the
order of the statistics' simulation noise, 0.007-0.03) that the data sets really have, and the final
tolerance (0.25x the simulation noise) adds a few percent at most to the kernel's variance (Wilkinson 2013).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys

import numpy as np
import pytest
import tomli_w
import xarray as xr
from scipy import integrate, stats

import simkit
from simkit import inference, progress
from simkit.cli import infer as cli_infer
from simkit.cli import main as cli
from simkit.config.checks import raw_problems
from simkit.config.core import ObservedStations
from simkit.config.messages import ConfigError
from simkit.config.inference import MIN_PARTICLES, InferConfig, InferenceSettings, apply_values, infer_problems
from simkit.electorate import returns as returns_module
from simkit.electorate.build import build_electorate, observed_returns, register_mismatch
from simkit.electorate.returns import load_returns
from simkit.engine import run as engine
from simkit.forensics import station_statistics
from simkit.inference.result import UNCHECKED_STATIONS, run_warnings

from conftest import small_config_dict

SHARE = "manipulation.coercion.share"
UNUSED = "manipulation.unused.fraction"
STATISTICS = ["turnout", "shares", "invalid", "regional_turnout"]


def coercion_config(stations: int = 40) -> simkit.Config:
    """A small election (``stations`` stations of ~1,000 voters, two regions, an invalid column) whose
    scenario applies employer coercion; a vote-stealing block that no scenario applies is the parameter the
    evidence cannot inform."""
    raw = small_config_dict(stations=stations, registered=1000 * stations, invalid=True,
                            options=("a", "b", "c", "inv"), shares=(0.55, 0.3, 0.1, 0.05), keep="summary")
    raw["manipulation"] = [
        {"name": "coercion", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.1, "compliance": 0.7,
         "loyalty": 0.9},
        {"name": "unused", "kind": "vote_stealing", "beneficiary": "a", "fraction": 0.1},
    ]
    raw["scenario"] = [{"name": "coerced", "manipulations": ["coercion"]}]
    return simkit.Config.model_validate(raw)


SHARE_PRIOR = InferConfig(path=SHARE, prior="uniform", low=0.0, high=0.3)
UNUSED_PRIOR = InferConfig(path=UNUSED, prior="uniform", low=0.0, high=0.5)


# -- configs and priors ----------------------------------------------------------------------------------

def test_prior_density_on_the_unconstrained_scale_integrates_to_one():
    for block in [SHARE_PRIOR, InferConfig(path="x", prior="beta", a=2, b=5),
                  InferConfig(path="x", prior="log_uniform", low=1e-3, high=0.1),
                  InferConfig(path="x", prior="normal", mean=0.0, sd=0.5, low=-1.5, high=1.5)]:
        prior = inference.Prior(block)
        u = np.linspace(-40, 40, 400_001)
        total = integrate.trapezoid(np.exp(prior.log_density_unconstrained(u)), u)
        assert total == pytest.approx(1.0, abs=1e-4), block.prior


def test_unconstrained_map_round_trips():
    prior = inference.Prior(InferConfig(path="x", prior="uniform", low=-1.0, high=2.0))
    values = np.array([-0.9, 0.0, 1.9])
    np.testing.assert_allclose(prior.to_value(prior.to_unconstrained(values)), values)


def test_unconstrained_map_round_trips_values_near_a_bound():
    """A log-uniform prior on [1e-300, 0.3] has 96% of its mass below 1e-12 of its range: clipping positions
    there collapsed those draws onto one value (a posterior of 3e-13 [3e-13, 3e-13], 'informed')."""
    prior = inference.Prior(InferConfig(path="x", prior="log_uniform", low=1e-300, high=0.3))
    values = np.array([1e-250, 1e-20, 0.1, 0.3 * (1 - 1e-15)])
    np.testing.assert_allclose(prior.to_value(prior.to_unconstrained(values)), values, rtol=1e-6)


def test_infer_blocks_report_every_problem_with_its_path():
    raw = coercion_config().raw()
    raw["infer"] = [{"path": SHARE, "prior": "uniform", "low": 0.0},
                    {"path": "turnout.dispersion", "prior": "beta", "a": 1.0, "b": 1.0, "sd": 1.0}]
    raw["inference"] = {"particles": 5}
    with pytest.raises(ConfigError) as error:
        simkit.parse_config(tomli_w.dumps(raw), source="x.toml")
    problems = error.value.problems
    assert any(p.startswith(f"x.toml: infer.{SHARE}") and "needs high" in p for p in problems), problems
    assert any(p.startswith("x.toml: infer.turnout.dispersion") and "takes no sd" in p for p in problems), problems
    assert any(p.startswith("x.toml: inference.particles:") for p in problems), problems


def test_infer_path_must_exist_and_be_numeric():
    cfg = coercion_config()
    problems = infer_problems(cfg, [InferConfig(path="manipulation.nope.share", prior="uniform", low=0, high=1),
                                    InferConfig(path="manipulation.coercion.beneficiary", prior="uniform", low=0,
                                                high=1)], InferenceSettings(), raw_problems)
    assert any("manipulation.nope.share" in p and "no block named 'nope'" in p for p in problems)
    assert "infer.manipulation.coercion.beneficiary: not a numeric field" in problems


def test_a_prior_reaching_beyond_the_fields_valid_range_is_refused():
    """A share's prior on [0, 1.5] (median 0.75, valid) would draw invalid configs a third of the time, each
    silently rejected: the prior actually used would not be the one reported."""
    raw = coercion_config().raw()
    raw["observed"] = {"registered": 40_000, "ballots": 25_000}
    cfg = simkit.Config.model_validate(raw)
    beyond = InferConfig(path=SHARE, prior="uniform", low=0.0, high=1.5)
    untruncated = InferConfig(path=SHARE, prior="normal", mean=0.1, sd=0.1)
    for block in (beyond, untruncated):
        problems = infer_problems(cfg, [block], InferenceSettings(), raw_problems)
        assert len(problems) == 1 and problems[0].startswith(f"infer.{SHARE}: the prior reaches "), problems
    assert infer_problems(cfg, [SHARE_PRIOR], InferenceSettings(), raw_problems) == []


@pytest.mark.parametrize("path", ["observed.regional_turnout.north", "inference.final_tolerance"])
def test_a_prior_on_the_evidence_or_the_inference_settings_is_refused(path):
    """[observed] is what the simulations are compared with and [inference] how: a draw there changes no simulated
    election, so its "posterior" would be the prior, reported as an inferred parameter."""
    raw = coercion_config().raw()
    raw["observed"] = {"registered": 40_000, "ballots": 25_000, "regional_turnout": {"north": 0.62, "south": 0.63}}
    raw["inference"] = {"final_tolerance": 0.5}
    cfg = simkit.Config.model_validate(raw)
    problems = infer_problems(cfg, [InferConfig(path=path, prior="uniform", low=0.6, high=0.7)], InferenceSettings(),
                              raw_problems)
    assert len(problems) == 1 and problems[0].startswith(f"infer.{path}: not a model parameter"), problems


def test_a_field_set_by_two_infer_blocks_is_refused():
    """A path is a block's identity: a second block on it (or an ``also`` reaching it) would overwrite the first's
    draws, whose posterior would then be reported for a value never used."""
    cfg = simkit.Config.model_validate({**coercion_config().raw(), "observed": {"registered": 40_000,
                                                                                 "ballots": 25_000}})
    compliance = InferConfig(path="manipulation.coercion.compliance", also=[SHARE], prior="uniform", low=0.1,
                             high=0.2)
    for blocks in ([SHARE_PRIOR, SHARE_PRIOR], [SHARE_PRIOR, compliance], [SHARE_PRIOR, SHARE_PRIOR, compliance]):
        problems = infer_problems(cfg, blocks, InferenceSettings(), raw_problems)
        assert problems == [f"infer.{SHARE}: set by {len(blocks)} [[infer]] blocks (a field has one prior)"], problems


def test_a_prior_on_a_whole_number_field_is_refused_as_such_not_told_to_narrow():
    """Electorate stations take whole numbers: every bound gives fractional draws, so "bound it with low and
    high" would mislead; the problem names the field's whole numbers."""
    cfg = simkit.Config.model_validate({**coercion_config().raw(), "observed": {"registered": 40_000,
                                                                                 "ballots": 25_000}})
    block = InferConfig(path="electorate.stations", prior="uniform", low=30, high=50)
    problems = infer_problems(cfg, [block], InferenceSettings(), raw_problems)
    assert len(problems) == 1 and problems[0].startswith("infer.electorate.stations: the field takes whole numbers"), \
        problems
    assert "bound it" not in problems[0]


@pytest.mark.parametrize("path", [SHARE, "manipulation.coercion.compliance"])
@pytest.mark.parametrize("low, high", [(0.5, 1.5), (0.0, 2.0)])
def test_a_prior_with_its_median_on_a_fields_upper_limit_is_told_to_narrow(path, low, high):
    """A share's prior with median 1.0 (its upper limit): the next float up is invalid, the next one down valid,
    so the field takes fractions; the problem is the prior's reach past 1, not whole numbers."""
    cfg = simkit.Config.model_validate({**coercion_config().raw(), "observed": {"registered": 40_000,
                                                                                 "ballots": 25_000}})
    block = InferConfig(path=path, prior="uniform", low=low, high=high)
    problems = infer_problems(cfg, [block], InferenceSettings(), raw_problems)
    assert len(problems) == 1 and problems[0].startswith(f"infer.{path}: the prior reaches "), problems
    assert "whole numbers" not in problems[0]


@pytest.mark.parametrize("prior", [{"prior": "normal", "mean": 0.1, "sd": 1e-300, "low": 0.0, "high": 0.3},
                                   {"prior": "normal", "mean": 0.1, "sd": 1e-300},
                                   {"prior": "beta", "a": 1e300, "b": 1e300}])
def test_a_prior_of_a_single_value_is_refused_like_a_uniform_with_low_equal_to_high(prior):
    """A prior narrower than a float's resolution is one value (its SMC weights would overflow to NaN): there is
    nothing to infer, as for uniform with low == high."""
    with pytest.raises(ValueError, match=r"the prior is the single value 0\.1|the prior is the single value 0\.5"):
        InferConfig(path=SHARE, **prior)


def test_set_share_rescales_the_other_options_to_sum_to_one():
    raw = coercion_config().raw()
    block = InferConfig(path="preferences.shares.a", apply="set_share", prior="uniform", low=0.2, high=0.9)
    shares = apply_values(raw, [block], np.array([0.7]))["preferences"]["shares"]
    assert shares["a"] == 0.7
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["b"] / shares["c"] == pytest.approx(0.3 / 0.1)


def test_logit_shift_moves_every_regional_mean_by_the_same_logit():
    raw = coercion_config().raw()
    raw["turnout"]["regional_mean"] = {"north": 0.5, "south": 0.8}
    block = InferConfig(path="turnout.regional_mean", apply="logit_shift", prior="normal", mean=0, sd=1)
    means = apply_values(raw, [block], np.array([0.4]))["turnout"]["regional_mean"]
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert logit(means["north"]) - logit(0.5) == pytest.approx(0.4)
    assert logit(means["south"]) - logit(0.8) == pytest.approx(0.4)


def test_recycled_generations_add_their_effective_sizes_and_keep_the_target():
    """Two importance samples of the target N(0, 1) (flat prior, kernel exp(-u²/2)), from different proposals:
    pooled with weights scaled by their ESS, the ESS is the sum of theirs (exactly: the weights of the
    combination are λ_g w_g with λ_g ∝ 1 / Σ w_g²), and the weighted mean and variance are the target's within
    4 standard errors."""
    rng = np.random.default_rng(3)
    uniform = rng.uniform(-10, 10, 4000)
    wide = 1.0 + 2.0 * rng.standard_normal(3000)
    pool = [(uniform[:, None], uniform[:, None], np.full(4000, math.log(20.0))),
            (wide[:, None], wide[:, None], -stats.norm(1.0, 2.0).logpdf(wide))]
    ess = [inference.effective_sample_size(log_ratio + inference.smc.log_kernel(d, np.ones(1)))
           for _, d, log_ratio in pool]
    u, _, weights = inference.smc.recycle(pool, np.ones(1))
    pooled = inference.effective_sample_size(np.log(weights))
    assert pooled == pytest.approx(sum(ess), rel=1e-9)
    mean = weights @ u[:, 0]
    variance = weights @ (u[:, 0] - mean) ** 2
    assert abs(mean) < 4 / math.sqrt(pooled)
    assert abs(variance - 1) < 4 * math.sqrt(2 / pooled)


def test_lowest_tolerance_is_where_the_pooled_effective_sample_size_meets_the_target():
    """Two generations of one summary (kernel SD = tolerance, no observation noise): the tolerance returned keeps
    the pooled ESS at the target, and one a hair (0.1%) lower does not; the pooled ESS is the generations' sum."""
    rng = np.random.default_rng(4)
    pool = [(None, rng.normal(0, 5, (3000, 1)), np.zeros(3000)), (None, rng.normal(0, 2, (3000, 1)), np.zeros(3000))]
    summaries = inference.Summaries(("s",), np.ones(1), np.ones(1), np.eye(1), np.ones(1), np.zeros(1))
    tolerance = inference.smc.lowest_tolerance(pool, summaries, 0.01, math.inf, 1500.0)
    assert inference.smc.pooled_ess(pool, summaries.kernel_sd(tolerance)) >= 1500.0
    assert inference.smc.pooled_ess(pool, summaries.kernel_sd(tolerance * 0.999)) < 1500.0
    assert inference.smc.pooled_ess(pool, summaries.kernel_sd(tolerance)) == pytest.approx(sum(
        inference.effective_sample_size(inference.smc.log_kernel(d, summaries.kernel_sd(tolerance))) for _, d, _ in pool))
    assert inference.smc.lowest_tolerance(pool, summaries, 50.0, 100.0, 1500.0) == 50.0  # already enough at the low end


def test_target_ess_lowers_the_tolerance_until_the_pooled_sample_would_fall_below_it():
    """With ``target_ess`` the run keeps going while the pooled ESS at each new tolerance is at least the target
    (min_ess out of the way) and ends at the lowest tolerance where the final population's ESS is at least
    target × particles."""
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    settings = InferenceSettings(particles=60, pilot=40, noise_replicates=10, max_generations=12, predictive=10,
                                 min_ess=5, final_tolerance=0.01, target_ess=0.5, seed=2, workers=1)
    result = inference.infer(cfg, [SHARE_PRIOR], settings)
    pooled = [g["pooled_ess"] for g in result.generations]
    assert all(p >= 30 for p in pooled[:-1]) and pooled[-1] < 30  # it stopped on the target, nothing else
    assert result.tolerance["ess"] >= 30 - 1e-9
    assert result.generations[-2]["tolerance"] >= result.tolerance["final"] >= result.generations[-1]["tolerance"]
    # stopped by max_generations with the pooled ESS above the target: the final tolerance goes below the last
    # generation's, down to where the pooled ESS is the target (continuous in the tolerance: met with equality)
    short = inference.infer(cfg, [SHARE_PRIOR], settings.model_copy(update={"max_generations": 1}))
    assert short.generations[-1]["pooled_ess"] > 30
    assert short.tolerance["final"] < short.generations[-1]["tolerance"]
    assert short.tolerance["ess"] == pytest.approx(30, rel=0.01)
    with pytest.raises(ValueError, match="target_ess: needs recycle"):
        InferenceSettings(target_ess=0.25, recycle=False)


def test_simulations_do_not_depend_on_how_particles_are_batched():
    """Each simulation's stream is keyed by its (stage, index): the statistics of 7 particles are bit-identical
    simulated in one batch, in batches of 3 and one by one."""
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    electorate = build_electorate(cfg.electorate)
    statistics = inference.statistic_names(cfg, STATISTICS, list(electorate.region_names))
    simulator = inference.Simulator(cfg, [SHARE_PRIOR], statistics, "coerced")
    values = np.linspace(0.0, 0.3, 7)[:, None]
    seeds = [inference.simulation_seed(11, 3, index) for index in range(7)]
    whole = inference.simulator.simulate_chunk(simulator, (values, seeds))
    for size in (3, 1):
        parts = [inference.simulator.simulate_chunk(simulator, (values[i:i + size], seeds[i:i + size]))
                 for i in range(0, 7, size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(np.unique(whole[:, 0])) == 7  # the particles differ: the comparison is not vacuous


@pytest.mark.parametrize("tolerance, ess, expected", [(1.0, 200.0, []), (1.01, 200.0, ["final tolerance 1.01"]),
                                                      (0.5, 199.0, ["effective sample size 199"]),
                                                      (3.0, 50.0, ["final tolerance 3", "effective sample size 50"])])
def test_warnings_above_one_noise_of_tolerance_or_below_200_of_ess(tolerance, ess, expected):
    warnings = run_warnings(tolerance, ess)
    assert len(warnings) == len(expected)
    assert all(w.startswith(start) for w, start in zip(warnings, expected))


def test_the_results_attributes_hold_the_warnings(tmp_path):
    """A quick run (40 particles: ESS below 200 whatever the draws) carries its warnings in the summary and in
    the written groups' root attributes."""
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    settings = InferenceSettings(particles=40, pilot=40, noise_replicates=10, max_generations=2, predictive=10,
                                 min_ess=5, seed=2, workers=1)
    result = inference.infer(cfg, [SHARE_PRIOR], settings)
    assert result.warnings == run_warnings(result.tolerance["final"], result.tolerance["ess"])
    assert any("effective sample size" in w for w in result.warnings)
    assert json.loads(result.to_datatree().attrs["warnings"]) == result.warnings


# -- calibration ------------------------------------------------------------------------------------------

#: calibration data sets: half in CI (the test's size, not its assertion, changes: the chi-square test and the
#: binomial acceptance region below are computed for the number of data sets run; 30 keeps 5 expected per bin)
SBC_DATASETS = 30 if os.environ.get("CI") == "true" else 60
SBC_NOISE = 0.02  # observation noise SD added to every statistic of every simulated data set


def test_simulation_based_calibration_ranks_uniform_and_coverage_nominal():
    """Talts et al. (2018) on the coerced share with noisy data (near-exact ABC): PIT values uniform by a
    chi-square test over 6 bins (p > 0.001), 90% intervals covering the truth within the binomial 99.9%
    acceptance region of Binomial(SBC_DATASETS, 0.9)."""
    cfg = inference.simulated_observed(coercion_config(), [SHARE_PRIOR], [0.1], seed=0)  # fixes which statistics
    settings = InferenceSettings(particles=150, pilot=150, noise_replicates=30, final_tolerance=0.25, min_ess=20,
                                 workers=1, seed=11)
    statistics = inference.with_observation_noise(
        inference.statistic_names(cfg, STATISTICS, cfg.region_names()),
        {group: SBC_NOISE for group in STATISTICS})
    simulator = inference.Simulator(cfg, [SHARE_PRIOR], statistics, "coerced")
    prior = inference.Prior(SHARE_PRIOR)
    rng = np.random.default_rng(20181)
    pit, covered = [], []
    for dataset in range(SBC_DATASETS):
        truth = prior.block.distribution().rvs(random_state=rng)
        observed = simulator(np.array([truth]), inference.simulation_seed(99, 99, dataset))
        observed = observed + SBC_NOISE * rng.standard_normal(observed.shape)
        data = inference.Statistics(statistics.names, statistics.groups, observed, statistics.observation_noise,
                                    statistics.valid_options, statistics.invalid, statistics.regions)
        run_settings = settings.model_copy(update={"seed": settings.seed + dataset})

        def simulate_many(values, stage, run_seed=run_settings.seed):
            return np.array([simulator(v, inference.simulation_seed(run_seed, stage, i)) for i, v in enumerate(values)])

        values, weights, _, _, _ = inference.abc_smc(simulate_many, [prior], data, run_settings, np.array([0.15]))
        pit.append(float(weights[values[:, 0] < truth].sum()))
        low, high = inference.weighted_quantiles(values[:, 0], weights, [0.05, 0.95])
        covered.append(low <= truth <= high)
    counts = np.histogram(pit, bins=6, range=(0, 1))[0]
    chi2 = stats.chisquare(counts)
    coverage = np.mean(covered)
    low_count, high_count = stats.binom.interval(0.999, SBC_DATASETS, 0.9)
    print(f"SBC: PIT bin counts {counts.tolist()}, chi-square p = {chi2.pvalue:.3f}; "
          f"90% coverage {coverage:.3f} ({sum(covered)}/{SBC_DATASETS})")
    assert chi2.pvalue > 0.001
    assert low_count <= sum(covered) <= high_count


# -- recovery and identifiability --------------------------------------------------------------------------

PLANTED_SHARE = 0.12


@pytest.fixture(scope="module")
def planted_result():
    """Inference on an election simulated with a planted coerced share of 0.12 and exact (noise-free)
    published counts; the unused block's fraction is planted at 0.25 and cannot show in the count."""
    cfg = coercion_config()
    blocks = [SHARE_PRIOR, UNUSED_PRIOR]
    observed = inference.simulated_observed(cfg, blocks, [PLANTED_SHARE, 0.25], seed=7)
    settings = InferenceSettings(particles=300, min_ess=30, workers=1, seed=5, predictive=100)
    return inference.infer(observed, blocks, settings)


def test_planted_coercion_is_recovered_within_the_reported_interval(planted_result):
    row = next(p for p in planted_result.parameters if p["name"] == SHARE)
    assert row["posterior_low"] <= PLANTED_SHARE <= row["posterior_high"]
    assert row["informed"]


def test_parameter_the_evidence_cannot_inform_keeps_a_prior_wide_posterior(planted_result):
    row = next(p for p in planted_result.parameters if p["name"] == UNUSED)
    assert not row["informed"]
    assert row["posterior_high"] - row["posterior_low"] >= 0.8 * (row["prior_high"] - row["prior_low"])


def test_json_summary_has_the_documented_fields(planted_result):
    payload = json.loads(json.dumps(planted_result.to_json()))
    assert [p["name"] for p in payload["parameters"]] == [SHARE, UNUSED]
    for row in payload["parameters"]:
        assert set(row) == {"name", "prior_low", "prior_high", "posterior_median", "posterior_low",
                            "posterior_high", "informed"}
        assert row["prior_low"] == pytest.approx(0.05 * (0.3 if row["name"] == SHARE else 0.5))
    assert payload["tolerance"]["final"] > 0
    summaries = [row["name"] for row in payload["tolerance"]["summaries"]]
    assert summaries[:2] == [f"E[{SHARE}]", f"E[{UNUSED}]"]  # one regression summary per parameter
    assert {"turnout", "share.a", "invalid"} <= set(summaries)  # and the national count itself


def test_posterior_dataset_has_arviz_layout(planted_result):
    posterior = planted_result.posterior
    assert set(posterior.data_vars) == {SHARE, UNUSED}
    assert posterior[SHARE].dims == ("chain", "draw")
    assert posterior.sizes["draw"] == 300


def test_posterior_predictive_covers_the_observed_count(planted_result):
    p_values = planted_result.checks["p_value"]
    assert set(planted_result.checks["statistic"].values) >= {"turnout", "share.a", "invalid"}
    assert float(p_values.min()) > 0.01


def test_results_do_not_depend_on_the_number_of_workers():
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    settings = InferenceSettings(particles=40, pilot=40, noise_replicates=10, max_generations=2, predictive=10,
                                 min_ess=5, seed=2)
    one = inference.infer(cfg, [SHARE_PRIOR], settings, workers=1)
    two = inference.infer(cfg, [SHARE_PRIOR], settings, workers=2)
    np.testing.assert_array_equal(one.posterior[SHARE].values, two.posterior[SHARE].values)


def test_results_on_a_dask_cluster_equal_the_local_ones():
    distributed_api = pytest.importorskip("dask.distributed")
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    settings = InferenceSettings(particles=40, pilot=40, noise_replicates=10, max_generations=2, predictive=10,
                                 min_ess=5, seed=2)
    local = inference.infer(cfg, [SHARE_PRIOR], settings, workers=1)
    with distributed_api.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as client:
        remote = inference.infer(cfg, [SHARE_PRIOR], settings, client=client)
    np.testing.assert_array_equal(local.posterior[SHARE].values, remote.posterior[SHARE].values)


def small_inference_config(tmp_path) -> tuple:
    """(the path of, the raw table of) a config inferring the coercion share from a 12-station election simulated
    at share 0.1, with a quick ABC-SMC (40 particles, 2 generations)."""
    cfg = inference.simulated_observed(coercion_config(stations=12), [SHARE_PRIOR], [0.1], seed=3)
    raw = cfg.raw()
    raw["infer"] = [SHARE_PRIOR.model_dump(exclude_none=True)]
    raw["inference"] = {"particles": 40, "pilot": 40, "noise_replicates": 10, "max_generations": 2,
                        "predictive": 10, "min_ess": 5, "workers": 1}
    path = tmp_path / "infer.toml"
    path.write_text(tomli_w.dumps(raw))
    return path, raw


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stderr, flags, shown", [(Terminal, [], True), (Terminal, ["--quiet"], False),
                                                   (io.StringIO, [], False)])
def test_cli_shows_a_bar_over_each_generations_simulations_on_a_terminal_unless_quiet(tmp_path, monkeypatch,
                                                                                     stderr, flags, shown):
    path, _ = small_inference_config(tmp_path)
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0)
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["infer", str(path), "--json", *flags]) == 0
    assert ("40/40" in err.getvalue()) is shown, err.getvalue()  # a generation of 40 particles


def test_cli_writes_the_result_and_prints_json(tmp_path, capsys):
    path, _ = small_inference_config(tmp_path)
    parser = argparse.ArgumentParser()
    cli_infer.register(parser.add_subparsers())
    args = parser.parse_args(["infer", str(path), "--json", "--quiet", "-o", str(tmp_path / "post.nc")])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["parameters"][0]["name"] == SHARE
    # 40 pilot + 2 x 40 particles: the ESS is below 200 whatever the draws, so the warning must be there
    assert any("effective sample size" in warning for warning in payload["warnings"])
    assert payload["warnings"] == run_warnings(payload["tolerance"]["final"], payload["tolerance"]["ess"])
    assert all(f"warning: {warning}" in captured.err for warning in payload["warnings"])
    assert load_groups(tmp_path / "post.nc")["posterior"][SHARE].dims == ("chain", "draw")


def test_cli_set_overrides_the_config_and_sweep_is_refused_in_one_line(tmp_path, capsys):
    """``--set`` reaches the config the inference runs (the command equals the library on the overridden config);
    ``--sweep`` cannot be honoured (inferred fields replace swept ones): one line blaming the flag, exit 2."""
    path, raw = small_inference_config(tmp_path)
    small = {"particles": 20, "pilot": 20, "max_generations": 1}
    flags = [text for key, value in small.items() for text in ("--set", f"inference.{key}={value}")]
    assert cli.main(["infer", str(path), "--json", "--quiet", *flags]) == 0
    payload = json.loads(capsys.readouterr().out)
    raw["inference"].update(small)
    expected = inference.infer(simkit.Config.model_validate(raw)).to_json()
    assert payload["simulations"] == expected["simulations"] < 80  # 40 pilot draws alone without the --set
    assert payload["parameters"] == expected["parameters"]

    assert cli.main(["infer", str(path), "--sweep", f"{SHARE}=0.1,0.2"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"--sweep {SHARE}=0.1,0.2 (on {path}): sweep: a config with [[infer]] blocks "
                                 "cannot have a [sweep] (inferred fields replace it)\n")
    assert cli.main(["infer", str(path), "--set", "inferense.particles=30"]) == 2
    assert capsys.readouterr().err == f"--set inferense.particles=30 (on {path}): inferense: unknown field\n"


def load_groups(path) -> dict[str, xr.Dataset]:
    """The groups of a written inference result, read by ArviZ when it is installed, else by xarray's DataTree."""
    try:
        import arviz  # optional: the result's format is ArviZ's, not a dependency of simkit
    except ImportError:
        tree = xr.open_datatree(path, engine="h5netcdf")
        groups = {name: tree[name].to_dataset() for name in tree.children}
        assert json.loads(tree.attrs["simkit_inference"])["parameters"][0]["name"] == SHARE
    else:
        data = arviz.from_netcdf(path)
        groups = {name: getattr(data, name) for name in data.groups()}
    assert {"posterior", "posterior_predictive", "observed_data", "sample_stats"} <= set(groups)
    assert groups["posterior_predictive"]["statistics"].dims == ("chain", "draw", "statistic")
    assert list(groups["observed_data"]["statistic"].values) == list(groups["posterior_predictive"]["statistic"].values)
    return groups


def test_validate_reports_an_infer_prior_on_a_missing_path(tmp_path, capsys):
    """``simkit validate`` runs the [[infer]] cross-checks: one line naming the file and the field, exit 2."""
    raw = coercion_config(stations=12).raw()
    raw["infer"] = [{"path": "manipulation.nope.share", "prior": "uniform", "low": 0.0, "high": 0.3}]
    raw["observed"] = {"registered": 12_000, "ballots": 7_000}
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(raw))
    assert cli.main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: infer.manipulation.nope.share"), lines
    assert out == ""


@pytest.mark.parametrize("flag, value", [("--particles", "1"), ("--seed", "-1")])
def test_infer_flags_out_of_range_exit_2_with_one_line(tmp_path, capsys, flag, value):
    raw = coercion_config(stations=12).raw()
    raw["infer"] = [SHARE_PRIOR.model_dump(exclude_none=True)]
    raw["observed"] = {"registered": 12_000, "ballots": 7_000}
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    assert cli.main(["infer", str(path), "--quiet", flag, value]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{flag}: ") and value in lines[0], lines
    assert out == ""


@pytest.mark.parametrize("value", ["0", "1"])
def test_particles_flag_names_the_minimum_the_settings_take(tmp_path, capsys, value):
    """--particles 0 must not say "at least 1" when 1 is refused in turn: both name the settings' minimum."""
    path, _ = small_inference_config(tmp_path)
    assert cli.main(["infer", str(path), "--quiet", "--particles", value]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("--particles: ") and f"{MIN_PARTICLES}, got {value}" in lines[0], lines


def test_set_addresses_an_infer_block_by_its_quoted_path(tmp_path, capsys):
    """[[infer]] blocks are named by the path they infer (errors name them so): --set reaches one by that path,
    quoted as a segment holding dots, to narrow a prior from the command line."""
    path, _ = small_inference_config(tmp_path)
    assert cli.main(["validate", str(path), "--set", f'infer."{SHARE}".low=1.5']) == 2
    assert f"infer.{SHARE}: low must be below high, got 1.5 and 0.3" in capsys.readouterr().err


def _statistics_config(tmp_path, statistics):
    raw = coercion_config(stations=12).raw()
    raw["infer"] = [SHARE_PRIOR.model_dump(exclude_none=True)]
    raw["inference"] = {"statistics": statistics, "particles": 20, "pilot": 20, "max_generations": 1,
                        "predictive": 10, "noise_replicates": 5, "min_ess": 5, "workers": 1}
    raw["observed"] = {"registered": 12_000, "ballots": 7_000}
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_infer_without_any_evidence_it_names_exits_2_naming_the_file(tmp_path, capsys):
    path = _statistics_config(tmp_path, ["polls"])
    assert cli.main(["infer", str(path), "--quiet", "-o", str(tmp_path / "r.nc")]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines == [f"{path}: observed: none of the inference.statistics is given in [observed]"], lines
    assert out == "" and not (tmp_path / "r.nc").exists()


def test_infer_names_its_source_in_its_own_problems_only(tmp_path):
    """The library prefixes the problems it finds with ``source`` (as ``compare_config`` does); the command passes
    the file, so no problem raised elsewhere with its own prefix is prefixed twice."""
    cfg = simkit.load_config(_statistics_config(tmp_path, ["polls"]))
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, source="x.toml")
    assert error.value.problems == ["x.toml: observed: none of the inference.statistics is given in [observed]"]
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, [], source="x.toml")
    assert error.value.problems == ["x.toml: infer: no [[infer]] blocks (nothing to infer)"]


def test_a_statistic_group_named_without_its_evidence_is_a_warning(tmp_path, capsys):
    """Statistics listed in [inference] but absent from [observed] are not silently left out."""
    path = _statistics_config(tmp_path, ["turnout", "timeline"])
    assert cli.main(["infer", str(path), "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    warning = "inference.statistics: timeline: not given in [observed] (needs [observed.timeline] and [timeline])"
    assert any(w.startswith(warning) for w in json.loads(out)["warnings"]) and f"warning: {warning}" in err


MISREPORT = "exit_poll.pollster.misreport.b.a"


def test_planted_poll_misreporting_is_recovered_from_the_published_poll():
    """An exit poll (whole flow at 10 of 40 stations) where 30% of b's and c's voters say a: the rate is
    inferred from the poll's published shares beside the count."""
    raw = coercion_config().raw()
    raw["exit_poll"] = [{"name": "pollster", "stations": 10, "respondents": "whole_flow",
                         "published": {"a": 0.6, "b": 0.3, "c": 0.1}}]
    misreport = InferConfig(path=MISREPORT, also=["exit_poll.pollster.misreport.c.a"], prior="uniform", low=0.0,
                            high=0.5)
    blocks = [SHARE_PRIOR, misreport]
    cfg = inference.simulated_observed(simkit.Config.model_validate(raw), blocks, [0.12, 0.3], seed=7)
    result = inference.infer(cfg, blocks, InferenceSettings(particles=200, min_ess=20, workers=1, seed=5,
                                                            predictive=20))
    row = next(p for p in result.parameters if p["name"] == MISREPORT)
    assert row["posterior_low"] <= 0.3 <= row["posterior_high"]
    assert row["informed"]


def test_poll_misreport_entries_may_be_absent_but_options_must_exist():
    raw = coercion_config().raw()
    raw["exit_poll"] = [{"name": "pollster", "stations": 10, "respondents": "whole_flow"}]
    raw["observed"] = {"registered": 40_000, "ballots": 25_000}
    cfg = simkit.Config.model_validate(raw)
    fine = InferConfig(path=MISREPORT, prior="uniform", low=0.0, high=0.5)
    typo = InferConfig(path="exit_poll.pollster.misreport.b.zz", prior="uniform", low=0.0, high=0.5)
    assert infer_problems(cfg, [fine], InferenceSettings(), raw_problems) == []
    problems = infer_problems(cfg, [typo], InferenceSettings(), raw_problems)
    assert problems and all(p.startswith("infer (all fields at their prior medians): exit_poll.pollster") for p in problems)


def test_exit_polls_interview_voters_not_stuffed_ballots():
    """Coercion adds real voters (pollsters can meet them); stuffing adds ballots without voters: the
    ``voters`` a poll is drawn from are the count before the stuffing block, and the count is unchanged by
    applying the blocks in two steps."""
    raw = coercion_config().raw()
    raw["manipulation"].append({"name": "stuffing", "kind": "ballot_stuffing", "beneficiary": "a",
                                "f_incremental": 0.5, "f_extreme": 0.1, "theta": 0.2, "alpha": 2.0})
    raw["scenario"] = [{"name": "both", "manipulations": ["coercion", "stuffing"]},
                       {"name": "coerced", "manipulations": ["coercion"]}]
    cfg = simkit.Config.model_validate(raw)
    run = engine.prepare(cfg, 1, 4, "summary")
    plan = run.plans[0]
    ballots, votes, voters = inference.manipulated_replicate(plan, cfg, run.electorate, 4)
    honest = engine.honest_replicate(plan, run.electorate, 4, 0)
    both = engine.manipulate(plan.scenarios[0], cfg, run.electorate, 4, 0, *honest)
    coerced = engine.manipulate(plan.scenarios[1], cfg, run.electorate, 4, 0, *honest)
    np.testing.assert_array_equal(votes, both[1])
    np.testing.assert_array_equal(voters, coerced[1])
    assert votes.sum() > voters.sum()


# -- station-level evidence ----------------------------------------------------------------------------------

STUFFING = "manipulation.stuffing.f_incremental"
STUFFING_BLOCKS = [InferConfig(path=STUFFING, prior="uniform", low=0.0, high=0.6),
                   InferConfig(path="turnout.mean", prior="uniform", low=0.4, high=0.8),
                   InferConfig(path="preferences.shares.a", apply="set_share", prior="uniform", low=0.3, high=0.8)]
STATION_EVIDENCE = ["turnout_sd", "leader_share_sd", "turnout_share_correlation"]


def stuffing_config(with_stations: bool) -> simkit.Config:
    """300 stations; incremental stuffing (Klimek et al.) on top of an honest turnout and leader share that
    are inferred too, so the national totals alone cannot tell stuffing from a higher honest level."""
    raw = small_config_dict(stations=300, registered=300_000, options=("a", "b", "c"), shares=(0.5, 0.3, 0.2),
                            keep="summary", turnout_dispersion=0.3, preference_dispersion=60.0)
    raw["manipulation"] = [{"name": "stuffing", "kind": "ballot_stuffing", "beneficiary": "a",
                            "f_incremental": 0.3, "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]
    raw["scenario"] = [{"name": "stuffed", "manipulations": ["stuffing"]}]
    if with_stations:
        raw["observed"] = {"stations": {"statistics": STATION_EVIDENCE,
                                        "values": dict.fromkeys(STATION_EVIDENCE, 0.0)}}
    return simkit.Config.model_validate(raw)


@pytest.fixture(scope="module")
def stuffing_results():
    """Inference on one election with 30% of stations stuffed, from its totals alone and from its totals
    plus the station-level statistics (the same simulated election: seed 4)."""
    settings = InferenceSettings(particles=200, min_ess=20, workers=1, seed=6, predictive=20,
                                 statistics=["turnout", "shares", "stations"])
    results = {}
    for with_stations in (False, True):
        cfg = inference.simulated_observed(stuffing_config(with_stations), STUFFING_BLOCKS, [0.3, 0.6, 0.5], seed=4)
        results[with_stations] = inference.infer(cfg, STUFFING_BLOCKS, settings)
    return results


def test_station_statistics_inform_stuffing_that_the_totals_cannot(stuffing_results):
    totals = next(p for p in stuffing_results[False].parameters if p["name"] == STUFFING)
    stations = next(p for p in stuffing_results[True].parameters if p["name"] == STUFFING)
    print(f"f_incremental 0.3 planted: totals only [{totals['posterior_low']:.3f}, {totals['posterior_high']:.3f}], "
          f"with station statistics [{stations['posterior_low']:.3f}, {stations['posterior_high']:.3f}]")
    assert not totals["informed"]
    assert stations["informed"]
    assert stations["posterior_low"] <= 0.3 <= stations["posterior_high"]


def test_station_evidence_from_a_returns_file_equals_the_forensic_reading(tmp_path):
    """``[observed.stations]`` with ``returns`` + ``map`` computes the statistics from the file as the
    forensic loader reads it."""
    rows = ["id,registered,ballots,a,b", "1,1000,600,400,200", "2,800,700,650,50", "3,500,200,100,100",
            "4,1200,1100,1000,100"]
    (tmp_path / "returns.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "map.toml").write_text('leader = "a"\n[columns]\nid = "id"\nregistered = "registered"\n'
                                       'ballots = "ballots"\n[options]\na = "a"\nb = "b"\n')
    stations = ObservedStations(statistics=list(station_statistics.STATISTICS),
                                              returns=str(tmp_path / "returns.csv"), map=str(tmp_path / "map.toml"))
    values = inference.observed_station_values(stations, load_returns(stations.returns, map_path=stations.map))
    registered, ballots, leader = np.array([1000, 800, 500, 1200]), np.array([600, 700, 200, 1100]), \
        np.array([400, 650, 100, 1000])
    turnout, share = ballots / registered, leader / ballots
    expected = [turnout.mean(), turnout.std(), share.mean(), share.std(), np.corrcoef(turnout, share)[0, 1],
                np.mean((turnout > 0.8) & (share > 0.8)), 2 / 4]  # stations 1 (60%) and 3 (40%, 50%) are whole
    np.testing.assert_allclose(values, expected)


def write_returns(tmp_path, registers: list[int]) -> dict:
    """A returns file of :func:`coercion_config`'s ballot, one station per register (turnout 60%, a leading), in
    ``tmp_path``, with its map; ``[observed.stations]`` reading it."""
    rows = ["id,region,registered,ballots,a,b,c,inv"] + [
        f"{i},{'north' if i % 2 else 'south'},{r},{r * 6 // 10},{r * 3 // 10},{r * 2 // 10},{r // 20},"
        f"{r * 6 // 10 - r * 3 // 10 - r * 2 // 10 - r // 20}" for i, r in enumerate(registers, 1)]
    (tmp_path / "returns.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "map.toml").write_text('leader = "a"\n[columns]\nid = "id"\nregion = "region"\n'
                                       'registered = "registered"\nballots = "ballots"\n'
                                       '[options]\na = "a"\nb = "b"\nc = "c"\ninv = "inv"\n')
    return {"statistics": ["turnout_sd", "integer_share"], "returns": str(tmp_path / "returns.csv"),
            "map": str(tmp_path / "map.toml")}


def station_returns_config(tmp_path, registers: list[int], electorate: dict | None = None):
    """:func:`coercion_config` (40 synthetic stations of about 1,000 voters, unless ``electorate``) whose
    ``[observed.stations]`` reads a returns file of ``registers``; written to ``tmp_path``: (config, its path)."""
    raw = coercion_config().raw()
    raw["observed"] = {"registered": 40_000, "ballots": 24_000, "stations": write_returns(tmp_path, registers)}
    if electorate is not None:
        raw["electorate"] = electorate
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    return simkit.Config.model_validate(raw), path


#: the registers of 40 stations of 2,000 voters or so: twice the synthetic electorate's
LARGE = [2000 + 7 * i for i in range(40)]


@pytest.mark.parametrize("registers, problem", [
    (LARGE, "39 of its 40 stations with voters (median register 2,136) have no electorate station within 1 voter "
            "of their register; the electorate's 40 (median 832); "),
    (LARGE[:30], "its 30 stations with voters (median register 2,102), the electorate's 40 (median 832); ")])
def test_station_returns_whose_stations_are_not_the_electorates_are_refused(tmp_path, capsys, registers, problem):
    """``[observed.stations]`` statistics were compared with simulations of the config's electorate whatever its
    stations: a synthetic electorate of other station sizes biased the comparison without a word (``integer_share``:
    about 10% of turnouts within 0.05 points of a whole percent by chance at 1,000 registered, 15% at 2,000)."""
    cfg, path = station_returns_config(tmp_path, registers)
    expected = f"{tmp_path / 'returns.csv'}: observed.stations.returns: {problem}"
    with pytest.raises(simkit.InputError, match=f"^{re.escape(expected)}"):
        inference.infer(cfg, [SHARE_PRIOR], InferenceSettings(particles=20, statistics=["turnout", "stations"]))
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(expected) and "[electorate] source" in err, err


def test_station_returns_left_out_of_the_evidence_are_not_checked(tmp_path):
    cfg, _ = station_returns_config(tmp_path, LARGE)
    assert observed_returns(cfg, ["turnout", "shares"]) is None


@pytest.mark.parametrize("shift", [0, 1, -1])
def test_station_returns_read_as_the_electorate_pass(tmp_path, capsys, shift):
    """The very file as ``[electorate] source = "csv"`` passes, and so does a register that rounding moved by a
    voter; a station of 0 voters on either side is none of the statistics' (left out of the comparison)."""
    registers = LARGE[:-1] + [0]
    (tmp_path / "register.csv").write_text("region,registered\n" + "".join(
        f"{'north' if i % 2 else 'south'},{r + shift if r else 0}\n" for i, r in enumerate(registers, 1))
        + "south,0\n")
    electorate = {"source": "csv", "path": str(tmp_path / ("returns.csv" if shift == 0 else "register.csv")),
                  "registered_column": "registered", "region_column": "region"}
    cfg, path = station_returns_config(tmp_path, registers, electorate)
    assert cli.main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_station_returns_over_the_inconsistency_limit_name_the_config_field_that_lifts_it(tmp_path, capsys):
    """Returns above the 5% limit of blank or inconsistent rows said 'pass allow_inconsistent=True', which no config
    could: [observed.stations] has allow_inconsistent, and the refusal names it."""
    electorate = {"source": "csv", "path": str(tmp_path / "returns.csv"), "registered_column": "registered",
                  "region_column": "region"}
    _, path = station_returns_config(tmp_path, LARGE, electorate)
    returns = tmp_path / "returns.csv"
    lines = returns.read_text().splitlines()
    for i in range(1, 6):  # ballots above the register at 5 of 40 stations
        cells = lines[i].split(",")
        lines[i] = ",".join(cells[:3] + [str(int(cells[2]) + 5)] + cells[4:])
    returns.write_text("\n".join(lines) + "\n")
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{returns}: columns.ballots: 5 of 40 rows (12%) are blank or inconsistent"), err
    assert err.endswith("; check the mapping, or set observed.stations.allow_inconsistent = true to test the rest")
    assert cli.main(["validate", str(path), "--set", "observed.stations.allow_inconsistent=true"]) == 0


def test_infer_reads_the_station_returns_once(tmp_path, monkeypatch):
    """The electorate check and the observed statistics take one table: ``simkit infer`` read the returns file
    twice (once for each)."""
    electorate = {"source": "csv", "path": str(tmp_path / "returns.csv"), "registered_column": "registered",
                  "region_column": "region"}
    cfg, _ = station_returns_config(tmp_path, LARGE, electorate)
    reads, read_rows = [], returns_module.read_rows

    def counted_read(path, mapping):
        reads.append(path)
        return read_rows(path, mapping)

    monkeypatch.setattr(returns_module, "read_rows", counted_read)
    settings = InferenceSettings(particles=20, pilot=20, noise_replicates=5, max_generations=1, predictive=10,
                                 min_ess=5, workers=1, statistics=["turnout", "stations"])
    inference.infer(cfg, [SHARE_PRIOR], settings)
    assert reads == [tmp_path / "returns.csv"]


def test_register_mismatch_allows_the_rows_the_loader_left_out():
    """Rows left out for missing cells have registers the check does not know: the electorate may hold that many
    stations more, no more."""
    returns, electorate = np.array([500, 1000, 1500]), np.array([500, 1000, 1500, 3000])
    assert register_mismatch(returns, electorate, unread=1) is None
    assert register_mismatch(returns, electorate) == ("its 3 stations with voters (median register 1,000), the "
                                                      "electorate's 4 (median 1,250)")
    assert register_mismatch(electorate, returns, unread=1).startswith("its 4 stations")


def test_station_values_carry_a_warning_that_nothing_checked_their_stations(stuffing_results):
    assert UNCHECKED_STATIONS in stuffing_results[True].warnings
    assert UNCHECKED_STATIONS not in stuffing_results[False].warnings


def test_observed_stations_needs_exactly_one_source():
    with pytest.raises(Exception, match="either values"):
        ObservedStations(statistics=["turnout_sd"])
    with pytest.raises(Exception, match="unknown 'nope'"):
        ObservedStations(statistics=["nope"], values={"nope": 0.1})
    with pytest.raises(Exception, match="exactly one of preset or map"):
        ObservedStations(statistics=["turnout_sd"], returns="x.csv")


@pytest.mark.parametrize("values", [{"turnout_sd": 0.1, "leader_share_sd": 0.2},
                                    {"turnout_sd": 0.1, "turnout_sdd": 0}])
def test_an_observed_station_value_of_no_listed_statistic_is_refused(values):
    """A value whose statistic ``statistics`` does not list (or a misspelt one) was left out of the comparison
    without a word."""
    with pytest.raises(Exception, match=r"values: '(leader_share_sd|turnout_sdd)' not among statistics "
                                        r"\(turnout_sd\)"):
        ObservedStations(statistics=["turnout_sd"], values=values)


def test_a_misspelt_observed_station_value_is_named_beside_the_missing_one():
    """``turnuot_sd`` for ``turnout_sd`` is a value missing and one not listed: told together, the misspelt key is
    named (told as missing alone, it was not)."""
    with pytest.raises(Exception, match=r"values: missing turnout_sd; 'turnuot_sd' not among statistics "
                                        r"\(turnout_sd\)"):
        ObservedStations(statistics=["turnout_sd"], values={"turnuot_sd": 0.1})


def csv_coercion_config(tmp_path, observed: dict | None = None) -> simkit.Config:
    """:func:`coercion_config` on a register read from a CSV file whose ``abroad`` region has stations of 0
    voters only (closed, or nobody registered), beside stations of 0 voters in the other regions."""
    rows = ["region,registered"] + [f"{region},{0 if i % 4 == 0 else 900 + 10 * i}"
                                    for region in ("north", "south") for i in range(12)] + ["abroad,0", "abroad,0"]
    (tmp_path / "stations.csv").write_text("\n".join(rows) + "\n")
    raw = coercion_config().raw()
    raw["electorate"] = {"source": "csv", "path": str(tmp_path / "stations.csv"), "registered_column": "registered",
                         "region_column": "region"}
    if observed is not None:
        raw["observed"] = observed
    return simkit.Config.model_validate(raw)


def test_a_simulated_observation_has_no_turnout_for_a_region_without_voters(tmp_path):
    cfg = inference.simulated_observed(csv_coercion_config(tmp_path), [SHARE_PRIOR], [0.1], seed=3)
    assert set(cfg.observed.regional_turnout) == {"north", "south"}
    assert all(0 < value < 1 for value in cfg.observed.regional_turnout.values())


def test_a_regional_turnout_of_a_region_without_voters_is_refused_as_evidence(tmp_path):
    """Its simulated turnout would be 0 / 0 in every simulation (once NaN statistics and a singular regression)."""
    observed = {"registered": 19_000, "ballots": 11_400, "votes": {"a": 6000, "b": 3400, "c": 1400, "inv": 600},
                "regional_turnout": {"north": 0.6, "abroad": 0.5}}
    cfg = csv_coercion_config(tmp_path, observed)
    settings = InferenceSettings(particles=20, statistics=STATISTICS)
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, [SHARE_PRIOR], settings)
    assert error.value.problems == ["config: observed.regional_turnout.abroad: the stations of region abroad have no "
                                    "voters on the register: it has no turnout to compare"]


def csv_timeline_config(tmp_path, regional_turnout: dict | None = None) -> simkit.Config:
    """:func:`csv_coercion_config` with a published timeline of turnouts in ``north`` and ``abroad`` (no voters),
    and the official ``regional_turnout`` when given."""
    observed = {"registered": 19_000, "ballots": 11_400, "votes": {"a": 6000, "b": 3400, "c": 1400, "inv": 600},
                "timeline": {"reports": ["10:00", "12:00"],
                             "turnout_percent": {"north": [20, 40, 60], "abroad": [10, 20, 50]}}}
    if regional_turnout is not None:
        observed["regional_turnout"] = regional_turnout
    raw = csv_coercion_config(tmp_path, observed).raw()
    raw["timeline"] = {"opening": "07:00", "closing": "20:00", "reports": ["10:00", "12:00"]}
    return simkit.Config.model_validate(raw)


def test_a_published_timeline_of_a_region_without_voters_is_refused_as_evidence(tmp_path):
    """Its simulated share of the final turnout would be 0 / 0 at every report."""
    cfg = csv_timeline_config(tmp_path)
    settings = InferenceSettings(particles=20, statistics=["turnout", "timeline"])
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, [SHARE_PRIOR], settings)
    assert error.value.problems == ["config: observed.timeline.turnout_percent.abroad: the stations of region abroad "
                                    "have no voters on the register: it has no turnout to compare"]


def test_one_check_names_the_published_turnouts_of_regions_without_voters_of_the_evidence_read(tmp_path):
    """The inference, the count matching and the timeline ask one function, each for the tables it reads; the
    problems come in table order whatever the order of the evidence."""
    from simkit.electorate.build import electorate_of, voterless_turnouts

    cfg = csv_timeline_config(tmp_path, {"north": 0.6, "abroad": 0.5})
    electorate = electorate_of(cfg)
    regional, timeline = (f"{field}.abroad: the stations of region abroad have no voters on the register: it has no "
                          "turnout to compare" for field in ("observed.regional_turnout",
                                                             "observed.timeline.turnout_percent"))
    assert voterless_turnouts(cfg, electorate, ["timeline", "turnout", "regional_turnout"]) == [regional, timeline]
    assert voterless_turnouts(cfg, electorate, ["timeline"]) == [timeline]
    assert voterless_turnouts(cfg, electorate, ["turnout"]) == []
    with pytest.raises(ValueError, match=r"evidence 'regional_turnouts': not statistic groups"):
        voterless_turnouts(cfg, electorate, ["turnout", "regional_turnouts"])


def test_every_table_of_published_turnouts_is_read_by_a_statistic_group():
    """A key of PUBLISHED_TURNOUTS that no evidence is named would never be checked."""
    from simkit.config.inference import STATISTIC_GROUPS
    from simkit.electorate.build import PUBLISHED_TURNOUTS

    assert set(PUBLISHED_TURNOUTS) <= set(STATISTIC_GROUPS)


def test_the_check_of_regions_without_voters_reads_each_table_once(tmp_path, monkeypatch):
    """Each table's regions are read once, however many regions have no voters (not once per such region)."""
    from simkit.electorate import build

    cfg = csv_timeline_config(tmp_path, {"north": 0.6, "abroad": 0.5})
    nobody = build.Electorate(np.zeros(2, np.int64), np.arange(2), ("north", "abroad"), np.array(["n", "a"]))
    reads, region_keys = [], build.region_keys
    monkeypatch.setattr(build, "region_keys", lambda cfg, field: reads.append(field) or region_keys(cfg, field))
    problems = build.voterless_turnouts(cfg, nobody, ["regional_turnout", "timeline"])
    assert [problem.partition(":")[0] for problem in problems] == [
        f"{field}.{name}" for field in ("observed.regional_turnout", "observed.timeline.turnout_percent")
        for name in ("north", "abroad")]
    assert reads == ["observed.regional_turnout", "observed.timeline.turnout_percent"]


def test_a_pps_poll_short_of_stations_with_voters_is_refused_before_simulating(tmp_path):
    """18 of the register's 26 stations hold voters: a poll read as evidence that draws 20 proportional to size is
    refused up front, not in the middle of the run."""
    observed = {"registered": 19_000, "ballots": 11_400, "votes": {"a": 6000, "b": 3400, "c": 1400, "inv": 600}}
    raw = csv_coercion_config(tmp_path, observed).raw()
    raw["exit_poll"] = [{"name": "p", "stations": 20, "selection": "pps", "by_region": True, "per_station": 30,
                         "published": {"a": 0.6, "b": 0.3, "c": 0.1}}]
    cfg = simkit.Config.model_validate(raw)
    settings = InferenceSettings(particles=20, statistics=["polls"])
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, [SHARE_PRIOR], settings)
    assert error.value.problems == ["config: exit_poll.p.stations: 20 stations drawn proportional to size, but only "
                                    "18 hold voters"]


def test_a_simulator_checks_and_draws_the_polls_it_resolves_once(tmp_path, monkeypatch):
    """The simulator resolves the polls that the statistics read in one place: the check up front
    (``design_problems``, through ``resolved_polls``) and each draw (``poll_designs``, through the polls layer's
    ``resolve_design``) resolve the same polls, the draw refusing the problem the check names (a simple poll
    claiming 5,000 respondents at a response rate of 0.4, drawn proportional to size in its place at 20 stations
    while 18 hold voters)."""
    import re
    from simkit.electorate.build import electorate_of
    from simkit.inference import simulator as module
    from simkit.inference.simulator import Simulator

    observed = {"registered": 19_000, "ballots": 11_400, "votes": {"a": 6000, "b": 3400, "c": 1400, "inv": 600}}
    raw = csv_coercion_config(tmp_path, observed).raw()
    poll = {"name": "p", "stations": 20, "sample_size": 5000, "published": {"a": 0.6, "b": 0.3, "c": 0.1}}
    raw["exit_poll"] = [{**poll, "response_rate": 0.4}]
    cfg = simkit.Config.model_validate(raw)
    electorate = electorate_of(cfg)
    statistics = inference.statistic_names(cfg, ["polls"], list(electorate.region_names))
    simulator = Simulator(cfg, [SHARE_PRIOR], statistics, "coerced", electorate=electorate)
    [problem] = simulator.design_problems(raw)
    assert problem.startswith("exit_poll.p.stations: 20 stations drawn proportional to size from the electorate, "
                              "which has 18 with voters (proportional to size in place of the simple draw"), problem
    with pytest.raises(simkit.InputError, match=f"^polls: {re.escape(problem)}$"):
        simulator.poll_designs(cfg)
    called = []
    monkeypatch.setattr(module, "resolve_design", lambda *args, **kwargs: called.append(args[0]) or
                        module.proposed_design(*args, **kwargs))
    simulator.poll_designs(cfg)
    assert called == cfg.exit_poll  # the draw's check is the polls layer's, not a copy of it
    monkeypatch.undo()
    raw["exit_poll"] = [{**poll, "response_rate": 1.0}]
    cfg = simkit.Config.model_validate(raw)
    assert simulator.design_problems(raw) == []
    [design] = simulator.poll_designs(cfg)
    [resolved] = simulator.resolved_polls(cfg)
    assert (design.selection, design.n_stations) == (resolved.design.selection, resolved.design.n_stations) == \
        ("simple", 20)


def test_a_prior_whose_tail_makes_a_poll_design_impossible_is_refused_before_simulating(tmp_path, monkeypatch):
    """A simple poll at 20 of the register's 26 stations claiming 5,000 respondents is feasible at its response
    rate of 1 and at the prior's median 0.7; a prior on that rate reaching 0.4 makes the claim infeasible, drawn
    proportional to size at 20 stations while 18 hold voters: refused up front in one line naming the [[infer]]
    block and the value its prior reaches, not raised by the first such draw in the middle of the run."""
    from simkit.inference.simulator import Simulator

    observed = {"registered": 19_000, "ballots": 11_400, "votes": {"a": 6000, "b": 3400, "c": 1400, "inv": 600}}
    raw = csv_coercion_config(tmp_path, observed).raw()
    raw["exit_poll"] = [{"name": "p", "stations": 20, "sample_size": 5000, "published": {"a": 0.6, "b": 0.3, "c": 0.1}}]
    cfg = simkit.Config.model_validate(raw)
    rate = InferConfig(path="exit_poll.p.response_rate", prior="uniform", low=0.4, high=1.0)
    monkeypatch.setattr(Simulator, "__call__", lambda *args: pytest.fail("an election was simulated"))
    with pytest.raises(ConfigError) as error:
        inference.infer(cfg, [SHARE_PRIOR, rate], InferenceSettings(particles=20, statistics=["polls"], workers=1))
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(
        "config: infer.exit_poll.p.response_rate: the prior reaches 0.400001 (its 1e-06 quantile), where the config "
        "is invalid (exit_poll.p.stations: 20 stations drawn proportional to size from the electorate, which has 18 "
        "with voters (proportional to size in place of the simple draw"), error.value.problems
    assert error.value.problems[0].endswith("); bound it with low and high")


def test_station_statistics_alone_are_evidence_to_infer_from():
    """A config whose only evidence is ``[observed.stations]`` (no totals, polls or timeline) is inferred from it,
    not refused as having no evidence."""
    simulated = inference.simulated_observed(stuffing_config(True), STUFFING_BLOCKS, [0.3, 0.6, 0.5], seed=4)
    raw = simulated.raw()
    raw["observed"] = {"stations": raw["observed"]["stations"]}
    settings = InferenceSettings(particles=20, min_ess=5, workers=1, seed=6, predictive=10, statistics=["stations"])
    result = inference.infer(simkit.Config.model_validate(raw), STUFFING_BLOCKS, settings)
    assert [p["name"] for p in result.parameters] == [block.path for block in STUFFING_BLOCKS]
    assert all(name.startswith("stations.") for name in result.observed_data["statistic"].values)


def test_a_published_timeline_alone_is_evidence_to_infer_from(tmp_path):
    """A config whose only evidence is ``[observed.timeline]`` is checked as such, not refused as having none."""
    raw = csv_timeline_config(tmp_path, None).raw()
    raw["observed"] = {"timeline": {"reports": ["10:00", "12:00"], "turnout_percent": {"north": [20, 40, 60]}}}
    settings = InferenceSettings(particles=20, min_ess=5, workers=1, seed=6, predictive=10, statistics=["timeline"])
    result = inference.infer(simkit.Config.model_validate(raw), [SHARE_PRIOR], settings)
    names = result.observed_data["statistic"].values
    assert len(names) and all(name.startswith("timeline.") for name in names)
