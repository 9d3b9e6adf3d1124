"""A forensic result's calibration status: a state and its qualifiers, rendered to text in one place.

A result's ``extra["calibration"]`` holds the status as text (``extra`` is JSON-ready): the state alone
(``calibrated``, ``uncalibrated``, ``not measured``), or the state with its qualifiers in parentheses, separated
by semicolons (``calibrated (empirical, 4 clean elections; on the panel it was chosen on: not held out)``).
:class:`CalibrationStatus` builds that text (:attr:`CalibrationStatus.text`) and reads it back
(:meth:`CalibrationStatus.read`), so no reader looks inside the string itself.
"""
from __future__ import annotations

from dataclasses import dataclass

CALIBRATED, UNCALIBRATED, NOT_MEASURED = "calibrated", "uncalibrated", "not measured"
#: the states a status can have (:mod:`simkit.forensics.calibration`)
STATES = (CALIBRATED, UNCALIBRATED, NOT_MEASURED)
#: the label shown beside a p-value whose status is a bare state (a bare ``calibrated`` carries none)
BARE_LABELS = {UNCALIBRATED: "uncalibrated", NOT_MEASURED: "size not measured"}
#: characters of the rendered text that a qualifier may not hold (they delimit the qualifiers)
_DELIMITERS = ("(", ")", ";")


@dataclass(frozen=True)
class CalibrationStatus:
    """``state`` (one of :data:`STATES`) and ``qualifiers``, the facts that qualify it, in the order added
    (``empirical, k clean elections``: read empirically against k clean controls;
    :data:`simkit.forensics.registry.NOT_HELD_OUT`: its statistic was chosen on the panel that measured it)."""

    state: str
    qualifiers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"calibration state {self.state!r}: not one of {', '.join(STATES)}")
        for qualifier in self.qualifiers:
            if not qualifier or any(c in qualifier for c in _DELIMITERS):
                raise ValueError(f"calibration qualifier {qualifier!r}: empty or holds one of "
                                 f"{' '.join(_DELIMITERS)}")

    def qualified(self, qualifier: str) -> CalibrationStatus:
        """This status with ``qualifier`` added after its others."""
        return CalibrationStatus(self.state, self.qualifiers + (qualifier,))

    @property
    def calibrated(self) -> bool:
        """Whether the status makes its test a member of the family-wise verdict (state ``calibrated``,
        whatever its qualifiers)."""
        return self.state == CALIBRATED

    @property
    def text(self) -> str:
        """The status as stored in ``extra["calibration"]`` and shown in tables: ``state`` or
        ``state (qualifier; qualifier)``."""
        return f"{self.state} ({'; '.join(self.qualifiers)})" if self.qualifiers else self.state

    @property
    def label(self) -> str | None:
        """The label shown beside the p-value: the whole text of a qualified status; for a bare state its
        :data:`BARE_LABELS` entry (None for a bare ``calibrated``)."""
        return self.text if self.qualifiers else BARE_LABELS.get(self.state)

    @classmethod
    def read(cls, text: str | None) -> CalibrationStatus | None:
        """The status whose :attr:`text` is ``text``; None for None (no status: a descriptive or n/a result).
        Raises ValueError on text no status renders to."""
        if text is None:
            return None
        state, opening, rest = text.partition(" (")
        if not opening:
            return cls(state)
        if not rest.endswith(")"):
            raise ValueError(f"calibration status {text!r}: its qualifiers do not close")
        return cls(state, tuple(rest[:-1].split("; ")))
