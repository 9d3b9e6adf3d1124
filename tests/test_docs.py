"""The documentation matches the code: every command's synopsis in the README and docs/*.md lists each flag its
parser accepts (and no other), and the README's Python tour runs with the shapes its comments state."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from simkit.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: flags a parser accepts only to refuse them in one line (documented beside the shared flags, not in a synopsis)
REFUSED = {"infer": {"--sweep"}, "timeline": {"--sweep"}}
#: flags of every parser that no synopsis repeats
IMPLICIT = {"-h", "--help"}


def commands() -> dict:
    """Each subcommand's parser, by name."""
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return dict(action.choices)


def synopses(command: str) -> list[str]:
    """The synopses of ``simkit COMMAND`` in the pages: a fenced line ``simkit COMMAND ... [...]`` with its indented
    continuation lines, or an inline code span of that form; each as one line of text."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            lines = block.splitlines()
            for index, line in enumerate(lines):
                if line.startswith(f"simkit {command} ") and "[" in line:
                    continued = []
                    for more in lines[index + 1:]:
                        if not more.startswith(" "):
                            break
                        continued.append(more.strip())
                    found.append(" ".join([line, *continued]))
        outside = re.sub(r"```.*?```", "", text, flags=re.S)
        found += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", outside)
                  if span.startswith(f"simkit {command} ") and "[" in span]
    return found


def flags_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", text))


@pytest.mark.parametrize("command", sorted(commands()))
def test_each_command_synopsis_lists_exactly_the_flags_its_parser_accepts(command):
    """Each synopsis on its own (not their union: a stale synopsis beside a full one passed) shows every flag of the
    parser, an alias standing for its option, and no other."""
    parser = commands()[command]
    found = synopses(command)
    assert found, f"no synopsis of simkit {command} in README.md or docs/*.md"
    accepted = {option for action in parser._actions for option in action.option_strings}
    for synopsis in found:
        shown = flags_in(synopsis)
        missing = [action.option_strings for action in parser._actions if action.option_strings
                   and not set(action.option_strings) & (shown | IMPLICIT | REFUSED.get(command, set()))]
        assert not missing, f"simkit {command}: flags this synopsis does not show: {missing}\n{synopsis}"
        assert shown <= accepted, f"simkit {command}: the synopsis shows flags the parser lacks: {shown - accepted}"


def readme_tour() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"### Python\n\n```python\n(.*?)```", text, flags=re.S).group(1)


def stated_dims(line: str) -> tuple[str, ...] | None:
    """The dims a tour line's comment states, ``# (replicate,)`` -> ("replicate",); None when it states none."""
    match = re.search(r"#\s*\(([\w, ]*)\)", line)
    return None if match is None else tuple(name.strip() for name in match.group(1).split(",") if name.strip())


def test_readme_python_tour_runs_with_the_shapes_it_states(monkeypatch):
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    checked = 0
    for line in readme_tour().splitlines():
        statement = ast.parse(line).body[0]
        exec(compile(ast.Module([statement], []), "README.md", "exec"), namespace)
        dims = stated_dims(line)
        if dims is None:
            continue
        value = (namespace[statement.targets[0].id] if isinstance(statement, ast.Assign)
                 else eval(compile(ast.Expression(statement.value), "README.md", "eval"), namespace))
        assert value.dims == dims, line
        checked += 1
    assert checked == 2


def config_rows() -> dict[str, str]:
    """The README's config table: each row's text by its table cell (``[turnout]``, ``[[options]]``, ...)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return {match.group(1): match.group(2) for match in re.finditer(r"^\| `([^`]+)` \| (.*) \|$", text, flags=re.M)}


@pytest.mark.parametrize("table, models", [
    ("[electorate]", ("SyntheticElectorate", "CsvElectorate", "Region")), ("[[options]]", ("Option",)),
    ("[turnout]", ("Turnout",)), ("[preferences]", ("Preferences",)), ("[run]", ("RunSettings",)),
    ("[observed]", ("Observed",)), ("[timeline]", ("TimelineConfig",))])
def test_readme_config_table_names_every_field_of_its_blocks(table, models):
    from simkit.config import core, timeline

    row = config_rows()[table]
    named = set(re.findall(r"`([\w.\[\]]+)", row))  # a span's leading name: `source = "csv"` names source
    words = {part for name in named for part in re.split(r"[.\[\]]+", name) if part}
    fields = {field for model in models for field in getattr(core, model, getattr(timeline, model, None)).model_fields}
    # the turnout and preference models' dispersion is named in words beside each model (dispersion = SD ...)
    assert fields - {"dispersion"} <= words, f"{table}: fields the README's table does not name: {fields - words}"


def test_readme_output_schema_names_every_attribute_of_a_simulation(tmp_path):
    import tomli_w

    import simkit
    from conftest import small_config_dict

    path = tmp_path / "x.toml"
    path.write_text(tomli_w.dumps(small_config_dict()))
    attrs = simkit.simulate(simkit.load_config(path), replicates=1).attrs
    text = (REPO / "README.md").read_text(encoding="utf-8")
    schema = " ".join(text[text.index("### Output schema"):text.index("### How the engine draws")].split())
    named = set(re.findall(r"`(\w+)", schema))
    versions = {name for name in attrs if name.endswith("_version")}
    assert versions == {f"{package}_version" for package in ("simkit", "numpy", "scipy", "xarray")}, versions
    assert "simkit/numpy/scipy/xarray versions" in schema and "creation time" in schema
    assert set(attrs) - versions - {"created"} <= named, f"attributes the README does not name: {set(attrs) - named}"


def test_the_exit_poll_page_names_every_ledger_verdict_and_what_borderline_means():
    """docs/exit-polls.md listed three of the ledger's verdicts (not "... wherever compared", nor null) and used
    "borderline" in its generated statements without saying what it means."""
    import numpy as np

    from simkit.polls.ledger import ledger_verdict

    text = " ".join((REPO / "docs" / "exit-polls.md").read_text(encoding="utf-8").split())
    verdicts = {ledger_verdict(np.array(agree), points) for agree in ([True], [False], [True, False])
                for points in (len(agree), len(agree) + 1)}
    assert {verdict for verdict in verdicts if f"`{verdict}`" not in text} == set()
    assert "null when it was compared at no point" in text
    begin, end = text.index("<!-- exit-poll-tables:begin -->"), text.index("<!-- exit-poll-tables:end -->")
    assert '"borderline" when it lies within 2 of those SE of 0.05' in text[:begin] + text[end:]


def test_the_readme_shows_the_discard_of_an_interrupted_dask_run_as_it_is_said(tmp_path, caplog):
    """The README's example named the target and the work directory otherwise than the real line does."""
    import json
    import logging

    from simkit.engine import distributed

    work = distributed._WorkDir(tmp_path / "kz.zarr")
    work.markers.mkdir(parents=True)
    work.store.mkdir()
    (work.path / distributed._MANIFEST).write_text(json.dumps({}))  # a run with this (empty) manifest: resumable
    for part in range(12):
        (work.markers / f"part-{part}").touch()
    with caplog.at_level(logging.WARNING, logger="simkit"):
        work.discard({})
    said = f"simkit: {caplog.records[-1].getMessage()}".replace(str(tmp_path), "/shared")
    assert said in " ".join((REPO / "README.md").read_text(encoding="utf-8").split())


#: a repository file the pages cite: a path under one of these folders ending in one of these extensions
CITED_PATH = re.compile(r"(?<![\w/.-])((?:simkit|benchmarks|scripts|tests|docs|configs|notebooks|examples)/[\w/.-]*"
                        r"\.(?:py|md|toml|json|csv|html|png))(?![\w*])")
#: a dotted name in the package, ``simkit.forensics.floor`` or ``simkit.schema.rejects``
CITED_NAME = re.compile(r"(?<![\w./])(simkit(?:\.\w+)+)")


def prose_and_commands(text: str) -> str:
    """A page's text outside fenced blocks, and the command lines inside them (``simkit ...``, ``python ...``):
    a fenced block's other lines show output (an error naming a made-up ``configs/x.toml``), not references."""
    commands = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
                for line in block.splitlines() if line.lstrip().startswith(("simkit ", "python "))]
    return "\n".join([re.sub(r"```.*?```", "", text, flags=re.S), *commands])


def resolves(name: str) -> bool:
    """Whether ``simkit.a.b.c`` names a module, or an attribute reached from the longest importable module."""
    import importlib

    parts = name.split(".")
    for length in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:length]))
        except ImportError:
            continue
        for part in parts[length:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_file_and_name_a_page_cites_exists(page):
    """A page cited ``simkit.forensics.power.planted_power`` after the function was removed: each file path
    (``simkit/io.py``, ``scripts/exit_poll_tables.py``) and each dotted name of the package the page cites exists."""
    text = prose_and_commands(page.read_text(encoding="utf-8"))
    missing_files = sorted({path for path in CITED_PATH.findall(text) if not (REPO / path).exists()})
    missing_names = sorted({name for name in CITED_NAME.findall(text) if not resolves(name)})
    assert not missing_files, f"{page.name} cites files that do not exist: {missing_files}"
    assert not missing_names, f"{page.name} cites names the package lacks: {missing_names}"
