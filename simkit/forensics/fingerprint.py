"""The election fingerprint (Klimek et al. 2012): 2-D histogram of turnout x leader share.

Descriptive (no p-value). The statistic is the share of stations with turnout and leader share both above 0.8
(the "upper-right smear" of ballot stuffing); the reference is the same share in the simulated honest elections
under a simulated null (``simulated``, ``flat``), else None.
"""
from __future__ import annotations

import numpy as np

from simkit.forensics.core import Election, TestResult, check_null, top_regions

ID = "fingerprint"
BINS = 100
CORNER = 0.8


def histogram(e: Election, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Station counts on a bins x bins grid over [0, 1]^2 (axis 0 turnout, axis 1 leader share) and the edges."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _, _ = np.histogram2d(np.clip(e.turnout, 0, 1), np.clip(e.leader_share, 0, 1), bins=[edges, edges])
    return counts.astype(np.int64), edges


def _corner(e: Election) -> np.ndarray:
    return (e.turnout > CORNER) & (e.leader_share > CORNER)


def statistic(e: Election) -> float:
    """Share of stations (0..1) with turnout and leader share both above 0.8."""
    return float(_corner(e).mean())


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    counts, edges = histogram(e)
    peak = np.unravel_index(np.argmax(counts), counts.shape)
    centres = (edges[:-1] + edges[1:]) / 2
    reference = float(np.mean(null_statistics)) if null != "textbook" else None
    return TestResult(test=ID, statistic=statistic(e), reference=reference, p_value=None, null=null,
                      verdict="descriptive",
                      extra={"peak_turnout": float(centres[peak[0]]), "peak_leader_share": float(centres[peak[1]]),
                             "bins": BINS, "top_regions": top_regions(e, _corner(e).astype(float))})
