"""The honest profile: the Spanish fit (``simkit/electorate/presets/timeline-<name>.json``) rescaled to a country's
opening hours.

Rescaling maps clock time to the share of the voting day elapsed, ``u = (t - opening) / (closing -
opening)``, and reads the cumulative share of the final turnout reached by ``u`` off Spain's curve. Spain
identifies the curve at three points only (u = 5/11, 9/11 and 1, plus 0 at opening); between them the
shape is an assumption, ``interpolation``:

- ``"linear"``: a constant arrival rate within each Spanish bin (the least structure the data allow);
- ``"pchip"``: a smooth monotone cubic through the same points.

Both give the same bins wherever the target's reporting times fall on Spain's; docs/timeline.md shows how the
Kazakhstan p-values change from one to the other. A second assumption: voting follows the same shape in
relative time whatever the hours (Kazakhstan opens at 07:00, Spain at 09:00).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from simkit.model.timeline import parse_clock

INTERPOLATIONS = ("linear", "pchip")
DEFAULT_PROFILE = "spain-2019-11"


@lru_cache(maxsize=None)
def load_fit(name: str = DEFAULT_PROFILE) -> dict:
    """The fitted profile ``name`` as shipped in ``simkit/electorate/presets/timeline-<name>.json``."""
    path = resources.files("simkit") / "electorate" / "presets" / f"timeline-{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown timeline profile {name!r} (no presets/timeline-{name}.json)")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class HonestProfile:
    """The honest model on one country's reporting times.

    ``edges`` (report + 2,) minutes: opening, the intermediate reports, closing; ``bin_shares`` (bin,)
    the mean share of the final turnout arriving in each bin; ``kappa_station`` / ``kappa_region`` the
    Dirichlet concentrations of a station around its region and a region around the country."""

    name: str
    interpolation: str
    edges: np.ndarray
    bin_shares: np.ndarray
    kappa_station: float
    kappa_region: float

    @property
    def cumulative_share(self) -> np.ndarray:
        """(report + 1,) mean share of the final turnout reached at each report (the last is 1)."""
        return np.cumsum(self.bin_shares)

    def describe(self) -> dict:
        fit = load_fit(self.name)
        return {"name": self.name, "source": fit["source"], "interpolation": self.interpolation,
                "fitted_on": {"opening": fit["opening"], "closing": fit["closing"], "reports": fit["reports"]},
                "cumulative_share": [round(float(v), 6) for v in self.cumulative_share],
                "kappa_station": self.kappa_station, "kappa_region": self.kappa_region,
                "kappa_region_se": fit["kappa_region_se"],
                "assumptions": "shape within Spain's bins (interpolation); same shape in relative time of the "
                               "voting day; Spain's late bin includes postal votes"}


def cumulative_at(fit: dict, u: np.ndarray, interpolation: str) -> np.ndarray:
    """Spain's cumulative share of the final turnout at relative times ``u`` in [0, 1]."""
    knots, values = np.asarray(fit["knots"]), np.asarray(fit["cumulative_share"])
    if interpolation == "linear":
        return np.interp(u, knots, values)
    if interpolation == "pchip":
        from scipy.interpolate import PchipInterpolator

        return PchipInterpolator(knots, values)(u)
    raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")


def honest_profile(opening: str, reports: list[str], closing: str, name: str = DEFAULT_PROFILE,
                   interpolation: str = "linear", kappa_station: float | None = None,
                   kappa_region: float | None = None) -> HonestProfile:
    """The fitted profile ``name`` on these hours (``"HH:MM"``); the concentrations default to the fit's."""
    fit = load_fit(name)
    edges = np.array([parse_clock(opening)] + [parse_clock(t) for t in reports] + [parse_clock(closing)], float)
    u = (edges - edges[0]) / (edges[-1] - edges[0])
    shares = np.diff(cumulative_at(fit, u, interpolation))
    return HonestProfile(name, interpolation, edges, shares / shares.sum(),
                         float(kappa_station or fit["kappa_station"]), float(kappa_region or fit["kappa_region"]))
