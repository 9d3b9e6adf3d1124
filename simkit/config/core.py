"""The config's blocks as validated, immutable objects: :class:`Config` and its parts, each checking its own fields.

Loading a TOML file into a :class:`Config` is :mod:`simkit.config.load` (its errors read ``file: dotted.path:
problem``; :func:`simkit.config.load.load_config` raises :class:`simkit.config.messages.ConfigError` holding every
problem found, which ``simkit validate`` prints all of); checks across blocks are :mod:`simkit.config.checks`.

Shares are fractions in [0, 1] throughout. ``preferences.shares`` are the probabilities of a ballot
going to each option, ``invalid`` included, so they sum to 1.
"""
from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal, Union

import numpy as np
import tomli_w
from pydantic import AfterValidator, BaseModel, Field, model_validator

from simkit.config.manipulation import ManipulationConfig, ScenarioConfig
from simkit.config.inference import InferConfig, InferenceSettings
from simkit.config.polls import ExitPollConfig, QuickCountConfig
from simkit.config.timeline import ObservedTimeline, TimelineConfig
from simkit.errors import InputError, listed, shown
from simkit.paths import set_in_place
from simkit.schema import STATION_STATISTICS
from simkit.types import (MAX_CONCENTRATION, MAX_LATENT_SD, MAX_REGISTER, MAX_REPLICATES, MAX_SEED,
                          MAX_STATIONS, STRICT, Correlation, Identifier, OpenShare, Positive, PositiveShare, Share)
from simkit.model.latent import logit_normal_mean, truncated_normal_mean
from simkit.model.turnout import turnout_locations
from simkit.model.rounding import largest_remainder


#: joins the problems one block check finds, each ``field: problem``; :func:`pydantic_problems` tells them apart
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


def check_config(cfg: Any) -> None:
    """``cfg``: a :class:`Config` (InputError naming the parameter otherwise: a path given where the loaded
    config is expected says how to load it)."""
    if not isinstance(cfg, Config):
        raise InputError(f"cfg: a Config (simkit.load_config(path)), got {type(cfg).__name__} {cfg!r:.80}",
                         parameters=("cfg",))
