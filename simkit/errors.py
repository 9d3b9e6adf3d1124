"""Errors that reach users as one line: ``file: dotted.field: problem``."""
from pathlib import Path
from typing import Any, Iterable

MAX_SHOWN = 40  # characters of a value that an error message repeats
MAX_LISTED = 10  # values of a list that an error message repeats


class InputError(ValueError):
    """Bad user input (config, data file, command-line value). The message is one line.

    Library code names the parameters a caller sets (``overwrite: …``, ``give overwrite=True``), never
    command-line flags; ``parameters`` lists the names the message uses that way, so that the command line
    can show each as its flag (:func:`simkit.cli.arguments.as_flags`) without touching the rest of the text.
    """

    def __init__(self, message: str = "", *, parameters: tuple[str, ...] = ()):
        super().__init__(message)
        self.parameters = tuple(parameters)

    def __reduce__(self):  # keep ``parameters`` across processes (a worker's error reaches the parent pickled)
        return _input_error, (str(self), self.parameters)


def _input_error(message: str, parameters: tuple[str, ...]) -> InputError:
    return InputError(message, parameters=parameters)


def one_line(text: str) -> str:
    """``text`` with its control characters (line breaks, tabs, terminal escapes) written as Python escapes,
    so that a message quoting user input stays on one line and prints nothing but itself."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def shown(value: Any) -> str:
    """``repr`` of a value cut to :data:`MAX_SHOWN` characters (an error repeats no more of a user's file)."""
    return _cut(repr(value))


def shown_path(path: str | Path) -> str:
    """``path`` as a message or a report names it: relative to the current folder when inside it, else as given (so
    that a report quotes no more of the machine it was made on than it needs)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def listed(values) -> str:
    """``values`` for an error message, each as :func:`shown`, the first :data:`MAX_LISTED` of them then how many
    it leaves out (:func:`first_of`): ``'a', 'b'``; of 14 values, the first 10 then ``, and 4 more``. Every list of a
    user's values that an error repeats goes through here (a file's regions or columns, a ballot's options)."""
    return first_of(map(shown, values))


def first_of(texts: Iterable[str], limit: int = MAX_LISTED, count: int | None = None, how_many: bool = True) -> str:
    """``texts`` joined by ``, ``, cut to the first ``limit``, then what the cut leaves out: ``, and 4 more`` (of 14
    with ``limit`` 10), or ``, …`` where the message gives the count beside the list (``how_many`` False).
    ``count``: how many there are when ``texts`` holds only the first of them (else all of ``texts`` are counted).
    Every list a message or table cuts goes through here."""
    texts = list(texts)
    kept = texts[:limit]
    left = (len(texts) if count is None else count) - len(kept)
    if left > 0:
        kept.append(f"and {left} more" if how_many else "…")
    return ", ".join(kept)


def columns_named(column: str, count: int, header: str = "the header", named_in: str | None = None,
                  remedy: str = "rename the others") -> str:
    """The problem (``file: field: problem``) of ``header``, a file's header row, holding ``count`` columns named
    ``column`` where the reader takes one: ``the header has 2 columns named 'b' (which one is meant? rename the
    others)``; ``named_in``: the file that names the column, when the message starts with another; ``remedy``: what
    tells the reader which one is meant. Every message about a column named more than once reads so."""
    named = f"named in {named_in}; " if named_in is not None else ""
    return f"{header} has {count} columns named {shown(column)} ({named}which one is meant? {remedy})"


def name(text: str) -> str:
    """A user's name (a key, an option) for an error message: control characters escaped, cut like :func:`shown`."""
    return _cut(repr(str(text))[1:-1])


def counted(count: int, noun: str, shown: str | None = None) -> str:
    """``count`` with thousands separators (or as ``shown``, a text the caller formatted it to) and ``noun``,
    plural (an ``s`` added) unless the count is 1: ``1 station``, ``1,200 stations``."""
    return f"{f'{count:,}' if shown is None else shown} {noun}{'' if count == 1 else 's'}"


def _cut(text: str) -> str:
    """``text`` cut to :data:`MAX_SHOWN` characters, the last one ``…``; a cut through an escape (``\\n``) drops
    the backslash it leaves alone, which would escape the ``…`` (:data:`simkit.cli.arguments.QUOTED`)."""
    if len(text) <= MAX_SHOWN:
        return text
    kept = text[: MAX_SHOWN - 1]
    backslashes = len(kept) - len(kept.rstrip("\\"))
    return kept[: len(kept) - backslashes % 2] + "…"
