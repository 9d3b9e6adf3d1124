"""Fused compiled kernels for the honest draw of one station group (``kernel = "numba"``).

The numpy path (:func:`simkit.engine.honest_replicate` with ``simkit.model``) builds, per station group,
arrays of latents, turnout shares, gamma variates, probabilities (twice: once normalised by the model,
once more by :func:`simkit.model.counts.draw_counts`) and counts. :func:`honest_group` draws the same
model in two loops over the group's stations that write straight into the caller's output arrays, with
no temporaries but one scratch row of ``option`` floats, and releases the GIL. (The engine runs its blocks
in worker processes, which use both cores with either kernel.)

What it draws (the same model as the numpy path, for ``turnout.model = "logit_normal"`` and
``preferences.model = "dirichlet"`` with ``rho = 0``; :func:`supports` says when it applies):

- turnout share ``expit(turnout_location + turnout_dispersion * z)``, z ~ N(0, 1) from ``turnout_rng``;
- ballot probabilities ~ Dirichlet(``concentration × composition[region]``) from ``preferences_rng``, as
  normalised standard-gamma variates (all-zero gammas, possible only for tiny concentrations, fall back to
  the regional composition, as in the numpy path);
- ``ballots ~ Binomial(registered, turnout)`` for every station of the group, then
  ``votes ~ Multinomial(ballots, probabilities)`` as sequential conditional binomials, from ``counts_rng``.

Each random stream is consumed in the same order as in the numpy path (station by station; all ballots
before all votes on the counts stream). Bit-identity with the numpy kernel is NOT promised (numba's
samplers are ports of numpy's and may round differently); identity in distribution is, and is tested in
``tests/test_kernels.py``. Bit-identity across block sizes and worker counts holds for this kernel as for
the numpy one, because the streams are keyed by ``(replicate, station_group, component)`` only.

numba is optional: :data:`AVAILABLE` is False without it and the engine keeps the numpy path.
"""
from __future__ import annotations

import numpy as np

try:  # optional dependency: the numpy path needs nothing of this module
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

#: True when numba is importable and :func:`honest_group` can run
AVAILABLE = numba is not None

#: kernel names accepted by the engine's ``kernel`` setting
KERNELS = ("numpy", "numba")


def supports(turnout_model: str, preference_model: str, rho: float) -> bool:
    """Whether :func:`honest_group` implements this model combination (else use the numpy path)."""
    return AVAILABLE and turnout_model == "logit_normal" and preference_model == "dirichlet" and rho == 0.0


def _honest_group_impl(registered, turnout_location, turnout_dispersion, concentration, composition,
                       region_index, turnout_rng, preferences_rng, counts_rng, ballots, votes):
    n_stations = registered.shape[0]
    n_options = composition.shape[1]
    # pass 1 (turnout stream, then the ballots on the counts stream): station turnout and ballots cast
    for station in range(n_stations):
        latent = turnout_rng.standard_normal()
        turnout = 1.0 / (1.0 + np.exp(-(turnout_location[station] + turnout_dispersion * latent)))
        ballots[station] = counts_rng.binomial(registered[station], turnout)
    # pass 2 (preferences stream, then the votes on the counts stream): Dirichlet row, multinomial split
    weights = np.empty(n_options)
    for station in range(n_stations):
        region = region_index[station]
        total = 0.0
        for option in range(n_options):
            weights[option] = preferences_rng.standard_gamma(concentration * composition[region, option])
            total += weights[option]
        if total > 0.0:
            for option in range(n_options):
                weights[option] /= total
        else:
            for option in range(n_options):
                weights[option] = composition[region, option]
            total = 0.0
            for option in range(n_options):
                total += weights[option]
            for option in range(n_options):
                weights[option] /= total
        remaining_ballots = ballots[station]
        remaining_probability = 1.0
        for option in range(n_options):
            votes[station, option] = 0
        for option in range(n_options - 1):
            if remaining_ballots <= 0:
                break
            share = weights[option] / remaining_probability if remaining_probability > 0.0 else 1.0
            share = min(max(share, 0.0), 1.0)
            drawn = counts_rng.binomial(remaining_ballots, share)
            votes[station, option] = drawn
            remaining_ballots -= drawn
            remaining_probability -= weights[option]
        if remaining_ballots > 0:
            votes[station, n_options - 1] = remaining_ballots


_honest_group_jit = (numba.njit(nogil=True, cache=True, error_model="numpy")(_honest_group_impl)
                     if AVAILABLE else None)


def honest_group(registered: np.ndarray, turnout_location: np.ndarray, turnout_dispersion: float,
                 concentration: float, composition: np.ndarray, region_index: np.ndarray,
                 turnout_rng: np.random.Generator, preferences_rng: np.random.Generator,
                 counts_rng: np.random.Generator, ballots: np.ndarray | None = None,
                 votes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one station group's honest election in place; returns ``(ballots, votes)``.

    Parameters (``station`` = the group's stations, ``option`` = ballot options incl. ``invalid``):

    - ``registered`` (station,) int64 voters on the register;
    - ``turnout_location`` (station,) float64 logit-scale location of each station's turnout
      (``Plan.turnout_location[stations]``); ``turnout_dispersion`` its SD on the logit scale;
    - ``concentration`` the Dirichlet concentration κ (``preferences.dispersion``); ``composition``
      (region, option) float64 mean ballot probabilities per region for this replicate
      (``PreferencePlan.regional_composition(region_shift)``, rows summing to 1); ``region_index``
      (station,) int64 rows of ``composition``: the Dirichlet parameters are κ × ``composition[region]``;
    - ``turnout_rng``, ``preferences_rng``, ``counts_rng``: the group's three streams
      (``streams.TURNOUT``, ``streams.PREFERENCES``, ``streams.COUNTS``);
    - ``ballots`` (station,) int64 and ``votes`` (station, option) int64 C-contiguous output arrays
      (e.g. the engine's ``ballots[stations]``, ``votes[stations]`` views), allocated when omitted.

    Returns ``ballots`` (station,) ballots cast and ``votes`` (station, option) counts, rows summing to
    ``ballots``; both int64 counts.
    """
    if not AVAILABLE:
        raise RuntimeError("the numba kernel needs numba (pip install numba); use kernel = 'numpy'")
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    turnout_location = np.ascontiguousarray(turnout_location, dtype=np.float64)
    composition = np.ascontiguousarray(composition, dtype=np.float64)
    region_index = np.ascontiguousarray(region_index, dtype=np.int64)
    n_stations, n_options = registered.shape[0], composition.shape[1]
    if turnout_location.shape != (n_stations,) or region_index.shape != (n_stations,):
        raise ValueError(f"turnout_location and region_index must have shape (station,) = ({n_stations},), "
                         f"got {turnout_location.shape} and {region_index.shape}")
    if ballots is None:
        ballots = np.empty(n_stations, dtype=np.int64)
    if votes is None:
        votes = np.empty((n_stations, n_options), dtype=np.int64)
    for name, array, shape in (("ballots", ballots, (n_stations,)), ("votes", votes, (n_stations, n_options))):
        if array.shape != shape or array.dtype != np.int64 or not array.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous int64 array of shape {shape}, "
                             f"got {array.dtype} {array.shape}")
    _honest_group_jit(registered, turnout_location, float(turnout_dispersion), float(concentration), composition,
                      region_index, turnout_rng, preferences_rng, counts_rng, ballots, votes)
    return ballots, votes
