"""The report as data: sections of paragraphs, lists, tables and figures, rendered by
:mod:`simkit.report.render_html` or :mod:`simkit.report.render_md`.

Section keys (stable, for tests and links): ``answer``, ``simulation``, ``polls``, ``scenarios``, ``forensics``,
``limits``, ``provenance``, ``appendix``. ``omitted`` lists the sections left out and why.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from .verdicts import Verdict

#: the mark every rendered report carries (how ``simkit report --overwrite`` recognises one)
GENERATOR = "simkit report"

#: resolution of embedded figures (dots per inch): small files, legible on screen
FIGURE_DPI = 80

#: section key -> title, in reading order
SECTION_TITLES = {
    "answer": "The question and the short answer",
    "simulation": "The simulated count against the official one",
    "polls": "Exit polls and quick counts",
    "scenarios": "Scenarios: what named manipulations would have done",
    "forensics": "Station-level forensics",
    "limits": "What this evidence cannot show",
    "provenance": "Provenance",
    "appendix": "Appendix: the rules behind the short answer",
}


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """``columns`` (header texts) and ``rows`` (cell texts, one list per row), with a caption."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    """A figure as PNG bytes; ``name`` is a file-name stem (Markdown writes ``name.png`` beside the report)."""

    name: str
    png: bytes
    caption: str

    @classmethod
    def from_figure(cls, name: str, figure, caption: str) -> "Image":
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
        return cls(name, buffer.getvalue(), caption)


@dataclass
class Preformatted:
    """Verbatim text (a config file, a command)."""

    text: str


@dataclass
class Section:
    key: str
    blocks: list = field(default_factory=list)

    @property
    def title(self) -> str:
        return SECTION_TITLES[self.key]


@dataclass
class Document:
    """What :func:`simkit.report.build` returns: ``title``, ``sections`` in reading order, ``omitted``
    (section key -> reason), ``verdicts`` (the short answer's sentences with their numbers), and ``analyses``
    (the results the numbers came from: ``comparison``, ``forensics``, ``provenance``)."""

    title: str
    sections: list[Section]
    omitted: dict[str, str]
    verdicts: list[Verdict]
    analyses: dict

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    @property
    def images(self) -> list[Image]:
        return [block for s in self.sections for block in s.blocks if isinstance(block, Image)]
