"""``simkit report``: one command from a config (and station returns) to a citable report.

``build(config, returns=..., preset=... | map=..., ...)`` runs the analyses the inputs allow and returns a
:class:`Document`; ``write(doc, path, format)`` renders it (one self-contained HTML file, or Markdown with its
figures in ``NAME_files/`` beside it) through a staging name, so a failed run leaves nothing half-written.
Sections the inputs do not allow are listed in ``Document.omitted`` with the reason, not failed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from simkit.config.load import load_config
from simkit.electorate.build import electorate_of
from simkit.errors import InputError
from simkit.forensics import check_tests
from simkit.forensics.core import check_draws, check_null
from simkit.forensics.defaults import NULL_DRAWS
from simkit.placement.journals import remove_at_once
from simkit.placement.moves import exists
from simkit.placement.placing import nothing_written_on_error, staged, staged_together
from simkit.outputs import contains
from simkit.progress import progress_bar
from simkit.report import analyses, provenance, render_html, render_md, sections
from simkit.report.catalogue import DETECTS
from simkit.report.document import GENERATOR, Document
from simkit.report.verdicts import forensic_verdicts, poll_verdicts, power_verdicts

__all__ = ["build", "write", "check_output", "report_format", "Document", "FORMATS", "NULLS", "poll_verdicts",
           "forensic_verdicts"]

FORMATS = ("html", "md")
#: extension -> the format it names (other extensions take the format given, html by default)
EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md"}
#: defaults of the forensic part (as ``simkit forensics``: textbook or simulated null, draws, power replicates)
NULL, DRAWS, POWER = "simulated", NULL_DRAWS, 5
#: the forensic nulls a report offers: not ``flat``, the earlier one-level model that ``simkit forensics`` keeps
#: for comparison only (docs/forensics.md)
NULLS = ("textbook", "simulated")
#: why the forensic part is left out without returns: the arguments of its InputError (naming the parameters that
#: give them)
NO_RETURNS = {"message": "the station-level tests need returns=DATA with preset=NAME or map=MAP.toml; none given",
              "parameters": ("returns", "preset", "map")}
#: steps after the simulation, for the progress bar
STEPS = ("polls", "forensics", "figures and text")


def _question(title: str, has_polls: bool, has_returns: bool) -> str:
    asks = []
    if has_polls:
        asks.append(f"Is the official count of the {title} consistent with the published exit polls and quick "
                    "counts, beyond what sampling error can explain, and beyond exit polls' usual total error? Which "
                    "single mechanisms could produce the gaps?")
    if has_returns:
        asks.append(f"Do the station-level returns of the {title} show the patterns that known kinds of "
                    "malpractice leave?")
    return " ".join(asks) or f"What does the simulation of the {title} show?"


def check_format(format: str) -> None:
    """``format``: one of :data:`FORMATS` (InputError naming the parameter otherwise)."""
    if format not in FORMATS:
        raise InputError(f"format: {format}: choose from {', '.join(FORMATS)}", parameters=("format",))


def report_format(path: str | Path, format: str | None = None) -> str:
    """The format of a report written to ``path``: ``format`` when given (InputError naming it when the
    extension names the other), else the one the extension names (:data:`EXTENSIONS`), else html."""
    implied = EXTENSIONS.get(Path(path).suffix.lower())
    if format is None:
        return implied or "html"
    check_format(format)
    if implied is not None and implied != format:
        raise InputError(f"{path}: format: {format} does not match the extension {Path(path).suffix} (an {implied} "
                         "report): change one of them", parameters=("format",))
    return format


def check_arguments(tests: list[str] | None, null: str, draws: int, power: int, format: str | None) -> None:
    """The options of :func:`build`, checked before any work (InputError naming the first bad parameter; a
    ``format`` None is read from the output's extension)."""
    if tests is not None:
        check_tests(tests)
    check_null(null, NULLS)
    check_draws(draws)
    if power < 0:
        raise InputError(f"power: {power}: must be 0 or more", parameters=("power",))
    if format is not None:
        check_format(format)


def build(config: str | Path | None = None, *, returns: str | Path | None = None, preset: str | None = None,
          map: str | Path | None = None, replicates: int | None = None, seed: int | None = None,
          tests: list[str] | None = None, null: str = NULL, draws: int = DRAWS, power: int = POWER,
          command: str | None = None, output: str | Path | None = None, format: str | None = None,
          progress: bool = False, overrides: dict | None = None,
          shown: Callable[[InputError], str] = str) -> Document:
    """Run the analyses the inputs allow and assemble the report.

    ``config``: a simkit config (simulation, polls against ``[observed]``, scenarios); ``returns`` with ``preset`` or
    ``map``: station returns for the forensic tests (``returns`` None with a preset: the preset's file in the shared
    data folder). ``replicates``/``seed`` default to the config's (seed 0 without one); ``tests``, ``null`` (one of
    :data:`NULLS`), ``draws``, ``power`` as in ``simkit forensics``. ``command`` and ``output`` are recorded in the
    provenance (the command that reproduces the report); ``format`` (html or md; None: from ``output``'s extension,
    :func:`report_format`, html without an output) too. ``overrides``: dotted config fields set over the file's
    (:func:`simkit.config.load.load_config`). ``shown``: how a reason for leaving an analysis out that names parameters
    of this function reads (an InputError whose ``parameters`` are those it names; by default its text, which names them
    as this function does; the command line shows them as its flags). """
    if config is None and returns is None and preset is None:
        raise InputError("report: give a config, or returns with preset/map (or both)",
                         parameters=("config", "returns", "preset", "map"))
    check_arguments(tests, null, draws, power, format)
    format = report_format(output, format) if output is not None else (format or "html")
    has_returns = returns is not None or preset is not None or map is not None
    cfg = load_config(Path(config), overrides) if config is not None else None
    returns_ds = analyses.load(Path(returns) if returns else None, preset, Path(map) if map else None) \
        if has_returns else None
    if cfg is not None and returns_ds is not None:
        analyses.check_one_election(cfg, Path(config), returns_ds)
    seed = seed if seed is not None else (cfg.run.seed if cfg is not None else 0)
    replicates = replicates if replicates is not None or cfg is None else cfg.run.replicates
    title = (cfg.title if cfg is not None and cfg.title else None) or (
        returns_ds.attrs.get("label") if returns_ds is not None else None) or "election"
    omitted: dict[str, str] = {}
    comparison = ds = forensics = None
    if cfg is None:
        omitted.update(simulation="no config given", polls="no config given (polls and the official count come "
                       "from a config)", scenarios="no config given")
    else:
        electorate = electorate_of(cfg)
        problem = analyses.polls_omission(cfg, electorate, replicates)
        ds, solved = analyses.simulate(cfg, electorate, replicates, seed, progress=progress)
        if problem is not None:
            omitted["polls"] = shown(problem)
        if not cfg.scenario:
            omitted["scenarios"] = "the config defines no [[scenario]] of named manipulations"
    with progress_bar(len(STEPS), enabled=progress, unit="step") as bar:
        bar.set_description("polls")
        if cfg is not None and "polls" not in omitted:
            comparison = analyses.compare(cfg, solved, electorate, replicates, seed, str(config), progress)
        bar.update()
        bar.set_description("forensics")
        if returns_ds is not None:
            forensics = analyses.forensics(returns_ds, title, tests, null, draws, seed, power, progress)
        else:
            omitted["forensics"] = shown(InputError(**NO_RETURNS))
        bar.update()
        bar.set_description("figures and text")
        record = provenance.record(
            cfg=cfg, config_path=Path(config) if config is not None else None, returns_ds=returns_ds, seed=seed,
            replicates=replicates, output=Path(output) if output is not None else None, command=command,
            options={"--returns": returns, "--preset": preset, "--map": map, "--replicates": replicates,
                     "--seed": seed, "--tests": ",".join(tests) if tests else None,
                     **({"--null": null, "--draws": draws, "--power": power} if has_returns else {}),
                     "--format": format})
        incumbent = cfg.leader if cfg is not None else None
        labels = {poll.name: poll.label or poll.name for poll in cfg.polls} if cfg else {}
        verdicts = (poll_verdicts(comparison.rows, incumbent, labels, mechanisms=comparison.mechanisms,
                                  joint=comparison.joint, designs=comparison.designs)
                    if comparison is not None else []) + (
            forensic_verdicts(forensics.results, DETECTS, power_shown=bool(forensics.power))
            + power_verdicts(forensics.power_counts, forensics.power_replicates) if forensics is not None else [])
        body = []
        if ds is not None:
            body.append(sections.simulation(ds, cfg))
        if comparison is not None:
            body.append(sections.polls(comparison, cfg, incumbent))
        if "scenarios" not in omitted:
            body.append(sections.scenarios(ds, cfg, comparison))
        if forensics is not None:
            body.append(sections.forensics(forensics))
        body.append(sections.limits(record["config_text"], comparison is not None, forensics))
        body += [sections.provenance(record), sections.appendix()]
        answer = sections.answer(_question(title, comparison is not None, forensics is not None), verdicts, omitted)
        bar.update()
    return Document(f"{title}: simkit report", [answer] + body, omitted, verdicts,
                    {"comparison": comparison, "forensics": forensics, "provenance": record})


def check_output(path: str | Path) -> Path:
    """The output path, if its folder exists (InputError otherwise: nothing is created for a mistyped path)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: output: folder '{path.parent}' does not exist", parameters=("output",))
    if path.is_dir():
        raise InputError(f"{path}: output: is a folder, not a file", parameters=("output",))
    return path


def figures_folder(path: Path) -> Path:
    """Where a Markdown report's figures go: ``NAME_files`` beside ``NAME.md``."""
    return path.with_name(f"{path.stem}_files")


def figures_of(report: Path) -> Callable[[Path], bool]:
    """A ``recognise`` for :func:`simkit.outputs.claim_output`: a folder is the figures of the Markdown report
    ``report`` when that report is simkit's and links every file the folder holds (a folder of anything else,
    or beside no report of ours, is never replaced)."""
    def recognise(folder: Path) -> bool:
        if not (report.is_file() and contains(GENERATOR)(report) and folder.is_dir()):
            return False
        try:
            text = report.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return all(entry.is_file() and f"({folder.name}/{entry.name})" in text for entry in folder.iterdir())
    return recognise


def check_figures_folder(path: Path) -> Path:
    """The figures folder of the Markdown report ``path`` (:func:`figures_folder`), if writing that report may
    replace it: there is none, or it holds the figures of the simkit report now at ``path`` (:func:`figures_of`).
    InputError otherwise, so that a folder of the user's that bears the name is never deleted, whoever writes
    the report (``report -o`` claims it the same way before any work, and refuses it without ``--overwrite``)."""
    folder = figures_folder(path)
    if exists(folder) and not figures_of(path)(folder):
        raise InputError(f"{folder}: figures folder: not the figures of a simkit report at {path}; it was not "
                         f"replaced (move it, or write the report elsewhere)")
    return folder


def write(doc: Document, path: str | Path, format: str | None = None) -> None:
    """Render ``doc`` to ``path`` through staging names renamed into place at the end (Markdown: both the figure
    folder and the text are written in full first, then the folder is put in place, then the text, so that a
    report never links figures that are not there; a failure removes both staging names and leaves any earlier
    report intact; a report without figures: the text alone, then an earlier report's figures folder removed).
    A Markdown report replaces an existing ``NAME_files/`` only when it is the figures of the simkit report at
    ``path`` (:func:`check_figures_folder`: InputError before anything is written otherwise). ``format``: html
    or md (None: from the extension, :func:`report_format`)."""
    path = check_output(path)
    format = report_format(path, format)
    if format == "html":
        with staged(path) as staging:
            staging.write_text(render_html.render(doc), encoding="utf-8")
        return
    folder = check_figures_folder(path)
    if not doc.images:  # the text alone, then the figures of the earlier report removed
        with staged(path) as staging:
            staging.write_text(render_md.render(doc, folder.name), encoding="utf-8")
        remove_at_once(folder)
        return
    with staged_together(folder, path) as (staging_folder, staging):
        with nothing_written_on_error(folder):
            staging_folder.mkdir()
            for image in doc.images:
                (staging_folder / f"{image.name}.png").write_bytes(image.png)
        with nothing_written_on_error(path):
            staging.write_text(render_md.render(doc, folder.name), encoding="utf-8")
