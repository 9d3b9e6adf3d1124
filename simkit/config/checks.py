"""Checks across the blocks of a validated config (:func:`cross_check`): shares that must sum to one, turnout and share
figures the model can reach, polls, observed votes, manipulation blocks and scenarios, and every sweep point
validated as the config it makes. Each problem is a ``dotted.path: problem`` line.
"""
from __future__ import annotations

import math

from pydantic import ValidationError

from simkit.config.inference import InferConfig, InferenceSettings, infer_problems
from simkit.config.polls import check_poll_design
from simkit.config.timeline import final_figure_problems, share_figure_problems, timeline_problems
from simkit.paths import get_path, join_path, set_path
from simkit.types import MAX_MANIPULATION_BLOCKS
from simkit.config.core import Config, SyntheticElectorate
from simkit.config.messages import pydantic_problems
from simkit.config.regions import region_problems, swept_region_problems
from simkit.config.sweeps import path_segments, sweep_segments, sweep_target_problem, swept_below, UNSWEEPABLE


SHARE_SUM_TOLERANCE = 1e-6


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
                if (segments := path_segments(path)) is not None]
    return [tuple(segments) for segments in [*(swept for _, swept in sweep_segments(cfg)), *inferred]]


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
        return pydantic_problems(error, raw), []
    return _cross_checked(cfg)


def prior_value_problems(raw: dict) -> list[str]:
    """:func:`raw_problems` of a config whose inferred fields are set at prior values (``raw``, its ``infer`` table
    left out), less the share-figure refusals (:func:`timeline_share_problems`): the config's own checks judge a
    final figure only against a turnout mean no prior varies, and here, with no ``infer`` table, the rows of an
    inferred mean would be judged at one value of its prior, refusing a config valid over the run."""
    problems, share_figures = _validated(raw)
    skipped = set(share_figures)
    return [problem for problem in problems if problem not in skipped]


def _shared_poll_names(cfg: Config) -> list[str]:
    """``field: problem`` for each name given to more than one poll, ``[[exit_poll]]`` and ``[[quick_count]]``
    together: the comparison's rows, the report's tables and its labels tell the pollsters apart by name."""
    blocks = [(kind, poll.name) for kind, polls in (("exit_poll", cfg.exit_poll), ("quick_count", cfg.quick_count))
              for poll in polls]
    problems = []
    for name in dict.fromkeys(name for _, name in blocks):
        kinds = [kind for kind, same in blocks if same == name]
        if len(kinds) > 1:
            problems.append(f"{kinds[0]}.{name}.name: given to {len(kinds)} polls "
                            f"({', '.join(f'[[{kind}]]' for kind in kinds)}); each poll needs its own name")
    return problems


def _poll_problems(cfg: Config) -> list[str]:
    """Poll designs against the ballot and, for synthetic electorates, the number of stations (the
    register-dependent checks run where the electorate is built)."""
    problems = _shared_poll_names(cfg)
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
            held = swept_below(cfg, path)
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
                problems += [f"{where}.overrides: {p}" for p in pydantic_problems(error, raw)]
        problems += [f"{where}.overrides: {p}" for p in _overridden_block_problems(cfg, scenario)
                     if p not in unchanged]
    return problems


def _overridden_block_problems(cfg: Config, scenario) -> list[str]:
    """:func:`_block_problems` of the config as ``scenario``'s overrides leave it (none when they do not validate:
    those problems are reported per override)."""
    if not scenario.overrides:
        return []
    try:
        return _block_problems(cfg.at(scenario.overrides))
    except (KeyError, ValidationError):
        return []


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
        unswept |= {problem.removeprefix("sweep.") for problem in swept_region_problems(cfg, names)}
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
        target = sweep_target_problem(raw, path, cfg)
        if target:
            problems.append(f"sweep.{target}")
            continue
        for value in values:
            try:
                point = Config.model_validate(set_path(raw, path, value))
            except ValidationError as error:
                problems += [f"{where}={value:g}: {p}" for p in pydantic_problems(error, raw)]
                continue
            problems += [f"{where}={value:g}: {p}" for p in cross_check(point) if p not in unswept]
    return problems


def _skipped_share_problems(share_figures: list[str], reported: list[str]) -> set[str]:
    """The share-figure refusals of the sweep-free config (``share_figures``, :func:`_cross_checked` of it) that the
    config's own checks (``reported``) did not tell: those of the rows whose mean its sweep varies, which it skips
    and each sweep point judges."""
    return set(share_figures) - set(reported)
