"""A report as Markdown, its figures as PNG files in a folder beside it (``NAME_files/``)."""
from __future__ import annotations

from .document import GENERATOR, Bullets, Document, Image, Paragraph, Preformatted, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _block(block, figures: str) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Preformatted):
        return f"```\n{block.text.rstrip()}\n```"
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_cell(c) for c in block.columns) + " |",
                 "|" + "---|" * len(block.columns)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines) + (f"\n\n*{block.caption}*" if block.caption else "")
    if isinstance(block, Image):
        return f"![{block.caption}]({figures}/{block.name}.png)\n\n*{block.caption}*"
    raise TypeError(f"unknown block {type(block).__name__}")


def render(doc: Document, figures: str) -> str:
    """The Markdown text of ``doc``; images link to ``figures/NAME.png`` (a path relative to the report)."""
    parts = [f"<!-- {GENERATOR} -->\n# {doc.title}"]
    for section in doc.sections:
        parts.append(f"## {section.title}")
        parts += [_block(block, figures) for block in section.blocks]
    return "\n\n".join(parts) + "\n"
