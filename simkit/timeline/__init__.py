"""Turnout through the day: the honest profile (fitted to Spain 2019), the tests on published timelines
(front-loading, late surge, departure from the national curve) and their simulated null.

Modules: :mod:`simkit.engine.profile` (the honest profile and its rescaling to other opening hours), :mod:`.spain`
(reading and fitting the Spanish station timeline), :mod:`.statistics` (regional statistics, null,
p-values), :mod:`.stations` (station-level tests for station files), :mod:`.observed` (published timelines
from a config or a station file), :mod:`.calibration` (size and power on engine simulations); the random
draws of the engine are in :mod:`simkit.model.timeline`.
"""
