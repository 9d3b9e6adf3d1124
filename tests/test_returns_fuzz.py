"""Fuzzed return files and maps through ``simkit forensics``: every run ends with exit 0, or with exit 2 and one line
naming the file and the field; never a traceback or a warning, never an output left behind by a failed run.

Files vary in delimiter, encoding, byte-order mark, cells (counts, integral and non-integral decimals, blanks,
``NA``, negative, huge, non-numeric and unicode-digit text), duplicated ids, 0-15 rows (1-3 often), container (plain,
gzip, ZIP with or without the member); maps vary in delimiter, encoding, member, column references and the types
of their tables. Fixed seed (``derandomize``) and a bounded number of examples; cheap tests with the textbook null.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.cli.main import main

COLUMNS = ("id", "region", "registered", "ballots", "a", "b")
CELLS = st.one_of(
    st.integers(0, 2000).map(str),
    st.integers(0, 2000).map(lambda n: f"{n}.0"),
    st.sampled_from(["", " ", "NA", "-", "12.5", "-7", "1e3", "9223372036854775808", "²", "١٢", "1,208", "abc",
                     "0", "00", "+5", "nan", "inf", "\u00a0", "7" * 30]),
)
#: where an error may point: the data file or the map (path, then a field), or a command-line option
FIELD = re.compile(r"(DATA|map|format(\.\w+)?|columns(\.\w+)?|options(\.[^:]+)?|leader|source|counts)(, [^:]+)*: ")


MAP_COLUMNS = (
    'registered = "registered"\nballots = "ballots"\nregion = "region"\nid = "id"',
    'registered = 2\nballots = 3\nregion = [1]\nid = [0, 1]',
    'registered = "registered"\nballots = {sum = ["a", "b"]}',
)
BAD_MAP_COLUMNS = (
    'registered = "ballots"\nballots = "registered"',
    'registered = "region"\nballots = "ballots"',
    'registered = 9\nballots = "ballots"',
    'registered = "registered"',
)


def _rarely(draw, p: int) -> bool:
    """True with probability about 1 / p (a middle value: hypothesis favours the ends of a range)."""
    return draw(st.integers(0, p - 1)) == p // 2


@st.composite
def returns_files(draw):
    """(file bytes, file suffix, ZIP member, map text) of one fuzzed returns file and its mapping: most often a
    valid pair, with one or more mutations drawn at small probabilities."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    n_rows = draw(st.sampled_from([0, 1, 2, 3, 12, 30, 30]))
    dirty = _rarely(draw, 3)
    rows = []
    for i in range(n_rows):
        registered = draw(st.integers(200, 1500))
        ballots = draw(st.integers(0, registered))
        a = draw(st.integers(0, ballots))
        station = str(draw(st.integers(0, 3))) if _rarely(draw, 4) else str(i)
        row = [station, draw(st.sampled_from(["N", "S", ""])), str(registered), str(ballots), str(a),
               str(ballots - a)]
        if dirty:
            row = [draw(CELLS) if _rarely(draw, 5) else cell for cell in row]
        rows.append(row)
    header = list(COLUMNS[:-1]) if _rarely(draw, 8) else list(COLUMNS)
    text = "\n".join(delimiter.join(f'"{c}"' if delimiter in c else c for c in line) for line in [header, *rows])
    if _rarely(draw, 12):
        text = ""
    bom = "\ufeff".encode() if encoding == "utf-8" and _rarely(draw, 3) else b""
    data = bom + text.encode(encoding, errors="replace")
    suffix = draw(st.sampled_from([".csv", ".csv", ".gz", ".zip"]))
    member = "other.csv" if _rarely(draw, 6) else "r.csv"
    map_delimiter = draw(st.sampled_from([",", ";;", "", "\t"])) if _rarely(draw, 8) else delimiter
    map_encoding = draw(st.sampled_from(["utf-8", "ascii", "klingon"])) if _rarely(draw, 8) else encoding
    columns = draw(st.sampled_from(BAD_MAP_COLUMNS if _rarely(draw, 8) else MAP_COLUMNS))
    options = draw(st.sampled_from(['a = "a"\nb = "b"', 'a = 4\nb = 5', 'a = "a"']))
    if _rarely(draw, 10):
        options = 'a = "a"\nb = "nope"'
    top = draw(st.sampled_from(["", "format = 5\n", "columns = [1, 2]\n", 'options = "a"\n', "leader = 3\n"])) \
        if _rarely(draw, 8) else ""
    tables = [f'[format]\ndelimiter = "{map_delimiter}"\nencoding = "{map_encoding}"\nmember = "r.csv"'
              if "format" not in top else "", f"[columns]\n{columns}" if "columns" not in top else "",
              f"[options]\n{options}" if "options" not in top else ""]
    map_text = top + "\n".join(tables) + "\n"
    return data, suffix, member, map_text.replace("\t", "\\t")


def _write(folder: Path, data: bytes, suffix: str, member: str) -> Path:
    if suffix == ".gz":
        path = folder / "r.csv.gz"
        path.write_bytes(gzip.compress(data))
    elif suffix == ".zip":
        path = folder / "r.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, data)
    else:
        path = folder / "r.csv"
        path.write_bytes(data)
    return path


@settings(max_examples=120, derandomize=True, deadline=None, database=None)
@given(returns_files())
def test_fuzzed_returns_exit_0_or_one_line_2(case):
    data, suffix, member, map_text = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write(folder, data, suffix, member)
        mapping = folder / "m.toml"
        mapping.write_text(map_text, encoding="utf-8")
        output = folder / "out.nc"
        out, err = io.StringIO(), io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            code = main(["forensics", str(path), "--map", str(mapping), "--tests",
                         "second_digit,last_digit,correlation,sobyanin,log_vote_rate,integer_percent",
                         "--null", "textbook", "--draws", "20", "--power", "0", "-o", str(output)])
        assert [str(w.message) for w in caught] == []
        stderr = err.getvalue()
        assert code in (0, 2)
        if code == 0:
            assert stderr == "" and output.exists()
        else:
            assert stderr.count("\n") == 1 and stderr.endswith("\n")
            assert "Traceback" not in stderr
            assert stderr.startswith((f"{path}: ", f"{mapping}: ")), stderr
            assert FIELD.match(stderr.split(": ", 1)[1]), stderr
            assert len(stderr) < 400
            assert not output.exists() and out.getvalue() == ""
