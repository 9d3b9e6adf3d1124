"""Errors that reach users as one line: ``file: dotted.field: problem``."""


class InputError(ValueError):
    """Bad user input (config, data file, command-line value). The message is one line."""


def one_line(text: str) -> str:
    """``text`` with its control characters (line breaks, tabs, terminal escapes) written as Python escapes,
    so that a message quoting user input stays on one line and prints nothing but itself."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
