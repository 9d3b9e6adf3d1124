"""The notebook API given the wrong kind of argument: an InputError naming the parameter, not an
AttributeError or a TypeError from deep inside."""
from __future__ import annotations

import pytest

import simkit
from simkit.polls.compare import compare_config


@pytest.mark.parametrize("call", [
    lambda: simkit.simulate("configs/kazakhstan-2022.toml", replicates=2),
    lambda: compare_config("configs/kazakhstan-2022.toml", replicates=2),
])
def test_a_path_where_a_config_is_expected_names_cfg(call):
    with pytest.raises(simkit.InputError, match=r"cfg: a Config \(simkit.load_config\(path\)\), got str") as error:
        call()
    assert error.value.parameters == ("cfg",)


def test_load_config_of_a_non_path_names_path():
    with pytest.raises(simkit.InputError, match="path: a config file path, got int 3") as error:
        simkit.load_config(3)
    assert error.value.parameters == ("path",)


def test_opening_a_file_that_is_not_a_result_does_not_call_it_an_output(tmp_path):
    config = tmp_path / "x.toml"
    config.write_text("")
    with pytest.raises(simkit.InputError, match=r"x.toml: result: extension must be .zarr or .nc, got '.toml'"):
        simkit.open_result(config)
