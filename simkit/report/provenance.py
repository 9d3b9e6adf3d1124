"""Provenance of a report: versions, the command line, the config text and every data file with its sha256,
row counts and anomalies, seed, replicates, date, and one command that reproduces the report."""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

from simkit.config.load import read_config_text
from simkit.errors import shown_path
from simkit.electorate.returns import ROWS_SHOWN, anomaly_report
from simkit.schema import STATION

#: packages whose versions a report records (those absent are left out)
PACKAGES = ("simkit", "numpy", "scipy", "xarray", "pandas", "matplotlib", "numba", "pydantic")


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git(folder: Path, *arguments: str) -> str | None:
    """The output of ``git -C folder ARGUMENTS`` (stripped), or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_commit() -> str | None:
    """The git commit of the simkit source imported, ``+modified`` when its tracked files differ from it; None
    when simkit is not imported from a git checkout of its own (an installed package): the version number alone
    does not tell the commits of one version apart."""
    package = Path(__file__).resolve().parent.parent
    top = _git(package, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != package.parent:
        return None
    commit = _git(package, "rev-parse", "HEAD")
    changed = _git(package, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return None if commit is None else commit + ("+modified" if changed else "")


def versions() -> dict[str, str]:
    """Python and package versions (installed distributions only), and simkit's source commit when it is
    imported from a git checkout (:func:`source_commit`)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit = source_commit()
    if commit is not None:
        found["simkit commit"] = commit
    return found


def returns_file(ds) -> dict:
    """A loaded returns Dataset's file: path, sha256, data rows, stations loaded, and each anomaly rule with
    its count (``simkit.electorate.returns.anomaly_report``) and its first rows, as many as the provenance table
    shows beside the count (:data:`~simkit.electorate.returns.ROWS_SHOWN`:
    :func:`~simkit.electorate.returns.data_rows`)."""
    path = Path(ds.attrs["source"])
    anomalies = anomaly_report(ds)
    blank = anomalies.get("blank", {}).get("count", 0)
    return {"role": "station returns", "path": shown_path(path), "sha256": sha256(path) if path.is_file() else None,
            "mapping": ds.attrs.get("mapping"), "data_rows": int(ds.sizes[STATION]) + blank,
            "stations": int(ds.sizes[STATION]),
            "anomalies": {rule: {"count": item["count"], "rule": item["rule"], "first_rows": item["rows"][:ROWS_SHOWN]}
                          for rule, item in anomalies.items() if item["count"]}}


def mapping_file(ds) -> list[dict]:
    """The mapping file (map or preset) a loaded returns Dataset was read through, with its sha256: it decides
    which columns are counted; none when the Dataset names no file that exists."""
    path = ds.attrs.get("mapping")
    return [{"role": "returns mapping", "path": shown_path(path), "sha256": sha256(path)}] \
        if path and Path(path).is_file() else []


def config_files(cfg, config_path: Path) -> list[dict]:
    """The config and the data files it reads (electorate path, observed station returns) that exist."""
    import tomllib

    files = [{"role": "config", "path": shown_path(config_path), "sha256": sha256(config_path)}]
    parent = tomllib.loads(read_config_text(Path(config_path), str(config_path))).get("extends")
    if parent:
        base = Path(config_path).parent / parent
        files.append({"role": "config it extends", "path": shown_path(base), "sha256": sha256(base)})
    for role, value in (("electorate", getattr(cfg.electorate, "path", None)),
                        ("observed returns", getattr(getattr(cfg.observed, "stations", None), "returns", None))):
        if value and Path(value).is_file():
            files.append({"role": role, "path": shown_path(value), "sha256": sha256(value)})
    return files


def reproduce_command(config: Path | None, options: dict, output: Path | None) -> str:
    """``simkit report ...`` with every option that changes the result spelt out."""
    words = ["simkit", "report"] + ([str(config)] if config else [])
    for flag, value in options.items():
        if value is not None and value is not False:
            words += [flag] if value is True else [flag, str(value)]
    if output is not None:
        words += ["-o", str(output)]
    return shlex.join(words)


def record(*, cfg=None, config_path: Path | None = None, returns_ds=None, seed: int | None,
           replicates: int | None, options: dict, output: Path | None, command: str | None) -> dict:
    """Everything the provenance section shows (JSON-ready)."""
    files = config_files(cfg, config_path) if cfg is not None else []
    if returns_ds is not None:
        files += [returns_file(returns_ds), *mapping_file(returns_ds)]
    return {"versions": versions(), "command": command, "reproduce": reproduce_command(config_path, options, output),
            "config_text": read_config_text(Path(config_path), str(config_path)) if config_path else None,
            "config_sha256": sha256(config_path) if config_path else None, "files": files,
            "seed": seed, "replicates": replicates,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def to_json(provenance: dict) -> str:
    return json.dumps(provenance, indent=2, ensure_ascii=False)
