"""Fuzzing the shipped configs: a leaf of every config in configs/ mutated (wrong types, NaN, ±inf, 0, negatives,
huge values, empty and control-character strings) or a block removed or duplicated, then ``simkit validate`` and,
for some valid mutants, a one-replicate ``simkit run`` on a small electorate.

Every outcome must be exit 0 or exit 2; on 2, every stderr line names the config file and a field, on one line;
never a traceback or a warning; never an output or staging path left by a refused or failed run. Fixed seed
(``derandomize``) and a bounded number of examples, so the harness is the same test in CI every time.
"""
from __future__ import annotations

import math
import os
import signal
import warnings
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkit.cli.main import main
from simkit.config.load import _parse_toml, _resolve_paths

from conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.toml"))
#: mutants tried: fewer in CI (the same assertions on each; the first examples of the fixed derandomized sequence)
EXAMPLES = 60 if os.environ.get("CI") == "true" else 200
#: seconds one example may take (validate and a one-replicate run take well under one)
EXAMPLE_SECONDS = 60
#: the electorate of a fuzzed run: small, so one replicate takes well under a second
SMALL_ELECTORATE = {"registered": 1_500_000, "stations": 1200}  # the polls' stations stay below 1200


def resolved_raw(path: Path) -> dict:
    """A shipped config's raw data with ``extends`` merged and data paths made absolute (so a mutant can be
    written anywhere)."""
    raw = _parse_toml(path.read_text(encoding="utf-8"), str(path), path.parent)
    _resolve_paths(raw, path.parent)
    return raw


RAW = {path.name: resolved_raw(path) for path in CONFIGS}


def leaves(node, trail=()):
    """Every (trail of keys and indices, value) under ``node`` that is a scalar, a list of scalars or a table."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield trail + (key,), value
        if isinstance(value, (dict, list)):
            yield from leaves(value, trail + (key,))


def blocks(raw):
    """Every (trail, list) of tables in ``raw`` ([[options]], [[manipulation]], …)."""
    return [(trail, value) for trail, value in leaves(raw)
            if isinstance(value, list) and value and all(isinstance(item, dict) for item in value)]


CONTROL = "".join(map(chr, range(0, 32))) + "\x7f\u2028\u202e"
odd_text = st.one_of(st.just(""), st.text(alphabet=CONTROL, min_size=1, max_size=4),
                     st.text(alphabet=st.characters(), max_size=6))
bad_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -1, -1.5, 1, 2**31, 2**63 - 1, 2**63, -(2**63),
                     10**20, 1e300, -1e300, 5e-324, True, False]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    st.lists(st.one_of(st.floats(allow_nan=True), st.integers(-5, 10**12), odd_text), max_size=3),
    st.just({}), st.just({"x": 1}),
)


def set_at(raw: dict, trail: tuple, value) -> None:
    node = raw
    for key in trail[:-1]:
        node = node[key]
    node[trail[-1]] = value


def remove_at(raw: dict, trail: tuple) -> None:
    node = raw
    for key in trail[:-1]:
        node = node[key]
    del node[trail[-1]]


@st.composite
def mutants(draw):
    """(config name, mutated raw config, what was done)."""
    import copy

    name = draw(st.sampled_from(sorted(RAW)))
    raw = copy.deepcopy(RAW[name])
    action = draw(st.sampled_from(["set", "set", "scale", "scale", "remove", "duplicate"]))
    if action == "duplicate" and blocks(raw):
        trail, items = draw(st.sampled_from(blocks(raw)))
        items.append(copy.deepcopy(draw(st.sampled_from(items))))
        return name, raw, f"duplicate a block of {'.'.join(map(str, trail))}"
    if action == "scale":  # a legal-looking number, often at or past a bound: the run must still behave
        numbers = [(trail, value) for trail, value in leaves(raw)
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        trail, value = draw(st.sampled_from(numbers))
        factor = draw(st.sampled_from([0, 1e-9, 0.01, 0.5, 2, 10, 100, 1e4, 1e9]))
        scaled = type(value)(value * factor) if isinstance(value, float) or factor == int(factor) else value * factor
        set_at(raw, trail, scaled)
        return name, raw, f"scale {trail} by {factor}"
    trail, _ = draw(st.sampled_from(list(leaves(raw))))
    if action == "remove":
        remove_at(raw, trail)
        return name, raw, f"remove {trail}"
    value = draw(bad_values)
    set_at(raw, trail, value)
    return name, raw, f"set {trail} = {value!r}"


def check_outcome(code: int, err: str, config: Path, out: Path | None = None, flags: tuple[str, ...] = ()) -> None:
    """Exit 0 or 2; on 2, every line names the config, the output or (for a problem in a field a ``--set`` of
    the command set) that flag as given in ``flags``."""
    assert code in (0, 2), err
    assert "Traceback" not in err and "Warning" not in err, err
    if out is not None:
        staging = [p.name for p in out.parent.glob(f".{out.name}*")]
        assert not staging, staging
    if code == 0:
        return
    lines = err.strip().splitlines()
    assert lines, "exit 2 without a message"
    for line in lines:
        if line.startswith("simkit: "):  # a note (stale staging cleaned), not the error
            continue
        assert (line.startswith(f"{config}: ") or line.startswith(f"{out}: ")
                or any(line.startswith(f"--set {flag} (on {config}): ") for flag in flags)), line
        assert line.isprintable(), repr(line)
    if out is not None:
        assert not out.exists()


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(mutant=mutants(), also_run=st.booleans())
def test_mutated_configs_fail_cleanly_or_run(tmp_path_factory, capsys, mutant, also_run):
    name, raw, _ = mutant
    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(EXAMPLE_SECONDS)  # a hang (an unbounded loop) fails the example instead of stalling the suite
    try:
        run_mutant(tmp_path_factory, capsys, name, raw, also_run)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def too_slow(signum, frame):
    raise AssertionError(f"one example took more than {EXAMPLE_SECONDS} s: a hang")


def run_mutant(tmp_path_factory, capsys, name, raw, also_run):
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / name
    try:
        config.write_text(tomli_w.dumps(raw), encoding="utf-8")
    except (TypeError, ValueError):  # tomli_w cannot write this value (a nested None, …): not a config
        return
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["validate", str(config)])
    check_outcome(code, capsys.readouterr().err, config)
    electorate = raw.get("electorate")
    if code != 0 or not also_run or not (isinstance(electorate, dict) and electorate.get("source") == "synthetic"):
        return
    out = folder / "out.zarr"
    small = [f"electorate.{key}={value}" for key, value in SMALL_ELECTORATE.items()]
    small += [f"electorate.regions.{region['name']}.stations={max(1, 1200 // len(electorate['regions']) // 2)}"
              for region in electorate["regions"] if "stations" in region]
    small.append('run.keep="summary"')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["run", str(config), "--replicates", "1", "--quiet", "--processes", "1", "-o", str(out),
                     *(f"--set={assignment}" for assignment in small)])
    check_outcome(code, capsys.readouterr().err, config, out, tuple(small))
