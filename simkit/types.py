"""Validated field types shared by every config model: errors read "must be …, got …"."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


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
            raise ValueError(f"names must be distinct, repeated: {', '.join(repeated)}")
    return values


NameList = Annotated[list[Identifier], AfterValidator(_distinct)]
