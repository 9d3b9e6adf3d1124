"""The timeline tests: size on honest simulations, power against morning coercion and late stuffing, the
command line on the flagship's published timeline, and bad input."""
from __future__ import annotations

import json
import math
import os
import tomllib

import numpy as np
import pytest
from scipy import stats

from simkit.cli.main import main
from simkit.config.checks import raw_problems
from simkit.timeline.calibration import rejection_rates
from simkit.engine.profile import honest_profile
from simkit.timeline.statistics import TESTS

from conftest import TIMELINE_MAP

CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def rates():
    return rejection_rates(replicates=30 if CI else 40)


def test_size_on_honest_simulations_is_nominal_within_binomial_error(rates):
    n, alpha = rates["n_size"], rates["alpha"]
    for test in TESTS:  # regions of one replicate share the national curve (departure): 3.5 binomial SE
        assert abs(rates["size"][test] - alpha) <= 3.5 * math.sqrt(alpha * (1 - alpha) / n), (test, rates["size"])


@pytest.mark.parametrize("scenario, test", [("coercion", "front_loading"), ("late_stuffing", "late_surge")])
def test_power_against_morning_coercion_and_late_stuffing_exceeds_the_size(rates, scenario, test):
    n, alpha = rates["n_power"], rates["alpha"]
    hits = round(rates["power"][scenario][test] * n)
    assert stats.binomtest(hits, n, alpha, alternative="greater").pvalue < 1e-3, rates["power"]


def test_rescaled_profile_keeps_spain_on_spanish_hours():
    spain = honest_profile("09:00", ["14:00", "18:00"], "20:00")
    assert np.allclose(spain.cumulative_share[:2], [0.54229, 0.81277], atol=1e-5)
    for interpolation in ("linear", "pchip"):
        later = honest_profile("07:00", ["10:05", "12:05", "14:05", "16:05", "18:05"], "20:00",
                               interpolation=interpolation)
        assert (later.bin_shares > 0).all() and math.isclose(later.bin_shares.sum(), 1.0)


def simkit(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_flagship_timeline_json_has_a_row_per_region_and_test_and_a_figure(repo, capsys, tmp_path):
    plots = tmp_path / "plots"
    code, stdout, stderr = simkit(capsys, "timeline", str(repo / "configs" / "kazakhstan-2022.toml"), "--json",
                                  "--draws", "2000", "--plot", str(plots))
    assert code == 0, stderr
    assert (plots / "timeline.png").stat().st_size > 10_000
    out = json.loads(stdout)
    regions = {row["region"] for row in out["rows"]} - {"all", "national"}
    assert len(regions) == 20 and out["profile"]["name"] == "spain-2019-11"
    for row in out["rows"]:
        assert set(row) >= {"region", "test", "statistic", "null_mean", "null_sd", "p_value", "alternative"}
        assert 0 < row["p_value"] <= 1 and row["alternative"] == "greater"
    turkistan = {row["test"]: row for row in out["rows"] if row["region"] == "turkistan"}
    assert math.isclose(turkistan["front_loading"]["statistic"], 64.21 / 80.37, rel_tol=1e-9)


BAD = [
    ("[observed.timeline]\nreports = ['12:05', '10:05']", "observed.timeline.reports"),
    ("[observed.timeline]\nreports = ['05:00', '10:05']", "observed.timeline.reports[0]: 05:00 is outside"),
    ("[observed.timeline.turnout_percent]\nabai = [25.64, 43.67, 40.0, 73.57, 78.88, 80.18]",
     "observed.timeline.turnout_percent.abai[2]: cumulative turnout decreases"),
    ("[observed.timeline.turnout_percent]\natlantis = [1, 2, 3, 4, 5, 6]",
     "observed.timeline.turnout_percent.atlantis: not a region"),
    ("[observed.timeline.turnout_percent]\nabai = [25.64, 43.67, 69.32, 73.57, 78.88, 100.5]",
     "observed.timeline.turnout_percent.abai[5]: turnout 100.5% is outside"),
    ("[observed.timeline.turnout_percent]\nabai = [0, 0, 0, 0, 0, 0]",
     "observed.timeline.turnout_percent.abai[5]: final turnout 0%"),
    ("[observed.timeline]\nnational = [0, 0, 0, 0, 0, 0]", "observed.timeline.national[5]: final turnout 0%"),
]


@pytest.mark.parametrize("patch, message", BAD)
def test_bad_timelines_exit_2_with_one_line_and_write_nothing(repo, tmp_path, capsys, patch, message):
    flagship = (repo / "configs" / "kazakhstan-2022.toml").read_text()
    table, _, body = patch.partition("\n")
    key = body.split("=")[0].strip()
    lines = flagship.splitlines()
    start = lines.index(table)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("[") or not lines[i].strip()) \
        if any(line.startswith("[") for line in lines[start + 1:]) else len(lines)
    block = [line for line in lines[start + 1:end] if not line.startswith(key + " ")]
    lines[start + 1:end] = block + [body]
    bad = tmp_path / "kazakhstan-2022.toml"
    bad.write_text("\n".join(lines) + "\n")
    figure = tmp_path / "figure.png"
    code, stdout, stderr = simkit(capsys, "timeline", str(bad), "--plot", str(figure))
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not figure.exists() and stdout == ""


def test_a_published_timeline_of_a_region_without_voters_exits_2_naming_it(tmp_path, capsys):
    """A region whose stations have no voters (closed, or abroad with nobody registered) has no turnout through
    the day: its published timeline is refused in one line naming the config, the field and the region, in the
    words of a count-matched regional turnout there."""
    import tomli_w
    from conftest import small_config_dict

    raw = small_config_dict(replicates=4, seed=5)
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    (tmp_path / "stations.csv").write_text("region,registered\nnorth,500\nnorth,700\nsouth,800\nabroad,0\n")
    raw["timeline"] = {"opening": "07:00", "closing": "20:00", "reports": ["10:00", "12:00"]}
    raw["observed"] = {"registered": 2000, "ballots": 1200, "votes": {"a": 600, "b": 360, "c": 240},
                       "timeline": {"reports": ["10:00", "12:00"],
                                    "turnout_percent": {"north": [20, 40, 60], "abroad": [10, 20, 50]}}}
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    code, stdout, stderr = simkit(capsys, "timeline", str(config), "--draws", "100")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines() == [f"{config}: observed.timeline.turnout_percent.abroad: the stations of "
                                           "region abroad have no voters on the register: it has no turnout to compare"]


NATIONAL = "observed.timeline.national[5]: final turnout"
ABAI = "observed.timeline.turnout_percent.abai[5]: final turnout"


@pytest.mark.parametrize("national, abai, refused", [
    ([23.37, 38.55, 51.16, 62.34, 67.85, 69.43], 80.18, None),  # as published: the count's 69.4363 cut to 69.43
    ([23.37, 38.55, 51.16, 62.34, 67.85, 69.44], 80.18, None),  # rounded
    ([23.37, 38.55, 51.16, 62.34, 67.85, 69.42], 80.18, NATIONAL),
    ([23.37, 38.55, 51.16, 62.34, 67.85, 70.0], 80.18, NATIONAL),
    ([23, 39, 51, 62, 68, 69], 80.18, None),  # published in whole percents: 69.4363 rounds (and cuts) to 69
    ([23, 39, 51, 62, 68, 70], 80.18, NATIONAL),
    ([23.37, 38.55, 51.16, 62.34, 67.85, 69.43], 80.19, None),  # 80.185: 80.19 rounded, 0.8018 cut
    ([23.37, 38.55, 51.16, 62.34, 67.85, 69.43], 80.2, ABAI),  # regional_turnout abai = 0.8018
])
def test_the_timelines_final_figure_is_the_counts_turnout_within_the_published_precision(repo, national, abai,
                                                                                         refused):
    """The final figure of [observed.timeline] is the count at closing: against [observed]'s turnout (exact from
    the count) or regional turnout (published), a difference that rounding (to nearest or down) at the figures'
    published precision cannot make is refused; the flagship's national 69.43 (the count's 69.4363) is not."""
    raw = tomllib.loads((repo / "configs" / "kazakhstan-2022.toml").read_text())
    raw["observed"]["timeline"]["national"] = national
    raw["observed"]["timeline"]["turnout_percent"]["abai"][-1] = abai
    problems = raw_problems(raw)
    assert (problems == []) if refused is None else (len(problems) == 1 and problems[0].startswith(refused)), problems


SHARES = "more than 10 times below the turnout the config models"


@pytest.mark.parametrize("abai, abai_mean, national, refused", [
    ([0.2564, 0.4367, 0.6932, 0.7357, 0.7888, 0.8018], 0.8018, None, ABAI),  # shares written for percents
    ([0.3, 0.9, 5.0, 30.0, 60.0, 80.18], 0.8018, None, None),  # early figures of a small region below 1%
    ([0.05, 0.1, 0.2, 0.3, 0.4, 0.5], 0.005, None, None),  # a boycott: 0.5% in the end, and modelled so
    ([0.05, 0.1, 0.2, 0.3, 0.4, 0.5], 0.8018, None, ABAI),  # the same figures where the config models 80%
    ([25.64, 43.67, 69.32, 73.57, 78.88, 80.18], 0.8018, [0.2337, 0.3855, 0.5116, 0.6234, 0.6785, 0.6943],
     NATIONAL),
])
def test_a_final_figure_read_as_a_share_for_a_percent_is_refused_without_an_official_turnout(repo, abai, abai_mean,
                                                                                            national, refused):
    """With no official turnout to check them against (no observed.regional_turnout, ballots or register), a row
    whose final figure is at most 1 while the config models a turnout more than 10 times its percent reading is a
    share written for a percent; figures below 1% before the final, and a final below 1% modelled so, are not."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = abai
    raw["turnout"]["regional_mean"]["abai"] = abai_mean
    if national is not None:
        raw["observed"]["timeline"]["national"] = national
    problems = raw_problems(raw)
    assert (problems == []) if refused is None else (
        len(problems) == 1 and problems[0].startswith(refused) and SHARES in problems[0]), problems


SHARE_ROW = [0.2564, 0.4367, 0.6932, 0.7357, 0.7888, 0.8018]


def test_a_final_figure_an_official_turnout_refuses_is_not_refused_again_as_a_share(repo):
    """Abai's final 0.8018 against observed.regional_turnout 0.8018 is one problem, told once: the official figure
    checks it (a share written for a percent fails that too)."""
    raw = tomllib.loads((repo / "configs" / "kazakhstan-2022.toml").read_text())
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = SHARE_ROW
    problems = raw_problems(raw)
    assert len(problems) == 1 and problems[0].startswith(ABAI) and SHARES not in problems[0], problems


def test_a_config_check_reads_its_timeline_once(repo, monkeypatch):
    """Checking a config ran the timeline's own checks twice (its guard, then the share figures' guard) and found
    the turnout means in use twice for the national row; the problems at prior values validated the raw config
    twice, and ran both again to find the share-figure refusals they leave out. Each is done once, with the same
    problems (abai's share row, refused by the config's own checks, is a share-figure refusal that prior values
    leave out)."""
    from simkit.config import checks
    from simkit.config.core import Config

    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = SHARE_ROW
    calls = {"_timeline_problems": 0, "_means_in_use": 0, "model_validate": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    for name in ("_timeline_problems", "_means_in_use"):
        monkeypatch.setattr(checks, name, counted(name, getattr(checks, name)))
    [problem] = checks.cross_check(Config.model_validate(raw))
    assert problem.startswith(ABAI) and SHARES in problem
    assert (calls["_timeline_problems"], calls["_means_in_use"]) == (1, 1)
    monkeypatch.setattr(Config, "model_validate", counted("model_validate", Config.model_validate))
    calls.update(_timeline_problems=0, _means_in_use=0)
    assert checks.prior_value_problems(raw) == []
    assert (calls["model_validate"], calls["_timeline_problems"], calls["_means_in_use"]) == (1, 1, 1)


def test_a_swept_config_check_reads_its_sweep_free_timeline_once(repo, monkeypatch):
    """The sweep's checks ran the sweep-free config's timeline checks twice (its own checks, then its share
    figures' guard): a swept config's timeline is checked once for the config, once sweep-free, once per point."""
    from simkit.config import checks

    raw = without_official_turnout(repo)
    raw["sweep"] = {"turnout.regional_mean.abai": [0.7, 0.75]}
    checked = []
    timeline_problems = checks._timeline_problems

    def counted(cfg):
        checked.append(cfg)
        return timeline_problems(cfg)

    monkeypatch.setattr(checks, "_timeline_problems", counted)
    assert checks.raw_problems(raw) == []
    assert len(checked) == 1 + 1 + 2


def without_official_turnout(repo) -> dict:
    """The flagship config with no official turnout (no regional turnout, ballots or register)."""
    raw = tomllib.loads((repo / "configs" / "kazakhstan-2022.toml").read_text())
    for field in ("regional_turnout", "ballots", "registered"):
        raw["observed"].pop(field, None)
    return raw


BOYCOTT_ROW = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5]


@pytest.mark.parametrize("varies", [
    {"sweep": {"turnout.regional_mean.abai": [0.004, 0.006]}},
    {"infer": [{"path": "turnout.regional_mean.abai", "prior": "uniform", "low": 0.002, "high": 0.06}]},
    {"infer": [{"path": "turnout.regional_mean", "apply": "logit_shift", "prior": "normal", "mean": 0.0, "sd": 1.0,
                "low": -3.0, "high": 3.0}]}])
def test_a_final_figure_is_not_judged_against_a_mean_the_config_sweeps_or_infers(repo, varies):
    """Abai's final 0.5% against its regional mean in the file (80.18%, which refuses it) where a sweep or a prior
    varies that mean: the turnout modelled varies, so the row is judged neither by the base's mean nor at the
    prior's median or tails (the probes of a config valid over its prior: a uniform one reaching 5.99%, more than
    10 times 0.5%; a logit shift whose median keeps the file's 80.18%)."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = BOYCOTT_ROW
    assert [p for p in raw_problems(raw) if SHARES in p] != [], "the base config alone refuses it"
    raw.update(varies)
    assert raw_problems(raw) == []


@pytest.mark.parametrize("sweep", [{"turnout.regional_mean.abai": [0.7, 0.75]}, {"turnout.mean": [0.5, 0.6]}])
def test_a_sweep_of_a_mean_leaves_a_national_share_refused_at_each_point(repo, sweep):
    """A national final of 0.5% against the flagship's means (lowest 28.72%) is refused alone; a sweep of a mean
    makes the config skip the national row, so each point judges it with its own means and refuses it (the point's
    problem equals the sweep-free base's, which the config never told)."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["national"] = BOYCOTT_ROW
    del raw["turnout"]["regional_mean"]["almaty_city"]  # turnout.mean is in use
    assert [p for p in raw_problems(raw) if p.startswith(NATIONAL)] != [], "the base config alone refuses it"
    raw["sweep"] = sweep
    [(path, values)] = sweep.items()
    problems = raw_problems(raw)
    assert problems == [p for p in problems if SHARES in p] and [p.split(": ")[0] for p in problems] == [
        f"sweep.{path}={value:g}" for value in values], problems
    assert all(p.split(": ", 1)[1].startswith(NATIONAL) for p in problems), problems


@pytest.mark.parametrize("sweep", [{"turnout.dispersion": [0.4, 0.5]}, {"turnout.regional_mean.abai": [0.4, 0.5]}])
def test_an_empty_timeline_row_with_a_sweep_is_refused_not_crashed(repo, sweep):
    """An empty row is refused by the timeline's own checks; the sweep's share-figure step must not read its final
    figure (it raised IndexError)."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = []
    raw["sweep"] = sweep
    problems = raw_problems(raw)
    assert len(problems) == 1 and "turnout_percent.abai: expected 6 figures" in problems[0], problems


def test_a_sweep_of_a_mean_no_region_uses_leaves_the_national_row_told_once(repo):
    """Every region of the flagship has its own mean: a sweep of turnout.mean changes no modelled turnout, so a
    national final of 0.5% is refused once by the config's own checks, not again at each sweep point."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["national"] = BOYCOTT_ROW
    raw["sweep"] = {"turnout.mean": [0.5, 0.6]}
    problems = raw_problems(raw)
    assert len(problems) == 1 and problems[0].startswith(NATIONAL), problems


def test_a_misspelt_timeline_region_is_told_once(repo):
    """A timeline row for a region the electorate lacks is refused as such; it is not judged as a share too."""
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abay"] = SHARE_ROW
    problems = raw_problems(raw)
    assert len(problems) == 1 and "abay" in problems[0] and SHARES not in problems[0], problems


def test_the_national_final_figure_is_judged_against_the_means_in_use(repo):
    """Every region of the flagship has its own mean: a turnout.mean of 0.1% is used nowhere, and a national final of
    0.5% is judged against the lowest regional mean (almaty_city's 28.72%)."""
    raw = without_official_turnout(repo)
    raw["turnout"]["mean"] = 0.001
    raw["observed"]["timeline"]["national"] = BOYCOTT_ROW
    problems = raw_problems(raw)
    assert len(problems) == 1 and problems[0].startswith(NATIONAL), problems
    assert "(28.72%: turnout.regional_mean.almaty_city = 0.2872, the lowest mean in use)" in problems[0]


def test_a_share_written_for_a_percent_is_told_with_the_model_as_a_percent(repo):
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = SHARE_ROW
    [problem] = raw_problems(raw)
    assert problem == (f"{ABAI} 0.8018% is more than 10 times below the turnout the config models (80.18%: "
                       "turnout.regional_mean.abai = 0.8018): a share written for a percent? (if 0.8018 is a share, "
                       "write it as 80.18; if the turnout is truly that low, model it so)")


@pytest.mark.parametrize("kind, fields, refused", [
    ("vote_stealing", {"fraction": 0.1}, True), ("invalidation", {"fraction": 0.1}, True),
    ("ballot_stuffing", {"f_incremental": 0.1, "f_extreme": 0.01, "theta": 0.1, "alpha": 1.0}, False)])
def test_an_arrival_for_a_block_that_adds_no_ballots_is_refused(repo, kind, fields, refused):
    """Vote stealing and invalidation move votes among the ballots cast: an arrival window for them was used
    nowhere, without a word."""
    raw = tomllib.loads((repo / "configs" / "kazakhstan-2022.toml").read_text())
    raw["manipulation"] = [{"name": "block", "kind": kind, "beneficiary": "tokayev", **fields}]
    raw["timeline"]["arrival"] = {"block": {"start": "07:00", "end": "12:00"}}
    expected = [f"timeline.arrival.block: a {kind} block adds no ballots, so there is no arrival to time; leave it "
                "out"] if refused else []
    assert raw_problems(raw) == expected


@pytest.mark.parametrize("edit, message", [
    (lambda text: text + "extra = 1\n", "columns.extra: unknown field"),
    (lambda text: text.replace('final = "final"\n', ""), "columns.final: required field is missing"),
    (lambda text: text.replace('closing = "20:00"', 'closing = "25:00"'), "timeline.closing: "),
])
def test_a_bad_timeline_map_is_told_in_the_words_of_a_bad_config(tmp_path, edit, message):
    """A map's problem reads as a config's (one formatting of pydantic's errors): the dotted field, then the
    problem, ``unknown field`` and ``required field is missing`` as in configs."""
    from simkit.errors import InputError
    from simkit.timeline.observed import read_map

    map_path = tmp_path / "map.toml"
    map_path.write_text(edit(TIMELINE_MAP))
    with pytest.raises(InputError) as error:
        read_map(map_path)
    assert str(error.value).startswith(f"{map_path}: {message}"), str(error.value)


def test_a_timeline_map_with_a_byte_order_mark_reads_as_a_returns_mapping_does(tmp_path):
    """A map saved with a UTF-8 byte-order mark (Windows editors) reads, as a returns mapping and a config do (it
    was refused as invalid TOML at line 1)."""
    from simkit.timeline.observed import read_map

    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text(TIMELINE_MAP)
    marked.write_bytes(b"\xef\xbb\xbf" + TIMELINE_MAP.encode())
    assert read_map(marked) == read_map(plain)


@pytest.mark.parametrize("rows, message", [
    ("a,100,30,20,50", "row 2: cumulative ballots decrease"),
    ("a,100,30,60,120", "row 2: ballots exceed registered (turnout above 100%)"),
    (",100,30,40,50", "row 2: region: blank"),
    ("a,100,abc,40,50", "row 2: b14: 'abc' is not a number"),
    ("a,100,30.5,40,50", "row 2: b14: '30.5' is not a count"),
    ("a,100,-1,40,50", "row 2: b14: '-1' is not a count"),
    ("a,,30,40,50", "row 2: registered: blank"),
    ("a,100,0,0,0", "region a: no ballots in final at any station"),
    ("a,100,30,40,", "row 2: final: blank"),
    ('a,"1.000",30,40,50', "row 2: registered: '1.000' reads as a count with '.' grouping its thousands"),
    ("a,100,30,40,50\nc,150,40,50,60\nTotal,350,100,130,160", "row 4: registered 350, b14 100, b18 130, final 160: "
                                                               "each the sum of every other row's (a totals row? "
                                                               "remove it)"),
])
def test_bad_station_timelines_exit_2(tmp_path, capsys, rows, message):
    data, map_path, figure = tmp_path / "stations.csv", tmp_path / "map.toml", tmp_path / "figure.png"
    data.write_text("region,registered,b14,b18,final\n" + rows + "\nb,100,30,40,50\n")
    map_path.write_text(TIMELINE_MAP)
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path), "--plot", str(figure))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not figure.exists() and stdout == ""


def test_a_totals_row_among_regional_subtotals_in_a_station_timeline_exits_2(tmp_path, capsys):
    """Each region's stations followed by their subtotal row, the national total in the middle: the total is a third
    of every column's sum, not a half, and was summed into a region as a station, the subtotals too."""
    stations = {"a": ["a,100,30,40,50", "a,120,20,50,70"], "b": ["b,150,40,50,60", "b,90,10,30,40", "b,80,20,30,40"]}
    sums = {region: ",".join(str(sum(int(row.split(",")[k]) for row in rows)) for k in range(1, 5))
            for region, rows in stations.items()}
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final\n" + "\n".join(
        stations["a"] + [f"a,{sums['a']}", "Total,540,120,200,260"] + stations["b"] + [f"b,{sums['b']}"]) + "\n")
    map_path.write_text(TIMELINE_MAP)
    code, _, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert (code, stderr) == (2, f"{data}: row 5: registered 540, b14 120, b18 200, final 260: each the sum of the "
                                 "subtotal rows 4, 9 (each the sum of the rows above it: a totals row among subtotals? "
                                 "remove them)\n")


def test_a_station_file_is_read_as_a_returns_file_is(tmp_path, capsys):
    """The station file was read by pandas alone: a ';' file could not be read at all ('column region not found'),
    a row after a blank line was told by the wrong row, a row wider than the header by a two-line pandas error."""
    from simkit.timeline.observed import from_stations

    text = "region,registered,b14,b18,final\na,100,30,40,50\nb,120,30,40,50\nb,90,20,40,60\n"
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text(text)
    map_path.write_text(TIMELINE_MAP)
    plain = from_stations(data, map_path)
    data.write_text(text.replace(",", ";"))
    map_path.write_text(TIMELINE_MAP + '[format]\ndelimiter = ";"\n')
    semicolons = from_stations(data, map_path)
    assert (semicolons.station_counts == plain.station_counts).all()
    map_path.write_text(TIMELINE_MAP)
    for rows, message in (("\n,100,30,40,50", f"{data}: row 6: region: blank (every station needs a region)"),
                          ("c,1,000,30,40,50", f"{data}: row 5: more cells than the header's 5 columns (a delimiter "
                                               "inside an unquoted field, such as a thousands separator?)")):
        data.write_text(text + rows + "\n")
        code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
        assert (code, stdout, stderr) == (2, "", message + "\n")


def test_station_tests_leave_out_regions_of_fewer_than_10_stations(tmp_path, capsys):
    """A region of one station is its own profile: its station tests read z = 0 in the data and in every redraw and
    said p = 1 (null sd 0); regions of fewer than 10 stations are listed as not tested, the others keep their rows."""
    rows = [f"{'big' if i < 12 else 'small'},100,{25 + i % 5},{40 + i % 3},50" for i in range(15)]
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final\n" + "\n".join(rows) + "\n")
    map_path.write_text(TIMELINE_MAP)
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path), "--json", "--draws", "100")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert {row["region"] for row in result["rows"] if row["test"].startswith("station_")} == {"big"}
    assert result["untested"]["station_front_loading, station_late_surge"] == (
        "in regions of fewer than 10 stations with ballots: small (3)")


def test_a_column_the_map_names_twice_in_a_station_files_header_exits_2(tmp_path, capsys):
    """pandas reads a second ``b18`` as ``b18.1``: the map's ``b18`` read the first one, the other left out without a
    word."""
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final,b18\na,100,30,40,50,45\nb,100,30,40,50,45\n")
    map_path.write_text(TIMELINE_MAP)
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert code == 2 and stdout == "", stderr
    assert stderr.strip() == (f"{data}: the header has 2 columns named 'b18' (named in {map_path}; which one is "
                              "meant? rename the others)")


def test_a_station_file_with_no_stations_left_exits_2(tmp_path, capsys):
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final,special\na,100,30,40,50,1\n")
    map_path.write_text(TIMELINE_MAP + 'exclude = "special"\n')
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert code == 2 and "no stations left" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stdout == ""


def test_one_published_region_has_no_departure_row():
    """With one region the national curve is that region's: its departure is 0 in every draw, and the ``all``
    row would standardise rounding noise; the test is left out, the others run."""
    from simkit.timeline.statistics import RegionalTimeline, run_tests

    profile = honest_profile("07:00", ["12:00", "18:00"], "20:00")
    observed = RegionalTimeline(["north"], ["12:00", "18:00"], np.array([[0.35, 0.55, 0.60]]), np.array([1000.0]))
    rows = run_tests(observed, profile, "07:00", "20:00", np.random.default_rng(0), 200)
    assert {row["test"] for row in rows} == {"front_loading", "late_surge"}
    assert all(np.isfinite(row["statistic"]) and np.isfinite(row["null_sd"]) for row in rows)


@pytest.mark.parametrize("old, new", [('reports = ["b14", "b18"]', 'reports = ["b14", "b14"]'),
                                      ('final = "final"', 'final = "b18"'),
                                      ('registered = "registered"', 'registered = "final"'),
                                      ('region = "region"', 'region = "registered"'),
                                      ('final = "final"', 'final = "final"\nexclude = "b18"'),
                                      ('final = "final"', 'final = "final"\nexclude = "region"')])
def test_a_map_naming_one_column_for_two_figures_exits_2(tmp_path, capsys, old, new):
    """Every column the map names (region, registered, the reports, final, exclude) is a different one."""
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final\na,100,30,40,50\nb,100,30,40,50\n")
    map_path.write_text(TIMELINE_MAP.replace(old, new))
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert code == 2 and f"{map_path}: columns: " in stderr and "named for two columns" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""


def test_a_station_file_whose_figures_mostly_decrease_is_refused_not_excluded(tmp_path, capsys):
    """decreasing = "exclude" drops the odd station whose advance exceeds its final count; with the report
    columns swapped nearly every station decreases, and the few left (equal figures) were tested as the country."""
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final\na,100,40,30,50\na,100,45,35,55\na,100,30,30,50\n"
                    "b,100,40,30,50\nb,100,30,40,50\n")
    map_path.write_text(TIMELINE_MAP + '\n[checks]\ndecreasing = "exclude"\n')
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert code == 2 and "3 of 5 stations" in stderr and "time order" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""


def test_a_final_column_of_another_count_is_named_when_most_stations_decrease(tmp_path, capsys):
    """A final column of valid votes (fewer than the ballots the reports count) makes nearly every station
    decrease at the close, in time order: the refusal names that cause as well as columns out of order."""
    data, map_path = tmp_path / "stations.csv", tmp_path / "map.toml"
    data.write_text("region,registered,b14,b18,final\na,100,30,40,38\na,100,35,45,44\na,100,30,30,50\n"
                    "b,100,30,40,39\nb,100,30,40,50\n")
    map_path.write_text(TIMELINE_MAP + '\n[checks]\ndecreasing = "exclude"\n')
    code, stdout, stderr = simkit(capsys, "timeline", str(data), "--map", str(map_path))
    assert code == 2 and "3 of 5 stations" in stderr, stderr
    assert "a final column that is not the same count as the reports" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and stdout == ""


def test_infer_judges_the_final_figures_against_the_blocks_it_runs(repo, monkeypatch):
    """The config's own checks skip abai's final 0.5% because its [[infer]] block varies abai's mean; `infer` given
    other blocks, which leave that mean at the file's 80.18%, once ran on a row no check had judged. It is judged
    against the blocks run, before anything is simulated."""
    import simkit.inference.run
    from simkit.config.core import Config
    from simkit.config.messages import ConfigError
    from simkit.config.inference import InferConfig
    from simkit.inference import infer

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated with a final figure no check judged")

    monkeypatch.setattr(simkit.inference.run, "Simulator", no_simulation)
    raw = without_official_turnout(repo)
    raw["observed"]["timeline"]["turnout_percent"]["abai"] = BOYCOTT_ROW
    raw["infer"] = [{"path": "turnout.regional_mean.abai", "prior": "uniform", "low": 0.002, "high": 0.06}]
    assert raw_problems(raw) == []
    cfg = Config.model_validate(raw)
    other = [InferConfig(path="turnout.dispersion", prior="uniform", low=0.3, high=0.5)]
    with pytest.raises(ConfigError) as error:
        infer(cfg, other, source="x.toml")
    assert len(error.value.problems) == 1 and error.value.problems[0].startswith(f"x.toml: {ABAI}"), error.value.problems
    assert SHARES in error.value.problems[0]
