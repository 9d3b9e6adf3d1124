"""scripts/examples.py: its commands are the ones the docs name, a failing simkit is exit 2 (1 is a stale
example), and a SIGTERM stops simkit and removes the temporary folder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import REPO, load_script

SCRIPT = REPO / "scripts" / "examples.py"



def _words(text: str) -> str:
    return " ".join(text.split())


def test_each_example_is_made_by_the_command_the_readme_and_performance_page_name():
    examples = load_script("examples")
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    performance = _words((REPO / "docs" / "performance.md").read_text(encoding="utf-8"))
    for arguments in examples.EXAMPLES.values():
        command = "simkit " + " ".join(arguments)
        assert command in readme, command
        assert command in performance, command


def test_a_failing_simkit_is_exit_2_with_its_error(monkeypatch, capsys):
    examples = load_script("examples")
    monkeypatch.setattr(examples, "EXAMPLES", {"missing": ["report", "missing.toml", "-o", "examples/missing.html"]})
    with pytest.raises(SystemExit) as stop:
        examples.main(["--check"])
    assert stop.value.code == examples.SIMKIT_FAILED == 2
    err = capsys.readouterr().err
    assert err.startswith("simkit report missing.toml -o ") and err.endswith(": exit 2: missing.toml: file not found\n")


def _started(process: psutil.Process, folder, timeout: float = 60.0) -> psutil.Process:
    """The simkit child of ``process`` once it and the temporary folder in ``folder`` exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = process.children()
        if children and list(folder.glob("simkit-examples-*")):
            return children[0]
        time.sleep(0.1)
    raise AssertionError("examples.py started no simkit")


def test_a_terminated_check_stops_simkit_and_removes_its_folder(tmp_path):
    script = subprocess.Popen([sys.executable, str(SCRIPT), "--check", "kazakhstan-2022"], cwd=REPO,
                              env={**os.environ, "TMPDIR": str(tmp_path)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        child = _started(psutil.Process(script.pid), tmp_path)
        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=60) == 128 + signal.SIGTERM
        assert not child.is_running()
        assert not list(tmp_path.glob("simkit-examples-*"))
    finally:  # whatever is left of the script's process group (its own session)
        try:
            os.killpg(script.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        script.wait()


def test_the_script_loads_without_psutil():
    """psutil is in the test extra only: remaking the examples must not need it."""
    code = ("import sys, runpy; sys.modules['psutil'] = None; "
            f"runpy.run_path({str(SCRIPT)!r}, run_name='examples_script')")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert loaded.returncode == 0, loaded.stderr
