"""Bad arguments to the forensic tests from Python: an InputError naming the parameter, before any work."""
from __future__ import annotations

import pytest

from forensics_helpers import honest_dataset
from simkit.errors import InputError
from simkit.forensics import run_tests
from simkit.forensics.core import election


@pytest.fixture(scope="module")
def honest():
    return election(honest_dataset(50, seed=3))


@pytest.mark.parametrize("tests, fragment", [
    (["nope"], "tests: unknown test id 'nope'"),
    ([], "tests: unknown test id (none)"),
    ("dip", "tests: a list of test ids, got the string 'dip'"),
])
def test_unknown_or_misshapen_test_ids_name_the_parameter(honest, tests, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as error:
        run_tests(honest, tests, null="textbook")
    assert error.value.parameters == ("tests",)


def test_an_unknown_null_names_the_parameter(honest):
    """In the one-line form ``parameter: value: problem`` of every other argument."""
    with pytest.raises(InputError) as error:
        run_tests(honest, ["dip"], null="x")
    assert str(error.value) == "null: 'x': unknown name (choose from textbook, simulated, flat)"
    assert error.value.parameters == ("null",)


@pytest.mark.parametrize("draws", [0, -5])
def test_draws_below_one_name_the_parameter(honest, draws):
    with pytest.raises(InputError, match=f"draws: {draws}: must be a positive integer") as error:
        run_tests(honest, ["dip"], null="simulated", draws=draws)
    assert error.value.parameters == ("draws",)
