"""Validated field types and the bounds shared by every config model: errors read "must be …, got …".

Every config model sets ``allow_inf_nan=False`` (:data:`STRICT`): no numeric field accepts NaN or ±inf.
Integer counts have upper bounds the engine can honour exactly (int64 counts, float64 sums below 2**53):
"""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict

from simkit.errors import listed

#: every config block: unknown keys are errors, blocks are immutable, numbers are finite
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

#: voters on a register: above the world's population (8e9), and far enough below 2**53 (9.0e15) that every
#: register, count and sum over stations and replicates stays exact in int64 and in float64 weights
MAX_REGISTER = 10**10
#: polling stations: ten times the largest election held (India, about 1.05 million stations)
MAX_STATIONS = 10**7
#: replicates of a run (the resource guard checks that a run's planned memory and output fit the machine)
MAX_REPLICATES = 10**7
#: seeds: stored in the results' attributes as int64
MAX_SEED = 2**63 - 1
#: standard deviations on a logit or probit scale (logit-normal turnout, logistic-normal preferences, the regional
#: shift, truncated normals): the means are matched by 80-node Gauss–Hermite quadrature, which holds to within
#: Monte Carlo error up to 10 and drifts beyond 20 (a station at +10 SD has turnout expit(100): the scale is
#: already saturated)
MAX_LATENT_SD = 10.0
#: manipulation blocks of a config: block i sets bit i of a station's ``manipulated`` mask, an int64 (bit 63 is its
#: sign)
MAX_MANIPULATION_BLOCKS = 63
#: Beta and Dirichlet concentrations (a + b): the station mean holds to Monte Carlo error over 1e-9 … 1e9
MAX_CONCENTRATION = 1e9


def _unit_interval(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value:g}")
    return value


def _open_unit_interval(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"must be strictly between 0 and 1, got {value:g}")
    return value


def _positive_share(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"must be in (0, 1], got {value:g}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError(f"must be positive, got {value:g}")
    return value


def _correlation(value: float) -> float:
    if not -1.0 < value < 1.0:
        raise ValueError(f"must be strictly between -1 and 1, got {value:g}")
    return value


def _identifier(value: str) -> str:
    if not value or not value.replace("_", "").isalnum() or value != value.lower() or value[0].isdigit():
        raise ValueError(f"must be a lower-case identifier (letters, digits, _), got {value!r}")
    return value


Share = Annotated[float, AfterValidator(_unit_interval)]
OpenShare = Annotated[float, AfterValidator(_open_unit_interval)]
PositiveShare = Annotated[float, AfterValidator(_positive_share)]
Positive = Annotated[float, AfterValidator(_positive)]
Correlation = Annotated[float, AfterValidator(_correlation)]
Identifier = Annotated[str, AfterValidator(_identifier)]


def _distinct(values: list[str] | None) -> list[str] | None:
    if values is not None:
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"names must be distinct, repeated: {listed(repeated)}")
    return values


NameList = Annotated[list[Identifier], AfterValidator(_distinct)]


def _region_name(value: str) -> str:
    if not value.strip():
        raise ValueError(f"must name a region, got {value!r}")
    return value


#: region names as the electorate spells them: a synthetic one's identifiers, or an electorate file's own (any
#: non-blank text, "Île-de-France")
RegionNames = Annotated[list[Annotated[str, AfterValidator(_region_name)]], AfterValidator(_distinct)]
