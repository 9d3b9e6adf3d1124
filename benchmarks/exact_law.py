"""The exact-law check of drawn binomials, shared by the sampler tests (``tests/test_kernels.py``,
``tests/test_manipulation.py``) and ``chain_variants.py``'s check of the lanes' draws.

``chain_variants.py`` runs from this folder and imports it as ``exact_law``; the tests import it as
``benchmarks.exact_law``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def binomial_chi_square_pvalue(draws: np.ndarray, n: int, p: float) -> float:
    """p-value of a chi-square goodness-of-fit test of integer ``draws`` (draw,) against Binomial(n, p), cells
    with fewer than 5 expected pooled into one."""
    expected = stats.binom.pmf(np.arange(n + 1), n, p) * draws.size
    observed = np.bincount(draws, minlength=n + 1)
    cells = expected > 5
    table_observed = np.append(observed[cells], observed[~cells].sum())
    table_expected = np.append(expected[cells], expected[~cells].sum())
    keep = table_expected > 0
    chi2 = ((table_observed[keep] - table_expected[keep]) ** 2 / table_expected[keep]).sum()
    return stats.chi2.sf(chi2, keep.sum() - 1)
