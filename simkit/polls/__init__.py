"""Exit polls and quick counts against the official count: comparison, total survey error, one-mechanism fits, count-matched scenarios."""

from simkit.polls.compare import compare_config

__all__ = ["compare_config"]
