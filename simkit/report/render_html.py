"""A report as one self-contained HTML page: figures embedded as base64 PNG, no scripts, no external files."""
from __future__ import annotations

import base64
from html import escape

from .document import GENERATOR, Bullets, Document, Image, Paragraph, Preformatted, Table

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.8rem 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.4rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } caption { caption-side: bottom; font-size: 0.75rem; color: #555; text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.8rem; color: #555; }
pre { background: #f7f7f7; padding: 0.6rem; font-size: 0.75rem; overflow-x: auto; white-space: pre-wrap; }
.answer p { font-size: 1.02rem; } nav li { font-size: 0.9rem; }
"""


def _block(block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Preformatted):
        return f"<pre>{escape(block.text)}</pre>"
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
        caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="{escape(block.name)}"><img src="data:image/png;base64,{data}" '
                f'alt="{escape(block.caption)}"><figcaption>{escape(block.caption)}</figcaption></figure>')
    raise TypeError(f"unknown block {type(block).__name__}")


def render(doc: Document) -> str:
    """The HTML text of ``doc``."""
    nav = "".join(f'<li><a href="#{s.key}">{escape(s.title)}</a></li>' for s in doc.sections)
    sections = "".join(f'<section id="{s.key}" class="{s.key}"><h2>{escape(s.title)}</h2>'
                       + "".join(_block(b) for b in s.blocks) + "</section>" for s in doc.sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR}"><title>{escape(doc.title)}</title>'
            f'<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style></head><body><h1>{escape(doc.title)}</h1><nav><ul>{nav}</ul></nav>{sections}"
            "</body></html>\n")
