"""The planted manipulations of the power table (:mod:`simkit.forensics.power`) follow their mechanisms' rules."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from simkit.forensics.core import election
from simkit.forensics.power import PLANTS, planted


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
