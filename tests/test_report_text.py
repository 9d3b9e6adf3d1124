"""A written report read as its reader reads it: every number of the short answer's sentences is checked against
the row of the table in the same document that it quotes (parsed from the Markdown text, not from the analysis
objects), and the Markdown carries the same text as the HTML."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from test_report import POLLS, REPLICATES, returns_lines, write_config
from simkit.forensics.core import ALPHA, holm
from simkit.report import build, render_html, render_md, write
from simkit.report.document import SECTION_TITLES

#: the forensic tests of the fixture (quick under the textbook null)
TESTS = ["integer_percent", "spikes", "dip", "fingerprint"]
MAP = ('label = "Testland general election"\n[columns]\nregistered = "registered"\nballots = "ballots"\n'
       'region = "region"\n[options]\na = "a"\nb = "b"\n')
LABELS = {poll["name"]: poll.get("label", poll["name"]) for poll in POLLS}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report with polls, scenarios and station returns, written as Markdown; its Document and its text."""
    folder = tmp_path_factory.mktemp("text")
    lines = returns_lines(400, seed=7)
    (folder / "returns.csv").write_text("\n".join(lines) + "\n")
    (folder / "map.toml").write_text(MAP)
    doc = build(write_config(folder / "c.toml", scenarios=True), returns=folder / "returns.csv",
                map=folder / "map.toml", replicates=REPLICATES, seed=3, tests=TESTS, null="textbook", draws=40,
                power=0)
    write(doc, folder / "r.md")
    return doc, (folder / "r.md").read_text(encoding="utf-8")


# -- reading the Markdown -------------------------------------------------------------------------------------

def sections(text: str) -> dict[str, list[str]]:
    """Section title -> its blocks (paragraphs and tables, as separated by blank lines)."""
    found, title = {}, None
    for block in text.split("\n\n"):
        if block.startswith("## "):
            title = block[3:].strip()
            found[title] = []
        elif title is not None:
            found[title].append(block)
    return found


def cells(line: str) -> list[str]:
    """A Markdown table row's cells (``\\|`` is a bar inside a cell)."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def tables(blocks: list[str]) -> list[list[dict[str, str]]]:
    """The tables among ``blocks``: each a list of rows, each row header -> cell."""
    found = []
    for block in blocks:
        lines = block.splitlines()
        if lines and lines[0].startswith("|") and len(lines) > 1 and lines[1].startswith("|---"):
            header = cells(lines[0])
            found.append([dict(zip(header, cells(line))) for line in lines[2:]])
    return found


def table_with(blocks: list[str], column: str) -> list[dict[str, str]]:
    return next(table for table in tables(blocks) if table and column in table[0])


def plain(number: str) -> str:
    """A number as text without a trailing mark: a sentence writes it as the table does (the hyphen-minus of
    both, so that a figure quoted in a sentence is found in its table as written)."""
    return number.rstrip("*")


def answer_sentences(text: str) -> list[str]:
    return [block for block in sections(text)[SECTION_TITLES["answer"]] if not block.startswith(("|", "-"))]


FIGURE = re.compile(r"(?P<option>\w+) (?P<published>[\d.]+)% published against (?P<official>[\d.]+)% counted "
                    r"\(gap (?P<gap>[+-][\d.]+) points, (?P<zname>z(?: total)?) = (?P<z>[+-][\d.]+), "
                    r"(?P<pname>p(?: total)?) = (?P<p>[\d.e+-]+)(?P<tail> from the normal tail)?")


def test_each_poll_figure_in_a_sentence_is_its_row_of_the_poll_table(report):
    doc, text = report
    blocks = sections(text)[SECTION_TITLES["polls"]]
    rows = {(row["pollster"], row["option"]): row for row in table_with(blocks, "p total")}
    checked = 0
    for pollster, label in LABELS.items():
        own = [row for key, row in rows.items() if key[0] == pollster]
        for sentence in (s for s in answer_sentences(text) if s.startswith(f"{label}:")
                         or s.startswith(f"{label}, against total survey error")):
            total = "against total survey error" in sentence
            verdict = "total-error verdict" if total else "verdict"
            count = re.search(r"(?:(\d+|none) of (?:its )?|all )(\d+) (?:published )?figures", sentence)
            assert int(count.group(2)) == len(own), sentence
            named = [m for m in FIGURE.finditer(sentence)]
            anomalous = [row for row in own if row[verdict].startswith("anomalous")]
            assert {m["option"] for m in named} == {row["option"] for row in anomalous}, sentence
            assert len(anomalous) == (int(count.group(1)) if count.group(1) not in (None, "none") else 0)
            for m in named:
                row = rows[(pollster, m["option"])]
                assert (m["zname"], m["pname"]) == (("z total", "p total") if total else ("z", "p"))
                assert m["published"] == row["published"] and m["official"] == row["official"]
                assert plain(m["gap"]) == plain(row["gap"])
                assert plain(m["z"]) == plain(row[m["zname"]])
                assert plain(m["p"]) == plain(row[m["pname"]])
                assert bool(m["tail"]) == (not total and row["p"].endswith("*")), (sentence, row)
                checked += 1
    assert checked >= 2


def test_the_holm_count_of_the_polls_is_that_of_the_poll_tables_p_values(report):
    _, text = report
    rows = table_with(sections(text)[SECTION_TITLES["polls"]], "p total")
    sentence = next(s for s in answer_sentences(text) if s.startswith("Across all"))
    figures, kept = re.search(r"Across all (\d+) published figures, (\d+|none) ", sentence).groups()
    adjusted = holm([float(plain(row["p"])) for row in rows])
    assert int(figures) == len(rows)
    assert (0 if kept == "none" else int(kept)) == sum(p <= ALPHA for p in adjusted)


def test_each_mechanism_in_a_sentence_is_its_row_of_the_mechanism_table(report):
    _, text = report
    rows = {(row["pollster"], row["mechanism"]): row
            for row in table_with(sections(text)[SECTION_TITLES["polls"]], "mechanism")}
    fitted = re.compile(r"(\w+) \((?P<estimate>[\d.-]+ \[[\d.-]+, [\d.-]+\]), d² = (?P<d2>[\d.]+) "
                        r"on (?P<df>\d+), "
                        r"fit p = (?P<p>[\d.e+-]+)\)")
    checked = 0
    for pollster, label in LABELS.items():
        sentence = next((s for s in answer_sentences(text) if s.startswith(f"{label}, one mechanism")), None)
        if sentence is None:
            continue
        fits, _, rest = sentence.partition("move the gap in its direction but do not fit")
        for part, fits_cell in ((fits, "yes"), (rest, "no")):
            for m in fitted.finditer(part.partition("cannot produce")[0]):
                row = rows[(pollster, m.group(1))]
                assert plain(m["estimate"]) == plain(row["estimate [95%]"])
                assert (m["d2"], m["df"], plain(m["p"])) == (row["d²"], row["df"], plain(row["fit p"]))
                assert row["fits"] == fits_cell and row["moves the gap the observed way"] == "yes"
                checked += 1
        for name in sentence.partition("cannot produce a gap in this direction: ")[2].rstrip(".").split(", "):
            if name:
                assert rows[(pollster, name)]["moves the gap the observed way"] == "no"
    assert checked >= 1


def test_the_joint_sentence_is_the_joint_table(report):
    _, text = report
    rows = {row["published figures"]: row for row in table_with(sections(text)[SECTION_TITLES["polls"]], "T²")
            if "published figures" in row}
    sentence = next(s for s in answer_sentences(text) if s.startswith("All published figures jointly"))
    m = re.search(r"T² = ([\d.]+), F = ([\d.]+) on \((\d+), (\d+)\), p = ([\d.e+-]+) from the F reference", sentence)
    overall = rows["all polls"]
    assert m.groups() == (overall["T²"], overall["F"], *re.findall(r"\d+", overall["df"]),
                          plain(overall["p (F reference)"]))
    for pollster, label in LABELS.items():
        assert f"{label} T² = {rows[pollster]['T²']}" in sentence


def holm_names(sentence: str) -> list[str]:
    """The tests the forensic sentence names as rejected after Holm's correction."""
    clause = sentence.partition("after Holm's correction across the calibrated tests")[2].partition(" (tests whose")[0]
    names = (clause[2:clause.find(")")] if clause.startswith(" (") else
             clause[2:].partition(" on ")[0] if clause.startswith(": ") else "")
    return [name for name in re.split(r", | and ", names) if name]


def test_the_forensic_sentence_counts_the_forensic_tables_verdicts(report):
    _, text = report
    section = sections(text)[SECTION_TITLES["forensics"]]
    rows = table_with(section, "p-value")
    tested = [row for row in rows if row["p-value"] != "—"]
    anomalous = [row["test"] for row in tested if row["verdict"].startswith("anomalous")]
    sentence = next(s for s in answer_sentences(text) if "station-level tests" in s)
    assert "Against the textbook null" in sentence
    assert any(block.startswith("*textbook null, 40 draws, seed 3;") for block in section)
    rejected = [row["test"] for row in tested if row["after Holm's correction"] == "rejected"]
    count = re.search(r"; (\d+|none) (?:stays|stay|rejects|reject) (?:so )?after Holm's", sentence).group(1)
    assert (0 if count == "none" else int(count)) == len(rejected)
    assert set(holm_names(sentence)) == set(rejected)
    if anomalous:
        assert re.search(rf"{len(anomalous)} of {len(tested)} station-level tests", sentence)
        for row in tested:
            size = re.search(rf"\b{row['test']} \((?:[^;()]*(?:\([^()]*\))?; )?rejected (\d+ of \d+) clean "
                             r"elections\)", sentence)
            measured = row["clean elections rejected"] != "not measured"
            assert (size.group(1) if size else None) == (row["clean elections rejected"]
                                                         if row["test"] in anomalous and measured else None)
            if row["test"] in anomalous and not measured:
                assert f"{row['test']} (size not measured)" in sentence
    else:
        assert f"none of the {len(tested)} station-level tests is anomalous" in sentence


# -- Markdown and HTML ----------------------------------------------------------------------------------------

class _Text(HTMLParser):
    """The text of an HTML page's sections (``<section>``), one entry per block element, whitespace collapsed;
    figures by their captions."""

    BLOCKS = {"p", "li", "th", "td", "pre", "h2", "figcaption", "caption"}

    def __init__(self):
        super().__init__()
        self.blocks, self.depth, self.open = [], 0, None

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.open = []

    def handle_endtag(self, tag):
        if tag in self.BLOCKS and self.open is not None:
            self.blocks.append(" ".join("".join(self.open).split()))
            self.open = None

    def handle_data(self, data):
        if self.open is not None:
            self.open.append(data)


def text_blocks(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return [block for block in parser.blocks if block]


def test_the_markdown_carries_the_text_of_the_html(report):
    """The Markdown, rendered by a CommonMark parser with tables, reads as the HTML: the same sections,
    sentences, table cells, captions and preformatted text, in the same order (a caption is a paragraph in
    Markdown, a table's caption in HTML; a figure's is said once in HTML, as alt text and caption in Markdown)."""
    doc, _ = report
    html = text_blocks(render_html.render(doc).partition("</nav>")[2])
    markdown = text_blocks(MarkdownIt("commonmark").enable("table").render(render_md.render(doc, "r_files")))
    assert sorted(markdown) == sorted(html)
