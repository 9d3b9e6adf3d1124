"""What each forensic test can detect, and what no test here detects (the report's stated limits).

Descriptions follow each test module's docstring (:mod:`simkit.forensics`) and docs/forensics.md's calibration
table; they name the malpractice a test is built for, not a verdict on any election.
"""
from __future__ import annotations

#: test id -> the malpractice (or pattern) the test is built to detect
DETECTS = {
    "second_digit": "counts invented or adjusted by hand (second digits away from Benford's law)",
    "last_digit": "counts invented by hand (last digits not uniform)",
    "zero_five": "counts or percentages rounded to numbers ending in 0 or 5",
    "log_vote_rate": "a skewed or heavy-tailed leader vote rate, as inflated returns at some stations give",
    "dip": "a second turnout mode (a group of stations with inflated turnout)",
    "correlation": "turnout rising with the leader's share (stuffing, coerced turnout for the leader)",
    "sobyanin": "extra voters going to the leader beyond his share (stuffing, coerced turnout)",
    "fingerprint": "descriptive: the smear toward 100% turnout and 100% for the leader that stuffing leaves",
    "klimek": "incremental and extreme ballot stuffing (Klimek's model, fit by histogram distance)",
    "klimek_ml": "extreme ballot stuffing, stations pushed to near 100% turnout and 100% for the leader (Klimek's "
                 "model, fit by likelihood; under the textbook null incremental stuffing too)",
    "integer_percent": "protocols written to whole-percent turnout or leader share (fabricated results)",
    "spikes": "leader shares written to round fractions (fabricated results)",
    "shpilkin": "leader votes added at high-turnout stations (stuffing, rewritten protocols)",
}

#: what none of the station-level tests here detects
UNDETECTABLE = [
    "a uniform shift of votes between options at every station (proportional rewriting leaves every "
    "distribution's shape intact)",
    "pressure before election day (intimidation, media access, candidates kept off the ballot)",
    "a padded or purged register whose ghost voters turn out like real ones",
    "stuffing or rewriting spread thinly over many stations, below each test's power at this size",
    "manipulation in regional or national aggregation after the station protocols",
]

#: what exit polls and quick counts against the count cannot decide
POLLS_CANNOT = [
    "which side is wrong: a biased poll and a count biased the same way leave the same gap",
    "where a gap arose (stations, regions, aggregation): a national poll has no station-level resolution",
    "anything about a poll's honesty beyond its stated design: fabricated or weighted polls are not modelled",
]
