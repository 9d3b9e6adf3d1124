"""Performance benchmarks of simkit (airspeed velocity) and the side-by-side comparison script."""
