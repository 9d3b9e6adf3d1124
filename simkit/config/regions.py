"""Region-keyed fields (:data:`REGION_KEYED_FIELDS`): every region a config names must be one of the electorate's
(:func:`region_problems`; :func:`check_regions` once a CSV electorate's regions are read).
"""
from __future__ import annotations

import unicodedata
from typing import Any


from simkit.config.timeline import TIMELINE_TURNOUT
from simkit.errors import InputError, listed
from simkit.paths import join_path
from simkit.config.core import Config, CsvElectorate
from simkit.config.sweeps import SWEEP_ADDABLE, sweep_segments


#: the tables keyed by region name
REGION_KEYED_FIELDS = ("turnout.regional_mean", "observed.regional_turnout", "timeline.regional", TIMELINE_TURNOUT)


def region_problems(cfg: Config, region_names: list[str]) -> list[str]:
    """Every region the config names (regional means and turnouts, manipulation blocks, timelines) that is not one
    of the electorate's ``region_names``."""
    problems = [f"{field}.{region}: {_unknown_region(region, region_names)}"
                for field in REGION_KEYED_FIELDS for region in region_keys(cfg, field) if region not in region_names]
    problems += swept_region_problems(cfg, region_names)
    return problems + [f"manipulation.{block.name}.regions: {region!r} is {_unknown_region(region, region_names)}"
                       for block in cfg.manipulation for region in block.regions or [] if region not in region_names]


def _unknown_region(region: str, region_names: list[str]) -> str:
    """Why ``region`` is none of ``region_names``: no region of that name, or one that looks the same written in
    another Unicode form (an accent composed or not: NFC against NFD), shown escaped, where the two would print
    alike."""
    form = unicodedata.normalize("NFC", region)
    alike = [name for name in region_names if unicodedata.normalize("NFC", name) == form]
    if alike:
        return (f"not a region of the electorate as written: the electorate writes it {ascii(alike[0])}, the "
                f"config {ascii(region)} (the same letters in another Unicode form); write them alike")
    return "not a region of the electorate"


def swept_region_problems(cfg: Config, region_names: list[str]) -> list[str]:
    """Each sweep of a :data:`SWEEP_ADDABLE` table's entry (``turnout.regional_mean.north``) whose region is not
    one of ``region_names``: ``sweep.FIELD.REGION: not a region …``, the problem each of its points has, once."""
    return [f"sweep.{'.'.join(segments)}: {_unknown_region(segments[-1], region_names)}"
            for _, segments in sweep_segments(cfg)
            if join_path(segments[:-1]) in SWEEP_ADDABLE and segments[-1] not in region_names]


def region_keys(cfg: Config, field: str) -> list[str]:
    """The regions of ``cfg``'s table at dotted ``field`` (one of :data:`REGION_KEYED_FIELDS`), read from the
    validated config itself, not a dump of it (a sweep checks each point, an inference each prior probe); none when
    the config leaves out the block that holds the table (``[timeline]``, ``[observed.timeline]``)."""
    node: Any = cfg
    for name in field.split("."):
        node = getattr(node, name)
        if node is None:
            return []
    return list(node)


def check_regions(cfg: Config, region_names: tuple[str, ...]) -> None:
    """InputError naming the electorate file, the first field and the file's regions when the config names a region
    that an electorate file does not have (a synthetic electorate's regions are checked with the config)."""
    if not isinstance(cfg.electorate, CsvElectorate):
        return
    problems = region_problems(cfg, list(region_names))
    if problems:
        raise InputError(f"{cfg.electorate.path}: {problems[0]} (the file's {len(region_names)} regions: "
                         f"{listed(region_names)})")
