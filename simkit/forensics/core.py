"""The shared pieces of every forensic test: one election's arrays, the result type and p-value helpers.

Every test module in ``simkit.forensics`` has the same interface:

- ``ID``: the test id used on the command line;
- ``statistic(election) -> float``: the number its simulated null is made of (cheap: it is computed on every
  simulated honest election);
- ``ALTERNATIVE``: the direction in which the statistic is anomalous (:data:`ALTERNATIVES`);
- ``run(election, *, null, draws, rng, null_statistics=None) -> TestResult``. ``null_statistics`` (the simulated
  null) is array-like: read it only through ``numpy`` (``simulated_p_value`` does), after the test's own
  work, since it may still be being drawn (:mod:`simkit.forensics.nulls.simulated`);
- ``estimates_of(election, rng=None) -> dict``, in a module whose estimates do not read its null (the Klimek fits):
  the figures ``run`` reports beside its p-value under every null, which an ``n/a`` result for want of a null
  reports alone (:func:`simkit.forensics.run_each`).

A test reports ``statistic(election)`` (or, under the textbook null, its module's ``textbook_statistic`` when
that null is about another number, :func:`simkit.forensics.statistic_function`) and asks a *null object* for its
p-value in its own direction: ``null_for(null, textbook, null_statistics).p_value(value, ALTERNATIVE)``. Null
objects (:class:`Null`): :class:`DrawnNull` (the statistic on draws: simulated honest elections, or a test's own
resamples), :class:`LawNull` (a textbook law of the statistic, a frozen scipy distribution),
:class:`BootstrapNull` (a percentile bootstrap of the statistic against a null value).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Hashable, Protocol

import numpy as np
import xarray as xr

from simkit.electorate.mapping import INVALID_OPTION, leader_problem
from simkit.errors import InputError, listed, shown
from simkit.forensics.computed import Computed
from simkit.schema import ALPHA, OPTION, STATION, STATION_DISTRICT, STATION_REGION, rejects

#: ``--null`` names: each test's own null, the hierarchical honest model, the earlier flat one
#: (:mod:`simkit.forensics.nulls.flat`)
NULLS = ("textbook", "simulated", "flat")
#: directions of a test's alternative: large statistics anomalous, small ones, or both
ALTERNATIVES = ("greater", "less", "two-sided")
#: the reason a station without ballots is left out (``excluded``): it has no shares to test
NO_BALLOTS = "no ballots"
#: the per-station arrays of an :class:`Election`, read-only
_STATION_ARRAYS = ("registered", "ballots", "votes", "region", "station_id", "district")


@dataclass(frozen=True)
class TestResult:
    """One test on one election. ``p_value`` is None only for descriptive tests (``fingerprint``).

    ``extra`` holds the test's own figures (JSON-serialisable scalars, lists or dicts), e.g. ``excess``.
    """

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    reference: float
    p_value: float | None
    null: str
    verdict: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready record: the six common fields, then the test's own figures."""
        head = {"test": self.test, "statistic": _plain(self.statistic), "reference": _plain(self.reference),
                "p_value": _plain(self.p_value), "null": self.null, "verdict": self.verdict}
        return {**head, **{k: _plain(v) for k, v in self.extra.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


@dataclass(frozen=True)
class Election:
    """One election's station arrays after exclusions.

    Attributes: ``registered``, ``ballots`` (voters, ballots; shape (station,), int64), ``votes`` (ballots, shape
    (station, option), int64, ``invalid`` included when known), ``options`` (names), ``leader`` (index into
    options), ``region``, ``station_id`` (str, shape (station,)), ``excluded`` (reason -> station count),
    ``district`` (str, shape (station,): a unit inside one region; the region itself when the data have no
    lower level).

    An election is immutable: its arrays are read-only views (the caller's arrays are not changed), so that
    values derived from them are computed once and kept (:mod:`simkit.forensics.computed`): :meth:`derived`
    for values of the counts, :meth:`geographic` for values of the stations' regions and districts alone,
    which :meth:`with_counts` passes on to the same stations with other counts.
    """

    registered: np.ndarray
    ballots: np.ndarray
    votes: np.ndarray
    options: tuple[str, ...]
    leader: int
    region: np.ndarray
    station_id: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)
    district: np.ndarray | None = None
    _derived: Computed = field(default_factory=Computed, init=False, repr=False, compare=False)
    _geographic: Computed = field(default_factory=Computed, init=False, repr=False, compare=False)
    _cuts: dict = field(default_factory=dict, init=False, repr=False, compare=False)  #: geographic key -> its cut

    def __post_init__(self):
        if self.district is None:
            object.__setattr__(self, "district", self.region)
        for name in _STATION_ARRAYS:
            view = np.asarray(getattr(self, name)).view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    def __reduce__(self):  # rebuilt by the constructor elsewhere: read-only again, computed values left behind
        return type(self), tuple(getattr(self, f.name) for f in fields(self) if f.init)

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value ``key`` derived from this election's arrays, ``compute()`` the first time (arrays come
        back read-only)."""
        return self._derived.get(key, compute)

    def geographic(self, key: Hashable, compute: Callable[[], Any], cut: Callable[[Any, np.ndarray], Any] | None = None
                   ) -> Any:
        """As :meth:`derived`, for a value of the stations and their regions and districts alone (not of the
        counts): shared with :meth:`with_counts`' elections. :meth:`stations` passes on ``cut(value, keep)``,
        the value of the kept stations (what ``compute()`` gives on them), or computes it again without one."""
        if cut is not None:
            self._cuts.setdefault(key, cut)
        return self._geographic.get(key, compute)

    @property
    def n(self) -> int:
        return int(self.registered.size)

    @property
    def leader_votes(self) -> np.ndarray:
        """The leader's votes, shape (station,), int64."""
        return self.derived("leader_votes", lambda: np.ascontiguousarray(self.votes[:, self.leader]))

    @property
    def turnout(self) -> np.ndarray:
        """Ballots / registered, shares in [0, 1], shape (station,)."""
        return self.derived("turnout", lambda: self.ballots / self.registered)

    @property
    def leader_share(self) -> np.ndarray:
        """Leader votes / ballots, shares in [0, 1], shape (station,)."""
        return self.derived("leader_share", lambda: self.leader_votes / self.ballots)

    @property
    def candidate_columns(self) -> np.ndarray:
        """Indices of the options that are candidates or parties (``invalid`` left out)."""
        return np.array([i for i, name in enumerate(self.options) if name != INVALID_OPTION])

    def unit_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(region names, region code, district names, district code)``: the sorted distinct names and each
        station's index into them (int64, shape (station,))."""
        def codes():
            region_names, region_code = np.unique(np.asarray(self.region).astype(str), return_inverse=True)
            district_names, district_code = np.unique(np.asarray(self.district).astype(str), return_inverse=True)
            return region_names, region_code.reshape(-1), district_names, district_code.reshape(-1)

        return self.geographic("unit_codes", codes, _cut_unit_codes)

    def with_counts(self, ballots: np.ndarray, votes: np.ndarray, options: tuple[str, ...] | None = None,
                    leader: int | None = None) -> Election:
        """The same stations with other counts (a simulated or resampled election), the stations this election
        left out still counted in ``excluded``; ``options`` and ``leader`` name the columns of ``votes`` when they
        are not this election's."""
        if (options is None) != (leader is None):
            raise ValueError("Election.with_counts: give both options and leader (the columns of votes) or neither")
        columns = {} if options is None else {"options": tuple(options), "leader": int(leader)}
        other = replace(self, ballots=ballots, votes=votes, **columns)
        object.__setattr__(other, "_geographic", self._geographic)
        object.__setattr__(other, "_cuts", self._cuts)
        return other

    def stations(self, keep: np.ndarray, reason: str | None = None) -> Election:
        """The stations where ``keep`` (bool, shape (station,)) is true, every per-station array cut alike; with a
        ``reason``, the stations left out are added to ``excluded`` under it."""
        excluded = dict(self.excluded)
        if reason is not None:
            excluded[reason] = excluded.get(reason, 0) + int(np.count_nonzero(~keep))
        other = replace(self, excluded=excluded, **{name: getattr(self, name)[keep] for name in _STATION_ARRAYS})
        cut_values = {key: cut(self._geographic.get(key, None), keep) for key, cut in self._cuts.items()
                      if key in self._geographic}
        object.__setattr__(other, "_geographic", Computed(cut_values))
        object.__setattr__(other, "_cuts", self._cuts)
        return other

    def summary(self) -> dict[str, Any]:
        return {"stations_used": self.n, "stations_excluded": dict(self.excluded),
                "leader": self.options[self.leader], "registered": int(self.registered.sum()),
                "ballots": int(self.ballots.sum()), "leader_votes": int(self.leader_votes.sum())}


def _cut_unit_codes(codes: tuple, keep: np.ndarray) -> tuple:
    """:meth:`Election.unit_codes` of the stations where ``keep``, from those of all: each level's units left with
    stations, renumbered in their sorted order."""
    region_names, region_code, district_names, district_code = codes
    return (*_cut_unit(region_names, region_code, keep), *_cut_unit(district_names, district_code, keep))


def _cut_unit(names: np.ndarray, code: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    code = code[keep]
    present = np.bincount(code, minlength=names.size) > 0
    return names[present], (np.cumsum(present) - 1)[code]


def election(ds: xr.Dataset, *, leader: str | None = None, select: dict[str, Any] | None = None) -> Election:
    """One election from a loaded or simulated Dataset.

    ``select`` picks positions along extra dims (``replicate``, sweep dims, ``scenario``); dims it does not name
    take position 0, so a simulated Dataset gives its first replicate. Stations are excluded (and counted in
    ``excluded``) when special (the loader's ``special`` variable: abroad, mobile, no register), flagged by the
    loader (``flags`` != 0), with no ballots, with ballots above the register, with votes above ballots, or with
    the leader's count missing in the file (the loader's ``missing`` variable). The leader is ``leader``, else
    ``attrs["leader"]``, else the candidate with the most votes; a leader that is blank, not among the options, or
    the invalid ballots' column, is refused (InputError, :func:`simkit.electorate.mapping.leader_problem`).
    """
    select = dict(select or {})
    unknown = set(select) - set(ds.dims)
    if unknown:
        raise ValueError(f"select names dims {listed(sorted(unknown))} that the Dataset does not have")
    extra = {d for v in ("registered", "ballots", "votes") for d in ds[v].dims} - {STATION, OPTION}
    one = ds.isel({d: select.get(d, 0) for d in extra})
    registered = np.asarray(one["registered"].values, dtype=np.int64)
    ballots = np.asarray(one["ballots"].values, dtype=np.int64)
    votes = np.asarray(one["votes"].transpose(STATION, OPTION).values, dtype=np.int64)
    options = tuple(str(o) for o in one[OPTION].values)
    n = registered.size
    region = (np.asarray(one[STATION_REGION].values).astype(str) if STATION_REGION in one.coords
              else np.full(n, "all"))
    district = (np.asarray(one[STATION_DISTRICT].values).astype(str) if STATION_DISTRICT in one.coords
                else region)
    station_id = (np.asarray(one["station_id"].values).astype(str) if "station_id" in one.coords
                  else np.asarray(one[STATION].values).astype(str))
    reasons = {
        "special station": (np.asarray(one["special"].values) != 0) if "special" in one else np.zeros(n, bool),
        "flagged by loader": (np.asarray(one["flags"].values) != 0) if "flags" in one else np.zeros(n, bool),
        NO_BALLOTS: ~has_ballots(ballots),
        "ballots > registered": ballots > registered,
        "votes > ballots": votes.sum(axis=1) > ballots,
    }
    drop = np.zeros(n, dtype=bool)
    excluded = {}
    for reason, mask in reasons.items():
        new = mask & ~drop
        if new.any():
            excluded[reason] = int(new.sum())
        drop |= new
    candidates = [i for i, name in enumerate(options) if name != INVALID_OPTION]
    name = leader if leader is not None else one.attrs.get("leader")
    if name is None:
        name = options[candidates[int(np.argmax(votes[~drop][:, candidates].sum(axis=0)))]]
    problem = leader_problem(name, options)
    if problem:
        raise InputError(f"leader: {problem}", parameters=("leader",) if leader is not None else ())
    if "missing" in one:  # a loaded station whose leader count is blank in the file
        blank = (np.asarray(one["missing"].transpose(STATION, OPTION).values)[:, options.index(name)] != 0) & ~drop
        if blank.any():
            excluded["leader count missing"] = int(blank.sum())
        drop |= blank
    keep = ~drop
    return Election(registered=registered[keep], ballots=ballots[keep], votes=votes[keep], options=options,
                    leader=options.index(name), region=region[keep], station_id=station_id[keep],
                    excluded=excluded, district=district[keep])


def has_ballots(ballots: np.ndarray) -> np.ndarray:
    """Whether each station (bool, shape (station,)) cast ballots: the rule that keeps a station in the tests,
    for real returns (:func:`election`) and simulated ones (:func:`with_ballots_only`) alike."""
    return ballots > 0


def with_ballots_only(e: Election) -> Election:
    """``e``'s stations with ballots (:func:`has_ballots`; a station without ballots has no shares to test); those
    left out are counted in ``excluded`` under :data:`NO_BALLOTS`."""
    cast = has_ballots(e.ballots)
    return e if cast.all() else e.stations(cast, NO_BALLOTS)


def check_draws(draws: int) -> None:
    """``draws``: null draws behind a p-value, a positive number (InputError naming the parameter otherwise)."""
    if draws < 1:
        raise InputError(f"draws: {draws}: must be a positive integer", parameters=("draws",))


def check_null(null: str, nulls: tuple[str, ...] = NULLS) -> None:
    """``null``: one of ``nulls`` (default :data:`NULLS`; InputError naming the parameter otherwise, in the
    one-line form ``null: 'NAME': unknown name (choose from …)``, the name quoted as the user's text, which the
    command line does not rewrite as a flag: :func:`simkit.cli.arguments.as_flags`)."""
    if null not in nulls:
        raise InputError(f"null: {shown(null)}: unknown name (choose from {', '.join(nulls)})",
                         parameters=("null",))


def simulated_p_value(observed: float, null_statistics: np.ndarray, sided: str) -> tuple[float, float]:
    """Monte Carlo p-value (1 + #as extreme) / (1 + draws) and the null mean used as reference.

    ``sided`` (:data:`ALTERNATIVES`; ``"two"`` is read as two-sided): ``"greater"`` (large values are
    anomalous), ``"less"``, or ``"two-sided"`` (distance from the null mean).
    """
    sims = np.asarray(null_statistics, dtype=float)
    sims = sims[np.isfinite(sims)]
    if sims.size == 0:
        raise ValueError("the statistic could not be computed on any simulated honest election")
    center = float(sims.mean())
    extreme = np.count_nonzero(directed(sims, center, sided) >= directed(np.float64(observed), center, sided))
    return float((1 + extreme) / (1 + sims.size)), center


def directed(values: np.ndarray, center: float, alternative: str) -> np.ndarray:
    """Values turned so that larger is more anomalous in direction ``alternative``: ``x`` (greater), ``-x``
    (less), ``|x - center|`` (two-sided)."""
    if alternative == "greater":
        return values
    if alternative == "less":
        return -values
    if alternative in ("two-sided", "two"):
        return np.abs(values - center)
    raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


class Null(Protocol):
    """A null distribution of one test's statistic, asked for p-values in a direction (:data:`ALTERNATIVES`)."""

    name: str

    def p_value(self, observed: float, alternative: str) -> tuple[float, float | None]:
        """``(p-value, reference)``: the probability under this null of a statistic at least as anomalous as
        ``observed`` in direction ``alternative``, and the null's centre (None when it has none)."""


@dataclass(frozen=True)
class DrawnNull:
    """The statistic on draws from a null (shape (draws,), array-like; read through ``numpy`` only when a
    p-value is asked, so draws may still be running): Monte Carlo p-value (:func:`simulated_p_value`)."""

    name: str
    statistics: Any

    def p_value(self, observed: float, alternative: str) -> tuple[float, float]:
        return simulated_p_value(observed, self.statistics, alternative)

    @property
    def finite_draws(self) -> int:
        """The draws on which the statistic could be computed: those the p-value rests on (its floor is
        1 / (finite_draws + 1))."""
        return int(np.count_nonzero(np.isfinite(np.asarray(self.statistics, dtype=float))))


def drawn_count(null: Null) -> dict[str, int]:
    """``{"null_draws": n}`` for a drawn null (:class:`DrawnNull`, n its finite draws), else ``{}``: a result's
    record of the draws its Monte Carlo p-value rests on."""
    return {"null_draws": null.finite_draws} if isinstance(null, DrawnNull) else {}


@dataclass(frozen=True)
class LawNull:
    """A textbook law of the statistic: a frozen scipy distribution (continuous or discrete), or a law with scipy's
    ``sf``/``cdf`` conventions that says ``discrete = True`` (the integer test's Poisson-binomial), optionally of
    ``transform(statistic)``. Greater: P(X >= x); less: P(X <= x); two-sided: twice the smaller, at most 1.
    ``reference``: the statistic's null centre (default: the law's mean, when it has one and no transform)."""

    law: Any
    transform: Callable[[float], float] | None = None
    reference: float | None = None
    name: str = "textbook"

    def p_value(self, observed: float, alternative: str) -> tuple[float, float | None]:
        x = float(observed if self.transform is None else self.transform(observed))
        discrete = hasattr(self.law, "pmf") or getattr(self.law, "discrete", False)  # scipy's, or a law saying so
        upper = float(self.law.sf(x - 1 if discrete else x))
        lower = float(self.law.cdf(x))
        tails = {"greater": upper, "less": lower, "two-sided": min(1.0, 2 * min(upper, lower))}
        if alternative == "two":
            alternative = "two-sided"
        if alternative not in tails:
            raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
        reference = self.reference
        if reference is None and self.transform is None and hasattr(self.law, "mean"):
            reference = float(self.law.mean())
        return tails[alternative], reference


@dataclass(frozen=True)
class BootstrapNull:
    """A percentile bootstrap of the statistic (resamples of the stations, shape (draws,)) against the value
    it takes when nothing is anomalous (``null_value``): greater: (1 + #resamples <= null_value) / (1 + draws),
    the share of resamples on the null's side."""

    resamples: np.ndarray
    null_value: float = 0.0
    name: str = "textbook"

    def p_value(self, observed: float, alternative: str) -> tuple[float, float]:
        boot = np.asarray(self.resamples, dtype=float)
        if alternative != "greater":
            raise ValueError(f"a bootstrap null here is one-sided (greater), got {alternative!r}")
        return float((1 + np.count_nonzero(boot <= self.null_value)) / (1 + boot.size)), self.null_value


def null_for(null: str, textbook: Callable[[], Null], null_statistics: Any) -> Null:
    """The null object of ``null`` (:data:`NULLS`): the test's textbook null, built by ``textbook()`` (so it
    is not computed when unused), or the simulated draws ``null_statistics``."""
    check_null(null)
    return textbook() if null == "textbook" else DrawnNull(null, null_statistics)


def verdict(p_value: float | None, alpha: float = ALPHA) -> str:
    if p_value is None:
        return "descriptive"
    return f"anomalous (p ≤ {alpha:g})" if rejects(p_value, alpha) else "no anomaly detected"


def top_stations(e: Election, score: np.ndarray, figures: dict[str, np.ndarray], k: int = 10) -> list[dict]:
    """The ``k`` stations with the largest ``score`` (shape (station,)), with their figures (follow-up list)."""
    order = np.argsort(-score, kind="stable")[:k]
    return [{"station_id": str(e.station_id[i]), "region": str(e.region[i]), "score": float(score[i]),
             **{name: float(values[i]) for name, values in figures.items()}} for i in order]


def top_regions(e: Election, score: np.ndarray, k: int = 10) -> list[dict]:
    """Regions ranked by the sum of a station score (shape (station,)): the follow-up list by region."""
    names, inverse = np.unique(e.region, return_inverse=True)
    sums = np.bincount(inverse, weights=score, minlength=names.size)
    counts = np.bincount(inverse, minlength=names.size)
    order = np.argsort(-sums, kind="stable")[:k]
    return [{"region": str(names[i]), "score": float(sums[i]), "stations": int(counts[i])} for i in order]


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None stays None), for rejecting across tests at one family level."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted
