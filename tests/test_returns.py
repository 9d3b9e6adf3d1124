"""Loading station returns: mappings, derivations, row rules, presets on the shared data."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from simkit.data import data_file
from simkit.errors import InputError
from simkit.forensics import election
from simkit.electorate.returns import PRESETS, anomaly_report, load_returns, preset_mapping

CSV = '''region,id,reg,valid,invalid,"Party, A","Party, B"
"North, upper",1,1000,590,10,400,190
South,2,800,0,0,0,0
South,3,500,480,20,500,10
South,4,,100,0,60,40
'''
MAP = '''
ballots_meaning = "valid + invalid"
leader = "A"
[format]
member = "returns.csv"
[columns]
registered = "reg"
valid = "valid"
invalid = 4
region = "region"
id = ["region", "id"]
[options]
"A" = "Party, A"
"B" = 6
'''


@pytest.fixture
def zipped(tmp_path):
    archive = tmp_path / "returns.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("returns.csv", CSV)
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAP)
    return archive, mapping


def test_zip_csv_with_quoted_commas_loads_in_schema(zipped):
    archive, mapping = zipped
    ds = load_returns(archive, map_path=mapping, allow_inconsistent=True)
    assert list(ds["option"].values) == ["A", "B", "invalid"]
    assert ds["votes"].dtype == np.int64 and ds["votes"].dims == ("station", "option")
    assert ds["ballots"].values.tolist() == [600, 0, 500]  # valid + invalid, derived
    assert ds["region"].values[0] == "North, upper"
    assert ds.attrs["leader"] == "A" and ds.attrs["ballots_meaning"] == "valid + invalid"


def test_blank_cells_are_excluded_and_reported_with_row_numbers(zipped):
    ds = load_returns(zipped[0], map_path=zipped[1], allow_inconsistent=True)
    report = anomaly_report(ds)
    assert report["blank"] == {"count": 1, "rows": [4], "rule": "excluded", "fields": {"columns.registered": 1}}
    assert ds.sizes["station"] == 3


def test_inconsistent_rows_are_kept_and_flagged(zipped):
    ds = load_returns(zipped[0], map_path=zipped[1], allow_inconsistent=True)
    report = anomaly_report(ds)
    assert report["votes_gt_ballots"]["rows"] == [3]  # 500 + 10 + 20 > 500
    assert ds["flags"].values.tolist() == [0, 0, 4]


def test_difference_spec_derives_invalid(tmp_path):
    (tmp_path / "r.csv").write_text("reg;cast;valid;x;y\n100;60;58;30;28\n")
    (tmp_path / "m.toml").write_text('[format]\ndelimiter=";"\n[columns]\nregistered="reg"\nballots="cast"\n'
                                     'valid="valid"\ninvalid={diff=["cast","valid"]}\n[options]\nx="x"\ny="y"\n')
    ds = load_returns(tmp_path / "r.csv", map_path=tmp_path / "m.toml")
    assert ds["votes"].sel(option="invalid").values.tolist() == [2]
    assert ds.attrs["leader"] == "x"  # most votes when the mapping names none


@pytest.mark.parametrize("text, fragment", [
    ('[columns]\nregistered="nope"\nballots="cast"\n[options]\nx="x"\n', "columns.registered: no column named"),
    ('[columns]\nballots="cast"\n[options]\nx="x"\n', "columns.registered: required"),
    ('[columns]\nregistered=99\nballots="cast"\n[options]\nx="x"\n', "columns.registered: position 99"),
    ('[columns]\nregistered="reg"\nballots="cast"\n[options]\nx="x"\nleader="z"\n', ""),
])
def test_bad_mapping_raises_one_line_input_error(tmp_path, text, fragment):
    (tmp_path / "r.csv").write_text("reg,cast,x\n100,50,50\n")
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(InputError) as err:
        load_returns(tmp_path / "r.csv", map_path=tmp_path / "m.toml")
    message = str(err.value)
    assert "\n" not in message and fragment in message and message.count(":") >= 2


def test_missing_file_is_input_error(tmp_path):
    (tmp_path / "m.toml").write_text('[columns]\nregistered="reg"\nballots="cast"\n[options]\nx="x"\n')
    with pytest.raises(InputError, match="file not found"):
        load_returns(tmp_path / "absent.csv", map_path=tmp_path / "m.toml")


def test_every_preset_parses():
    for name in PRESETS:
        assert preset_mapping(name).options


def _need(relative):
    path = data_file(relative)
    if path is None:
        pytest.skip(f"shared data {relative} absent (set SIMKIT_DATA or place ../shared/data)")
    return path


@pytest.mark.parametrize("preset, relative, registered, ballots, leader_votes", [
    ("russia-2011", "russia/2011.csv.zip", 109_229_337, 65_648_690, 32_371_737),
    ("russia-2018", "russia/2018.csv.zip", 109_008_428, 73_578_992, 56_430_712),
    ("poland-2025-r2", "poland-2025/2025_presidential_round2_clean.csv", 29_363_322, 21_034_517, 10_606_628),
])
def test_presets_reproduce_published_totals(preset, relative, registered, ballots, leader_votes):
    _need(relative)
    ds = load_returns(preset=preset)
    assert int(ds["registered"].sum()) == registered
    assert int(ds["ballots"].sum()) == ballots
    assert int(ds["votes"].sel(option=ds.attrs["leader"]).sum()) == leader_votes


PANEL_TOTALS = {  # the checked national totals of each folder's NOTES.md (all rows, special ones included)
    "spain-2019-11": {"rows": 59_607, "registered": 37_002_468, "ballots": 24_507_715, "invalid": 249_487,
                      "PSOE": 6_792_199, "special": 52},
    "mexico-2012": {"rows": 143_132, "registered": 79_433_171, "ballots": 50_282_086, "Pena Nieto": 19_220_407,
                    "special": 902},
    "bulgaria-2021-07": {"rows": 13_005, "registered": 6_935_759, "ballots": 2_775_754, "invalid": 9_342,
                         "22_ИМА ТАКЪВ НАРОД": 657_829, "5_ГЕРБ СДС": 642_165, "4_БСП ЗА БЪЛГАРИЯ": 365_695,
                         "special": 1_109},
}


@pytest.mark.parametrize("preset", list(PANEL_TOTALS))
def test_panel_presets_reproduce_the_checked_totals_and_report_special_rows(preset):
    _need(preset_mapping(preset).source)
    ds = load_returns(preset=preset)
    totals = PANEL_TOTALS[preset]
    assert ds.sizes["station"] == totals["rows"]  # no row excluded
    assert int(ds["registered"].sum()) == totals["registered"]
    assert int(ds["ballots"].sum()) == totals["ballots"]
    options = [name for name in totals if name in ds["option"].values]
    assert {name: int(ds["votes"].sel(option=name).sum()) for name in options} == {
        name: totals[name] for name in options}
    leader_totals = ds["votes"].drop_sel(option="invalid").sum("station")
    assert ds.attrs["leader"] == str(leader_totals.idxmax().values)  # the largest party, as the NOTES say
    report = anomaly_report(ds)
    assert report["special"]["count"] == totals["special"] == int(ds["special"].sum())
    e = election(ds)
    assert e.excluded["special station"] == totals["special"]
    assert e.n + sum(e.excluded.values()) == ds.sizes["station"]
    # every district lies in one region
    pairs = {(d, r) for d, r in zip(e.district, e.region)}
    assert len(pairs) == len({d for d, _ in pairs}) < e.n


def test_district_and_special_columns(tmp_path):
    (tmp_path / "r.csv").write_text("reg,cast,x,y,prov,mun,sp\n100,60,30,30,P1,M1,0\n120,70,40,30,P1,M2,0\n"
                                    "900,40,20,20,P1,M3,1\n80,50,20,30,P2,M4,0\n")
    map_text = ('[columns]\nregistered="reg"\nballots="cast"\nregion="prov"\ndistrict="mun"\nspecial="sp"\n'
                '[options]\nx="x"\ny="y"\n')
    (tmp_path / "m.toml").write_text(map_text)
    ds = load_returns(tmp_path / "r.csv", map_path=tmp_path / "m.toml")
    assert ds["district"].values.tolist() == ["M1", "M2", "M3", "M4"]
    assert ds["special"].values.tolist() == [0, 0, 1, 0]
    assert anomaly_report(ds)["special"] == {"count": 1, "rows": [3], "rule": "kept, left out of the tests"}
    e = election(ds)
    assert e.district.tolist() == ["M1", "M2", "M4"] and e.excluded == {"special station": 1}
    assert election(ds.drop_vars("district")).district.tolist() == ["P1", "P1", "P2"]  # the region by default
    (tmp_path / "r.csv").write_text("reg,cast,x,y,prov,mun,sp\n100,60,30,30,P1,M1,0\n80,50,20,30,P2,M1,0\n")
    with pytest.raises(InputError, match=r"m.toml: columns.district: district 'M1' lies in regions 'P1' and 'P2'"):
        load_returns(tmp_path / "r.csv", map_path=tmp_path / "m.toml")


def test_poland_round1_reports_its_inconsistent_rows():
    _need("poland-2025/2025_presidential_round1_clean.csv")
    report = anomaly_report(load_returns(preset="poland-2025-r1"))
    assert report["zero_register"]["count"] == 3
    assert report["ballots_gt_registered"]["count"] == 1
    assert report["blank_region"]["count"] == 516


def test_albania_blank_party_cells_are_missing_for_that_party_only():
    _need("albania-2013/Albania2013.csv")
    ds = load_returns(preset="albania-2013")
    report = anomaly_report(ds)
    assert report["missing_option"]["count"] == 2 and report["blank"]["count"] == 0
    assert report["missing_option"]["fields"] == {"options.C011": 1, "options.C067": 1}
    assert ds.sizes["station"] == 5508  # the two stations are kept
    assert int(ds["missing"].sum()) == 2 and int(ds["votes"].where(ds["missing"] == 1).sum()) == 0
    assert "invalid" not in ds["option"].values
    assert report["duplicate_id"]["count"] > 0  # (commune, precinct) is not unique in this file
