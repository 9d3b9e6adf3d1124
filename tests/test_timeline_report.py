"""scripts/timeline_report.py: the station table's nulls draw from keyed streams (:mod:`simkit.streams`)."""
import numpy as np
import pandas as pd

from simkit import streams

from conftest import load_script


def test_the_station_tables_nulls_draw_at_their_own_keyed_positions(monkeypatch):
    """Spain's tables take ``simkit timeline``'s station-level stream under seed 0; simulated Spain r its own key
    below the seed that drew it. The script drew them from ``default_rng(0)``, ``default_rng(0)`` and
    ``default_rng(1)``: simulated Spain 0's null was the real tables' stream."""
    script = load_script("timeline_report")
    tables = pd.DataFrame({"region": ["01", "02"], "ballots_1400": [10, 20], "ballots_1800": [30, 40],
                           "ballots_final": [50, 60]})
    positions = []

    def null_rows(counts, region, region_names, early, kappa_station, rng, draws):
        seed_seq = rng.bit_generator.seed_seq
        positions.append((seed_seq.entropy, tuple(seed_seq.spawn_key)))
        return []

    monkeypatch.setattr(script, "read_spain", lambda: tables)
    monkeypatch.setattr(script, "usable", lambda frame: (frame, {}))
    monkeypatch.setattr(script, "load_fit", lambda: {"kappa_station": 90.0})
    monkeypatch.setattr(script, "simulate_tables", lambda kept, fit, n, seed: np.zeros((n, len(kept), 2), np.int64))
    monkeypatch.setattr(script, "station_rows", null_rows)
    script.station_table(draws=2, simulated_spains=2)
    assert positions == [(script.SEED, streams.observed_timeline_key(streams.TIMELINE_STATIONS)),
                         (script.SIMULATED_SEED, (streams.SIMULATED_SPAIN_STATIONS, 0)),
                         (script.SIMULATED_SEED, (streams.SIMULATED_SPAIN_STATIONS, 1))]
