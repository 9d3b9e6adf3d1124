"""Defaults of the forensic p-values' Monte Carlo, defined once for the library and the command line."""

#: null draws behind each p-value that ``simkit forensics`` and ``simkit report`` print: the Monte Carlo p-value
#: resolves 1/1001, well below the 0.05 level of the verdicts
NULL_DRAWS = 1000
#: null draws per test and replicate in ``simkit calibrate``: its rejection rates average over replicates, so more
#: draws buy a precision that the rate cannot use. With 99 draws the Monte Carlo p-value (1 + k) / 100 is at or
#: below 0.05 (:func:`simkit.schema.rejects`) only when k <= 4, so a test rejects a true null with probability
#: 5/100: exactly that for a continuous statistic exchangeable with its draws (its rank among the 100 values is
#: uniform), less with ties.
#: A different meaning from :data:`NULL_DRAWS`, hence a different default.
CALIBRATION_DRAWS = 99
