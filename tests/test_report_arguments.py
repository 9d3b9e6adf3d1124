"""``simkit.report.build`` from Python: bad arguments are an InputError naming the parameter, raised before
any simulation or test runs."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

import simkit.report as report
from simkit.errors import MAX_LISTED, InputError
from simkit.report import analyses


@pytest.fixture
def no_work(monkeypatch):
    """Any analysis reached is a failure: the arguments must be refused first."""
    def reached(*args, **kwargs):
        raise AssertionError("an analysis ran before the arguments were checked")
    for name in ("load", "simulate", "compare", "forensics"):
        monkeypatch.setattr(analyses, name, reached)
    monkeypatch.setattr(report, "load_config", reached)


@pytest.mark.parametrize("arguments, parameter, fragment", [
    ({"power": -1}, "power", "power: -1: must be 0 or more"),
    ({"format": "pdf"}, "format", "format: pdf: choose from html, md"),
    ({"draws": 0}, "draws", "draws: 0: must be a positive integer"),
    ({"null": "x"}, "null", r"null: 'x': unknown name \(choose from textbook, simulated\)$"),
    ({"null": "flat"}, "null", r"null: 'flat': unknown name \(choose from textbook, simulated\)$"),
    ({"tests": ["nope"]}, "tests", "tests: unknown test id 'nope'"),
])
def test_bad_arguments_name_the_parameter_before_any_work(no_work, arguments, parameter, fragment):
    with pytest.raises(InputError, match=fragment) as error:
        report.build("x.toml", returns="r.csv", map="m.toml", **arguments)
    assert error.value.parameters == (parameter,)


def test_the_command_line_refuses_the_nulls_the_library_refuses(tmp_path, capsys):
    """``simkit report --null`` offered fewer nulls than ``build`` took (flat): one list, :data:`NULLS`, both sides."""
    from simkit.cli.main import main
    assert main(["report", "--preset", "russia-2011", "--null", "flat", "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.strip().endswith("--null: 'flat': unknown name (choose from textbook, simulated)")


def test_returns_without_a_mapping_name_the_parameters_of_build(tmp_path):
    (tmp_path / "r.csv").write_text("registered,ballots\n10,5\n")
    with pytest.raises(InputError, match="give preset=NAME or map=MAP.toml") as error:
        report.build(returns=tmp_path / "r.csv")
    assert error.value.parameters == ("returns", "preset", "map")


def empty_document():
    return report.Document("Testland: simkit report", [], {}, [], {})


def document_with_a_figure():
    from simkit.report.document import Image, Section

    return report.Document("Testland: simkit report", [Section("answer", [Image("a", b"png", "A figure.")])], {},
                           [], {})


@pytest.mark.parametrize("name, written", [("r.md", "<!-- simkit report -->"), ("r.html", "<!DOCTYPE html>"),
                                           ("r.txt", "<!DOCTYPE html>")])
def test_without_a_format_the_extension_chooses_it(tmp_path, name, written):
    """``write(doc, "r.md")`` once wrote HTML into r.md (the format defaulted to html whatever the name)."""
    report.write(empty_document(), tmp_path / name)
    assert (tmp_path / name).read_text().startswith(written)


@pytest.mark.parametrize("name, format", [("r.md", "html"), ("r.html", "md")])
def test_a_format_contradicting_the_extension_is_refused(tmp_path, name, format):
    with pytest.raises(InputError, match=f"format: {format} does not match the extension") as error:
        report.write(empty_document(), tmp_path / name, format)
    assert error.value.parameters == ("format",) and not list(tmp_path.iterdir())


def test_a_report_and_calibrate_of_the_fingerprint_alone_have_nothing_to_reject():
    """The fingerprint is descriptive: a size or power count of it alone is empty, not a refusal of the test ids."""
    from simkit.forensics import election_rejections
    assert election_rejections(None, ["fingerprint"], null="textbook", draws=10) == {}


def test_a_markdown_report_stopped_between_its_renames_is_not_recorded_as_written(tmp_path, monkeypatch):
    """The text was once put in place (and recorded as written in full) before its figures folder: a stop between
    the two renames left a report linking figures that were not there, and the command said it was complete."""
    from simkit.placement import moves

    put = moves.put_in_place
    placed = []

    def stopped_at_the_second(staging, target):
        if placed:
            raise KeyboardInterrupt
        placed.append(target)
        return put(staging, target)

    monkeypatch.setattr(moves, "put_in_place", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt), moves.recording_placed() as written:
        report.write(document_with_a_figure(), tmp_path / "r.md")
    assert placed == [tmp_path / "r_files"] and written == []
    assert not (tmp_path / "r.md").exists()


def test_a_full_disk_while_the_figures_are_written_names_the_figures_folder(tmp_path, monkeypatch):
    """The line of a full disk named the report (the last output of the two written together) while its figures
    folder was being written."""
    import errno
    import os
    import re

    def filling(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", filling)
    folder = re.escape(str(tmp_path / "r_files"))
    with pytest.raises(InputError, match=f"^{folder}: no space left on the device while writing it"):
        report.write(document_with_a_figure(), tmp_path / "r.md")
    assert list(tmp_path.iterdir()) == []


def test_figures_beside_a_report_that_is_not_utf8_past_its_marker_are_not_recognised(tmp_path):
    from simkit.report.document import GENERATOR

    text = GENERATOR.encode() + b"\n![a](r_files/a.png)\n"
    (tmp_path / "r.md").write_bytes(text + b" " * 100_000 + b"\xff\xfe")  # past what the marker check reads
    (tmp_path / "r_files").mkdir()
    (tmp_path / "r_files" / "a.png").write_bytes(b"png")
    assert report.figures_of(tmp_path / "r.md")(tmp_path / "r_files") is False


def _options(*names_and_labels):
    from types import SimpleNamespace
    return SimpleNamespace(options=[SimpleNamespace(name=n, label=label, kind="candidate")
                                    for n, label in names_and_labels])


def _returns_of(*options):
    import xarray as xr
    return xr.Dataset(coords={"option": list(options) + ["invalid"]}, attrs={"mapping": "m.toml"})


@pytest.mark.parametrize("theirs", ["Pena Nieto", "PEÑA-NIETO", unicodedata.normalize("NFD", "Peña Nieto")])
def test_returns_naming_an_option_with_other_accents_case_or_separators_are_this_election(theirs):
    """The Mexico preset names "Pena Nieto", a config ``pena_nieto`` labelled "Peña Nieto" (or the same label in
    NFD): the returns were refused as another election's."""
    cfg = _options(("pena_nieto", unicodedata.normalize("NFC", "Peña Nieto")), ("lopez_obrador", None))
    analyses.check_one_election(cfg, Path("c.toml"), _returns_of(theirs, "Quadri"))


def test_returns_of_another_election_name_their_mapping_and_cut_long_lists():
    cfg = _options(*[(f"party_{i}", None) for i in range(12)])
    with pytest.raises(InputError) as error:
        analyses.check_one_election(cfg, Path("c.toml"), _returns_of("x" * 100, "Nazarbayev"))
    message = str(error.value)
    assert message.startswith("m.toml: options: none of its options ('xxxx")
    assert "…, 'Nazarbayev') is an option of c.toml ('party_0', " in message, message
    assert f"'party_{MAX_LISTED - 1}', and {12 - MAX_LISTED} more) by name" in message, message


def test_a_signal_after_a_report_without_figures_names_only_what_exists(tmp_path, monkeypatch):
    """A report without figures staged and recorded its figures folder too, then deleted it: a signal's message
    named a folder that did not exist."""
    from simkit.placement import moves

    with moves.recording_placed() as written:
        report.write(empty_document(), tmp_path / "r.md")
    assert written == [tmp_path / "r.md"] and sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]


@pytest.mark.parametrize("document", [empty_document, document_with_a_figure])
def test_write_never_replaces_a_figures_folder_not_its_own(tmp_path, document):
    """``write(doc, "r.md")`` of a report without figures deleted any folder ``r_files/`` (only ``report -o``
    checked it was the figures of its report); one with figures replaced it. Both are refused, nothing written."""
    folder = tmp_path / "r_files"
    folder.mkdir()
    (folder / "mine.txt").write_text("precious")
    with pytest.raises(InputError, match=r"r_files: figures folder: not the figures of a simkit report at "):
        report.write(document(), tmp_path / "r.md")
    assert (folder / "mine.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r_files"]


def test_write_replaces_the_figures_of_its_own_report(tmp_path):
    """The figures folder of the simkit report at the same path is replaced, or removed by a report without
    figures; a file added to it makes it no longer the report's own."""
    report.write(document_with_a_figure(), tmp_path / "r.md")
    report.write(document_with_a_figure(), tmp_path / "r.md")
    assert [p.name for p in (tmp_path / "r_files").iterdir()] == ["a.png"]
    (tmp_path / "r_files" / "extra.txt").write_text("mine")
    with pytest.raises(InputError, match="figures folder"):
        report.write(empty_document(), tmp_path / "r.md")
    (tmp_path / "r_files" / "extra.txt").unlink()
    report.write(empty_document(), tmp_path / "r.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]


@pytest.mark.parametrize("document", [empty_document, document_with_a_figure])
def test_a_linked_figures_folder_is_replaced_as_any_target_not_left(tmp_path, document):
    """``r_files`` a link to the figures of the report at ``r.md``: a report with figures replaced the link by
    its folder, one without left the link silently (its removal ignored the error of deleting a link as a
    folder). Both replace the link as any output target is (the folder it points to is not deleted)."""
    report.write(document_with_a_figure(), tmp_path / "r.md")
    kept = tmp_path / "kept"
    (tmp_path / "r_files").rename(kept)
    (tmp_path / "r_files").symlink_to(kept, target_is_directory=True)
    report.write(document(), tmp_path / "r.md")
    folder = tmp_path / "r_files"
    assert not folder.is_symlink() and folder.is_dir() == bool(document().images)
    assert [p.name for p in kept.iterdir()] == ["a.png"]
