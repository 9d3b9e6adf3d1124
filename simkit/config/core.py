"""TOML config → validated, immutable config objects.

Errors read ``file: dotted.path: problem``; :func:`load_config` raises :class:`ConfigError` holding
every problem found (``simkit validate`` prints them all).

Shares are fractions in [0, 1] throughout. ``preferences.shares`` are the probabilities of a ballot
going to each option, ``invalid`` included, so they sum to 1.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
import types
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import tomli_w
from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from simkit.config.manipulation import ManipulationConfig, ScenarioConfig
from simkit.config.inference import InferConfig, InferenceSettings, infer_problems
from simkit.config.polls import ExitPollConfig, QuickCountConfig, check_poll_design
from simkit.config.timeline import (TIMELINE_TURNOUT, ObservedTimeline, TimelineConfig, final_figure_problems,
                                    share_figure_problems, timeline_problems)
from simkit.errors import InputError, listed, shown
from simkit.paths import dotted_location, get_path, join_path, set_in_place, set_path, split_path
from simkit.schema import STATION_STATISTICS
from simkit.types import (MAX_CONCENTRATION, MAX_LATENT_SD, MAX_MANIPULATION_BLOCKS, MAX_REGISTER, MAX_REPLICATES,
                          MAX_SEED, MAX_STATIONS, STRICT, Correlation, Identifier, OpenShare, Positive, PositiveShare,
                          Share)
from simkit.model.latent import logit_normal_mean, truncated_normal_mean
from simkit.model.turnout import turnout_locations
from simkit.model.rounding import largest_remainder

SHARE_SUM_TOLERANCE = 1e-6

#: joins the problems one block check finds, each ``field: problem``; :func:`_pydantic_problems` tells them apart
PROBLEM_LINES = "\n"


class Block(BaseModel):
    model_config = STRICT


#: the largest dispersion each model honours (its mean matched to Monte Carlo error; see :mod:`simkit.types`)
TURNOUT_DISPERSION_LIMITS = {"logit_normal": MAX_LATENT_SD, "truncated_normal": MAX_LATENT_SD,
                             "beta": MAX_CONCENTRATION}
PREFERENCE_DISPERSION_LIMITS = {"dirichlet": MAX_CONCENTRATION, "logistic_normal": MAX_LATENT_SD,
                                "truncated_normal": MAX_LATENT_SD}


def dispersion_problems(limit: float, model: str, dispersion: float) -> list[str]:
    if dispersion > limit:
        return [f"dispersion: at most {limit:g} for the {model} model, got {dispersion:g}"]
    return []


def unreachable_means(model: str, targets: dict[str, float], sd: float) -> list[str]:
    """``field: problem`` for each of ``targets`` (field name → mean) that no latent location reaches: station
    turnout (or the leader's share) of expectation ``target`` under ``model`` (logit_normal or
    truncated_normal) with latent SD ``sd``; the solved locations (one vectorised solve) are checked by
    recomputing their means (to 1e-6)."""
    values = np.array(list(targets.values()), float)
    location = turnout_locations(model, values, sd)
    achieved = (logit_normal_mean if model == "logit_normal" else truncated_normal_mean)(location, sd)
    return [f"{field}: cannot be reached by a {model} model of dispersion {sd:g} (nearest: {got:.4g}; lower the "
            f"dispersion), got {shown(float(target))}" for field, target, got in zip(targets, values, achieved)
            if abs(got - target) > 1e-6]


class Region(Block):
    """One region of a synthetic electorate."""

    name: Identifier
    label: str = ""
    register_share: PositiveShare = Field(description="share of the national register in this region")
    stations: int | None = Field(None, ge=1, le=MAX_STATIONS,
                                 description="stations in the region; default ∝ register share")


class SyntheticElectorate(Block):
    """Stations and registers drawn once (from ``seed``) to match national and regional totals."""

    source: Literal["synthetic"]
    registered: int = Field(ge=1, le=MAX_REGISTER, description="voters on the national register")
    stations: int = Field(ge=1, le=MAX_STATIONS, description="number of polling stations")
    #: at most 5: log-normal weights with SD 5 span e^±25 over 10 million stations, every one still positive and
    #: finite in float64; real registers have SDs below 1.5
    station_size_sd: float = Field(0.6, ge=0, le=5.0, description="SD of log station size within a region")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the register draw (the register is data, not noise)")
    regions: list[Region] = Field(min_length=1)

    def region_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Voters and stations per region, (region,) int64 each: registers by largest remainder of the
        national register over the register shares; stations as given, or 1 + a largest-remainder share
        (∝ register share) of the stations not fixed."""
        shares = np.array([region.register_share for region in self.regions])
        voters = largest_remainder(self.registered, shares)
        stations = np.array([region.stations or 0 for region in self.regions])
        free = stations == 0
        if free.any():
            stations[free] = 1 + largest_remainder(self.stations - stations.sum() - free.sum(), shares[free])
        return voters, stations


def csv_delimiter(value: str) -> str:
    """``value`` when it can delimit a CSV file's fields (one character, not a quote or a line break), else
    ValueError (a field validator's refusal)."""
    if len(value) != 1 or value in '\r\n"':
        raise ValueError(f"must be one character (not a quote or a line break), got {value!r}")
    return value


def text_encoding(value: str) -> str:
    """``value`` when it names a known text encoding, else ValueError (a field validator's refusal)."""
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"not a known text encoding, got {value!r}") from None
    return value


#: a CSV file's field delimiter (:func:`csv_delimiter`) and text encoding (:func:`text_encoding`) as config fields
CsvDelimiter = Annotated[str, AfterValidator(csv_delimiter)]
TextEncoding = Annotated[str, AfterValidator(text_encoding)]


class CsvElectorate(Block):
    """Station registers read from a CSV file (one row per station)."""

    source: Literal["csv"]
    path: str
    registered_column: str
    region_column: str | None = None
    station_column: str | None = None
    delimiter: CsvDelimiter = ","
    encoding: TextEncoding = "utf-8"


ElectorateConfig = Annotated[Union[SyntheticElectorate, CsvElectorate], Field(discriminator="source")]


class Option(Block):
    """One choice on the ballot; ``kind = "invalid"`` marks the invalid-ballot column."""

    name: Identifier
    label: str = ""
    kind: Literal["candidate", "against_all", "invalid"] = "candidate"


class Turnout(Block):
    """Station turnout around regional means.

    ``dispersion`` is the SD on the logit scale (``logit_normal``), the concentration a + b
    (``beta``), or the SD of the normal before truncation to [0, 1] (``truncated_normal``).
    Regional means are expectations of station turnout: the latent location is solved for them.
    """

    model: Literal["logit_normal", "beta", "truncated_normal"] = "logit_normal"
    mean: OpenShare = Field(description="expected station turnout where no regional mean is given")
    regional_mean: dict[str, OpenShare] = {}
    dispersion: Positive

    @model_validator(mode="after")
    def _honourable(self) -> "Turnout":
        problems = dispersion_problems(TURNOUT_DISPERSION_LIMITS[self.model], self.model, self.dispersion)
        if not problems and self.model != "beta":
            means = {"mean": self.mean,
                     **{f"regional_mean.{name}": value for name, value in self.regional_mean.items()}}
            problems = unreachable_means(self.model, means, self.dispersion)
        if problems:
            raise ValueError(PROBLEM_LINES.join(problems))
        return self


class Preferences(Block):
    """Station-level ballot probabilities around national shares.

    ``dispersion`` is the Dirichlet concentration (``dirichlet``), the SD of each option's logit
    (``logistic_normal``), or the SD of the leader's share before truncation (``truncated_normal``,
    a leader/rest split with the rest in national proportions). ``regional_sd`` is the SD of a
    per-region shift of the leader's logit, drawn anew in every replicate. ``rho`` correlates the
    station's turnout latent with the leader's latent (a Gaussian copula). ``shares`` are the expected
    station-level probabilities (mean over stations and regional shifts).
    """

    model: Literal["dirichlet", "logistic_normal", "truncated_normal"] = "dirichlet"
    shares: dict[str, Share]
    dispersion: Positive
    regional_sd: float = Field(0.0, ge=0, le=MAX_LATENT_SD)
    rho: Correlation = 0.0
    leader: str | None = None

    @model_validator(mode="after")
    def _honourable(self) -> "Preferences":
        problems = dispersion_problems(PREFERENCE_DISPERSION_LIMITS[self.model], self.model, self.dispersion)
        leader = self.leader or max(self.shares, key=self.shares.get, default=None)
        if not problems and self.model == "truncated_normal" and leader in self.shares:
            problems = unreachable_means(self.model, {f"shares.{leader}": self.shares[leader]}, self.dispersion)
        if problems:
            raise ValueError(PROBLEM_LINES.join(problems))
        return self


class RunSettings(Block):
    replicates: int = Field(100, ge=1, le=MAX_REPLICATES)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    keep: Literal["full", "summary"] = "full"


class ObservedStations(Block):
    """Station-level evidence for the inference: the ids of :mod:`simkit.forensics.station_statistics` to compare,
    with their observed ``values``, or the station-level ``returns`` to compute them from (a returns file
    read with ``preset`` or ``map``, as ``simkit forensics`` reads it; relative paths are relative to the
    config file)."""

    statistics: list[str] = Field(min_length=1)
    values: dict[str, float] = {}
    returns: str | None = None
    preset: str | None = None
    map: str | None = None
    #: compute the statistics on the rest when more than 5% of the returns' rows are blank or inconsistent (they are
    #: left out, as ``simkit forensics --allow-inconsistent`` leaves them out)
    allow_inconsistent: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> "ObservedStations":
        unknown = [name for name in self.statistics if name not in STATION_STATISTICS]
        if unknown:
            raise ValueError(f"statistics: unknown {listed(unknown)} (choose from {', '.join(STATION_STATISTICS)})")
        from_file = self.returns is not None or self.preset is not None
        if from_file == bool(self.values):
            raise ValueError("give either values (one per statistic) or returns (with preset or map), not both")
        if from_file and (self.preset is None) == (self.map is None):
            raise ValueError("returns: give exactly one of preset or map to read them")
        if self.map is not None and self.returns is None:
            raise ValueError("map: needs the returns file it maps")
        missing = [name for name in self.statistics if self.values and name not in self.values]
        unused = [name for name in self.values if name not in self.statistics]
        told = ([f"missing {', '.join(missing)}"] if missing else []) + (
            # a value the comparison would leave out without a word (a statistic not listed, a misspelling)
            [f"{listed(unused)} not among statistics ({', '.join(self.statistics)}): list it there "
             "to compare it, or leave it out"] if unused else [])
        if told:  # together: a misspelt key is both, and told as one alone would not name it
            raise ValueError(f"values: {'; '.join(told)}")
        return self


class Observed(Block):
    """Official results to compare with. Candidate and against-all shares are over valid votes. ``registered`` is
    the official register, read only as the count's turnout (``ballots / registered``): every official figure is
    compared as a fraction, so it need not equal the simulated electorate's register (see the README's
    ``[observed]``)."""

    registered: int | None = Field(None, ge=0, le=MAX_REGISTER)
    ballots: int | None = Field(None, ge=0, le=MAX_REGISTER)
    votes: dict[str, Annotated[int, Field(ge=0, le=MAX_REGISTER)]] = {}
    regional_turnout: dict[str, Share] = {}
    stations: ObservedStations | None = None
    timeline: ObservedTimeline | None = None
    note: str = ""

    def counted_turnout(self) -> float | None:
        """The count's turnout in percent (ballots over the register), None unless both are given (a register
        > 0)."""
        if self.ballots is None or not self.registered:
            return None
        return 100.0 * self.ballots / self.registered


class Config(Block):
    title: str = ""
    electorate: ElectorateConfig
    options: list[Option] = Field(min_length=2)
    turnout: Turnout
    preferences: Preferences
    run: RunSettings = RunSettings()
    manipulation: list[ManipulationConfig] = []
    scenario: list[ScenarioConfig] = []
    exit_poll: list[ExitPollConfig] = []
    quick_count: list[QuickCountConfig] = []
    infer: list[InferConfig] = []
    inference: InferenceSettings | None = None
    sweep: dict[str, list[float]] = {}
    observed: Observed = Observed()
    timeline: TimelineConfig | None = None

    # -- derived views -------------------------------------------------------------------------
    @property
    def option_names(self) -> list[str]:
        return [option.name for option in self.options]

    @property
    def invalid_index(self) -> int | None:
        kinds = [option.kind for option in self.options]
        return kinds.index("invalid") if "invalid" in kinds else None

    @property
    def invalid_option_name(self) -> str | None:
        """The name of the invalid-ballot option (``kind = "invalid"``), None without one."""
        index = self.invalid_index
        return None if index is None else self.option_names[index]

    @property
    def valid_option_names(self) -> list[str]:
        """The options whose votes are valid (all but the invalid one), in config order: the denominator of
        every share over valid votes."""
        return [name for i, name in enumerate(self.option_names) if i != self.invalid_index]

    @property
    def polls(self) -> list[ExitPollConfig | QuickCountConfig]:
        """Every poll: the ``[[exit_poll]]`` blocks, then the ``[[quick_count]]`` ones."""
        return [*self.exit_poll, *self.quick_count]

    @property
    def leader(self) -> str:
        shares = self.preferences.shares
        return self.preferences.leader or max(shares, key=shares.get)

    def region_names(self) -> list[str]:
        if isinstance(self.electorate, SyntheticElectorate):
            return [region.name for region in self.electorate.regions]
        return []

    def scenarios(self) -> list[ScenarioConfig]:
        """The scenarios to run: the config's ``[[scenario]]`` blocks; without any, ``honest`` alone when
        there are no manipulation blocks, else ``honest`` and ``manipulated`` (every block, in order)."""
        if self.scenario:
            return list(self.scenario)
        honest = ScenarioConfig(name="honest")
        if not self.manipulation:
            return [honest]
        return [honest, ScenarioConfig(name="manipulated", manipulations=[m.name for m in self.manipulation])]

    def to_toml(self) -> str:
        """The fully resolved config as TOML text (round-trips through :func:`parse_config`)."""
        return tomli_w.dumps(self.model_dump(exclude_none=True))

    def raw(self) -> dict:
        return self.model_dump(exclude_none=True)

    def sweep_points(self) -> list[dict[str, float]]:
        """Every combination of swept values, in C order of the sweep dims."""
        names = list(self.sweep)
        return [dict(zip(names, values)) for values in itertools.product(*self.sweep.values())]

    def at(self, assignments: dict[str, Any]) -> "Config":
        """This config with dotted fields set (used for sweep points); the sweep is dropped."""
        raw = self.raw()  # a fresh dump: set in place, not copied once per assignment
        raw.pop("sweep", None)
        for path, value in assignments.items():
            set_in_place(raw, path, value)
        return Config.model_validate(raw)


class ConfigError(InputError):
    """Every problem found in one config; ``str()`` is the first, one line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (+{len(problems) - 1} more; `simkit validate` lists them)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)

    def __reduce__(self):
        return ConfigError, (self.problems,)


#: poll fields are not sweepable: each would re-simulate identical elections; give poll unknowns as ranges
UNSWEEPABLE = ("electorate", "run", "sweep", "observed", "options", "title", "exit_poll", "quick_count", "infer",
               "inference")


#: "field.sub: problem" at the start of a block validator's message
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): ")


def _le(metadata: list) -> Any:
    return next((m.le for m in metadata if getattr(m, "le", None) is not None), None)


def _members(annotation: Any) -> list[Any]:
    """The types an annotation admits, Optional/Union and Annotated unwrapped."""
    if typing.get_origin(annotation) is Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _upper_bound(model: type[BaseModel], loc: tuple) -> Any:
    """The ``le`` declared on the field at pydantic location ``loc`` of ``model`` (through nested blocks,
    lists, dicts and tagged unions); None when none is declared."""
    node: Any = model
    bound = None
    for key in loc:
        members = _members(node)
        block = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)
                      and isinstance(key, str) and key in m.model_fields), None)
        if block is not None:
            node, bound = block.model_fields[key].annotation, _le(block.model_fields[key].metadata)
            continue
        container = next((m for m in members if typing.get_origin(m) in (list, dict, tuple)), None)
        if container is not None:  # a list index or a dict key: the item type
            node = typing.get_args(container)[-1]
            bound = _le(list(typing.get_args(node)[1:])) if typing.get_origin(node) is Annotated else None
        # else a tagged union's member name: the same node
    return bound


#: pydantic error types whose message does not take the offending value: a key the model lacks or does not
#: allow (the value is not the problem), or the project's own checks (their messages say what they need)
_NO_INPUT_SHOWN = ("missing", "extra_forbidden", "value_error", "assertion_error")


def validation_problem(item: dict, raw: Any = None, model: type[BaseModel] | None = None) -> tuple[str, str]:
    """(dotted field, message) of one pydantic error ``item`` of ``model`` (:class:`Config` when None) validated
    from ``raw``: list items named by their ``name`` (:func:`simkit.paths.dotted_location`), ``unknown field`` and
    ``required field is missing`` as the project words them, a block check's own field made part of the path, a
    number beyond 64 bits told with the field's bound, and pydantic's own messages ending with the value given
    (:func:`_with_input`: ``Input should be greater than 0, got -3``; :func:`shown_once` drops it where the caller
    shows the value)."""
    path = dotted_location(item["loc"], raw)
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "int_parsing_size":  # a number beyond 64 bits: say the field's own bound
        bound = _upper_bound(model or Config, item["loc"])
        limit = f"less than or equal to {bound}" if bound is not None else "an integer below 2**63"
        message = f"Input should be {limit}"
    field = _FIELD_PREFIX.match(message) if item["type"] == "value_error" else None
    if field:  # a block's own check names the field it found wrong: make it part of the dotted path
        path, message = f"{path}.{field.group(1)}", message[field.end():]
    if item["type"] == "extra_forbidden":
        message = "unknown field"
    elif item["type"] == "missing":
        message = "required field is missing"
    return path, _with_input(message, item)


def _with_input(message: str, item: dict) -> str:
    """``message`` of the pydantic error ``item`` followed by the value the field was given (cut by
    :func:`simkit.errors.shown`): ``…, got -3``, or ``… (1.5)`` after a message that already says what it got
    (``got a number with a fractional part``). Unchanged for :data:`_NO_INPUT_SHOWN` and for a block (a
    mapping) given where it does not fit, whose field the dotted path already names."""
    if item["type"] in _NO_INPUT_SHOWN or "input" not in item or isinstance(item["input"], dict):
        return message
    value = shown(item["input"])
    return f"{message} ({value})" if re.search(r"\bgot\b", message) else f"{message}, got {value}"


def _pydantic_problems(error: ValidationError, raw: dict, prefix: str = "") -> list[str]:
    """``PREFIXfield: message`` of each problem of ``error`` (:func:`validation_problem`), a block check's problems
    (:data:`PROBLEM_LINES`) one by one, each at its own field."""
    return [f"{prefix}{path}: {message}" for path, message in (validation_problem(item, raw)
                                                               for item in _one_problem_each(error))]


def _one_problem_each(error: ValidationError) -> list[dict]:
    """The error items of ``error``, a block check's item split into one per problem it joined
    (:data:`PROBLEM_LINES`)."""
    return [{**item, "msg": line} if item["type"] == "value_error" else item for item in error.errors()
            for line in (item["msg"].split(PROBLEM_LINES) if item["type"] == "value_error" else [item["msg"]])]


def shown_once(problem: str, given: dict[str, Any]) -> str:
    """``problem`` (``field: message``) without the value its message ends with when ``field`` is a key of ``given``
    (dotted field → the value the caller set and shows itself: ``--set turnout.mean=-3``, ``replicates=0``): only
    that value's own text, ``…, got -3`` or ``… (1.5)`` (:func:`_value_texts`), so a message's other figures
    (``must sum to 1, got 0.9`` beside a table set) stay. Shown once."""
    field, _, message = problem.partition(": ")
    if field not in given:
        return problem
    for text in _value_texts(given[field]):
        for tail in (f", got {text}", f" ({text})"):
            if message.endswith(tail):
                return f"{field}: {message.removesuffix(tail)}"
    return problem


def _value_texts(value: Any) -> set[str]:
    """The ways a message writes ``value``: :func:`simkit.errors.shown`, a text also as it is (a clock time,
    ``got 12:00``), and a number also as the float a field made of it (``9`` → ``9.0``) and in ``g`` format
    (``9``)."""
    texts = {shown(value)}
    if isinstance(value, str):
        texts.add(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        texts |= {shown(float(value)), f"{value:g}"}
    return texts


def _close_to_one(total: float) -> bool:
    return math.isclose(total, 1.0, abs_tol=SHARE_SUM_TOLERANCE)


def cross_check(cfg: Config) -> list[str]:
    """Problems that span several fields (names that must match, shares that must sum to 1)."""
    return _cross_checked(cfg)[0]


def _cross_checked(cfg: Config) -> tuple[list[str], list[str]]:
    """:func:`cross_check` of ``cfg`` and, of those, its share-figure refusals (:func:`timeline_share_problems` of
    ``cfg``), found once for callers that set them apart."""
    problems = []
    share_figures = []
    names = cfg.option_names
    if len(set(names)) != len(names):
        problems.append("options: option names must be unique")
    if sum(option.kind == "invalid" for option in cfg.options) > 1:
        problems.append("options: at most one option may have kind = \"invalid\"")
    shares = cfg.preferences.shares
    for name in names:
        if name not in shares:
            problems.append(f"preferences.shares.{name}: missing (every option needs a share)")
    for name in shares:
        if name not in names:
            problems.append(f"preferences.shares.{name}: not an option")
    total = sum(shares.values())
    if not _close_to_one(total):
        problems.append(f"preferences.shares: must sum to 1, got {total:.6g}")
    if cfg.preferences.leader is not None and cfg.preferences.leader not in names:
        problems.append(f"preferences.leader: not an option, got {cfg.preferences.leader!r}")
    region_names = cfg.region_names()
    if isinstance(cfg.electorate, SyntheticElectorate):
        regions = cfg.electorate.regions
        before = len(problems)
        if len(set(region_names)) != len(region_names):
            problems.append("electorate.regions: region names must be unique")
        register_total = sum(region.register_share for region in regions)
        if not _close_to_one(register_total):
            problems.append(f"electorate.regions: register_share must sum to 1, got {register_total:.6g}")
        fixed = sum(region.stations or 0 for region in regions)
        unfixed = sum(region.stations is None for region in regions)
        if fixed + unfixed > cfg.electorate.stations:
            problems.append(
                f"electorate.stations: fewer than the regions' stations ({fixed + unfixed}), got "
                f"{cfg.electorate.stations}")
        if unfixed == 0 and fixed != cfg.electorate.stations:
            problems.append(f"electorate.stations: must be the sum of the regions' stations ({fixed}), got "
                            f"{cfg.electorate.stations}")
        if cfg.electorate.stations > cfg.electorate.registered:
            problems.append("electorate.stations: more stations than registered voters")
        elif len(problems) == before:  # the regions' sizes are well defined
            for region, voters, stations in zip(regions, *cfg.electorate.region_sizes()):
                if voters < stations:
                    problems.append(f"electorate.regions.{region.name}: fewer voters ({voters}) than stations "
                                    f"({stations})")
    if region_names:
        problems += region_problems(cfg, region_names)
    for name in cfg.observed.votes:
        if name not in names:
            problems.append(f"observed.votes.{name}: not an option")
    if cfg.observed.ballots is not None and cfg.observed.registered is not None:
        if cfg.observed.ballots > cfg.observed.registered:
            problems.append("observed.ballots: exceeds observed.registered")
    problems += _observed_votes_problems(cfg)
    timeline = _timeline_problems(cfg)
    problems += timeline
    if cfg.observed.timeline is not None and not timeline:
        problems += final_figure_problems(cfg.observed.timeline, cfg.observed.counted_turnout(),
                                          cfg.observed.regional_turnout)
        share_figures = _share_problems(cfg, cfg.infer)
        problems += share_figures
    raw = _unswept_raw(cfg)
    problems += _manipulation_problems(cfg, raw)
    problems += _poll_problems(cfg)
    problems += _sweep_problems(cfg, raw, problems)
    if cfg.infer and not problems:  # the [[infer]] checks build configs from this one: it must be sound first
        problems += infer_problems(cfg, cfg.infer, cfg.inference or InferenceSettings(), prior_value_problems)
    return problems, share_figures


def _unswept_raw(cfg: Config) -> dict | None:
    """``cfg``'s raw data without its sweep, dumped once per config checked for the checks that read it (the
    scenarios' overrides and the sweep points, each a copy of it); None when ``cfg`` has neither."""
    if not (cfg.sweep or any(scenario.overrides for scenario in cfg.scenario)):
        return None
    raw = cfg.raw()
    raw.pop("sweep", None)
    return raw


def _timeline_problems(cfg: Config) -> list[str]:
    """:func:`timeline_problems` of ``cfg``'s timeline settings and published timeline."""
    return timeline_problems(cfg.timeline, cfg.observed.timeline,
                             {block.name: block.kind for block in cfg.manipulation})


def timeline_share_problems(cfg: Config, blocks: list[InferConfig] | None = None) -> list[str]:
    """:func:`share_figure_problems` of the rows of ``cfg.observed.timeline`` that no official turnout checks
    (:func:`final_figure_problems` does those), each against the turnout the config models for it where that is
    fixed: no mean it reads is swept or inferred by ``blocks`` (``cfg.infer`` when None; :func:`simkit.inference.infer`
    passes the blocks it runs) (a scenario overrides no turnout: :data:`SCENARIO_OVERRIDABLE`), and it is one of the
    electorate's regions where those are known. A region reads its ``turnout.regional_mean``
    (a sweep may add one), else ``turnout.mean``; the national row the lowest of the means in use
    (:func:`_means_in_use`), judged where none of them varies (:func:`_national_reads`). None without a published timeline, or with one :func:`timeline_problems` refuses
    (its rows are not sound enough to judge)."""
    if cfg.observed.timeline is None or _timeline_problems(cfg):
        return []
    return _share_problems(cfg, cfg.infer if blocks is None else blocks)


def _share_problems(cfg: Config, blocks: list[InferConfig]) -> list[str]:
    """:func:`timeline_share_problems` of ``cfg``, whose published timeline :func:`timeline_problems` accepts,
    inferring ``blocks``."""
    varied = _varied_fields(cfg, blocks)
    names = cfg.region_names()
    regional = {}
    for region in cfg.observed.timeline.turnout_percent:
        if names and region not in names:  # a region the electorate lacks: refused as such, not judged twice
            continue
        field, mean = _modelled_turnout(cfg, region)
        read = [field, ("turnout", "regional_mean", region)]
        if region not in cfg.observed.regional_turnout and not _any_varies(read, varied):
            regional[region] = (join_path(list(field)), mean)
    national = None
    if cfg.observed.counted_turnout() is None:
        means = _means_in_use(cfg)
        if not _any_varies(_national_reads(cfg, means), varied):
            field, mean = min(means, key=lambda pair: pair[1])
            national = (join_path(list(field)), mean)
    return share_figure_problems(cfg.observed.timeline, regional, national)


def _modelled_turnout(cfg: Config, region: str) -> tuple[tuple[str, ...], float]:
    """The field (segments) whose mean ``region``'s station turnout has, and that mean (a fraction)."""
    if region in cfg.turnout.regional_mean:
        return ("turnout", "regional_mean", region), cfg.turnout.regional_mean[region]
    return ("turnout", "mean"), cfg.turnout.mean


def _means_in_use(cfg: Config) -> list[tuple[tuple[str, ...], float]]:
    """The turnout means (field segments, fraction) some region reads: each region's own, and ``turnout.mean`` where
    a region has none. An electorate file's regions are not known here: every mean is taken."""
    names = cfg.region_names()
    if not names:
        return [(("turnout", "mean"), cfg.turnout.mean),
                *((("turnout", "regional_mean", region), mean) for region, mean in cfg.turnout.regional_mean.items())]
    return list(dict(_modelled_turnout(cfg, region) for region in names).items())


def _national_reads(cfg: Config, means: list[tuple[tuple[str, ...], float]]) -> list[tuple[str, ...]]:
    """The fields (segments) the national row's modelled turnout, the lowest mean in use, reads: each mean in use
    (``means``, :func:`_means_in_use` of ``cfg``) and each region's own ``turnout.regional_mean`` entry, which a
    sweep may add (the whole table where an electorate file's regions are not known)."""
    names = cfg.region_names()
    own = [("turnout", "regional_mean", region) for region in names] if names else [("turnout", "regional_mean")]
    return [field for field, _ in means] + own


def _varied_fields(cfg: Config, blocks: list[InferConfig]) -> list[tuple[str, ...]]:
    """The fields (segments) that change from run to run of ``cfg`` inferring ``blocks``: swept ones and inferred
    ones (a block's path and its ``also``)."""
    inferred = [segments for block in blocks for path in (block.path, *block.also)
                if (segments := _path_segments(path)) is not None]
    return [tuple(segments) for segments in [*(swept for _, swept in _sweep_segments(cfg)), *inferred]]


def _any_varies(fields: list[tuple[str, ...]], varied: list[tuple[str, ...]]) -> bool:
    """Whether one of ``varied`` is one of ``fields`` (segments), a table holding one, or a field one holds."""
    return any(field[:len(other)] == other or other[:len(field)] == field for field in fields for other in varied)


def _observed_votes_problems(cfg: Config) -> list[str]:
    """Official votes no count can have: more than the ballots cast (else the register), or, with every valid
    option given, no valid vote at all (the official shares, valid votes over their sum, would not exist)."""
    votes = cfg.observed.votes
    total = sum(votes.values())
    bound = next(((field, value) for field, value in (("ballots", cfg.observed.ballots),
                                                      ("registered", cfg.observed.registered)) if value is not None),
                 None)
    if bound is not None and total > bound[1]:
        return [f"observed.votes: sum to {total:,}, more than observed.{bound[0]} ({bound[1]:,})"]
    valid = cfg.valid_option_names
    if set(valid) <= set(votes) and sum(votes[name] for name in valid) == 0:
        return ["observed.votes: every valid option has 0 votes: there are no official shares"]
    return []


def raw_problems(raw: dict) -> list[str]:
    """Every problem of raw config data: its validation, else its cross-checks (``dotted.field: problem``)."""
    return _validated(raw)[0]


def _validated(raw: dict) -> tuple[list[str], list[str]]:
    """:func:`raw_problems` of raw config data and, of those, its share-figure refusals (:func:`_cross_checked`;
    none where validation fails)."""
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as error:
        return _pydantic_problems(error, raw), []
    return _cross_checked(cfg)


def prior_value_problems(raw: dict) -> list[str]:
    """:func:`raw_problems` of a config whose inferred fields are set at prior values (``raw``, its ``infer`` table
    left out), less the share-figure refusals (:func:`timeline_share_problems`): the config's own checks judge a
    final figure only against a turnout mean no prior varies, and here, with no ``infer`` table, the rows of an
    inferred mean would be judged at one value of its prior, refusing a config valid over the run."""
    problems, share_figures = _validated(raw)
    skipped = set(share_figures)
    return [problem for problem in problems if problem not in skipped]


def _poll_problems(cfg: Config) -> list[str]:
    """Poll designs against the ballot and, for synthetic electorates, the number of stations (the
    register-dependent checks run where the electorate is built)."""
    problems = []
    for kind, polls in (("exit_poll", cfg.exit_poll), ("quick_count", cfg.quick_count)):
        names = [poll.name for poll in polls]
        if len(set(names)) != len(names):
            problems.append(f"{kind}: names must be unique")
    invalid = cfg.invalid_option_name
    n_stations = cfg.electorate.stations if isinstance(cfg.electorate, SyntheticElectorate) else 10**12
    for poll in cfg.polls:
        problems += check_poll_design(poll, n_stations, None, cfg.option_names, invalid)
    return problems


#: the only fields a scenario may override: the honest count is shared by every scenario
SCENARIO_OVERRIDABLE = ("manipulation", "exit_poll", "quick_count")


def _needs_invalid_column(block) -> str | None:
    """``field: problem`` when ``block`` moves ballots to or from an invalid-ballot option, else None."""
    if block.kind == "invalidation":
        return 'kind: invalidation needs an option of kind = "invalid" on the ballot'
    if block.kind == "vote_stealing" and block.from_invalid:
        return 'from_invalid: needs an option of kind = "invalid" on the ballot'
    return None


#: the tables keyed by region name
REGION_KEYED_FIELDS = ("turnout.regional_mean", "observed.regional_turnout", "timeline.regional", TIMELINE_TURNOUT)

#: the region-keyed tables of one number per region that a sweep may add a region's entry to (the others hold
#: lists, or are observed figures, which are not swept)
SWEEP_ADDABLE = ("turnout.regional_mean",)


def region_problems(cfg: Config, region_names: list[str]) -> list[str]:
    """Every region the config names (regional means and turnouts, manipulation blocks, timelines) that is not one
    of the electorate's ``region_names``."""
    problems = [f"{field}.{region}: {_unknown_region(region, region_names)}"
                for field in REGION_KEYED_FIELDS for region in region_keys(cfg, field) if region not in region_names]
    problems += _swept_region_problems(cfg, region_names)
    return problems + [f"manipulation.{block.name}.regions: {region!r} is {_unknown_region(region, region_names)}"
                       for block in cfg.manipulation for region in block.regions or [] if region not in region_names]


def _unknown_region(region: str, region_names: list[str]) -> str:
    """Why ``region`` is none of ``region_names``: no region of that name, or one that looks the same written in
    another Unicode form (an accent composed or not: NFC against NFD), shown escaped, where the two would print
    alike."""
    form = unicodedata.normalize("NFC", region)
    alike = [name for name in region_names if unicodedata.normalize("NFC", name) == form]
    if alike:
        return (f"not a region of the electorate as written: the electorate writes it {ascii(alike[0])}, the "
                f"config {ascii(region)} (the same letters in another Unicode form); write them alike")
    return "not a region of the electorate"


def _swept_region_problems(cfg: Config, region_names: list[str]) -> list[str]:
    """Each sweep of a :data:`SWEEP_ADDABLE` table's entry (``turnout.regional_mean.north``) whose region is not
    one of ``region_names``: ``sweep.FIELD.REGION: not a region …``, the problem each of its points has, once."""
    return [f"sweep.{'.'.join(segments)}: {_unknown_region(segments[-1], region_names)}"
            for _, segments in _sweep_segments(cfg)
            if join_path(segments[:-1]) in SWEEP_ADDABLE and segments[-1] not in region_names]


def region_keys(cfg: Config, field: str) -> list[str]:
    """The regions of ``cfg``'s table at dotted ``field`` (one of :data:`REGION_KEYED_FIELDS`), read from the
    validated config itself, not a dump of it (a sweep checks each point, an inference each prior probe); none when
    the config leaves out the block that holds the table (``[timeline]``, ``[observed.timeline]``)."""
    node: Any = cfg
    for name in field.split("."):
        node = getattr(node, name)
        if node is None:
            return []
    return list(node)


def check_regions(cfg: Config, region_names: tuple[str, ...]) -> None:
    """InputError naming the electorate file, the first field and the file's regions when the config names a region
    that an electorate file does not have (a synthetic electorate's regions are checked with the config)."""
    if not isinstance(cfg.electorate, CsvElectorate):
        return
    problems = region_problems(cfg, list(region_names))
    if problems:
        raise InputError(f"{cfg.electorate.path}: {problems[0]} (the file's {len(region_names)} regions: "
                         f"{listed(region_names)})")


def _block_problems(cfg: Config) -> list[str]:
    """Each manipulation block against the ballot (its beneficiary, the invalid column it needs) and the regions
    (an empty list would act nowhere)."""
    problems = []
    for block in cfg.manipulation:
        where = f"manipulation.{block.name}"
        if block.regions == []:
            problems.append(f"{where}.regions: empty: the block would act nowhere; leave regions out for every region")
        if block.beneficiary not in cfg.option_names:
            problems.append(f"{where}.beneficiary: not an option, got {block.beneficiary!r}")
        elif cfg.option_names.index(block.beneficiary) == cfg.invalid_index:
            problems.append(f"{where}.beneficiary: the invalid column cannot benefit")
        if cfg.invalid_index is None and (needed := _needs_invalid_column(block)):
            problems.append(f"{where}.{needed}")
    return problems


def _manipulation_problems(cfg: Config, raw: dict | None) -> list[str]:
    """The manipulation blocks and scenarios: unique names, the blocks the scenarios name, and the overrides each
    scenario makes of ``raw`` (:func:`_unswept_raw`, read only; None only when no scenario overrides a field)."""
    problems = []
    block_names = [block.name for block in cfg.manipulation]
    if len(set(block_names)) != len(block_names):
        problems.append("manipulation: block names must be unique")
    if len(cfg.manipulation) > MAX_MANIPULATION_BLOCKS:
        problems.append(f"manipulation: at most {MAX_MANIPULATION_BLOCKS} blocks (one bit each in the int64 "
                        f"manipulated mask), got {len(cfg.manipulation)}")
    unchanged = _block_problems(cfg)
    problems += unchanged
    scenario_names = [scenario.name for scenario in cfg.scenario]
    if len(set(scenario_names)) != len(scenario_names):
        problems.append("scenario: scenario names must be unique")
    for scenario in cfg.scenario:
        where = f"scenario.{scenario.name}"
        for name in scenario.manipulations:
            if name not in block_names:
                problems.append(f"{where}.manipulations: no [[manipulation]] block named {name!r}")
        problems += solved_problems(cfg, scenario)
        for path, value in scenario.overrides.items():
            if path.split(".")[0] not in SCENARIO_OVERRIDABLE:
                problems.append(f"{where}.overrides.{path}: scenarios may only override "
                                f"{', '.join(SCENARIO_OVERRIDABLE)} fields (the honest count is shared)")
                continue
            held = _swept_below(cfg, path)
            if held:
                swept, below = held[0]
                what = f"it holds the swept field {swept}" if below else "the field is swept"
                problems.append(f"{where}.overrides.{path}: {what} ([sweep] or --sweep): the override "
                                f"would hold it at every sweep point; sweep it or override it, not both")
                continue
            try:
                get_path(raw, path)
                Config.model_validate(set_path(raw, path, value))
            except KeyError as missing:
                problems.append(f"{where}.overrides.{missing.args[0]}")
            except ValidationError as error:
                problems += [f"{where}.overrides: {p}" for p in _pydantic_problems(error, raw)]
        problems += [f"{where}.overrides: {p}" for p in _overridden_block_problems(cfg, scenario)
                     if p not in unchanged]
    return problems


def _sweep_segments(cfg: Config) -> list[tuple[str, list[str]]]:
    """Each key of ``cfg.sweep`` with its segments (:func:`simkit.paths.split_path`); a key with an unbalanced quote
    is left out: :func:`_sweep_problems` refuses it."""
    return [(key, segments) for key in cfg.sweep if (segments := _path_segments(key)) is not None]


def _path_segments(path: str) -> list[str] | None:
    """Dotted ``path``'s segments, or None for an unbalanced quote (reported where that path is checked)."""
    try:
        return split_path(path)
    except KeyError:
        return None


def _swept_below(cfg: Config, path: str) -> list[tuple[str, list[str]]]:
    """Each key of ``cfg.sweep`` that dotted ``path`` names or holds (``path`` itself, or a table or block above
    it), with its segments below ``path`` (none when ``path`` names it); segments compared, so quoting does not
    matter. A sweep key never holds an override's field: swept fields are numbers (:func:`_sweep_problems`)."""
    segments = _path_segments(path)
    if segments is None:
        return []
    return [(key, swept[len(segments):]) for key, swept in _sweep_segments(cfg) if swept[:len(segments)] == segments]


def _set_sweep_keys(cfg: Config, path: str, value: Any) -> list[tuple[str, list[str]]]:
    """The keys of ``cfg.sweep`` whose fields an override of dotted ``path`` by ``value`` sets, each with its
    segments below ``path`` (:func:`_swept_below`): ``path`` itself, or a table above them whose ``value`` holds
    them (a table's other fields are kept at every point)."""
    held = []
    for key, below in _swept_below(cfg, path):
        try:
            if below:
                get_path(value, join_path(below))
            held.append((key, below))
        except KeyError:
            continue
    return held


def _overridden_block_problems(cfg: Config, scenario) -> list[str]:
    """:func:`_block_problems` of the config as ``scenario``'s overrides leave it (none when they do not validate:
    those problems are reported per override)."""
    if not scenario.overrides:
        return []
    try:
        return _block_problems(cfg.at(scenario.overrides))
    except (KeyError, ValidationError):
        return []


def _sweep_problems(cfg: Config, raw: dict | None, reported: list[str]) -> list[str]:
    """Each swept field and each of its values, a point at a time, against ``raw`` (:func:`_unswept_raw`, read only;
    None only without a sweep): a problem every point shares is reported once, by the config's own checks
    (``reported``, gathered before this step), but a share-figure refusal those skip for a swept mean
    (:func:`_skipped_share_problems`) is told at each point it fails."""
    problems = []
    if not cfg.sweep:
        return problems
    base = Config.model_validate(raw)
    base_problems, base_share_figures = _cross_checked(base)
    unswept = set(base_problems) - _skipped_share_problems(base_share_figures, reported)  # told once, not per point
    names = cfg.region_names()
    if names:  # a swept region the electorate lacks: reported once (region_problems), not per point
        unswept |= {problem.removeprefix("sweep.") for problem in _swept_region_problems(cfg, names)}
    for path, values in cfg.sweep.items():
        where = f"sweep.{path}"
        if path.split(".")[0] in UNSWEEPABLE:
            problems.append(f"{where}: {path.split('.')[0]} fields cannot be swept")
            continue
        if not values:
            problems.append(f"{where}: needs at least one value")
            continue
        if len(set(values)) != len(values):
            problems.append(f"{where}: values must be distinct")
        target = _sweep_target_problem(raw, path, cfg)
        if target:
            problems.append(f"sweep.{target}")
            continue
        for value in values:
            try:
                point = Config.model_validate(set_path(raw, path, value))
            except ValidationError as error:
                problems += [f"{where}={value:g}: {p}" for p in _pydantic_problems(error, raw)]
                continue
            problems += [f"{where}={value:g}: {p}" for p in cross_check(point) if p not in unswept]
    return problems


def _skipped_share_problems(share_figures: list[str], reported: list[str]) -> set[str]:
    """The share-figure refusals of the sweep-free config (``share_figures``, :func:`_cross_checked` of it) that the
    config's own checks (``reported``) did not tell: those of the rows whose mean its sweep varies, which it skips
    and each sweep point judges."""
    return set(share_figures) - set(reported)


def _sweep_target_problem(raw: dict, path: str, cfg: Config) -> str | None:
    """Why dotted ``path`` of ``raw`` cannot be swept (``PATH: problem``), or None: a numeric field, or one that
    ``raw`` leaves out and each sweep point adds: a region's entry of a :data:`SWEEP_ADDABLE` table (its region and
    value are checked with the points), or an optional field of a block (:func:`_optional_field` of ``cfg``)."""
    try:
        current = get_path(raw, path)
    except KeyError as missing:
        segments = _path_segments(path)
        if segments is None:  # an unbalanced quote: get_path's problem says so
            return missing.args[0]
        addable = join_path(segments[:-1]) in SWEEP_ADDABLE or _optional_field(cfg, segments)
        return None if addable else missing.args[0]
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        return f"{path}: not a numeric field"
    return None


def _optional_field(cfg: Config, segments: list[str]) -> bool:
    """Whether ``segments`` name a field of one of ``cfg``'s blocks that a config may leave out (one with a default;
    of those, only one whose default is None is absent from :meth:`Config.raw`: a fabrication's ``target_share``)."""
    node: Any = cfg
    for segment in segments[:-1]:
        if isinstance(node, BaseModel):
            node = getattr(node, segment) if segment in type(node).model_fields else None
        elif isinstance(node, list):  # blocks, named by their name
            node = next((item for item in node if getattr(item, "name", None) == segment), None)
        else:
            node = node.get(segment) if isinstance(node, dict) else None
    fields = type(node).model_fields if isinstance(node, BaseModel) else {}
    return segments[-1] in fields and not fields[segments[-1]].is_required()


def parse_value(text: str) -> Any:
    """An ``overrides`` value given as text: TOML syntax when it parses (numbers, booleans, lists), else a
    string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise InputError(f"overrides {text[:20]}…: nested too deeply", parameters=("overrides",)) from None


def check_config(cfg: Any) -> None:
    """``cfg``: a :class:`Config` (InputError naming the parameter otherwise: a path given where the loaded
    config is expected says how to load it)."""
    if not isinstance(cfg, Config):
        raise InputError(f"cfg: a Config (simkit.load_config(path)), got {type(cfg).__name__} {cfg!r:.80}",
                         parameters=("cfg",))


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read, override (dotted paths) and validate a TOML config; raise ConfigError with every problem."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path: a config file path, got {type(path).__name__} {path!r:.80}", parameters=("path",))
    path = Path(path)
    return parse_config(read_config_text(path, str(path)), source=str(path), base_dir=path.parent, overrides=overrides)


def read_config_text(path: Path, source: str) -> str:
    """The text of the config file at ``path`` as the config reader reads it (a leading byte-order mark dropped);
    ConfigError naming ``source`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not TOML
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{source}: cannot read: {error}"]) from None


def _deep_merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``: tables merge key by key; any other value (arrays of blocks included) replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_toml(text: str, source: str, base_dir: Path | None, seen: tuple[str, ...] = ()) -> dict:
    """TOML text → raw dict, with ``extends = "other.toml"`` (relative to this file) merged underneath."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{source}: invalid TOML: {error}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: invalid TOML: arrays or tables nested too deeply"]) from None
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or base_dir is None:
        raise ConfigError([f"{source}: extends: must be a path to another config file"])
    parent_path = (base_dir / parent).resolve()
    if str(parent_path) in seen:
        raise ConfigError([f"{source}: extends: {parent} extends itself"])
    parent_source = f"{source}: extends {parent}"
    base = _parse_toml(read_config_text(parent_path, parent_source), parent_source, parent_path.parent,
                       seen + (str(parent_path),))
    return _deep_merge(base, raw)


#: tables and their fields that hold file paths, resolved against the config file's folder
_PATH_FIELDS = (("electorate", ("path",)), ("observed.stations", ("returns", "map")))


def _path_tables(raw: dict):
    """(table, keys) for each table of :data:`_PATH_FIELDS` present in ``raw``."""
    for table_path, keys in _PATH_FIELDS:
        table = raw
        for part in table_path.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict):
            yield table, keys


def data_paths(cfg: Config) -> list[str]:
    """The data files a config reads (electorate CSV, observed returns and map), as resolved."""
    return [table[key] for table, keys in _path_tables(cfg.raw()) for key in keys if isinstance(table.get(key), str)]


def _resolve_paths(raw: dict, base_dir: Path) -> None:
    """Make the relative file paths of :data:`_PATH_FIELDS` absolute (in place), relative to ``base_dir``."""
    for table, keys in _path_tables(raw):
        for key in keys:
            if isinstance(table.get(key), str):
                table[key] = str((base_dir / table[key]).resolve())


def swept_key(dotted: str) -> str | None:
    """The ``[sweep]`` key an override path ``sweep.PATH`` sets (``PATH`` itself dotted: ``sweep.turnout.dispersion``,
    or one quoted segment as a ``[sweep]`` key is written: ``sweep."turnout.dispersion"``; both give
    ``turnout.dispersion``); None for a path that sets no sweep."""
    head, *rest = split_path(dotted)
    if head != "sweep" or not rest:
        return None
    return rest[0] if len(rest) == 1 else join_path(rest)


def set_override(raw: dict, dotted: str, value: Any) -> dict:
    """``raw`` with one override applied: ``sweep.PATH`` sets the values swept over ``PATH`` (:func:`swept_key`),
    beside the config's other sweeps; any other path sets that field (:func:`simkit.paths.set_path`). KeyError
    naming the path when it cannot be set."""
    swept = swept_key(dotted)
    if swept is None:
        return set_path(raw, dotted, value)
    sweep = raw.get("sweep", {})
    if not isinstance(sweep, dict):
        raise KeyError(f"sweep: cannot set a field inside a {type(sweep).__name__}")
    return {**raw, "sweep": {**sweep, swept: value}}


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None,
                 overrides: dict[str, Any] | None = None) -> Config:
    """Validate config text; relative paths (``extends``, data files) are resolved against ``base_dir``.
    ``overrides`` (dotted path -> value) replace fields of the text; a problem at a field one of them sets leaves
    its value out (:func:`shown_once`: the caller gave it, and names it: ``--set turnout.mean=x``, ``replicates=0``)."""
    raw = file_raw = _parse_toml(text, source, base_dir)
    for dotted, value in (overrides or {}).items():
        try:
            raw = set_override(raw, dotted, value)
        except KeyError as missing:
            raise ConfigError([f"{source}: {missing.args[0]}"]) from None
    if base_dir is not None:
        _resolve_paths(raw, base_dir)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as error:
        problems = _pydantic_problems(error, raw)
    else:
        problems = _swept_override_problems(cfg, overrides or {}, file_raw) + cross_check(cfg)
    if problems:
        given = _set_fields(overrides)
        raise ConfigError([f"{source}: {shown_once(p, given)}" for p in problems])
    return cfg


def _set_fields(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The dotted fields (unquoted, as problems name them) that ``overrides`` set, each with its value, sweeps left
    out."""
    return {".".join(split_path(dotted)): value for dotted, value in (overrides or {}).items()
            if swept_key(dotted) is None}


def _swept_override_problems(cfg: Config, overrides: dict[str, Any], file_raw: dict) -> list[str]:
    """Each override that sets a field ``cfg`` sweeps (itself, or in a table that holds it:
    :func:`_set_sweep_keys`) where the sweep needs no such value, as the field is in ``file_raw`` (the config before
    its overrides) or a sweep adds it (:func:`_sweep_target_problem`): every sweep point sets the field, so the
    value would be used at none (as a scenario's override of a swept field would not be). A table set without the
    swept field (possible where the field is optional) keeps its other fields at every point: not refused."""
    problems = []
    for dotted, value in overrides.items():
        held = [] if swept_key(dotted) is not None else _set_sweep_keys(cfg, dotted, value)
        for key, below in held:
            if _sweep_target_problem(file_raw, key, cfg) is not None:  # the sweep needs this value to exist
                continue
            if not below:
                problems.append(f"{dotted}: swept ([sweep] or --sweep): this value would be used at no point; "
                                "drop one")
            else:
                problems.append(f"{dotted}: holds the swept field {key} ([sweep] or --sweep), whose value here would "
                                f"be used at no point; set the table's other fields one by one ({dotted}.FIELD=...)")
            break
    return problems


def solved_problems(cfg, scenario) -> list[str]:
    """What is wrong with ``scenario.solved_honest`` in ``cfg`` (dotted fields, one line each)."""
    if scenario.solved_honest is None:
        return []
    where = f"scenario.{scenario.name}.solved_honest"
    if not scenario.match_observed or scenario.solved_for is None:
        return [f"{where}: is the solution of count matching and needs match_observed = true and solved_for"]
    points = len(cfg.sweep_points())
    if len(scenario.solved_honest) != points:
        return [f"{where}: {len(scenario.solved_honest)} tables for {points} sweep point(s), one per point needed"]
    allowed = ("turnout.mean", "turnout.regional_mean.", "preferences.shares.")
    problems = []
    for table in scenario.solved_honest:
        for path, value in table.items():
            if not (path == allowed[0] or path.startswith(allowed[1:])) or (
                    path.startswith(allowed[2]) and path.removeprefix(allowed[2]) not in cfg.option_names):
                problems.append(f"{where}.{path}: only turnout.mean, turnout.regional_mean.<region> and "
                                "preferences.shares.<option> are solved")
            elif not 0 < value < 1:
                problems.append(f"{where}.{path}: must be between 0 and 1, got {value}")
    return problems
