"""Defaults of the forensic p-values' Monte Carlo, defined once for the library and the command line."""

#: null draws behind each p-value that ``simkit forensics`` and ``simkit report`` print: the Monte Carlo p-value
#: resolves 1/1001, well below the 0.05 level of the verdicts
NULL_DRAWS = 1000
#: null draws per test and replicate in ``simkit calibrate``: its rejection rates average over replicates, and
#: with 99 draws the Monte Carlo test at 0.05 has exact size ((99 + 1) × 0.05 is a whole number of draws), so
#: more draws buy a precision that the rate cannot use. A different meaning from :data:`NULL_DRAWS`, hence a
#: different default.
CALIBRATION_DRAWS = 99
