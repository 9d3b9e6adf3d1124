"""Errors raised by the library name its parameters (``overwrite``, ``keep``, ``map_path``), never command-line
flags; the command line shows the same one line with each parameter it sets as its flag."""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest
import tomli_w

from simkit.cli.arguments import PARAMETER_FLAGS, as_flags, shown_as_flags
from simkit.cli.main import main
from simkit.config.load import load_config
from simkit.config.messages import ConfigError
from simkit.engine import resources
from simkit.engine.run import prepare
from simkit.errors import InputError
from simkit.outputs import SIMULATION, claim_output
from simkit.report import analyses, build

from conftest import small_config_dict


def _error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def _config(tmp_path, **kwargs):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(small_config_dict(**kwargs)))
    return path


def test_an_existing_output_names_the_parameter_in_the_library_and_the_flag_on_the_command_line(tmp_path, capsys):
    target = tmp_path / "a.zarr"
    target.mkdir()
    with pytest.raises(InputError) as raised:
        claim_output(target, SIMULATION)
    assert "give overwrite=True to replace it" in str(raised.value) and "--" not in str(raised.value)
    assert raised.value.parameters == ("overwrite",)
    line = _error_line(capsys, main(["run", str(_config(tmp_path)), "-o", str(target), "--quiet"]))
    assert line == str(raised.value).replace("overwrite=True", "--overwrite")


def test_the_resource_guard_suggests_parameters_that_the_command_line_shows_as_flags(tmp_path, monkeypatch,
                                                                                     capsys):
    monkeypatch.setattr(resources, "available_memory", lambda: 20_000_000)
    config = _config(tmp_path, stations=5000, registered=2_500_000, replicates=200)
    out = tmp_path / "r.nc"
    run = prepare(load_config(config), keep="full", source=str(config))
    with pytest.raises(InputError) as raised:
        resources.check_run(run, None, 1, out, str(config))
    library = str(raised.value)
    assert "keep=summary" in library and "output=RESULT.zarr" in library and "--" not in library
    line = _error_line(capsys, main(["run", str(config), "--quiet", "--processes", "1", "-o", str(out)]))
    assert "--keep summary" in line and "-o RESULT.zarr" in line and "=" not in line.split("try ", 1)[1]


def test_returns_without_a_mapping_names_the_parameters_of_the_library(tmp_path):
    """The report's loader names the parameters of report.build, which a user calls (map, not map_path)."""
    with pytest.raises(InputError, match=r"x.csv: returns: give preset=NAME or map=MAP.toml to read returns"):
        analyses.load(tmp_path / "x.csv", None, None)


def test_a_report_without_inputs_names_the_parameters_then_the_command_line_its_arguments(capsys):
    with pytest.raises(InputError) as raised:
        build()
    assert str(raised.value) == "report: give a config, or returns with preset/map (or both)"
    assert _error_line(capsys, main(["report"])) == "report: give a CONFIG, or --returns with --preset/--map (or both)"


def test_a_parameter_the_command_does_not_set_keeps_its_library_name():
    error = InputError("preset: 'x': unknown name (choose from a, b)", parameters=("preset",))
    assert shown_as_flags(error, argparse.Namespace(preset=None)) == "--preset: 'x': unknown name (choose from a, b)"
    assert shown_as_flags(error, argparse.Namespace(config=None)) == str(error)  # read from a config, not a flag
    assert shown_as_flags(InputError("resume: x"), argparse.Namespace(resume=True)) == "resume: x"  # not declared


@pytest.mark.parametrize("message, expected", [
    ("a: give overwrite=True to replace it", "a: give --overwrite to replace it"),
    ("try keep=summary or replicates=1,000 or block_size=4", "try --keep summary or --replicates 1,000 or "
                                                             "--block-size 4"),
    ("report: give a config, or returns with preset/map (or both)",
     "report: give a CONFIG, or --returns with --preset/--map (or both)"),
    ("data/map_path/returns: returns: file not found", "data/map_path/returns: --returns: file not found"),
])
def test_every_form_of_a_named_parameter_becomes_its_flag(message, expected):
    flags = {"overwrite": "--overwrite", "keep": "--keep", "replicates": "--replicates", "block_size": "--block-size",
             "config": "CONFIG", "returns": "--returns", "preset": "--preset", "map": "--map"}
    assert as_flags(message, flags) == expected


@pytest.mark.parametrize("message, expected", [
    ("leader: 'leader x': not one of the candidates ('a', 'leader', 'b')",
     "--leader: 'leader x': not one of the candidates ('a', 'leader', 'b')"),
    ("leader: \"leader's\": not one of the candidates ('leader: a…)",
     "--leader: \"leader's\": not one of the candidates ('leader: a…)"),
    ("leader: 'a\\'leader': Holm's leader, the nulls' leader: x",
     "--leader: 'a\\'leader': Holm's --leader, the nulls' --leader: x"),
])
def test_a_parameter_is_not_rewritten_inside_the_text_a_message_quotes(message, expected):
    """A leader or candidate named ``leader`` became ``--leader`` ("not one of the candidates (a, --leader, b)",
    "'--leader x'"): quoted values are the user's text; apostrophes open no quote."""
    assert as_flags(message, {"leader": "--leader"}) == expected


def test_the_parameters_of_an_error_survive_a_worker_process():
    error = pickle.loads(pickle.dumps(InputError("workers: must be at least 1", parameters=("workers",))))
    assert (str(error), error.parameters) == ("workers: must be at least 1", ("workers",))
    problems = pickle.loads(pickle.dumps(ConfigError(["a: b", "c: d"]))).problems
    assert problems == ["a: b", "c: d"]


def test_every_bad_run_parameter_is_named_as_the_parameter_then_its_flag(tmp_path, capsys):
    """Two run parameters out of their fields' bounds: both are named (the library's names, then the flags),
    neither as a field of a "run parameters" file nobody wrote."""
    with pytest.raises(InputError) as raised:
        prepare(load_config(_config(tmp_path)), replicates=0, seed=-1)
    assert str(raised.value) == ("replicates=0: Input should be greater than or equal to 1; "
                                 "seed=-1: Input should be greater than or equal to 0")
    assert set(raised.value.parameters) == {"replicates", "seed"}
    line = _error_line(capsys, main(["run", str(_config(tmp_path)), "--replicates", "0", "--seed", "-1", "--quiet"]))
    assert line == ("--replicates 0: Input should be greater than or equal to 1; "
                    "--seed -1: Input should be greater than or equal to 0")


def test_a_problem_off_the_run_fields_names_the_updated_parameters(tmp_path, monkeypatch):
    """A problem the replaced run fields raise elsewhere in the config is not a file's: it names the parameters
    that were replaced (a stand-in parse raises it; the shipped fields have no such cross-check today)."""
    from simkit.engine import run

    def parse(text, source, overrides):
        raise ConfigError([f"{source}: sweep: some problem", f"{source}: run.seed: Input should be odd"])

    monkeypatch.setattr(run, "parse_config", parse)
    with pytest.raises(InputError) as raised:
        run.with_run_fields(load_config(_config(tmp_path)), {"replicates": 5, "seed": 2})
    message = str(raised.value)
    assert message == "sweep: some problem (with replicates=5, seed=2); seed=2: Input should be odd", message
    assert set(raised.value.parameters) == {"replicates", "seed"}


@pytest.mark.parametrize("message, expected", [
    ("output: output: is a folder, not a file", "output: -o: is a folder, not a file"),
    ("seed: replicates: 3 are too few", "seed: --replicates: 3 are too few"),
    ("x.toml: seed: must be 0 or more", "x.toml: --seed: must be 0 or more"),
])
def test_the_file_a_message_is_about_is_never_rewritten_as_a_flag(message, expected):
    """A file named like a parameter (``-o output``, a folder) at the start of the library's ``file: field:
    problem`` was rewritten too: ``-o: -o: is a folder``. The command's files are the user's text."""
    assert as_flags(message, PARAMETER_FLAGS, files=["output", "seed", "x.toml"]) == expected


def test_a_cli_value_or_file_named_like_a_flag_stays_the_users_text(tmp_path, capsys, monkeypatch):
    """``--null null`` read ``--null: --null: unknown name``; a report written over a folder named ``output``
    read ``-o: -o: is a folder``: the user's text is shown as given, the parameter as its flag."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    config = Path(__file__).resolve().parents[1] / "configs" / "kazakhstan-2022.toml"
    assert main(["forensics", str(config), "--null", "null"]) == 2
    assert capsys.readouterr().err.strip().endswith("--null: 'null': unknown name (choose from textbook, "
                                                    "simulated, flat)")
    assert main(["report", str(config), "-o", "output"]) == 2
    assert capsys.readouterr().err.strip() == "output: -o: is a folder, not a file"


def test_a_missing_output_folder_named_like_a_flag_stays_the_users_text(tmp_path, capsys, monkeypatch):
    """``report -o output/r.md`` without a folder ``output`` read ``output/r.md: -o: folder -o does not exist``: the
    folder named inside the message was rewritten as the flag; it is quoted, the user's text."""
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / "kazakhstan-2022.toml"
    assert main(["report", str(config), "-o", "output/r.md"]) == 2
    assert capsys.readouterr().err.strip() == "output/r.md: -o: folder 'output' does not exist"
