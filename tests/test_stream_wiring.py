"""The random streams as the consumers really draw them: small runs of the consumers execute under one seed, in this
process (one worker, or one core where a command takes no worker count), and every position (entropy, spawn key)
a generator is seeded from is recorded with the line that seeded it: each ``np.random.SeedSequence`` created in
Python (and its spawned children), and each integer seed given to ``np.random.default_rng`` (``default_rng(seed)``,
``default_rng([seed, LEDGER])``: the position (entropy words, ())), simkit's only way of seeding from integers. Not
recorded: a generator seeded otherwise (``np.random.PCG64(int)``, legacy ``RandomState``), and draws in other
processes. No position may be drawn at two lines (``tests/test_streams.py`` checks the key functions; this checks
that each consumer goes through its own)."""
from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import tomli_w

import simkit
from simkit import inference, report, streams
from simkit.cli.main import main
from simkit.config.inference import MIN_PARTICLES, InferConfig, InferenceSettings
from simkit.forensics.calibrate import calibration_table
from simkit.inference import smc
from simkit.polls import compiled_draws
from simkit.timeline.calibration import rejection_rates

from conftest import small_config_dict
from forensics_helpers import honest_dataset

SEED = 5
SIMKIT = Path(simkit.__file__).resolve().parent
#: functions that turn a caller's key into a generator or a state: the line that drew is their caller's
HELPERS = {(SIMKIT / "streams.py", "generator"), (SIMKIT / "inference" / "smc.py", "generator"),
           (SIMKIT / "forensics" / "nulls" / "compiled_draws.py", "generator_state")}
MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'
#: the voting day of the configs' ``[timeline]`` and of the published timeline infer reads
TIMELINE = {"opening": "07:00", "closing": "20:00", "reports": ["10:00", "12:00"]}


def drawing_line() -> str:
    """``path:line`` (relative to the package) of the innermost simkit frame of the calling stack outside this file
    and :data:`HELPERS`."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if path.is_relative_to(SIMKIT) and (path, frame.f_code.co_name) not in HELPERS:
            return f"{path.relative_to(SIMKIT)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "outside simkit"


@pytest.fixture
def drawn(monkeypatch) -> dict[tuple, set[str]]:
    """position (entropy, spawn key) -> the lines that drew from it, for every ``np.random.SeedSequence`` created
    (and its spawned children) and every integer seed of ``np.random.default_rng`` while the test runs:
    ``np.random.SeedSequence`` replaced by a subclass that records each ``generate_state`` (what a bit generator
    seeded from it calls; any SeedSequence is still an instance of it), and ``np.random.default_rng`` by one that
    turns integer entropy into that subclass first (the same generator: numpy seeds from ``SeedSequence(entropy)``)."""
    base, make_rng = np.random.SeedSequence, np.random.default_rng
    positions: dict[tuple, set[str]] = defaultdict(set)

    class AnySeedSequence(type):
        def __instancecheck__(cls, instance) -> bool:
            return isinstance(instance, base)

    class Recording(base, metaclass=AnySeedSequence):
        def generate_state(self, n_words, dtype=np.uint32):
            entropy = self.entropy if np.ndim(self.entropy) == 0 else tuple(self.entropy)
            positions[(entropy, tuple(self.spawn_key))].add(drawing_line())
            return super().generate_state(n_words, dtype)

    def default_rng(seed=None) -> np.random.Generator:
        seeded = seed is None or isinstance(seed, (base, np.random.BitGenerator, np.random.Generator))
        return make_rng(seed if seeded else Recording(seed))

    monkeypatch.setattr(np.random, "SeedSequence", Recording)
    monkeypatch.setattr(np.random, "default_rng", default_rng)
    # the polls' generator states are kept per (seed, poll) for the process: an earlier test under the same seed
    # would leave nothing to draw here
    monkeypatch.setattr(compiled_draws, "_STATE_TABLES", {})
    return positions


def stuffed_config(tmp_path: Path, *, poll: bool) -> Path:
    """A small election (60 stations, three options, two regions, a voting day of :data:`TIMELINE`) with a scenario
    of two manipulation blocks (stuffing, coercion) beside the honest one and, with ``poll``, one published exit
    poll; written as TOML."""
    raw = small_config_dict(stations=60, registered=60_000, shares=(0.6, 0.3, 0.1), replicates=4, seed=SEED)
    raw["timeline"] = TIMELINE
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.3,
                            "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5},
                           {"name": "coercion", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.1,
                            "compliance": 0.7, "loyalty": 0.9}]
    raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff", "coercion"]}]
    if poll:
        raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20,
                             "published": {"a": 0.62, "b": 0.28, "c": 0.10}}]
    path = tmp_path / f"{'poll' if poll else 'plain'}.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def returns_files(tmp_path: Path) -> tuple[Path, Path]:
    """Honest two-option station returns (CSV, 300 stations) and their column map."""
    ds = honest_dataset(300, seed=SEED)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in
                                           zip(ds["registered"].values, ds["ballots"].values, ds["votes"].values)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    return tmp_path / "r.csv", tmp_path / "m.toml"


#: a station file of published timelines (two regions of three stations; ballots at 10:00, 12:00 and the final count)
STATION_TIMELINES = """region,registered,b10,b12,final
n,900,200,350,560
n,1100,260,400,700
n,800,150,300,500
s,1000,300,420,610
s,700,140,260,430
s,1200,330,500,760
"""


def station_timeline_files(tmp_path: Path) -> tuple[Path, Path]:
    """:data:`STATION_TIMELINES` and its map (the voting day of :data:`TIMELINE`), for ``simkit timeline STATIONS
    --map MAP`` (its regional and station-level tests)."""
    stations, mapping = tmp_path / "timeline.csv", tmp_path / "timeline.toml"
    stations.write_text(STATION_TIMELINES)
    mapping.write_text(tomli_w.dumps({"timeline": TIMELINE, "columns": {
        "region": "region", "registered": "registered", "reports": ["b10", "b12"], "final": "final"}}))
    return stations, mapping


def with_published_timeline(cfg: simkit.Config) -> simkit.Config:
    """``cfg`` with ``[observed.timeline]`` at the reports of :data:`TIMELINE`: each region's turnout (percent, two
    decimals) a third, then two thirds, of its final figure, the count's regional turnout."""
    raw = cfg.raw()
    raw["observed"]["timeline"] = {"reports": TIMELINE["reports"], "turnout_percent": {
        region: [round(100 * turnout * k / 3, 2) for k in (1, 2, 3)]
        for region, turnout in cfg.observed.regional_turnout.items()}}
    return simkit.Config.model_validate(raw)


def run_consumers(tmp_path: Path, capsys, monkeypatch) -> None:
    """Small runs under :data:`SEED`, in this process: the engine (with a timeline), ``compare`` (its polls,
    misreporting search and ledger), ``calibrate`` (station samples and the tests of each replicate), the timeline
    tests' calibration (three replicates), ``forensics`` on returns (with the power study), ``report`` on the same
    returns, ``timeline`` on a station file (its regional and station-level tests and its figure) and ``infer``
    (with a poll and a published timeline as evidence). ``compare``, ``forensics`` and ``report`` take no worker
    count: with one core, every pool they would start runs in this process."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    plain, polled = stuffed_config(tmp_path, poll=False), stuffed_config(tmp_path, poll=True)
    simkit.simulate(simkit.load_config(plain), replicates=2, seed=SEED, workers=1)
    assert main(["compare", str(polled), "--json", "--replicates", "4", "--seed", str(SEED),
                 "--ledger-points", "2"]) == 0
    calibration_table(simkit.load_config(plain), replicates=2, tests=["spikes", "correlation", "shpilkin"],
                      nulls=("textbook", "simulated"), draws=5, seed=SEED, aggregate="sample:30", workers=1)
    rejection_rates(regions=2, stations=6, replicates=3, affected=1, draws=5, seed=SEED)
    data, mapping = returns_files(tmp_path)
    assert main(["forensics", str(data), "--map", str(mapping), "--tests", "last_digit,correlation,spikes",
                 "--null", "simulated", "--draws", "5", "--power", "2", "--seed", str(SEED), "--json"]) == 0
    report.build(returns=data, map=mapping, tests=["spikes", "shpilkin"], null="textbook", draws=5, power=0,
                 seed=SEED)
    stations, timeline_map = station_timeline_files(tmp_path)
    assert main(["timeline", str(stations), "--map", str(timeline_map), "--draws", "100", "--station-draws", "20",
                 "--seed", str(SEED), "--plot", str(tmp_path / "plots")]) == 0
    prior = InferConfig(path="manipulation.stuff.f_incremental", prior="uniform", low=0.0, high=0.5)
    cfg = inference.simulated_observed(simkit.load_config(polled), [prior], [0.3], seed=SEED + 1)
    settings = InferenceSettings(particles=MIN_PARTICLES, pilot=MIN_PARTICLES, noise_replicates=5,
                                 max_generations=1, predictive=10, min_ess=5, seed=SEED, workers=1,
                                 scenario="stuffing", statistics=["turnout", "shares", "polls", "timeline"])
    inference.infer(with_published_timeline(cfg), [prior], settings)
    capsys.readouterr()


def test_no_two_lines_draw_from_one_position(drawn, tmp_path, capsys, monkeypatch):
    """Under one seed no position is drawn at two lines (a prior draw of the inference pilot at its simulation 0's
    position, ``(1, 0)``, or the Shpilkin test of calibrate's replicate r at manipulation block 1's targets,
    ``(r, 0, 12)``, both once were); every consumer drew, in this process, from its own root of the seed; and the
    engine drew its timeline streams, the timeline calibration its null, compare its ledger and infer's simulations
    their timelines. Below OBSERVED, the forensic tests of returns drew on branches 0 and 1 only and ``simkit
    timeline`` on its own: its figure and station-level test once drew at the calibration's replicates 1 and 2,
    ``(TIMELINE_NULL, 1)`` and ``(TIMELINE_NULL, 2)``."""
    run_consumers(tmp_path, capsys, monkeypatch)
    assert {position: sorted(lines) for position, lines in drawn.items() if len(lines) > 1} == {}
    assert {key[1] for entropy, key in drawn if entropy == SEED and key[:1] == (streams.OBSERVED,)} == {
        0, 1, streams.OBSERVED_TIMELINE}
    assert {(SEED, streams.observed_timeline_key(part)) for part in (
        streams.TIMELINE_TESTS, streams.TIMELINE_FIGURE, streams.TIMELINE_STATIONS)} <= drawn.keys()
    roots = {key[0] for entropy, key in drawn if entropy == SEED and key}
    assert {streams.EXIT_POLL, streams.MISREPORT, streams.STATION_SAMPLE, streams.REPLICATE_TESTS, streams.OBSERVED,
            streams.POWER, streams.INFER_SIMULATION, streams.INFER_DRAW} <= roots
    assert {(SEED, (0, 0, streams.FAST_KERNEL)), (SEED, (0, 0, streams.TIMELINE)),
            (SEED, (0, 0, streams.TIMELINE_REGIONAL)), (SEED, (0, 0, streams.TIMELINE_ADDED, 1)),
            (SEED, (streams.TIMELINE_NULL, 2)), ((SEED, streams.LEDGER), ())} <= drawn.keys()
    assert (inference.simulation_seed(SEED, smc.PILOT_STAGE, 0), (0, 0, streams.TIMELINE)) in drawn
