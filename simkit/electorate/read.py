"""Reading the rows of a returns file: plain text, gzip, or one member of a ZIP archive.

A gzip or ZIP file is known by its first bytes, whatever its name (a ``.csv`` that is gzipped is read as gzip); a
file of no such bytes is read by its suffix. A spreadsheet workbook (``.xlsx``, ``.xls``, ``.ods``) and binary
data are named as such rather than decoded. The file is streamed through a byte counter, so a small archive that
would decompress into gigabytes stops at :data:`MAX_TEXT_BYTES` with an error instead of filling memory. A UTF-8
byte-order mark is dropped. A row that repeats the header is refused with its line: files joined one after the other
(two rounds' returns) would be read as one election's stations. Any problem is a one-line ``InputError`` naming the
file and the field (``DATA``, ``format.member``, ``format.encoding``).
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from simkit.errors import InputError, counted, name, shown
from simkit.electorate.mapping import ReturnsMapping

#: largest returns text read (after decompression): ~10 million stations, beyond any national election
MAX_TEXT_BYTES = 1 << 30
#: the first bytes of a gzip file and of a ZIP archive (one with members, and an empty one)
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: the first bytes of an OLE2 compound file: an Excel 97-2003 workbook (or another Office 97-2003 file)
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: members that make a ZIP archive an Office Open XML (``.xlsx``) or OpenDocument (``.ods``) file
WORKBOOK_MEMBERS = frozenset({"[Content_Types].xml", "mimetype"})
WORKBOOK = "a spreadsheet workbook, not CSV text (save the sheet as CSV)"
#: bytes of a file's text looked at for the marks of binary data or of UTF-16/32 text
HEAD_BYTES = 4096


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file is read (``delimiter``, ``encoding``, the ZIP ``member``: None for an archive's
    only file) and what its problems name: ``file``, the field of the file itself, ``encoding_field`` and
    ``member_field`` (None where no member can be named), and ``noun``, what the file should be."""

    delimiter: str = ","
    encoding: str = "utf-8"
    member: str | None = None
    file: str = "DATA"
    encoding_field: str = "format.encoding"
    member_field: str | None = "format.member"
    noun: str = "returns file"


class _Capped(io.RawIOBase):
    """A binary stream that fails once more than ``limit`` bytes have been read from ``raw``."""

    def __init__(self, raw: BinaryIO, limit: int, what: str, owner=None):
        super().__init__()
        self.raw, self.limit, self.left, self.what, self.owner = raw, limit, limit, what, owner

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Close the stream and the archive it was read from."""
        if not self.closed:
            self.raw.close()
            if self.owner is not None:
                self.owner.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise InputError(f"{self.what}: more than {self.limit:,} bytes of text once decompressed "
                             "(not a station-level returns file?)")
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def without_mark(encoding: str) -> str:
    """The codec that reads ``encoding`` and drops a leading UTF-8 byte-order mark (a spreadsheet's UTF-8 export
    starts with one, which would otherwise become part of the first column's name)."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def row_cells(row: dict, header: list[str]) -> int:
    """The cells of ``row`` as :class:`csv.DictReader` read it under ``header`` (its columns, a name given twice
    counted twice): the header's columns up to the last one the row reached (the columns past a short row's end
    are None; an unclosed quote takes the rest of the file into one cell) and the cells beyond the header (kept
    under the key None, blank ones included). Exact unless the column just before a short row's end shares its
    name with one past it."""
    cells = len(header)
    while cells and row[header[cells - 1]] is None:
        cells -= 1
    return cells + len(row.get(None) or [])


#: delimiters a CSV export commonly uses: a header read as one field that one of them splits was read with another
COMMON_DELIMITERS = (",", ";", "\t", "|")


def delimiter_hint(header: list[str], delimiter: str, field: str) -> str:
    """`` (the header is one field that ';' splits into 9 names: set FIELD)`` when ``header`` (a file's header
    row, read at ``delimiter``, the value of ``field``) is a single field that another of :data:`COMMON_DELIMITERS`
    splits into names: the file's delimiter is that one. ``""`` otherwise."""
    if len(header) != 1:
        return ""
    for other in COMMON_DELIMITERS:
        names = header[0].split(other)
        if other != delimiter and len(names) > 1:
            return f" (the header is one field that {shown(other)} splits into {len(names)} names: set {field})"
    return ""


def width_problem(row: dict, header: list[str], number: int) -> str | None:
    """``row NUMBER has K cells, the header M columns (…)`` for a row (:func:`row_cells`) wider or narrower than
    ``header``, with the likely cause; None when it fits."""
    cells = row_cells(row, header)
    if cells == len(header):
        return None
    cause = ("a delimiter inside an unquoted field, such as a thousands separator?" if cells > len(header)
             else "a field missing, or an unclosed quote?")
    return f"row {number} has {counted(cells, 'cell')}, the header {len(header)} columns ({cause})"


def returns_format(mapping: ReturnsMapping) -> TextFormat:
    """How a returns file is read under ``mapping`` (its ``[format]``)."""
    return TextFormat(mapping.delimiter, mapping.encoding, mapping.member)


def read_rows(path: Path, mapping: ReturnsMapping) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's line of the returns file at ``path`` read as ``mapping`` says
    (:func:`read_records`)."""
    return read_records(path, returns_format(mapping))


def read_records(path: Path, fmt: TextFormat) -> tuple[list[str], list[list[str]], list[int]]:
    """Header (the first non-empty row), the non-empty rows after it and the 1-based line of the file's text each
    row starts on, of the delimited text at ``path`` (a member of it when a ZIP archive, gunzipped when gzip:
    :func:`container`), decoded and split as ``fmt`` says. A row that repeats the header (:func:`_trimmed`) is an
    InputError naming its line."""
    with _csv_reader(path, fmt) as (header, reader):
        rows, lines, last = [], [], reader.line_num
        names = _trimmed(header)
        for row in reader:
            if row:
                if names and row[0].strip() == names[0] and _trimmed(row) == names:
                    raise InputError(f"{path}: {fmt.file}: line {last + 1:,} repeats the header (files joined, such "
                                     "as two elections' or rounds' rows? keep one election's rows)")
                rows.append(row)
                lines.append(last + 1)
            last = reader.line_num  # a row's cells may span lines (a quoted line break, an unclosed quote)
        return header, rows, lines


def _trimmed(row: list[str]) -> list[str]:
    """The cells of ``row`` stripped of surrounding spaces, blank cells at its end left out: a row that repeats the
    header, so read, is files joined one after the other (two rounds' returns), whose rows would be read as one
    election's stations."""
    cells = [cell.strip() for cell in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def read_header(path: Path, fmt: TextFormat) -> list[str]:
    """The header of the file :func:`read_records` reads, read alone: a file can be checked against what a caller
    reads of it before its rows are read (a large file of other text would fill memory first)."""
    with _csv_reader(path, fmt) as (header, _):
        return header


@contextlib.contextmanager
def _csv_reader(path: Path, fmt: TextFormat) -> Iterator[tuple[list[str], Any]]:
    """(header, the CSV reader past it) of the file at ``path`` read as ``fmt`` says; any problem met while it is
    open, an InputError of one line naming the file and the field of ``fmt`` at fault."""
    if path.is_dir():
        raise InputError(f"{path}: {fmt.file}: is a folder, not a {fmt.noun}")
    if not path.is_file():
        raise InputError(f"{path}: {fmt.file}: file not found")
    reader = None
    try:
        with _open_binary(path, fmt) as raw:
            buffered = io.BufferedReader(raw)
            _check_text(path, buffered.peek(HEAD_BYTES)[:HEAD_BYTES], fmt)
            text = io.TextIOWrapper(buffered, encoding=without_mark(fmt.encoding), newline="")
            reader = csv.reader(text, delimiter=fmt.delimiter)
            header = next((row for row in reader if row), None)  # blank lines above the header are no header
            if header is None:
                raise InputError(f"{path}: {fmt.file}: empty file")
            yield header, reader
    except UnicodeDecodeError:
        line, byte = undecodable(path, fmt)
        raise InputError(f"{path}: {fmt.encoding_field}: not {name(fmt.encoding)} text (line {line:,}, byte "
                         f"0x{byte:02x}); set {fmt.encoding_field}") from None
    except csv.Error as err:
        raise InputError(f"{path}: {fmt.file}: line {reader.line_num}: not readable as CSV "
                         f"({str(err).splitlines()[0][:80]})") from None
    except (zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError):
        raise InputError(f"{path}: {fmt.file}: damaged or not a {container(path, fmt)} archive") from None
    except OSError as err:
        raise InputError(f"{path}: {fmt.file}: cannot be read ({err.strerror or type(err).__name__})") from None


def _check_text(path: Path, head: bytes, fmt: TextFormat) -> None:
    """InputError when ``head``, the first bytes of the file's text, is not text in ``fmt.encoding`` the way no
    reading of it can fix: UTF-16 or UTF-32 text (its byte-order mark) read with another encoding, or binary data (a
    NUL byte, which no 8-bit or UTF-8 text holds). Nothing to check when the encoding is UTF-16 or UTF-32 itself."""
    if codecs.lookup(fmt.encoding).name.startswith(("utf-16", "utf-32")):
        return
    for width, marks in (("32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
                         ("16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))):
        if head.startswith(marks):
            raise InputError(f"{path}: {fmt.encoding_field}: UTF-{width} text (it starts with a UTF-{width} "
                             f"byte-order mark), not {name(fmt.encoding)}: set {fmt.encoding_field} = "
                             f"\"utf-{width}\"")
    nul = head.find(b"\0")
    if nul >= 0:
        raise InputError(f"{path}: {fmt.file}: binary data, not CSV text (a NUL byte at byte {nul:,}; UTF-16 text "
                         f"without a byte-order mark? set {fmt.encoding_field})")


def undecodable(path: Path, fmt: TextFormat) -> tuple[int, int]:
    """(line, byte): the 1-based line of the file's text that holds its first byte sequence ``fmt.encoding``
    cannot decode, and that sequence's first byte. The text is decoded line by line here, as the reader decodes it
    in blocks of many lines, where the line it has reached says nothing of the line at fault; read again only once
    a decoding has failed."""
    decoder = codecs.getincrementaldecoder(without_mark(fmt.encoding))()
    line = 1
    with _open_binary(path, fmt) as raw:
        for piece in io.BufferedReader(raw):  # split after each b"\n"
            try:
                line += decoder.decode(piece).count("\n")
            except UnicodeDecodeError as err:
                return line, err.object[err.start]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:  # the file ends inside a character
            return line, err.object[err.start]
    raise ValueError(f"{path}: every line decodes")


def container(path: Path, fmt: TextFormat) -> str:
    """How the file at ``path`` is packed: ``gz``, ``zip`` or ``text``, by its first bytes (:data:`GZIP_MAGIC`,
    :data:`ZIP_MAGIC`), else by its suffix (``.gz``, ``.zip``; any other is text). InputError naming ``fmt.file``
    for an Excel 97-2003 workbook (:data:`OLE2_MAGIC`), which no reading of text can read."""
    with open(path, "rb") as handle:
        head = handle.read(len(OLE2_MAGIC))
    if head.startswith(OLE2_MAGIC):
        raise InputError(f"{path}: {fmt.file}: {WORKBOOK}")
    if head.startswith(GZIP_MAGIC):
        return "gz"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in ("gz", "zip") else "text"


def _open_binary(path: Path, fmt: TextFormat) -> _Capped:
    """The file's bytes as a capped stream (decompressed when :func:`container` finds gzip or ZIP)."""
    packed = container(path, fmt)
    if packed == "gz":
        return _Capped(gzip.open(path, "rb"), MAX_TEXT_BYTES, f"{path}: {fmt.file}")
    if packed == "text":
        return _Capped(open(path, "rb"), MAX_TEXT_BYTES, f"{path}: {fmt.file}")
    archive = zipfile.ZipFile(path)
    names = [n for n in archive.namelist() if not n.endswith("/")]
    member, field = fmt.member, fmt.member_field or fmt.file
    if member is None:
        if WORKBOOK_MEMBERS & set(names):
            archive.close()
            raise InputError(f"{path}: {fmt.file}: {WORKBOOK}")
        if len(names) != 1:
            archive.close()
            remedy = "name one in the mapping" if fmt.member_field else "give an archive of one file"
            raise InputError(f"{path}: {field}: the archive holds {len(names)} files; {remedy}")
        member = names[0]
    if member not in names:
        archive.close()
        raise InputError(f"{path}: {field}: no file {shown(member)} in the archive ({len(names)} files)")
    size = archive.getinfo(member).file_size
    if size > MAX_TEXT_BYTES:
        archive.close()
        raise InputError(f"{path}: {field}: {shown(member)} decompresses to {size:,} bytes, above the "
                         f"limit of {MAX_TEXT_BYTES:,} bytes")
    return _Capped(archive.open(member), MAX_TEXT_BYTES, f"{path}: {field}", owner=archive)
