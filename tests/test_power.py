"""The planted manipulations of the power table (:mod:`simkit.forensics.power`) follow their mechanisms' rules."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from forensics_helpers import honest_dataset, stuff_ballots
from simkit.forensics import election_outcomes, power, run_each
from simkit.forensics.applicable import ran
from simkit.forensics.core import election
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.klimek import ml as klimek_ml
from simkit.forensics.power import (PLANTS, clearly_above, largest_standard_error, largest_unseen_power, planted,
                                    planted_elections, planted_trials, study_seed)
from simkit.forensics.registry import ESTIMATES_APART
from simkit.streams import POWER


def _with_invalid(n_stations: int = 600, seed: int = 3):
    """Three-option returns whose last column is ``invalid`` (spoiled ballots), two regions of districts."""
    gen = np.random.default_rng(seed)
    registered = gen.integers(500, 2500, n_stations)
    ballots = gen.binomial(registered, 0.6)
    votes = gen.multinomial(ballots, [0.55, 0.4, 0.05])
    ds = xr.Dataset({"registered": ("station", registered), "ballots": ("station", ballots),
                     "votes": (("station", "option"), votes)},
                    coords={"option": ["a", "b", "invalid"],
                            "region": ("station", np.array(["north", "south"])[np.arange(n_stations) % 2]),
                            "district": ("station", np.array([f"d{i}" for i in np.arange(n_stations) % 12]))})
    return election(ds, leader="a")


@pytest.mark.parametrize("plant", [p for p, (_, block, _) in PLANTS.items() if block is not None
                                   and block.kind == "ballot_stuffing"])
def test_planted_stuffing_never_moves_invalid_ballots(plant):
    e = _with_invalid()
    out = planted(e, plant, np.random.default_rng(11))
    invalid = e.options.index("invalid")
    assert (out.ballots > e.ballots).any()  # the plant did stuff
    np.testing.assert_array_equal(out.votes[:, invalid], e.votes[:, invalid])
    np.testing.assert_array_equal(out.votes.sum(axis=1), out.ballots)
    assert (out.ballots <= out.registered).all()


@pytest.mark.parametrize("plant", ["stuffing", "coercion"])
def test_a_stronger_plant_adds_more_ballots_at_the_same_stations(plant):
    """``strength`` multiplies the plant's stated strength (stuffing's theta, the coerced share) and nothing
    else, and from the same random stream the stronger plant adds more ballots."""
    from simkit.forensics.power import STRENGTH_FIELDS, strengthened

    field = STRENGTH_FIELDS[plant]
    stated = PLANTS[plant][1]
    assert strengthened(plant, 1.0) is stated
    stronger = strengthened(plant, 3.0)
    assert getattr(stronger, field) == pytest.approx(3 * getattr(stated, field))
    assert stronger.model_dump(exclude={field}) == stated.model_dump(exclude={field})
    assert strengthened("rounding", 3.0) is PLANTS["rounding"][1]
    e = _with_invalid()
    weak, strong = (planted(e, plant, np.random.default_rng(5), strength) for strength in (1.0, 3.0))
    assert (weak.ballots > e.ballots).any()
    assert (strong.ballots - e.ballots).sum() > (weak.ballots - e.ballots).sum()
    assert (strong.ballots <= strong.registered).all()


@pytest.mark.parametrize("plant", [p for p, (_, block, _) in PLANTS.items() if block is not None])
def test_a_plant_runs_on_an_election_of_the_leader_alone(plant):
    """Returns mapped with the leader's column alone (votes below ballots: the rest has no column) are planted
    like any other: the ballots no option holds stay with no option, and the counts stay consistent."""
    e = _with_invalid()
    alone = e.with_counts(e.ballots, e.votes[:, :1], ("a",), 0)
    out = planted(alone, plant, np.random.default_rng(7))
    assert out.options == ("a",)
    assert ((out.votes[:, 0] <= out.ballots) & (out.ballots <= out.registered)).all()
    assert (out.ballots != alone.ballots).any() or (out.votes != alone.votes).any()  # the plant did something


def test_a_station_the_rounding_plant_empties_is_left_out_and_counted():
    """Rounding a turnout below 0.5% to the nearest whole percent gives 0 ballots: such a protocol has no ballots,
    and the station is left out as real returns leave it out (``no ballots``), counted, not tested as 0 / 0."""
    e = _with_invalid()
    ballots = np.where(np.arange(e.n) % 2 == 0, 1, e.ballots)  # every other station: 1 ballot of 500-2,500 voters
    votes = np.where((ballots == 1)[:, None], [1, 0, 0], e.votes)
    tiny = e.with_counts(ballots, votes)
    out = planted(tiny, "rounding", np.random.default_rng(4))
    dropped = tiny.n - out.n
    assert dropped > 0 and out.excluded == {"no ballots": dropped}
    assert (out.ballots > 0).all() and (out.votes.sum(axis=1) == out.ballots).all()


def test_an_honest_simulation_counts_the_stations_it_leaves_without_ballots():
    """The plant's rule is the honest simulation's: both leave out a station without ballots and count it."""
    from simkit.forensics.nulls.flat import simulate_honest

    e = _with_invalid(n_stations=10)
    ballots = np.where(np.arange(e.n) < 3, 0, e.ballots)
    votes = np.where((ballots == 0)[:, None], 0, e.votes)

    class Drawn:  # an honest model whose draw is given
        def counts(self, election, seed):
            return ballots, votes

        def options(self, election):
            return election.options, election.leader

    honest = simulate_honest(e, Drawn(), np.random.SeedSequence(0))
    assert honest.n == 7 and honest.excluded == {"no ballots": 3} and (honest.ballots > 0).all()
    for plant in PLANTS:  # a plant keeps the simulation's count, whatever it leaves out itself
        assert planted(honest, plant, np.random.default_rng(5)).excluded.get("no ballots", 0) >= 3, plant


def _low_turnout(n_stations: int = 400, seed: int = 6):
    """Returns whose every other station has a turnout near 0.3%: rounding to whole percents empties some."""
    e = _with_invalid(n_stations, seed)
    ballots = np.where(np.arange(e.n) % 2 == 0, np.maximum(1, e.registered // 300), e.ballots)
    votes = np.where((np.arange(e.n) % 2 == 0)[:, None], np.column_stack([ballots, 0 * ballots, 0 * ballots]),
                     e.votes)
    return e.with_counts(ballots, votes)


def test_the_power_trials_count_the_stations_each_replicate_leaves_out():
    """The stations left out without ballots are reported per plant and replicate, counted on the very elections
    the tests read (the same seeds), and the rounding plant's are among them."""
    e = _low_turnout()
    _, left_out = planted_trials(e, [], replicates=3, seed=1, plants=["none", "rounding"])
    drawn = list(planted_elections(e, replicates=3, seed=1, plants=["none", "rounding"], strength=1.0))
    assert left_out == {plant: [e.n - election.n for p, election, _ in drawn if p == plant]
                        for plant in ("none", "rounding")}
    assert sum(left_out["rounding"]) > sum(left_out["none"])
    assert all(election.excluded.get("no ballots", 0) == e.n - election.n for _, election, _ in drawn)


@pytest.mark.parametrize("seed, entropy, base_key", [
    (7, 7, ()),
    (np.random.SeedSequence(7, spawn_key=(3,)), 7, (3,)),
    (np.random.default_rng(7), 7, (0,)),  # a Generator's seed: its seed's next child (as_seed_sequence)
])
def test_the_power_study_seed_is_the_position_power_below_the_seed(seed, entropy, base_key):
    """:func:`study_seed` is the position (POWER,) below the seed it is given, for an int, a SeedSequence or a
    Generator; computed from the position, so it is the same whatever that seed spawned before."""
    study = study_seed(seed)
    assert study.entropy == entropy and study.spawn_key == (*base_key, POWER)
    if isinstance(seed, np.random.SeedSequence):
        seed.spawn(5)
        assert np.array_equal(study_seed(seed).generate_state(4), study.generate_state(4))


def _stuffed(n_stations: int = 800, seed: int = 5):
    """Honest two-option returns, districts in two regions, with Klimek's extreme stuffing at 5% of stations."""
    ds = stuff_ballots(honest_dataset(n_stations, seed), 0.05, seed)
    return election(ds.assign_coords(district=("station", np.array([f"d{i}" for i in np.arange(n_stations) % 8]))),
                    leader="a")


@pytest.mark.parametrize("null", ["textbook", "simulated"])
def test_the_tests_without_their_estimates_give_the_same_statistic_p_value_and_verdict(null):
    """``estimates=False`` (what every size and power runs) leaves out estimates only: each test of
    ``ESTIMATES_APART`` that runs under ``null`` reports the same statistic, reference, p-value and verdict, to the
    bit, as with them."""
    e = _stuffed()
    tests = sorted(ESTIMATES_APART)
    full = run_each(e, tests, null, 19, 4, tolerate=False)
    verdict_only = run_each(_stuffed(), tests, null, 19, 4, tolerate=False, estimates=False)
    for test in tests:
        if not ran(full[test]):  # n/a under this null (klimek_ml has no textbook law): n/a without estimates too
            assert not ran(verdict_only[test]), test
            continue
        assert [getattr(verdict_only[test], name) for name in ("statistic", "reference", "p_value", "verdict")] \
            == [getattr(full[test], name) for name in ("statistic", "reference", "p_value", "verdict")], test
        assert set(verdict_only[test].extra) < set(full[test].extra), test


def test_a_size_or_power_does_not_compute_the_estimates_its_verdicts_do_not_read(monkeypatch):
    """Under a simulated null the Klimek fits' joint likelihood fit and the integer test's exact binomial null
    are estimates only: a power's verdicts (:func:`simkit.forensics.election_outcomes`) do not compute them, so
    neither their CPU (most of a power study's on a large election) nor an error of theirs counts."""
    def fails(*args, **kwargs):
        raise ValueError("an estimate the verdict does not read")

    monkeypatch.setattr(klimek_ml, "estimate", fails)
    monkeypatch.setattr(integer_percent, "station_probabilities", fails)
    outcomes = election_outcomes(_stuffed(), sorted(ESTIMATES_APART), null="simulated", draws=19, seed=2)
    assert all(rejected is not None for rejected, _ in outcomes.values()), outcomes


def test_the_power_trials_are_the_same_on_worker_processes(monkeypatch):
    """The planted elections tested on worker processes (as on a large election) give the same counts and
    left-out stations as in this process: each election and its tests draw from their own seeds."""
    e = _with_invalid(300)
    args = dict(null="textbook", draws=20, replicates=2, seed=5, plants=["none", "rounding"])
    alone = planted_trials(e, ["zero_five", "dip"], workers=1, **args)
    monkeypatch.setattr(power, "PARALLEL_MIN_STATION_DRAWS", 0)
    assert planted_trials(e, ["zero_five", "dip"], workers=2, **args) == alone


@pytest.mark.parametrize("replicates", [1, 2, 5, 20])
def test_a_power_of_0_of_n_allows_the_power_that_misses_n_times_in_20(replicates):
    """The largest power a table's 0 of n allows (one-sided 95%): the power p with P(0 rejections of n) = (1 - p)^n
    = 0.05 exactly; any larger one misses all n less often than that."""
    bound = largest_unseen_power(replicates)
    assert (1 - bound) ** replicates == pytest.approx(0.05, rel=1e-12)
    assert (1 - (bound + 1e-6)) ** replicates < 0.05
    assert largest_standard_error(replicates) == pytest.approx(np.sqrt(0.25 / replicates), rel=1e-12)


@pytest.mark.parametrize("power, size, expected", [
    ((5, 5), (0, 5), True), ((4, 5), (0, 5), True), ((3, 5), (0, 5), False), ((1, 5), (0, 5), False),
    ((5, 5), (1, 5), True), ((4, 5), (1, 5), False), ((40, 100), (5, 100), True), ((0, 0), (0, 5), False)])
def test_a_power_is_clearly_above_its_size_only_beyond_their_monte_carlo_error(power, size, expected):
    """One-sided Fisher exact test of the two counts at 0.05: with 5 elections each, 4 of 5 against 0 of 5 has
    P = C(5,4) C(5,0) / C(10,4) = 5/210 = 0.024 (clearly above) and 3 of 5 has P = C(5,3) / C(10,3) = 10/120 =
    0.083 (not); no count where the test did not run is compared."""
    assert clearly_above(power, size) is expected


def test_the_reports_power_sentence_says_when_a_power_is_within_the_monte_carlo_error_of_its_size():
    """A power of 1 of 5 against a size of 0 of 5 is listed with "within Monte Carlo error", and a plant whose tests
    are all so says "none clearly above it"; 5 of 5 is listed plainly (last round's sentence listed 0.20 (size 0.00)
    as a test above its size, with no word of its error)."""
    from simkit.report.verdicts import power_verdicts

    counts = {"none": {"spikes": (0, 5), "dip": (0, 5)}, "stuffing": {"spikes": (1, 5), "dip": (5, 5)},
              "coercion": {"spikes": (1, 5), "dip": (0, 5)}}
    [verdict] = power_verdicts(counts, 5)
    text = verdict.text
    assert "stuffing: dip 1.00 (size 0.00), spikes 0.20 (size 0.00: within Monte Carlo error);" in text
    assert "coercion: spikes 0.20 (size 0.00: within Monte Carlo error); none clearly above it." in text
    assert power_verdicts(None, 5) == []
