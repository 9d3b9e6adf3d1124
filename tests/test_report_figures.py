"""Each forensic test's own figure: written by ``simkit forensics --plot``, titled with the election's name (never a
file path), not blank; library modules leave the matplotlib backend alone."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from forensics_helpers import honest_dataset, stuff_ballots
from simkit.plots import forensics as plot_forensics
from simkit.cli.main import main
from simkit.forensics import election, run_tests
from simkit.forensics.core import TestResult

LABEL = "Testland general election"
MAP = f'label = "{LABEL}"\n[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'
#: tests whose figure needs only the data (the Klimek fits are checked on given parameters below: their own run
#: refits the model many times)
CHEAP = ["second_digit", "last_digit", "zero_five", "log_vote_rate", "dip", "correlation", "sobyanin",
         "fingerprint", "integer_percent", "spikes", "shpilkin"]
MIN_RANGE = 32


def titles(fig) -> list[str]:
    texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    return texts + [ax.get_title() for ax in fig.axes]


def pixel_range(png: bytes) -> int:
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return int(grey.max()) - int(grey.min())


def test_forensics_plot_writes_each_tests_figure(tmp_path, capsys):
    ds = honest_dataset(500, seed=4)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in
                                           zip(ds["registered"].values, ds["ballots"].values, ds["votes"].values)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    plots = tmp_path / "plots"
    assert main(["forensics", str(tmp_path / "r.csv"), "--map", str(tmp_path / "m.toml"), "--tests",
                 ",".join(CHEAP), "--draws", "20", "--power", "0", "--plot", str(plots)]) == 0
    capsys.readouterr()
    assert sorted(p.stem for p in plots.iterdir()) == sorted(CHEAP)
    for path in plots.iterdir():
        assert pixel_range(path.read_bytes()) >= MIN_RANGE, path.name


def test_figures_name_the_election_not_a_path():
    e = election(stuff_ballots(honest_dataset(800, seed=5), 0.05, seed=6))
    for result in run_tests(e, CHEAP, null="textbook", draws=20, seed=1):
        fig = plot_forensics.figure(result.test, e, result, LABEL)
        shown = " ".join(titles(fig))
        assert LABEL in shown and "/" not in shown, (result.test, shown)


def test_klimek_figure_draws_the_fitted_model_beside_the_data():
    e = election(stuff_ballots(honest_dataset(800, seed=5), 0.05, seed=6))
    parameters = {"tau": 0.6, "sigma_tau": 0.08, "nu": 0.5, "sigma_nu": 0.08, "theta": 0.1, "f_incremental": 0.0,
                  "f_extreme": 0.05, "alpha": 1.0}
    result = TestResult("klimek", 1.0, 0.0, 0.01, "textbook", "anomalous (p ≤ 0.05)", parameters)
    fig = plot_forensics.figure("klimek", e, result, LABEL)
    assert any("f_e 0.0500" in title for title in titles(fig))
    turnout, share = plot_forensics.klimek_sample(parameters, 20_000, np.random.default_rng(1))
    extreme = turnout > 0.9  # the extreme-fraud cloud: f_e of the stations, at turnout near 1
    assert extreme.mean() == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / 20_000))
    honest = ~extreme
    assert turnout[honest].mean() == pytest.approx(0.6, abs=4 * 0.08 / np.sqrt(honest.sum()))


def test_library_modules_leave_the_backend_alone():
    code = ("import matplotlib; matplotlib.use('pdf'); import simkit.plots.fingerprint, simkit.plots.polls, simkit.plots.forensics, "
            "simkit.report; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "pdf"


def test_a_test_that_could_not_run_has_no_figure(tmp_path, capsys):
    """An n/a test has no statistic to show, so no figure: on one station the correlation figure drew a
    least-squares line through a single point ('slope 0.25'). ``--plot`` and the report leave them out."""
    ds = honest_dataset(500, seed=4)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in
                                           zip(ds["registered"].values[:3], ds["ballots"].values[:3],
                                               ds["votes"].values[:3])]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    plots = tmp_path / "plots"
    assert main(["forensics", str(tmp_path / "r.csv"), "--map", str(tmp_path / "m.toml"), "--tests",
                 ",".join(CHEAP), "--draws", "20", "--power", "0", "--plot", str(plots)]) == 0
    assert "n/a" in capsys.readouterr().out
    assert list(plots.iterdir()) == []


def test_a_klimek_fit_not_applicable_for_want_of_a_null_draws_its_estimates():
    """klimek_ml is n/a under the textbook null yet reports the fit's estimates: its figure draws them (the report
    and ``--plot`` show them); an n/a without them has none."""
    from simkit.forensics.applicable import not_applicable

    e = election(stuff_ballots(honest_dataset(800, seed=5), 0.05, seed=6))
    parameters = {"tau": 0.6, "sigma_tau": 0.08, "nu": 0.5, "sigma_nu": 0.08, "theta": 0.1, "f_incremental": 0.0,
                  "f_extreme": 0.05, "alpha": 1.0}
    fig = plot_forensics.figure("klimek_ml", e, not_applicable("klimek_ml", "textbook", "no law", parameters), LABEL)
    assert any("f_e 0.0500" in title for title in titles(fig))
    assert plot_forensics.figure("klimek_ml", e, not_applicable("klimek_ml", "textbook", "no law"), LABEL) is None
