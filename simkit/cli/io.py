"""What a command reads and writes: a config with its ``--set``/``--sweep`` overrides (a problem an override
causes is blamed on the flag, not on the file), a saved result's stored config, the part of a simulated result
that ``--scenario`` and ``--point`` choose, ``-o PATH.json`` reports and ``--plot DIR`` folders of figures, placed
together with a command's ``-o`` output."""
from __future__ import annotations

import argparse
import json
import math
import os
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import xarray as xr

from simkit import schema
from simkit.cli.arguments import Override, overrides
from simkit.config.core import Config
from simkit.config.load import load_config, parse_config
from simkit.config.messages import ConfigError
from simkit.errors import InputError, listed
from simkit.io import FORMATS, open_result, save_dataset, save_text
from simkit.placement.placing import nothing_written_on_error, staged_together
from simkit.outputs import claim_output, is_json_report
from simkit.paths import split_path


def _related(location: str, path: str) -> bool:
    """Whether a problem at dotted ``location`` concerns the field at ``path`` (one lies within the other)."""
    return location == path or location.startswith(path + ".") or path.startswith(location + ".")


def _location(problem: str, source: str) -> str | None:
    """The dotted field of ``problem`` (``source: location: message``), None when it is not one of ``source``."""
    prefix = f"{source}: "
    if not problem.startswith(prefix):
        return None
    return problem[len(prefix):].split(": ", 1)[0].split("=", 1)[0]


def _shown(flags: list[Override]) -> str:
    return " ".join(f"{flag.flag} {flag.text}" for flag in flags)


def blame(problem: str, source: str, flags: list[Override], loads_alone: bool = False) -> str:
    """``problem`` (``source: location: message``) as the flag's problem when it lies in a field a flag set:
    ``--set tunout.mean=0.3 (on x.toml): tunout: unknown field``; as the flags' problem when it lies elsewhere but
    the config loads without the flags (``loads_alone``): a flag that raises ``f_incremental`` past
    ``1 - f_extreme``; else unchanged (a config with problems of its own may show more of them once a flag mends one
    that stopped its checks, so they stay the file's). A location names
    fields as given (a quoted sweep key) or unquoted (a field the validator names), so both forms of a flag's path
    match."""
    location = _location(problem, source)
    if location is None:
        return problem
    message = problem[len(source) + 2:]
    for flag in reversed(flags):
        if _related(location, flag.path) or _related(location, ".".join(split_path(flag.path))):
            return f"{_shown([flag])} (on {source}): {message}"
    if flags and loads_alone:
        return f"{_shown(flags)} (on {source}): {message}"
    return problem


def _is_result(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


def _load(path: Path, values: dict, source: str) -> Config:
    """A config file, or a saved result whose resolved config (in its attrs) is rerun bit for bit."""
    if not _is_result(path):
        return load_config(path, values)
    attrs = open_result(path).attrs
    if "simkit_config" not in attrs:
        raise InputError(f"{path}: not a simkit result (no simkit_config attribute)")
    return parse_config(attrs["simkit_config"], source=source, overrides=values)


@contextmanager
def blamed_on_flags(source: str, flags: list[Override], path: Path | None = None) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` of the config ``source`` (read from ``path``) with each problem the overrides
    caused blamed on their flags (:func:`blame`)."""
    try:
        yield
    except ConfigError as error:
        loads_alone = bool(flags) and path is not None and _loads_alone(path, source)
        raise ConfigError([blame(problem, source, flags, loads_alone) for problem in error.problems]) from None


def _loads_alone(path: Path, source: str) -> bool:
    """Whether the config at ``path`` loads without any flag (a problem of its own, or unreadable: False)."""
    try:
        _load(path, {}, source)
    except (ConfigError, InputError):
        return False
    return True


def override_values(flags: list[Override]) -> dict:
    """The ``overrides`` argument of :func:`simkit.config.load.load_config`: dotted path → value."""
    return {flag.path: flag.value for flag in flags}


def result_kernel(path: Path) -> str | None:
    """The kernel a saved result was drawn with (its rerun uses it, so that it reproduces the result), or
    None for a config file; results from before the kernel was recorded were drawn with numpy."""
    return open_result(path).attrs.get("kernel", "numpy") if _is_result(path) else None


def config_from(path: Path, args: argparse.Namespace) -> Config:
    """The config at ``path`` (a config file or a saved result) with the command's ``--set`` and ``--sweep``."""
    flags = overrides(args)
    source = f"{path} (stored config)" if _is_result(path) else str(path)
    with blamed_on_flags(source, flags, path):
        return _load(path, override_values(flags), source)


# -- choosing a part of a simulated result -------------------------------------------------------------------

def sweep_dims(ds: xr.Dataset) -> list[str]:
    """The sweep dims of a simulated result (those of ``total_ballots`` beyond scenario and replicate), in order."""
    if "total_ballots" not in ds:
        return []
    return [dim for dim in ds["total_ballots"].dims if dim not in (schema.SCENARIO, schema.REPLICATE)]


def sweep_points(ds: xr.Dataset) -> list[str]:
    """Each sweep point as ``path=value, ...``, by flat index (C order of the sweep dims)."""
    dims = sweep_dims(ds)
    points = [""]
    for dim in dims:
        points = [f"{point}, {dim}={value:g}".lstrip(", ") for point in points for value in ds[dim].values]
    return points


def _scenario(ds: xr.Dataset, chosen: str | None, source: str, every: bool) -> int | None:
    if schema.SCENARIO not in ds.dims:
        if chosen is not None:
            raise InputError(f"--scenario {chosen}: {source} has no scenarios (not a simulated result)")
        return None
    names = [str(name) for name in ds[schema.SCENARIO].values]
    if chosen is None and every:
        return None
    if chosen is None:
        if len(names) > 1:
            raise InputError(f"{source}: holds {len(names)} scenarios; choose one with --scenario: "
                             f"{listed(names)}")
        return 0
    if chosen not in names:
        raise InputError(f"--scenario {chosen}: not a scenario of {source}: {listed(names)}")
    return names.index(chosen)


def _point(ds: xr.Dataset, chosen: int | None, source: str, every: bool) -> dict[str, int]:
    dims = sweep_dims(ds)
    points = sweep_points(ds)
    listing = "; ".join(f"{k}: {point}" for k, point in enumerate(points))
    if not dims:
        if chosen not in (None, 0):
            raise InputError(f"--point {chosen}: {source} has no sweep (one point, 0)")
        return {}
    if chosen is None and every:
        return {}
    if chosen is None:
        if len(points) > 1:
            raise InputError(f"{source}: holds {len(points)} sweep points; choose one with --point: {listing}")
        chosen = 0
    if chosen >= len(points):
        raise InputError(f"--point {chosen}: outside 0..{len(points) - 1} ({source}: {listing})")
    shape = [ds.sizes[dim] for dim in dims]
    positions = []
    for size in reversed(shape):
        positions.append(chosen % size)
        chosen //= size
    return dict(zip(dims, reversed(positions)))


def choose(ds: xr.Dataset, args: argparse.Namespace, source: str, every: bool = False) -> dict[str, int]:
    """Positions along the scenario and sweep dims of a simulated result chosen by ``--scenario`` and
    ``--point``: a dim with one entry needs no choice; with more, a missing choice is a one-line error listing
    the choices (never a silent first), or with ``every`` that dim is left whole. Empty for data without those
    dims (real returns)."""
    positions = _point(ds, args.point, source, every)
    scenario = _scenario(ds, args.scenario, source, every)
    if scenario is not None:
        positions[schema.SCENARIO] = scenario
    return positions


def describe(ds: xr.Dataset, positions: dict[str, int]) -> str:
    """What ``positions`` chose, for the output: ``scenario honest, turnout.dispersion=0.3``."""
    parts = [f"scenario {ds[schema.SCENARIO].values[positions[schema.SCENARIO]]}"] if schema.SCENARIO in positions \
        else []
    parts += [f"{dim}={ds[dim].values[k]:g}" for dim, k in positions.items() if dim != schema.SCENARIO]
    return ", ".join(parts)


# -- JSON outputs --------------------------------------------------------------------------------------------

def claim_json(args: argparse.Namespace, kind: str, keys: tuple[str, ...], inputs: list) -> None:
    """``-o PATH.json`` of a command whose file output is its ``--json`` output (:func:`simkit.outputs.claim_output`;
    an existing file is replaced with ``--overwrite`` only when it holds the command's JSON keys)."""
    if args.output is None:
        return
    if args.output.suffix.lower() != ".json":
        raise InputError(f"{args.output}: -o: must end in .json (the file holds what --json prints)")
    claim_output(args.output, kind, overwrite=args.overwrite, inputs=inputs, recognise=is_json_report(keys))


def finite(value):
    """JSON has no NaN or infinity: such values become null (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if hasattr(value, "item"):
        return finite(value.item())
    return value


def json_text(payload: dict) -> str:
    """What ``--json`` prints and ``-o PATH.json`` holds: indented, UTF-8, an undefined number (NaN, infinity) as
    null (:func:`finite`)."""
    return json.dumps(finite(payload), indent=2, ensure_ascii=False)


def write_json(payload: dict, path: Path) -> None:
    place_outputs({path: json_writer(payload)})


def json_writer(payload: dict) -> Writer:
    """A writer of the file ``-o PATH.json`` holds (:func:`json_text`, then a newline) for :func:`place_outputs`."""
    return text_writer(json_text(payload) + "\n")


# -- --plot DIR ----------------------------------------------------------------------------------------------

def check_plot_folder(plot: Path | None, names: list[str], output: Path | None = None,
                      inputs: Iterable[Path | None] = ()) -> None:
    """``--plot DIR``: a folder (made if absent) where the figures ``names`` (``NAME.png``) can be written (the folder,
    or its nearest existing parent, writable by this user); checked before any work starts. DIR may not be, or lie
    inside, the command's ``output`` (``-o``) or one of its ``inputs``, nor may a figure be or hold one."""
    if plot is None:
        return
    for path, role in [(output, "the -o output"), *((source, "an input") for source in inputs)]:
        if path is not None and _overlaps(plot, [plot / f"{name}.png" for name in names], path):
            raise InputError(f"--plot: {plot}: is, or lies in, or writes a figure onto {role} of the command "
                             f"({path}); give another folder")
    if plot.exists() and not plot.is_dir():
        raise InputError(f"--plot: {plot}: exists and is not a folder (give a folder for the figures)")
    for name in names:
        if (plot / f"{name}.png").is_dir():
            raise InputError(f"--plot: {plot / f'{name}.png'}: is a folder, cannot write the figure there")
    parent = next((p for p in plot.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"--plot: {plot}: {parent} is not a folder")
    where = plot if plot.exists() else parent
    if where is not None and not os.access(where, os.W_OK | os.X_OK):
        raise InputError(f"--plot: {plot}: cannot write in {where}")


def _overlaps(plot: Path, figures: list[Path], path: str | Path) -> bool:
    """Whether the folder ``plot`` is or lies inside ``path``, or one of the ``figures`` files in it is or holds
    ``path`` (links resolved)."""
    path = Path(path).resolve()
    return plot.resolve().is_relative_to(path) or any(path.is_relative_to(f.resolve()) for f in figures)


#: what writes one output, given its target and the staging path to write it at (:func:`place_outputs`)
Writer = Callable[[Path, Path], None]


def place_outputs(writers: dict[Path, Writer]) -> None:
    """Write each output (target → :data:`Writer`, called with the target and its staging path), in order, then put them
    all in place in one placement (:func:`simkit.placement.placing.staged_together`): an error or a stop before they are
    all in place leaves none of them (an earlier run's as they were), so that a command's ``-o`` result and its
    ``--plot`` figures appear together or not at all. A failure while one is written (a full disk, a permission refused)
    is one line naming it (:func:`simkit.placement.placing.nothing_written_on_error`)."""
    with staged_together(*writers) as stagings:
        for staging, (target, write) in zip(stagings, writers.items()):
            with nothing_written_on_error(target):
                write(target, staging)


def figure_writers(plot: Path, figures: dict, dpi: int = 100) -> dict[Path, Writer]:
    """``--plot DIR``: a writer of ``plot/NAME.png`` for each figure of ``figures`` (name → matplotlib Figure, None
    skipped), for :func:`place_outputs`; ``plot`` is made now if absent (a folder that cannot be made is the one line
    of :func:`simkit.placement.placing.nothing_written_on_error`)."""
    with nothing_written_on_error(plot):
        plot.mkdir(parents=True, exist_ok=True)
    return {plot / f"{name}.png": partial(_save_figure, fig, dpi) for name, fig in figures.items() if fig is not None}


def _save_figure(fig, dpi: int, target: Path, staging: Path) -> None:
    """A :data:`Writer` of the matplotlib Figure ``fig`` as PNG at ``dpi`` (the format named: the staging path of
    ``target`` ends in .partial-PID)."""
    fig.savefig(staging, dpi=dpi, format="png")


def text_writer(text: str) -> Writer:
    """A writer of ``text`` (UTF-8) for :func:`place_outputs`."""
    return lambda target, staging: save_text(text, staging)


def dataset_writer(ds: xr.Dataset) -> Writer:
    """A writer of the result ``ds`` for :func:`place_outputs` (zarr or netCDF by the suffix of its target)."""
    return partial(save_dataset, ds)
