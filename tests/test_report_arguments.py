"""``simkit.report.build`` from Python: bad arguments are an InputError naming the parameter, raised before
any simulation or test runs."""
from __future__ import annotations

import pytest

import simkit.report as report
from simkit.errors import InputError
from simkit.report import analyses


@pytest.fixture
def no_work(monkeypatch):
    """Any analysis reached is a failure: the arguments must be refused first."""
    def reached(*args, **kwargs):
        raise AssertionError("an analysis ran before the arguments were checked")
    for name in ("load", "simulate", "compare", "forensics"):
        monkeypatch.setattr(analyses, name, reached)
    monkeypatch.setattr(report, "load_config", reached)


@pytest.mark.parametrize("arguments, parameter, fragment", [
    ({"power": -1}, "power", "power: -1: must be 0 or more"),
    ({"format": "pdf"}, "format", "format: pdf: choose from html, md"),
    ({"draws": 0}, "draws", "draws: 0: must be a positive integer"),
    ({"null": "x"}, "null", "null must be one of"),
    ({"tests": ["nope"]}, "tests", "tests: unknown test id nope"),
])
def test_bad_arguments_name_the_parameter_before_any_work(no_work, arguments, parameter, fragment):
    with pytest.raises(InputError, match=fragment) as error:
        report.build("x.toml", returns="r.csv", map="m.toml", **arguments)
    assert error.value.parameters == (parameter,)


def test_returns_without_a_mapping_name_the_parameters_of_build(tmp_path):
    (tmp_path / "r.csv").write_text("registered,ballots\n10,5\n")
    with pytest.raises(InputError, match="give preset=NAME or map=MAP.toml") as error:
        report.build(returns=tmp_path / "r.csv")
    assert error.value.parameters == ("returns", "preset", "map")
