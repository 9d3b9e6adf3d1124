"""Errors that reach users as one line: ``file: dotted.field: problem``."""


class InputError(ValueError):
    """Bad user input (config, data file, command-line value). The message is one line."""
