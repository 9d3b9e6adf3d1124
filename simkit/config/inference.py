"""Config models of simulation-based inference: ``[[infer]]`` priors and the ``[inference]`` settings.

Each ``[[infer]]`` block puts a prior on one numeric config field, named by the project's dotted-path
grammar (its identity: two blocks may not share a ``path``). ``apply`` says how a drawn value enters the
config:

* ``"set"`` (default): the field is set to the value (e.g. ``manipulation.coercion.share``);
* ``"logit_shift"``: the value is added on the logit scale to the share at ``path`` or to every share in
  the table at ``path`` (e.g. ``turnout.regional_mean``: one common shift of every region's honest
  turnout, keeping the regional pattern);
* ``"set_share"``: ``path`` is ``preferences.shares.<option>``; that share is set to the value and the other
  options' shares are rescaled in proportion so that they still sum to 1.

Example (TOML)::

    [[infer]]
    path = "manipulation.coercion.share"
    prior = "uniform"
    low = 0.0
    high = 0.3

    [[infer]]
    path = "turnout.regional_mean"
    apply = "logit_shift"
    prior = "normal"
    mean = 0.0
    sd = 0.3
    low = -1.0
    high = 1.0

    [inference]
    particles = 400
    seed = 2022
    statistics = ["turnout", "shares", "invalid", "regional_turnout"]
    observation_noise = { regional_turnout = 0.0005 }

:class:`simkit.config.core.Config` carries these tables as ``infer`` and ``inference``; :func:`infer_problems`
is its cross-check (run by :func:`simkit.config.checks.cross_check`, so ``simkit validate`` reports it), and
:func:`apply_values` writes drawn values into raw config data (the inference's simulator and the
cross-check's prior-median config both use it).
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, Field, model_validator
from scipy import stats
from scipy.special import expit, logit

from simkit.errors import listed
from simkit.paths import get_path, set_in_place, split_path
from simkit.types import MAX_SEED, STRICT, OpenShare, Positive

#: simulations per generation, pilot or check: a million is days of work on a large cluster already
MAX_SIMULATIONS = 10**6

#: particles per generation, at least: fewer leave no effective sample to weigh
MIN_PARTICLES = 20

#: a prior may put at most this much probability on each side beyond its field's valid range (invalid draws are
#: rejected, so more would change the prior silently): one draw in a million
PRIOR_TAIL = 1e-6

#: statistic groups computed from the engine's totals and compared with ``[observed]``
STATISTIC_GROUPS = ("turnout", "shares", "invalid", "regional_turnout", "polls", "stations", "timeline")


class _Block(BaseModel):
    model_config = STRICT


class InferConfig(_Block):
    """A prior over one numeric config field.

    ``prior`` and its parameters (all in the field's own units, shares in [0, 1]):

    * ``uniform``: on [``low``, ``high``];
    * ``beta``: ``a``, ``b`` on [``low``, ``high``] (default [0, 1]);
    * ``log_uniform``: uniform in log on [``low``, ``high``], ``low`` > 0;
    * ``normal``: ``mean``, ``sd``, truncated to [``low``, ``high``] when given (each bound optional).
    """

    path: str = Field(min_length=1, description="dotted path of the inferred field (its identity)")
    also: list[str] = Field(default_factory=list, description="further dotted paths set to the same value "
                            "(apply = \"set\" only), e.g. one misreporting rate for every option's voters")
    label: str = ""
    apply: Literal["set", "logit_shift", "set_share"] = "set"
    prior: Literal["uniform", "beta", "log_uniform", "normal"]
    low: float | None = None
    high: float | None = None
    a: Positive | None = None
    b: Positive | None = None
    mean: float | None = None
    sd: Positive | None = None

    @model_validator(mode="after")
    def _parameters_fit_the_prior(self) -> "InferConfig":
        needed = {"uniform": ("low", "high"), "beta": ("a", "b"), "log_uniform": ("low", "high"),
                  "normal": ("mean", "sd")}[self.prior]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"prior {self.prior!r} needs {' and '.join(missing)}")
        unused = {"uniform": ("a", "b", "mean", "sd"), "beta": ("mean", "sd"),
                  "log_uniform": ("a", "b", "mean", "sd"), "normal": ("a", "b")}[self.prior]
        extra = [name for name in unused if getattr(self, name) is not None]
        if extra:
            raise ValueError(f"prior {self.prior!r} takes no {', '.join(extra)}")
        low, high = self.bounds
        if not low < high:
            raise ValueError(f"low must be below high, got {low:g} and {high:g}")
        if self.prior == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform needs low > 0, got {low:g}")
        first, last = self.distribution().ppf([PRIOR_TAIL, 1 - PRIOR_TAIL])
        if not first < last:
            raise ValueError(f"the prior is the single value {first:g} (its {PRIOR_TAIL:g} and {1 - PRIOR_TAIL:g} "
                             "quantiles) at a float's resolution: nothing to infer; set the field to it instead")
        if self.also and self.apply != "set":
            raise ValueError("also: only with apply = \"set\"")
        if self.apply == "set_share" and not self.path.startswith("preferences.shares."):
            raise ValueError("apply = \"set_share\" needs a path preferences.shares.<option>")
        if self.apply == "set_share" and not (0 <= low and high <= 1):
            raise ValueError("apply = \"set_share\" needs bounds within [0, 1]")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """Support of the prior (``-inf``/``inf`` for an untruncated normal side)."""
        default = (0.0, 1.0) if self.prior == "beta" else (-math.inf, math.inf)
        low = self.low if self.low is not None else default[0]
        high = self.high if self.high is not None else default[1]
        return low, high

    def distribution(self):
        """The prior as a frozen ``scipy.stats`` distribution (``logpdf``, ``ppf``, ``rvs``)."""
        low, high = self.bounds
        if self.prior == "uniform":
            return stats.uniform(loc=low, scale=high - low)
        if self.prior == "beta":
            return stats.beta(self.a, self.b, loc=low, scale=high - low)
        if self.prior == "log_uniform":
            return stats.loguniform(low, high)
        return stats.truncnorm((low - self.mean) / self.sd, (high - self.mean) / self.sd, loc=self.mean,
                               scale=self.sd)


class InferenceSettings(_Block):
    """How ABC-SMC runs (see :mod:`simkit.inference`).

    Tolerances are in units of each summary's simulation noise (its SD across simulations at one
    parameter value); ``observation_noise`` values are SDs in the statistic's own units (shares in
    [0, 1]), keyed by statistic group (``turnout``, ``shares``, ``invalid``, ``regional_turnout``) or by a
    single statistic name (``share.tokayev``, ``regional_turnout.almaty_city``).
    """

    particles: int = Field(400, ge=MIN_PARTICLES, le=MAX_SIMULATIONS, description="particles per generation")
    max_generations: int = Field(12, ge=1, le=1000, description="generations after the prior pilot, at most")
    final_tolerance: Positive = Field(0.5, description="stop once the tolerance reaches this (simulation-noise units)")
    min_ess: int = Field(50, ge=5, le=MAX_SIMULATIONS,
                         description="stop before a generation whose ESS would fall below this")
    ess_fraction: OpenShare = Field(0.5, description="each generation keeps this share of the previous ESS")
    pilot: int | None = Field(None, ge=20, le=MAX_SIMULATIONS,
                              description="prior simulations for the summaries (default: particles)")
    noise_replicates: int = Field(40, ge=5, le=MAX_SIMULATIONS,
                                  description="simulations at the prior median for the noise scale")
    predictive: int = Field(200, ge=10, le=MAX_SIMULATIONS, description="posterior predictive simulations")
    adjustment: Literal["none", "linear"] = Field(
        "none", description="linear: Beaumont et al. (2002) regression adjustment of the final particles; "
        "NOT calibrated when the evidence has observation noise (SBC coverage of 90% intervals: 0.70)")
    recycle: bool = Field(True, description="pool every generation's simulations, weighted at the final tolerance "
                          "(the posterior's effective sample size adds up; simkit.inference.smc.recycle)")
    target_ess: OpenShare | None = Field(
        None, description="with recycle: lower the tolerance while the pooled effective sample size of every "
        "generation stays at least this share of the particles; whatever ends the run, the final tolerance is the "
        "lowest that keeps it (simkit.inference.smc.lowest_tolerance; none: the last kept generation's tolerance)")
    summaries: Literal["regression+national", "regression", "raw"] = Field(
        "regression+national", description="regression: Fearnhead-Prangle projections (one per parameter); "
        "+national: and the national count's statistics; raw: every statistic")
    statistics: list[Literal["turnout", "shares", "invalid", "regional_turnout", "polls", "stations", "timeline"]] = list(
        STATISTIC_GROUPS)
    observation_noise: dict[str, float] = {}
    scenario: str | None = Field(None, description="scenario simulated (default: the config's last)")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    workers: int = Field(2, ge=1, le=1024, description="processes simulating particles")
    kernel: Literal["numpy", "numba"] = Field(
        "numba", description="the engine's kernel for the honest count (simkit.engine.kernels; numba where it supports "
        "the model, numpy elsewhere)")

    @model_validator(mode="after")
    def _noise_non_negative(self) -> "InferenceSettings":
        if self.target_ess is not None and not self.recycle:
            raise ValueError("target_ess: needs recycle = true (it is the pooled generations' effective sample size)")
        for key, value in self.observation_noise.items():
            if not value >= 0:
                raise ValueError(f"observation_noise.{key}: must be non-negative, got {value:g}")
        return self


#: problems of raw config data (its validation and cross-checks), one ``dotted.field: problem`` each
RawCheck = Callable[[dict], list[str]]


def infer_problems(cfg, blocks: list[InferConfig], settings: InferenceSettings, check_raw: RawCheck) -> list[str]:
    """Cross-checks against the main config ``cfg`` (a :class:`simkit.config.core.Config`): no field is set by two
    blocks or lies outside the model (:data:`NOT_PARAMETERS`), each path exists and holds what its ``apply``
    needs, the config with every inferred field at its prior median passes ``check_raw`` (the config's own
    validation, given by the caller: this module sits below it), the scenario exists, there is evidence, and no
    sweep (inferred fields replace swept ones)."""
    problems = _shared_field_problems(blocks) + _not_parameter_problems(blocks)
    raw = cfg.raw()
    raw.pop("sweep", None)
    for block in blocks:
        where = f"infer.{block.path}"
        for path in [block.path, *block.also]:
            try:
                current = get_path(raw, path)
            except KeyError as missing:
                if _optional_poll_entry(raw, path):
                    continue  # a poll's misreport or propensity entry: absent means truthful / average
                problems.append(f"infer.{missing.args[0]}")
                current = None
                break
            if path != block.path and (isinstance(current, bool) or not isinstance(current, (int, float))):
                problems.append(f"{where}.also: {path}: not a numeric field")
        else:
            current = get_path(raw, block.path) if not _optional_poll_entry(raw, block.path) else 0.0
        if current is None:
            continue
        values = list(current.values()) if block.apply == "logit_shift" and isinstance(current, dict) else [current]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            problems.append(f"{where}: not a numeric field" + (" or table of numbers" if block.apply == "logit_shift"
                                                              else ""))
            continue
        if block.apply == "logit_shift" and not all(0 < v < 1 for v in values):
            problems.append(f"{where}: logit_shift needs shares strictly between 0 and 1")
    if not problems:
        problems += prior_quantile_problems(raw, blocks, check_raw)
    if cfg.sweep:
        problems.append("sweep: a config with [[infer]] blocks cannot have a [sweep] (inferred fields replace it)")
    names = [scenario.name for scenario in cfg.scenarios()]
    if settings.scenario is not None and settings.scenario not in names:
        problems.append(f"inference.scenario: no scenario named {settings.scenario!r} (have {listed(names)})")
    observed = cfg.observed
    published = any(poll.published for poll in getattr(cfg, "exit_poll", []))
    if not (observed.ballots and observed.registered) and not observed.votes and not observed.regional_turnout \
            and not published and observed.stations is None and observed.timeline is None:
        problems.append("observed: no evidence to infer from (no counts, regional turnouts, published polls, "
                        "station-level statistics or voting timeline)")
    return problems


def _shared_field_problems(blocks: list[InferConfig]) -> list[str]:
    """A field (a block's ``path`` or ``also`` path) set by more than one block: the later would overwrite the
    earlier's draws, whose posterior would be reported for values never used."""
    paths = [path for block in blocks for path in dict.fromkeys([block.path, *block.also])]
    return [f"infer.{path}: set by {paths.count(path)} [[infer]] blocks (a field has one prior)"
            for path in dict.fromkeys(paths) if paths.count(path) > 1]


#: tables a prior cannot set (their first path segment -> what they are): no simulated election reads them
NOT_PARAMETERS = {"observed": "[observed] is the evidence the simulations are compared with",
                  "inference": "[inference] sets how the inference runs", "infer": "[[infer]] holds the priors"}


def _not_parameter_problems(blocks: list[InferConfig]) -> list[str]:
    """A block's path (or ``also`` path) in a table that no simulated election reads: its draws would change
    nothing, and their "posterior", the prior itself, would be reported as an inferred parameter."""
    return [f"infer.{path}: not a model parameter ({NOT_PARAMETERS[split_path(path)[0]]})"
            for block in blocks for path in [block.path, *block.also] if split_path(path)[0] in NOT_PARAMETERS]


def _optional_poll_entry(raw: dict, path: str) -> bool:
    """``exit_poll.<name>.misreport.<from>.<to>`` or ``exit_poll.<name>.response_propensity.<option>`` of an
    existing poll: entries that may be absent from the config (absent = truthful answers, average propensity)."""
    parts = path.split(".")
    if len(parts) < 4 or parts[0] != "exit_poll" or parts[2] not in ("misreport", "response_propensity"):
        return False
    try:
        get_path(raw, ".".join(parts[:2]))
    except KeyError:
        return False
    return (parts[2] == "misreport" and len(parts) == 5) or (parts[2] == "response_propensity" and len(parts) == 4)


def prior_quantile_problems(raw: dict, blocks: list[InferConfig], check_raw: RawCheck) -> list[str]:
    """The problems ``check_raw`` finds in the config (``raw``, its ``infer`` and ``inference`` tables left out:
    no recursion) with its inferred fields at their prior medians, then, when there are none, at their prior
    tails (the config's own checks, or, once the electorate is built, its polls' designs against it)."""
    raw = {key: value for key, value in raw.items() if key not in ("infer", "inference")}
    medians = [float(block.distribution().ppf(0.5)) for block in blocks]
    return (_problems_at_prior_medians(raw, blocks, medians, check_raw)
            or _problems_at_prior_tails(raw, blocks, medians, check_raw))


def _problems_at_prior_medians(raw: dict, blocks: list[InferConfig], medians: list[float],
                               check_raw: RawCheck) -> list[str]:
    """The config with every inferred field at its prior median (``medians``, one per block) must validate
    (catches values of the wrong kind, misreport rows naming unknown options, shares that cannot sum to 1)."""
    try:
        at_median = apply_values(raw, blocks, medians)
    except KeyError as missing:
        return [f"infer: {missing.args[0]}"]
    return [f"infer (all fields at their prior medians): {p}" for p in check_raw(at_median)]


def _problems_at_prior_tails(raw: dict, blocks: list[InferConfig], medians: list[float],
                             check_raw: RawCheck) -> list[str]:
    """Each field at its prior's ``PRIOR_TAIL`` and ``1 - PRIOR_TAIL`` quantiles (the others at their medians)
    must validate: a draw that makes an invalid config is rejected by the simulator, so a prior reaching beyond
    the field's range would be silently truncated (the reported prior would not be the one used). One problem per
    block, naming the value reached, or that the field takes whole numbers (valid at the median, not at the next
    float on either side)."""
    problems = []
    for i, block in enumerate(blocks):
        for quantile in (PRIOR_TAIL, 1 - PRIOR_TAIL):
            value = float(block.distribution().ppf(quantile))
            found = _problems_with_one_field_at(raw, blocks, medians, i, value, check_raw)
            if not found:
                continue
            whole = _whole_number_problem(raw, blocks, medians, i, check_raw)
            if whole:
                problems.append(f"infer.{block.path}: the field takes whole numbers and a prior draws fractional ones "
                                f"({whole}): a prior cannot set it; fix the field instead")
            else:
                problems.append(f"infer.{block.path}: the prior reaches {value:.6g} (its {quantile:g} quantile), "
                                f"where the config is invalid ({found[0]}); bound it with low and high")
            break
    return problems


def _problems_with_one_field_at(raw: dict, blocks: list[InferConfig], medians: list[float], i: int, value: float,
                                check_raw: RawCheck) -> list[str]:
    """The problems ``check_raw`` finds with block ``i``'s field at ``value`` and the others at their medians."""
    return check_raw(apply_values(raw, blocks, medians[:i] + [value] + medians[i + 1:]))


def _whole_number_problem(raw: dict, blocks: list[InferConfig], medians: list[float], i: int,
                          check_raw: RawCheck) -> str | None:
    """The first problem with block ``i``'s field at the next float above its (valid) median when the next float
    below is invalid too (a field of whole numbers), else None (a median on the edge of the field's range, such as
    a share's 1.0, has a valid side)."""
    below = _problems_with_one_field_at(raw, blocks, medians, i, math.nextafter(medians[i], -math.inf), check_raw)
    if not below:
        return None
    above = _problems_with_one_field_at(raw, blocks, medians, i, math.nextafter(medians[i], math.inf), check_raw)
    return above[0] if above else None


def apply_values(raw: dict, blocks: Sequence[InferConfig], values: Sequence[float]) -> dict:
    """A copy of raw config data with each block's value applied: ``set`` (the value, at ``path`` and every
    ``also`` path), ``logit_shift`` (added on the logit scale to the share or table of shares at ``path``) or
    ``set_share`` (the option's share set, the other options rescaled to keep their proportions). ``raw`` is
    copied once; KeyError names a path that does not exist."""
    raw = copy.deepcopy(raw)
    for block, value in zip(blocks, values):
        value = float(value)
        if block.apply == "set":
            for path in [block.path, *block.also]:
                set_in_place(raw, path, value)
        elif block.apply == "logit_shift":
            current = get_path(raw, block.path)
            if isinstance(current, dict):
                shifted = {key: float(expit(logit(share) + value)) for key, share in current.items()}
            else:
                shifted = float(expit(logit(current) + value))
            set_in_place(raw, block.path, shifted)
        else:  # set_share: the other options keep their proportions
            option = block.path.rsplit(".", 1)[1]
            shares = get_path(raw, "preferences.shares")
            rest = sum(share for name, share in shares.items() if name != option)
            for name in shares:
                shares[name] = value if name == option else shares[name] * (1 - value) / rest
    return raw

