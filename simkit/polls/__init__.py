"""Exit polls and quick counts against the official count: comparison, total survey error, one-mechanism fits, count-matched scenarios."""
