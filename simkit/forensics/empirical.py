"""Empirical calibration of a simulated null against negative controls (Schuemie, Ryan, DuMouchel, Suchard &
Madigan 2014, *Stat Med* 33:209-218): clean elections tell how far an honest model misses honest data.

With 10^4-10^5 stations the simulated null's spread of a relation statistic is tiny, so any systematic misfit of
the fitted honest model to a clean election shows as a large null z. The model of that misfit, per test ``t``:

- the honest model's **error** on an election, ``d = observed statistic - null mean`` (mean of the simulated
  null's draws), in the statistic's own units, and ``s``, the SD of those draws (:func:`effect`). The statistics
  are scale-free (a mean digit, a share, a skewness, a dip, a correlation, a slope, ``klimek_ml``'s fraction
  of stations in extreme fraud), so ``d`` transfers across election sizes, except one that grows with the
  number of stations, read per station of the election: ``integer_percent`` (an excess count of integer
  stations: ``d`` and ``s`` are excess integer stations per station) (:data:`PER_STATION`);
- on a clean **control** election ``c``: ``d_c ~ N(0, tau_t^2 + s_c^2)``. No bias is fitted (``mu = 0``): with five
  controls a fitted mean would eat a degree of freedom, and the clean errors take both signs;
- ``tau_t^2`` by maximum likelihood over the ``k`` controls (:func:`fit_tau`; at ``s_c = 0`` it is the mean of
  ``d_c^2``);
- an election under test: ``T = d / sqrt(tau^2 + s^2)`` against Student's t with ``k`` degrees of freedom, in the
  test's direction (:func:`empirical_p`). When every ``s`` is negligible this is exact for normal errors:
  ``d / rms(d_c) ~ t_k``.

Held out (:func:`held_out`): when the election under test is itself a control (same data fingerprint,
:func:`simkit.forensics.calibration.data_fingerprint`), it and every control of its country are left out
(Poland's two rounds share stations and voters), and ``k`` falls.

What it cannot absorb: an election whose honest-model misfit is larger than the controls' (a kind of election
the controls do not represent) is read as anomalous; the size was checked only on the controls themselves.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from scipy import optimize, special

#: tests whose statistic grows with the number of stations: ``d`` and ``s`` are divided by it
PER_STATION = frozenset({"integer_percent"})


@dataclass(frozen=True)
class Control:
    """One clean control election's errors: ``country``, ``election`` (a name, for the record), and
    test -> (d, s) in :func:`effect` units."""

    country: str
    election: str
    errors: Mapping[str, tuple[float, float]]


def effect(test: str, statistic: float, null_mean: float, null_sd: float, stations: int) -> tuple[float, float]:
    """(d, s): the honest model's error ``statistic - null_mean`` and the null's SD, in the statistic's units,
    per station of the election for :data:`PER_STATION` tests."""
    scale = float(stations) if test in PER_STATION else 1.0
    return (float(statistic) - float(null_mean)) / scale, float(null_sd) / scale


def fit_tau(d: Iterable[float], s: Iterable[float]) -> float:
    """Maximum-likelihood ``tau >= 0`` of ``d_c ~ N(0, tau^2 + s_c^2)`` (shape (k,) each)."""
    d, s = np.asarray(list(d), dtype=float), np.asarray(list(s), dtype=float)
    if d.size == 0:
        raise ValueError("fit_tau needs at least one control")
    if np.all(s == 0):
        return float(np.sqrt(np.mean(d * d)))
    top = float(np.max(np.abs(d)))  # the likelihood falls beyond tau^2 = max d_c^2 (every d_c^2 - v_c <= 0 there)
    if top == 0.0:
        return 0.0

    def minus_log_likelihood(tau: float) -> float:
        v = np.maximum(tau * tau + s * s, np.finfo(float).tiny)
        return float(np.sum(np.log(v) + d * d / v))

    fit = optimize.minimize_scalar(minus_log_likelihood, bounds=(0.0, top), method="bounded",
                                   options={"xatol": top * 1e-9})
    return float(fit.x) if minus_log_likelihood(fit.x) < minus_log_likelihood(0.0) else 0.0


@functools.lru_cache(maxsize=64)
def _controls_tau(control_d: tuple[float, ...], control_s: tuple[float, ...]) -> float:
    """:func:`fit_tau` of the controls' errors, kept: every election a test reads against the same controls
    fits the same tau (about 10 ms of scipy's bounded minimiser each time)."""
    return fit_tau(control_d, control_s)


def t_tail(t: float, k: int, alternative: str) -> float:
    """Student's t (``k`` degrees of freedom) p-value of ``t`` on the side of ``alternative``."""
    if alternative == "greater":
        return float(special.stdtr(k, -t))
    if alternative == "less":
        return float(special.stdtr(k, t))
    return float(min(1.0, 2 * special.stdtr(k, -abs(t))))


def empirical_p(d: float, s: float, control_d: Iterable[float], control_s: Iterable[float],
                alternative: str) -> tuple[float, float, int]:
    """(p-value, tau, k) of an error ``d`` with null SD ``s`` against the controls' errors (module
    docstring)."""
    control_d, control_s = tuple(control_d), tuple(control_s)
    tau = _controls_tau(control_d, control_s)
    scale = np.sqrt(tau * tau + s * s)
    t = d / scale if scale > 0 else np.copysign(np.inf, d) if d else 0.0
    return t_tail(float(t), len(control_d), alternative), tau, len(control_d)


def held_out(controls: Mapping[str, Control], fingerprint: str) -> list[str]:
    """The fingerprints of the controls an election of ``fingerprint`` is read against: all, but when it is
    itself a control, neither it nor any control of its country."""
    if fingerprint not in controls:
        return list(controls)
    country = controls[fingerprint].country
    return [key for key, control in controls.items() if control.country != country]


def calibrated_p(test: str, d: float, s: float, controls: Mapping[str, Control], fingerprint: str,
                 alternative: str) -> dict | None:
    """The empirical reading of one test on one election: ``empirical_p``, ``empirical_tau`` (in :func:`effect`
    units), ``empirical_k``, ``empirical_controls`` (election names), ``empirical_d`` and ``empirical_s``; None
    when no held-out control measured the test."""
    used = [key for key in held_out(controls, fingerprint) if test in controls[key].errors]
    if not used:
        return None
    errors = [controls[key].errors[test] for key in used]
    p, tau, k = empirical_p(d, s, [e[0] for e in errors], [e[1] for e in errors], alternative)
    return {"empirical_p": p, "empirical_tau": tau, "empirical_k": k, "empirical_d": d, "empirical_s": s,
            "empirical_controls": [controls[key].election for key in used]}


def calibrated_reading(test: str, statistic: float, null_mean: float | None, null_sd: float | None, stations: int,
                       controls: Mapping[str, Control], fingerprint: str, alternative: str) -> dict | None:
    """:func:`calibrated_p` of a test's ``statistic`` on an election of ``stations`` stations and data
    ``fingerprint``, from its simulated null's mean and SD (:func:`effect`); None when either is unknown or no
    held-out control measured the test. The one reading of the library (:mod:`simkit.forensics`) and of the
    panel's measurement (``benchmarks/false_positives.py``)."""
    if null_mean is None or null_sd is None:
        return None
    d, s = effect(test, statistic, null_mean, null_sd, stations)
    return calibrated_p(test, d, s, controls, fingerprint, alternative)
