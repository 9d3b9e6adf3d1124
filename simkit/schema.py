"""The output schema of simkit, written down in one place.

Every Dataset simkit produces (simulated by the engine, or loaded from real returns) uses these
variable and dimension names, so forensics, comparisons and inference run on either alike.

Dimensions
----------
replicate     one simulated election (absent in real returns)
station       one polling station
option        one ballot choice: candidates, "against all", and ``invalid``
region_name   one region (for regional totals)
scenario      one named manipulation scenario (``honest`` when the config defines none)
report_time   one reporting time of the voting day, "HH:MM"; the last is the closing (the final count)
<dotted.path> one per swept config field, named by its dotted path, e.g. ``turnout.dispersion``

Counts are non-negative integers (int64); shares are in [0, 1].
"""

REPLICATE = "replicate"
STATION = "station"
OPTION = "option"
REGION_NAME = "region_name"
SCENARIO = "scenario"
REPORT_TIME = "report_time"

#: name -> (dims, units, description); dims list only the core dims (sweep dims come first in front).
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "registered": ((STATION,), "voters", "voters on the register at the station"),
    "ballots": ((REPLICATE, STATION), "ballots", "ballots cast (issued) at the station"),
    "votes": ((REPLICATE, STATION, OPTION), "ballots", "ballots counted for each option (invalid included)"),
    "region_registered": ((REGION_NAME,), "voters", "voters on the register in the region"),
    "region_ballots": ((REPLICATE, REGION_NAME), "ballots", "ballots cast in the region"),
    "region_votes": ((REPLICATE, REGION_NAME, OPTION), "ballots", "ballots counted for each option in the region"),
    "total_ballots": ((REPLICATE,), "ballots", "ballots cast nationally"),
    "total_votes": ((REPLICATE, OPTION), "ballots", "ballots counted for each option nationally"),
    "manipulated_votes": ((REPLICATE, STATION, OPTION), "ballots",
                          "signed change of each option's count caused by all manipulations together"),
    "voter_votes": ((REPLICATE, STATION, OPTION), "ballots",
                    "choices of real voters (after coercion, before any rewriting of the count): what exit polls sample"),
    "added_ballots": ((REPLICATE, STATION), "ballots", "ballots that exist only because of a manipulation"),
    "manipulated": ((REPLICATE, STATION), "bit mask",
                    "bit i set when manipulation block i touched the station; only stations with voters are marked"),
    "timeline_ballots": ((REPLICATE, REGION_NAME, REPORT_TIME), "ballots",
                         "ballots cast in the region by each reporting time (cumulative; the last is the final count)"),
    "station_timeline_ballots": ((REPLICATE, STATION, REPORT_TIME), "ballots",
                                 "ballots cast at the station by each reporting time (cumulative)"),
    "timeline_added_ballots": ((REPLICATE, STATION, REPORT_TIME), "ballots",
                               "ballots that exist only because of a manipulation, by each reporting time (cumulative)"),
}

#: coordinate on the station dim: the region name of each station
STATION_REGION = "region"
#: optional coordinate on the station dim: the district (a unit inside one region) of each station
STATION_DISTRICT = "district"

#: ids of the station-level summary statistics (:mod:`simkit.forensics.station_statistics`), in the order it
#: computes them when asked for all; the inference config (``[observed.stations] statistics``) names them
STATION_STATISTICS = ("turnout_mean", "turnout_sd", "leader_share_mean", "leader_share_sd",
                      "turnout_share_correlation", "high_corner", "integer_share")

#: the statistical conventions every analysis shares
#: quantiles of the central (90%) interval that summaries report
INTERVAL = (0.05, 0.95)
#: the significance level of a verdict (a p-value at or below it rejects: :func:`rejects`)
ALPHA = 0.05
#: fewest stations a test of the distribution over stations reads (every forensic test of the station distribution,
#: :mod:`simkit.forensics.applicable`; a region's station timeline tests, :mod:`simkit.timeline.stations`): fewer
#: have no shape to test (the share of them beyond a threshold is hardly a distribution, and one station is its
#: region's own profile: z = 0 in the data and every redraw alike, p = 1 from a null without spread)
MIN_STATIONS = 10


def rejects(p_value: float | None, alpha: float = ALPHA) -> bool:
    """The one rejection rule of every verdict, table and count: ``p_value`` at or below ``alpha``; None (no
    test) never rejects. The usual rule for a Monte Carlo p-value (1 + k) / (n + 1): under the null the rank of a
    statistic exchangeable with its n draws is uniform, so with alpha (n + 1) a whole number the test rejects with
    probability alpha exactly (at 0.05: 19, 99, 999 draws), where a strict rule gives alpha - 1 / (n + 1)."""
    return p_value is not None and p_value <= alpha
