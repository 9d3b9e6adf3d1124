"""The README's example reports (examples/*.html): remade by the commands docs/performance.md names, or checked.

Without ``--check`` each example is rewritten; with it, nothing under examples/ is written.

    python scripts/examples.py [NAME ...]            # rewrite the examples (default: all of EXAMPLES)
    python scripts/examples.py --check [NAME ...]    # which examples are stale; writes nothing under examples/

Each example is made by its command of :data:`EXAMPLES`, run from the repository's root (so that the report's
provenance records the command as written there). The Russia example reads the shared data folder
(``$SIMKIT_DATA``, else ``../shared/data`` beside the repository: :func:`simkit.data.data_dir`; it takes
minutes). ``--check`` makes each report in a temporary folder and compares its verdict, the text of the report's
short answer (``<section id="answer">``, tags and spacing aside), with the checked-in example's: timestamps and
timings differ between any two runs, the verdict only when the analyses changed.
Prints one line per example; exit code 1 when ``--check`` finds one stale, 2 when simkit fails (its error on
stderr). Terminated (SIGTERM), it stops simkit and removes its temporary folder.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is no installed package: imported from this checkout
from benchmarks.memory import exit_on_terminate, failure, simkit_child  # noqa: E402
from simkit.data import ENV_VAR, data_dir  # noqa: E402

#: name -> the ``simkit`` arguments that make ``examples/NAME.html`` (docs/performance.md, the README)
EXAMPLES = {
    "kazakhstan-2022": ["report", "configs/kazakhstan-2022.toml", "-o", "examples/kazakhstan-2022.html",
                        "--overwrite"],
    "russia-2011": ["report", "--preset", "russia-2011", "-o", "examples/russia-2011.html", "--overwrite"],
}
_ANSWER = re.compile(r'<section id="answer"[^>]*>(.*?)</section>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def verdict(path: Path) -> str:
    """The short answer of the HTML report at ``path``, as plain text on one line ("" when it has none)."""
    found = _ANSWER.search(path.read_text(encoding="utf-8"))
    if found is None:
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", found.group(1))).split())


def target(name: str) -> Path:
    """The checked-in example ``name``: the path its command writes, relative to the repository."""
    arguments = EXAMPLES[name]
    return REPO / arguments[arguments.index("-o") + 1]


#: exit code when simkit fails (1 is a stale example)
SIMKIT_FAILED = 2


def make(arguments: list[str]) -> None:
    """Run ``simkit ARGUMENTS`` from the repository's root with this checkout's simkit
    (:func:`benchmarks.memory.simkit_child`); when it fails, its error on stderr and exit :data:`SIMKIT_FAILED`."""
    with simkit_child(arguments) as child:
        stderr = child.communicate()[1].decode(errors="replace")
    problem = failure(arguments, child, stderr)
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(SIMKIT_FAILED)


def check(name: str, folder: Path) -> bool:
    """Make example ``name`` in ``folder`` and compare its verdict with the checked-in one; True when stale."""
    arguments = list(EXAMPLES[name])
    fresh = folder / target(name).name
    arguments[arguments.index("-o") + 1] = str(fresh)
    make(arguments)
    return not target(name).exists() or verdict(fresh) != verdict(target(name))


def _data_folder_relative() -> None:
    """Hand the children the shared data folder relative to the repository (``$SIMKIT_DATA`` for them), so that the
    reports, which show a file inside their working directory relative to it and any other as given
    (:func:`simkit.errors.shown_path`), quote no path of the machine that made them."""
    found = data_dir()
    if found is not None:
        os.environ[ENV_VAR] = os.path.relpath(found, REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"examples to make (default: all): {', '.join(EXAMPLES)}")
    parser.add_argument("--check", action="store_true",
                        help="say which examples are stale (their verdict differs from a fresh report's); "
                             "write nothing under examples/")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in EXAMPLES]
    if unknown:
        parser.error(f"unknown example {', '.join(unknown)} (choose from {', '.join(EXAMPLES)})")
    names = args.names or list(EXAMPLES)
    _data_folder_relative()
    if not args.check:
        for name in names:
            before = verdict(target(name)) if target(name).exists() else None
            make(EXAMPLES[name])
            change = "verdict unchanged" if verdict(target(name)) == before else "verdict changed"
            print(f"{target(name).relative_to(REPO)}: rewritten ({change})", flush=True)
        return 0
    stale = False
    with tempfile.TemporaryDirectory(prefix="simkit-examples-") as folder:
        for name in names:
            this = check(name, Path(folder))
            said = "STALE (its verdict differs from a fresh report's)" if this else "current"
            print(f"{target(name).relative_to(REPO)}: {said}", flush=True)
            stale |= this
    return 1 if stale else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, exit_on_terminate)
    sys.exit(main())
