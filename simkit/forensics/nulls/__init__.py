"""The honest nulls of the forensic tests: the registry and flat model, the hierarchical and turnout-conditional
models, compiled draws, the simulated null and its tails."""
