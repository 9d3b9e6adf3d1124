"""``simkit calibrate``: how often each forensic test rejects on simulated elections of a config.

Under the ``honest`` scenario the rejection rate at α = 0.05 is the test's **size** (its false-positive
rate: a calibrated test rejects about 5% of honest elections); under a manipulated scenario it is the
test's **power** against that mechanism at the config's strength (one row per sweep point). Both nulls
(``textbook`` and ``simulated``) are run, so users see which null keeps its promise on elections shaped
like theirs.
"""
from __future__ import annotations

import itertools

import xarray as xr

from . import schema
from .config import Config
from .engine import simulate
from .forensics import ALPHA, rejection_rates

NULLS = ("textbook", "simulated")


def _strength(cfg: Config, scenario: str, point: dict) -> str:
    """The manipulation parameters in force in ``scenario`` at sweep ``point``, as ``block: field=value``."""
    if scenario == "honest":
        return ""
    resolved = cfg.at(point)
    chosen = next(s for s in resolved.scenarios() if s.name == scenario)
    resolved = resolved.at(chosen.overrides) if chosen.overrides else resolved
    blocks = {block.name: block for block in resolved.manipulation}
    common = {"name", "kind", "beneficiary", "regions", "label"}
    return "; ".join(
        f"{name}: " + ", ".join(f"{key}={value:g}" for key, value in blocks[name].model_dump().items()
                                if key not in common and isinstance(value, (int, float)) and not isinstance(value, bool))
        for name in chosen.manipulations)


def calibration_table(cfg: Config, *, replicates: int | None = None, tests: list[str] | None = None,
                      nulls: tuple[str, ...] = NULLS, draws: int = 99, seed: int | None = None,
                      ds: xr.Dataset | None = None) -> list[dict]:
    """Rows ``test``, ``null``, ``mechanism`` (``none`` for the honest scenario), ``strength``,
    ``rejection_rate`` (at α = 0.05) and ``n`` (replicates), for every scenario and sweep point of ``cfg``."""
    if ds is None:
        ds = simulate(cfg, replicates=replicates, seed=seed, keep="full")
    sweep_dims = list(cfg.sweep)
    rows = []
    for values in itertools.product(*(ds[dim].values for dim in sweep_dims)):
        point = dict(zip(sweep_dims, (float(v) for v in values)))
        at = ds.sel(point) if point else ds
        for scenario in at[schema.SCENARIO].values:
            scenario = str(scenario)
            election = at.sel({schema.SCENARIO: scenario})
            for null in nulls:
                rates = rejection_rates(election, tests, null=null, draws=draws, alpha=ALPHA, seed=seed)
                for test, rate in rates.items():
                    rows.append({"test": test, "null": null, "mechanism": "none" if scenario == "honest" else scenario,
                                 "strength": _strength(cfg, scenario, point), **point,
                                 "rejection_rate": rate["rejection_rate"], "n": rate["n"]})
    return rows


def format_table(rows: list[dict]) -> str:
    """The table as text: one line per test × null × scenario (× sweep point)."""
    lines = [f"{'test':<16}{'null':<11}{'mechanism':<16}{'rate':>6}{'n':>5}  strength"]
    for row in rows:
        lines.append(f"{row['test']:<16}{row['null']:<11}{row['mechanism']:<16}{row['rejection_rate']:>6.2f}"
                     f"{row['n']:>5}  {row['strength']}")
    return "\n".join(lines)
