"""Pure model functions: parameters and a random generator in, arrays out (no files, no global state)."""
