"""A spreadsheet's totals rows among a station file's rows, told by exact sums.

Two shapes are recognised, each a guess from counts alone:

- a **totals row** (:func:`sums_the_others`): every count the sum of every other row's;
- a **totals row among subtotals** (:func:`subtotals_problem`): each region's rows closed by a subtotal row (their
  sum, below them, or above them in a file that heads each block with it) and a totals row anywhere, so that the
  file holds every station twice over beside the total, which is a third of every column's sum. The third alone is
  no proof (a station of a small file can be a third of it): the other rows, read in file order, must split into
  runs each closed by its subtotal, :data:`MIN_SUBTOTALS` of them or more, none left over. One level of subtotals
  is caught; districts subtotalled inside regions subtotalled are not, nor subtotal rows without a totals row (a
  station that sums the few above it is no rare thing in one column).

The returns loader flags a totals row and refuses a totals row among subtotals (the subtotal rows, as many as the
regions, would be tested as stations); the electorate and timeline station files refuse both
(:func:`check_no_totals_row`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from simkit.errors import InputError, first_of

#: fewest rows with voters before any row is compared with the others' sum: a totals row and two rows it sums (in a
#: file of two stations, two equal stations would each be the other's sum)
MIN_ROWS_COMPARED = 3
#: fewest other rows with voters beside a one-column totals row (an electorate's register): with fewer, a station is
#: too easily the sum of the others (500 = 200 + 300)
MIN_ROWS_SUMMED = 3
#: fewest subtotal rows beside a totals row among subtotals: with one region its one subtotal is the total, and three
#: equal stations would each be a third of the file, each run of one closed by the next
MIN_SUBTOTALS = 2


def _compared(values: np.ndarray, missing: np.ndarray) -> np.ndarray | None:
    """The columns (bool, (column,)) whose sums are known: no missing cell outside rows with no count at all (a
    section's label, which sums to nothing); None unless the register (column 0) or the ballots (column 1) are among
    them and :data:`MIN_ROWS_COMPARED` rows or more have a register above 0."""
    labels = missing.all(axis=1)
    complete = ~missing[~labels].any(axis=0)
    if not complete[:2].any() or (values[:, 0] > 0).sum() < MIN_ROWS_COMPARED:
        return None
    return complete


def sums_the_others(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Rows (bool, shape (row,)) that look like a spreadsheet's totals row: every count column is the sum of
    every other row's. ``values``/``missing`` (shape (row, column), column 0 the register, 1 the ballots): only the
    columns of :func:`_compared` are compared, and the row's register is above 0. A guess: in a small file a
    station equal to the sum of all others in every compared column would be flagged."""
    complete = _compared(values, missing)
    if complete is None:
        return np.zeros(len(values), dtype=bool)
    compared = values[:, complete]
    return (values[:, 0] > 0) & (2 * compared == compared.sum(axis=0)).all(axis=1)


def subtotals_problem(names: Sequence[str], values: np.ndarray, missing: np.ndarray,
                      rows_named: Callable[[list[int]], str]) -> str | None:
    """``row 12: registered 3,000, ballots 2,000: each the sum of the subtotal rows 4, 8 (each the sum of the rows
    above it: a totals row among subtotals? remove them)`` for the first totals row among subtotals in ``values``
    (shape (row, column), the columns ``names``; ``missing`` as for :func:`sums_the_others`), rows named by
    ``rows_named`` (0-based rows -> text); None when there is none."""
    complete = _compared(values, missing)
    if complete is None:
        return None
    compared = values[:, complete]
    thirds = (values[:, 0] > 0) & (3 * compared == compared.sum(axis=0)).all(axis=1)
    for total in np.flatnonzero(thirds):
        others = np.delete(np.arange(len(values)), total)
        for order, side in ((others, "above"), (others[::-1], "below")):
            closing = _closing_rows(compared[order], values[order, 0])
            if closing is not None:
                subtotals = sorted(int(order[i]) for i in closing)
                counts = first_of(f"{name} {count:,}" for name, count in
                                  zip(np.asarray(names)[complete], compared[total].tolist()))
                return (f"{rows_named([int(total)])}: {counts}: each the sum of the subtotal "
                        f"{rows_named(subtotals)} (each the sum of the rows {side} it: a totals row among "
                        "subtotals? remove them)")
    return None


def _closing_rows(values: np.ndarray, registers: np.ndarray) -> list[int] | None:
    """The rows of ``values`` (row, column), taken in the order given, that each close a run: equal in every column
    to the sum of the rows since the previous such row (or the first), one of them at least with a register
    (``registers`` (row,) above 0). None unless :data:`MIN_SUBTOTALS` rows or more do and no count is left in a run
    no row closes."""
    closing, run, voters = [], np.zeros(values.shape[1], dtype=np.int64), False
    for index, (row, register) in enumerate(zip(values, registers)):
        if voters and np.array_equal(row, run):
            closing.append(index)
            run[:], voters = 0, False
        else:
            run += row
            voters |= bool(register > 0)
    return closing if len(closing) >= MIN_SUBTOTALS and not run.any() else None


def check_no_totals_row(where: str, names: Sequence[str], values: np.ndarray, lines: Sequence[int]) -> None:
    """InputError ``WHERE: row L: …`` for a station file's totals row (:func:`sums_the_others`) or totals row among
    subtotals (:func:`subtotals_problem`): ``values`` (row, column) counts of the columns ``names``, column 0 the
    register, none missing; ``lines`` (row,) each row's line in the file. With one column (a register alone), a
    weaker sign than several, a totals row is taken for one only as the first or the last row, beside
    :data:`MIN_ROWS_SUMMED` rows or more with voters, where exports write totals. Read as a station, either would
    be drawn or summed as one holding as many voters as all the others."""
    missing = np.zeros(values.shape, dtype=bool)
    alone = sums_the_others(values, missing)
    if values.shape[1] == 1:
        alone[1:-1] = False
        alone &= (values[:, 0] > 0).sum() > MIN_ROWS_SUMMED
    if alone.any():
        row = int(np.flatnonzero(alone)[0])
        counts = ", ".join(f"{name} {count:,}" for name, count in zip(names, values[row].tolist()))
        raise InputError(f"{where}: row {lines[row]}: {counts}{' is' if len(names) == 1 else ': each'} the sum of "
                         "every other row's (a totals row? remove it)")
    problem = subtotals_problem(names, values, missing, lambda rows: _file_rows([lines[row] for row in rows]))
    if problem:
        raise InputError(f"{where}: {problem}")


def _file_rows(lines: list[int]) -> str:
    """``row 5`` or ``rows 4, 8, 12, …``: rows named by their lines in the file."""
    return f"row{'s' if len(lines) > 1 else ''} {first_of(map(str, lines), how_many=False)}"
