"""Integer percentages: the test and its exact per-station probabilities."""
