"""scripts/exit_poll_tables.py: the README's exit-poll tables from `simkit compare --json`."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "exit_poll_tables.py"


def _script():
    spec = importlib.util.spec_from_file_location("exit_poll_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(pollster: str, option: str, **changes) -> dict:
    row = {"pollster": pollster, "option": option, "published": 80.0, "official": 81.0, "gap": -1.0, "gap_sd": 0.5,
           "z": -2.0, "p_value": 0.04, "z_total": -1.0, "p_total": 0.3, "z_min": -2.5, "z_max": -1.5,
           "share_consistent": 0.25, "verdict": "depends", "points_compared": 8, "ledger_points": 8}
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
    text = _script().render(report, None, {"ledger": [{"point": 0}], "rows": [census]})
    lines = [line for line in text.splitlines() if line.startswith("| qc |") or "qc tokayev" in line]
    assert lines and all("n/a (census: no sampling error)" in line for line in lines)
    assert "| Amanat | tokayev | 80.00 | 81.00 | -1.00 | 0.50 | -2.0 |" in text
    assert "-2.5 to -1.5, 25% (depends)" in text
