"""airspeed-velocity benchmarks: the engine, the kernels, the exit-poll draw and the forensic tests.

Workload: ``benchmarks/workload.toml`` (Kazakhstan 2022 at full scale: 11,953,465 voters, 10,101 stations,
8 outcomes, logit-normal turnout, Dirichlet preferences, rho = 0). Timed engine runs use
:data:`REPLICATES` replicates (so a ``time_*`` result divided by it is seconds per replicate). The
exit-poll and forensic benchmarks skip (``NotImplementedError`` in ``setup``, asv's skip signal) when
their modules are absent. :func:`use_smoke_sizes` shrinks everything for the CI smoke test.

Run: ``cd benchmarks && asv run --python=same --quick``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

WORKLOAD = Path(__file__).resolve().with_name("workload.toml")
#: config overrides applied to the workload (none: full scale)
OVERRIDES: dict = {}
#: replicates per timed engine run
REPLICATES = 32
#: draws of the resampled forensic null
NULL_DRAWS = 200
#: ``simkit calibrate`` benchmark: replicates per scenario, null draws per test, tests (None: all)
CALIBRATE_REPLICATES, CALIBRATE_DRAWS, CALIBRATE_TESTS = 2, 19, None
SEED = 7


def use_smoke_sizes() -> None:
    """Tiny sizes (400 stations, 2 replicates, 10 null draws; calibrate with two quick tests) for the CI
    smoke test."""
    global OVERRIDES, REPLICATES, NULL_DRAWS, CALIBRATE_REPLICATES, CALIBRATE_DRAWS, CALIBRATE_TESTS
    OVERRIDES = {"electorate.registered": 400_000, "electorate.stations": 400}
    REPLICATES, NULL_DRAWS = 2, 10
    CALIBRATE_REPLICATES, CALIBRATE_DRAWS, CALIBRATE_TESTS = 2, 4, ["zero_five", "correlation"]


def _config():
    import simkit

    return simkit.load_config(WORKLOAD, OVERRIDES or None)


def _election():
    """The simulated election of :func:`_election_arrays` as a forensic ``Election`` (stations without ballots
    left out, as :func:`simkit.forensics.election` leaves them out of real returns)."""
    try:
        from simkit.forensics.core import Election
    except ImportError as missing:
        raise NotImplementedError(f"simkit.forensics is absent: {missing}") from None
    run, ballots, votes = _election_arrays()
    electorate = run.electorate
    cast = ballots > 0
    return Election(registered=electorate.registered[cast], ballots=ballots[cast], votes=votes[cast],
                    options=tuple(run.config.option_names), leader=0,
                    region=np.array(electorate.region_names)[electorate.region_index][cast],
                    station_id=np.asarray(electorate.station_ids)[cast])


def _election_arrays():
    """One simulated honest election of the workload: (electorate, plan, ballots (station,), votes
    (station, option))."""
    from simkit.engine import run as engine

    run = engine.prepare(_config(), replicates=1)
    ballots, votes = engine.honest_replicate(run.plans[0], run.electorate, SEED, 0)
    return run, ballots, votes


class Engine:
    """``simkit.simulate`` on the workload, summary-only and full station-level output (in memory)."""

    params = (["summary", "full"],)
    param_names = ["keep"]
    timeout = 600

    def setup(self, keep):
        self.cfg = _config()

    def time_simulate(self, keep):
        import simkit

        simkit.simulate(self.cfg, replicates=REPLICATES, seed=SEED, keep=keep)

    def peakmem_simulate(self, keep):
        import simkit

        simkit.simulate(self.cfg, replicates=REPLICATES, seed=SEED, keep=keep)


class HonestReplicate:
    """One honest election on one thread: the numpy path and the fused numba kernel."""

    params = (["numpy", "numba"],)
    param_names = ["kernel"]

    def setup(self, kernel):
        from simkit.engine import run as engine, kernels

        if kernel == "numba":
            kernels.warm_up()  # compile (or load the on-disk cache) outside the timing
        self.run = engine.prepare(_config(), replicates=1)
        self.draw = lambda replicate: engine.honest_replicate(self.run.plans[0], self.run.electorate, SEED,
                                                              replicate, kernel=kernel)

    def time_honest_replicate(self, kernel):
        self.draw(1)


class ExitPoll:
    """One exit poll (simkit.model.exit_poll) drawn from one simulated election of the workload."""

    params = (["simple", "pps"],)
    param_names = ["selection"]

    def setup(self, selection):
        try:
            from simkit.model import exit_poll
        except ImportError as missing:
            raise NotImplementedError(f"simkit.model.exit_poll is absent: {missing}") from None
        run, _, self.votes = _election_arrays()
        self.registered = run.electorate.registered
        self.region_index = run.electorate.region_index
        valid = np.array([name != "invalid" for name in run.config.option_names])
        self.design = exit_poll.PollDesign(n_stations=min(300, run.electorate.n_stations // 2), valid=valid,
                                           selection=selection, by_region=True, respondents="fixed",
                                           per_station=60, response_rate=0.8)
        self.module = exit_poll

    def time_draw_exit_poll(self, selection):
        self.module.draw_exit_poll(self.votes, self.registered, self.design, np.random.default_rng(SEED),
                                   self.region_index)

    def peakmem_draw_exit_poll(self, selection):
        self.module.draw_exit_poll(self.votes, self.registered, self.design, np.random.default_rng(SEED),
                                   self.region_index)


class IntegerPercent:
    """The integer-percentage test (simkit.forensics.integer.percent) on one simulated election: the
    resampled null (:data:`NULL_DRAWS` draws) and the exact Poisson-binomial null (the default)."""

    def setup(self):
        self.election = _election()
        from simkit.forensics.integer import percent as integer_percent

        self.module = integer_percent

    def time_resampled_null(self):
        self.module.run(self.election, draws=NULL_DRAWS, rng=SEED, method="resample")

    def time_exact_null(self):
        self.module.run(self.election, method="exact")

    def peakmem_resampled_null(self):
        self.module.run(self.election, draws=NULL_DRAWS, rng=SEED, method="resample")


class KlimekFit:
    """Klimek's fraud model fitted to one simulated election: by histogram distance (with its bootstrap
    bounds and no-fraud test, textbook null) and by likelihood (its fits and statistic against given null
    draws: it has no textbook null, and the draws are not timed)."""

    params = (["klimek", "klimek_ml"],)
    param_names = ["test"]

    def setup(self, test):
        self.election = _election()
        from simkit.forensics import TESTS

        self.module = TESTS[test]
        self.null = ({"null": "simulated", "null_statistics": np.zeros(self.module.MAX_NULL_DRAWS)}
                     if test == "klimek_ml" else {})

    def time_fit(self, test):
        self.module.run(self.election, rng=SEED, **self.null)


class Calibrate:
    """``simkit calibrate`` on the workload with one stuffing scenario: every test under both nulls,
    :data:`CALIBRATE_REPLICATES` replicates per scenario, :data:`CALIBRATE_DRAWS` null draws (minutes at full
    scale: the Klimek fits dominate)."""

    timeout = 1800

    def setup(self):
        import simkit

        try:
            from simkit.forensics.calibrate import calibration_table
        except ImportError as missing:
            raise NotImplementedError(f"simkit.forensics.calibrate is absent: {missing}") from None
        import tomli_w

        raw = _config().raw()
        raw["manipulation"] = [{"name": "stuffing", "kind": "ballot_stuffing", "beneficiary": "tokayev",
                                "f_incremental": 0.1, "f_extreme": 0.01, "theta": 0.1, "alpha": 2.0}]
        raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuffing"]}]
        self.config = simkit.parse_config(tomli_w.dumps(raw), source="benchmark calibrate config")
        self.table = calibration_table

    def time_calibrate(self):
        self.table(self.config, replicates=CALIBRATE_REPLICATES, draws=CALIBRATE_DRAWS, seed=SEED,
                   tests=CALIBRATE_TESTS)


class StreamedRun:
    """``simkit run -o RESULT.zarr`` on the workload with full station-level output, in this process (one
    worker): blocks of :data:`simkit.engine.resources.BLOCK_BYTES` streamed to zarr, so ``peakmem_`` is the same at
    both numbers of replicates (``benchmarks/memory.py`` checks the commands, worker processes included)."""

    params = ([8, 64],)
    param_names = ["replicates"]
    timeout = 1200

    def setup(self, replicates):
        import tempfile

        from simkit.engine import run as engine

        self.folder = tempfile.TemporaryDirectory(prefix="simkit-asv-")
        self.run = engine.prepare(_config(), replicates=max(1, replicates * REPLICATES // 32), seed=SEED, keep="full")

    def teardown(self, replicates):
        self.folder.cleanup()

    def peakmem_stream_to_zarr(self, replicates):
        from simkit import io
        from simkit.engine import run as engine

        from .compare import announced  # the replicates announced as simkit run does, where write_blocks takes them

        static = engine.annotate(engine.static_dataset(self.run), self.run.config)
        io.write_blocks(static, engine.iter_blocks(self.run, workers=1), Path(self.folder.name) / "run.zarr",
                        **announced(io, self.run.replicates))
