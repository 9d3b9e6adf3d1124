"""Bad input of every kind ends in one line on stderr naming the file and the field, exit 2: unbounded numbers,
command-line values, electorate CSV options, deep TOML, control characters; and the resource guard refuses a
run that cannot fit before it starts."""
from __future__ import annotations

import numpy as np
import pytest
import tomli_w

import simkit

from simkit.cli.main import main
from simkit.config.load import load_config, parse_value
from simkit.config.messages import shown_once
from simkit.electorate.build import build_electorate
from simkit.errors import MAX_LISTED
from simkit.paths import set_path
from simkit.types import MAX_LATENT_SD, MAX_REGISTER, MAX_REPLICATES, MAX_STATIONS

from conftest import REPO, small_config_dict

FLAGSHIP = REPO / "configs" / "kazakhstan-2022.toml"
SCENARIOS = REPO / "configs" / "kazakhstan-2022-scenarios.toml"


def write(tmp_path, raw, name="c.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(raw))
    return path


def one_line(capsys, *fragments) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("config, assignments, field", [
    (FLAGSHIP, ["turnout.dispersion=inf"], "turnout.dispersion"),
    (FLAGSHIP, ["turnout.dispersion=nan"], "turnout.dispersion"),
    (FLAGSHIP, ["turnout.model=\"beta\"", "turnout.dispersion=inf"], "turnout.dispersion"),
    (FLAGSHIP, ["preferences.regional_sd=inf"], "preferences.regional_sd"),
    (FLAGSHIP, ["preferences.dispersion=inf"], "preferences.dispersion"),
    (FLAGSHIP, ["electorate.station_size_sd=inf"], "electorate.station_size_sd"),
    (FLAGSHIP, ["electorate.station_size_sd=1e5"], "electorate.station_size_sd"),
    (FLAGSHIP, ["exit_poll.socis.stations=inf"], "exit_poll.socis.stations"),
    (FLAGSHIP, ["run.replicates=1e20"], "run.replicates"),
    (FLAGSHIP, ["electorate.registered=9223372036854775807"], "electorate.registered"),
    (FLAGSHIP, ["turnout.dispersion=50"], "turnout.dispersion"),
    (SCENARIOS, ["manipulation.stuffing_south.theta=inf"], "manipulation.stuffing_south.theta"),
    (SCENARIOS, ["manipulation.stuffing_south.theta=1e9"], "manipulation.stuffing_south.theta"),
    (SCENARIOS, ["manipulation.stuffing_south.extreme_sd=inf"], "manipulation.stuffing_south.extreme_sd"),
])
def test_unbounded_numbers_are_refused_by_validate(config, assignments, field, capsys):
    args = [f"--set={assignment}" for assignment in assignments]
    assert main(["validate", str(config), *args]) == 2
    one_line(capsys, str(config), field)


def test_an_unreachable_turnout_mean_is_refused(tmp_path, capsys):
    raw = small_config_dict(turnout_model="truncated_normal", turnout_dispersion=1.0, turnout_mean=0.05)
    assert main(["validate", str(write(tmp_path, raw))]) == 2
    one_line(capsys, "turnout.mean", "cannot be reached")


@pytest.mark.parametrize("model, dispersion", [("logit_normal", MAX_LATENT_SD), ("beta", 1e9), ("beta", 1e-9)])
def test_the_turnout_mean_holds_at_the_bounds(model, dispersion):
    """At the largest (and smallest) dispersion allowed, mean station turnout is the configured one within 4 SE."""
    import simkit

    stations, mean = 20_000, 0.6944
    raw = small_config_dict(stations=stations, registered=stations * 500, turnout_model=model,
                            turnout_dispersion=dispersion, turnout_mean=mean, replicates=1, regions=(("all", 1.0),))
    ds = simkit.simulate(simkit.Config.model_validate(raw), workers=1)
    turnout = (ds["ballots"] / ds["registered"]).values.ravel()
    standard_error = turnout.std() / np.sqrt(stations)
    assert abs(turnout.mean() - mean) < 4 * standard_error + 1e-12


def test_the_largest_register_comes_out_exact():
    from simkit.electorate.build import build_electorate

    raw = small_config_dict(stations=1000, registered=MAX_REGISTER)
    electorate = build_electorate(__import__("simkit").Config.model_validate(raw).electorate)
    assert int(electorate.registered.sum()) == MAX_REGISTER


def test_stuffing_redraws_are_capped_with_a_clear_error():
    from simkit.errors import InputError
    from simkit.model.manipulation import _open_unit_draw

    with pytest.raises(InputError, match="manipulation.s.theta: 5 stuffing fractions still outside"):
        _open_unit_draw(np.random.default_rng(0), 5, lambda z: np.abs(z) + 1.0, "manipulation.s.theta")


def test_the_largest_theta_runs(tmp_path, capsys):
    raw = small_config_dict(stations=200, registered=100_000, replicates=2)
    raw["manipulation"] = [{"name": "s", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.5,
                            "f_extreme": 0.5, "theta": MAX_LATENT_SD, "alpha": 2.0, "extreme_sd": MAX_LATENT_SD}]
    assert main(["run", str(write(tmp_path, raw)), "--quiet", "--processes", "1"]) == 0


def test_validate_reports_a_problem_once_not_per_sweep_point(tmp_path, capsys):
    raw = small_config_dict(sweep={"turnout.mean": [0.4, 0.5, 0.6]})
    raw["observed"] = {"votes": {"nobody": 3}}
    assert main(["validate", str(write(tmp_path, raw))]) == 2
    one_line(capsys, "observed.votes.nobody")


def test_fewer_voters_than_stations_names_the_file(tmp_path, capsys):
    raw = small_config_dict(stations=100, registered=100)
    raw["electorate"]["regions"] = [{"name": "big", "register_share": 0.99},
                                    {"name": "tiny", "register_share": 0.01, "stations": 5}]
    config = write(tmp_path, raw)
    assert main(["validate", str(config)]) == 2
    one_line(capsys, str(config), "electorate.regions.tiny", "fewer voters (1) than stations (5)")


@pytest.mark.parametrize("option, value", [("--block-size", "0"), ("--block-size", "-4"), ("--processes", "-1"),
                                           ("--workers", "0")])
def test_bad_counts_on_the_command_line_are_one_line(tmp_path, option, value, capsys):
    config = write(tmp_path, small_config_dict())
    with pytest.raises(SystemExit) as stop:
        main(["run", str(config), option, value, "--quiet"])
    assert stop.value.code == 2
    one_line(capsys, option, value)


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-1", "--seed -1: Input should be greater than or equal to 0"),
    ("--replicates", "0", "--replicates 0: Input should be greater than or equal to 1"),
    ("--replicates", "100000000", "--replicates 100000000: Input should be less than or equal to 10000000")])
def test_a_run_option_outside_its_fields_bounds_names_the_flag(tmp_path, option, value, message, capsys):
    """--seed and --replicates replace the config's run.seed and run.replicates: a value out of bounds is the
    flag's problem (the library names its parameter, seed=-1), not a field of some "run options" file."""
    config = write(tmp_path, small_config_dict())
    assert main(["run", str(config), option, value, "--quiet"]) == 2
    assert one_line(capsys) == message


@pytest.mark.parametrize("assignment, message", [
    ("run.replicates=0", "run.replicates: Input should be greater than or equal to 1"),
    ("turnout.mean=x", "turnout.mean: Input should be a valid number, unable to parse string as a number"),
    ("turnout=3", "turnout: Input should be a valid dictionary or instance of Turnout")])
def test_a_bad_set_value_is_shown_once_by_its_flag(tmp_path, assignment, message, capsys):
    """``--set`` shows the value as typed; the field's message does not repeat it (``…, got 0``)."""
    config = write(tmp_path, small_config_dict())
    assert main(["validate", str(config), "--set", assignment]) == 2
    assert one_line(capsys) == f"--set {assignment} (on {config}): {message}"


def test_each_problem_a_block_check_finds_is_its_own_and_keeps_its_value(tmp_path, capsys):
    """A block's check that finds two fields wrong tells two problems, each at its field: from --set without the
    value each flag shows, from a file with it (as given: 0.99999999, not 1)."""
    raw = small_config_dict(turnout_dispersion=9)
    assignments = ["turnout.regional_mean.north=0.99999999", "turnout.regional_mean.south=0.99999999"]
    config = write(tmp_path, raw)
    assert main(["validate", str(config), *[f for a in assignments for f in ("--set", a)]]) == 2
    unreachable = "cannot be reached by a logit_normal model of dispersion 9 (nearest: 1; lower the dispersion)"
    assert capsys.readouterr().err.splitlines() == [f"--set {a} (on {config}): {a.partition('=')[0]}: {unreachable}"
                                                    for a in assignments]
    raw["turnout"]["regional_mean"] = {"north": 0.99999999, "south": 0.99999999}
    file_only = write(tmp_path, raw, "file.toml")
    assert main(["validate", str(file_only)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{file_only}: turnout.regional_mean.{region}: {unreachable}, "
                                                    f"got 0.99999999" for region in ("north", "south")]


@pytest.mark.parametrize("assignment, message", [
    ("run.replicates=1.5", "run.replicates: Input should be a valid integer, got a number with a fractional part"),
    ("preferences.shares={a=0.4,b=0.3,c=0.2}", "preferences.shares: must sum to 1, got 0.9")])
def test_a_set_value_is_cut_from_a_message_not_the_messages_own_words(tmp_path, assignment, message, capsys):
    """Only the text of the value --set gave is left out: pydantic's explanation and a figure the check computed
    (the shares' sum) stay."""
    config = write(tmp_path, small_config_dict())
    assert main(["validate", str(config), "--set", assignment]) == 2
    assert one_line(capsys) == f"--set {assignment} (on {config}): {message}"


@pytest.mark.parametrize("problem, given, told", [
    ("observed.timeline.early_report: not one of the reports, got 12:00", "12:00",
     "observed.timeline.early_report: not one of the reports"),
    ("timeline.closing: must come after opening 09:00, got 08:00", "08:00",
     "timeline.closing: must come after opening 09:00")])
def test_a_set_text_told_unquoted_is_shown_once(problem, given, told):
    """A clock time a message tells as written (``got 12:00``, not ``got '12:00'``) is left out too."""
    field = problem.partition(": ")[0]
    assert shown_once(problem, {field: given}) == told


@pytest.mark.parametrize("assignment, message", [
    ("turnout.dispersion=50", "turnout.dispersion: at most 10 for the logit_normal model"),
    ("turnout.mean=1.5", "turnout.mean: must be strictly between 0 and 1"),
    ("preferences.leader=zed", "preferences.leader: not an option"),
    ("electorate.stations=1", "electorate.stations: fewer than the regions' stations (2)"),
    ("electorate.encoding=klingon", "electorate.encoding: not a known text encoding"),
    ("exit_poll.p.stations=50", "exit_poll.p.stations: more than the 12 stations of the electorate"),
])
def test_a_bad_set_value_the_projects_own_checks_refuse_is_shown_once(tmp_path, assignment, message, capsys):
    """A field the project's checks refuse (a block's check, a field type's, a check across fields) is told with
    the value given, ``…, got 'zed'``, from a file; from ``--set``, which shows it, once."""
    raw = small_config_dict()
    raw["exit_poll"] = [{"name": "p", "stations": 1, "per_station": 10}]
    if assignment.startswith("electorate.encoding"):
        (tmp_path / "stations.csv").write_text("registered\n400\n")
        raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered"}
    config = write(tmp_path, raw)
    assert main(["validate", str(config), "--set", assignment]) == 2
    assert one_line(capsys) == f"--set {assignment} (on {config}): {message}"
    path, _, value = assignment.partition("=")
    file_only = write(tmp_path, set_path(raw, path, parse_value(value)))
    assert main(["validate", str(file_only)]) == 2
    assert one_line(capsys).startswith(f"{file_only}: {message}, got "), "the file's value is not told"


@pytest.mark.parametrize("quick_count, blocks", [(False, "[[exit_poll]], [[exit_poll]]"),
                                                   (True, "[[exit_poll]], [[quick_count]]")])
def test_a_pollster_listed_twice_is_one_line_naming_it(tmp_path, quick_count, blocks, capsys):
    """Two polls of one name, of one kind or an exit poll beside a quick count, are refused naming the name: the
    rows, tables and labels tell pollsters apart by name. An exit poll and a quick count of one name were compared
    as two rows of the same pollster; two exit polls were refused without the name."""
    raw = small_config_dict()
    poll = {"name": "p", "stations": 4, "published": {"a": 0.5}}
    raw["exit_poll"] = [{**poll, "per_station": 10}]
    if quick_count:
        raw["quick_count"] = [poll]
    else:
        raw["exit_poll"].append({**poll, "per_station": 20})
    config = write(tmp_path, raw)
    for command in (["validate"], ["compare", "--replicates", "20", "--quiet"]):
        assert main([command[0], str(config), *command[1:]]) == 2
        assert one_line(capsys) == (f"{config}: exit_poll.p.name: given to 2 polls ({blocks}); each poll needs its "
                                    "own name")


@pytest.mark.parametrize("command", ["run", "calibrate"])
def test_zero_workers_is_a_usage_error(tmp_path, command, capsys):
    config = write(tmp_path, small_config_dict())
    with pytest.raises(SystemExit) as stop:
        main([command, str(config), "--workers", "0", "--quiet"])
    assert stop.value.code == 2
    one_line(capsys, f"simkit {command}", "--workers", "must be at least 1, got 0")


def test_negative_ledger_points_is_a_usage_error(tmp_path, capsys):
    """--ledger-points -1 once ran as if 0 was given."""
    config = write(tmp_path, small_config_dict())
    with pytest.raises(SystemExit) as stop:
        main(["compare", str(config), "--ledger-points", "-1", "--quiet"])
    assert stop.value.code == 2
    one_line(capsys, "simkit compare", "--ledger-points", "must be 0 or more, got -1")


@pytest.mark.parametrize("config, assignment, field, bound", [
    (FLAGSHIP, "run.replicates=1e20", "run.replicates", MAX_REPLICATES),
    (FLAGSHIP, "electorate.stations=1e30", "electorate.stations", MAX_STATIONS),
    (SCENARIOS, "manipulation.stuffing_south.theta=1e30", "manipulation.stuffing_south.theta", None),
])
def test_a_number_beyond_64_bits_is_refused_with_the_fields_bound(config, assignment, field, bound, capsys):
    assert main(["validate", str(config), f"--set={assignment}"]) == 2
    line = one_line(capsys, str(config), field, "less than or equal to")
    assert "exceeded maximum size" not in line
    if bound is not None:
        assert line.endswith(f"less than or equal to {bound}")


@pytest.mark.parametrize("assignment, problem", [
    ("run.replicates=-3", "run.replicates: Input should be greater than or equal to 1, got -3"),  # an int bound
    ("electorate.station_size_sd=-0.5",
     "electorate.station_size_sd: Input should be greater than or equal to 0, got -0.5"),  # a float bound
    ("run.keep=nope", "run.keep: Input should be 'full' or 'summary', got 'nope'"),  # a literal choice
    ("electorate.regions=[]", "electorate.regions: List should have at least 1 item after validation, not 0, got []"),
    ("run.replicates=1.5", "run.replicates: Input should be a valid integer, got a number with a fractional part "
                           "(1.5)"),  # a message that says what it got: the value in parentheses
    ("title=[" + ",".join(map(str, range(40))) + "]",
     "title: Input should be a valid string, got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, …"),  # cut to 40 characters
])
def test_a_field_pydantic_refuses_is_told_with_the_value_given(tmp_path, assignment, problem, capsys):
    """pydantic's messages said what a field must be, not what the config gave it."""
    path, _, value = assignment.partition("=")
    config = write(tmp_path, set_path(small_config_dict(), path, parse_value(value)))
    assert main(["validate", str(config)]) == 2
    assert one_line(capsys) == f"{config}: {problem}"


def test_a_run_parameter_out_of_bounds_is_told_with_its_value_once():
    """``infer(particles=5)``: the value said once (the caller once added its own ", got 5" to the message)."""
    from simkit.config.load import load_config
    from simkit.errors import InputError
    from simkit.inference.run import infer
    with pytest.raises(InputError) as error:
        infer(load_config(REPO / "configs" / "kazakhstan-2022-inference.toml"), particles=5)
    assert str(error.value) == "particles: Input should be greater than or equal to 20, got 5"


@pytest.mark.parametrize("field, value", [("delimiter", ";;"), ("encoding", "klingon")])
def test_bad_electorate_csv_options_are_config_errors(tmp_path, field, value, capsys):
    (tmp_path / "stations.csv").write_text("registered\n100\n200\n")
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered", field: value}
    config = write(tmp_path, raw)
    assert main(["validate", str(config)]) == 2
    one_line(capsys, str(config), f"electorate.{field}")


def csv_electorate_config(tmp_path, text: str, encoding: str = "utf-8"):
    """A small config whose electorate is ``stations.csv`` holding ``text`` (columns id, region, registered)."""
    (tmp_path / "stations.csv").write_bytes(text.encode(encoding))
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region", "station_column": "id"}
    return write(tmp_path, raw)


def test_a_unicode_digit_in_an_electorate_register_is_one_line(tmp_path, capsys):
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,\u00b2\nb,x,500\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "row 2", "whole number")


def test_an_electorate_register_written_as_an_integral_decimal_reads_as_a_returns_count_does(tmp_path, capsys):
    """``812.0`` (pandas writes a count column with a gap as floats): the returns loader reads it as 812, so the
    electorate does too (a returns file is the electorate its station statistics are compared with); ``812.5``,
    ``-3`` and ``1.359`` (thousands grouped, or a decimal) are no register, each one line saying why."""
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,812.0\nb,x,500\n")
    assert main(["validate", str(config)]) == 0, capsys.readouterr().err
    assert list(build_electorate(load_config(config).electorate).registered) == [812, 500]
    for cell, why in (("812.5", "(is not a whole number"), ("-3", "got '-3'"), ("1.359", "(reads as a count with '.'")):
        config = csv_electorate_config(tmp_path, f"id,region,registered\na,x,{cell}\nb,x,500\n")
        assert main(["validate", str(config)]) == 2
        one_line(capsys, "stations.csv", "electorate.registered_column", "row 2", "whole number", why)


@pytest.mark.parametrize("cells", [(str(MAX_REGISTER // 2 + 1), str(MAX_REGISTER // 2)), ("9" * 5000, "500")])
def test_an_electorate_csv_above_the_register_bound_is_one_line(tmp_path, cells, capsys):
    """The bound of the synthetic ``electorate.registered`` (10^10 voters: every sum exact) holds for a CSV too."""
    config = csv_electorate_config(tmp_path, "id,region,registered\n" + "".join(
        f"s{i},x,{cell}\n" for i, cell in enumerate(cells)))
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "10^10")


def test_an_electorate_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path, capsys):
    """A spreadsheet's UTF-8 export starts with a byte-order mark; it is not part of the first column's name."""
    config = csv_electorate_config(tmp_path, "\ufeffid,region,registered\na,x,400\nb,y,500\n")
    assert main(["validate", str(config)]) == 0, capsys.readouterr().err


def test_duplicate_station_ids_in_an_electorate_csv_are_one_line(tmp_path, capsys):
    """Station ids index the ``station`` dimension of every result: two rows of one id are refused."""
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,400\nb,y,500\na,y,300\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.station_column", "rows 2 and 4", "'a'")


@pytest.mark.parametrize("row", ["b,500,", "b,500"])
def test_a_blank_or_missing_region_in_an_electorate_csv_is_one_line(tmp_path, row, capsys):
    config = csv_electorate_config(tmp_path, "id,registered,region\na,400,x\n" + row + "\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.region_column", "row 3", "blank")


def test_an_electorate_row_longer_than_its_header_is_one_line(tmp_path, capsys):
    """An unquoted thousands separator (``1,000``) splits a register in two: read as 1 voter, it would run."""
    config = csv_electorate_config(tmp_path, "id,registered,region\na,400,x\nb,1,000,y\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.path", "row 3", "4 cells", "3 columns")


def test_an_electorate_row_with_a_blank_cell_beyond_its_header_is_refused(tmp_path, capsys):
    """``b,1,000,`` under a header whose last column is blank in that row: the unquoted thousands separator left
    only a blank cell beyond the header, and the row read a register of 1 voter."""
    config = csv_electorate_config(tmp_path, "id,registered,region,note\na,400,x,\nb,1,000,y,\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.path", "row 3 ends with 1 blank cell beyond the header's 4 columns",
             "thousands separator")


def test_an_electorate_file_whose_rows_and_header_end_with_a_delimiter_is_read(tmp_path):
    """A trailing delimiter on every line, the header's included, is an unnamed blank column: it fits."""
    config = csv_electorate_config(tmp_path, "id,registered,region,\na,400,x,\nb,1000,y,\n")
    assert main(["validate", str(config)]) == 0


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_an_electorate_file_whose_data_rows_all_end_with_a_delimiter_is_read(tmp_path, newline):
    """Every data row ending with a delimiter the header lacks (some exports write them) leaves each one blank cell
    beyond the header: the rows agree, so it is no thousands separator, and they are read."""
    text = newline.join(["id,registered,region", "a,400,x,", "b,1000,y,", ""])
    config = csv_electorate_config(tmp_path, text)
    assert main(["validate", str(config)]) == 0
    assert build_electorate(load_config(config).electorate).registered.tolist() == [400, 1000]


def test_a_single_electorate_row_ending_with_a_delimiter_the_header_lacks_is_refused(tmp_path, capsys):
    """One row alone cannot tell a trailing delimiter from an unquoted ``1,000`` that left its last column blank."""
    config = csv_electorate_config(tmp_path, "id,registered,region\nb,1,000,\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.path", "row 2 has 4 cells, the header 3 columns")


@pytest.mark.parametrize("rows, number, cells", [("a,400,x,\nb,1,000,,\n", 3, "2 blank cells"),
                                                  ("a,400,x,\nb,1000,y\n", 3, "0 blank cells"),
                                                  ("a,400,x\nb,1,000,\nc,5,z\n", 3, "1 blank cell "),
                                                  ("a,400,x,\nb,5,y,\nc,1,000,,\nd,7,z,\n", 4, "2 blank cells")])
def test_electorate_rows_whose_blank_cells_beyond_the_header_differ_are_refused(tmp_path, capsys, rows, number,
                                                                                 cells):
    """Rows ending with delimiters the header lacks are read only when every row has the same number of blank
    cells beyond it (the last line may have none): one with two (``1,000,,``, an unquoted thousands separator and
    a trailing delimiter) or a row with one among rows with none tells no export's habit apart from a shifted row,
    and the row named is the one that differs from most rows, not the first with a cell beyond the header (two
    rows, one with none: the second is named)."""
    config = csv_electorate_config(tmp_path, "id,registered,region\n" + rows)
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.path", f"row {number} ends with {cells}",
             "rows end with different numbers of delimiters")


def test_a_non_blank_cell_beyond_the_header_is_blamed_before_differing_delimiters(tmp_path, capsys):
    """``b,1,000,y,`` among rows ending with one delimiter: its cell ``y`` beyond the header is the culprit (an
    unquoted thousands separator), not the first row, whose one blank cell beyond the header is a trailing
    delimiter like ``c``'s."""
    config = csv_electorate_config(tmp_path, "id,registered,region\na,400,x,\nb,1,000,y,\nc,5,z,\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.path", "row 3 has 5 cells, the header 3 columns",
             "thousands separator")


def test_electorate_rows_ending_with_a_delimiter_but_the_last_line_are_read(tmp_path):
    """Rows that all end with a delimiter the header lacks, two at least, but the file's last line, which ends
    without: an export's habit, read."""
    config = csv_electorate_config(tmp_path, "id,registered,region\na,400,x,\nb,1000,y,\nc,5,z\n")
    assert main(["validate", str(config)]) == 0
    assert build_electorate(load_config(config).electorate).registered.tolist() == [400, 1000, 5]


@pytest.mark.parametrize("row, counts", [("b,1,000,y,n1,n2", ("6 cells", "5 columns")),
                                         ("b,1", ("2 cells", "5 columns"))])
def test_a_row_length_counts_every_column_of_a_header_naming_one_twice(tmp_path, capsys, row, counts):
    """A header naming an unused column twice (``note,note``) has 5 columns, though a row read from it holds 4
    names: a row too long or too short is told against the header's 5."""
    config = csv_electorate_config(tmp_path, f"id,registered,region,note,note\na,400,x,n1,n2\n{row}\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "row 3", *counts)


@pytest.mark.parametrize("text, field", [
    ("id,registered,region,registered\na,400,x,500\n", "registered_column"),
    ("id,registered,region,id\na,400,x,b\n", "station_column"),
    ("region,id,registered,region\nx,a,400,y\n", "region_column"),
])
def test_a_column_named_twice_in_an_electorate_header_is_one_line(tmp_path, text, field, capsys):
    """Two columns of the name a field reads: ``csv.DictReader`` keeps the last one's cells, silently."""
    config = csv_electorate_config(tmp_path, text)
    assert main(["validate", str(config)]) == 2
    column = {"registered_column": "registered", "station_column": "id", "region_column": "region"}[field]
    one_line(capsys, "stations.csv", f"electorate.{field}: the header has 2 columns named '{column}' (which one is "
             "meant? rename the others)")


@pytest.mark.parametrize("text", ["id,region,registered\na,x,400\n,x,500\n", "region,registered,id\nx,400,a\nx,500\n"])
def test_a_blank_or_missing_station_id_in_an_electorate_csv_is_one_line(tmp_path, text, capsys):
    """A station id indexes the ``station`` dimension: a blank cell (or none, in a short row) is no id."""
    config = csv_electorate_config(tmp_path, text)
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.station_column", "row 3", "blank")


def test_a_short_electorate_row_is_named_as_short(tmp_path, capsys):
    """A row with fewer cells than the header (an unclosed quote swallows the rest of the file into one cell)
    says so, rather than only that its register is blank."""
    config = csv_electorate_config(tmp_path, 'id,region,registered\na,x,400\n"b,y,500\nc,y,300\n')
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "row 3", "1 cell", "3 columns")


def test_a_missing_electorate_column_lists_the_headers_columns(tmp_path, capsys):
    """A header read with the wrong delimiter (or with spaces after its commas) shows the columns it has."""
    config = csv_electorate_config(tmp_path, "id;region;registered\na;x;400\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "no column 'registered'",
             "'id;region;registered'")


def test_an_electorate_csv_is_read_as_a_returns_file_is(tmp_path, capsys):
    """The electorate had its own reader: a gzipped file (the panel's returns, which ``[observed.stations]`` reads
    and the electorate should share) was 'unreadable CSV: 'utf-8' codec can't decode byte 0x8b in position 1', a
    blank first line a header of no column, and a row after a blank line was told by the wrong row number."""
    import gzip

    text = "id,region,registered\na,x,400\nb,y,500\n"
    config = csv_electorate_config(tmp_path, text)
    plain = build_electorate(load_config(config).electorate)
    stations = tmp_path / "stations.csv"
    stations.write_bytes(gzip.compress(b"\n" + text.encode()))
    packed = build_electorate(load_config(config).electorate)
    assert (packed.registered == plain.registered).all() and packed.region_names == plain.region_names
    stations.write_text(text + "\nc,y,5x0\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv: electorate.registered_column: row 5: register must be a whole number")
    stations.write_bytes((text + "c,R\u00e9gion,300\n").encode("latin-1"))
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv: electorate.encoding: not utf-8 text (line 4, byte 0xe9); set electorate.encoding")


def test_files_without_the_named_columns_are_refused_before_their_rows_are_read(tmp_path, monkeypatch):
    """An electorate or a timeline station file was read whole before its columns were looked for: a large text
    file of something else filled memory before 'no column registered'."""
    from simkit.electorate import build
    from simkit.timeline import observed
    from conftest import TIMELINE_MAP

    def no_rows(path, fmt):
        raise AssertionError("the rows were read")

    monkeypatch.setattr(build, "read_records", no_rows)
    monkeypatch.setattr(observed, "read_records", no_rows)
    config = csv_electorate_config(tmp_path, "id,region,voters\na,x,400\nb,y,500\n")
    with pytest.raises(simkit.InputError, match="electorate.registered_column: no column 'registered'"):
        build_electorate(load_config(config).electorate)
    (tmp_path / "map.toml").write_text(TIMELINE_MAP)
    with pytest.raises(simkit.InputError, match="column 'registered' .* not found"):
        observed.from_stations(tmp_path / "stations.csv", tmp_path / "map.toml")


def test_an_electorate_csv_read_at_the_wrong_delimiter_says_which_one_splits_its_header(tmp_path, capsys):
    config = csv_electorate_config(tmp_path, "id;region;registered\na;x;400\nb;y;500\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column",
             "(the header is one field that ';' splits into 3 names: set electorate.delimiter)")


def test_a_wide_header_without_the_column_lists_its_first_columns_and_how_many_more(tmp_path, capsys):
    """The header's columns are listed like every other list an error repeats (:func:`simkit.errors.listed`):
    the first :data:`~simkit.errors.MAX_LISTED`, then how many more (the list ended in a bare "…")."""
    header = ["id", "region"] + [f"c{i}" for i in range(MAX_LISTED)]
    row = ["a", "x"] + ["1"] * MAX_LISTED
    config = csv_electorate_config(tmp_path, ",".join(header) + "\n" + ",".join(row) + "\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "electorate.registered_column", "no column 'registered'",
             "(the header's columns: 'id', 'region', 'c0', ", f"'c{MAX_LISTED - 3}', and 2 more)")


NFD = "I\u0302le-de-France"  # "Île-de-France" as macOS may write it: I and a combining circumflex (Unicode NFD)


def test_one_region_written_in_two_unicode_forms_is_one_line(tmp_path, capsys):
    """Two rows of one region that look alike but are written in two Unicode forms (NFC, NFD) would be two
    regions, silently."""
    config = csv_electorate_config(tmp_path, f"id,region,registered\na,\u00cele-de-France,400\nb,{NFD},500\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.region_column", "rows 2 and 3", "Unicode")


def test_a_config_region_in_another_unicode_form_says_so(tmp_path, capsys):
    """A region the config writes in NFC and the file in NFD looks the same in the refusal: it says why they
    differ."""
    (tmp_path / "stations.csv").write_text(f"id,region,registered\na,{NFD},400\nb,Bretagne,500\n")
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region", "station_column": "id"}
    raw["turnout"]["regional_mean"] = {"\u00cele-de-France": 0.7}
    assert main(["validate", str(write(tmp_path, raw))]) == 2
    one_line(capsys, "stations.csv", "turnout.regional_mean", "another Unicode form", ascii(NFD))


@pytest.mark.parametrize("source", ["csv", "synthetic"])
def test_a_swept_region_in_another_unicode_form_says_so(tmp_path, capsys, source):
    """A swept region's mean written in NFD where the electorate writes the region in NFC says why they differ, in
    one line (a synthetic electorate's sweep points each added the hint: three lines)."""
    nfc, nfd = "\u00eele_de_france", "i\u0302le_de_france"  # a name a synthetic electorate allows
    (tmp_path / "stations.csv").write_text(f"id,region,registered\na,{nfc},400\nb,bretagne,500\n")
    raw = small_config_dict()
    raw["electorate"]["regions"][0]["name"] = nfc
    if source == "csv":
        raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                             "region_column": "region", "station_column": "id"}
    assert main(["validate", str(write(tmp_path, raw)), "--sweep", f"turnout.regional_mean.{nfd}=0.6,0.7"]) == 2
    one_line(capsys, f"sweep.turnout.regional_mean.{nfd}", "another Unicode form", ascii(nfd))


def test_an_electorate_csv_of_no_voters_at_all_is_one_line(tmp_path, capsys):
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,0\nb,y,00\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "every register is 0")


def test_a_config_saved_with_a_byte_order_mark_reads(tmp_path, capsys):
    """Windows editors save UTF-8 with a byte-order mark; it is not part of the TOML (tomllib refuses it as an
    'invalid statement' at line 1), in a config or in the one it extends."""
    base = tmp_path / "base.toml"
    base.write_bytes(b"\xef\xbb\xbf" + tomli_w.dumps(small_config_dict()).encode())
    child = tmp_path / "child.toml"
    child.write_bytes(b"\xef\xbb\xbf" + b'extends = "base.toml"\ntitle = "child"\n')
    assert main(["validate", str(child)]) == 0, capsys.readouterr().err


def test_toml_nested_3000_deep_is_one_line(tmp_path, capsys):
    config = tmp_path / "deep.toml"
    config.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, str(config), "nested too deeply")


def test_a_control_character_in_a_block_name_stays_on_one_line(tmp_path, capsys):
    raw = small_config_dict()
    raw["manipulation"] = [{"name": "bad\nname\x1b[31m", "kind": "vote_stealing", "beneficiary": "a",
                            "fraction": 0.1}]
    config = write(tmp_path, raw)
    assert main(["validate", str(config)]) == 2
    line = one_line(capsys, str(config), "manipulation.bad\\nname\\x1b[31m.name")
    assert line.isprintable()


def test_the_resource_guard_names_the_estimate_and_what_fits(tmp_path, monkeypatch, capsys):
    from simkit.engine import resources

    monkeypatch.setattr(resources, "available_memory", lambda: 20_000_000)
    config = write(tmp_path, small_config_dict(stations=5000, registered=2_500_000, replicates=200))
    out = tmp_path / "r.nc"  # netCDF gathers every replicate in memory (a run without -o keeps totals only)
    assert main(["run", str(config), "--quiet", "--processes", "1", "-o", str(out)]) == 2
    line = one_line(capsys, str(config), "needs about", "20 MB is available", "--keep summary")
    assert "-o RESULT.zarr" in line  # streaming the blocks to disk would fit too
    assert not out.exists()


def test_the_resource_guard_checks_the_output_disk(tmp_path, monkeypatch, capsys):
    from simkit.engine import resources

    monkeypatch.setattr(resources, "free_disk", lambda path: 1_000_000)
    config = write(tmp_path, small_config_dict(stations=5000, registered=2_500_000, replicates=200))
    out = tmp_path / "r.zarr"
    assert main(["run", str(config), "--quiet", "--processes", "1", "-o", str(out)]) == 2
    one_line(capsys, str(out), "uncompressed", "--keep summary")
    assert not out.exists() and not list(tmp_path.glob(".r.zarr*"))


#: more names than an error lists (:data:`simkit.errors.MAX_LISTED`): the messages below name the first ones only
MANY = [f"n{i:02d}" for i in range(MAX_LISTED + 4)]


def _refusal(call) -> str:
    """The message of the exception ``call()`` raises (of pydantic's: its first problem, without the input)."""
    from pydantic import ValidationError

    with pytest.raises(Exception) as error:
        call()
    return error.value.errors()[0]["msg"] if isinstance(error.value, ValidationError) else str(error.value)


def _unknown_station_statistics():
    from simkit.config.core import ObservedStations
    return _refusal(lambda: ObservedStations(statistics=MANY, values={name: 0.1 for name in MANY}))


def _observed_station_values_not_listed():
    from simkit.config.core import ObservedStations
    return _refusal(lambda: ObservedStations(statistics=["turnout_sd"],
                                             values={"turnout_sd": 0.1, **{name: 0.1 for name in MANY}}))


def _inference_scenario():
    from simkit.config.load import parse_config
    from simkit.config.inference import InferenceSettings, infer_problems
    raw = small_config_dict()
    raw["scenario"] = [{"name": name, "manipulations": []} for name in MANY]
    problems = infer_problems(parse_config(tomli_w.dumps(raw)), [], InferenceSettings(scenario="nope"), lambda _: [])
    return problems[0]


def _timeline_reports():
    from simkit.config.timeline import ObservedTimeline, TimelineConfig, timeline_problems
    reports = [f"{8 + i // 6:02d}:{i % 6 * 10:02d}" for i in range(1, len(MANY) + 1)]
    timeline = TimelineConfig(opening="08:00", closing="20:00", reports=reports)
    observed = ObservedTimeline(reports=["09:00"], turnout_percent={"a": [10.0, 50.0]})
    return timeline_problems(timeline, observed, {})[0]


def _poll_range():
    from simkit.config.polls import ExitPollConfig
    return _refusal(lambda: ExitPollConfig(name="p", stations=10, response_rate=[0.5] * len(MANY)))


def _scenario_of_a_result(chosen: str | None) -> str:
    import xarray as xr
    from simkit.cli.io import _scenario
    ds = xr.Dataset(coords={"scenario": MANY})
    return _refusal(lambda: _scenario(ds, chosen, "sim.zarr", False))


def _scenario_not_chosen():
    return _scenario_of_a_result(None)


def _scenario_unknown():
    return _scenario_of_a_result("nope")


def _evidence():
    from simkit.electorate.build import voterless_turnouts
    return _refusal(lambda: voterless_turnouts(None, None, MANY))


def _dims_of_select():
    import xarray as xr
    from simkit.forensics.core import election
    return _refusal(lambda: election(xr.Dataset(), select={name: 0 for name in MANY}))


def _test_ids():
    from simkit.forensics import check_tests
    return _refusal(lambda: check_tests(MANY))


def _station_statistic_ids():
    from simkit.forensics.station_statistics import compute
    return _refusal(lambda: compute(MANY, np.ones(1), np.ones(1), np.ones(1)))


def _observation_noise_names():
    from simkit.inference.statistics import Statistics, with_observation_noise
    statistics = Statistics(names=tuple(MANY), groups=("turnout",) * len(MANY), observed=np.zeros(len(MANY)),
                            observation_noise=np.zeros(len(MANY)), valid_options=(0,), invalid=None, regions=())
    return _refusal(lambda: with_observation_noise(statistics, {"nope": 0.1}))


def _decreasing_columns(tmp_path):
    from simkit.timeline.observed import from_stations
    columns = [f"c{i:02d}" for i in range(len(MANY))]
    reports = [f"{8 + i // 6:02d}:{i % 6 * 10:02d}" for i in range(1, len(MANY) + 1)]
    map_path, data = tmp_path / "map.toml", tmp_path / "stations.csv"
    map_path.write_text(tomli_w.dumps({"timeline": {"opening": "08:00", "closing": "20:00", "reports": reports},
                                       "columns": {"region": "region", "registered": "registered",
                                                   "reports": columns, "final": "final"}}))
    rows = [["a", 1000, *range(len(columns), 0, -1), 50], ["b", 1000, *range(1, len(columns) + 1), 50]]
    data.write_text("\n".join(",".join(map(str, row)) for row in [["region", "registered", *columns, "final"], *rows])
                    + "\n")
    return _refusal(lambda: from_stations(data, map_path))


@pytest.mark.parametrize("message", [
    _unknown_station_statistics, _observed_station_values_not_listed, _inference_scenario, _timeline_reports,
    _poll_range, _scenario_not_chosen, _scenario_unknown, _evidence,
    _dims_of_select, _test_ids, _station_statistic_ids, _observation_noise_names, _decreasing_columns])
def test_every_list_of_a_users_names_in_an_error_is_capped(message, tmp_path):
    """Lists of a user's names (statistics, scenarios, report times and columns, test ids, dims) were joined whole
    into error messages: each is listed by :func:`simkit.errors.listed`, its first names then how many more."""
    text = message(tmp_path) if message is _decreasing_columns else message()
    assert f", and {len(MANY) - MAX_LISTED} more" in text, text
    assert "n13" not in text and "c13" not in text and "0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5" \
        not in text, text


def test_repeated_names_are_listed_capped():
    """A scenario naming 300 manipulations twice repeated every name, unquoted, in one line of 3,500 characters."""
    from pydantic import ValidationError

    from simkit.config.manipulation import ScenarioConfig

    with pytest.raises(ValidationError) as caught:
        ScenarioConfig(name="s", manipulations=[f"m{i}" for i in range(300)] * 2)
    message = str(caught.value)
    assert "names must be distinct, repeated: 'm0', 'm1', 'm10', " in message and ", and 290 more" in message


def test_a_totals_row_in_an_electorate_csv_is_refused(tmp_path, capsys):
    """A spreadsheet's totals row (its register the sum of every other row's) would be drawn as one station holding
    half the electorate: it is refused with its row, not read as a station. Only at either end of the file and
    beside 3 rows with voters or more: a station in the middle, or beside two, may be their sum by chance."""
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,400\nb,y,500\nc,y,300\nTotal,Total,1200\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv", "electorate.registered_column", "row 5", "1,200", "sum of every other row")
    for text in ("id,region,registered\na,x,400\nb,y,1200\nc,y,300\nd,y,500\n",
                 "id,region,registered\na,x,400\nb,y,500\nc,y,900\n"):
        config = csv_electorate_config(tmp_path, text)
        assert main(["validate", str(config)]) == 0, capsys.readouterr().err


def test_a_totals_row_among_regional_subtotals_in_an_electorate_csv_is_refused(tmp_path, capsys):
    """Each region's stations headed by their subtotal row, the national total last: the total is a third of the
    register, not a half, so it was drawn as one station holding a third of the voters, each subtotal as another.
    Refused with its row and the subtotals' rows. A station a third of the register without subtotal rows around it
    is a station."""
    config = csv_electorate_config(tmp_path, "id,region,registered\nX,x,700\na,x,400\nb,x,300\nY,y,900\nc,y,500\n"
                                             "d,y,150\ne,y,250\nTotal,Total,1600\n")
    assert main(["validate", str(config)]) == 2
    one_line(capsys, "stations.csv: electorate.registered_column: row 9: registered 1,600: each the sum of the "
                     "subtotal rows 2, 5 (each the sum of the rows below it: a totals row among subtotals? remove "
                     "them)")
    config = csv_electorate_config(tmp_path, "id,region,registered\na,x,400\nb,x,300\nc,y,500\nd,y,150\n"
                                             "e,y,250\nf,y,800\n")
    assert main(["validate", str(config)]) == 0, capsys.readouterr().err
