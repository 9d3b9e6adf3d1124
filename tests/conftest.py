"""Shared test fixtures: small configs built in code, so each test states what it needs (the exact-law check the
sampler tests share lives in ``benchmarks/exact_law.py``, which ``benchmarks/chain_variants.py`` uses too)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (a fresh one each call: the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_config_dict(*, stations=12, registered=6000, options=("a", "b", "c"), shares=(0.5, 0.3, 0.2),
                      turnout_model="logit_normal", turnout_mean=0.6, turnout_dispersion=0.4,
                      preference_model="dirichlet", preference_dispersion=30.0, rho=0.0, regional_sd=0.0,
                      invalid=False, replicates=20, seed=1, keep="full", regions=(("north", 0.4), ("south", 0.6)),
                      sweep=None) -> dict:
    """A raw config dict for a small synthetic election."""
    option_blocks = [{"name": name} for name in options]
    if invalid:
        option_blocks[-1]["kind"] = "invalid"
    raw = {
        "title": "test",
        "electorate": {"source": "synthetic", "registered": registered, "stations": stations, "seed": 3,
                       "regions": [{"name": n, "register_share": s} for n, s in regions]},
        "options": option_blocks,
        "turnout": {"model": turnout_model, "mean": turnout_mean, "dispersion": turnout_dispersion},
        "preferences": {"model": preference_model, "shares": dict(zip(options, shares)),
                        "dispersion": preference_dispersion, "rho": rho, "regional_sd": regional_sd},
        "run": {"replicates": replicates, "seed": seed, "keep": keep},
    }
    if sweep:
        raw["sweep"] = sweep
    return raw


@pytest.fixture(autouse=True)
def _no_disk_syncs(monkeypatch):
    """``os.fsync`` checks its descriptor (``os.fstat``: a closed one still raises) but leaves the disk alone, in every
    test of this process: the outputs' placement syncs each file and folder it writes (about 30 ms a sync on an
    ext4 CI disk), and the fault-injection tests of ``test_kill.py`` place thousands of outputs, each stopped at
    another bytecode; a power cut cannot be tested, and the Python code around each sync runs as before (the
    order of the syncs is checked in ``test_kill.py``, which wraps this ``os.fsync``). Commands run in a
    subprocess sync for real."""
    monkeypatch.setattr(os, "fsync", lambda descriptor: os.fstat(descriptor) and None)


@pytest.fixture
def repo() -> Path:
    return REPO


#: the map of a station timeline file (two reports before the final count) for `simkit timeline STATIONS --map MAP`
TIMELINE_MAP = """[timeline]
opening = "09:00"
closing = "20:00"
reports = ["14:00", "18:00"]
[columns]
region = "region"
registered = "registered"
reports = ["b14", "b18"]
final = "final"
"""
