"""Command-line value types and the flags several commands share, each defined once with its help text.

Counts are checked in their stated ranges, so a bad value is a one-line usage error (exit 2) before any work
starts. Defaults come from the library (the engine's block size, the forensic null's draws), never restated.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from simkit.config.load import parse_value
from simkit.config.sweeps import swept_key
from simkit.errors import InputError, one_line
from simkit.forensics import TESTS, parse_tests
from simkit.outputs import OVERWRITE_HELP
from simkit.paths import join_path, split_path

#: worker processes or threads: more than any machine simkit runs on has cores
MAX_WORKERS = 1024

def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive(text: str) -> int:
    """An integer of at least 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    """An integer of at least 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def workers(text: str) -> int:
    """A number of worker processes or threads: 1 … :data:`MAX_WORKERS`."""
    value = positive(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, got {value}")
    return value


#: every library parameter that an error may name (:attr:`simkit.errors.InputError.parameters`) -> what sets it
#: on the command line: its flag, or the positional argument it fills
PARAMETER_FLAGS = {"block_size": "--block-size", "scheduler": "--scheduler", "workers": "--workers",
                   "resume": "--resume", "overwrite": "--overwrite", "replicates": "--replicates", "keep": "--keep",
                   "processes": "--processes", "output": "-o", "config": "CONFIG", "returns": "--returns",
                   "preset": "--preset", "map": "--map", "map_path": "--map", "format": "--format", "overrides": "--set",
                   "allow_inconsistent": "--allow-inconsistent", "particles": "--particles", "seed": "--seed",
                   "kernel": "--kernel", "draws": "--draws", "power": "--power", "null": "--null", "tests": "--tests",
                   "leader": "--leader", "aggregate": "--aggregate"}


#: a value a message quotes (:func:`simkit.errors.shown`: a user's text, a candidate's name): from a quote that
#: follows no letter (not an apostrophe) to the same quote unescaped, or to the ``…`` that cuts the value short
QUOTED = r"""(?<!\w)(?P<quote>['"])(?:\\.|(?!(?P=quote))[^\\…])*(?:(?P=quote)|…)"""


def as_flags(message: str, flags: dict[str, str], files: Iterable[str] = ()) -> str:
    """A library message naming parameters, each parameter named as its flag: a whole word (not part of a path
    or a dotted name, nor inside quoted text, :data:`QUOTED`) followed by a colon, a comma or a space
    (``resume: kernel differs`` -> ``--resume: kernel differs``; ``leader: 'leader x'`` -> ``--leader: 'leader
    x'``), alternatives joined by slashes (``preset/map`` -> ``--preset/--map``); ``name=True`` is the flag alone
    (``give overwrite=True`` -> ``give --overwrite``), ``name=VALUE`` the flag and its value (``replicates=500``
    -> ``--replicates 500``). The file a message is about, one of ``files`` (the user's file names, as the
    command was given them) at its start before a colon (the library's ``file: field: problem``), is the user's
    text and stays as it is: ``output: output: is a folder`` -> ``output: -o: is a folder``."""
    names = "|".join(map(re.escape, sorted(flags, key=len, reverse=True)))
    subject = "|".join(map(re.escape, sorted(set(files), key=len, reverse=True)))
    kept = QUOTED + (rf"|^(?:{subject})(?=:)" if subject else "")

    def flag(match: re.Match) -> str:
        if match.group("kept"):
            return match.group("kept")
        shown = "/".join(flags[name] for name in match.group("names").split("/"))
        return shown + (" " if match.group("value") == "=" else "")

    return re.sub(rf"(?P<kept>{kept})|(?<![\w./\\-])(?P<names>(?:{names})(?:/(?:{names}))*)"
                  rf"(?P<value>=True\b|=|(?=[:, ]))", flag, message)


def _destination(flag: str) -> str:
    """The attribute of the parsed arguments that ``flag`` sets (``--block-size`` -> ``block_size``, ``-o`` ->
    ``output``, ``CONFIG`` -> ``config``)."""
    return "output" if flag == "-o" else flag.lstrip("-").replace("-", "_").lower()


def shown_as_flags(error: InputError, args: argparse.Namespace) -> str:
    """The message of a library error as the command ``args`` were parsed for shows it: each parameter the
    error names (:attr:`~simkit.errors.InputError.parameters`) that the command sets by a flag, as that flag
    (a parameter the command does not set, such as one read from a config file, stays as the library named it);
    a file of the command that the message is about stays as the user named it (:func:`as_flags`,
    :func:`file_names`)."""
    named = {name: PARAMETER_FLAGS[name] for name in error.parameters
             if name in PARAMETER_FLAGS and hasattr(args, _destination(PARAMETER_FLAGS[name]))}
    return as_flags(str(error), named, file_names(args)) if named else str(error)


def file_names(args: argparse.Namespace) -> list[str]:
    """The files and folders the command ``args`` were given (its ``Path`` arguments, alone or in a list), as a
    library message writes them: the path as given (``str``) and its absolute form."""
    values = [v for value in vars(args).values() for v in (value if isinstance(value, list) else [value])]
    return [text for path in values if isinstance(path, Path) for text in (str(path), str(path.resolve()))]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (``simkit run: argument …``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {one_line(message)}\n")


# -- config overrides: --set and --sweep ------------------------------------------------------------------

@dataclass(frozen=True)
class Override:
    """One ``--set`` or ``--sweep``: the flag and its text as typed (for errors), the dotted path it sets
    (``sweep.PATH`` for a sweep) and the value."""

    flag: str
    text: str
    path: str
    value: object


def _segments(key: str, flag: str, text: str) -> list[str]:
    """A dotted key's segments, quoted segments allowed (``sweep."turnout.dispersion"``, :mod:`simkit.paths`)."""
    try:
        return split_path(key)
    except KeyError as error:
        raise InputError(f"{flag} {text}: {error.args[0]}") from None


def parse_set(text: str) -> Override:
    """``--set dotted.key=value``: the value in TOML syntax when it parses, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set {text}: expected dotted.key=value")
    return Override("--set", text, join_path(_segments(key.strip(), "--set", text)), parse_value(value.strip()))


def parse_sweep(text: str) -> Override:
    """``--sweep dotted.path=V1,V2,...``: the values swept over one numeric field."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise InputError(f"--sweep {text}: expected dotted.path=V1,V2,...")
    segments = _segments(key.strip(), "--sweep", text)
    parsed = [parse_value(value.strip()) for value in values.split(",")]
    for value in parsed:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"--sweep {text}: {value!r}: not a number")
    return Override("--sweep", text, join_path(["sweep", *segments]), parsed)


def overrides(args: argparse.Namespace) -> list[Override]:
    """The ``--set`` and ``--sweep`` flags of a command, in the order given (``--sweep`` after ``--set``); a field
    swept by two flags is refused (each flag is one sweep dimension: the second would silently replace the first)."""
    flags = [parse_set(text) for text in args.set] + [parse_sweep(text) for text in args.sweep]
    swept: dict[str, Override] = {}
    for flag in flags:
        key = swept_key(flag.path)
        if key is None:
            continue
        if key in swept:
            first = swept[key]
            raise InputError(f"{flag.flag} {flag.text}: {key} is swept by {first.flag} {first.text} too (one flag per "
                             "sweep dimension)")
        swept[key] = flag
    return flags


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """``--set`` and ``--sweep``, for every command that reads a config."""
    parser.add_argument("--set", action="append", default=[], metavar="dotted.key=value",
                        help="override a config field (TOML value; repeatable); a sweep too: "
                             "--set 'sweep.\"turnout.dispersion\"=[0.3,0.6]'")
    parser.add_argument("--sweep", action="append", default=[], metavar="dotted.path=V1,V2,...",
                        help="sweep a numeric config field over these values (repeatable: one sweep dimension "
                             "each; kept beside the config's own sweeps)")


# -- flags shared by several commands ----------------------------------------------------------------------

def add_replicates(parser: argparse.ArgumentParser, what: str = "simulated elections",
                   kind: Callable[[str], int] = int) -> None:
    """``--replicates`` (checked by the config's bounds: an error names ``run.replicates``); ``kind`` parses it
    (:func:`positive` where a command may run without a config to check it)."""
    parser.add_argument("--replicates", type=kind, metavar="N", help=f"{what} (default: the config's run.replicates)")


def add_seed(parser: argparse.ArgumentParser, default: int | None = None, what: str = "every random draw") -> None:
    """``--seed``: the config's ``run.seed`` when ``default`` is None."""
    shown = "the config's run.seed" if default is None else str(default)
    parser.add_argument("--seed", type=int, default=default, metavar="S", help=f"seed of {what} (default: {shown})")


def add_output(parser: argparse.ArgumentParser, what: str) -> None:
    """``-o`` and ``--overwrite`` (the rules of :mod:`simkit.outputs`)."""
    parser.add_argument("-o", "--output", type=Path, help=f"write {what}")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_plot(parser: argparse.ArgumentParser, figures: str) -> None:
    """``--plot DIR``: the same on every command, a folder (made if absent) of named figures."""
    parser.add_argument("--plot", type=Path, metavar="DIR", help=f"write the figures into the folder DIR ({figures})")


def add_quiet(parser: argparse.ArgumentParser, what: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=what)


def add_selection(parser: argparse.ArgumentParser) -> None:
    """``--scenario`` and ``--point``: which part of a simulated result a command reads."""
    parser.add_argument("--scenario", metavar="NAME",
                        help="scenario of a simulated result (needed when it holds more than one)")
    parser.add_argument("--point", type=non_negative, metavar="K",
                        help="sweep point of a simulated result: its flat index, 0-based, in the order the summary "
                             "lists them (needed when it holds more than one)")


def add_tests(parser: argparse.ArgumentParser) -> None:
    """``--tests ID,...``: which forensic tests run (read by :func:`chosen_tests`)."""
    parser.add_argument("--tests", help=f"comma-separated test ids (default: all): {', '.join(TESTS)}")


def chosen_tests(text: str | None) -> list[str] | None:
    """The test ids of ``--tests`` (None when the flag is absent: every test); an unknown id or an empty list
    is a one-line error naming the flag."""
    if text is None:
        return None
    try:
        return parse_tests(text)
    except ValueError as error:
        raise InputError(f"--tests: {error}") from None


def add_null(parser: argparse.ArgumentParser, nulls: tuple[str, ...], default: str, help: str) -> None:
    """``--null NAME``: one of ``nulls``, checked by the command with
    :func:`simkit.forensics.core.check_null` (``--null: x: unknown name (choose from …)``, the library's words
    with the flag, like ``--tests``), not by argparse's choices."""
    parser.add_argument("--null", default=default, metavar="|".join(nulls), help=help)


def add_draws(parser: argparse.ArgumentParser, default: int, what: str = "null draws per test") -> None:
    parser.add_argument("--draws", type=int, default=default, help=f"{what} (default {default:,})")
