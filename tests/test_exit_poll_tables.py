"""scripts/exit_poll_tables.py: the README's exit-poll tables from `simkit compare --json`."""
from conftest import load_script


def _row(pollster: str, option: str, **changes) -> dict:
    row = {"pollster": pollster, "option": option, "published": 80.0, "official": 81.0, "gap": -1.0, "gap_sd": 0.5,
           "z": -2.0, "p_value": 0.04, "p_method": "monte_carlo", "p_floor": 1 / 1001, "z_total": -1.0, "p_total": 0.3,
           "z_min": -2.5, "z_max": -1.5, "share_consistent": 0.25, "verdict": "depends", "points_compared": 8, "ledger_points": 8}
    return {**row, **changes}


def test_a_census_row_whose_infinite_z_json_writes_as_null_is_rendered():
    """A census figure (every station's count read) has no sampling error: its z and ledger z range are infinite,
    which the JSON writes as null; the tables once stopped on formatting None."""
    census = _row("qc", "tokayev", gap_sd=0.0, z=None, p_value=None, p_method="census", z_min=None, z_max=None,
                  share_consistent=0.0, verdict="rejected everywhere",
                  rounding={"half_unit": 0.005, "consistent": False})
    report = {"baseline": [], "baseline_table": {}, "designs": [], "mechanisms": [],
              "rows": [_row("amanat", "tokayev"), census],
              "joint": {"df1": 1, "df2": 99, "t2": 4.0, "f": 4.0, "p_value": 0.05, "p_floor": 0.0099,
                        "p_monte_carlo": 0.05, "per_poll": []},
              "history": [{"title": "2022", "rows": [census]}]}
    text = load_script("exit_poll_tables").render(report, None, {"ledger": [{"point": 0}], "rows": [census]})
    lines = [line for line in text.splitlines() if line.startswith("| qc |") or "qc tokayev" in line]
    assert lines and all("n/a (census: no sampling error)" in line for line in lines)
    assert "| Amanat | tokayev | 80.00 | 81.00 | -1.00 | 0.50 | -2.0 |" in text
    assert "-2.5 to -1.5, 25% (depends)" in text


def test_a_figure_beyond_sampling_error_states_its_p_and_how_sure_the_replicates_are_of_it():
    """The figures beyond sampling error but within total error were listed by z alone: a simulated p of 0.046,
    within two Monte Carlo SE (√(p (2 − p) / R)) of 0.05, read as firmly as one of 0.004, though another run
    may call it consistent."""
    replicates = 1000
    rows = [_row("socis", "tokayev", p_value=0.046, p_method="monte_carlo", p_floor=1 / (replicates + 1), z=1.9),
            _row("amanat", "tokayev", p_value=0.004, p_method="monte_carlo", p_floor=1 / (replicates + 1), z=2.9),
            _row("open_society", "tokayev", p_value=2e-8, p_method="normal_tail", p_floor=1 / (replicates + 1), z=5.6)]
    text = "\n".join(load_script("exit_poll_tables").statements({"rows": rows, "mechanisms": []}, {"socis": "SOCIS-A"}))
    # SE √(0.046 × 1.954 / 1000) = 0.0095, so 0.05 lies 0.4 SE away: borderline
    assert "SOCIS-A tokayev (-1.00, z +1.9, p 0.046, Monte Carlo SE 0.009, borderline, z total -1.0)" in text
    assert "amanat tokayev (-1.00, z +2.9, p 0.004, Monte Carlo SE 0.003, z total -1.0)" in text
    assert "open_society tokayev (-1.00, z +5.6, p 2e-08 from the normal tail, z total -1.0)" in text


def test_a_gap_beyond_total_error_states_its_p_total():
    """The gaps larger than exit polls' usual total error were listed by z total alone, without the p total that
    puts them in that list."""
    rows = [_row("amanat", "tokayev", gap=4.21, z_total=4.1, p_total=4e-05),
            _row("amanat", "against_all", gap=-2.4, z_total=-2.7, p_total=0.0071)]
    text = "\n".join(load_script("exit_poll_tables").statements({"rows": rows, "mechanisms": []}, {"amanat": "Amanat"}))
    assert ("Amanat tokayev (+4.21 points, z total +4.1, p total 4e-05); Amanat against_all (-2.40 points, z total "
            "-2.7, p total 0.0071).") in text


def test_a_simulated_p_just_above_the_level_is_called_borderline_too():
    """"Borderline" is said within 2 Monte Carlo SE of 0.05 on either side (docs/exit-polls.md): a figure at p 0.054,
    0.4 SE above the level, is consistent with sampling error in this run but may not be in another; it was said of
    figures below 0.05 only, and one above was named nowhere. One far above the level is not listed."""
    replicates = 1000
    rows = [_row("socis", "tokayev", p_value=0.054, p_method="monte_carlo", p_floor=1 / (replicates + 1), z=1.9),
            _row("amanat", "tokayev", p_value=0.4, p_method="monte_carlo", p_floor=1 / (replicates + 1), z=0.8)]
    lines = load_script("exit_poll_tables").statements({"rows": rows, "mechanisms": []}, {"socis": "SOCIS-A"})
    # SE √(0.054 × 1.946 / 1000) = 0.0103, so 0.05 lies 0.4 SE away: borderline
    assert ("- **Gaps within sampling error, borderline** (p above 0.05 by less than 2 Monte Carlo SE): SOCIS-A "
            "tokayev (-1.00, z +1.9, p 0.054, Monte Carlo SE 0.01, borderline, z total -1.0).") in lines
    assert not any("amanat" in line for line in lines)
    assert "- **Gaps beyond sampling error but within the historical total error**: none." in lines


def test_quick_count_gaps_are_stated_by_their_sampling_error():
    """A quick count's figures have no total-error p (exit polls' interview error does not apply to them): one
    beyond its sampling error was named in no line, and one within it at p 0.054 stopped the script (z total None)."""
    rows = [_row("qc", "tokayev", gap=-1.9, z=-19.0, p_value=1 / 1001, z_total=None, p_total=None),
            _row("qc", "against_all", p_value=0.054, z=1.9, z_total=None, p_total=None)]
    lines = load_script("exit_poll_tables").statements({"rows": rows, "mechanisms": []}, {"qc": "QC"})
    assert ("- **Gaps beyond sampling error, judged by sampling error alone**: QC tokayev (-1.90, z -19.0, p 1e-03, "
            "Monte Carlo SE 0.001)." in lines), lines
    assert any(line.startswith("- **Gaps within sampling error, borderline**") and "QC against_all (-1.00, z +1.9, "
               "p 0.054, Monte Carlo SE 0.01, borderline)." in line for line in lines), lines
