"""Bad returns files, bad maps and bad forensics options: one exact line on stderr, exit code 2, nothing written;
dirty but usable files load with every problem reported."""
from __future__ import annotations

import gzip
import json
import unicodedata
import zipfile

import numpy as np
import pytest

from simkit.cli.main import main
from simkit.errors import MAX_LISTED, InputError
from simkit.electorate.mapping import leader_problem
from simkit.electorate.returns import anomaly_report, load_returns
from simkit.forensics import election

MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'
HEADER = "registered,ballots,a,b"


def _clean_rows(n: int, seed: int = 0) -> list[str]:
    """``n`` consistent rows (registered, ballots, a, b) with varied turnout and share."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        registered = int(rng.integers(400, 1500))
        ballots = int(rng.binomial(registered, rng.uniform(0.4, 0.8)))
        a = int(rng.binomial(ballots, rng.uniform(0.3, 0.7)))
        rows.append(f"{registered},{ballots},{a},{ballots - a}")
    return rows


def _write(tmp_path, rows: list[str], map_text: str = MAP, header: str = HEADER, name: str = "r.csv"):
    data = tmp_path / name
    data.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    (tmp_path / "m.toml").write_text(map_text, encoding="utf-8")
    return data, tmp_path / "m.toml"


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["forensics", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fails(capsys, expected: str, *args) -> None:
    code, out, err = _run(capsys, *args)
    assert (code, err) == (2, expected + "\n")
    assert out == ""


# --- no usable station ---------------------------------------------------------------------------------------

def test_header_only(tmp_path, capsys):
    data, mapping = _write(tmp_path, [])
    _fails(capsys, f"{data}: DATA: no data rows (header only)", data, "--map", mapping)


def test_blank_lines_above_the_header_are_skipped_as_blank_lines_below_it_are(tmp_path):
    """A blank first line was read as a header of no column: 'DATA: 12 rows have more than 0 fields'."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    plain = load_returns(data, map_path=mapping)
    data.write_text("\n\r\n" + data.read_text())
    spaced = load_returns(data, map_path=mapping)
    assert spaced["votes"].equals(plain["votes"]) and list(spaced["row"].values) == list(range(1, 13))


def test_empty_file(tmp_path, capsys):
    data, mapping = _write(tmp_path, [])
    data.write_text("")
    _fails(capsys, f"{data}: DATA: empty file", data, "--map", mapping)


def test_all_rows_flagged_stop_at_the_threshold_then_leave_no_usable_station(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["100,150,100,50", "100,120,60,60", "90,95,50,45"])
    _fails(capsys, f"{data}: columns.ballots: 3 of 3 rows (100%) are blank or inconsistent, above the 5% limit "
                   "(columns.ballots > columns.registered 3 (150 > 100, 120 > 100, 95 > 90); data rows 1, 2, 3); check "
                   "the mapping, or pass --allow-inconsistent to test the rest", data, "--map", mapping)
    _fails(capsys, f"{data}: DATA: no usable station in 3 rows (ballots_gt_registered 3)",
           data, "--map", mapping, "--allow-inconsistent")


def test_all_rows_blank(tmp_path, capsys):
    data, mapping = _write(tmp_path, [",,,", ",,,"])
    _fails(capsys, f"{data}: columns.registered, columns.ballots: 2 of 2 rows (100%) are blank or inconsistent, "
                   "above the 5% limit (columns.registered blank 2; columns.ballots blank 2; data rows 1, 2); check "
                   "the mapping, or pass --allow-inconsistent to test the rest", data, "--map", mapping)


def test_all_registers_zero(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["0,0,0,0", "0,0,0,0"])
    _fails(capsys, f"{data}: DATA: no usable station in 2 rows (zero_register 2)",
           data, "--map", mapping, "--allow-inconsistent")


def test_every_row_special(tmp_path, capsys):
    map_text = MAP.replace('ballots = "ballots"', 'ballots = "ballots"\nspecial = "s"')
    data, mapping = _write(tmp_path, ["0,50,20,30,1", "0,40,20,20,1"], map_text, HEADER + ",s")
    _fails(capsys, f"{data}: DATA: no usable station in 2 rows (special 2)", data, "--map", mapping)


def test_a_text_column_mapped_as_counts_stops_with_the_column_count_and_cells(tmp_path, capsys):
    """The limit's message named the field and the rows, not what the cells hold: it shows the column read and its
    first offending cells, the text a wrong column holds."""
    rows = [f"S{i}," + row for i, row in enumerate(_clean_rows(40))]
    map_text = MAP.replace('registered = "registered"', 'registered = "name"')
    data, mapping = _write(tmp_path, rows, map_text, "name," + HEADER)
    _fails(capsys, f"{data}: columns.registered: 40 of 40 rows (100%) are blank or inconsistent, above the 5% "
                   "limit (columns.registered not a number 40 (column 'name': 'S0', 'S1', 'S2', …); data rows 1, 2, "
                   "3, 4, 5, …); check the mapping, or pass --allow-inconsistent to test the rest",
           data, "--map", mapping)


def test_the_share_limit_shows_the_text_of_the_column_of_a_sum_or_of_an_option_at_fault(tmp_path, capsys):
    """A field summing two columns names the one holding text; an option's missing cells are shown as a column's
    are, its blank ones left to the word. Only the largest count shows cells: the line stays short."""
    rows = [row + ",1" for row in _clean_rows(20)]
    for i in range(4):
        rows[i] = rows[i].rsplit(",", 1)[0] + ",x"
    map_text = MAP.replace('ballots = "ballots"', 'ballots = {sum = ["ballots", "extra"]}')
    data, mapping = _write(tmp_path, rows, map_text, HEADER + ",extra")
    _fails(capsys, f"{data}: columns.ballots: 4 of 20 rows (20%) are blank or inconsistent, above the 5% limit "
                   "(columns.ballots not a number 4 (column 'extra': 'x'); data rows 1, 2, 3, 4); check the mapping, "
                   "or pass --allow-inconsistent to test the rest", data, "--map", mapping)
    rows = _clean_rows(20)
    for i, cell in enumerate(["n/a?", "NA", "n/a?", "?", "x"]):
        registered, ballots, _, b = rows[i].split(",")
        rows[i] = f"{registered},{ballots},{cell},{b}"
    rows[9] = "," + rows[9].split(",", 1)[1]
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: options.a, columns.registered: 6 of 20 rows (30%) are blank or inconsistent, above the "
                   "5% limit (options.a missing 5 (column 'a': 'n/a?', '?', 'x'); columns.registered blank 1; data "
                   "rows 1, 2, 3, 4, 5, …); check the mapping, or pass --allow-inconsistent to test the rest",
           data, "--map", mapping)


def test_register_mapped_one_column_off_stops(tmp_path, capsys):
    rows = [f"{i + 1}," + row for i, row in enumerate(_clean_rows(40))]
    map_text = MAP.replace('registered = "registered"', 'registered = "number"')
    data, mapping = _write(tmp_path, rows, map_text, "number," + HEADER)
    code, _, err = _run(capsys, data, "--map", mapping, "--tests", "last_digit")
    assert code == 2 and err.startswith(f"{data}: columns.ballots: 40 of 40 rows (100%) are blank or inconsistent")
    assert "(columns.ballots > columns.registered 40" in err and err.count("\n") == 1


# --- cells ---------------------------------------------------------------------------------------------------

def test_integral_floats_are_counts_and_non_integral_ones_name_their_row(tmp_path, capsys):
    rows = [row.replace(",", ".0,") + ".0" for row in _clean_rows(20)]
    data, mapping = _write(tmp_path, rows)
    ds = load_returns(data, map_path=mapping)
    assert ds.sizes["station"] == 20 and not ds["flags"].any()
    rows[6] = "1000,600.5,300,300"
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: columns.ballots: data row 7 (line 8), column 'ballots': '600.5' is not a whole number "
                   "(counts are integers; 1208.0 is read as 1208)", data, "--map", mapping)


@pytest.mark.parametrize("cell", ["1.000", "1.359", "12.000.000"])
def test_a_count_grouped_with_dots_stops_the_load_not_read_as_a_decimal(tmp_path, capsys, cell):
    """``1.000`` in a file that groups thousands with '.' is 1000: read as the decimal 1.000 it became a register of 1;
    a cell that reads both ways stops the load."""
    rows = _clean_rows(20)
    rows[6] = f"{cell},600,300,300"
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: columns.registered: data row 7 (line 8), column 'registered': '{cell}' reads as a count "
                   "with '.' grouping its thousands, or as a decimal (write counts without separators)",
           data, "--map", mapping)


@pytest.mark.parametrize("cell, separator", [("1,208", ","), ("12,000,000", ","), ("1 208", " "),
                                             ("1\u00a0208", "\u00a0"), ("1'208", "'")])
def test_a_count_grouped_with_commas_or_spaces_stops_the_load_not_read_as_a_missing_cell(tmp_path, capsys, cell,
                                                                                          separator):
    """``"1,208"`` (quoted in a comma-delimited file) was read as text, a missing cell: its row excluded, while
    ``1.000`` stopped the load. Any thousands separator stops it, naming the row, line, column and cell; ',' may as
    well be a decimal comma."""
    rows = _clean_rows(30)
    rows[6] = f'1500,"{cell}",600,608'
    data, mapping = _write(tmp_path, rows)
    decimal = ", or as a decimal" if separator == "," else ""
    _fails(capsys, f"{data}: columns.ballots: data row 7 (line 8), column 'ballots': {cell!r} reads as a count with "
                   f"{separator!r} grouping its thousands{decimal} (write counts without separators)",
           data, "--map", mapping)


def test_unicode_digit_cell_is_not_a_number(tmp_path, capsys):
    rows = _clean_rows(25)
    rows[3] = "1²,50,25,25"
    data, mapping = _write(tmp_path, rows)
    report = anomaly_report(load_returns(data, map_path=mapping))
    assert report["not_a_number"] == {"count": 1, "rows": [4], "rule": "excluded",
                                      "fields": {"columns.registered": 1}}
    data, mapping = _write(tmp_path, ["²,50,25,25"])
    _fails(capsys, f"{data}: columns.registered: 1 of 1 rows (100%) are blank or inconsistent, above the 5% limit "
                   "(columns.registered not a number 1 (column 'registered': '²'); data row 1); check the mapping, or "
                   "pass --allow-inconsistent to test the rest", data, "--map", mapping)


def test_count_above_two_to_the_63(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["9223372036854775808,50,25,25"])
    _fails(capsys, f"{data}: columns.registered: data row 1 (line 2), column 'registered': '9223372036854775808' is "
                   "above 10^10, more than any station's count", data, "--map", mapping)


def test_an_error_echoes_no_more_than_the_offending_value(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["100,50." + "5" * 5000 + ",25,25"])
    code, _, err = _run(capsys, data, "--map", mapping)
    assert code == 2 and err == (f"{data}: columns.ballots: data row 1 (line 2), column 'ballots': '50.{'5' * 35}… is "
                                 "not a whole number (counts are integers; 1208.0 is read as 1208)\n")


def test_field_over_the_csv_limit(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["100,50,25,25", "100,50," + "7" * 131_073 + ",25"])
    _fails(capsys, f"{data}: DATA: line 3: not readable as CSV (field larger than field limit (131072))",
           data, "--map", mapping)


def test_negative_counts_are_labelled_negative_not_blank(tmp_path):
    rows = _clean_rows(30)
    rows[4] = "800,400,-5,405"
    data, mapping = _write(tmp_path, rows)
    report = anomaly_report(load_returns(data, map_path=mapping))
    assert report["negative"] == {"count": 1, "rows": [5], "rule": "kept, flagged"}
    assert report["blank"]["count"] == 0 and report["not_a_number"]["count"] == 0


def test_a_repeated_header_stops_the_load_with_its_line(tmp_path, capsys):
    """Two rounds' files joined, the second's header left in: the header row was excluded as one row of text
    (``not_a_number``) and both rounds' stations were tested as one election's. A header repeated mid-file, cells
    spaced or not, a delimiter ending it or not, is refused with its line."""
    data, mapping = _write(tmp_path, _clean_rows(30) + [" registered , ballots,a,b,"] + _clean_rows(30, seed=1))
    _fails(capsys, f"{data}: DATA: line 32 repeats the header (files joined, such as two elections' or rounds' "
                   "rows? keep one election's rows)", data, "--map", mapping)


def test_a_totals_row_is_flagged_not_tested_as_a_station(tmp_path):
    """A spreadsheet's totals row (the sum of every other row) was read as one more station, 30 times the
    others' size, without a word. It is flagged ``totals_row`` and left out of the tests like any flagged row."""
    rows = _clean_rows(30)
    sums = np.array([[int(x) for x in row.split(",")] for row in rows]).sum(axis=0)
    data, mapping = _write(tmp_path, rows + [",".join(str(x) for x in sums)])
    ds = load_returns(data, map_path=mapping)
    assert anomaly_report(ds)["totals_row"] == {"count": 1, "rows": [31], "rule": "kept, flagged"}
    assert election(ds).n == 30


def test_a_station_whose_register_and_ballots_match_the_others_but_not_its_votes_is_no_totals_row(tmp_path):
    """In a small file a station (1000 registered, 600 ballots) beside two of (500, 300) was taken for a totals
    row, flagged, and the load stopped (1 of 3 rows flagged). A totals row sums every count column, options
    included: this station's votes do not, so it is an ordinary station."""
    data, mapping = _write(tmp_path, ["1000,600,500,100", "500,300,200,100", "500,300,250,50"])
    ds = load_returns(data, map_path=mapping)
    assert anomaly_report(ds)["totals_row"]["count"] == 0 and int(ds["flags"].sum()) == 0


def test_a_totals_row_is_flagged_beside_a_station_with_a_blank_cell(tmp_path):
    """A station with a blank register is excluded at load; the totals row still holds its register, so sums
    over the kept rows missed it. The sums run over every parsed row, and a column with a missing cell (its sum
    unknown) is left out of the comparison."""
    rows = _clean_rows(30)
    sums = np.array([[int(x) for x in row.split(",")] for row in rows]).sum(axis=0)
    rows[4] = "," + rows[4].split(",", 1)[1]
    rows[7] = rows[7].rsplit(",", 1)[0] + ","
    data, mapping = _write(tmp_path, rows + [",".join(str(x) for x in sums)])
    report = anomaly_report(load_returns(data, map_path=mapping, allow_inconsistent=True))
    assert report["blank"]["rows"] == [5] and report["missing_option"]["rows"] == [8]
    assert report["totals_row"] == {"count": 1, "rows": [31], "rule": "kept, flagged"}


def test_a_totals_row_is_flagged_beside_a_row_with_no_count_at_all(tmp_path):
    """A section's label row (no count in any column) has nothing to sum: it left every column 'incomplete', so the
    detection was off and the totals row was tested as a station."""
    rows = _clean_rows(30)
    sums = np.array([[int(x) for x in row.split(",")] for row in rows]).sum(axis=0)
    data, mapping = _write(tmp_path, rows[:10] + [",,,"] + rows[10:] + [",".join(str(x) for x in sums)])
    report = anomaly_report(load_returns(data, map_path=mapping, allow_inconsistent=True))
    assert report["totals_row"] == {"count": 1, "rows": [32], "rule": "kept, flagged"}


def _summed(rows: list[str]) -> str:
    """The row summing ``rows`` (registered, ballots, a, b) column by column."""
    return ",".join(str(x) for x in np.array([[int(x) for x in row.split(",")] for row in rows]).sum(axis=0))


def test_a_totals_row_among_regional_subtotals_stops_the_load(tmp_path, capsys):
    """Three regions' stations each followed by their subtotal row, and the national total: the total is a third of
    every column's sum, not a half, so it was tested as a station with the subtotals, three more. The load stops
    naming it and the subtotal rows; so it does with the subtotals above their stations and the total among them."""
    regions = [_clean_rows(10, seed) for seed in range(3)]
    total = _summed([row for rows in regions for row in rows])
    data, mapping = _write(tmp_path, [row for rows in regions for row in rows + [_summed(rows)]] + [total])
    _fails(capsys, f"{data}: DATA: data row 34 (line 35): registered {int(total.split(',')[0]):,}, ballots "
                   f"{int(total.split(',')[1]):,}, a {int(total.split(',')[2]):,}, b {int(total.split(',')[3]):,}: "
                   "each the sum of the subtotal data rows 11, 22, 33 (each the sum of the rows above it: a totals "
                   "row among subtotals? remove them)", data, "--map", mapping)
    data, mapping = _write(tmp_path, [_summed(regions[0])] + regions[0] + [total, _summed(regions[1])] + regions[1]
                           + [_summed(regions[2])] + regions[2])
    code, _, err = _run(capsys, data, "--map", mapping)
    assert code == 2 and err.startswith(f"{data}: DATA: data row 12 (line 13): registered ")
    assert "the subtotal data rows 1, 13, 24 (each the sum of the rows below it" in err


def test_a_station_a_third_of_the_file_without_subtotals_is_a_station(tmp_path):
    """A row a third of every column's sum is no totals row unless the other rows split into runs each closed by
    its subtotal: here it is half the sum of 30 stations, and is read as a station."""
    rows = [",".join(str(2 * int(x)) for x in row.split(",")) for row in _clean_rows(30)]
    half = ",".join(str(int(x) // 2) for x in _summed(rows).split(","))
    data, mapping = _write(tmp_path, rows[:15] + [half] + rows[15:])
    ds = load_returns(data, map_path=mapping)
    assert ds.sizes["station"] == 31 and anomaly_report(ds)["totals_row"]["count"] == 0


def test_the_share_limit_names_the_rows(tmp_path, capsys):
    """The too-many-inconsistent-rows error said how many rows, not which: it names the first ones."""
    rows = _clean_rows(12)
    rows[3] = "," + rows[3].split(",", 1)[1]
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: columns.registered: 1 of 12 rows (8%) are blank or inconsistent, above the 5% limit "
           "(columns.registered blank 1; data row 4); check the mapping, or pass --allow-inconsistent to "
           "test the rest", data, "--map", mapping)


def test_blank_minor_party_cell_is_missing_for_that_party_only(tmp_path, capsys):
    rows = _clean_rows(30)
    rows[2] = rows[2].rsplit(",", 1)[0] + ","
    data, mapping = _write(tmp_path, rows)
    ds = load_returns(data, map_path=mapping)
    assert ds.sizes["station"] == 30 and ds.attrs["leader"] in ("a", "b")
    report = anomaly_report(ds)
    assert report["missing_option"]["rows"] == [3] and report["missing_option"]["fields"] == {"options.b": 1}
    assert ds["missing"].sel(option="b").values.tolist() == [0, 0, 1] + [0] * 27
    assert election(ds, leader="a").n == 30
    assert election(ds, leader="b").excluded == {"leader count missing": 1}


def test_duplicate_station_ids_are_reported(tmp_path):
    rows = [f"{i % 9}," + row for i, row in enumerate(_clean_rows(10))]
    data, mapping = _write(tmp_path, rows, MAP.replace("[options]", 'id = "id"\n[options]'), "id," + HEADER)
    report = anomaly_report(load_returns(data, map_path=mapping))
    assert report["duplicate_id"] == {"count": 2, "rows": [1, 10], "rule": "kept, reported (ids not unique)"}


def test_region_names_spelt_two_ways_are_reported_not_merged(tmp_path):
    """'Sofia' and 'sofia ' read as two regions, silently (the null's regional centres split one region in two);
    they are kept as written (no guess at which is right) and reported with their rows."""
    regions = ["Sofia", "sofia ", "Varna", "Sofia", "Burgas", "burgas", "Varna", "Ruse", "Ruse", "Varna"]
    rows = [f"{region}," + row for region, row in zip(regions, _clean_rows(10))]
    data, mapping = _write(tmp_path, rows, MAP.replace("[options]", 'region = "region"\n[options]'),
                           "region," + HEADER)
    ds = load_returns(data, map_path=mapping)
    assert sorted(set(ds["region"].values)) == ["Burgas", "Ruse", "Sofia", "Varna", "burgas", "sofia"]
    assert anomaly_report(ds)["region_spelling"] == {
        "count": 5, "rows": [1, 2, 4, 5, 6],
        "rule": "kept, reported (region names the same but for case, spaces or Unicode form, read as separate regions: "
                "'Burgas' / 'burgas', 'Sofia' / 'sofia')"}


def test_utf8_byte_order_mark_is_dropped_or_explained(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    data.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    mapping.write_bytes(b"\xef\xbb\xbf" + mapping.read_bytes())
    assert load_returns(data, map_path=mapping).sizes["station"] == 12
    mapping.write_text(MAP.replace("[columns]", '[format]\nencoding = "latin-1"\n[columns]'))
    _fails(capsys, f"{mapping}: columns.registered: no column named 'registered' in r.csv (the file starts with a "
                   "UTF-8 byte-order mark: set format.encoding = \"utf-8\")", data, "--map", mapping)


@pytest.mark.parametrize("header", [" registered ", "Registered", unicodedata.normalize("NFD", "régistered")])
def test_a_column_name_off_by_case_spaces_or_unicode_form_is_named(tmp_path, capsys, header):
    """A header differing from the mapping only in case, surrounding spaces or Unicode normalisation (NFD from
    some spreadsheets) looks the same in the error; the error names the file's column, and nothing is matched
    loosely behind the user's back."""
    expected = unicodedata.normalize("NFC", header.strip()).lower()
    text = MAP.replace('registered = "registered"', f'registered = "{expected}"')
    data, mapping = _write(tmp_path, _clean_rows(12), text, header=HEADER.replace("registered", header, 1))
    _fails(capsys, f"{mapping}: columns.registered: no column named '{expected}' in r.csv (the file has "
                   f"{header!r}: the names differ in case, spaces around them or Unicode form)", data, "--map", mapping)


@pytest.mark.parametrize("delimiter, shown", [(";", "';'"), ("\t", "'\\t'")])
def test_a_file_read_at_the_wrong_delimiter_says_which_one_splits_its_header(tmp_path, capsys, delimiter, shown):
    """A ';' or tab export read at ',' has a header of one field: 'no column named registered' alone sent the user
    looking for a column the file has."""
    data, mapping = _write(tmp_path, [row.replace(",", delimiter) for row in _clean_rows(12)],
                           header=HEADER.replace(",", delimiter))
    hint = f"(the header is one field that {shown} splits into 4 names: set format.delimiter)"
    _fails(capsys, f"{mapping}: columns.registered: no column named 'registered' in r.csv {hint}", data, "--map",
           mapping)
    mapping.write_text(MAP.replace('"registered"', "0").replace('"ballots"', "1"))
    _fails(capsys, f"{mapping}: columns.ballots: position 1 outside 0..0 (r.csv has 1 column) {hint}", data,
           "--map", mapping)


def test_a_file_without_the_mapped_columns_is_refused_before_its_rows_are_read(tmp_path, monkeypatch):
    """The rows were read before the mapping's columns were looked for: a large text file of something else (a log,
    110 MB) took 8 s and 700 MB to be told 'no column named registered'; up to the 1 GB cap, ten times that."""
    from simkit.electorate import returns as returns_module

    def no_rows(path, mapping):
        raise AssertionError("the rows were read")

    data, mapping = _write(tmp_path, _clean_rows(12), header="registered,ballots,a,c")
    monkeypatch.setattr(returns_module, "read_rows", no_rows)
    with pytest.raises(InputError, match=f"^{mapping}: options.b: no column named 'b' in r.csv$"):
        load_returns(data, map_path=mapping)


def test_duplicate_column_names(tmp_path, capsys):
    data, mapping = _write(tmp_path, ["100,50,25,25,1"], header=HEADER + ",a")
    _fails(capsys, f"{mapping}: options.a: the header of r.csv has 2 columns named 'a' (which one is meant? map it "
                   "by position)",
           data, "--map", mapping)


# --- archives ------------------------------------------------------------------------------------------------

def test_zip_without_the_member(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    archive = tmp_path / "r.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(data, "other.csv")
    mapping.write_text(MAP.replace("[columns]", '[format]\nmember = "r.csv"\n[columns]'))
    _fails(capsys, f"{archive}: format.member: no file 'r.csv' in the archive (1 files)", archive, "--map", mapping)


def test_archive_members_are_size_checked_and_streams_capped(tmp_path, capsys, monkeypatch):
    from simkit.electorate import read as returns_read

    data, mapping = _write(tmp_path, _clean_rows(50))
    size = data.stat().st_size
    archive, packed = tmp_path / "r.zip", tmp_path / "r.csv.gz"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(data, "r.csv")
    packed.write_bytes(gzip.compress(data.read_bytes()))
    monkeypatch.setattr(returns_read, "MAX_TEXT_BYTES", 100)
    _fails(capsys, f"{archive}: format.member: 'r.csv' decompresses to {size:,} bytes, above the limit of 100 bytes",
           archive, "--map", mapping)
    _fails(capsys, f"{packed}: DATA: more than 100 bytes of text once decompressed (not a station-level returns "
                   "file?)", packed, "--map", mapping)


def test_damaged_gzip(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    packed = tmp_path / "r.csv.gz"
    packed.write_bytes(gzip.compress(data.read_bytes())[:40])
    _fails(capsys, f"{packed}: DATA: damaged or not a gz archive", packed, "--map", mapping)


@pytest.mark.parametrize("pack", [None, "gzip"])
def test_a_byte_the_encoding_cannot_read_is_told_with_its_own_line(tmp_path, capsys, pack):
    """The text is decoded in blocks of many lines: the line the CSV reader had reached when a block failed (line
    1,497 here, line 1 when gzipped) is not the line holding the byte."""
    rows = _clean_rows(2000)
    data, mapping = _write(tmp_path, rows)
    text = data.read_bytes().replace(f"\n{rows[1500]}\n".encode(), f"\n{rows[1500]}\xe9\n".encode("latin-1"))
    data.write_bytes(gzip.compress(text) if pack else text)
    _fails(capsys, f"{data}: format.encoding: not utf-8 text (line 1,502, byte 0xe9); set format.encoding", data,
           "--map", mapping)


def test_binary_data_and_utf16_text_are_named_as_such(tmp_path, capsys):
    """Binary data was told 'not utf-8 text; set format.encoding' (or, all NULs, 'field larger than field limit';
    read as latin-1, rows of the wrong width), UTF-16 text 'not utf-8 text': neither says what the file is."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    text = data.read_text()
    noise = tmp_path / "noise.csv"
    noise.write_bytes(bytes(range(256)) * 64)
    message = (f"{noise}: DATA: binary data, not CSV text (a NUL byte at byte 0; UTF-16 text without a byte-order "
               "mark? set format.encoding)")
    _fails(capsys, message, noise, "--map", mapping)
    noise.write_bytes(bytes(300_000))
    _fails(capsys, message, noise, "--map", mapping)
    mapping.write_text(MAP.replace("[columns]", '[format]\nencoding = "latin-1"\n[columns]'))
    _fails(capsys, message, noise, "--map", mapping)
    data.write_bytes(text.encode("utf-16"))
    _fails(capsys, f'{data}: format.encoding: UTF-16 text (it starts with a UTF-16 byte-order mark), not latin-1: '
                   'set format.encoding = "utf-16"', data, "--map", mapping)
    mapping.write_text(MAP.replace("[columns]", '[format]\nencoding = "utf-16"\n[columns]'))
    assert load_returns(data, map_path=mapping).sizes["station"] == 12


@pytest.mark.parametrize("pack", ["gzip", "zip"])
def test_a_compressed_file_is_read_by_its_bytes_whatever_its_name(tmp_path, pack):
    """A gzipped or zipped export saved as ``.csv`` was decoded as text: 'not utf-8 text; set format.encoding'."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    packed = tmp_path / "packed.csv"
    if pack == "gzip":
        packed.write_bytes(gzip.compress(data.read_bytes()))
    else:
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(data, "r.csv")
    plain, read = load_returns(data, map_path=mapping), load_returns(packed, map_path=mapping)
    assert read["votes"].equals(plain["votes"]) and read["registered"].equals(plain["registered"])


@pytest.mark.parametrize("name", ["r.xlsx", "r.csv", "r.ods"])
def test_a_spreadsheet_workbook_is_named_as_one(tmp_path, capsys, name):
    """An Excel or OpenDocument workbook given for the CSV export: named as such, not as a text encoding or an
    archive of many files."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    book = tmp_path / name
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("mimetype" if name.endswith(".ods") else "[Content_Types].xml", "<Types/>")
        z.writestr("content.xml" if name.endswith(".ods") else "xl/workbook.xml", "<workbook/>")
    _fails(capsys, f"{book}: DATA: a spreadsheet workbook, not CSV text (save the sheet as CSV)", book, "--map",
           mapping)
    book.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))  # Excel 97-2003
    _fails(capsys, f"{book}: DATA: a spreadsheet workbook, not CSV text (save the sheet as CSV)", book, "--map",
           mapping)


# --- maps ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('[format]\ndelimiter = ";;"\n' + MAP, "format.delimiter: ';;': must be one character (not a quote or a line "
                                           "break)"),
    ('[format]\ndelimiter = ""\n' + MAP, "format.delimiter: '': must be one character (not a quote or a line "
                                         "break)"),
    ("format = 5\n" + MAP, "format: must be a table ([format] with one name = value per line), got 5"),
    ('columns = [1, 2]\n[options]\na = "a"\n', "columns: must be a table ([columns] with one name = value per "
                                               "line), got [1, 2]"),
    ('options = "a"\n' + MAP.split("[options]")[0], "options: must be a table ([options] with one name = value "
                                                    "per line), got 'a'"),
    ('[format]\nencoding = "klingon"\n' + MAP, "format.encoding: 'klingon': unknown encoding"),
    (MAP + 'c = {sum = "a"}\n', "options.c.sum: needs a list of columns, got 'a'"),
    (MAP + "c = -1\n", "options.c: a column is a name or a 0-based position, got -1"),
    (MAP + "c = true\n", "options.c: a column is a name or a 0-based position, got True"),
    ('leader = 3\n' + MAP, "leader: must be a string, got 3"),
    ("[columns\n", "map: not valid TOML (Expected ']' at the end of a table declaration (at line 1, column 9))"),
])
def test_map_typos(tmp_path, capsys, text, message):
    data, mapping = _write(tmp_path, _clean_rows(12), text)
    _fails(capsys, f"{mapping}: {message}", data, "--map", mapping)


def test_map_not_utf8_and_map_a_folder(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    mapping.write_bytes(MAP.replace('a = "a"', 'a = "\xe9"').encode("latin-1"))
    _fails(capsys, f"{mapping}: map: not UTF-8 text (byte 71); save the mapping as UTF-8", data, "--map", mapping)
    _fails(capsys, f"{tmp_path}: map: is a folder, not a mapping file", data, "--map", tmp_path)
    mapping.write_text(MAP)
    _fails(capsys, f"{tmp_path}: DATA: is a folder, not a returns file", tmp_path, "--map", mapping)


def test_the_reproducer_of_issue_20(tmp_path, capsys):
    (tmp_path / "1.csv").write_text("registered,ballots,a\n100,50,50\n")
    (tmp_path / "m.toml").write_text('[columns]\nregistered="registered"\nballots="ballots"\n[options]\na="a"\n')
    code, out, err = _run(capsys, tmp_path / "1.csv", "--map", tmp_path / "m.toml", "--json")
    assert (code, err) == (0, "")
    results = json.loads(out)["tests"]
    assert {r["verdict"] for r in results} == {"n/a: needs at least 10 usable stations, the data have 1",
                                               "n/a: needs at least 10 candidate counts of 10 or more, the data have 1",
                                               "n/a: needs at least 10 candidate counts of 100 or more, the data have 0"}
    assert all(r["p_value"] is None for r in results)


# --- small and degenerate data: tests that cannot run say why ------------------------------------------------

@pytest.mark.parametrize("rows, reason", [
    (_clean_rows(3), "needs at least 10 usable stations, the data have 3"),
    (["1000,600,300,300"] * 30, "needs turnout to take at least 10 distinct values, the data have 1"),
])
def test_tiny_or_identical_data_give_not_applicable_with_a_reason(tmp_path, capsys, rows, reason):
    data, mapping = _write(tmp_path, rows)
    code, out, err = _run(capsys, data, "--map", mapping, "--json", "--tests",
                          "correlation,sobyanin,log_vote_rate,klimek_ml,last_digit", "--draws", "20")
    assert (code, err) == (0, "")
    verdicts = {r["test"]: r["verdict"] for r in json.loads(out)["tests"]}
    assert verdicts["correlation"] == verdicts["sobyanin"] == verdicts["klimek_ml"] == f"n/a: {reason}"
    assert verdicts["last_digit"].startswith("n/a") == (len(rows) < 10)  # digits of identical rows can be tested


def _not_applicable_verdict(capsys, data, mapping, test: str) -> str:
    """``test``'s verdict alone on ``data`` (no power study), asserting that it ran cleanly without a p-value."""
    code, out, err = _run(capsys, data, "--map", mapping, "--json", "--tests", test, "--power", "0")
    assert (code, err) == (0, "")
    result, = json.loads(out)["tests"]
    assert result["p_value"] is None
    return result["verdict"]


@pytest.mark.parametrize("rows", [
    [f"{r},{r},{a},{r - a}" for r, _, a, _ in (map(int, row.split(",")) for row in _clean_rows(30))],  # 100% turnout
    [f"{r},{b},{b},0" for r, b, _, _ in (map(int, row.split(",")) for row in _clean_rows(30))],  # leader takes all
])
def test_integer_percent_without_stations_it_can_read_is_not_applicable(tmp_path, capsys, rows):
    """The integer test reads stations of turnout and leader share at most 99% (Kobak et al.): with none it has
    nothing to count and says so, instead of a p-value from an empty null (which read 0, an alarm)."""
    data, mapping = _write(tmp_path, rows)
    assert _not_applicable_verdict(capsys, data, mapping, "integer_percent") == (
        "n/a: needs at least 10 stations of 100 voters or more with turnout and leader share at most 99%, the data "
        "have 0")


def test_shpilkin_without_other_votes_at_the_clean_turnout_is_not_applicable(tmp_path, capsys):
    """Shpilkin's honest ratio is the leader's votes per vote for the others at the clean turnout: when the others
    have none there (the leader takes every vote), it is undefined, not an excess of every vote above the peak."""
    rows = [f"{r},{b},{b},0" for r, b, _, _ in (map(int, row.split(",")) for row in _clean_rows(30))]
    data, mapping = _write(tmp_path, rows)
    assert _not_applicable_verdict(capsys, data, mapping, "shpilkin") == (
        "n/a: needs votes for other options at or below the clean turnout, the data have none")


def test_spikes_without_stations_of_100_ballots_is_not_applicable(tmp_path, capsys):
    """The spikes statistic reads stations of 100 ballots or more (Rozenas): with too few it says so, instead of a
    mean over no station (a NaN and a "failed on these data")."""
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(30):
        registered = int(rng.integers(40, 95))
        ballots = int(rng.binomial(registered, 0.6))
        a = int(rng.binomial(ballots, 0.5))
        rows.append(f"{registered},{ballots},{a},{ballots - a}")
    data, mapping = _write(tmp_path, rows)
    assert _not_applicable_verdict(capsys, data, mapping, "spikes") == (
        "n/a: needs at least 10 stations of 100 ballots or more, the data have 0")


def test_spikes_where_the_leader_takes_every_ballot_is_not_applicable(tmp_path, capsys):
    """A leader with every ballot at every station: each redraw of the spikes null is the data itself, so the test
    said 'p = 1, no anomaly detected' from a null of no spread."""
    rows = [f"{r},{b},{b},0" for r, b, _, _ in (map(int, row.split(",")) for row in _clean_rows(30))]
    data, mapping = _write(tmp_path, rows)
    assert _not_applicable_verdict(capsys, data, mapping, "spikes") == (
        "n/a: needs at least 10 stations of 100 ballots or more where the leader has some but not all of the "
        "ballots (the others redraw to themselves), the data have 0")


# --- options -------------------------------------------------------------------------------------------------

def test_replicate_out_of_range(tmp_path, capsys):
    from forensics_helpers import honest_dataset

    path = tmp_path / "sim.nc"
    honest_dataset(60, seed=3).expand_dims(replicate=2).to_netcdf(path)
    _fails(capsys, f"--replicate: 99: outside 0..1 ({path} holds 2 replicates)", path, "--replicate", "99",
           "--tests", "last_digit")
    data, mapping = _write(tmp_path, _clean_rows(12))
    _fails(capsys, f"--replicate: 3: {data} has no replicates (real returns)", data, "--map", mapping,
           "--replicate", "3")


def test_plot_pointing_at_a_file_writes_nothing(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    existing = tmp_path / "photo.png"
    existing.write_text("x")
    output = tmp_path / "out.nc"
    _fails(capsys, f"--plot: {existing}: exists and is not a folder (give a folder for the figures)",
           data, "--map", mapping, "--plot", existing, "-o", output)
    assert existing.read_text() == "x" and not output.exists()


def test_unknown_leader_echoes_only_the_value(tmp_path, capsys):
    data, mapping = _write(tmp_path, _clean_rows(12))
    _fails(capsys, "--leader: 'z': not one of the candidates ('a', 'b')", data, "--map", mapping, "--leader", "z")


def test_only_the_parameter_becomes_the_flag_not_a_candidate_or_the_value_named_leader(tmp_path, capsys):
    """The command line rewrote every ``leader`` of the message: "'--leader x': not one of the candidates
    (--leader, b)"."""
    data, mapping = _write(tmp_path, _clean_rows(12), MAP.replace('a = "a"', 'leader = "a"'))
    _fails(capsys, "--leader: 'leader x': not one of the candidates ('leader', 'b')", data, "--map", mapping,
           "--leader", "leader x")


@pytest.mark.parametrize("blank", ["", " "])
def test_a_blank_leader_is_refused_not_read_as_the_default(tmp_path, capsys, blank):
    """``--leader ''`` fell back to the leader from the data (``leader or attrs``), testing a leader not asked."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    _fails(capsys, f"--leader: {blank!r}: a blank name, not a candidate ('a', 'b')", data, "--map", mapping,
           "--leader", blank)


def test_the_candidates_an_unknown_leader_lists_are_escaped_and_capped():
    """The list of candidates was every option's str(): a name with a line break broke the one-line message, and
    a ballot of hundreds of candidates was repeated whole."""
    options = [f"c{i}" for i in range(MAX_LISTED + 2)] + ["two\nlines"]
    problem = leader_problem("z", options)
    assert problem == (f"'z': not one of the candidates ({', '.join(repr(o) for o in options[:MAX_LISTED])}, "
                       f"and 3 more)")
    assert leader_problem("z", ["two\nlines"]) == "'z': not one of the candidates ('two\\nlines')"


#: a mapping with the invalid ballots' column: ``invalid`` is then an option of the returns, not a candidate
INVALID_MAP = MAP.replace("[options]", 'invalid = {diff = ["ballots", "a", "b"]}\n[options]')
#: why the invalid ballots cannot be the leader, after each entry's own ``leader:``
NOT_A_LEADER = "leader: 'invalid': the name of the invalid ballots, not a candidate ('a', 'b')"


def test_the_invalid_ballots_cannot_be_the_leader(tmp_path, capsys):
    """``invalid`` is an option of returns with an invalid count, but not a candidate: the leader the tests read
    is one (--leader refuses it, instead of testing the invalid ballots' share as a leader's)."""
    data, mapping = _write(tmp_path, _clean_rows(12), INVALID_MAP)
    _fails(capsys, f"--{NOT_A_LEADER}", data, "--map", mapping, "--leader", "invalid")


def test_the_name_of_the_invalid_ballots_is_refused_without_their_column(tmp_path, capsys):
    """Returns without an invalid count have no invalid ballots: the refusal said ``'invalid': the invalid ballots``
    of a column they do not have; the name is what is reserved."""
    data, mapping = _write(tmp_path, _clean_rows(12))
    _fails(capsys, f"--{NOT_A_LEADER}", data, "--map", mapping, "--leader", "invalid")


def test_the_library_refuses_the_invalid_ballots_as_leader(tmp_path):
    """``election(ds, leader="invalid")`` is refused as ``--leader invalid`` is (it once tested the invalid
    ballots' share as a leader's), the error naming the parameter."""
    data, mapping = _write(tmp_path, _clean_rows(12), INVALID_MAP)
    ds = load_returns(data, map_path=mapping)
    with pytest.raises(InputError) as error:
        election(ds, leader="invalid")
    assert (str(error.value), error.value.parameters) == (NOT_A_LEADER, ("leader",))
    assert election(ds, leader="b").options[election(ds, leader="b").leader] == "b"


def test_a_mapping_refuses_the_invalid_ballots_as_leader_in_the_same_words(tmp_path, capsys):
    """A mapping's ``leader = "invalid"`` (the report's only way to name a leader) is refused with the reason
    ``--leader`` gives, not as an unknown option."""
    data, mapping = _write(tmp_path, _clean_rows(12), 'leader = "invalid"\n' + INVALID_MAP)
    assert main(["report", "--returns", str(data), "--map", str(mapping), "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == f"{mapping}: {NOT_A_LEADER}\n"
    assert not (tmp_path / "r.html").exists()


def test_allow_inconsistent_runs_on_the_rest(tmp_path, capsys):
    rows = _clean_rows(30)
    rows[:3] = ["100,150,100,50"] * 3
    data, mapping = _write(tmp_path, rows)
    code, _, err = _run(capsys, data, "--map", mapping, "--tests", "last_digit")
    assert code == 2 and "3 of 30 rows (10%)" in err
    code, out, err = _run(capsys, data, "--map", mapping, "--tests", "last_digit", "--json",
                          "--allow-inconsistent", "--power", "0")
    assert (code, err) == (0, "")
    assert json.loads(out)["data"]["stations_used"] == 27


def test_loader_errors_are_input_errors_in_process(tmp_path):
    data, mapping = _write(tmp_path, [])
    with pytest.raises(InputError, match="no data rows"):
        load_returns(data, map_path=mapping)


def test_the_fingerprint_alone_is_not_told_that_no_test_could_run(tmp_path, capsys):
    """The fingerprint is descriptive: asked alone it is shown, and nothing below the table claims that no test
    could run or that none rejects (nothing was tested)."""
    data, mapping = _write(tmp_path, _clean_rows(30))
    code, out, err = _run(capsys, data, "--map", mapping, "--tests", "fingerprint", "--power", "0")
    assert (code, err) == (0, "")
    assert "fingerprint" in out and "descriptive" in out
    assert "could run" not in out and "rejects" not in out


def test_a_leader_without_votes_leaves_its_tests_not_applicable(tmp_path, capsys):
    """A leader with no vote at any station (a mapping's ``leader`` naming an empty column): every share is 0, a
    whole percent in every binomial redraw, so the integer test's null had sd 0 and 'p = 1, an excess of 0
    would be detected with 80% power'; the spikes and Shpilkin statistics were 0 in data and null alike. Each
    test that reads the leader's votes says it has none."""
    rows = [f"{r},{b},{b},0" for r, b, _, _ in (map(int, row.split(",")) for row in _clean_rows(30))]
    data, mapping = _write(tmp_path, rows, 'leader = "b"\n' + MAP)
    code, out, err = _run(capsys, data, "--map", mapping, "--json", "--power", "0", "--tests",
                          "integer_percent,spikes,shpilkin,correlation,dip")
    assert (code, err) == (0, "")
    verdicts = {r["test"]: r["verdict"] for r in json.loads(out)["tests"]}
    for test in ("integer_percent", "spikes", "shpilkin", "correlation"):
        assert verdicts[test] == "n/a: needs votes for the leader (b), the data have none"
    assert not verdicts["dip"].startswith("n/a")  # turnout alone


def test_rows_longer_than_the_header_stop_with_their_count_and_first_row(tmp_path, capsys):
    """A row with more fields than the header (a delimiter inside an unquoted cell, a stray cell) would shift
    or drop cells unseen: b's 300 at data row 3 below would be read as 1 and pass every check. It stops the
    load, as a short row does."""
    rows = _clean_rows(12)
    rows[2] = "1000,600,300,1,300"
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: DATA: 1 row has more than 4 fields (first at data row 3)", data, "--map", mapping)
    rows[2], rows[5] = "1000,600,300,300,,5", "1000,600,300,300,x"
    data, mapping = _write(tmp_path, rows)
    _fails(capsys, f"{data}: DATA: 2 rows have more than 4 fields (first at data row 3)", data, "--map", mapping)


def test_trailing_empty_fields_beyond_the_header_are_read(tmp_path):
    """A common export ends every data row with the delimiter while the header does not: the empty fields
    beyond the header stopped the load. Only empty extras are dropped; the counts read as without them."""
    rows = _clean_rows(12)
    data, mapping = _write(tmp_path, [row + "," for row in rows[:6]] + [row + ",," for row in rows[6:]])
    trailing = load_returns(data, map_path=mapping)
    data, mapping = _write(tmp_path, rows)
    assert trailing.drop_attrs().identical(load_returns(data, map_path=mapping).drop_attrs())


def test_blank_fields_beyond_the_header_are_read_as_empty_ones(tmp_path):
    """A row ending with the delimiter and a space (``..., ``): its cells are stripped everywhere else, so a blank
    extra is as empty as an empty one."""
    rows = _clean_rows(12)
    data, mapping = _write(tmp_path, [row + ", " for row in rows])
    blank = load_returns(data, map_path=mapping)
    data, mapping = _write(tmp_path, rows)
    assert blank.drop_attrs().identical(load_returns(data, map_path=mapping).drop_attrs())


def test_the_turnout_conditional_null_without_donors_is_not_applicable(tmp_path, capsys):
    """One station per district: no station shares its district with another, so none can lend the
    turnout-conditional null a residual (a lone station's residual about its own district is 0). The tests of
    that model were an IndexError traceback; they say why they cannot run, and the others run."""
    rows = [f"d{i}," + row for i, row in enumerate(_clean_rows(30))]
    data, mapping = _write(tmp_path, rows, MAP.replace("[options]", 'district = "district"\n[options]'),
                           "district," + HEADER)
    code, out, err = _run(capsys, data, "--map", mapping, "--json", "--null", "simulated", "--draws", "39",
                          "--power", "0", "--quiet", "--tests", "correlation,dip")
    assert (code, err) == (0, "")
    verdicts = {r["test"]: r["verdict"] for r in json.loads(out)["tests"]}
    assert verdicts["correlation"] == ("n/a: the turnout_conditional null draws from stations sharing their "
                                       "district with another, the data have none")
    assert not verdicts["dip"].startswith("n/a")  # the hierarchical model
