"""The timeline as evidence for inference: its statistics are named, observed as published, and respond to
the coerced share in simulations."""
from __future__ import annotations

import math

import numpy as np

from simkit import infer
from simkit.electorate.build import build_electorate


def test_timeline_statistics_in_inference(repo):
    cfg, blocks, settings = infer.load_inference(repo / "configs" / "kazakhstan-2022-inference-timeline.toml")
    electorate = build_electorate(cfg.electorate)
    statistics = infer.statistic_names(cfg, settings.statistics, list(electorate.region_names))
    names = list(statistics.names)
    assert "timeline.front_loading.turkistan" in names and "timeline.late_surge.almaty_city" in names
    turkistan = names.index("timeline.front_loading.turkistan")
    assert math.isclose(statistics.observed[turkistan], 64.21 / 80.37, rel_tol=1e-12)  # 12:05 of the final
    simulator = infer.Simulator(cfg, blocks, statistics, cfg.scenarios()[-1].name)
    front = [i for i, name in enumerate(names) if name.startswith("timeline.front_loading.")]
    means = []
    for share in (0.0, 0.2):  # coerced voters arrive 07:00-12:00: the share reached by 12:05 rises
        values = np.array([share, 0.1, 0.01, 0.0, 0.78, 0.0, 0.0, 0.0])
        runs = np.array([simulator(values, seed) for seed in range(2)])
        assert np.isfinite(runs).all()
        means.append(runs[:, front].mean())
    assert means[1] > means[0] + 0.01, means
