"""What a published source reveals: one election's station returns coarsened to what is published.

Some countries publish only regional totals (Kazakhstan: 20 regions and the stations abroad), others a
sample of stations. :func:`coarsen` turns a simulated election's station-level Dataset into that view, so
``simkit calibrate --aggregate`` can say how much each forensic test can still detect from it:

- ``"station"``: unchanged (every station published);
- ``"region"``: one row per region (the ``region`` coordinate), registers and counts summed; the tests then
  see each region as one "station";
- ``"sample:N"``: ``N`` stations drawn without replacement (a published or observed sample), from the
  generator given (the caller keys it by replicate).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from simkit.errors import InputError
from simkit.schema import STATION, STATION_REGION
from simkit.engine.run import region_totals

#: variables summed or kept by :func:`coarsen` (the rest of a simulated Dataset is dropped)
COUNTS = ("registered", "ballots", "votes")


def parse(text: str) -> tuple[str, int | None]:
    """``"station"``, ``"region"`` or ``"sample:N"`` → (kind, N or None); ValueError otherwise."""
    if text in ("station", "region"):
        return text, None
    kind, _, size = text.partition(":")
    if kind == "sample" and size.isdigit() and int(size) > 0:
        return kind, int(size)
    raise ValueError(f"{text!r}: must be station, region or sample:N with N a positive integer")


def check_sample(how: str, stations: int) -> None:
    """``how`` (see :func:`parse`) as published from an election of ``stations`` stations: an InputError naming
    ``aggregate`` when it samples more stations than there are."""
    kind, size = parse(how)
    if kind == "sample" and size > stations:
        raise InputError(f"aggregate: sample:{size}: the election has only {stations} stations",
                         parameters=("aggregate",))


def coarsen(ds: xr.Dataset, how: str, rng: np.random.Generator | None = None) -> xr.Dataset:
    """``ds`` (one election: ``registered``, ``ballots`` on ``station``, ``votes`` on (``station``, ``option``),
    the ``region`` coordinate on ``station``) as published under ``how`` (see the module docstring);
    ``rng`` draws the sample for ``"sample:N"``; a sample larger than the election is an InputError naming
    ``aggregate``."""
    kind, size = parse(how)
    if kind == "station":
        return ds
    counts = ds[list(COUNTS)]
    if kind == "sample":
        if rng is None:
            raise ValueError("sample: needs a random generator")
        n = ds.sizes[STATION]
        check_sample(how, n)
        return counts.isel({STATION: np.sort(rng.choice(n, size, replace=False))})

    regions = np.asarray(ds[STATION_REGION].values).astype(str)
    names, index = np.unique(regions, return_inverse=True)
    summed = {}
    for name in COUNTS:
        var = counts[name].transpose(STATION, ...)
        summed[name] = (var.dims, region_totals(index, np.asarray(var.values, dtype=np.int64), len(names)))
    other = {dim: ds[dim] for dim in counts["votes"].dims if dim != STATION and dim in ds.coords}
    return xr.Dataset(summed, coords={STATION: names, STATION_REGION: (STATION, names), **other}, attrs=ds.attrs)
