"""Fault injection for the commands that write a result besides ``run``: ``forensics -o``, ``compare -o``,
``infer -o`` and ``report -o`` killed (SIGKILL, SIGTERM) while they compute. Afterwards: no target or a
complete one, no process of the command (its process group) alive a second later, no staging path after the
next run on the same target. Both signals are sent to two runs started together, to keep the time small."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import tomli_w

import simkit
from simkit.cli.main import main

from conftest import small_config_dict
from forensics_helpers import honest_dataset
from test_kill import environment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, SIGKILL")

MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'
#: seconds to wait for a command to reach its computation (imports are slow on a loaded CI machine)
START_TIMEOUT = 60


def forensics_inputs(folder: Path) -> tuple[list[str], list[str]]:
    """Returns of 600 stations; every test's simulated null at 6,000 draws runs in a process pool for many
    seconds (one test alone stops early: last_digit's null is capped)."""
    ds = honest_dataset(600, seed=50)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in
                                           zip(ds["registered"].values, ds["ballots"].values, ds["votes"].values)]
    (folder / "r.csv").write_text("\n".join(lines) + "\n")
    (folder / "m.toml").write_text(MAP)
    common = ["forensics", str(folder / "r.csv"), "--map", str(folder / "m.toml"), "--null", "simulated",
              "--power", "0"]
    return common + ["--draws", "6000"], common + ["--tests", "last_digit", "--draws", "20"]


def compare_inputs(folder: Path) -> tuple[list[str], list[str]]:
    raw = small_config_dict(stations=60, registered=60_000, options=("a", "b", "c"), shares=(0.6, 0.3, 0.1))
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20,
                         "published": {"a": 0.62, "b": 0.28, "c": 0.10}}]
    (folder / "c.toml").write_text(tomli_w.dumps(raw))
    common = ["compare", str(folder / "c.toml"), "--ledger-points", "0"]
    return common + ["--replicates", "200000"], common + ["--replicates", "20"]


def report_inputs(folder: Path) -> tuple[list[str], list[str]]:
    raw = small_config_dict(stations=60, registered=60_000, options=("a", "b", "c"), shares=(0.6, 0.3, 0.1))
    (folder / "c.toml").write_text(tomli_w.dumps(raw))
    common = ["report", str(folder / "c.toml"), "--power", "0", "--quiet"]
    return common + ["--replicates", "200000"], common + ["--replicates", "4"]


def infer_inputs(folder: Path) -> tuple[list[str], list[str]]:
    from simkit import inference
    from simkit.config.inference import InferConfig

    from test_infer import SHARE, coercion_config

    prior = InferConfig(path=SHARE, prior="uniform", low=0.0, high=0.3)
    raw = inference.simulated_observed(coercion_config(stations=12), [prior], [0.1], seed=3).raw()
    raw["infer"] = [prior.model_dump(exclude_none=True)]
    settings = {"pilot": 40, "noise_replicates": 10, "max_generations": 2, "predictive": 10, "min_ess": 5}
    (folder / "long.toml").write_text(tomli_w.dumps({**raw, "inference": {**settings, "particles": 100_000}}))
    (folder / "short.toml").write_text(tomli_w.dumps({**raw, "inference": {**settings, "particles": 40}}))
    return (["infer", str(folder / "long.toml"), "--quiet", "--workers", "2"],
            ["infer", str(folder / "short.toml"), "--quiet", "--workers", "1"])


def complete(path: Path) -> bool:
    if path.suffix in (".nc", ".zarr"):
        simkit.open_result(path).load()
        return True
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        json.loads(text)
    else:
        assert text.rstrip().endswith("</html>"), text[-200:]
    return True


def group_members(pgid: int) -> list[psutil.Process]:
    """Running processes of process group ``pgid`` (zombies waiting to be reaped do not count)."""
    found = []
    for process in psutil.process_iter():
        try:
            if psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE and \
                    os.getpgid(process.pid) == pgid:
                found.append(process)
        except (psutil.Error, ProcessLookupError):
            pass
    return found


def running(process: subprocess.Popen, seconds: float) -> bool:
    """Wait until ``process`` and its workers have used ``seconds`` of CPU time (imports done, computing)."""
    deadline = time.monotonic() + START_TIMEOUT
    watched = psutil.Process(process.pid)
    while time.monotonic() < deadline and process.poll() is None:
        try:
            used = sum(sum(p.cpu_times()[:2]) for p in [watched, *watched.children(recursive=True)])
            if used >= seconds:
                return True
        except psutil.Error:
            break
        time.sleep(0.05)
    return False


COMMANDS = {"forensics": (forensics_inputs, "out.nc"), "compare": (compare_inputs, "out.json"),
            "report": (report_inputs, "out.html"), "infer": (infer_inputs, "out.nc")}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_killed_command_leaves_no_process_and_nothing_after_the_next_run(command, tmp_path, capsys):
    make_inputs, name = COMMANDS[command]
    long_args, short_args = make_inputs(tmp_path)
    runs = {}
    for signum in (signal.SIGKILL, signal.SIGTERM):
        folder = tmp_path / signum.name
        folder.mkdir()
        runs[signum] = (folder / name, subprocess.Popen(
            [sys.executable, "-m", "simkit.cli.main", *long_args, "-o", str(folder / name)], env=environment(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True))
    try:
        for signum, (target, process) in runs.items():
            # past the imports (about 2 s of CPU): computing; still running when the signal is sent
            assert running(process, 4.0), process.communicate()[1]
            process.send_signal(signum)
        errors = {signum: process.communicate(timeout=60)[1] for signum, (_, process) in runs.items()}
    finally:  # a failed assertion above must not leave the runs behind
        for _, process in runs.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    for signum, (target, process) in runs.items():
        err = errors[signum]
        assert process.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signal.SIGTERM), err
        assert "Traceback" not in err
    deadline = time.monotonic() + 1.0  # every process of each run gone within a second
    while any(group_members(process.pid) for _, process in runs.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    for signum, (target, process) in runs.items():
        assert not group_members(process.pid), (signum.name, group_members(process.pid))
        assert not target.exists() or complete(target)
        if signum == signal.SIGTERM:  # handled like SIGINT: staging removed at once
            assert not list(target.parent.glob(f".{name}*"))
        assert main([*short_args, "-o", str(target), "--overwrite"] if command != "report" else
                    [*short_args, "-o", str(target)]) == 0
        assert not list(target.parent.glob(f".{name}*"))
        assert complete(target)


KILL_IN_WRITE = textwrap.dedent("""
    import os, signal, sys
    from simkit.placement import moves
    def put_in_place(staging, target):  # the result is staged, complete: die before it is moved in
        os.kill(os.getpid(), signal.SIGKILL)
    moves.put_in_place = put_in_place
    from simkit.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_report_killed_while_writing_leaves_no_staging_after_the_next_run(tmp_path):
    _, short_args = report_inputs(tmp_path)
    target = tmp_path / "out.html"
    killed = subprocess.run([sys.executable, "-c", KILL_IN_WRITE, *short_args, "-o", str(target)],
                            env=environment(), capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not target.exists() and list(tmp_path.glob(".out.html.partial-*"))
    assert main([*short_args, "-o", str(target)]) == 0
    assert not list(tmp_path.glob(".out.html*"))
    assert complete(target)
