"""Config models of the manipulation mechanisms (``[[manipulation]]``) and scenarios (``[[scenario]]``).

One pydantic model per mechanism ``kind``, joined in the discriminated union
:data:`ManipulationConfig`; the pure functions that apply them live in :mod:`simkit.model.manipulation`.
Rates and probabilities are fractions in [0, 1]. Cross references (``beneficiary`` is an option,
``regions`` exist, scenario ``manipulations`` name blocks) are checked by the main config, which
knows the options and regions.

Example (TOML)::

    [[manipulation]]
    name = "stuffing_south"
    kind = "ballot_stuffing"
    beneficiary = "tokayev"
    regions = ["turkestan", "shymkent"]
    f_incremental = 0.64
    f_extreme = 0.033
    theta = 0.559
    alpha = 2.3

    [[scenario]]
    name = "stuffing"
    manipulations = ["stuffing_south"]
    overrides = { "manipulation.stuffing_south.f_incremental" = 0.3 }
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from simkit.types import MAX_LATENT_SD, STRICT, Identifier, NameList, Positive, RegionNames, Share

#: exponent linking stolen to stuffed fractions: x**100 is below 1e-4 for x < 0.91, all but no stealing
MAX_ALPHA = 100.0


class ManipulationBase(BaseModel):
    """Fields common to every mechanism.

    ``regions`` (None = all regions) and ``station_probability`` choose the stations the block may
    touch: a station is eligible when it lies in one of the regions and, independently, with
    probability ``station_probability`` (the engine draws this from its own stream).
    """

    model_config = STRICT

    name: Identifier = Field(description="block name, used in dotted paths and scenarios")
    beneficiary: Identifier = Field(description="option that gains from the manipulation")
    regions: RegionNames | None = Field(None, description="regions where the block acts; None = everywhere")
    station_probability: Share = Field(1.0, description="probability that an eligible station is manipulated")
    label: str = ""


class BallotStuffing(ManipulationBase):
    """Klimek, Yegorov, Hanel & Thurner (2012, PNAS 109:16469) ballot stuffing and vote stealing.

    A manipulated station gets incremental fraud with probability ``f_incremental``, extreme fraud
    with probability ``f_extreme`` (otherwise none). ``theta`` is the standard deviation (not the
    variance) of the normal whose absolute value is the incremental stuffing fraction;
    ``extreme_sd`` that of the extreme one (0.075 in the paper). ``alpha`` links stolen to stuffed
    fractions: a fraction x**alpha of the other candidates' votes moves to the beneficiary.
    """

    kind: Literal["ballot_stuffing"]
    f_incremental: Share = Field(description="probability of incremental fraud at a station")
    f_extreme: Share = Field(description="probability of extreme fraud at a station")
    # SDs at most 10: |N(0, 10)| falls in (0, 1) in 8 % of the draws (the redraws stay few); an SD past 10
    # changes nothing but the number of redraws
    theta: Positive = Field(le=MAX_LATENT_SD, description="SD of the normal of the incremental stuffing fraction")
    alpha: Positive = Field(le=MAX_ALPHA, description="exponent: stolen fraction = stuffed fraction ** alpha")
    extreme_sd: Positive = Field(0.075, le=MAX_LATENT_SD, description="SD of 1 - x for extreme fraud")

    @field_validator("f_extreme")
    @classmethod
    def _rates_sum_at_most_one(cls, value: float, info: ValidationInfo) -> float:
        incremental = info.data.get("f_incremental")
        if incremental is not None and incremental + value > 1.0 + 1e-12:
            raise ValueError(f"f_incremental + f_extreme must be at most 1 (f_incremental {incremental:g}), "
                             f"got {value:g}")
        return value


class VoteStealing(ManipulationBase):
    """A ``fraction`` of the other candidates' votes (or, with ``from_invalid``, of the invalid
    ballots only) is counted for the beneficiary. Ballots are unchanged."""

    kind: Literal["vote_stealing"]
    fraction: Share = Field(description="share of each source option's votes moved to the beneficiary")
    from_invalid: bool = Field(False, description="steal invalid ballots instead of other candidates' votes")


class CoercedTurnout(ManipulationBase):
    """A ``share`` of the register is coerced (e.g. employees told to vote and show a photo).

    Coerced non-voters turn out with probability ``compliance``; every coerced voter (the added
    ones and those who would have voted anyway) votes for the beneficiary with probability
    ``loyalty``, and otherwise as the station's honest voters do.
    """

    kind: Literal["coerced_turnout"]
    share: Share = Field(description="share of the register that is coerced")
    compliance: Share = Field(description="probability that a coerced non-voter turns out")
    loyalty: Share = Field(description="probability that a coerced voter votes for the beneficiary")


class ProtocolFabrication(ManipulationBase):
    """The station's protocol is rewritten.

    Turnout is set to ``target_turnout`` or, with ``round_to_percent`` and ``rounded`` in
    {"turnout", "both"}, to the nearest whole percent; the beneficiary's share of ballots likewise
    with ``target_share`` or rounding ("share", "both"). Other options are scaled proportionally.
    """

    kind: Literal["protocol_fabrication"]
    target_turnout: Share | None = Field(None, description="reported turnout (ballots / registered)")
    target_share: Share | None = Field(None, description="reported beneficiary share of ballots")
    round_to_percent: bool = Field(False, description="round turnout and/or share to a whole percent")
    rounded: Literal["turnout", "share", "both"] = Field("both", description="what round_to_percent rounds")

    @model_validator(mode="after")
    def _something_to_fabricate(self) -> "ProtocolFabrication":
        if self.round_to_percent:
            if self.target_turnout is not None and self.rounded in ("turnout", "both"):
                raise ValueError("target_turnout and round_to_percent of turnout exclude each other "
                                 "(set rounded = \"share\")")
            if self.target_share is not None and self.rounded in ("share", "both"):
                raise ValueError("target_share and round_to_percent of the share exclude each other "
                                 "(set rounded = \"turnout\")")
        elif self.target_turnout is None and self.target_share is None:
            raise ValueError("nothing to fabricate: set target_turnout, target_share or round_to_percent")
        return self

    @property
    def rounds_turnout(self) -> bool:
        return self.round_to_percent and self.rounded in ("turnout", "both")

    @property
    def rounds_share(self) -> bool:
        return self.round_to_percent and self.rounded in ("share", "both")


class Invalidation(ManipulationBase):
    """A ``fraction`` of the ballots of options other than the beneficiary is declared invalid."""

    kind: Literal["invalidation"]
    fraction: Share = Field(description="share of each other option's ballots moved to invalid")


ManipulationConfig = Annotated[
    Union[BallotStuffing, VoteStealing, CoercedTurnout, ProtocolFabrication, Invalidation],
    Field(discriminator="kind"),
]


class ScenarioConfig(BaseModel):
    """A named alternative: the manipulation blocks applied (in config order) and any overrides.

    ``overrides`` maps dotted config paths (blocks addressed by name, e.g.
    ``manipulation.stuffing_south.theta``) to values that hold in this scenario only.
    """

    model_config = STRICT

    name: Identifier
    label: str = ""
    manipulations: NameList = Field(default_factory=list, description="names of [[manipulation]] blocks")
    overrides: dict[str, float | int | bool | str] = Field(default_factory=dict)
    match_observed: bool = Field(False, description="solve the honest parameters so that the manipulated count "
                                                    "reproduces [observed] (simkit.engine.count_match)")
    solved_honest: list[dict[str, float]] | None = Field(
        None, description="the solved honest parameters of a count-matched scenario, one table of dotted "
                          "turnout.* / preferences.shares.* values per sweep point (C order); written by "
                          "simkit.engine.count_match.resolve into the config a run records, never solved again")
    solved_for: str | None = Field(None, description="simkit.engine.count_match.fingerprint of the config solved_honest "
                                                     "was solved for; a different one is solved again")
